//! vswitch against real peers: Debian's vde_plug / unixcmd / vde_switch, our own VDE
//! clients, the kernel (tap, vxlan in namespaces), tshark for captures.

mod common;

use common::*;
use ramux_testkit::vlaunch::qemu::{NetBackend, NetDevice, QemuCommand};
use ramux_testkit::vlaunch::Accel;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vswitch::wire::{PortRequest, RequestRepr};

const BC: [u8; 6] = [0xff; 6];

#[test]
fn learning_flooding_and_counters() {
    let sw = Sw::start(&[]);
    let (a, b, c) = (sw.port(1), sw.port(2), sw.port(3));
    assert_eq!((a.c.port, b.c.port, c.c.port), (Some(1), Some(2), Some(3)));
    // Unknown unicast floods to everyone else.
    let f = frame(mac(2), mac(1), None, 46);
    a.send(&f);
    assert_eq!(b.recv(), f);
    assert_eq!(c.recv(), f);
    // b answers: a learned, so only a gets it.
    let g = frame(mac(1), mac(2), None, 100);
    b.send(&g);
    assert_eq!(a.recv(), g);
    assert!(c.recv_within(200).is_none(), "known unicast must not flood");
    // Runts are counted, not forwarded, and the switch keeps working.
    a.send(&[1, 2, 3]);
    a.send(&f);
    assert_eq!(b.recv(), f);
    let mut m = sw.mgmt();
    let r = m.cmd("port/print 1").unwrap();
    assert_eq!(r.code, 1000);
    assert!(r.data.iter().any(|l| l.contains("runt=1")), "{r:?}");
    assert!(r.data[2].starts_with(" IN:  pkts          2"), "{r:?}");
    let h = m.cmd("hash/find 02:00:00:00:5e:02").unwrap();
    assert!(h.data[0].contains("to port: 002"), "{h:?}");
}

#[test]
fn vlans_access_trunk_and_full_size_tagged_frames() {
    let rc_dir = tempfile::tempdir().unwrap();
    let rc = rc_dir.path().join("vlan.rc");
    std::fs::write(
        &rc,
        "# lab\nvlan/create 10\nvlan/create 20\nvlan/create 4094\nport/create 1\nport/setvlan 1 10\n\
         port/create 2\nport/setvlan 2 20\nport/create 3\nport/setvlan 3 10\nport/create 4\n\
         vlan/addport 10 4\nvlan/addport 20 4\nvlan/addport 4094 4\nport/setvlan 4 4095\n",
    )
    .unwrap();
    let sw = Sw::start(&["-f", rc.to_str().unwrap()]);
    let (p1, p2, p3, p4) = (sw.port(1), sw.port(2), sw.port(3), sw.port(4));
    // Access VLAN 10 broadcast: reaches the other VLAN-10 access port untagged, the trunk tagged.
    let f = frame(BC, mac(1), None, 46);
    p1.send(&f);
    assert_eq!(p3.recv(), f);
    let t = p4.recv();
    assert_eq!(&t[12..16], &[0x81, 0x00, 0x00, 10]);
    assert_eq!(t.len(), f.len() + 4);
    assert!(
        p2.recv_within(200).is_none(),
        "VLAN 20 port must not see VLAN 10"
    );
    // Full-size tagged frame (1522 bytes) from the trunk: untagged (1518) on VLAN 20 access.
    let big = frame(BC, mac(4), Some(20), 1504);
    assert_eq!(big.len(), 1522);
    p4.send(&big);
    let got = p2.recv();
    assert_eq!(got.len(), 1518);
    assert_eq!(&got[12..14], &[0x88, 0xb5]);
    assert!(p1.recv_within(200).is_none());
    // VLAN 4094 (vde_switch refuses to create it) works on the trunk; nobody else is in it.
    p4.send(&frame(BC, mac(4), Some(4094), 46));
    assert!(p1.recv_within(200).is_none());
    // A tagged frame for VLAN 20 from an access port of VLAN 10: dropped and counted.
    p1.send(&frame(BC, mac(1), Some(20), 46));
    assert!(p2.recv_within(200).is_none());
    let mut m = sw.mgmt();
    let r = m.cmd("json port/print 1").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    assert_eq!(doc["ports"][0]["drops"]["vlan_not_member"], 1);
    let v = m.cmd("vlan/print 4").unwrap();
    assert_eq!(v.code, 1006, "VLAN 4 undefined: {v:?}");
    let v = m.cmd("vlan/print 10").unwrap();
    assert_eq!(
        v.data,
        vec![
            "VLAN 0010",
            " -- Port 0001 tagged=0 active=1 status=Forwarding",
            " -- Port 0003 tagged=0 active=1 status=Forwarding",
            " -- Port 0004 tagged=1 active=1 status=Forwarding"
        ]
    );
}

