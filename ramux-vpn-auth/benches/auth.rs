//! ramux-vpn-auth against the two methods of the research (docs/benchmarks.md, "vpn
//! authorisation"): a synchronous client-connect script running radclient, and the same check
//! as OpenVPN's deferred client-connect (the script writes `2` into
//! `$client_connect_deferred_file` and returns at once; a background job runs the same check,
//! writes `$client_connect_config_file`, then `1` or `0`). Side by side in one run, the three
//! methods alternating in every round, on the lab of tests/common:
//! 1. the largest gap a connected user (alice, pinging every 10 ms) sees while another
//!    user's RADIUS check times out (FreeRADIUS stopped with SIGSTOP; all wait 1 s), and the
//!    time until that user is refused (RADIUS down: it never answers);
//! 2. the connect time of a client (start of the OpenVPN client to its
//!    "Initialization Sequence Completed") with RADIUS up;
//! 3. the same with RADIUS slow: FreeRADIUS stopped (SIGSTOP) when the client starts and
//!    continued (SIGCONT) 700 ms later, inside the 1 s every method waits.
//!
//! As root: `cargo bench -p ramux-vpn-auth --bench auth` (ROUNDS=N, default 5).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{ping_gaps, Lab};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
/// How long FreeRADIUS stays stopped in the "RADIUS slow" connect.
const SLOW: Duration = Duration::from_millis(700);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Daemon,
    Script,
    Deferred,
}
const MODES: [Mode; 3] = [Mode::Daemon, Mode::Script, Mode::Deferred];

/// One sample per round and method (indexed by `Mode as usize`).
type Samples = [Vec<Duration>; 3];

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut lab = Lab::new("b");
    lab.nice = false;
    lab.openvpn = None;
    let mut stall: Samples = Default::default();
    let mut refusal: Samples = Default::default();
    let mut connect: Samples = Default::default();
    let mut slow: Samples = Default::default();
    for r in 0..rounds {
        for mode in MODES {
            serve(&mut lab, mode);
            let i = mode as usize;
            connect[i].push(connect_time(&lab, None));
            slow[i].push(connect_time(&lab, Some(SLOW)));
            let (gap, refused_in) = stall_during_timeout(&lab);
            stall[i].push(gap);
            refusal[i].push(refused_in);
            eprintln!(
                "round {r} {}: connect {:?}, slow {:?}, stall {:?}, refused in {:?}",
                name(mode),
                connect[i].last().unwrap(),
                slow[i].last().unwrap(),
                stall[i].last().unwrap(),
                refusal[i].last().unwrap()
            );
        }
    }
    lab.openvpn = None;
    report(
        "largest ping gap of a connected user while another's RADIUS check times out",
        &stall,
    );
    report("client connect time (RADIUS up)", &connect);
    report(
        "client connect time (RADIUS slow: stopped 700 ms from the client's start)",
        &slow,
    );
    report(
        "time to refusal (RADIUS down: stopped, never answers; 1 s timeout)",
        &refusal,
    );
}

fn name(m: Mode) -> &'static str {
    match m {
        Mode::Daemon => "ramux-vpn-auth",
        Mode::Script => "client-connect script",
        Mode::Deferred => "deferred client-connect",
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
        Mode::Deferred => {
            lab.openvpn = Some(lab.start_openvpn_script(1));
            defer_client_connect(lab);
        }
    }
}

/// Turns the lab's synchronous client-connect script into a deferred one: the server's
/// `client-connect` path now names a wrapper that writes `2` (pending) and returns at once,
/// while a background job runs the unchanged synchronous check (it writes the config file
/// itself) and then puts `1` or `0` into the deferred file, through a rename so that OpenVPN
/// never reads a half-written file. The server, learn-address and radclient's 1 s x 1 try are
/// those of the synchronous method.
fn defer_client_connect(lab: &Lab) {
    let cc = lab.path("client-connect.sh");
    let sync = lab.path("client-connect-sync.sh");
    std::fs::rename(&cc, &sync).unwrap();
    let wrapper = format!(
        "#!/bin/sh\n# deferred client-connect: pending now, the synchronous check in the background.\n\
         f=$client_connect_deferred_file\n\
         echo 2 > \"$f\"\n\
         ( if {sync} \"$client_connect_config_file\"; then r=1; else r=0; fi\n\
           echo $r > \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\" ) </dev/null >/dev/null 2>&1 &\n\
         exit 0\n",
        sync = sync.display()
    );
    std::fs::write(&cc, wrapper).unwrap();
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// SIGSTOP or SIGCONT to FreeRADIUS (`pid`: [`Lab::radius_pid`]).
fn radius_signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on FreeRADIUS's pid, a child of this process that is not yet reaped.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Alice's connect time; with `stop`, FreeRADIUS is stopped from her start for that long.
fn connect_time(lab: &Lab, stop: Option<Duration>) -> Duration {
    let pid = lab.radius_pid();
    let t = std::thread::scope(|s| {
        if let Some(d) = stop {
            radius_signal(pid, libc::SIGSTOP);
            s.spawn(move || {
                std::thread::sleep(d);
                radius_signal(pid, libc::SIGCONT);
            });
        }
        let mut a = lab.client("alice");
        let t = lab.wait_client("alice", &mut a, WAIT);
        drop(a);
        t
    });
    let t = t.expect("alice connects");
    if let Some(d) = stop {
        assert!(t >= d, "alice connected in {t:?} with RADIUS stopped {d:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    t
}

/// The largest gap in alice's pings while carol's RADIUS check times out, and carol's time
/// to refusal.
fn stall_during_timeout(lab: &Lab) -> (Duration, Duration) {
    let mut a = lab.client("alice");
    lab.wait_client("alice", &mut a, WAIT)
        .expect("alice connects");
    common::wait_for(
        WAIT,
        || lab.kernel_entries("172.16.10.130").contains("proxy"),
        "alice routed",
    );
    let ns = lab.ns_of("alice").name.clone();
    // 6 s: the deferred method's refusal comes later than the others'.
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
            "6",
            "172.16.10.5",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = lab.radius_pid();
    radius_signal(pid, libc::SIGSTOP);
    let t0 = Instant::now();
    let mut c = lab.client("carol");
    let r = lab.wait_client("carol", &mut c, WAIT);
    let refused_in = t0.elapsed();
    radius_signal(pid, libc::SIGCONT);
    assert!(r.is_err(), "carol accepted with RADIUS stopped");
    let out = ping.wait_with_output().unwrap();
    let (gap, n) = ping_gaps(&String::from_utf8_lossy(&out.stdout));
    eprintln!("  carol refused in {refused_in:?}; alice {n} replies");
    drop(c);
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    (gap, refused_in)
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn report(what: &str, v: &Samples) {
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let daemon = ms(median(&v[Mode::Daemon as usize])).max(0.001);
    println!("{what} (median of {}):", v[0].len());
    for mode in MODES {
        let s = &v[mode as usize];
        println!(
            "  {:<24} {:8.1} ms  (all: {:?})",
            name(mode),
            ms(median(s)),
            s.iter().map(|x| ms(*x).round()).collect::<Vec<_>>()
        );
    }
    for mode in [Mode::Script, Mode::Deferred] {
        println!(
            "  ratio {} / daemon {:8.2}x",
            name(mode),
            ms(median(&v[mode as usize])) / daemon
        );
    }
    let (s, d) = (
        ms(median(&v[Mode::Script as usize])),
        ms(median(&v[Mode::Deferred as usize])),
    );
    println!("  ratio deferred / script {:8.2}x", d / s.max(0.001));
}
