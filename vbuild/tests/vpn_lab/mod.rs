//! A VPN appliance in network namespaces, from the vpn example site (labwall/tests/sites/vpn),
//! for vbuild's vpn tests and the relay benchmark: vpn1's generated network.ip (without the
//! VLAN device, which the host kernel lacks: a veth named eth0.10 stands in), sysctl, ruleset,
//! tinyproxy and the real OpenVPN server of VLAN 10; a user's machine on the outside (`out`)
//! and a VLAN 10 host (`h10`, 172.16.10.21). Throwaway secrets from `vbuild secrets init`.
//!
//! TEST HARNESS ONLY: [`MgmtResponder`] answers the server's `management-client-auth` with the
//! site's VPNUSER address and adds the /32 route and proxy-ARP entry, standing in for
//! ramux-vpn-auth (which asks RADIUS); it is not the product's authorisation path.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SITE: &str = "labwall/tests/sites/vpn/site.lw";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

pub fn sh(args: &[&str]) -> Result<String, String> {
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

/// Root and the Debian tools the lab runs.
pub fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = root
        && ["nft", "tinyproxy", "openvpn", "socat", "ip", "ping"]
            .iter()
            .all(|b| have(b))
        && Path::new("/dev/net/tun").exists();
    if !ok {
        eprintln!("skipped: needs root, /dev/net/tun, nft, tinyproxy, openvpn, socat, ip, ping");
    }
    ok
}

pub fn compile() -> labwall::Compiled {
    let opts = labwall::Options {
        role: "MASTER".into(),
        defines: vec![("HOSTNAME".into(), "fw".into())],
        ..Default::default()
    };
    labwall::compile_path(&repo().join(SITE), &opts).expect("the vpn site compiles")
}

/// The lab; Drop kills what it started and deletes the namespaces and temp files.
pub struct VpnLab {
    pub vpn: String,
    pub out: String,
    pub h10: String,
    pub h20: String,
    pub tmp: PathBuf,
    pub secrets: PathBuf,
    pub site: labwall::model::Site,
    daemons: Vec<Child>,
}

