//! labwall CLI: argument parsing only; the work is in the library.

use clap::{Parser, Subcommand};
use labwall::diag::{render_all, Diagnostic};
use labwall::{compile_path, Options};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "labwall",
    version,
    about = "Compile one site file into both routers' network setup, nftables ruleset and keepalived VRRP config"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Site file (.lw)
    site: PathBuf,
    /// Define a variable: -D NAME=VALUE (wins over NAME=value in the file)
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// Allow backtick commands other than `hostname` (runs sh -c)
    #[arg(long)]
    allow_exec: bool,
    /// `all`: every VRRP instance lists every IPv4 VIP (literal seed output); default: by VRID
    #[arg(long, value_name = "all|vrid", value_parser = ["all", "vrid"])]
    compat_vips: Option<String>,
    /// Who reads keepalived.conf: `vrrpd` (the ramux router image) leaves out the mail lines
    #[arg(long = "for", value_name = "keepalived|vrrpd", value_parser = ["keepalived", "vrrpd"], default_value = "keepalived")]
    for_daemon: String,
    /// Treat warnings as errors
    #[arg(long)]
    deny_warnings: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write network.ip, sysctl.conf, ruleset.nft and keepalived.conf for one role, atomically
    #[command(
        after_help = "Examples:\n  labwall compile site.lw --role MASTER -D HOSTNAME=fw-a --out out/master\n  labwall compile site.lw --role BACKUP -D HOSTNAME=fw-b --out out/backup\n  labwall compile site.lw --role MASTER --for vrrpd --out out/m   # as vbuild does for router images\n  labwall compile site.lw --role MASTER --out out/m --json   # prints the model"
    )]
    Compile {
        #[command(flatten)]
        c: Common,
        /// MASTER or BACKUP (or give -D ROLE=...)
        #[arg(long)]
        role: Option<String>,
        /// Output directory (replaced atomically)
        #[arg(long)]
        out: PathBuf,
    },
    /// Check the site for both roles; --backend also runs nft -c and keepalived -t in a netns
    #[command(
        after_help = "Examples:\n  labwall check site.lw -D HOSTNAME=fw\n  labwall check site.lw --backend --deny-warnings   # needs root (network namespaces)"
    )]
    Check {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        backend: bool,
    },
    /// The dns role: print (or write into DIR) dnsmasq.conf of one dns appliance
    #[command(
        after_help = "Examples:\n  labwall dns site.lw --instance dns1\n  labwall dns site.lw --instance dns2 -o out/dns2   # writes out/dns2/dnsmasq.conf"
    )]
    Dns {
        #[command(flatten)]
        c: Common,
        /// The appliance: one of the names of the site's SERVERS line (dns1, dns2)
        #[arg(long)]
        instance: String,
        /// Output directory (replaced atomically); default: print to stdout
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
    },
    /// The dns role: write the FreeRADIUS configuration (files under /etc/freeradius/3.0) into DIR
    #[command(
        after_help = "Examples:\n  labwall radius site.lw -o out/radius   # out/radius/clients.conf, sites-enabled/default, ...\n  labwall radius site.lw -o out/radius --secrets-dir /run/ramux/secrets"
    )]
    Radius {
        #[command(flatten)]
        c: Common,
        /// Output directory (its files are overwritten; no secret is ever written)
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// The secrets directory on the appliance (read by ramux-radius-start at boot)
        #[arg(long, default_value = labwall::aaa::secrets::RUN_DIR)]
        secrets_dir: String,
    },
    /// The vpn role: write one VPN appliance's files into DIR (OpenVPN per VLAN, tinyproxy, network, ruleset, vpn-auth.toml)
    #[command(
        after_help = "Examples:\n  labwall vpn site.lw --instance vpn1 -o out/vpn1   # out/vpn1/openvpn/vlan10.conf, tinyproxy.conf, ruleset.nft, ..."
    )]
    Vpn {
        #[command(flatten)]
        c: Common,
        /// The appliance: the HOST alias of one of the site's VPNSERVER lines (vpn1, vpn2)
        #[arg(long)]
        instance: String,
        /// Output directory (replaced atomically)
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
    /// Which rule or policy decides a packet, with its source line (offline simulation)
    #[command(
        after_help = "Examples:\n  labwall explain site.lw --role MASTER --from 172.16.20.5 --to 172.16.10.21 --proto tcp --dport 443\n  labwall explain site.lw --role MASTER --from 10.1.1.1 --to 10.1.1.4 --proto tcp --dport 443 --json\n  labwall explain site.lw --role MASTER --from 172.16.10.50 --to 10.1.1.1 --in vlan20 --proto icmp"
    )]
    Explain {
        #[command(flatten)]
        c: Common,
        /// MASTER or BACKUP (or give -D ROLE=...)
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        from: IpAddr,
        #[arg(long)]
        to: IpAddr,
        /// tcp, udp, icmp (echo-request) or a protocol number
        #[arg(long, default_value = "tcp")]
        proto: String,
        #[arg(long)]
        dport: Option<u16>,
        /// Input interface (default: guessed from --from)
        #[arg(long = "in")]
        iif: Option<String>,
    },
}

