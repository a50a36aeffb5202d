//! Boot-phase benchmark (not a test): router images built in variants, booted side by side under
//! TCG (BIOS CD, the machine vlaunch starts), alternating rounds, one QEMU at a time, each
//! console byte stamped on the host when it arrives. Prints per-phase medians per variant and the
//! ratio to the first variant.
//!
//!   scripts/build && export RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release
//!   flock /tmp/ramux-heavy.lock cargo bench -p vbuild --bench boot -- --rounds 5 \
//!       'zstd=' 'gzip=compression = "gzip"' 'notests=cmdline = "cryptomgr.notests"'
//!
//! A variant is `LABEL=TOML`: the TOML lines (`;` separates lines) are put in front of
//! profiles/router/profile.toml in a temporary copy of profiles/ and overlays/, and the router
//! BACKUP image is built from that copy (same build clock for every variant). `LABEL=PATH.iso`
//! boots an existing ISO instead. Phases (host clock from QEMU's start unless noted):
//!
//! - firmware: QEMU start -> ISOLINUX banner (SeaBIOS, CD boot sector, ISOLINUX itself)
//! - isolinux kernel: banner -> `Loading .../initrd.img` (reading vmlinuz through BIOS int 13h)
//! - isolinux initrd: `Loading .../initrd.img` -> its `ok` (reading the initrd)
//! - boot stub: initrd read -> kernel clock 0 (bzImage decompressing itself; kernel clock 0 is
//!   the ready line's host time minus the `up N s after kernel start` that ramux-init prints)
//! - kernel: kernel clock 0 -> init starts (up - init; includes unpacking the initramfs)
//! - init: ramux-init start -> ready line (its own figure)
//! - initrd read + kernel: the two phases the initrd's size and compression act on
//! - unpack (kernel clock): `Trying to unpack rootfs` -> `Freeing initrd memory`, only when the
//!   variant's command line lets the kernel print info lines (e.g. `loglevel=7`)
//! - to first kernel line: initrd read -> the `Linux version` line on the host; with
//!   `earlyprintk=ttyS0,115200` that is the decompressed kernel's first instructions, i.e. the
//!   bzImage stub's own time
//!
//! The QEMU command line is vlaunch's for a BIOS CD boot (`vm.json`, `qemu_command`), with the
//! serial console on stdio instead of a socket and no QMP/guest-agent sockets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vbuild::{build_iso, BuildRequest};

const TIMEOUT: Duration = Duration::from_secs(240);
const PHASES: [&str; 10] = [
    "firmware",
    "isolinux kernel",
    "isolinux initrd",
    "boot stub",
    "kernel",
    "init",
    "total (ready)",
    "initrd read + kernel",
    "unpack (kernel clock)",
    "to first kernel line",
];

struct Variant {
    label: String,
    iso: PathBuf,
    initrd: Option<u64>,
}

