//! `subctl verify`: real checks between two joined clusters, run through pods the way an
//! application would see the network: pod to pod (gateway and non-gateway nodes, IPv4 and
//! IPv6), pod to remote Service, and service discovery by `clusterset.local` name. Every check
//! becomes a JUnit test case.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Client;
use serde::Deserialize;
use serde_json::json;

use crate::cluster::{self, Target};
use crate::junit::Case;
use crate::pods::{self, Side, Workload, nettest};
use crate::progress::Progress;

/// The groups of checks, named as Submariner's `--only` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Connectivity,
    ServiceDiscovery,
    GatewayFailover,
}

/// Parses `--only` (comma-separated; empty means all).
pub fn parse_only(only: &str) -> Result<Vec<Suite>> {
    let mut out = Vec::new();
    for part in only.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let s = match part {
            "connectivity" => Suite::Connectivity,
            "service-discovery" => Suite::ServiceDiscovery,
            "gateway-failover" => Suite::GatewayFailover,
            other => bail!(
                "unknown check {other:?} in --only: use connectivity, service-discovery and/or gateway-failover"
            ),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        out = vec![Suite::Connectivity, Suite::ServiceDiscovery];
    }
    Ok(out)
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// Image with `subsea` (its `nettest` subcommand).
    pub image: String,
    /// Namespace created in both clusters for the checks.
    pub namespace: String,
    /// Which checks.
    pub suites: Vec<Suite>,
    /// Time a single check may take.
    pub timeout: Duration,
}

#[derive(Deserialize)]
struct Echo {
    bytes: usize,
    source: String,
}

#[derive(Deserialize)]
struct Fetched {
    address: String,
    body: String,
}

const ECHO_PORT: u16 = 7000;
const WEB: &str = "verify-web";

struct Run<'a> {
    from: Side,
    to: Side,
    opts: &'a Options,
    cases: Vec<Case>,
    seq: usize,
}

