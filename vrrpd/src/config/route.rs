//! `virtual_routes` / `virtual_rules` (in an instance: present while it is MASTER) and
//! `static_routes` / `static_rules` (top level: present while vrrpd runs), in the subset of
//! keepalived's syntax (keepalived.conf(5)) that describes one route or rule per line:
//!
//! ```text
//! [src ADDR] [to] DEST[/LEN] [via|gw ADDR] [dev IF] [table N] [metric N] [scope S] [proto N]
//!     [or ADDR | nexthop [via ADDR] [dev IF] [weight W] [nexthop ...]]
//! blackhole|unreachable|prohibit DEST[/LEN] [table N] [metric N]
//! [from SRC[/LEN]] [to DST[/LEN]] [iif IF] [oif IF] table N [priority|preference|pref N]
//! ```
//!
//! `gw` and `or` are keepalived's deprecated spellings of `via` and of a two-way multipath
//! route (the `via` address becomes the first nexthop, the `or` address the second); both are
//! accepted with keepalived's warning. Anything else on such a line (`realms`, `no_track` ...)
//! is an error: a route vrrpd silently left out would be a black hole after failover.

use std::net::IpAddr;

use super::ctx::Ctx;
use super::lexer::Stmt;

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// Route type (rtnetlink RTN_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One path of a multipath route (`nexthop ...`, or the two addresses of `via A or B`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Nexthop {
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// 1..=256, as `ip route`'s `weight`.
    pub weight: u16,
}

/// One route line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteConfig {
    pub kind: RouteKind,
    pub dest: IpAddr,
    pub prefix: u8,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub table: u32,
    pub metric: Option<u32>,
    /// rtnetlink scope; `None`: link without a gateway, universe with one (as `ip route`).
    pub scope: Option<u8>,
    pub proto: Option<u8>,
    /// Non-empty for a multipath route (then `via` is `None`).
    pub nexthops: Vec<Nexthop>,
    pub line: usize,
}

/// One rule line (`ip rule`: lookup `table` for matching packets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleConfig {
    pub v6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: u32,
    pub priority: Option<u32>,
    pub line: usize,
}

/// `ADDR[/LEN]` (length defaulting to the whole address), or `None` when it is not one.
fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() { max } else { l.parse().ok()? };
    (len <= max).then_some((addr, len))
}

/// `ADDR[/LEN]`; the length defaults to the full address (a host route).
fn prefix(ctx: &mut Ctx, line: usize, s: &str) -> Option<(IpAddr, u8)> {
    let p = parse_prefix(s);
    if p.is_none() {
        ctx.err(line, format!("'{s}' is not an address or prefix"));
    }
    p
}

fn addr(ctx: &mut Ctx, line: usize, s: &str) -> Option<IpAddr> {
    let r = s.parse().ok();
    if r.is_none() {
        ctx.err(line, format!("'{s}' is not an IP address"));
    }
    r
}

fn number(ctx: &mut Ctx, line: usize, kw: &str, s: &str) -> Option<u32> {
    let r = s.parse().ok();
    if r.is_none() {
        ctx.err(line, format!("'{kw}' needs a number, got '{s}'"));
    }
    r
}

/// `table N`: a number, or `main`/`local`/`default` (rt_tables names are not read).
fn table(ctx: &mut Ctx, line: usize, s: &str) -> Option<u32> {
    match s {
        "main" => Some(RT_TABLE_MAIN),
        "local" => Some(255),
        "default" => Some(253),
        _ => number(ctx, line, "table", s),
    }
}

fn scope(ctx: &mut Ctx, line: usize, s: &str) -> Option<u8> {
    match s {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        _ => s.parse().ok().or_else(|| {
            ctx.err(line, format!("unknown scope '{s}'"));
            None
        }),
    }
}

/// The words of every line of a route or rule block, with the line number.
fn block_lines(ctx: &mut Ctx, c: &Stmt) -> Vec<(usize, Vec<String>)> {
    let Some(b) = &c.block else {
        ctx.err(c.line, format!("'{}' needs a {{ block }}", c.key));
        return Vec::new();
    };
    b.iter()
        .map(|s| {
            let words = std::iter::once(&s.key).chain(&s.args).cloned().collect();
            (s.line, words)
        })
        .collect()
}

/// Every line of a route block.
pub(super) fn parse_routes(ctx: &mut Ctx, c: &Stmt, out: &mut Vec<RouteConfig>) {
    for (line, words) in block_lines(ctx, c) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        out.extend(route(ctx, line, &w));
    }
}