#[test]
fn refusals_close_cleanly_and_garbage_is_survived() {
    let sw = Sw::start(&["-n", "2"]);
    // Port beyond numports: the client sees EOF (vde_switch 2.3.2 hangs here).
    let t = Instant::now();
    let e = vswitch::client::VdeClient::connect(&sw.sock, PortRequest::Port(3), "too-far")
        .err()
        .expect("refused");
    assert!(format!("{e:#}").contains("refused"), "{e:#}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // Full switch.
    let _a = sw.port(1);
    let _b = sw.port(2);
    assert!(vswitch::client::VdeClient::connect(&sw.sock, PortRequest::Any, "full").is_err());
    // Garbage handshakes: bad magic, truncated then EOF, version 2.
    for bad in [vec![0u8; 150], vec![0xce, 0xfa, 0xed, 0xfe, 3, 0], {
        let mut r = RequestRepr {
            port: PortRequest::Any,
            path: b"/nonexistent".to_vec(),
            description: vec![],
        }
        .emit();
        r[4] = 2;
        r
    }] {
        let mut s = UnixStream::connect(sw.sock.join("ctl")).unwrap();
        s.write_all(&bad).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 200];
        assert_eq!(
            s.read(&mut b).unwrap(),
            0,
            "switch must close the connection"
        );
    }
    // Busy for another user: tests/hardening.rs (the user is the peer's kernel uid, so
    // it takes a client running as another user).
    // A client socket path that does not exist.
    let mut s = UnixStream::connect(sw.sock.join("ctl")).unwrap();
    s.write_all(
        &RequestRepr {
            port: PortRequest::Any,
            path: b"/nonexistent/x".to_vec(),
            description: b"x".to_vec(),
        }
        .emit(),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 200];
    assert_eq!(s.read(&mut b).unwrap(), 0);
    // Still alive and serving; a closed port is reusable.
    drop(_b);
    wait_for("port 2 freed", Duration::from_secs(3), || {
        sw.mgmt().cmd("port/print 2").unwrap().code == 1006
    });
    let c = sw.port(2);
    assert_eq!(c.c.port, Some(2));
    // Robustness counters: 3 bad requests, and 4 refusals (range, full, busy, missing path).
    let r = sw.mgmt().cmd("json showinfo").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    assert_eq!(doc["counters"]["bad_handshakes"], 3, "{doc}");
    assert!(
        doc["counters"]["refused_requests"].as_u64().unwrap() >= 3,
        "{doc}"
    );
}

#[test]
fn debian_vde_plug_exchanges_frames() {
    require("vde_plug", "vde2");
    let sw = Sw::start(&[]);
    // vde_plug on port 5 (vdeplug4 VNL syntax DIR[5]), frames on stdin/stdout with 2-byte BE length.
    let mut plug = Proc(
        Command::new("vde_plug")
            .arg(format!("{}[5]", sw.sock.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("vde_plug"),
    );
    wait_for("vde_plug on port 5", Duration::from_secs(5), || {
        sw.mgmt().cmd("port/print 5").unwrap().code == 1000
    });
    let descr = sw.mgmt().cmd("port/print 5").unwrap();
    assert!(
        descr
            .data
            .iter()
            .any(|l| l.contains("module unix prog   : vdeplug: user=")),
        "{descr:?}"
    );
    let me = sw.port(1);
    let f = frame(BC, mac(5), None, 100);
    let mut enc = Vec::new();
    vswitch::wire::stream_encode(&f, &mut enc);
    plug.0.stdin.as_mut().unwrap().write_all(&enc).unwrap();
    plug.0.stdin.as_mut().unwrap().flush().unwrap();
    assert_eq!(me.recv(), f);
    let g = frame(mac(5), mac(1), None, 60);
    me.send(&g);
    let out = plug.0.stdout.as_mut().unwrap();
    let mut len = [0u8; 2];
    out.read_exact(&mut len).unwrap();
    let mut got = vec![0u8; u16::from_be_bytes(len) as usize];
    out.read_exact(&mut got).unwrap();
    assert_eq!(got, g);
}

#[test]
fn debian_unixcmd_reads_the_console() {
    require("unixcmd", "vde2");
    let sw = Sw::start(&[]);
    let o = Command::new("unixcmd")
        .args(["-f", "/etc/vde2/vdecmd"])
        .arg("-s")
        .arg(&sw.mgmt)
        .arg("port/showinfo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Numports=32"),
        "unixcmd output: {text:?} {:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    // vswitch ctl against Debian's vde_switch: same framing both ways.
    require("vde_switch", "vde2");
    let vde = Sw::start_with("vde_switch", &[], &[]);
    let o = Command::new(bin())
        .args(["ctl", "-M"])
        .arg(&vde.mgmt)
        .arg("hash/showinfo")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Hash size 128\nGC interval 2 secs\nGC expire 100 secs\nMin persistence 3 secs\n"
    );
    let o = Command::new(bin())
        .args(["ctl", "-M"])
        .arg(&vde.mgmt)
        .arg("port/print 99")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("1022 Invalid argument"));
}

