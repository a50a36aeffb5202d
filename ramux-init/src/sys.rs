//! Thin I/O layer: system calls and processes. Decisions live in the pure modules; these
//! functions only do what they are told and report errors as text for the console.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use nix::mount::{mount, MsFlags};

use crate::config::{module_name, Service};
use crate::console;
use crate::evdev;

/// PATH given to services and shells (Debian merged-/usr layout plus busybox links in /bin).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Mounts the pseudo filesystems. Already-mounted (EBUSY) is fine; other failures are returned
/// as messages because init must go on (a missing /tmp is no reason to refuse a console).
pub fn mount_early() -> Vec<String> {
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: [(&str, &str, &str, MsFlags, Option<&str>); 7] = [
        ("proc", "/proc", "proc", nodev, None),
        ("sysfs", "/sys", "sysfs", nodev, None),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("gid=5,mode=0620,ptmxmode=0666"),
        ),
        (
            "tmpfs",
            "/dev/shm",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
    ];
    let mut errors = Vec::new();
    for (src, target, fstype, flags, data) in table {
        let _ = fs::create_dir_all(target);
        match mount(Some(src), target, Some(fstype), flags, data) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => errors.push(format!("mount {fstype} on {target}: {e}")),
        }
    }
    // Conventional /dev links that devtmpfs does not create.
    for (link, to) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(to, link);
    }
    errors
}

/// Points fds 0-2 at /dev/console. The kernel only does this when the initramfs carries a
/// /dev/console node; devtmpfs always has one.
pub fn setup_stdio() {
    if let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; `f` stays open until the end of scope.
            unsafe { libc::dup2(f.as_raw_fd(), fd) };
        }
    }
}

/// Writes init's messages once to each active console device.
pub struct Console {
    devices: Vec<String>,
}

impl Console {
    pub fn detect() -> Console {
        let active = fs::read_to_string("/sys/class/tty/console/active").ok();
        Console {
            devices: console::console_devices(active.as_deref()),
        }
    }

    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    pub fn say(&self, line: &str) {
        let mut written = false;
        for dev in &self.devices {
            if let Ok(mut f) = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(dev)
            {
                written |= f.write_all(format!("{line}\n").as_bytes()).is_ok();
            }
        }
        if !written {
            // Last resort (no /dev yet): our stderr, which may be the kernel's console.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

/// Loads one module file with finit_module. Already loaded or built in is success.
/// What finit_module did with a module that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleLoad {
    /// Loaded now, or already loaded.
    Loaded,
    /// The module refused with ENODEV: its hardware or CPU feature is absent (crc32c-intel on
    /// a CPU without SSE4.2, as QEMU's default TCG CPU). Not a failure: the closure also holds
    /// the generic fallback, so this is reported quietly.
    NoDevice,
}

pub fn load_module(path: &Path) -> Result<ModuleLoad, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.to_string_lossy();
    let flags = if name.ends_with(".ko.xz") || name.ends_with(".ko.zst") || name.ends_with(".ko.gz")
    {
        // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses (needs CONFIG_MODULE_DECOMPRESS).
        ModuleInitFlags::from_bits_retain(4)
    } else {
        ModuleInitFlags::empty()
    };
    match finit_module(&f, c"", flags) {
        Ok(()) | Err(Errno::EEXIST) => Ok(ModuleLoad::Loaded),
        Err(Errno::ENODEV) => Ok(ModuleLoad::NoDevice),
        Err(e) => Err(format!("{}: {}", path.display(), e.desc())),
    }
}

/// True when `/sys/module/<name>` exists (loaded or built in with parameters).
pub fn module_present(name: &str) -> bool {
    Path::new("/sys/module").join(name).exists()
}

/// Loads `modules` (relative to /lib/modules/<release>/) in order and keeps going; returns
/// (name, reason) for each failure, and the names of modules without their hardware.
pub fn load_modules(release: &str, modules: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let base = PathBuf::from("/lib/modules").join(release);
    let mut failures = Vec::new();
    let mut no_device = Vec::new();
    for m in modules {
        match load_module(&base.join(m)) {
            Ok(ModuleLoad::Loaded) => {}
            Ok(ModuleLoad::NoDevice) => no_device.push(module_name(m)),
            Err(why) => failures.push((module_name(m), why)),
        }
    }
    (failures, no_device)
}

pub fn set_hostname(name: &str) -> Result<(), String> {
    nix::unistd::sethostname(name).map_err(|e| format!("sethostname({name}): {}", e.desc()))
}

/// `ip link set lo up` without needing `ip`: SIOCSIFFLAGS on an AF_INET socket.
pub fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq we own; the fd is closed below.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", Errno::last().desc()));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        let err = Errno::last();
        libc::close(fd);
        if r != 0 {
            return Err(format!("lo up: {}", err.desc()));
        }
    }
    Ok(())
}

