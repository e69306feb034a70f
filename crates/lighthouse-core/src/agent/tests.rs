use super::*;
use serde_json::{Value, json};

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

/// Two clusters' API state, changed only by applying planned actions, as the adapter would.
#[derive(Default)]
struct Sim {
    exports: Vec<Export>,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    local_imports: Vec<ServiceImport>,
    broker_imports: Vec<ServiceImport>,
    broker_slices: Vec<EndpointSlice>,
    globalnet: Option<crate::globalnet::GlobalIps>,
    vips: crate::vip::Settings,
    mcs_reasons: bool,
    /// The last pass's memo: every plan is made with and without it, and must not differ.
    memo: std::cell::RefCell<Memo>,
    /// The last resourceVersion handed out: written objects get the next, as from a server.
    rv: u64,
}

/// Replaces or adds `obj`, checking the plan's word on whether it existed (the executor
/// creates or patches on that word without reading first).
fn upsert<T>(list: &mut Vec<T>, obj: T, cached: Cached, meta: impl Fn(&T) -> &ObjectMeta) {
    let k = key(meta(&obj));
    let k = (k.0.to_string(), k.1.to_string());
    let before = list.len();
    list.retain(|o| key(meta(o)) != (k.0.as_str(), k.1.as_str()));
    let existed = if list.len() < before {
        Cached::Present
    } else {
        Cached::Absent
    };
    assert_eq!(existed, cached, "the plan's existence hint for {k:?}");
    list.push(obj);
}

/// What the executor's merge patch does to labels and annotations: the existing ones stay
/// unless the patch names them, and the stale ones go.
fn merge_meta(list: &[ServiceImport], new: &mut ServiceImport, stale: &Stale) {
    let Some(old) = list.iter().find(|o| key(&o.metadata) == key(&new.metadata)) else {
        return;
    };
    for (was, now, gone) in [
        (&old.metadata.labels, &mut new.metadata.labels, &stale.labels),
        (
            &old.metadata.annotations,
            &mut new.metadata.annotations,
            &stale.annotations,
        ),
    ] {
        let mut merged = was.clone().unwrap_or_default();
        merged.extend(now.take().unwrap_or_default());
        merged.retain(|k, _| !gone.contains(k));
        *now = Some(merged);
    }
    if new.spec.ips.is_empty() && !stale.ips {
        new.spec.ips = old.spec.ips.clone();
    }
}

impl Sim {
    fn plan(&self, cluster: &str, now: &str) -> Vec<Action> {
        let exports: Vec<&Export> = self.exports.iter().collect();
        let services: Vec<&Service> = self.services.iter().collect();
        let slices: Vec<&EndpointSlice> = self.slices.iter().collect();
        let local_imports: Vec<&ServiceImport> = self.local_imports.iter().collect();
        let broker_imports: Vec<&ServiceImport> = self.broker_imports.iter().collect();
        let broker_slices: Vec<&EndpointSlice> = self.broker_slices.iter().collect();
        let world = World {
            cluster,
            broker_ns: "broker",
            exports: &exports,
            services: &services,
            slices: &slices,
            local_imports: &local_imports,
            broker_imports: &broker_imports,
            broker_slices: &broker_slices,
            now,
            globalnet: self.globalnet.as_ref(),
            vips: &self.vips,
            mcs_reasons: self.mcs_reasons,
        };
        let fresh = plan(&world);
        let (remembered, memo) = plan_with(&world, &self.memo.borrow());
        assert_eq!(remembered, fresh, "the memo changed a decision");
        *self.memo.borrow_mut() = memo;
        fresh
    }

