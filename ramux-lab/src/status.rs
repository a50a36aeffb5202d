//! The `vlaunch lab status --json` document. Scripts and CI read it, so its shape is a contract:
//! `schema_version` changes whenever a field is removed or changes meaning (adding one does not).
//! The types are here, with the lab's static facts filled in; `up`/`status` fill the live parts.

use serde::{Deserialize, Serialize};

use crate::model::Lab;

/// The version of the document's shape.
pub const STATUS_SCHEMA_VERSION: u32 = 1;

/// A node's life cycle as `up` drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// In the file, never started (or `enabled = false`).
    Defined,
    /// QEMU runs, no ready line yet.
    Starting,
    /// Printed `ramux: ready ...`.
    Ready,
    /// Missed its ready_timeout, printed `ramux: failed`, or QEMU exited during boot.
    Failed,
    /// Was running and is gone (`down`, a fault, a power-off).
    Stopped,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub profile: String,
    /// `MASTER`/`BACKUP`, absent for nodes without a role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub enabled: bool,
    pub state: NodeState,
    /// QEMU's pid while it runs.
    pub pid: Option<u32>,
    /// Seconds from QEMU's start to the ready line.
    pub ready_seconds: Option<f64>,
    /// The last console lines (why a node failed, what it is doing while it boots).
    pub last_lines: Vec<String>,
}

/// A switch's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchState {
    Defined,
    Running,
    Stopped,
}

/// One switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    pub name: String,
    /// `vswitch` or `vde_switch`.
    pub engine: String,
    pub state: SwitchState,
    pub pid: Option<u32>,
    pub ports: u16,
    pub vlans: Vec<u16>,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabStatus {
    pub schema_version: u32,
    pub lab: String,
    pub nodes: Vec<NodeStatus>,
    pub switches: Vec<SwitchStatus>,
}

impl LabStatus {
    /// The lab before `up`: everything `defined`, nothing running.
    pub fn defined(lab: &Lab) -> Self {
        let nodes = lab
            .nodes
            .iter()
            .map(|n| NodeStatus {
                name: n.name.value.clone(),
                profile: n.profile.value.clone(),
                role: n.role.as_ref().map(|r| r.value.to_string()),
                enabled: n.enabled,
                state: NodeState::Defined,
                pid: None,
                ready_seconds: None,
                last_lines: Vec::new(),
            })
            .collect();
        let switches = lab
            .switches
            .iter()
            .map(|s| SwitchStatus {
                name: s.name.value.clone(),
                engine: s.engine.as_str().to_string(),
                state: SwitchState::Defined,
                pid: None,
                ports: s.ports,
                vlans: s.vlans.keys().copied().collect(),
            })
            .collect();
        LabStatus {
            schema_version: STATUS_SCHEMA_VERSION,
            lab: lab.name.value.clone(),
            nodes,
            switches,
        }
    }

    /// Pretty JSON, newline-terminated.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }
}
