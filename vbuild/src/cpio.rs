//! Deterministic newc ("070701") cpio writer for initramfs archives.
//!
//! Written here rather than taken from the `cpio` crate because the properties that make an
//! initramfs reproducible are exactly the ones a general writer leaves to the caller: entries in
//! byte order of their names, inode numbers from a counter, device numbers zero, owners and mtimes
//! taken from the entry (already clamped by the caller), and a hard error past the 4 GiB newc limit
//! instead of a silently truncated file (linuxkit#3926). The writer is pure: it never reads the
//! file system or the clock, so the same entries always give the same bytes.

use std::io::{self, Write};

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// What an archive member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Dir,
    File(&'a [u8]),
    /// Symlink with its target.
    Symlink(&'a str),
    /// Character device (major, minor), e.g. `/dev/console` = (5, 1).
    CharDev(u32, u32),
}

/// One archive member. `name` is relative (`usr/sbin/ip`), without a leading `/` or `./`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: &'a str,
    /// Permission bits only (`0o755`); the type bits come from `body`.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub body: Body<'a>,
}

const MAX_SIZE: u64 = u32::MAX as u64;

fn pad4<W: Write>(w: &mut W, len: u64) -> io::Result<u64> {
    let pad = (4 - (len % 4)) % 4;
    w.write_all(&[0u8; 3][..pad as usize])?;
    Ok(pad)
}

fn header<W: Write>(w: &mut W, f: [u32; 13], name: &str) -> io::Result<u64> {
    let mut h = String::with_capacity(110);
    h.push_str("070701");
    for v in f {
        h.push_str(&format!("{v:08X}"));
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    let len = 110 + name.len() as u64 + 1;
    Ok(len + pad4(w, len)?)
}

/// Writes `members` as a newc archive followed by the `TRAILER!!!` entry and returns the number of
/// bytes written. Members are sorted by name bytes here, so callers may pass any order; duplicate
/// names are an error (the kernel would silently keep the last one).
pub fn write_newc<W: Write>(out: &mut W, members: &[Member<'_>]) -> io::Result<u64> {
    let mut sorted: Vec<&Member<'_>> = members.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for pair in sorted.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio: duplicate entry {}", pair[0].name),
            ));
        }
    }
    let mut total = 0u64;
    for (i, m) in sorted.iter().enumerate() {
        if m.name.is_empty() || m.name.starts_with('/') || m.name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio: bad entry name {:?}", m.name),
            ));
        }
        let (ty, data, nlink, rdev): (u32, &[u8], u32, (u32, u32)) = match &m.body {
            Body::Dir => (S_IFDIR, &[], 2, (0, 0)),
            Body::File(d) => (S_IFREG, d, 1, (0, 0)),
            Body::Symlink(t) => (S_IFLNK, t.as_bytes(), 1, (0, 0)),
            Body::CharDev(ma, mi) => (S_IFCHR, &[], 1, (*ma, *mi)),
        };
        if data.len() as u64 > MAX_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio: {} is larger than the 4 GiB newc limit", m.name),
            ));
        }
        let ino = (i + 1) as u32;
        let fields = [
            ino,
            ty | (m.perm & 0o7777),
            m.uid,
            m.gid,
            nlink,
            m.mtime,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            m.name.len() as u32 + 1,
            0,
        ];
        total += header(out, fields, m.name)?;
        out.write_all(data)?;
        total += data.len() as u64 + pad4(out, data.len() as u64)?;
    }
    let mut trailer = [0u32; 13];
    trailer[4] = 1;
    trailer[11] = "TRAILER!!!".len() as u32 + 1;
    total += header(out, trailer, "TRAILER!!!")?;
    Ok(total)
}

/// Parses a newc archive back into (name, mode, data) triples. Used by tests and by the fuzz
/// target: it must never panic on arbitrary bytes.
pub fn read_newc(mut buf: &[u8]) -> Result<Vec<(String, u32, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        if buf.len() < 110 {
            return Err(format!("truncated header at offset {off}"));
        }
        if &buf[..6] != b"070701" {
            return Err(format!("bad magic at offset {off}"));
        }
        let field = |i: usize| -> Result<u32, String> {
            let s = std::str::from_utf8(&buf[6 + i * 8..14 + i * 8])
                .map_err(|_| format!("non-ascii header at offset {off}"))?;
            u32::from_str_radix(s, 16).map_err(|_| format!("bad hex field at offset {off}"))
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let namesize = field(11)? as usize;
        if namesize == 0 {
            return Err(format!("zero name size at offset {off}"));
        }
        let name_end = 110usize.checked_add(namesize).ok_or("overflow")?;
        if buf.len() < name_end {
            return Err(format!("truncated name at offset {off}"));
        }
        let name = String::from_utf8_lossy(&buf[110..name_end - 1]).into_owned();
        let data_start = name_end.div_ceil(4) * 4;
        let data_end = data_start.checked_add(size).ok_or("overflow")?;
        if buf.len() < data_end {
            return Err(format!("truncated data of {name}"));
        }
        if name == "TRAILER!!!" {
            return Ok(out);
        }
        out.push((name, mode, buf[data_start..data_end].to_vec()));
        let next = (data_end.div_ceil(4) * 4).min(buf.len());
        buf = &buf[next..];
        off += next;
    }
}

