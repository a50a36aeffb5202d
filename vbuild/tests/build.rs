//! End-to-end builds of the real router profile: reproducibility across output folders, cache
//! directories and checkout paths, the El Torito entries, and the CLI's error paths.
//!
//! Needs root-free host tools (mmdebstrap, xorriso, grub, mtools, dosfstools, kmod: see
//! scripts/apt-packages), network access to the Debian mirror on a cold cache, and the static
//! ramux-init in $RAMUX_BIN_DIR (scripts/build puts it there; CI sets the variable).

use std::path::{Path, PathBuf};
use std::process::Command;
use vbuild::{build_iso, BuildRequest};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    let d = std::env::var_os("RAMUX_BIN_DIR").expect(
        "RAMUX_BIN_DIR is not set: run scripts/build, then RAMUX_BIN_DIR=$PWD/target/x86_64-unknown-linux-gnu/release",
    );
    let d = PathBuf::from(d);
    assert!(
        d.join("ramux-init").is_file(),
        "{}/ramux-init missing: run scripts/build (static ramux binaries)",
        d.display()
    );
    d
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn request(root: &Path, out: &Path, cache: &Path) -> BuildRequest {
    BuildRequest {
        root: root.to_path_buf(),
        profile: "router".into(),
        role: "BACKUP".into(),
        sets: vec![],
        site: None,
        out: Some(out.to_path_buf()),
        bin_dir: Some(bin_dir()),
        cache_dir: Some(cache.to_path_buf()),
        epoch: Some(1_700_000_000),
        quiet: true,
    }
}

