//! A virtual router as the backup of a physical one (the 2009 conclusion), end to end: the lab
//! (`tests/labs/outside.toml`, run under `ip netns exec` in the lab host's namespace) holds
//! only the site's BACKUP router; three access-port uplinks bridge VLANs 10, 20 and 99 to host
//! bridges. Outside the lab, a namespace stands in for the physical MASTER: veths named
//! `vlan10`, `vlan20` and `eth1` (as labwall's MASTER keepalived.conf expects; this kernel has
//! no VLAN interfaces, so each is a plain veth bridged to its VLAN's uplink), the MASTER's
//! network.ip addresses, and vrrpd on the MASTER keepalived.conf. An outside user pings the
//! users' VIP every 20 ms; the outside master dies (vrrpd SIGKILLed, its links down), the VIPs
//! move into the VM, and the longest gap of the ping is reported. Before any of it, the
//! forwarding-host check: the lab host with addresses in two lab VLANs and forwarding on makes
//! `validate` refuse the lab.

mod common;

use common::ns_sh as sh;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const L: &str = "labout-l";
const O: &str = "labout-o";
const C: &str = "labout-c";
const VM_MAC: &str = "00:16:3e:0e:20:01";
const VIP: &str = "172.16.20.1";

/// Network namespaces made by this test, deleted on drop (also after a panic).
struct Namespaces(Vec<&'static str>);

impl Namespaces {
    fn add(&mut self, name: &'static str) {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh_ok(
            "",
            &format!("ip netns add {name} && ip -n {name} link set lo up"),
        );
        self.0.push(name);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.0.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn sh_ok(ns: &str, cmd: &str) -> String {
    let o = sh(ns, cmd);
    assert!(
        o.status.success(),
        "{ns}: {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A process this test started, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lab in namespace L, brought down on drop.
struct Lab {
    file: PathBuf,
    run: PathBuf,
}

impl Lab {
    fn vlaunch(&self, args: &[&str]) -> Output {
        let o = Command::new("ip")
            .args(["netns", "exec", L])
            .arg(common::ramux_bin("vlaunch"))
            .arg("lab")
            .args(args)
            .env("VLAUNCH_LAB_DIR", &self.run)
            .env("RAMUX_BIN_DIR", common::bin_dir())
            .output()
            .expect("run vlaunch lab");
        eprintln!(
            "e2e: vlaunch lab {}: {}\n{}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        o
    }

    fn serial(&self) -> PathBuf {
        self.run.join("outside/vms/RT2/serial.sock")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.vlaunch(&["down", "outside", "--force"]);
    }
}

/// The lab host's bridges, the outside master's veths (named as its keepalived.conf says) and
/// the outside user's, each plugged into the bridge of its VLAN.
fn wire() {
    for br in ["br10", "br20", "br99"] {
        sh_ok(
            L,
            &format!("ip link add {br} type bridge && ip link set {br} up"),
        );
    }
    for (peer, ns, dev, br) in [
        ("o-vlan10", O, "vlan10", "br10"),
        ("o-vlan20", O, "vlan20", "br20"),
        ("o-eth1", O, "eth1", "br99"),
        ("c-eth0", C, "eth0", "br20"),
    ] {
        sh_ok(
            L,
            &format!(
                "ip link add {peer} type veth peer name {dev} netns {ns} && \
                 ip link set {peer} master {br} up"
            ),
        );
        sh_ok(ns, &format!("ip link set {dev} up"));
    }
    sh_ok(
        C,
        "ip addr add 172.16.20.50/24 dev eth0 && ip route add default via 172.16.20.1",
    );
}

/// labwall's MASTER output for the seed site, in `dir`.
fn compile_master(dir: &Path) -> PathBuf {
    let out = dir.join("master");
    let site = common::repo_root().join("profiles/router/site.lw");
    let o = Command::new(common::ramux_bin("labwall"))
        .args(["compile", "--role", "MASTER", "-D", "HOSTNAME=rt1", "--out"])
        .arg(&out)
        .arg(&site)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The outside master: the MASTER's network.ip (less its VLAN devices: the veths stand in)
/// applied in O, then vrrpd on its keepalived.conf.
fn outside_master(master: &Path) -> Proc {
    let ip = std::fs::read_to_string(master.join("network.ip")).unwrap();
    let batch: String = ip
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("type vlan") && !l.contains("dev eth0"))
        .map(|l| format!("{l}\n"))
        .collect();
    let b = master.join("outside.ip");
    std::fs::write(&b, batch).unwrap();
    sh_ok(O, &format!("ip -batch {}", b.display()));
    let log = File::create(master.join("vrrpd.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", O])
        .arg(common::ramux_bin("vrrpd"))
        .args(["-n", "-l", "-f"])
        .arg(master.join("keepalived.conf"))
        .arg("--socket")
        .arg(master.join("vrrpd.sock"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// The outside vrrpd's instance states, e.g. `interne=MASTER externe=MASTER`.
fn outside_states(master: &Path) -> String {
    let sock = master.join("vrrpd.sock");
    let o = sh(
        O,
        &format!(
            "{} status --json --socket {}",
            common::ramux_bin("vrrpd").display(),
            sock.display()
        ),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let list = v["instances"].as_array().cloned().unwrap_or_default();
    let s: Vec<String> = list
        .iter()
        .map(|i| {
            format!(
                "{}={}",
                i["name"].as_str().unwrap_or("?"),
                i["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    s.join(" ")
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> f64 {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t0.elapsed().as_secs_f64()
}

/// The MAC the outside user has for the VIP (empty when unknown).
fn vip_mac() -> String {
    let out = sh(C, &format!("ip neigh show {VIP} dev eth0"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut w = text.split_whitespace();
    w.find(|x| *x == "lladdr")
        .and(w.next())
        .unwrap_or("")
        .to_string()
}

/// The longest gap between two replies of `ping -D` output, and the number of replies.
fn longest_gap(ping_out: &str) -> (f64, usize) {
    let stamps: Vec<f64> = ping_out
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap = stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    (gap, stamps.len())
}

/// The forwarding-host check with the real answers of namespace L: addresses in VLANs 10 and
/// 20 with forwarding on make `validate` refuse, and say how to fix it.
fn forwarding_host_refused(lab: &Lab) {
    let f = lab.file.to_str().unwrap();
    sh_ok(
        L,
        "ip addr add 172.16.10.5/24 dev br10 && ip addr add 172.16.20.5/24 dev br20 && \
         sysctl -qw net.ipv4.ip_forward=1",
    );
    let o = lab.vlaunch(&["validate", f]);
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success(),
        "validate must refuse a forwarding host"
    );
    assert!(
        text.contains("would make this host a router between lab VLANs"),
        "{text}"
    );
    assert!(
        text.contains("br10 172.16.10.5/24") && text.contains("br20 172.16.20.5/24"),
        "{text}"
    );
    assert!(text.contains("net.ipv4.conf.br10.forwarding=0"), "{text}");
    sh_ok(L, "sysctl -qw net.ipv4.ip_forward=0");
    let o = lab.vlaunch(&["validate", f]);
    assert!(o.status.success(), "addresses without forwarding are fine");
    sh_ok(L, "ip addr flush dev br10 && ip addr flush dev br20");
}

/// The lab file in `dir` with its `site` made absolute and the BACKUP router's ISO beside it.
fn lab_file(dir: &Path, iso: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(common::repo_root().join("ramux-e2e/tests/labs/outside.toml"))
            .unwrap();
    let site = common::repo_root().join("profiles/router/site.lw");
    let text = text.replace(
        "site = \"../../../profiles/router/site.lw\"",
        &format!("site = {:?}", site.display().to_string()),
    );
    let file = dir.join("outside.toml");
    std::fs::write(&file, text).unwrap();
    std::os::unix::fs::symlink(iso, dir.join("router-backup.iso")).unwrap();
    file
}

/// Kills the outside master while a user pings the VIP every 20 ms; returns the longest gap
/// between replies and their number, once the VIP's MAC is the VM's.
fn failover(master: Proc, dir: &Path) -> (f64, usize) {
    let out_path = dir.join("ping.out");
    let ping = Command::new("ip")
        .args([
            "netns", "exec", C, "ping", "-n", "-D", "-i", "0.02", "-W", "1", VIP,
        ])
        .stdout(File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ping = Proc(ping);
    std::thread::sleep(Duration::from_secs(2));
    drop(master); // SIGKILL: the box dies without a word ...
    sh_ok(
        O,
        "ip link set vlan10 down && ip link set vlan20 down && ip link set eth1 down",
    );
    let moved = wait_for("the VIP moves into the VM", Duration::from_secs(90), || {
        vip_mac() == VM_MAC
    });
    eprintln!("e2e: the user sees the VM's MAC for {VIP} {moved:.1} s after the master died");
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(ping.0.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    drop(ping);
    longest_gap(&std::fs::read_to_string(&out_path).unwrap())
}

/// Before the failover: the outside master holds the VIPs, the VM stays BACKUP.
fn outside_holds_the_vips(master: &Path) {
    wait_for(
        "the outside master holds the VIPs",
        Duration::from_secs(60),
        || outside_states(master) == "interne=MASTER externe=MASTER",
    );
    // A few adverts later the VM is still BACKUP: the VIP answers from the outside master.
    std::thread::sleep(Duration::from_secs(12));
    sh_ok(C, &format!("ping -c 2 -W 1 {VIP}"));
    let o_mac = sh_ok(O, "cat /sys/class/net/vlan20/address")
        .trim()
        .to_string();
    assert_eq!(vip_mac(), o_mac, "before: the VIP is the outside master's");
    assert_eq!(outside_states(master), "interne=MASTER externe=MASTER");
}

#[test]
fn the_lab_backup_router_takes_over_from_an_outside_master() {
    let t0 = Instant::now();
    let img = common::image_role("router", "BACKUP");
    let tmp = tempfile::Builder::new()
        .prefix("vl-out-")
        .tempdir_in("/tmp")
        .unwrap();
    let file = lab_file(tmp.path(), &img.iso);
    let mut ns = Namespaces(vec![]);
    for n in [L, O, C] {
        ns.add(n);
    }
    wire();
    let lab = Lab {
        file: file.clone(),
        run: tmp.path().join("run"),
    };
    forwarding_host_refused(&lab);

    let master = compile_master(tmp.path());
    let vrrpd = outside_master(&master);
    assert!(
        lab.vlaunch(&["up", file.to_str().unwrap()])
            .status
            .success(),
        "up"
    );
    let tap = sh_ok(L, "ip -br link show master br20");
    assert!(
        tap.contains("outsid-"),
        "the users uplink's TAP is in br20: {tap}"
    );
    outside_holds_the_vips(&master);

    let (gap, replies) = failover(vrrpd, tmp.path());
    eprintln!("e2e: ping of {VIP} every 20 ms: {replies} replies, longest gap {gap:.2} s");
    assert!(replies > 200, "{replies} replies");
    assert!(gap > 1.0 && gap < 30.0, "longest gap {gap:.2} s");
    let after = sh(C, &format!("ping -c 3 -W 1 {VIP}"));
    assert!(
        after.status.success(),
        "the user reaches the VIP after the failover"
    );
    let vm = common::console_run(
        &lab.serial(),
        "echo \"V$((40+2))=$(ip -4 -o addr show dev vlan20 | grep -c 172.16.20.1/24)\"",
        "V42=",
        Duration::from_secs(60),
    );
    assert!(vm.contains("V42=1"), "the VM holds the VIP on vlan20: {vm}");

    assert!(lab.vlaunch(&["down", "outside"]).status.success());
    let left = sh_ok(L, "ip -br link");
    assert!(
        !left.contains("outsid-"),
        "down deletes the uplink TAPs: {left}"
    );
    assert!(!lab.run.join("outside").exists());
    eprintln!("e2e: lab_outside in {:.1} s", t0.elapsed().as_secs_f64());
}
