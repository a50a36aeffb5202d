//! One common spanning tree (CST) over all of a switch's VLANs, as the forwarding core
//! uses it: switch port `p` (1..=numports) is [`Bridge`] port `p - 1`, BPDUs go untagged,
//! and a port's state gates every VLAN alike. Port 0 (the management port) is not part of
//! the tree and always forwards. Pure: time comes in as the core's `now_ms`.

use super::bpdu::{Bpdu, BridgeId};
use super::fsm::{Bridge, PortRole, PortState, Ticks, Timers};
use super::rstp;
use crate::core::PortId;

/// Which protocol the tree runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 802.1D-1998 STP ([`super::fsm`]).
    Stp,
    /// RSTP ([`super::rstp`]), falling back to STP per port when it hears STP.
    Rstp,
}

impl Mode {
    /// `stp` or `rstp`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Stp => "stp",
            Mode::Rstp => "rstp",
        }
    }
}

/// A port role of either protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Disabled,
    Root,
    Designated,
    /// STP: neither root nor designated.
    Blocked,
    /// RSTP: a path to the root in reserve.
    Alternate,
    /// RSTP: another port of ours is designated for the segment.
    Backup,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Disabled => "disabled",
            Role::Root => "root",
            Role::Designated => "designated",
            Role::Blocked => "blocked",
            Role::Alternate => "alternate",
            Role::Backup => "backup",
        }
    }
}

/// One bridge of either protocol, with the calls both answer.
#[derive(Debug, Clone)]
pub enum Tree {
    Stp(Bridge),
    Rstp(rstp::Bridge),
}

macro_rules! both {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Tree::Stp($b) => $e,
            Tree::Rstp($b) => $e,
        }
    };
}

impl Tree {
    /// A bridge of `mode` with `ports` ports, all link-up.
    pub fn new(
        mode: Mode,
        id: BridgeId,
        ports: usize,
        t: Timers,
        now: Ticks,
    ) -> (Tree, Vec<(usize, Bpdu)>) {
        match mode {
            Mode::Stp => {
                let (b, o) = Bridge::new(id, ports, t, now);
                (Tree::Stp(b), o)
            }
            Mode::Rstp => {
                let (b, o) = rstp::Bridge::new(id, ports, t, now);
                (Tree::Rstp(b), o)
            }
        }
    }
    pub fn mode(&self) -> Mode {
        match self {
            Tree::Stp(_) => Mode::Stp,
            Tree::Rstp(_) => Mode::Rstp,
        }
    }
    pub fn receive(&mut self, port: usize, b: &Bpdu, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.receive(port, b, now))
    }
    pub fn tick(&mut self, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.tick(now))
    }
    pub fn link_up(&mut self, port: usize, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.link_up(port, now))
    }
    pub fn link_down(&mut self, port: usize, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.link_down(port, now))
    }
    pub fn set_priority(&mut self, prio: u16, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.set_priority(prio, now))
    }
    pub fn change_path_cost(&mut self, port: usize, cost: u32, now: Ticks) -> Vec<(usize, Bpdu)> {
        both!(self, x => x.change_path_cost(port, cost, now))
    }
    pub fn set_timers(&mut self, t: Timers, now: Ticks) -> Vec<(usize, Bpdu)> {
        match self {
            Tree::Stp(b) => {
                b.set_timers(t);
                vec![]
            }
            Tree::Rstp(b) => b.set_timers(t, now),
        }
    }
    pub fn set_ports(&mut self, n: usize) {
        both!(self, x => x.set_ports(n))
    }
    pub fn id(&self) -> BridgeId {
        both!(self, x => x.id())
    }
    pub fn root(&self) -> BridgeId {
        both!(self, x => x.root())
    }
    pub fn root_port(&self) -> Option<usize> {
        both!(self, x => x.root_port())
    }
    pub fn root_cost(&self) -> u32 {
        both!(self, x => x.root_cost())
    }
    pub fn timers(&self) -> Timers {
        both!(self, x => x.timers())
    }
    pub fn conf(&self) -> Timers {
        both!(self, x => x.conf())
    }
    pub fn topology_change(&self) -> bool {
        both!(self, x => x.topology_change())
    }
    pub fn ports(&self) -> usize {
        both!(self, x => x.ports())
    }
    pub fn state(&self, port: usize) -> PortState {
        both!(self, x => x.state(port))
    }
    pub fn port_id(&self, port: usize) -> u16 {
        both!(self, x => x.port_id(port))
    }
    pub fn path_cost(&self, port: usize) -> u32 {
        both!(self, x => x.path_cost(port))
    }
    pub fn designated(&self, port: usize) -> (BridgeId, u32, BridgeId, u16) {
        both!(self, x => x.designated(port))
    }
    pub fn role(&self, port: usize) -> Role {
        match self {
            Tree::Stp(b) => match b.role(port) {
                PortRole::Disabled => Role::Disabled,
                PortRole::Root => Role::Root,
                PortRole::Designated => Role::Designated,
                PortRole::Blocked => Role::Blocked,
            },
            Tree::Rstp(b) => match b.role(port) {
                rstp::Role::Disabled => Role::Disabled,
                rstp::Role::Root => Role::Root,
                rstp::Role::Designated => Role::Designated,
                rstp::Role::Alternate => Role::Alternate,
                rstp::Role::Backup => Role::Backup,
            },
        }
    }
    /// The RSTP bridge, if that is what runs.
    pub fn rstp(&self) -> Option<&rstp::Bridge> {
        match self {
            Tree::Rstp(b) => Some(b),
            Tree::Stp(_) => None,
        }
    }
    /// Ports whose addresses must go now (RSTP flushes instead of aging fast).
    fn take_flush(&mut self) -> Vec<usize> {
        match self {
            Tree::Rstp(b) => b.take_flush(),
            Tree::Stp(_) => vec![],
        }
    }
}

