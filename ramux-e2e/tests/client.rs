//! The role-less `client` image (docs/client.md): built with the vbuild library with a static
//! address, booted on a vswitch with two NICs. It prints the ready line with `role=-`, eth0 gets
//! the static address and route, the lab tools are there, and qemu-ga answers on the channel
//! vlaunch gives every VM: `vlaunch exec` runs commands in the guest (output, exit codes, stdin,
//! timeouts; one `exec true` round trip is timed). The DHCP path runs the image's own address service on eth1: with no
//! server on the wire udhcpc broadcasts its discovers (the test sees them on the switch, with
//! the host name option), reports `leasefail` and retries; once the test answers as a DHCP
//! server on the switch port, the lease's address, default route and name server are set.

mod common;

use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STATIC: &str = "172.16.20.50/24";
const GATEWAY: &str = "172.16.20.1";
/// What the test's DHCP server hands out on eth1.
const LEASE: [u8; 4] = [10, 99, 0, 50];
const SERVER: [u8; 4] = [10, 99, 0, 1];
const DNS: [u8; 4] = [10, 99, 0, 53];
const SERVER_MAC: [u8; 6] = [0x02, 0xe2, 0xe0, 0x00, 0x00, 0x67];

/// Waits until the serial log contains `what` (console output of background processes).
fn wait_log(log: &std::path::Path, what: &str, timeout: Duration) -> String {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(
            t0.elapsed() < timeout,
            "no {what:?} on the console within {timeout:?}; console:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A DHCP request seen on the wire: (message type, xid, chaddr, host name option).
struct Request {
    kind: u8,
    xid: [u8; 4],
    chaddr: [u8; 16],
    hostname: Option<String>,
}

/// Parses an untagged Ethernet/IPv4/UDP frame to port 67 carrying a BOOTREQUEST.
fn dhcp_request(f: &[u8]) -> Option<Request> {
    if f.len() < 14 + 20 + 8 + 240 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 17 {
        return None;
    }
    let ip = 14;
    let udp = ip + usize::from(f[ip] & 0x0f) * 4;
    let bootp = udp + 8;
    if f.len() < bootp + 240
        || f[udp + 2..udp + 4] != [0, 67]
        || f[bootp] != 1
        || f[bootp + 236..bootp + 240] != [0x63, 0x82, 0x53, 0x63]
    {
        return None;
    }
    let mut r = Request {
        kind: 0,
        xid: f[bootp + 4..bootp + 8].try_into().ok()?,
        chaddr: f[bootp + 28..bootp + 44].try_into().ok()?,
        hostname: None,
    };
    let mut i = bootp + 240;
    while i < f.len() && f[i] != 255 {
        if f[i] == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(*f.get(i + 1)?);
        let val = f.get(i + 2..i + 2 + len)?;
        match f[i] {
            53 => r.kind = *val.first()?,
            12 => r.hostname = Some(String::from_utf8_lossy(val).into_owned()),
            _ => {}
        }
        i += 2 + len;
    }
    Some(r)
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A broadcast DHCPOFFER (2) or DHCPACK (5) answering `req`.
fn dhcp_reply(req: &Request, kind: u8) -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 2; // BOOTREPLY
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&req.xid);
    b[16..20].copy_from_slice(&LEASE);
    b[20..24].copy_from_slice(&SERVER);
    b[28..44].copy_from_slice(&req.chaddr);
    b[236..240].copy_from_slice(&[0x63, 0x82, 0x53, 0x63]);
    b.extend_from_slice(&[53, 1, kind]);
    b.extend_from_slice(&[54, 4]);
    b.extend_from_slice(&SERVER);
    b.extend_from_slice(&[51, 4]);
    b.extend_from_slice(&3600u32.to_be_bytes());
    b.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4]);
    b.extend_from_slice(&SERVER);
    b.extend_from_slice(&[6, 4]);
    b.extend_from_slice(&DNS);
    b.extend_from_slice(&[15, 9]);
    b.extend_from_slice(b"lab.local");
    b.push(255);
    b.resize(300, 0);
    let udp_len = 8 + b.len();
    let mut udp = vec![0, 67, 0, 68];
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    udp.extend_from_slice(&b);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&SERVER);
    ip.extend_from_slice(&[255; 4]);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&SERVER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// DHCP requests the server saw: (message type, host name option).
type Seen = Arc<Mutex<Vec<(u8, Option<String>)>>>;

