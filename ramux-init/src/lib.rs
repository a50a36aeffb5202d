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
pub mod keep;
pub mod keep_cmd;
pub mod power;
pub mod secrets;
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

/// What `ramux-init check` found (printed as text, or as JSON with `--json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub ok: bool,
    /// Every error as `file:line[:col]: message`.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The exact ready line PID 1 will print (when the config is valid).
    pub ready_line: Option<String>,
    pub modules: usize,
    pub services: Vec<String>,
    pub sysctl_settings: Option<usize>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for e in &self.errors {
            writeln!(f, "{e}")?;
        }
        if let Some(n) = self.sysctl_settings {
            writeln!(f, "sysctl.conf: {n} settings")?;
        }
        if let Some(r) = &self.ready_line {
            writeln!(
                f,
                "ok: would print `{r}`, {} modules, services: [{}]",
                self.modules,
                self.services.join(", ")
            )?;
        }
        Ok(())
    }
}

/// `ramux-init check`: validates an appliance.toml (and optionally a sysctl.conf) exactly the
/// way PID 1 will read them.
pub fn check(appliance: &Path, sysctl_conf: Option<&Path>) -> CheckReport {
    let mut r = CheckReport {
        ok: false,
        errors: Vec::new(),
        warnings: Vec::new(),
        ready_line: None,
        modules: 0,
        services: Vec::new(),
        sysctl_settings: None,
    };
    let name = appliance.display().to_string();
    match std::fs::read_to_string(appliance) {
        Err(e) => r.errors.push(format!("{name}: {e}")),
        Ok(text) => match config::parse(&name, &text) {
            Err(e) => r.errors.push(e.to_string()),
            Ok(parsed) => {
                r.warnings = parsed.warnings;
                let a = &parsed.appliance;
                r.ready_line = Some(console::ready_line(a));
                r.modules = a.modules.len();
                r.services = a.services.iter().map(|s| s.name.clone()).collect();
            }
        },
    }
    if let Some(p) = sysctl_conf {
        match std::fs::read_to_string(p) {
            Err(e) => r.errors.push(format!("{}: {e}", p.display())),
            Ok(text) => {
                let (settings, errors) = sysctl::parse(&text);
                r.errors.extend(
                    errors
                        .iter()
                        .map(|e| format!("{}:{}: {}", p.display(), e.line, e.message)),
                );
                r.sysctl_settings = Some(settings.len());
            }
        }
    }
    r.ok = r.errors.is_empty();
    r
}
