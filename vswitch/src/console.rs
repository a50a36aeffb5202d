//! The management console: vde_switch's command set, output framing and return codes
//! (`0000 DATA END WITH '.'`, `1000 Success`, `1EEE <strerror>`), executed against a
//! [`Switch`]. Pure apart from `load`, which reads its script through [`Ctx::read_file`],
//! and the user and group names (`port/setuser`, `port/setgroup`, `port/print`), looked up
//! in /etc/passwd and /etc/group through [`crate::accounts`].
//!
//! vswitch extensions: `json <command>` (the data block is one JSON document),
//! `port/impair N in|out|both KEY VALUE`, `port/capture N FILE|off`.

mod auth;
mod fuzz;
mod json;
mod stp;

pub use fuzz::fuzz_console;

use crate::core::{DropReason, PortId, Switch, NO_VLAN};
use crate::wire::{fmt_mac, parse_mac};
use std::fmt::Write as _;

/// The prompt written after every reply.
pub const PROMPT: &str = "\nvde$ ";
/// Written on `logout`/`shutdown` instead of a prompt.
pub const END_OF_SESSION: &str = "9999 END OF SESSION";
/// Greeting on connect (first line kept byte-compatible with vde_switch 2.3.2).
pub fn banner() -> String {
    format!(
        "VDE switch V.2.3.2\n(ramux vswitch {} - VDE2 compatible, MIT OR Apache-2.0)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Side effects the console asks the daemon to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Logout,
    Shutdown,
    /// `port/epclose N ID`.
    EpClose {
        port: PortId,
        id: u32,
    },
    /// `port/capture N FILE` (None = stop).
    Capture {
        port: PortId,
        path: Option<String>,
    },
    /// Impairment config of port changed: rebuild its queues.
    /// `debug/add` (on = true) or `debug/del` for these categories, this session only.
    Debug {
        on: bool,
        cats: Vec<&'static str>,
    },
    Impair {
        port: PortId,
    },
}

/// Facts about the running daemon that some commands print.
pub struct Ctx<'a> {
    pub pid: u32,
    pub mac: [u8; 6],
    pub uptime_s: u64,
    /// The daemon clock (milliseconds since start), for the spanning tree.
    pub now_ms: u64,
    pub mgmt: Option<String>,
    pub mgmt_mode: u32,
    pub ctl_dir: String,
    pub sock_mode: u32,
    /// Reads scripts for `load`.
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
    /// Port -> capture file currently active.
    pub captures: Vec<(PortId, String)>,
    /// Debug categories this session is subscribed to (`debug/add`).
    pub debug_on: Vec<&'static str>,
    /// Daemon robustness counters (bad handshakes, refusals, ...), shown by `showinfo`.
    pub stats: Vec<(&'static str, u64)>,
}

/// vde_switch's debug categories: (name, octal tag, help). Events are written to subscribed
/// sessions as `3TTT <category> <text>`.
pub const DEBUG_CATEGORIES: &[(&str, u32, &str)] = &[
    ("hash/+", 0o11, "hash: new element"),
    ("hash/-", 0o12, "hash: discarded element"),
    ("fstp/status", 0o44, "fstp: status change"),
    ("fstp/root", 0o45, "fstp: rootswitch/port change"),
    ("fstp/+", 0o41, "fstp: port becomes active"),
    ("fstp/-", 0o42, "fstp: port becomes inactive"),
    ("port/+", 0o21, "new port"),
    ("port/-", 0o22, "closed port"),
    ("port/descr", 0o23, "set port description"),
    ("port/ep/+", 0o31, "new endpoint"),
    ("port/ep/-", 0o32, "closed endpoint"),
];

/// Format one asynchronous debug line (without the trailing newline).
pub fn debug_line(cat: &str, text: &str) -> String {
    let tag = DEBUG_CATEGORIES
        .iter()
        .find(|c| c.0 == cat)
        .map_or(0, |c| c.1);
    format!("3{tag:03o} {cat} {text}")
}

/// Result of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Data lines (Some = the command prints a data block, even when it fails).
    pub data: Option<Vec<String>>,
    /// 0 = success, else a Linux errno (or 1002-style codes: `1` + errno).
    pub errno: i32,
    pub actions: Vec<Action>,
    /// Raw text printed before the status (used by `load`'s echo).
    pub prefix: String,
}

impl Reply {
    fn ok() -> Self {
        Reply {
            data: None,
            errno: 0,
            actions: vec![],
            prefix: String::new(),
        }
    }
    fn err(e: i32) -> Self {
        Reply {
            errno: e,
            ..Self::ok()
        }
    }
    fn data(lines: Vec<String>) -> Self {
        Reply {
            data: Some(lines),
            ..Self::ok()
        }
    }
    fn data_err(lines: Vec<String>, e: i32) -> Self {
        Reply {
            data: Some(lines),
            errno: e,
            ..Self::ok()
        }
    }
    fn action(a: Action) -> Self {
        Reply {
            actions: vec![a],
            ..Self::ok()
        }
    }

    /// Render as vde_switch does, without the prompt.
    pub fn render(&self, out: &mut String) {
        out.push_str(&self.prefix);
        if let Some(d) = &self.data {
            out.push_str("0000 DATA END WITH '.'\n");
            for l in d {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(".\n");
        }
        if self.errno == 0 {
            out.push_str("1000 Success\n");
        } else {
            let _ = writeln!(out, "1{:03} {}", self.errno, strerror(self.errno));
        }
    }
}

/// Linux strerror for the codes the console uses.
pub fn strerror(e: i32) -> &'static str {
    match e {
        libc::EPERM => "Operation not permitted",
        libc::ENOENT => "No such file or directory",
        libc::ENXIO => "No such device or address",
        libc::EBADF => "Bad file descriptor",
        libc::ENOMEM => "Cannot allocate memory",
        libc::EEXIST => "File exists",
        libc::ENODEV => "No such device",
        libc::EINVAL => "Invalid argument",
        libc::ENOSPC => "No space left on device",
        libc::ENOSYS => "Function not implemented",
        libc::EADDRINUSE => "Address already in use",
        libc::EIO => "Input/output error",
        _ => "Unknown error",
    }
}

