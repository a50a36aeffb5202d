//! The IR as `nft -f` text.

use super::{Action, AddrMatch, ChainRule, Family, Match, Ruleset, TABLE};
use crate::model::{Site, L4};
use crate::net::Net;
use std::fmt::Write;

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

fn addr_txt(dir: &str, a: &AddrMatch) -> String {
    let k = if a.fam == Family::V4 { "ip" } else { "ip6" };
    let neg = if a.neg { "!= " } else { "" };
    match &a.set {
        Some(s) => format!("{k} {dir} {neg}@{s}"),
        None => format!("{k} {dir} {neg}{}", nets_txt(&a.nets)),
    }
}

pub fn match_txt(m: &Match) -> String {
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
            if f == Family::V4 { "ipv4" } else { "ipv6" }
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

fn act_txt(a: &Action, level: &str, nflog: Option<u16>) -> String {
    match a {
        Action::Accept => "accept".into(),
        Action::Drop => "drop".into(),
        Action::RejectTcp => "reject with tcp reset".into(),
        Action::RejectIcmpx => "reject with icmpx admin-prohibited".into(),
        Action::Goto(c) => format!("goto {c}"),
        Action::VmapIif(v) => format!(
            "iifname vmap {{ {} }}",
            v.iter()
                .map(|(i, c)| format!("\"{i}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::VmapOif(v) => format!(
            "oifname vmap {{ {} }}",
            v.iter()
                .map(|(i, c)| format!("\"{i}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::VmapIifOif(v) => format!(
            "iifname . oifname vmap {{ {} }}",
            v.iter()
                .map(|(i, o, c)| format!("\"{i}\" . \"{o}\" : goto {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Log(p) => match nflog {
            Some(g) => format!("log prefix \"{p}\" group {g}"),
            None => format!("log prefix \"{p}\" level {level}"),
        },
        Action::Snat(a) => format!("snat ip to {a}"),
        Action::Masquerade => "masquerade".into(),
        Action::Dnat(a, None) => format!("dnat ip to {a}"),
        Action::Dnat(a, Some(p)) => format!("dnat ip to {a}:{p}"),
    }
}

/// One rule as nft text (without indentation).
pub fn rule_txt(rs: &Ruleset, r: &ChainRule, level: &str, nflog: Option<u16>) -> String {
    let m = match_txt(&r.matches);
    let mut s = String::new();
    if !m.is_empty() {
        s.push_str(&m);
        s.push(' ');
    }
    if rs.counters {
        s.push_str("counter ");
    }
    s.push_str(&act_txt(&r.action, level, nflog));
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
        let ty = if set.fam == Family::V4 {
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
