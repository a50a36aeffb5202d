//! The command line: --help has examples, a bad vpn-auth.toml is named with its line and the
//! exit status is non-zero, --check accepts a good file, --status without a daemon fails.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ramux-vpn-auth"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ramux-vpn-auth-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("secrets/radius/nas")).unwrap();
    std::fs::write(d.join("secrets/radius/nas/vpn1"), "s3cret\n").unwrap();
    d
}

const GOOD: &str = r#"instance = "vpn1"
timeout_ms = 1000
tries = 2

[[radius]]
address = "172.16.10.10:1812"
secret = "radius/nas/vpn1"

[[daemons]]
vlan = 10
management = "/run/ramux/vpn/vlan10.sock"
tun = "tun10"
leg = "eth0.10"
network = "172.16.10.0/24"
reserved = ["172.16.10.1"]
"#;

#[test]
fn help_check_and_errors() {
    let (ok, help) = run(&["--help"]);
    assert!(
        ok && help.contains("Examples:") && help.contains("management-client-auth"),
        "{help}"
    );
    let d = dir();
    let f = d.join("vpn-auth.toml");
    let sd = d.join("secrets");
    let (f_s, sd_s) = (f.to_str().unwrap(), sd.to_str().unwrap());
    std::fs::write(&f, GOOD).unwrap();
    let (ok, out) = run(&["--check", "-c", f_s, "--secrets-dir", sd_s]);
    assert!(ok, "{out}");
    std::fs::write(&f, GOOD.replace("tries = 2", "tries = \"two\"")).unwrap();
    let (ok, out) = run(&["--check", "-c", f_s, "--secrets-dir", sd_s]);
    assert!(!ok && out.contains(&format!("{f_s}:3:")), "{out}");
    std::fs::write(&f, GOOD.replace("172.16.10.0/24", "172.16.10.0/33")).unwrap();
    let (ok, out) = run(&["--check", "-c", f_s, "--secrets-dir", sd_s]);
    assert!(
        !ok && out.contains("vlan 10") && out.contains("172.16.10.0/33"),
        "{out}"
    );
    std::fs::write(&f, GOOD.replace("radius/nas/vpn1", "radius/nas/nope")).unwrap();
    let (ok, out) = run(&["--check", "-c", f_s, "--secrets-dir", sd_s]);
    assert!(!ok && out.contains("radius/nas/nope"), "{out}");
    let st = d.join("no-status");
    let (ok, out) = run(&["--status", "--status-file", st.to_str().unwrap()]);
    assert!(!ok && out.contains("is the daemon running"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}
