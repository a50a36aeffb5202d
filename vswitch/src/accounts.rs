//! `/etc/passwd` and `/etc/group` lookups, the crate's only copy.
//!
//! The binary is static, so there is no NSS: the files are read directly. The parsing is pure
//! (text in, answer out) and unit-tested; the `*_from_files` style wrappers at the bottom only
//! read the files and call it.
//!
//! Both files are colon-separated records whose first field is a name and whose third field
//! is a numeric id (uid or gid); the fourth is the primary gid (passwd) or the comma-separated
//! member list (group).

use anyhow::{bail, Context, Result};

/// The user database.
pub const PASSWD: &str = "/etc/passwd";
/// The group database.
pub const GROUP: &str = "/etc/group";

/// One line of `/etc/passwd` or `/etc/group` with at least three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// User or group name.
    pub name: &'a str,
    /// The uid or gid field as written (it may not be a number).
    pub id: &'a str,
    /// passwd: the primary gid; group: the member list. None if the line has only 3 fields.
    pub fourth: Option<&'a str>,
}

impl Record<'_> {
    /// The id field as a number, if it is one.
    pub fn id(&self) -> Option<u32> {
        self.id.parse().ok()
    }
}

/// The records of a passwd- or group-format text; lines with fewer than three fields are
/// skipped.
pub fn records(text: &str) -> impl Iterator<Item = Record<'_>> {
    text.lines().filter_map(|l| {
        let mut f = l.split(':');
        let (name, _pw, id) = (f.next()?, f.next()?, f.next()?);
        Some(Record {
            name,
            id,
            fourth: f.next(),
        })
    })
}

/// What looking a name up in a database found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(u32),
    /// The first record with that name has an id field that is not a number.
    BadId,
    Unknown,
}

/// The id of the first record named `name`.
pub fn id_of_name(text: &str, name: &str) -> Lookup {
    match records(text).find(|r| r.name == name) {
        Some(r) => r.id().map_or(Lookup::BadId, Lookup::Found),
        None => Lookup::Unknown,
    }
}

/// The name of the first record whose id is `id`.
pub fn name_of_id(text: &str, id: u32) -> Option<&str> {
    records(text).find(|r| r.id() == Some(id)).map(|r| r.name)
}

/// The groups of `uid`: its primary gid from `passwd` plus the gids of the `group` records
/// that list its name as a member.
pub fn user_gids(passwd: &str, group: &str, uid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut name = "";
    for r in records(passwd).filter(|r| r.fourth.is_some() && r.id() == Some(uid)) {
        name = r.name;
        if let Some(g) = r.fourth.and_then(|g| g.parse().ok()) {
            out.push(g);
        }
    }
    // A uid without a passwd entry has no name, and an empty name must not match the empty
    // member list of `root:x:0:` (it would pass every `port/setgroup` ACL of such a group).
    if name.is_empty() {
        return out;
    }
    for r in records(group) {
        if r.fourth.is_some_and(|m| m.split(',').any(|m| m == name)) {
            if let Some(g) = r.id() {
                out.push(g);
            }
        }
    }
    out
}

