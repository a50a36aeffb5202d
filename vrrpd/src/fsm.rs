//! The VRRP state machine (RFC 3768 / RFC 5798 / RFC 9568 with keepalived's extensions: FAULT,
//! sync groups, preempt_delay, tracked interfaces), as a pure module.
//!
//! [`Router`] holds every instance and sync group. It is driven by calls that carry an explicit
//! `now` (a monotonic [`Time`] since any origin) and answers with [`Action`]s for the I/O layer to
//! perform (send an advert, add/remove VIPs, start GARP bursts, run notify scripts). It never
//! reads a clock, so every transition is unit-tested without sleeping.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Config, InstanceConfig, ScriptConfig, TrackScript};
use crate::wire::Version;

/// Monotonic time since an arbitrary origin (the daemon uses its start).
pub type Time = Duration;

/// Instance (or group) state, with keepalived's FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

impl State {
    /// Upper-case name for logs and status.
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }

    /// The word keepalived passes to notify scripts.
    pub fn keyword(self) -> &'static str {
        match self {
            State::Init => "STOP",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// Whose notify scripts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyTarget {
    Instance(usize),
    Group(usize),
}

/// Something the I/O layer must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        inst: usize,
        priority: u8,
    },
    AddVips {
        inst: usize,
    },
    RemoveVips {
        inst: usize,
    },
    /// Start the GARP/NA schedule (first burst now, second after garp_master_delay, refresh).
    StartGarp {
        inst: usize,
    },
    /// Stop any pending GARP bursts (no longer master).
    StopGarp {
        inst: usize,
    },
    Notify {
        target: NotifyTarget,
        state: State,
        priority: u8,
    },
    /// A state change, for logging and status.
    Transition {
        inst: usize,
        from: State,
        to: State,
        reason: String,
    },
}

/// The last state change of an instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    pub at: Time,
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// A `track_script` as one instance sees it (a sync group's are copied into each member,
/// as keepalived does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedScript {
    /// Index into the configuration's scripts.
    pub script: usize,
    /// 0: the instance is in FAULT while the script is bad (good with `reverse`).
    pub weight: i32,
    pub reverse: bool,
    /// `None` until the script's first result.
    pub ok: Option<bool>,
}

impl TrackedScript {
    /// Resolve `t` against the scripts; its own weight overrides the script's.
    fn new(t: &TrackScript, scripts: &[ScriptConfig]) -> Option<TrackedScript> {
        let script = scripts.iter().position(|s| s.name == t.name)?;
        let (weight, reverse) = t
            .weight
            .unwrap_or((scripts[script].weight, scripts[script].reverse));
        let ok = scripts[script].init_fail.then_some(false);
        Some(TrackedScript {
            script,
            weight,
            reverse,
            ok,
        })
    }

    /// keepalived's rule: a positive weight is added while good, a negative one while bad,
    /// nothing while unknown; `reverse` flips the sign.
    fn contribution(&self) -> i32 {
        let w = match self.ok {
            Some(true) => self.weight.max(0),
            Some(false) => self.weight.min(0),
            None => 0,
        };
        if self.reverse {
            -w
        } else {
            w
        }
    }

    /// A weight-0 script in its failing state.
    fn faults(&self) -> bool {
        self.weight == 0 && self.ok == Some(self.reverse)
    }
}

/// Per-instance protocol state.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    pub base_priority: u8,
    pub adver_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub down_timer_adverts: u32,
    /// Our address as the peers see it (tie-break).
    pub primary: IpAddr,
    /// Interfaces whose link-down faults the instance (weight 0 tracking, VRRP interface, VIP devices).
    pub fault_ifs: BTreeSet<String>,
    /// Weighted tracked interfaces.
    pub weighted_ifs: Vec<(String, i32)>,
    /// Tracked health checks, the instance's then its sync group's.
    pub scripts: Vec<TrackedScript>,

    pub state: State,
    pub master_adver_int: Duration,
    pub down_at: Option<Time>,
    pub adver_at: Option<Time>,
    pub preempt_until: Option<Time>,
    pub want_master: bool,
    pub master_addr: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub links_down: BTreeSet<String>,
    pub last: Option<Transition>,
}

impl Instance {
    /// Build from configuration; `primary` is the address adverts are sent from.
    pub fn new(c: &InstanceConfig, primary: IpAddr, scripts: &[ScriptConfig]) -> Instance {
        let mut fault_ifs = BTreeSet::new();
        if !c.dont_track_primary {
            fault_ifs.insert(c.interface.clone());
        }
        for v in c.vips.iter().chain(&c.excluded) {
            if !v.no_track {
                fault_ifs.insert(v.dev.clone().unwrap_or_else(|| c.vip_dev().to_string()));
            }
        }
        let mut weighted_ifs = Vec::new();
        for t in &c.track_interfaces {
            if t.weight == 0 {
                fault_ifs.insert(t.name.clone());
            } else {
                weighted_ifs.push((t.name.clone(), t.weight));
            }
        }
        Instance {
            name: c.name.clone(),
            vrid: c.vrid,
            version: c.version,
            base_priority: c.priority,
            adver_int: c.advert_int(),
            preempt: !c.nopreempt,
            preempt_delay: c.preempt_delay,
            down_timer_adverts: u32::from(c.down_timer_adverts),
            primary,
            fault_ifs,
            weighted_ifs,
            scripts: c
                .track_scripts
                .iter()
                .filter_map(|t| TrackedScript::new(t, scripts))
                .collect(),
            state: State::Init,
            master_adver_int: c.advert_int(),
            down_at: None,
            adver_at: None,
            preempt_until: None,
            want_master: false,
            master_addr: None,
            master_priority: None,
            links_down: BTreeSet::new(),
            last: None,
        }
    }

