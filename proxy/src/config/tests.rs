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
fn reserved_settings_are_accepted_and_listed() {
    let c = Config::from_strings(&env(&[("OTLP_ADDR", "jaeger:4317")])).expect("valid");
    assert_eq!(c.unused, vec!["WEFT_PROXY_OTLP_ADDR".to_string()]);
}

#[test]
fn the_controller_address_is_checked() {
    let c = Config::from_strings(&env(&[
        (
            "CONTROLLER_ADDR",
            "weft-controller.weft.svc.cluster.local:8086",
        ),
        ("DISCOVERY_TIMEOUT", "250ms"),
    ]))
    .expect("valid");
    assert_eq!(
        c.controller.as_deref(),
        Some("weft-controller.weft.svc.cluster.local:8086")
    );
    assert_eq!(c.discovery_timeout, std::time::Duration::from_millis(250));
    assert!(c.unused.is_empty());
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
