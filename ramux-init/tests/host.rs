//! Host-side checks of the I/O helpers and the `check` CLI (no VM, no root needed).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ramux_init::sys;

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("ramux-init-host-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

#[test]
fn run_tool_reports_exit_status_and_stderr_on_one_line() {
    let err = sys::run_tool(
        &[
            "/bin/sh",
            "-c",
            "echo ok; echo 'line one' >&2; echo 'line two' >&2; exit 3",
        ],
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert!(err.starts_with("/bin/sh -c "), "{err}");
    assert!(
        err.ends_with("exit status: 3: line one | line two"),
        "{err}"
    );
    assert!(sys::run_tool(&["/bin/true"], Duration::from_secs(10)).is_ok());
    let err =
        sys::run_tool(&["/nonexistent/ip", "-batch", "x"], Duration::from_secs(10)).unwrap_err();
    assert!(err.contains("cannot start"), "{err}");
}

#[test]
fn run_tool_kills_a_hung_tool() {
    let err = sys::run_tool(&["/bin/sleep", "30"], Duration::from_millis(300)).unwrap_err();
    assert!(err.contains("killed"), "{err}");
}

#[test]
fn check_cli_accepts_good_and_locates_bad_config() {
    let d = tempdir("check");
    let good = d.0.join("appliance.toml");
    std::fs::write(&good, "profile = \"router\"\nrole = \"BACKUP\"\nhostname = \"rt2\"\nkernel_release = \"6.1.0-56-amd64\"\n[[service]]\nname = \"vrrpd\"\nargv = [\"/usr/sbin/vrrpd\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ramux-init"))
        .arg("check")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("ramux: ready profile=router role=BACKUP host=rt2"));

    let bad = d.0.join("bad.toml");
    std::fs::write(&bad, "profile = \"router\"\nrole = \"BACKUP\"\nhostname = \"rt2\"\nkernel_release = \"6.1.0-56-amd64\"\n[[service]]\nname = \"vrrpd\"\nargv = [\"vrrpd\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ramux-init"))
        .arg("check")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:6:", bad.display())) && err.contains("absolute path"),
        "{err}"
    );

    let sysctl = d.0.join("sysctl.conf");
    std::fs::write(&sysctl, "net.ipv4.ip_forward = 1\nbroken line\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ramux-init"))
        .arg("check")
        .arg(&good)
        .arg("--sysctl")
        .arg(&sysctl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sysctl.conf:2: expected `key = value`"));
}

#[test]
fn check_json_report() {
    let d = tempdir("json");
    let bad = d.0.join("bad.toml");
    std::fs::write(&bad, "profile = \"router\"\nrole = \n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ramux-init"))
        .args(["check", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["errors"][0].as_str().unwrap().contains("bad.toml:2:"),
        "{v}"
    );
    assert!(v["ready_line"].is_null());
}

#[test]
fn refuses_to_run_as_a_normal_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_ramux-init"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as PID 1"));
}