impl VpnLab {
    pub fn up(tag: &str) -> Result<VpnLab, String> {
        let id = format!("{tag}{}", std::process::id());
        let tmp = std::env::temp_dir().join(format!("vbvpn-{id}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("mgmt")).map_err(|e| e.to_string())?;
        let site = compile().site;
        let lab = VpnLab {
            vpn: format!("vbv{id}"),
            out: format!("vbo{id}"),
            h10: format!("vbh{id}"),
            h20: format!("vbk{id}"),
            secrets: tmp.join("secrets"),
            tmp,
            site,
            daemons: Vec::new(),
        };
        for ns in [&lab.vpn, &lab.out, &lab.h10, &lab.h20] {
            sh(&["ip", "netns", "add", ns])?;
        }
        lab.make_secrets()?;
        lab.network()?;
        Ok(lab)
    }

    fn make_secrets(&self) -> Result<(), String> {
        let n = vbuild::secrets::site_names(&self.site);
        let req = vbuild::secrets::InitRequest {
            dir: self.secrets.clone(),
            nas: n.nas,
            users: vec![],
            cns: n.cns,
        };
        vbuild::secrets::init_with_vpn(&req, &n.vpn).map_err(|e| e.to_string())?;
        Ok(())
    }

    pub fn files(&self) -> Vec<(String, String)> {
        labwall::vpn::vpn_files(&self.site, "vpn1").unwrap()
    }

    pub fn file(&self, name: &str) -> String {
        let f = self.files();
        f.into_iter().find(|(n, _)| n == name).unwrap().1
    }

    /// The veths, then vpn1's own network.ip (minus the VLAN devices and eth0), sysctl and
    /// ruleset; the split-horizon hosts files.
    fn network(&self) -> Result<(), String> {
        self.veth(&self.vpn, "eth1", &self.out, "o0", "10.1.1.50/24")?;
        self.veth(&self.vpn, "eth0.10", &self.h10, "h0", "172.16.10.21/24")?;
        self.veth(&self.vpn, "eth0.20", &self.h20, "h0", "172.16.20.21/24")?;
        let net: String = self
            .file("network.ip")
            .lines()
            .filter(|l| !l.starts_with("link add") && !l.contains(" eth0 "))
            .filter(|l| !l.contains("dev eth0 ") && !l.ends_with("dev eth0"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = self.tmp.join("network.ip");
        std::fs::write(&p, net).map_err(|e| e.to_string())?;
        self.exec(&self.vpn, &["ip", "-batch", &p.display().to_string()])?;
        for kv in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.neigh.eth0/10.proxy_delay=0",
        ] {
            self.exec(&self.vpn, &["sysctl", "-qw", kv])?;
        }
        let nft = self.tmp.join("ruleset.nft");
        std::fs::write(&nft, self.file("ruleset.nft")).map_err(|e| e.to_string())?;
        self.exec(&self.vpn, &["nft", "-f", &nft.display().to_string()])?;
        self.hosts(&self.vpn, &self.file("hosts"))?;
        self.hosts(
            &self.out,
            "127.0.0.1 localhost\n10.1.1.20 vpn1.lab.demo.fr\n",
        )
    }

    fn veth(&self, na: &str, a: &str, nb: &str, b: &str, addr_b: &str) -> Result<(), String> {
        sh(&[
            "ip", "link", "add", a, "netns", na, "type", "veth", "peer", b, "netns", nb,
        ])?;
        self.exec(nb, &["ip", "addr", "add", addr_b, "dev", b])?;
        for (ns, i) in [(na, a), (nb, b), (na, "lo"), (nb, "lo")] {
            self.exec(ns, &["ip", "link", "set", i, "up"])?;
        }
        Ok(())
    }

    /// `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts.
    fn hosts(&self, ns: &str, text: &str) -> Result<(), String> {
        let d = PathBuf::from(format!("/etc/netns/{ns}"));
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        std::fs::write(d.join("hosts"), text).map_err(|e| e.to_string())
    }

    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend(args);
        sh(&v)
    }

    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &str) -> Result<(), String> {
        let out = std::fs::File::create(self.tmp.join(log)).map_err(|e| e.to_string())?;
        let c = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("{args:?}: {e}"))?;
        self.daemons.push(c);
        Ok(())
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.join(name)).unwrap_or_default()
    }

    /// tinyproxy on the generated config (its filter at a temp path).
    pub fn start_relay(&mut self) -> Result<(), String> {
        let filter = self.tmp.join("tinyproxy.filter");
        std::fs::write(&filter, self.file("tinyproxy.filter")).map_err(|e| e.to_string())?;
        let conf = self
            .file("tinyproxy.conf")
            .replace("/etc/ramux/tinyproxy.filter", &filter.display().to_string());
        let p = self.tmp.join("tinyproxy.conf");
        std::fs::write(&p, conf).map_err(|e| e.to_string())?;
        let (vpn, p) = (self.vpn.clone(), p.display().to_string());
        self.spawn(&vpn, &["tinyproxy", "-d", "-c", &p], "tinyproxy.log")?;
        self.wait_listen(443)
    }

    /// The real OpenVPN server of VLAN 10 on the generated config: only the secrets and
    /// management paths point into the temp directory.
    pub fn start_server(&mut self) -> Result<PathBuf, String> {
        let sock = self.tmp.join("mgmt/vlan10.sock");
        let conf = self
            .file("openvpn/vlan10.conf")
            .replace(labwall::vpn::SECRETS, &self.secrets.display().to_string())
            .replace(
                ramux_contract::vpn::MGMT_DIR,
                &self.tmp.join("mgmt").display().to_string(),
            );
        let p = self.tmp.join("vlan10.conf");
        std::fs::write(&p, conf).map_err(|e| e.to_string())?;
        let (vpn, p) = (self.vpn.clone(), p.display().to_string());
        self.spawn(&vpn, &["openvpn", "--config", &p], "server.log")?;
        // management-hold: it listens on 1110 once the responder said `hold release`
        wait(|| sock.exists(), "the management socket")?;
        Ok(sock)
    }

    pub fn wait_listen(&self, port: u16) -> Result<(), String> {
        let pat = format!(":{port} ");
        wait(
            || {
                self.exec(&self.vpn, &["ss", "-ltn"])
                    .is_ok_and(|o| o.contains(&pat))
            },
            &format!("a listener on {port}"),
        )
    }

    /// alice's profile from `vbuild vpn-client`'s renderer, with only vpn1's block (vpn2 is
    /// not in this lab); `proxy` false: straight to `direct` (the benchmark's plain relay).
    pub fn client_profile(&self, direct: Option<&str>) -> Result<PathBuf, String> {
        let mut pki = vbuild::vpn_client::ClientPki::read(&self.secrets, "alice")
            .map_err(|e| e.to_string())?;
        pki.pin_servers(&self.secrets, &self.site)
            .map_err(|e| e.to_string())?;
        let text =
            vbuild::vpn_client::render(&self.site, "alice", &pki).map_err(|e| e.to_string())?;
        let mut keep = String::new();
        let mut block = String::new();
        for l in text.lines() {
            if l == "<connection>" || !block.is_empty() {
                block.push_str(l);
                block.push('\n');
                if l == "</connection>" {
                    if block.contains("vpn1.") {
                        keep.push_str(&block);
                    }
                    block.clear();
                }
            } else if l != "remote-random" {
                keep.push_str(l);
                keep.push('\n');
            }
        }
        if let Some(d) = direct {
            let b = format!("<connection>\nremote {d}\n</connection>\n");
            keep = keep.split("<connection>").next().unwrap_or("").to_string() + &b;
        }
        let p = self.tmp.join(if direct.is_some() {
            "direct.ovpn"
        } else {
            "alice.ovpn"
        });
        vbuild::vpn_client::write_private(&p, &keep).map_err(|e| e.to_string())?;
        Ok(p)
    }

    /// An OpenVPN client in `out` on `profile`: the time to "Initialization Sequence
    /// Completed" and the running client (killed with the lab, or by the caller).
    pub fn connect(&mut self, profile: &Path, log: &str) -> Result<Duration, String> {
        let t0 = Instant::now();
        let (out, p) = (self.out.clone(), profile.display().to_string());
        self.spawn(&out, &["openvpn", "--config", &p], log)?;
        let done = || self.log(log).contains("Initialization Sequence Completed");
        wait_for(done, Duration::from_secs(30)).map_err(|_| {
            format!(
                "no connection:\n{}\nserver:\n{}",
                tail(&self.log(log)),
                tail(&self.log("server.log"))
            )
        })?;
        Ok(t0.elapsed())
    }

    /// Stops the last started process (the client of [`VpnLab::connect`]).
    pub fn stop_last(&mut self) {
        if let Some(mut c) = self.daemons.pop() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for VpnLab {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.vpn, &self.out, &self.h10, &self.h20] {
            let _ = sh(&["ip", "netns", "del", ns]);
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// The last 25 lines (a failing connect repeats itself).
pub fn tail(s: &str) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(25)..].join("\n")
}

