//! Starting, watching and stopping VMs; their state directories.
//!
//! Each VM owns `<state root>/<NAME>/` (default root `/run/ramux/vms`; the layout is
//! [`ramux_contract::vm_state`]) with
//! serial.sock, serial.log, qmp.sock, pid, qemu.log, vm.json and, for UEFI, its own copy of the
//! OVMF variable store. QEMU runs in its own process group so a detached VM survives the shell
//! that started it; any later `vlaunch` finds it again through the state directory.

use crate::accel::{self, Accel, AccelRequest, Verdict};
use crate::net::{self, Mac, Nic, SwitchStatus};
use crate::probe;
use crate::qemu::{self, Firmware, LaunchSpec, Media, StatePaths};
use crate::qmp::Qmp;
use crate::serial::{ConsoleScanner, ReadyInfo};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use ramux_contract::vm_state::DEFAULT_STATE_ROOT;

/// OVMF without Secure Boot (Debian package `ovmf`; docs/launcher.md).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// The variable-store template, copied fresh for every boot: a store reused after a CD boot
/// made the next disk boot stop in the EFI shell.
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// OVMF with Secure Boot (SMM build; `.ms` is Debian's name for it with keys enrolled).
pub const OVMF_CODE_SB: &str = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
/// Variables with Microsoft's KEK and db (which trust shim) enrolled and Secure Boot enforced.
pub const OVMF_VARS_SB: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

/// `$VLAUNCH_STATE_DIR`, else [`DEFAULT_STATE_ROOT`].
pub fn state_root() -> PathBuf {
    std::env::var_os("VLAUNCH_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
}

/// VM names become directory names and QEMU option values: keep them to a safe alphabet.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        bail!(
            "invalid VM name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ - (not starting \
             with a dot); pass --name NAME"
        );
    }
    Ok(())
}

/// The ISO file name without its extension (`RT1.iso` -> `RT1`).
pub fn default_name(iso: &Path) -> Result<String> {
    let stem = iso
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    validate_name(&stem)
        .with_context(|| format!("the name derived from {} is not usable", iso.display()))?;
    Ok(stem)
}

/// What the user asked for (the CLI flags, as a library value).
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub iso: PathBuf,
    pub name: Option<String>,
    pub mem_mib: u32,
    pub cpus: u32,
    pub accel: AccelRequest,
    pub uefi: bool,
    /// UEFI with Secure Boot enforced (implies `uefi`).
    pub secure_boot: bool,
    pub usb: bool,
    pub ports: Vec<u16>,
    pub switch_dir: Option<PathBuf>,
    /// Per `--port DIR:N`: the switch of the port at the same index of `ports` (None or
    /// missing: `switch_dir`).
    pub port_switches: Vec<Option<PathBuf>>,
    pub macs: Vec<Mac>,
    /// Per NIC (same index as `ports`): its device model; missing: virtio-net-pci.
    pub models: Vec<String>,
    /// Appended to QEMU's command line as given.
    pub qemu_args: Vec<String>,
    pub state_root: PathBuf,
    /// A packed site secrets overlay (`vbuild secrets pack`), handed over as fw_cfg
    /// `opt/ramux/secrets`; checked before QEMU starts (docs/secrets.md).
    pub secrets: Option<PathBuf>,
    /// The site key (docs/keep.md): a raw disk image attached as a USB stick, created with a
    /// FAT32 filesystem labelled RAMUXKEY when absent. Writes persist (it is the key).
    pub key: Option<PathBuf>,
}

impl LaunchOptions {
    /// Defaults of the CLI for `iso`.
    pub fn new(iso: impl Into<PathBuf>) -> Self {
        LaunchOptions {
            iso: iso.into(),
            name: None,
            mem_mib: 1024,
            cpus: 1,
            accel: AccelRequest::Auto,
            uefi: false,
            secure_boot: false,
            usb: false,
            ports: vec![],
            switch_dir: None,
            port_switches: vec![],
            macs: vec![],
            models: vec![],
            qemu_args: vec![],
            state_root: state_root(),
            secrets: None,
            key: None,
        }
    }
}

/// Written to vm.json: the spec plus what vlaunch decided and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmRecord {
    pub spec: LaunchSpec,
    pub accel_reason: String,
    pub qemu_command: String,
}

/// A VM that is set up (state directory, firmware copy, switch) but not started yet.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub record: VmRecord,
    /// For each switch directory the NICs use: whether a switch was already there or vlaunch
    /// started one.
    pub switches: Vec<(PathBuf, SwitchStatus)>,
}

/// The firmware of this boot; UEFI gets a fresh copy of the variable template in `dir`.
fn firmware(opts: &LaunchOptions, dir: &Path) -> Result<Firmware> {
    if !opts.uefi && !opts.secure_boot {
        return Ok(Firmware::Bios);
    }
    let (code, template) = if opts.secure_boot {
        (OVMF_CODE_SB, OVMF_VARS_SB)
    } else {
        (OVMF_CODE, OVMF_VARS)
    };
    for (f, what) in [(code, "code"), (template, "variable template")] {
        if !Path::new(f).is_file() {
            bail!("OVMF {what} {f} not found: install it with `apt-get install ovmf`");
        }
    }
    let vars = ramux_contract::VmDir::at(dir).ovmf_vars();
    fs::copy(template, &vars)
        .with_context(|| format!("copying {template} to {}", vars.display()))?;
    Ok(Firmware::Uefi {
        code: code.into(),
        vars,
        secure_boot: opts.secure_boot,
    })
}

