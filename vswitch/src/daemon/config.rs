//! What the command line can set ([`Config`]), the parsers of its option values
//! (`--vxlan`, `PATH[:PORT]`, `IP:TCPPORT[@PORT]`, octal modes) and the rules that combine
//! and check them. Pure: no I/O apart from reading the working directory.

use anyhow::{bail, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A VXLAN uplink (RFC 7348) towards one remote VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanCfg {
    pub vni: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Switch port to use (None = first free).
    pub port: Option<u16>,
}

impl std::str::FromStr for VxlanCfg {
    type Err = String;
    /// `vni=42,local=IP:PORT,remote=IP:PORT[,port=N]`
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut vni = None;
        let mut local = None;
        let mut remote = None;
        let mut port = None;
        for kv in s.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("expected key=value in {kv:?}"))?;
            match k {
                "vni" => vni = Some(v.parse::<u32>().map_err(|e| format!("vni {v:?}: {e}"))?),
                "local" => local = Some(v.parse().map_err(|e| format!("local {v:?}: {e}"))?),
                "remote" => remote = Some(v.parse().map_err(|e| format!("remote {v:?}: {e}"))?),
                "port" => port = Some(v.parse().map_err(|e| format!("port {v:?}: {e}"))?),
                _ => return Err(format!("unknown key {k:?} (vni, local, remote, port)")),
            }
        }
        let vni = vni.ok_or("missing vni=")?;
        if vni >= 1 << 24 {
            return Err(format!("vni {vni} does not fit in 24 bits"));
        }
        Ok(VxlanCfg {
            vni,
            local: local.ok_or("missing local=")?,
            remote: remote.ok_or("missing remote=")?,
            port,
        })
    }
}

