//! The switching core: ports, VLAN membership, per-VLAN MAC learning with ageing, and the
//! forwarding decision. Pure: no sockets, time comes in as `now_ms` (monotonic milliseconds).

use crate::auth::mab::{Change, Mab, Verdict};
use crate::impair::ImpairCfg;
use crate::stp::bpdu::STP_GROUP;
use crate::stp::cst::Cst;
use crate::stp::fsm::{PortState, Timers};
use crate::wire::{is_group, EthernetFrame, Mac, WireError, MAX_FRAME_LEN};
use std::collections::HashMap;

/// The MAC table's hasher: foldhash (seeded per process) instead of SipHash, which was
/// ~1 % of the switch's CPU per frame under load. Keys are guest-chosen MACs, so the
/// seed stays random.
type MacHasher = foldhash::fast::RandomState;

/// Port number (0 = management port, 1..=numports).
pub type PortId = u16;
/// "No untagged VLAN" marker used by `port/setvlan P 4095`.
pub const NO_VLAN: u16 = 4095;

/// Why a frame was dropped. Each reason has its own counter (ingress port or egress port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than 14 bytes.
    Runt = 0,
    /// Longer than the jumbo limit.
    Oversize,
    /// 802.1Q tag truncated or VID 4095.
    BadTag,
    /// Tagged with a VLAN the ingress port is not in (or an undefined VLAN).
    NotMember,
    /// Untagged frame on a port with no untagged VLAN.
    NoUntagged,
    /// Known unicast destination is the ingress port itself.
    SamePort,
    /// Egress queue over its memory bound (receiver really gone or far too slow).
    QueueFull,
    /// send() failed with something other than EAGAIN.
    SendError,
    /// Impairment: random loss.
    ImpairLoss,
    /// Impairment: frame longer than the configured MTU.
    ImpairMtu,
    /// Impairment: delay queue over its bound.
    ImpairQueue,
    /// `auth mab` port: the source MAC is not (yet) authorized.
    Unauthorized,
}

/// Number of [`DropReason`] variants.
pub const DROP_REASONS: usize = 12;

impl DropReason {
    pub const ALL: [DropReason; DROP_REASONS] = [
        DropReason::Runt,
        DropReason::Oversize,
        DropReason::BadTag,
        DropReason::NotMember,
        DropReason::NoUntagged,
        DropReason::SamePort,
        DropReason::QueueFull,
        DropReason::SendError,
        DropReason::ImpairLoss,
        DropReason::ImpairMtu,
        DropReason::ImpairQueue,
        DropReason::Unauthorized,
    ];
    /// Name used in `port/print` and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::Oversize => "oversize",
            DropReason::BadTag => "bad_tag",
            DropReason::NotMember => "vlan_not_member",
            DropReason::NoUntagged => "no_untagged_vlan",
            DropReason::SamePort => "same_port",
            DropReason::QueueFull => "egress_queue_full",
            DropReason::SendError => "send_error",
            DropReason::ImpairLoss => "impair_loss",
            DropReason::ImpairMtu => "impair_mtu",
            DropReason::ImpairQueue => "impair_queue",
            DropReason::Unauthorized => "unauthorized",
        }
    }
}

/// A set of VLAN IDs 0..4095 as a bitmap.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet([u64; 64]);

impl Default for VlanSet {
    fn default() -> Self {
        VlanSet([0; 64])
    }
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl VlanSet {
    pub fn contains(&self, v: u16) -> bool {
        v < 4096 && self.0[(v / 64) as usize] & (1 << (v % 64)) != 0
    }
    pub fn insert(&mut self, v: u16) {
        if v < 4096 {
            self.0[(v / 64) as usize] |= 1 << (v % 64);
        }
    }
    pub fn remove(&mut self, v: u16) {
        if v < 4096 {
            self.0[(v / 64) as usize] &= !(1 << (v % 64));
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..4096u16).filter(|&v| self.contains(v))
    }
}

/// Per-port counters (vde_switch counts ingress before the VLAN filter, egress once per port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub in_frames: u64,
    pub in_bytes: u64,
    pub out_frames: u64,
    pub out_bytes: u64,
    pub drops: [u64; DROP_REASONS],
}

/// One client connection (vde_switch "endpoint") on a port; kept here for `port/print`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Endpoint id (the switch-side fd of the ctl stream, as vde_switch shows it).
    pub id: u32,
    /// `unix prog`, `tuntap`, `vxlan`, `stream`, ...
    pub module: String,
    pub descr: String,
}

/// Access control for a port (`port/setuser`, `port/setgroup`); `None` = NONE/ANY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acl {
    pub user: Option<u32>,
    pub group: Option<u32>,
}

/// A port: outlives its clients, keeps VLAN config and counters while inactive.
#[derive(Debug, Clone)]
pub struct Port {
    pub allocatable: bool,
    pub untagged: u16,
    pub tagged: VlanSet,
    pub endpoints: Vec<EndpointInfo>,
    /// uid of the current user (owner of the first client's socket), None = NONE.
    pub user: Option<u32>,
    pub acl: Acl,
    pub counters: Counters,
    /// Impairments on frames entering the switch from this port.
    pub impair_in: ImpairCfg,
    /// Impairments on frames leaving the switch to this port.
    pub impair_out: ImpairCfg,
    /// `auth mab`: the VLAN RADIUS put the port's authorized MACs in, used instead of
    /// `untagged` while set (kept in step by the core, see [`Switch::auth_sync`]).
    pub auth_vlan: Option<u16>,
}

impl Port {
    fn new(allocatable: bool) -> Self {
        Port {
            allocatable,
            untagged: 0,
            tagged: VlanSet::default(),
            endpoints: Vec::new(),
            user: None,
            acl: Acl::default(),
            counters: Counters::default(),
            impair_in: ImpairCfg::default(),
            impair_out: ImpairCfg::default(),
            auth_vlan: None,
        }
    }
    /// The untagged VLAN in force: RADIUS's assignment, else the configured one.
    #[inline]
    pub fn untagged_vlan(&self) -> u16 {
        self.auth_vlan.unwrap_or(self.untagged)
    }
    pub fn active(&self) -> bool {
        !self.endpoints.is_empty()
    }
    /// Member of VLAN `v` (untagged or tagged).
    pub fn member(&self, v: u16) -> bool {
        self.untagged_vlan() == v || self.tagged.contains(v)
    }
}