/// Same inputs, different output folders, different cache folders (the base layer is rebuilt
/// from the same mmdebstrap tarball) and a different checkout path: identical bytes.
#[test]
fn router_iso_is_reproducible_and_hybrid() {
    let repo = repo_root();
    let shared_cache = repo.join("images/cache");
    let tmp = tempfile::tempdir().unwrap();
    let (out_a, out_b) = (tmp.path().join("a/RT.iso"), tmp.path().join("b/sub/RT.iso"));

    let a = build_iso(&request(&repo, &out_a, &shared_cache)).unwrap();

    // Second checkout: profiles/ and overlays/ copied to another path.
    let checkout = tmp.path().join("checkout-two");
    std::fs::create_dir_all(&checkout).unwrap();
    copy_tree(&repo.join("profiles"), &checkout);
    copy_tree(&repo.join("overlays"), &checkout);
    // Fresh cache holding only the base tarball: the base layer (cpio, zstd, depmod, closure)
    // is rebuilt from scratch.
    let cache_b = tmp.path().join("cache-b");
    std::fs::create_dir_all(&cache_b).unwrap();
    for e in std::fs::read_dir(&shared_cache).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("base-") && !name.contains(".tmp-") {
            copy_tree(&e.path(), &cache_b);
        }
    }
    let b = build_iso(&request(&checkout, &out_b, &cache_b)).unwrap();
    assert!(
        !b.base_layer_cached,
        "the second build must rebuild the base layer"
    );

    assert_eq!(a.sha256, b.sha256, "ISOs differ");
    assert_eq!(
        std::fs::read(&out_a).unwrap(),
        std::fs::read(&out_b).unwrap()
    );
    let (ma, mb) = (
        std::fs::read_to_string(&a.manifest).unwrap(),
        std::fs::read_to_string(&b.manifest).unwrap(),
    );
    assert_eq!(ma, mb, "manifests differ");
    for leak in [
        tmp.path().to_str().unwrap(),
        repo.to_str().unwrap(),
        "/tmp/",
    ] {
        assert!(!ma.contains(leak), "manifest leaks a host path {leak}");
    }
    let m: serde_json::Value = serde_json::from_str(&ma).unwrap();
    assert_eq!(m["outputs"]["iso"]["sha256"], a.sha256.as_str());
    assert_eq!(m["role"], "BACKUP");
    assert!(m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "nftables"));
    assert!(m["modules"]["closure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().ends_with("/virtio_net.ko")));
    assert!(m["tool_versions"]["xorriso"]
        .as_str()
        .unwrap()
        .contains("xorriso"));
    let sums = std::fs::read_to_string(out_a.parent().unwrap().join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&format!("{}  RT.iso\n", a.sha256)), "{sums}");

    // The SBOMs are byte-identical too, listed, and agree with the manifest.
    let (sa, sb) = (
        std::fs::read(&a.sbom).unwrap(),
        std::fs::read(&b.sbom).unwrap(),
    );
    assert_eq!(sa, sb, "SBOMs differ");
    assert!(sums.contains("  RT.iso.spdx.json\n"), "{sums}");
    let doc: serde_json::Value = serde_json::from_slice(&sa).unwrap();
    vbuild::sbom::check("RT.iso.spdx.json", &doc, &m).unwrap();
    assert_eq!(doc["creationInfo"]["created"], m["build_clock"]["utc"]);
    let debs = doc["packages"].as_array().unwrap();
    let nft = debs.iter().find(|p| p["name"] == "nftables").unwrap();
    assert_eq!(nft["checksums"][0]["algorithm"], "SHA256", "{nft}");
    let purl = nft["externalRefs"][0]["referenceLocator"].as_str().unwrap();
    assert!(purl.contains("?arch=amd64&distro="), "{purl}");
    assert!(
        debs.iter()
            .any(|p| p["versionInfo"].is_string() && p["licenseDeclared"] != "NOASSERTION"),
        "no Debian package got a license from its DEP-5 copyright"
    );

    let report = Command::new("xorriso")
        .args(["-no_rc", "-indev"])
        .arg(&out_a)
        .args(["-report_el_torito", "plain"])
        .output()
        .expect("xorriso missing: apt-get install xorriso");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("El Torito boot img :   1  BIOS"),
        "no BIOS boot image:\n{text}"
    );
    assert!(
        text.contains("El Torito boot img :   2  UEFI"),
        "no UEFI boot image:\n{text}"
    );

    // The initrd inside the ISO is the base layer followed by the top layer, and the top layer
    // carries the contract files.
    let initrd = tmp.path().join("initrd.img");
    let st = Command::new("xorriso")
        .args(["-no_rc", "-osirrox", "on", "-indev"])
        .arg(&out_a)
        .args(["-extract", "/images/pxeboot/initrd.img"])
        .arg(&initrd)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let data = std::fs::read(&initrd).unwrap();
    assert_eq!(data.len() as u64, a.initrd_size);
    let base_len = m["outputs"]["initrd-base"]["size"].as_u64().unwrap() as usize;
    let top = zstd::stream::decode_all(&data[base_len..]).unwrap();
    let entries = vbuild::cpio::read_newc(&top).unwrap();
    let get = |n: &str| {
        entries
            .iter()
            .find(|e| e.0 == n)
            .unwrap_or_else(|| panic!("{n} missing from the top layer"))
    };
    let app = String::from_utf8(get("etc/ramux/appliance.toml").2.clone()).unwrap();
    assert!(
        app.contains("profile = \"router\"") && app.contains("role = \"BACKUP\""),
        "{app}"
    );
    assert!(app.contains("hostname = \"router-backup\""), "{app}");
    assert_eq!(get("init").2, b"/usr/sbin/ramux-init");
    assert_eq!(get("etc/ramux/role").2, b"BACKUP\n");
    assert_eq!(get("usr/sbin/ramux-init").1 & 0o777, 0o755);
    // The router's default labwall site, compiled for this role and host name.
    for f in [
        "etc/ramux/network.ip",
        "etc/ramux/sysctl.conf",
        "etc/ramux/ruleset.nft",
        "etc/keepalived/keepalived.conf",
    ] {
        assert!(!get(f).2.is_empty(), "{f} is empty");
    }
    let ka = String::from_utf8_lossy(&get("etc/keepalived/keepalived.conf").2).into_owned();
    // it holds auth_pass: root only in the image (the other site files stay 0644)
    assert_eq!(get("etc/keepalived/keepalived.conf").1 & 0o7777, 0o600);
    assert_eq!(get("etc/ramux/ruleset.nft").1 & 0o7777, 0o644);
    assert!(ka.contains("BACKUP"), "{ka}");
    assert!(m["inputs"]["profiles/router/site.lw"].is_string());
    assert_eq!(
        m["secrets"],
        serde_json::json!({}),
        "a router needs no secrets"
    );
    // and what it INCLUDEs (an edit of the users file makes the image stale)
    assert!(
        m["inputs"]["profiles/router/users.lw"].is_string(),
        "{}",
        m["inputs"]
    );
    // Nothing of the build host: mmdebstrap's copy of the host's resolv.conf is dropped.
    let base = zstd::stream::decode_all(&data[..base_len]).unwrap();
    let base_entries = vbuild::cpio::read_newc(&base).unwrap();
    for e in base_entries.iter().chain(&entries) {
        assert_ne!(
            e.0, "etc/resolv.conf",
            "the build host's resolv.conf is in the image"
        );
    }
}

