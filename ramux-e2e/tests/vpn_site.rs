//! The VPN appliance end to end with every real part (root; network namespaces made and removed
//! here, names with the pid): the vpn example site (labwall/tests/sites/vpn/site.lw) compiled by
//! labwall; vpn1's generated network.ip (a veth per VLAN leg stands in for the 802.1Q devices),
//! sysctl.conf, ruleset.nft, tinyproxy relay and both OpenVPN servers; the real ramux-vpn-auth
//! ($RAMUX_BIN_DIR) on the generated vpn-auth.toml; FreeRADIUS 3.2 on the `labwall radius`
//! files at dns1 (172.16.10.10, VLAN 10) through ramux-radius-start; throwaway secrets from
//! `vbuild secrets init --site`; real OpenVPN clients on the outside with the profiles of
//! `vbuild vpn-client`; the MASTER router on its generated network.ip, sysctl.conf and ruleset.nft
//! (the VIPs added by hand, as keepalived would), so a VPN user's traffic to another VLAN meets
//! the site's rules where the site puts them.
//!
//! The site is the example site plus a second VPN user in each VLAN (`carol`, `dave`, written
//! into the test's own copy of users.lw: the example has one per VLAN, and user-to-user needs two).
//!
//! ```text
//!  out 10.1.1.50 (br0) --443--> vpn eth1 10.1.1.20 tinyproxy -> 127.0.0.1:1110/1120 openvpn (tun10/tun20)
//!   + c1 .51, c2 .52, c3 .53   vpn eth0.10 172.16.10.20 -- h10 br0 172.16.10.21 (host), .10 (FreeRADIUS) -- router vlan10 .100, VIP .1
//!     (one client each)        vpn eth0.20 172.16.20.20 -- h20 br0 172.16.20.21 -------------------------- router vlan20 .100, VIP .1
//! ```

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SITE: &str = "labwall/tests/sites/vpn/site.lw";
const MGMT_DIR: &str = "/run/ramux/vpn";
const WAIT: Duration = Duration::from_secs(30);

struct Lab {
    procs: Vec<(String, Child)>,
    ns: Vec<String>, // vpn, out, h10, h20, router, c1, c2, c3
    tmp: PathBuf,
    site: labwall::model::Site,
    /// The test's copy of the site (site.lw and users.lw with the extra users).
    site_path: PathBuf,
    /// The MASTER router's outputs of the same compilation.
    router: labwall::RoleOutputs,
    files: Vec<(String, String)>,
}

