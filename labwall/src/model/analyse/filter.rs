//! Pass 3, the filter: ALLOW/DENY/REJECT rules, POLICY, NOROUTE and SYNC (NAT is in
//! [`super::nat`]); then the default policies and the NOROUTE-over-ACCEPT warning.

use super::Analysis;
use crate::diag::Diagnostic;
use crate::line::{Line, Token};
use crate::model::{builtin_service, l4_of, most_specific_policy, AddrSel};
use crate::model::{Noroute, Policy, Rule, Sync};
use crate::parse::{Endpoint, Parsed, PolicyAction, Rate, RuleAction, Stmt, SvcItem};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The zones one side of a rule stands for, and its address restriction.
type Side = (Vec<String>, Option<AddrSel>);

impl Analysis<'_> {
    /// Pass 3: statements that refer to zones, aliases and services, which are all known now
    /// wherever they are in the file. Rules (and the accept rules of DNAT) keep file order.
    pub(super) fn collect_filter(&mut self, stmts: &[Parsed]) {
        for p in stmts {
            let l = &p.line;
            match &p.stmt {
                Stmt::Rule {
                    action,
                    src,
                    dst,
                    services,
                    log,
                    limit,
                } => self.rule(l, *action, src, dst, services, *log, limit),
                Stmt::Policy {
                    src,
                    dst,
                    action,
                    log,
                } => self.policy(l, src, dst, *action, *log),
                Stmt::Noroute(zs) => self.noroute(l, zs),
                Stmt::Snat { name, to } => self.snat(l, name, to),
                Stmt::Masq { name } => self.masq(l, name),
                Stmt::Dnat {
                    name,
                    on,
                    service,
                    to,
                    port,
                } => self.dnat(l, name, on, service, to, *port),
                Stmt::Sync {
                    dev,
                    master,
                    backup,
                } => self.sync(l, dev, *master, *backup),
                _ => {}
            }
        }
    }

    pub(super) fn zone_known(&self, z: &str) -> bool {
        self.zones.iter().any(|n| n.name == z)
    }

    /// "a, b, c": the zones, for fixes.
    pub(super) fn known_zones(&self) -> String {
        let names: Vec<&str> = self.zones.iter().map(|z| z.name.as_str()).collect();
        names.join(", ")
    }

    /// A SERVICE definition, else a built-in.
    pub(super) fn service(&self, name: &str) -> Option<Vec<SvcItem>> {
        self.services
            .get(name)
            .cloned()
            .or_else(|| builtin_service(name))
    }

    /// ALLOW/DENY/REJECT: one [`Rule`] per (source zone, destination zone) pair it stands for
    /// (`all` expands), skipping pairs that never cross the router (fw -> fw, inside a zone of
    /// one interface), which are errors when the rule names that pair explicitly.
    #[allow(clippy::too_many_arguments)]
    fn rule(
        &mut self,
        l: &Line,
        action: RuleAction,
        src: &Endpoint,
        dst: &Endpoint,
        svcs: &[Token],
        log: bool,
        limit: &Option<Rate>,
    ) {
        let s = self.side(l, src);
        let d = self.side(l, dst);
        let mut items = Vec::new();
        let mut ok = true;
        for sv in svcs {
            match self.service(&sv.text) {
                Some(mut it) => items.append(&mut it),
                None => {
                    self.out.err(l, sv, format!("unknown service {}", sv.text), "define it with SERVICE <name> <proto>/<port>, or use a built-in (ssh dns dhcp ntp ping http https openvpn radius smtp imaps ldap ldaps kerberos smb nfs ipp syslog snmp vrrp)");
                    ok = false;
                }
            }
        }
        let (Some((sz, ssel)), Some((dz, dsel))) = (s, d) else {
            return;
        };
        if !ok {
            return;
        }
        if !families_meet(&ssel, &dsel) {
            self.out.err(
                l,
                &l.toks[2].clone(),
                "address family mismatch: source and destination share no IP version",
                "use aliases with addresses of the same family (IPv4 with IPv4, IPv6 with IPv6)",
            );
            return;
        }
        let explicit_pair = sz.len() == 1 && dz.len() == 1;
        for a in &sz {
            for b in &dz {
                if !self.pair_crosses_router(l, a, b, explicit_pair) {
                    continue;
                }
                self.rules.push(Rule {
                    line: l.loc.line,
                    action,
                    src_zone: a.clone(),
                    dst_zone: b.clone(),
                    src: ssel.clone(),
                    dst: dsel.clone(),
                    l4: l4_of(&items),
                    log,
                    limit: limit.clone(),
                    dnat_only: false,
                });
            }
        }
    }

    /// False for fw -> fw and for traffic inside a zone of one interface: such a pair gets no
    /// rule (an error if the rule named exactly this pair).
    fn pair_crosses_router(&mut self, l: &Line, a: &str, b: &str, explicit_pair: bool) -> bool {
        if a == "fw" && b == "fw" {
            if explicit_pair {
                self.out.err(
                    l,
                    &l.toks[1].clone(),
                    "fw to fw is the router talking to itself (always allowed on lo)",
                    "remove this rule",
                );
            }
            return false;
        }
        let single = |z: &crate::model::Zone| z.ifaces.len() < 2;
        if a == b && a != "fw" && self.zones.iter().find(|z| z.name == a).is_some_and(single) {
            if explicit_pair {
                self.out.err(
                    l,
                    &l.toks[1].clone(),
                    format!("zone {a} has a single interface: traffic inside it never crosses the router"),
                    "use two different zones",
                );
            }
            return false;
        }
        true
    }

    /// One side of a rule: `all` (every zone and fw), `fw`, or a zone with an optional alias
    /// or network. None if a zone or alias is undefined (reported).
    fn side(&mut self, l: &Line, ep: &Endpoint) -> Option<Side> {
        let (z, sel) = match ep {
            Endpoint::All => {
                let mut v: Vec<String> = self.zones.iter().map(|z| z.name.clone()).collect();
                v.push("fw".into());
                return Some((v, None));
            }
            Endpoint::Fw => return Some((vec!["fw".into()], None)),
            Endpoint::Zone(z) => (z, None),
            Endpoint::ZoneAlias(z, a) => (z, Some(Err(a))),
            Endpoint::ZoneNet(z, n) => (z, Some(Ok(*n))),
        };
        if !self.zone_known(&z.text) {
            self.out.err(
                l,
                z,
                format!("undefined zone {}", z.text),
                format!("known zones: {}, fw, all", self.known_zones()),
            );
            return None;
        }
        let sel = match sel {
            None => None,
            Some(Ok(n)) => Some(AddrSel {
                set: None,
                nets: vec![n],
            }),
            Some(Err(a)) => Some(self.alias_sel(l, a)?),
        };
        Some((vec![z.text.clone()], sel))
    }

    /// `zone:alias`: the alias's addresses as a named set (marks the alias used).
    fn alias_sel(&mut self, l: &Line, a: &Token) -> Option<AddrSel> {
        let Some((al, _)) = self.aliases.iter().find(|x| x.0.name == a.text) else {
            self.out.err(
                l,
                a,
                format!("undefined alias {}", a.text),
                "define it with HOST or NET before use (anywhere in the file)",
            );
            return None;
        };
        self.used_alias.insert(a.text.clone());
        Some(AddrSel {
            set: Some(al.name.clone()),
            nets: al.nets.clone(),
        })
    }

    /// POLICY: known zones (or all/fw), one POLICY per pair.
    fn policy(&mut self, l: &Line, src: &Token, dst: &Token, action: PolicyAction, log: bool) {
        let mut ok = true;
        for z in [src, dst] {
            if z.text != "all" && z.text != "fw" && !self.zone_known(&z.text) {
                let fix = format!("known zones: {}, fw, all", self.known_zones());
                self.out
                    .err(l, z, format!("undefined zone {}", z.text), fix);
                ok = false;
            }
        }
        if !ok {
            return;
        }
        let same_pair = |p: &&Policy| p.src == src.text && p.dst == dst.text;
        if let Some(prev) = self.policies.iter().find(same_pair) {
            let msg = format!(
                "POLICY {} {} already given at line {}",
                src.text, dst.text, prev.line
            );
            self.out.err(l, src, msg, "keep one POLICY per pair");
            return;
        }
        self.policies.push(Policy {
            src: src.text.clone(),
            dst: dst.text.clone(),
            action,
            log,
            line: l.loc.line,
            explicit: true,
        });
    }

    /// NOROUTE: the known zones of the line (undefined ones are reported and left out).
    fn noroute(&mut self, l: &Line, zs: &[Token]) {
        let mut v = Vec::new();
        for z in zs {
            if !self.zone_known(&z.text) {
                let fix = format!("known zones: {}", self.known_zones());
                self.out
                    .err(l, z, format!("undefined zone {}", z.text), fix);
            } else {
                v.push(z.text.clone());
            }
        }
        self.noroutes.push(Noroute {
            zones: v,
            line: l.loc.line,
        });
    }

    /// SYNC: the conntrackd link, on a DEV/VLAN interface.
    fn sync(&mut self, l: &Line, dev: &Token, master: IpAddr, backup: IpAddr) {
        if !self.ifaces.iter().any(|i| i.ifname == dev.text) {
            self.out.err(
                l,
                dev,
                format!("SYNC device {} is not a DEV/VLAN interface", dev.text),
                "use an interface defined by DEV or VLAN",
            );
        }
        self.sync = Some(Sync {
            ifname: dev.text.clone(),
            master,
            backup,
            line: l.loc.line,
        });
    }

    /// A file without POLICY gets `POLICY fw all ACCEPT` and `POLICY all all DROP LOG` (with
    /// a warning), so every pair has a policy.
    pub(super) fn add_default_policies(&mut self) {
        if !self.policies.is_empty() {
            return;
        }
        let line = self.netinit_line;
        self.out.diags.push(
            Diagnostic::warning(
                self.out.loc(line),
                "no POLICY line: using `POLICY fw all ACCEPT` and `POLICY all all DROP LOG`",
            )
            .fix("write the policies you mean explicitly, e.g. POLICY all all REJECT LOG"),
        );
        for (src, dst, action, log) in [
            ("fw", "all", PolicyAction::Accept, false),
            ("all", "all", PolicyAction::Drop, true),
        ] {
            self.policies.push(Policy {
                src: src.into(),
                dst: dst.into(),
                action,
                log,
                line,
                explicit: false,
            });
        }
    }

    /// NOROUTE wins over an explicit POLICY ... ACCEPT for its zone pairs: say so, once per
    /// POLICY line, since the writer of the ACCEPT probably meant it.
    pub(super) fn warn_noroute_overrides(&mut self) {
        let mut warned: BTreeSet<u32> = BTreeSet::new();
        for n in &self.noroutes {
            for a in &n.zones {
                for b in n.zones.iter().filter(|b| *b != a) {
                    let Some(p) = most_specific_policy(&self.policies, a, b) else {
                        continue;
                    };
                    if p.action == PolicyAction::Accept && p.explicit && warned.insert(p.line) {
                        self.out.diags.push(
                            Diagnostic::warning(self.out.loc(p.line), format!("POLICY {} {} ACCEPT is overridden by NOROUTE (line {}) for {a} -> {b}: that traffic is dropped", p.src, p.dst, n.line))
                                .fix("add explicit ALLOW lines for the traffic you want between these zones, or narrow the POLICY"),
                        );
                    }
                }
            }
        }
    }
}

