//! Release directory: publishing leaves only published files; signing with `vbuild key`/
//! `release::sign_dir` interoperates with Debian's `minisign` (apt-get install minisign);
//! `verify_dir` refuses each kind of tampering. No ISO build: fake ISOs published through
//! `build::publish` with manifests shaped like real ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use vbuild::release::{self, SignInfo};

fn sha(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    vbuild::hex(&Sha256::digest(data))
}

/// A manifest shaped like vbuild's for the ISO `name` with content `iso`.
fn manifest(name: &str, iso: &[u8], inputs: serde_json::Value) -> Vec<u8> {
    let m = serde_json::json!({
        "format": "ramux-manifest-1",
        "profile": "dns", "role": "", "hostname": "dns1",
        "build_clock": {"epoch": 1_700_000_000, "utc": "2023-11-14T22:13:20Z", "source": "source-date-epoch"},
        "base": {"kind": "debian", "suite": "bookworm"},
        "inputs": inputs,
        "set": {"instance": "dns1"},
        "secrets": {"radius": ["pki/radius.key", "radius/nas/sw1"]},
        "packages": [
            {"name": "busybox", "version": "1:1.35.0-4+b3", "arch": "amd64", "sha256": sha(b"busybox.deb")},
            {"name": "libstdc++6", "version": "12.2.0-14", "arch": "amd64"},
            {"name": "unbound", "version": "1.17.1-2+deb12u2"}
        ],
        "kernel": {"release": "6.1.0-1", "package_version": null, "sha256": "00"},
        "modules": {"wanted": [], "closure": [], "builtin": []},
        "kernel_cmdline": "console=ttyS0", "tool_versions": {},
        "outputs": {
            "iso": {"file": name, "sha256": sha(iso), "size": iso.len()},
            "initrd": {"file": "images/pxeboot/initrd.img", "sha256": sha(b"i"), "size": 1}
        },
        "initrd_uncompressed_size": 1, "recommended_min_ram_mib": 256
    });
    let mut v = serde_json::to_vec_pretty(&m).unwrap();
    v.push(b'\n');
    v
}

/// Publishes a fake ISO `name` into `out` as a build does (ISO, manifest, SHA256SUMS).
fn publish(out: &Path, name: &str, iso: &[u8], inputs: serde_json::Value) {
    let work = tempfile::tempdir_in(out.parent().unwrap()).unwrap();
    let tmp = work.path().join("out.iso");
    std::fs::write(&tmp, iso).unwrap();
    let m = manifest(name, iso, inputs);
    let sbom = sbom_of(&m);
    vbuild::build::publish(&out.join(name), &tmp, &sha(iso), &m, &sbom).unwrap();
}

/// The SBOM a build writes beside the manifest `m` (GPL-2+ for busybox, as its DEP-5 file
/// would say).
fn sbom_of(m: &[u8]) -> Vec<u8> {
    let m: serde_json::Value = serde_json::from_slice(m).unwrap();
    let mut extra = vbuild::sbom::Extra::default();
    extra
        .licenses
        .insert("busybox".into(), "GPL-2.0-or-later".into());
    vbuild::sbom::to_bytes(&vbuild::sbom::generate(&m, &extra).unwrap()).unwrap()
}

fn inputs() -> serde_json::Value {
    serde_json::json!({"profiles/dns/profile.toml": "ab", "bin/ramux-init": sha(b"init"), "bin/vrrpd": sha(b"vrrpd")})
}

fn info() -> SignInfo {
    SignInfo {
        timestamp: 1_800_000_000,
        version: "0.1.0".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        sde: 1_700_000_000,
    }
}

/// A signed fake release: (temp root, release dir, secret key, public key).
fn signed_release() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("dist");
    std::fs::create_dir(&out).unwrap();
    publish(&out, "dns1.iso", b"fake iso one", inputs());
    publish(&out, "router-master.iso", b"fake iso two", inputs());
    let (sk, pk) = release::generate_key(&t.path().join("keys/test"), false).unwrap();
    release::sign_dir(&out, &sk, &info()).unwrap();
    (t, out, sk, pk)
}

fn verify_err(dir: &Path, pk: &Path) -> String {
    format!("{:#}", release::verify_dir(dir, pk).unwrap_err())
}

