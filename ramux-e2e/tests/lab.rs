//! `vlaunch lab` end to end through the CLI binary: three client images (all in one subnet,
//! so only the VLANs separate them) on one switch, c10a and c10b on VLAN 10, c20 on VLAN 20.
//! First `up` is SIGKILLed while the nodes boot and `down` must remove everything from
//! state.json alone; then a full `up`, VLAN isolation proven over the serial consoles,
//! `status --json`, and `down` leaving no process, socket or directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NODES: [(&str, &str, u16); 3] = [
    ("c10a", "10.50.0.11", 10),
    ("c10b", "10.50.0.12", 10),
    ("c20", "10.50.0.21", 20),
];

struct Lab {
    file: PathBuf,
    run: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Lab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::ramux_bin("vlaunch"));
        c.arg("lab")
            .args(args)
            .env("VLAUNCH_LAB_DIR", &self.run)
            .env("RAMUX_BIN_DIR", common::bin_dir());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let o = self.cmd(args).output().expect("run vlaunch lab");
        eprintln!(
            "e2e: vlaunch lab {}: {}\n{}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        o
    }

    fn dir(&self) -> PathBuf {
        self.run.join("e2elab")
    }

    fn state(&self) -> Option<serde_json::Value> {
        let b = std::fs::read(self.dir().join("state.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "e2elab", "--force"]).output();
    }
}

fn lab_file(isos: &[PathBuf]) -> String {
    let mut s = String::from(
        "name = \"e2elab\"\n[defaults]\nprofile = \"client\"\nmemory = \"512M\"\n\
         ready_timeout = \"240s\"\n[switch.sw0]\nports = 8\nvlans = { 10 = \"a\", 20 = \"b\" }\n",
    );
    for ((name, addr, vlan), iso) in NODES.iter().zip(isos) {
        s.push_str(&format!(
            "[node.{name}]\niso = \"{}\"\naddress = \"{addr}/24\"\n\
             nics = [ {{ switch = \"sw0\", access = {vlan} }} ]\n",
            iso.display()
        ));
    }
    s
}

/// Every pid state.json records (the switch's and each QEMU's).
fn recorded_pids(st: &serde_json::Value) -> Vec<u32> {
    let mut out = Vec::new();
    for key in ["switches", "nodes"] {
        for x in st[key].as_array().into_iter().flatten() {
            out.extend(x["pid"].as_u64().map(|p| p as u32));
        }
    }
    out
}

/// Processes whose command line mentions `path` (the lab's QEMUs and switch do).
fn processes_naming(path: &Path) -> Vec<String> {
    let want = path.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&want) {
            out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
}

fn assert_all_gone(lab: &Lab, pids: &[u32]) {
    assert!(!lab.dir().exists(), "{} left behind", lab.dir().display());
    let t0 = Instant::now();
    while pids.iter().any(|&p| alive(p)) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &p in pids {
        assert!(!alive(p), "pid {p} of the lab still runs");
    }
    let left = processes_naming(&lab.run);
    assert!(left.is_empty(), "processes of the lab remain: {left:?}");
}

fn serial_sock(lab: &Lab, node: &str) -> PathBuf {
    lab.dir().join("vms").join(node).join("serial.sock")
}

/// `reached` or `isolated`: one ping run from `node`'s console.
fn ping(lab: &Lab, node: &str, addr: &str) -> String {
    let cmd = format!(
        "echo \"P$((40+2))=$(ping -c 3 -W 1 {addr} >/dev/null 2>&1 && echo reached || echo isolated)\""
    );
    let out = common::console_run(
        &serial_sock(lab, node),
        &cmd,
        "P42=",
        Duration::from_secs(60),
    );
    let at = out.find("P42=").unwrap() + 4;
    out[at..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn lab_up_isolates_vlans_and_down_undoes_even_a_killed_up() {
    let isos: Vec<_> = NODES
        .iter()
        .map(|(name, addr, _)| {
            let a = format!("{addr}/24");
            common::image_with("client", "", &[("address", &a), ("hostname", name)])
        })
        .collect();
    let tmp = tempfile::Builder::new()
        .prefix("vl-lab-")
        .tempdir_in("/tmp")
        .unwrap();
    let lab = Lab {
        file: tmp.path().join("lab.toml"),
        run: tmp.path().join("run"),
        _tmp: tmp,
    };
    let paths: Vec<PathBuf> = isos.iter().map(|i| i.iso.clone()).collect();
    std::fs::write(&lab.file, lab_file(&paths)).unwrap();
    let file = lab.file.to_str().unwrap();
    assert!(lab.run(&["validate", file]).status.success());

    // 1. SIGKILL `up` while the nodes boot: `down` must undo it from state.json alone.
    let t0 = Instant::now();
    let mut up = lab
        .cmd(&["up", file])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pids = loop {
        let st = lab.state();
        let pids = st.as_ref().map(recorded_pids).unwrap_or_default();
        if pids.len() >= 3 {
            break pids;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "up recorded {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    up.kill().unwrap();
    up.wait().unwrap();
    eprintln!(
        "e2e: killed up after {:.1} s, pids {pids:?}",
        t0.elapsed().as_secs_f64()
    );
    assert!(lab.run(&["down", "e2elab"]).status.success());
    let after_kill = lab.state();
    assert!(after_kill.is_none());
    // Every pid of the lab, including a QEMU started after the last read of state.json.
    assert_all_gone(&lab, &pids);

    // 2. The whole lab up, gated on the ready lines.
    let t1 = Instant::now();
    let o = lab.run(&["up", file]);
    assert!(o.status.success(), "up failed");
    eprintln!("e2e: lab up in {:.1} s", t1.elapsed().as_secs_f64());
    let st = lab.run(&["status", "e2elab", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    for n in doc["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "ready", "{n}");
    }
    assert_eq!(doc["switches"][0]["state"], "running");

    // Every address is configured before any probe, so "isolated" is the VLAN's doing.
    for (name, addr, _) in NODES {
        common::console_run(
            &serial_sock(&lab, name),
            "ip -4 -o addr show eth0",
            &format!("{addr}/24"),
            Duration::from_secs(60),
        );
    }
    assert_eq!(ping(&lab, "c10a", "10.50.0.12"), "reached");
    assert_eq!(ping(&lab, "c10a", "10.50.0.21"), "isolated");
    assert_eq!(ping(&lab, "c20", "10.50.0.11"), "isolated");

    let pids = recorded_pids(&lab.state().unwrap());
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert!(lab.run(&["down", "e2elab"]).status.success());
    assert_all_gone(&lab, &pids);
    assert!(lab.run(&["down", "e2elab"]).status.success(), "idempotent");
    eprintln!("e2e: lab test in {:.1} s", t0.elapsed().as_secs_f64());
}
