//! `/etc/ramux/keep.list`: which files a generation may hold. One absolute path per line; a
//! path ending in `/` keeps everything below that directory; `#` starts a comment. The same
//! list decides what a commit packs and what boot extracts, so a key edited on a PC (or
//! another site's key) cannot place a file the image did not ask to keep.

use std::fmt;

/// The allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepList {
    /// Relative forms (`etc/ssh/ssh_host_ed25519_key`, `etc/ramux/local.d/`), sorted.
    entries: Vec<String>,
}

/// A keep.list line that is not an absolute, clean path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    pub line: usize,
    pub text: String,
    pub why: PathError,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {:?}: {}; write an absolute path like /etc/ssh/ssh_host_ed25519_key \
             (a directory ends in /)",
            self.line, self.text, self.why
        )
    }
}

/// Why a path (a keep.list entry or a tar member name) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    Empty,
    NotAbsolute,
    /// A member name must be relative (tar members are stored without the leading `/`).
    Absolute,
    /// `..`, `.` or an empty component, which could lead outside the tree or alias a path.
    BadComponent,
    Nul,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Empty => "empty path",
            PathError::NotAbsolute => "not an absolute path",
            PathError::Absolute => "an absolute member name",
            PathError::BadComponent => "a '.', '..' or empty path component",
            PathError::Nul => "a NUL byte",
        })
    }
}

impl KeepList {
    pub fn parse(text: &str) -> Result<KeepList, ListError> {
        let mut entries = vec![];
        for (i, raw) in text.lines().enumerate() {
            let t = raw.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            let err = |why| ListError {
                line: i + 1,
                text: t.to_string(),
                why,
            };
            let rel = t.strip_prefix('/').ok_or(err(PathError::NotAbsolute))?;
            let dir = rel.ends_with('/');
            member(rel.trim_end_matches('/')).map_err(err)?;
            entries.push(if dir || rel.is_empty() {
                format!("{}/", rel.trim_end_matches('/'))
            } else {
                rel.to_string()
            });
        }
        entries.sort();
        entries.dedup();
        Ok(KeepList { entries })
    }

    /// Whether the relative path `rel` (as checked by [`member`]) may be kept.
    pub fn allows(&self, rel: &str) -> bool {
        self.entries.iter().any(|e| match e.strip_suffix('/') {
            Some("") => true,
            Some(d) => rel.strip_prefix(d).is_some_and(|r| r.starts_with('/')),
            None => e == rel,
        })
    }

    /// The entries as absolute paths, for `ramux keep status` to walk.
    pub fn roots(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(|e| format!("/{e}"))
    }
}

/// Checks a tar member name: relative, no `.`/`..`/empty components, no NUL.
pub fn member(name: &str) -> Result<&str, PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name.contains('\0') {
        return Err(PathError::Nul);
    }
    if name.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(PathError::BadComponent);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_allowed_and_nothing_else() {
        let l = KeepList::parse(
            "# ssh\n/etc/ssh/ssh_host_ed25519_key\n/etc/ramux/local.d/  # site drop-ins\n\n",
        )
        .unwrap();
        assert!(l.allows("etc/ssh/ssh_host_ed25519_key"));
        assert!(l.allows("etc/ramux/local.d/10-extra.nft"));
        assert!(l.allows("etc/ramux/local.d/a/b"));
        assert!(!l.allows("etc/ramux/local.d"));
        assert!(!l.allows("etc/ramux/local.dx/f"));
        assert!(!l.allows("etc/ssh/ssh_host_ed25519_key.pub"));
        assert!(!l.allows("etc/shadow"));
        assert_eq!(
            l.roots().collect::<Vec<_>>(),
            ["/etc/ramux/local.d/", "/etc/ssh/ssh_host_ed25519_key"]
        );
    }

    #[test]
    fn bad_lines_name_their_line_and_fix() {
        let e = KeepList::parse("/etc/a\netc/b\n").unwrap_err();
        assert_eq!((e.line, e.why), (2, PathError::NotAbsolute));
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = KeepList::parse("/etc/../shadow").unwrap_err();
        assert_eq!(e.why, PathError::BadComponent);
    }

    #[test]
    fn member_names_that_escape_are_refused() {
        assert_eq!(member("etc/ssh/k"), Ok("etc/ssh/k"));
        for (n, e) in [
            ("", PathError::Empty),
            ("/etc/shadow", PathError::Absolute),
            ("etc/../../root", PathError::BadComponent),
            ("./etc/x", PathError::BadComponent),
            ("etc//x", PathError::BadComponent),
            ("etc/x/", PathError::BadComponent),
            ("etc/\0x", PathError::Nul),
        ] {
            assert_eq!(member(n), Err(e), "{n:?}");
        }
    }
}
