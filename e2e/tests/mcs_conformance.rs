//! The conformance cases of kubernetes-sigs/mcs-api (`conformance/*.go`), re-scripted one to
//! one against a two-cluster sandbox (needs root) with ClusterSetIPs on by default. Each case
//! is named after the spec it re-scripts, runs in its own namespace (present in both clusters,
//! as the suite's are) with the suite's `hello` service (one port named `tcp`, 42/TCP), and
//! waits as the suite does (eventually within 20–30 s, consistently for 5 s).
//!
//! One case cannot run as written: the sandbox has no cluster DNS (`cluster.local` is an empty
//! zone of the Lighthouse DNS server), so "DNS lookups of `<svc>.<ns>.svc.cluster.local` only
//! resolve local services" is checked for its multi-cluster half only: the name never answers
//! the ClusterSetIP or another cluster's address.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;
use subsea_e2e::sandbox::harness::{self, eventually, is_root};
use subsea_e2e::sandbox::{Pod, Sandbox, kubectl_stdin, sys};

const C1: &str = "cluster1";
const C2: &str = "cluster2";
const CLUSTERS: [&str; 2] = [C1, C2];
const WAIT: Duration = Duration::from_secs(30);
const MCS_SERVICE_NAME: &str = "multicluster.kubernetes.io/service-name";

