//! The site key on the appliance (docs/keep.md): PID 1 finds it, applies the newest valid
//! generation and the admin's overrides before the network comes up, and reads the secrets
//! overlay from it; `ramux keep commit|status|diff|list|revert` (this binary under the name
//! `ramux`) manages it on a running system. The rules (which generation, which files, the
//! commit order) are `ramux_keep`'s; this module is the I/O around them: probing block devices,
//! mounting read-only (read-write only inside a commit, after `fsck.fat -a` when dirty).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use ramux_keep::allow::KeepList;
use ramux_keep::archive::Member;
use ramux_keep::find::{self, Candidate, Found, Want};
use ramux_keep::generation::Gen;
use ramux_keep::label::FsKind;

/// Where the key is mounted while it is read or written.
pub const MOUNT: &str = "/run/ramux/key";
pub use ramux_contract::files::KEEP_LIST;
/// The secrets overlay (`vbuild secrets pack`) a bare-metal host takes from its key.
pub const SECRETS_FILE: &str = "site.secrets";
/// The longest boot waits for USB sticks to show up when the machine has a USB bus.
pub const WAIT: Duration = Duration::from_secs(10);
/// After the first match, how long boot goes on looking for a second (two keys apply nothing).
const SETTLE: Duration = Duration::from_millis(1500);
/// With a USB bus and no match, how long boot looks before it goes on unless a stick is still
/// becoming a disk (a VM booted from a USB stick has a bus but no key: it must not wait 10 s).
const GRACE: Duration = Duration::from_secs(2);
/// Generations a commit keeps on the key.
pub const KEEP_N: usize = 5;

/// What boot took from the key for the later steps.
#[derive(Debug, Default)]
pub struct AtBoot {
    /// The secrets overlay found on the key, if any (fw_cfg still wins: docs/secrets.md).
    pub secrets: Option<Vec<u8>>,
}

/// The disks and partitions of the machine with a FAT or ext filesystem, probed from their
/// first bytes. `sys` and `dev` are `/sys` and `/dev` (fixture trees in tests).
pub fn candidates(sys: &Path, dev: &Path) -> Vec<Candidate> {
    let Ok(rd) = fs::read_dir(sys.join("class/block")) else {
        return vec![];
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| size_sectors(sys, n) > 0)
        .filter_map(|n| {
            let probe = ramux_keep::disk::probe_path(&dev.join(&n)).ok()??;
            Some(Candidate { dev: n, probe })
        })
        .collect()
}

fn size_sectors(sys: &Path, name: &str) -> u64 {
    fs::read_to_string(sys.join("class/block").join(name).join("size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// True when the machine has a USB bus, so a key may still be enumerating.
fn usb_bus(sys: &Path) -> bool {
    fs::read_dir(sys.join("bus/usb/devices")).is_ok_and(|mut d| d.next().is_some())
}

/// A USB mass-storage interface (class 08) without its disk yet: usb-storage waits a second
/// (`delay_use`) before the SCSI scan, so a stick that is there may not be a block device yet.
fn usb_storage_pending(sys: &Path) -> bool {
    let Ok(rd) = fs::read_dir(sys.join("bus/usb/devices")) else {
        return false;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(':'))
        .filter(|e| {
            fs::read_to_string(e.path().join("bInterfaceClass")).is_ok_and(|c| c.trim() == "08")
        })
        .any(|e| fs::canonicalize(e.path()).is_ok_and(|d| !has_block(&d, 6)))
}

/// A `block` directory below `dir` (real directories only: sysfs links lead everywhere).
fn has_block(dir: &Path, depth: u32) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let real_dir = e.file_type().is_ok_and(|t| t.is_dir());
        real_dir && (e.file_name() == "block" || depth > 0 && has_block(&e.path(), depth - 1))
    })
}

/// Whether boot goes on looking after a pass that found `found`, `elapsed` into the look, the
/// first match `hit_age` ago, with a USB stick still `pending`. Without a match it looks for
/// [`GRACE`] (devices plugged at power-on show up in that time) and then only while a stick is
/// still becoming a disk, never past `wait`; after a match, [`SETTLE`] more for a second key.
fn keep_looking(
    found: &Found,
    elapsed: Duration,
    hit_age: Option<Duration>,
    pending: bool,
    wait: Duration,
) -> bool {
    if elapsed >= wait {
        return false;
    }
    match found {
        Found::Off | Found::Ambiguous(..) => false,
        Found::Key(_) => hit_age.is_none_or(|a| a < SETTLE),
        Found::None => pending || elapsed < GRACE,
    }
}

