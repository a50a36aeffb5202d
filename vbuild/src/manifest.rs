//! The build manifest (`<iso>.manifest.json`) and `SHA256SUMS` maintenance.
//!
//! The manifest describes the inputs and outputs of one build and nothing about the machine it
//! ran on: no absolute paths, durations or host names, so two builds of the same inputs write the
//! same bytes. Maps are `BTreeMap` so key order is fixed.

use crate::base::Package;
use crate::clock::ClockSource;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the manifest of `iso` is: `<iso>.manifest.json` beside it.
pub fn path_for(iso: &Path) -> PathBuf {
    PathBuf::from(format!("{}.manifest.json", iso.display()))
}

pub const FORMAT: &str = "ramux-manifest-1";

#[derive(Debug, Clone, Serialize)]
pub struct FileSum {
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Clock {
    pub epoch: i64,
    pub utc: String,
    pub source: ClockSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kernel {
    pub release: String,
    /// Debian version of linux-image-<release>, when the base came from Debian.
    pub package_version: Option<String>,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Modules {
    pub wanted: Vec<String>,
    /// Load order, paths relative to /lib/modules/<release>/.
    pub closure: Vec<String>,
    pub builtin: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub profile: String,
    pub role: String,
    pub hostname: String,
    pub build_clock: Clock,
    /// Base description: kind ("debian" / "tarball"), suite, mirror, requested packages, sha256.
    pub base: BTreeMap<String, serde_json::Value>,
    /// sha256 of every input file, keyed by its path relative to the checkout root (profile
    /// files, templates, overlays), `bin/<name>` for ramux binaries, `site/<name>` for the site.
    pub inputs: BTreeMap<String, String>,
    /// `--set` values.
    pub set: BTreeMap<String, String>,
    /// The site secrets the appliance expects in its overlay, per service: paths below
    /// /run/ramux/secrets, names only, never content (docs/secrets.md). Empty: it needs none.
    pub secrets: BTreeMap<String, Vec<String>>,
    pub packages: Vec<Package>,
    pub kernel: Kernel,
    pub modules: Modules,
    pub kernel_cmdline: String,
    pub tool_versions: BTreeMap<String, String>,
    /// iso, initrd (the concatenation), initrd-base and initrd-top layers.
    pub outputs: BTreeMap<String, FileSum>,
    pub initrd_uncompressed_size: u64,
    /// Compressed + uncompressed initrd + 128 MiB, rounded up to 64 MiB: both copies sit in RAM
    /// while the kernel unpacks (docs/live-iso.md, Boot model).
    pub recommended_min_ram_mib: u64,
}

impl Manifest {
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }
}

pub fn recommended_ram_mib(compressed: u64, uncompressed: u64) -> u64 {
    let mib = (compressed + uncompressed).div_ceil(1 << 20) + 128;
    mib.div_ceil(64) * 64
}

/// `YYYY-MM-DDThh:mm:ssZ` for the manifest.
pub fn utc(epoch: i64) -> String {
    let d = crate::iso::date16(epoch);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14]
    )
}

/// Merges `entries` (file name, sha256) into SHA256SUMS text: same-name lines are replaced,
/// the rest kept, sorted by file name (pure).
pub fn merge_sums(existing: &str, entries: &[(String, String)]) -> String {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for line in existing.lines() {
        if let Some((sum, name)) = line.split_once("  ") {
            if sum.len() == 64 && !name.is_empty() {
                map.insert(name.to_string(), sum.to_string());
            }
        }
    }
    for (name, sum) in entries {
        map.insert(name.clone(), sum.clone());
    }
    map.iter().map(|(n, s)| format!("{s}  {n}\n")).collect()
}

/// Updates `dir/SHA256SUMS` under an exclusive lock on `dir` (parallel builds share images/).
pub fn update_sums(dir: &Path, entries: &[(String, String)]) -> Result<()> {
    let _lock = crate::lock_dir(dir)?;
    update_sums_locked(dir, entries)
}

/// [`update_sums`] for a caller that already holds [`crate::lock_dir`] on `dir`. A
/// `SHA256SUMS.minisig` beside it no longer matches, so it is removed (sign again after the
/// last build: `vbuild release --sign`).
pub fn update_sums_locked(dir: &Path, entries: &[(String, String)]) -> Result<()> {
    let path = dir.join(SUMS);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = merge_sums(&old, entries);
    if new != old {
        remove_stale_signature(dir)?;
    }
    crate::write_atomic(&path, new.as_bytes())
}

fn remove_stale_signature(dir: &Path) -> Result<()> {
    let sig = dir.join(SUMS_SIG);
    match std::fs::remove_file(&sig) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the stale {}", sig.display()))
        }
        _ => Ok(()),
    }
}

/// The checksum list of an output directory.
pub const SUMS: &str = "SHA256SUMS";
/// Its minisign signature.
pub const SUMS_SIG: &str = "SHA256SUMS.minisig";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_merge() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = "c".repeat(64);
        let old = format!("{a}  x.iso\n{b}  y.iso\ngarbage\n");
        let new = merge_sums(
            &old,
            &[("x.iso".into(), c.clone()), ("w.iso".into(), a.clone())],
        );
        assert_eq!(new, format!("{a}  w.iso\n{c}  x.iso\n{b}  y.iso\n"));
    }

    #[test]
    fn ram_and_dates() {
        assert_eq!(recommended_ram_mib(30 << 20, 100 << 20), 320);
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
