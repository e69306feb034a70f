//! The kinds kubectl users create, stored as on any cluster: `kubectl apply`, `get -o wide` with
//! kubectl's columns, `describe`, and `scale` through the scale subresource. A table lists each
//! command line and what its output must hold.

use subsea_integration::ApiServer;

/// Runs each kubectl command line and checks its output holds every wanted text.
fn expect_outputs(s: &ApiServer, cases: &[(&[&str], &[&str])]) {
    for (args, wants) in cases {
        let out = s.ok(args);
        for want in *wants {
            assert!(
                out.contains(want),
                "kubectl {}: no {want:?} in\n{out}",
                args.join(" ")
            );
        }
    }
}

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: nginx:1.27}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: pg, image: postgres:16}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache}
spec:
  replicas: 3
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec: {containers: [{name: redis, image: redis:7}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: migrate:1}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: backup, image: backup:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {pods: "10"}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: critical}
value: 1000000
globalDefault: false
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  rules:
  - host: web.example.org
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

#[test]
fn kubectl_users_kinds_are_stored_printed_described_and_scaled() {
    let s = ApiServer::start(&[]).expect("server");
    let out = s
        .kubectl_stdin(&["apply", "-f", "-"], Some(MANIFESTS))
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["get", "deployments", "-o", "wide"],
            &[
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR",
                "web",
                "0/2",
                "nginx:1.27",
                "app=web",
            ],
        ),
        (&["get", "sts"], &["READY", "db", "0/1"]),
        (
            &["get", "rs", "-o", "wide"],
            &["DESIRED", "CURRENT", "cache", "redis:7"],
        ),
        (&["get", "jobs"], &["COMPLETIONS", "migrate", "0/1"]),
        (
            &["get", "cronjobs"],
            &["SCHEDULE", "SUSPEND", "ACTIVE", "nightly", "0 3 * * *", "False"],
        ),
        (
            &["get", "pdb"],
            &[
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "web",
                "N/A",
            ],
        ),
        (&["get", "quota"], &["compute"]),
        (
            &["get", "priorityclasses"],
            &["VALUE", "GLOBAL-DEFAULT", "critical", "1000000"],
        ),
        (&["get", "netpol"], &["POD-SELECTOR", "web-only", "app=web"]),
        (
            &["get", "ingress"],
            &["CLASS", "HOSTS", "web", "nginx", "web.example.org"],
        ),
        (
            &["get", "all"],
            &[
                "deployment.apps/web",
                "statefulset.apps/db",
                "replicaset.apps/cache",
                "job.batch/migrate",
                "cronjob.batch/nightly",
            ],
        ),
        (
            &["describe", "deployment", "web"],
            &["Name:", "web", "Replicas:", "2 desired", "nginx:1.27"],
        ),
        (&["describe", "ingress", "web"], &["web.example.org"]),
        (
            &["scale", "deployment", "web", "--replicas=5"],
            &["deployment.apps/web scaled"],
        ),
        (
            &["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"],
            &["5"],
        ),
        (
            &["scale", "sts", "db", "--replicas=3"],
            &["statefulset.apps/db scaled"],
        ),
        (&["get", "sts", "db", "-o", "jsonpath={.spec.replicas}"], &["3"]),
    ];
    expect_outputs(&s, cases);
    // A malformed workload is refused with the field named.
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec: {replicas: many}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(bad)).expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("spec.replicas"), "{err}");
}

