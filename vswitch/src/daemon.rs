//! The switch process: one thread, one mio (epoll) loop over non-blocking unix sockets.
//!
//! Why this design: the data path is one datagram in, a table lookup, one datagram out
//! per destination. On 2 cores a single thread that drains each socket in batches (instead
//! of vde_switch's one datagram per poll() wake-up) is the cheapest design, and per-endpoint
//! egress queues armed with EPOLLOUT replace vde_switch's drop-on-EAGAIN.
//!
//! The modules, one concern each (docs/switch.md has the map):
//!
//! - [`config`]: the command-line [`Config`], its value parsers (`--vxlan`, ...) and rules;
//! - `setup`: the switch directory, the ctl and management sockets, the rc file and
//!   start-up commands (what [`Daemon::new`] does, in order);
//! - `lifecycle`: daemonising, the pid file, signals;
//! - `event_loop`: the loop and the dispatcher saying which event goes where, timers;
//! - `handshake`: the VDE control handshake on `DIR/ctl`;
//! - `transport`: the endpoints' sockets (VDE datagram, tap, stream, dgram, VXLAN);
//! - `datapath`: frames in, impairments, switching, capture, onto the egress queues;
//! - `egress`: the egress queues, written in batches, and back-pressure;
//! - `mgmt`: management sessions, the stdin console, debug events;
//! - `log`, `sys`: rate-limited logging and small fd helpers.

mod config;
mod datapath;
mod egress;
mod event_loop;
pub mod fuzz;
mod handshake;
mod lifecycle;
mod log;
mod mgmt;
mod radius_io;
mod setup;
mod sys;
mod transport;

pub use config::{addr_port, octal, path_port, Config, VxlanCfg};

use crate::core::{PortId, Switch};
use crate::impair::Impairer;
use crate::layout::SwitchDir;
use crate::wire::MAX_FRAME_LEN;
use anyhow::Result;
use log::RateLog;
use mio::net::UnixListener;
use mio::unix::SourceFd;
use mio::{Poll, Token};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use transport::{Conn, Connector, Endpoint, Listener};

const T_CTL: Token = Token(0);
const T_MGMT: Token = Token(1);
const T_STDIN: Token = Token(2);
const T_SIGNAL: Token = Token(3);
const T_RADIUS: Token = Token(4);
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
    /// Pending handshakes closed to make room for a new one (at `MAX_PENDING`).
    pub pending_evicted: u64,
    /// Pending handshakes closed after `PENDING_TIMEOUT` without a whole request.
    pub pending_timeouts: u64,
    /// Management sessions dropped because they did not read their output.
    pub mgmt_overflows: u64,
    /// Accepts that failed for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM): accepting pauses, then is retried with a backoff (`ACCEPT_RETRY_*`).
    pub accept_exhausted: u64,
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
    /// `now_ms` of the last pending-handshake timeout scan.
    last_pending_scan_ms: u64,
    /// `now_ms` of the last spanning tree tick.
    last_stp_tick_ms: u64,
    /// The RADIUS socket (port authentication), opened with the first request.
    radius: Option<mio::net::UdpSocket>,
    /// `now_ms` of the last authenticator tick.
    last_auth_tick_ms: u64,
    /// When to accept again after running out of descriptors (epoll is edge-triggered: the
    /// connections left in the backlog would wait for the next connect without this).
    accept_retry_at: Option<Instant>,
    /// The current backoff: doubles from `ACCEPT_RETRY_MIN` to `ACCEPT_RETRY_MAX` while
    /// retries keep failing, back to zero after one that does not.
    accept_delay: Duration,
}

/// First wait before accepting again after EMFILE and alike.
pub const ACCEPT_RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest wait between such retries.
pub const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(1);

/// True for the accept errors that mean "no descriptor or memory now", not a bad client.
pub(crate) fn accept_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Random-ish switch MAC `00:ff:xx:xx:xx:xx` like vde_switch (used only for display).
fn switch_mac(seed: u64) -> [u8; 6] {
    let b = seed.to_le_bytes();
    [0, 0xff, b[0], b[1], b[2], b[3]]
}