/// Per-port spanning tree counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StpCounters {
    /// BPDUs received (decoded or not).
    pub bpdu_in: u64,
    /// BPDUs that did not decode.
    pub bpdu_bad: u64,
    /// BPDUs sent.
    pub bpdu_out: u64,
    /// Data frames discarded on ingress because the port was not Learning or Forwarding,
    /// or Learning only.
    pub discarded: u64,
}

/// A switch's spanning tree.
#[derive(Debug, Clone)]
pub struct Cst {
    pub bridge: Tree,
    /// Source address of our BPDUs.
    pub mac: [u8; 6],
    /// Index = switch port.
    pub counters: Vec<StpCounters>,
    /// Encoded BPDU frames to send, by switch port.
    out: Vec<(PortId, Vec<u8>)>,
    /// Port states after the last event, to see which ports just stopped forwarding.
    seen: Vec<PortState>,
}

/// The core's milliseconds as the fsm's 1/256 s.
pub fn ticks(now_ms: u64) -> Ticks {
    now_ms.saturating_mul(256) / 1000
}

/// 1/256 s as milliseconds.
pub fn ms(t: u16) -> u64 {
    u64::from(t) * 1000 / 256
}

impl Cst {
    /// A tree for ports 1..=numports, all link-down until [`Cst::link`] says otherwise.
    pub fn new(mac: [u8; 6], priority: u16, numports: u16, timers: Timers, now_ms: u64) -> Cst {
        Cst::with_mode(Mode::Stp, mac, priority, numports, timers, now_ms)
    }

    /// [`Cst::new`] running `mode`.
    pub fn with_mode(
        mode: Mode,
        mac: [u8; 6],
        priority: u16,
        numports: u16,
        timers: Timers,
        now_ms: u64,
    ) -> Cst {
        let id = BridgeId { priority, mac };
        let n = numports as usize;
        let (mut bridge, _) = Tree::new(mode, id, n, timers, ticks(now_ms));
        for p in 0..n {
            let _ = bridge.link_down(p, ticks(now_ms));
        }
        Cst {
            bridge,
            mac,
            counters: vec![StpCounters::default(); n + 1],
            out: Vec::new(),
            seen: vec![PortState::Disabled; n],
        }
    }

    fn index(&self, p: PortId) -> Option<usize> {
        (p >= 1 && (p as usize) <= self.bridge.ports()).then(|| p as usize - 1)
    }

    /// The state of switch port `p` (port 0 and ports outside the tree: Forwarding).
    pub fn state(&self, p: PortId) -> PortState {
        self.index(p)
            .map_or(PortState::Forwarding, |i| self.bridge.state(i))
    }

    /// Whether data frames may leave through `p`.
    #[inline]
    pub fn forwards(&self, p: PortId) -> bool {
        self.state(p) == PortState::Forwarding
    }

    fn emit(&mut self, out: Vec<(usize, Bpdu)>) {
        for (i, b) in out {
            let p = i as PortId + 1;
            self.counters[p as usize].bpdu_out += 1;
            self.out.push((p, b.encode_frame(self.mac)));
        }
    }

    /// Ports whose state just became Blocking or Disabled (their addresses must go).
    fn stopped(&mut self) -> Vec<PortId> {
        let mut v: Vec<PortId> = (self.bridge.take_flush().into_iter())
            .map(|i| i as PortId + 1)
            .collect();
        for i in 0..self.seen.len() {
            let s = self.bridge.state(i);
            let old = std::mem::replace(&mut self.seen[i], s);
            if old != s && matches!(s, PortState::Blocking | PortState::Disabled) {
                v.push(i as PortId + 1);
            }
        }
        v
    }

