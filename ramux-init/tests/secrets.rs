//! The site secrets overlay end to end under QEMU (TCG): one initramfs (tests/fixture), booted
//! (a) with an overlay as fw_cfg `opt/ramux/secrets`: the service that needs a key runs and sees
//! it in /run/ramux/secrets with mode 0600; (b) without one: the service is not started and the
//! console says which secret is missing, before the ready line; (c) with an overlay a careless
//! packer wrote with a 0644 file (the real packer refuses it): the file is not installed and the
//! service fails naming it. Throwaway secrets only.

mod fixture;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fixture::*;
use ramux_contract::secrets::{encode, pack, Entry, HostEntry, HostKind};

const APPLIANCE: &str = r#"
profile = "secretstest"
role = "MASTER"
hostname = "ramux-secretstest"
kernel_release = "6.1.0-56-amd64"
modules = @MODULES@
[[service]]
name = "radius"
argv = ["/bin/sh", "-c", "stat -c 'SEEN %a %u %n' /run/ramux/secrets /run/ramux/secrets/pki/radius.key /run/ramux/secrets/radius/nas/sw1; exec sleep 3600"]
secrets = ["pki/radius.key", "radius/nas"]
[[service]]
name = "plain"
argv = ["/bin/sleep", "3600"]
"#;

const READY: &str = "ramux: ready profile=secretstest role=MASTER host=ramux-secretstest";

fn host_file(path: &str, mode: u32, data: &str) -> HostEntry {
    HostEntry {
        path: path.into(),
        mode,
        kind: HostKind::File(data.as_bytes().to_vec()),
    }
}

fn host_dir(path: &str) -> HostEntry {
    HostEntry {
        path: path.into(),
        mode: 0o700,
        kind: HostKind::Dir,
    }
}

fn write_0600(work: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = work.join(name);
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn boot(work: &Path, image: &(PathBuf, PathBuf), overlay: Option<&Path>) -> String {
    let mut vm = Vm::boot_with(work, &image.0, &image.1, false, overlay);
    vm.wait_for(READY, Duration::from_secs(120));
    // The service's output races the ready line: give it a moment.
    std::thread::sleep(Duration::from_secs(2));
    vm.text()
}

#[test]
fn a_service_runs_with_its_secrets_and_fails_loudly_without_them() {
    let work = workdir("secrets");
    let modules = module_closure(&kernel_tree(), &["qemu_fw_cfg"]);
    let toml = APPLIANCE.replace("@MODULES@", &format!("{modules:?}"));
    let image = build_image(&work.0, &toml, &[], &["qemu_fw_cfg"]);
    let mut site = vec![
        host_dir("pki"),
        host_file(
            "pki/radius.key",
            0o600,
            "-----BEGIN PRIVATE KEY-----\nthrowaway\n",
        ),
        host_dir("radius"),
        host_dir("radius/nas"),
        host_file("radius/nas/sw1", 0o600, "0123456789abcdef\n"),
    ];
    let good = write_0600(&work.0, "good.secrets", &pack(&site).unwrap());

    // (a) with the overlay
    let text = boot(&work.0, &image, Some(&good));
    assert!(
        text.contains(
            "ramux: secrets: 2 files from fw_cfg opt/ramux/secrets in /run/ramux/secrets"
        ),
        "{text}"
    );
    assert!(text.contains("SEEN 700 0 /run/ramux/secrets\n"), "{text}");
    assert!(
        text.contains("SEEN 600 0 /run/ramux/secrets/pki/radius.key"),
        "{text}"
    );
    assert!(
        text.contains("SEEN 600 0 /run/ramux/secrets/radius/nas/sw1"),
        "{text}"
    );
    assert!(!text.contains("ramux: failed"), "{text}");

    // (b) without it
    let text = boot(&work.0, &image, None);
    let missing = "ramux: failed radius: secret pki/radius.key missing (expected in /run/ramux/secrets; pack it with vbuild secrets pack)";
    let at = text.find(missing).unwrap_or_else(|| panic!("{text}"));
    assert!(
        at < text.find(READY).unwrap(),
        "before the ready line:\n{text}"
    );
    assert!(!text.contains("SEEN"), "radius must not start:\n{text}");
    assert!(!text.contains("ramux: failed plain"), "{text}");

    // (c) a world-readable file: refused by the packer, and at boot when forced in
    site[4] = host_file("radius/nas/sw1", 0o644, "0123456789abcdef\n");
    let e = pack(&site).unwrap_err();
    assert!(e.starts_with("radius/nas/sw1: mode 0644"), "{e}");
    let forced: Vec<Entry> = site
        .iter()
        .map(|h| Entry {
            path: h.path.clone(),
            mode: h.mode,
            data: match &h.kind {
                HostKind::File(d) => Some(d.clone()),
                _ => None,
            },
        })
        .collect();
    let bad = write_0600(&work.0, "bad.secrets", &encode(forced).unwrap());
    let text = boot(&work.0, &image, Some(&bad));
    assert!(
        text.contains("ramux: failed secrets: radius/nas/sw1: packed with mode 0644, readable by others: not installed"),
        "{text}"
    );
    assert!(
        text.contains("ramux: failed radius: secret radius/nas/sw1 was packed with mode 0644, readable by others"),
        "{text}"
    );
    assert!(!text.contains("SEEN"), "{text}");
    assert_eq!(count_lines(&text, |l| l == READY), 1, "{text}");
}
