//! The base layer: Debian packages (or a user tarball) + the kernel module closure, archived and
//! compressed once and cached by the hash of its inputs.
//!
//! Two cache levels under `images/cache/`:
//! - `base-<sha256>/base.tar`: the `mmdebstrap --variant=extract` tarball, keyed by suite,
//!   mirror and package list (the slow, network-bound step, ~8 s);
//! - `layer-<sha256>/`: the compressed cpio of the cleaned base + module closure, the kernel and
//!   a `meta.json`, keyed by the tarball's sha256, modules, removal list, compression and build
//!   clock (the CPU-bound step).

use crate::closure::ModuleDb;
use crate::rootfs::{norm, Kind, Node, Tree, NONDETERMINISTIC};
use crate::{hex, sha256_file, tool, Progress};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bump when the layer format or its cleaning rules change, so old caches are not reused.
/// v2: meta.json also has the packages' licenses (for the SBOM).
const LAYER_FORMAT: &str = "ramux-layer-v2";
/// v2: the package list also has each .deb's architecture and sha256 (for the SBOM).
const BASE_FORMAT: &str = "ramux-base-v2";
/// SOURCE_DATE_EPOCH given to mmdebstrap. Fixed (not the build clock) so the cached tarball does
/// not depend on the build clock; the layer clamps mtimes to the build clock afterwards.
const MMDEBSTRAP_EPOCH: &str = "1700000000";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Debian architecture (`amd64`, `all`), when known (the extract hook, dpkg status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// sha256 of the .deb (the extract hook hashes apt's cached copy, which apt checked against
    /// the archive's `Packages`); unknown for a user tarball.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a base tarball is made of.
#[derive(Debug, Clone)]
pub enum BaseSource {
    Debian {
        suite: String,
        mirror: String,
        sources: Vec<String>,
        packages: Vec<String>,
    },
    Tarball(PathBuf),
}

/// The cached base tarball and what it contains.
#[derive(Debug, Clone)]
pub struct BaseTar {
    pub path: PathBuf,
    pub sha256: String,
    pub packages: Vec<Package>,
    pub mmdebstrap_version: Option<String>,
    pub cache_hit: bool,
}

/// Metadata stored next to a cached layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerMeta {
    pub kernel_release: String,
    pub kernel_sha256: String,
    /// Module paths relative to /lib/modules/<release>/, load order.
    pub modules: Vec<String>,
    pub builtin_modules: Vec<String>,
    pub dir_links: BTreeMap<String, String>,
    pub uncompressed_size: u64,
    pub compressed_size: u64,
    pub sha256: String,
    pub depmod_version: String,
    /// Packages from the base's `var/lib/dpkg/status` (user tarballs; empty for mmdebstrap's
    /// extract variant, whose list comes from the extract hook instead).
    #[serde(default)]
    pub status_packages: Vec<Package>,
    /// Package name -> SPDX license expression, from the machine-readable (DEP-5)
    /// `usr/share/doc/<name>/copyright` files of the base, read before cleaning removes them
    /// (packages without one are absent: NOASSERTION in the SBOM).
    #[serde(default)]
    pub licenses: BTreeMap<String, String>,
}

/// A ready base layer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub cpio: PathBuf,
    pub kernel: PathBuf,
    pub meta: LayerMeta,
    pub cache_hit: bool,
}

fn sha_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// Writes a directory atomically: build in `<final>.tmp-<pid>`, rename into place.
fn publish_dir(tmp: &Path, fin: &Path) -> Result<()> {
    match std::fs::rename(tmp, fin) {
        Ok(()) => Ok(()),
        // Another build published the same key meanwhile: its content is identical.
        Err(_) if fin.is_dir() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(anyhow!("cannot publish cache entry {}: {e}", fin.display())),
    }
}

