//! Pass 3, NAT: SNAT, MASQ and DNAT. A DNAT also adds the rule that accepts the translated
//! connections in the forward chain (docs/labwall.md, "Decisions where the spec is silent").

use super::Analysis;
use crate::line::{Line, Token};
use crate::model::services::l4_overlap;
use crate::model::{l4_of, AddrSel, Dnat, Iface, Rule, Snat, L4};
use crate::net::Net;
use crate::parse::{NatOn, RuleAction};
use std::net::{IpAddr, Ipv4Addr};

impl Analysis<'_> {
    /// The DEV/VLAN a NAT line names (None: reported).
    fn nat_iface(&mut self, l: &Line, name: &Token) -> Option<Iface> {
        let found = self.ifaces.iter().find(|i| i.name == name.text).cloned();
        if found.is_none() {
            self.out.err(
                l,
                name,
                format!("no DEV/VLAN named {}", name.text),
                "use the name of a DEV/VLAN line",
            );
        }
        found
    }

    /// `NAT SNAT <Name> TO <ip|VIP>`: a warning if the address is outside the interface's
    /// network (replies would need a route upstream).
    pub(super) fn snat(&mut self, l: &Line, name: &Token, to: &NatOn) {
        let Some(i) = self.nat_iface(l, name) else {
            return;
        };
        let ip = match resolve_on(&i, to) {
            Ok(a) => a,
            Err(e) => {
                self.out.err(
                    l,
                    &l.toks[4].clone(),
                    e,
                    "give an IPv4 address or VIP of an interface with a VRRP spec",
                );
                return;
            }
        };
        if !i.net4.contains(IpAddr::V4(ip)) {
            self.out.warn(
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
        self.snats.push(Snat {
            ifname: i.ifname.clone(),
            to: Some(ip),
            line: l.loc.line,
        });
    }

    /// `NAT MASQ <Name>`.
    pub(super) fn masq(&mut self, l: &Line, name: &Token) {
        let Some(i) = self.nat_iface(l, name) else {
            return;
        };
        self.snats.push(Snat {
            ifname: i.ifname.clone(),
            to: None,
            line: l.loc.line,
        });
    }

    /// `NAT DNAT <Name>:<ip|VIP> <service> TO <alias|ip>[:port]`: a tcp/udp service, an IPv4
    /// target on one of the routers' networks, no second DNAT of the same address and port;
    /// plus the forward rule that accepts what it translated (`ct status dnat`).
    pub(super) fn dnat(
        &mut self,
        l: &Line,
        name: &Token,
        on: &NatOn,
        service: &Token,
        to: &Token,
        port: Option<u16>,
    ) {
        let Some(i) = self.nat_iface(l, name) else {
            return;
        };
        let on_ip = match resolve_on(&i, on) {
            Ok(a) => a,
            Err(e) => {
                self.out.err(
                    l,
                    &l.toks[2].clone(),
                    e,
                    "use <Name>:VIP on an interface with a VRRP spec, or <Name>:<ip>",
                );
                return;
            }
        };
        let Some(l4) = self.dnat_ports(l, service) else {
            return;
        };
        let Some(target) = self.dnat_target(l, to) else {
            return;
        };
        let Some(tz) = self
            .ifaces
            .iter()
            .find(|x| x.net4.contains(IpAddr::V4(target)))
        else {
            self.out.err(
                l,
                to,
                format!("DNAT target {target} is in no interface's network"),
                "forward to a host on one of the routers' networks",
            );
            return;
        };
        let dst_zone = tz.zone.clone();
        for d in &self.dnats {
            if d.on == on_ip && l4_overlap(&d.l4, &l4) {
                self.out.err(
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
        let fwd_l4 = translated_ports(&l4, port);
        self.dnats.push(Dnat {
            ifname: i.ifname.clone(),
            on: on_ip,
            l4,
            to: target,
            port,
            line: l.loc.line,
        });
        self.rules.push(Rule {
            line: l.loc.line,
            action: RuleAction::Allow,
            src_zone: i.zone.clone(),
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

    /// The tcp/udp matches of a DNAT's service (None: unknown or portless, reported).
    fn dnat_ports(&mut self, l: &Line, service: &Token) -> Option<Vec<L4>> {
        let Some(items) = self.service(&service.text) else {
            self.out.err(
                l,
                service,
                format!("unknown service {}", service.text),
                "define it with SERVICE or use a built-in",
            );
            return None;
        };
        let l4: Vec<L4> = l4_of(&items)
            .into_iter()
            .filter(|x| matches!(x, L4::Ports { .. }))
            .collect();
        if l4.is_empty() {
            self.out.err(
                l,
                service,
                format!("service {} has no tcp/udp port to forward", service.text),
                "DNAT a tcp/udp service",
            );
            return None;
        }
        Some(l4)
    }

    /// A DNAT target: an IPv4 address, or a HOST alias with exactly one IPv4 address (marks
    /// the alias used). None: reported.
    fn dnat_target(&mut self, l: &Line, to: &Token) -> Option<Ipv4Addr> {
        if let Ok(a) = to.text.parse::<Ipv4Addr>() {
            return Some(a);
        }
        let Some((al, _)) = self.aliases.iter().find(|a| a.0.name == to.text) else {
            self.out.err(
                l,
                to,
                format!("undefined alias {}", to.text),
                "define it with HOST, or give an IPv4 address",
            );
            return None;
        };
        self.used_alias.insert(al.name.clone());
        let v4: Vec<Ipv4Addr> = al
            .nets
            .iter()
            .filter_map(|n| match n.addr {
                IpAddr::V4(a) if n.is_host() => Some(a),
                _ => None,
            })
            .collect();
        if v4.len() != 1 {
            self.out.err(
                l,
                to,
                format!(
                    "alias {} must have exactly one IPv4 host address to be a DNAT target",
                    to.text
                ),
                "use a HOST alias with one IPv4 address, or an address",
            );
            return None;
        }
        Some(v4[0])
    }
}

/// The ports the forwarded connection has after translation (`TO host:port` changes them).
fn translated_ports(l4: &[L4], port: Option<u16>) -> Vec<L4> {
    let Some(pn) = port else {
        return l4.to_vec();
    };
    l4.iter()
        .map(|x| match x {
            L4::Ports { tcp, udp, .. } => L4::Ports {
                tcp: *tcp,
                udp: *udp,
                ports: vec![(pn, pn)],
            },
            o => o.clone(),
        })
        .collect()
}

/// The address a NAT line means on interface `i`: its VIP or the given IPv4 address.
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

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};
    use crate::model::L4;

    #[test]
    fn dnat_translates_and_accepts() {
        let src = format!("{BASE}HOST web 172.16.10.21\nNAT DNAT INTER:VIP https TO web:8443\nNAT SNAT INTER TO VIP\nNAT MASQ VLAN20\n");
        let (s, d) = analyse_text(&src, "MASTER");
        assert!(d.is_empty(), "{d:?}");
        let s = s.unwrap();
        let dn = &s.dnats[0];
        assert_eq!(
            (
                dn.ifname.as_str(),
                dn.on.to_string(),
                dn.to.to_string(),
                dn.port
            ),
            ("eth1", "10.1.1.4".into(), "172.16.10.21".into(), Some(8443))
        );
        let r = &s.rules[0];
        assert!(r.dnat_only);
        assert_eq!(
            (r.src_zone.as_str(), r.dst_zone.as_str()),
            ("INTER", "VLAN10")
        );
        assert_eq!(
            r.l4,
            [L4::Ports {
                tcp: true,
                udp: false,
                ports: vec![(8443, 8443)]
            }]
        );
        let sn: Vec<(&str, Option<String>)> = s
            .snats
            .iter()
            .map(|n| (n.ifname.as_str(), n.to.map(|a| a.to_string())))
            .collect();
        assert_eq!(sn, [("eth1", Some("10.1.1.4".into())), ("vlan20", None)]);
    }

    #[test]
    fn nat_errors() {
        let m = messages(&format!(
            "{BASE}HOST two 172.16.10.21 172.16.10.22
NAT DNAT NOPE:VIP https TO 172.16.10.5
NAT DNAT VLAN20:VIP https TO 172.16.10.5
NAT DNAT INTER:VIP ping TO 172.16.10.5
NAT DNAT INTER:VIP telnet TO 172.16.10.5
NAT DNAT INTER:VIP https TO two
NAT DNAT INTER:VIP https TO 192.168.1.1
NAT DNAT INTER:VIP https TO 172.16.10.5
NAT DNAT INTER:VIP https TO 172.16.10.6
NAT SNAT INTER TO 192.168.9.9
NAT MASQ NOPE
"
        ));
        assert_eq!(
            m,
            [
                "no DEV/VLAN named NOPE",
                "VLAN20 has no VIP (its line has no master-backup-vip-vrid spec)",
                "service ping has no tcp/udp port to forward",
                "unknown service telnet",
                "alias two must have exactly one IPv4 host address to be a DNAT target",
                "DNAT target 192.168.1.1 is in no interface's network",
                "duplicate DNAT: 10.1.1.4 https is already forwarded at line 13",
                "SNAT address 192.168.9.9 is outside INTER's network 10.1.1.0/24",
                "no DEV/VLAN named NOPE",
            ]
        );
    }
}
