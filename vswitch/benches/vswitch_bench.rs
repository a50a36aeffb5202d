//! vswitch vs Debian's vde_switch, side by side in one run, over the VDE data path.
//!
//! For each contestant and frame size (64 B, 1500 B): a sender thread blasts unicast frames
//! port 1 -> port 2 for `--secs` seconds (blocking send, so the switch's ingress queue
//! back-pressures the sender), a receiver thread counts them (sequence-checked); then a
//! ping-pong latency run (one frame in flight). Switch CPU time comes from
//! /proc/<pid>/stat (utime+stime); idle is the share of both cores nobody used. Finally RSS
//! with 64 connected ports. Rounds alternate between the contestants and the median is
//! reported with the ratio.
//!
//! The third contestant, the "floor relay", is not a switch: a child process that moves
//! datagrams from one unix socket to another with recvmmsg/sendmmsg and nothing else. The
//! VDE data path costs every switch one datagram in and one out per frame, so its CPU per
//! frame is the least any VDE switch can spend on this kernel, and its delivered rate the
//! most this generator can push through any switch on these cores.
//!
//! Run: `cargo bench -p vswitch --bench vswitch_bench -- [--secs 3] [--rounds 3] [--batch 32]
//! [--sizes 64,1500] [--pin]`
//! (`--batch 1` = one send()/recv() per frame, like QEMU, which writes one frame per syscall;
//! `--pin` puts the switch on CPU 0 and the generator's two threads on CPU 1, so the
//! generator cannot preempt the switch and the switch has a core of its own).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch::client::VdeClient;
use vswitch::wire::{EthernetRepr, PortRequest};

struct Sw {
    child: Child,
    dir: PathBuf,
}

impl Drop for Sw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(name: &'static str, program: &str, extra: &[&str], base: &Path) -> Sw {
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("sw");
    let child = Command::new(program)
        .arg("-s")
        .arg(&sock)
        .arg("-M")
        .arg(dir.join("mgmt"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("start {program}: {e} (vde_switch is in the Debian package vde2)")
        });
    let t = Instant::now();
    while !sock.join("ctl").exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "{name} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    Sw { child, dir }
}

impl Sw {
    fn sock(&self) -> PathBuf {
        self.dir.join("sw")
    }
    fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// utime+stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// (idle, total) jiffies of all CPUs from /proc/stat: idle time shows whether the cores
/// were saturated (CPU-bound) or waiting on each other's wake-ups (latency-bound).
fn cpu_idle_total() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (v[3] + v[4], v.iter().sum())
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

const SRC: [u8; 6] = [2, 0, 0, 0, 0xb, 1];
const DST: [u8; 6] = [2, 0, 0, 0, 0xb, 2];

fn frame(size: usize, src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    EthernetRepr {
        dst,
        src,
        vid: None,
        ethertype: 0x88b5,
    }
    .emit(&vec![0u8; size - 14])
}

fn open_pair(sw: &Sw) -> (VdeClient, VdeClient) {
    let a = VdeClient::connect(&sw.sock(), PortRequest::Port(1), "bench-tx").unwrap();
    let b = VdeClient::connect(&sw.sock(), PortRequest::Port(2), "bench-rx").unwrap();
    // Teach the switch where DST lives so traffic is unicast 1 -> 2.
    b.data.send(&frame(64, DST, [0xff; 6])).unwrap();
    a.data
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 2000];
    let _ = a.data.recv(&mut buf);
    (a, b)
}

/// One side of the generator: a VDE datagram socket, or a QEMU `-netdev stream` connection
/// (4-byte big-endian length + frame) with its reassembly buffer.
enum Link {
    Dgram(UnixDatagram),
    Stream(UnixStream, Vec<u8>),
}

