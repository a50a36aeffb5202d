//! `vlaunch burn`: the arguments (clap, flattened into vlaunch), confirmation, progress,
//! SIGINT and exit codes. vlaunch only forwards to [`run`].

use crate::cd::{burn_cd, CdTarget};
use crate::detect::{list_disks, resolve_target, Disk, Root, Target};
use crate::io::{self, BurnError, Phase, Progress};
use crate::policy::{decide, human, Policy, Refusal};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const EXAMPLES: &str = "\
Examples:
  vlaunch burn --list                       # candidate sticks/cards, and why every other disk is not one
  vlaunch burn --list --json                # the same for scripts
  vlaunch burn images/RT1.iso /dev/sdb      # shows the stick, asks you to type `sdb`, writes, verifies
  vlaunch burn images/RT1.iso /dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C53-0:0 --yes --json
  vlaunch burn images/RT1.iso /dev/mmcblk0 --yes           # an SD card
  vlaunch burn images/RT1.iso /dev/sr0 --cd                # a CD/DVD through xorriso, then -check_media
  vlaunch burn images/RT1.iso stdio:/tmp/cd.img --cd --yes # xorriso's pseudo-drive (tests)
  vlaunch burn images/RT1.iso /dev/loop3 --allow-loop --yes  # a loop device (tests, benchmarks)

Refused (exit 2), each with its reason: a partition instead of a disk; a device that cannot be
opened O_EXCL; it or a partition holds /, swap, a mount, or a dm/md holder; not on the usb or mmc
bus (--any-bus); larger than 64 GB (--allow-large); smaller than the image; read-only; a loop
device (--allow-loop); an optical drive without --cd. Exit 3: I/O or xorriso error; 4: the
read-back differs from the image; 130: Ctrl-C (the stick is incomplete). See docs/burn.md.";

/// `vlaunch burn` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BurnArgs {
    /// List candidate disks (model, size, bus, removable, mounts) and why the others are not.
    #[arg(long, conflicts_with_all = ["iso", "device", "cd", "yes", "no_verify"])]
    pub list: bool,
    /// The image to write.
    #[arg(required_unless_present = "list")]
    pub iso: Option<PathBuf>,
    /// The whole disk: /dev/sdX, /dev/mmcblkN, a /dev/disk/by-id link; with --cd /dev/srN or
    /// stdio:FILE.
    #[arg(required_unless_present = "list", value_name = "DEVICE")]
    pub device: Option<String>,
    /// Do not ask; write at once (scripts). Without it a terminal is required.
    #[arg(long)]
    pub yes: bool,
    /// Skip the read-back verification.
    #[arg(long)]
    pub no_verify: bool,
    /// JSON on stdout: one progress object per line, then one result object.
    #[arg(long)]
    pub json: bool,
    /// Allow a disk that is not on the usb or mmc bus (ata, nvme, virtio, scsi...).
    #[arg(long)]
    pub any_bus: bool,
    /// Allow a disk larger than 64 GB.
    #[arg(long)]
    pub allow_large: bool,
    /// Allow a loop device (tests and benchmarks).
    #[arg(long)]
    pub allow_loop: bool,
    /// Burn an optical disc (or xorriso's stdio:FILE pseudo-drive) with xorriso.
    #[arg(long)]
    pub cd: bool,
}

impl BurnArgs {
    fn policy(&self, image_bytes: Option<u64>) -> Policy {
        Policy {
            any_bus: self.any_bus,
            allow_large: self.allow_large,
            allow_loop: self.allow_loop,
            image_bytes,
        }
    }
}

/// One row of `--list`.
#[derive(Debug, serde::Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub disk: Disk,
    pub candidate: bool,
    pub refusals: Vec<RefusalOut>,
}

#[derive(Debug, serde::Serialize)]
pub struct RefusalOut {
    #[serde(flatten)]
    pub refusal: Refusal,
    pub message: String,
    #[serde(rename = "override")]
    pub override_flag: Option<&'static str>,
}

fn out(r: &[Refusal]) -> Vec<RefusalOut> {
    r.iter()
        .map(|r| RefusalOut {
            refusal: r.clone(),
            message: r.message(),
            override_flag: r.override_flag(),
        })
        .collect()
}

/// The listing under `root`. With `probe`, every disk the rules accept is also opened
/// `O_RDONLY|O_EXCL` at `/dev/NAME` (only meaningful on the real root).
pub fn list_entries(root: &Root, policy: &Policy, probe: bool) -> Vec<Entry> {
    list_disks(root)
        .into_iter()
        .map(|d| {
            let mut r = decide(&d, policy);
            if probe && r.is_empty() {
                if let Err(e) = io::probe_exclusive(Path::new(&d.path)) {
                    r.push(Refusal::InUse {
                        error: e.to_string(),
                    });
                }
            }
            Entry {
                candidate: r.is_empty(),
                refusals: out(&r),
                disk: d,
            }
        })
        .collect()
}

