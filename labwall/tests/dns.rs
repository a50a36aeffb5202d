//! The dns role: dnsmasq.conf and the routers' relay from tests/sites/dns (golden files under
//! golden/dns/, LABWALL_BLESS=1 regenerates), every cross-reference error with its
//! file:line:col (sites/dns_bad), and dnsmasq from Debian serving the generated file to busybox
//! udhcpc inside network namespaces (root; skipped otherwise).

use labwall::{compile_source, parse::FsLoader, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn check(name: &str, got: &str) {
    let p = dir().join("golden/dns").join(name);
    if std::env::var("LABWALL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (LABWALL_BLESS=1 creates it)", p.display()));
    assert_eq!(want, got, "{} differs (LABWALL_BLESS=1)", p.display());
}

fn compile(site: &str, role: &str) -> Result<labwall::Compiled, String> {
    let p = dir().join("sites").join(site);
    let t = std::fs::read_to_string(&p).unwrap();
    let opts = Options {
        role: role.into(),
        defines: vec![("HOSTNAME".into(), "fw".into())],
        ..Options::default()
    };
    compile_source(&FsLoader, &p, &t, &opts).map_err(|d| labwall::diag::render_all(&d))
}

fn conf(instance: &str) -> String {
    let c = compile("dns/site.lw", "MASTER").unwrap();
    labwall::dnsmasq::dnsmasq_conf(&c.site, instance).unwrap()
}

#[test]
fn golden_dnsmasq_and_relay() {
    for i in ["dns1", "dns2"] {
        check(&format!("{i}.conf"), &conf(i));
    }
    for role in ["MASTER", "BACKUP"] {
        let c = compile("dns/site.lw", role).unwrap();
        let relay = labwall::emit::dhcp_relay_conf(&c.site).unwrap();
        check(&format!("{role}/dhcp-relay.conf"), &relay);
        check(&format!("{role}/ruleset.nft"), &c.outputs.ruleset_nft);
    }
}

#[test]
fn services_are_filled_from_the_site_and_its_include() {
    let s = compile("dns/site.lw", "MASTER").unwrap().site.services;
    assert_eq!(s.domain.as_deref(), Some("lab.demo.fr"));
    assert_eq!((s.servers.len(), s.dhcp.len(), s.hosts.len()), (2, 2, 3));
    assert_eq!(
        (s.nas.len(), s.mab.len(), s.dot1x.len(), s.vpn_users.len()),
        (2, 3, 3, 2)
    );
    assert!(s.nas.iter().any(|x| x.vpn && x.secret == "vpn1"));
    assert_eq!(s.relayed_vlans(), vec![20]);
    let cn = s.dot1x.iter().find(|d| d.name == "alice-8021x").unwrap();
    assert_eq!((cn.kind, cn.vlan), (labwall::aaa::IdentityKind::CertCn, 10));
}

/// The dynamic ranges of dns1 and dns2 are disjoint and together make the DHCP line's range.
#[test]
fn ranges_are_split_between_the_servers() {
    let range = |c: &str, tag: &str| -> (u32, u32) {
        let l = c
            .lines()
            .find(|l| l.starts_with(&format!("dhcp-range=set:{tag},")));
        let f: Vec<&str> = l.unwrap().split(',').collect();
        let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        (ip(f[1]), ip(f[2]))
    };
    let (a, b) = (conf("dns1"), conf("dns2"));
    for (tag, lo, hi) in [
        ("vid10", 0xac100a32, 0xac100a63),
        ("vid20", 0xac101432, 0xac101463),
    ] {
        let (r1, r2) = (range(&a, tag), range(&b, tag));
        assert_eq!((r1.0, r1.1 + 1, r2.1), (lo, r2.0, hi), "{tag}");
    }
    for c in [&a, &b] {
        assert!(c.contains("\nno-ping\n") && !c.contains("\ndhcp-authoritative\n"));
        assert!(c.contains("\nlocal=/lab.demo.fr/\n") && c.contains("\nserver=192.0.2.53\n"));
        assert!(c.contains("dhcp-host=52:54:00:20:00:31,172.16.20.31,printer\n"));
    }
}