/// What a learned MAC entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacEntry {
    pub port: PortId,
    pub last_seen_ms: u64,
}

/// Result of learning a source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    New,
    Refreshed,
    /// The MAC moved from another port (anti-flap window had passed).
    Moved {
        from: PortId,
    },
    /// Seen on another port within `minpersistence`: the old port is kept.
    Kept {
        on: PortId,
    },
    /// Not learned: the table (or the port's share of it) is full. Frames to this MAC are
    /// flooded, as for any unknown address.
    Refused,
}

/// Default bound of the whole MAC table (Open vSwitch's mac-table-size is 2048; a lab of
/// dozens of VMs stays far below 8192, and a full table costs ~1 MiB and a sub-millisecond
/// ageing pass).
pub const DEFAULT_MAC_TABLE_SIZE: usize = 8192;
/// Default bound of the MACs one port may hold: one guest spraying random source
/// addresses takes an eighth of the table at most, so the others keep learning.
pub const DEFAULT_MAC_PER_PORT: usize = 1024;

/// Per-VLAN MAC learning table with ageing (vde_switch semantics: key = (VLAN, MAC),
/// entries expire after `expire_ms`, a MAC moves only after `minper_ms` without refresh).
#[derive(Debug, Clone)]
pub struct MacTable {
    map: HashMap<(u16, Mac), MacEntry, MacHasher>,
    pub hashsize: usize,
    pub gcint_s: u64,
    pub expire_ms: u64,
    pub minper_ms: u64,
    last_gc_ms: u64,
    /// Bound of the whole table (`--mac-table-size`).
    pub max_entries: usize,
    /// Bound of one port's entries (`--mac-per-port`).
    pub max_per_port: usize,
    /// Entries per port (index = port), kept with the map.
    per_port: Vec<usize>,
    /// Learnings refused because a bound was reached.
    pub refused: u64,
    /// Shorter aging while a spanning tree topology change runs (forward delay).
    pub tc_expire_ms: Option<u64>,
}

impl MacTable {
    pub fn new(hashsize: usize) -> Self {
        let hashsize = hashsize.max(1).next_power_of_two();
        MacTable {
            map: HashMap::with_capacity_and_hasher(hashsize, MacHasher::default()),
            hashsize,
            gcint_s: 2,
            expire_ms: 100_000,
            minper_ms: 3_000,
            last_gc_ms: 0,
            max_entries: DEFAULT_MAC_TABLE_SIZE,
            max_per_port: DEFAULT_MAC_PER_PORT,
            per_port: Vec::new(),
            refused: 0,
            tc_expire_ms: None,
        }
    }

    /// Entries `port` holds.
    pub fn port_entries(&self, port: PortId) -> usize {
        self.per_port.get(port as usize).copied().unwrap_or(0)
    }

    fn count(&mut self, port: PortId, up: bool) {
        let i = port as usize;
        if self.per_port.len() <= i {
            self.per_port.resize(i + 1, 0);
        }
        let c = &mut self.per_port[i];
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }

    /// Whether `port` may take one more entry (a new MAC, or one moving to it).
    fn room_on(&self, port: PortId) -> bool {
        self.port_entries(port) < self.max_per_port
    }

    /// Put `mac` on `port` in place of an entry of `old` (moved or expired), within the
    /// per-port bound.
    fn repoint(&mut self, key: (u16, Mac), old: PortId, port: PortId, now_ms: u64) -> bool {
        if old != port && !self.room_on(port) {
            self.refused += 1;
            return false;
        }
        self.count(old, false);
        self.count(port, true);
        self.map.insert(
            key,
            MacEntry {
                port,
                last_seen_ms: now_ms,
            },
        );
        true
    }

    /// Insert a new MAC within both bounds.
    fn insert_new(&mut self, key: (u16, Mac), port: PortId, now_ms: u64) -> Learned {
        if self.map.len() >= self.max_entries || !self.room_on(port) {
            self.refused += 1;
            return Learned::Refused;
        }
        self.count(port, true);
        self.map.insert(
            key,
            MacEntry {
                port,
                last_seen_ms: now_ms,
            },
        );
        Learned::New
    }

    /// The aging time in force: `expire_ms`, or less during a topology change.
    #[inline]
    pub fn expire(&self) -> u64 {
        match self.tc_expire_ms {
            Some(t) => t.min(self.expire_ms),
            None => self.expire_ms,
        }
    }

    /// Learn `mac` on `port` in `vlan` at `now_ms`, within the table's bounds.
    pub fn learn(&mut self, vlan: u16, mac: Mac, port: PortId, now_ms: u64) -> Learned {
        let (expire, minper) = (self.expire(), self.minper_ms);
        let key = (vlan, mac);
        let Some(e) = self.map.get_mut(&key) else {
            return self.insert_new(key, port, now_ms);
        };
        let age = now_ms.saturating_sub(e.last_seen_ms);
        let from = e.port;
        if age <= expire && from == port {
            e.last_seen_ms = now_ms;
            return Learned::Refreshed;
        }
        if age <= expire && age <= minper {
            return Learned::Kept { on: from };
        }
        if !self.repoint(key, from, port, now_ms) {
            return Learned::Refused;
        }
        if age > expire {
            Learned::New
        } else {
            Learned::Moved { from }
        }
    }

    /// Port for `mac` in `vlan`, ignoring entries older than `expire_ms`.
    pub fn lookup(&self, vlan: u16, mac: &Mac, now_ms: u64) -> Option<PortId> {
        self.map
            .get(&(vlan, *mac))
            .filter(|e| now_ms.saturating_sub(e.last_seen_ms) <= self.expire())
            .map(|e| e.port)
    }

    /// Full entry (for `hash/find`).
    pub fn get(&self, vlan: u16, mac: &Mac) -> Option<MacEntry> {
        self.map.get(&(vlan, *mac)).copied()
    }

