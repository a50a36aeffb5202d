//! Site-wide settings: SET, VRRP AUTH, VRRP START GROUP, ANTISPOOF, LOG and COUNTERS
//! (docs/labwall.md, "The language in one screen").

use super::cursor::{valid_ident, LineParser};
use super::Stmt;
use crate::line::Token;
use std::net::IpAddr;

/// `SET ROLE=...` / `SET HOSTNAME=...`: compiler parameters (not variables).
pub(super) fn set(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "SET ROLE=<MASTER|BACKUP> | SET HOSTNAME=<name>";
    let a = p.tok(1, "NAME=value", F)?;
    p.too_many(2, F);
    match a.text.split_once('=') {
        Some((n, v)) if n == "ROLE" || n == "HOSTNAME" => Some(Stmt::Set {
            name: Token {
                text: n.to_string(),
                col: a.col,
                width: n.len() as u32,
            },
            value: v.to_string(),
        }),
        _ => {
            p.err(
                &a,
                format!("unknown compiler parameter `{}`", a.text),
                F,
                "plain variables are written NAME=value without SET",
            );
            None
        }
    }
}

/// `VRRP AUTH <PASS|AH|NONE> <secret> <router_id> <smtp|-> <email|-> [pooling|polling] <secs>`.
fn vrrp_auth(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "VRRP AUTH <PASS|AH|NONE> <secret> <router_id> <smtp_server> <email> [pooling|polling] <secs>";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    let kind = p.tok(2, "auth type", F)?;
    if !["PASS", "AH", "NONE"].contains(&kind.text.as_str()) {
        p.err(
            &kind,
            format!("unknown auth type `{}`", kind.text),
            "PASS, AH or NONE",
            "",
        );
        return None;
    }
    let secret = p.tok(3, "secret", F)?;
    let router_id = p.tok(4, "router id", F)?.text;
    let smtp_t = p.tok(5, "smtp server", F)?;
    let smtp = if smtp_t.text == "-" {
        None
    } else {
        match smtp_t.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.err(
                    &smtp_t,
                    format!("`{}` is not an IP address", smtp_t.text),
                    "the SMTP server's IP address or -",
                    "",
                );
                return None;
            }
        }
    };
    let email_t = p.tok(6, "notification e-mail", F)?;
    let email = if email_t.text == "-" {
        None
    } else if email_t.text.contains('@') && !email_t.text.contains(['{', '}', '"']) {
        Some(email_t.text.clone())
    } else {
        p.err(
            &email_t,
            format!("`{}` is not an e-mail address", email_t.text),
            "user@domain or -",
            "",
        );
        return None;
    };
    let mut i = 7;
    if matches!(t(7), Some("pooling") | Some("polling")) {
        i = 8;
    }
    let at = p.tok(i, "advert interval (seconds)", F)?;
    let advert = match at.text.parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => n,
        _ => {
            p.err(
                &at,
                format!("`{}` is not an advert interval", at.text),
                "seconds between 1 and 255",
                "",
            );
            return None;
        }
    };
    p.too_many(i + 1, F);
    Some(Stmt::VrrpAuth {
        kind: kind.text,
        secret,
        router_id,
        smtp,
        email,
        advert,
    })
}

/// `VRRP START GROUP <name>`: the keepalived sync group.
fn vrrp_group(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "VRRP START GROUP <name>";
    let l = p.line;
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    if t(2) != Some("GROUP") {
        let tk = p.tok(2, "GROUP", F)?;
        p.err(&tk, "expected GROUP", F, "");
        return None;
    }
    let name = p.tok(3, "sync group name", F)?;
    if !name
        .text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        p.err(
            &name,
            format!("`{}` is not a valid group name", name.text),
            "letters, digits, _ - .",
            "",
        );
        return None;
    }
    p.too_many(4, F);
    Some(Stmt::VrrpGroup { name })
}

/// `ANTISPOOF strict|loose|off`.
pub(super) fn antispoof(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "ANTISPOOF <strict|loose|off>";
    let m = p.tok(1, "mode", F)?;
    if !["strict", "loose", "off"].contains(&m.text.as_str()) {
        p.err(
            &m,
            format!("unknown mode `{}`", m.text),
            "strict, loose or off",
            "",
        );
        return None;
    }
    p.too_many(2, F);
    Some(Stmt::Antispoof(m.text))
}

