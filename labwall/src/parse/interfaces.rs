//! Interface statements: NETINIT, VLAN, DEV, ADDR6 and SYNC (docs/labwall.md, "The language in
//! one screen").

use super::cursor::{valid_ident, valid_ifname, LineParser};
use super::Stmt;
use crate::net::Net;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `NETINIT <extdev> <intdev> [<dev>...]`: the physical devices, the first is the uplink.
pub(super) fn netinit(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    const F: &str = "NETINIT <extdev> <intdev> [<dev>...]";
    if l.toks.len() < 2 {
        p.tok(1, "uplink device", F);
        return None;
    }
    let devs = l.toks[1..].to_vec();
    for d in &devs {
        if !valid_ifname(&d.text) {
            p.err(
                d,
                format!("`{}` is not an interface name", d.text),
                "a Linux interface name (max 15 chars)",
                "",
            );
            return None;
        }
    }
    Some(Stmt::NetInit { devs })
}

/// `VLAN <vid> <dev> <network> <addr|vspec> <netmask|/len> [<bcast>|-] [<Name>]`: an internal
/// VLAN interface on a NETINIT device.
pub(super) fn vlan(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "VLAN <vid> <dev> <network> <gw|master-backup-vip-vrid[*]> <netmask|/len> [<broadcast>|-] [<Name>]";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    let vt = p.tok(1, "VLAN id", F)?;
    let vid = match vt.text.parse::<u16>() {
        Ok(v) if (1..=4094).contains(&v) => v,
        _ => {
            p.err(
                &vt,
                format!("`{}` is not a VLAN id", vt.text),
                "a number between 1 and 4094",
                "",
            );
            return None;
        }
    };
    let dev = p.tok(2, "parent device", F)?;
    if !valid_ifname(&dev.text) {
        p.err(
            &dev,
            format!("`{}` is not an interface name", dev.text),
            "a Linux interface name",
            "",
        );
        return None;
    }
    let (net, _) = p.ip4(3, "network", F)?;
    let addr_tok = p.tok(4, "router address or master-backup-vip-vrid[*]", F)?;
    let addr = p.addr_spec(&addr_tok, true, true);
    let mask = p.mask(5, F);
    let (bcast, bcast_tok) = match t(6) {
        None | Some("-") => (None, l.toks.get(6).cloned()),
        Some(_) => match p.ip4(6, "broadcast", F) {
            Some((a, tk)) => (Some(a), Some(tk)),
            None => return None,
        },
    };
    let name = l.toks.get(7).cloned();
    if let Some(n) = &name {
        if !valid_ident(&n.text) {
            p.err(
                n,
                format!("`{}` is not a valid name", n.text),
                "letters, digits or _, starting with a letter",
                "",
            );
            return None;
        }
    }
    p.too_many(8, F);
    Some(Stmt::Vlan {
        vid,
        dev,
        net,
        addr: addr?,
        addr_tok,
        mask: mask?,
        bcast,
        bcast_tok,
        name,
    })
}

/// `DEV <Name> <dev> <network> <gateway|-> <netmask|/len> [<addr|vspec>] [<bcast>|-]`: an
/// interface on the device itself (the uplink, or an untagged internal network).
pub(super) fn dev(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "DEV <Name> <dev> <network> <gateway|-> <netmask|/len> [<addr|master-backup-vip-vrid[*]>] [<broadcast>|-]";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    let name = p.tok(1, "name", F)?;
    if !valid_ident(&name.text) {
        p.err(
            &name,
            format!("`{}` is not a valid name", name.text),
            "letters, digits or _, starting with a letter",
            "",
        );
        return None;
    }
    let dev = p.tok(2, "device", F)?;
    if !valid_ifname(&dev.text) {
        p.err(
            &dev,
            format!("`{}` is not an interface name", dev.text),
            "a Linux interface name",
            "",
        );
        return None;
    }
    let (net, _) = p.ip4(3, "network", F)?;
    let gw_tok = p.tok(4, "gateway", F)?;
    let gw = if gw_tok.text == "-" {
        None
    } else {
        match gw_tok.text.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.err(
                    &gw_tok,
                    format!("`{}` is not an IPv4 gateway", gw_tok.text),
                    "an IPv4 address or -",
                    "",
                );
                return None;
            }
        }
    };
    let mask = p.mask(5, F)?;
    let (addr, addr_tok) = match l.toks.get(6) {
        None => (None, None),
        Some(tk) if tk.text == "-" => (None, Some(tk.clone())),
        Some(tk) => {
            let tk = tk.clone();
            (Some(p.addr_spec(&tk, true, true)?), Some(tk))
        }
    };
    let (bcast, bcast_tok) = match t(7) {
        None | Some("-") => (None, l.toks.get(7).cloned()),
        Some(_) => {
            let (a, tk) = p.ip4(7, "broadcast", F)?;
            (Some(a), Some(tk))
        }
    };
    p.too_many(8, F);
    Some(Stmt::Dev {
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
    })
}

