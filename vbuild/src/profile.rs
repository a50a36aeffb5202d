//! Profiles: `profiles/<name>/profile.toml` + `templates/`, merged over `profiles/common`.
//!
//! Merge rules (child over parent): scalars replace, lists append without duplicates, services
//! replace by name, `[vars]` merge key by key, templates replace by destination path.

use anyhow::{anyhow, bail, Context, Result};
use ramux_contract::role::NO_ROLE;
use ramux_contract::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Roles every profile accepts unless it narrows them (`roles = [...]`) or has none
/// (`roles = []`: a role-less profile, see [`check_role`]).
pub const ROLES: [&str; 2] = [Role::Master.as_str(), Role::Backup.as_str()];

/// Where the base system comes from.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    /// A rootfs tarball (relative to the profile directory) used instead of mmdebstrap.
    pub tarball: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_delay_ms: Option<u64>,
    /// Files of the site secrets overlay the service needs (`pki/radius.key`): recorded in
    /// appliance.toml as names only; the overlay itself never enters the image (docs/secrets.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// An image file (`/etc/ramux/dhcp-relay.conf`) without which the service is left out of
    /// appliance.toml: the site decides, at build time ([`crate::instance::site_services`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<String>,
}

impl Service {
    /// The entry vbuild writes into `appliance.toml` (the default delay is left out there).
    pub fn to_contract(&self) -> ramux_contract::Service {
        ramux_contract::Service {
            name: self.name.clone(),
            argv: self.argv.clone(),
            env: self.env.clone(),
            restart_delay_ms: self
                .restart_delay_ms
                .unwrap_or(ramux_contract::appliance::DEFAULT_RESTART_DELAY_MS),
            secrets: self.secrets.clone(),
        }
    }
}

/// One `profile.toml` as written (every field optional so children can leave things out).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub description: Option<String>,
    /// Parent profile; default "common" (none for common itself).
    pub inherit: Option<String>,
    pub roles: Option<Vec<String>>,
    pub suite: Option<String>,
    pub mirror: Option<String>,
    /// Extra apt sources as full one-line entries (`deb URL SUITE COMPONENTS`), e.g. security.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub modules: Vec<String>,
    /// Files `ramux keep commit` may save on the site key ([`ramux_contract::files::KEEP_LIST`]).
    #[serde(default)]
    pub keep: Vec<String>,
    #[serde(default)]
    pub overlays: Vec<String>,
    pub cmdline: Option<String>,
    /// "zstd" or "gzip"
    pub compression: Option<String>,
    pub base: Option<BaseSpec>,
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub service: Vec<Service>,
    /// Files removed from the base after extraction (glob-free paths or `dir/*` prefixes).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Default site file (relative to the profile directory), used when --site is not given.
    pub site: Option<String>,
    /// `"site"`: one image per instance of the site's SERVERS line (docs/builder.md, Instances).
    pub instances: Option<String>,
}

/// A template source file and where it lands in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Path inside the image, absolute (`/etc/ramux/role`).
    pub dest: String,
    /// Source file on disk.
    pub src: PathBuf,
    /// Display name for errors, relative to the repo root (`profiles/router/templates/etc/x`).
    pub display: String,
    pub mode: u32,
}

/// A fully merged profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Chain from common to this profile (names).
    pub chain: Vec<String>,
    pub roles: Vec<String>,
    pub suite: String,
    pub mirror: String,
    pub sources: Vec<String>,
    pub packages: Vec<String>,
    pub modules: Vec<String>,
    /// The keep list, checked by [`ramux_keep::allow::KeepList::parse`] when loaded.
    pub keep: Vec<String>,
    pub overlays: Vec<String>,
    pub cmdline: String,
    pub compression: String,
    pub base_tarball: Option<PathBuf>,
    pub vars: BTreeMap<String, toml::Value>,
    pub services: Vec<Service>,
    pub remove: Vec<String>,
    pub site: Option<PathBuf>,
    /// See [`RawProfile::instances`].
    pub instances: Option<String>,
    pub templates: Vec<Template>,
    /// Every file that defines the profile (profile.toml files and templates), for hashing.
    pub input_files: Vec<PathBuf>,
}

