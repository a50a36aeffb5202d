//! `vlaunch lab up --build`: every enabled node's ISO that is missing or stale is built through
//! vbuild's library before anything starts, with the lab's site baked into routers and a
//! client's `address` (and host name) as template variables. Stale: the ISO's manifest names
//! an input file whose content differs today, a ramux binary that changed, or other `--set`
//! values, profile or role than the node asks for. Files added to a profile since the build are
//! not seen (the manifest lists what was used): rebuild with vbuild when you add some.

use anyhow::{bail, Context, Result};
use ramux_lab::model::{Address, Gateway, Lab, Node};
use ramux_lab::SiteFacts;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checkout vbuild builds from: the nearest ancestor of the lab's directory with a
/// `profiles/` directory.
pub fn checkout_root(lab_dir: &Path) -> Result<PathBuf> {
    let start = std::fs::canonicalize(lab_dir).unwrap_or_else(|_| lab_dir.to_path_buf());
    start
        .ancestors()
        .find(|d| d.join("profiles").is_dir())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "--build: no profiles/ directory above {}: keep the lab file inside a ramux \
                 checkout, or build the ISOs with vbuild",
                start.display()
            )
        })
}

/// The `--set` variables of a node: a role-less node's host name (a router keeps its role's,
/// which its site may use) and a client's address as the lab says.
pub fn sets_for(node: &Node, site: Option<&SiteFacts>) -> Result<Vec<(String, String)>> {
    let mut sets = Vec::new();
    if node.role.is_none() {
        sets.push(("hostname".to_string(), node.name.value.to_lowercase()));
    }
    match node.address.value {
        Address::Unset => {}
        Address::Dhcp => sets.push(("address".into(), "dhcp".into())),
        Address::Static {
            addr,
            prefix,
            gateway,
        } => {
            sets.push(("address".into(), format!("{addr}/{prefix}")));
            if let Some(g) = gateway_of(node, gateway, site)? {
                sets.push(("gateway".into(), g));
            }
        }
    }
    Ok(sets)
}

/// `via vip` is the VIP of the VLAN of the node's first NIC (from the site).
fn gateway_of(node: &Node, gw: Gateway, site: Option<&SiteFacts>) -> Result<Option<String>> {
    match gw {
        Gateway::None => Ok(None),
        Gateway::Addr(a) => Ok(Some(a.to_string())),
        Gateway::Vip => {
            let name = &node.name.value;
            let site = site.with_context(|| format!("{name}: `via vip` needs the lab's site"))?;
            let vid = node.nics.first().map(|c| c.vlan.value.vids());
            let vip = vid
                .into_iter()
                .flatten()
                .find_map(|v| site.vips.get(&v).copied());
            match vip {
                Some(v) => Ok(Some(v.to_string())),
                None => bail!("{name}: `via vip`: the site has no VIP in the VLAN of its eth0"),
            }
        }
    }
}

/// The vbuild request that makes `node`'s ISO.
pub fn request(
    lab: &Lab,
    node: &Node,
    root: &Path,
    site: Option<&SiteFacts>,
) -> Result<vbuild::build::BuildRequest> {
    let role = node
        .role
        .as_ref()
        .map(|r| r.value.to_string())
        .unwrap_or_default();
    // An instance profile (dns) is built as the site's instance of the node's name.
    let per_instance =
        vbuild::profile::load(root, &node.profile.value).is_ok_and(|p| p.instances.is_some());
    let site_path = (node.profile.value == "router" || per_instance)
        .then(|| lab.site.as_ref().map(|s| s.value.clone()))
        .flatten();
    let mut sets = sets_for(node, site)?;
    if per_instance {
        sets.retain(|(k, _)| k != "hostname");
        sets.push(("instance".into(), node.instance()));
    }
    Ok(vbuild::build::BuildRequest {
        root: root.to_path_buf(),
        profile: node.profile.value.clone(),
        role,
        sets,
        site: site_path,
        out: Some(node.iso.clone()),
        quiet: true,
        ..Default::default()
    })
}