/// `ADDR6 <Name> <prefix/len> <addr|master-backup-vip> [GW <ip6>]`: IPv6 on a DEV/VLAN.
pub(super) fn addr6(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "ADDR6 <Name> <prefix/len> <addr|master-backup-vip> [GW <ip6>]";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    let name = p.tok(1, "interface name", F)?;
    let pt = p.tok(2, "prefix", F)?;
    let prefix = match Net::parse(&pt.text) {
        Some(n) if !n.is_v4() && !n.is_host() => n,
        _ => {
            p.err(
                &pt,
                format!("`{}` is not an IPv6 prefix", pt.text),
                "an IPv6 prefix such as 2001:db8:1::/64",
                "",
            );
            return None;
        }
    };
    let addr_tok = p.tok(3, "address", F)?;
    let addr = p.addr_spec(&addr_tok, false, false)?;
    let gw = match t(4) {
        None => None,
        Some("GW") => {
            let g = p.tok(5, "IPv6 gateway", F)?;
            match g.text.parse::<Ipv6Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    p.err(
                        &g,
                        format!("`{}` is not an IPv6 address", g.text),
                        "an IPv6 gateway address",
                        "",
                    );
                    return None;
                }
            }
        }
        Some(_) => {
            let tk = l.toks[4].clone();
            p.err(&tk, format!("unexpected `{}`", tk.text), F, "");
            return None;
        }
    };
    p.too_many(if gw.is_some() { 6 } else { 4 }, F);
    Some(Stmt::Addr6 {
        name,
        prefix,
        addr,
        addr_tok,
        gw,
    })
}

