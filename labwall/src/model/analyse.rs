//! Semantic analysis: statements -> a checked [`Site`] for one role. Every check of the language
//! lives here (docs/labwall.md, "Diagnostics" and "Decisions where the spec is silent"),
//! including the DANGER check. Each finding is a Diagnostic, and analysis goes on after errors,
//! so that all of them are reported at once.
//!
//! A statement may name things that are defined further down the file (a rule an alias, a ZONE
//! an interface), so the statements are read in three passes, each followed by the checks that
//! need everything the pass collected:
//!
//! 1. interfaces and site-wide settings ([`collect_interfaces_and_settings`]), then the role,
//!    NETINIT and the interfaces against each other;
//! 2. IPv6 addresses, zones, aliases and services ([`Analysis::collect_names`]), then implicit
//!    zones, chain names, multi-homed hosts, VRRP instances and VIPs;
//! 3. rules, policies, NOROUTE, NAT and SYNC ([`Analysis::collect_filter`]), then the default
//!    policies and the warnings that need the whole file.
//!
//! Diagnostics are sorted by position later, stably: at one position they keep the order in
//! which the checks below make them.

mod aaa;
mod aaa_checks;
mod filter;
mod interfaces;
mod names;
mod nat;
mod settings;
mod vpn;
mod vrrp;

use super::{Alias, Dnat, Iface, Instance, Noroute, Policy, Rule, Site, Snat, Sync, Zone};
use crate::diag::{Diagnostic, Loc, Severity};
use crate::line::{Line, Token};
use crate::parse::{Parsed, Stmt, SvcItem};
use settings::Settings;
use std::collections::{BTreeMap, BTreeSet};

/// Build and check the site for one role. Returns None if there were errors (diags has them).
pub fn analyse(
    file: &str,
    stmts: &[Parsed],
    role: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Site> {
    let errors_before = diags.iter().filter(|d| d.is_error()).count();
    let mut out = Findings { file, diags };
    let (settings, ifaces, iface_lines) = collect_interfaces_and_settings(&mut out, stmts);
    settings.check_role(&mut out, role);
    let (netinit, netinit_line) = settings.require_netinit(&mut out)?;
    let mut a = Analysis {
        out,
        settings,
        netinit,
        netinit_line,
        ifaces,
        iface_lines,
        zones: Vec::new(),
        aliases: Vec::new(),
        services: BTreeMap::new(),
        instances: Vec::new(),
        used_alias: BTreeSet::new(),
        rules: Vec::new(),
        policies: Vec::new(),
        noroutes: Vec::new(),
        snats: Vec::new(),
        dnats: Vec::new(),
        sync: None,
        aaa: aaa::Collected::default(),
        vpn: crate::vpn::VpnSite::default(),
    };
    a.check_interfaces();
    a.collect_names(stmts);
    a.add_implicit_zones();
    a.check_chain_names();
    a.check_multihomed_hosts();
    a.build_vrrp_instances();
    a.check_vips();
    a.collect_services(stmts);
    a.collect_vpn(stmts);
    a.collect_filter(stmts);
    a.add_relay_rules();
    a.add_default_policies();
    a.warn_noroute_overrides();
    a.warn_unused_aliases();
    let errors = a.out.diags.iter().filter(|d| d.is_error()).count();
    if errors > errors_before {
        return None;
    }
    Some(a.into_site(role))
}

/// Where the findings go, with the helpers that point them at a token or a line.
struct Findings<'a> {
    file: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl Findings<'_> {
    fn err(&mut self, l: &Line, t: &Token, msg: impl Into<String>, fix: impl Into<String>) {
        let d = l.diag_at(t, msg).fix(fix.into());
        self.diags.push(d);
    }
    fn warn(&mut self, l: &Line, t: &Token, msg: impl Into<String>, fix: impl Into<String>) {
        let mut d = l.diag_at(t, msg).fix(fix.into());
        d.severity = Severity::Warning;
        self.diags.push(d);
    }
    /// Column 1 of `line` in the site file (findings about a whole line or the whole file).
    fn loc(&self, line: u32) -> Loc {
        Loc {
            file: self.file.to_string(),
            line,
            col: 1,
        }
    }
}

fn tok0(l: &Line) -> &Token {
    &l.toks[0]
}

