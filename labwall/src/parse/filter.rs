//! Filtering and NAT: ALLOW/DENY/REJECT, POLICY, NOROUTE and NAT SNAT/MASQ/DNAT
//! (docs/labwall.md, "The language in one screen").

use super::cursor::{valid_ident, LineParser};
use super::{NatOn, PolicyAction, RuleAction, Stmt};
use crate::line::Token;
use std::net::{IpAddr, Ipv4Addr};

/// `ALLOW|DENY|REJECT <src> <dst> <service>... [LOG] [LIMIT n/unit]`.
pub(super) fn rule(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    let kw = l.toks[0].clone();
    const F: &str = "ALLOW|DENY|REJECT <src> <dst> <service>... [LOG] [LIMIT <n>/<unit>]";
    let action = match kw.text.as_str() {
        "ALLOW" => RuleAction::Allow,
        "DENY" => RuleAction::Deny,
        _ => RuleAction::Reject,
    };
    let st = p.tok(1, "source", F)?;
    let dt = p.tok(2, "destination", F)?;
    let src = p.endpoint(&st);
    let dst = p.endpoint(&dt);
    let mut services = Vec::new();
    let mut log = false;
    let mut limit = None;
    let mut i = 3;
    while i < l.toks.len() {
        let a = l.toks[i].clone();
        match a.text.as_str() {
            "LOG" => log = true,
            "LIMIT" => {
                let r = p.tok(i + 1, "rate", F)?;
                limit = Some(p.rate(&r)?);
                i += 1;
            }
            _ => services.push(a),
        }
        i += 1;
    }
    if services.is_empty() {
        p.tok(l.toks.len(), "service", F);
        return None;
    }
    Some(Stmt::Rule {
        action,
        src: src?,
        dst: dst?,
        services,
        log,
        limit,
    })
}

/// `POLICY <src|all|fw> <dst|all|fw> ACCEPT|DROP|REJECT [LOG]`.
pub(super) fn policy(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "POLICY <src-zone|all|fw> <dst-zone|all|fw> <ACCEPT|DROP|REJECT> [LOG]";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    let src = p.tok(1, "source zone", F)?;
    let dst = p.tok(2, "destination zone", F)?;
    for z in [&src, &dst] {
        if !valid_ident(&z.text) {
            p.err(
                z,
                format!("`{}` is not a zone", z.text),
                "a zone name, all or fw",
                "",
            );
            return None;
        }
    }
    let at = p.tok(3, "action", F)?;
    let action = match at.text.as_str() {
        "ACCEPT" => PolicyAction::Accept,
        "DROP" => PolicyAction::Drop,
        "REJECT" => PolicyAction::Reject,
        _ => {
            p.err(
                &at,
                format!("unknown policy `{}`", at.text),
                "ACCEPT, DROP or REJECT",
                "",
            );
            return None;
        }
    };
    let log = match t(4) {
        None => false,
        Some("LOG") => true,
        Some(_) => {
            let tk = l.toks[4].clone();
            p.err(&tk, format!("unexpected `{}`", tk.text), F, "");
            return None;
        }
    };
    p.too_many(5, F);
    Some(Stmt::Policy {
        src,
        dst,
        action,
        log,
    })
}

/// `NOROUTE <zone> <zone>...`: the routers never route between these zones.
pub(super) fn noroute(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    const F: &str = "NOROUTE <zone> <zone>...";
    p.tok(2, "at least two zones", F)?;
    Some(Stmt::Noroute(l.toks[1..].to_vec()))
}

/// `NAT SNAT <Name> TO <ip|VIP>`.
fn snat(p: &mut LineParser) -> Option<Stmt> {
    let name = p.tok(2, "interface name", NAT_FORM)?;
    let to_kw = p.tok(3, "TO", NAT_FORM)?;
    if to_kw.text != "TO" {
        p.err(&to_kw, "expected TO", NAT_FORM, "");
        return None;
    }
    let to_t = p.tok(4, "address", NAT_FORM)?;
    let to = nat_on(p, &to_t)?;
    p.too_many(5, NAT_FORM);
    Some(Stmt::Snat { name, to })
}