    fn stamp(&mut self, meta: &mut ObjectMeta) {
        self.rv += 1;
        meta.resource_version = Some(self.rv.to_string());
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Apply(Target::Broker, Object::Import(mut i, stale), cached) => {
                    self.stamp(&mut i.metadata);
                    merge_meta(&self.broker_imports, &mut i, &stale);
                    upsert(&mut self.broker_imports, i, cached, |o| &o.metadata)
                }
                Action::Apply(Target::Broker, Object::Slice(mut s), cached) => {
                    self.stamp(&mut s.metadata);
                    upsert(&mut self.broker_slices, s, cached, |o| &o.metadata)
                }
                Action::Apply(Target::Local, Object::Import(mut i, stale), cached) => {
                    self.stamp(&mut i.metadata);
                    merge_meta(&self.local_imports, &mut i, &stale);
                    upsert(&mut self.local_imports, i, cached, |o| &o.metadata)
                }
                Action::Apply(Target::Local, Object::Slice(mut s), cached) => {
                    self.stamp(&mut s.metadata);
                    upsert(&mut self.slices, s, cached, |o| &o.metadata)
                }
                Action::Delete {
                    target,
                    kind,
                    namespace,
                    name,
                } => {
                    let gone = |m: &ObjectMeta| key(m) == (namespace.as_str(), name.as_str());
                    match (target, kind) {
                        (Target::Broker, Kind::ServiceImport) => {
                            self.broker_imports.retain(|o| !gone(&o.metadata))
                        }
                        (Target::Broker, Kind::EndpointSlice) => {
                            self.broker_slices.retain(|o| !gone(&o.metadata))
                        }
                        (Target::Local, Kind::ServiceImport) => {
                            self.local_imports.retain(|o| !gone(&o.metadata))
                        }
                        (Target::Local, Kind::EndpointSlice) => self.slices.retain(|o| !gone(&o.metadata)),
                    }
                }
                Action::ExportConditions {
                    namespace,
                    name,
                    conditions,
                } => {
                    for e in self
                        .exports
                        .iter_mut()
                        .filter(|e| key(&e.metadata) == (namespace.as_str(), name.as_str()))
                    {
                        e.status = Some(ServiceExportStatus {
                            conditions: conditions.clone(),
                        });
                    }
                }
            }
        }
    }

    /// Plans and applies until nothing is left to do; the number of passes that wrote.
    fn converge(&mut self, cluster: &str) -> usize {
        for pass in 0..10 {
            let actions = self.plan(cluster, "2026-12-02T00:00:00Z");
            if actions.is_empty() {
                return pass;
            }
            self.apply(actions);
        }
        panic!("no convergence in 10 passes");
    }
}

fn web_cluster() -> Sim {
    Sim {
        exports: vec![typed(
            json!({"metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
        )],
        services: vec![typed(json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "ClusterIP", "clusterIP": "100.65.0.5", "clusterIPs": ["100.65.0.5"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}))],
        slices: vec![typed(
            json!({"metadata": {"name": "web-abc", "namespace": "shop", "labels": {K8S_SERVICE_NAME: "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.129.4.11"], "conditions": {"ready": true}}]}),
        )],
        ..Default::default()
    }
}

