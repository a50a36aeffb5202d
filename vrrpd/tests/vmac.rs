//! `use_vmac` (docs/vrrp.md, Virtual MAC): the VIP lives on a macvlan with the virtual MAC
//! 00:00:5e:00:01:VRID, so the client's ARP entry for the VIP keeps its MAC across failover,
//! with keepalived (also `use_vmac`) as the peer in both roles; keepalived's sysctls; the vmac
//! removed (and the parent's sysctls restored) on exit, recreated after a crash.
//! Needs root, keepalived and iproute2.
mod lab;

use std::time::Duration;

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;
const VMAC: &str = "00:00:5e:00:01:64";

fn vmac_conf(lab: &Lab, prio: u8) -> String {
    conf(
        2,
        true,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: "1",
            vips: vec![format!("{}/24", lab.vip(0))],
            extra: "    use_vmac\n",
        }],
        &[],
    )
}

fn sysctl(lab: &Lab, ri: usize, ifname: &str, key: &str) -> String {
    lab::sh(&[
        "ip",
        "netns",
        "exec",
        &lab.r[ri],
        "cat",
        &format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"),
    ])
    .trim()
    .to_string()
}

fn has_link(lab: &Lab, ri: usize, name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["-n", &lab.r[ri], "link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// The client reaches the VIP and its ARP entry is the virtual MAC.
fn client_sees_vmac(lab: &Lab) {
    let fdb = || lab::sh(&["bridge", "-n", &lab.cl, "fdb", "show", "br", "br0"]);
    let ok = (0..3).any(|_| lab.client_ping(lab.vip(0)));
    let neigh = lab::sh(&["ip", "-n", &lab.cl, "neigh"]);
    let l = |ri: usize| lab::sh(&["ip", "-n", &lab.r[ri], "-o", "link"]);
    assert!(
        ok,
        "ping failed; client neigh:\n{neigh}\nfdb:\n{}\nr1:\n{}\nr2:\n{}",
        fdb(),
        l(0),
        l(1)
    );
    let links = |ri: usize| lab::sh(&["ip", "-n", &lab.r[ri], "-o", "link"]);
    let neigh = lab::sh(&["ip", "-n", &lab.cl, "neigh"]);
    assert_eq!(
        lab.client_neigh(lab.vip(0)).as_deref(),
        Some(VMAC),
        "client neigh:\n{neigh}\nr1 links:\n{}\nr2 links:\n{}",
        links(0),
        links(1)
    );
}

/// Pin the client in both routers' neighbour tables. A router answering the client's ping
/// from the VIP routes the reply out of the parent (its connected route comes first) and, if it
/// must ARP for the client, asks with the VIP as sender address and the parent's MAC, which
/// re-points the client's entry (keepalived does the same: docs/vrrp.md, Virtual MAC). Pinned,
/// the test sees only what the vmac itself does.
fn pin_client(lab: &Lab) {
    let out = lab::sh(&["ip", "-n", &lab.cl, "link", "show", "br0"]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_string();
    for ri in 0..2 {
        lab::sh(&[
            "ip",
            "-n",
            &lab.r[ri],
            "neigh",
            "replace",
            &lab.addr(0, 100).to_string(),
            "lladdr",
            &mac,
            "dev",
            "vlan10",
            "nud",
            "permanent",
        ]);
    }
}

fn vmac_failover(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vip = [lab.vip(0)];
    pin_client(&lab);
    lab.start(1, imps[1], &vmac_conf(&lab, 100));
    lab.start(0, imps[0], &vmac_conf(&lab, 150));
    lab.wait_holder(&vip, 0, S(15));
    let on = lab::sh(&[
        "ip", "-n", &lab.r[0], "-4", "-o", "addr", "show", "vrrp.100",
    ]);
    assert!(
        on.contains(&format!("{}/24", lab.vip(0))),
        "VIP on the vmac: {on}"
    );
    client_sees_vmac(&lab);
    let v = if imps[0] == Impl::Vrrpd { 0 } else { 1 };
    for (ifname, key, want) in [
        ("vrrp.100", "arp_ignore", "1"),
        ("vrrp.100", "accept_local", "1"),
        ("vrrp.100", "rp_filter", "0"),
        ("vlan10", "arp_ignore", "1"),
        ("vlan10", "arp_filter", "1"),
    ] {
        assert_eq!(
            sysctl(&lab, v, ifname, key),
            want,
            "{ifname} {key} on vrrpd's router"
        );
    }

    // Clean stop of the master: the peer takes over, the client's entry keeps its MAC.
    lab.stop(0);
    lab.wait_holder(&vip, 1, S(5));
    client_sees_vmac(&lab);
    if v == 0 {
        assert!(!has_link(&lab, 0, "vrrp.100"), "vmac removed on exit");
        assert_eq!(
            sysctl(&lab, 0, "vlan10", "arp_ignore"),
            "0",
            "parent restored"
        );
        assert_eq!(
            sysctl(&lab, 0, "vlan10", "arp_filter"),
            "0",
            "parent restored"
        );
    }
    lab.start(0, imps[0], &vmac_conf(&lab, 150));
    lab.wait_holder(&vip, 0, S(10));
    client_sees_vmac(&lab);

    // A killed vrrpd leaves its vmac; the next start removes and recreates it.
    if v == 0 {
        lab.crash(0);
        assert!(has_link(&lab, 0, "vrrp.100"));
        lab.start(0, Impl::Vrrpd, &vmac_conf(&lab, 150));
        lab.wait("vrrpd master again", S(12), |l| {
            l.try_status(0)
                .is_some_and(|s| s["instances"][0]["state"] == "MASTER")
        });
        assert!(
            lab.log(0)
                .contains("removing vrrp.100 left by an earlier run"),
            "{}",
            lab.log(0)
        );
        client_sees_vmac(&lab);
    }
}

#[test]
fn vmac_keeps_the_client_arp_entry_vrrpd_master() {
    vmac_failover([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn vmac_keeps_the_client_arp_entry_keepalived_master() {
    vmac_failover([Impl::Keepalived, Impl::Vrrpd]);
}
