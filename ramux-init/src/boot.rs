//! The PID 1 sequence (docs/init.md) and its event loop. Never returns: PID 1 exiting
//! panics the kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::{reboot, set_cad_enabled, RebootMode};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{sync, Pid};

use crate::config::{self, Appliance, APPLIANCE_TOML};
use crate::console;
use crate::evdev;
use crate::power::Action;
use crate::supervise::{Cause, Exit, Spec, State, Supervisor};
use crate::sys::{self, Console};

/// Optional network configuration, applied in this order when present.
pub use ramux_contract::files::{NETWORK_IP, RULESET_NFT, SYSCTL_CONF};

/// How long services get between SIGTERM and SIGKILL at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often to look for a power button that appeared late (hot-plugged or slow module).
const RESCAN: Duration = Duration::from_secs(5);
/// Upper bound for `ip -batch` / `nft -f`, so a hung tool cannot stall PID 1 forever.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// Signals PID 1 takes through its signalfd.
const SIGNALS: [Signal; 8] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPWR,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// What the event loop supervises besides services: index -> kind.
enum Kind {
    Service(config::Service),
    Shell(String),
}

/// Runs the boot sequence and the supervision loop.
pub fn run() -> ! {
    let t0 = Instant::now();
    let mount_errors = sys::mount_early();
    sys::setup_stdio();
    let con = Console::detect();
    for e in mount_errors {
        con.say(&console::failed_line("mount", &e));
    }
    let mut mask = SigSet::empty();
    for s in SIGNALS {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        con.say(&console::failed_line("signals", &e.to_string()));
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC);
    // Ctrl-Alt-Del becomes SIGINT to us instead of an immediate kernel reboot.
    let _ = set_cad_enabled(false);
    sys::runtime_dirs();

    let text =
        std::fs::read_to_string(APPLIANCE_TOML).map_err(|e| format!("{APPLIANCE_TOML}: {e}"));
    let parsed = text.and_then(|t| config::parse(APPLIANCE_TOML, &t).map_err(|e| e.to_string()));
    let mut kinds = Vec::new();
    let appliance = match parsed {
        Ok(p) => {
            for w in &p.warnings {
                con.say(&format!("ramux: warning: {w}"));
            }
            Some(p.appliance)
        }
        Err(e) => {
            con.say(&console::failed_line("config", &e));
            con.say("ramux: emergency shell on the console; fix the image, type `poweroff` to power off");
            None
        }
    };
    let mut phases = String::new();
    let mut secrets = None;
    let mut fatal = None;
    if let Some(a) = &appliance {
        let from_key;
        (phases, fatal, from_key) = bring_up(&con, a);
        if fatal.is_none() {
            kinds.extend(a.services.iter().cloned().map(Kind::Service));
        }
        // After the module list (qemu_fw_cfg), before any service starts.
        let (installed, lines) = crate::secrets::install(from_key.secrets.as_deref());
        for l in lines {
            con.say(&l);
        }
        secrets = Some(installed);
    }
    // Per-boot identity, after the module list so a virtio_rng in it can feed the entropy pool
    // (without one, the first read waits for the kernel's jitter entropy: ~1 s under TCG).
    if let Err(e) = sys::write_machine_id() {
        con.say(&console::failed_line("machine-id", &e));
    }
    // Make the power button work even if the image's module list lacks button/evdev.
    ensure_power_button_modules(&con);
    for tty in ["/dev/ttyS0", "/dev/tty1"] {
        if sys::tty_usable(tty) {
            kinds.push(Kind::Shell(tty.to_string()));
        }
    }
    let clock = move || t0.elapsed().as_millis() as u64;
    let specs = kinds
        .iter()
        .map(|k| match k {
            Kind::Service(s) => Spec {
                name: s.name.clone(),
                restart_delay_ms: s.restart_delay_ms,
                quiet: false,
            },
            Kind::Shell(tty) => Spec {
                name: format!("shell-{}", tty.trim_start_matches("/dev/")),
                restart_delay_ms: 500,
                quiet: true,
            },
        })
        .collect();
    let mut sup = Supervisor::new(specs, clock());
    hold_back_without_secrets(&con, &mut sup, &kinds, secrets.as_ref());
    // Services before the ready line; console shells after it, so a shell prompt (which has no
    // trailing newline) can never be glued in front of the ready line.
    start_due(&con, &mut sup, &kinds, clock(), |k| {
        matches!(k, Kind::Service(_))
    });
    // Subscribed before the ready line: whoever waits for that line may press the power button
    // the moment it appears, and an ACPI event sent before the subscription is lost.
    let mut power = PowerWatch::open(&con);
    power.rescan(&con, clock());
    if let (Some(a), Some(why)) = (&appliance, &fatal) {
        // Fail closed: no forwarding, no services (a router must not take the VIPs it cannot
        // filter for), and no ready line, so whoever waits for it hears the failure.
        con.say(&console::not_ready_line(
            a,
            &format!("{why}; forwarding stays off, services not started"),
        ));
    } else if let Some(a) = &appliance {
        con.say(&console::ready_line(a));
        if let Some(up) = sys::uptime() {
            con.say(&format!(
                "ramux: up {up:.2} s after kernel start (init {:.2} s: {phases})",
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let sfd = match sfd {
        Ok(s) => s,
        Err(e) => {
            con.say(&console::failed_line("signalfd", &e.to_string()));
            fallback_loop(&con, &mut sup, &kinds, &clock)
        }
    };
    event_loop(&con, &mut sup, &kinds, &sfd, &mut power, &clock)
}

/// Gives up on every service whose `secrets` are not all in place, with one `ramux: failed`
/// line each, before the first start (docs/secrets.md).
fn hold_back_without_secrets(
    con: &Console,
    sup: &mut Supervisor,
    kinds: &[Kind],
    installed: Option<&crate::secrets::Installed>,
) {
    let Some(installed) = installed else { return };
    let root = Path::new(crate::secrets::RUN_DIR);
    for (idx, k) in kinds.iter().enumerate() {
        let Kind::Service(s) = k else { continue };
        if let Err(why) = crate::secrets::check(root, &s.secrets, installed) {
            sup.give_up(idx);
            con.say(&console::failed_line(&s.name, &why));
        }
    }
}

/// Modules, the site key, hostname, loopback, network configuration (everything before
/// services). Returns where the time went, for the boot-time line.
fn bring_up(con: &Console, a: &Appliance) -> (String, Option<String>, crate::keep::AtBoot) {
    let running = sys::kernel_release();
    if !running.is_empty() && running != a.kernel_release {
        con.say(&format!(
            "ramux: warning: appliance.toml is for kernel {} but {running} is running",
            a.kernel_release
        ));
    }
    let t = Instant::now();
    let (failures, no_device) = sys::load_modules(&a.kernel_release, &a.modules);
    for (name, why) in failures {
        con.say(&format!("ramux: failed module {name}: {why}"));
    }
    if !no_device.is_empty() {
        con.say(&format!(
            "ramux: modules without their hardware here (skipped): {}",
            no_device.join(" ")
        ));
    }
    let modules = t.elapsed();
    // The key's files replace the image's before anything reads them (docs/keep.md).
    let t = Instant::now();
    let kept = crate::keep::at_boot(&a.hostname, &mut |l| con.say(&l));
    let key = t.elapsed();
    if let Err(e) = sys::set_hostname(&a.hostname) {
        con.say(&console::failed_line("hostname", &e));
    }
    if let Err(e) = sys::loopback_up() {
        con.say(&console::failed_line("loopback", &e));
    }
    let t = Instant::now();
    let fatal = network(con);
    let phases = format!(
        "modules {:.2} s, key {:.2} s, network {:.2} s",
        modules.as_secs_f64(),
        key.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    (phases, fatal, kept)
}

/// A key that makes the machine forward packets between interfaces.
pub fn is_forwarding(key: &str) -> bool {
    let k = key.replace('/', ".");
    k.ends_with(".ip_forward") || k.ends_with(".forwarding")
}

/// sysctl.conf (forwarding last), network.ip, ruleset.nft. Fails closed: forwarding is switched
/// on only once the addresses and the ruleset are in place, so a router whose firewall did not
/// load never forwards unfiltered. Returns why it failed, if it did.
fn network(con: &Console) -> Option<String> {
    let sysctl = Path::new(SYSCTL_CONF);
    if sysctl.exists() {
        for e in sys::apply_sysctl_where(sysctl, true, |k| !is_forwarding(k)) {
            con.say(&console::failed_line("labwall", &e));
        }
    }
    let mut fatal = None;
    let ip = ["/sbin/ip", "/bin/ip", "/usr/sbin/ip", "/usr/bin/ip"];
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];
    for (file, tools, args, pkg) in [
        (NETWORK_IP, &ip[..], "-batch", "iproute2"),
        (RULESET_NFT, &nft[..], "-f", "nftables"),
    ] {
        // The ruleset loads even when network.ip failed: more filtering is the safe side.
        if !Path::new(file).exists() {
            continue;
        }
        let r = match sys::find_tool(tools) {
            Some(t) => sys::run_tool(&[&t, args, file], TOOL_TIMEOUT),
            None => Err(format!(
                "{file} present but no `{}` in the image (Debian package {pkg})",
                tools[0].rsplit('/').next().unwrap_or("")
            )),
        };
        if let Err(e) = r {
            con.say(&console::failed_line("labwall", &e));
            fatal.get_or_insert(format!("{file} did not apply"));
        }
    }
    if fatal.is_none() && sysctl.exists() {
        for e in sys::apply_sysctl_where(sysctl, false, is_forwarding) {
            con.say(&console::failed_line("labwall", &e));
        }
    }
    fatal
}

/// Loads `button` (ACPI power button) and `evdev` (its /dev/input node) from the running
/// kernel's module tree when they exist there and are not loaded yet. Silent when absent: a
/// kernel with them built in needs nothing.
fn ensure_power_button_modules(con: &Console) {
    let base = Path::new("/lib/modules").join(sys::kernel_release());
    for (name, rel) in [
        ("button", "kernel/drivers/acpi/button.ko"),
        ("evdev", "kernel/drivers/input/evdev.ko"),
    ] {
        let path = base.join(rel);
        if !sys::module_present(name) && path.exists() {
            match sys::load_module(&path) {
                Ok(sys::ModuleLoad::Loaded) => {}
                Ok(sys::ModuleLoad::NoDevice) => con.say(&format!(
                    "ramux: module {name}: no such device here (skipped)"
                )),
                Err(why) => con.say(&format!("ramux: failed module {name}: {why}")),
            }
        }
    }
}

fn start_due(
    con: &Console,
    sup: &mut Supervisor,
    kinds: &[Kind],
    now: u64,
    which: impl Fn(&Kind) -> bool,
) {
    for idx in sup.due(now).into_iter().filter(|&i| which(&kinds[i])) {
        let r = match &kinds[idx] {
            Kind::Service(s) => sys::spawn_service(s),
            Kind::Shell(tty) => sys::spawn_shell(tty),
        };
        match r {
            Ok(pid) => sup.started(idx, pid, now),
            Err(why) => {
                let f = sup.spawn_failed(idx, why, now);
                con.say(&console::failure_line(&f));
            }
        }
    }
}

/// Reaps every exited child (services and orphans re-parented to PID 1).
fn reap(con: &Console, sup: &mut Supervisor, now: u64) -> usize {
    let mut n = 0;
    loop {
        let (pid, exit) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return n,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return n,
        };
        n += 1;
        if let Some(f) = sup.exited(pid.as_raw(), exit, now) {
            // Quiet entries (shells) report only spawn failures; nothing is reported while
            // stopping, where exits are expected.
            let stopping = f.retry_in_ms.is_none();
            if !stopping && (!f.quiet || matches!(f.cause, Cause::SpawnFailed(_))) {
                con.say(&console::failure_line(&f));
            }
        }
    }
}

/// The power button's two sources: ACPI netlink events (needs only the `button` module) and
/// evdev devices reporting KEY_POWER, rescanned every [`RESCAN`] for late ones.
struct PowerWatch {
    acpi: Option<(std::os::fd::OwnedFd, u16)>,
    buttons: BTreeMap<String, File>,
    last_scan: Option<u64>,
}

impl PowerWatch {
    fn open(con: &Console) -> PowerWatch {
        let acpi = match sys::acpi_event_socket() {
            Ok(a) => Some(a),
            Err(e) => {
                con.say(&format!(
                    "ramux: warning: no ACPI netlink events ({e}); power button only via /dev/input"
                ));
                None
            }
        };
        PowerWatch {
            acpi,
            buttons: BTreeMap::new(),
            last_scan: None,
        }
    }

    /// Opens power-button devices that appeared since the last scan, at most every [`RESCAN`].
    fn rescan(&mut self, con: &Console, now: u64) {
        if self
            .last_scan
            .is_some_and(|t| now.saturating_sub(t) < RESCAN.as_millis() as u64)
        {
            return;
        }
        self.last_scan = Some(now);
        for (label, f) in sys::power_button_devices() {
            if let std::collections::btree_map::Entry::Vacant(v) = self.buttons.entry(label) {
                con.say(&format!("ramux: watching {} for KEY_POWER", v.key()));
                v.insert(f);
            }
        }
    }

    /// The descriptors to poll, ACPI first, in the order [`PowerWatch::pressed`] expects.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let acpi = self.acpi.iter().map(|(fd, _)| fd.as_fd());
        acpi.chain(self.buttons.values().map(|f| f.as_fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect()
    }

    /// Reads what `ready` (one flag per [`PowerWatch::poll_fds`] entry) says is readable and
    /// returns true when the power button was pressed; drops devices that went away.
    fn pressed(&mut self, con: &Console, ready: &[bool]) -> bool {
        let mut pressed = false;
        if let Some((fd, family)) = &self.acpi {
            if let Some(e) = sys::read_acpi_power(fd, *family).first() {
                con.say(&format!(
                    "ramux: power button pressed (ACPI {} {})",
                    e.device_class, e.bus_id
                ));
                pressed = true;
            }
        }
        let first_button = usize::from(self.acpi.is_some());
        let mut gone = Vec::new();
        for ((label, mut f), is_ready) in self.buttons.iter().zip(ready.iter().skip(first_button)) {
            if !is_ready {
                continue;
            }
            let mut buf = [0u8; evdev::EVENT_SIZE * 16];
            match f.read(&mut buf) {
                Ok(n) if evdev::power_pressed(&buf[..n]) && !pressed => {
                    con.say(&format!("ramux: power button pressed ({label})"));
                    pressed = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => gone.push(label.clone()),
            }
        }
        for g in gone {
            self.buttons.remove(&g);
        }
        pressed
    }
}

fn event_loop(
    con: &Console,
    sup: &mut Supervisor,
    kinds: &[Kind],
    sfd: &SignalFd,
    power: &mut PowerWatch,
    clock: &dyn Fn() -> u64,
) -> ! {
    loop {
        let now = clock();
        power.rescan(con, now);
        start_due(con, sup, kinds, now, |_| true);
        let mut wait = RESCAN.as_millis() as u64;
        if let Some(d) = sup.next_deadline() {
            wait = wait.min(d.saturating_sub(now));
        }
        let timeout = PollTimeout::try_from(wait.min(60_000) as i32).unwrap_or(PollTimeout::NONE);
        let ready: Vec<bool> = {
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            fds.extend(power.poll_fds());
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    con.say(&console::failed_line("poll", &e.to_string()));
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            fds.iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut action = power.pressed(con, &ready[1..]).then_some(Action::PowerOff);
        loop {
            match sfd.read_signal() {
                Ok(Some(info)) => {
                    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if sig == Signal::SIGCHLD {
                        continue; // reaped below, one waitpid loop covers coalesced signals
                    }
                    if let Some(a) = Action::from_signal(sig) {
                        action = action.or(Some(a));
                    }
                }
                Ok(None) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        reap(con, sup, clock());
        if let Some(a) = action {
            shutdown(con, sup, kinds, a, clock);
        }
    }
}

/// Used only if signalfd cannot be created: supervise with periodic reaping so PID 1 still
/// works; signals then stay pending (blocked) and power-off needs the button.
fn fallback_loop(
    con: &Console,
    sup: &mut Supervisor,
    kinds: &[Kind],
    clock: &dyn Fn() -> u64,
) -> ! {
    loop {
        start_due(con, sup, kinds, clock(), |_| true);
        reap(con, sup, clock());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM everything, wait up to [`STOP_GRACE`], SIGKILL the rest, sync, then power off,
/// reboot or halt.
fn shutdown(
    con: &Console,
    sup: &mut Supervisor,
    kinds: &[Kind],
    action: Action,
    clock: &dyn Fn() -> u64,
) -> ! {
    con.say(action.line());
    let shells: Vec<i32> = (0..kinds.len())
        .filter(|&i| matches!(kinds[i], Kind::Shell(_)))
        .filter_map(|i| {
            if let State::Running { pid, .. } = sup.state(i) {
                Some(pid)
            } else {
                None
            }
        })
        .collect();
    sup.stop();
    // -1: every process except PID 1 and kernel threads (services, shells, their children).
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    // Interactive shells ignore SIGTERM; a hangup ends their session like a closed terminal.
    for pid in shells {
        let _ = kill(Pid::from_raw(-pid), Signal::SIGHUP);
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGCONT);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        reap(con, sup, clock());
        if matches!(
            waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD)
        ) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = sys::children_of_init();
    if !left.is_empty() {
        let names: Vec<String> = left
            .iter()
            .map(|(pid, comm)| format!("{comm}[{pid}]"))
            .collect();
        con.say(&format!(
            "ramux: still running after {} s, killing: {}",
            STOP_GRACE.as_secs(),
            names.join(" ")
        ));
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    let kill_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < kill_deadline
        && !matches!(
            waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)),
            Err(Errno::ECHILD)
        )
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    sync();
    let mode = match action {
        Action::PowerOff => RebootMode::RB_POWER_OFF,
        Action::Reboot => RebootMode::RB_AUTOBOOT,
        Action::Halt => RebootMode::RB_HALT_SYSTEM,
    };
    let err = reboot(mode).err();
    con.say(&console::failed_line(
        "shutdown",
        &format!(
            "reboot({mode:?}): {}",
            err.map_or("returned".into(), |e| e.desc().to_string())
        ),
    ));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// After a panic in [`run`]: a shell on the serial console (or /dev/console), respawned, and the
/// busybox power signals, with none of the code that failed (no config, no supervisor, no
/// netlink). Blocks the signals and waits for them with sigtimedwait.
pub fn last_resort() -> ! {
    let con = Console::detect();
    con.say("ramux: init failed; emergency shell on the console, `poweroff` to power off");
    let mut mask = SigSet::empty();
    for s in SIGNALS {
        mask.add(s);
    }
    let _ = mask.thread_block();
    let tty = if sys::tty_usable("/dev/ttyS0") {
        "/dev/ttyS0"
    } else {
        "/dev/console"
    };
    let mut shell: Option<i32> = None;
    loop {
        if shell.is_none() {
            shell = sys::spawn_shell(tty).ok();
        }
        let timeout = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        // SAFETY: sigtimedwait with a valid, initialised set and timeout; no info wanted.
        let sig = unsafe { libc::sigtimedwait(mask.as_ref(), std::ptr::null_mut(), &timeout) };
        while let Ok(st) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            match st.pid() {
                Some(pid) if Some(pid.as_raw()) == shell => shell = None,
                Some(_) => {}
                None => break,
            }
        }
        if shell.is_none() {
            std::thread::sleep(Duration::from_millis(500));
        }
        let Some(action) = Signal::try_from(sig).ok().and_then(Action::from_signal) else {
            continue;
        };
        con.say(action.line());
        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
        if let Some(pid) = shell {
            let _ = kill(Pid::from_raw(-pid), Signal::SIGHUP);
        }
        std::thread::sleep(Duration::from_secs(1));
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        sync();
        let _ = reboot(match action {
            Action::PowerOff => RebootMode::RB_POWER_OFF,
            Action::Reboot => RebootMode::RB_AUTOBOOT,
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
        });
    }
}

#[cfg(test)]
mod fail_closed_tests {
    #[test]
    fn forwarding_keys_are_held_until_the_firewall_is_in() {
        for k in [
            "net.ipv4.ip_forward",
            "net/ipv4/ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.conf.vlan10.forwarding",
        ] {
            assert!(super::is_forwarding(k), "{k}");
        }
        for k in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.neigh.default.proxy_delay",
        ] {
            assert!(!super::is_forwarding(k), "{k}");
        }
    }
}