#[test]
fn a_new_export_is_published_then_imported_and_a_converged_world_needs_no_writes() {
    let mut sim = web_cluster();
    let first = sim.plan("c1", "t1");
    let kinds: Vec<&str> = first
        .iter()
        .map(|a| match a {
            Action::Apply(Target::Broker, Object::Import(..), _) => "publish import",
            Action::Apply(Target::Broker, Object::Slice(_), _) => "publish slice",
            Action::ExportConditions { .. } => "conditions",
            other => panic!("unexpected first action {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["publish import", "publish slice", "conditions"]);
    let Some(Action::ExportConditions { conditions, .. }) = first.last() else {
        panic!("conditions last")
    };
    assert_eq!(conditions[1].reason.as_deref(), Some("AwaitingExport"));
    sim.apply(first);
    assert!(sim.converge("c1") >= 1);
    assert_eq!(sim.local_imports.len(), 1, "the aggregate is imported here");
    assert_eq!(label(&sim.local_imports[0].metadata, AGGREGATE_LABEL), MANAGER);
    let copy = sim
        .slices
        .iter()
        .find(|s| key(&s.metadata) == ("shop", "web-c1"))
        .expect("local copy of the slice");
    assert_eq!(copy.endpoints[0].addresses, ["100.65.0.5"]);
    let status = sim.exports[0].status.as_ref().expect("conditions");
    assert_eq!(status.conditions[1].status, "True", "Ready once on the broker");
    assert!(
        sim.plan("c1", "later").is_empty(),
        "a converged world is left alone"
    );
    assert_eq!(
        sim.memo.borrow().len(),
        2,
        "the local import and slice copy are remembered as holding what they should"
    );
}

#[test]
fn a_remembered_write_is_made_again_once_its_input_changes() {
    let mut sim = web_cluster();
    sim.converge("c1");
    sim.plan("c1", "later");
    assert!(!sim.memo.borrow().is_empty());
    // The service gains a port: the broker import changes (new resourceVersion), and the local
    // aggregate must follow although the memo held it as done.
    let svc = &mut sim.services[0];
    svc.spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")
        .push(typed(json!({"name": "https", "port": 443, "protocol": "TCP"})));
    sim.converge("c1");
    let local = sim
        .local_imports
        .iter()
        .find(|i| key(&i.metadata) == ("shop", "web"))
        .expect("aggregate");
    let ports: Vec<i32> = local.spec.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 443]);
}

#[test]
fn an_unexported_service_is_withdrawn_everywhere() {
    let mut sim = web_cluster();
    sim.converge("c1");
    sim.exports.clear();
    let actions = sim.plan("c1", "t");
    assert!(
        actions.iter().all(|a| matches!(
            a,
            Action::Delete {
                target: Target::Broker,
                ..
            }
        )),
        "first the broker copies go: {actions:?}"
    );
    assert_eq!(actions.len(), 2);
    sim.apply(actions);
    sim.converge("c1");
    assert!(sim.broker_imports.is_empty() && sim.broker_slices.is_empty());
    assert!(sim.local_imports.is_empty(), "the aggregate is gone");
    assert_eq!(sim.slices.len(), 1, "only Kubernetes' own slice stays");
}

#[test]
fn another_clusters_objects_are_never_withdrawn_and_a_type_conflict_blocks_publishing() {
    let mut sim = web_cluster();
    // c2 exported the same service first, as headless.
    let mut other = web_cluster();
    other.services[0].spec.as_mut().expect("spec").cluster_ip = Some("None".into());
    other.exports[0].metadata.creation_timestamp = Some(typed(json!("2025-01-01T00:00:00Z")));
    other.converge("c2");
    sim.broker_imports = other.broker_imports.clone();
    sim.broker_slices = other.broker_slices.clone();
    let actions = sim.plan("c1", "t");
    // c1 publishes its import marked as held back, and no slices; c2's objects stay.
    let published: Vec<&ServiceImport> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Apply(Target::Broker, Object::Import(i, _), _) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 1, "{actions:?}");
    assert_eq!(label(&published[0].metadata, SOURCE_CLUSTER), "c1");
    assert!(export::type_conflicted(published[0]));
    assert!(
        !actions.iter().any(|a| matches!(
            a,
            Action::Apply(Target::Broker, Object::Slice(_), _)
                | Action::Delete {
                    target: Target::Broker,
                    ..
                }
        )),
        "no slice published, nothing of c2's touched: {actions:?}"
    );
    let conds = actions
        .iter()
        .find_map(|a| match a {
            Action::ExportConditions { conditions, .. } => Some(conditions.clone()),
            _ => None,
        })
        .expect("conditions");
    assert_eq!(conds[2].reason.as_deref(), Some("ConflictingType"));
    assert_eq!(conds[1].status, "False", "not exported while blocked");
    sim.converge("c1");
    let conds = &sim.exports[0].status.as_ref().expect("status").conditions;
    assert_eq!(
        conds[1].status, "False",
        "still not exported once published as held back"
    );
    assert_eq!(local_aggregate(&sim).spec.type_, "Headless", "c2's is served");
    let clusters = &local_aggregate(&sim).status.clone().expect("status").clusters;
    assert_eq!(
        clusters.len(),
        1,
        "the held-back export is not among the exporters"
    );

    // c2, the first exporter, hears of it; it stays exported.
    other.broker_imports = sim.broker_imports.clone();
    other.converge("c2");
    let conds = &other.exports[0].status.as_ref().expect("status").conditions;
    assert_eq!(
        (
            conds[1].status.as_str(),
            conds[2].status.as_str(),
            conds[2].reason.as_deref()
        ),
        ("True", "True", Some("ConflictingType"))
    );

    // c2 unexports: c1's export is no longer in conflict and is published in full.
    other.exports.clear();
    other.converge("c2");
    sim.broker_imports = other.broker_imports.clone();
    sim.broker_slices = other.broker_slices.clone();
    sim.converge("c1");
    assert!(
        !export::type_conflicted(&sim.broker_imports[0]),
        "the mark is gone"
    );
    assert_eq!(sim.broker_slices.len(), 1);
    assert_eq!(local_aggregate(&sim).spec.type_, "ClusterSetIP");
}

