//! The DNS server's request path, PTR included: any bytes through the full responder (before
//! and after the first sync, UDP and TCP limits) and through the fast path, which must answer
//! exactly as the full one whenever it answers at all.
#![no_main]

use std::sync::OnceLock;

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use subsea_lighthouse_core::respond::{Zones, fast, respond};
use subsea_lighthouse_core::resolve::{Backend, ClusterAddrs, Port, Service, Snapshot};

fn fixture() -> &'static (Snapshot, Zones) {
    static F: OnceLock<(Snapshot, Zones)> = OnceLock::new();
    F.get_or_init(|| {
        let mut s = Snapshot {
            local: "c1".into(),
            ..Default::default()
        };
        let port = |name: &str, n| Port {
            name: name.into(),
            protocol: "tcp".into(),
            port: n,
        };
        s.services.insert(
            ("default".into(), "web".into()),
            std::sync::Arc::new(Service {
                clusters: vec![ClusterAddrs {
                    cluster: "c2".into(),
                    ips: vec!["100.66.0.7".parse().expect("ip"), "fd00:66::7".parse().expect("ip")],
                    ready: true,
                }],
                ports: vec![port("http", 80), port("grpc", 9000)],
                ..Default::default()
            }),
        );
        s.services.insert(
            ("db".into(), "pg".into()),
            std::sync::Arc::new(Service {
                headless: true,
                backends: vec![Backend {
                    cluster: "c1".into(),
                    hostname: Some("pg-0".into()),
                    ips: vec!["10.129.4.11".parse().expect("ip")],
                    ready: true,
                }],
                ports: vec![port("pg", 5432)],
                ..Default::default()
            }),
        );
        s.index_reverse();
        let zones = Zones::new(&["example.org".into()], 5)
            .and_then(|z| z.with_empty(&["cluster.local".into()]))
            .expect("zones");
        (s, zones)
    })
}

fuzz_target!(|data: &[u8]| {
    let (snap, zones) = fixture();
    let _ = respond(None, zones, 1, data, true);
    let _ = respond(Some(snap), zones, 7, data, false);
    let slow = respond(Some(snap), zones, 7, data, true);
    if let Some(s) = &slow {
        Message::from_vec(s).expect("every answer decodes");
    }
    let mut out = Vec::new();
    if fast::respond(snap, zones, 7, data, &mut out) {
        let fast = Message::from_vec(&out).expect("the fast answer decodes");
        let slow = Message::from_vec(&slow.expect("the full path answers what the fast path answers"))
            .expect("decodes");
        assert_eq!(fast.metadata.id, slow.metadata.id);
        assert_eq!(fast.metadata.response_code, slow.metadata.response_code);
        assert_eq!(fast.queries, slow.queries);
        assert_eq!(fast.answers, slow.answers);
        assert_eq!(fast.authorities, slow.authorities);
    }
});
