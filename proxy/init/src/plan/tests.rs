use super::*;
use crate::{Cidr, Port, PortList};

fn lines(fam: &FamilyPlan) -> Vec<String> {
    fam.rules.iter().map(ToString::to_string).collect()
}

fn cidrs(list: &str) -> Vec<Cidr> {
    list.parse::<crate::CidrList>().expect("valid CIDRs").0
}

fn ports(list: &str) -> Vec<PortSpec> {
    list.parse::<PortList>().expect("valid ports").0
}

#[test]
fn defaults() {
    let plan = plan(&Config::default());
    assert_eq!(plan.families.len(), 2);
    let [v4, v6] = &plan.families[..] else {
        panic!("expected two families: {plan:?}");
    };
    assert_eq!(v4.family, Family::Ipv4);
    assert_eq!(
        lines(v4),
        [
            "-A WEFT_INBOUND -p tcp -m multiport --dports 4191 -j RETURN",
            "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143",
            "-A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
            "-A WEFT_OUTPUT -o lo -j RETURN",
            "-A WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
        ]
    );
    assert_eq!(v6.family, Family::Ipv6);
    assert_eq!(
        lines(v6),
        [
            "-A WEFT_INBOUND -p tcp -m multiport --dports 4191 -j RETURN",
            "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143",
            "-A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
            "-A WEFT_OUTPUT -o lo -j RETURN",
            "-A WEFT_OUTPUT -d ::1/128 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
        ]
    );
    for fam in [v4, v6] {
        assert_eq!(fam.jumps, JUMPS);
    }
}

#[test]
fn everything_configured() {
    let config = Config {
        proxy_uid: 1337,
        inbound_port: Port(15006),
        outbound_port: Port(15001),
        admin_port: Port(15020),
        skip_inbound_ports: ports("22,15020,8000-8010"),
        skip_outbound_ports: ports("25, 3306:3307,25"),
        skip_outbound_cidrs: cidrs("10.96.0.0/12,fd00::/8,169.254.169.254,10.96.0.0/12"),
        ..Config::default()
    };
    let plan = plan(&config);
    let [v4, v6] = &plan.families[..] else {
        panic!("expected two families: {plan:?}");
    };
    assert_eq!(
        lines(v4),
        [
            // The admin port comes first and is not repeated when also listed.
            "-A WEFT_INBOUND -p tcp -m multiport --dports 15020,22,8000:8010 -j RETURN",
            "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 15006",
            "-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN",
            "-A WEFT_OUTPUT -o lo -j RETURN",
            "-A WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -m multiport --dports 25,3306:3307 -j RETURN",
            "-A WEFT_OUTPUT -d 10.96.0.0/12 -j RETURN",
            "-A WEFT_OUTPUT -d 169.254.169.254/32 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 15001",
        ]
    );
    // IPv6 gets only the IPv6 CIDRs.
    assert_eq!(
        lines(v6)[4..],
        [
            "-A WEFT_OUTPUT -d ::1/128 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -m multiport --dports 25,3306:3307 -j RETURN",
            "-A WEFT_OUTPUT -d fd00::/8 -j RETURN",
            "-A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 15001",
        ]
    );
}

#[test]
fn ipv6_off_plans_ipv4_only() {
    let config = Config {
        ipv6: false,
        skip_outbound_cidrs: cidrs("fd00::/8"),
        ..Config::default()
    };
    let plan = plan(&config);
    assert_eq!(plan.families.len(), 1);
    assert_eq!(plan.families[0].family, Family::Ipv4);
    assert!(!lines(&plan.families[0]).iter().any(|l| l.contains("fd00")));
}

#[test]
fn multiport_chunks_fit_fifteen_ports() {
    let singles: Vec<PortSpec> = (1..=31).map(|p| PortSpec::Port(Port(p))).collect();
    let chunks = multiport_chunks(&singles);
    assert_eq!(
        chunks,
        [
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30",
            "31",
        ]
    );

    // A range counts as two: seven ranges and one port fill a rule exactly (iptables 1.8.9
    // accepts that and rejects eight ranges with "too many ports specified").
    let mixed = ports("1:2,3:4,5:6,7:8,9:10,11:12,13:14,15,16:17,18");
    assert_eq!(
        multiport_chunks(&mixed),
        ["1:2,3:4,5:6,7:8,9:10,11:12,13:14,15", "16:17,18"]
    );
    // A range that does not fit starts the next rule rather than being split.
    let mixed = ports("1,2,3,4,5,6,7,8,9,10,11,12,13,14,20:30");
    assert_eq!(
        multiport_chunks(&mixed),
        ["1,2,3,4,5,6,7,8,9,10,11,12,13,14", "20:30"]
    );
    assert!(multiport_chunks(&[]).is_empty());
}

#[test]
fn many_skipped_ports_become_several_rules() {
    let config = Config {
        skip_outbound_ports: (1000..1020).map(|p| PortSpec::Port(Port(p))).collect(),
        ipv6: false,
        ..Config::default()
    };
    let plan = plan(&config);
    let skips: Vec<String> = lines(&plan.families[0])
        .into_iter()
        .filter(|l| l.starts_with("-A WEFT_OUTPUT -p tcp -m multiport"))
        .collect();
    assert_eq!(skips.len(), 2);
    assert!(skips[0].contains("--dports 1000,1001,"), "{}", skips[0]);
    assert!(skips[1].ends_with("--dports 1015,1016,1017,1018,1019 -j RETURN"));
}

#[test]
fn restore_inputs() {
    let config = Config {
        ipv6: false,
        ..Config::default()
    };
    assert_eq!(
        plan(&config).families[0].restore_input(),
        "*nat\n\
         :WEFT_INBOUND - [0:0]\n\
         :WEFT_OUTPUT - [0:0]\n\
         -A WEFT_INBOUND -p tcp -m multiport --dports 4191 -j RETURN\n\
         -A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143\n\
         -A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN\n\
         -A WEFT_OUTPUT -o lo -j RETURN\n\
         -A WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN\n\
         -A WEFT_OUTPUT -p tcp -j REDIRECT --to-ports 4140\n\
         COMMIT\n"
    );
    assert_eq!(
        flush_chains_input(),
        "*nat\n:WEFT_INBOUND - [0:0]\n:WEFT_OUTPUT - [0:0]\nCOMMIT\n"
    );
    assert_eq!(
        delete_chains_input(),
        "*nat\n:WEFT_INBOUND - [0:0]\n:WEFT_OUTPUT - [0:0]\n\
         -X WEFT_INBOUND\n-X WEFT_OUTPUT\nCOMMIT\n"
    );
}

#[test]
fn jump_args() {
    assert_eq!(
        JUMPS[1].args("-C"),
        [
            "-t",
            "nat",
            "-C",
            "OUTPUT",
            "-p",
            "tcp",
            "-j",
            "WEFT_OUTPUT"
        ]
    );
    assert_eq!(
        JUMPS[0].args("-A"),
        [
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "-j",
            "WEFT_INBOUND"
        ]
    );
}