/// Decides accel, firmware, media and NICs, creates the state directory, and makes sure the
/// switch answers. `progress` receives one line per decision (the CLI prints them).
pub fn prepare(opts: &LaunchOptions, progress: &mut dyn FnMut(&str)) -> Result<Prepared> {
    let iso = fs::canonicalize(&opts.iso)
        .with_context(|| format!("ISO {} not found", opts.iso.display()))?;
    if !iso.is_file() {
        bail!(
            "{} is not a file: pass the ISO image to boot",
            iso.display()
        );
    }
    fs::File::open(&iso).with_context(|| format!("cannot read {}", iso.display()))?;
    let name = match &opts.name {
        Some(n) => {
            validate_name(n)?;
            n.clone()
        }
        None => default_name(&iso)?,
    };
    if opts.mem_mib < 128 {
        bail!(
            "--mem {} MiB is too small: the whole system runs from RAM; use 512 or more",
            opts.mem_mib
        );
    }
    if opts.cpus == 0 {
        bail!("--cpus must be at least 1");
    }
    require_tool(qemu::QEMU, "qemu-system-x86")?;

    let dir = opts.state_root.join(&name);
    let paths = StatePaths::in_dir(&dir);
    // sun_path is 108 bytes including the NUL.
    if paths.serial_sock.as_os_str().len() > 107 {
        bail!(
            "state directory {} is too long for unix sockets (108 bytes max): use a shorter \
             VLAUNCH_STATE_DIR or --name",
            dir.display()
        );
    }
    // Held until this launch has recorded its QEMU: a second `vlaunch` of the same name waits
    // for nothing and is refused, instead of both seeing no pid and the second stealing the
    // first one's QMP socket and pidfile.
    let _starting = lock_name(&opts.state_root, &name)?;
    if let Some(pid) = running_pid(&paths) {
        bail!("VM {name} is already running (pid {pid}): `vlaunch stop {name}` first, or pick another --name");
    }

    let accel_env = std::env::var("VLAUNCH_ACCEL").ok();
    let mut facts = accel::probe_facts();
    let (accel, accel_reason) = loop {
        match accel::decide(opts.accel, accel_env.as_deref(), &facts)? {
            Verdict::Decided { accel, reason } => break (accel, reason),
            Verdict::NeedsProbe => {
                progress("accel: cheap KVM checks passed, booting a kernel under KVM to be sure");
                facts.probe = Some(probe::cached_probe(&iso)?);
            }
        }
    };
    progress(&format!("accel: {accel} ({accel_reason})"));

    let mut nics: Vec<Nic> = if opts.ports.is_empty() {
        if !opts.macs.is_empty() {
            bail!("--mac needs a --port: a MAC belongs to the NIC on that port");
        }
        vec![]
    } else {
        let default_dir = opts
            .switch_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(net::DEFAULT_SWITCH_DIR));
        let ports: Vec<(PathBuf, u16)> = opts
            .ports
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let dir = opts.port_switches.get(i).cloned().flatten();
                (dir.unwrap_or_else(|| default_dir.clone()), p)
            })
            .collect();
        net::plan_nics(&name, &ports, &opts.macs)?
    };
    for (nic, model) in nics.iter_mut().zip(&opts.models) {
        nic.model = (model != "virtio-net-pci").then(|| model.clone());
    }

    // A fresh state directory: logs of an earlier run of this name are replaced.
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .with_context(|| format!("clearing old state {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| {
        format!(
            "creating state directory {} (run as root, or set VLAUNCH_STATE_DIR to a writable \
                 directory)",
            dir.display()
        )
    })?;

    let firmware = firmware(opts, &dir)?;

    // Every switch the NICs use must answer (vswitch is started where none does).
    let mut switches: Vec<(PathBuf, SwitchStatus)> = Vec::new();
    for n in &nics {
        if switches.iter().any(|(d, _)| d == &n.switch_dir) {
            continue;
        }
        let st = net::ensure_switch(&n.switch_dir, Duration::from_secs(5))?;
        match &st {
            SwitchStatus::Running => {
                progress(&format!("switch: {} answers", n.switch_dir.display()))
            }
            SwitchStatus::Started(bin) => progress(&format!(
                "switch: nothing answered on {}, started {} -s {} -d",
                net::SwitchDir::new(&n.switch_dir).ctl().display(),
                bin.display(),
                n.switch_dir.display()
            )),
        }
        switches.push((n.switch_dir.clone(), st));
    }
    for nic in &mut nics {
        nic.stream = net::port_stream_socket(&nic.switch_dir, nic.port);
    }
    for nic in &nics {
        let via = match &nic.stream {
            Some(p) => format!("-netdev stream {}", p.display()),
            None => "-netdev vde".to_string(),
        };
        if switches.len() > 1 {
            progress(&format!(
                "nic: {} port {} mac {} ({via})",
                nic.switch_dir.display(),
                nic.port,
                nic.mac
            ));
        } else {
            progress(&format!("nic: port {} mac {} ({via})", nic.port, nic.mac));
        }
    }

    let spec = LaunchSpec {
        name,
        iso,
        mem_mib: opts.mem_mib,
        cpus: opts.cpus,
        accel,
        firmware,
        media: if opts.usb { Media::Usb } else { Media::Cd },
        nics,
        paths,
        extra_args: opts.qemu_args.clone(),
        secrets: opts.secrets.as_deref().map(check_secrets).transpose()?,
        key: opts
            .key
            .as_deref()
            .map(|k| crate::key::ensure(k, progress))
            .transpose()?,
    };
    let qemu_command = qemu::shell_line(&qemu::qemu_args(&spec));
    Ok(Prepared {
        record: VmRecord {
            spec,
            accel_reason,
            qemu_command,
        },
        switches,
    })
}

