//! The site key (docs/keep.md) through the real pipeline: the client image (every image has the
//! USB modules, dosfstools and a keep list) booted by vlaunch with `--key` (a 64 MiB FAT32 stick
//! labelled RAMUXKEY that vlaunch creates); in the guest `ramux keep commit` twice, `diff` and
//! `list`; then, on the host with mtools as an admin on a PC would, the newest generation is
//! corrupted, an override and the secrets overlay are dropped on the key; the second boot passes
//! over the corrupted generation, restores the first, applies the override and installs the
//! secrets from the key (no fw_cfg). Then power cuts: SIGKILL of QEMU at a random moment while
//! the guest commits in a loop, `RAMUX_KEEP_POWER_CUTS` times (default 4 in CI; the note of the
//! issue reports a run of 10), each checked on the host image and by the next boot.
//!
//! Needs $RAMUX_BIN_DIR (scripts/build), the image tools and mtools, like the other e2e tests.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn guest(sock: &Path, cmd: &str) -> String {
    let o = guest_sh(sock, cmd, None, Duration::from_secs(30));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.code, Some(0), "{cmd}: {out}{err}");
    out + &err
}

fn serial(g: &VmGuard) -> String {
    std::fs::read_to_string(&g.vm.paths().serial_log).unwrap()
}

