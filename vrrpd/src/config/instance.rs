//! `vrrp_instance NAME { ... }`: one `InstanceConfig`.
//!
//! The block's keywords are collected into an `InstanceDraft` in any order; `finish` then
//! checks the whole instance and applies keepalived's adjustments in keepalived's order (default
//! priority, address family and version, v3 without authentication, v2 whole-second intervals,
//! preemption rules), since each of those depends on several keywords at once.

use std::net::IpAddr;
use std::time::Duration;

use crate::wire::{Family, Version};

use super::common::{notify_kw, parse_track};
use super::ctx::Ctx;
use super::globals::{garp_kw, version_kw, Globals};
use super::lexer::Stmt;
use super::route::{parse_routes, parse_rules};
use super::script::parse_track_script;
use super::vip::parse_vip_block;
use super::{
    Garp, InstanceConfig, Notify, RouteConfig, RuleConfig, TrackIf, TrackScript, V3Checksum, Vip,
};

pub(super) fn parse_instance(ctx: &mut Ctx, s: &Stmt, g: &Globals) -> Option<InstanceConfig> {
    let (name, block) = instance_header(ctx, s)?;
    let mut d = InstanceDraft::new(g);
    for c in block {
        d.keyword(ctx, c, &name);
    }
    d.finish(ctx, s, name, g)
}

/// `vrrp_instance NAME { ... }`: the name and the block, or an error.
fn instance_header<'s>(ctx: &mut Ctx, s: &'s Stmt) -> Option<(String, &'s [Stmt])> {
    let name = match s.args.as_slice() {
        [n] => n.clone(),
        _ => {
            ctx.err(s.line, "expected 'vrrp_instance NAME {'");
            return None;
        }
    };
    let Some(block) = &s.block else {
        ctx.err(s.line, format!("vrrp_instance {name} needs a {{ block }}"));
        return None;
    };
    Some((name, block))
}

/// An instance's settings as read so far: keywords come in any order, checks run after the block.
struct InstanceDraft {
    state_master: bool,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: Option<u8>,
    /// Seconds as written, and the line (for the v2 rounding warning).
    advert_int: Option<(f64, usize)>,
    version: Option<Version>,
    auth_pass: Option<[u8; 8]>,
    vips: Vec<Vip>,
    excluded: Vec<Vip>,
    nopreempt: bool,
    preempt_delay: Duration,
    garp: Garp,
    notify: Notify,
    track: Vec<TrackIf>,
    track_scripts: Vec<TrackScript>,
    routes: Vec<RouteConfig>,
    rules: Vec<RuleConfig>,
    /// `use_vmac [NAME]` (Some("") without a name) and its line.
    vmac: Option<(String, usize)>,
    vmac_xmit_base: bool,
    dont_track_primary: bool,
    unicast_src_ip: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    native_ipv6: bool,
    v3_as_v2: bool,
    down_timer_adverts: u8,
}

impl InstanceDraft {
    /// keepalived's defaults, with what global_defs sets for every instance.
    fn new(g: &Globals) -> Self {
        InstanceDraft {
            state_master: false,
            interface: None,
            vrid: None,
            priority: None,
            advert_int: None,
            version: None,
            auth_pass: None,
            vips: Vec::new(),
            excluded: Vec::new(),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            garp: g.garp,
            notify: Notify::default(),
            track: Vec::new(),
            track_scripts: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            vmac: None,
            vmac_xmit_base: false,
            dont_track_primary: false,
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            native_ipv6: false,
            v3_as_v2: g.v3_checksum_as_v2,
            down_timer_adverts: 3,
        }
    }

