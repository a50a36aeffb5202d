//! The `vlaunch lab` commands as the CLI runs them: each returns the exit code and prints
//! its events (stderr) and results (stdout). main.rs only parses the arguments.

use super::state::{self, LabDir};
use super::{check, down, status, up, RealHost};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The lab file when none is given.
pub const DEFAULT_FILE: &str = "lab.toml";

fn file_or_default(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from(DEFAULT_FILE))
}

fn say(line: &str) {
    eprintln!("lab: {line}");
}

/// `validate [FILE]`: every diagnostic, exit 1 on errors.
pub fn validate(file: Option<PathBuf>) -> Result<i32> {
    let file = file_or_default(file);
    let c = check(&file, Some(&RealHost));
    eprint!("{}", ramux_lab::render_all(&c.diagnostics));
    match (&c.lab, c.errors()) {
        (Some(lab), 0) => {
            println!(
                "{}: ok: lab {}, {} nodes, {} switches, {} warnings",
                file.display(),
                lab.name.value,
                lab.nodes.len(),
                lab.switches.len(),
                c.diagnostics.len()
            );
            Ok(0)
        }
        (_, n) => {
            eprintln!("{}: {n} errors", file.display());
            Ok(1)
        }
    }
}

/// `graph [FILE] --format mermaid|dot`: also of a lab with errors (they go to stderr).
pub fn graph(file: Option<PathBuf>, dot: bool) -> Result<i32> {
    let file = file_or_default(file);
    let c = check(&file, None);
    eprint!("{}", ramux_lab::render_all(&c.diagnostics));
    let Some(lab) = c.lab else {
        return Ok(1);
    };
    if dot {
        print!("{}", ramux_lab::graph::dot(&lab));
    } else {
        print!("{}", ramux_lab::graph::mermaid(&lab));
    }
    Ok(0)
}

/// `up [FILE] [--build] [--only ...] [--no-wait]`.
pub fn up(
    file: Option<PathBuf>,
    build: bool,
    only: Option<Vec<String>>,
    wait: bool,
) -> Result<i32> {
    let file = file_or_default(file);
    let Some(lab) = prepared_lab(&file, build, only.as_deref())? else {
        return Ok(1);
    };
    let dir = LabDir::new(&state::labs_root(), &lab.name.value);
    if dir.state_json().exists() {
        return up_running(&lab, &dir, only.as_deref());
    }
    let abs = std::fs::canonicalize(&file).unwrap_or(file);
    up_fresh(&lab, &abs, only, wait)
}

/// The checked lab (diagnostics printed), its ISOs built first with `build`; None: refused.
fn prepared_lab(
    file: &Path,
    build: bool,
    only: Option<&[String]>,
) -> Result<Option<ramux_lab::Lab>> {
    let c = super::check::check_for(file, Some(&RealHost), build, only);
    eprint!("{}", ramux_lab::render_all(&c.diagnostics));
    let lab = match c.lab {
        Some(lab) if c.errors() == 0 => lab,
        _ => {
            eprintln!(
                "lab: not started: {} errors in {}",
                c.errors(),
                file.display()
            );
            return Ok(None);
        }
    };
    if build {
        let nodes = up::selected_nodes(&lab, only)?;
        if let Err(e) = super::build::build_missing(&lab, &nodes, c.site.as_ref(), &mut say) {
            eprintln!("lab: not started: {e:#}");
            return Ok(None);
        }
    }
    Ok(Some(lab))
}

/// `up` of a lab that is not up yet: the status table at the end; 0 when every selected node
/// is ready (with `--no-wait`: once started).
fn up_fresh(
    lab: &ramux_lab::Lab,
    abs: &Path,
    only: Option<Vec<String>>,
    wait: bool,
) -> Result<i32> {
    let max = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = up::UpOptions {
        only: only.clone(),
        wait,
        max_booting: max,
        root: state::labs_root(),
    };
    let name = lab.name.value.clone();
    say(&format!(
        "{name}: up from {} (at most {max} booting at once)",
        abs.display()
    ));
    let st = match up::up(lab, abs, &opts, &mut say) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("lab: error: {e:#}");
            eprintln!("lab: `vlaunch lab down {name}` removes what was started");
            return Ok(1);
        }
    };
    let doc = status::lab_status(&st);
    print!("{}", status::table(&doc));
    if !wait {
        say(&format!(
            "{name}: started; `vlaunch lab status {name}` shows the ready lines"
        ));
        return Ok(0);
    }
    let started = up::selected_nodes(lab, only.as_deref())?;
    Ok(i32::from(!status::all_ready(&doc, &started)))
}

