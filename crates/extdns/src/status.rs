//! What is published where, for `subctl show service-discovery`: a ConfigMap
//! `subsea-dns-publisher-<owner>` in the broker namespace, written when it changes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use subsea_extdns_core::source::{Desired, Skip};

use crate::Options;

/// The label `subctl show` finds the status ConfigMaps by.
pub const LABEL: &str = "app.kubernetes.io/name";
/// Its value.
pub const APP: &str = "subsea-dns-publisher";

pub(crate) struct Reporter {
    client: kube::Client,
    name: String,
    ns: String,
    head: Value,
    written: Option<Value>,
    last_error: Option<(String, String)>,
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The status document.
pub fn document(
    head: &Value,
    desired: &[Desired],
    skipped: &[Skip],
    down: &BTreeMap<String, String>,
    error: Option<&(String, String)>,
) -> Value {
    let records: Vec<Value> = desired
        .iter()
        .map(|d| {
            json!({"name": d.name, "type": d.rtype.as_str(), "targets": d.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "clusters": d.clusters, "service": d.resource, "ttl": d.ttl})
        })
        .collect();
    let skipped: Vec<Value> = skipped
        .iter()
        .map(|s| json!({"name": s.name, "service": s.resource, "reason": s.reason}))
        .collect();
    let mut doc = head.clone();
    doc["published"] = json!(error.is_none());
    doc["records"] = json!(records);
    doc["skipped"] = json!(skipped);
    doc["unreachableClusters"] = json!(down);
    if let Some((text, at)) = error {
        doc["lastError"] = json!(text);
        doc["lastErrorTime"] = json!(at);
    }
    doc
}

impl Reporter {
    pub(crate) fn new(client: kube::Client, ns: &str, opts: &Options, server: &str) -> Self {
        let owner = subsea_api::extdns::name_part(&opts.owner);
        Self {
            client,
            name: format!("{APP}-{owner}"),
            ns: ns.to_string(),
            head: json!({"server": server, "zone": opts.zone, "owner": opts.owner,
                "policy": format!("{:?}", opts.policy), "domainFilter": opts.domain_filter}),
            written: None,
            last_error: None,
        }
    }

    pub(crate) async fn report(
        &mut self,
        desired: &[Desired],
        skipped: &[Skip],
        down: &BTreeMap<String, String>,
        error: Option<&str>,
    ) {
        match error {
            Some(e) if self.last_error.as_ref().is_none_or(|(t, _)| t != e) => {
                self.last_error = Some((e.to_string(), now()))
            }
            Some(_) => {}
            None => self.last_error = None,
        }
        let doc = document(&self.head, desired, skipped, down, self.last_error.as_ref());
        if self.written.as_ref() == Some(&doc) {
            return;
        }
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.ns, "labels": {LABEL: APP}},
            "data": {"status.json": text, "updated": now()}});
        match subsea_runtime::objects::apply(&self.client, &cm).await {
            Ok(_) => self.written = Some(doc),
            Err(e) => tracing::warn!(error = %e, "cannot write the publisher's status ConfigMap"),
        }
    }
}
