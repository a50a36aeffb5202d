//! `matrix = true`: the probes the site file itself asks for. For every zone pair and every
//! service the site names (in its rules and NAT lines), one probe from a lab node in the source
//! zone to one in the destination zone, the expected verdict from labwall's offline simulator
//! (`labwall::explain`, the same nft IR the routers load) with the site line that decided.
//! Whatever cannot be probed is listed with the reason and the fix, never skipped silently.
//!
//! Where a lab node is: a client with a static address, a DHCP client with its lease and an
//! instance appliance (DNS1 = the site's dns1) are in the zone of the site interface whose
//! network holds their address (leases and site addresses come in as `known`); routers are zone
//! `fw`. Probes start only on nodes with a guest agent; an appliance answers with its own
//! services (ping, a TCP connect, a DNS query), so nothing else is probed towards it.
//! The routers carry no exec agent, so no probe starts in `fw` and no listener opens there:
//! towards `fw` only ping is probed, at the VIP of the interface the source comes in on.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use labwall::explain::{explain, Packet, Proto as LwProto};
use labwall::model::{builtin_service, l4_of, AddrSel, Dnat, Iface, Site, L4};
use serde::Serialize;

use crate::model::{Address, Expect, Lab};
use crate::probe::{has_agent, ser_expect, Holder, Leases, ProbePlan, Proto};

/// At most this many probes (after dedupe); the rest are listed as unprobed. The seed site
/// with tests/labs/matrix.toml gives 46: 4 zones, 8 services, ping only towards `fw`.
pub const MAX_PROBES: usize = 256;

/// One generated probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixProbe {
    pub src_zone: String,
    pub dst_zone: String,
    /// The site's name for it (`https`), else `tcp/8443`.
    pub service: String,
    pub from_node: String,
    pub src: Ipv4Addr,
    /// For a DNAT flow, the VIP (what the client sends to).
    pub dst: Ipv4Addr,
    pub proto: Proto,
    pub dport: Option<u16>,
    /// The node to open a listener on first (tcp/udp to a lab node, or a DNAT's target).
    pub listener: Option<String>,
    #[serde(serialize_with = "ser_expect")]
    pub expect: Expect,
    /// The site.lw line that decided (None: a base chain's default policy).
    pub decided_by: Option<u32>,
    /// What that line is (`ALLOW users -> srv`), from the simulator.
    pub rule_text: String,
    /// The router interface the packet comes in on (`vlan20`), as given to the simulator.
    pub iif: String,
}

impl MatrixProbe {
    /// The probe as the runner takes any probe test.
    pub fn plan(&self) -> ProbePlan {
        let holder = match (&self.listener, self.dst_zone.as_str()) {
            (Some(l), _) => Some(Holder::Node(l.clone())),
            (None, "fw") => Some(Holder::Vip),
            (None, _) => None,
        };
        ProbePlan {
            from: self.from_node.clone(),
            target: crate::probe::Endpoint {
                addr: self.dst,
                holder,
            },
            proto: self.proto,
            listener: self.listener.clone(),
            expect: self.expect,
        }
    }
}

/// A zone pair and service the generator could not probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unprobed {
    pub src_zone: String,
    pub dst_zone: String,
    /// None: every service of the pair.
    pub service: Option<String>,
    /// The site line that asked for it (a rule or NAT line), if one did.
    pub line: Option<u32>,
    /// Why, and what would make it probeable.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub probes: Vec<MatrixProbe>,
    pub unprobed: Vec<Unprobed>,
}

/// A lab client placed in the site.
struct Placed<'a> {
    name: &'a str,
    addr: Ipv4Addr,
    iface: &'a Iface,
    /// Runs probes and listeners (a client); else an appliance answering with its own services.
    agent: bool,
}

/// A service as probed: its name and what is sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Svc {
    proto: Proto,
    name: String,
}

/// A flow the site asks about, before a lab node is found for each end.
struct Want<'a> {
    src_zone: String,
    dst_zone: String,
    svc: Svc,
    src_sel: Option<&'a AddrSel>,
    dst_sel: Option<&'a AddrSel>,
    dnat: Option<&'a Dnat>,
    line: Option<u32>,
}

