//! Build the router image with the vbuild library, check it is a BIOS+UEFI hybrid, and boot it
//! the four ways a user can (BIOS/UEFI x CD/USB stick) under QEMU through the vlaunch library,
//! waiting for the appliance's ready line each time. Also: the console and the ACPI power-off
//! path, and the KVM probe machinery (run under TCG, where it must succeed).
//!
//! Needs root-free host tools (qemu-system-x86, ovmf, xorriso, mmdebstrap and the builder's
//! tools) and $RAMUX_BIN_DIR with the static ramux binaries (scripts/build). At most two QEMUs
//! run at once.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use vlaunch::vm::StopOutcome;

#[test]
fn router_iso_has_bios_and_uefi_boot_images() {
    let img = image("router");
    let out = Command::new("xorriso")
        .args(["-no_rc", "-indev"])
        .arg(&img.iso)
        .args(["-report_el_torito", "plain"])
        .output()
        .expect("xorriso missing: apt-get install xorriso");
    let text = String::from_utf8_lossy(&out.stdout);
    let entries: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("El Torito boot img :"))
        .collect();
    assert!(
        entries.iter().any(|l| l.contains(" BIOS ")),
        "no BIOS boot image:\n{text}"
    );
    assert!(
        entries.iter().any(|l| l.contains(" UEFI ")),
        "no UEFI boot image:\n{text}"
    );
}

/// BIOS CD, plus what a user does next: `ps`, the serial console, and `stop` (ACPI power button
/// through QMP: the appliance must power itself off, not be killed).
#[test]
fn router_boots_bios_cd_then_console_and_acpi_poweroff() {
    let img = image("router");
    let _slot = qemu_slots(1);
    let root = state_root();
    let mut opts = options(&img, "bioscd", root.path());
    let _sw = router_nics(&mut opts);
    let (mut g, ready) = boot(opts, root);
    assert_eq!(ready.info.profile, "router");
    assert_eq!(ready.info.role, "BACKUP");
    assert_eq!(ready.info.host, "router-backup");

    let ps = vlaunch::vm::list(g.state_root.path()).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert!(ps[0].running);
    assert_eq!(ps[0].pid, Some(g.vm.pid));
    assert_eq!(ps[0].ready.as_ref().unwrap().host, "router-backup");

    let out = console_run(
        &g.vm.paths().serial_sock,
        "echo console-$((40+2)) $(hostname)",
        "console-42 router-backup",
        Duration::from_secs(60),
    );
    assert!(out.contains("console-42 router-backup"), "{out}");

    match g.vm.stop(Duration::from_secs(60)).unwrap() {
        StopOutcome::PoweredOff {
            seconds,
            shutdown_reason,
        } => {
            eprintln!("e2e: powered off in {seconds:.1} s");
            // QMP's SHUTDOWN event says the guest itself powered off.
            assert_eq!(shutdown_reason.as_deref(), Some("guest-shutdown"));
        }
        other => panic!("expected an ACPI power-off, got {other:?}"),
    }
    let log = std::fs::read_to_string(&g.vm.paths().serial_log).unwrap();
    assert!(
        log.contains("ramux: powering off"),
        "no power-off line:\n{log}"
    );
    assert!(vlaunch::vm::running_pid(g.vm.paths()).is_none());
    assert!(!g.vm.paths().qmp_sock.exists(), "stop leaves no sockets");
}

/// The firmware a boot-mode test starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fw {
    Bios,
    Uefi,
    SecureBoot,
}

fn boot_mode(tag: &str, fw: Fw, usb: bool) -> VmGuard {
    let img = image("router");
    let _slot = qemu_slots(1);
    let root = state_root();
    let mut opts = options(&img, tag, root.path());
    let uefi = fw != Fw::Bios;
    opts.uefi = uefi;
    opts.usb = usb;
    opts.secure_boot = fw == Fw::SecureBoot;
    let _sw = router_nics(&mut opts);
    let (g, ready) = boot(opts, root);
    assert_eq!(ready.info.profile, "router");
    let spec = &g.vm.record.spec;
    assert_eq!(
        spec.media,
        if usb {
            vlaunch::Media::Usb
        } else {
            vlaunch::Media::Cd
        }
    );
    if uefi {
        // Each UEFI VM has its own fresh variable store in its state directory.
        let vlaunch::Firmware::Uefi { vars, .. } = &spec.firmware else {
            panic!("not UEFI: {:?}", spec.firmware)
        };
        assert!(vars.starts_with(&spec.paths.dir), "{}", vars.display());
        // The firmware really was OVMF: its banner is on the console before the kernel's.
        let log = std::fs::read(&spec.paths.serial_log).unwrap();
        let log = String::from_utf8_lossy(&log);
        assert!(
            log.contains("BdsDxe"),
            "no OVMF boot manager output on the console"
        );
    }
    g
}