    /// Current priority after weighted tracking (keepalived: clamp to 1..254 unless owner).
    pub fn priority(&self) -> u8 {
        if self.base_priority == 255 {
            return 255;
        }
        let mut p = i32::from(self.base_priority);
        for (name, w) in &self.weighted_ifs {
            let down = self.links_down.contains(name);
            if (*w < 0 && down) || (*w > 0 && !down) {
                p += w;
            }
        }
        p += self
            .scripts
            .iter()
            .map(TrackedScript::contribution)
            .sum::<i32>();
        p.clamp(1, 254) as u8
    }

    /// Skew_Time (docs/vrrp.md, Timers): v2 does not scale with the interval, v3 does.
    pub fn skew(&self) -> Duration {
        let k = 256 - u32::from(self.priority());
        match self.version {
            Version::V2 => Duration::from_secs(u64::from(k)) / 256,
            Version::V3 => self.master_adver_int * k / 256,
        }
    }

    /// Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        let adv = match self.version {
            Version::V2 => self.adver_int,
            Version::V3 => self.master_adver_int,
        };
        adv * self.down_timer_adverts + self.skew()
    }

    fn faulted(&self) -> bool {
        self.fault_ifs.iter().any(|i| self.links_down.contains(i))
            || self.scripts.iter().any(TrackedScript::faults)
    }

    /// A weight-0 script has no result yet: keepalived keeps the instance in INIT until then.
    fn waiting_for_script(&self) -> bool {
        self.scripts.iter().any(|t| t.weight == 0 && t.ok.is_none())
    }
}

/// A sync group: members move together.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub members: Vec<usize>,
    pub track_ifs: BTreeSet<String>,
    pub state: State,
}

/// All instances and groups of one daemon.
#[derive(Debug, Clone)]
pub struct Router {
    pub instances: Vec<Instance>,
    pub groups: Vec<Group>,
    group_of: Vec<Option<usize>>,
    links_down: BTreeSet<String>,
    /// Script names, for the reasons of transitions.
    script_names: Vec<String>,
    /// Between `start` and `shutdown`: instances held in INIT may start.
    started: bool,
    out: Vec<Action>,
}