/// Applies sysctl.conf; returns one message per problem (`file:line: key: reason`).
pub fn apply_sysctl(path: &Path) -> Vec<String> {
    apply_sysctl_where(path, true, |_| true)
}

/// [`apply_sysctl`] for the settings whose key `keep` accepts; parse errors only when
/// `report_parse` (a file applied in two passes reports them once).
pub fn apply_sysctl_where(
    path: &Path,
    report_parse: bool,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let (settings, errors) = crate::sysctl::parse(&text);
    let mut out: Vec<String> = errors
        .into_iter()
        .filter(|_| report_parse)
        .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
        .collect();
    for s in settings.into_iter().filter(|s| keep(&s.key)) {
        let r = OpenOptions::new()
            .write(true)
            .open(s.proc_path())
            .and_then(|mut f| f.write_all(s.value.as_bytes()));
        if let Err(e) = r {
            if !s.ignore_failure {
                out.push(format!(
                    "{}:{}: {} = {}: {e}",
                    path.display(),
                    s.line,
                    s.key,
                    s.value
                ));
            }
        }
    }
    out
}

/// First existing path among `candidates`.
pub fn find_tool(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
}

/// Children must not inherit PID 1's blocked signal mask (init blocks the signals it reads from
/// its signalfd; std's `Command` keeps the caller's mask): a service with SIGTERM blocked could
/// not be stopped at shutdown.
fn unblock_signals_in_child(cmd: &mut Command) {
    // SAFETY: sigemptyset and sigprocmask are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Runs a configuration tool to completion (at most `timeout`), capturing stderr for the console.
pub fn run_tool(argv: &[&str], timeout: Duration) -> Result<(), String> {
    let cmdline = argv.join(" ");
    let mut cmd = Command::new(argv[0]);
    unblock_signals_in_child(&mut cmd);
    let mut child = cmd
        .args(&argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmdline}: cannot start: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmdline}: still running after {} s, killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{cmdline}: wait: {e}")),
        }
    };
    let mut err = String::new();
    let mut outs = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut outs);
    }
    if status.success() {
        Ok(())
    } else {
        let detail = if err.trim().is_empty() { outs } else { err };
        Err(format!(
            "{cmdline}: {status}: {}",
            console::one_line(&detail)
        ))
    }
}

/// Writes a fresh `/etc/machine-id` (128 random bits as 32 hex digits) at every boot: a
/// diskless appliance is a new machine each boot, and an id baked into a public, reproducible
/// image would be shared by every box booted from it.
pub fn write_machine_id() -> Result<(), String> {
    let path = Path::new("/etc/machine-id");
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = fs::create_dir_all("/etc");
    let tmp = Path::new("/etc/.machine-id.tmp");
    fs::write(tmp, format!("{hex}\n"))
        .and_then(|()| fs::set_permissions(tmp, fs::Permissions::from_mode(0o444)))
        .and_then(|()| fs::rename(tmp, path))
        .map_err(|e| format!("/etc/machine-id: {e}"))
}

/// Runtime directories packages expect on a Debian system.
pub fn runtime_dirs() {
    for d in ["/run/ramux", "/run/lock", "/var/log", "/var/tmp", "/root"] {
        let _ = fs::create_dir_all(d);
    }
    let _ = fs::set_permissions("/var/tmp", fs::Permissions::from_mode(0o1777));
    if fs::symlink_metadata("/var/run").is_err() {
        let _ = std::os::unix::fs::symlink("/run", "/var/run");
    }
}

