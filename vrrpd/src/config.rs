//! The keepalived.conf subset that VRRP sites use (docs/vrrp.md, Configuration: supported
//! keywords).
//!
//! Parsed in two steps: a tokenizer that knows keepalived's lexical rules (`#`/`!` comments,
//! double-quoted strings, braces) and keeps line numbers, then a block tree walked per keyword.
//! Unknown keywords are warnings (with `file:line`), because sites carry LVS, SMTP and other
//! sections this daemon has no use for; anything malformed in a keyword we do implement is an
//! error, so a typo never silently changes failover behaviour.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wire::{Family, Version};

/// A diagnostic tied to a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.msg)
    }
}

/// Configuration errors (every one found, not just the first).
#[derive(Debug)]
pub struct ConfigError(pub Vec<Diag>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: error: {}", d.file.display(), d.line, d.msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One virtual address line (`virtual_ipaddress` / `virtual_ipaddress_excluded`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<Ipv4Addr>,
    /// Device the address goes on; `None` means the instance's interface.
    pub dev: Option<String>,
    pub label: Option<String>,
    /// rtnetlink scope (0 global, 253 link, 254 host).
    pub scope: u8,
    /// Do not fault the instance when this VIP's device goes down.
    pub no_track: bool,
    pub line: usize,
}

/// A command to run on a transition: argv, exec'd without a shell.
pub type Script = Vec<String>;

/// Notify scripts at instance or group level.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// Generic `notify`: run after the specific one with `TYPE NAME STATE PRIORITY` appended.
    pub generic: Option<Script>,
}

/// `track_interface` entry; weight 0 means FAULT when down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackIf {
    pub name: String,
    pub weight: i32,
}

/// GARP / unsolicited NA timing (keepalived names and defaults, docs/vrrp.md, GARP timing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Garp {
    pub master_delay: Duration,
    pub master_repeat: u32,
    pub master_refresh: Duration,
    pub master_refresh_repeat: u32,
    /// Spacing between packets of one burst.
    pub interval: Duration,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
        }
    }
}

/// v3/IPv4 checksum form to send (both are accepted on receive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum V3Checksum {
    /// keepalived 2.2.7 default: with IPv4 pseudo-header.
    PseudoHeader,
    /// RFC 9568 / keepalived >= 2.2.8 `v3_checksum_as_v2`.
    MessageOnly,
}

/// One `vrrp_instance`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceConfig {
    pub name: String,
    pub line: usize,
    pub state_master: bool,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub version: Version,
    pub family: Family,
    /// Advertisement interval in centiseconds (v2 values are whole seconds x 100).
    pub advert_int_cs: u16,
    /// PASS password bytes (v2 only).
    pub auth_pass: Option<[u8; 8]>,
    pub vips: Vec<Vip>,
    pub excluded: Vec<Vip>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub garp: Garp,
    pub notify: Notify,
    pub track_interfaces: Vec<TrackIf>,
    pub dont_track_primary: bool,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub v3_checksum: V3Checksum,
    pub down_timer_adverts: u8,
}

impl InstanceConfig {
    /// Advertisement interval as a duration.
    pub fn advert_int(&self) -> Duration {
        Duration::from_millis(10 * u64::from(self.advert_int_cs))
    }
    /// Value of the interval field on the wire (seconds for v2, centiseconds for v3).
    pub fn wire_adver_int(&self) -> u16 {
        match self.version {
            Version::V2 => self.advert_int_cs / 100,
            Version::V3 => self.advert_int_cs,
        }
    }
    /// Every device a VIP of this instance lives on, the instance interface included.
    pub fn vip_devices(&self) -> Vec<String> {
        let mut v = vec![self.interface.clone()];
        for vip in self.vips.iter().chain(&self.excluded) {
            let d = vip.dev.clone().unwrap_or_else(|| self.interface.clone());
            if !v.contains(&d) {
                v.push(d);
            }
        }
        v
    }
}

