//! Benchmark: generates a large realistic site (25 VLANs, ~230 statements) and an equivalent
//! Shorewall configuration, then times `labwall compile` against `shorewall compile -e` in the
//! same run and prints the ratio, plus the `nft -f` load time of the output in a netns.
//!
//!   cargo build --release -p labwall && cargo run --release -p labwall --example bench [-- OUTDIR]
//! Needs root (netns), shorewall, nftables. The labwall binary is taken from the same target dir.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const N: usize = 25;

/// (action, src zone, src ip, dst zone, dst ip, [(proto, port)])
type GenRule = (
    String,
    String,
    String,
    String,
    String,
    Vec<(&'static str, &'static str)>,
);

/// The labwall site and the Shorewall files (zones, interfaces, policy, rules, snat).
fn generate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut s = String::new();
    let mut st = |s: &mut String, l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    site_declarations(&mut s, &mut st);
    let sw_rules = site_rules(&mut s, &mut st, &gen_rules());
    let s = site_nat_and_policies(s, &mut st);
    let site = dir.join("site.lw");
    std::fs::write(&site, &s).unwrap();
    let sw = write_shorewall(dir, sw_rules);
    eprintln!(
        "generated {} ({} lines) and {}",
        site.display(),
        s.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count(),
        sw.display()
    );
    (site, sw)
}

/// Interfaces (dual stack), VRRP, antispoof, NOROUTE, aliases and services.
fn site_declarations(s: &mut String, st: &mut impl FnMut(&mut String, String)) {
    st(s, "EXTERNALDEV=eth1".into());
    st(s, "INTERNALDEV=eth0".into());
    st(s, "NETINIT $EXTERNALDEV $INTERNALDEV".into());
    st(s, "SET ROLE=$ROLE".into());
    st(
        s,
        "VRRP AUTH PASS XYZ `hostname` 172.16.1.12 admin@test.fr pooling 5".into(),
    );
    st(
        s,
        "DEV net $EXTERNALDEV 10.1.1.0 10.1.1.1 255.255.255.0 10.1.1.2-10.1.1.3-10.1.1.4-101*"
            .into(),
    );
    for v in 1..=N {
        let star = if v == 1 { "*" } else { "" };
        st(s, format!("VLAN {} $INTERNALDEV 172.16.{v}.0 172.16.{v}.100-172.16.{v}.200-172.16.{v}.1-100{star} 255.255.255.0 - z{v}", 100 + v));
    }
    st(s, "VRRP START GROUP eth1-vlan101".into());
    // dual stack: every interface gets an IPv6 prefix (Shorewall side stays IPv4-only)
    st(
        s,
        "ADDR6 net 2001:db8:1::/64 2001:db8:1::2-2001:db8:1::3-2001:db8:1::4 GW 2001:db8:1::1"
            .into(),
    );
    for v in 1..=N {
        st(s, format!("ADDR6 z{v} 2001:db8:{:x}::/64 2001:db8:{:x}::100-2001:db8:{:x}::200-2001:db8:{:x}::1", 0x100 + v, 0x100 + v, 0x100 + v, 0x100 + v));
    }
    st(s, "ANTISPOOF strict".into());
    st(s, "NOROUTE z20 z21 z22 z23 z24 z25".into());
    st(s, "LOG PREFIX lw LEVEL info RATE 5/minute".into());
    for v in 1..=N {
        st(
            s,
            format!("HOST srv{v} 172.16.{v}.10 2001:db8:{:x}::10", 0x100 + v),
        );
        if (2..=11).contains(&v) {
            st(s, format!("HOST db{v} 172.16.{v}.11"));
        }
    }
    for v in 1..=10 {
        st(s, format!("NET adm{v} 172.16.{v}.64/27"));
    }
    st(s, "SERVICE web tcp/80 tcp/443".into());
    st(s, "SERVICE pg tcp/5432".into());
}