#[test]
fn unknown_instance_names_the_servers() {
    let c = compile("dns/site.lw", "MASTER").unwrap();
    let e = labwall::dnsmasq::dnsmasq_conf(&c.site, "dns3").unwrap_err();
    assert_eq!(
        e,
        "site.lw: no server dns3; the SERVERS line names: dns1 dns2"
    );
}

/// Each cross-reference error of the issue, refused with its file:line:col.
#[test]
fn bad_sites_are_refused_with_their_lines() {
    let mut all = compile("dns_bad/site.lw", "MASTER").unwrap_err();
    all += &compile("dns_bad/noserver.lw", "MASTER").unwrap_err();
    check("bad.txt", &all);
    for want in [
        "site.lw:13:10: error: static host pc1: 172.16.10.60 is inside the dynamic range",
        "site.lw:15:10: error: static host pc2 (192.168.7.2) is outside every VLAN",
        "site.lw:17:27: error: MAC 52:54:00:10:00:01 is already on static host line 13",
        "site.lw:19:10: error: 172.16.10.33 is outside VLAN20 (172.16.20.0/24), where the MAB",
        "site.lw:19:10: error: static host pc4: 172.16.10.33 is already the address of",
        "site.lw:21:22: error: NAS sw1 has no secret name",
        "users.lw:4:23: error: VLAN VLAN40 is unknown",
        "users.lw:5:18: error: VLAN VLAN40 is unknown",
        "site.lw:27:13: error: 1 dynamic address(es) for 2 servers",
        "users.lw:7:20: error: VPN user bob: 172.16.10.70 is inside the dynamic range",
        "users.lw:8:22: error: VPN address 172.16.20.130 is outside VLAN10",
        "noserver.lw:6:6: error: DHCP on VLAN10 but no DNS/DHCP server in the site",
    ] {
        assert!(all.contains(want), "missing: {want}\n{all}");
    }
}

/// The fuzz body reaches the new statements and generators (and truncations of them).
#[test]
fn fuzz_body_takes_the_dns_site() {
    let t = std::fs::read_to_string(dir().join("sites/dns/site.lw")).unwrap();
    let t = t.replace("INCLUDE users.lw", "");
    for cut in (0..t.len()).step_by(97) {
        labwall::fuzz_compile(&t.as_bytes()[..cut]);
    }
    labwall::fuzz_compile(t.as_bytes());
}

// ---- namespaces: dnsmasq from Debian on the generated file, busybox udhcpc as the client ----

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

/// Namespaces `srv` (the appliance, leg `vlan10` 172.16.10.10) and `cli` (client `c0`), and for
/// [`Lab::relayed`] a router `rtr` between them (`vlan10`/`vlan20`, the MASTER's addresses).
/// Drop kills the daemons and deletes the namespaces.
pub struct Lab {
    pub srv: String,
    pub cli: String,
    pub rtr: String,
    pub tmp: PathBuf,
    daemons: Vec<std::process::Child>,
}

