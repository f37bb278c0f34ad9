use super::*;

fn ep(last: u8) -> Endpoint {
    Endpoint {
        addr: SocketAddr::from(([10, 0, 0, last], 8080)),
        weight: 10_000,
        identity: None,
        protocol_hint: None,
        labels: BTreeMap::new(),
        pod: None,
        terminating: false,
    }
}

fn set(eps: &[Endpoint]) -> EndpointSet {
    EndpointSet {
        exists: true,
        labels: BTreeMap::new(),
        endpoints: eps.iter().map(|e| (e.addr, e.clone())).collect(),
    }
}

fn gone() -> EndpointSet {
    EndpointSet::default()
}

/// A readable form of a message: `+[1, 2]`, `-[3]`, `none(exists)`.
fn show(u: &Update) -> String {
    let last = |a: &weft_proto::net::TcpAddress| {
        let addr = SocketAddr::try_from(*a).unwrap();
        match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => unreachable!(),
        }
    };
    match u {
        Update::Add(s) => {
            let mut l: Vec<u8> = s
                .addrs
                .iter()
                .map(|w| last(w.addr.as_ref().unwrap()))
                .collect();
            l.sort();
            format!("+{l:?}")
        }
        Update::Remove(s) => {
            let mut l: Vec<u8> = s.addrs.iter().map(last).collect();
            l.sort();
            format!("-{l:?}")
        }
        Update::NoEndpoints(n) => format!("none({})", n.exists),
    }
}

fn shows(us: Vec<Update>) -> Vec<String> {
    us.iter().map(show).collect()
}

#[test]
fn first_message_depends_on_the_set() {
    assert_eq!(show(&Updates::first(&set(&[ep(1), ep(2)])).1), "+[1, 2]");
    assert_eq!(show(&Updates::first(&gone()).1), "none(false)");
    assert_eq!(show(&Updates::first(&set(&[])).1), "none(true)");
    // A set that does not exist has no usable endpoints, whatever it holds.
    let stale = EndpointSet {
        exists: false,
        ..set(&[ep(1)])
    };
    assert_eq!(show(&Updates::first(&stale).1), "none(false)");
}

#[test]
fn no_endpoints_tracks_existence_until_the_first_add() {
    let (mut u, _) = Updates::first(&gone());
    assert_eq!(shows(u.next(&gone())), Vec::<String>::new());
    assert_eq!(shows(u.next(&set(&[]))), ["none(true)"]);
    assert_eq!(shows(u.next(&set(&[]))), Vec::<String>::new());
    assert_eq!(shows(u.next(&gone())), ["none(false)"]);
    assert_eq!(shows(u.next(&set(&[ep(1)]))), ["+[1]"]);

    // After an add: removes only, never no_endpoints, whatever happens to the service.
    assert_eq!(shows(u.next(&set(&[]))), ["-[1]"]);
    assert_eq!(shows(u.next(&gone())), Vec::<String>::new());
    assert_eq!(shows(u.next(&set(&[]))), Vec::<String>::new());
    assert_eq!(shows(u.next(&set(&[ep(2)]))), ["+[2]"]);
    assert_eq!(shows(u.next(&gone())), ["-[2]"]);
}

#[test]
fn changes_are_deltas_with_adds_first() {
    let (mut u, _) = Updates::first(&set(&[ep(1)]));
    assert_eq!(shows(u.next(&set(&[ep(1)]))), Vec::<String>::new());
    assert_eq!(shows(u.next(&set(&[ep(1), ep(2)]))), ["+[2]"]);

    let mut changed = ep(1);
    changed.weight = 1;
    assert_eq!(shows(u.next(&set(&[changed.clone(), ep(2)]))), ["+[1]"]);
    assert_eq!(shows(u.next(&set(&[changed.clone()]))), ["-[2]"]);
    assert_eq!(shows(u.next(&set(&[ep(3), ep(4)]))), ["+[3, 4]", "-[1]"]);

    // New set labels reach the client only with an add, so everything is re-added.
    let mut relabeled = set(&[ep(3), ep(4)]);
    relabeled.labels.insert("service".into(), "web".into());
    assert_eq!(shows(u.next(&relabeled)), ["+[3, 4]"]);
    assert_eq!(shows(u.next(&relabeled)), Vec::<String>::new());
}