/// Looks for the key as boot does: once when there is no USB bus, else as [`keep_looking`]
/// says. Returns what it found and how long it took.
pub fn look(w: &Want, sys: &Path, dev: &Path, wait: Duration) -> (Found, Duration) {
    let t0 = Instant::now();
    let wait = if usb_bus(sys) { wait } else { Duration::ZERO };
    let mut first_hit: Option<Instant> = None;
    loop {
        let found = find::choose(w, &candidates(sys, dev));
        let now = Instant::now();
        if matches!(found, Found::Key(_)) {
            first_hit.get_or_insert(now);
        }
        let pending = matches!(found, Found::None) && usb_storage_pending(sys);
        let age = first_hit.map(|t| now - t);
        if !keep_looking(&found, now - t0, age, pending, wait) {
            return (found, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kernel's filesystem type for a probed key.
fn fstype(k: FsKind) -> &'static str {
    match k {
        FsKind::Fat => "vfat",
        FsKind::Ext => "ext4",
    }
}

/// A mounted key, unmounted on drop (a failed step never leaves it mounted, or read-write).
pub struct Mounted {
    pub dir: PathBuf,
}

impl Mounted {
    pub fn new(dev: &Path, kind: FsKind, rw: bool) -> Result<Mounted, String> {
        let dir = PathBuf::from(MOUNT);
        fs::create_dir_all(&dir).map_err(|e| format!("{MOUNT}: {e}"))?;
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if !rw {
            flags |= MsFlags::MS_RDONLY;
        }
        mount(Some(dev), &dir, Some(fstype(kind)), flags, None::<&str>)
            .map_err(|e| format!("mount {} ({}) on {MOUNT}: {e}", dev.display(), fstype(kind)))?;
        Ok(Mounted { dir })
    }

    /// `RAMUX/<hostname>` on the key.
    pub fn host_dir(&self, hostname: &str) -> PathBuf {
        self.dir.join("RAMUX").join(hostname)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        nix::unistd::sync();
        let _ = umount2(&self.dir, MntFlags::empty());
    }
}

/// The image's keep list; an image without one keeps nothing (and says so).
pub fn keep_list(root: &Path) -> Result<KeepList, String> {
    let p = root.join(KEEP_LIST.trim_start_matches('/'));
    let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    KeepList::parse(&text).map_err(|e| format!("{}:{e}", p.display()))
}

/// Refuses a generation whose files ramux-init itself reads and cannot parse, so a bad edit
/// made on a PC falls back to the previous generation instead of breaking the boot.
pub fn validate(_g: Gen, files: &[Member]) -> Result<(), String> {
    for m in files {
        let text = || String::from_utf8_lossy(&m.data).into_owned();
        if m.path == crate::config::APPLIANCE_TOML.trim_start_matches('/') {
            crate::config::parse(&m.path, &text()).map_err(|e| e.to_string())?;
        } else if m.path.ends_with("sysctl.conf") {
            if let Some(e) = crate::sysctl::parse(&text()).1.first() {
                return Err(format!("{}:{}: {}", m.path, e.line, e.message));
            }
        }
    }
    Ok(())
}

/// What boot does with the key, before hostname and network: find it, apply the newest valid
/// generation and the overrides, read the secrets overlay. Never blocks past [`WAIT`] and
/// never fails the boot: every problem is a console line.
pub fn at_boot(hostname: &str, say: &mut dyn FnMut(String)) -> AtBoot {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let w = match find::want(&cmdline) {
        Ok(w) => w,
        Err(e) => {
            say(crate::console::failed_line("keep", &e));
            return AtBoot::default();
        }
    };
    let (found, waited) = look(&w, Path::new("/sys"), Path::new("/dev"), WAIT);
    say(found.line(&w, waited.as_secs()));
    let Found::Key(k) = found else {
        return AtBoot::default();
    };
    let m = match Mounted::new(&Path::new("/dev").join(&k.dev), k.probe.kind, false) {
        Ok(m) => m,
        Err(e) => {
            say(crate::console::failed_line("keep", &e));
            return AtBoot::default();
        }
    };
    let host = m.host_dir(hostname);
    apply_kept(&host, Path::new("/"), say);
    AtBoot {
        secrets: read_secrets(&host, say),
    }
}

/// Applies the newest valid generation then the overrides from `host` onto `root`, with one
/// console line for what was applied and one per generation passed over.
pub fn apply_kept(host: &Path, root: &Path, say: &mut dyn FnMut(String)) {
    let keep = match keep_list(root) {
        Ok(k) => k,
        Err(e) => {
            say(format!("ramux: keep: nothing applied ({e})"));
            return;
        }
    };
    match ramux_keep::disk::apply(host, &keep, root, validate) {
        Err(e) => say(crate::console::failed_line(
            "keep",
            &format!("{}: {e}", host.display()),
        )),
        Ok(a) => {
            for (g, why) in &a.choice.rejected {
                say(format!("ramux: keep passed over {}: {why}", g.tar_name()));
            }
            for (p, why) in &a.refused {
                say(format!("ramux: keep left out {p}: {why}"));
            }
            match a.choice.applied {
                Some(g) => say(format!(
                    "ramux: keep applied {} ({} files)",
                    g.tar_name(),
                    a.written.len()
                )),
                None => say("ramux: keep applied no generation (image defaults)".into()),
            }
        }
    }
    match ramux_keep::disk::overrides(&host.join("overrides"), &keep, root) {
        Ok(v) if v.is_empty() => {}
        Ok(v) => say(format!("ramux: keep applied {} overrides", v.len())),
        Err(e) => say(crate::console::failed_line(
            "keep",
            &format!("overrides: {e}"),
        )),
    }
}

fn read_secrets(host: &Path, say: &mut dyn FnMut(String)) -> Option<Vec<u8>> {
    let p = host.join(SECRETS_FILE);
    if !p.is_file() {
        return None;
    }
    // Bounded as the fw_cfg item is: an oversized overlay is refused without filling RAM.
    crate::secrets::read_raw(&p)
        .map_err(|e| say(crate::console::failed_line("keep", &e)))
        .ok()
}

/// Runs `fsck.fat -a` on a FAT key whose dirty bit is set (Linux leaves it set after a power
/// cut during a read-write mount), before it is mounted read-write again.
pub fn repair_if_dirty(dev: &Path, k: &Candidate) -> Result<Option<String>, String> {
    if k.probe.kind != FsKind::Fat || !k.probe.dirty {
        return Ok(None);
    }
    let o = Command::new("fsck.fat")
        .arg("-a")
        .arg(dev)
        .output()
        .map_err(|e| format!("fsck.fat (Debian package dosfstools): {e}"))?;
    // 0: clean, 1: errors corrected.
    match o.status.code() {
        Some(0 | 1) => Ok(Some(format!(
            "fsck.fat -a {}: {}",
            dev.display(),
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("done")
        ))),
        _ => Err(format!(
            "fsck.fat -a {} failed ({}): {}",
            dev.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramux_keep::label::{self, PROBE_BYTES};

    fn fixture(root: &Path, name: &str, size: &str, head: &[u8]) {
        let b = root.join("sys/class/block").join(name);
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("size"), size).unwrap();
        fs::create_dir_all(root.join("dev")).unwrap();
        fs::write(root.join("dev").join(name), head).unwrap();
    }

    fn fat_head(label: &[u8; 11]) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_BYTES];
        b[0x52..0x57].copy_from_slice(b"FAT32");
        b[0x47..0x52].copy_from_slice(label);
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn probes_sized_devices_and_finds_the_key_without_waiting_when_there_is_no_usb() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fixture(r, "sda", "131072", &fat_head(b"RAMUXKEY   "));
        fixture(r, "sdb", "0", &fat_head(b"RAMUXKEY   "));
        fixture(r, "vda", "2048", &[0; 2048]);
        fixture(r, "ram0", "8192", &fat_head(b"RAMUXKEY   "));
        let c = candidates(&r.join("sys"), &r.join("dev"));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].dev, "sda");
        let w = find::want("").unwrap();
        let (f, took) = look(&w, &r.join("sys"), &r.join("dev"), WAIT);
        assert_eq!(f, Found::Key(c[0].clone()));
        assert!(took < Duration::from_secs(1), "{took:?}");
        // With a USB bus and no key, it looks for the (here shortened) wait.
        fs::create_dir_all(r.join("sys/bus/usb/devices/usb1")).unwrap();
        fs::remove_file(r.join("dev/sda")).unwrap();
        let (f, took) = look(
            &w,
            &r.join("sys"),
            &r.join("dev"),
            Duration::from_millis(300),
        );
        assert_eq!(f, Found::None);
        assert!(took >= Duration::from_millis(300), "{took:?}");
    }

    #[test]
    fn a_stick_still_becoming_a_disk_is_pending_one_with_its_disk_is_not() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path();
        let iface = sys.join("devices/pci0/usb1/1-1/1-1:1.0");
        fs::create_dir_all(&iface).unwrap();
        fs::write(iface.join("bInterfaceClass"), "08\n").unwrap();
        fs::create_dir_all(sys.join("bus/usb/devices")).unwrap();
        std::os::unix::fs::symlink(&iface, sys.join("bus/usb/devices/1-1:1.0")).unwrap();
        assert!(usb_storage_pending(sys));
        fs::create_dir_all(iface.join("host0/target0:0:0/0:0:0:0/block/sda")).unwrap();
        assert!(!usb_storage_pending(sys));
        fs::write(iface.join("bInterfaceClass"), "03\n").unwrap();
        fs::remove_dir_all(iface.join("host0")).unwrap();
        assert!(!usb_storage_pending(sys), "a keyboard is no stick");
    }

    #[test]
    fn how_long_boot_looks() {
        let s = Duration::from_secs;
        let key = Found::Key(Candidate {
            dev: "sda".into(),
            probe: label::probe(&fat_head(b"RAMUXKEY   ")).unwrap(),
        });
        // No match: the grace, then only while a stick is pending, never past the wait.
        assert!(keep_looking(&Found::None, s(1), None, false, WAIT));
        assert!(!keep_looking(&Found::None, s(2), None, false, WAIT));
        assert!(keep_looking(&Found::None, s(5), None, true, WAIT));
        assert!(!keep_looking(&Found::None, s(10), None, true, WAIT));
        // A match: settle for a second key, then go.
        assert!(keep_looking(&key, s(1), Some(s(1)), false, WAIT));
        assert!(!keep_looking(&key, s(3), Some(s(2)), false, WAIT));
        let two = Found::Ambiguous("sda".into(), "sdb".into());
        assert!(!keep_looking(&two, s(0), None, false, WAIT));
        assert!(!keep_looking(&Found::Off, s(0), None, false, WAIT));
    }

    #[test]
    fn a_generation_with_a_broken_sysctl_conf_is_refused() {
        let m = |path: &str, data: &str| Member {
            path: path.into(),
            mode: 0o644,
            mtime: 0,
            data: data.as_bytes().to_vec(),
        };
        assert!(validate(
            Gen(1),
            &[m("etc/ramux/sysctl.conf", "net.ipv4.ip_forward = 1\n")]
        )
        .is_ok());
        let e = validate(Gen(1), &[m("etc/ramux/sysctl.conf", "no equals sign\n")]).unwrap_err();
        assert!(e.starts_with("etc/ramux/sysctl.conf:1:"), "{e}");
    }

    #[test]
    fn apply_kept_says_what_it_did() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let host = t.path().join("key/RAMUX/rt1");
        fs::create_dir_all(root.join("etc/ramux")).unwrap();
        fs::write(root.join("etc/ramux/keep.list"), "/etc/ramux/local/\n").unwrap();
        fs::create_dir_all(root.join("etc/ramux/local")).unwrap();
        fs::write(root.join("etc/ramux/local/a"), "1").unwrap();
        let keep = keep_list(&root).unwrap();
        let files = ramux_keep::disk::collect(&root, &keep).unwrap();
        let o = ramux_keep::generation::Origin {
            time: 1,
            image: "t".into(),
            files: 1,
            message: String::new(),
        };
        ramux_keep::disk::commit(&host, files, &o, KEEP_N).unwrap();
        fs::write(root.join("etc/ramux/local/a"), "changed").unwrap();
        fs::create_dir_all(host.join("overrides/etc/ramux/local")).unwrap();
        fs::write(host.join("overrides/etc/ramux/local/b"), "2").unwrap();
        let mut lines = vec![];
        apply_kept(&host, &root, &mut |l| lines.push(l));
        assert_eq!(
            lines,
            [
                "ramux: keep applied gen-000001.tar (1 files)",
                "ramux: keep applied 1 overrides"
            ]
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/ramux/local/a")).unwrap(),
            "1"
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/ramux/local/b")).unwrap(),
            "2"
        );
        fs::remove_file(root.join("etc/ramux/keep.list")).unwrap();
        lines.clear();
        apply_kept(&host, &root, &mut |l| lines.push(l));
        assert!(
            lines[0].starts_with("ramux: keep: nothing applied ("),
            "{lines:?}"
        );
    }
}