impl Run<'_> {
    fn workload(
        &mut self,
        role: &str,
        node: String,
        command: Vec<String>,
        labels: &[(&str, &str)],
    ) -> Workload {
        self.seq += 1;
        Workload {
            name: format!("{role}-{}", self.seq),
            namespace: self.opts.namespace.clone(),
            node,
            image: self.opts.image.clone(),
            command,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host_network: false,
        }
    }

    /// Starts a server pod in the destination cluster and returns its addresses.
    async fn server(&mut self, gateway: bool, command: Vec<String>, app: &str) -> Result<Vec<String>> {
        let node = self.to.node(gateway)?;
        let w = self.workload(app, node, command, &[("app", app)]);
        pods::start(&self.to.client, &w).await?;
        pods::wait_running(&self.to.client, &w.namespace, &w.name, self.opts.timeout).await
    }

    /// Runs a client pod in the source cluster; returns its result and its addresses.
    async fn client<T: serde::de::DeserializeOwned>(
        &mut self,
        gateway: bool,
        command: Vec<String>,
    ) -> Result<(T, Vec<String>)> {
        let node = self.from.node(gateway)?;
        let w = self.workload("client", node, command, &[]);
        let r = pods::run(&self.from.client, &w, self.opts.timeout).await;
        let ips = pods::get(&self.from.client, &w.namespace, &w.name)
            .await
            .map(|p| pods::ips(&p))
            .unwrap_or_default();
        let _ = cluster::delete(
            &cluster::api(&self.from.client, "v1", "Pod", Some(&w.namespace))?,
            &w.name,
        )
        .await;
        Ok((r?, ips))
    }

    fn record(&mut self, name: String, started: Instant, r: Result<String>, p: &mut Progress<'_>) {
        let seconds = started.elapsed().as_secs_f64();
        match r {
            Ok(detail) => {
                p.done(format!("{name}: {detail} ({seconds:.1} s)"));
                self.cases.push(Case {
                    name,
                    seconds,
                    failure: None,
                    skipped: None,
                });
            }
            Err(e) => {
                p.failed(format!("{name}: {e:#}"));
                self.cases.push(Case {
                    name,
                    seconds,
                    failure: Some(format!("{e:#}")),
                    skipped: None,
                });
            }
        }
    }

    fn skip(&mut self, name: String, why: &str, p: &mut Progress<'_>) {
        p.warn(format!("{name}: skipped, {why}"));
        self.cases.push(Case {
            name,
            seconds: 0.0,
            failure: None,
            skipped: Some(why.into()),
        });
    }

    /// Sends 1 MiB to an echo server at `addr` from a client pod, checks it comes back intact
    /// and that the server saw the client pod's own address (no NAT on the way), or under
    /// Globalnet one of the client cluster's global egress IPs.
    async fn echo(&mut self, client_gw: bool, addr: String, expect_source: bool) -> Result<String> {
        let target = std::net::SocketAddr::new(addr.parse()?, ECHO_PORT).to_string();
        // Retry within a quarter of the pod's budget: enough for tunnels still converging,
        // short enough to report a broken path before the pod times out.
        let retry = (self.opts.timeout.as_secs() / 4).clamp(5, 30).to_string();
        let cmd = nettest(&["echo-check", &target, "--bytes", "1048576", "--timeout", &retry]);
        let (r, ips): (Echo, Vec<String>) = self.client(client_gw, cmd).await.map_err(|e| {
            anyhow::anyhow!("{e:#} (see `subctl show connections` and `subctl diagnose connections`)")
        })?;
        if expect_source && self.from.global_cidr.is_some() {
            let egress = egress_ips(&self.from.client, &self.opts.namespace).await?;
            if !egress.contains(&r.source) {
                bail!(
                    "the server saw the connection come from {}, not from one of {}'s global egress IPs ({}): check `kubectl get clusterglobalegressips,globalegressips -A` and the globalnet logs in {}",
                    r.source,
                    self.from.id,
                    egress.join(", "),
                    self.from.id
                );
            }
            return Ok(format!(
                "{} bytes echoed intact by {addr}, source is {}'s global egress IP {}",
                r.bytes, self.from.id, r.source
            ));
        }
        if expect_source && !ips.iter().any(|ip| *ip == r.source) {
            bail!(
                "the server saw the connection come from {}, not from the client pod ({}): something on the path NATs pod traffic",
                r.source,
                ips.join(", ")
            );
        }
        Ok(format!(
            "{} bytes echoed intact by {addr}, source {} kept",
            r.bytes, r.source
        ))
    }

    async fn connectivity(&mut self, p: &mut Progress<'_>) -> Result<()> {
        let (from, to) = (self.from.id.clone(), self.to.id.clone());
        let echo_server = nettest(&["echo-server", "--port", &ECHO_PORT.to_string()]);
        let started = Instant::now();
        let non_gw = self.server(false, echo_server.clone(), "verify-echo").await;
        let gw = self.server(true, echo_server, "verify-echo-gw").await;
        for (name, client_gw, server) in [
            (
                format!("connectivity: non-gateway pod in {from} to non-gateway pod in {to}"),
                false,
                &non_gw,
            ),
            (
                format!("connectivity: gateway-node pod in {from} to gateway-node pod in {to}"),
                true,
                &gw,
            ),
        ] {
            let t = if self.cases.is_empty() {
                started
            } else {
                Instant::now()
            };
            let r = match server {
                Ok(ips) => match self
                    .reach(
                        ips,
                        if client_gw {
                            "verify-echo-gw"
                        } else {
                            "verify-echo"
                        },
                    )
                    .await
                {
                    Ok(addr) => self.echo(client_gw, addr, true).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            self.record(name, t, r, p);
        }
        if self.to.global_cidr.is_some() {
            // Under Globalnet the pod checks above already went through Services' global IPs.
            self.skip(
                format!("connectivity: non-gateway pod in {from} to a Service's ClusterIP in {to}"),
                "with Globalnet a remote ClusterIP is not routable (clusters may share CIDRs); Services are reached at their global IPs, checked above",
                p,
            );
            self.skip(
                format!("connectivity: non-gateway pod in {from} to non-gateway pod in {to} over IPv6"),
                "Globalnet is IPv4-only",
                p,
            );
            return Ok(());
        }
        let name = format!("connectivity: non-gateway pod in {from} to a Service's ClusterIP in {to}");
        let t = Instant::now();
        let r = match &non_gw {
            Ok(_) => match self
                .service(&self.to.client.clone(), "verify-echo", ECHO_PORT, ECHO_PORT)
                .await
            {
                Ok(ip) => self.echo(false, ip, false).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(anyhow::anyhow!("{e:#}")),
        };
        self.record(name, t, r, p);
        let name = format!("connectivity: non-gateway pod in {from} to non-gateway pod in {to} over IPv6");
        match &non_gw {
            Ok(ips) if ips.len() > 1 => {
                let t = Instant::now();
                let r = self.echo(false, ips[1].clone(), true).await;
                self.record(name, t, r, p);
            }
            _ => self.skip(
                name,
                "the server pod has no IPv6 address (single-stack cluster)",
                p,
            ),
        }
        Ok(())
    }

    /// Takes the destination's active gateway out of the election (removes its node's gateway
    /// label, as an operator draining it would), checks that another gateway takes over and
    /// that pod traffic flows again, then puts the label back.
    async fn gateway_failover(&mut self, p: &mut Progress<'_>) -> Result<()> {
        let to = self.to.id.clone();
        let name = format!(
            "gateway-failover: {to}'s active gateway fails over and traffic from {} resumes",
            self.from.id
        );
        let (nodes, _) = pods::placement(&self.to.client).await?;
        if nodes.iter().filter(|(_, g)| *g).count() < 2 {
            self.skip(name, "needs two gateway nodes in the destination cluster", p);
            return Ok(());
        }
        let t = Instant::now();
        let old = match wait_active_other(&self.to.client, "", self.opts.timeout).await {
            Ok(a) => a,
            Err(e) => {
                self.record(name, t, Err(e), p);
                return Ok(());
            }
        };
        let echo = nettest(&["echo-server", "--port", &ECHO_PORT.to_string()]);
        let r: Result<String> = async {
            let ips = self.server(false, echo, "verify-failover").await?;
            let addr = self.reach(&ips, "verify-failover").await?;
            self.echo(false, addr.clone(), true)
                .await
                .context("before the failover")?;
            label_gateway(&self.to.client, &old, false).await?;
            let moved = Instant::now();
            let new = wait_active_other(&self.to.client, &old, self.opts.timeout).await;
            let relabel = label_gateway(&self.to.client, &old, true).await;
            let new = new?;
            relabel?;
            let took = moved.elapsed().as_secs_f64();
            let echoed = Instant::now();
            self.echo(false, addr, true).await.context("after the failover")?;
            Ok(format!(
                "{old} → {new} in {took:.1} s, traffic flowing {:.1} s later",
                echoed.elapsed().as_secs_f64()
            ))
        }
        .await;
        self.record(name, t, r, p);
        Ok(())
    }

    /// The address a client in the other cluster reaches a server pod at: its own address, or
    /// under Globalnet the global IP of an exported Service in front of it.
    async fn reach(&self, ips: &[String], app: &str) -> Result<String> {
        if self.to.global_cidr.is_none() {
            return Ok(ips[0].clone());
        }
        self.service(&self.to.client.clone(), app, ECHO_PORT, ECHO_PORT)
            .await?;
        let export = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": app, "namespace": self.opts.namespace, "labels": {pods::LABEL: "true"}}});
        cluster::apply(&self.to.client, &export)
            .await
            .context("exporting the echo Service")?;
        global_ip(&self.to.client, &self.opts.namespace, app, self.opts.timeout).await
    }

    /// Creates a ClusterIP Service selecting `app`; returns its address.
    async fn service(&self, client: &Client, app: &str, port: u16, target: u16) -> Result<String> {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": app, "namespace": self.opts.namespace, "labels": {pods::LABEL: "true"}},
            // Dual-stack where the cluster is, so that an IPv6 ClusterSetIP is checked too.
            "spec": {"selector": {"app": app}, "ipFamilyPolicy": "PreferDualStack",
                "ports": [{"name": "tcp", "port": port, "targetPort": target, "protocol": "TCP"}]}});
        let (obj, _) = cluster::apply(client, &svc)
            .await
            .with_context(|| format!("creating Service {}/{app}", self.opts.namespace))?;
        let v = serde_json::to_value(obj)?;
        v["spec"]["clusterIP"]
            .as_str()
            .filter(|ip| *ip != "None" && !ip.is_empty())
            .map(String::from)
            .with_context(|| format!("Service {}/{app} got no ClusterIP", self.opts.namespace))
    }

    async fn service_discovery(&mut self, p: &mut Progress<'_>) -> Result<()> {
        let (from, to) = (self.from.id.clone(), self.to.id.clone());
        let ns = self.opts.namespace.clone();
        let name = format!("service-discovery: {WEB}.{ns}.svc.clusterset.local from {from} reaches {to}");
        let setup: Result<()> = async {
            let cmd = nettest(&["http-server", "--port", "8080", "--cluster", &to]);
            self.server(false, cmd, WEB).await?;
            self.service(&self.to.client.clone(), WEB, 80, 8080).await?;
            let export = json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                "metadata": {"name": WEB, "namespace": ns, "labels": {pods::LABEL: "true"}}});
            cluster::apply(&self.to.client, &export)
                .await
                .context("creating the ServiceExport (are the subsea CRDs installed? run `subctl join`)")?;
            Ok(())
        }
        .await;
        let fqdn = format!("{WEB}.{ns}.svc.clusterset.local");
        let expect = format!("cluster={to}");
        let get = |host: &str| {
            nettest(&[
                "http-get",
                &format!("http://{host}/health"),
                "--expect",
                &expect,
                "--timeout",
                "60",
            ])
        };
        let specific = format!("{to}.{fqdn}");
        // A service with a ClusterSetIP has no cluster-specific name by default (the MCS DNS
        // spec's rule; `lighthouse-dns --cluster-names always` serves it as Lighthouse does).
        let vip = clusterset_ip_default(&self.to.client).await;
        let mut checks = vec![(name, fqdn.clone())];
        if vip {
            p.info(format!(
                "Not checking {specific}: a service with a ClusterSetIP has no cluster-specific name unless lighthouse-dns runs with --cluster-names always"
            ));
        } else {
            checks.push((
                format!("service-discovery: {specific} names the exporting cluster"),
                specific.clone(),
            ));
        }
        for (name, host) in checks {
            let t = Instant::now();
            let r = match &setup {
                Ok(()) => self
                    .client::<Fetched>(false, get(&host))
                    .await
                    .map(|(f, _)| format!("answered {} from {}", f.body.trim(), f.address)),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            self.record(name, t, r, p);
        }
        match (&setup, clusterset_ip_default(&self.from.client).await) {
            (Ok(()), true) => {
                let t = Instant::now();
                match wait_vips(&self.from.client, &ns, WEB, self.opts.timeout).await {
                    // One check per family: a dual-stack service has a VIP of each.
                    Ok(vips) => {
                        for vip in vips {
                            let name =
                                format!("service-discovery: the ClusterSetIP {vip} of {fqdn} from {from} reaches {to}");
                            let t = Instant::now();
                            let host = if vip.is_ipv6() {
                                format!("[{vip}]")
                            } else {
                                vip.to_string()
                            };
                            let r = self
                                .client::<Fetched>(false, get(&host))
                                .await
                                .map(|(f, _)| format!("answered {} from {}", f.body.trim(), f.address));
                            self.record(name, t, r, p);
                        }
                    }
                    Err(e) => {
                        let name = format!("service-discovery: the ClusterSetIP of {fqdn} from {from} reaches {to}");
                        self.record(name, t, Err(e), p);
                    }
                }
            }
            // Not a skipped check: most cluster sets do not use ClusterSetIPs at all.
            (Ok(()), false) => p.info(format!(
                "Not checking a ClusterSetIP: {from} does not give exports one by default (subctl deploy-broker or join --enable-clusterset-ip)"
            )),
            (Err(_), _) => {}
        }
        let name = format!("service-discovery: after unexport, {fqdn} no longer resolves in {from}");
        let t = Instant::now();
        let r = match &setup {
            Ok(()) => {
                let api = cluster::api(
                    &self.to.client,
                    "multicluster.x-k8s.io/v1alpha1",
                    "ServiceExport",
                    Some(&ns),
                )?;
                cluster::delete(&api, WEB).await?;
                self.client::<serde_json::Value>(
                    false,
                    nettest(&["resolve", &fqdn, "--absent", "--timeout", "60"]),
                )
                .await
                .map(|_| "NXDOMAIN".to_string())
            }
            Err(e) => Err(anyhow::anyhow!("{e:#}")),
        };
        self.record(name, t, r, p);
        Ok(())
    }
}

