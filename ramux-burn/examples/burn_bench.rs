//! Write+verify throughput of ramux-burn against `dd bs=4M oflag=direct conv=fsync` + `cmp`,
//! and against `bmaptool copy --nobmap`, on the same loop device in one run, alternating the
//! order every round (docs/benchmarks.md, "vlaunch burn"). Root only.
//!
//!   cargo run --release -p ramux-burn --example burn_bench -- [SIZE_MIB=256] [ROUNDS=5] [DIR=/var/tmp]
//!
//! The loop device is backed by a file, i.e. by the page cache of the file system under DIR:
//! these are the costs of the tools (copies, syscalls, O_DIRECT, hashing), not of a USB stick.

use ramux_burn::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

struct Loop(PathBuf);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let mib: u64 = a.first().and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let base = PathBuf::from(a.get(2).map(String::as_str).unwrap_or("/var/tmp"));
    let t = tempfile::tempdir_in(&base).expect("tempdir");
    let len = mib << 20;
    let iso = t.path().join("bench.iso");
    let mut x = 0x9e3779b97f4a7c15u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&iso, &data).unwrap();
    drop(data);
    let back = t.path().join("stick");
    std::fs::File::create(&back)
        .unwrap()
        .set_len(len + (16 << 20))
        .unwrap();
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&back)
        .output()
        .expect("losetup");
    assert!(out.status.success(), "losetup failed (root?)");
    let l = Loop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()));
    let dev = l.0.to_str().unwrap().to_string();
    let isos = iso.to_str().unwrap().to_string();
    let have_bmap = Command::new("bmaptool").arg("--version").output().is_ok();
    println!(
        "image {mib} MiB on {} (loop {dev}), {rounds} rounds, order rotated each round; bmaptool: {}",
        base.display(),
        if have_bmap { "yes" } else { "not installed" }
    );
    let stop = AtomicBool::new(false);
    let ramux = |dev: &str, iso: &Path| {
        let f = io::open_target(Path::new(dev)).expect("open");
        let w = io::write_image(iso, &f, &stop, &mut |_| {}).expect("write");
        drop(f);
        let t = Instant::now();
        io::verify_device(Path::new(dev), &w, &stop, &mut |_| {}).expect("verify");
        (w.elapsed.as_secs_f64(), t.elapsed().as_secs_f64())
    };
    let names = ["ramux write+verify", "dd+cmp", "bmaptool copy"];
    let mut res: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for r in 0..rounds {
        for k in 0..3 {
            let which = (r + k) % 3;
            if which == 2 && !have_bmap {
                continue;
            }
            sh(&["blockdev", "--flushbufs", &dev]);
            let t0 = Instant::now();
            let detail = match which {
                0 => {
                    let (w, v) = ramux(&dev, &iso);
                    format!("write {w:.3} s + verify {v:.3} s")
                }
                1 => {
                    let of = format!("of={dev}");
                    let inf = format!("if={isos}");
                    assert!(sh(&[
                        "dd",
                        &inf,
                        &of,
                        "bs=4M",
                        "oflag=direct",
                        "conv=fsync",
                        "status=none"
                    ]));
                    let tw = t0.elapsed().as_secs_f64();
                    assert!(sh(&["cmp", "-n", &len.to_string(), &isos, &dev]));
                    format!(
                        "dd {tw:.3} s + cmp {:.3} s",
                        t0.elapsed().as_secs_f64() - tw
                    )
                }
                _ => {
                    let o = Command::new("bmaptool")
                        .args(["-q", "copy", "--nobmap", &isos, &dev])
                        .output()
                        .unwrap();
                    assert!(o.status.success(), "{o:?}");
                    "write only (no read-back)".into()
                }
            };
            let s = t0.elapsed().as_secs_f64();
            let rate = len as f64 / s / 1e6;
            println!(
                "round {} {:<19} {:6.3} s {:7.1} MB/s  ({detail})",
                r + 1,
                names[which],
                s,
                rate
            );
            res[which].push(rate);
        }
    }
    let m: Vec<f64> = res
        .iter_mut()
        .map(|v| if v.is_empty() { 0.0 } else { median(v) })
        .collect();
    println!(
        "median MB/s: ramux {:.1}, dd+cmp {:.1}, bmaptool {:.1}",
        m[0], m[1], m[2]
    );
    println!("ratio ramux / dd+cmp = {:.2}", m[0] / m[1]);
    if m[2] > 0.0 {
        println!(
            "ratio ramux / bmaptool copy = {:.2} (bmaptool writes only)",
            m[0] / m[2]
        );
    }
}
