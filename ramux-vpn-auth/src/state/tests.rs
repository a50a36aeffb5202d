use super::*;
use crate::config::Net;
use crate::radius::{Attrs, Code, Reply};
use std::path::PathBuf;

fn vlan() -> Vlan {
    Vlan {
        vlan: 10,
        management: PathBuf::from("/run/ramux/vpn/vlan10.sock"),
        tun: "tun10".into(),
        leg: "eth0.10".into(),
        network: Net::parse("172.16.10.0/24").unwrap(),
        reserved: vec!["172.16.10.1".parse().unwrap()],
        nas_identifier: "vpn1-vlan10".into(),
    }
}

fn notice(head: Head, cn: &str) -> Notice {
    let mut env = std::collections::BTreeMap::new();
    env.insert("common_name".to_string(), cn.to_string());
    env.insert("untrusted_ip".to_string(), "127.0.0.1".to_string());
    Notice {
        head,
        env,
        truncated: false,
    }
}

fn accept(addr: &str, vid: &str) -> Outcome {
    Outcome::Reply(Reply {
        code: Code::Accept,
        attrs: Attrs {
            framed_ip: Some(addr.parse().unwrap()),
            tunnel_type: Some(13),
            tunnel_medium: Some(6),
            group_id: Some(vid.as_bytes().to_vec()),
            ..Attrs::default()
        },
    })
}

fn sent(a: &[Action]) -> Vec<String> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn daemon() -> Daemon {
    Daemon::new(vlan(), Duration::from_secs(10))
}

#[test]
fn accept_establish_disconnect() {
    let mut d = daemon();
    let t = Instant::now();
    let a = d.notice(notice(Head::Connect { cid: 1, kid: 0 }, "alice"), t);
    assert!(matches!(&a[0], Action::Ask { cid: 1, kid: 0, user, .. } if user == "alice"));
    let a = d.outcome(1, 0, accept("172.16.10.130", "10"), t);
    assert_eq!(
        sent(&a),
        ["client-auth 1 0\nifconfig-push 172.16.10.130 255.255.255.0\nEND\n"]
    );
    let a = d.notice(notice(Head::Established { cid: 1 }, "alice"), t);
    assert_eq!(a, [Action::Install("172.16.10.130".parse().unwrap())]);
    let a = d.notice(notice(Head::Disconnect { cid: 1 }, "alice"), t);
    assert_eq!(a, [Action::Remove("172.16.10.130".parse().unwrap())]);
    assert!(d.view().is_empty());
}

#[test]
fn refusals() {
    let t = Instant::now();
    let cases = [
        (accept("172.16.20.130", "20"), "VLAN [20]"),
        (accept("172.16.20.130", "10"), "not a host"),
        (accept("172.16.10.1", "10"), "reserved"),
        (accept("172.16.10.255", "10"), "not a host"),
        (Outcome::NoAnswer, "no RADIUS server"),
        (
            Outcome::Invalid("bad Message-Authenticator".into()),
            "invalid",
        ),
    ];
    for (o, want) in cases {
        let mut d = daemon();
        d.notice(notice(Head::Connect { cid: 4, kid: 2 }, "bob"), t);
        let s = sent(&d.outcome(4, 2, o, t));
        assert!(
            s[0].starts_with("client-deny 4 2 \"") && s[0].contains(want),
            "{s:?}"
        );
        assert!(d.view().is_empty());
    }
    let mut d = daemon();
    let mut o = accept("172.16.10.130", "10");
    if let Outcome::Reply(r) = &mut o {
        r.attrs.tunnel_type = None;
    }
    d.notice(notice(Head::Connect { cid: 4, kid: 2 }, "bob"), t);
    assert!(sent(&d.outcome(4, 2, o, t))[0].contains("Tunnel-Type"));
    let bad = d.notice(notice(Head::Connect { cid: 5, kid: 0 }, "a b\""), t);
    assert!(sent(&bad)[0].starts_with("client-deny 5 0"));
}