/// (path, syntax, help); menus have syntax `============`. Order = help order.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("ds", "============", "DATA SOCKET MENU"),
    ("ds/showinfo", "", "show ds info"),
    ("help", "[arg]", "Help (limited to arg when specified)"),
    ("logout", "", "logout from this mgmt terminal"),
    ("shutdown", "", "shutdown of the switch"),
    ("showinfo", "", "show switch version and info"),
    ("load", "path", "load a configuration script"),
    (
        "json",
        "command",
        "run a status command, data as one JSON document",
    ),
    ("debug", "============", "DEBUG MENU"),
    ("debug/list", "", "list debug categories"),
    (
        "debug/add",
        "dbgpath",
        "enable debug info for a given category",
    ),
    (
        "debug/del",
        "dbgpath",
        "disable debug info for a given category",
    ),
    ("plugin", "============", "PLUGINS MENU"),
    ("plugin/list", "", "list plugins"),
    ("plugin/add", "library", "load a plugin"),
    ("plugin/del", "name", "unload a plugin"),
    ("hash", "============", "HASH TABLE MENU"),
    ("hash/showinfo", "", "show hash info"),
    ("hash/setsize", "N", "change hash size"),
    ("hash/setgcint", "N", "change garbage collector interval"),
    ("hash/setexpire", "N", "change hash entries expire time"),
    ("hash/setminper", "N", "minimum persistence time"),
    ("hash/print", "", "print the hash table"),
    ("hash/find", "MAC [VLAN]", "MAC lookup"),
    ("fstp", "============", "FAST SPANNING TREE MENU"),
    ("fstp/showinfo", "", "show fstp info"),
    (
        "fstp/setfstp",
        "0/1",
        "Fast spanning tree protocol 1=ON 0=OFF",
    ),
    (
        "fstp/setedge",
        "VLAN PORT 1/0",
        "Define an edge port for a vlan 1=Y 0=N",
    ),
    (
        "fstp/bonus",
        "VLAN PORT COST",
        "set the port bonus for a vlan",
    ),
    ("fstp/print", "[N]", "print fst data for the defined vlan"),
    (
        "stp",
        "============",
        "SPANNING TREE MENU (-F: 802.1D or RSTP, one tree for all VLANs)",
    ),
    (
        "stp/showinfo",
        "",
        "show bridge and root ids, root port, cost, timers",
    ),
    (
        "stp/print",
        "[N]",
        "print the ports' role, state, cost and BPDU counters",
    ),
    ("stp/setprio", "N", "set the bridge priority (0..65535)"),
    ("stp/setcost", "PORT COST", "set a port's path cost"),
    (
        "stp/setfwddelay",
        "S",
        "set the forward delay in seconds (4..30)",
    ),
    ("stp/sethello", "S", "set the hello time in seconds (1..10)"),
    ("stp/setmaxage", "S", "set the max age in seconds (6..40)"),
    ("stp/setmode", "stp/rstp", "run 802.1D STP or RSTP (802.1w)"),
    (
        "stp/setedge",
        "PORT 0/1",
        "RSTP: admin edge port (forwards at once)",
    ),
    (
        "stp/setautoedge",
        "PORT 0/1",
        "RSTP: edge when no BPDU is heard (default 1)",
    ),
    (
        "stp/setp2p",
        "PORT auto/yes/no",
        "RSTP: point-to-point link (auto: yes)",
    ),
    (
        "stp/setportprio",
        "PORT N",
        "RSTP: port priority (0..240, steps of 16)",
    ),
    (
        "stp/mcheck",
        "PORT",
        "RSTP: try RSTP again on a port that fell back to STP",
    ),
    (
        "auth",
        "============",
        "PORT AUTHENTICATION MENU (MAB over RADIUS)",
    ),
    (
        "auth/setradius",
        "IP:PORT SECRETFILE [NASIP [NASID]]",
        "RADIUS server, secret read from a file (off: none)",
    ),
    (
        "auth/setmaxmacs",
        "N",
        "MACs per auth port (1..64, default 1)",
    ),
    (
        "auth/settimers",
        "MS TRIES HOLD",
        "reply timeout (ms), sends per try, reject hold (s)",
    ),
    (
        "auth/print",
        "[N]",
        "print auth ports: MACs, state, VLAN, counters",
    ),
    ("port", "============", "PORT STATUS MENU"),
    ("port/showinfo", "", "show port info"),
    ("port/setnumports", "N", "set the number of ports"),
    ("port/sethub", "0/1", "1=HUB 0=switch"),
    ("port/setvlan", "N VLAN", "set port VLAN (untagged)"),
    (
        "port/setauth",
        "N mab|off",
        "MAC authentication (RADIUS) on port N",
    ),
    (
        "port/createauto",
        "",
        "create a port with an automatically allocated id (inactive|notallocatable)",
    ),
    (
        "port/create",
        "N",
        "create the port N (inactive|notallocatable)",
    ),
    ("port/remove", "N", "remove the port N"),
    (
        "port/allocatable",
        "N 0/1",
        "Is the port allocatable as unnamed? 1=Y 0=N",
    ),
    ("port/setuser", "N user", "access control: set user"),
    ("port/setgroup", "N user", "access control: set group"),
    ("port/epclose", "N ID", "remove the endpoint port N/id ID"),
    ("port/resetcounter", "[N]", "reset the port (N) counters"),
    ("port/print", "[N]", "print the port/endpoint table"),
    (
        "port/allprint",
        "[N]",
        "print the port/endpoint table (including inactive port)",
    ),
    (
        "port/impair",
        "N in|out|both K V",
        "impairment: loss|dup|delay|bandwidth|mtu|noise VALUE[+JITTER], clear",
    ),
    (
        "port/capture",
        "N FILE|off",
        "capture frames of port N to a pcap file",
    ),
    ("vlan", "============", "VLAN MANAGEMENT MENU"),
    ("vlan/create", "N", "create the VLAN with tag N"),
    ("vlan/remove", "N", "remove the VLAN with tag N"),
    ("vlan/addport", "N PORT", "add port to the vlan N (tagged)"),
    (
        "vlan/delport",
        "N PORT",
        "remove port from the vlan N (tagged)",
    ),
    ("vlan/print", "[N]", "print the list of defined vlan"),
    (
        "vlan/allprint",
        "[N]",
        "print the list of defined vlan (including inactive port)",
    ),
];

/// Split a console line into (command, argument) the vde_switch way: strip one trailing
/// newline and leading blanks; the longest registered command path that prefixes the line
/// wins; the argument is the rest with leading blanks removed.
pub fn parse_command_line(line: &str) -> Option<(&'static str, &str)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.trim_start_matches([' ', '\t']);
    COMMANDS
        .iter()
        .filter(|(p, s, _)| *s != "============" && line.starts_with(p))
        .max_by_key(|(p, _, _)| p.len())
        .map(|(p, _, _)| {
            (
                *p,
                line[p.len()..].trim_start_matches([' ', '\t']).trim_end(),
            )
        })
}