#[test]
fn plug_cable_between_vde_switch_and_vswitch() {
    require("dpipe", "vde2");
    require("vde_switch", "vde2");
    let vde = Sw::start_with("vde_switch", &[], &[]);
    let ours = Sw::start(&[]);
    // The 2009 lab's cable: dpipe vde_plug A = vde_plug B, with one side replaced by vswitch plug.
    let _cable = Proc(
        Command::new("dpipe")
            .arg("vde_plug")
            .arg(&vde.sock)
            .arg("=")
            .arg(bin())
            .arg("plug")
            .arg(format!("{}:7", ours.sock.display()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("cable on vswitch port 7", Duration::from_secs(5), || {
        ours.mgmt().cmd("port/print 7").unwrap().code == 1000
    });
    let a = vde.port(3);
    let b = ours.port(2);
    let f = frame(BC, mac(3), None, 46);
    // The cable's vde_plug may need a moment to finish its own handshake on vde_switch.
    let t = Instant::now();
    loop {
        a.send(&f);
        if let Some(got) = b.recv_within(300) {
            assert_eq!(got, f);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "frame did not cross the cable"
        );
    }
    let g = frame(mac(3), mac(2), None, 1500);
    b.send(&g);
    a.drain_until(&g);
}

trait DrainUntil {
    fn drain_until(&self, want: &[u8]);
}

impl DrainUntil for Port {
    fn drain_until(&self, want: &[u8]) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Some(f) = self.recv_within(500) {
                if f == want {
                    return;
                }
            }
        }
        panic!("frame not received");
    }
}

#[test]
fn egress_queue_absorbs_a_slow_receiver() {
    let sw = Sw::start(&[]);
    let (a, b) = (sw.port(1), sw.port(2));
    b.send(&frame(BC, mac(2), None, 46));
    a.recv();
    // 2000 frames while b does not read: far more than the 10-datagram kernel queue.
    for i in 0..2000u32 {
        let mut f = frame(mac(2), mac(1), None, 46);
        f[14..18].copy_from_slice(&i.to_be_bytes());
        a.send(&f);
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..2000u32 {
        let f = b.recv();
        assert_eq!(&f[14..18], &i.to_be_bytes(), "in order, none lost");
    }
    let r = sw.mgmt().cmd("json port/print 2").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    assert_eq!(doc["ports"][0]["drops"]["egress_queue_full"], 0);
    assert_eq!(doc["ports"][0]["out"]["frames"], 2000);
}

#[test]
fn stream_peers_batch_both_ways_and_survive_a_slow_reader() {
    // Stream egress is written many frames per writev and parsed in place on ingress; a
    // reader that stalls forces partial writes and EPOLLOUT resumption. Every frame must
    // arrive whole, in order, with its own length prefix.
    let side = tempfile::tempdir().unwrap();
    let (s1, s2) = (side.path().join("s1"), side.path().join("s2"));
    let sw = Sw::start(&[
        "--stream",
        &format!("{}:1", s1.display()),
        "--stream",
        &format!("{}:2", s2.display()),
    ]);
    let mut a = UnixStream::connect(&s1).unwrap();
    let mut b = UnixStream::connect(&s2).unwrap();
    let enc = |f: &[u8]| {
        let mut v = (f.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(f);
        v
    };
    let read_frame = |s: &mut UnixStream| {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut f).unwrap();
        f
    };
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Both accepted before b's broadcast, or it floods to nobody.
    wait_for(
        "both stream peers on their ports",
        Duration::from_secs(5),
        || (1..=2).all(|p| sw.mgmt().cmd(&format!("port/print {p}")).unwrap().code == 1000),
    );
    // b announces itself so a -> b is unicast.
    b.write_all(&enc(&frame(BC, mac(2), None, 46))).unwrap();
    assert_eq!(&read_frame(&mut a)[6..12], &mac(2));
    // 700 frames of about 1 KB: more than the kernel's socket buffer (so writes go partial
    // and wait for EPOLLOUT) but within the 1 MiB egress queue (so even once the 50 ms
    // ingress hold-back expires nothing is dropped). Sizes vary so a misplaced boundary
    // shows; written 7 frames at a time while b sleeps.
    const N: u32 = 700;
    let writer = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..N {
            let mut f = frame(mac(2), mac(1), None, 900 + (i % 100) as usize);
            f[14..18].copy_from_slice(&i.to_be_bytes());
            batch.extend_from_slice(&enc(&f));
            if i % 7 == 6 || i == N - 1 {
                a.write_all(&batch).unwrap();
                batch.clear();
            }
        }
        a
    });
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..N {
        let f = read_frame(&mut b);
        assert_eq!(f.len(), 14 + 900 + (i % 100) as usize, "frame {i} length");
        assert_eq!(&f[14..18], &i.to_be_bytes(), "in order, none lost");
        assert_eq!(&f[6..12], &mac(1));
    }
    let _a = writer.join().unwrap();
    let r = sw.mgmt().cmd("json port/print 2").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    assert_eq!(doc["ports"][0]["drops"]["egress_queue_full"], 0);
    assert_eq!(doc["ports"][0]["out"]["frames"], N as u64);
}