fn push_unique(v: &mut Vec<String>, items: &[String]) {
    for i in items {
        if !v.contains(i) {
            v.push(i.clone());
        }
    }
}

/// Lists profile names (directories with a profile.toml, except `common`), sorted.
pub fn list(root: &Path) -> Result<Vec<(String, String)>> {
    let dir = root.join("profiles");
    let mut out = Vec::new();
    let rd = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot read {} (run from a ramux checkout or pass --root)",
            dir.display()
        )
    })?;
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path().join("profile.toml");
        if name == "common" || !p.is_file() {
            continue;
        }
        let raw = read_raw(&p, &format!("profiles/{name}/profile.toml"))?;
        out.push((name, raw.description.unwrap_or_default()));
    }
    out.sort();
    Ok(out)
}

fn read_raw(path: &Path, display: &str) -> Result<RawProfile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {display}"))?;
    toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        anyhow!("{display}:{line}:{col}: error: {}", e.message())
    })
}

/// Fuzz body for `fuzz/fuzz_targets/profile.rs` (also run by `tests/profile_robust.rs`): `data`
/// as `profiles/f/profile.toml` over an empty `common`, through [`load`] (parse, inheritance,
/// merge, every check) and [`check_role`]; any error is fine, a panic is not. The profile
/// tree lives in one private directory per process (a fresh `mkdtemp`, never a planted one).
#[doc(hidden)]
pub fn fuzz_profile(data: &[u8]) {
    use std::sync::OnceLock;
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("vbuild-fuzz-profile-")
            .tempdir()
            .expect("create the fuzz profile root")
            .keep();
        std::fs::create_dir_all(root.join("profiles/common")).unwrap();
        std::fs::create_dir_all(root.join("profiles/f")).unwrap();
        std::fs::write(root.join("profiles/common/profile.toml"), b"").unwrap();
        root
    });
    std::fs::write(root.join("profiles/f/profile.toml"), data).unwrap();
    if let Ok(p) = load(root, "f") {
        for role in ROLES.iter().chain(&[NO_ROLE, "", "other"]) {
            let _ = check_role(&p, role);
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Loads and merges a profile with its parents.
pub fn load(root: &Path, name: &str) -> Result<Profile> {
    let known = list(root)?;
    if !known.iter().any(|(n, _)| n == name) {
        let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "unknown profile '{name}'; known profiles: {} (see `vbuild profiles`)",
            names.join(", ")
        );
    }
    // Resolve the inheritance chain, child first.
    let mut chain: Vec<(String, RawProfile)> = Vec::new();
    let mut cur = Some(name.to_string());
    while let Some(n) = cur {
        if chain.iter().any(|(c, _)| *c == n) {
            bail!("profile inheritance cycle through '{n}'");
        }
        let p = root.join("profiles").join(&n).join("profile.toml");
        let display = format!("profiles/{n}/profile.toml");
        if !p.is_file() {
            bail!(
                "profile '{}' inherits '{n}', but {display} does not exist",
                chain.last().map(|c| c.0.as_str()).unwrap_or(name)
            );
        }
        let raw = read_raw(&p, &display)?;
        cur = match &raw.inherit {
            Some(i) => Some(i.clone()),
            None if n != "common" => Some("common".to_string()),
            None => None,
        };
        chain.push((n, raw));
    }
    chain.reverse();

    let mut prof = Profile {
        name: name.to_string(),
        description: String::new(),
        chain: chain.iter().map(|c| c.0.clone()).collect(),
        roles: ROLES.iter().map(|s| s.to_string()).collect(),
        suite: "bookworm".into(),
        mirror: "http://deb.debian.org/debian".into(),
        sources: vec![],
        packages: vec![],
        modules: vec![],
        keep: vec![],
        overlays: vec![],
        cmdline: String::new(),
        compression: "zstd".into(),
        base_tarball: None,
        vars: BTreeMap::new(),
        services: vec![],
        remove: vec![],
        site: None,
        instances: None,
        templates: vec![],
        input_files: vec![],
    };
    let mut templates: BTreeMap<String, Template> = BTreeMap::new();
    for (n, raw) in chain {
        let dir = root.join("profiles").join(&n);
        prof.input_files.push(dir.join("profile.toml"));
        if let Some(d) = raw.description {
            prof.description = d;
        }
        if let Some(r) = raw.roles {
            for role in &r {
                if !ROLES.contains(&role.as_str()) {
                    bail!("profiles/{n}/profile.toml: role '{role}' is not one of MASTER, BACKUP");
                }
            }
            prof.roles = r;
        }
        if let Some(s) = raw.suite {
            prof.suite = s;
        }
        if let Some(m) = raw.mirror {
            prof.mirror = m;
        }
        push_unique(&mut prof.sources, &raw.sources);
        push_unique(&mut prof.sources, &raw.sources);
        push_unique(&mut prof.packages, &raw.packages);
        push_unique(&mut prof.modules, &raw.modules);
        push_unique(&mut prof.keep, &raw.keep);
        if let Err(e) = ramux_keep::allow::KeepList::parse(&raw.keep.join("\n")) {
            bail!(
                "profiles/{n}/profile.toml: keep entry {:?}: {}; write an absolute path like \
                 /etc/ramux/local/ (a trailing / keeps a directory's files)",
                e.text,
                e.why
            );
        }
        push_unique(&mut prof.overlays, &raw.overlays);
        if let Some(c) = raw.cmdline {
            if !c.is_empty() {
                prof.cmdline = if prof.cmdline.is_empty() {
                    c
                } else {
                    format!("{} {c}", prof.cmdline)
                };
            }
        }
        if let Some(c) = raw.compression {
            if c != "zstd" && c != "gzip" {
                bail!("profiles/{n}/profile.toml: compression '{c}' must be \"zstd\" or \"gzip\"");
            }
            prof.compression = c;
        }
        if let Some(site) = raw.site {
            let p = dir.join(&site);
            if !p.is_file() {
                bail!(
                    "profiles/{n}/profile.toml: site file '{site}' does not exist in profiles/{n}/"
                );
            }
            prof.input_files.push(p.clone());
            prof.site = Some(p);
        }
        if let Some(i) = raw.instances {
            prof.instances = Some(crate::instance::check_kind(&n, &i)?);
        }
        if let Some(b) = raw.base {
            prof.base_tarball = b.tarball.map(|t| dir.join(t));
        }
        prof.vars.extend(raw.vars);
        for s in raw.service {
            validate_service(&s, &n)?;
            if let Some(old) = prof.services.iter_mut().find(|o| o.name == s.name) {
                *old = s;
            } else {
                prof.services.push(s);
            }
        }
        push_unique(&mut prof.remove, &raw.remove);
        let tdir = dir.join("templates");
        if tdir.is_dir() {
            for e in walkdir::WalkDir::new(&tdir).sort_by_file_name() {
                let e = e?;
                if !e.file_type().is_file() {
                    continue;
                }
                let rel = e.path().strip_prefix(&tdir)?.to_string_lossy().into_owned();
                let dest_rel = rel.strip_suffix(".tera").unwrap_or(&rel);
                let dest = format!("/{dest_rel}");
                let mode = if is_exec(e.path())? { 0o755 } else { 0o644 };
                prof.input_files.push(e.path().to_path_buf());
                templates.insert(
                    dest.clone(),
                    Template {
                        dest,
                        src: e.path().to_path_buf(),
                        display: format!("profiles/{n}/templates/{rel}"),
                        mode,
                    },
                );
            }
        }
    }
    prof.templates = templates.into_values().collect();
    Ok(prof)
}

fn is_exec(p: &Path) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(p)?.permissions().mode() & 0o111 != 0)
}

