use super::*;
use crate::fixtures::{query, snapshot as snap};
use crate::resolve::Service;
use hickory_proto::op::Query;

fn ask(s: Option<&Snapshot>, name: &str, t: RecordType) -> Message {
    let zones = Zones::new(&["example.org".into()], 5).expect("zones");
    let out = respond(s, &zones, 7, &query(name, t, None), true).expect("an answer");
    Message::from_vec(&out).expect("decodes")
}

#[test]
fn a_known_service_gets_an_authoritative_a_record_with_the_ttl() {
    let s = snap();
    let m = ask(
        Some(&s),
        "payment-service.default.svc.clusterset.local.",
        RecordType::A,
    );
    assert_eq!(m.metadata.id, 4242);
    assert!(m.metadata.authoritative);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 5);
    assert_eq!(m.answers[0].data, RData::A(A("100.66.0.7".parse().expect("ip"))));
    // Case-insensitive, and custom domains answer the same.
    let m = ask(
        Some(&s),
        "Payment-Service.DEFAULT.svc.example.org.",
        RecordType::A,
    );
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn negative_answers_carry_the_soa_and_the_right_rcode() {
    let s = snap();
    let nx = ask(Some(&s), "nothing.default.svc.clusterset.local.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(matches!(nx.authorities[0].data, RData::SOA(_)));
    let nodata = ask(
        Some(&s),
        "payment-service.default.svc.clusterset.local.",
        RecordType::MX,
    );
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert!(matches!(nodata.authorities[0].data, RData::SOA(_)));
    let srv = ask(
        Some(&s),
        "_http._tcp.payment-service.default.svc.clusterset.local.",
        RecordType::SRV,
    );
    assert_eq!(srv.answers.len(), 1);
    let txt = ask(Some(&s), "dns-version.clusterset.local.", RecordType::TXT);
    assert_eq!(txt.answers.len(), 1);
}

#[test]
fn empty_zones_answer_nxdomain_with_their_soa() {
    let zones = Zones::new(&[], 5)
        .expect("zones")
        .with_empty(&["cluster.local".into()])
        .expect("empty");
    let s = snap();
    let out = respond(
        Some(&s),
        &zones,
        1,
        &query("web.default.svc.cluster.local.", RecordType::A, None),
        true,
    )
    .expect("answer");
    let m = Message::from_vec(&out).expect("decodes");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
}

#[test]
fn out_of_zone_is_refused_and_before_the_first_sync_servfail() {
    let s = snap();
    assert_eq!(
        ask(Some(&s), "example.com.", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    assert_eq!(
        ask(
            None,
            "payment-service.default.svc.clusterset.local.",
            RecordType::A
        )
        .metadata
        .response_code,
        ResponseCode::ServFail
    );
}

#[test]
fn edns_is_clamped_and_oversized_udp_answers_truncate() {
    let mut s = snap();
    let many: Vec<std::net::IpAddr> = (0..200u8)
        .map(|i| std::net::IpAddr::from([10, 130, 1, i]))
        .collect();
    s.services.insert(
        ("default".into(), "big".into()),
        std::sync::Arc::new(Service {
            headless: true,
            backends: many
                .iter()
                .map(|ip| crate::resolve::Backend {
                    cluster: "c2".into(),
                    hostname: None,
                    ips: vec![*ip],
                    ready: true,
                })
                .collect(),
            ..Default::default()
        }),
    );
    let zones = Zones::new(&[], 5).expect("zones");
    let q = query("big.default.svc.clusterset.local.", RecordType::A, Some(4096));
    let udp = Message::from_vec(&respond(Some(&s), &zones, 1, &q, true).expect("answer")).expect("decodes");
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    assert_eq!(udp.edns.as_ref().map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
    let tcp = Message::from_vec(&respond(Some(&s), &zones, 1, &q, false).expect("answer")).expect("decodes");
    assert_eq!(tcp.answers.len(), 200);
}

#[test]
fn garbage_never_panics_and_short_junk_is_dropped() {
    let zones = Zones::new(&[], 5).expect("zones");
    let s = snap();
    assert!(respond(Some(&s), &zones, 1, &[1, 2, 3], true).is_none());
    let formerr = respond(
        Some(&s),
        &zones,
        1,
        &[0xab, 0xcd, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xff],
        true,
    )
    .expect("FORMERR");
    let m = Message::from_vec(&formerr).expect("decodes");
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (0xabcd, ResponseCode::FormErr)
    );
    let good = query(
        "payment-service.default.svc.clusterset.local.",
        RecordType::A,
        Some(1232),
    );
    let mut x: u32 = 99;
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..3 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x >> 8) as usize % b.len();
            b[i] = (x >> 16) as u8;
        }
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        b.truncate(1 + (x as usize % b.len()));
        let _ = respond(Some(&s), &zones, 1, &b, true);
    }
}

