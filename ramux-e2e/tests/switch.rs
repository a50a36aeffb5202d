//! `vlaunch --port`: the router VM's NICs on switch ports, with ramux's vswitch (started by
//! vlaunch because nothing answers on the directory) and with Debian's vde_switch. Traffic is
//! real: vde_plug on another port asks the VM for its uplink address (ARP) and the VM answers
//! from the MAC vlaunch gave it.

mod common;

use common::*;
use std::time::{Duration, Instant};
use vlaunch::Mac;

const FIXED_MAC: &str = "00:16:3e:e2:e0:01";

/// Boots the router with NICs on `ports` of `sw`, checks the guest sees the planned MACs, and
/// exchanges ARP with it through a vde_plug on port 9.
fn boot_on_switch(sw: &SwitchGuard, tag: &str, ports: [u16; 2]) -> VmGuard {
    let img = image("router");
    let root = state_root();
    let mut opts = options(&img, tag, root.path());
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = ports.to_vec();
    opts.macs = vec![FIXED_MAC.parse().unwrap()];
    let (g, _) = boot(opts, root);
    let nics = g.vm.record.spec.nics.clone();
    assert_eq!(nics.len(), 2);
    assert_eq!(nics[0].mac.to_string(), FIXED_MAC);
    assert_eq!(nics[1].mac, vlaunch::net::derived_mac(g.vm.name(), 1));
    assert_eq!((nics[0].port, nics[1].port), (ports[0], ports[1]));

    // The guest's NICs carry the MACs vlaunch planned, in --port order.
    let sock = g.vm.paths().serial_sock.clone();
    console_run(
        &sock,
        "echo mac-$((1+1)) $(cat /sys/class/net/eth0/address) $(cat /sys/class/net/eth1/address)",
        &format!("mac-2 {} {}", nics[0].mac, nics[1].mac),
        Duration::from_secs(60),
    );
    let ip = eth1_ipv4(&sock);

    let mut plug = Plug::new(&sw.dir, 9);
    let me: Mac = "02:e2:e0:00:00:09".parse().unwrap();
    let (_, mac) = arp_resolve(
        &mut plug,
        me.0,
        [ip[0], ip[1], ip[2], 250],
        ip,
        &format!("{ip:?} from the VM through the switch"),
    );
    assert!(
        nics.iter().any(|n| n.mac.0 == mac),
        "ARP reply from unexpected MAC {}",
        Mac(mac)
    );
    eprintln!("e2e: {tag}: ARP reply for {ip:?} from {}", Mac(mac));
    g
}

/// The first IPv4 address of the guest's eth1 (the uplink in the example site), via the console.
fn eth1_ipv4(sock: &std::path::Path) -> [u8; 4] {
    let out = console_run(
        sock,
        "ip -4 -o addr show dev eth1",
        " inet ",
        Duration::from_secs(30),
    );
    out.split(" inet ")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .unwrap_or_else(|| panic!("no IPv4 address on eth1:\n{out}"))
        .octets()
}

#[test]
fn router_on_vswitch_started_by_vlaunch() {
    let _bin = ramux_bin("vswitch");
    let _slot = qemu_slots(1);
    let sw = SwitchGuard::new();
    assert!(!vlaunch::net::switch_answers(&sw.dir));
    let g = boot_on_switch(&sw, "vsw", [1, 2]);
    // vlaunch started `vswitch -s DIR --port-streams -d -p DIR.pid`, and it answers; the
    // guest's NICs are on the ports' stream sockets (the ARP exchange above crossed them).
    assert!(vlaunch::net::switch_answers(&sw.dir));
    for n in &g.vm.record.spec.nics {
        assert_eq!(
            n.stream.as_deref(),
            Some(vlaunch::net::port_stream_path(&sw.dir, n.port).as_path()),
            "NIC on port {} attached with -netdev stream",
            n.port
        );
    }
    let pid = std::fs::read_to_string(&sw.pidfile).expect("vswitch pid file");
    let exe = std::fs::read_link(format!("/proc/{}/exe", pid.trim())).unwrap();
    assert!(exe.ends_with("vswitch"), "{}", exe.display());
}

