//! The CLI as users run it: atomic output, no partial output on errors, --deny-warnings,
//! --json, check and explain exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_labwall"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw")
}

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(tag: &str) -> Tmp {
    let p = std::env::temp_dir().join(format!("labwall-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    Tmp(p)
}

#[test]
fn compile_writes_four_files_and_replaces_atomically() {
    let t = tmp("atomic");
    let out = t.0.join("out");
    for host in ["fw-a", "fw-z"] {
        let o = bin()
            .args([
                "compile",
                &example().to_string_lossy(),
                "--role",
                "MASTER",
                "-D",
                &format!("HOSTNAME={host}"),
                "--out",
                &out.to_string_lossy(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("warning: alias mailhub is never used"),
            "{err}"
        );
        for f in [
            "network.ip",
            "sysctl.conf",
            "ruleset.nft",
            "keepalived.conf",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        assert!(std::fs::read_to_string(out.join("keepalived.conf"))
            .unwrap()
            .contains(&format!("router_id {host}")));
        // keepalived.conf holds auth_pass: owner only; the rest is plain config
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (mode("keepalived.conf"), mode("ruleset.nft")),
            (0o600, 0o644)
        );
    }
    // no temp dirs left behind
    let left: Vec<_> = std::fs::read_dir(&t.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn errors_leave_previous_output_untouched() {
    let t = tmp("err");
    let out = t.0.join("out");
    let ok = bin()
        .args([
            "compile",
            &example().to_string_lossy(),
            "--role",
            "BACKUP",
            "-D",
            "HOSTNAME=fw-b",
            "--out",
            &out.to_string_lossy(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let before = std::fs::read_to_string(out.join("ruleset.nft")).unwrap();
    let bad = t.0.join("site.lw");
    let text = std::fs::read_to_string(example()).unwrap().replace(
        "ALLOW users       srv:dns1    dns",
        "ALLOW users srv:dns9 dns\nALLOW users srv:dns1 telnet",
    );
    std::fs::write(&bad, text).unwrap();
    let o = bin()
        .args([
            "compile",
            &bad.to_string_lossy(),
            "--role",
            "BACKUP",
            "-D",
            "HOSTNAME=fw-b",
            "--out",
            &out.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    // both errors at once, with file:line:col
    assert!(
        err.contains("site.lw:47:17: error: undefined alias dns9"),
        "{err}"
    );
    assert!(
        err.contains("site.lw:48:22: error: unknown service telnet"),
        "{err}"
    );
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("ruleset.nft")).unwrap(),
        before
    );
}

#[test]
fn deny_warnings_and_json() {
    let o = bin()
        .args([
            "check",
            &example().to_string_lossy(),
            "-D",
            "HOSTNAME=fw",
            "--deny-warnings",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "warnings must fail with --deny-warnings"
    );
    let o = bin()
        .args([
            "check",
            &example().to_string_lossy(),
            "-D",
            "HOSTNAME=fw",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"][0]["loc"]["line"], 36);
    assert_eq!(v["warnings"][0]["severity"], "warning");
}

#[test]
fn explain_names_the_line() {
    let o = bin()
        .args([
            "explain",
            &example().to_string_lossy(),
            "--role",
            "BACKUP",
            "-D",
            "HOSTNAME=fw-b",
            "--from",
            "172.16.20.5",
            "--to",
            "172.16.10.30",
            "--proto",
            "tcp",
            "--dport",
            "22",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("DROP: line 29"), "{s}");
    // IPv6 has no NAT: ALLOW net srv:web1 https (line 51) is the path
    let o = bin()
        .args([
            "explain",
            &example().to_string_lossy(),
            "--role",
            "MASTER",
            "-D",
            "HOSTNAME=fw-a",
            "--from",
            "2001:db8:1::1",
            "--to",
            "2001:db8:10::21",
            "--dport",
            "443",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "ACCEPT");
    assert_eq!(v["decision"]["line"], 51);
    assert!(v["snat"].is_null());
}

#[test]
fn backend_check_accepts_seed_and_example() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root (network namespaces)"
    );
    for site in ["seed", "example"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sites/{site}/site.lw"));
        let o = bin()
            .args([
                "check",
                &p.to_string_lossy(),
                "-D",
                "HOSTNAME=fw",
                "--backend",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{site}: {err}");
        assert!(err.contains("backend checks passed"), "{site}: {err}");
    }
    // AH authentication: keepalived refuses `state MASTER` with AH, so both roles start BACKUP
    // and the priority (100/50) elects; the backend check must pass
    let t = tmp("backend");
    let ah = t.0.join("site.lw");
    std::fs::write(
        &ah,
        std::fs::read_to_string(example())
            .unwrap()
            .replace("VRRP AUTH PASS XYZ", "VRRP AUTH AH XYZ"),
    )
    .unwrap();
    let o = bin()
        .args([
            "check",
            &ah.to_string_lossy(),
            "-D",
            "HOSTNAME=fw",
            "--backend",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "AH: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `check --backend` as root writes the rulesets (keepalived.conf with its auth_pass) into a
/// work directory. A local user who plants that directory, with a symlink where a file will be,
/// must not get a root file overwritten: the directory is private (mkdtemp), never the
/// predictable `$TMPDIR/labwall-check-<pid>` that the child's own pid names here.
#[test]
fn backend_check_does_not_write_through_a_planted_directory() {
    use std::os::unix::process::CommandExt;
    assert!(unsafe { libc::geteuid() } == 0, "needs root");
    let t = tmp("planted");
    let victim = t.0.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let tmpdir = t.0.join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/seed/site.lw");
    let (plant_root, victim_c) = (tmpdir.clone(), victim.clone());
    let mut cmd = bin();
    cmd.args([
        "check",
        &site.to_string_lossy(),
        "-D",
        "HOSTNAME=fw",
        "--backend",
    ])
    .env("TMPDIR", &tmpdir);
    // SAFETY: runs in the child between fork and exec; it only makes a directory and links.
    unsafe {
        cmd.pre_exec(move || {
            let d = plant_root.join(format!("labwall-check-{}", std::process::id()));
            std::fs::create_dir(&d)?;
            for f in [
                "ruleset-m.nft",
                "keepalived-m.conf",
                "ruleset-b.nft",
                "keepalived-b.conf",
            ] {
                std::os::unix::fs::symlink(&victim_c, d.join(f))?;
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "{err}"
    );
    // and its own directory is gone afterwards; only the planted one is left
    let left: Vec<_> = std::fs::read_dir(&tmpdir).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
