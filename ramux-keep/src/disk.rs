//! The I/O side, on a key already mounted (mounting, `fsck.fat -a` and the 10 s wait belong to
//! PID 1 and the `ramux keep` command): collecting the kept files from the running system,
//! committing them as a new generation in the order that makes a power cut harmless, and
//! applying the newest valid generation to a root directory.

use crate::allow::KeepList;
use crate::archive::{self, Member};
use crate::generation::{sum_file, Gen, Invalid, Origin, Part};
use crate::label::{self, Probe, PROBE_BYTES};
use crate::select::{self, Choice, Listing};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// The regular files under `root` that `keep` allows, as a commit packs them. Symlinks are not
/// followed (a kept directory holding a link to /etc/shadow keeps nothing of it).
pub fn collect(root: &Path, keep: &KeepList) -> io::Result<Vec<Member>> {
    let mut out = vec![];
    for abs in keep.roots() {
        let rel = abs.trim_start_matches('/').trim_end_matches('/');
        walk(root, rel, keep, &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

fn walk(root: &Path, rel: &str, keep: &KeepList, out: &mut Vec<Member>) -> io::Result<()> {
    let p = root.join(rel);
    let md = match fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if md.is_dir() {
        let mut names: Vec<String> = fs::read_dir(&p)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            walk(root, &format!("{rel}/{n}"), keep, out)?;
        }
    } else if md.is_file() && keep.allows(rel) {
        out.push(Member {
            path: rel.to_string(),
            mode: md.mode() & 0o7777,
            mtime: md.mtime().max(0) as u64,
            data: fs::read(&p)?,
        });
    }
    Ok(())
}

/// Writes `files` as the next generation in `host_dir` (`/RAMUX/<hostname>` on the mounted
/// key) and prunes to `keep_n`. Order: tar, fsync, hash file, fsync, directory fsync, then the
/// deletions and a last directory fsync. A cut anywhere leaves the previous generation valid.
pub fn commit(
    host_dir: &Path,
    files: Vec<Member>,
    origin: &Origin,
    keep_n: usize,
) -> io::Result<Gen> {
    fs::create_dir_all(host_dir)?;
    let listing = list(host_dir)?;
    let g = listing.next();
    let tar = archive::build(files).map_err(io::Error::other)?;
    write_new(&host_dir.join(g.tar_name()), &tar)?;
    write_new(
        &host_dir.join(g.sum_name()),
        sum_file(g, &tar, origin).as_bytes(),
    )?;
    File::open(host_dir)?.sync_all()?;
    let valid = valid_gens(host_dir, &listing);
    for name in listing.prune(g, &valid, keep_n) {
        fs::remove_file(host_dir.join(name))?;
    }
    File::open(host_dir)?.sync_all()?;
    Ok(g)
}

/// What the first [`PROBE_BYTES`] of a device or disk image say: None when it is neither FAT
/// nor ext (PID 1 probing disks, vlaunch checking a key image).
pub fn probe_path(path: &Path) -> io::Result<Option<Probe>> {
    let mut head = Vec::with_capacity(PROBE_BYTES);
    File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(label::probe(&head))
}

/// The generations in `host_dir` whose hash checks, newest first.
pub fn valid_gens(host_dir: &Path, listing: &Listing) -> Vec<Gen> {
    listing
        .newest_first()
        .filter(|g| check_gen(host_dir, *g).is_ok())
        .collect()
}

/// Whether generation `g` in `host_dir` is valid, and if not why (a file that cannot be read
/// counts as missing).
pub fn check_gen(host_dir: &Path, g: Gen) -> Result<(), Invalid> {
    let read = |n: String| fs::read(host_dir.join(n));
    match (read(g.tar_name()), read(g.sum_name())) {
        (Err(_), _) => Err(Invalid::Missing(Part::Tar)),
        (_, Err(_)) => Err(Invalid::Missing(Part::Sum)),
        (Ok(t), Ok(s)) => crate::generation::check(g, &t, &s),
    }
}

/// The generation names in `host_dir` (empty when it does not exist).
pub fn list(host_dir: &Path) -> io::Result<Listing> {
    let names: Vec<String> = match fs::read_dir(host_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e),
    };
    Ok(Listing::new(names.iter().map(String::as_str)))
}

/// What boot did: the choice, and the files it wrote under the root.
#[derive(Debug, Default)]
pub struct Applied {
    pub choice: Choice,
    pub written: Vec<PathBuf>,
    pub refused: Vec<(String, String)>,
}

/// Applies the newest generation in `host_dir` that checks, unpacks through `keep`, and that
/// `accept` takes, writing its files under `root`. Reads only: the key is never written here.
pub fn apply(
    host_dir: &Path,
    keep: &KeepList,
    root: &Path,
    mut accept: impl FnMut(Gen, &[Member]) -> Result<(), String>,
) -> io::Result<Applied> {
    let listing = list(host_dir)?;
    let mut taken = None;
    let choice = select::choose(
        &listing,
        |n| fs::read(host_dir.join(n)).map_err(|e| e.to_string()),
        |g, tar| {
            let u = archive::unpack(tar, keep)?;
            accept(g, &u.files)?;
            taken = Some(u);
            Ok(())
        },
    );
    let mut out = Applied {
        choice,
        ..Applied::default()
    };
    if let Some(u) = taken {
        for m in &u.files {
            out.written.push(place(root, m)?);
        }
        out.refused = u.refused;
    }
    Ok(out)
}

/// Copies the files an admin dropped into `dir` (`/RAMUX/<hostname>/overrides` on the key, laid
/// out as the root is) that `keep` allows onto `root`, after the generation, so an edit made on
/// a PC wins. Symlinks and files outside the list are left out, as a generation's are.
pub fn overrides(dir: &Path, keep: &KeepList, root: &Path) -> io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(vec![]);
    }
    collect(dir, keep)?.iter().map(|m| place(root, m)).collect()
}