    /// Tells the tree whether port `p` has a link (a client attached). Returns the ports
    /// that stopped forwarding.
    pub fn link(&mut self, p: PortId, up: bool, now_ms: u64) -> Vec<PortId> {
        let Some(i) = self.index(p) else {
            return vec![];
        };
        let down = self.bridge.state(i) == PortState::Disabled;
        let out = match (up, down) {
            (true, true) => self.bridge.link_up(i, ticks(now_ms)),
            (false, false) => self.bridge.link_down(i, ticks(now_ms)),
            _ => return vec![],
        };
        self.emit(out);
        self.stopped()
    }

    /// A frame to the bridge group address arrived on `p`.
    pub fn receive(&mut self, p: PortId, frame: &[u8], now_ms: u64) -> Vec<PortId> {
        let Some(i) = self.index(p) else {
            return vec![];
        };
        self.counters[p as usize].bpdu_in += 1;
        match Bpdu::decode_frame(frame) {
            Ok((_, b)) => {
                let out = self.bridge.receive(i, &b, ticks(now_ms));
                self.emit(out);
            }
            Err(_) => self.counters[p as usize].bpdu_bad += 1,
        }
        self.stopped()
    }

    /// Runs the timers.
    pub fn tick(&mut self, now_ms: u64) -> Vec<PortId> {
        let out = self.bridge.tick(ticks(now_ms));
        self.emit(out);
        self.stopped()
    }

    /// `port/setnumports`: the tree follows (new ports start link-down).
    pub fn resize(&mut self, numports: u16) {
        let n = numports as usize;
        self.bridge.set_ports(n);
        self.counters.resize(n + 1, StpCounters::default());
        self.seen.resize(n, PortState::Disabled);
    }

    /// `stp/setprio`.
    pub fn set_priority(&mut self, prio: u16, now_ms: u64) -> Vec<PortId> {
        let out = self.bridge.set_priority(prio, ticks(now_ms));
        self.emit(out);
        self.stopped()
    }

    /// `stp/setmode`: a new tree of `mode` with the same bridge id, timers and port costs;
    /// ports with a link come up in it at once.
    pub fn set_mode(&mut self, mode: Mode, now_ms: u64) -> Vec<PortId> {
        if mode == self.bridge.mode() {
            return vec![];
        }
        let b = &self.bridge;
        let (id, n, conf) = (b.id(), b.ports(), b.conf());
        let up: Vec<bool> = (0..n).map(|i| b.state(i) != PortState::Disabled).collect();
        let costs: Vec<u32> = (0..n).map(|i| b.path_cost(i)).collect();
        let now = ticks(now_ms);
        let (mut t, _) = Tree::new(mode, id, n, conf, now);
        for (i, &c) in costs.iter().enumerate() {
            let _ = t.link_down(i, now);
            let _ = t.change_path_cost(i, c, now);
        }
        self.bridge = t;
        let mut stopped: Vec<PortId> = (1..=n as PortId).collect();
        for (i, &u) in up.iter().enumerate() {
            if u {
                let out = self.bridge.link_up(i, now);
                self.emit(out);
            }
        }
        stopped.extend(self.stopped());
        stopped
    }

    /// `stp/sethello` and the other timers.
    pub fn set_timers(&mut self, t: Timers, now_ms: u64) -> Vec<PortId> {
        let out = self.bridge.set_timers(t, ticks(now_ms));
        self.emit(out);
        self.stopped()
    }

    /// An RSTP per-port setting on switch port `p` (`stp/setedge`, `stp/setautoedge`,
    /// `stp/setp2p`, `stp/setportprio`, `stp/mcheck`): None when `p` is not in the tree or
    /// the tree is not RSTP.
    pub fn rstp_port(
        &mut self,
        p: PortId,
        now_ms: u64,
        f: impl FnOnce(&mut rstp::Bridge, usize, Ticks) -> Vec<(usize, Bpdu)>,
    ) -> Option<Vec<PortId>> {
        let i = self.index(p)?;
        let Tree::Rstp(b) = &mut self.bridge else {
            return None;
        };
        let out = f(b, i, ticks(now_ms));
        self.emit(out);
        Some(self.stopped())
    }

    /// `stp/setcost`; false when `p` is not in the tree.
    pub fn set_cost(&mut self, p: PortId, cost: u32, now_ms: u64) -> Option<Vec<PortId>> {
        let i = self.index(p)?;
        let out = self.bridge.change_path_cost(i, cost, ticks(now_ms));
        self.emit(out);
        Some(self.stopped())
    }

    /// The BPDU frames queued since the last call, by switch port.
    pub fn take_out(&mut self) -> Vec<(PortId, Vec<u8>)> {
        std::mem::take(&mut self.out)
    }

    /// How long learnt addresses live during an 802.1D topology change: forward delay
    /// (802.1D 8.3.5), None when there is none. RSTP flushes ports instead.
    pub fn fast_aging_ms(&self) -> Option<u64> {
        let stp = self.bridge.mode() == Mode::Stp;
        (stp && self.bridge.topology_change()).then(|| ms(self.bridge.timers().forward_delay))
    }
}
