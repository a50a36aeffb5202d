//! `--key IMG` (and a lab node's `key = ...`): the site key of a VM, a raw disk image attached
//! as a USB stick (docs/keep.md). An absent image is created the way an admin prepares a real
//! stick: 64 MiB with a FAT32 filesystem labelled RAMUXKEY (Debian's mkfs.fat, no partition
//! table, as `mkfs.fat` on a whole stick leaves it).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ramux_keep::find::DEFAULT_LABEL;

/// Size of a key vlaunch creates.
pub const NEW_KEY_BYTES: u64 = 64 << 20;

/// The key image's absolute path, created and labelled when absent. An existing image is used
/// as it is; one without a FAT or ext filesystem is refused (it would never be found).
pub fn ensure(path: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let what = || format!("--key {}", path.display());
    if !path.exists() {
        create(path).with_context(what)?;
        progress(&format!(
            "key: created {} (64 MiB, FAT32, label {DEFAULT_LABEL})",
            path.display()
        ));
    }
    match ramux_keep::disk::probe_path(path).with_context(what)? {
        Some(p) => progress(&format!(
            "key: {} ({:?}, label {:?}, uuid {})",
            path.display(),
            p.kind,
            p.label,
            p.uuid
        )),
        None => bail!(
            "{}: neither FAT nor ext at its start, so the guest would not find it; remove it \
             to have vlaunch create one, or `mkfs.fat -F 32 -n {DEFAULT_LABEL} {}`",
            what(),
            path.display()
        ),
    }
    std::fs::canonicalize(path).with_context(what)
}

/// Makes the image under a temporary name and renames it into place, so a failed mkfs leaves
/// nothing behind.
fn create(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = tempfile::Builder::new()
        .prefix(".vlaunch-key-")
        .tempfile_in(dir.unwrap_or(Path::new(".")))
        .context("cannot create the key image")?;
    tmp.as_file().set_len(NEW_KEY_BYTES)?;
    let out = Command::new("mkfs.fat")
        .args(["-F", "32", "-n", DEFAULT_LABEL])
        .arg(tmp.path())
        .output()
        .context("mkfs.fat (Debian package dosfstools)")?;
    if !out.status.success() {
        bail!(
            "mkfs.fat failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    tmp.persist_noclobber(path)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_labelled_fat32_key_once_and_refuses_a_blank_image() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("rt1.key");
        let mut lines = vec![];
        let p = ensure(&k, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(p, std::fs::canonicalize(&k).unwrap());
        assert_eq!(std::fs::metadata(&k).unwrap().len(), NEW_KEY_BYTES);
        assert!(lines[0].starts_with("key: created"), "{lines:?}");
        assert!(lines[1].contains("label \"RAMUXKEY\""), "{lines:?}");
        lines.clear();
        ensure(&k, &mut |l| lines.push(l.to_string())).unwrap();
        assert_eq!(
            lines.len(),
            1,
            "an existing key is not recreated: {lines:?}"
        );
        let blank = d.path().join("blank.img");
        std::fs::write(&blank, vec![0; 4096]).unwrap();
        let e = ensure(&blank, &mut |_| {}).unwrap_err();
        assert!(format!("{e:#}").contains("neither FAT nor ext"), "{e:#}");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary left behind");
    }
}
