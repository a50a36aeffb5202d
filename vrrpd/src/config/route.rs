//! `virtual_routes` / `virtual_rules` (in an instance: present while it is MASTER) and
//! `static_routes` / `static_rules` (top level: present while vrrpd runs), in the subset of
//! keepalived's syntax (keepalived.conf(5)) that describes one route or rule per line:
//!
//! ```text
//! [src ADDR] [to] DEST[/LEN] [via|gw ADDR] [dev IF] [table N] [metric N] [scope S] [proto N]
//! blackhole|unreachable|prohibit DEST[/LEN] [table N] [metric N]
//! [from SRC[/LEN]] [to DST[/LEN]] [iif IF] [oif IF] table N [priority|preference|pref N]
//! ```
//!
//! Anything else on such a line (multipath `or`, `realms`, `no_track` ...) is an error: a route
//! vrrpd silently left out would be a black hole after failover.

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

/// `ADDR[/LEN]`; the length defaults to the full address (a host route).
fn prefix(ctx: &mut Ctx, line: usize, s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let Ok(addr) = a.parse::<IpAddr>() else {
        ctx.err(line, format!("'{s}' is not an address or prefix"));
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() {
        Some(max)
    } else {
        l.parse::<u8>().ok()
    };
    match len {
        Some(n) if n <= max => Some((addr, n)),
        _ => {
            ctx.err(line, format!("bad prefix length in '{s}'"));
            None
        }
    }
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

/// Every line of a route block.
pub(super) fn parse_routes(ctx: &mut Ctx, c: &Stmt, out: &mut Vec<RouteConfig>) {
    let Some(b) = &c.block else {
        ctx.err(c.line, format!("'{}' needs a {{ block }}", c.key));
        return;
    };
    for s in b {
        let words: Vec<&str> = std::iter::once(s.key.as_str())
            .chain(s.args.iter().map(String::as_str))
            .collect();
        if let Some(r) = route(ctx, s.line, &words) {
            out.push(r);
        }
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
        line,
    };
    let mut dest = None;
    let mut i = 0;
    while i < w.len() {
        let (kw, val) = (w[i], w.get(i + 1).copied());
        let kind = match kw {
            "blackhole" => Some(RouteKind::Blackhole),
            "unreachable" => Some(RouteKind::Unreachable),
            "prohibit" => Some(RouteKind::Prohibit),
            _ => None,
        };
        if let Some(k) = kind {
            r.kind = k;
            i += 1;
            continue;
        }
        let takes = matches!(
            kw,
            "src" | "to" | "via" | "gw" | "dev" | "table" | "metric" | "scope" | "proto"
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
        match kw {
            "src" => r.src = Some(addr(ctx, line, v)?),
            "to" => dest = Some(prefix(ctx, line, v)?),
            "via" | "gw" => r.via = Some(addr(ctx, line, v)?),
            "dev" => r.dev = Some(v.to_string()),
            "table" => r.table = table(ctx, line, v)?,
            "metric" => r.metric = Some(number(ctx, line, kw, v)?),
            "scope" => r.scope = Some(scope(ctx, line, v)?),
            _ => r.proto = Some(u8::try_from(number(ctx, line, kw, v)?).ok()?),
        }
        i += 2;
    }
    let Some((d, p)) = dest else {
        ctx.err(line, "a route needs a destination");
        return None;
    };
    (r.dest, r.prefix) = (d, p);
    check_route(ctx, &r).then_some(r)
}

/// Families agree, and a unicast route says where to go.
fn check_route(ctx: &mut Ctx, r: &RouteConfig) -> bool {
    let v4 = r.dest.is_ipv4();
    let mixed = [r.via, r.src].iter().flatten().any(|a| a.is_ipv4() != v4);
    if mixed {
        ctx.err(r.line, "the route mixes IPv4 and IPv6 addresses");
        return false;
    }
    if r.kind == RouteKind::Unicast && r.via.is_none() && r.dev.is_none() {
        ctx.err(r.line, "a route needs 'via ADDR' or 'dev IF'");
        return false;
    }
    true
}

/// Every line of a rule block.
pub(super) fn parse_rules(ctx: &mut Ctx, c: &Stmt, out: &mut Vec<RuleConfig>) {
    let Some(b) = &c.block else {
        ctx.err(c.line, format!("'{}' needs a {{ block }}", c.key));
        return;
    };
    for s in b {
        let words: Vec<&str> = std::iter::once(s.key.as_str())
            .chain(s.args.iter().map(String::as_str))
            .collect();
        if let Some(r) = rule(ctx, s.line, &words) {
            out.push(r);
        }
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
            "from" => r.from = Some(prefix(ctx, line, v)?),
            "to" => r.to = Some(prefix(ctx, line, v)?),
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
        let e = p(&inst(" virtual_routes {\n 10.1.0.0/24 via 10.0.0.1 or 10.0.0.2\n 10.2.0.0/24\n 10.3.0.0/24 via 2001:db8::1\n }\n virtual_rules {\n from 10.0.0.0/8\n fwmark 1 table 3\n }")).unwrap_err().to_string();
        for want in [
            "k.conf:5: error: unsupported route option 'or'",
            "k.conf:6: error: a route needs 'via ADDR' or 'dev IF'",
            "k.conf:7: error: the route mixes IPv4 and IPv6",
            "k.conf:10: error: a rule needs 'table N'",
            "k.conf:11: error: unsupported rule option 'fwmark'",
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
