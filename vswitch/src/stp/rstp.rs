//! RSTP (802.1w, as consolidated in 802.1D-2004 clause 17) for one bridge, pure: events in
//! ([`Bridge::receive`], [`Bridge::tick`], [`Bridge::link_up`], [`Bridge::link_down`]) with
//! the time passed in, BPDUs out (port index, BPDU), as [`super::fsm`] does for 802.1D-1998.
//!
//! The standard's per-port state machines (17.23-17.29: port information, role selection,
//! role transitions, state transitions, topology change, protocol migration, bridge
//! detection, transmit) are transcribed as functions that each take at most one transition;
//! [`Bridge::run`] calls them until none moves, which is how their concurrent semantics
//! settle. The standard's down-counting timers are deadlines: `xWhile == 0` is
//! `deadline <= now`, `xWhile = v` is `deadline = now + v`.
//!
//! Deviations, on purpose: `allSynced` ignores the root port (as 802.1Q-2011 13.26.1 says;
//! 802.1D-2004's wording would make the root port wait for itself); the root port also
//! has 802.1Q's ROOT_SYNCED transition; a TCN BPDU sets `rcvdTcn` (17.21.17) although the
//! PIM's OTHER state would not call `setTcFlags`. Point-to-point `auto` means yes: a vswitch
//! port is one cable.

use super::bpdu::{flags, Bpdu, BridgeId, Config, Role as WireRole};
use super::fsm::{PortState, Ticks, Timers, DEFAULT_PATH_COST};

/// One second in [`Ticks`].
const SEC: Ticks = 256;
/// 17.13.9: how long protocol migration waits before it believes what it hears.
pub const MIGRATE_TIME: Ticks = 3 * SEC;
/// 17.13.12: BPDUs a port may send per second.
pub const TX_HOLD_COUNT: u8 = 6;

/// Port role (17.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Link down.
    Disabled,
    /// The best path to the root.
    Root,
    /// This bridge is the best path to the root for the segment.
    Designated,
    /// Another bridge offers a path to the root; discards, ready to take over as root port.
    Alternate,
    /// Another port of this bridge is designated for the segment; discards.
    Backup,
}

/// Point-to-point setting of a port (`adminPointToPointMAC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P2p {
    /// Decide from the link: a vswitch port is one cable, so yes.
    Auto,
    /// Point to point: proposal/agreement may move the port to forwarding at once.
    Yes,
    /// Shared: only timers move the port.
    No,
}

/// Priority vector (17.6): root, root path cost, designated bridge, designated port, and
/// the receiving port; lower is better, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Vector {
    root: BridgeId,
    cost: u32,
    bridge: BridgeId,
    port: u16,
    rx: u16,
}

impl Vector {
    fn head(&self) -> (BridgeId, u32, BridgeId, u16) {
        (self.root, self.cost, self.bridge, self.port)
    }
    /// 17.6: better, or different news from the same transmitter (bridge address and port
    /// number), which replaces what it said before.
    fn superior(&self, o: &Vector) -> bool {
        let same_tx = self.bridge.mac == o.bridge.mac && self.port & 0x0fff == o.port & 0x0fff;
        self.head() < o.head() || (same_tx && self.head() != o.head())
    }
}

/// The times a BPDU carries (1/256 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Times {
    message_age: u16,
    max_age: u16,
    forward_delay: u16,
    hello_time: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InfoIs {
    Disabled,
    Mine,
    Aged,
    Received,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RcvdInfo {
    SuperiorDesignated,
    RepeatedDesignated,
    InferiorDesignated,
    InferiorRootAlternate,
    Other,
}

/// Resting states of the port information machine (17.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pim {
    Disabled,
    Aged,
    Current,
}

/// Resting states of the port role transitions machine (17.29).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prt {
    Disable,
    Disabled,
    Root,
    Designated,
    Block,
    Alternate,
}

/// Resting states of the topology change machine (17.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tcm {
    Inactive,
    Learning,
    Active,
}

/// Port protocol migration (17.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ppm {
    CheckingRstp,
    SelectingStp,
    Sensing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Config,
    Rst,
    Tcn,
}

#[derive(Debug, Clone)]
struct Port {
    id: u16,
    path_cost: u32,
    admin_edge: bool,
    auto_edge: bool,
    p2p: P2p,
    enabled: bool,
    pim: Pim,
    prt: Prt,
    tcm: Tcm,
    ppm: Ppm,
    role: Role,
    selected_role: Role,
    info_is: InfoIs,
    port_pri: Vector,
    port_times: Times,
    desg_pri: Vector,
    desg_times: Times,
    msg_pri: Vector,
    msg_times: Times,
    msg_flags: u8,
    msg_kind: Kind,
    rcvd_msg: bool,
    selected: bool,
    updt_info: bool,
    reselect: bool,
    proposing: bool,
    proposed: bool,
    agree: bool,
    agreed: bool,
    sync: bool,
    synced: bool,
    re_root: bool,
    learn: bool,
    learning: bool,
    forward: bool,
    forwarding: bool,
    rcvd_tc: bool,
    rcvd_tcn: bool,
    rcvd_tc_ack: bool,
    tc_prop: bool,
    tc_ack: bool,
    new_info: bool,
    tx_count: u8,
    rcvd_rstp: bool,
    rcvd_stp: bool,
    send_rstp: bool,
    mcheck: bool,
    oper_edge: bool,
    hello_when: Ticks,
    tc_while: Ticks,
    fd_while: Ticks,
    rcvd_info_while: Ticks,
    rr_while: Ticks,
    rb_while: Ticks,
    mdelay_while: Ticks,
    edge_delay_while: Ticks,
}

impl Port {
    fn new(id: u16, v: Vector, t: Times, enabled: bool) -> Port {
        Port {
            id,
            path_cost: DEFAULT_PATH_COST,
            admin_edge: false,
            auto_edge: true,
            p2p: P2p::Auto,
            enabled,
            pim: Pim::Disabled,
            prt: Prt::Disable,
            tcm: Tcm::Inactive,
            ppm: Ppm::CheckingRstp,
            role: Role::Disabled,
            selected_role: Role::Disabled,
            info_is: InfoIs::Disabled,
            port_pri: v,
            port_times: t,
            desg_pri: v,
            desg_times: t,
            msg_pri: v,
            msg_times: t,
            msg_flags: 0,
            msg_kind: Kind::Tcn,
            rcvd_msg: false,
            selected: false,
            updt_info: false,
            reselect: false,
            proposing: false,
            proposed: false,
            agree: false,
            agreed: false,
            sync: false,
            synced: false,
            re_root: false,
            learn: false,
            learning: false,
            forward: false,
            forwarding: false,
            rcvd_tc: false,
            rcvd_tcn: false,
            rcvd_tc_ack: false,
            tc_prop: false,
            tc_ack: false,
            new_info: false,
            tx_count: 0,
            rcvd_rstp: false,
            rcvd_stp: false,
            send_rstp: true,
            mcheck: false,
            oper_edge: false,
            hello_when: 0,
            tc_while: 0,
            fd_while: 0,
            rcvd_info_while: 0,
            rr_while: 0,
            rb_while: 0,
            mdelay_while: 0,
            edge_delay_while: 0,
        }
    }

