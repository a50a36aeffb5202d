//! `build_iso`: the whole pipeline, callable from the CLI, tests and other crates.

use crate::base::{self, BaseSource, BaseTar, Layer};
use crate::clock::{self, ClockSource};
use crate::iso::{IsoInput, IsoWriter, Xorriso};
use crate::manifest::{self, FileSum, Manifest};
use crate::profile::{self, Profile};
use crate::rootfs::{norm, Node, Tree};
use crate::{hex, sha256_file, write_atomic, Progress, RemoveOnDrop};
use anyhow::{anyhow, bail, Context, Result};
use ramux_contract::role::NO_ROLE;
use ramux_contract::{files, Appliance};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// ramux binaries copied into /usr/sbin when present in the bin dir (docs/builder.md).
pub const RAMUX_BINARIES: &[&str] = &[
    "ramux-init",
    "vrrpd",
    "vswitch",
    "labwall",
    "ramux-vpn-auth",
];

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// Checkout root holding `profiles/` and `overlays/`.
    pub root: PathBuf,
    pub profile: String,
    /// MASTER or BACKUP (case-insensitive); empty for a role-less profile (`roles = []`), whose
    /// images get role [`NO_ROLE`].
    pub role: String,
    /// `--set KEY=VALUE` template variables (override profile vars and the site).
    pub sets: Vec<(String, String)>,
    /// Site file: `.lw` (labwall) or `.toml` (template variables).
    pub site: Option<PathBuf>,
    /// ISO path; default `<root>/images/<profile>-<role>.iso` (`<profile>.iso` when role-less).
    pub out: Option<PathBuf>,
    /// Where the static ramux binaries are; default $RAMUX_BIN_DIR, else the directory of the
    /// running executable.
    pub bin_dir: Option<PathBuf>,
    /// Default `<root>/images/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Build clock override (else SOURCE_DATE_EPOCH, git, fallback; see [`crate::clock`]).
    pub epoch: Option<i64>,
    pub quiet: bool,
}

/// What was built (also the `--json` summary). Unlike the manifest it carries absolute paths
/// and timings, so it is for humans and scripts, not for comparing builds.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub iso: PathBuf,
    pub manifest: PathBuf,
    /// `<iso>.spdx.json`, the image's SBOM (docs/release.md).
    pub sbom: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub profile: String,
    pub role: String,
    pub hostname: String,
    pub epoch: i64,
    pub clock_source: ClockSource,
    pub kernel_release: String,
    pub modules: usize,
    pub base_tar_cached: bool,
    pub base_layer_cached: bool,
    pub initrd_size: u64,
    pub initrd_uncompressed_size: u64,
    pub recommended_min_ram_mib: u64,
    /// (step, milliseconds)
    pub timings: Vec<(String, u64)>,
    pub total_ms: u64,
}

/// Monotonic stopwatch for the report (durations only; never written into outputs).
struct Timer {
    start: std::time::Instant,
    last: std::time::Instant,
    steps: Vec<(String, u64)>,
}

impl Timer {
    fn new() -> Self {
        let now = std::time::Instant::now();
        Timer {
            start: now,
            last: now,
            steps: vec![],
        }
    }
    fn lap(&mut self, name: &str) {
        let now = std::time::Instant::now();
        self.steps
            .push((name.to_string(), (now - self.last).as_millis() as u64));
        self.last = now;
    }
}

/// Where the ramux binaries for the image come from: `$RAMUX_BIN_DIR`, else the directory of the
/// running vbuild (scripts/build puts them all in one place).
pub fn default_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RAMUX_BIN_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::current_exe()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

/// Does this ELF file have a PT_INTERP segment (i.e. need a dynamic loader)?
fn elf_is_dynamic(data: &[u8]) -> Option<bool> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None; // not a little-endian ELF64: let it through unchecked
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[32..40].try_into().ok()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff.checked_add(i * phentsize)?;
        if o + 4 > data.len() {
            return None;
        }
        if u32::from_le_bytes(data[o..o + 4].try_into().ok()?) == 3 {
            return Some(true);
        }
    }
    Some(false)
}