/// One `vrrp_sync_group`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncGroupConfig {
    pub name: String,
    pub line: usize,
    pub members: Vec<String>,
    pub notify: Notify,
    pub track_interfaces: Vec<TrackIf>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub router_id: Option<String>,
    pub instances: Vec<InstanceConfig>,
    pub sync_groups: Vec<SyncGroupConfig>,
    #[serde(skip)]
    pub warnings: Vec<Diag>,
}

// ---------------------------------------------------------------------------------------------
// Tokenizer and block tree

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Newline,
}

fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let flush = |cur: &mut String, out: &mut Vec<(Tok, usize)>| {
            if !cur.is_empty() {
                out.push((Tok::Word(std::mem::take(cur)), ln));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' if cur.is_empty() => break,
                '"' => {
                    flush(&mut cur, &mut out);
                    let mut s = String::new();
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        s.push(c);
                    }
                    out.push((Tok::Word(s), ln));
                }
                '{' => {
                    flush(&mut cur, &mut out);
                    out.push((Tok::Open, ln));
                }
                '}' => {
                    flush(&mut cur, &mut out);
                    out.push((Tok::Close, ln));
                }
                c if c.is_whitespace() => flush(&mut cur, &mut out),
                c => cur.push(c),
            }
        }
        flush(&mut cur, &mut out);
        out.push((Tok::Newline, ln));
    }
    out
}

/// `keyword args... [{ children }]`
#[derive(Debug, Clone)]
struct Stmt {
    key: String,
    args: Vec<String>,
    block: Option<Vec<Stmt>>,
    line: usize,
}