/// The manifest of a built ISO, as far as staleness needs it.
#[derive(serde::Deserialize)]
struct Built {
    profile: String,
    role: String,
    hostname: String,
    inputs: BTreeMap<String, String>,
    set: BTreeMap<String, String>,
}

/// Why `req`'s ISO must be (re)built, or None when it is up to date. `bin_dir`: where the
/// ramux binaries the image would carry are (manifest keys `bin/NAME`).
pub fn stale_reason(req: &vbuild::build::BuildRequest, bin_dir: &Path) -> Option<String> {
    let iso = req.out.as_ref()?;
    if !iso.is_file() {
        return Some("missing".into());
    }
    let mpath = vbuild::manifest::path_for(iso);
    let Some(m) = std::fs::read(&mpath)
        .ok()
        .and_then(|b| serde_json::from_slice::<Built>(&b).ok())
    else {
        return Some(format!("no readable manifest {}", mpath.display()));
    };
    let role = if req.role.is_empty() {
        "-".to_string()
    } else {
        req.role.to_uppercase()
    };
    if m.profile != req.profile || m.role != role {
        return Some(format!(
            "built as {} {}, wanted {} {role}",
            m.profile, m.role, req.profile
        ));
    }
    // The manifest keeps the host name apart from the other `--set` values.
    let mut want: BTreeMap<String, String> = req.sets.iter().cloned().collect();
    if let Some(h) = want.remove("hostname") {
        if h != m.hostname {
            return Some(format!("built as host {}, wanted {h}", m.hostname));
        }
    }
    if m.set != want {
        return Some(format!("built with --set {:?}, wanted {:?}", m.set, want));
    }
    m.inputs.iter().find_map(|(key, sum)| {
        let path = match key.strip_prefix("bin/") {
            Some(b) => bin_dir.join(b),
            None => req.root.join(key),
        };
        let now = vbuild::build::input_sum(&path).ok();
        (now.as_deref() != Some(sum.as_str())).then(|| format!("{key} changed since the build"))
    })
}

/// Where vbuild takes the ramux binaries from: `$RAMUX_BIN_DIR`, else beside this program.
fn bin_dir() -> PathBuf {
    std::env::var_os("RAMUX_BIN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()?
                .parent()
                .map(Path::to_path_buf)
        })
        .unwrap_or_default()
}