#[test]
fn commits_survive_a_reboot_and_a_corrupted_newest_generation_falls_back() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("client.key");
    let img = image_with("client", "", &[]);
    let _slot = qemu_slots(1);

    let root = state_root();
    let mut opts = options(&img, "keep", root.path());
    opts.mem_mib = 512;
    opts.key = Some(key.clone());
    let (g, ready) = boot(opts.clone(), root);
    let host = ready.info.host.clone();
    let log = serial(&g);
    assert!(
        log.contains("ramux: keep found sda (LABEL=RAMUXKEY)"),
        "{log}"
    );
    assert!(
        log.contains("ramux: keep applied no generation (image defaults)"),
        "{log}"
    );
    let sock = g.vm.paths().qga_sock.clone();
    let out = guest(
        &sock,
        "mkdir -p /etc/ramux/local && echo kept-1 > /etc/ramux/local/note && \
         /usr/sbin/ramux keep commit -m first",
    );
    assert!(
        out.contains("ramux: keep committed gen-000001.tar (1 files) to sda"),
        "{out}"
    );
    let out = guest(
        &sock,
        "echo kept-2 > /etc/ramux/local/note && /usr/sbin/ramux keep diff && \
         /usr/sbin/ramux keep commit -m second && /usr/sbin/ramux keep list --json",
    );
    assert!(out.contains("~ /etc/ramux/local/note"), "{out}");
    assert!(out.contains("committed gen-000002.tar"), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&out[out.find('[').unwrap()..]).expect("list --json");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(
        list[0]["info"].as_str().unwrap().contains("msg=second"),
        "{list}"
    );
    let status = guest(&sock, "/usr/sbin/ramux keep status --json");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["changed"], 0, "{status}");
    assert_eq!(
        status["dirty"], false,
        "unmounted after the commit: {status}"
    );
    // Revert: to a named generation, then to the newest valid one.
    let out = guest(
        &sock,
        "echo scratch > /etc/ramux/local/note && /usr/sbin/ramux keep revert 1 && \
         cat /etc/ramux/local/note && /usr/sbin/ramux keep revert && cat /etc/ramux/local/note",
    );
    assert_eq!(
        out,
        "ramux: keep reverted to gen-000001.tar (1 files)\nkept-1\n\
         ramux: keep reverted to gen-000002.tar (1 files)\nkept-2\n",
        "{out}"
    );
    drop(g);

    // The admin's PC: corrupt gen 2, drop an override and the secrets overlay on the key.
    let bad = work.path().join("bad.tar");
    std::fs::write(&bad, b"not the committed tar").unwrap();
    let d = format!("/RAMUX/{host}");
    mcopy(&key, &bad, &format!("{d}/gen-000002.tar"));
    for sub in [
        "overrides",
        "overrides/etc",
        "overrides/etc/ramux",
        "overrides/etc/ramux/local",
    ] {
        mmd(&key, &format!("{d}/{sub}"));
    }
    let extra = work.path().join("extra");
    std::fs::write(&extra, b"from-the-pc\n").unwrap();
    mcopy(
        &key,
        &extra,
        &format!("{d}/overrides/etc/ramux/local/extra"),
    );
    let secrets_dir = work.path().join("site-secrets");
    vbuild::secrets::init(&vbuild::secrets::InitRequest {
        dir: secrets_dir.clone(),
        nas: vec!["sw1".into()],
        users: vec![],
        cns: vec![],
    })
    .unwrap();
    let overlay = work.path().join("site.secrets");
    let bytes = vbuild::secrets::pack(&secrets_dir, &[]).unwrap();
    vbuild::secrets::write_overlay(&overlay, &bytes).unwrap();
    mcopy(&key, &overlay, &format!("{d}/site.secrets"));

    let root = state_root();
    opts.state_root = root.path().to_path_buf();
    let (g, _) = boot(opts, root);
    let log = serial(&g);
    for want in [
        "ramux: keep passed over gen-000002.tar: its .tar does not match its .sha256",
        "ramux: keep applied gen-000001.tar (1 files)",
        "ramux: keep applied 1 overrides",
        "files from the key's site.secrets in /run/ramux/secrets",
    ] {
        assert!(log.contains(want), "no {want:?} in:\n{log}");
    }
    let sock = g.vm.paths().qga_sock.clone();
    let seen = guest(
        &sock,
        "cat /etc/ramux/local/note /etc/ramux/local/extra; stat -c '%a %n' /run/ramux/secrets/radius/nas/sw1",
    );
    assert_eq!(
        seen,
        "kept-1\nfrom-the-pc\n600 /run/ramux/secrets/radius/nas/sw1\n"
    );
    eprintln!(
        "e2e: keep: {}",
        log.lines()
            .filter(|l| l.contains("keep"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// Every generation on the key image, read with mtools: (generation, has a hash file, valid).
fn generations_on(key: &Path, host: &str) -> Vec<(u32, bool, bool)> {
    use ramux_keep::generation::{check, Gen, Part};
    let o = Command::new("mdir")
        .args(["-b", "-i"])
        .arg(key)
        .arg(format!("::/RAMUX/{host}"))
        .output()
        .expect("mdir (mtools)");
    let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next().map(str::to_string))
        .collect();
    let read = |name: &str| {
        let o = Command::new("mtype")
            .arg("-i")
            .arg(key)
            .arg(format!("::/RAMUX/{host}/{name}"))
            .output()
            .unwrap();
        o.status.success().then_some(o.stdout)
    };
    let mut gens: Vec<u32> = names
        .iter()
        .filter_map(|n| Gen::parse_name(n).map(|(g, _)| g.0))
        .collect();
    gens.sort_unstable();
    gens.dedup();
    gens.iter()
        .map(|&g| {
            let gen = Gen(g);
            let has_sum = names
                .iter()
                .any(|n| Gen::parse_name(n) == Some((gen, Part::Sum)));
            let valid = match (read(&gen.tar_name()), read(&gen.sum_name())) {
                (Some(t), Some(s)) => check(gen, &t, &s).is_ok(),
                _ => false,
            };
            (g, has_sum, valid)
        })
        .collect()
}

/// The last `committed gen-N` the console printed.
fn last_reported(log: &str) -> Option<u32> {
    log.lines()
        .filter_map(|l| l.split("keep committed gen-").nth(1))
        .filter_map(|r| r.get(..6)?.parse().ok())
        .next_back()
}

#[test]
fn power_cuts_during_commits_leave_the_last_reported_generation_or_the_next() {
    let cuts: u32 = std::env::var("RAMUX_KEEP_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("cut.key");
    let img = image_with("client", "", &[]);
    let _slot = qemu_slots(1);
    // A fixed sequence of cut moments that still differs between cuts (a test must replay).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut expect_applied: Option<u32> = None;
    let mut prev_dirty = false;
    for cut in 1..=cuts {
        let root = state_root();
        let mut opts = options(&img, "cut", root.path());
        opts.mem_mib = 512;
        opts.key = Some(key.clone());
        let (mut g, ready) = boot(opts, root);
        let host = ready.info.host.clone();
        let log0 = serial(&g);
        if let Some(n) = expect_applied {
            let want = format!("ramux: keep applied gen-{n:06}.tar");
            assert!(log0.contains(&want), "cut {cut}: no {want:?} in:\n{log0}");
        }
        let sock = g.vm.paths().qga_sock.clone();
        // Commits back to back, each with a changed counter and 256 KiB of fresh data.
        guest(
            &sock,
            "mkdir -p /etc/ramux/local; setsid sh -c 'i=0; while true; do i=$((i+1)); \
             echo $i > /etc/ramux/local/note; \
             dd if=/dev/urandom of=/etc/ramux/local/blob bs=64k count=4 2>/dev/null; \
             /usr/sbin/ramux keep commit -m loop$i --keep 3; done' > /dev/ttyS0 2>&1 < /dev/null &",
        );
        let t0 = std::time::Instant::now();
        while last_reported(&serial(&g)[log0.len()..]).is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "cut {cut}: no commit:\n{}",
                serial(&g)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 2500);
        std::thread::sleep(delay);
        g.vm.kill();
        let log = serial(&g);
        if prev_dirty {
            assert!(
                log[log0.len()..].contains("fsck.fat -a"),
                "cut {cut}: the dirty key was committed to without fsck:\n{log}"
            );
        }
        let reported = last_reported(&log).unwrap();
        let gens = generations_on(&key, &host);
        let torn: Vec<_> = gens.iter().filter(|g| g.1 && !g.2).collect();
        assert!(
            torn.is_empty(),
            "cut {cut}: hash file present but invalid: {torn:?}"
        );
        let newest = gens.iter().filter(|g| g.2).map(|g| g.0).max();
        assert!(
            newest == Some(reported) || newest == Some(reported + 1),
            "cut {cut} after {delay:?}: console last reported gen {reported}, newest valid on \
             the key {newest:?}: {gens:?}"
        );
        let dirty = ramux_keep::disk::probe_path(&key).unwrap().unwrap().dirty;
        prev_dirty = dirty;
        eprintln!(
            "e2e: cut {cut}/{cuts} {delay:?} after a commit: reported gen {reported}, newest valid \
             {newest:?}, dirty {dirty}, on the key {gens:?}"
        );
        expect_applied = newest;
        drop(g);
    }
    // The last cut's survivor is what the next boot applies.
    let root = state_root();
    let mut opts = options(&img, "cut", root.path());
    opts.mem_mib = 512;
    opts.key = Some(key.clone());
    let (g, _) = boot(opts, root);
    let want = format!("ramux: keep applied gen-{:06}.tar", expect_applied.unwrap());
    assert!(serial(&g).contains(&want), "no {want:?}:\n{}", serial(&g));
}