/// Pass 1: the DEV/VLAN interfaces and the site-wide settings. Interfaces come first because
/// every later statement (ADDR6, ZONE, NAT, SYNC) refers to them by name, wherever they are in
/// the file. Returns the interfaces with the lines that declared them (for diagnostics).
fn collect_interfaces_and_settings(
    out: &mut Findings,
    stmts: &[Parsed],
) -> (Settings, Vec<Iface>, Vec<Line>) {
    let mut settings = Settings::default();
    let mut ifaces = Vec::new();
    let mut lines = Vec::new();
    for p in stmts {
        let l = &p.line;
        let iface = match &p.stmt {
            Stmt::Vlan { .. } | Stmt::Dev { .. } => interfaces::declared(out, l, &p.stmt),
            other => {
                settings.apply(out, l, other);
                None
            }
        };
        if let Some(i) = iface {
            ifaces.push(i);
            lines.push(l.clone());
        }
    }
    (settings, ifaces, lines)
}

/// The state of passes 2 and 3 (pass 1's results included), which becomes the [`Site`].
struct Analysis<'a> {
    out: Findings<'a>,
    settings: Settings,
    netinit: Vec<String>,
    netinit_line: u32,
    ifaces: Vec<Iface>,
    /// The DEV/VLAN line of each interface (same index).
    iface_lines: Vec<Line>,
    zones: Vec<Zone>,
    aliases: Vec<(Alias, Line)>,
    /// SERVICE definitions (they replace built-ins of the same name).
    services: BTreeMap<String, Vec<SvcItem>>,
    instances: Vec<Instance>,
    /// Aliases some rule or DNAT refers to (the others are warned about).
    used_alias: BTreeSet<String>,
    rules: Vec<Rule>,
    policies: Vec<Policy>,
    noroutes: Vec<Noroute>,
    snats: Vec<Snat>,
    dnats: Vec<Dnat>,
    sync: Option<Sync>,
    /// The dns role's statements (DOMAIN, SERVERS, DHCP, ...), with their lines.
    aaa: aaa::Collected,
    /// The vpn role's statements (VPN, VPNSERVER).
    vpn: crate::vpn::VpnSite,
}

impl Analysis<'_> {
    /// The checked site (only called when there were no errors).
    fn into_site(self, role: &str) -> Site {
        let s = self.settings;
        let or_netinit = |line: u32| if line == 0 { self.netinit_line } else { line };
        Site {
            file: self.out.file.to_string(),
            role: role.to_string(),
            hostname: s.hostname,
            netinit: self.netinit,
            netinit_line: self.netinit_line,
            ifaces: self.ifaces,
            zones: self.zones,
            aliases: self.aliases.into_iter().map(|a| a.0).collect(),
            rules: self.rules,
            policies: self.policies,
            noroutes: self.noroutes,
            snats: self.snats,
            dnats: self.dnats,
            antispoof: s.antispoof.0,
            antispoof_line: or_netinit(s.antispoof.1),
            log: super::LogCfg {
                line: or_netinit(s.log.line),
                ..s.log
            },
            counters: s.counters,
            auth: s.auth,
            group: s.group,
            checks: s.checks,
            vmac: s.vmac,
            instances: self.instances,
            sync: self.sync,
            services: self.aaa.svc,
            vpn: self.vpn,
        }
    }
}

/// Test helper: preprocess, parse and analyse `src` (no includes, `hostname` is `h`).
#[cfg(test)]
fn analyse_text(src: &str, role: &str) -> (Option<Site>, Vec<Diagnostic>) {
    let pre = crate::parse::PreOptions {
        defines: vec![("ROLE".into(), role.into())],
        allow_exec: false,
        system_hostname: Some("h".into()),
    };
    let loader = crate::parse::MapLoader(Default::default());
    let path = std::path::Path::new("t.lw");
    let (lines, mut diags) = crate::parse::preprocess(&loader, path, src, &pre);
    let stmts = crate::parse::parse_lines(&lines, &mut diags);
    let site = analyse("t.lw", &stmts, role, &mut diags);
    (site, diags)
}

/// Test helper: the messages of `src`'s diagnostics, in the order they were made.
#[cfg(test)]
fn messages(src: &str) -> Vec<String> {
    analyse_text(src, "MASTER")
        .1
        .into_iter()
        .map(|d| d.message)
        .collect()
}

/// A small valid site the tests below extend (uplink, two VLANs, one VRRP instance).
#[cfg(test)]
const BASE: &str = "NETINIT eth1 eth0
DEV INTER eth1 10.1.1.0 10.1.1.254 /24 10.1.1.2-10.1.1.3-10.1.1.4-101*
VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-101 /24
VLAN 20 eth0 172.16.20.0 172.16.20.2 /24
POLICY all all DROP
";
