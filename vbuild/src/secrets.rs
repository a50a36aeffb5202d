//! `vbuild secrets`: a throwaway lab secrets directory (`init`), and the overlay packed from a
//! secrets directory (`pack`, format [`ramux_contract::secrets`]), listed back by `list`.
//!
//! The PKI is made with rcgen (ECDSA P-256 keys through ring): a pure library call, so `init`
//! needs no openssl or easy-rsa on the host, no CA state directory and no shell quoting of
//! subject names; the certificates are plain X.509 that FreeRADIUS and OpenVPN read. The CA's
//! private key is never written: a lab PKI is thrown away and made again, and a real site's CA
//! lives offline (docs/secrets.md).

use anyhow::{anyhow, bail, Context, Result};
use ramux_contract::secrets::{self as contract, HostEntry, HostKind};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use labwall::aaa::secrets::{CA_CERT, DOT1X_NT, NAS_DIR, RADIUS_CERT, RADIUS_KEY};

/// Client certificates (`<cn>.crt/.key`): for users and test clients, never for an appliance,
/// so `pack` leaves them out unless `--only` names them.
pub const CLIENTS_DIR: &str = "pki/clients";

/// What `vbuild secrets init` makes.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub dir: PathBuf,
    /// NAS secret names (`radius/nas/<name>`, random).
    pub nas: Vec<String>,
    /// 802.1X users and their passwords (only the NT hash is written).
    pub users: Vec<(String, String)>,
    /// Client certificate CNs (`pki/clients/<cn>.crt/.key`): 802.1X EAP-TLS and VPN users.
    pub cns: Vec<String>,
}

/// The VPN servers `init` makes certificates for: `pki/<name>.crt/.key` (serverAuth), with
/// the server's public DNS name as a subjectAltName when known; any entry also makes the
/// site's [`TLS_CRYPT_KEY`]. (A separate argument: [`InitRequest`] is built field by field by
/// other crates' tests.)
pub type VpnServers = [(String, Option<String>)];

/// The site-wide OpenVPN tls-crypt key (OpenVPN static key format, 2048 bits).
pub const TLS_CRYPT_KEY: &str = labwall::vpn::TLS_CRYPT_KEY;

/// Creates a throwaway site PKI and secrets in `req.dir` (new or empty), files 0600, dirs
/// 0700; returns the files written, relative to the directory.
pub fn init(req: &InitRequest) -> Result<Vec<String>> {
    init_with_vpn(req, &[])
}

/// [`init`] plus the VPN servers' material.
pub fn init_with_vpn(req: &InitRequest, vpn: &VpnServers) -> Result<Vec<String>> {
    check_names(req, vpn)?;
    prepare_dir(&req.dir)?;
    let mut w = Writer {
        dir: req.dir.clone(),
        written: Vec::new(),
    };
    for d in ["pki", CLIENTS_DIR, "radius", NAS_DIR] {
        make_dir(&req.dir.join(d))?;
    }
    let (ca_pem, ca) = make_ca()?;
    w.file(CA_CERT, ca_pem.as_bytes())?;
    let (crt, key) = make_leaf(&ca, "radius", &[], ExtendedKeyUsagePurpose::ServerAuth)?;
    w.file(RADIUS_CERT, crt.as_bytes())?;
    w.file(RADIUS_KEY, key.as_bytes())?;
    vpn_material(&mut w, &ca, vpn)?;
    for cn in &req.cns {
        let (crt, key) = make_leaf(&ca, cn, &[], ExtendedKeyUsagePurpose::ClientAuth)?;
        w.file(&format!("{CLIENTS_DIR}/{cn}.crt"), crt.as_bytes())?;
        w.file(&format!("{CLIENTS_DIR}/{cn}.key"), key.as_bytes())?;
    }
    for nas in &req.nas {
        w.file(
            &format!("{NAS_DIR}/{nas}"),
            format!("{}\n", random_hex(16)?).as_bytes(),
        )?;
    }
    let nt: String = req
        .users
        .iter()
        .map(|(u, p)| format!("{u} {}\n", nt_hash(p)))
        .collect();
    w.file(DOT1X_NT, nt.as_bytes())?;
    Ok(w.written)
}

