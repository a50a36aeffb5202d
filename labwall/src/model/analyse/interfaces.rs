//! Interfaces: a DEV or VLAN line becomes an [`Iface`] (pass 1, with the checks of its own
//! addresses), then the interfaces are checked against NETINIT and against each other.

use super::{tok0, Analysis, Findings};
use crate::line::{Line, Token};
use crate::model::Iface;
use crate::net::Net;
use crate::parse::{AddrSpec, Stmt};
use std::net::{IpAddr, Ipv4Addr};

/// What a DEV or VLAN line declares, before its checks.
struct Declared<'l> {
    name: String,
    ifname: String,
    dev: String,
    vid: Option<u16>,
    net: Ipv4Addr,
    mask: u8,
    gw: Option<(Ipv4Addr, Token)>,
    addr: Option<(AddrSpec, Token)>,
    bcast: Option<Ipv4Addr>,
    bcast_tok: Option<&'l Token>,
}

/// The interface of a VLAN or DEV statement (None for any other statement).
pub(super) fn declared(out: &mut Findings, l: &Line, stmt: &Stmt) -> Option<Iface> {
    let d = match stmt {
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
        } => Declared {
            name: name
                .as_ref()
                .map(|n| n.text.clone())
                .unwrap_or(format!("VLAN{vid}")),
            ifname: format!("vlan{vid}"),
            dev: dev.text.clone(),
            vid: Some(*vid),
            net: *net,
            mask: *mask,
            gw: None,
            addr: Some((addr.clone(), addr_tok.clone())),
            bcast: *bcast,
            bcast_tok: bcast_tok.as_ref(),
        },
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
        } => Declared {
            name: name.text.clone(),
            ifname: dev.text.clone(),
            dev: dev.text.clone(),
            vid: None,
            net: *net,
            mask: *mask,
            gw: gw.map(|g| (g, gw_tok.clone())),
            addr: addr.clone().zip(addr_tok.clone()),
            bcast: *bcast,
            bcast_tok: bcast_tok.as_ref(),
        },
        _ => return None,
    };
    Some(make_iface(out, l, d))
}

