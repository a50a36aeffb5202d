//! Health-check failover benchmark: a keepalived pair and a vrrpd pair side by side in one
//! run (docs/benchmarks.md, vrrpd health checks).
//!
//! r1 (priority 150) and r2 (100) track a check that succeeds while a flag file exists
//! (`interval 1`, `fall 2`, `rise 2`, VRRPv2 `advert_int 1`). Removing r1's flag makes the
//! check fail; measured are the time from the removal, and from the start of the check's
//! `fall`-th failing run (a stamp the check writes itself), to r2 owning the VIP (polling
//! `ip addr` in r2's namespace every 5 ms). Two modes: `weight -60` (r1 drops to 90, r2 stops
//! accepting its adverts and takes over one Master_Down_Interval after the last accepted one)
//! and weight 0 (r1 goes FAULT and resigns: r2 takes over after its Skew_Time).
//!
//! ```text
//! cargo build --release -p vrrpd --bins --examples
//! target-or-CARGO_TARGET_DIR/release/examples/health_bench --runs 5
//! ```
//! Needs root, iproute2 and keepalived (Debian packages iproute2, keepalived).

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{conf, Impl, Inst, Lab};

const FALL: usize = 2;

/// One instance on vlan10 tracking `chk`, which runs `check FLAG STAMPS`.
fn config(lab: &Lab, prio: u8, check: &Path, flag: &Path, stamps: &Path, weight: i32) -> String {
    let c = conf(
        2,
        true,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: "1",
            vips: vec![format!("{}/24 dev vlan10", lab.vip(0))],
            extra: "    track_script {\n        chk\n    }\n",
        }],
        &[],
    );
    format!(
        "vrrp_script chk {{\n    script \"{} {} {}\"\n    interval 1\n    fall {FALL}\n    rise 2\n    weight {weight}\n}}\n{c}",
        check.display(),
        flag.display(),
        stamps.display()
    )
}

/// Wall-clock time: the check's stamps come from `date +%s.%N` in another process, so both
/// sides must read the same clock (only differences of a few seconds are used).
#[allow(clippy::disallowed_methods)]
fn now_real() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Start times of the check's runs (realtime seconds, written by the check itself).
fn stamps(p: &Path) -> Vec<f64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

struct Sample {
    /// Flag removed -> r2 owns the VIP.
    from_removal: f64,
    /// Start of the `fall`-th failing run -> r2 owns the VIP.
    from_bad: f64,
}

/// Poll router `ri`'s addresses every 5 ms until it has the VIP; the realtime then.
fn wait_owner(lab: &Lab, ri: usize, timeout: Duration) -> f64 {
    let t = Instant::now();
    let vip = lab.vip(0);
    loop {
        if lab.addrs(ri).contains(&vip) {
            return now_real();
        }
        assert!(
            t.elapsed() < timeout,
            "r{} never got the VIP\n{}",
            ri + 1,
            lab.all_logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `runs` failovers of a pair of `imp` with the check's `weight`.
fn run_pair(vrrpd: &Path, imp: Impl, weight: i32, runs: usize) -> Vec<Sample> {
    let mut lab = Lab::new(&["vlan10"], vrrpd);
    let check = lab.write(
        "check.sh",
        "#!/bin/sh\ndate +%s.%N >> \"$2\"\ntest -e \"$1\"\n",
    );
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (f1, f2) = (lab.dir.join("r1-ok"), lab.dir.join("r2-ok"));
    let (s1, s2) = (lab.dir.join("r1-runs"), lab.dir.join("r2-runs"));
    std::fs::write(&f1, "").unwrap();
    std::fs::write(&f2, "").unwrap();
    lab.start(1, imp, &config(&lab, 100, &check, &f2, &s2, weight));
    lab.start(0, imp, &config(&lab, 150, &check, &f1, &s1, weight));
    let mut out = Vec::new();
    for _ in 0..runs {
        lab.wait_holder(&[lab.vip(0)], 0, Duration::from_secs(20));
        // A random phase against the check's 1 s schedule, as a real failure would have.
        let phase = (now_real().fract() * 1000.0) as u64;
        std::thread::sleep(Duration::from_millis(2000 + phase));
        let removed = now_real();
        std::fs::remove_file(&f1).unwrap();
        let owned = wait_owner(&lab, 1, Duration::from_secs(15));
        let failing: Vec<f64> = stamps(&s1).into_iter().filter(|t| *t > removed).collect();
        let bad = failing.get(FALL - 1).copied().unwrap_or(f64::NAN);
        out.push(Sample {
            from_removal: owned - removed,
            from_bad: owned - bad,
        });
        std::fs::write(&f1, "").unwrap();
    }
    out
}

/// "a, b, c (mean m)" in ms, and the mean in seconds.
fn summary(v: &[f64]) -> (String, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let list: Vec<String> = v.iter().map(|x| format!("{:.0}", x * 1000.0)).collect();
    (
        format!("{} (mean {:.0})", list.join(", "), mean * 1000.0),
        mean,
    )
}

fn main() {
    let Some(a) = lab::bench_args(
        "health_bench [--runs N] [--vrrpd PATH]\n  needs root, keepalived, iproute2; build first: cargo build --release -p vrrpd --bins --examples",
        5,
        false,
    ) else {
        return;
    };
    let (runs, vrrpd) = (a.runs, a.vrrpd);
    println!("| pair | check weight | theory, check bad -> VIP (ms) | flag removed -> peer owns VIP (ms) | check bad -> peer owns VIP (ms) |");
    println!("|---|---|---|---|---|");
    let mut means = Vec::new();
    for (weight, theory) in [
        (-60, "2609-3609 (MDI 3609 after the last advert at 150)"),
        (0, "609 (Skew_Time)"),
    ] {
        for imp in [Impl::Keepalived, Impl::Vrrpd] {
            eprintln!("measuring {} pair, weight {weight}", imp.name());
            let s = run_pair(&vrrpd, imp, weight, runs);
            let (a, _) = summary(&s.iter().map(|x| x.from_removal).collect::<Vec<_>>());
            let (b, mb) = summary(&s.iter().map(|x| x.from_bad).collect::<Vec<_>>());
            println!("| {} pair | {weight} | {theory} | {a} | {b} |", imp.name());
            means.push((weight, mb));
        }
    }
    for w in [-60, 0] {
        let m: Vec<f64> = means.iter().filter(|x| x.0 == w).map(|x| x.1).collect();
        println!(
            "weight {w}: check bad -> VIP, vrrpd/keepalived = {:.3} ({:.0} ms vs {:.0} ms)",
            m[1] / m[0],
            m[1] * 1000.0,
            m[0] * 1000.0
        );
    }
}
