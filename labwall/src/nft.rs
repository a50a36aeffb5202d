//! The nftables ruleset as a small IR (chains of rules with structured matches). The same IR is
//! printed as `ruleset.nft` and walked by `explain`, so the simulation and the kernel see the
//! same rules. The ruleset never depends on the role: both routers' addresses and the VIPs are
//! all known, so failover never reloads the firewall.

use crate::model::{AddrSel, Iface, Rule, Site, L4};
use crate::net::Net;
use crate::parse::{PolicyAction, Rate, RuleAction};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

/// The table that labwall owns; loading replaces only this table.
pub const TABLE: &str = "ramux";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum Fam {
    V4,
    V6,
}

#[derive(Clone, Debug, Serialize)]
pub struct AddrM {
    pub fam: Fam,
    pub neg: bool,
    /// named set (`@dns1_v4`) or None for a literal
    pub set: Option<String>,
    pub nets: Vec<Net>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct M {
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub nfproto: Option<Fam>,
    pub saddr: Option<AddrM>,
    pub daddr: Option<AddrM>,
    pub l4: Option<L4>,
    /// `ct state established,related` (true) — never matches a new connection
    pub ct_established: bool,
    pub ct_invalid: bool,
    pub ct_dnat: bool,
    /// ICMPv6 neighbour discovery types
    pub nd: bool,
    pub limit: Option<Rate>,
}

#[derive(Clone, Debug, Serialize)]
pub enum Act {
    Accept,
    Drop,
    RejectTcp,
    RejectIcmpx,
    Goto(String),
    VmapIif(Vec<(String, String)>),
    VmapOif(Vec<(String, String)>),
    VmapIifOif(Vec<(String, String, String)>),
    Log(String),
    Snat(Ipv4Addr),
    Masquerade,
    Dnat(Ipv4Addr, Option<u16>),
}

#[derive(Clone, Debug, Serialize)]
pub struct NRule {
    pub m: M,
    pub act: Act,
    pub line: u32,
    /// what the rule is for, shown by explain
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Base {
    pub kind: &'static str,
    pub hook: &'static str,
    pub prio: &'static str,
    pub policy: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Chain {
    pub name: String,
    pub base: Option<Base>,
    pub rules: Vec<NRule>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NSet {
    pub name: String,
    pub fam: Fam,
    pub elems: Vec<Net>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ruleset {
    pub file: String,
    pub counters: bool,
    pub sets: Vec<NSet>,
    pub chains: Vec<Chain>,
}

impl Ruleset {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

fn fam_of(n: &Net) -> Fam {
    if n.is_v4() {
        Fam::V4
    } else {
        Fam::V6
    }
}

fn sel_fam(sel: &AddrSel, f: Fam) -> Option<AddrM> {
    let nets: Vec<Net> = sel
        .nets
        .iter()
        .copied()
        .filter(|n| fam_of(n) == f)
        .collect();
    if nets.is_empty() {
        return None;
    }
    let set = sel
        .set
        .as_ref()
        .map(|s| format!("{s}_{}", if f == Fam::V4 { "v4" } else { "v6" }));
    Some(AddrM {
        fam: f,
        neg: false,
        set,
        nets,
    })
}

struct Gen<'a> {
    site: &'a Site,
    chains: Vec<Chain>,
    pair_rules: BTreeMap<(String, String), Vec<&'a Rule>>,
}

/// Build the IR from the checked site. Role-independent by construction (never reads `role`).
pub fn build(site: &Site) -> Ruleset {
    let mut g = Gen {
        site,
        chains: Vec::new(),
        pair_rules: BTreeMap::new(),
    };
    for r in &site.rules {
        g.pair_rules
            .entry((r.src_zone.clone(), r.dst_zone.clone()))
            .or_default()
            .push(r);
    }
    let mut sets = Vec::new();
    // alias sets actually referenced
    let mut used: BTreeSet<String> = BTreeSet::new();
    for r in &site.rules {
        for s in [&r.src, &r.dst].into_iter().flatten() {
            if let Some(n) = &s.set {
                used.insert(n.clone());
            }
        }
    }
    for a in &site.aliases {
        if !used.contains(&a.name) {
            continue;
        }
        for f in [Fam::V4, Fam::V6] {
            let elems: Vec<Net> = a.nets.iter().copied().filter(|n| fam_of(n) == f).collect();
            if !elems.is_empty() {
                sets.push(NSet {
                    name: format!("{}_{}", a.name, if f == Fam::V4 { "v4" } else { "v6" }),
                    fam: f,
                    elems,
                });
            }
        }
    }
    let raddrs = site.router_addrs();
    let r4: Vec<Net> = raddrs
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| Net::host(*a))
        .collect();
    let r6: Vec<Net> = raddrs
        .iter()
        .filter(|a| !a.is_ipv4())
        .map(|a| Net::host(*a))
        .collect();
    if !r4.is_empty() {
        sets.push(NSet {
            name: "fw_v4".into(),
            fam: Fam::V4,
            elems: r4.clone(),
        });
    }
    if !r6.is_empty() {
        sets.push(NSet {
            name: "fw_v6".into(),
            fam: Fam::V6,
            elems: r6,
        });
    }

    g.antispoof();
    g.dnat();
    g.input();
    g.forward();
    g.output();
    g.snat(!r4.is_empty());
    g.policy_chains();
    Ruleset {
        file: site.file.clone(),
        counters: site.counters,
        sets,
        chains: g.chains,
    }
}

/// The first two rules of the input and output chains: accept loopback (`lo` matches `iif` or
/// `oif` as the chain needs) and established/related connections.
fn loopback_and_established(lo: M, line: u32) -> Vec<NRule> {
    vec![
        rule(lo, Act::Accept, line, "loopback"),
        rule(
            M {
                ct_established: true,
                ..M::default()
            },
            Act::Accept,
            line,
            "established/related connections",
        ),
    ]
}

fn rule(m: M, act: Act, line: u32, why: impl Into<String>) -> NRule {
    NRule {
        m,
        act,
        line,
        why: why.into(),
    }
}

fn pol_name(a: PolicyAction) -> &'static str {
    match a {
        PolicyAction::Accept => "ACCEPT",
        PolicyAction::Drop => "DROP",
        PolicyAction::Reject => "REJECT",
    }
}

impl<'a> Gen<'a> {
    fn base(
        &mut self,
        name: &str,
        kind: &'static str,
        hook: &'static str,
        prio: &'static str,
        policy: &'static str,
        rules: Vec<NRule>,
    ) {
        self.chains.push(Chain {
            name: name.into(),
            base: Some(Base {
                kind,
                hook,
                prio,
                policy,
            }),
            rules,
        });
    }

    fn internal(&self) -> impl Iterator<Item = &'a Iface> {
        self.site.ifaces.iter().filter(|i| !i.uplink)
    }

    fn antispoof(&mut self) {
        let s = self.site;
        if s.antispoof == "off" {
            return;
        }
        let line = s.antispoof_line;
        let mut r = vec![
            rule(
                M {
                    iif: Some("lo".into()),
                    ..M::default()
                },
                Act::Accept,
                line,
                "loopback",
            ),
            rule(
                M {
                    saddr: Some(lit(
                        Fam::V4,
                        false,
                        vec![Net::parse("127.0.0.0/8").unwrap()],
                    )),
                    ..M::default()
                },
                Act::Drop,
                line,
                "antispoof: 127.0.0.0/8 outside lo",
            ),
            rule(
                M {
                    saddr: Some(lit(Fam::V6, false, vec![Net::parse("::1").unwrap()])),
                    ..M::default()
                },
                Act::Drop,
                line,
                "antispoof: ::1 outside lo",
            ),
        ];
        if s.antispoof == "strict" {
            for i in self.internal() {
                let mut n4 = vec![Net::parse("0.0.0.0").unwrap(), i.net4];
                n4.sort();
                r.push(rule(
                    M {
                        iif: Some(i.ifname.clone()),
                        saddr: Some(lit(Fam::V4, true, n4)),
                        ..M::default()
                    },
                    Act::Drop,
                    line,
                    format!("antispoof: {} accepts only its own IPv4 prefix", i.ifname),
                ));
                let mut n6 = vec![Net::parse("::").unwrap(), Net::parse("fe80::/10").unwrap()];
                n6.extend(i.v6.iter().map(|a| a.prefix.trunc()));
                n6.sort();
                r.push(rule(
                    M {
                        iif: Some(i.ifname.clone()),
                        saddr: Some(lit(Fam::V6, true, n6)),
                        ..M::default()
                    },
                    Act::Drop,
                    line,
                    format!("antispoof: {} accepts only its own IPv6 prefixes", i.ifname),
                ));
            }
        }
        let int4: Vec<Net> = self.internal().map(|i| i.net4).collect();
        let int6: Vec<Net> = self
            .internal()
            .flat_map(|i| i.v6.iter().map(|a| a.prefix.trunc()))
            .collect();
        for u in s.ifaces.iter().filter(|i| i.uplink) {
            let mut n4 = vec![
                Net::parse("0.0.0.0/8").unwrap(),
                Net::parse("224.0.0.0/3").unwrap(),
            ];
            n4.extend(int4.iter().copied());
            n4.sort();
            r.push(rule(
                M {
                    iif: Some(u.ifname.clone()),
                    saddr: Some(lit(Fam::V4, false, n4)),
                    ..M::default()
                },
                Act::Drop,
                line,
                format!(
                    "antispoof: internal/martian IPv4 source on uplink {}",
                    u.ifname
                ),
            ));
            let mut n6 = vec![Net::parse("ff00::/8").unwrap()];
            n6.extend(int6.iter().copied());
            n6.sort();
            r.push(rule(
                M {
                    iif: Some(u.ifname.clone()),
                    saddr: Some(lit(Fam::V6, false, n6)),
                    ..M::default()
                },
                Act::Drop,
                line,
                format!(
                    "antispoof: internal/multicast IPv6 source on uplink {}",
                    u.ifname
                ),
            ));
        }
        self.base("antispoof", "filter", "prerouting", "raw", "accept", r);
    }

    fn dnat(&mut self) {
        let s = self.site;
        if s.dnats.is_empty() {
            return;
        }
        let mut r = Vec::new();
        for d in &s.dnats {
            for l4 in &d.l4 {
                let m = M {
                    iif: Some(d.ifname.clone()),
                    daddr: Some(lit(Fam::V4, false, vec![Net::host(IpAddr::V4(d.on))])),
                    l4: Some(l4.clone()),
                    ..M::default()
                };
                r.push(rule(
                    m,
                    Act::Dnat(d.to, d.port),
                    d.line,
                    format!("DNAT {} -> {}", d.on, d.to),
                ));
            }
        }
        self.base("nat_prerouting", "nat", "prerouting", "dstnat", "accept", r);
    }

    fn snat(&mut self, have_fw4: bool) {
        let s = self.site;
        if s.snats.is_empty() {
            return;
        }
        let mut r = Vec::new();
        for n in &s.snats {
            let mut m = M {
                oif: Some(n.ifname.clone()),
                nfproto: Some(Fam::V4),
                ..M::default()
            };
            if have_fw4 {
                m.saddr = Some(AddrM {
                    fam: Fam::V4,
                    neg: true,
                    set: Some("fw_v4".into()),
                    nets: fw4(s),
                });
            }
            let (act, why) = match n.to {
                Some(a) => (Act::Snat(a), format!("SNAT to {a} on {}", n.ifname)),
                None => (Act::Masquerade, format!("masquerade on {}", n.ifname)),
            };
            r.push(rule(m, act, n.line, why));
        }
        self.base(
            "nat_postrouting",
            "nat",
            "postrouting",
            "srcnat",
            "accept",
            r,
        );
    }

    fn vrrp_rules(&self, out: bool) -> Vec<NRule> {
        let s = self.site;
        let mut r = Vec::new();
        for inst in &s.instances {
            let mut m = M {
                daddr: Some(lit(Fam::V4, false, vec![Net::parse("224.0.0.18").unwrap()])),
                l4: Some(L4::Proto(112)),
                ..M::default()
            };
            if out {
                m.oif = Some(inst.ifname.clone());
            } else {
                m.iif = Some(inst.ifname.clone());
                let mut p: Vec<Net> = inst
                    .peers
                    .iter()
                    .map(|a| Net::host(IpAddr::V4(*a)))
                    .collect();
                p.sort();
                p.dedup();
                m.saddr = Some(lit(Fam::V4, false, p));
            }
            let proto_ah = s.auth.as_ref().is_some_and(|a| a.kind == "AH");
            if proto_ah {
                m.l4 = Some(L4::Proto(51));
            }
            r.push(rule(
                m,
                Act::Accept,
                inst.line,
                format!(
                    "VRRP adverts of instance {} (VRID {})",
                    inst.name, inst.vrid
                ),
            ));
        }
        if let Some(sy) = &s.sync {
            let mut m = M {
                l4: Some(L4::Ports {
                    tcp: false,
                    udp: true,
                    ports: vec![(3780, 3780)],
                }),
                ..M::default()
            };
            if out {
                m.oif = Some(sy.ifname.clone());
            } else {
                m.iif = Some(sy.ifname.clone());
                let f = if sy.master.is_ipv4() {
                    Fam::V4
                } else {
                    Fam::V6
                };
                m.saddr = Some(lit(
                    f,
                    false,
                    vec![Net::host(sy.master), Net::host(sy.backup)],
                ));
            }
            r.push(rule(m, Act::Accept, sy.line, "conntrackd state sync"));
        }
        r
    }

    fn input(&mut self) {
        let s = self.site;
        let l = s.netinit_line;
        let mut r = loopback_and_established(
            M {
                iif: Some("lo".into()),
                ..M::default()
            },
            l,
        );
        r.extend([rule(
            M {
                ct_invalid: true,
                ..M::default()
            },
            Act::Drop,
            l,
            "invalid conntrack state",
        )]);
        r.extend(self.vrrp_rules(false));
        r.push(rule(
            M {
                nd: true,
                ..M::default()
            },
            Act::Accept,
            l,
            "IPv6 neighbour discovery",
        ));
        let mut map = Vec::new();
        for i in &s.ifaces {
            map.push((i.ifname.clone(), self.pair_target(&i.zone, "fw")));
        }
        r.push(rule(
            M::default(),
            Act::VmapIif(map),
            l,
            "dispatch by input interface to <zone>_fw",
        ));
        self.log_drop(
            &mut r,
            l,
            "unknown>fw",
            "packet from an interface that is in no zone",
        );
        self.base("input", "filter", "input", "filter", "drop", r);
    }

    fn forward(&mut self) {
        let s = self.site;
        let l = s.netinit_line;
        let mut r = vec![
            rule(
                M {
                    ct_established: true,
                    ..M::default()
                },
                Act::Accept,
                l,
                "established/related connections",
            ),
            rule(
                M {
                    ct_invalid: true,
                    ..M::default()
                },
                Act::Drop,
                l,
                "invalid conntrack state",
            ),
        ];
        let mut map = Vec::new();
        for a in &s.ifaces {
            for b in &s.ifaces {
                if a.ifname == b.ifname {
                    continue; // hairpin: unlisted, logged and dropped below
                }
                map.push((
                    a.ifname.clone(),
                    b.ifname.clone(),
                    self.pair_target(&a.zone, &b.zone),
                ));
            }
        }
        if !map.is_empty() {
            r.push(rule(
                M::default(),
                Act::VmapIifOif(map),
                l,
                "dispatch by (input, output) interface to <src>_<dst>",
            ));
        }
        self.log_drop(
            &mut r,
            l,
            "unlisted",
            "unlisted interface pair (hairpin or interface in no zone)",
        );
        self.base("forward", "filter", "forward", "filter", "drop", r);
    }

    fn output(&mut self) {
        let s = self.site;
        let l = s.netinit_line;
        let mut r = loopback_and_established(
            M {
                oif: Some("lo".into()),
                ..M::default()
            },
            l,
        );
        r.extend(self.vrrp_rules(true));
        r.push(rule(
            M {
                nd: true,
                ..M::default()
            },
            Act::Accept,
            l,
            "IPv6 neighbour discovery",
        ));
        let mut map = Vec::new();
        for i in &s.ifaces {
            map.push((i.ifname.clone(), self.pair_target("fw", &i.zone)));
        }
        r.push(rule(
            M::default(),
            Act::VmapOif(map),
            l,
            "dispatch by output interface to fw_<zone>",
        ));
        let t = self.policy_target("fw", "all");
        r.push(rule(
            M::default(),
            Act::Goto(t),
            l,
            "other output interfaces: policy fw all",
        ));
        self.base("output", "filter", "output", "filter", "accept", r);
    }

    fn log_drop(&self, r: &mut Vec<NRule>, line: u32, what: &str, why: &str) {
        let lg = &self.site.log;
        r.push(rule(
            M {
                limit: Some(lg.rate.clone()),
                ..M::default()
            },
            Act::Log(format!("{} {what} DROP ", lg.prefix)),
            line,
            format!("log: {why}"),
        ));
        r.push(rule(M::default(), Act::Drop, line, why.to_string()));
    }

    /// Chain that ends a pair without explicit rules (or that a pair chain jumps to at its end).
    fn policy_target(&self, s: &str, d: &str) -> String {
        let site = self.site;
        if let Some(n) = site.noroute_for(s, d) {
            return format!("noroute_{}", n.line);
        }
        if s == d && !site.policies.iter().any(|p| p.src == s && p.dst == d) {
            return format!("intra_{s}");
        }
        match site.resolve_policy(s, d) {
            Some(p) => format!("pol_{}_{}", p.src, p.dst),
            None => "pol_all_all".into(),
        }
    }

    fn pair_target(&mut self, s: &str, d: &str) -> String {
        let key = (s.to_string(), d.to_string());
        let Some(rules) = self.pair_rules.get(&key).cloned() else {
            return self.policy_target(s, d);
        };
        let name = format!("{s}_{d}");
        if self.chains.iter().any(|c| c.name == name) {
            return name;
        }
        let mut out = Vec::new();
        for r in rules {
            self.emit_rule(&mut out, r);
        }
        let t = self.policy_target(s, d);
        out.push(rule(
            M::default(),
            Act::Goto(t.clone()),
            self.site.netinit_line,
            format!("no rule matched: policy for {s} -> {d}"),
        ));
        self.chains.push(Chain {
            name: name.clone(),
            base: None,
            rules: out,
        });
        name
    }

    fn emit_rule(&self, out: &mut Vec<NRule>, r: &Rule) {
        let fams: Vec<Option<Fam>> = if r.src.is_some() || r.dst.is_some() {
            let has = |sel: &Option<AddrSel>, f: Fam| {
                #[allow(clippy::unnecessary_map_or)] // is_none_or needs Rust 1.82, MSRV is 1.80
                sel.as_ref()
                    .map_or(true, |s| s.nets.iter().any(|n| fam_of(n) == f))
            };
            [Fam::V4, Fam::V6]
                .into_iter()
                .filter(|f| has(&r.src, *f) && has(&r.dst, *f))
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        let act_name = if r.dnat_only {
            "DNAT"
        } else {
            match r.action {
                RuleAction::Allow => "ALLOW",
                RuleAction::Deny => "DENY",
                RuleAction::Reject => "REJECT",
            }
        };
        for f in fams {
            for l4 in &r.l4 {
                if let (L4::Echo { v6 }, Some(f)) = (l4, f) {
                    if *v6 != (f == Fam::V6) {
                        continue;
                    }
                }
                let mut l4s = vec![l4.clone()];
                if r.action == RuleAction::Reject {
                    if let L4::Ports {
                        tcp: true,
                        udp: true,
                        ports,
                    } = l4
                    {
                        l4s = vec![
                            L4::Ports {
                                tcp: true,
                                udp: false,
                                ports: ports.clone(),
                            },
                            L4::Ports {
                                tcp: false,
                                udp: true,
                                ports: ports.clone(),
                            },
                        ];
                    }
                }
                for l4 in l4s {
                    let m = M {
                        saddr: f.and_then(|f| r.src.as_ref().and_then(|s| sel_fam(s, f))),
                        daddr: f.and_then(|f| r.dst.as_ref().and_then(|s| sel_fam(s, f))),
                        l4: Some(l4.clone()),
                        ct_dnat: r.dnat_only,
                        limit: r.limit.clone(),
                        ..M::default()
                    };
                    let why = format!("{act_name} {} -> {}", r.src_zone, r.dst_zone);
                    if r.log {
                        let lg = &self.site.log;
                        let mut lm = m.clone();
                        lm.limit = Some(lg.rate.clone());
                        out.push(rule(
                            lm,
                            Act::Log(format!(
                                "{} {}>{} {act_name} ",
                                lg.prefix, r.src_zone, r.dst_zone
                            )),
                            r.line,
                            format!("log: {why}"),
                        ));
                    }
                    let act = match r.action {
                        RuleAction::Allow => Act::Accept,
                        RuleAction::Deny => Act::Drop,
                        RuleAction::Reject => {
                            if matches!(l4, L4::Ports { tcp: true, .. }) {
                                Act::RejectTcp
                            } else {
                                Act::RejectIcmpx
                            }
                        }
                    };
                    out.push(rule(m, act, r.line, why));
                }
            }
        }
    }

    /// Create every policy/noroute/intra chain that some dispatch or pair chain refers to.
    fn policy_chains(&mut self) {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for c in &self.chains {
            for r in &c.rules {
                match &r.act {
                    Act::Goto(t) => {
                        wanted.insert(t.clone());
                    }
                    Act::VmapIif(v) | Act::VmapOif(v) => {
                        wanted.extend(v.iter().map(|x| x.1.clone()))
                    }
                    Act::VmapIifOif(v) => wanted.extend(v.iter().map(|x| x.2.clone())),
                    _ => {}
                }
            }
        }
        let site = self.site;
        let lg = &site.log;
        for name in wanted {
            if self.chains.iter().any(|c| c.name == name) {
                continue;
            }
            let mut r = Vec::new();
            if let Some(line) = name
                .strip_prefix("noroute_")
                .and_then(|x| x.parse::<u32>().ok())
            {
                r.push(rule(
                    M {
                        limit: Some(lg.rate.clone()),
                        ..M::default()
                    },
                    Act::Log(format!("{} NOROUTE DROP ", lg.prefix)),
                    line,
                    "log: NOROUTE guard",
                ));
                r.push(rule(
                    M::default(),
                    Act::Drop,
                    line,
                    "NOROUTE: the routers do not route between these zones",
                ));
            } else if let Some(z) = name.strip_prefix("intra_") {
                let line = site.zone(z).map(|z| z.line).unwrap_or(site.netinit_line);
                r.push(rule(
                    M::default(),
                    Act::Accept,
                    line,
                    format!("intra-zone traffic of {z} (between its interfaces)"),
                ));
            } else if let Some(rest) = name.strip_prefix("pol_") {
                let p = site
                    .policies
                    .iter()
                    .find(|p| format!("{}_{}", p.src, p.dst) == rest)
                    .cloned();
                let (action, log, line, label) = match &p {
                    Some(p) => (p.action, p.log, p.line, format!("{}>{}", p.src, p.dst)),
                    None => (
                        PolicyAction::Drop,
                        true,
                        site.netinit_line,
                        "all>all".into(),
                    ),
                };
                let an = pol_name(action);
                if log {
                    r.push(rule(
                        M {
                            limit: Some(lg.rate.clone()),
                            ..M::default()
                        },
                        Act::Log(format!("{} {label} {an} ", lg.prefix)),
                        line,
                        format!("log: POLICY {label} {an}"),
                    ));
                }
                match action {
                    PolicyAction::Accept => r.push(rule(
                        M::default(),
                        Act::Accept,
                        line,
                        format!("POLICY {label} ACCEPT"),
                    )),
                    PolicyAction::Drop => r.push(rule(
                        M::default(),
                        Act::Drop,
                        line,
                        format!("POLICY {label} DROP"),
                    )),
                    PolicyAction::Reject => {
                        r.push(rule(
                            M {
                                l4: Some(L4::Ports {
                                    tcp: true,
                                    udp: false,
                                    ports: vec![],
                                }),
                                ..M::default()
                            },
                            Act::RejectTcp,
                            line,
                            format!("POLICY {label} REJECT (tcp reset)"),
                        ));
                        r.push(rule(
                            M::default(),
                            Act::RejectIcmpx,
                            line,
                            format!("POLICY {label} REJECT"),
                        ));
                    }
                }
            }
            self.chains.push(Chain {
                name,
                base: None,
                rules: r,
            });
        }
    }
}

fn fw4(s: &Site) -> Vec<Net> {
    s.router_addrs()
        .into_iter()
        .filter(|a| a.is_ipv4())
        .map(Net::host)
        .collect()
}

fn lit(fam: Fam, neg: bool, nets: Vec<Net>) -> AddrM {
    AddrM {
        fam,
        neg,
        set: None,
        nets,
    }
}

// ------------------------------------------------------------------------------------------
// Text output

fn nets_txt(n: &[Net]) -> String {
    if n.len() == 1 {
        n[0].trunc_display()
    } else {
        format!(
            "{{ {} }}",
            n.iter()
                .map(|x| x.trunc_display())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

trait TruncDisplay {
    fn trunc_display(&self) -> String;
}
impl TruncDisplay for Net {
    fn trunc_display(&self) -> String {
        self.trunc().to_string()
    }
}

fn ports_txt(p: &[(u16, u16)]) -> String {
    let one = |(a, b): &(u16, u16)| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    if p.len() == 1 {
        one(&p[0])
    } else {
        format!("{{ {} }}", p.iter().map(one).collect::<Vec<_>>().join(", "))
    }
}

pub fn l4_txt(l: &L4) -> String {
    match l {
        L4::Ports {
            tcp: true,
            udp: false,
            ports,
        } if ports.is_empty() => "meta l4proto tcp".into(),
        L4::Ports {
            tcp: true,
            udp: false,
            ports,
        } => format!("tcp dport {}", ports_txt(ports)),
        L4::Ports {
            tcp: false,
            udp: true,
            ports,
        } => format!("udp dport {}", ports_txt(ports)),
        L4::Ports { ports, .. } => {
            format!("meta l4proto {{ tcp, udp }} th dport {}", ports_txt(ports))
        }
        L4::Proto(n) => format!("meta l4proto {n}"),
        L4::Echo { v6: false } => "icmp type echo-request".into(),
        L4::Echo { v6: true } => "icmpv6 type echo-request".into(),
    }
}

fn addr_txt(dir: &str, a: &AddrM) -> String {
    let k = if a.fam == Fam::V4 { "ip" } else { "ip6" };
    let neg = if a.neg { "!= " } else { "" };
    match &a.set {
        Some(s) => format!("{k} {dir} {neg}@{s}"),
        None => format!("{k} {dir} {neg}{}", nets_txt(&a.nets)),
    }
}

pub fn match_txt(m: &M) -> String {
    let mut p: Vec<String> = Vec::new();
    if let Some(i) = &m.iif {
        p.push(format!("iifname \"{i}\""));
    }
    if let Some(o) = &m.oif {
        p.push(format!("oifname \"{o}\""));
    }
    if let Some(f) = m.nfproto {
        p.push(format!(
            "meta nfproto {}",
            if f == Fam::V4 { "ipv4" } else { "ipv6" }
        ));
    }
    if let Some(a) = &m.saddr {
        p.push(addr_txt("saddr", a));
    }
    if let Some(a) = &m.daddr {
        p.push(addr_txt("daddr", a));
    }
    if let Some(l) = &m.l4 {
        p.push(l4_txt(l));
    }
    if m.nd {
        p.push("icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }".into());
    }
    if m.ct_established {
        p.push("ct state established,related".into());
    }
    if m.ct_invalid {
        p.push("ct state invalid".into());
    }
    if m.ct_dnat {
        p.push("ct status dnat".into());
    }
    if let Some(r) = &m.limit {
        p.push(format!("limit rate {}/{}", r.n, r.unit));
    }
    p.join(" ")
}

fn act_txt(a: &Act, level: &str, nflog: Option<u16>) -> String {
    match a {
        Act::Accept => "accept".into(),
        Act::Drop => "drop".into(),
        Act::RejectTcp => "reject with tcp reset".into(),
        Act::RejectIcmpx => "reject with icmpx admin-prohibited".into(),
        Act::Goto(c) => format!("goto {c}"),
        Act::VmapIif(v) => format!(
            "iifname vmap {{ {} }}",
            v.iter()
                .map(|(i, c)| format!("\"{i}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Act::VmapOif(v) => format!(
            "oifname vmap {{ {} }}",
            v.iter()
                .map(|(i, c)| format!("\"{i}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Act::VmapIifOif(v) => format!(
            "iifname . oifname vmap {{ {} }}",
            v.iter()
                .map(|(i, o, c)| format!("\"{i}\" . \"{o}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Act::Log(p) => match nflog {
            Some(g) => format!("log prefix \"{p}\" group {g}"),
            None => format!("log prefix \"{p}\" level {level}"),
        },
        Act::Snat(a) => format!("snat ip to {a}"),
        Act::Masquerade => "masquerade".into(),
        Act::Dnat(a, None) => format!("dnat ip to {a}"),
        Act::Dnat(a, Some(p)) => format!("dnat ip to {a}:{p}"),
    }
}

/// One rule as nft text (without indentation).
pub fn rule_txt(rs: &Ruleset, r: &NRule, level: &str, nflog: Option<u16>) -> String {
    let m = match_txt(&r.m);
    let mut s = String::new();
    if !m.is_empty() {
        s.push_str(&m);
        s.push(' ');
    }
    if rs.counters {
        s.push_str("counter ");
    }
    s.push_str(&act_txt(&r.act, level, nflog));
    let _ = write!(s, " comment \"{}:{}\"", rs.file, r.line);
    s
}

/// The whole file: creates the table if missing, deletes it and recreates it, all in one
/// transaction (works on first load too).
pub fn render(rs: &Ruleset, site: &Site) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/usr/sbin/nft -f");
    let _ = writeln!(
        s,
        "# Generated by labwall from {} -- do not edit. Identical for MASTER and BACKUP.",
        rs.file
    );
    let _ = writeln!(
        s,
        "# Loading replaces table inet {TABLE} atomically and touches no other table."
    );
    let _ = writeln!(s, "table inet {TABLE} {{}}");
    let _ = writeln!(s, "delete table inet {TABLE}");
    let _ = writeln!(s, "table inet {TABLE} {{");
    for set in &rs.sets {
        let ty = if set.fam == Fam::V4 {
            "ipv4_addr"
        } else {
            "ipv6_addr"
        };
        let _ = writeln!(s, "\tset {} {{", set.name);
        let _ = writeln!(s, "\t\ttype {ty}");
        let _ = writeln!(s, "\t\tflags interval");
        let _ = writeln!(
            s,
            "\t\telements = {{ {} }}",
            set.elems
                .iter()
                .map(|n| n.trunc().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "\t}}");
    }
    for c in &rs.chains {
        let _ = writeln!(s, "\n\tchain {} {{", c.name);
        if let Some(b) = &c.base {
            let _ = writeln!(
                s,
                "\t\ttype {} hook {} priority {}; policy {};",
                b.kind, b.hook, b.prio, b.policy
            );
        }
        for r in &c.rules {
            let _ = writeln!(
                s,
                "\t\t{}",
                rule_txt(rs, r, &site.log.level, site.log.nflog)
            );
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    s
}