/// Check one interface's network, broadcast, gateway and addresses, and build it.
fn make_iface(out: &mut Findings, l: &Line, d: Declared) -> Iface {
    let n = Net::new(IpAddr::V4(d.net), d.mask);
    if n.trunc().addr != IpAddr::V4(d.net) {
        out.err(
            l,
            &l.toks[3].clone(),
            format!(
                "{} is not the network address of /{} (that would be {})",
                d.net,
                d.mask,
                n.network()
            ),
            format!("write {}", n.network()),
        );
    }
    let n = n.trunc();
    let computed = n.broadcast4().unwrap();
    if let (Some(b), Some(t)) = (d.bcast, d.bcast_tok) {
        if b != computed {
            out.warn(l, t, format!("broadcast {b} does not match {n} (expected {computed}); kept as written for compatibility"), format!("write {computed} or -"));
        }
    }
    let mut i = Iface {
        name: d.name,
        ifname: d.ifname,
        dev: d.dev,
        vid: d.vid,
        line: l.loc.line,
        net4: n,
        gw4: d.gw.as_ref().map(|g| g.0),
        master4: None,
        backup4: None,
        vip4: None,
        vrid: None,
        star: false,
        bcast: d.bcast.unwrap_or(computed),
        v6: Vec::new(),
        zone: String::new(),
        uplink: false,
    };
    if let Some((g, t)) = &d.gw {
        if !n.contains(IpAddr::V4(*g)) {
            out.err(
                l,
                t,
                format!("gateway {g} is outside {n}"),
                "use a gateway inside the interface's network",
            );
        }
    }
    if let Some((a, t)) = d.addr {
        set_addresses(out, l, &mut i, a, &t);
        if let Some((g, _)) = &d.gw {
            if Some(*g) == i.master4 || Some(*g) == i.backup4 || Some(*g) == i.vip4 {
                out.err(
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

/// The routers' addresses (and VIP, VRID) from a plain address or a VRRP spec; each must be a
/// host address inside the interface's network.
fn set_addresses(out: &mut Findings, l: &Line, i: &mut Iface, a: AddrSpec, t: &Token) {
    let n = i.net4;
    let v4 = |x: IpAddr| match x {
        IpAddr::V4(a) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let mut check = |x: IpAddr| {
        if !n.contains(x) {
            out.err(
                l,
                t,
                format!("{x} is outside {n}"),
                "use addresses inside the interface's network",
            );
        } else if x == n.network() || Some(x) == n.broadcast4().map(IpAddr::V4) {
            out.err(
                l,
                t,
                format!("{x} is the network or broadcast address of {n}"),
                "use a host address",
            );
        }
    };
    match a {
        AddrSpec::Plain(x) => {
            check(x);
            i.master4 = Some(v4(x));
            i.backup4 = Some(v4(x));
        }
        AddrSpec::V(v) => {
            for x in [v.master, v.backup, v.vip] {
                check(x);
            }
            i.master4 = Some(v4(v.master));
            i.backup4 = Some(v4(v.backup));
            i.vip4 = Some(v4(v.vip));
            i.vrid = v.vrid;
            i.star = v.star;
        }
    }
}

impl Analysis<'_> {
    /// After pass 1: every interface's device is in NETINIT; the uplink (a DEV on the first
    /// NETINIT device) is the only interface with a gateway (the DANGER check: a gateway
    /// anywhere else forwards around the firewall); names, interfaces and networks are unique.
    pub(super) fn check_interfaces(&mut self) {
        let ext = self.netinit[0].clone();
        let tainted = self.settings.netinit_tainted();
        for (iface, l) in self.ifaces.iter_mut().zip(&self.iface_lines) {
            if !self.netinit.contains(&iface.dev) && !tainted {
                let t = l.toks.get(2).unwrap_or(tok0(l)).clone();
                self.out.err(
                    l,
                    &t,
                    format!(
                        "device {} is not in NETINIT (line {})",
                        iface.dev, self.netinit_line
                    ),
                    format!("add {} to the NETINIT line", iface.dev),
                );
            }
            iface.uplink = iface.vid.is_none() && iface.dev == ext;
            if let (Some(g), false) = (iface.gw4, iface.uplink) {
                let t = l.toks[4].clone();
                self.out.err(l, &t, format!("DANGER: gateway {g} on {}, which is not the uplink ({ext}): a host inside a zone would forward traffic around the routers' filtering", iface.name), "only the DEV on the uplink device (first NETINIT device) may have a gateway; write - here");
            }
        }
        self.check_second_gateways();
        self.check_unique_interfaces();
    }

    /// Only one default gateway.
    fn check_second_gateways(&mut self) {
        let with_gw = self.ifaces.iter().zip(&self.iface_lines);
        for (_, l) in with_gw.filter(|(i, _)| i.gw4.is_some()).skip(1) {
            self.out.err(
                l,
                &l.toks[4].clone(),
                "a second default gateway",
                "keep one gateway (the uplink's); write - here",
            );
        }
    }

    /// Each DEV/VLAN has its own name, interface and (non-overlapping) IPv4 network.
    fn check_unique_interfaces(&mut self) {
        for i in 0..self.ifaces.len() {
            for j in 0..i {
                let (a, b) = (&self.ifaces[i], &self.ifaces[j]);
                let l = &self.iface_lines[i];
                if a.name == b.name {
                    self.out.err(
                        l,
                        &l.toks[1].clone(),
                        format!("name {} already used at line {}", a.name, b.line),
                        "give each DEV/VLAN its own name",
                    );
                } else if a.ifname == b.ifname {
                    self.out.err(
                        l,
                        &l.toks[1].clone(),
                        format!("interface {} already defined at line {}", a.ifname, b.line),
                        "one DEV/VLAN line per interface; use ADDR6 for IPv6",
                    );
                }
                if a.net4.overlaps(&b.net4) {
                    self.out.err(
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};

    #[test]
    fn vlan_and_dev_become_interfaces() {
        let s = analyse_text(BASE, "MASTER").0.unwrap();
        let names: Vec<(&str, &str, &str, bool)> = s
            .ifaces
            .iter()
            .map(|i| (i.name.as_str(), i.ifname.as_str(), i.dev.as_str(), i.uplink))
            .collect();
        assert_eq!(
            names,
            [
                ("INTER", "eth1", "eth1", true),
                ("VLAN10", "vlan10", "eth0", false),
                ("VLAN20", "vlan20", "eth0", false)
            ]
        );
        let v10 = &s.ifaces[1];
        assert_eq!(v10.vip4, Some("172.16.10.1".parse().unwrap()));
        assert_eq!((v10.vrid, v10.star), (Some(101), false));
        assert_eq!(v10.bcast.to_string(), "172.16.10.255");
        assert_eq!(s.ifaces[2].master4, s.ifaces[2].backup4);
    }

    #[test]
    fn address_checks() {
        let m = messages(
            "NETINIT eth1 eth0\nDEV INTER eth1 10.1.1.0 10.1.0.5 /16 10.1.0.0-10.2.0.1-10.1.0.5-7* 10.1.1.1\nPOLICY all all DROP\n",
        );
        assert_eq!(
            m,
            [
                "10.1.1.0 is not the network address of /16 (that would be 10.1.0.0)",
                "broadcast 10.1.1.1 does not match 10.1.0.0/16 (expected 10.1.255.255); kept as written for compatibility",
                "10.1.0.0 is the network or broadcast address of 10.1.0.0/16",
                "10.2.0.1 is outside 10.1.0.0/16",
                "the gateway 10.1.0.5 is one of the router's own addresses",
            ]
        );
    }

    #[test]
    fn interfaces_against_netinit_and_each_other() {
        let m = messages(
            "NETINIT eth1
DEV INTER eth1 10.1.1.0 10.1.1.254 /24 10.1.1.2
VLAN 10 eth0 172.16.10.0 172.16.10.2 /24
DEV LAN eth2 172.16.10.0 172.16.10.126 /25 -
VLAN 30 eth1 172.16.30.0 172.16.30.2 /24 - INTER
POLICY all all DROP
",
        );
        assert_eq!(
            m[..6],
            [
                "device eth0 is not in NETINIT (line 1)",
                "device eth2 is not in NETINIT (line 1)",
                "DANGER: gateway 172.16.10.126 on LAN, which is not the uplink (eth1): a host inside a zone would forward traffic around the routers' filtering",
                "a second default gateway",
                "network 172.16.10.0/25 overlaps 172.16.10.0/24 of VLAN10 (line 3)",
                "name INTER already used at line 2",
            ]
        );
    }
}