fn minisign() -> Command {
    assert!(
        vbuild::tool::find("minisign").is_some(),
        "minisign missing: apt-get install minisign"
    );
    Command::new("minisign")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn publish_leaves_only_published_files() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("images");
    std::fs::create_dir(&out).unwrap();
    // Parallel builds into one directory: every line survives, no lock file is left.
    std::thread::scope(|s| {
        for i in 0..6 {
            let out = &out;
            s.spawn(move || {
                publish(
                    out,
                    &format!("r{i}.iso"),
                    format!("iso {i}").as_bytes(),
                    inputs(),
                )
            });
        }
    });
    // Lock files of older vbuilds go away with the next publish.
    std::fs::write(out.join(".SHA256SUMS.lock"), b"").unwrap();
    std::fs::write(out.join(".r0.iso.lock"), b"").unwrap();
    publish(&out, "r0.iso", b"iso 0 rebuilt", inputs());
    let n = names(&out);
    assert!(n.iter().all(|x| !x.starts_with('.')), "{n:?}");
    assert_eq!(n.len(), 19, "{n:?}");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let map = release::parse_sums(&sums).unwrap();
    assert_eq!(map.len(), 18);
    assert!(map.contains_key("r3.iso.spdx.json"));
    assert_eq!(map["r0.iso"], sha(b"iso 0 rebuilt"));
}

#[test]
fn signed_release_verifies_and_leaves_no_dot_files() {
    let (_t, out, _sk, pk) = signed_release();
    let v = release::verify_dir(&out, &pk).unwrap();
    assert_eq!((v.files, v.manifests, v.sboms), (6, 2, 2));
    assert!(v.unlisted.is_empty());
    assert_eq!(
        release::parse_trusted_comment(&v.trusted_comment).unwrap(),
        info()
    );
    let n = names(&out);
    assert!(n.iter().all(|x| !x.starts_with('.')), "{n:?}");
    assert!(n.contains(&"SHA256SUMS.minisig".to_string()));
}

#[test]
fn a_later_build_removes_the_stale_signature() {
    let (_t, out, _sk, pk) = signed_release();
    publish(&out, "client.iso", b"fake iso three", inputs());
    assert!(!out.join("SHA256SUMS.minisig").exists());
    assert!(verify_err(&out, &pk).contains("not signed"));
}

#[test]
fn debian_minisign_verifies_our_signature() {
    let (_t, out, _sk, pk) = signed_release();
    let o = minisign()
        .args(["-V", "-p"])
        .arg(&pk)
        .arg("-m")
        .arg(out.join("SHA256SUMS"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("Signature and comment signature verified"),
        "{text}"
    );
    assert!(
        text.contains("project:ramux version:0.1.0 commit:0123456789abcdef"),
        "{text}"
    );
}

#[test]
fn we_verify_debian_minisign_signatures() {
    let (t, out, _sk, _pk) = signed_release();
    let (sk, pk) = (t.path().join("deb.key"), t.path().join("deb.pub"));
    let st = minisign()
        .args(["-G", "-W", "-p"])
        .arg(&pk)
        .arg("-s")
        .arg(&sk)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let comment = release::trusted_comment(&info());
    for legacy in [false, true] {
        let mut c = minisign();
        c.arg("-S")
            .arg("-s")
            .arg(&sk)
            .arg("-m")
            .arg(out.join("SHA256SUMS"))
            .arg("-t")
            .arg(&comment);
        if legacy {
            c.arg("-l");
        }
        let st = c.output().unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let v = release::verify_dir(&out, &pk).unwrap();
        assert_eq!(v.trusted_comment, comment);
    }
    // Debian's minisign 0.11 writes `-W` keys without their checksum: the minisign crate
    // refuses them, and the error says what to do.
    let e = format!("{:#}", release::sign_dir(&out, &sk, &info()).unwrap_err());
    assert!(
        e.contains("deb.key") && e.contains("vbuild key generate"),
        "{e}"
    );
}

#[test]
fn tampered_file_is_refused() {
    let (_t, out, _sk, pk) = signed_release();
    let p = out.join("dns1.iso");
    let mut b = std::fs::read(&p).unwrap();
    b[3] ^= 1;
    std::fs::write(&p, b).unwrap();
    let e = verify_err(&out, &pk);
    assert!(
        e.contains("dns1.iso: sha256") && e.contains("changed after signing"),
        "{e}"
    );
}

#[test]
fn tampered_sums_line_is_refused() {
    let (_t, out, _sk, pk) = signed_release();
    let p = out.join("SHA256SUMS");
    let s = std::fs::read_to_string(&p).unwrap();
    // Point the list at a replaced ISO: its new sha in the dns1.iso line.
    std::fs::write(out.join("dns1.iso"), b"evil").unwrap();
    let line = s.lines().find(|l| l.ends_with("  dns1.iso")).unwrap();
    let s2 = s.replace(line, &format!("{}  dns1.iso", sha(b"evil")));
    std::fs::write(&p, s2).unwrap();
    let e = verify_err(&out, &pk);
    assert!(e.contains("SHA256SUMS.minisig does not verify"), "{e}");
}

#[test]
fn tampered_signature_is_refused() {
    let (_t, out, _sk, pk) = signed_release();
    let p = out.join("SHA256SUMS.minisig");
    let s = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = s.lines().map(String::from).collect();
    // Flip one base64 character inside the signature bytes (past the algorithm and key id).
    let mut sig: Vec<char> = lines[1].chars().collect();
    sig[40] = if sig[40] == 'A' { 'B' } else { 'A' };
    lines[1] = sig.into_iter().collect();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let e = verify_err(&out, &pk);
    assert!(e.contains("SHA256SUMS.minisig does not verify"), "{e}");
    // Another key's public key is refused the same way.
    let t2 = tempfile::tempdir().unwrap();
    let (_, other) = release::generate_key(&t2.path().join("o"), false).unwrap();
    release::sign_dir(&out, &_sk, &info()).unwrap();
    assert!(verify_err(&out, &other).contains("does not verify"));
}

#[test]
fn tampered_trusted_comment_is_refused() {
    let (_t, out, _sk, pk) = signed_release();
    let p = out.join("SHA256SUMS.minisig");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, s.replace("version:0.1.0", "version:9.9.9")).unwrap();
    let e = verify_err(&out, &pk);
    assert!(e.contains("trusted comment was changed"), "{e}");
}

