//! The switch's defences against its clients (docs/security-vswitch.md): who a client is
//! comes from the kernel, a client only makes the switch connect to its own sockets, and
//! every transport is judged by the same port ACLs.

#[allow(unused_imports)]
mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vswitch::client::VdeClient;
use vswitch::wire::{PortRequest, RequestRepr};

const NOBODY: u32 = 65534;

/// Run `f` on a thread whose credentials are `nobody`'s. The raw setresuid/setresgid
/// syscalls change only the calling thread (glibc's wrappers would change every thread of
/// the test process), and the kernel records them for every socket the thread connects.
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: plain syscalls with integer arguments, on this thread only.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<u32>()),
                0
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY),
                0
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY),
                0
            );
        }
        f()
    })
    .join()
    .expect("nobody's thread")
}

/// A switch whose sockets `nobody` can reach (`-m 666`, its temp dir searchable).
fn open_switch(extra: &[&str]) -> Sw {
    let mut args = vec!["-m", "666"];
    args.extend_from_slice(extra);
    let sw = Sw::start(&args);
    std::fs::set_permissions(sw.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    sw
}

/// Send a raw request naming `path` on DIR/ctl; true if the switch answered with a data
/// socket address, false if it closed the connection (refused).
fn request_naming(sock: &Path, path: &Path) -> bool {
    let mut ctl = UnixStream::connect(sock.join("ctl")).expect("connect ctl");
    let req = RequestRepr {
        port: PortRequest::Any,
        path: path.as_os_str().as_encoded_bytes().to_vec(),
        description: b"probe".to_vec(),
    };
    ctl.write_all(&req.emit()).unwrap();
    ctl.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 200];
    ctl.read(&mut b).expect("reply or EOF within 10 s") > 0
}

/// A counter of `showinfo`'s `counters` line.
fn counter(sw: &Sw, name: &str) -> u64 {
    let r = sw.mgmt().cmd("showinfo").unwrap();
    let line = r
        .data
        .iter()
        .find(|l| l.starts_with("counters "))
        .expect("counters");
    let kv = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")));
    kv.expect(name).parse().unwrap()
}

fn port_active(sw: &Sw, p: u16) -> bool {
    sw.mgmt().cmd(&format!("port/print {p}")).unwrap().code == 1000
}

#[test]
fn a_client_is_its_kernel_uid_not_the_owner_of_the_socket_it_names() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sw = open_switch(&["-n", "4"]);
    // A socket root owns, in a place nobody can reach (like /dev/log).
    let root_sock = sw.dir.path().join("root.sock");
    let _keep = UnixDatagram::bind(&root_sock).unwrap();
    std::fs::set_permissions(&root_sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    sw.cmds(&[
        "port/create 2",
        "port/setuser 2 nobody",
        "port/create 3",
        "port/setuser 3 root",
    ]);
    let sock = sw.sock.clone();
    let (rs, devlog) = (root_sock.clone(), PathBuf::from("/dev/log"));
    let _root_on_1 = sw.port(1);
    let (named_root, named_devlog, own2, own3, busy1) = as_nobody(move || {
        (
            request_naming(&sock, &rs),
            devlog.exists() && request_naming(&sock, &devlog),
            VdeClient::connect(&sock, PortRequest::Port(2), "nobody").is_ok(),
            VdeClient::connect(&sock, PortRequest::Port(3), "nobody").is_ok(),
            VdeClient::connect(&sock, PortRequest::Port(1), "nobody").is_ok(),
        )
    });
    assert!(!named_root, "nobody naming a root-owned socket is refused");
    assert!(!named_devlog, "nobody naming /dev/log is refused");
    assert!(own2, "nobody's own socket on nobody's port is served");
    assert!(!own3, "a port of another user refuses nobody");
    assert!(!busy1, "a port root uses is busy for nobody");
    // Root may still name its own socket, and the switch counted the refusals.
    assert!(request_naming(&sw.sock, &root_sock));
    assert!(counter(&sw, "refused_requests") >= 2);
}

