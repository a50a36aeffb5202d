//! The 802.1D (1998, clause 8) spanning tree state machine of one bridge, pure: events in
//! ([`Bridge::receive`], [`Bridge::tick`], [`Bridge::link_up`], [`Bridge::link_down`]) with
//! the time passed in, BPDUs to send out (as port index and BPDU). No I/O and no clock, so a test can wire several
//! bridges together and run minutes of protocol time in microseconds.
//!
//! Left out on purpose: the hold timer (at most one BPDU per port per second; callers
//! tick at coarse intervals anyway) and RST BPDUs, which are ignored as the Linux kernel
//! bridge ignores them (an 802.1D bridge does not know type 0x02).

use super::bpdu::{flags, Bpdu, BridgeId, Config};

/// Time in the BPDU's unit, 1/256 s, so BPDU timer fields need no conversion.
pub type Ticks = u64;

/// Added to the message age at each hop: one second, so message age counts hops as RSTP's.
pub const MESSAGE_AGE_INCR: u16 = 256;

/// Default path cost of a port (802.1D-1998 table 8-5, 100 Mb/s).
pub const DEFAULT_PATH_COST: u32 = 19;

/// Bridge timers, in 1/256 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// How long received information stays valid.
    pub max_age: u16,
    /// Interval between Configuration BPDUs from the root.
    pub hello_time: u16,
    /// Time spent in each of Listening and Learning.
    pub forward_delay: u16,
}

impl Default for Timers {
    /// 802.1D's recommended 20 s / 2 s / 15 s.
    fn default() -> Timers {
        Timers {
            max_age: 20 * 256,
            hello_time: 2 * 256,
            forward_delay: 15 * 256,
        }
    }
}

/// Port state (802.1D 8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// Link down or administratively off.
    Disabled,
    /// Receives BPDUs only.
    Blocking,
    /// Sends and receives BPDUs; first forward delay.
    Listening,
    /// Also learns addresses; second forward delay.
    Learning,
    /// Forwards frames.
    Forwarding,
}

/// Port role, derived from the state machine's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRole {
    /// Link down.
    Disabled,
    /// The port towards the root.
    Root,
    /// This bridge is designated for the port's segment.
    Designated,
    /// Neither: another bridge is designated and this port blocks.
    Blocked,
}

/// A priority vector as 802.1D compares it: lexicographically, lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Vector {
    root: BridgeId,
    cost: u32,
    bridge: BridgeId,
    port: u16,
}

#[derive(Debug, Clone)]
struct Port {
    id: u16,
    path_cost: u32,
    state: PortState,
    /// When the forward delay timer moves Listening/Learning on.
    advance_at: Option<Ticks>,
    /// The designated information held for the port's segment.
    info: Vector,
    /// When the held information had message age 0 (None: the message age timer is stopped).
    born: Option<Ticks>,
    /// A topology change acknowledgment is owed on this port.
    tca: bool,
}

/// One bridge running 802.1D STP. Ports are indices `0..ports`; port `i` has port id
/// `0x8000 | (i + 1)`. Methods taking a port panic when it is out of range.
#[derive(Debug, Clone)]
pub struct Bridge {
    id: BridgeId,
    conf: Timers,
    /// The timers in use: the root's (learnt on the root port), ours when we are root.
    timers: Timers,
    ports: Vec<Port>,
    root: BridgeId,
    root_cost: u32,
    root_port: Option<usize>,
    next_hello: Option<Ticks>,
    tcn_at: Option<Ticks>,
    tc_until: Option<Ticks>,
    topology_change: bool,
    tc_detected: bool,
}

type Out = Vec<(usize, Bpdu)>;

impl Bridge {
    /// A bridge with `ports` ports, all link-up, starting as root (802.1D 8.8.1).
    pub fn new(id: BridgeId, ports: usize, conf: Timers, now: Ticks) -> (Bridge, Out) {
        let own = Vector {
            root: id,
            cost: 0,
            bridge: id,
            port: 0,
        };
        let port = |i: usize| Port {
            id: 0x8000 | (i as u16 + 1),
            path_cost: DEFAULT_PATH_COST,
            state: PortState::Blocking,
            advance_at: None,
            info: Vector {
                port: 0x8000 | (i as u16 + 1),
                ..own
            },
            born: None,
            tca: false,
        };
        let mut b = Bridge {
            id,
            conf,
            timers: conf,
            ports: (0..ports).map(port).collect(),
            root: id,
            root_cost: 0,
            root_port: None,
            next_hello: None,
            tcn_at: None,
            tc_until: None,
            topology_change: false,
            tc_detected: false,
        };
        let mut out = Vec::new();
        b.port_state_selection(now, &mut out);
        b.start_hello(now, &mut out);
        (b, out)
    }

