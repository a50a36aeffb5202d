//! `vlaunch burn` as a user runs it: help, argument errors, --list --json, the confirmation
//! rule, a loop device written and verified with --json progress, and Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;

fn vlaunch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vlaunch"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Loop(PathBuf);

impl Loop {
    fn attach(file: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success());
        Loop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn files(dir: &Path, image: u64, dev: u64) -> (PathBuf, PathBuf) {
    let iso = dir.join("r.iso");
    let data: Vec<u8> = (0..image).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&iso, data).unwrap();
    let back = dir.join("stick");
    std::fs::File::create(&back).unwrap().set_len(dev).unwrap();
    (iso, back)
}

#[test]
fn help_shows_real_examples() {
    let o = vlaunch().args(["burn", "--help"]).output().unwrap();
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for want in [
        "Examples:",
        "vlaunch burn --list",
        "vlaunch burn images/RT1.iso /dev/sdb",
        "--cd",
        "--allow-loop",
        "--any-bus",
        "--allow-large",
    ] {
        assert!(s.contains(want), "--help lacks {want:?}:\n{s}");
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let o = vlaunch().arg("burn").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("<ISO>"));
    let o = vlaunch()
        .args(["burn", "--list", "x.iso"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    let o = vlaunch()
        .args(["burn", "/nonexistent.iso", "/dev/sdz", "--yes"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.iso"));
    let o = vlaunch().args(["burn", "--bogus"]).output().unwrap();
    assert!(!o.status.success());
}

#[test]
fn list_json_parses() {
    let o = vlaunch()
        .args(["burn", "--list", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let disks = v["disks"].as_array().unwrap();
    for d in disks {
        assert!(d["name"].is_string() && d["candidate"].is_boolean());
        if d["candidate"] == false {
            assert!(!d["refusals"].as_array().unwrap().is_empty(), "{d}");
        }
    }
    // On this kind of host the system disk holds / and is never a candidate.
    if let Some(root_disk) = disks.iter().find(|d| {
        d["refusals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "holds_root")
    }) {
        assert_eq!(root_disk["candidate"], false);
    }
    let o = vlaunch().args(["burn", "--list"]).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("Candidates:") && s.contains("Not candidates:"));
}

#[test]
fn loop_refused_then_confirmation_needed_then_written_and_verified() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (iso, back) = files(t.path(), 6 * MIB + 2048, 16 * MIB);
    let l = Loop::attach(&back);
    let dev = l.0.to_str().unwrap();

    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args([dev, "--yes"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("loop device") && e.contains("--allow-loop"),
        "{e}"
    );

    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args([dev, "--allow-loop"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no terminal") && e.contains("--yes"), "{e}");

    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args([dev, "--allow-loop", "--yes", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let prog: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "progress").collect();
    assert!(prog.iter().any(|p| p["phase"] == "write"));
    assert!(prog.iter().any(|p| p["phase"] == "verify"));
    for p in &prog {
        assert!(p["done"].as_u64().unwrap() <= p["total"].as_u64().unwrap());
        assert!(p["rate_bytes_per_s"].is_u64());
    }
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["verified"], true);
    assert_eq!(done["bytes"], 6 * MIB + 2048);
}

#[test]
fn sigint_stops_and_says_incomplete() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (iso, back) = files(t.path(), 256 * MIB, 300 * MIB);
    let l = Loop::attach(&back);
    let mut c = vlaunch()
        .arg("burn")
        .arg(&iso)
        .arg(&l.0)
        .args(["--allow-loop", "--yes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"progress\""), "{first}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = c.wait_with_output().unwrap();
    let rest: String = out
        .lines()
        .map_while(Result::ok)
        .collect::<Vec<_>>()
        .join("\n");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{e}\n{rest}");
    assert!(e.contains("INCOMPLETE"), "{e}");
    assert!(rest.contains("\"exit\":130"), "{rest}");
}

#[test]
fn cd_to_a_stdio_pseudo_drive_with_json() {
    if Command::new("xorriso").arg("-version").output().is_err() {
        eprintln!("skipped: no xorriso");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("a"), vec![7u8; 1 << 20]).unwrap();
    let iso = t.path().join("c.iso");
    let st = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(st.success());
    let fake = t.path().join("cd.bin");
    let target = format!("stdio:{}", fake.display());
    // No terminal, no --yes: refused before xorriso runs.
    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args([&target, "--cd"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!fake.exists());
    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args([&target, "--cd", "--yes", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["cd"]["verified"], true, "{last}");
    assert!(
        last["cd"]["target_bytes"].as_u64().unwrap() > last["cd"]["image_bytes"].as_u64().unwrap()
    );
    // --cd on something that is neither /dev/srN nor stdio: refused.
    let o = vlaunch()
        .arg("burn")
        .arg(&iso)
        .args(["/dev/null", "--cd", "--yes"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an optical drive"));
}
