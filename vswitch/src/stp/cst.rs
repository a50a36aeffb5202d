//! One common spanning tree (CST) over all of a switch's VLANs, as the forwarding core
//! uses it: switch port `p` (1..=numports) is [`Bridge`] port `p - 1`, BPDUs go untagged,
//! and a port's state gates every VLAN alike. Port 0 (the management port) is not part of
//! the tree and always forwards. Pure: time comes in as the core's `now_ms`.

use super::bpdu::{Bpdu, BridgeId};
use super::fsm::{Bridge, PortState, Ticks, Timers};
use crate::core::PortId;

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
    pub bridge: Bridge,
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
        let id = BridgeId { priority, mac };
        let n = numports as usize;
        let (mut bridge, _) = Bridge::new(id, n, timers, ticks(now_ms));
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
        let mut v = Vec::new();
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

    /// How long learnt addresses live during a topology change: forward delay (802.1D
    /// 8.3.5), None when there is none.
    pub fn fast_aging_ms(&self) -> Option<u64> {
        self.bridge
            .topology_change()
            .then(|| ms(self.bridge.timers().forward_delay))
    }
}