#[test]
fn stream_and_tcp_peers_get_the_same_acls_as_vde_clients() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    drop(tcp);
    let tcp_arg = format!("{addr}@4");
    let sw = open_switch(&["-n", "4", "--port-streams", "--stream-tcp", &tcp_arg]);
    sw.cmds(&[
        "port/create 2",
        "port/setuser 2 nobody",
        "port/create 3",
        "port/setuser 3 root",
        "port/create 4",
        "port/setuser 4 nobody",
    ]);
    let streams = vswitch::daemon::port_streams_dir(&sw.sock);
    // nobody's unix stream on port 3 (root's) is closed at once; on port 2 it is served.
    let s3 = streams.join("3");
    let refused3 = as_nobody(move || closed_by_switch(UnixStream::connect(&s3).unwrap()));
    assert!(refused3, "nobody refused on root's port over a stream");
    let s2 = streams.join("2");
    let held = as_nobody(move || UnixStream::connect(s2).unwrap());
    wait_for("nobody on port 2", Duration::from_secs(10), || {
        port_active(&sw, 2)
    });
    drop(held);
    // A TCP peer has no uid: a port with a user refuses it.
    let t = std::net::TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(
        (&t).read(&mut b).expect("EOF within 10 s"),
        0,
        "TCP peer refused"
    );
    // Root's own unix stream is still served on root's port.
    let _root = UnixStream::connect(streams.join("3")).unwrap();
    wait_for("root on port 3", Duration::from_secs(10), || {
        port_active(&sw, 3)
    });
}

/// The switch closed this stream (EOF within 10 s) rather than serving it.
fn closed_by_switch(mut s: UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0))
}

/// Start `vswitch -s SOCK -p PIDF -d` and return its exit status and stderr.
fn start_daemon(sock: &Path, pidf: &Path) -> (bool, String) {
    let o = std::process::Command::new(bin())
        .arg("-s")
        .arg(sock)
        .arg("-p")
        .arg(pidf)
        .arg("-d")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn pid_in(pidf: &Path) -> i32 {
    std::fs::read_to_string(pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_switch_killed_with_sigkill_leaves_nothing_that_blocks_a_restart() {
    let t = tempfile::tempdir().unwrap();
    let (sock, pidf) = (t.path().join("sw"), t.path().join("sw.pid"));
    let (ok, err) = start_daemon(&sock, &pidf);
    assert!(ok, "{err}");
    let first = pid_in(&pidf);
    // A second start while it runs is still refused, naming the pidfile.
    let (ok, err) = start_daemon(&t.path().join("sw2"), &pidf);
    assert!(!ok && err.contains("pidfile"), "{err}");
    // SAFETY: signalling the switch we started.
    unsafe { libc::kill(first, libc::SIGKILL) };
    wait_for("the killed switch to go", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{first}")).exists()
    });
    let (ok, err) = start_daemon(&sock, &pidf);
    assert!(ok, "restart after SIGKILL: {err}");
    let second = pid_in(&pidf);
    assert_ne!(first, second);
    // SAFETY: as above.
    unsafe { libc::kill(second, libc::SIGTERM) };
    wait_for("the switch to clean up", Duration::from_secs(10), || {
        !pidf.exists()
    });
}

/// A value of `hash/showinfo`: the number after `key` on the line that starts with it.
fn hash_info(sw: &Sw, key: &str) -> u64 {
    let r = sw.mgmt().cmd("hash/showinfo").unwrap();
    let line = r.data.iter().find(|l| l.starts_with(key)).expect(key);
    line[key.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_guest_spraying_source_macs_fills_only_its_share_and_known_macs_still_forward() {
    let sw = Sw::start(&["-n", "4"]);
    let (spray, b, a) = (sw.port(1), sw.port(2), sw.port(3));
    let (ma, mb, ms) = (mac(0xa), mac(0xb), mac(0x5));
    a.send(&frame(ms, ma, None, 60)); // A is known on port 3 before the spray
    spray.send(&frame(ma, ms, None, 60));
    a.recv();
    // 100k frames from distinct source MACs to the sprayer's own MAC: each is learned
    // (or refused) and then dropped as same-port, so nothing else is disturbed.
    const N: u64 = 100_000;
    for i in 0..N {
        let src = [
            0x02,
            0x77,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ];
        spray.send(&frame(ms, src, None, 60));
    }
    let refused = N - (1024 - 1); // the sprayer's own MAC took one of its 1024
    wait_for("the spray to be switched", Duration::from_secs(60), || {
        hash_info(&sw, "Refused learnings") >= refused
    });
    assert_eq!(hash_info(&sw, "Refused learnings"), refused);
    // B, new on port 2, is still learned, and its frame to A goes to A.
    b.send(&frame(ma, mb, None, 60));
    let got = a.recv();
    assert_eq!(&got[6..12], &mb[..]);
    assert_eq!(
        hash_info(&sw, "Entries"),
        1024 + 2,
        "the sprayer's 1024, A and B"
    );
    assert_eq!(counter(&sw, "mac_refused"), refused);
}

/// A non-blocking connect to `path` that never waits (a full backlog is as good as idle).
fn idle_connect(path: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let p = path.as_os_str().as_encoded_bytes();
    // SAFETY: a zeroed sockaddr_un filled below within its bounds; plain socket calls.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_un = std::mem::zeroed();
        sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sa.sun_path.iter_mut().zip(p) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let r = libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len);
        (r == 0).then_some(owned)
    }
}

#[test]
fn a_thousand_idle_control_connections_do_not_stop_a_vm_from_attaching() {
    // The switch may hold 256 descriptors: idle connections used to take them all.
    let sw = Sw::start_with(bin(), &["-n", "4"], &["prlimit", "--nofile=256"]);
    let ctl = sw.sock.join("ctl");
    let idle: Vec<_> = (0..1000).filter_map(|_| idle_connect(&ctl)).collect();
    assert!(idle.len() > 200, "{} connected", idle.len());
    let sock = sw.sock.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = VdeClient::connect(&sock, PortRequest::Port(2), "vm");
        let _ = tx.send(r.map(|c| c.port));
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("attach within 20 s");
    assert_eq!(port.expect("attached"), Some(2));
    assert!(counter(&sw, "pending_evicted") > 0);
    // The idle ones still pending time out (5 s) and are closed.
    let last = idle.last().unwrap();
    wait_for(
        "idle handshakes to time out",
        Duration::from_secs(15),
        || {
            let mut b = [0u8; 1];
            // SAFETY: reading one byte from a descriptor we own.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(last),
                    b.as_mut_ptr().cast(),
                    1,
                )
            };
            n == 0
        },
    );
    assert!(counter(&sw, "pending_timeouts") > 0);
}

