//! Probe planning, the matrix and the failover theory against the real seed site
//! (profiles/router/site.lw) and tests/labs/matrix.toml (MV1 holds web1's address on VLAN 10,
//! MV2 = 172.16.20.50 on VLAN 20, internet = 10.1.1.50 on the uplink segment).

mod common;

use std::net::Ipv4Addr;

use common::{crate_dir, ip};
use ramux_lab::failover::{theory_for, FailoverMeasured};
use ramux_lab::matrix::{matrix, Matrix, MatrixProbe, MAX_PROBES};
use ramux_lab::model::Expect;
use ramux_lab::probe::{plan_test, resolve_target, Endpoint, Holder, Leases, Proto};
use ramux_lab::sitefile::{site_model, SiteModel};
use ramux_lab::Lab;

fn model() -> SiteModel {
    site_model(&crate_dir().join("../profiles/router/site.lw")).unwrap()
}

fn lab() -> Lab {
    let c = ramux_lab::check_lab(&crate_dir().join("tests/labs/matrix.toml"));
    assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
    c.lab.unwrap()
}

fn find<'a>(m: &'a Matrix, from: &str, dst: &str, proto: Proto) -> &'a MatrixProbe {
    let dst: Ipv4Addr = dst.parse().unwrap();
    m.probes
        .iter()
        .find(|p| p.from_node == from && p.dst == dst && p.proto == proto)
        .unwrap_or_else(|| panic!("no probe {from} -> {dst} {proto:?}: {:#?}", m.probes))
}

#[test]
fn the_matrix_of_the_seed_site() {
    let m = matrix(&lab(), &model().master, &Leases::new());
    let https = find(&m, "MV2", "172.16.10.21", Proto::Tcp(443));
    assert_eq!(
        (
            https.src_zone.as_str(),
            https.dst_zone.as_str(),
            https.service.as_str()
        ),
        ("users", "srv", "https")
    );
    assert_eq!((https.expect, https.decided_by), (Expect::Ok, Some(55)));
    assert_eq!(
        (https.listener.as_deref(), https.iif.as_str()),
        (Some("MV1"), "vlan20")
    );
    // ssh is no rule's: the simulator finds the NOROUTE srv users guard (line 31) decides,
    // before the final POLICY all all REJECT would
    let ssh = find(&m, "MV2", "172.16.10.21", Proto::Tcp(22));
    assert_eq!((ssh.expect, ssh.decided_by), (Expect::Blocked, Some(32)));
    // the DNAT flow: to the uplink VIP, answered by MV1 behind it, allowed by line 56
    let dnat = find(&m, "internet", "10.1.1.4", Proto::Tcp(443));
    assert_eq!((dnat.expect, dnat.decided_by), (Expect::Ok, Some(56)));
    assert_eq!(
        (dnat.listener.as_deref(), dnat.dst_zone.as_str()),
        (Some("MV1"), "srv")
    );
    // zone fw: ping the VIP of the source's VLAN, no listener
    let fw = find(&m, "MV2", "172.16.20.1", Proto::Ping);
    assert_eq!(
        (fw.expect, fw.decided_by, fw.listener.clone()),
        (Expect::Ok, Some(59), None)
    );
    assert_eq!(fw.plan().target.holder, Some(Holder::Vip));
    let out = find(&m, "internet", "172.16.20.50", Proto::Udp(53));
    assert_eq!((out.expect, out.decided_by), (Expect::Blocked, Some(72)));
    assert!(m.probes.len() < MAX_PROBES, "{}", m.probes.len());
}

#[test]
fn the_matrix_says_why_it_cannot_probe() {
    let m = matrix(&lab(), &model().master, &Leases::new());
    let reason = |line: u32| {
        m.unprobed
            .iter()
            .find(|u| u.line == Some(line))
            .map(|u| u.reason.clone())
            .unwrap_or_else(|| panic!("line {line} not unprobed: {:#?}", m.unprobed))
    };
    assert_eq!(
        reason(52),
        "no lab node in zone srv holds dns1's address 172.16.10.10: give a client that address"
    );
    assert_eq!(
        reason(54),
        "no lab node in zone users has an address in nas 172.16.20.240/28: give a client one"
    );
    assert!(
        reason(59).contains("no listener can be opened"),
        "{}",
        reason(59)
    );
    let from_fw = m.unprobed.iter().filter(|u| u.src_zone == "fw").count();
    assert_eq!(
        from_fw, 4,
        "one line per pair from fw (the relay's fw -> srv included)"
    );
}