/// The overlay's absolute path, after checking what the guest would refuse anyway: a file only
/// its owner can read (it holds the site's keys) that reads as a secrets overlay.
fn check_secrets(file: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let what = || format!("--secrets {}", file.display());
    let meta = std::fs::metadata(file).with_context(what)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "{}: mode {mode:04o} lets others read the site's keys: chmod 600 it",
            what()
        );
    }
    let bytes = std::fs::read(file).with_context(what)?;
    ramux_contract::secrets::unpack_plan(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a secrets overlay: {e}", what()))?;
    std::fs::canonicalize(file).with_context(what)
}

fn require_tool(tool: &str, package: &str) -> Result<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} not found in PATH: install it with `apt-get install {package}`");
    }
    Ok(())
}

/// A started VM.
pub struct Vm {
    pub record: VmRecord,
    pub pid: u32,
    /// When QEMU was spawned: boot times are measured from here.
    pub started: Instant,
    child: Option<Child>,
}

/// Writes `data` through a temp file and a rename, so a reader (`ps`, `lab down`) never reads
/// half a vm.json or state.json.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Starts QEMU for a prepared VM and waits until it has written its pid file (so the sockets
/// exist). QEMU runs in its own process group with stdout/stderr in qemu.log.
pub fn start(prepared: Prepared) -> Result<Vm> {
    let record = prepared.record;
    let paths = &record.spec.paths;
    write_atomic(&paths.vm_json, &serde_json::to_vec_pretty(&record)?)?;
    let log = fs::File::create(&paths.qemu_log)
        .with_context(|| format!("creating {}", paths.qemu_log.display()))?;
    // The serial log: QEMU writes it into a pipe, a detached writer bounds it on disk.
    let log_pipe = spawn_serial_log_keeper(&paths.serial_log)?;
    let mut cmd = Command::new(qemu::QEMU);
    cmd.args(qemu::qemu_args(&record.spec))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    use std::os::fd::AsRawFd;
    let spawned =
        crate::net::close_inherited_fds_but(&mut cmd, log_pipe.as_raw_fd(), qemu::SERIAL_LOG_FD)
            .spawn();
    // Only QEMU holds the write end now: the writer ends when QEMU does.
    drop(log_pipe);
    let mut child = spawned.with_context(|| format!("starting {}", qemu::QEMU))?;
    let started = Instant::now();
    let pid = child.id();
    // QEMU writes the pid file after creating its sockets and before running the guest.
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "QEMU exited at once ({status}):\n{}\ncommand: {}",
                tail_file(&paths.qemu_log, 20),
                record.qemu_command
            );
        }
        if paths.pidfile.exists() && paths.qmp_sock.exists() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "QEMU did not create {} within 30 s",
                paths.pidfile.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Vm {
        record,
        pid,
        started,
        child: Some(child),
    })
}

/// The most a serial log file holds: at this size `serial.log` becomes `serial.log.1`
/// (replacing the previous one) and a new `serial.log` starts, so a guest printing without end
/// costs at most twice this in the RAM-backed state directory.
pub const SERIAL_LOG_MAX: u64 = 4 * 1024 * 1024;

/// `<log>.1`, the rotated serial log.
pub fn serial_log_old(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Starts the detached writer of `log` (a double fork: it outlives vlaunch, as QEMU does, and
/// leaves no zombie) and returns the write end of its pipe, for QEMU.
fn spawn_serial_log_keeper(log: &Path) -> Result<std::os::fd::OwnedFd> {
    use std::ffi::CString;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).context("NUL in a path");
    let (clog, cold, null) = (
        c(log)?,
        c(&serial_log_old(log))?,
        c(Path::new("/dev/null"))?,
    );
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe for the serial log");
    }
    // SAFETY: fresh descriptors from pipe2, owned once each.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    use std::os::fd::AsRawFd;
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    // SAFETY: between fork and _exit the children call only async-signal-safe functions
    // (fork, setsid, dup2, close_range/close, open, read, write, rename) on memory prepared
    // before the fork: no allocation, no lock.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork for the serial log");
    }
    if pid == 0 {
        unsafe {
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            libc::setsid();
            libc::close(wfd);
            libc::dup2(rfd, 0);
            let n = libc::open(null.as_ptr(), libc::O_RDWR);
            if n >= 0 {
                libc::dup2(n, 1);
                libc::dup2(n, 2);
            }
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                for fd in 3..1024 {
                    libc::close(fd);
                }
            }
            keep_serial_log(0, &clog, &cold, SERIAL_LOG_MAX);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: reaps the intermediate child, which exits at once.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    drop(r);
    Ok(w)
}

/// The bounded serial log writer: copies descriptor `input` to `log` until end of file,
/// rotating `log` to `old` whenever it would pass `max` bytes. Uses only async-signal-safe
/// calls and a stack buffer (it runs in a forked child of a threaded process).
#[doc(hidden)]
pub fn keep_serial_log(input: i32, log: &std::ffi::CStr, old: &std::ffi::CStr, max: u64) {
    let open = || unsafe {
        libc::open(
            log.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        )
    };
    // Held while the writer runs: `wait_serial_log_written` waits for it after QEMU exits, so
    // a reader then gets every byte QEMU wrote (the pipe may still hold some).
    let lock = |fd: i32| {
        if fd >= 0 {
            // SAFETY: flock on our own descriptor.
            unsafe { libc::flock(fd, libc::LOCK_EX) };
        }
    };
    let mut out = open();
    lock(out);
    let mut size: u64 = 0;
    let mut buf = [0u8; 16 * 1024];
    loop {
        // SAFETY: reads into our stack buffer.
        let n = unsafe { libc::read(input, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            break;
        }
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        let n = n as usize;
        if size > 0 && size + n as u64 > max {
            // SAFETY: plain syscalls on our descriptor and NUL-terminated paths.
            unsafe {
                libc::rename(log.as_ptr(), old.as_ptr());
                libc::close(out);
            }
            out = open();
            lock(out);
            size = 0;
        }
        let mut done = 0;
        while done < n && out >= 0 {
            // SAFETY: writes from our buffer.
            let w = unsafe { libc::write(out, buf[done..n].as_ptr().cast(), n - done) };
            if w < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                break;
            }
            done += w as usize;
        }
        size += n as u64;
    }
    if out >= 0 {
        // SAFETY: closes our descriptor.
        unsafe { libc::close(out) };
    }
}