/// `f` holds on every probe for `within` (one probe a second).
fn consistently(what: &str, within: Duration, f: impl Fn() -> Result<()>) {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Err(e) = f() {
            panic!("not consistently {what}: {e:#}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

struct Suite<'a> {
    sb: &'a mut Sandbox,
    /// A request pod in each cluster.
    clients: Vec<Pod>,
}

impl Suite<'_> {
    fn spec(&self, name: &str) {
        eprintln!("\n=== mcs-api conformance: {name}");
    }

    /// A fresh namespace in both clusters.
    fn namespace(&self, name: &str) -> String {
        let ns = format!("mcs-{name}");
        for c in CLUSTERS {
            let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
            kubectl_stdin(&self.sb.kubeconfig(), c, &["apply", "-f", "-"], &yaml).expect("namespace");
        }
        ns
    }

    fn apply(&self, cluster: &str, yaml: &str) {
        kubectl_stdin(&self.sb.kubeconfig(), cluster, &["apply", "-f", "-"], yaml).expect("kubectl apply");
    }

    fn kubectl(&self, cluster: &str, args: &[&str]) -> Result<String> {
        self.sb.kubectl(cluster, args)
    }

    /// The suite's hello service and its pods.
    fn hello(&mut self, cluster: &str, ns: &str, headless: bool, replicas: usize) {
        self.sb
            .deploy(cluster, "hello", ns, replicas, headless, 42, 8080)
            .expect("hello service");
        self.patch_service(
            cluster,
            ns,
            "json",
            r#"[{"op":"replace","path":"/spec/ports/0/name","value":"tcp"}]"#,
        );
    }

    fn patch_service(&self, cluster: &str, ns: &str, kind: &str, patch: &str) {
        self.kubectl(
            cluster,
            &[
                "patch",
                "service",
                "hello",
                "-n",
                ns,
                &format!("--type={kind}"),
                "-p",
                patch,
            ],
        )
        .expect("service patch");
    }

    /// The suite's two-cluster driver: a fresh namespace where cluster1 exports `hello` first,
    /// then cluster2 exports its own (headless, or with `patch2`, a JSON patch, applied to it).
    fn exported_by_both(&mut self, name: &str, headless2: bool, patch2: Option<&str>) -> String {
        let ns = self.namespace(name);
        self.hello(C1, &ns, false, 1);
        self.export(C1, &ns);
        self.await_import(C1, &ns, |_| Ok(()));
        self.hello(C2, &ns, headless2, 1);
        if let Some(patch) = patch2 {
            self.patch_service(C2, &ns, "json", patch);
        }
        self.export(C2, &ns);
        ns
    }

    /// Exports `hello` as the suite does: a ServiceExport object.
    fn export(&self, cluster: &str, ns: &str) {
        self.apply(
            cluster,
            &format!("apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: hello, namespace: {ns}}}\n"),
        );
    }

    fn unexport(&self, cluster: &str, ns: &str) {
        self.kubectl(cluster, &["delete", "serviceexport", "hello", "-n", ns])
            .expect("unexport");
    }

    /// The ServiceImport `hello`, `None` when there is none.
    fn import(&self, cluster: &str, ns: &str) -> Result<Option<Value>> {
        let out = self.kubectl(
            cluster,
            &[
                "get",
                "serviceimport",
                "hello",
                "-n",
                ns,
                "--ignore-not-found",
                "-o",
                "json",
            ],
        )?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&out)?))
    }

    fn await_import(&self, cluster: &str, ns: &str, check: impl Fn(&Value) -> Result<()>) -> Value {
        eventually(&format!("the ServiceImport in {cluster}"), WAIT, || {
            match self.import(cluster, ns)? {
                Some(si) => check(&si).map(|()| si),
                None => bail!("no ServiceImport hello in {cluster}/{ns}"),
            }
        })
    }

    fn await_no_import(&self, cluster: &str, ns: &str) {
        eventually(&format!("no ServiceImport in {cluster}"), WAIT, || {
            match self.import(cluster, ns)? {
                Some(_) => bail!("ServiceImport hello still in {cluster}/{ns}"),
                None => Ok(()),
            }
        });
    }

    /// The status of the export's condition `kind`.
    fn condition(&self, cluster: &str, ns: &str, kind: &str) -> Result<String> {
        self.kubectl(
            cluster,
            &[
                "get",
                "serviceexport",
                "hello",
                "-n",
                ns,
                "-o",
                &format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}"),
            ],
        )
    }

    fn await_condition(&self, cluster: &str, ns: &str, kind: &str, status: &str) {
        eventually(&format!("{kind}={status} on {cluster}'s export"), WAIT, || {
            let got = self.condition(cluster, ns, kind)?;
            if got != status {
                bail!("{kind} is {got:?}");
            }
            Ok(())
        });
    }

    /// `dig +short` from the request pod of `cluster`, one answer per line, sorted.
    fn dig(&self, cluster: &str, kind: &str, name: &str) -> Result<Vec<String>> {
        let pod = &self.clients[usize::from(cluster == C2)];
        let out = sys::exec_in(&pod.netns, &["dig", "+short", "+time=1", "+tries=1", kind, name])?;
        let mut lines: Vec<String> = out
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        Ok(lines)
    }

    /// SRV answers as (port, target without the final dot), sorted.
    fn srv(&self, cluster: &str, name: &str) -> Result<Vec<(u16, String)>> {
        self.dig(cluster, "SRV", name)?
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    [_, _, port, target] => Ok((port.parse()?, target.trim_end_matches('.').to_string())),
                    _ => bail!("not an SRV answer: {l:?}"),
                }
            })
            .collect()
    }

    /// The EndpointSlices of `hello` in `cluster` selected by `label` (the MCS one or
    /// Kubernetes' own).
    fn slices(&self, cluster: &str, ns: &str, label: &str) -> Result<Vec<Value>> {
        let out = self.kubectl(
            cluster,
            &[
                "get",
                "endpointslices",
                "-n",
                ns,
                "-l",
                &format!("{label}=hello"),
                "-o",
                "json",
            ],
        )?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    fn curl(&self, cluster: &str, url: &str) -> String {
        let pod = &self.clients[usize::from(cluster == C2)];
        sys::exec_in(&pod.netns, &["curl", "-s", "-m", "2", url]).unwrap_or_default()
    }
}

