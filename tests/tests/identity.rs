//! Identity and mTLS end to end: a real controller issuing certificates from a local CA, real
//! sidecars certifying, renewing and talking TLS 1.3 to each other in network-namespace pods.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use weft_cli_local::{
    Controller, LocalIdentity, Sidecar, SidecarError,
    controller::IdentityArgs,
    manifests, metric_sum,
    shop::{self, CLIENT_ID, NAMESPACE, Options, PORT, SERVED_BY, Shop},
    traffic::{self, Request, Traffic},
};
use weft_e2e::shop;

/// A meshed pod and a Service over it, written as a manifest the controller reads: the
/// client's sidecar will expect the pod to prove `sa`'s identity.
fn meshed_service(
    shop: &Shop,
    file: &str,
    name: &str,
    pod_ip: Ipv4Addr,
    cluster_ip: Ipv4Addr,
    sa: &str,
) {
    let docs = [
        manifests::pod(&manifests::PodSpec {
            namespace: NAMESPACE,
            name,
            ip: IpAddr::V4(pod_ip),
            service_account: sa,
            app: name,
            version: "v1",
        }),
        manifests::service(
            NAMESPACE,
            name,
            IpAddr::V4(cluster_ip),
            PORT,
            &[(name, IpAddr::V4(pod_ip))],
        ),
    ];
    shop.write_manifest(file, &docs.join("---\n"))
        .expect("write manifest");
}

fn get(ip: Ipv4Addr, host: &str, path: &str) -> Request {
    Request::get(format!("http://{ip}:{PORT}{path}"), SERVED_BY).header(
        "host",
        &format!("{host}.{NAMESPACE}.svc.cluster.local:{PORT}"),
    )
}

#[test]
fn sidecars_talk_tls_and_the_server_sees_the_client_identity() {
    let Some((_guard, shop)) = shop("sidecars_talk_tls", Options::default()) else {
        return;
    };
    // The web app repeats the identity its sidecar reported in `weft-client-id`.
    let req = Request::get(Shop::web_request("/").url, CLIENT_ID)
        .header("host", &format!("{}:{PORT}", shop::WEB_HOST));
    let tally = traffic::tally(&shop.client.pod, &req, 200, 4);
    assert_eq!(
        tally.failures,
        0,
        "{:?}\n{}",
        tally.errors,
        shop.client.process.log()
    );
    let client_id = LocalIdentity::identity(NAMESPACE, "client").expect("name");
    assert_eq!(
        tally.by_value.keys().collect::<Vec<_>>(),
        vec![&client_id],
        "every request reaches the app with the client's identity: {tally:?}"
    );

    // A listener that only records bytes, registered as a meshed `web` pod: what the client's
    // sidecar sends it is a TLS 1.3 ClientHello naming the identity, never the request.
    let recorder = shop.net.pod("recorder").expect("pod");
    let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = seen.clone();
    let _listener = recorder.spawn(move || async move {
        use tokio::io::AsyncReadExt;
        let Ok(listener) =
            tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], PORT))).await
        else {
            return;
        };
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            // The ClientHello arrives at once; the peer then waits for a ServerHello that
            // never comes, so a short read window ends the recording.
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut buf)).await
            {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        }
    });
    recorder
        .wait_listening(&[PORT], Duration::from_secs(5))
        .expect("recorder listens");
    let rec_ip = Ipv4Addr::new(10, 43, 0, 20);
    meshed_service(
        &shop,
        "recorder.yaml",
        "recorder",
        recorder.ip,
        rec_ip,
        "web",
    );
    let secret = "/secret-path-7f3a";
    let mut outcome = traffic::tally(&shop.client.pod, &get(rec_ip, "recorder", secret), 1, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && Instant::now() < deadline {
        outcome = traffic::tally(&shop.client.pod, &get(rec_ip, "recorder", secret), 1, 1);
    }
    let bytes = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        !bytes.is_empty(),
        "the recorder saw nothing; last outcome {outcome:?}"
    );
    assert_eq!(
        &bytes[..2],
        &[0x16, 0x03],
        "a TLS handshake record, got {:?}",
        &bytes[..bytes.len().min(16)]
    );
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(secret.as_bytes()) && !contains(b"GET "),
        "the request leaked in cleartext"
    );
    let web_id = LocalIdentity::identity(NAMESPACE, "web").expect("name");
    assert!(
        contains(web_id.as_bytes()),
        "the ClientHello names the expected identity as SNI"
    );
    // supported_versions offering only TLS 1.3: extension 0x002b, length 3, list length 2, 0x0304.
    assert!(
        contains(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]),
        "the client offers TLS 1.3 only"
    );
    assert_eq!(
        outcome.failures, 1,
        "a peer that cannot prove its identity gets no request"
    );
}

