//! The switch process: one thread, one mio (epoll) loop over non-blocking unix sockets.
//!
//! Why this design: the data path is one datagram in, a table lookup, one datagram out
//! per destination. On 2 cores a single thread that drains each socket in batches (instead
//! of vde_switch's one datagram per poll() wake-up) is the cheapest design, and per-endpoint
//! egress queues armed with EPOLLOUT replace vde_switch's drop-on-EAGAIN.

use crate::console::{self, Action, Ctx, Reply};
use crate::core::{DropReason, EndpointInfo, PortId, Switch, TagAction};
use crate::impair::Impairer;
use crate::wire::{
    self, PortRequest, Request, RequestRepr, MAX_FRAME_LEN, REQUEST_HEADER_LEN, REQUEST_MAX_LEN,
};
use anyhow::{bail, Context, Result};
use mio::net::{UnixDatagram, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// Everything the command line can set.
#[derive(Debug, Clone)]
pub struct Config {
    pub sock_dir: PathBuf,
    pub mgmt: Option<PathBuf>,
    pub numports: u16,
    pub hub: bool,
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
    pub taps: Vec<String>,
    pub vxlans: Vec<VxlanCfg>,
    /// `--stream PATH[:PORT]` listeners for QEMU `-netdev stream` (4-byte length framing).
    pub streams: Vec<(PathBuf, Option<u16>)>,
    /// `--port-streams`: a `-netdev stream` listener for every port N at
    /// `DIR.streams/N` (see [`port_streams_dir`]).
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
    fn dir_mode(&self) -> u32 {
        self.dirmode
            .unwrap_or(0o2000 | self.mode | ((self.mode & 0o444) >> 2))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sock_dir: PathBuf::from("/tmp/vde.ctl"),
            mgmt: None,
            numports: 32,
            hub: false,
            daemonize: false,
            pidfile: None,
            rcfile: None,
            mode: 0o600,
            dirmode: None,
            group: None,
            mgmt_mode: 0o600,
            mgmt_group: None,
            hashsize: 128,
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

const T_CTL: Token = Token(0);
const T_MGMT: Token = Token(1);
const T_STDIN: Token = Token(2);
const T_SIGNAL: Token = Token(3);
const FIRST_CONN: usize = 16;
/// Datagrams read from one socket before giving others a turn.
const READ_BUDGET: usize = 64;
/// Datagrams per recvmmsg call. Not larger: a batch is switched as a whole, so it must fit
/// in half an egress queue for the back-pressure to hold (128 overran a 64 KiB queue with
/// 1000-byte frames in `hub_mode_and_dead_receiver_is_bounded`), and 128 gained no
/// measurable CPU per frame in the benchmark.
const RECV_BATCH: usize = 32;
/// Frames per sendmmsg call.
const SEND_BATCH: usize = 64;
/// Bytes per read() from a stream peer (QEMU `-netdev stream`): dozens of frames per call.
const STREAM_READ: usize = 64 * 1024;
/// Recycled egress buffers kept (bounds the pool's memory to ~POOL_MAX * frame size).
const POOL_MAX: usize = 512;
/// How long an ingress port may be held back by a full egress queue before frames are
/// dropped instead (a receiver that is really gone must not stall the switch).
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Where an endpoint's frames go.
enum Sink {
    Dgram(UnixDatagram),
    Tap(File),
    Vxlan {
        sock: UdpSocket,
        remote: SocketAddr,
        vni: u32,
    },
    /// QEMU `-netdev stream` peer: 4-byte big-endian length + frame.
    Stream {
        s: File,
        dec: Vec<u8>,
    },
    /// QEMU `-netdev dgram` peer: raw frames, peer address learned from recvfrom.
    DgramTo {
        s: std::os::unix::net::UnixDatagram,
        peer: Option<PathBuf>,
    },
}

impl Sink {
    fn fd(&self) -> RawFd {
        match self {
            Sink::Dgram(d) => d.as_raw_fd(),
            Sink::Tap(f) => f.as_raw_fd(),
            Sink::Vxlan { sock, .. } => sock.as_raw_fd(),
            Sink::Stream { s, .. } => s.as_raw_fd(),
            Sink::DgramTo { s, .. } => s.as_raw_fd(),
        }
    }

    /// Append the bytes to write for one frame (stream framing, VXLAN header) to `out`,
    /// which is a recycled queue buffer: no allocation per frame.
    fn encode_into(&self, frame: &[u8], out: &mut Vec<u8>) {
        match self {
            Sink::Stream { .. } => out.extend_from_slice(&(frame.len() as u32).to_be_bytes()),
            Sink::Vxlan { vni, .. } => out.extend_from_slice(&wire::vxlan_header(*vni)),
            _ => {}
        }
        out.extend_from_slice(frame);
    }

    /// Length of [`Self::encode_into`]'s output for a frame of `len` bytes.
    fn encoded_len(&self, len: usize) -> usize {
        match self {
            Sink::Stream { .. } => len + 4,
            Sink::Vxlan { .. } => len + 8,
            _ => len,
        }
    }

    /// Write the head of `queue` with one syscall: `sendmmsg` for datagram peers, `writev` for
    /// streams, one frame for the others. Returns the bytes taken (a stream may stop inside a
    /// frame; datagrams are taken whole).
    fn write_batch(&self, queue: &VecDeque<Vec<u8>>) -> io::Result<usize> {
        let fd = match self {
            Sink::Dgram(d) => d.as_raw_fd(),
            Sink::Stream { s, .. } => s.as_raw_fd(),
            _ => return self.write(queue.front().map_or(&[][..], |f| &f[..])),
        };
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; SEND_BATCH];
        let mut cnt = 0;
        for (v, f) in iov.iter_mut().zip(queue) {
            *v = libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            };
            cnt += 1;
        }
        if let Sink::Stream { .. } = self {
            // SAFETY: iov points into queue entries that stay alive and unmodified for the call.
            let n = unsafe { libc::writev(fd, iov.as_ptr(), cnt as i32) };
            return if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            };
        }
        // SAFETY: an all-zero mmsghdr is a valid empty header.
        let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()).take(cnt) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs point at iov, iov into queue entries, all alive for the call.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), cnt as u32, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(queue.iter().take(n as usize).map(Vec::len).sum())
    }

    /// Write encoded bytes; returns how many were taken (streams may take part).
    fn write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Dgram(d) => d.send(b),
            Sink::Tap(f) => (&*f).write(b),
            Sink::Vxlan { sock, remote, .. } => sock.send_to(b, remote),
            Sink::Stream { s, .. } => (&*s).write(b),
            Sink::DgramTo { s, peer } => match peer {
                Some(p) => s.send_to(b, p),
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no dgram peer has sent a frame yet",
                )),
            },
        }
    }
}

struct Endpoint {
    id: u32,
    port: PortId,
    sink: Sink,
    /// Token of the data source (datagram socket / tap / udp / stream).
    data_tok: Token,
    /// Token of the ctl stream (None for taps, vxlan, stream and dgram peers).
    ctl_tok: Option<Token>,
    /// Encoded bytes waiting for EPOLLOUT (frames, or stream bytes).
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    writable_armed: bool,
    /// In [`Daemon::dirty`]: has frames queued in this batch.
    dirty: bool,
    sock_path: Option<PathBuf>,
    /// Ingress sources paused because this endpoint's queue passed its high watermark.
    paused_ingress: Vec<Token>,
}

enum Conn {
    CtlPending {
        s: UnixStream,
        buf: Vec<u8>,
    },
    Ctl {
        s: UnixStream,
        ep: usize,
    },
    Data {
        ep: usize,
    },
    /// `--stream PATH[:PORT]`: each accepted QEMU `-netdev stream` peer becomes an endpoint.
    StreamListener {
        l: Listener,
        port: Option<u16>,
        /// Unix socket path (unlinked at exit) or the TCP address, for messages.
        path: PathBuf,
    },
    Mgmt {
        s: UnixStream,
        inbuf: Vec<u8>,
        out: Vec<u8>,
        closing: bool,
        /// Subscribed debug categories.
        debug: Vec<&'static str>,
    },
}

/// Rate-limited logging: at most `burst` lines per kind per 10 s window.
struct RateLog {
    window: HashMap<&'static str, (Instant, u32, u64)>,
    syslog: bool,
}

impl RateLog {
    fn log(&mut self, kind: &'static str, msg: &str) {
        let now = Instant::now();
        let e = self.window.entry(kind).or_insert((now, 0, 0));
        if now.duration_since(e.0) > Duration::from_secs(10) {
            let suppressed = e.2;
            *e = (now, 0, 0);
            if suppressed > 0 {
                emit(
                    self.syslog,
                    &format!("{kind}: {suppressed} similar messages suppressed"),
                );
            }
        }
        e.1 += 1;
        if e.1 <= 10 {
            emit(self.syslog, &format!("{kind}: {msg}"));
        } else {
            e.2 += 1;
        }
    }
}

