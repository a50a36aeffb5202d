//! The README's "Typical session", run as written: its code block goes to bash from the checkout
//! root, with the default switch (/run/ramux/switch) and VM state root (/run/ramux/vms) a user
//! gets. Then what the README promises: both routers ready, the trunks drop no tagged frame as
//! `vlan_not_member`, and RT2 is BACKUP in every VRRP instance, hearing RT1's adverts.
//! Everything it started is stopped on the way out, pass or fail.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SWITCH: &str = "/run/ramux/switch";
const MGMT: &str = "/run/ramux/switch.mgmt";
const PIDFILE: &str = "/run/ramux/switch.pid";
const VMS: [&str; 2] = ["RT1", "RT2"];

/// The first fenced block after the `## Typical session` heading.
fn session_block(readme: &str) -> String {
    let at = readme
        .find("## Typical session")
        .expect("README has a Typical session");
    let rest = &readme[at..];
    let open = rest.find("```\n").expect("a code block follows") + 4;
    let close = rest[open..].find("```").expect("the code block ends") + open;
    rest[open..close].to_string()
}

/// Stops the VMs and the switch the README started, whatever happened.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for vm in VMS {
            let _ = Command::new(ramux_bin("vlaunch"))
                .args(["stop", vm])
                .stdin(Stdio::null())
                .status();
        }
        if let Some(pid) = std::fs::read_to_string(PIDFILE)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid read from the switch's own pid file.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

fn port_drops(port: u16) -> serde_json::Value {
    let out = Command::new(ramux_bin("vswitch"))
        .args(["ctl", "-M", MGMT, "--json", "port/print", &port.to_string()])
        .output()
        .expect("vswitch ctl");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("port/print {port} --json: {e}: {text}"));
    let port_v = v.get("ports").and_then(|p| p.get(0)).unwrap_or(&v);
    port_v["drops"].clone()
}

/// `vrrpd status` on RT2's console, until every instance is BACKUP and has heard an advert.
fn wait_rt2_backup_everywhere(timeout: Duration) -> String {
    let sock = Path::new("/run/ramux/vms/RT2/serial.sock");
    let t0 = Instant::now();
    loop {
        let out = console_run(
            sock,
            "vrrpd status; echo status-$((6*7))-done",
            "status-42-done",
            Duration::from_secs(30),
        );
        let instances: Vec<&str> = out.lines().filter(|l| l.starts_with("instance ")).collect();
        let adverts: Vec<u64> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("adverts in "))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .collect();
        let all_backup = !instances.is_empty() && instances.iter().all(|l| l.contains("[BACKUP]"));
        let all_heard = adverts.len() == instances.len() && adverts.iter().all(|&n| n > 0);
        if all_backup && all_heard {
            return out;
        }
        assert!(
            t0.elapsed() < timeout,
            "RT2 is not BACKUP hearing adverts in every instance after {timeout:?}:\n{out}"
        );
        std::thread::sleep(Duration::from_secs(3));
    }
}

#[test]
fn readme_typical_session_runs_as_written() {
    require_tool("qemu-system-x86_64", "qemu-system-x86");
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let block = session_block(&readme);
    assert!(
        std::os::unix::net::UnixStream::connect(Path::new(SWITCH).join("ctl")).is_err(),
        "a switch already answers at {SWITCH} (scripts/demo's?): stop it first with \
         `kill $(cat {PIDFILE})` and `vlaunch stop router-backup`"
    );
    let _slots = qemu_slots(2);
    let _cleanup = Cleanup;
    // `B=` in the block must name the binaries this test run uses (scripts/build's output).
    let b = block
        .lines()
        .find_map(|l| l.strip_prefix("B="))
        .expect("the block sets B=");
    assert_eq!(
        root.join(b),
        bin_dir(),
        "the README's B= is not where scripts/build put the binaries"
    );
    let t0 = Instant::now();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block])
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "e2e: README session took {:.0} s:\n{text}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the README's commands failed:\n{text}"
    );
    for vm in VMS {
        assert!(
            text.contains(&format!(
                "host=router-{}",
                if vm == "RT1" { "master" } else { "backup" }
            )),
            "{vm} printed no ready line:\n{text}"
        );
    }
    let status = wait_rt2_backup_everywhere(Duration::from_secs(120));
    eprintln!("e2e: RT2 vrrpd status:\n{status}");
    for port in [1, 3] {
        let drops = port_drops(port);
        assert_eq!(
            drops["vlan_not_member"], 0,
            "trunk port {port} drops tagged frames: {drops}"
        );
    }
}
