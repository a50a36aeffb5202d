//! Statements of the dns role (docs/labwall.md, "Names, addresses and access (dns role)"):
//! DOMAIN, SERVERS, DHCP, NAS, MAB, DOT1X and VPNUSER. A static host is a HOST with `MAC`
//! (parsed in names.rs with [`mac`]). Cross-references are checked in model/analyse/aaa.rs.

use super::cursor::{valid_ident, LineParser};
use super::Stmt;
use crate::aaa::{IdentityKind, MacAddr};
use crate::line::Token;
use std::net::{IpAddr, Ipv4Addr};

/// `52:54:00:10:00:50` (or with `-`): six hex bytes.
pub fn mac(s: &str) -> Option<MacAddr> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// A DNS name: dot-separated labels of letters, digits and `-` (not at either end).
pub fn valid_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `1h`, `30m`, `2d`, `600s` or plain seconds; at least 2 minutes (dnsmasq's minimum).
pub fn lease_secs(s: &str) -> Option<u32> {
    let (num, mult) = match s.chars().last()? {
        's' => (&s[..s.len() - 1], 1),
        'm' => (&s[..s.len() - 1], 60),
        'h' => (&s[..s.len() - 1], 3600),
        'd' => (&s[..s.len() - 1], 86400),
        _ => (s, 1),
    };
    let n = num.parse::<u32>().ok()?.checked_mul(mult)?;
    (n >= 120).then_some(n)
}

/// `DOMAIN <domain> [FORWARD <ip>...]`: the site's DNS domain and its upstream resolvers.
pub(super) fn domain(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "DOMAIN <domain> [FORWARD <ip>...]";
    let d = p.tok(1, "domain", F)?;
    if !valid_dns_name(&d.text) {
        p.err(&d, format!("`{}` is not a DNS domain", d.text), F, "");
        return None;
    }
    let mut forwarders = Vec::new();
    if p.line.toks.len() > 2 {
        p.word(2, "FORWARD", F)?;
        p.tok(3, "forwarder address", F)?;
        let l = p.line;
        for t in &l.toks[3..] {
            forwarders.push((p.ip_tok(t, "forwarder", F)?, t.clone()));
        }
    }
    Some(Stmt::Domain {
        domain: d,
        forwarders,
    })
}

/// `SERVERS <host>...`: the HOST aliases that are dns appliances (DNS, DHCP and RADIUS).
pub(super) fn servers(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "SERVERS <host alias>...";
    p.tok(1, "at least one HOST alias", F)?;
    let names = p.line.toks[1..].to_vec();
    for n in &names {
        if !valid_ident(&n.text) {
            p.err(n, format!("`{}` is not a HOST alias", n.text), F, "");
            return None;
        }
    }
    Some(Stmt::Servers { names })
}

/// `DHCP <VLAN name> <first>-<last> [LEASE <time>] [ROUTER <ip>] [DNS <ip>...]`.
pub(super) fn dhcp(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "DHCP <VLAN name> <first>-<last> [LEASE <time>] [ROUTER <ip>] [DNS <ip>...]";
    let vlan = p.tok(1, "VLAN name", F)?;
    let rt = p.tok(2, "dynamic range first-last", F)?;
    let range = rt
        .text
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<Ipv4Addr>().ok()?, b.parse::<Ipv4Addr>().ok()?)));
    let Some(range) = range.filter(|(a, b)| a <= b) else {
        let fix = "e.g. 172.16.10.50-172.16.10.99 (first <= last)";
        p.err(&rt, format!("`{}` is not an IPv4 range", rt.text), F, fix);
        return None;
    };
    let mut s = DhcpOpts::default();
    dhcp_options(p, 3, &mut s, F)?;
    Some(Stmt::Dhcp {
        vlan,
        range,
        range_tok: rt,
        lease: s.lease,
        router: s.router,
        dns: s.dns,
    })
}

struct DhcpOpts {
    lease: u32,
    router: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
}

impl Default for DhcpOpts {
    fn default() -> DhcpOpts {
        DhcpOpts {
            lease: 3600,
            router: None,
            dns: Vec::new(),
        }
    }
}