    fn p2p(&self) -> bool {
        self.p2p != P2p::No
    }
    /// 17.20.6 forwardDelay: Hello Time while RSTP is spoken (only the rapid path then needs
    /// a timer at all), Forward Delay with STP neighbours.
    fn forward_delay(&self) -> Ticks {
        match self.send_rstp {
            true => Ticks::from(self.desg_times.hello_time),
            false => Ticks::from(self.desg_times.forward_delay),
        }
    }
    fn fwd_delay(&self) -> Ticks {
        Ticks::from(self.desg_times.forward_delay)
    }
    fn max_age(&self) -> Ticks {
        Ticks::from(self.desg_times.max_age)
    }
    fn hello(&self) -> Ticks {
        Ticks::from(self.desg_times.hello_time)
    }
    fn edge_delay(&self) -> Ticks {
        match self.p2p() {
            true => MIGRATE_TIME,
            false => self.max_age(),
        }
    }
    fn root_or_designated(&self) -> bool {
        matches!(self.role, Role::Root | Role::Designated)
    }
}

/// Rounds 1/256 s to the nearest whole second.
fn round_sec(t: u32) -> u16 {
    ((t + 128) / 256 * 256).min(u32::from(u16::MAX)) as u16
}

type Out = Vec<(usize, Bpdu)>;

/// One bridge running RSTP. Ports are indices `0..ports`; port `i` has port id
/// `0x8000 | (i + 1)` until [`Bridge::set_port_priority`]. Methods taking a port panic when
/// it is out of range.
#[derive(Debug, Clone)]
pub struct Bridge {
    id: BridgeId,
    conf: Timers,
    ports: Vec<Port>,
    root_pri: Vector,
    root_port: Option<usize>,
    root_times: Times,
    next_second: Ticks,
    /// Ports whose learnt addresses must go (fdbFlush), since the last [`Bridge::take_flush`].
    flush: Vec<usize>,
    now: Ticks,
    out: Out,
}

impl Bridge {
    /// A bridge with `ports` ports, all link-up, after BEGIN.
    pub fn new(id: BridgeId, ports: usize, conf: Timers, now: Ticks) -> (Bridge, Out) {
        let mut b = Bridge {
            id,
            conf,
            ports: Vec::new(),
            root_pri: Vector {
                root: id,
                cost: 0,
                bridge: id,
                port: 0,
                rx: 0,
            },
            root_port: None,
            root_times: Times::default(),
            next_second: now + SEC,
            flush: Vec::new(),
            now,
            out: Vec::new(),
        };
        b.root_times = b.bridge_times();
        b.add_ports(ports, true);
        b.run();
        let out = std::mem::take(&mut b.out);
        (b, out)
    }

    fn bridge_times(&self) -> Times {
        Times {
            message_age: 0,
            max_age: self.conf.max_age,
            forward_delay: self.conf.forward_delay,
            hello_time: self.conf.hello_time,
        }
    }

    /// New ports, through BEGIN of every per-port machine.
    fn add_ports(&mut self, n: usize, enabled: bool) {
        let (v, t) = (self.root_pri, self.bridge_times());
        while self.ports.len() < n {
            let i = self.ports.len();
            let id = 0x8000 | (i as u16 + 1);
            let mut p = Port::new(id, v, t, enabled);
            p.desg_pri = Vector {
                bridge: self.id,
                port: id,
                rx: id,
                ..v
            };
            self.ports.push(p);
            self.begin_port(i);
        }
    }

    fn begin_port(&mut self, i: usize) {
        self.pim_disabled(i);
        let now = self.now;
        let p = &mut self.ports[i];
        // PRT INIT_PORT, then DISABLE_PORT.
        (p.role, p.learn, p.forward, p.synced) = (Role::Disabled, false, false, false);
        (p.sync, p.re_root) = (true, true);
        (p.rr_while, p.fd_while, p.rb_while) = (now + p.fwd_delay(), now + p.max_age(), now);
        p.prt = Prt::Disable;
        p.selected_role = Role::Disabled;
        // PST DISCARDING, TCM INACTIVE, PPM CHECKING_RSTP, BDM, PTX TRANSMIT_INIT + IDLE.
        (p.learning, p.forwarding) = (false, false);
        self.tcm_inactive(i);
        self.ppm_checking(i);
        let p = &mut self.ports[i];
        p.oper_edge = p.admin_edge;
        (p.new_info, p.tx_count, p.hello_when) = (true, 0, now + p.hello());
    }