/// `up` on a lab that is already up: say what changed in the file since, boot the selected
/// nodes that are not running (and unchanged), and exit 0 only when nothing differs and every
/// selected node is ready. Switches that died mean the lab is not up: `down` first.
fn up_running(lab: &ramux_lab::Lab, dir: &LabDir, only: Option<&[String]>) -> Result<i32> {
    let name = lab.name.value.clone();
    let mut st = state::load(&dir.state_json())?;
    let doc = status::lab_status(&st);
    if let Some(s) = doc
        .switches
        .iter()
        .find(|s| s.state != ramux_lab::status::SwitchState::Running)
    {
        bail!(
            "lab {name} has a state directory but its switch {} is not running: \
             `vlaunch lab down {name}` first",
            s.name
        );
    }
    let diff = super::changes::lab_changes(&st, lab);
    for c in &diff {
        say(&format!(
            "changed since up: {}",
            super::changes::describe(&name, c)
        ));
    }
    let changed: Vec<&str> = diff.iter().filter_map(|c| c.node.as_deref()).collect();
    let mut ok = diff.is_empty();
    for n in up::selected_nodes(lab, only)? {
        let running = doc.nodes.iter().any(|x| x.name == n && x.pid.is_some());
        if running || changed.contains(&n.as_str()) {
            continue;
        }
        let node = lab.node(&n).expect("selected nodes exist");
        ok &= super::restart::boot(dir, &mut st, node, &mut say)?;
    }
    say(&format!(
        "{name}: already up; unchanged nodes that were not running started"
    ));
    print!("{}", status::table(&status::lab_status(&st)));
    Ok(if ok { 0 } else { 1 })
}

/// `restart NAME NODE`.
pub fn restart(name: &str, node: &str) -> Result<i32> {
    let ok = super::restart::restart(name, node, &mut say)?;
    Ok(if ok { 0 } else { 1 })
}

