//! `vlaunch lab validate` and the first step of `up`: the lab file's own checks (ramux-lab),
//! the site checks (the site file read through labwall), and the host checks (ISOs, uplink bridges)
//! answered from this machine.

use ramux_lab::host::HostFacts;
use ramux_lab::{Diagnostic, Lab};
use std::path::Path;

/// [`HostFacts`] of this machine: the file system and `/sys/class/net`.
pub struct RealHost;

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
}

/// What the checks found.
#[derive(Debug, Clone)]
pub struct LabCheck {
    /// The lab as far as it could be read (also with errors, for `graph`).
    pub lab: Option<Lab>,
    /// Every diagnostic: the file's and the site's in file order, then the host's.
    pub diagnostics: Vec<Diagnostic>,
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
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            let c = ramux_lab::check_file(path, None);
            return LabCheck {
                lab: c.lab,
                diagnostics: c.diagnostics,
            };
        }
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    // The site file is read through labwall, so a lab and its site cannot disagree unnoticed.
    let checked =
        ramux_lab::check_text_with(&text, &file, dir, &mut ramux_lab::sitefile::site_facts);
    let mut diagnostics = checked.diagnostics;
    if let (Some(lab), Some(h)) = (&checked.lab, host) {
        diagnostics.extend(ramux_lab::host::check_host(lab, h, false));
    }
    LabCheck {
        lab: checked.lab,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
