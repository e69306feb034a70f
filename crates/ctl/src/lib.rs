//! What `subctl` does, without its argument parsing: deploy a broker, join a cluster, and the
//! day-2 commands. Talks to clusters through kube-rs; the decisions live in `subsea-broker`.

pub mod benchmark;
pub mod cluster;
pub mod deploy_broker;
pub mod diagnose;
pub mod export;
pub mod gather;
pub mod join;
pub mod junit;
pub mod pods;
pub mod progress;
pub mod recover;
pub mod show;
pub mod table;
pub mod uninstall;
pub mod verify;
pub mod workloads;