    /// Drop expired entries if `gcint` has elapsed; returns how many were removed.
    pub fn gc(&mut self, now_ms: u64) -> usize {
        if now_ms.saturating_sub(self.last_gc_ms) < self.gcint_s.saturating_mul(1000) {
            return 0;
        }
        self.last_gc_ms = now_ms;
        let expire = self.expire();
        let before = self.map.len();
        let per_port = &mut self.per_port;
        self.map.retain(|_, e| {
            let keep = now_ms.saturating_sub(e.last_seen_ms) <= expire;
            if !keep {
                if let Some(c) = per_port.get_mut(e.port as usize) {
                    *c = c.saturating_sub(1);
                }
            }
            keep
        });
        before - self.map.len()
    }

    pub fn flush_port(&mut self, port: PortId) {
        self.map.retain(|_, e| e.port != port);
        if let Some(c) = self.per_port.get_mut(port as usize) {
            *c = 0;
        }
    }

    pub fn flush_all(&mut self) {
        self.map.clear();
        self.per_port.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bucket number shown by `hash/print` (vde_switch's hash: xor of the address bytes and
    /// the VLAN, masked to the table size).
    pub fn bucket(&self, vlan: u16, mac: &Mac) -> usize {
        let mut h: usize = vlan as usize;
        for (i, b) in mac.iter().enumerate() {
            h ^= (*b as usize) << ((i % 2) * 8);
        }
        h & (self.hashsize - 1)
    }

    /// All entries sorted by (VLAN, MAC) for stable output.
    pub fn entries(&self) -> Vec<((u16, Mac), MacEntry)> {
        let mut v: Vec<_> = self.map.iter().map(|(k, e)| (*k, *e)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Resize (vde_switch flushes the table).
    pub fn set_size(&mut self, n: usize) {
        self.hashsize = n.max(1).next_power_of_two();
        self.map = HashMap::with_capacity_and_hasher(self.hashsize, MacHasher::default());
        self.per_port.clear();
    }
}

/// How a frame must be rewritten for one egress port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    Unchanged,
    Strip,
    Insert(u16),
}

/// One output of the forwarding decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub port: PortId,
    pub action: TagAction,
}

/// Why a port cannot be given to a client. The client sees its ctl stream closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// Requested port beyond numports.
    OutOfRange,
    /// No free allocatable port.
    Full,
    /// Active port owned by another user.
    Busy,
    /// Port ACL refuses this uid.
    Denied,
    /// The port already has [`MAX_ENDPOINTS_PER_PORT`] endpoints.
    TooMany,
}

/// Most endpoints one port may have (vde_plug and stream peers of the same user may share
/// a port; a TCP listener's peers all have no uid and would otherwise pile up on its port,
/// each with its own egress queue).
pub const MAX_ENDPOINTS_PER_PORT: usize = 64;

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AllocError::OutOfRange => "requested port out of range",
            AllocError::Full => "no free port",
            AllocError::Busy => "port in use by another user",
            AllocError::Denied => "port access control denies this user",
            AllocError::TooMany => "port has too many endpoints",
        })
    }
}

/// The whole switch state that the console and the data path share.
#[derive(Debug, Clone)]
pub struct Switch {
    /// Highest usable port number (ports 1..=numports; upstream HEAD semantics of `-n`).
    pub numports: u16,
    /// Index = port number.
    pub ports: Vec<Option<Port>>,
    pub vlans: VlanSet,
    pub hub: bool,
    pub table: MacTable,
    /// Frames dropped before a port could be charged (unknown ingress).
    pub global_drops: [u64; DROP_REASONS],
    /// The spanning tree (`-F`); None: every port forwards, BPDUs are switched as data.
    pub stp: Option<Cst>,
    /// Port authentication (`port/setauth`, `auth/*`).
    pub auth: Mab,
    /// Whether any port is in `auth mab` (the data path skips the authenticator otherwise).
    auth_on: bool,
}

impl Switch {
    pub fn new(numports: u16, hub: bool, hashsize: usize) -> Self {
        let mut vlans = VlanSet::default();
        vlans.insert(0);
        Switch {
            numports,
            ports: vec![None; numports as usize + 1],
            vlans,
            hub,
            table: MacTable::new(hashsize),
            global_drops: [0; DROP_REASONS],
            stp: None,
            auth: Mab::new(numports, [0; 16]),
            auth_on: false,
        }
    }

    pub fn port(&self, p: PortId) -> Option<&Port> {
        self.ports.get(p as usize).and_then(|x| x.as_ref())
    }

    pub fn port_mut(&mut self, p: PortId) -> Option<&mut Port> {
        self.ports.get_mut(p as usize).and_then(|x| x.as_mut())
    }

    /// Create port `p` (inactive). `allocatable` = usable by "any port" requests.
    pub fn create_port(&mut self, p: PortId, allocatable: bool) -> bool {
        match self.ports.get_mut(p as usize) {
            Some(slot @ None) => {
                *slot = Some(Port::new(allocatable));
                true
            }
            _ => false,
        }
    }

    fn acl_allows(acl: &Acl, uid: Option<u32>, gids: &[u32]) -> bool {
        if uid == Some(0) {
            return true;
        }
        let user_ok = acl.user.is_none_or(|u| Some(u) == uid);
        let group_ok = acl.group.is_none_or(|g| gids.contains(&g));
        match (acl.user.is_some(), acl.group.is_some()) {
            (false, false) => true,
            (true, false) => user_ok,
            (false, true) => group_ok,
            (true, true) => user_ok || group_ok,
        }
    }

