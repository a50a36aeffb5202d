//! `vlaunch lab up`: the switches first (started, then given their VLANs and ports through
//! their console), then the nodes in `after` order, each gated on its ready line, at most
//! `max_booting` at once. Every resource is in `state.json` before it exists.

use super::state::{self, LabDir, LabState, NodeRecord, SwitchRecord};
use super::switch;
use crate::vm::{LaunchOptions, NotReady, Ready, Vm};
use crate::AccelRequest;
use anyhow::{bail, Context, Result};
use ramux_lab::model::{Accel, Boot, Firmware, Lab, Node};
use ramux_lab::status::{NodeState, SwitchState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Only these nodes (all enabled ones when None).
    pub only: Option<Vec<String>>,
    /// Wait for the ready lines (and gate on `after`); false: start everything and return.
    pub wait: bool,
    /// How many nodes boot at once.
    pub max_booting: usize,
    /// The labs root (`$VLAUNCH_LAB_DIR`).
    pub root: PathBuf,
}

/// The enabled nodes `up` starts, in start order (waves flattened), or an error naming an
/// unknown or disabled `--only` entry.
pub fn selected_nodes(lab: &Lab, only: Option<&[String]>) -> Result<Vec<String>> {
    let plan = ramux_lab::start_plan(lab)
        .map_err(|c| anyhow::anyhow!("the lab has `after` cycles: {c:?}"))?;
    let order: Vec<String> = plan.waves.into_iter().flatten().collect();
    let Some(only) = only else {
        return Ok(order);
    };
    for o in only {
        match lab.node(o) {
            None => bail!("--only {o}: the lab has no node {o}"),
            Some(n) if !n.enabled => bail!("--only {o}: {o} is disabled (`enabled = false`)"),
            Some(_) => {}
        }
    }
    Ok(order.into_iter().filter(|n| only.contains(n)).collect())
}

/// Which node may start next, which must give up: the pure scheduling rule of `up`.
#[derive(Debug, Clone)]
pub struct Sched {
    order: Vec<String>,
    /// The `after` entries of each node that are started by this `up`.
    deps: BTreeMap<String, Vec<String>>,
    pub states: BTreeMap<String, NodeState>,
}

impl Sched {
    pub fn new(lab: &Lab, order: &[String]) -> Sched {
        let deps = order
            .iter()
            .map(|n| {
                let after = lab.node(n).map(|x| x.after.clone()).unwrap_or_default();
                let d = after
                    .into_iter()
                    .map(|a| a.value)
                    .filter(|a| order.contains(a))
                    .collect();
                (n.clone(), d)
            })
            .collect();
        let states = order
            .iter()
            .map(|n| (n.clone(), NodeState::Defined))
            .collect();
        Sched {
            order: order.to_vec(),
            deps,
            states,
        }
    }

    fn state(&self, n: &str) -> NodeState {
        self.states.get(n).copied().unwrap_or(NodeState::Defined)
    }

    /// A waiting node one of whose `after` nodes failed: (node, the failed one).
    pub fn blocked(&self) -> Option<(String, String)> {
        self.order
            .iter()
            .filter(|n| self.state(n) == NodeState::Defined)
            .find_map(|n| {
                self.deps[n]
                    .iter()
                    .find(|d| self.state(d) == NodeState::Failed)
                    .map(|d| (n.clone(), d.clone()))
            })
    }

    /// The first waiting node whose `after` nodes are all ready.
    pub fn startable(&self) -> Option<String> {
        self.order
            .iter()
            .find(|n| {
                self.state(n) == NodeState::Defined
                    && self.deps[*n]
                        .iter()
                        .all(|d| self.state(d) == NodeState::Ready)
            })
            .cloned()
    }

    pub fn booting(&self) -> usize {
        self.states
            .values()
            .filter(|s| **s == NodeState::Starting)
            .count()
    }
}

/// The state before anything is created: every switch with its directory, every node defined.
pub fn initial_state(lab: &Lab, file: &Path, dir: &LabDir) -> LabState {
    let switches = lab
        .switches
        .iter()
        .map(|s| SwitchRecord {
            name: s.name.value.clone(),
            engine: s.engine.as_str().to_string(),
            dir: dir.switch_dir(&s.name.value),
            pid: None,
            state: SwitchState::Defined,
            ports: s.ports,
            vlans: s.vlans.keys().copied().collect(),
        })
        .collect();
    let nodes = lab
        .nodes
        .iter()
        .map(|n| NodeRecord {
            name: n.name.value.clone(),
            profile: n.profile.value.clone(),
            role: n.role.as_ref().map(|r| r.value.to_string()),
            enabled: n.enabled,
            state_dir: None,
            pid: None,
            state: NodeState::Defined,
            ready_seconds: None,
            last_lines: vec![],
            nics: n.nics.len(),
            links_down: vec![],
            config: super::changes::node_config(n),
        })
        .collect();
    LabState {
        schema_version: 1,
        lab: lab.name.value.clone(),
        file: file.to_path_buf(),
        dir: dir.0.clone(),
        switches,
        nodes,
        taps: vec![],
    }
}

