//! vbuild command line: parses arguments and calls the library.
use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "vbuild",
    version,
    about = "Build reproducible live ISOs of ramux appliances that run from RAM"
)]
#[command(after_help = "Examples:
  vbuild profiles
  vbuild iso router --role BACKUP
  vbuild iso router --role MASTER -o /tmp/RT1.iso --set hostname=rt1
  vbuild iso client --set address=172.16.20.50/24 --set gateway=172.16.20.1
  vbuild iso dns --instance dns1 --site labwall/tests/sites/dns/site.lw
  SOURCE_DATE_EPOCH=1700000000 vbuild iso vpn --instance vpn1 --quiet
  vbuild secrets init /tmp/lab-secrets --nas sw1 --user alice:wonderland --cn alice
  vbuild secrets pack /tmp/lab-secrets -o /tmp/dns1.secrets
  vbuild key generate --out ~/.minisign/ramux
  vbuild release --out-dir dist --sign ~/.minisign/ramux.key
  vbuild verify dist --pubkey keys/ramux.pub")]
struct Cli {
    /// Checkout root holding profiles/ and overlays/ (default: the current directory or the
    /// nearest parent directory that has profiles/).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build <profile> for one role into images/<profile>-<role>.iso (+ manifest, SHA256SUMS);
    /// a role-less profile (client) into images/<profile>.iso; an instance profile (dns) into
    /// images/<instance>.iso.
    #[command(after_help = "Examples:
  vbuild iso router --role BACKUP
  vbuild iso router --role master -o RT1.iso --set hostname=rt1 --set lan_vlan=10
  vbuild iso router --role MASTER --bin-dir target/x86_64-unknown-linux-gnu/release --json

The build clock is SOURCE_DATE_EPOCH, else the last git commit touching the profile, else
1700000000: two builds of the same inputs give byte-identical outputs.")]
    Iso {
        /// Profile name (see `vbuild profiles`).
        profile: String,
        /// MASTER or BACKUP; required unless the profile is role-less (`roles = []`, e.g.
        /// client), which takes none.
        #[arg(long)]
        role: Option<String>,
        /// The site instance an instance profile (dns) is built for: a name of the site's SERVERS
        /// line (dns1); the image's host name and default output name. Same as --set instance=NAME.
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Output ISO (default images/<profile>-<role>.iso under the root; images/<profile>.iso
        /// for a role-less profile).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Template variable, repeatable (KEY=VALUE; hostname=... sets the host name).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Site file: labwall (.lw) or template variables (.toml).
        #[arg(long, value_name = "FILE")]
        site: Option<PathBuf>,
        /// Directory with the static ramux binaries (default $RAMUX_BIN_DIR, else next to vbuild).
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// Cache directory (default images/cache under the root).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// No progress output.
        #[arg(short, long)]
        quiet: bool,
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Build every profile for every role (a role-less one once) into images/ (or --out-dir)
    /// and update SHA256SUMS.
    #[command(
        after_help = "Examples:\n  vbuild release\n  SOURCE_DATE_EPOCH=1700000000 vbuild release --out-dir dist --json\n  vbuild release --out-dir dist --sign ~/.minisign/ramux.key\n  vbuild release --out-dir dist --jobs 2"
    )]
    Release {
        /// Output directory (default images/ under the root).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Directory with the static ramux binaries (default $RAMUX_BIN_DIR, else next to vbuild).
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// Cache directory (default images/cache under the root).
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        #[arg(short, long)]
        quiet: bool,
        /// Print a JSON array of build summaries on stdout.
        #[arg(long)]
        json: bool,
        /// After the builds, sign SHA256SUMS into SHA256SUMS.minisig with this minisign
        /// secret key (unencrypted: `vbuild key generate` or `minisign -G -W`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Builds at once (they share the base-layer cache); the output is the same bytes
        /// whatever N is.
        #[arg(long, short = 'j', value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
    },
    /// Check a signed release directory: the SHA256SUMS.minisig signature and its trusted
    /// comment, every SHA256SUMS line against its file, every *.manifest.json's ISO sha256
    /// against SHA256SUMS, that no manifest says its image carries secrets, and that every
    /// *.spdx.json SBOM is SPDX 2.3 and lists exactly its manifest's Debian packages.
    #[command(after_help = "Examples:
  vbuild verify dist --pubkey keys/ramux.pub

Exits non-zero naming the first thing that fails. The same signature checks with Debian's
minisign: minisign -V -p keys/ramux.pub -m dist/SHA256SUMS")]
    Verify {
        /// The release directory (holds SHA256SUMS and SHA256SUMS.minisig).
        dir: PathBuf,
        /// The minisign public key (PREFIX.pub of `vbuild key generate`, or `minisign -G`'s).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
    },
    /// Release signing keys (minisign).
    #[command(subcommand)]
    Key(KeyCmd),
    /// List profiles with their descriptions.
    Profiles {
        #[arg(long)]
        json: bool,
    },
    /// A VPN user's single-file OpenVPN profile (.ovpn, mode 0600): inline CA, certificate,
    /// key and tls-crypt key, one <connection> per VPN server through its relay on 443. For the
    /// user, never for an appliance.
    #[command(after_help = "Examples:
  vbuild secrets init /tmp/lab-secrets --site labwall/tests/sites/vpn/site.lw
  vbuild vpn-client alice --site labwall/tests/sites/vpn/site.lw --secrets /tmp/lab-secrets -o alice.ovpn
  openvpn --config alice.ovpn")]
    VpnClient {
        /// The VPN user: a VPNUSER CN of the site (its certificate: pki/clients/<USER>.crt).
        user: String,
        /// The labwall site file.
        #[arg(long, value_name = "SITE.lw")]
        site: PathBuf,
        /// The site secrets directory (vbuild secrets init).
        #[arg(long, value_name = "DIR")]
        secrets: PathBuf,
        /// The profile to write (replaced atomically, mode 0600).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Site secrets: a throwaway lab PKI and secrets, and the overlay vlaunch hands to a VM
    /// (docs/secrets.md). Never in an ISO.
    #[command(subcommand)]
    Secrets(SecretsCmd),
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Write a new minisign key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub.
    #[command(after_help = "Examples:
  vbuild key generate --out ~/.minisign/ramux
  vbuild key generate --out /tmp/ci-test-key

The secret key is NOT password-protected, so that CI and scripts can sign without a prompt:
keep it on the maintainer's machine (or use a throwaway key in CI), never in a repository.
Refuses to overwrite an existing key, and refuses a secret key inside a git work tree unless
--force. For a password-protected key use `minisign -G` (vbuild signs only with
unencrypted keys).")]
    Generate {
        /// Path prefix of the two files (default ~/.minisign/ramux).
        #[arg(long, value_name = "PREFIX")]
        out: Option<PathBuf>,
        /// Write the secret key even inside a git work tree.
        #[arg(long)]
        force: bool,
    },
}

fn key(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Generate { out, force } => {
            let prefix = match out {
                Some(p) => p,
                None => std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".minisign/ramux"))
                    .ok_or_else(|| anyhow!("HOME is not set: give --out PREFIX"))?,
            };
            let (secret, public) = vbuild::release::generate_key(&prefix, force)?;
            if force && vbuild::release::git_work_tree(&secret).is_some() {
                eprintln!(
                    "vbuild: warning: {} is inside a git work tree: do not commit it",
                    secret.display()
                );
            }
            println!("{}", secret.display());
            println!("{}", public.display());
            eprintln!("vbuild: the secret key is not password-protected: keep it private");
        }
    }
    Ok(())
}