/// After QEMU exited: waits (at most 2 s) until the serial log writer has written what was
/// left in its pipe and ended (it holds an flock on `serial.log` while it runs).
pub fn wait_serial_log_written(log: &Path) {
    use std::os::fd::AsRawFd;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        let Ok(f) = fs::File::open(log) else { return };
        // SAFETY: flock on a descriptor we own; released when `f` is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True when `path` is no longer the file `f` has open (the serial log was rotated).
pub fn replaced(f: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
        _ => false,
    }
}

/// [`prepare`] then [`start`].
pub fn launch(opts: &LaunchOptions, progress: &mut dyn FnMut(&str)) -> Result<Vm> {
    let p = prepare(opts, progress)?;
    let vm = start(p)?;
    progress(&format!(
        "qemu: pid {}, state in {}",
        vm.pid,
        vm.record.spec.paths.dir.display()
    ));
    Ok(vm)
}

/// The exclusive, non-blocking start lock of VM `name` (`<state root>/.<name>.lock`, beside
/// its directory, which a start replaces).
pub fn lock_name(root: &Path, name: &str) -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let p = root.join(format!(".{name}.lock"));
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    // SAFETY: flock on a valid open descriptor; released when `f` is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("VM {name} is being started by another vlaunch right now: wait for it, or pick another --name");
    }
    Ok(f)
}

/// How much of a file's end [`tail_file`] reads: a guest's console log can grow without bound.
pub const TAIL_BYTES: u64 = 256 * 1024;

/// The last `n` lines of a text file ("" when missing), read from its last [`TAIL_BYTES`].
pub fn tail_file(path: &Path, n: usize) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let from = len.saturating_sub(TAIL_BYTES);
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.take(TAIL_BYTES).read_to_end(&mut s);
        }
        if from > 0 {
            // the first line read is cut: drop it
            let cut = s
                .iter()
                .position(|&b| b == b'\n')
                .map_or(s.len(), |i| i + 1);
            s.drain(..cut);
        }
    }
    let mut sc = ConsoleScanner::new(n);
    sc.feed(&s);
    sc.last_lines().join("\n")
}

/// The ready line and how long it took from QEMU's start.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    pub info: ReadyInfo,
    pub seconds: f64,
    /// `ramux: failed ...` lines printed before the ready line: the appliance is up, but these
    /// did not work (a service whose secret is missing, a module, a labwall file).
    pub failures: Vec<String>,
}

