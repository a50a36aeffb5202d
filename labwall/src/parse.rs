//! Front end: lines, comments, continuations, variables, backticks, IF/ELSE/ENDIF, INCLUDE
//! (the preprocessor), then one statement per line (the parser). Pure: file access goes through
//! [`Loader`], the host name and command execution through [`PreOptions`].

use crate::diag::{Diagnostic, Loc};
use crate::net::{parse_mask, Net};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// A token after expansion: text plus the column of the source token it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub col: u32,
    pub width: u32,
}

/// One logical source line (continuations joined), expanded and tokenised.
#[derive(Clone, Debug)]
pub struct Line {
    pub loc: Loc,
    pub src: String,
    pub toks: Vec<Tok>,
    /// An expansion on this line failed (already reported): later stages stay quiet about it.
    pub tainted: bool,
}

impl Line {
    pub fn loc_of(&self, t: &Tok) -> Loc {
        self.loc.at(t.col)
    }
    pub fn diag_at(&self, t: &Tok, msg: impl Into<String>) -> Diagnostic {
        let mut d = Diagnostic::error(self.loc_of(t), msg).width(t.width as usize);
        d.source_line = Some(self.src.clone());
        d
    }
    pub fn diag_end(&self, msg: impl Into<String>) -> Diagnostic {
        let col = self.src.trim_end().chars().count() as u32 + 1;
        let mut d = Diagnostic::error(self.loc.at(col), msg);
        d.source_line = Some(self.src.clone());
        d
    }
}

/// Reads included files. The CLI reads the file system; tests and the fuzzer use a map.
pub trait Loader {
    fn load(&self, path: &Path) -> Result<String, String>;
}

pub struct FsLoader;
impl Loader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Loader over an in-memory map (tests, fuzzing).
pub struct MapLoader(pub HashMap<PathBuf, String>);
impl Loader for MapLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| format!("cannot read {}: not found", path.display()))
    }
}

/// Inputs of the preprocessor that come from outside the file.
#[derive(Clone, Debug, Default)]
pub struct PreOptions {
    /// `-D NAME=VALUE`, ROLE included. They win over assignments in the file (like make).
    pub defines: Vec<(String, String)>,
    /// Allow backticks other than `hostname` (runs `sh -c`).
    pub allow_exec: bool,
    /// gethostname() of the machine running the compiler, used by `hostname` when no
    /// `-D HOSTNAME=` / `SET HOSTNAME=` is given.
    pub system_hostname: Option<String>,
}

pub struct Pre<'a> {
    loader: &'a dyn Loader,
    opts: &'a PreOptions,
    vars: HashMap<String, String>,
    defined_by_cli: Vec<String>,
    hostname: Option<String>,
    pub lines: Vec<Line>,
    pub diags: Vec<Diagnostic>,
    stack: Vec<PathBuf>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

pub fn preprocess(
    loader: &dyn Loader,
    path: &Path,
    text: &str,
    opts: &PreOptions,
) -> (Vec<Line>, Vec<Diagnostic>) {
    let mut p = Pre {
        loader,
        opts,
        vars: HashMap::new(),
        defined_by_cli: Vec::new(),
        hostname: None,
        lines: Vec::new(),
        diags: Vec::new(),
        stack: Vec::new(),
    };
    for (k, v) in &opts.defines {
        p.vars.insert(k.clone(), v.clone());
        p.defined_by_cli.push(k.clone());
        if k == "HOSTNAME" {
            p.hostname = Some(v.clone());
        }
    }
    p.file(path, text);
    (p.lines, p.diags)
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Split a raw line into tokens (whitespace separated; "..." and `...` kept whole) and drop
/// the comment. Returns (text, col, width) triples with unexpanded text.
fn raw_tokens(line: &str) -> Result<Vec<Tok>, (u32, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let start = i;
        let mut text = String::new();
        while i < chars.len() && !chars[i].is_whitespace() {
            let c = chars[i];
            if c == '#' && !text.is_empty() && chars[i - 1].is_whitespace() {
                break;
            }
            if c == '"' || c == '`' {
                let open = i;
                text.push(c);
                i += 1;
                while i < chars.len() && chars[i] != c {
                    text.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    let what = if c == '"' { "quote" } else { "backtick" };
                    return Err((open as u32 + 1, format!("unterminated {what}")));
                }
                text.push(c);
                i += 1;
                continue;
            }
            text.push(c);
            i += 1;
        }
        out.push(Tok {
            text,
            col: start as u32 + 1,
            width: (i - start) as u32,
        });
    }
    Ok(out)
}