#[test]
fn tampered_manifest_is_refused() {
    let (_t, out, _sk, pk) = signed_release();
    let p = out.join("dns1.iso.manifest.json");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, s.replace("\"dns1\"", "\"evil\"")).unwrap();
    let e = verify_err(&out, &pk);
    assert!(e.contains("dns1.iso.manifest.json: sha256"), "{e}");
}

#[test]
fn signed_manifest_of_another_build_is_refused() {
    let (_t, out, sk, pk) = signed_release();
    // A consistent (re-signed) list whose manifest describes another ISO.
    let m = manifest("dns1.iso", b"another build", inputs());
    std::fs::write(out.join("dns1.iso.manifest.json"), &m).unwrap();
    vbuild::manifest::update_sums(&out, &[("dns1.iso.manifest.json".into(), sha(&m))]).unwrap();
    release::sign_dir(&out, &sk, &info()).unwrap();
    let e = verify_err(&out, &pk);
    assert!(e.contains("belongs to another build"), "{e}");
}

/// Rewrites `name` in `out` with `f`, lists its new sha and signs again: a consistent, signed
/// release whose content was changed by the signer.
fn resign_with(out: &Path, sk: &Path, name: &str, f: impl Fn(&mut serde_json::Value)) {
    let p = out.join(name);
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut doc);
    let b = vbuild::sbom::to_bytes(&doc).unwrap();
    std::fs::write(&p, &b).unwrap();
    vbuild::manifest::update_sums(out, &[(name.into(), sha(&b))]).unwrap();
    release::sign_dir(out, sk, &info()).unwrap();
}