fn emit(syslog: bool, msg: &str) {
    if syslog {
        if let Ok(c) = CString::new(msg.replace('%', "%%")) {
            // SAFETY: format string is a constant "%s" and c is a valid NUL-terminated string.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
        }
    } else {
        eprintln!("vswitch: {msg}");
    }
}

/// Stream listener: unix (`--stream`) or TCP (`--stream-tcp`, also QEMU `-netdev socket,connect=`).
enum Listener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

impl Listener {
    fn fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }

    /// Accept one peer as a plain fd-backed stream.
    fn accept(&self) -> io::Result<File> {
        Ok(match self {
            Listener::Unix(l) => File::from(OwnedFd::from(l.accept()?.0)),
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                // QEMU disables Nagle on its side too: frames are latency-sensitive.
                let _ = s.set_nodelay(true);
                File::from(OwnedFd::from(s))
            }
        })
    }
}

/// A QEMU `-netdev stream,server=on` socket the switch connects to, and reconnects to after
/// a disconnect (the QEMU side survives switch restarts this way).
struct Connector {
    path: PathBuf,
    port: Option<u16>,
    ep: Option<usize>,
    last_try: Option<Instant>,
}

struct Capture {
    w: BufWriter<File>,
    path: String,
}

/// Robustness counters beyond per-port drops.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub bad_handshakes: u64,
    pub refused_requests: u64,
    pub mgmt_sessions: u64,
    pub zero_length_datagrams: u64,
    /// Stream peers that closed with a partial frame buffered.
    pub died_mid_frame: u64,
    /// Stream peers dropped for an impossible length prefix.
    pub bad_stream_lengths: u64,
}

/// The running switch.
pub struct Daemon {
    cfg: Config,
    sw: Switch,
    poll: Poll,
    ctl: UnixListener,
    mgmt: Option<UnixListener>,
    conns: Vec<Option<Conn>>,
    eps: Vec<Option<Endpoint>>,
    port_eps: Vec<Vec<usize>>,
    impair_in: HashMap<PortId, Impairer>,
    impair_out: HashMap<PortId, Impairer>,
    captures: HashMap<PortId, Capture>,
    start: Instant,
    /// `now_ms` at the start of the current wake-up; see [`Self::tick`].
    batch_now_ms: u64,
    mac: [u8; 6],
    log: RateLog,
    stats: Stats,
    sig_read: Option<OwnedFd>,
    stdin_on: bool,
    /// Sockets that still had data when their read budget ran out.
    again: Vec<Token>,
    /// Endpoints with frames queued in the current batch.
    dirty: Vec<usize>,
    /// Recycled egress buffers.
    pool: Vec<Vec<u8>>,
    /// `--stream-connect` targets.
    connectors: Vec<Connector>,
    /// Some session subscribed to debug events.
    debug_any: bool,
    /// Ingress sockets not read while an egress queue they feed drains (back-pressure).
    paused: HashMap<Token, Instant>,
    /// Ingress source of the frame being switched (for back-pressure).
    cur_in: Option<Token>,
    buf: Vec<u8>,
    /// recvmmsg batch buffers.
    mbufs: Vec<Vec<u8>>,
    egress: Vec<crate::core::Egress>,
    shutdown: bool,
    /// Write end of the readiness pipe while daemonizing.
    ready: Option<OwnedFd>,
    wrote_pidfile: bool,
    created_dir: bool,
    /// `--port-streams` created `DIR.streams` (removed again on exit).
    created_streams_dir: bool,
    seed: u64,
}

fn chown_group(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, uid, gid)
}

/// Uid owning `path`, and whether we may read+write it.
fn client_uid(path: &[u8]) -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let p = Path::new(std::ffi::OsStr::from_bytes(path));
    let md = std::fs::metadata(p)?;
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(md.uid())
}

fn user_gids(uid: u32) -> Vec<u32> {
    // Primary group from /etc/passwd plus supplementary groups from /etc/group.
    let mut out = Vec::new();
    let mut name = String::new();
    if let Ok(t) = std::fs::read_to_string("/etc/passwd") {
        for l in t.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[2].parse::<u32>().ok() == Some(uid) {
                name = f[0].to_string();
                if let Ok(g) = f[3].parse() {
                    out.push(g);
                }
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string("/etc/group") {
        for l in t.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse() {
                    out.push(g);
                }
            }
        }
    }
    out
}

extern "C" fn on_signal(_: libc::c_int) {
    let fd = SIG_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; fd is the non-blocking pipe write end.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

static SIG_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn open_tap(name: &str) -> Result<File> {
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("open /dev/net/tun (needs root or CAP_NET_ADMIN)")?;
    let mut ifr = [0u8; 40];
    if name.len() >= 16 {
        bail!("tap name {name:?} longer than 15 bytes");
    }
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    let flags: i16 = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: ifr is a 40-byte struct ifreq buffer, valid for the ioctl.
    if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("attach tap {name} (TUNSETIFF)"));
    }
    set_nonblocking(f.as_raw_fd())?;
    Ok(f)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Random-ish switch MAC `00:ff:xx:xx:xx:xx` like vde_switch (used only for display).
fn switch_mac(seed: u64) -> [u8; 6] {
    let b = seed.to_le_bytes();
    [0, 0xff, b[0], b[1], b[2], b[3]]
}

/// Set up sockets, run the rc file, daemonize, then serve until shutdown.
pub fn run(cfg: Config) -> Result<()> {
    let mut d = Daemon::new(cfg)?;
    let r = d.serve();
    if r.is_err() {
        d.cleanup();
    }
    r
}

