//! vbuild benchmark (not a test): cold build, warm rebuild after one template change, ISO size,
//! and the initramfs packing step side by side with the classic GNU pipeline
//! (`cpio --reproducible | gzip -9n`, what dracut/mkosi/Buildroot do) on the same tree.
//!
//!   RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release cargo bench -p vbuild --bench build
//!
//! Set VBUILD_BENCH_COLD_MMDEBSTRAP=1 to include the mmdebstrap download in the cold build
//! (network-bound); by default the cold build starts from the cached mmdebstrap tarball.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use vbuild::{build_iso, BuildRequest};

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = PathBuf::from(
        std::env::var_os("RAMUX_BIN_DIR").expect("set RAMUX_BIN_DIR (scripts/build output)"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("co");
    std::fs::create_dir_all(&checkout).unwrap();
    for d in ["profiles", "overlays"] {
        assert!(Command::new("cp")
            .arg("-a")
            .arg(repo.join(d))
            .arg(&checkout)
            .status()
            .unwrap()
            .success());
    }
    let shared = repo.join("images/cache");
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let with_mmdebstrap = std::env::var_os("VBUILD_BENCH_COLD_MMDEBSTRAP").is_some();
    if !with_mmdebstrap {
        // Warm the shared tarball cache, then reuse only the tarball.
        let _ = build_iso(&req(&repo, &tmp.path().join("warmup.iso"), &shared, &bin));
        for e in std::fs::read_dir(&shared).unwrap() {
            let e = e.unwrap();
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("base-") && !n.contains(".tmp-") {
                assert!(Command::new("cp")
                    .arg("-a")
                    .arg(e.path())
                    .arg(&cache)
                    .status()
                    .unwrap()
                    .success());
            }
        }
    }
    let out = tmp.path().join("out/router-backup.iso");
    let t = Instant::now();
    let cold = build_iso(&req(&checkout, &out, &cache, &bin)).unwrap();
    let cold_s = secs(t);
    let t = Instant::now();
    let nochange = build_iso(&req(&checkout, &out, &cache, &bin)).unwrap();
    let nochange_s = secs(t);
    // Five rebuilds, each after appending a line to a template: median and min.
    let tpl = checkout.join("profiles/common/templates/etc/motd.tera");
    let mut warm_runs = Vec::new();
    let mut warm = nochange.clone();
    for i in 0..5 {
        let mut f = std::fs::OpenOptions::new().append(true).open(&tpl).unwrap();
        writeln!(f, "changed by the benchmark ({i})").unwrap();
        let t = Instant::now();
        let r = build_iso(&req(&checkout, &out, &cache, &bin)).unwrap();
        warm_runs.push(secs(t));
        assert!(r.base_layer_cached && r.sha256 != warm.sha256);
        warm = r;
    }
    let mut sorted = warm_runs.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let warm_s = sorted[2];

    println!("## vbuild router BACKUP");
    println!(
        "cold build ({}):            {cold_s:6.2} s  (steps: {:?})",
        if with_mmdebstrap {
            "incl. mmdebstrap"
        } else {
            "from cached mmdebstrap tarball"
        },
        cold.timings
    );
    println!("rebuild, nothing changed:    {nochange_s:6.2} s");
    println!(
        "rebuild, one template edit:  {warm_s:6.2} s median of 5 (min {:.2} s; last steps: {:?})",
        sorted[0], warm.timings
    );
    println!(
        "ISO {:.1} MiB; initrd {:.1} MiB compressed, {:.1} MiB in RAM; {} modules",
        cold.size as f64 / 1048576.0,
        cold.initrd_size as f64 / 1048576.0,
        cold.initrd_uncompressed_size as f64 / 1048576.0,
        cold.modules
    );

    // Packing step side by side on the same rootfs: unpack our base layer, then time
    // (a) GNU find|sort|cpio --reproducible|gzip -9n over the tree (classic single archive),
    // (b) vbuild's in-memory cpio + zstd, (c) vbuild's cpio + flate2 gzip.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cold.manifest).unwrap()).unwrap();
    let layer_name = manifest["outputs"]["initrd-base"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let layer = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path().join(&layer_name))
        .find(|p| p.is_file())
        .unwrap();
    let raw = zstd::stream::decode_all(&std::fs::read(&layer).unwrap()[..]).unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let mut c = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(&tree)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&raw).unwrap();
    assert!(c.wait().unwrap().success());
    let t = Instant::now();
    let gnu = Command::new("sh")
        .arg("-c")
        .arg("find . -mindepth 1 -printf '%P\\n' | LC_ALL=C sort | cpio -o -H newc --reproducible --owner=0:0 --quiet | gzip -9 -n | wc -c")
        .current_dir(&tree)
        .output()
        .unwrap();
    let gnu_s = secs(t);
    let gnu_size: u64 = String::from_utf8_lossy(&gnu.stdout).trim().parse().unwrap();
    let t = Instant::now();
    let z = vbuild::base::compress(&raw, "zstd").unwrap();
    let zstd_s = secs(t);
    let t = Instant::now();
    let g = vbuild::base::compress(&raw, "gzip").unwrap();
    let gzip_s = secs(t);
    println!(
        "pack base tree ({:.1} MiB raw cpio):",
        raw.len() as f64 / 1048576.0
    );
    println!(
        "  GNU cpio --reproducible | gzip -9n: {gnu_s:6.2} s  {:6.1} MiB",
        gnu_size as f64 / 1048576.0
    );
    println!(
        "  vbuild zstd -{} (compress only):     {zstd_s:6.2} s  {:6.1} MiB  ratio GNU/vbuild = {:.1}x",
        vbuild::base::ZSTD_LEVEL,
        z.len() as f64 / 1048576.0,
        gnu_s / zstd_s
    );
    println!(
        "  vbuild flate2 gzip -{} (compress only): {gzip_s:6.2} s  {:6.1} MiB  ratio GNU/vbuild = {:.1}x",
        vbuild::base::GZIP_LEVEL,
        g.len() as f64 / 1048576.0,
        gnu_s / gzip_s
    );
    println!(
        "warm rebuild vs re-packing everything with GNU cpio|gzip: {warm_s:.2} s vs {gnu_s:.2} s (+ ISO) = {:.1}x faster",
        gnu_s / warm_s
    );
    println!("anchors (docs/benchmarks.md, vbuild; same package set, this machine): mkosi v26 33 s cold, 8-14 s after one change; live-build 358 s cold, 266 s warm");
}

fn req(root: &Path, out: &Path, cache: &Path, bin: &Path) -> BuildRequest {
    BuildRequest {
        root: root.to_path_buf(),
        profile: "router".into(),
        role: "BACKUP".into(),
        out: Some(out.to_path_buf()),
        bin_dir: Some(bin.to_path_buf()),
        cache_dir: Some(cache.to_path_buf()),
        epoch: Some(1_700_000_000),
        quiet: true,
        ..Default::default()
    }
}