/// `SYNC <dev> <master_ip>-<backup_ip>`: the conntrackd link between the routers.
pub(super) fn sync(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "SYNC <dev> <master_ip>-<backup_ip>";
    let dev = p.tok(1, "device", F)?;
    let mb = p.tok(2, "master-backup", F)?;
    p.too_many(3, F);
    let parts: Vec<&str> = mb.text.split('-').collect();
    match (
        parts.len(),
        parts.first().and_then(|x| x.parse::<IpAddr>().ok()),
        parts.get(1).and_then(|x| x.parse::<IpAddr>().ok()),
    ) {
        (2, Some(m), Some(b)) => Some(Stmt::Sync {
            dev,
            master: m,
            backup: b,
        }),
        _ => {
            p.err(
                &mb,
                "not master-backup addresses",
                "e.g. 192.168.255.1-192.168.255.2",
                "",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{parse_text, AddrSpec, Stmt, VrrpSpec};

    fn msgs(src: &str) -> Vec<(String, u32)> {
        parse_text(src)
            .1
            .into_iter()
            .map(|d| (d.message, d.loc.col))
            .collect()
    }

    #[test]
    fn netinit_lists_devices() {
        let Some(Stmt::NetInit { devs }) = parse_text("NETINIT eth1 eth0").0 else {
            panic!()
        };
        let d: Vec<&str> = devs.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(d, ["eth1", "eth0"]);
        assert_eq!(msgs("NETINIT"), [("missing uplink device".into(), 8)]);
        assert_eq!(
            msgs("NETINIT eth1 bad/name"),
            [("`bad/name` is not an interface name".into(), 14)]
        );
    }

    #[test]
    fn vlan_with_vrrp_spec_and_name() {
        let (s, d) = parse_text(
            "VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-10* /24 - SRV",
        );
        assert!(d.is_empty(), "{d:?}");
        let Some(Stmt::Vlan {
            vid,
            dev,
            net,
            addr,
            mask,
            bcast,
            bcast_tok,
            name,
            ..
        }) = s
        else {
            panic!()
        };
        assert_eq!((vid, dev.text.as_str(), mask), (10, "eth0", 24));
        assert_eq!(net.to_string(), "172.16.10.0");
        assert_eq!(
            addr,
            AddrSpec::V(VrrpSpec {
                master: "172.16.10.2".parse().unwrap(),
                backup: "172.16.10.3".parse().unwrap(),
                vip: "172.16.10.1".parse().unwrap(),
                vrid: Some(10),
                star: true,
            })
        );
        assert_eq!((bcast, bcast_tok.unwrap().text.as_str()), (None, "-"));
        assert_eq!(name.unwrap().text, "SRV");
    }

    #[test]
    fn vlan_errors() {
        assert_eq!(
            msgs("VLAN 5000 eth0"),
            [("`5000` is not a VLAN id".into(), 6)]
        );
        // extra words are an error, but the statement is still parsed
        let (s, d) = parse_text("VLAN 10 eth0 172.16.10.0 172.16.10.1 /24 - N extra");
        assert!(matches!(s, Some(Stmt::Vlan { .. })));
        assert_eq!(d[0].message, "unexpected `extra`");
        assert_eq!(
            msgs("VLAN 10 eth0 172.16.10.0 172.16.10.1-172.16.10.2-172.16.10.3 /24"),
            [(
                "`172.16.10.1-172.16.10.2-172.16.10.3`: wrong number of fields in an address spec"
                    .into(),
                26
            )]
        );
    }

    #[test]
    fn dev_with_gateway_and_broadcast() {
        let Some(Stmt::Dev {
            name,
            gw,
            mask,
            addr,
            bcast,
            ..
        }) = parse_text(
            "DEV INTER eth1 10.1.1.0 10.1.1.254 255.255.255.0 10.1.1.2-10.1.1.3-10.1.1.4-101* 10.1.1.255",
        )
        .0
        else {
            panic!()
        };
        assert_eq!(name.text, "INTER");
        assert_eq!(gw, Some("10.1.1.254".parse().unwrap()));
        assert_eq!(mask, 24);
        assert!(matches!(
            addr,
            Some(AddrSpec::V(VrrpSpec {
                vrid: Some(101),
                star: true,
                ..
            }))
        ));
        assert_eq!(bcast, Some("10.1.1.255".parse().unwrap()));
        assert_eq!(
            msgs("DEV INTER eth1 10.1.1.0 x /24"),
            [("`x` is not an IPv4 gateway".into(), 25)]
        );
        assert_eq!(
            msgs("DEV INTER eth1 10.1.1.0 - /33"),
            [("`/33` is not a netmask".into(), 27)]
        );
    }

    #[test]
    fn addr6_forms() {
        let Some(Stmt::Addr6 { prefix, addr, gw, .. }) = parse_text(
            "ADDR6 VLAN10 2001:db8:10::/64 2001:db8:10::2-2001:db8:10::3-2001:db8:10::1 GW 2001:db8:10::fe",
        )
        .0
        else {
            panic!()
        };
        assert_eq!(prefix.to_string(), "2001:db8:10::/64");
        assert!(matches!(
            addr,
            AddrSpec::V(VrrpSpec {
                vrid: None,
                star: false,
                ..
            })
        ));
        assert_eq!(gw, Some("2001:db8:10::fe".parse().unwrap()));
        assert_eq!(
            msgs("ADDR6 X 10.0.0.0/8 ::1"),
            [("`10.0.0.0/8` is not an IPv6 prefix".into(), 9)]
        );
        assert_eq!(
            msgs("ADDR6 X 2001:db8::/64 2001:db8::1 FOO"),
            [("unexpected `FOO`".into(), 35)]
        );
        assert_eq!(
            msgs("ADDR6 X 2001:db8::/64 10.0.0.1"),
            [("`10.0.0.1` is not an IPv6 address".into(), 23)]
        );
    }

    #[test]
    fn sync_takes_two_addresses() {
        let Some(Stmt::Sync {
            dev,
            master,
            backup,
        }) = parse_text("SYNC eth2 192.168.255.1-192.168.255.2").0
        else {
            panic!()
        };
        assert_eq!(dev.text, "eth2");
        assert_eq!(master.to_string(), "192.168.255.1");
        assert_eq!(backup.to_string(), "192.168.255.2");
        assert_eq!(
            msgs("SYNC eth2 1.2.3.4"),
            [("not master-backup addresses".into(), 11)]
        );
    }
}