/// `suite`, `mirror` and `sources` go to mmdebstrap as positional arguments: a value starting
/// with `-` would become an option, so each is checked before anything runs.
pub fn check_debian_args(suite: &str, mirror: &str, sources: &[String]) -> Result<()> {
    let ok_suite = !suite.is_empty()
        && !suite.starts_with('-')
        && suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok_suite {
        bail!("base suite {suite:?} is not a Debian suite name (letters, digits, '.', '_', '-'; not starting with '-'): fix [base] suite in profile.toml, e.g. suite = \"bookworm\"");
    }
    for (what, v) in
        std::iter::once(("mirror", mirror)).chain(sources.iter().map(|s| ("sources", s.as_str())))
    {
        let url = ["http://", "https://", "file:/", "copy:/", "mirror+"]
            .iter()
            .any(|p| v.starts_with(p));
        let line = v.starts_with("deb ") || v.starts_with("deb-src ");
        if v.starts_with('-') || v.contains('\n') || !(url || line) {
            bail!("base {what} {v:?} is neither a mirror URL (http://, https://, file:/) nor a sources line (deb ...): fix [base] {what} in profile.toml");
        }
    }
    Ok(())
}

/// The tarball's sha256 when it matches the one recorded beside it at publish time; None when
/// the entry was cut short or edited (a truncated tarball must not count as a cache hit).
fn verified_sha(dir: &Path) -> Result<Option<String>> {
    let Ok(want) = std::fs::read_to_string(dir.join("base.tar.sha256")) else {
        return Ok(None);
    };
    let got = sha256_file(&dir.join("base.tar"))?;
    Ok((got == want.trim()).then_some(got))
}

/// Makes the cache entry `dir`: mmdebstrap into a private temp directory, the package list and
/// the tarball's checksum beside it, everything synced, then one rename.
fn run_mmdebstrap(
    cache: &Path,
    key: &str,
    (suite, mirror, sources): (&str, &str, &[String]),
    pk: &[String],
    prog: &Progress,
    dir: &Path,
) -> Result<()> {
    tool::require("mmdebstrap", "mmdebstrap")?;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create cache dir {}", cache.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&crate::tmp_prefix(&format!("base-{}.tmp-", &key[..16])))
        .tempdir_in(cache)?
        .keep();
    let _guard = crate::RemoveOnDrop(tmp.clone());
    let list = tmp.join("packages.txt");
    prog.step(&format!(
        "mmdebstrap {suite}: {} packages (cached afterwards)",
        pk.len()
    ));
    // The extract hook runs while the .debs are still in the apt cache: record exact
    // package names and versions for the manifest.
    // Also each .deb's architecture and sha256, for the SBOM (docs/release.md).
    let hook = format!(
        "for f in \"$1\"/var/cache/apt/archives/*.deb; do printf '%s %s\\n' \"$(dpkg-deb --show --showformat='${{Package}} ${{Version}} ${{Architecture}}' \"$f\")\" \"$(sha256sum < \"$f\" | cut -d' ' -f1)\"; done | LC_ALL=C sort > '{}'",
        list.display()
    );
    let mut cmd = Command::new("mmdebstrap");
    die_with_parent(&mut cmd);
    let out = cmd
        .env("SOURCE_DATE_EPOCH", MMDEBSTRAP_EPOCH)
        .env("LC_ALL", "C.UTF-8")
        .arg("--variant=extract")
        .arg("--quiet")
        .arg(format!("--include={}", pk.join(",")))
        .arg(format!("--extract-hook={hook}"))
        .arg(suite)
        .arg(tmp.join("base.tar"))
        .arg(mirror)
        .args(sources)
        .output()
        .context("cannot run mmdebstrap")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "mmdebstrap failed ({}) for suite {suite}, mirror {mirror}, packages {}:\n{}",
            out.status,
            pk.join(" "),
            tail.join("\n")
        );
    }
    let version = tool::version("mmdebstrap", &["--version"]).unwrap_or_default();
    let pkgs = parse_packages(&std::fs::read_to_string(&list).unwrap_or_default());
    let meta = serde_json::json!({ "mmdebstrap": version, "packages": pkgs });
    std::fs::write(tmp.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    let sha = sha256_file(&tmp.join("base.tar"))?;
    std::fs::write(tmp.join("base.tar.sha256"), &sha)?;
    for f in ["base.tar", "meta.json", "packages.txt", "base.tar.sha256"] {
        if let Ok(f) = std::fs::File::open(tmp.join(f)) {
            f.sync_all()?;
        }
    }
    crate::sync_dir(&tmp)?;
    publish_dir(&tmp, dir)?;
    crate::sync_dir(cache)
}