    /// Sets a port's path cost; takes effect at the next configuration update.
    pub fn set_path_cost(&mut self, port: usize, cost: u32) {
        self.ports[port].path_cost = cost;
    }

    /// Grows or shrinks the bridge to `ports` ports. New ports start Disabled (link down);
    /// the caller removes only ports that are Disabled.
    pub fn set_ports(&mut self, ports: usize) {
        self.ports.truncate(ports);
        while self.ports.len() < ports {
            let i = self.ports.len();
            let id = 0x8000 | (i as u16 + 1);
            self.ports.push(Port {
                id,
                path_cost: DEFAULT_PATH_COST,
                state: PortState::Disabled,
                advance_at: None,
                info: Vector {
                    root: self.root,
                    cost: self.root_cost,
                    bridge: self.id,
                    port: id,
                },
                born: None,
                tca: false,
            });
        }
        if self.root_port.is_some_and(|p| p >= ports) {
            self.configuration_update();
        }
    }

    /// Sets a port's path cost and recomputes the tree at once (802.1D 8.8.6).
    pub fn change_path_cost(&mut self, port: usize, cost: u32, now: Ticks) -> Out {
        let mut out = Vec::new();
        let was_root = self.is_root();
        self.ports[port].path_cost = cost;
        self.configuration_update();
        self.port_state_selection(now, &mut out);
        self.after_root_change(was_root, now, &mut out);
        out
    }

    /// This bridge's id.
    pub fn id(&self) -> BridgeId {
        self.id
    }
    /// The root this bridge believes in.
    pub fn root(&self) -> BridgeId {
        self.root
    }
    /// The port towards the root (None on the root).
    pub fn root_port(&self) -> Option<usize> {
        self.root_port
    }
    /// Whether a topology change is in progress (forwarding should age addresses out after
    /// forward delay instead of the usual aging time).
    pub fn topology_change(&self) -> bool {
        self.topology_change
    }
    /// The timers in use (the root's).
    pub fn timers(&self) -> Timers {
        self.timers
    }
    /// A port's state.
    pub fn state(&self, port: usize) -> PortState {
        self.ports[port].state
    }

