//! Offline simulation: walk the nft IR (the same one printed to ruleset.nft) with one packet of
//! a new connection and say which rule decides it, with its source line. Hooks are visited in
//! kernel order: prerouting raw (antispoof) -> prerouting dstnat -> routing -> input|forward ->
//! postrouting srcnat; packets from the router itself take output -> postrouting.

use crate::model::{Site, L4};
use crate::nft::{rule_txt, Action, Family, Match, Ruleset};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP / ICMPv6 echo-request (ping)
    Icmp,
    Other(u8),
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" | "ping" | "icmpv6" => Proto::Icmp,
            "vrrp" => Proto::Other(112),
            n => Proto::Other(n.parse().ok()?),
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    pub dport: Option<u16>,
    /// Input interface; None = guessed from the source address (or output if it is the router's).
    pub iif: Option<String>,
}

impl Packet {
    /// Used by the fuzz body: any site, one packet.
    pub fn example() -> Packet {
        Packet {
            src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 4)),
            proto: Proto::Tcp,
            dport: Some(443),
            iif: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub chain: String,
    /// 0-based position of the rule in its chain (as in `nft -j list ruleset`).
    pub index: usize,
    pub line: u32,
    pub rule: String,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub packet: Packet,
    /// "input", "forward" or "output"
    pub path: String,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// ACCEPT, DROP or REJECT
    pub verdict: String,
    /// The rule that decided (None: a base chain's default policy decided).
    pub decision: Option<Step>,
    pub dnat: Option<Step>,
    pub snat: Option<Step>,
    pub dst_after_nat: IpAddr,
    /// Every rule that matched, in order (dispatch, log, verdict, NAT).
    pub trace: Vec<Step>,
    pub notes: Vec<String>,
}

/// The packet as it walks the hooks (NAT changes `dst`/`dport`, routing sets `oif`).
struct InFlight {
    fam: Family,
    src: IpAddr,
    dst: IpAddr,
    proto: Proto,
    dport: Option<u16>,
    iif: Option<String>,
    oif: Option<String>,
    dnat: bool,
}