#[test]
fn router_on_debian_vde_switch() {
    let _slot = qemu_slots(1);
    let mut sw = SwitchGuard::new();
    sw.start_vde_switch();
    let g = boot_on_switch(&sw, "vde", [3, 4]);
    // vde_switch has no DIR.streams: the NICs stay on -netdev vde.
    assert!(g.vm.record.spec.nics.iter().all(|n| n.stream.is_none()));
    let ports = sw.mgmt("port/print");
    for p in ["Port 0003", "Port 0004"] {
        let block = ports
            .split("Port ")
            .find(|b| b.starts_with(&p[5..]))
            .unwrap_or_else(|| panic!("{p} missing:\n{ports}"));
        assert!(block.contains("ACTIVE"), "{p} not active:\n{ports}");
        assert!(
            block.contains(&format!("QEMU user=root pid={}", g.vm.pid))
                || block.contains(&format!("pid={}", g.vm.pid)),
            "{p} has no QEMU endpoint:\n{ports}"
        );
    }
}

/// Pings `target` from the guest on `sock`: up to four rounds of three pings (a lab settles for
/// a moment after the ready lines), each round logged; panics with the neighbour table if none
/// is answered.
fn ping_from(sock: &std::path::Path, what: &str, target: std::net::Ipv4Addr) {
    let mut last = String::new();
    for round in 1..=4 {
        let out = console_run(
            sock,
            &format!("ping -c 3 -W 2 {target}"),
            "packets received",
            Duration::from_secs(60),
        );
        let received: u32 = out
            .split("packets transmitted, ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no ping summary:\n{out}"));
        eprintln!("e2e: {what} {target}: round {round}: {received}/3 ping replies");
        if received > 0 {
            return;
        }
        last = out;
        std::thread::sleep(Duration::from_secs(2));
    }
    let neigh = console_run(
        sock,
        "echo neigh-$((1+1)); ip neigh",
        "neigh-2",
        Duration::from_secs(30),
    );
    panic!("{what} {target} unreachable:\n{last}\n{neigh}");
}

