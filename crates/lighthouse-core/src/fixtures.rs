//! Test fixtures shared by this crate's tests, the server's and the fuzz targets: a snapshot
//! with a few services and a query builder.
#![doc(hidden)]

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::resolve::{ClusterAddrs, Port, Service, Snapshot};

/// A snapshot: `payment-service.default` exported by two clusters, with ports.
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