#[test]
fn exports_being_deleted_and_invalid_services_publish_nothing() {
    let mut sim = web_cluster();
    sim.services.clear();
    let actions = sim.plan("c1", "t");
    assert_eq!(actions.len(), 1, "{actions:?}");
    let Action::ExportConditions { conditions, .. } = &actions[0] else {
        panic!("conditions only")
    };
    assert_eq!(conditions[0].reason.as_deref(), Some("ServiceUnavailable"));
    let mut deleting = web_cluster();
    deleting.exports[0].metadata.deletion_timestamp = Some(typed(json!("2026-01-02T00:00:00Z")));
    assert!(deleting.plan("c1", "t").is_empty());
}

#[test]
fn under_globalnet_an_export_waits_for_its_global_ip_and_publishes_only_that() {
    let mut sim = web_cluster();
    sim.globalnet = Some(Default::default());
    sim.converge("c1");
    assert!(
        sim.broker_imports.is_empty() && sim.broker_slices.is_empty(),
        "nothing published without a global IP"
    );
    let valid = &sim.exports[0].status.as_ref().expect("status").conditions[0];
    assert_eq!((valid.type_.as_str(), valid.status.as_str()), ("Valid", "False"));
    assert_eq!(valid.reason.as_deref(), Some("ServiceGlobalIPUnavailable"));

    let mut g = crate::globalnet::GlobalIps::default();
    g.services
        .insert(("shop".into(), "web".into()), "242.0.0.10".into());
    sim.globalnet = Some(g);
    sim.converge("c1");
    assert_eq!(sim.broker_imports[0].spec.ips, ["242.0.0.10"]);
    let published: Vec<&String> = sim
        .broker_slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .flat_map(|e| &e.addresses)
        .collect();
    assert_eq!(
        published,
        ["242.0.0.10"],
        "the ClusterIP never leaves the cluster"
    );
    let valid = &sim.exports[0].status.as_ref().expect("status").conditions[0];
    assert_eq!(valid.status, "True");
}

fn export_spec(labels: Value, annotations: Value) -> ExportSpec {
    typed(json!({"exportedLabels": labels, "exportedAnnotations": annotations}))
}

fn local_aggregate(sim: &Sim) -> &ServiceImport {
    sim.local_imports
        .iter()
        .find(|i| key(&i.metadata) == ("shop", "web"))
        .expect("aggregate")
}

#[test]
fn exported_labels_and_annotations_reach_the_import_and_leave_it_when_removed() {
    let mut sim = web_cluster();
    sim.exports[0].spec = export_spec(
        json!({"team": "payments", "tier": "gold"}),
        json!({"example.com/owner": "alice"}),
    );
    sim.converge("c1");
    let agg = local_aggregate(&sim);
    assert_eq!(label(&agg.metadata, "team"), "payments");
    assert_eq!(label(&agg.metadata, "tier"), "gold");
    assert_eq!(
        label(&agg.metadata, AGGREGATE_LABEL),
        MANAGER,
        "the agent's own label stays"
    );
    assert_eq!(export::annotation(&agg.metadata, "example.com/owner"), "alice");
    assert!(sim.plan("c1", "later").is_empty(), "converged");

    // The user drops a label and every annotation: a merge patch alone would keep them.
    sim.exports[0].spec = export_spec(json!({"team": "payments"}), json!({}));
    sim.converge("c1");
    let agg = local_aggregate(&sim);
    assert_eq!(label(&agg.metadata, "team"), "payments");
    assert_eq!(
        label(&agg.metadata, "tier"),
        "",
        "a removed label leaves the import"
    );
    assert_eq!(export::annotation(&agg.metadata, "example.com/owner"), "");
    let broker = &sim.broker_imports[0].metadata;
    assert_eq!(export::annotation(broker, exported::ANNOTATIONS_ANNOTATION), "");
    assert!(sim.plan("c1", "later").is_empty(), "converged again");
}