fn fam(a: IpAddr) -> Family {
    if a.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

fn matches(m: &Match, p: &InFlight, notes: &mut Vec<String>) -> bool {
    if let Some(i) = &m.iif {
        if p.iif.as_deref() != Some(i.as_str()) {
            return false;
        }
    }
    if let Some(o) = &m.oif {
        if p.oif.as_deref() != Some(o.as_str()) {
            return false;
        }
    }
    if let Some(f) = m.nfproto {
        if f != p.fam {
            return false;
        }
    }
    for (a, ip) in [(&m.saddr, p.src), (&m.daddr, p.dst)] {
        if let Some(a) = a {
            if a.fam != p.fam {
                return false;
            }
            let inside = a.nets.iter().any(|n| n.contains(ip));
            if inside == a.neg {
                return false;
            }
        }
    }
    if let Some(l) = &m.l4 {
        let ok = match (l, p.proto) {
            (L4::Ports { tcp, ports, .. }, Proto::Tcp) if *tcp => {
                ports.is_empty()
                    || p.dport
                        .is_some_and(|d| ports.iter().any(|r| r.0 <= d && d <= r.1))
            }
            (L4::Ports { udp, ports, .. }, Proto::Udp) if *udp => {
                ports.is_empty()
                    || p.dport
                        .is_some_and(|d| ports.iter().any(|r| r.0 <= d && d <= r.1))
            }
            (L4::Proto(n), Proto::Other(x)) => *n == x,
            (L4::Proto(6), Proto::Tcp) | (L4::Proto(17), Proto::Udp) => true,
            (L4::Proto(1), Proto::Icmp) => p.fam == Family::V4,
            (L4::Proto(58), Proto::Icmp) => p.fam == Family::V6,
            (L4::Echo { v6 }, Proto::Icmp) => *v6 == (p.fam == Family::V6),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if m.ct_established || m.ct_invalid || m.nd {
        return false;
    }
    if m.ct_dnat && !p.dnat {
        return false;
    }
    if let Some(r) = &m.limit {
        let n = format!("assumed under the rate limit {}/{}", r.n, r.unit);
        if !notes.contains(&n) {
            notes.push(n);
        }
    }
    true
}

enum Outcome {
    Accept(Option<Step>),
    Drop(Option<Step>),
    Reject(Option<Step>),
}

/// Run one base chain (following goto/vmap). Returns the verdict for this hook.
fn run(
    rs: &Ruleset,
    site: &Site,
    base: &str,
    p: &mut InFlight,
    trace: &mut Vec<Step>,
    notes: &mut Vec<String>,
    nat: &mut Option<Step>,
) -> Outcome {
    let Some(c0) = rs.chain(base) else {
        return Outcome::Accept(None);
    };
    let policy = c0.base.as_ref().map(|b| b.policy).unwrap_or("accept");
    let mut chain = c0;
    let mut i = 0;
    let mut hops = 0;
    loop {
        if i >= chain.rules.len() {
            return if policy == "drop" {
                Outcome::Drop(None)
            } else {
                Outcome::Accept(None)
            };
        }
        let r = &chain.rules[i];
        let step = || Step {
            chain: chain.name.clone(),
            index: i,
            line: r.line,
            rule: rule_txt(rs, r, &site.log.level, site.log.nflog),
            why: r.why.clone(),
        };
        if !matches(&r.matches, p, notes) {
            i += 1;
            continue;
        }
        let target = match &r.action {
            Action::VmapIif(v) => v
                .iter()
                .find(|x| Some(&x.0) == p.iif.as_ref())
                .map(|x| x.1.clone()),
            Action::VmapOif(v) => v
                .iter()
                .find(|x| Some(&x.0) == p.oif.as_ref())
                .map(|x| x.1.clone()),
            Action::VmapIifOif(v) => v
                .iter()
                .find(|x| Some(&x.0) == p.iif.as_ref() && Some(&x.1) == p.oif.as_ref())
                .map(|x| x.2.clone()),
            Action::Goto(c) => Some(c.clone()),
            _ => None,
        };
        let is_vmap = matches!(
            r.action,
            Action::VmapIif(_) | Action::VmapOif(_) | Action::VmapIifOif(_)
        );
        if is_vmap && target.is_none() {
            i += 1; // no element: the rule's counter still counts, the packet goes on
            continue;
        }
        let s = step();
        trace.push(s.clone());
        if let Some(t) = target {
            hops += 1;
            match rs.chain(&t) {
                Some(c) if hops < 64 => {
                    chain = c;
                    i = 0;
                    continue;
                }
                _ => return Outcome::Drop(Some(s)),
            }
        }
        match &r.action {
            Action::Accept => return Outcome::Accept(Some(s)),
            Action::Drop => return Outcome::Drop(Some(s)),
            Action::RejectTcp | Action::RejectIcmpx => return Outcome::Reject(Some(s)),
            Action::Log(_) => {}
            Action::Dnat(a, port) => {
                p.dst = IpAddr::V4(*a);
                if port.is_some() {
                    p.dport = *port;
                }
                p.dnat = true;
                *nat = Some(s);
                return Outcome::Accept(None);
            }
            Action::Snat(_) | Action::Masquerade => {
                *nat = Some(s);
                return Outcome::Accept(None);
            }
            _ => {}
        }
        i += 1;
    }
}

/// Addresses the router holds for its role (VIPs only on the MASTER, its initial state).
fn local_addrs(site: &Site) -> Vec<IpAddr> {
    let master = site.is_master();
    let mut v = Vec::new();
    for i in &site.ifaces {
        v.extend(i.addr4(master).map(IpAddr::V4));
        if master {
            v.extend(i.vip4.map(IpAddr::V4));
        }
        for a in &i.v6 {
            v.push(if master { a.master } else { a.backup });
            if master {
                v.extend(a.vip);
            }
        }
    }
    v
}

fn route(site: &Site, dst: IpAddr) -> Option<String> {
    for i in &site.ifaces {
        if i.nets().iter().any(|n| n.contains(dst)) {
            return Some(i.ifname.clone());
        }
    }
    site.ifaces
        .iter()
        .find(|i| {
            if dst.is_ipv4() {
                i.gw4.is_some()
            } else {
                i.v6.iter().any(|a| a.gw.is_some())
            }
        })
        .map(|i| i.ifname.clone())
}

/// Which rule decides `pk`, walking the hooks in kernel order. Err: the packet does not fit
/// the site (mixed IP versions, unknown input interface, no interface to come in on).
pub fn explain(site: &Site, rs: &Ruleset, pk: &Packet) -> Result<Explanation, String> {
    check_packet(site, pk)?;
    let locals = local_addrs(site);
    let from_router = pk.iif.is_none() && locals.contains(&pk.src);
    let iif =
        if from_router {
            None
        } else {
            match &pk.iif {
                Some(i) => Some(i.clone()),
                None => Some(route(site, pk.src).ok_or(
                    "cannot guess the input interface from the source address; pass --in IF",
                )?),
            }
        };
    let mut w = Walk {
        site,
        rs,
        pk,
        p: InFlight {
            fam: fam(pk.src),
            src: pk.src,
            dst: pk.dst,
            proto: pk.proto,
            dport: pk.dport,
            iif,
            oif: None,
            dnat: false,
        },
        trace: Vec::new(),
        notes: vec!["simulated as the first packet of a new connection (ct state new)".to_string()],
        dnat: None,
        snat: None,
    };
    let path = if from_router {
        w.p.oif = route(site, w.p.dst);
        "output"
    } else {
        match w.prerouting(&locals) {
            Ok(path) => path,
            Err((verdict, decision, path)) => return Ok(w.finish(verdict, decision, path)),
        }
    };
    let (verdict, decision) = match w.hook(path, NatSlot::Discard) {
        Outcome::Accept(s) => ("ACCEPT", s),
        Outcome::Drop(s) => ("DROP", s),
        Outcome::Reject(s) => ("REJECT", s),
    };
    if verdict == "ACCEPT" && path != "input" {
        w.hook("nat_postrouting", NatSlot::Snat);
    }
    Ok(w.finish(verdict, decision, path))
}

/// The packet must fit the site: one IP version, a known input interface.
fn check_packet(site: &Site, pk: &Packet) -> Result<(), String> {
    if pk.src.is_ipv4() != pk.dst.is_ipv4() {
        return Err("source and destination must be the same IP version".into());
    }
    if let Some(i) = &pk.iif {
        if i != "lo" && !site.ifaces.iter().any(|x| &x.ifname == i) {
            let known: Vec<&str> = site.ifaces.iter().map(|x| x.ifname.as_str()).collect();
            return Err(format!(
                "unknown input interface {i}; the site has: {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Where a hook's NAT step is kept.
enum NatSlot {
    Discard,
    Dnat,
    Snat,
}

/// One packet's walk through the hooks: where it is and what it met so far.
struct Walk<'a> {
    site: &'a Site,
    rs: &'a Ruleset,
    pk: &'a Packet,
    p: InFlight,
    trace: Vec<Step>,
    notes: Vec<String>,
    dnat: Option<Step>,
    snat: Option<Step>,
}

impl Walk<'_> {
    /// Run one base chain.
    fn hook(&mut self, base: &str, slot: NatSlot) -> Outcome {
        let mut discard = None;
        let nat = match slot {
            NatSlot::Discard => &mut discard,
            NatSlot::Dnat => &mut self.dnat,
            NatSlot::Snat => &mut self.snat,
        };
        run(
            self.rs,
            self.site,
            base,
            &mut self.p,
            &mut self.trace,
            &mut self.notes,
            nat,
        )
    }

    /// A packet from outside: antispoof, DNAT, then routing decides input or forward.
    /// Err: the packet ends here (verdict, deciding rule, path).
    fn prerouting(
        &mut self,
        locals: &[IpAddr],
    ) -> Result<&'static str, (&'static str, Option<Step>, &'static str)> {
        match self.hook("antispoof", NatSlot::Discard) {
            Outcome::Accept(_) => {}
            Outcome::Drop(s) => return Err(("DROP", s, "prerouting")),
            Outcome::Reject(s) => return Err(("REJECT", s, "prerouting")),
        }
        self.hook("nat_prerouting", NatSlot::Dnat);
        if locals.contains(&self.p.dst) {
            return Ok("input");
        }
        self.p.oif = route(self.site, self.p.dst);
        if self.p.oif.is_none() {
            self.notes
                .push("no route to the destination: the kernel would answer unreachable".into());
            return Err(("DROP", None, "routing"));
        }
        Ok("forward")
    }

    fn finish(self, verdict: &str, decision: Option<Step>, path: &str) -> Explanation {
        Explanation {
            packet: self.pk.clone(),
            path: path.into(),
            iif: self.p.iif.clone(),
            oif: self.p.oif.clone(),
            verdict: verdict.into(),
            decision,
            dnat: self.dnat,
            snat: self.snat,
            dst_after_nat: self.p.dst,
            trace: self.trace,
            notes: self.notes,
        }
    }
}

/// Human-readable explanation.
pub fn render(e: &Explanation) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let pk = &e.packet;
    let proto = match pk.proto {
        Proto::Tcp => "tcp".to_string(),
        Proto::Udp => "udp".to_string(),
        Proto::Icmp => "icmp echo-request".to_string(),
        Proto::Other(n) => format!("proto {n}"),
    };
    let port = pk.dport.map(|d| format!(" port {d}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "packet: {} -> {} {proto}{port}, in {}, out {} ({})",
        pk.src,
        pk.dst,
        e.iif.as_deref().unwrap_or("(router itself)"),
        e.oif.as_deref().unwrap_or("-"),
        e.path
    );
    if let Some(d) = &e.dnat {
        let _ = writeln!(s, "DNAT:   line {}: {}  [{}]", d.line, d.why, d.rule);
    }
    match &e.decision {
        Some(d) => {
            let _ = writeln!(
                s,
                "{}: line {} ({}, chain {} rule {}): {}",
                e.verdict, d.line, d.why, d.chain, d.index, d.rule
            );
        }
        None => {
            let _ = writeln!(s, "{}: default policy of the base chain", e.verdict);
        }
    }
    if let Some(d) = &e.snat {
        let _ = writeln!(s, "SNAT:   line {}: {}  [{}]", d.line, d.why, d.rule);
    }
    let _ = writeln!(s, "trace:");
    for t in &e.trace {
        let _ = writeln!(s, "  {}#{} line {}: {}", t.chain, t.index, t.line, t.why);
    }
    for n in &e.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::MapLoader;
    use crate::{compile_source, Options};
    use std::path::Path;

    const SITE: &str = "NETINIT eth1 eth0
DEV net eth1 10.1.1.0 10.1.1.1 /24 10.1.1.2-10.1.1.3-10.1.1.4-1*
VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-2* /24 - lan
HOST web 172.16.10.9
ALLOW net lan:web https
NAT DNAT net:VIP https TO web
POLICY lan net ACCEPT
POLICY all all DROP
";

    fn ex(role: &str, from: &str, to: &str, port: u16) -> Explanation {
        let o = Options {
            role: role.into(),
            ..Default::default()
        };
        let c =
            compile_source(&MapLoader(Default::default()), Path::new("s.lw"), SITE, &o).unwrap();
        let p = Packet {
            src: from.parse().unwrap(),
            dst: to.parse().unwrap(),
            proto: Proto::Tcp,
            dport: Some(port),
            iif: None,
        };
        explain(&c.site, &c.ruleset, &p).unwrap()
    }

    #[test]
    fn dnat_then_allow() {
        let e = ex("MASTER", "10.1.1.1", "10.1.1.4", 443);
        assert_eq!(e.verdict, "ACCEPT");
        assert_eq!(e.dnat.as_ref().unwrap().line, 6);
        assert_eq!(e.decision.as_ref().unwrap().line, 5);
        assert_eq!(e.dst_after_nat.to_string(), "172.16.10.9");
    }

    #[test]
    fn vip_is_not_local_on_backup() {
        // the BACKUP does not hold 10.1.1.4 (initial state): DNAT still rewrites it in prerouting
        let e = ex("BACKUP", "10.1.1.1", "10.1.1.4", 443);
        assert_eq!(e.verdict, "ACCEPT");
        // to the router's own address with no rule: policy all all DROP (line 8)
        let e = ex("BACKUP", "10.1.1.1", "10.1.1.3", 22);
        assert_eq!(
            (
                e.verdict.as_str(),
                e.path.as_str(),
                e.decision.unwrap().line
            ),
            ("DROP", "input", 8)
        );
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let o = Options {
            role: "MASTER".into(),
            ..Default::default()
        };
        let c =
            compile_source(&MapLoader(Default::default()), Path::new("s.lw"), SITE, &o).unwrap();
        let p = Packet {
            iif: Some("eth9".into()),
            ..Packet::example()
        };
        assert!(explain(&c.site, &c.ruleset, &p)
            .unwrap_err()
            .contains("unknown input interface eth9"));
    }

    #[test]
    fn policy_precedence() {
        let e = ex("MASTER", "172.16.10.9", "8.8.8.8", 53);
        assert_eq!(
            (e.verdict.as_str(), e.decision.unwrap().line),
            ("ACCEPT", 7)
        );
        let e = ex("MASTER", "10.1.1.1", "172.16.10.9", 22);
        assert_eq!((e.verdict.as_str(), e.decision.unwrap().line), ("DROP", 8));
    }
}