#[test]
fn reconnect_keeps_the_new_route() {
    let mut d = daemon();
    let t = Instant::now();
    let ip: Ipv4Addr = "172.16.10.130".parse().unwrap();
    for cid in [1, 2] {
        d.notice(notice(Head::Connect { cid, kid: 0 }, "alice"), t);
        d.outcome(cid, 0, accept("172.16.10.130", "10"), t);
        assert_eq!(
            d.notice(notice(Head::Established { cid }, "alice"), t),
            [Action::Install(ip)]
        );
    }
    // The old session's late DISCONNECT must not remove the new session's entries.
    assert!(d
        .notice(notice(Head::Disconnect { cid: 1 }, "alice"), t)
        .is_empty());
    assert_eq!(
        d.notice(notice(Head::Disconnect { cid: 2 }, "alice"), t),
        [Action::Remove(ip)]
    );
    // Another user given the same address is refused.
    d.notice(notice(Head::Connect { cid: 3, kid: 0 }, "alice"), t);
    d.outcome(3, 0, accept("172.16.10.130", "10"), t);
    d.notice(notice(Head::Established { cid: 3 }, "alice"), t);
    d.notice(notice(Head::Connect { cid: 4, kid: 0 }, "mallory"), t);
    assert!(sent(&d.outcome(4, 0, accept("172.16.10.130", "10"), t))[0].contains("held by alice"));
}

#[test]
fn reauth_same_address_no_config_other_address_denied() {
    let mut d = daemon();
    let t = Instant::now();
    d.notice(notice(Head::Connect { cid: 1, kid: 0 }, "alice"), t);
    d.outcome(1, 0, accept("172.16.10.130", "10"), t);
    d.notice(notice(Head::Established { cid: 1 }, "alice"), t);
    d.notice(notice(Head::Reauth { cid: 1, kid: 1 }, "alice"), t);
    assert_eq!(
        sent(&d.outcome(1, 1, accept("172.16.10.130", "10"), t)),
        ["client-auth 1 1\nEND\n"]
    );
    d.notice(notice(Head::Reauth { cid: 1, kid: 2 }, "alice"), t);
    let a = d.outcome(1, 2, accept("172.16.10.131", "10"), t);
    assert!(sent(&a)[0].starts_with("client-deny 1 2"));
    assert!(a.contains(&Action::Remove("172.16.10.130".parse().unwrap())));
}

#[test]
fn stale_outcomes_dropped_and_deadline_enforced() {
    let mut d = daemon();
    let t = Instant::now();
    d.notice(notice(Head::Connect { cid: 1, kid: 0 }, "alice"), t);
    assert!(d.outcome(1, 7, Outcome::NoAnswer, t).is_empty());
    assert!(d.tick(t + Duration::from_secs(5)).is_empty());
    let late = d.tick(t + Duration::from_secs(11));
    assert!(sent(&late)[0].starts_with("client-deny 1 0"));
    d.notice(notice(Head::Connect { cid: 2, kid: 0 }, "alice"), t);
    d.notice(notice(Head::Disconnect { cid: 2 }, "alice"), t);
    assert!(d.outcome(2, 0, accept("172.16.10.130", "10"), t).is_empty());
}

#[test]
fn pending_cap_and_lost_socket() {
    let mut d = daemon();
    let t = Instant::now();
    for cid in 0..MAX_PENDING as u64 {
        d.notice(notice(Head::Connect { cid, kid: 0 }, "u"), t);
    }
    let a = d.notice(notice(Head::Connect { cid: 999, kid: 0 }, "u"), t);
    assert!(sent(&a)[0].contains("too many"));
    d.outcome(0, 0, accept("172.16.10.130", "10"), t);
    d.notice(notice(Head::Established { cid: 0 }, "u"), t);
    assert_eq!(d.lost(), [Action::Remove("172.16.10.130".parse().unwrap())]);
    assert!(d.view().is_empty());
}
