//! The refusal rules against a tree captured from a real kernel (tests/fixtures/qemu, written
//! by `ramux-e2e`'s ignored `capture_the_refusal_fixtures`): QEMU's xHCI with seven USB sticks
//! and a virtio system disk holding `/`. The sticks are found by size, since the kernel, not
//! the capture, names them.

use ramux_burn::detect::{list_disks, Root, Use};
use ramux_burn::policy::{decide, Policy};
use std::path::PathBuf;

const MIB: u64 = 1 << 20;

fn disks() -> Vec<ramux_burn::Disk> {
    let root = Root(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu"));
    list_disks(&root)
}

/// The refusal codes for a 32 MiB image on the disk of `size` bytes.
fn codes_for(size: u64) -> Vec<&'static str> {
    let all = disks();
    let d = all
        .iter()
        .find(|d| d.size_bytes == size)
        .unwrap_or_else(|| panic!("no disk of {size} bytes in {all:#?}"));
    let p = Policy {
        image_bytes: Some(32 * MIB),
        ..Policy::default()
    };
    decide(d, &p).iter().map(|r| r.code()).collect()
}

#[test]
fn the_kernel_tree_has_every_disk_on_its_bus() {
    let all = disks();
    assert_eq!(all.len(), 8, "{all:#?}");
    for d in &all {
        let want = if d.name == "vda" { "virtio" } else { "usb" };
        assert_eq!(d.transport.as_deref(), Some(want), "{d:#?}");
    }
}

#[test]
fn removable_and_fixed_sticks_are_candidates() {
    assert!(codes_for(96 * MIB).is_empty());
    assert!(codes_for(128 * MIB).is_empty());
    let all = disks();
    let removable = |size| all.iter().find(|d| d.size_bytes == size).unwrap().removable;
    // QEMU's removable=on/off reaches sysfs; the rules ignore it either way.
    assert!(removable(96 * MIB));
    assert!(!removable(128 * MIB));
}

#[test]
fn each_refusal_from_the_kernel_tree() {
    assert_eq!(codes_for(64 * MIB), ["read_only"]);
    assert_eq!(codes_for(100 << 30), ["too_large"]);
    assert_eq!(codes_for(16 * MIB), ["too_small"]);
    assert_eq!(codes_for(80 * MIB), ["mounted"]);
    assert_eq!(codes_for(72 * MIB), ["swap"]);
}

#[test]
fn the_system_disk_holds_root_and_is_not_usb() {
    let all = disks();
    let vda = all.iter().find(|d| d.name == "vda").expect("vda");
    assert!(vda
        .uses
        .iter()
        .any(|u| matches!(u, Use::Mount { mountpoint, .. } if mountpoint == "/")));
    let c: Vec<_> = decide(vda, &Policy::default())
        .iter()
        .map(|r| r.code())
        .collect();
    assert!(c.contains(&"holds_root") && c.contains(&"bus"), "{c:?}");
}
