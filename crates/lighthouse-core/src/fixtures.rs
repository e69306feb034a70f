//! Test fixtures shared by this crate's tests, the server's and the fuzz targets: a snapshot
//! with a few services and a query builder.
#![doc(hidden)]

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::resolve::{Backend, ClusterAddrs, Port, Service, Snapshot};

/// A snapshot: `payment-service.default` exported by `c2`, with a port, and the headless
/// `db.default` of `c2`: `db-0` (IPv4 and IPv6), a backend without a hostname, a not-ready one.
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot {
        local: "c1".into(),
        ..Default::default()
    };
    s.services.insert(
        ("default".into(), "payment-service".into()),
        std::sync::Arc::new(Service {
            clusters: vec![ClusterAddrs {
                cluster: "c2".into(),
                ips: vec!["100.66.0.7".parse().expect("ip")],
                ready: true,
            }],
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
            }],
            ..Default::default()
        }),
    );
    let backend = |host: Option<&str>, ip: &str, ready: bool| Backend {
        cluster: "c2".into(),
        hostname: host.map(String::from),
        ips: vec![ip.parse().expect("ip")],
        ready,
    };
    s.services.insert(
        ("default".into(), "db".into()),
        std::sync::Arc::new(Service {
            headless: true,
            backends: vec![
                backend(Some("db-0"), "10.130.4.11", true),
                backend(Some("db-0"), "fd00:130::11", true),
                backend(None, "10.130.4.12", true),
                backend(Some("db-2"), "10.130.4.13", false),
            ],
            ports: vec![
                Port {
                    name: "pg".into(),
                    protocol: "tcp".into(),
                    port: 5432,
                },
                Port {
                    name: "metrics".into(),
                    protocol: "tcp".into(),
                    port: 9187,
                },
            ],
            ..Default::default()
        }),
    );
    s.index_reverse();
    s
}

pub fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}
