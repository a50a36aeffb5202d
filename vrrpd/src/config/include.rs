//! `include PATTERN` as keepalived reads it (keepalived.conf(5), "include"): the matching files
//! are spliced in place of the line, in glob order, anywhere in the file (inside a block too).
//! A relative pattern is relative to the directory of the file that includes it; the pattern
//! is a glob(3) with csh-style braces. No match is a warning, as keepalived's plain `include`.
//!
//! The walk is pure over a [`Source`] (the daemon's reads the filesystem with glob(3)), and
//! it records where every line of the result came from, so diagnostics name the included
//! file and its line.

use std::path::{Path, PathBuf};

use super::Diag;

/// Deepest include nesting accepted (a file including itself would never end).
pub const MAX_DEPTH: usize = 16;

/// Where files come from.
pub trait Source {
    /// Paths matching an absolute glob pattern, sorted.
    fn glob(&mut self, pattern: &Path) -> Vec<PathBuf>;
    fn read(&mut self, path: &Path) -> std::io::Result<String>;
}

/// The spliced text and, per line of it, its file (index into `files`) and line there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    pub text: String,
    pub files: Vec<PathBuf>,
    pub origins: Vec<(usize, usize)>,
    /// Include problems (no match, unreadable, too deep), at the include line.
    pub errors: Vec<Diag>,
    pub warnings: Vec<Diag>,
}

impl Expanded {
    /// The file and line of line `n` (1-based) of the spliced text.
    pub fn place(&self, n: usize) -> (PathBuf, usize) {
        match n.checked_sub(1).and_then(|i| self.origins.get(i)) {
            Some(&(f, l)) => (self.files[f].clone(), l),
            None => (self.files.first().cloned().unwrap_or_default(), n),
        }
    }
}

/// Splice the includes of `text` (the contents of `file`).
pub fn expand(text: &str, file: &Path, src: &mut dyn Source) -> Expanded {
    let mut out = Expanded::default();
    walk(text, file, src, &mut out, 0);
    out
}

fn walk(text: &str, file: &Path, src: &mut dyn Source, out: &mut Expanded, depth: usize) {
    let fi = out.files.len();
    out.files.push(file.to_path_buf());
    for (i, line) in text.lines().enumerate() {
        let Some(pattern) = include_arg(line) else {
            out.text.push_str(line);
            out.text.push('\n');
            out.origins.push((fi, i + 1));
            continue;
        };
        let diag = |msg: String| Diag {
            file: file.to_path_buf(),
            line: i + 1,
            msg,
        };
        if depth + 1 > MAX_DEPTH {
            out.errors.push(diag(format!(
                "includes nested deeper than {MAX_DEPTH} levels (a file including itself?)"
            )));
            continue;
        }
        let abs = relative_to(file, pattern);
        let paths = src.glob(&abs);
        if paths.is_empty() {
            out.warnings
                .push(diag(format!("include '{pattern}' matches no file")));
        }
        for p in paths {
            match src.read(&p) {
                Ok(t) => walk(&t, &p, src, out, depth + 1),
                Err(e) => out
                    .errors
                    .push(diag(format!("include {}: cannot read: {e}", p.display()))),
            }
        }
    }
}

/// The pattern of an `include PATTERN` line (keepalived also accepts `includer` etc.; those
/// stricter variants are read as plain `include`).
fn include_arg(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let kw = words.next()?;
    if !matches!(
        kw,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    ) {
        return None;
    }
    let arg = words.next()?;
    Some(arg.trim_matches('"'))
}

/// keepalived: relative paths are relative to the including file's directory.
fn relative_to(file: &Path, pattern: &str) -> PathBuf {
    let p = Path::new(pattern);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    file.parent().unwrap_or(Path::new("/")).join(p)
}

/// glob(3) with braces and the filesystem: what the daemon and `--check` read.
pub struct FsSource;

impl Source for FsSource {
    fn glob(&mut self, pattern: &Path) -> Vec<PathBuf> {
        crate::sys::glob(pattern)
    }
    fn read(&mut self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Files in memory; a pattern ending in `*` matches by prefix.
    struct Mem(BTreeMap<PathBuf, String>);

    impl Source for Mem {
        fn glob(&mut self, pattern: &Path) -> Vec<PathBuf> {
            // Lexical `..` folding, as the kernel resolves it for glob(3).
            let mut norm = PathBuf::new();
            for c in pattern.components() {
                match c {
                    std::path::Component::ParentDir => {
                        norm.pop();
                    }
                    c => norm.push(c),
                }
            }
            let pattern = norm.as_path();
            let s = pattern.to_string_lossy();
            match s.strip_suffix('*') {
                Some(prefix) => self
                    .0
                    .keys()
                    .filter(|k| k.to_string_lossy().starts_with(prefix))
                    .cloned()
                    .collect(),
                None => self.0.keys().filter(|k| *k == pattern).cloned().collect(),
            }
        }
        fn read(&mut self, path: &Path) -> std::io::Result<String> {
            Ok(self.0[path].clone())
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect())
    }

    #[test]
    fn splices_in_glob_order_relative_to_the_including_file() {
        let mut m = mem(&[
            ("/etc/k/conf.d/a.conf", "A1\ninclude ../sub/x\n"),
            ("/etc/k/conf.d/b.conf", "B1\n"),
            ("/etc/k/sub/x", "X1\nX2\n"),
        ]);
        let e = expand(
            "top\n  include conf.d/*\nend\n",
            Path::new("/etc/k/keepalived.conf"),
            &mut m,
        );
        assert_eq!(e.text, "top\nA1\nX1\nX2\nB1\nend\n");
        assert!(e.errors.is_empty() && e.warnings.is_empty(), "{e:?}");
        assert_eq!(e.place(1), (PathBuf::from("/etc/k/keepalived.conf"), 1));
        assert_eq!(e.place(4), (PathBuf::from("/etc/k/sub/x"), 2));
        assert_eq!(e.place(5), (PathBuf::from("/etc/k/conf.d/b.conf"), 1));
        assert_eq!(e.place(6), (PathBuf::from("/etc/k/keepalived.conf"), 3));
    }

    #[test]
    fn no_match_warns_and_self_inclusion_stops() {
        let mut m = mem(&[("/k/self.conf", "include self.conf\n")]);
        let e = expand(
            "include nothing*\ninclude self.conf\n",
            Path::new("/k/main.conf"),
            &mut m,
        );
        assert_eq!(e.warnings.len(), 1);
        assert_eq!(e.warnings[0].line, 1);
        assert_eq!(e.errors.len(), 1, "{e:?}");
        assert!(e.errors[0].msg.contains("nested deeper"));
        assert_eq!(e.errors[0].file, PathBuf::from("/k/self.conf"));
    }
}
