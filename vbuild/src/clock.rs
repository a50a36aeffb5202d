//! The build clock: one timestamp for every mtime and date in the outputs.
//!
//! Order: an explicit value (`--epoch` / [`crate::BuildRequest::epoch`]), then the
//! `SOURCE_DATE_EPOCH` environment variable (reproducible-builds.org), then the time of the last
//! git commit touching the profile chain and its overlays, then [`FALLBACK_EPOCH`]. None of them
//! reads the wall clock, so the default build is deterministic too.

use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::process::Command;

/// Used outside a git checkout (e.g. an unpacked release tarball): 2023-11-14T22:13:20Z.
pub const FALLBACK_EPOCH: i64 = 1_700_000_000;

/// Where the build clock came from (recorded in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    Explicit,
    SourceDateEpoch,
    GitCommit,
    Fallback,
}

/// Pure resolution; `git` is only called when the earlier sources are absent.
pub fn resolve(
    explicit: Option<i64>,
    env: Option<&str>,
    git: impl FnOnce() -> Option<i64>,
) -> Result<(i64, ClockSource)> {
    if let Some(e) = explicit {
        return check(e).map(|e| (e, ClockSource::Explicit));
    }
    if let Some(s) = env.map(str::trim).filter(|s| !s.is_empty()) {
        let Ok(e) = s.parse::<i64>() else {
            bail!("SOURCE_DATE_EPOCH={s:?} is not an integer number of seconds since 1970");
        };
        return check(e).map(|e| (e, ClockSource::SourceDateEpoch));
    }
    if let Some(e) = git() {
        return check(e).map(|e| (e, ClockSource::GitCommit));
    }
    Ok((FALLBACK_EPOCH, ClockSource::Fallback))
}

fn check(e: i64) -> Result<i64> {
    // newc stores mtimes in 32 bits; the ISO date format needs a positive year.
    if !(0..=u32::MAX as i64).contains(&e) {
        bail!("build clock {e} is outside 0..=4294967295 (newc cpio mtime limit)");
    }
    Ok(e)
}

/// Commit time of the last commit touching `paths` (relative to `root`), if `root` is a git
/// checkout and git is installed.
pub fn git_commit_time(root: &Path, paths: &[String]) -> Option<i64> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["log", "-1", "--format=%ct", "--"])
        .args(paths)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(
            resolve(Some(5), Some("7"), || Some(9)).unwrap(),
            (5, ClockSource::Explicit)
        );
        assert_eq!(
            resolve(None, Some("7"), || Some(9)).unwrap(),
            (7, ClockSource::SourceDateEpoch)
        );
        assert_eq!(
            resolve(None, Some(""), || Some(9)).unwrap(),
            (9, ClockSource::GitCommit)
        );
        assert_eq!(
            resolve(None, None, || None).unwrap(),
            (FALLBACK_EPOCH, ClockSource::Fallback)
        );
    }

    #[test]
    fn bad_values() {
        assert!(resolve(None, Some("yesterday"), || None)
            .unwrap_err()
            .to_string()
            .contains("SOURCE_DATE_EPOCH"));
        assert!(resolve(Some(-1), None, || None).is_err());
        assert!(resolve(Some(1 << 33), None, || None).is_err());
    }

    #[test]
    fn git_time_of_this_repo_or_none() {
        // Outside a checkout it is None; inside it is a plausible commit time.
        let d = tempfile::tempdir().unwrap();
        assert_eq!(git_commit_time(d.path(), &["x".into()]), None);
    }
}