impl Link {
    fn try_clone(&self) -> Link {
        match self {
            Link::Dgram(d) => Link::Dgram(d.try_clone().unwrap()),
            Link::Stream(s, _) => Link::Stream(s.try_clone().unwrap(), Vec::new()),
        }
    }

    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        match self {
            Link::Dgram(d) => {
                d.set_read_timeout(read).unwrap();
                d.set_write_timeout(write).unwrap();
            }
            Link::Stream(s, _) => {
                s.set_read_timeout(read).unwrap();
                s.set_write_timeout(write).unwrap();
            }
        }
    }

    /// Send a batch with one syscall (sendmmsg, or one write of the framed batch);
    /// returns the frames sent.
    fn send_frames(&mut self, frames: &mut [Vec<u8>], scratch: &mut Vec<u8>) -> usize {
        match self {
            Link::Dgram(d) => send_batch(d, frames),
            Link::Stream(s, _) => {
                scratch.clear();
                for f in frames.iter() {
                    scratch.extend_from_slice(&(f.len() as u32).to_be_bytes());
                    scratch.extend_from_slice(f);
                }
                match s.write_all(scratch) {
                    Ok(()) => frames.len(),
                    Err(_) => 0,
                }
            }
        }
    }

    /// Receive what is there (waiting for at least one frame) and hand each frame to `f`;
    /// false on timeout or close.
    fn recv_frames(
        &mut self,
        bufs: &mut [Vec<u8>],
        lens: &mut Vec<usize>,
        mut f: impl FnMut(&[u8]),
    ) -> bool {
        match self {
            Link::Dgram(d) => {
                if !recv_batch(d, bufs, lens) {
                    return false;
                }
                for (i, &len) in lens.iter().enumerate() {
                    f(&bufs[i][..len]);
                }
                true
            }
            Link::Stream(s, pending) => {
                let mut got = false;
                while !got {
                    let n = match s.read(&mut bufs[0]) {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&bufs[0][..n]);
                    let mut off = 0;
                    while pending.len() - off >= 4 {
                        let len =
                            u32::from_be_bytes(pending[off..off + 4].try_into().unwrap()) as usize;
                        if pending.len() - off < 4 + len {
                            break;
                        }
                        f(&pending[off + 4..off + 4 + len]);
                        got = true;
                        off += 4 + len;
                    }
                    pending.drain(..off);
                }
                true
            }
        }
    }
}