#[test]
fn a_management_session_that_never_reads_is_dropped() {
    let sw = Sw::start(&["-n", "4"]);
    let mut s = UnixStream::connect(&sw.mgmt).unwrap();
    // 64 KiB of commands, each with a few KiB of output, and never a read.
    let cmds = "help\n".repeat(60_000 / 5);
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(cmds.as_bytes());
    wait_for("the session to be dropped", Duration::from_secs(20), || {
        counter(&sw, "mgmt_overflows") >= 1
    });
    // The switch still serves other sessions and clients.
    let _p = sw.port(1);
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn running_out_of_descriptors_neither_spins_nor_stalls_the_loop() {
    // 64 descriptors: idle control connections take them all (fewer than MAX_PENDING, so no
    // eviction frees one), and more wait in the listener's backlog.
    let sw = Sw::start_with(bin(), &["-n", "4"], &["prlimit", "--nofile=64"]);
    let pid = sw.proc.as_ref().unwrap().0.id();
    let ctl = sw.sock.join("ctl");
    let idle: Vec<_> = (0..100).filter_map(|_| idle_connect(&ctl)).collect();
    assert!(idle.len() > 64, "{} connected", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    // A console session asked for now stays in the backlog: accept fails with EMFILE.
    let mut m = UnixStream::connect(&sw.mgmt).unwrap();
    // No spin: the switch sleeps between its (backed-off) accept retries.
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - t0;
    assert!(
        used < 40,
        "{used} ticks of CPU in 2 s while out of descriptors"
    );
    // No stall: once descriptors are free, the session waiting in the backlog is served
    // without any new connection to its socket (epoll is edge-triggered: before, it waited
    // for the next connect, and a lone client forever).
    drop(idle);
    m.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 64];
    let n = m
        .read(&mut b)
        .expect("the banner within 5 s of descriptors being freed");
    assert!(b[..n].starts_with(b"VDE switch"), "{:?}", &b[..n]);
    assert!(counter(&sw, "accept_exhausted") > 0);
    // And VMs attach again.
    let _p = sw.port(1);
}
