//! The daemon: sockets, netlink, GARP, notify scripts and the status socket around the pure
//! [`crate::fsm::Router`]. One thread, one poll loop; nothing in the loop blocks on a child
//! process or a slow client.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::{self, Config, InstanceConfig, Script, V3Checksum};
use crate::control::{self as ctl, Control, ControlStats};
use crate::fsm::{Action, NotifyTarget, Router, State, Time};
use crate::garp::GarpSchedule;
use crate::health::{self, Health};
use crate::netlink::{AddrSpec, Link, LinkEvent, Netlink, IFA_F_SECONDARY};
use crate::pathcheck;
use crate::ratelimit::{LogLimiter, Verdict};
use crate::routes::{self, Routes, Statics};
use crate::status::{Counters, GroupStatus, InstanceStatus, Mismatch, Status, TransitionStatus};
use crate::sys::{self, NdSocket, PacketSocket, VrrpSocket};
use crate::validate::{self, CsumForm, Drop, RxMeta};
use crate::vmac;
use crate::wire::{self, ChecksumForm, Family, Repr, Version, MCAST_V4, MCAST_V6};

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/vrrpd/vrrpd.sock";

static SYSLOG: AtomicBool = AtomicBool::new(false);

/// Log one line (stderr with -l / in the foreground, syslog when daemonized).
pub fn log(msg: &str) {
    if SYSLOG.load(Ordering::Relaxed) {
        if let Ok(c) = std::ffi::CString::new(msg.replace('%', "%%")) {
            // SAFETY: format string and argument are valid C strings.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
        }
    } else {
        eprintln!("vrrpd: {msg}");
    }
}

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub socket: PathBuf,
    /// `-n`: stay in the foreground.
    pub foreground: bool,
    /// `-l`: log to the console even when daemonized.
    pub console_log: bool,
    /// `-p FILE`: write our pid there (after daemonizing), removed on clean exit.
    pub pid_file: Option<PathBuf>,
    /// `-i/--config-id`: for `@NAME` lines; default the host name up to its first dot.
    pub config_id: Option<String>,
}

/// The load options for a config id given on the command line, or keepalived's default.
pub fn load_options(config_id: Option<String>) -> config::LoadOptions {
    config::LoadOptions {
        config_id: Some(config_id.unwrap_or_else(|| config::default_id(&nodename()).to_string())),
    }
}

/// uname(2)'s node name (what keepalived takes the default config id from).
fn nodename() -> String {
    // SAFETY: uname fills a zeroed struct of fixed-size NUL-terminated arrays.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: nodename is NUL-terminated by uname.
    let c = unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) };
    c.to_string_lossy().into_owned()
}

/// `--check`: parse, print warnings and a summary.
pub fn check(path: &Path, opts: &config::LoadOptions) -> Result<String> {
    let cfg = config::load_with(path, opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        eprintln!("{}:{}: warning: {}", w.file.display(), w.line, w.msg);
    }
    for w in mtu_warnings(&cfg, &check_links()) {
        eprintln!("{w}");
    }
    let mut s = format!(
        "config id {}\n",
        opts.config_id.as_deref().unwrap_or("(none)")
    );
    for i in &cfg.instances {
        s.push_str(&format!(
            "instance {}: interface {} vrid {} priority {} v{} advert_int {:.2}s{} vips {}{}\n",
            i.name,
            i.interface,
            i.vrid,
            i.priority,
            i.version.number(),
            i.advert_int().as_secs_f64(),
            if i.auth_pass.is_some() {
                " auth PASS"
            } else {
                ""
            },
            i.vips.len(),
            if i.nopreempt { " nopreempt" } else { "" },
        ));
    }
    for g in &cfg.sync_groups {
        s.push_str(&format!("sync group {}: {}\n", g.name, g.members.join(" ")));
    }
    for c in &cfg.scripts {
        s.push_str(&format!(
            "script {}: interval {:.2}s timeout {:.2}s rise {} fall {} weight {}{}: {}\n",
            c.name,
            c.interval.as_secs_f64(),
            c.effective_timeout().as_secs_f64(),
            c.rise,
            c.fall,
            c.weight,
            if c.reverse { " reverse" } else { "" },
            c.argv.join(" ")
        ));
    }
    Ok(s)
}

/// For each instance of `new`, the index of the instance of `old` it continues: same name,
/// same configuration apart from its priority and line numbers, same sync group.
fn kept_instances(old: &Config, new: &Config) -> Vec<Option<usize>> {
    let group = |c: &Config, name: &str| {
        c.sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name.clone())
    };
    new.instances
        .iter()
        .map(|n| {
            let oi = old.instances.iter().position(|o| o.name == n.name)?;
            let o = &old.instances[oi];
            (same_but_priority(o, n) && group(old, &o.name) == group(new, &n.name)).then_some(oi)
        })
        .collect()
}

/// Equal configurations once the priority and every line number are set aside.
fn same_but_priority(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    let norm = |c: &InstanceConfig| {
        let mut c = c.clone();
        c.priority = 0;
        c.line = 0;
        for v in c.vips.iter_mut().chain(c.excluded.iter_mut()) {
            v.line = 0;
        }
        for t in &mut c.track_scripts {
            t.line = 0;
        }
        for r in &mut c.routes {
            r.line = 0;
        }
        for r in &mut c.rules {
            r.line = 0;
        }
        c
    };
    norm(a) == norm(b)
}

/// The MTU assumed by `--check` for an interface that does not exist on this host.
const ASSUMED_MTU: u32 = 1500;

/// This host's interfaces for `--check` (none if netlink is not available).
fn check_links() -> Vec<Link> {
    Netlink::open()
        .and_then(|mut n| n.links())
        .unwrap_or_default()
}

/// `--check`: instances whose advert cannot fit their interface's MTU (its real MTU here, or
/// 1500 when it does not exist on this host). The daemon refuses to start on them; before
/// that, a fragmented or dropped advert makes both routers master (docs/security-vrrpd.md).
fn mtu_warnings(cfg: &Config, links: &[Link]) -> Vec<String> {
    let mut out = Vec::new();
    for c in &cfg.instances {
        let (mtu, how) = match find_link(links, &c.interface) {
            Some(l) => (l.mtu, ""),
            None => (ASSUMED_MTU, " (assumed: no such interface here)"),
        };
        if let Err(e) = advert_fits(c, mtu) {
            out.push(format!(
                "{}: warning: instance {}: {e}{how}; the peer would never hear this router: split brain",
                cfg.place(c.line),
                c.name
            ));
        }
    }
    out
}

struct Vip {
    spec: AddrSpec,
    dev: String,
    mac: [u8; 6],
}

struct Inst {
    cfg: InstanceConfig,
    sock: usize,
    src: IpAddr,
    vips: Vec<Vip>,
    /// `virtual_routes` / `virtual_rules`, with the VIPs.
    routes: Routes,
    counters: Counters,
    mismatch: Option<(Time, Mismatch)>,
    garp: GarpSchedule,
    /// When a valid advert was last accepted (pathcheck).
    last_heard: Option<Time>,
    /// Whether the path is broken now, and when that was last logged.
    broken: (bool, Option<Time>),
}

struct Script_ {
    child: Child,
    argv0: String,
    started: Time,
    warned: bool,
}