/// `LOG [PREFIX p] [LEVEL l] [RATE n/unit] [NFLOG group]`: options as key/value pairs.
pub(super) fn log(p: &mut LineParser) -> Option<Stmt> {
    let l = p.line;
    const F: &str = "LOG [PREFIX p] [LEVEL l] [RATE n/unit] [NFLOG group]";
    let (mut prefix, mut level, mut rate, mut nflog) = (None, None, None, None);
    let mut i = 1;
    while i < l.toks.len() {
        let k = l.toks[i].clone();
        let v = p.tok(i + 1, "value", F)?;
        match k.text.as_str() {
            "PREFIX" => {
                if v.text.len() > 20
                    || !v
                        .text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
                {
                    p.err(
                        &v,
                        "log prefix must be at most 20 of [A-Za-z0-9_-.:]",
                        "a short word such as lw",
                        "",
                    );
                    return None;
                }
                prefix = Some(v.text)
            }
            "LEVEL" => {
                const LV: [&str; 8] = [
                    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
                ];
                if !LV.contains(&v.text.as_str()) {
                    p.err(
                        &v,
                        format!("unknown log level `{}`", v.text),
                        "emerg alert crit err warn notice info debug",
                        "",
                    );
                    return None;
                }
                level = Some(v.text)
            }
            "RATE" => rate = Some(p.rate(&v)?),
            "NFLOG" => match v.text.parse::<u16>() {
                Ok(g) => nflog = Some(g),
                Err(_) => {
                    p.err(&v, "not an NFLOG group", "a number 0-65535", "");
                    return None;
                }
            },
            _ => {
                p.err(&k, format!("unknown LOG option `{}`", k.text), F, "");
                return None;
            }
        }
        i += 2;
    }
    Some(Stmt::Log {
        prefix,
        level,
        rate,
        nflog,
    })
}

/// `COUNTERS on|off`.
pub(super) fn counters(p: &mut LineParser) -> Option<Stmt> {
    let v = p.tok(1, "on or off", "COUNTERS <on|off>")?;
    p.too_many(2, "COUNTERS <on|off>");
    match v.text.as_str() {
        "on" => Some(Stmt::Counters(true)),
        "off" => Some(Stmt::Counters(false)),
        _ => {
            p.err(&v, format!("`{}`", v.text), "on or off", "");
            None
        }
    }
}

const CHECK_F: &str = "VRRP CHECK <name> [EVERY <s>] [TIMEOUT <s>] [FALL <n>] [RISE <n>] [WEIGHT <-253..253>|FAULT] RUN </path/program> [arg...]";

/// A number in `range` at word `i`, for the option named by word `i - 1`.
fn check_num(p: &mut LineParser, i: usize, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    let t = p.tok(i, "a number", CHECK_F)?;
    match t.text.parse::<i64>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            let want = format!("a number from {} to {}", range.start(), range.end());
            p.err(&t, format!("`{}` is out of range", t.text), &want, "");
            None
        }
    }
}

/// The program and arguments after RUN: an absolute path (run without a shell, so no quotes).
fn check_command(p: &mut LineParser, i: usize) -> Option<Vec<String>> {
    let prog = p.tok(i, "the program after RUN", CHECK_F)?;
    if !prog.text.starts_with('/') {
        let fix = format!("write the full path, e.g. /usr/bin/{}", prog.text);
        p.err(
            &prog,
            "the check program must be an absolute path",
            "/path/program",
            &fix,
        );
        return None;
    }
    let words: Vec<Token> = p.line.toks[i..].to_vec();
    if let Some(q) = words.iter().find(|t| t.text.contains(['"', '\''])) {
        let msg = format!("`{}`: quotes are not allowed in a check command", q.text);
        p.err(
            q,
            msg,
            "words without quotes",
            "the command runs without a shell: put complex checks in a script",
        );
        return None;
    }
    Some(words.into_iter().map(|t| t.text).collect())
}

