//! Choosing between KVM and TCG (docs/launcher.md, KVM or TCG).
//!
//! Trusting `/dev/kvm` alone is wrong on the machines ramux is developed on: `/dev/kvm` opens and
//! answers ioctls, but it is served by `kvm_pvm` (software nested virtualisation), the CPU has no
//! vmx/svm, and QEMU with `-accel kvm` either aborts (`-cpu host`) or hangs after "Booting from
//! ROM". So the decision is a pure function, [`decide`], over facts probed once ([`KvmFacts`]),
//! with the cheap checks first and a functional probe (boot a real kernel under KVM) only when all
//! of them pass. The caller runs the probe ([`crate::probe`]) when [`Verdict::NeedsProbe`] comes
//! back and calls [`decide`] again with the outcome.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The accelerator QEMU runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccelRequest {
    /// Decide by the detection rule (VLAUNCH_ACCEL overrides it).
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// State of `/dev/kvm` as seen by the current user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKvm {
    Missing,
    NotCharDevice,
    /// Exists but the current uid cannot open it read-write.
    NoAccess,
    Usable,
}

/// Outcome of booting a kernel under `-accel kvm` (see [`crate::probe`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The kernel reached its end-of-boot marker.
    Booted,
    /// It did not; the text says how (QEMU abort with its message, timeout, no marker).
    Failed(String),
}

/// Everything [`decide`] looks at; gathered by [`probe_facts`] or written by hand in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmFacts {
    pub dev_kvm: DevKvm,
    /// `/proc/cpuinfo` lists `vmx` or `svm`.
    pub cpu_virt_flags: bool,
    /// Loaded hardware KVM backends (`kvm_intel`, `kvm_amd`).
    pub hw_modules: Vec<String>,
    /// Other loaded KVM backends (`kvm_pvm`, ...): named in the reason when they are all there is.
    pub other_modules: Vec<String>,
    /// `KVM_GET_API_VERSION`, when `/dev/kvm` could be opened.
    pub api_version: Option<i32>,
    /// The functional probe, once it has run (or its cached result).
    pub probe: Option<ProbeOutcome>,
}

/// Result of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Decided {
        accel: Accel,
        reason: String,
    },
    /// Every cheap check passed: boot a kernel under KVM, then decide again with the outcome.
    NeedsProbe,
}

/// The detection rule of docs/launcher.md, KVM or TCG, as a pure function.
///
/// Order: an explicit `--accel kvm|tcg` wins, then `VLAUNCH_ACCEL` (`env`), then the checks.
/// An unknown `VLAUNCH_ACCEL` value is an error rather than a silent fallback.
pub fn decide(request: AccelRequest, env: Option<&str>, facts: &KvmFacts) -> Result<Verdict> {
    let decided = |accel, reason: &str| {
        Ok(Verdict::Decided {
            accel,
            reason: reason.to_string(),
        })
    };
    match request {
        AccelRequest::Kvm => return decided(Accel::Kvm, "forced by --accel kvm"),
        AccelRequest::Tcg => return decided(Accel::Tcg, "forced by --accel tcg"),
        AccelRequest::Auto => {}
    }
    match env.map(str::trim) {
        None | Some("") | Some("auto") => {}
        Some("kvm") => return decided(Accel::Kvm, "forced by VLAUNCH_ACCEL=kvm"),
        Some("tcg") => return decided(Accel::Tcg, "forced by VLAUNCH_ACCEL=tcg"),
        Some(other) => {
            bail!("VLAUNCH_ACCEL={other:?} is not valid: use kvm, tcg or auto (or unset it)")
        }
    }
    match facts.dev_kvm {
        DevKvm::Missing => return decided(Accel::Tcg, "no /dev/kvm"),
        DevKvm::NotCharDevice => return decided(Accel::Tcg, "/dev/kvm is not a character device"),
        DevKvm::NoAccess => {
            return decided(
                Accel::Tcg,
                "/dev/kvm is not readable and writable by this user",
            )
        }
        DevKvm::Usable => {}
    }
    if !facts.cpu_virt_flags {
        return decided(
            Accel::Tcg,
            "cpu flags lack vmx/svm (nested virtualisation not exposed)",
        );
    }
    if facts.hw_modules.is_empty() {
        let reason = if facts.other_modules.is_empty() {
            "no hardware KVM module (kvm_intel/kvm_amd) loaded".to_string()
        } else {
            format!(
                "no hardware KVM module (kvm_intel/kvm_amd); /dev/kvm is served by {}",
                facts.other_modules.join(", ")
            )
        };
        return decided(Accel::Tcg, &reason);
    }
    if let Some(v) = facts.api_version {
        if v != 12 {
            return decided(
                Accel::Tcg,
                &format!("KVM_GET_API_VERSION is {v}, expected 12"),
            );
        }
    }
    match &facts.probe {
        None => Ok(Verdict::NeedsProbe),
        Some(ProbeOutcome::Booted) => decided(
            Accel::Kvm,
            &format!(
                "/dev/kvm usable, cpu has vmx/svm, {} loaded, a kernel booted under KVM",
                facts.hw_modules.join("+")
            ),
        ),
        Some(ProbeOutcome::Failed(why)) => decided(
            Accel::Tcg,
            &format!("cheap checks passed but the KVM functional probe failed: {why}"),
        ),
    }
}