/// `--role R`, else `-D ROLE=R` (the `labwall -D ROLE=MASTER site.lw` form; docs/labwall.md,
/// "Decisions where the spec is silent": where ROLE comes from).
fn role_of(c: &Common, role: Option<String>) -> Option<String> {
    let r = role.or_else(|| {
        c.define
            .iter()
            .rev()
            .find_map(|d| d.strip_prefix("ROLE=").map(str::to_string))
    });
    if r.is_none() {
        eprintln!("labwall: give the role with --role MASTER|BACKUP (or -D ROLE=MASTER|BACKUP)");
    }
    r
}

fn options(c: &Common, role: &str) -> Result<Options, String> {
    let mut defines = Vec::new();
    for d in &c.define {
        match d.split_once('=') {
            Some((k, v)) if !k.is_empty() => defines.push((k.to_string(), v.to_string())),
            _ => return Err(format!("-D {d}: expected NAME=VALUE")),
        }
    }
    Ok(Options {
        role: role.to_string(),
        defines,
        allow_exec: c.allow_exec,
        compat_vips_all: c.compat_vips.as_deref() == Some("all"),
        system_hostname: labwall::system_hostname(),
        vrrp_daemon: if c.for_daemon == "vrrpd" {
            labwall::emit::VrrpDaemon::Vrrpd
        } else {
            labwall::emit::VrrpDaemon::Keepalived
        },
    })
}

fn report(diags: &[Diagnostic], json: bool) {
    if json {
        eprintln!(
            "{}",
            serde_json::to_string_pretty(diags).unwrap_or_default()
        );
    } else {
        eprint!("{}", render_all(diags));
    }
}

fn summary(diags: &[Diagnostic]) -> String {
    let e = diags.iter().filter(|d| d.is_error()).count();
    let w = diags.len() - e;
    format!("{e} error(s), {w} warning(s)")
}

fn compile(c: &Common, role: &str) -> Result<labwall::Compiled, ExitCode> {
    let opts = options(c, role).map_err(|e| {
        eprintln!("labwall: {e}");
        ExitCode::from(2)
    })?;
    match compile_path(&c.site, &opts) {
        Ok(comp) => {
            report(&comp.warnings, c.json);
            if c.deny_warnings && !comp.warnings.is_empty() {
                eprintln!(
                    "labwall: {} ({role}); failing because of --deny-warnings",
                    summary(&comp.warnings)
                );
                return Err(ExitCode::from(1));
            }
            Ok(comp)
        }
        Err(d) => {
            report(&d, c.json);
            eprintln!("labwall: {} ({role}): nothing written", summary(&d));
            Err(ExitCode::from(1))
        }
    }
}