/// `reattach NAME`: every running node's switch streams again, after a switch of the lab was
/// restarted (QEMU's stream netdevs do not reconnect: `vm::reattach_by_name`). Exit 1 when a
/// running node could not be re-attached.
pub fn reattach(name: &str) -> Result<i32> {
    let (_, st) = super::node::load_lab(name)?;
    let mut failed = 0;
    for n in &st.nodes {
        let Some(sd) = &n.state_dir else { continue };
        let root = sd.parent().unwrap_or(Path::new("/"));
        if crate::vm::running_pid(&crate::qemu::StatePaths::in_dir(sd)).is_none() {
            continue;
        }
        match crate::vm::reattach_by_name(root, &n.name) {
            Ok(v) if v.is_empty() => say(&format!("{}: no switch stream", n.name)),
            Ok(v) => {
                let eth: Vec<String> = v.iter().map(|i| format!("eth{i}")).collect();
                say(&format!("{}: re-attached {}", n.name, eth.join(", ")));
            }
            Err(e) => {
                failed += 1;
                eprintln!("vlaunch: {}: {e:#}", n.name);
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `fault NAME NODE FAULT`.
pub fn fault(name: &str, node: &str, fault: &str) -> Result<i32> {
    let f: super::fault::FaultCmd = fault.parse().map_err(anyhow::Error::msg)?;
    let (dir, mut st, h) = super::node::by_name(name, node)?;
    let line = super::fault::apply(&h, f)?;
    super::fault::record(&dir, &mut st, node, f)?;
    println!("{line}");
    Ok(0)
}

/// `capture NAME SWITCH:PORT -w FILE [--seconds N]`.
pub fn capture(name: &str, target: &str, file: &Path, seconds: Option<f64>) -> Result<i32> {
    super::capture::capture(name, target, file, seconds, &mut say)?;
    Ok(0)
}

/// `test [NAME] [--json] [--junit FILE]`: one line per result on stderr, the summary (or the
/// JSON document) on stdout; exit 0 only when every test passed.
pub fn test(name: Option<String>, json: bool, junit: Option<PathBuf>) -> Result<i32> {
    let name = lab_name(name.as_deref())?;
    let r = super::labtest::run_all(&name, &mut |l| eprintln!("{l}"))?;
    if let Some(f) = junit {
        crate::vm::write_atomic(&f, ramux_lab::report::junit(&r).as_bytes())?;
    }
    if json {
        print!("{}", r.json());
    } else {
        println!("{name}: {}", r.summary());
    }
    Ok(r.exit_code())
}

/// The lab name of `arg`: a name, or a lab file (default ./lab.toml) whose `name` it reads.
pub fn lab_name(arg: Option<&str>) -> Result<String> {
    let path = match arg {
        Some(a) if !Path::new(a).is_file() => return Ok(a.to_string()),
        Some(a) => PathBuf::from(a),
        None => PathBuf::from(DEFAULT_FILE),
    };
    let c = ramux_lab::check_file(&path, None);
    match c.lab {
        Some(l) if !l.name.value.is_empty() => Ok(l.name.value),
        _ => bail!(
            "no lab name given and {} names none: pass the lab's NAME",
            path.display()
        ),
    }
}

/// `down [NAME] [--force]`.
pub fn down(name: Option<String>, force: bool) -> Result<i32> {
    let name = lab_name(name.as_deref())?;
    down::down_by_name(&state::labs_root(), &name, force, &mut say)?;
    Ok(0)
}

fn load(name: &str) -> Result<state::LabState> {
    Ok(super::node::load_lab(name)?.1)
}

/// `status [NAME] [--json] [--watch]`. `--watch` prints the table (or JSON document) again
/// each time it changes, checking every second, until interrupted.
pub fn status(name: Option<String>, json: bool, watch: bool) -> Result<i32> {
    let name = lab_name(name.as_deref())?;
    let render = |doc: &ramux_lab::LabStatus| {
        if json {
            doc.to_json()
        } else {
            status::table(doc)
        }
    };
    let mut last = String::new();
    loop {
        let text = render(&status::lab_status(&load(&name)?));
        if text != last {
            if watch && !last.is_empty() {
                println!();
            }
            print!("{text}");
            use std::io::Write;
            std::io::stdout().flush()?;
            last = text;
        }
        if !watch {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// `list`: every lab with a state directory.
pub fn list() -> Result<i32> {
    let root = state::labs_root();
    let mut names: Vec<String> = match std::fs::read_dir(&root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    names.sort();
    println!(
        "{:<16} {:>5} {:>8} {:>8}  FILE",
        "LAB", "NODES", "READY", "SWITCHES"
    );
    for n in names {
        let st = load(&n)?;
        let doc = status::lab_status(&st);
        let ready = doc
            .nodes
            .iter()
            .filter(|x| x.state == ramux_lab::status::NodeState::Ready)
            .count();
        println!(
            "{:<16} {:>5} {:>8} {:>8}  {}",
            n,
            doc.nodes.len(),
            ready,
            doc.switches.len(),
            st.file.display()
        );
    }
    Ok(0)
}

/// The serial socket of `node` of the running lab `lab` (for `console`).
pub fn serial_sock(lab: &str, node: &str) -> Result<(PathBuf, String)> {
    let (_, _, h) = super::node::by_name(lab, node)?;
    h.running()?;
    Ok((h.paths.serial_sock.clone(), h.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_from_a_name_or_a_file() {
        assert_eq!(lab_name(Some("cenbg2009")).unwrap(), "cenbg2009");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.toml");
        std::fs::write(&f, "name = \"two\"\n").unwrap();
        assert_eq!(lab_name(f.to_str()).unwrap(), "two");
        std::fs::write(&f, "nodes = 1\n").unwrap();
        assert!(lab_name(f.to_str()).is_err());
    }
}