/// Whether the cluster's exports get a ClusterSetIP by default (its ServiceDiscovery object).
async fn clusterset_ip_default(client: &Client) -> bool {
    let Ok(api) = cluster::api(
        client,
        "submariner.io/v1alpha1",
        "ServiceDiscovery",
        Some(subsea_broker::OPERATOR_NAMESPACE),
    ) else {
        return false;
    };
    match api.get_opt("service-discovery").await {
        Ok(Some(sd)) => sd.data["spec"]["clustersetIPEnabled"] == true,
        _ => false,
    }
}

/// Waits for the ClusterSetIPs (one per family) of the ServiceImport `ns/svc`.
async fn wait_vips(client: &Client, ns: &str, svc: &str, timeout: Duration) -> Result<Vec<std::net::IpAddr>> {
    let api = cluster::api(
        client,
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceImport",
        Some(ns),
    )?;
    let start = Instant::now();
    loop {
        if let Ok(Some(si)) = api.get_opt(svc).await {
            let ips: Vec<std::net::IpAddr> = si.data["spec"]["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|ip| ip.as_str()?.parse().ok())
                .collect();
            if !ips.is_empty() {
                return Ok(ips);
            }
        }
        if start.elapsed() > timeout {
            bail!("ServiceImport {ns}/{svc} got no ClusterSetIP within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits for the GlobalIngressIP of an exported Service.
async fn global_ip(client: &Client, ns: &str, svc: &str, timeout: Duration) -> Result<String> {
    let api = cluster::api(client, "submariner.io/v1", "GlobalIngressIP", Some(ns))?;
    let start = Instant::now();
    loop {
        if let Ok(Some(g)) = api.get_opt(svc).await {
            if let Some(ip) = g.data["status"]["allocatedIP"]
                .as_str()
                .filter(|ip| !ip.is_empty())
            {
                return Ok(ip.to_string());
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "Service {ns}/{svc} got no global IP within {timeout:?}: is `subsea globalnet` running on the active gateway? (`kubectl get globalingressips -n {ns}`)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every global egress IP a pod of `ns` may leave its cluster with: the namespace's
/// GlobalEgressIPs and the cluster-wide pool.
async fn egress_ips(client: &Client, ns: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (kind, scope) in [("ClusterGlobalEgressIP", None), ("GlobalEgressIP", Some(ns))] {
        let list = cluster::api(client, "submariner.io/v1", kind, scope)?
            .list(&kube::api::ListParams::default())
            .await
            .map_err(cluster::readable)?;
        for o in list.items {
            out.extend(
                o.data["status"]["allocatedIPs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from)),
            );
        }
    }
    Ok(out)
}

async fn label_gateway(client: &Client, node: &str, on: bool) -> Result<()> {
    use kube::api::{Patch, PatchParams};
    let value = if on {
        json!("true")
    } else {
        serde_json::Value::Null
    };
    cluster::api(client, "v1", "Node", None)?
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"submariner.io/gateway": value}}})),
        )
        .await
        .map_err(cluster::readable)
        .with_context(|| format!("labelling node {node}"))?;
    Ok(())
}

/// Waits until a gateway other than `old` (any, when `old` is empty) is the active one.
async fn wait_active_other(client: &Client, old: &str, timeout: Duration) -> Result<String> {
    let start = Instant::now();
    loop {
        if let (_, Some(a)) = pods::placement(client).await?
            && a != old
        {
            return Ok(a);
        }
        if start.elapsed() > timeout {
            bail!("no other gateway became active within {timeout:?} after {old} stepped down");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the chosen checks from `from` to `to`; returns one case per check. Everything created
/// is removed afterwards, whatever the outcome.
pub async fn run(from: &Target, to: &Target, opts: &Options, p: &mut Progress<'_>) -> Result<Vec<Case>> {
    let (a, b) = (Side::new(from).await?, Side::new(to).await?);
    if a.id == b.id {
        bail!(
            "--context and --tocontext are the same cluster ({}): pick two different clusters",
            a.id
        );
    }
    p.info(format!(
        "verifying from {} to {} in namespace {} with image {}",
        a.id, b.id, opts.namespace, opts.image
    ));
    for side in [&a, &b] {
        pods::namespace(&side.client, &opts.namespace).await?;
        pods::cleanup(&side.client, &opts.namespace).await;
    }
    let mut run = Run {
        from: a,
        to: b,
        opts,
        cases: vec![],
        seq: 0,
    };
    let mut result = Ok(());
    for suite in &opts.suites {
        result = match suite {
            Suite::Connectivity => run.connectivity(p).await,
            Suite::ServiceDiscovery => run.service_discovery(p).await,
            Suite::GatewayFailover => run.gateway_failover(p).await,
        };
        if result.is_err() {
            break;
        }
    }
    for side in [&run.from, &run.to] {
        pods::cleanup(&side.client, &opts.namespace).await;
    }
    result.map(|()| run.cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_takes_submariners_names() {
        assert_eq!(
            parse_only("").expect("all"),
            vec![Suite::Connectivity, Suite::ServiceDiscovery]
        );
        assert_eq!(
            parse_only("service-discovery, connectivity,connectivity").expect("two"),
            vec![Suite::ServiceDiscovery, Suite::Connectivity]
        );
        let e = parse_only("conectivity").unwrap_err().to_string();
        assert!(
            e.contains("conectivity") && e.contains("service-discovery"),
            "{e}"
        );
        assert_eq!(
            parse_only("gateway-failover").expect("one"),
            vec![Suite::GatewayFailover]
        );
    }
}
