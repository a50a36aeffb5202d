//! `vlaunch console NAME`: an interactive terminal on the VM's serial socket.
//!
//! The terminal goes to raw mode (restored on every exit path by a guard) so the guest's shell
//! gets every key, Ctrl-C included; Ctrl-] (0x1d, as in telnet and virsh) detaches and leaves
//! the VM running. With a non-terminal stdin (a script piping commands) the input is sent as is
//! and the console stays attached until the output has been quiet for `linger` after stdin ends.

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Ctrl-]
pub const ESCAPE: u8 = 0x1d;

/// Why the console session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// The user typed the escape key.
    User,
    /// QEMU closed the socket (the VM stopped).
    VmGone,
    /// stdin ended and the output was quiet for the linger time.
    InputEnded,
}

struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Result<Option<Self>> {
        let Ok(saved) = termios::tcgetattr(fd) else {
            return Ok(None); // not a terminal
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)
            .context("setting the terminal to raw mode")?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Attaches stdin/`out` to the serial socket at `sock` until detach, VM exit or end of input.
pub fn attach(sock: &Path, out: &mut dyn Write, linger: Duration) -> Result<Detach> {
    let mut s = UnixStream::connect(sock).with_context(|| {
        format!(
            "connecting to the serial console {} (is the VM running? see `vlaunch ps`)",
            sock.display()
        )
    })?;
    let stdin = std::io::stdin();
    let in_fd = stdin.as_fd();
    let _raw = RawMode::enter(in_fd)?;
    let mut input = std::fs::File::from(in_fd.try_clone_to_owned()?);
    let sock_fd = s.try_clone()?;
    let mut buf = [0u8; 4096];
    let mut stdin_open = true;
    let mut quiet_since = Instant::now();
    loop {
        let mut fds = vec![PollFd::new(sock_fd.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(in_fd, PollFlags::POLLIN));
        }
        let timeout = if stdin_open {
            PollTimeout::NONE
        } else {
            PollTimeout::from(100u16)
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll on the console"),
        }
        let ready = |f: &PollFd| {
            f.revents()
                .map(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
                .unwrap_or(false)
        };
        let sock_ready = ready(&fds[0]);
        let in_ready = stdin_open && ready(&fds[1]);
        drop(fds);
        if sock_ready {
            let n = s.read(&mut buf).context("reading the serial console")?;
            if n == 0 {
                return Ok(Detach::VmGone);
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
            quiet_since = Instant::now();
        }
        if in_ready {
            let n = input.read(&mut buf).context("reading stdin")?;
            if n == 0 {
                stdin_open = false;
                quiet_since = Instant::now();
            } else if let Some(i) = buf[..n].iter().position(|&b| b == ESCAPE) {
                s.write_all(&buf[..i])?;
                return Ok(Detach::User);
            } else {
                s.write_all(&buf[..n])
                    .context("writing to the serial console")?;
            }
        }
        if !stdin_open && quiet_since.elapsed() >= linger {
            return Ok(Detach::InputEnded);
        }
    }
}
