//! The reproducibility gate of a release (docs/release.md): `vbuild release` of the real
//! profiles with `--jobs 1` from this checkout and with `--jobs 2` from a copy of it at another
//! path give byte-identical directories (every ISO, manifest, SBOM and SHA256SUMS). Both share
//! the repository's base-layer cache (warm after the e2e suites), so this measures the builds,
//! not mmdebstrap.
//!
//! Needs $RAMUX_BIN_DIR (scripts/build) and the image tools, like tests/build.rs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn release(root: &Path, out: &Path, jobs: &str) -> f64 {
    let bin = std::env::var_os("RAMUX_BIN_DIR").expect("RAMUX_BIN_DIR (scripts/build)");
    let t0 = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .args(["release", "--quiet", "--jobs", jobs, "--out-dir"])
        .arg(out)
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--cache-dir")
        .arg(repo_root().join("images/cache"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "release --jobs {jobs} from {}: {}",
        root.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    t0.elapsed().as_secs_f64()
}

#[test]
fn jobs_and_checkout_path_do_not_change_a_single_byte() {
    let t = tempfile::tempdir().unwrap();
    let copy = t.path().join("elsewhere/ramux");
    std::fs::create_dir_all(&copy).unwrap();
    for d in ["profiles", "overlays"] {
        let st = Command::new("cp")
            .arg("-a")
            .arg(repo_root().join(d))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(st.success(), "cp {d}");
    }
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let one = release(&repo_root(), &a, "1");
    let two = release(&copy, &b, "2");
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, data) in &fa {
        assert!(
            fb[name] == *data,
            "{name} differs between --jobs 1 here and --jobs 2 at {}",
            copy.display()
        );
    }
    let isos = fa.keys().filter(|n| n.ends_with(".iso")).count();
    assert!(isos >= 6, "a release has every appliance: {:?}", fa.keys());
    assert!(
        fa.keys().all(|n| !n.starts_with('.')),
        "only what is published: {:?}",
        fa.keys()
    );
    eprintln!(
        "release of {isos} images: --jobs 1 {one:.1} s (may warm the cache), --jobs 2 {two:.1} s (other path)"
    );
}
