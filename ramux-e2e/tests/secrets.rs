//! The site secrets overlay through the real pipeline: `vbuild secrets init` + `pack` (library),
//! the client image built by vbuild (its common module list loads `qemu_fw_cfg`), booted by
//! vlaunch with `LaunchOptions.secrets` (`--secrets`): the files are in /run/ramux/secrets with
//! mode 0600, read through the guest agent; the ISO is byte-identical before and after, rebuilt
//! the same, and holds none of the secrets (the overlay is never an input of vbuild).
//!
//! Needs $RAMUX_BIN_DIR (scripts/build) and the image tools, like the other e2e tests.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn sha256(p: &std::path::Path) -> String {
    vbuild::sha256_file(p).unwrap()
}

fn guest(sock: &std::path::Path, cmd: &str) -> String {
    let o = guest_sh(sock, cmd, None, Duration::from_secs(20));
    assert_eq!(o.code, Some(0), "{cmd}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_vm_gets_its_overlay_and_the_iso_never_changes() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("site-secrets");
    let req = vbuild::secrets::InitRequest {
        dir: dir.clone(),
        nas: vec!["sw1".into()],
        users: vec![("alice".into(), "wonderland".into())],
        cns: vec!["alice".into()],
    };
    vbuild::secrets::init(&req).unwrap();
    let overlay = work.path().join("client.secrets");
    let bytes = vbuild::secrets::pack(&dir, &[]).unwrap();
    vbuild::secrets::write_overlay(&overlay, &bytes).unwrap();
    assert_eq!(
        std::fs::metadata(&overlay).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let nas = std::fs::read_to_string(dir.join("radius/nas/sw1")).unwrap();

    let img = image_with("client", "", &[]);
    let before = sha256(&img.iso);
    let _slot = qemu_slots(1);
    let root = state_root();
    let mut opts = options(&img, "secrets", root.path());
    opts.mem_mib = 512;
    opts.secrets = Some(overlay.clone());
    let (g, _ready) = boot(opts, root);
    assert!(
        g.vm.record
            .qemu_command
            .contains("-fw_cfg name=opt/ramux/secrets,file="),
        "{}",
        g.vm.record.qemu_command
    );
    let log = std::fs::read_to_string(&g.vm.paths().serial_log).unwrap();
    assert!(
        log.contains("ramux: secrets: 5 files from fw_cfg opt/ramux/secrets"),
        "{log}"
    );
    let sock = g.vm.paths().qga_sock.clone();
    let seen = guest(&sock, "stat -c '%a %u %n' /run/ramux/secrets /run/ramux/secrets/pki/radius.key /run/ramux/secrets/radius/nas/sw1; cat /run/ramux/secrets/radius/nas/sw1; ls /run/ramux/secrets/pki");
    assert!(seen.contains("700 0 /run/ramux/secrets\n"), "{seen}");
    assert!(
        seen.contains("600 0 /run/ramux/secrets/pki/radius.key\n"),
        "{seen}"
    );
    assert!(seen.contains(&nas), "{seen}");
    assert!(
        !seen.contains("clients"),
        "client keys are not packed: {seen}"
    );
    drop(g);

    assert_eq!(
        sha256(&img.iso),
        before,
        "booting with an overlay never touches the ISO"
    );
    let iso = std::fs::read(&img.iso).unwrap();
    let secret = nas.trim().as_bytes();
    assert!(!iso.windows(secret.len()).any(|w| w == secret));
    std::fs::create_dir(work.path().join("again")).unwrap();
    let again = work.path().join("again").join(img.iso.file_name().unwrap());
    let report = vbuild::build_iso(&vbuild::BuildRequest {
        root: repo_root(),
        profile: "client".into(),
        out: Some(again.clone()),
        bin_dir: Some(bin_dir()),
        epoch: Some(img.report.epoch),
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        report.sha256, before,
        "the same ISO with a secrets directory around"
    );
    eprintln!("e2e: client ISO sha256 {before} with and without the overlay");
}