/// A user or group argument of the console (`port/setuser`, `port/setgroup`): `NONE` and
/// `ANY` clear the ACL (`Some(None)`), a number is taken as is, a name is looked up in `text`
/// (None if `text` is None, i.e. the file could not be read). None = invalid argument.
pub fn acl_id(text: Option<&str>, arg: &str) -> Option<Option<u32>> {
    if arg == "NONE" || arg == "ANY" {
        return Some(None);
    }
    if let Ok(n) = arg.parse::<u32>() {
        return Some(Some(n));
    }
    match id_of_name(text?, arg) {
        Lookup::Found(n) => Some(Some(n)),
        Lookup::BadId | Lookup::Unknown => None,
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The name of `uid` for display (`NONE` for no user, the number if it has no name).
pub fn user_name(uid: Option<u32>) -> String {
    let Some(uid) = uid else { return "NONE".into() };
    read(PASSWD)
        .and_then(|t| name_of_id(&t, uid).map(str::to_string))
        .unwrap_or_else(|| uid.to_string())
}

/// [`acl_id`] against `/etc/passwd` (`user`) or `/etc/group`.
pub fn acl_id_from_files(user: bool, arg: &str) -> Option<Option<u32>> {
    let text = read(if user { PASSWD } else { GROUP });
    acl_id(text.as_deref(), arg)
}

/// A `-g`/`--mgmtgroup` argument: a gid, or a group name from `/etc/group`.
pub fn gid_of(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let t = std::fs::read_to_string(GROUP).context("read /etc/group")?;
    let record = records(&t).find(|r| r.name == name);
    match record {
        Some(r) => r.id.parse().context("bad gid in /etc/group"),
        None => bail!("unknown group {name:?}"),
    }
}

/// [`user_gids`] from `/etc/passwd` and `/etc/group` (a missing file counts as empty).
pub fn user_gids_from_files(uid: u32) -> Vec<u32> {
    let (p, g) = (
        read(PASSWD).unwrap_or_default(),
        read(GROUP).unwrap_or_default(),
    );
    user_gids(&p, &g, uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
bob:x:1001:100:Bob:/home/bob:/bin/sh
short:x:1002
broken:x:notanumber:5::/:/bin/false
";

    const GROUP_TEXT: &str = "\
root:x:0:
users:x:100:alice
kvm:x:106:alice,bob
netdev:x:108:bob
alice:x:1000:
weird:x:abc:alice
";

    #[test]
    fn records_need_three_fields() {
        let r: Vec<_> = records("a:x:1:2\nb:x\n\nc:x:3\n").collect();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Record {
                name: "a",
                id: "1",
                fourth: Some("2")
            }
        );
        assert_eq!(r[1].name, "c");
        assert_eq!(r[1].id(), Some(3));
        assert_eq!(r[1].fourth, None);
    }

    #[test]
    fn name_lookups() {
        assert_eq!(id_of_name(PASSWD_TEXT, "alice"), Lookup::Found(1000));
        assert_eq!(id_of_name(PASSWD_TEXT, "short"), Lookup::Found(1002));
        assert_eq!(id_of_name(PASSWD_TEXT, "broken"), Lookup::BadId);
        assert_eq!(id_of_name(PASSWD_TEXT, "carol"), Lookup::Unknown);
        assert_eq!(id_of_name(GROUP_TEXT, "kvm"), Lookup::Found(106));
        // The first record with the name decides.
        assert_eq!(id_of_name("x:x:7:\nx:x:8:\n", "x"), Lookup::Found(7));
        assert_eq!(id_of_name("x:x:bad:\nx:x:8:\n", "x"), Lookup::BadId);
    }

    #[test]
    fn id_lookups() {
        assert_eq!(name_of_id(PASSWD_TEXT, 0), Some("root"));
        assert_eq!(name_of_id(PASSWD_TEXT, 1001), Some("bob"));
        assert_eq!(name_of_id(PASSWD_TEXT, 1002), Some("short"));
        assert_eq!(name_of_id(PASSWD_TEXT, 4242), None);
        assert_eq!(name_of_id(GROUP_TEXT, 108), Some("netdev"));
    }

    #[test]
    fn groups_of_a_user() {
        assert_eq!(
            user_gids(PASSWD_TEXT, GROUP_TEXT, 1000),
            vec![1000, 100, 106]
        );
        assert_eq!(
            user_gids(PASSWD_TEXT, GROUP_TEXT, 1001),
            vec![100, 106, 108]
        );
        // A passwd line without a gid field gives no primary group and no name.
        assert_eq!(
            user_gids(PASSWD_TEXT, "g:x:9:short\n", 1002),
            Vec::<u32>::new()
        );
        // A uid with no passwd entry is in no group, not in every group without members.
        assert_eq!(
            user_gids(PASSWD_TEXT, "root:x:0:\nwheel:x:10:,\n", 4242),
            Vec::<u32>::new()
        );
        // A member whose name only shares a prefix is not a member.
        assert_eq!(
            user_gids(PASSWD_TEXT, "g:x:9:alicex,xalice\n", 1000),
            vec![1000]
        );
    }

    #[test]
    fn acl_arguments() {
        assert_eq!(acl_id(Some(PASSWD_TEXT), "NONE"), Some(None));
        assert_eq!(acl_id(Some(PASSWD_TEXT), "ANY"), Some(None));
        assert_eq!(acl_id(None, "1234"), Some(Some(1234)));
        assert_eq!(acl_id(Some(PASSWD_TEXT), "bob"), Some(Some(1001)));
        assert_eq!(acl_id(Some(GROUP_TEXT), "netdev"), Some(Some(108)));
        assert_eq!(acl_id(Some(GROUP_TEXT), "weird"), None);
        assert_eq!(acl_id(Some(PASSWD_TEXT), "carol"), None);
        assert_eq!(acl_id(None, "bob"), None);
    }

    #[test]
    fn from_files() {
        // Every Linux system has root as uid 0 and gid 0.
        assert_eq!(user_name(Some(0)), "root");
        assert_eq!(user_name(None), "NONE");
        assert_eq!(gid_of("root").unwrap(), 0);
        assert_eq!(gid_of("42").unwrap(), 42);
        let e = gid_of("no-such-group-here").unwrap_err().to_string();
        assert!(e.contains("unknown group"), "{e}");
        assert_eq!(acl_id_from_files(true, "root"), Some(Some(0)));
    }
}
