//! Building the ruleset IR from the checked site: the base chains in hook order, one chain per
//! zone pair with rules, and the shared policy chains the dispatch maps point at.

use super::{Action, AddrMatch, BaseChain, Chain, ChainRule, Family, Match, NamedSet, Ruleset};
use crate::model::{AddrSel, Iface, Rule, Site, L4};
use crate::net::Net;
use crate::parse::{PolicyAction, RuleAction};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

fn fam_of(n: &Net) -> Family {
    if n.is_v4() {
        Family::V4
    } else {
        Family::V6
    }
}

fn sel_fam(sel: &AddrSel, f: Family) -> Option<AddrMatch> {
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
        .map(|s| format!("{s}_{}", if f == Family::V4 { "v4" } else { "v6" }));
    Some(AddrMatch {
        fam: f,
        neg: false,
        set,
        nets,
    })
}

/// The chains built so far, and the rules of each (source zone, destination zone) pair.
struct RulesetBuilder<'a> {
    site: &'a Site,
    chains: Vec<Chain>,
    pair_rules: BTreeMap<(String, String), Vec<&'a Rule>>,
}

/// Build the IR from the checked site. Role-independent by construction (never reads `role`).
pub fn build(site: &Site) -> Ruleset {
    let mut g = RulesetBuilder {
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
        for f in [Family::V4, Family::V6] {
            let elems: Vec<Net> = a.nets.iter().copied().filter(|n| fam_of(n) == f).collect();
            if !elems.is_empty() {
                sets.push(NamedSet {
                    name: format!("{}_{}", a.name, if f == Family::V4 { "v4" } else { "v6" }),
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
        sets.push(NamedSet {
            name: "fw_v4".into(),
            fam: Family::V4,
            elems: r4.clone(),
        });
    }
    if !r6.is_empty() {
        sets.push(NamedSet {
            name: "fw_v6".into(),
            fam: Family::V6,
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
    super::vmac::alias(&mut g.chains, &super::vmac::pairs(site));
    Ruleset {
        file: site.file.clone(),
        counters: site.counters,
        sets,
        chains: g.chains,
    }
}

/// The first two rules of the input and output chains: accept loopback (`lo` matches `iif` or
/// `oif` as the chain needs) and established/related connections.
fn loopback_and_established(lo: Match, line: u32) -> Vec<ChainRule> {
    vec![
        rule(lo, Action::Accept, line, "loopback"),
        rule(
            Match {
                ct_established: true,
                ..Match::default()
            },
            Action::Accept,
            line,
            "established/related connections",
        ),
    ]
}

fn rule(m: Match, act: Action, line: u32, why: impl Into<String>) -> ChainRule {
    ChainRule {
        matches: m,
        action: act,
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

impl<'a> RulesetBuilder<'a> {
    fn base(
        &mut self,
        name: &str,
        kind: &'static str,
        hook: &'static str,
        prio: &'static str,
        policy: &'static str,
        rules: Vec<ChainRule>,
    ) {
        self.chains.push(Chain {
            name: name.into(),
            base: Some(BaseChain {
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

    /// `antispoof` (prerouting, priority raw): loopback addresses outside lo, internal or
    /// martian sources on the uplink and, with `strict`, foreign sources on internal interfaces.
    fn antispoof(&mut self) {
        let s = self.site;
        if s.antispoof == "off" {
            return;
        }
        let line = s.antispoof_line;
        let mut r = antispoof_loopback(line);
        if s.antispoof == "strict" {
            for i in self.internal() {
                r.extend(antispoof_own_prefixes(i, line));
            }
        }
        let int4: Vec<Net> = self.internal().map(|i| i.net4).collect();
        let int6: Vec<Net> = self
            .internal()
            .flat_map(|i| i.v6.iter().map(|a| a.prefix.trunc()))
            .collect();
        for u in s.ifaces.iter().filter(|i| i.uplink) {
            r.extend(antispoof_uplink(u, &int4, &int6, line));
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
                let m = Match {
                    iif: Some(d.ifname.clone()),
                    daddr: Some(lit(Family::V4, false, vec![Net::host(IpAddr::V4(d.on))])),
                    l4: Some(l4.clone()),
                    ..Match::default()
                };
                r.push(rule(
                    m,
                    Action::Dnat(d.to, d.port),
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
            let mut m = Match {
                oif: Some(n.ifname.clone()),
                nfproto: Some(Family::V4),
                ..Match::default()
            };
            if have_fw4 {
                m.saddr = Some(AddrMatch {
                    fam: Family::V4,
                    neg: true,
                    set: Some("fw_v4".into()),
                    nets: fw4(s),
                });
            }
            let (act, why) = match n.to {
                Some(a) => (Action::Snat(a), format!("SNAT to {a} on {}", n.ifname)),
                None => (Action::Masquerade, format!("masquerade on {}", n.ifname)),
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

    fn vrrp_rules(&self, out: bool) -> Vec<ChainRule> {
        let s = self.site;
        let mut r = Vec::new();
        for inst in &s.instances {
            let mut m = Match {
                daddr: Some(lit(
                    Family::V4,
                    false,
                    vec![Net::parse("224.0.0.18").unwrap()],
                )),
                l4: Some(L4::Proto(112)),
                ..Match::default()
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
                m.saddr = Some(lit(Family::V4, false, p));
            }
            let proto_ah = s.auth.as_ref().is_some_and(|a| a.kind == "AH");
            if proto_ah {
                m.l4 = Some(L4::Proto(51));
            }
            r.push(rule(
                m,
                Action::Accept,
                inst.line,
                format!(
                    "VRRP adverts of instance {} (VRID {})",
                    inst.name, inst.vrid
                ),
            ));
        }
        if let Some(sy) = &s.sync {
            let mut m = Match {
                l4: Some(L4::Ports {
                    tcp: false,
                    udp: true,
                    ports: vec![(3780, 3780)],
                }),
                ..Match::default()
            };
            if out {
                m.oif = Some(sy.ifname.clone());
            } else {
                m.iif = Some(sy.ifname.clone());
                let f = if sy.master.is_ipv4() {
                    Family::V4
                } else {
                    Family::V6
                };
                m.saddr = Some(lit(
                    f,
                    false,
                    vec![Net::host(sy.master), Net::host(sy.backup)],
                ));
            }
            r.push(rule(m, Action::Accept, sy.line, "conntrackd state sync"));
        }
        r
    }

    fn input(&mut self) {
        let s = self.site;
        let l = s.netinit_line;
        let mut r = loopback_and_established(
            Match {
                iif: Some("lo".into()),
                ..Match::default()
            },
            l,
        );
        r.extend([rule(
            Match {
                ct_invalid: true,
                ..Match::default()
            },
            Action::Drop,
            l,
            "invalid conntrack state",
        )]);
        r.extend(self.vrrp_rules(false));
        r.push(rule(
            Match {
                nd: true,
                ..Match::default()
            },
            Action::Accept,
            l,
            "IPv6 neighbour discovery",
        ));
        let mut map = Vec::new();
        for i in &s.ifaces {
            map.push((i.ifname.clone(), self.pair_target(&i.zone, "fw")));
        }
        r.push(rule(
            Match::default(),
            Action::VmapIif(map),
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
                Match {
                    ct_established: true,
                    ..Match::default()
                },
                Action::Accept,
                l,
                "established/related connections",
            ),
            rule(
                Match {
                    ct_invalid: true,
                    ..Match::default()
                },
                Action::Drop,
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
                Match::default(),
                Action::VmapIifOif(map),
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
            Match {
                oif: Some("lo".into()),
                ..Match::default()
            },
            l,
        );
        r.extend(self.vrrp_rules(true));
        r.push(rule(
            Match {
                nd: true,
                ..Match::default()
            },
            Action::Accept,
            l,
            "IPv6 neighbour discovery",
        ));
        let mut map = Vec::new();
        for i in &s.ifaces {
            map.push((i.ifname.clone(), self.pair_target("fw", &i.zone)));
        }
        r.push(rule(
            Match::default(),
            Action::VmapOif(map),
            l,
            "dispatch by output interface to fw_<zone>",
        ));
        let t = self.policy_target("fw", "all");
        r.push(rule(
            Match::default(),
            Action::Goto(t),
            l,
            "other output interfaces: policy fw all",
        ));
        self.base("output", "filter", "output", "filter", "accept", r);
    }

    fn log_drop(&self, r: &mut Vec<ChainRule>, line: u32, what: &str, why: &str) {
        let lg = &self.site.log;
        r.push(rule(
            Match {
                limit: Some(lg.rate.clone()),
                ..Match::default()
            },
            Action::Log(format!("{} {what} DROP ", lg.prefix)),
            line,
            format!("log: {why}"),
        ));
        r.push(rule(Match::default(), Action::Drop, line, why.to_string()));
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
            Match::default(),
            Action::Goto(t.clone()),
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

    fn emit_rule(&self, out: &mut Vec<ChainRule>, r: &Rule) {
        let fams: Vec<Option<Family>> = if r.src.is_some() || r.dst.is_some() {
            let has = |sel: &Option<AddrSel>, f: Family| {
                #[allow(clippy::unnecessary_map_or)] // is_none_or needs Rust 1.82, MSRV is 1.80
                sel.as_ref()
                    .map_or(true, |s| s.nets.iter().any(|n| fam_of(n) == f))
            };
            [Family::V4, Family::V6]
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
                    if *v6 != (f == Family::V6) {
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
                    let m = Match {
                        saddr: f.and_then(|f| r.src.as_ref().and_then(|s| sel_fam(s, f))),
                        daddr: f.and_then(|f| r.dst.as_ref().and_then(|s| sel_fam(s, f))),
                        l4: Some(l4.clone()),
                        ct_dnat: r.dnat_only,
                        limit: r.limit.clone(),
                        ..Match::default()
                    };
                    let why = format!("{act_name} {} -> {}", r.src_zone, r.dst_zone);
                    if r.log {
                        let lg = &self.site.log;
                        let mut lm = m.clone();
                        lm.limit = Some(lg.rate.clone());
                        out.push(rule(
                            lm,
                            Action::Log(format!(
                                "{} {}>{} {act_name} ",
                                lg.prefix, r.src_zone, r.dst_zone
                            )),
                            r.line,
                            format!("log: {why}"),
                        ));
                    }
                    let act = match r.action {
                        RuleAction::Allow => Action::Accept,
                        RuleAction::Deny => Action::Drop,
                        RuleAction::Reject => {
                            if matches!(l4, L4::Ports { tcp: true, .. }) {
                                Action::RejectTcp
                            } else {
                                Action::RejectIcmpx
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
                match &r.action {
                    Action::Goto(t) => {
                        wanted.insert(t.clone());
                    }
                    Action::VmapIif(v) | Action::VmapOif(v) => {
                        wanted.extend(v.iter().map(|x| x.1.clone()))
                    }
                    Action::VmapIifOif(v) => wanted.extend(v.iter().map(|x| x.2.clone())),
                    _ => {}
                }
            }
        }
        for name in wanted {
            if self.chains.iter().any(|c| c.name == name) {
                continue;
            }
            let rules = if let Some(line) = name
                .strip_prefix("noroute_")
                .and_then(|x| x.parse::<u32>().ok())
            {
                self.noroute_chain(line)
            } else if let Some(z) = name.strip_prefix("intra_") {
                self.intra_chain(z)
            } else if let Some(rest) = name.strip_prefix("pol_") {
                self.policy_chain(rest)
            } else {
                Vec::new()
            };
            self.chains.push(Chain {
                name,
                base: None,
                rules,
            });
        }
    }

    /// `noroute_<line>`: log and drop.
    fn noroute_chain(&self, line: u32) -> Vec<ChainRule> {
        let lg = &self.site.log;
        vec![
            rule(
                Match {
                    limit: Some(lg.rate.clone()),
                    ..Match::default()
                },
                Action::Log(format!("{} NOROUTE DROP ", lg.prefix)),
                line,
                "log: NOROUTE guard",
            ),
            rule(
                Match::default(),
                Action::Drop,
                line,
                "NOROUTE: the routers do not route between these zones",
            ),
        ]
    }

    /// `intra_<zone>`: traffic between two interfaces of one zone is accepted.
    fn intra_chain(&self, z: &str) -> Vec<ChainRule> {
        let site = self.site;
        let line = site.zone(z).map(|z| z.line).unwrap_or(site.netinit_line);
        vec![rule(
            Match::default(),
            Action::Accept,
            line,
            format!("intra-zone traffic of {z} (between its interfaces)"),
        )]
    }

    /// `pol_<src>_<dst>`: the POLICY line's action, logged if it says LOG (`pol_all_all`
    /// without a POLICY all all: log and drop).
    fn policy_chain(&self, rest: &str) -> Vec<ChainRule> {
        let site = self.site;
        let lg = &site.log;
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
        let mut r = Vec::new();
        if log {
            r.push(rule(
                Match {
                    limit: Some(lg.rate.clone()),
                    ..Match::default()
                },
                Action::Log(format!("{} {label} {an} ", lg.prefix)),
                line,
                format!("log: POLICY {label} {an}"),
            ));
        }
        match action {
            PolicyAction::Accept => r.push(rule(
                Match::default(),
                Action::Accept,
                line,
                format!("POLICY {label} ACCEPT"),
            )),
            PolicyAction::Drop => r.push(rule(
                Match::default(),
                Action::Drop,
                line,
                format!("POLICY {label} DROP"),
            )),
            PolicyAction::Reject => {
                r.push(rule(
                    Match {
                        l4: Some(L4::Ports {
                            tcp: true,
                            udp: false,
                            ports: vec![],
                        }),
                        ..Match::default()
                    },
                    Action::RejectTcp,
                    line,
                    format!("POLICY {label} REJECT (tcp reset)"),
                ));
                r.push(rule(
                    Match::default(),
                    Action::RejectIcmpx,
                    line,
                    format!("POLICY {label} REJECT"),
                ));
            }
        }
        r
    }
}

/// Accept lo, drop the loopback addresses anywhere else.
fn antispoof_loopback(line: u32) -> Vec<ChainRule> {
    vec![
        rule(
            Match {
                iif: Some("lo".into()),
                ..Match::default()
            },
            Action::Accept,
            line,
            "loopback",
        ),
        rule(
            Match {
                saddr: Some(lit(
                    Family::V4,
                    false,
                    vec![Net::parse("127.0.0.0/8").unwrap()],
                )),
                ..Match::default()
            },
            Action::Drop,
            line,
            "antispoof: 127.0.0.0/8 outside lo",
        ),
        rule(
            Match {
                saddr: Some(lit(Family::V6, false, vec![Net::parse("::1").unwrap()])),
                ..Match::default()
            },
            Action::Drop,
            line,
            "antispoof: ::1 outside lo",
        ),
    ]
}

/// `strict`: internal interface `i` accepts only its own prefixes (+ 0.0.0.0, ::, fe80::/10).
fn antispoof_own_prefixes(i: &Iface, line: u32) -> Vec<ChainRule> {
    let mut n4 = vec![Net::parse("0.0.0.0").unwrap(), i.net4];
    n4.sort();
    let mut n6 = vec![Net::parse("::").unwrap(), Net::parse("fe80::/10").unwrap()];
    n6.extend(i.v6.iter().map(|a| a.prefix.trunc()));
    n6.sort();
    vec![
        rule(
            Match {
                iif: Some(i.ifname.clone()),
                saddr: Some(lit(Family::V4, true, n4)),
                ..Match::default()
            },
            Action::Drop,
            line,
            format!("antispoof: {} accepts only its own IPv4 prefix", i.ifname),
        ),
        rule(
            Match {
                iif: Some(i.ifname.clone()),
                saddr: Some(lit(Family::V6, true, n6)),
                ..Match::default()
            },
            Action::Drop,
            line,
            format!("antispoof: {} accepts only its own IPv6 prefixes", i.ifname),
        ),
    ]
}

/// The uplink `u` drops internal prefixes and martian/multicast sources.
fn antispoof_uplink(u: &Iface, int4: &[Net], int6: &[Net], line: u32) -> Vec<ChainRule> {
    let mut n4 = vec![
        Net::parse("0.0.0.0/8").unwrap(),
        Net::parse("224.0.0.0/3").unwrap(),
    ];
    n4.extend(int4.iter().copied());
    n4.sort();
    let mut n6 = vec![Net::parse("ff00::/8").unwrap()];
    n6.extend(int6.iter().copied());
    n6.sort();
    vec![
        rule(
            Match {
                iif: Some(u.ifname.clone()),
                saddr: Some(lit(Family::V4, false, n4)),
                ..Match::default()
            },
            Action::Drop,
            line,
            format!(
                "antispoof: internal/martian IPv4 source on uplink {}",
                u.ifname
            ),
        ),
        rule(
            Match {
                iif: Some(u.ifname.clone()),
                saddr: Some(lit(Family::V6, false, n6)),
                ..Match::default()
            },
            Action::Drop,
            line,
            format!(
                "antispoof: internal/multicast IPv6 source on uplink {}",
                u.ifname
            ),
        ),
    ]
}

fn fw4(s: &Site) -> Vec<Net> {
    s.router_addrs()
        .into_iter()
        .filter(|a| a.is_ipv4())
        .map(Net::host)
        .collect()
}

fn lit(fam: Family, neg: bool, nets: Vec<Net>) -> AddrMatch {
    AddrMatch {
        fam,
        neg,
        set: None,
        nets,
    }
}

#[cfg(test)]
mod tests {
    use crate::nft::Action;
    use crate::parse::MapLoader;
    use crate::{compile_source, Compiled, Options};

    const SITE: &str = "NETINIT eth1 eth0
DEV INTER eth1 10.1.1.0 10.1.1.254 /24 10.1.1.2-10.1.1.3-10.1.1.4-101*
VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-101 /24
VLAN 20 eth0 172.16.20.0 172.16.20.2 /24
POLICY all all DROP
REJECT VLAN10 VLAN20 dns
ANTISPOOF strict
NAT SNAT INTER TO VIP
";

    fn compile(role: &str) -> Compiled {
        let opts = Options {
            role: role.into(),
            ..Options::default()
        };
        let loader = MapLoader(Default::default());
        compile_source(&loader, std::path::Path::new("t.lw"), SITE, &opts).unwrap()
    }

    #[test]
    fn chains_in_build_order_pair_chain_only_where_rules_are() {
        let c = compile("MASTER");
        let names: Vec<&str> = c.ruleset.chains.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "antispoof",
                "input",
                "VLAN10_VLAN20",
                "forward",
                "output",
                "nat_postrouting",
                "pol_all_all"
            ]
        );
    }

    #[test]
    fn reject_of_tcp_and_udp_ports_is_two_rules() {
        let c = compile("MASTER");
        let pair = c.ruleset.chain("VLAN10_VLAN20").unwrap();
        let acts: Vec<String> = pair
            .rules
            .iter()
            .map(|r| format!("{:?}", r.action))
            .collect();
        assert_eq!(acts, ["RejectTcp", "RejectIcmpx", "Goto(\"pol_all_all\")"]);
        assert!(matches!(
            c.ruleset.chain("nat_postrouting").unwrap().rules[0].action,
            Action::Snat(a) if a.to_string() == "10.1.1.4"
        ));
    }

    #[test]
    fn the_ruleset_does_not_depend_on_the_role() {
        let (m, b) = (compile("MASTER"), compile("BACKUP"));
        assert_eq!(m.outputs.ruleset_nft, b.outputs.ruleset_nft);
        assert_ne!(m.outputs.keepalived_conf, b.outputs.keepalived_conf);
    }
}