/// `VRRP CHECK <name> [EVERY s] [TIMEOUT s] [FALL n] [RISE n] [WEIGHT w|FAULT] RUN prog args`.
fn vrrp_check(p: &mut LineParser) -> Option<Stmt> {
    let name = p.tok(2, "check name", CHECK_F)?;
    if !valid_ident(&name.text) {
        p.err(
            &name,
            format!("`{}` is not a valid check name", name.text),
            "letters, digits, _",
            "",
        );
        return None;
    }
    let mut c = crate::model::VrrpCheck::new(&name.text, p.line.loc.line);
    let mut i = 3;
    loop {
        let kw = p.tok(i, "RUN and the check's command", CHECK_F)?;
        match kw.text.as_str() {
            "EVERY" => c.interval = check_num(p, i + 1, 1..=3600)? as u32,
            "TIMEOUT" => c.timeout = Some(check_num(p, i + 1, 1..=3600)? as u32),
            "FALL" => c.fall = check_num(p, i + 1, 1..=255)? as u32,
            "RISE" => c.rise = check_num(p, i + 1, 1..=255)? as u32,
            "WEIGHT" if p.line.toks.get(i + 1).is_some_and(|t| t.text == "FAULT") => {
                c.weight = None
            }
            "WEIGHT" => c.weight = Some(check_num(p, i + 1, -253..=253)? as i32),
            "RUN" => {
                c.command = check_command(p, i + 1)?;
                return Some(Stmt::VrrpCheck { name, check: c });
            }
            _ => {
                p.err(
                    &kw,
                    format!("unexpected `{}`", kw.text),
                    CHECK_F,
                    "options come before RUN",
                );
                return None;
            }
        }
        i += 2;
    }
}

