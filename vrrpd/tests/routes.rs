//! `virtual_routes` / `virtual_rules` follow mastership, `static_*` stay while the daemon runs
//! (docs/vrrp.md, Routes and rules), with keepalived as the peer in both roles.
//! Needs root, keepalived and iproute2.
mod lab;

use std::time::Duration;

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;

/// Router `ri` (0 or 1): priority, its own static address 192.0.2.(ri+1).
fn routes_conf(lab: &Lab, ri: usize, prio: u8) -> String {
    let extra = "    virtual_routes {\n        10.99.0.0/24 via 10.10.0.254 table 100\n        blackhole 10.98.0.0/24\n    }\n    virtual_rules {\n        from 10.97.0.0/24 table 100 priority 1000\n    }\n";
    let c = conf(
        2,
        true,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: "1",
            vips: vec![format!("{}/24 dev vlan10", lab.vip(0))],
            extra,
        }],
        &[],
    );
    format!(
        "static_ipaddress {{\n    192.0.2.{}/32 dev vlan10\n}}\nstatic_routes {{\n    203.0.113.0/24 via 10.10.0.254 table 200\n}}\n{c}",
        ri + 1
    )
}

/// `ip -n ROUTER ARGS` output; empty for a table that does not exist (yet).
fn ip(lab: &Lab, ri: usize, args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", &lab.r[ri]])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Has router `ri` the instance's virtual route (table 100), blackhole and rule?
fn has_virtual(lab: &Lab, ri: usize) -> [bool; 3] {
    [
        ip(lab, ri, &["route", "show", "table", "100"]).contains("10.99.0.0/24 via 10.10.0.254"),
        ip(lab, ri, &["route", "show"]).contains("blackhole 10.98.0.0/24"),
        ip(lab, ri, &["rule", "show"]).contains("1000:\tfrom 10.97.0.0/24 lookup 100"),
    ]
}

fn has_static(lab: &Lab, ri: usize) -> [bool; 2] {
    [
        ip(lab, ri, &["-4", "addr", "show", "vlan10"]).contains(&format!("192.0.2.{}/32", ri + 1)),
        ip(lab, ri, &["route", "show", "table", "200"]).contains("203.0.113.0/24 via 10.10.0.254"),
    ]
}

fn follow(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vip = [lab.vip(0)];
    lab.start(1, imps[1], &routes_conf(&lab, 1, 100));
    lab.start(0, imps[0], &routes_conf(&lab, 0, 150));
    lab.wait_holder(&vip, 0, S(15));
    lab.wait("r1's virtual routes", S(2), |l| {
        has_virtual(l, 0) == [true; 3]
    });
    assert_eq!(has_virtual(&lab, 1), [false; 3], "backup has none");
    assert_eq!(
        (has_static(&lab, 0), has_static(&lab, 1)),
        ([true; 2], [true; 2])
    );

    // The master dies: the routes go with the VIP.
    lab.crash(0);
    // (r1 keeps the VIP too: a killed daemon cannot remove it.)
    lab.wait("r2 holds the VIP", S(6), |l| l.holders(vip[0]).contains(&1));
    lab.wait("r2's virtual routes", S(2), |l| {
        has_virtual(l, 1) == [true; 3]
    });
    if imps[0] == Impl::Vrrpd {
        // Killed: its routes stay behind (like its VIPs) until it starts again.
        assert_eq!(has_virtual(&lab, 0), [true; 3]);
    }
    lab.start(0, imps[0], &routes_conf(&lab, 0, 150));
    lab.wait_holder(&vip, 0, S(10));
    lab.wait("routes back on r1 only", S(3), |l| {
        has_virtual(l, 0) == [true; 3] && has_virtual(l, 1) == [false; 3]
    });

    // A clean stop of the vrrpd side removes its virtual and static routes and its address.
    let v = if imps[0] == Impl::Vrrpd { 0 } else { 1 };
    lab.stop(v);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(has_virtual(&lab, v), [false; 3]);
    assert_eq!(has_static(&lab, v), [false; 2]);
}

#[test]
fn virtual_routes_follow_vrrpd_master_to_keepalived() {
    follow([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn virtual_routes_follow_keepalived_master_to_vrrpd() {
    follow([Impl::Keepalived, Impl::Vrrpd]);
}
