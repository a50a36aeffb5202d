//! Benchmark of the dns role, in one run:
//! 1. DHCP: busybox udhcpc start to bound for a new MAC, against dnsmasq on the generated
//!    dnsmasq.conf (`no-ping`) and on the same file without `no-ping` (dnsmasq's default ping
//!    check), two namespace pairs side by side, trials alternating, each on a freshly started
//!    dnsmasq (its ping check is rate-limited: after ~6 pings in 30 s it stops pinging); prints
//!    medians and the ratio.
//! 2. Compile time: the seed site (profiles/router/site.lw) against the dns example site (the
//!    seed plus the dns role's statements, tests/sites/dns) with both dnsmasq.conf and the relay.
//!
//!   cargo run --release -p labwall --example dhcp_bench [-- TRIALS]
//! Needs root (network namespaces), dnsmasq and busybox (scripts/prereqs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn sh(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !o.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// One server/client namespace pair with dnsmasq running on `conf`; Drop cleans up.
struct Pair {
    srv: String,
    cli: String,
    tmp: PathBuf,
    dnsmasq: Option<Child>,
}

impl Pair {
    fn new(tag: &str, conf: &str) -> Result<Pair, String> {
        let id = format!("{tag}{}", std::process::id());
        let tmp = std::env::temp_dir().join(format!("lwbench-{id}"));
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let (srv, cli) = (format!("lbs{id}"), format!("lbc{id}"));
        let mut p = Pair {
            srv,
            cli,
            tmp,
            dnsmasq: None,
        };
        sh(&["ip", "netns", "add", &p.srv])?;
        sh(&["ip", "netns", "add", &p.cli])?;
        let link = [
            "ip", "link", "add", "vlan10", "netns", &p.srv, "type", "veth",
        ];
        sh(&[&link[..], &["peer", "c0", "netns", &p.cli]].concat())?;
        p.exec(
            &p.srv,
            &["ip", "addr", "add", "172.16.10.10/24", "dev", "vlan10"],
        )?;
        for (ns, i) in [(&p.srv, "vlan10"), (&p.cli, "c0"), (&p.srv, "lo")] {
            p.exec(ns, &["ip", "link", "set", i, "up"])?;
        }
        p.start(conf)?;
        Ok(p)
    }
    fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        sh(&[&["ip", "netns", "exec", ns][..], args].concat())
    }
    /// A fresh dnsmasq: its ping check stops for a while after a few pings in the last 30 s
    /// (a rate limit), so each trial starts from a quiet server.
    fn restart(&mut self) -> Result<(), String> {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let conf =
            std::fs::read_to_string(self.tmp.join("dnsmasq.conf")).map_err(|e| e.to_string())?;
        self.start(&conf)
    }
    fn start(&mut self, conf: &str) -> Result<(), String> {
        let f = |n: &str| self.tmp.join(n).display().to_string();
        std::fs::write(f("dnsmasq.conf"), conf).map_err(|e| e.to_string())?;
        let c = Command::new("ip")
            .args(["netns", "exec", &self.srv, "dnsmasq", "-k", "--user=root"])
            .arg(format!("--conf-file={}", f("dnsmasq.conf")))
            .arg(format!("--dhcp-leasefile={}", f("leases")))
            .arg(format!("--pid-file={}", f("pid")))
            .spawn()
            .map_err(|e| e.to_string())?;
        self.dnsmasq = Some(c);
        for _ in 0..100 {
            if self
                .exec(&self.srv, &["ss", "-lun"])
                .is_ok_and(|o| o.contains(":67 "))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("dnsmasq did not start".into())
    }
    /// udhcpc start to bound (process exit with -q) for a MAC never seen before.
    fn new_lease(&self, n: usize) -> Result<Duration, String> {
        let mac = format!("52:54:00:99:{:02x}:{:02x}", n / 256, n % 256);
        self.exec(&self.cli, &["ip", "link", "set", "c0", "address", &mac])?;
        let t = Instant::now();
        self.exec(
            &self.cli,
            &[
                "busybox",
                "udhcpc",
                "-i",
                "c0",
                "-f",
                "-q",
                "-n",
                "-t",
                "5",
                "-s",
                "/bin/true",
            ],
        )?;
        Ok(t.elapsed())
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(c) = &mut self.dnsmasq {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = sh(&["ip", "netns", "del", &self.srv]);
        let _ = sh(&["ip", "netns", "del", &self.cli]);
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn compile(p: &Path) -> labwall::Compiled {
    let text = std::fs::read_to_string(p).unwrap();
    let opts = labwall::Options {
        role: "MASTER".into(),
        defines: vec![("HOSTNAME".into(), "fw".into())],
        ..labwall::Options::default()
    };
    labwall::compile_source(&labwall::parse::FsLoader, p, &text, &opts).unwrap()
}

/// Medians of 21 alternating compilations: the seed, and the dns site with its three outputs.
fn compile_times() {
    let seed = root().join("profiles/router/site.lw");
    let dns = root().join("labwall/tests/sites/dns/site.lw");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        let t = Instant::now();
        std::hint::black_box(compile(&seed));
        a.push(ms(t.elapsed()));
        let t = Instant::now();
        let c = compile(&dns);
        for i in ["dns1", "dns2"] {
            std::hint::black_box(labwall::dnsmasq::dnsmasq_conf(&c.site, i).unwrap());
        }
        std::hint::black_box(labwall::emit::dhcp_relay_conf(&c.site));
        b.push(ms(t.elapsed()));
    }
    println!("compile, library, median of 21 (labwall's 25-VLAN figure in docs/benchmarks.md: 1.4-3.0 ms):");
    println!(
        "  seed site (profiles/router/site.lw), 4 router outputs:        {:.2} ms",
        median(a)
    );
    println!(
        "  dns site (seed + dns role), 4 outputs + 2 dnsmasq.conf + relay: {:.2} ms",
        median(b)
    );
}

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    compile_times();
    let conf = labwall::dnsmasq::dnsmasq_conf(
        &compile(&root().join("labwall/tests/sites/dns/site.lw")).site,
        "dns1",
    )
    .unwrap();
    let ping = conf.replace("\nno-ping\n", "\n");
    let mut gen = Pair::new("g", &conf).unwrap();
    let mut def = Pair::new("d", &ping).unwrap();
    let (mut g, mut d) = (Vec::new(), Vec::new());
    for n in 0..trials {
        gen.restart().unwrap();
        def.restart().unwrap();
        g.push(ms(gen.new_lease(n).unwrap()));
        d.push(ms(def.new_lease(n).unwrap()));
    }
    let (mg, md) = (median(g.clone()), median(d.clone()));
    println!("DHCP, udhcpc start to bound for a new MAC, {trials} trials alternating:");
    println!("  generated (no-ping):          median {mg:.0} ms  {g:.0?}");
    println!("  dnsmasq default (ping check): median {md:.0} ms  {d:.0?}");
    println!("  ratio default / generated: {:.1}x", md / mg);
}