/// kubectl's generators send protobuf bodies (and ask for protobuf answers) for every built-in
/// kind; each command's output and the stored object's values are checked.
#[test]
fn kubectl_create_generators_work_for_every_kind_they_make() {
    let s = ApiServer::start(&[]).expect("server");
    let cases: &[(&[&str], &str)] = &[
        (&["create", "namespace", "team"], "namespace/team created"),
        (
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=80",
            ],
            "deployment.apps/web created",
        ),
        (
            &["create", "role", "reader", "--verb=get,list", "--resource=pods"],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            &[
                "create",
                "clusterrole",
                "viewer",
                "--verb=get",
                "--resource=nodes",
            ],
            "clusterrole.rbac.authorization.k8s.io/viewer created",
        ),
        (
            &["create", "rolebinding", "read", "--role=reader", "--user=ann"],
            "rolebinding.rbac.authorization.k8s.io/read created",
        ),
        (
            &[
                "create",
                "clusterrolebinding",
                "view",
                "--clusterrole=viewer",
                "--group=ops",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io/view created",
        ),
        (
            &["create", "service", "clusterip", "api", "--tcp=80:8080"],
            "service/api created",
        ),
        (
            &["create", "service", "nodeport", "edge", "--tcp=80:8080"],
            "service/edge created",
        ),
        (
            &[
                "create",
                "service",
                "nodeport",
                "edge2",
                "--tcp=443:8443",
                "--node-port=30443",
            ],
            "service/edge2 created",
        ),
        (
            &["create", "job", "migrate", "--image=migrate:1"],
            "job.batch/migrate created",
        ),
        (
            &[
                "create",
                "cronjob",
                "nightly",
                "--image=backup:1",
                "--schedule=0 3 * * *",
            ],
            "cronjob.batch/nightly created",
        ),
        (
            &[
                "create",
                "priorityclass",
                "high",
                "--value=1000",
                "--description=important",
            ],
            "priorityclass.scheduling.k8s.io/high created",
        ),
        (
            &["create", "quota", "small", "--hard=pods=2,requests.cpu=500m"],
            "resourcequota/small created",
        ),
        (
            &[
                "create",
                "pdb",
                "web",
                "--selector=app=web",
                "--min-available=50%",
            ],
            "poddisruptionbudget.policy/web created",
        ),
        (
            &["create", "ingress", "web", "--rule=web.example.org/*=api:80"],
            "ingress.networking.k8s.io/web created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "db",
                "--from-literal=password=hunter2",
            ],
            "secret/db created",
        ),
        (
            &["create", "configmap", "cfg", "--from-literal=mode=fast"],
            "configmap/cfg created",
        ),
        (&["create", "serviceaccount", "bot"], "serviceaccount/bot created"),
        (
            &["scale", "deployment", "web", "--replicas=4"],
            "deployment.apps/web scaled",
        ),
        (&["auth", "can-i", "list", "pods", "--as=ann"], "yes"),
        // A bare API server runs no controller-manager: kubectl says the spec is unobserved,
        // as it would against a kube-apiserver alone (the sandbox runs one; e2e/tests).
        (
            &["rollout", "status", "deployment", "web", "--watch=false"],
            "Waiting for deployment spec update to be observed...",
        ),
        (
            &[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}",
            ],
            "4 nginx:1.27 80",
        ),
        (
            &["get", "role", "reader", "-o", "jsonpath={.rules[0].verbs}"],
            r#"["get","list"]"#,
        ),
        (
            &[
                "get",
                "rolebinding",
                "read",
                "-o",
                "jsonpath={.roleRef.name} {.subjects[0].name}",
            ],
            "reader ann",
        ),
        (
            &[
                "get",
                "svc",
                "api",
                "-o",
                "jsonpath={.spec.ports[0].port} {.spec.ports[0].targetPort}",
            ],
            "80 8080",
        ),
        (&["get", "svc", "edge"], "80:30000/TCP"),
        (&["get", "svc", "edge2"], "443:30443/TCP"),
        (
            &["get", "cronjob", "nightly", "-o", "jsonpath={.spec.schedule}"],
            "0 3 * * *",
        ),
        (
            &[
                "get",
                "priorityclass",
                "high",
                "-o",
                "jsonpath={.value} {.description}",
            ],
            "1000 important",
        ),
        (
            &[
                "get",
                "quota",
                "small",
                "-o",
                "jsonpath={.spec.hard.requests\\.cpu}",
            ],
            "500m",
        ),
        (
            &["get", "pdb", "web", "-o", "jsonpath={.spec.minAvailable}"],
            "50%",
        ),
        (
            &["get", "ingress", "web", "-o", "jsonpath={.spec.rules[0].host}"],
            "web.example.org",
        ),
        (
            &["get", "secret", "db", "-o", "jsonpath={.data.password}"],
            "aHVudGVyMg==",
        ),
        (
            &[
                "get",
                "job",
                "migrate",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
            "migrate:1",
        ),
    ];
    for (args, want) in cases {
        let out = s.ok(args);
        assert!(
            out.contains(want),
            "kubectl {}: no {want:?} in\n{out}",
            args.join(" ")
        );
    }
    let taken = s.fails(&[
        "create",
        "service",
        "nodeport",
        "edge3",
        "--tcp=80:80",
        "--node-port=30443",
    ]);
    assert!(
        taken.contains("spec.ports[0].nodePort: Invalid value: 30443: provided port is already allocated"),
        "{taken}"
    );
    let denied = s
        .kubectl(&["auth", "can-i", "delete", "pods", "--as=ann"])
        .expect("runs");
    assert_eq!(String::from_utf8_lossy(&denied.stdout).trim(), "no");
    let token = s.ok(&["create", "token", "bot", "--duration=10m"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    // Go's encoder writes "" for every unset string; none of them is stored.
    let stored = s.ok(&["get", "deployment", "web", "-o", "json"]);
    for unset in ["\"generateName\"", "\"selfLink\"", "\"\""] {
        assert!(!stored.contains(unset), "{unset} stored:\n{stored}");
    }
}

/// `kubectl explain` reads /openapi/v3: built-in kinds with Kubernetes' descriptions, fields of
/// inlined Go structs (a Probe's handler) in place, custom resources from their CRD's schema.
#[test]
fn kubectl_explain_describes_built_in_and_custom_kinds() {
    let s = ApiServer::start(&[]).expect("server");
    let crds = subsea_integration::repo_root().join("manifests/crds");
    s.ok(&["apply", "-f", crds.to_str().expect("utf-8 path")]);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["explain", "deployment"],
            &[
                "KIND:       Deployment",
                "VERSION:    v1",
                "declarative updates for Pods",
                "spec\t<DeploymentSpec>",
            ],
        ),
        (
            &["explain", "deployment.spec.replicas"],
            &["FIELD: replicas <integer>", "Defaults to 1"],
        ),
        (
            &["explain", "pod.spec.containers.livenessProbe"],
            &["httpGet\t<HTTPGetAction>", "failureThreshold"],
        ),
        (
            &["explain", "svc.spec.ports.targetPort"],
            &["Number or name of the port"],
        ),
        (&["explain", "rolebinding.roleRef"], &["apiGroup", "-required-"]),
        (
            &["explain", "endpoints.submariner.io.spec"],
            &["KIND:       Endpoint", "cable_name", "backend"],
        ),
    ];
    expect_outputs(&s, cases);
}
