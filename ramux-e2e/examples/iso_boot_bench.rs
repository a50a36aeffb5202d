//! Boot time to the ready line per boot mode (BIOS/UEFI x CD/USB, and UEFI USB with Secure Boot
//! enforced) under TCG: vlaunch side by
//! side with the hand-written QEMU command lines it replaces (the plain commands a user would
//! type, listed in docs/benchmarks.md), alternating runs, one QEMU at a time, on the router image
//! built with vbuild. The plain lines stay hand-written on purpose: they are the baseline
//! vlaunch's own command line ([`vlaunch::qemu::QemuCommand`]) is measured against.
//!
//!   scripts/build && RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release \
//!     cargo run --release -p ramux-e2e --example iso_boot_bench [-- RUNS]
//!
//! Prints a markdown table (median seconds, min-max, ratio vlaunch/plain).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vlaunch::vm::{OVMF_CODE, OVMF_CODE_SB, OVMF_VARS, OVMF_VARS_SB};

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    uefi: bool,
    usb: bool,
    secure: bool,
}

const MODES: [Mode; 5] = [
    Mode {
        name: "BIOS CD",
        uefi: false,
        usb: false,
        secure: false,
    },
    Mode {
        name: "BIOS USB",
        uefi: false,
        usb: true,
        secure: false,
    },
    Mode {
        name: "UEFI CD",
        uefi: true,
        usb: false,
        secure: false,
    },
    Mode {
        name: "UEFI USB",
        uefi: true,
        usb: true,
        secure: false,
    },
    Mode {
        name: "UEFI USB Secure Boot",
        uefi: true,
        usb: true,
        secure: true,
    },
];

fn vlaunch_boot(img: &common::Image, m: Mode, run: usize) -> f64 {
    let root = common::state_root();
    let mut o = common::options(img, &format!("b{run}"), root.path());
    o.uefi = m.uefi;
    o.usb = m.usb;
    o.secure_boot = m.secure;
    o.accel = vlaunch::AccelRequest::Tcg;
    // The router fails closed without its two NICs, so it gets them on a vswitch.
    let _sw = common::router_nics(&mut o);
    let (g, ready) = {
        let vm = vlaunch::launch(&o, &mut |_| {}).expect("launch");
        let mut g = common::VmGuard {
            vm,
            state_root: root,
        };
        let r =
            g.vm.wait_ready(common::BOOT_TIMEOUT, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        (g, r)
    };
    drop(g);
    ready.seconds
}

/// The plain QEMU command a user would type for this mode, serial console to a file.
fn plain_boot(img: &common::Image, m: Mode) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("serial.log");
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-accel",
        "tcg",
        "-m",
        &img.mem_mib().to_string(),
        "-display",
        "none",
    ]);
    c.arg("-serial").arg(format!("file:{}", log.display()));
    // The router's two NICs, each on a QEMU hub of its own with nothing else on it (no traffic
    // leaves the VM), as virtio-net like vlaunch's.
    for n in 0..2 {
        c.arg("-netdev")
            .arg(format!("hubport,id=n{n},hubid={n}"))
            .arg("-device")
            .arg(format!("virtio-net-pci,netdev=n{n}"));
    }
    if m.secure {
        // What the spec's recipe adds for Secure Boot: SMM, and the firmware's variable store
        // writable only from SMM, with Microsoft's keys enrolled (the .ms.fd images).
        c.args(["-machine", "q35,smm=on"])
            .args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
    }
    if m.uefi {
        let (code, vars_src) = if m.secure {
            (OVMF_CODE_SB, OVMF_VARS_SB)
        } else {
            (OVMF_CODE, OVMF_VARS)
        };
        let vars = tmp.path().join("vars.fd");
        std::fs::copy(vars_src, &vars).unwrap();
        c.arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={code}"
            ))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
    }
    let iso = img.iso.display();
    match (m.usb, m.uefi) {
        (false, _) => {
            c.arg("-cdrom").arg(&img.iso).args(["-boot", "d"]);
        }
        (true, false) => {
            c.arg("-drive").arg(format!(
                "file={iso},format=raw,if=ide,media=disk,snapshot=on"
            ));
        }
        (true, true) => {
            c.arg("-drive")
                .arg(format!("file={iso},format=raw,if=virtio,readonly=on"));
        }
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = c.spawn().expect("qemu");
    let secs = wait_line(&log, t0);
    let _ = child.kill();
    let _ = child.wait();
    secs.unwrap_or_else(|| panic!("plain {}: no ready line", m.name))
}

fn wait_line(log: &Path, t0: Instant) -> Option<f64> {
    while t0.elapsed() < common::BOOT_TIMEOUT {
        if let Ok(b) = std::fs::read(log) {
            let mut sc = vlaunch::serial::ConsoleScanner::new(0);
            sc.feed(&b);
            if sc.ready().is_some() {
                return Some(t0.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("RUNS is a number"))
        .unwrap_or(3);
    let img = common::image("router");
    eprintln!(
        "router image: {} ({} bytes), {} MiB RAM, {runs} runs per mode and tool",
        img.iso.display(),
        img.report.size,
        img.mem_mib()
    );
    println!("| boot mode | vlaunch median (min-max) | plain QEMU median (min-max) | ratio vlaunch/plain |");
    println!("|---|---|---|---|");
    for m in MODES {
        let (mut a, mut b) = (vec![], vec![]);
        for r in 0..runs {
            a.push(vlaunch_boot(&img, m, r));
            b.push(plain_boot(&img, m));
            eprintln!(
                "{}: run {r}: vlaunch {:.1} s, plain {:.1} s",
                m.name, a[r], b[r]
            );
        }
        let (am, amin, amax) = stats(&mut a);
        let (bm, bmin, bmax) = stats(&mut b);
        println!(
            "| {} | {am:.1} s ({amin:.1}-{amax:.1}) | {bm:.1} s ({bmin:.1}-{bmax:.1}) | {:.2} |",
            m.name,
            am / bm
        );
    }
}