/// Writes one file under `root` through a temporary name and a rename, with its mode and mtime.
pub fn place(root: &Path, m: &Member) -> io::Result<PathBuf> {
    let dest = root.join(&m.path);
    if let Some(d) = dest.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = dest.with_extension("ramux-keep.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&m.data)?;
    f.set_permissions(fs::Permissions::from_mode(m.mode))?;
    f.set_modified(UNIX_EPOCH + Duration::from_secs(m.mtime))?;
    fs::rename(&tmp, &dest)?;
    Ok(dest)
}

/// Creates `path` (never over an existing file: a generation is written once) and fsyncs it.
fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Reject;

    fn origin() -> Origin {
        Origin {
            time: 1_700_000_000,
            image: "router-test".into(),
            files: 0,
            message: "test".into(),
        }
    }

    fn system(root: &Path) {
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        fs::write(root.join("etc/ssh/ssh_host_ed25519_key"), b"secret").unwrap();
        fs::set_permissions(
            root.join("etc/ssh/ssh_host_ed25519_key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        fs::write(root.join("etc/ssh/sshd_config"), b"not kept").unwrap();
        fs::create_dir_all(root.join("etc/ramux/local.d/sub")).unwrap();
        fs::write(root.join("etc/ramux/local.d/sub/10.nft"), b"rule").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("etc/ramux/local.d/evil")).unwrap();
    }

    fn keep() -> KeepList {
        KeepList::parse("/etc/ssh/ssh_host_ed25519_key\n/etc/ramux/local.d/\n/etc/absent\n")
            .unwrap()
    }

    #[test]
    fn commit_then_apply_restores_the_kept_files_only() {
        let t = tempfile::tempdir().unwrap();
        let (sys, key, fresh) = (
            t.path().join("sys"),
            t.path().join("key/RAMUX/rt1"),
            t.path().join("fresh"),
        );
        system(&sys);
        let files = collect(&sys, &keep()).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/ramux/local.d/sub/10.nft",
                "etc/ssh/ssh_host_ed25519_key"
            ]
        );
        assert_eq!(commit(&key, files.clone(), &origin(), 3).unwrap(), Gen(1));
        let a = apply(&key, &keep(), &fresh, |_, _| Ok(())).unwrap();
        assert_eq!(a.choice.applied, Some(Gen(1)));
        assert_eq!(a.written.len(), 2);
        let k = fresh.join("etc/ssh/ssh_host_ed25519_key");
        assert_eq!(fs::read(&k).unwrap(), b"secret");
        assert_eq!(fs::metadata(&k).unwrap().mode() & 0o777, 0o600);
        assert!(!fresh.join("etc/ssh/sshd_config").exists());
        assert!(!fresh.join("etc/ramux/local.d/evil").exists());
        // The same files give the same tar, byte for byte.
        commit(&key, files, &origin(), 3).unwrap();
        assert_eq!(
            fs::read(key.join("gen-000001.tar")).unwrap(),
            fs::read(key.join("gen-000002.tar")).unwrap()
        );
    }

    #[test]
    fn prune_keeps_n_and_a_bad_newest_falls_back() {
        let t = tempfile::tempdir().unwrap();
        let (sys, key) = (t.path().join("sys"), t.path().join("RAMUX/rt1"));
        system(&sys);
        for i in 1..=5u8 {
            fs::write(sys.join("etc/ramux/local.d/sub/10.nft"), [i]).unwrap();
            commit(&key, collect(&sys, &keep()).unwrap(), &origin(), 3).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(&key)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 6, "{names:?}");
        assert_eq!(names[0], "gen-000003.sha256");
        // Corrupt the newest tar (a cut mid-write, or an edit on a PC): boot takes gen 4.
        let mut tar = fs::read(key.join("gen-000005.tar")).unwrap();
        let last = tar.len() - 1100;
        tar[last] ^= 0xff;
        fs::write(key.join("gen-000005.tar"), tar).unwrap();
        let root = t.path().join("root");
        let a = apply(&key, &keep(), &root, |_, _| Ok(())).unwrap();
        assert_eq!(a.choice.applied, Some(Gen(4)));
        assert!(matches!(
            a.choice.rejected[..],
            [(Gen(5), Reject::Invalid(_))]
        ));
        assert_eq!(
            fs::read(root.join("etc/ramux/local.d/sub/10.nft")).unwrap(),
            [4]
        );
        // A validator that refuses gen 4 (say labwall on its site.lw) gets gen 3.
        let a = apply(&key, &keep(), &root, |g, _| {
            if g == Gen(4) {
                Err("bad".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(a.choice.applied, Some(Gen(3)));
        // No key directory: nothing applied, nothing written.
        let a = apply(&t.path().join("none"), &keep(), &root, |_, _| Ok(())).unwrap();
        assert_eq!((a.choice.applied, a.written.len()), (None, 0));
    }

    #[test]
    fn overrides_win_over_the_generation_and_obey_the_list() {
        let t = tempfile::tempdir().unwrap();
        let (ov, root) = (t.path().join("overrides"), t.path().join("root"));
        assert!(overrides(&ov, &keep(), &root).unwrap().is_empty());
        system(&ov);
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        fs::write(root.join("etc/ssh/ssh_host_ed25519_key"), b"old").unwrap();
        let got = overrides(&ov, &keep(), &root).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let k = fs::read(root.join("etc/ssh/ssh_host_ed25519_key")).unwrap();
        assert_eq!(k, b"secret");
        assert!(!root.join("etc/ssh/sshd_config").exists());
        assert!(!root.join("etc/ramux/local.d/evil").exists());
    }
}