/// The test's extra VPN users (the example site has one per VLAN).
const MORE_USERS: &str = "VPNUSER carol VLAN10 172.16.10.131\nVPNUSER dave  VLAN20 172.16.20.131\n";
/// A certificate of the site's CA whose CN is no one's: not a VPNUSER, not an 802.1X identity.
const STRANGER: &str = "mallory";

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
        if !(std::thread::panicking() && std::env::var_os("RAMUX_KEEP").is_some()) {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

fn must(ns: &str, cmd: &str) -> String {
    let o = common::ns_sh(ns, cmd);
    assert!(
        o.status.success(),
        "in {ns}: {cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < WAIT {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {WAIT:?}");
}

impl Lab {
    fn vpn(&self) -> &str {
        &self.ns[0]
    }
    fn out(&self) -> &str {
        &self.ns[1]
    }
    fn h10(&self) -> &str {
        &self.ns[2]
    }
    fn router(&self) -> &str {
        &self.ns[4]
    }
    /// The extra outside machines, one VPN client each (a client's tun owns its VLAN's prefix).
    fn client_ns(&self, i: usize) -> &str {
        &self.ns[5 + i]
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.join(rel)
    }
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
    /// A generated file of vpn1, its run-time paths moved into the scratch directory.
    fn file(&self, name: &str) -> String {
        let t = &self.files.iter().find(|(n, _)| n == name).unwrap().1;
        t.replace(
            labwall::vpn::SECRETS,
            &self.path("secrets").display().to_string(),
        )
        .replace(MGMT_DIR, &self.path("mgmt").display().to_string())
        .replace(
            "/etc/ramux/tinyproxy.filter",
            &self.path("tinyproxy.filter").display().to_string(),
        )
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn spawn(&mut self, ns: &str, args: &[&str], log: &str, env: &[(&str, &Path)]) {
        let f = std::fs::File::create(self.path(log)).unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        self.procs.push((log.to_string(), child));
    }
    fn kill(&mut self, log: &str) {
        let i = self.procs.iter().position(|(l, _)| l == log).unwrap();
        let (_, mut c) = self.procs.remove(i);
        let _ = c.kill();
        let _ = c.wait();
    }

    fn new() -> Lab {
        for (t, p) in [
            ("openvpn", "openvpn"),
            ("freeradius", "freeradius"),
            ("tinyproxy", "tinyproxy"),
            ("nft", "nftables"),
            ("ping", "iputils-ping"),
            ("socat", "socat"),
        ] {
            common::require_tool(t, p);
        }
        let id = std::process::id();
        let tmp = PathBuf::from(format!("/tmp/ramux-vpnsite-{id}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("mgmt")).unwrap();
        // tinyproxy (its own user) reads its filter here
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let opts = labwall::Options {
            role: "MASTER".into(),
            defines: vec![("HOSTNAME".into(), "vpn1".into())],
            ..Default::default()
        };
        let src = common::repo_root().join(SITE);
        let dir = tmp.join("site");
        std::fs::create_dir_all(&dir).unwrap();
        let site_path = dir.join("site.lw");
        std::fs::copy(&src, &site_path).unwrap();
        let users = std::fs::read_to_string(src.with_file_name("users.lw")).unwrap();
        std::fs::write(dir.join("users.lw"), users + MORE_USERS).unwrap();
        let compiled = labwall::compile_path(&site_path, &opts).expect("the vpn site compiles");
        let site = compiled.site;
        let files = labwall::vpn::vpn_files(&site, "vpn1").unwrap();
        let ns = ["v", "o", "a", "b", "r", "c", "d", "e"]
            .iter()
            .map(|t| format!("rvs{id}{t}"))
            .collect();
        let lab = Lab {
            procs: vec![],
            ns,
            tmp,
            site,
            site_path,
            router: compiled.outputs,
            files,
        };
        for n in &lab.ns {
            must("", &format!("ip netns add {n}"));
        }
        lab
    }

    /// `vbuild secrets init --site SITE --vpn-server vpn1` (the library), with NT hashes for the
    /// site's DOT1X users (FreeRADIUS's start script wants dot1x.nt).
    fn secrets(&self) {
        let mut n = vbuild::secrets::site_names(&self.site);
        if !n.cns.iter().any(|c| c == STRANGER) {
            n.cns.push(STRANGER.to_string());
        }
        if !n.vpn.iter().any(|(name, _)| name == "vpn1") {
            n.vpn.push(("vpn1".to_string(), None));
        }
        let req = vbuild::secrets::InitRequest {
            dir: self.path("secrets"),
            nas: n.nas,
            users: vec![
                ("alice".into(), "wonder".into()),
                ("bob".into(), "land".into()),
            ],
            cns: n.cns,
        };
        vbuild::secrets::init_with_vpn(&req, &n.vpn).unwrap();
    }

    fn network(&self) {
        let (v, o, h10, h20, r) = (
            &self.ns[0],
            &self.ns[1],
            &self.ns[2],
            &self.ns[3],
            &self.ns[4],
        );
        // sysctl first: the legs inherit `default`. `neigh.default` exists in the initial
        // namespace only (the appliance's), hence -e and the legs' proxy_delay set below.
        let p = self.write("sysctl.conf", &self.file("sysctl.conf"));
        must(v, &format!("sysctl -e -q -p {}", p.display()));
        // each segment is a bridge in the peer namespace: the outside (the clients), VLAN 10
        // and VLAN 20 (the hosts and the router's leg)
        for (a, peer, addrs, gw) in [
            ("eth1", o, "10.1.1.50/24", None),
            (
                "eth0.10",
                h10,
                "172.16.10.21/24 172.16.10.10/24",
                Some("172.16.10.1"),
            ),
            ("eth0.20", h20, "172.16.20.21/24", Some("172.16.20.1")),
        ] {
            must(
                "",
                &format!("ip link add {a} netns {v} type veth peer h0 netns {peer}"),
            );
            must(
                peer,
                "ip link add br0 type bridge && ip link set h0 master br0 && \
                 ip link set h0 up && ip link set br0 up && ip link set lo up",
            );
            for ad in addrs.split(' ') {
                must(peer, &format!("ip addr add {ad} dev br0"));
            }
            if let Some(gw) = gw {
                must(peer, &format!("ip route add default via {gw}"));
            }
        }
        for i in 0..3 {
            let c = self.client_ns(i);
            must(
                "",
                &format!("ip link add p{i} netns {o} type veth peer h0 netns {c}"),
            );
            must(
                o,
                &format!("ip link set p{i} master br0 && ip link set p{i} up"),
            );
            must(
                c,
                &format!(
                    "ip addr add 10.1.1.{}/24 dev h0 && ip link set h0 up && ip link set lo up",
                    51 + i
                ),
            );
        }
        self.router_network(r, h10, h20);
        must(v, "ip link set lo up");
        for leg in ["eth0/10", "eth0/20"] {
            must(v, &format!("sysctl -qw net.ipv4.neigh.{leg}.proxy_delay=0"));
        }
        let net: String = self
            .file("network.ip")
            .lines()
            .filter(|l| {
                !l.starts_with("link add") && !l.contains("dev eth0 ") && !l.ends_with("dev eth0")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let p = self.write("network.ip", &net);
        must(v, &format!("ip -batch {}", p.display()));
        let p = self.write("ruleset.nft", &self.file("ruleset.nft"));
        must(v, &format!("nft -f {}", p.display()));
        let outside = "127.0.0.1 localhost\n10.1.1.20 vpn1.lab.demo.fr\n".to_string();
        let mut hosts = vec![
            (v.as_str(), self.file("hosts")),
            (o.as_str(), outside.clone()),
        ];
        hosts.extend((0..3).map(|i| (self.client_ns(i), outside.clone())));
        for (ns, hosts) in hosts {
            std::fs::create_dir_all(format!("/etc/netns/{ns}")).unwrap();
            std::fs::write(format!("/etc/netns/{ns}/hosts"), hosts).unwrap();
        }
    }

    /// The MASTER router: its generated network.ip (without the VLAN devices: veths named vlan10
    /// and vlan20 stand in, into the VLAN bridges; lone veths for eth0 and eth1), sysctl.conf,
    /// the VIPs (keepalived's job) and its ruleset.
    fn router_network(&self, r: &str, h10: &str, h20: &str) {
        for (a, peer) in [("vlan10", h10), ("vlan20", h20)] {
            must(
                "",
                &format!("ip link add {a} netns {r} type veth peer r{a} netns {peer}"),
            );
            must(
                peer,
                &format!("ip link set r{a} master br0 && ip link set r{a} up"),
            );
        }
        for a in ["eth0", "eth1"] {
            must(
                r,
                &format!("ip link add {a} type veth peer {a}p && ip link set {a}p up"),
            );
        }
        must(r, "ip link set lo up");
        let p = self.write("router-sysctl.conf", &self.router.sysctl_conf);
        must(r, &format!("sysctl -e -q -p {}", p.display()));
        let net: String = self
            .router
            .network_ip
            .lines()
            .filter(|l| !l.starts_with("link add"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = self.write("router-network.ip", &net);
        must(r, &format!("ip -batch {}", p.display()));
        must(
            r,
            "ip addr add 172.16.10.1/24 dev vlan10 && ip addr add 172.16.20.1/24 dev vlan20 && \
             ip addr add 10.1.1.4/24 dev eth1",
        );
        let p = self.write("router-ruleset.nft", &self.router.ruleset_nft);
        must(r, &format!("nft -f {}", p.display()));
    }

    /// FreeRADIUS at dns1 on the `labwall radius` files, started by ramux-radius-start.
    fn start_radius(&mut self) {
        let o = labwall::aaa::radius::Options {
            secrets_dir: self.path("secrets").display().to_string(),
            run_dir: self.path("radrun").display().to_string(),
            vlan_prefix: self
                .site
                .ifaces
                .iter()
                .filter_map(|i| Some((i.vid?, i.net4.len)))
                .collect(),
        };
        let gen = labwall::aaa::radius::freeradius_files_with(&self.site.services, &o).unwrap();
        let conf = self.path("raddb");
        must("", &format!("cp -a /etc/freeradius/3.0 {}", conf.display()));
        for (rel, text) in &gen {
            self.write(&format!("raddb/{rel}"), text);
        }
        let start = common::repo_root().join("overlays/dns/usr/sbin/ramux-radius-start");
        let h10 = self.ns[2].clone();
        self.spawn(
            &h10,
            &[start.to_str().unwrap(), "-l", "stdout"],
            "radius.log",
            &[("RAMUX_RADIUS_CONF", &conf)],
        );
        wait_until("FreeRADIUS ready", || {
            self.log("radius.log").contains("Ready to process requests")
        });
    }

    fn start_appliance(&mut self) {
        let v = self.vpn().to_string();
        self.write("tinyproxy.filter", &self.file("tinyproxy.filter"));
        let p = self.write("tinyproxy.conf", &self.file("tinyproxy.conf"));
        self.spawn(
            &v,
            &["tinyproxy", "-d", "-c", p.to_str().unwrap()],
            "tinyproxy.log",
            &[],
        );
        for vid in [10, 20] {
            let p = self.write(
                &format!("vlan{vid}.conf"),
                &self.file(&format!("openvpn/vlan{vid}.conf")),
            );
            let log = format!("server{vid}.log");
            self.spawn(&v, &["openvpn", "--config", p.to_str().unwrap()], &log, &[]);
            let sock = self.path(&format!("mgmt/vlan{vid}.sock"));
            wait_until("management socket", || sock.exists());
        }
        let conf = self.write("vpn-auth.toml", &self.file("vpn-auth.toml"));
        let auth = common::ramux_bin("ramux-vpn-auth");
        let (sec, st) = (self.path("secrets"), self.path("status"));
        self.spawn(
            &v,
            &[
                auth.to_str().unwrap(),
                "-c",
                conf.to_str().unwrap(),
                "--secrets-dir",
                sec.to_str().unwrap(),
                "--status-file",
                st.to_str().unwrap(),
            ],
            "auth.log",
            &[],
        );
        for vid in [10, 20] {
            wait_until("server released and serving", || {
                self.log(&format!("server{vid}.log"))
                    .contains("Initialization Sequence Completed")
            });
        }
        let ss = || must(&v, "ss -ltn");
        wait_until("listeners on 443, 1110, 1120", || {
            let s = ss();
            s.contains(":443 ") && s.contains("127.0.0.1:1110 ") && s.contains("127.0.0.1:1120 ")
        });
    }

    /// `vbuild vpn-client USER`'s profile, vpn1's block only (vpn2 is not in this lab),
    /// optionally pointed at another VLAN's port.
    fn profile(&self, user: &str, port: Option<(u16, u16)>) -> PathBuf {
        let p = self.path(&format!("{user}.ovpn"));
        vbuild::vpn_client::make(user, &self.site_path, &self.path("secrets"), &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        self.vpn1_only(&p, &text, port)
    }

    /// alice's profile carrying the certificate and key of `cn` instead (a CN of the site's CA
    /// that is not a VPNUSER: `vbuild vpn-client` makes no profile for it).
    fn profile_as(&self, cn: &str) -> PathBuf {
        let mut pki = vbuild::vpn_client::ClientPki::read(&self.path("secrets"), "alice").unwrap();
        let other = vbuild::vpn_client::ClientPki::read(&self.path("secrets"), cn).unwrap();
        (pki.cert, pki.key) = (other.cert, other.key);
        let text = vbuild::vpn_client::render(&self.site, "alice", &pki).unwrap();
        self.vpn1_only(&self.path(&format!("{cn}.ovpn")), &text, None)
    }

    fn vpn1_only(&self, p: &Path, text: &str, port: Option<(u16, u16)>) -> PathBuf {
        let (head, blocks) = text.split_at(text.find("<connection>").unwrap());
        let mine = blocks
            .split_inclusive("</connection>\n")
            .find(|b| b.contains("remote vpn1."))
            .unwrap()
            .to_string();
        let mine = match port {
            Some((from, to)) => mine.replace(&format!(" {from}\n"), &format!(" {to}\n")),
            None => mine,
        };
        let text = head.replace("remote-random\n", "") + &mine;
        vbuild::vpn_client::write_private(p, &text).unwrap();
        p.to_path_buf()
    }

    /// A client on the outside: Ok when connected, Err(log) when refused.
    fn connect(&mut self, user: &str, profile: &Path) -> Result<(), String> {
        let o = self.out().to_string();
        self.connect_in(&o, user, profile)
    }

    /// A client in namespace `ns`, its log `<log>.log`.
    fn connect_in(&mut self, ns: &str, log: &str, profile: &Path) -> Result<(), String> {
        let (o, log, user) = (ns.to_string(), format!("{log}.log"), log);
        self.spawn(
            &o,
            &["openvpn", "--config", profile.to_str().unwrap()],
            &log,
            &[],
        );
        let t0 = Instant::now();
        while t0.elapsed() < WAIT {
            let l = self.log(&log);
            if l.contains("Initialization Sequence Completed") {
                return Ok(());
            }
            if l.contains("AUTH_FAILED") {
                return Err(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{user}: no verdict within {WAIT:?}:\n{}\nvpn-auth:\n{}\nserver:\n{}",
            self.log(&log),
            self.log("auth.log"),
            self.log("server10.log")
        );
    }

    fn kernel_entries(&self, addr: &str) -> String {
        must(
            self.vpn(),
            &format!("ip route show {addr}/32; ip neigh show proxy {addr}"),
        )
        .trim()
        .to_string()
    }

    /// The packet counter of the first rule of `table`'s `chain` whose listing holds `pat`, in
    /// namespace `ns`.
    fn packets(&self, ns: &str, table: &str, chain: &str, pat: &str) -> u64 {
        let l = must(ns, &format!("nft list chain inet {table} {chain}"));
        let line = l
            .lines()
            .find(|x| x.contains(pat))
            .unwrap_or_else(|| panic!("no rule with {pat:?} in {chain}:\n{l}"));
        let n = line
            .split("packets ")
            .nth(1)
            .and_then(|x| x.split(' ').next());
        n.and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("no counter: {line}"))
    }

    /// The counter of the appliance's forward rule `verdict comment "comment"` (a rule with
    /// that comment but another verdict fails the test).
    fn vpn_count(&self, verdict: &str, comment: &str) -> u64 {
        self.packets(
            self.vpn(),
            "ramux_vpn",
            "forward",
            &format!("{verdict} comment \"{comment}\""),
        )
    }

    /// What a TCP connection from `ns` to `dst` reads (empty when it got nothing).
    fn tcp_reply(&self, ns: &str, dst: &str) -> String {
        let o = common::ns_sh(
            ns,
            &format!("timeout 8 socat -T 3 - TCP:{dst},connect-timeout=3 </dev/null"),
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The relay's status line for `CONNECT target`, asked from the outside namespace.
    fn connect_status(&self, target: &str) -> String {
        let (ns, target) = (self.out().to_string(), target.to_string());
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            // SAFETY: setns on an open namespace file; only this thread moves.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let mut s = std::net::TcpStream::connect("10.1.1.20:443").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            text.lines().next().unwrap_or("").to_string()
        })
        .join()
        .unwrap()
    }
}

#[test]
fn vpn_appliance_with_radius_and_real_clients() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root (network namespaces)"
    );
    let t0 = Instant::now();
    let mut lab = Lab::new();
    lab.secrets();
    lab.network();
    lab.start_radius();
    lab.start_appliance();

    // alice: through 443, her RADIUS address, a VLAN 10 host
    let alice = lab.profile("alice", None);
    if let Err(l) = lab.connect("alice", &alice) {
        panic!("alice refused:\n{l}\nvpn-auth:\n{}", lab.log("auth.log"));
    }
    let a = must(lab.out(), "ip -4 addr show dev tun0");
    assert!(a.contains("inet 172.16.10.130/24"), "{a}");
    wait_until("alice's /32 and proxy entry", || {
        lab.kernel_entries("172.16.10.130").contains("proxy")
    });
    let e = lab.kernel_entries("172.16.10.130");
    assert!(e.contains("dev tun10") && e.contains("dev eth0.10"), "{e}");
    let ping = common::ns_sh(lab.out(), "ping -c 3 -i 0.2 -W 5 172.16.10.21");
    assert!(
        ping.status.success(),
        "alice cannot ping 172.16.10.21: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(
        lab.log("tinyproxy.log").contains("vpn1.lab.demo.fr"),
        "{}",
        lab.log("tinyproxy.log")
    );
    let status = std::fs::read_to_string(lab.path("status")).unwrap_or_default();
    assert!(
        status.contains("cn=alice established 172.16.10.130"),
        "{status}"
    );

    // bob (VLAN 20) asking the VLAN 10 server: RADIUS says VLAN 20, the daemon refuses
    let bob = lab.profile("bob", Some((1120, 1110)));
    let log = lab
        .connect("bob", &bob)
        .expect_err("bob accepted by the VLAN 10 server");
    assert!(log.contains("AUTH_FAILED"), "{log}");
    wait_until("bob's refusal logged", || {
        lab.log("auth.log")
            .lines()
            .any(|l| l.contains("cn=\"bob\" DENY") && l.contains("VLAN [20], this is VLAN 10"))
    });

    // alice leaves: nothing left behind
    lab.kill("alice.log");
    wait_until("alice's route and proxy entry removed", || {
        lab.kernel_entries("172.16.10.130").is_empty()
    });
    let left = must(lab.vpn(), "ip route show dev tun10; ip neigh show proxy");
    assert!(!left.contains("172.16.10.130"), "{left}");
    let st = || std::fs::read_to_string(lab.path("status")).unwrap_or_default();
    wait_until("the daemon's status: alice gone, bob denied", || {
        let s = st();
        s.contains("accepted=1 denied=1 ")
            && s.contains("vlan10 connected")
            && !s.contains("cn=alice")
    });

    // the relay: the server's own name and ports only
    assert!(
        lab.connect_status("vpn1.lab.demo.fr:1110")
            .contains(" 200 "),
        "the relay refused its own server"
    );
    for t in [
        "vpn1.lab.demo.fr:22",
        "vpn2.lab.demo.fr:1110",
        "172.16.10.21:1110",
        "172.16.10.21:443",
        "127.0.0.1:1110",
        "localhost:1110",
        "10.1.1.20:1110",
    ] {
        let s = lab.connect_status(t);
        assert!(s.contains(" 403 "), "CONNECT {t}: {s:?}");
    }
    // every expectation below is checked before the test fails, so one run with something
    // broken shows each one that depends on it
    let mut fails = unknown_users(&mut lab);
    fails.extend(users_and_rules(&mut lab));
    assert!(
        fails.is_empty(),
        "{} failed:\n  {}\nvpn ruleset:\n{}\nrouter ruleset:\n{}",
        fails.len(),
        fails.join("\n  "),
        must(lab.vpn(), "nft list ruleset"),
        must(lab.router(), "nft list ruleset")
    );
    let status = std::fs::read_to_string(lab.path("status")).unwrap_or_default();
    eprintln!("vpn site end to end in {:?}\n{status}", t0.elapsed());
}

/// Certificates of the site's CA whose CN is not a VPNUSER are refused: one the site knows only
/// as an 802.1X EAP-TLS identity of VLAN 10 (RADIUS has it), one nobody knows.
fn unknown_users(lab: &mut Lab) -> Vec<String> {
    let mut fails = Vec::new();
    let tls = lab
        .site
        .services
        .dot1x
        .iter()
        .find(|d| d.kind == labwall::aaa::IdentityKind::CertCn)
        .map(|d| d.name.clone())
        .expect("the site has an EAP-TLS identity");
    assert!(
        !lab.site.services.vpn_users.iter().any(|u| u.cn == tls),
        "{tls} is a VPNUSER"
    );
    for cn in [tls.as_str(), STRANGER] {
        let p = lab.profile_as(cn);
        if lab.connect(cn, &p).is_ok() {
            fails.push(format!("{cn} (not a VPNUSER) connected"));
        } else {
            wait_until(&format!("{cn}'s refusal logged"), || {
                lab.log("auth.log")
                    .lines()
                    .any(|l| l.contains(&format!("cn=\"{cn}\" DENY")))
            });
        }
        lab.kill(&format!("{cn}.log"));
    }
    let st = std::fs::read_to_string(lab.path("status")).unwrap_or_default();
    for cn in [tls.as_str(), STRANGER] {
        if st.contains(&format!("cn={cn} established")) {
            fails.push(format!("the daemon's status has {cn} established"));
        }
    }
    fails
}

/// Four users at once, each on its own outside machine: user to user is dropped in VLAN 10
/// (no PEERS) and passes in VLAN 20 (`PEERS VLAN20`); bob (VLAN 20, zone users) meets the
/// site's rules at the router: `ALLOW users srv:web1 https` passes, ssh to web1 (no ALLOW,
/// NOROUTE srv users) does not.
fn users_and_rules(lab: &mut Lab) -> Vec<String> {
    let mut fails: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            fails.push(what);
        }
    };
    let users = [
        ("alice", None, "172.16.10.130"),
        ("carol", Some(0), "172.16.10.131"),
        ("bob", Some(1), "172.16.20.130"),
        ("dave", Some(2), "172.16.20.131"),
    ];
    for (user, ns, addr) in users {
        let ns = match ns {
            None => lab.out().to_string(),
            Some(i) => lab.client_ns(i).to_string(),
        };
        let p = lab.profile(user, None);
        if let Err(l) = lab.connect_in(&ns, &format!("{user}-2"), &p) {
            panic!("{user} refused:\n{l}\nvpn-auth:\n{}", lab.log("auth.log"));
        }
        wait_until(&format!("{user}'s /32 and proxy entry"), || {
            lab.kernel_entries(addr).contains("proxy")
        });
    }
    let (o, carol_ns, bob_ns) = (
        lab.out().to_string(),
        lab.client_ns(0).to_string(),
        lab.client_ns(1).to_string(),
    );
    let ping = |ns: &str, to: &str| common::ns_sh(ns, &format!("ping -c 2 -i 0.3 -W 2 {to}"));

    // VLAN 20, PEERS: bob -> dave through tun20 and back, counted by the PEERS rule
    let c0 = lab.vpn_count("accept", "vlan20: user to user");
    let r = ping(&bob_ns, "172.16.20.131");
    check(
        r.status.success(),
        format!(
            "bob cannot ping dave (VLAN 20, PEERS VLAN20): {}",
            String::from_utf8_lossy(&r.stdout)
        ),
    );
    let c1 = lab.vpn_count("accept", "vlan20: user to user");
    // (the first echo request only: the rest of the flow is `ct state established`)
    check(
        c1 > c0,
        format!("the PEERS rule counted {c0} -> {c1} for bob's pings"),
    );

    // VLAN 10, no PEERS: alice -> carol goes nowhere (table 1010 has no user /32, the VLAN
    // does not answer ARP for a VPN user); routed into tun10 anyway, the ruleset drops it
    let r = ping(&o, "172.16.10.131");
    check(
        !r.status.success(),
        "alice pings carol (VLAN 10 has no PEERS)".into(),
    );
    let rule =
        "rule add iif tun10 to 172.16.10.0/24 lookup main suppress_prefixlength 31 priority 509";
    must(lab.vpn(), &format!("ip {rule}"));
    let d0 = lab.vpn_count("drop", "vlan10: user to user");
    let r = ping(&o, "172.16.10.131");
    let d1 = lab.vpn_count("drop", "vlan10: user to user");
    must(lab.vpn(), &format!("ip {}", rule.replacen("add", "del", 1)));
    check(
        !r.status.success(),
        "with a /32 route to carol, alice still pings her: the ruleset let tun10 -> tun10 through"
            .into(),
    );
    check(
        d1 > d0,
        format!("the VLAN 10 user-to-user drop counted {d0} -> {d1}, not alice's 2 pings"),
    );
    // carol still reaches her VLAN (the drop is user to user only)
    let r = ping(&carol_ns, "172.16.10.21");
    check(r.status.success(), "carol cannot ping 172.16.10.21".into());

    // the site's rules for bob's zone (users -> srv), at the router: web1 https allowed, ssh not
    let h10 = lab.h10().to_string();
    for port in [443, 22] {
        let l = format!("TCP-LISTEN:{port},bind=172.16.10.21,reuseaddr,fork");
        lab.spawn(
            &h10,
            &["socat", &l, "SYSTEM:echo web1"],
            &format!("web1-{port}.log"),
            &[],
        );
    }
    wait_until("web1 listens on 443 and 22", || {
        let s = must(&h10, "ss -ltn");
        s.contains("172.16.10.21:443 ") && s.contains("172.16.10.21:22 ")
    });
    // from the VLAN itself both answer: the listeners are real, the difference is the router
    for port in [443, 22] {
        let got = lab.tcp_reply(lab.client_ns(0), &format!("172.16.10.21:{port}"));
        check(
            got == "web1",
            format!("carol (VLAN 10) gets {got:?} from web1:{port}"),
        );
    }
    let users_srv = lab
        .router
        .ruleset_nft
        .split("chain users_srv {")
        .nth(1)
        .expect("the router has users -> srv")
        .lines()
        .take_while(|l| l.trim() != "}")
        .collect::<Vec<_>>()
        .join("\n");
    let allow = "@web1_v4 tcp dport 443";
    assert!(users_srv.contains(allow), "{users_srv}");
    assert!(
        !users_srv.contains("dport 22 "),
        "the site allows ssh from users to srv now: pick another port\n{users_srv}"
    );
    let fallback = users_srv
        .lines()
        .filter_map(|l| l.split("goto ").nth(1))
        .filter_map(|x| x.split_whitespace().next())
        .next_back()
        .expect("users -> srv ends in a goto")
        .to_string();
    let r = lab.router().to_string();
    let a0 = lab.packets(&r, "ramux", "users_srv", allow);
    let got = lab.tcp_reply(&bob_ns, "172.16.10.21:443");
    check(
        got == "web1",
        format!("bob (VLAN 20) gets {got:?} from web1:443 (ALLOW users srv:web1 https)"),
    );
    let a1 = lab.packets(&r, "ramux", "users_srv", allow);
    check(
        a1 > a0,
        format!("the router's ALLOW users srv:web1 https counted {a0} -> {a1}"),
    );
    let n0 = lab.packets(&r, "ramux", &fallback, "drop");
    let got = lab.tcp_reply(&bob_ns, "172.16.10.21:22");
    check(
        got.is_empty(),
        format!("bob (VLAN 20) gets {got:?} from web1:22 (not allowed)"),
    );
    let n1 = lab.packets(&r, "ramux", &fallback, "drop");
    check(
        n1 > n0,
        format!("the router's {fallback} drop counted {n0} -> {n1} for bob's ssh"),
    );
    // and bob's traffic left the appliance on his VLAN's leg, to his VLAN's router
    let leg = lab.vpn_count("accept", "vlan20: users -> their VLAN");
    check(
        leg > 0,
        "nothing counted on vlan20: users -> their VLAN".into(),
    );
    fails
}
