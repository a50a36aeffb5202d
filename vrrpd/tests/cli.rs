//! The command line as users run it (no root needed).
use std::process::Command;

fn vrrpd(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vrrpd"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_seed_config() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed-r1.conf");
    let (ok, out, err) = vrrpd(&["--check", "-f", seed]);
    assert!(ok, "{err}");
    assert!(out.contains("instance interne: interface vlan10 vrid 100 priority 150 v2 advert_int 5.00s auth PASS vips 2"), "{out}");
    assert!(out.contains("sync group VG_LAB: interne externe"), "{out}");
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn check_reports_errors_with_file_and_line_and_warnings() {
    let dir = std::env::temp_dir().join(format!("vrrpd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  priority 400\n  lvs_sync_daemon x\n}\n").unwrap();
    let (ok, out, err) = vrrpd(&["--check", "-f", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.is_empty(), "no partial output: {out}");
    assert!(
        err.contains(&format!(
            "{}:4: error: 'priority' must be a number from 1 to 255, got '400'",
            bad.display()
        )),
        "{err}"
    );
    let warn = dir.join("warn.conf");
    std::fs::write(
        &warn,
        "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  lvs_sync_daemon x\n}\n",
    )
    .unwrap();
    let (ok, _, err) = vrrpd(&["-t", "-f", warn.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!(
            "{}:4: warning: 'lvs_sync_daemon' (LVS) ignored: vrrpd does VRRP only",
            warn.display()
        )),
        "{err}"
    );
    let (ok, _, err) = vrrpd(&["--check", "-f", dir.join("missing.conf").to_str().unwrap()]);
    assert!(!ok && err.contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_without_daemon_says_what_to_do() {
    let (ok, _, err) = vrrpd(&["status", "--socket", "/nonexistent/vrrpd.sock"]);
    assert!(!ok);
    assert!(err.contains("is vrrpd running?"), "{err}");
}

#[test]
fn help_has_examples() {
    let (ok, out, _) = vrrpd(&["--help"]);
    assert!(ok);
    assert!(
        out.contains("Examples:") && out.contains("vrrpd status --json"),
        "{out}"
    );
}

/// docs/security-vrrpd.md: VIPs that cannot fit one advert in the MTU mean split brain, so
/// `--check` says so (here against the assumed 1500 of an interface this host lacks).
#[test]
fn check_warns_when_the_advert_exceeds_the_mtu() {
    let dir = std::env::temp_dir().join(format!("vrrpd-cli-mtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vips: String = (1..=100)
        .map(|k| format!("    2001:db8::{k:x}/64\n"))
        .collect();
    let f = dir.join("big.conf");
    std::fs::write(
        &f,
        format!("vrrp_instance big {{\n  interface nosuch0\n  virtual_router_id 1\n  virtual_ipaddress {{\n{vips}  }}\n}}\n"),
    )
    .unwrap();
    let (ok, _, err) = vrrpd(&["--check", "-f", f.to_str().unwrap()]);
    assert!(ok, "a warning, not an error: {err}");
    assert!(
        err.contains(&format!("{}:1: warning: instance big: its advert (100 addresses, 1648 bytes) exceeds the MTU 1500 of nosuch0", f.display()))
            && err.contains("(assumed: no such interface here)")
            && err.contains("split brain"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `include` as keepalived: a glob relative to the including file's directory (so a nested
/// include is relative to the included file), spliced anywhere, diagnostics naming the
/// included file and its own line.
#[test]
fn check_follows_includes_with_their_files_and_lines() {
    let dir = std::env::temp_dir().join(format!("vrrpd-cli-inc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::create_dir_all(dir.join("vips")).unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "global_defs {\n  router_id inc\n}\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d/10-a.conf"),
        "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  priority 120\n  virtual_ipaddress {\n    include ../vips/{a,b}.list\n  }\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("conf.d/20-b.conf"), "\n\nfrobnicate 1\n").unwrap();
    std::fs::write(dir.join("vips/a.list"), "10.0.0.1/24\n").unwrap();
    std::fs::write(dir.join("vips/b.list"), "10.0.0.2/24\n").unwrap();
    let main = dir.join("main.conf");
    let (ok, out, err) = vrrpd(&["--check", "-f", main.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("instance a: interface eth0 vrid 1 priority 120 v2 advert_int 1.00s vips 2"),
        "{out}"
    );
    let b = dir.join("conf.d/20-b.conf");
    assert!(
        err.contains(&format!(
            "{}:3: warning: unknown or unsupported keyword 'frobnicate'",
            b.display()
        )),
        "{err}"
    );
    std::fs::write(dir.join("vips/b.list"), "10.0.0.300/24\n").unwrap();
    let (ok, _, err) = vrrpd(&["--check", "-f", main.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{}:1: error:",
            dir.join("conf.d/../vips/b.list").display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