    /// Runs the state machines until none can move. Returns nothing: BPDUs go to `out`.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = self.prs();
            for i in 0..self.ports.len() {
                moved |= self.pim(i);
                moved |= self.prt(i);
                moved |= self.pst(i);
                moved |= self.tcm(i);
                moved |= self.ppm(i);
                moved |= self.bdm(i);
                moved |= self.ptx(i);
            }
            if !moved {
                return;
            }
        }
        debug_assert!(false, "RSTP state machines did not settle");
    }

    fn events(&mut self, now: Ticks, f: impl FnOnce(&mut Bridge)) -> Out {
        self.now = self.now.max(now);
        f(self);
        self.run();
        std::mem::take(&mut self.out)
    }

    /// A BPDU arrived on `port` (the port receive machine, 17.23).
    pub fn receive(&mut self, port: usize, bpdu: &Bpdu, now: Ticks) -> Out {
        self.events(now, |b| b.rx(port, bpdu))
    }

    fn rx(&mut self, i: usize, bpdu: &Bpdu) {
        let now = self.now;
        let p = &mut self.ports[i];
        if !p.enabled {
            return;
        }
        let (kind, c) = match bpdu {
            Bpdu::Config(c) => (Kind::Config, Some(c)),
            Bpdu::Rst(c) => (Kind::Rst, Some(c)),
            Bpdu::Tcn => (Kind::Tcn, None),
        };
        // updtBPDUVersion
        match kind {
            Kind::Rst => p.rcvd_rstp = true,
            _ => p.rcvd_stp = true,
        }
        (p.oper_edge, p.rcvd_msg) = (false, true);
        p.edge_delay_while = now + MIGRATE_TIME;
        p.msg_kind = kind;
        if let Some(c) = c {
            p.msg_flags = c.flags;
            p.msg_pri = Vector {
                root: c.root,
                cost: c.root_path_cost,
                bridge: c.bridge,
                port: c.port_id,
                rx: p.id,
            };
            p.msg_times = Times {
                message_age: c.message_age,
                max_age: c.max_age,
                forward_delay: c.forward_delay,
                hello_time: c.hello_time.max(SEC as u16),
            };
        }
    }

    /// Runs the timers due by `now`. Call it every quarter second or so.
    pub fn tick(&mut self, now: Ticks) -> Out {
        self.events(now, |b| {
            if b.now >= b.next_second {
                b.next_second = b.now + SEC;
                for p in &mut b.ports {
                    p.tx_count = p.tx_count.saturating_sub(1);
                }
            }
        })
    }

    /// The port's link came up.
    pub fn link_up(&mut self, port: usize, now: Ticks) -> Out {
        self.events(now, |b| b.ports[port].enabled = true)
    }

    /// The port's link went down.
    pub fn link_down(&mut self, port: usize, now: Ticks) -> Out {
        self.events(now, |b| b.ports[port].enabled = false)
    }

    /// Asks every port to recompute (17.13: a management change).
    fn reselect_all(&mut self) {
        for p in &mut self.ports {
            (p.reselect, p.selected) = (true, false);
        }
    }

    /// Sets the bridge priority; the tree is recomputed at once.
    pub fn set_priority(&mut self, priority: u16, now: Ticks) -> Out {
        self.events(now, |b| {
            b.id.priority = priority;
            b.reselect_all();
        })
    }

    /// Sets a port's path cost; the tree is recomputed at once.
    pub fn change_path_cost(&mut self, port: usize, cost: u32, now: Ticks) -> Out {
        self.events(now, |b| {
            b.ports[port].path_cost = cost;
            b.reselect_all();
        })
    }

    /// Sets a port's priority (0..=240 in steps of 16, the high four bits of its port id).
    pub fn set_port_priority(&mut self, port: usize, prio: u8, now: Ticks) -> Out {
        self.events(now, |b| {
            let p = &mut b.ports[port];
            p.id = (u16::from(prio & 0xf0) << 8) | (p.id & 0x0fff);
            b.reselect_all();
        })
    }

    /// Sets the timers this bridge uses as root.
    pub fn set_timers(&mut self, t: Timers, now: Ticks) -> Out {
        self.events(now, |b| {
            b.conf = t;
            b.reselect_all();
        })
    }

    /// adminEdge: an edge port forwards as soon as its link is up, until a BPDU arrives.
    pub fn set_admin_edge(&mut self, port: usize, on: bool, now: Ticks) -> Out {
        self.events(now, |b| {
            let p = &mut b.ports[port];
            (p.admin_edge, p.oper_edge) = (on, on);
        })
    }

    /// autoEdge: a designated port that hears no BPDU for the edge delay becomes edge.
    pub fn set_auto_edge(&mut self, port: usize, on: bool, now: Ticks) -> Out {
        self.events(now, |b| b.ports[port].auto_edge = on)
    }

    /// adminPointToPointMAC.
    pub fn set_p2p(&mut self, port: usize, p2p: P2p, now: Ticks) -> Out {
        self.events(now, |b| b.ports[port].p2p = p2p)
    }

    /// mcheck (17.19.13): try RSTP again on a port that fell back to STP.
    pub fn mcheck(&mut self, port: usize, now: Ticks) -> Out {
        self.events(now, |b| b.ports[port].mcheck = true)
    }

    /// Grows or shrinks the bridge to `ports` ports; new ports start link-down.
    pub fn set_ports(&mut self, ports: usize) {
        self.ports.truncate(ports);
        self.add_ports(ports, false);
        if self.root_port.is_some_and(|p| p >= ports) {
            self.root_port = None;
        }
        self.reselect_all();
        self.run();
    }

    /// Ports whose learnt addresses must be flushed, since the last call.
    pub fn take_flush(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.flush)
    }

    /// This bridge's id.
    pub fn id(&self) -> BridgeId {
        self.id
    }
    /// The root this bridge believes in.
    pub fn root(&self) -> BridgeId {
        self.root_pri.root
    }
    /// The cost of our path to the root.
    pub fn root_cost(&self) -> u32 {
        self.root_pri.cost
    }
    /// The port towards the root (None on the root).
    pub fn root_port(&self) -> Option<usize> {
        self.root_port
    }
    /// The timers in use (the root's, as relayed).
    pub fn timers(&self) -> Timers {
        Timers {
            max_age: self.root_times.max_age,
            hello_time: self.root_times.hello_time,
            forward_delay: self.root_times.forward_delay,
        }
    }
    /// The timers configured here.
    pub fn conf(&self) -> Timers {
        self.conf
    }
    /// Whether some port is announcing a topology change (its tcWhile runs).
    pub fn topology_change(&self) -> bool {
        self.ports.iter().any(|p| p.tc_while > self.now)
    }
    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }
    /// A port's state: Disabled (link down), Blocking (discarding), Learning, Forwarding.
    pub fn state(&self, port: usize) -> PortState {
        let p = &self.ports[port];
        match (p.enabled, p.learning, p.forwarding) {
            (false, ..) => PortState::Disabled,
            (true, _, true) => PortState::Forwarding,
            (true, true, false) => PortState::Learning,
            _ => PortState::Blocking,
        }
    }
    /// A port's role.
    pub fn role(&self, port: usize) -> Role {
        self.ports[port].role
    }
    /// A port's id.
    pub fn port_id(&self, port: usize) -> u16 {
        self.ports[port].id
    }
    /// A port's path cost.
    pub fn path_cost(&self, port: usize) -> u32 {
        self.ports[port].path_cost
    }
    /// The priority vector held for a port's segment: root, cost, designated bridge, port.
    pub fn designated(&self, port: usize) -> (BridgeId, u32, BridgeId, u16) {
        let v = self.ports[port].port_pri;
        (v.root, v.cost, v.bridge, v.port)
    }
    /// Whether the port speaks RSTP (false: it fell back to 802.1D BPDUs).
    pub fn sends_rstp(&self, port: usize) -> bool {
        self.ports[port].send_rstp
    }
    /// (adminEdge, autoEdge, operEdge).
    pub fn edge(&self, port: usize) -> (bool, bool, bool) {
        let p = &self.ports[port];
        (p.admin_edge, p.auto_edge, p.oper_edge)
    }
    /// The point-to-point setting and whether the port is treated as point to point.
    pub fn p2p(&self, port: usize) -> (P2p, bool) {
        let p = &self.ports[port];
        (p.p2p, p.p2p())
    }
    /// (proposing, agreed): where the port is in the proposal/agreement handshake.
    pub fn handshake(&self, port: usize) -> (bool, bool) {
        let p = &self.ports[port];
        (p.proposing, p.agreed)
    }

    // ---- Port role selection (17.28) ----

    fn prs(&mut self) -> bool {
        if !self.ports.iter().any(|p| p.reselect) {
            return false;
        }
        for p in &mut self.ports {
            p.reselect = false;
        }
        self.updt_roles();
        for p in &mut self.ports {
            p.selected = true;
        }
        true
    }

    /// updtRolesTree (17.21.25).
    fn updt_roles(&mut self) {
        let mut best = Vector {
            root: self.id,
            cost: 0,
            bridge: self.id,
            port: 0,
            rx: 0,
        };
        let mut rp = None;
        for (i, p) in self.ports.iter().enumerate() {
            if p.info_is != InfoIs::Received || p.port_pri.bridge.mac == self.id.mac {
                continue;
            }
            let v = Vector {
                cost: p.port_pri.cost.saturating_add(p.path_cost),
                rx: p.id,
                ..p.port_pri
            };
            if v < best {
                (best, rp) = (v, Some(i));
            }
        }
        (self.root_pri, self.root_port) = (best, rp);
        self.root_times = match rp {
            Some(i) => {
                let t = self.ports[i].port_times;
                Times {
                    message_age: round_sec(u32::from(t.message_age) + 256),
                    ..t
                }
            }
            None => self.bridge_times(),
        };
        let (id, hello, rt) = (self.id, self.conf.hello_time, self.root_times);
        for (i, p) in self.ports.iter_mut().enumerate() {
            p.desg_pri = Vector {
                root: best.root,
                cost: best.cost,
                bridge: id,
                port: p.id,
                rx: p.id,
            };
            p.desg_times = Times {
                hello_time: hello,
                ..rt
            };
            (p.selected_role, p.updt_info) = match p.info_is {
                InfoIs::Disabled => (Role::Disabled, p.updt_info),
                InfoIs::Aged => (Role::Designated, true),
                InfoIs::Mine => {
                    let stale = p.port_pri != p.desg_pri || p.port_times != p.desg_times;
                    (Role::Designated, p.updt_info || stale)
                }
                InfoIs::Received if rp == Some(i) => (Role::Root, false),
                InfoIs::Received if p.desg_pri >= p.port_pri => {
                    let own = p.port_pri.bridge.mac == id.mac;
                    (if own { Role::Backup } else { Role::Alternate }, false)
                }
                InfoIs::Received => (Role::Designated, true),
            };
        }
    }

    // ---- Port information (17.27) ----

    fn pim_disabled(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        p.rcvd_msg = false;
        (p.proposing, p.proposed, p.agree, p.agreed) = (false, false, false, false);
        p.rcvd_info_while = now;
        p.info_is = InfoIs::Disabled;
        (p.reselect, p.selected) = (true, false);
        p.pim = Pim::Disabled;
    }

    fn pim_aged(&mut self, i: usize) {
        let p = &mut self.ports[i];
        p.info_is = InfoIs::Aged;
        (p.reselect, p.selected) = (true, false);
        p.pim = Pim::Aged;
    }

    fn pim_update(&mut self, i: usize) {
        let p = &mut self.ports[i];
        (p.proposing, p.proposed) = (false, false);
        let better_or_same = p.info_is == InfoIs::Mine && p.desg_pri.head() <= p.port_pri.head();
        p.agreed = p.agreed && better_or_same;
        p.synced = p.synced && p.agreed;
        (p.port_pri, p.port_times) = (p.desg_pri, p.desg_times);
        (p.updt_info, p.info_is, p.new_info) = (false, InfoIs::Mine, true);
        p.pim = Pim::Current;
    }

    fn pim(&mut self, i: usize) -> bool {
        let now = self.now;
        let p = &self.ports[i];
        if !p.enabled && p.info_is != InfoIs::Disabled {
            self.pim_disabled(i);
            return true;
        }
        match p.pim {
            Pim::Disabled if p.rcvd_msg => self.pim_disabled(i),
            Pim::Disabled if p.enabled => self.pim_aged(i),
            Pim::Aged | Pim::Current if p.selected && p.updt_info => self.pim_update(i),
            Pim::Current
                if p.info_is == InfoIs::Received
                    && p.rcvd_info_while <= now
                    && !p.updt_info
                    && !p.rcvd_msg =>
            {
                self.pim_aged(i)
            }
            Pim::Current if p.rcvd_msg && !p.updt_info => self.pim_receive(i),
            _ => return false,
        }
        true
    }

    /// rcvInfo (17.21.8).
    fn rcv_info(&self, i: usize) -> RcvdInfo {
        let p = &self.ports[i];
        let role = match p.msg_kind {
            Kind::Config => WireRole::Designated,
            Kind::Rst => WireRole::from_flags(p.msg_flags),
            Kind::Tcn => WireRole::Unknown,
        };
        let (m, q) = (&p.msg_pri, &p.port_pri);
        match role {
            WireRole::Designated => {
                let same = m.head() == q.head();
                if m.superior(q) || (same && p.msg_times != p.port_times) {
                    RcvdInfo::SuperiorDesignated
                } else if same {
                    RcvdInfo::RepeatedDesignated
                } else {
                    RcvdInfo::InferiorDesignated
                }
            }
            WireRole::Root | WireRole::AlternateBackup if m.head() >= q.head() => {
                RcvdInfo::InferiorRootAlternate
            }
            _ => RcvdInfo::Other,
        }
    }

    fn pim_receive(&mut self, i: usize) {
        let info = self.rcv_info(i);
        match info {
            RcvdInfo::SuperiorDesignated => {
                let p = &mut self.ports[i];
                let better_or_same =
                    p.info_is == InfoIs::Received && p.msg_pri.head() <= p.port_pri.head();
                (p.agreed, p.proposing) = (false, false);
                self.record_proposal(i);
                self.set_tc_flags(i);
                let p = &mut self.ports[i];
                p.agree = p.agree && better_or_same;
                (p.port_pri, p.port_times) = (p.msg_pri, p.msg_times);
                self.updt_rcvd_info_while(i);
                let p = &mut self.ports[i];
                p.info_is = InfoIs::Received;
                (p.reselect, p.selected) = (true, false);
            }
            RcvdInfo::RepeatedDesignated => {
                self.record_proposal(i);
                self.set_tc_flags(i);
                self.updt_rcvd_info_while(i);
            }
            RcvdInfo::InferiorDesignated => {
                // recordDispute (17.21.10)
                let p = &mut self.ports[i];
                if p.msg_kind == Kind::Rst && p.msg_flags & flags::LEARNING != 0 {
                    (p.agreed, p.proposing) = (false, false);
                }
            }
            RcvdInfo::InferiorRootAlternate => {
                // recordAgreement (17.21.9)
                let p = &mut self.ports[i];
                if p.msg_kind == Kind::Rst && p.p2p() && p.msg_flags & flags::AGREEMENT != 0 {
                    (p.agreed, p.proposing) = (true, false);
                } else {
                    p.agreed = false;
                }
                self.set_tc_flags(i);
            }
            RcvdInfo::Other => {
                if self.ports[i].msg_kind == Kind::Tcn {
                    self.set_tc_flags(i);
                }
            }
        }
        let p = &mut self.ports[i];
        (p.rcvd_msg, p.pim) = (false, Pim::Current);
    }

    /// recordProposal (17.21.11).
    fn record_proposal(&mut self, i: usize) {
        let p = &mut self.ports[i];
        let designated = WireRole::from_flags(p.msg_flags) == WireRole::Designated;
        if p.msg_kind == Kind::Rst && designated && p.msg_flags & flags::PROPOSAL != 0 {
            p.proposed = true;
        }
    }

    /// setTcFlags (17.21.17).
    fn set_tc_flags(&mut self, i: usize) {
        let p = &mut self.ports[i];
        match p.msg_kind {
            Kind::Tcn => p.rcvd_tcn = true,
            k => {
                p.rcvd_tc |= p.msg_flags & flags::TC != 0;
                p.rcvd_tc_ack |= k == Kind::Config && p.msg_flags & flags::TCA != 0;
            }
        }
    }

    /// updtRcvdInfoWhile (17.21.23): three hellos, or nothing if the message is too old.
    fn updt_rcvd_info_while(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        let t = p.port_times;
        let age = round_sec(u32::from(t.message_age) + 256);
        p.rcvd_info_while = match age <= t.max_age {
            true => now + 3 * Ticks::from(t.hello_time),
            false => now,
        };
    }

    // ---- Port role transitions (17.29) ----

    /// allSynced (see the module doc): every port but the root port is synced and settled.
    fn all_synced(&self) -> bool {
        self.ports.iter().all(|q| {
            q.selected
                && q.role == q.selected_role
                && !q.updt_info
                && (q.synced || q.role == Role::Root)
        })
    }

    /// reRooted: no other port was root recently.
    fn re_rooted(&self, i: usize) -> bool {
        let now = self.now;
        (self.ports.iter().enumerate()).all(|(j, q)| j == i || q.rr_while <= now)
    }

    fn set_tree(&mut self, f: impl Fn(&mut Port)) {
        self.ports.iter_mut().for_each(f);
    }

    fn enter_root_port(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        (p.prt, p.role) = (Prt::Root, Role::Root);
        p.rr_while = now + p.fwd_delay();
    }

    fn enter_designated_port(&mut self, i: usize) {
        let p = &mut self.ports[i];
        (p.prt, p.role) = (Prt::Designated, Role::Designated);
    }

    fn enter_alternate_port(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        p.prt = Prt::Alternate;
        (p.fd_while, p.synced, p.rr_while) = (now + p.forward_delay(), true, now);
        (p.sync, p.re_root) = (false, false);
    }

    fn enter_disabled_port(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        p.prt = Prt::Disabled;
        (p.fd_while, p.synced, p.rr_while) = (now + p.max_age(), true, now);
        (p.sync, p.re_root) = (false, false);
    }

    fn prt(&mut self, i: usize) -> bool {
        let p = &self.ports[i];
        if !p.selected || p.updt_info {
            return false;
        }
        if p.role != p.selected_role {
            match p.selected_role {
                Role::Disabled | Role::Alternate | Role::Backup => {
                    let p = &mut self.ports[i];
                    p.prt = match p.selected_role {
                        Role::Disabled => Prt::Disable,
                        _ => Prt::Block,
                    };
                    (p.role, p.learn, p.forward) = (p.selected_role, false, false);
                }
                Role::Root => self.enter_root_port(i),
                Role::Designated => self.enter_designated_port(i),
            }
            return true;
        }
        match p.prt {
            Prt::Disable | Prt::Block if !p.learning && !p.forwarding => {
                match p.prt {
                    Prt::Disable => self.enter_disabled_port(i),
                    _ => self.enter_alternate_port(i),
                }
                true
            }
            Prt::Disabled => {
                let stale = p.fd_while.saturating_sub(self.now) != p.max_age();
                if stale || p.sync || p.re_root || !p.synced {
                    self.enter_disabled_port(i);
                    return true;
                }
                false
            }
            Prt::Root => self.prt_root(i),
            Prt::Designated => self.prt_designated(i),
            Prt::Alternate => self.prt_alternate(i),
            _ => false,
        }
    }

    fn prt_root(&mut self, i: usize) -> bool {
        let now = self.now;
        let (all_synced, re_rooted) = (self.all_synced(), self.re_rooted(i));
        let p = &mut self.ports[i];
        let timed = p.fd_while <= now || (re_rooted && p.rb_while <= now);
        if p.proposed && !p.agree {
            p.proposed = false;
            self.set_tree(|q| q.sync = true);
        } else if (all_synced && !p.agree) || (p.proposed && p.agree) {
            (p.proposed, p.sync, p.agree, p.new_info) = (false, false, true, true);
        } else if (p.agreed && !p.synced) || (p.sync && p.synced) {
            (p.synced, p.sync) = (true, false);
        } else if !p.forward && !p.re_root {
            self.set_tree(|q| q.re_root = true);
        } else if p.rr_while.saturating_sub(now) != p.fwd_delay() {
        } else if p.re_root && p.forward {
            p.re_root = false;
        } else if timed && !p.learn {
            (p.fd_while, p.learn) = (now + p.forward_delay(), true);
        } else if timed && p.learn && !p.forward {
            (p.fd_while, p.forward) = (now, true);
        } else {
            return false;
        }
        self.enter_root_port(i);
        true
    }

    fn prt_designated(&mut self, i: usize) -> bool {
        let now = self.now;
        let p = &mut self.ports[i];
        let rr_zero = p.rr_while <= now;
        let may_advance =
            (p.fd_while <= now || p.agreed || p.oper_edge) && (rr_zero || !p.re_root) && !p.sync;
        if !p.forward && !p.agreed && !p.proposing && !p.oper_edge {
            p.proposing = true;
            p.edge_delay_while = now + p.edge_delay();
            p.new_info = true;
        } else if (!p.learning && !p.forwarding && !p.synced)
            || (p.agreed && !p.synced)
            || (p.oper_edge && !p.synced)
            || (p.sync && p.synced)
        {
            (p.rr_while, p.synced, p.sync) = (now, true, false);
        } else if rr_zero && p.re_root {
            p.re_root = false;
        } else if ((p.sync && !p.synced) || (p.re_root && !rr_zero))
            && !p.oper_edge
            && (p.learn || p.forward)
        {
            (p.learn, p.forward) = (false, false);
            p.fd_while = now + p.forward_delay();
        } else if may_advance && !p.learn {
            p.learn = true;
            p.fd_while = now + p.forward_delay();
        } else if may_advance && p.learn && !p.forward {
            (p.forward, p.fd_while, p.agreed) = (true, now, p.send_rstp);
        } else {
            return false;
        }
        self.enter_designated_port(i);
        true
    }

    fn prt_alternate(&mut self, i: usize) -> bool {
        let now = self.now;
        let all_synced = self.all_synced();
        let p = &mut self.ports[i];
        if p.proposed && !p.agree {
            p.proposed = false;
            self.set_tree(|q| q.sync = true);
        } else if (all_synced && !p.agree) || (p.proposed && p.agree) {
            (p.proposed, p.agree, p.new_info) = (false, true, true);
        } else if p.fd_while.saturating_sub(now) != p.forward_delay()
            || p.sync
            || p.re_root
            || !p.synced
        {
        } else if p.role == Role::Backup && p.rb_while.saturating_sub(now) != 2 * p.hello() {
            p.rb_while = now + 2 * p.hello();
        } else {
            return false;
        }
        self.enter_alternate_port(i);
        true
    }

    // ---- Port state transitions (17.30) ----

    fn pst(&mut self, i: usize) -> bool {
        let p = &mut self.ports[i];
        match (p.learning, p.forwarding) {
            (false, false) if p.learn => p.learning = true,
            (true, false) if p.forward => p.forwarding = true,
            (true, false) if !p.learn => p.learning = false,
            (_, true) if !p.forward => (p.learning, p.forwarding) = (false, false),
            _ => return false,
        }
        true
    }

    // ---- Topology change (17.25) ----

    fn tcm_inactive(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        (p.tc_while, p.tc_ack, p.tcm) = (now, false, Tcm::Inactive);
        self.flush.push(i); // fdbFlush, done by the caller at once
    }

    /// newTcWhile (17.21.7).
    fn new_tc_while(&mut self, i: usize) {
        let now = self.now;
        let rt = self.root_times;
        let p = &mut self.ports[i];
        if p.tc_while <= now {
            if p.send_rstp {
                p.tc_while = now + p.hello() + SEC;
                p.new_info = true;
            } else {
                p.tc_while = now + Ticks::from(rt.max_age) + Ticks::from(rt.forward_delay);
            }
        }
    }

    fn set_tc_prop_tree(&mut self, except: usize) {
        for (j, q) in self.ports.iter_mut().enumerate() {
            q.tc_prop |= j != except;
        }
    }

    fn tcm(&mut self, i: usize) -> bool {
        let p = &mut self.ports[i];
        let news = p.rcvd_tc || p.rcvd_tcn || p.rcvd_tc_ack || p.tc_prop;
        let active_role = p.root_or_designated();
        match p.tcm {
            Tcm::Inactive if p.learn => {}
            Tcm::Learning if active_role && p.forward && !p.oper_edge => {
                self.new_tc_while(i);
                self.set_tc_prop_tree(i);
                let p = &mut self.ports[i];
                (p.new_info, p.tcm) = (true, Tcm::Active);
                return true;
            }
            Tcm::Learning if !(active_role || p.learn || p.learning || news) => {
                self.tcm_inactive(i);
                return true;
            }
            Tcm::Learning if news => {}
            Tcm::Active if !active_role || p.oper_edge => {}
            Tcm::Active if p.rcvd_tcn || p.rcvd_tc => {
                if p.rcvd_tcn {
                    self.new_tc_while(i);
                }
                let p = &mut self.ports[i];
                (p.rcvd_tcn, p.rcvd_tc) = (false, false);
                if p.role == Role::Designated {
                    p.tc_ack = true;
                }
                self.set_tc_prop_tree(i);
                return true;
            }
            Tcm::Active if p.tc_prop && !p.oper_edge => {
                self.new_tc_while(i);
                self.flush.push(i);
                self.ports[i].tc_prop = false;
                return true;
            }
            Tcm::Active if p.rcvd_tc_ack => {
                (p.tc_while, p.rcvd_tc_ack) = (self.now, false);
                return true;
            }
            _ => return false,
        }
        // Enter LEARNING.
        let p = &mut self.ports[i];
        (p.rcvd_tc, p.rcvd_tcn, p.rcvd_tc_ack, p.tc_prop) = (false, false, false, false);
        p.tcm = Tcm::Learning;
        true
    }

    // ---- Port protocol migration (17.24) ----

    fn ppm_checking(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.ports[i];
        (p.mcheck, p.send_rstp, p.mdelay_while) = (false, true, now + MIGRATE_TIME);
        p.ppm = Ppm::CheckingRstp;
    }

    fn ppm(&mut self, i: usize) -> bool {
        let now = self.now;
        let p = &mut self.ports[i];
        let expired = p.mdelay_while <= now;
        match p.ppm {
            Ppm::CheckingRstp if expired => {}
            Ppm::CheckingRstp if !p.enabled && p.mdelay_while != now + MIGRATE_TIME => {
                self.ppm_checking(i);
                return true;
            }
            Ppm::SelectingStp if expired || !p.enabled || p.mcheck => {}
            Ppm::Sensing if !p.enabled || p.mcheck || (!p.send_rstp && p.rcvd_rstp) => {
                self.ppm_checking(i);
                return true;
            }
            Ppm::Sensing if p.send_rstp && p.rcvd_stp => {
                (p.send_rstp, p.mdelay_while, p.ppm) =
                    (false, now + MIGRATE_TIME, Ppm::SelectingStp);
                return true;
            }
            _ => return false,
        }
        (p.rcvd_rstp, p.rcvd_stp, p.ppm) = (false, false, Ppm::Sensing);
        true
    }

    // ---- Bridge detection (17.25) ----

    fn bdm(&mut self, i: usize) -> bool {
        let now = self.now;
        let p = &mut self.ports[i];
        let to = if p.oper_edge {
            p.enabled || p.admin_edge
        } else {
            (!p.enabled && p.admin_edge)
                || (p.edge_delay_while <= now && p.auto_edge && p.send_rstp && p.proposing)
        };
        if to != p.oper_edge {
            p.oper_edge = to;
            return true;
        }
        false
    }

    // ---- Port transmit (17.26) ----

    fn ptx(&mut self, i: usize) -> bool {
        let now = self.now;
        let p = &self.ports[i];
        if !p.enabled || !p.selected || p.updt_info {
            return false;
        }
        if p.hello_when <= now {
            let p = &mut self.ports[i];
            let tc = p.tc_while > now;
            p.new_info |= p.role == Role::Designated || (p.role == Role::Root && tc);
            p.hello_when = now + p.hello();
            return true;
        }
        if !p.new_info || p.tx_count >= TX_HOLD_COUNT {
            return false;
        }
        let bpdu = match (p.send_rstp, p.role) {
            (true, _) => Bpdu::Rst(self.message(i)),
            (false, Role::Designated) => Bpdu::Config(self.message(i)),
            (false, Role::Root) => Bpdu::Tcn,
            _ => return false,
        };
        let p = &mut self.ports[i];
        (p.new_info, p.hello_when) = (false, now + p.hello());
        p.tx_count += 1;
        if bpdu != Bpdu::Tcn {
            p.tc_ack = false;
        }
        self.out.push((i, bpdu));
        true
    }

    /// The body of txConfig / txRstp (17.21.19, 17.21.20).
    fn message(&self, i: usize) -> Config {
        let p = &self.ports[i];
        let mut f = u8::from(p.tc_while > self.now) * flags::TC;
        if p.send_rstp {
            f |= match p.role {
                Role::Root => WireRole::Root,
                Role::Designated => WireRole::Designated,
                Role::Alternate | Role::Backup => WireRole::AlternateBackup,
                Role::Disabled => WireRole::Unknown,
            }
            .bits();
            f |= (u8::from(p.proposing) * flags::PROPOSAL)
                | (u8::from(p.learning) * flags::LEARNING)
                | (u8::from(p.forwarding) * flags::FORWARDING)
                | (u8::from(p.agree) * flags::AGREEMENT);
        } else {
            f |= u8::from(p.tc_ack) * flags::TCA;
        }
        let (v, t) = (p.desg_pri, p.desg_times);
        Config {
            flags: f,
            root: v.root,
            root_path_cost: v.cost,
            bridge: v.bridge,
            port_id: v.port,
            message_age: t.message_age,
            max_age: t.max_age,
            hello_time: t.hello_time,
            forward_delay: t.forward_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cst::{Mode, Role as AnyRole, Tree};
    use super::*;
    use std::collections::VecDeque;

    const STEP: Ticks = 64; // a quarter second, the daemon's tick
    type End = (usize, usize);

    fn id(n: u8) -> BridgeId {
        BridgeId {
            priority: 0x8000,
            mac: [2, 0, 0, 0, 0, n],
        }
    }

    /// Bridges of either protocol joined by point-to-point links; every BPDU goes through
    /// encode and decode, and is delivered in the same step.
    struct Net {
        bridges: Vec<Tree>,
        links: Vec<(End, End, bool)>,
        queue: VecDeque<(usize, usize, Vec<u8>)>,
        now: Ticks,
    }

    impl Net {
        fn new(modes: &[(Mode, usize)], links: &[(End, End)]) -> Net {
            let mut net = Net {
                bridges: Vec::new(),
                links: links.iter().map(|&(a, b)| (a, b, true)).collect(),
                queue: VecDeque::new(),
                now: 0,
            };
            for (i, &(m, n)) in modes.iter().enumerate() {
                let (b, out) = Tree::new(m, id(i as u8 + 1), n, Timers::default(), 0);
                net.bridges.push(b);
                net.send(i, out);
            }
            net.deliver();
            net
        }
        fn rstp(ports: &[usize], links: &[(End, End)]) -> Net {
            let m: Vec<_> = ports.iter().map(|&n| (Mode::Rstp, n)).collect();
            Net::new(&m, links)
        }
        fn peer(&self, at: End) -> Option<End> {
            self.links.iter().find_map(|&(a, b, up)| match up {
                true if a == at => Some(b),
                true if b == at => Some(a),
                _ => None,
            })
        }
        fn send(&mut self, from: usize, out: Out) {
            for (p, bpdu) in out {
                if let Some((b, q)) = self.peer((from, p)) {
                    let src = [2, 0, 0, 0, from as u8, p as u8];
                    self.queue.push_back((b, q, bpdu.encode_frame(src)));
                }
            }
        }
        fn deliver(&mut self) {
            while let Some((b, p, frame)) = self.queue.pop_front() {
                let (_, bpdu) = Bpdu::decode_frame(&frame).expect("our own frame decodes");
                let out = self.bridges[b].receive(p, &bpdu, self.now);
                self.send(b, out);
            }
        }
        fn step(&mut self) {
            self.now += STEP;
            for b in 0..self.bridges.len() {
                let out = self.bridges[b].tick(self.now);
                self.send(b, out);
            }
            self.deliver();
        }
        fn until(&mut self, limit: Ticks, done: impl Fn(&Net) -> bool) -> Ticks {
            let start = self.now;
            while !done(self) {
                assert!(
                    self.now - start <= limit,
                    "not converged within {limit} ticks"
                );
                self.step();
            }
            self.now - start
        }
        fn run(&mut self, d: Ticks) {
            let end = self.now + d;
            while self.now < end {
                self.step();
            }
        }
        fn cut(&mut self, l: usize, notify: bool) {
            self.links[l].2 = false;
            if notify {
                let (a, b, _) = self.links[l];
                for (br, p) in [a, b] {
                    let out = self.bridges[br].link_down(p, self.now);
                    self.send(br, out);
                }
                self.deliver();
            }
        }
        fn ports(&self) -> impl Iterator<Item = End> + '_ {
            let b = &self.bridges;
            (0..b.len()).flat_map(move |i| (0..b[i].ports()).map(move |p| (i, p)))
        }
        /// Ports that discard while their link is up.
        fn blocked(&self) -> Vec<End> {
            let b = &self.bridges;
            self.ports()
                .filter(|&(i, p)| b[i].state(p) == PortState::Blocking)
                .collect()
        }
        /// All agree on the root; root and designated ports forward, the others discard.
        fn settled(&self) -> bool {
            let b = &self.bridges;
            b.iter().all(|x| x.root() == b[0].root())
                && self.ports().all(|(i, p)| match b[i].role(p) {
                    AnyRole::Root | AnyRole::Designated => b[i].state(p) == PortState::Forwarding,
                    AnyRole::Disabled => true,
                    _ => b[i].state(p) == PortState::Blocking,
                })
        }
        /// In the triangle: the B-C cable carries data both ways.
        fn path_forwards(&self) -> bool {
            let b = &self.bridges;
            b[1].state(1) == PortState::Forwarding && b[2].state(1) == PortState::Forwarding
        }
        fn r(&self, b: usize) -> &Bridge {
            self.bridges[b].rstp().expect("an RSTP bridge")
        }
    }

    fn secs(t: Ticks) -> f64 {
        t as f64 / 256.0
    }

    #[test]
    fn two_bridges_two_links_converge_at_once_and_fail_over_at_once() {
        let mut net = Net::rstp(&[2, 2], &[((0, 0), (1, 0)), ((0, 1), (1, 1))]);
        let t = net.until(10 * SEC, Net::settled);
        assert!(t <= STEP, "proposal/agreement, no timer: {t}");
        assert_eq!(net.blocked(), vec![(1, 1)]);
        assert_eq!(net.r(1).role(1), Role::Alternate);
        assert_eq!(net.r(1).root_port(), Some(0));
        net.run(60 * SEC);
        assert!(net.settled());
        assert_eq!(net.blocked(), vec![(1, 1)]);
        net.cut(0, true);
        let t = net.until(10 * SEC, |n| n.settled() && n.blocked().is_empty());
        eprintln!("RSTP two bridges, link-down cut: {} s", secs(t));
        assert_eq!(t, 0, "the alternate port takes over in the same event");
        assert_eq!(net.r(1).root_port(), Some(1));
    }

    fn triangle() -> Net {
        // A0-B0, A1-C0, B1-C1: C (highest id) has the alternate port on the B-C segment.
        let mut net = Net::rstp(
            &[2, 2, 2],
            &[((0, 0), (1, 0)), ((0, 1), (2, 0)), ((1, 1), (2, 1))],
        );
        net.until(10 * SEC, Net::settled);
        net
    }

    #[test]
    fn triangle_has_one_alternate_port_and_keeps_it() {
        let mut net = triangle();
        assert_eq!(net.blocked(), vec![(2, 1)]);
        assert_eq!(net.r(2).role(1), Role::Alternate);
        assert_eq!(net.r(1).role(1), Role::Designated);
        assert!(net.bridges.iter().all(|b| b.root() == id(1)));
        net.run(120 * SEC);
        assert!(net.settled());
        assert_eq!(net.blocked(), vec![(2, 1)]);
        assert!(!net.bridges.iter().any(|b| b.topology_change()), "TC ends");
    }

    #[test]
    fn triangle_reconverges_in_well_under_a_second_after_link_down() {
        let mut net = triangle();
        net.run(30 * SEC);
        net.cut(0, true); // A-B: B must reach A through C, whose alternate port takes over.
        let t = net.until(10 * SEC, |n| n.settled() && n.blocked().is_empty());
        eprintln!("RSTP triangle, link-down cut: {} s", secs(t));
        assert!(t <= STEP, "{t}");
        assert_eq!(net.r(1).root_port(), Some(1));
        assert_eq!(net.r(2).role(1), Role::Designated);
        let flushed: Vec<usize> = (0..3)
            .flat_map(|b| {
                let mut x = net.bridges[b].clone();
                match &mut x {
                    Tree::Rstp(r) => r.take_flush(),
                    _ => vec![],
                }
            })
            .collect();
        assert!(!flushed.is_empty(), "the topology change flushed addresses");
        net.run(10 * SEC);
        assert!(net.settled() && net.blocked().is_empty());
    }

    #[test]
    fn triangle_reconverges_after_silent_cut_within_three_hellos() {
        let mut net = triangle();
        net.cut(1, false); // A-C, no link down: C notices when A's information is not refreshed.
        let t = net.until(20 * SEC, |n| {
            n.r(2).root_port() == Some(1) && n.path_forwards()
        });
        eprintln!("RSTP triangle, silent cut: {} s", secs(t));
        assert!(t <= 3 * 2 * SEC + STEP, "{t}");
        assert!(t >= 2 * 2 * SEC, "information lives three hellos: {t}");
        // C's port on the silent cable is designated now; hearing nothing, it turns edge
        // after the edge delay and forwards, as the standard has it.
        let t = net.until(10 * SEC, |n| n.settled() && n.blocked().is_empty());
        assert!(t <= MIGRATE_TIME + STEP, "{t}");
        assert!(net.r(2).edge(0).2);
    }

    #[test]
    fn cutting_the_alternate_link_changes_nothing_else() {
        let mut net = triangle();
        net.cut(2, true);
        net.run(5 * SEC);
        assert!(net.settled() && net.blocked().is_empty());
        assert_eq!(net.r(2).root_port(), Some(0));
    }

    #[test]
    fn falls_back_to_stp_for_an_802_1d_neighbour() {
        // A runs RSTP, B 802.1D-1998 (which ignores RST BPDUs): A's ports fall back, B blocks
        // its port facing A's higher port id after listening and learning.
        let mut net = Net::new(
            &[(Mode::Rstp, 2), (Mode::Stp, 2)],
            &[((0, 0), (1, 0)), ((0, 1), (1, 1))],
        );
        let bound = MIGRATE_TIME + 2 * SEC + 2 * 15 * SEC + 2 * STEP;
        let t = net.until(bound, |n| n.settled() && n.blocked() == vec![(1, 1)]);
        eprintln!("RSTP with an STP neighbour converged in {} s", secs(t));
        assert!(
            !net.r(0).sends_rstp(0) && !net.r(0).sends_rstp(1),
            "fell back"
        );
        assert_eq!(net.bridges[1].root(), id(1));
        net.run(60 * SEC);
        assert!(net.settled() && net.blocked() == vec![(1, 1)]);
        // The 802.1D side as root: A follows and blocks its own higher port.
        let out = net.bridges[0].set_priority(0xf000, net.now);
        net.send(0, out);
        net.deliver();
        net.until(bound + 20 * SEC, |n| {
            n.settled() && n.bridges[0].root() == id(2) && n.blocked() == vec![(0, 1)]
        });
        assert_eq!(net.r(0).role(1), Role::Alternate);
    }

    #[test]
    fn migration_follows_the_neighbour_and_mcheck_retries() {
        let mut net = Net::new(&[(Mode::Rstp, 1), (Mode::Stp, 1)], &[((0, 0), (1, 0))]);
        net.run(10 * SEC);
        assert!(!net.r(0).sends_rstp(0));
        // mcheck: RST BPDUs again. The 802.1D neighbour's port is its root port, which sends
        // nothing; it ignores our RST BPDUs, its information from us ages out (max age), it
        // claims root with a Configuration BPDU, and we fall back again.
        let out = match &mut net.bridges[0] {
            Tree::Rstp(r) => r.mcheck(0, net.now),
            _ => unreachable!(),
        };
        assert!(net.r(0).sends_rstp(0), "mcheck restarts with RSTP");
        net.send(0, out);
        net.deliver();
        net.run(MIGRATE_TIME);
        assert!(net.r(0).sends_rstp(0));
        net.run(20 * SEC + 2 * SEC);
        assert!(!net.r(0).sends_rstp(0), "fell back again");
        net.until(2 * 15 * SEC + 2 * SEC, Net::settled);
        // An RSTP bridge replaces the 802.1D one on the same cable: the first RST BPDU
        // heard after the migration delay brings RSTP back, with no mcheck.
        let (b, out) = Tree::new(Mode::Rstp, id(2), 1, Timers::default(), net.now);
        net.bridges[1] = b;
        net.send(1, out);
        net.deliver();
        net.run(2 * MIGRATE_TIME);
        assert!(net.r(0).sends_rstp(0) && net.r(1).sends_rstp(0));
        assert!(net.settled());
    }

    #[test]
    fn edge_ports_forward_at_once_or_after_the_edge_delay() {
        let (mut b, _) = Bridge::new(id(1), 2, Timers::default(), 0);
        let _ = b.link_down(0, 0);
        let _ = b.set_admin_edge(0, true, 0);
        let _ = b.link_up(0, SEC);
        assert_eq!(b.state(0), PortState::Forwarding, "admin edge: no wait");
        assert_eq!(b.edge(0), (true, true, true));
        // Port 1: auto edge; it proposes, hears nothing, and is edge after 3 s.
        assert_eq!(b.state(1), PortState::Blocking);
        let _ = b.tick(MIGRATE_TIME - STEP);
        assert_eq!(b.state(1), PortState::Blocking);
        let _ = b.tick(MIGRATE_TIME);
        assert_eq!(b.state(1), PortState::Forwarding);
        assert!(b.edge(1).2);
        // A BPDU on an edge port: no longer edge.
        let (mut peer, out) = Bridge::new(id(9), 1, Timers::default(), 0);
        let _ = peer.tick(0);
        let (_, bpdu) = out[0];
        let _ = b.receive(0, &bpdu, 4 * SEC);
        assert!(!b.edge(0).2, "operEdge cleared by a BPDU");
    }

    #[test]
    fn rst_bpdus_carry_role_state_and_handshake_flags() {
        let (mut a, out) = Bridge::new(id(1), 1, Timers::default(), 0);
        let Some(&(0, Bpdu::Rst(c))) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(WireRole::from_flags(c.flags), WireRole::Designated);
        assert!(
            c.flags & flags::PROPOSAL != 0,
            "a new designated port proposes"
        );
        assert_eq!(c.flags & (flags::LEARNING | flags::FORWARDING), 0);
        assert_eq!(
            (c.root, c.bridge, c.port_id, c.message_age),
            (id(1), id(1), 0x8001, 0)
        );
        let (mut b, _) = Bridge::new(id(2), 1, Timers::default(), 0);
        let back = b.receive(0, &Bpdu::Rst(c), 0);
        let Some((0, Bpdu::Rst(r))) = back
            .iter()
            .copied()
            .find(|(_, x)| matches!(x, Bpdu::Rst(r) if r.flags & flags::AGREEMENT != 0))
        else {
            panic!("{back:?}")
        };
        assert_eq!(WireRole::from_flags(r.flags), WireRole::Root);
        assert_eq!(
            b.state(0),
            PortState::Forwarding,
            "root port forwards at once"
        );
        assert_eq!((r.root, r.root_path_cost), (id(1), DEFAULT_PATH_COST));
        let _ = a.receive(0, &Bpdu::Rst(r), 0);
        assert_eq!(
            a.state(0),
            PortState::Forwarding,
            "agreement: designated forwards"
        );
        let _ = a.tick(SEC);
    }

    /// The number docs/stp.md quotes: the same triangle under 802.1D and RSTP.
    #[test]
    fn triangle_rstp_against_stp_after_a_cut() {
        let links = [((0, 0), (1, 0)), ((0, 1), (2, 0)), ((1, 1), (2, 1))];
        let mut took = Vec::new();
        for mode in [Mode::Stp, Mode::Rstp] {
            for notify in [true, false] {
                let mut net = Net::new(&[(mode, 2), (mode, 2), (mode, 2)], &links);
                net.until(60 * SEC, Net::settled);
                net.run(30 * SEC);
                let lost = if notify { 0 } else { 1 };
                net.cut(lost, notify);
                let t = net.until(60 * SEC, |n| {
                    n.path_forwards() && n.bridges.iter().all(|b| b.root() == id(1))
                });
                eprintln!(
                    "{} triangle, {} cut: {} s",
                    mode.name(),
                    ["silent", "link-down"][usize::from(notify)],
                    secs(t)
                );
                took.push(t);
            }
        }
        assert!(
            took[2] * 40 < took[0],
            "RSTP link-down cut vs STP: {took:?}"
        );
        assert!(took[3] * 5 < took[1], "RSTP silent cut vs STP: {took:?}");
    }
}
