//! vbuild: role profile -> reproducible hybrid live ISO whose initramfs is the whole system.
//!
//! Pipeline (docs/builder.md has the design): profile (merged over `profiles/common`) ->
//! cached base layer (Debian packages via `mmdebstrap --variant=extract` + kernel module closure,
//! compressed newc cpio) -> small top layer (overlays, tera templates, ramux binaries,
//! `/etc/ramux/appliance.toml`) -> `IsoWriter` (xorriso) -> ISO + manifest + SHA256SUMS.
//! Every timestamp comes from one build clock ([`clock`]); nothing reads the wall clock.

pub mod base;
pub mod build;
pub mod clock;
pub mod closure;
pub mod cpio;
pub mod instance;
pub mod iso;
pub mod manifest;
pub mod profile;
pub mod release;
pub mod rootfs;
pub mod sbom;
pub mod secrets;
pub mod vpn_client;

pub use build::{build_iso, build_release, BuildReport, BuildRequest};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Writes `data` to `path` through a temp file in the same directory and a rename, so readers
/// (and an interrupted build) never see a partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut t = tempfile::Builder::new()
        .prefix(&tmp_prefix(".vbuild-"))
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write {}: cannot create a file in {}",
                path.display(),
                dir.display()
            )
        })?;
    t.write_all(data)
        .and_then(|()| t.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    set_mode(t.path(), 0o644)?;
    t.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir)
}

/// fsync a directory, so a rename into it survives a crash (the data was synced before the
/// rename; without this the new name can vanish and the old, or an empty file, come back).
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

pub(crate) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Prefix for temp files and directories: `<base><pid>-`, so [`sweep_stale`] can tell which
/// ones belong to a build that was killed (Drop guards do not run on SIGINT/SIGKILL).
pub(crate) fn tmp_prefix(base: &str) -> String {
    format!("{base}{}-", std::process::id())
}

/// An exclusive flock on the directory `dir` itself, held until the returned handle is dropped.
/// Publishing into an output directory takes it, so parallel builds into one directory do not
/// mix one's ISO with another's manifest or lose a SHA256SUMS line, and no lock file is left
/// in the directory (it holds only what is published).
pub fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir)
        .with_context(|| format!("cannot open directory {} to lock it", dir.display()))?;
    // SAFETY: flock on a valid open descriptor; released when `f` is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot lock directory {}", dir.display()));
    }
    Ok(f)
}

/// Where running builds hold their owner locks (global tmpfs, like the module stage).
const OWNERS_DIR: &str = "/dev/shm/vbuild-owners";

/// A running build's claim on its pid: an flock'd `OWNERS_DIR/<pid>-<nonce>.lock`, held until
/// dropped. flock is seen across PID namespaces, where `/proc/<pid>` of a build in another
/// namespace (a container) looks dead and its work directories were swept from under it.
pub struct Owner(#[allow(dead_code)] Option<tempfile::NamedTempFile>);

/// Claims the current pid for the build's lifetime (best effort: without /dev/shm, no claim).
pub fn claim_owner() -> Owner {
    Owner(claim_in(Path::new(OWNERS_DIR), std::process::id()))
}

fn claim_in(dir: &Path, pid: u32) -> Option<tempfile::NamedTempFile> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).ok()?;
    let f = tempfile::Builder::new()
        .prefix(&format!("{pid}-"))
        .suffix(".lock")
        .tempfile_in(dir)
        .ok()?;
    // SAFETY: flock on a valid descriptor, released when the file is closed.
    (unsafe { libc::flock(f.as_file().as_raw_fd(), libc::LOCK_EX) } == 0).then_some(f)
}

/// Someone holds a lock named for `pid` in `owners` (a live build, maybe in another namespace).
fn claimed(owners: &Path, pid: u32) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(rd) = std::fs::read_dir(owners) else {
        return false;
    };
    let prefix = format!("{pid}-");
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .any(|e| {
            let Ok(f) = std::fs::File::open(e.path()) else {
                return false;
            };
            // SAFETY: flock on a valid descriptor; a free lock is released at once on close.
            let free = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            if free {
                let _ = std::fs::remove_file(e.path()); // its build died without cleaning up
            }
            !free
        })
}

