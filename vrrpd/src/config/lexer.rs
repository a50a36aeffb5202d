//! Step one of parsing: keepalived's lexical rules and the block tree.
//!
//! `#`/`!` comments, double-quoted strings and braces become tokens that keep their line
//! numbers; the tokens then become a tree of `keyword args... [{ children }]` statements. Kept
//! apart from the keyword handling so that every section reads the same tree and every
//! diagnostic can name its line.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Word(String),
    Open,
    Close,
    Newline,
}

pub(super) fn tokenize(text: &str) -> Vec<(Tok, usize)> {
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
        // Runs of line ends collapse into one (carrying the last line), so that looking past
        // them is one step: no quadratic scan over blank lines.
        match out.last_mut() {
            Some((Tok::Newline, l)) => *l = ln,
            _ => out.push((Tok::Newline, ln)),
        }
    }
    out
}

/// Deepest block nesting accepted; keepalived.conf needs 3 (a group inside an instance), and
/// a bound keeps hostile nesting from overflowing the stack.
pub(super) const MAX_DEPTH: usize = 32;

thread_local! {
    /// Tokens visited by [`build_tree`] on this thread, so a test can show it is linear.
    pub(super) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Skip past the `}` closing the block whose `{` was just read, without recursion.
fn skip_block(toks: &[(Tok, usize)], pos: &mut usize) {
    let (mut open, start) = (1usize, *pos);
    while *pos < toks.len() && open > 0 {
        match toks[*pos].0 {
            Tok::Open => open += 1,
            Tok::Close => open -= 1,
            _ => {}
        }
        *pos += 1;
    }
    STEPS.with(|c| c.set(c.get() + (*pos - start) as u64));
}

/// `keyword args... [{ children }]`
#[derive(Debug, Clone)]
pub(super) struct Stmt {
    pub(super) key: String,
    pub(super) args: Vec<String>,
    pub(super) block: Option<Vec<Stmt>>,
    pub(super) line: usize,
}

pub(super) fn build_tree(
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
        STEPS.with(|c| c.set(c.get() + 1));
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
                // A `{` on the next line still opens this statement's block (line ends are
                // collapsed by `tokenize`, so the next token is not one).
                let next_open = toks.get(*pos).is_some_and(|(t, _)| *t == Tok::Open);
                if !next_open {
                    out.extend(cur.take());
                }
            }
            Tok::Open if depth + 1 > MAX_DEPTH => {
                errs.push((
                    *ln,
                    format!("blocks nested deeper than {MAX_DEPTH} levels: this block is ignored"),
                ));
                cur = None;
                skip_block(toks, pos);
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