#[test]
fn differing_exported_labels_are_a_conflict_and_the_oldest_exports_are_served() {
    let mut sim = web_cluster();
    sim.exports[0].spec = export_spec(json!({"team": "web"}), json!({}));
    let mut other = web_cluster();
    other.exports[0].metadata.creation_timestamp = Some(typed(json!("2025-01-01T00:00:00Z")));
    other.exports[0].spec = export_spec(json!({"team": "payments"}), json!({"note": "first"}));
    other.converge("c2");
    sim.broker_imports = other.broker_imports.clone();
    sim.broker_slices = other.broker_slices.clone();
    sim.converge("c1");
    let conflict = &sim.exports[0].status.as_ref().expect("status").conditions[2];
    assert_eq!(conflict.status, "True");
    assert_eq!(
        conflict.reason.as_deref(),
        Some("LabelsConflict,AnnotationsConflict")
    );
    assert!(
        conflict.message.as_deref().unwrap_or_default().contains("\"c2\""),
        "{conflict:?}"
    );
    let agg = local_aggregate(&sim);
    assert_eq!(
        label(&agg.metadata, "team"),
        "payments",
        "the oldest export's label"
    );
    assert_eq!(export::annotation(&agg.metadata, "note"), "first");
    assert_eq!(
        sim.broker_imports.len(),
        2,
        "a label conflict does not block publishing"
    );
}

#[test]
fn an_export_with_a_bad_or_reserved_label_is_refused_with_the_key_named() {
    for (labels, named) in [
        (json!({"team": "two words"}), "two words"),
        (
            json!({"multicluster.kubernetes.io/service-name": "x"}),
            "reserved",
        ),
    ] {
        let mut sim = web_cluster();
        sim.exports[0].spec = export_spec(labels, json!({}));
        sim.converge("c1");
        assert!(sim.broker_imports.is_empty(), "nothing published");
        let valid = &sim.exports[0].status.as_ref().expect("status").conditions[0];
        assert_eq!(valid.status, "False");
        assert_eq!(valid.reason.as_deref(), Some("InvalidExportedLabels"));
        assert!(
            valid.message.as_deref().unwrap_or_default().contains(named),
            "{valid:?}"
        );
    }
}

fn use_vip(sim: &mut Sim, on: &str) {
    sim.exports[0].metadata.annotations =
        Some([(crate::vip::USE_CLUSTERSET_IP.to_string(), on.to_string())].into());
}

#[test]
fn a_clusterset_ip_is_claimed_once_kept_while_an_exporter_stays_and_released_after() {
    let mut c1 = web_cluster();
    use_vip(&mut c1, "true");
    c1.converge("c1");
    let vip = local_aggregate(&c1).spec.ips.clone();
    assert_eq!(vip.len(), 1, "one VIP: {vip:?}");
    let range = crate::vip::Settings::default().range;
    assert!(range.contains(vip[0].parse().expect("an address")));

    // c2 exports the same service later: it carries c1's claim, not one of its own.
    let mut c2 = web_cluster();
    use_vip(&mut c2, "true");
    c2.exports[0].metadata.creation_timestamp = Some(typed(json!("2026-02-01T00:00:00Z")));
    c2.broker_imports = c1.broker_imports.clone();
    c2.broker_slices = c1.broker_slices.clone();
    c2.converge("c2");
    let claims: Vec<&str> = c2
        .broker_imports
        .iter()
        .map(|i| export::annotation(&i.metadata, crate::vip::ANNOTATION))
        .collect();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0], claims[1], "both exporters carry the one claim");
    assert_eq!(local_aggregate(&c2).spec.ips, vip);

    // c1 leaves: the VIP stays with c2's export.
    c2.broker_imports
        .retain(|i| label(&i.metadata, CLUSTER_ID) != "c1");
    c2.converge("c2");
    assert_eq!(
        local_aggregate(&c2).spec.ips,
        vip,
        "stable while an exporter stays"
    );

    // c2 opts out: nobody claims it any more, and the import loses it (a merge patch alone
    // would keep it).
    use_vip(&mut c2, "false");
    c2.converge("c2");
    assert!(local_aggregate(&c2).spec.ips.is_empty(), "released");
    assert_eq!(
        export::annotation(&c2.broker_imports[0].metadata, crate::vip::ANNOTATION),
        ""
    );
    assert!(c2.plan("c2", "later").is_empty(), "converged");
}