/// Each VPN server's certificate and key, and the site's tls-crypt key (when there are any).
fn vpn_material(
    w: &mut Writer,
    ca: &Issuer<'_, KeyPair>,
    servers: &[(String, Option<String>)],
) -> Result<()> {
    for (name, public) in servers {
        let san: Vec<String> = public.iter().cloned().collect();
        let (crt, key) = make_leaf(ca, name, &san, ExtendedKeyUsagePurpose::ServerAuth)?;
        w.file(&format!("pki/{name}.crt"), crt.as_bytes())?;
        w.file(&format!("pki/{name}.key"), key.as_bytes())?;
    }
    if !servers.is_empty() {
        make_dir(&w.dir.join("vpn"))?;
        w.file(TLS_CRYPT_KEY, static_key(&random_bytes(256)?).as_bytes())?;
    }
    Ok(())
}

/// What a site asks of `init`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteNames {
    /// Its NAS lines' secret names.
    pub nas: Vec<String>,
    /// Client certificate CNs: the VPN users, then the 802.1X EAP-TLS identities.
    pub cns: Vec<String>,
    /// Its VPN servers, with their public names.
    pub vpn: Vec<(String, Option<String>)>,
}

/// The names `init` makes secrets for, as the site gives them.
pub fn site_names(site: &labwall::model::Site) -> SiteNames {
    let svc = &site.services;
    let tls = svc
        .dot1x
        .iter()
        .filter(|d| d.kind == labwall::aaa::IdentityKind::CertCn);
    let cns = svc
        .vpn_users
        .iter()
        .map(|u| u.cn.clone())
        .chain(tls.map(|d| d.name.clone()));
    let vpn = site
        .vpn
        .servers
        .iter()
        .map(|v| (v.name.clone(), Some(v.public_name.clone())));
    SiteNames {
        nas: svc.nas.iter().map(|n| n.secret.clone()).collect(),
        cns: cns.collect(),
        vpn: vpn.collect(),
    }
}

/// Adds `more` to `list`, keeping the first of each name.
/// VPN servers by name: a `--vpn-server NAME` without a public name takes the site's, one with
/// its own keeps it, and no server appears twice (its certificate would be written twice).
pub fn merge_vpn(list: &mut Vec<(String, Option<String>)>, more: &[(String, Option<String>)]) {
    for (name, public) in more {
        match list.iter_mut().find(|(n, _)| n == name) {
            Some((_, p)) => {
                if p.is_none() {
                    p.clone_from(public);
                }
            }
            None => list.push((name.clone(), public.clone())),
        }
    }
}

pub fn merge<T: PartialEq + Clone>(list: &mut Vec<T>, more: &[T]) {
    for m in more {
        if !list.contains(m) {
            list.push(m.clone());
        }
    }
}

/// OpenVPN's static key file (what `openvpn --genkey tls-crypt` writes): 256 bytes as 16 lines
/// of 32 hex digits between the V1 markers. Made here from /dev/urandom, like every other
/// secret of `init`, so the host needs no openvpn to make a lab's secrets.
pub fn static_key(bytes: &[u8]) -> String {
    let mut s = String::from(
        "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n",
    );
    for line in bytes.chunks(16) {
        s.push_str(&crate::hex(line));
        s.push('\n');
    }
    s + "-----END OpenVPN Static key V1-----\n"
}

fn check_names(req: &InitRequest, vpn: &VpnServers) -> Result<()> {
    let users = req.users.iter().map(|(u, _)| u);
    let vpn = vpn.iter().map(|(n, _)| n);
    for n in req.nas.iter().chain(&req.cns).chain(users).chain(vpn) {
        contract::check_path(n).map_err(|e| anyhow!("name {n:?}: {e}"))?;
        if n.contains('/') {
            bail!("name {n:?}: one path component, no '/'");
        }
    }
    Ok(())
}

/// `dir` must not exist or be empty: `init` never mixes new keys with old ones.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut it = fs::read_dir(dir).with_context(|| format!("{}", dir.display()))?;
        if it.next().is_some() {
            bail!(
                "{}: not empty; `vbuild secrets init` only writes into a new or empty directory",
                dir.display()
            );
        }
    }
    make_dir(dir)
}

fn make_dir(p: &Path) -> Result<()> {
    if !p.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
            .with_context(|| format!("cannot create {}", p.display()))?;
    }
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", p.display()))
}

struct Writer {
    dir: PathBuf,
    written: Vec<String>,
}

