//! labwall: one site file compiles into both routers' network setup (`ip -batch`, sysctl), an
//! nftables ruleset (identical for both roles) and keepalived VRRP configuration.
//!
//! Pipeline: [`preprocess::preprocess`] (variables, backticks, IF, INCLUDE) ->
//! [`parse::parse_lines`] (one statement per line) -> [`model::analyse`] (all checks, in passes)
//! -> [`nft::build`] / [`emit`]. [`explain`] walks the same nft IR offline. The user guide and
//! language reference is docs/labwall.md.

pub mod aaa;
pub mod backend;
pub mod diag;
/// The dns role's dnsmasq.conf (its file sits with the other generators of `Services`).
#[path = "aaa/dnsmasq.rs"]
pub mod dnsmasq;
pub mod emit;
pub mod explain;
pub mod line;
pub mod model;
pub mod net;
pub mod nft;
pub mod parse;
pub mod preprocess;
pub mod vpn;

use diag::Diagnostic;
use parse::{FsLoader, Loader, PreOptions};
use std::path::Path;

/// Files for one role: the four outputs in the table at the top of docs/labwall.md (vbuild
/// writes them into the router image under these names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleOutputs {
    pub network_ip: String,
    pub sysctl_conf: String,
    pub ruleset_nft: String,
    pub keepalived_conf: String,
}

/// Compiler options beyond the file.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// "MASTER" or "BACKUP"
    pub role: String,
    /// -D NAME=VALUE
    pub defines: Vec<(String, String)>,
    pub allow_exec: bool,
    /// `--compat-vips=all`: every VRRP instance lists every IPv4 VIP (the literal reading of the
    /// seed site's "each instance listing all VIPs", labwall/tests/sites/seed); default groups
    /// VIPs by VRID (docs/labwall.md, "Decisions where the spec is silent").
    pub compat_vips_all: bool,
    /// Host name used by `hostname` when neither -D HOSTNAME nor SET HOSTNAME is given.
    pub system_hostname: Option<String>,
    /// Who reads keepalived.conf (`--for`): keepalived, or vrrpd in the ramux router image.
    pub vrrp_daemon: emit::VrrpDaemon,
}

/// Everything produced by one compilation: the model, the nft IR, the outputs and warnings.
#[derive(Debug)]
pub struct Compiled {
    pub site: model::Site,
    pub ruleset: nft::Ruleset,
    pub outputs: RoleOutputs,
    pub warnings: Vec<Diagnostic>,
}

/// Compile source text (pure: includes go through `loader`). Err holds every diagnostic
/// (errors and warnings) in source order.
pub fn compile_source(
    loader: &dyn Loader,
    path: &Path,
    text: &str,
    opts: &Options,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut defines = opts.defines.clone();
    defines.retain(|(k, _)| k != "ROLE");
    defines.push(("ROLE".into(), opts.role.clone()));
    let pre = PreOptions {
        defines,
        allow_exec: opts.allow_exec,
        system_hostname: opts.system_hostname.clone(),
    };
    let (lines, mut diags) = parse::preprocess(loader, path, text, &pre);
    let stmts = parse::parse_lines(&lines, &mut diags);
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site.lw".into());
    let site = model::analyse(&file, &stmts, &opts.role, &mut diags);
    diags.sort_by(|a, b| {
        (a.loc.file != file, &a.loc.file, a.loc.line, a.loc.col).cmp(&(
            b.loc.file != file,
            &b.loc.file,
            b.loc.line,
            b.loc.col,
        ))
    });
    let Some(site) = site else { return Err(diags) };
    if diags.iter().any(|d| d.is_error()) {
        return Err(diags);
    }
    let ruleset = nft::build(&site);
    diags.extend(mail_for_vrrpd(&site, opts.vrrp_daemon));
    diags.extend(aaa::reach::nas_to_radius(&site, &ruleset, &lines));
    diags.extend(vpn::reach::dnat_to_vpn_server(&site, &lines));
    let outputs = RoleOutputs {
        network_ip: emit::network_ip(&site),
        sysctl_conf: emit::sysctl_conf(&site),
        ruleset_nft: nft::render(&ruleset, &site),
        keepalived_conf: emit::keepalived_conf(&site, opts.compat_vips_all, opts.vrrp_daemon),
    };
    Ok(Compiled {
        site,
        ruleset,
        outputs,
        warnings: diags,
    })
}

/// vrrpd sends no mail: say that VRRP AUTH's SMTP server and e-mail are left out for it.
fn mail_for_vrrpd(site: &model::Site, daemon: emit::VrrpDaemon) -> Option<Diagnostic> {
    let a = site.auth.as_ref()?;
    if daemon != emit::VrrpDaemon::Vrrpd || (a.smtp.is_none() && a.email.is_none()) {
        return None;
    }
    let loc = diag::Loc {
        file: site.file.clone(),
        line: a.line,
        col: 1,
    };
    Some(
        Diagnostic::warning(loc, "vrrpd sends no mail: the SMTP server and e-mail of VRRP AUTH are left out of keepalived.conf")
            .fix("write - - for them, and send alerts from a notify script or the syslog"),
    )
}