    /// Choose a port for a request (vde_switch rules, docs/vde-protocol.md "Port numbers and
    /// request kinds") and attach an endpoint to it.
    pub fn alloc(
        &mut self,
        req: crate::wire::PortRequest,
        uid: Option<u32>,
        gids: &[u32],
        ep: EndpointInfo,
    ) -> Result<PortId, AllocError> {
        use crate::wire::PortRequest;
        let p: PortId = match req {
            PortRequest::Port0 => 0,
            PortRequest::Port(n) => {
                if n > self.numports as u32 {
                    return Err(AllocError::OutOfRange);
                }
                n as PortId
            }
            PortRequest::Any => (1..=self.numports)
                .find(|&p| match self.port(p) {
                    None => true,
                    Some(port) => {
                        port.allocatable && !port.active() && Self::acl_allows(&port.acl, uid, gids)
                    }
                })
                .ok_or(AllocError::Full)?,
        };
        if self.port(p).is_none() {
            self.create_port(p, true);
        }
        let port = self.port_mut(p).expect("just created");
        if !Self::acl_allows(&port.acl, uid, gids) {
            return Err(AllocError::Denied);
        }
        if port.active() {
            if port.user != uid {
                return Err(AllocError::Busy);
            }
            if port.endpoints.len() >= MAX_ENDPOINTS_PER_PORT {
                return Err(AllocError::TooMany);
            }
        } else {
            port.user = uid;
        }
        port.endpoints.insert(0, ep);
        Ok(p)
    }

    /// Remove endpoint `id` from port `p`; the port goes inactive (and its MACs are
    /// flushed) with its last endpoint. Returns true if the endpoint existed.
    pub fn release(&mut self, p: PortId, id: u32) -> bool {
        let Some(port) = self.port_mut(p) else {
            return false;
        };
        let before = port.endpoints.len();
        port.endpoints.retain(|e| e.id != id);
        let found = port.endpoints.len() != before;
        if !port.active() {
            port.user = None;
            self.table.flush_port(p);
            if self.auth_on {
                self.auth.port_down(p);
                self.auth_sync();
            }
        }
        found
    }

    /// Turns on the spanning tree (`-F`) with bridge id `priority`.`mac`. Ports with a
    /// client get their link up now.
    pub fn enable_stp(&mut self, mac: Mac, priority: u16, timers: Timers, now_ms: u64) {
        self.stp = Some(Cst::new(mac, priority, self.numports, timers, now_ms));
        self.stp_sync(now_ms);
    }

    /// Brings the tree's links in line with which ports have clients, and applies what the
    /// tree decided to the MAC table: addresses of ports that stopped forwarding go, and
    /// aging is short during a topology change.
    fn stp_sync(&mut self, now_ms: u64) {
        let Some(stp) = self.stp.as_mut() else {
            return;
        };
        let mut stopped = Vec::new();
        for p in 1..=self.numports {
            let up = self.ports[p as usize].as_ref().is_some_and(|x| x.active());
            stopped.extend(stp.link(p, up, now_ms));
        }
        self.stp_apply(stopped);
    }

    fn stp_apply(&mut self, stopped: Vec<PortId>) {
        for p in stopped {
            self.table.flush_port(p);
        }
        self.table.tc_expire_ms = self.stp.as_ref().and_then(|s| s.fast_aging_ms());
    }

    /// The spanning tree's timers (call every 1/4 s or so). BPDUs to send are then in
    /// [`Switch::take_bpdus`].
    pub fn stp_tick(&mut self, now_ms: u64) {
        self.stp_sync(now_ms);
        if let Some(stp) = self.stp.as_mut() {
            let stopped = stp.tick(now_ms);
            self.stp_apply(stopped);
        }
    }

    /// Runs `f` on the tree (console commands), then applies what it changed.
    pub fn stp_do(&mut self, f: impl FnOnce(&mut Cst) -> Vec<PortId>) -> bool {
        match self.stp.as_mut() {
            Some(stp) => {
                let stopped = f(stp);
                self.stp_apply(stopped);
                true
            }
            None => false,
        }
    }

    /// BPDU frames the tree wants sent, by port (untagged, whatever the port's VLANs).
    pub fn take_bpdus(&mut self) -> Vec<(PortId, Vec<u8>)> {
        self.stp.as_mut().map(|s| s.take_out()).unwrap_or_default()
    }

    /// Whether port `q` may send data frames (always without spanning tree or port
    /// authentication).
    #[inline]
    fn egress_ok(&self, q: PortId) -> bool {
        self.stp.as_ref().is_none_or(|s| s.forwards(q)) && (!self.auth_on || self.auth.egress_ok(q))
    }

    /// Turns MAC authentication on or off on port `p` (its MACs are forgotten either way).
    pub fn set_auth(&mut self, p: PortId, mab: bool) -> bool {
        if !self.auth.set_mode(p, mab) {
            return false;
        }
        self.table.flush_port(p);
        self.auth_sync();
        true
    }

    /// Whether some port is in `auth mab`.
    #[inline]
    pub fn auth_on(&self) -> bool {
        self.auth_on
    }

    /// Ports 0..=n in the authenticator, after `port/setnumports`.
    pub fn auth_resize(&mut self, n: u16) {
        self.auth.resize(n);
        self.auth_sync();
    }

    /// Brings each port's `auth_vlan` in line with the authenticator.
    pub fn auth_sync(&mut self) {
        self.auth_on = self.auth.any();
        for (p, slot) in self.ports.iter_mut().enumerate() {
            if let Some(port) = slot {
                port.auth_vlan = self
                    .auth
                    .ports
                    .get(p)
                    .filter(|a| a.mab)
                    .and_then(|a| a.vlan())
                    .flatten();
            }
        }
    }

    fn auth_apply(&mut self, changes: &[Change]) {
        for c in changes {
            let (Change::Authorized { port, .. } | Change::Refused { port, .. }) = *c;
            self.table.flush_port(port);
        }
        if !changes.is_empty() {
            self.auth_sync();
        }
    }

    /// The authenticator's timers (resends, holds, sessions); call every 1/4 s or so.
    /// Requests to send are then in [`Switch::take_radius`].
    pub fn auth_tick(&mut self, now_ms: u64) {
        if self.auth_on {
            let ch = self.auth.tick(now_ms);
            self.auth_apply(&ch);
        }
    }

    /// A datagram from the RADIUS server.
    pub fn auth_reply(&mut self, buf: &[u8], now_ms: u64) -> Option<Change> {
        let vlans = &self.vlans;
        let ch = self.auth.reply(buf, now_ms, |v| vlans.contains(v));
        if let Some(c) = ch {
            self.auth_apply(&[c]);
        }
        ch
    }

