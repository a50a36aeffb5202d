//! The preprocessor: raw text -> expanded, tokenised logical [`Line`]s. It joins continuation
//! lines, drops comments, expands `$NAME`, `${NAME}`, `${NAME:-default}` and backticks, keeps
//! only the active branches of `IF`/`ELSE`/`ENDIF`, applies `NAME=value` assignments and follows
//! `INCLUDE`. The language is described in docs/labwall.md ("The language in one screen" and
//! "Decisions where the spec is silent").
//!
//! Pure text transformation: the two effects it needs come in from outside, file access through
//! [`Loader`] and backtick commands through [`Shell`] ([`SystemShell`] is the only code that runs
//! `sh -c`, and only with `--allow-exec`).

use crate::diag::{Diagnostic, Loc};
use crate::line::{Line, Token};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reads included files. The CLI reads the file system; tests and the fuzzer use a map.
pub trait Loader {
    fn load(&self, path: &Path) -> Result<String, String>;
}

/// Loader over the file system.
pub struct FsLoader;
impl Loader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// The files a site reads besides itself: every `INCLUDE` taken under `defines` (ROLE
/// included), in the order read, each once. Build manifests list them as inputs, so an edit of
/// an included users file makes the images that compiled it stale.
pub fn included_files(site: &Path, defines: &[(String, String)]) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(site) else {
        return Vec::new();
    };
    let rec = Recording(std::cell::RefCell::new(Vec::new()));
    let opts = PreOptions {
        defines: defines.to_vec(),
        allow_exec: false,
        system_hostname: Some("ramux".into()),
    };
    let _ = preprocess_with(&rec, &NoShell, site, &text, &opts);
    let mut seen = Vec::new();
    for p in rec.0.into_inner() {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// [`FsLoader`] that remembers what it read.
struct Recording(std::cell::RefCell<Vec<PathBuf>>);
impl Loader for Recording {
    fn load(&self, path: &Path) -> Result<String, String> {
        let r = FsLoader.load(path);
        if r.is_ok() {
            self.0.borrow_mut().push(path.to_path_buf());
        }
        r
    }
}

/// Runs nothing: listing a site's includes never executes its backticks.
struct NoShell;
impl Shell for NoShell {
    fn run(&self, _cmd: &str) -> Result<String, String> {
        Err("not run while listing includes".into())
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

/// Runs a backtick command (other than the built-in `hostname`) when `--allow-exec` is given.
/// Ok is the trimmed standard output; Err is the whole diagnostic message.
pub trait Shell {
    fn run(&self, cmd: &str) -> Result<String, String>;
}

/// The real shell: `sh -c CMD`.
pub struct SystemShell;
impl Shell for SystemShell {
    fn run(&self, cmd: &str) -> Result<String, String> {
        match std::process::Command::new("sh").arg("-c").arg(cmd).output() {
            Ok(o) if o.status.success() => {
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            }
            Ok(o) => Err(format!(
                "command `{cmd}` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run `{cmd}`: {e}")),
        }
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

const MAX_INCLUDE_DEPTH: usize = 16;
/// INCLUDEs taken in one run, all files together: depth alone lets a file that includes two
/// others at every level expand 2^16 times.
const MAX_INCLUDES: usize = 256;

/// The path without `.` components and with `a/..` folded, so `./x.lw`, `x.lw` and `d/../x.lw`
/// are one file for the loop check (lexical: the loader may not be the file system).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Preprocess `text` (the file at `path`); backtick commands go to [`SystemShell`].
pub fn preprocess(
    loader: &dyn Loader,
    path: &Path,
    text: &str,
    opts: &PreOptions,
) -> (Vec<Line>, Vec<Diagnostic>) {
    preprocess_with(loader, &SystemShell, path, text, opts)
}

/// [`preprocess`] with the shell given by the caller (tests use a fake one).
pub fn preprocess_with(
    loader: &dyn Loader,
    shell: &dyn Shell,
    path: &Path,
    text: &str,
    opts: &PreOptions,
) -> (Vec<Line>, Vec<Diagnostic>) {
    let mut p = Preprocessor {
        loader,
        shell,
        opts,
        vars: HashMap::new(),
        defined_by_cli: Vec::new(),
        hostname: None,
        lines: Vec::new(),
        diags: Vec::new(),
        stack: Vec::new(),
        included: 0,
    };
    for (k, v) in &opts.defines {
        p.vars.insert(k.clone(), v.clone());
        p.defined_by_cli.push(k.clone());
        if k == "HOSTNAME" {
            p.hostname = Some(v.clone());
        }
    }
    p.file(&normalize(path), text);
    (p.lines, p.diags)
}

/// State of one preprocessor run over a file and its includes.
struct Preprocessor<'a> {
    loader: &'a dyn Loader,
    shell: &'a dyn Shell,
    opts: &'a PreOptions,
    vars: HashMap<String, String>,
    defined_by_cli: Vec<String>,
    /// `-D HOSTNAME=`, else the last `SET HOSTNAME=` seen so far.
    hostname: Option<String>,
    lines: Vec<Line>,
    diags: Vec<Diagnostic>,
    /// Files being read (INCLUDE loop detection).
    stack: Vec<PathBuf>,
    /// INCLUDEs taken so far (bounded by [`MAX_INCLUDES`]).
    included: usize,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Logical lines of a file: (1-based number of the first physical line, text), a trailing `\`
/// joining the next line with one space, `\r` dropped.
pub fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let raw: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
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
        out.push((first as u32 + 1, joined));
    }
    out
}

/// Split a raw line into tokens (whitespace separated; "..." and `...` kept whole) and drop
/// the comment. Tokens keep their unexpanded text; Err is (column, message).
pub fn split_tokens(line: &str) -> Result<Vec<Token>, (u32, String)> {
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
        out.push(Token {
            text,
            col: start as u32 + 1,
            width: (i - start) as u32,
        });
    }
    Ok(out)
}

/// One open IF block.
#[derive(Clone, Debug)]
struct Branch {
    /// Lines of this branch are kept (the IF's condition, flipped by ELSE).
    active: bool,
    else_seen: bool,
    /// Where the IF is (for "IF without ENDIF").
    at: Loc,
}

/// The stack of open IF blocks of one file.
#[derive(Default)]
struct Conditionals(Vec<Branch>);

impl Conditionals {
    /// Every enclosing branch is active: the line is kept.
    fn active(&self) -> bool {
        self.0.iter().all(|c| c.active)
    }
    fn open(&mut self, active: bool, at: Loc) {
        self.0.push(Branch {
            active,
            else_seen: false,
            at,
        });
    }
    /// ELSE: flip the innermost branch. Err names the mistake (and its fix).
    fn flip(&mut self) -> Result<(), (&'static str, &'static str)> {
        let r = match self.0.last_mut() {
            Some(c) if !c.else_seen => {
                c.else_seen = true;
                c.active = !c.active;
                Ok(())
            }
            Some(_) => Err(("second ELSE for the same IF", "remove one ELSE")),
            None => Err(("ELSE without IF", "add an IF line before it")),
        };
        // The ELSE of a block inside an inactive block stays inactive (its IF was skipped, so
        // flipping its `false` must not enable it).
        if let Some(pos) = self.0.len().checked_sub(1) {
            if !self.0[..pos].iter().all(|c| c.active) {
                self.0[pos].active = false;
            }
        }
        r
    }
    /// ENDIF: false if there was no open IF.
    fn close(&mut self) -> bool {
        self.0.pop().is_some()
    }
}

impl Preprocessor<'_> {
    /// Preprocess one file (the top one or an INCLUDE): every logical line in order.
    fn file(&mut self, path: &Path, text: &str) {
        let fname = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.stack.push(path.to_path_buf());
        let mut cond = Conditionals::default();
        for (number, joined) in logical_lines(text) {
            let loc = Loc {
                file: fname.clone(),
                line: number,
                col: 1,
            };
            self.logical_line(loc, joined, &mut cond);
        }
        for b in cond.0 {
            self.diags.push(
                Diagnostic::error(b.at, "IF without ENDIF")
                    .fix("add ENDIF at the end of the block"),
            );
        }
        self.stack.pop();
    }

    /// One logical line: IF/ELSE/ENDIF, assignment, INCLUDE, or a statement for the parser.
    fn logical_line(&mut self, loc: Loc, joined: String, cond: &mut Conditionals) {
        let toks = match split_tokens(&joined) {
            Ok(t) => t,
            Err((col, msg)) => {
                let mut d = Diagnostic::error(loc.at(col), msg)
                    .fix("close it on the same line (use a trailing \\ to continue a line)");
                d.source_line = Some(joined);
                self.diags.push(d);
                return;
            }
        };
        if toks.is_empty() {
            return;
        }
        let active = cond.active();
        let line0 = Line {
            loc: loc.clone(),
            src: joined.clone(),
            toks: Vec::new(),
            tainted: false,
        };
        if self.conditional(&line0, &toks, active, cond) || !active {
            return;
        }
        if self.assignment(&line0, &toks) {
            return;
        }
        let (out, ok) = self.expand_tokens(&line0, &toks);
        if out.is_empty() {
            return;
        }
        self.note_set_hostname(&out);
        let line = Line {
            loc,
            src: joined,
            toks: out,
            tainted: !ok,
        };
        if line.toks[0].text == "INCLUDE" {
            if ok {
                self.include(&line);
            }
            return;
        }
        self.lines.push(line);
    }

    /// IF, ELSE and ENDIF lines (true: the line was one of them and is consumed).
    fn conditional(
        &mut self,
        line0: &Line,
        toks: &[Token],
        active: bool,
        cond: &mut Conditionals,
    ) -> bool {
        match toks[0].text.as_str() {
            "IF" => {
                let v = active && self.eval_if(line0, toks);
                cond.open(v, line0.loc.clone());
            }
            "ELSE" => {
                if let Err((msg, fix)) = cond.flip() {
                    self.diags.push(line0.diag_at(&toks[0], msg).fix(fix));
                }
            }
            "ENDIF" => {
                if !cond.close() {
                    self.diags.push(
                        line0
                            .diag_at(&toks[0], "ENDIF without IF")
                            .fix("remove it or add the IF"),
                    );
                }
            }
            _ => return false,
        }
        true
    }

    /// `NAME=value` (true: the line was an assignment, or a malformed one, and is consumed).
    /// A `-D NAME=` keeps its value.
    fn assignment(&mut self, line0: &Line, toks: &[Token]) -> bool {
        let Some((name, value)) = toks[0].text.split_once('=') else {
            return false;
        };
        if !is_name(name) {
            return false;
        }
        if toks.len() > 1 {
            self.diags.push(
                line0
                    .diag_at(&toks[1], "unexpected text after a variable assignment")
                    .expected("NAME=value with no spaces")
                    .fix(format!("quote the value: {name}=\"...\"")),
            );
            return true;
        }
        let tok = Token {
            text: value.to_string(),
            col: toks[0].col + name.len() as u32 + 1,
            width: value.len() as u32,
        };
        if let Some(v) = self.expand(line0, &tok) {
            if !self.defined_by_cli.iter().any(|d| d == name) {
                self.vars.insert(name.to_string(), v);
            }
        }
        true
    }

    /// Expand every token; an unquoted expansion splits on whitespace into several tokens, all
    /// with the source token's column. A failed expansion becomes `_` and makes `ok` false.
    fn expand_tokens(&mut self, line0: &Line, toks: &[Token]) -> (Vec<Token>, bool) {
        let mut out = Vec::new();
        let mut ok = true;
        for t in toks {
            let at = |text: &str| Token {
                text: text.to_string(),
                col: t.col,
                width: t.width,
            };
            match self.expand(line0, t) {
                Some(v) if t.text.starts_with('"') => out.push(at(&v)),
                Some(v) => out.extend(v.split_whitespace().map(at)),
                None => {
                    ok = false;
                    out.push(at("_"));
                }
            }
        }
        (out, ok)
    }

    /// `SET HOSTNAME=x` sets what `hostname` returns on later lines (unless -D HOSTNAME).
    fn note_set_hostname(&mut self, toks: &[Token]) {
        if toks[0].text != "SET" {
            return;
        }
        if let Some(h) = toks.get(1).and_then(|t| t.text.strip_prefix("HOSTNAME=")) {
            if !self.defined_by_cli.iter().any(|d| d == "HOSTNAME") {
                self.hostname = Some(h.to_string());
            }
        }
    }

    /// `INCLUDE <file>`, relative to the including file; refuses loops and deep nesting.
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
        let path = normalize(&if p.is_absolute() {
            p.to_path_buf()
        } else {
            cur.parent().unwrap_or(Path::new("")).join(p)
        });
        self.included += 1;
        if self.included > MAX_INCLUDES {
            let msg = format!(
                "more than {MAX_INCLUDES} INCLUDEs in one site: {}",
                path.display()
            );
            let fix = "include each file once (INCLUDE is not a loop)";
            self.diags.push(line.diag_at(&line.toks[1], msg).fix(fix));
            return;
        }
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

    /// `IF <v>` (false for empty, 0, no, false), `IF <a> == <b>`, `IF <a> != <b>`.
    fn eval_if(&mut self, line: &Line, toks: &[Token]) -> bool {
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
    /// None if anything failed (every failure is reported).
    fn expand(&mut self, line: &Line, t: &Token) -> Option<String> {
        let chars: Vec<char> = t.text.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut ok = true;
        while i < chars.len() {
            let c = chars[i];
            let piece = match c {
                '"' => {
                    i += 1;
                    continue;
                }
                '`' => self.backtick(line, t, &chars, &mut i),
                '$' => self.variable(line, t, &chars, &mut i)?,
                _ => {
                    out.push(c);
                    i += 1;
                    continue;
                }
            };
            match piece {
                Some(s) => out.push_str(&s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The backtick at `chars[*i]`: the built-in `hostname`, or a command run by the shell if
    /// allowed. Moves `*i` past the closing backtick; None if it failed (reported).
    fn backtick(
        &mut self,
        line: &Line,
        t: &Token,
        chars: &[char],
        i: &mut usize,
    ) -> Option<String> {
        let start = *i;
        let mut j = start + 1;
        while j < chars.len() && chars[j] != '`' {
            j += 1;
        }
        *i = j + 1;
        let cmd: String = chars[start + 1..j.min(chars.len())].iter().collect();
        let at = Token {
            text: String::new(),
            col: t.col + start as u32,
            width: (j + 1 - start) as u32,
        };
        let result = if cmd.trim() == "hostname" {
            self.hostname
                .clone()
                .or_else(|| self.opts.system_hostname.clone())
                .ok_or_else(|| {
                    line.diag_at(&at, "cannot determine the host name")
                        .fix("pass -D HOSTNAME=<name>")
                })
        } else if self.opts.allow_exec {
            self.shell.run(&cmd).map_err(|msg| line.diag_at(&at, msg))
        } else {
            Err(line
                .diag_at(&at, format!("backtick command `{cmd}` is not allowed"))
                .expected("`hostname` (built in, no shell) or a literal value")
                .fix("pass --allow-exec to run it, or replace it with a variable set by -D NAME=VALUE"))
        };
        result.map_err(|d| self.diags.push(d)).ok()
    }

    /// The `$` at `chars[*i]`: `$NAME`, `${NAME}` or `${NAME:-default}`. Moves `*i` past it.
    /// Some(None): failed (reported), the rest of the token is still expanded; None: an
    /// unterminated `${`, which ends the expansion of the whole token.
    fn variable(
        &mut self,
        line: &Line,
        t: &Token,
        chars: &[char],
        i: &mut usize,
    ) -> Option<Option<String>> {
        let start = *i;
        let (name, default, end) = if chars.get(start + 1) == Some(&'{') {
            let mut j = start + 2;
            while j < chars.len() && chars[j] != '}' {
                j += 1;
            }
            if j >= chars.len() {
                let at = Token {
                    text: String::new(),
                    col: t.col + start as u32,
                    width: 2,
                };
                self.diags
                    .push(line.diag_at(&at, "unterminated ${").fix("close it with }"));
                return None;
            }
            let inner: String = chars[start + 2..j].iter().collect();
            match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string()), j + 1),
                None => (inner, None, j + 1),
            }
        } else {
            let mut j = start + 1;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            (chars[start + 1..j].iter().collect::<String>(), None, j)
        };
        *i = end;
        let at = Token {
            text: String::new(),
            col: t.col + start as u32,
            width: (end - start) as u32,
        };
        if !is_name(&name) {
            self.diags.push(
                line.diag_at(&at, "expected a variable name after $")
                    .expected("$NAME, ${NAME} or ${NAME:-default}"),
            );
            return Some(None);
        }
        if let Some(v) = self.vars.get(&name) {
            return Some(Some(v.clone()));
        }
        if let Some(d) = default {
            return Some(Some(d));
        }
        self.diags.push(
            line.diag_at(&at, format!("undefined variable ${name}"))
                .fix(format!(
                    "define it before line {} with {name}=<value>, or pass -D {name}=<value>",
                    line.loc.line
                )),
        );
        Some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell that answers from a table and records nothing else: no process is started.
    struct FakeShell;
    impl Shell for FakeShell {
        fn run(&self, cmd: &str) -> Result<String, String> {
            match cmd {
                "echo hi" => Ok("hi".into()),
                "two words" => Ok("a b".into()),
                _ => Err(format!("command `{cmd}` failed (exit status: 1): nope")),
            }
        }
    }

    fn opts(defs: &[(&str, &str)], allow_exec: bool) -> PreOptions {
        PreOptions {
            defines: defs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            allow_exec,
            system_hostname: Some("sys".into()),
        }
    }

    fn pre_files(
        files: &[(&str, &str)],
        defs: &[(&str, &str)],
        allow_exec: bool,
    ) -> (Vec<Line>, Vec<Diagnostic>) {
        let map = files[1..]
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        let (path, text) = files[0];
        let o = opts(defs, allow_exec);
        preprocess_with(&MapLoader(map), &FakeShell, Path::new(path), text, &o)
    }

    fn pre(text: &str, defs: &[(&str, &str)]) -> (Vec<Line>, Vec<Diagnostic>) {
        pre_files(&[("t.lw", text)], defs, false)
    }

    fn words(l: &[Line]) -> Vec<Vec<&str>> {
        l.iter()
            .map(|l| l.toks.iter().map(|t| t.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn tokens_quotes_comments_columns() {
        let t = split_tokens("ALLOW  a \"b c\" `x y` # comment").unwrap();
        let v: Vec<(&str, u32)> = t.iter().map(|t| (t.text.as_str(), t.col)).collect();
        assert_eq!(
            v,
            vec![("ALLOW", 1), ("a", 8), ("\"b c\"", 10), ("`x y`", 16)]
        );
        assert!(split_tokens("A \"open").is_err());
        assert_eq!(
            split_tokens("A `x").unwrap_err(),
            (3, "unterminated backtick".into())
        );
        // `#` inside a word is not a comment
        assert_eq!(split_tokens("a#b c").unwrap()[0].text, "a#b");
    }

    #[test]
    fn continuation_lines_keep_the_first_line_number() {
        let l = logical_lines("A \\\n  B\r\nC");
        assert_eq!(l, vec![(1, "A    B".to_string()), (3, "C".to_string())]);
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
    fn cli_defines_win_and_set_hostname_feeds_backticks() {
        let (l, d) = pre(
            "X=file\nSET HOSTNAME=h1\nZ $X `hostname`\n",
            &[("X", "cli")],
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            words(&l),
            vec![vec!["SET", "HOSTNAME=h1"], vec!["Z", "cli", "h1"]]
        );
    }

    #[test]
    fn unquoted_expansion_splits_quoted_does_not() {
        let (l, _) = pre("V=\"a b\"\nZ $V \"$V\"\n", &[]);
        assert_eq!(words(&l), vec![vec!["Z", "a", "b", "a b"]]);
        // every piece keeps the source token's column
        assert_eq!(l[0].toks[2].col, 3);
    }

    #[test]
    fn failed_expansion_taints_the_line() {
        let (l, d) = pre("Z $NOPE ${BAD\n", &[]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[1].message.contains("unterminated ${"));
        assert!(l[0].tainted);
        assert_eq!(words(&l), vec![vec!["Z", "_", "_"]]);
    }

    #[test]
    fn backticks_go_to_the_shell_only_with_allow_exec() {
        let (_, d) = pre("Z `echo hi`\n", &[]);
        assert!(d[0].message.contains("is not allowed"), "{d:?}");
        let (l, d) = pre_files(&[("t.lw", "Z `echo hi` `two words`\n")], &[], true);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(words(&l), vec![vec!["Z", "hi", "a", "b"]]);
        let (_, d) = pre_files(&[("t.lw", "Z `false`\n")], &[], true);
        assert!(d[0].message.starts_with("command `false` failed"), "{d:?}");
        assert_eq!(d[0].loc.col, 3);
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
    fn if_values_and_unbalanced_blocks() {
        let (l, _) = pre(
            "IF no\nA1\nENDIF\nIF yes\nA2\nENDIF\nIF 1 != 2\nA3\nENDIF\n",
            &[],
        );
        assert_eq!(words(&l), vec![vec!["A2"], vec!["A3"]]);
        let (_, d) = pre("ELSE\nENDIF\nIF x\nELSE\nELSE\n", &[]);
        let m: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            m,
            vec![
                "ELSE without IF",
                "ENDIF without IF",
                "second ELSE for the same IF",
                "IF without ENDIF"
            ]
        );
    }

    #[test]
    fn included_files_are_listed_once_and_follow_if() {
        let d = std::env::temp_dir().join(format!("lw-inc-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        let w = |n: &str, t: &str| std::fs::write(d.join(n), t).unwrap();
        w(
            "site.lw",
            "INCLUDE sub/u.lw\nIF $ROLE == MASTER\nINCLUDE m.lw\nENDIF\nINCLUDE sub/u.lw\n",
        );
        w("sub/u.lw", "");
        w("m.lw", "");
        let role = |r: &str| vec![("ROLE".to_string(), r.to_string())];
        let got = included_files(&d.join("site.lw"), &role("MASTER"));
        assert_eq!(got, [d.join("sub/u.lw"), d.join("m.lw")]);
        assert_eq!(
            included_files(&d.join("site.lw"), &role("BACKUP")),
            [d.join("sub/u.lw")]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_self_include_spelled_differently_is_a_loop_not_an_explosion() {
        struct Every(std::cell::Cell<usize>);
        impl Loader for Every {
            fn load(&self, _: &Path) -> Result<String, String> {
                self.0.set(self.0.get() + 1);
                Ok("INCLUDE ./x.lw\nINCLUDE ./x.lw\n".into())
            }
        }
        let loads = Every(std::cell::Cell::new(0));
        let text = "INCLUDE ./x.lw\nINCLUDE ./x.lw\n";
        let o = opts(&[], false);
        let (_, d) = preprocess_with(&loads, &FakeShell, Path::new("x.lw"), text, &o);
        assert_eq!(loads.0.get(), 0, "x.lw and ./x.lw are one file");
        assert!(
            d.iter().all(|d| d.message.starts_with("INCLUDE loop")),
            "{d:?}"
        );
        // a chain of distinct names is bounded in total, not only in depth
        struct Fan(std::cell::Cell<usize>);
        impl Loader for Fan {
            fn load(&self, p: &Path) -> Result<String, String> {
                self.0.set(self.0.get() + 1);
                let n = p.display().to_string();
                Ok(format!("INCLUDE {n}a\nINCLUDE {n}b\n").replace("dir/", ""))
            }
        }
        let fan = Fan(std::cell::Cell::new(0));
        let (_, d) = preprocess_with(
            &fan,
            &FakeShell,
            Path::new("f"),
            "INCLUDE fa\nINCLUDE fb\n",
            &o,
        );
        assert!(fan.0.get() <= MAX_INCLUDES, "{} loads", fan.0.get());
        assert!(
            d.iter()
                .any(|d| d.message.starts_with("more than 256 INCLUDEs")),
            "{d:?}"
        );
    }

    #[test]
    fn include_is_relative_and_loops_are_refused() {
        let (l, d) = pre_files(
            &[("dir/a.lw", "INCLUDE b.lw\nA\n"), ("dir/b.lw", "B\n")],
            &[],
            false,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(words(&l), vec![vec!["B"], vec!["A"]]);
        assert_eq!(l[0].loc.file, "b.lw");
        let (_, d) = pre_files(&[("a.lw", "INCLUDE a.lw\n"), ("a.lw", "")], &[], false);
        assert!(d[0].message.starts_with("INCLUDE loop"), "{d:?}");
    }

    #[test]
    fn assignment_with_spaces_is_an_error() {
        let (l, d) = pre("A=x y\n", &[]);
        assert!(l.is_empty());
        assert_eq!(d[0].message, "unexpected text after a variable assignment");
        assert_eq!(d[0].loc.col, 5);
    }
}
