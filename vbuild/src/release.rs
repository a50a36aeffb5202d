//! Signing and verifying a release directory with minisign (docs/release.md).
//!
//! `SHA256SUMS` lists every published file; `SHA256SUMS.minisig` signs it (prehashed, the
//! minisign default) with a trusted comment `timestamp:T project:ramux version:V commit:C
//! sde:E`. [`verify_dir`] checks the signature, every line against the files, every manifest's
//! output sha against the list, that no manifest says its image carries a secret, and that
//! every SBOM lists its manifest's packages.
//! The parsing and checking cores are pure; the `*_dir`/`*_file` functions do the I/O.

use crate::manifest::{SUMS, SUMS_SIG};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the trusted comment of a release signature records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInfo {
    /// When it was signed (Unix seconds, the signer's clock; not part of any build output).
    pub timestamp: i64,
    /// The ramux (workspace) version.
    pub version: String,
    /// `git rev-parse HEAD` of the checkout, `+dirty` appended when tracked files changed,
    /// `unknown` outside git.
    pub commit: String,
    /// The build clock of the images (SOURCE_DATE_EPOCH).
    pub sde: i64,
}

/// The trusted comment: space-separated `key:value` fields, minisign's `timestamp` first.
pub fn trusted_comment(i: &SignInfo) -> String {
    format!(
        "timestamp:{} project:ramux version:{} commit:{} sde:{}",
        i.timestamp, i.version, i.commit, i.sde
    )
}

/// The `key:value` fields of a trusted comment (words without a colon are skipped).
pub fn comment_fields(comment: &str) -> BTreeMap<String, String> {
    comment
        .split_whitespace()
        .filter_map(|w| w.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A trusted comment written by [`trusted_comment`], parsed back.
pub fn parse_trusted_comment(comment: &str) -> Result<SignInfo> {
    let f = comment_fields(comment);
    let get = |k: &str| {
        f.get(k)
            .cloned()
            .ok_or_else(|| anyhow!("trusted comment {comment:?} has no {k}: field"))
    };
    let num = |k: &str| -> Result<i64> {
        get(k)?
            .parse()
            .map_err(|_| anyhow!("trusted comment {comment:?}: {k}: is not a number"))
    };
    Ok(SignInfo {
        timestamp: num("timestamp")?,
        version: get("version")?,
        commit: get("commit")?,
        sde: num("sde")?,
    })
}

/// The commit of the checkout at `root` (see [`SignInfo::commit`]).
pub fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if s.is_empty() => head,
        _ => format!("{head}+dirty"),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The files of a key pair: `PREFIX.key` (secret) and `PREFIX.pub`.
pub fn key_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", prefix.display()));
    (with("key"), with("pub"))
}

/// The git work tree `path` would be in (the nearest ancestor with a `.git`), if any.
pub fn git_work_tree(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    abs.ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Writes a new minisign key pair `PREFIX.key` (mode 0600, **not** password-protected) and
/// `PREFIX.pub`. Refuses to overwrite either, and refuses a secret key inside a git work tree
/// (where it could be committed) unless `force`. Returns the two paths.
pub fn generate_key(prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf)> {
    let (secret, public) = key_paths(prefix);
    for p in [&secret, &public] {
        if p.symlink_metadata().is_ok() {
            bail!(
                "{} exists: refusing to overwrite a key (choose another --out PREFIX or remove it)",
                p.display()
            );
        }
    }
    if let (Some(tree), false) = (git_work_tree(&secret), force) {
        bail!(
            "{} would be inside the git work tree {}, where it could be committed: \
             use --out with a path outside it (or --force)",
            secret.display(),
            tree.display()
        );
    }
    let kp = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| anyhow!("cannot generate a key pair: {e}"))?;
    let sk = kp
        .sk
        .to_box(Some("ramux release secret key (unencrypted)"))
        .map_err(|e| anyhow!("cannot encode the secret key: {e}"))?;
    let pk = kp
        .pk
        .to_box()
        .map_err(|e| anyhow!("cannot encode the public key: {e}"))?;
    if let Some(dir) = secret.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_new(&secret, sk.into_string().as_bytes(), 0o600)?;
    write_new(&public, pk.into_string().as_bytes(), 0o644)?;
    Ok((secret, public))
}

/// Creates `path` (never replacing a file) with `mode` from the start and `data` in it.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::set_mode(path, mode) // umask may have narrowed the public key's mode
}

