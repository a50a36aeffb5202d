//! ramux-vpn-auth against the old method (a synchronous client-connect script running
//! radclient), side by side in one run, alternating rounds, on the lab of tests/common:
//! 1. the largest gap a connected user (alice, pinging every 10 ms) sees while another
//!    user's RADIUS check times out (FreeRADIUS stopped with SIGSTOP; both wait 1 s);
//! 2. the connect time of a client (start of the OpenVPN client to its
//!    "Initialization Sequence Completed") with RADIUS up.
//!
//! As root: `cargo bench -p ramux-vpn-auth --bench auth` (ROUNDS=N, default 5).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{ping_gaps, Lab};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Daemon,
    Script,
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut lab = Lab::new("b");
    lab.nice = false;
    lab.openvpn = None;
    let (mut stall, mut connect) = ([vec![], vec![]], [vec![], vec![]]);
    for r in 0..rounds {
        for mode in [Mode::Daemon, Mode::Script] {
            serve(&mut lab, mode);
            let i = mode as usize;
            connect[i].push(connect_time(&lab));
            stall[i].push(stall_during_timeout(&lab));
            eprintln!(
                "round {r} {}: connect {:?}, stall {:?}",
                name(mode),
                connect[i].last().unwrap(),
                stall[i].last().unwrap()
            );
        }
    }
    report(
        "largest ping gap of a connected user while another's RADIUS check times out",
        &stall,
    );
    report("client connect time (RADIUS up)", &connect);
}

fn name(m: Mode) -> &'static str {
    match m {
        Mode::Daemon => "ramux-vpn-auth",
        Mode::Script => "client-connect script",
    }
}

/// A fresh OpenVPN server for `mode` (and the daemon with 1000 ms x 1 try, like radclient -t 1 -r 1).
fn serve(lab: &mut Lab, mode: Mode) {
    lab.auth = None;
    lab.openvpn = None;
    std::thread::sleep(Duration::from_millis(200));
    match mode {
        Mode::Daemon => {
            lab.openvpn = Some(lab.start_openvpn());
            let conf = lab.auth_conf("172.16.10.10:1812", 1000, 1);
            lab.start_auth(&conf);
            common::wait_log(
                &lab.path("server.log"),
                "Initialization Sequence Completed",
                WAIT,
            );
        }
        Mode::Script => lab.openvpn = Some(lab.start_openvpn_script(1)),
    }
}

fn connect_time(lab: &Lab) -> Duration {
    let mut a = lab.client("alice");
    let t = lab
        .wait_client("alice", &mut a, WAIT)
        .expect("alice connects");
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    t
}

fn stall_during_timeout(lab: &Lab) -> Duration {
    let mut a = lab.client("alice");
    lab.wait_client("alice", &mut a, WAIT)
        .expect("alice connects");
    common::wait_for(
        WAIT,
        || lab.kernel_entries("172.16.10.130").contains("proxy"),
        "alice routed",
    );
    let ns = lab.ns_of("alice").name.clone();
    let ping = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "ping",
            "-D",
            "-i",
            "0.01",
            "-w",
            "4",
            "172.16.10.5",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = lab.radius_pid() as i32;
    // SAFETY: kill(2) on FreeRADIUS, a child of this process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let t0 = Instant::now();
    let mut c = lab.client("carol");
    let r = lab.wait_client("carol", &mut c, WAIT);
    let refused_in = t0.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(r.is_err(), "carol accepted with RADIUS stopped");
    let out = ping.wait_with_output().unwrap();
    let (gap, n) = ping_gaps(&String::from_utf8_lossy(&out.stdout));
    eprintln!("  carol refused in {refused_in:?}; alice {n} replies");
    drop(c);
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    gap
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn report(what: &str, v: &[Vec<Duration>; 2]) {
    let (d, s) = (median(&v[0]), median(&v[1]));
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!("{what} (median of {}):", v[0].len());
    println!(
        "  ramux-vpn-auth        {:8.1} ms  (all: {:?})",
        ms(d),
        v[0].iter().map(|x| ms(*x).round()).collect::<Vec<_>>()
    );
    println!(
        "  client-connect script {:8.1} ms  (all: {:?})",
        ms(s),
        v[1].iter().map(|x| ms(*x).round()).collect::<Vec<_>>()
    );
    println!("  ratio script / daemon {:8.1}x", ms(s) / ms(d).max(0.001));
}
