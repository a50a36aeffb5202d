//! ramux-init: PID 1 of ramux appliances.
//!
//! The whole root filesystem is the initramfs, so this program is the entire boot: it mounts the
//! pseudo filesystems, loads the module list vbuild computed, sets the hostname, applies the
//! network configuration labwall generated, supervises the profile's services, reaps orphans,
//! prints the ready line the launcher and tests wait for, and powers off cleanly on the ACPI
//! power button or busybox `poweroff`. See docs/init.md for why this is Rust and not busybox init
//! with scripts.
//!
//! Pure parts ([`config`], [`sysctl`], [`supervise`], [`evdev`], [`console`], [`power`]) are unit
//! tested; [`sys`] and [`boot`] are the thin I/O layer, tested by booting QEMU (tests/boot.rs).

pub mod acpi;
pub mod boot;
pub mod config;
pub mod console;
pub mod evdev;
pub mod power;
pub mod supervise;
pub mod sys;
pub mod sysctl;

use std::path::Path;

/// Entry point when running as PID 1. Never returns: a panic is caught, reported on the console,
/// and init keeps reaping so the kernel does not panic and the console shell stays usable.
pub fn pid1() -> ! {
    std::panic::set_hook(Box::new(|info| {
        sys::Console::detect().say(&console::failed_line("init", &format!("panic: {info}")));
    }));
    let _ = std::panic::catch_unwind(|| boot::run());
    // Only reached after a bug: a minimal loop that still gives the operator a shell and
    // honours `poweroff`/`reboot`.
    let _ = std::panic::catch_unwind(|| boot::last_resort());
    loop {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(-1), None);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `ramux-init check`: validates an appliance.toml (and optionally a sysctl.conf) the way PID 1
/// will read it; returns a summary or every error as `file:line:col: message`.
pub fn check(appliance: &Path, sysctl_conf: Option<&Path>) -> Result<String, String> {
    let name = appliance.display().to_string();
    let text = std::fs::read_to_string(appliance).map_err(|e| format!("{name}: {e}"))?;
    let parsed = config::parse(&name, &text).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for w in &parsed.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if let Some(p) = sysctl_conf {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let (settings, errors) = sysctl::parse(&text);
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(|e| format!("{}:{}: {}", p.display(), e.line, e.message))
                .collect::<Vec<_>>()
                .join("\n"));
        }
        out.push_str(&format!("{}: {} settings\n", p.display(), settings.len()));
    }
    let a = &parsed.appliance;
    out.push_str(&format!(
        "{name}: ok: {} (would print `{}`), {} modules, {} services\n",
        a.profile,
        console::ready_line(a),
        a.modules.len(),
        a.services.len()
    ));
    Ok(out)
}
