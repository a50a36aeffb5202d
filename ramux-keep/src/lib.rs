//! The pure core of `ramux keep`, the site's USB key: what a generation is called and how its
//! hash file reads ([`generation`]), which generation boot applies and which ones a commit prunes
//! ([`select`]), which files may be kept and how a tar member's path is checked ([`allow`]), the
//! byte-reproducible tar itself ([`archive`]), and how the key is found among the machine's
//! disks by its filesystem label ([`label`], [`find`]). Those are pure; [`disk`] is the I/O on a
//! key already mounted (collect, commit with its fsyncs, apply). Mounting, `fsck.fat -a` and the
//! wait for USB are PID 1's and the command's; the time is always passed in.
//!
//! The design follows Alpine's `lbu` (explicit commit, kept generations, refusal to guess between
//! two candidates) with one change for FAT, which has neither journal nor atomic rename: a
//! generation is valid exactly when its `.sha256` file exists, names it and matches it, and
//! nothing is ever rewritten in place. A torn write only makes that one generation invalid.

pub mod allow;
pub mod archive;
pub mod disk;
pub mod find;
pub mod generation;
pub mod label;
pub mod select;

/// Fuzz body (`ramux-keep/fuzz`, target `key_files`): `data` read as each thing boot takes from
/// a key it did not write. Never panics; a tar's files are always inside the allow-list.
pub fn fuzz_key_files(data: &[u8]) {
    let _ = label::probe(data);
    let text = String::from_utf8_lossy(data);
    let _ = allow::KeepList::parse(&text);
    let _ = find::want(&text);
    let _ = generation::check(generation::Gen(1), data, data);
    let keep = allow::KeepList::parse("/etc/ssh/\n/etc/ramux/site.lw\n").expect("fixed list");
    if let Ok(u) = archive::unpack(data, &keep) {
        assert!(u.files.iter().all(|f| keep.allows(&f.path)));
    }
    let names: Vec<&str> = text.split('\n').collect();
    let l = select::Listing::new(names.iter().copied());
    let _ = l.prune(l.next(), &l.newest_first().collect::<Vec<_>>(), 3);
}

#[cfg(test)]
mod fuzz_tests {
    #[test]
    fn fuzz_body_survives_edges() {
        for d in [
            &b""[..],
            &[0; 2048],
            &[0xff; 600],
            b"gen-000001.tar\ngen-999999.sha256",
        ] {
            super::fuzz_key_files(d);
        }
        let t = crate::archive::build(vec![crate::archive::Member {
            path: "etc/ssh/k".into(),
            mode: 0o600,
            mtime: 0,
            data: b"k".to_vec(),
        }])
        .unwrap();
        super::fuzz_key_files(&t);
    }
}