/// `NAT MASQ <Name>`.
fn masq(p: &mut LineParser) -> Option<Stmt> {
    let name = p.tok(2, "interface name", NAT_FORM)?;
    p.too_many(3, NAT_FORM);
    Some(Stmt::Masq { name })
}

/// `NAT DNAT <Name>:<ip|VIP> <service> TO <alias|ip>[:port]`.
fn dnat(p: &mut LineParser) -> Option<Stmt> {
    let on_t = p.tok(2, "<Name>:<ip|VIP>", NAT_FORM)?;
    let Some((n, a)) = on_t.text.split_once(':') else {
        p.err(
            &on_t,
            format!("`{}`: missing :<ip|VIP>", on_t.text),
            "<Name>:<ip|VIP>, e.g. INTER:VIP",
            "",
        );
        return None;
    };
    let name = Token {
        text: n.to_string(),
        col: on_t.col,
        width: n.len() as u32,
    };
    let at = Token {
        text: a.to_string(),
        col: on_t.col + n.len() as u32 + 1,
        width: a.len() as u32,
    };
    let on = nat_on(p, &at)?;
    let service = p.tok(3, "service", NAT_FORM)?;
    let to_kw = p.tok(4, "TO", NAT_FORM)?;
    if to_kw.text != "TO" {
        p.err(&to_kw, "expected TO", NAT_FORM, "");
        return None;
    }
    let tt = p.tok(5, "target", NAT_FORM)?;
    let (target, port) = match tt.text.rsplit_once(':') {
        Some((a, pstr)) if !a.contains(':') => match pstr.parse::<u16>() {
            Ok(pn) if pn > 0 => (a.to_string(), Some(pn)),
            _ => {
                p.err(
                    &tt,
                    format!("`{pstr}` is not a port"),
                    "a port between 1 and 65535",
                    "",
                );
                return None;
            }
        },
        _ => (tt.text.clone(), None),
    };
    p.too_many(6, NAT_FORM);
    let to = Token {
        text: target,
        col: tt.col,
        width: tt.width,
    };
    Some(Stmt::Dnat {
        name,
        on,
        service,
        to,
        port,
    })
}

const NAT_FORM: &str = "NAT SNAT <Name> TO <ip|VIP> | NAT MASQ <Name> | NAT DNAT <Name>:<ip|VIP> <service> TO <alias|ip>[:port]";

/// `NAT SNAT|MASQ|DNAT ...`, by its second word.
pub(super) fn nat(p: &mut LineParser) -> Option<Stmt> {
    let k = p.tok(1, "SNAT, MASQ or DNAT", NAT_FORM)?;
    match k.text.as_str() {
        "SNAT" => snat(p),
        "MASQ" => masq(p),
        "DNAT" => dnat(p),
        _ => {
            p.err(&k, format!("unknown NAT kind `{}`", k.text), NAT_FORM, "");
            None
        }
    }
}

