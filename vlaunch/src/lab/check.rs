//! `vlaunch lab validate` and the first step of `up`: the lab file's own checks (ramux-lab),
//! the site checks when the site can be read, and the host checks (ISOs, uplink bridges)
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
    /// Why the site checks did not run, when the lab names a site.
    pub site_note: Option<String>,
}

impl LabCheck {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn ok(&self) -> bool {
        self.lab.is_some() && self.errors() == 0
    }
}

/// Why the site file is not read yet: ramux-lab has no labwall-backed `SiteFacts` reader.
const NO_SITE_READER: &str = "site checks skipped: reading the site file into ramux-lab's \
                              SiteFacts is not implemented yet";

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
                site_note: None,
            };
        }
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut site_note = None;
    let checked = ramux_lab::check_text_with(&text, &file, dir, &mut |_| {
        site_note = Some(NO_SITE_READER.to_string());
        Err(String::new())
    });
    let mut diagnostics = checked.diagnostics;
    if let (Some(lab), Some(h)) = (&checked.lab, host) {
        diagnostics.extend(ramux_lab::host::check_host(lab, h, false));
    }
    LabCheck {
        lab: checked.lab,
        diagnostics,
        site_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
