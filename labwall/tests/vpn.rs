//! The vpn role: one VPN appliance's files from tests/sites/vpn (golden files under
//! golden/vpn/, LABWALL_BLESS=1 regenerates), every cross-reference error with its
//! file:line:col (sites/vpn/bad.lw, novpn.lw), and, as root, the generated ruleset loaded with
//! nft and tinyproxy from Debian run on the generated config inside network namespaces:
//! CONNECT to the server's own name and daemon port passes, anything else is refused, and the
//! daemons are not reachable from outside but through the relay.

use labwall::{compile_source, parse::FsLoader, Options};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn check(name: &str, got: &str) {
    let p = dir().join("golden/vpn").join(name);
    if std::env::var("LABWALL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (LABWALL_BLESS=1 creates it)", p.display()));
    assert_eq!(want, got, "{} differs (LABWALL_BLESS=1)", p.display());
}

fn compile(site: &str) -> Result<labwall::Compiled, String> {
    let p = dir().join("sites/vpn").join(site);
    let t = std::fs::read_to_string(&p).unwrap();
    let opts = Options {
        role: "MASTER".into(),
        defines: vec![("HOSTNAME".into(), "fw".into())],
        ..Options::default()
    };
    compile_source(&FsLoader, &p, &t, &opts).map_err(|d| labwall::diag::render_all(&d))
}

fn files(instance: &str) -> Vec<(String, String)> {
    let c = compile("site.lw").unwrap();
    labwall::vpn::vpn_files(&c.site, instance).unwrap()
}

fn get<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    &f.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name}"))
        .1
}

#[test]
fn golden_vpn1_and_vpn2() {
    for i in ["vpn1", "vpn2"] {
        for (name, text) in files(i) {
            check(&format!("{i}/{}", name.replace('/', "__")), &text);
        }
    }
}

#[test]
fn model_and_contract() {
    let c = compile("site.lw").unwrap();
    let v = &c.site.vpn;
    assert_eq!(
        v.vlans
            .iter()
            .map(|x| (x.vlan, x.peers))
            .collect::<Vec<_>>(),
        [(10, false), (20, true)]
    );
    let s = v.server("site.lw", "vpn2").unwrap();
    assert_eq!(
        (s.legs.len(), s.nas_secret.as_str(), s.outside.to_string()),
        (2, "vpn2", "10.1.1.22".into())
    );
    let e = v.server("site.lw", "vpn3").unwrap_err();
    assert!(
        e.contains("instance vpn3 is not a VPNSERVER (the site has vpn1 vpn2)"),
        "{e}"
    );
    let f = files("vpn1");
    let a: ramux_contract::vpn::VpnAuth = toml::from_str(get(&f, "vpn-auth.toml")).unwrap();
    assert_eq!(
        (a.instance.as_str(), a.radius.len(), a.daemons.len()),
        ("vpn1", 2, 2)
    );
    assert_eq!(a.radius[0].secret, "radius/nas/vpn1");
    let d = &a.daemons[0];
    assert_eq!(
        (d.management.as_str(), d.leg.as_str()),
        ("/run/ramux/vpn/vlan10.sock", "eth0.10")
    );
    assert!(d.reserved.contains(&"172.16.10.1".to_string()));
    for vid in [10, 20] {
        let conf = get(&f, &format!("openvpn/vlan{vid}.conf"));
        for l in [
            format!(
                "management {}/vlan{vid}.sock unix\n",
                ramux_contract::vpn::MGMT_DIR
            ),
            "management-client-auth\n".into(),
            "management-hold\n".into(),
            "auth-user-pass-optional\n".into(),
            format!("port {}\n", 1100 + vid),
            format!("dev tun{vid}\n"),
            "verb 3\n".into(),
        ] {
            assert!(conf.contains(&l), "{l} not in vlan{vid}.conf");
        }
        for l in ["ifconfig-pool", "client-to-client", "dev-type tap"] {
            assert!(
                !conf.lines().any(|x| x.starts_with(l)),
                "{l} in vlan{vid}.conf"
            );
        }
    }
    // the dns example's outputs do not change with the vpn statements
    let dns = compile("site.lw").unwrap();
    assert!(labwall::dnsmasq::dnsmasq_conf(&dns.site, "dns1").is_ok());
}