/// C `%i`-style integer: decimal, 0x hex, leading-0 octal, optional sign.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn ints(arg: &str, n: usize) -> Option<Vec<i64>> {
    let v: Vec<i64> = arg
        .split_whitespace()
        .take(n)
        .map(parse_int)
        .collect::<Option<_>>()?;
    (v.len() == n).then_some(v)
}

fn port_lines(sw: &Switch, p: PortId, out: &mut Vec<String>) {
    let Some(port) = sw.port(p) else { return };
    let acl_name = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_else(|| "NONE".into());
    out.push(format!(
        "Port {:04} untagged_vlan={:04} {} - {}Unnamed Allocatable",
        p,
        port.untagged,
        if port.active() { "ACTIVE" } else { "INACTIVE" },
        if port.allocatable { "" } else { "NOT " }
    ));
    out.push(format!(
        " Current User: {} Access Control: (User: {} - Group: {})",
        crate::accounts::user_name(port.user),
        acl_name(port.acl.user),
        acl_name(port.acl.group)
    ));
    let c = &port.counters;
    out.push(format!(
        " IN:  pkts {:>10}          bytes {:>20}",
        c.in_frames, c.in_bytes
    ));
    out.push(format!(
        " OUT: pkts {:>10}          bytes {:>20}",
        c.out_frames, c.out_bytes
    ));
    if c.drops.iter().any(|&d| d > 0) {
        let mut l = String::from(" DROPS:");
        for r in DropReason::ALL {
            if c.drops[r as usize] > 0 {
                let _ = write!(l, " {}={}", r.name(), c.drops[r as usize]);
            }
        }
        out.push(l);
    }
    if !port.impair_in.is_none() || !port.impair_out.is_none() {
        out.push(format!(
            " IMPAIR: in {:?} out {:?}",
            port.impair_in, port.impair_out
        ));
    }
    for e in &port.endpoints {
        out.push(format!(
            "  -- endpoint ID {:04} module {:<12}: {}",
            e.id, e.module, e.descr
        ));
    }
}

/// Run one console line.
pub fn execute(sw: &mut Switch, ctx: &Ctx<'_>, line: &str) -> Reply {
    execute_depth(sw, ctx, line, 0, &std::cell::Cell::new(LOAD_BUDGET))
}

/// Most commands one console line may run, `load`s included: nested `load`s are bounded
/// in depth (8) and, with this, in total (a script loading itself twice per line would
/// otherwise run 2^8 times its length, with the loop stalled meanwhile).
pub const LOAD_BUDGET: u32 = 10_000;

fn execute_depth(
    sw: &mut Switch,
    ctx: &Ctx<'_>,
    line: &str,
    depth: u32,
    budget: &std::cell::Cell<u32>,
) -> Reply {
    let trimmed = line
        .trim_start_matches([' ', '\t'])
        .trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Reply {
            data: None,
            errno: -1,
            actions: vec![],
            prefix: String::new(),
        };
    }
    let Some((cmd, arg)) = parse_command_line(line) else {
        return Reply::err(libc::ENOSYS);
    };
    if budget.get() == 0 {
        return Reply::err(libc::E2BIG);
    }
    budget.set(budget.get() - 1);
    match cmd.split_once('/').map_or("", |(group, _)| group) {
        "hash" => hash_cmd(sw, ctx, cmd, arg),
        "fstp" => fstp_cmd(sw, ctx, cmd, arg),
        "stp" => stp::stp_cmd(sw, ctx, cmd, arg),
        "auth" => auth::auth_cmd(sw, ctx, cmd, arg),
        "port" => match cmd {
            "port/setauth" => auth::auth_cmd(sw, ctx, cmd, arg),
            "port/print" | "port/allprint" | "port/impair" | "port/capture" => {
                port_status_cmd(sw, cmd, arg)
            }
            _ => port_setup_cmd(sw, cmd, arg),
        },
        "vlan" => vlan_cmd(sw, cmd, arg),
        _ => general_cmd(sw, ctx, cmd, arg, (depth, budget)),
    }
}

