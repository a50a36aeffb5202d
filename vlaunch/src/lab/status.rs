//! `vlaunch lab status` and `list`: the recorded state, refreshed from the live processes, as
//! ramux-lab's status document ([`LabStatus`]) or a table.

use super::state::{LabState, NodeRecord, SwitchRecord};
use super::switch;
use crate::qemu::StatePaths;
use crate::serial::ConsoleScanner;
use ramux_lab::status::{NodeState, NodeStatus, SwitchState, SwitchStatus};
use ramux_lab::LabStatus;

/// A node's state now, from what `up` recorded, whether its QEMU runs and whether its console
/// printed the ready line.
pub fn live_node_state(recorded: NodeState, running: bool, ready_in_log: bool) -> NodeState {
    match (running, ready_in_log, recorded) {
        (true, true, _) => NodeState::Ready,
        (true, false, _) => NodeState::Starting,
        (false, _, NodeState::Failed | NodeState::Defined) => recorded,
        (false, _, _) => NodeState::Stopped,
    }
}

fn node_status(n: &NodeRecord) -> NodeStatus {
    let (running, ready, lines) = match &n.state_dir {
        Some(d) => {
            let paths = StatePaths::in_dir(d);
            let mut sc = ConsoleScanner::new(5);
            sc.feed(&std::fs::read(&paths.serial_log).unwrap_or_default());
            let pid = crate::vm::running_pid(&paths);
            (pid, sc.ready().is_some(), sc.last_lines())
        }
        None => (None, false, vec![]),
    };
    let state = live_node_state(n.state, running.is_some(), ready);
    let last_lines = if state == NodeState::Failed || lines.is_empty() {
        n.last_lines.clone()
    } else {
        lines
    };
    NodeStatus {
        name: n.name.clone(),
        profile: n.profile.clone(),
        role: n.role.clone(),
        enabled: n.enabled,
        state,
        pid: running,
        ready_seconds: n.ready_seconds,
        last_lines,
    }
}

fn switch_status(s: &SwitchRecord) -> SwitchStatus {
    let pid = switch::live_pid_or(&s.dir, s.pid);
    let state = match (pid, s.state) {
        (Some(_), _) => SwitchState::Running,
        (None, SwitchState::Defined) => SwitchState::Defined,
        (None, _) => SwitchState::Stopped,
    };
    SwitchStatus {
        name: s.name.clone(),
        engine: s.engine.clone(),
        state,
        pid,
        ports: s.ports,
        vlans: s.vlans.clone(),
    }
}

/// The status document of a recorded lab, refreshed from /proc and the consoles.
pub fn lab_status(state: &LabState) -> LabStatus {
    LabStatus {
        schema_version: ramux_lab::status::STATUS_SCHEMA_VERSION,
        lab: state.lab.clone(),
        nodes: state.nodes.iter().map(node_status).collect(),
        switches: state.switches.iter().map(switch_status).collect(),
    }
}

fn word<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The status table `up` ends with and `status` prints.
pub fn table(st: &LabStatus) -> String {
    let mut out = format!(
        "{:<16} {:<8} {:<9} {:>7} {:>7}  LAST\n",
        "NODE", "PROFILE", "STATE", "PID", "READY"
    );
    for n in &st.nodes {
        let state = if n.enabled {
            word(n.state)
        } else {
            "disabled".into()
        };
        out.push_str(&format!(
            "{:<16} {:<8} {:<9} {:>7} {:>7}  {}\n",
            n.name,
            n.profile,
            state,
            n.pid.map_or("-".into(), |p| p.to_string()),
            n.ready_seconds.map_or("-".into(), |s| format!("{s:.1}s")),
            n.last_lines.last().map_or("", String::as_str),
        ));
    }
    for s in &st.switches {
        let vlans: Vec<String> = s.vlans.iter().map(u16::to_string).collect();
        out.push_str(&format!(
            "{:<16} {:<8} {:<9} {:>7} {:>7}  VLANs {}\n",
            s.name,
            s.engine,
            word(s.state),
            s.pid.map_or("-".into(), |p| p.to_string()),
            "-",
            if vlans.is_empty() {
                "-".into()
            } else {
                vlans.join(",")
            },
        ));
    }
    out
}

/// True when every enabled node `up` was asked to start is ready.
pub fn all_ready(st: &LabStatus, started: &[String]) -> bool {
    st.nodes
        .iter()
        .filter(|n| started.contains(&n.name))
        .all(|n| n.state == NodeState::Ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_states() {
        use NodeState::*;
        assert_eq!(live_node_state(Starting, true, true), Ready);
        assert_eq!(live_node_state(Starting, true, false), Starting);
        assert_eq!(live_node_state(Ready, false, true), Stopped);
        assert_eq!(live_node_state(Failed, false, false), Failed);
        assert_eq!(live_node_state(Defined, false, false), Defined);
    }

    #[test]
    fn table_of_a_dead_lab() {
        let mut s = super::super::state::tests_sample();
        s.switches[0].pid = None;
        let st = lab_status(&s);
        assert_eq!(st.nodes[0].state, NodeState::Stopped);
        assert_eq!(st.switches[0].state, SwitchState::Stopped);
        let t = table(&st);
        assert!(t.contains("a                client   stopped"), "{t}");
        assert!(t.contains("VLANs 10,20"), "{t}");
        assert!(!all_ready(&st, &["a".to_string()]));
    }
}
