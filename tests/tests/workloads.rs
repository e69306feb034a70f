//! The kinds kubectl users create, stored as on any cluster: `kubectl apply`, `get -o wide` with
//! kubectl's columns, `describe`, and `scale` through the scale subresource. A table lists each
//! command line and what its output must hold.

use subsea_integration::ApiServer;

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
    // A malformed workload is refused with the field named.
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec: {replicas: many}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(bad)).expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("spec.replicas"), "{err}");
}
