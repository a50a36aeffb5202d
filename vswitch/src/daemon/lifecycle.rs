//! The process around the switch: daemonising (with a readiness pipe), the pid file, and
//! SIGTERM/SIGINT/SIGHUP turned into an event of the loop through a self-pipe.

use super::{Daemon, T_SIGNAL};
use anyhow::{bail, Context, Result};
use mio::unix::SourceFd;
use mio::Interest;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the signal pipe (-1 until [`Daemon::setup_signals`]).
static SIG_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = SIG_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; fd is the non-blocking pipe write end.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// What an existing pid file means for a start.
#[derive(Debug, PartialEq)]
pub(super) enum PidVerdict {
    /// No pid file: create it.
    Create,
    /// A pid file left by a switch that is gone (SIGKILL, crash): replace it, saying why.
    TakeOver(String),
    /// A live vswitch has it: refuse the start.
    Running(i32),
}

/// Judge a pid file's content (`None`: there is none). `comm_of(pid)` is the running
/// process's command name, `None` if there is no such process. A vswitch is `vswitch` or
/// whatever this binary is called.
pub(super) fn pid_verdict(
    content: Option<&str>,
    comm_of: impl Fn(i32) -> Option<String>,
) -> PidVerdict {
    let Some(text) = content else {
        return PidVerdict::Create;
    };
    let Some(pid) = text.trim().parse::<i32>().ok().filter(|&p| p > 0) else {
        return PidVerdict::TakeOver(format!("it holds no pid ({:?})", text.trim()));
    };
    match comm_of(pid) {
        None => PidVerdict::TakeOver(format!("pid {pid} is not running")),
        Some(c) if c == "vswitch" || Some(&c) == proc_comm(std::process::id() as i32).as_ref() => {
            PidVerdict::Running(pid)
        }
        Some(c) => PidVerdict::TakeOver(format!("pid {pid} is {c:?}, not a vswitch")),
    }
}

/// The command name of live process `pid` (from `/proc/PID/status`; a pid that is only a
/// thread of another process, or whose status cannot be read, is taken as gone).
fn proc_comm(pid: i32) -> Option<String> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| {
        st.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    (field("Tgid:")? == pid.to_string()).then_some(())?;
    field("Name:")
}

/// A private temporary name beside the pid file, unguessable so nobody can plant a symlink
/// at it in a shared directory.
fn pidfile_tmp(pidfile: &Path, random: u64) -> PathBuf {
    let name = pidfile
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    pidfile.with_file_name(format!(".{name}.{random:016x}"))
}

fn random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom fills at most b.len() bytes of b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, b.len(), 0) };
    if n != 8 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(b))
}

/// Write `pid` to a fresh private file (O_EXCL|O_NOFOLLOW, mode 0644) beside `pidfile`.
fn write_tmp(pidfile: &Path, pid: u32) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = pidfile_tmp(pidfile, random_u64().context("getrandom")?);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    let r = f.write_all(format!("{pid}\n").as_bytes());
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", tmp.display()));
    }
    Ok(tmp)
}

/// Put a pid file in place: linked when there is none (link fails like O_EXCL if one
/// appears meanwhile), renamed over a stale one; refused when a live vswitch holds it.
/// Returns the take-over reason to log, if any.
pub(super) fn place_pidfile(p: &Path, pid: u32) -> Result<Option<String>> {
    let content = std::fs::read_to_string(p).ok();
    let verdict = pid_verdict(content.as_deref(), proc_comm);
    if let PidVerdict::Running(other) = verdict {
        bail!(
            "pidfile {} belongs to vswitch pid {other}, which is running (stop it first)",
            p.display()
        );
    }
    let tmp = write_tmp(p, pid)?;
    let r = match &verdict {
        PidVerdict::Create => std::fs::hard_link(&tmp, p),
        _ => std::fs::rename(&tmp, p),
    };
    let _ = std::fs::remove_file(&tmp);
    r.with_context(|| format!("create pidfile {}", p.display()))?;
    Ok(match verdict {
        PidVerdict::TakeOver(why) => {
            Some(format!("took over stale pidfile {}: {why}", p.display()))
        }
        _ => None,
    })
}

