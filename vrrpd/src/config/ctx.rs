//! The interpretation context every section handler writes to.
//!
//! `Ctx` collects errors and warnings with `file:line`, and reads the value shapes keywords
//! share (exactly one argument, a number in a range, seconds, a notify script), so every
//! section words the same mistake the same way. `split_command` is the script's argv splitting.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::lexer::Stmt;
use super::{Diag, Script};

pub(super) struct Ctx<'a> {
    pub(super) file: &'a Path,
    pub(super) errors: Vec<Diag>,
    pub(super) warnings: Vec<Diag>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errors.push(Diag {
            file: self.file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }
    pub(super) fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.warnings.push(Diag {
            file: self.file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }
    pub(super) fn unknown(&mut self, s: &Stmt, section: &str) {
        if is_lvs(&s.key) {
            let msg = format!("'{}' (LVS) ignored: vrrpd does VRRP only", s.key);
            return self.warn(s.line, msg);
        }
        self.warn(
            s.line,
            format!(
                "unknown or unsupported keyword '{}' in {section}: ignored",
                s.key
            ),
        );
    }
    pub(super) fn one_arg<'s>(&mut self, s: &'s Stmt) -> Option<&'s str> {
        match s.args.as_slice() {
            [a] => Some(a),
            _ => {
                self.err(s.line, format!("'{}' takes exactly one value", s.key));
                None
            }
        }
    }
    pub(super) fn num<T>(&mut self, s: &Stmt, lo: T, hi: T) -> Option<T>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let a = self.one_arg(s)?;
        match a.parse::<T>() {
            Ok(v) if v >= lo && v <= hi => Some(v),
            _ => {
                self.err(
                    s.line,
                    format!("'{}' must be a number from {lo} to {hi}, got '{a}'", s.key),
                );
                None
            }
        }
    }
    pub(super) fn secs(&mut self, s: &Stmt, max: f64) -> Option<Duration> {
        let a = self.one_arg(s)?;
        match a.parse::<f64>() {
            Ok(v) if (0.0..=max).contains(&v) => Some(Duration::from_secs_f64(v)),
            _ => {
                self.err(
                    s.line,
                    format!("'{}' must be seconds from 0 to {max}, got '{a}'", s.key),
                );
                None
            }
        }
    }
    pub(super) fn script(&mut self, s: &Stmt) -> Option<Script> {
        if s.args.is_empty() {
            self.err(s.line, format!("'{}' needs a command", s.key));
            return None;
        }
        // keepalived: the quoted command line is split on whitespace; optional `user [group]`.
        let argv = split_command(&s.args[0]);
        if argv.is_empty() {
            self.err(s.line, format!("'{}' has an empty command", s.key));
            return None;
        }
        if s.args.len() > 1 {
            self.warn(
                s.line,
                format!(
                    "'{}': user/group '{}' ignored (scripts run as vrrpd's user)",
                    s.key,
                    s.args[1..].join(" ")
                ),
            );
        }
        if !argv[0].starts_with('/') {
            self.warn(
                s.line,
                format!("'{}': script '{}' is not an absolute path", s.key, argv[0]),
            );
        }
        Some(argv)
    }
}

/// keepalived's LVS keywords (its load balancer, which vrrpd does not do).
pub(super) fn is_lvs(key: &str) -> bool {
    matches!(key, "virtual_server" | "virtual_server_group") || key.starts_with("lvs_")
}

/// Split a keepalived command line into argv: whitespace separates, single quotes group.
pub fn split_command(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '\'' => {
                in_q = !in_q;
                any = true;
            }
            c if c.is_whitespace() && !in_q => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}