struct Daemon {
    start: Instant,
    /// The file and options to read again on SIGHUP.
    load: (PathBuf, config::LoadOptions),
    /// `static_*` sections, removed on a clean exit.
    statics: Statics,
    /// The `use_vmac` interfaces we created, removed on a clean exit.
    vmacs: Vec<vmac::Vmac>,
    nl: Netlink,
    socks: Vec<VrrpSocket>,
    /// (interface, IPv6) of each socket, to reopen it when its interface is re-created.
    sock_keys: Vec<(String, bool)>,
    /// The interface index each watched name had last, to notice a re-created interface.
    indexes: BTreeMap<String, u32>,
    insts: Vec<Inst>,
    router: Router,
    cfg: Config,
    pkt: PacketSocket,
    nd: Option<NdSocket>,
    local_addrs: HashSet<IpAddr>,
    links: BTreeMap<String, bool>,
    children: Vec<Script_>,
    /// Per configured `vrrp_script` (None: tracked by nothing, not run).
    health: Vec<Option<Health>>,
    unknown_vrid: u64,
    malformed: u64,
    /// Drop log lines, keyed by (instance, source, reason).
    log_limit: LogLimiter<(usize, IpAddr, std::mem::Discriminant<Drop>)>,
}

impl Daemon {
    fn now(&self) -> Time {
        self.start.elapsed()
    }

    /// The daemon around a resolved configuration, its clock starting now.
    fn new(
        cfg: Config,
        load: (PathBuf, config::LoadOptions),
        nl: Netlink,
        s: Setup,
        local_addrs: HashSet<IpAddr>,
    ) -> Result<Daemon> {
        let router = Router::new(&cfg, &s.primaries);
        let nd = if cfg.instances.iter().any(|c| c.family == Family::V6) {
            Some(NdSocket::open()?)
        } else {
            None
        };
        let health = health::from_config(&cfg, Duration::ZERO)?;
        Ok(Daemon {
            start: Instant::now(),
            load,
            statics: s.statics,
            vmacs: Vec::new(),
            health,
            nl,
            socks: s.socks,
            sock_keys: s.sock_keys,
            indexes: s.indexes,
            insts: s.insts,
            router,
            cfg,
            pkt: PacketSocket::sender()?,
            nd,
            local_addrs,
            links: s.watched,
            children: Vec::new(),
            unknown_vrid: 0,
            malformed: 0,
            log_limit: LogLimiter::default(),
        })
    }