/// Builds every missing or stale ISO of `nodes`, one after another, saying each.
pub fn build_missing(
    lab: &Lab,
    nodes: &[String],
    site: Option<&SiteFacts>,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let root = checkout_root(&lab.dir)?;
    let bins = bin_dir();
    let mut planned: Vec<(String, vbuild::build::BuildRequest)> = Vec::new();
    for name in nodes {
        let node = lab.node(name).context("selected nodes exist")?;
        let req = request(lab, node, &root, site)?;
        if let Some((other, r)) = planned.iter().find(|(_, r)| r.out == req.out) {
            if r.sets != req.sets || r.role != req.role || r.profile != req.profile {
                bail!(
                    "{name} and {other} share the ISO {} but need different builds ({:?} / {:?}): \
                     give one of them its own `iso`",
                    node.iso.display(),
                    req.sets,
                    r.sets
                );
            }
            continue;
        }
        planned.push((name.clone(), req.clone()));
        let Some(why) = stale_reason(&req, &bins) else {
            say(&format!("{name}: {} is up to date", node.iso.display()));
            continue;
        };
        say(&format!("{name}: building {} ({why})", node.iso.display()));
        let t0 = std::time::Instant::now();
        let r = vbuild::build_iso(&req).with_context(|| format!("{name}: building its ISO"))?;
        say(&format!(
            "{name}: built {} in {:.1} s ({} MiB)",
            r.iso.display(),
            t0.elapsed().as_secs_f64(),
            r.size >> 20
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/router/site.lw");
        let text = format!(
            "name = \"t\"\nsite = {site:?}\nimages = \"img\"\n\
             [switch.s]\nvlans = {{ 10 = \"a\", 20 = \"b\", 99 = \"x\" }}\n\
             [node.RT1]\nprofile = \"router\"\nrole = \"MASTER\"\n\
             nics = [ {{ switch = \"s\", trunk = [10, 20] }}, {{ switch = \"s\", access = 99 }} ]\n\
             [node.MV2]\nprofile = \"client\"\naddress = \"172.16.20.50/24 via vip\"\n\
             nics = [ {{ switch = \"s\", access = 20 }} ]\n"
        );
        let d = Path::new("/l");
        let c =
            ramux_lab::check_text_with(&text, "lab.toml", d, &mut ramux_lab::sitefile::site_facts);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        c.lab.unwrap()
    }

    #[test]
    fn a_client_gets_its_address_and_the_vip_of_its_vlan() {
        let l = lab();
        let site =
            ramux_lab::sitefile::site_facts(l.site.as_ref().unwrap().value.as_path()).unwrap();
        let mv2 = l.node("MV2").unwrap();
        let sets = sets_for(mv2, Some(&site)).unwrap();
        let want = [
            ("hostname", "mv2"),
            ("address", "172.16.20.50/24"),
            ("gateway", "172.16.20.1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(sets, want);
        assert!(mv2.iso.ends_with("img/MV2.iso"), "{}", mv2.iso.display());
        assert!(sets_for(l.node("RT1").unwrap(), Some(&site))
            .unwrap()
            .is_empty());
        assert!(sets_for(mv2, None).is_err(), "via vip needs the site");
    }

    #[test]
    fn a_dns_node_is_built_as_the_site_instance_of_its_name() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let l = lab();
        let text = "name = \"t\"\n[node.DNS1]\nprofile = \"dns\"\n";
        let c = ramux_lab::check_text(text, "lab.toml", Path::new("/l"), None);
        let dns = c.lab.unwrap().nodes.remove(0);
        let r = request(&l, &dns, &root, None).unwrap();
        assert_eq!(r.sets, [("instance".to_string(), "dns1".to_string())]);
        assert_eq!(r.site, l.site.as_ref().map(|s| s.value.clone()));
    }

    #[test]
    fn staleness_follows_the_manifest() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::write(root.join("in.txt"), "one").unwrap();
        let iso = root.join("x.iso");
        let req = vbuild::build::BuildRequest {
            root: root.to_path_buf(),
            profile: "client".into(),
            sets: vec![("address".into(), "dhcp".into())],
            out: Some(iso.clone()),
            ..Default::default()
        };
        assert_eq!(stale_reason(&req, root).as_deref(), Some("missing"));
        std::fs::write(&iso, "iso").unwrap();
        assert!(stale_reason(&req, root)
            .unwrap()
            .contains("no readable manifest"));
        let sum = vbuild::sha256_file(&root.join("in.txt")).unwrap();
        let manifest = |set: &str| {
            format!(
                r#"{{"profile":"client","role":"-","hostname":"c","inputs":{{"in.txt":"{sum}"}},"set":{{"address":"{set}"}}}}"#
            )
        };
        std::fs::write(root.join("x.iso.manifest.json"), manifest("dhcp")).unwrap();
        assert_eq!(stale_reason(&req, root), None);
        std::fs::write(root.join("x.iso.manifest.json"), manifest("10.0.0.1/24")).unwrap();
        assert!(stale_reason(&req, root).unwrap().contains("--set"));
        std::fs::write(root.join("x.iso.manifest.json"), manifest("dhcp")).unwrap();
        std::fs::write(root.join("in.txt"), "two").unwrap();
        assert_eq!(
            stale_reason(&req, root).as_deref(),
            Some("in.txt changed since the build")
        );
    }
}