/// The seed of the RADIUS request authenticators: /dev/urandom (RFC 2865 wants them
/// unpredictable), the start-up seed only if that cannot be read.
fn auth_seed(seed: u64) -> [u8; 16] {
    use std::io::Read;
    let mut b = [0u8; 16];
    let ok = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        b[..8].copy_from_slice(&seed.to_le_bytes());
        b[8..].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    }
    b
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
    /// Bind everything (so errors reach the caller before daemonizing): the switch
    /// directory and its sockets, then the rc file and start-up commands, then the
    /// transports, in the order the command line's ports are allocated.
    pub fn new(mut cfg: Config) -> Result<Self> {
        cfg.make_paths_absolute()?;
        let created_dir = setup::create_switch_dir(&cfg)?;
        let ctl = setup::bind_ctl(&cfg)?;
        let mgmt = setup::bind_mgmt(&cfg)?;
        let mut d = Daemon::with_sockets(cfg, ctl, mgmt, created_dir)?;
        d.run_rc_file()?;
        if let Err(e) = d.run_start_commands().and_then(|()| d.open_transports()) {
            d.cleanup();
            return Err(e);
        }
        Ok(d)
    }

    /// The daemon's state around its bound sockets, before any endpoint exists.
    fn with_sockets(
        cfg: Config,
        ctl: UnixListener,
        mgmt: Option<UnixListener>,
        created_dir: bool,
    ) -> Result<Self> {
        let seed = {
            let t = Instant::now();
            let addr = &t as *const _ as u64;
            addr ^ (std::process::id() as u64) << 32 ^ 0x9e37_79b9_7f4a_7c15
        };
        let numports = cfg.numports;
        let mut sw = Switch::new(numports, cfg.hub, cfg.hashsize);
        sw.table.max_entries = cfg.mac_table_size;
        sw.table.max_per_port = cfg.mac_per_port;
        sw.auth = crate::auth::mab::Mab::new(numports, auth_seed(seed));
        let mac = switch_mac(seed);
        if cfg.stp {
            // The management port's address, made locally administered: a bridge id's MAC.
            let mut m = mac;
            m[0] = 0x02;
            sw.enable_stp(m, cfg.stp_priority, Default::default(), 0);
            if cfg.stp_rstp {
                sw.stp_do(|s| s.set_mode(crate::stp::cst::Mode::Rstp, 0));
            }
        }
        Ok(Daemon {
            sw,
            poll: Poll::new()?,
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
            mac,
            log: RateLog::new(),
            stats: Stats::default(),
            sig_read: None,
            stdin_on: false,
            again: Vec::new(),
            dirty: Vec::new(),
            pool: Vec::new(),
            connectors: Vec::new(),
            debug_any: false,
            accept_retry_at: None,
            accept_delay: Duration::ZERO,
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
            last_pending_scan_ms: 0,
            last_stp_tick_ms: 0,
            radius: None,
            last_auth_tick_ms: 0,
            cfg,
        })
    }

    /// The layout of the switch directory this daemon serves.
    fn layout(&self) -> SwitchDir {
        SwitchDir::new(&self.cfg.sock_dir)
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

    /// The token [`Self::new_slot`] will hand out next.
    fn next_token(&self) -> Token {
        let i = self
            .conns
            .iter()
            .position(|c| c.is_none())
            .unwrap_or(self.conns.len());
        Token(FIRST_CONN + i)
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

    fn close_conn(&mut self, tok: Token) {
        let Some(c) = self
            .conns
            .get_mut(tok.0 - FIRST_CONN)
            .and_then(Option::take)
        else {
            return;
        };
        match c {
            Conn::CtlPending { mut s, .. } | Conn::Ctl { mut s, .. } | Conn::Mgmt { mut s, .. } => {
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

    /// Remove sockets and the directory (as vde_switch does on exit).
    pub fn cleanup(&mut self) {
        for c in self.captures.values_mut() {
            let _ = std::io::Write::flush(&mut c.w);
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
        let layout = self.layout();
        let _ = std::fs::remove_file(layout.ctl());
        if let Some(m) = &self.cfg.mgmt {
            let _ = std::fs::remove_file(m);
        }
        if let (Some(p), true) = (&self.cfg.pidfile, self.wrote_pidfile) {
            let _ = std::fs::remove_file(p);
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(layout.dir());
        }
        if self.created_streams_dir {
            let _ = std::fs::remove_dir(layout.streams());
        }
    }

    /// Robustness counters (bad handshakes, refusals, ...).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Where `--port-streams` puts its listeners: `DIR.streams/N`, beside the switch directory
/// (see [`crate::layout`]).
pub fn port_streams_dir(sock_dir: &Path) -> PathBuf {
    SwitchDir::new(sock_dir).streams()
}
