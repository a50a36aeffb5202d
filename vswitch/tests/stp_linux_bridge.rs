//! Our BPDU wire format against the Linux kernel bridge (`stp_state 1`, kernel 802.1D STP):
//! a namespace holds `br0` and a veth pair, one end enslaved, the other read and written by
//! this test through an AF_PACKET socket. First hand-made BPDUs, then our `stp::fsm` bridge
//! as br0's peer, then a `vswitch -F` daemon cabled to br0 twice through taps. Skips
//! (printing why) only when not root.

mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use vswitch::stp::bpdu::{secs_to_units, Bpdu, BridgeId, Config};
use vswitch::stp::fsm::{Bridge, PortRole, PortState, Ticks, Timers};

/// ETH_P_802_2: the kernel hands 802.3 length frames with LLC to sockets bound to this.
const ETH_P_802_2: u16 = 0x0004;
const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x57, 0x01];

/// An AF_PACKET socket on one interface, receiving LLC frames only.
struct RawPort {
    fd: OwnedFd,
    ifindex: i32,
}

fn check(rc: libc::c_int, what: &str) {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
}

impl RawPort {
    /// Opens the socket inside namespace `ns` from a short-lived thread, so only that thread
    /// ever changes namespace; the socket stays bound to `ns` afterwards.
    fn open(ns: &Netns, ifname: &str) -> RawPort {
        let path = format!("/run/netns/{}", ns.name);
        let ifname = ifname.to_string();
        std::thread::spawn(move || {
            let nsf = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: plain syscalls on fds we own; setns affects this thread only.
            unsafe {
                check(libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET), "setns");
                Self::open_here(&ifname)
            }
        })
        .join()
        .expect("raw socket thread")
    }

    /// # Safety
    /// Only plain libc calls with valid pointers to locals.
    unsafe fn open_here(ifname: &str) -> RawPort {
        let proto = ETH_P_802_2.to_be() as i32;
        // SAFETY: see the function's contract.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto);
            check(fd, "socket(AF_PACKET)");
            let fd = OwnedFd::from_raw_fd(fd);
            let name = std::ffi::CString::new(ifname).unwrap();
            let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            assert!(ifindex > 0, "no interface {ifname}");
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_802_2.to_be();
            sll.sll_ifindex = ifindex;
            let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let sa = &sll as *const libc::sockaddr_ll as *const libc::sockaddr;
            check(libc::bind(fd.as_raw_fd(), sa, len), "bind");
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            let tvp = &tv as *const libc::timeval as *const libc::c_void;
            let tvl = std::mem::size_of::<libc::timeval>() as u32;
            let rc = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                tvp,
                tvl,
            );
            check(rc, "SO_RCVTIMEO");
            RawPort { fd, ifindex }
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: sockaddr_ll is plain data; the buffer outlives the call.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            let sa = &sll as *const libc::sockaddr_ll as *const libc::sockaddr;
            let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let p = frame.as_ptr() as *const libc::c_void;
            let n = libc::sendto(self.fd.as_raw_fd(), p, frame.len(), 0, sa, len);
            assert_eq!(
                n,
                frame.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// One frame received (not one we sent), or None after the 200 ms socket timeout.
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        // SAFETY: the buffer and sockaddr are locals of the stated sizes.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let sa = &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr;
            let p = buf.as_mut_ptr() as *mut libc::c_void;
            let n = libc::recvfrom(self.fd.as_raw_fd(), p, buf.len(), 0, sa, &mut sl);
            if n < 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
                return None;
            }
            buf.truncate(n as usize);
        }
        Some(buf)
    }

    /// The next BPDU from the bridge within `within`, with its raw frame.
    fn next_bpdu(&self, within: Duration) -> Option<(Vec<u8>, Bpdu)> {
        let t = Instant::now();
        while t.elapsed() < within {
            if let Some(f) = self.recv() {
                if let Ok((_, b)) = Bpdu::decode_frame(&f) {
                    return Some((f, b));
                }
            }
        }
        None
    }
}