/// Like `compile` but prints only errors (the second role of `check`).
fn compile_quiet(c: &Common, role: &str) -> Result<labwall::Compiled, ExitCode> {
    let opts = options(c, role).map_err(|e| {
        eprintln!("labwall: {e}");
        ExitCode::from(2)
    })?;
    compile_path(&c.site, &opts).map_err(|d| {
        report(&d, c.json);
        eprintln!("labwall: {} ({role})", summary(&d));
        ExitCode::from(1)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Compile { c, role, out } => cmd_compile(&c, role, &out),
        Cmd::Check { c, backend } => cmd_check(&c, backend),
        Cmd::Dns { c, instance, out } => cmd_dns(&c, &instance, out.as_deref()),
        Cmd::Vpn { c, instance, out } => cmd_vpn(&c, &instance, &out),
        Cmd::Radius {
            c,
            out,
            secrets_dir,
        } => cmd_radius(&c, &out, &secrets_dir),
        Cmd::Explain {
            c,
            role,
            from,
            to,
            proto,
            dport,
            iif,
        } => {
            // a bad --proto is reported after the site compiled, like every other error
            let pk = match labwall::explain::Proto::parse(&proto) {
                Some(proto) => Ok(labwall::explain::Packet {
                    src: from,
                    dst: to,
                    proto,
                    dport,
                    iif,
                }),
                None => Err(format!(
                    "--proto {proto}: expected tcp, udp, icmp or a number"
                )),
            };
            cmd_explain(&c, role, pk)
        }
    }
}

/// `labwall compile`: write the four files atomically; `--json` prints the model and the IR.
fn cmd_compile(c: &Common, role: Option<String>, out: &std::path::Path) -> ExitCode {
    let Some(role) = role_of(c, role) else {
        return ExitCode::from(2);
    };
    let comp = match compile(c, &role) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let relay = labwall::emit::dhcp_relay_conf(&comp.site);
    let mut files = labwall::output_files(&comp.outputs);
    if let Some(r) = &relay {
        files.push(("dhcp-relay.conf", r));
    }
    if let Err(e) = labwall::write_files(out, &files) {
        eprintln!("labwall: cannot write {}: {e}", out.display());
        return ExitCode::from(1);
    }
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"site": comp.site, "ruleset": comp.ruleset})
            )
            .unwrap_or_default()
        );
    } else {
        eprintln!(
            "labwall: {role}: wrote {} ({} nft rules, {} VRRP instances)",
            out.display(),
            comp.ruleset.rule_count(),
            comp.site.instances.len()
        );
    }
    ExitCode::SUCCESS
}

/// `labwall check`: both roles compile, their rulesets agree; `--backend` also loads them.
fn cmd_check(c: &Common, backend: bool) -> ExitCode {
    let mut comps = Vec::new();
    for (n, role) in ["MASTER", "BACKUP"].into_iter().enumerate() {
        // warnings are the same for both roles: print them once
        let quiet = Common {
            json: c.json,
            ..c.clone()
        };
        let r = if n == 0 {
            compile(c, role)
        } else {
            compile_quiet(&quiet, role)
        };
        match r {
            Ok(x) => comps.push(x),
            Err(e) => return e,
        }
    }
    if comps[0].outputs.ruleset_nft != comps[1].outputs.ruleset_nft {
        eprintln!("labwall: warning: ruleset.nft differs between MASTER and BACKUP (an IF on $ROLE around firewall statements?): a failover would then need a firewall reload");
        if c.deny_warnings {
            return ExitCode::from(1);
        }
    }
    if backend {
        if let Err(code) = backend_check(&comps) {
            return code;
        }
    }
    if c.json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "warnings": comps[0].warnings, "nft_rules": comps[0].ruleset.rule_count(), "backend": backend})
        );
    } else {
        eprintln!(
            "labwall: {}: OK for MASTER and BACKUP ({} nft rules){}",
            c.site.display(),
            comps[0].ruleset.rule_count(),
            if backend {
                ", backend checks passed"
            } else {
                ""
            }
        );
    }
    ExitCode::SUCCESS
}

/// `check --backend`: nft -c and keepalived -t for each role in a throwaway netns (root).
fn backend_check(comps: &[labwall::Compiled]) -> Result<(), ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "labwall: --backend needs root (it creates a network namespace); run it with sudo"
        );
        return Err(ExitCode::from(2));
    }
    // Private (mkdtemp: 0700, random name): a predictable path in /tmp let a local user plant
    // symlinks that the check (as root) wrote through, auth_pass included.
    let dir = match tempfile::Builder::new().prefix("labwall-check-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("labwall: cannot create a private work directory: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let tmp = dir.path().to_path_buf();
    for (comp, tag) in comps.iter().zip(["m", "b"]) {
        eprintln!(
            "labwall: backend check {}: nft -c -f, keepalived -t (veth stand-ins for the interfaces)",
            comp.site.role
        );
        if let Err(e) = labwall::backend::check_role(&comp.site, &comp.outputs, &tmp, tag) {
            eprintln!("labwall: {e}");
            return Err(ExitCode::from(1));
        }
    }
    Ok(())
}

