//! What the machine says about its block devices: sysfs (`sys/block`, `sys/class/block`, the
//! `device` links), `proc/self/mountinfo` and `proc/swaps`, all read under a [`Root`] so tests
//! point it at fixture trees. Nothing here decides; [`crate::policy`] does, from a [`Disk`].

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `sys/` and `proc/` are read from: `/` on the machine, a fixture tree in tests.
#[derive(Clone, Debug)]
pub struct Root(pub PathBuf);

impl Root {
    /// The machine itself.
    pub fn real() -> Root {
        Root(PathBuf::from("/"))
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// One use of the disk or one of its partitions that makes writing it destroy something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Use {
    /// A mounted filesystem (from mountinfo, matched by major:minor or source).
    Mount {
        dev: String,
        mountpoint: String,
        fstype: String,
    },
    /// Active swap (from /proc/swaps).
    Swap { dev: String },
    /// A dm/md/LVM device stacked on it (`holders/`), with that holder's own mounts.
    Holder {
        dev: String,
        holder: String,
        mountpoints: Vec<String>,
    },
}

/// A partition of a [`Disk`].
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub name: String,
    pub size_bytes: u64,
}

/// Everything read about one whole block device.
#[derive(Clone, Debug, Serialize)]
pub struct Disk {
    pub name: String,
    /// `/dev/NAME`.
    pub path: String,
    /// `MAJOR:MINOR` from sysfs `dev`.
    pub dev: Option<String>,
    pub size_bytes: u64,
    pub read_only: bool,
    /// sysfs `removable` (shown, never decisive: many USB sticks say 0).
    pub removable: bool,
    /// `usb`, `mmc`, `nvme`, `ata`, `virtio`, `scsi`, `virtual` or none, from the sysfs path of
    /// the `device` link (or of the block device itself when it has none).
    pub transport: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// The resolved sysfs path, relative to the root (`/sys/devices/...`).
    pub sysfs_path: String,
    pub is_loop: bool,
    pub optical: bool,
    pub partitions: Vec<Part>,
    /// Mounts, swaps and holders on the disk or any of its partitions.
    pub uses: Vec<Use>,
}

/// What a name given on the command line turned out to be.
#[derive(Debug)]
pub enum Target {
    Disk(Box<Disk>),
    /// A partition; the whole disk is named so the message can suggest it.
    Partition {
        name: String,
        disk: String,
    },
    Missing(String),
}