/// Source and destination share an IP version (a side without addresses has both).
fn families_meet(s: &Option<AddrSel>, d: &Option<AddrSel>) -> bool {
    let fams = |s: &Option<AddrSel>| -> (bool, bool) {
        match s {
            None => (true, true),
            Some(a) => (
                a.nets.iter().any(|n| n.is_v4()),
                a.nets.iter().any(|n| !n.is_v4()),
            ),
        }
    };
    let (s4, s6) = fams(s);
    let (d4, d6) = fams(d);
    (s4 && d4) || (s6 && d6)
}

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};
    use crate::model::L4;
    use crate::parse::{PolicyAction, RuleAction};

    #[test]
    fn all_expands_to_every_pair_that_crosses_the_router() {
        let s = analyse_text(&format!("{BASE}DENY all VLAN10 ping LOG\n"), "MASTER")
            .0
            .unwrap();
        let pairs: Vec<(&str, &str)> = s
            .rules
            .iter()
            .map(|r| (r.src_zone.as_str(), r.dst_zone.as_str()))
            .collect();
        // VLAN10 -> VLAN10 is skipped: a zone of one interface
        assert_eq!(
            pairs,
            [("INTER", "VLAN10"), ("VLAN20", "VLAN10"), ("fw", "VLAN10")]
        );
        let r = &s.rules[0];
        assert_eq!((r.action, r.log, r.line), (RuleAction::Deny, true, 6));
        assert_eq!(r.l4, [L4::Echo { v6: false }, L4::Echo { v6: true }]);
    }

    #[test]
    fn rule_errors() {
        let m = messages(&format!(
            "{BASE}ALLOW NOPE VLAN10:nobody telnet\nALLOW fw fw ssh\nALLOW VLAN10 VLAN10 ssh\nHOST h6 2001:db8::5\nALLOW VLAN10:h6 VLAN20:172.16.20.0/24 ssh\n"
        ));
        assert_eq!(
            m,
            [
                "undefined zone NOPE",
                "undefined alias nobody",
                "unknown service telnet",
                "fw to fw is the router talking to itself (always allowed on lo)",
                "zone VLAN10 has a single interface: traffic inside it never crosses the router",
                "address family mismatch: source and destination share no IP version",
            ]
        );
    }

    #[test]
    fn policies_noroute_and_sync() {
        let src = "NETINIT eth1 eth0
DEV INTER eth1 10.1.1.0 10.1.1.254 /24 10.1.1.2
VLAN 10 eth0 172.16.10.0 172.16.10.2 /24
VLAN 20 eth0 172.16.20.0 172.16.20.2 /24
POLICY VLAN10 all ACCEPT
POLICY VLAN10 all DROP
POLICY NOPE all DROP
NOROUTE VLAN10 VLAN20 NOPE
SYNC eth9 192.168.255.1-192.168.255.2
";
        assert_eq!(
            messages(src),
            [
                "POLICY VLAN10 all already given at line 5",
                "undefined zone NOPE",
                "undefined zone NOPE",
                "SYNC device eth9 is not a DEV/VLAN interface",
                "POLICY VLAN10 all ACCEPT is overridden by NOROUTE (line 8) for VLAN10 -> VLAN20: that traffic is dropped",
            ]
        );
    }

    #[test]
    fn default_policies_when_none_is_given() {
        let src = "NETINIT eth1\nDEV INTER eth1 10.1.1.0 - /24 10.1.1.2\n";
        let (s, d) = analyse_text(src, "MASTER");
        assert_eq!(
            d[0].message,
            "no POLICY line: using `POLICY fw all ACCEPT` and `POLICY all all DROP LOG`"
        );
        let p: Vec<(&str, &str, PolicyAction, bool, bool)> = s
            .as_ref()
            .unwrap()
            .policies
            .iter()
            .map(|p| (p.src.as_str(), p.dst.as_str(), p.action, p.log, p.explicit))
            .collect();
        assert_eq!(
            p,
            [
                ("fw", "all", PolicyAction::Accept, false, false),
                ("all", "all", PolicyAction::Drop, true, false)
            ]
        );
    }
}