#[test]
fn port_streams_give_every_port_a_stream_listener() {
    // What vlaunch uses: DIR.streams/N is port N for QEMU `-netdev stream`, next to the VDE
    // clients of the same port numbers; removed again when the switch exits.
    let sw = Sw::start(&["-n", "8", "--port-streams"]);
    let streams = sw.dir.path().join("sw.streams");
    for p in 1..=8 {
        assert!(
            streams.join(p.to_string()).exists(),
            "listener for port {p}"
        );
    }
    assert!(!streams.join("9").exists());
    let a = sw.port(1);
    let mut b = UnixStream::connect(streams.join("2")).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    wait_for("stream peer on port 2", Duration::from_secs(5), || {
        sw.mgmt().cmd("port/print 2").unwrap().code == 1000
    });
    let f = frame(BC, mac(2), None, 46);
    let mut enc = (f.len() as u32).to_be_bytes().to_vec();
    enc.extend_from_slice(&f);
    b.write_all(&enc).unwrap();
    assert_eq!(a.recv(), f);
    let g = frame(mac(2), mac(1), None, 100);
    a.send(&g);
    let mut len = [0u8; 4];
    b.read_exact(&mut len).unwrap();
    let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, g);
    let r = sw.mgmt().cmd("port/print 2").unwrap();
    assert!(r.data.iter().any(|l| l.contains("module stream")), "{r:?}");
    drop(b);
    // vde_switch answers shutdown with 9999 (its "bye"), and so does vswitch.
    let r = sw.mgmt().cmd("shutdown").unwrap();
    assert_eq!(r.code, 9999, "{r:?}");
    wait_for(
        "DIR.streams removed on exit",
        Duration::from_secs(5),
        || !streams.exists(),
    );
}

#[test]
fn impairments_live_from_the_console_and_pcap_capture() {
    require("tshark", "tshark");
    let sw = Sw::start(&[]);
    let (a, b) = (sw.port(1), sw.port(2));
    let f = frame(BC, mac(1), None, 46);
    sw.cmds(&["port/impair 2 out loss 100"]);
    a.send(&f);
    assert!(b.recv_within(300).is_none(), "100% loss");
    sw.cmds(&["port/impair 2 out clear", "port/impair 2 out delay 150"]);
    let t = Instant::now();
    a.send(&f);
    assert_eq!(b.recv(), f);
    assert!(
        t.elapsed() >= Duration::from_millis(140),
        "delay applied: {:?}",
        t.elapsed()
    );
    sw.cmds(&["port/impair 2 out clear", "port/impair 2 out mtu 100"]);
    a.send(&frame(BC, mac(1), None, 200));
    assert!(b.recv_within(300).is_none(), "over MTU");
    let r = sw.mgmt().cmd("json port/print 2").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    assert_eq!(doc["ports"][0]["drops"]["impair_loss"], 1);
    assert_eq!(doc["ports"][0]["drops"]["impair_mtu"], 1);
    sw.cmds(&["port/impair 2 both clear"]);
    // Capture port 1 (both directions) and read it with tshark.
    let pcap = sw.dir.path().join("p1.pcap");
    sw.cmds(&[&format!("port/capture 1 {}", pcap.display())]);
    a.send(&frame(BC, mac(1), None, 46));
    b.recv();
    b.send(&frame(mac(1), mac(2), None, 46));
    a.recv();
    sw.cmds(&["port/capture 1 off"]);
    let o = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args(["-T", "fields", "-e", "eth.src", "-e", "eth.type"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["02:00:00:00:5e:01\t0x88b5", "02:00:00:00:5e:02\t0x88b5"]
    );
}

#[test]
fn daemon_mode_pidfile_modes_and_shutdown_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    // Missing parent directories are created (vlaunch's default is /run/ramux/switch).
    let sock = dir.path().join("run/ramux/sw");
    let mgmt = dir.path().join("mgmt");
    let pidf = dir.path().join("pid");
    let st = Command::new(bin())
        .arg("-s")
        .arg(&sock)
        .arg("-M")
        .arg(&mgmt)
        .arg("-d")
        .arg("-p")
        .arg(&pidf)
        .args(["-m", "0660", "-n", "64", "--hashsize", "1000"])
        .status()
        .unwrap();
    assert!(st.success());
    // -d returns only once the switch is connectable (what vlaunch relies on).
    assert!(
        sock.join("ctl").exists(),
        "ctl must exist when vswitch -d returns"
    );
    assert!(pidf.exists(), "pidfile written before vswitch -d returns");
    // A second switch on the same directory refuses to start, with a clear message.
    let o = Command::new(bin())
        .arg("-s")
        .arg(&sock)
        .arg("-d")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another switch is already listening"),
        "{o:?}"
    );
    // A pidfile of a running vswitch makes the daemon fail after the fork: the exit status
    // still says so (one left by a killed switch is taken over: tests/hardening.rs).
    let other = dir.path().join("sw2");
    let o = Command::new(bin())
        .arg("-s")
        .arg(&other)
        .arg("-d")
        .arg("-p")
        .arg(&pidf)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pidfile"),
        "{o:?}"
    );
    assert!(!other.exists(), "failed start cleans up its directory");
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            // SAFETY: signalling a pid we started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _k = Kill(pid);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&sock.join("ctl")), 0o660);
    assert_eq!(mode(&sock), 0o2770);
    let p = Port::open(&sock, PortRequest::Port(64));
    let data_sock = std::fs::read_dir(&sock)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("064."))
        .expect("DIR/064.N data socket");
    assert_eq!(mode(&data_sock.path()), 0o660);
    let mut m = vswitch::client::MgmtSession::connect(&mgmt).unwrap();
    assert!(m.banner.starts_with("VDE switch V.2.3.2\n"));
    assert_eq!(m.cmd("hash/showinfo").unwrap().data[0], "Hash size 1024");
    assert_eq!(m.cmd("shutdown").unwrap().code, 9999);
    drop(p);
    wait_for("cleanup after shutdown", Duration::from_secs(5), || {
        !sock.exists() && !pidf.exists() && !mgmt.exists()
    });
}