/// The manifest's key of input `p`: its path under `root` with `..` resolved (a lab's site
/// given as `labs/../profiles/router/site.lw` is `profiles/router/site.lw`, which is where the
/// stale check looks for it again), else its file name.
pub(crate) fn rel_display(root: &Path, p: &Path) -> String {
    let (root, p) = match (root.canonicalize(), p.canonicalize()) {
        (Ok(r), Ok(q)) => (r, q),
        _ => (root.to_path_buf(), p.to_path_buf()),
    };
    p.strip_prefix(&root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// Template variables: built-ins, then profile `[vars]`, then the site, then `--set`.
fn context(
    p: &Profile,
    role: &str,
    hostname: &str,
    kernel_release: &str,
    epoch: i64,
    site_vars: &BTreeMap<String, toml::Value>,
    sets: &[(String, String)],
) -> Result<tera::Context> {
    let mut ctx = tera::Context::new();
    ctx.insert("profile", &p.name);
    ctx.insert("role", role);
    ctx.insert("role_lower", &role.to_ascii_lowercase());
    ctx.insert("is_master", &(role == "MASTER"));
    ctx.insert("kernel_release", kernel_release);
    ctx.insert("epoch", &epoch);
    for (k, v) in p.vars.iter().chain(site_vars.iter()) {
        ctx.insert(k, v);
    }
    ctx.insert("site", site_vars);
    for (k, v) in sets {
        ctx.insert(k, v);
    }
    ctx.insert("hostname", hostname);
    Ok(ctx)
}

/// `<profile>-<role>` in lower case (`router-backup`), or `<profile>` for a role-less image: the
/// default ISO name (without `.iso`) and host name.
pub fn image_name(profile: &str, role: &str) -> String {
    if role == NO_ROLE {
        profile.to_string()
    } else {
        format!("{profile}-{}", role.to_ascii_lowercase())
    }
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

/// Adds a directory tree (overlay) to `tree`; files keep only their executable bit (git does not
/// track more), everything is root-owned and stamped with the build clock.
/// An overlay file's mode in the image: 0755 or 0644 as git knows them, but never more open than
/// the source (an overlay `etc/shadow` kept 0600 in the checkout stays 0600; forcing 0644 made
/// it world-readable). The owner keeps read/write, so a file is never unreadable to root.
fn overlay_mode(src: u32) -> u32 {
    let base = if src & 0o111 != 0 { 0o755 } else { 0o644 };
    base & (src | 0o600)
}

/// The sha256 a manifest records for input `path`: of the file's bytes, or for a symlink (an
/// overlay's link into a package's tree, dangling outside the image) of `symlink:TARGET`.
pub fn input_sum(path: &Path) -> Result<String> {
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if m.file_type().is_symlink() {
        let t = std::fs::read_link(path)?.to_string_lossy().into_owned();
        return Ok(hex(&Sha256::digest(format!("symlink:{t}").as_bytes())));
    }
    sha256_file(path)
}

fn add_overlay(
    tree: &mut Tree,
    dir: &Path,
    display: &str,
    epoch: u64,
    inputs: &mut BTreeMap<String, String>,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(dir).sort_by_file_name().min_depth(1) {
        let e = e.with_context(|| format!("cannot read overlay {display}"))?;
        let rel = e.path().strip_prefix(dir)?.to_string_lossy().into_owned();
        let Some(rel) = norm(&rel) else { continue };
        if rel.ends_with(".gitkeep") || rel.ends_with(".keep") {
            continue;
        }
        let ft = e.file_type();
        let key = format!("{display}/{rel}");
        if ft.is_symlink() {
            let t = std::fs::read_link(e.path())?.to_string_lossy().into_owned();
            inputs.insert(key, input_sum(e.path())?);
            tree.insert(&rel, Node::symlink(&t, epoch), epoch);
        } else if ft.is_dir() {
            tree.insert(&rel, Node::dir(0o755, epoch), epoch);
        } else if ft.is_file() {
            let data = std::fs::read(e.path()).with_context(|| format!("cannot read {key}"))?;
            let src = e.metadata()?.permissions().mode();
            inputs.insert(key, hex(&Sha256::digest(&data)));
            tree.insert(&rel, Node::file(overlay_mode(src), epoch, data), epoch);
        }
    }
    Ok(())
}

/// Site file handling: labwall sources compile to network config; TOML gives template variables.
struct Site {
    vars: BTreeMap<String, toml::Value>,
    /// (path in image, content)
    files: Vec<(String, String)>,
    input: Option<(String, String)>,
    /// The files the site INCLUDEs (key, sha256), for the manifest.
    included: Vec<(String, String)>,
}

fn load_site(
    root: &Path,
    path: Option<&Path>,
    role: &str,
    defines: &[(String, String)],
) -> Result<Site> {
    let mut site = Site {
        vars: BTreeMap::new(),
        files: vec![],
        input: None,
        included: vec![],
    };
    let Some(path) = path else { return Ok(site) };
    let data =
        std::fs::read(path).with_context(|| format!("cannot read site file {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    site.input = Some((rel_display(root, path), hex(&Sha256::digest(&data))));
    site.vars
        .insert("site_file".into(), toml::Value::String(name.clone()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let text = String::from_utf8_lossy(&data);
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                let (l, c) = e
                    .span()
                    .map(|s| profile::line_col(&text, s.start))
                    .unwrap_or((1, 1));
                anyhow!("{}:{l}:{c}: error: {}", path.display(), e.message())
            })?;
            site.vars.extend(table);
        }
        Some("lw") => {
            let out = labwall_compile(path, role, defines)?;
            site.files = out;
        }
        _ => bail!(
            "site file {}: expected a labwall file (.lw) or template variables (.toml)",
            path.display()
        ),
    }
    Ok(site)
}

/// Compiles a labwall site for this role into the [`ramux_contract::files`] set. `HOSTNAME` is always defined as the
/// appliance's host name, so the output never depends on the build machine's name.
fn labwall_compile(
    path: &Path,
    role: &str,
    defines: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    let o = labwall::compile_file(path, role, defines).map_err(|e| {
        anyhow!(
            "labwall site {} does not compile for role {role}:\n{}",
            path.display(),
            e.trim_end()
        )
    })?;
    let at = |p: &str| files::in_image(p).to_string();
    Ok(vec![
        (at(files::NETWORK_IP), o.network_ip),
        (at(files::SYSCTL_CONF), o.sysctl_conf),
        (at(files::RULESET_NFT), o.ruleset_nft),
        (at(files::KEEPALIVED_CONF), o.keepalived_conf),
    ])
}

/// Validates appliance.toml (and the sysctl file) with the very ramux-init that goes into the
/// image (`ramux-init check`), so a contract mismatch fails the build, not the boot.
fn check_with_init(
    bin_dir: &Path,
    work: &Path,
    appliance: &str,
    site_files: &[(String, String)],
) -> Result<()> {
    let f = work.join("appliance.toml");
    std::fs::write(&f, appliance)?;
    let mut cmd = std::process::Command::new(bin_dir.join("ramux-init"));
    cmd.arg("check").arg(&f);
    if let Some((_, sysctl)) = site_files
        .iter()
        .find(|(p, _)| p == "etc/ramux/sysctl.conf")
    {
        let s = work.join("sysctl.conf");
        std::fs::write(&s, sysctl)?;
        cmd.arg("--sysctl").arg(&s);
    }
    let out = cmd.output().context("cannot run ramux-init check")?;
    if !out.status.success() {
        bail!(
            "ramux-init check rejects the generated /etc/ramux/appliance.toml:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

/// Builds one ISO. See [`BuildRequest`].
pub fn build_iso(req: &BuildRequest) -> Result<BuildReport> {
    let mut timer = Timer::new();
    let prog = Progress::new(req.quiet);
    let root = &req.root;
    let prof = profile::load(root, &req.profile)?;
    let req = &crate::instance::prepare(req, &prof)?;
    let role = profile::check_role(&prof, &req.role)?;
    let (hostname, sets) = host_and_sets(&prof, &role, &req.sets)?;
    let dest = Destination::prepare(req, &prof, &role)?;
    let cache = req
        .cache_dir
        .clone()
        .unwrap_or_else(|| root.join("images/cache"));
    let _owner = crate::claim_owner();
    // Leftovers of killed builds (a 400 MB module stage on tmpfs among them).
    crate::sweep_stale(&cache, ".tmp-");
    crate::sweep_stale(Path::new("/dev/shm"), "vbuild-stage-");
    crate::sweep_stale(&dest.dir, ".work-");
    crate::sweep_stale(&dest.dir, ".vbuild-");

    let (epoch, clock_source) = build_clock(req, &prof)?;
    let ep = epoch as u64;

    // Binaries (checked early: a missing ramux-init is a setup error, not a late failure).
    let bin_dir = req
        .bin_dir
        .clone()
        .or_else(default_bin_dir)
        .ok_or_else(|| anyhow!("no bin dir: pass --bin-dir or set RAMUX_BIN_DIR"))?;
    let binaries = load_binaries(&bin_dir)?;
    let site = role_site(req, &prof, &role, &hostname, &sets)?;
    let prof = crate::instance::site_services(prof, &site.files);
    // Fail fast, before the slow base steps: templates (rendered again later with the real
    // kernel release) and the ISO tools.
    let early = context(
        &prof,
        &role,
        &hostname,
        "0.0.0-unknown",
        epoch,
        &site.vars,
        &sets,
    )?;
    profile::render_all(&prof, &early)?;
    let writer = Xorriso;
    let iso_tools = writer.tool_versions()?;
    timer.lap("profile");

    // Base.
    let src = base_source(&prof);
    let wanted_modules = wanted_modules(&prof);
    let btar: BaseTar = base::base_tar(&src, &cache, &prog)?;
    timer.lap("base tarball");
    let layer: Layer = base::layer(
        &base::LayerInputs {
            base: &btar,
            modules: &wanted_modules,
            remove: &prof.remove,
            compression: &prof.compression,
            epoch: ep,
        },
        &cache,
        &prog,
    )?;
    timer.lap("base layer");

    // Top layer.
    prog.step("rendering templates, top layer");
    let krel = layer.meta.kernel_release.clone();
    let ctx = context(&prof, &role, &hostname, &krel, epoch, &site.vars, &sets)?;
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    let mut top = Tree {
        dir_links: layer.meta.dir_links.clone(),
        ..Default::default()
    };
    add_profile_files(root, &prof, &ctx, ep, &mut top, &mut inputs)?;
    add_site_and_binaries(&site, &binaries, ep, &mut top, &mut inputs);
    let appliance_toml = appliance_toml(&prof, &role, &hostname, &layer.meta)?;
    top.insert(
        files::in_image(files::APPLIANCE_TOML),
        Node::file(0o644, ep, appliance_toml.clone().into_bytes()),
        ep,
    );
    top.insert(
        files::in_image(files::KEEP_LIST),
        Node::file(0o644, ep, keep_list(&prof).into_bytes()),
        ep,
    );

    let work = tempfile::Builder::new()
        .prefix(&crate::tmp_prefix(&format!(".{}.work-", dest.name)))
        .tempdir_in(&dest.dir)
        .with_context(|| format!("output directory {} is not writable", dest.dir.display()))?;
    let _work_guard = RemoveOnDrop(work.path().to_path_buf());
    check_with_init(&bin_dir, work.path(), &appliance_toml, &site.files)?;
    let top_path = work
        .path()
        .join(format!("top.cpio.{}", base::ext_of(&prof.compression)));
    let (top_raw, top_size) = base::write_layer(&top, &prof.compression, &top_path)?;
    timer.lap("top layer");

    // ISO.
    prog.step("mastering ISO (xorriso)");
    let tools = tool_versions(iso_tools, &btar, &layer.meta, &prof.compression);
    let title = iso_title(&prof.name, &role, &hostname);
    let parts = vec![layer.cpio.clone(), top_path.clone()];
    let tmp_iso = work.path().join("out.iso");
    writer.write(
        &IsoInput {
            kernel: &layer.kernel,
            initrd_parts: &parts,
            cmdline: &prof.cmdline,
            volume_id: &volume_id(&prof.name, &role),
            epoch,
            title: &title,
        },
        &tmp_iso,
    )?;
    timer.lap("iso");

    // Manifest.
    prog.step("manifest, SHA256SUMS");
    let iso_sha = sha256_file(&tmp_iso)?;
    let iso_size = std::fs::metadata(&tmp_iso)?.len();
    let initrd_size = layer.meta.compressed_size + top_size;
    let initrd_raw = layer.meta.uncompressed_size + top_raw;
    let top_sum = FileSum {
        file: top_path.file_name().unwrap().to_string_lossy().into_owned(),
        sha256: sha256_file(&top_path)?,
        size: top_size,
    };
    let outputs = output_sums(&dest.name, &iso_sha, iso_size, &parts, &layer, top_sum)?;
    let base_desc = base_description(root, &src, &btar, &mut inputs);
    let kernel_pkg = kernel_package_version(&btar, &layer.meta, &krel);
    let ram = manifest::recommended_ram_mib(initrd_size, initrd_raw);
    let m = Manifest {
        format: manifest::FORMAT,
        profile: prof.name.clone(),
        role: role.clone(),
        hostname: hostname.clone(),
        build_clock: manifest::Clock {
            epoch,
            utc: manifest::utc(epoch),
            source: clock_source,
        },
        base: base_desc,
        inputs,
        set: sets.iter().cloned().collect(),
        secrets: prof
            .services
            .iter()
            .filter(|s| !s.secrets.is_empty())
            .map(|s| (s.name.clone(), s.secrets.clone()))
            .collect(),
        packages: if btar.packages.is_empty() {
            layer.meta.status_packages.clone()
        } else {
            btar.packages.clone()
        },
        kernel: manifest::Kernel {
            release: krel.clone(),
            package_version: kernel_pkg,
            sha256: layer.meta.kernel_sha256.clone(),
        },
        modules: manifest::Modules {
            wanted: wanted_modules.clone(),
            closure: layer.meta.modules.clone(),
            builtin: layer.meta.builtin_modules.clone(),
        },
        kernel_cmdline: format!("{} {}", prof.cmdline, crate::iso::CONSOLE_ARGS)
            .trim()
            .to_string(),
        tool_versions: tools,
        outputs,
        initrd_uncompressed_size: initrd_raw,
        recommended_min_ram_mib: ram,
    };
    let extra = crate::sbom::Extra {
        licenses: layer.meta.licenses.clone(),
    };
    let sbom = crate::sbom::generate(&serde_json::to_value(&m)?, &extra)?;
    let sbom = crate::sbom::to_bytes(&sbom)?;
    publish(&dest.iso, &tmp_iso, &iso_sha, &m.to_json()?, &sbom)?;
    timer.lap("manifest");
    prog.finish();

    Ok(BuildReport {
        iso: dest.iso,
        manifest: dest.manifest,
        sbom: dest.sbom,
        sha256: iso_sha,
        size: iso_size,
        profile: prof.name,
        role,
        hostname,
        epoch,
        clock_source,
        kernel_release: krel,
        modules: layer.meta.modules.len(),
        base_tar_cached: btar.cache_hit,
        base_layer_cached: layer.cache_hit,
        initrd_size,
        initrd_uncompressed_size: initrd_raw,
        recommended_min_ram_mib: ram,
        total_ms: timer.start.elapsed().as_millis() as u64,
        timings: timer.steps,
    })
}

/// The site file (`--site`, else the profile's), compiled for this role and host name. A
/// role-less profile cannot take a labwall site: labwall compiles a site for a role.
fn role_site(
    req: &BuildRequest,
    prof: &Profile,
    role: &str,
    hostname: &str,
    sets: &[(String, String)],
) -> Result<Site> {
    let site_path = req.site.clone().or_else(|| prof.site.clone());
    if let Some((files, input)) = crate::instance::site_files(req, prof, sets)? {
        let (vars, input) = (BTreeMap::new(), Some(input));
        let mut site = Site {
            vars,
            files,
            input,
            included: vec![],
        };
        let defines = [("ROLE".to_string(), "MASTER".to_string())];
        add_included(&req.root, site_path.as_deref(), &defines, &mut site)?;
        return Ok(site);
    }
    if role == NO_ROLE {
        if let Some(p) = site_path
            .as_deref()
            .filter(|p| p.extension() == Some("lw".as_ref()))
        {
            bail!(
                "profile '{}' has no roles, but a labwall site ({}) is compiled for a role: give a .toml site or none",
                prof.name,
                p.display()
            );
        }
    }
    let mut defines = vec![("HOSTNAME".to_string(), hostname.to_string())];
    defines.extend(sets.iter().cloned());
    let mut site = load_site(&req.root, site_path.as_deref(), role, &defines)?;
    let relay = crate::instance::relay_files(site_path.as_deref(), role, &defines)?;
    site.files.extend(relay);
    defines.push(("ROLE".into(), role.into()));
    add_included(&req.root, site_path.as_deref(), &defines, &mut site)?;
    Ok(site)
}

/// The files a labwall site INCLUDEs, with their hashes, as manifest inputs (`site/<path>`
/// like the site itself), so an edit of an included users file makes the image stale.
fn add_included(
    root: &Path,
    path: Option<&Path>,
    defines: &[(String, String)],
    site: &mut Site,
) -> Result<()> {
    let Some(path) = path.filter(|p| p.extension() == Some("lw".as_ref())) else {
        return Ok(());
    };
    for f in labwall::preprocess::included_files(path, defines) {
        site.included
            .push((rel_display(root, &f), sha256_file(&f)?));
    }
    Ok(())
}

/// The boot menu title: `ramux router BACKUP (router-backup)`, or without the role.
fn iso_title(profile: &str, role: &str, hostname: &str) -> String {
    if role == NO_ROLE {
        format!("ramux {profile} ({hostname})")
    } else {
        format!("ramux {profile} {role} ({hostname})")
    }
}

/// The Debian version of the running kernel's package, for the manifest.
fn kernel_package_version(btar: &BaseTar, meta: &base::LayerMeta, krel: &str) -> Option<String> {
    btar.packages
        .iter()
        .chain(&meta.status_packages)
        .find(|p| p.name == format!("linux-image-{krel}"))
        .map(|p| p.version.clone())
}

/// The build clock: `--epoch`, else `$SOURCE_DATE_EPOCH`, else the last commit time of the
/// profile chain and its overlays (docs/live-iso.md, The build clock).
fn build_clock(req: &BuildRequest, prof: &Profile) -> Result<(i64, ClockSource)> {
    let mut paths: Vec<String> = prof.chain.iter().map(|c| format!("profiles/{c}")).collect();
    paths.extend(prof.overlays.iter().map(|o| format!("overlays/{o}")));
    let env_sde = std::env::var("SOURCE_DATE_EPOCH").ok();
    clock::resolve(req.epoch, env_sde.as_deref(), || {
        clock::git_commit_time(&req.root, &paths)
    })
}

/// The manifest's `tool_versions`: every tool whose output is in the image.
fn tool_versions(
    iso_tools: Vec<(String, String)>,
    btar: &BaseTar,
    meta: &base::LayerMeta,
    compression: &str,
) -> BTreeMap<String, String> {
    let mut tools: BTreeMap<String, String> = iso_tools.into_iter().collect();
    if let Some(v) = &btar.mmdebstrap_version {
        tools.insert("mmdebstrap".into(), v.clone());
    }
    tools.insert("depmod".into(), meta.depmod_version.clone());
    tools.insert("vbuild".into(), env!("CARGO_PKG_VERSION").into());
    tools.insert("compression".into(), compression_label(compression));
    tools
}

/// The host name (`--set hostname=`, else [`image_name`]) and the remaining `--set` variables,
/// checked before any slow work.
fn host_and_sets(
    prof: &Profile,
    role: &str,
    sets: &[(String, String)],
) -> Result<(String, Vec<(String, String)>)> {
    let mut sets = sets.to_vec();
    for (k, _) in &sets {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!("--set {k}=...: variable names are letters, digits and _");
        }
    }
    let hostname = sets
        .iter()
        .rev()
        .find(|(k, _)| k == "hostname")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| image_name(&prof.name, role));
    if !valid_hostname(&hostname) {
        bail!("hostname '{hostname}' is not a valid host name (letters, digits, '-', at most 63)");
    }
    sets.retain(|(k, _)| k != "hostname");
    Ok((hostname, sets))
}

/// Where the ISO and its manifest go; the directory is checked writable before any slow work.
struct Destination {
    iso: PathBuf,
    dir: PathBuf,
    /// The ISO's file name.
    name: String,
    manifest: PathBuf,
    sbom: PathBuf,
}

impl Destination {
    fn prepare(req: &BuildRequest, prof: &Profile, role: &str) -> Result<Destination> {
        let iso = req.out.clone().unwrap_or_else(|| {
            req.root
                .join("images")
                .join(format!("{}.iso", image_name(&prof.name, role)))
        });
        let dest = Destination::of(&iso)?;
        std::fs::create_dir_all(&dest.dir)
            .and_then(|_| tempfile::tempfile_in(&dest.dir).map(drop))
            .with_context(|| format!("output {} is not writable", iso.display()))?;
        Ok(dest)
    }

    /// The output directory, file name and manifest of the ISO `iso`.
    fn of(iso: &Path) -> Result<Destination> {
        let dir = iso
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let name = iso
            .file_name()
            .ok_or_else(|| anyhow!("output {} has no file name", iso.display()))?
            .to_string_lossy()
            .into_owned();
        let manifest = dir.join(format!("{name}.manifest.json"));
        let sbom = dir.join(format!("{name}{}", crate::sbom::SUFFIX));
        Ok(Destination {
            iso: iso.to_path_buf(),
            dir,
            name,
            manifest,
            sbom,
        })
    }
}

/// The static ramux binaries of [`RAMUX_BINARIES`] found in `bin_dir` (ramux-init is required).
fn load_binaries(bin_dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut binaries = Vec::new();
    for b in RAMUX_BINARIES {
        let p = bin_dir.join(b);
        if p.is_file() {
            let data = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            if elf_is_dynamic(&data) == Some(true) {
                bail!(
                    "{} is dynamically linked; the image needs static ramux binaries: build them with scripts/build (RUSTFLAGS=-C target-feature=+crt-static) and pass --bin-dir target/x86_64-unknown-linux-gnu/release",
                    p.display()
                );
            }
            binaries.push((b.to_string(), data));
        } else if *b == "ramux-init" {
            bail!(
                "ramux-init not found in {} (the image's PID 1): run scripts/build and pass --bin-dir target/x86_64-unknown-linux-gnu/release or set RAMUX_BIN_DIR",
                bin_dir.display()
            );
        }
    }
    Ok(binaries)
}

fn base_source(prof: &Profile) -> BaseSource {
    match &prof.base_tarball {
        Some(t) => BaseSource::Tarball(t.clone()),
        None => BaseSource::Debian {
            suite: prof.suite.clone(),
            mirror: prof.mirror.clone(),
            sources: prof.sources.clone(),
            packages: prof.packages.clone(),
        },
    }
}

/// The profile's modules, plus `button`: a ready appliance powers off on the ACPI power button.
fn wanted_modules(prof: &Profile) -> Vec<String> {
    let mut wanted = prof.modules.clone();
    if !wanted.iter().any(|m| m == "button") {
        wanted.push("button".into());
    }
    wanted
}

/// Overlays and rendered templates into the top layer, their sources into `inputs`.
fn add_profile_files(
    root: &Path,
    prof: &Profile,
    ctx: &tera::Context,
    ep: u64,
    top: &mut Tree,
    inputs: &mut BTreeMap<String, String>,
) -> Result<()> {
    for f in &prof.input_files {
        inputs.insert(rel_display(root, f), sha256_file(f)?);
    }
    for o in &prof.overlays {
        let d = root.join("overlays").join(o);
        if !d.is_dir() {
            bail!(
                "profile '{}' names overlay '{o}', but overlays/{o}/ does not exist",
                prof.name
            );
        }
        add_overlay(top, &d, &format!("overlays/{o}"), ep, inputs)?;
    }
    for (t, text) in profile::render_all(prof, ctx)? {
        let dest =
            norm(&t.dest).ok_or_else(|| anyhow!("bad template destination {}", t.display))?;
        top.insert(&dest, Node::file(t.mode, ep, text.into_bytes()), ep);
    }
    Ok(())
}

/// The compiled site files, the ramux binaries in /usr/sbin and the /init link.
fn add_site_and_binaries(
    site: &Site,
    binaries: &[(String, Vec<u8>)],
    ep: u64,
    top: &mut Tree,
    inputs: &mut BTreeMap<String, String>,
) {
    for (dest, text) in &site.files {
        let mode = labwall::output_mode(dest);
        top.insert(dest, Node::file(mode, ep, text.clone().into_bytes()), ep);
    }
    if let Some((k, v)) = &site.input {
        inputs.insert(k.clone(), v.clone());
    }
    for (k, v) in &site.included {
        inputs.insert(k.clone(), v.clone());
    }
    for (name, data) in binaries {
        inputs.insert(format!("bin/{name}"), hex(&Sha256::digest(data)));
        top.insert(
            &format!("usr/sbin/{name}"),
            Node::file(0o755, ep, data.clone()),
            ep,
        );
    }
    top.insert("init", Node::symlink("/usr/sbin/ramux-init", ep), ep);
    // `ramux keep ...` on the appliance is ramux-init under its short name.
    top.insert("usr/sbin/ramux", Node::symlink("ramux-init", ep), ep);
}

/// [`files::KEEP_LIST`]: the profile chain's `keep` entries, one per line.
fn keep_list(prof: &Profile) -> String {
    let mut s = format!(
        "# Files `ramux keep commit` saves on the site key, from profile {} (docs/keep.md).\n",
        prof.name
    );
    for k in &prof.keep {
        s.push_str(k);
        s.push('\n');
    }
    s
}

/// The [`ramux_contract::appliance`] file ramux-init reads at boot.
fn appliance_toml(
    prof: &Profile,
    role: &str,
    hostname: &str,
    meta: &base::LayerMeta,
) -> Result<String> {
    let appliance = Appliance {
        profile: prof.name.clone(),
        role: role.to_string(),
        hostname: hostname.to_string(),
        kernel_release: meta.kernel_release.clone(),
        modules: meta.modules.clone(),
        services: prof
            .services
            .iter()
            .map(profile::Service::to_contract)
            .collect(),
    };
    Ok(format!(
        "{}{}",
        ramux_contract::appliance::HEADER,
        toml::to_string(&appliance)?
    ))
}

/// `RAMUX_<PROFILE>_<ROLE>` (`RAMUX_<PROFILE>` when role-less), upper-case, at most 32
/// characters of [A-Z0-9_] (ISO 9660 rules).
fn volume_id(profile: &str, role: &str) -> String {
    let name = if role == NO_ROLE {
        format!("RAMUX_{profile}")
    } else {
        format!("RAMUX_{profile}_{role}")
    };
    name.to_ascii_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect()
}

/// The manifest's `outputs`: the ISO, the whole initrd, its two layers and the kernel.
fn output_sums(
    iso_name: &str,
    iso_sha: &str,
    iso_size: u64,
    parts: &[PathBuf],
    layer: &Layer,
    top: FileSum,
) -> Result<BTreeMap<String, FileSum>> {
    let mut initrd_hash = Sha256::new();
    for p in parts {
        initrd_hash.update(std::fs::read(p)?);
    }
    let sum = |file: &str, sha256: &str, size: u64| FileSum {
        file: file.to_string(),
        sha256: sha256.to_string(),
        size,
    };
    let base_name = layer.cpio.file_name().unwrap().to_string_lossy();
    let mut outputs = BTreeMap::new();
    outputs.insert("iso".into(), sum(iso_name, iso_sha, iso_size));
    outputs.insert(
        "initrd".into(),
        sum(
            "images/pxeboot/initrd.img",
            &hex(&initrd_hash.finalize()),
            layer.meta.compressed_size + top.size,
        ),
    );
    outputs.insert(
        "initrd-base".into(),
        sum(&base_name, &layer.meta.sha256, layer.meta.compressed_size),
    );
    outputs.insert("initrd-top".into(), top);
    outputs.insert(
        "kernel".into(),
        sum(
            "images/pxeboot/vmlinuz",
            &layer.meta.kernel_sha256,
            std::fs::metadata(&layer.kernel)?.len(),
        ),
    );
    Ok(outputs)
}

/// The manifest's `base`: where the Debian system came from (a tarball is also an input).
fn base_description(
    root: &Path,
    src: &BaseSource,
    btar: &BaseTar,
    inputs: &mut BTreeMap<String, String>,
) -> BTreeMap<String, serde_json::Value> {
    let mut base_desc: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    match src {
        BaseSource::Debian {
            suite,
            mirror,
            sources,
            packages,
        } => {
            base_desc.insert("kind".into(), "debian".into());
            base_desc.insert("sources".into(), sources.clone().into());
            base_desc.insert("suite".into(), suite.clone().into());
            base_desc.insert("mirror".into(), mirror.clone().into());
            base_desc.insert("requested_packages".into(), packages.clone().into());
        }
        BaseSource::Tarball(p) => {
            base_desc.insert("kind".into(), "tarball".into());
            base_desc.insert("file".into(), rel_display(root, p).into());
            inputs.insert(
                format!("base/{}", rel_display(root, p)),
                btar.sha256.clone(),
            );
        }
    }
    base_desc.insert("tarball_sha256".into(), btar.sha256.clone().into());
    base_desc
}

/// Publishes `tmp_iso` as `iso` first, then its manifest `mjson` and SBOM `sbom`
/// (`<iso>.spdx.json`), then the sums listing all three (each rename is atomic), so a killed
/// build never leaves a manifest for an ISO that is not there. Public for tests (a fake ISO is
/// enough); [`build_iso`] calls it last.
pub fn publish(iso: &Path, tmp_iso: &Path, iso_sha: &str, mjson: &[u8], sbom: &[u8]) -> Result<()> {
    let dest = Destination::of(iso)?;
    // One build at a time publishes into this directory: otherwise two builds into one
    // images/ could leave one's ISO beside the other's manifest. The lock is on the directory
    // itself, so nothing but the published files is left in it.
    let _lock = crate::lock_dir(&dest.dir)?;
    remove_legacy_locks(&dest);
    crate::set_mode(tmp_iso, 0o644)?;
    std::fs::File::open(tmp_iso)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", tmp_iso.display()))?;
    std::fs::rename(tmp_iso, &dest.iso)
        .with_context(|| format!("cannot write {}", dest.iso.display()))?;
    crate::sync_dir(&dest.dir)?;
    write_atomic(&dest.manifest, mjson)?;
    write_atomic(&dest.sbom, sbom)?;
    let mname = format!("{}.manifest.json", dest.name);
    let sname = format!("{}{}", dest.name, crate::sbom::SUFFIX);
    manifest::update_sums_locked(
        &dest.dir,
        &[
            (dest.name.clone(), iso_sha.to_string()),
            (mname, hex(&Sha256::digest(mjson))),
            (sname, hex(&Sha256::digest(sbom))),
        ],
    )
}

/// Removes the lock files older vbuilds left beside the ISOs (`.SHA256SUMS.lock`,
/// `.<iso>.lock`): the directory holds only what is published (best effort).
fn remove_legacy_locks(dest: &Destination) {
    for n in [
        ".SHA256SUMS.lock".to_string(),
        format!(".{}.lock", dest.name),
    ] {
        let _ = std::fs::remove_file(dest.dir.join(n));
    }
}

/// Builds every profile for every role it allows (a role-less profile once) into `out_dir`
/// (default `<root>/images`), e.g. for a release; each build updates `out_dir/SHA256SUMS`.
/// Up to `jobs` builds run at once (they share the base-layer cache); the output is the same
/// bytes whatever `jobs` is. No new build starts after a failure, and the first failing build
/// in plan order is the error.
pub fn build_release(
    template: &BuildRequest,
    out_dir: Option<&Path>,
    jobs: usize,
) -> Result<Vec<BuildReport>> {
    let dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| template.root.join("images"));
    let plan = release_requests(template, &dir)?;
    run_builds(&plan, jobs.max(1), template.quiet)
}

/// Every build `vbuild release` makes, in a fixed order: (what it is, its request).
pub fn release_requests(
    template: &BuildRequest,
    dir: &Path,
) -> Result<Vec<(String, BuildRequest)>> {
    let mut plan = Vec::new();
    for (name, _) in profile::list(&template.root)? {
        let prof = profile::load(&template.root, &name)?;
        if let Some(r) = crate::instance::release_requests(template, &prof, dir)? {
            plan.extend(r);
            continue;
        }
        for (role, stem) in release_plan(&prof) {
            let mut req = template.clone();
            req.profile = name.clone();
            req.role = role.clone();
            req.out = Some(dir.join(format!("{stem}.iso")));
            plan.push((format!("{name} {role}").trim_end().to_string(), req));
        }
    }
    Ok(plan)
}

/// Runs `plan` on `jobs` threads. With more than one, each build is quiet (their step lines
/// would interleave) and one line per finished image is printed instead.
fn run_builds(
    plan: &[(String, BuildRequest)],
    jobs: usize,
    quiet: bool,
) -> Result<Vec<BuildReport>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<BuildReport>>>> =
        plan.iter().map(|_| Mutex::new(None)).collect();
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= plan.len() || failed.load(Ordering::SeqCst) {
            break;
        }
        let (what, req) = &plan[i];
        let mut req = req.clone();
        req.quiet |= jobs > 1;
        let r = build_iso(&req).with_context(|| format!("release: {what}"));
        if r.is_err() {
            failed.store(true, Ordering::SeqCst);
        } else if jobs > 1 && !quiet {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!("vbuild: [{n}/{}] {what} built", plan.len());
        }
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.min(plan.len()).max(1) {
            s.spawn(worker);
        }
    });
    let mut reports = Vec::new();
    for r in results {
        match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(rep)) => reports.push(rep),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(reports)
}