fn allow(
    sz: String,
    sip: String,
    dz: String,
    dip: String,
    svc: Vec<(&'static str, &'static str)>,
) -> GenRule {
    ("ALLOW".into(), sz, sip, dz, dip, svc)
}

/// Every VLAN reaches the central services in z1, web servers open to net, db per VLAN.
fn gen_rules() -> Vec<GenRule> {
    let mut rules: Vec<GenRule> = Vec::new();
    for v in 2..=N {
        let z = format!("z{v}");
        let dns = vec![("tcp", "53"), ("udp", "53")];
        rules.push(allow(
            z.clone(),
            String::new(),
            "z1".into(),
            "172.16.1.10".into(),
            dns,
        ));
        let fw = vec![("udp", "67"), ("icmp", "8")];
        rules.push(allow(
            z.clone(),
            String::new(),
            "fw".into(),
            String::new(),
            fw,
        ));
        let web = vec![("tcp", "80"), ("tcp", "443")];
        rules.push(allow(
            "net".into(),
            String::new(),
            z.clone(),
            format!("172.16.{v}.10"),
            web,
        ));
        let infra = vec![("udp", "123"), ("tcp", "389"), ("tcp", "88"), ("udp", "88")];
        rules.push(allow(
            z,
            String::new(),
            "z1".into(),
            "172.16.1.10".into(),
            infra,
        ));
    }
    for v in 1..=10 {
        let (z, adm) = (format!("z{v}"), format!("172.16.{v}.64/27"));
        let ssh = vec![("tcp", "22")];
        rules.push(allow(
            z.clone(),
            adm.clone(),
            "fw".into(),
            String::new(),
            ssh,
        ));
        let db = (format!("z{}", v + 1), format!("172.16.{}.11", v + 1));
        rules.push(allow(z, adm, db.0, db.1, vec![("tcp", "5432")]));
    }
    rules
}

