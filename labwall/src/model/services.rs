//! Services: the built-in names and the conversion of service items into the merged layer-4
//! matches ([`L4`]) that rules and DNAT use.

use super::L4;
use crate::parse::SvcItem;

/// Built-in services, overridable by SERVICE (the list is in docs/labwall.md, "The language in
/// one screen").
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

/// Two DNATs of the same address collide if they share a protocol (tcp/udp) and a port.
pub(super) fn l4_overlap(a: &[L4], b: &[L4]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(tcp: bool, udp: bool, p: &[(u16, u16)]) -> L4 {
        L4::Ports {
            tcp,
            udp,
            ports: p.to_vec(),
        }
    }

    #[test]
    fn builtins() {
        assert_eq!(builtin_service("vrrp"), Some(vec![SvcItem::Proto(112)]));
        assert_eq!(
            l4_of(&builtin_service("radius").unwrap()),
            [ports(false, true, &[(1812, 1813)])]
        );
        assert!(builtin_service("telnet").is_none());
    }

    #[test]
    fn tcp_and_udp_with_the_same_ports_share_one_match() {
        assert_eq!(
            l4_of(&builtin_service("dns").unwrap()),
            [ports(true, true, &[(53, 53)])]
        );
        let items = [
            SvcItem::Proto(47),
            SvcItem::Ports {
                proto: "udp".into(),
                lo: 5,
                hi: 5,
            },
            SvcItem::Ports {
                proto: "tcp".into(),
                lo: 9,
                hi: 9,
            },
            SvcItem::Ports {
                proto: "tcp".into(),
                lo: 1,
                hi: 2,
            },
            SvcItem::Proto(47),
        ];
        // ports first (sorted, tcp before udp), then the rest once each, in order
        assert_eq!(
            l4_of(&items),
            [
                ports(true, false, &[(1, 2), (9, 9)]),
                ports(false, true, &[(5, 5)]),
                L4::Proto(47)
            ]
        );
    }

    #[test]
    fn overlap_needs_a_shared_protocol_and_port() {
        let https = [ports(true, false, &[(443, 443)])];
        assert!(l4_overlap(&https, &[ports(true, true, &[(400, 500)])]));
        assert!(!l4_overlap(&https, &[ports(false, true, &[(443, 443)])]));
        assert!(!l4_overlap(&https, &[ports(true, false, &[(444, 450)])]));
        assert!(!l4_overlap(&[L4::Proto(6)], &https));
    }
}
