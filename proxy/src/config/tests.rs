use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
        .collect()
}

#[test]
fn defaults_follow_the_design() {
    let c = Config::from_strings(&env(&[])).expect("defaults are valid");
    assert_eq!(c.inbound.required, vec!["0.0.0.0:4143".parse().unwrap()]);
    assert_eq!(c.inbound.optional, vec!["[::]:4143".parse().unwrap()]);
    assert_eq!(c.outbound.required, vec!["127.0.0.1:4140".parse().unwrap()]);
    assert_eq!(c.admin.required, vec!["0.0.0.0:4191".parse().unwrap()]);
    assert_eq!(c.detect_timeout, Duration::from_secs(1));
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    for p in [25, 587, 3306, 4444, 5432, 6379, 9300, 11211] {
        assert!(c.opaque_ports.contains(p), "{p} is opaque by default");
    }
    assert!(!c.opaque_ports.contains(80));
}

#[test]
fn explicit_values_are_used() {
    let c = Config::from_strings(&env(&[
        ("INBOUND_ADDR", "10.0.0.1:5000, [::]:5000"),
        ("OPAQUE_PORTS", "9000-9002,7000"),
        ("DETECT_TIMEOUT", "250ms"),
        ("SHUTDOWN_GRACE", "2m"),
        ("WORKLOAD", "shop/web-0"),
        ("LOG", "debug"),
    ]))
    .expect("valid");
    assert_eq!(c.inbound.required.len(), 2);
    assert!(c.inbound.optional.is_empty());
    assert!(c.opaque_ports.contains(9001) && c.opaque_ports.contains(7000));
    assert!(
        !c.opaque_ports.contains(25),
        "explicit list replaces defaults"
    );
    assert_eq!(c.detect_timeout, Duration::from_millis(250));
    assert_eq!(c.shutdown_grace, Duration::from_secs(120));
    assert_eq!(c.workload.as_deref(), Some("shop/web-0"));
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let err = Config::from_strings(&env(&[
        ("INBOUND_ADDR", "nowhere"),
        ("OPAQUE_PORTS", "25,70000"),
        ("DETECT_TIMEOUT", "1 second"),
        ("SHUTDOWN_GRACE", "-3s"),
        ("WORKLOAD", "justapod"),
        ("LOG", "[[["),
        ("WORKER_THREADS", "0"),
        ("INBOUD_ADDR", "0.0.0.0:1"),
    ]))
    .expect_err("all invalid");
    let text = err.to_string();
    assert_eq!(err.0.len(), 8, "{text}");
    for needle in [
        "WEFT_PROXY_INBOUND_ADDR=\"nowhere\"",
        "\"70000\" is not a port",
        "WEFT_PROXY_DETECT_TIMEOUT=\"1 second\"",
        "WEFT_PROXY_SHUTDOWN_GRACE",
        "expected `namespace/pod`",
        "not a log filter",
        "WEFT_PROXY_WORKER_THREADS",
        "WEFT_PROXY_INBOUD_ADDR is not a Weft proxy setting",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("ms").is_err());
    assert!(parse_duration("5").is_err());
    assert!(parse_duration("5d").is_err());
    assert!(parse_duration("99999999999999999999h").is_err());
}

#[test]
fn port_sets() {
    let s = PortSet::parse("1, 65535, 10:12").expect("valid");
    for p in [1, 10, 11, 12, 65535] {
        assert!(s.contains(p));
    }
    assert!(!s.contains(13) && !s.contains(2));
    assert!(PortSet::parse("0").is_err());
    assert!(PortSet::parse("9-3").is_err());
    assert!(
        PortSet::parse("")
            .expect("empty is fine")
            .eq(&PortSet::empty())
    );
}