/// vlaunch's launch options for `node` of a lab whose switches are in `dir`.
pub fn launch_options(node: &Node, dir: &LabDir) -> LaunchOptions {
    let mut o = LaunchOptions::new(&node.iso);
    o.name = Some(node.name.value.clone());
    o.mem_mib = u32::try_from(node.memory_mib).unwrap_or(u32::MAX);
    o.cpus = node.cpus;
    o.accel = match node.accel {
        Accel::Auto => AccelRequest::Auto,
        Accel::Kvm => AccelRequest::Kvm,
        Accel::Tcg => AccelRequest::Tcg,
    };
    o.uefi = node.firmware != Firmware::Bios;
    o.secure_boot = node.firmware == Firmware::SecureBoot;
    o.usb = node.boot == Boot::Usb;
    o.ports = node.nics.iter().map(|c| c.port.value).collect();
    o.port_switches = node
        .nics
        .iter()
        .map(|c| Some(dir.switch_dir(&c.switch.value)))
        .collect();
    o.macs = node.nics.iter().map(|c| c.mac.value).collect();
    o.models = node.nics.iter().map(|c| c.model.clone()).collect();
    o.qemu_args = node.qemu_args.clone();
    o.secrets = if node.lab_secrets {
        Some(super::secrets::overlay_path(dir, node))
    } else {
        node.secrets.clone()
    };
    o.key = node.key.clone();
    o.state_root = dir.vms_root();
    o
}

/// The running `up`: the lab, its directory and the state as saved.
struct Run<'a> {
    lab: &'a Lab,
    dir: LabDir,
    state: LabState,
    say: &'a mut dyn FnMut(&str),
}

impl Run<'_> {
    fn save(&self) -> Result<()> {
        state::save(&self.dir.state_json(), &self.state)
    }

    /// Every uplink TAP is recorded first; then per switch its TAPs (created, enslaved), its
    /// rc file and VXLAN trunk (`uplink::prepare`), the daemon, and its console commands.
    fn start_switches(&mut self) -> Result<()> {
        self.state.taps = super::uplink::records(self.lab);
        self.save()?;
        for sw in &self.lab.switches {
            let name = sw.name.value.clone();
            let sdir = self.dir.switch_dir(&name);
            let bin = switch::engine_binary(sw.engine)?;
            let x = super::uplink::prepare(self.lab, sw, &self.dir, &mut self.state)?;
            let argv = switch::start_command(sw.engine, &bin, &sdir, sw.ports, &x);
            let pid = switch::start(&argv, &sdir).with_context(|| format!("switch {name}"))?;
            let rec = self.state.switch_mut(&name).expect("recorded");
            rec.pid = Some(pid);
            rec.state = SwitchState::Running;
            self.save()?;
            let cmds = switch::switch_commands(self.lab, sw);
            switch::configure(&ramux_contract::SwitchDir::new(&sdir).mgmt(), &cmds)
                .with_context(|| format!("switch {name}"))?;
            (self.say)(&format!(
                "{name}: {} pid {pid} at {}, {} console commands ({} VLANs)",
                sw.engine.as_str(),
                sdir.display(),
                cmds.len(),
                sw.vlans.len()
            ));
            for t in self.state.taps.iter().filter(|t| t.switch == name) {
                (self.say)(&format!(
                    "uplink {}: TAP {} on port {} of {name}, in bridge {}",
                    t.uplink, t.name, t.port, t.bridge
                ));
            }
            if let Some(v) = &x.vxlan {
                (self.say)(&format!("{name}: VXLAN trunk {v}, every VLAN tagged"));
            }
        }
        Ok(())
    }

    /// Records the node's state directory, then launches it.
    fn launch(&mut self, name: &str) -> Result<Vm> {
        let node = self.lab.node(name).expect("selected nodes exist");
        let opts = launch_options(node, &self.dir);
        let rec = self.state.node_mut(name).expect("recorded");
        rec.state_dir = Some(opts.state_root.join(name));
        rec.state = NodeState::Starting;
        self.save()?;
        let vm = crate::launch(&opts, &mut |_| {})?;
        let rec = self.state.node_mut(name).expect("recorded");
        rec.pid = Some(vm.pid);
        self.save()?;
        (self.say)(&format!(
            "{name}: starting, qemu pid {} ({} MiB, {} NICs, ready_timeout {} s)",
            vm.pid,
            opts.mem_mib,
            opts.ports.len(),
            node.ready_timeout.as_secs()
        ));
        Ok(vm)
    }

    fn mark(&mut self, name: &str, st: NodeState, secs: Option<f64>, lines: Vec<String>) {
        if let Some(r) = self.state.node_mut(name) {
            r.state = st;
            r.ready_seconds = secs;
            r.last_lines = lines;
        }
    }
}