impl Pre<'_> {
    fn file(&mut self, path: &Path, text: &str) {
        let fname = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.stack.push(path.to_path_buf());
        let mut cond: Vec<(bool, bool, Loc)> = Vec::new(); // (this branch active, else seen, IF loc)
        let raw: Vec<&str> = text.split('\n').collect();
        let mut i = 0;
        while i < raw.len() {
            let first = i;
            let mut joined = raw[i].trim_end_matches('\r').to_string();
            while joined.ends_with('\\') && i + 1 < raw.len() {
                joined.pop();
                joined.push(' ');
                i += 1;
                joined.push_str(raw[i].trim_end_matches('\r'));
            }
            i += 1;
            let loc = Loc {
                file: fname.clone(),
                line: first as u32 + 1,
                col: 1,
            };
            let toks = match raw_tokens(&joined) {
                Ok(t) => t,
                Err((col, msg)) => {
                    let mut d = Diagnostic::error(loc.at(col), msg)
                        .fix("close it on the same line (use a trailing \\ to continue a line)");
                    d.source_line = Some(joined.clone());
                    self.diags.push(d);
                    continue;
                }
            };
            if toks.is_empty() {
                continue;
            }
            let active = cond.iter().all(|c| c.0);
            let line0 = Line {
                loc: loc.clone(),
                src: joined.clone(),
                toks: Vec::new(),
                tainted: false,
            };
            match toks[0].text.as_str() {
                "IF" => {
                    let v = if active {
                        self.eval_if(&line0, &toks)
                    } else {
                        false
                    };
                    cond.push((v, false, loc));
                    continue;
                }
                "ELSE" => {
                    match cond.last_mut() {
                        Some(c) if !c.1 => {
                            c.1 = true;
                            c.0 = !c.0;
                        }
                        Some(_) => self.diags.push(
                            line0
                                .diag_at(&toks[0], "second ELSE for the same IF")
                                .fix("remove one ELSE"),
                        ),
                        None => self.diags.push(
                            line0
                                .diag_at(&toks[0], "ELSE without IF")
                                .fix("add an IF line before it"),
                        ),
                    }
                    // An ELSE in an inactive outer block stays inactive: handled by `all` above,
                    // but the branch flag must not enable a block whose IF was skipped.
                    if let Some(pos) = cond.len().checked_sub(1) {
                        if !cond[..pos].iter().all(|c| c.0) {
                            cond[pos].0 = false;
                        }
                    }
                    continue;
                }
                "ENDIF" => {
                    if cond.pop().is_none() {
                        self.diags.push(
                            line0
                                .diag_at(&toks[0], "ENDIF without IF")
                                .fix("remove it or add the IF"),
                        );
                    }
                    continue;
                }
                _ => {}
            }
            if !active {
                continue;
            }
            // NAME=value assignment
            if let Some((name, value)) = toks[0].text.split_once('=') {
                if is_name(name) && toks.len() == 1 {
                    let tok = Tok {
                        text: value.to_string(),
                        col: toks[0].col + name.len() as u32 + 1,
                        width: value.len() as u32,
                    };
                    if let Some(v) = self.expand(&line0, &tok) {
                        if !self.defined_by_cli.iter().any(|d| d == name) {
                            self.vars.insert(name.to_string(), v);
                        }
                    }
                    continue;
                }
                if is_name(name) && toks.len() > 1 {
                    self.diags.push(
                        line0
                            .diag_at(&toks[1], "unexpected text after a variable assignment")
                            .expected("NAME=value with no spaces")
                            .fix(format!("quote the value: {name}=\"...\"")),
                    );
                    continue;
                }
            }
            // expand every token, splitting expansions on whitespace
            let mut out = Vec::new();
            let mut ok = true;
            for t in &toks {
                match self.expand(&line0, t) {
                    Some(v) => {
                        let quoted = t.text.starts_with('"');
                        if quoted {
                            out.push(Tok {
                                text: v,
                                col: t.col,
                                width: t.width,
                            });
                        } else {
                            for part in v.split_whitespace() {
                                out.push(Tok {
                                    text: part.to_string(),
                                    col: t.col,
                                    width: t.width,
                                });
                            }
                        }
                    }
                    None => {
                        ok = false;
                        out.push(Tok {
                            text: "_".into(),
                            col: t.col,
                            width: t.width,
                        });
                    }
                }
            }
            if out.is_empty() {
                continue;
            }
            if out[0].text == "SET" {
                if let Some(t) = out.get(1) {
                    if let Some(h) = t.text.strip_prefix("HOSTNAME=") {
                        if !self.defined_by_cli.iter().any(|d| d == "HOSTNAME") {
                            self.hostname = Some(h.to_string());
                        }
                    }
                }
            }
            if out[0].text == "INCLUDE" {
                if ok {
                    self.include(&Line {
                        loc,
                        src: joined,
                        toks: out,
                        tainted: false,
                    });
                }
                continue;
            }
            self.lines.push(Line {
                loc,
                src: joined,
                toks: out,
                tainted: !ok,
            });
        }
        for (_, _, l) in cond {
            self.diags.push(
                Diagnostic::error(l, "IF without ENDIF").fix("add ENDIF at the end of the block"),
            );
        }
        self.stack.pop();
    }

    fn include(&mut self, line: &Line) {
        if line.toks.len() != 2 {
            self.diags.push(
                line.diag_at(&line.toks[0], "INCLUDE takes one file name")
                    .expected("INCLUDE <file>"),
            );
            return;
        }
        let cur = self.stack.last().cloned().unwrap_or_default();
        let p = Path::new(&line.toks[1].text);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cur.parent().unwrap_or(Path::new("")).join(p)
        };
        if self.stack.len() >= MAX_INCLUDE_DEPTH || self.stack.contains(&path) {
            self.diags.push(
                line.diag_at(
                    &line.toks[1],
                    format!(
                        "INCLUDE loop or depth over {MAX_INCLUDE_DEPTH}: {}",
                        path.display()
                    ),
                )
                .fix("remove the recursive INCLUDE"),
            );
            return;
        }
        match self.loader.load(&path) {
            Ok(text) => self.file(&path, &text),
            Err(e) => self.diags.push(
                line.diag_at(&line.toks[1], e)
                    .fix("check the path (relative to the including file)"),
            ),
        }
    }

    fn eval_if(&mut self, line: &Line, toks: &[Tok]) -> bool {
        let mut v = Vec::new();
        for t in &toks[1..] {
            match self.expand(line, t) {
                Some(x) => v.push(x),
                None => return false,
            }
        }
        match v.len() {
            1 => {
                !(v[0].is_empty()
                    || v[0] == "0"
                    || v[0].eq_ignore_ascii_case("no")
                    || v[0].eq_ignore_ascii_case("false"))
            }
            3 if v[1] == "==" => v[0] == v[2],
            3 if v[1] == "!=" => v[0] != v[2],
            _ => {
                self.diags.push(
                    line.diag_at(&toks[0], "cannot read this IF condition")
                        .expected("IF <value> | IF <a> == <b> | IF <a> != <b>")
                        .fix("e.g. IF $ROLE == MASTER"),
                );
                false
            }
        }
    }

    /// Expand `$NAME`, `${NAME}`, `${NAME:-default}`, backticks and strip double quotes.
    fn expand(&mut self, line: &Line, t: &Tok) -> Option<String> {
        let chars: Vec<char> = t.text.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut ok = true;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '"' => i += 1,
                '`' => {
                    let start = i;
                    let mut j = i + 1;
                    while j < chars.len() && chars[j] != '`' {
                        j += 1;
                    }
                    let cmd: String = chars[i + 1..j.min(chars.len())].iter().collect();
                    let col = t.col + start as u32;
                    let tokw = (j + 1 - start) as u32;
                    let at = Tok {
                        text: String::new(),
                        col,
                        width: tokw,
                    };
                    if cmd.trim() == "hostname" {
                        match self
                            .hostname
                            .clone()
                            .or_else(|| self.opts.system_hostname.clone())
                        {
                            Some(h) => out.push_str(&h),
                            None => {
                                self.diags.push(
                                    line.diag_at(&at, "cannot determine the host name")
                                        .fix("pass -D HOSTNAME=<name>"),
                                );
                                ok = false;
                            }
                        }
                    } else if self.opts.allow_exec {
                        match std::process::Command::new("sh")
                            .arg("-c")
                            .arg(&cmd)
                            .output()
                        {
                            Ok(o) if o.status.success() => {
                                out.push_str(String::from_utf8_lossy(&o.stdout).trim())
                            }
                            Ok(o) => {
                                self.diags.push(line.diag_at(
                                    &at,
                                    format!(
                                        "command `{cmd}` failed ({}): {}",
                                        o.status,
                                        String::from_utf8_lossy(&o.stderr).trim()
                                    ),
                                ));
                                ok = false;
                            }
                            Err(e) => {
                                self.diags
                                    .push(line.diag_at(&at, format!("cannot run `{cmd}`: {e}")));
                                ok = false;
                            }
                        }
                    } else {
                        self.diags.push(
                            line.diag_at(&at, format!("backtick command `{cmd}` is not allowed"))
                                .expected("`hostname` (built in, no shell) or a literal value")
                                .fix("pass --allow-exec to run it, or replace it with a variable set by -D NAME=VALUE"),
                        );
                        ok = false;
                    }
                    i = j + 1;
                }
                '$' => {
                    let start = i;
                    let (name, default, end) = if chars.get(i + 1) == Some(&'{') {
                        let mut j = i + 2;
                        while j < chars.len() && chars[j] != '}' {
                            j += 1;
                        }
                        let inner: String = chars[i + 2..j.min(chars.len())].iter().collect();
                        if j >= chars.len() {
                            self.diags.push(
                                line.diag_at(
                                    &Tok {
                                        text: String::new(),
                                        col: t.col + start as u32,
                                        width: 2,
                                    },
                                    "unterminated ${",
                                )
                                .fix("close it with }"),
                            );
                            return None;
                        }
                        match inner.split_once(":-") {
                            Some((n, d)) => (n.to_string(), Some(d.to_string()), j + 1),
                            None => (inner, None, j + 1),
                        }
                    } else {
                        let mut j = i + 1;
                        while j < chars.len()
                            && (chars[j].is_ascii_alphanumeric() || chars[j] == '_')
                        {
                            j += 1;
                        }
                        (chars[i + 1..j].iter().collect::<String>(), None, j)
                    };
                    let at = Tok {
                        text: String::new(),
                        col: t.col + start as u32,
                        width: (end - start) as u32,
                    };
                    if !is_name(&name) {
                        self.diags.push(
                            line.diag_at(&at, "expected a variable name after $")
                                .expected("$NAME, ${NAME} or ${NAME:-default}"),
                        );
                        ok = false;
                    } else if let Some(v) = self.vars.get(&name) {
                        out.push_str(&v.clone());
                    } else if let Some(d) = default {
                        out.push_str(&d);
                    } else {
                        self.diags.push(
                            line.diag_at(&at, format!("undefined variable ${name}"))
                                .fix(format!("define it before line {} with {name}=<value>, or pass -D {name}=<value>", line.loc.line)),
                        );
                        ok = false;
                    }
                    i = end;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        ok.then_some(out)
    }
}

