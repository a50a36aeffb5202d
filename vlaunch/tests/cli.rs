//! The vlaunch command line: help, error messages and exit codes, `ps`/`stop`/`rm` on state
//! directories, `console` against a serial socket, and `--wait-ready` failing on a disk that does
//! not boot (real QEMU). Booting real appliance images is in the end-to-end crate (`tests/`).

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn vlaunch(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vlaunch"))
        .args(args)
        .env("VLAUNCH_STATE_DIR", root)
        .env_remove("VLAUNCH_ACCEL")
        .output()
        .expect("run vlaunch")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vl-cli-")
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn help_has_examples() {
    let r = root();
    let o = vlaunch(r.path(), &["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "Examples:",
        "--wait-ready",
        "vlaunch ps",
        "vlaunch console RT1",
        "vde_switch -s",
    ] {
        assert!(out.contains(want), "--help lacks {want:?}:\n{out}");
    }
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let r = root();
    let iso = r.path().join("RT1.iso");
    std::fs::write(&iso, b"not an iso").unwrap();
    let iso = iso.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["/nonexistent/RT1.iso"],
            "ISO /nonexistent/RT1.iso not found",
        ),
        (&[iso, "--name", "a/b"], "invalid VM name"),
        (&[iso, "--mac", "00:16:3e:00:00:01"], "--mac needs a --port"),
        (
            &[iso, "--port", "1", "--port", "1"],
            "--port 1 of /run/ramux/switch is given twice",
        ),
        (&[iso, "--port", "0"], "management port"),
        (&[iso, "--mem", "16"], "too small"),
        (&[], "no ISO given"),
    ];
    for (args, want) in cases {
        let o = vlaunch(r.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{args:?}: want {want:?}, got {}",
            stderr(&o)
        );
    }
    // Argument syntax errors are clap's (exit 2) and name the bad value.
    let o = vlaunch(
        r.path(),
        &[iso, "--port", "1", "--mac", "01:00:5e:00:00:01"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("multicast"), "{}", stderr(&o));
    let o = vlaunch(r.path(), &[iso, "--accel", "hvf"]);
    assert_eq!(o.status.code(), Some(2));
    let o = vlaunch(r.path(), &[iso, "--port", "/tmp/sw:"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("DIR:N"), "{}", stderr(&o));
    // An unknown VLAUNCH_ACCEL is refused, not ignored.
    let o = Command::new(env!("CARGO_BIN_EXE_vlaunch"))
        .args([iso])
        .env("VLAUNCH_STATE_DIR", r.path())
        .env("VLAUNCH_ACCEL", "hvf")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("VLAUNCH_ACCEL"), "{}", stderr(&o));
    // Nothing was left behind by the failures.
    assert!(!r.path().join("RT1").exists());
}

#[test]
fn ps_stop_rm_on_empty_and_unknown() {
    let r = root();
    let o = vlaunch(r.path(), &["ps", "--json"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = vlaunch(r.path(), &["stop", "RT1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no VM named RT1"), "{}", stderr(&o));
    let o = vlaunch(r.path(), &["console", "RT1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let o = vlaunch(r.path(), &["wait", "RT1", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let o = vlaunch(r.path(), &["accel", "--json"]);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["reason"].as_str().is_some_and(|s| !s.is_empty()), "{j}");
}

/// `vlaunch console` with piped input against a serial socket whose peer greets, then echoes
/// input upper-cased. The "VM" is a process whose command line names the pid file, which is
/// what vlaunch checks before trusting a pid.
#[test]
fn console_pipes_input_and_output() {
    let r = root();
    let dir = r.path().join("RT1");
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("pid");
    let mut holder = Command::new("sh")
        .args(["-c", "sleep 30"])
        .arg(&pidfile)
        .spawn()
        .unwrap();
    std::fs::write(&pidfile, holder.id().to_string()).unwrap();
    let l = UnixListener::bind(dir.join("serial.sock")).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"welcome to RT1\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        s.write_all(buf[..n].to_ascii_uppercase().as_slice())
            .unwrap();
        // Second session: the user types "ab", then Ctrl-] (0x1d) and "cd": only "ab" may
        // reach the VM, and the client must leave (EOF here) without waiting for more output.
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 64];
        loop {
            let n = s.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&b[..n]);
        }
        got
    });
    let mut c = Command::new(env!("CARGO_BIN_EXE_vlaunch"))
        .args(["console", "RT1", "--linger", "1"])
        .env("VLAUNCH_STATE_DIR", r.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A write error (vlaunch already gone) is reported by the asserts below with its stderr.
    let _ = c.stdin.take().unwrap().write_all(b"show ip\n");
    let o = c.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("welcome to RT1"), "{out}");
    assert!(out.contains("SHOW IP"), "{out}");

    let mut c = Command::new(env!("CARGO_BIN_EXE_vlaunch"))
        .args(["console", "RT1", "--linger", "30"])
        .env("VLAUNCH_STATE_DIR", r.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(b"ab\x1dcd").unwrap();
    let t0 = std::time::Instant::now();
    let o = c.wait_with_output().unwrap();
    drop(stdin);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "Ctrl-] did not detach at once"
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("detached; RT1 keeps running"),
        "{}",
        stderr(&o)
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(peer.join().unwrap(), b"ab");
}

/// A real QEMU on a disk that does not boot: `--wait-ready` must give up with exit 1, say why,
/// kill the VM and keep its logs (`ps --all` shows it stopped, `rm` removes it).
#[test]
fn wait_ready_fails_on_unbootable_image() {
    let r = root();
    let iso = r.path().join("blank.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    let t0 = std::time::Instant::now();
    let o = vlaunch(
        r.path(),
        &[
            iso.to_str().unwrap(),
            "--accel",
            "tcg",
            "--mem",
            "256",
            "--wait-ready=4",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(t0.elapsed() < Duration::from_secs(60));
    let e = stderr(&o);
    assert!(e.contains("accel: tcg (forced by --accel tcg)"), "{e}");
    assert!(e.contains("no ready line"), "{e}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        j["error"].as_str().unwrap().contains("no ready line"),
        "{j}"
    );
    let ps = vlaunch(r.path(), &["ps", "--all", "--json"]);
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(ps[0]["name"], "blank", "{ps}");
    assert_eq!(ps[0]["running"], false, "{ps}");
    assert!(r.path().join("blank/serial.log").exists());
    let o = vlaunch(r.path(), &["rm", "blank"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!r.path().join("blank").exists());
}

/// QEMU blocked before its main loop (Debian's vde_switch never answers a request for a port
/// beyond its count; docs/vde-protocol.md, Port numbers and request kinds): `--wait-ready` says
/// so instead of only
/// "no ready line", and the VM is killed.
#[test]
fn wait_ready_explains_qemu_blocked_on_the_switch() {
    assert!(
        Command::new("sh")
            .args(["-c", "command -v vde_switch"])
            .status()
            .unwrap()
            .success(),
        "vde_switch not found: apt-get install vde2"
    );
    let r = root();
    let sw = r.path().join("sw");
    let pidfile = r.path().join("sw.pid");
    let st = Command::new("vde_switch")
        .arg("-s")
        .arg(&sw)
        .arg("-p")
        .arg(&pidfile)
        .arg("-d")
        .status()
        .unwrap();
    assert!(st.success());
    struct Kill(std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Ok(p) = std::fs::read_to_string(&self.0) {
                let _ = Command::new("kill").arg(p.trim()).status();
            }
        }
    }
    let _k = Kill(pidfile);
    let iso = r.path().join("blank.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    let o = vlaunch(
        r.path(),
        &[
            iso.to_str().unwrap(),
            "--accel",
            "tcg",
            "--mem",
            "256",
            "--switch",
            sw.to_str().unwrap(),
            "--port",
            "40",
            "--wait-ready=4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("blocked during startup"), "{e}");
    assert!(e.contains("--port numbers (40)"), "{e}");
    let ps = vlaunch(r.path(), &["ps", "--json"]);
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "[]");
}

/// Starts Debian's vde_switch at `dir` with a management socket; killed on drop.
struct VdeSwitch {
    pidfile: std::path::PathBuf,
    mgmt: std::path::PathBuf,
}

impl VdeSwitch {
    fn start(base: &Path, name: &str) -> (Self, std::path::PathBuf) {
        let dir = base.join(name);
        let sw = VdeSwitch {
            pidfile: base.join(format!("{name}.pid")),
            mgmt: base.join(format!("{name}.mgmt")),
        };
        let st = Command::new("vde_switch")
            .arg("-s")
            .arg(&dir)
            .arg("-M")
            .arg(&sw.mgmt)
            .arg("-p")
            .arg(&sw.pidfile)
            .arg("-d")
            .status()
            .expect("vde_switch not found: apt-get install vde2");
        assert!(st.success());
        (sw, dir)
    }

    fn port_print(&self) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&self.mgmt).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let read_prompt = |s: &mut std::os::unix::net::UnixStream| {
            let mut out = Vec::new();
            let mut b = [0u8; 4096];
            while !out.ends_with(b"vde$ ") {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0);
                out.extend_from_slice(&b[..n]);
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        read_prompt(&mut s);
        s.write_all(b"port/print\n").unwrap();
        read_prompt(&mut s)
    }
}

impl Drop for VdeSwitch {
    fn drop(&mut self) {
        if let Ok(p) = std::fs::read_to_string(&self.pidfile) {
            let _ = Command::new("kill").arg(p.trim()).status();
        }
    }
}

/// `--port DIR:N`: NICs of one VM on two different switches (real QEMU, real vde_switch; the
/// guest need not boot: QEMU connects its NICs at startup).
#[test]
fn nics_on_two_switches() {
    let r = root();
    let (a, dir_a) = VdeSwitch::start(r.path(), "swa");
    let (b, dir_b) = VdeSwitch::start(r.path(), "swb");
    let iso = r.path().join("blank.iso");
    std::fs::write(&iso, vec![0u8; 1 << 20]).unwrap();
    let o = vlaunch(
        r.path(),
        &[
            iso.to_str().unwrap(),
            "--accel",
            "tcg",
            "--mem",
            "256",
            "--switch",
            dir_a.to_str().unwrap(),
            "--port",
            "3",
            "--port",
            &format!("{}:5", dir_b.display()),
            "--detach",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pid = j["pid"].as_u64().unwrap();
    // QEMU connects its NICs just after it writes the pid file (when --detach returns).
    let t0 = std::time::Instant::now();
    let endpoint = format!("QEMU user=root pid={pid}");
    let (pa, pb) = loop {
        let (pa, pb) = (a.port_print(), b.port_print());
        if (pa.contains(&endpoint) && pb.contains(&endpoint))
            || t0.elapsed() > Duration::from_secs(20)
        {
            break (pa, pb);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stop = vlaunch(r.path(), &["stop", "blank", "--timeout", "1"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert!(
        pa.contains("Port 0003") && pa.contains(&endpoint),
        "switch a:\n{pa}"
    );
    assert!(!pa.contains("Port 0005"), "switch a:\n{pa}");
    assert!(
        pb.contains("Port 0005") && pb.contains(&endpoint),
        "switch b:\n{pb}"
    );
    assert!(!pb.contains("Port 0003"), "switch b:\n{pb}");
}
