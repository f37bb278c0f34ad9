use super::*;

fn port(n: u16) -> Port {
    Port::new(n).expect("test ports are non-zero")
}

#[test]
fn ports() {
    assert_eq!("80".parse(), Ok(port(80)));
    assert_eq!(" 65535 ".parse(), Ok(port(65535)));
    assert_eq!("1".parse(), Ok(port(1)));
    assert_eq!(
        "0".parse::<Port>(),
        Err(ParseError::PortOutOfRange("0".into()))
    );
    assert_eq!(
        "65536".parse::<Port>(),
        Err(ParseError::PortOutOfRange("65536".into()))
    );
    assert_eq!(
        "99999999999999999999".parse::<Port>(),
        Err(ParseError::PortOutOfRange("99999999999999999999".into()))
    );
    for bad in ["", "http", "+80", "-1", "8o", "80.0"] {
        assert_eq!(
            bad.parse::<Port>(),
            Err(ParseError::NotAPort(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn port_ranges() {
    assert_eq!(
        "8000:8080".parse(),
        Ok(PortSpec::Range(port(8000), port(8080)))
    );
    assert_eq!(
        "8000-8080".parse(),
        Ok(PortSpec::Range(port(8000), port(8080)))
    );
    assert_eq!("25:25".parse(), Ok(PortSpec::Port(port(25))));
    assert_eq!("22".parse(), Ok(PortSpec::Port(port(22))));
    assert_eq!(
        "9000:8000".parse::<PortSpec>(),
        Err(ParseError::BadRange("9000:8000".into()))
    );
    for bad in ["80:", ":80", "-", "80-"] {
        assert_eq!(
            bad.parse::<PortSpec>(),
            Err(ParseError::BadRange(bad.into())),
            "{bad:?}"
        );
    }
    assert_eq!(
        "0:80".parse::<PortSpec>(),
        Err(ParseError::PortOutOfRange("0".into()))
    );
    assert_eq!(
        "1:70000".parse::<PortSpec>(),
        Err(ParseError::PortOutOfRange("70000".into()))
    );
    assert_eq!(
        "1:2:3".parse::<PortSpec>(),
        Err(ParseError::NotAPort("2:3".into()))
    );
    assert_eq!(
        PortSpec::Range(port(1), port(2)).to_string(),
        "1:2",
        "ranges print in iptables' syntax"
    );
}

#[test]
fn port_lists() {
    assert_eq!("".parse(), Ok(PortList(vec![])));
    assert_eq!(" , ".parse(), Ok(PortList(vec![])));
    assert_eq!(
        "22, 80,1000-2000,".parse(),
        Ok(PortList(vec![
            PortSpec::Port(port(22)),
            PortSpec::Port(port(80)),
            PortSpec::Range(port(1000), port(2000)),
        ]))
    );
    let err = "22,0,80".parse::<PortList>().expect_err("0 is not a port");
    assert_eq!(err.to_string(), "port 0 is out of range; ports are 1-65535");
}

#[test]
fn cidrs() {
    let ok = |s: &str, want: &str| {
        let cidr = s.parse::<Cidr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(cidr.to_string(), want, "{s}");
    };
    ok("10.96.0.0/12", "10.96.0.0/12");
    ok("10.96.1.2/12", "10.96.0.0/12");
    ok("192.168.1.1", "192.168.1.1/32");
    ok("0.0.0.0/0", "0.0.0.0/0");
    ok("1.2.3.4/32", "1.2.3.4/32");
    ok("fd00::1/8", "fd00::/8");
    ok("2001:db8::1", "2001:db8::1/128");
    ok("::/0", "::/0");
    ok(" 10.0.0.0/8 ", "10.0.0.0/8");

    for bad in [
        "",
        "10.0.0/8",
        "10.0.0.0/",
        "10.0.0.0/x",
        "10.0.0.0/-1",
        "host/8",
        "/8",
    ] {
        assert_eq!(
            bad.parse::<Cidr>(),
            Err(ParseError::BadCidr(bad.into())),
            "{bad:?}"
        );
    }
    let err = "10.0.0.0/33".parse::<Cidr>().expect_err("/33 is too long");
    assert_eq!(
        err.to_string(),
        "`10.0.0.0/33` is not a CIDR: prefix /33 is longer than the 32 bits of an IPv4 address"
    );
    assert!(matches!(
        "fd00::/129".parse::<Cidr>(),
        Err(ParseError::PrefixTooLong { max: 128, .. })
    ));
}

#[test]
fn cidr_lists() {
    let list: CidrList = "10.0.0.0/8, fd00::/8,,".parse().expect("valid list");
    let shown: Vec<String> = list.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "fd00::/8"]);
    assert_eq!(
        "10.0.0.0/8,nope".parse::<CidrList>(),
        Err(ParseError::BadCidr("nope".into()))
    );
}
