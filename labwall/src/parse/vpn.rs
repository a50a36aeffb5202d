//! Statements of the vpn role (docs/labwall.md, "VPN servers (vpn role)"): `VPN` (the VLANs the
//! VPN serves) and `VPNSERVER` (one appliance: its public name, outside address and legs). The
//! users are VPNUSER lines (services.rs); cross-references are checked in model/analyse/vpn.rs.

use super::cursor::{valid_ident, LineParser};
use super::services::valid_dns_name;
use super::Stmt;
use crate::line::Token;
use crate::net::parse_mask;
use std::net::Ipv4Addr;

/// `VPN <VLAN>... [PEERS <VLAN>...]`: one OpenVPN server per VLAN on every VPN appliance;
/// PEERS names the served VLANs whose VPN users may reach each other.
pub(super) fn vpn(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "VPN <VLAN name>... [PEERS <VLAN name>...]";
    p.tok(1, "VLAN name", F)?;
    let toks = p.line.toks[1..].to_vec();
    let (mut vlans, mut peers, mut in_peers) = (Vec::new(), Vec::new(), false);
    for t in toks {
        if t.text == "PEERS" && !in_peers {
            in_peers = true;
            continue;
        }
        if !valid_ident(&t.text) {
            p.err(&t, format!("`{}` is not a VLAN name", t.text), F, "");
            return None;
        }
        if in_peers {
            peers.push(t);
        } else {
            vlans.push(t);
        }
    }
    if in_peers && peers.is_empty() {
        p.tok(p.line.toks.len(), "VLAN name after PEERS", F)?;
    }
    Some(Stmt::Vpn { vlans, peers })
}

/// `VPNSERVER <host> <public name> <outside ipv4>/<len> [GW <ip>] [<VLAN>:<leg ipv4>...]`: a
/// VPN appliance (an instance, named after its HOST alias, whose IPv4 address is its leg in
/// that VLAN); `<VLAN>:<ip>` gives its leg in each other served VLAN.
pub(super) fn vpnserver(p: &mut LineParser) -> Option<Stmt> {
    const F: &str =
        "VPNSERVER <host alias> <public name> <outside ipv4>/<len> [GW <ip>] [<VLAN>:<ipv4>...]";
    let host = p.tok(1, "HOST alias", F)?;
    if !valid_ident(&host.text) {
        p.err(&host, format!("`{}` is not a HOST alias", host.text), F, "");
        return None;
    }
    let name = p.tok(2, "public DNS name", F)?;
    if !valid_dns_name(&name.text) || !name.text.contains('.') {
        let fix = "the name users' clients resolve, e.g. vpn1.example.org";
        p.err(
            &name,
            format!("`{}` is not a public DNS name", name.text),
            F,
            fix,
        );
        return None;
    }
    let ot = p.tok(3, "outside address/len", F)?;
    let Some(outside) = addr_len(&ot.text) else {
        let fix = "the address the relay listens on, with its prefix, e.g. 198.51.100.1/24";
        p.err(
            &ot,
            format!("`{}` is not an IPv4 address/len", ot.text),
            F,
            fix,
        );
        return None;
    };
    let mut i = 4;
    let mut gw = None;
    if p.line.toks.get(i).is_some_and(|t| t.text == "GW") {
        gw = Some(p.ip4(i + 1, "outside gateway", F)?.0);
        i += 2;
    }
    let mut legs = Vec::new();
    let rest = p.line.toks[i..].to_vec();
    for t in &rest {
        legs.push(leg(p, t, F)?);
    }
    Some(Stmt::VpnServer {
        host,
        name,
        outside,
        outside_tok: ot,
        gw,
        legs,
    })
}

/// `VLAN20:172.16.20.20`: a leg (VLAN name, address, the token).
fn leg(p: &mut LineParser, t: &Token, form: &str) -> Option<(String, Ipv4Addr, Token)> {
    let parsed = t
        .text
        .split_once(':')
        .filter(|(v, _)| valid_ident(v))
        .and_then(|(v, a)| Some((v.to_string(), a.parse::<Ipv4Addr>().ok()?)));
    match parsed {
        Some((v, a)) => Some((v, a, t.clone())),
        None => {
            let fix = "<VLAN name>:<the server's address in it>, e.g. VLAN20:172.16.20.20";
            p.err(t, format!("`{}` is not a VLAN leg", t.text), form, fix);
            None
        }
    }
}

/// `198.51.100.1/24` -> (address, prefix length).
fn addr_len(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let len = parse_mask(&format!("/{l}"))?;
    Some((a.parse().ok()?, len))
}

#[cfg(test)]
mod tests {
    use crate::parse::{parse_text, Stmt};

    #[test]
    fn statements_and_their_errors() {
        let Some(Stmt::Vpn { vlans, peers }) = parse_text("VPN VLAN10 VLAN20 PEERS VLAN20").0
        else {
            panic!()
        };
        assert_eq!((vlans.len(), peers[0].text.as_str()), (2, "VLAN20"));
        let s =
            "VPNSERVER vpn1 vpn1.lab.demo.fr 198.51.100.1/24 GW 198.51.100.254 VLAN20:172.16.20.20";
        let Some(Stmt::VpnServer {
            outside, gw, legs, ..
        }) = parse_text(s).0
        else {
            panic!()
        };
        assert_eq!(
            (outside.1, gw.is_some(), legs[0].0.as_str()),
            (24, true, "VLAN20")
        );
        let d = parse_text("VPNSERVER vpn1 vpn1.lab.demo.fr 198.51.100.1 ").1;
        assert_eq!(d[0].message, "`198.51.100.1` is not an IPv4 address/len");
        let d = parse_text("VPNSERVER vpn1 vpn1.lab.demo.fr 198.51.100.1/24 VLAN20=1.2.3.4").1;
        assert_eq!(
            (d[0].message.as_str(), d[0].loc.col),
            ("`VLAN20=1.2.3.4` is not a VLAN leg", 49)
        );
        let d = parse_text("VPN VLAN10 PEERS").1;
        assert_eq!(d[0].message, "missing VLAN name after PEERS");
    }
}
