//! `vlaunch lab validate` and the first step of `up`: the lab file's own checks (ramux-lab),
//! the site checks (the site file read through labwall), and the host checks (ISOs, uplink
//! bridges, a forwarding host on several lab VLANs) answered from this machine.

use ramux_lab::host::{HostFacts, HostIface};
use ramux_lab::{Diagnostic, Lab};
use std::net::Ipv4Addr;
use std::path::Path;

/// [`HostFacts`] of this machine: the file system, `/sys/class/net`, `ip -j -4 addr` and
/// `/proc/sys/net/ipv4/conf/*/forwarding` (of the network namespace `vlaunch` runs in).
pub struct RealHost;

/// The host's interfaces with their IPv4 addresses (`ip -j -4 addr`; none when `ip` fails).
pub fn interfaces() -> Vec<HostIface> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-4", "addr"])
        .output();
    let Ok(out) = out else { return vec![] };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let list = v.as_array().cloned().unwrap_or_default();
    list.iter().filter_map(iface_of).collect()
}

/// One entry of `ip -j addr` with its forwarding flag.
fn iface_of(v: &serde_json::Value) -> Option<HostIface> {
    let name = v["ifname"].as_str()?.to_string();
    let addrs = v["addr_info"]
        .as_array()?
        .iter()
        .filter_map(|a| {
            let ip = a["local"].as_str()?.parse().ok()?;
            Some((ip, u8::try_from(a["prefixlen"].as_u64()?).ok()?))
        })
        .collect();
    let flag = format!("/proc/sys/net/ipv4/conf/{name}/forwarding");
    let forwarding = std::fs::read_to_string(flag).is_ok_and(|s| s.trim() == "1");
    Some(HostIface {
        name,
        addrs,
        forwarding,
    })
}

/// Every IPv4 address of this host (picks a VXLAN trunk's local end).
pub fn local_ipv4s() -> Vec<Ipv4Addr> {
    interfaces()
        .into_iter()
        .flat_map(|i| i.addrs.into_iter().map(|(a, _)| a))
        .collect()
}

impl HostFacts for RealHost {
    fn file_exists(&self, path: &Path) -> bool {
        path.is_file()
    }
    fn bridge_exists(&self, name: &str) -> bool {
        Path::new("/sys/class/net")
            .join(name)
            .join("bridge")
            .is_dir()
    }
    fn interfaces(&self) -> Vec<HostIface> {
        interfaces()
    }
}

/// What the checks found.
#[derive(Debug, Clone)]
pub struct LabCheck {
    /// The lab as far as it could be read (also with errors, for `graph`).
    pub lab: Option<Lab>,
    /// Every diagnostic: the file's and the site's in file order, then the host's.
    pub diagnostics: Vec<Diagnostic>,
    /// The site file's facts, when the lab names a site that compiles.
    pub site: Option<ramux_lab::SiteFacts>,
}

impl LabCheck {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn ok(&self) -> bool {
        self.lab.is_some() && self.errors() == 0
    }
}

/// Reads and checks the lab at `path`; with `host`, also the host checks.
pub fn check(path: &Path, host: Option<&dyn HostFacts>) -> LabCheck {
    check_for(path, host, false, None)
}

/// [`check`]; `build`: missing ISOs are not errors (`up --build` makes them); `only`: the host
/// checks look at these nodes' ISOs alone (each host of a multi-host lab has its own).
pub fn check_for(
    path: &Path,
    host: Option<&dyn HostFacts>,
    build: bool,
    only: Option<&[String]>,
) -> LabCheck {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            let c = ramux_lab::check_file(path, None);
            return LabCheck {
                lab: c.lab,
                diagnostics: c.diagnostics,
                site: None,
            };
        }
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    // The site file is read through labwall, so a lab and its site cannot disagree unnoticed;
    // its facts are kept for the forwarding check.
    let mut facts = None;
    let checked = ramux_lab::check_text_with(&text, &file, dir, &mut |p| {
        let r = ramux_lab::sitefile::site_facts(p);
        facts = r.as_ref().ok().cloned();
        r
    });
    let mut diagnostics = checked.diagnostics;
    if let (Some(lab), Some(h)) = (&checked.lab, host) {
        diagnostics.extend(ramux_lab::host::check_host(&selected(lab, only), h, build));
        if let Some(site) = &facts {
            diagnostics.extend(ramux_lab::host::check_forwarding(lab, site, h));
        }
    }
    LabCheck {
        lab: checked.lab,
        diagnostics,
        site: facts,
    }
}

/// `lab` with the nodes outside `only` disabled (what this host does not start).
fn selected(lab: &Lab, only: Option<&[String]>) -> Lab {
    let mut l = lab.clone();
    if let Some(only) = only {
        for n in &mut l.nodes {
            n.enabled &= only.contains(&n.name.value);
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_selected_nodes_need_their_iso() {
        struct NoFiles;
        impl HostFacts for NoFiles {
            fn file_exists(&self, _: &Path) -> bool {
                false
            }
            fn bridge_exists(&self, _: &str) -> bool {
                true
            }
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lab.toml");
        let lab = "name = \"t\"\n[node.a]\nprofile = \"client\"\n[node.b]\nprofile = \"client\"\n";
        std::fs::write(&p, lab).unwrap();
        assert_eq!(check_for(&p, Some(&NoFiles), false, None).errors(), 2);
        let only = ["a".to_string()];
        assert_eq!(
            check_for(&p, Some(&NoFiles), false, Some(&only)).errors(),
            1
        );
    }

    #[test]
    fn site_checks_read_the_site_through_labwall() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lab.toml");
        let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/router/site.lw");
        let lab = |trunk: &str| {
            format!(
                "name = \"t\"\nsite = {site:?}\n[switch.s]\nvlans = {{ 10 = \"a\", 20 = \"b\", 99 = \"x\" }}\n\
                 [node.RT1]\nprofile = \"router\"\nrole = \"MASTER\"\n\
                 nics = [ {{ switch = \"s\", trunk = {trunk} }}, {{ switch = \"s\", access = 99 }} ]\n"
            )
        };
        std::fs::write(&p, lab("[10, 20]")).unwrap();
        let c = check(&p, None);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        std::fs::write(&p, lab("[10]")).unwrap();
        let text = ramux_lab::render_all(&check(&p, None).diagnostics);
        assert!(text.contains("lacks VLAN 20"), "{text}");
    }

    #[test]
    fn host_checks_name_the_missing_iso() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lab.toml");
        std::fs::write(
            &p,
            "name = \"t\"\n[switch.s]\nvlans = { 10 = \"a\" }\n[node.c]\nprofile = \"client\"\n\
             nics = [ { switch = \"s\", access = 10 } ]\n",
        )
        .unwrap();
        let c = check(&p, None);
        assert!(c.ok(), "{:?}", c.diagnostics);
        let c = check(&p, Some(&RealHost));
        assert_eq!(c.errors(), 1);
        let text = ramux_lab::render_all(&c.diagnostics);
        assert!(text.contains("the ISO of c is missing"), "{text}");
        assert!(!RealHost.bridge_exists("no-such-bridge0"));
    }

    #[test]
    fn interfaces_from_ip_json() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
                {"ifname":"x","addr_info":[]}]"#,
        )
        .unwrap();
        let i = iface_of(&v[0]).unwrap();
        assert_eq!(i.addrs, [("127.0.0.1".parse().unwrap(), 8)]);
        assert!(iface_of(&v[1]).unwrap().addrs.is_empty());
        assert!(local_ipv4s().contains(&Ipv4Addr::LOCALHOST));
    }
}