    /// Apply one statement of the instance block (unknown keywords are warnings).
    fn keyword(&mut self, ctx: &mut Ctx, c: &Stmt, name: &str) {
        if notify_kw(ctx, c, &mut self.notify) || garp_kw(ctx, c, &c.key, &mut self.garp) {
            return;
        }
        match c.key.as_str() {
            "state" => {
                if let Some(m) = state_kw(ctx, c) {
                    self.state_master = m
                }
            }
            "interface" => self.interface = ctx.one_arg(c).map(str::to_string),
            "virtual_router_id" => self.vrid = ctx.num::<u8>(c, 1, 255),
            "priority" => self.priority = ctx.num::<u8>(c, 1, 255),
            "advert_int" => {
                if let Some(a) = advert_int_kw(ctx, c) {
                    self.advert_int = Some((a, c.line))
                }
            }
            "version" => self.version = version_kw(ctx, c),
            "authentication" => {
                if let Some(p) = parse_auth(ctx, c) {
                    self.auth_pass = Some(p)
                }
            }
            "virtual_ipaddress" => parse_vip_block(ctx, c, &mut self.vips),
            "virtual_ipaddress_excluded" => parse_vip_block(ctx, c, &mut self.excluded),
            "nopreempt" => self.nopreempt = true,
            "preempt" => self.nopreempt = false,
            "preempt_delay" => {
                if let Some(d) = ctx.secs(c, 1000.0) {
                    self.preempt_delay = d
                }
            }
            "track_interface" => self.track.extend(parse_track(ctx, &c.block, c.line)),
            "track_script" => self.track_scripts.extend(parse_track_script(ctx, c)),
            "virtual_routes" => parse_routes(ctx, c, &mut self.routes),
            "use_vmac" => match c.args.as_slice() {
                [] => self.vmac = Some((String::new(), c.line)),
                [n] if n.len() < 16 => self.vmac = Some((n.clone(), c.line)),
                _ => ctx.err(
                    c.line,
                    "expected 'use_vmac [NAME]' (a name of at most 15 characters)",
                ),
            },
            "vmac_xmit_base" => self.vmac_xmit_base = true,
            "virtual_rules" => parse_rules(ctx, c, &mut self.rules),
            "dont_track_primary" => self.dont_track_primary = true,
            "unicast_src_ip" | "mcast_src_ip" => {
                if let Some(ip) = src_ip_kw(ctx, c) {
                    self.unicast_src_ip = Some(ip)
                }
            }
            "unicast_peer" => parse_unicast_peers(ctx, c, &mut self.unicast_peers),
            "native_ipv6" => self.native_ipv6 = true,
            "v3_checksum_as_v2" => self.v3_as_v2 = true,
            "down_timer_adverts" => {
                if let Some(n) = ctx.num(c, 1, 100) {
                    self.down_timer_adverts = n
                }
            }
            _ => ctx.unknown(c, &format!("vrrp_instance {name}")),
        }
    }