impl Daemon {
    /// Bind everything (so errors reach the caller before daemonizing).
    pub fn new(mut cfg: Config) -> Result<Self> {
        if cfg.sock_dir.is_relative() {
            cfg.sock_dir = std::env::current_dir()?.join(&cfg.sock_dir);
        }
        if let Some(m) = &cfg.mgmt {
            if m.is_relative() {
                cfg.mgmt = Some(std::env::current_dir()?.join(m));
            }
        }
        if let Some(p) = &cfg.pidfile {
            if p.is_relative() {
                cfg.pidfile = Some(std::env::current_dir()?.join(p));
            }
        }
        let dir = &cfg.sock_dir;
        let dirmode = cfg.dir_mode();
        let mut created_dir = false;
        // vlaunch's default is /run/ramux/switch: create missing parents (vde_switch would fail).
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("mkdir -p {}", parent.display()))?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => {
                created_dir = true;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dirmode))
                    .with_context(|| format!("chmod {}", dir.display()))?;
                chown_group(dir, None, cfg.group)
                    .with_context(|| format!("chgrp {}", dir.display()))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !dir.is_dir() {
                    bail!("{} exists and is not a directory", dir.display());
                }
            }
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", dir.display())),
        }
        let ctl_path = dir.join("ctl");
        if ctl_path.exists() {
            if std::os::unix::net::UnixStream::connect(&ctl_path).is_ok() {
                bail!(
                    "another switch is already listening on {}",
                    ctl_path.display()
                );
            }
            std::fs::remove_file(&ctl_path)
                .with_context(|| format!("remove stale {}", ctl_path.display()))?;
        }
        let ctl = UnixListener::bind(&ctl_path)
            .with_context(|| format!("bind {}", ctl_path.display()))?;
        std::fs::set_permissions(&ctl_path, std::fs::Permissions::from_mode(cfg.mode))?;
        chown_group(&ctl_path, None, cfg.group)?;
        let mgmt = match &cfg.mgmt {
            Some(m) => {
                if m.exists() {
                    if std::os::unix::net::UnixStream::connect(m).is_ok() {
                        bail!(
                            "management socket {} is in use by another process",
                            m.display()
                        );
                    }
                    std::fs::remove_file(m)
                        .with_context(|| format!("remove stale {}", m.display()))?;
                }
                let l = UnixListener::bind(m)
                    .with_context(|| format!("bind management socket {}", m.display()))?;
                std::fs::set_permissions(m, std::fs::Permissions::from_mode(cfg.mgmt_mode))?;
                chown_group(m, None, cfg.mgmt_group)?;
                Some(l)
            }
            None => None,
        };
        let seed = {
            let t = Instant::now();
            let addr = &t as *const _ as u64;
            addr ^ (std::process::id() as u64) << 32 ^ 0x9e37_79b9_7f4a_7c15
        };
        let poll = Poll::new()?;
        let numports = cfg.numports;
        let mut d = Daemon {
            sw: Switch::new(numports, cfg.hub, cfg.hashsize),
            poll,
            ctl,
            mgmt,
            conns: Vec::new(),
            eps: Vec::new(),
            port_eps: vec![Vec::new(); numports as usize + 1],
            impair_in: HashMap::new(),
            impair_out: HashMap::new(),
            captures: HashMap::new(),
            start: Instant::now(),
            batch_now_ms: 0,
            mac: switch_mac(seed),
            log: RateLog {
                window: HashMap::new(),
                syslog: false,
            },
            stats: Stats::default(),
            sig_read: None,
            stdin_on: false,
            again: Vec::new(),
            dirty: Vec::new(),
            pool: Vec::new(),
            connectors: Vec::new(),
            debug_any: false,
            paused: HashMap::new(),
            cur_in: None,
            buf: vec![0u8; STREAM_READ],
            mbufs: (0..RECV_BATCH)
                .map(|_| vec![0u8; MAX_FRAME_LEN + 64])
                .collect(),
            egress: Vec::new(),
            shutdown: false,
            ready: None,
            wrote_pidfile: false,
            created_dir,
            created_streams_dir: false,
            seed,
            cfg,
        };
        if let Some(rc) = d.cfg.rcfile.clone() {
            let text = std::fs::read_to_string(&rc)
                .with_context(|| format!("read rc file {}", rc.display()))?;
            for (i, line) in text.lines().enumerate() {
                let r = d.console_line(line);
                if r.errno > 0 {
                    // vde_switch ignores errors silently; we warn with file:line.
                    emit(
                        false,
                        &format!(
                            "{}:{}: {:?}: {}",
                            rc.display(),
                            i + 1,
                            line,
                            console::strerror(r.errno)
                        ),
                    );
                }
            }
        }
        for c in d.cfg.commands.clone() {
            // `--impair N ...` on a port nobody has connected to yet: create it (allocatable),
            // so the impairment is in place for the first client.
            if let Some(n) = c
                .strip_prefix("port/impair ")
                .and_then(|r| r.split_whitespace().next())
            {
                if let Ok(n) = n.parse::<PortId>() {
                    if n <= d.sw.numports && d.sw.port(n).is_none() {
                        d.sw.create_port(n, true);
                    }
                }
            }
            let r = d.console_line(&c);
            if r.errno > 0 {
                d.cleanup();
                bail!("command {c:?} failed: {}", console::strerror(r.errno));
            }
        }
        for t in d.cfg.taps.clone() {
            if let Err(e) = d.add_tap(&t) {
                d.cleanup();
                return Err(e);
            }
        }
        for (p, port) in d.cfg.streams.clone() {
            if let Err(e) = d.add_stream_listener(&p, port) {
                d.cleanup();
                return Err(e);
            }
        }
        if d.cfg.port_streams {
            if let Err(e) = d.add_port_streams() {
                d.cleanup();
                return Err(e);
            }
        }
        for (addr, port) in d.cfg.stream_tcps.clone() {
            if let Err(e) = d.add_tcp_stream_listener(addr, port) {
                d.cleanup();
                return Err(e);
            }
        }
        for (path, port) in d.cfg.stream_connects.clone() {
            d.connectors.push(Connector {
                path,
                port,
                ep: None,
                last_try: None,
            });
        }
        for (p, port) in d.cfg.dgrams.clone() {
            if let Err(e) = d.add_dgram(&p, port) {
                d.cleanup();
                return Err(e);
            }
        }
        for v in d.cfg.vxlans.clone() {
            if let Err(e) = d.add_vxlan(&v) {
                d.cleanup();
                return Err(e);
            }
        }
        Ok(d)
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The clock for switching decisions, read once per wake-up rather than once per frame
    /// (MAC ageing works in milliseconds; a batch takes microseconds).
    fn tick(&mut self) {
        self.batch_now_ms = self.now_ms();
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn new_slot(&mut self, c: Conn) -> Token {
        let i = match self.conns.iter().position(|c| c.is_none()) {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        self.conns[i] = Some(c);
        Token(FIRST_CONN + i)
    }

    fn new_ep(&mut self, ep: Endpoint) -> usize {
        let i = match self.eps.iter().position(|e| e.is_none()) {
            Some(i) => i,
            None => {
                self.eps.push(None);
                self.eps.len() - 1
            }
        };
        let port = ep.port as usize;
        if self.port_eps.len() <= port {
            self.port_eps.resize(port + 1, Vec::new());
        }
        self.port_eps[port].push(i);
        self.eps[i] = Some(ep);
        i
    }

    fn add_tap(&mut self, name: &str) -> Result<()> {
        let f = open_tap(name)?;
        let id = f.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "tuntap".into(),
            descr: name.to_string(),
        };
        let port = self
            .sw
            .alloc(PortRequest::Any, Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("tap {name}: {e}"))?;
        let fd = f.as_raw_fd();
        let tok = self.new_slot(Conn::Data { ep: usize::MAX });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        let ep = self.new_ep(Endpoint {
            id,
            port,
            sink: Sink::Tap(f),
            data_tok: tok,
            ctl_tok: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            paused_ingress: Vec::new(),
            sock_path: None,
        });
        self.conns[tok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        emit(self.log.syslog, &format!("tap {name} on port {port}"));
        Ok(())
    }

    fn bind_path_checked(path: &Path) -> Result<()> {
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("{} is in use by another process", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("remove stale {}", path.display()))?;
        }
        Ok(())
    }

    /// `--port-streams`: one stream listener per port, so a QEMU guest can attach to port N
    /// with `-netdev stream,server=off,addr.type=unix,addr.path=DIR.streams/N` instead of
    /// `-netdev vde`: a stream carries many frames per syscall (docs/benchmarks.md: a small
    /// fraction of the switch's CPU per frame on the VDE datagram path).
    fn add_port_streams(&mut self) -> Result<()> {
        let dir = port_streams_dir(&self.cfg.sock_dir);
        match std::fs::create_dir(&dir) {
            Ok(()) => self.created_streams_dir = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
        // The same mode as the switch directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(self.cfg.dir_mode()))
            .with_context(|| format!("chmod {}", dir.display()))?;
        chown_group(&dir, None, self.cfg.group)?;
        for p in 1..=self.cfg.numports {
            self.add_stream_listener(&dir.join(p.to_string()), Some(p))?;
        }
        Ok(())
    }

    fn add_stream_listener(&mut self, path: &Path, port: Option<u16>) -> Result<()> {
        Self::bind_path_checked(path)?;
        let l = std::os::unix::net::UnixListener::bind(path)
            .with_context(|| format!("bind --stream {}", path.display()))?;
        l.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.cfg.mode))?;
        chown_group(path, None, self.cfg.group)?;
        let fd = l.as_raw_fd();
        let tok = self.new_slot(Conn::StreamListener {
            l: Listener::Unix(l),
            port,
            path: path.to_path_buf(),
        });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        Ok(())
    }

    fn add_tcp_stream_listener(&mut self, addr: SocketAddr, port: Option<u16>) -> Result<()> {
        let l = std::net::TcpListener::bind(addr)
            .with_context(|| format!("bind --stream-tcp {addr}"))?;
        l.set_nonblocking(true)?;
        let fd = l.as_raw_fd();
        let tok = self.new_slot(Conn::StreamListener {
            l: Listener::Tcp(l),
            port,
            path: PathBuf::from(addr.to_string()),
        });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        Ok(())
    }

    fn accept_stream(&mut self, tok: Token) {
        loop {
            let Some(Some(Conn::StreamListener { l, port, path })) =
                self.conns.get(tok.0 - FIRST_CONN)
            else {
                return;
            };
            let (port, path) = (*port, path.clone());
            let s = match l.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log.log("accept", &e.to_string());
                    return;
                }
            };
            self.add_stream_peer(s, port, format!("stream peer on {}", path.display()));
        }
    }

    /// Make a connected stream socket (accepted, or connected to a `server=on` QEMU) an
    /// endpoint. Returns the endpoint index.
    fn add_stream_peer(&mut self, s: File, port: Option<u16>, descr: String) -> Option<usize> {
        set_nonblocking(s.as_raw_fd()).ok()?;
        let id = s.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "stream".into(),
            descr: descr.clone(),
        };
        let req = port
            .map(|p| PortRequest::Port(p as u32))
            .unwrap_or(PortRequest::Any);
        let p = match self.sw.alloc(req, Some(0), &[], info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.refused_requests += 1;
                self.log.log("stream", &format!("refused {descr}: {e}"));
                return None; // dropping s closes it: QEMU sees the disconnect
            }
        };
        let fd = s.as_raw_fd();
        let dtok = self.new_slot(Conn::Data { ep: usize::MAX });
        if self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), dtok, Interest::READABLE)
            .is_err()
        {
            self.conns[dtok.0 - FIRST_CONN] = None;
            self.sw.release(p, id);
            return None;
        }
        let ep = self.new_ep(Endpoint {
            id,
            port: p,
            sink: Sink::Stream { s, dec: Vec::new() },
            data_tok: dtok,
            ctl_tok: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            paused_ingress: Vec::new(),
            sock_path: None,
        });
        self.conns[dtok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        self.ep_added(p, id);
        Some(ep)
    }

    /// `--stream-connect`: (re)connect to QEMU `server=on` stream sockets that are down.
    fn reconnect_streams(&mut self) {
        for k in 0..self.connectors.len() {
            let c = &self.connectors[k];
            if c.ep.is_some()
                || c.last_try
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
            {
                continue;
            }
            let (path, port) = (c.path.clone(), c.port);
            self.connectors[k].last_try = Some(Instant::now());
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&path) {
                let s = File::from(OwnedFd::from(s));
                let ep = self.add_stream_peer(s, port, format!("stream server {}", path.display()));
                self.connectors[k].ep = ep;
            }
        }
    }

    fn add_dgram(&mut self, path: &Path, port: Option<u16>) -> Result<()> {
        Self::bind_path_checked(path)?;
        let s = std::os::unix::net::UnixDatagram::bind(path)
            .with_context(|| format!("bind --dgram {}", path.display()))?;
        s.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.cfg.mode))?;
        chown_group(path, None, self.cfg.group)?;
        let id = s.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "dgram".into(),
            descr: format!("dgram peer on {}", path.display()),
        };
        let req = port
            .map(|p| PortRequest::Port(p as u32))
            .unwrap_or(PortRequest::Any);
        let p = self
            .sw
            .alloc(req, Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("--dgram {}: {e}", path.display()))?;
        let fd = s.as_raw_fd();
        let tok = self.new_slot(Conn::Data { ep: usize::MAX });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        let ep = self.new_ep(Endpoint {
            id,
            port: p,
            sink: Sink::DgramTo { s, peer: None },
            data_tok: tok,
            ctl_tok: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            paused_ingress: Vec::new(),
            sock_path: Some(path.to_path_buf()),
        });
        self.conns[tok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        Ok(())
    }

    fn add_vxlan(&mut self, v: &VxlanCfg) -> Result<()> {
        let sock =
            UdpSocket::bind(v.local).with_context(|| format!("bind VXLAN socket {}", v.local))?;
        sock.set_nonblocking(true)?;
        let id = sock.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "vxlan".into(),
            descr: format!("vni {} {} -> {}", v.vni, v.local, v.remote),
        };
        let req = v
            .port
            .map(|p| PortRequest::Port(p as u32))
            .unwrap_or(PortRequest::Any);
        let port = self
            .sw
            .alloc(req, Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("vxlan port: {e}"))?;
        let fd = sock.as_raw_fd();
        let tok = self.new_slot(Conn::Data { ep: usize::MAX });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        let ep = self.new_ep(Endpoint {
            id,
            port,
            sink: Sink::Vxlan {
                sock,
                remote: v.remote,
                vni: v.vni,
            },
            data_tok: tok,
            ctl_tok: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            paused_ingress: Vec::new(),
            sock_path: None,
        });
        self.conns[tok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        Ok(())
    }

    /// Fork into the background. Unlike daemon(3), the parent waits until the child says it
    /// is ready (sockets bound, pidfile written), so `vswitch -d` returning 0 means "connect
    /// now", and a failure after the fork still gives a non-zero exit status.
    fn daemonize(&mut self) -> Result<()> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("pipe2");
        }
        // SAFETY: single-threaded here; the child continues with a copy of our state.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error()).context("fork");
        }
        if pid > 0 {
            // SAFETY: parent: close the write end, wait for one byte or EOF, then exit
            // without running destructors (the sockets now belong to the child).
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                let n = libc::read(fds[0], &mut b as *mut u8 as *mut libc::c_void, 1);
                libc::_exit(if n == 1 && b == b'k' { 0 } else { 1 });
            }
        }
        // SAFETY: child: new session, own the write end.
        unsafe {
            libc::close(fds[0]);
            libc::setsid();
        }
        // SAFETY: fds[1] is the pipe write end, owned from here on.
        self.ready = Some(unsafe { OwnedFd::from_raw_fd(fds[1]) });
        // SAFETY: openlog with a static identifier.
        unsafe { libc::openlog(c"vswitch".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
        self.log.syslog = true;
        Ok(())
    }

    /// Child side of [`Self::daemonize`]: tell the parent we are up, detach stdio.
    fn signal_ready(&mut self) {
        if let Some(fd) = self.ready.take() {
            // SAFETY: plain fd operations on fds we own / the standard descriptors.
            unsafe {
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if devnull >= 0 {
                    for std_fd in 0..3 {
                        libc::dup2(devnull, std_fd);
                    }
                    if devnull > 2 {
                        libc::close(devnull);
                    }
                }
                libc::write(fd.as_raw_fd(), b"k".as_ptr() as *const libc::c_void, 1);
            }
            let _ = std::env::set_current_dir("/");
        }
    }

    fn write_pidfile(&mut self) -> Result<()> {
        if let Some(p) = &self.cfg.pidfile {
            // Written to a temp file and linked into place: readers never see it empty, and
            // link() fails like O_EXCL when the pidfile already exists.
            let tmp = p.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, format!("{}\n", std::process::id()))
                .with_context(|| format!("write {}", tmp.display()))?;
            let r = std::fs::hard_link(&tmp, p);
            let _ = std::fs::remove_file(&tmp);
            r.with_context(|| format!("create pidfile {} (remove it if stale)", p.display()))?;
            self.wrote_pidfile = true;
        }
        Ok(())
    }

    fn setup_signals(&mut self) -> Result<()> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("pipe2");
        }
        SIG_FD.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        // SAFETY: installing plain handlers; on_signal only calls write(2).
        unsafe {
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::signal(s, on_signal as *const () as libc::sighandler_t);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        // SAFETY: fds[0] is a fresh pipe read end owned from here on.
        let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        self.poll.registry().register(
            &mut SourceFd(&r.as_raw_fd()),
            T_SIGNAL,
            Interest::READABLE,
        )?;
        self.sig_read = Some(r);
        Ok(())
    }

    /// Main loop.
    pub fn serve(&mut self) -> Result<()> {
        if self.cfg.daemonize {
            self.daemonize()?;
            // The epoll instance was created before fork: a fresh one avoids sharing.
            self.poll = Poll::new()?;
            let mut fds: Vec<(RawFd, Token)> = self
                .eps
                .iter()
                .flatten()
                .map(|e| (e.sink.fd(), e.data_tok))
                .collect();
            for (i, c) in self.conns.iter().enumerate() {
                if let Some(Conn::StreamListener { l, .. }) = c {
                    fds.push((l.fd(), Token(FIRST_CONN + i)));
                }
            }
            for (fd, t) in fds {
                self.poll
                    .registry()
                    .register(&mut SourceFd(&fd), t, Interest::READABLE)?;
            }
        }
        self.write_pidfile()?;
        self.setup_signals()?;
        self.signal_ready();
        self.poll
            .registry()
            .register(&mut self.ctl, T_CTL, Interest::READABLE)?;
        if let Some(m) = self.mgmt.as_mut() {
            self.poll
                .registry()
                .register(m, T_MGMT, Interest::READABLE)?;
        }
        if self.cfg.stdin_console && !self.cfg.daemonize {
            let fd: RawFd = 0;
            if set_nonblocking(fd).is_ok()
                && self
                    .poll
                    .registry()
                    .register(&mut SourceFd(&fd), T_STDIN, Interest::READABLE)
                    .is_ok()
            {
                self.stdin_on = true;
                let _ = write!(io::stdout(), "{}{}", console::banner(), console::PROMPT);
                let _ = io::stdout().flush();
            }
        }
        self.reconnect_streams();
        let mut events = Events::with_capacity(256);
        while !self.shutdown {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            self.tick();
            for ev in events.iter() {
                self.handle(
                    ev.token(),
                    ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    ev.is_writable(),
                );
                self.flush_dirty();
            }
            let again = std::mem::take(&mut self.again);
            for t in again {
                self.handle(t, true, false);
                self.flush_dirty();
            }
            self.run_timers();
            self.flush_dirty();
        }
        self.cleanup();
        Ok(())
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = self.now_us();
        let mut t = if self.paused.is_empty() {
            1_000_000u64
        } else {
            5_000
        };
        if self.connectors.iter().any(|c| c.ep.is_none()) {
            t = t.min(500_000);
        }
        for q in self.impair_in.values().chain(self.impair_out.values()) {
            if let Some(d) = q.next_due() {
                t = t.min(d.saturating_sub(now));
            }
        }
        Some(Duration::from_micros(t))
    }

    fn run_timers(&mut self) {
        let now_ms = self.now_ms();
        self.sw.table.gc(now_ms);
        if !self.connectors.is_empty() {
            self.reconnect_streams();
        }
        if !self.paused.is_empty() {
            let expired: Vec<Token> = self
                .paused
                .iter()
                .filter(|(_, t)| t.elapsed() >= MAX_PAUSE)
                .map(|(k, _)| *k)
                .collect();
            for t in expired {
                self.paused.remove(&t);
                self.again.push(t);
            }
        }
        if self.impair_in.is_empty() && self.impair_out.is_empty() {
            return;
        }
        let now = self.now_us();
        let ports: Vec<PortId> = self.impair_in.keys().copied().collect();
        for p in ports {
            while let Some(f) = self.impair_in.get_mut(&p).and_then(|q| q.pop_ready(now)) {
                self.switch_frame(p, &f);
            }
        }
        let ports: Vec<PortId> = self.impair_out.keys().copied().collect();
        for p in ports {
            while let Some(f) = self.impair_out.get_mut(&p).and_then(|q| q.pop_ready(now)) {
                self.send_to_port(p, &f);
            }
        }
    }

    fn handle(&mut self, tok: Token, readable: bool, writable: bool) {
        match tok {
            T_CTL => self.accept_ctl(),
            T_MGMT => self.accept_mgmt(),
            T_STDIN => self.read_stdin(),
            T_SIGNAL => {
                let mut b = [0u8; 16];
                if let Some(fd) = &self.sig_read {
                    // SAFETY: reading into a local buffer from our pipe.
                    unsafe {
                        libc::read(fd.as_raw_fd(), b.as_mut_ptr() as *mut libc::c_void, b.len())
                    };
                }
                self.shutdown = true;
            }
            Token(t) if t >= FIRST_CONN => {
                let i = t - FIRST_CONN;
                match self.conns.get(i) {
                    Some(Some(Conn::CtlPending { .. })) => self.ctl_pending(tok),
                    Some(Some(Conn::Ctl { ep, .. })) => {
                        let ep = *ep;
                        self.ctl_readable(tok, ep)
                    }
                    Some(Some(Conn::Data { ep })) => {
                        let ep = *ep;
                        if writable {
                            self.flush_ep(ep);
                        }
                        if readable {
                            self.read_data(tok, ep);
                        }
                    }
                    Some(Some(Conn::Mgmt { .. })) => self.mgmt_event(tok, readable, writable),
                    Some(Some(Conn::StreamListener { .. })) => self.accept_stream(tok),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn accept_ctl(&mut self) {
        loop {
            match self.ctl.accept() {
                Ok((mut s, _)) => {
                    let tok = Token(
                        FIRST_CONN
                            + self
                                .conns
                                .iter()
                                .position(|c| c.is_none())
                                .unwrap_or(self.conns.len()),
                    );
                    if self
                        .poll
                        .registry()
                        .register(&mut s, tok, Interest::READABLE)
                        .is_ok()
                    {
                        let t2 = self.new_slot(Conn::CtlPending { s, buf: Vec::new() });
                        debug_assert_eq!(t2, tok);
                        // Real clients have usually sent their request already.
                        self.ctl_pending(tok);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log.log("accept", &e.to_string());
                    return;
                }
            }
        }
    }

    fn close_conn(&mut self, tok: Token) {
        if let Some(slot) = self.conns.get_mut(tok.0 - FIRST_CONN) {
            if let Some(c) = slot.take() {
                match c {
                    Conn::CtlPending { mut s, .. }
                    | Conn::Ctl { mut s, .. }
                    | Conn::Mgmt { mut s, .. } => {
                        let _ = self.poll.registry().deregister(&mut s);
                    }
                    Conn::Data { .. } => {}
                    Conn::StreamListener { l, path, .. } => {
                        let _ = self.poll.registry().deregister(&mut SourceFd(&l.fd()));
                        if matches!(l, Listener::Unix(_)) {
                            let _ = std::fs::remove_file(path);
                        }
                    }
                }
            }
        }
    }

    fn ctl_pending(&mut self, tok: Token) {
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::CtlPending { s, buf })) = self.conns.get_mut(i) else {
            return;
        };
        let mut tmp = [0u8; REQUEST_MAX_LEN];
        let mut eof = false;
        loop {
            let room = REQUEST_MAX_LEN - buf.len();
            if room == 0 {
                break;
            }
            match s.read(&mut tmp[..room]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if buf.len() < REQUEST_HEADER_LEN {
            if eof {
                if !buf.is_empty() {
                    self.stats.bad_handshakes += 1;
                    self.log.log(
                        "handshake",
                        &format!("truncated request ({} bytes)", buf.len()),
                    );
                }
                self.close_conn(tok);
            }
            return;
        }
        let req = std::mem::take(buf);
        match RequestRepr::parse(&Request::new_unchecked(&req[..])) {
            Err(e) => {
                self.stats.bad_handshakes += 1;
                self.log.log("handshake", &format!("rejected request: {e}"));
                self.close_conn(tok);
            }
            Ok(r) => {
                if let Err(e) = self.new_endpoint(tok, r) {
                    self.stats.refused_requests += 1;
                    self.log.log("handshake", &format!("refused: {e:#}"));
                    self.close_conn(tok);
                }
            }
        }
    }

    fn new_endpoint(&mut self, tok: Token, r: RequestRepr) -> Result<()> {
        if r.path.is_empty() {
            bail!("client sent an empty socket path");
        }
        let uid = client_uid(&r.path).with_context(|| {
            format!(
                "client socket {} not accessible",
                String::from_utf8_lossy(&r.path)
            )
        })?;
        let gids = user_gids(uid);
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::CtlPending { s, .. })) = self.conns.get(i) else {
            bail!("connection vanished")
        };
        let id = s.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "unix prog".into(),
            descr: String::from_utf8_lossy(&r.description)
                .trim_end_matches('\0')
                .to_string(),
        };
        let port = self
            .sw
            .alloc(r.port, Some(uid), &gids, info)
            .map_err(|e| anyhow::anyhow!("{e} ({:?})", r.port))?;
        let res = (|| -> Result<(UnixDatagram, PathBuf)> {
            let path = self.cfg.sock_dir.join(format!("{port:03}.{id}"));
            let _ = std::fs::remove_file(&path);
            let sock =
                UnixDatagram::bind(&path).with_context(|| format!("bind {}", path.display()))?;
            let client = Path::new(std::ffi::OsStr::from_bytes(&r.path));
            // Connect before replying: vdeplug4 clients unlink their path right after the reply.
            if let Err(e) = sock.connect(client) {
                let _ = std::fs::remove_file(&path);
                return Err(e).with_context(|| format!("connect to client {}", client.display()));
            }
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(self.cfg.mode));
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                let _ = chown_group(&path, Some(uid), self.cfg.group);
            }
            // Bigger send buffer: more room in the kernel before our own queue is needed.
            set_sndbuf(sock.as_raw_fd(), 1 << 20);
            Ok((sock, path))
        })();
        let (mut sock, path) = match res {
            Ok(x) => x,
            Err(e) => {
                self.sw.release(port, id);
                return Err(e);
            }
        };
        let reply = wire::sockaddr_reply(path.as_os_str().as_bytes());
        let Some(Some(Conn::CtlPending { s, .. })) = self.conns.get_mut(i) else {
            bail!("connection vanished")
        };
        if let Err(e) = s.write_all(&reply) {
            self.sw.release(port, id);
            let _ = std::fs::remove_file(&path);
            return Err(e).context("write reply");
        }
        // Reserve the data slot while slot i is still occupied, so tokens never collide.
        let dtok = self.new_slot(Conn::Data { ep: usize::MAX });
        let Some(Conn::CtlPending { s, .. }) = self.conns[i].take() else {
            unreachable!()
        };
        self.poll
            .registry()
            .register(&mut sock, dtok, Interest::READABLE)?;
        let ep = self.new_ep(Endpoint {
            id,
            port,
            sink: Sink::Dgram(sock),
            data_tok: dtok,
            ctl_tok: Some(tok),
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            paused_ingress: Vec::new(),
            sock_path: Some(path),
        });
        self.conns[i] = Some(Conn::Ctl { s, ep });
        self.conns[dtok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        self.ep_added(port, id);
        Ok(())
    }

    fn ctl_readable(&mut self, tok: Token, ep: usize) {
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::Ctl { s, .. })) = self.conns.get_mut(i) else {
            return;
        };
        let mut tmp = [0u8; 256];
        loop {
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(_) => continue, // clients never send more; ignore
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.close_endpoint(ep);
    }

    fn close_endpoint(&mut self, ep: usize) {
        let Some(e) = self.eps.get_mut(ep).and_then(|e| e.take()) else {
            return;
        };
        if let Some(t) = e.ctl_tok {
            self.close_conn(t);
        }
        let _ = self.poll.registry().deregister(&mut SourceFd(&e.sink.fd()));
        if let Sink::Stream { dec, .. } = &e.sink {
            if !dec.is_empty() {
                self.stats.died_mid_frame += 1;
                self.log.log(
                    "stream",
                    &format!(
                        "peer on port {} died mid-frame ({} bytes pending)",
                        e.port,
                        dec.len()
                    ),
                );
            }
        }
        if let Some(slot) = self.conns.get_mut(e.data_tok.0 - FIRST_CONN) {
            *slot = None;
        }
        self.again.retain(|t| *t != e.data_tok);
        self.paused.remove(&e.data_tok);
        for t in e.paused_ingress {
            self.paused.remove(&t);
            self.again.push(t);
        }
        if let Some(p) = e.sock_path {
            let _ = std::fs::remove_file(p);
        }
        if let Some(v) = self.port_eps.get_mut(e.port as usize) {
            v.retain(|&x| x != ep);
        }
        self.sw.release(e.port, e.id);
        for c in self.connectors.iter_mut() {
            if c.ep == Some(ep) {
                c.ep = None;
            }
        }
        self.debug_event("port/ep/-", &format!("Port {:02} FD {:2}", e.port, e.id));
        if !self.sw.port(e.port).is_some_and(|p| p.active()) {
            self.debug_event("port/-", &format!("{:02}", e.port));
        }
    }

    fn read_data(&mut self, tok: Token, ep: usize) {
        if self.paused.contains_key(&tok) {
            return;
        }
        match self.eps.get(ep) {
            Some(Some(Endpoint {
                sink: Sink::Dgram(_),
                ..
            })) => return self.read_dgram_batch(tok, ep),
            Some(Some(Endpoint {
                sink: Sink::Stream { .. },
                ..
            })) => return self.read_stream(tok, ep),
            _ => {}
        }
        self.cur_in = Some(tok);
        let mut buf = std::mem::take(&mut self.buf);
        let mut n_read = 0;
        let mut close = false;
        loop {
            if n_read >= READ_BUDGET {
                self.again.push(tok);
                break;
            }
            let Some(e) = self.eps.get(ep).and_then(|e| e.as_ref()) else {
                break;
            };
            let port = e.port;
            let res = match &e.sink {
                Sink::Dgram(s) => s.recv(&mut buf),
                Sink::Tap(f) => (&*f).read(&mut buf),
                Sink::Stream { .. } => break,
                Sink::DgramTo { s, .. } => match s.recv_from(&mut buf) {
                    Ok((n, addr)) => {
                        let from = addr.as_pathname().map(Path::to_path_buf);
                        if let Some(Some(Endpoint {
                            sink: Sink::DgramTo { peer, .. },
                            ..
                        })) = self.eps.get_mut(ep)
                        {
                            if from.is_some() && *peer != from {
                                *peer = from;
                            }
                        }
                        Ok(n)
                    }
                    Err(e) => Err(e),
                },
                Sink::Vxlan { sock, vni, .. } => match sock.recv_from(&mut buf) {
                    Ok((n, _)) => match wire::vxlan_parse(&buf[..n]) {
                        Ok((v, inner)) if v == *vni => {
                            let len = inner.len();
                            buf.copy_within(
                                wire::VXLAN_HEADER_LEN..wire::VXLAN_HEADER_LEN + len,
                                0,
                            );
                            Ok(len)
                        }
                        _ => {
                            self.log
                                .log("vxlan", "datagram with bad header or foreign VNI ignored");
                            n_read += 1;
                            continue;
                        }
                    },
                    Err(e) => Err(e),
                },
            };
            match res {
                Ok(0) => {
                    // Legacy libvdeplug sends an empty datagram on close; taps never do.
                    self.stats.zero_length_datagrams += 1;
                    n_read += 1;
                }
                Ok(n) => {
                    n_read += 1;
                    if n > MAX_FRAME_LEN {
                        self.sw.count_drop(port, DropReason::Oversize);
                        self.log.log(
                            "frame",
                            &format!("oversized frame ({n} bytes) on port {port}"),
                        );
                        continue;
                    }
                    self.ingress(port, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.log.log("recv", &format!("port {port}: {e}"));
                    // A tap that went away (EIO/EBADFD) cannot recover: close it.
                    close = !matches!(e.raw_os_error(), Some(libc::ECONNREFUSED));
                    break;
                }
            }
        }
        self.buf = buf;
        self.cur_in = None;
        if close {
            self.close_endpoint(ep);
        }
    }

    /// QEMU stream peer: reassemble 4-byte length-prefixed frames across reads. Frames are
    /// switched straight out of the reassembly buffer (no copy or allocation per frame).
    fn read_stream(&mut self, tok: Token, ep: usize) {
        self.cur_in = Some(tok);
        let mut tmp = std::mem::take(&mut self.buf);
        let mut close = false;
        let mut budget = 0;
        while let Some(Some(Endpoint {
            sink: Sink::Stream { s, dec },
            port,
            ..
        })) = self.eps.get_mut(ep)
        {
            let port = *port;
            // What one read brings is switched as a whole: keep it within a quarter of an
            // egress queue so back-pressure still holds with a small --egress-queue-kb.
            let cap = (self.cfg.egress_queue_bytes / 4).clamp(MAX_FRAME_LEN + 64, tmp.len());
            match (&*s).read(&mut tmp[..cap]) {
                Ok(0) => {
                    close = true;
                    break;
                }
                Ok(n) => dec.extend_from_slice(&tmp[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    close = true;
                    break;
                }
            }
            let mut d = std::mem::take(dec);
            let mut frames = wire::QemuFrames::new(&d);
            for f in frames.by_ref() {
                self.ingress(port, f);
            }
            let (off, poisoned) = (frames.consumed(), frames.poisoned());
            d.drain(..off);
            if poisoned {
                // A bad length poisons the rest of the stream: drop the peer.
                d.clear();
                self.stats.bad_stream_lengths += 1;
                self.log.log(
                    "stream",
                    &format!("port {port}: impossible frame length; closing peer"),
                );
                close = true;
            }
            if let Some(Some(Endpoint {
                sink: Sink::Stream { dec, .. },
                ..
            })) = self.eps.get_mut(ep)
            {
                *dec = d;
            }
            budget += 1;
            if close || self.paused.contains_key(&tok) {
                break;
            }
            if budget >= READ_BUDGET {
                self.again.push(tok);
                break;
            }
        }
        self.buf = tmp;
        self.cur_in = None;
        if close {
            self.close_endpoint(ep);
        }
    }

    /// Drain a VDE data socket with recvmmsg: one syscall per batch instead of one per
    /// frame plus a final EAGAIN.
    fn read_dgram_batch(&mut self, tok: Token, ep: usize) {
        let mut bufs = std::mem::take(&mut self.mbufs);
        self.cur_in = Some(tok);
        let mut total = 0;
        while let Some(Some(Endpoint {
            sink: Sink::Dgram(sock),
            port,
            ..
        })) = self.eps.get(ep)
        {
            let (fd, port) = (sock.as_raw_fd(), *port);
            // Stack arrays: no allocation on the hot path.
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; RECV_BATCH];
            // SAFETY: an all-zero mmsghdr is a valid empty header.
            let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
            for (i, b) in bufs.iter_mut().enumerate() {
                iov[i] = libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                };
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: msgs/iov/bufs are valid for RECV_BATCH entries during the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    msgs.len() as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        // ECONNREFUSED etc.: the client is going away; its ctl EOF closes it.
                        self.log.log("recv", &format!("port {port}: {err}"));
                        break;
                    }
                }
            }
            let n = n as usize;
            for i in 0..n {
                let len = msgs[i].msg_len as usize;
                if len == 0 {
                    self.stats.zero_length_datagrams += 1;
                } else if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    self.sw.count_drop(port, DropReason::Oversize);
                    self.log
                        .log("frame", &format!("oversized datagram on port {port}"));
                } else {
                    self.ingress(port, &bufs[i][..len]);
                }
            }
            total += n;
            if n < RECV_BATCH {
                break;
            }
            if total >= READ_BUDGET || self.paused.contains_key(&tok) {
                self.again.push(tok);
                break;
            }
        }
        self.cur_in = None;
        self.mbufs = bufs;
    }

    fn capture(&mut self, port: PortId, frame: &[u8]) {
        if let Some(c) = self.captures.get_mut(&port) {
            #[allow(clippy::disallowed_methods)] // pcap records carry wall-clock timestamps
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
            if crate::pcap::write_record(&mut c.w, ts, frame).is_err() {
                self.log.log(
                    "capture",
                    &format!("write to {} failed; capture stopped", c.path),
                );
                self.captures.remove(&port);
            }
        }
    }

    /// A frame arrived from a port: ingress impairment, then switching.
    fn ingress(&mut self, port: PortId, frame: &[u8]) {
        if let Some(q) = self.impair_in.get_mut(&port) {
            let now = self.start.elapsed().as_micros() as u64;
            if let Err(r) = q.push(frame, now) {
                self.sw.count_drop(port, r);
            }
            return;
        }
        self.switch_frame(port, frame);
    }

    fn switch_frame(&mut self, port: PortId, frame: &[u8]) {
        if !self.captures.is_empty() {
            self.capture(port, frame);
        }
        let now = self.batch_now_ms;
        let mut egress = std::mem::take(&mut self.egress);
        match self.sw.forward(port, frame, now, &mut egress) {
            Ok(learned) => {
                if self.debug_any && learned == Some(crate::core::Learned::New) {
                    let src = wire::EthernetFrame::new_unchecked(frame).src();
                    self.debug_event("hash/+", &format!("{} Port {port:02}", wire::fmt_mac(&src)));
                }
                if let Some(crate::core::Learned::Moved { from }) = learned {
                    let src = wire::EthernetFrame::new_unchecked(frame).src();
                    self.log.log(
                        "mac",
                        &format!(
                            "MAC {} moved from port {from} to port {port}",
                            wire::fmt_mac(&src)
                        ),
                    );
                }
                let mut tagged: Option<Vec<u8>> = None;
                for e in egress.iter() {
                    let bytes: &[u8] = match e.action {
                        TagAction::Unchanged => frame,
                        TagAction::Strip => {
                            let t = tagged.get_or_insert_with(|| {
                                let mut v = Vec::new();
                                wire::strip_tag(frame, &mut v);
                                v
                            });
                            &t[..]
                        }
                        TagAction::Insert(vid) => {
                            let t = tagged.get_or_insert_with(|| {
                                let mut v = Vec::new();
                                wire::insert_tag(frame, vid, &mut v);
                                v
                            });
                            &t[..]
                        }
                    };
                    self.deliver(e.port, bytes);
                }
            }
            Err(r) => {
                if matches!(
                    r,
                    DropReason::Runt | DropReason::BadTag | DropReason::Oversize
                ) {
                    self.log.log(
                        "frame",
                        &format!(
                            "dropped {} frame ({} bytes) from port {port}",
                            r.name(),
                            frame.len()
                        ),
                    );
                }
            }
        }
        self.egress = egress;
    }

    fn deliver(&mut self, port: PortId, frame: &[u8]) {
        if let Some(q) = self.impair_out.get_mut(&port) {
            let now = self.start.elapsed().as_micros() as u64;
            if let Err(r) = q.push(frame, now) {
                self.sw.count_drop(port, r);
            }
            return;
        }
        self.send_to_port(port, frame);
    }

    fn send_to_port(&mut self, port: PortId, frame: &[u8]) {
        self.sw.count_out(port, frame.len());
        if !self.captures.is_empty() {
            self.capture(port, frame);
        }
        let n = self.port_eps.get(port as usize).map_or(0, |v| v.len());
        for k in 0..n {
            let ep = self.port_eps[port as usize][k];
            if let Some(r) = self.send_ep(ep, frame) {
                self.sw.count_drop(port, r);
            }
        }
    }

    /// Queue a frame for an endpoint; it is written by [`Self::flush_dirty`] at the end of
    /// the current batch, so frames that arrived together leave together (one sendmmsg).
    /// Returns a drop reason when the frame is lost.
    fn send_ep(&mut self, ep: usize, frame: &[u8]) -> Option<DropReason> {
        let limit = self.cfg.egress_queue_bytes;
        let e = self.eps.get_mut(ep)?.as_mut()?;
        let len = e.sink.encoded_len(frame.len());
        if e.queued_bytes + len > limit {
            return Some(DropReason::QueueFull);
        }
        e.queued_bytes += len;
        // Recycled buffers: no allocation per frame in steady state.
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        e.sink.encode_into(frame, &mut v);
        e.queue.push_back(v);
        if !e.dirty {
            e.dirty = true;
            self.dirty.push(ep);
        }
        if e.queued_bytes > limit / 2 {
            if let Some(t) = self.cur_in {
                if !e.paused_ingress.contains(&t) {
                    e.paused_ingress.push(t);
                }
                self.paused.entry(t).or_insert_with(Instant::now);
            }
        }
        None
    }

    /// Write every endpoint that got frames in this batch.
    fn flush_dirty(&mut self) {
        while let Some(ep) = self.dirty.pop() {
            if let Some(Some(e)) = self.eps.get_mut(ep) {
                e.dirty = false;
            }
            self.flush_ep(ep);
        }
    }

    /// Write as much of the endpoint's queue as the receiver takes; arm EPOLLOUT for the rest.
    fn flush_ep(&mut self, ep: usize) {
        let Some(e) = self.eps.get_mut(ep).and_then(|e| e.as_mut()) else {
            return;
        };
        let mut errors = 0u64;
        let mut blocked = false;
        while let Some(head) = e.queue.front() {
            let res = if e.queue.len() > 1 {
                e.sink.write_batch(&e.queue)
            } else {
                e.sink.write(head)
            };
            match res {
                Ok(n) => take_written(&mut e.queue, &mut e.queued_bytes, &mut self.pool, n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // The peer is gone (its ctl or read side closes it): drop the head frame.
                    errors += 1;
                    if errors <= 1 {
                        self.log.log("send", &format!("port {}: {err}", e.port));
                    }
                    let len = e.queue.front().map_or(0, Vec::len);
                    take_written(&mut e.queue, &mut e.queued_bytes, &mut self.pool, len);
                }
            }
        }
        if !e.paused_ingress.is_empty() && e.queued_bytes <= self.cfg.egress_queue_bytes / 4 {
            for t in e.paused_ingress.drain(..) {
                self.paused.remove(&t);
                self.again.push(t);
            }
        }
        if blocked != e.writable_armed {
            e.writable_armed = blocked;
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ =
                self.poll
                    .registry()
                    .reregister(&mut SourceFd(&e.sink.fd()), e.data_tok, interest);
        }
        let port = e.port;
        for _ in 0..errors {
            self.sw.count_drop(port, DropReason::SendError);
        }
    }

    fn accept_mgmt(&mut self) {
        loop {
            let Some(l) = self.mgmt.as_ref() else { return };
            match l.accept() {
                Ok((mut s, _)) => {
                    self.stats.mgmt_sessions += 1;
                    let tok = Token(
                        FIRST_CONN
                            + self
                                .conns
                                .iter()
                                .position(|c| c.is_none())
                                .unwrap_or(self.conns.len()),
                    );
                    if self
                        .poll
                        .registry()
                        .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        let out = format!("{}{}", console::banner(), console::PROMPT).into_bytes();
                        self.new_slot(Conn::Mgmt {
                            s,
                            inbuf: Vec::new(),
                            out,
                            closing: false,
                            debug: Vec::new(),
                        });
                        self.mgmt_event(tok, false, true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log.log("accept", &e.to_string());
                    return;
                }
            }
        }
    }

    fn mgmt_event(&mut self, tok: Token, readable: bool, _writable: bool) {
        let i = tok.0 - FIRST_CONN;
        let mut lines = Vec::new();
        let mut eof = false;
        if readable {
            let Some(Some(Conn::Mgmt { s, inbuf, .. })) = self.conns.get_mut(i) else {
                return;
            };
            let mut tmp = [0u8; 4096];
            loop {
                match s.read(&mut tmp) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        inbuf.extend_from_slice(&tmp[..n]);
                        if inbuf.len() > 64 * 1024 {
                            // Not a console client: drop the session.
                            eof = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
            // Complete lines, then (like vde_switch's one read = one command) a trailing
            // partial line is a command too.
            while let Some(p) = inbuf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = inbuf.drain(..=p).collect();
                lines.push(String::from_utf8_lossy(&l).into_owned());
            }
            if !inbuf.is_empty() {
                lines.push(String::from_utf8_lossy(inbuf).into_owned());
                inbuf.clear();
            }
        }
        for l in lines {
            let r = self.session_line(&l, Some(i));
            let mut text = String::new();
            let mut closing = false;
            if r.errno >= 0 {
                r.render(&mut text);
            }
            for a in &r.actions {
                if matches!(a, Action::Logout | Action::Shutdown) {
                    closing = true;
                }
            }
            if closing {
                text.push_str(console::END_OF_SESSION);
            } else {
                text.push_str(console::PROMPT);
            }
            if let Some(Some(Conn::Mgmt {
                out, closing: c, ..
            })) = self.conns.get_mut(i)
            {
                out.extend_from_slice(text.as_bytes());
                *c |= closing;
            }
            if closing {
                break;
            }
        }
        let Some(Some(Conn::Mgmt {
            s, out, closing, ..
        })) = self.conns.get_mut(i)
        else {
            return;
        };
        while !out.is_empty() {
            match s.write(out) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if eof || (*closing && out.is_empty()) {
            self.close_conn(tok);
        }
    }

    fn read_stdin(&mut self) {
        let mut tmp = [0u8; 4096];
        // SAFETY: reading fd 0 into a local buffer.
        let n = unsafe { libc::read(0, tmp.as_mut_ptr() as *mut libc::c_void, tmp.len()) };
        if n == 0 {
            // vde_switch 2.3.2 exits on stdin EOF; vswitch keeps running (like --nostdin).
            let _ = self.poll.registry().deregister(&mut SourceFd(&0));
            self.stdin_on = false;
            return;
        }
        if n < 0 {
            return;
        }
        let text = String::from_utf8_lossy(&tmp[..n as usize]).into_owned();
        let mut out = String::new();
        for l in text.lines() {
            let r = self.console_line(l);
            if r.errno >= 0 {
                r.render(&mut out);
            }
            out.push_str(console::PROMPT);
        }
        let _ = io::stdout().write_all(out.as_bytes());
        let _ = io::stdout().flush();
    }

    /// Run one console line and carry out its actions.
    pub fn console_line(&mut self, line: &str) -> Reply {
        self.session_line(line, None)
    }

    /// Debug events for a new endpoint (vde_switch's port/+, port/ep/+, port/descr).
    fn ep_added(&mut self, port: PortId, id: u32) {
        if !self.debug_any {
            return;
        }
        let (first, descr) = match self.sw.port(port) {
            Some(p) => (
                p.endpoints.len() == 1,
                p.endpoints
                    .iter()
                    .find(|e| e.id == id)
                    .map(|e| e.descr.clone()),
            ),
            None => return,
        };
        if first {
            self.debug_event("port/+", &format!("{port:02}"));
        }
        self.debug_event("port/ep/+", &format!("Port {port:02} FD {id:2}"));
        if let Some(d) = descr {
            self.debug_event(
                "port/descr",
                &format!("Port {port:02} FD {id:2} -> \"{d}\""),
            );
        }
    }

    /// Write asynchronous `3TTT` debug lines to the sessions subscribed to `cat`.
    fn debug_event(&mut self, cat: &'static str, text: &str) {
        if !self.debug_any {
            return;
        }
        let line = format!("{}\n", console::debug_line(cat, text));
        let mut toks = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            if let Some(Conn::Mgmt { out, debug, .. }) = c {
                if debug.contains(&cat) {
                    out.extend_from_slice(line.as_bytes());
                    toks.push(Token(FIRST_CONN + i));
                }
            }
        }
        for t in toks {
            self.mgmt_event(t, false, true);
        }
    }

    /// Run one console line for management session `session` (None = rc file / stdin).
    fn session_line(&mut self, line: &str, session: Option<usize>) -> Reply {
        let read = |p: &str| std::fs::read_to_string(p);
        let ctx = Ctx {
            pid: std::process::id(),
            mac: self.mac,
            uptime_s: self.start.elapsed().as_secs(),
            mgmt: self.cfg.mgmt.as_ref().map(|p| p.display().to_string()),
            mgmt_mode: self.cfg.mgmt_mode,
            ctl_dir: self.cfg.sock_dir.display().to_string(),
            sock_mode: self.cfg.mode,
            read_file: &read,
            stats: vec![
                ("bad_handshakes", self.stats.bad_handshakes),
                ("refused_requests", self.stats.refused_requests),
                ("mgmt_sessions", self.stats.mgmt_sessions),
                ("zero_length_datagrams", self.stats.zero_length_datagrams),
                ("died_mid_frame", self.stats.died_mid_frame),
                ("bad_stream_lengths", self.stats.bad_stream_lengths),
            ],
            debug_on: match session.and_then(|i| self.conns.get(i)) {
                Some(Some(Conn::Mgmt { debug, .. })) => debug.clone(),
                _ => Vec::new(),
            },
            captures: self
                .captures
                .iter()
                .map(|(p, c)| (*p, c.path.clone()))
                .collect(),
        };
        let mut r = console::execute(&mut self.sw, &ctx, line);
        if self.port_eps.len() < self.sw.numports as usize + 1 {
            self.port_eps
                .resize(self.sw.numports as usize + 1, Vec::new());
        }
        for a in r.actions.clone() {
            match a {
                Action::None | Action::Logout => {}
                Action::Debug { on, cats } => {
                    if let Some(Some(Conn::Mgmt { debug, .. })) =
                        session.and_then(|i| self.conns.get_mut(i))
                    {
                        debug.retain(|c| !cats.contains(c));
                        if on {
                            debug.extend(cats);
                        }
                    }
                    self.debug_any = self
                        .conns
                        .iter()
                        .any(|c| matches!(c, Some(Conn::Mgmt { debug, .. }) if !debug.is_empty()));
                }
                Action::Shutdown => self.shutdown = true,
                Action::EpClose { port, id } => {
                    if let Some(ep) = self
                        .eps
                        .iter()
                        .position(|e| e.as_ref().is_some_and(|e| e.port == port && e.id == id))
                    {
                        self.close_endpoint(ep);
                    }
                }
                Action::Impair { port } => {
                    let Some(p) = self.sw.port(port) else {
                        continue;
                    };
                    let (ci, co) = (p.impair_in, p.impair_out);
                    self.seed = self.seed.wrapping_add(0x9e37_79b9);
                    for (map, c) in [(&mut self.impair_in, ci), (&mut self.impair_out, co)] {
                        if c.is_none() {
                            map.remove(&port);
                        } else {
                            match map.get_mut(&port) {
                                Some(q) => q.cfg = c,
                                None => {
                                    map.insert(port, Impairer::new(c, self.seed));
                                }
                            }
                        }
                    }
                }
                Action::Capture { port, path } => match path {
                    None => {
                        if let Some(mut c) = self.captures.remove(&port) {
                            let _ = c.w.flush();
                        }
                    }
                    Some(p) => match File::create(&p) {
                        Ok(f) => {
                            let mut w = BufWriter::new(f);
                            if w.write_all(&crate::pcap::file_header(65535)).is_err() {
                                r.errno = libc::EIO;
                            } else {
                                self.captures.insert(port, Capture { w, path: p });
                            }
                        }
                        Err(e) => r.errno = e.raw_os_error().unwrap_or(libc::EIO),
                    },
                },
            }
        }
        // Captures are flushed after each command so `port/capture N off` or a reader sees data.
        for c in self.captures.values_mut() {
            let _ = c.w.flush();
        }
        r
    }

    /// Remove sockets and the directory (as vde_switch does on exit).
    pub fn cleanup(&mut self) {
        for c in self.captures.values_mut() {
            let _ = c.w.flush();
        }
        let eps: Vec<usize> = (0..self.eps.len()).collect();
        for ep in eps {
            self.close_endpoint(ep);
        }
        let toks: Vec<Token> = (0..self.conns.len())
            .filter(|&i| matches!(self.conns[i], Some(Conn::StreamListener { .. })))
            .map(|i| Token(FIRST_CONN + i))
            .collect();
        for t in toks {
            self.close_conn(t);
        }
        let _ = std::fs::remove_file(self.cfg.sock_dir.join("ctl"));
        if let Some(m) = &self.cfg.mgmt {
            let _ = std::fs::remove_file(m);
        }
        if let (Some(p), true) = (&self.cfg.pidfile, self.wrote_pidfile) {
            let _ = std::fs::remove_file(p);
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.cfg.sock_dir);
        }
        if self.created_streams_dir {
            let _ = std::fs::remove_dir(port_streams_dir(&self.cfg.sock_dir));
        }
    }

    /// Robustness counters (bad handshakes, refusals, ...).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Drop the first `n` written bytes from an egress queue: whole frames go back to the buffer
/// pool, a frame a stream took only part of keeps its rest at the head.
fn take_written(
    queue: &mut VecDeque<Vec<u8>>,
    queued: &mut usize,
    pool: &mut Vec<Vec<u8>>,
    mut n: usize,
) {
    while let Some(f) = queue.front_mut() {
        if f.len() > n {
            f.drain(..n);
            *queued -= n;
            return;
        }
        n -= f.len();
        *queued -= f.len();
        let f = queue.pop_front().expect("non-empty");
        if pool.len() < POOL_MAX && f.capacity() <= 16 * 1024 {
            pool.push(f);
        }
        if n == 0 {
            return;
        }
    }
}

/// Where `--port-streams` puts its listeners: `DIR.streams/N`, beside the switch directory
/// (names inside DIR are VDE ports and port groups to vdeplug4 clients).
pub fn port_streams_dir(sock_dir: &Path) -> PathBuf {
    let mut s = sock_dir.as_os_str().to_owned();
    s.push(".streams");
    PathBuf::from(s)
}

fn set_sndbuf(fd: RawFd, bytes: i32) {
    // SAFETY: setsockopt with a valid int option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
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
        assert_eq!(v.port, Some(5));
        assert!("vni=42".parse::<VxlanCfg>().is_err());
        assert!("vni=99999999,local=127.0.0.1:1,remote=127.0.0.1:2"
            .parse::<VxlanCfg>()
            .is_err());
    }
}