    /// RADIUS datagrams the authenticator wants sent.
    pub fn take_radius(&mut self) -> Vec<Vec<u8>> {
        self.auth.take_out()
    }

    /// Count an ingress drop on port `p`.
    pub fn count_drop(&mut self, p: PortId, r: DropReason) {
        match self.port_mut(p) {
            Some(port) => port.counters.drops[r as usize] += 1,
            None => self.global_drops[r as usize] += 1,
        }
    }

    /// Forwarding decision for `frame` arriving on `in_port` at `now_ms`.
    ///
    /// Counts the ingress frame and fills `out` with the ports to send to (egress counters
    /// are charged by the caller when the frame is really handed to a port).
    pub fn forward(
        &mut self,
        in_port: PortId,
        frame: &[u8],
        now_ms: u64,
        out: &mut Vec<Egress>,
    ) -> Result<Option<Learned>, DropReason> {
        out.clear();
        if frame.len() > MAX_FRAME_LEN {
            self.count_drop(in_port, DropReason::Oversize);
            return Err(DropReason::Oversize);
        }
        let eth = match EthernetFrame::new_checked(frame) {
            Ok(e) => e,
            Err(e) => {
                let r = if e == WireError::Truncated {
                    DropReason::Runt
                } else {
                    DropReason::BadTag
                };
                self.count_drop(in_port, r);
                return Err(r);
            }
        };
        let Some(inp) = self
            .ports
            .get_mut(in_port as usize)
            .and_then(|x| x.as_mut())
        else {
            self.global_drops[DropReason::NotMember as usize] += 1;
            return Err(DropReason::NotMember);
        };
        inp.counters.in_frames += 1;
        inp.counters.in_bytes += frame.len() as u64;

        let mut learn_only = false;
        if self.stp.is_some() && in_port != 0 {
            // A port that carries frames has a link, even before the next tick sees it.
            let stp = self.stp.as_mut().expect("checked");
            let mut stopped = stp.link(in_port, true, now_ms);
            if eth.dst() == STP_GROUP {
                stopped.extend(stp.receive(in_port, frame, now_ms));
                self.stp_apply(stopped);
                return Ok(None);
            }
            if !stopped.is_empty() {
                self.stp_apply(stopped);
            }
            let stp = self.stp.as_mut().expect("checked");
            match stp.state(in_port) {
                PortState::Forwarding => {}
                PortState::Learning => {
                    stp.counters[in_port as usize].discarded += 1;
                    learn_only = true;
                }
                _ => {
                    stp.counters[in_port as usize].discarded += 1;
                    return Ok(None);
                }
            }
        }
        if self.auth_on && in_port != 0 {
            if let Verdict::Drop = self.auth.check(in_port, &eth.src(), now_ms) {
                self.count_drop(in_port, DropReason::Unauthorized);
                return Err(DropReason::Unauthorized);
            }
        }
        let inp = self.ports[in_port as usize]
            .as_mut()
            .expect("looked up above");

        if self.hub {
            for p in 1..=self.numports {
                if p != in_port && self.port(p).is_some_and(|x| x.active()) && self.egress_ok(p) {
                    out.push(Egress {
                        port: p,
                        action: TagAction::Unchanged,
                    });
                }
            }
            return Ok(None);
        }

        let tagged = eth.vid();
        let vlan = match tagged {
            Some(v) => {
                if !self.vlans.contains(v) || !inp.member(v) {
                    inp.counters.drops[DropReason::NotMember as usize] += 1;
                    return Err(DropReason::NotMember);
                }
                v
            }
            None => {
                let u = inp.untagged_vlan();
                if u == NO_VLAN {
                    inp.counters.drops[DropReason::NoUntagged as usize] += 1;
                    return Err(DropReason::NoUntagged);
                }
                u
            }
        };
        let src = eth.src();
        let learned = if !is_group(&src) {
            Some(self.table.learn(vlan, src, in_port, now_ms))
        } else {
            None
        };
        if learn_only {
            return Ok(learned);
        }

        let dst = eth.dst();
        let action_for = |port: &Port| -> TagAction {
            match (tagged.is_some(), port.untagged_vlan() == vlan) {
                (true, true) => TagAction::Strip,
                (true, false) => TagAction::Unchanged,
                (false, true) => TagAction::Unchanged,
                (false, false) => TagAction::Insert(vlan),
            }
        };
        if !is_group(&dst) {
            if let Some(q) = self.table.lookup(vlan, &dst, now_ms) {
                if q == in_port {
                    self.count_drop(in_port, DropReason::SamePort);
                    return Err(DropReason::SamePort);
                }
                if let Some(port) = self
                    .port(q)
                    .filter(|p| p.active() && p.member(vlan) && self.egress_ok(q))
                {
                    out.push(Egress {
                        port: q,
                        action: action_for(port),
                    });
                    return Ok(learned);
                }
            }
        }
        for (q, port) in self.ports.iter().enumerate() {
            let q = q as PortId;
            if q == in_port {
                continue;
            }
            if let Some(port) = port {
                if port.active() && port.member(vlan) && self.egress_ok(q) {
                    out.push(Egress {
                        port: q,
                        action: action_for(port),
                    });
                }
            }
        }
        Ok(learned)
    }