fn route(ctx: &mut Ctx, line: usize, w: &[&str]) -> Option<RouteConfig> {
    let mut r = RouteConfig {
        kind: RouteKind::Unicast,
        dest: IpAddr::from([0, 0, 0, 0]),
        prefix: 0,
        via: None,
        dev: None,
        src: None,
        table: RT_TABLE_MAIN,
        metric: None,
        scope: None,
        proto: None,
        nexthops: Vec::new(),
        line,
    };
    let mut dest = None;
    let mut i = 0;
    while i < w.len() {
        let (kw, val) = (w[i], w.get(i + 1).copied());
        if let Some(k) = route_kind(kw) {
            r.kind = k;
            i += 1;
            continue;
        }
        if kw == "nexthop" {
            r.nexthops = nexthops(ctx, line, &w[i..])?;
            break;
        }
        let takes = matches!(
            kw,
            "src" | "to" | "via" | "gw" | "dev" | "table" | "metric" | "scope" | "proto" | "or"
        );
        if !takes {
            if dest.is_some() {
                ctx.err(line, format!("unsupported route option '{kw}'"));
                return None;
            }
            dest = Some(prefix(ctx, line, kw)?);
            i += 1;
            continue;
        }
        let Some(v) = val else {
            ctx.err(line, format!("'{kw}' needs a value"));
            return None;
        };
        route_option(ctx, line, &mut r, &mut dest, kw, v)?;
        i += 2;
    }
    let Some((d, p)) = dest else {
        ctx.err(line, "a route needs a destination");
        return None;
    };
    (r.dest, r.prefix) = (d, p);
    check_route(ctx, &r).then_some(r)
}

fn route_kind(kw: &str) -> Option<RouteKind> {
    match kw {
        "blackhole" => Some(RouteKind::Blackhole),
        "unreachable" => Some(RouteKind::Unreachable),
        "prohibit" => Some(RouteKind::Prohibit),
        _ => None,
    }
}

/// One `KEYWORD VALUE` pair of a route line.
fn route_option(
    ctx: &mut Ctx,
    line: usize,
    r: &mut RouteConfig,
    dest: &mut Option<(IpAddr, u8)>,
    kw: &str,
    v: &str,
) -> Option<()> {
    match kw {
        "src" => r.src = Some(addr(ctx, line, v)?),
        "to" => *dest = Some(prefix(ctx, line, v)?),
        "via" | "gw" => {
            if kw == "gw" {
                ctx.warn(line, "'gw' for routes is deprecated, use 'via'");
            }
            r.via = Some(addr(ctx, line, v)?);
        }
        "or" => or_route(ctx, line, r, v)?,
        "dev" => r.dev = Some(v.to_string()),
        "table" => r.table = table(ctx, line, v)?,
        "metric" => r.metric = Some(number(ctx, line, kw, v)?),
        "scope" => r.scope = Some(scope(ctx, line, v)?),
        _ => r.proto = Some(u8::try_from(number(ctx, line, kw, v)?).ok()?),
    }
    Some(())
}

/// keepalived's deprecated `via A or B`: two equal paths, as keepalived builds them.
fn or_route(ctx: &mut Ctx, line: usize, r: &mut RouteConfig, v: &str) -> Option<()> {
    ctx.warn(
        line,
        "'or' for routes is deprecated, use 'nexthop via A nexthop via B'",
    );
    if !r.nexthops.is_empty() {
        ctx.err(line, "only one 'or' per route");
        return None;
    }
    let Some(first) = r.via.take() else {
        ctx.err(line, "'or ADDR' needs a 'via ADDR' before it");
        return None;
    };
    let second = addr(ctx, line, v)?;
    r.nexthops = [first, second]
        .into_iter()
        .map(|a| Nexthop {
            via: Some(a),
            dev: None,
            weight: 1,
        })
        .collect();
    Some(())
}

/// `nexthop [via ADDR] [dev IF] [weight W]`, repeated to the end of the line.
fn nexthops(ctx: &mut Ctx, line: usize, w: &[&str]) -> Option<Vec<Nexthop>> {
    let mut out: Vec<Nexthop> = Vec::new();
    let mut i = 0;
    while i < w.len() {
        if w[i] == "nexthop" {
            out.push(Nexthop {
                via: None,
                dev: None,
                weight: 1,
            });
            i += 1;
            continue;
        }
        let (kw, Some(v)) = (w[i], w.get(i + 1).copied()) else {
            ctx.err(line, format!("'{}' needs a value", w[i]));
            return None;
        };
        let nh = out.last_mut()?;
        match kw {
            "via" => nh.via = Some(addr(ctx, line, v)?),
            "dev" => nh.dev = Some(v.to_string()),
            "weight" => nh.weight = weight(ctx, line, v)?,
            _ => {
                ctx.err(line, format!("unsupported nexthop option '{kw}'"));
                return None;
            }
        }
        i += 2;
    }
    if let Some(n) = out.iter().position(|n| n.via.is_none() && n.dev.is_none()) {
        ctx.err(
            line,
            format!("nexthop {} needs 'via ADDR' or 'dev IF'", n + 1),
        );
        return None;
    }
    Some(out)
}