/// Returns the base tarball, running mmdebstrap on a cache miss.
pub fn base_tar(src: &BaseSource, cache: &Path, prog: &Progress) -> Result<BaseTar> {
    match src {
        BaseSource::Tarball(p) => {
            let sha = sha256_file(p)
                .with_context(|| format!("cannot read base tarball {}", p.display()))?;
            Ok(BaseTar {
                path: p.clone(),
                sha256: sha,
                packages: vec![],
                mmdebstrap_version: None,
                cache_hit: true,
            })
        }
        BaseSource::Debian {
            suite,
            mirror,
            sources,
            packages,
        } => {
            let mut pk = packages.clone();
            pk.sort();
            pk.dedup();
            check_debian_args(suite, mirror, sources)?;
            let key = sha_of(&[
                BASE_FORMAT,
                suite,
                mirror,
                &sources.join("\n"),
                &pk.join(","),
                MMDEBSTRAP_EPOCH,
            ]);
            let dir = cache.join(format!("base-{}", &key[..16]));
            let tar = dir.join("base.tar");
            let meta_p = dir.join("meta.json");
            let mut cache_hit = tar.is_file() && meta_p.is_file();
            if cache_hit && verified_sha(&dir)?.is_none() {
                prog.step(&format!(
                    "cache entry {} fails its checksum (cut short or edited): rebuilding it",
                    dir.display()
                ));
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
                cache_hit = false;
            }
            if !cache_hit {
                run_mmdebstrap(cache, &key, (suite, mirror, sources), &pk, prog, &dir)?;
            }
            let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_p)?)?;
            let packages: Vec<Package> = serde_json::from_value(meta["packages"].clone())?;
            let sha = verified_sha(&dir)?
                .ok_or_else(|| anyhow!("cache entry {} fails its checksum", dir.display()))?;
            Ok(BaseTar {
                path: tar,
                sha256: sha,
                packages,
                mmdebstrap_version: meta["mmdebstrap"].as_str().map(String::from),
                cache_hit,
            })
        }
    }
}

/// Parses `name version [arch [sha256]]` lines (bases cached before v2 have two columns).
pub fn parse_packages(text: &str) -> Vec<Package> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(Package {
                name: w.next()?.to_string(),
                version: w.next()?.to_string(),
                arch: w.next().map(String::from),
                sha256: w.next().map(String::from),
            })
        })
        .collect()
}