    /// Check the whole instance and apply keepalived's adjustments, in keepalived's order.
    fn finish(self, ctx: &mut Ctx, s: &Stmt, name: String, g: &Globals) -> Option<InstanceConfig> {
        let Some(interface) = self.interface else {
            ctx.err(s.line, format!("vrrp_instance {name}: missing 'interface'"));
            return None;
        };
        let Some(vrid) = self.vrid else {
            ctx.err(
                s.line,
                format!("vrrp_instance {name}: missing 'virtual_router_id'"),
            );
            return None;
        };
        check_default_labels(ctx, &interface, self.vips.iter().chain(&self.excluded));
        let priority = self
            .priority
            .unwrap_or(if self.state_master { 255 } else { 100 });
        let family = vip_family(self.native_ipv6, &self.vips);
        check_vips(ctx, s.line, &name, &self.vips, family);
        let version = instance_version(self.version, g.version, family);
        let mut auth_pass = self.auth_pass;
        if version == Version::V3 && auth_pass.is_some() {
            ctx.warn(
                s.line,
                "VRRP version 3 does not support authentication. Ignoring.",
            );
            auth_pass = None;
        }
        let (adv, adv_line) = self.advert_int.unwrap_or((1.0, s.line));
        let (advert_int_cs, rounded) = advert_int_cs(version, adv);
        if let Some(r) = rounded {
            ctx.warn(
                adv_line,
                format!("advert_int {adv} must be an integer for VRRPv2: rounding to {r}"),
            );
        }
        let p = preempt_rules(
            self.state_master,
            priority,
            self.nopreempt,
            self.preempt_delay,
        );
        for w in p.warnings {
            ctx.warn(s.line, w);
        }
        Some(InstanceConfig {
            name,
            line: s.line,
            state_master: self.state_master,
            interface,
            vrid,
            priority: priority.max(1),
            version,
            family,
            advert_int_cs,
            auth_pass,
            vips: self.vips,
            excluded: self.excluded,
            nopreempt: p.nopreempt,
            preempt_delay: p.delay,
            garp: self.garp,
            notify: self.notify,
            track_interfaces: self.track,
            track_scripts: self.track_scripts,
            vmac: vmac_name(ctx, self.vmac, vrid, family),
            vmac_xmit_base: self.vmac_xmit_base,
            routes: self.routes,
            rules: self.rules,
            dont_track_primary: self.dont_track_primary,
            unicast_src_ip: self.unicast_src_ip,
            unicast_peers: self.unicast_peers,
            v3_checksum: if self.v3_as_v2 {
                V3Checksum::MessageOnly
            } else {
                V3Checksum::PseudoHeader
            },
            down_timer_adverts: self.down_timer_adverts,
        })
    }
}

/// keepalived's default vmac name `vrrp.VRID`; IPv6 is not supported with a vmac (an error).
fn vmac_name(
    ctx: &mut Ctx,
    v: Option<(String, usize)>,
    vrid: u8,
    family: Family,
) -> Option<String> {
    let (name, line) = v?;
    if family == Family::V6 {
        ctx.err(line, "use_vmac is only supported for IPv4 instances");
        return None;
    }
    Some(if name.is_empty() {
        format!("vrrp.{vrid}")
    } else {
        name
    })
}

/// `state MASTER|BACKUP`: whether the instance starts as master.
fn state_kw(ctx: &mut Ctx, c: &Stmt) -> Option<bool> {
    match ctx.one_arg(c)? {
        "MASTER" => Some(true),
        "BACKUP" => Some(false),
        o => {
            ctx.err(c.line, format!("state must be MASTER or BACKUP, got '{o}'"));
            None
        }
    }
}

/// `advert_int`: seconds in (0, 255], fractions allowed (they only make sense for v3).
fn advert_int_kw(ctx: &mut Ctx, c: &Stmt) -> Option<f64> {
    let a = ctx.one_arg(c)?;
    match a.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 255.0 => Some(v),
        _ => {
            ctx.err(
                c.line,
                format!("advert_int must be seconds in (0, 255], got '{a}'"),
            );
            None
        }
    }
}

/// The `authentication` block: the PASS password, or `None` after an error.
fn parse_auth(ctx: &mut Ctx, c: &Stmt) -> Option<[u8; 8]> {
    let mut ty = None;
    let mut pass = None;
    for a in c.block.iter().flatten() {
        match a.key.as_str() {
            "auth_type" => ty = ctx.one_arg(a).map(|s| (s.to_string(), a.line)),
            "auth_pass" => pass = ctx.one_arg(a).map(|s| (s.to_string(), a.line)),
            _ => ctx.unknown(a, "authentication"),
        }
    }
    match ty {
        Some((t, _)) if t == "PASS" => match pass {
            Some((p, ln)) => {
                if p.len() > 8 {
                    ctx.warn(ln, "auth_pass longer than 8 characters: truncated to 8 (as keepalived does); shorten it");
                }
                return Some(crate::wire::pass_bytes(&p));
            }
            None => ctx.err(c.line, "auth_type PASS needs auth_pass"),
        },
        Some((t, ln)) if t == "AH" => ctx.err(
            ln,
            "auth_type AH is not supported by vrrpd (use PASS or none)",
        ),
        Some((t, ln)) => ctx.err(ln, format!("auth_type must be PASS, got '{t}'")),
        None => ctx.err(c.line, "authentication block without auth_type"),
    }
    None
}

