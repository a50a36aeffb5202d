//! In-memory root file system: a sorted map from relative path to node, turned into cpio members.
//!
//! Keeping the tree in memory (rather than staging it on disk) is what makes the build free of
//! host state: no umask, no real inode numbers, no file system mtimes leak into the archive.

use crate::cpio::{Body, Member};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Arc<Vec<u8>>),
    Symlink(String),
    CharDev(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub kind: Kind,
}

impl Node {
    pub fn dir(perm: u32, mtime: u64) -> Self {
        Node {
            perm,
            uid: 0,
            gid: 0,
            mtime,
            kind: Kind::Dir,
        }
    }
    pub fn file(perm: u32, mtime: u64, data: Vec<u8>) -> Self {
        Node {
            perm,
            uid: 0,
            gid: 0,
            mtime,
            kind: Kind::File(Arc::new(data)),
        }
    }
    pub fn symlink(target: &str, mtime: u64) -> Self {
        Node {
            perm: 0o777,
            uid: 0,
            gid: 0,
            mtime,
            kind: Kind::Symlink(target.to_string()),
        }
    }
}

/// A root file system. Paths are relative, normalised (`usr/bin/x`, no `./`, no trailing `/`).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    /// Top-level directory symlinks (`bin` -> `usr/bin` on merged-/usr systems) honoured by
    /// [`Tree::canonical`], so overlays written to `bin/x` land in the real directory.
    pub dir_links: BTreeMap<String, String>,
}

