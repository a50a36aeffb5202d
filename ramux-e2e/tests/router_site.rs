//! The router image applies its labwall site at boot (vbuild compiles it into the image, and
//! ramux-init runs the `ip -batch`, sysctl and nftables outputs before the ready line): the
//! BACKUP router's eth0 sits on a vswitch trunk port carrying VLANs 10 and 20; the guest must have
//! vlan10 and vlan20 with the BACKUP addresses of `profiles/router/site.lw`, the ruleset loaded,
//! and answer ARP for its VLAN 10 address to a host on an access port of VLAN 10 (the frame
//! crosses the switch tagged on the trunk and untagged on the access port).

mod common;

use common::*;
use std::time::Duration;
use vlaunch::Mac;

#[test]
fn router_backup_applies_site_vlans_and_ruleset_on_a_trunk_port() {
    let img = image("router");
    let _slot = qemu_slots(1);

    // A vswitch with a management socket: port 1 trunk (tagged 10 and 20), port 2 the uplink
    // (untagged VLAN 0), port 9 an access port of VLAN 10 for the test's vde_plug.
    let mut sw = SwitchGuard::new();
    sw.start_vswitch(
        "port/create 1\nport/create 2\nport/create 9\nvlan/create 10\nvlan/create 20\n\
         vlan/addport 10 1\nvlan/addport 20 1\nport/setvlan 9 10\n",
    );
    let vlan10 = sw.mgmt("vlan/print 10");
    assert!(
        vlan10.contains("1000 Success"),
        "VLAN 10 missing:\n{vlan10}"
    );

    let root = state_root();
    let mut opts = options(&img, "site", root.path());
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = vec![1, 2];
    let (g, ready) = boot(opts, root);
    assert!(
        !ready.info.line.is_empty(),
        "no ready line: {:?}",
        ready.info
    );
    let log = std::fs::read_to_string(&g.vm.paths().serial_log).unwrap_or_default();
    assert!(
        !log.contains("ramux: failed labwall"),
        "the guest kernel refused the site's configuration:\n{log}"
    );
    let sock = g.vm.paths().serial_sock.clone();

    // The BACKUP addresses of site.lw (VLAN 10 172.16.10.200, VLAN 20 172.16.20.200).
    let out = console_run(
        &sock,
        "echo addrs-$((6*7)) $(ip -4 -o addr show dev vlan10 | cut -d' ' -f7) $(ip -4 -o addr show dev vlan20 | cut -d' ' -f7) $(cat /proc/net/vlan/vlan10 | grep -o 'VID: [0-9]*')",
        "addrs-42 ",
        Duration::from_secs(60),
    );
    assert!(
        out.contains("addrs-42 172.16.10.200/24 172.16.20.200/24 VID: 10"),
        "vlan10/vlan20 lack the BACKUP addresses:\n{out}"
    );

    // The ruleset is loaded: every rule carries its site.lw line as a comment.
    let out = console_run(
        &sock,
        "echo rules-$((6*7)) $(nft list table inet ramux | grep -c 'comment \"site.lw:')",
        "rules-42 ",
        Duration::from_secs(60),
    );
    let rules: u32 = out
        .split("rules-42 ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule count:\n{out}"));
    assert!(
        rules >= 20,
        "only {rules} labwall rules loaded in the guest:\n{out}"
    );

    // A host on VLAN 10's access port asks for the router's VLAN 10 address: the request goes
    // out tagged on the trunk to eth0.10, and the untagged reply comes from eth0's MAC.
    let eth0_mac = g.vm.record.spec.nics[0].mac;
    let mut plug = Plug::new(&sw.dir, 9);
    let me: Mac = "02:e2:e0:00:10:09".parse().unwrap();
    let target = [172, 16, 10, 200];
    let (f, mac) = arp_resolve(
        &mut plug,
        me.0,
        [172, 16, 10, 99],
        target,
        "172.16.10.200 on VLAN 10 through the trunk",
    );
    assert_eq!(Mac(mac), eth0_mac, "ARP reply from the wrong NIC");
    // Untagged on the access port: the ethertype right after the MACs is ARP.
    assert_eq!(f[12..14], [0x08, 0x06]);
}

/// A router booted with one NIC cannot apply its site (`ip -batch` fails on the missing eth1):
/// it fails closed. No ready line but `ramux: not ready ...`, so `wait_ready` returns at once
/// with that line instead of timing out; forwarding stays off and vrrpd is not started, so it
/// can neither take the VIPs nor route unfiltered.
#[test]
fn a_router_whose_site_does_not_apply_fails_closed() {
    let img = image("router");
    let _slot = qemu_slots(1);
    let mut sw = SwitchGuard::new();
    sw.start_vswitch(
        "port/create 1\nvlan/create 10\nvlan/create 20\nvlan/addport 10 1\nvlan/addport 20 1\n",
    );
    let root = state_root();
    let mut opts = options(&img, "closed", root.path());
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = vec![1];
    let mut log = |m: &str| eprintln!("e2e: {m}");
    let vm = vlaunch::launch(&opts, &mut log).expect("launch");
    let mut g = VmGuard {
        vm,
        state_root: root,
    };
    let e = match g.vm.wait_ready(BOOT_TIMEOUT, &mut |_, _| {}) {
        Ok(r) => panic!("a router without eth1 said ready: {}", r.info.line),
        Err(e) => e,
    };
    assert!(
        e.reason
            .contains("failed closed: ramux: not ready profile=router"),
        "{e}"
    );
    assert!(e.reason.contains("forwarding stays off"), "{e}");
    assert!(
        e.failures
            .iter()
            .any(|f| f.starts_with("ramux: failed labwall")),
        "{e}"
    );
    let sock = g.vm.paths().serial_sock.clone();
    let out = console_run(
        &sock,
        "echo fwd-$((6*7)) $(cat /proc/sys/net/ipv4/ip_forward) $(pidof vrrpd || echo no-vrrpd)",
        "fwd-42 ",
        Duration::from_secs(60),
    );
    assert!(out.contains("fwd-42 0 no-vrrpd"), "{out}");
}