fn validate_service(s: &Service, profile: &str) -> Result<()> {
    let ok_name = !s.name.is_empty()
        && s.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok_name {
        bail!(
            "profiles/{profile}/profile.toml: service name '{}' must match [a-z0-9-]+",
            s.name
        );
    }
    for name in &s.secrets {
        ramux_contract::secrets::check_path(name).map_err(|e| {
            anyhow!(
                "profiles/{profile}/profile.toml: service '{}': secrets: {e}",
                s.name
            )
        })?;
    }
    match s.argv.first() {
        Some(a) if a.starts_with('/') => Ok(()),
        _ => bail!(
            "profiles/{profile}/profile.toml: service '{}': argv[0] must be an absolute path",
            s.name
        ),
    }
}

impl Profile {
    /// `roles = []`: built once, without `--role`; its images have role
    /// [`ramux_contract::role::NO_ROLE`].
    pub fn is_roleless(&self) -> bool {
        self.roles.is_empty()
    }
}

/// Checks a role name (MASTER or BACKUP, case-insensitive) against the profile and returns the
/// role the image gets. A role-less profile (`roles = []`) takes no role (`role` empty) and gets
/// [`NO_ROLE`]; a profile with roles needs one of them.
pub fn check_role(p: &Profile, role: &str) -> Result<String> {
    if p.is_roleless() {
        if !role.is_empty() {
            bail!(
                "profile '{}' has no roles (roles = []): build it without --role (got --role {role})",
                p.name
            );
        }
        return Ok(NO_ROLE.to_string());
    }
    if role.is_empty() {
        bail!(
            "profile '{}' needs --role: one of {}",
            p.name,
            p.roles.join(", ")
        );
    }
    let r = role.to_ascii_uppercase();
    if !p.roles.contains(&r) {
        bail!(
            "bad role '{role}' for profile '{}'; allowed roles: {}",
            p.name,
            p.roles.join(", ")
        );
    }
    Ok(r)
}

