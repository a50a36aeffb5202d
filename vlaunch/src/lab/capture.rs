//! `vlaunch lab capture NAME SWITCH:PORT -w FILE [--seconds N]`: every frame of one switch port
//! into a pcap file (vswitch's `port/capture` console command: the switch writes it, so nothing
//! is lost to a slow reader), until Ctrl-C or `--seconds`. Read it with tshark or Wireshark.

use super::node;
use super::switch;
use anyhow::{bail, Context, Result};
use ramux_contract::switch_dir::SwitchDir;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `sw0:3` -> ("sw0", 3).
pub fn parse_target(s: &str) -> Result<(String, u16)> {
    let Some((sw, port)) = s.rsplit_once(':') else {
        bail!("{s:?}: write SWITCH:PORT, e.g. sw0:3");
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .with_context(|| format!("{s:?}: {port:?} is not a port number (1, 2, ...)"))?;
    Ok((sw.to_string(), port))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Starts the capture, waits for Ctrl-C/SIGTERM or `seconds`, stops it. Returns the file's
/// size in bytes.
pub fn capture(
    lab: &str,
    target: &str,
    file: &Path,
    seconds: Option<f64>,
    say: &mut dyn FnMut(&str),
) -> Result<u64> {
    let (sw_name, port) = parse_target(target)?;
    let (_, st) = node::load_lab(lab)?;
    let Some(sw) = st.switches.iter().find(|s| s.name == sw_name) else {
        let names: Vec<&str> = st.switches.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "lab {lab} has no switch {sw_name} (switches: {})",
            names.join(", ")
        );
    };
    if sw.engine != "vswitch" {
        bail!(
            "switch {sw_name} runs {}, which cannot capture: use engine = \"vswitch\" (same \
             console, plus pcap), or vde_pcapplug on its socket",
            sw.engine
        );
    }
    if port > sw.ports {
        bail!(
            "switch {sw_name} has ports 1..={}: no port {port}",
            sw.ports
        );
    }
    let abs = absolute(file)?;
    let mgmt = SwitchDir::new(&sw.dir).mgmt();
    let path = abs.display().to_string();
    switch::configure(&mgmt, &[format!("port/capture {port} {path}")])
        .with_context(|| format!("starting the capture on {sw_name}:{port}"))?;
    say(&format!(
        "capturing {sw_name}:{port} into {path}: Ctrl-C stops"
    ));
    wait(seconds);
    switch::configure(&mgmt, &[format!("port/capture {port} off")])
        .with_context(|| format!("stopping the capture on {sw_name}:{port}"))?;
    let size = std::fs::metadata(&abs).map(|m| m.len()).unwrap_or(0);
    say(&format!("{path}: {size} bytes (pcap)"));
    Ok(size)
}

/// The switch daemon writes the file from its own working directory: give it an absolute path.
fn absolute(file: &Path) -> Result<PathBuf> {
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()?.join(file)
    };
    if abs.display().to_string().contains(char::is_whitespace) {
        bail!(
            "{}: the console takes one word: a path without spaces",
            abs.display()
        );
    }
    Ok(abs)
}

fn wait(seconds: Option<f64>) {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let t0 = Instant::now();
    let limit = seconds.map(Duration::from_secs_f64);
    while !STOP.load(Ordering::SeqCst) && limit.is_none_or(|l| t0.elapsed() < l) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_switch_colon_port() {
        assert_eq!(parse_target("sw0:3").unwrap(), ("sw0".into(), 3));
        assert!(parse_target("sw0")
            .unwrap_err()
            .to_string()
            .contains("SWITCH:PORT"));
        assert!(parse_target("sw0:x").is_err());
        assert!(parse_target("sw0:0").is_err());
    }
}