/// What a boot thread reports.
enum Msg {
    Tick(String, Duration, String),
    Done(String, Box<Vm>, std::result::Result<Ready, NotReady>),
}

/// Waits for `vm`'s ready line on a thread; ticks every 30 s.
fn watch(mut vm: Vm, timeout: Duration, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        let name = vm.name().to_string();
        let mut next = Duration::from_secs(30);
        let r = vm.wait_ready(timeout, &mut |el, last| {
            if el >= next {
                next += Duration::from_secs(30);
                let _ = tx.send(Msg::Tick(name.clone(), el, last.to_string()));
            }
        });
        let _ = tx.send(Msg::Done(name, Box::new(vm), r));
    });
}

/// Brings the lab up. Returns the final state (also saved) whether or not every node is ready.
pub fn up(lab: &Lab, file: &Path, opts: &UpOptions, say: &mut dyn FnMut(&str)) -> Result<LabState> {
    let order = selected_nodes(lab, opts.only.as_deref())?;
    let dir = LabDir::new(&opts.root, &lab.name.value);
    if dir.0.exists() {
        bail!(
            "lab {} already has a state directory {}: `vlaunch lab down {}` first",
            lab.name.value,
            dir.0.display(),
            lab.name.value
        );
    }
    std::fs::create_dir_all(&dir.0).with_context(|| {
        format!(
            "creating the lab directory {} (run as root, or set VLAUNCH_LAB_DIR)",
            dir.0.display()
        )
    })?;
    let state = initial_state(lab, file, &dir);
    let mut run = Run {
        lab,
        dir,
        state,
        say,
    };
    run.save()?;
    super::secrets::prepare(lab, &run.dir, &order, run.say)?;
    run.start_switches()?;
    if opts.wait {
        boot_gated(&mut run, &order, opts.max_booting.max(1))?;
    } else {
        for name in &order {
            match run.launch(name) {
                Ok(vm) => vm.detach(),
                Err(e) => fail(&mut run, name, format!("{e:#}")),
            }
        }
    }
    run.save()?;
    Ok(run.state)
}

fn fail(run: &mut Run, name: &str, why: String) {
    (run.say)(&format!(
        "{name}: failed: {}",
        why.lines().next().unwrap_or("")
    ));
    let lines = why.lines().map(String::from).collect();
    run.mark(name, NodeState::Failed, None, lines);
}

/// Starts nodes as their `after` nodes get ready, `max` at once, until none is left.
fn boot_gated(run: &mut Run, order: &[String], max: usize) -> Result<()> {
    let mut sched = Sched::new(run.lab, order);
    let (tx, rx) = mpsc::channel();
    loop {
        while let Some((n, dep)) = sched.blocked() {
            sched.states.insert(n.clone(), NodeState::Failed);
            fail(
                run,
                &n,
                format!("not started: {dep} (in its `after`) failed"),
            );
        }
        while sched.booting() < max {
            let Some(n) = sched.startable() else { break };
            match run.launch(&n) {
                Ok(vm) => {
                    let timeout = run.lab.node(&n).expect("exists").ready_timeout;
                    sched.states.insert(n, NodeState::Starting);
                    watch(vm, timeout, tx.clone());
                }
                Err(e) => {
                    sched.states.insert(n.clone(), NodeState::Failed);
                    fail(run, &n, format!("{e:#}"));
                }
            }
            run.save()?;
        }
        if sched.booting() == 0 {
            return Ok(());
        }
        match rx.recv().context("a boot watcher vanished")? {
            Msg::Tick(n, el, last) => {
                (run.say)(&format!("{n}: booting for {} s: {last}", el.as_secs()))
            }
            Msg::Done(n, vm, r) => {
                let st = finish(run, &n, *vm, r);
                sched.states.insert(n, st);
                run.save()?;
            }
        }
    }
}