#[test]
fn tap_ports_bridge_two_namespaces() {
    assert!(is_root(), "tap test needs root (CI runs as root)");
    require("ip", "iproute2");
    require("ping", "iputils-ping");
    let ns_a = netns("a");
    let ns_b = netns("b");
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    sh(&format!(
        "ip -n {} tuntap add dev {ta} mode tap && ip -n {} tuntap add dev {tb} mode tap",
        ns_a.name, ns_a.name
    ));
    // vswitch runs inside ns_a (taps are opened there); its unix sockets are in the filesystem.
    let sw = Sw::start_with(
        bin(),
        &["-t", &ta, "-t", &tb],
        &["ip", "netns", "exec", &ns_a.name],
    );
    let r = sw.mgmt().cmd("port/print").unwrap();
    assert!(
        r.data
            .iter()
            .any(|l| l.contains("module tuntap      : ") && l.ends_with(&ta)),
        "{r:?}"
    );
    // Move the second tap to ns_b: its fd stays attached to the switch.
    sh(&format!(
        "ip -n {a} link set {tb} netns {b}",
        a = ns_a.name,
        b = ns_b.name
    ));
    // No IPv6 on the taps: their router solicitations and MLD reports (33:33:...) would reach
    // the VDE port before the ARP broadcast checked below (seen about 1 run in 8).
    sh(&format!(
        "ip netns exec {a} sysctl -qw net.ipv6.conf.{ta}.disable_ipv6=1 && \
         ip -n {a} addr add 198.51.100.1/24 dev {ta} && ip -n {a} link set {ta} up",
        a = ns_a.name
    ));
    sh(&format!(
        "ip netns exec {b} sysctl -qw net.ipv6.conf.{tb}.disable_ipv6=1 && \
         ip -n {b} addr add 198.51.100.2/24 dev {tb} && ip -n {b} link set {tb} up",
        b = ns_b.name
    ));
    let o = netns_sh(&ns_a, "ping -c 3 -i 0.2 -W 2 198.51.100.2");
    assert!(
        o.status.success(),
        "ping across vswitch taps: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A VDE client on the same switch sees the ARP/ICMP traffic too (broadcast ARP).
    let p = sw.port(9);
    let _ = netns_sh(&ns_b, "ip neigh flush all; ping -c 1 -W 1 198.51.100.1");
    let f = p.recv();
    assert_eq!(&f[0..6], &BC, "ARP broadcast reaches the VDE port");
}

#[test]
fn vxlan_port_talks_to_a_kernel_vxlan_device() {
    assert!(is_root(), "vxlan test needs root (CI runs as root)");
    require("ip", "iproute2");
    require("ping", "iputils-ping");
    let ns_sw = netns("s");
    let ns_k = netns("k");
    let (va, vb, vx) = (uniq("va"), uniq("vb"), uniq("vx"));
    // Underlay: a veth pair between the switch's namespace and the kernel VTEP's namespace.
    sh(&format!(
        "ip link add {va} netns {s} type veth peer name {vb} netns {k} && \
         ip -n {s} addr add 192.0.2.1/24 dev {va} && ip -n {s} link set {va} up && \
         ip -n {k} addr add 192.0.2.2/24 dev {vb} && ip -n {k} link set {vb} up && \
         ip -n {k} link add {vx} type vxlan id 4242 remote 192.0.2.1 local 192.0.2.2 dstport 4789 && \
         ip -n {k} addr add 203.0.113.2/24 dev {vx} && ip -n {k} link set {vx} up",
        s = ns_sw.name,
        k = ns_k.name
    ));
    let sw = Sw::start_with(
        bin(),
        &[
            "--vxlan",
            "vni=4242,local=192.0.2.1:4789,remote=192.0.2.2:4789,port=3",
        ],
        &["ip", "netns", "exec", &ns_sw.name],
    );
    // A VDE port plays the host 203.0.113.1: answer ARP and ICMP echo by hand.
    let p = sw.port(1);
    let pinger = std::thread::spawn({
        let ns = ns_k.name.clone();
        move || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "ping",
                    "-c",
                    "2",
                    "-W",
                    "3",
                    "203.0.113.1",
                ])
                .output()
                .unwrap()
        }
    });
    let my_mac = mac(0x77);
    let mut answered = 0;
    let t = Instant::now();
    while answered < 2 && t.elapsed() < Duration::from_secs(8) {
        let Some(f) = p.recv_within(500) else {
            continue;
        };
        let et = u16::from_be_bytes([f[12], f[13]]);
        if et == 0x0806 && f.len() >= 42 && f[21] == 1 && f[38..42] == [203, 0, 113, 1] {
            // ARP reply
            let mut r = Vec::new();
            r.extend_from_slice(&f[6..12]);
            r.extend_from_slice(&my_mac);
            r.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
            r.extend_from_slice(&my_mac);
            r.extend_from_slice(&[203, 0, 113, 1]);
            r.extend_from_slice(&f[22..28]);
            r.extend_from_slice(&f[28..32]);
            p.send(&r);
        } else if et == 0x0800 && f.len() >= 34 && f[23] == 1 && f[34] == 8 {
            // ICMP echo request -> reply: swap MACs and IPs, type 0, fix checksums.
            let mut r = f.clone();
            r[0..6].copy_from_slice(&f[6..12]);
            r[6..12].copy_from_slice(&my_mac);
            r[26..30].copy_from_slice(&f[30..34]);
            r[30..34].copy_from_slice(&f[26..30]);
            let ihl = ((f[14] & 0xf) * 4) as usize;
            let icmp = 14 + ihl;
            r[icmp] = 0;
            r[icmp + 2] = 0;
            r[icmp + 3] = 0;
            let ck = checksum(&r[icmp..]);
            r[icmp + 2..icmp + 4].copy_from_slice(&ck.to_be_bytes());
            p.send(&r);
            answered += 1;
        }
    }
    let o = pinger.join().unwrap();
    assert!(
        o.status.success(),
        "kernel vxlan ping over the switch's VXLAN port: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let r = sw.mgmt().cmd("port/print 3").unwrap();
    assert!(r.data.iter().any(|l| l.contains("module vxlan")), "{r:?}");
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[test]
fn qemu_stream_and_dgram_listeners() {
    let side = tempfile::tempdir().unwrap();
    let st = side.path().join("st");
    let dg = side.path().join("dg");
    let sw = Sw::start(&[
        "--stream",
        &format!("{}:5", st.display()),
        "--dgram",
        &format!("{}:6", dg.display()),
    ]);
    let p1 = sw.port(1);
    // Stream peer (QEMU -netdev stream framing: u32 big-endian length + frame), written in
    // two pieces so the switch has to reassemble across reads.
    let mut s = UnixStream::connect(&st).unwrap();
    let f = frame(BC, mac(5), None, 200);
    let mut enc = (f.len() as u32).to_be_bytes().to_vec();
    enc.extend_from_slice(&f);
    s.write_all(&enc[..50]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(&enc[50..]).unwrap();
    assert_eq!(p1.recv(), f);
    let g = frame(mac(5), mac(1), None, 60);
    p1.send(&g);
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, g);
    let r = sw.mgmt().cmd("port/print 5").unwrap();
    assert!(r.data.iter().any(|l| l.contains("module stream")), "{r:?}");
    // Dgram peer: raw frames; the switch answers to the address the peer sent from.
    let q = std::os::unix::net::UnixDatagram::bind(side.path().join("q")).unwrap();
    q.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let h = frame(BC, mac(6), None, 46);
    q.send_to(&h, &dg).unwrap();
    assert_eq!(p1.recv(), h);
    p1.send(&frame(mac(6), mac(1), None, 46));
    let mut b = [0u8; 2000];
    let n = q.recv(&mut b).unwrap();
    assert_eq!(&b[..6], &mac(6));
    assert_eq!(n, 60);
    // Garbage on the stream (impossible length) drops that peer, the switch goes on; a peer
    // dying mid-frame is counted too.
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    // (Earlier broadcasts may still be buffered for us: read until the switch closes.)
    let t = Instant::now();
    while s.read(&mut b).unwrap_or(0) != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "switch must close a peer that sends garbage"
        );
    }
    let mut s2 = UnixStream::connect(&st).unwrap();
    s2.write_all(&[0, 0, 0, 100, 1, 2]).unwrap();
    drop(s2);
    wait_for("stream peers gone", Duration::from_secs(3), || {
        sw.mgmt().cmd("port/print 5").unwrap().code == 1006
    });
    let f2 = frame(BC, mac(1), None, 46);
    p1.send(&f2);
    let n = q.recv(&mut b).unwrap();
    assert_eq!(&b[..n], &f2[..]);
}