/// The optional words of DHCP from word `i` on: LEASE, ROUTER, DNS (DNS takes the rest).
fn dhcp_options(p: &mut LineParser, mut i: usize, s: &mut DhcpOpts, f: &str) -> Option<()> {
    while let Some(k) = p.line.toks.get(i).cloned() {
        match k.text.as_str() {
            "LEASE" => {
                let t = p.tok(i + 1, "lease time", f)?;
                let Some(n) = lease_secs(&t.text) else {
                    let fix = "at least 2m; e.g. 1h, 30m, 1d or seconds";
                    p.err(&t, format!("`{}` is not a lease time", t.text), f, fix);
                    return None;
                };
                s.lease = n;
                i += 2;
            }
            "ROUTER" => {
                s.router = Some(p.ip4(i + 1, "router", f)?.0);
                i += 2;
            }
            "DNS" => {
                p.tok(i + 1, "DNS server address", f)?;
                for j in i + 1..p.line.toks.len() {
                    s.dns.push(p.ip4(j, "DNS server", f)?.0);
                }
                return Some(());
            }
            _ => {
                p.err(&k, format!("unexpected `{}`", k.text), f, "");
                return None;
            }
        }
    }
    Some(())
}

/// `NAS <name> <ip> SECRET <secret name> [VPN]`: a RADIUS client; the secret itself is the file
/// `radius/nas/<secret name>` of the secrets directory. A missing SECRET is reported by the
/// analysis (with the fix), so that the NAS still counts for the other checks.
pub(super) fn nas(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "NAS <name> <ip> SECRET <secret name> [VPN]";
    let name = p.tok(1, "NAS name", F)?;
    if !valid_ident(&name.text) {
        p.err(&name, format!("`{}` is not a NAS name", name.text), F, "");
        return None;
    }
    let at = p.tok(2, "NAS address", F)?;
    let addr = p.ip_tok(&at, "NAS", F)?;
    let mut i = 3;
    let mut secret = None;
    if p.line.toks.get(i).is_some_and(|t| t.text == "SECRET") {
        let s = p.tok(i + 1, "secret name", F)?;
        if !valid_secret_name(&s.text) {
            let fix = "letters, digits, `.`, `_` or `-` (a file name)";
            p.err(&s, format!("`{}` is not a secret name", s.text), F, fix);
            return None;
        }
        secret = Some(s);
        i += 2;
    }
    let vpn = p.line.toks.get(i).is_some_and(|t| t.text == "VPN");
    p.too_many(i + usize::from(vpn), F);
    Some(Stmt::Nas {
        name,
        addr,
        addr_tok: at,
        secret,
        vpn,
    })
}

/// A file name inside `radius/nas/`: no path separators, no leading dot.
fn valid_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// `MAB <mac> <VLAN name>`: MAC-based authorisation.
pub(super) fn mab(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "MAB <mac> <VLAN name>";
    let mt = p.tok(1, "MAC address", F)?;
    let mac = p.mac_tok(&mt, F)?;
    let vlan = p.tok(2, "VLAN name", F)?;
    p.too_many(3, F);
    Some(Stmt::Mab {
        mac,
        mac_tok: mt,
        vlan,
    })
}

/// `DOT1X USER <name> <VLAN name>` (PEAP) or `DOT1X CN <certificate CN> <VLAN name>` (EAP-TLS).
pub(super) fn dot1x(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "DOT1X USER|CN <identity> <VLAN name>";
    let k = p.tok(1, "USER or CN", F)?;
    let kind = match k.text.as_str() {
        "USER" => IdentityKind::User,
        "CN" => IdentityKind::CertCn,
        _ => {
            p.err(&k, format!("`{}` is not USER or CN", k.text), F, "");
            return None;
        }
    };
    let name = p.identity(2, F)?;
    let vlan = p.tok(3, "VLAN name", F)?;
    p.too_many(4, F);
    Some(Stmt::Dot1x { kind, name, vlan })
}

/// `VPNUSER <certificate CN> <VLAN name> <address>`: a VPN user's VLAN and fixed address.
pub(super) fn vpnuser(p: &mut LineParser) -> Option<Stmt> {
    const F: &str = "VPNUSER <certificate CN> <VLAN name> <ipv4>";
    let cn = p.identity(1, F)?;
    let vlan = p.tok(2, "VLAN name", F)?;
    let (addr, addr_tok) = p.ip4(3, "VPN address", F)?;
    p.too_many(4, F);
    Some(Stmt::VpnUser {
        cn,
        vlan,
        addr,
        addr_tok,
    })
}

