//! `virtual_ipaddress` / `virtual_ipaddress_excluded` lines: one `Vip` per line.
//!
//! `ADDR[/LEN]` followed by iproute2-style options (`brd`, `dev`, `label`, `scope`, `no_track`,
//! and the ones accepted and ignored). Only what one line can check is checked here; the rules
//! across an instance's VIPs (one family, link-local first, at most 255, default-device labels)
//! are in `instance`.

use std::net::{IpAddr, Ipv4Addr};

use super::ctx::Ctx;
use super::lexer::Stmt;
use super::Vip;

pub(super) fn parse_vip(ctx: &mut Ctx, s: &Stmt) -> Option<Vip> {
    let (addr, prefix) = vip_address(ctx, s)?;
    let mut vip = Vip {
        addr,
        prefix,
        brd: None,
        dev: None,
        label: None,
        scope: 0,
        no_track: false,
        line: s.line,
    };
    let mut it = s.args.iter();
    while let Some(k) = it.next() {
        vip_option(ctx, s, k, &mut it, &mut vip)?;
    }
    check_vip_label(ctx, s, &vip)?;
    Some(vip)
}

/// The `ADDR[/LEN]` that starts a VIP line (the statement's keyword); LEN defaults to a host route.
fn vip_address(ctx: &mut Ctx, s: &Stmt) -> Option<(IpAddr, u8)> {
    let (addr_s, prefix_s) = match s.key.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s.key.as_str(), None),
    };
    let addr: IpAddr = match addr_s.parse() {
        Ok(a) => a,
        Err(_) => {
            ctx.err(
                s.line,
                format!(
                    "'{}' is not an IP address (expected ADDR[/LEN] [brd ..] [dev IF] ...)",
                    s.key
                ),
            );
            return None;
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_s {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => {
                ctx.err(s.line, format!("bad prefix length '/{p}' (0..={max})"));
                return None;
            }
        },
    };
    Some((addr, prefix))
}

/// One option after a VIP's address, taking its value from `it`; `None` rejects the whole VIP.
fn vip_option(
    ctx: &mut Ctx,
    s: &Stmt,
    k: &str,
    it: &mut std::slice::Iter<'_, String>,
    vip: &mut Vip,
) -> Option<()> {
    let mut val = |ctx: &mut Ctx| -> Option<String> {
        let v = it.next().cloned();
        if v.is_none() {
            ctx.err(s.line, format!("'{k}' needs a value"));
        }
        v
    };
    match k {
        "brd" | "broadcast" => {
            let v = val(ctx)?;
            let IpAddr::V4(a4) = vip.addr else {
                ctx.err(s.line, "'brd' is not allowed for IPv6 addresses");
                return None;
            };
            match broadcast(a4, vip.prefix, &v) {
                Some(b) => vip.brd = Some(b),
                None => {
                    ctx.err(s.line, format!("bad broadcast address '{v}'"));
                    return None;
                }
            }
        }
        "dev" => vip.dev = Some(val(ctx)?),
        "label" => {
            if vip.addr.is_ipv6() {
                ctx.err(s.line, "'label' is not allowed for IPv6 addresses");
                return None;
            }
            vip.label = Some(val(ctx)?)
        }
        "scope" => {
            let v = val(ctx)?;
            match scope_number(&v) {
                Some(n) => vip.scope = n,
                None => {
                    ctx.err(
                        s.line,
                        format!("bad scope '{v}' (global|site|link|host|nowhere|0-255)"),
                    );
                    return None;
                }
            }
        }
        "no_track" => vip.no_track = true,
        "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" => {
            ctx.warn(s.line, format!("VIP option '{k}' ignored"));
        }
        "preferred_lft" | "peer" => {
            let _ = val(ctx);
            ctx.warn(s.line, format!("VIP option '{k}' ignored"));
        }
        other => {
            ctx.err(
                s.line,
                format!("unknown virtual_ipaddress option '{other}'"),
            );
            return None;
        }
    }
    Some(())
}

/// The netmask of an IPv4 prefix length (0..=32) as a host-order integer.
fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// A `brd` value: `+` (all host bits set), `-` (network address) or a literal IPv4 address.
fn broadcast(addr: Ipv4Addr, prefix: u8, v: &str) -> Option<Ipv4Addr> {
    let mask = prefix_mask(prefix);
    match v {
        "+" => Some(Ipv4Addr::from(u32::from(addr) | !mask)),
        "-" => Some(Ipv4Addr::from(u32::from(addr) & mask)),
        v => v.parse().ok(),
    }
}

/// A `scope` value: iproute2's names or a number, as the rtnetlink scope byte.
fn scope_number(v: &str) -> Option<u8> {
    match v {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        n => n.parse().ok(),
    }
}

/// With both `dev` and `label`, the label must name that device (as `ip addr` requires).
fn check_vip_label(ctx: &mut Ctx, s: &Stmt, vip: &Vip) -> Option<()> {
    if let (Some(l), Some(d)) = (&vip.label, &vip.dev) {
        if !l.starts_with(&format!("{d}:")) {
            ctx.err(
                s.line,
                format!("label '{l}' must start with the device name and a colon, e.g. '{d}:1'"),
            );
            return None;
        }
    }
    Some(())
}