#[test]
fn the_fast_path_answers_exactly_as_the_full_one() {
    let mut s = snap();
    std::sync::Arc::get_mut(
        s.services
            .get_mut(&("default".to_string(), "payment-service".to_string()))
            .expect("svc"),
    )
    .expect("not shared yet")
    .clusters[0]
        .ips
        .push("fd00:66::7".parse().expect("ip"));
    let zones = Zones::new(&["example.org".into()], 5).expect("zones");
    let names = [
        "payment-service.default.svc.clusterset.local.",
        "PAYMENT-service.Default.svc.clusterset.local.",
        "c2.payment-service.default.svc.clusterset.local.",
        "nothing.default.svc.clusterset.local.",
        "default.svc.clusterset.local.",
        "payment-service.default.svc.example.org.",
        "c9.payment-service.default.svc.clusterset.local.",
    ];
    let mut out = Vec::new();
    let mut fast_answered = 0;
    for name in names {
        for t in [RecordType::A, RecordType::AAAA] {
            for edns in [None, Some(1232), Some(4096)] {
                let q = query(name, t, edns);
                let slow = Message::from_vec(&respond(Some(&s), &zones, 9, &q, true).expect("slow"))
                    .expect("decodes");
                if !fast::respond(&s, &zones, 9, &q, &mut out) {
                    continue;
                }
                fast_answered += 1;
                let fast = Message::from_vec(&out).expect("the fast answer decodes");
                assert_eq!(fast.metadata.id, slow.metadata.id, "{name} {t}");
                assert_eq!(
                    fast.metadata.response_code, slow.metadata.response_code,
                    "{name} {t}"
                );
                assert_eq!(fast.metadata.authoritative, slow.metadata.authoritative);
                assert_eq!(fast.metadata.recursion_desired, slow.metadata.recursion_desired);
                assert_eq!(fast.queries, slow.queries, "{name} {t}");
                assert_eq!(fast.answers, slow.answers, "{name} {t}");
                assert_eq!(fast.authorities, slow.authorities, "{name} {t}");
                assert_eq!(
                    fast.edns.as_ref().map(|e| e.max_payload()),
                    slow.edns.as_ref().map(|e| e.max_payload())
                );
            }
        }
    }
    assert_eq!(
        fast_answered,
        names.len() * 2 * 3,
        "every plain A/AAAA query takes the fast path"
    );
    // SRV and TXT are left to the full path.
    assert!(!fast::respond(
        &s,
        &zones,
        9,
        &query(names[0], RecordType::SRV, None),
        &mut out
    ));
}

#[test]
fn the_fast_path_never_panics_on_junk() {
    let s = snap();
    let zones = Zones::new(&[], 5).expect("zones");
    let good = query(
        "payment-service.default.svc.clusterset.local.",
        RecordType::A,
        Some(1232),
    );
    let mut out = Vec::new();
    let mut x: u32 = 7;
    for _ in 0..50_000 {
        let mut b = good.clone();
        for _ in 0..4 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x >> 8) as usize % b.len();
            b[i] = (x >> 16) as u8;
        }
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        b.truncate(1 + (x as usize % b.len()));
        if fast::respond(&s, &zones, 1, &b, &mut out) {
            Message::from_vec(&out).expect("whatever the fast path answers decodes");
        }
    }
}