/// The machine's host name (for `hostname` backticks).
pub fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Compile a file from disk with full options.
pub fn compile_path(site: &Path, opts: &Options) -> Result<Compiled, Vec<Diagnostic>> {
    let text = match std::fs::read_to_string(site) {
        Ok(t) => t,
        Err(e) => {
            let file = site.display().to_string();
            return Err(vec![Diagnostic::error(
                diag::Loc {
                    file,
                    line: 0,
                    col: 0,
                },
                format!("cannot read the site file: {e}"),
            )
            .fix("check the path")]);
        }
    };
    compile_source(&FsLoader, site, &text, opts)
}

/// Contract API for vbuild: role is "MASTER" or "BACKUP"; defines are -D NAME=VALUE pairs.
/// Err carries every diagnostic rendered as `file:line:col: error: ...` lines.
pub fn compile_file(
    site: &Path,
    role: &str,
    defines: &[(String, String)],
) -> Result<RoleOutputs, String> {
    let opts = Options {
        role: role.to_string(),
        defines: defines.to_vec(),
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: system_hostname(),
        vrrp_daemon: emit::VrrpDaemon::Vrrpd,
    };
    compile_path(site, &opts)
        .map(|c| c.outputs)
        .map_err(|d| diag::render_all(&d))
}

/// The dns role: compile the site (as MASTER; the services do not depend on the role) and
/// render dnsmasq.conf for `instance` (one of the site's SERVERS). Err: rendered diagnostics.
pub fn compile_dns(
    site: &Path,
    instance: &str,
    defines: &[(String, String)],
) -> Result<String, String> {
    let opts = Options {
        role: "MASTER".into(),
        defines: defines.to_vec(),
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: system_hostname(),
        vrrp_daemon: emit::VrrpDaemon::Vrrpd,
    };
    let c = compile_path(site, &opts).map_err(|d| diag::render_all(&d))?;
    dnsmasq::dnsmasq_conf(&c.site, instance)
}

/// Fuzz body: compile arbitrary text with no file access and no command execution. Never panics.
pub fn fuzz_compile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loader = parse::MapLoader(Default::default());
    for role in ["MASTER", "BACKUP"] {
        let opts = Options {
            role: role.into(),
            defines: vec![("HOSTNAME".into(), "fz".into())],
            allow_exec: false,
            compat_vips_all: false,
            system_hostname: None,
            vrrp_daemon: emit::VrrpDaemon::Vrrpd,
        };
        if let Ok(c) = compile_source(&loader, Path::new("fuzz.lw"), text, &opts) {
            let _ = explain::explain(&c.site, &c.ruleset, &explain::Packet::example());
            let _ = emit::dhcp_relay_conf(&c.site);
            for s in &c.site.services.servers {
                let _ = dnsmasq::dnsmasq_conf(&c.site, &s.name);
            }
            for s in &c.site.vpn.servers {
                let _ = vpn::vpn_files(&c.site, &s.name);
            }
        }
    }
}

/// Write the four files into a sibling temp dir, then swap it in with renameat2(RENAME_EXCHANGE)
/// (or a plain rename when DIR does not exist yet), so readers see the old or the new set.
pub fn write_outputs(dir: &Path, o: &RoleOutputs) -> std::io::Result<()> {
    write_files(dir, &output_files(o))
}

/// The four outputs with their file names.
pub fn output_files(o: &RoleOutputs) -> Vec<(&'static str, &str)> {
    vec![
        ("network.ip", &o.network_ip),
        ("sysctl.conf", &o.sysctl_conf),
        ("ruleset.nft", &o.ruleset_nft),
        ("keepalived.conf", &o.keepalived_conf),
    ]
}

/// keepalived.conf carries the VRRP `auth_pass`: owner only. The others are plain config.
pub fn output_mode(name: &str) -> u32 {
    if name.ends_with("keepalived.conf") {
        0o600
    } else {
        0o644
    }
}

/// A new file with `mode` (never through an existing path or link).
pub(crate) fn write_new(p: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// [`write_outputs`] for any set of (name, text) files (the routers' `dhcp-relay.conf` too).
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let base = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o755).create(&tmp)?;
    }
    for (n, t) in files {
        let p = tmp.join(n);
        if let Some(d) = p.parent().filter(|d| *d != tmp) {
            std::fs::create_dir_all(d)?; // nested names (the vpn role's openvpn/vlan10.conf)
        }
        write_new(&p, t, output_mode(n))?;
    }
    if dir.exists() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let a = CString::new(tmp.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let b = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        // SAFETY: two valid NUL-terminated paths; AT_FDCWD for both.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        std::fs::remove_dir_all(&tmp)?; // now holds the old contents
    } else {
        std::fs::rename(&tmp, dir)?;
    }
    Ok(())
}

/// Kernel modules the outputs need on a modular kernel (Debian 6.1): VLAN interfaces for
/// network.ip, and the nftables expressions used by ruleset.nft (conntrack, NAT, reject, limit,
/// log, masquerade). Image builders add these (their dependencies come from modules.dep).
pub const KERNEL_MODULES: &[&str] = &[
    "8021q",
    "nfnetlink",
    "nf_tables",
    "nf_conntrack",
    "nft_ct",
    "nf_nat",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nf_reject_ipv4",
    "nf_reject_ipv6",
    "nft_reject",
    "nft_reject_inet",
    "nft_limit",
    "nft_log",
    "nf_log_syslog",
];