fn wait(f: impl Fn() -> bool, what: &str) -> Result<(), String> {
    wait_for(f, Duration::from_secs(10)).map_err(|_| format!("timed out waiting for {what}"))
}

fn wait_for(f: impl Fn() -> bool, max: Duration) -> Result<(), ()> {
    let t0 = Instant::now();
    while t0.elapsed() < max {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(())
}

/// TEST HARNESS ONLY (a stand-in for ramux-vpn-auth, which asks RADIUS): answers each
/// `>CLIENT:CONNECT` with `client-auth` + `ifconfig-push` of the CN's VPNUSER address (or
/// `client-deny` for an unknown CN), and on `>CLIENT:ESTABLISHED` adds the /32 route on tun10
/// and the proxy-ARP entry on eth0.10 in the appliance's namespace.
pub struct MgmtResponder {
    pub handle: std::thread::JoinHandle<()>,
}

impl MgmtResponder {
    pub fn start(
        sock: &Path,
        site: &labwall::model::Site,
        ns: &str,
    ) -> Result<MgmtResponder, String> {
        let mut s = UnixStream::connect(sock).map_err(|e| format!("{}: {e}", sock.display()))?;
        s.write_all(b"hold release\n").map_err(|e| e.to_string())?;
        let users: Vec<(String, String)> = site
            .services
            .vpn_users
            .iter()
            .filter(|u| u.vlan == 10)
            .map(|u| (u.cn.clone(), u.addr.to_string()))
            .collect();
        let ns = ns.to_string();
        let handle = std::thread::spawn(move || respond(s, &users, &ns));
        Ok(MgmtResponder { handle })
    }
}

fn respond(s: UnixStream, users: &[(String, String)], ns: &str) {
    let mut w = s.try_clone().unwrap();
    let mut pending: Option<(String, String, String)> = None; // (kind, cid, kid)
    let mut cn = String::new();
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        if let Some(rest) = line.strip_prefix(">CLIENT:CONNECT,") {
            let mut it = rest.split(',');
            let (c, k) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            pending = Some(("connect".into(), c.into(), k.into()));
        } else if let Some(rest) = line.strip_prefix(">CLIENT:ESTABLISHED,") {
            pending = Some(("established".into(), rest.into(), String::new()));
        } else if let Some(v) = line.strip_prefix(">CLIENT:ENV,common_name=") {
            cn = v.to_string();
        } else if line == ">CLIENT:ENV,END" {
            let Some((kind, cid, kid)) = pending.take() else {
                continue;
            };
            let addr = users.iter().find(|u| u.0 == cn).map(|u| u.1.clone());
            let reply = match (kind.as_str(), &addr) {
                ("connect", Some(a)) => {
                    format!("client-auth {cid} {kid}\nifconfig-push {a} 255.255.255.0\nEND\n")
                }
                ("connect", None) => format!("client-deny {cid} {kid} \"not a VPN user\"\n"),
                (_, Some(a)) => {
                    let ip = |args: &[&str]| {
                        let mut v = vec!["ip", "netns", "exec", ns, "ip"];
                        v.extend(args);
                        let _ = sh(&v);
                    };
                    ip(&["route", "replace", &format!("{a}/32"), "dev", "tun10"]);
                    ip(&["neigh", "replace", "proxy", a, "dev", "eth0.10"]);
                    continue;
                }
                _ => continue,
            };
            if w.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}
