//! `vlaunch lab fault NAME NODE crash|poweroff|unplug[:NIC]|plug[:NIC]`: breaking a node on
//! purpose the ways real hardware breaks. `crash` is a power loss (SIGKILL of QEMU: no ACPI, no
//! goodbye advert from vrrpd), `poweroff` the power button (ACPI: the guest shuts down cleanly),
//! `unplug`/`plug` pull and put back a cable (QMP `set_link` on the NIC's netdev: the guest sees
//! carrier loss, the switch port stays).

use super::node::NodeHandle;
use super::state::{self, LabDir, LabState};
use crate::qmp::Qmp;
use anyhow::{bail, Context, Result};
use ramux_lab::status::NodeState;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A fault as the command line writes it. `None` NIC: every NIC of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCmd {
    Crash,
    Poweroff,
    Unplug(Option<usize>),
    Plug(Option<usize>),
}

impl FromStr for FaultCmd {
    type Err = String;

    /// `crash`, `poweroff`, `unplug`, `unplug:1`, `unplug:eth1`, `plug:eth1`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (word, nic) = match s.split_once(':') {
            Some((w, n)) => (w, Some(nic_index(n)?)),
            None => (s, None),
        };
        match (word, nic) {
            ("crash", None) => Ok(FaultCmd::Crash),
            ("poweroff", None) => Ok(FaultCmd::Poweroff),
            ("unplug", n) => Ok(FaultCmd::Unplug(n)),
            ("plug", n) => Ok(FaultCmd::Plug(n)),
            ("crash" | "poweroff", Some(_)) => Err(format!("{word} takes no NIC: write {word}")),
            _ => Err(format!(
                "unknown fault {s:?}: crash, poweroff, unplug[:NIC] or plug[:NIC] (NIC: 0, 1, ... or eth0, eth1, ...)"
            )),
        }
    }
}

/// `1` or `eth1` -> 1.
fn nic_index(s: &str) -> Result<usize, String> {
    s.strip_prefix("eth")
        .unwrap_or(s)
        .parse()
        .map_err(|_| format!("{s:?} is not a NIC: write its index (1) or guest name (eth1)"))
}

impl From<ramux_lab::model::Fault> for FaultCmd {
    fn from(f: ramux_lab::model::Fault) -> Self {
        use ramux_lab::model::Fault;
        match f {
            Fault::Crash => FaultCmd::Crash,
            Fault::Poweroff => FaultCmd::Poweroff,
            Fault::Unplug => FaultCmd::Unplug(None),
        }
    }
}

/// The NIC indices a `set_link` fault acts on, checked against the node's NIC count.
pub fn nics_of(nic: Option<usize>, count: usize) -> Result<Vec<usize>> {
    match nic {
        None if count == 0 => bail!("the node has no NIC to unplug"),
        None => Ok((0..count).collect()),
        Some(i) if i < count => Ok(vec![i]),
        Some(i) => bail!(
            "the node has {count} NICs (eth0..eth{}): no eth{i}",
            count - 1
        ),
    }
}

/// How many NICs the node was launched with (its vm.json).
fn nic_count(h: &NodeHandle) -> Result<usize> {
    let data = std::fs::read(&h.paths.vm_json)
        .with_context(|| format!("reading {}", h.paths.vm_json.display()))?;
    let rec: crate::vm::VmRecord = serde_json::from_slice(&data)
        .with_context(|| format!("parsing {}", h.paths.vm_json.display()))?;
    Ok(rec.spec.nics.len())
}

/// Applies `f` to the running node; returns what happened, one line.
pub fn apply(h: &NodeHandle, f: FaultCmd) -> Result<String> {
    let pid = h.running()?;
    match f {
        FaultCmd::Crash => crash(h, pid),
        FaultCmd::Poweroff => {
            let t0 = Instant::now();
            let out = crate::vm::stop_by_name(
                h.dir.parent().context("a VM directory has a parent")?,
                &h.name,
                Duration::from_secs(60),
            )?;
            Ok(format!(
                "{}: power button pressed: {} after {:.1} s",
                h.label(),
                super::down::stop_words(&out),
                t0.elapsed().as_secs_f64()
            ))
        }
        FaultCmd::Unplug(n) | FaultCmd::Plug(n) => {
            let up = matches!(f, FaultCmd::Plug(_));
            let nics = nics_of(n, nic_count(h)?)?;
            set_links(h, &nics, up)?;
            let names: Vec<String> = nics.iter().map(|i| format!("eth{i}")).collect();
            let what = if up { "plugged" } else { "unplugged" };
            Ok(format!("{}: {what} {}", h.label(), names.join(", ")))
        }
    }
}

