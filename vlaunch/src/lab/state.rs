//! The lab state directory and its `state.json`: every resource `up` creates is written here
//! *before* it is created (temp file + rename), so `down` can undo a failed or killed `up` from
//! this file alone.
//!
//! Layout of `<labs root>/<lab>/` (root: `$VLAUNCH_LAB_DIR`, else `/run/ramux/labs`):
//! `state.json`, `sw/<switch>` (+ `.streams/`, `.mgmt`, `.pid`: [`SwitchDir`]; `.rc`: the
//! ports reserved below its uplinks' TAPs), `vms/<node>/` (vlaunch's VM state directory).
//! Uplink TAPs live outside the directory, in the host's network: `state.json` lists them.

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
    /// The rc file a switch starts with (it reserves the ports below its uplinks' TAPs).
    pub fn switch_rc(&self, name: &str) -> PathBuf {
        self.0.join("sw").join(format!("{name}.rc"))
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
    /// How many NICs it has (what `fault unplug` acts on).
    #[serde(default)]
    pub nics: usize,
    /// The NICs whose cable `fault unplug` pulled (guest eth index).
    #[serde(default)]
    pub links_down: Vec<usize>,
    /// What `up` started it with, one `key = value` line per setting: `up` on a running lab
    /// compares it with the file to say what changed.
    #[serde(default)]
    pub config: Vec<String>,
}

/// One uplink's TAP as `up` recorded it, before creating it: `down` deletes the device (which
/// also ends its bridge membership) when it is still a TAP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapRecord {
    /// The `[uplink.NAME]` it serves.
    pub uplink: String,
    /// The device (`uplink::tap_name`).
    pub name: String,
    /// The host bridge it is (to be) enslaved to.
    pub bridge: String,
    pub switch: String,
    pub port: u16,
    /// True once `ip link set TAP master BRIDGE` is done (recorded just before it).
    #[serde(default)]
    pub enslaved: bool,
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
    /// Uplink TAPs (absent in state files written before uplinks existed).
    #[serde(default)]
    pub taps: Vec<TapRecord>,
}

impl LabState {
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeRecord> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
    pub fn switch_mut(&mut self, name: &str) -> Option<&mut SwitchRecord> {
        self.switches.iter_mut().find(|s| s.name == name)
    }
    pub fn tap_mut(&mut self, name: &str) -> Option<&mut TapRecord> {
        self.taps.iter_mut().find(|t| t.name == name)
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
        let mut rc = s.dir.clone().into_os_string();
        rc.push(".rc");
        out.push(rc.into());
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
                nics: 1,
                links_down: vec![],
                config: vec![],
            }],
            taps: vec![TapRecord {
                uplink: "lan".into(),
                name: "two-0123abcd".into(),
                bridge: "br0".into(),
                switch: "sw0".into(),
                port: 8,
                enslaved: true,
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
    fn a_state_without_taps_still_loads() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("taps");
        let s: LabState = serde_json::from_value(v).unwrap();
        assert!(s.taps.is_empty());
        let mut t = serde_json::to_value(&sample().taps[0]).unwrap();
        t.as_object_mut().unwrap().remove("enslaved");
        let t: TapRecord = serde_json::from_value(t).unwrap();
        assert!(!t.enslaved);
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
            "/tmp/labs/two/sw/sw0.rc",
            "/tmp/labs/two",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(r, want);
    }
}