#[test]
fn hub_mode_and_dead_receiver_is_bounded() {
    let sw = Sw::start(&["-x", "--egress-queue-kb", "64"]);
    let (a, b, c) = (sw.port(1), sw.port(2), sw.port(3));
    // Hub: a tagged frame of an undefined VLAN reaches everyone, unchanged.
    let t = frame(mac(2), mac(1), Some(99), 46);
    a.send(&t);
    assert_eq!(b.recv(), t);
    assert_eq!(c.recv(), t);
    // c never reads again: its queue is bounded (64 KiB), the rest is dropped and counted,
    // and b keeps receiving everything.
    let got = std::thread::spawn(move || {
        let mut n = 0;
        while let Some(_f) = b.recv_within(1500) {
            n += 1;
        }
        n
    });
    for _ in 0..3000 {
        a.send(&frame(BC, mac(1), None, 1000));
    }
    let n = got.join().unwrap();
    assert_eq!(n, 3000, "live receiver got every frame");
    let r = sw.mgmt().cmd("json port/print 3").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.data[0]).unwrap();
    let dropped = doc["ports"][0]["drops"]["egress_queue_full"]
        .as_u64()
        .unwrap();
    assert!(
        dropped > 2000,
        "dead receiver's frames dropped and counted: {dropped}"
    );
    drop(c);
}

