//! The dns role's statements (DOMAIN, SERVERS, DHCP, HOST ... MAC, NAS, MAB, DOT1X, VPNUSER)
//! become [`Services`], then the cross-reference checks of docs/labwall.md ("Names, addresses
//! and access"): they run after pass 2 because servers and static hosts are HOST aliases and
//! VLANs are named like in ZONE. The routers' DHCP relay rules are added after pass 3.

use super::Analysis;
use crate::aaa::{DhcpScope, Identity, MacVlan, Nas, Server, Services, StaticHost, VpnUser};
use crate::line::{Line, Token};
use crate::model::Iface;
use crate::net::Net;
use crate::parse::{Parsed, Stmt};
use std::net::{IpAddr, Ipv4Addr};

/// [`Services`] plus the line of each entry (same index), for the checks' diagnostics.
#[derive(Default)]
pub(super) struct Collected {
    pub svc: Services,
    domain_line: Option<Line>,
    pub servers: Vec<Line>,
    pub dhcp: Vec<Line>,
    pub hosts: Vec<Line>,
    pub mab: Vec<Line>,
    pub vpn: Vec<Line>,
}

impl Analysis<'_> {
    /// Read the dns role's statements, then check them against each other and the interfaces.
    pub(super) fn collect_services(&mut self, stmts: &[Parsed]) {
        for p in stmts {
            self.service_stmt(&p.line, &p.stmt);
        }
        self.check_dhcp_reachable();
        self.check_static_addresses();
        self.check_duplicate_macs();
    }

    fn service_stmt(&mut self, l: &Line, stmt: &Stmt) {
        match stmt {
            Stmt::Domain { forwarders, .. } => self.domain(l, forwarders),
            Stmt::Servers { names } => names.iter().for_each(|n| self.server(l, n)),
            Stmt::Dhcp { .. } => self.dhcp(l, stmt),
            Stmt::Alias {
                alias,
                nets,
                mac: Some((mac, _)),
                ..
            } => self.static_host(l, alias, nets, *mac),
            Stmt::Nas { .. } => self.nas(l, stmt),
            Stmt::Mab { mac, vlan, .. } => {
                if let Some(vid) = self.vlan_named(l, vlan) {
                    let line = l.loc.line;
                    self.aaa.svc.mab.push(MacVlan {
                        mac: *mac,
                        vlan: vid,
                        line,
                    });
                    self.aaa.mab.push(l.clone());
                }
            }
            Stmt::Dot1x { kind, name, vlan } => {
                if let Some(vid) = self.vlan_named(l, vlan) {
                    self.aaa.svc.dot1x.push(Identity {
                        name: name.text.clone(),
                        kind: *kind,
                        vlan: vid,
                        line: l.loc.line,
                    });
                }
            }
            Stmt::VpnUser { .. } => self.vpn_user(l, stmt),
            _ => {}
        }
    }

    fn domain(&mut self, l: &Line, forwarders: &[(IpAddr, Token)]) {
        if let Some(first) = &self.aaa.domain_line {
            let msg = format!("second DOMAIN (the first is line {})", first.loc.line);
            self.out.err(l, &l.toks[0], msg, "keep one DOMAIN line");
            return;
        }
        self.aaa.svc.domain = Some(l.toks[1].text.to_ascii_lowercase());
        self.aaa.svc.forwarders = forwarders.iter().map(|f| f.0).collect();
        self.aaa.domain_line = Some(l.clone());
    }

    /// The internal VLAN interface `t` names (its DEV/VLAN name, as in ZONE), or an error.
    pub(super) fn vlan_named(&mut self, l: &Line, t: &Token) -> Option<u16> {
        let i = self.ifaces.iter().find(|i| i.name == t.text);
        match i.and_then(|i| i.vid) {
            Some(v) => Some(v),
            None => {
                let names: Vec<&str> = self
                    .ifaces
                    .iter()
                    .filter(|i| i.vid.is_some())
                    .map(|i| i.name.as_str())
                    .collect();
                let what = if i.is_some() { "not a VLAN" } else { "unknown" };
                let msg = format!("VLAN {} is {what}", t.text);
                let fix = format!("use one of the VLAN names: {}", names.join(" "));
                self.out.err(l, t, msg, fix);
                None
            }
        }
    }

    /// A SERVERS name: a HOST alias with an IPv4 address in one of the VLANs.
    fn server(&mut self, l: &Line, n: &Token) {
        if self.aaa.svc.servers.iter().any(|s| s.name == n.text) {
            self.out.err(
                l,
                n,
                format!("server {} listed twice", n.text),
                "list it once",
            );
            return;
        }
        let addr = self
            .aliases
            .iter()
            .find(|a| a.0.name == n.text)
            .map(|a| first_v4(&a.0.nets));
        let Some(Some(addr)) = addr else {
            let fix = format!("declare it first: HOST {} <ipv4>", n.text);
            let msg = format!("no HOST alias {} with an IPv4 address", n.text);
            self.out.err(l, n, msg, fix);
            return;
        };
        self.used_alias.insert(n.text.clone());
        let Some(vid) = vlan_of(&self.ifaces, addr) else {
            let msg = format!("server {} ({addr}) is in no VLAN", n.text);
            self.out.err(
                l,
                n,
                msg,
                "give it an address in one of the VLANs' networks",
            );
            return;
        };
        let line = l.loc.line;
        let name = n.text.clone();
        self.aaa.svc.servers.push(Server {
            name,
            addr,
            vlan: vid,
            line,
        });
        self.aaa.servers.push(l.clone());
    }

    fn dhcp(&mut self, l: &Line, stmt: &Stmt) {
        let Stmt::Dhcp {
            vlan,
            range,
            range_tok,
            lease,
            router,
            dns,
        } = stmt
        else {
            return;
        };
        let Some(vid) = self.vlan_named(l, vlan) else {
            return;
        };
        if let Some(o) = self.aaa.svc.dhcp.iter().find(|d| d.vlan == vid) {
            let msg = format!(
                "second DHCP for {} (the first is line {})",
                vlan.text, o.line
            );
            self.out.err(l, vlan, msg, "keep one DHCP line per VLAN");
            return;
        }
        let iface = self.ifaces.iter().find(|i| i.vid == Some(vid)).cloned();
        let Some(iface) = iface else { return };
        if !self.range_fits(l, range_tok, *range, &iface) {
            return;
        }
        self.aaa.svc.dhcp.push(DhcpScope {
            vlan: vid,
            range: *range,
            lease_secs: *lease,
            router: *router,
            dns: dns.clone(),
            line: l.loc.line,
        });
        self.aaa.dhcp.push(l.clone());
    }

    /// A dynamic range lies inside its VLAN, without its network, broadcast or router addresses.
    fn range_fits(&mut self, l: &Line, t: &Token, r: (Ipv4Addr, Ipv4Addr), i: &Iface) -> bool {
        let inside = |a: Ipv4Addr| i.net4.contains(IpAddr::V4(a));
        if !inside(r.0) || !inside(r.1) {
            let msg = format!("range {}-{} is outside {} ({})", r.0, r.1, i.name, i.net4);
            self.out
                .err(l, t, msg, format!("choose addresses inside {}", i.net4));
            return false;
        }
        let mut taken = vec![
            (i.net4.network(), "the network address"),
            (IpAddr::V4(i.bcast), "the broadcast address"),
        ];
        for a in [i.master4, i.backup4, i.vip4].into_iter().flatten() {
            taken.push((IpAddr::V4(a), "a router address"));
        }
        for (a, what) in taken {
            if in_range(r, a) {
                let msg = format!("range {}-{} contains {a}, {what}", r.0, r.1);
                self.out
                    .err(l, t, msg, "start the range after it or end it before it");
                return false;
            }
        }
        true
    }

    fn static_host(&mut self, l: &Line, alias: &Token, nets: &[(Net, Token)], mac: [u8; 6]) {
        self.used_alias.insert(alias.text.clone());
        let v4 = first_v4(&nets.iter().map(|n| n.0).collect::<Vec<_>>());
        let Some(v4) = v4 else {
            let msg = format!("static host {} has no IPv4 address", alias.text);
            self.out
                .err(l, alias, msg, "give it an IPv4 address for its lease");
            return;
        };
        let v6 = nets.iter().find_map(|n| match n.0.network() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
        let (name, line) = (alias.text.clone(), l.loc.line);
        self.aaa.svc.hosts.push(StaticHost {
            name,
            mac,
            v4,
            v6,
            line,
        });
        self.aaa.hosts.push(l.clone());
    }

    fn nas(&mut self, l: &Line, stmt: &Stmt) {
        let Stmt::Nas {
            name,
            addr,
            secret,
            vpn,
            ..
        } = stmt
        else {
            return;
        };
        let Some(secret) = secret else {
            let msg = format!("NAS {} has no secret name", name.text);
            let fix = format!("add SECRET <name>; the shared secret goes in the file radius/nas/<name> of the site secrets (docs/secrets.md), e.g. SECRET {}", name.text);
            self.out.diags.push(l.diag_end(msg).fix(fix));
            return;
        };
        if self.aaa.svc.nas.iter().any(|n| n.name == name.text) {
            self.out.err(
                l,
                name,
                format!("NAS {} declared twice", name.text),
                "keep one line per NAS",
            );
            return;
        }
        self.aaa.svc.nas.push(Nas {
            name: name.text.clone(),
            addr: *addr,
            secret: secret.text.clone(),
            vpn: *vpn,
            line: l.loc.line,
        });
    }

    fn vpn_user(&mut self, l: &Line, stmt: &Stmt) {
        let Stmt::VpnUser {
            cn,
            vlan,
            addr,
            addr_tok,
        } = stmt
        else {
            return;
        };
        let Some(vid) = self.vlan_named(l, vlan) else {
            return;
        };
        let net = self
            .ifaces
            .iter()
            .find(|i| i.vid == Some(vid))
            .map(|i| i.net4);
        if let Some(net) = net.filter(|n| !n.contains(IpAddr::V4(*addr))) {
            let msg = format!("VPN address {addr} is outside {} ({net})", vlan.text);
            self.out
                .err(l, addr_tok, msg, format!("choose an address inside {net}"));
            return;
        }
        let (cn, line) = (cn.text.clone(), l.loc.line);
        self.aaa.svc.vpn_users.push(VpnUser {
            cn,
            vlan: vid,
            addr: *addr,
            line,
        });
        self.aaa.vpn.push(l.clone());
    }
}

/// The first IPv4 host address of an alias.
pub(super) fn first_v4(nets: &[Net]) -> Option<Ipv4Addr> {
    nets.iter().find_map(|n| match n.network() {
        IpAddr::V4(a) if n.is_host() => Some(a),
        _ => None,
    })
}

/// The VLAN id of the VLAN interface whose network holds `a`.
pub(super) fn vlan_of(ifaces: &[Iface], a: Ipv4Addr) -> Option<u16> {
    ifaces
        .iter()
        .find(|i| i.vid.is_some() && i.net4.contains(IpAddr::V4(a)))
        .and_then(|i| i.vid)
}

pub(super) fn in_range(r: (Ipv4Addr, Ipv4Addr), a: IpAddr) -> bool {
    matches!(a, IpAddr::V4(a) if r.0 <= a && a <= r.1)
}
