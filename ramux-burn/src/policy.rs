//! The refusal rules: a pure function of a [`Disk`] as read and the options given. The one rule
//! that needs the device itself (the `O_EXCL` open) is applied by the writer, with the same
//! [`Refusal`] type, right before writing.

use crate::detect::{Disk, Use};
use serde::Serialize;

/// The size above which a disk is refused without `--allow-large` (64 GB, decimal: what sticks
/// are sold as). etcher only warns at 128 GB; a ramux image is a few hundred MB.
pub const LARGE_BYTES: u64 = 64_000_000_000;

/// What the user allowed on the command line, and the image's size when there is one.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub any_bus: bool,
    pub allow_large: bool,
    pub allow_loop: bool,
    /// The image to write; `None` for `--list` without an image.
    pub image_bytes: Option<u64>,
}

/// Why a device is not written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// A partition was named, not a disk.
    Partition {
        disk: String,
    },
    /// `open(O_EXCL)` failed: a filesystem, swap, dm/md or another program holds it.
    InUse {
        error: String,
    },
    /// It or a partition holds the running system's `/`.
    HoldsRoot {
        dev: String,
    },
    Mounted {
        dev: String,
        mountpoint: String,
    },
    Swap {
        dev: String,
    },
    Held {
        dev: String,
        holder: String,
    },
    Bus {
        transport: String,
    },
    TooLarge {
        size_bytes: u64,
    },
    TooSmall {
        size_bytes: u64,
        image_bytes: u64,
    },
    ReadOnly,
    Loop,
    Optical,
    NoMedium,
    NotFound,
}

impl Refusal {
    /// The flag that overrides this refusal, if any does.
    pub fn override_flag(&self) -> Option<&'static str> {
        match self {
            Refusal::Bus { .. } => Some("--any-bus"),
            Refusal::TooLarge { .. } => Some("--allow-large"),
            Refusal::Loop => Some("--allow-loop"),
            _ => None,
        }
    }

    /// A sentence saying why, and what to do.
    pub fn message(&self) -> String {
        let s = match self {
            Refusal::Partition { disk } => format!(
                "is a partition; an image is written to the whole disk (/dev/{disk}), never to a partition"
            ),
            Refusal::InUse { error } => format!(
                "cannot be opened exclusively (O_EXCL: {error}): something has it open (a mount, swap, dm/md, or a program); unmount or close it first"
            ),
            Refusal::HoldsRoot { dev } => {
                format!("holds the running system: / is on {dev}; nothing overrides this")
            }
            Refusal::Mounted { dev, mountpoint } => {
                format!("{dev} is mounted on {mountpoint}; unmount it first (umount {mountpoint})")
            }
            Refusal::Swap { dev } => format!("{dev} is active swap; swapoff /dev/{dev} first"),
            Refusal::Held { dev, holder } => format!(
                "{dev} is held by {holder} (device-mapper/md/LVM on top of it); stop {holder} first (dmsetup remove, mdadm --stop, vgchange -an)"
            ),
            Refusal::Bus { transport } => format!(
                "is on the {transport} bus, not usb or mmc: most likely a system disk"
            ),
            Refusal::TooLarge { size_bytes } => format!(
                "is {} (more than {}): too large for a stick, most likely a disk",
                human(*size_bytes),
                human(LARGE_BYTES)
            ),
            Refusal::TooSmall {
                size_bytes,
                image_bytes,
            } => format!(
                "is {} but the image is {}: it does not fit",
                human(*size_bytes),
                human(*image_bytes)
            ),
            Refusal::ReadOnly => {
                "is read-only (write-protect switch or a locked card); nothing overrides this".into()
            }
            Refusal::Loop => "is a loop device (a file, not a stick)".into(),
            Refusal::Optical => "is an optical drive; burn CDs with --cd".into(),
            Refusal::NoMedium => "has no medium (size 0): insert the card or stick".into(),
            Refusal::NotFound => "is not a block device of this machine (see --list)".into(),
        };
        match self.override_flag() {
            Some(f) => format!("{s} ({f} overrides this)"),
            None => s,
        }
    }

    /// Short name for listings.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Partition { .. } => "partition",
            Refusal::InUse { .. } => "in_use",
            Refusal::HoldsRoot { .. } => "holds_root",
            Refusal::Mounted { .. } => "mounted",
            Refusal::Swap { .. } => "swap",
            Refusal::Held { .. } => "held",
            Refusal::Bus { .. } => "bus",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::TooSmall { .. } => "too_small",
            Refusal::ReadOnly => "read_only",
            Refusal::Loop => "loop",
            Refusal::Optical => "optical",
            Refusal::NoMedium => "no_medium",
            Refusal::NotFound => "not_found",
        }
    }
}

/// Bytes as the sticks are sold: decimal GB/MB.
pub fn human(b: u64) -> String {
    if b >= 1_000_000_000 {
        format!("{:.1} GB", b as f64 / 1e9)
    } else if b >= 1_000_000 {
        format!("{:.1} MB", b as f64 / 1e6)
    } else {
        format!("{b} B")
    }
}

/// The refusals for writing `disk` under `policy`; empty means it is a candidate. Pure: the
/// same [`Disk`] and [`Policy`] always give the same answer, in the same order.
pub fn decide(disk: &Disk, policy: &Policy) -> Vec<Refusal> {
    let mut r = Vec::new();
    for u in &disk.uses {
        r.push(match u {
            Use::Mount {
                dev, mountpoint, ..
            } if mountpoint == "/" => Refusal::HoldsRoot { dev: dev.clone() },
            Use::Mount {
                dev, mountpoint, ..
            } => Refusal::Mounted {
                dev: dev.clone(),
                mountpoint: mountpoint.clone(),
            },
            Use::Swap { dev } => Refusal::Swap { dev: dev.clone() },
            Use::Holder {
                dev,
                holder,
                mountpoints,
            } => {
                if mountpoints.iter().any(|m| m == "/") {
                    Refusal::HoldsRoot {
                        dev: format!("{dev} (through {holder})"),
                    }
                } else {
                    Refusal::Held {
                        dev: dev.clone(),
                        holder: holder.clone(),
                    }
                }
            }
        });
    }
    if disk.optical {
        r.push(Refusal::Optical);
    }
    if disk.is_loop {
        if !policy.allow_loop {
            r.push(Refusal::Loop);
        }
    } else {
        match disk.transport.as_deref() {
            Some("usb") | Some("mmc") => {}
            t if !policy.any_bus => r.push(Refusal::Bus {
                transport: t.unwrap_or("unknown").to_string(),
            }),
            _ => {}
        }
    }
    if disk.read_only {
        r.push(Refusal::ReadOnly);
    }
    if disk.size_bytes == 0 {
        r.push(Refusal::NoMedium);
    } else {
        if disk.size_bytes > LARGE_BYTES && !policy.allow_large {
            r.push(Refusal::TooLarge {
                size_bytes: disk.size_bytes,
            });
        }
        if let Some(img) = policy.image_bytes {
            if img > disk.size_bytes {
                r.push(Refusal::TooSmall {
                    size_bytes: disk.size_bytes,
                    image_bytes: img,
                });
            }
        }
    }
    r
}