/// Signs `dir/SHA256SUMS` after a release of `reports` from the checkout `root`.
// The trusted comment's timestamp is when it was signed (minisign's meaning), the one wall
// clock read; the signature is not a build output, and the build clock is its sde: field.
#[allow(clippy::disallowed_methods)]
fn sign_release(
    root: &std::path::Path,
    dir: &std::path::Path,
    key: &std::path::Path,
    reports: &[vbuild::BuildReport],
) -> Result<PathBuf> {
    let sde = reports
        .iter()
        .map(|r| r.epoch)
        .max()
        .ok_or_else(|| anyhow!("release built nothing: nothing to sign"))?;
    let info = vbuild::release::SignInfo {
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: vbuild::release::git_commit(root),
        sde,
    };
    vbuild::release::sign_dir(dir, key, &info)
}

#[derive(Subcommand)]
enum SecretsCmd {
    /// Create a throwaway lab secrets directory: CA (its key is not kept), RADIUS server
    /// certificate, client certificates, random NAS secrets, NT hashes; files 0600, dirs 0700.
    #[command(after_help = "Examples:
  vbuild secrets init /tmp/lab-secrets --nas sw1 --nas vpn1 --user alice:wonderland --cn alice
  vbuild secrets init ~/site-secrets --nas ap1 --user bob:hunter2 --user carol:pa55 --cn laptop1

Writes pki/ca.crt, pki/radius.crt, pki/radius.key, pki/clients/<cn>.crt/.key,
radius/nas/<name> (one line, 32 hex digits), radius/dot1x.nt (`<user> <NT hash>` lines).
Refuses a directory that is not empty. For labs and tests only: passwords on a command line
are seen by `ps` and kept in shell history.")]
    Init {
        /// New or empty directory.
        dir: PathBuf,
        /// RADIUS client secret name (repeatable): radius/nas/<NAME>, random.
        #[arg(long = "nas", value_name = "NAME")]
        nas: Vec<String>,
        /// 802.1X user and password (repeatable); only the NT hash is written.
        #[arg(long = "user", value_name = "NAME:PASSWORD")]
        users: Vec<String>,
        /// Client certificate CN (repeatable): pki/clients/<CN>.crt and .key.
        #[arg(long = "cn", value_name = "CN")]
        cns: Vec<String>,
        /// VPN server (repeatable), NAME or NAME:PUBLIC-DNS-NAME: pki/<NAME>.crt and .key, and
        /// the site's vpn/tls-crypt.key.
        #[arg(long = "vpn-server", value_name = "NAME[:PUBLIC]")]
        vpn_servers: Vec<String>,
        /// Also everything the labwall site names: its NAS secrets, a client certificate per
        /// VPNUSER and DOT1X CN, its VPNSERVERs (with their public names).
        #[arg(long, value_name = "SITE.lw")]
        site: Option<PathBuf>,
    },
    /// Pack a secrets directory into an overlay file (mode 0600) for `vlaunch --secrets`.
    #[command(after_help = "Examples:
  vbuild secrets pack /tmp/lab-secrets -o /tmp/dns1.secrets
  vbuild secrets pack /tmp/lab-secrets -o /tmp/alice.secrets --only pki/ca.crt --only pki/clients/alice.crt --only pki/clients/alice.key
  vlaunch images/dns1.iso --secrets /tmp/dns1.secrets --wait-ready

Refuses (naming the file) anything readable by group or others, symbolic links and devices.
Without --only, everything but pki/clients/ (client keys go to users, not appliances).
The same directory packs to the same bytes.")]
    Pack {
        dir: PathBuf,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Pack only this path of DIR, a file or a directory (repeatable).
        #[arg(long = "only", value_name = "PATH")]
        only: Vec<String>,
    },
    /// List an overlay's entries: mode, size, sha256, path (never the content).
    #[command(after_help = "Examples:\n  vbuild secrets list /tmp/dns1.secrets")]
    List { file: PathBuf },
}