/// Every probe the site asks for, against `site` and `rs` compiled as the MASTER
/// ([`crate::sitefile::SiteModel::master`]).
pub fn matrix(lab: &Lab, compiled: &labwall::Compiled, known: &Leases) -> Matrix {
    let site = &compiled.site;
    let placed = place(lab, site, known);
    let mut m = Matrix::default();
    let wants = wants(site, &mut m.unprobed);
    let mut seen = BTreeSet::new();
    for w in &wants {
        match probe_for(w, site, &compiled.ruleset, &placed) {
            Ok(p) => {
                if seen.insert((p.from_node.clone(), p.dst, p.proto)) {
                    m.probes.push(p);
                }
            }
            Err(reason) => push_unprobed(&mut m.unprobed, w, reason),
        }
    }
    m.probes.sort_by(|a, b| {
        (&a.src_zone, &a.dst_zone, a.proto, a.dst, &a.from_node).cmp(&(
            &b.src_zone,
            &b.dst_zone,
            b.proto,
            b.dst,
            &b.from_node,
        ))
    });
    bound(&mut m);
    m
}

fn push_unprobed(list: &mut Vec<Unprobed>, w: &Want, reason: String) {
    let u = Unprobed {
        src_zone: w.src_zone.clone(),
        dst_zone: w.dst_zone.clone(),
        service: Some(w.svc.name.clone()),
        line: w.line,
        reason,
    };
    let dup = list.iter().any(|x| {
        (&x.src_zone, &x.dst_zone, &x.service, &x.reason)
            == (&u.src_zone, &u.dst_zone, &u.service, &u.reason)
    });
    if !dup {
        list.push(u);
    }
}

/// Past [`MAX_PROBES`], the probes are listed as unprobed.
fn bound(m: &mut Matrix) {
    for p in m.probes.split_off(m.probes.len().min(MAX_PROBES)) {
        m.unprobed.push(Unprobed {
            src_zone: p.src_zone,
            dst_zone: p.dst_zone,
            service: Some(p.service),
            line: p.decided_by,
            reason: format!(
                "over the bound of {MAX_PROBES} probes ({} -> {})",
                p.src, p.dst
            ),
        });
    }
}

/// The lab's clients and instance appliances in the site's networks, in file order: static
/// addresses from the file, leases and the appliances' site addresses from `known`.
fn place<'a>(lab: &'a Lab, site: &'a Site, known: &Leases) -> Vec<Placed<'a>> {
    let clients = lab
        .nodes
        .iter()
        .filter(|n| n.enabled && n.profile.value != "router");
    clients
        .filter_map(|n| {
            let addr = match n.address.value {
                Address::Static { addr, .. } => addr,
                Address::Unset | Address::Dhcp => *known.get(&n.name.value)?,
            };
            let iface = site
                .ifaces
                .iter()
                .find(|i| i.net4.contains(IpAddr::V4(addr)))?;
            Some(Placed {
                name: &n.name.value,
                addr,
                iface,
                agent: has_agent(n),
            })
        })
        .collect()
}

/// The zones in site order, then `fw`.
fn zones(site: &Site) -> Vec<String> {
    let mut z: Vec<String> = Vec::new();
    for i in &site.ifaces {
        if !z.contains(&i.zone) {
            z.push(i.zone.clone());
        }
    }
    z.push("fw".into());
    z
}

/// The built-in service names, for naming a port back (the site's own SERVICE names are
/// not kept by labwall's model).
const NAMES: &[&str] = &[
    "ssh", "dns", "dhcp", "ntp", "ping", "http", "https", "openvpn", "radius", "smtp", "imaps",
    "ldap", "ldaps", "kerberos", "smb", "nfs", "ipp", "syslog", "snmp",
];

/// `https` for tcp/443, else the protocol's label.
fn service_name(p: Proto) -> String {
    let hit = NAMES.iter().find(|n| {
        let l4 = builtin_service(n).map(|i| l4_of(&i)).unwrap_or_default();
        l4.iter().any(|x| l4_has(x, p))
    });
    hit.map_or_else(|| p.label(), |n| n.to_string())
}

