//! Pass 1, site-wide settings: NETINIT, SET, VRRP AUTH, VRRP START GROUP, ANTISPOOF, LOG and
//! COUNTERS, then the role (`--role` against `SET ROLE=`) and the required NETINIT.

use super::{tok0, Findings};
use crate::diag::Diagnostic;
use crate::line::Line;
use crate::model::{LogCfg, VrrpAuth};
use crate::parse::{Rate, Stmt};

/// The settings of the file; line 0 means "not given" (the Site uses the NETINIT line then).
pub(super) struct Settings {
    /// (devices, line, the line had a failed expansion)
    pub netinit: Option<(Vec<String>, u32, bool)>,
    pub hostname: Option<String>,
    pub auth: Option<VrrpAuth>,
    pub group: Option<String>,
    pub checks: Vec<crate::model::VrrpCheck>,
    pub vmac: bool,
    pub antispoof: (String, u32),
    pub log: LogCfg,
    pub counters: bool,
    pub set_role: Option<(String, Line)>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            netinit: None,
            hostname: None,
            auth: None,
            group: None,
            checks: Vec::new(),
            vmac: false,
            antispoof: ("off".to_string(), 0),
            log: LogCfg {
                prefix: "lw".into(),
                level: "info".into(),
                rate: Rate {
                    n: 5,
                    unit: "minute".into(),
                },
                nflog: None,
                line: 0,
            },
            counters: true,
            set_role: None,
        }
    }
}

impl Settings {
    /// Record one statement if it is a setting (others are ignored).
    pub fn apply(&mut self, out: &mut Findings, l: &Line, stmt: &Stmt) {
        match stmt {
            Stmt::NetInit { devs } => {
                if self.netinit.is_some() {
                    out.err(
                        l,
                        tok0(l),
                        "second NETINIT",
                        "list every device in one NETINIT line",
                    );
                } else {
                    let devs = devs.iter().map(|d| d.text.clone()).collect();
                    self.netinit = Some((devs, l.loc.line, l.tainted));
                }
            }
            Stmt::Set { name, value } => {
                if name.text == "ROLE" {
                    self.set_role = Some((value.clone(), l.clone()));
                } else {
                    self.hostname = Some(value.clone());
                }
            }
            Stmt::VrrpAuth { .. } => self.vrrp_auth(out, l, stmt),
            Stmt::VrrpGroup { name } => {
                if self.group.is_some() {
                    out.err(l, tok0(l), "second VRRP START GROUP", "keep one sync group");
                }
                self.group = Some(name.text.clone());
            }
            Stmt::VrrpCheck { name, check } => {
                if self.checks.iter().any(|c| c.name == check.name) {
                    let msg = format!("second VRRP CHECK named `{}`", check.name);
                    out.err(l, name, msg, "give each check its own name");
                }
                self.checks.push(check.clone());
            }
            Stmt::VrrpVmac => {
                if self.vmac {
                    out.err(l, tok0(l), "second VRRP VMAC", "keep one VRRP VMAC line");
                }
                self.vmac = true;
            }
            Stmt::Antispoof(m) => self.antispoof = (m.clone(), l.loc.line),
            Stmt::Log {
                prefix,
                level,
                rate,
                nflog,
            } => {
                if let Some(p) = prefix {
                    self.log.prefix = p.clone();
                }
                if let Some(v) = level {
                    self.log.level = v.clone();
                }
                if let Some(r) = rate {
                    self.log.rate = r.clone();
                }
                self.log.nflog = *nflog;
                self.log.line = l.loc.line;
            }
            Stmt::Counters(c) => self.counters = *c,
            _ => {}
        }
    }

    /// VRRP AUTH: one per file; keepalived silently truncates a PASS secret to 8 characters.
    fn vrrp_auth(&mut self, out: &mut Findings, l: &Line, stmt: &Stmt) {
        let Stmt::VrrpAuth {
            kind,
            secret,
            router_id,
            smtp,
            email,
            advert,
        } = stmt
        else {
            return;
        };
        if kind == "PASS" && secret.text.len() > 8 {
            out.err(
                l,
                secret,
                format!(
                    "PASS secret is {} characters; keepalived uses only the first 8",
                    secret.text.len()
                ),
                "use at most 8 characters",
            );
        }
        if self.auth.is_some() {
            out.err(l, tok0(l), "second VRRP AUTH", "keep one VRRP AUTH line");
        }
        self.auth = Some(VrrpAuth {
            kind: kind.clone(),
            secret: secret.text.clone(),
            router_id: router_id.clone(),
            smtp: *smtp,
            email: email.clone(),
            advert: *advert,
            line: l.loc.line,
        });
    }

