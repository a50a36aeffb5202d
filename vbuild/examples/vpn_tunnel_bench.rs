//! Throughput and latency through the vpn appliance's tunnel against the same namespaces without
//! it, side by side in one run (as root):
//!
//!   cargo run --release -p vbuild --example vpn_tunnel_bench -- 5
//!
//! The lab of vbuild/tests/vpn_lab (the relay bench's): vpn1's generated network, ruleset,
//! tinyproxy and VLAN 10 OpenVPN server; alice's OpenVPN 2.6 client in `out`. The tunnel path:
//! out (172.16.10.130, tun0) -> TCP 443 tinyproxy -> 127.0.0.1:1110 openvpn -> tun10 ->
//! eth0.10 -> h10 172.16.10.21. The direct path: out (10.1.1.50) -> eth1, routed by the
//! appliance's kernel -> eth0.10 -> the same host, no tunnel: a source rule in `out`, a route
//! back in h10 and two bench-only forward rules in the appliance (its ruleset forwards nothing
//! from the outside). iperf3 (TCP, one stream) for throughput, ping for latency; the two paths
//! alternate, the order flipping every round. Prints each round, the medians and the ratios
//! (docs/benchmarks.md, "vpn tunnel").

#[path = "../tests/vpn_lab/mod.rs"]
mod vpn_lab;

use std::time::{Duration, Instant};
use vpn_lab::{can_run, MgmtResponder, VpnLab};

const HOST: &str = "172.16.10.21";
const TUNNEL_SRC: &str = "172.16.10.130";
const DIRECT_SRC: &str = "10.1.1.50";
/// iperf3 seconds per round and path (after one omitted second of slow start).
const SECS: u32 = 3;
/// pings per round and path.
const PINGS: u32 = 50;

fn have(b: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {b}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// Receiver-side throughput of one iperf3 run from `src`, in Mbit/s.
fn iperf(lab: &VpnLab, src: &str) -> f64 {
    let (t, o) = (SECS.to_string(), "1".to_string());
    let args = ["iperf3", "-c", HOST, "-B", src, "-t", &t, "-O", &o, "-J"];
    let out = lab.exec(&lab.out, &args).expect("iperf3");
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 -J");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("sum_received")
        / 1e6
}

/// Round-trip times of `PINGS` pings from `src`, in ms.
fn ping(lab: &VpnLab, src: &str) -> Vec<f64> {
    let n = PINGS.to_string();
    let args = ["ping", "-n", "-c", &n, "-i", "0.02", "-I", src, HOST];
    let out = lab.exec(&lab.out, &args).expect("ping");
    let rtt: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|x| x.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(rtt.len(), PINGS as usize, "lost pings from {src}:\n{out}");
    rtt
}

fn sh(lab: &VpnLab, ns: &str, cmd: &str) -> String {
    lab.exec(ns, &["sh", "-c", cmd]).expect(cmd)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    if !can_run() {
        std::process::exit(2);
    }
    if !have("iperf3") {
        eprintln!("skipped: needs iperf3 (apt-get install iperf3)");
        std::process::exit(2);
    }
    let mut lab = VpnLab::up("t").expect("lab");
    lab.start_relay().expect("relay");
    let sock = lab.start_server().expect("server");
    let _auth = MgmtResponder::start(&sock, &lab.site, &lab.vpn).expect("responder");
    lab.wait_listen(1110).expect("server listens");
    let profile = lab.client_profile(None).expect("profile");
    lab.connect(&profile, "client.log").expect("connect");
    // the direct path, bench-only: out's own source to the VLAN via the appliance, back via
    // its leg, and forwarding between eth1 and eth0.10 let in ahead of the generated rules
    let (vpn, out, h10) = (lab.vpn.clone(), lab.out.clone(), lab.h10.clone());
    sh(
        &lab,
        &out,
        "ip rule add from 10.1.1.50 to 172.16.10.0/24 lookup 100 priority 100",
    );
    sh(
        &lab,
        &out,
        "ip route add 172.16.10.0/24 via 10.1.1.20 dev o0 table 100",
    );
    sh(&lab, &h10, "ip route add 10.1.1.0/24 via 172.16.10.20");
    for (i, o) in [("eth1", "eth0.10"), ("eth0.10", "eth1")] {
        let r = format!("insert rule inet ramux_vpn forward iifname {i} oifname {o} accept");
        sh(&lab, &vpn, &format!("nft '{r}'"));
    }
    let tun = sh(
        &lab,
        &out,
        &format!("ip route get {HOST} from {TUNNEL_SRC}"),
    );
    let dir = sh(
        &lab,
        &out,
        &format!("ip route get {HOST} from {DIRECT_SRC}"),
    );
    assert!(tun.contains("dev tun0"), "the tunnel path: {tun}");
    assert!(
        dir.contains("via 10.1.1.20 dev o0"),
        "the direct path: {dir}"
    );
    lab.spawn(&h10, &["iperf3", "-s", "-B", HOST], "iperf3.log")
        .expect("iperf3 -s");
    let t0 = Instant::now();
    while !sh(&lab, &h10, "ss -ltn").contains(&format!("{HOST}:5201 ")) {
        assert!(t0.elapsed() < Duration::from_secs(10), "iperf3 -s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let paths = [("tunnel", TUNNEL_SRC), ("direct", DIRECT_SRC)];
    let mut bw: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut rtt: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..n {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let (what, src) = paths[k];
            let mbit = iperf(&lab, src);
            let r = ping(&lab, src);
            println!(
                "round {round}: {what}  {mbit:8.0} Mbit/s  ping median {:.3} ms p95 {:.3} ms",
                quantile(&r, 0.5),
                quantile(&r, 0.95)
            );
            bw[k].push(mbit);
            rtt[k].extend(r);
        }
    }
    let m = |v: &[f64]| quantile(v, 0.5);
    for (k, (what, _)) in paths.iter().enumerate() {
        println!(
            "{what}: throughput median {:.0} Mbit/s ({:.0}..{:.0}), ping median {:.3} ms p95 {:.3} ms ({} pings)",
            m(&bw[k]),
            quantile(&bw[k], 0.0),
            quantile(&bw[k], 1.0),
            m(&rtt[k]),
            quantile(&rtt[k], 0.95),
            rtt[k].len()
        );
    }
    println!(
        "ratio: throughput direct/tunnel {:.1}x, ping median tunnel/direct {:.1}x, p95 {:.1}x",
        m(&bw[1]) / m(&bw[0]),
        m(&rtt[0]) / m(&rtt[1]),
        quantile(&rtt[0], 0.95) / quantile(&rtt[1], 0.95)
    );
}