fn l4_has(l: &L4, p: Proto) -> bool {
    match (l, p) {
        (L4::Echo { v6: false }, Proto::Ping) => true,
        (L4::Ports { tcp, ports, .. }, Proto::Tcp(x)) => *tcp && ports.iter().any(|r| r.0 == x),
        (L4::Ports { udp, ports, .. }, Proto::Udp(x)) => *udp && ports.iter().any(|r| r.0 == x),
        _ => false,
    }
}

/// The probes of a rule's services (the first port of each range); Err: the protocols ping
/// and nc cannot send.
fn svcs_of(l4: &[L4]) -> (Vec<Svc>, Vec<u8>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for l in l4 {
        match l {
            L4::Ports { tcp, udp, ports } => {
                // One probe per service and protocol: its first port.
                if let Some((lo, _)) = ports.first() {
                    out.extend(tcp.then_some(Proto::Tcp(*lo)));
                    out.extend(udp.then_some(Proto::Udp(*lo)));
                }
            }
            L4::Echo { v6: false } => out.push(Proto::Ping),
            L4::Echo { v6: true } => {}
            L4::Proto(n) => bad.push(*n),
        }
    }
    let svcs = out
        .into_iter()
        .map(|proto| Svc {
            proto,
            name: service_name(proto),
        })
        .collect();
    (svcs, bad)
}

/// What the site asks about: each rule's flows (its selectors kept), each DNAT's flow to its
/// VIP, and every ordered zone pair for every service named anywhere (the policies' answer).
fn wants<'a>(site: &'a Site, unprobed: &mut Vec<Unprobed>) -> Vec<Want<'a>> {
    let mut out = Vec::new();
    let mut all: BTreeSet<Svc> = BTreeSet::new();
    for r in site.rules.iter().filter(|r| !r.dnat_only) {
        let (svcs, bad) = svcs_of(&r.l4);
        for n in bad {
            unprobed.push(Unprobed {
                src_zone: r.src_zone.clone(),
                dst_zone: r.dst_zone.clone(),
                service: Some(format!("protocol {n}")),
                line: Some(r.line),
                reason: format!("protocol {n}: ping and nc send only icmp, tcp and udp"),
            });
        }
        for svc in svcs {
            all.insert(svc.clone());
            out.push(Want {
                src_zone: r.src_zone.clone(),
                dst_zone: r.dst_zone.clone(),
                svc,
                src_sel: r.src.as_ref(),
                dst_sel: r.dst.as_ref(),
                dnat: None,
                line: Some(r.line),
            });
        }
    }
    for d in &site.dnats {
        dnat_wants(site, d, &mut all, &mut out);
    }
    pair_wants(site, &all, unprobed, &mut out);
    out
}

fn dnat_wants<'a>(site: &'a Site, d: &'a Dnat, all: &mut BTreeSet<Svc>, out: &mut Vec<Want<'a>>) {
    let src_zone = site.zone_of_iface(&d.ifname).unwrap_or("?").to_string();
    let to = IpAddr::V4(d.to);
    let dst_zone = site
        .ifaces
        .iter()
        .find(|i| i.net4.contains(to))
        .map_or("?".into(), |i| i.zone.clone());
    for svc in svcs_of(&d.l4).0 {
        all.insert(svc.clone());
        out.push(Want {
            src_zone: src_zone.clone(),
            dst_zone: dst_zone.clone(),
            svc,
            src_sel: None,
            dst_sel: None,
            dnat: Some(d),
            line: Some(d.line),
        });
    }
}

/// Towards `fw` only ping: one line for the other services of the pair.
fn fw_unprobed(src: &str, all: &BTreeSet<Svc>, unprobed: &mut Vec<Unprobed>) {
    let mut names: Vec<&str> = Vec::new();
    for v in all.iter().filter(|v| v.proto != Proto::Ping) {
        if !names.contains(&v.name.as_str()) {
            names.push(&v.name);
        }
    }
    if names.is_empty() {
        return;
    }
    unprobed.push(Unprobed {
        src_zone: src.into(),
        dst_zone: "fw".into(),
        service: Some(names.join(", ")),
        line: None,
        reason: format!("{FW_NO_LISTENER}; only ping is probed there"),
    });
}

