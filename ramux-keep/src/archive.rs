//! A generation's payload: an uncompressed ustar of regular files only, members sorted, owner
//! root, mode and mtime kept, so the same files give the same bytes (and the same hash) on every
//! commit. Reading it back is where an edited or foreign key is met, so every member is checked
//! (name, type, allow-list) and the total size is bounded before anything reaches the disk.

use crate::allow::{member, KeepList};
use std::collections::BTreeMap;
use std::io::Read;

/// Largest payload boot will read, to keep memory bounded on a key someone filled by hand.
pub const MAX_PAYLOAD: u64 = 64 << 20;

/// One kept file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Relative to `/`, as stored (`etc/ssh/ssh_host_ed25519_key`).
    pub path: String,
    /// Permission bits (`0o600`); the owner is always root.
    pub mode: u32,
    pub mtime: u64,
    pub data: Vec<u8>,
}

/// Packs `files` into the tar a commit writes. Refuses a bad or duplicated name.
pub fn build(mut files: Vec<Member>) -> Result<Vec<u8>, String> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(format!("{}: listed twice", w[0].path));
    }
    let mut b = tar::Builder::new(Vec::new());
    for f in &files {
        member(&f.path).map_err(|e| format!("{}: {e}", f.path))?;
        let mut h = tar::Header::new_ustar();
        h.set_path(&f.path)
            .map_err(|e| format!("{}: {e}", f.path))?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(f.data.len() as u64);
        h.set_mode(f.mode & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(f.mtime);
        h.set_cksum();
        b.append(&h, f.data.as_slice())
            .map_err(|e| format!("{}: {e}", f.path))?;
    }
    b.into_inner().map_err(|e| e.to_string())
}

/// What boot takes from a tar: the files to write, and the members it left out and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub files: Vec<Member>,
    pub refused: Vec<(String, String)>,
}

/// Reads a checked tar through the allow-list. A member outside it, of another type than a
/// regular file, or with a bad name is left out and listed; a tar that does not parse, or whose
/// files exceed [`MAX_PAYLOAD`], is an error (the generation is then passed over).
pub fn unpack(tar: &[u8], keep: &KeepList) -> Result<Unpacked, String> {
    let mut files: BTreeMap<String, Member> = BTreeMap::new();
    let mut refused = vec![];
    let mut total = 0u64;
    let mut a = tar::Archive::new(tar);
    for e in a.entries().map_err(|e| format!("not a tar: {e}"))? {
        let mut e = e.map_err(|e| format!("not a tar: {e}"))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if let Err(why) = admit(&e, &name, keep) {
            refused.push((name, why));
            continue;
        }
        total += e.size();
        if total > MAX_PAYLOAD {
            return Err(format!("more than {MAX_PAYLOAD} bytes of files"));
        }
        let mut data = Vec::with_capacity(e.size() as usize);
        e.read_to_end(&mut data)
            .map_err(|err| format!("{name}: {err}"))?;
        let h = e.header();
        let m = Member {
            path: name.clone(),
            mode: h.mode().unwrap_or(0o600) & 0o7777,
            mtime: h.mtime().unwrap_or(0),
            data,
        };
        if files.insert(name.clone(), m).is_some() {
            return Err(format!("{name}: twice in the tar"));
        }
    }
    Ok(Unpacked {
        files: files.into_values().collect(),
        refused,
    })
}

fn admit(e: &tar::Entry<&[u8]>, name: &str, keep: &KeepList) -> Result<(), String> {
    let t = e.header().entry_type();
    if t.is_dir() {
        return Err("a directory entry (directories are implied)".into());
    }
    if !(t.is_file() || t == tar::EntryType::Continuous) {
        return Err(format!("not a regular file ({t:?})"));
    }
    member(name).map_err(|e| e.to_string())?;
    if !keep.allows(name) {
        return Err("not in keep.list".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, data: &[u8]) -> Member {
        Member {
            path: path.into(),
            mode: 0o600,
            mtime: 1_700_000_000,
            data: data.to_vec(),
        }
    }

    fn keep() -> KeepList {
        KeepList::parse("/etc/ssh/\n/etc/ramux/site.lw\n").unwrap()
    }

    #[test]
    fn same_files_same_bytes_and_they_come_back() {
        let a = build(vec![f("etc/ssh/b", b"2"), f("etc/ssh/a", b"1")]).unwrap();
        let b = build(vec![f("etc/ssh/a", b"1"), f("etc/ssh/b", b"2")]).unwrap();
        assert_eq!(a, b);
        let u = unpack(&a, &keep()).unwrap();
        assert_eq!(u.files, vec![f("etc/ssh/a", b"1"), f("etc/ssh/b", b"2")]);
        assert!(u.refused.is_empty());
        assert!(build(vec![f("etc/x", b""), f("etc/x", b"")]).is_err());
        assert!(build(vec![f("/etc/x", b"")]).is_err());
    }

    #[test]
    fn foreign_members_are_left_out_and_named() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, t: tar::EntryType, link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(t);
            h.set_size(if t.is_file() { 1 } else { 0 });
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            let body: &[u8] = if t.is_file() { b"x" } else { b"" };
            b.append(&h, body).unwrap();
        };
        add("etc/shadow", tar::EntryType::Regular, None);
        add("etc/ssh/../../root/x", tar::EntryType::Regular, None);
        add("etc/ssh/link", tar::EntryType::Symlink, Some("/etc/shadow"));
        add("etc/ssh/", tar::EntryType::Directory, None);
        add("etc/ramux/site.lw", tar::EntryType::Regular, None);
        let t = b.into_inner().unwrap();
        let u = unpack(&t, &keep()).unwrap();
        assert_eq!(u.files.len(), 1);
        assert_eq!(u.files[0].path, "etc/ramux/site.lw");
        let names: Vec<&str> = u.refused.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/shadow",
                "etc/ssh/../../root/x",
                "etc/ssh/link",
                "etc/ssh/"
            ]
        );
        let garbage = unpack(b"garbage that is not a tar at all", &keep());
        assert!(garbage.map_or(true, |u| u.files.is_empty()));
        let whole = build(vec![f("etc/ssh/a", &[7; 2000])]).unwrap();
        assert!(
            unpack(&whole[..1200], &keep()).is_err(),
            "a torn tar is an error"
        );
    }
}