fn console_out() -> Stdio {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
    {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

/// Starts a service in its own session (so a shutdown signal reaches its children too), stdin
/// from /dev/null, output to the console.
pub fn spawn_service(s: &Service) -> Result<i32, String> {
    let mut cmd = Command::new(&s.argv[0]);
    unblock_signals_in_child(&mut cmd);
    cmd.args(&s.argv[1..])
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .envs(&s.env)
        .current_dir("/");
    cmd.stdin(Stdio::null())
        .stdout(console_out())
        .stderr(console_out());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map(|c| c.id() as i32)
        .map_err(|e| format!("{}: {e}", s.argv[0]))
}

/// True when the tty can be opened (a /dev/ttyS0 node exists even without a UART; then open
/// fails with EIO and no shell should be started there).
pub fn tty_usable(dev: &str) -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(dev)
        .is_ok()
}

/// Starts an interactive login shell with `dev` as its controlling terminal (job control and
/// Ctrl-C work, unlike a shell on /dev/console).
pub fn spawn_shell(dev: &str) -> Result<i32, String> {
    let cdev = CString::new(dev).map_err(|e| e.to_string())?;
    let term = if dev.contains("ttyS") {
        "vt100"
    } else {
        "linux"
    };
    let mut cmd = Command::new("/bin/sh");
    unblock_signals_in_child(&mut cmd);
    cmd.arg0("-sh")
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .env("TERM", term)
        .env("SHELL", "/bin/sh")
        .current_dir("/root");
    // SAFETY: only async-signal-safe calls (setsid, open, ioctl, dup2, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            let fd = libc::open(cdev.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::ioctl(fd, libc::TIOCSCTTY, 1);
            for t in 0..3 {
                libc::dup2(fd, t);
            }
            if fd > 2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map(|c| c.id() as i32)
        .map_err(|e| format!("/bin/sh on {dev}: {e}"))
}

/// Input devices that report KEY_POWER (the ACPI power button), opened non-blocking.
pub fn power_button_devices() -> Vec<(String, File)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/class/input") else {
        return out;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("event"))
        .collect();
    names.sort();
    for n in names {
        let caps = fs::read_to_string(format!("/sys/class/input/{n}/device/capabilities/key"))
            .unwrap_or_default();
        if !evdev::has_key(&caps, evdev::KEY_POWER) {
            continue;
        }
        let dev = format!("/dev/input/{n}");
        if let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&dev)
        {
            let label =
                fs::read_to_string(format!("/sys/class/input/{n}/device/name")).unwrap_or_default();
            out.push((format!("{dev} ({})", label.trim()), f));
        }
    }
    out
}

/// Seconds since kernel start, from /proc/uptime.
pub fn uptime() -> Option<f64> {
    fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Kernel release (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Processes whose parent is PID 1 (still-running services, shells, adopted orphans), as
/// (pid, command name), for the shutdown message.
pub fn children_of_init() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(1) {
            out.push((pid, comm));
        }
    }
    out.sort();
    out
}

/// Generic-netlink socket subscribed to ACPI events (see [`crate::acpi`]), non-blocking, and the
/// `acpi_event` family id to filter its messages.
pub fn acpi_event_socket() -> Result<(std::os::fd::OwnedFd, u16), String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket calls on a descriptor we own (wrapped in OwnedFd right away) and
    // properly sized, initialised arguments.
    unsafe {
        let raw = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_GENERIC,
        );
        if raw < 0 {
            return Err(format!("socket(AF_NETLINK): {}", Errno::last().desc()));
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let alen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        if libc::bind(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            alen,
        ) < 0
        {
            return Err(format!("bind(netlink): {}", Errno::last().desc()));
        }
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let req = crate::acpi::getfamily_request(crate::acpi::FAMILY, 1);
        if libc::send(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
        ) < 0
        {
            return Err(format!(
                "send(CTRL_CMD_GETFAMILY): {}",
                Errno::last().desc()
            ));
        }
        let mut buf = vec![0u8; 8192];
        let n = libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
        );
        if n < 0 {
            return Err(format!(
                "recv(CTRL_CMD_GETFAMILY): {}",
                Errno::last().desc()
            ));
        }
        let (family, group) =
            crate::acpi::parse_family_reply(&buf[..n as usize], crate::acpi::GROUP)?;
        if libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            libc::NETLINK_ADD_MEMBERSHIP,
            &group as *const u32 as *const libc::c_void,
            4,
        ) < 0
        {
            return Err(format!(
                "join {}: {}",
                crate::acpi::GROUP,
                Errno::last().desc()
            ));
        }
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        Ok((fd, family))
    }
}

/// Reads pending datagrams from the ACPI event socket; returns the power-button events.
pub fn read_acpi_power(fd: &std::os::fd::OwnedFd, family: u16) -> Vec<crate::acpi::AcpiEvent> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: recv into a buffer we own, of the length we pass.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return out;
        }
        out.extend(
            crate::acpi::parse_events(&buf[..n as usize], family)
                .into_iter()
                .filter(crate::acpi::is_power_button),
        );
    }
}
