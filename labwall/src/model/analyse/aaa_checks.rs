//! The dns role's cross-reference checks (after [`Analysis::collect_services`]) and the
//! routers' DHCP relay rules: a VLAN with DHCP but no server leg is relayed by both routers.

use super::aaa::{in_range, vlan_of};
use super::Analysis;
use crate::dnsmasq::fmt_mac;
use crate::line::{Line, Token};
use crate::model::{AddrSel, Rule, L4};
use crate::net::Net;
use crate::parse::RuleAction;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// The token of `l` whose text is the address `a` (else the line's first word).
fn tok_of(l: &Line, a: Ipv4Addr) -> Token {
    let t = l.toks.iter().find(|t| t.text.parse::<Ipv4Addr>() == Ok(a));
    t.unwrap_or(&l.toks[0]).clone()
}

impl Analysis<'_> {
    /// A VLAN with DHCP needs a server: a server leg in it, or a relay on the routers (which
    /// needs the routers' own addresses there) toward a server.
    pub(super) fn check_dhcp_reachable(&mut self) {
        let svc = &self.aaa.svc;
        for (d, l) in svc.dhcp.iter().zip(&self.aaa.dhcp) {
            let t = &l.toks[1];
            if svc.servers.is_empty() {
                let msg = format!("DHCP on {} but no DNS/DHCP server in the site", t.text);
                let fix = "name the dns appliances: HOST dns1 <ip> then SERVERS dns1";
                self.out.err(l, t, msg, fix);
            } else if !svc.servers.iter().any(|s| s.vlan == d.vlan) {
                let i = self.ifaces.iter().find(|i| i.vid == Some(d.vlan));
                if i.is_some_and(|i| i.master4.is_none() || i.backup4.is_none()) {
                    let msg = format!(
                        "DHCP on {}: no server leg in it and no router address to relay from",
                        t.text
                    );
                    self.out.err(
                        l,
                        t,
                        msg,
                        "give the VLAN master-backup addresses, or a server a leg in it",
                    );
                }
            }
            let size = u64::from(u32::from(d.range.1) - u32::from(d.range.0)) + 1;
            if size < svc.servers.len() as u64 {
                let msg = format!(
                    "{size} dynamic address(es) for {} servers",
                    svc.servers.len()
                );
                let fix = "the range is split between the SERVERS: give each at least one address";
                self.out.err(l, &l.toks[2], msg, fix);
            }
        }
    }

    /// Static and VPN addresses: inside a VLAN, outside the dynamic ranges, each given once.
    pub(super) fn check_static_addresses(&mut self) {
        let mut seen: BTreeMap<Ipv4Addr, (String, String)> = BTreeMap::new();
        for a in self.router_v4() {
            seen.insert(a, ("a router address".into(), String::new()));
        }
        self.check_hosts(&mut seen);
        let svc = &self.aaa.svc;
        let vpn: Vec<(String, Ipv4Addr, Line)> = (svc.vpn_users.iter().zip(&self.aaa.vpn))
            .map(|(v, l)| (v.cn.clone(), v.addr, l.clone()))
            .collect();
        for (cn, a, l) in vpn {
            let t = l.toks[3].clone();
            self.check_not_dynamic(&l, &t, a, &format!("VPN user {cn}"));
            self.check_once(&mut seen, &l, &t, a, &format!("VPN user {cn}"));
        }
        let svc = &self.aaa.svc;
        let servers: Vec<(String, Ipv4Addr, Line)> = (svc.servers.iter().zip(&self.aaa.servers))
            .map(|(s, l)| (s.name.clone(), s.addr, l.clone()))
            .collect();
        for (name, a, l) in servers {
            let t = l.toks.iter().find(|t| t.text == name);
            let t = t.unwrap_or(&l.toks[0]).clone();
            self.check_not_dynamic(&l, &t, a, &format!("server {name}"));
        }
    }

    /// Static hosts: inside a VLAN (the one of their MAB line), outside the dynamic ranges.
    fn check_hosts(&mut self, seen: &mut BTreeMap<Ipv4Addr, (String, String)>) {
        let svc = &self.aaa.svc;
        let hosts: Vec<(String, Ipv4Addr, [u8; 6], Line)> = (svc.hosts.iter().zip(&self.aaa.hosts))
            .map(|(h, l)| (h.name.clone(), h.v4, h.mac, l.clone()))
            .collect();
        for (name, a, mac, l) in hosts {
            let t = tok_of(&l, a);
            if vlan_of(&self.ifaces, a).is_none() {
                let msg = format!("static host {name} ({a}) is outside every VLAN");
                let fix = "give it an address inside its VLAN's network";
                self.out.err(&l, &t, msg, fix);
                continue;
            }
            self.check_not_dynamic(&l, &t, a, &format!("static host {name}"));
            self.check_mab_vlan(&l, &t, a, mac);
            self.check_once(seen, &l, &t, a, &format!("static host {name}"));
        }
    }

    pub(super) fn router_v4(&self) -> Vec<Ipv4Addr> {
        let all = self
            .ifaces
            .iter()
            .flat_map(|i| [i.master4, i.backup4, i.vip4]);
        all.flatten().collect()
    }

    pub(super) fn check_not_dynamic(&mut self, l: &Line, t: &Token, a: Ipv4Addr, who: &str) {
        let svc = &self.aaa.svc;
        if let Some((d, dl)) = svc
            .dhcp
            .iter()
            .zip(&self.aaa.dhcp)
            .find(|(d, _)| in_range(d.range, IpAddr::V4(a)))
        {
            let msg = format!(
                "{who}: {a} is inside the dynamic range {}-{} ({}:{})",
                d.range.0, d.range.1, dl.loc.file, dl.loc.line
            );
            self.out.err(
                l,
                t,
                msg,
                "take an address outside the DHCP range, or shrink the range",
            );
        }
    }

    /// A static host whose MAC has a MAB entry must be in that VLAN.
    fn check_mab_vlan(&mut self, l: &Line, t: &Token, a: Ipv4Addr, mac: [u8; 6]) {
        let svc = &self.aaa.svc;
        let Some((m, ml)) = svc.mab.iter().zip(&self.aaa.mab).find(|m| m.0.mac == mac) else {
            return;
        };
        let i = self.ifaces.iter().find(|i| i.vid == Some(m.vlan));
        if let Some(i) = i.filter(|i| !i.net4.contains(IpAddr::V4(a))) {
            let msg = format!(
                "{a} is outside {} ({}), where the MAB at {}:{} puts this MAC",
                i.name, i.net4, ml.loc.file, ml.loc.line
            );
            let fix = format!(
                "give the host an address in {}, or fix the MAB line",
                i.net4
            );
            self.out.err(l, t, msg, fix);
        }
    }

    pub(super) fn check_once(
        &mut self,
        seen: &mut BTreeMap<Ipv4Addr, (String, String)>,
        l: &Line,
        t: &Token,
        a: Ipv4Addr,
        who: &str,
    ) {
        match seen.get(&a) {
            Some((other, at)) if at.is_empty() => self.out.err(
                l,
                t,
                format!("{who}: {a} is {other}"),
                "choose a free address",
            ),
            Some((other, at)) => {
                let msg = format!("{who}: {a} is already the address of {other} ({at})");
                self.out
                    .err(l, t, msg, "give each host and VPN user its own address");
            }
            None => {
                seen.insert(a, (who.to_string(), l.loc.to_string()));
            }
        }
    }

    /// The same MAC on two static hosts, or in two MAB lines.
    pub(super) fn check_duplicate_macs(&mut self) {
        let svc = &self.aaa.svc;
        let hosts = svc
            .hosts
            .iter()
            .map(|h| (h.mac, h.line))
            .zip(self.aaa.hosts.clone());
        let mabs = svc
            .mab
            .iter()
            .map(|m| (m.mac, m.line))
            .zip(self.aaa.mab.clone());
        for (what, list) in [
            ("static host", hosts.collect::<Vec<_>>()),
            ("MAB", mabs.collect()),
        ] {
            let mut seen: BTreeMap<[u8; 6], u32> = BTreeMap::new();
            for ((mac, line), l) in list {
                if let Some(first) = seen.insert(mac, line) {
                    let t = l
                        .toks
                        .iter()
                        .find(|t| crate::parse::mac(&t.text) == Some(mac))
                        .unwrap_or(&l.toks[0])
                        .clone();
                    let msg = format!("MAC {} is already on {what} line {first}", fmt_mac(&mac));
                    self.out.err(
                        &l,
                        &t,
                        msg,
                        "each MAC once: remove or correct one of the lines",
                    );
                    seen.insert(mac, first);
                }
            }
        }
    }

    /// Pass 3's end: both routers relay DHCP for every VLAN with DHCP and no server leg. The
    /// rules let exactly that through: clients' udp/67 to the routers, routers <-> servers
    /// udp/67, and the clients' unicast renewals to the servers.
    pub(super) fn add_relay_rules(&mut self) {
        let svc = &self.aaa.svc;
        let zone = |vid: u16| {
            let i = self.ifaces.iter().find(|i| i.vid == Some(vid));
            i.map(|i| i.zone.clone())
        };
        let mut by_zone: BTreeMap<String, Vec<Net>> = BTreeMap::new();
        for s in &svc.servers {
            let z = by_zone.entry(zone(s.vlan).unwrap_or_default()).or_default();
            z.push(Net::host(IpAddr::V4(s.addr)));
        }
        let mut rules: Vec<Rule> = Vec::new();
        for d in &svc.dhcp {
            if svc.servers.iter().any(|s| s.vlan == d.vlan) {
                continue;
            }
            if let Some(zc) = zone(d.vlan) {
                rules.extend(relay_rules(d.line, &zc, &by_zone));
            }
        }
        for r in rules {
            let dup = |o: &Rule| {
                (&o.src_zone, &o.dst_zone, &o.src, &o.dst, &o.l4)
                    == (&r.src_zone, &r.dst_zone, &r.src, &r.dst, &r.l4)
            };
            if !self.rules.iter().any(dup) {
                self.rules.push(r);
            }
        }
    }
}