/// Reads the unencrypted minisign secret key file `path` (checked before a release builds).
pub fn read_secret_key(path: &Path) -> Result<minisign::SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret key {}", path.display()))?;
    minisign::SecretKeyBox::from_string(&text)
        .and_then(|b| b.into_unencrypted_secret_key())
        .map_err(|e| {
            anyhow!(
                "{}: not an unencrypted minisign secret key ({e}); make one with \
                 `vbuild key generate` (Debian's minisign 0.11 `-G -W` writes no key checksum, \
                 which is refused as corrupted)",
                path.display()
            )
        })
}

fn read_public_key(path: &Path) -> Result<minisign::PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    minisign::PublicKeyBox::from_string(&text)
        .and_then(|b| b.into_public_key())
        .or_else(|_| minisign::PublicKey::from_base64(text.trim()))
        .map_err(|e| anyhow!("{}: not a minisign public key ({e})", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Signing

/// Signs `dir/SHA256SUMS` into `dir/SHA256SUMS.minisig` with the secret key file `key`, under
/// the directory lock (no build can change the list meanwhile). Returns the signature's path.
pub fn sign_dir(dir: &Path, key: &Path, info: &SignInfo) -> Result<PathBuf> {
    let sk = read_secret_key(key)?;
    let _lock = crate::lock_dir(dir)?;
    let sums_path = dir.join(SUMS);
    let sums = std::fs::read(&sums_path).with_context(|| {
        format!(
            "cannot read {}: nothing to sign (build into {} first)",
            sums_path.display(),
            dir.display()
        )
    })?;
    let text = std::str::from_utf8(&sums).map_err(|_| anyhow!("{SUMS} is not UTF-8"))?;
    parse_sums(text).with_context(|| format!("refusing to sign {}", sums_path.display()))?;
    let untrusted = format!(
        "signature of SHA256SUMS from vbuild (ramux {})",
        info.version
    );
    let sig = minisign::sign(
        None,
        &sk,
        std::io::Cursor::new(&sums),
        Some(&trusted_comment(info)),
        Some(&untrusted),
    )
    .map_err(|e| anyhow!("cannot sign {}: {e}", sums_path.display()))?;
    let out = dir.join(SUMS_SIG);
    crate::write_atomic(&out, sig.into_string().as_bytes())?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Verifying

/// What [`verify_dir`] found, all of it good.
#[derive(Debug, Clone)]
pub struct Verified {
    pub trusted_comment: String,
    /// Files listed in SHA256SUMS and checked.
    pub files: usize,
    /// Manifests checked against SHA256SUMS.
    pub manifests: usize,
    /// SBOMs (`*.spdx.json`) checked against their manifests.
    pub sboms: usize,
    /// Files of the directory that SHA256SUMS does not list (not covered by the signature).
    pub unlisted: Vec<String>,
}

/// A SHA256SUMS file name: a base name of `[A-Za-z0-9._+-]` not starting with a dot.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Parses SHA256SUMS text (GNU format, `<64 lower hex>  <name>`, LF), strictly: a line that is
/// not of that shape, a bad name or a repeated name is an error naming the line (pure).
pub fn parse_sums(text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (sum, name) = line
            .split_once("  ")
            .ok_or_else(|| anyhow!("{SUMS} line {n}: expected `<sha256>  <file>`: {line:?}"))?;
        let hex = sum.len() == 64
            && sum
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            bail!("{SUMS} line {n}: {sum:?} is not a lower-case sha256");
        }
        if !valid_name(name) {
            bail!("{SUMS} line {n}: {name:?} is not a plain file name of [A-Za-z0-9._+-]");
        }
        if map.insert(name.to_string(), sum.to_string()).is_some() {
            bail!("{SUMS} line {n}: {name} is listed twice");
        }
    }
    if map.is_empty() {
        bail!("{SUMS} lists no file");
    }
    Ok(map)
}

/// Checks the signature `sig_text` of `sums` with `pk`, trusted comment included; returns the
/// trusted comment. Prehashed and legacy signatures are both accepted.
fn check_signature(pk: &minisign::PublicKey, sig_text: &str, sums: &[u8]) -> Result<String> {
    let sig = minisign::SignatureBox::from_string(sig_text)
        .map_err(|e| anyhow!("{SUMS_SIG} is not a minisign signature: {e}"))?;
    minisign::verify(pk, &sig, std::io::Cursor::new(sums), true, false, true).map_err(|e| {
        let what = if e.to_string().contains("Comment") {
            "its trusted comment was changed after signing"
        } else {
            "SHA256SUMS or the signature was changed, or another key signed it"
        };
        anyhow!("{SUMS_SIG} does not verify with this public key ({e}): {what}")
    })?;
    sig.trusted_comment()
        .map_err(|e| anyhow!("{SUMS_SIG}: unreadable trusted comment: {e}"))
}

/// A secret-looking input path: under a `secrets` or `private` directory, a `.key` or `.nt`
/// file, or a RADIUS NAS secret (the names of docs/secrets.md).
fn secret_like(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.iter().any(|p| *p == "secrets" || *p == "private")
        || path.ends_with(".key")
        || path.ends_with(".nt")
        || path.contains("radius/nas/")
}

/// Why the manifest `m` says its image carries a secret, if it does (pure). Its `secrets`
/// map may only name, per service, the paths the appliance expects in its overlay at boot;
/// an input file that looks like a secret means one was built into the image.
pub fn carried_secret(m: &serde_json::Value) -> Option<String> {
    if let Some(s) = m.get("secrets") {
        let Some(map) = s.as_object() else {
            return Some("`secrets` is not a map of service -> secret names".into());
        };
        for (svc, names) in map {
            let names = names
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[serde_json::Value::Null]);
            let name_ok = |n: &serde_json::Value| matches!(n.as_str(), Some(n) if ramux_contract::secrets::check_path(n).is_ok());
            if !names.iter().all(name_ok) {
                return Some(format!(
                    "`secrets.{svc}` holds something other than secret names (content?)"
                ));
            }
        }
    }
    let inputs = m.get("inputs").and_then(|i| i.as_object());
    inputs
        .into_iter()
        .flat_map(|i| i.keys())
        .find(|k| secret_like(k))
        .map(|k| format!("input {k:?} is a secret file built into the image"))
}