#[test]
fn an_unknown_edns_version_is_answered_badvers() {
    let s = snap();
    let zones = Zones::new(&[], 5).expect("zones");
    let mut m = Message::query();
    m.metadata.id = 7;
    m.add_query(Query::query(
        Name::from_ascii("payment-service.default.svc.clusterset.local.").expect("name"),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_version(1);
    m.set_edns(e);
    let q = m.to_vec().expect("encode");
    let mut out = Vec::new();
    assert!(
        !fast::respond(&s, &zones, 1, &q, &mut out),
        "the fast path leaves it to the full one"
    );
    let reply = Message::from_vec(&respond(Some(&s), &zones, 1, &q, true).expect("answer")).expect("decodes");
    // 16 is both BADVERS and BADSIG (RFC 6891, RFC 8945); the decoder names it BADSIG.
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.edns.as_ref().map(|e| e.version()), Some(0));
}

fn names(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::PTR(p) => p.0.to_string(),
            RData::SRV(s) => format!("{} {}", s.port, s.target),
            other => format!("{other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn headless_srv_lists_every_ready_backend_for_every_port() {
    let s = snap();
    let m = ask(
        Some(&s),
        "_pg._tcp.db.default.svc.clusterset.local.",
        RecordType::SRV,
    );
    assert_eq!(
        names(&m),
        [
            "5432 10-130-4-12.c2.db.default.svc.clusterset.local.",
            "5432 db-0.c2.db.default.svc.clusterset.local.",
        ],
        "the not-ready db-2 is left out; db-0's two addresses are one target"
    );
    let all = ask(Some(&s), "db.default.svc.clusterset.local.", RecordType::SRV);
    assert_eq!(all.answers.len(), 4, "2 backends × 2 ports: {:?}", names(&all));
    // Each target resolves, the hostname-less one by its dashed address.
    let a = ask(
        Some(&s),
        "10-130-4-12.c2.db.default.svc.clusterset.local.",
        RecordType::A,
    );
    assert_eq!(a.answers[0].data, RData::A(A("10.130.4.12".parse().expect("ip"))));
}

#[test]
fn ptr_names_a_headless_backend_and_unknown_addresses_are_refused() {
    let s = snap();
    let v4 = ask(Some(&s), "11.4.130.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(v4.metadata.response_code, ResponseCode::NoError);
    assert!(v4.metadata.authoritative);
    assert_eq!(names(&v4), ["db-0.c2.db.default.svc.clusterset.local."]);
    let nibbles: String = "fd000130000000000000000000000011"
        .chars()
        .rev()
        .map(|c| format!("{c}."))
        .collect();
    let v6 = ask(Some(&s), &format!("{nibbles}ip6.arpa."), RecordType::PTR);
    assert_eq!(names(&v6), ["db-0.c2.db.default.svc.clusterset.local."]);
    let nameless = ask(Some(&s), "12.4.130.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        names(&nameless),
        ["10-130-4-12.c2.db.default.svc.clusterset.local."]
    );
    for other in [
        "13.4.130.10.in-addr.arpa.", // not ready
        "7.0.66.100.in-addr.arpa.",  // a ClusterSetIP service's cluster IP: not a headless backend
        "1.2.3.4.in-addr.arpa.",
        "4.3.2.in-addr.arpa.",
    ] {
        let m = ask(Some(&s), other, RecordType::PTR);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{other}");
        assert!(m.answers.is_empty());
    }
    let before_sync = ask(None, "11.4.130.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(before_sync.metadata.response_code, ResponseCode::ServFail);
    let other_type = ask(Some(&s), "11.4.130.10.in-addr.arpa.", RecordType::A);
    assert_eq!(other_type.metadata.response_code, ResponseCode::NoError);
    assert!(other_type.answers.is_empty());
}

#[test]
fn a_vip_is_the_answer_and_has_a_ptr() {
    let mut s = snap();
    let key = ("default".to_string(), "payment-service".to_string());
    let mut svc = Service {
        clusters: s.services[&key].clusters.clone(),
        ports: s.services[&key].ports.clone(),
        vips: vec!["243.0.0.9".parse().expect("ip")],
        ..Default::default()
    };
    svc.clusters[0].ready = true;
    s.services.insert(key, std::sync::Arc::new(svc));
    s.index_reverse();
    let a = ask(
        Some(&s),
        "payment-service.default.svc.clusterset.local.",
        RecordType::A,
    );
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].data, RData::A(A("243.0.0.9".parse().expect("ip"))));
    let ptr = ask(Some(&s), "9.0.0.243.in-addr.arpa.", RecordType::PTR);
    assert_eq!(names(&ptr), ["payment-service.default.svc.clusterset.local."]);
}
