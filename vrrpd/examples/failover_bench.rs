//! Failover benchmark: keepalived pair, vrrpd pair and both mixed pairs, side by side
//! in one run, at VRRPv2 advert_int 1 s and VRRPv3 100 ms.
//!
//! For each failover it measures, from a capture socket in the client namespace, the time from
//! the master's last advertisement on the wire to the backup's first gratuitous ARP and to its
//! first answer to the client's ARP requests (sent every 5 ms), using the kernel's receive
//! timestamps (SO_TIMESTAMPNS), next to the theoretical
//! Master_Down_Interval; and on clean shutdown, from the priority-0 advert to the backup's answer
//! (theory: Skew_Time).
//!
//! ```text
//! cargo build --release -p vrrpd --bins --examples
//! target-or-CARGO_TARGET_DIR/release/examples/failover_bench --runs 3
//! ```
//! Needs root, iproute2 and keepalived (Debian packages iproute2, keepalived).

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::{conf, Impl, Inst, Lab};
use vrrpd::sys::PacketSocket;
use vrrpd::wire::{self, Arp};

#[derive(Debug, Clone, Copy)]
enum Ev {
    Advert { src: Ipv4Addr, prio: u8 },
    Garp { mac: [u8; 6] },
    Reply { mac: [u8; 6] },
}

struct Capture {
    events: Arc<Mutex<Vec<(Duration, Ev)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    /// Capture on the client's bridge and probe `vip` with ARP requests every 5 ms.
    fn start(ns: &str, vip: Ipv4Addr, client_ip: Ipv4Addr) -> Capture {
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ev, st) = (events.clone(), stop.clone());
        let nsfile = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns file");
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on this thread only, with a valid netns fd.
            let r = unsafe { libc::setns(nsfile.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let mut nl = vrrpd::netlink::Netlink::open().unwrap();
            let br = nl
                .links()
                .unwrap()
                .into_iter()
                .find(|l| l.name == "br0")
                .expect("br0");
            let sock = PacketSocket::capture(br.index).unwrap();
            sock.enable_timestamps().unwrap();
            let tx = PacketSocket::sender().unwrap();
            let probe = wire::arp_request_frame(br.mac, client_ip, vip);
            let mut next_probe = Instant::now();
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                if Instant::now() >= next_probe {
                    let _ = tx.send(br.index, &probe);
                    next_probe += Duration::from_millis(5);
                }
                let _ = vrrpd::sys::poll_readable(&[sock.fd.as_raw_fd()], 1);
                while let Ok(Some((n, outgoing, now))) = sock.recv_stamped(&mut buf) {
                    if outgoing {
                        continue;
                    }
                    let f = &buf[..n];
                    if let Some(a) = Arp::parse_frame(f) {
                        if a.sender_ip == vip {
                            let e = if a.op == 2 {
                                Ev::Reply { mac: a.sender_mac }
                            } else {
                                Ev::Garp { mac: a.sender_mac }
                            };
                            ev.lock().unwrap().push((now, e));
                        }
                    } else if f.len() > 14 && f[12..14] == [0x08, 0x00] {
                        if let Some(h) = wire::Ipv4Header::parse(&f[14..]) {
                            if h.protocol == wire::IPPROTO_VRRP && f.len() > 14 + h.header_len + 2 {
                                let prio = f[14 + h.header_len + 2];
                                ev.lock()
                                    .unwrap()
                                    .push((now, Ev::Advert { src: h.src, prio }));
                            }
                        }
                    }
                }
            }
        });
        Capture {
            events,
            stop,
            thread: Some(thread),
        }
    }

    fn snapshot(&self) -> Vec<(Duration, Ev)> {
        self.events.lock().unwrap().clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wall-clock now, comparable with the kernel's SO_TIMESTAMPNS packet stamps.
#[allow(clippy::disallowed_methods)] // packet stamps are CLOCK_REALTIME: the one place it is needed
fn wall() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(p, 16).unwrap();
    }
    m
}

struct Sample {
    /// last advert -> first GARP, last advert -> first ARP reply (seconds)
    garp: f64,
    reply: f64,
}