#[test]
fn without_the_annotation_the_cluster_sets_default_decides_and_headless_gets_no_vip() {
    let mut on = web_cluster();
    on.vips.default_on = true;
    on.converge("c1");
    assert_eq!(local_aggregate(&on).spec.ips.len(), 1);
    let mut headless = web_cluster();
    headless.vips.default_on = true;
    headless.services[0].spec.as_mut().expect("spec").cluster_ip = Some("None".into());
    headless.converge("c1");
    assert!(local_aggregate(&headless).spec.ips.is_empty());
    let mut off = web_cluster();
    off.converge("c1");
    assert!(local_aggregate(&off).spec.ips.is_empty());
}

#[test]
fn a_differing_traffic_distribution_is_a_conflict_and_the_oldest_is_imported() {
    let mut sim = web_cluster();
    let mut other = web_cluster();
    other.exports[0].metadata.creation_timestamp = Some(typed(json!("2025-01-01T00:00:00Z")));
    other.services[0]
        .spec
        .as_mut()
        .expect("spec")
        .traffic_distribution = Some("PreferClose".into());
    other.converge("c2");
    sim.broker_imports = other.broker_imports.clone();
    sim.broker_slices = other.broker_slices.clone();
    sim.converge("c1");
    let conflict = &sim.exports[0].status.as_ref().expect("status").conditions[2];
    assert_eq!(conflict.reason.as_deref(), Some("TrafficDistributionConflict"));
    assert_eq!(
        local_aggregate(&sim).spec.traffic_distribution.as_deref(),
        Some("PreferClose")
    );
}

#[test]
fn conditions_speak_the_mcs_apis_words_when_asked() {
    let mut sim = web_cluster();
    sim.mcs_reasons = true;
    sim.converge("c1");
    let conds = &sim.exports[0].status.as_ref().expect("status").conditions;
    let reasons: Vec<(&str, &str, &str)> = conds
        .iter()
        .map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("Valid", "True", "Valid"),
            ("Ready", "True", "Exported"),
            ("Conflict", "False", "NoConflicts")
        ]
    );
    // A type conflict, in both vocabularies.
    let mut other = web_cluster();
    other.services[0].spec.as_mut().expect("spec").cluster_ip = Some("None".into());
    other.exports[0].metadata.creation_timestamp = Some(typed(json!("2025-01-01T00:00:00Z")));
    other.converge("c2");
    for (mcs, want) in [(true, "TypeConflict"), (false, "ConflictingType")] {
        let mut sim = web_cluster();
        sim.mcs_reasons = mcs;
        sim.broker_imports = other.broker_imports.clone();
        sim.converge("c1");
        let conflict = &sim.exports[0].status.as_ref().expect("status").conditions[2];
        assert_eq!(conflict.reason.as_deref(), Some(want));
    }
    let mut gone = web_cluster();
    gone.mcs_reasons = true;
    gone.services.clear();
    gone.converge("c1");
    let valid = &gone.exports[0].status.as_ref().expect("status").conditions[0];
    assert_eq!(valid.reason.as_deref(), Some("NoService"));
}