/// `labwall explain`: which rule decides the packet (Err: `--proto` did not parse).
fn cmd_explain(
    c: &Common,
    role: Option<String>,
    pk: Result<labwall::explain::Packet, String>,
) -> ExitCode {
    let Some(role) = role_of(c, role) else {
        return ExitCode::from(2);
    };
    let comp = match compile(c, &role) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let pk = match pk {
        Ok(pk) => pk,
        Err(e) => {
            eprintln!("labwall: {e}");
            return ExitCode::from(2);
        }
    };
    match labwall::explain::explain(&comp.site, &comp.ruleset, &pk) {
        Ok(e) => {
            if c.json {
                println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            } else {
                print!("{}", labwall::explain::render(&e));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("labwall: {e}");
            ExitCode::from(2)
        }
    }
}

/// `labwall radius`: the FreeRADIUS files of the dns appliances into `-o DIR` (nested paths,
/// so not `write_files`). The VPN replies' netmask is the VLAN's, from the site's VLAN lines.
fn cmd_radius(c: &Common, out: &std::path::Path, secrets_dir: &str) -> ExitCode {
    let comp = match compile(c, "MASTER") {
        Ok(x) => x,
        Err(e) => return e,
    };
    let site = &comp.site;
    let vlan_prefix = site
        .ifaces
        .iter()
        .filter_map(|i| Some((i.vid?, i.net4.len)))
        .collect();
    let o = labwall::aaa::radius::Options {
        secrets_dir: secrets_dir.to_string(),
        run_dir: labwall::aaa::radius::RUN_DIR.to_string(),
        vlan_prefix,
    };
    let files = match labwall::aaa::radius::freeradius_files_with(&site.services, &o) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("labwall: {e}");
            return ExitCode::from(1);
        }
    };
    for (rel, text) in &files {
        let p = out.join(rel);
        let r = std::fs::create_dir_all(p.parent().unwrap_or(out))
            .and_then(|()| std::fs::write(&p, text));
        if let Err(e) = r {
            eprintln!("labwall: cannot write {}: {e}", p.display());
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "labwall: wrote {} FreeRADIUS files into {}",
        files.len(),
        out.display()
    );
    ExitCode::SUCCESS
}

/// `labwall dns`: dnsmasq.conf of one instance, on stdout or into `-o DIR`.
fn cmd_dns(c: &Common, instance: &str, out: Option<&std::path::Path>) -> ExitCode {
    let comp = match compile(c, "MASTER") {
        Ok(x) => x,
        Err(e) => return e,
    };
    let conf = match labwall::dnsmasq::dnsmasq_conf(&comp.site, instance) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("labwall: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(dir) = out else {
        print!("{conf}");
        return ExitCode::SUCCESS;
    };
    if let Err(e) = labwall::write_files(dir, &[("dnsmasq.conf", &conf)]) {
        eprintln!("labwall: cannot write {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    eprintln!("labwall: {instance}: wrote {}/dnsmasq.conf", dir.display());
    ExitCode::SUCCESS
}

/// `labwall vpn`: every file of one VPN appliance into `-o DIR`, atomically.
fn cmd_vpn(c: &Common, instance: &str, out: &std::path::Path) -> ExitCode {
    let comp = match compile(c, "MASTER") {
        Ok(x) => x,
        Err(e) => return e,
    };
    let files = match labwall::vpn::vpn_files(&comp.site, instance) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("labwall: {e}: nothing written");
            return ExitCode::from(1);
        }
    };
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    if let Err(e) = labwall::write_files(out, &refs) {
        eprintln!("labwall: cannot write {}: {e}", out.display());
        return ExitCode::from(1);
    }
    eprintln!(
        "labwall: {instance}: wrote {} files into {}",
        files.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
