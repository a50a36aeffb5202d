//! Hostile local clients and hostile packets against a running vrrpd (docs/security-vrrpd.md),
//! in the network-namespace lab of interop.rs. Needs root; fails (never skips) without it.
mod lab;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;

fn one_conf(lab: &Lab, version: u8, pass: bool, adv: &str, prio: u8) -> String {
    conf(
        version,
        pass,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: adv,
            vips: vec![format!("{}/24 dev vlan10", lab.vip(0))],
            extra: "",
        }],
        &[],
    )
}

fn counter(st: &serde_json::Value, k: &str) -> u64 {
    st["instances"][0]["counters"][k].as_u64().unwrap()
}

/// Keep `n` connections open that never send a byte, reconnecting when closed, until `end`.
fn idle_clients(sock: std::path::PathBuf, n: usize, end: Instant) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut held: Vec<UnixStream> = Vec::new();
        while Instant::now() < end {
            held.retain(|s| {
                use std::io::Read;
                let mut b = [0u8; 1];
                s.set_nonblocking(true).unwrap();
                let mut r: &UnixStream = s;
                !matches!(r.read(&mut b), Ok(0))
            });
            while held.len() < n {
                match UnixStream::connect(&sock) {
                    Ok(s) => held.push(s),
                    Err(_) => break,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// Send "status" one byte every 50 ms, never the newline, reconnecting when closed.
fn dribbler(sock: std::path::PathBuf, end: Instant) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while Instant::now() < end {
            let Ok(mut s) = UnixStream::connect(&sock) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            for b in b"status".iter().cycle() {
                if Instant::now() >= end || s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
}

/// Item 1: slow and idle control clients while vrrpd is MASTER against keepalived: no
/// failover, adverts keep coming at their interval, the bounds are counted.
#[test]
fn slow_control_clients_do_not_delay_adverts() {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vips = [lab.vip(0)];
    lab.start(1, Impl::Keepalived, &one_conf(&lab, 3, false, "0.2", 100));
    lab.start(0, Impl::Vrrpd, &one_conf(&lab, 3, false, "0.2", 150));
    lab.wait_holder(&vips, 0, S(8));
    let before = counter(&lab.status(0), "adverts_out");
    // keepalived may have been master for a moment at start: only what follows counts.
    let ka_log_start = lab.log(1).len();
    let sock = lab.procs[0].as_ref().unwrap().socket.clone();
    let t = Instant::now();
    let end = t + S(4);
    let mut th = vec![idle_clients(sock.clone(), 24, end)];
    th.extend((0..3).map(|_| dribbler(sock.clone(), end)));
    for h in th {
        h.join().unwrap();
    }
    let took = t.elapsed().as_secs_f64();
    // keepalived (Master_Down_Interval 0.72 s) never saw a gap long enough to take over.
    assert!(
        !lab.log(1)[ka_log_start..].contains("Entering MASTER STATE"),
        "{}",
        lab.all_logs()
    );
    assert_eq!(lab.holders(vips[0]), vec![0]);
    let st = lab.status(0);
    let sent = counter(&st, "adverts_out") - before;
    // 5 adverts a second; allow a slow, shared machine 60 % of them.
    assert!(
        sent as f64 >= took * 5.0 * 0.6,
        "{sent} adverts in {took:.1}s: {st}"
    );
    assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
    let c = &st["control"];
    assert!(c["timed_out"].as_u64().unwrap() >= 16, "{st}");
    assert!(c["rejected_busy"].as_u64().unwrap() >= 1, "{st}");
}

/// An IPv4 VRRP packet with a chosen (spoofed) source, through an IP_HDRINCL raw socket.
fn send_spoofed(fd: i32, src: std::net::Ipv4Addr, msg: &[u8]) {
    let dst = vrrpd::wire::MCAST_V4;
    let mut p = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, 255, 112, 0, 0];
    p.extend(src.octets());
    p.extend(dst.octets());
    let len = (p.len() + msg.len()) as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(msg);
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: p and sa are live for the call.
    let r = unsafe {
        libc::sendto(
            fd,
            p.as_ptr().cast(),
            p.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&sa) as u32,
        )
    };
    assert_eq!(r as usize, p.len(), "{}", std::io::Error::last_os_error());
}

/// A raw IPv4 socket (IP_HDRINCL) bound to `dev`, in namespace `ns`, on the calling thread.
fn spoof_socket(ns: &str, dev: &str) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let nsf = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: setns on this thread only; socket/setsockopt with live buffers.
    unsafe {
        assert_eq!(libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET), 0);
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        assert!(fd >= 0);
        let r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            dev.as_ptr().cast(),
            dev.len() as u32,
        );
        assert_eq!(r, 0);
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

/// Item 2: bad adverts from many spoofed sources give a bounded number of log lines, every
/// packet is counted and every line not written is counted as suppressed.
#[test]
fn spoofed_sources_cannot_flood_the_log() {
    use vrrpd::wire::{pass_bytes, ChecksumForm, Repr, Version};
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vips = [lab.vip(0)];
    lab.start(0, Impl::Vrrpd, &one_conf(&lab, 2, true, "1", 150));
    lab.wait_holder(&vips, 0, S(6));
    let bad = Repr {
        version: Version::V2,
        vrid: 100,
        priority: 200,
        adver_int: 1,
        addrs: vec![vips[0].into()],
        auth_type: 1,
        auth_data: pass_bytes("guess"),
        rsvd: 0,
    }
    .to_bytes(ChecksumForm::MessageOnly);
    let cl = lab.cl.clone();
    const N: u32 = 240;
    std::thread::spawn(move || {
        let fd = spoof_socket(&cl, "br0");
        for k in 0..N {
            // 10.10.0.4 - 10.10.0.243: on-link, a distinct source per packet.
            let src = std::net::Ipv4Addr::from(u32::from_be_bytes([10, 10, 0, 4]) + k);
            send_spoofed(fd.as_raw_fd(), src, &bad);
            if k % 50 == 49 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .join()
    .unwrap();
    lab.wait("every spoofed packet counted", S(3), |l| {
        l.status(0)["instances"][0]["counters"]["bad_auth"].as_u64() == Some(u64::from(N))
    });
    let st = lab.status(0);
    let log = lab.log(0);
    let lines = log
        .lines()
        .filter(|l| l.contains("CONFIGURATION MISMATCH") || l.contains("dropped advert"))
        .count() as u64;
    assert!(lines <= 40, "{lines} drop lines:\n{log}");
    assert!(lines >= 1, "{log}");
    assert_eq!(
        st["log_suppressed"].as_u64(),
        Some(u64::from(N) - lines),
        "{st}"
    );
    assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
    let p = lab.procs[0].as_ref().unwrap();
    let out = lab::sh(&[
        env!("CARGO_BIN_EXE_vrrpd"),
        "status",
        "--socket",
        p.socket.to_str().unwrap(),
    ]);
    let want = format!("drop log lines suppressed {}", u64::from(N) - lines);
    assert!(out.contains(&want), "{out}");
}

/// Item 4: 200 IPv6 VIPs (a 3208-byte advert, jumbo MTU): the backup receives the whole
/// advert and stays backup; no split brain.
#[test]
fn large_ipv6_adverts_are_received_whole() {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    for ri in 0..2 {
        lab::sh(&[
            "ip", "-n", &lab.r[ri], "link", "set", "vlan10", "mtu", "9000",
        ]);
        let p = format!("p{ri}s0");
        lab::sh(&["ip", "-n", &lab.cl, "link", "set", &p, "mtu", "9000"]);
    }
    lab::sh(&["ip", "-n", &lab.cl, "link", "set", "br0", "mtu", "9000"]);
    let mut vips = vec!["fe80::60/64".to_string()];
    vips.extend((1..200).map(|k| format!("2001:db8:10::{k:x}/64")));
    let mk = |prio: u8| {
        conf(
            3,
            false,
            &[Inst {
                name: "v6",
                iface: "vlan10",
                vrid: 60,
                priority: prio,
                advert_int: "0.2",
                vips: vips.clone(),
                extra: "",
            }],
            &[],
        )
    };
    lab.start(0, Impl::Vrrpd, &mk(150));
    lab.start(1, Impl::Vrrpd, &mk(100));
    let vip: std::net::Ipv6Addr = "2001:db8:10::c7".parse().unwrap();
    lab.wait("r1 holds the last IPv6 VIP", S(10), |l| {
        l.addrs6(0).contains(&vip)
    });
    lab.wait("r2 hears r1's adverts", S(5), |l| {
        l.try_status(1)
            .is_some_and(|s| s["instances"][0]["counters"]["adverts_in"].as_u64() > Some(3))
    });
    std::thread::sleep(S(2));
    let st = lab.status(1);
    assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
    assert_eq!(counter(&st, "bad_length"), 0, "{st}");
    assert!(!lab.addrs6(1).contains(&vip), "split brain: {st}");
}

/// Item 3: the VRRP interface is deleted (FAULT) and re-created under a new index: the
/// instance recovers and puts its VIP on the new interface.
#[test]
fn deleted_and_recreated_interface_gets_its_vip_back() {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vips = [lab.vip(0)];
    lab.start(0, Impl::Vrrpd, &one_conf(&lab, 3, false, "0.2", 150));
    lab.wait_holder(&vips, 0, S(6));
    let r1 = lab.r[0].clone();
    let cl = lab.cl.clone();
    lab::sh(&["ip", "-n", &r1, "link", "del", "vlan10"]);
    lab.wait("instance FAULT while vlan10 is missing", S(3), |l| {
        l.status(0)["instances"][0]["state"] == "FAULT"
    });
    let veth = ["ip", "-n", &r1, "link", "add", "vlan10", "type", "veth"];
    lab::sh(&[&veth[..], &["peer", "name", "p0s0", "netns", &cl]].concat());
    lab::sh(&[
        "ip", "-n", &cl, "link", "set", "p0s0", "master", "br0", "up",
    ]);
    lab::sh(&[
        "ip",
        "-n",
        &r1,
        "addr",
        "add",
        "10.10.0.2/24",
        "dev",
        "vlan10",
    ]);
    lab::sh(&["ip", "-n", &r1, "link", "set", "vlan10", "up"]);
    lab.wait("r1 holds the VIP on the new vlan10", S(6), |l| {
        let out = lab::sh(&["ip", "-n", &l.r[0], "-4", "addr", "show", "dev", "vlan10"]);
        out.contains(&format!("{}/24", l.vip(0)))
    });
    let st = lab.status(0);
    assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
    assert!(lab.client_ping(vips[0]), "{}", lab.all_logs());
    // Adverts go out on the new interface (the one send error is the priority-0 advert
    // tried while vlan10 was being deleted).
    let (before, errs) = (counter(&st, "adverts_out"), counter(&st, "send_errors"));
    std::thread::sleep(Duration::from_millis(600));
    let st = lab.status(0);
    assert!(counter(&st, "adverts_out") > before, "{st}");
    assert_eq!(counter(&st, "send_errors"), errs, "{st}");
}

/// Item 5: a sync group whose second VLAN is cut between the routers: the backup's member on
/// it hears no master while the other member does; said once in the log and in status.
#[test]
fn sync_group_member_with_a_cut_vlan_is_reported() {
    let mut lab = Lab::new(&["vlan10", "vlan20"], vrrpd());
    let mk = |lab: &Lab, prio: u8| {
        let inst = |name, iface, vrid, seg: usize| Inst {
            name,
            iface,
            vrid,
            priority: prio,
            advert_int: "0.2",
            vips: vec![format!("{}/24 dev {iface}", lab.vip(seg))],
            extra: "",
        };
        conf(
            3,
            false,
            &[
                inst("interne", "vlan10", 100, 0),
                inst("externe", "vlan20", 101, 1),
            ],
            &[("G", &["interne", "externe"])],
        )
    };
    let vips = [lab.vip(0), lab.vip(1)];
    lab.start(0, Impl::Vrrpd, &mk(&lab, 150));
    lab.start(1, Impl::Vrrpd, &mk(&lab, 100));
    lab.wait_holder(&vips, 0, S(8));
    let broken = |l: &Lab| l.status(1)["groups"][0]["broken_paths"].clone();
    lab.wait("no broken path while both VLANs carry adverts", S(3), |l| {
        broken(l) == serde_json::json!([])
    });
    // Cut r2's port on the vlan20 bridge (carrier stays up: no FAULT).
    lab::sh(&["ip", "-n", &lab.cl, "link", "set", "p1s1", "nomaster"]);
    lab.wait("r2 reports externe's broken path", S(5), |l| {
        broken(l) == serde_json::json!(["externe"])
    });
    std::thread::sleep(S(2));
    let log = lab.log(1);
    assert_eq!(
        log.matches("hears no master while the other members do")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(lab.status(1)["groups"][0]["state"], "BACKUP");
    lab::sh(&["ip", "-n", &lab.cl, "link", "set", "p1s1", "master", "br1"]);
    lab.wait("the path is restored", S(5), |l| {
        broken(l) == serde_json::json!([])
    });
}