    /// The requested role must be MASTER or BACKUP, and a `SET ROLE=` must agree with it (the
    /// file is compiled once per role; docs/labwall.md, "Decisions where the spec is silent").
    pub fn check_role(&self, out: &mut Findings, role: &str) {
        if role != "MASTER" && role != "BACKUP" {
            out.diags.push(
                Diagnostic::error(out.loc(1), format!("invalid role `{role}`"))
                    .expected("MASTER or BACKUP")
                    .fix("pass --role MASTER or --role BACKUP (or -D ROLE=...)"),
            );
        }
        if let Some((v, l)) = &self.set_role {
            let t = &l.toks[1];
            if v != "MASTER" && v != "BACKUP" {
                out.err(
                    l,
                    t,
                    format!("SET ROLE={v}: invalid role"),
                    "ROLE must be MASTER or BACKUP",
                );
            } else if *v != role {
                out.err(
                    l,
                    t,
                    format!("SET ROLE={v} contradicts the requested role {role}"),
                    "use SET ROLE=$ROLE and choose the role with --role",
                );
            }
        }
    }

    /// NETINIT is required: it says which device is the uplink. Without it there is nothing
    /// more to check (None, reported).
    pub fn require_netinit(&self, out: &mut Findings) -> Option<(Vec<String>, u32)> {
        if let Some((devs, line, _)) = &self.netinit {
            return Some((devs.clone(), *line));
        }
        out.diags.push(
            Diagnostic::error(out.loc(1), "no NETINIT line")
                .expected("NETINIT <extdev> <intdev> [<dev>...] before the DEV/VLAN lines")
                .fix("add e.g. NETINIT eth1 eth0"),
        );
        None
    }

    /// The NETINIT line had a failed expansion (its device list cannot be trusted).
    pub fn netinit_tainted(&self) -> bool {
        self.netinit.as_ref().is_some_and(|n| n.2)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};

    #[test]
    fn settings_are_recorded_with_their_lines() {
        let src = format!(
            "{BASE}ANTISPOOF strict\nLOG PREFIX fw RATE 1/second\nCOUNTERS off\nSET HOSTNAME=x\n"
        );
        let (site, d) = analyse_text(&src, "BACKUP");
        assert!(d.is_empty(), "{d:?}");
        let s = site.unwrap();
        assert_eq!((s.antispoof.as_str(), s.antispoof_line), ("strict", 6));
        assert_eq!(
            (s.log.prefix.as_str(), s.log.level.as_str()),
            ("fw", "info")
        );
        assert_eq!((s.log.rate.n, s.log.line), (1, 7));
        assert!(!s.counters);
        assert_eq!(s.hostname.as_deref(), Some("x"));
        assert_eq!(s.role, "BACKUP");
        // not given: the NETINIT line
        let s = analyse_text(BASE, "MASTER").0.unwrap();
        assert_eq!(
            (s.antispoof.as_str(), s.antispoof_line, s.log.line),
            ("off", 1, 1)
        );
    }

    #[test]
    fn duplicate_settings_and_long_secret() {
        let src = format!(
            "{BASE}NETINIT eth1\nVRRP AUTH PASS 123456789 r - - 1\nVRRP AUTH NONE x r - - 1\nVRRP START GROUP a\nVRRP START GROUP b\n"
        );
        assert_eq!(
            messages(&src),
            [
                "second NETINIT",
                "PASS secret is 9 characters; keepalived uses only the first 8",
                "second VRRP AUTH",
                "second VRRP START GROUP"
            ]
        );
    }

    #[test]
    fn role_checks() {
        assert_eq!(
            messages(&format!("{BASE}SET ROLE=BACKUP\n")),
            ["SET ROLE=BACKUP contradicts the requested role MASTER"]
        );
        assert_eq!(
            messages(&format!("{BASE}SET ROLE=PRIMARY\n")),
            ["SET ROLE=PRIMARY: invalid role"]
        );
        let (site, d) = analyse_text(BASE, "BOSS");
        assert!(site.is_none());
        assert_eq!(d[0].message, "invalid role `BOSS`");
    }

    #[test]
    fn netinit_is_required() {
        let (site, d) = analyse_text("DEV INTER eth1 10.1.1.0 - /24\n", "MASTER");
        assert!(site.is_none());
        let m: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(m, ["no NETINIT line"]);
    }
}
