//! Pass 2, the names rules refer to: IPv6 addresses of interfaces (ADDR6), zones, aliases and
//! services; then the zones every interface gets implicitly, the nftables chain names the zones
//! produce, and the DANGER check on multi-homed hosts.

use super::{Analysis, Findings};
use crate::diag::Diagnostic;
use crate::line::{Line, Token};
use crate::model::{Alias, Iface, V6Addr, Zone};
use crate::net::Net;
use crate::parse::{AddrSpec, Parsed, Stmt};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

/// Chain names labwall uses itself; a zone with one of these names would collide with them.
const RESERVED_ZONE_NAMES: [&str; 8] = [
    "input",
    "forward",
    "output",
    "antispoof",
    "pol",
    "noroute",
    "intra",
    "nat",
];

impl Analysis<'_> {
    /// Pass 2: ADDR6 attaches to interfaces, ZONE groups them, HOST/NET and SERVICE define the
    /// names of pass 3. After pass 1 because all of these refer to interfaces by name.
    pub(super) fn collect_names(&mut self, stmts: &[Parsed]) {
        for p in stmts {
            let l = &p.line;
            match &p.stmt {
                Stmt::Addr6 {
                    name,
                    prefix,
                    addr,
                    addr_tok,
                    gw,
                } => self.addr6(l, name, prefix, addr, addr_tok, *gw),
                Stmt::Zone { zone, names } => self.zone(l, zone, names),
                Stmt::Alias {
                    host: _,
                    alias,
                    nets,
                    mac: _,
                } => self.alias(l, alias, nets),
                Stmt::Service { name, items } => {
                    self.services.insert(name.text.clone(), items.clone());
                }
                _ => {}
            }
        }
    }

    /// ADDR6: addresses inside the prefix, a VIP only where IPv4 has a VRID, a gateway only on
    /// the uplink (DANGER), prefixes that do not overlap.
    fn addr6(
        &mut self,
        l: &Line,
        name: &Token,
        prefix: &Net,
        addr: &AddrSpec,
        addr_tok: &Token,
        gw: Option<Ipv6Addr>,
    ) {
        let out = &mut self.out;
        let Some(ix) = self.ifaces.iter().position(|i| i.name == name.text) else {
            out.err(
                l,
                name,
                format!("no DEV/VLAN named {}", name.text),
                "use the name of a DEV line or VLAN<vid> / the VLAN's name column",
            );
            return;
        };
        let (m, b, vip) = match addr {
            AddrSpec::Plain(a) => (*a, *a, None),
            AddrSpec::V(v) => {
                if v.vrid.is_some() {
                    out.err(l, addr_tok, "ADDR6 takes master-backup-vip; the VRID comes from the interface's IPv4 line", "remove the -vrid part");
                }
                (v.master, v.backup, Some(v.vip))
            }
        };
        for a in [Some(m), Some(b), vip, gw.map(IpAddr::V6)]
            .into_iter()
            .flatten()
        {
            if !prefix.contains(a) {
                out.err(
                    l,
                    addr_tok,
                    format!("{a} is outside {prefix}"),
                    "use addresses inside the prefix",
                );
            }
        }
        let iface = &self.ifaces[ix];
        if vip.is_some() && iface.vrid.is_none() {
            out.err(
                l,
                addr_tok,
                format!(
                    "IPv6 VIP on {} but its IPv4 line has no master-backup-vip-vrid",
                    name.text
                ),
                "give the interface a VRRP spec on its DEV/VLAN line, or use a plain address",
            );
        }
        if gw.is_some() && !iface.uplink {
            out.err(
                l,
                name,
                format!(
                    "DANGER: IPv6 gateway on {}, which is not the uplink",
                    name.text
                ),
                "only the uplink may carry a default route",
            );
        }
        check_v6_overlaps(out, l, name, prefix, &self.ifaces);
        self.ifaces[ix].v6.push(V6Addr {
            prefix: *prefix,
            master: m,
            backup: b,
            vip,
            gw,
            line: l.loc.line,
        });
    }

    /// ZONE: declared once; each member is a known interface in no other zone.
    fn zone(&mut self, l: &Line, zone: &Token, names: &[Token]) {
        if self.zones.iter().any(|z| z.name == zone.text) {
            self.out.err(
                l,
                zone,
                format!("zone {} declared twice", zone.text),
                "list all its interfaces on one ZONE line",
            );
            return;
        }
        let mut members = Vec::new();
        for n in names {
            match self.ifaces.iter_mut().find(|i| i.name == n.text) {
                None => self.out.err(
                    l,
                    n,
                    format!("no DEV/VLAN named {}", n.text),
                    "use a DEV name or VLAN<vid> (or the VLAN's name column)",
                ),
                Some(i) if !i.zone.is_empty() => {
                    let z = i.zone.clone();
                    self.out.err(
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
        self.zones.push(Zone {
            name: zone.text.clone(),
            ifaces: members,
            line: l.loc.line,
        });
    }

    /// HOST/NET: one definition per alias.
    fn alias(&mut self, l: &Line, alias: &Token, nets: &[(Net, Token)]) {
        if self.aliases.iter().any(|a| a.0.name == alias.text) {
            self.out.err(
                l,
                alias,
                format!("alias {} defined twice", alias.text),
                "merge the addresses into one line",
            );
            return;
        }
        self.aliases.push((
            Alias {
                name: alias.text.clone(),
                nets: nets.iter().map(|n| n.0).collect(),
                line: l.loc.line,
            },
            l.clone(),
        ));
    }

    /// An interface named in no ZONE line is its own zone, named like the interface
    /// (docs/labwall.md, "Decisions where the spec is silent").
    pub(super) fn add_implicit_zones(&mut self) {
        for (i, l) in self.ifaces.iter_mut().zip(&self.iface_lines) {
            if !i.zone.is_empty() {
                continue;
            }
            if self.zones.iter().any(|z| z.name == i.name) {
                self.out.err(
                    l,
                    &l.toks[1].clone(),
                    format!("{} has no ZONE but a zone with its name exists", i.name),
                    format!("add {} to a ZONE line", i.name),
                );
            }
            i.zone = i.name.clone();
            self.zones.push(Zone {
                name: i.name.clone(),
                ifaces: vec![i.ifname.clone()],
                line: i.line,
            });
        }
    }

    /// Zone pairs become nftables chains `<src>_<dst>`: those names must be unique, must not
    /// be labwall's own chains and cannot contain `-`.
    pub(super) fn check_chain_names(&mut self) {
        let zones = &self.zones;
        let out = &mut self.out;
        for z in zones {
            if RESERVED_ZONE_NAMES.contains(&z.name.as_str()) {
                out.diags.push(
                    Diagnostic::error(
                        out.loc(z.line),
                        format!("zone name {} is reserved for labwall's own chains", z.name),
                    )
                    .fix("rename the zone"),
                );
            }
        }
        let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        names.push("fw");
        for a in &names {
            for b in &names {
                let c = format!("{a}_{b}");
                let Some((x, y)) = seen.get(&c) else {
                    seen.insert(c, (a.to_string(), b.to_string()));
                    continue;
                };
                let line = zones
                    .iter()
                    .find(|z| z.name == *a)
                    .map(|z| z.line)
                    .unwrap_or(1);
                out.diags.push(
                    Diagnostic::error(
                        out.loc(line),
                        format!("zones {a}->{b} and {x}->{y} would share the nftables chain {c}"),
                    )
                    .fix("rename a zone so that names joined with _ stay distinct"),
                );
            }
        }
        for z in zones.iter().filter(|z| z.name.contains('-')) {
            out.diags.push(
                Diagnostic::error(
                    out.loc(z.line),
                    format!(
                        "zone name {} contains '-', which nftables chain names cannot hold",
                        z.name
                    ),
                )
                .fix("rename it with _ or letters only (or put it in a ZONE line)"),
            );
        }
    }

    /// DANGER: a HOST with addresses in two zones (longest prefix, as routing would) can pass
    /// traffic between them without going through the routers.
    pub(super) fn check_multihomed_hosts(&mut self) {
        for (a, l) in &self.aliases {
            if l.toks[0].text != "HOST" {
                continue;
            }
            let zs: BTreeSet<String> = a
                .nets
                .iter()
                .filter_map(|n| zone_by_longest_prefix(&self.ifaces, n.addr))
                .collect();
            if zs.len() > 1 {
                let z: Vec<String> = zs.into_iter().collect();
                self.out.err(l, &l.toks[1], format!("DANGER: host {} has addresses in zones {}: a multi-homed host (or a VM on it) can pass traffic between those zones without going through the routers' firewall", a.name, z.join(", ")), "give the host addresses in one zone only and let the routers forward between zones");
            }
        }
    }

    /// After pass 3: an alias no rule or DNAT uses is probably a typo somewhere (a warning).
    pub(super) fn warn_unused_aliases(&mut self) {
        for (a, l) in &self.aliases {
            if !self.used_alias.contains(&a.name) {
                self.out.warn(
                    l,
                    &l.toks[1],
                    format!("alias {} is never used", a.name),
                    "remove it, or use it in a rule (zone:alias)",
                );
            }
        }
    }
}

/// An IPv6 prefix must not overlap one already given to any interface.
fn check_v6_overlaps(out: &mut Findings, l: &Line, name: &Token, prefix: &Net, ifaces: &[Iface]) {
    for other in ifaces {
        for o in &other.v6 {
            if o.prefix.overlaps(prefix) {
                out.err(
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
}

/// The zone of the interface whose network holds `a` most specifically.
fn zone_by_longest_prefix(ifaces: &[Iface], a: IpAddr) -> Option<String> {
    ifaces
        .iter()
        .flat_map(|i| i.nets().into_iter().map(move |x| (x, i)))
        .filter(|(x, _)| x.contains(a))
        .max_by_key(|(x, _)| x.len)
        .map(|(_, i)| i.zone.clone())
}

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};

    #[test]
    fn zones_explicit_and_implicit() {
        let s = analyse_text(&format!("{BASE}ZONE lan VLAN10 VLAN20\n"), "MASTER")
            .0
            .unwrap();
        let z: Vec<(&str, Vec<&str>)> = s
            .zones
            .iter()
            .map(|z| {
                (
                    z.name.as_str(),
                    z.ifaces.iter().map(|i| i.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            z,
            [("lan", vec!["vlan10", "vlan20"]), ("INTER", vec!["eth1"])]
        );
        assert_eq!(s.ifaces[1].zone, "lan");
    }

    #[test]
    fn zone_errors() {
        let m = messages(&format!(
            "{BASE}ZONE a VLAN10 NOPE\nZONE b VLAN10\nZONE a VLAN20\nZONE VLAN20 INTER\n"
        ));
        assert_eq!(
            m[..5],
            [
                "no DEV/VLAN named NOPE",
                "VLAN10 is already in zone a",
                "zone a declared twice",
                "VLAN20 has no ZONE but a zone with its name exists",
                // the interface VLAN20 and the zone VLAN20 are now two zones of that name
                "zones a->VLAN20 and a->VLAN20 would share the nftables chain a_VLAN20",
            ]
        );
    }

    #[test]
    fn chain_name_checks() {
        let m = messages(&format!(
            "{BASE}ZONE input VLAN10\nZONE a_b VLAN20\nZONE a INTER\n"
        ));
        assert_eq!(m, ["zone name input is reserved for labwall's own chains"]);
        let m = messages(&format!(
            "{BASE}ZONE a_b VLAN10\nZONE c VLAN20\nZONE a INTER\nZONE b_c NOPE\n"
        ));
        assert_eq!(
            m,
            [
                "no DEV/VLAN named NOPE",
                "zones a->b_c and a_b->c would share the nftables chain a_b_c"
            ]
        );
    }

    #[test]
    fn addr6_checks() {
        let m = messages(&format!(
            "{BASE}ADDR6 VLAN20 2001:db8:20::/64 2001:db8:20::2-2001:db8:20::3-2001:db8:20::1\nADDR6 VLAN10 2001:db8:20::/48 2001:db8:30::1 GW 2001:db8:20::fe\nADDR6 NOPE 2001:db8:40::/64 2001:db8:40::1\n"
        ));
        assert_eq!(
            m,
            [
                "IPv6 VIP on VLAN20 but its IPv4 line has no master-backup-vip-vrid",
                // master and backup: a plain address is both
                "2001:db8:30::1 is outside 2001:db8:20::/48",
                "2001:db8:30::1 is outside 2001:db8:20::/48",
                "DANGER: IPv6 gateway on VLAN10, which is not the uplink",
                "prefix 2001:db8:20::/48 overlaps 2001:db8:20::/64 of VLAN20 (line 6)",
                "no DEV/VLAN named NOPE",
            ]
        );
    }

    #[test]
    fn multihomed_host_is_danger_but_net_is_not() {
        let m = messages(&format!(
            "{BASE}HOST two 172.16.10.5 172.16.20.5\nNET wide 172.16.10.0/24 172.16.20.0/24\nALLOW VLAN10:two VLAN20:wide ssh\n"
        ));
        assert_eq!(
            m,
            ["DANGER: host two has addresses in zones VLAN10, VLAN20: a multi-homed host (or a VM on it) can pass traffic between those zones without going through the routers' firewall"]
        );
    }

    #[test]
    fn unused_alias_is_a_warning() {
        let (site, d) = analyse_text(&format!("{BASE}NET lonely 10.9.0.0/16\n"), "MASTER");
        assert!(site.is_some());
        assert_eq!(d[0].message, "alias lonely is never used");
        assert!(!d[0].is_error());
    }
}