/// Renders every template with `ctx`. Errors name the template file and, where tera knows it,
/// the line and column.
pub fn render_all(p: &Profile, ctx: &tera::Context) -> Result<Vec<(Template, String)>> {
    let mut out = Vec::new();
    for t in &p.templates {
        let src = std::fs::read_to_string(&t.src)
            .with_context(|| format!("cannot read template {}", t.display))?;
        out.push((t.clone(), render_one(&t.display, &src, ctx)?));
    }
    Ok(out)
}

/// Renders one template from its text (pure).
pub fn render_one(display: &str, src: &str, ctx: &tera::Context) -> Result<String> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    if let Err(e) = tera.add_raw_template(display, src) {
        bail!("{}", tera_error(display, src, &e));
    }
    tera.render(display, ctx)
        .map_err(|e| anyhow!("{}", tera_error(display, src, &e)))
}

/// Flattens a tera error chain into `file:line:col: error: ...`. Parse errors carry a
/// `--> line:col` marker; render errors (unknown variable, filter failure) do not, so the line
/// is found by searching the template for the variable tera names.
fn tera_error(display: &str, src: &str, e: &tera::Error) -> String {
    use std::error::Error;
    let mut msgs = vec![e.to_string()];
    let mut cur: Option<&dyn Error> = e.source();
    while let Some(c) = cur {
        msgs.push(c.to_string());
        cur = c.source();
    }
    let all = msgs.join("\n");
    // Parse errors: "--> 3:5"
    let mut pos = None;
    if let Some(i) = all.find("--> ") {
        let rest = &all[i + 4..];
        let mut it = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        if let (Some(l), Some(c)) = (it.next(), it.next()) {
            pos = Some((l.parse().unwrap_or(1), c.parse().unwrap_or(1)));
        }
    }
    // Render errors: "Variable `foo` not found in context while rendering 'x'"
    if pos.is_none() {
        if let Some(i) = all.find("Variable `") {
            let var = all[i + 10..].split('`').next().unwrap_or("");
            if !var.is_empty() {
                if let Some(off) = src.find(var) {
                    pos = Some(line_col(src, off));
                }
            }
        }
    }
    if pos.is_none() {
        if let Some(i) = all.find("Filter `").or_else(|| all.find("Filter '")) {
            let f = all[i + 8..].split(['`', '\'']).next().unwrap_or("");
            if let Some(off) = src
                .find(&format!("| {f}"))
                .or_else(|| src.find(&format!("|{f}")))
            {
                pos = Some(line_col(src, off));
            }
        }
    }
    let (l, c) = pos.unwrap_or((1, 1));
    let detail: Vec<String> = msgs
        .iter()
        .skip(1)
        .flat_map(|m| {
            m.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let detail = if detail.is_empty() {
        msgs[0].clone()
    } else {
        detail.join(" ")
    };
    format!("{display}:{l}:{c}: error: template: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "profiles/common/profile.toml", "description = \"base\"\npackages = [\"busybox\", \"kmod\"]\nmodules = [\"button\"]\ncmdline = \"panic=-1\"\n[vars]\ngreeting = \"hi\"\n[[service]]\nname = \"console\"\nargv = [\"/bin/sh\"]\n");
        write(
            r,
            "profiles/common/templates/etc/hostname.tera",
            "{{ hostname }}\n",
        );
        write(r, "profiles/common/templates/etc/motd", "common motd\n");
        write(r, "profiles/router/profile.toml", "description = \"A router\"\npackages = [\"nftables\", \"kmod\"]\nmodules = [\"8021q\"]\ncmdline = \"quiet\"\n[vars]\nextra = 1\n[[service]]\nname = \"console\"\nargv = [\"/bin/ash\"]\n");
        write(r, "profiles/router/templates/etc/motd", "router motd\n");
        write(
            r,
            "profiles/router/templates/etc/ramux/role.tera",
            "{{ role }}\n",
        );
        d
    }

    #[test]
    fn merge_over_common() {
        let d = repo();
        let p = load(d.path(), "router").unwrap();
        assert_eq!(p.chain, vec!["common", "router"]);
        assert_eq!(p.description, "A router");
        assert_eq!(p.packages, vec!["busybox", "kmod", "nftables"]);
        assert_eq!(p.modules, vec!["button", "8021q"]);
        assert_eq!(p.cmdline, "panic=-1 quiet");
        assert_eq!(p.services.len(), 1);
        assert_eq!(p.services[0].argv, vec!["/bin/ash"]);
        assert_eq!(p.vars.len(), 2);
        let dests: Vec<&str> = p.templates.iter().map(|t| t.dest.as_str()).collect();
        assert_eq!(dests, vec!["/etc/hostname", "/etc/motd", "/etc/ramux/role"]);
        let motd = p.templates.iter().find(|t| t.dest == "/etc/motd").unwrap();
        assert_eq!(motd.display, "profiles/router/templates/etc/motd");
        assert_eq!(
            list(d.path()).unwrap(),
            vec![("router".into(), "A router".into())]
        );
    }

    #[test]
    fn unknown_profile_lists_known() {
        let d = repo();
        let e = load(d.path(), "nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown profile 'nope'") && e.contains("router"),
            "{e}"
        );
    }

    #[test]
    fn bad_role() {
        let d = repo();
        let p = load(d.path(), "router").unwrap();
        assert_eq!(check_role(&p, "backup").unwrap(), "BACKUP");
        let e = check_role(&p, "SLAVE").unwrap_err().to_string();
        assert!(e.contains("SLAVE") && e.contains("MASTER, BACKUP"), "{e}");
    }

    #[test]
    fn roleless_profile_takes_no_role() {
        let d = repo();
        write(
            d.path(),
            "profiles/client/profile.toml",
            "description = \"A client\"\nroles = []\n",
        );
        let p = load(d.path(), "client").unwrap();
        assert!(p.is_roleless() && p.roles.is_empty());
        assert_eq!(check_role(&p, "").unwrap(), NO_ROLE);
        for r in ["MASTER", "backup", "-"] {
            let e = check_role(&p, r).unwrap_err().to_string();
            assert!(
                e.contains("profile 'client' has no roles") && e.contains("without --role"),
                "{e}"
            );
        }
        // A profile with roles still needs one, and "-" is not one of them.
        let router = load(d.path(), "router").unwrap();
        assert!(!router.is_roleless());
        let e = check_role(&router, "").unwrap_err().to_string();
        assert!(
            e.contains("profile 'router' needs --role") && e.contains("MASTER, BACKUP"),
            "{e}"
        );
        let e = check_role(&router, NO_ROLE).unwrap_err().to_string();
        assert!(e.contains("bad role '-'"), "{e}");
    }

    #[test]
    fn roles_can_be_narrowed_and_inherited() {
        let d = repo();
        write(
            d.path(),
            "profiles/m/profile.toml",
            "roles = [\"MASTER\"]\n",
        );
        write(d.path(), "profiles/c/profile.toml", "roles = []\n");
        write(d.path(), "profiles/c2/profile.toml", "inherit = \"c\"\n");
        write(
            d.path(),
            "profiles/bad/profile.toml",
            "roles = [\"SLAVE\"]\n",
        );
        let m = load(d.path(), "m").unwrap();
        assert_eq!(check_role(&m, "master").unwrap(), "MASTER");
        assert!(check_role(&m, "BACKUP").is_err());
        // Role-lessness is inherited like any scalar.
        let c2 = load(d.path(), "c2").unwrap();
        assert!(c2.is_roleless());
        assert_eq!(check_role(&c2, "").unwrap(), NO_ROLE);
        let e = load(d.path(), "bad").unwrap_err().to_string();
        assert!(
            e.contains("role 'SLAVE' is not one of MASTER, BACKUP"),
            "{e}"
        );
    }

    #[test]
    fn toml_error_has_file_line() {
        let d = repo();
        write(
            d.path(),
            "profiles/router/profile.toml",
            "description = \"x\"\npackages = [\"a\",\n  nope ]\n",
        );
        let e = load(d.path(), "router").unwrap_err().to_string();
        assert!(e.starts_with("profiles/router/profile.toml:3:"), "{e}");
        write(
            d.path(),
            "profiles/router/profile.toml",
            "descripton = \"x\"\n",
        );
        let e = load(d.path(), "router").unwrap_err().to_string();
        assert!(
            e.starts_with("profiles/router/profile.toml:1:1:") && e.contains("descripton"),
            "{e}"
        );
    }

    #[test]
    fn bad_service_rejected() {
        let d = repo();
        write(
            d.path(),
            "profiles/router/profile.toml",
            "[[service]]\nname = \"Bad Name\"\nargv = [\"/x\"]\n",
        );
        assert!(load(d.path(), "router")
            .unwrap_err()
            .to_string()
            .contains("[a-z0-9-]+"));
        write(
            d.path(),
            "profiles/router/profile.toml",
            "[[service]]\nname = \"ok\"\nargv = [\"x\"]\n",
        );
        assert!(load(d.path(), "router")
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }

    #[test]
    fn template_errors_have_file_line() {
        let mut ctx = tera::Context::new();
        ctx.insert("role", "MASTER");
        assert_eq!(
            render_one("t", "role={{ role }}\n", &ctx).unwrap(),
            "role=MASTER\n"
        );
        let e = render_one(
            "profiles/x/templates/a",
            "ok\nline2\n{{ role }} {{ nosuch_var }}\n",
            &ctx,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("profiles/x/templates/a:3:"), "{e}");
        assert!(e.contains("nosuch_var"), "{e}");
        let e = render_one("profiles/x/templates/b", "a\n\n{% if %}\n", &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("profiles/x/templates/b:3:"), "{e}");
        let e = render_one("f", "x\n{{ role | nofilter }}\n", &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f:2:"), "{e}");
    }
}