#[test]
fn sbom_missing_a_package_is_refused() {
    let (_t, out, sk, pk) = signed_release();
    let sbom = "dns1.iso.spdx.json";
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(sbom)).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(vbuild::sbom::deb_packages(&doc).len(), 3);
    // Unsigned edit: the list catches it.
    let b = std::fs::read(out.join(sbom)).unwrap();
    std::fs::write(out.join(sbom), [&b[..], b" "].concat()).unwrap();
    assert!(verify_err(&out, &pk).contains("dns1.iso.spdx.json: sha256"));
    std::fs::write(out.join(sbom), &b).unwrap();
    // Signed, but the SBOM no longer lists what the image holds.
    resign_with(&out, &sk, sbom, |d| {
        let pkgs = d["packages"].as_array_mut().unwrap();
        pkgs.retain(|p| p["name"] != "unbound");
    });
    let e = verify_err(&out, &pk);
    assert!(
        e.contains("dns1.iso.spdx.json: its Debian packages differ")
            && e.contains("missing: [unbound 1.17.1-2+deb12u2]"),
        "{e}"
    );
    // A package of another version, or an SPDX 2.2 document, is refused the same way.
    resign_with(&out, &sk, sbom, |d| {
        d["packages"][1]["versionInfo"] = "0".into();
    });
    assert!(verify_err(&out, &pk).contains("differ from the manifest"));
    std::fs::write(out.join(sbom), &b).unwrap();
    resign_with(&out, &sk, sbom, |d| d["spdxVersion"] = "SPDX-2.2".into());
    assert!(verify_err(&out, &pk).contains("dns1.iso.spdx.json: spdxVersion"));
    // Not JSON.
    std::fs::write(out.join(sbom), b"{").unwrap();
    vbuild::manifest::update_sums(&out, &[(sbom.into(), sha(b"{"))]).unwrap();
    release::sign_dir(&out, &sk, &info()).unwrap();
    assert!(verify_err(&out, &pk).contains("dns1.iso.spdx.json: not JSON"));
}

#[test]
fn cli_verify_names_the_sbom_that_lost_a_package() {
    let (_t, out, sk, pk) = signed_release();
    resign_with(&out, &sk, "router-master.iso.spdx.json", |d| {
        d["packages"].as_array_mut().unwrap().remove(1);
    });
    let o = Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .arg("verify")
        .arg(&out)
        .arg("--pubkey")
        .arg(&pk)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("router-master.iso.spdx.json: its Debian packages differ")
            && err.contains("missing: [busybox 1:1.35.0-4+b3]"),
        "{err}"
    );
}

/// `$PYSPDXTOOLS`, else where scripts/prereqs puts it (keep the version in step), else PATH.
fn pyspdxtools() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    let venv = cache.map(|c| c.join("ramux/spdx-tools-0.8.5/bin/pyspdxtools"));
    std::env::var_os("PYSPDXTOOLS")
        .map(PathBuf::from)
        .or_else(|| venv.filter(|p| p.is_file()))
        .or_else(|| vbuild::tool::find("pyspdxtools"))
}

/// The published SBOM passes the SPDX project's own validator, `pyspdxtools -i FILE`
/// (`pip install spdx-tools`; scripts/prereqs installs it). Skipped, saying so, without it.
#[test]
fn spdx_tools_validate_our_sbom() {
    let Some(tool) = pyspdxtools() else {
        eprintln!("SKIPPED: pyspdxtools not found (pip install spdx-tools, or scripts/prereqs)");
        return;
    };
    let (_t, out, _sk, _pk) = signed_release();
    for name in ["dns1.iso.spdx.json", "router-master.iso.spdx.json"] {
        let o = Command::new(&tool)
            .arg("-i")
            .arg(out.join(name))
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {text}");
        assert!(!text.to_lowercase().contains("invalid"), "{name}: {text}");
    }
}

#[test]
fn malformed_sums_are_not_signed() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("SHA256SUMS"), "not a sums line\n").unwrap();
    let (sk, _) = release::generate_key(&t.path().join("k"), false).unwrap();
    let e = format!(
        "{:#}",
        release::sign_dir(t.path(), &sk, &info()).unwrap_err()
    );
    assert!(
        e.contains("refusing to sign") && e.contains("line 1"),
        "{e}"
    );
    assert!(!t.path().join("SHA256SUMS.minisig").exists());
}

#[test]
fn manifest_with_secrets_in_the_image_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("dist");
    std::fs::create_dir(&out).unwrap();
    let bad = serde_json::json!({"overlays/dns/etc/ssl/private/radius.key": "ab"});
    publish(&out, "dns1.iso", b"fake", bad);
    let (sk, pk) = release::generate_key(&t.path().join("k"), false).unwrap();
    release::sign_dir(&out, &sk, &info()).unwrap();
    let e = verify_err(&out, &pk);
    assert!(
        e.contains("carries secrets") && e.contains("radius.key"),
        "{e}"
    );
}