fn weight(ctx: &mut Ctx, line: usize, v: &str) -> Option<u16> {
    match v.parse::<u16>() {
        Ok(w @ 1..=256) => Some(w),
        _ => {
            ctx.err(line, format!("nexthop weight must be 1..256, got '{v}'"));
            None
        }
    }
}

/// Families agree, and a unicast route says where to go.
fn check_route(ctx: &mut Ctx, r: &RouteConfig) -> bool {
    let v4 = r.dest.is_ipv4();
    let hops = r.nexthops.iter().filter_map(|n| n.via);
    let mixed = [r.via, r.src]
        .into_iter()
        .flatten()
        .chain(hops)
        .any(|a| a.is_ipv4() != v4);
    if mixed {
        ctx.err(r.line, "the route mixes IPv4 and IPv6 addresses");
        return false;
    }
    if !r.nexthops.is_empty() && r.via.is_some() {
        ctx.err(
            r.line,
            "a route has either 'via ADDR' or nexthops, not both",
        );
        return false;
    }
    if r.kind == RouteKind::Unicast && r.via.is_none() && r.dev.is_none() && r.nexthops.is_empty() {
        ctx.err(r.line, "a route needs 'via ADDR' or 'dev IF'");
        return false;
    }
    true
}

/// Every line of a rule block.
pub(super) fn parse_rules(ctx: &mut Ctx, c: &Stmt, out: &mut Vec<RuleConfig>) {
    for (line, words) in block_lines(ctx, c) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        out.extend(rule(ctx, line, &w));
    }
}