/// Removes entries of `dir` named `...<marker><pid>-...` whose process no longer exists.
pub(crate) fn sweep_stale(dir: &Path, marker: &str) {
    sweep_stale_with(dir, marker, Path::new(OWNERS_DIR))
}

fn sweep_stale_with(dir: &Path, marker: &str, owners: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(i) = name.find(marker) else { continue };
        let rest = &name[i + marker.len()..];
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid == std::process::id()
            || Path::new(&format!("/proc/{pid}")).exists()
            || claimed(owners, pid);
        if !alive {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Removes a temp directory when dropped (also on error paths).
pub(crate) struct RemoveOnDrop(pub PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Host tools: presence checks that name the Debian package, and version strings.
pub mod tool {
    use anyhow::{bail, Result};
    use std::process::Command;

    /// Fails with the Debian package to install when `name` is not on PATH.
    pub fn require(name: &str, package: &str) -> Result<()> {
        if find(name).is_none() {
            bail!("host tool '{name}' not found: install it with `apt-get install {package}`");
        }
        Ok(())
    }

    pub fn find(name: &str) -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH")?;
        let mut dirs: Vec<_> = std::env::split_paths(&path).collect();
        // depmod lives in /sbin, which is not on every user's PATH.
        dirs.extend(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from));
        dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
    }

    /// First line of `tool args` (stdout, else stderr).
    pub fn version(name: &str, args: &[&str]) -> Option<String> {
        let exe = find(name)?;
        let out = Command::new(exe).args(args).output().ok()?;
        let s = if out.stdout.is_empty() {
            out.stderr
        } else {
            out.stdout
        };
        String::from_utf8_lossy(&s)
            .lines()
            .next()
            .map(|l| l.trim().to_string())
    }
}

/// Progress display: a spinner with the current step on a terminal, plain lines otherwise,
/// nothing with `--quiet`.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .expect("static template"),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress { bar, quiet }
    }

    /// Announces a step.
    pub fn step(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if !self.quiet => eprintln!("vbuild: {msg}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_dead_owners() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join("layer-x.tmp-999999999-abc");
        let alive = d
            .path()
            .join(format!("layer-x.tmp-{}-abc", std::process::id()));
        let other = d.path().join("layer-x");
        let dead_file = d.path().join(".vbuild-999999998-f");
        for p in [&dead, &alive, &other] {
            std::fs::create_dir_all(p.join("sub")).unwrap();
        }
        std::fs::write(&dead_file, b"x").unwrap();
        sweep_stale(d.path(), ".tmp-");
        sweep_stale(d.path(), ".vbuild-");
        assert!(!dead.exists() && !dead_file.exists());
        assert!(alive.exists() && other.exists());
        assert!(tmp_prefix("a-").starts_with(&format!("a-{}-", std::process::id())));
    }

    /// A build in another PID namespace: its pid is not in our /proc, but it holds its claim,
    /// so its work directory stays; once the claim is gone the leftovers are swept.
    #[test]
    fn sweep_spares_a_build_claimed_from_another_namespace() {
        let d = tempfile::tempdir().unwrap();
        let owners = d.path().join("owners");
        let work = d.path().join(".work-999999997-x");
        std::fs::create_dir_all(&work).unwrap();
        let claim = claim_in(&owners, 999_999_997).expect("a claim");
        sweep_stale_with(d.path(), ".work-", &owners);
        assert!(work.exists(), "swept while its owner runs elsewhere");
        drop(claim);
        sweep_stale_with(d.path(), ".work-", &owners);
        assert!(!work.exists());
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(write_atomic(Path::new("/proc/nope/f"), b"x").is_err());
    }
}