/// `PATH[:PORT]` (`--stream`, `--dgram`, `--stream-connect`): a trailing `:digits` is the
/// switch port; anything else is part of the path.
pub fn path_port(s: &str) -> std::result::Result<(PathBuf, Option<u16>), String> {
    match s.rsplit_once(':') {
        Some((p, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok((
            p.into(),
            Some(n.parse().map_err(|e| format!("port {n:?}: {e}"))?),
        )),
        _ => Ok((s.into(), None)),
    }
}

/// `IP:TCPPORT[@PORT]` (`--stream-tcp`).
pub fn addr_port(s: &str) -> std::result::Result<(SocketAddr, Option<u16>), String> {
    let (a, p) = match s.split_once('@') {
        Some((a, p)) => (
            a,
            Some(p.parse().map_err(|e| format!("switch port {p:?}: {e}"))?),
        ),
        None => (s, None),
    };
    Ok((
        a.parse()
            .map_err(|e| format!("{a:?} is not IP:PORT: {e}"))?,
        p,
    ))
}

/// An octal file mode (`-m`, `--dirmode`, `--mgmtmode`), with or without `0o`.
pub fn octal(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|e| format!("{s:?} is not an octal mode: {e}"))
}

/// Everything the command line can set.
#[derive(Debug, Clone)]
pub struct Config {
    pub sock_dir: PathBuf,
    pub mgmt: Option<PathBuf>,
    pub numports: u16,
    pub hub: bool,
    /// `-F`/`--fstp`: run 802.1D spanning tree (one tree over all VLANs).
    pub stp: bool,
    /// `--rstp`: the tree runs RSTP.
    pub stp_rstp: bool,
    /// `--priority`: the spanning tree bridge priority.
    pub stp_priority: u16,
    pub daemonize: bool,
    pub pidfile: Option<PathBuf>,
    pub rcfile: Option<PathBuf>,
    /// Mode of ctl and data sockets.
    pub mode: u32,
    pub dirmode: Option<u32>,
    pub group: Option<u32>,
    pub mgmt_mode: u32,
    pub mgmt_group: Option<u32>,
    pub hashsize: usize,
    /// `--mac-table-size`: bound of the MAC table.
    pub mac_table_size: usize,
    /// `--mac-per-port`: bound of one port's MACs.
    pub mac_per_port: usize,
    pub taps: Vec<String>,
    pub vxlans: Vec<VxlanCfg>,
    /// `--stream PATH[:PORT]` listeners for QEMU `-netdev stream` (4-byte length framing).
    pub streams: Vec<(PathBuf, Option<u16>)>,
    /// `--port-streams`: a `-netdev stream` listener for every port N at
    /// `DIR.streams/N` (see [`crate::layout`]).
    pub port_streams: bool,
    /// `--dgram PATH[:PORT]` sockets for QEMU `-netdev dgram` (raw frames).
    pub dgrams: Vec<(PathBuf, Option<u16>)>,
    /// `--stream-tcp IP:TCPPORT[@PORT]`: TCP listeners, same framing (QEMU
    /// `-netdev stream,addr.type=inet` and legacy `-netdev socket,connect=`).
    pub stream_tcps: Vec<(SocketAddr, Option<u16>)>,
    /// `--stream-connect PATH[:PORT]`: QEMU `-netdev stream,server=on` sockets to connect to.
    pub stream_connects: Vec<(PathBuf, Option<u16>)>,
    /// Console commands run after the rc file (e.g. from `--impair`).
    pub commands: Vec<String>,
    /// Per-endpoint egress queue bound, bytes.
    pub egress_queue_bytes: usize,
    /// Read console commands from stdin (foreground only).
    pub stdin_console: bool,
}

impl Config {
    /// Mode of the directories the switch creates: `--dirmode`, else vde_switch's rule (the
    /// socket mode, setgid, and searchable wherever it is readable).
    pub fn dir_mode(&self) -> u32 {
        self.dirmode
            .unwrap_or(0o2000 | self.mode | ((self.mode & 0o444) >> 2))
    }

    /// `-m MODE` and `--dirmode MODE` as vde_switch combines them: `-m` sets the socket mode
    /// (and `--dirmode`, if given, the directory's); `--dirmode` alone also gives the sockets
    /// its read/write bits.
    pub fn set_modes(&mut self, mode: Option<u32>, dirmode: Option<u32>) {
        match (mode, dirmode) {
            (Some(m), d) => {
                self.mode = m;
                self.dirmode = d;
            }
            (None, Some(d)) => {
                self.mode = d & 0o666;
                self.dirmode = Some(d);
            }
            (None, None) => {}
        }
    }

    /// Reject settings the switch cannot run with.
    pub fn validate(&self) -> Result<()> {
        if self.numports == 0 {
            bail!("-n/--numports must be at least 1");
        }
        Ok(())
    }

    /// Make the switch directory, the management socket and the pid file absolute (the
    /// daemon changes to `/`), reading the working directory only if one is relative.
    pub(crate) fn make_paths_absolute(&mut self) -> std::io::Result<()> {
        let relative = |p: Option<&PathBuf>| p.is_some_and(|p| p.is_relative());
        if relative(Some(&self.sock_dir))
            || relative(self.mgmt.as_ref())
            || relative(self.pidfile.as_ref())
        {
            self.resolve_relative(&std::env::current_dir()?);
        }
        Ok(())
    }

    /// [`Self::make_paths_absolute`] against a given working directory.
    fn resolve_relative(&mut self, cwd: &Path) {
        if self.sock_dir.is_relative() {
            self.sock_dir = cwd.join(&self.sock_dir);
        }
        for p in [&mut self.mgmt, &mut self.pidfile].into_iter().flatten() {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sock_dir: PathBuf::from("/tmp/vde.ctl"),
            mgmt: None,
            numports: 32,
            hub: false,
            stp: false,
            stp_rstp: false,
            stp_priority: 0x8000,
            daemonize: false,
            pidfile: None,
            rcfile: None,
            mode: 0o600,
            dirmode: None,
            group: None,
            mgmt_mode: 0o600,
            mgmt_group: None,
            hashsize: 128,
            mac_table_size: crate::core::DEFAULT_MAC_TABLE_SIZE,
            mac_per_port: crate::core::DEFAULT_MAC_PER_PORT,
            taps: vec![],
            vxlans: vec![],
            streams: vec![],
            port_streams: false,
            dgrams: vec![],
            stream_connects: vec![],
            stream_tcps: vec![],
            commands: vec![],
            egress_queue_bytes: 1 << 20,
            stdin_console: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_cfg_parse() {
        let v: VxlanCfg = "vni=42,local=127.0.0.1:4789,remote=127.0.0.2:4789,port=5"
            .parse()
            .unwrap();
        assert_eq!(v.vni, 42);
        assert_eq!(v.local, "127.0.0.1:4789".parse().unwrap());
        assert_eq!(v.remote, "127.0.0.2:4789".parse().unwrap());
        assert_eq!(v.port, Some(5));
        let v: VxlanCfg = "remote=[::1]:1,vni=16777215,local=[::1]:2".parse().unwrap();
        assert_eq!((v.vni, v.port), (16_777_215, None));
        assert!("vni=42".parse::<VxlanCfg>().is_err());
        assert!("vni=99999999,local=127.0.0.1:1,remote=127.0.0.1:2"
            .parse::<VxlanCfg>()
            .is_err());
    }

    #[test]
    fn vxlan_cfg_errors_say_what_is_wrong() {
        let err = |s: &str| s.parse::<VxlanCfg>().unwrap_err();
        assert_eq!(err("vni=1,local=127.0.0.1:1"), "missing remote=");
        assert_eq!(err("local=127.0.0.1:1,remote=127.0.0.1:2"), "missing vni=");
        assert_eq!(
            err("vni=16777216,local=127.0.0.1:1,remote=127.0.0.1:2"),
            "vni 16777216 does not fit in 24 bits"
        );
        assert!(err("vni=1,mtu=1500").starts_with("unknown key \"mtu\""));
        assert!(err("vni").starts_with("expected key=value"));
        assert!(err("vni=x,local=127.0.0.1:1,remote=127.0.0.1:2").starts_with("vni \"x\""));
        assert!(err("vni=1,local=nowhere,remote=127.0.0.1:2").starts_with("local \"nowhere\""));
        assert!(err("vni=1,local=127.0.0.1:1,remote=127.0.0.1:2,port=-1").starts_with("port"));
    }

    #[test]
    fn path_port_values() {
        assert_eq!(path_port("/tmp/s:5").unwrap(), ("/tmp/s".into(), Some(5)));
        assert_eq!(path_port("/tmp/s").unwrap(), ("/tmp/s".into(), None));
        // Only trailing digits are a port.
        assert_eq!(path_port("/tmp/a:b").unwrap(), ("/tmp/a:b".into(), None));
        assert_eq!(path_port("/tmp/s:").unwrap(), ("/tmp/s:".into(), None));
        assert!(path_port("/tmp/s:70000").is_err());
    }

    #[test]
    fn addr_port_values() {
        let a: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        assert_eq!(addr_port("127.0.0.1:5555").unwrap(), (a, None));
        assert_eq!(addr_port("127.0.0.1:5555@7").unwrap(), (a, Some(7)));
        assert!(addr_port("127.0.0.1@7").is_err());
        assert!(addr_port("127.0.0.1:5555@x").is_err());
    }

    #[test]
    fn octal_modes() {
        assert_eq!(octal("660").unwrap(), 0o660);
        assert_eq!(octal("0o2770").unwrap(), 0o2770);
        assert!(octal("999").is_err());
    }

    #[test]
    fn modes_combine_like_vde_switch() {
        let mut c = Config::default();
        assert_eq!(c.dir_mode(), 0o2700);
        c.set_modes(Some(0o660), None);
        assert_eq!((c.mode, c.dirmode, c.dir_mode()), (0o660, None, 0o2770));
        c.set_modes(None, Some(0o2750));
        assert_eq!((c.mode, c.dir_mode()), (0o640, 0o2750));
        c.set_modes(Some(0o600), Some(0o700));
        assert_eq!((c.mode, c.dir_mode()), (0o600, 0o700));
        c.set_modes(None, None);
        assert_eq!((c.mode, c.dir_mode()), (0o600, 0o700));
    }

    #[test]
    fn validation() {
        assert!(Config::default().validate().is_ok());
        let c = Config {
            numports: 0,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("numports"));
    }

    #[test]
    fn relative_paths_resolve_against_cwd() {
        let mut c = Config {
            sock_dir: "sw".into(),
            mgmt: Some("/abs/mgmt".into()),
            pidfile: Some("run/sw.pid".into()),
            rcfile: Some("lab.rc".into()),
            ..Config::default()
        };
        c.resolve_relative(Path::new("/work"));
        assert_eq!(c.sock_dir, Path::new("/work/sw"));
        assert_eq!(c.mgmt.as_deref(), Some(Path::new("/abs/mgmt")));
        assert_eq!(c.pidfile.as_deref(), Some(Path::new("/work/run/sw.pid")));
        // The rc file is read before the daemon changes directory: left as given.
        assert_eq!(c.rcfile.as_deref(), Some(Path::new("lab.rc")));
    }
}