fn build_tree(
    toks: &[(Tok, usize)],
    pos: &mut usize,
    depth: usize,
    errs: &mut Vec<(usize, String)>,
) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::new();
    let mut cur: Option<Stmt> = None;
    while *pos < toks.len() {
        let (t, ln) = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Word(w) => match &mut cur {
                Some(s) => s.args.push(w.clone()),
                None => {
                    cur = Some(Stmt {
                        key: w.clone(),
                        args: vec![],
                        block: None,
                        line: *ln,
                    })
                }
            },
            Tok::Newline => {
                // A `{` on the next line still opens this statement's block.
                let next_open = toks[*pos..]
                    .iter()
                    .find(|(t, _)| *t != Tok::Newline)
                    .map(|(t, _)| *t == Tok::Open)
                    .unwrap_or(false);
                if !next_open {
                    out.extend(cur.take());
                }
            }
            Tok::Open => {
                let children = build_tree(toks, pos, depth + 1, errs);
                match cur.take() {
                    Some(mut s) => {
                        s.block = Some(children);
                        out.push(s);
                    }
                    None => errs.push((*ln, "'{' without a keyword before it".into())),
                }
            }
            Tok::Close => {
                out.extend(cur.take());
                if depth == 0 {
                    errs.push((*ln, "unbalanced '}'".into()));
                    continue;
                }
                return out;
            }
        }
    }
    out.extend(cur.take());
    if depth > 0 {
        let ln = toks.last().map(|t| t.1).unwrap_or(0);
        errs.push((ln, "missing '}' at end of file".into()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Interpretation

struct Ctx<'a> {
    file: &'a Path,
    errors: Vec<Diag>,
    warnings: Vec<Diag>,
}

impl Ctx<'_> {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errors.push(Diag {
            file: self.file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }
    fn warn(&mut self, line: usize, msg: impl Into<String>) {
        self.warnings.push(Diag {
            file: self.file.to_path_buf(),
            line,
            msg: msg.into(),
        });
    }
    fn unknown(&mut self, s: &Stmt, section: &str) {
        self.warn(
            s.line,
            format!(
                "unknown or unsupported keyword '{}' in {section}: ignored",
                s.key
            ),
        );
    }
    fn one_arg<'s>(&mut self, s: &'s Stmt) -> Option<&'s str> {
        match s.args.as_slice() {
            [a] => Some(a),
            _ => {
                self.err(s.line, format!("'{}' takes exactly one value", s.key));
                None
            }
        }
    }
    fn num<T>(&mut self, s: &Stmt, lo: T, hi: T) -> Option<T>
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
    fn secs(&mut self, s: &Stmt, max: f64) -> Option<Duration> {
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
    fn script(&mut self, s: &Stmt) -> Option<Script> {
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

#[derive(Default)]
struct Globals {
    router_id: Option<String>,
    version: Option<Version>,
    garp: Garp,
    v3_checksum_as_v2: bool,
}

fn parse_globals(ctx: &mut Ctx, block: &[Stmt], g: &mut Globals) {
    for s in block {
        // The GARP timers are the instance keywords with a `vrrp_` prefix.
        if let Some(k) = s.key.strip_prefix("vrrp_") {
            if garp_kw(ctx, s, k, &mut g.garp) {
                continue;
            }
        }
        match s.key.as_str() {
            "router_id" => g.router_id = ctx.one_arg(s).map(str::to_string),
            "vrrp_version" => g.version = version_kw(ctx, s),
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                if let Some(d) = ctx.secs(s, 1.0) {
                    g.garp.interval = d
                }
            }
            "v3_checksum_as_v2" => g.v3_checksum_as_v2 = true,
            // Accepted without effect: vrrpd always execs scripts directly (no shell).
            "enable_script_security" | "script_user" => {}
            _ => ctx.unknown(s, "global_defs"),
        }
    }
}

/// `version` / `vrrp_version`: 2 or 3, shared by global_defs and instances.
fn version_kw(ctx: &mut Ctx, s: &Stmt) -> Option<Version> {
    ctx.num::<u8>(s, 2, 3)
        .map(|v| if v == 2 { Version::V2 } else { Version::V3 })
}

/// The four GARP timers (`key` without any `vrrp_` prefix); false if `key` is not one of them.
fn garp_kw(ctx: &mut Ctx, s: &Stmt, key: &str, garp: &mut Garp) -> bool {
    match key {
        "garp_master_delay" => {
            if let Some(d) = ctx.secs(s, 255.0) {
                garp.master_delay = d
            }
        }
        "garp_master_repeat" => {
            if let Some(n) = ctx.num(s, 0, 255) {
                garp.master_repeat = n
            }
        }
        "garp_master_refresh" => {
            if let Some(d) = ctx.secs(s, 86400.0) {
                garp.master_refresh = d
            }
        }
        "garp_master_refresh_repeat" => {
            if let Some(n) = ctx.num(s, 1, 255) {
                garp.master_refresh_repeat = n
            }
        }
        _ => return false,
    }
    true
}

fn parse_vip(ctx: &mut Ctx, s: &Stmt) -> Option<Vip> {
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

fn parse_track(ctx: &mut Ctx, block: &Option<Vec<Stmt>>, line: usize) -> Vec<TrackIf> {
    let Some(b) = block else {
        ctx.err(line, "'track_interface' needs a { block }");
        return vec![];
    };
    let mut out = Vec::new();
    for s in b {
        let weight = match s.args.as_slice() {
            [] => 0,
            [w, v] if w == "weight" => match v.parse::<i32>() {
                Ok(n) if (-253..=253).contains(&n) => n,
                _ => {
                    ctx.err(s.line, format!("bad weight '{v}' (-253..253)"));
                    0
                }
            },
            _ => {
                ctx.err(s.line, "expected 'IFNAME [weight N]'");
                0
            }
        };
        out.push(TrackIf {
            name: s.key.clone(),
            weight,
        });
    }
    out
}

fn notify_kw(ctx: &mut Ctx, s: &Stmt, n: &mut Notify) -> bool {
    let slot = match s.key.as_str() {
        "notify_master" => &mut n.master,
        "notify_backup" => &mut n.backup,
        "notify_fault" => &mut n.fault,
        "notify_stop" => &mut n.stop,
        "notify" => &mut n.generic,
        _ => return false,
    };
    *slot = ctx.script(s);
    true
}

fn parse_instance(ctx: &mut Ctx, s: &Stmt, g: &Globals) -> Option<InstanceConfig> {
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

/// `virtual_ipaddress { ... }` / `virtual_ipaddress_excluded { ... }`: the good lines go to `dst`.
fn parse_vip_block(ctx: &mut Ctx, c: &Stmt, dst: &mut Vec<Vip>) {
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

fn parse_group(ctx: &mut Ctx, s: &Stmt) -> Option<SyncGroupConfig> {
    let name = match s.args.as_slice() {
        [n] => n.clone(),
        _ => {
            ctx.err(s.line, "expected 'vrrp_sync_group NAME {'");
            return None;
        }
    };
    let mut g = SyncGroupConfig {
        name,
        line: s.line,
        members: vec![],
        notify: Notify::default(),
        track_interfaces: vec![],
    };
    for c in s.block.iter().flatten() {
        if notify_kw(ctx, c, &mut g.notify) {
            continue;
        }
        match c.key.as_str() {
            "group" => {
                for m in c.block.iter().flatten() {
                    g.members.push(m.key.clone());
                    g.members.extend(m.args.iter().cloned());
                }
            }
            "track_interface" => g.track_interfaces = parse_track(ctx, &c.block, c.line),
            _ => ctx.unknown(c, &format!("vrrp_sync_group {}", g.name)),
        }
    }
    Some(g)
}

/// Parse configuration text; `file` is only used in diagnostics.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let toks = tokenize(text);
    let mut tree_errs = Vec::new();
    let mut pos = 0;
    let tree = build_tree(&toks, &mut pos, 0, &mut tree_errs);
    let mut ctx = Ctx {
        file,
        errors: vec![],
        warnings: vec![],
    };
    for (ln, m) in tree_errs {
        ctx.err(ln, m);
    }
    let mut g = Globals::default();
    for s in &tree {
        if s.key == "global_defs" {
            parse_globals(&mut ctx, s.block.as_deref().unwrap_or(&[]), &mut g);
        }
    }
    let mut instances: Vec<InstanceConfig> = Vec::new();
    let mut groups: Vec<SyncGroupConfig> = Vec::new();
    for s in &tree {
        match s.key.as_str() {
            "global_defs" => {}
            "vrrp_instance" => {
                if let Some(i) = parse_instance(&mut ctx, s, &g) {
                    if instances.iter().any(|o| o.name == i.name) {
                        ctx.err(s.line, format!("duplicate vrrp_instance '{}'", i.name));
                    } else if let Some(o) = instances.iter().find(|o| {
                        o.vrid == i.vrid && o.interface == i.interface && o.family == i.family
                    }) {
                        ctx.err(
                            s.line,
                            format!(
                                "virtual_router_id {} on {} is already used by instance '{}' (line {})",
                                i.vrid, i.interface, o.name, o.line
                            ),
                        );
                    } else {
                        instances.push(i);
                    }
                }
            }
            "vrrp_sync_group" => {
                if let Some(gr) = parse_group(&mut ctx, s) {
                    groups.push(gr);
                }
            }
            _ => ctx.unknown(s, "the top level"),
        }
    }
    for gr in &groups {
        for m in &gr.members {
            if !instances.iter().any(|i| &i.name == m) {
                ctx.err(
                    gr.line,
                    format!("vrrp_sync_group {}: no vrrp_instance named '{m}'", gr.name),
                );
            }
            if groups.iter().filter(|o| o.members.contains(m)).count() > 1 {
                ctx.err(
                    gr.line,
                    format!("instance '{m}' is in more than one vrrp_sync_group"),
                );
            }
        }
    }
    if instances.is_empty() && ctx.errors.is_empty() {
        ctx.err(1, "no vrrp_instance in the configuration");
    }
    if !ctx.errors.is_empty() {
        ctx.errors.sort_by_key(|d| d.line);
        ctx.errors.dedup();
        return Err(ConfigError(ctx.errors));
    }
    Ok(Config {
        router_id: g.router_id,
        instances,
        sync_groups: groups,
        warnings: ctx.warnings,
    })
}

/// Read and parse a file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![Diag {
            file: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read: {e}"),
        }])
    })?;
    parse_str(&text, path)
}

