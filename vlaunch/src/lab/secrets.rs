//! The lab's site secrets (`secrets = "DIR"` at the top of the lab file): a throwaway set made
//! from the site when the directory does not exist (`vbuild secrets init` with the site's NAS
//! secret names, 802.1X users and certificate CNs), and one overlay packed from it per node
//! with `secrets = true`, handed to the VM as fw_cfg like `vlaunch --secrets`
//! (docs/secrets.md). A real site's secrets are never made here: name an existing directory.

use super::state::LabDir;
use anyhow::{anyhow, Context, Result};
use labwall::aaa::IdentityKind;
use ramux_lab::model::{Lab, Node};
use std::path::{Path, PathBuf};

/// Where the overlay of `node` is written (in the lab's state directory, mode 0600).
pub fn overlay_path(dir: &LabDir, node: &Node) -> PathBuf {
    dir.0
        .join("secrets")
        .join(format!("{}.cpio", node.name.value))
}

/// Makes the lab's secrets directory if it is missing, then packs the overlay of every
/// selected node with `secrets = true`.
pub fn prepare(lab: &Lab, dir: &LabDir, nodes: &[String], say: &mut dyn FnMut(&str)) -> Result<()> {
    let wanted: Vec<&Node> = nodes
        .iter()
        .filter_map(|n| lab.node(n))
        .filter(|n| n.lab_secrets)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let src = lab
        .secrets
        .as_ref()
        .map(|s| s.value.clone())
        .ok_or_else(|| anyhow!("nodes take the lab's secrets, but the lab names no `secrets`"))?;
    if !src.exists() {
        make_throwaway(lab, &src, say)?;
    }
    for n in wanted {
        let only = needed(&n.iso).with_context(|| n.name.value.clone())?;
        let bytes = vbuild::secrets::pack(&src, &only).with_context(|| {
            format!(
                "{}: its image {} needs {} from the lab's secrets (add what is missing, or \
                 remove {} for a throwaway set)",
                n.name.value,
                n.iso.display(),
                only.join(" "),
                src.display()
            )
        })?;
        let out = overlay_path(dir, n);
        std::fs::create_dir_all(out.parent().expect("has a parent"))?;
        vbuild::secrets::write_overlay(&out, &bytes)?;
    }
    Ok(())
}

/// A VPN server the set makes a certificate for, with its public name.
type VpnServer = (String, Option<String>);

/// The secrets the node's image says its services need (its manifest's `secrets`): only these
/// are packed, so a VPN server never carries the 802.1X users' hashes or another server's key.
fn needed(iso: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        secrets: std::collections::BTreeMap<String, Vec<String>>,
    }
    let mpath = vbuild::manifest::path_for(iso);
    let bytes = std::fs::read(&mpath).with_context(|| format!("reading {}", mpath.display()))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is no vbuild manifest", mpath.display()))?;
    let mut all: Vec<String> = m.secrets.into_values().flatten().collect();
    all.sort();
    all.dedup();
    if all.is_empty() {
        anyhow::bail!(
            "`secrets = true`, but the image {} has no service that needs a secret (its \
             manifest lists none): remove `secrets`",
            iso.display()
        );
    }
    Ok(all)
}

/// What a throwaway set for the site holds: NAS secret names, 802.1X users (random
/// passwords), certificate CNs (802.1X CNs and VPN users), and the VPN servers (their
/// certificates and the site's tls-crypt key): vbuild's [`vbuild::secrets::site_names`].
pub fn request_for(
    site: &labwall::model::Site,
    dir: &Path,
) -> Result<(vbuild::secrets::InitRequest, Vec<VpnServer>)> {
    let names = vbuild::secrets::site_names(site);
    let mut users = Vec::new();
    for id in &site.services.dot1x {
        if id.kind == IdentityKind::User {
            users.push((id.name.clone(), random_password()?));
        }
    }
    let (mut nas, mut cns) = (names.nas, names.cns);
    for v in [&mut nas, &mut cns] {
        v.sort();
        v.dedup();
    }
    let req = vbuild::secrets::InitRequest {
        dir: dir.to_path_buf(),
        nas,
        users,
        cns,
    };
    Ok((req, names.vpn))
}