/// A two-appliance lab as in 2009: one 802.1Q switch (ramux's vswitch, configured by an rc
/// file); each router's eth0 is a trunk port (VLANs 10 and 20 tagged, untagged traffic isolated
/// in VLAN 99) and eth1 an access port of the uplink segment. The MASTER and BACKUP images boot
/// at once; the BACKUP pings the MASTER on the uplink (untagged) and across the trunk on VLAN 10
/// (tagged frames through the switch). Then VRRP: the routers' vrrpd elect the MASTER, which alone
/// holds the gateway VIPs, and the BACKUP reaches the uplink VIP. Finally the MASTER VM is
/// killed and the BACKUP takes over all three VIPs.
#[test]
fn master_and_backup_routers_ping_each_other_on_vswitch() {
    let (master, backup) = (image_role("router", "MASTER"), image("router"));
    let _slots = qemu_slots(2);
    let mut sw = SwitchGuard::new();
    // Without the trunk/access split both NICs of a router share one broadcast domain, the
    // router answers ARP for its uplink address from its trunk NIC too, and pings are dropped
    // on the wrong interface: the wiring must be a real lab's.
    sw.start_vswitch(
        "vlan/create 99\nvlan/create 10\nvlan/create 20\n\
         port/create 11\nport/create 13\n\
         port/setvlan 11 99\nport/setvlan 13 99\n\
         vlan/addport 10 11\nvlan/addport 10 13\nvlan/addport 20 11\nvlan/addport 20 13\n",
    );
    let mut guards = Vec::new();
    for (img, tag, ports) in [(&master, "m", [11, 12]), (&backup, "b", [13, 14])] {
        let root = state_root();
        let mut opts = options(img, tag, root.path());
        opts.switch_dir = Some(sw.dir.clone());
        opts.ports = ports.to_vec();
        let vm = vlaunch::launch(&opts, &mut |m| eprintln!("e2e: {tag}: {m}"))
            .unwrap_or_else(|e| panic!("launch {tag}: {e:#}"));
        // The switch runs with --port-streams: trunk and access NICs go over -netdev stream.
        assert!(
            vm.record.spec.nics.iter().all(|n| n.stream.is_some()),
            "{:?}",
            vm.record.spec.nics
        );
        guards.push(VmGuard {
            vm,
            state_root: root,
        });
    }
    for g in guards.iter_mut() {
        let name = g.vm.name().to_string();
        let r =
            g.vm.wait_ready(BOOT_TIMEOUT, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{name} did not boot: {e}"));
        eprintln!(
            "e2e: {name} ready after {:.1} s: {}",
            r.seconds, r.info.line
        );
    }
    let master_ip = eth1_ipv4(&guards[0].vm.paths().serial_sock);
    let backup_ip = eth1_ipv4(&guards[1].vm.paths().serial_sock);
    assert_ne!(master_ip, backup_ip);
    let bsock = guards[1].vm.paths().serial_sock.clone();
    ping_from(&bsock, "BACKUP -> MASTER uplink", master_ip.into());
    // The MASTER's address on VLAN 10 (over the trunk), read from its console.
    let out = console_run(
        &guards[0].vm.paths().serial_sock,
        "ip -4 -o addr show dev vlan10",
        " inet ",
        Duration::from_secs(30),
    );
    let vlan10: std::net::Ipv4Addr = out
        .split(" inet ")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address on vlan10:\n{out}"));
    ping_from(&bsock, "BACKUP -> MASTER vlan10", vlan10);

    // VRRP between the two appliances: each runs vrrpd on the keepalived.conf labwall compiled
    // for its role. The MASTER takes the sync group after Master_Down_Interval (advert_int 5:
    // about 15.6 s after start), holds the gateway VIPs, and the BACKUP stays BACKUP, seeing the
    // MASTER's adverts on VLAN 10; the BACKUP reaches the uplink VIP over the wire.
    let msock = guards[0].vm.paths().serial_sock.clone();
    let group = |sock: &std::path::Path| {
        let out = console_run(
            sock,
            "echo vrrp-$((6*7)) $(vrrpd status | grep -o 'sync group eth1-vlan10 .[A-Z]*.')",
            "vrrp-42 ",
            Duration::from_secs(30),
        );
        let line = out
            .lines()
            .find(|l| l.starts_with("vrrp-42 "))
            .unwrap_or_default();
        line.trim_start_matches("vrrp-42 ").trim().to_string()
    };
    let t0 = Instant::now();
    loop {
        let state = group(&msock);
        if state == "sync group eth1-vlan10 [MASTER]" {
            eprintln!(
                "e2e: MASTER router is VRRP master after {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the MASTER router's vrrpd never became master: {state:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(group(&bsock), "sync group eth1-vlan10 [BACKUP]");
    let vips = |sock: &std::path::Path| {
        let out = console_run(
            sock,
            "echo vips-$((6*7)) $(ip -4 -o addr show | grep -c ' 172.16.10.1/24\\| 172.16.20.1/24\\| 10.1.1.4/24')",
            "vips-42 ",
            Duration::from_secs(30),
        );
        out.lines()
            .find_map(|l| l.strip_prefix("vips-42 "))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no VIP count:\n{out}"))
    };
    assert_eq!(vips(&msock), 3, "the VRRP master must hold all three VIPs");
    assert_eq!(vips(&bsock), 0, "the VRRP backup must hold no VIP");
    let out = console_run(
        &bsock,
        "echo master-$((6*7)) $(vrrpd status | grep -o 'master 172.16.10.100')",
        "master-42 ",
        Duration::from_secs(30),
    );
    assert!(
        out.contains("master-42 master 172.16.10.100"),
        "the BACKUP does not see the MASTER's adverts:\n{out}"
    );
    ping_from(
        &bsock,
        "BACKUP -> uplink VIP",
        std::net::Ipv4Addr::new(10, 1, 1, 4),
    );

    // Failover: the MASTER appliance loses power (its QEMU is killed). The BACKUP stops
    // hearing adverts and takes the sync group after Master_Down_Interval, counted from the
    // last advert it heard (VRRPv2: 3 x 5 s + (256 - 50)/256 s = 15.8 s, so 10.8-15.8 s
    // after the kill), then holds all three VIPs.
    guards[0].vm.kill();
    let t0 = Instant::now();
    loop {
        let state = group(&bsock);
        if state == "sync group eth1-vlan10 [MASTER]" {
            eprintln!(
                "e2e: BACKUP router took over {:.1} s after the MASTER was killed",
                t0.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the BACKUP router never took over: {state:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        t0.elapsed() >= Duration::from_secs(10),
        "took over before Master_Down_Interval could have passed (10.8 s at the earliest)"
    );
    assert_eq!(
        vips(&bsock),
        3,
        "the new VRRP master must hold all three VIPs"
    );
}