    /// Charge an egress frame to port `p`.
    pub fn count_out(&mut self, p: PortId, len: usize) {
        if let Some(port) = self.port_mut(p) {
            port.counters.out_frames += 1;
            port.counters.out_bytes += len as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EthernetRepr, PortRequest};

    const A: Mac = [2, 0, 0, 0, 0, 0xa];
    const B: Mac = [2, 0, 0, 0, 0, 0xb];
    const BC: Mac = [0xff; 6];

    fn ep(id: u32) -> EndpointInfo {
        EndpointInfo {
            id,
            module: "unix prog".into(),
            descr: format!("t{id}"),
        }
    }

    fn frame(dst: Mac, src: Mac, vid: Option<u16>) -> Vec<u8> {
        EthernetRepr {
            dst,
            src,
            vid,
            ethertype: 0x88b5,
        }
        .emit(&[0; 46])
    }

    fn sw_with(ports: &[PortId]) -> Switch {
        let mut sw = Switch::new(32, false, 128);
        for &p in ports {
            assert_eq!(
                sw.alloc(
                    PortRequest::Port(p as u32),
                    Some(0),
                    &[],
                    ep(p as u32 + 100)
                ),
                Ok(p)
            );
        }
        sw
    }

    #[test]
    fn the_mac_table_is_bounded_per_switch_and_per_port() {
        let mut t = MacTable::new(128);
        (t.max_entries, t.max_per_port) = (8, 3);
        let m = |i: u8| [2, 0, 0, 0, 0, i];
        for i in 0..10 {
            let l = t.learn(1, m(i), 1, 0);
            assert_eq!(l == Learned::Refused, i >= 3, "{i}: {l:?}");
        }
        assert_eq!((t.len(), t.port_entries(1), t.refused), (3, 3, 7));
        // Known MACs still refresh; other ports still learn, up to the table's bound.
        assert_eq!(t.learn(1, m(0), 1, 1), Learned::Refreshed);
        for p in 2..=4 {
            for i in 0..3 {
                t.learn(1, m(10 * p as u8 + i), p, 0);
            }
        }
        assert_eq!(t.len(), 8);
        assert_eq!(t.learn(1, m(99), 5, 0), Learned::Refused);
        // A move onto a full port is refused; the MAC stays where it was.
        assert_eq!(t.learn(1, m(20), 1, 10_000), Learned::Refused);
        assert_eq!(t.lookup(1, &m(20), 10_000), Some(2));
        // Ageing and flushing give the room back.
        t.flush_port(1);
        assert_eq!((t.len(), t.port_entries(1)), (5, 0));
        assert_eq!(t.learn(1, m(99), 5, 0), Learned::New);
        assert_eq!(t.gc(1_000_000), 6);
        assert_eq!((t.len(), t.port_entries(2), t.port_entries(5)), (0, 0, 0));
    }

    #[test]
    fn learning_table_ageing_and_antiflap() {
        let mut t = MacTable::new(100);
        assert_eq!(t.hashsize, 128);
        assert_eq!(t.learn(0, A, 1, 0), Learned::New);
        assert_eq!(t.learn(0, A, 1, 500), Learned::Refreshed);
        // Same MAC, other VLAN: independent entry.
        assert_eq!(t.learn(10, A, 2, 600), Learned::New);
        assert_eq!(t.lookup(0, &A, 600), Some(1));
        assert_eq!(t.lookup(10, &A, 600), Some(2));
        // Moves within minpersistence are refused, after it allowed.
        assert_eq!(t.learn(0, A, 3, 2000), Learned::Kept { on: 1 });
        assert_eq!(t.learn(0, A, 3, 3600), Learned::Moved { from: 1 });
        // Expiry: lookup ignores stale entries, gc removes them.
        assert_eq!(t.lookup(0, &A, 3600 + 100_000), Some(3));
        assert_eq!(t.lookup(0, &A, 3600 + 100_001), None);
        assert_eq!(t.gc(3600 + 100_001), 2);
        assert!(t.is_empty());
        // gc respects its interval.
        t.learn(0, B, 1, 200_000);
        assert_eq!(t.gc(200_500), 0);
    }

    #[test]
    fn floods_then_unicasts_within_vlan() {
        let mut sw = sw_with(&[1, 2, 3]);
        let mut out = Vec::new();
        sw.forward(1, &frame(B, A, None), 0, &mut out).unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![2, 3]);
        sw.forward(2, &frame(A, B, None), 1, &mut out).unwrap();
        assert_eq!(
            out,
            vec![Egress {
                port: 1,
                action: TagAction::Unchanged
            }]
        );
        sw.forward(1, &frame(B, A, None), 2, &mut out).unwrap();
        assert_eq!(
            out,
            vec![Egress {
                port: 2,
                action: TagAction::Unchanged
            }]
        );
        // Known unicast back to the ingress port is dropped and counted.
        assert_eq!(
            sw.forward(2, &frame(B, A, None), 3, &mut out),
            Err(DropReason::SamePort)
        );
        assert_eq!(
            sw.port(2).unwrap().counters.drops[DropReason::SamePort as usize],
            1
        );
        assert_eq!(sw.port(1).unwrap().counters.in_frames, 2);
    }

