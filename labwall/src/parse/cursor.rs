//! [`LineParser`]: one preprocessed line being parsed, with the helpers every statement uses to
//! take its words and report what is missing or malformed at the right column.

use super::{AddrSpec, Endpoint, Rate, VrrpSpec};
use crate::diag::Diagnostic;
use crate::line::{Line, Token};
use crate::net::{parse_mask, Net};
use std::net::{IpAddr, Ipv4Addr};

/// The line being parsed and where its diagnostics go (a scratch list for tainted lines).
pub struct LineParser<'a> {
    pub line: &'a Line,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl LineParser<'_> {
    /// Word `i`, or a "missing <what>" error at the end of the line (`form` is the syntax).
    pub fn tok(&mut self, i: usize, what: &str, form: &str) -> Option<Token> {
        match self.line.toks.get(i) {
            Some(t) => Some(t.clone()),
            None => {
                self.diags.push(
                    self.line
                        .diag_end(format!("missing {what}"))
                        .expected(form.to_string()),
                );
                None
            }
        }
    }
    /// An error at `t` with what was expected there and (if not empty) how to fix it.
    pub fn err(&mut self, t: &Token, msg: impl Into<String>, expected: &str, fix: &str) {
        let mut d = self.line.diag_at(t, msg).expected(expected.to_string());
        if !fix.is_empty() {
            d = d.fix(fix.to_string());
        }
        self.diags.push(d);
    }
    /// Word `i` as an IPv4 address.
    pub fn ip4(&mut self, i: usize, what: &str, form: &str) -> Option<(Ipv4Addr, Token)> {
        let t = self.tok(i, what, form)?;
        match t.text.parse::<Ipv4Addr>() {
            Ok(a) => Some((a, t)),
            Err(_) => {
                self.err(
                    &t,
                    format!("`{}` is not an IPv4 address ({what})", t.text),
                    "an IPv4 address such as 10.1.1.0",
                    "",
                );
                None
            }
        }
    }
    /// Word `i` as a netmask (`255.255.255.0` or `/24`), as a prefix length.
    pub fn mask(&mut self, i: usize, form: &str) -> Option<u8> {
        let t = self.tok(i, "netmask", form)?;
        match parse_mask(&t.text) {
            Some(m) => Some(m),
            None => {
                self.err(
                    &t,
                    format!("`{}` is not a netmask", t.text),
                    "a contiguous netmask (255.255.255.0) or /len (/24)",
                    "",
                );
                None
            }
        }
    }
    /// An error at word `n` if the line has more than `n` words.
    pub fn too_many(&mut self, n: usize, form: &str) {
        if let Some(t) = self.line.toks.get(n) {
            let t = t.clone();
            self.err(
                &t,
                format!("unexpected `{}`", t.text),
                form,
                "remove the extra words or comment them out with #",
            );
        }
    }
    /// A plain address, `master-backup-vip-vrid[*]` (`want_vrid`) or `master-backup-vip[-vrid]`
    /// (ADDR6), all of one family.
    pub fn addr_spec(&mut self, t: &Token, v4: bool, want_vrid: bool) -> Option<AddrSpec> {
        let fam = if v4 { "IPv4" } else { "IPv6" };
        let form = if want_vrid {
            "master-backup-vip-vrid[*] (e.g. 10.1.1.2-10.1.1.3-10.1.1.4-101*) or an address"
        } else {
            "master-backup-vip (e.g. 2001:db8::2-2001:db8::3-2001:db8::1) or an address"
        };
        let parse_ip = |s: &str| -> Option<IpAddr> {
            let a: IpAddr = s.parse().ok()?;
            (a.is_ipv4() == v4).then_some(a)
        };
        if !t.text.contains('-') {
            return match parse_ip(&t.text) {
                Some(a) => Some(AddrSpec::Plain(a)),
                None => {
                    self.err(t, format!("`{}` is not an {fam} address", t.text), form, "");
                    None
                }
            };
        }
        let (body, star) = match t.text.strip_suffix('*') {
            Some(b) => (b, true),
            None => (t.text.as_str(), false),
        };
        let parts: Vec<&str> = body.split('-').collect();
        let ok_len = if want_vrid {
            parts.len() == 4
        } else {
            parts.len() == 3 || parts.len() == 4
        };
        if !ok_len {
            self.err(
                t,
                format!("`{}`: wrong number of fields in an address spec", t.text),
                form,
                "",
            );
            return None;
        }
        let ips: Vec<Option<IpAddr>> = parts[..3].iter().map(|p| parse_ip(p)).collect();
        if ips.iter().any(|x| x.is_none()) {
            self.err(
                t,
                format!("`{}`: not three {fam} addresses", t.text),
                form,
                "",
            );
            return None;
        }
        let vrid = match parts.get(3) {
            Some(v) => match v.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.err(
                        t,
                        format!("`{v}` is not a VRID number"),
                        "a VRID between 1 and 255",
                        "",
                    );
                    return None;
                }
            },
            None => None,
        };
        if star && vrid.is_none() {
            self.err(t, "`*` needs a VRID", form, "");
            return None;
        }
        Some(AddrSpec::V(VrrpSpec {
            master: ips[0].unwrap(),
            backup: ips[1].unwrap(),
            vip: ips[2].unwrap(),
            vrid,
            star,
        }))
    }
    /// `<n>/<second|minute|hour|day>`.
    pub fn rate(&mut self, t: &Token) -> Option<Rate> {
        let units = ["second", "minute", "hour", "day"];
        if let Some((n, u)) = t.text.split_once('/') {
            if let Ok(n) = n.parse::<u32>() {
                if n > 0 && units.contains(&u) {
                    return Some(Rate {
                        n,
                        unit: u.to_string(),
                    });
                }
            }
        }
        self.err(
            t,
            format!("`{}` is not a rate", t.text),
            "<n>/<second|minute|hour|day>, e.g. 5/minute",
            "",
        );
        None
    }
    /// A rule's source or destination: `all`, `fw`, `zone`, `zone:alias` or `zone:cidr`.
    pub fn endpoint(&mut self, t: &Token) -> Option<Endpoint> {
        match t.text.as_str() {
            "all" => return Some(Endpoint::All),
            "fw" => return Some(Endpoint::Fw),
            _ => {}
        }
        let (z, rest) = match t.text.split_once(':') {
            Some((z, r)) => (z, Some(r)),
            None => (t.text.as_str(), None),
        };
        if !valid_ident(z) {
            self.err(
                t,
                format!("`{}` is not a zone", t.text),
                "zone | zone:alias | zone:cidr | all | fw",
                "",
            );
            return None;
        }
        let zt = Token {
            text: z.to_string(),
            col: t.col,
            width: z.len() as u32,
        };
        match rest {
            None => Some(Endpoint::Zone(zt)),
            Some(r) => {
                let rt = Token {
                    text: r.to_string(),
                    col: t.col + z.len() as u32 + 1,
                    width: r.len() as u32,
                };
                if let Some(n) = Net::parse(r) {
                    Some(Endpoint::ZoneNet(zt, n))
                } else if valid_ident(r) {
                    Some(Endpoint::ZoneAlias(zt, rt))
                } else {
                    self.err(
                        &rt,
                        format!("`{r}` is neither an alias nor an address"),
                        "zone:alias or zone:cidr",
                        "",
                    );
                    None
                }
            }
        }
    }
}

/// Names of zones, aliases, services, DEV/VLAN names: a letter, then letters, digits, `_`.
pub fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 24
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Linux interface name (at most 15 characters).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}