impl Writer {
    /// Creates `rel` with mode 0600 from the start (never briefly readable by others).
    fn file(&mut self, rel: &str, data: &[u8]) -> Result<()> {
        let p = self.dir.join(rel);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        self.written.push(rel.to_string());
        Ok(())
    }
}

/// Valid from January 1st of last year to January 1st three years on: a lab's lifetime, and
/// no clock skew between host and guest can make it "not yet valid".
fn validity(p: &mut CertificateParams) {
    let year = 1970 + (wall_clock_secs() / 31_556_952) as i32;
    p.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    p.not_after = rcgen::date_time_ymd(year + 3, 1, 1);
}

/// Certificates are checked against the wall clock of whoever verifies them: unlike an image,
/// their validity cannot come from the build clock.
#[allow(clippy::disallowed_methods)]
fn wall_clock_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn serial() -> Result<SerialNumber> {
    let mut b = random_bytes(16)?;
    b[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&b))
}

fn make_ca() -> Result<(String, Issuer<'static, KeyPair>)> {
    let mut p = CertificateParams::default();
    validity(&mut p);
    p.serial_number = Some(serial()?);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.distinguished_name
        .push(DnType::CommonName, "ramux throwaway lab CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = p.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(p, key)))
}

/// A certificate for `cn` signed by the CA, and its private key (PKCS#8 PEM).
fn make_leaf(
    ca: &Issuer<'_, KeyPair>,
    cn: &str,
    extra_names: &[String],
    eku: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let mut names = vec![cn.to_string()];
    names.extend(extra_names.iter().cloned());
    let mut p = CertificateParams::new(names)?;
    validity(&mut p);
    p.serial_number = Some(serial()?);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("/dev/urandom")?;
    Ok(b)
}

fn random_hex(n: usize) -> Result<String> {
    Ok(crate::hex(&random_bytes(n)?))
}

/// The NT hash FreeRADIUS's `NT-Password` takes: MD4 of the UTF-16LE password, in hex.
pub fn nt_hash(password: &str) -> String {
    use md4::{Digest, Md4};
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    crate::hex(&Md4::digest(&utf16))
}

/// Reads `dir` as the packer sees it (lstat, no link followed), paths sorted; `only` (paths
/// relative to `dir`) narrows it, else everything but [`CLIENTS_DIR`].
pub fn read_dir(dir: &Path, only: &[String]) -> Result<Vec<HostEntry>> {
    let mut out = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for e in walk {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let rel = e.path().strip_prefix(dir)?.to_string_lossy().into_owned();
        if !selected(&rel, only) {
            continue;
        }
        out.push(host_entry(e.path(), rel)?);
    }
    if let Some(missing) = only.iter().find(|o| !out.iter().any(|e| &e.path == *o)) {
        bail!("{}: no such file or directory", dir.join(missing).display());
    }
    Ok(out)
}

/// `rel` is packed: below or above a path of `only` (its parents are needed), or, without
/// `only`, anywhere but the client certificates.
fn selected(rel: &str, only: &[String]) -> bool {
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    if only.is_empty() {
        return !under(rel, CLIENTS_DIR);
    }
    only.iter().any(|o| under(rel, o) || under(o, rel))
}

fn host_entry(path: &Path, rel: String) -> Result<HostEntry> {
    let m = fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    let kind = if m.file_type().is_symlink() {
        HostKind::Symlink
    } else if m.is_dir() {
        HostKind::Dir
    } else if m.is_file() {
        let data = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        HostKind::File(data)
    } else {
        HostKind::Other
    };
    Ok(HostEntry {
        path: rel,
        mode: m.mode() & 0o7777,
        kind,
    })
}

/// Packs `dir` (see [`read_dir`] for `only`) into an overlay; errors name the host path.
pub fn pack(dir: &Path, only: &[String]) -> Result<Vec<u8>> {
    let entries = read_dir(dir, only)?;
    contract::pack(&entries).map_err(|e| anyhow!("{}/{e}", dir.display()))
}

/// Writes an overlay as FILE with mode 0600 (through a temp file of mode 0600 and a rename).
pub fn write_overlay(file: &Path, bytes: &[u8]) -> Result<()> {
    crate::write_atomic(file, bytes)?;
    fs::set_permissions(file, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", file.display()))
}

/// `vbuild secrets list FILE`: one line per entry (mode, size, sha256, path), content never.
pub fn list(file: &Path) -> Result<String> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let plan = contract::unpack_plan(&bytes).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut out = String::new();
    for d in &plan.dirs {
        out.push_str(&format!(
            "d{:04o} {:>7} {:64} {d}/\n",
            contract::DIR_MODE,
            "-",
            ""
        ));
    }
    for f in &plan.files {
        let sum = contract::sha256_hex(&f.data);
        out.push_str(&format!(
            "-{:04o} {:>7} {sum} {}\n",
            f.mode,
            f.data.len(),
            f.path
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vpn_server_named_by_flag_and_site_is_made_once() {
        let mut v = vec![
            ("vpn1".to_string(), None),
            ("vpn9".to_string(), Some("x.example".into())),
        ];
        let site = [
            ("vpn1".to_string(), Some("vpn1.lab.demo.fr".to_string())),
            ("vpn9".to_string(), Some("vpn9.lab.demo.fr".to_string())),
            ("vpn2".to_string(), Some("vpn2.lab.demo.fr".to_string())),
        ];
        merge_vpn(&mut v, &site);
        assert_eq!(
            v,
            [
                ("vpn1".to_string(), Some("vpn1.lab.demo.fr".to_string())),
                ("vpn9".to_string(), Some("x.example".to_string())),
                ("vpn2".to_string(), Some("vpn2.lab.demo.fr".to_string())),
            ]
        );
    }

    #[test]
    fn nt_hash_matches_the_known_vectors() {
        assert_eq!(nt_hash("password"), "8846f7eaee8fb117ad06bdd830b7586c");
        assert_eq!(nt_hash(""), "31d6cfe0d16ae931b73c59d7e0c089c0");
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vbuild-secrets-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn openssl_verify(dir: &Path, purpose: &str, cert: &str) {
        let out = std::process::Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(dir.join(CA_CERT))
            .arg(dir.join(cert))
            .output()
            .expect("openssl (Debian package openssl)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(": OK"),
            "{text}{out:?}"
        );
    }

    #[test]
    fn init_makes_a_pki_the_ca_verifies_with_private_modes() {
        let dir = tmp("init");
        let req = InitRequest {
            dir: dir.clone(),
            nas: vec!["sw1".into(), "vpn1".into()],
            users: vec![("alice".into(), "password".into())],
            cns: vec!["alice".into()],
        };
        let files = init(&req).unwrap();
        assert_eq!(files.len(), 8, "{files:?}");
        for f in &files {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        for d in ["", "pki", CLIENTS_DIR, "radius", NAS_DIR] {
            assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
        }
        openssl_verify(&dir, "sslserver", RADIUS_CERT);
        openssl_verify(&dir, "sslclient", "pki/clients/alice.crt");
        let nt = fs::read_to_string(dir.join(DOT1X_NT)).unwrap();
        assert_eq!(nt, "alice 8846f7eaee8fb117ad06bdd830b7586c\n");
        let sw1 = fs::read_to_string(dir.join("radius/nas/sw1")).unwrap();
        let vpn1 = fs::read_to_string(dir.join("radius/nas/vpn1")).unwrap();
        assert!(sw1.len() == 33 && sw1 != vpn1, "{sw1:?} {vpn1:?}");
        let e = init(&req).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        let bytes = pack(&dir, &[]).unwrap();
        assert_eq!(pack(&dir, &[]).unwrap(), bytes, "reproducible");
        let plan = contract::unpack_plan(&bytes).unwrap();
        assert!(plan.files.iter().all(|f| !f.path.starts_with(CLIENTS_DIR)));
        assert_eq!(plan.files.len(), 6);
        fs::set_permissions(dir.join(RADIUS_KEY), fs::Permissions::from_mode(0o640)).unwrap();
        let e = pack(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("pki/radius.key: mode 0640"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn selection_keeps_parents_and_leaves_clients_out() {
        assert!(selected("pki/radius.key", &[]));
        assert!(!selected("pki/clients/alice.key", &[]));
        assert!(!selected("pki/clients", &[]));
        let only = vec!["pki/clients/alice.key".to_string()];
        assert!(selected("pki", &only));
        assert!(selected("pki/clients", &only));
        assert!(selected("pki/clients/alice.key", &only));
        assert!(!selected("pki/radius.key", &only));
    }
}