#[test]
fn group_option_sets_socket_group() {
    use std::os::unix::fs::MetadataExt;
    assert!(is_root(), "chgrp test needs root (CI runs as root)");
    let gid: u32 = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("daemon:")
                .and_then(|r| r.split(':').nth(1))
                .and_then(|g| g.parse().ok())
        })
        .expect("group daemon in /etc/group");
    let sw = Sw::start(&["-g", "daemon", "-m", "0660"]);
    assert_eq!(std::fs::metadata(sw.sock.join("ctl")).unwrap().gid(), gid);
    assert_eq!(std::fs::metadata(&sw.sock).unwrap().gid(), gid);
    let _p = sw.port(3);
    let data = std::fs::read_dir(&sw.sock)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("003."))
        .expect("data socket");
    assert_eq!(data.metadata().unwrap().gid(), gid);
}

#[test]
fn debug_events_like_vde_switch() {
    let sw = Sw::start(&[]);
    let mut s = UnixStream::connect(&sw.mgmt).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let read_until = |s: &mut UnixStream, want: &str| {
        let mut acc = String::new();
        let mut b = [0u8; 4096];
        let t = Instant::now();
        while !acc.contains(want) {
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "no {want:?} in {acc:?}"
            );
            let n = s.read(&mut b).unwrap();
            acc.push_str(&String::from_utf8_lossy(&b[..n]));
        }
        acc
    };
    read_until(&mut s, "vde$ ");
    s.write_all(b"debug/add port\n").unwrap();
    assert!(read_until(&mut s, "vde$ ").starts_with("1000 Success"));
    s.write_all(b"debug/add port\n").unwrap();
    assert!(read_until(&mut s, "vde$ ").starts_with("1017 File exists"));
    s.write_all(b"debug/list port/ep\n").unwrap();
    let l = read_until(&mut s, "vde$ ");
    assert!(
        l.contains("port/ep/+              031 ON     new endpoint\n"),
        "{l:?}"
    );
    let p = sw.port(3);
    let ev = read_until(&mut s, "port/descr");
    assert!(ev.contains("3021 port/+ 03\n"), "{ev:?}");
    assert!(ev.contains("3031 port/ep/+ Port 03 FD "), "{ev:?}");
    drop(p);
    let ev = read_until(&mut s, "3022 port/- 03\n");
    assert!(ev.contains("3032 port/ep/- Port 03 FD "), "{ev:?}");
}