    /// The cost of our path to the root (0 on the root).
    pub fn root_cost(&self) -> u32 {
        self.root_cost
    }
    /// The timers configured here (used while this bridge is root).
    pub fn conf(&self) -> Timers {
        self.conf
    }
    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }
    /// A port's id (priority and number) as sent in BPDUs.
    pub fn port_id(&self, port: usize) -> u16 {
        self.ports[port].id
    }
    /// A port's path cost.
    pub fn path_cost(&self, port: usize) -> u32 {
        self.ports[port].path_cost
    }
    /// The designated information held for a port's segment: root, root path cost,
    /// designated bridge and designated port.
    pub fn designated(&self, port: usize) -> (BridgeId, u32, BridgeId, u16) {
        let i = self.ports[port].info;
        (i.root, i.cost, i.bridge, i.port)
    }

    /// Sets the timers this bridge uses when it is root (802.1D 8.8.5); a running Listening
    /// or Learning period keeps the delay it started with.
    pub fn set_timers(&mut self, t: Timers) {
        self.conf = t;
        if self.is_root() {
            self.timers = t;
        }
    }

    /// Sets the bridge priority (802.1D 8.8.4): the id changes, the segments we are
    /// designated for take the new id, and the tree is recomputed.
    pub fn set_priority(&mut self, priority: u16, now: Ticks) -> Out {
        let mut out = Vec::new();
        let was_root = self.is_root();
        let designated: Vec<usize> = (0..self.ports.len())
            .filter(|&p| self.is_designated(p))
            .collect();
        self.id.priority = priority;
        if was_root {
            self.root = self.id;
        }
        for p in designated {
            self.become_designated(p);
        }
        self.configuration_update();
        self.port_state_selection(now, &mut out);
        if was_root && !self.is_root() {
            self.next_hello = None;
        }
        self.after_root_change(was_root, now, &mut out);
        self.config_bpdu_generation(now, &mut out);
        out
    }

    /// A port's role.
    pub fn role(&self, port: usize) -> PortRole {
        if self.ports[port].state == PortState::Disabled {
            PortRole::Disabled
        } else if self.root_port == Some(port) {
            PortRole::Root
        } else if self.is_designated(port) {
            PortRole::Designated
        } else {
            PortRole::Blocked
        }
    }

    /// A BPDU arrived on `port` (802.1D 8.7.1, 8.7.2).
    pub fn receive(&mut self, port: usize, bpdu: &Bpdu, now: Ticks) -> Out {
        let mut out = Vec::new();
        if self.ports[port].state != PortState::Disabled {
            match bpdu {
                Bpdu::Config(c) => self.received_config(port, c, now, &mut out),
                Bpdu::Tcn => self.received_tcn(port, now, &mut out),
                Bpdu::Rst(_) => {}
            }
        }
        out
    }

    /// Runs the timers that are due by `now` (802.1D 8.7.4-8.7.8). Call it at least every
    /// quarter second of protocol time or so; later calls only make timers late.
    pub fn tick(&mut self, now: Ticks) -> Out {
        let mut out = Vec::new();
        if self.next_hello.is_some_and(|t| now >= t) {
            self.config_bpdu_generation(now, &mut out);
            self.next_hello = Some(now + Ticks::from(self.timers.hello_time));
        }
        if self.tcn_at.is_some_and(|t| now >= t) {
            self.transmit_tcn(now, &mut out);
        }
        if self.tc_until.is_some_and(|t| now >= t) {
            (self.tc_until, self.topology_change, self.tc_detected) = (None, false, false);
        }
        for p in 0..self.ports.len() {
            self.message_age_timer(p, now, &mut out);
            self.forward_delay_timer(p, now, &mut out);
        }
        out
    }

    /// The port's link came up (802.1D 8.8.2).
    pub fn link_up(&mut self, port: usize, now: Ticks) -> Out {
        let mut out = Vec::new();
        if self.ports[port].state == PortState::Disabled {
            self.become_designated(port);
            let p = &mut self.ports[port];
            (p.state, p.tca, p.born, p.advance_at) = (PortState::Blocking, false, None, None);
            self.port_state_selection(now, &mut out);
        }
        out
    }

    /// The port's link went down (802.1D 8.8.3).
    pub fn link_down(&mut self, port: usize, now: Ticks) -> Out {
        let mut out = Vec::new();
        let was_root = self.is_root();
        self.become_designated(port);
        let p = &mut self.ports[port];
        (p.state, p.tca, p.born, p.advance_at) = (PortState::Disabled, false, None, None);
        self.configuration_update();
        self.port_state_selection(now, &mut out);
        self.after_root_change(was_root, now, &mut out);
        out
    }

    fn is_root(&self) -> bool {
        self.root == self.id
    }

    fn is_designated(&self, port: usize) -> bool {
        let p = &self.ports[port];
        p.info.bridge == self.id && p.info.port == p.id
    }

    /// What this bridge would send on `port` as its designated bridge.
    fn offer(&self, port: usize) -> Vector {
        Vector {
            root: self.root,
            cost: self.root_cost,
            bridge: self.id,
            port: self.ports[port].id,
        }
    }

    fn received_config(&mut self, port: usize, c: &Config, now: Ticks, out: &mut Out) {
        let v = Vector {
            root: c.root,
            cost: c.root_path_cost,
            bridge: c.bridge,
            port: c.port_id,
        };
        if v <= self.ports[port].info {
            self.adopt(port, v, c, now, out);
        } else if self.is_designated(port) {
            self.transmit_config(port, now, out);
        }
    }

    /// Better (or refreshed) information for a segment (802.1D 8.7.1 steps 1-5).
    fn adopt(&mut self, port: usize, v: Vector, c: &Config, now: Ticks, out: &mut Out) {
        let was_root = self.is_root();
        let born = now.saturating_sub(Ticks::from(c.message_age));
        (self.ports[port].info, self.ports[port].born) = (v, Some(born));
        self.configuration_update();
        self.port_state_selection(now, out);
        if was_root && !self.is_root() {
            self.next_hello = None;
            if self.tc_detected {
                self.tc_until = None;
                self.transmit_tcn(now, out);
            }
        }
        if self.root_port == Some(port) {
            self.record_root_port(c, now, out);
        }
    }

    /// Root port information: the root's timers and topology change flags, relayed at once.
    fn record_root_port(&mut self, c: &Config, now: Ticks, out: &mut Out) {
        self.timers = Timers {
            max_age: c.max_age,
            hello_time: c.hello_time,
            forward_delay: c.forward_delay,
        };
        self.topology_change = c.flags & flags::TC != 0;
        self.config_bpdu_generation(now, out);
        if c.flags & flags::TCA != 0 {
            (self.tc_detected, self.tcn_at) = (false, None);
        }
    }

    /// A TCN on a designated port: pass it towards the root and acknowledge (8.7.2).
    fn received_tcn(&mut self, port: usize, now: Ticks, out: &mut Out) {
        if self.is_designated(port) {
            self.topology_change_detection(now, out);
            self.ports[port].tca = true;
            self.transmit_config(port, now, out);
        }
    }

    fn message_age_timer(&mut self, port: usize, now: Ticks, out: &mut Out) {
        let max_age = Ticks::from(self.timers.max_age);
        if self.ports[port].born.is_none_or(|b| now < b + max_age) {
            return;
        }
        self.ports[port].born = None;
        // Our own information on a segment we became designated for does not age (as Linux).
        if self.is_designated(port) {
            return;
        }
        let was_root = self.is_root();
        self.become_designated(port);
        self.configuration_update();
        self.port_state_selection(now, out);
        self.after_root_change(was_root, now, out);
    }

    /// Having become root (8.7.5): our own timers, announce the change, start the hello timer.
    fn after_root_change(&mut self, was_root: bool, now: Ticks, out: &mut Out) {
        if self.is_root() && !was_root {
            self.timers = self.conf;
            self.tcn_at = None;
            self.topology_change_detection(now, out);
            self.start_hello(now, out);
        }
    }

    fn start_hello(&mut self, now: Ticks, out: &mut Out) {
        self.config_bpdu_generation(now, out);
        self.next_hello = Some(now + Ticks::from(self.timers.hello_time));
    }

    fn forward_delay_timer(&mut self, port: usize, now: Ticks, out: &mut Out) {
        if self.ports[port].advance_at.is_none_or(|t| now < t) {
            return;
        }
        match self.ports[port].state {
            PortState::Listening => self.set_state(port, PortState::Learning, now, out),
            PortState::Learning => {
                self.set_state(port, PortState::Forwarding, now, out);
                if (0..self.ports.len()).any(|p| self.is_designated(p)) {
                    self.topology_change_detection(now, out);
                }
            }
            _ => self.ports[port].advance_at = None,
        }
    }

    /// Root selection and designated port selection (8.6.8, 8.6.9).
    fn configuration_update(&mut self) {
        self.root_selection();
        for p in 0..self.ports.len() {
            let info = self.ports[p].info;
            if info.root != self.root || self.offer(p) <= info {
                self.become_designated(p);
            }
        }
    }

    fn root_selection(&mut self) {
        let best = (0..self.ports.len())
            .filter(|&p| self.ports[p].state != PortState::Disabled)
            .filter(|&p| !self.is_designated(p) && self.ports[p].info.root < self.id)
            .min_by_key(|&p| {
                let (i, port) = (self.ports[p].info, &self.ports[p]);
                let cost = i.cost.saturating_add(port.path_cost);
                (i.root, cost, i.bridge, i.port, port.id)
            });
        self.root_port = best;
        (self.root, self.root_cost) = match best {
            Some(p) => {
                let (i, c) = (self.ports[p].info, self.ports[p].path_cost);
                (i.root, i.cost.saturating_add(c))
            }
            None => (self.id, 0),
        };
    }

    fn become_designated(&mut self, port: usize) {
        self.ports[port].info = self.offer(port);
    }

    /// Root and designated ports head for Forwarding, the rest block (8.6.11).
    fn port_state_selection(&mut self, now: Ticks, out: &mut Out) {
        for p in 0..self.ports.len() {
            if self.ports[p].state == PortState::Disabled {
                continue;
            }
            if self.root_port == Some(p) || self.is_designated(p) {
                if self.ports[p].state == PortState::Blocking {
                    self.set_state(p, PortState::Listening, now, out);
                }
            } else {
                self.ports[p].tca = false;
                self.set_state(p, PortState::Blocking, now, out);
            }
        }
    }

    /// Changes state, (re)starting the forward delay timer for Listening and Learning; a port
    /// leaving Learning or Forwarding for anything but Forwarding is a topology change.
    fn set_state(&mut self, port: usize, s: PortState, now: Ticks, out: &mut Out) {
        let old = self.ports[port].state;
        if old == s {
            return;
        }
        let delay = Ticks::from(self.timers.forward_delay);
        let p = &mut self.ports[port];
        p.state = s;
        p.advance_at =
            matches!(s, PortState::Listening | PortState::Learning).then_some(now + delay);
        let was_active = matches!(old, PortState::Learning | PortState::Forwarding);
        if was_active && s != PortState::Forwarding {
            self.topology_change_detection(now, out);
        }
    }

    /// 8.6.14: the root flags the change itself; others tell the root with TCNs until acked.
    fn topology_change_detection(&mut self, now: Ticks, out: &mut Out) {
        if self.is_root() {
            self.topology_change = true;
            let t = Ticks::from(self.timers.max_age) + Ticks::from(self.timers.forward_delay);
            self.tc_until = Some(now + t);
        } else if !self.tc_detected {
            self.transmit_tcn(now, out);
        }
        self.tc_detected = true;
    }

    fn transmit_tcn(&mut self, now: Ticks, out: &mut Out) {
        if let Some(rp) = self.root_port {
            out.push((rp, Bpdu::Tcn));
        }
        self.tcn_at = Some(now + Ticks::from(self.conf.hello_time));
    }

    fn config_bpdu_generation(&mut self, now: Ticks, out: &mut Out) {
        for p in 0..self.ports.len() {
            if self.ports[p].state != PortState::Disabled && self.is_designated(p) {
                self.transmit_config(p, now, out);
            }
        }
    }

    /// A Configuration BPDU on a designated port (8.6.1), unless our root information is
    /// already older than max age.
    fn transmit_config(&mut self, port: usize, now: Ticks, out: &mut Out) {
        let age = match self.root_port.and_then(|rp| self.ports[rp].born) {
            Some(born) => now.saturating_sub(born) + Ticks::from(MESSAGE_AGE_INCR),
            None => 0,
        };
        if age >= Ticks::from(self.timers.max_age) {
            return;
        }
        let tca = std::mem::take(&mut self.ports[port].tca);
        let flags = (u8::from(self.topology_change) * flags::TC) | (u8::from(tca) * flags::TCA);
        let c = Config {
            flags,
            root: self.root,
            root_path_cost: self.root_cost,
            bridge: self.id,
            port_id: self.ports[port].id,
            message_age: age as u16,
            max_age: self.timers.max_age,
            hello_time: self.timers.hello_time,
            forward_delay: self.timers.forward_delay,
        };
        out.push((port, Bpdu::Config(c)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const STEP: Ticks = 64; // a quarter second
    const SEC: Ticks = 256;

    fn id(n: u8) -> BridgeId {
        BridgeId {
            priority: 0x8000,
            mac: [2, 0, 0, 0, 0, n],
        }
    }

    /// (bridge index, port index).
    type End = (usize, usize);

    /// Bridges joined by point-to-point links; every BPDU goes through encode/decode.
    struct Net {
        bridges: Vec<Bridge>,
        /// ((bridge, port), (bridge, port), carries frames).
        links: Vec<(End, End, bool)>,
        queue: VecDeque<(usize, usize, Vec<u8>)>,
        now: Ticks,
    }

    impl Net {
        fn new(ports: &[usize], links: &[(End, End)]) -> Net {
            let mut net = Net {
                bridges: Vec::new(),
                links: links.iter().map(|&(a, b)| (a, b, true)).collect(),
                queue: VecDeque::new(),
                now: 0,
            };
            for (i, &n) in ports.iter().enumerate() {
                let (b, out) = Bridge::new(id(i as u8 + 1), n, Timers::default(), 0);
                net.bridges.push(b);
                net.send(i, out);
            }
            net
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

        /// Steps until `done` holds, returning the protocol time it took; panics past `limit`.
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

        /// Cuts link `l`: with `notify` both ends see link down, else frames just vanish.
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
            (0..b.len()).flat_map(move |i| (0..b[i].ports.len()).map(move |p| (i, p)))
        }

        fn blocked(&self) -> Vec<End> {
            let b = &self.bridges;
            self.ports()
                .filter(|&(i, p)| b[i].role(p) == PortRole::Blocked)
                .collect()
        }

        /// Root and designated ports forward, blocked ports block, and all agree on the root.
        fn settled(&self) -> bool {
            let b = &self.bridges;
            let agree = b.iter().all(|x| x.root() == b[0].root());
            agree
                && self.ports().all(|(i, p)| match b[i].role(p) {
                    PortRole::Root | PortRole::Designated => b[i].state(p) == PortState::Forwarding,
                    PortRole::Blocked => b[i].state(p) == PortState::Blocking,
                    PortRole::Disabled => true,
                })
        }
    }

    fn bound() -> Ticks {
        let t = Timers::default();
        Ticks::from(t.max_age) + 2 * Ticks::from(t.forward_delay)
    }

    #[test]
    fn two_bridges_two_links_block_one_port() {
        // A0-B0, A1-B1: B (higher id) blocks the port facing A's higher port id.
        let mut net = Net::new(&[2, 2], &[((0, 0), (1, 0)), ((0, 1), (1, 1))]);
        let t = net.until(bound(), Net::settled);
        assert!(t <= 2 * 15 * SEC + STEP, "{t}");
        assert_eq!(net.blocked(), vec![(1, 1)]);
        assert_eq!(net.bridges[1].root(), id(1));
        assert_eq!(net.bridges[1].root_port(), Some(0));
        net.run(60 * SEC);
        assert!(net.settled());
        assert_eq!(net.blocked(), vec![(1, 1)]);

        net.cut(0, true);
        let t = net.until(bound(), |n| n.settled() && n.blocked().is_empty());
        assert!(t <= 2 * 15 * SEC + STEP, "{t}");
        assert_eq!(net.bridges[1].root_port(), Some(1));
        assert_eq!(net.bridges[1].role(0), PortRole::Disabled);
    }

    fn triangle() -> Net {
        // A0-B0, A1-C0, B1-C1: the B-C segment is the non-root one; C has the highest id.
        let mut net = Net::new(
            &[2, 2, 2],
            &[((0, 0), (1, 0)), ((0, 1), (2, 0)), ((1, 1), (2, 1))],
        );
        net.until(bound(), Net::settled);
        net
    }

    #[test]
    fn triangle_blocks_the_highest_bridge_on_the_non_root_segment() {
        let mut net = triangle();
        assert_eq!(net.blocked(), vec![(2, 1)]);
        assert!(net.bridges.iter().all(|b| b.root() == id(1)));
        assert_eq!(net.bridges[1].role(1), PortRole::Designated);
        assert_eq!(net.bridges[2].root_port(), Some(0));
        net.run(120 * SEC);
        assert!(net.settled());
        assert_eq!(net.blocked(), vec![(2, 1)]);
    }

    #[test]
    fn triangle_reconverges_after_link_down() {
        let mut net = triangle();
        net.cut(0, true); // A-B: B must reach A through C.
        let t = net.until(bound(), |n| n.settled() && n.blocked().is_empty());
        assert!(t <= bound(), "{t}");
        assert_eq!(net.bridges[1].root_port(), Some(1));
        assert_eq!(net.bridges[2].role(1), PortRole::Designated);
        assert!(
            net.bridges[0].topology_change(),
            "the root heard of the change"
        );
        net.run(60 * SEC);
        assert!(net.settled() && net.blocked().is_empty());
        assert!(
            !net.bridges[0].topology_change(),
            "over after max age + forward delay"
        );
        let acked = net
            .bridges
            .iter()
            .all(|b| b.tcn_at.is_none() && !b.tc_detected);
        assert!(acked, "TCNs were acknowledged");
    }

    #[test]
    fn triangle_reconverges_after_silent_cut() {
        let mut net = triangle();
        net.cut(1, false); // A-C without link down: C only notices by message age.
        let t = net.until(bound(), |n| {
            n.bridges[2].root_port() == Some(1) && n.settled() && n.blocked().is_empty()
        });
        assert!(t <= bound(), "{t}");
        assert!(
            t >= 15 * SEC,
            "info cannot expire before max age minus its age: {t}"
        );
        assert!(net.bridges.iter().all(|b| b.root() == id(1)));
    }

    #[test]
    fn cutting_the_blocked_link_changes_no_roles() {
        let mut net = triangle();
        net.cut(2, true);
        net.run(5 * SEC);
        assert!(net.settled() && net.blocked().is_empty());
        assert_eq!(net.bridges[2].root_port(), Some(0));
        assert_eq!(net.bridges[1].root_port(), Some(0));
    }

    #[test]
    fn link_up_restarts_listening_and_blocks_again() {
        let mut net = triangle();
        net.cut(2, true);
        net.links[2].2 = true;
        for (b, p) in [(1, 1), (2, 1)] {
            let out = net.bridges[b].link_up(p, net.now);
            assert_eq!(net.bridges[b].state(p), PortState::Listening);
            net.send(b, out);
        }
        net.until(bound(), Net::settled);
        assert_eq!(net.blocked(), vec![(2, 1)]);
    }

    #[test]
    fn relays_root_info_with_age_cost_timers_and_tc() {
        let (mut b, _) = Bridge::new(id(5), 2, Timers::default(), 0);
        let root = Config {
            flags: flags::TC,
            root: id(1),
            root_path_cost: 4,
            bridge: id(2),
            port_id: 0x8003,
            message_age: SEC as u16,
            max_age: 6 * 256,
            hello_time: 256,
            forward_delay: 4 * 256,
        };
        let out = b.receive(0, &Bpdu::Config(root), 10 * SEC);
        assert_eq!(b.root_port(), Some(0));
        let [(1, Bpdu::Config(c))] = out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (c.root, c.root_path_cost, c.bridge, c.port_id),
            (id(1), 23, id(5), 0x8002)
        );
        assert_eq!(c.message_age, 2 * 256, "received age plus one hop");
        assert_eq!(
            (c.max_age, c.hello_time, c.forward_delay),
            (6 * 256, 256, 4 * 256)
        );
        assert_eq!(
            c.flags,
            flags::TC,
            "the root's topology change is passed on"
        );
        assert!(b.topology_change());
        // Unrefreshed, the information expires max age after it was born (9 s) at 15 s.
        assert!(b.tick(15 * SEC - 1).is_empty());
        b.tick(15 * SEC);
        assert_eq!((b.root(), b.root_port()), (id(5), None));
        assert_eq!(b.timers(), Timers::default(), "own timers again as root");
    }

    #[test]
    fn lone_root_sends_hellos_with_its_timers() {
        let (mut b, out) = Bridge::new(id(9), 1, Timers::default(), 0);
        assert_eq!(out.len(), 1);
        let Bpdu::Config(c) = out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(
            (c.root, c.bridge, c.root_path_cost, c.message_age),
            (id(9), id(9), 0, 0)
        );
        assert_eq!(
            (c.port_id, c.hello_time, c.max_age),
            (0x8001, 512, 20 * 256)
        );
        assert!(b.tick(SEC).is_empty());
        assert_eq!(b.tick(2 * SEC).len(), 1);
        assert_eq!(b.state(0), PortState::Listening);
        b.tick(15 * SEC);
        assert_eq!(b.state(0), PortState::Learning);
        b.tick(30 * SEC);
        assert_eq!(b.state(0), PortState::Forwarding);
        assert!(
            b.receive(0, &Bpdu::Rst(c), 31 * SEC).is_empty(),
            "RST is ignored"
        );
    }
}