/// Reads `var/lib/dpkg/status` of a user tarball for the manifest (empty when there is none).
pub fn packages_from_status(status: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in status.split("\n\n") {
        let field = |k: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if let (Some(n), Some(v)) = (field("Package:"), field("Version:")) {
            if field("Status:")
                .map(|s| s.ends_with("installed"))
                .unwrap_or(true)
            {
                out.push(Package {
                    name: n,
                    version: v,
                    arch: field("Architecture:"),
                    sha256: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The SPDX license expressions of packages `names` from their DEP-5 copyright files in
/// `tree` ([`crate::sbom::dep5_license`]); a doc directory that is a symlink to a sibling
/// (`usr/share/doc/libfoo1 -> libfoo-common`) is followed once.
pub fn licenses_in<'a>(
    tree: &Tree,
    names: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    let file = |path: &str| match tree.nodes.get(&tree.canonical(path)).map(|n| &n.kind) {
        Some(Kind::File(d)) => Some(String::from_utf8_lossy(d).into_owned()),
        _ => None,
    };
    let mut out = BTreeMap::new();
    for name in names {
        let dir = format!("usr/share/doc/{name}");
        let text = file(&format!("{dir}/copyright")).or_else(|| {
            match tree.nodes.get(&tree.canonical(&dir)).map(|n| &n.kind) {
                Some(Kind::Symlink(t)) if !t.contains('/') => {
                    file(&format!("usr/share/doc/{t}/copyright"))
                }
                _ => None,
            }
        });
        if let Some(l) = text.as_deref().and_then(crate::sbom::dep5_license) {
            out.insert(name.to_string(), l);
        }
    }
    out
}

/// Inputs of the layer cache key.
pub struct LayerInputs<'a> {
    pub base: &'a BaseTar,
    pub modules: &'a [String],
    pub remove: &'a [String],
    pub compression: &'a str,
    pub epoch: u64,
}

/// Returns the base layer, building it on a cache miss.
pub fn layer(inp: &LayerInputs<'_>, cache: &Path, prog: &Progress) -> Result<Layer> {
    let mut remove: Vec<String> = NONDETERMINISTIC.iter().map(|s| s.to_string()).collect();
    remove.extend(inp.remove.iter().cloned());
    let key = sha_of(&[
        LAYER_FORMAT,
        &inp.base.sha256,
        &inp.modules.join(","),
        &remove.join(","),
        inp.compression,
        &inp.epoch.to_string(),
    ]);
    let dir = cache.join(format!("layer-{}", &key[..16]));
    let ext = ext_of(inp.compression);
    let cpio = dir.join(format!("base.cpio.{ext}"));
    let kernel = dir.join("vmlinuz");
    let meta_p = dir.join("meta.json");
    if cpio.is_file() && kernel.is_file() && meta_p.is_file() {
        let meta: LayerMeta = serde_json::from_slice(&std::fs::read(&meta_p)?)
            .with_context(|| format!("corrupt cache entry {}; delete it", dir.display()))?;
        return Ok(Layer {
            cpio,
            kernel,
            meta,
            cache_hit: true,
        });
    }
    tool::require("depmod", "kmod")?;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create cache dir {}", cache.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&crate::tmp_prefix(&format!("layer-{}.tmp-", &key[..16])))
        .tempdir_in(cache)?
        .keep();
    let _guard = crate::RemoveOnDrop(tmp.clone());

    prog.step("reading base tarball");
    // The full module tree (~400 MB) is only staged for depmod: on tmpfs when there is one,
    // since writing and deleting it on disk costs seconds (the cache may sit on a `discard` fs).
    let stage_dir = stage_dir(cache)?;
    let _stage_guard = crate::RemoveOnDrop(stage_dir.clone());
    let stage = stage_dir.join("modstage");
    let (mut tree, kernels) = read_tar(&inp.base.path, &stage)?;
    let (release, vmlinuz) = match kernels.len() {
        1 => kernels.into_iter().next().unwrap(),
        0 => bail!(
            "no kernel in the base: expected boot/vmlinuz-<release> and lib/modules/<release>/ (add linux-image-amd64 to the packages)"
        ),
        _ => bail!(
            "several kernels in the base ({}); keep one linux-image package",
            kernels.iter().map(|k| k.0.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    prog.step(&format!("depmod + module closure for {release}"));
    depmod(&stage, &release)?;
    let moddir = stage.join("lib/modules").join(&release);
    let rd = |n: &str| std::fs::read_to_string(moddir.join(n)).unwrap_or_default();
    let db = ModuleDb::parse(
        &rd("modules.dep"),
        &rd("modules.softdep"),
        &rd("modules.alias"),
        &rd("modules.builtin"),
    );
    if db.is_empty() {
        bail!("depmod produced an empty modules.dep for {release}");
    }
    let closure = db
        .closure(inp.modules)
        .map_err(|e| anyhow!("{e} (kernel {release})"))?;

    // Second staging tree with only the closure, so the image's modules.* match what it ships
    // and `modprobe` works in the guest.
    let small = stage_dir.join("closure");
    let small_mod = small.join("lib/modules").join(&release);
    for m in &closure.order {
        let dst = small_mod.join(m);
        std::fs::create_dir_all(dst.parent().unwrap())?;
        std::fs::copy(moddir.join(m), &dst)?;
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        if moddir.join(f).is_file() {
            std::fs::copy(moddir.join(f), small_mod.join(f))?;
        }
    }
    depmod(&small, &release)?;
    let modroot = format!("lib/modules/{release}");
    let mut files: Vec<PathBuf> = walk_files(&small_mod)?;
    files.sort();
    for f in files {
        let rel = f.strip_prefix(&small_mod)?.to_string_lossy().into_owned();
        let data = std::fs::read(&f)?;
        tree.insert(
            &format!("{modroot}/{rel}"),
            Node::file(0o644, inp.epoch, data),
            inp.epoch,
        );
    }

    let status_packages = match tree
        .nodes
        .get(&tree.canonical("var/lib/dpkg/status"))
        .map(|n| &n.kind)
    {
        Some(Kind::File(d)) => packages_from_status(&String::from_utf8_lossy(d)),
        _ => vec![],
    };
    let names = inp.base.packages.iter().chain(&status_packages);
    let licenses = licenses_in(&tree, names.map(|p| p.name.as_str()));
    prog.step("cleaning rootfs, busybox applets");
    tree.remove_matching(&remove);
    skeleton(&mut tree, inp.epoch);
    busybox_links(&mut tree, &tmp, inp.epoch)?;
    tree.clamp(inp.epoch);

    prog.step(&format!(
        "archiving base layer ({}, {} files)",
        inp.compression,
        tree.nodes.len()
    ));
    let tmp_cpio = tmp.join(format!("base.cpio.{ext}"));
    let (usize_, csize) = write_layer(&tree, inp.compression, &tmp_cpio)?;
    std::fs::write(tmp.join("vmlinuz"), &vmlinuz)?;
    let meta = LayerMeta {
        kernel_release: release.clone(),
        kernel_sha256: hex(&Sha256::digest(&vmlinuz)),
        modules: closure.order,
        builtin_modules: closure.builtin,
        dir_links: tree.dir_links.clone(),
        uncompressed_size: usize_,
        compressed_size: csize,
        sha256: sha256_file(&tmp_cpio)?,
        depmod_version: tool::version("depmod", &["--version"]).unwrap_or_default(),
        status_packages,
        licenses,
    };
    std::fs::write(tmp.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    publish_dir(&tmp, &dir)?;
    Ok(Layer {
        cpio,
        kernel,
        meta,
        cache_hit: false,
    })
}

/// Makes a long-running child (mmdebstrap) receive SIGTERM when vbuild dies, so a killed build
/// leaves no download running behind it. Its own process group: on SIGTERM mmdebstrap signals
/// its whole process group, which must not include vbuild's caller (seen here: it killed the
/// calling shell).
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// A private staging directory: under /dev/shm when it is a writable tmpfs, else in the cache.
fn stage_dir(cache: &Path) -> Result<PathBuf> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix(&crate::tmp_prefix("vbuild-stage-"))
            .tempdir_in(shm)
        {
            return Ok(d.keep());
        }
    }
    Ok(tempfile::Builder::new()
        .prefix(&crate::tmp_prefix("stage.tmp-"))
        .tempdir_in(cache)?
        .keep())
}

pub fn ext_of(compression: &str) -> &'static str {
    if compression == "gzip" {
        "gz"
    } else {
        "zst"
    }
}

fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            v.push(e.into_path());
        }
    }
    Ok(v)
}

fn depmod(base: &Path, release: &str) -> Result<()> {
    // /sbin is not on every user's PATH: use the path tool::require found.
    let exe = tool::find("depmod").unwrap_or_else(|| PathBuf::from("depmod"));
    let out = Command::new(exe)
        .arg("-b")
        .arg(base)
        .arg(release)
        .output()
        .context("cannot run depmod (Debian package kmod)")?;
    if !out.status.success() {
        bail!(
            "depmod -b <staging> {release} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Directories and device nodes the kernel and init need before devtmpfs is mounted:
/// without `dev/console` the kernel has no initial console for /init.
fn skeleton(tree: &mut Tree, epoch: u64) {
    for (p, perm) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("etc/ramux", 0o755),
        ("var/log", 0o755),
    ] {
        if !tree.contains(p) {
            tree.insert(p, Node::dir(perm, epoch), epoch);
        }
    }
    tree.insert(
        "dev/console",
        Node {
            perm: 0o600,
            uid: 0,
            gid: 0,
            mtime: epoch,
            kind: Kind::CharDev(5, 1),
        },
        epoch,
    );
}

/// Busybox applet symlinks in /bin for every applet no package file provides (the extract
/// variant runs no maintainer scripts, so `busybox --install` never ran; docs/builder.md).
/// The applet list comes from the image's own busybox, so it matches the shipped binary.
fn busybox_links(tree: &mut Tree, tmp: &Path, epoch: u64) -> Result<()> {
    let bb_path = ["bin/busybox", "usr/bin/busybox", "sbin/busybox"]
        .into_iter()
        .map(|p| tree.canonical(p))
        .find(|p| matches!(tree.nodes.get(p).map(|n| &n.kind), Some(Kind::File(_))));
    let Some(bb_path) = bb_path else {
        return Ok(());
    };
    let Some(Node {
        kind: Kind::File(data),
        ..
    }) = tree.nodes.get(&bb_path)
    else {
        return Ok(());
    };
    let exe = tmp.join("busybox");
    {
        use std::os::unix::fs::PermissionsExt;
        let mut f = std::fs::File::create(&exe)?;
        f.write_all(data)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
    }
    let out = Command::new(&exe)
        .arg("--list")
        .output()
        .context("cannot run the image's busybox --list")?;
    if !out.status.success() {
        bail!(
            "the image's busybox --list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let target = format!("/{bb_path}");
    for applet in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        let provided = ["bin", "sbin", "usr/bin", "usr/sbin"]
            .iter()
            .any(|d| tree.contains(&format!("{d}/{applet}")));
        if !provided {
            tree.insert(
                &format!("bin/{applet}"),
                Node::symlink(&target, epoch),
                epoch,
            );
        }
    }
    Ok(())
}

/// Reads a tarball into a tree. Kernel modules are written to `stage` (for depmod) instead of
/// the tree; the closure is added back later. `boot/` is dropped (the kernel goes to the ISO).
/// Returns the tree and the (release, vmlinuz bytes) pairs found.
/// (release, vmlinuz bytes)
type Kernels = Vec<(String, Vec<u8>)>;

fn read_tar(path: &Path, stage: &Path) -> Result<(Tree, Kernels)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = match path.extension().and_then(|e| e.to_str()) {
        Some("gz") | Some("tgz") => {
            Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
        }
        Some("zst") => Box::new(zstd::Decoder::new(f)?),
        _ => Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
    };
    let mut ar = tar::Archive::new(reader);
    let mut tree = Tree::default();
    let mut vmlinuz: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut releases: std::collections::BTreeSet<String> = Default::default();
    for e in ar
        .entries()
        .with_context(|| format!("{} is not a tar archive", path.display()))?
    {
        let mut e = e.with_context(|| format!("corrupt tar archive {}", path.display()))?;
        let raw = e.path()?.to_string_lossy().into_owned();
        let Some(p) = norm(&raw) else { continue };
        let h = e.header();
        let perm = h.mode()? & 0o7777;
        let (uid, gid, mtime) = (h.uid()? as u32, h.gid()? as u32, h.mtime()?);
        let ty = h.entry_type();
        // lib/modules/<rel>/... (or usr/lib/modules on merged-/usr trees)
        let modrel = p
            .strip_prefix("lib/modules/")
            .or_else(|| p.strip_prefix("usr/lib/modules/"));
        if let Some(rest) = modrel {
            if let Some((rel, _)) = rest.split_once('/') {
                releases.insert(rel.to_string());
            } else {
                releases.insert(rest.to_string());
            }
            let dst = stage.join("lib/modules").join(rest);
            if ty.is_dir() {
                std::fs::create_dir_all(&dst)?;
            } else if ty.is_file() {
                std::fs::create_dir_all(dst.parent().unwrap())?;
                let mut out = std::fs::File::create(&dst)?;
                std::io::copy(&mut e, &mut out)?;
            }
            continue;
        }
        if let Some(rest) = p.strip_prefix("boot/") {
            if let Some(rel) = rest.strip_prefix("vmlinuz-") {
                let mut d = Vec::new();
                e.read_to_end(&mut d)?;
                vmlinuz.insert(rel.to_string(), d);
            }
            continue;
        }
        let kind = if ty.is_dir() {
            Kind::Dir
        } else if ty.is_symlink() {
            let t = e
                .link_name()?
                .ok_or_else(|| anyhow!("symlink {p} without target"))?;
            let t = t.to_string_lossy().into_owned();
            if matches!(
                p.as_str(),
                "bin" | "sbin" | "lib" | "lib32" | "lib64" | "libx32"
            ) && !t.contains("..")
            {
                tree.dir_links
                    .insert(p.clone(), norm(&t).unwrap_or(t.clone()));
            }
            Kind::Symlink(t)
        } else if ty.is_hard_link() {
            // Hard links become copies: the kernel only links entries with nlink >= 2 and
            // matching inode numbers, and a copy is simpler and deterministic.
            let t = e
                .link_name()?
                .ok_or_else(|| anyhow!("hard link {p} without target"))?;
            let t = norm(&t.to_string_lossy()).unwrap_or_default();
            match tree.nodes.get(&t) {
                Some(n) => n.kind.clone(),
                None => continue,
            }
        } else if ty.is_file() {
            let mut d = Vec::with_capacity(h.size()? as usize);
            e.read_to_end(&mut d)?;
            Kind::File(std::sync::Arc::new(d))
        } else if ty.is_character_special() {
            Kind::CharDev(
                h.device_major()?.unwrap_or(0),
                h.device_minor()?.unwrap_or(0),
            )
        } else {
            continue; // fifos, block devices: not needed in an initramfs
        };
        tree.nodes.insert(
            p,
            Node {
                perm,
                uid,
                gid,
                mtime,
                kind,
            },
        );
    }
    let mut kernels = Vec::new();
    for rel in releases {
        if let Some(k) = vmlinuz.remove(&rel) {
            kernels.push((rel, k));
        }
    }
    Ok((tree, kernels))
}

/// Zstd level for initramfs layers (see docs/builder.md for the gzip/zstd measurement).
pub const ZSTD_LEVEL: i32 = 9;
/// Gzip level when a profile asks for gzip.
pub const GZIP_LEVEL: u32 = 6;

/// Compresses a cpio stream (single-threaded, fixed level: deterministic for a fixed
/// library version, pinned by Cargo.lock).
pub fn compress(raw: &[u8], compression: &str) -> Result<Vec<u8>> {
    Ok(if compression == "gzip" {
        let mut enc = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        enc.write_all(raw)?;
        enc.finish()?
    } else {
        zstd::bulk::compress(raw, ZSTD_LEVEL)?
    })
}

/// Archives a tree as a compressed newc cpio at `out` (atomically). Returns (raw, compressed) sizes.
pub fn write_layer(tree: &Tree, compression: &str, out: &Path) -> Result<(u64, u64)> {
    let mut raw = Vec::with_capacity(tree.data_size() as usize + tree.nodes.len() * 256);
    crate::cpio::write_newc(&mut raw, &tree.members())?;
    let data = compress(&raw, compression)?;
    crate::write_atomic(out, &data)?;
    Ok((raw.len() as u64, data.len() as u64))
}

#[cfg(test)]
mod tests {

    #[test]
    fn mmdebstrap_arguments_cannot_become_options() {
        let ok = check_debian_args("bookworm", "http://deb.debian.org/debian", &[]);
        assert!(ok.is_ok(), "{ok:?}");
        let e = check_debian_args("--aptopt=x", "http://deb.debian.org/debian", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("base suite \"--aptopt=x\" is not a Debian suite name"),
            "{e}"
        );
        let e = check_debian_args("bookworm", "--hook-dir=/tmp/x", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("base mirror \"--hook-dir=/tmp/x\""), "{e}");
        let src = ["deb http://deb.debian.org/debian bookworm-updates main".to_string()];
        assert!(check_debian_args("bookworm", "http://deb.debian.org/debian", &src).is_ok());
        let bad = ["--customize-hook=sh".to_string()];
        assert!(check_debian_args("bookworm", "http://deb.debian.org/debian", &bad).is_err());
    }

    #[test]
    fn a_cut_short_tarball_is_no_cache_hit() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("base.tar"), b"0123456789").unwrap();
        let sha = sha256_file(&d.path().join("base.tar")).unwrap();
        std::fs::write(d.path().join("base.tar.sha256"), format!("{sha}\n")).unwrap();
        assert_eq!(verified_sha(d.path()).unwrap(), Some(sha));
        std::fs::write(d.path().join("base.tar"), b"01234").unwrap();
        assert_eq!(verified_sha(d.path()).unwrap(), None);
        std::fs::remove_file(d.path().join("base.tar.sha256")).unwrap();
        assert_eq!(verified_sha(d.path()).unwrap(), None);
    }
    use super::*;

    #[test]
    fn licenses_from_copyright_files() {
        let mut t = Tree::default();
        let dep5 = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: GPL-2+\n".to_vec();
        t.insert("usr/share/doc/a/copyright", Node::file(0o644, 0, dep5), 0);
        t.insert("usr/share/doc/b", Node::symlink("a", 0), 0);
        let old = b"This is free software, see GPL\n".to_vec();
        t.insert("usr/share/doc/c/copyright", Node::file(0o644, 0, old), 0);
        let l = licenses_in(&t, ["a", "b", "c", "d"].into_iter());
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l["a"], "GPL-2.0-or-later");
        assert_eq!(l["b"], "GPL-2.0-or-later");
    }

    #[test]
    fn status_parsing() {
        let s = "Package: b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n\nPackage: a\nStatus: install ok installed\nVersion: 1:1.0-1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 3\n";
        let p = packages_from_status(s);
        assert_eq!(
            p,
            vec![
                Package {
                    name: "a".into(),
                    version: "1:1.0-1".into(),
                    arch: None,
                    sha256: None,
                },
                Package {
                    name: "b".into(),
                    version: "2".into(),
                    arch: Some("amd64".into()),
                    sha256: None,
                }
            ]
        );
        assert_eq!(parse_packages("x 1.0\ny 2:3\n\n").len(), 2);
        let p = parse_packages("x 1.0 amd64 abcd\n");
        assert_eq!(p[0].arch.as_deref(), Some("amd64"));
        assert_eq!(p[0].sha256.as_deref(), Some("abcd"));
    }

    #[test]
    fn compression_is_deterministic_and_unpacks() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in ["gzip", "zstd"] {
            let a = compress(&data, c).unwrap();
            assert_eq!(a, compress(&data, c).unwrap());
            let back = if c == "gzip" {
                assert_eq!(
                    &a[..10],
                    &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
                    "fixed gzip header"
                );
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(&a[..])
                    .read_to_end(&mut v)
                    .unwrap();
                v
            } else {
                zstd::stream::decode_all(&a[..]).unwrap()
            };
            assert_eq!(back, data);
        }
    }
}