/// Session, help, info, `load`, `json`, `debug/*` and `plugin/*` commands.
fn general_cmd(
    sw: &mut Switch,
    ctx: &Ctx<'_>,
    cmd: &str,
    arg: &str,
    (depth, budget): (u32, &std::cell::Cell<u32>),
) -> Reply {
    match cmd {
        "logout" => Reply::action(Action::Logout),
        "shutdown" => Reply::action(Action::Shutdown),
        "help" => {
            let mut d = vec![
                format!("{:<18} {:<15} {}", "COMMAND PATH", "SYNTAX", "HELP"),
                format!(
                    "{:<18} {:<15} {}",
                    "------------", "--------------", "------------"
                ),
            ];
            for (p, s, h) in COMMANDS {
                if p.starts_with(arg) {
                    d.push(format!("{p:<18} {s:<15} {h}"));
                }
            }
            Reply::data(d)
        }
        "showinfo" => {
            let mut d: Vec<String> = banner().lines().map(String::from).collect();
            d.push(String::new());
            d.push(format!(
                "pid {} MAC {} uptime {}",
                ctx.pid,
                fmt_mac(&ctx.mac),
                ctx.uptime_s
            ));
            if let Some(m) = &ctx.mgmt {
                d.push(format!("mgmt {} perm {:04o}", m, ctx.mgmt_mode));
            }
            if !ctx.stats.is_empty() {
                let c: Vec<String> = ctx.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
                d.push(format!("counters {}", c.join(" ")));
            }
            Reply::data(d)
        }
        "ds/showinfo" => Reply::data(vec![
            format!("ctl dir {}", ctx.ctl_dir),
            format!("std mode {:04o}", ctx.sock_mode),
        ]),
        "load" => {
            if depth > 8 {
                return Reply::err(libc::ELOOP);
            }
            match (ctx.read_file)(arg) {
                Err(_) => Reply::err(libc::ENOENT),
                Ok(text) => {
                    let mut out = Reply::ok();
                    for l in text.lines() {
                        if budget.get() == 0 {
                            out.errno = libc::E2BIG;
                            break;
                        }
                        let _ = writeln!(out.prefix, "vde[{arg}]: {l}");
                        let r = execute_depth(sw, ctx, l, depth + 1, budget);
                        if r.errno >= 0 {
                            r.render(&mut out.prefix);
                        }
                        out.actions.extend(r.actions);
                    }
                    out
                }
            }
        }
        "json" => json::json_cmd(sw, ctx, arg),
        "debug/list" => {
            let mut d = vec![
                format!("{:<22} TAG STATUS HELP", "CATEGORY"),
                format!("{:<22} --- ------ ----", "------------"),
            ];
            let matching: Vec<_> = DEBUG_CATEGORIES
                .iter()
                .filter(|c| c.0.starts_with(arg))
                .collect();
            for (name, tag, help) in &matching {
                let on = if ctx.debug_on.contains(name) {
                    "ON "
                } else {
                    "OFF"
                };
                d.push(format!("{name:<22} {tag:03o} {on}    {help}"));
            }
            if matching.is_empty() {
                Reply::data_err(d, libc::ENOENT)
            } else {
                Reply::data(d)
            }
        }
        "debug/add" | "debug/del" => {
            let on = cmd == "debug/add";
            let cats: Vec<&'static str> = DEBUG_CATEGORIES
                .iter()
                .map(|c| c.0)
                .filter(|c| !arg.is_empty() && c.starts_with(arg))
                .collect();
            if cats.is_empty() {
                return Reply::err(libc::EINVAL);
            }
            if on && cats.iter().all(|c| ctx.debug_on.contains(c)) {
                return Reply::err(libc::EEXIST);
            }
            Reply::action(Action::Debug { on, cats })
        }
        "plugin/list" => Reply::data(vec![]),
        "plugin/add" | "plugin/del" => Reply::err(libc::ENOSYS),
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `hash/*`: the MAC table.
fn hash_cmd(sw: &mut Switch, ctx: &Ctx<'_>, cmd: &str, arg: &str) -> Reply {
    match cmd {
        "hash/showinfo" => Reply::data(vec![
            format!("Hash size {}", sw.table.hashsize),
            format!("GC interval {} secs", sw.table.gcint_s),
            format!("GC expire {} secs", sw.table.expire_ms / 1000),
            format!("Min persistence {} secs", sw.table.minper_ms / 1000),
            format!(
                "Entries {} max {} per port {}",
                sw.table.len(),
                sw.table.max_entries,
                sw.table.max_per_port
            ),
            format!("Refused learnings {}", sw.table.refused),
        ]),
        "hash/setsize" | "hash/setgcint" | "hash/setexpire" | "hash/setminper" => {
            let Some(v) = ints(arg, 1).map(|v| v[0]) else {
                return Reply::err(libc::EINVAL);
            };
            if v <= 0 && cmd == "hash/setsize" || v < 0 {
                return Reply::err(libc::EINVAL);
            }
            // Seconds kept in milliseconds: at most u64::MAX / 1000 s (v * 1000 overflowed:
            // found by the session fuzz target; release builds wrapped it to any value).
            let v = (v as u64).min(u64::MAX / 1000);
            match cmd {
                "hash/setsize" => sw.table.set_size(v.min(1 << 16) as usize),
                "hash/setgcint" => sw.table.gcint_s = v,
                "hash/setexpire" => sw.table.expire_ms = v * 1000,
                _ => sw.table.minper_ms = v * 1000,
            }
            Reply::ok()
        }
        "hash/print" => {
            // Ages are not known here without a clock: the daemon passes uptime; print last-seen age.
            let now = ctx.uptime_s * 1000;
            Reply::data(
                sw.table
                    .entries()
                    .into_iter()
                    .map(|((v, m), e)| {
                        hash_line(sw, v, &m, e.port, now.saturating_sub(e.last_seen_ms) / 1000)
                    })
                    .collect(),
            )
        }
        "hash/find" => {
            let mut it = arg.split_whitespace();
            let Some(mac) = it.next().and_then(parse_mac) else {
                return Reply::data_err(vec![], libc::EINVAL);
            };
            let vlan = match it.next() {
                Some(v) => match parse_int(v) {
                    Some(v) if (0..4095).contains(&v) => v as u16,
                    _ => return Reply::data_err(vec![], libc::EINVAL),
                },
                None => 0,
            };
            match sw.table.get(vlan, &mac) {
                Some(e) => {
                    let age = (ctx.uptime_s * 1000).saturating_sub(e.last_seen_ms) / 1000;
                    Reply::data(vec![hash_line(sw, vlan, &mac, e.port, age)])
                }
                None => Reply::data_err(vec![], libc::ENODEV),
            }
        }
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `fstp/*`: vde_switch's per-VLAN fast spanning tree is not implemented, answered as
/// disabled (vswitch's `-F` runs 802.1D STP instead: see `stp/*`).
fn fstp_cmd(sw: &Switch, ctx: &Ctx<'_>, cmd: &str, arg: &str) -> Reply {
    match cmd {
        "fstp/showinfo" => Reply::data(vec![
            format!("MAC {} Priority 32768 (0x8000)", fmt_mac(&ctx.mac)),
            format!("FSTP={}", sw.stp.is_some()),
        ]),
        "fstp/setfstp" => match ints(arg, 1) {
            Some(v) if v[0] == 0 => Reply::data(vec![]),
            // Spanning tree is not implemented: say so instead of pretending.
            _ => Reply::data_err(vec![], libc::ENOSYS),
        },
        "fstp/setedge" | "fstp/bonus" => Reply::err(libc::ENOSYS),
        "fstp/print" => Reply::data(
            sw.vlans
                .iter()
                .map(|v| format!("FST DATA VLAN {v:04} ROOTSWITCH FSTP IS DISABLED"))
                .collect(),
        ),
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `port/*` commands that set ports up.
fn port_setup_cmd(sw: &mut Switch, cmd: &str, arg: &str) -> Reply {
    let np = sw.numports as i64;
    let port_in_range = |p: i64| (0..=np).contains(&p);
    match cmd {
        "port/showinfo" => Reply::data(vec![
            format!("Numports={}", sw.numports),
            format!("HUB={}", sw.hub),
            "counters=true".into(),
        ]),
        "port/setnumports" => {
            let Some(n) = ints(arg, 1).map(|v| v[0]) else {
                return Reply::err(libc::EINVAL);
            };
            if n <= 0 || n > 4096 {
                return Reply::err(libc::EINVAL);
            }
            if sw.ports.iter().skip(n as usize + 1).any(|p| p.is_some()) {
                return Reply::err(libc::EADDRINUSE);
            }
            sw.numports = n as u16;
            sw.ports.resize(n as usize + 1, None);
            if let Some(stp) = sw.stp.as_mut() {
                stp.resize(n as u16);
            }
            sw.auth_resize(n as u16);
            Reply::ok()
        }
        "port/sethub" => match ints(arg, 1) {
            Some(v) => {
                sw.hub = v[0] != 0;
                sw.table.flush_all();
                Reply::ok()
            }
            None => Reply::err(libc::EINVAL),
        },
        "port/setvlan" => {
            let Some(v) = ints(arg, 2) else {
                return Reply::err(libc::EINVAL);
            };
            let (p, vl) = (v[0], v[1]);
            if !port_in_range(p) || !(0..=4095).contains(&vl) {
                return Reply::err(libc::EINVAL);
            }
            let vl = vl as u16;
            if vl != NO_VLAN && !sw.vlans.contains(vl) {
                return Reply::err(libc::ENXIO);
            }
            let Some(port) = sw.port_mut(p as PortId) else {
                return Reply::err(libc::ENXIO);
            };
            port.untagged = vl;
            sw.table.flush_port(p as PortId);
            Reply::ok()
        }
        "port/createauto" => match (1..=sw.numports).find(|&p| sw.port(p).is_none()) {
            Some(p) => {
                sw.create_port(p, false);
                Reply::data(vec![format!("Port {p:04}")])
            }
            None => Reply::data_err(vec![], libc::ENOSPC),
        },
        "port/create" => match ints(arg, 1) {
            Some(v) if v[0] >= 1 && v[0] <= np => {
                if sw.create_port(v[0] as PortId, false) {
                    Reply::ok()
                } else {
                    Reply::err(libc::EEXIST)
                }
            }
            _ => Reply::err(libc::EINVAL),
        },
        "port/remove" => match ints(arg, 1) {
            Some(v) if port_in_range(v[0]) => {
                let p = v[0] as PortId;
                match sw.port(p) {
                    None => Reply::err(libc::ENXIO),
                    Some(port) if port.active() => Reply::err(libc::EADDRINUSE),
                    Some(_) => {
                        sw.ports[p as usize] = None;
                        sw.table.flush_port(p);
                        Reply::ok()
                    }
                }
            }
            _ => Reply::err(libc::EINVAL),
        },
        "port/allocatable" => match ints(arg, 2) {
            Some(v) if port_in_range(v[0]) => match sw.port_mut(v[0] as PortId) {
                Some(port) => {
                    port.allocatable = v[1] != 0;
                    Reply::ok()
                }
                None => Reply::err(libc::ENXIO),
            },
            _ => Reply::err(libc::EINVAL),
        },
        "port/setuser" | "port/setgroup" => {
            let mut it = arg.split_whitespace();
            let p = it.next().and_then(parse_int);
            let name = it.next();
            let (Some(p), Some(name)) = (p, name) else {
                return Reply::err(libc::EINVAL);
            };
            if !port_in_range(p) {
                return Reply::err(libc::EINVAL);
            }
            let Some(id) = crate::accounts::acl_id_from_files(cmd == "port/setuser", name) else {
                return Reply::err(libc::EINVAL);
            };
            match sw.port_mut(p as PortId) {
                Some(port) => {
                    if cmd == "port/setuser" {
                        port.acl.user = id;
                    } else {
                        port.acl.group = id;
                    }
                    Reply::ok()
                }
                None => Reply::err(libc::ENXIO),
            }
        }
        "port/epclose" => match ints(arg, 2) {
            Some(v) if port_in_range(v[0]) && v[1] >= 0 => {
                let p = v[0] as PortId;
                match sw.port(p) {
                    Some(port) if port.endpoints.iter().any(|e| e.id as i64 == v[1]) => {
                        Reply::action(Action::EpClose {
                            port: p,
                            id: v[1] as u32,
                        })
                    }
                    _ => Reply::err(libc::ENXIO),
                }
            }
            _ => Reply::err(libc::EINVAL),
        },
        "port/resetcounter" => {
            if arg.is_empty() {
                for p in sw.ports.iter_mut().flatten() {
                    p.counters = Default::default();
                }
                sw.global_drops = Default::default();
                return Reply::ok();
            }
            match ints(arg, 1) {
                Some(v) if port_in_range(v[0]) => match sw.port_mut(v[0] as PortId) {
                    Some(p) => {
                        p.counters = Default::default();
                        Reply::ok()
                    }
                    None => Reply::err(libc::ENXIO),
                },
                _ => Reply::err(libc::EINVAL),
            }
        }
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `port/print`, `port/allprint`, `port/impair`, `port/capture`.
fn port_status_cmd(sw: &mut Switch, cmd: &str, arg: &str) -> Reply {
    let np = sw.numports as i64;
    let port_in_range = |p: i64| (0..=np).contains(&p);
    match cmd {
        "port/print" | "port/allprint" => {
            let all = cmd == "port/allprint";
            let mut d = Vec::new();
            if arg.is_empty() {
                for p in 0..=sw.numports {
                    if sw.port(p).is_some_and(|x| all || x.active()) {
                        port_lines(sw, p, &mut d);
                    }
                }
                return Reply::data(d);
            }
            match ints(arg, 1) {
                Some(v) if port_in_range(v[0]) => {
                    let p = v[0] as PortId;
                    if sw.port(p).is_some_and(|x| all || x.active()) {
                        port_lines(sw, p, &mut d);
                        Reply::data(d)
                    } else {
                        Reply::data_err(d, libc::ENXIO)
                    }
                }
                _ => Reply::data_err(d, libc::EINVAL),
            }
        }
        "port/impair" => {
            let f: Vec<&str> = arg.split_whitespace().collect();
            if f.len() < 3 {
                return Reply::err(libc::EINVAL);
            }
            let Some(p) = parse_int(f[0]).filter(|p| port_in_range(*p)) else {
                return Reply::err(libc::EINVAL);
            };
            let p = p as PortId;
            let value = f.get(3).copied().unwrap_or("");
            let Some(port) = sw.port_mut(p) else {
                return Reply::err(libc::ENXIO);
            };
            let mut cfgs = (port.impair_in, port.impair_out);
            let dirs: &[bool] = match f[1] {
                "in" | "RL" => &[true],
                "out" | "LR" => &[false],
                "both" => &[true, false],
                _ => return Reply::err(libc::EINVAL),
            };
            for &is_in in dirs {
                let c = if is_in { &mut cfgs.0 } else { &mut cfgs.1 };
                if c.set(f[2], value).is_err() {
                    return Reply::err(libc::EINVAL);
                }
            }
            port.impair_in = cfgs.0;
            port.impair_out = cfgs.1;
            Reply::action(Action::Impair { port: p })
        }
        "port/capture" => {
            let f: Vec<&str> = arg.split_whitespace().collect();
            if f.len() != 2 {
                return Reply::err(libc::EINVAL);
            }
            let Some(p) = parse_int(f[0]).filter(|p| port_in_range(*p)) else {
                return Reply::err(libc::EINVAL);
            };
            let path = (f[1] != "off").then(|| f[1].to_string());
            Reply::action(Action::Capture {
                port: p as PortId,
                path,
            })
        }
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `vlan/*`.
fn vlan_cmd(sw: &mut Switch, cmd: &str, arg: &str) -> Reply {
    let np = sw.numports as i64;
    let port_in_range = |p: i64| (0..=np).contains(&p);
    match cmd {
        "vlan/create" => match ints(arg, 1) {
            // vde_switch rejects 4094 (off by one); vswitch accepts the whole 1..4094 range.
            Some(v) if (1..=4094).contains(&v[0]) => {
                let v = v[0] as u16;
                if sw.vlans.contains(v) {
                    Reply::err(libc::EEXIST)
                } else {
                    sw.vlans.insert(v);
                    Reply::ok()
                }
            }
            _ => Reply::err(libc::EINVAL),
        },
        "vlan/remove" => match ints(arg, 1) {
            // VLAN 0 can never be removed (vde_switch 2.3.2 crashes afterwards; docs/switch.md).
            Some(v) if (1..=4094).contains(&v[0]) => {
                let v = v[0] as u16;
                if !sw.vlans.contains(v) {
                    Reply::err(libc::ENXIO)
                } else if sw.ports.iter().flatten().any(|p| p.member(v)) {
                    Reply::err(libc::EADDRINUSE)
                } else {
                    sw.vlans.remove(v);
                    Reply::ok()
                }
            }
            _ => Reply::err(libc::EINVAL),
        },
        "vlan/addport" | "vlan/delport" => {
            let Some(v) = ints(arg, 2) else {
                return Reply::err(libc::EINVAL);
            };
            let (vl, p) = (v[0], v[1]);
            if !(0..=4094).contains(&vl) || !port_in_range(p) {
                return Reply::err(libc::EINVAL);
            }
            let (vl, p) = (vl as u16, p as PortId);
            if !sw.vlans.contains(vl) {
                return Reply::err(libc::ENXIO);
            }
            let add = cmd == "vlan/addport";
            let Some(port) = sw.port_mut(p) else {
                return Reply::err(libc::ENXIO);
            };
            if add {
                port.tagged.insert(vl);
            } else {
                if port.untagged == vl {
                    return Reply::err(libc::EADDRINUSE);
                }
                port.tagged.remove(vl);
                sw.table.flush_port(p);
            }
            Reply::ok()
        }
        "vlan/print" | "vlan/allprint" => {
            let all = cmd == "vlan/allprint";
            let vlan_lines = |v: u16, d: &mut Vec<String>| {
                d.push(format!("VLAN {v:04}"));
                for (p, port) in sw.ports.iter().enumerate() {
                    if let Some(port) = port {
                        if port.member(v) && (all || port.active()) {
                            d.push(format!(
                                " -- Port {:04} tagged={} active={} status={}",
                                p,
                                u8::from(port.untagged != v),
                                u8::from(port.active()),
                                if port.active() {
                                    "Forwarding"
                                } else {
                                    "Learning"
                                }
                            ));
                        }
                    }
                }
            };
            let mut d = Vec::new();
            if arg.is_empty() {
                for v in sw.vlans.iter() {
                    vlan_lines(v, &mut d);
                }
                return Reply::data(d);
            }
            match ints(arg, 1) {
                Some(v) if (0..=4094).contains(&v[0]) => {
                    if sw.vlans.contains(v[0] as u16) {
                        vlan_lines(v[0] as u16, &mut d);
                        Reply::data(d)
                    } else {
                        Reply::data_err(d, libc::ENXIO)
                    }
                }
                _ => Reply::data_err(d, libc::EINVAL),
            }
        }
        _ => Reply::err(libc::ENOSYS),
    }
}

fn hash_line(sw: &Switch, vlan: u16, mac: &[u8; 6], port: PortId, age_s: u64) -> String {
    format!(
        "Hash: {:04} Addr: {} VLAN {:04} to port: {:03}  age {} secs",
        sw.table.bucket(vlan, mac),
        fmt_mac(mac),
        vlan,
        port,
        age_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EndpointInfo;
    use crate::wire::PortRequest;

    fn ctx(read: &dyn Fn(&str) -> std::io::Result<String>) -> Ctx<'_> {
        Ctx {
            pid: 1,
            mac: [0, 0xff, 1, 2, 3, 4],
            uptime_s: 5,
            now_ms: 5000,
            mgmt: Some("/tmp/m".into()),
            mgmt_mode: 0o600,
            ctl_dir: "/tmp/sw".into(),
            sock_mode: 0o600,
            read_file: read,
            captures: vec![],
            debug_on: vec![],
            stats: vec![],
        }
    }

    fn run(sw: &mut Switch, line: &str) -> String {
        let no = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        let mut s = String::new();
        execute(sw, &ctx(&no), line).render(&mut s);
        s
    }

    #[test]
    fn stp_commands() {
        let mut sw = Switch::new(4, false, 128);
        assert!(run(&mut sw, "stp/showinfo").contains("spanning tree is off"));
        assert!(run(&mut sw, "stp/showinfo").ends_with("1038 Function not implemented\n"));
        sw.enable_stp([2, 0, 0, 0, 0, 1], 0x8000, Default::default(), 0);
        let ep = EndpointInfo {
            id: 7,
            module: "unix prog".into(),
            descr: "t".into(),
        };
        sw.alloc(PortRequest::Port(2), Some(0), &[], ep).unwrap();
        sw.stp_tick(1000);
        for ok in [
            "stp/setmaxage 6",
            "stp/setfwddelay 4",
            "stp/sethello 1",
            "stp/setprio 0x1000",
        ] {
            assert_eq!(run(&mut sw, ok), "1000 Success\n", "{ok}");
        }
        for bad in [
            "stp/setfwddelay 3",
            "stp/sethello 11",
            "stp/setmaxage 41",
            "stp/setprio 65536",
            "stp/setcost 5 10",
            "stp/setcost 2 0",
        ] {
            assert!(run(&mut sw, bad).ends_with("Invalid argument\n"), "{bad}");
        }
        assert_eq!(run(&mut sw, "stp/setcost 2 100"), "1000 Success\n");
        assert_eq!(
            run(&mut sw, "stp/showinfo"),
            "0000 DATA END WITH '.'\nBridge id 1000.020000000001 (priority 4096)\n\
             Root id 1000.020000000001 root port none root path cost 0\n\
             Timers in use: max age 6 s hello 1 s forward delay 4 s\n\
             Timers configured: max age 6 s hello 1 s forward delay 4 s\n\
             Topology change: no (MAC aging 100 s)\nProtocol stp\n.\n1000 Success\n"
        );
        assert_eq!(
            run(&mut sw, "stp/print"),
            "0000 DATA END WITH '.'\nPort 0002 id 8002 role designated state listening path cost 100\n \
             designated root 1000.020000000001 cost 0 bridge 1000.020000000001 port 8002\n \
             BPDU in 0 (bad 0) out 1, data frames discarded 0\n.\n1000 Success\n"
        );
        // The tree follows port/setnumports; new ports start link-down.
        assert_eq!(run(&mut sw, "port/setnumports 8"), "1000 Success\n");
        assert!(
            run(&mut sw, "stp/print 8").contains("Port 0008 id 8008 role disabled state disabled")
        );
        assert_eq!(run(&mut sw, "port/setnumports 4"), "1000 Success\n");
        assert!(run(&mut sw, "stp/print 8").ends_with("Invalid argument\n"));
        assert_eq!(sw.stp.as_ref().unwrap().bridge.ports(), 4);
        let j = run(&mut sw, "json stp/print 3");
        let doc: serde_json::Value = serde_json::from_str(j.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["ports"][0]["state"], "disabled");
        let j = run(&mut sw, "json stp/showinfo");
        let doc: serde_json::Value = serde_json::from_str(j.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["root_port"], serde_json::Value::Null);
        assert_eq!(doc["timers"]["forward_delay_s"], 4.0);
    }

    #[test]
    fn rstp_commands() {
        let mut sw = Switch::new(4, false, 128);
        sw.enable_stp([2, 0, 0, 0, 0, 1], 0x8000, Default::default(), 0);
        let not_rstp = run(&mut sw, "stp/setedge 2 1");
        assert!(
            not_rstp.contains("need RSTP") && not_rstp.ends_with("1038 Function not implemented\n")
        );
        for bad in [
            "stp/setmode fstp",
            "stp/setedge 9 1",
            "stp/setedge 2 2",
            "stp/setp2p 2 maybe",
            "stp/setportprio 2 17",
            "stp/setportprio 2 256",
            "stp/mcheck 0",
        ] {
            assert!(run(&mut sw, bad).ends_with("Invalid argument\n"), "{bad}");
        }
        for ok in [
            "stp/setmode rstp",
            "stp/setedge 2 1",
            "stp/setautoedge 3 0",
            "stp/setp2p 3 no",
            "stp/setportprio 3 32",
            "stp/mcheck 3",
            "stp/setcost 3 100",
        ] {
            assert_eq!(run(&mut sw, ok), "1000 Success\n", "{ok}");
        }
        assert!(run(&mut sw, "stp/showinfo").contains("Protocol rstp"));
        sw.create_port(2, true);
        sw.create_port(3, true);
        let ep = |id| EndpointInfo {
            id,
            module: "unix prog".into(),
            descr: "t".into(),
        };
        sw.alloc(PortRequest::Port(2), Some(0), &[], ep(1)).unwrap();
        sw.alloc(PortRequest::Port(3), Some(0), &[], ep(2)).unwrap();
        sw.stp_tick(5000);
        let p = run(&mut sw, "stp/print");
        assert!(
            p.contains("Port 0002 id 8002 role designated state forwarding"),
            "{p}"
        );
        assert!(
            p.contains("Port 0003 id 2003 role designated state discarding path cost 100"),
            "{p}"
        );
        assert!(
            p.contains(" protocol rstp edge admin false auto false oper false p2p no (false)"),
            "{p}"
        );
        let j = run(&mut sw, "json stp/print 2");
        let doc: serde_json::Value = serde_json::from_str(j.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["ports"][0]["rstp"]["oper_edge"], true);
        let j = run(&mut sw, "json stp/showinfo");
        let doc: serde_json::Value = serde_json::from_str(j.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["mode"], "rstp");
        assert_eq!(run(&mut sw, "stp/setmode stp"), "1000 Success\n");
        assert!(run(&mut sw, "stp/print 2").contains("state listening"));
    }

    /// Regression (fuzz/session found it): huge hash timers overflowed `v * 1000`; they
    /// are capped at u64::MAX / 1000 seconds and shown as set.
    #[test]
    fn huge_hash_timers_are_capped_not_wrapped() {
        let mut sw = Switch::new(8, false, 16);
        for c in ["hash/setexpire", "hash/setminper", "hash/setgcint"] {
            assert_eq!(
                run(&mut sw, &format!("{c} 9223372036854775807")),
                "1000 Success\n"
            );
        }
        let info = run(&mut sw, "hash/showinfo");
        assert!(
            info.contains("GC interval 18446744073709551 secs\n"),
            "{info}"
        );
        assert!(
            info.contains("GC expire 18446744073709551 secs\n"),
            "{info}"
        );
        assert!(
            info.contains("Min persistence 18446744073709551 secs\n"),
            "{info}"
        );
        // And the gc check does not overflow with it.
        sw.table.gc(u64::MAX);
    }

    #[test]
    fn framing_matches_vde_switch() {
        let mut sw = Switch::new(32, false, 128);
        assert_eq!(
            run(&mut sw, "port/print 40\n"),
            "0000 DATA END WITH '.'\n.\n1022 Invalid argument\n"
        );
        assert_eq!(
            run(&mut sw, "port/showinfo"),
            "0000 DATA END WITH '.'\nNumports=32\nHUB=false\ncounters=true\n.\n1000 Success\n"
        );
        assert_eq!(run(&mut sw, "vlan/create 10"), "1000 Success\n");
        assert_eq!(run(&mut sw, "vlan/create 10"), "1017 File exists\n");
        assert_eq!(run(&mut sw, "bogus"), "1038 Function not implemented\n");
        assert_eq!(
            run(&mut sw, "hash/showinfo"),
            "0000 DATA END WITH '.'\nHash size 128\nGC interval 2 secs\nGC expire 100 secs\nMin persistence 3 secs\nEntries 0 max 8192 per port 1024\nRefused learnings 0\n.\n1000 Success\n"
        );
        assert_eq!(
            run(&mut sw, "vlan/print"),
            "0000 DATA END WITH '.'\nVLAN 0000\nVLAN 0010\n.\n1000 Success\n"
        );
        assert_eq!(run(&mut sw, "port/create 4"), "1000 Success\n");
        assert_eq!(
            run(&mut sw, "port/allprint 4"),
            "0000 DATA END WITH '.'\nPort 0004 untagged_vlan=0000 INACTIVE - NOT Unnamed Allocatable\n Current User: NONE Access Control: (User: NONE - Group: NONE)\n IN:  pkts          0          bytes                    0\n OUT: pkts          0          bytes                    0\n.\n1000 Success\n"
        );
        assert_eq!(
            run(&mut sw, "vlan/allprint"),
            "0000 DATA END WITH '.'\nVLAN 0000\n -- Port 0004 tagged=0 active=0 status=Learning\nVLAN 0010\n.\n1000 Success\n"
        );
        assert!(run(&mut sw, "help")
            .contains("port/setvlan       N VLAN          set port VLAN (untagged)\n"));
        // Empty line / comment: no status at all (the daemon just prompts again).
        assert_eq!(
            execute(&mut sw, &ctx(&|_| Ok(String::new())), "# hi").errno,
            -1
        );
    }

    #[test]
    fn vlan_and_port_commands() {
        let mut sw = Switch::new(8, false, 128);
        assert_eq!(
            run(&mut sw, "port/setvlan 4 10"),
            "1006 No such device or address\n"
        );
        run(&mut sw, "vlan/create 10");
        assert_eq!(
            run(&mut sw, "port/setvlan 4 10"),
            "1006 No such device or address\n"
        );
        run(&mut sw, "port/create 4");
        assert_eq!(run(&mut sw, "port/setvlan 4 10"), "1000 Success\n");
        assert_eq!(sw.port(4).unwrap().untagged, 10);
        assert_eq!(
            run(&mut sw, "vlan/addport 20 4"),
            "1006 No such device or address\n"
        );
        assert_eq!(run(&mut sw, "vlan/create 4094"), "1000 Success\n");
        assert_eq!(run(&mut sw, "vlan/create 4095"), "1022 Invalid argument\n");
        assert_eq!(run(&mut sw, "vlan/addport 4094 4"), "1000 Success\n");
        assert!(sw.port(4).unwrap().tagged.contains(4094));
        assert_eq!(
            run(&mut sw, "vlan/remove 10"),
            "1098 Address already in use\n"
        );
        assert_eq!(run(&mut sw, "vlan/remove 0"), "1022 Invalid argument\n");
        assert_eq!(
            run(&mut sw, "vlan/delport 10 4"),
            "1098 Address already in use\n"
        );
        assert_eq!(run(&mut sw, "vlan/delport 4094 4"), "1000 Success\n");
        assert_eq!(run(&mut sw, "port/setvlan 0x4 4095"), "1000 Success\n");
        assert_eq!(run(&mut sw, "port/create 9"), "1022 Invalid argument\n");
        assert_eq!(
            run(&mut sw, "port/createauto"),
            "0000 DATA END WITH '.'\nPort 0001\n.\n1000 Success\n"
        );
        // A port with a client cannot be removed; endpoints are listed.
        let ep = EndpointInfo {
            id: 8,
            module: "unix prog".into(),
            descr: "QEMU user=root pid=1".into(),
        };
        sw.alloc(PortRequest::Port(4), Some(0), &[], ep).unwrap();
        assert_eq!(
            run(&mut sw, "port/remove 4"),
            "1098 Address already in use\n"
        );
        assert!(run(&mut sw, "port/print 4")
            .contains("  -- endpoint ID 0008 module unix prog   : QEMU user=root pid=1\n"));
        assert!(run(&mut sw, "port/print 4").contains("Current User: root"));
        let no = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(
            execute(&mut sw, &ctx(&no), "port/epclose 4 8").actions,
            vec![Action::EpClose { port: 4, id: 8 }]
        );
        assert_eq!(
            run(&mut sw, "port/epclose 4 9"),
            "1006 No such device or address\n"
        );
        assert_eq!(
            execute(&mut sw, &ctx(&no), "shutdown").actions,
            vec![Action::Shutdown]
        );
        assert_eq!(
            run(&mut sw, "port/impair 4 out delay 10+2"),
            "1000 Success\n"
        );
        assert_eq!(sw.port(4).unwrap().impair_out.delay_ms, 10.0);
        assert_eq!(
            run(&mut sw, "port/impair 4 sideways loss 1"),
            "1022 Invalid argument\n"
        );
        let j = run(&mut sw, "json port/print 4");
        let doc: serde_json::Value = serde_json::from_str(j.lines().nth(1).unwrap()).unwrap();
        assert_eq!(doc["ports"][0]["untagged_vlan"], serde_json::Value::Null);
        assert_eq!(doc["ports"][0]["endpoints"][0]["id"], 8);
    }

    #[test]
    fn load_echoes_and_runs() {
        let mut sw = Switch::new(8, false, 128);
        let read = |p: &str| {
            assert_eq!(p, "/x.rc");
            Ok("# comment\nvlan/create 7\nbogus\n".to_string())
        };
        let r = execute(&mut sw, &ctx(&read), "load /x.rc");
        let mut s = String::new();
        r.render(&mut s);
        assert_eq!(
            s,
            "vde[/x.rc]: # comment\nvde[/x.rc]: vlan/create 7\n1000 Success\nvde[/x.rc]: bogus\n1038 Function not implemented\n1000 Success\n"
        );
        assert!(sw.vlans.contains(7));
        assert_eq!(
            run(&mut sw, "load /nope"),
            "1002 No such file or directory\n"
        );
    }

    #[test]
    fn nested_loads_have_a_total_budget_besides_their_depth() {
        let mut sw = Switch::new(8, false, 128);
        let reads = std::cell::Cell::new(0u32);
        // Each level loads itself four times: 4^8 loads deep down without a budget.
        let read = |_: &str| {
            reads.set(reads.get() + 1);
            Ok("load /x.rc\n".repeat(4))
        };
        let r = execute(&mut sw, &ctx(&read), "load /x.rc");
        assert!(reads.get() <= LOAD_BUDGET, "{} loads", reads.get());
        assert_eq!(r.errno, libc::E2BIG);
        // The next line has its own budget.
        assert_eq!(run(&mut sw, "vlan/create 9"), "1000 Success\n");
    }

    #[test]
    fn fuzz_console_on_samples() {
        fuzz_console(b"");
        fuzz_console(b"vlan/create 10\nport/setvlan 1 10\nport/sethub 1\nport/setnumports 2\0\x01\x00\x0e\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x00");
        fuzz_console(b"port/remove 3\nhash/setsize 0\nload x\nport/capture 1 /dev/null\0\x02\x00\x12\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x81\x00\x00\x0a\x08\x00");
        fuzz_console(
            b"json port/print\njson hash/print\nport/impair 1 both delay 1+1\n\0\x03\xff\xff",
        );
    }

    #[test]
    fn command_prefix_rules() {
        assert_eq!(
            parse_command_line("  port/printfoo\n"),
            Some(("port/print", "foo"))
        );
        assert_eq!(
            parse_command_line("port/allprint 3"),
            Some(("port/allprint", "3"))
        );
        assert_eq!(parse_command_line("port"), None);
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("x"), None);
    }
}