/// `virtual_ipaddress { ... }` / `virtual_ipaddress_excluded { ... }`: the good lines go to `dst`.
pub(super) fn parse_vip_block(ctx: &mut Ctx, c: &Stmt, dst: &mut Vec<Vip>) {
    match &c.block {
        Some(b) => {
            for v in b {
                if let Some(v) = parse_vip(ctx, v) {
                    dst.push(v);
                }
            }
        }
        None => ctx.err(c.line, format!("'{}' needs a {{ block }}", c.key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Family, Version};

    use super::super::test_util::{ctx, msgs, p, stmt};

    #[test]
    fn vip_options_and_families() {
        let c = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1/24 brd + dev x label x:1 scope link\n 10.0.0.2\n }\n virtual_ipaddress_excluded {\n 2001:db8::1/64\n }\n}\n").unwrap();
        let i = &c.instances[0];
        assert_eq!(i.vips[0].brd, Some(Ipv4Addr::new(10, 0, 0, 255)));
        assert_eq!(i.vips[0].scope, 253);
        assert_eq!(i.vips[1].prefix, 32);
        assert_eq!(i.excluded[0].prefix, 64);
        assert_eq!(i.family, Family::V4);
        let c = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n advert_int 0.1\n virtual_ipaddress {\n fe80::1/64\n }\n}\n").unwrap();
        let i = &c.instances[0];
        assert_eq!(
            (i.family, i.version, i.advert_int_cs),
            (Family::V6, Version::V3, 10)
        );
        assert!(p("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n fe80::1 brd +\n }\n}\n").is_err());
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1 label x:1\n }\n}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("k.conf:5: error: label 'x:1' must start"),
            "{e}"
        );
    }

    #[test]
    fn broadcast_plus_minus_and_literal() {
        assert_eq!(prefix_mask(0), 0);
        assert_eq!(prefix_mask(24), 0xffff_ff00);
        assert_eq!(prefix_mask(32), u32::MAX);
        let a = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(broadcast(a, 24, "+"), Some(Ipv4Addr::new(10, 1, 2, 255)));
        assert_eq!(broadcast(a, 24, "-"), Some(Ipv4Addr::new(10, 1, 2, 0)));
        assert_eq!(broadcast(a, 20, "+"), Some(Ipv4Addr::new(10, 1, 15, 255)));
        assert_eq!(broadcast(a, 0, "+"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(a, 0, "-"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(broadcast(a, 32, "+"), Some(a));
        assert_eq!(
            broadcast(a, 24, "10.9.9.9"),
            Some(Ipv4Addr::new(10, 9, 9, 9))
        );
        assert_eq!(broadcast(a, 24, "x"), None);
        assert_eq!(broadcast(a, 24, "fe80::1"), None);
    }

    #[test]
    fn scope_names_and_numbers() {
        assert_eq!(scope_number("global"), Some(0));
        assert_eq!(scope_number("universe"), Some(0));
        assert_eq!(scope_number("site"), Some(200));
        assert_eq!(scope_number("link"), Some(253));
        assert_eq!(scope_number("host"), Some(254));
        assert_eq!(scope_number("nowhere"), Some(255));
        assert_eq!(scope_number("7"), Some(7));
        assert_eq!(scope_number("256"), None);
        assert_eq!(scope_number("Link"), None);
    }

    #[test]
    fn vip_line_pieces() {
        let mut c = ctx();
        let v = parse_vip(
            &mut c,
            &stmt("10.0.0.1/24 brd - dev e1 label e1:a no_track home"),
        )
        .unwrap();
        assert_eq!(
            (
                v.prefix,
                v.brd,
                v.dev.as_deref(),
                v.label.as_deref(),
                v.no_track
            ),
            (
                24,
                Some(Ipv4Addr::new(10, 0, 0, 0)),
                Some("e1"),
                Some("e1:a"),
                true
            )
        );
        assert_eq!(msgs(&c.warnings), ["1: VIP option 'home' ignored"]);
        assert!(c.errors.is_empty());
        for (line, err) in [
            ("10.0.0.1/24 brd", "'brd' needs a value"),
            ("fe80::1 brd +", "'brd' is not allowed for IPv6 addresses"),
            (
                "fe80::1 label e:1",
                "'label' is not allowed for IPv6 addresses",
            ),
            (
                "10.0.0.1 scope far",
                "bad scope 'far' (global|site|link|host|nowhere|0-255)",
            ),
            ("10.0.0.1/33", "bad prefix length '/33' (0..=32)"),
            (
                "10.0.0.1 dev e1 label e2:1",
                "label 'e2:1' must start with the device name and a colon, e.g. 'e1:1'",
            ),
            (
                "10.0.0.1 mtu 9000",
                "unknown virtual_ipaddress option 'mtu'",
            ),
        ] {
            let mut c = ctx();
            assert_eq!(parse_vip(&mut c, &stmt(line)), None, "{line}");
            assert_eq!(msgs(&c.errors), [format!("1: {err}")], "{line}");
        }
    }
}