#[test]
fn stdin_console_and_ctl_json() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sw");
    let mgmt = dir.path().join("mgmt");
    let mut child = Proc(
        Command::new(bin())
            .arg("-s")
            .arg(&sock)
            .arg("-M")
            .arg(&mgmt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = child.0.stdout.take().unwrap();
    let mut acc = String::new();
    let mut b = [0u8; 4096];
    while !acc.ends_with("vde$ ") {
        let n = out.read(&mut b).unwrap();
        assert!(n > 0, "stdin console banner: {acc:?}");
        acc.push_str(&String::from_utf8_lossy(&b[..n]));
    }
    assert!(acc.starts_with("VDE switch V.2.3.2\n"));
    child
        .0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"vlan/create 33\n")
        .unwrap();
    acc.clear();
    while !acc.ends_with("vde$ ") {
        let n = out.read(&mut b).unwrap();
        acc.push_str(&String::from_utf8_lossy(&b[..n]));
    }
    assert_eq!(acc, "1000 Success\n\nvde$ ");
    // The VLAN created on stdin is visible through `vswitch ctl --json`.
    let o = Command::new(bin())
        .args(["ctl", "-M"])
        .arg(&mgmt)
        .args(["--json", "vlan/print"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vlans: Vec<u64> = doc["vlans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vlan"].as_u64().unwrap())
        .collect();
    assert_eq!(vlans, vec![0, 33]);
}

#[test]
fn stream_connect_reconnects_to_a_server_on_peer() {
    // Plays QEMU `-netdev stream,server=on`: listens, accepts one peer at a time.
    let side = tempfile::tempdir().unwrap();
    let path = side.path().join("qemu.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let sw = Sw::start(&["--stream-connect", &format!("{}:4", path.display())]);
    let p1 = sw.port(1);
    for round in 0..2 {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let f = frame(BC, mac(40 + round), None, 46);
        let mut enc = (f.len() as u32).to_be_bytes().to_vec();
        enc.extend_from_slice(&f);
        s.write_all(&enc).unwrap();
        assert_eq!(p1.recv(), f, "round {round}");
        // QEMU side goes away: the switch must connect again.
        drop(s);
    }
    // And once more (connect lands in the listener's backlog even before accept).
    wait_for("third connection", Duration::from_secs(3), || {
        sw.mgmt().cmd("port/print 4").unwrap().code == 1000
    });
    let r = sw.mgmt().cmd("port/print 4").unwrap();
    assert!(r.data.iter().any(|l| l.contains("stream server")), "{r:?}");
}

#[test]
fn real_qemu_ipxe_over_stream_server_on_dgram_and_tcp_socket() {
    require("qemu-system-x86_64", "qemu-system-x86");
    // QEMU's iPXE (-boot n) sends DHCP discovers without any disk or kernel: enough to see
    // that QEMU's own stream (server=on) and dgram backends reach vswitch ports.
    let side = tempfile::tempdir().unwrap();
    let qsock = side.path().join("q.sock");
    let swdg = side.path().join("sw.dgram");
    let qdg = side.path().join("q.dgram");
    let qemu = |backend: NetBackend, mac: &str| {
        let mut q = QemuCommand::network_boot(Accel::Tcg, 64);
        q.nics = vec![NetDevice {
            backend,
            model: "e1000".into(),
            mac: Some(mac.parse().expect("MAC")),
            option_rom: true,
        }];
        Proc(
            q.command()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("qemu-system-x86_64"),
        )
    };
    let _q1 = qemu(NetBackend::StreamListen(qsock.clone()), "52:54:00:00:aa:01");
    wait_for("QEMU stream server socket", Duration::from_secs(20), || {
        qsock.exists()
    });
    let tcp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sw = Sw::start(&[
        "--stream-connect",
        &format!("{}:4", qsock.display()),
        "--dgram",
        &format!("{}:5", swdg.display()),
        "--stream-tcp",
        &format!("127.0.0.1:{tcp_port}@6"),
    ]);
    let _q2 = qemu(
        NetBackend::Dgram {
            local: qdg.clone(),
            remote: swdg.clone(),
        },
        "52:54:00:00:aa:02",
    );
    // Legacy -netdev socket,connect= uses the same 4-byte framing over TCP.
    let _q3 = qemu(
        NetBackend::SocketConnect(([127, 0, 0, 1], tcp_port).into()),
        "52:54:00:00:aa:03",
    );
    let p = sw.port(1);
    let mut seen = std::collections::HashSet::new();
    let t = Instant::now();
    while seen.len() < 3 {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "DHCP from all three QEMUs; seen {seen:?}"
        );
        if let Some(f) = p.recv_within(1000) {
            // IPv4 UDP 68 -> 67 broadcast: a DHCP discover.
            if f.len() > 42
                && f[0..6] == BC
                && f[12..14] == [8, 0]
                && f[23] == 17
                && f[36..38] == [0, 67]
            {
                seen.insert(f[6..12].to_vec());
            }
        }
    }
    let r = sw.mgmt().cmd("port/print").unwrap();
    assert!(
        r.data.iter().any(|l| l.contains("module stream"))
            && r.data.iter().any(|l| l.contains("module dgram")),
        "{r:?}"
    );
}

#[test]
fn impairments_and_bad_options_at_start() {
    let sw = Sw::start(&["--impair", "2 out loss 100", "--impair", "2 in mtu 100"]);
    let (a, b) = (sw.port(1), sw.port(2));
    a.send(&frame(BC, mac(1), None, 46));
    assert!(b.recv_within(300).is_none(), "--impair loss 100 at start");
    b.send(&frame(BC, mac(2), None, 200));
    assert!(a.recv_within(300).is_none(), "--impair mtu 100 on ingress");
    b.send(&frame(BC, mac(2), None, 46));
    assert_eq!(a.recv().len(), 60);
    // Bad start options fail with a message naming the problem, and leave nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("sw");
    let o = Command::new(bin())
        .arg("-s")
        .arg(&sock)
        .args(["--impair", "2 out speed 1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("port/impair 2 out speed 1"),
        "{o:?}"
    );
    assert!(!sock.exists(), "no half-created switch directory");
    let o = Command::new(bin())
        .arg("-s")
        .arg(&sock)
        .args(["--vxlan", "vni=1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing local="),
        "{o:?}"
    );
    let rc = dir.path().join("bad.rc");
    std::fs::write(&rc, "vlan/create 10\nvlan/create 99999\n").unwrap();
    let o = Command::new(bin())
        .arg("-s")
        .arg(&sock)
        .arg("-f")
        .arg(&rc)
        .args(["--nostdin", "-x"])
        .arg("-p")
        .arg(dir.path().join("pid"))
        .stdin(Stdio::null())
        .spawn();
    // rc-file errors are reported with file:line but do not stop the switch (as in 2.3.2).
    let mut child = Proc(o.unwrap());
    wait_for("switch up despite rc error", Duration::from_secs(5), || {
        sock.join("ctl").exists()
    });
    let _ = child.0.kill();
}
