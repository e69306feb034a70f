use super::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use subsea_lighthouse_core::fixtures::{query, snapshot as snap};

#[tokio::test]
async fn tcp_goes_through_hickory_server_with_the_same_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let zones = Zones::new(&[], 5).expect("zones");
    let shared = Arc::new(Shared {
        snapshot: RwLock::new(Some(Arc::new(snap()))),
        serial: Default::default(),
        zones: zones.clone(),
        metrics: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut server = hickory_server::server::Server::new(TcpHandler(shared.clone()));
    server.register_listener(listener, TCP_IDLE, 8);
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // Two queries on one connection, as a resolver pool sends them.
    for (name, rcode) in [
        (
            "payment-service.default.svc.clusterset.local.",
            ResponseCode::NoError,
        ),
        ("nothing.default.svc.clusterset.local.", ResponseCode::NXDomain),
    ] {
        let q = query(name, RecordType::A, Some(1232));
        conn.write_all(&(q.len() as u16).to_be_bytes())
            .await
            .expect("write");
        conn.write_all(&q).await.expect("write");
        let mut len = [0u8; 2];
        conn.read_exact(&mut len).await.expect("length");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut body).await.expect("answer");
        let got = Message::from_vec(&body).expect("decodes");
        let want = Message::from_vec(&respond(Some(&snap()), &zones, 0, &q, false).expect("answer"))
            .expect("decodes");
        assert_eq!(got.metadata.id, 4242);
        assert_eq!(got.metadata.response_code, rcode, "{name}");
        assert!(got.metadata.authoritative);
        assert_eq!(got.answers, want.answers, "{name}");
        assert_eq!(got.authorities, want.authorities, "{name}");
    }
    let m = shared.metrics.render();
    assert!(
        m.contains("subsea_dns_queries_total{type=\"A\",rcode=\"NXDOMAIN\"} 1"),
        "TCP queries are counted:\n{m}"
    );
    let _ = server.shutdown_gracefully().await;
}

#[test]
fn cpu_lists_parse_like_the_kernel_writes_them() {
    assert_eq!(cpu_list("0-1"), vec![0, 1]);
    assert_eq!(cpu_list("2,4-6,9"), vec![2, 4, 5, 6, 9]);
    assert_eq!(cpu_list("3"), vec![3]);
    assert_eq!(cpu_list("x,1-y,7"), vec![7]);
    assert!(cpu_list("").is_empty());
}

#[test]
fn sockets_steer_by_cpu_at_light_load_and_spread_under_load() {
    // Steering: one loop takes a CPU's queries; it stays until one loop is busy.
    assert!(steer(&[20_000, 0], true));
    assert!(!steer(&[30_000, 0], true));
    // Spread: back to steering only when the whole server is quiet (hysteresis).
    assert!(!steer(&[10_000, 10_000], false));
    assert!(steer(&[5_000, 4_000], false));
    assert!(steer(&[], true));
}
