//! One lab spanning two hosts over a VXLAN trunk, end to end through the CLI: two network
//! namespaces stand in for the hosts, joined by a veth (192.168.77.1 and .2). Each runs
//! `vlaunch lab up tests/labs/vxlan.toml --only` its nodes (its own `VLAUNCH_LAB_DIR`), so
//! sw0 runs on both, trunked over VXLAN. A client on host A (VLAN 10) pings one on host B in
//! VLAN 10 and does not reach the one in VLAN 20. Then host B's end of the trunk is a Linux
//! kernel vxlan device in a bridge, which B's sw0 reaches through an uplink (a TAP trunk of
//! VLANs 10 and 20): the same pings prove the trunk interoperates with Linux's VXLAN. `down`
//! on both leaves no directory and no TAP behind.

mod common;

use common::ns_sh as sh;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const A: &str = "labvx-a";
const B: &str = "labvx-b";

/// Network namespaces made by this test, deleted on drop (also after a panic).
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: &str) {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh_ok(
            "",
            &format!("ip netns add {name} && ip -n {name} link set lo up"),
        );
        self.0.push(name.to_string());
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.0.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// Runs `cmd` with sh, inside namespace `ns` unless it is empty; panics when it fails.
fn sh_ok(ns: &str, cmd: &str) -> String {
    let o = sh(ns, cmd);
    assert!(
        o.status.success(),
        "{ns}: {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The lab as seen from one host: its namespace and its lab directory root.
struct Host {
    ns: &'static str,
    run: PathBuf,
    file: PathBuf,
}

impl Host {
    fn vlaunch(&self, args: &[&str]) -> Output {
        let o = Command::new("ip")
            .args(["netns", "exec", self.ns])
            .arg(common::ramux_bin("vlaunch"))
            .arg("lab")
            .args(args)
            .env("VLAUNCH_LAB_DIR", &self.run)
            .env("RAMUX_BIN_DIR", common::bin_dir())
            .output()
            .expect("run vlaunch lab");
        eprintln!(
            "e2e: {}: vlaunch lab {}: {}\n{}{}",
            self.ns,
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        o
    }

    fn up(&self, only: &str) {
        let f = self.file.to_str().unwrap();
        assert!(self.vlaunch(&["up", f, "--only", only]).status.success());
    }

    fn down(&self) {
        assert!(self.vlaunch(&["down", "vxlab"]).status.success());
        assert!(!self.run.join("vxlab").exists(), "{} left", self.ns);
    }

    fn serial(&self, node: &str) -> PathBuf {
        self.run.join("vxlab/vms").join(node).join("serial.sock")
    }
}

/// Both hosts' labs, brought down on drop (before the namespaces go).
struct Labs(Vec<Host>);

impl Drop for Labs {
    fn drop(&mut self) {
        for h in &self.0 {
            let _ = h.vlaunch(&["down", "vxlab", "--force"]);
        }
    }
}

/// `reached` or `isolated`: one ping run from a guest's console.
fn ping(sock: &Path, addr: &str) -> String {
    let cmd = format!(
        "echo \"P$((40+2))=$(ping -c 3 -W 1 {addr} >/dev/null 2>&1 && echo reached || echo isolated)\""
    );
    let out = common::console_run(sock, &cmd, "P42=", Duration::from_secs(60));
    let at = out.find("P42=").unwrap() + 4;
    out[at..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn wait_address(sock: &Path, addr: &str) {
    common::console_run(
        sock,
        "ip -4 -o addr show eth0",
        &format!("{addr}/24"),
        Duration::from_secs(60),
    );
}

/// The two hosts and the veth between them (MTU 1600: a tagged 1500-byte frame plus the
/// 50 bytes of VXLAN fit).
fn hosts(ns: &mut Namespaces) {
    ns.add(A);
    ns.add(B);
    sh_ok(
        A,
        &format!("ip link add vx0 mtu 1600 type veth peer name vx0 mtu 1600 netns {B}"),
    );
    sh_ok(
        A,
        "ip addr add 192.168.77.1/24 dev vx0 && ip link set vx0 up",
    );
    sh_ok(
        B,
        "ip addr add 192.168.77.2/24 dev vx0 && ip link set vx0 up",
    );
}

/// Host B's VXLAN end becomes Linux's: a kernel vxlan device (VNI 4242, UDP 4789) in a plain
/// bridge, and B's sw0 reaches it through an uplink trunk instead of its own VXLAN port.
/// (This kernel has neither VLAN interfaces nor bridge VLAN filtering, so B's VLANs stay in
/// vswitch; the bridge passes the tagged frames through unchanged.)
fn linux_vxlan_on_b(file: &Path, variant: &Path) {
    sh_ok(
        B,
        "ip link add vxl type vxlan id 4242 local 192.168.77.2 remote 192.168.77.1 \
         dstport 4789 && ip link add br0 type bridge && ip link set vxl master br0 && \
         ip link set vxl up && ip link set br0 up",
    );
    let text = std::fs::read_to_string(file).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("vxlan = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let uplink = "[uplink.vx]\nswitch = \"sw0\"\nport = 8\ntrunk = [10, 20]\nbridge = \"br0\"\n";
    std::fs::write(variant, text + uplink).unwrap();
}

/// The client images, linked beside a copy of the lab file in `dir`; the file's path.
fn lab_file(dir: &Path) -> (PathBuf, Vec<std::sync::Arc<common::Image>>) {
    let images: Vec<_> = [
        ("a1", "10.60.0.11"),
        ("b1", "10.60.0.12"),
        ("b2", "10.60.0.22"),
    ]
    .iter()
    .map(|(h, a)| {
        let addr = format!("{a}/24");
        let img = common::image_with("client", "", &[("address", &addr), ("hostname", h)]);
        std::os::unix::fs::symlink(&img.iso, dir.join(format!("{h}.iso"))).unwrap();
        img
    })
    .collect();
    let file = dir.join("vxlan.toml");
    let src = common::repo_root().join("ramux-e2e/tests/labs/vxlan.toml");
    std::fs::copy(src, &file).unwrap();
    (file, images)
}

/// a1 (host A, VLAN 10) reaches b1 (host B, VLAN 10), not b2 (host B, VLAN 20).
fn pings_across(a: &Host, b: &Host, how: &str) {
    let a1 = a.serial("a1");
    assert_eq!(ping(&a1, "10.60.0.12"), "reached", "same VLAN {how}");
    assert_eq!(ping(&a1, "10.60.0.22"), "isolated", "other VLAN {how}");
    assert_eq!(
        ping(&b.serial("b2"), "10.60.0.11"),
        "isolated",
        "back, {how}"
    );
}

#[test]
fn one_lab_on_two_hosts_over_a_vxlan_trunk() {
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("vl-vx-")
        .tempdir_in("/tmp")
        .unwrap();
    let (file, _images) = lab_file(tmp.path());
    let mut ns = Namespaces(vec![]);
    hosts(&mut ns);
    let variant = file.with_file_name("vxlan-linux-b.toml");
    let host = |ns, run: &str, file: &PathBuf| Host {
        ns,
        run: tmp.path().join(run),
        file: file.clone(),
    };
    let labs = Labs(vec![
        host(A, "runA", &file),
        host(B, "runB", &file),
        host(B, "runB2", &variant),
    ]);
    let (a, b) = (&labs.0[0], &labs.0[1]);
    std::thread::scope(|s| {
        s.spawn(|| a.up("a1"));
        s.spawn(|| b.up("b1,b2"));
    });
    eprintln!(
        "e2e: both hosts up after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    for (h, node, addr) in [
        (a, "a1", "10.60.0.11"),
        (b, "b1", "10.60.0.12"),
        (b, "b2", "10.60.0.22"),
    ] {
        wait_address(&h.serial(node), addr);
    }
    pings_across(a, b, "over vswitch's VXLAN at both ends");

    // Host B's end of the trunk becomes a Linux kernel vxlan device.
    b.down();
    linux_vxlan_on_b(&file, &variant);
    let b = &labs.0[2];
    b.up("b1,b2");
    for (node, addr) in [("b1", "10.60.0.12"), ("b2", "10.60.0.22")] {
        wait_address(&b.serial(node), addr);
    }
    pings_across(a, b, "through Linux's vxlan");
    let tap = sh_ok(B, "ip -br link show master br0");
    assert!(tap.contains("vxlab-"), "the uplink TAP is in br0: {tap}");
    b.down();
    let left = sh_ok(B, "ip -br link");
    assert!(!left.contains("vxlab-"), "down deletes the TAP: {left}");
    a.down();
    eprintln!("e2e: lab_vxlan in {:.1} s", t0.elapsed().as_secs_f64());
}