fn sysfs(ns: &Netns, file: &str) -> String {
    let o = netns_sh(ns, &format!("cat /sys/class/net/{file}"));
    assert!(
        o.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn sysfs_id(ns: &Netns, file: &str) -> BridgeId {
    let s = sysfs(ns, file);
    BridgeId::parse_sysfs(&s).unwrap_or_else(|| panic!("{file}: {s:?}"))
}

/// A sysfs number, decimal or `0x` hex (port_no and port_id are hex, costs decimal).
fn num(ns: &Netns, file: &str) -> u32 {
    let s = sysfs(ns, file);
    let r = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.unwrap_or_else(|e| panic!("{file}: {s:?}: {e}"))
}

/// sysfs bridge times are centiseconds; BPDUs carry 1/256 s.
fn cs_to_units(cs: &str) -> u16 {
    (cs.parse::<u32>().unwrap() * 256 / 100) as u16
}

/// Sends `bpdu` once per second for `secs` seconds, draining what the bridge sends.
fn keep_sending(port: &RawPort, bpdu: Bpdu, secs: u32) {
    for _ in 0..secs {
        port.send(&bpdu.encode_frame(OUR_MAC));
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            let _ = port.recv();
        }
    }
}

/// A Configuration BPDU from a bridge 0x8000.02..57:02 one hop from `root`.
fn claim(root_priority: u16) -> Config {
    Config {
        flags: 0,
        root: BridgeId {
            priority: root_priority,
            mac: [0x02, 0, 0, 0, 0x57, 0x00],
        },
        root_path_cost: 19,
        bridge: BridgeId {
            priority: 0x8000,
            mac: [0x02, 0, 0, 0, 0x57, 0x02],
        },
        port_id: 0x8002,
        message_age: secs_to_units(1),
        max_age: secs_to_units(6),
        hello_time: secs_to_units(1),
        forward_delay: secs_to_units(4),
    }
}

fn setup(ns: &Netns) {
    let o = netns_sh(
        ns,
        "ip link add br0 type bridge stp_state 1 priority 32768 \
           forward_delay 400 hello_time 100 max_age 2000 && \
         ip link add vb type veth peer name vp && \
         sysctl -qw net.ipv6.conf.vp.disable_ipv6=1 && \
         ip link set vb master br0 && \
         ip link set br0 up && ip link set vb up && ip link set vp up",
    );
    assert!(
        o.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn linux_bridge_speaks_our_bpdu_format() {
    if !is_root() {
        println!("skipped: creating a namespace with a Linux bridge needs root");
        return;
    }
    require("ip", "iproute2");
    let ns = netns("stp");
    setup(&ns);
    let port = RawPort::open(&ns, "vp");
    let own = sysfs_id(&ns, "br0/bridge/bridge_id");

    // (a) What the bridge sends as root decodes, and says what sysfs says.
    let (raw, b) = port
        .next_bpdu(Duration::from_secs(5))
        .expect("no BPDU from br0 within 5 s");
    println!("br0 sent {} bytes: {raw:02x?}", raw.len());
    let Bpdu::Config(c) = b else {
        panic!("Linux kernel STP sends 802.1D Configuration BPDUs, got {b:?}")
    };
    assert_eq!(raw[17 + 2], 0, "protocol version 0 (802.1D STP)");
    assert_eq!(c.root, sysfs_id(&ns, "br0/bridge/root_id"));
    assert_eq!((c.root, c.bridge, c.root_path_cost), (own, own, 0));
    let port_id = sysfs(&ns, "vb/brport/port_id");
    assert_eq!(format!("{:#x}", c.port_id), port_id);
    assert_eq!(c.message_age, 0);
    assert_eq!(
        c.hello_time,
        cs_to_units(&sysfs(&ns, "br0/bridge/hello_time"))
    );
    assert_eq!(c.max_age, cs_to_units(&sysfs(&ns, "br0/bridge/max_age")));
    assert_eq!(
        c.forward_delay,
        cs_to_units(&sysfs(&ns, "br0/bridge/forward_delay"))
    );
    assert_eq!(
        (c.hello_time, c.max_age, c.forward_delay),
        (256, 20 * 256, 4 * 256)
    );

    // (c) An RST BPDU claiming a better root is ignored: the kernel only reads types 0x00/0x80.
    keep_sending(&port, Bpdu::Rst(claim(0x1000)), 3);
    assert_eq!(
        sysfs_id(&ns, "br0/bridge/root_id"),
        own,
        "RST BPDU was acted on"
    );

    // (b-) A worse root changes nothing, and the bridge keeps sending as root.
    keep_sending(&port, Bpdu::Config(claim(0x9000)), 3);
    assert_eq!(
        sysfs_id(&ns, "br0/bridge/root_id"),
        own,
        "worse root adopted"
    );
    let (_, b) = port
        .next_bpdu(Duration::from_secs(3))
        .expect("br0 went quiet");
    assert!(matches!(b, Bpdu::Config(c) if c.root == own), "{b:?}");

    // (b+) A better root is adopted through this port, with every field read where we put it.
    let better = claim(0x1000);
    keep_sending(&port, Bpdu::Config(better), 3);
    assert_eq!(sysfs_id(&ns, "br0/bridge/root_id"), better.root);
    assert_eq!(
        num(&ns, "br0/bridge/root_port"),
        num(&ns, "vb/brport/port_no")
    );
    let cost = num(&ns, "vb/brport/path_cost");
    let root_cost = num(&ns, "br0/bridge/root_path_cost");
    assert_eq!(root_cost, better.root_path_cost + cost);
    assert_eq!(sysfs_id(&ns, "vb/brport/designated_bridge"), better.bridge);
    assert_eq!(sysfs_id(&ns, "vb/brport/designated_root"), better.root);
    let dport = num(&ns, "vb/brport/designated_port");
    assert_eq!(dport, u32::from(better.port_id));
    // A non-root bridge runs on the root's timers.
    assert_eq!(
        cs_to_units(&sysfs(&ns, "br0/bridge/max_age")),
        better.max_age
    );
    assert_eq!(
        cs_to_units(&sysfs(&ns, "br0/bridge/hello_time")),
        better.hello_time
    );

    // Once we stop, our information ages out (max age 6 s from message age 1 s) and br0
    // becomes root again.
    wait_for("br0 root again", Duration::from_secs(10), || {
        let _ = port.recv();
        sysfs_id(&ns, "br0/bridge/root_id") == own
    });
}

/// Protocol time for `fsm`: 1/256 s since `start`.
fn ticks(start: Instant) -> Ticks {
    (start.elapsed().as_millis() * 256 / 1000) as Ticks
}

fn send_all(port: &RawPort, out: Vec<(usize, Bpdu)>) {
    for (_, b) in out {
        port.send(&b.encode_frame(OUR_MAC));
    }
}

/// Runs `b` (one port, on `port`) against br0 for `secs` seconds of real time.
fn drive(port: &RawPort, b: &mut Bridge, start: Instant, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if let Some(f) = port.recv() {
            if let Ok((_, bpdu)) = Bpdu::decode_frame(&f) {
                let out = b.receive(0, &bpdu, ticks(start));
                send_all(port, out);
            }
        }
        let out = b.tick(ticks(start));
        send_all(port, out);
    }
}

fn fsm_bridge(priority: u16, conf: Timers) -> (Bridge, Vec<(usize, Bpdu)>) {
    let id = BridgeId {
        priority,
        mac: OUR_MAC,
    };
    Bridge::new(id, 1, conf, 0)
}

#[test]
fn fsm_bridge_becomes_root_of_br0() {
    if !is_root() {
        println!("skipped: creating a namespace with a Linux bridge needs root");
        return;
    }
    let ns = netns("stq");
    setup(&ns);
    let port = RawPort::open(&ns, "vp");
    let conf = Timers {
        max_age: secs_to_units(6),
        hello_time: secs_to_units(1),
        forward_delay: secs_to_units(4),
    };
    let (mut b, out) = fsm_bridge(0x1000, conf);
    let start = Instant::now();
    send_all(&port, out);
    drive(&port, &mut b, start, 11); // 8 s to forward, plus slack for a loaded host
    assert_eq!(sysfs_id(&ns, "br0/bridge/root_id"), b.id());
    assert_eq!(
        num(&ns, "br0/bridge/root_port"),
        num(&ns, "vb/brport/port_no")
    );
    assert_eq!(cs_to_units(&sysfs(&ns, "br0/bridge/max_age")), conf.max_age);
    assert_eq!(b.root(), b.id());
    assert_eq!(
        (b.role(0), b.state(0)),
        (PortRole::Designated, PortState::Forwarding)
    );
    // br0's port towards us forwards too (4 s listening + 4 s learning).
    assert_eq!(sysfs(&ns, "vb/brport/state"), "3", "BR_STATE_FORWARDING");
}

#[test]
fn fsm_bridge_follows_br0_as_root() {
    if !is_root() {
        println!("skipped: creating a namespace with a Linux bridge needs root");
        return;
    }
    let ns = netns("stw");
    setup(&ns);
    let port = RawPort::open(&ns, "vp");
    let conf = Timers {
        max_age: secs_to_units(10),
        hello_time: secs_to_units(2),
        forward_delay: secs_to_units(4),
    };
    let (mut b, out) = fsm_bridge(0xf000, conf);
    let start = Instant::now();
    send_all(&port, out);
    drive(&port, &mut b, start, 11); // 8 s to forward, plus slack for a loaded host
    let own = sysfs_id(&ns, "br0/bridge/bridge_id");
    assert_eq!(sysfs_id(&ns, "br0/bridge/root_id"), own);
    assert_eq!((b.root(), b.root_port()), (own, Some(0)));
    assert_eq!(
        (b.role(0), b.state(0)),
        (PortRole::Root, PortState::Forwarding)
    );
    let br0 = Timers {
        max_age: secs_to_units(20),
        hello_time: secs_to_units(1),
        forward_delay: secs_to_units(4),
    };
    assert_eq!(
        b.timers(),
        br0,
        "a non-root bridge runs on the root's timers"
    );
}

/// `vswitch -F`'s tree (JSON) as (port, state).
fn vswitch_states(sw: &Sw) -> Vec<(u64, String)> {
    let r = sw.mgmt().cmd("json stp/print").unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_u64().unwrap(), text(&p["state"])))
        .collect()
}