    /// Tell the router which watched links are down at startup, then start it.
    fn start_router(&mut self) {
        let now = self.now();
        let down: Vec<String> = self
            .links
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(n, _)| n.clone())
            .collect();
        for name in down {
            let acts = self.router.link(now, &name, false);
            self.apply(acts);
        }
        let acts = self.router.start(now);
        self.apply(acts);
        for (i, f) in self.router.instances.iter().enumerate() {
            if self.router.held(i) && f.state == State::Init {
                log(&format!(
                    "instance {}: INIT until its weight-0 track_script(s) report a first result",
                    f.name
                ));
            }
        }
    }

    /// When the loop must wake next: a router timer or a GARP burst, whichever comes first.
    fn next_deadline(&self) -> Option<Time> {
        let d = self.insts.iter().fold(self.router.next_deadline(), |n, i| {
            earliest(n, i.garp.next())
        });
        self.health
            .iter()
            .flatten()
            .fold(d, |n, h| earliest(n, Some(h.deadline())))
    }

    /// Read pending signals; true means shut down (SIGHUP is only logged).
    fn on_signals(&mut self, fd: i32) -> bool {
        while let Some(sig) = sys::read_signal(fd) {
            if sig == libc::SIGCHLD as u32 {
                continue; // a script ended: reaped in housekeeping
            }
            if sig == libc::SIGHUP as u32 {
                self.reload();
                continue;
            }
            log(&format!("signal {sig}: shutting down"));
            return true;
        }
        false
    }

    /// SIGHUP (docs/vrrp.md, Reload): read the configuration again; instances whose
    /// configuration is unchanged (apart from their priority) keep their state, VIPs and
    /// timers and take the new priority; removed or otherwise changed ones leave (a master
    /// resigns), new and changed ones start as at startup. A configuration that does not load
    /// or resolve leaves everything as it was.
    fn reload(&mut self) {
        let (path, lopts) = self.load.clone();
        let cfg = match load_config(&path, &lopts) {
            Ok(c) => c,
            Err(e) => return log(&format!("SIGHUP: {e:#}: keeping the running configuration")),
        };
        if let Err(e) = vmac::ensure(&cfg, &mut self.nl, &mut self.vmacs) {
            return log(&format!("SIGHUP: {e:#}: keeping the running configuration"));
        }
        let setup = match self
            .nl
            .links()
            .map_err(anyhow::Error::from)
            .and_then(|links| Setup::new(&cfg, &mut self.nl, &links))
        {
            Ok(s) => s,
            Err(e) => return log(&format!("SIGHUP: {e:#}: keeping the running configuration")),
        };
        let kept = kept_instances(&self.cfg, &cfg);
        let now = self.now();
        for oi in 0..self.insts.len() {
            if !kept.contains(&Some(oi)) {
                let acts = self.router.leave(now, oi);
                self.apply(acts);
            }
        }
        let health = std::mem::take(&mut self.health);
        self.health = match health::reload(health, &cfg, now) {
            Ok(h) => h,
            Err(e) => {
                log(&format!("SIGHUP: {e:#}: its checks do not run"));
                Vec::new()
            }
        };
        self.install(cfg, setup, &kept, now);
        let (keep, gone): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.vmacs).into_iter().partition(|v| {
                self.cfg
                    .instances
                    .iter()
                    .any(|c| c.vmac.as_ref() == Some(&v.name))
            });
        vmac::remove(&mut self.nl, &gone);
        self.vmacs = keep;
    }

    /// The reloaded configuration in place of the old one, kept instances carried over.
    fn install(&mut self, cfg: Config, mut s: Setup, kept: &[Option<usize>], now: Time) {
        let mut router = Router::new(&cfg, &s.primaries);
        let down: Vec<String> = s
            .watched
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(n, _)| n.clone())
            .collect();
        router.set_links_down(&down);
        // Script results first: a kept instance's Master_Down_Interval depends on them.
        for (k, h) in self.health.iter().enumerate() {
            router.set_script(k, h.as_ref().and_then(|h| h.check.ok()));
        }
        let mut fresh = Vec::new();
        let mut changed_prio = 0;
        for (ni, k) in kept.iter().enumerate() {
            let Some(oi) = *k else {
                fresh.push(ni);
                continue;
            };
            router.adopt(ni, &self.router.instances[oi]);
            if router.instances[ni].base_priority != self.router.instances[oi].base_priority {
                changed_prio += 1;
            }
            let (old, new) = (&mut self.insts[oi], &mut s.insts[ni]);
            new.counters = std::mem::take(&mut old.counters);
            new.garp = std::mem::take(&mut old.garp);
            new.mismatch = old.mismatch.take();
            new.last_heard = old.last_heard;
            new.broken = old.broken;
        }
        log(&format!(
            "SIGHUP: configuration reloaded: {} instance(s) kept ({changed_prio} with a new priority), {} started, {} left",
            kept.iter().flatten().count(),
            fresh.len(),
            self.insts.len() - kept.iter().flatten().count()
        ));
        self.statics
            .missing_from(&s.statics)
            .apply(&mut self.nl, false);
        s.statics.apply(&mut self.nl, true);
        self.statics = std::mem::take(&mut s.statics);
        self.cfg = cfg;
        self.router = router;
        self.insts = s.insts;
        self.socks = s.socks;
        self.sock_keys = s.sock_keys;
        self.indexes = s.indexes;
        self.links = s.watched;
        if let Ok(a) = local_addresses(&mut self.nl) {
            self.local_addrs = a;
        }
        let acts = self.router.resume(now, &fresh);
        self.apply(acts);
    }

    /// Leave every instance, give notify_stop scripts a moment, remove the socket and pid file.
    fn shut_down(&mut self, opts: &Options) {
        let now = self.now();
        let acts = self.router.shutdown(now);
        self.apply(acts);
        for h in self.health.iter_mut().flatten() {
            h.kill();
        }
        self.statics.apply(&mut self.nl, false);
        vmac::remove(&mut self.nl, &self.vmacs);
        // Give notify_stop scripts a moment: they get SIGTERM when we exit.
        let t = Instant::now();
        self.reap();
        while !self.children.is_empty() && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
            self.reap();
        }
        let _ = std::fs::remove_file(&opts.socket);
        if let Some(p) = &opts.pid_file {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Handle up to 64 datagrams from one VRRP socket, so one busy socket cannot starve the rest.
    fn on_socket(&mut self, s: usize) {
        for _ in 0..64 {
            match self.socks[s].recv() {
                Ok(Some(rx)) => self.on_packet(s, rx),
                Ok(None) => break,
                Err(e) => {
                    log(&format!("receive error: {e}"));
                    break;
                }
            }
        }
    }

    /// After each wakeup: router timers, due GARPs, finished scripts.
    fn housekeeping(&mut self) {
        let now = self.now();
        self.run_checks(now);
        let acts = self.router.tick(now);
        self.apply(acts);
        self.run_garps(now);
        self.reap();
        self.check_paths(now);
    }

    /// Reap and start health checks; a changed result goes to the router (new priority or
    /// FAULT), and a new effective priority is logged as keepalived does.
    fn run_checks(&mut self, now: Time) {
        for idx in 0..self.health.len() {
            let Some(ok) = self.health[idx].as_mut().and_then(|h| h.service(now)) else {
                continue;
            };
            let before: Vec<u8> = self.router.instances.iter().map(|f| f.priority()).collect();
            let acts = self.router.script(now, idx, ok);
            for (f, old) in self.router.instances.iter().zip(before) {
                if f.priority() != old {
                    log(&format!(
                        "instance {}: changing effective priority from {old} to {}",
                        f.name,
                        f.priority()
                    ));
                }
            }
            self.apply(acts);
        }
    }

    /// docs/security-vrrpd.md, Broken paths: flag (status) and log (once per change, at most
    /// once a minute per member) a group member deaf to a master the others hear.
    fn check_paths(&mut self, now: Time) {
        let heard: Vec<Option<Time>> = self.insts.iter().map(|i| i.last_heard).collect();
        let mdi: Vec<Time> = self
            .router
            .instances
            .iter()
            .map(|f| f.master_down_interval())
            .collect();
        for g in &self.router.groups {
            let flags = pathcheck::broken(now, &g.members, &heard, &mdi);
            for (&m, b) in g.members.iter().zip(flags) {
                let i = &mut self.insts[m];
                if b == i.broken.0 {
                    continue;
                }
                i.broken.0 = b;
                let due = i
                    .broken
                    .1
                    .is_none_or(|t| now >= t + Duration::from_secs(60));
                if b && due {
                    i.broken.1 = Some(now);
                    log(&format!("ERROR sync group {}: instance {} hears no master while the other members do: its path to the peer ({}) is broken", g.name, i.cfg.name, i.cfg.interface));
                }
            }
        }
    }

    fn apply(&mut self, actions: Vec<Action>) {
        let now = self.now();
        for a in actions {
            match a {
                Action::SendAdvert { inst, priority } => self.send_advert(inst, priority),
                Action::AddVips { inst } => self.vips(inst, true),
                Action::RemoveVips { inst } => self.vips(inst, false),
                Action::StartGarp { inst } => {
                    let i = &mut self.insts[inst];
                    i.garp.start(now, &i.cfg.garp);
                    self.run_garps(now);
                }
                Action::StopGarp { inst } => self.insts[inst].garp.stop(),
                Action::Notify {
                    target,
                    state,
                    priority,
                } => self.notify(target, state, priority),
                Action::Transition {
                    inst,
                    from,
                    to,
                    reason,
                } => log(&format!(
                    "instance {}: {} -> {} ({reason})",
                    self.insts[inst].cfg.name,
                    from.name(),
                    to.name()
                )),
            }
        }
    }

    fn send_advert(&mut self, inst: usize, priority: u8) {
        let i = &mut self.insts[inst];
        let c = &i.cfg;
        let repr = Repr {
            version: c.version,
            vrid: c.vrid,
            priority,
            adver_int: c.wire_adver_int(),
            addrs: c.vips.iter().map(|v| v.addr).collect(),
            auth_type: if c.auth_pass.is_some() {
                wire::AUTH_PASS
            } else {
                0
            },
            auth_data: c.auth_pass.unwrap_or([0; 8]),
            rsvd: 0,
        };
        let dsts: Vec<IpAddr> = if c.unicast_peers.is_empty() {
            vec![match c.family {
                Family::V4 => IpAddr::V4(MCAST_V4),
                Family::V6 => IpAddr::V6(MCAST_V6),
            }]
        } else {
            c.unicast_peers.clone()
        };
        for dst in dsts {
            let form = match (c.version, i.src, dst) {
                (Version::V2, _, _) => ChecksumForm::MessageOnly,
                (Version::V3, IpAddr::V4(src), IpAddr::V4(dst)) => match c.v3_checksum {
                    V3Checksum::PseudoHeader => ChecksumForm::Ipv4Pseudo { src, dst },
                    V3Checksum::MessageOnly => ChecksumForm::MessageOnly,
                },
                (Version::V3, IpAddr::V6(src), IpAddr::V6(dst)) => {
                    ChecksumForm::Ipv6Pseudo { src, dst }
                }
                _ => ChecksumForm::MessageOnly,
            };
            let msg = repr.to_bytes(form);
            match self.socks[i.sock].send(&msg, i.src, dst) {
                Ok(()) => {
                    i.counters.adverts_out += 1;
                    if priority == 0 {
                        i.counters.priority_zero_out += 1;
                    }
                }
                Err(e) => {
                    i.counters.send_errors += 1;
                    log(&format!(
                        "instance {}: send advert to {dst} failed: {e}",
                        c.name
                    ));
                }
            }
        }
    }

    fn vips(&mut self, inst: usize, add: bool) {
        let i = &self.insts[inst];
        if !add {
            i.routes
                .apply(&mut self.nl, false, &format!("instance {}", i.cfg.name));
        }
        for v in &i.vips {
            let r = if add {
                self.nl.add_addr(&v.spec)
            } else {
                self.nl.del_addr(&v.spec)
            };
            match r {
                Ok(_) => {}
                Err(e) => log(&format!(
                    "instance {}: {} {}/{} on {} failed: {e}",
                    i.cfg.name,
                    if add { "adding" } else { "removing" },
                    v.spec.addr,
                    v.spec.prefix,
                    v.dev
                )),
            }
        }
        if add {
            i.routes
                .apply(&mut self.nl, true, &format!("instance {}", i.cfg.name));
            for v in &i.vips {
                self.local_addrs.insert(v.spec.addr);
            }
        }
    }

    fn run_garps(&mut self, now: Time) {
        for idx in 0..self.insts.len() {
            let i = &mut self.insts[idx];
            let rounds = i.garp.due(now, &i.cfg.garp);
            for _ in 0..rounds {
                self.send_garp_once(idx);
            }
        }
    }

    fn send_garp_once(&mut self, idx: usize) {
        let i = &mut self.insts[idx];
        for v in &i.vips {
            let r = match v.spec.addr {
                IpAddr::V4(a) => self.pkt.send(v.spec.index, &wire::garp_frame(v.mac, a)),
                IpAddr::V6(a) => match &self.nd {
                    Some(nd) => {
                        nd.send_all_nodes(v.spec.index, &wire::unsolicited_na(a, v.mac, true))
                    }
                    None => Ok(()),
                },
            };
            match r {
                Ok(()) => i.counters.garp_sent += 1,
                Err(e) => log(&format!(
                    "instance {}: GARP/NA for {} on {} failed: {e}",
                    i.cfg.name, v.spec.addr, v.dev
                )),
            }
        }
    }

    fn notify(&mut self, target: NotifyTarget, state: State, priority: u8) {
        let (kind, name, n) = match target {
            NotifyTarget::Instance(i) => (
                "INSTANCE",
                self.insts[i].cfg.name.clone(),
                self.insts[i].cfg.notify.clone(),
            ),
            NotifyTarget::Group(g) => (
                "GROUP",
                self.cfg.sync_groups[g].name.clone(),
                self.cfg.sync_groups[g].notify.clone(),
            ),
        };
        let specific = match state {
            State::Master => n.master,
            State::Backup => n.backup,
            State::Fault => n.fault,
            State::Init => n.stop,
        };
        if let Some(s) = specific {
            self.spawn(s);
        }
        if let Some(mut s) = n.generic {
            s.extend([
                kind.to_string(),
                name,
                state.keyword().to_string(),
                priority.to_string(),
            ]);
            self.spawn(s);
        }
    }

    /// Run a script without a shell; never waits for it (reaped in the loop).
    fn spawn(&mut self, argv: Script) {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        // As keepalived: scripts get SIGTERM when the daemon dies, even by SIGKILL.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                sys::unblock_signals();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => self.children.push(Script_ {
                child,
                argv0: argv[0].clone(),
                started: self.now(),
                warned: false,
            }),
            Err(e) => log(&format!(
                "notify script {} could not start: {e}",
                argv.join(" ")
            )),
        }
    }

    fn reap(&mut self) {
        let now = self.now();
        self.children.retain_mut(|c| match c.child.try_wait() {
            Ok(Some(st)) => {
                if !st.success() {
                    log(&format!("notify script {} exited with {st}", c.argv0));
                }
                false
            }
            Ok(None) => {
                if !c.warned && now - c.started > Duration::from_secs(30) {
                    log(&format!(
                        "notify script {} still running after 30 s (it does not block VRRP)",
                        c.argv0
                    ));
                    c.warned = true;
                }
                true
            }
            Err(_) => false,
        });
    }

    fn on_packet(&mut self, sock: usize, rx: sys::Rx) {
        let now = self.now();
        let (msg, ip_payload_len) = if self.socks[sock].v6 {
            (&rx.data[..], None)
        } else {
            match wire::Ipv4Header::parse(&rx.data) {
                Some(h)
                    if h.protocol == wire::IPPROTO_VRRP && rx.data.len() >= h.header_len + 8 =>
                {
                    (
                        &rx.data[h.header_len..],
                        Some(h.total_len.saturating_sub(h.header_len)),
                    )
                }
                _ => {
                    self.malformed += 1;
                    return;
                }
            }
        };
        if msg.len() < 8 {
            self.malformed += 1;
            return;
        }
        let vrid = msg[1];
        let fam = Family::of(&rx.src);
        let Some(idx) = self
            .insts
            .iter()
            .position(|i| i.sock == sock && i.cfg.vrid == vrid && i.cfg.family == fam)
        else {
            self.unknown_vrid += 1;
            return;
        };
        if self.local_addrs.contains(&rx.src) || rx.src == self.insts[idx].src {
            self.insts[idx].counters.own_packets += 1;
            return;
        }
        let meta = RxMeta {
            src: rx.src,
            dst: rx.dst,
            ttl: rx.ttl,
            ip_payload_len,
        };
        let res = validate::validate(&self.insts[idx].cfg, msg, &meta);
        let i = &mut self.insts[idx];
        match res {
            Ok(v) => {
                i.counters.adverts_in += 1;
                i.last_heard = Some(now);
                if v.priority == 0 {
                    i.counters.priority_zero_in += 1;
                }
                match v.csum {
                    CsumForm::Ipv4Pseudo => i.counters.v3_csum_pseudo_header += 1,
                    CsumForm::MessageOnly => i.counters.v3_csum_message_only += 1,
                    CsumForm::OldUnicast => i.counters.v3_csum_old_unicast += 1,
                    CsumForm::Standard => {}
                }
                let acts = self.router.advert(now, idx, rx.src, v.priority, v.interval);
                self.apply(acts);
            }
            Err(d) => {
                let c = &mut i.counters;
                match d {
                    Drop::BadLength => c.bad_length += 1,
                    Drop::BadTtl => c.bad_ttl += 1,
                    Drop::WrongVersion { .. } => c.wrong_version += 1,
                    Drop::AuthTypeMismatch { .. } => c.bad_auth_type += 1,
                    Drop::BadAuth => c.bad_auth += 1,
                    Drop::IntervalMismatch { .. } => c.interval_mismatch += 1,
                    Drop::BadType => c.bad_length += 1,
                    Drop::VipCountMismatch { .. } => c.vip_count_mismatch += 1,
                    Drop::BadChecksum => c.bad_checksum += 1,
                    Drop::VipMismatch => c.vip_mismatch += 1,
                    Drop::NotPeer => c.not_peer += 1,
                }
                let detail = drop_detail(&i.cfg, &d, msg);
                if d.is_config_mismatch() {
                    i.mismatch = Some((
                        now,
                        Mismatch {
                            peer: rx.src.to_string(),
                            detail: detail.clone(),
                            ago_s: 0.0,
                        },
                    ));
                }
                let key = (idx, rx.src, std::mem::discriminant(&d));
                if let Verdict::Log { suppressed } = self.log_limit.check(now, key) {
                    log_drop(&i.cfg.name, rx.src, &d, &detail, suppressed);
                }
            }
        }
    }

    /// Link changes: a deleted interface is down (FAULT), a re-created one is resolved again
    /// by name (new index, MAC, socket), then its up/down state is applied.
    fn on_links(&mut self, events: Vec<LinkEvent>) {
        let now = self.now();
        for LinkEvent { link: l, deleted } in events {
            let Some(old) = self.links.get(&l.name).copied() else {
                continue;
            };
            if deleted {
                log(&format!("interface {} was deleted", l.name));
                self.indexes.remove(&l.name);
            } else if self.indexes.get(&l.name) != Some(&l.index) {
                self.rebind(&l);
            }
            if old != l.up {
                if l.up {
                    self.resolve_sources(&l);
                }
                self.links.insert(l.name.clone(), l.up);
                log(&format!(
                    "interface {} is {}",
                    l.name,
                    if l.up { "up" } else { "down" }
                ));
                let acts = self.router.link(now, &l.name, l.up);
                self.apply(acts);
            }
        }
    }

    /// An interface (re)appeared under a new index: point VIPs, sockets and sources at it.
    fn rebind(&mut self, l: &Link) {
        log(&format!(
            "interface {} appeared (index {}): resolving it again",
            l.name, l.index
        ));
        self.indexes.insert(l.name.clone(), l.index);
        for v in self.insts.iter_mut().flat_map(|i| i.vips.iter_mut()) {
            if v.dev == l.name {
                v.spec.index = l.index;
                v.mac = l.mac;
            }
        }
        for (k, (name, v6)) in self.sock_keys.iter().enumerate() {
            if *name == l.name {
                match VrrpSocket::open(name, l.index, *v6) {
                    Ok(s) => self.socks[k] = s,
                    Err(e) => log(&format!("reopening the socket on {name} failed: {e}")),
                }
            }
        }
    }

    /// The advert source of the instances on `l`, read again (it may have been re-added).
    fn resolve_sources(&mut self, l: &Link) {
        for idx in 0..self.insts.len() {
            if self.insts[idx].cfg.interface == l.name {
                match primary_addr(&mut self.nl, &self.insts[idx].cfg, l.index) {
                    Ok(a) => self.insts[idx].src = a,
                    Err(e) => log(&format!("{e}: keeping {}", self.insts[idx].src)),
                }
            }
        }
    }

    fn status(&self) -> Status {
        let now = self.now();
        Status {
            router_id: self.cfg.router_id.clone(),
            pid: std::process::id(),
            uptime_s: now.as_secs_f64(),
            unknown_vrid: self.unknown_vrid,
            malformed: self.malformed,
            instances: self
                .insts
                .iter()
                .zip(&self.router.instances)
                .map(|(i, f)| InstanceStatus {
                    name: i.cfg.name.clone(),
                    state: f.state,
                    priority: f.priority(),
                    base_priority: f.base_priority,
                    vrid: i.cfg.vrid,
                    version: i.cfg.version.number(),
                    interface: i.cfg.interface.clone(),
                    source: i.src.to_string(),
                    advert_int_ms: i.cfg.advert_int().as_millis() as u64,
                    master_down_interval_ms: f.master_down_interval().as_secs_f64() * 1000.0,
                    master: f.master_addr.map(|a| a.to_string()),
                    master_priority: f.master_priority,
                    vips: i
                        .cfg
                        .vips
                        .iter()
                        .map(|v| format!("{}/{}", v.addr, v.prefix))
                        .collect(),
                    counters: i.counters.clone(),
                    last_transition: f.last.as_ref().map(|t| TransitionStatus {
                        ago_s: (now - t.at).as_secs_f64(),
                        from: t.from,
                        to: t.to,
                        reason: t.reason.clone(),
                    }),
                    last_mismatch: i.mismatch.as_ref().map(|(t, m)| Mismatch {
                        ago_s: (now - *t).as_secs_f64(),
                        ..m.clone()
                    }),
                })
                .collect(),
            control: ControlStats::default(),
            log_suppressed: self.log_limit.suppressed,
            scripts: self
                .health
                .iter()
                .flatten()
                .map(|h| h.status(now))
                .collect(),
            groups: self
                .router
                .groups
                .iter()
                .map(|g| GroupStatus {
                    name: g.name.clone(),
                    state: g.state,
                    members: g
                        .members
                        .iter()
                        .map(|&m| self.insts[m].cfg.name.clone())
                        .collect(),
                    broken_paths: g
                        .members
                        .iter()
                        .filter(|&&m| self.insts[m].broken.0)
                        .map(|&m| self.insts[m].cfg.name.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    /// The reply to one control command (a JSON line without its newline).
    fn answer(&self, cmd: ctl::Command, control: &ControlStats) -> String {
        match cmd {
            ctl::Command::Status => {
                let mut st = self.status();
                st.control = control.clone();
                serde_json::to_string(&st).unwrap_or_default()
            }
            ctl::Command::Unknown(other) => {
                serde_json::json!({ "error": format!("unknown command '{other}'") }).to_string()
            }
        }
    }
}

/// One drop log line; `suppressed` lines were rate-limited away before it.
fn log_drop(inst: &str, src: IpAddr, d: &Drop, detail: &str, suppressed: u64) {
    if suppressed > 0 {
        log(&format!(
            "{suppressed} drop log line(s) suppressed by the rate limit (see status log_suppressed)"
        ));
    }
    if d.is_config_mismatch() {
        log(&format!(
            "ERROR instance {inst}: CONFIGURATION MISMATCH with peer {src}: {detail}. Its adverts are dropped, so both routers will become MASTER (split brain): make both configurations agree"
        ));
    } else {
        log(&format!(
            "instance {inst}: dropped advert from {src}: {detail}"
        ));
    }
}

fn drop_detail(cfg: &InstanceConfig, d: &Drop, msg: &[u8]) -> String {
    match d {
        Drop::IntervalMismatch { got_cs } => format!(
            "advertisement interval mismatch: mine={:.2}s received={:.2}s",
            cfg.advert_int().as_secs_f64(),
            f64::from(*got_cs) / 100.0
        ),
        Drop::BadAuth => "authentication password differs".into(),
        Drop::AuthTypeMismatch { got } => format!(
            "authentication type mismatch: received {got}, expecting {}",
            if cfg.auth_pass.is_some() { 1 } else { 0 }
        ),
        Drop::WrongVersion { got } => format!(
            "wrong version: received {got}, expecting {}",
            cfg.version.number()
        ),
        Drop::VipCountMismatch { got } => format!(
            "virtual address count mismatch: received {got}, configured {}",
            cfg.vips.len()
        ),
        Drop::VipMismatch => {
            let fam = cfg.family;
            let p = wire::Packet::new_unchecked(msg);
            let theirs: Vec<String> = (0..usize::from(p.count()))
                .map(|i| p.addr(fam, i).to_string())
                .collect();
            let ours: Vec<String> = cfg.vips.iter().map(|v| v.addr.to_string()).collect();
            format!(
                "virtual address set differs: received [{}], configured [{}]",
                theirs.join(" "),
                ours.join(" ")
            )
        }
        Drop::BadTtl => "TTL/hop limit is not 255".into(),
        Drop::BadChecksum => "bad checksum".into(),
        Drop::BadLength => "bad length".into(),
        Drop::BadType => "bad type".into(),
        Drop::NotPeer => "source is not a configured unicast_peer".into(),
    }
}

fn primary_addr(nl: &mut Netlink, c: &InstanceConfig, ifindex: u32) -> Result<IpAddr> {
    if let Some(a) = c.unicast_src_ip {
        return Ok(a);
    }
    let vips: HashSet<IpAddr> = c.vips.iter().chain(&c.excluded).map(|v| v.addr).collect();
    match c.family {
        Family::V4 => nl
            .addrs(libc::AF_INET)?
            .into_iter()
            .find(|a| a.index == ifindex && a.flags & IFA_F_SECONDARY == 0 && !vips.contains(&a.addr))
            .map(|a| a.addr)
            .with_context(|| format!("instance {}: interface {} has no IPv4 address to send adverts from (add one, or set unicast_src_ip)", c.name, c.interface)),
        Family::V6 => nl
            .addrs(libc::AF_INET6)?
            .into_iter()
            .find(|a| {
                a.index == ifindex
                    && matches!(a.addr, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
                    && !vips.contains(&a.addr)
            })
            .map(|a| a.addr)
            .with_context(|| format!("instance {}: interface {} has no IPv6 link-local address", c.name, c.interface)),
    }
}

/// Run the daemon until SIGTERM/SIGINT.
pub fn run(opts: &Options) -> Result<()> {
    let cfg = load_config(&opts.config, &load_options(opts.config_id.clone()))?;
    if !opts.foreground {
        daemonize(opts.console_log)?;
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p)?;
    }
    let signals = sys::signalfd().context("signalfd")?;
    let mut nl = Netlink::open().context("netlink socket")?;
    // The vmacs first: their creation (down, then up) is not a link event for the instances.
    let mut vmacs = Vec::new();
    vmac::ensure(&cfg, &mut nl, &mut vmacs)?;
    let monitor = Netlink::monitor().context("netlink link monitor")?;
    let links = nl.links().context("listing interfaces")?;
    let setup = Setup::new(&cfg, &mut nl, &links)?;
    let mut local_addrs = local_addresses(&mut nl)?;
    remove_stale_vips(&mut nl, &setup.insts, &mut local_addrs);
    setup.statics.apply(&mut nl, true);
    let mut control = Control::new(bind_control(&opts.socket)?)?;
    let load = (opts.config.clone(), load_options(opts.config_id.clone()));
    let mut d = Daemon::new(cfg, load, nl, setup, local_addrs)?;
    d.vmacs = vmacs;
    log(&format!(
        "started (pid {}), {} instance(s), control socket {}",
        std::process::id(),
        d.insts.len(),
        opts.socket.display()
    ));
    d.start_router();
    loop {
        // Also rebuilt: a reload may change the number of VRRP sockets.
        let nfixed = 3 + d.socks.len();
        // Rebuilt each time: a re-created interface gets a new socket (Daemon::rebind).
        let mut fds: Vec<(i32, i16)> = vec![
            (signals.as_raw_fd(), libc::POLLIN),
            (monitor.raw_fd(), libc::POLLIN),
            (control.listener_fd(), libc::POLLIN),
        ];
        fds.extend(d.socks.iter().map(|s| (s.fd.as_raw_fd(), libc::POLLIN)));
        fds.extend(control.conn_fds());
        let next = earliest(d.next_deadline(), control.next_deadline());
        let timeout = poll_timeout_ms(d.now(), next);
        for r in sys::poll_events(&fds, timeout)? {
            match r {
                0 => {
                    if d.on_signals(signals.as_raw_fd()) {
                        d.shut_down(opts);
                        return Ok(());
                    }
                }
                1 => {
                    let ev = monitor.read_link_events();
                    d.on_links(ev);
                }
                2 => control.on_accept(d.now()),
                n if n < nfixed => d.on_socket(n - 3),
                n => {
                    let stats = control.stats.clone();
                    control.on_ready(n - nfixed, &mut |cmd| d.answer(cmd, &stats));
                }
            }
        }
        control.sweep(d.now());
        d.housekeeping();
    }
}

/// Read the configuration and print its warnings before daemonizing hides stderr.
fn load_config(path: &Path, opts: &config::LoadOptions) -> Result<Config> {
    let cfg = config::load_with(path, opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &cfg.warnings {
        eprintln!("vrrpd: {}:{}: warning: {}", w.file.display(), w.line, w.msg);
    }
    Ok(cfg)
}

/// Detach with daemon(3); logging goes to syslog unless `-l` keeps the console.
fn daemonize(console_log: bool) -> Result<()> {
    // SAFETY: daemon(3) before any thread or socket exists.
    if unsafe { libc::daemon(0, i32::from(console_log)) } < 0 {
        bail!("daemon(): {}", std::io::Error::last_os_error());
    }
    if !console_log {
        SYSLOG.store(true, Ordering::Relaxed);
        // SAFETY: static C string identifier.
        unsafe { libc::openlog(c"vrrpd".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    }
    Ok(())
}

/// Write our pid through a temporary file, so a reader never sees a partial one.
fn write_pid_file(p: &Path) -> Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| std::fs::rename(&tmp, p))
        .with_context(|| format!("writing pid file {}", p.display()))
}

/// What the configuration needs from the system: sockets, source addresses, watched links.
struct Setup {
    socks: Vec<VrrpSocket>,
    /// (interface, IPv6) of each socket: instances on the same one share it.
    sock_keys: Vec<(String, bool)>,
    insts: Vec<Inst>,
    primaries: Vec<IpAddr>,
    /// Every interface whose state matters, with its state at startup.
    watched: BTreeMap<String, bool>,
    /// The index of every watched interface that exists at startup.
    indexes: BTreeMap<String, u32>,
    statics: Statics,
}

impl Setup {
    /// Resolve every instance against the interfaces that exist, in configuration order.
    fn new(cfg: &Config, nl: &mut Netlink, links: &[Link]) -> Result<Setup> {
        let mut s = Setup {
            socks: Vec::new(),
            sock_keys: Vec::new(),
            insts: Vec::new(),
            primaries: Vec::new(),
            watched: BTreeMap::new(),
            indexes: BTreeMap::new(),
            statics: Statics::default(),
        };
        for c in &cfg.instances {
            let Some(l) = find_link(links, &c.interface) else {
                bail!(
                    "{}: instance {}: interface '{}' does not exist",
                    cfg.place(c.line),
                    c.name,
                    c.interface
                );
            };
            if let Err(e) = advert_fits(c, l.mtu) {
                bail!("{}: instance {}: {e}", cfg.place(c.line), c.name);
            }
            // With use_vmac (not vmac_xmit_base) adverts go out of the vmac, so they carry the
            // virtual MAC; the source address stays the parent's (the vmac has none).
            let send = find_link(links, c.send_if()).with_context(|| {
                format!(
                    "instance {}: interface '{}' does not exist",
                    c.name,
                    c.send_if()
                )
            })?;
            let sock = s.socket_for(c, send)?;
            let src = primary_addr(nl, c, l.index)?;
            let vips = instance_vips(cfg, c, links)?;
            let routes = routes::resolve(cfg, &c.routes, &c.rules, links)?;
            watch_instance_links(c, links, &mut s.watched);
            s.primaries.push(src);
            s.insts.push(Inst {
                cfg: c.clone(),
                sock,
                src,
                vips,
                routes,
                counters: Counters::default(),
                mismatch: None,
                garp: GarpSchedule::default(),
                last_heard: None,
                broken: (false, None),
            });
        }
        watch_group_links(cfg, links, &mut s.watched);
        s.statics = routes::statics(cfg, links)?;
        for name in s.watched.keys() {
            if let Some(l) = find_link(links, name) {
                s.indexes.insert(name.clone(), l.index);
            }
        }
        Ok(s)
    }

    /// The index of the socket for this instance's interface and family, opened on first use.
    fn socket_for(&mut self, c: &InstanceConfig, l: &Link) -> Result<usize> {
        let v6 = c.family == Family::V6;
        let key = (l.name.clone(), v6);
        if let Some(s) = self.sock_keys.iter().position(|k| *k == key) {
            return Ok(s);
        }
        self.socks.push(
            VrrpSocket::open(&l.name, l.index, v6)
                .with_context(|| format!("instance {}: socket on {}", c.name, l.name))?,
        );
        self.sock_keys.push(key);
        Ok(self.socks.len() - 1)
    }
}

/// The IP packet length of an instance's advert (IP header without options included).
fn advert_ip_len(c: &InstanceConfig) -> usize {
    let n = c.vips.len();
    match (c.version, c.family) {
        (Version::V2, _) => 20 + 16 + 4 * n,
        (Version::V3, Family::V4) => 20 + 8 + 4 * n,
        (Version::V3, Family::V6) => 40 + 8 + 16 * n,
    }
}

/// An advert must fit the interface MTU: a fragmented advert is lost with any fragment, and
/// keepalived drops what it cannot read (docs/security-vrrpd.md, Packet bounds).
fn advert_fits(c: &InstanceConfig, mtu: u32) -> Result<(), String> {
    let len = advert_ip_len(c);
    if mtu != 0 && len > mtu as usize {
        return Err(format!(
            "its advert ({} addresses, {len} bytes) exceeds the MTU {mtu} of {}: split the VIPs over several instances or move some to virtual_ipaddress_excluded",
            c.vips.len(),
            c.interface
        ));
    }
    Ok(())
}

/// The interface called `name`, if it exists.
fn find_link<'l>(links: &'l [Link], name: &str) -> Option<&'l Link> {
    links.iter().find(|l| l.name == name)
}

/// Every VIP of an instance (excluded ones too) as the netlink address to add, on its device.
fn instance_vips(cfg: &Config, c: &InstanceConfig, links: &[Link]) -> Result<Vec<Vip>> {
    let mut vips = Vec::new();
    for v in c.vips.iter().chain(&c.excluded) {
        let dev = v.dev.clone().unwrap_or_else(|| c.vip_dev().to_string());
        let Some(dl) = find_link(links, &dev) else {
            bail!(
                "{}: VIP {} on device '{dev}', which does not exist",
                cfg.place(v.line),
                v.addr
            );
        };
        vips.push(Vip {
            spec: AddrSpec {
                index: dl.index,
                addr: v.addr,
                prefix: v.prefix,
                brd: v.brd,
                label: v.label.clone(),
                scope: v.scope,
            },
            dev,
            mac: dl.mac,
        });
    }
    Ok(vips)
}

/// Watch an instance's VIP devices and tracked interfaces; a missing one counts as down.
fn watch_instance_links(c: &InstanceConfig, links: &[Link], watched: &mut BTreeMap<String, bool>) {
    let mut names: Vec<String> = c.vip_devices();
    names.extend(c.track_interfaces.iter().map(|t| t.name.clone()));
    for n in names {
        match find_link(links, &n) {
            Some(l) => {
                watched.insert(n, l.up);
            }
            None => {
                log(&format!(
                    "instance {}: tracked interface {n} does not exist: treated as down",
                    c.name
                ));
                watched.insert(n, false);
            }
        }
    }
}

/// Watch the sync groups' tracked interfaces; a missing one counts as down.
fn watch_group_links(cfg: &Config, links: &[Link], watched: &mut BTreeMap<String, bool>) {
    for g in &cfg.sync_groups {
        for t in &g.track_interfaces {
            watched.insert(
                t.name.clone(),
                find_link(links, &t.name).is_some_and(|l| l.up),
            );
        }
    }
}

/// Every address on the host now, to recognise our own adverts coming back.
fn local_addresses(nl: &mut Netlink) -> Result<HashSet<IpAddr>> {
    let mut local_addrs: HashSet<IpAddr> = HashSet::new();
    for fam in [libc::AF_INET, libc::AF_INET6] {
        for a in nl.addrs(fam)? {
            local_addrs.insert(a.addr);
        }
    }
    Ok(local_addrs)
}

/// docs/vrrp.md, Crash cleanup: VIPs left behind by a killed daemon still answer ARP.
fn remove_stale_vips(nl: &mut Netlink, insts: &[Inst], local_addrs: &mut HashSet<IpAddr>) {
    for i in insts {
        for v in &i.vips {
            if let Ok(true) = nl.del_addr(&v.spec) {
                log(&format!(
                    "instance {}: removed stale VIP {}/{} from {}",
                    i.cfg.name, v.spec.addr, v.spec.prefix, v.dev
                ));
            }
            local_addrs.remove(&v.spec.addr);
        }
        // A killed master's virtual routes and rules too (not there: nothing happens).
        i.routes
            .apply(nl, false, &format!("instance {} (stale)", i.cfg.name));
    }
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// poll(2) timeout until `next`: 0 if due, whole milliseconds rounded up, at most one second.
fn poll_timeout_ms(now: Time, next: Option<Time>) -> i32 {
    match next {
        Some(t) if t <= now => 0,
        Some(t) => ((t - now).as_micros().div_ceil(1000) as i32).min(1000),
        None => 1000,
    }
}

fn bind_control(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if UnixStream::connect(path).is_ok() {
        bail!(
            "another vrrpd is already listening on {} (use --socket to pick another path)",
            path.display()
        );
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    // Only root (and whoever root lets into the directory) may ask: docs/security-vrrpd.md.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    Ok(l)
}

/// Client side of `vrrpd status`.
pub fn query_status(socket: &Path) -> Result<Status> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is vrrpd running? pass --socket if it uses another path)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"status\n")?;
    let mut buf = String::new();
    BufReader::new(&s).read_line(&mut buf)?;
    serde_json::from_str(&buf).with_context(|| format!("bad reply from vrrpd: {buf}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    fn link(index: u32, name: &str, up: bool) -> Link {
        Link {
            index,
            name: name.into(),
            mac: [2, 0, 0, 0, 0, index as u8],
            up,
            mtu: 1500,
        }
    }

    fn conf(text: &str) -> Config {
        config::parse_str(text, Path::new("k.conf")).unwrap()
    }

    #[test]
    fn poll_timeout_rounds_up_and_caps() {
        assert_eq!(poll_timeout_ms(ms(500), None), 1000);
        assert_eq!(poll_timeout_ms(ms(500), Some(ms(500))), 0);
        assert_eq!(poll_timeout_ms(ms(500), Some(ms(100))), 0);
        assert_eq!(poll_timeout_ms(ms(500), Some(ms(501))), 1);
        let t = ms(500) + Duration::from_micros(1);
        assert_eq!(poll_timeout_ms(ms(500), Some(t)), 1);
        let t = ms(500) + Duration::from_micros(1001);
        assert_eq!(poll_timeout_ms(ms(500), Some(t)), 2);
        assert_eq!(poll_timeout_ms(ms(500), Some(ms(1499))), 999);
        assert_eq!(poll_timeout_ms(ms(500), Some(ms(1600))), 1000);
        assert_eq!(
            poll_timeout_ms(ms(0), Some(Duration::from_secs(86400))),
            1000
        );
    }

    #[test]
    fn adverts_must_fit_the_mtu() {
        let vips = |n: usize, v6: bool| {
            let mut s = String::from(
                "vrrp_instance a {\n interface e1\n virtual_router_id 1\n virtual_ipaddress {\n",
            );
            for k in 0..n {
                if v6 {
                    s.push_str(&format!(" fe80::{:x}/64\n", k + 1));
                } else {
                    s.push_str(&format!(" 10.0.{}.{}\n", k / 200, k % 200 + 1));
                }
            }
            s + " }\n}\n"
        };
        let c = conf(&vips(255, false));
        assert_eq!(advert_ip_len(&c.instances[0]), 20 + 16 + 4 * 255);
        assert!(advert_fits(&c.instances[0], 1500).is_ok());
        let c = conf(&vips(90, true));
        assert_eq!(advert_ip_len(&c.instances[0]), 40 + 8 + 16 * 90);
        assert!(advert_fits(&c.instances[0], 1500).is_ok());
        let c = conf(&vips(91, true));
        let e = advert_fits(&c.instances[0], 1500).unwrap_err();
        assert!(
            e.starts_with("its advert (91 addresses, 1504 bytes) exceeds the MTU 1500 of e1"),
            "{e}"
        );
        assert!(advert_fits(&c.instances[0], 9000).is_ok());
    }

    #[test]
    fn check_warns_when_the_vips_do_not_fit_one_advert() {
        let vips: String = (0..120)
            .map(|k| format!("   10.0.{}.{}/24\n", k / 200, k % 200 + 1))
            .collect();
        let cfg = conf(&format!(
            "vrrp_instance big {{\n interface e1\n virtual_router_id 1\n version 3\n virtual_ipaddress {{\n{vips} }}\n}}\nvrrp_instance small {{\n interface e2\n virtual_router_id 2\n virtual_ipaddress {{\n 10.1.0.1\n }}\n}}\n"
        ));
        // 120 IPv4 VIPs: 20 + 8 + 480 = 508 bytes.
        let mut l = link(3, "e1", true);
        l.mtu = 500;
        let w = mtu_warnings(&cfg, &[l.clone()]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "k.conf:1: warning: instance big: its advert (120 addresses, 508 bytes) exceeds the MTU 500 of e1"
            ),
            "{w:?}"
        );
        assert!(w[0].contains("split brain"));
        l.mtu = 1500;
        assert!(mtu_warnings(&cfg, &[l]).is_empty());
        assert!(
            mtu_warnings(&cfg, &[]).is_empty(),
            "508 fits the assumed 1500"
        );
    }

    #[test]
    fn reload_keeps_instances_changed_only_in_priority_or_lines() {
        let base = "vrrp_instance a {\n interface e1\n virtual_router_id 1\n priority 150\n virtual_ipaddress {\n 10.0.0.1/24\n }\n}\nvrrp_instance b {\n interface e1\n virtual_router_id 2\n virtual_ipaddress {\n 10.0.1.1/24\n }\n}\n";
        let old = conf(base);
        let moved = format!("\n\n{}", base.replace("priority 150", "priority 50"));
        assert_eq!(kept_instances(&old, &conf(&moved)), vec![Some(0), Some(1)]);
        let vip = base.replace("10.0.1.1/24", "10.0.1.2/24");
        assert_eq!(kept_instances(&old, &conf(&vip)), vec![Some(0), None]);
        let added = format!("{base}vrrp_instance c {{\n interface e1\n virtual_router_id 3\n}}\n");
        assert_eq!(
            kept_instances(&old, &conf(&added)),
            vec![Some(0), Some(1), None]
        );
        let grouped = format!("vrrp_sync_group g {{\n group {{\n a\n }}\n}}\n{base}");
        assert_eq!(kept_instances(&old, &conf(&grouped)), vec![None, Some(1)]);
    }

    #[test]
    fn earliest_deadline() {
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(ms(3)), None), Some(ms(3)));
        assert_eq!(earliest(None, Some(ms(4))), Some(ms(4)));
        assert_eq!(earliest(Some(ms(5)), Some(ms(4))), Some(ms(4)));
        assert_eq!(earliest(Some(ms(4)), Some(ms(5))), Some(ms(4)));
    }

    #[test]
    fn vips_resolve_to_their_devices() {
        let c = conf("vrrp_instance a {\n interface e1\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1/24 brd + label e1:v\n 10.0.1.1/24 dev e2 scope link\n }\n virtual_ipaddress_excluded {\n 2001:db8::1/64 dev e2\n }\n}\n");
        let links = [link(7, "e1", true), link(9, "e2", false)];
        let v = instance_vips(&c, &c.instances[0], &links).unwrap();
        let got: Vec<_> = v
            .iter()
            .map(|v| {
                (
                    v.dev.as_str(),
                    v.spec.index,
                    v.spec.addr.to_string(),
                    v.spec.prefix,
                    v.mac[5],
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("e1", 7, "10.0.0.1".to_string(), 24, 7),
                ("e2", 9, "10.0.1.1".to_string(), 24, 9),
                ("e2", 9, "2001:db8::1".to_string(), 64, 9),
            ]
        );
        assert_eq!(v[0].spec.brd, Some("10.0.0.255".parse().unwrap()));
        assert_eq!(v[0].spec.label.as_deref(), Some("e1:v"));
        assert_eq!((v[0].spec.scope, v[1].spec.scope), (0, 253));
        let e = instance_vips(&c, &c.instances[0], &links[..1])
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "k.conf:6: VIP 10.0.1.1 on device 'e2', which does not exist"
        );
    }

    #[test]
    fn watched_links_missing_count_as_down() {
        let c = conf("vrrp_sync_group g {\n group {\n a\n }\n track_interface {\n t1\n t9\n }\n}\nvrrp_instance a {\n interface e1\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1 dev e2\n }\n track_interface {\n t2\n t8\n }\n}\n");
        let links = [
            link(1, "e1", true),
            link(2, "e2", false),
            link(3, "t1", true),
            link(4, "t2", true),
            link(5, "x", false),
        ];
        let mut w = BTreeMap::new();
        watch_instance_links(&c.instances[0], &links, &mut w);
        let got: Vec<_> = w.iter().map(|(n, u)| (n.as_str(), *u)).collect();
        assert_eq!(
            got,
            [("e1", true), ("e2", false), ("t2", true), ("t8", false)]
        );
        watch_group_links(&c, &links, &mut w);
        let got: Vec<_> = w.iter().map(|(n, u)| (n.as_str(), *u)).collect();
        assert_eq!(
            got,
            [
                ("e1", true),
                ("e2", false),
                ("t1", true),
                ("t2", true),
                ("t8", false),
                ("t9", false)
            ]
        );
        assert_eq!(find_link(&links, "t2").map(|l| l.index), Some(4));
        assert!(find_link(&links, "t8").is_none());
    }
}