/// `unicast_src_ip` / `mcast_src_ip`: one IP address.
fn src_ip_kw(ctx: &mut Ctx, c: &Stmt) -> Option<IpAddr> {
    let a = ctx.one_arg(c)?;
    match a.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            ctx.err(c.line, format!("'{a}' is not an IP address"));
            None
        }
    }
}

/// `unicast_peer { ADDR ... }`: the addresses go to `peers`; per-peer options are ignored.
fn parse_unicast_peers(ctx: &mut Ctx, c: &Stmt, peers: &mut Vec<IpAddr>) {
    for p in c.block.iter().flatten() {
        match p.key.parse::<IpAddr>() {
            Ok(ip) => peers.push(ip),
            Err(_) => ctx.err(
                p.line,
                format!("unicast_peer '{}' is not an IP address", p.key),
            ),
        }
        if !p.args.is_empty() {
            ctx.warn(
                p.line,
                format!("unicast_peer options '{}' ignored", p.args.join(" ")),
            );
        }
    }
}

/// A VIP without `dev` lives on the instance interface, so its label must name that interface.
fn check_default_labels<'v>(ctx: &mut Ctx, interface: &str, vips: impl Iterator<Item = &'v Vip>) {
    for v in vips {
        if let (Some(l), None) = (&v.label, &v.dev) {
            if !l.starts_with(&format!("{interface}:")) {
                ctx.err(
                    v.line,
                    format!("label '{l}' must start with the device name and a colon, e.g. '{interface}:1'"),
                );
            }
        }
    }
}

/// The instance's address family: `native_ipv6`, else the first VIP's, else IPv4.
fn vip_family(native_ipv6: bool, vips: &[Vip]) -> Family {
    if native_ipv6 {
        Family::V6
    } else {
        vips.first()
            .map(|v: &Vip| Family::of(&v.addr))
            .unwrap_or(Family::V4)
    }
}

/// What an advert can carry: one family, a link-local first IPv6 VIP, at most 255 addresses.
fn check_vips(ctx: &mut Ctx, line: usize, name: &str, vips: &[Vip], family: Family) {
    if vips.iter().any(|v| Family::of(&v.addr) != family) {
        ctx.err(line, format!("vrrp_instance {name}: all virtual_ipaddress entries must be one address family (move the others to virtual_ipaddress_excluded)"));
    }
    if let Some(IpAddr::V6(a)) = vips.first().map(|v| v.addr) {
        if a.segments()[0] & 0xffc0 != 0xfe80 {
            ctx.warn(
                line,
                format!("vrrp_instance {name}: the first IPv6 virtual_ipaddress should be link-local (RFC 5798 7.2), got {a}"),
            );
        }
    }
    if vips.len() > 255 {
        ctx.err(
            line,
            "more than 255 VIPs: move some to virtual_ipaddress_excluded",
        );
    }
}

/// The instance's `version`, else global_defs' `vrrp_version`, else 2; IPv6 always needs 3.
fn instance_version(own: Option<Version>, global: Option<Version>, family: Family) -> Version {
    let version = own.or(global).unwrap_or(Version::V2);
    if family == Family::V6 && version == Version::V2 {
        Version::V3
    } else {
        version
    }
}

/// The advert interval in centiseconds, and the whole seconds v2 rounded a fraction to (if it did).
fn advert_int_cs(version: Version, adv: f64) -> (u16, Option<f64>) {
    match version {
        Version::V2 => {
            let r = adv.round().max(1.0);
            let rounded = (r - adv).abs() > f64::EPSILON;
            ((r as u16) * 100, rounded.then_some(r))
        }
        Version::V3 => (((adv * 100.0).round() as u32).clamp(1, 4095) as u16, None),
    }
}

