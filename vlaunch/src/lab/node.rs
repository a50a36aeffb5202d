//! A node of a running lab, found by the lab's name and the node's name alone (state.json):
//! what `console`, `exec`, `fault`, `restart` and `test` act on.

use super::state::{self, LabDir, LabState};
use crate::qemu::StatePaths;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// The recorded state of the running lab `lab` (an error saying how to find labs otherwise).
pub fn load_lab(lab: &str) -> Result<(LabDir, LabState)> {
    let dir = LabDir::new(&state::labs_root(), lab);
    if !dir.state_json().exists() {
        bail!(
            "lab {lab} is not up (no {}): see `vlaunch lab list`",
            dir.state_json().display()
        );
    }
    let st = state::load(&dir.state_json())?;
    Ok((dir, st))
}

/// A node that was started: its VM directory, and its QEMU pid when it runs.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub lab: String,
    pub name: String,
    pub dir: PathBuf,
    pub paths: StatePaths,
    pub pid: Option<u32>,
}

impl NodeHandle {
    /// `lab/node`, as messages name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.lab, self.name)
    }

    /// The pid, or an error saying the node is not running.
    pub fn running(&self) -> Result<u32> {
        match self.pid {
            Some(p) => Ok(p),
            None => bail!(
                "{} is not running (`vlaunch lab status {}`; `vlaunch lab restart {} {}` starts it)",
                self.label(),
                self.lab,
                self.lab,
                self.name
            ),
        }
    }
}

/// Node `node` of the recorded lab `st`: an error names the lab's nodes when it has none such.
pub fn find(st: &LabState, node: &str) -> Result<NodeHandle> {
    let lab = &st.lab;
    let Some(n) = st.nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = st.nodes.iter().map(|n| n.name.as_str()).collect();
        bail!("lab {lab} has no node {node} (nodes: {})", names.join(", "));
    };
    let Some(dir) = n.state_dir.clone() else {
        bail!("{lab}/{node} was never started (disabled, left out by --only, or after a failure)");
    };
    Ok(NodeHandle {
        lab: lab.clone(),
        name: node.to_string(),
        paths: StatePaths::in_dir(&dir),
        pid: super::down::vm_pid(&dir, n.pid),
        dir,
    })
}

/// [`load_lab`] then [`find`].
pub fn by_name(lab: &str, node: &str) -> Result<(LabDir, LabState, NodeHandle)> {
    let (dir, st) = load_lab(lab)?;
    let h = find(&st, node)?;
    Ok((dir, st, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unstarted_nodes_are_explained() {
        let mut st = state::tests_sample();
        let e = find(&st, "zz").unwrap_err().to_string();
        assert!(e.contains("has no node zz (nodes: a)"), "{e}");
        st.nodes[0].state_dir = None;
        let e = find(&st, "a").unwrap_err().to_string();
        assert!(e.contains("never started"), "{e}");
    }

    #[test]
    fn a_recorded_node_that_does_not_run_says_how_to_start_it() {
        let st = state::tests_sample();
        let h = find(&st, "a").unwrap();
        assert_eq!(h.pid, None);
        let e = h.running().unwrap_err().to_string();
        assert!(e.contains("two/a is not running"), "{e}");
        assert!(e.contains("vlaunch lab restart two a"), "{e}");
    }
}
