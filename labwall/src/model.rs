//! Semantic analysis: statements -> a checked site model. All checks of the spec live here
//! (plus the DANGER check); every finding is a Diagnostic, and analysis goes on after errors so
//! that all of them are reported at once.

use crate::diag::{Diagnostic, Loc};
use crate::net::Net;
use crate::parse::{
    AddrSpec, Endpoint, Line, NatOn, Parsed, PolicyAction, Rate, RuleAction, Stmt, SvcItem, Tok,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, Serialize)]
pub struct V6Addr {
    pub prefix: Net,
    pub master: IpAddr,
    pub backup: IpAddr,
    pub vip: Option<IpAddr>,
    pub gw: Option<Ipv6Addr>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Iface {
    /// DEV/VLAN name (`INTER`, `VLAN10`).
    pub name: String,
    /// Linux interface name (`eth1`, `vlan10`).
    pub ifname: String,
    /// Physical device (the VLAN's parent, or the DEV's device).
    pub dev: String,
    pub vid: Option<u16>,
    pub line: u32,
    pub net4: Net,
    pub gw4: Option<Ipv4Addr>,
    /// Real address by role; None when the line gives no address.
    pub master4: Option<Ipv4Addr>,
    pub backup4: Option<Ipv4Addr>,
    pub vip4: Option<Ipv4Addr>,
    pub vrid: Option<u32>,
    pub star: bool,
    pub bcast: Ipv4Addr,
    pub v6: Vec<V6Addr>,
    pub zone: String,
    pub uplink: bool,
}

impl Iface {
    pub fn nets(&self) -> Vec<Net> {
        let mut v = vec![self.net4.trunc()];
        v.extend(self.v6.iter().map(|a| a.prefix.trunc()));
        v
    }
    pub fn addr4(&self, master: bool) -> Option<Ipv4Addr> {
        if master {
            self.master4
        } else {
            self.backup4
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Zone {
    pub name: String,
    pub ifaces: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Alias {
    pub name: String,
    pub nets: Vec<Net>,
    pub line: u32,
}

/// One protocol match of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum L4 {
    /// tcp and/or udp to port ranges
    Ports {
        tcp: bool,
        udp: bool,
        ports: Vec<(u16, u16)>,
    },
    Proto(u8),
    /// ICMP echo-request (v4) or ICMPv6 echo-request (v6)
    Echo {
        v6: bool,
    },
}

/// Address restriction of one side of a rule.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AddrSel {
    /// Named set base (`dns1` -> sets `dns1_v4`/`dns1_v6`), None for a literal.
    pub set: Option<String>,
    pub nets: Vec<Net>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    pub line: u32,
    pub action: RuleAction,
    pub src_zone: String,
    pub dst_zone: String,
    pub src: Option<AddrSel>,
    pub dst: Option<AddrSel>,
    pub l4: Vec<L4>,
    pub log: bool,
    pub limit: Option<Rate>,
    /// Accept only DNATed connections (`ct status dnat`), generated from NAT DNAT.
    pub dnat_only: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    pub src: String,
    pub dst: String,
    pub action: PolicyAction,
    pub log: bool,
    pub line: u32,
    /// false for the built-in defaults used when the file has no POLICY.
    pub explicit: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Noroute {
    pub zones: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snat {
    pub ifname: String,
    /// None = masquerade
    pub to: Option<Ipv4Addr>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dnat {
    pub ifname: String,
    pub on: Ipv4Addr,
    pub l4: Vec<L4>,
    pub to: Ipv4Addr,
    pub port: Option<u16>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct VrrpAuth {
    pub kind: String,
    pub secret: String,
    pub router_id: String,
    pub smtp: Option<IpAddr>,
    pub email: Option<String>,
    pub advert: u32,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    pub name: String,
    pub vrid: u32,
    pub ifname: String,
    pub line: u32,
    /// (vip, prefix len, broadcast, ifname)
    pub vips4: Vec<(Ipv4Addr, u8, Ipv4Addr, String)>,
    /// (vip, prefix len, ifname)
    pub vips6: Vec<(IpAddr, u8, String)>,
    /// Real addresses of both routers on the advert interface (for the VRRP accept rule).
    pub peers: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogCfg {
    pub prefix: String,
    pub level: String,
    pub rate: Rate,
    pub nflog: Option<u16>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sync {
    pub ifname: String,
    pub master: IpAddr,
    pub backup: IpAddr,
    pub line: u32,
}

/// The checked site. Everything but `role`/`hostname` is identical for both roles.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    pub file: String,
    pub role: String,
    pub hostname: Option<String>,
    pub netinit: Vec<String>,
    pub netinit_line: u32,
    pub ifaces: Vec<Iface>,
    pub zones: Vec<Zone>,
    pub aliases: Vec<Alias>,
    pub rules: Vec<Rule>,
    pub policies: Vec<Policy>,
    pub noroutes: Vec<Noroute>,
    pub snats: Vec<Snat>,
    pub dnats: Vec<Dnat>,
    pub antispoof: String,
    pub antispoof_line: u32,
    pub log: LogCfg,
    pub counters: bool,
    pub auth: Option<VrrpAuth>,
    pub group: Option<String>,
    pub instances: Vec<Instance>,
    pub sync: Option<Sync>,
}

impl Site {
    pub fn is_master(&self) -> bool {
        self.role == "MASTER"
    }
    pub fn zone_of_iface(&self, ifname: &str) -> Option<&str> {
        self.ifaces
            .iter()
            .find(|i| i.ifname == ifname)
            .map(|i| i.zone.as_str())
    }
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }
    /// Most specific policy for a pair: (s,d) > (s,all) > (all,d) > (all,all).
    pub fn resolve_policy(&self, s: &str, d: &str) -> Option<&Policy> {
        for (a, b) in [(s, d), (s, "all"), ("all", d), ("all", "all")] {
            if let Some(p) = self.policies.iter().find(|p| p.src == a && p.dst == b) {
                return Some(p);
            }
        }
        None
    }
    pub fn noroute_for(&self, s: &str, d: &str) -> Option<&Noroute> {
        if s == d {
            return None;
        }
        self.noroutes
            .iter()
            .find(|n| n.zones.iter().any(|z| z == s) && n.zones.iter().any(|z| z == d))
    }
    /// Every address of both routers (real addresses of both roles and VIPs).
    pub fn router_addrs(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::new();
        for i in &self.ifaces {
            for a in [i.master4, i.backup4, i.vip4].into_iter().flatten() {
                v.push(IpAddr::V4(a));
            }
            for a in &i.v6 {
                v.push(a.master);
                v.push(a.backup);
                v.extend(a.vip);
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Built-in services (spec 4.2), overridable by SERVICE.
pub fn builtin_service(name: &str) -> Option<Vec<SvcItem>> {
    let p = |proto: &str, lo: u16, hi: u16| SvcItem::Ports {
        proto: proto.to_string(),
        lo,
        hi,
    };
    Some(match name {
        "ssh" => vec![p("tcp", 22, 22)],
        "dns" => vec![p("tcp", 53, 53), p("udp", 53, 53)],
        "dhcp" => vec![p("udp", 67, 67)],
        "ntp" => vec![p("udp", 123, 123)],
        "ping" => vec![SvcItem::Ping],
        "http" => vec![p("tcp", 80, 80)],
        "https" => vec![p("tcp", 443, 443)],
        "openvpn" => vec![p("udp", 1194, 1194)],
        "radius" => vec![p("udp", 1812, 1813)],
        "smtp" => vec![p("tcp", 25, 25)],
        "imaps" => vec![p("tcp", 993, 993)],
        "ldap" => vec![p("tcp", 389, 389)],
        "ldaps" => vec![p("tcp", 636, 636)],
        "kerberos" => vec![p("tcp", 88, 88), p("udp", 88, 88)],
        "smb" => vec![p("tcp", 445, 445)],
        "nfs" => vec![p("tcp", 2049, 2049), p("udp", 2049, 2049)],
        "ipp" => vec![p("tcp", 631, 631)],
        "syslog" => vec![p("udp", 514, 514)],
        "snmp" => vec![p("udp", 161, 161)],
        "vrrp" => vec![SvcItem::Proto(112)],
        _ => return None,
    })
}

/// Turn service items into merged L4 matches: tcp and udp with the same ports share one match.
pub fn l4_of(items: &[SvcItem]) -> Vec<L4> {
    let mut tcp: Vec<(u16, u16)> = Vec::new();
    let mut udp: Vec<(u16, u16)> = Vec::new();
    let mut out = Vec::new();
    for it in items {
        match it {
            SvcItem::Ports { proto, lo, hi } => {
                if proto == "tcp" {
                    tcp.push((*lo, *hi))
                } else {
                    udp.push((*lo, *hi))
                }
            }
            SvcItem::Proto(n) => {
                if !out.contains(&L4::Proto(*n)) {
                    out.push(L4::Proto(*n))
                }
            }
            SvcItem::Ping => {
                for v6 in [false, true] {
                    if !out.contains(&L4::Echo { v6 }) {
                        out.push(L4::Echo { v6 })
                    }
                }
            }
        }
    }
    tcp.sort();
    tcp.dedup();
    udp.sort();
    udp.dedup();
    let mut ports = Vec::new();
    if !tcp.is_empty() && tcp == udp {
        ports.push(L4::Ports {
            tcp: true,
            udp: true,
            ports: tcp,
        });
    } else {
        if !tcp.is_empty() {
            ports.push(L4::Ports {
                tcp: true,
                udp: false,
                ports: tcp,
            });
        }
        if !udp.is_empty() {
            ports.push(L4::Ports {
                tcp: false,
                udp: true,
                ports: udp,
            });
        }
    }
    ports.extend(out);
    ports
}

struct Ctx<'a> {
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, l: &Line, t: &Tok, msg: impl Into<String>, fix: impl Into<String>) {
        let d = l.diag_at(t, msg).fix(fix.into());
        self.diags.push(d);
    }
    fn warn(&mut self, l: &Line, t: &Tok, msg: impl Into<String>, fix: impl Into<String>) {
        let mut d = l.diag_at(t, msg).fix(fix.into());
        d.severity = crate::diag::Severity::Warning;
        self.diags.push(d);
    }
}

fn tok0(l: &Line) -> &Tok {
    &l.toks[0]
}

/// Build and check the site for one role. Returns None if there were errors (diags has them).
pub fn analyse(
    file: &str,
    stmts: &[Parsed],
    role: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Site> {
    let n_err_before = diags.iter().filter(|d| d.is_error()).count();
    let mut cx = Ctx { diags };
    let mut netinit: Option<(Vec<String>, u32)> = None;
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut iface_lines: Vec<Line> = Vec::new();
    let mut hostname: Option<String> = None;
    let mut auth: Option<VrrpAuth> = None;
    let mut group: Option<String> = None;
    let mut antispoof = ("off".to_string(), 0u32);
    let mut log = LogCfg {
        prefix: "lw".into(),
        level: "info".into(),
        rate: Rate {
            n: 5,
            unit: "minute".into(),
        },
        nflog: None,
        line: 0,
    };
    let mut counters = true;
    let mut sync = None;
    let mut set_role: Option<(String, Line)> = None;
    let mut netinit_tainted = false;

    // ---- pass 1: interfaces and globals
    for p in stmts {
        let l = &p.line;
        match &p.stmt {
            Stmt::NetInit { devs } => {
                if netinit.is_some() {
                    cx.err(
                        l,
                        tok0(l),
                        "second NETINIT",
                        "list every device in one NETINIT line",
                    );
                } else {
                    netinit = Some((devs.iter().map(|d| d.text.clone()).collect(), l.loc.line));
                    netinit_tainted = l.tainted;
                }
            }
            Stmt::Vlan {
                vid,
                dev,
                net,
                addr,
                addr_tok,
                mask,
                bcast,
                bcast_tok,
                name,
            } => {
                let nm = name
                    .as_ref()
                    .map(|n| n.text.clone())
                    .unwrap_or(format!("VLAN{vid}"));
                let iface = mk_iface(
                    &mut cx,
                    l,
                    nm,
                    format!("vlan{vid}"),
                    dev.text.clone(),
                    Some(*vid),
                    *net,
                    *mask,
                    None,
                    Some((addr.clone(), addr_tok.clone())),
                    *bcast,
                    bcast_tok.as_ref(),
                );
                ifaces.push(iface);
                iface_lines.push(l.clone());
            }
            Stmt::Dev {
                name,
                dev,
                net,
                gw,
                gw_tok,
                mask,
                addr,
                addr_tok,
                bcast,
                bcast_tok,
            } => {
                let a = addr.clone().zip(addr_tok.clone());
                let iface = mk_iface(
                    &mut cx,
                    l,
                    name.text.clone(),
                    dev.text.clone(),
                    dev.text.clone(),
                    None,
                    *net,
                    *mask,
                    gw.map(|g| (g, gw_tok.clone())),
                    a,
                    *bcast,
                    bcast_tok.as_ref(),
                );
                ifaces.push(iface);
                iface_lines.push(l.clone());
            }
            Stmt::Set { name, value } => {
                if name.text == "ROLE" {
                    set_role = Some((value.clone(), l.clone()));
                } else {
                    hostname = Some(value.clone());
                }
            }
            Stmt::VrrpAuth {
                kind,
                secret,
                router_id,
                smtp,
                email,
                advert,
            } => {
                if kind == "PASS" && secret.text.len() > 8 {
                    cx.err(
                        l,
                        secret,
                        format!(
                            "PASS secret is {} characters; keepalived uses only the first 8",
                            secret.text.len()
                        ),
                        "use at most 8 characters",
                    );
                }
                if auth.is_some() {
                    cx.err(l, tok0(l), "second VRRP AUTH", "keep one VRRP AUTH line");
                }
                auth = Some(VrrpAuth {
                    kind: kind.clone(),
                    secret: secret.text.clone(),
                    router_id: router_id.clone(),
                    smtp: *smtp,
                    email: email.clone(),
                    advert: *advert,
                    line: l.loc.line,
                });
            }
            Stmt::VrrpGroup { name } => {
                if group.is_some() {
                    cx.err(l, tok0(l), "second VRRP START GROUP", "keep one sync group");
                }
                group = Some(name.text.clone());
            }
            Stmt::Antispoof(m) => antispoof = (m.clone(), l.loc.line),
            Stmt::Log {
                prefix,
                level,
                rate,
                nflog,
            } => {
                if let Some(p) = prefix {
                    log.prefix = p.clone();
                }
                if let Some(v) = level {
                    log.level = v.clone();
                }
                if let Some(r) = rate {
                    log.rate = r.clone();
                }
                log.nflog = *nflog;
                log.line = l.loc.line;
            }
            Stmt::Counters(c) => counters = *c,
            _ => {}
        }
    }

    // role
    let role = role.to_string();
    if role != "MASTER" && role != "BACKUP" {
        cx.diags.push(
            Diagnostic::error(
                Loc {
                    file: file.to_string(),
                    line: 1,
                    col: 1,
                },
                format!("invalid role `{role}`"),
            )
            .expected("MASTER or BACKUP")
            .fix("pass --role MASTER or --role BACKUP (or -D ROLE=...)"),
        );
    }
    if let Some((v, l)) = &set_role {
        let t = &l.toks[1];
        if v != "MASTER" && v != "BACKUP" {
            cx.err(
                l,
                t,
                format!("SET ROLE={v}: invalid role"),
                "ROLE must be MASTER or BACKUP",
            );
        } else if *v != role {
            cx.err(
                l,
                t,
                format!("SET ROLE={v} contradicts the requested role {role}"),
                "use SET ROLE=$ROLE and choose the role with --role",
            );
        }
    }

    let Some((netinit, netinit_line)) = netinit else {
        cx.diags.push(
            Diagnostic::error(
                Loc {
                    file: file.to_string(),
                    line: 1,
                    col: 1,
                },
                "no NETINIT line",
            )
            .expected("NETINIT <extdev> <intdev> [<dev>...] before the DEV/VLAN lines")
            .fix("add e.g. NETINIT eth1 eth0"),
        );
        return None;
    };

    // interfaces: devices, names, overlaps, uplink
    let ext = netinit[0].clone();
    for (i, iface) in ifaces.iter_mut().enumerate() {
        let l = &iface_lines[i];
        if !netinit.contains(&iface.dev) && !netinit_tainted {
            let t = l.toks.get(2).unwrap_or(tok0(l)).clone();
            cx.err(
                l,
                &t,
                format!(
                    "device {} is not in NETINIT (line {netinit_line})",
                    iface.dev
                ),
                format!("add {} to the NETINIT line", iface.dev),
            );
        }
        iface.uplink = iface.vid.is_none() && iface.dev == ext;
        if let (Some(g), false) = (iface.gw4, iface.uplink) {
            let t = l.toks[4].clone();
            cx.err(l, &t, format!("DANGER: gateway {g} on {}, which is not the uplink ({ext}): a host inside a zone would forward traffic around the routers' filtering", iface.name), "only the DEV on the uplink device (first NETINIT device) may have a gateway; write - here");
        }
    }
    {
        let gws: Vec<usize> = (0..ifaces.len())
            .filter(|&i| ifaces[i].gw4.is_some())
            .collect();
        for &i in gws.iter().skip(1) {
            let l = &iface_lines[i];
            cx.err(
                l,
                &l.toks[4].clone(),
                "a second default gateway",
                "keep one gateway (the uplink's); write - here",
            );
        }
    }
    for i in 0..ifaces.len() {
        for j in 0..i {
            let (a, b) = (&ifaces[i], &ifaces[j]);
            if a.name == b.name {
                let l = &iface_lines[i];
                cx.err(
                    l,
                    &l.toks[1].clone(),
                    format!("name {} already used at line {}", a.name, b.line),
                    "give each DEV/VLAN its own name",
                );
            } else if a.ifname == b.ifname {
                let l = &iface_lines[i];
                cx.err(
                    l,
                    &l.toks[1].clone(),
                    format!("interface {} already defined at line {}", a.ifname, b.line),
                    "one DEV/VLAN line per interface; use ADDR6 for IPv6",
                );
            }
            if a.net4.overlaps(&b.net4) {
                let l = &iface_lines[i];
                cx.err(
                    l,
                    &l.toks[3].clone(),
                    format!(
                        "network {} overlaps {} of {} (line {})",
                        a.net4.trunc(),
                        b.net4.trunc(),
                        b.name,
                        b.line
                    ),
                    "give each interface its own network",
                );
            }
        }
    }

    // ---- pass 2: ADDR6, zones, aliases, services
    let mut zones_decl: Vec<(String, Vec<String>, u32)> = Vec::new();
    let mut aliases: Vec<(Alias, Line)> = Vec::new();
    let mut services: BTreeMap<String, Vec<SvcItem>> = BTreeMap::new();
    for p in stmts {
        let l = &p.line;
        match &p.stmt {
            Stmt::Addr6 {
                name,
                prefix,
                addr,
                addr_tok,
                gw,
            } => {
                let Some(ix) = ifaces.iter().position(|i| i.name == name.text) else {
                    cx.err(
                        l,
                        name,
                        format!("no DEV/VLAN named {}", name.text),
                        "use the name of a DEV line or VLAN<vid> / the VLAN's name column",
                    );
                    continue;
                };
                let (m, b, vip) = match addr {
                    AddrSpec::Plain(a) => (*a, *a, None),
                    AddrSpec::V(v) => {
                        if v.vrid.is_some() {
                            cx.err(l, addr_tok, "ADDR6 takes master-backup-vip; the VRID comes from the interface's IPv4 line", "remove the -vrid part");
                        }
                        (v.master, v.backup, Some(v.vip))
                    }
                };
                for a in [Some(m), Some(b), vip, gw.map(IpAddr::V6)]
                    .into_iter()
                    .flatten()
                {
                    if !prefix.contains(a) {
                        cx.err(
                            l,
                            addr_tok,
                            format!("{a} is outside {prefix}"),
                            "use addresses inside the prefix",
                        );
                    }
                }
                if vip.is_some() && ifaces[ix].vrid.is_none() {
                    cx.err(l, addr_tok, format!("IPv6 VIP on {} but its IPv4 line has no master-backup-vip-vrid", name.text), "give the interface a VRRP spec on its DEV/VLAN line, or use a plain address");
                }
                if gw.is_some() && !ifaces[ix].uplink {
                    cx.err(
                        l,
                        name,
                        format!(
                            "DANGER: IPv6 gateway on {}, which is not the uplink",
                            name.text
                        ),
                        "only the uplink may carry a default route",
                    );
                }
                for other in &ifaces {
                    for o in &other.v6 {
                        if o.prefix.overlaps(prefix) {
                            cx.err(
                                l,
                                name,
                                format!(
                                    "prefix {prefix} overlaps {} of {} (line {})",
                                    o.prefix, other.name, o.line
                                ),
                                "give each interface its own prefix",
                            );
                        }
                    }
                }
                ifaces[ix].v6.push(V6Addr {
                    prefix: *prefix,
                    master: m,
                    backup: b,
                    vip,
                    gw: *gw,
                    line: l.loc.line,
                });
            }
            Stmt::Zone { zone, names } => {
                if zones_decl.iter().any(|z| z.0 == zone.text) {
                    cx.err(
                        l,
                        zone,
                        format!("zone {} declared twice", zone.text),
                        "list all its interfaces on one ZONE line",
                    );
                    continue;
                }
                let mut members = Vec::new();
                for n in names {
                    match ifaces.iter_mut().find(|i| i.name == n.text) {
                        None => cx.err(
                            l,
                            n,
                            format!("no DEV/VLAN named {}", n.text),
                            "use a DEV name or VLAN<vid> (or the VLAN's name column)",
                        ),
                        Some(i) if !i.zone.is_empty() => {
                            let z = i.zone.clone();
                            cx.err(
                                l,
                                n,
                                format!("{} is already in zone {z}", n.text),
                                "an interface belongs to one zone",
                            )
                        }
                        Some(i) => {
                            i.zone = zone.text.clone();
                            members.push(i.ifname.clone());
                        }
                    }
                }
                zones_decl.push((zone.text.clone(), members, l.loc.line));
            }
            Stmt::Alias {
                host: _,
                alias,
                nets,
            } => {
                if aliases.iter().any(|a| a.0.name == alias.text) {
                    cx.err(
                        l,
                        alias,
                        format!("alias {} defined twice", alias.text),
                        "merge the addresses into one line",
                    );
                    continue;
                }
                aliases.push((
                    Alias {
                        name: alias.text.clone(),
                        nets: nets.iter().map(|n| n.0).collect(),
                        line: l.loc.line,
                    },
                    l.clone(),
                ));
            }
            Stmt::Service { name, items } => {
                services.insert(name.text.clone(), items.clone());
            }
            _ => {}
        }
    }
    // zones: undeclared interfaces are their own zone
    let mut zones: Vec<Zone> = zones_decl
        .into_iter()
        .map(|(n, i, line)| Zone {
            name: n,
            ifaces: i,
            line,
        })
        .collect();
    for (ix, i) in ifaces.iter_mut().enumerate() {
        if i.zone.is_empty() {
            if zones.iter().any(|z| z.name == i.name) {
                let l = &iface_lines[ix];
                cx.err(
                    l,
                    &l.toks[1].clone(),
                    format!("{} has no ZONE but a zone with its name exists", i.name),
                    format!("add {} to a ZONE line", i.name),
                );
            }
            i.zone = i.name.clone();
            zones.push(Zone {
                name: i.name.clone(),
                ifaces: vec![i.ifname.clone()],
                line: i.line,
            });
        }
    }
    // chain names `<src>_<dst>` must be unique and must not hit labwall's own chains
    {
        const RESERVED: [&str; 8] = [
            "input",
            "forward",
            "output",
            "antispoof",
            "pol",
            "noroute",
            "intra",
            "nat",
        ];
        let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        names.push("fw");
        for z in &zones {
            if RESERVED.contains(&z.name.as_str()) {
                cx.diags.push(
                    Diagnostic::error(
                        Loc {
                            file: file.to_string(),
                            line: z.line,
                            col: 1,
                        },
                        format!("zone name {} is reserved for labwall's own chains", z.name),
                    )
                    .fix("rename the zone"),
                );
            }
        }
        for a in &names {
            for b in &names {
                let c = format!("{a}_{b}");
                if let Some((x, y)) = seen.get(&c) {
                    let line = zones
                        .iter()
                        .find(|z| z.name == *a)
                        .map(|z| z.line)
                        .unwrap_or(1);
                    cx.diags.push(
                        Diagnostic::error(
                            Loc {
                                file: file.to_string(),
                                line,
                                col: 1,
                            },
                            format!(
                                "zones {a}->{b} and {x}->{y} would share the nftables chain {c}"
                            ),
                        )
                        .fix("rename a zone so that names joined with _ stay distinct"),
                    );
                } else {
                    seen.insert(c, (a.to_string(), b.to_string()));
                }
            }
        }
    }
    for z in &zones {
        if z.name.contains('-') {
            cx.diags.push(
                Diagnostic::error(
                    Loc {
                        file: file.to_string(),
                        line: z.line,
                        col: 1,
                    },
                    format!(
                        "zone name {} contains '-', which nftables chain names cannot hold",
                        z.name
                    ),
                )
                .fix("rename it with _ or letters only (or put it in a ZONE line)"),
            );
        }
    }

    // DANGER: a host with addresses in two zones bypasses the routers
    for (a, l) in &aliases {
        if l.toks[0].text != "HOST" {
            continue;
        }
        let mut zs: BTreeSet<String> = BTreeSet::new();
        for n in &a.nets {
            // longest-prefix match, as routing would
            let best = ifaces
                .iter()
                .flat_map(|i| i.nets().into_iter().map(move |x| (x, i)))
                .filter(|(x, _)| x.contains(n.addr))
                .max_by_key(|(x, _)| x.len);
            if let Some((_, i)) = best {
                zs.insert(i.zone.clone());
            }
        }
        if zs.len() > 1 {
            let z: Vec<String> = zs.into_iter().collect();
            cx.err(l, &l.toks[1], format!("DANGER: host {} has addresses in zones {}: a multi-homed host (or a VM on it) can pass traffic between those zones without going through the routers' firewall", a.name, z.join(", ")), "give the host addresses in one zone only and let the routers forward between zones");
        }
    }

    // VRRP instances
    let mut by_vrid: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (ix, i) in ifaces.iter().enumerate() {
        if let Some(v) = i.vrid {
            let l = &iface_lines[ix];
            let t = if i.vid.is_some() {
                l.toks[4].clone()
            } else {
                l.toks[6].clone()
            };
            if !(1..=255).contains(&v) {
                cx.err(
                    l,
                    &t,
                    format!("VRID {v} is outside 1-255"),
                    "use a VRID between 1 and 255",
                );
            }
            by_vrid.entry(v).or_default().push(ix);
        }
    }
    let mut instances: Vec<Instance> = Vec::new();
    let intdev = netinit.get(1).cloned();
    for (vrid, members) in &by_vrid {
        let stars: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| ifaces[i].star)
            .collect();
        if stars.len() != 1 {
            let ix = members[0];
            let l = &iface_lines[ix];
            let t = if ifaces[ix].vid.is_some() {
                l.toks[4].clone()
            } else {
                l.toks[6].clone()
            };
            if stars.is_empty() {
                cx.err(l, &t, format!("VRID {vrid} has no interface marked * (which interface sends its adverts?)"), "append * to exactly one vspec of this VRID");
            } else {
                let l2 = &iface_lines[stars[1]];
                let t2 = if ifaces[stars[1]].vid.is_some() {
                    l2.toks[4].clone()
                } else {
                    l2.toks[6].clone()
                };
                cx.err(l2, &t2, format!("VRID {vrid} is marked * on {} and {} (duplicate VRID on two advert interfaces)", ifaces[stars[0]].ifname, ifaces[stars[1]].ifname), "use a different VRID per * interface, or remove one *");
            }
            continue;
        }
        let s = &ifaces[stars[0]];
        let mut name = if s.dev == ext {
            "externe".to_string()
        } else if Some(&s.dev) == intdev.as_ref() {
            "interne".to_string()
        } else {
            format!("vrid{vrid}")
        };
        if instances.iter().any(|i| i.name == name) {
            name = format!("vrid{vrid}");
        }
        let mut inst = Instance {
            name,
            vrid: *vrid,
            ifname: s.ifname.clone(),
            line: s.line,
            vips4: Vec::new(),
            vips6: Vec::new(),
            peers: [s.master4, s.backup4].into_iter().flatten().collect(),
        };
        for &m in members {
            let i = &ifaces[m];
            if let Some(v) = i.vip4 {
                inst.vips4.push((v, i.net4.len, i.bcast, i.ifname.clone()));
            }
            for a in &i.v6 {
                if let Some(v) = a.vip {
                    inst.vips6.push((v, a.prefix.len, i.ifname.clone()));
                }
            }
        }
        instances.push(inst);
    }
    // VIP equal to a real address
    {
        let mut reals: Vec<(IpAddr, String)> = Vec::new();
        for i in &ifaces {
            for a in [i.master4, i.backup4].into_iter().flatten() {
                reals.push((IpAddr::V4(a), i.name.clone()));
            }
            for a in &i.v6 {
                reals.push((a.master, i.name.clone()));
                reals.push((a.backup, i.name.clone()));
            }
        }
        for (ix, i) in ifaces.iter().enumerate() {
            if let Some(v) = i.vip4 {
                if let Some((_, n)) = reals.iter().find(|r| r.0 == IpAddr::V4(v)) {
                    let l = &iface_lines[ix];
                    let t = if i.vid.is_some() {
                        l.toks[4].clone()
                    } else {
                        l.toks[6].clone()
                    };
                    cx.err(
                        l,
                        &t,
                        format!("VIP {v} is also a real address of {n}"),
                        "the VIP must differ from both routers' own addresses",
                    );
                }
                if let (Some(m), Some(b)) = (i.master4, i.backup4) {
                    if m == b {
                        let l = &iface_lines[ix];
                        let t = if i.vid.is_some() {
                            l.toks[4].clone()
                        } else {
                            l.toks[6].clone()
                        };
                        cx.err(
                            l,
                            &t,
                            format!("master and backup share the address {m}"),
                            "give each router its own address",
                        );
                    }
                }
            }
        }
    }
    if !instances.is_empty() && auth.is_none() {
        // allowed: keepalived runs without authentication; the advert interval defaults to 1 s.
    }

    // ---- pass 3: rules, policies, NAT, NOROUTE
    let zone_names: Vec<String> = zones.iter().map(|z| z.name.clone()).collect();
    let mut used_alias: BTreeSet<String> = BTreeSet::new();
    let mut rules: Vec<Rule> = Vec::new();
    let mut policies: Vec<Policy> = Vec::new();
    let mut noroutes: Vec<Noroute> = Vec::new();
    let mut snats: Vec<Snat> = Vec::new();
    let mut dnats: Vec<Dnat> = Vec::new();
    let zone_ok = |z: &str| zone_names.iter().any(|n| n == z);
    let svc_lookup = |n: &str| services.get(n).cloned().or_else(|| builtin_service(n));
    for p in stmts {
        let l = &p.line;
        match &p.stmt {
            Stmt::Rule {
                action,
                src,
                dst,
                services: svcs,
                log,
                limit,
            } => {
                let mut ok = true;
                let mut side = |ep: &Endpoint,
                                cx: &mut Ctx|
                 -> Option<(Vec<String>, Option<AddrSel>)> {
                    match ep {
                        Endpoint::All => {
                            let mut v = zone_names.clone();
                            v.push("fw".into());
                            Some((v, None))
                        }
                        Endpoint::Fw => Some((vec!["fw".into()], None)),
                        Endpoint::Zone(z) | Endpoint::ZoneAlias(z, _) | Endpoint::ZoneNet(z, _) => {
                            if !zone_ok(&z.text) {
                                cx.err(
                                    l,
                                    z,
                                    format!("undefined zone {}", z.text),
                                    format!("known zones: {}, fw, all", zone_names.join(", ")),
                                );
                                return None;
                            }
                            let sel = match ep {
                                Endpoint::ZoneAlias(_, a) => {
                                    match aliases.iter().find(|x| x.0.name == a.text) {
                                        Some((al, _)) => {
                                            used_alias.insert(a.text.clone());
                                            Some(AddrSel {
                                                set: Some(al.name.clone()),
                                                nets: al.nets.clone(),
                                            })
                                        }
                                        None => {
                                            cx.err(l, a, format!("undefined alias {}", a.text), "define it with HOST or NET before use (anywhere in the file)");
                                            return None;
                                        }
                                    }
                                }
                                Endpoint::ZoneNet(_, n) => Some(AddrSel {
                                    set: None,
                                    nets: vec![*n],
                                }),
                                _ => None,
                            };
                            Some((vec![z.text.clone()], sel))
                        }
                    }
                };
                let s = side(src, &mut cx);
                let d = side(dst, &mut cx);
                let mut items = Vec::new();
                for sv in svcs {
                    match svc_lookup(&sv.text) {
                        Some(mut it) => items.append(&mut it),
                        None => {
                            cx.err(l, sv, format!("unknown service {}", sv.text), "define it with SERVICE <name> <proto>/<port>, or use a built-in (ssh dns dhcp ntp ping http https openvpn radius smtp imaps ldap ldaps kerberos smb nfs ipp syslog snmp vrrp)");
                            ok = false;
                        }
                    }
                }
                let (Some((sz, ssel)), Some((dz, dsel))) = (s, d) else {
                    continue;
                };
                if !ok {
                    continue;
                }
                // family compatibility
                let fams = |s: &Option<AddrSel>| -> (bool, bool) {
                    match s {
                        None => (true, true),
                        Some(a) => (
                            a.nets.iter().any(|n| n.is_v4()),
                            a.nets.iter().any(|n| !n.is_v4()),
                        ),
                    }
                };
                let (s4, s6) = fams(&ssel);
                let (d4, d6) = fams(&dsel);
                if !((s4 && d4) || (s6 && d6)) {
                    cx.err(l, &l.toks[2].clone(), "address family mismatch: source and destination share no IP version", "use aliases with addresses of the same family (IPv4 with IPv4, IPv6 with IPv6)");
                    continue;
                }
                let explicit_pair = sz.len() == 1 && dz.len() == 1;
                for a in &sz {
                    for b in &dz {
                        if a == "fw" && b == "fw" {
                            if explicit_pair {
                                cx.err(l, &l.toks[1].clone(), "fw to fw is the router talking to itself (always allowed on lo)", "remove this rule");
                            }
                            continue;
                        }
                        if a == b
                            && a != "fw"
                            && zones
                                .iter()
                                .find(|z| &z.name == a)
                                .is_some_and(|z| z.ifaces.len() < 2)
                        {
                            if explicit_pair {
                                cx.err(l, &l.toks[1].clone(), format!("zone {a} has a single interface: traffic inside it never crosses the router"), "use two different zones");
                            }
                            continue;
                        }
                        rules.push(Rule {
                            line: l.loc.line,
                            action: *action,
                            src_zone: a.clone(),
                            dst_zone: b.clone(),
                            src: ssel.clone(),
                            dst: dsel.clone(),
                            l4: l4_of(&items),
                            log: *log,
                            limit: limit.clone(),
                            dnat_only: false,
                        });
                    }
                }
            }
            Stmt::Policy {
                src,
                dst,
                action,
                log,
            } => {
                let mut ok = true;
                for z in [src, dst] {
                    if z.text != "all" && z.text != "fw" && !zone_ok(&z.text) {
                        cx.err(
                            l,
                            z,
                            format!("undefined zone {}", z.text),
                            format!("known zones: {}, fw, all", zone_names.join(", ")),
                        );
                        ok = false;
                    }
                }
                if !ok {
                    continue;
                }
                if let Some(prev) = policies
                    .iter()
                    .find(|p| p.src == src.text && p.dst == dst.text)
                {
                    cx.err(
                        l,
                        src,
                        format!(
                            "POLICY {} {} already given at line {}",
                            src.text, dst.text, prev.line
                        ),
                        "keep one POLICY per pair",
                    );
                    continue;
                }
                policies.push(Policy {
                    src: src.text.clone(),
                    dst: dst.text.clone(),
                    action: *action,
                    log: *log,
                    line: l.loc.line,
                    explicit: true,
                });
            }
            Stmt::Noroute(zs) => {
                let mut v = Vec::new();
                for z in zs {
                    if !zone_ok(&z.text) {
                        cx.err(
                            l,
                            z,
                            format!("undefined zone {}", z.text),
                            format!("known zones: {}", zone_names.join(", ")),
                        );
                    } else {
                        v.push(z.text.clone());
                    }
                }
                noroutes.push(Noroute {
                    zones: v,
                    line: l.loc.line,
                });
            }
            Stmt::Snat { name, to } | Stmt::Dnat { name, on: to, .. }
                if find_iface(&ifaces, &name.text).is_none() =>
            {
                let _ = to;
                cx.err(
                    l,
                    name,
                    format!("no DEV/VLAN named {}", name.text),
                    "use the name of a DEV/VLAN line",
                );
            }
            Stmt::Masq { name } if find_iface(&ifaces, &name.text).is_none() => {
                cx.err(
                    l,
                    name,
                    format!("no DEV/VLAN named {}", name.text),
                    "use the name of a DEV/VLAN line",
                );
            }
            Stmt::Snat { name, to } => {
                let i = find_iface(&ifaces, &name.text).unwrap();
                let ip = match resolve_on(i, to) {
                    Ok(a) => a,
                    Err(e) => {
                        cx.err(
                            l,
                            &l.toks[4].clone(),
                            e,
                            "give an IPv4 address or VIP of an interface with a VRRP spec",
                        );
                        continue;
                    }
                };
                if !i.net4.contains(IpAddr::V4(ip)) {
                    cx.warn(
                        l,
                        &l.toks[4].clone(),
                        format!(
                            "SNAT address {ip} is outside {}'s network {}",
                            i.name,
                            i.net4.trunc()
                        ),
                        "replies will only come back if the upstream routes it to the routers",
                    );
                }
                snats.push(Snat {
                    ifname: i.ifname.clone(),
                    to: Some(ip),
                    line: l.loc.line,
                });
            }
            Stmt::Masq { name } => {
                let i = find_iface(&ifaces, &name.text).unwrap();
                snats.push(Snat {
                    ifname: i.ifname.clone(),
                    to: None,
                    line: l.loc.line,
                });
            }
            Stmt::Dnat {
                name,
                on,
                service,
                to,
                port,
            } => {
                let i = find_iface(&ifaces, &name.text).unwrap();
                let on_ip = match resolve_on(i, on) {
                    Ok(a) => a,
                    Err(e) => {
                        cx.err(
                            l,
                            &l.toks[2].clone(),
                            e,
                            "use <Name>:VIP on an interface with a VRRP spec, or <Name>:<ip>",
                        );
                        continue;
                    }
                };
                let Some(items) = svc_lookup(&service.text) else {
                    cx.err(
                        l,
                        service,
                        format!("unknown service {}", service.text),
                        "define it with SERVICE or use a built-in",
                    );
                    continue;
                };
                let l4: Vec<L4> = l4_of(&items)
                    .into_iter()
                    .filter(|x| matches!(x, L4::Ports { .. }))
                    .collect();
                if l4.is_empty() {
                    cx.err(
                        l,
                        service,
                        format!("service {} has no tcp/udp port to forward", service.text),
                        "DNAT a tcp/udp service",
                    );
                    continue;
                }
                let target = if let Ok(a) = to.text.parse::<Ipv4Addr>() {
                    a
                } else if let Some((al, _)) = aliases.iter().find(|a| a.0.name == to.text) {
                    used_alias.insert(al.name.clone());
                    let v4: Vec<Ipv4Addr> = al
                        .nets
                        .iter()
                        .filter_map(|n| match n.addr {
                            IpAddr::V4(a) if n.is_host() => Some(a),
                            _ => None,
                        })
                        .collect();
                    if v4.len() != 1 {
                        cx.err(l, to, format!("alias {} must have exactly one IPv4 host address to be a DNAT target", to.text), "use a HOST alias with one IPv4 address, or an address");
                        continue;
                    }
                    v4[0]
                } else {
                    cx.err(
                        l,
                        to,
                        format!("undefined alias {}", to.text),
                        "define it with HOST, or give an IPv4 address",
                    );
                    continue;
                };
                let Some(tz) = ifaces.iter().find(|x| x.net4.contains(IpAddr::V4(target))) else {
                    cx.err(
                        l,
                        to,
                        format!("DNAT target {target} is in no interface's network"),
                        "forward to a host on one of the routers' networks",
                    );
                    continue;
                };
                // duplicate DNAT: same address, protocol and port
                for d in &dnats {
                    if d.on == on_ip && l4_overlap(&d.l4, &l4) {
                        cx.err(
                            l,
                            service,
                            format!(
                                "duplicate DNAT: {on_ip} {} is already forwarded at line {}",
                                service.text, d.line
                            ),
                            "forward each address/protocol/port once",
                        );
                    }
                }
                let src_zone = i.zone.clone();
                let dst_zone = tz.zone.clone();
                let fwd_l4: Vec<L4> = match port {
                    Some(pn) => l4
                        .iter()
                        .map(|x| match x {
                            L4::Ports { tcp, udp, .. } => L4::Ports {
                                tcp: *tcp,
                                udp: *udp,
                                ports: vec![(*pn, *pn)],
                            },
                            o => o.clone(),
                        })
                        .collect(),
                    None => l4.clone(),
                };
                dnats.push(Dnat {
                    ifname: i.ifname.clone(),
                    on: on_ip,
                    l4,
                    to: target,
                    port: *port,
                    line: l.loc.line,
                });
                rules.push(Rule {
                    line: l.loc.line,
                    action: RuleAction::Allow,
                    src_zone,
                    dst_zone,
                    src: None,
                    dst: Some(AddrSel {
                        set: None,
                        nets: vec![Net::host(IpAddr::V4(target))],
                    }),
                    l4: fwd_l4,
                    log: false,
                    limit: None,
                    dnat_only: true,
                });
            }
            Stmt::Sync {
                dev,
                master,
                backup,
            } => {
                if !ifaces.iter().any(|i| i.ifname == dev.text) {
                    cx.err(
                        l,
                        dev,
                        format!("SYNC device {} is not a DEV/VLAN interface", dev.text),
                        "use an interface defined by DEV or VLAN",
                    );
                }
                sync = Some(Sync {
                    ifname: dev.text.clone(),
                    master: *master,
                    backup: *backup,
                    line: l.loc.line,
                });
            }
            _ => {}
        }
    }
    if policies.is_empty() {
        cx.diags.push(
            Diagnostic::warning(
                Loc {
                    file: file.to_string(),
                    line: netinit_line,
                    col: 1,
                },
                "no POLICY line: using `POLICY fw all ACCEPT` and `POLICY all all DROP LOG`",
            )
            .fix("write the policies you mean explicitly, e.g. POLICY all all REJECT LOG"),
        );
        policies.push(Policy {
            src: "fw".into(),
            dst: "all".into(),
            action: PolicyAction::Accept,
            log: false,
            line: netinit_line,
            explicit: false,
        });
        policies.push(Policy {
            src: "all".into(),
            dst: "all".into(),
            action: PolicyAction::Drop,
            log: true,
            line: netinit_line,
            explicit: false,
        });
    }
    // NOROUTE overriding an explicit ACCEPT
    let mut warned: BTreeSet<u32> = BTreeSet::new();
    for n in &noroutes {
        for a in &n.zones {
            for b in &n.zones {
                if a == b {
                    continue;
                }
                let tmp = Site::policy_lookup(&policies, a, b);
                if let Some(p) = tmp {
                    if p.action == PolicyAction::Accept && p.explicit && warned.insert(p.line) {
                        cx.diags.push(
                            Diagnostic::warning(Loc { file: file.to_string(), line: p.line, col: 1 }, format!("POLICY {} {} ACCEPT is overridden by NOROUTE (line {}) for {a} -> {b}: that traffic is dropped", p.src, p.dst, n.line))
                                .fix("add explicit ALLOW lines for the traffic you want between these zones, or narrow the POLICY"),
                        );
                    }
                }
            }
        }
    }
    for (a, l) in &aliases {
        if !used_alias.contains(&a.name) {
            cx.warn(
                l,
                &l.toks[1],
                format!("alias {} is never used", a.name),
                "remove it, or use it in a rule (zone:alias)",
            );
        }
    }
    // sort diagnostics in source order is done by the caller
    let n_err = cx.diags.iter().filter(|d| d.is_error()).count();
    if n_err > n_err_before {
        return None;
    }
    Some(Site {
        file: file.to_string(),
        role,
        hostname,
        netinit,
        netinit_line,
        ifaces,
        zones,
        aliases: aliases.into_iter().map(|a| a.0).collect(),
        rules,
        policies,
        noroutes,
        snats,
        dnats,
        antispoof: antispoof.0,
        antispoof_line: if antispoof.1 == 0 {
            netinit_line
        } else {
            antispoof.1
        },
        log: LogCfg {
            line: if log.line == 0 {
                netinit_line
            } else {
                log.line
            },
            ..log
        },
        counters,
        auth,
        group,
        instances,
        sync,
    })
}

impl Site {
    fn policy_lookup<'a>(policies: &'a [Policy], s: &str, d: &str) -> Option<&'a Policy> {
        for (a, b) in [(s, d), (s, "all"), ("all", d), ("all", "all")] {
            if let Some(p) = policies.iter().find(|p| p.src == a && p.dst == b) {
                return Some(p);
            }
        }
        None
    }
}

fn l4_overlap(a: &[L4], b: &[L4]) -> bool {
    for x in a {
        for y in b {
            if let (
                L4::Ports {
                    tcp: t1,
                    udp: u1,
                    ports: p1,
                },
                L4::Ports {
                    tcp: t2,
                    udp: u2,
                    ports: p2,
                },
            ) = (x, y)
            {
                if (t1 & t2) || (u1 & u2) {
                    for r1 in p1 {
                        for r2 in p2 {
                            if r1.0 <= r2.1 && r2.0 <= r1.1 {
                                return true;
                            }
                        }
                    }
                }
            }
        }
    }
    false
}

fn find_iface<'a>(ifaces: &'a [Iface], name: &str) -> Option<&'a Iface> {
    ifaces.iter().find(|i| i.name == name)
}

fn resolve_on(i: &Iface, on: &NatOn) -> Result<Ipv4Addr, String> {
    match on {
        NatOn::Vip => i.vip4.ok_or_else(|| {
            format!(
                "{} has no VIP (its line has no master-backup-vip-vrid spec)",
                i.name
            )
        }),
        NatOn::Ip(IpAddr::V4(a)) => Ok(*a),
        NatOn::Ip(a) => Err(format!("{a} is not IPv4")),
    }
}

#[allow(clippy::too_many_arguments)]
fn mk_iface(
    cx: &mut Ctx,
    l: &Line,
    name: String,
    ifname: String,
    dev: String,
    vid: Option<u16>,
    net: Ipv4Addr,
    mask: u8,
    gw: Option<(Ipv4Addr, Tok)>,
    addr: Option<(AddrSpec, Tok)>,
    bcast: Option<Ipv4Addr>,
    bcast_tok: Option<&Tok>,
) -> Iface {
    let n = Net::new(IpAddr::V4(net), mask);
    if n.trunc().addr != IpAddr::V4(net) {
        cx.err(
            l,
            &l.toks[3].clone(),
            format!(
                "{net} is not the network address of /{mask} (that would be {})",
                n.network()
            ),
            format!("write {}", n.network()),
        );
    }
    let n = n.trunc();
    let computed = n.broadcast4().unwrap();
    if let (Some(b), Some(t)) = (bcast, bcast_tok) {
        if b != computed {
            cx.warn(l, t, format!("broadcast {b} does not match {n} (expected {computed}); kept as written for compatibility"), format!("write {computed} or -"));
        }
    }
    let mut i = Iface {
        name,
        ifname,
        dev,
        vid,
        line: l.loc.line,
        net4: n,
        gw4: gw.as_ref().map(|g| g.0),
        master4: None,
        backup4: None,
        vip4: None,
        vrid: None,
        star: false,
        bcast: bcast.unwrap_or(computed),
        v6: Vec::new(),
        zone: String::new(),
        uplink: false,
    };
    if let Some((g, t)) = &gw {
        if !n.contains(IpAddr::V4(*g)) {
            cx.err(
                l,
                t,
                format!("gateway {g} is outside {n}"),
                "use a gateway inside the interface's network",
            );
        }
    }
    if let Some((a, t)) = addr {
        let v4 = |x: IpAddr| match x {
            IpAddr::V4(a) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let check = |cx: &mut Ctx, x: IpAddr| {
            if !n.contains(x) {
                cx.err(
                    l,
                    &t,
                    format!("{x} is outside {n}"),
                    "use addresses inside the interface's network",
                );
            } else if x == n.network() || Some(x) == n.broadcast4().map(IpAddr::V4) {
                cx.err(
                    l,
                    &t,
                    format!("{x} is the network or broadcast address of {n}"),
                    "use a host address",
                );
            }
        };
        match a {
            AddrSpec::Plain(x) => {
                check(cx, x);
                i.master4 = Some(v4(x));
                i.backup4 = Some(v4(x));
            }
            AddrSpec::V(v) => {
                for x in [v.master, v.backup, v.vip] {
                    check(cx, x);
                }
                i.master4 = Some(v4(v.master));
                i.backup4 = Some(v4(v.backup));
                i.vip4 = Some(v4(v.vip));
                i.vrid = v.vrid;
                i.star = v.star;
            }
        }
        if let Some((g, _)) = &gw {
            if Some(*g) == i.master4 || Some(*g) == i.backup4 || Some(*g) == i.vip4 {
                cx.err(
                    l,
                    &t,
                    format!("the gateway {g} is one of the router's own addresses"),
                    "the gateway is the upstream router, not this pair",
                );
            }
        }
    }
    i
}