fn rule(ctx: &mut Ctx, line: usize, w: &[&str]) -> Option<RuleConfig> {
    let mut r = RuleConfig {
        v6: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        table: 0,
        priority: None,
        line,
    };
    for pair in w.chunks(2) {
        let [kw, v] = pair else {
            ctx.err(line, format!("'{}' needs a value", pair[0]));
            return None;
        };
        match *kw {
            "from" | "to" => {
                let Some(p) = parse_prefix(v) else {
                    // keepalived logs "Invalid rule from/to address" and drops the rule.
                    ctx.warn(line, format!("rule skipped, as keepalived does: '{kw} {v}' is not an address or prefix (fix it to apply the rule)"));
                    return None;
                };
                *if *kw == "from" {
                    &mut r.from
                } else {
                    &mut r.to
                } = Some(p);
            }
            "iif" => r.iif = Some(v.to_string()),
            "oif" => r.oif = Some(v.to_string()),
            "table" | "lookup" => r.table = table(ctx, line, v)?,
            "priority" | "preference" | "pref" => r.priority = Some(number(ctx, line, kw, v)?),
            _ => {
                ctx.err(line, format!("unsupported rule option '{kw}'"));
                return None;
            }
        }
    }
    let fams: Vec<bool> = [r.from, r.to]
        .iter()
        .flatten()
        .map(|p| p.0.is_ipv6())
        .collect();
    if fams.windows(2).any(|f| f[0] != f[1]) {
        ctx.err(line, "the rule mixes IPv4 and IPv6 addresses");
        return None;
    }
    r.v6 = fams.first().copied().unwrap_or(false);
    if r.table == 0 {
        ctx.err(line, "a rule needs 'table N'");
        return None;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::p;
    use super::*;

    fn inst(block: &str) -> String {
        format!("vrrp_instance a {{\n interface e\n virtual_router_id 1\n{block}\n}}\n")
    }

    #[test]
    fn routes_of_keepalived_syntax() {
        let c = p(&inst(" virtual_routes {\n src 10.0.0.1 to 10.9.0.0/24 via 10.0.0.254 dev e1\n 10.8.0.0/16 dev e2 metric 5 scope link\n blackhole 10.7.0.0/24\n 0.0.0.0/0 gw 10.0.0.254 table 100\n 2001:db8:1::/48 via 2001:db8::1\n }")).unwrap();
        let r = &c.instances[0].routes;
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            (r[0].dest.to_string(), r[0].prefix),
            ("10.9.0.0".into(), 24)
        );
        assert_eq!(r[0].dev.as_deref(), Some("e1"));
        assert_eq!(
            (r[1].metric, r[1].scope, r[1].via),
            (Some(5), Some(253), None)
        );
        assert_eq!(r[2].kind, RouteKind::Blackhole);
        assert_eq!((r[3].prefix, r[3].table), (0, 100));
        assert_eq!(r[4].via, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(r[0].table, RT_TABLE_MAIN);
    }

    #[test]
    fn rules_of_keepalived_syntax() {
        let c = p(&inst(" virtual_rules {\n from 10.2.0.0/24 table 1\n to 10.3.0.0/24 table 1\n from 10.28.0.0/24 to 10.29.0.0/24 table 2 priority 11\n iif e1 table main\n }")).unwrap();
        let r = &c.instances[0].rules;
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].from, Some(("10.2.0.0".parse().unwrap(), 24)));
        assert_eq!((r[2].table, r[2].priority), (2, Some(11)));
        assert_eq!((r[3].iif.as_deref(), r[3].table), (Some("e1"), 254));
    }

    #[test]
    fn unsupported_or_incomplete_lines_are_errors() {
        let e = p(&inst(" virtual_routes {\n 10.1.0.0/24 via 10.0.0.1 realms 3\n 10.2.0.0/24\n 10.3.0.0/24 via 2001:db8::1\n }\n virtual_rules {\n from 10.0.0.0/8\n fwmark 1 table 3\n }")).unwrap_err().to_string();
        for want in [
            "k.conf:5: error: unsupported route option 'realms'",
            "k.conf:6: error: a route needs 'via ADDR' or 'dev IF'",
            "k.conf:7: error: the route mixes IPv4 and IPv6",
            "k.conf:10: error: a rule needs 'table N'",
            "k.conf:11: error: unsupported rule option 'fwmark'",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
    }

    #[test]
    fn multipath_routes_and_deprecated_spellings() {
        let c = p(&inst(" virtual_routes {\n 10.1.0.0/24 via 10.0.0.1 or 10.0.0.2\n 10.2.0.0/24 gw 10.0.0.1\n 10.3.0.0/24 table 7 nexthop via 10.0.0.1 dev e1 nexthop via 10.0.0.2 weight 3\n }\n virtual_rules {\n to 192.168.100./24 table 1\n from 10.0.0.0/8 table 2\n }")).unwrap();
        let r = &c.instances[0].routes;
        let hops = |i: usize| -> Vec<(String, Option<&str>, u16)> {
            r[i].nexthops
                .iter()
                .map(|n| (n.via.unwrap().to_string(), n.dev.as_deref(), n.weight))
                .collect()
        };
        assert_eq!(r[0].via, None, "the via address became the first nexthop");
        assert_eq!(
            hops(0),
            [("10.0.0.1".into(), None, 1), ("10.0.0.2".into(), None, 1)]
        );
        assert_eq!(r[1].via, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r[2].table, 7);
        assert_eq!(
            hops(2),
            [
                ("10.0.0.1".into(), Some("e1"), 1),
                ("10.0.0.2".into(), None, 3)
            ]
        );
        // keepalived skips a rule with a bad address, and so does vrrpd, saying so.
        assert_eq!(c.instances[0].rules.len(), 1);
        let w = super::super::test_util::msgs(&c.warnings).join("\n");
        for want in [
            "5: 'or' for routes is deprecated",
            "6: 'gw' for routes is deprecated",
            "10: rule skipped, as keepalived does: 'to 192.168.100./24'",
        ] {
            assert!(w.contains(want), "{want}\n{w}");
        }
        let e = p(&inst(" virtual_routes {\n 10.1.0.0/24 or 10.0.0.2\n 10.2.0.0/24 via 10.0.0.1 nexthop via 10.0.0.2\n 10.3.0.0/24 nexthop weight 2\n 10.4.0.0/24 nexthop via 10.0.0.1 weight 0\n }")).unwrap_err().to_string();
        for want in [
            "5: error: 'or ADDR' needs a 'via ADDR' before it",
            "6: error: a route has either 'via ADDR' or nexthops",
            "7: error: nexthop 1 needs 'via ADDR' or 'dev IF'",
            "8: error: nexthop weight must be 1..256, got '0'",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
    }

    #[test]
    fn static_sections() {
        let c = p(&format!("static_ipaddress {{\n 192.0.2.1/24 dev e1\n}}\nstatic_routes {{\n 198.51.100.0/24 via 192.0.2.254\n}}\nstatic_rules {{\n from 192.0.2.0/24 table 7\n}}\n{}", inst(""))).unwrap();
        assert_eq!(c.static_addresses.len(), 1);
        assert_eq!(c.static_addresses[0].dev.as_deref(), Some("e1"));
        assert_eq!(c.static_routes.len(), 1);
        assert_eq!(c.static_rules[0].table, 7);
    }
}