fn finish(
    run: &mut Run,
    name: &str,
    mut vm: Vm,
    r: std::result::Result<Ready, NotReady>,
) -> NodeState {
    match r {
        Ok(ready) => {
            (run.say)(&format!(
                "{name}: ready after {:.1} s: {}",
                ready.seconds, ready.info.line
            ));
            // Up, but something did not start (a service without its secret): said, and kept
            // as the node's last lines for `status`.
            for f in &ready.failures {
                (run.say)(&format!("{name}:   but {f}"));
            }
            run.mark(name, NodeState::Ready, Some(ready.seconds), ready.failures);
            vm.detach();
            NodeState::Ready
        }
        Err(e) => {
            vm.kill();
            (run.say)(&format!(
                "{name}: failed: {}",
                e.reason.lines().next().unwrap_or("")
            ));
            for l in &e.last_lines {
                (run.say)(&format!("{name}:   | {l}"));
            }
            let mut lines = e.failures.clone();
            lines.extend(e.last_lines);
            run.mark(name, NodeState::Failed, None, lines);
            NodeState::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        let text = r#"
name = "t"
[switch.s]
vlans = { 10 = "a" }
[node.a]
profile = "client"
nics = [ { switch = "s", access = 10 } ]
[node.b]
profile = "client"
after = ["a"]
[node.c]
profile = "client"
[node.d]
profile = "client"
enabled = false
"#;
        let c = ramux_lab::check_text(text, "lab.toml", Path::new("/l"), None);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        c.lab.unwrap()
    }

    #[test]
    fn selection_in_start_order() {
        let l = lab();
        assert_eq!(selected_nodes(&l, None).unwrap(), ["a", "c", "b"]);
        let only = vec!["b".to_string(), "c".to_string()];
        assert_eq!(selected_nodes(&l, Some(&only)).unwrap(), ["c", "b"]);
        assert!(selected_nodes(&l, Some(&["x".to_string()])).is_err());
        assert!(selected_nodes(&l, Some(&["d".to_string()])).is_err());
    }

    #[test]
    fn schedule_gates_on_after_and_gives_up_after_a_failure() {
        let l = lab();
        let order = selected_nodes(&l, None).unwrap();
        let mut s = Sched::new(&l, &order);
        assert_eq!(s.startable().as_deref(), Some("a"));
        s.states.insert("a".into(), NodeState::Starting);
        assert_eq!(s.startable().as_deref(), Some("c"));
        s.states.insert("c".into(), NodeState::Starting);
        assert_eq!(s.startable(), None, "b waits for a");
        assert_eq!(s.booting(), 2);
        s.states.insert("a".into(), NodeState::Failed);
        assert_eq!(s.blocked(), Some(("b".into(), "a".into())));
        // With --only b, a is not started by this up and does not block.
        let s = Sched::new(&l, &["b".to_string()]);
        assert_eq!(s.startable().as_deref(), Some("b"));
    }

    #[test]
    fn launch_options_from_the_lab() {
        let l = lab();
        let d = LabDir::new(Path::new("/tmp/labs"), "t");
        let o = launch_options(l.node("a").unwrap(), &d);
        assert_eq!(o.name.as_deref(), Some("a"));
        assert_eq!(o.ports, [1]);
        assert_eq!(o.port_switches, [Some(PathBuf::from("/tmp/labs/t/sw/s"))]);
        assert_eq!(o.macs, [ramux_contract::mac::derived("t/a", 0)]);
        assert_eq!(o.state_root, PathBuf::from("/tmp/labs/t/vms"));
        assert_eq!(o.mem_mib, 256);
        assert_eq!(o.models, ["virtio-net-pci"]);
        assert!(o.qemu_args.is_empty());
        assert_eq!(o.iso, PathBuf::from("/l/images/client.iso"));
    }

    #[test]
    fn initial_state_records_every_switch_dir() {
        let l = lab();
        let d = LabDir::new(Path::new("/tmp/labs"), "t");
        let s = initial_state(&l, Path::new("/l/lab.toml"), &d);
        assert_eq!(s.switches[0].dir, PathBuf::from("/tmp/labs/t/sw/s"));
        assert_eq!(s.nodes.len(), 4);
        assert!(s.nodes.iter().all(|n| n.state == NodeState::Defined));
    }
}