/// What a release builds of `prof`: (the request's role, the ISO name without `.iso`), one per
/// role, or one with no role for a role-less profile.
fn release_plan(prof: &Profile) -> Vec<(String, String)> {
    if prof.is_roleless() {
        return vec![(String::new(), image_name(&prof.name, NO_ROLE))];
    }
    prof.roles
        .iter()
        .map(|r| (r.clone(), image_name(&prof.name, r)))
        .collect()
}

fn compression_label(c: &str) -> String {
    if c == "gzip" {
        format!("gzip level {} (flate2 rust backend)", base::GZIP_LEVEL)
    } else {
        format!(
            "zstd level {} (zstd-sys {})",
            base::ZSTD_LEVEL,
            zstd::zstd_safe::version_string()
        )
    }
}

#[cfg(test)]
mod mode_tests {
    #[test]
    fn overlay_modes_never_open_up() {
        use super::overlay_mode;
        assert_eq!(overlay_mode(0o100644), 0o644);
        assert_eq!(overlay_mode(0o100664), 0o644);
        assert_eq!(overlay_mode(0o100755), 0o755);
        assert_eq!(overlay_mode(0o100600), 0o600);
        assert_eq!(overlay_mode(0o100700), 0o700);
        assert_eq!(overlay_mode(0o100640), 0o640);
        assert_eq!(overlay_mode(0o100400), 0o600);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("profiles/common")).unwrap();
        std::fs::create_dir_all(r.join("profiles/p")).unwrap();
        std::fs::write(
            r.join("profiles/common/profile.toml"),
            "[vars]\na = \"common\"\nb = \"common\"\nc = \"common\"\n",
        )
        .unwrap();
        std::fs::write(
            r.join("profiles/p/profile.toml"),
            "[vars]\nb = \"profile\"\n",
        )
        .unwrap();
        let p = profile::load(r, "p").unwrap();
        let mut site = BTreeMap::new();
        site.insert("c".to_string(), toml::Value::String("site".into()));
        let sets = vec![
            ("d".to_string(), "set".to_string()),
            ("c".to_string(), "set".to_string()),
        ];
        let ctx = context(&p, "MASTER", "h1", "6.1.0-x", 7, &site, &sets).unwrap();
        let out = profile::render_one(
            "t",
            "{{a}} {{b}} {{c}} {{d}} {{site.c}} {{hostname}} {{role_lower}} {{is_master}}",
            &ctx,
        )
        .unwrap();
        assert_eq!(out, "common profile set set site h1 master true");
    }

    #[test]
    fn roleless_names_and_context() {
        assert_eq!(image_name("router", "BACKUP"), "router-backup");
        assert_eq!(image_name("client", NO_ROLE), "client");
        assert_eq!(volume_id("router", "BACKUP"), "RAMUX_ROUTER_BACKUP");
        assert_eq!(volume_id("client", NO_ROLE), "RAMUX_CLIENT");
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("profiles/common")).unwrap();
        std::fs::create_dir_all(r.join("profiles/client")).unwrap();
        std::fs::write(r.join("profiles/common/profile.toml"), "").unwrap();
        std::fs::write(r.join("profiles/client/profile.toml"), "roles = []\n").unwrap();
        let p = profile::load(r, "client").unwrap();
        let role = profile::check_role(&p, "").unwrap();
        let (host, _) = host_and_sets(&p, &role, &[]).unwrap();
        assert_eq!(host, "client");
        let sets = [("hostname".to_string(), "mv2".to_string())];
        assert_eq!(host_and_sets(&p, &role, &sets).unwrap().0, "mv2");
        let ctx = context(&p, &role, &host, "6.1.0-x", 7, &BTreeMap::new(), &[]).unwrap();
        let out = profile::render_one(
            "t",
            "{{role}} {{role_lower}} {{is_master}} {{hostname}}",
            &ctx,
        )
        .unwrap();
        assert_eq!(out, "- - false client");
        let req = BuildRequest {
            root: r.to_path_buf(),
            ..Default::default()
        };
        let dest = Destination::prepare(&req, &p, &role).unwrap();
        assert_eq!(dest.iso, r.join("images/client.iso"));
        let meta = base::LayerMeta {
            kernel_release: "6.1.0-x".into(),
            kernel_sha256: String::new(),
            modules: vec![],
            builtin_modules: vec![],
            dir_links: BTreeMap::new(),
            uncompressed_size: 0,
            compressed_size: 0,
            sha256: String::new(),
            depmod_version: String::new(),
            status_packages: vec![],
            licenses: BTreeMap::new(),
        };
        let app = appliance_toml(&p, &role, &host, &meta).unwrap();
        assert!(
            app.contains("role = \"-\"") && app.contains("hostname = \"client\""),
            "{app}"
        );
        // A release builds it once, with no role; a profile with roles once per role.
        assert_eq!(release_plan(&p), vec![(String::new(), "client".into())]);
        std::fs::create_dir_all(r.join("profiles/router")).unwrap();
        std::fs::write(r.join("profiles/router/profile.toml"), "").unwrap();
        let router = profile::load(r, "router").unwrap();
        assert_eq!(
            release_plan(&router),
            vec![
                ("MASTER".to_string(), "router-master".to_string()),
                ("BACKUP".into(), "router-backup".into())
            ]
        );
    }

    /// The shipped role-less profile: its templates render for DHCP (the default) and for a
    /// static address, and its resolv.conf replaces the base's.
    #[test]
    fn client_profile_renders() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let p = profile::load(root, "client").unwrap();
        let role = profile::check_role(&p, "").unwrap();
        let render = |sets: &[(String, String)]| {
            let (host, sets) = host_and_sets(&p, &role, sets).unwrap();
            let ctx = context(&p, &role, &host, "6.1.0-x", 7, &BTreeMap::new(), &sets).unwrap();
            let out: BTreeMap<String, String> = profile::render_all(&p, &ctx)
                .unwrap()
                .into_iter()
                .map(|(t, text)| (t.dest, text))
                .collect();
            (host, out)
        };
        let (host, out) = render(&[]);
        assert_eq!(host, "client");
        let conf = &out["/etc/ramux/client.conf"];
        assert!(
            conf.contains("\naddress=dhcp\ngateway=\ndns=\niface=eth0\n"),
            "{conf}"
        );
        assert!(!out["/etc/resolv.conf"].contains("nameserver"));
        let set = |k: &str, v: &str| (k.to_string(), v.to_string());
        let (host, out) = render(&[
            set("hostname", "mv2"),
            set("address", "172.16.20.50/24"),
            set("gateway", "172.16.20.1"),
            set("dns", "172.16.20.1"),
        ]);
        assert_eq!(host, "mv2");
        let conf = &out["/etc/ramux/client.conf"];
        assert!(
            conf.contains("\naddress=172.16.20.50/24\ngateway=172.16.20.1\ndns=172.16.20.1\n"),
            "{conf}"
        );
        assert!(out["/etc/resolv.conf"].ends_with("\nnameserver 172.16.20.1\n"));
    }

    #[test]
    fn hostnames() {
        assert!(valid_hostname("router-backup"));
        assert!(!valid_hostname("-x"));
        assert!(!valid_hostname("a_b"));
        assert!(!valid_hostname(&"a".repeat(64)));
    }

    #[test]
    fn elf_static_check() {
        // A minimal ELF64 header with two program headers at offset 64: PT_LOAD (1) and, when
        // asked, PT_INTERP (3), the segment only dynamically linked executables have.
        let elf = |interp: bool| {
            let mut d = vec![0u8; 64 + 2 * 56];
            d[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
            d[32..40].copy_from_slice(&64u64.to_le_bytes());
            d[54..56].copy_from_slice(&56u16.to_le_bytes());
            d[56..58].copy_from_slice(&2u16.to_le_bytes());
            d[64..68].copy_from_slice(&1u32.to_le_bytes());
            d[120..124].copy_from_slice(&(if interp { 3u32 } else { 1 }).to_le_bytes());
            d
        };
        assert_eq!(elf_is_dynamic(&elf(true)), Some(true));
        assert_eq!(elf_is_dynamic(&elf(false)), Some(false));
        assert_eq!(elf_is_dynamic(b"#!/bin/sh\n"), None);
        assert_eq!(elf_is_dynamic(&[0x7f, b'E', b'L', b'F', 2, 1]), None);
        // Real binaries: Debian's /bin/ls is dynamic; busybox-static's /bin/busybox is not.
        let ls = std::fs::read("/bin/ls").expect("/bin/ls");
        assert_eq!(
            elf_is_dynamic(&ls),
            Some(true),
            "/bin/ls is dynamically linked"
        );
        if let Ok(bb) = std::fs::read("/bin/busybox") {
            assert_eq!(elf_is_dynamic(&bb), Some(false), "/bin/busybox is static");
        }
    }
}
