//! Names used by rules: ZONE, HOST/NET aliases and SERVICE (docs/labwall.md, "The language in
//! one screen").

use super::cursor::{valid_ident, LineParser};
use super::{Stmt, SvcItem};
use crate::net::Net;

/// `ZONE <zone> <Name>...`: interfaces grouped into one firewall zone.
pub(super) fn zone(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    const F: &str = "ZONE <zone> <Name>...";
    let zone = p.tok(1, "zone name", F)?;
    if !valid_ident(&zone.text) || zone.text == "all" || zone.text == "fw" {
        p.err(
            &zone,
            format!("`{}` cannot be a zone name", zone.text),
            "an identifier other than all/fw (max 24 chars)",
            "",
        );
        return None;
    }
    p.tok(2, "at least one DEV/VLAN name", F)?;
    Some(Stmt::Zone {
        zone,
        names: l.toks[2..].to_vec(),
    })
}

/// `HOST <alias> <ip>...` and `NET <alias> <cidr>...`: named addresses for rules.
pub(super) fn alias(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    let kw = l.toks[0].clone();
    let host = kw.text == "HOST";
    let f = if host {
        "HOST <alias> <ip>..."
    } else {
        "NET <alias> <cidr>..."
    };
    let alias = p.tok(1, "alias", f)?;
    if !valid_ident(&alias.text) || ["VIP", "fw", "all"].contains(&alias.text.as_str()) {
        p.err(
            &alias,
            format!("`{}` is not a valid alias", alias.text),
            "letters, digits or _, starting with a letter",
            "",
        );
        return None;
    }
    p.tok(2, "address", f)?;
    let mut nets = Vec::new();
    let mut end = l.toks.len();
    let mut mac = None;
    if host && end >= 4 && l.toks[end - 2].text == "MAC" {
        let t = l.toks[end - 1].clone();
        mac = Some((p.mac_tok(&t, "HOST <alias> <ip>... [MAC <mac>]")?, t));
        end -= 2;
    }
    for a in &l.toks[2..end] {
        match Net::parse(&a.text) {
            Some(n) if !host || n.is_host() => nets.push((n, a.clone())),
            _ => {
                p.err(
                    a,
                    format!(
                        "`{}` is not {}",
                        a.text,
                        if host {
                            "an IP address"
                        } else {
                            "an IP prefix"
                        }
                    ),
                    f,
                    "",
                );
                return None;
            }
        }
    }
    Some(Stmt::Alias {
        host,
        alias,
        nets,
        mac,
    })
}

/// `SERVICE <name> tcp/<p[-p]>[,p]... udp/... proto/<n> icmp/echo`.
pub(super) fn service(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    const F: &str = "SERVICE <name> <tcp|udp>/<port[-port]>... | proto/<num> | icmp/echo";
    let name = p.tok(1, "service name", F)?;
    if !valid_ident(&name.text) {
        p.err(
            &name,
            format!("`{}` is not a valid service name", name.text),
            "letters, digits or _",
            "",
        );
        return None;
    }
    p.tok(2, "protocol/port", F)?;
    let mut items = Vec::new();
    for a in &l.toks[2..] {
        match parse_svc_item(&a.text) {
            Some(mut v) => items.append(&mut v),
            None => {
                p.err(
                    a,
                    format!("`{}` is not a protocol/port", a.text),
                    F,
                    "e.g. tcp/22, udp/1812,1813, tcp/8000-8080, proto/47",
                );
                return None;
            }
        }
    }
    Some(Stmt::Service { name, items })
}