/// One mountinfo line, the parts used here.
#[derive(Clone, Debug)]
pub struct MountEntry {
    pub majmin: String,
    pub mountpoint: String,
    pub fstype: String,
    pub source: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/self/mountinfo` text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split_whitespace().collect();
        let g: Vec<&str> = post.split_whitespace().collect();
        if f.len() < 5 || g.len() < 2 {
            continue;
        }
        v.push(MountEntry {
            majmin: f[2].to_string(),
            mountpoint: unescape(f[4]),
            fstype: g[0].to_string(),
            source: unescape(g[1]),
        });
    }
    v
}

/// Parse `/proc/swaps`: the device or file names in use.
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// The bus a device hangs on, from its resolved sysfs path (what lsblk's TRAN says, in the
/// cases ramux cares about). USB is tested first: a USB stick's path also has `hostN/targetN`.
pub fn transport_of(sysfs_path: &str) -> Option<String> {
    let comps: Vec<&str> = sysfs_path.split('/').collect();
    let numbered = |c: &str, p: &str| {
        c.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    let t = if comps.contains(&"virtual") {
        "virtual"
    } else if comps.iter().any(|c| numbered(c, "usb")) {
        "usb"
    } else if comps
        .iter()
        .any(|c| c.starts_with("mmc_host") || numbered(c, "mmc"))
    {
        "mmc"
    } else if comps.iter().any(|c| numbered(c, "nvme")) {
        "nvme"
    } else if comps.iter().any(|c| numbered(c, "ata")) {
        "ata"
    } else if comps.iter().any(|c| numbered(c, "virtio")) {
        "virtio"
    } else if comps.iter().any(|c| numbered(c, "host")) {
        "scsi"
    } else {
        return None;
    };
    Some(t.to_string())
}

/// Resolve a symlink under the root to a path relative to the root (`/sys/devices/...`).
fn resolve(root: &Root, rel: &str) -> Option<String> {
    let abs = fs::canonicalize(root.join(rel)).ok()?;
    let base = fs::canonicalize(&root.0).ok()?;
    let r = abs.strip_prefix(&base).ok()?;
    Some(format!("/{}", r.display()))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Everything needed from `proc/`, read once per listing.
pub struct ProcState {
    pub mounts: Vec<MountEntry>,
    pub swaps: Vec<String>,
}

impl ProcState {
    pub fn read(root: &Root) -> ProcState {
        ProcState {
            mounts: parse_mountinfo(&root.read("proc/self/mountinfo").unwrap_or_default()),
            swaps: parse_swaps(&root.read("proc/swaps").unwrap_or_default()),
        }
    }

    fn mounts_of(&self, name: &str, majmin: Option<&str>) -> Vec<&MountEntry> {
        let dev = format!("/dev/{name}");
        self.mounts
            .iter()
            .filter(|m| Some(m.majmin.as_str()) == majmin || m.source == dev)
            .collect()
    }
}

/// The uses of one block device (the disk or a partition) `name`, whose sysfs directory is
/// `dir` (relative to the root).
fn uses_of(root: &Root, proc_: &ProcState, name: &str, dir: &str, out: &mut Vec<Use>) {
    let majmin = root.read(&format!("{dir}/dev"));
    for m in proc_.mounts_of(name, majmin.as_deref()) {
        out.push(Use::Mount {
            dev: name.to_string(),
            mountpoint: m.mountpoint.clone(),
            fstype: m.fstype.clone(),
        });
    }
    let dev = format!("/dev/{name}");
    if proc_.swaps.contains(&dev) {
        out.push(Use::Swap {
            dev: name.to_string(),
        });
    }
    for holder in names_in(&root.join(&format!("{dir}/holders"))) {
        let hm = root.read(&format!("sys/class/block/{holder}/dev"));
        let mountpoints = proc_
            .mounts_of(&holder, hm.as_deref())
            .iter()
            .map(|m| m.mountpoint.clone())
            .collect();
        out.push(Use::Holder {
            dev: name.to_string(),
            holder,
            mountpoints,
        });
    }
}

fn sectors(root: &Root, rel: &str) -> u64 {
    root.read(rel)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512)
}

/// Read one whole disk `sys/block/NAME`.
pub fn read_disk(root: &Root, proc_: &ProcState, name: &str) -> Option<Disk> {
    let dir = format!("sys/block/{name}");
    if !root.join(&dir).exists() {
        return None;
    }
    let sysfs_path = resolve(root, &dir).unwrap_or_else(|| format!("/{dir}"));
    let dev_link = resolve(root, &format!("{dir}/device"));
    let transport = transport_of(dev_link.as_deref().unwrap_or(&sysfs_path));
    let attr = |f: &str| {
        root.read(&format!("{dir}/device/{f}"))
            .filter(|s| !s.is_empty())
    };
    let mut uses = Vec::new();
    uses_of(root, proc_, name, &dir, &mut uses);
    let mut partitions = Vec::new();
    for sub in names_in(&root.join(&dir)) {
        let pdir = format!("{dir}/{sub}");
        if root.join(&format!("{pdir}/partition")).exists() {
            uses_of(root, proc_, &sub, &pdir, &mut uses);
            partitions.push(Part {
                size_bytes: sectors(root, &format!("{pdir}/size")),
                name: sub,
            });
        }
    }
    Some(Disk {
        path: format!("/dev/{name}"),
        dev: root.read(&format!("{dir}/dev")),
        size_bytes: sectors(root, &format!("{dir}/size")),
        read_only: root.read(&format!("{dir}/ro")).as_deref() == Some("1"),
        removable: root.read(&format!("{dir}/removable")).as_deref() == Some("1"),
        vendor: attr("vendor"),
        model: attr("model").or_else(|| attr("name")),
        serial: attr("serial"),
        is_loop: name.starts_with("loop"),
        optical: name.starts_with("sr") || attr("type").as_deref() == Some("5"),
        transport,
        sysfs_path,
        partitions,
        uses,
        name: name.to_string(),
    })
}

/// Every whole block device under `sys/block`, sorted by name.
pub fn list_disks(root: &Root) -> Vec<Disk> {
    let proc_ = ProcState::read(root);
    names_in(&root.join("sys/block"))
        .iter()
        .filter_map(|n| read_disk(root, &proc_, n))
        .collect()
}

/// What `arg` (`/dev/sdb`, `sdb`, or a symlink such as `/dev/disk/by-id/usb-...`) names.
/// Symlinks are followed on the real machine only (the fixture trees have no /dev).
pub fn resolve_target(root: &Root, arg: &str) -> Target {
    let mut name = arg.to_string();
    if arg.contains('/') {
        let p = Path::new(arg);
        let real = fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if name.is_empty() {
        return Target::Missing(arg.to_string());
    }
    let class = format!("sys/class/block/{name}");
    if root.join(&format!("{class}/partition")).exists() {
        let disk = resolve(root, &class)
            .and_then(|p| {
                Path::new(&p)
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|d| d.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        return Target::Partition { name, disk };
    }
    let proc_ = ProcState::read(root);
    match read_disk(root, &proc_, &name) {
        Some(d) => Target::Disk(Box::new(d)),
        None => Target::Missing(arg.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_and_escapes() {
        let m = parse_mountinfo(
            "36 35 98:0 / /mnt/my\\040key rw,noatime master:1 - vfat /dev/sdb1 rw\n\
             22 1 254:1 / / rw - ext4 /dev/vda1 rw\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, "/mnt/my key");
        assert_eq!(m[0].source, "/dev/sdb1");
        assert_eq!(m[1].majmin, "254:1");
    }

    #[test]
    fn transports() {
        let usb = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0";
        assert_eq!(transport_of(usb).as_deref(), Some("usb"));
        assert_eq!(
            transport_of("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda").as_deref(),
            Some("virtio")
        );
        assert_eq!(
            transport_of("/sys/devices/virtual/block/loop0").as_deref(),
            Some("virtual")
        );
        assert_eq!(
            transport_of("/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0").as_deref(),
            Some("nvme")
        );
        assert_eq!(transport_of("/sys/devices/platform/foo"), None);
    }
}
