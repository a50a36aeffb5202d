//! `--cd`: burn through `xorriso -as cdrecord` and verify with `-check_media` plus a sha256 of
//! exactly the image's length read back (cdrecord pads the track, so reading to the end of
//! the medium would never match).

use crate::io::{hex, read_back_sha256, BurnError, Progress};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

/// Where the CD goes: an optical drive, or xorriso's `stdio:FILE` pseudo-drive (tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CdTarget {
    Drive(PathBuf),
    Stdio(PathBuf),
}

impl CdTarget {
    /// `stdio:FILE` or `dev=stdio:FILE` is a pseudo-drive; anything else a drive path.
    pub fn parse(s: &str) -> CdTarget {
        let s = s.strip_prefix("dev=").unwrap_or(s);
        match s.strip_prefix("stdio:") {
            Some(f) => CdTarget::Stdio(PathBuf::from(f)),
            None => CdTarget::Drive(PathBuf::from(s)),
        }
    }

    /// The `dev=` value for xorriso.
    pub fn xorriso_dev(&self) -> String {
        match self {
            CdTarget::Drive(p) => p.display().to_string(),
            CdTarget::Stdio(p) => format!("stdio:{}", p.display()),
        }
    }

    /// What to read back from.
    pub fn path(&self) -> &Path {
        match self {
            CdTarget::Drive(p) | CdTarget::Stdio(p) => p,
        }
    }
}

/// What [`burn_cd`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CdReport {
    pub image_bytes: u64,
    pub sha256: String,
    /// The `Media region` lines of `-check_media`, when verified.
    pub check_media: Vec<String>,
    /// Size of the pseudo-drive file after the burn (shows the padding).
    pub target_bytes: Option<u64>,
    pub verified: bool,
}

/// `stdio:` on a block device would bypass every USB rule: refused. A drive must be an
/// optical one (`srN`); [`crate::detect`] is not consulted for the rest, xorriso checks the
/// medium itself.
pub fn check_target(t: &CdTarget) -> Result<(), String> {
    match t {
        CdTarget::Stdio(p) => {
            if let Ok(md) = std::fs::metadata(p) {
                if std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type()) {
                    return Err(format!(
                        "stdio:{} is a block device; write sticks without --cd (the USB rules apply there)",
                        p.display()
                    ));
                }
            }
            Ok(())
        }
        CdTarget::Drive(p) => {
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with("sr") {
                Ok(())
            } else {
                Err(format!(
                    "{} is not an optical drive (/dev/srN); use stdio:FILE for a pseudo-drive, or drop --cd for a stick",
                    p.display()
                ))
            }
        }
    }
}

/// Parse the `Media region : START, COUNT, + good` lines; true when every one is good (`+`).
pub fn parse_check_media(out: &str) -> (Vec<String>, bool) {
    let lines: Vec<String> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Media region"))
        .map(|l| l.trim().to_string())
        .collect();
    let ok = !lines.is_empty()
        && lines.iter().all(|l| {
            l.split_once(':')
                .and_then(|(_, r)| r.split(',').nth(2))
                .is_some_and(|q| q.trim_start().starts_with('+'))
        });
    (lines, ok)
}

fn run(cmd: &mut Command, what: &str) -> Result<String, BurnError> {
    let out = cmd.output().map_err(|e| {
        BurnError::Tool(format!(
            "{what}: cannot run xorriso: {e} (apt-get install xorriso)"
        ))
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(BurnError::Tool(format!(
            "{what} failed ({}):\n{}",
            out.status,
            tail.join("\n")
        )));
    }
    Ok(text)
}

/// Burn `iso` to `target` with `xorriso -as cdrecord -v dev=... -dao` (`blank=as_needed` and
/// `-eject` are added for a real drive), then, unless `verify` is false, run
/// `xorriso -indev ... -check_media what=disc --` and compare the sha256 of the first
/// image-length bytes of the medium with the image's.
pub fn burn_cd(
    iso: &Path,
    target: &CdTarget,
    verify: bool,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CdReport, BurnError> {
    check_target(target).map_err(BurnError::Unsuitable)?;
    let len = std::fs::metadata(iso)
        .map_err(|e| BurnError::Io(format!("stat {}", iso.display()), e))?
        .len();
    let expected = crate::io::file_sha256(iso)
        .map_err(|e| BurnError::Io(format!("read {}", iso.display()), e))?;
    let mut c = Command::new("xorriso");
    c.args(["-as", "cdrecord", "-v"])
        .arg(format!("dev={}", target.xorriso_dev()))
        .arg("-dao");
    if matches!(target, CdTarget::Drive(_)) {
        c.arg("blank=as_needed");
    }
    c.arg(iso);
    run(&mut c, "xorriso -as cdrecord")?;
    let mut report = CdReport {
        image_bytes: len,
        sha256: hex(&expected),
        check_media: Vec::new(),
        target_bytes: match target {
            CdTarget::Stdio(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            CdTarget::Drive(_) => None,
        },
        verified: false,
    };
    if verify {
        let out = run(
            Command::new("xorriso")
                .arg("-indev")
                .arg(target.xorriso_dev())
                .args(["-check_media", "what=disc", "--"]),
            "xorriso -check_media",
        )?;
        let (lines, ok) = parse_check_media(&out);
        report.check_media = lines;
        if !ok {
            return Err(BurnError::Tool(format!(
                "xorriso -check_media found bad regions: {}",
                report.check_media.join("; ")
            )));
        }
        let got = read_back_sha256(target.path(), len, stop, progress)?;
        if got != expected {
            return Err(BurnError::Mismatch {
                expected: hex(&expected),
                actual: hex(&got),
            });
        }
        report.verified = true;
    }
    if let CdTarget::Drive(p) = target {
        let _ = Command::new("xorriso")
            .args(["-outdev"])
            .arg(p)
            .arg("-eject")
            .arg("all")
            .output();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_media_lines() {
        let (l, ok) = parse_check_media("xorriso : x\nMedia region : 0, 15008, + good\n");
        assert!(ok);
        assert_eq!(l.len(), 1);
        let (_, ok) = parse_check_media(
            "Media region : 0, 100, + good\nMedia region : 100, 32, - unreadable\n",
        );
        assert!(!ok);
        assert!(!parse_check_media("nothing").1);
        assert_eq!(
            CdTarget::parse("dev=stdio:/tmp/x"),
            CdTarget::Stdio("/tmp/x".into())
        );
    }
}
