//! The lab state directory and its `state.json`: every resource `up` creates is written here
//! *before* it is created (temp file + rename), so `down` can undo a failed or killed `up` from
//! this file alone.
//!
//! Layout of `<labs root>/<lab>/` (root: `$VLAUNCH_LAB_DIR`, else `/run/ramux/labs`):
//! `state.json`, `sw/<switch>` (+ `.streams/`, `.mgmt`, `.pid`: [`SwitchDir`]), `vms/<node>/`
//! (vlaunch's VM state directory).

use anyhow::{Context, Result};
use ramux_contract::switch_dir::SwitchDir;
use ramux_lab::status::{NodeState, SwitchState};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Where lab directories live unless `$VLAUNCH_LAB_DIR` says otherwise.
pub const DEFAULT_LABS_ROOT: &str = "/run/ramux/labs";

/// `$VLAUNCH_LAB_DIR`, else [`DEFAULT_LABS_ROOT`]; a relative path is made absolute, so the
/// lab directory `state.json` records is the same from any working directory.
pub fn labs_root() -> PathBuf {
    let root = std::env::var_os("VLAUNCH_LAB_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LABS_ROOT));
    if root.is_absolute() {
        return root;
    }
    std::env::current_dir().map_or(root.clone(), |d| d.join(&root))
}

/// The paths of one lab's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabDir(pub PathBuf);

impl LabDir {
    pub fn new(root: &Path, lab: &str) -> LabDir {
        LabDir(root.join(lab))
    }
    pub fn state_json(&self) -> PathBuf {
        self.0.join("state.json")
    }
    /// The directory of switch `name` (its sockets sit beside it: [`SwitchDir`]).
    pub fn switch_dir(&self, name: &str) -> PathBuf {
        self.0.join("sw").join(name)
    }
    /// vlaunch's state root for the lab's VMs.
    pub fn vms_root(&self) -> PathBuf {
        self.0.join("vms")
    }
}

/// One switch as `up` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    pub name: String,
    /// `vswitch` or `vde_switch`.
    pub engine: String,
    /// The switch directory (`DIR`); `DIR.streams`, `DIR.mgmt`, `DIR.pid` belong to it too.
    pub dir: PathBuf,
    /// The daemon's pid once known (else `DIR.pid` tells).
    pub pid: Option<u32>,
    pub state: SwitchState,
    pub ports: u16,
    pub vlans: Vec<u16>,
}

/// One node as `up` recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub profile: String,
    pub role: Option<String>,
    pub enabled: bool,
    /// vlaunch's VM state directory (QEMU's pid file, serial.sock, serial.log, qmp.sock).
    pub state_dir: Option<PathBuf>,
    pub pid: Option<u32>,
    pub state: NodeState,
    pub ready_seconds: Option<f64>,
    pub last_lines: Vec<String>,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    pub schema_version: u32,
    pub lab: String,
    /// The lab file `up` read.
    pub file: PathBuf,
    /// The lab directory itself (removed last by `down`).
    pub dir: PathBuf,
    pub switches: Vec<SwitchRecord>,
    pub nodes: Vec<NodeRecord>,
}

impl LabState {
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeRecord> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
    pub fn switch_mut(&mut self, name: &str) -> Option<&mut SwitchRecord> {
        self.switches.iter_mut().find(|s| s.name == name)
    }
}

/// Writes `state` to `path` through a temp file and a rename (never half a file).
pub fn save(path: &Path, state: &LabState) -> Result<()> {
    let mut data = serde_json::to_vec_pretty(state)?;
    data.push(b'\n');
    crate::vm::write_atomic(path, &data)
}

/// Reads a `state.json`.
pub fn load(path: &Path) -> Result<LabState> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
}

/// Every path `down` removes for this state, in removal order (contents before the lab
/// directory itself): each switch's directory and its sibling sockets, each VM's state
/// directory, then the lab directory.
pub fn removal_list(state: &LabState) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in &state.nodes {
        out.extend(n.state_dir.clone());
    }
    for s in &state.switches {
        let d = SwitchDir::new(&s.dir);
        out.extend([d.dir().to_path_buf(), d.streams(), d.mgmt(), d.pid()]);
    }
    out.push(state.dir.clone());
    out
}

/// A recorded two-resource lab for the unit tests.
#[cfg(test)]
pub(crate) fn tests_sample() -> LabState {
    tests::sample()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> LabState {
        let ld = LabDir::new(Path::new("/tmp/labs"), "two");
        LabState {
            schema_version: 1,
            lab: "two".into(),
            file: "/x/lab.toml".into(),
            dir: ld.0.clone(),
            switches: vec![SwitchRecord {
                name: "sw0".into(),
                engine: "vswitch".into(),
                dir: ld.switch_dir("sw0"),
                pid: Some(42),
                state: SwitchState::Running,
                ports: 8,
                vlans: vec![10, 20],
            }],
            nodes: vec![NodeRecord {
                name: "a".into(),
                profile: "client".into(),
                role: None,
                enabled: true,
                state_dir: Some(ld.vms_root().join("a")),
                pid: None,
                state: NodeState::Starting,
                ready_seconds: None,
                last_lines: vec![],
            }],
        }
    }

    #[test]
    fn round_trip_through_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        let s = sample();
        save(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), s);
        assert!(!p.with_extension("tmp").exists());
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"state\": \"starting\""), "{text}");
    }

    #[test]
    fn down_removes_every_recorded_path_and_the_dir_last() {
        let r = removal_list(&sample());
        let want: Vec<PathBuf> = [
            "/tmp/labs/two/vms/a",
            "/tmp/labs/two/sw/sw0",
            "/tmp/labs/two/sw/sw0.streams",
            "/tmp/labs/two/sw/sw0.mgmt",
            "/tmp/labs/two/sw/sw0.pid",
            "/tmp/labs/two",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(r, want);
    }
}
