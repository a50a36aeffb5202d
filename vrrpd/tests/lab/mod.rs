//! Network-namespace lab shared by the interop tests and the failover benchmark:
//! two routers (r1, r2) and a client namespace holding one bridge per segment, as in
//! docs/vrrp.md, The 2009 pair and the interop lab. Names are unique per process and lab;
//! everything (processes, namespaces, temp files) is removed by `Drop`, also when a test panics.
#![allow(dead_code)]

use ramux_testkit::Netns;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Which daemon runs on a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Keepalived,
    Vrrpd,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Keepalived => "keepalived",
            Impl::Vrrpd => "vrrpd",
        }
    }
}

pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fail loudly (never skip) when the lab cannot run here.
pub fn require_tools() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the VRRP interop tests need root (network namespaces)"
    );
    for (tool, pkg) in [("ip", "iproute2"), ("keepalived", "keepalived")] {
        assert!(
            sh_ok(&["sh", "-c", &format!("command -v {tool}")]),
            "{tool} not found: install the Debian package {pkg}"
        );
    }
}

/// A router process.
pub struct Proc {
    pub imp: Impl,
    pub child: Child,
    pub log: PathBuf,
    /// keepalived's VRRP child pid file.
    pub vrrp_pid: PathBuf,
    pub socket: PathBuf,
}

pub struct Lab {
    pub id: String,
    pub r: [String; 2],
    pub cl: String,
    pub segs: Vec<String>,
    pub nets: Vec<[u8; 3]>,
    pub dir: PathBuf,
    pub procs: [Option<Proc>; 2],
    pub vrrpd: PathBuf,
    /// The namespaces r[0], r[1] and cl.
    ns: Vec<Netns>,
}