/// The seed configuration, for other modules' tests.
#[cfg(test)]
pub fn tests_seed() -> &'static str {
    tests::SEED_R1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2009 pair's configuration as reproduced in the lab (docs/vrrp.md, The 2009 pair and the
    /// interop lab), r1 side.
    pub const SEED_R1: &str = include_str!("../tests/data/seed-r1.conf");

    fn p(s: &str) -> Result<Config, ConfigError> {
        parse_str(s, Path::new("k.conf"))
    }

    #[test]
    fn seed_config_parses_unchanged() {
        let c = p(SEED_R1).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.router_id.as_deref(), Some("lab-r1"));
        assert_eq!(c.instances.len(), 2);
        let i = &c.instances[0];
        assert_eq!(i.name, "interne");
        assert_eq!((i.vrid, i.priority, i.version), (100, 150, Version::V2));
        assert_eq!(i.advert_int(), Duration::from_secs(5));
        assert_eq!(i.wire_adver_int(), 5);
        assert_eq!(i.auth_pass, Some(*b"s3cr3tpw"));
        assert_eq!(i.vips.len(), 2);
        assert_eq!(i.vips[1].dev.as_deref(), Some("vlan20"));
        assert_eq!(i.vips[1].brd, Some(Ipv4Addr::new(10, 20, 0, 255)));
        assert_eq!(i.vip_devices(), vec!["vlan10", "vlan20"]);
        assert_eq!(
            i.notify.generic,
            Some(vec!["/path/notify.sh".to_string(), "r1".to_string()])
        );
        assert_eq!(c.sync_groups[0].members, vec!["interne", "externe"]);
    }

    #[test]
    fn unknown_keywords_warn_with_line() {
        let c = p("global_defs {\n  smtp_server 1.2.3.4\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n  foo bar\n}\n").unwrap();
        let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
        assert!(w[0].starts_with("k.conf:2: unknown"), "{w:?}");
        assert!(w[1].starts_with("k.conf:7: unknown"), "{w:?}");
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 300\n priority x\n}\n")
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("k.conf:3: error: 'virtual_router_id' must be a number from 1 to 255"),
            "{s}"
        );
        assert!(s.contains("k.conf:4: error: 'priority'"), "{s}");
        let e = p("vrrp_instance a {\n interface e\n").unwrap_err();
        assert!(e.to_string().contains("missing '}'"));
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.300/24\n }\n}\n").unwrap_err();
        assert!(e.to_string().starts_with("k.conf:5: error:"), "{e}");
        let e = p("vrrp_sync_group g {\n group {\n nope\n }\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert!(e.to_string().contains("no vrrp_instance named 'nope'"));
    }

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

    /// The first statement of `text`, as the parser sees it.
    fn stmt(text: &str) -> Stmt {
        let toks = tokenize(text);
        let mut errs = Vec::new();
        let tree = build_tree(&toks, &mut 0, 0, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        tree.into_iter().next().unwrap()
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            file: Path::new("t.conf"),
            errors: vec![],
            warnings: vec![],
        }
    }

    fn msgs(d: &[Diag]) -> Vec<String> {
        d.iter().map(|d| format!("{}: {}", d.line, d.msg)).collect()
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
    fn garp_timers_global_and_per_instance() {
        let c = p("global_defs {\n vrrp_garp_master_repeat 7\n vrrp_garp_master_delay 2\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n garp_master_delay 3\n vrrp_garp_master_refresh 9\n}\n").unwrap();
        let g = c.instances[0].garp;
        assert_eq!(
            (g.master_repeat, g.master_delay),
            (7, Duration::from_secs(3))
        );
        assert_eq!(g.master_refresh, Duration::ZERO);
        assert!(
            c.warnings[0]
                .msg
                .starts_with("unknown or unsupported keyword 'vrrp_garp_master_refresh'"),
            "{:?}",
            c.warnings
        );
        let e = p("global_defs {\n vrrp_garp_master_refresh_repeat 0\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "k.conf:2: error: 'vrrp_garp_master_refresh_repeat' must be a number from 1 to 255, got '0'");
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

    #[test]
    fn duplicate_vrid_rejected() {
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n}\nvrrp_instance b {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert!(e.to_string().contains("k.conf:5:"), "{e}");
    }
}
