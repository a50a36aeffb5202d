//! `vlaunch lab down`: undoes `up` from `state.json` alone (also after a failed or SIGKILLed
//! `up`): VMs powered off (ACPI, a short grace, then killed), switches stopped, every recorded
//! directory and socket removed, then the lab directory. Running it again does nothing.

use super::state::{self, LabDir, LabState};
use super::switch;
use crate::qemu::StatePaths;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;

/// How long a VM gets to power off after the ACPI button before it is killed.
pub const VM_GRACE: Duration = Duration::from_secs(5);

/// The QEMU of a recorded VM directory: from its pid file, else the recorded pid (both only
/// when /proc says it is that VM's QEMU).
pub fn vm_pid(dir: &Path, recorded: Option<u32>) -> Option<u32> {
    let paths = StatePaths::in_dir(dir);
    crate::vm::running_pid(&paths).or(recorded.filter(|&p| crate::vm::pid_is_our_qemu(p, &paths)))
}

fn stop_vm(name: &str, dir: &Path, recorded: Option<u32>, force: bool) -> Result<String> {
    let Some(pid) = vm_pid(dir, recorded) else {
        return Ok(format!("{name}: not running"));
    };
    let paths = StatePaths::in_dir(dir);
    if !force {
        if let Some(root) = dir.parent() {
            let vm_name = dir.file_name().map(|f| f.to_string_lossy().into_owned());
            if let Some(n) = vm_name {
                if let Ok(out) = crate::vm::stop_by_name(root, &n, VM_GRACE) {
                    return Ok(format!("{name}: {}", stop_words(&out)));
                }
            }
        }
    }
    let gone = super::terminate(pid, Duration::from_secs(1), |p| {
        crate::vm::pid_is_our_qemu(p, &paths)
    });
    if !gone {
        bail!("{name}: QEMU pid {pid} survives SIGKILL");
    }
    Ok(format!("{name}: killed (pid {pid})"))
}

pub(super) fn stop_words(out: &crate::vm::StopOutcome) -> String {
    use crate::vm::StopOutcome::*;
    match out {
        NotRunning => "not running".into(),
        PoweredOff { seconds, .. } => format!("powered off after {seconds:.1} s"),
        Killed { reason } => format!("killed ({reason})"),
    }
}

fn remove(path: &Path) -> Result<()> {
    let r = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    r.with_context(|| format!("removing {}", path.display()))
}

/// Stops everything `state` records and removes its paths. `dir` is the lab directory the
/// state was read from; a state naming another directory is refused.
pub fn down(state: &LabState, dir: &LabDir, force: bool, say: &mut dyn FnMut(&str)) -> Result<()> {
    if state.dir != dir.0 {
        bail!(
            "{} records the lab directory {}: refusing to remove what it names",
            dir.state_json().display(),
            state.dir.display()
        );
    }
    // All VMs at once: each gets its ACPI grace in parallel.
    let stops: Vec<_> = state
        .nodes
        .iter()
        .filter_map(|n| n.state_dir.clone().map(|d| (n.name.clone(), d, n.pid)))
        .map(|(name, d, pid)| std::thread::spawn(move || stop_vm(&name, &d, pid, force)))
        .collect();
    for t in stops {
        let line = t
            .join()
            .map_err(|_| anyhow::anyhow!("a VM stop panicked"))??;
        say(&line);
    }
    let grace = if force {
        Duration::ZERO
    } else {
        Duration::from_secs(2)
    };
    for s in &state.switches {
        if !switch::stop(&s.dir, s.pid, grace) {
            bail!("{}: the switch survives SIGKILL", s.name);
        }
        say(&format!("{}: stopped", s.name));
    }
    // After the switches: a TAP's deletion also takes it out of its bridge.
    for t in &state.taps {
        say(&super::uplink::remove(t)?);
    }
    for p in state::removal_list(state) {
        remove(&p)?;
    }
    say(&format!("{}: removed {}", state.lab, dir.0.display()));
    Ok(())
}

/// `down` by lab name: nothing to do when the lab has no directory; a directory without
/// `state.json` (an `up` killed before its first write) holds nothing but itself.
pub fn down_by_name(root: &Path, lab: &str, force: bool, say: &mut dyn FnMut(&str)) -> Result<()> {
    let dir = LabDir::new(root, lab);
    if !dir.0.exists() {
        say(&format!("{lab}: not up (no {})", dir.0.display()));
        return Ok(());
    }
    if !dir.state_json().exists() {
        remove(&dir.0)?;
        say(&format!("{lab}: removed {}", dir.0.display()));
        return Ok(());
    }
    let st = state::load(&dir.state_json())?;
    down(&st, &dir, force, say)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_twice_and_without_state() {
        let root = tempfile::tempdir().unwrap();
        let dir = LabDir::new(root.path(), "two");
        let mut st = super::super::state::tests_sample();
        st.dir = dir.0.clone();
        st.switches[0].dir = dir.switch_dir("sw0");
        st.switches[0].pid = Some(std::process::id()); // not a switch: never signalled
        st.nodes[0].state_dir = Some(dir.vms_root().join("a"));
        std::fs::create_dir_all(dir.vms_root().join("a")).unwrap();
        std::fs::create_dir_all(dir.switch_dir("sw0")).unwrap();
        std::fs::write(
            ramux_contract::SwitchDir::new(dir.switch_dir("sw0")).mgmt(),
            "",
        )
        .unwrap();
        state::save(&dir.state_json(), &st).unwrap();
        let mut lines = Vec::new();
        down_by_name(root.path(), "two", false, &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert!(!dir.0.exists());
        assert_eq!(lines[0], "a: not running");
        down_by_name(root.path(), "two", false, &mut |_| {}).unwrap();
        std::fs::create_dir_all(&dir.0).unwrap();
        down_by_name(root.path(), "two", false, &mut |_| {}).unwrap();
        assert!(!dir.0.exists());
    }

    #[test]
    fn refuses_a_state_naming_another_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = LabDir::new(root.path(), "two");
        let st = super::super::state::tests_sample();
        assert!(down(&st, &dir, false, &mut |_| {}).is_err());
    }
}