#[test]
fn key_generate_modes_and_refusals() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let (sk, pk) = release::generate_key(&t.path().join("a/rel"), false).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&sk), mode(&pk)), (0o600, 0o644));
    assert!(std::fs::read_to_string(&pk)
        .unwrap()
        .starts_with("untrusted comment:"));
    let e = release::generate_key(&t.path().join("a/rel"), false).unwrap_err();
    assert!(e.to_string().contains("refusing to overwrite"), "{e}");
    std::fs::create_dir(t.path().join(".git")).unwrap();
    let e = release::generate_key(&t.path().join("b/rel"), false).unwrap_err();
    assert!(e.to_string().contains("git work tree"), "{e}");
    release::generate_key(&t.path().join("b/rel"), true).unwrap();
}

#[test]
fn cli_key_and_verify() {
    let (t, out, _sk, pk) = signed_release();
    let vbuild = env!("CARGO_BIN_EXE_vbuild");
    let o = Command::new(vbuild)
        .arg("verify")
        .arg(&out)
        .arg("--pubkey")
        .arg(&pk)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("6 files, 2 manifests and 2 SBOMs verified")
    );
    std::fs::write(out.join("router-master.iso"), b"x").unwrap();
    let o = Command::new(vbuild)
        .arg("verify")
        .arg(&out)
        .arg("--pubkey")
        .arg(&pk)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("router-master.iso: sha256"),
        "{err}"
    );
    let prefix = t.path().join("cli/k");
    let o = Command::new(vbuild)
        .args(["key", "generate", "--out"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(prefix.with_extension("key").exists() && prefix.with_extension("pub").exists());
    // A bad --sign key fails at once, before any build.
    let o = Command::new(vbuild)
        .arg("--root")
        .arg(t.path())
        .args(["release", "--out-dir"])
        .arg(t.path().join("none"))
        .arg("--sign")
        .arg(t.path().join("missing.key"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cannot read the secret key"),
        "{err}"
    );
    assert!(!t.path().join("none").exists());
    let help = Command::new(vbuild)
        .args(["key", "generate", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("NOT password-protected"));
}

/// The SBOM of this machine's own Debian system (its dpkg status and the DEP-5 copyright files
/// in /usr/share/doc, as the layer reads them from a base): every license expression vbuild
/// derives from real Debian copyright files passes pyspdxtools, and a good share is derived.
#[test]
fn sbom_of_the_host_debian_system_validates() {
    let Ok(status) = std::fs::read_to_string("/var/lib/dpkg/status") else {
        eprintln!("SKIPPED: no /var/lib/dpkg/status (not a Debian host)");
        return;
    };
    let Some(tool) = pyspdxtools() else {
        eprintln!("SKIPPED: pyspdxtools not found (pip install spdx-tools, or scripts/prereqs)");
        return;
    };
    let pkgs = vbuild::base::packages_from_status(&status);
    let mut tree = vbuild::rootfs::Tree::default();
    for p in &pkgs {
        let rel = format!("usr/share/doc/{}", p.name);
        let path = Path::new("/").join(&rel);
        if let Ok(t) = std::fs::read_link(&path) {
            let t = t.to_string_lossy().into_owned();
            tree.insert(&rel, vbuild::rootfs::Node::symlink(&t, 0), 0);
        } else if let Ok(d) = std::fs::read(path.join("copyright")) {
            let n = vbuild::rootfs::Node::file(0o644, 0, d);
            tree.insert(&format!("{rel}/copyright"), n, 0);
        }
    }
    let licenses = vbuild::base::licenses_in(&tree, pkgs.iter().map(|p| p.name.as_str()));
    eprintln!(
        "{} of {} packages with an SPDX license",
        licenses.len(),
        pkgs.len()
    );
    assert!(licenses.len() * 5 >= pkgs.len(), "{licenses:?}");
    let iso = b"host";
    let mut m: serde_json::Value =
        serde_json::from_slice(&manifest("host.iso", iso, inputs())).unwrap();
    m["packages"] = serde_json::to_value(&pkgs).unwrap();
    let doc = vbuild::sbom::generate(&m, &vbuild::sbom::Extra { licenses }).unwrap();
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("host.iso.spdx.json");
    std::fs::write(&f, vbuild::sbom::to_bytes(&doc).unwrap()).unwrap();
    let o = Command::new(tool).arg("-i").arg(&f).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !text.to_lowercase().contains("invalid"),
        "{text}"
    );
    vbuild::sbom::check("host.iso.spdx.json", &doc, &m).unwrap();
}