impl Daemon {
    /// Fork into the background. Unlike daemon(3), the parent waits until the child says it
    /// is ready (sockets bound, pidfile written), so `vswitch -d` returning 0 means "connect
    /// now", and a failure after the fork still gives a non-zero exit status.
    pub(super) fn daemonize(&mut self) -> Result<()> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("pipe2");
        }
        // SAFETY: single-threaded here; the child continues with a copy of our state.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error()).context("fork");
        }
        if pid > 0 {
            // SAFETY: parent: close the write end, wait for one byte or EOF, then exit
            // without running destructors (the sockets now belong to the child).
            unsafe {
                libc::close(fds[1]);
                let mut b = 0u8;
                let n = libc::read(fds[0], &mut b as *mut u8 as *mut libc::c_void, 1);
                libc::_exit(if n == 1 && b == b'k' { 0 } else { 1 });
            }
        }
        // SAFETY: child: new session, own the write end.
        unsafe {
            libc::close(fds[0]);
            libc::setsid();
        }
        // SAFETY: fds[1] is the pipe write end, owned from here on.
        self.ready = Some(unsafe { OwnedFd::from_raw_fd(fds[1]) });
        // SAFETY: openlog with a static identifier.
        unsafe { libc::openlog(c"vswitch".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
        self.log.syslog = true;
        Ok(())
    }

    /// Child side of [`Self::daemonize`]: tell the parent we are up, detach stdio.
    pub(super) fn signal_ready(&mut self) {
        if let Some(fd) = self.ready.take() {
            // SAFETY: plain fd operations on fds we own / the standard descriptors.
            unsafe {
                let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if devnull >= 0 {
                    for std_fd in 0..3 {
                        libc::dup2(devnull, std_fd);
                    }
                    if devnull > 2 {
                        libc::close(devnull);
                    }
                }
                libc::write(fd.as_raw_fd(), b"k".as_ptr() as *const libc::c_void, 1);
            }
            let _ = std::env::set_current_dir("/");
        }
    }

    pub(super) fn write_pidfile(&mut self) -> Result<()> {
        if let Some(p) = &self.cfg.pidfile {
            if let Some(msg) = place_pidfile(p, std::process::id())? {
                super::log::emit(self.log.syslog, &msg);
            }
            self.wrote_pidfile = true;
        }
        Ok(())
    }

    pub(super) fn setup_signals(&mut self) -> Result<()> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 fills two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("pipe2");
        }
        SIG_FD.store(fds[1], Ordering::Relaxed);
        // SAFETY: installing plain handlers; on_signal only calls write(2).
        unsafe {
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::signal(s, on_signal as *const () as libc::sighandler_t);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        // SAFETY: fds[0] is a fresh pipe read end owned from here on.
        let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        self.poll.registry().register(
            &mut SourceFd(&r.as_raw_fd()),
            T_SIGNAL,
            Interest::READABLE,
        )?;
        self.sig_read = Some(r);
        Ok(())
    }

    /// A signal arrived: empty the pipe and stop the loop.
    pub(super) fn on_signal_event(&mut self) {
        let mut b = [0u8; 16];
        if let Some(fd) = &self.sig_read {
            // SAFETY: reading into a local buffer from our pipe.
            unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr() as *mut libc::c_void, b.len()) };
        }
        self.shutdown = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_temporaries_are_private_names_beside_it() {
        assert_eq!(
            pidfile_tmp(Path::new("/run/ramux/switch.pid"), 0xab),
            Path::new("/run/ramux/.switch.pid.00000000000000ab")
        );
        assert_ne!(random_u64().unwrap(), random_u64().unwrap());
    }

    #[test]
    fn stale_pidfiles_are_taken_over_live_vswitches_are_not() {
        let comm = |pid: i32| match pid {
            10 => Some("vswitch".to_string()),
            20 => Some("bash".to_string()),
            _ => None,
        };
        assert_eq!(pid_verdict(None, comm), PidVerdict::Create);
        assert_eq!(pid_verdict(Some("10\n"), comm), PidVerdict::Running(10));
        assert!(
            matches!(pid_verdict(Some("20\n"), comm), PidVerdict::TakeOver(w) if w.contains("bash"))
        );
        assert!(
            matches!(pid_verdict(Some("30\n"), comm), PidVerdict::TakeOver(w) if w.contains("not running"))
        );
        assert!(matches!(
            pid_verdict(Some(""), comm),
            PidVerdict::TakeOver(_)
        ));
        assert!(matches!(
            pid_verdict(Some("-1"), comm),
            PidVerdict::TakeOver(_)
        ));
    }

    #[test]
    fn a_pidfile_left_by_a_killed_switch_does_not_block_a_start() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sw.pid");
        // A pid nothing runs as (the top of the pid range is almost never in use).
        let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let dead = (2..max).rev().find(|p| proc_comm(*p).is_none()).unwrap();
        std::fs::write(&p, format!("{dead}\n")).unwrap();
        let msg = place_pidfile(&p, 4242).expect("stale pidfile taken over");
        assert!(msg.unwrap().contains("not running"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "4242\n");
        // A live process that is not a vswitch (pid reuse after a reboot): taken over too.
        let mut sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let spid = sleep.id() as i32;
        // Until it has exec'ed, the child still has the test binary's name.
        while proc_comm(spid).as_deref() != Some("sleep") {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::write(&p, format!("{spid}\n")).unwrap();
        let r = place_pidfile(&p, 4243);
        let _ = sleep.kill();
        let _ = sleep.wait();
        assert!(r.unwrap().unwrap().contains("not a vswitch"));
        // No temporaries are left behind.
        let n = std::fs::read_dir(t.path()).unwrap().count();
        assert_eq!(n, 1);
    }
}