/// Reads the facts from the running system (without the functional probe).
pub fn probe_facts() -> KvmFacts {
    probe_facts_at(Path::new("/"))
}

/// [`probe_facts`] with a different root for `/proc` and `/sys` (tests use a fake tree); the
/// device node is always checked at `<root>/dev/kvm`.
pub fn probe_facts_at(root: &Path) -> KvmFacts {
    let dev = root.join("dev/kvm");
    let dev_kvm = dev_kvm_state(&dev);
    let cpuinfo = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let modules = root.join("sys/module");
    let present = |m: &str| modules.join(m).is_dir();
    let hw_modules: Vec<String> = ["kvm_intel", "kvm_amd"]
        .into_iter()
        .filter(|m| present(m))
        .map(String::from)
        .collect();
    let other_modules: Vec<String> = std::fs::read_dir(&modules)
        .map(|rd| {
            let mut v: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("kvm_") && n != "kvm_intel" && n != "kvm_amd")
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let api_version = if dev_kvm == DevKvm::Usable {
        kvm_api_version(&dev)
    } else {
        None
    };
    KvmFacts {
        dev_kvm,
        cpu_virt_flags: cpu_has_virt_flags(&cpuinfo),
        hw_modules,
        other_modules,
        api_version,
        probe: None,
    }
}

/// True when some `flags` line of /proc/cpuinfo has the word `vmx` or `svm`.
pub fn cpu_has_virt_flags(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .filter_map(|l| l.split_once(':'))
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

fn dev_kvm_state(dev: &Path) -> DevKvm {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(dev) {
        Err(_) => DevKvm::Missing,
        Ok(m) if !m.file_type().is_char_device() => DevKvm::NotCharDevice,
        Ok(_) => match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
            Ok(_) => DevKvm::Usable,
            Err(_) => DevKvm::NoAccess,
        },
    }
}

/// `KVM_GET_API_VERSION` (`_IO(0xAE, 0x00)`); the stable API answers 12.
fn kvm_api_version(dev: &Path) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .ok()?;
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: the fd is open for the duration of the call and this ioctl takes no argument.
    let v = unsafe { libc::ioctl(f.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    (v >= 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> KvmFacts {
        KvmFacts {
            dev_kvm: DevKvm::Usable,
            cpu_virt_flags: true,
            hw_modules: vec!["kvm_intel".into()],
            other_modules: vec![],
            api_version: Some(12),
            probe: None,
        }
    }

    /// The development machines: /dev/kvm works, no vmx/svm, kvm_pvm only.
    fn pvm_host() -> KvmFacts {
        KvmFacts {
            cpu_virt_flags: false,
            hw_modules: vec![],
            other_modules: vec!["kvm_pvm".into()],
            ..good()
        }
    }

    fn accel_of(v: Verdict) -> (Accel, String) {
        match v {
            Verdict::Decided { accel, reason } => (accel, reason),
            Verdict::NeedsProbe => panic!("unexpected NeedsProbe"),
        }
    }

    #[test]
    fn pvm_host_picks_tcg_on_cpu_flags() {
        let (a, r) = accel_of(decide(AccelRequest::Auto, None, &pvm_host()).unwrap());
        assert_eq!(a, Accel::Tcg);
        assert!(r.contains("vmx/svm"), "{r}");
    }

    #[test]
    fn pvm_module_named_when_flags_present() {
        let f = KvmFacts {
            cpu_virt_flags: true,
            ..pvm_host()
        };
        let (a, r) = accel_of(decide(AccelRequest::Auto, None, &f).unwrap());
        assert_eq!(a, Accel::Tcg);
        assert!(r.contains("kvm_pvm"), "{r}");
    }

    #[test]
    fn dev_kvm_states() {
        for (state, word) in [
            (DevKvm::Missing, "no /dev/kvm"),
            (DevKvm::NotCharDevice, "character device"),
            (DevKvm::NoAccess, "readable and writable"),
        ] {
            let f = KvmFacts {
                dev_kvm: state,
                ..good()
            };
            let (a, r) = accel_of(decide(AccelRequest::Auto, None, &f).unwrap());
            assert_eq!(a, Accel::Tcg);
            assert!(r.contains(word), "{r}");
        }
    }

    #[test]
    fn wrong_api_version_is_tcg() {
        let f = KvmFacts {
            api_version: Some(11),
            ..good()
        };
        assert_eq!(
            accel_of(decide(AccelRequest::Auto, None, &f).unwrap()).0,
            Accel::Tcg
        );
    }

    #[test]
    fn all_cheap_checks_pass_then_probe_decides() {
        assert_eq!(
            decide(AccelRequest::Auto, None, &good()).unwrap(),
            Verdict::NeedsProbe
        );
        let ok = KvmFacts {
            probe: Some(ProbeOutcome::Booted),
            ..good()
        };
        assert_eq!(
            accel_of(decide(AccelRequest::Auto, None, &ok).unwrap()).0,
            Accel::Kvm
        );
        let bad = KvmFacts {
            probe: Some(ProbeOutcome::Failed("timeout after 15 s".into())),
            ..good()
        };
        let (a, r) = accel_of(decide(AccelRequest::Auto, None, &bad).unwrap());
        assert_eq!(a, Accel::Tcg);
        assert!(r.contains("timeout"), "{r}");
    }

    #[test]
    fn overrides_win_in_order() {
        // CLI beats env, env beats detection, even against the facts.
        let (a, r) = accel_of(decide(AccelRequest::Tcg, Some("kvm"), &good()).unwrap());
        assert_eq!((a, r.contains("--accel")), (Accel::Tcg, true));
        let (a, r) = accel_of(decide(AccelRequest::Auto, Some("kvm"), &pvm_host()).unwrap());
        assert_eq!((a, r.contains("VLAUNCH_ACCEL")), (Accel::Kvm, true));
        let (a, _) = accel_of(decide(AccelRequest::Auto, Some("tcg"), &good()).unwrap());
        assert_eq!(a, Accel::Tcg);
        assert_eq!(
            decide(AccelRequest::Auto, Some("auto"), &good()).unwrap(),
            Verdict::NeedsProbe
        );
        let err = decide(AccelRequest::Auto, Some("hvf"), &good()).unwrap_err();
        assert!(err.to_string().contains("VLAUNCH_ACCEL"), "{err}");
    }

    #[test]
    fn cpuinfo_flags_are_words() {
        assert!(cpu_has_virt_flags(
            "processor: 0\nflags\t\t: fpu vme vmx sse\n"
        ));
        assert!(cpu_has_virt_flags("flags : svm lm\n"));
        assert!(!cpu_has_virt_flags("flags : fpu vmxfoo svm_lock\n"));
        assert!(!cpu_has_virt_flags("model name : vmx svm\n"));
    }

    #[test]
    fn facts_from_fake_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::create_dir_all(root.join("sys/module/kvm_pvm")).unwrap();
        std::fs::create_dir_all(root.join("sys/module/kvm")).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("dev/kvm"), b"").unwrap(); // a plain file, not a device
        std::fs::write(root.join("proc/cpuinfo"), "flags : fpu sse2\n").unwrap();
        let f = probe_facts_at(root);
        assert_eq!(f.dev_kvm, DevKvm::NotCharDevice);
        assert!(!f.cpu_virt_flags);
        assert!(f.hw_modules.is_empty());
        assert_eq!(f.other_modules, vec!["kvm_pvm".to_string()]);
    }
}