    #[test]
    fn vlans_access_and_trunk() {
        let mut sw = sw_with(&[1, 2, 3, 4]);
        sw.vlans.insert(10);
        sw.vlans.insert(20);
        sw.port_mut(1).unwrap().untagged = 10;
        sw.port_mut(2).unwrap().untagged = 20;
        sw.port_mut(3).unwrap().untagged = 10;
        // port 4: trunk, tagged in 10 and 20, no untagged VLAN.
        sw.port_mut(4).unwrap().untagged = NO_VLAN;
        sw.port_mut(4).unwrap().tagged.insert(10);
        sw.port_mut(4).unwrap().tagged.insert(20);
        let mut out = Vec::new();
        sw.forward(1, &frame(BC, A, None), 0, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Egress {
                    port: 3,
                    action: TagAction::Unchanged
                },
                Egress {
                    port: 4,
                    action: TagAction::Insert(10)
                }
            ]
        );
        // Tagged 20 from the trunk reaches port 2 untagged only.
        sw.forward(4, &frame(BC, B, Some(20)), 0, &mut out).unwrap();
        assert_eq!(
            out,
            vec![Egress {
                port: 2,
                action: TagAction::Strip
            }]
        );
        // Access port sending a tag of a VLAN it is not in: dropped.
        assert_eq!(
            sw.forward(1, &frame(BC, A, Some(20)), 0, &mut out),
            Err(DropReason::NotMember)
        );
        // Untagged on the trunk (no PVID): dropped.
        assert_eq!(
            sw.forward(4, &frame(BC, A, None), 0, &mut out),
            Err(DropReason::NoUntagged)
        );
        // Undefined VLAN: dropped.
        assert_eq!(
            sw.forward(4, &frame(BC, A, Some(30)), 0, &mut out),
            Err(DropReason::NotMember)
        );
        // Runt and bad tag.
        assert_eq!(
            sw.forward(1, &[0u8; 10], 0, &mut out),
            Err(DropReason::Runt)
        );
        assert_eq!(
            sw.forward(1, &frame(BC, A, Some(4095)), 0, &mut out),
            Err(DropReason::BadTag)
        );
        assert_eq!(
            sw.forward(1, &vec![0u8; MAX_FRAME_LEN + 1], 0, &mut out),
            Err(DropReason::Oversize)
        );
        let c = &sw.port(1).unwrap().counters;
        assert_eq!(c.drops[DropReason::Runt as usize], 1);
        assert_eq!(c.drops[DropReason::BadTag as usize], 1);
        // Tagged trunk-to-trunk frame unchanged (full-size tagged frame kept intact).
        sw.port_mut(3).unwrap().tagged.insert(20);
        sw.port_mut(3).unwrap().untagged = NO_VLAN;
        let big = EthernetRepr {
            dst: BC,
            src: B,
            vid: Some(20),
            ethertype: 0x0800,
        }
        .emit(&[0; 1504]);
        assert_eq!(big.len(), 1522);
        sw.forward(4, &big, 0, &mut out).unwrap();
        assert!(out.contains(&Egress {
            port: 3,
            action: TagAction::Unchanged
        }));
    }

    #[test]
    fn hub_mode_floods_everything_but_port0() {
        let mut sw = sw_with(&[1, 2, 3]);
        sw.alloc(PortRequest::Port0, Some(0), &[], ep(9)).unwrap();
        sw.hub = true;
        sw.port_mut(2).unwrap().untagged = 10;
        let mut out = Vec::new();
        sw.forward(1, &frame(B, A, Some(99)), 0, &mut out).unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![2, 3]);
        assert!(sw.table.is_empty());
    }

    #[test]
    fn a_port_takes_a_bounded_number_of_endpoints() {
        let mut sw = Switch::new(3, false, 128);
        for i in 0..MAX_ENDPOINTS_PER_PORT as u32 {
            assert_eq!(sw.alloc(PortRequest::Port(2), None, &[], ep(i)), Ok(2));
        }
        let r = sw.alloc(PortRequest::Port(2), None, &[], ep(999));
        assert_eq!(r, Err(AllocError::TooMany));
        assert!(sw.release(2, 0));
        assert_eq!(sw.alloc(PortRequest::Port(2), None, &[], ep(999)), Ok(2));
    }

    #[test]
    fn allocation_rules() {
        let mut sw = Switch::new(3, false, 128);
        assert_eq!(sw.alloc(PortRequest::Any, Some(1000), &[], ep(1)), Ok(1));
        // port/create'd ports are not allocatable.
        assert!(sw.create_port(2, false));
        assert_eq!(sw.alloc(PortRequest::Any, Some(1000), &[], ep(2)), Ok(3));
        assert_eq!(
            sw.alloc(PortRequest::Any, Some(1000), &[], ep(3)),
            Err(AllocError::Full)
        );
        // Explicit request of a non-allocatable port works.
        assert_eq!(
            sw.alloc(PortRequest::Port(2), Some(1000), &[], ep(4)),
            Ok(2)
        );
        assert_eq!(
            sw.alloc(PortRequest::Port(4), Some(1000), &[], ep(5)),
            Err(AllocError::OutOfRange)
        );
        // Same user shares a port; another user is refused.
        assert_eq!(
            sw.alloc(PortRequest::Port(1), Some(1000), &[], ep(6)),
            Ok(1)
        );
        assert_eq!(sw.port(1).unwrap().endpoints.len(), 2);
        assert_eq!(
            sw.alloc(PortRequest::Port(1), Some(1001), &[], ep(7)),
            Err(AllocError::Busy)
        );
        // Release: inactive after the last endpoint, config kept.
        sw.port_mut(1).unwrap().untagged = 7;
        assert!(sw.release(1, 1));
        assert!(sw.port(1).unwrap().active());
        assert!(sw.release(1, 6));
        assert!(!sw.port(1).unwrap().active());
        assert_eq!(sw.port(1).unwrap().untagged, 7);
        // ACL.
        sw.port_mut(1).unwrap().acl.user = Some(5);
        assert_eq!(
            sw.alloc(PortRequest::Port(1), Some(6), &[], ep(8)),
            Err(AllocError::Denied)
        );
        assert_eq!(sw.alloc(PortRequest::Port(1), Some(5), &[], ep(8)), Ok(1));
    }

    #[test]
    fn spanning_tree_gates_learning_and_forwarding_and_eats_bpdus() {
        use crate::stp::bpdu::{Bpdu, BridgeId, Config};
        let mut sw = sw_with(&[1, 2, 3]);
        let t = Timers {
            max_age: 6 * 256,
            hello_time: 256,
            forward_delay: 4 * 256,
        };
        sw.enable_stp([2, 0, 0, 0, 0, 0x99], 0x8000, t, 0);
        let mut out = Vec::new();
        let state = |sw: &Switch, p| sw.stp.as_ref().unwrap().state(p);
        // Link up: Listening, then Learning after 4 s, then Forwarding after 8 s.
        assert_eq!(state(&sw, 1), PortState::Listening);
        assert_eq!(state(&sw, 4), PortState::Disabled);
        sw.forward(1, &frame(B, A, None), 100, &mut out).unwrap();
        assert!(out.is_empty() && sw.table.is_empty());
        sw.stp_tick(4_100);
        assert_eq!(state(&sw, 1), PortState::Learning);
        assert_eq!(
            sw.forward(1, &frame(B, A, None), 4_200, &mut out),
            Ok(Some(Learned::New))
        );
        assert!(out.is_empty());
        sw.stp_tick(8_100);
        assert_eq!(state(&sw, 2), PortState::Forwarding);
        sw.forward(1, &frame(BC, A, None), 8_200, &mut out).unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![2, 3]);
        // The root hellos every second on its designated ports, untagged, to the group address.
        sw.take_bpdus();
        sw.stp_tick(9_300);
        let b = sw.take_bpdus();
        assert_eq!(b.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(b[0].1[..6], STP_GROUP);
        // A better root heard on port 3 twice (a loop): port 3 becomes root port, and the
        // BPDU itself goes to the tree, never out of a port.
        let better = |port_id, flags| {
            Bpdu::Config(Config {
                flags,
                root: BridgeId {
                    priority: 0x1000,
                    mac: [2, 0, 0, 0, 0, 1],
                },
                root_path_cost: 0,
                bridge: BridgeId {
                    priority: 0x1000,
                    mac: [2, 0, 0, 0, 0, 1],
                },
                port_id,
                message_age: 0,
                max_age: t.max_age,
                hello_time: t.hello_time,
                forward_delay: t.forward_delay,
            })
            .encode_frame([2, 0, 0, 0, 0, 1])
        };
        assert_eq!(sw.forward(3, &better(0x8001, 0), 9_400, &mut out), Ok(None));
        assert!(out.is_empty());
        assert_eq!(sw.forward(2, &better(0x8002, 0), 9_400, &mut out), Ok(None));
        let stp = sw.stp.as_ref().unwrap();
        assert_eq!(stp.bridge.root_port(), Some(2), "port 3 (index 2)");
        assert_eq!(stp.state(2), PortState::Blocking);
        assert_eq!((stp.counters[3].bpdu_in, stp.counters[2].bpdu_in), (1, 1));
        // Port 2 blocks: frames from it are discarded, frames never go to it.
        sw.forward(2, &frame(BC, B, None), 9_500, &mut out).unwrap();
        assert!(out.is_empty());
        sw.forward(1, &frame(BC, A, None), 9_500, &mut out).unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![3]);
        // One tree for all VLANs: a blocked port blocks tagged traffic too.
        sw.vlans.insert(10);
        for p in 1..=3 {
            sw.port_mut(p).unwrap().tagged.insert(10);
        }
        sw.forward(2, &frame(BC, B, Some(10)), 9_500, &mut out)
            .unwrap();
        assert!(out.is_empty());
        sw.forward(1, &frame(BC, A, Some(10)), 9_500, &mut out)
            .unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![3]);
        // Port 2 stopped forwarding: we sent a TCN towards the root. When the root flags
        // the topology change, aging drops to forward delay, and back when it ends.
        assert!(sw
            .take_bpdus()
            .iter()
            .any(|(p, f)| *p == 3 && Bpdu::decode_frame(f).map(|(_, b)| b) == Ok(Bpdu::Tcn)));
        assert_eq!(sw.table.expire(), 100_000);
        sw.forward(3, &better(0x8001, 0x81), 9_600, &mut out)
            .unwrap();
        assert_eq!(sw.table.expire(), 4_000);
        sw.forward(3, &better(0x8001, 0), 10_600, &mut out).unwrap();
        assert_eq!(sw.table.expire(), 100_000);
    }

    #[test]
    fn without_spanning_tree_bpdus_are_flooded_as_before() {
        let mut sw = sw_with(&[1, 2]);
        let mut out = Vec::new();
        sw.forward(1, &frame(STP_GROUP, A, None), 0, &mut out)
            .unwrap();
        assert_eq!(out.iter().map(|e| e.port).collect::<Vec<_>>(), vec![2]);
        assert!(sw.take_bpdus().is_empty());
    }

    #[test]
    fn port_close_flushes_macs() {
        let mut sw = sw_with(&[1, 2]);
        let mut out = Vec::new();
        sw.forward(1, &frame(B, A, None), 0, &mut out).unwrap();
        assert_eq!(sw.table.len(), 1);
        sw.release(1, 101);
        assert!(sw.table.is_empty());
    }

    #[test]
    fn mab_port_forwards_only_after_accept_in_the_radius_vlan() {
        use crate::auth::mab::Server;
        use crate::auth::radius::*;
        let mut sw = sw_with(&[1, 2, 3]);
        sw.vlans.insert(10);
        sw.port_mut(2).unwrap().untagged = 10;
        sw.auth.server = Some(Server {
            addr: "127.0.0.1:1812".parse().unwrap(),
            secret: b"s".to_vec(),
            nas_ip: std::net::Ipv4Addr::LOCALHOST,
            nas_identifier: "t".into(),
        });
        assert!(sw.set_auth(1, true));
        let mut out = Vec::new();
        let ports = |out: &Vec<Egress>| out.iter().map(|e| e.port).collect::<Vec<_>>();
        assert_eq!(
            sw.forward(1, &frame(BC, A, None), 0, &mut out),
            Err(DropReason::Unauthorized)
        );
        // Nothing reaches the auth port either while its MAC is pending.
        sw.forward(3, &frame(BC, B, None), 1, &mut out).unwrap();
        assert!(ports(&out).is_empty(), "{out:?}");
        let req = sw.take_radius();
        assert_eq!(req.len(), 1);
        let (id, auth, user) = peek_request(&req[0]).unwrap();
        assert_eq!(user, "02-00-00-00-00-0A");
        let attrs = [
            (TUNNEL_TYPE, vec![0, 0, 0, 13]),
            (TUNNEL_MEDIUM_TYPE, vec![0, 0, 0, 6]),
            (TUNNEL_PRIVATE_GROUP_ID, b"10".to_vec()),
        ];
        let r = encode_reply(ACCESS_ACCEPT, id, &auth, &attrs, b"s", true);
        assert!(sw.auth_reply(&r, 5).is_some());
        assert_eq!(sw.port(1).unwrap().untagged_vlan(), 10);
        sw.forward(1, &frame(BC, A, None), 6, &mut out).unwrap();
        assert_eq!(ports(&out), vec![2], "VLAN 10 only");
        assert_eq!(out[0].action, TagAction::Unchanged);
        sw.forward(2, &frame(A, B, None), 7, &mut out).unwrap();
        assert_eq!(ports(&out), vec![1]);
        assert_eq!(
            sw.port(1).unwrap().counters.drops[DropReason::Unauthorized as usize],
            1
        );
        // The client leaves: the MAC is forgotten, the port is closed again.
        assert!(sw.release(1, 101));
        assert_eq!(sw.port(1).unwrap().auth_vlan, None);
        assert!(sw.auth.ports[1].stations.is_empty());
    }
}
