//! Shared helpers for vswitch's integration tests: process guards that clean up on drop,
//! raw VDE ports, and tool checks that fail with the Debian package name.
#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vswitch::client::{MgmtSession, VdeClient};
use vswitch::wire::{EthernetRepr, Mac, PortRequest};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vswitch")
}

/// Fail (never skip) when a required tool is missing.
pub fn require(tool: &str, package: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} not found: install the Debian package {package} (listed in scripts/apt-packages)"
    );
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Unique short name for this process and purpose (netns, tap names: <= 15 bytes).
pub fn uniq(tag: &str) -> String {
    format!("vsw{}{}", std::process::id() % 100000, tag)
}

/// A child process killed and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running switch (vswitch or vde_switch) in its own temp dir.
pub struct Sw {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub mgmt: PathBuf,
    pub proc: Option<Proc>,
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Sw {
    /// Start `vswitch -s DIR/sw -M DIR/mgmt EXTRA...` in the foreground.
    pub fn start(extra: &[&str]) -> Sw {
        Self::start_with(bin(), extra, &[])
    }

    /// Start `program` (vswitch or vde_switch), optionally wrapped (e.g. `ip netns exec NS`).
    pub fn start_with(program: &str, extra: &[&str], wrapper: &[&str]) -> Sw {
        let dir = tempfile::Builder::new()
            .prefix("vsw-test-")
            .tempdir()
            .expect("tempdir");
        let sock = dir.path().join("sw");
        let mgmt = dir.path().join("mgmt");
        let mut cmd = if wrapper.is_empty() {
            Command::new(program)
        } else {
            let mut c = Command::new(wrapper[0]);
            c.args(&wrapper[1..]).arg(program);
            c
        };
        cmd.arg("-s").arg(&sock).arg("-M").arg(&mgmt).args(extra);
        // vde_switch 2.3.2 exits on stdin EOF: give it a pipe we never close.
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let mut sw = Sw {
            dir,
            sock,
            mgmt,
            proc: Some(Proc(child)),
        };
        let ctl = sw.sock.join("ctl");
        let mgmt = sw.mgmt.clone();
        let p = sw.proc.as_mut().unwrap();
        wait_for("switch sockets", Duration::from_secs(10), || {
            if let Ok(Some(st)) = p.0.try_wait() {
                panic!("{program} exited early: {st}");
            }
            // The ctl and management sockets are bound before the command line's transports
            // (--stream, --port-streams, taps, ...); the console answers only once the switch
            // serves, i.e. once every one of them is in place.
            ctl.exists() && mgmt.exists() && MgmtSession::connect(&mgmt).is_ok()
        });
        sw
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().unwrap().0.id()
    }

    pub fn port(&self, n: u32) -> Port {
        Port::open(&self.sock, PortRequest::Port(n))
    }

    pub fn mgmt(&self) -> MgmtSession {
        MgmtSession::connect(&self.mgmt).expect("mgmt connect")
    }

    /// Run console commands; panic on any failure.
    pub fn cmds(&self, lines: &[&str]) {
        let mut m = self.mgmt();
        for l in lines {
            let r = m.cmd(l).unwrap();
            assert_eq!(r.code, 1000, "{l}: {r:?}");
        }
    }
}

/// A raw VDE port opened with the handshake.
pub struct Port {
    pub c: VdeClient,
}

impl Port {
    pub fn open(dir: &Path, req: PortRequest) -> Port {
        let c = VdeClient::connect(dir, req, "vswitch-test").expect("vde connect");
        c.data
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        Port { c }
    }
    pub fn data(&self) -> &UnixDatagram {
        &self.c.data
    }
    pub fn send(&self, f: &[u8]) {
        self.c.data.send(f).expect("send");
    }
    /// Next frame, or None after `ms` milliseconds.
    pub fn recv_within(&self, ms: u64) -> Option<Vec<u8>> {
        self.c
            .data
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut b = vec![0u8; 10000];
        match self.c.data.recv(&mut b) {
            Ok(n) => Some(b[..n].to_vec()),
            Err(_) => None,
        }
    }
    pub fn recv(&self) -> Vec<u8> {
        self.recv_within(6000).expect("expected a frame within 6 s")
    }
    /// Drain anything pending.
    pub fn drain(&self) {
        while self.recv_within(50).is_some() {}
    }
}

pub fn mac(n: u8) -> Mac {
    [2, 0, 0, 0, 0x5e, n]
}

pub fn frame(dst: Mac, src: Mac, vid: Option<u16>, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    EthernetRepr {
        dst,
        src,
        vid,
        ethertype: 0x88b5,
    }
    .emit(&payload)
}

pub use ramux_testkit::{netns_sh, Netns};

/// A fresh network namespace for this process and `tag` ([`uniq`]), `lo` up, deleted on drop.
pub fn netns(tag: &str) -> Netns {
    ramux_testkit::netns(&uniq(tag))
}

/// Run a shell command, panic with its stderr on failure.
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