fn secrets(cmd: SecretsCmd) -> Result<()> {
    match cmd {
        SecretsCmd::Init {
            dir,
            mut nas,
            users,
            mut cns,
            vpn_servers,
            site,
        } => {
            let mut vpn: Vec<(String, Option<String>)> = vpn_servers
                .iter()
                .map(|v| match v.split_once(':') {
                    Some((n, p)) => (n.to_string(), Some(p.to_string())),
                    None => (v.clone(), None),
                })
                .collect();
            if let Some(site) = site {
                let n = vbuild::secrets::site_names(&compile_site(&site)?);
                vbuild::secrets::merge(&mut nas, &n.nas);
                vbuild::secrets::merge(&mut cns, &n.cns);
                vbuild::secrets::merge_vpn(&mut vpn, &n.vpn);
            }
            let users = users
                .iter()
                .map(|u| {
                    u.split_once(':')
                        .map(|(n, p)| (n.to_string(), p.to_string()))
                        .ok_or_else(|| anyhow!("--user {u}: expected NAME:PASSWORD"))
                })
                .collect::<Result<Vec<_>>>()?;
            let req = vbuild::secrets::InitRequest {
                dir: dir.clone(),
                nas,
                users,
                cns,
            };
            for f in vbuild::secrets::init_with_vpn(&req, &vpn)? {
                println!("{}", dir.join(f).display());
            }
        }
        SecretsCmd::Pack { dir, output, only } => {
            let bytes = vbuild::secrets::pack(&dir, &only)?;
            vbuild::secrets::write_overlay(&output, &bytes)?;
            println!("{} ({} bytes)", output.display(), bytes.len());
        }
        SecretsCmd::List { file } => print!("{}", vbuild::secrets::list(&file)?),
    }
    Ok(())
}