/// Each cross-reference error, refused with its file:line:col.
#[test]
fn bad_sites_are_refused_with_their_lines() {
    let mut all = compile("bad.lw").unwrap_err();
    all += &compile("novpn.lw").unwrap_err();
    check("bad.txt", &all);
    for want in [
        "bad.lw:12:19: error: VLAN VLAN40 is unknown",
        "bad.lw:16:46: error: VLAN30 is not served by the VPN",
        "bad.lw:16:65: error: VPN server vpn1 has no leg in VLAN20",
        "bad.lw:19:11: error: VPN server vpn2 has no NAS line",
        "bad.lw:23:11: error: leg of vpn3 in VLAN 10: 172.16.10.60 is inside the dynamic range",
        "bad.lw:27:11: error: NAS vpn4 (line 26) is not marked VPN",
        "bad.lw:47:15: error: VPN user carol: VLAN30 is not served by the VPN",
        "bad.lw:48:21: error: VPN user dave: 172.16.10.70 is inside the dynamic range",
        "novpn.lw:8:1: error: VPNSERVER without a VPN line",
    ] {
        assert!(all.contains(want), "missing: {want}\n{all}");
    }
}

/// `labwall vpn`: every file into DIR (nested openvpn/), replaced whole; an unknown instance
/// writes nothing and names the servers.
#[test]
fn cli_writes_the_files_atomically() {
    let tmp = std::env::temp_dir().join(format!("lwvpn-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let site = dir().join("sites/vpn/site.lw");
    let run = |inst: &str, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_labwall"))
            .args([
                "vpn",
                site.to_str().unwrap(),
                "-D",
                "HOSTNAME=fw",
                "--instance",
                inst,
                "-o",
            ])
            .arg(out)
            .output()
            .unwrap()
    };
    let out = tmp.join("vpn1");
    let o = run("vpn1", &out);
    assert!(o.status.success(), "{o:?}");
    let conf = std::fs::read_to_string(out.join("openvpn/vlan20.conf")).unwrap();
    assert_eq!(conf, get(&files("vpn1"), "openvpn/vlan20.conf"));
    let o = run("vpn9", &tmp.join("vpn9"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !tmp.join("vpn9").exists(), "{e}");
    assert!(
        e.contains("instance vpn9 is not a VPNSERVER (the site has vpn1 vpn2)"),
        "{e}"
    );
    let o = run("vpn2", &out);
    assert!(o.status.success(), "{o:?}");
    let f = std::fs::read_to_string(out.join("tinyproxy.filter")).unwrap();
    assert_eq!(f, "^vpn2\\.lab\\.demo\\.fr$\n");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The fuzz body reaches the new statements (and truncations of them).
#[test]
fn fuzz_body_takes_the_vpn_site() {
    let t = std::fs::read_to_string(dir().join("sites/vpn/site.lw")).unwrap();
    let t = t.replace("INCLUDE users.lw", "");
    for cut in (0..t.len()).step_by(89) {
        labwall::fuzz_compile(&t.as_bytes()[..cut]);
    }
}

// ---- namespaces: the ruleset in the kernel, tinyproxy from Debian on the generated config ----

fn sh(args: &[&str]) -> Result<String, String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !o.status.success() {
        return Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Namespaces `vpn` (the appliance: eth1 outside, eth0.10 leg), `out` (a user's machine on
/// the outside) and `v10` (a VLAN 10 host); Drop kills the daemons and deletes all of them.
struct Lab {
    vpn: String,
    out: String,
    v10: String,
    tmp: PathBuf,
    daemons: Vec<Child>,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let id = std::process::id();
        let tmp = std::env::temp_dir().join(format!("lwvpn-{id}"));
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let (vpn, out, v10) = (format!("lwv{id}"), format!("lwo{id}"), format!("lwh{id}"));
        let lab = Lab {
            vpn,
            out,
            v10,
            tmp,
            daemons: Vec::new(),
        };
        for ns in [&lab.vpn, &lab.out, &lab.v10] {
            sh(&["ip", "netns", "add", ns])?;
        }
        lab.link(
            &lab.vpn,
            "eth1",
            "10.1.1.20/24",
            &lab.out,
            "o0",
            "10.1.1.50/24",
        )?;
        lab.link(
            &lab.vpn,
            "eth0.10",
            "172.16.10.20/24",
            &lab.v10,
            "h0",
            "172.16.10.21/24",
        )?;
        Ok(lab)
    }
    fn link(&self, na: &str, a: &str, aa: &str, nb: &str, b: &str, ab: &str) -> Result<(), String> {
        sh(&[
            "ip", "link", "add", a, "netns", na, "type", "veth", "peer", b, "netns", nb,
        ])?;
        for (ns, i, ad) in [(na, a, aa), (nb, b, ab)] {
            self.exec(ns, &["ip", "addr", "add", ad, "dev", i])?;
            self.exec(ns, &["ip", "link", "set", i, "up"])?;
            self.exec(ns, &["ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }
    fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend(args);
        sh(&v)
    }
    fn spawn(&mut self, ns: &str, args: &[&str]) -> Result<(), String> {
        let c = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{args:?}: {e}"))?;
        self.daemons.push(c);
        Ok(())
    }
    /// Wait until something listens on `port` (tcp) in `ns`.
    fn listening(&self, ns: &str, port: u16) -> Result<(), String> {
        for _ in 0..100 {
            if self
                .exec(ns, &["ss", "-ltn"])
                .is_ok_and(|o| o.contains(&format!(":{port} ")))
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        Err(format!("nothing listens on {port} in {ns}"))
    }
    /// A socat listener answering `banner` on `addr:port` in `ns` (a stand-in daemon).
    fn banner(&mut self, ns: &str, addr: &str, port: u16, banner: &str) -> Result<(), String> {
        let l = format!("TCP-LISTEN:{port},bind={addr},reuseaddr,fork");
        let cmd = format!("SYSTEM:echo {banner}");
        self.spawn(ns, &["socat", &l, &cmd])?;
        self.listening(ns, port)
    }
    /// A CONNECT through the relay from the outside machine: what comes back.
    fn connect(&self, target: &str) -> String {
        let req = format!("(printf 'CONNECT {target} HTTP/1.0\\r\\nHost: {target}\\r\\n\\r\\n'; sleep 1) | socat -t2 - TCP:10.1.1.20:443,connect-timeout=3");
        self.exec(&self.out, &["sh", "-c", &req])
            .unwrap_or_else(|e| e)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.vpn, &self.out, &self.v10] {
            let _ = sh(&["ip", "netns", "del", ns]);
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
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
    let ok = root
        && ["nft", "tinyproxy", "socat", "ip", "setpriv"]
            .iter()
            .all(|b| have(b));
    if !ok {
        eprintln!("skipped: needs root, nft, tinyproxy, socat, ip and setpriv");
    }
    ok
}

/// The counter of the rule whose comment is `comment` in the loaded table.
fn counter(lab: &Lab, comment: &str) -> u64 {
    let l = lab
        .exec(&lab.vpn, &["nft", "list", "table", "inet", "ramux_vpn"])
        .unwrap_or_default();
    let line = l
        .lines()
        .find(|l| l.contains(&format!("comment \"{comment}\"")))
        .unwrap_or("");
    let w: Vec<&str> = line.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "packets").map(|i| i + 1);
    i.and_then(|i| w.get(i)?.parse().ok()).unwrap_or(0)
}

/// The generated ruleset and tinyproxy config, in a namespace, against real connections.
#[test]
fn relay_passes_only_the_servers_own_name_and_ports() {
    if !can_run_lab() {
        return;
    }
    let f = files("vpn1");
    let mut lab = Lab::new().unwrap();
    let nft = lab.tmp.join("ruleset.nft");
    std::fs::write(&nft, get(&f, "ruleset.nft")).unwrap();
    // loaded twice: the second load replaces the table (what a reload does)
    for _ in 0..2 {
        lab.exec(&lab.vpn, &["nft", "-f", &nft.display().to_string()])
            .unwrap();
    }
    // split horizon: ip netns exec bind-mounts /etc/netns/<ns>/hosts over /etc/hosts
    let etc = PathBuf::from(format!("/etc/netns/{}", lab.vpn));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), get(&f, "hosts")).unwrap();
    let filter = lab.tmp.join("tinyproxy.filter");
    std::fs::write(&filter, get(&f, "tinyproxy.filter")).unwrap();
    let conf = get(&f, "tinyproxy.conf")
        .replace("/etc/ramux/tinyproxy.filter", &filter.display().to_string());
    let cpath = lab.tmp.join("tinyproxy.conf");
    std::fs::write(&cpath, conf).unwrap();
    lab.banner(&lab.vpn.clone(), "127.0.0.1", 1110, "daemon-vlan10")
        .unwrap();
    lab.banner(&lab.vpn.clone(), "127.0.0.1", 1120, "daemon-vlan20")
        .unwrap();
    lab.banner(&lab.vpn.clone(), "127.0.0.1", 22, "local-ssh")
        .unwrap();
    lab.banner(&lab.v10.clone(), "172.16.10.21", 1110, "vlan-host")
        .unwrap();
    lab.spawn(
        &lab.vpn.clone(),
        &["tinyproxy", "-d", "-c", &cpath.display().to_string()],
    )
    .unwrap();
    lab.listening(&lab.vpn, 443).unwrap();

    let ok = lab.connect("vpn1.lab.demo.fr:1110");
    assert!(ok.contains(" 200 ") && ok.contains("daemon-vlan10"), "{ok}");
    let ok = lab.connect("VPN1.lab.demo.fr:1120");
    assert!(ok.contains(" 200 ") && ok.contains("daemon-vlan20"), "{ok}");
    for refused in [
        "vpn1.lab.demo.fr:22",
        "172.16.10.21:1110",
        "127.0.0.1:1110",
        "vpn2.lab.demo.fr:1110",
        "localhost:1110",
    ] {
        let r = lab.connect(refused);
        assert!(
            r.contains(" 403 ") && !r.contains("daemon-") && !r.contains("vlan-host"),
            "{refused}: {r}"
        );
    }
    // no way around the relay: the daemons' ports from outside, and the leg
    let direct = lab.exec(
        &lab.out,
        &["socat", "-T1", "-", "TCP:10.1.1.20:1110,connect-timeout=1"],
    );
    assert!(direct.is_err(), "{direct:?}");
    assert!(counter(&lab, "daemons: only through the relay") >= 1);
    let from_vlan = lab.exec(
        &lab.v10,
        &[
            "socat",
            "-T1",
            "-",
            "TCP:172.16.10.20:443,connect-timeout=1",
        ],
    );
    assert!(from_vlan.is_err(), "{from_vlan:?}");
    assert!(counter(&lab, "input dropped") >= 1);
    // under tinyproxy's filter: its user's sockets reach nothing but the daemons
    let as_proxy = [
        "setpriv",
        "--reuid",
        "tinyproxy",
        "--regid",
        "tinyproxy",
        "--clear-groups",
        "socat",
        "-T1",
        "-",
    ];
    let to_host = [&as_proxy[..], &["TCP:172.16.10.21:1110,connect-timeout=1"]].concat();
    assert!(lab.exec(&lab.vpn, &to_host).is_err());
    assert!(counter(&lab, "relay egress refused") >= 1);
    let to_daemon = [&as_proxy[..], &["TCP:127.0.0.1:1110,connect-timeout=1"]].concat();
    let d = lab.exec(&lab.vpn, &to_daemon).unwrap();
    assert!(d.contains("daemon-vlan10"), "{d}");
}