#[test]
fn router_boots_bios_usb() {
    boot_mode("biosusb", Fw::Bios, true);
}

#[test]
fn router_boots_uefi_cd() {
    boot_mode("ueficd", Fw::Uefi, false);
}

#[test]
fn router_boots_uefi_usb() {
    boot_mode("uefiusb", Fw::Uefi, true);
}

/// Secure Boot enforced, from a USB stick (the bare-metal path): the firmware starts only
/// signed code, so the ready line means shim, GRUB and the kernel were accepted; the kernel must
/// also say that Secure Boot is on and that it locked itself down, and the NICs' modules (signed
/// by Debian, copied unchanged) must have loaded under lockdown for the ready line to come.
#[test]
fn router_boots_uefi_secure_boot_usb() {
    let g = boot_mode("uefisbusb", Fw::SecureBoot, true);
    let vlaunch::Firmware::Uefi { secure_boot, .. } = &g.vm.record.spec.firmware else {
        panic!("not UEFI")
    };
    assert!(secure_boot);
    let out = console_run(
        &g.vm.paths().serial_sock,
        "echo sb-$(dmesg | grep -c 'Secure boot enabled')-$(dmesg | grep -c 'locked down from EFI Secure Boot')",
        "sb-1-1",
        Duration::from_secs(60),
    );
    assert!(out.contains("sb-1-1"), "{out}");
}

/// The functional KVM probe boots the image's kernel to its end-of-boot marker; under TCG this
/// must work anywhere, so it checks the probe itself (on this host the cheap checks already say
/// TCG, so `-accel kvm` is never tried by the launches above).
#[test]
fn kvm_probe_machinery_boots_the_kernel_under_tcg() {
    let img = image("router");
    let _slot = qemu_slots(1);
    let tmp = tempfile::tempdir().unwrap();
    let kernel = vlaunch::probe::extract_kernel(&img.iso, tmp.path()).unwrap();
    // The cached path end to end: extract the kernel from the ISO, boot it, store the outcome;
    // the second call answers from the cache file.
    let cache = tmp.path().join("probe.json");
    let t0 = std::time::Instant::now();
    let (out, cached) = vlaunch::probe::cached_probe_with(
        &img.iso,
        &cache,
        None,
        vlaunch::Accel::Tcg,
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(out, vlaunch::accel::ProbeOutcome::Booted);
    assert!(!cached);
    eprintln!(
        "e2e: probe kernel booted under TCG in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let (again, cached) = vlaunch::probe::cached_probe_with(
        &img.iso,
        &cache,
        None,
        vlaunch::Accel::Tcg,
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(
        (again, cached),
        (vlaunch::accel::ProbeOutcome::Booted, true)
    );
    // A kernel that cannot boot (not a kernel at all) must not count as booted.
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"not a kernel").unwrap();
    let bad =
        vlaunch::probe::run_probe(&junk, vlaunch::Accel::Tcg, Duration::from_secs(30)).unwrap();
    assert!(
        matches!(bad, vlaunch::accel::ProbeOutcome::Failed(_)),
        "{bad:?}"
    );
    assert!(
        std::fs::metadata(&kernel).unwrap().len() > 1_000_000,
        "extracted kernel too small"
    );
    // And the host's own verdict, for the log (differs between hosts, so not asserted).
    let facts = vlaunch::accel::probe_facts();
    eprintln!(
        "e2e: accel auto here: {:?}",
        vlaunch::accel::decide(vlaunch::AccelRequest::Auto, None, &facts)
    );
}
