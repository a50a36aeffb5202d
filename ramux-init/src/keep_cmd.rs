//! `ramux keep commit|status|diff|list|revert`: the admin's side of the site key on a running
//! appliance (docs/keep.md). The key is found as boot finds it (without the wait), mounted
//! read-only except inside `commit`, and unmounted before the command returns.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ramux_keep::allow::KeepList;
use ramux_keep::archive;
use ramux_keep::disk;
use ramux_keep::find::{self, Candidate, Found};
use ramux_keep::generation::{Gen, Origin};
use serde_json::json;

use crate::keep::{self, Mounted};

/// What to do with the key.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Where the key is, its generations, and how many kept files changed since the newest.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Every generation on the key for this host, newest first, with why an invalid one is.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Kept files added (+), changed (~) or removed (-) since the newest valid generation.
    Diff,
    /// Write the kept files as a new generation (fsck.fat -a first if the key is dirty).
    Commit {
        /// One line saying why, stored with the generation.
        #[arg(short, long, default_value = "")]
        message: String,
        /// Generations to keep on the key (older valid ones are pruned).
        #[arg(long, default_value_t = keep::KEEP_N)]
        keep: usize,
    },
    /// Put the kept files back as the newest valid generation (or GEN) has them.
    Revert { gen: Option<u32> },
}

/// Kept files by path.
type Files = BTreeMap<String, Vec<u8>>;
/// `(+|~|-, path)` per kept file that differs.
type Changes = Vec<(char, String)>;

/// Runs `action` for `host` (this machine's hostname unless given) at `now` (seconds since the
/// epoch, stored with a commit); returns the exit status.
pub fn run(action: &Action, host: Option<&str>, now: u64) -> i32 {
    let host = match host {
        Some(h) => h.to_string(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    match run_on(action, &host, now) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ramux keep: {e}");
            1
        }
    }
}

fn run_on(action: &Action, host: &str, now: u64) -> Result<(), String> {
    let key = find_now()?;
    let dev = Path::new("/dev").join(&key.dev);
    // The image's keep list, read once by the actions that compare or write kept files.
    let keep_list = || keep::keep_list(Path::new("/"));
    if let Action::Commit { message, keep } = action {
        return commit(&dev, &key, host, &keep_list()?, message, *keep, now);
    }
    let m = Mounted::new(&dev, key.probe.kind, false)?;
    let dir = m.host_dir(host);
    match action {
        Action::Status { json } => status(&key, &dir, &keep_list()?, *json),
        Action::List { json } => list(&dir, *json),
        Action::Diff => diff(&dir, &keep_list()?),
        Action::Revert { gen } => revert(&dir, &keep_list()?, gen.map(Gen)),
        Action::Commit { .. } => unreachable!("handled above"),
    }
}

/// The key as boot would choose it, looked for once.
fn find_now() -> Result<Candidate, String> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let w = find::want(&cmdline)?;
    let (found, _) = keep::look(&w, Path::new("/sys"), Path::new("/dev"), Duration::ZERO);
    match found {
        Found::Key(k) => Ok(k),
        other => Err(other
            .line(&w, 0)
            .trim_start_matches("ramux: keep ")
            .to_string()),
    }
}

fn commit(
    dev: &Path,
    key: &Candidate,
    host: &str,
    list: &KeepList,
    msg: &str,
    n: usize,
    now: u64,
) -> Result<(), String> {
    if let Some(line) = keep::repair_if_dirty(dev, key)? {
        println!("ramux: keep {line}");
    }
    let files = disk::collect(Path::new("/"), list).map_err(|e| format!("reading files: {e}"))?;
    let count = files.len();
    let origin = Origin {
        time: now,
        image: image_id(),
        files: count,
        message: msg.to_string(),
    };
    let m = Mounted::new(dev, key.probe.kind, true)?;
    let g = disk::commit(&m.host_dir(host), files, &origin, n.max(1))
        .map_err(|e| format!("commit to {}: {e}", key.dev))?;
    drop(m);
    println!(
        "ramux: keep committed {} ({count} files) to {}",
        g.tar_name(),
        key.dev
    );
    Ok(())
}

/// `profile-role` of the running image, from its appliance.toml.
fn image_id() -> String {
    let text = std::fs::read_to_string(crate::config::APPLIANCE_TOML).unwrap_or_default();
    match crate::config::parse(crate::config::APPLIANCE_TOML, &text) {
        Ok(p) => format!("{}-{}", p.appliance.profile, p.appliance.role),
        Err(_) => "unknown".into(),
    }
}

