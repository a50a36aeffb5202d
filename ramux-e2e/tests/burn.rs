//! `vlaunch burn` on a machine that has USB sticks, without USB hardware here (docs/burn.md):
//! the client image boots from its CD in a QEMU guest that also has two emulated USB sticks on
//! an xHCI controller (one `removable=on`, one `removable=off`, as many real sticks say) and a
//! virtio system disk. The static vlaunch, copied in through the guest agent, lists both sticks
//! as candidates and neither the system disk nor the CD (each with its reason), refuses to
//! write the system disk, and writes and verifies the client ISO (read from a read-only virtio
//! disk) to the removable stick. On the host the stick holds the ISO's bytes, and a second QEMU boots
//! it over xHCI to the ready line; both boot times are printed.
//!
//! Needs $RAMUX_BIN_DIR (scripts/build) and the image tools, like the other e2e tests.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn guest(sock: &Path, cmd: &str, input: Option<&[u8]>) -> (Option<i32>, String, String) {
    let o = guest_sh(sock, cmd, input, Duration::from_secs(180));
    (
        o.code,
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Copies `data` to `dest` in the guest in 4 MiB pieces (one guest-exec each: a single JSON
/// message of tens of MB is more than the agent should be asked to parse).
fn copy_in(sock: &Path, data: &[u8], dest: &str) {
    let (code, _, err) = guest(sock, &format!("mkdir -p /run/burn && : > {dest}"), None);
    assert_eq!(code, Some(0), "{err}");
    for piece in data.chunks(4 << 20) {
        let (code, _, err) = guest(sock, &format!("cat >> {dest}"), Some(piece));
        assert_eq!(code, Some(0), "{dest}: {err}");
    }
}

fn sparse(p: &Path, mib: u64) {
    std::fs::File::create(p)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
}

#[test]
fn the_static_vlaunch_lists_only_the_sticks_writes_one_and_it_boots() {
    let work = tempfile::tempdir().unwrap();
    let (s1, s2, sys) = (
        work.path().join("stick1.img"),
        work.path().join("stick2.img"),
        work.path().join("system.img"),
    );
    sparse(&s1, 96);
    sparse(&s2, 128);
    sparse(&sys, 256);
    let img = image_with("client", "", &[]);
    let _slot = qemu_slots(1);
    let root = state_root();
    let mut opts = options(&img, "burn", root.path());
    let drive = |id: &str, p: &Path| format!("if=none,id={id},format=raw,file={}", p.display());
    opts.qemu_args = vec![
        "-device".into(),
        "qemu-xhci,id=ux".into(),
        "-drive".into(),
        drive("s1", &s1),
        "-device".into(),
        "usb-storage,bus=ux.0,drive=s1,removable=on".into(),
        "-drive".into(),
        drive("s2", &s2),
        "-device".into(),
        "usb-storage,bus=ux.0,drive=s2,removable=off".into(),
        "-drive".into(),
        format!("if=virtio,format=raw,file={}", sys.display()),
        // The ISO to write, as a read-only virtio disk: faster than the agent for 48 MB.
        "-drive".into(),
        format!(
            "if=virtio,format=raw,readonly=on,file={}",
            img.iso.display()
        ),
    ];
    let (g, cd_ready) = boot(opts, root);
    let sock = g.vm.paths().qga_sock.clone();
    let vlaunch = std::fs::read(ramux_bin("vlaunch")).unwrap();
    copy_in(&sock, &vlaunch, "/run/burn/vlaunch");
    let (code, _, err) = guest(&sock, "chmod 755 /run/burn/vlaunch", None);
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = guest(&sock, "/run/burn/vlaunch burn --list --json", None);
    assert_eq!(code, Some(0), "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let disks = list["disks"].as_array().unwrap();
    let by_size = |mib: u64| {
        disks
            .iter()
            .find(|d| d["size_bytes"] == (mib << 20))
            .unwrap_or_else(|| panic!("no {mib} MiB disk in {list}"))
    };
    let (d1, d2, dsys) = (by_size(96), by_size(128), by_size(256));
    assert_eq!(d1["candidate"], true, "{d1}");
    assert_eq!(
        d2["candidate"], true,
        "removable=off is still a stick: {d2}"
    );
    assert_eq!(d1["transport"], "usb", "{d1}");
    assert_eq!(dsys["candidate"], false, "{dsys}");
    assert!(dsys.to_string().contains("--any-bus"), "{dsys}");
    let cd = disks.iter().find(|d| d["name"] == "sr0");
    assert!(cd.is_none_or(|c| c["candidate"] == false), "{cd:?}");
    let candidates = disks.iter().filter(|d| d["candidate"] == true).count();
    assert_eq!(candidates, 2, "only the sticks: {list}");

    let stick = d1["path"].as_str().unwrap().to_string();
    let system = dsys["path"].as_str().unwrap().to_string();
    let iso_bytes = std::fs::read(&img.iso).unwrap();
    let iso_disk = disks
        .iter()
        .find(|d| d["size_bytes"] == iso_bytes.len() as u64)
        .unwrap_or_else(|| panic!("no ISO disk in {list}"));
    assert_eq!(iso_disk["candidate"], false, "{iso_disk}");
    let (code, _, err) = guest(
        &sock,
        &format!(
            "cat {} > /run/burn/boot.iso",
            iso_disk["path"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = guest(
        &sock,
        &format!("/run/burn/vlaunch burn /run/burn/boot.iso {system} --yes"),
        None,
    );
    assert_ne!(code, Some(0), "the system disk must be refused");
    assert!(err.contains("--any-bus"), "{err}");
    let (code, out, err) = guest(
        &sock,
        &format!("/run/burn/vlaunch burn /run/burn/boot.iso {stick} --yes --json"),
        None,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let done: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(done["verified"], true, "{done}");
    assert_eq!(done["sha256"], img.report.sha256, "{done}");
    eprintln!("e2e: burn in the guest: {done}");
    drop(g);

    let stick_bytes = std::fs::read(&s1).unwrap();
    assert!(
        stick_bytes[..iso_bytes.len()] == iso_bytes[..],
        "the stick holds the ISO"
    );
    let root = state_root();
    let mut opts = options(&img, "stick", root.path());
    opts.iso = s1.clone();
    opts.usb = true;
    let (_g, usb_ready) = boot(opts, root);
    eprintln!(
        "e2e: ready from the CD in {:.1} s, from the written stick over xHCI in {:.1} s",
        cd_ready.seconds, usb_ready.seconds
    );
}

/// The shell script run in the guest by [`capture_the_refusal_fixtures`]: uses every kind of
/// disk the way a machine would (a system disk holding `/`, a mounted stick, a stick with
/// active swap), then copies what ramux-burn's detection reads (the `sys/block` and
/// `sys/class/block` links as the kernel made them, each disk's and partition's `dev size ro
/// removable partition start`, the `device` link and its `vendor model serial name type`,
/// `holders/`; `/proc/swaps`; `/proc/self/mountinfo` seen from a shell chrooted into the system
/// disk, so `/` is on it) into a tree, and writes it as a tar.gz to stdout (the agent carries bytes). `$B` is a static
/// busybox copied in, so the script does not depend on the image's tools.
const CAPTURE_SH: &str = r#"set -eu
B=/run/burn/busybox
C=/run/cap
by_mib() { for d in /sys/block/*; do [ "$(cat $d/size)" = "$(( $1 * 2048 ))" ] && echo ${d##*/}; done; return 0; }
SYS=$(by_mib 256); MNT=$(by_mib 80); SWP=$(by_mib 72)
[ -n "$SYS" ] && [ -n "$MNT" ] && [ -n "$SWP" ] || { echo "disks missing: $(ls /sys/block)" >&2; exit 1; }
mkfs.fat /dev/${SYS}1 >/dev/null; mkfs.fat /dev/${MNT}1 >/dev/null
mkdir -p /mnt/sys; $B mount -t vfat /dev/${SYS}1 /mnt/sys
mkdir -p /mnt/sys/proc /mnt/sys/media/stick; cp $B /mnt/sys/busybox
$B mount -t vfat /dev/${MNT}1 /mnt/sys/media/stick
$B mkswap /dev/${SWP}2 >/dev/null; $B swapon /dev/${SWP}2
$B mount -t proc proc /mnt/sys/proc
rm -rf $C; mkdir -p $C/proc/self
$B chroot /mnt/sys /busybox cat /proc/self/mountinfo > $C/proc/self/mountinfo
cat /proc/swaps > $C/proc/swaps
attrs() { s=$1; shift; mkdir -p "$C$s"; for f in "$@"; do [ -f "$s/$f" ] && cat "$s/$f" > "$C$s/$f"; done; return 0; }
link() { mkdir -p "$C$($B dirname $1)"; ln -s "$($B readlink $1)" "$C$1"; }
for b in /sys/block/*; do
  n=${b##*/}; link $b; link /sys/class/block/$n
  real=$($B readlink -f $b)
  attrs $real dev size ro removable
  if [ -e $real/device ]; then link $real/device; attrs $($B readlink -f $real/device) vendor model serial name type; fi
  mkdir -p $C$real/holders; for h in $real/holders/*; do [ -e "$h" ] && link $h; done
  for p in $real/*/partition; do
    [ -e "$p" ] || continue; pd=${p%/partition}
    attrs $pd partition dev size start; mkdir -p $C$pd/holders; link /sys/class/block/${pd##*/}
  done
done
$B swapoff /dev/${SWP}2; $B umount /mnt/sys/proc /mnt/sys/media/stick /mnt/sys
$B tar -C $C -czf - .
"#;

/// Captures `ramux-burn/tests/fixtures/qemu` (the tree `ramux-burn/tests/rules_qemu.rs` runs
/// the refusal rules against) from a client guest with seven emulated USB sticks on xHCI, a
/// virtio system disk and the boot CD. Run once, by hand, and commit the tree:
/// `RAMUX_BIN_DIR=... cargo test --release -p ramux-e2e --test burn -- --ignored capture`.
#[test]
#[ignore = "writes ramux-burn/tests/fixtures/qemu; run by hand to capture it again"]
fn capture_the_refusal_fixtures() {
    let work = tempfile::tempdir().unwrap();
    // (MiB, removable, read-only, partition table): sizes are unique, the rules test finds
    // each disk by its size.
    let sticks: [(u64, bool, bool, &str); 7] = [
        (96, true, false, ",,c\n"),         // a candidate, one unmounted partition
        (128, false, false, ""),            // a candidate that says removable=0
        (64, true, true, ""),               // write-protected
        (100 << 10, false, false, ""),      // a 100 GiB USB disk: too large
        (16, true, false, ""),              // smaller than a 32 MiB image
        (80, true, false, ",,c\n"),         // its partition mounted
        (72, true, false, ",40M,c\n,,S\n"), // active swap on its second partition
    ];
    let table = |p: &Path, parts: &str| {
        let mut c = std::process::Command::new("sfdisk");
        c.arg("-q").arg(p).stdin(std::process::Stdio::piped());
        let mut ch = c.spawn().expect("sfdisk (fdisk package)");
        use std::io::Write;
        let spec = format!("label: dos\n{parts}");
        ch.stdin.take().unwrap().write_all(spec.as_bytes()).unwrap();
        assert!(ch.wait().unwrap().success(), "sfdisk {}", p.display());
    };
    let img = image_with("client", "", &[]);
    let _slot = qemu_slots(1);
    let root = state_root();
    let mut opts = options(&img, "capture", root.path());
    opts.qemu_args = vec!["-device".into(), "qemu-xhci,id=ux,p2=8,p3=8".into()];
    for (i, (mib, removable, ro, parts)) in sticks.iter().enumerate() {
        let p = work.path().join(format!("stick{i}.img"));
        sparse(&p, *mib);
        if !parts.is_empty() {
            table(&p, parts);
        }
        let ro = if *ro { ",readonly=on" } else { "" };
        let rm = if *removable { "on" } else { "off" };
        opts.qemu_args.extend([
            "-drive".into(),
            format!("if=none,id=s{i},format=raw{ro},file={}", p.display()),
            "-device".into(),
            format!("usb-storage,bus=ux.0,drive=s{i},removable={rm}"),
        ]);
    }
    let sys = work.path().join("system.img");
    sparse(&sys, 256);
    table(&sys, ",,c\n");
    opts.qemu_args.extend([
        "-drive".into(),
        format!("if=virtio,format=raw,file={}", sys.display()),
    ]);
    let (g, _) = boot(opts, root);
    let sock = g.vm.paths().qga_sock.clone();
    copy_in(
        &sock,
        &std::fs::read("/bin/busybox").unwrap(),
        "/run/burn/busybox",
    );
    let (code, _, err) = guest(&sock, "chmod 755 /run/burn/busybox", None);
    assert_eq!(code, Some(0), "{err}");
    let o = guest_sh(&sock, CAPTURE_SH, None, Duration::from_secs(120));
    assert_eq!(
        o.code,
        Some(0),
        "capture: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tgz = o.stdout;
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ramux-burn/tests/fixtures/qemu");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).unwrap();
    let mut tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dest)
        .args(["-xzf", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    tar.stdin.take().unwrap().write_all(&tgz).unwrap();
    assert!(tar.wait().unwrap().success());
    eprintln!(
        "e2e: captured {} ({} bytes of tar.gz)",
        dest.display(),
        tgz.len()
    );
}
