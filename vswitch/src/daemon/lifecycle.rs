//! The process around the switch: daemonising (with a readiness pipe), the pid file, and
//! SIGTERM/SIGINT/SIGHUP turned into an event of the loop through a self-pipe.

use super::{Daemon, T_SIGNAL};
use anyhow::{Context, Result};
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

/// The temporary file a pid file is written to before it is linked into place.
fn pidfile_tmp(pidfile: &Path, pid: u32) -> PathBuf {
    pidfile.with_extension(format!("tmp.{pid}"))
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
            // Written to a temp file and linked into place: readers never see it empty, and
            // link() fails like O_EXCL when the pidfile already exists.
            let tmp = pidfile_tmp(p, std::process::id());
            std::fs::write(&tmp, format!("{}\n", std::process::id()))
                .with_context(|| format!("write {}", tmp.display()))?;
            let r = std::fs::hard_link(&tmp, p);
            let _ = std::fs::remove_file(&tmp);
            r.with_context(|| format!("create pidfile {} (remove it if stale)", p.display()))?;
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
    fn pidfile_is_written_beside_itself() {
        assert_eq!(
            pidfile_tmp(Path::new("/run/ramux/switch.pid"), 42),
            Path::new("/run/ramux/switch.tmp.42")
        );
        assert_eq!(
            pidfile_tmp(Path::new("/tmp/pid"), 7),
            Path::new("/tmp/pid.tmp.7")
        );
    }
}