#[test]
fn a_forged_token_or_another_identity_gets_no_certificate() {
    let Some((_guard, shop)) = shop("forged_token", Options::default()) else {
        return;
    };
    let identity = shop.identity.as_ref().expect("mTLS is on");
    // One pod per attempt: a proxy that never gets ready keeps its ports.
    let start = |pod: &str, env: Vec<(String, String)>| {
        let pod = shop.net.pod(pod).expect("pod");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
        Sidecar::inject(&pod, &[], &env)
    };
    let base = shop::identity_env(identity, &shop.controller, NAMESPACE, "client", "mallory")
        .expect("identity env");
    let set = |key: &str, value: String| {
        let mut env = base.clone();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value));
        env
    };

    let forged = mallory_file(&shop, "forged.token", "not-a-registered-token");
    match start("mallory", set("WEFT_PROXY_TOKEN_FILE", forged)) {
        Err(SidecarError::NotReady { log, .. }) => assert!(
            log.contains("Unauthenticated") || log.contains("unknown token"),
            "the proxy says why: {log}"
        ),
        other => panic!("a forged token must not get a certificate: {other:?}"),
    }
    let web = LocalIdentity::identity(NAMESPACE, "web").expect("name");
    match start("mallory-2", set("WEFT_PROXY_IDENTITY_NAME", web)) {
        Err(SidecarError::NotReady { log, .. }) => assert!(
            log.contains("PermissionDenied") || log.contains("permission"),
            "the proxy says why: {log}"
        ),
        other => panic!("client's token must not certify web's identity: {other:?}"),
    }
    let log = shop.controller.log();
    assert!(
        !log.contains("not-a-registered-token"),
        "tokens are never logged"
    );
}

fn mallory_file(shop: &Shop, name: &str, text: &str) -> String {
    use std::os::unix::fs::{PermissionsExt, chown};
    let path = shop.net.log_dir().join(name);
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    chown(&path, Some(weft_cli_local::PROXY_UID), None).expect("chown");
    path.display().to_string()
}