impl LineParser<'_> {
    /// Word `i` must be the keyword `kw`.
    fn word(&mut self, i: usize, kw: &str, form: &str) -> Option<()> {
        let t = self.tok(i, kw, form)?;
        if t.text != kw {
            self.err(&t, format!("unexpected `{}`", t.text), form, "");
            return None;
        }
        Some(())
    }
    fn ip_tok(&mut self, t: &Token, what: &str, form: &str) -> Option<IpAddr> {
        match t.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let msg = format!("`{}` is not an IP address ({what})", t.text);
                self.err(t, msg, form, "");
                None
            }
        }
    }
    pub(super) fn mac_tok(&mut self, t: &Token, form: &str) -> Option<MacAddr> {
        let m = mac(&t.text);
        if m.is_none() {
            let fix = "six hex bytes, e.g. 52:54:00:10:00:50";
            self.err(t, format!("`{}` is not a MAC address", t.text), form, fix);
        }
        m
    }
    /// A user name or certificate CN: printable, no quotes, no spaces (a token already).
    fn identity(&mut self, i: usize, form: &str) -> Option<Token> {
        let t = self.tok(i, "identity", form)?;
        let ok = t.text.len() <= 64
            && t.text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !ok {
            let fix = "letters, digits, `.`, `_`, `-` or `@`";
            self.err(
                &t,
                format!("`{}` is not a valid identity", t.text),
                form,
                fix,
            );
            return None;
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::{lease_secs, mac};
    use crate::parse::{parse_text, Stmt};

    fn first_error(src: &str) -> (String, u32) {
        let d = parse_text(src).1;
        (d[0].message.clone(), d[0].loc.col)
    }

    #[test]
    fn words() {
        assert_eq!(
            mac("52:54:00:10:00:5a"),
            Some([0x52, 0x54, 0, 0x10, 0, 0x5a])
        );
        assert_eq!(mac("52-54-00-10-00-50").map(|m| m[5]), Some(0x50));
        assert!(mac("52:54:00:10:00").is_none() && mac("52:54:00:10:00:500").is_none());
        assert_eq!(lease_secs("1h"), Some(3600));
        assert_eq!(lease_secs("600"), Some(600));
        assert!(lease_secs("1m").is_none() && lease_secs("h").is_none());
    }

    #[test]
    fn statements() {
        let Some(Stmt::Dhcp {
            range, lease, dns, ..
        }) = parse_text("DHCP VLAN10 10.0.0.50-10.0.0.99 LEASE 2h DNS 10.0.0.2 10.0.0.3").0
        else {
            panic!()
        };
        assert_eq!((range.0.octets()[3], lease, dns.len()), (50, 7200, 2));
        assert!(matches!(
            parse_text("NAS sw1 10.0.99.3 SECRET sw1 VPN").0,
            Some(Stmt::Nas {
                vpn: true,
                secret: Some(_),
                ..
            })
        ));
        assert!(matches!(
            parse_text("NAS sw1 10.0.99.3").0,
            Some(Stmt::Nas { secret: None, .. })
        ));
        assert!(matches!(
            parse_text("DOMAIN lab.demo.fr FORWARD 192.0.2.53 2001:db8::53").0,
            Some(Stmt::Domain { forwarders, .. }) if forwarders.len() == 2
        ));
    }

    #[test]
    fn errors_point_at_the_word() {
        assert_eq!(
            first_error("DHCP VLAN10 10.0.0.99-10.0.0.50"),
            ("`10.0.0.99-10.0.0.50` is not an IPv4 range".into(), 13)
        );
        assert_eq!(
            first_error("MAB 52:54:00 VLAN10"),
            ("`52:54:00` is not a MAC address".into(), 5)
        );
        assert_eq!(
            first_error("DOT1X PEAP alice VLAN10"),
            ("`PEAP` is not USER or CN".into(), 7)
        );
        assert_eq!(
            first_error("NAS sw1 10.0.0.1 SECRET ../x"),
            ("`../x` is not a secret name".into(), 25)
        );
        assert_eq!(
            first_error("DOMAIN lab_demo"),
            ("`lab_demo` is not a DNS domain".into(), 8)
        );
    }
}