#[test]
fn tracing_follows_the_collector_address_and_names_the_workload() {
    let c = Config::from_strings(&env(&[])).expect("valid");
    assert_eq!(c.trace, None, "no collector, no spans");
    assert_eq!(c.access_log, AccessLog::Off);
    let c = Config::from_strings(&env(&[
        ("OTLP_ADDR", "jaeger.weft-system:4317"),
        ("WORKLOAD", "shop/web-7d4b9c8f6-x2x9z"),
        ("NODE_NAME", "node-1"),
        ("ACCESS_LOG", "json"),
    ]))
    .expect("valid");
    let t = c.trace.expect("tracing on");
    assert_eq!(t.collector, "http://jaeger.weft-system:4317");
    assert_eq!(t.service_name, "web.shop");
    assert_eq!(
        (t.namespace.as_deref(), t.pod.as_deref()),
        (Some("shop"), Some("web-7d4b9c8f6-x2x9z"))
    );
    assert_eq!(t.node.as_deref(), Some("node-1"));
    assert_eq!((t.sampling, t.queue), (1.0, 2048));
    assert_eq!(c.access_log, AccessLog::Json);
    let c = Config::from_strings(&env(&[
        ("OTLP_ADDR", "http://10.0.0.9:4317"),
        ("TRACE_SAMPLING", "0.25"),
        ("TRACE_SERVICE_NAME", "checkout"),
        ("TRACE_QUEUE", "64"),
    ]))
    .expect("valid");
    let t = c.trace.expect("tracing on");
    assert_eq!(
        (t.collector.as_str(), t.sampling, t.queue),
        ("http://10.0.0.9:4317", 0.25, 64)
    );
    assert_eq!(t.service_name, "checkout");
}