/// Checks one manifest (file `name`, parsed as `m`) against the verified sums (pure): its ISO
/// is listed with the same sha256 and it carries no secret.
pub fn check_manifest(
    name: &str,
    m: &serde_json::Value,
    sums: &BTreeMap<String, String>,
) -> Result<()> {
    let iso = &m["outputs"]["iso"];
    let (Some(file), Some(sha)) = (iso["file"].as_str(), iso["sha256"].as_str()) else {
        bail!("{name}: no outputs.iso.file/sha256: not a vbuild manifest");
    };
    let listed = sums
        .get(file)
        .ok_or_else(|| anyhow!("{name}: its ISO {file} is not listed in {SUMS}"))?;
    if listed != sha {
        bail!(
            "{name}: outputs.iso sha256 {sha} differs from {SUMS} ({listed} for {file}): \
             the manifest belongs to another build"
        );
    }
    check_other_outputs(name, m, sums)?;
    if let Some(why) = carried_secret(m) {
        bail!("{name}: refused, the image carries secrets: {why} (docs/secrets.md: secrets go in the overlay, never in an ISO)");
    }
    Ok(())
}

/// Every other output of the manifest that is also a published file agrees with `sums` (the
/// initrd and kernel are inside the ISO, so usually none is).
fn check_other_outputs(
    name: &str,
    m: &serde_json::Value,
    sums: &BTreeMap<String, String>,
) -> Result<()> {
    let outputs = m["outputs"].as_object().into_iter().flatten();
    for (key, o) in outputs {
        let (Some(file), Some(sha)) = (o["file"].as_str(), o["sha256"].as_str()) else {
            bail!("{name}: outputs.{key} has no file/sha256");
        };
        if sums.get(file).is_some_and(|l| l != sha) {
            bail!("{name}: outputs.{key} sha256 {sha} differs from {SUMS} for {file}");
        }
    }
    Ok(())
}

/// Verifies the release directory `dir` with the public key file `pubkey`; the error names
/// the first thing that fails.
pub fn verify_dir(dir: &Path, pubkey: &Path) -> Result<Verified> {
    let pk = read_public_key(pubkey)?;
    let sums_path = dir.join(SUMS);
    let sums = std::fs::read(&sums_path).with_context(|| {
        format!(
            "cannot read {}: not a release directory",
            sums_path.display()
        )
    })?;
    let sig_path = dir.join(SUMS_SIG);
    let sig = std::fs::read_to_string(&sig_path).with_context(|| {
        format!(
            "cannot read {}: the release is not signed (vbuild release --sign KEY)",
            sig_path.display()
        )
    })?;
    let comment = check_signature(&pk, &sig, &sums)?;
    let text = std::str::from_utf8(&sums).map_err(|_| anyhow!("{SUMS} is not UTF-8"))?;
    let map = parse_sums(text)?;
    for (name, sha) in &map {
        check_file(dir, name, sha)?;
    }
    let mut manifests = 0;
    for name in dir_names(dir)? {
        if name.ends_with(".manifest.json") {
            let m = read_manifest(dir, &name, &map)?;
            check_manifest(&name, &m, &map)?;
            manifests += 1;
        }
    }
    let mut sboms = 0;
    for name in dir_names(dir)? {
        if let Some(iso) = name.strip_suffix(crate::sbom::SUFFIX) {
            let doc = read_manifest(dir, &name, &map)?;
            let mname = format!("{iso}.manifest.json");
            if !map.contains_key(&mname) {
                bail!("{name}: no {mname} listed in {SUMS} to check it against");
            }
            let m = read_manifest(dir, &mname, &map)?;
            crate::sbom::check(&name, &doc, &m)?;
            sboms += 1;
        }
    }
    let unlisted = dir_names(dir)?
        .into_iter()
        .filter(|n| n != SUMS && n != SUMS_SIG && !map.contains_key(n))
        .collect();
    Ok(Verified {
        trusted_comment: comment,
        files: map.len(),
        manifests,
        sboms,
        unlisted,
    })
}

