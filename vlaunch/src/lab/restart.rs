//! `vlaunch lab restart NAME NODE`: power the node off (ACPI, then killed after a grace) and
//! boot it again from the lab file as it is now, waiting for its ready line. Changes of the VM
//! alone (memory, ISO, MAC, ...) are applied; a change of the switch side of a NIC is refused
//! (the switch keeps the ports `up` configured), with the command that applies it.

use super::changes;
use super::node::{self, NodeHandle};
use super::state::{self, LabDir, LabState};
use super::up::launch_options;
use super::{check, RealHost};
use anyhow::{bail, Context, Result};
use ramux_lab::model::Node;
use ramux_lab::status::NodeState;

/// The node's definition in the lab file the running lab was started from, checked.
fn node_from_file(st: &LabState, name: &str) -> Result<Node> {
    let c = check(&st.file, Some(&RealHost));
    if c.errors() > 0 {
        eprint!("{}", ramux_lab::render_all(&c.diagnostics));
        bail!(
            "{} has errors now: correct it before restarting {name}",
            st.file.display()
        );
    }
    let lab = c.lab.context("a checked lab")?;
    let Some(n) = lab.node(name) else {
        bail!(
            "{} no longer has node {name}: `vlaunch lab down {}` and `up` apply that",
            st.file.display(),
            st.lab
        );
    };
    Ok(n.clone())
}

/// Stops the node if it runs: ACPI first (the way an operator restarts a box), killed after
/// the grace `down` uses.
fn stop(h: &NodeHandle, say: &mut dyn FnMut(&str)) -> Result<()> {
    if h.pid.is_none() {
        return Ok(());
    }
    let root = h.dir.parent().context("a VM directory has a parent")?;
    let out = crate::vm::stop_by_name(root, &h.name, super::down::VM_GRACE * 2)?;
    say(&format!("{}: {}", h.name, super::down::stop_words(&out)));
    Ok(())
}

/// Restarts `node` of the running lab `lab`; true when it printed its ready line again.
pub fn restart(lab: &str, node_name: &str, say: &mut dyn FnMut(&str)) -> Result<bool> {
    let (dir, mut st, h) = node::by_name(lab, node_name)?;
    let n = node_from_file(&st, node_name)?;
    let rec = st.node_mut(node_name).context("found above")?;
    let diff = changes::node_changes(node_name, &rec.config, &changes::node_config(&n));
    if let Some(c) = diff.iter().find(|c| !c.restart_applies) {
        bail!("{}", changes::describe(lab, c));
    }
    for c in &diff {
        say(&format!("{node_name}: applying {}", c.what));
    }
    stop(&h, say)?;
    boot(&dir, &mut st, &n, say)
}

/// Launches `n` into its lab directory and waits for its ready line, recording each step.
pub fn boot(dir: &LabDir, st: &mut LabState, n: &Node, say: &mut dyn FnMut(&str)) -> Result<bool> {
    let name = n.name.value.clone();
    let opts = launch_options(n, dir);
    let rec = st.node_mut(&name).context("a recorded node")?;
    rec.state_dir = Some(opts.state_root.join(&name));
    rec.state = NodeState::Starting;
    rec.links_down.clear();
    rec.config = changes::node_config(n);
    rec.nics = n.nics.len();
    state::save(&dir.state_json(), st)?;
    let mut vm = crate::launch(&opts, &mut |_| {})?;
    let rec = st.node_mut(&name).context("a recorded node")?;
    rec.pid = Some(vm.pid);
    state::save(&dir.state_json(), st)?;
    say(&format!("{name}: starting, qemu pid {}", vm.pid));
    let r = vm.wait_ready(n.ready_timeout, &mut |_, _| {});
    let rec = st.node_mut(&name).context("a recorded node")?;
    let ok = match r {
        Ok(ready) => {
            say(&format!("{name}: ready after {:.1} s", ready.seconds));
            for f in &ready.failures {
                say(&format!("{name}:   but {f}"));
            }
            rec.state = NodeState::Ready;
            rec.ready_seconds = Some(ready.seconds);
            rec.last_lines = ready.failures;
            vm.detach();
            true
        }
        Err(e) => {
            vm.kill();
            say(&format!("{name}: failed: {}", e.reason));
            rec.state = NodeState::Failed;
            rec.last_lines = e.last_lines;
            false
        }
    };
    state::save(&dir.state_json(), st)?;
    Ok(ok)
}