/// The default build clock (no explicit epoch) is deterministic too: two CLI builds into two
/// folders are identical.
#[test]
fn default_clock_cli_builds_match() {
    let repo = repo_root();
    let tmp = tempfile::tempdir().unwrap();
    let mut sums = vec![];
    for d in ["x", "y"] {
        let out = tmp.path().join(d).join("router-master.iso");
        let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("--root")
            .arg(&repo)
            .args(["iso", "router", "--role", "master", "--json", "-o"])
            .arg(&out)
            .arg("--bin-dir")
            .arg(bin_dir())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["role"], "MASTER");
        assert_ne!(r["clock_source"], "explicit");
        sums.push((
            r["sha256"].as_str().unwrap().to_string(),
            std::fs::read(out.with_extension("iso.manifest.json")).unwrap(),
        ));
    }
    assert_eq!(sums[0], sums[1]);
}

fn vbuild(args: &[&str], root: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Each error: non-zero exit, one clear message, no output file left behind. The fixture every
/// error test starts from: the checkout, a temp dir with the output path, the bin dir.
struct ErrCase {
    repo: PathBuf,
    tmp: tempfile::TempDir,
    out: PathBuf,
    bin: PathBuf,
}

fn err_case() -> ErrCase {
    let tmp = tempfile::tempdir().unwrap();
    ErrCase {
        repo: repo_root(),
        out: tmp.path().join("o/x.iso"),
        tmp,
        bin: bin_dir(),
    }
}

#[test]
fn cli_argument_errors_are_clear() {
    let ErrCase {
        repo,
        tmp,
        out,
        bin,
    } = err_case();
    let (out_s, bin_s) = (out.to_str().unwrap(), bin.to_str().unwrap());

    let (ok, err) = vbuild(&["iso", "nosuch", "--role", "MASTER", "-o", out_s], &repo);
    assert!(
        !ok && err.contains("unknown profile 'nosuch'")
            && err.contains("router")
            && err.contains("vpn"),
        "{err}"
    );

    let (ok, err) = vbuild(&["iso", "router", "--role", "SLAVE", "-o", out_s], &repo);
    assert!(
        !ok && err.contains("bad role 'SLAVE'") && err.contains("MASTER, BACKUP"),
        "{err}"
    );

    let (ok, err) = vbuild(
        &[
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            "/proc/vbuild-test.iso",
            "--bin-dir",
            bin_s,
        ],
        &repo,
    );
    assert!(
        !ok && err.contains("/proc/vbuild-test.iso") && err.contains("not writable"),
        "{err}"
    );

    // Missing ramux-init.
    let (ok, err) = vbuild(
        &[
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            tmp.path().to_str().unwrap(),
        ],
        &repo,
    );
    assert!(!ok && err.contains("ramux-init not found"), "{err}");
}

#[test]
fn broken_template_names_its_line_and_keeps_the_previous_iso() {
    let ErrCase {
        repo,
        tmp,
        out,
        bin,
    } = err_case();
    let (out_s, bin_s) = (out.to_str().unwrap(), bin.to_str().unwrap());
    // A broken template in a copy of the profiles: file:line in the message, and the previous
    // ISO at the output path stays intact.
    let checkout = tmp.path().join("co");
    std::fs::create_dir_all(&checkout).unwrap();
    copy_tree(&repo.join("profiles"), &checkout);
    copy_tree(&repo.join("overlays"), &checkout);
    std::fs::write(
        checkout.join("profiles/router/templates/etc/ramux/bad.tera"),
        "ok\n{{ role }}\n{{ no_such_variable }}\n",
    )
    .unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, b"previous iso").unwrap();
    let cache = repo.join("images/cache");
    let (ok, err) = vbuild(
        &[
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            bin_s,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &checkout,
    );
    assert!(
        !ok && err.contains("profiles/router/templates/etc/ramux/bad.tera:3:"),
        "{err}"
    );
    assert!(err.contains("no_such_variable"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous iso");
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("x.iso")],
        "temp files left behind"
    );
}

#[test]
fn missing_host_tools_name_their_debian_package() {
    let ErrCase {
        repo,
        tmp,
        out,
        bin,
    } = err_case();
    let (out_s, bin_s) = (out.to_str().unwrap(), bin.to_str().unwrap());
    // Missing host tools name their Debian package: xorriso (checked first, before slow work),
    // then mmdebstrap on a cold cache with every ISO tool present.
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .env("PATH", tmp.path())
        .arg("--root")
        .arg(&repo)
        .args([
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            bin_s,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("apt-get install xorriso"),
        "{err}"
    );
    let tools = tmp.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for t in ["xorriso", "mkfs.fat", "mmd", "mcopy", "dpkg-query"] {
        let real = ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, tools.join(t)).unwrap();
    }
    let empty_cache = tmp.path().join("empty-cache");
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .env("PATH", &tools)
        .arg("--root")
        .arg(&repo)
        .args([
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            bin_s,
            "--cache-dir",
        ])
        .arg(&empty_cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("mmdebstrap")
            && err.contains("apt-get install mmdebstrap"),
        "{err}"
    );
}

#[test]
fn bad_site_files_name_their_line() {
    let ErrCase {
        repo,
        tmp,
        out,
        bin,
    } = err_case();
    let (out_s, bin_s) = (out.to_str().unwrap(), bin.to_str().unwrap());
    // A broken labwall site: labwall's file:line:col diagnostics.
    let bad_site = tmp.path().join("bad.lw");
    std::fs::write(
        &bad_site,
        "EXTERNALDEV=eth1\nDEV INTER $EXTERNALDEV nonsense\n",
    )
    .unwrap();
    let (ok, err) = vbuild(
        &[
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            bin_s,
            "--site",
            bad_site.to_str().unwrap(),
        ],
        &repo,
    );
    assert!(!ok && err.contains("bad.lw:2:"), "{err}");

    // A .toml site gives template variables; a bad one names file:line.
    let toml_site = tmp.path().join("site.toml");
    std::fs::write(&toml_site, "domain = \"example.org\"\nbroken = \n").unwrap();
    let (ok, err) = vbuild(
        &[
            "iso",
            "router",
            "--role",
            "MASTER",
            "-o",
            out_s,
            "--bin-dir",
            bin_s,
            "--site",
            toml_site.to_str().unwrap(),
        ],
        &repo,
    );
    assert!(!ok && err.contains("site.toml:2:"), "{err}");
}

#[test]
fn profiles_lists_every_profile() {
    let (ok, _) = vbuild(&["profiles"], &repo_root());
    assert!(ok);
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("--root")
        .arg(repo_root())
        .args(["profiles", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["client", "dns", "nas", "router", "vpn"]);
}

/// `base = { tarball = ... }`: a user rootfs tarball (here the cached Debian one, gzip-compressed
/// to exercise the decompressor) replaces mmdebstrap.
#[test]
fn user_tarball_base() {
    let repo = repo_root();
    let shared = repo.join("images/cache");
    // Make sure the Debian tarball exists (router build with the shared cache).
    let tmp = tempfile::tempdir().unwrap();
    build_iso(&request(&repo, &tmp.path().join("warm.iso"), &shared)).unwrap();
    let tar = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("base-")
                && !p.to_string_lossy().contains(".tmp-")
        })
        .map(|p| p.join("base.tar"))
        .find(|p| p.is_file())
        .expect("no cached base tarball");
    let checkout = tmp.path().join("co");
    std::fs::create_dir_all(checkout.join("profiles/custom")).unwrap();
    copy_tree(&repo.join("profiles/common"), &checkout.join("profiles"));
    copy_tree(&repo.join("overlays"), &checkout);
    let gz = checkout.join("profiles/custom/rootfs.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -1 -n -c '{}' > '{}'",
            tar.display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        checkout.join("profiles/custom/profile.toml"),
        "description = \"custom rootfs\"\nbase = { tarball = \"rootfs.tar.gz\" }\n",
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let mut req = request(&checkout, &tmp.path().join("custom.iso"), &cache);
    req.profile = "custom".into();
    let r = build_iso(&req).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&r.manifest).unwrap()).unwrap();
    assert_eq!(m["base"]["kind"], "tarball");
    assert_eq!(m["base"]["file"], "profiles/custom/rootfs.tar.gz");
    assert!(m["inputs"]["base/profiles/custom/rootfs.tar.gz"].is_string());
    assert!(r.modules > 10, "module closure from the tarball's kernel");
}

/// SOURCE_DATE_EPOCH is honoured and recorded.
#[test]
fn source_date_epoch_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.iso");
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .env("SOURCE_DATE_EPOCH", "1600000000")
        .arg("--root")
        .arg(repo_root())
        .args(["iso", "router", "--role", "BACKUP", "--json", "-o"])
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["epoch"], 1_600_000_000);
    assert_eq!(r["clock_source"], "source-date-epoch");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("r.iso.manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["build_clock"]["utc"], "2020-09-13T12:26:40Z");
    let bad = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .arg("--root")
        .arg(repo_root())
        .args(["iso", "router", "--role", "BACKUP", "-o"])
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .unwrap();
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("SOURCE_DATE_EPOCH")
    );
}