/// Fuzz body: reading arbitrary bytes must not panic, and whatever parses must re-serialise.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(entries) = read_newc(data) {
        let members: Vec<Member<'_>> = entries
            .iter()
            .filter(|(n, _, _)| !n.is_empty() && !n.starts_with('/'))
            .map(|(n, mode, d)| Member {
                name: n,
                perm: mode & 0o7777,
                uid: 0,
                gid: 0,
                mtime: 0,
                body: Body::File(d),
            })
            .collect();
        let mut v = Vec::new();
        let _ = write_newc(&mut v, &members);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sample() -> Vec<Member<'static>> {
        vec![
            Member {
                name: "usr/bin/hello",
                perm: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::File(b"#!/bin/sh\necho hi\n"),
            },
            Member {
                name: "usr",
                perm: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::Dir,
            },
            Member {
                name: "usr/bin",
                perm: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::Dir,
            },
            Member {
                name: "bin",
                perm: 0o777,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::Symlink("usr/bin"),
            },
            Member {
                name: "etc",
                perm: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::Dir,
            },
            Member {
                name: "etc/empty",
                perm: 0o600,
                uid: 0,
                gid: 0,
                mtime: 1_600_000_000,
                body: Body::File(b""),
            },
            Member {
                name: "etc/odd",
                perm: 0o644,
                uid: 0,
                gid: 0,
                mtime: 1_600_000_000,
                body: Body::File(b"abcde"),
            },
            Member {
                name: "dev",
                perm: 0o755,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::Dir,
            },
            Member {
                name: "dev/console",
                perm: 0o600,
                uid: 0,
                gid: 0,
                mtime: 1_700_000_000,
                body: Body::CharDev(5, 1),
            },
        ]
    }

    fn archive(m: &[Member<'_>]) -> Vec<u8> {
        let mut v = Vec::new();
        let n = write_newc(&mut v, m).unwrap();
        assert_eq!(n as usize, v.len());
        assert_eq!(v.len() % 4, 0);
        v
    }

    #[test]
    fn order_independent_and_sorted() {
        let a = archive(&sample());
        let mut rev = sample();
        rev.reverse();
        assert_eq!(a, archive(&rev));
        let names: Vec<String> = read_newc(&a).unwrap().into_iter().map(|e| e.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 9);
    }

    #[test]
    fn header_fields_are_pinned() {
        let a = archive(&sample()[..1]);
        let h = std::str::from_utf8(&a[..110]).unwrap();
        // magic, ino 1, mode 100755, uid 0, gid 0, nlink 1, mtime, size 18, dev 0/0, rdev 0/0, namesize 14, check 0
        let fields = [
            "070701", "00000001", "000081ED", "00000000", "00000000", "00000001", "6553F100",
            "00000012", "00000000", "00000000", "00000000", "00000000", "0000000E", "00000000",
        ];
        assert_eq!(h, fields.concat());
        assert_eq!(&a[110..124], b"usr/bin/hello\0");
    }

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let mut m = sample();
        m.push(m[0].clone());
        assert!(write_newc(&mut Vec::new(), &m).is_err());
        let bad = [Member {
            name: "/abs",
            perm: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            body: Body::Dir,
        }];
        assert!(write_newc(&mut Vec::new(), &bad).is_err());
    }

    fn need(tool: &str, pkg: &str) {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(ok, "{tool} not found: install the Debian package {pkg}");
    }

    /// GNU cpio lists exactly our members, in our order.
    #[test]
    fn gnu_cpio_lists_it() {
        need("cpio", "cpio");
        let a = archive(&sample());
        let mut child = Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&a).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listed = String::from_utf8(out.stdout).unwrap();
        let expect: Vec<String> = read_newc(&a).unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(listed.lines().collect::<Vec<_>>(), expect);
    }

    /// GNU cpio unpacks it with the right contents, modes, symlinks and mtimes.
    #[test]
    fn gnu_cpio_unpacks_it() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        need("cpio", "cpio");
        let dir = tempfile::tempdir().unwrap();
        // dev/console needs root to mknod; unpack everything else.
        let m: Vec<_> = sample()
            .into_iter()
            .filter(|m| !matches!(m.body, Body::CharDev(..)))
            .collect();
        let a = archive(&m);
        let mut child = Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&a).unwrap();
        assert!(child.wait().unwrap().success());
        let p = dir.path();
        assert_eq!(
            std::fs::read(p.join("usr/bin/hello")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(std::fs::read(p.join("etc/odd")).unwrap(), b"abcde");
        assert_eq!(std::fs::read(p.join("etc/empty")).unwrap(), b"");
        let md = std::fs::metadata(p.join("usr/bin/hello")).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o755);
        assert_eq!(md.mtime(), 1_700_000_000);
        assert_eq!(
            std::fs::metadata(p.join("etc/empty"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_link(p.join("bin")).unwrap().to_str().unwrap(),
            "usr/bin"
        );
    }

    #[test]
    fn fuzz_body_survives_garbage() {
        let good = archive(&sample());
        fuzz_roundtrip(&good);
        for cut in [0, 5, 109, 110, 120, good.len() - 1] {
            fuzz_roundtrip(&good[..cut]);
        }
        let mut evil = good.clone();
        evil[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"FFFFFFFF");
        fuzz_roundtrip(&evil);
        fuzz_roundtrip(b"070701zzzzzzzz");
        assert!(read_newc(&evil).is_err());
    }
}