fn describe(d: &Disk) -> String {
    let what: Vec<&str> = [d.vendor.as_deref(), d.model.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let mounts: Vec<String> = d
        .uses
        .iter()
        .map(|u| match u {
            crate::detect::Use::Mount {
                dev, mountpoint, ..
            } => format!("{dev} on {mountpoint}"),
            crate::detect::Use::Swap { dev } => format!("{dev} swap"),
            crate::detect::Use::Holder { dev, holder, .. } => format!("{dev} held by {holder}"),
        })
        .collect();
    format!(
        "{:<14} {:>9}  {:<7} {:<13} {:<28} {}",
        d.path,
        human(d.size_bytes),
        d.transport.as_deref().unwrap_or("-"),
        if d.removable {
            "removable"
        } else {
            "not-removable"
        },
        if what.is_empty() {
            "-".to_string()
        } else {
            what.join(" ")
        },
        if mounts.is_empty() {
            "nothing mounted".to_string()
        } else {
            mounts.join(", ")
        }
    )
}

fn list(a: &BurnArgs) -> i32 {
    let root = Root::real();
    let entries = list_entries(&root, &a.policy(None), true);
    if a.json {
        println!("{}", json!({ "disks": entries }));
        return 0;
    }
    let (c, n): (Vec<&Entry>, Vec<&Entry>) = entries.iter().partition(|e| e.candidate);
    println!("Candidates:");
    if c.is_empty() {
        println!("  (none: plug in a USB stick or SD card)");
    }
    for e in &c {
        println!("  {}", describe(&e.disk));
    }
    println!("Not candidates:");
    for e in &n {
        println!("  {}", describe(&e.disk));
        for r in &e.refusals {
            println!("      - {}", r.message);
        }
    }
    0
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT/SIGTERM set a flag checked between blocks (no SA_RESTART needed: block device
/// writes are not interrupted by signals).
fn install_stop_handler() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let sa = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(s, &sa) };
    }
}

/// Terminal bar or JSON lines.
struct Reporter {
    json_stdout: bool,
    bar: Option<(Phase, indicatif::ProgressBar)>,
    use_bar: bool,
    last: Option<Instant>,
}

impl Reporter {
    fn new(json: bool) -> Reporter {
        Reporter {
            json_stdout: json,
            use_bar: !json && std::io::stderr().is_terminal(),
            bar: None,
            last: None,
        }
    }

    fn update(&mut self, p: &Progress) {
        if self.use_bar {
            if self.bar.as_ref().map(|b| b.0) != Some(p.phase) {
                if let Some((_, b)) = self.bar.take() {
                    b.finish();
                    eprintln!();
                }
                let b = indicatif::ProgressBar::with_draw_target(
                    Some(p.total),
                    indicatif::ProgressDrawTarget::stderr(),
                );
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>6} [{bar:32}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_prefix(match p.phase {
                    Phase::Write => "write",
                    Phase::Verify => "verify",
                });
                self.bar = Some((p.phase, b));
            }
            if let Some((_, b)) = &self.bar {
                b.set_position(p.done);
            }
            return;
        }
        let now = Instant::now();
        let due = self
            .last
            .map(|l| now.duration_since(l) >= Duration::from_millis(250))
            .unwrap_or(true);
        if !due && p.done < p.total {
            return;
        }
        self.last = Some(now);
        let line = json!({
            "event": "progress", "phase": p.phase, "done": p.done, "total": p.total,
            "rate_bytes_per_s": p.rate().round() as u64,
            "eta_s": if p.rate() > 0.0 { ((p.total - p.done) as f64 / p.rate() * 10.0).round() / 10.0 } else { 0.0 },
        });
        if self.json_stdout {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self) {
        if let Some((_, b)) = self.bar.take() {
            b.finish();
            eprintln!();
        }
    }
}

fn fail(a: &BurnArgs, e: &BurnError) -> i32 {
    let code = e.exit_code();
    if a.json {
        let refusals = match e {
            BurnError::Refused(r) => out(r),
            _ => Vec::new(),
        };
        println!(
            "{}",
            json!({"event": "error", "exit": code, "message": e.to_string(), "refusals": refusals})
        );
    }
    match e {
        BurnError::Refused(r) => {
            let dev = a.device.as_deref().unwrap_or("?");
            eprintln!("vlaunch burn: refusing to write {dev}:");
            for r in r {
                eprintln!("  - {}", r.message());
            }
        }
        _ => eprintln!("vlaunch burn: {e}"),
    }
    code
}

fn confirm(a: &BurnArgs, d: &Disk, iso: &Path, len: u64) -> Result<(), BurnError> {
    if a.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(BurnError::NotConfirmed(format!(
            "no terminal to confirm on: pass --yes to erase {} and write {} without asking",
            d.path,
            iso.display()
        )));
    }
    eprintln!(
        "About to ERASE this whole device and write {} ({}):",
        iso.display(),
        human(len)
    );
    eprintln!("  {}", describe(d));
    for p in &d.partitions {
        eprintln!("    {} {}", p.name, human(p.size_bytes));
    }
    eprint!("Type the device name ({}) to go on: ", d.name);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == d.name || line.trim() == d.path {
        Ok(())
    } else {
        Err(BurnError::NotConfirmed(format!(
            "not confirmed (typed {:?}): nothing written",
            line.trim()
        )))
    }
}