#[test]
fn bad_tracing_settings_are_each_reported() {
    let err = Config::from_strings(&env(&[
        ("OTLP_ADDR", "https://jaeger:4317"),
        ("TRACE_SAMPLING", "2"),
        ("TRACE_QUEUE", "0"),
        ("ACCESS_LOG", "xml"),
    ]))
    .expect_err("all bad")
    .to_string();
    for want in [
        "WEFT_PROXY_OTLP_ADDR=\"https://jaeger:4317\": TLS to the collector is not supported",
        "WEFT_PROXY_TRACE_SAMPLING=\"2\": expected a ratio from 0 to 1",
        "WEFT_PROXY_TRACE_QUEUE=\"0\": expected a number of spans",
        "WEFT_PROXY_ACCESS_LOG=\"xml\": expected json, apache or off",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    for bad in ["jaeger", "jaeger:0", ":4317", "http://jaeger/v1:4317"] {
        let err = Config::from_strings(&env(&[("OTLP_ADDR", bad)])).expect_err(bad);
        assert!(
            err.to_string().contains("expected HOST:PORT"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn workload_names_drop_generated_suffixes() {
    for (pod, name) in [
        ("web-7d4b9c8f6-x2x9z", "web"),
        ("web-v1", "web-v1"),
        ("agent-x2x9z", "agent"),
        ("db-0", "db-0"),
        ("client", "client"),
        ("api-server-6f9d7b5c4d-4tgxk", "api-server"),
        ("web-aeiou", "web-aeiou"),
    ] {
        assert_eq!(workload_name(pod), name, "{pod}");
    }
}

#[test]
fn the_controller_address_is_checked() {
    let c = Config::from_strings(&env(&[
        (
            "CONTROLLER_ADDR",
            "weft-controller.weft-system.svc.cluster.local:8086",
        ),
        ("DISCOVERY_TIMEOUT", "250ms"),
    ]))
    .expect("valid");
    assert_eq!(
        c.controller.as_deref(),
        Some("weft-controller.weft-system.svc.cluster.local:8086")
    );
    assert_eq!(c.discovery_timeout, std::time::Duration::from_millis(250));
    assert_eq!(
        Config::from_strings(&env(&[])).expect("valid").controller,
        None
    );
    for bad in ["weft-controller", ":8086", "host:0", "host:http"] {
        let err = Config::from_strings(&env(&[("CONTROLLER_ADDR", bad)])).expect_err(bad);
        assert!(
            err.0[0].contains("WEFT_PROXY_CONTROLLER_ADDR"),
            "{bad}: {err:?}"
        );
        assert!(err.0[0].contains("expected HOST:PORT"), "{bad}: {err:?}");
    }
}

#[test]
fn the_inbound_default_policy_and_cluster_networks() {
    let c = Config::from_strings(&env(&[])).expect("defaults are valid");
    assert_eq!(c.inbound_default_policy, DefaultPolicy::AllUnauthenticated);
    let defaults: Vec<String> = c.cluster_networks.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        defaults,
        [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fd00::/8"
        ]
    );

    for (text, policy) in [
        ("all-unauthenticated", DefaultPolicy::AllUnauthenticated),
        ("all-authenticated", DefaultPolicy::AllAuthenticated),
        ("cluster-authenticated", DefaultPolicy::ClusterAuthenticated),
        ("deny", DefaultPolicy::Deny),
    ] {
        let c = Config::from_strings(&env(&[
            ("INBOUND_DEFAULT_POLICY", text),
            ("CLUSTER_NETWORKS", " 10.42.0.0/16 , fd12::/64"),
        ]))
        .expect(text);
        assert_eq!(c.inbound_default_policy, policy);
        assert_eq!(
            c.cluster_networks,
            vec![
                "10.42.0.0/16".parse::<IpNet>().unwrap(),
                "fd12::/64".parse::<IpNet>().unwrap()
            ]
        );
    }

    let err = Config::from_strings(&env(&[
        ("INBOUND_DEFAULT_POLICY", "allow-all"),
        ("CLUSTER_NETWORKS", "10.0.0.0/8,10.0.0.0/33"),
    ]))
    .expect_err("both invalid");
    let text = err.to_string();
    assert_eq!(err.0.len(), 2, "{text}");
    for needle in [
        "WEFT_PROXY_INBOUND_DEFAULT_POLICY=\"allow-all\"",
        "expected all-unauthenticated, all-authenticated, cluster-authenticated or deny",
        "WEFT_PROXY_CLUSTER_NETWORKS",
        "\"10.0.0.0/33\" is not a network",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let err = Config::from_strings(&env(&[("CLUSTER_NETWORKS", " , ")])).expect_err("empty");
    assert!(err.0[0].contains("no network given"), "{err:?}");
}

// === identity ===

const NAME: &str = "web.shop.serviceaccount.identity.cluster.local";

fn root_pem() -> String {
    weft_certs::generate_root("cluster.local", Duration::from_secs(3600))
        .expect("a root")
        .cert_pem
}

fn identity_env(pem: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "IDENTITY_ADDR",
            "weft-controller.weft-system.svc.cluster.local:8080".into(),
        ),
        ("IDENTITY_NAME", NAME.into()),
        ("TOKEN_FILE", "/var/run/secrets/tokens/weft-identity".into()),
        ("TRUST_ANCHORS", pem.into()),
    ]
}

fn with(pairs: &[(&'static str, String)]) -> Result<Config, ConfigError> {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Config::from_strings(&env(&pairs))
}

#[test]
fn no_identity_settings_means_no_identity() {
    assert_eq!(
        Config::from_strings(&env(&[])).expect("valid").identity,
        None
    );
}

#[test]
fn a_full_identity_is_parsed_with_the_default_controller_name() {
    let pem = root_pem();
    let c = with(&identity_env(&pem)).expect("valid");
    let id = c.identity.expect("an identity");
    assert_eq!(
        id.addr,
        "weft-controller.weft-system.svc.cluster.local:8080"
    );
    assert_eq!(id.name.dns_name(), NAME);
    assert_eq!(
        id.token_file,
        std::path::PathBuf::from("/var/run/secrets/tokens/weft-identity")
    );
    let anchors = weft_certs::TrustAnchors::from_pem(&pem).expect("anchors");
    assert_eq!(id.trust_anchors, anchors.certs());
    assert_eq!(
        id.controller_name.to_str(),
        "weft-controller.weft-system.serviceaccount.identity.cluster.local"
    );
}

#[test]
fn anchors_may_come_from_a_file_and_the_controller_name_may_be_given() {
    let path = std::env::temp_dir().join(format!("weft-anchors-{}.pem", std::process::id()));
    std::fs::write(&path, root_pem()).expect("write the anchors");
    let mut pairs = identity_env("");
    pairs.pop();
    pairs.push(("TRUST_ANCHORS_FILE", path.display().to_string()));
    pairs.push(("CONTROLLER_NAME", "identity.weft.example".into()));
    let c = with(&pairs);
    let _ = std::fs::remove_file(&path);
    let id = c.expect("valid").identity.expect("an identity");
    assert_eq!(id.trust_anchors.len(), 1);
    assert_eq!(id.controller_name.to_str(), "identity.weft.example");
}

#[test]
fn a_partial_identity_lists_what_is_missing() {
    let err = with(&identity_env("")[..2]).expect_err("partial");
    let text = err.to_string();
    assert_eq!(err.0.len(), 1, "{text}");
    for needle in [
        "identity is partly configured",
        "WEFT_PROXY_IDENTITY_ADDR, WEFT_PROXY_IDENTITY_NAME set",
        "WEFT_PROXY_TOKEN_FILE, WEFT_PROXY_TRUST_ANCHORS (or TRUST_ANCHORS_FILE) missing",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The controller name alone is a partial set too.
    let err = with(&[("CONTROLLER_NAME", "weft-controller.example".into())]).expect_err("partial");
    assert!(
        err.0[0]
            .contains("WEFT_PROXY_IDENTITY_ADDR, WEFT_PROXY_IDENTITY_NAME, WEFT_PROXY_TOKEN_FILE"),
        "{err}"
    );
}

#[test]
fn bad_identity_values_are_each_reported() {
    let mut pairs =
        identity_env("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
    pairs[0].1 = "weft-identity".into();
    pairs[1].1 = "web.shop.svc.cluster.local".into();
    pairs.push(("CONTROLLER_NAME", "not a name".into()));
    let err = with(&pairs).expect_err("invalid");
    let text = err.to_string();
    assert_eq!(err.0.len(), 4, "{text}");
    for needle in [
        "WEFT_PROXY_IDENTITY_ADDR=\"weft-identity\": expected HOST:PORT",
        "WEFT_PROXY_IDENTITY_NAME=\"web.shop.svc.cluster.local\": \"web.shop.svc.cluster.local\" is not a Weft identity",
        "WEFT_PROXY_TRUST_ANCHORS=\"-----BEGIN CERTIFICATE-----",
        "not usable trust anchors: trust anchors",
        "WEFT_PROXY_CONTROLLER_NAME=\"not a name\": not a DNS name",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn anchors_are_checked_and_given_once() {
    let missing = "/nonexistent/weft/anchors.pem";
    let mut pairs = identity_env("");
    pairs.pop();
    pairs.push(("TRUST_ANCHORS_FILE", missing.into()));
    let err = with(&pairs).expect_err("unreadable");
    assert!(
        err.0[0].contains(
            "WEFT_PROXY_TRUST_ANCHORS_FILE=\"/nonexistent/weft/anchors.pem\": cannot read"
        ),
        "{err}"
    );

    let mut pairs = identity_env(&root_pem());
    pairs.push(("TRUST_ANCHORS_FILE", missing.into()));
    let err = with(&pairs).expect_err("both");
    assert!(
        err.0[0].contains("set the PEM or the file, not both"),
        "{err}"
    );

    // A workload certificate is not a CA, so it cannot be an anchor; the CertError says so.
    let err = with(&identity_env(&leaf_pem())).expect_err("not a CA");
    assert!(err.0[0].contains("WEFT_PROXY_TRUST_ANCHORS="), "{err}");
    assert!(err.0[0].contains("is not a CA"), "{err}");
}

fn leaf_pem() -> String {
    let td = "cluster.local";
    let root = weft_certs::generate_root(td, Duration::from_secs(3600)).expect("a root");
    let ca = weft_certs::Ca::from_pem(&root.cert_pem, &root.key_pem).expect("the root");
    let issuer =
        weft_certs::generate_issuer(&ca, td, Duration::from_secs(3600)).expect("an issuer");
    let anchors = weft_certs::TrustAnchors::from_pem(&root.cert_pem).expect("anchors");
    let issuer =
        weft_certs::Issuer::load(&issuer.cert_pem, &issuer.key_pem, &anchors).expect("the issuer");
    let id = weft_certs::ServiceAccountIdentity::parse_dns(NAME).expect("a name");
    let csr = weft_certs::LeafKey::generate()
        .expect("a key")
        .csr_der(&id)
        .expect("a CSR");
    let leaf = issuer
        .certify(
            &csr,
            &id,
            Duration::from_secs(600),
            std::time::SystemTime::now(),
        )
        .expect("a leaf");
    weft_certs::cert_to_pem(&leaf.chain[0])
}