/// A JSON string's text ("" for anything else).
fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The kernel's port state (include/uapi/linux/if_bridge.h).
fn br_state(ns: &Netns, port: &str) -> &'static str {
    match num(ns, &format!("br0/brif/{port}/state")) {
        0 => "disabled",
        1 => "listening",
        2 => "learning",
        3 => "forwarding",
        4 => "blocking",
        _ => "?",
    }
}

/// br0 in namespace `name` and a vswitch daemon (`flag`: `-F` or `--rstp`) on two taps
/// enslaved to it, with the short timers set from an rc file before the links come up,
/// and vswitch's priority 0x1000.
fn br0_cabled_twice(
    name: &str,
    flag: &str,
) -> (Netns, Sw, String, String, tempfile::NamedTempFile) {
    let ns = netns(name);
    let (t1, t2) = (uniq("s1"), uniq("s2"));
    let o = netns_sh(
        &ns,
        &format!(
            "ip link add br0 type bridge stp_state 1 priority 32768 \
               forward_delay 400 hello_time 100 max_age 600 && \
             ip tuntap add dev {t1} mode tap && ip tuntap add dev {t2} mode tap && \
             sysctl -qw net.ipv6.conf.{t1}.disable_ipv6=1 net.ipv6.conf.{t2}.disable_ipv6=1 \
               net.ipv6.conf.br0.disable_ipv6=1"
        ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The timers must be in place before the taps' links come up: an rc file.
    let rc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rc.path(),
        "stp/setmaxage 6\nstp/setfwddelay 4\nstp/sethello 1\nstp/setprio 4096\n",
    )
    .unwrap();
    let rcp = rc.path().display().to_string();
    let sw = Sw::start_with(
        bin(),
        &[flag, "-f", &rcp, "-t", &t1, "-t", &t2],
        &["ip", "netns", "exec", &ns.name],
    );
    let o = netns_sh(
        &ns,
        &format!(
            "ip link set {t1} master br0 && ip link set {t2} master br0 && \
             ip link set {t1} up && ip link set {t2} up && ip link set br0 up"
        ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (ns, sw, t1, t2, rc)
}

fn info(sw: &Sw) -> serde_json::Value {
    let r = sw.mgmt().cmd("json stp/showinfo").unwrap();
    serde_json::from_str(&r.data[0]).unwrap()
}

#[test]
fn vswitch_daemon_and_br0_cabled_twice_share_one_tree() {
    if !is_root() {
        println!("skipped: creating a namespace with a Linux bridge needs root");
        return;
    }
    require("ip", "iproute2");
    let (ns, sw, t1, t2, _rc) = br0_cabled_twice("stv", "-F");
    let ours = text(&info(&sw)["bridge_id"]);
    assert!(ours.starts_with("1000."), "{ours}");

    // vswitch is root: br0 adopts it, forwards on the tap facing our port 1 and blocks the
    // other; both of ours forward.
    let t = Instant::now();
    wait_for("br0 to block one tap", Duration::from_secs(30), || {
        sysfs(&ns, "br0/bridge/root_id") == ours
            && br_state(&ns, &t1) == "forwarding"
            && br_state(&ns, &t2) == "blocking"
            && vswitch_states(&sw) == vec![(1, "forwarding".into()), (2, "forwarding".into())]
    });
    println!("vswitch as root: converged with br0 in {:?}", t.elapsed());

    // Worse priority: br0 (0x8000) becomes root once our old information ages out; now we
    // block the tap facing br0's higher port.
    sw.cmds(&["stp/setprio 0xf000"]);
    let theirs = sysfs(&ns, "br0/bridge/bridge_id");
    let t = Instant::now();
    wait_for("vswitch to block one port", Duration::from_secs(40), || {
        text(&info(&sw)["root_id"]) == theirs
            && vswitch_states(&sw) == vec![(1, "forwarding".into()), (2, "blocking".into())]
            && br_state(&ns, &t1) == "forwarding"
            && br_state(&ns, &t2) == "forwarding"
    });
    println!("br0 as root: converged in {:?}", t.elapsed());
    assert_eq!(info(&sw)["root_port"], 1);
    assert_eq!(num(&ns, "br0/bridge/root_port"), 0, "br0 is root");
}

/// The per-port RSTP view (`json stp/print P`'s `rstp` object).
fn rstp_of(sw: &Sw, p: u32) -> serde_json::Value {
    let r = sw.mgmt().cmd(&format!("json stp/print {p}")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    v["ports"][0].clone()
}

#[test]
fn rstp_vswitch_falls_back_to_stp_for_br0_and_shares_one_tree() {
    if !is_root() {
        println!("skipped: creating a namespace with a Linux bridge needs root");
        return;
    }
    require("ip", "iproute2");
    let (ns, sw, t1, t2, _rc) = br0_cabled_twice("stx", "--rstp");
    assert_eq!(text(&info(&sw)["mode"]), "rstp");
    let ours = text(&info(&sw)["bridge_id"]);

    // br0 ignores our RST BPDUs and sends Configuration BPDUs: after the migration delay
    // both our ports speak 802.1D to it, and the tree forms as with -F.
    let t = Instant::now();
    wait_for("br0 to block one tap", Duration::from_secs(30), || {
        sysfs(&ns, "br0/bridge/root_id") == ours
            && br_state(&ns, &t1) == "forwarding"
            && br_state(&ns, &t2) == "blocking"
            && vswitch_states(&sw) == vec![(1, "forwarding".into()), (2, "forwarding".into())]
    });
    println!(
        "RSTP vswitch as root: converged with br0 in {:?}",
        t.elapsed()
    );
    for p in [1, 2] {
        let v = rstp_of(&sw, p);
        assert_eq!(v["rstp"]["protocol"], "stp", "port {p} fell back: {v}");
        assert_eq!(v["role"], "designated", "{v}");
        assert_eq!(v["rstp"]["oper_edge"], false, "BPDUs heard: not edge: {v}");
    }

    // br0 as root: we take it through port 1 and port 2 goes alternate, discarding.
    sw.cmds(&["stp/setprio 0xf000"]);
    let theirs = sysfs(&ns, "br0/bridge/bridge_id");
    let t = Instant::now();
    wait_for("vswitch to block one port", Duration::from_secs(40), || {
        text(&info(&sw)["root_id"]) == theirs
            && vswitch_states(&sw) == vec![(1, "forwarding".into()), (2, "discarding".into())]
            && br_state(&ns, &t1) == "forwarding"
            && br_state(&ns, &t2) == "forwarding"
    });
    println!("RSTP vswitch, br0 as root: converged in {:?}", t.elapsed());
    assert_eq!(info(&sw)["root_port"], 1);
    assert_eq!(rstp_of(&sw, 2)["role"], "alternate");
    assert_eq!(rstp_of(&sw, 1)["role"], "root");
    assert_eq!(
        sysfs_id(&ns, "br0/bridge/root_id"),
        sysfs_id(&ns, "br0/bridge/bridge_id")
    );
}

// ---- Measurement: a ring of three, the root port's cable cut, under each protocol ----

/// A `vswitch plug` cable between port `pa` of `a` and `pb` of `b`; cut when dropped.
struct Cable(#[allow(dead_code)] Proc, #[allow(dead_code)] Proc);

fn cable(a: &Sw, pa: u32, b: &Sw, pb: u32) -> Cable {
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills both descriptors on success; each is owned exactly once.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
        // SAFETY: see above.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    };
    let ((r1, w1), (r2, w2)) = (pipe(), pipe());
    let plug = |sw: &Sw, p: u32, stdin: OwnedFd, stdout: OwnedFd| {
        Proc(
            std::process::Command::new(bin())
                .arg("plug")
                .arg(format!("{}:{p}", sw.sock.display()))
                .stdin(stdin)
                .stdout(stdout)
                .spawn()
                .unwrap(),
        )
    };
    Cable(plug(a, pa, r1, w2), plug(b, pb, r2, w1))
}

/// Sends a numbered frame through `send` every 100 ms until `recv` sees one; the time.
fn reconnect(
    send: impl Fn(&[u8]),
    recv: impl Fn() -> Option<Vec<u8>>,
    limit: Duration,
) -> Duration {
    let t = Instant::now();
    for n in 0u32.. {
        let mut f = frame([0xff; 6], mac(1), None, 46);
        // An 802.3 length frame with LLC (so the kernel hands it to ETH_P_802_2 sockets).
        f[12..14].copy_from_slice(&46u16.to_be_bytes());
        f[14..17].copy_from_slice(&[0xe0, 0xe0, 0x03]);
        f[17..21].copy_from_slice(&n.to_be_bytes());
        send(&f);
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(100) {
            if let Some(g) = recv() {
                if g.len() >= 21 && g[..12] == f[..12] && g[14..17] == f[14..17] {
                    return t.elapsed();
                }
            }
        }
        assert!(t.elapsed() < limit, "no connectivity within {limit:?}");
    }
    unreachable!()
}

/// Three vswitch daemons (`flag`) in a ring A-B-C-A, timers hello 1 / max age 6 / fwd 4:
/// the time from cabling until B's client reaches C's, and, once settled, from cutting
/// C's root port cable (C-A) until it does again.
fn vswitch_ring_cut(flag: &str) -> (Duration, Duration) {
    let sw = |prio: u16| {
        let s = Sw::start(&[flag]);
        s.cmds(&[
            "stp/setmaxage 6",
            "stp/setfwddelay 4",
            "stp/sethello 1",
            &format!("stp/setprio {prio}"),
        ]);
        s
    };
    let (a, b, c) = (sw(0x1000), sw(0x2000), sw(0x3000));
    let _ab = cable(&a, 1, &b, 1);
    let _bc = cable(&b, 2, &c, 1);
    let ca = cable(&c, 2, &a, 2);
    let (x, y) = (b.port(10), c.port(10));
    let up = reconnect(|f| x.send(f), || y.recv_within(20), Duration::from_secs(30));
    let blocked = if flag == "-F" {
        "blocking"
    } else {
        "discarding"
    };
    wait_for("the ring to settle", Duration::from_secs(30), || {
        let st = vswitch_states(&c);
        st.contains(&(1, blocked.into())) && st.contains(&(2, "forwarding".into()))
    });
    std::thread::sleep(Duration::from_secs(2));
    drop(ca);
    let back = reconnect(|f| x.send(f), || y.recv_within(20), Duration::from_secs(30));
    (up, back)
}

/// The same ring of kernel bridges in one namespace, veth cables, AF_PACKET clients.
fn linux_ring_cut() -> (Duration, Duration) {
    let ns = netns("str");
    let mut sh = String::new();
    for (br, prio) in [("bra", 4096), ("brb", 8192), ("brc", 12288)] {
        sh += &format!(
            "ip link add {br} type bridge stp_state 1 priority {prio} forward_delay 400 \
             hello_time 100 max_age 600 && sysctl -qw net.ipv6.conf.{br}.disable_ipv6=1 && "
        );
    }
    // Cables (end, bridge) in enslaving order: C's port on the B-C cable comes first.
    for (x, bx, y, by) in [
        ("ab1", "bra", "ab2", "brb"),
        ("bc1", "brb", "bc2", "brc"),
        ("ca1", "brc", "ca2", "bra"),
        ("px", "", "pxb", "brb"),
        ("py", "", "pyb", "brc"),
    ] {
        sh += &format!("ip link add {x} type veth peer name {y} && ");
        for (e, br) in [(x, bx), (y, by)] {
            sh += &format!("sysctl -qw net.ipv6.conf.{e}.disable_ipv6=1 && ");
            if !br.is_empty() {
                sh += &format!("ip link set {e} master {br} && ");
            }
            sh += &format!("ip link set {e} up && ");
        }
    }
    sh += "ip link set bra up && ip link set brb up && ip link set brc up";
    let o = netns_sh(&ns, &sh);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (x, y) = (RawPort::open(&ns, "px"), RawPort::open(&ns, "py"));
    let recv = || y.recv();
    let up = reconnect(|f| x.send(f), recv, Duration::from_secs(30));
    wait_for("the kernel ring to settle", Duration::from_secs(30), || {
        br_state_of(&ns, "brc", "bc2") == "blocking"
            && br_state_of(&ns, "brc", "ca1") == "forwarding"
    });
    std::thread::sleep(Duration::from_secs(2));
    let o = netns_sh(&ns, "ip link del ca1");
    assert!(o.status.success());
    let back = reconnect(|f| x.send(f), recv, Duration::from_secs(30));
    (up, back)
}

fn br_state_of(ns: &Netns, br: &str, port: &str) -> &'static str {
    match num(ns, &format!("{br}/brif/{port}/state")) {
        0 => "disabled",
        1 => "listening",
        2 => "learning",
        3 => "forwarding",
        4 => "blocking",
        _ => "?",
    }
}

/// docs/benchmarks.md's convergence table, by hand:
/// `cargo test --release -p vswitch --test stp_linux_bridge ring_cut -- --ignored --nocapture`
#[test]
#[ignore = "a measurement (about a minute), run by hand"]
fn ring_cut_convergence_rstp_vs_stp_vs_linux_bridge() {
    if !is_root() {
        println!("skipped: the Linux bridge ring needs root");
        return;
    }
    require("ip", "iproute2");
    let rstp = vswitch_ring_cut("--rstp");
    let stp = vswitch_ring_cut("-F");
    let linux = linux_ring_cut();
    println!("ring of three, hello 1 s, max age 6 s, forward delay 4 s; cut: C's root port cable (link down)");
    println!(
        "{:<22} {:>16} {:>22}",
        "", "first frame (s)", "back after cut (s)"
    );
    for (name, (up, back)) in [
        ("vswitch --rstp", rstp),
        ("vswitch -F (802.1D)", stp),
        ("Linux bridge (STP)", linux),
    ] {
        println!(
            "{name:<22} {:>16.2} {:>22.2}",
            up.as_secs_f64(),
            back.as_secs_f64()
        );
    }
    println!(
        "cut: STP / RSTP = {:.0}x, Linux / RSTP = {:.0}x",
        stp.1.as_secs_f64() / rstp.1.as_secs_f64(),
        linux.1.as_secs_f64() / rstp.1.as_secs_f64()
    );
    assert!(rstp.1 * 5 < stp.1 && rstp.1 * 5 < linux.1);
}