/// Wait until the capture shows r2 answering ARP after `after`; return the sample measured from
/// the last r1 advert (with priority `prio0`: any if false, 0 if true) before that.
fn measure(
    cap: &Capture,
    after: Duration,
    r1: Ipv4Addr,
    r2mac: [u8; 6],
    prio0: bool,
    timeout: Duration,
) -> Option<Sample> {
    let t = Instant::now();
    loop {
        let ev = cap.snapshot();
        let reply = ev
            .iter()
            .find(|(ts, e)| *ts > after && matches!(e, Ev::Reply { mac } if *mac == r2mac))
            .map(|x| x.0);
        if let Some(reply) = reply {
            let garp = ev
                .iter()
                .find(|(ts, e)| *ts > after && matches!(e, Ev::Garp { mac } if *mac == r2mac))
                .map(|x| x.0)
                .unwrap_or(reply);
            let last = ev
                .iter()
                .filter(|(ts, e)| {
                    *ts < garp.min(reply)
                        && matches!(e, Ev::Advert { src, prio } if *src == r1 && (!prio0 || *prio == 0))
                })
                .map(|x| x.0)
                .next_back()?;
            return Some(Sample {
                garp: (garp - last).as_secs_f64(),
                reply: (reply - last).as_secs_f64(),
            });
        }
        if t.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Row {
    pair: String,
    timing: &'static str,
    theory_mdi: f64,
    theory_skew: f64,
    crash: Vec<Sample>,
    clean: Vec<Sample>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn run_pair(vrrpd: &std::path::Path, imps: [Impl; 2], version: u8, adv: &str, runs: usize) -> Row {
    let mut lab = Lab::new(&["vlan10"], vrrpd);
    let vip = lab.vip(0);
    let mk = |prio: u8| {
        conf(
            version,
            version == 2,
            &[Inst {
                name: "bench",
                iface: "vlan10",
                vrid: 42,
                priority: prio,
                advert_int: adv,
                vips: vec![format!("{vip}/24 dev vlan10")],
                extra: "",
            }],
            &[],
        )
    };
    let (c1, c2) = (mk(150), mk(100));
    let adv_s: f64 = adv.parse().unwrap();
    // r2 (priority 100) is the one that takes over.
    let skew = if version == 2 {
        156.0 / 256.0
    } else {
        adv_s * 156.0 / 256.0
    };
    let mdi = 3.0 * adv_s + skew;
    let cap = Capture::start(&lab.cl, vip, lab.addr(0, 100));
    lab.start(1, imps[1], &c2);
    lab.start(0, imps[0], &c1);
    let wait = Duration::from_secs_f64(mdi * 3.0 + 3.0);
    lab.wait_holder(&[vip], 0, wait);
    let r1 = lab.addr(0, 2);
    let r2mac = parse_mac(&lab.mac(1, 0));
    let mut row = Row {
        pair: format!("{} -> {}", imps[0].name(), imps[1].name()),
        timing: if version == 2 {
            "v2 advert_int 1 s"
        } else {
            "v3 advert_int 100 ms"
        },
        theory_mdi: mdi,
        theory_skew: skew,
        crash: vec![],
        clean: vec![],
    };
    for run in 0..runs {
        // Crash at a varying point of the advert interval.
        std::thread::sleep(Duration::from_secs_f64(
            adv_s * (2.0 + (run as f64 * 0.37) % 1.0),
        ));
        let t = wall();
        lab.crash(0);
        match measure(
            &cap,
            t,
            r1,
            r2mac,
            false,
            Duration::from_secs_f64(mdi + 3.0),
        ) {
            Some(s) => row.crash.push(s),
            None => eprintln!("{}: crash run {run}: no takeover seen", row.pair),
        }
        lab.start(0, imps[0], &c1);
        lab.wait_holder(&[vip], 0, wait);
        std::thread::sleep(Duration::from_secs_f64(adv_s * 3.0));
        let t = wall();
        lab.stop(0);
        match measure(
            &cap,
            t - Duration::from_millis(1),
            r1,
            r2mac,
            true,
            Duration::from_secs_f64(mdi + 3.0),
        ) {
            Some(s) => row.clean.push(s),
            None => eprintln!("{}: clean run {run}: no handover seen", row.pair),
        }
        lab.start(0, imps[0], &c1);
        lab.wait_holder(&[vip], 0, wait);
        eprintln!(
            "  {} {}: run {}/{} done",
            row.pair,
            row.timing,
            run + 1,
            runs
        );
    }
    drop(cap);
    row
}

fn main() {
    let Some(a) = lab::bench_args(
        "failover_bench [--runs N] [--vrrpd PATH] [--json]\n  needs root, keepalived, iproute2; build first: cargo build --release -p vrrpd --bins --examples",
        3,
        true,
    ) else {
        return;
    };
    let (runs, vrrpd, json) = (a.runs, a.vrrpd, a.json);
    let pairs = [
        [Impl::Keepalived, Impl::Keepalived],
        [Impl::Vrrpd, Impl::Vrrpd],
        [Impl::Keepalived, Impl::Vrrpd],
        [Impl::Vrrpd, Impl::Keepalived],
    ];
    let mut rows = Vec::new();
    for (version, adv) in [(2u8, "1"), (3u8, "0.1")] {
        for imps in pairs {
            eprintln!(
                "measuring {} -> {} (v{version}, advert_int {adv})",
                imps[0].name(),
                imps[1].name()
            );
            rows.push(run_pair(&vrrpd, imps, version, adv, runs));
        }
    }
    let ms = |x: f64| x * 1000.0;
    println!("| master -> backup | timing | theory MDI (ms) | crash: last advert -> GARP (ms) | crash: last advert -> ARP reply (ms) | over theory (ms) | theory skew (ms) | clean: prio 0 -> ARP reply (ms) |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let g: Vec<f64> = r.crash.iter().map(|s| ms(s.garp)).collect();
        let rep: Vec<f64> = r.crash.iter().map(|s| ms(s.reply)).collect();
        let cl: Vec<f64> = r.clean.iter().map(|s| ms(s.reply)).collect();
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {} | {:.0} | {} | {} (mean {:.0}) | {:+.0} | {:.0} | {} (mean {:.0}) |",
            r.pair,
            r.timing,
            ms(r.theory_mdi),
            f(&g),
            f(&rep),
            mean(&rep),
            mean(&rep) - ms(r.theory_mdi),
            ms(r.theory_skew),
            f(&cl),
            mean(&cl)
        );
    }
    for timing in ["v2 advert_int 1 s", "v3 advert_int 100 ms"] {
        let get = |p: &str| {
            rows.iter()
                .find(|r| r.pair == p && r.timing == timing)
                .map(|r| mean(&r.crash.iter().map(|s| s.reply).collect::<Vec<_>>()))
        };
        if let (Some(k), Some(v)) = (get("keepalived -> keepalived"), get("vrrpd -> vrrpd")) {
            println!(
                "{timing}: crash failover vrrpd/keepalived = {:.3} ({:.0} ms vs {:.0} ms)",
                v / k,
                ms(v),
                ms(k)
            );
        }
        let getc = |p: &str| {
            rows.iter()
                .find(|r| r.pair == p && r.timing == timing)
                .map(|r| mean(&r.clean.iter().map(|s| s.reply).collect::<Vec<_>>()))
        };
        if let (Some(k), Some(v)) = (getc("keepalived -> keepalived"), getc("vrrpd -> vrrpd")) {
            println!(
                "{timing}: clean handover vrrpd/keepalived = {:.3} ({:.0} ms vs {:.0} ms)",
                v / k,
                ms(v),
                ms(k)
            );
        }
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "pair": r.pair, "timing": r.timing, "theory_mdi_s": r.theory_mdi, "theory_skew_s": r.theory_skew,
                    "crash_garp_s": r.crash.iter().map(|s| s.garp).collect::<Vec<_>>(),
                    "crash_reply_s": r.crash.iter().map(|s| s.reply).collect::<Vec<_>>(),
                    "clean_reply_s": r.clean.iter().map(|s| s.reply).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
    }
}