/// Why nothing but ping goes to zone `fw`.
const FW_NO_LISTENER: &str =
    "the routers carry no exec agent, so no listener can be opened on them";

/// Every ordered pair of distinct zones, every service; from `fw` one unprobed line per pair.
fn pair_wants<'a>(
    site: &'a Site,
    all: &BTreeSet<Svc>,
    unprobed: &mut Vec<Unprobed>,
    out: &mut Vec<Want<'a>>,
) {
    let zones = zones(site);
    for s in &zones {
        for d in zones.iter().filter(|d| *d != s) {
            if s == "fw" {
                unprobed.push(Unprobed {
                    src_zone: s.clone(),
                    dst_zone: d.clone(),
                    service: None,
                    line: None,
                    reason: "the routers carry no exec agent: no probe can start in zone fw".into(),
                });
                continue;
            }
            if d == "fw" {
                fw_unprobed(s, all, unprobed);
            }
            let svcs = all.iter().filter(|v| d != "fw" || v.proto == Proto::Ping);
            for svc in svcs {
                out.push(Want {
                    src_zone: s.clone(),
                    dst_zone: d.clone(),
                    svc: svc.clone(),
                    src_sel: None,
                    dst_sel: None,
                    dnat: None,
                    line: None,
                });
            }
        }
    }
}

/// How the site names a selector: its alias (if any) and its IPv4 networks.
fn sel_name(site: &Site, sel: &AddrSel) -> (Option<String>, Vec<String>) {
    let nets = sel
        .nets
        .iter()
        .filter(|n| n.addr.is_ipv4())
        .map(|n| n.to_string())
        .collect();
    let alias = sel
        .set
        .clone()
        .filter(|s| site.aliases.iter().any(|a| &a.name == s));
    (alias, nets)
}

/// Why no node fits `sel` in `zone`, with the fix.
fn no_node(site: &Site, zone: &str, sel: &AddrSel) -> String {
    let (alias, nets) = sel_name(site, sel);
    let one_host = nets.len() == 1 && !nets[0].contains('/');
    match (alias, one_host) {
        (Some(a), true) => format!(
            "no lab node in zone {zone} holds {a}'s address {}: give a client that address",
            nets[0]
        ),
        (None, true) => format!(
            "no lab node in zone {zone} holds {}: give a client that address",
            nets[0]
        ),
        (a, false) => format!(
            "no lab node in zone {zone} has an address in {}{}: give a client one",
            a.map_or_else(String::new, |a| format!("{a} ")),
            nets.join(" ")
        ),
    }
}

/// The first placed node in `zone` inside `sel` (if any). Err: why none, with the fix.
fn pick<'a, 'p>(
    placed: &'p [Placed<'a>],
    site: &Site,
    zone: &str,
    sel: Option<&AddrSel>,
    source: bool,
) -> Result<&'p Placed<'a>, String> {
    let inside = |p: &&Placed| match sel {
        None => true,
        Some(s) => s.nets.iter().any(|n| n.contains(IpAddr::V4(p.addr))),
    };
    let mut here = placed
        .iter()
        .filter(|p| p.iface.zone == zone)
        .filter(inside);
    if let Some(p) = here.clone().find(|p| p.agent || !source) {
        return Ok(p);
    }
    if let Some(p) = here.next() {
        return Err(format!(
            "{} holds the address but is an appliance without a guest agent: probes start \
             only on clients",
            p.name
        ));
    }
    Err(match sel {
        Some(s) => no_node(site, zone, s),
        None => format!(
            "no lab node with a static address in zone {zone}: give a client one \
             (a DHCP client's address is known only at run time)"
        ),
    })
}

/// What an appliance's own services answer: ping (its kernel), a TCP connect, a DNS query.
fn appliance_probe(p: Proto) -> bool {
    matches!(p, Proto::Ping | Proto::Tcp(_) | Proto::Udp(53))
}

/// Where a probe goes: address, listener.
struct Dst {
    addr: Ipv4Addr,
    listener: Option<String>,
}

