//! Client-observed outage on a master crash: `use_vmac` against gratuitous-ARP failover, for a
//! vrrpd pair and a keepalived pair side by side in one run.
//!
//! A client pings the VIP every 10 ms (`ping -D -i 0.01`); the master (priority 150) dies (its
//! daemon SIGKILLed and its link set down at once, as a machine that loses power) and the outage is the largest gap between two replies, from ping's own
//! timestamps (10 ms resolution). Three client behaviours:
//! * `garp`: plain VIP on the parent; the client updates its ARP entry from the new master's
//!   gratuitous ARP (Linux does for an existing entry).
//! * `garp, client ignores GARP`: the same, but the client drops gratuitous ARPs for the VIP
//!   (an nft `arp` rule), as devices that ignore or rate-limit them do: it keeps the dead
//!   master's MAC until its neighbour entry expires and it asks again.
//! * `vmac, client ignores GARP`: `use_vmac`; the MAC never changes, so the GARPs are not needed.
//!
//! ```text
//! cargo build --release -p vrrpd --bins --examples
//! target-or-CARGO_TARGET_DIR/release/examples/vmac_bench --runs 3
//! ```
//! Needs root, iproute2, nftables and keepalived.

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::{conf, Impl, Inst, Lab};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Garp,
    GarpIgnored,
    VmacGarpIgnored,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Garp => "garp",
            Mode::GarpIgnored => "garp, client ignores GARP",
            Mode::VmacGarpIgnored => "vmac, client ignores GARP",
        }
    }
}

fn config(lab: &Lab, prio: u8, mode: Mode) -> String {
    let extra = if mode == Mode::VmacGarpIgnored {
        "    use_vmac\n"
    } else {
        ""
    };
    let inst = Inst {
        name: "interne",
        iface: "vlan10",
        vrid: 100,
        priority: prio,
        advert_int: "1",
        vips: vec![format!("{}/24", lab.vip(0))],
        extra,
    };
    conf(2, true, &[inst], &[])
}

/// Ping replies as they arrive: (arrival, ping's own timestamp in seconds).
struct Pinger {
    child: std::process::Child,
    replies: Arc<Mutex<Vec<(Instant, f64)>>>,
}

impl Pinger {
    fn start(lab: &Lab) -> Pinger {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.cl, "ping", "-n", "-D", "-i", "0.01"])
            .arg(lab.vip(0).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        let out = child.stdout.take().unwrap();
        let replies = Arc::new(Mutex::new(Vec::new()));
        let r = replies.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(ts) = reply_stamp(&line) {
                    r.lock().unwrap().push((Instant::now(), ts));
                }
            }
        });
        Pinger { child, replies }
    }

    /// Whether a reply arrived after `t`.
    fn replied_after(&self, t: Instant) -> bool {
        self.replies.lock().unwrap().iter().any(|(a, _)| *a > t)
    }

    /// The largest gap between two replies (seconds).
    fn outage(mut self) -> f64 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let v = self.replies.lock().unwrap();
        v.windows(2).map(|w| w[1].1 - w[0].1).fold(0.0, f64::max)
    }
}

/// `[1733243.123456] 64 bytes from ...`: the timestamp of a reply line.
fn reply_stamp(line: &str) -> Option<f64> {
    if !line.contains("bytes from") {
        return None;
    }
    line.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// The client drops gratuitous ARPs for the VIP (sender address = target address = VIP).
fn ignore_garp(lab: &Lab) {
    let vip = lab.vip(0).to_string();
    let nft = |cmd: &str| lab::sh(&["ip", "netns", "exec", &lab.cl, "nft", cmd]);
    nft("add table arp ignoregarp");
    nft("add chain arp ignoregarp in { type filter hook input priority 0; }");
    nft(&format!(
        "add rule arp ignoregarp in arp saddr ip {vip} arp daddr ip {vip} drop"
    ));
}

/// One crash failover: the outage the client saw (seconds).
fn one(vrrpd: &std::path::Path, imp: Impl, mode: Mode) -> f64 {
    let mut lab = Lab::new(&["vlan10"], vrrpd);
    for r in &lab.r {
        // As labwall sets for routers with a vmac (docs/labwall.md, VRRP VMAC), for both modes.
        lab::sh(&[
            "ip",
            "netns",
            "exec",
            r,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.arp_announce=2",
        ]);
    }
    if mode != Mode::Garp {
        ignore_garp(&lab);
    }
    lab.start(1, imp, &config(&lab, 100, mode));
    lab.start(0, imp, &config(&lab, 150, mode));
    lab.wait_holder(&[lab.vip(0)], 0, Duration::from_secs(20));
    let p = Pinger::start(&lab);
    std::thread::sleep(Duration::from_secs(2));
    // A dead machine: the daemon killed and its link gone at once (a killed daemon alone
    // leaves the VIP on the interface, still answering ARP).
    lab.crash(0);
    lab.link(0, 0, false);
    let t = Instant::now();
    while !lab.addrs(1).contains(&lab.vip(0)) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "r2 never took the VIP\n{}",
            lab.all_logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = Instant::now();
    while !p.replied_after(held) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the client never got through"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    p.outage()
}

fn main() {
    let Some(a) = lab::bench_args(
        "vmac_bench [--runs N] [--vrrpd PATH]\n  needs root, keepalived, nftables, iproute2; build first: cargo build --release -p vrrpd --bins --examples\n  example: vmac_bench --runs 3",
        3,
        false,
    ) else {
        return;
    };
    let (runs, vrrpd) = (a.runs, a.vrrpd);
    println!("| pair | failover | client outage on a master crash (ms) | mean (ms) |");
    println!("|---|---|---|---|");
    let mut means = Vec::new();
    for mode in [Mode::Garp, Mode::GarpIgnored, Mode::VmacGarpIgnored] {
        for imp in [Impl::Keepalived, Impl::Vrrpd] {
            eprintln!("measuring {} pair, {}", imp.name(), mode.name());
            let v: Vec<f64> = (0..runs).map(|_| one(&vrrpd, imp, mode)).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let list: Vec<String> = v.iter().map(|x| format!("{:.0}", x * 1000.0)).collect();
            println!(
                "| {} pair | {} | {} | {:.0} |",
                imp.name(),
                mode.name(),
                list.join(", "),
                mean * 1000.0
            );
            means.push((mode, imp, mean));
        }
    }
    let mean = |m: Mode, i: Impl| means.iter().find(|x| x.0 == m && x.1 == i).unwrap().2;
    for m in [Mode::Garp, Mode::GarpIgnored, Mode::VmacGarpIgnored] {
        let (v, k) = (mean(m, Impl::Vrrpd), mean(m, Impl::Keepalived));
        println!(
            "{}: outage vrrpd/keepalived = {:.3} ({:.0} ms vs {:.0} ms)",
            m.name(),
            v / k,
            v * 1000.0,
            k * 1000.0
        );
    }
    for i in [Impl::Keepalived, Impl::Vrrpd] {
        let (a, b) = (mean(Mode::VmacGarpIgnored, i), mean(Mode::GarpIgnored, i));
        println!(
            "{}: vmac/garp with a client that ignores GARP = {:.3} ({:.0} ms vs {:.0} ms)",
            i.name(),
            a / b,
            a * 1000.0,
            b * 1000.0
        );
    }
}