#[test]
fn peers_from_another_trust_anchor_are_refused_both_ways() {
    let Some((_guard, shop)) = shop("another_trust_anchor", Options::default()) else {
        return;
    };
    // A second mesh: its own CA and controller, which also calls its pod a `web`.
    let other = LocalIdentity::create(&shop.net.log_dir().join("other-identity")).expect("CA");
    let other_dir = shop.net.log_dir().join("other-manifests");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let rogue_pod = shop.net.pod("rogue").expect("pod");
    let v1_ip = shop.v1.pod.ip;
    let docs = [
        manifests::namespace(NAMESPACE),
        manifests::pod(&manifests::PodSpec {
            namespace: NAMESPACE,
            name: "web-v1",
            ip: IpAddr::V4(v1_ip),
            service_account: "web",
            app: "web",
            version: "v1",
        }),
        manifests::service(
            NAMESPACE,
            "web",
            IpAddr::V4(shop::WEB_IP),
            PORT,
            &[("web-v1", IpAddr::V4(v1_ip))],
        ),
    ];
    manifests::write(&other_dir, "cluster.yaml", &docs.join("---\n")).expect("write");
    let other_ctl = Controller::start_named(
        &shop.net,
        "other-controller",
        &other_dir,
        Some(IdentityArgs::new(&other, Duration::from_secs(3600))),
    )
    .expect("second controller");
    let mut env = shop::identity_env(&other, &other_ctl, NAMESPACE, "web", "rogue").expect("env");
    env.push((
        "WEFT_PROXY_CONTROLLER_ADDR".into(),
        other_ctl.addr().to_string(),
    ));
    env.push(("WEFT_PROXY_WORKLOAD".into(), format!("{NAMESPACE}/rogue")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    let rogue = Sidecar::inject(&rogue_pod, &[], &env)
        .expect("the rogue sidecar certifies with its own CA");
    let _app = rogue_app(&rogue);

    // The rogue calls web-v1 with a certificate web-v1 does not trust.
    let tally = traffic::tally(&rogue.pod, &Shop::web_request("/"), 5, 1);
    assert_eq!(
        tally.failures, 5,
        "web-v1 must refuse a client from another trust anchor: {tally:?}"
    );

    // The client calls the rogue, which presents a certificate the client does not trust.
    let rogue_ip = Ipv4Addr::new(10, 43, 0, 30);
    meshed_service(&shop, "rogue.yaml", "rogue", rogue.pod.ip, rogue_ip, "web");
    std::thread::sleep(Duration::from_millis(500));
    let tally = traffic::tally(&shop.client.pod, &get(rogue_ip, "rogue", "/"), 5, 1);
    assert_eq!(
        tally.failures, 5,
        "the client must refuse a server from another trust anchor: {tally:?}"
    );
    assert!(
        tally
            .errors
            .iter()
            .all(|e| e.contains("502") || e.contains("503")),
        "refused by the client's proxy: {tally:?}"
    );
    assert!(
        shop.client.process.log().contains("UnknownIssuer")
            || shop.client.process.log().contains("certificate"),
        "the client's proxy says why:\n{}",
        shop.client.process.log()
    );
}

/// The demo app in the rogue pod, so a refusal is the TLS layer's doing, not a missing app.
fn rogue_app(rogue: &Sidecar) -> weft_cli_local::Process {
    let weft = weft_cli_local::bin_path("weft").expect("weft binary");
    let mut app = rogue.pod.command("setpriv");
    app.arg("--pdeathsig=KILL").arg(&weft).args([
        "demo-app",
        "--name",
        "rogue",
        "--port",
        &PORT.to_string(),
    ]);
    let process = rogue.pod.start("app", app).expect("start app");
    rogue
        .pod
        .wait_listening(&[PORT], Duration::from_secs(10))
        .expect("app listens");
    process
}

#[test]
fn certificates_and_the_issuer_rotate_under_load_without_a_failed_request() {
    let options = Options {
        weights: (50, 50),
        leaf_lifetime: Duration::from_secs(60),
        // Opaque on the client side: every client connection becomes a new TLS connection
        // between the sidecars, so handshakes keep happening across the rotations.
        proxy_env: vec![("WEFT_PROXY_OPAQUE_PORTS".into(), PORT.to_string())],
        ..Options::default()
    };
    let Some((_guard, shop)) = shop("rotation", options) else {
        return;
    };
    let identity = shop.identity.as_ref().expect("mTLS is on");
    let fresh = Shop::web_request("/").header("connection", "close");
    let new_conns = Traffic::start(&shop.client.pod, &fresh, 2, Duration::from_millis(50));
    let pooled = Traffic::start(
        &shop.client.pod,
        &Shop::web_request("/"),
        2,
        Duration::from_millis(20),
    );
    let expiry = |s: &Sidecar| {
        metric_sum(
            &s.metrics(),
            "identity_cert_expiration_timestamp_seconds",
            &[],
        )
    };
    let mut seen = [BTreeSet::new(), BTreeSet::new(), BTreeSet::new()];
    let start = Instant::now();
    let mut rotated_at = 0;
    while start.elapsed() < Duration::from_secs(180) {
        for (set, sidecar) in seen.iter_mut().zip([&shop.client, &shop.v1, &shop.v2]) {
            let at = expiry(sidecar) as u64;
            if at > 0 {
                set.insert(at);
            }
        }
        if rotated_at == 0 && start.elapsed() > Duration::from_secs(90) {
            identity.rotate_issuer().expect("rotate the issuer");
            rotated_at = unix_now();
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let since = start - Duration::from_secs(1);
    for (name, traffic) in [("new connections", &new_conns), ("pooled", &pooled)] {
        let tally = traffic.since(since);
        assert!(tally.ok() > 1000, "{name}: too little traffic: {tally:?}");
        assert_eq!(
            tally.failures,
            0,
            "{name}: {:?}\n{}",
            tally.errors,
            shop.client.process.log()
        );
    }
    for (set, name) in seen.iter().zip(["client", "web-v1", "web-v2"]) {
        assert!(
            set.len() >= 3,
            "{name}: certificates must rotate at least twice in 3 minutes; expiries seen {set:?}"
        );
    }
    // The controller took the new issuer (generation 1 was the first), and proxies kept
    // certifying after it: the rotations above spanned it with no failed request.
    let (status, body) = weft_cli_local::get(
        &shop.controller.pod,
        SocketAddr::from(([127, 0, 0, 1], weft_cli_local::controller::ADMIN_PORT)),
        "/identity",
    )
    .expect("controller admin");
    assert_eq!(status, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        status["issuer"]["generation"].as_u64() >= Some(2),
        "the controller must have loaded the rotated issuer: {status:#}"
    );
    assert_eq!(
        status["issuer"]["lastReloadError"],
        serde_json::Value::Null,
        "{status:#}"
    );
    let renewed_after_rotation = seen[0].iter().filter(|&&t| t > rotated_at + 60).count();
    assert!(
        renewed_after_rotation >= 1,
        "the client renewed after the issuer changed: {:?}",
        seen[0]
    );
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