fn check_file(dir: &Path, name: &str, sha: &str) -> Result<()> {
    let p = dir.join(name);
    if !p.is_file() {
        bail!("{}: listed in {SUMS} but missing", p.display());
    }
    let got = crate::sha256_file(&p)?;
    if got != sha {
        bail!(
            "{}: sha256 {got} differs from {SUMS} ({sha}): the file changed after signing \
             (download or rebuild it)",
            p.display()
        );
    }
    Ok(())
}

/// A manifest or SBOM of `dir` (JSON), which must be listed in (so covered by) the verified
/// sums.
fn read_manifest(
    dir: &Path,
    name: &str,
    sums: &BTreeMap<String, String>,
) -> Result<serde_json::Value> {
    if !sums.contains_key(name) {
        bail!("{name}: not listed in {SUMS}, so not covered by the signature");
    }
    let p = dir.join(name);
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", p.display()))
}

/// The file names in `dir`, sorted.
fn dir_names(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_round_trip() {
        let i = SignInfo {
            timestamp: 1_800_000_000,
            version: "0.1.0".into(),
            commit: "abcd+dirty".into(),
            sde: 1_700_000_000,
        };
        let c = trusted_comment(&i);
        assert_eq!(
            c,
            "timestamp:1800000000 project:ramux version:0.1.0 commit:abcd+dirty sde:1700000000"
        );
        assert_eq!(parse_trusted_comment(&c).unwrap(), i);
        assert!(parse_trusted_comment("timestamp:1 version:x").is_err());
    }

    #[test]
    fn sums_parse_strictly() {
        let a = "a".repeat(64);
        assert_eq!(parse_sums(&format!("{a}  x.iso\n")).unwrap()["x.iso"], a);
        for bad in [
            format!("{a} x.iso\n"),
            format!("{}  x.iso\n", "A".repeat(64)),
            format!("{a}  ../x\n"),
            format!("{a}  .hidden\n"),
            format!("{a}  x\n{a}  x\n"),
            String::new(),
        ] {
            assert!(parse_sums(&bad).is_err(), "{bad:?}");
        }
        let e = parse_sums(&format!("{a}  x\nnope\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn secrets_names_pass_content_and_key_inputs_do_not() {
        let ok = serde_json::json!({"secrets": {"radius": ["pki/radius.key"]},
                                    "inputs": {"overlays/dns/etc/x.conf": "00"}});
        assert_eq!(carried_secret(&ok), None);
        let content = serde_json::json!({"secrets": {"radius": ["s3cr3t value\n"]}});
        assert!(carried_secret(&content).is_some());
        let key = serde_json::json!({"inputs": {"overlays/x/etc/ssl/private/server.key": "00"}});
        assert!(carried_secret(&key).unwrap().contains("server.key"));
    }

    #[test]
    fn manifest_outputs_against_sums() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let sums: BTreeMap<String, String> = [("x.iso".to_string(), a.clone())].into();
        let m = |iso: &str, initrd_file: &str| {
            serde_json::json!({"outputs": {
                "iso": {"file": "x.iso", "sha256": iso},
                "initrd": {"file": initrd_file, "sha256": b}}})
        };
        check_manifest(
            "x.iso.manifest.json",
            &m(&a, "images/pxeboot/initrd.img"),
            &sums,
        )
        .unwrap();
        let e = check_manifest("m", &m(&b, "i"), &sums)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another build"), "{e}");
        let e = check_manifest("m", &m(&a, "x.iso"), &sums)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outputs.initrd"), "{e}");
        assert!(check_manifest("m", &serde_json::json!({}), &sums).is_err());
    }

    #[test]
    fn key_paths_and_work_tree() {
        let (s, p) = key_paths(Path::new("/tmp/x/rel"));
        assert_eq!(
            (s.to_str(), p.to_str()),
            (Some("/tmp/x/rel.key"), Some("/tmp/x/rel.pub"))
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".git")).unwrap();
        assert!(git_work_tree(&d.path().join("sub/k.key")).is_some());
    }
}