/// Normalises a path from a tarball, overlay or template destination.
pub fn norm(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

impl Tree {
    /// Follows directory symlinks recorded in `dir_links` for the first component.
    pub fn canonical(&self, path: &str) -> String {
        if let Some((first, rest)) = path.split_once('/') {
            if let Some(t) = self.dir_links.get(first) {
                return format!("{t}/{rest}");
            }
        }
        path.to_string()
    }

    /// Inserts a node, creating missing parent directories (0755, root, `mtime`). Replaces an
    /// existing node at the same path.
    pub fn insert(&mut self, path: &str, node: Node, parent_mtime: u64) {
        let path = self.canonical(path);
        let mut idx = 0;
        while let Some(i) = path[idx..].find('/') {
            let parent = &path[..idx + i];
            self.nodes
                .entry(parent.to_string())
                .or_insert_with(|| Node::dir(0o755, parent_mtime));
            idx += i + 1;
        }
        self.nodes.insert(path, node);
    }

    /// Removes every path matching one of `patterns` (see [`glob_match`]); patterns starting with
    /// `!` keep what they match. Returns the number removed.
    pub fn remove_matching(&mut self, patterns: &[String]) -> usize {
        let (keep, drop): (Vec<&String>, Vec<&String>) =
            patterns.iter().partition(|p| p.starts_with('!'));
        let before = self.nodes.len();
        self.nodes.retain(|path, _| {
            let dropped = drop.iter().any(|p| glob_match(p, path));
            !dropped || keep.iter().any(|p| glob_match(&p[1..], path))
        });
        before - self.nodes.len()
    }

    /// Sets every mtime newer than `epoch` to `epoch`.
    pub fn clamp(&mut self, epoch: u64) {
        for n in self.nodes.values_mut() {
            n.mtime = n.mtime.min(epoch);
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(&self.canonical(path))
    }

    /// Sum of file sizes.
    pub fn data_size(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File(d) => d.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// cpio members borrowing from the tree (sorted by path).
    pub fn members(&self) -> Vec<Member<'_>> {
        self.nodes
            .iter()
            .map(|(p, n)| Member {
                name: p,
                perm: n.perm,
                uid: n.uid,
                gid: n.gid,
                mtime: n.mtime.min(u32::MAX as u64) as u32,
                body: match &n.kind {
                    Kind::Dir => Body::Dir,
                    Kind::File(d) => Body::File(d),
                    Kind::Symlink(t) => Body::Symlink(t),
                    Kind::CharDev(a, b) => Body::CharDev(*a, *b),
                },
            })
            .collect()
    }
}

/// Minimal glob: `*` matches any run of characters including `/`; everything else is literal.
/// Enough for removal lists like `usr/share/doc/*` or `*.pyc`.
pub fn glob_match(pat: &str, s: &str) -> bool {
    let (p, t) = (pat.as_bytes(), s.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Rootfs non-determinism that the build always drops (docs/live-iso.md, Rootfs): caches, ids, keys and
/// logs that must be created on the running appliance, never baked into the image.
pub const NONDETERMINISTIC: &[&str] = &[
    "var/cache/ldconfig/*",
    "etc/ld.so.cache",
    "etc/machine-id",
    "var/lib/dbus/machine-id",
    "etc/ssh/ssh_host_*",
    "*.pyc",
    "var/cache/man/*",
    "var/log/*",
    "var/lib/apt/lists/*",
    "var/cache/apt/*",
    "var/cache/debconf/*-old",
    "etc/ssl/private/ssl-cert-snakeoil.key",
    "etc/ssl/certs/ssl-cert-snakeoil.pem",
    "etc/udev/rules.d/70-persistent-*",
    "usr/share/icons/*/icon-theme.cache",
    "etc/adjtime",
    // mmdebstrap copies the build host's resolver configuration into the tree: it names the
    // build machine's name server, not the site's (a profile that needs one renders its own).
    "etc/resolv.conf",
    "etc/*-",
    "*.dpkg-old",
    "*.dpkg-new",
    "*.dpkg-dist",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("usr/share/doc/*", "usr/share/doc/x/copyright"));
        assert!(!glob_match("usr/share/doc/*", "usr/share/doc"));
        assert!(glob_match("*.pyc", "usr/lib/python3/x.pyc"));
        assert!(!glob_match("*.pyc", "usr/lib/python3/x.py"));
        assert!(glob_match("etc/*-", "etc/passwd-"));
        assert!(glob_match(
            "etc/ssh/ssh_host_*",
            "etc/ssh/ssh_host_rsa_key.pub"
        ));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*", ""));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn norm_paths() {
        assert_eq!(norm("./usr/bin/").as_deref(), Some("usr/bin"));
        assert_eq!(norm("/etc//x").as_deref(), Some("etc/x"));
        assert_eq!(norm("./"), None);
        assert_eq!(norm("a/../b"), None);
    }

    #[test]
    fn insert_creates_parents_and_follows_links() {
        let mut t = Tree::default();
        t.dir_links.insert("bin".into(), "usr/bin".into());
        t.insert("bin/sh", Node::symlink("busybox", 5), 7);
        t.insert(
            "etc/ramux/role",
            Node::file(0o644, 5, b"MASTER\n".to_vec()),
            7,
        );
        let paths: Vec<&str> = t.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            vec![
                "etc",
                "etc/ramux",
                "etc/ramux/role",
                "usr",
                "usr/bin",
                "usr/bin/sh"
            ]
        );
        assert_eq!(t.nodes["etc"].mtime, 7);
        assert!(t.contains("bin/sh"));
    }

    #[test]
    fn remove_with_keep() {
        let mut t = Tree::default();
        for p in [
            "usr/share/doc/a/copyright",
            "usr/share/doc/a/README",
            "var/log/x",
            "etc/passwd-",
            "etc/passwd",
        ] {
            t.insert(p, Node::file(0o644, 1, vec![]), 1);
        }
        let mut pats: Vec<String> = NONDETERMINISTIC.iter().map(|s| s.to_string()).collect();
        pats.push("usr/share/doc/*".into());
        pats.push("!usr/share/doc/*/copyright".into());
        t.remove_matching(&pats);
        assert!(t.contains("usr/share/doc/a/copyright"));
        assert!(!t.contains("usr/share/doc/a/README"));
        assert!(!t.contains("var/log/x"));
        assert!(!t.contains("etc/passwd-"));
        assert!(t.contains("etc/passwd"));
        assert!(t.contains("var/log"), "directories themselves stay");
    }

    #[test]
    fn clamp_only_lowers() {
        let mut t = Tree::default();
        t.insert("a", Node::file(0o644, 100, vec![]), 1);
        t.insert("b", Node::file(0o644, 5, vec![]), 1);
        t.clamp(50);
        assert_eq!(t.nodes["a"].mtime, 50);
        assert_eq!(t.nodes["b"].mtime, 5);
    }
}
