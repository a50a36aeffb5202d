//! The vpn role's statements (VPN, VPNSERVER) become [`VpnSite`], then their cross-references
//! are checked (docs/labwall.md, "VPN servers (vpn role)"): after the dns role's, because a VPN
//! server is a HOST alias with a NAS line, and its legs and users must stay clear of the DHCP
//! ranges, the routers and each other.

use super::aaa::{first_v4, vlan_of};
use super::Analysis;
use crate::line::{Line, Token};
use crate::parse::{Parsed, Stmt};
use crate::vpn::{Leg, VpnServer, VpnVlan};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// A VPNSERVER line's parts, as the parser gives them.
struct ServerLine<'a> {
    host: &'a Token,
    name: &'a Token,
    outside: (Ipv4Addr, u8),
    outside_tok: &'a Token,
    gw: Option<Ipv4Addr>,
    legs: &'a [(String, Ipv4Addr, Token)],
}

impl Analysis<'_> {
    /// Pass 2's end (after [`Analysis::collect_services`]): VPN first (the served VLANs), then
    /// the servers, then the users and the legs against everything else.
    pub(super) fn collect_vpn(&mut self, stmts: &[Parsed]) {
        let mut vpn_line = None;
        for p in stmts {
            if let Stmt::Vpn { vlans, peers } = &p.stmt {
                if let Some(first) = &vpn_line {
                    let msg = format!("second VPN line (the first is {first})");
                    self.out.err(
                        &p.line,
                        &p.line.toks[0],
                        msg,
                        "list every served VLAN on one VPN line",
                    );
                    continue;
                }
                vpn_line = Some(p.line.loc.to_string());
                self.vpn_vlans(&p.line, vlans, peers);
            }
        }
        let mut lines = Vec::new();
        for p in stmts {
            if let Stmt::VpnServer {
                host,
                name,
                outside,
                outside_tok,
                gw,
                legs,
            } = &p.stmt
            {
                let s = ServerLine {
                    host,
                    name,
                    outside: *outside,
                    outside_tok,
                    gw: *gw,
                    legs,
                };
                if let Some(srv) = self.vpn_server(&p.line, &s, vpn_line.is_some()) {
                    self.vpn.servers.push(srv);
                    lines.push(p.line.clone());
                }
            }
        }
        if vpn_line.is_some() {
            self.check_vpn_users(vpn_line.as_deref().unwrap_or(""));
        }
        self.check_vpn_legs(&lines);
    }

    /// The VPN line: known VLANs, each once; PEERS among them.
    fn vpn_vlans(&mut self, l: &Line, vlans: &[Token], peers: &[Token]) {
        for t in vlans {
            let Some(vid) = self.vlan_named(l, t) else {
                continue;
            };
            if self.vpn.vlans.iter().any(|v| v.vlan == vid) {
                self.out
                    .err(l, t, format!("{} listed twice", t.text), "list it once");
                continue;
            }
            let line = l.loc.line;
            self.vpn.vlans.push(VpnVlan {
                vlan: vid,
                peers: false,
                line,
            });
        }
        for t in peers {
            let vid = self.vlan_named(l, t);
            match self.vpn.vlans.iter_mut().find(|v| Some(v.vlan) == vid) {
                Some(v) => v.peers = true,
                None if vid.is_some() => {
                    let msg = format!("PEERS {} is not a served VLAN", t.text);
                    self.out.err(l, t, msg, "list it before PEERS too");
                }
                None => {}
            }
        }
    }

    /// One VPNSERVER: a HOST alias in a served VLAN, a leg in every served VLAN, a VPN NAS.
    fn vpn_server(&mut self, l: &Line, s: &ServerLine, has_vpn: bool) -> Option<VpnServer> {
        if !has_vpn {
            let fix = "add `VPN <VLAN>...` naming the VLANs the VPN servers serve";
            self.out
                .err(l, &l.toks[0], "VPNSERVER without a VPN line", fix);
            return None;
        }
        let name = s.host.text.clone();
        if self.vpn.servers.iter().any(|x| x.name == name) {
            self.out.err(
                l,
                s.host,
                format!("VPN server {name} declared twice"),
                "keep one VPNSERVER line per server",
            );
            return None;
        }
        if let Some(o) = self
            .vpn
            .servers
            .iter()
            .find(|x| x.public_name == s.name.text)
        {
            let msg = format!("public name {} is already {}'s", s.name.text, o.name);
            self.out
                .err(l, s.name, msg, "each VPN server has its own public name");
            return None;
        }
        self.check_outside(l, s);
        let legs = self.vpn_legs(l, s)?;
        let nas_secret = self.vpn_nas(l, s.host, &legs)?;
        let (outside, outside_len) = s.outside;
        Some(VpnServer {
            name,
            public_name: s.name.text.to_ascii_lowercase(),
            outside,
            outside_len,
            gw: s.gw,
            legs,
            nas_secret,
            line: l.loc.line,
        })
    }

    /// The outside address is outside the site's VLANs; the gateway is in its network.
    fn check_outside(&mut self, l: &Line, s: &ServerLine) {
        let a = IpAddr::V4(s.outside.0);
        if let Some(i) = self
            .ifaces
            .iter()
            .find(|i| i.vid.is_some() && i.net4.contains(a))
        {
            let msg = format!(
                "outside address {} is inside {} ({})",
                s.outside.0, i.name, i.net4
            );
            self.out.err(
                l,
                s.outside_tok,
                msg,
                "the relay's address is on the outside NIC: take one outside the VLANs",
            );
        }
        let net = crate::net::Net::new(a, s.outside.1).trunc();
        if let Some(g) = s.gw.filter(|g| !net.contains(IpAddr::V4(*g))) {
            let t = l
                .toks
                .iter()
                .find(|t| t.text == g.to_string())
                .unwrap_or(s.outside_tok);
            self.out.err(
                l,
                t,
                format!("gateway {g} is outside {net}"),
                format!("choose a gateway inside {net}"),
            );
        }
    }

    /// The HOST address (its leg in that VLAN) and the `<VLAN>:<ip>` legs: one per served VLAN.
    fn vpn_legs(&mut self, l: &Line, s: &ServerLine) -> Option<Vec<Leg>> {
        self.used_alias.insert(s.host.text.clone());
        let alias = self.aliases.iter().find(|a| a.0.name == s.host.text);
        let Some(addr) = alias.and_then(|a| first_v4(&a.0.nets)) else {
            let msg = format!("no HOST alias {} with an IPv4 address", s.host.text);
            let fix = format!(
                "declare it first: HOST {} <its address in a served VLAN>",
                s.host.text
            );
            self.out.err(l, s.host, msg, fix);
            return None;
        };
        let mut legs = Vec::new();
        match vlan_of(&self.ifaces, addr).filter(|v| self.served(*v)) {
            Some(vlan) => legs.push(Leg { vlan, addr }),
            None => {
                let msg = format!("VPN server {} ({addr}) is in no served VLAN", s.host.text);
                self.out.err(
                    l,
                    s.host,
                    msg,
                    "its HOST address is its leg: give it one in a VLAN of the VPN line",
                );
                return None;
            }
        }
        let mut ok = true;
        for (vname, a, t) in s.legs {
            let vt = Token::at(vname, t.col);
            let fits = self
                .vlan_named(l, &vt)
                .filter(|v| self.leg_fits(l, t, *v, *a, &legs));
            match fits {
                Some(vlan) => legs.push(Leg { vlan, addr: *a }),
                None => ok = false,
            }
        }
        self.missing_legs(l, &s.host.text, &legs).filter(|_| ok)?;
        let order = |g: &Leg| self.vpn.vlans.iter().position(|v| v.vlan == g.vlan);
        legs.sort_by_key(order);
        Some(legs)
    }

    fn served(&self, vid: u16) -> bool {
        self.vpn.vlans.iter().any(|v| v.vlan == vid)
    }

    /// A `<VLAN>:<ip>` leg: a served VLAN, not twice, its address inside it.
    fn leg_fits(&mut self, l: &Line, t: &Token, vid: u16, a: Ipv4Addr, legs: &[Leg]) -> bool {
        let Some(i) = self.ifaces.iter().find(|i| i.vid == Some(vid)).cloned() else {
            return false;
        };
        let err = if !self.served(vid) {
            Some((
                format!("{} is not served by the VPN", i.name),
                "add it to the VPN line, or remove this leg".to_string(),
            ))
        } else if legs.iter().any(|g| g.vlan == vid) {
            Some((
                format!("a second leg in {}", i.name),
                "one address per VLAN (the HOST address is the leg of its VLAN)".into(),
            ))
        } else if !i.net4.contains(IpAddr::V4(a)) {
            Some((
                format!("leg {a} is outside {} ({})", i.name, i.net4),
                format!("choose an address inside {}", i.net4),
            ))
        } else {
            None
        };
        match err {
            Some((msg, fix)) => {
                self.out.err(l, t, msg, fix);
                false
            }
            None => true,
        }
    }

    /// Every served VLAN needs a leg of every server.
    fn missing_legs(&mut self, l: &Line, name: &str, legs: &[Leg]) -> Option<()> {
        let mut ok = true;
        let vlans: Vec<u16> = self.vpn.vlans.iter().map(|v| v.vlan).collect();
        for vid in vlans
            .into_iter()
            .filter(|v| !legs.iter().any(|g| g.vlan == *v))
        {
            let Some(i) = self.ifaces.iter().find(|i| i.vid == Some(vid)) else {
                continue;
            };
            let msg = format!("VPN server {name} has no leg in {}", i.name);
            let fix = format!(
                "add {}:<its address in {}> to the VPNSERVER line",
                i.name, i.net4
            );
            self.out.diags.push(l.diag_end(msg).fix(fix));
            ok = false;
        }
        ok.then_some(())
    }

    /// The server's NAS line: there, marked VPN, with one of its leg addresses.
    fn vpn_nas(&mut self, l: &Line, host: &Token, legs: &[Leg]) -> Option<String> {
        let Some(n) = self
            .aaa
            .svc
            .nas
            .iter()
            .find(|n| n.name == host.text)
            .cloned()
        else {
            let msg = format!("VPN server {} has no NAS line", host.text);
            let a = legs.first().map(|g| g.addr.to_string()).unwrap_or_default();
            let fix = format!(
                "its RADIUS client entry: NAS {0} {a} SECRET {0} VPN",
                host.text
            );
            self.out.err(l, host, msg, fix);
            return None;
        };
        let msg = if !n.vpn {
            format!("NAS {} (line {}) is not marked VPN", n.name, n.line)
        } else if !legs.iter().any(|g| IpAddr::V4(g.addr) == n.addr) {
            format!(
                "NAS {} (line {}) has address {}, not one of the server's legs",
                n.name, n.line, n.addr
            )
        } else {
            if self.aaa.svc.servers.is_empty() {
                let fix = "the dns appliances run RADIUS: HOST dns1 <ip> then SERVERS dns1";
                self.out.err(
                    l,
                    host,
                    "a VPN server needs RADIUS, and the site has no SERVERS",
                    fix,
                );
                return None;
            }
            return Some(n.secret);
        };
        self.out.err(
            l,
            host,
            msg,
            format!("NAS {} <its leg address> SECRET <name> VPN", n.name),
        );
        None
    }

    /// With a VPN line, each VPN user's VLAN must be served.
    fn check_vpn_users(&mut self, vpn_at: &str) {
        let users: Vec<(String, Line)> = (self.aaa.svc.vpn_users.iter().zip(&self.aaa.vpn))
            .filter(|(u, _)| !self.served(u.vlan))
            .map(|(u, l)| (u.cn.clone(), l.clone()))
            .collect();
        for (cn, l) in users {
            let t = l.toks[2].clone();
            let msg = format!(
                "VPN user {cn}: {} is not served by the VPN ({vpn_at})",
                t.text
            );
            self.out.err(
                &l,
                &t,
                msg,
                "add the VLAN to the VPN line, or put the user in a served VLAN",
            );
        }
    }

    /// Legs: outside the dynamic ranges, not a router, host, user or other leg address.
    fn check_vpn_legs(&mut self, lines: &[Line]) {
        let mut seen: BTreeMap<Ipv4Addr, (String, String)> = BTreeMap::new();
        for a in self.router_v4() {
            seen.insert(a, ("a router address".into(), String::new()));
        }
        let (svc, c) = (&self.aaa.svc, &self.aaa);
        let at = |l: &Line| l.loc.to_string();
        let hosts = (svc.hosts.iter().zip(&c.hosts))
            .map(|(h, l)| (h.v4, format!("static host {}", h.name), at(l)));
        let users = (svc.vpn_users.iter().zip(&c.vpn))
            .map(|(u, l)| (u.addr, format!("VPN user {}", u.cn), at(l)));
        let dns = (svc.servers.iter().zip(&c.servers))
            .map(|(s, l)| (s.addr, format!("server {}", s.name), at(l)));
        let taken: Vec<_> = hosts.chain(users).chain(dns).collect();
        for (a, who, loc) in taken {
            seen.entry(a).or_insert((who, loc));
        }
        let servers = self.vpn.servers.clone();
        for (s, l) in servers.iter().zip(lines) {
            for g in &s.legs {
                let colon = format!(":{}", g.addr);
                let t = l
                    .toks
                    .iter()
                    .find(|t| t.text.ends_with(&colon))
                    .unwrap_or(&l.toks[1])
                    .clone();
                let who = format!("leg of {} in VLAN {}", s.name, g.vlan);
                self.check_not_dynamic(l, &t, g.addr, &who);
                self.check_once(&mut seen, l, &t, g.addr, &who);
            }
        }
    }
}