#[test]
fn the_import_says_pending_while_the_broker_has_no_slice_and_ready_with_its_copies() {
    let mut sim = web_cluster();
    let pass = sim.plan("c1", "t0");
    sim.apply(pass);
    // The broker lost the slice (it is published again in this pass, after the aggregate was
    // planned): no copy can follow.
    sim.broker_slices.clear();
    let pass = sim.plan("c1", "t1");
    sim.apply(pass);
    let st = local_aggregate(&sim).status.clone().expect("status");
    assert_eq!(st.endpoint_slice_objects.as_deref(), Some("Absent"));
    assert_eq!(st.conditions[0].reason.as_deref(), Some("Pending"));
    // The pass that writes the copy writes the status that counts it: no second pass.
    let pass = sim.plan("c1", "t2");
    assert!(
        pass.iter()
            .any(|a| matches!(a, Action::Apply(Target::Local, Object::Slice(_), _))),
        "{pass:?}"
    );
    sim.apply(pass);
    let st = local_aggregate(&sim).status.clone().expect("status");
    assert_eq!(st.endpoint_slice_objects.as_deref(), Some("Present"));
    assert_eq!(
        (
            st.conditions[0].type_.as_str(),
            st.conditions[0].status.as_str(),
            st.conditions[0].reason.as_deref()
        ),
        ("Ready", "True", Some("Ready"))
    );
    assert!(sim.plan("c1", "later").is_empty(), "converged");
}

#[test]
fn an_import_of_families_the_cluster_lacks_is_not_ready() {
    let mut sim = web_cluster();
    let spec = sim.services[0].spec.as_mut().expect("spec");
    spec.ip_families = Some(vec!["IPv6".into()]);
    spec.cluster_ips = Some(vec!["fd00:96::10".into()]);
    spec.cluster_ip = Some("fd00:96::10".into());
    // The cluster's other Services are IPv4 only: it serves IPv4, and the IPv6 one is the
    // export itself; importing it into a cluster without IPv6 is what must be refused.
    let mut importer = web_cluster();
    importer.exports.clear();
    sim.converge("c1");
    importer.broker_imports = sim.broker_imports.clone();
    importer.broker_slices = sim.broker_slices.clone();
    importer.converge("c2");
    let ready = &local_aggregate(&importer)
        .status
        .clone()
        .expect("status")
        .conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("IPFamilyNotSupported")),
        "{ready:?}"
    );
    let ready = &local_aggregate(&sim).status.clone().expect("status").conditions[0];
    assert_eq!(ready.reason.as_deref(), Some("Ready"), "the exporter serves IPv6");
}

#[test]
fn differing_ip_families_are_a_conflict_but_their_order_is_not() {
    let families = |fams: &[&str]| {
        let mut sim = web_cluster();
        sim.services[0].spec.as_mut().expect("spec").ip_families =
            Some(fams.iter().map(|f| f.to_string()).collect());
        sim
    };
    for (theirs, conflict) in [(&["IPv6", "IPv4"][..], false), (&["IPv4"][..], true)] {
        let mut sim = families(&["IPv4", "IPv6"]);
        let mut other = families(theirs);
        other.exports[0].metadata.creation_timestamp = Some(typed(json!("2025-01-01T00:00:00Z")));
        other.converge("c2");
        sim.broker_imports = other.broker_imports.clone();
        sim.broker_slices = other.broker_slices.clone();
        sim.converge("c1");
        let c = &sim.exports[0].status.as_ref().expect("status").conditions[2];
        assert_eq!(
            c.reason.as_deref() == Some("IPFamilyConflict"),
            conflict,
            "theirs {theirs:?}: {c:?}"
        );
    }
}

#[test]
fn a_dual_stack_service_gets_one_vip_per_family_primary_first() {
    for (families, v6_first) in [(["IPv4", "IPv6"], false), (["IPv6", "IPv4"], true)] {
        let mut sim = web_cluster();
        sim.vips.default_on = true;
        let spec = sim.services[0].spec.as_mut().expect("spec");
        spec.ip_families = Some(families.iter().map(|f| f.to_string()).collect());
        spec.cluster_ips = Some(vec!["100.65.0.5".into(), "fd00:65::5".into()]);
        sim.converge("c1");
        let ips = local_aggregate(&sim).spec.ips.clone();
        assert_eq!(ips.len(), 2, "{ips:?}");
        let first: std::net::IpAddr = ips[0].parse().expect("ip");
        assert_eq!(first.is_ipv6(), v6_first, "{families:?}: {ips:?}");
        let i = &sim.broker_imports[0].metadata;
        assert!(!export::annotation(i, crate::vip::ANNOTATION_V6).is_empty());
        assert!(sim.plan("c1", "later").is_empty(), "converged");
    }
}