/// The checked model of a labwall site (as MASTER: the services do not depend on the role).
fn compile_site(site: &std::path::Path) -> Result<labwall::model::Site> {
    let opts = labwall::Options {
        role: "MASTER".into(),
        defines: vec![("HOSTNAME".into(), "vbuild".into())],
        ..Default::default()
    };
    labwall::compile_path(site, &opts)
        .map(|c| c.site)
        .map_err(|d| {
            anyhow!(
                "labwall site {}:\n{}",
                site.display(),
                labwall::diag::render_all(&d).trim_end()
            )
        })
}

/// `--instance NAME` is the build variable `instance` ([`vbuild::instance::VAR`]), after the
/// `--set`s so the flag wins.
fn with_instance(
    mut sets: Vec<(String, String)>,
    instance: Option<String>,
) -> Vec<(String, String)> {
    if let Some(i) = instance {
        sets.push((vbuild::instance::VAR.to_string(), i));
    }
    sets
}

fn run(cli: Cli) -> Result<()> {
    let root = match cli.root {
        Some(r) => r,
        // The checkout root: the current directory or the nearest parent with profiles/.
        None => {
            let cwd = std::env::current_dir()?;
            cwd.ancestors()
                .find(|d| d.join("profiles").is_dir())
                .map(PathBuf::from)
                .unwrap_or(cwd)
        }
    };
    match cli.cmd {
        Cmd::Secrets(cmd) => secrets(cmd)?,
        Cmd::Key(cmd) => key(cmd)?,
        Cmd::Verify { dir, pubkey } => {
            let v = vbuild::release::verify_dir(&dir, &pubkey)?;
            for n in &v.unlisted {
                eprintln!("vbuild: warning: {n} is not listed in SHA256SUMS (not signed)");
            }
            println!(
                "{}: signature, {} files, {} manifests and {} SBOMs verified; trusted comment: {}",
                dir.display(),
                v.files,
                v.manifests,
                v.sboms,
                v.trusted_comment
            );
        }
        Cmd::VpnClient {
            user,
            site,
            secrets,
            output,
        } => {
            vbuild::vpn_client::make(&user, &site, &secrets, &output)?;
            println!("{}", output.display());
        }
        Cmd::Profiles { json } => {
            let list = vbuild::profile::list(&root)?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(n, d)| serde_json::json!({"name": n, "description": d}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (n, d) in list {
                    println!("{n:<12} {d}");
                }
            }
        }
        Cmd::Release {
            out_dir,
            bin_dir,
            cache_dir,
            quiet,
            json,
            sign,
            jobs,
        } => {
            let req = vbuild::BuildRequest {
                root: root.clone(),
                bin_dir,
                cache_dir,
                quiet: quiet || json,
                ..Default::default()
            };
            if let Some(key) = &sign {
                vbuild::release::read_secret_key(key)?; // fail before the builds, not after
            }
            let reports = vbuild::build_release(&req, out_dir.as_deref(), jobs.into())?;
            if let Some(key) = sign {
                let dir = out_dir.unwrap_or_else(|| root.join("images"));
                let sig = sign_release(&root, &dir, &key, &reports)?;
                if !quiet && !json {
                    eprintln!("vbuild: signed {}", sig.display());
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else if !quiet {
                for r in reports {
                    println!(
                        "{}  {} ({:.1} MiB)",
                        &r.sha256,
                        r.iso.display(),
                        r.size as f64 / 1048576.0
                    );
                }
            }
        }
        Cmd::Iso {
            profile,
            role,
            instance,
            output,
            sets,
            site,
            bin_dir,
            cache_dir,
            quiet,
            json,
        } => {
            let sets = sets
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow!("--set {s}: expected KEY=VALUE"))
                })
                .collect::<Result<Vec<_>>>()?;
            let sets = with_instance(sets, instance);
            let req = vbuild::BuildRequest {
                root,
                profile,
                role: role.unwrap_or_default(),
                sets,
                site,
                out: output,
                bin_dir,
                cache_dir,
                epoch: None,
                quiet: quiet || json,
            };
            let r = vbuild::build_iso(&req)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if !quiet {
                println!(
                    "{} ({:.1} MiB, sha256 {}) in {:.2} s; initrd {:.1} MiB -> {:.1} MiB in RAM, {} modules, boot with >= {} MiB RAM",
                    r.iso.display(),
                    r.size as f64 / 1048576.0,
                    &r.sha256[..16],
                    r.total_ms as f64 / 1000.0,
                    r.initrd_size as f64 / 1048576.0,
                    r.initrd_uncompressed_size as f64 / 1048576.0,
                    r.modules,
                    r.recommended_min_ram_mib
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbuild: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