fn random_password() -> Result<String> {
    let mut b = [0u8; 12];
    getrandom(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

/// `vbuild secrets init` for the lab's site; the users' passwords go beside their client
/// certificates (`pki/clients/<user>.password`, never packed), for the lab's own clients.
fn make_throwaway(lab: &Lab, dir: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let site = lab
        .site
        .as_ref()
        .ok_or_else(|| anyhow!("the lab's secrets are made from its site: add `site`"))?;
    let m = ramux_lab::sitefile::site_model(&site.value).map_err(anyhow::Error::msg)?;
    let (req, vpn) = request_for(&m.master.site, dir)?;
    vbuild::secrets::init_with_vpn(&req, &vpn)?;
    for (user, pw) in &req.users {
        let f = dir
            .join(vbuild::secrets::CLIENTS_DIR)
            .join(format!("{user}.password"));
        write_private(&f, format!("{pw}\n").as_bytes())?;
    }
    say(&format!(
        "secrets: {} did not exist: made a throwaway set for the site (NAS {}, users {}, CNs {}, VPN servers {})",
        dir.display(),
        req.nas.join(" "),
        req.users
            .iter()
            .map(|u| u.0.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        req.cns.join(" "),
        vpn.iter().map(|v| v.0.as_str()).collect::<Vec<_>>().join(" ")
    ));
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throwaway_set_covers_the_sites_nas_users_and_cns() {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/router/site.lw");
        let m = ramux_lab::sitefile::site_model(&site).unwrap();
        let (r, vpn) = request_for(&m.master.site, Path::new("/x")).unwrap();
        assert_eq!(r.nas, ["sw1", "vpn1", "vpn2"]);
        let servers: Vec<&str> = vpn.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(servers, ["vpn1", "vpn2"]);
        let users: Vec<&str> = r.users.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(users, ["alice", "bob"]);
        assert!(r
            .users
            .iter()
            .all(|u| u.1.len() == 24 && u.1 != r.users[0].1 || u.0 == "alice"));
        assert_eq!(r.cns, ["alice", "alice-8021x", "bob"]);
    }

    /// Only what the image's manifest lists is packed; a missing one is named.
    #[test]
    fn a_node_gets_the_secrets_its_image_needs_and_no_more() {
        let t = tempfile::tempdir().unwrap();
        let iso = t.path().join("vpn1.iso");
        let m = r#"{"secrets":{"openvpn-vlan10":["pki/ca.crt","vpn/tls-crypt.key"],"vpn-auth":["radius/nas/vpn1"]}}"#;
        std::fs::write(t.path().join("vpn1.iso.manifest.json"), m).unwrap();
        let only = needed(&iso).unwrap();
        assert_eq!(only, ["pki/ca.crt", "radius/nas/vpn1", "vpn/tls-crypt.key"]);
        let dir = t.path().join("secrets");
        let put = |f: &str| {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let p = dir.join(f);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(p.parent().unwrap())
                .unwrap();
            std::fs::write(&p, "x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        put("pki/ca.crt");
        put("radius/nas/vpn1");
        put("radius/dot1x.nt");
        let e = vbuild::secrets::pack(&dir, &only).unwrap_err().to_string();
        assert!(e.contains("vpn/tls-crypt.key: no such file"), "{e}");
        put("vpn/tls-crypt.key");
        let packed = vbuild::secrets::pack(&dir, &only).unwrap();
        let text = String::from_utf8_lossy(&packed);
        assert!(text.contains("tls-crypt.key") && !text.contains("dot1x.nt"));
        std::fs::write(t.path().join("vpn1.iso.manifest.json"), "{}").unwrap();
        assert!(needed(&iso)
            .unwrap_err()
            .to_string()
            .contains("remove `secrets`"));
    }
}
