//! The parser: one preprocessed [`Line`] -> one [`Stmt`]. [`parse_stmt`] dispatches on the
//! keyword to one function per statement (grouped by kind in the submodules); every malformed
//! line gives a diagnostic at the offending word and is skipped. The statements are described in
//! docs/labwall.md ("The language in one screen").
//!
//! The preprocessor ([`crate::preprocess`]) runs before; its public names are re-exported here.

mod cursor;
mod filter;
mod interfaces;
mod names;
mod services;
mod settings;
mod vpn;

pub use crate::line::{Line, Token};
pub use crate::preprocess::{preprocess, FsLoader, Loader, MapLoader, PreOptions};
pub use cursor::valid_ident;
pub use names::parse_svc_item;
pub use services::{lease_secs, mac, valid_dns_name};

use crate::diag::Diagnostic;
use crate::net::Net;
use cursor::LineParser;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `master-backup-vip-vrid[*]` (IPv4, VLAN/DEV lines) or `master-backup-vip` (ADDR6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpSpec {
    pub master: IpAddr,
    pub backup: IpAddr,
    pub vip: IpAddr,
    pub vrid: Option<u32>,
    pub star: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrSpec {
    Plain(IpAddr),
    V(VrrpSpec),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    All,
    Fw,
    Zone(Token),
    ZoneAlias(Token, Token),
    ZoneNet(Token, Net),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RuleAction {
    Allow,
    Deny,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PolicyAction {
    Accept,
    Drop,
    Reject,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub n: u32,
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcItem {
    Ports { proto: String, lo: u16, hi: u16 },
    Proto(u8),
    Ping,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NatOn {
    Vip,
    Ip(IpAddr),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    NetInit {
        devs: Vec<Token>,
    },
    Vlan {
        vid: u16,
        dev: Token,
        net: Ipv4Addr,
        addr: AddrSpec,
        addr_tok: Token,
        mask: u8,
        bcast: Option<Ipv4Addr>,
        bcast_tok: Option<Token>,
        name: Option<Token>,
    },
    Dev {
        name: Token,
        dev: Token,
        net: Ipv4Addr,
        gw: Option<Ipv4Addr>,
        gw_tok: Token,
        mask: u8,
        addr: Option<AddrSpec>,
        addr_tok: Option<Token>,
        bcast: Option<Ipv4Addr>,
        bcast_tok: Option<Token>,
    },
    Set {
        name: Token,
        value: String,
    },
    VrrpAuth {
        kind: String,
        secret: Token,
        router_id: String,
        smtp: Option<IpAddr>,
        email: Option<String>,
        advert: u32,
    },
    VrrpGroup {
        name: Token,
    },
    /// `VRRP CHECK ...`: a health check every instance tracks (docs/labwall.md, VRRP CHECK).
    VrrpCheck {
        name: Token,
        check: crate::model::VrrpCheck,
    },
    /// `VRRP VMAC`: every instance carries the RFC 5798 virtual MAC (keepalived `use_vmac`).
    VrrpVmac,
    Addr6 {
        name: Token,
        prefix: Net,
        addr: AddrSpec,
        addr_tok: Token,
        gw: Option<Ipv6Addr>,
    },
    Zone {
        zone: Token,
        names: Vec<Token>,
    },
    Alias {
        host: bool,
        alias: Token,
        nets: Vec<(Net, Token)>,
        /// `HOST ... MAC <mac>`: a static host of the dns role.
        mac: Option<(crate::aaa::MacAddr, Token)>,
    },
    Service {
        name: Token,
        items: Vec<SvcItem>,
    },
    Rule {
        action: RuleAction,
        src: Endpoint,
        dst: Endpoint,
        services: Vec<Token>,
        log: bool,
        limit: Option<Rate>,
    },
    Policy {
        src: Token,
        dst: Token,
        action: PolicyAction,
        log: bool,
    },
    Snat {
        name: Token,
        to: NatOn,
    },
    Masq {
        name: Token,
    },
    Dnat {
        name: Token,
        on: NatOn,
        service: Token,
        to: Token,
        port: Option<u16>,
    },
    Antispoof(String),
    Noroute(Vec<Token>),
    Log {
        prefix: Option<String>,
        level: Option<String>,
        rate: Option<Rate>,
        nflog: Option<u16>,
    },
    Counters(bool),
    Sync {
        dev: Token,
        master: IpAddr,
        backup: IpAddr,
    },
    Domain {
        domain: Token,
        forwarders: Vec<(IpAddr, Token)>,
    },
    Servers {
        names: Vec<Token>,
    },
    Dhcp {
        vlan: Token,
        range: (Ipv4Addr, Ipv4Addr),
        range_tok: Token,
        lease: u32,
        router: Option<Ipv4Addr>,
        dns: Vec<Ipv4Addr>,
    },
    Nas {
        name: Token,
        addr: IpAddr,
        addr_tok: Token,
        secret: Option<Token>,
        vpn: bool,
    },
    Mab {
        mac: crate::aaa::MacAddr,
        mac_tok: Token,
        vlan: Token,
    },
    Dot1x {
        kind: crate::aaa::IdentityKind,
        name: Token,
        vlan: Token,
    },
    VpnUser {
        cn: Token,
        vlan: Token,
        addr: Ipv4Addr,
        addr_tok: Token,
    },
    /// `VPN <VLAN>... [PEERS <VLAN>...]` (vpn role).
    Vpn {
        vlans: Vec<Token>,
        peers: Vec<Token>,
    },
    /// `VPNSERVER <host> <public name> <outside>/<len> [GW <ip>] [<VLAN>:<ip>...]` (vpn role).
    VpnServer {
        host: Token,
        name: Token,
        outside: (Ipv4Addr, u8),
        outside_tok: Token,
        gw: Option<Ipv4Addr>,
        /// (VLAN name, leg address, token)
        legs: Vec<(String, Ipv4Addr, Token)>,
    },
}

#[derive(Clone, Debug)]
pub struct Parsed {
    pub line: Line,
    pub stmt: Stmt,
}

pub const KEYWORDS: &[&str] = &[
    "NETINIT",
    "VLAN",
    "DEV",
    "SET",
    "VRRP",
    "ADDR6",
    "ZONE",
    "HOST",
    "NET",
    "SERVICE",
    "ALLOW",
    "DENY",
    "REJECT",
    "POLICY",
    "NAT",
    "ANTISPOOF",
    "NOROUTE",
    "LOG",
    "COUNTERS",
    "INCLUDE",
    "IF",
    "ELSE",
    "ENDIF",
    "SYNC",
    "DOMAIN",
    "SERVERS",
    "DHCP",
    "NAS",
    "MAB",
    "DOT1X",
    "VPNUSER",
    "VPN",
    "VPNSERVER",
];

/// Parse the preprocessed lines into statements. Bad lines produce diagnostics and are skipped;
/// the diagnostics of a tainted line (a failed expansion, already reported) are dropped.
pub fn parse_lines(lines: &[Line], diags: &mut Vec<Diagnostic>) -> Vec<Parsed> {
    let mut out = Vec::new();
    for l in lines {
        let mut scratch = Vec::new();
        let sink = if l.tainted { &mut scratch } else { &mut *diags };
        let mut p = LineParser {
            line: l,
            diags: sink,
        };
        if let Some(stmt) = parse_stmt(&mut p) {
            out.push(Parsed {
                line: l.clone(),
                stmt,
            });
        }
    }
    out
}

/// One statement, by its keyword.
fn parse_stmt(p: &mut LineParser) -> Option<Stmt> {
    match p.line.toks[0].text.as_str() {
        "NETINIT" => interfaces::netinit(p),
        "VLAN" => interfaces::vlan(p),
        "DEV" => interfaces::dev(p),
        "ADDR6" => interfaces::addr6(p),
        "SYNC" => interfaces::sync(p),
        "SET" => settings::set(p),
        "VRRP" => settings::vrrp(p),
        "ANTISPOOF" => settings::antispoof(p),
        "LOG" => settings::log(p),
        "COUNTERS" => settings::counters(p),
        "ZONE" => names::zone(p),
        "HOST" | "NET" => names::alias(p),
        "SERVICE" => names::service(p),
        "ALLOW" | "DENY" | "REJECT" => filter::rule(p),
        "POLICY" => filter::policy(p),
        "NOROUTE" => filter::noroute(p),
        "NAT" => filter::nat(p),
        "DOMAIN" => services::domain(p),
        "SERVERS" => services::servers(p),
        "DHCP" => services::dhcp(p),
        "NAS" => services::nas(p),
        "MAB" => services::mab(p),
        "DOT1X" => services::dot1x(p),
        "VPNUSER" => services::vpnuser(p),
        "VPN" => vpn::vpn(p),
        "VPNSERVER" => vpn::vpnserver(p),
        _ => unknown_statement(p),
    }
}

/// Anything else: the fix says whether it is a keyword in the wrong case.
fn unknown_statement(p: &mut LineParser) -> Option<Stmt> {
    let kw = p.line.toks[0].clone();
    let other = kw.text.as_str();
    let up = other.to_ascii_uppercase();
    let fix = if KEYWORDS.contains(&up.as_str()) {
        format!("keywords are upper-case: write {up}")
    } else {
        "check the spelling; variables are assigned as NAME=value".to_string()
    };
    p.err(
        &kw,
        format!("unknown statement `{other}`"),
        &format!("one of {}", KEYWORDS.join(" ")),
        &fix,
    );
    None
}

/// Test helper: tokenise one line (no expansion) and parse it.
#[cfg(test)]
pub(crate) fn parse_text(src: &str) -> (Option<Stmt>, Vec<Diagnostic>) {
    let line = Line {
        loc: crate::diag::Loc {
            file: "t.lw".into(),
            line: 1,
            col: 1,
        },
        src: src.to_string(),
        toks: crate::preprocess::split_tokens(src).unwrap(),
        tainted: false,
    };
    let mut diags = Vec::new();
    let mut p = LineParser {
        line: &line,
        diags: &mut diags,
    };
    let stmt = parse_stmt(&mut p);
    (stmt, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statement_suggests_the_upper_case_keyword() {
        let (s, d) = parse_text("vlan 10 eth0");
        assert!(s.is_none());
        assert_eq!(d[0].message, "unknown statement `vlan`");
        assert_eq!(
            d[0].fix.as_deref(),
            Some("keywords are upper-case: write VLAN")
        );
        let (_, d) = parse_text("FOO=1 x");
        assert_eq!(
            d[0].fix.as_deref(),
            Some("check the spelling; variables are assigned as NAME=value")
        );
    }

    #[test]
    fn tainted_lines_are_parsed_silently() {
        let (lines, _) = crate::preprocess::preprocess(
            &MapLoader(Default::default()),
            std::path::Path::new("t.lw"),
            "VLAN $NOPE eth0\nZONE\n",
            &PreOptions::default(),
        );
        let mut d = Vec::new();
        let stmts = parse_lines(&lines, &mut d);
        assert!(stmts.is_empty());
        // only ZONE's own error: the tainted VLAN line says nothing more
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].loc.line, 2);
    }
}