/// Watches port `port` of the switch: records every DHCP request and, once `serve` is set,
/// answers DISCOVER with OFFER and REQUEST with ACK. Runs until `stop`.
fn dhcp_server(
    dir: std::path::PathBuf,
    port: u16,
    serve: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    seen: Seen,
) -> std::thread::JoinHandle<()> {
    let mut plug = Plug::new(&dir, port);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let Some(f) = plug.recv(Duration::from_millis(200)) else {
                continue;
            };
            let Some(req) = dhcp_request(&f) else {
                continue;
            };
            seen.lock().unwrap().push((req.kind, req.hostname.clone()));
            if serve.load(Ordering::SeqCst) {
                match req.kind {
                    1 => plug.send(&dhcp_reply(&req, 2)),
                    3 => plug.send(&dhcp_reply(&req, 5)),
                    _ => {}
                }
            }
        }
    })
}

/// `vlaunch exec NAME ARGS...` (the binary from $RAMUX_BIN_DIR): exit code, stdout, stderr.
fn vlaunch_exec(root: &Path, name: &str, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(ramux_bin("vlaunch"))
        .env("VLAUNCH_STATE_DIR", root)
        .arg("exec")
        .arg(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vlaunch exec");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let r = (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    );
    eprintln!("e2e: vlaunch exec {name} {args:?} -> {r:?}");
    r
}

fn root_path(g: &VmGuard) -> &Path {
    g.state_root.path()
}

/// `vlaunch exec` against the guest agent: output and exit codes, stderr, stdin, a timeout that
/// kills the guest process (children of `sh -c` too) without hanging, `--json`; and the time of
/// one `exec true` (printed, min and median of 5).
fn exec_in_guest(root: &Path, name: &str) {
    let run = |args: &[&str]| vlaunch_exec(root, name, args, b"");
    assert_eq!(run(&["hostname"]), (0, "client\n".into(), String::new()));
    assert_eq!(
        run(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"]),
        (3, "out\n".into(), "err\n".into())
    );
    let cat = vlaunch_exec(root, name, &["--stdin", "--", "cat"], b"from the host\n");
    assert_eq!(cat, (0, "from the host\n".into(), String::new()));
    assert_eq!(run(&["--", "sh", "-c", "kill -TERM $$"]).0, 128 + 15);

    let t0 = Instant::now();
    let (code, out, err) = run(&["--timeout", "2", "--", "sh", "-c", "sleep 60; echo never"]);
    let took = t0.elapsed();
    assert_eq!((code, out.as_str()), (124, ""), "{err}");
    assert!(err.contains("timed out after 2 s"), "{err}");
    assert!(took < Duration::from_secs(15), "the timeout took {took:?}");
    eprintln!("e2e: `--timeout 2 -- sleep 60` returned after {took:?}");
    let left = run(&["--", "sh", "-c", "ps | grep -c '[s]leep 60'"]);
    assert_eq!(left.1, "0\n", "sleep 60 survived the timeout: {left:?}");

    let (code, json, _) = run(&["--json", "--", "sh", "-c", "printf 'a\\nb'"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("--json output");
    assert_eq!(
        (code, v["code"].as_i64(), v["stdout"].as_str()),
        (0, Some(0), Some("a\nb"))
    );
    assert!(v["elapsed_s"].as_f64().is_some(), "{v}");

    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(run(&["true"]).0, 0);
            t.elapsed()
        })
        .collect();
    times.sort();
    eprintln!(
        "e2e: `vlaunch exec {name} true` round trip: min {:?}, median {:?} (TCG)",
        times[0], times[2]
    );
    agent_resyncs_and_times(&root.join(name).join("qga.sock"));
}

/// A client that died mid-request leaves half a command in the agent: the library's
/// guest-sync-delimited recovers. Then the time of one `true` on a connected agent (printed).
fn agent_resyncs_and_times(sock: &Path) {
    use std::io::Write;
    let mut dead = std::os::unix::net::UnixStream::connect(sock).unwrap();
    dead.write_all(br#"{"execute": "guest-exec", "arguments": {"path": "/bin/tr"#)
        .unwrap();
    drop(dead);
    let t = Instant::now();
    let mut agent = vlaunch::qga::wait_agent(sock, Duration::from_secs(30)).expect("resync");
    eprintln!(
        "e2e: connect + guest-sync-delimited after a dead client: {:?}",
        t.elapsed()
    );
    let argv = ["true".to_string()];
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let o = agent.exec(&argv, None, Duration::from_secs(10)).unwrap();
            assert_eq!(o.code, Some(0), "{o:?}");
            o.elapsed
        })
        .collect();
    times.sort();
    eprintln!(
        "e2e: Agent::exec(true) on a connected agent: min {:?}, median {:?} (TCG)",
        times[0], times[2]
    );
}

#[test]
fn client_boots_roleless_with_a_static_address_and_takes_a_dhcp_lease() {
    let img = image_with(
        "client",
        "",
        &[("address", STATIC), ("gateway", GATEWAY), ("dns", GATEWAY)],
    );
    assert_eq!(
        (img.report.role.as_str(), img.report.hostname.as_str()),
        ("-", "client")
    );
    let _slot = qemu_slots(1);

    // Port 1: eth0 (static address, VLAN 0). Ports 2 and 9: eth1 and the test's DHCP server,
    // alone in VLAN 30.
    let mut sw = SwitchGuard::new();
    sw.start_vswitch(
        "port/create 1\nport/create 2\nport/create 9\nvlan/create 30\n\
         port/setvlan 2 30\nport/setvlan 9 30\n",
    );
    let serve = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = dhcp_server(sw.dir.clone(), 9, serve.clone(), stop.clone(), seen.clone());

    let root = state_root();
    let mut opts = options(&img, "client", root.path());
    opts.mem_mib = 512;
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = vec![1, 2];
    let (g, ready) = boot(opts, root);
    assert_eq!(
        (
            ready.info.profile.as_str(),
            ready.info.role.as_str(),
            ready.info.host.as_str()
        ),
        ("client", "-", "client"),
        "{}",
        ready.info.line
    );
    assert!(
        ready
            .info
            .line
            .contains("ramux: ready profile=client role=- host=client"),
        "{}",
        ready.info.line
    );
    let sock = g.vm.paths().serial_sock.clone();
    let log = g.vm.paths().serial_log.clone();

    // The static address, route and name server (the address service runs right after ready).
    let want = format!("addr-42 {STATIC} default via {GATEWAY} dev eth0 nameserver {GATEWAY}");
    console_run(
        &sock,
        "echo addr-$((6*7)) $(ip -4 -o addr show dev eth0 | cut -d' ' -f7) $(ip route show default) $(grep nameserver /etc/resolv.conf)",
        &want,
        Duration::from_secs(90),
    );
    wait_log(
        &log,
        &format!("ramux-client: eth0 {STATIC} via {GATEWAY} (static)"),
        Duration::from_secs(10),
    );

    // The lab tools exist and run; qemu-ga found its port and runs.
    let out = console_run(
        &sock,
        "echo tools-$((6*7)) $(which ping nc wget curl openvpn qemu-ga udhcpc | tr '\\n' ' ') $(ping -c 1 -W 2 172.16.20.50 | grep -c ' 0% packet loss') $(nc 2>&1 | grep -c -i usage) $(wget 2>&1 | grep -c -i usage) $(ps | grep -c '[q]emu-ga -m virtio-serial') end-$((5+5))",
        " end-10",
        Duration::from_secs(60),
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("tools-42 "))
        .unwrap_or_else(|| panic!("no tools line:\n{out}"));
    for t in [
        "/bin/ping",
        "/bin/nc",
        "/bin/wget",
        "/usr/bin/curl",
        "/usr/sbin/openvpn",
        "/usr/sbin/qemu-ga",
        "/udhcpc",
    ] {
        assert!(line.contains(t), "{t} missing: {line}");
    }
    assert!(
        line.trim_end().ends_with(" 1 1 1 1 end-10"),
        "ping/nc/wget/qemu-ga: {line}"
    );
    exec_in_guest(root_path(&g), g.vm.name());

    // DHCP on eth1 with the image's own address service, no server answering yet: udhcpc
    // broadcasts discovers (seen on the wire), reports leasefail and keeps retrying.
    console_run(
        &sock,
        "ip route del default; printf 'address=dhcp\\niface=eth1\\n' >/tmp/dhcp.conf; /usr/sbin/ramux-client-address /tmp/dhcp.conf & echo bg-$((6*7))",
        "bg-42",
        Duration::from_secs(30),
    );
    let text = wait_log(
        &log,
        "ramux-client: no DHCP lease on eth1 yet (leasefail), retrying",
        Duration::from_secs(90),
    );
    let discovers = text.matches("udhcpc: broadcasting discover").count();
    assert!(discovers >= 3, "{discovers} discovers before leasefail");
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().filter(|(k, _)| *k == 1).count() >= 3,
            "the switch port saw {} DHCP requests",
            seen.len()
        );
        assert!(
            seen.iter().all(|(_, h)| h.as_deref() == Some("client")),
            "host name option: {seen:?}"
        );
    }

    // Now the server answers: the next round gets the lease.
    serve.store(true, Ordering::SeqCst);
    wait_log(
        &log,
        "ramux-client: eth1 10.99.0.50/24 via 10.99.0.1 (dhcp, lease 3600 s)",
        Duration::from_secs(90),
    );
    console_run(
        &sock,
        "echo dhcp-$((6*7)) $(ip -4 -o addr show dev eth1 | cut -d' ' -f7) $(ip route show default) $(grep -v '^#' /etc/resolv.conf | tr '\\n' ' ')end",
        "dhcp-42 10.99.0.50/24 default via 10.99.0.1 dev eth1 search lab.local nameserver 10.99.0.53 end",
        Duration::from_secs(60),
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log_text.contains("ramux: failed"),
        "a failure on the console:\n{log_text}"
    );
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
}