/// SIGKILL: QEMU vanishes as a machine does when its power is cut.
fn crash(h: &NodeHandle, pid: u32) -> Result<String> {
    use nix::sys::signal::{kill, Signal};
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
        .with_context(|| format!("SIGKILL of QEMU pid {pid}"))?;
    let t0 = Instant::now();
    while crate::vm::pid_is_our_qemu(pid, &h.paths) {
        if t0.elapsed() > Duration::from_secs(5) {
            bail!("QEMU pid {pid} of {} survives SIGKILL", h.label());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(format!(
        "{}: crashed (SIGKILL of QEMU pid {pid})",
        h.label()
    ))
}

/// QMP `set_link` on each NIC's netdev (`net<i>`, as vlaunch names them).
fn set_links(h: &NodeHandle, nics: &[usize], up: bool) -> Result<()> {
    let mut q = Qmp::connect(&h.paths.qmp_sock, Duration::from_secs(5))
        .with_context(|| format!("QMP of {}", h.label()))?;
    for i in nics {
        let args = serde_json::json!({"name": format!("net{i}"), "up": up});
        q.execute("set_link", Some(args))
            .with_context(|| format!("set_link net{i} of {}", h.label()))?;
    }
    Ok(())
}

/// Records what a fault did to the node in state.json: a crash or power-off stops it, a cable
/// change is kept in `links_down` (shown by `status`).
pub fn record(dir: &LabDir, st: &mut LabState, node: &str, f: FaultCmd) -> Result<()> {
    let Some(n) = st.node_mut(node) else {
        return Ok(());
    };
    match f {
        FaultCmd::Crash | FaultCmd::Poweroff => {
            n.state = NodeState::Stopped;
            n.pid = None;
            n.links_down.clear();
        }
        FaultCmd::Unplug(i) => {
            n.links_down
                .extend(i.map_or_else(|| (0..n.nics).collect(), |i| vec![i]));
            n.links_down.sort_unstable();
            n.links_down.dedup();
        }
        FaultCmd::Plug(None) => n.links_down.clear(),
        FaultCmd::Plug(Some(i)) => n.links_down.retain(|&x| x != i),
    }
    state::save(&dir.state_json(), st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_the_command_line_writes_them() {
        assert_eq!("crash".parse(), Ok(FaultCmd::Crash));
        assert_eq!("poweroff".parse(), Ok(FaultCmd::Poweroff));
        assert_eq!("unplug".parse(), Ok(FaultCmd::Unplug(None)));
        assert_eq!("unplug:1".parse(), Ok(FaultCmd::Unplug(Some(1))));
        assert_eq!("plug:eth0".parse(), Ok(FaultCmd::Plug(Some(0))));
        let e = "crash:1".parse::<FaultCmd>().unwrap_err();
        assert!(e.contains("takes no NIC"), "{e}");
        let e = "melt".parse::<FaultCmd>().unwrap_err();
        assert!(e.contains("crash, poweroff, unplug[:NIC]"), "{e}");
        let e = "unplug:ethX".parse::<FaultCmd>().unwrap_err();
        assert!(e.contains("not a NIC"), "{e}");
    }

    #[test]
    fn nic_choice_is_checked_against_the_node() {
        assert_eq!(nics_of(None, 2).unwrap(), [0, 1]);
        assert_eq!(nics_of(Some(1), 2).unwrap(), [1]);
        let e = nics_of(Some(2), 2).unwrap_err().to_string();
        assert!(e.contains("eth0..eth1): no eth2"), "{e}");
        assert!(nics_of(None, 0).is_err());
    }

    #[test]
    fn records_keep_the_unplugged_cables() {
        let d = tempfile::tempdir().unwrap();
        let dir = LabDir::new(d.path(), "two");
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut st = state::tests_sample();
        st.dir = dir.0.clone();
        st.nodes[0].nics = 2;
        record(&dir, &mut st, "a", FaultCmd::Unplug(Some(1))).unwrap();
        record(&dir, &mut st, "a", FaultCmd::Unplug(None)).unwrap();
        assert_eq!(st.nodes[0].links_down, [0, 1]);
        record(&dir, &mut st, "a", FaultCmd::Plug(Some(0))).unwrap();
        assert_eq!(st.nodes[0].links_down, [1]);
        record(&dir, &mut st, "a", FaultCmd::Crash).unwrap();
        assert_eq!(st.nodes[0].state, NodeState::Stopped);
        assert!(st.nodes[0].links_down.is_empty());
        assert_eq!(state::load(&dir.state_json()).unwrap(), st);
    }
}