/// `spec.ports` as sorted (name, port, protocol).
fn ports(si: &Value) -> Vec<(String, i64, String)> {
    let mut out: Vec<(String, i64, String)> = si["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["port"].as_i64().unwrap_or_default(),
                p["protocol"].as_str().unwrap_or("TCP").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn tcp42() -> (String, i64, String) {
    ("tcp".into(), 42, "TCP".into())
}

fn kind_is(si: &Value, want: &str) -> Result<()> {
    match si["spec"]["type"].as_str() {
        Some(t) if t == want => Ok(()),
        other => bail!("type {other:?}, not {want}"),
    }
}

#[test]
fn the_mcs_api_conformance_cases_hold() {
    assert!(
        is_root(),
        "the sandbox e2e test needs root: run the suite as root, as .ci/run does"
    );
    let mut up = harness::up_clusterset_ip("mcsconf", 2, false).expect("sandbox comes up");
    let sb = &mut up.0;
    let clients = CLUSTERS
        .iter()
        .map(|c| sb.add_pod(c, &format!("{c}-worker"), "request", "default"))
        .collect::<Result<Vec<_>>>()
        .expect("request pods");
    let mut s = Suite { sb, clients };

    // ---- service_import.go: testGeneralServiceImport
    s.spec("A ServiceImport should only exist as long as there's at least one exporting cluster");
    let ns = s.exported_by_both("lifetime", false, None);
    s.await_import(C1, &ns, |si| {
        let n = si["status"]["clusters"].as_array().map_or(0, Vec::len);
        if n != 2 {
            bail!("{n} exporting clusters");
        }
        Ok(())
    });
    s.unexport(C1, &ns);
    consistently("imported while cluster2 exports", Duration::from_secs(5), || {
        s.import(C1, &ns)?
            .map(|_| ())
            .ok_or_else(|| anyhow::anyhow!("the ServiceImport went"))
    });
    s.unexport(C2, &ns);
    s.await_no_import(C1, &ns);

    s.spec("Only labels and annotations specified as exported in the ServiceExport should be propagated to the ServiceImport");
    let ns = s.namespace("labels");
    s.hello(C1, &ns, false, 1);
    s.patch_service(
        C1,
        &ns,
        "merge",
        r#"{"metadata":{"labels":{"svc-label":"true"},"annotations":{"svc-annotation":"true"}}}"#,
    );
    let export_v1beta1 = |ns: &str, suffix: &str| {
        format!(
            "apiVersion: multicluster.x-k8s.io/v1beta1\nkind: ServiceExport\nmetadata: {{name: hello, namespace: {ns}}}\n\
             spec:\n  exportedLabels: {{dummy-label{suffix}: \"true\"}}\n  exportedAnnotations: {{dummy-annotation{suffix}: \"true\"}}\n"
        )
    };
    s.apply(C1, &export_v1beta1(&ns, ""));
    s.await_import(C1, &ns, |si| {
        let m = &si["metadata"];
        if m["labels"]["dummy-label"] != "true" || m["annotations"]["dummy-annotation"] != "true" {
            bail!("exported labels/annotations missing: {m}");
        }
        if !m["labels"]["svc-label"].is_null() || !m["annotations"]["svc-annotation"].is_null() {
            bail!("the Service's own labels/annotations leaked: {m}");
        }
        Ok(())
    });

    s.spec("A service exported on two clusters with conflicting annotations and labels should apply the conflict resolution policy and report a Conflict condition on each ServiceExport");
    s.hello(C2, &ns, false, 1);
    s.apply(C2, &export_v1beta1(&ns, "2"));
    for c in CLUSTERS {
        s.await_condition(c, &ns, "Conflict", "True");
    }
    s.await_import(C1, &ns, |si| {
        let m = &si["metadata"];
        if m["labels"]["dummy-label"] != "true" || !m["labels"]["dummy-label2"].is_null() {
            bail!("not the first export's labels: {m}");
        }
        if m["annotations"]["dummy-annotation"] != "true" || !m["annotations"]["dummy-annotation2"].is_null()
        {
            bail!("not the first export's annotations: {m}");
        }
        Ok(())
    });

    // ---- service_import.go: testClusterIPServiceImport
    s.spec("Exporting a ClusterIP service should create a ServiceImport of type ClusterSetIP in the service's namespace in each cluster. Unexporting should delete the ServiceImport");
    let ns = s.namespace("clusterip");
    s.hello(C1, &ns, false, 1);
    s.patch_service(
        C1,
        &ns,
        "merge",
        r#"{"spec":{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":600}}}}"#,
    );
    s.export(C1, &ns);
    for c in CLUSTERS {
        s.await_import(c, &ns, |si| kind_is(si, "ClusterSetIP"));
    }

    s.spec("The SessionAffinity for a ClusterSetIP ServiceImport should match the exported service's SessionAffinity");
    s.await_import(C1, &ns, |si| {
        if si["spec"]["sessionAffinity"] != "ClientIP"
            || si["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] != 600
        {
            bail!(
                "affinity {} / {}",
                si["spec"]["sessionAffinity"],
                si["spec"]["sessionAffinityConfig"]
            );
        }
        Ok(())
    });

    s.spec("An IP should be allocated for a ClusterSetIP ServiceImport");
    let si = s.await_import(C1, &ns, |si| match si["spec"]["ips"][0].as_str() {
        Some(_) => Ok(()),
        None => bail!("no spec.ips"),
    });
    let vip = si["spec"]["ips"][0].as_str().unwrap_or_default().to_string();
    assert!(
        vip.parse::<std::net::IpAddr>().is_ok(),
        "{vip:?} is not a valid IP"
    );

    s.spec("The ports for a ClusterSetIP ServiceImport should match those of the exported service");
    s.await_import(C1, &ns, |si| match ports(si) == [tcp42()] {
        true => Ok(()),
        false => bail!("ports {:?}", ports(si)),
    });

    // ---- clusterip_service_dns.go (the same export)
    let fqdn = format!("hello.{ns}.svc.clusterset.local");
    s.spec("A DNS lookup of the <service>.<ns>.svc.clusterset.local domain for a ClusterIP service should resolve to the clusterset IP");
    for c in CLUSTERS {
        eventually(&format!("{fqdn} in {c}"), WAIT, || {
            match s.dig(c, "A", &fqdn)? {
                got if got == [vip.clone()] => Ok(()),
                got => bail!("{got:?}"),
            }
        });
    }
    s.spec("A DNS SRV query of the <service>.<ns>.svc.clusterset.local domain for a ClusterIP service should return valid SRV records");
    for c in CLUSTERS {
        eventually(&format!("SRV {fqdn} in {c}"), WAIT, || match s.srv(c, &fqdn)? {
            got if got == [(42, fqdn.clone())] => Ok(()),
            got => bail!("{got:?}"),
        });
    }
    s.spec("DNS lookups of the <service>.<ns>.svc.cluster.local domain for a ClusterIP service should only resolve local services (multi-cluster half)");
    let local_name = format!("hello.{ns}.svc.cluster.local");
    for c in CLUSTERS {
        let got = s.dig(c, "A", &local_name).expect("dig");
        assert!(
            !got.contains(&vip),
            "{local_name} answered the ClusterSetIP in {c}: {got:?}"
        );
        assert!(
            got.iter().all(|a| !a.starts_with("100.65.")) || c == C1,
            "{local_name} in {c} answered cluster1's service: {got:?}"
        );
    }

    s.spec("Exporting a ClusterIP service ... Unexporting should delete the ServiceImport (each cluster)");
    s.unexport(C1, &ns);
    for c in CLUSTERS {
        s.await_no_import(c, &ns);
    }

    s.spec("A ClusterIP service exported on two clusters should expose the union of the constituent service ports");
    let ns = s.exported_by_both(
        "union",
        false,
        Some(r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"stcp","port":142,"protocol":"SCTP"}}]"#),
    );
    let union = vec![("stcp".to_string(), 142, "SCTP".to_string()), tcp42()];
    s.await_import(C1, &ns, |si| match ports(si) == union {
        true => Ok(()),
        false => bail!("ports {:?}", ports(si)),
    });

    s.spec("A ClusterIP service exported on two clusters with conflicting ports should apply the conflict resolution policy and report a Conflict condition on each ServiceExport");
    let ns = s.exported_by_both(
        "portconflict",
        false,
        Some(r#"[{"op":"replace","path":"/spec/ports/0/port","value":43}]"#),
    );
    for c in CLUSTERS {
        s.await_condition(c, &ns, "Conflict", "True");
    }
    s.await_import(C1, &ns, |si| match ports(si) == [tcp42()] {
        true => Ok(()),
        false => bail!(
            "the service ports were not resolved to the first export's: {:?}",
            ports(si)
        ),
    });

    // ---- service_import.go: testHeadlessServiceImport
    s.spec("Exporting a headless service should create a ServiceImport of type Headless in the service's namespace in each cluster. Unexporting should delete the ServiceImport");
    let ns = s.namespace("headless");
    s.hello(C1, &ns, true, 1);
    s.export(C1, &ns);
    for c in CLUSTERS {
        s.await_import(c, &ns, |si| kind_is(si, "Headless"));
    }
    s.spec("No clusterset IP should be allocated for a Headless ServiceImport");
    consistently("no IP for a headless import", Duration::from_secs(5), || match s
        .import(C1, &ns)?
        .map(|si| si["spec"]["ips"].clone())
    {
        Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        other => bail!("ips {other:?}"),
    });
    s.unexport(C1, &ns);
    for c in CLUSTERS {
        s.await_no_import(c, &ns);
    }

    // ---- service_import.go: testExternalNameService
    s.spec("Exporting an ExternalName service should set ServiceExport Valid condition to False");
    let ns = s.namespace("externalname");
    s.apply(
        C1,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: hello, namespace: {ns}}}\nspec: {{type: ExternalName, externalName: example.com}}\n"
        ),
    );
    s.export(C1, &ns);
    s.await_condition(C1, &ns, "Valid", "False");
    consistently(
        "no ServiceImport for an ExternalName service",
        Duration::from_secs(5),
        || match s.import(C1, &ns)? {
            None => Ok(()),
            Some(_) => bail!("a ServiceImport exists"),
        },
    );

    // ---- service_import.go: testServiceTypeConflict
    s.spec("A service exported on two clusters with conflicting headlessness should apply the conflict resolution policy and report a Conflict condition on the ServiceExport");
    let ns = s.exported_by_both("typeconflict", true, None);
    for c in CLUSTERS {
        s.await_condition(c, &ns, "Conflict", "True");
    }
    for c in CLUSTERS {
        s.await_import(c, &ns, |si| kind_is(si, "ClusterSetIP"));
    }

    // ---- endpoint_slice.go
    s.spec("Exporting a service should create an MCS EndpointSlice in the service's namespace in each cluster with the required MCS labels. Unexporting should delete the EndpointSlice.");
    let ns = s.namespace("slices");
    s.hello(C1, &ns, false, 1);
    s.export(C1, &ns);
    let mut names = Vec::new();
    for c in CLUSTERS {
        let name = eventually(&format!("an MCS EndpointSlice in {c}"), WAIT, || {
            let Some(sl) = s.slices(c, &ns, MCS_SERVICE_NAME)?.into_iter().next() else {
                bail!("none");
            };
            let labels = &sl["metadata"]["labels"];
            if labels["multicluster.kubernetes.io/source-cluster"]
                .as_str()
                .is_none()
            {
                bail!("no source-cluster label: {labels}");
            }
            match labels["endpointslice.kubernetes.io/managed-by"].as_str() {
                Some(m) if m != "endpointslice-controller.k8s.io" => {}
                other => bail!("managed-by {other:?}"),
            }
            Ok(sl["metadata"]["name"].as_str().unwrap_or_default().to_string())
        });
        names.push(name);
    }
    s.unexport(C1, &ns);
    for (c, name) in CLUSTERS.iter().zip(&names) {
        eventually(
            &format!("the MCS EndpointSlice leaves {c}"),
            Duration::from_secs(20),
            || {
                let out = s.kubectl(
                    c,
                    &[
                        "get",
                        "endpointslice",
                        name,
                        "-n",
                        &ns,
                        "--ignore-not-found",
                        "-o",
                        "name",
                    ],
                )?;
                if !out.trim().is_empty() {
                    bail!("{name} still there");
                }
                Ok(())
            },
        );
    }

    // ---- headless_service_dns.go
    s.spec("A DNS query of the <service>.<ns>.svc.clusterset.local domain for a headless service should return the ready endpoint addresses of all the backing pods");
    let ns = s.namespace("headlessdns");
    s.hello(C1, &ns, true, 2);
    s.export(C1, &ns);
    let fqdn = format!("hello.{ns}.svc.clusterset.local");
    // The ready endpoints (address, hostname or dashed address) of cluster1's own slices.
    let endpoints: Vec<(String, String)> = eventually("two ready endpoints in cluster1", WAIT, || {
        let eps: Vec<(String, String)> = s
            .slices(C1, &ns, "kubernetes.io/service-name")?
            .iter()
            .filter(|sl| sl["addressType"] == "IPv4")
            .flat_map(|sl| sl["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] != false)
            .flat_map(|e| {
                let host = e["hostname"].as_str().map(String::from);
                e["addresses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(move |a| {
                        let a = a.as_str()?.to_string();
                        Some((a.clone(), host.clone().unwrap_or_else(|| a.replace('.', "-"))))
                    })
            })
            .collect();
        if eps.len() != 2 {
            bail!("{eps:?}");
        }
        Ok(eps)
    });
    let addresses: Vec<String> = endpoints
        .iter()
        .map(|e| e.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for c in CLUSTERS {
        eventually(&format!("{fqdn} in {c}"), WAIT, || {
            match s.dig(c, "A", &fqdn)? {
                got if got == addresses => Ok(()),
                got => bail!("{got:?}, not {addresses:?}"),
            }
        });
    }
    s.spec("A DNS SRV query of the <service>.<ns>.svc.clusterset.local domain for a headless service should return valid SRV records");
    for c in CLUSTERS {
        eventually(&format!("SRV {fqdn} in {c}"), WAIT, || {
            let got = s.srv(c, &fqdn)?;
            if got.len() != endpoints.len() {
                bail!("{} records for {} endpoints: {got:?}", got.len(), endpoints.len());
            }
            for (_, host) in &endpoints {
                match got.iter().find(|(_, t)| t.starts_with(host.as_str())) {
                    Some((42, _)) => {}
                    other => bail!("for {host}: {other:?} in {got:?}"),
                }
            }
            Ok(())
        });
    }

    s.spec("A DNS query of the <hostname>.<clusterid>.<service>.<ns>.svc.clusterset.local domain for a headless StatefulSet service should return the requested pod's endpoint address");
    let ns = s.namespace("statefulset");
    s.apply(
        C1,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: hello, namespace: {ns}}}\n\
             spec: {{clusterIP: None, selector: {{app: hello}}, ports: [{{name: tcp, port: 42, protocol: TCP}}]}}\n---\n\
             apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: hello, namespace: {ns}}}\n\
             spec:\n  serviceName: hello\n  replicas: 2\n  selector: {{matchLabels: {{app: hello}}}}\n  template:\n    metadata: {{labels: {{app: hello}}}}\n    spec: {{containers: [{{name: hello, image: hello:1, command: [sleep, \"3600\"]}}]}}\n"
        ),
    );
    s.export(C1, &ns);
    for c in CLUSTERS {
        let slice = eventually(
            &format!("the StatefulSet's MCS EndpointSlice in {c}"),
            WAIT,
            || {
                let Some(sl) = s
                    .slices(c, &ns, MCS_SERVICE_NAME)?
                    .into_iter()
                    .find(|s| s["addressType"] == "IPv4")
                else {
                    bail!("none");
                };
                let eps = sl["endpoints"].as_array().cloned().unwrap_or_default();
                if eps.len() != 2
                    || eps.iter().any(|e| {
                        e["conditions"]["ready"] == false
                            || e["hostname"].as_str().unwrap_or_default().is_empty()
                    })
                {
                    bail!("endpoints {eps:?}");
                }
                Ok(sl)
            },
        );
        let cluster_id = slice["metadata"]["labels"]["multicluster.kubernetes.io/source-cluster"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            let name = format!(
                "{}.{cluster_id}.hello.{ns}.svc.clusterset.local",
                e["hostname"].as_str().unwrap_or_default()
            );
            let want: Vec<String> = e["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            eventually(&format!("{name} in {c}"), WAIT, || {
                match s.dig(c, "A", &name)? {
                    got if got == want => Ok(()),
                    got => bail!("{got:?}, not {want:?}"),
                }
            });
        }
    }

    // ---- connectivity.go
    s.spec("Connectivity to remote services with no exported service should be inaccessible");
    let ns = s.namespace("connectivity");
    s.hello(C1, &ns, false, 1);
    let url = format!("http://hello.{ns}.svc.clusterset.local:42/health");
    for c in CLUSTERS {
        for _ in 0..20 {
            let out = s.curl(c, &url);
            assert!(
                !out.contains("ok pod="),
                "reached an unexported service from {c}: {out}"
            );
        }
    }
    s.spec("Connectivity to remote services with an exported ClusterIP service should be accessible through DNS (after a potential delay)");
    s.export(C1, &ns);
    for c in CLUSTERS {
        eventually(&format!("{url} from {c}"), WAIT, || {
            let out = s.curl(c, &url);
            if !out.contains("ok pod=hello-0") {
                bail!("{out:?}");
            }
            Ok(())
        });
    }
}