/// Each generation newest first: (name, None when valid or why not, its second line).
fn generations(dir: &Path) -> Result<Vec<(Gen, Option<String>, String)>, String> {
    let listing = disk::list(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(listing
        .newest_first()
        .map(|g| {
            let sum = std::fs::read_to_string(dir.join(g.sum_name())).unwrap_or_default();
            let info = sum.lines().nth(1).unwrap_or("").to_string();
            let why = disk::check_gen(dir, g).err().map(|i| i.to_string());
            (g, why, info)
        })
        .collect())
}

fn list(dir: &Path, as_json: bool) -> Result<(), String> {
    let gens = generations(dir)?;
    if as_json {
        let v: Vec<_> = gens
            .iter()
            .map(|(g, why, info)| json!({"gen": g.0, "valid": why.is_none(), "why": why, "info": info}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    if gens.is_empty() {
        println!("no generations in {}", dir.display());
    }
    for (g, why, info) in gens {
        match why {
            None => println!("{}  valid    {info}", g.tar_name()),
            Some(w) => println!("{}  INVALID  {w}", g.tar_name()),
        }
    }
    Ok(())
}

/// The newest generation in `dir` whose hash checks.
fn newest_valid(dir: &Path) -> Result<Option<Gen>, String> {
    let listing = disk::list(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut gens = listing.newest_first();
    Ok(gens.find(|g| disk::check_gen(dir, *g).is_ok()))
}

/// Generation `g`'s files (none when there is no valid generation), by path.
fn files_of(dir: &Path, keep: &KeepList, g: Option<Gen>) -> Result<Files, String> {
    let Some(g) = g else {
        return Ok(BTreeMap::new());
    };
    let tar = std::fs::read(dir.join(g.tar_name())).map_err(|e| e.to_string())?;
    let u = archive::unpack(&tar, keep)?;
    Ok(u.files.into_iter().map(|m| (m.path, m.data)).collect())
}

/// `(sign, path)` for every kept file that differs between generation `g` (the newest valid)
/// and the running system.
fn changes(dir: &Path, keep: &KeepList, g: Option<Gen>) -> Result<Changes, String> {
    let kept = files_of(dir, keep, g)?;
    let now: Files = disk::collect(Path::new("/"), keep)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|m| (m.path, m.data))
        .collect();
    let mut out = vec![];
    for (p, d) in &now {
        match kept.get(p) {
            None => out.push(('+', p.clone())),
            Some(k) if k != d => out.push(('~', p.clone())),
            _ => {}
        }
    }
    out.extend(
        kept.keys()
            .filter(|p| !now.contains_key(*p))
            .map(|p| ('-', p.clone())),
    );
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn diff(dir: &Path, keep: &KeepList) -> Result<(), String> {
    let ch = changes(dir, keep, newest_valid(dir)?)?;
    for (sign, p) in ch {
        println!("{sign} /{p}");
    }
    Ok(())
}

fn status(key: &Candidate, dir: &Path, keep: &KeepList, as_json: bool) -> Result<(), String> {
    let gens = generations(dir)?;
    let newest = gens.iter().find(|g| g.1.is_none()).map(|g| g.0);
    let ch = changes(dir, keep, newest)?;
    let valid = gens.iter().filter(|g| g.1.is_none()).count();
    if as_json {
        let v = json!({
            "device": key.dev, "label": key.probe.label, "uuid": key.probe.uuid,
            "fs": format!("{:?}", key.probe.kind).to_lowercase(), "dirty": key.probe.dirty,
            "dir": dir, "generations": gens.len(), "valid": valid,
            "newest": newest.map(|g| g.0), "changed": ch.len(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "key {} ({:?}, label {}, uuid {}{})",
        key.dev,
        key.probe.kind,
        key.probe.label,
        key.probe.uuid,
        if key.probe.dirty { ", dirty" } else { "" }
    );
    println!(
        "{}: {} generations, {valid} valid, newest valid {}",
        dir.display(),
        gens.len(),
        newest.map_or("none".into(), |g| g.tar_name())
    );
    println!("{} kept files changed since (ramux keep diff)", ch.len());
    Ok(())
}

fn revert(dir: &Path, keep: &KeepList, want: Option<Gen>) -> Result<(), String> {
    let a = disk::apply(dir, keep, Path::new("/"), |g, files| match want {
        Some(w) if w != g => Err(format!("not {}", w.tar_name())),
        _ => keep::validate(g, files),
    })
    .map_err(|e| e.to_string())?;
    let g = a
        .choice
        .applied
        .ok_or_else(|| format!("no valid generation to revert to in {}", dir.display()))?;
    println!(
        "ramux: keep reverted to {} ({} files)",
        g.tar_name(),
        a.written.len()
    );
    Ok(())
}