/// The labwall service names for a list of (proto, port).
fn service_names(svc: &[(&str, &str)]) -> Vec<&'static str> {
    svc.iter()
        .map(|(p, port)| match (*p, *port) {
            ("tcp", "53") | ("udp", "53") => "dns",
            ("udp", "67") => "dhcp",
            ("icmp", "8") => "ping",
            ("udp", "123") => "ntp",
            ("tcp", "389") => "ldap",
            ("tcp", "88") | ("udp", "88") => "kerberos",
            ("tcp", "80") | ("tcp", "443") => "web",
            ("tcp", "22") => "ssh",
            ("tcp", "5432") => "pg",
            _ => "?",
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The rules as labwall lines (appended to `s`) and as Shorewall's rules file (returned).
fn site_rules(
    s: &mut String,
    st: &mut impl FnMut(&mut String, String),
    rules: &[GenRule],
) -> String {
    let mut sw_rules = String::from("?SECTION NEW\n");
    for (a, sz, sip, dz, dip, svc) in rules {
        if sz == dz {
            continue; // intra-zone: single interface zones, skipped
        }
        let src = if sip.is_empty() {
            sz.clone()
        } else if let Some(v) = sip
            .strip_prefix("172.16.")
            .and_then(|x| x.strip_suffix(".64/27"))
        {
            format!("{sz}:adm{v}")
        } else {
            format!("{sz}:{sip}")
        };
        let dst = if dip.is_empty() {
            dz.clone()
        } else {
            let host = dip.rsplit('.').next().unwrap();
            let v = dip.split('.').nth(2).unwrap();
            format!("{dz}:{}{v}", if host == "10" { "srv" } else { "db" })
        };
        let names = service_names(svc);
        st(s, format!("{a} {src} {dst} {}", names.join(" ")));
        let sws = |ip: &str| {
            if ip.is_empty() {
                String::new()
            } else {
                format!(":{ip}")
            }
        };
        for (p, port) in svc {
            let _ = writeln!(
                sw_rules,
                "ACCEPT\t{sz}{}\t{dz}{}\t{p}\t{port}",
                sws(sip),
                sws(dip)
            );
        }
    }
    sw_rules
}

/// SNAT to the VIP, five DNATs (each on its own port: same-port DNATs are refused) and the
/// policies. Returns the whole site.
fn site_nat_and_policies(mut s: String, st: &mut impl FnMut(&mut String, String)) -> String {
    st(&mut s, "NAT SNAT net TO VIP".into());
    for v in 2..=6 {
        // kept commented out: DNATs must differ in port
        st(
            &mut s,
            format!("#NAT DNAT net:VIP pg TO 172.16.{v}.11:{}", 5432),
        );
    }
    for v in 2..=6 {
        s.push_str(&format!(
            "SERVICE pg{v} tcp/{}\nNAT DNAT net:VIP pg{v} TO 172.16.{v}.11:5432\n",
            15430 + v
        ));
    }
    for p in [
        "POLICY fw all ACCEPT",
        "POLICY z1 net ACCEPT",
        "POLICY z2 net ACCEPT",
        "POLICY z3 net ACCEPT",
        "POLICY net all DROP LOG",
        "POLICY all all REJECT LOG",
    ] {
        s.push_str(p);
        s.push('\n');
    }
    s
}

/// The equivalent Shorewall 5 configuration (IPv4 only) in `dir/shorewall`.
fn write_shorewall(dir: &Path, mut sw_rules: String) -> PathBuf {
    for v in 2..=6 {
        let _ = writeln!(
            sw_rules,
            "DNAT\tnet\tz{v}:172.16.{v}.11:5432\ttcp\t{}\t-\t10.1.1.4",
            15430 + v
        );
    }
    let sw = dir.join("shorewall");
    std::fs::create_dir_all(&sw).unwrap();
    let mut zones = String::from("fw\tfirewall\nnet\tipv4\n");
    let mut ifs = String::from("?FORMAT 2\nnet\teth1\ttcpflags,nosmurfs,routefilter\n");
    for v in 1..=N {
        let _ = writeln!(zones, "z{v}\tipv4");
        let _ = writeln!(ifs, "z{v}\tvlan{}\ttcpflags,nosmurfs,routefilter", 100 + v);
    }
    let mut pol = String::new();
    for a in 20..=25 {
        for b in 20..=25 {
            if a != b {
                let _ = writeln!(pol, "z{a}\tz{b}\tDROP\tinfo");
            }
        }
    }
    pol.push_str("$FW\tall\tACCEPT\nz1\tnet\tACCEPT\nz2\tnet\tACCEPT\nz3\tnet\tACCEPT\nnet\tall\tDROP\tinfo\nall\tall\tREJECT\tinfo\n");
    // Shorewall has no aliases: substitute params for hosts
    let mut params = String::new();
    for v in 1..=N {
        let _ = writeln!(params, "srv{v}=172.16.{v}.10\ndb{v}=172.16.{v}.11");
    }
    for v in 1..=10 {
        let _ = writeln!(params, "adm{v}=172.16.{v}.64/27");
    }
    std::fs::write(sw.join("zones"), zones).unwrap();
    std::fs::write(sw.join("interfaces"), ifs).unwrap();
    std::fs::write(sw.join("policy"), pol).unwrap();
    std::fs::write(sw.join("rules"), sw_rules).unwrap();
    std::fs::write(sw.join("params"), params).unwrap();
    std::fs::write(sw.join("snat"), "SNAT(10.1.1.4)\t172.16.0.0/16\teth1\n").unwrap();
    // Debian's default LOGFILE=/var/log/messages does not exist here; Shorewall refuses to run
    let conf = std::fs::read_to_string("/etc/shorewall/shorewall.conf").unwrap_or_default();
    let conf: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("LOGFILE=") {
                "LOGFILE=/dev/null\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(sw.join("shorewall.conf"), conf).unwrap();
    sw
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> f64 {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

fn ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("labwall-bench-{}", std::process::id()))
        });
    std::fs::create_dir_all(&dir).unwrap();
    let (site, sw) = generate(&dir);
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("labwall");
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p labwall first",
        bin.display()
    );
    let out = dir.join("out");
    let lw = time(21, || {
        ok(Command::new(&bin).args([
            "compile",
            &site.to_string_lossy(),
            "--role",
            "MASTER",
            "-D",
            "HOSTNAME=fw-a",
            "--out",
            &out.to_string_lossy(),
        ]))
    });
    let lib = time(21, || {
        labwall::compile_file(&site, "MASTER", &[("HOSTNAME".into(), "fw-a".into())]).unwrap();
    });
    let rules = std::fs::read_to_string(out.join("ruleset.nft"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(" comment \"site.lw:"))
        .count();
    // shorewall: capabilities probed inside a throwaway netns, so the host firewall is untouched
    // deleted on drop, also when a step below panics
    let nsg = labwall::backend::Netns::new(&format!("lwb{}", std::process::id())).unwrap();
    let ns = nsg.name.clone();
    // (ip netns exec gives a private mount namespace: the bind mount of our shorewall.conf is
    // invisible to the host)
    let cmd = format!(
        "mount --bind {} /etc/shorewall/shorewall.conf && shorewall show -f capabilities",
        sw.join("shorewall.conf").display()
    );
    let caps = Command::new("ip")
        .args(["netns", "exec", &ns, "sh", "-c", &cmd])
        .output()
        .unwrap();
    assert!(
        caps.status.success(),
        "shorewall show capabilities: {}",
        String::from_utf8_lossy(&caps.stderr)
    );
    std::fs::write(sw.join("capabilities"), &caps.stdout).unwrap();
    let swout = dir.join("firewall");
    // `shorewall compile -e` must not touch the host firewall: compare before/after
    let host_rules = || {
        Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    let host_before = host_rules();
    let swt = time(3, || {
        ok(Command::new("shorewall").args([
            "compile",
            "-e",
            &sw.to_string_lossy(),
            &swout.to_string_lossy(),
        ]))
    });
    let host_untouched = host_before == host_rules();
    let swrules = std::fs::read_to_string(&swout)
        .map(|t| t.lines().filter(|l| l.starts_with("-A ")).count())
        .unwrap_or(0);
    // nft -f load of labwall's output in a netns with veth stand-ins
    for (n, name) in ["eth0", "eth1"]
        .iter()
        .chain(
            (1..=N)
                .map(|v| Box::leak(format!("vlan{}", 100 + v).into_boxed_str()) as &str)
                .collect::<Vec<_>>()
                .iter(),
        )
        .enumerate()
    {
        ok(Command::new("ip").args([
            "-n",
            &ns,
            "link",
            "add",
            name,
            "type",
            "veth",
            "peer",
            "name",
            &format!("p{n}"),
        ]));
    }
    let rs = out.join("ruleset.nft").to_string_lossy().into_owned();
    let load = time(11, || {
        ok(Command::new("ip").args(["netns", "exec", &ns, "nft", "-f", &rs]))
    });
    let check = time(5, || {
        ok(Command::new("ip").args(["netns", "exec", &ns, "nft", "-c", "-f", &rs]))
    });
    drop(nsg);
    println!("site: {} (25 VLANs), labwall output {rules} nft rules; shorewall output {swrules} iptables rules", site.display());
    println!("labwall compile (process, median of 21):   {lw:8.2} ms");
    println!("labwall compile_file (library, median 21): {lib:8.2} ms");
    println!("shorewall compile -e (median of 3):        {swt:8.2} ms");
    println!("host nft ruleset unchanged by shorewall compile -e: {host_untouched}");
    println!(
        "ratio shorewall/labwall (process):         {:8.1}x",
        swt / lw
    );
    println!("nft -f load in netns (median of 11):       {load:8.2} ms");
    println!("nft -c -f check (median of 5):             {check:8.2} ms");
}