impl Lab {
    /// Build the lab with the given segment names (router interface names, e.g. "vlan10").
    pub fn new(segs: &[&str], vrrpd: &Path) -> Lab {
        let nets: Vec<(&str, [u8; 3])> = segs
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, [10, 10 + i as u8, 0]))
            .collect();
        Lab::with_subnets(&nets, vrrpd)
    }

    /// Segments with their /24 prefixes (first three octets).
    pub fn with_subnets(nets: &[(&str, [u8; 3])], vrrpd: &Path) -> Lab {
        require_tools();
        let segs: Vec<&str> = nets.iter().map(|n| n.0).collect();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("vr{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("vrrp-lab-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            r: [format!("{id}-r1"), format!("{id}-r2")],
            cl: format!("{id}-cl"),
            id,
            segs: segs.iter().map(|s| s.to_string()).collect(),
            nets: nets.iter().map(|n| n.1).collect(),
            dir,
            procs: [None, None],
            vrrpd: vrrpd.to_path_buf(),
            ns: Vec::new(),
        };
        let names: Vec<String> = lab.r.iter().chain([&lab.cl]).cloned().collect();
        for ns in &names {
            lab.ns.push(ramux_testkit::netns(ns));
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
        }
        for (si, seg) in lab.segs.iter().enumerate() {
            let br = format!("br{si}");
            sh(&[
                "ip",
                "-n",
                &lab.cl,
                "link",
                "add",
                &br,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ]);
            sh(&["ip", "-n", &lab.cl, "link", "set", &br, "up"]);
            sh(&[
                "ip",
                "-n",
                &lab.cl,
                "addr",
                "add",
                &format!("{}/24", lab.addr(si, 100)),
                "dev",
                &br,
            ]);
            for (ri, ns) in lab.r.iter().enumerate() {
                let peer = format!("p{ri}s{si}");
                sh(&[
                    "ip", "-n", ns, "link", "add", seg, "type", "veth", "peer", "name", &peer,
                    "netns", &lab.cl,
                ]);
                sh(&[
                    "ip", "-n", &lab.cl, "link", "set", &peer, "master", &br, "up",
                ]);
                sh(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{}/24", lab.addr(si, 2 + ri as u8)),
                    "dev",
                    seg,
                ]);
                sh(&["ip", "-n", ns, "link", "set", seg, "up"]);
            }
        }
        lab
    }

    /// Address `host` on segment `seg` (10.(10+seg).0.host by default).
    pub fn addr(&self, seg: usize, host: u8) -> Ipv4Addr {
        let n = self.nets[seg];
        Ipv4Addr::new(n[0], n[1], n[2], host)
    }

    /// IPv6 addresses (global and link-local) on router `ri`.
    pub fn addrs6(&self, ri: usize) -> Vec<std::net::Ipv6Addr> {
        let out = sh(&["ip", "-n", &self.r[ri], "-o", "-6", "addr", "show"]);
        out.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.find(|w| *w == "inet6")?;
                it.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }

    pub fn vip(&self, seg: usize) -> Ipv4Addr {
        self.addr(seg, 1)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Start `imp` on router `ri` (0 or 1) with configuration text `conf`.
    pub fn start(&mut self, ri: usize, imp: Impl, conf: &str) {
        self.start_args(ri, imp, conf, &[]);
    }

    /// As `start`, with extra command-line arguments (e.g. `-i ID`) for either daemon.
    pub fn start_args(&mut self, ri: usize, imp: Impl, conf: &str, args: &[&str]) {
        assert!(self.procs[ri].is_none(), "router {ri} already running");
        let cfg = self.write(&format!("r{}-{}.conf", ri + 1, imp.name()), conf);
        let log = self.dir.join(format!("r{}-{}.log", ri + 1, imp.name()));
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let vrrp_pid = self.dir.join(format!("r{}-vrrp.pid", ri + 1));
        let socket = self.dir.join(format!("r{}.sock", ri + 1));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.r[ri]]);
        match imp {
            Impl::Keepalived => {
                let _ = std::fs::remove_file(&vrrp_pid);
                cmd.arg("keepalived")
                    .args(["-n", "-l", "-D", "-P", "-f"])
                    .arg(&cfg);
                cmd.arg("-p")
                    .arg(self.dir.join(format!("r{}-ka.pid", ri + 1)));
                cmd.arg("-r").arg(&vrrp_pid);
                cmd.arg("-c")
                    .arg(self.dir.join(format!("r{}-chk.pid", ri + 1)));
                cmd.args(args);
            }
            Impl::Vrrpd => {
                cmd.arg(&self.vrrpd)
                    .args(["-n", "-l", "-f"])
                    .arg(&cfg)
                    .arg("--socket")
                    .arg(&socket)
                    .args(args);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        self.procs[ri] = Some(Proc {
            imp,
            child,
            log,
            vrrp_pid,
            socket,
        });
        if imp == Impl::Keepalived {
            // Wait for the VRRP child so that a crash kill can reach it.
            let t = Instant::now();
            while read_pid(&self.procs[ri].as_ref().unwrap().vrrp_pid).is_none() {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "keepalived on r{} did not start its VRRP child: {}",
                    ri + 1,
                    self.log(ri)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn log(&self, ri: usize) -> String {
        let p = self.dir.join(format!(
            "r{}-{}.log",
            ri + 1,
            self.procs[ri]
                .as_ref()
                .map(|p| p.imp.name())
                .unwrap_or("vrrpd")
        ));
        std::fs::read_to_string(p).unwrap_or_default()
    }

    pub fn all_logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            let mut v: Vec<_> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect();
            v.sort();
            for p in v {
                s.push_str(&format!(
                    "==== {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
        }
        s
    }

    /// SIGKILL everything of router `ri` (a true crash: no priority-0 advert).
    pub fn crash(&mut self, ri: usize) {
        if let Some(mut p) = self.procs[ri].take() {
            if p.imp == Impl::Keepalived {
                // The VRRP child first: it has PDEATHSIG=SIGTERM and would resign cleanly.
                if let Some(pid) = read_pid(&p.vrrp_pid) {
                    // SAFETY: signalling a pid we started (from our own pid file).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// SIGTERM and wait (clean shutdown).
    pub fn stop(&mut self, ri: usize) {
        if let Some(mut p) = self.procs[ri].take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            loop {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// IPv4 addresses on router `ri`.
    pub fn addrs(&self, ri: usize) -> Vec<Ipv4Addr> {
        let out = sh(&["ip", "-n", &self.r[ri], "-o", "-4", "addr", "show"]);
        out.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.find(|w| *w == "inet")?;
                it.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }

    /// Which routers hold `vip`.
    pub fn holders(&self, vip: Ipv4Addr) -> Vec<usize> {
        (0..2).filter(|&r| self.addrs(r).contains(&vip)).collect()
    }

    /// Poll until `f` is true; panic with the logs after `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Lab) -> bool) -> Duration {
        let t = Instant::now();
        loop {
            if f(self) {
                return t.elapsed();
            }
            if t.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\n{}",
                    self.all_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until exactly router `ri` holds every VIP in `vips`.
    pub fn wait_holder(&self, vips: &[Ipv4Addr], ri: usize, timeout: Duration) -> Duration {
        self.wait(&format!("r{} alone holds {vips:?}", ri + 1), timeout, |l| {
            vips.iter().all(|v| l.holders(*v) == vec![ri])
        })
    }

    pub fn mac(&self, ri: usize, seg: usize) -> String {
        let out = sh(&[
            "ip",
            "-n",
            &self.r[ri],
            "-o",
            "link",
            "show",
            &self.segs[seg],
        ]);
        let mut it = out.split_whitespace();
        it.find(|w| *w == "link/ether");
        it.next().unwrap().to_string()
    }

    /// The client's neighbour entry for `ip` (MAC), if any.
    pub fn client_neigh(&self, ip: Ipv4Addr) -> Option<String> {
        let out = sh(&["ip", "-n", &self.cl, "neigh", "show", &ip.to_string()]);
        let mut it = out.split_whitespace();
        it.find(|w| *w == "lladdr")?;
        it.next().map(str::to_string)
    }

    pub fn client_ping(&self, ip: Ipv4Addr) -> bool {
        sh_ok(&[
            "ip",
            "netns",
            "exec",
            &self.cl,
            "ping",
            "-c1",
            "-W1",
            &ip.to_string(),
        ])
    }

    pub fn link(&self, ri: usize, seg: usize, up: bool) {
        sh(&[
            "ip",
            "-n",
            &self.r[ri],
            "link",
            "set",
            &self.segs[seg],
            if up { "up" } else { "down" },
        ]);
    }

    /// `vrrpd status --json` of router `ri`, None while its socket is not up yet.
    pub fn try_status(&self, ri: usize) -> Option<serde_json::Value> {
        let p = self.procs[ri].as_ref()?;
        let out = Command::new(&self.vrrpd)
            .args(["status", "--json", "--socket"])
            .arg(&p.socket)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `vrrpd status --json` of router `ri`.
    pub fn status(&self, ri: usize) -> serde_json::Value {
        let p = self.procs[ri].as_ref().expect("router running");
        let out = Command::new(&self.vrrpd)
            .args(["status", "--json", "--socket"])
            .arg(&p.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vrrpd status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ri in 0..2 {
            self.crash(ri);
        }
        self.ns.clear();
        if std::thread::panicking() {
            eprintln!("lab {} logs:\n{}", self.id, self.all_logs());
        }
        // Keep the files only when asked (the logs were printed above on failure).
        if std::env::var_os("VRRP_LAB_KEEP").is_some() {
            eprintln!("lab {} files kept in {}", self.id, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Configuration of one instance in keepalived syntax (read by both daemons).
pub struct Inst<'a> {
    pub name: &'a str,
    pub iface: &'a str,
    pub vrid: u8,
    pub priority: u8,
    pub advert_int: &'a str,
    pub vips: Vec<String>,
    pub extra: &'a str,
}

pub fn conf(version: u8, pass: bool, insts: &[Inst], groups: &[(&str, &[&str])]) -> String {
    let mut s = format!("global_defs {{\n    router_id lab\n    vrrp_version {version}\n}}\n");
    for (g, members) in groups {
        s.push_str(&format!(
            "vrrp_sync_group {g} {{\n    group {{\n        {}\n    }}\n}}\n",
            members.join("\n        ")
        ));
    }
    for i in insts {
        s.push_str(&format!(
            "vrrp_instance {} {{\n    state BACKUP\n    interface {}\n    virtual_router_id {}\n    priority {}\n    advert_int {}\n",
            i.name, i.iface, i.vrid, i.priority, i.advert_int
        ));
        if pass {
            s.push_str(
                "    authentication {\n        auth_type PASS\n        auth_pass s3cr3tpw\n    }\n",
            );
        }
        s.push_str("    virtual_ipaddress {\n");
        for v in &i.vips {
            s.push_str(&format!("        {v}\n"));
        }
        s.push_str("    }\n");
        s.push_str(i.extra);
        s.push_str("}\n");
    }
    s
}

/// The benchmarks' command line (examples/*_bench.rs).
pub struct BenchArgs {
    pub runs: usize,
    /// `--vrrpd PATH`, else the vrrpd beside the example in the target directory.
    pub vrrpd: PathBuf,
    pub json: bool,
}

/// `--runs N` (default `runs`), `--vrrpd PATH` and, when `json_ok`, `--json`; None after
/// printing `usage` for `-h`/`--help`. Panics on anything else or a missing vrrpd.
pub fn bench_args(usage: &str, runs: usize, json_ok: bool) -> Option<BenchArgs> {
    let (mut runs, mut vrrpd, mut json) = (runs, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--vrrpd" => vrrpd = args.next().map(PathBuf::from),
            "--json" if json_ok => json = true,
            "-h" | "--help" => {
                println!("{usage}");
                return None;
            }
            o => panic!("unknown argument {o} (try --help)"),
        }
    }
    let vrrpd = vrrpd.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().parent().unwrap().join("vrrpd")
    });
    assert!(
        vrrpd.exists(),
        "{} not found: cargo build --release -p vrrpd --bins, or pass --vrrpd",
        vrrpd.display()
    );
    Some(BenchArgs { runs, vrrpd, json })
}