/// Preemption settings after keepalived's rules, with the warnings for what was cleared.
#[derive(Debug, PartialEq)]
struct Preempt {
    nopreempt: bool,
    delay: Duration,
    warnings: Vec<&'static str>,
}

/// keepalived's rules: nopreempt needs BACKUP and a priority below 255; preempt_delay needs both.
fn preempt_rules(state_master: bool, priority: u8, nopreempt: bool, delay: Duration) -> Preempt {
    let mut p = Preempt {
        nopreempt,
        delay,
        warnings: Vec::new(),
    };
    if state_master && p.nopreempt {
        p.warnings
            .push("nopreempt needs 'state BACKUP': cleared (as keepalived does)");
        p.nopreempt = false;
    }
    if priority == 255 && p.nopreempt {
        p.nopreempt = false;
    }
    if !p.delay.is_zero() && (state_master || p.nopreempt) {
        p.warnings
            .push("preempt_delay is incompatible with 'state MASTER' and nopreempt: cleared");
        p.delay = Duration::ZERO;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_util::{ctx, msgs, p, stmt};
    use super::super::vip::parse_vip;

    #[test]
    fn keepalived_adjustments() {
        let c = p("vrrp_instance a {\n state MASTER\n nopreempt\n interface e\n virtual_router_id 1\n advert_int 1.4\n authentication {\n auth_type PASS\n auth_pass 123456789\n }\n}\n").unwrap();
        let i = &c.instances[0];
        assert!(!i.nopreempt);
        assert_eq!(i.priority, 255);
        assert_eq!(i.advert_int_cs, 100);
        assert_eq!(i.auth_pass, Some(*b"12345678"));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        let c = p("global_defs {\n vrrp_version 3\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n advert_int 0.5\n authentication {\n auth_type PASS\n auth_pass x\n }\n unicast_src_ip 10.0.0.2\n unicast_peer {\n 10.0.0.3\n }\n track_interface {\n eth9 weight -20\n eth8\n }\n notify_master \"/bin/x 'a b' c\"\n}\n").unwrap();
        let i = &c.instances[0];
        assert_eq!(i.version, Version::V3);
        assert_eq!(i.auth_pass, None);
        assert_eq!(i.advert_int_cs, 50);
        assert_eq!(i.unicast_peers.len(), 1);
        assert_eq!(i.track_interfaces[0].weight, -20);
        assert_eq!(
            i.notify.master.as_ref().unwrap(),
            &vec!["/bin/x", "a b", "c"]
        );
    }

    #[test]
    fn instance_family_and_version() {
        let vip = |a: &str| {
            let mut c = ctx();
            parse_vip(&mut c, &stmt(a)).unwrap()
        };
        assert_eq!(vip_family(false, &[]), Family::V4);
        assert_eq!(vip_family(true, &[]), Family::V6);
        assert_eq!(
            vip_family(false, &[vip("fe80::1"), vip("10.0.0.1")]),
            Family::V6
        );
        assert_eq!(vip_family(true, &[vip("10.0.0.1")]), Family::V6);
        let (v2, v3) = (Some(Version::V2), Some(Version::V3));
        assert_eq!(instance_version(None, None, Family::V4), Version::V2);
        assert_eq!(instance_version(None, v3, Family::V4), Version::V3);
        assert_eq!(instance_version(v2, v3, Family::V4), Version::V2);
        assert_eq!(instance_version(v2, None, Family::V6), Version::V3);
        let mut c = ctx();
        check_vips(
            &mut c,
            4,
            "i",
            &[vip("2001:db8::1"), vip("10.0.0.1")],
            Family::V6,
        );
        assert_eq!(msgs(&c.errors), ["4: vrrp_instance i: all virtual_ipaddress entries must be one address family (move the others to virtual_ipaddress_excluded)"]);
        assert_eq!(msgs(&c.warnings), ["4: vrrp_instance i: the first IPv6 virtual_ipaddress should be link-local (RFC 5798 7.2), got 2001:db8::1"]);
    }

    #[test]
    fn advert_interval_units() {
        assert_eq!(advert_int_cs(Version::V2, 1.0), (100, None));
        assert_eq!(advert_int_cs(Version::V2, 1.4), (100, Some(1.0)));
        assert_eq!(advert_int_cs(Version::V2, 2.5), (300, Some(3.0)));
        assert_eq!(advert_int_cs(Version::V2, 0.2), (100, Some(1.0)));
        assert_eq!(advert_int_cs(Version::V3, 0.25), (25, None));
        assert_eq!(advert_int_cs(Version::V3, 0.001), (1, None));
        assert_eq!(advert_int_cs(Version::V3, 255.0), (4095, None));
    }

    #[test]
    fn preemption_rules() {
        let d5 = Duration::from_secs(5);
        let z = Duration::ZERO;
        let p = |m, prio, np, d| {
            let r = preempt_rules(m, prio, np, d);
            (r.nopreempt, r.delay, r.warnings.len())
        };
        assert_eq!(p(false, 100, true, z), (true, z, 0));
        assert_eq!(p(true, 100, true, z), (false, z, 1));
        assert_eq!(p(false, 255, true, z), (false, z, 0));
        assert_eq!(p(false, 100, false, d5), (false, d5, 0));
        assert_eq!(p(false, 100, true, d5), (true, z, 1));
        assert_eq!(p(false, 255, true, d5), (false, d5, 0));
        assert_eq!(p(true, 100, true, d5), (false, z, 2));
        assert_eq!(
            preempt_rules(true, 100, false, d5).warnings,
            ["preempt_delay is incompatible with 'state MASTER' and nopreempt: cleared"]
        );
    }

    #[test]
    fn authentication_block() {
        let auth = |body: &str| {
            let mut c = ctx();
            let r = parse_auth(&mut c, &stmt(&format!("authentication {{\n{body}\n}}")));
            (r, msgs(&c.errors), msgs(&c.warnings))
        };
        assert_eq!(
            auth("auth_type PASS\nauth_pass abc"),
            (Some(*b"abc\0\0\0\0\0"), vec![], vec![])
        );
        let (r, e, w) = auth("auth_type PASS\nauth_pass 123456789");
        assert_eq!((r, e.len()), (Some(*b"12345678"), 0));
        assert!(w[0].starts_with("3: auth_pass longer than 8"), "{w:?}");
        assert_eq!(
            auth("auth_type PASS").1,
            ["1: auth_type PASS needs auth_pass"]
        );
        assert_eq!(
            auth("auth_type AH").1,
            ["2: auth_type AH is not supported by vrrpd (use PASS or none)"]
        );
        assert_eq!(
            auth("auth_type MD5").1,
            ["2: auth_type must be PASS, got 'MD5'"]
        );
        assert_eq!(
            auth("auth_pass x").1,
            ["1: authentication block without auth_type"]
        );
    }

    #[test]
    fn too_many_vips() {
        let vips = |n: usize| -> String {
            (0..n)
                .map(|k| format!(" 10.2.{}.{}\n", k / 200, k % 200 + 1))
                .collect()
        };
        let conf = |n| {
            format!("vrrp_instance a {{\n interface e\n virtual_router_id 1\n virtual_ipaddress {{\n{} }}\n}}\n", vips(n))
        };
        assert_eq!(p(&conf(255)).unwrap().instances[0].vips.len(), 255);
        assert_eq!(
            p(&conf(256)).unwrap_err().to_string(),
            "k.conf:1: error: more than 255 VIPs: move some to virtual_ipaddress_excluded"
        );
    }
}
