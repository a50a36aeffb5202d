//! The lab of the real-component tests and the benchmark: network namespaces made and removed
//! here (names carry the pid), Debian's OpenVPN 2.6 (one VLAN server, tun, our management
//! socket; clients in namespaces of their own, because each client's tun owns the VLAN's
//! /24), FreeRADIUS 3.2 configured by `labwall radius` from the site file, and throwaway
//! secrets and certificates from `vbuild secrets init` (its `radius` server certificate, with
//! the serverAuth usage, is the OpenVPN server's too: secrets init makes no VPN server cert).
//!
//! ```text
//!  client ns (alice, bob, mallory)        server ns                       VLAN ns
//!  eth0 10.99.N.2 -- tcp 1194 -- upN 10.99.N.1   leg 172.16.10.20/24 -- eth0 172.16.10.5 (host)
//!  tun0 172.16.10.x <== openvpn ==> tun10                                     172.16.10.10 (FreeRADIUS)
//! ```
#![allow(dead_code)]

use ramux_testkit::{netns, netns_sh, Netns};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLIENTS: &[&str] = &["alice", "bob", "mallory", "carol"];

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed on drop.
pub struct Scratch(pub PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("RAMUX_KEEP").is_some() {
            eprintln!("kept {} (RAMUX_KEEP)", self.0.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A workspace binary: `$RAMUX_BIN_DIR/<name>` (CI), else beside this crate's binary.
pub fn bin(name: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("RAMUX_BIN_DIR").filter(|d| !d.is_empty()) {
        let p = PathBuf::from(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_ramux-vpn-auth"));
    let p = me.with_file_name(name);
    assert!(
        p.is_file(),
        "{} missing: cargo build --release -p {name} (or set RAMUX_BIN_DIR)",
        p.display()
    );
    p
}

pub fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

fn must(ns: &Netns, cmd: &str) {
    let o = netns_sh(ns, cmd);
    assert!(
        o.status.success(),
        "in {}: {cmd}: {}",
        ns.name,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The site file with the VPN users (it may move to profiles/router/site.lw).
pub fn site() -> PathBuf {
    let root = ramux_testkit::workspace_root();
    let a = root.join("labwall/tests/sites/dns/site.lw");
    if a.is_file() {
        a
    } else {
        root.join("profiles/router/site.lw")
    }
}

/// Processes first: they die before their namespaces and directory go.
pub struct Lab {
    /// The tests run OpenVPN (server, clients) at nice -10, so the other builds of a loaded
    /// machine do not show up as gaps in a user's ping; the benchmark runs them as they are.
    pub nice: bool,
    pub auth: Option<Proc>,
    pub openvpn: Option<Proc>,
    pub radius: Option<Proc>,
    pub clients: Vec<Netns>,
    pub s: Netns,
    pub v: Netns,
    pub dir: Scratch,
}

pub fn require_tools() {
    for (t, p) in [
        ("openvpn", "openvpn"),
        ("freeradius", "freeradius"),
        ("ping", "iputils-ping"),
        ("ip", "iproute2"),
    ] {
        ramux_testkit::require(t, p);
    }
}

impl Lab {
    /// Namespaces, secrets, FreeRADIUS (ready), OpenVPN (waiting in its management hold).
    pub fn new(tag: &str) -> Lab {
        require_tools();
        let id = format!("vpa{}{tag}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/ramux-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let dir = Scratch(dir);
        let s = netns(&format!("{id}s"));
        let v = netns(&format!("{id}v"));
        let clients = (0..CLIENTS.len())
            .map(|i| netns(&format!("{id}c{i}")))
            .collect();
        let mut lab = Lab {
            nice: true,
            auth: None,
            openvpn: None,
            radius: None,
            clients,
            s,
            v,
            dir,
        };
        lab.wire();
        lab.secrets();
        lab.radius = Some(lab.start_radius());
        lab.openvpn = Some(lab.start_openvpn());
        lab
    }

    /// `nice -n -10` when [`Lab::nice`].
    pub fn prio(&self) -> &'static [&'static str] {
        if self.nice {
            &["nice", "-n", "-10"]
        } else {
            &[]
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.0.join(rel)
    }

    fn wire(&self) {
        let (s, v) = (&self.s, &self.v);
        must(
            s,
            &format!("ip link add leg type veth peer name eth0 netns {}", v.name),
        );
        must(
            s,
            "ip addr add 172.16.10.20/24 dev leg && ip link set leg up",
        );
        must(v, "ip addr add 172.16.10.5/24 dev eth0 && ip addr add 172.16.10.10/24 dev eth0 && ip link set eth0 up");
        must(
            s,
            "sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.ipv4.neigh.leg.proxy_delay=0",
        );
        for (i, c) in self.clients.iter().enumerate() {
            let n = i + 1;
            must(
                s,
                &format!(
                    "ip link add up{n} type veth peer name eth0 netns {}",
                    c.name
                ),
            );
            must(
                s,
                &format!("ip addr add 10.99.{n}.1/24 dev up{n} && ip link set up{n} up"),
            );
            must(
                c,
                &format!("ip addr add 10.99.{n}.2/24 dev eth0 && ip link set eth0 up"),
            );
        }
    }

    fn secrets(&self) {
        let mut args = vec!["secrets".to_string(), "init".into()];
        args.push(self.path("secrets").display().to_string());
        // sw1 too: FreeRADIUS's start script wants every NAS secret of the site.
        for nas in ["vpn1", "sw1"] {
            args.extend(["--nas".into(), nas.into()]);
        }
        for c in CLIENTS {
            args.extend(["--cn".into(), c.to_string()]);
        }
        let o = Command::new(bin("vbuild")).args(&args).output().unwrap();
        assert!(
            o.status.success(),
            "vbuild secrets init: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// FreeRADIUS with the files `labwall radius` writes, its run directory moved into ours.
    fn start_radius(&self) -> Proc {
        let gen = self.path("gen");
        let o = Command::new(bin("labwall"))
            .arg("radius")
            .arg(site())
            .arg("-o")
            .arg(&gen)
            .arg("--secrets-dir")
            .arg(self.path("secrets"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "labwall radius: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let conf = self.path("conf");
        let o = sh(&format!("cp -a /etc/freeradius/3.0 {}", conf.display()));
        assert!(o.status.success(), "copy /etc/freeradius/3.0");
        let run = self.path("run").display().to_string();
        for f in walk(&gen) {
            let rel = f.strip_prefix(&gen).unwrap();
            let text = fs::read_to_string(&f)
                .unwrap()
                .replace("/run/freeradius/ramux", &run);
            let p = conf.join(rel);
            let _ = fs::remove_file(&p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
        }
        let log = self.path("radius.log");
        let start =
            ramux_testkit::workspace_root().join("overlays/dns/usr/sbin/ramux-radius-start");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.v.name])
            .arg(start)
            .args(["-l", "stdout"])
            .env("RAMUX_RADIUS_CONF", &conf)
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        let p = Proc(child);
        wait_log(&log, "Ready to process requests", Duration::from_secs(30));
        p
    }

    /// The OpenVPN server with the management interface ramux-vpn-auth serves.
    pub fn start_openvpn(&self) -> Proc {
        let m = self.path("vlan10.sock");
        let auth = format!(
            "management {} unix\nmanagement-client-auth\nmanagement-hold\nauth-user-pass-optional\n",
            m.display()
        );
        let p = self.start_openvpn_with(&auth);
        wait_for(Duration::from_secs(15), || m.exists(), "management socket");
        p
    }

    /// The old method, for the benchmark: a synchronous client-connect script asking RADIUS
    /// with radclient (`timeout_s` x 1 try), and learn-address adding the route and proxy entry.
    pub fn start_openvpn_script(&self, timeout_s: u32) -> Proc {
        let cc = self.path("client-connect.sh");
        let secret = self.path("secrets/radius/nas/vpn1");
        let script = format!(
            "#!/bin/sh\n# client-connect: synchronous RADIUS check; OpenVPN waits for it.\n\
             reply=$(printf 'User-Name = \"%s\"\\nNAS-Identifier = \"vpn1-vlan10\"\\nNAS-Port-Type = Virtual\\n\
             Calling-Station-Id = \"%s\"\\nMessage-Authenticator = 0x00\\n' \"$common_name\" \"$untrusted_ip\" |\n\
             radclient -x -r 1 -t {timeout_s} -S {secret} 172.16.10.10:1812 auth 2>&1)\n\
             case $reply in *'Received Access-Accept'*) ;; *) exit 1 ;; esac\n\
             ip=$(printf '%s\\n' \"$reply\" | sed -n 's/^[[:space:]]*Framed-IP-Address = //p' | head -n 1)\n\
             vlan=$(printf '%s\\n' \"$reply\" | sed -n 's/^[[:space:]]*Tunnel-Private-Group-Id[:0-9]* = \"\\(.*\\)\"$/\\1/p' | head -n 1)\n\
             [ \"$vlan\" = 10 ] && [ -n \"$ip\" ] || exit 1\n\
             printf 'ifconfig-push %s 255.255.255.0\\n' \"$ip\" > \"$1\"\n",
            secret = secret.display()
        );
        fs::write(&cc, script).unwrap();
        let la = self.path("learn-address.sh");
        fs::write(
            &la,
            "#!/bin/sh\ncase $1 in add|update) ip route replace \"$2/32\" dev \"$dev\"; \
             ip neigh replace proxy \"$2\" dev leg ;;\ndelete) ip route del \"$2/32\" dev \"$dev\"; \
             ip neigh del proxy \"$2\" dev leg ;;\nesac\nexit 0\n",
        )
        .unwrap();
        for f in [&cc, &la] {
            fs::set_permissions(f, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let auth = format!(
            "client-connect {}\nlearn-address {}\n",
            cc.display(),
            la.display()
        );
        let p = self.start_openvpn_with(&auth);
        wait_log(
            &self.path("server.log"),
            "Initialization Sequence Completed",
            Duration::from_secs(15),
        );
        p
    }

    fn start_openvpn_with(&self, auth: &str) -> Proc {
        let _ = fs::remove_file(self.path("vlan10.sock"));
        let _ = fs::remove_file(self.path("server.log"));
        let up = self.path("up.sh");
        fs::write(
            &up,
            "#!/bin/sh\nexec ip link set dev \"$1\" up mtu \"$2\"\n",
        )
        .unwrap();
        fs::set_permissions(&up, fs::Permissions::from_mode(0o755)).unwrap();
        let sec = self.path("secrets");
        let conf = format!(
            "mode server\ntls-server\nproto tcp-server\nport 1194\ndev tun10\ndev-type tun\n\
             topology subnet\npush \"topology subnet\"\nifconfig 172.16.10.20 255.255.255.0\n\
             ifconfig-noexec\npush \"route-gateway 172.16.10.20\"\nscript-security 2\nup {up}\n\
             ca {s}/pki/ca.crt\ncert {s}/pki/radius.crt\nkey {s}/pki/radius.key\ndh none\n\
             remote-cert-tls client\ntls-version-min 1.2\ndata-ciphers AES-256-GCM\ndisable-dco\n\
             keepalive 10 60\n{auth}verb 3\nlog {l}\n",
            up = up.display(),
            s = sec.display(),
            l = self.path("server.log").display(),
        );
        fs::write(self.path("server.conf"), conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.s.name])
            .args(self.prio())
            .args(["openvpn", "--config"])
            .arg(self.path("server.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proc(child)
    }

    /// The daemon's configuration file, with the RADIUS server at `radius`.
    pub fn auth_conf(&self, radius: &str, timeout_ms: u64, tries: u32) -> PathBuf {
        let t = format!(
            "instance = \"vpn1\"\ntimeout_ms = {timeout_ms}\ntries = {tries}\n\n\
             [[radius]]\naddress = \"{radius}\"\nsecret = \"radius/nas/vpn1\"\n\n\
             [[daemons]]\nvlan = 10\nmanagement = \"{}\"\ntun = \"tun10\"\nleg = \"leg\"\n\
             network = \"172.16.10.0/24\"\nreserved = [\"172.16.10.1\", \"172.16.10.5\", \"172.16.10.10\", \"172.16.10.20\"]\n",
            self.path("vlan10.sock").display()
        );
        let p = self.path("vpn-auth.toml");
        fs::write(&p, t).unwrap();
        p
    }

    /// Starts ramux-vpn-auth in the server namespace (stderr appended to auth.log).
    pub fn start_auth(&mut self, conf: &Path) {
        self.auth = None;
        let _ = fs::remove_file(self.path("status"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("auth.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.s.name])
            .arg(env!("CARGO_BIN_EXE_ramux-vpn-auth"))
            .arg("-c")
            .arg(conf)
            .arg("--secrets-dir")
            .arg(self.path("secrets"))
            .arg("--status-file")
            .arg(self.path("status"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.auth = Some(Proc(child));
    }

    pub fn status(&self) -> String {
        fs::read_to_string(self.path("status")).unwrap_or_default()
    }

    pub fn counter(&self, name: &str) -> u64 {
        let s = self.status();
        let key = format!("{name}=");
        s.split_whitespace()
            .find_map(|w| w.strip_prefix(&key)?.parse().ok())
            .unwrap_or(0)
    }

    pub fn auth_log(&self) -> String {
        fs::read_to_string(self.path("auth.log")).unwrap_or_default()
    }

    /// Starts the OpenVPN client `cn` in its namespace; see [`Lab::wait_client`].
    pub fn client(&self, cn: &str) -> Proc {
        let i = CLIENTS.iter().position(|c| *c == cn).unwrap();
        let sec = self.path("secrets");
        let log = self.path(&format!("{cn}.log"));
        let _ = fs::remove_file(&log);
        let conf = format!(
            "client\ndev tun\nproto tcp-client\nremote 10.99.{n}.1 1194\nnobind\n\
             ca {s}/pki/ca.crt\ncert {s}/pki/clients/{cn}.crt\nkey {s}/pki/clients/{cn}.key\n\
             remote-cert-tls server\ndata-ciphers AES-256-GCM\ndisable-dco\nauth-retry none\n\
             connect-retry 1 1\nverb 3\nlog {l}\n",
            n = i + 1,
            s = sec.display(),
            l = log.display()
        );
        let cf = self.path(&format!("{cn}.conf"));
        fs::write(&cf, conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.clients[i].name])
            .args(self.prio())
            .args(["openvpn", "--config"])
            .arg(&cf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proc(child)
    }

    /// Waits for the client's verdict: Ok(elapsed) when connected, Err(log) when refused.
    pub fn wait_client(
        &self,
        cn: &str,
        p: &mut Proc,
        within: Duration,
    ) -> Result<Duration, String> {
        let log = self.path(&format!("{cn}.log"));
        let t0 = Instant::now();
        while t0.elapsed() < within {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Initialization Sequence Completed") {
                return Ok(t0.elapsed());
            }
            if text.contains("AUTH_FAILED") || p.0.try_wait().ok().flatten().is_some() {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{cn}: no verdict within {within:?}:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn ns_of(&self, cn: &str) -> &Netns {
        &self.clients[CLIENTS.iter().position(|c| *c == cn).unwrap()]
    }

    /// The server namespace's /32 route and proxy entry for `addr`, as `ip` prints them.
    pub fn kernel_entries(&self, addr: &str) -> String {
        let o = netns_sh(
            &self.s,
            &format!("ip route show {addr}/32; ip neigh show proxy {addr}"),
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The pid of FreeRADIUS (the start script execs it).
    pub fn radius_pid(&self) -> u32 {
        self.radius.as_ref().unwrap().0.id()
    }
}

pub fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn wait_for(within: Duration, mut f: impl FnMut() -> bool, what: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {within:?}");
}

pub fn wait_log(log: &Path, needle: &str, within: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if fs::read_to_string(log).unwrap_or_default().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{}: no {needle:?} within {within:?}:\n{}",
        log.display(),
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// `ping -D` output -> the largest gap between consecutive replies, and how many came back.
pub fn ping_gaps(out: &str) -> (Duration, usize) {
    let ts: Vec<f64> = out
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let max = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    (Duration::from_secs_f64(max), ts.len())
}

/// A UDP server in namespace `ns` (the thread enters it with setns): `f` answers each
/// datagram (or not); stops when `stop` is set.
pub fn udp_server_in(
    ns: &str,
    addr: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    f: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let (ns, addr) = (ns.to_string(), addr.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        enter_netns(&ns);
        let s = std::net::UdpSocket::bind(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 4096];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                if let Some(r) = f(&buf[..n]) {
                    let _ = s.send_to(&r, from);
                }
            }
        }
    });
    rx.recv().unwrap();
    h
}

/// Moves the calling thread into network namespace `ns` (only this thread).
pub fn enter_netns(ns: &str) {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(format!("/run/netns/{ns}")).unwrap();
    // SAFETY: setns on an open namespace file; affects only the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}
