//! The functional KVM probe (docs/launcher.md, "KVM or TCG"): boot a real kernel under the
//! accelerator and see whether it gets to the end of its boot.
//!
//! Opening `/dev/kvm`, creating a VM, even running a boot sector all succeed on a host whose KVM
//! cannot run a Linux guest (kvm_pvm), so only booting a kernel proves anything. The probe needs
//! no initramfs: the kernel is started with a root device that does not exist, and its
//! "Kernel panic - not syncing" (printed at the very end of kernel init, after the stage where
//! the broken KVM hangs) is the marker. With `panic=-1 -no-reboot` QEMU then exits by itself.
//! The kernel comes from the ISO being launched (or `$VLAUNCH_PROBE_KERNEL`); the result is
//! cached per boot of the host and QEMU version, since neither changes without a reboot or an
//! upgrade.

use crate::accel::{Accel, ProbeOutcome};
use crate::qemu::QEMU;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Printed by the kernel when it cannot mount the (non-existent) root: the end of kernel boot.
pub const MARKER: &str = "Kernel panic - not syncing";

/// Where kernels live in the ISOs vbuild, Debian live, Fedora and Ubuntu make, in that order.
pub const KERNEL_PATHS: &[&str] = &[
    "/images/pxeboot/vmlinuz",
    "/boot/vmlinuz",
    "/live/vmlinuz",
    "/isolinux/vmlinuz",
    "/casper/vmlinuz",
];

/// Copies the kernel out of `iso` into `dest_dir` with xorriso (package `xorriso`).
pub fn extract_kernel(iso: &Path, dest_dir: &Path) -> Result<PathBuf> {
    let out = dest_dir.join("vmlinuz");
    for k in KERNEL_PATHS {
        let st = Command::new("xorriso")
            .args(["-no_rc", "-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", k])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context(
                "running xorriso to extract the kernel (install it with `apt-get install xorriso`)",
            )?;
        if st.success() && out.is_file() {
            return Ok(out);
        }
    }
    bail!(
        "no kernel found in {} at {}: set VLAUNCH_PROBE_KERNEL=/path/to/vmlinuz",
        iso.display(),
        KERNEL_PATHS.join(", ")
    )
}

/// Boots `kernel` under `accel` and reports whether it reached [`MARKER`] within `timeout`.
pub fn run_probe(kernel: &Path, accel: Accel, timeout: Duration) -> Result<ProbeOutcome> {
    let mut cmd = Command::new(QEMU);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-m",
        "256",
    ]);
    match accel {
        Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => cmd.args(["-accel", "tcg"]),
    };
    cmd.arg("-kernel")
        .arg(kernel)
        .args([
            "-append",
            "console=ttyS0 panic=-1 root=/dev/vlaunch-probe-none rootwait=0 quiet",
            "-serial",
            "stdio",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    use std::os::unix::process::CommandExt;
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {QEMU} for the KVM probe"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut seen = Vec::new();
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => {
                seen.extend_from_slice(&chunk);
                if String::from_utf8_lossy(&seen).contains(MARKER) {
                    break ProbeOutcome::Booted;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: QEMU exited without the marker.
                let st = child.wait()?;
                let e = err_reader.join().unwrap_or_default();
                let e = e.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
                break ProbeOutcome::Failed(format!(
                    "QEMU exited ({st}) after {:.1} s without the kernel's end-of-boot marker: {e}",
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
        if t0.elapsed() >= timeout {
            break ProbeOutcome::Failed(format!(
                "no kernel end-of-boot marker within {} s (QEMU hangs, as on hosts where /dev/kvm is \
                 software nested virtualisation)",
                timeout.as_secs()
            ));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    Ok(outcome)
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    boot_id: String,
    qemu_version: String,
    outcome: ProbeOutcome,
}

/// Cache key parts: the host's boot id and QEMU's version line.
fn cache_key() -> Result<(String, String)> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .context("reading /proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string();
    let v = Command::new(QEMU)
        .arg("--version")
        .output()
        .with_context(|| format!("running {QEMU} --version"))?;
    let qemu_version = String::from_utf8_lossy(&v.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    Ok((boot_id, qemu_version))
}

/// Where the probe result is cached.
pub fn cache_path() -> PathBuf {
    std::env::var_os("VLAUNCH_PROBE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ramux/kvm-probe.json"))
}

/// The KVM probe with its cache: returns the cached outcome for this boot and QEMU version, or
/// runs [`run_probe`] on the kernel of `iso` (15 s timeout) and stores the outcome.
/// `$VLAUNCH_PROBE_CACHE` and `$VLAUNCH_PROBE_KERNEL` override the cache file and the kernel.
pub fn cached_probe(iso: &Path) -> Result<ProbeOutcome> {
    let kernel = std::env::var_os("VLAUNCH_PROBE_KERNEL").map(PathBuf::from);
    cached_probe_with(
        iso,
        &cache_path(),
        kernel.as_deref(),
        Accel::Kvm,
        Duration::from_secs(15),
    )
    .map(|(o, _)| o)
}

/// [`cached_probe`] with everything explicit; also says whether the answer came from the cache.
/// `accel` exists so tests can exercise the whole path under TCG.
pub fn cached_probe_with(
    iso: &Path,
    cache: &Path,
    kernel: Option<&Path>,
    accel: Accel,
    timeout: Duration,
) -> Result<(ProbeOutcome, bool)> {
    let (boot_id, qemu_version) = cache_key()?;
    let qemu_version = format!("{qemu_version} accel={accel}");
    if let Ok(b) = std::fs::read(cache) {
        if let Ok(e) = serde_json::from_slice::<CacheEntry>(&b) {
            if e.boot_id == boot_id && e.qemu_version == qemu_version {
                return Ok((e.outcome, true));
            }
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("vlaunch-probe-")
        .tempdir()?;
    let kernel = match kernel {
        Some(k) => k.to_path_buf(),
        None => extract_kernel(iso, tmp.path())?,
    };
    let outcome = run_probe(&kernel, accel, timeout)?;
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let entry = CacheEntry {
        boot_id,
        qemu_version,
        outcome: outcome.clone(),
    };
    // Temp file + rename: a concurrent vlaunch never reads half an entry.
    let t = cache.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&t, serde_json::to_vec(&entry)?).is_ok() {
        let _ = std::fs::rename(&t, cache);
    }
    Ok((outcome, false))
}