/// `vlaunch burn ...`: the exit code.
pub fn run(a: BurnArgs) -> i32 {
    if a.list {
        return list(&a);
    }
    let (Some(iso), Some(device)) = (a.iso.clone(), a.device.clone()) else {
        eprintln!("vlaunch burn: needs ISO and DEVICE, or --list (see vlaunch burn --help)");
        return 1;
    };
    let len = match std::fs::metadata(&iso) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            eprintln!("vlaunch burn: {} is not a regular file", iso.display());
            return 1;
        }
        Err(e) => {
            eprintln!("vlaunch burn: {}: {e}", iso.display());
            return 1;
        }
    };
    install_stop_handler();
    let mut rep = Reporter::new(a.json);
    let r = if a.cd {
        burn_cd_cli(&a, &iso, &device, &mut rep)
    } else {
        burn_usb(&a, &iso, &device, len, &mut rep)
    };
    rep.finish();
    match r {
        Ok(()) => 0,
        Err(e) => fail(&a, &e),
    }
}

fn burn_cd_cli(
    a: &BurnArgs,
    iso: &Path,
    device: &str,
    rep: &mut Reporter,
) -> Result<(), BurnError> {
    let t = CdTarget::parse(device);
    crate::cd::check_target(&t).map_err(BurnError::Unsuitable)?;
    if !a.yes && !std::io::stdin().is_terminal() {
        return Err(BurnError::NotConfirmed(format!(
            "no terminal to confirm on: pass --yes to burn {} to {device}",
            iso.display()
        )));
    }
    if !a.yes {
        eprint!("Burn {} to {device}? Type yes: ", iso.display());
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if line.trim() != "yes" {
            return Err(BurnError::NotConfirmed(
                "not confirmed: nothing written".into(),
            ));
        }
    }
    if !a.json {
        eprintln!(
            "xorriso -as cdrecord dev={} -dao {}",
            t.xorriso_dev(),
            iso.display()
        );
    }
    let r = burn_cd(iso, &t, !a.no_verify, &STOP, &mut |p| rep.update(p))?;
    rep.finish();
    if a.json {
        println!("{}", json!({"event": "done", "cd": r}));
    } else {
        for l in &r.check_media {
            eprintln!("{l}");
        }
        eprintln!(
            "{}: {} written{}",
            device,
            human(r.image_bytes),
            if r.verified {
                format!(", verified (sha256 {} over the image's length)", r.sha256)
            } else {
                ", NOT verified (--no-verify)".into()
            }
        );
    }
    Ok(())
}

fn burn_usb(
    a: &BurnArgs,
    iso: &Path,
    device: &str,
    len: u64,
    rep: &mut Reporter,
) -> Result<(), BurnError> {
    let root = Root::real();
    let disk = match resolve_target(&root, device) {
        Target::Disk(d) => *d,
        Target::Partition { disk, .. } => {
            return Err(BurnError::Refused(vec![Refusal::Partition { disk }]))
        }
        Target::Missing(_) => return Err(BurnError::Refused(vec![Refusal::NotFound])),
    };
    let refusals = decide(&disk, &a.policy(Some(len)));
    if !refusals.is_empty() {
        return Err(BurnError::Refused(refusals));
    }
    confirm(a, &disk, iso, len)?;
    // Checked again right before writing: the O_EXCL open itself (and BLKGETSIZE64 inside
    // write_image), so what changed since the listing still refuses.
    let dev_path = PathBuf::from(&disk.path);
    let f = io::open_target(&dev_path)?;
    let w = io::write_image(iso, &f, &STOP, &mut |p| rep.update(p))?;
    drop(f);
    let verify = if a.no_verify {
        None
    } else {
        Some(io::verify_device(&dev_path, &w, &STOP, &mut |p| {
            rep.update(p)
        })?)
    };
    rep.finish();
    let wrate = w.bytes as f64 / w.elapsed.as_secs_f64().max(1e-9);
    if a.json {
        println!(
            "{}",
            json!({
                "event": "done", "device": disk.path, "image": iso, "bytes": w.bytes,
                "sha256": io::hex(&w.sha256), "write_s": w.elapsed.as_secs_f64(),
                "write_bytes_per_s": wrate.round() as u64, "tail_bytes": w.tail_bytes,
                "verified": verify.is_some(), "verify_s": verify.map(|d| d.as_secs_f64()),
            })
        );
    } else {
        eprintln!(
            "{}: {} written in {:.1} s ({}/s){}",
            disk.path,
            human(w.bytes),
            w.elapsed.as_secs_f64(),
            human(wrate as u64),
            match verify {
                Some(d) => format!(
                    ", verified in {:.1} s (sha256 {})",
                    d.as_secs_f64(),
                    io::hex(&w.sha256)
                ),
                None => ", NOT verified (--no-verify)".into(),
            }
        );
    }
    Ok(())
}