impl Router {
    /// Build from a parsed configuration; `primaries[i]` is instance i's source address.
    pub fn new(cfg: &Config, primaries: &[IpAddr]) -> Router {
        let mut instances: Vec<Instance> = cfg
            .instances
            .iter()
            .zip(primaries)
            .map(|(c, p)| Instance::new(c, *p, &cfg.scripts))
            .collect();
        let mut group_of = vec![None; instances.len()];
        let groups = cfg
            .sync_groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let members: Vec<usize> = g
                    .members
                    .iter()
                    .filter_map(|m| instances.iter().position(|i| &i.name == m))
                    .collect();
                for &m in &members {
                    group_of[m] = Some(gi);
                    let tracked = g
                        .track_scripts
                        .iter()
                        .filter_map(|t| TrackedScript::new(t, &cfg.scripts));
                    instances[m].scripts.extend(tracked);
                }
                Group {
                    name: g.name.clone(),
                    members,
                    track_ifs: g.track_interfaces.iter().map(|t| t.name.clone()).collect(),
                    state: State::Init,
                }
            })
            .collect();
        Router {
            instances,
            groups,
            group_of,
            links_down: BTreeSet::new(),
            script_names: cfg.scripts.iter().map(|s| s.name.clone()).collect(),
            started: false,
            out: Vec::new(),
        }
    }

    fn take(&mut self) -> Vec<Action> {
        self.update_groups();
        std::mem::take(&mut self.out)
    }

    /// Is this instance (or its group) held in FAULT by a link?
    fn fault_of(&self, i: usize) -> Option<String> {
        let inst = &self.instances[i];
        let mine = |inst: &Instance| {
            inst.fault_ifs
                .iter()
                .find(|n| inst.links_down.contains(*n))
                .cloned()
        };
        if let Some(n) = mine(inst) {
            return Some(format!("interface {n} down"));
        }
        if let Some(t) = inst.scripts.iter().find(|t| t.faults()) {
            return Some(format!("script {} failed", self.script_names[t.script]));
        }
        if let Some(g) = self.group_of[i] {
            let grp = &self.groups[g];
            if let Some(n) = grp.track_ifs.iter().find(|n| self.links_down.contains(*n)) {
                return Some(format!(
                    "sync group {} tracked interface {n} down",
                    grp.name
                ));
            }
            for &m in &grp.members {
                if m != i && self.instances[m].faulted() {
                    return Some(format!(
                        "sync group {}: member {} is in FAULT",
                        grp.name, self.instances[m].name
                    ));
                }
            }
        }
        None
    }

    /// Change state with every side effect of docs/vrrp.md, State changes, in keepalived's order.
    fn goto(&mut self, now: Time, i: usize, to: State, reason: String) {
        let from = self.instances[i].state;
        if from == to {
            return;
        }
        let prio = self.instances[i].priority();
        self.out.push(Action::Transition {
            inst: i,
            from,
            to,
            reason: reason.clone(),
        });
        {
            let inst = &mut self.instances[i];
            inst.state = to;
            inst.want_master = false;
            inst.last = Some(Transition {
                at: now,
                from,
                to,
                reason,
            });
        }
        if from == State::Master {
            if to != State::Backup {
                // Resign: FAULT and STOP tell the backups to take over after Skew_Time.
                self.out.push(Action::SendAdvert {
                    inst: i,
                    priority: 0,
                });
            }
            self.out.push(Action::StopGarp { inst: i });
            self.out.push(Action::RemoveVips { inst: i });
        }
        let inst = &mut self.instances[i];
        match to {
            State::Master => {
                inst.down_at = None;
                inst.adver_at = Some(now + inst.adver_int);
                inst.master_addr = Some(inst.primary);
                inst.master_priority = Some(prio);
                self.out.push(Action::SendAdvert {
                    inst: i,
                    priority: prio,
                });
                self.out.push(Action::AddVips { inst: i });
                self.out.push(Action::StartGarp { inst: i });
            }
            State::Backup => {
                inst.adver_at = None;
                if from != State::Master {
                    inst.master_adver_int = inst.adver_int;
                }
                inst.down_at = Some(now + inst.master_down_interval());
                if from == State::Master {
                    // master_addr was set by the caller to the winner.
                } else {
                    inst.master_addr = None;
                    inst.master_priority = None;
                }
            }
            State::Fault | State::Init => {
                inst.adver_at = None;
                inst.down_at = None;
                inst.master_addr = None;
                inst.master_priority = None;
            }
        }
        self.out.push(Action::Notify {
            target: NotifyTarget::Instance(i),
            state: to,
            priority: prio,
        });
    }

    /// Recompute group states and emit group notifications.
    fn update_groups(&mut self) {
        for g in 0..self.groups.len() {
            let states: Vec<State> = self.groups[g]
                .members
                .iter()
                .map(|&m| self.instances[m].state)
                .collect();
            let s = if states.contains(&State::Fault) {
                State::Fault
            } else if !states.is_empty() && states.iter().all(|s| *s == State::Master) {
                State::Master
            } else if states.iter().all(|s| *s == State::Init) {
                State::Init
            } else {
                State::Backup
            };
            if s != self.groups[g].state {
                self.groups[g].state = s;
                self.out.push(Action::Notify {
                    target: NotifyTarget::Group(g),
                    state: s,
                    priority: 0,
                });
            }
        }
    }

    /// Startup (docs/vrrp.md, Startup): owners become master at once, everyone else waits a
    /// Master_Down_Interval in BACKUP (keepalived does so even with `state MASTER`); an
    /// instance whose weight-0 scripts (or its group's) have no result yet stays in INIT.
    pub fn start(&mut self, now: Time) -> Vec<Action> {
        self.started = true;
        for i in 0..self.instances.len() {
            if let Some(r) = self.fault_of(i) {
                self.goto(now, i, State::Fault, format!("startup: {r}"));
            } else if !self.held(i) {
                self.start_one(now, i, "startup");
            }
        }
        self.take()
    }

    /// Leave INIT for MASTER (owner outside a group) or BACKUP.
    fn start_one(&mut self, now: Time, i: usize, why: &str) {
        if self.instances[i].priority() == 255 && self.group_of[i].is_none() {
            let r = format!("{why}: address owner (priority 255)");
            self.goto(now, i, State::Master, r);
        } else {
            let inst = &mut self.instances[i];
            if !inst.preempt_delay.is_zero() {
                inst.preempt_until = Some(now + inst.preempt_delay);
            }
            self.goto(now, i, State::Backup, why.into());
        }
    }

    /// Waiting for the first result of a weight-0 script of the instance or its group.
    pub fn held(&self, i: usize) -> bool {
        match self.group_of[i] {
            None => self.instances[i].waiting_for_script(),
            Some(g) => self.groups[g]
                .members
                .iter()
                .any(|&m| self.instances[m].waiting_for_script()),
        }
    }

    /// After a link or script change: fault, clear or start each instance as its trackers say.
    fn reconcile(&mut self, now: Time, cleared: &str) {
        if !self.started {
            return;
        }
        for i in 0..self.instances.len() {
            let fault = self.fault_of(i);
            let st = self.instances[i].state;
            match (fault, st) {
                (Some(r), State::Backup | State::Master | State::Init) => {
                    self.goto(now, i, State::Fault, r)
                }
                (None, State::Fault) if !self.held(i) => {
                    self.goto(now, i, State::Backup, format!("{cleared}, fault cleared"))
                }
                (None, State::Init) if !self.held(i) => self.start_one(now, i, cleared),
                _ => {}
            }
        }
    }

    /// Each instance's Master_Down_Interval, to shift running down timers by its change.
    fn down_intervals(&self) -> Vec<Duration> {
        self.instances
            .iter()
            .map(Instance::master_down_interval)
            .collect()
    }

    /// keepalived (vrrp_set_effective_priority): a new priority moves a backup's running down
    /// timer by the change of its Master_Down_Interval (the skew depends on the priority).
    fn shift_down_timers(&mut self, before: &[Duration]) {
        for (inst, old) in self.instances.iter_mut().zip(before) {
            let new = inst.master_down_interval();
            if let (State::Backup, Some(t)) = (inst.state, inst.down_at) {
                inst.down_at = Some((t + new).saturating_sub(*old));
            }
        }
    }

    /// A script's tracked state changed (`Some(good)`), from the daemon's [`crate::track`].
    pub fn script(&mut self, now: Time, script: usize, ok: bool) -> Vec<Action> {
        let before = self.down_intervals();
        for inst in &mut self.instances {
            for t in inst.scripts.iter_mut().filter(|t| t.script == script) {
                t.ok = Some(ok);
            }
        }
        self.shift_down_timers(&before);
        let name = self.script_names.get(script).cloned().unwrap_or_default();
        self.reconcile(now, &format!("script {name} good"));
        self.take()
    }

    /// A valid advertisement (already checked by [`crate::validate`]) for instance `i`.
    pub fn advert(
        &mut self,
        now: Time,
        i: usize,
        src: IpAddr,
        priority: u8,
        interval: Duration,
    ) -> Vec<Action> {
        let (state, local, version) = {
            let inst = &self.instances[i];
            (inst.state, inst.priority(), inst.version)
        };
        match state {
            State::Backup => {
                let inst = &mut self.instances[i];
                if priority == 0 {
                    inst.down_at = Some(now + inst.skew());
                    inst.master_priority = Some(0);
                } else {
                    let mut accept = !inst.preempt || priority >= local;
                    if !accept && !inst.preempt_delay.is_zero() {
                        let until = *inst.preempt_until.get_or_insert(now + inst.preempt_delay);
                        accept = now < until;
                    }
                    if priority >= local {
                        inst.preempt_until = None;
                    }
                    if accept {
                        if version == Version::V3 && !interval.is_zero() {
                            inst.master_adver_int = interval;
                        }
                        inst.down_at = Some(now + inst.master_down_interval());
                        inst.master_addr = Some(src);
                        inst.master_priority = Some(priority);
                        inst.want_master = false;
                    }
                    // else: a lower-priority master while we may preempt: discard, the
                    // down timer keeps running and we take over when it fires.
                }
            }
            State::Master => {
                let higher = priority > local
                    || (priority == local && addr_gt(src, self.instances[i].primary));
                if priority == 0 {
                    let inst = &mut self.instances[i];
                    inst.adver_at = Some(now + inst.adver_int);
                    self.out.push(Action::SendAdvert {
                        inst: i,
                        priority: local,
                    });
                } else if higher {
                    {
                        let inst = &mut self.instances[i];
                        if version == Version::V3 && !interval.is_zero() {
                            inst.master_adver_int = interval;
                        }
                    }
                    let reason =
                        format!("higher priority advert ({priority} from {src}, ours {local})");
                    self.goto(now, i, State::Backup, reason);
                    let inst = &mut self.instances[i];
                    inst.master_addr = Some(src);
                    inst.master_priority = Some(priority);
                    self.group_follow(now, i, State::Backup);
                } else {
                    // keepalived: a lower-priority advert makes the master assert itself at once.
                    let inst = &mut self.instances[i];
                    inst.adver_at = Some(now + inst.adver_int);
                    self.out.push(Action::SendAdvert {
                        inst: i,
                        priority: local,
                    });
                }
            }
            State::Fault | State::Init => {}
        }
        self.take()
    }

    /// Move the other members of i's group that are MASTER to `to`.
    fn group_follow(&mut self, now: Time, i: usize, to: State) {
        let Some(g) = self.group_of[i] else { return };
        let name = self.groups[g].name.clone();
        let who = self.instances[i].name.clone();
        for m in self.groups[g].members.clone() {
            if m != i && self.instances[m].state == State::Master {
                self.goto(
                    now,
                    m,
                    to,
                    format!("sync group {name}: member {who} went {}", to.keyword()),
                );
            }
        }
    }

    /// Fire every timer due at `now`.
    pub fn tick(&mut self, now: Time) -> Vec<Action> {
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            match inst.state {
                State::Master if inst.adver_at.is_some_and(|t| t <= now) => {
                    let p = inst.priority();
                    let inst = &mut self.instances[i];
                    inst.adver_at = Some(now + inst.adver_int);
                    self.out.push(Action::SendAdvert {
                        inst: i,
                        priority: p,
                    });
                }
                State::Backup if inst.down_at.is_some_and(|t| t <= now) => {
                    let mdi = inst.master_down_interval();
                    let reason = if inst.master_priority == Some(0) {
                        format!(
                            "master resigned (priority 0), skew {:.3}s elapsed",
                            inst.skew().as_secs_f64()
                        )
                    } else {
                        format!(
                            "no valid advert for Master_Down_Interval {:.3}s",
                            mdi.as_secs_f64()
                        )
                    };
                    match self.group_of[i] {
                        None => self.goto(now, i, State::Master, reason),
                        Some(g) => {
                            self.instances[i].want_master = true;
                            let members = self.groups[g].members.clone();
                            let ready = members.iter().all(|&m| {
                                let s = &self.instances[m];
                                s.state == State::Master
                                    || (s.state == State::Backup && s.want_master)
                            });
                            if ready {
                                let gname = self.groups[g].name.clone();
                                for m in members {
                                    if self.instances[m].state != State::Master {
                                        let r = if m == i {
                                            reason.clone()
                                        } else {
                                            format!(
                                                "sync group {gname}: all members ready for MASTER"
                                            )
                                        };
                                        self.goto(now, m, State::Master, r);
                                    }
                                }
                            } else {
                                // Wait for the other members; try again after another interval.
                                let inst = &mut self.instances[i];
                                inst.down_at = Some(now + mdi);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.take()
    }

    /// Earliest pending timer.
    pub fn next_deadline(&self) -> Option<Time> {
        self.instances
            .iter()
            .filter_map(|i| match i.state {
                State::Master => i.adver_at,
                State::Backup => i.down_at,
                _ => None,
            })
            .min()
    }

    /// A link went up or down (VRRP interface, VIP device or tracked interface).
    pub fn link(&mut self, now: Time, ifname: &str, up: bool) -> Vec<Action> {
        let before = self.down_intervals();
        if up {
            self.links_down.remove(ifname);
        } else {
            self.links_down.insert(ifname.to_string());
        }
        for inst in &mut self.instances {
            if up {
                inst.links_down.remove(ifname);
            } else {
                inst.links_down.insert(ifname.to_string());
            }
        }
        self.shift_down_timers(&before);
        self.reconcile(now, &format!("interface {ifname} up"));
        self.take()
    }

    /// Clean shutdown: masters send priority 0 and drop their VIPs.
    pub fn shutdown(&mut self, now: Time) -> Vec<Action> {
        self.started = false;
        for i in 0..self.instances.len() {
            self.goto(now, i, State::Init, "shutdown".into());
        }
        self.take()
    }

    /// Reload: leave instance `i` (removed or changed): a master resigns and drops its VIPs.
    pub fn leave(&mut self, now: Time, i: usize) -> Vec<Action> {
        self.goto(now, i, State::Init, "reload: removed or changed".into());
        self.take()
    }

    /// Reload: the links that are down, recorded without any transition (the new router is
    /// built from them before it runs).
    pub fn set_links_down(&mut self, down: &[String]) {
        for n in down {
            self.links_down.insert(n.clone());
            for inst in &mut self.instances {
                inst.links_down.insert(n.clone());
            }
        }
    }

    /// Reload: instance `i` continues `old` (same configuration but maybe the priority): its
    /// state, timers and master carry over; a new priority shifts a backup's down timer as a
    /// tracked priority change does.
    pub fn adopt(&mut self, i: usize, old: &Instance) {
        let inst = &mut self.instances[i];
        inst.state = old.state;
        inst.master_adver_int = old.master_adver_int;
        inst.down_at = old.down_at;
        inst.adver_at = old.adver_at;
        inst.preempt_until = old.preempt_until;
        inst.want_master = old.want_master;
        inst.master_addr = old.master_addr;
        inst.master_priority = old.master_priority;
        inst.last = old.last.clone();
        if let (State::Backup, Some(t)) = (inst.state, inst.down_at) {
            inst.down_at =
                Some((t + inst.master_down_interval()).saturating_sub(old.master_down_interval()));
        }
        if inst.state == State::Master {
            inst.master_priority = Some(inst.priority());
        }
    }

    /// Reload: script `script` is known to be `ok` (carried over), recorded silently.
    pub fn set_script(&mut self, script: usize, ok: Option<bool>) {
        for t in self.instances.iter_mut().flat_map(|i| i.scripts.iter_mut()) {
            if t.script == script {
                t.ok = ok;
            }
        }
    }

    /// Reload: run with adopted instances as they are, start the `fresh` ones as at startup,
    /// then fault or clear anything the new trackers disagree with. Group states are settled
    /// first without notifications (they did not change by being rebuilt).
    pub fn resume(&mut self, now: Time, fresh: &[usize]) -> Vec<Action> {
        self.started = true;
        self.update_groups();
        self.out.clear();
        for &i in fresh {
            if let Some(r) = self.fault_of(i) {
                self.goto(now, i, State::Fault, format!("reload: {r}"));
            } else if !self.held(i) {
                self.start_one(now, i, "reload");
            }
        }
        self.reconcile(now, "reload");
        self.take()
    }

    pub fn group_of(&self, i: usize) -> Option<usize> {
        self.group_of[i]
    }
}

/// Tie-break: addresses compared as unsigned integers in network byte order.
pub fn addr_gt(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use std::path::Path;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn one(extra: &str, version: u8) -> Router {
        let c = parse_str(
            &format!(
                "vrrp_instance a {{\n interface eth0\n virtual_router_id 1\n version {version}\n {extra}\n virtual_ipaddress {{\n 10.0.0.1/24\n }}\n}}\n"
            ),
            Path::new("t"),
        )
        .unwrap();
        Router::new(&c, &[ip("10.0.0.2")])
    }

    fn has(a: &[Action], want: &Action) -> bool {
        a.contains(want)
    }

    #[test]
    fn timer_formulas() {
        // docs/vrrp.md, Timers: priority 100 @ 1 s -> 3.609 s; v3 priority 150 @ 500 cs -> 1707 cs.
        let r = one("priority 100\n advert_int 1", 2);
        assert_eq!(
            r.instances[0].master_down_interval(),
            Duration::from_micros(3_609_375)
        );
        let r = one("priority 100\n advert_int 5", 2);
        assert_eq!(
            r.instances[0].master_down_interval(),
            Duration::from_micros(15_609_375)
        );
        let r = one("priority 150\n advert_int 5", 3);
        let mdi = r.instances[0].master_down_interval();
        assert_eq!(mdi.as_millis() / 10, 1707);
        let r = one("priority 100\n advert_int 5", 3);
        assert_eq!(r.instances[0].master_down_interval().as_millis(), 18_046);
        let r = one("priority 254\n advert_int 0.1", 3);
        assert_eq!(r.instances[0].skew(), Duration::from_nanos(781_250));
    }

    #[test]
    fn backup_times_out_to_master() {
        let mut r = one("priority 100", 2);
        let a = r.start(ms(0));
        assert!(has(
            &a,
            &Action::Notify {
                target: NotifyTarget::Instance(0),
                state: State::Backup,
                priority: 100
            }
        ));
        assert_eq!(r.next_deadline(), Some(Duration::from_micros(3_609_375)));
        assert!(r.tick(ms(3609)).is_empty());
        let a = r.tick(ms(3610));
        assert_eq!(r.instances[0].state, State::Master);
        let pos = |x: &Action| a.iter().position(|y| y == x).unwrap();
        // advert first, then VIPs, then GARP, then notify (docs/vrrp.md, State changes)
        assert!(
            pos(&Action::SendAdvert {
                inst: 0,
                priority: 100
            }) < pos(&Action::AddVips { inst: 0 })
        );
        assert!(pos(&Action::AddVips { inst: 0 }) < pos(&Action::StartGarp { inst: 0 }));
        // advert timer
        assert_eq!(r.next_deadline(), Some(ms(4610)));
        let a = r.tick(ms(4610));
        assert_eq!(
            a,
            vec![Action::SendAdvert {
                inst: 0,
                priority: 100
            }]
        );
    }

    #[test]
    fn adverts_reset_down_timer_and_lower_prio_is_discarded() {
        let mut r = one("priority 100", 2);
        r.start(ms(0));
        r.advert(ms(3000), 0, ip("10.0.0.3"), 150, ms(1000));
        assert_eq!(
            r.instances[0].down_at,
            Some(ms(3000) + Duration::from_micros(3_609_375))
        );
        assert_eq!(r.instances[0].master_addr, Some(ip("10.0.0.3")));
        // A lower-priority master with preemption on: discarded, the timer keeps running.
        r.advert(ms(4000), 0, ip("10.0.0.3"), 50, ms(1000));
        assert_eq!(
            r.instances[0].down_at,
            Some(ms(3000) + Duration::from_micros(3_609_375))
        );
        r.tick(ms(6610));
        assert_eq!(r.instances[0].state, State::Master);
    }

    #[test]
    fn nopreempt_keeps_lower_master() {
        let mut r = one("priority 200\n nopreempt", 2);
        r.start(ms(0));
        for t in (1000..20_000).step_by(1000) {
            r.advert(ms(t), 0, ip("10.0.0.3"), 100, ms(1000));
            r.tick(ms(t + 1));
        }
        assert_eq!(r.instances[0].state, State::Backup);
    }

    #[test]
    fn preempt_delay_window() {
        let mut r = one("priority 200\n preempt_delay 5", 2);
        r.start(ms(0)); // window 0..5 s at startup
        let mut t = 1000;
        while r.instances[0].state == State::Backup {
            r.advert(ms(t), 0, ip("10.0.0.3"), 100, ms(1000));
            r.tick(ms(t + 1));
            t += 1000;
            assert!(t < 30_000);
        }
        // Adverts accepted until 5 s, then discarded, then one MDI (3.2 s at prio 200).
        let when = r.instances[0].last.as_ref().unwrap().at;
        assert!(when >= ms(7000) && when <= ms(9000), "{when:?}");
    }

    #[test]
    fn priority_zero_gives_skew_takeover() {
        let mut r = one("priority 100", 2);
        r.start(ms(0));
        r.advert(ms(1000), 0, ip("10.0.0.3"), 150, ms(1000));
        r.advert(ms(1500), 0, ip("10.0.0.3"), 0, ms(1000));
        assert_eq!(
            r.instances[0].down_at,
            Some(ms(1500) + Duration::from_micros(609_375))
        );
        let a = r.tick(ms(2110));
        assert!(
            matches!(&a[0], Action::Transition { to: State::Master, reason, .. } if reason.contains("priority 0"))
        );
    }

    #[test]
    fn master_yields_to_higher_and_tie_break_by_address() {
        let mut r = one("priority 100", 2);
        r.start(ms(0));
        r.tick(ms(4000));
        assert_eq!(r.instances[0].state, State::Master);
        // Equal priority, lower address: we stay and assert ourselves.
        let a = r.advert(ms(4100), 0, ip("10.0.0.1"), 100, ms(1000));
        assert_eq!(
            a,
            vec![Action::SendAdvert {
                inst: 0,
                priority: 100
            }]
        );
        assert_eq!(r.instances[0].state, State::Master);
        // Equal priority, higher address wins.
        let a = r.advert(ms(4200), 0, ip("10.0.0.9"), 100, ms(1000));
        assert_eq!(r.instances[0].state, State::Backup);
        assert!(has(&a, &Action::RemoveVips { inst: 0 }));
        assert!(!a.iter().any(|x| matches!(x, Action::SendAdvert { .. })));
        assert_eq!(r.instances[0].master_addr, Some(ip("10.0.0.9")));
        // Priority 0 while master: answer with an advert at once.
        r.tick(ms(9000));
        let a = r.advert(ms(9100), 0, ip("10.0.0.9"), 0, ms(1000));
        assert_eq!(
            a,
            vec![Action::SendAdvert {
                inst: 0,
                priority: 100
            }]
        );
        assert_eq!(r.instances[0].adver_at, Some(ms(10_100)));
    }

    #[test]
    fn owner_is_master_at_once() {
        let mut r = one("priority 255", 2);
        let a = r.start(ms(0));
        assert_eq!(r.instances[0].state, State::Master);
        assert_eq!(
            a[1],
            Action::SendAdvert {
                inst: 0,
                priority: 255
            }
        );
    }

    #[test]
    fn shutdown_sends_priority_zero() {
        let mut r = one("priority 100", 2);
        r.start(ms(0));
        r.tick(ms(4000));
        let a = r.shutdown(ms(5000));
        assert!(has(
            &a,
            &Action::SendAdvert {
                inst: 0,
                priority: 0
            }
        ));
        assert!(has(&a, &Action::RemoveVips { inst: 0 }));
        assert!(has(
            &a,
            &Action::Notify {
                target: NotifyTarget::Instance(0),
                state: State::Init,
                priority: 100
            }
        ));
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn v3_learns_master_interval_v2_does_not() {
        let mut r = one("priority 100\n advert_int 1", 3);
        r.start(ms(0));
        r.advert(ms(100), 0, ip("10.0.0.3"), 150, ms(100));
        assert_eq!(r.instances[0].master_adver_int, ms(100));
        assert_eq!(
            r.instances[0].down_at,
            Some(ms(100) + ms(300) + Duration::from_nanos(60_937_500))
        );
        let mut r = one("priority 100\n advert_int 1", 2);
        r.start(ms(0));
        r.advert(ms(100), 0, ip("10.0.0.3"), 150, ms(2000));
        assert_eq!(r.instances[0].master_adver_int, ms(1000));
    }

    #[test]
    fn tracked_interface_faults_and_weights() {
        let mut r = one(
            "priority 100\n track_interface {\n eth5\n eth6 weight -30\n }",
            2,
        );
        r.start(ms(0));
        r.tick(ms(4000));
        let a = r.link(ms(5000), "eth6", false);
        assert!(a.is_empty());
        assert_eq!(r.instances[0].priority(), 70);
        let a = r.link(ms(5000), "eth5", false);
        assert_eq!(r.instances[0].state, State::Fault);
        assert!(has(
            &a,
            &Action::SendAdvert {
                inst: 0,
                priority: 0
            }
        ));
        assert!(has(&a, &Action::RemoveVips { inst: 0 }));
        r.link(ms(6000), "eth5", true);
        assert_eq!(r.instances[0].state, State::Backup);
        // VIP device (the instance interface here) going down also faults.
        r.link(ms(7000), "eth0", false);
        assert_eq!(r.instances[0].state, State::Fault);
    }

    fn pair() -> Router {
        let c = parse_str(crate::config::tests_seed(), Path::new("t")).unwrap();
        Router::new(&c, &[ip("10.10.0.2"), ip("192.0.2.2")])
    }

    #[test]
    fn sync_group_goes_master_together() {
        let mut r = pair();
        r.start(ms(0));
        // externe still hears its master; interne times out but must wait.
        let mut t = 0;
        while t < 40_000 {
            t += 1000;
            r.advert(ms(t), 1, ip("192.0.2.3"), 200, ms(5000));
            r.tick(ms(t));
        }
        assert_eq!(r.instances[0].state, State::Backup);
        assert!(r.instances[0].want_master);
        // externe's master dies: both go master together.
        let mut acts = Vec::new();
        while t < 80_000 {
            t += 100;
            acts.extend(r.tick(ms(t)));
        }
        assert_eq!(r.instances[0].state, State::Master);
        assert_eq!(r.instances[1].state, State::Master);
        assert!(has(
            &acts,
            &Action::Notify {
                target: NotifyTarget::Group(0),
                state: State::Master,
                priority: 0
            }
        ));
        // A higher-priority advert on one member sends both back.
        let a = r.advert(ms(t), 0, ip("10.10.0.3"), 200, ms(5000));
        assert_eq!(r.instances[1].state, State::Backup);
        assert!(has(&a, &Action::RemoveVips { inst: 1 }));
        assert!(has(
            &a,
            &Action::Notify {
                target: NotifyTarget::Group(0),
                state: State::Backup,
                priority: 0
            }
        ));
    }

    #[test]
    fn sync_group_fault_moves_all() {
        let mut r = pair();
        r.start(ms(0));
        r.tick(ms(16_000));
        assert_eq!(r.groups[0].state, State::Master);
        // vlan20 is only a VIP device of interne; it faults the whole group
        // (docs/vrrp.md, FAULT and sync groups).
        let a = r.link(ms(17_000), "vlan20", false);
        assert_eq!(r.instances[0].state, State::Fault);
        assert_eq!(r.instances[1].state, State::Fault);
        assert!(has(
            &a,
            &Action::SendAdvert {
                inst: 1,
                priority: 0
            }
        ));
        assert_eq!(r.groups[0].state, State::Fault);
        r.link(ms(18_000), "vlan20", true);
        assert_eq!(r.instances[1].state, State::Backup);
        assert_eq!(r.groups[0].state, State::Backup);
    }

    fn scripted(scripts: &str, track: &str) -> Router {
        let c = parse_str(
            &format!(
                "{scripts}\nvrrp_instance a {{\n interface eth0\n virtual_router_id 1\n priority 100\n track_script {{\n {track}\n }}\n virtual_ipaddress {{\n 10.0.0.1/24\n }}\n}}\n"
            ),
            Path::new("t"),
        )
        .unwrap();
        Router::new(&c, &[ip("10.0.0.2")])
    }

    #[test]
    fn script_weights_move_priority_per_keepalived() {
        let mut r = scripted(
            "vrrp_script neg {\n script /bin/x\n weight -30\n}\nvrrp_script pos {\n script /bin/y\n weight 20\n}\nvrrp_script rev {\n script /bin/z\n}",
            "neg\n pos\n rev weight 7 reverse",
        );
        r.start(ms(0));
        assert_eq!(
            r.instances[0].state,
            State::Backup,
            "weighted scripts do not hold INIT"
        );
        assert_eq!(
            r.instances[0].priority(),
            100,
            "unknown scripts weigh nothing"
        );
        r.script(ms(10), 1, true);
        assert_eq!(r.instances[0].priority(), 120);
        r.script(ms(10), 0, false);
        assert_eq!(r.instances[0].priority(), 90);
        r.script(ms(10), 2, true);
        assert_eq!(r.instances[0].priority(), 83, "reverse: good subtracts");
        r.script(ms(10), 0, true);
        r.script(ms(10), 1, false);
        r.script(ms(10), 2, false);
        assert_eq!(r.instances[0].priority(), 100);
    }

    #[test]
    fn priority_change_shifts_the_down_timer() {
        let mut r = scripted("vrrp_script neg {\n script /bin/x\n weight -36\n}", "neg");
        r.start(ms(0));
        // priority 100: 3 s + 156/256 s; priority 64: 3 s + 192/256 s.
        assert_eq!(
            r.instances[0].down_at,
            Some(Duration::from_micros(3_609_375))
        );
        r.script(ms(1000), 0, false);
        assert_eq!(
            r.instances[0].down_at,
            Some(Duration::from_micros(3_750_000))
        );
    }

    #[test]
    fn weight_zero_script_holds_init_then_faults_and_clears() {
        let mut r = scripted("vrrp_script chk {\n script /bin/x\n}", "chk");
        assert!(r.start(ms(0)).is_empty());
        assert_eq!(r.instances[0].state, State::Init, "no result yet");
        r.script(ms(100), 0, true);
        assert_eq!(r.instances[0].state, State::Backup);
        r.tick(ms(4000));
        assert_eq!(r.instances[0].state, State::Master);
        let a = r.script(ms(5000), 0, false);
        assert_eq!(r.instances[0].state, State::Fault);
        assert!(has(
            &a,
            &Action::SendAdvert {
                inst: 0,
                priority: 0
            }
        ));
        let t = r.instances[0].last.clone().unwrap();
        assert_eq!(t.reason, "script chk failed");
        r.script(ms(6000), 0, true);
        assert_eq!(r.instances[0].state, State::Backup);
        assert_eq!(
            r.instances[0].last.as_ref().unwrap().reason,
            "script chk good, fault cleared"
        );
        // A first result that fails goes straight to FAULT.
        let mut r = scripted("vrrp_script chk {\n script /bin/x\n}", "chk");
        r.start(ms(0));
        r.script(ms(100), 0, false);
        assert_eq!(r.instances[0].state, State::Fault);
        // init_fail: FAULT from the start.
        let mut r = scripted("vrrp_script chk {\n script /bin/x\n init_fail\n}", "chk");
        r.start(ms(0));
        assert_eq!(r.instances[0].state, State::Fault);
    }

    #[test]
    fn group_track_script_faults_every_member() {
        let text = format!(
            "vrrp_script chk {{\n script /bin/x\n}}\n{}",
            crate::config::tests_seed().replace(
                "vrrp_sync_group VG_LAB {",
                "vrrp_sync_group VG_LAB {\n track_script {\n chk\n }"
            )
        );
        let c = parse_str(&text, Path::new("t")).unwrap();
        assert_eq!(c.sync_groups[0].track_scripts.len(), 1, "{text}");
        let mut r = Router::new(&c, &[ip("10.10.0.2"), ip("192.0.2.2")]);
        r.start(ms(0));
        assert_eq!(r.instances[1].state, State::Init);
        r.script(ms(10), 0, true);
        assert_eq!(r.instances[0].state, State::Backup);
        assert_eq!(r.instances[1].state, State::Backup);
        r.script(ms(20), 0, false);
        assert_eq!(r.groups[0].state, State::Fault);
        assert_eq!(r.instances[1].state, State::Fault);
    }

    #[test]
    fn reload_adopts_state_and_a_new_priority() {
        let mut old = one("priority 150\n advert_int 1", 2);
        old.start(ms(0));
        old.tick(ms(4000));
        assert_eq!(old.instances[0].state, State::Master);
        let mut new = one("priority 50\n advert_int 1", 2);
        new.adopt(0, &old.instances[0]);
        let a = new.resume(ms(5000), &[]);
        assert!(a.is_empty(), "no transition, no notify: {a:?}");
        assert_eq!(new.instances[0].state, State::Master);
        assert_eq!(new.instances[0].priority(), 50);
        let a = new.tick(ms(5000));
        assert!(
            has(
                &a,
                &Action::SendAdvert {
                    inst: 0,
                    priority: 50
                }
            ),
            "{a:?}"
        );
        // A backup's down timer moves by the change of its Master_Down_Interval.
        let mut old = one("priority 100\n advert_int 1", 2);
        old.start(ms(0));
        let mut new = one("priority 36\n advert_int 1", 2);
        new.adopt(0, &old.instances[0]);
        assert_eq!(
            new.instances[0].down_at,
            Some(Duration::from_micros(3_859_375))
        );
        // A fresh instance starts as at startup.
        let mut r = one("priority 100", 2);
        let a = r.resume(ms(0), &[0]);
        assert_eq!(r.instances[0].state, State::Backup);
        assert!(!a.is_empty());
    }
}