/// What a measurement runs against: a switch, or the floor relay.
enum Dut<'a> {
    Switch(&'a Sw),
    /// vswitch with ports 1 and 2 as QEMU `-netdev stream` listeners (`--stream`).
    SwitchStream(&'a Sw),
    /// The kernel floor: a process that only moves datagrams from one unix socket to
    /// another (recvmmsg -> sendmmsg, no switching). Every VDE switch pays at least this
    /// per frame, since the protocol is one datagram in and one out per frame.
    Relay,
}

/// The sender's and the receiver's data sockets, the pid whose CPU is measured, and
/// whatever must stay alive meanwhile.
struct Path2 {
    a: Link,
    b: Link,
    pid: u32,
    _keep: Box<dyn std::any::Any>,
}

struct RelayChild(Child);

impl Drop for RelayChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dgram_pair() -> (UnixDatagram, UnixDatagram) {
    UnixDatagram::pair().unwrap()
}

fn connect(dut: &Dut) -> Path2 {
    match dut {
        Dut::Switch(sw) => {
            let (a, b) = open_pair(sw);
            Path2 {
                a: Link::Dgram(a.data.try_clone().unwrap()),
                b: Link::Dgram(b.data.try_clone().unwrap()),
                pid: sw.child.id(),
                _keep: Box::new((a, b)),
            }
        }
        Dut::SwitchStream(sw) => {
            let a = UnixStream::connect(sw.dir.join("s1")).unwrap();
            let b = UnixStream::connect(sw.dir.join("s2")).unwrap();
            let (mut a, mut b) = (Link::Stream(a, Vec::new()), Link::Stream(b, Vec::new()));
            // Teach the switch where DST lives, as open_pair does.
            let mut scratch = Vec::new();
            b.send_frames(&mut [frame(64, DST, [0xff; 6])], &mut scratch);
            a.set_timeouts(Some(Duration::from_millis(500)), None);
            let mut bufs = vec![vec![0u8; 65536]];
            a.recv_frames(&mut bufs, &mut Vec::new(), |_| {});
            Path2 {
                a,
                b,
                pid: sw.child.id(),
                _keep: Box::new(()),
            }
        }
        Dut::Relay => {
            let (a, relay_in) = dgram_pair();
            let (relay_out, b) = dgram_pair();
            let (fin, fout) = (relay_in.as_raw_fd(), relay_out.as_raw_fd());
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.env("VSWITCH_BENCH_RELAY", "1");
            // SAFETY: only async-signal-safe dup2 between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(move || {
                    if libc::dup2(fin, 3) < 0 || libc::dup2(fout, 4) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().unwrap();
            drop((relay_in, relay_out));
            Path2 {
                a: Link::Dgram(a),
                b: Link::Dgram(b),
                pid: child.id(),
                _keep: Box::new(RelayChild(child)),
            }
        }
    }
}

/// The floor relay's main loop (fd 3 -> fd 4), in a child process of the benchmark: the
/// generator's own recvmmsg/sendmmsg, and nothing else.
fn relay_main() -> ! {
    use std::os::fd::FromRawFd;
    // SAFETY: the parent placed the two socketpair ends at fds 3 and 4 for this process alone.
    let (rx, tx) = unsafe { (UnixDatagram::from_raw_fd(3), UnixDatagram::from_raw_fd(4)) };
    // 256 per call: the batch size at which the relay's CPU per frame stopped falling here.
    let mut bufs: Vec<Vec<u8>> = (0..256).map(|_| vec![0u8; 2048]).collect();
    let mut lens = Vec::new();
    while recv_batch(&rx, &mut bufs, &mut lens) {
        let frames: Vec<&[u8]> = bufs.iter().zip(&lens).map(|(b, &n)| &b[..n]).collect();
        let mut off = 0;
        while off < frames.len() {
            match send_batch(&tx, &frames[off..]) {
                0 => std::process::exit(0),
                k => off += k,
            }
        }
    }
    std::process::exit(0)
}

#[derive(Clone, Copy, Default)]
struct Tput {
    tx_fps: f64,
    rx_fps: f64,
    loss_pct: f64,
    cpu_us_per_frame: f64,
    cpu_pct: f64,
    /// The generator's own CPU (sender + receiver threads) per delivered frame.
    gen_cpu_us_per_frame: f64,
    /// Share of both cores left idle during the run.
    idle_pct: f64,
}

/// sendmmsg/recvmmsg with `n` frames per call (blocking): keeps the generator's own
/// syscall cost low so the switch, not the harness, is what is measured.
fn send_batch<F: AsRef<[u8]>>(d: &UnixDatagram, frames: &[F]) -> usize {
    let mut iov: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ref().as_ptr() as *mut libc::c_void,
            iov_len: f.as_ref().len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: a zeroed mmsghdr is valid; it points at one live iovec.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs and iov stay alive for the call.
    let n = unsafe { libc::sendmmsg(d.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
    n.max(0) as usize
}

fn recv_batch(d: &UnixDatagram, bufs: &mut [Vec<u8>], lens: &mut Vec<usize>) -> bool {
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: as above.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs/iov/bufs stay alive for the call; SO_RCVTIMEO bounds the wait.
    let n = unsafe {
        libc::recvmmsg(
            d.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as u32,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    lens.clear();
    if n <= 0 {
        return false;
    }
    lens.extend(msgs[..n as usize].iter().map(|m| m.msg_len as usize));
    true
}

/// Restrict a task (pid/tid, 0 = the calling thread) to one CPU, or allow all with `None`.
fn pin(tid: i32, cpu: Option<usize>) {
    // SAFETY: cpu_set_t is plain data; the CPU_* helpers only touch the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..online_cpus() {
            if cpu.unwrap_or(c) == c {
                libc::CPU_SET(c, &mut set);
            }
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPUs online (not this thread's affinity, which `pin` changes).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Every thread of a process (the switch daemons are single-threaded, but be exact).
fn pin_process(pid: u32, cpu: Option<usize>) {
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
                pin(tid, cpu);
            }
        }
    }
}

fn throughput(dut: &Dut, size: usize, secs: f64, batch: usize, pinned: bool) -> Tput {
    let mut p = connect(dut);
    if pinned {
        pin_process(p.pid, Some(0));
        pin(0, Some(1));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut rx_link = p.b.try_clone();
    rx_link.set_timeouts(Some(Duration::from_millis(300)), None);
    let rx = std::thread::spawn(move || {
        if pinned {
            pin(0, Some(1));
        }
        // Stream reads use the first buffer only, as one 64 KiB chunk.
        let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; 65536]).collect();
        let mut lens = Vec::new();
        let mut n = 0u64;
        while rx_link.recv_frames(&mut bufs, &mut lens, |f| {
            if f.len() >= 22 && f[6..12] == SRC {
                n += 1;
            }
        }) {}
        n
    });
    // A switch that stops reading must end the run, not hang it: the send then times out,
    // counts nothing, and the run ends at its deadline with the loss showing.
    p.a.set_timeouts(None, Some(Duration::from_secs(1)));
    let mut scratch = Vec::new();
    let cpu0 = cpu_ticks(p.pid);
    let gen0 = cpu_ticks(std::process::id());
    let idle0 = cpu_idle_total();
    let t0 = Instant::now();
    let mut frames: Vec<Vec<u8>> = (0..batch).map(|_| frame(size, SRC, DST)).collect();
    let mut tx = 0u64;
    let stop2 = stop.clone();
    let deadline = Duration::from_secs_f64(secs);
    while !stop2.load(Ordering::Relaxed) {
        for (i, f) in frames.iter_mut().enumerate() {
            f[14..22].copy_from_slice(&(tx + i as u64).to_be_bytes());
        }
        tx += p.a.send_frames(&mut frames, &mut scratch) as u64;
        if t0.elapsed() >= deadline {
            break;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let rxn = rx.join().unwrap();
    let cpu = (cpu_ticks(p.pid) - cpu0) as f64 / ticks_per_sec();
    let gen = (cpu_ticks(std::process::id()) - gen0) as f64 / ticks_per_sec();
    let idle1 = cpu_idle_total();
    if pinned {
        pin(0, None);
    }
    drop(p);
    std::thread::sleep(Duration::from_millis(100));
    Tput {
        tx_fps: tx as f64 / wall,
        rx_fps: rxn as f64 / wall,
        loss_pct: 100.0 * (tx.saturating_sub(rxn)) as f64 / tx.max(1) as f64,
        cpu_us_per_frame: cpu * 1e6 / rxn.max(1) as f64,
        cpu_pct: 100.0 * cpu / wall,
        gen_cpu_us_per_frame: gen * 1e6 / rxn.max(1) as f64,
        idle_pct: 100.0 * (idle1.0 - idle0.0) as f64 / (idle1.1 - idle0.1).max(1) as f64,
    }
}

fn latency(dut: &Dut, size: usize, secs: f64, pinned: bool) -> (f64, f64) {
    let mut p = connect(dut);
    if pinned {
        pin_process(p.pid, Some(0));
        pin(0, Some(1));
    }
    let (a, b) = (&mut p.a, &mut p.b);
    b.set_timeouts(Some(Duration::from_millis(200)), None);
    let mut f = [frame(size, SRC, DST)];
    let mut bufs = vec![vec![0u8; 65536]];
    let (mut lens, mut scratch) = (Vec::new(), Vec::new());
    let mut samples = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        assert_eq!(a.send_frames(&mut f, &mut scratch), 1, "send");
        if b.recv_frames(&mut bufs, &mut lens, |_| {}) {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    if pinned {
        pin(0, None);
    }
    samples.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    (pct(0.50), pct(0.99))
}

fn rss_64_ports(sw: &Sw) -> u64 {
    let clients: Vec<VdeClient> = (1..=64)
        .map(|p| VdeClient::connect(&sw.sock(), PortRequest::Port(p), "bench-rss").unwrap())
        .collect();
    // One broadcast so every port's egress path has been used.
    clients[0].data.send(&frame(64, SRC, [0xff; 6])).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = sw.rss_kb();
    drop(clients);
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if std::env::var_os("VSWITCH_BENCH_RELAY").is_some() {
        relay_main();
    }
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str, d: f64| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let secs = get("--secs", 3.0);
    let rounds = get("--rounds", 3.0) as usize;
    let batch = (get("--batch", 32.0) as usize).max(1);
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.split(',')
                .map(|x| x.parse().expect("--sizes 64,1500"))
                .collect()
        })
        .unwrap_or_else(|| vec![64, 1500]);
    let pinned = args.iter().any(|a| a == "--pin");
    let vsw = env!("CARGO_BIN_EXE_vswitch");
    let base = std::env::temp_dir().join("vswitch-bench");
    std::fs::create_dir_all(&base).unwrap();
    println!(
        "vswitch-bench: {rounds} rounds x {secs} s per measurement, {batch} frames per sendmmsg/recvmmsg, \
         2 cores shared by sender, switch, receiver"
    );
    const NAMES: [&str; 4] = ["vde_switch", "vswitch", "floor relay", "vsw stream"];
    let mut json = Vec::new();
    for size in sizes {
        let mut res: [Vec<Tput>; 4] = Default::default();
        let mut lat: [Vec<(f64, f64)>; 4] = Default::default();
        for _ in 0..rounds {
            for (i, res_i) in res.iter_mut().enumerate() {
                let sw = match i {
                    0 => Some(start("vde_switch", "vde_switch", &["-n", "65"], &base)),
                    1 => Some(start("vswitch", vsw, &["-n", "64", "--nostdin"], &base)),
                    3 => {
                        let dir = base.join(format!("vswitch-stream-{}", std::process::id()));
                        let (s1, s2) = (dir.join("s1:1"), dir.join("s2:2"));
                        let (s1, s2) = (s1.to_str().unwrap(), s2.to_str().unwrap());
                        let extra = ["-n", "64", "--nostdin", "--stream", s1, "--stream", s2];
                        Some(start("vswitch-stream", vsw, &extra, &base))
                    }
                    _ => None,
                };
                let dut = match (i, sw.as_ref()) {
                    (3, Some(sw)) => Dut::SwitchStream(sw),
                    (_, Some(sw)) => Dut::Switch(sw),
                    (_, None) => Dut::Relay,
                };
                res_i.push(throughput(&dut, size, secs, batch, pinned));
                lat[i].push(latency(&dut, size, secs.min(2.0), pinned));
                let t = res_i.last().unwrap();
                eprintln!(
                    "  {} {size} B: rx {:.0} fps, loss {:.2} %, {:.2} us/frame, idle {:.0} %",
                    NAMES[i], t.rx_fps, t.loss_pct, t.cpu_us_per_frame, t.idle_pct
                );
            }
        }
        let m = |i: usize, f: &dyn Fn(&Tput) -> f64| median(res[i].iter().map(f).collect());
        let ml = |i: usize, f: &dyn Fn(&(f64, f64)) -> f64| median(lat[i].iter().map(f).collect());
        println!("\n{size}-byte frames (median of {rounds})");
        println!(
            "{:<11} {:>12} {:>12} {:>8} {:>12} {:>8} {:>8} {:>9} {:>9}",
            "switch",
            "offered/s",
            "delivered/s",
            "loss %",
            "CPU us/frame",
            "CPU %",
            "idle %",
            "p50 us",
            "p99 us"
        );
        for (i, name) in NAMES.iter().enumerate() {
            println!(
                "{:<11} {:>12.0} {:>12.0} {:>8.2} {:>12.2} {:>8.1} {:>8.1} {:>9.1} {:>9.1}",
                name,
                m(i, &|t| t.tx_fps),
                m(i, &|t| t.rx_fps),
                m(i, &|t| t.loss_pct),
                m(i, &|t| t.cpu_us_per_frame),
                m(i, &|t| t.cpu_pct),
                m(i, &|t| t.idle_pct),
                ml(i, &|l| l.0),
                ml(i, &|l| l.1)
            );
        }
        let ratio_fps = m(1, &|t| t.rx_fps) / m(0, &|t| t.rx_fps);
        let ratio_cpu = m(1, &|t| t.cpu_us_per_frame) / m(0, &|t| t.cpu_us_per_frame);
        let ratio_p99 = ml(1, &|l| l.1) / ml(0, &|l| l.1);
        let floor_cpu = m(2, &|t| t.cpu_us_per_frame) / m(0, &|t| t.cpu_us_per_frame);
        let stream_fps = m(3, &|t| t.rx_fps) / m(0, &|t| t.rx_fps);
        let stream_cpu = m(3, &|t| t.cpu_us_per_frame) / m(0, &|t| t.cpu_us_per_frame);
        println!("ratio vswitch/vde_switch: delivered {ratio_fps:.2}x, CPU per frame {ratio_cpu:.2}x, p99 {ratio_p99:.2}x");
        println!("ratio floor relay/vde_switch: CPU per frame {floor_cpu:.2}x (no VDE switch can go below this)");
        // Every delivered frame costs the generator a send and a receive and the switch at
        // least the floor, all on the same cores: this bounds what any switch can deliver.
        println!("ratio vswitch over -netdev stream ports/vde_switch over VDE: delivered {stream_fps:.2}x, CPU per frame {stream_cpu:.2}x (not the VDE path: many frames per syscall)");
        println!(
            "floor relay delivered {:.2}x vde_switch: what this generator gets through a switch that does no work",
            m(2, &|t| t.rx_fps) / m(0, &|t| t.rx_fps)
        );
        if !pinned {
            // Shared cores: each delivered frame costs the generator a send and a receive and
            // the switch at least the floor, so the cores bound what any switch can deliver
            // (an upper bound: it assumes no idle time). Pinned runs are bound by wake-ups
            // between the two cores instead (both half idle), so this is not printed there.
            let (fl, gen) = (
                m(2, &|t| t.cpu_us_per_frame),
                m(2, &|t| t.gen_cpu_us_per_frame),
            );
            let ncpu = online_cpus() as f64;
            let ceiling = ncpu * 1e6 / (fl + gen);
            println!(
                "CPU ceiling for any VDE switch with this generator: {ncpu} cores / ({fl:.2} floor + {gen:.2} generator us/frame) = {ceiling:.0} frames/s = {:.2}x vde_switch",
                ceiling / m(0, &|t| t.rx_fps)
            );
        }
        json.push(format!(
            "{{\"frame\":{size},\"vde_rx_fps\":{:.0},\"vsw_rx_fps\":{:.0},\"vde_loss\":{:.2},\"vsw_loss\":{:.2},\"vde_cpu_us\":{:.2},\"vsw_cpu_us\":{:.2},\"floor_cpu_us\":{:.2},\"stream_rx_fps\":{:.0},\"stream_cpu_us\":{:.2},\"vde_p99\":{:.1},\"vsw_p99\":{:.1}}}",
            m(0, &|t| t.rx_fps), m(1, &|t| t.rx_fps), m(0, &|t| t.loss_pct), m(1, &|t| t.loss_pct),
            m(0, &|t| t.cpu_us_per_frame), m(1, &|t| t.cpu_us_per_frame), m(2, &|t| t.cpu_us_per_frame),
            m(3, &|t| t.rx_fps), m(3, &|t| t.cpu_us_per_frame),
            ml(0, &|l| l.1), ml(1, &|l| l.1)
        ));
    }
    let vde = start("vde_switch", "vde_switch", &["-n", "65"], &base);
    let ours = start("vswitch", vsw, &["-n", "64", "--nostdin"], &base);
    let (r0, r1) = (rss_64_ports(&vde), rss_64_ports(&ours));
    println!(
        "\nRSS with 64 connected ports: vde_switch {r0} KiB, vswitch {r1} KiB (ratio {:.2}x)",
        r1 as f64 / r0 as f64
    );
    println!(
        "JSON [{}] rss_kb {{\"vde_switch\":{r0},\"vswitch\":{r1}}}",
        json.join(",")
    );
}
