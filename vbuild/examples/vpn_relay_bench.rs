//! Connect time of a real OpenVPN 2.6 client to the vpn appliance's VLAN 10 server, through the
//! generated tinyproxy relay (443, CONNECT) and through a plain TCP relay (socat, no CONNECT)
//! side by side, alternating, in the namespaces of vbuild/tests/vpn_lab (as root):
//!
//!   cargo run --release -p vbuild --example vpn_relay_bench -- 10
//!
//! Prints each round, the medians and their ratio (docs/benchmarks.md, "vpn relay").

#[path = "../tests/vpn_lab/mod.rs"]
mod vpn_lab;

use std::time::Duration;
use vpn_lab::{can_run, MgmtResponder, VpnLab};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    if !can_run() {
        std::process::exit(2);
    }
    let mut lab = VpnLab::up("b").expect("lab");
    lab.start_relay().expect("relay");
    let sock = lab.start_server().expect("server");
    let _auth = MgmtResponder::start(&sock, &lab.site, &lab.vpn).expect("responder");
    lab.wait_listen(1110).expect("server listens");
    // the plain relay: bench-only, on 8443, let in by one inserted rule
    let vpn = lab.vpn.clone();
    let rule = "insert rule inet ramux_vpn input iifname eth1 tcp dport 8443 accept";
    lab.exec(&vpn, &["sh", "-c", &format!("nft '{rule}'")])
        .expect("nft");
    let l = "TCP-LISTEN:8443,bind=10.1.1.20,reuseaddr,fork";
    lab.spawn(&vpn, &["socat", l, "TCP:127.0.0.1:1110"], "socat.log")
        .expect("socat");
    lab.wait_listen(8443).expect("socat listens");
    let proxied = lab.client_profile(None).expect("profile");
    let plain = lab.client_profile(Some("10.1.1.20 8443")).expect("profile");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n {
        for (p, v, what) in [(&proxied, &mut a, "relay"), (&plain, &mut b, "plain")] {
            let t = lab
                .connect(p, &format!("c{i}-{what}.log"))
                .expect("connect");
            lab.stop_last();
            std::thread::sleep(Duration::from_millis(300));
            println!("round {i}: {what:5} {:6} ms", t.as_millis());
            v.push(t);
        }
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "median: through the relay {} ms ({}..{}), plain TCP relay {} ms ({}..{}), ratio {:.1}x",
        ma.as_millis(),
        a[0].as_millis(),
        a[n - 1].as_millis(),
        mb.as_millis(),
        b[0].as_millis(),
        b[n - 1].as_millis(),
        ma.as_secs_f64() / mb.as_secs_f64()
    );
}