/// `VRRP AUTH ...`, `VRRP START GROUP ...`, `VRRP CHECK ...` or `VRRP VMAC`, by the second word.
pub(super) fn vrrp(p: &mut LineParser) -> Option<Stmt> {
    match p.line.toks.get(1).map(|t| t.text.as_str()) {
        Some("AUTH") => vrrp_auth(p),
        Some("START") => vrrp_group(p),
        Some("CHECK") => vrrp_check(p),
        Some("VMAC") => {
            p.too_many(2, "VRRP VMAC");
            Some(Stmt::VrrpVmac)
        }
        _ => {
            const F: &str = "VRRP AUTH ... | VRRP START GROUP <name> | VRRP CHECK ... | VRRP VMAC";
            let tk = p.tok(1, "AUTH, START, CHECK or VMAC", F)?;
            p.err(&tk, format!("unknown VRRP statement `{}`", tk.text), F, "");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{parse_text, Rate, Stmt};

    fn first_error(src: &str) -> (String, u32) {
        let d = parse_text(src).1;
        (d[0].message.clone(), d[0].loc.col)
    }

    #[test]
    fn set_role_and_unknown_parameter() {
        let Some(Stmt::Set { name, value }) = parse_text("SET ROLE=MASTER").0 else {
            panic!()
        };
        assert_eq!(
            (name.text.as_str(), name.width, value.as_str()),
            ("ROLE", 4, "MASTER")
        );
        assert_eq!(
            first_error("SET FOO=1"),
            ("unknown compiler parameter `FOO=1`".into(), 5)
        );
    }

    #[test]
    fn vrrp_auth_with_and_without_pooling() {
        let Some(Stmt::VrrpAuth {
            kind,
            secret,
            router_id,
            smtp,
            email,
            advert,
        }) = parse_text("VRRP AUTH PASS XYZ rid 172.16.1.12 admin@test.fr pooling 5").0
        else {
            panic!()
        };
        assert_eq!(
            (
                kind.as_str(),
                secret.text.as_str(),
                router_id.as_str(),
                advert
            ),
            ("PASS", "XYZ", "rid", 5)
        );
        assert_eq!(smtp, Some("172.16.1.12".parse().unwrap()));
        assert_eq!(email.as_deref(), Some("admin@test.fr"));
        let Some(Stmt::VrrpAuth {
            smtp,
            email,
            advert,
            ..
        }) = parse_text("VRRP AUTH AH s r - - 3").0
        else {
            panic!()
        };
        assert_eq!((smtp, email, advert), (None, None, 3));
        assert_eq!(
            first_error("VRRP AUTH PASS s r - nobody 5"),
            ("`nobody` is not an e-mail address".into(), 22)
        );
        assert_eq!(
            first_error("VRRP AUTH PASS s r - - 0"),
            ("`0` is not an advert interval".into(), 24)
        );
        assert_eq!(
            first_error("VRRP AUTH MD5 s r - - 1"),
            ("unknown auth type `MD5`".into(), 11)
        );
    }

    #[test]
    fn vrrp_group_and_unknown_vrrp() {
        let Some(Stmt::VrrpGroup { name }) = parse_text("VRRP START GROUP g-1").0 else {
            panic!()
        };
        assert_eq!(name.text, "g-1");
        assert_eq!(first_error("VRRP START x"), ("expected GROUP".into(), 12));
        assert_eq!(
            first_error("VRRP FOO"),
            ("unknown VRRP statement `FOO`".into(), 6)
        );
        assert_eq!(
            first_error("VRRP"),
            ("missing AUTH, START, CHECK or VMAC".into(), 5)
        );
    }

    #[test]
    fn antispoof_and_counters() {
        assert!(
            matches!(parse_text("ANTISPOOF strict").0, Some(Stmt::Antispoof(m)) if m == "strict")
        );
        assert_eq!(
            first_error("ANTISPOOF maybe"),
            ("unknown mode `maybe`".into(), 11)
        );
        assert!(matches!(
            parse_text("COUNTERS off").0,
            Some(Stmt::Counters(false))
        ));
        assert!(matches!(
            parse_text("COUNTERS on").0,
            Some(Stmt::Counters(true))
        ));
        assert_eq!(first_error("COUNTERS maybe"), ("`maybe`".into(), 10));
    }

    #[test]
    fn log_options() {
        let Some(Stmt::Log {
            prefix,
            level,
            rate,
            nflog,
        }) = parse_text("LOG PREFIX fw LEVEL warn RATE 10/second NFLOG 2").0
        else {
            panic!()
        };
        assert_eq!(prefix.as_deref(), Some("fw"));
        assert_eq!(level.as_deref(), Some("warn"));
        assert_eq!(
            rate,
            Some(Rate {
                n: 10,
                unit: "second".into()
            })
        );
        assert_eq!(nflog, Some(2));
        assert_eq!(
            first_error("LOG LEVEL loud"),
            ("unknown log level `loud`".into(), 11)
        );
        assert_eq!(first_error("LOG PREFIX"), ("missing value".into(), 11));
        assert_eq!(
            first_error("LOG COLOR red"),
            ("unknown LOG option `COLOR`".into(), 5)
        );
        assert_eq!(
            first_error("LOG RATE 5/week"),
            ("`5/week` is not a rate".into(), 10)
        );
    }

    #[test]
    fn vrrp_check_options_defaults_and_errors() {
        let Some(Stmt::VrrpCheck { check: c, .. }) = parse_text(
            "VRRP CHECK up EVERY 2 FALL 3 RISE 2 WEIGHT -60 RUN /usr/bin/ping -c1 10.0.0.1",
        )
        .0
        else {
            panic!("not parsed")
        };
        assert_eq!((c.interval, c.fall, c.rise, c.weight), (2, 3, 2, Some(-60)));
        assert_eq!(c.command, ["/usr/bin/ping", "-c1", "10.0.0.1"]);
        let Some(Stmt::VrrpCheck { check: d, .. }) = parse_text("VRRP CHECK x RUN /bin/true").0
        else {
            panic!("not parsed")
        };
        assert_eq!(
            (d.interval, d.fall, d.rise, d.weight, d.timeout),
            (1, 1, 1, None, None)
        );
        let Some(Stmt::VrrpCheck { check: f, .. }) =
            parse_text("VRRP CHECK x WEIGHT FAULT TIMEOUT 5 RUN /bin/true").0
        else {
            panic!("not parsed")
        };
        assert_eq!((f.weight, f.timeout), (None, Some(5)));
        assert_eq!(
            first_error("VRRP CHECK x RUN ping -c1 h").0,
            "the check program must be an absolute path"
        );
        assert_eq!(
            first_error("VRRP CHECK x FALL 0 RUN /bin/true").0,
            "`0` is out of range"
        );
        assert_eq!(
            first_error("VRRP CHECK x WEIGHT 300 RUN /bin/true").0,
            "`300` is out of range"
        );
        assert_eq!(
            first_error("VRRP CHECK x EVERY 1").0,
            "missing RUN and the check's command"
        );
        assert_eq!(
            first_error("VRRP CHECK x SOON RUN /bin/true").0,
            "unexpected `SOON`"
        );
        assert!(first_error("VRRP CHECK x RUN /bin/sh -c 'a b'")
            .0
            .contains("quotes"));
        assert_eq!(
            first_error("VRRP CHECK a-b RUN /bin/true").0,
            "`a-b` is not a valid check name"
        );
        assert!(matches!(parse_text("VRRP VMAC").0, Some(Stmt::VrrpVmac)));
        assert_eq!(first_error("VRRP VMAC on").0, "unexpected `on`");
    }
}