/// Why `wait_ready` failed, with the evidence.
#[derive(Debug)]
pub struct NotReady {
    pub reason: String,
    pub last_lines: Vec<String>,
    pub failures: Vec<String>,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.reason)?;
        if !self.failures.is_empty() {
            writeln!(f, "failures reported by the appliance:")?;
            for l in &self.failures {
                writeln!(f, "  {l}")?;
            }
        }
        if self.last_lines.is_empty() {
            return writeln!(f, "the console printed nothing");
        }
        writeln!(f, "last console lines:")?;
        for l in &self.last_lines {
            writeln!(f, "  | {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NotReady {}

/// Follows `serial.log` until the ready line appears, `alive()` returns an exit description, or
/// `timeout` passes. `tick` is called about once a second with the elapsed time and the last
/// console line (for progress display).
pub fn wait_ready_log(
    serial_log: &Path,
    started: Instant,
    timeout: Duration,
    mut alive: impl FnMut() -> Option<String>,
    tick: &mut dyn FnMut(Duration, &str),
) -> std::result::Result<Ready, NotReady> {
    let mut sc = ConsoleScanner::new(20);
    let mut file: Option<fs::File> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_tick = Instant::now();
    loop {
        if file.is_none() {
            file = fs::File::open(serial_log).ok();
        }
        if let Some(f) = file.as_mut() {
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sc.feed(&buf[..n]),
                }
            }
            // A new run truncates the log; a shorter file means a new run.
            if let (Ok(pos), Ok(meta)) = (f.stream_position(), f.metadata()) {
                if meta.len() < pos {
                    let _ = f.seek(SeekFrom::Start(0));
                }
            }
            // Rotated (SERIAL_LOG_MAX): its last bytes were written before the rename, so
            // read them, then follow the new file from its start.
            if replaced(f, serial_log) {
                loop {
                    match f.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sc.feed(&buf[..n]),
                    }
                }
                file = fs::File::open(serial_log).ok();
            }
        }
        if let Some(r) = sc.ready() {
            return Ok(Ready {
                info: r.clone(),
                seconds: started.elapsed().as_secs_f64(),
                failures: sc.failures().to_vec(),
            });
        }
        let not_ready = |sc: &ConsoleScanner, reason: String| NotReady {
            reason,
            last_lines: sc.last_lines(),
            failures: sc.failures().to_vec(),
        };
        if let Some(l) = sc.not_ready() {
            return Err(not_ready(&sc, format!("the appliance failed closed: {l}")));
        }
        if let Some(exit) = alive() {
            // Read what QEMU flushed before dying, then give up.
            if let Some(f) = file.as_mut() {
                let mut rest = Vec::new();
                let _ = f.read_to_end(&mut rest);
                sc.feed(&rest);
                if let Some(r) = sc.ready() {
                    return Ok(Ready {
                        info: r.clone(),
                        seconds: started.elapsed().as_secs_f64(),
                        failures: sc.failures().to_vec(),
                    });
                }
            }
            return Err(not_ready(
                &sc,
                format!("QEMU exited before the ready line: {exit}"),
            ));
        }
        if started.elapsed() >= timeout {
            return Err(not_ready(
                &sc,
                format!(
                    "no ready line (`ramux: ready profile=...`) after {} s",
                    timeout.as_secs()
                ),
            ));
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            let last = sc.last_lines().pop().unwrap_or_default();
            tick(started.elapsed(), &last);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Vm {
    pub fn name(&self) -> &str {
        &self.record.spec.name
    }

    pub fn paths(&self) -> &StatePaths {
        &self.record.spec.paths
    }

    /// None while QEMU runs, else how it ended.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.as_mut() {
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => {
                    wait_serial_log_written(&self.record.spec.paths.serial_log);
                    Some(st.to_string())
                }
                Ok(None) => None,
                Err(e) => Some(format!("cannot wait for QEMU: {e}")),
            },
            None => {
                (!pid_is_our_qemu(self.pid, &self.record.spec.paths)).then(|| "exited".to_string())
            }
        }
    }

    /// Waits for the ready line (see [`wait_ready_log`]).
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        tick: &mut dyn FnMut(Duration, &str),
    ) -> std::result::Result<Ready, NotReady> {
        let log = self.record.spec.paths.serial_log.clone();
        let qemu_log = self.record.spec.paths.qemu_log.clone();
        let started = self.started;
        let r = wait_ready_log(&log, started, timeout, || self.exit_status(), tick);
        r.map_err(|mut e| {
            let q = tail_file(&qemu_log, 5);
            if !q.is_empty() {
                e.reason.push_str(&format!("\nQEMU said: {q}"));
            }
            if self.exit_status().is_none() && !self.qmp_answers() {
                e.reason.push_str(&qemu_blocked_hint(&self.record.spec));
            }
            e
        })
    }

    /// True when QEMU's main loop runs: QMP sends its greeting. Before the main loop (e.g.
    /// while a netdev blocks in its setup) the socket accepts but stays silent.
    fn qmp_answers(&self) -> bool {
        Qmp::connect(&self.record.spec.paths.qmp_sock, Duration::from_secs(3)).is_ok()
    }

    /// ACPI power-down through QMP, then kill after `timeout` (`vlaunch stop` semantics: waits for the SHUTDOWN event and the exit, then SIGTERM, SIGKILL).
    pub fn stop(&mut self, timeout: Duration) -> Result<StopOutcome> {
        let out = stop_pid(self.pid, &self.record.spec.paths, timeout, || {
            self.child
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(false)
        })?;
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        wait_serial_log_written(&self.record.spec.paths.serial_log);
        Ok(out)
    }

    /// Kills QEMU at once (tests' cleanup path) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        } else if pid_is_our_qemu(self.pid, &self.record.spec.paths) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        wait_serial_log_written(&self.record.spec.paths.serial_log);
        cleanup_runtime_files(&self.record.spec.paths);
    }

    /// Lets QEMU run on after this handle is dropped (`--detach`): nothing to do but forget the
    /// child handle; QEMU is in its own process group.
    pub fn detach(mut self) {
        self.child.take();
    }

    /// Removes the state directory (after stop/kill).
    pub fn remove_state(&self) -> Result<()> {
        remove_state_dir(&self.record.spec.paths)
    }
}