/// The relay of one client zone `zc` toward the servers (by zone).
fn relay_rules(line: u32, zc: &str, servers: &BTreeMap<String, Vec<Net>>) -> Vec<Rule> {
    let any4 = Net::parse("0.0.0.0/0").unwrap();
    let any4 = Some(AddrSel {
        set: None,
        nets: vec![any4],
    });
    let mut v = vec![relay_rule(line, (zc, any4), ("fw", None))];
    for (zs, nets) in servers {
        let sel = Some(AddrSel {
            set: None,
            nets: nets.clone(),
        });
        v.push(relay_rule(line, (zs, sel.clone()), ("fw", None)));
        v.push(relay_rule(line, ("fw", None), (zs, sel.clone())));
        if zs != zc {
            v.push(relay_rule(line, (zc, None), (zs, sel)));
        }
    }
    v
}

/// A generated ALLOW of udp/67 for the relay, attributed to the DHCP line.
fn relay_rule(line: u32, src: (&str, Option<AddrSel>), dst: (&str, Option<AddrSel>)) -> Rule {
    Rule {
        line,
        action: RuleAction::Allow,
        src_zone: src.0.to_string(),
        dst_zone: dst.0.to_string(),
        src: src.1,
        dst: dst.1,
        l4: vec![L4::Ports {
            tcp: false,
            udp: true,
            ports: vec![(67, 67)],
        }],
        log: false,
        limit: None,
        dnat_only: false,
    }
}