/// A DNAT flow goes to the VIP; its target must be a lab node, which listens (a client) or
/// answers with its own services (an appliance).
fn dnat_dst(site: &Site, d: &Dnat, placed: &[Placed], proto: Proto) -> Result<Dst, String> {
    let Some(p) = placed.iter().find(|p| p.addr == d.to) else {
        let host = site.aliases.iter().find(|a| {
            a.nets
                .iter()
                .any(|n| n.is_host() && n.addr == IpAddr::V4(d.to))
        });
        let who = host.map_or_else(
            || d.to.to_string(),
            |a| format!("{}'s address {}", a.name, d.to),
        );
        return Err(format!(
            "no lab node holds {who} (the DNAT target of {}): give a client that address",
            d.on
        ));
    };
    if !p.agent && !appliance_probe(proto) {
        return Err(format!(
            "{} (the DNAT target of {}) is an appliance without a guest agent: this service \
             there has no prober (ping, tcp and dns are probed)",
            p.name, d.on
        ));
    }
    Ok(Dst {
        addr: d.on,
        listener: p.agent.then(|| p.name.to_string()),
    })
}

/// Towards `fw`: ping the VIP of the source's interface (the routers cannot listen).
fn fw_dst(w: &Want, src: &Placed) -> Result<Dst, String> {
    if w.svc.proto != Proto::Ping {
        return Err(format!(
            "{} to zone fw: {FW_NO_LISTENER}; only ping is probed there",
            w.svc.name
        ));
    }
    let addr = src
        .iface
        .vip4
        .or(src.iface.master4)
        .ok_or_else(|| format!("the site gives {} no VIP or MASTER address", src.iface.name))?;
    Ok(Dst {
        addr,
        listener: None,
    })
}

fn dst_for(w: &Want, site: &Site, src: &Placed, placed: &[Placed]) -> Result<Dst, String> {
    if let Some(d) = w.dnat {
        return dnat_dst(site, d, placed, w.svc.proto);
    }
    if w.dst_zone == "fw" {
        return fw_dst(w, src);
    }
    let p = pick(placed, site, &w.dst_zone, w.dst_sel, false)?;
    if !p.agent && !appliance_probe(w.svc.proto) {
        return Err(format!(
            "{} is an appliance without a guest agent: {} there has no prober \
             (ping, tcp and dns are probed; a radius test asks RADIUS)",
            p.name, w.svc.name
        ));
    }
    let listener = (w.svc.proto != Proto::Ping && p.agent).then(|| p.name.to_string());
    Ok(Dst {
        addr: p.addr,
        listener,
    })
}

/// The probe for one want, its expectation from the simulator.
fn probe_for(
    w: &Want,
    site: &Site,
    rs: &labwall::nft::Ruleset,
    placed: &[Placed],
) -> Result<MatrixProbe, String> {
    let src = pick(placed, site, &w.src_zone, w.src_sel, true)?;
    let dst = dst_for(w, site, src, placed)?;
    let (proto, dport) = match w.svc.proto {
        Proto::Ping => (LwProto::Icmp, None),
        Proto::Tcp(p) => (LwProto::Tcp, Some(p)),
        Proto::Udp(p) => (LwProto::Udp, Some(p)),
    };
    let pk = Packet {
        src: IpAddr::V4(src.addr),
        dst: IpAddr::V4(dst.addr),
        proto,
        dport,
        iif: Some(src.iface.ifname.clone()),
    };
    let e = explain(site, rs, &pk).map_err(|e| format!("labwall explain: {e}"))?;
    let rule_text = e.decision.as_ref().map_or_else(
        || format!("default policy of the {} chain", e.path),
        |d| d.why.clone(),
    );
    Ok(MatrixProbe {
        src_zone: w.src_zone.clone(),
        dst_zone: w.dst_zone.clone(),
        service: w.svc.name.clone(),
        from_node: src.name.to_string(),
        src: src.addr,
        dst: dst.addr,
        proto: w.svc.proto,
        dport,
        listener: dst.listener,
        expect: if e.verdict == "ACCEPT" {
            Expect::Ok
        } else {
            Expect::Blocked
        },
        decided_by: e.decision.map(|d| d.line),
        rule_text,
        iif: src.iface.ifname.clone(),
    })
}