#[test]
fn the_matrix_is_deterministic_and_deduplicated() {
    let (lab, model) = (lab(), model());
    let a = matrix(&lab, &model.master, &Leases::new());
    assert_eq!(a, matrix(&lab, &model.master, &Leases::new()));
    let mut keys: Vec<_> = a
        .probes
        .iter()
        .map(|p| (&p.from_node, p.dst, p.proto))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

#[test]
fn targets_resolve_with_their_holders() {
    let (lab, m) = (lab(), model());
    let none = Leases::new();
    let r = |t: &str, from: Option<&str>| resolve_target(&lab, &m.facts, t, from, &none);
    let ep = |a: &str, h: Option<Holder>| Endpoint {
        addr: ip(a),
        holder: h,
    };
    let node = |n: &str| Some(Holder::Node(n.into()));
    assert_eq!(r("web1", None), Ok(ep("172.16.10.21", node("MV1"))));
    assert_eq!(r("vip:20", None), Ok(ep("172.16.20.1", Some(Holder::Vip))));
    assert_eq!(r("vip:uplink", None), Ok(ep("10.1.1.4", Some(Holder::Vip))));
    assert_eq!(
        r("172.16.20.200", None),
        Ok(ep("172.16.20.200", node("RT2")))
    );
    assert_eq!(r("8.8.8.8", None), Ok(ep("8.8.8.8", None)));
    // a router by name: its address in the prober's network, else its first (the uplink's)
    assert_eq!(r("RT1", Some("MV2")), Ok(ep("172.16.20.100", node("RT1"))));
    assert_eq!(r("RT1", None), Ok(ep("10.1.1.2", node("RT1"))));
    assert!(r("dyn", None)
        .unwrap_err()
        .contains("known only at run time"));
    let leased = Leases::from([("dyn".to_string(), ip("172.16.20.77"))]);
    let got = resolve_target(&lab, &m.facts, "dyn", None, &leased);
    assert_eq!(got, Ok(ep("172.16.20.77", node("dyn"))));
    assert!(r("vip:30", None).unwrap_err().contains("names no VIP"));
    assert!(r("nowhere", None).is_err());
}

#[test]
fn the_tests_of_the_lab_plan_into_probes() {
    let (lab, m) = (lab(), model());
    let plan = |i: usize| plan_test(&lab, &m.facts, &lab.tests[i], &Leases::new());
    let p = plan(0).unwrap();
    assert_eq!(
        (p.from.as_str(), p.proto, p.listener.as_deref()),
        ("MV2", Proto::Tcp(443), Some("MV1"))
    );
    assert_eq!(plan(1).unwrap().expect, Expect::Blocked);
    // listen = MV1 answers for the uplink VIP (the DNAT)
    let p = plan(2).unwrap();
    assert_eq!(
        (p.target.addr, p.listener.as_deref()),
        (ip("10.1.1.4"), Some("MV1"))
    );
    assert_eq!(plan(3).unwrap().listener, None);
    assert_eq!(plan(4).unwrap().target.addr, ip("10.1.1.2"));
    assert_eq!(plan(5).unwrap().proto, Proto::Ping);
    assert!(plan(6).unwrap_err().contains("sends no probe"));
    let json = serde_json::to_string(&plan(0).unwrap()).unwrap();
    assert!(json.contains(r#""expect":"ok""#), "{json}");
}

#[test]
fn the_seed_sites_vrrp_and_its_failover_theory() {
    let m = model();
    assert_eq!(m.vrrp.len(), 2);
    for i in &m.vrrp {
        assert_eq!(
            (i.version, i.advert_ms, i.preempt),
            (2, 5000, true),
            "{}",
            i.name
        );
        let prio: Vec<u8> = i.priority.values().copied().collect();
        assert_eq!(prio, [100, 50]);
    }
    let t = theory_for(&m.vrrp, Some(ip("10.1.1.4")), 200).unwrap();
    assert_eq!(t.instance, "externe");
    assert_eq!(t.master_down_ms, 15_804);
    assert!(t
        .summary()
        .starts_with("theory 15.8 s = 3 × 5 s + skew 0.8 s"));
    let v = ramux_lab::failover::check_failover(
        &FailoverMeasured {
            longest_outage_ms: Some(15_100),
            vip_holder_after: Some("RT2".into()),
        },
        std::time::Duration::from_secs(17),
        "RT1",
        Some(&t),
    );
    assert!(v.pass, "{}", v.reason);
}

#[test]
fn a_matrix_probe_reports_the_line_that_decided() {
    use ramux_lab::report::{judge_matrix, Outcome, Seen};
    let m = matrix(&lab(), &model().master, &Leases::new());
    let p = find(&m, "MV2", "172.16.10.21", Proto::Tcp(443));
    let seen = Seen::Answered {
        by: Some("MV1".into()),
        rtt_ms: 3.0,
    };
    let r = judge_matrix("the matrix", p, &seen, std::time::Duration::from_millis(40));
    assert_eq!(r.result, Outcome::Pass);
    assert_eq!(r.name, "the matrix: users -> srv https (MV2)");
    assert_eq!(
        r.detail,
        "tcp 172.16.20.50 -> 172.16.10.21:443 answered by MV1 in 3 ms; ALLOW users -> srv, site line 55"
    );
    let ssh = find(&m, "MV2", "172.16.10.21", Proto::Tcp(22));
    let r = judge_matrix("the matrix", ssh, &seen, std::time::Duration::ZERO);
    assert_eq!(r.result, Outcome::Fail);
}

#[test]
fn the_seed_matrix_size() {
    // docs/lab.md quotes it: a change here is worth a look at the generator
    let m = matrix(&lab(), &model().master, &Leases::new());
    assert_eq!((m.probes.len(), m.unprobed.len()), (46, 15));
}

/// A radius test runs on a node holding a NAS line's address and asks the site's server; a
/// node that is no NAS is refused before anything runs.
#[test]
fn a_radius_test_is_planned_from_a_nas_of_the_site() {
    let text = r#"name = "r"
site = "../../../profiles/router/site.lw"
[node.NAS1]
profile = "nas"
iso = "n.iso"
address = "172.16.20.241/24 via vip"
[node.MV2]
profile = "client"
iso = "c.iso"
address = "172.16.20.50/24 via vip"
[node.DNS1]
profile = "dns"
iso = "d.iso"
[[test]]
name = "mab"
from = "NAS1"
radius = "mab"
server = "dns1"
identity = "52:54:00:20:00:30"
vlan = 20
[[test]]
name = "peap from a user"
from = "MV2"
radius = "peap"
server = "DNS1"
identity = "alice"
expect = "reject"
"#;
    let c = ramux_lab::check_text(text, "r.toml", &crate_dir().join("tests/labs"), None);
    let lab = c.lab.expect("a lab");
    let m = model();
    let known = ramux_lab::probe::instance_addresses(&lab, &m.facts);
    assert_eq!(known.get("DNS1"), Some(&ip("172.16.10.10")));
    let p = ramux_lab::radius::plan(&lab, &m.master.site, &m.facts, &lab.tests[0], &known).unwrap();
    assert_eq!((p.nas.as_str(), p.server), ("sw1", ip("172.16.10.10")));
    assert_eq!((p.expect, p.vlan), (Expect::Ok, Some(20)));
    let e =
        ramux_lab::radius::plan(&lab, &m.master.site, &m.facts, &lab.tests[1], &known).unwrap_err();
    assert!(
        e.contains("MV2 (172.16.20.50) is no NAS of the site"),
        "{e}"
    );
    let bad = text.replace("expect = \"reject\"", "expect = \"blocked\"");
    let c = ramux_lab::check_text(&bad, "r.toml", &crate_dir().join("tests/labs"), None);
    let e = ramux_lab::render_all(&c.diagnostics);
    assert!(
        e.contains("`expect` = \"blocked\" does not fit this test"),
        "{e}"
    );
}
