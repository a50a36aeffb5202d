//! The site secrets overlay at boot (docs/secrets.md): read from QEMU's fw_cfg when the host
//! gave one, checked ([`ramux_contract::secrets::unpack_plan`]), written into
//! [`RUN_DIR`] (tmpfs, `0700`, files `0600`), and the services' `secrets` checked before they
//! start, so a role whose key is missing or was exposed fails loudly instead of half-working.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ramux_contract::secrets::{unpack_plan, Plan, MAX_OVERLAY};
pub use ramux_contract::secrets::{FW_CFG_NAME, FW_CFG_RAW, RUN_DIR};

/// What the boot put into [`RUN_DIR`], for the services' checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Files written.
    pub files: usize,
    /// Files the overlay carried readable by others (not written): path -> packed mode.
    pub refused: BTreeMap<String, u32>,
}

/// Creates [`RUN_DIR`] and fills it from fw_cfg when present, else from the overlay the site
/// key carried (`from_key`, docs/keep.md). Returns what was installed and the console lines to
/// print (failures as `ramux: failed secrets: ...`).
pub fn install(from_key: Option<&[u8]>) -> (Installed, Vec<String>) {
    let mut lines = Vec::new();
    if let Err(e) = make_dir(Path::new(RUN_DIR)) {
        lines.push(fail(&format!("{RUN_DIR}: {e}")));
        return (Installed::default(), lines);
    }
    let (source, bytes) = if Path::new(FW_CFG_RAW).exists() {
        (
            format!("fw_cfg {FW_CFG_NAME}"),
            read_raw(Path::new(FW_CFG_RAW)),
        )
    } else if let Some(b) = from_key {
        (
            format!("the key's {}", crate::keep::SECRETS_FILE),
            Ok(b.to_vec()),
        )
    } else {
        return (Installed::default(), lines);
    };
    let plan = match bytes.and_then(|b| unpack_plan(&b)) {
        Ok(p) => p,
        Err(e) => {
            lines.push(fail(&format!("{source}: {e} (nothing installed)")));
            return (Installed::default(), lines);
        }
    };
    let (installed, mut errors) = write_plan(Path::new(RUN_DIR), &plan);
    lines.append(&mut errors);
    lines.push(format!(
        "ramux: secrets: {} files from {source} in {RUN_DIR}",
        installed.files
    ));
    (installed, lines)
}

fn fail(reason: &str) -> String {
    crate::console::failed_line("secrets", reason)
}

/// Reads at most [`MAX_OVERLAY`] + 1 bytes, so an oversized item is refused without filling RAM.
pub(crate) fn read_raw(path: &Path) -> Result<Vec<u8>, String> {
    let f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_OVERLAY as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}

fn make_dir(p: &Path) -> std::io::Result<()> {
    if !p.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)?;
    }
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
}

/// Writes a checked plan below `root`: directories `0700`, files `0600` (created new, never
/// through an existing link); a file packed readable by others is refused, not written.
pub fn write_plan(root: &Path, plan: &Plan) -> (Installed, Vec<String>) {
    let mut inst = Installed::default();
    let mut lines = Vec::new();
    for d in &plan.dirs {
        if let Err(e) = make_dir(&root.join(d)) {
            lines.push(fail(&format!("{d}: {e}")));
        }
    }
    for f in &plan.files {
        if f.exposed() {
            lines.push(fail(&format!(
                "{}: packed with mode {:04o}, readable by others: not installed",
                f.path, f.mode
            )));
            inst.refused.insert(f.path.clone(), f.mode);
            continue;
        }
        match write_file(&root.join(&f.path), &f.data) {
            Ok(()) => inst.files += 1,
            Err(e) => lines.push(fail(&format!("{}: {e}", f.path))),
        }
    }
    (inst, lines)
}

fn write_file(p: &Path, data: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(p);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)?;
    f.write_all(data)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
}

/// Why a service needing `secrets` must not start, or `Ok`: each name must be below `root`
/// (a file or a directory), not packed exposed, and not readable by group or others there.
pub fn check(root: &Path, secrets: &[String], inst: &Installed) -> Result<(), String> {
    for name in secrets {
        let exposed = inst
            .refused
            .iter()
            .find(|(p, _)| *p == name || p.starts_with(&format!("{name}/")));
        if let Some((path, mode)) = exposed {
            return Err(format!(
                "secret {path} was packed with mode {mode:04o}, readable by others \
                 (refused; chmod 600 it in the secrets directory and pack it again)"
            ));
        }
        let full = root.join(name);
        match fs::symlink_metadata(&full) {
            Err(_) => {
                return Err(format!(
                    "secret {name} missing (expected in {}; pack it with vbuild secrets pack)",
                    root.display()
                ))
            }
            Ok(m) if m.permissions().mode() & 0o077 != 0 && !m.is_dir() => {
                return Err(format!(
                    "secret {} has mode {:04o}, readable by others",
                    full.display(),
                    m.permissions().mode() & 0o7777
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramux_contract::secrets::{encode, Entry};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ramux-init-secrets-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn overlay() -> Plan {
        let e = |p: &str, m: u32, d: Option<&str>| Entry {
            path: p.into(),
            mode: m,
            data: d.map(|s| s.as_bytes().to_vec()),
        };
        let bytes = encode(vec![
            e("pki", 0o700, None),
            e("pki/radius.key", 0o600, Some("KEY")),
            e("radius", 0o700, None),
            e("radius/nas", 0o700, None),
            e("radius/nas/sw1", 0o644, Some("s")),
        ])
        .unwrap();
        unpack_plan(&bytes).unwrap()
    }

    #[test]
    fn writes_0600_files_and_refuses_exposed_ones() {
        let root = tmp("write");
        let (inst, lines) = write_plan(&root, &overlay());
        assert_eq!(inst.files, 1);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("ramux: failed secrets: radius/nas/sw1: packed with mode 0644")
        );
        let m = fs::metadata(root.join("pki/radius.key")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let m = fs::metadata(root.join("pki")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
        assert!(!root.join("radius/nas/sw1").exists());
        assert_eq!(check(&root, &["pki/radius.key".into()], &inst), Ok(()));
        let e = check(&root, &["radius/nas".into()], &inst).unwrap_err();
        assert!(
            e.starts_with("secret radius/nas/sw1 was packed with mode 0644"),
            "{e}"
        );
        let e = check(&root, &["pki/ca.crt".into()], &inst).unwrap_err();
        assert_eq!(
            e,
            format!(
                "secret pki/ca.crt missing (expected in {}; pack it with vbuild secrets pack)",
                root.display()
            )
        );
        fs::write(root.join("loose"), "x").unwrap();
        fs::set_permissions(root.join("loose"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check(&root, &["loose".into()], &inst)
            .unwrap_err()
            .contains("mode 0644"));
        let _ = fs::remove_dir_all(&root);
    }
}
