//! The vpn and dns profiles build and boot to their ready line (BIOS CD), both through the
//! `vlaunch` command line from $RAMUX_BIN_DIR, as a user runs it. vpn: the foreground mode (the
//! console streamed on stdout, SIGTERM powers the VM off). dns: `--wait-ready --json`,
//! `ps --json`, `console` with piped input, `stop --json`.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Stops the CLI-started VM even when an assertion fails.
struct CliVm {
    root: tempfile::TempDir,
    name: String,
}

impl Drop for CliVm {
    fn drop(&mut self) {
        let _ = vlaunch::vm::stop_by_name(self.root.path(), &self.name, Duration::from_secs(1));
    }
}

#[test]
fn dns_boots_bios_cd_through_the_cli() {
    // dns is built per site instance (docs/dns.md): dns1 of the profile's default site.
    let img = image_with("dns", "", &[("instance", "dns1")]);
    let vlaunch_bin = ramux_bin("vlaunch");
    let _slot = qemu_slots(1);
    let vm = CliVm {
        root: state_root(),
        name: vm_name("dns"),
    };
    // eth0, its leg in VLAN 10: without it the appliance fails closed.
    let mut sw = SwitchGuard::new();
    sw.start_vswitch("port/create 1\n");
    let sw_dir = sw.dir.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut c = Command::new(&vlaunch_bin);
        c.args(args).env("VLAUNCH_STATE_DIR", vm.root.path());
        c
    };
    let mem = img.mem_mib().to_string();
    let out = cli(&[
        img.iso.to_str().unwrap(),
        "--name",
        &vm.name,
        "--mem",
        &mem,
        "--switch",
        &sw_dir,
        "--port",
        "1",
        &format!("--wait-ready={}", BOOT_TIMEOUT.as_secs()),
        "--json",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vlaunch failed: {stderr}");
    assert!(
        stderr.contains("accel: "),
        "accel choice not shown: {stderr}"
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ready"]["profile"], "dns", "{j}");
    eprintln!("e2e: dns ready after {} s", j["ready_seconds"]);

    // `wait` on the running VM returns its ready line.
    let w = cli(&["wait", &vm.name, "--json", "--timeout", "30"])
        .output()
        .unwrap();
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let w: serde_json::Value = serde_json::from_slice(&w.stdout).unwrap();
    assert_eq!(w["ready"]["host"], "dns1", "{w}");

    let ps = cli(&["ps", "--json"]).output().unwrap();
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(ps[0]["name"], vm.name.as_str(), "{ps}");
    assert_eq!(ps[0]["running"], true, "{ps}");

    let mut con = cli(&["console", &vm.name, "--linger", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    con.stdin
        .take()
        .unwrap()
        .write_all(b"echo cli-$((40+2))\n")
        .unwrap();
    let con = con.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&con.stdout);
    assert!(text.contains("cli-42"), "console output: {text}");

    let stop = cli(&["stop", &vm.name, "--json", "--timeout", "60"])
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&stop.stdout).unwrap();
    assert_eq!(s["outcome"], "powered_off", "{s}");
    assert_eq!(s["shutdown_reason"], "guest-shutdown", "{s}");
    let ps = cli(&["ps", "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), "[]");
}

#[test]
fn vpn_boots_bios_cd_in_the_foreground() {
    let img = image_with("vpn", "", &[("instance", "vpn1")]);
    let vlaunch_bin = ramux_bin("vlaunch");
    let _slot = qemu_slots(1);
    // eth0 the VLAN trunk, eth1 the outside: without them the appliance fails closed.
    let mut sw = SwitchGuard::new();
    sw.start_vswitch("port/create 1\nport/create 2\n");
    let vm = CliVm {
        root: state_root(),
        name: vm_name("vpn"),
    };
    let mut child = Command::new(&vlaunch_bin)
        .args([
            img.iso.to_str().unwrap(),
            "--name",
            &vm.name,
            "--mem",
            &img.mem_mib().to_string(),
            "--switch",
            sw.dir.to_str().unwrap(),
            "--port",
            "1",
            "--port",
            "2",
        ])
        .env("VLAUNCH_STATE_DIR", vm.root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut b) {
            if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let t0 = std::time::Instant::now();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ramux: ready profile=vpn role=- host=vpn1") {
        if t0.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            panic!(
                "no vpn ready line on vlaunch's stdout:\n{}",
                String::from_utf8_lossy(&seen)
            );
        }
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.extend_from_slice(&chunk);
        }
    }
    eprintln!(
        "e2e: vpn ready after {:.1} s (foreground)",
        t0.elapsed().as_secs_f64()
    );
    // SAFETY: kill(2) of our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("powered off after"), "{err}");
    assert!(err.contains("(guest-shutdown)"), "{err}");
    let log = std::fs::read_to_string(vm.root.path().join(&vm.name).join("serial.log")).unwrap();
    assert!(log.contains("ramux: powering off"), "{log}");
}