/// `tcp/22`, `udp/1812,1813`, `tcp/8000-8080`, `proto/47`, `icmp/echo` (ping).
pub fn parse_svc_item(s: &str) -> Option<Vec<SvcItem>> {
    let (proto, rest) = s.split_once('/')?;
    match proto {
        "tcp" | "udp" => {
            let mut v = Vec::new();
            for part in rest.split(',') {
                let (lo, hi) = match part.split_once('-') {
                    Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
                    None => {
                        let x = part.parse::<u16>().ok()?;
                        (x, x)
                    }
                };
                if lo == 0 || hi < lo {
                    return None;
                }
                v.push(SvcItem::Ports {
                    proto: proto.to_string(),
                    lo,
                    hi,
                });
            }
            Some(v)
        }
        "proto" => {
            let n = rest.parse::<u8>().ok()?;
            Some(vec![SvcItem::Proto(n)])
        }
        "icmp" if rest == "echo" => Some(vec![SvcItem::Ping]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_svc_item;
    use crate::parse::{parse_text, Stmt, SvcItem};

    fn first_error(src: &str) -> (String, u32) {
        let d = parse_text(src).1;
        (d[0].message.clone(), d[0].loc.col)
    }

    #[test]
    fn zone_names_its_interfaces() {
        let Some(Stmt::Zone { zone, names }) = parse_text("ZONE lan VLAN10 VLAN20").0 else {
            panic!()
        };
        assert_eq!(zone.text, "lan");
        let n: Vec<&str> = names.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(n, ["VLAN10", "VLAN20"]);
        assert_eq!(
            first_error("ZONE fw X"),
            ("`fw` cannot be a zone name".into(), 6)
        );
        assert_eq!(
            first_error("ZONE lan"),
            ("missing at least one DEV/VLAN name".into(), 9)
        );
    }

    #[test]
    fn host_and_net_aliases() {
        let Some(Stmt::Alias {
            host, alias, nets, ..
        }) = parse_text("HOST web 172.16.10.21 2001:db8::21").0
        else {
            panic!()
        };
        assert!(host);
        assert_eq!(alias.text, "web");
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[1].1.col, 23);
        assert_eq!(
            first_error("HOST web 10.0.0.0/8"),
            ("`10.0.0.0/8` is not an IP address".into(), 10)
        );
        assert!(matches!(
            parse_text("NET n 10.0.0.0/8").0,
            Some(Stmt::Alias { host: false, .. })
        ));
        assert_eq!(
            first_error("NET n 10.0.0.0/33"),
            ("`10.0.0.0/33` is not an IP prefix".into(), 7)
        );
        assert_eq!(
            first_error("HOST VIP 1.2.3.4"),
            ("`VIP` is not a valid alias".into(), 6)
        );
    }

    #[test]
    fn host_with_a_mac_is_a_static_host() {
        let Some(Stmt::Alias { nets, mac, .. }) =
            parse_text("HOST pc 172.16.10.30 2001:db8::30 MAC 52:54:00:10:00:30").0
        else {
            panic!()
        };
        assert_eq!((nets.len(), mac.map(|m| m.0[5])), (2, Some(0x30)));
        assert_eq!(
            first_error("HOST pc 172.16.10.30 MAC 52:54"),
            ("`52:54` is not a MAC address".into(), 26)
        );
    }

    #[test]
    fn service_items_are_collected() {
        let Some(Stmt::Service { name, items }) = parse_text("SERVICE web tcp/80,443 udp/53").0
        else {
            panic!()
        };
        assert_eq!(name.text, "web");
        assert_eq!(
            items,
            vec![
                SvcItem::Ports {
                    proto: "tcp".into(),
                    lo: 80,
                    hi: 80
                },
                SvcItem::Ports {
                    proto: "tcp".into(),
                    lo: 443,
                    hi: 443
                },
                SvcItem::Ports {
                    proto: "udp".into(),
                    lo: 53,
                    hi: 53
                },
            ]
        );
        let d = parse_text("SERVICE web tcp/x").1;
        assert_eq!(d[0].message, "`tcp/x` is not a protocol/port");
        assert_eq!(d[0].loc.col, 13);
    }

    #[test]
    fn service_item_forms() {
        assert_eq!(parse_svc_item("udp/1812,1813").unwrap().len(), 2);
        assert!(parse_svc_item("tcp/0").is_none());
        assert!(parse_svc_item("tcp/9-8").is_none());
        assert_eq!(
            parse_svc_item("tcp/8000-8080").unwrap(),
            vec![SvcItem::Ports {
                proto: "tcp".into(),
                lo: 8000,
                hi: 8080
            }]
        );
        assert_eq!(
            parse_svc_item("proto/47").unwrap(),
            vec![SvcItem::Proto(47)]
        );
        assert_eq!(parse_svc_item("icmp/echo").unwrap(), vec![SvcItem::Ping]);
        assert!(parse_svc_item("icmp/any").is_none());
    }
}