/// Explains a QEMU that never reached its main loop.
fn qemu_blocked_hint(spec: &LaunchSpec) -> String {
    let mut h = String::from(
        "\nQEMU never started the guest (its QMP socket stays silent): it is blocked during startup.",
    );
    if let Some(n) = spec.nics.first() {
        h.push_str(&format!(
            " Likely the switch at {}: Debian's vde_switch 2.3.2 never answers a request for a port \
             at or above its -n count (default 32: ports 1-31) or a port owned by another user, \
             and QEMU waits forever. Check the --port numbers ({}).",
            n.switch_dir.display(),
            spec.nics.iter().map(|n| n.port.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    h
}

/// How a VM ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum StopOutcome {
    /// It was not running.
    NotRunning,
    /// The guest powered off after the ACPI power button.
    PoweredOff {
        seconds: f64,
        /// The `reason` of QEMU's SHUTDOWN event (`guest-shutdown` when the guest powered off).
        shutdown_reason: Option<String>,
    },
    /// It did not power off in time (or QMP failed) and was killed.
    Killed { reason: String },
}

/// True when `pid` is alive, not a zombie, and is the QEMU of this state directory (its command
/// line names our pid file), so a recycled pid is never signalled.
pub fn pid_is_our_qemu(pid: u32, paths: &StatePaths) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = fs::read_to_string(proc.join("stat")) else {
        return false;
    };
    // Field 3 (after the parenthesised command) is the state; Z = zombie, X = dead.
    if let Some((_, rest)) = stat.rsplit_once(')') {
        if matches!(rest.split_whitespace().next(), Some("Z" | "X")) {
            return false;
        }
    }
    let Ok(cmdline) = fs::read(proc.join("cmdline")) else {
        return false;
    };
    let want = paths.pidfile.as_os_str().as_encoded_bytes();
    cmdline.split(|&b| b == 0).any(|arg| arg == want)
}

/// The pid of the running QEMU of this state directory, if any.
pub fn running_pid(paths: &StatePaths) -> Option<u32> {
    let pid: u32 = fs::read_to_string(&paths.pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_is_our_qemu(pid, paths).then_some(pid)
}

fn cleanup_runtime_files(paths: &StatePaths) {
    for p in [&paths.serial_sock, &paths.qmp_sock, &paths.pidfile] {
        let _ = fs::remove_file(p);
    }
}

fn remove_state_dir(paths: &StatePaths) -> Result<()> {
    if paths.dir.exists() {
        fs::remove_dir_all(&paths.dir)
            .with_context(|| format!("removing {}", paths.dir.display()))?;
    }
    Ok(())
}

/// `system_powerdown` over QMP, wait up to `timeout` for QEMU to exit, else SIGTERM, then
/// SIGKILL. `reaped` lets a parent that owns the child report an exit /proc cannot show.
fn stop_pid(
    pid: u32,
    paths: &StatePaths,
    timeout: Duration,
    mut reaped: impl FnMut() -> bool,
) -> Result<StopOutcome> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let gone = |reaped: &mut dyn FnMut() -> bool| reaped() || !pid_is_our_qemu(pid, paths);
    if gone(&mut reaped) {
        cleanup_runtime_files(paths);
        return Ok(StopOutcome::NotRunning);
    }
    let t0 = Instant::now();
    let qmp = Qmp::connect(&paths.qmp_sock, Duration::from_secs(5)).and_then(|mut q| {
        q.execute("system_powerdown", None)?;
        Ok(q)
    });
    let mut outcome = None;
    match qmp {
        Err(e) => {
            outcome = Some(StopOutcome::Killed {
                reason: format!("QMP system_powerdown failed: {e:#}"),
            });
        }
        Ok(mut q) => {
            // QEMU announces the guest's own power-off with a SHUTDOWN event (reason
            // "guest-shutdown") just before it exits; the process exit is what counts.
            let mut shutdown_reason: Option<String> = None;
            if q.set_timeout(timeout).is_ok() {
                if let Ok(data) = q.wait_event("SHUTDOWN") {
                    shutdown_reason = data
                        .get("reason")
                        .and_then(|r| r.as_str())
                        .map(String::from);
                }
            }
            while t0.elapsed() < timeout {
                if gone(&mut reaped) {
                    outcome = Some(StopOutcome::PoweredOff {
                        seconds: t0.elapsed().as_secs_f64(),
                        shutdown_reason,
                    });
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let outcome = match outcome {
        Some(o @ StopOutcome::PoweredOff { .. }) => o,
        other => {
            let reason = match other {
                Some(StopOutcome::Killed { reason }) => reason,
                _ => format!("the guest did not power off within {} s", timeout.as_secs()),
            };
            let p = Pid::from_raw(pid as i32);
            let _ = kill(p, Signal::SIGTERM);
            let t1 = Instant::now();
            while !gone(&mut reaped) && t1.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !gone(&mut reaped) {
                let _ = kill(p, Signal::SIGKILL);
                let t2 = Instant::now();
                while !gone(&mut reaped) && t2.elapsed() < Duration::from_secs(3) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            StopOutcome::Killed { reason }
        }
    };
    cleanup_runtime_files(paths);
    Ok(outcome)
}

/// `vlaunch stop NAME`: stops the VM of that state directory, whoever started it.
pub fn stop_by_name(root: &Path, name: &str, timeout: Duration) -> Result<StopOutcome> {
    validate_name(name)?;
    let paths = StatePaths::in_dir(&root.join(name));
    if !paths.dir.exists() {
        bail!(
            "no VM named {name} (no {}): see `vlaunch ps`",
            paths.dir.display()
        );
    }
    match running_pid(&paths) {
        Some(pid) => {
            let out = stop_pid(pid, &paths, timeout, || false);
            wait_serial_log_written(&paths.serial_log);
            out
        }
        None => {
            cleanup_runtime_files(&paths);
            Ok(StopOutcome::NotRunning)
        }
    }
}

/// Re-attaches every switch port (stream NIC) of running VM `name`, for after its switch
/// restarted: QEMU 7.2's `-netdev stream` does not reconnect, so over QMP the stream `sw<i>`
/// and the hub port `up<i>` joining it to the guest's hub are deleted and added again (the
/// guest's device stays peered with hub port `net<i>`: no link change in the guest). Returns
/// the NIC indices re-attached. A VM started before vlaunch put its streams behind a hub is
/// refused (restart it).
pub fn reattach_by_name(root: &Path, name: &str) -> Result<Vec<usize>> {
    validate_name(name)?;
    let paths = StatePaths::in_dir(&root.join(name));
    if running_pid(&paths).is_none() {
        bail!("VM {name} is not running (see `vlaunch ps --all`)");
    }
    let rec: VmRecord = serde_json::from_slice(
        &fs::read(&paths.vm_json)
            .with_context(|| format!("reading {}", paths.vm_json.display()))?,
    )
    .with_context(|| format!("parsing {}", paths.vm_json.display()))?;
    let streams: Vec<(usize, PathBuf)> = (rec.spec.nics.iter().enumerate())
        .filter_map(|(i, n)| n.stream.clone().map(|p| (i, p)))
        .collect();
    if streams.is_empty() {
        return Ok(vec![]);
    }
    let mut q = Qmp::connect(&paths.qmp_sock, Duration::from_secs(5))
        .with_context(|| format!("QMP of {name}"))?;
    reattach_streams(&mut q, &streams).with_context(|| format!("re-attaching {name}"))?;
    Ok(streams.iter().map(|(i, _)| *i).collect())
}

/// The QMP part of [`reattach_by_name`]: for each `(i, socket)`, `sw<i>` and `up<i>` again.
pub fn reattach_streams(q: &mut Qmp, streams: &[(usize, PathBuf)]) -> Result<()> {
    use serde_json::json;
    for (i, path) in streams {
        let path = path.to_str().context("a non-UTF-8 stream socket path")?;
        if let Err(e) = q.execute("netdev_del", Some(json!({"id": format!("up{i}")}))) {
            bail!(
                "NIC {i} has no hub port up{i} ({e:#}): the VM was started by an older vlaunch \
                 whose stream NICs cannot be re-attached; restart it"
            );
        }
        q.execute("netdev_del", Some(json!({"id": format!("sw{i}")})))
            .with_context(|| format!("netdev_del sw{i}"))?;
        q.execute(
            "netdev_add",
            Some(
                json!({"type": "stream", "id": format!("sw{i}"), "server": false,
                        "addr": {"type": "unix", "path": path}}),
            ),
        )
        .with_context(|| format!("netdev_add stream sw{i} on {path}"))?;
        q.execute(
            "netdev_add",
            Some(
                json!({"type": "hubport", "id": format!("up{i}"), "hubid": *i,
                        "netdev": format!("sw{i}")}),
            ),
        )
        .with_context(|| format!("netdev_add hubport up{i}"))?;
    }
    Ok(())
}

/// `vlaunch wait NAME`: [`wait_ready_log`] for a VM started by another process (`--detach`).
/// `seconds` in the result counts from the start of the wait.
pub fn wait_ready_by_name(
    root: &Path,
    name: &str,
    timeout: Duration,
) -> std::result::Result<Ready, NotReady> {
    let fail = |reason: String| NotReady {
        reason,
        last_lines: vec![],
        failures: vec![],
    };
    validate_name(name).map_err(|e| fail(format!("{e:#}")))?;
    let paths = StatePaths::in_dir(&root.join(name));
    let Some(pid) = running_pid(&paths) else {
        // A VM that already stopped may still have printed its ready line.
        let mut sc = ConsoleScanner::new(20);
        sc.feed(&fs::read(&paths.serial_log).unwrap_or_default());
        return match sc.ready() {
            Some(r) => Ok(Ready {
                info: r.clone(),
                seconds: 0.0,
                failures: sc.failures().to_vec(),
            }),
            None => Err(NotReady {
                reason: format!("VM {name} is not running (see `vlaunch ps --all`)"),
                last_lines: sc.last_lines(),
                failures: sc.failures().to_vec(),
            }),
        };
    };
    wait_ready_log(
        &paths.serial_log,
        Instant::now(),
        timeout,
        || (!pid_is_our_qemu(pid, &paths)).then(|| "QEMU exited".to_string()),
        &mut |_, _| {},
    )
}

/// `vlaunch rm NAME`: removes the state directory of a VM that is not running.
pub fn remove_by_name(root: &Path, name: &str) -> Result<()> {
    validate_name(name)?;
    let paths = StatePaths::in_dir(&root.join(name));
    if let Some(pid) = running_pid(&paths) {
        bail!("VM {name} is running (pid {pid}): `vlaunch stop {name}` first");
    }
    if !paths.dir.exists() {
        bail!("no VM named {name} (no {})", paths.dir.display());
    }
    remove_state_dir(&paths)
}

/// One row of `vlaunch ps`.
#[derive(Debug, Clone, Serialize)]
pub struct VmStatus {
    pub name: String,
    pub running: bool,
    pub pid: Option<u32>,
    pub state_dir: PathBuf,
    pub iso: Option<PathBuf>,
    pub accel: Option<Accel>,
    pub firmware: Option<String>,
    pub media: Option<Media>,
    pub mem_mib: Option<u32>,
    pub nics: Vec<Nic>,
    /// The ready line, once the appliance printed it.
    pub ready: Option<ReadyInfo>,
}

/// Every VM state directory under `root`, sorted by name.
pub fn list(root: &Path) -> Result<Vec<VmStatus>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        if !e.file_type()?.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let paths = StatePaths::in_dir(&e.path());
        let record: Option<VmRecord> = fs::read(&paths.vm_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let pid = running_pid(&paths);
        let mut sc = ConsoleScanner::new(0);
        sc.feed(&fs::read(&paths.serial_log).unwrap_or_default());
        let spec = record.as_ref().map(|r| &r.spec);
        out.push(VmStatus {
            name,
            running: pid.is_some(),
            pid,
            state_dir: paths.dir.clone(),
            iso: spec.map(|s| s.iso.clone()),
            accel: spec.map(|s| s.accel),
            firmware: spec.map(|s| match s.firmware {
                Firmware::Bios => "bios".to_string(),
                Firmware::Uefi {
                    secure_boot: true, ..
                } => "secureboot".to_string(),
                Firmware::Uefi { .. } => "uefi".to_string(),
            }),
            media: spec.map(|s| s.media),
            mem_mib: spec.map(|s| s.mem_mib),
            nics: spec.map(|s| s.nics.clone()).unwrap_or_default(),
            ready: sc.ready().cloned(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest printing without end: the log on disk stays within 2 x max (serial.log and
    /// serial.log.1), the newest output is at the end of serial.log, a follower
    /// (`wait_ready_log`) sees the ready line printed after two rotations, and the writer
    /// ends when the writing side (QEMU) closes. Before, QEMU's `logfile=` grew without end.
    #[test]
    fn the_serial_log_is_bounded_and_followed_across_rotations() {
        use std::ffi::CString;
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        let old = serial_log_old(&log);
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let max = 64 * 1024;
        let (cl, co) = (
            CString::new(log.to_str().unwrap()).unwrap(),
            CString::new(old.to_str().unwrap()).unwrap(),
        );
        let keeper = std::thread::spawn(move || keep_serial_log(r.as_raw_fd(), &cl, &co, max));
        let log2 = log.clone();
        let follower = std::thread::spawn(move || {
            wait_ready_log(
                &log2,
                Instant::now(),
                Duration::from_secs(20),
                || None,
                &mut |_, _| {},
            )
        });
        let mut guest = fs::File::from(w);
        // While QEMU's end is open the writer holds its lock: a reader would wait for it.
        std::thread::sleep(Duration::from_millis(100));
        let busy = fs::File::open(&log).unwrap();
        assert_ne!(
            unsafe { libc::flock(busy.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
            0,
            "the writer holds serial.log locked"
        );
        drop(busy);
        let line = [b'x'; 99];
        let mut written = 0u64;
        while written < 5 * max {
            guest.write_all(&line).unwrap();
            guest.write_all(b"\n").unwrap();
            written += 100;
        }
        guest
            .write_all(b"ramux: ready profile=client role=- host=c1\n")
            .unwrap();
        guest.write_all(b"the end\n").unwrap();
        drop(guest);
        keeper.join().unwrap();
        let t = Instant::now();
        wait_serial_log_written(&log);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "the lock is released at the end"
        );
        let (a, b) = (
            fs::metadata(&log).unwrap().len(),
            fs::metadata(&old).unwrap().len(),
        );
        assert!(
            a <= max && b <= max,
            "serial.log {a} B, serial.log.1 {b} B, max {max}"
        );
        assert!(fs::read(&log).unwrap().ends_with(b"c1\nthe end\n"));
        let ready = follower.join().unwrap().expect("ready line seen");
        assert_eq!(ready.info.host, "c1");
    }

    /// A second start of a name while the first is still starting is refused (before QEMU),
    /// not a second QEMU stealing the first one's sockets.
    #[test]
    fn a_name_being_started_cannot_be_started_twice() {
        let d = tempfile::tempdir().unwrap();
        let held = lock_name(d.path(), "r1").unwrap();
        let mut o = LaunchOptions::new(Path::new("/nonexistent.iso"));
        o.name = Some("r1".into());
        o.state_root = d.path().to_path_buf();
        let iso = d.path().join("x.iso");
        std::fs::write(&iso, b"").unwrap();
        o.iso = iso;
        let e = launch(&o, &mut |_| {}).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("is being started by another vlaunch right now"),
            "{e}"
        );
        drop(held);
        assert!(lock_name(d.path(), "r1").is_ok());
        assert!(lock_name(d.path(), "r2").is_ok());
    }

    /// The tail of a huge console log reads only its end.
    #[test]
    fn tail_reads_the_end_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("serial.log");
        let mut big = "x".repeat(100).repeat(30_000); // 3 MB of one endless line
        big.push_str("\nlast one\n");
        std::fs::write(&p, &big).unwrap();
        assert_eq!(tail_file(&p, 3), "last one");
    }

    #[test]
    fn names() {
        assert_eq!(default_name(Path::new("/x/RT1.iso")).unwrap(), "RT1");
        assert_eq!(
            default_name(Path::new("router-backup.iso")).unwrap(),
            "router-backup"
        );
        assert!(default_name(Path::new("/x/a b.iso")).is_err());
        for bad in ["", ".x", "a/b", "a,b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        validate_name("RT1_a.b-c").unwrap();
    }

    #[test]
    fn wait_ready_reads_a_growing_log() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("serial.log");
        let log2 = log.clone();
        let w = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            fs::write(&log2, b"booting\n").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let mut f = fs::OpenOptions::new().append(true).open(&log2).unwrap();
            std::io::Write::write_all(&mut f, b"ramux: ready profile=router role=MASTER host=r1\n")
                .unwrap();
        });
        let r = wait_ready_log(
            &log,
            Instant::now(),
            Duration::from_secs(10),
            || None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(r.info.host, "r1");
        w.join().unwrap();
    }

    #[test]
    fn ready_carries_the_failures_before_it() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("serial.log");
        fs::write(
            &log,
            "ramux: failed radius: secret pki/radius.key missing (expected in /run/ramux/secrets; \
             pack it with vbuild secrets pack)\nramux: ready profile=dns role=MASTER host=dns1\n",
        )
        .unwrap();
        let r = wait_ready_log(
            &log,
            Instant::now(),
            Duration::from_secs(5),
            || None,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert!(r.failures[0].starts_with("ramux: failed radius: secret pki/radius.key missing"));
    }

    #[test]
    fn wait_ready_reports_death_and_timeout_with_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("serial.log");
        fs::write(
            &log,
            b"Kernel panic - not syncing: VFS\nramux: failed init: x\n",
        )
        .unwrap();
        let e = wait_ready_log(
            &log,
            Instant::now(),
            Duration::from_secs(10),
            || Some("exit status: 1".into()),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(e.reason.contains("QEMU exited"), "{e}");
        assert!(e.to_string().contains("Kernel panic"), "{e}");
        assert_eq!(e.failures, vec!["ramux: failed init: x".to_string()]);
        let e = wait_ready_log(
            &log,
            Instant::now(),
            Duration::from_millis(200),
            || None,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(e.reason.contains("no ready line"), "{e}");
    }

    #[test]
    fn list_and_stop_of_dead_vm() {
        let d = tempfile::tempdir().unwrap();
        let paths = StatePaths::in_dir(&d.path().join("RT9"));
        fs::create_dir_all(&paths.dir).unwrap();
        // A pid that is certainly not our QEMU (our own test process).
        fs::write(&paths.pidfile, std::process::id().to_string()).unwrap();
        fs::write(
            &paths.serial_log,
            "ramux: ready profile=dns role=MASTER host=d\n",
        )
        .unwrap();
        let l = list(d.path()).unwrap();
        assert_eq!(l.len(), 1);
        assert!(!l[0].running);
        assert_eq!(l[0].ready.as_ref().unwrap().profile, "dns");
        assert_eq!(
            stop_by_name(d.path(), "RT9", Duration::from_secs(1)).unwrap(),
            StopOutcome::NotRunning
        );
        assert!(!paths.pidfile.exists());
        assert!(stop_by_name(d.path(), "nope", Duration::from_secs(1)).is_err());
        remove_by_name(d.path(), "RT9").unwrap();
        assert!(list(d.path()).unwrap().is_empty());
    }
}
