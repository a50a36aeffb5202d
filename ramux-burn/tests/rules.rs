//! The refusal rules against the hand-made machine in tests/fixtures/machine (build.sh): one
//! disk per rule, and the candidates, read through the same detection code as the real root.

use ramux_burn::detect::{list_disks, resolve_target, Root, Target, Use};
use ramux_burn::policy::{decide, Policy, Refusal};
use std::path::PathBuf;

fn root() -> Root {
    Root(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/machine"))
}

fn disk(name: &str) -> ramux_burn::Disk {
    match resolve_target(&root(), &format!("/dev/{name}")) {
        Target::Disk(d) => *d,
        other => panic!("{name}: {other:?}"),
    }
}

fn codes(name: &str, p: &Policy) -> Vec<&'static str> {
    decide(&disk(name), p).iter().map(|r| r.code()).collect()
}

const GB: u64 = 1_000_000_000;

fn img(bytes: u64) -> Policy {
    Policy {
        image_bytes: Some(bytes),
        ..Policy::default()
    }
}

#[test]
fn usb_stick_is_a_candidate_with_its_attributes() {
    let d = disk("sdb");
    assert_eq!(d.transport.as_deref(), Some("usb"));
    assert!(d.removable);
    assert_eq!(d.vendor.as_deref(), Some("SanDisk"));
    assert_eq!(d.model.as_deref(), Some("Cruzer Blade"));
    assert_eq!(d.size_bytes, 31260672 * 512);
    assert_eq!(d.partitions.len(), 1);
    assert!(d.uses.is_empty());
    assert!(decide(&d, &img(400_000_000)).is_empty());
}

#[test]
fn removable_zero_usb_stick_is_still_a_candidate() {
    let d = disk("sdh");
    assert!(!d.removable);
    assert!(decide(&d, &img(400_000_000)).is_empty());
}

#[test]
fn sd_card_on_mmc_is_a_candidate() {
    let d = disk("mmcblk0");
    assert_eq!(d.transport.as_deref(), Some("mmc"));
    assert_eq!(d.model.as_deref(), Some("SC32G"));
    assert!(decide(&d, &img(GB)).is_empty());
}

#[test]
fn too_large_usb_refused_unless_allow_large() {
    assert_eq!(codes("sdc", &img(GB)), ["too_large"]);
    let r = decide(&disk("sdc"), &img(GB));
    assert_eq!(r[0].override_flag(), Some("--allow-large"));
    let p = Policy {
        allow_large: true,
        ..img(GB)
    };
    assert!(codes("sdc", &p).is_empty());
}

#[test]
fn virtio_system_disk_holding_root() {
    let d = disk("vda");
    assert_eq!(d.transport.as_deref(), Some("virtio"));
    let c = codes("vda", &img(GB));
    assert_eq!(c, ["holds_root", "mounted", "bus", "too_large"]);
    // No flag makes it writable: / stays.
    let all = Policy {
        any_bus: true,
        allow_large: true,
        allow_loop: true,
        image_bytes: Some(GB),
    };
    assert_eq!(codes("vda", &all), ["holds_root", "mounted"]);
    let r = decide(&d, &all);
    assert_eq!(r[0], Refusal::HoldsRoot { dev: "vda1".into() });
    assert_eq!(r[0].override_flag(), None);
    assert!(r[1].message().contains("/boot/efi"), "{}", r[1].message());
}

#[test]
fn mounted_partition_refused_with_its_mountpoint() {
    let r = decide(&disk("sdd"), &img(GB));
    assert_eq!(
        r,
        [Refusal::Mounted {
            dev: "sdd1".into(),
            mountpoint: "/media/user/MY KEY".into()
        }]
    );
    assert!(r[0].message().contains("umount"));
}

#[test]
fn dm_holder_refused() {
    let d = disk("sde");
    assert!(d.uses.contains(&Use::Holder {
        dev: "sde1".into(),
        holder: "dm-0".into(),
        mountpoints: vec!["/srv/crypt".into()],
    }));
    let r = decide(&d, &img(GB));
    assert_eq!(
        r,
        [Refusal::Held {
            dev: "sde1".into(),
            holder: "dm-0".into()
        }]
    );
    // dm-0 itself is virtual and mounted.
    assert_eq!(codes("dm-0", &img(GB)), ["mounted", "bus"]);
}