fn main() {
    let mut rounds = 3usize;
    let mut specs = Vec::new();
    let mut keep_logs: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--rounds" => rounds = args.next().expect("--rounds N").parse().expect("number"),
            "--logs" => keep_logs = Some(args.next().expect("--logs DIR").into()),
            _ => specs.push(a),
        }
    }
    if specs.is_empty() {
        specs = vec!["zstd=".into()];
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let variants: Vec<Variant> = specs
        .iter()
        .map(|s| make_variant(&repo, tmp.path(), s))
        .collect();
    for v in &variants {
        eprintln!(
            "{}: {} (initrd {})",
            v.label,
            v.iso.display(),
            v.initrd
                .map_or("?".into(), |b| format!("{:.2} MB", b as f64 / 1e6))
        );
    }
    // results[variant][phase] = samples
    let mut results = vec![vec![Vec::<f64>::new(); PHASES.len()]; variants.len()];
    for r in 0..rounds {
        // Alternate the order every round so neither variant always boots first.
        let order: Vec<usize> = if r % 2 == 0 {
            (0..variants.len()).collect()
        } else {
            (0..variants.len()).rev().collect()
        };
        for i in order {
            let v = &variants[i];
            let (bytes, stamps) = boot(&v.iso);
            if let Some(d) = &keep_logs {
                std::fs::create_dir_all(d).unwrap();
                std::fs::write(d.join(format!("{}-{r}.log", v.label)), &bytes).unwrap();
            }
            let p =
                phases(&bytes, &stamps).unwrap_or_else(|e| panic!("{} round {r}: {e}", v.label));
            eprintln!(
                "round {r} {} (load {}): {}",
                v.label,
                loadavg(),
                p.iter()
                    .zip(PHASES)
                    .filter_map(|(x, n)| x.map(|x| format!("{n} {x:.2}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (k, x) in p.iter().enumerate() {
                if let Some(x) = x {
                    results[i][k].push(*x);
                }
            }
        }
    }
    print_table(&variants, &mut results, rounds);
}

fn make_variant(repo: &Path, tmp: &Path, spec: &str) -> Variant {
    let (label, toml) = spec.split_once('=').unwrap_or((spec, ""));
    if toml.ends_with(".iso") {
        return Variant {
            label: label.into(),
            iso: PathBuf::from(toml),
            initrd: None,
        };
    }
    let co = tmp.join(format!("co-{label}"));
    std::fs::create_dir_all(&co).unwrap();
    for d in ["profiles", "overlays"] {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(repo.join(d))
            .arg(&co)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp {d}");
    }
    let prof = co.join("profiles/router/profile.toml");
    let old = std::fs::read_to_string(&prof).unwrap();
    let head = toml.replace(';', "\n");
    std::fs::write(&prof, format!("{head}\n{old}")).unwrap();
    let bin = PathBuf::from(
        std::env::var_os("RAMUX_BIN_DIR").expect("set RAMUX_BIN_DIR (scripts/build output)"),
    );
    let iso = tmp.join(format!("{label}.iso"));
    let rep = build_iso(&BuildRequest {
        root: co,
        profile: "router".into(),
        role: "BACKUP".into(),
        out: Some(iso.clone()),
        bin_dir: Some(bin),
        cache_dir: Some(repo.join("images/cache")),
        epoch: Some(1_700_000_000),
        quiet: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("building {label}: {e:#}"));
    Variant {
        label: label.into(),
        iso,
        initrd: Some(rep.initrd_size),
    }
}

/// Boots once; returns the console bytes and (end offset, seconds since spawn) per read.
fn boot(iso: &Path) -> (Vec<u8>, Vec<(usize, f64)>) {
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-m",
        "1024",
        "-smp",
        "1",
        "-drive",
    ])
    .arg(format!(
        "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file={}",
        iso.display()
    ))
    .args([
        "-device",
        "ide-cd,drive=cd0,bootindex=0",
        "-device",
        "virtio-rng-pci",
        "-chardev",
        "stdio,id=serial0,signal=off",
        "-serial",
        "chardev:serial0",
        "-device",
        "virtio-serial-pci,id=vser0",
        "-chardev",
        "null,id=qga0",
        "-device",
        "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let t0 = Instant::now();
    let mut child = c.spawn().expect("qemu-system-x86_64");
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<(Vec<u8>, f64)>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0
                || tx
                    .send((buf[..n].to_vec(), t0.elapsed().as_secs_f64()))
                    .is_err()
            {
                break;
            }
        }
    });
    let mut bytes = Vec::new();
    let mut stamps = Vec::new();
    let mut seen_up = false;
    while !seen_up && t0.elapsed() < TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((b, t)) => {
                bytes.extend_from_slice(&b);
                stamps.push((bytes.len(), t));
                // The `up` line follows the ready line; wait for its end.
                if let Some(p) = find(&bytes, b"after kernel start (init ", 0) {
                    seen_up = bytes[p..].contains(&b'\n');
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    (bytes, stamps)
}

/// The 1-minute load average, printed with each boot: other work on the host shows up there.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn find(h: &[u8], n: &[u8], from: usize) -> Option<usize> {
    if from >= h.len() {
        return None;
    }
    h[from..]
        .windows(n.len())
        .position(|w| w == n)
        .map(|p| p + from)
}

/// Host seconds at which byte `off` arrived.
fn at(stamps: &[(usize, f64)], off: usize) -> f64 {
    stamps
        .iter()
        .find(|(end, _)| *end > off)
        .map(|s| s.1)
        .unwrap_or(f64::NAN)
}

/// The kernel's `[   1.234567]` timestamp of the line holding `off`.
fn printk_time(b: &[u8], off: usize) -> Option<f64> {
    let start = b[..off]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let line = String::from_utf8_lossy(&b[start..off]);
    let open = line.find('[')?;
    let close = line[open..].find(']')? + open;
    line[open + 1..close].trim().parse().ok()
}

fn phases(b: &[u8], st: &[(usize, f64)]) -> Result<Vec<Option<f64>>, String> {
    let need = |n: &[u8], from: usize| {
        find(b, n, from).ok_or_else(|| {
            format!(
                "no {:?} on the console:\n{}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(&b[b.len().saturating_sub(2000)..])
            )
        })
    };
    let banner = need(b"ISOLINUX ", 0)?;
    let initrd = need(b"Loading /images/pxeboot/initrd.img", banner)?;
    let ok = need(b"ok", initrd)?;
    let ready = need(b"ramux: ready ", ok)?;
    let up_at = need(b"ramux: up ", ready)?;
    let line_end = find(b, b"\n", up_at).unwrap_or(b.len());
    let up_line = String::from_utf8_lossy(&b[up_at..line_end]).into_owned();
    // "ramux: up 6.35 s after kernel start (init 1.64 s: ..."
    let num_after = |key: &str| -> Option<f64> {
        let rest = &up_line[up_line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    let up = num_after("ramux: up ").ok_or("unparsed up line")?;
    let init = num_after("(init ").ok_or("unparsed up line")?;
    let (t_banner, t_initrd, t_ok, t_ready) = (
        at(st, banner),
        at(st, initrd),
        at(st, ok + 1),
        at(st, ready),
    );
    let k0 = t_ready - up;
    let unpack = find(b, b"Trying to unpack rootfs", 0).and_then(|s| {
        let e = find(b, b"Freeing initrd memory", s)?;
        Some(printk_time(b, e)? - printk_time(b, s)?)
    });
    Ok(vec![
        Some(t_banner),
        Some(t_initrd - t_banner),
        Some(t_ok - t_initrd),
        Some(k0 - t_ok),
        Some(up - init),
        Some(init),
        Some(t_ready),
        // What the initrd's size and compression act on, without the boot stub's noise.
        Some(t_ok - t_initrd + up - init),
        unpack,
        find(b, b"Linux version ", ok).map(|p| at(st, p) - t_ok),
    ])
}

fn median(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((m, v[0], v[n - 1]))
}

fn print_table(vs: &[Variant], res: &mut [Vec<Vec<f64>>], rounds: usize) {
    println!(
        "\nBIOS CD under TCG, {rounds} alternating rounds, median s (min-max); ratio = variant / {}\n",
        vs[0].label
    );
    let mut head = "| phase |".to_string();
    let mut sep = "|---|".to_string();
    for (i, v) in vs.iter().enumerate() {
        head.push_str(&format!(" {} |", v.label));
        sep.push_str("---|");
        if i > 0 {
            head.push_str(&format!(" ratio {}/{} |", v.label, vs[0].label));
            sep.push_str("---|");
        }
    }
    println!("{head}\n{sep}");
    let size_row: Vec<String> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = v
                .initrd
                .map_or("?".into(), |b| format!("{:.2} MB", b as f64 / 1e6));
            if i > 0 {
                match (v.initrd, vs[0].initrd) {
                    (Some(a), Some(b)) => format!("{s} | {:.2}", a as f64 / b as f64),
                    _ => format!("{s} | "),
                }
            } else {
                s
            }
        })
        .collect();
    println!("| initrd size | {} |", size_row.join(" | "));
    for (k, name) in PHASES.iter().enumerate() {
        let meds: Vec<Option<(f64, f64, f64)>> =
            res.iter_mut().map(|r| median(&mut r[k])).collect();
        if meds.iter().all(Option::is_none) {
            continue;
        }
        let mut row = format!("| {name} |");
        for (i, m) in meds.iter().enumerate() {
            match m {
                Some((m, lo, hi)) => row.push_str(&format!(" {m:.2} ({lo:.2}-{hi:.2}) |")),
                None => row.push_str(" - |"),
            }
            if i > 0 {
                match (m, meds[0]) {
                    (Some((a, _, _)), Some((b, _, _))) if b > 0.0 => {
                        row.push_str(&format!(" {:.2} |", a / b))
                    }
                    _ => row.push_str(" - |"),
                }
            }
        }
        println!("{row}");
    }
}