/// The address a NAT line works on: `VIP` (the interface's) or an IPv4 address.
fn nat_on(p: &mut LineParser, tk: &Token) -> Option<NatOn> {
    if tk.text == "VIP" {
        return Some(NatOn::Vip);
    }
    match tk.text.parse::<Ipv4Addr>() {
        Ok(a) => Some(NatOn::Ip(IpAddr::V4(a))),
        Err(_) => {
            p.err(
                tk,
                format!("`{}` is neither VIP nor an IPv4 address", tk.text),
                "VIP or an IPv4 address",
                "",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{parse_text, Endpoint, NatOn, PolicyAction, Rate, RuleAction, Stmt};

    fn first_error(src: &str) -> (String, u32) {
        let d = parse_text(src).1;
        (d[0].message.clone(), d[0].loc.col)
    }

    #[test]
    fn rule_with_alias_log_and_limit() {
        let Some(Stmt::Rule {
            action,
            src,
            dst,
            services,
            log,
            limit,
        }) = parse_text("ALLOW net srv:web1 https http LOG LIMIT 5/minute").0
        else {
            panic!()
        };
        assert_eq!(action, RuleAction::Allow);
        assert!(matches!(src, Endpoint::Zone(z) if z.text == "net"));
        let Endpoint::ZoneAlias(z, a) = dst else {
            panic!()
        };
        assert_eq!(
            (z.text.as_str(), a.text.as_str(), a.col),
            ("srv", "web1", 15)
        );
        let s: Vec<&str> = services.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(s, ["https", "http"]);
        assert!(log);
        assert_eq!(
            limit,
            Some(Rate {
                n: 5,
                unit: "minute".into()
            })
        );
    }

    #[test]
    fn rule_endpoints_and_errors() {
        let Some(Stmt::Rule {
            action, src, dst, ..
        }) = parse_text("REJECT a:10.0.0.0/8 fw ssh").0
        else {
            panic!()
        };
        assert_eq!(action, RuleAction::Reject);
        assert!(
            matches!(src, Endpoint::ZoneNet(z, n) if z.text == "a" && n.to_string() == "10.0.0.0/8")
        );
        assert!(matches!(dst, Endpoint::Fw));
        assert!(matches!(
            parse_text("DENY all fw x").0,
            Some(Stmt::Rule {
                action: RuleAction::Deny,
                src: Endpoint::All,
                ..
            })
        ));
        assert_eq!(first_error("DENY all fw"), ("missing service".into(), 12));
        assert_eq!(
            first_error("ALLOW a:b:c fw ssh"),
            ("`b:c` is neither an alias nor an address".into(), 9)
        );
        assert_eq!(
            first_error("ALLOW 1a fw ssh"),
            ("`1a` is not a zone".into(), 7)
        );
    }

    #[test]
    fn policy_forms() {
        let Some(Stmt::Policy {
            src,
            dst,
            action,
            log,
        }) = parse_text("POLICY all fw REJECT LOG").0
        else {
            panic!()
        };
        assert_eq!((src.text.as_str(), dst.text.as_str()), ("all", "fw"));
        assert_eq!((action, log), (PolicyAction::Reject, true));
        assert_eq!(
            first_error("POLICY a b MAYBE"),
            ("unknown policy `MAYBE`".into(), 12)
        );
        assert_eq!(
            first_error("POLICY a b DROP X"),
            ("unexpected `X`".into(), 17)
        );
    }

    #[test]
    fn noroute_needs_two_zones() {
        let Some(Stmt::Noroute(z)) = parse_text("NOROUTE a b c").0 else {
            panic!()
        };
        assert_eq!(z.len(), 3);
        assert_eq!(
            first_error("NOROUTE a"),
            ("missing at least two zones".into(), 10)
        );
    }

    #[test]
    fn nat_kinds() {
        assert!(matches!(
            parse_text("NAT SNAT INTER TO VIP").0,
            Some(Stmt::Snat { to: NatOn::Vip, .. })
        ));
        assert!(matches!(
            parse_text("NAT SNAT INTER TO 10.1.1.9").0,
            Some(Stmt::Snat { to: NatOn::Ip(a), .. }) if a.to_string() == "10.1.1.9"
        ));
        assert!(
            matches!(parse_text("NAT MASQ INTER").0, Some(Stmt::Masq { name }) if name.text == "INTER")
        );
        let Some(Stmt::Dnat {
            name,
            on,
            service,
            to,
            port,
        }) = parse_text("NAT DNAT INTER:VIP https TO web1:8443").0
        else {
            panic!()
        };
        assert_eq!((name.text.as_str(), name.width), ("INTER", 5));
        assert_eq!(on, NatOn::Vip);
        assert_eq!(service.text, "https");
        assert_eq!((to.text.as_str(), port), ("web1", Some(8443)));
        assert_eq!(
            first_error("NAT DNAT INTER https"),
            ("`INTER`: missing :<ip|VIP>".into(), 10)
        );
        assert_eq!(first_error("NAT FOO"), ("unknown NAT kind `FOO`".into(), 5));
        assert_eq!(
            first_error("NAT SNAT INTER TO 2001:db8::1"),
            (
                "`2001:db8::1` is neither VIP nor an IPv4 address".into(),
                19
            )
        );
        assert_eq!(
            first_error("NAT DNAT INTER:VIP https TO web1:0"),
            ("`0` is not a port".into(), 29)
        );
        assert_eq!(
            first_error("NAT SNAT INTER FROM VIP"),
            ("expected TO".into(), 16)
        );
    }
}