#[test]
fn swap_partition_refused() {
    assert_eq!(
        decide(&disk("sdf"), &img(GB)),
        [Refusal::Swap { dev: "sdf2".into() }]
    );
}

#[test]
fn read_only_refused_without_override() {
    let r = decide(&disk("sdg"), &img(GB));
    assert_eq!(r, [Refusal::ReadOnly]);
    let all = Policy {
        any_bus: true,
        allow_large: true,
        allow_loop: true,
        image_bytes: Some(GB),
    };
    assert_eq!(decide(&disk("sdg"), &all), [Refusal::ReadOnly]);
}

#[test]
fn nvme_refused_for_bus_and_size() {
    let d = disk("nvme0n1");
    assert_eq!(d.transport.as_deref(), Some("nvme"));
    assert_eq!(d.model.as_deref(), Some("Samsung SSD 980 PRO 500GB"));
    assert_eq!(d.serial.as_deref(), Some("S5GXNX0T123456"));
    assert_eq!(codes("nvme0n1", &img(GB)), ["bus", "too_large"]);
    let p = Policy {
        any_bus: true,
        allow_large: true,
        ..img(GB)
    };
    assert!(codes("nvme0n1", &p).is_empty());
}

#[test]
fn loop_refused_unless_allow_loop() {
    assert_eq!(codes("loop0", &img(GB / 2)), ["loop"]);
    let p = Policy {
        allow_loop: true,
        ..img(GB / 2)
    };
    assert!(codes("loop0", &p).is_empty());
    // --any-bus does not allow a loop device.
    let p = Policy {
        any_bus: true,
        ..img(GB / 2)
    };
    assert_eq!(codes("loop0", &p), ["loop"]);
}

#[test]
fn smaller_than_the_image_refused() {
    assert!(codes("sdi", &img(GB / 2)).is_empty());
    assert_eq!(codes("sdi", &img(2 * GB)), ["too_small"]);
    // Without an image (--list) size is not a refusal.
    assert!(codes("sdi", &Policy::default()).is_empty());
}

#[test]
fn optical_drive_refused_for_sticks() {
    assert_eq!(codes("sr0", &img(GB / 2)), ["optical", "bus"]);
}

#[test]
fn partition_named_instead_of_disk() {
    match resolve_target(&root(), "/dev/sdb1") {
        Target::Partition { name, disk } => {
            assert_eq!((name.as_str(), disk.as_str()), ("sdb1", "sdb"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        resolve_target(&root(), "/dev/sdz"),
        Target::Missing(_)
    ));
}

#[test]
fn listing_has_every_disk_and_only_the_sticks_are_candidates() {
    let p = img(GB / 2);
    let mut cands: Vec<String> = list_disks(&root())
        .iter()
        .filter(|d| decide(d, &p).is_empty())
        .map(|d| d.name.clone())
        .collect();
    cands.sort();
    assert_eq!(cands, ["mmcblk0", "sdb", "sdh", "sdi"]);
    assert_eq!(list_disks(&root()).len(), 14);
    // The same through the CLI's listing (no O_EXCL probe on a fixture root), as JSON.
    let e = ramux_burn::cli::list_entries(&root(), &Policy::default(), false);
    let j = serde_json::to_value(&e).unwrap();
    let vda = j
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "vda")
        .unwrap();
    assert_eq!(vda["candidate"], false);
    assert_eq!(vda["refusals"][0]["reason"], "holds_root");
    assert_eq!(vda["refusals"][2]["override"], "--any-bus");
}

#[test]
fn messages_name_the_override() {
    for (r, flag) in [
        (
            Refusal::Bus {
                transport: "nvme".into(),
            },
            "--any-bus",
        ),
        (
            Refusal::TooLarge {
                size_bytes: 128 * GB,
            },
            "--allow-large",
        ),
        (Refusal::Loop, "--allow-loop"),
    ] {
        assert!(r.message().contains(flag), "{}", r.message());
    }
    let busy = Refusal::InUse {
        error: "Device or resource busy (os error 16)".into(),
    };
    assert!(busy.message().contains("O_EXCL"));
}