impl Lab {
    fn empty(tag: &str) -> Result<Lab, String> {
        let id = format!("{tag}{}", std::process::id());
        let tmp = std::env::temp_dir().join(format!("lwdns-{id}"));
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let (srv, cli, rtr) = (format!("lws{id}"), format!("lwc{id}"), format!("lwr{id}"));
        let lab = Lab {
            srv,
            cli,
            rtr,
            tmp,
            daemons: Vec::new(),
        };
        for ns in [&lab.srv, &lab.cli] {
            sh(&["ip", "netns", "add", ns])?;
        }
        Ok(lab)
    }
    /// A veth `a`@`na` -- `b`@`nb`, both up, `a` with `addr` if given.
    fn link(&self, na: &str, a: &str, nb: &str, b: &str, addr: Option<&str>) -> Result<(), String> {
        sh(&[
            "ip", "link", "add", a, "netns", na, "type", "veth", "peer", b, "netns", nb,
        ])?;
        if let Some(ad) = addr {
            self.exec(na, &["ip", "addr", "add", ad, "dev", a])?;
        }
        for (ns, i) in [(na, a), (nb, b), (na, "lo"), (nb, "lo")] {
            self.exec(ns, &["ip", "link", "set", i, "up"])?;
        }
        Ok(())
    }
    /// The client on the appliance's own VLAN.
    pub fn direct(tag: &str) -> Result<Lab, String> {
        let lab = Lab::empty(tag)?;
        lab.link(&lab.srv, "vlan10", &lab.cli, "c0", Some("172.16.10.10/24"))?;
        Ok(lab)
    }
    /// The client on VLAN 20, behind a router that relays (the MASTER's addresses).
    pub fn relayed(tag: &str) -> Result<Lab, String> {
        let lab = Lab::empty(tag)?;
        sh(&["ip", "netns", "add", &lab.rtr])?;
        lab.link(
            &lab.srv,
            "vlan10",
            &lab.rtr,
            "vlan10",
            Some("172.16.10.10/24"),
        )?;
        lab.link(&lab.rtr, "vlan20", &lab.cli, "c0", Some("172.16.20.100/24"))?;
        lab.exec(
            &lab.rtr,
            &["ip", "addr", "add", "172.16.10.100/24", "dev", "vlan10"],
        )?;
        let via = [
            "ip",
            "route",
            "add",
            "172.16.20.0/24",
            "via",
            "172.16.10.100",
        ];
        lab.exec(&lab.srv, &via)?;
        Ok(lab)
    }
    /// dns1 (`srv`) and dns2 (`rtr`, 172.16.10.14) and the client on one bridge (namespace
    /// `<rtr>b`, deleted by Drop with the others).
    pub fn two_servers(tag: &str) -> Result<Lab, String> {
        let lab = Lab::empty(tag)?;
        let br = format!("{}b", lab.rtr);
        sh(&["ip", "netns", "add", &lab.rtr])?;
        sh(&["ip", "netns", "add", &br])?;
        lab.exec(&br, &["ip", "link", "add", "br0", "type", "bridge"])?;
        lab.exec(&br, &["ip", "link", "set", "br0", "up"])?;
        let legs = [
            (&lab.srv, "vlan10", "172.16.10.10/24"),
            (&lab.rtr, "vlan10", "172.16.10.14/24"),
        ];
        for (n, (ns, i, a)) in legs.into_iter().enumerate() {
            lab.link(ns, i, &br, &format!("p{n}"), Some(a))?;
        }
        lab.link(&lab.cli, "c0", &br, "p9", None)?;
        for p in ["p0", "p1", "p9"] {
            lab.exec(&br, &["ip", "link", "set", p, "master", "br0"])?;
        }
        Ok(lab)
    }
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend(args);
        sh(&v)
    }
    /// dnsmasq in namespace `ns` on `conf` (plus test-only paths); waits for its port 67.
    pub fn start_dnsmasq(&mut self, ns: &str, conf: &str) -> Result<(), String> {
        let t = |n: &str| self.tmp.join(format!("{ns}.{n}")).display().to_string();
        std::fs::write(t("conf"), conf).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "dnsmasq",
                "-k",
                "--user=root",
                "--log-dhcp",
            ])
            .arg(format!("--conf-file={}", t("conf")))
            .arg(format!("--dhcp-leasefile={}", t("leases")))
            .arg(format!("--pid-file={}", t("pid")))
            .arg(format!("--log-facility={}", t("log")))
            .spawn()
            .map_err(|e| format!("dnsmasq: {e}"))?;
        self.daemons.push(child);
        for _ in 0..50 {
            if self
                .exec(ns, &["ss", "-lun"])
                .is_ok_and(|o| o.contains(":67 "))
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!(
            "dnsmasq did not start: {}",
            std::fs::read_to_string(t("log")).unwrap_or_default()
        ))
    }
    /// busybox udhcpc on `c0` with `mac` (and host name `name`): the bound lease's variables.
    pub fn lease(&self, mac: &str, name: &str) -> Result<String, String> {
        self.exec(&self.cli, &["ip", "link", "set", "c0", "address", mac])?;
        let out = self.tmp.join(format!("lease-{mac}"));
        let script = self.tmp.join("udhcpc.sh");
        let body = format!("#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip router=$router dns=$dns domain=$domain\" > {}\nexit 0\n", out.display());
        std::fs::write(&script, body).map_err(|e| e.to_string())?;
        sh(&["chmod", "755", &script.display().to_string()])?;
        let host = format!("hostname:{name}");
        let s = script.display().to_string();
        let args = [
            "busybox", "udhcpc", "-i", "c0", "-f", "-q", "-n", "-t", "4", "-T", "2", "-x", &host,
            "-s", &s,
        ];
        self.exec(&self.cli, &args)?;
        std::fs::read_to_string(&out)
            .map(|s| s.trim().to_string())
            .map_err(|e| e.to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        let br = format!("{}b", self.rtr);
        for ns in [&self.srv, &self.cli, &self.rtr, &br] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn can_run_lab() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(root && have("dnsmasq") && have("busybox") && have("dig")) {
        eprintln!("skipped: needs root, dnsmasq, busybox and dig (scripts/prereqs)");
        return false;
    }
    true
}

#[test]
fn dnsmasq_leases_and_resolves_in_a_namespace() {
    if !can_run_lab() {
        return;
    }
    let mut lab = Lab::direct("t").unwrap();
    let srv = lab.srv.clone();
    lab.start_dnsmasq(&srv, &conf("dns1")).unwrap();
    let st = lab.lease("52:54:00:10:00:30", "pc10").unwrap();
    assert_eq!(
        st,
        "ip=172.16.10.30 router=172.16.10.1 dns=172.16.10.10 172.16.10.14 domain=lab.demo.fr"
    );
    let dy = lab.lease("52:54:00:10:00:99", "leased1").unwrap();
    let ip = dy
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("ip=")
        .to_string();
    let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!((50..=74).contains(&last), "dns1's half of .50-.99: {dy}");
    assert!(
        dy.ends_with("router=172.16.10.1 dns=172.16.10.10 172.16.10.14 domain=lab.demo.fr"),
        "{dy}"
    );
    lab.exec(
        &lab.cli,
        &["ip", "addr", "add", "172.16.10.250/24", "dev", "c0"],
    )
    .unwrap();
    let dig = |q: &[&str]| {
        let mut v = vec!["dig", "+short", "+time=2", "+tries=2", "@172.16.10.10"];
        v.extend(q);
        lab.exec(&lab.cli, &v).unwrap().trim().to_string()
    };
    assert_eq!(dig(&["printer.lab.demo.fr"]), "172.16.20.31");
    assert_eq!(dig(&["printer.lab.demo.fr", "AAAA"]), "2001:db8:20::31");
    assert_eq!(dig(&["leased1.lab.demo.fr"]), ip);
    assert_eq!(dig(&["-x", "172.16.10.21"]), "web1.lab.demo.fr.");
    assert_eq!(dig(&["alice.vpn.lab.demo.fr"]), "172.16.10.130");
}

/// VLAN 20 has no server leg: the router's generated dhcp-relay.conf (dnsmasq relay-only) and
/// ruleset.nft (loaded in the router namespace) bring pc20 its static lease from dns1.
#[test]
fn the_routers_relay_brings_a_lease_through_the_ruleset() {
    if !can_run_lab() {
        return;
    }
    let c = compile("dns/site.lw", "MASTER").unwrap();
    let mut lab = Lab::relayed("r").unwrap();
    let rules = lab.tmp.join("ruleset.nft");
    std::fs::write(&rules, &c.outputs.ruleset_nft).unwrap();
    let (srv, rtr) = (lab.srv.clone(), lab.rtr.clone());
    lab.exec(&rtr, &["nft", "-f", &rules.display().to_string()])
        .unwrap();
    lab.start_dnsmasq(&srv, &conf("dns1")).unwrap();
    let relay = labwall::emit::dhcp_relay_conf(&c.site).unwrap();
    lab.start_dnsmasq(&rtr, &relay).unwrap();
    let st = lab.lease("52:54:00:20:00:30", "pc20").unwrap();
    assert_eq!(
        st,
        "ip=172.16.20.30 router=172.16.20.1 dns=172.16.10.10 172.16.10.14 domain=lab.demo.fr"
    );
    let dy = lab.lease("52:54:00:20:00:98", "leased2").unwrap();
    assert!(
        dy.starts_with("ip=172.16.20.") && dy.contains("router=172.16.20.1"),
        "{dy}"
    );
    let counters = lab.exec(&rtr, &["nft", "list", "ruleset"]).unwrap();
    // the router's copy to the servers (their answers are then conntrack-established)
    let to_servers = "ip daddr { 172.16.10.10, 172.16.10.14 } udp dport 67 counter packets";
    let hit = counters
        .lines()
        .any(|l| l.contains(to_servers) && !l.contains("packets 0 "));
    assert!(
        hit,
        "the relayed requests went through fw -> srv udp/67:\n{counters}"
    );
}

/// dns1 and dns2 on one VLAN: new clients get dns1's half and nobody is NAKed; with dns1
/// stopped, dns2 leases from its own half.
#[test]
fn two_servers_split_without_naks() {
    if !can_run_lab() {
        return;
    }
    let mut lab = Lab::two_servers("s").unwrap();
    let (s1, s2) = (lab.srv.clone(), lab.rtr.clone());
    lab.start_dnsmasq(&s1, &conf("dns1")).unwrap();
    lab.start_dnsmasq(&s2, &conf("dns2")).unwrap();
    let last = |l: &str| -> u8 {
        let ip = l
            .split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches("ip=");
        ip.rsplit('.').next().unwrap().parse().unwrap()
    };
    for n in 0..3 {
        let l = lab
            .lease(&format!("52:54:00:77:00:0{n}"), &format!("h{n}"))
            .unwrap();
        assert!((50..=74).contains(&last(&l)), "dns1 answers first: {l}");
    }
    let logs = std::fs::read_to_string(lab.tmp.join(format!("{s1}.log"))).unwrap()
        + &std::fs::read_to_string(lab.tmp.join(format!("{s2}.log"))).unwrap();
    assert!(!logs.contains("DHCPNAK"), "{logs}");
    let mut d1 = lab.daemons.remove(0);
    d1.kill().unwrap();
    d1.wait().unwrap();
    let l = lab.lease("52:54:00:77:00:09", "h9").unwrap();
    assert!(
        (75..=99).contains(&last(&l)),
        "dns2 takes over from its half: {l}"
    );
}

/// `labwall dns -o DIR` writes the golden file; `compile` adds the routers' dhcp-relay.conf.
#[test]
fn cli_dns_and_compile_write_their_files() {
    let bin = env!("CARGO_BIN_EXE_labwall");
    let site = dir().join("sites/dns/site.lw");
    let out = std::env::temp_dir().join(format!("lwdns-cli-{}", std::process::id()));
    let run = |args: &[&str]| Command::new(bin).args(args).output().unwrap();
    let s = site.to_str().unwrap();
    let o = out.join("dns2");
    let r = run(&[
        "dns",
        s,
        "--instance",
        "dns2",
        "-D",
        "HOSTNAME=fw",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got = std::fs::read_to_string(o.join("dnsmasq.conf")).unwrap();
    let want = std::fs::read_to_string(dir().join("golden/dns/dns2.conf")).unwrap();
    assert_eq!(got, want);
    let r = run(&["dns", s, "--instance", "dns9", "-D", "HOSTNAME=fw"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no server dns9"));
    let m = out.join("master");
    let r = run(&[
        "compile",
        s,
        "--role",
        "MASTER",
        "-D",
        "HOSTNAME=fw",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let relay = std::fs::read_to_string(m.join("dhcp-relay.conf")).unwrap();
    assert!(
        relay.contains("dhcp-relay=172.16.20.100,172.16.10.14\n"),
        "{relay}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