// ------------------------------------------------------------------------------------------
// Statements

/// `master-backup-vip-vrid[*]` (IPv4, VLAN/DEV lines) or `master-backup-vip` (ADDR6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VSpec {
    pub master: IpAddr,
    pub backup: IpAddr,
    pub vip: IpAddr,
    pub vrid: Option<u32>,
    pub star: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrSpec {
    Plain(IpAddr),
    V(VSpec),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    All,
    Fw,
    Zone(Tok),
    ZoneAlias(Tok, Tok),
    ZoneNet(Tok, Net),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum RuleAction {
    Allow,
    Deny,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PolicyAction {
    Accept,
    Drop,
    Reject,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub n: u32,
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcItem {
    Ports { proto: String, lo: u16, hi: u16 },
    Proto(u8),
    Ping,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NatOn {
    Vip,
    Ip(IpAddr),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    NetInit {
        devs: Vec<Tok>,
    },
    Vlan {
        vid: u16,
        dev: Tok,
        net: Ipv4Addr,
        addr: AddrSpec,
        addr_tok: Tok,
        mask: u8,
        bcast: Option<Ipv4Addr>,
        bcast_tok: Option<Tok>,
        name: Option<Tok>,
    },
    Dev {
        name: Tok,
        dev: Tok,
        net: Ipv4Addr,
        gw: Option<Ipv4Addr>,
        gw_tok: Tok,
        mask: u8,
        addr: Option<AddrSpec>,
        addr_tok: Option<Tok>,
        bcast: Option<Ipv4Addr>,
        bcast_tok: Option<Tok>,
    },
    Set {
        name: Tok,
        value: String,
    },
    VrrpAuth {
        kind: String,
        secret: Tok,
        router_id: String,
        smtp: Option<IpAddr>,
        email: Option<String>,
        advert: u32,
    },
    VrrpGroup {
        name: Tok,
    },
    Addr6 {
        name: Tok,
        prefix: Net,
        addr: AddrSpec,
        addr_tok: Tok,
        gw: Option<Ipv6Addr>,
    },
    Zone {
        zone: Tok,
        names: Vec<Tok>,
    },
    Alias {
        host: bool,
        alias: Tok,
        nets: Vec<(Net, Tok)>,
    },
    Service {
        name: Tok,
        items: Vec<SvcItem>,
    },
    Rule {
        action: RuleAction,
        src: Endpoint,
        dst: Endpoint,
        services: Vec<Tok>,
        log: bool,
        limit: Option<Rate>,
    },
    Policy {
        src: Tok,
        dst: Tok,
        action: PolicyAction,
        log: bool,
    },
    Snat {
        name: Tok,
        to: NatOn,
    },
    Masq {
        name: Tok,
    },
    Dnat {
        name: Tok,
        on: NatOn,
        service: Tok,
        to: Tok,
        port: Option<u16>,
    },
    Antispoof(String),
    Noroute(Vec<Tok>),
    Log {
        prefix: Option<String>,
        level: Option<String>,
        rate: Option<Rate>,
        nflog: Option<u16>,
    },
    Counters(bool),
    Sync {
        dev: Tok,
        master: IpAddr,
        backup: IpAddr,
    },
}

#[derive(Clone, Debug)]
pub struct Parsed {
    pub line: Line,
    pub stmt: Stmt,
}

pub const KEYWORDS: &[&str] = &[
    "NETINIT",
    "VLAN",
    "DEV",
    "SET",
    "VRRP",
    "ADDR6",
    "ZONE",
    "HOST",
    "NET",
    "SERVICE",
    "ALLOW",
    "DENY",
    "REJECT",
    "POLICY",
    "NAT",
    "ANTISPOOF",
    "NOROUTE",
    "LOG",
    "COUNTERS",
    "INCLUDE",
    "IF",
    "ELSE",
    "ENDIF",
    "SYNC",
];

struct P<'a> {
    l: &'a Line,
    diags: &'a mut Vec<Diagnostic>,
}

impl P<'_> {
    fn tok(&mut self, i: usize, what: &str, form: &str) -> Option<Tok> {
        match self.l.toks.get(i) {
            Some(t) => Some(t.clone()),
            None => {
                self.diags.push(
                    self.l
                        .diag_end(format!("missing {what}"))
                        .expected(form.to_string()),
                );
                None
            }
        }
    }
    fn err(&mut self, t: &Tok, msg: impl Into<String>, expected: &str, fix: &str) {
        let mut d = self.l.diag_at(t, msg).expected(expected.to_string());
        if !fix.is_empty() {
            d = d.fix(fix.to_string());
        }
        self.diags.push(d);
    }
    fn ip4(&mut self, i: usize, what: &str, form: &str) -> Option<(Ipv4Addr, Tok)> {
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
    fn mask(&mut self, i: usize, form: &str) -> Option<u8> {
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
    fn too_many(&mut self, n: usize, form: &str) {
        if let Some(t) = self.l.toks.get(n) {
            let t = t.clone();
            self.err(
                &t,
                format!("unexpected `{}`", t.text),
                form,
                "remove the extra words or comment them out with #",
            );
        }
    }
    fn addr_spec(&mut self, t: &Tok, v4: bool, want_vrid: bool) -> Option<AddrSpec> {
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
        Some(AddrSpec::V(VSpec {
            master: ips[0].unwrap(),
            backup: ips[1].unwrap(),
            vip: ips[2].unwrap(),
            vrid,
            star,
        }))
    }
    fn rate(&mut self, t: &Tok) -> Option<Rate> {
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
    fn endpoint(&mut self, t: &Tok) -> Option<Endpoint> {
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
        let zt = Tok {
            text: z.to_string(),
            col: t.col,
            width: z.len() as u32,
        };
        match rest {
            None => Some(Endpoint::Zone(zt)),
            Some(r) => {
                let rt = Tok {
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

pub fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 24
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}

/// Parse the preprocessed lines into statements. Bad lines produce diagnostics and are skipped.
pub fn parse_lines(lines: &[Line], diags: &mut Vec<Diagnostic>) -> Vec<Parsed> {
    let mut out = Vec::new();
    for l in lines {
        let mut scratch = Vec::new();
        let sink = if l.tainted { &mut scratch } else { &mut *diags };
        let mut p = P { l, diags: sink };
        if let Some(stmt) = parse_stmt(&mut p) {
            out.push(Parsed {
                line: l.clone(),
                stmt,
            });
        }
    }
    out
}

fn parse_stmt(p: &mut P) -> Option<Stmt> {
    let l = p.l;
    let kw = l.toks[0].clone();
    let t = |i: usize| l.toks.get(i).map(|t| t.text.as_str());
    match kw.text.as_str() {
        "NETINIT" => {
            const F: &str = "NETINIT <extdev> <intdev> [<dev>...]";
            if l.toks.len() < 2 {
                p.tok(1, "uplink device", F);
                return None;
            }
            let devs = l.toks[1..].to_vec();
            for d in &devs {
                if !valid_ifname(&d.text) {
                    p.err(
                        d,
                        format!("`{}` is not an interface name", d.text),
                        "a Linux interface name (max 15 chars)",
                        "",
                    );
                    return None;
                }
            }
            Some(Stmt::NetInit { devs })
        }
        "VLAN" => {
            const F: &str = "VLAN <vid> <dev> <network> <gw|master-backup-vip-vrid[*]> <netmask|/len> [<broadcast>|-] [<Name>]";
            let vt = p.tok(1, "VLAN id", F)?;
            let vid = match vt.text.parse::<u16>() {
                Ok(v) if (1..=4094).contains(&v) => v,
                _ => {
                    p.err(
                        &vt,
                        format!("`{}` is not a VLAN id", vt.text),
                        "a number between 1 and 4094",
                        "",
                    );
                    return None;
                }
            };
            let dev = p.tok(2, "parent device", F)?;
            if !valid_ifname(&dev.text) {
                p.err(
                    &dev,
                    format!("`{}` is not an interface name", dev.text),
                    "a Linux interface name",
                    "",
                );
                return None;
            }
            let (net, _) = p.ip4(3, "network", F)?;
            let addr_tok = p.tok(4, "router address or master-backup-vip-vrid[*]", F)?;
            let addr = p.addr_spec(&addr_tok, true, true);
            let mask = p.mask(5, F);
            let (bcast, bcast_tok) = match t(6) {
                None | Some("-") => (None, l.toks.get(6).cloned()),
                Some(_) => match p.ip4(6, "broadcast", F) {
                    Some((a, tk)) => (Some(a), Some(tk)),
                    None => return None,
                },
            };
            let name = l.toks.get(7).cloned();
            if let Some(n) = &name {
                if !valid_ident(&n.text) {
                    p.err(
                        n,
                        format!("`{}` is not a valid name", n.text),
                        "letters, digits or _, starting with a letter",
                        "",
                    );
                    return None;
                }
            }
            p.too_many(8, F);
            Some(Stmt::Vlan {
                vid,
                dev,
                net,
                addr: addr?,
                addr_tok,
                mask: mask?,
                bcast,
                bcast_tok,
                name,
            })
        }
        "DEV" => {
            const F: &str = "DEV <Name> <dev> <network> <gateway|-> <netmask|/len> [<addr|master-backup-vip-vrid[*]>] [<broadcast>|-]";
            let name = p.tok(1, "name", F)?;
            if !valid_ident(&name.text) {
                p.err(
                    &name,
                    format!("`{}` is not a valid name", name.text),
                    "letters, digits or _, starting with a letter",
                    "",
                );
                return None;
            }
            let dev = p.tok(2, "device", F)?;
            if !valid_ifname(&dev.text) {
                p.err(
                    &dev,
                    format!("`{}` is not an interface name", dev.text),
                    "a Linux interface name",
                    "",
                );
                return None;
            }
            let (net, _) = p.ip4(3, "network", F)?;
            let gw_tok = p.tok(4, "gateway", F)?;
            let gw = if gw_tok.text == "-" {
                None
            } else {
                match gw_tok.text.parse::<Ipv4Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        p.err(
                            &gw_tok,
                            format!("`{}` is not an IPv4 gateway", gw_tok.text),
                            "an IPv4 address or -",
                            "",
                        );
                        return None;
                    }
                }
            };
            let mask = p.mask(5, F)?;
            let (addr, addr_tok) = match l.toks.get(6) {
                None => (None, None),
                Some(tk) if tk.text == "-" => (None, Some(tk.clone())),
                Some(tk) => {
                    let tk = tk.clone();
                    (Some(p.addr_spec(&tk, true, true)?), Some(tk))
                }
            };
            let (bcast, bcast_tok) = match t(7) {
                None | Some("-") => (None, l.toks.get(7).cloned()),
                Some(_) => {
                    let (a, tk) = p.ip4(7, "broadcast", F)?;
                    (Some(a), Some(tk))
                }
            };
            p.too_many(8, F);
            Some(Stmt::Dev {
                name,
                dev,
                net,
                gw,
                gw_tok,
                mask,
                addr,
                addr_tok,
                bcast,
                bcast_tok,
            })
        }
        "SET" => {
            const F: &str = "SET ROLE=<MASTER|BACKUP> | SET HOSTNAME=<name>";
            let a = p.tok(1, "NAME=value", F)?;
            p.too_many(2, F);
            match a.text.split_once('=') {
                Some((n, v)) if n == "ROLE" || n == "HOSTNAME" => Some(Stmt::Set {
                    name: Tok {
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
        "VRRP" => match t(1) {
            Some("AUTH") => {
                const F: &str = "VRRP AUTH <PASS|AH|NONE> <secret> <router_id> <smtp_server> <email> [pooling|polling] <secs>";
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
            Some("START") => {
                const F: &str = "VRRP START GROUP <name>";
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
            _ => {
                let tk = p.tok(
                    1,
                    "AUTH or START",
                    "VRRP AUTH ... | VRRP START GROUP <name>",
                )?;
                p.err(
                    &tk,
                    format!("unknown VRRP statement `{}`", tk.text),
                    "VRRP AUTH ... | VRRP START GROUP <name>",
                    "",
                );
                None
            }
        },
        "ADDR6" => {
            const F: &str = "ADDR6 <Name> <prefix/len> <addr|master-backup-vip> [GW <ip6>]";
            let name = p.tok(1, "interface name", F)?;
            let pt = p.tok(2, "prefix", F)?;
            let prefix = match Net::parse(&pt.text) {
                Some(n) if !n.is_v4() && !n.is_host() => n,
                _ => {
                    p.err(
                        &pt,
                        format!("`{}` is not an IPv6 prefix", pt.text),
                        "an IPv6 prefix such as 2001:db8:1::/64",
                        "",
                    );
                    return None;
                }
            };
            let addr_tok = p.tok(3, "address", F)?;
            let addr = p.addr_spec(&addr_tok, false, false)?;
            let gw = match t(4) {
                None => None,
                Some("GW") => {
                    let g = p.tok(5, "IPv6 gateway", F)?;
                    match g.text.parse::<Ipv6Addr>() {
                        Ok(a) => Some(a),
                        Err(_) => {
                            p.err(
                                &g,
                                format!("`{}` is not an IPv6 address", g.text),
                                "an IPv6 gateway address",
                                "",
                            );
                            return None;
                        }
                    }
                }
                Some(_) => {
                    let tk = l.toks[4].clone();
                    p.err(&tk, format!("unexpected `{}`", tk.text), F, "");
                    return None;
                }
            };
            p.too_many(if gw.is_some() { 6 } else { 4 }, F);
            Some(Stmt::Addr6 {
                name,
                prefix,
                addr,
                addr_tok,
                gw,
            })
        }
        "ZONE" => {
            const F: &str = "ZONE <zone> <Name>...";
            let zone = p.tok(1, "zone name", F)?;
            if !valid_ident(&zone.text) || zone.text == "all" || zone.text == "fw" {
                p.err(
                    &zone,
                    format!("`{}` cannot be a zone name", zone.text),
                    "an identifier other than all/fw (max 24 chars)",
                    "",
                );
                return None;
            }
            p.tok(2, "at least one DEV/VLAN name", F)?;
            Some(Stmt::Zone {
                zone,
                names: l.toks[2..].to_vec(),
            })
        }
        "HOST" | "NET" => {
            let host = kw.text == "HOST";
            let f = if host {
                "HOST <alias> <ip>..."
            } else {
                "NET <alias> <cidr>..."
            };
            let alias = p.tok(1, "alias", f)?;
            if !valid_ident(&alias.text) || ["VIP", "fw", "all"].contains(&alias.text.as_str()) {
                p.err(
                    &alias,
                    format!("`{}` is not a valid alias", alias.text),
                    "letters, digits or _, starting with a letter",
                    "",
                );
                return None;
            }
            p.tok(2, "address", f)?;
            let mut nets = Vec::new();
            for a in &l.toks[2..] {
                match Net::parse(&a.text) {
                    Some(n) if !host || n.is_host() => nets.push((n, a.clone())),
                    _ => {
                        p.err(
                            a,
                            format!(
                                "`{}` is not {}",
                                a.text,
                                if host {
                                    "an IP address"
                                } else {
                                    "an IP prefix"
                                }
                            ),
                            f,
                            "",
                        );
                        return None;
                    }
                }
            }
            Some(Stmt::Alias { host, alias, nets })
        }
        "SERVICE" => {
            const F: &str = "SERVICE <name> <tcp|udp>/<port[-port]>... | proto/<num> | icmp/echo";
            let name = p.tok(1, "service name", F)?;
            if !valid_ident(&name.text) {
                p.err(
                    &name,
                    format!("`{}` is not a valid service name", name.text),
                    "letters, digits or _",
                    "",
                );
                return None;
            }
            p.tok(2, "protocol/port", F)?;
            let mut items = Vec::new();
            for a in &l.toks[2..] {
                match parse_svc_item(&a.text) {
                    Some(mut v) => items.append(&mut v),
                    None => {
                        p.err(
                            a,
                            format!("`{}` is not a protocol/port", a.text),
                            F,
                            "e.g. tcp/22, udp/1812,1813, tcp/8000-8080, proto/47",
                        );
                        return None;
                    }
                }
            }
            Some(Stmt::Service { name, items })
        }
        "ALLOW" | "DENY" | "REJECT" => {
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
        "POLICY" => {
            const F: &str = "POLICY <src-zone|all|fw> <dst-zone|all|fw> <ACCEPT|DROP|REJECT> [LOG]";
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
        "NAT" => {
            const F: &str = "NAT SNAT <Name> TO <ip|VIP> | NAT MASQ <Name> | NAT DNAT <Name>:<ip|VIP> <service> TO <alias|ip>[:port]";
            let k = p.tok(1, "SNAT, MASQ or DNAT", F)?;
            let nat_on = |p: &mut P, tk: &Tok| -> Option<NatOn> {
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
            };
            match k.text.as_str() {
                "SNAT" => {
                    let name = p.tok(2, "interface name", F)?;
                    let to_kw = p.tok(3, "TO", F)?;
                    if to_kw.text != "TO" {
                        p.err(&to_kw, "expected TO", F, "");
                        return None;
                    }
                    let to_t = p.tok(4, "address", F)?;
                    let to = nat_on(p, &to_t)?;
                    p.too_many(5, F);
                    Some(Stmt::Snat { name, to })
                }
                "MASQ" => {
                    let name = p.tok(2, "interface name", F)?;
                    p.too_many(3, F);
                    Some(Stmt::Masq { name })
                }
                "DNAT" => {
                    let on_t = p.tok(2, "<Name>:<ip|VIP>", F)?;
                    let Some((n, a)) = on_t.text.split_once(':') else {
                        p.err(
                            &on_t,
                            format!("`{}`: missing :<ip|VIP>", on_t.text),
                            "<Name>:<ip|VIP>, e.g. INTER:VIP",
                            "",
                        );
                        return None;
                    };
                    let name = Tok {
                        text: n.to_string(),
                        col: on_t.col,
                        width: n.len() as u32,
                    };
                    let at = Tok {
                        text: a.to_string(),
                        col: on_t.col + n.len() as u32 + 1,
                        width: a.len() as u32,
                    };
                    let on = nat_on(p, &at)?;
                    let service = p.tok(3, "service", F)?;
                    let to_kw = p.tok(4, "TO", F)?;
                    if to_kw.text != "TO" {
                        p.err(&to_kw, "expected TO", F, "");
                        return None;
                    }
                    let tt = p.tok(5, "target", F)?;
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
                    p.too_many(6, F);
                    let to = Tok {
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
                _ => {
                    p.err(&k, format!("unknown NAT kind `{}`", k.text), F, "");
                    None
                }
            }
        }
        "ANTISPOOF" => {
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
        "NOROUTE" => {
            const F: &str = "NOROUTE <zone> <zone>...";
            p.tok(2, "at least two zones", F)?;
            Some(Stmt::Noroute(l.toks[1..].to_vec()))
        }
        "LOG" => {
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
        "COUNTERS" => {
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
        "SYNC" => {
            const F: &str = "SYNC <dev> <master_ip>-<backup_ip>";
            let dev = p.tok(1, "device", F)?;
            let mb = p.tok(2, "master-backup", F)?;
            p.too_many(3, F);
            let parts: Vec<&str> = mb.text.split('-').collect();
            match (
                parts.len(),
                parts.first().and_then(|x| x.parse::<IpAddr>().ok()),
                parts.get(1).and_then(|x| x.parse::<IpAddr>().ok()),
            ) {
                (2, Some(m), Some(b)) => Some(Stmt::Sync {
                    dev,
                    master: m,
                    backup: b,
                }),
                _ => {
                    p.err(
                        &mb,
                        "not master-backup addresses",
                        "e.g. 192.168.255.1-192.168.255.2",
                        "",
                    );
                    None
                }
            }
        }
        other => {
            let up = other.to_ascii_uppercase();
            let fix = if KEYWORDS.contains(&up.as_str()) {
                format!("keywords are upper-case: write {up}")
            } else {
                "check the spelling; variables are assigned as NAME=value".to_string()
            };
            p.err(
                &kw,
                format!("unknown statement `{other}`"),
                &format!("one of {}", KEYWORDS.join(" ")),
                &fix,
            );
            None
        }
    }
}

/// `tcp/22`, `udp/1812,1813`, `tcp/8000-8080`, `proto/47`, `icmp/echo` (ping).
pub fn parse_svc_item(s: &str) -> Option<Vec<SvcItem>> {
    let (proto, rest) = s.split_once('/')?;
    match proto {
        "tcp" | "udp" => {
            let mut v = Vec::new();
            for part in rest.split(',') {
                let (lo, hi) = match part.split_once('-') {
                    Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
                    None => {
                        let x = part.parse::<u16>().ok()?;
                        (x, x)
                    }
                };
                if lo == 0 || hi < lo {
                    return None;
                }
                v.push(SvcItem::Ports {
                    proto: proto.to_string(),
                    lo,
                    hi,
                });
            }
            Some(v)
        }
        "proto" => {
            let n = rest.parse::<u8>().ok()?;
            Some(vec![SvcItem::Proto(n)])
        }
        "icmp" if rest == "echo" => Some(vec![SvcItem::Ping]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(text: &str, defs: &[(&str, &str)]) -> (Vec<Line>, Vec<Diagnostic>) {
        let o = PreOptions {
            defines: defs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            allow_exec: false,
            system_hostname: Some("sys".into()),
        };
        preprocess(&MapLoader(Default::default()), Path::new("t.lw"), text, &o)
    }

    #[test]
    fn tokens_quotes_comments_columns() {
        let t = raw_tokens("ALLOW  a \"b c\" `x y` # comment").unwrap();
        let v: Vec<(&str, u32)> = t.iter().map(|t| (t.text.as_str(), t.col)).collect();
        assert_eq!(
            v,
            vec![("ALLOW", 1), ("a", 8), ("\"b c\"", 10), ("`x y`", 16)]
        );
        assert!(raw_tokens("A \"open").is_err());
    }

    #[test]
    fn expansion_and_hostname() {
        let (l, d) = pre("A=x\nB=${A}y\nZ $B ${C:-d} `hostname`\n", &[]);
        assert!(d.is_empty(), "{d:?}");
        let v: Vec<&str> = l[0].toks.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(v, vec!["Z", "xy", "d", "sys"]);
        let (l, _) = pre("Z `hostname`\n", &[("HOSTNAME", "fw-a")]);
        assert_eq!(l[0].toks[1].text, "fw-a");
        let (_, d) = pre("Z $NOPE\n", &[]);
        assert_eq!((d[0].loc.line, d[0].loc.col), (1, 3));
    }

    #[test]
    fn nested_if_in_inactive_block_stays_inactive() {
        let (l, d) = pre(
            "IF a == b\nIF x == x\nP1\nELSE\nP2\nENDIF\nELSE\nP3\nENDIF\n",
            &[],
        );
        assert!(d.is_empty(), "{d:?}");
        let v: Vec<&str> = l.iter().map(|l| l.toks[0].text.as_str()).collect();
        assert_eq!(v, vec!["P3"]);
    }

    #[test]
    fn service_items() {
        assert_eq!(parse_svc_item("udp/1812,1813").unwrap().len(), 2);
        assert!(parse_svc_item("tcp/0").is_none());
        assert!(parse_svc_item("tcp/9-8").is_none());
        assert_eq!(
            parse_svc_item("proto/47").unwrap(),
            vec![SvcItem::Proto(47)]
        );
    }
}
