//! The VPN appliance end to end with every real part (root; network namespaces made and removed
//! here, names with the pid): the vpn example site (labwall/tests/sites/vpn/site.lw) compiled by
//! labwall; vpn1's generated network.ip (a veth per VLAN leg stands in for the 802.1Q devices),
//! sysctl.conf, ruleset.nft, tinyproxy relay and both OpenVPN servers; the real ramux-vpn-auth
//! ($RAMUX_BIN_DIR) on the generated vpn-auth.toml; FreeRADIUS 3.2 on the `labwall radius`
//! files at dns1 (172.16.10.10, VLAN 10) through ramux-radius-start; throwaway secrets from
//! `vbuild secrets init --site`; real OpenVPN clients on the outside with the profiles of
//! `vbuild vpn-client`.
//!
//! ```text
//!  out 10.1.1.50 --443--> vpn eth1 10.1.1.20 tinyproxy -> 127.0.0.1:1110/1120 openvpn (tun10/tun20)
//!                         vpn eth0.10 172.16.10.20 -- h10 172.16.10.21 (host), 172.16.10.10 (FreeRADIUS)
//!                         vpn eth0.20 172.16.20.20 -- h20 172.16.20.21
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
    ns: [String; 4], // vpn, out, h10, h20
    tmp: PathBuf,
    site: labwall::model::Site,
    files: Vec<(String, String)>,
}

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
        let site = labwall::compile_path(&common::repo_root().join(SITE), &opts)
            .expect("the vpn site compiles")
            .site;
        let files = labwall::vpn::vpn_files(&site, "vpn1").unwrap();
        let ns = ["v", "o", "a", "b"].map(|t| format!("rvs{id}{t}"));
        let lab = Lab {
            procs: vec![],
            ns,
            tmp,
            site,
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
        let (v, o, h10, h20) = (&self.ns[0], &self.ns[1], &self.ns[2], &self.ns[3]);
        // sysctl first: the legs inherit `default`. `neigh.default` exists in the initial
        // namespace only (the appliance's), hence -e and the legs' proxy_delay set below.
        let p = self.write("sysctl.conf", &self.file("sysctl.conf"));
        must(v, &format!("sysctl -e -q -p {}", p.display()));
        for (a, peer, addrs) in [
            ("eth1", o, "10.1.1.50/24"),
            ("eth0.10", h10, "172.16.10.21/24 172.16.10.10/24"),
            ("eth0.20", h20, "172.16.20.21/24"),
        ] {
            must(
                "",
                &format!("ip link add {a} netns {v} type veth peer h0 netns {peer}"),
            );
            for ad in addrs.split(' ') {
                must(peer, &format!("ip addr add {ad} dev h0"));
            }
            must(peer, "ip link set h0 up && ip link set lo up");
        }
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
        for (ns, hosts) in [
            (v.as_str(), self.file("hosts")),
            (
                o.as_str(),
                "127.0.0.1 localhost\n10.1.1.20 vpn1.lab.demo.fr\n".into(),
            ),
        ] {
            std::fs::create_dir_all(format!("/etc/netns/{ns}")).unwrap();
            std::fs::write(format!("/etc/netns/{ns}/hosts"), hosts).unwrap();
        }
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
        vbuild::vpn_client::make(
            user,
            &common::repo_root().join(SITE),
            &self.path("secrets"),
            &p,
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
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
        vbuild::vpn_client::write_private(&p, &text).unwrap();
        p
    }

    /// A client on the outside: Ok when connected, Err(log) when refused.
    fn connect(&mut self, user: &str, profile: &Path) -> Result<(), String> {
        let (o, log) = (self.out().to_string(), format!("{user}.log"));
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
    eprintln!("vpn site end to end in {:?}\n{}", t0.elapsed(), st());
}
