//! Small fd and file helpers over libc.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub(super) fn set_sndbuf(fd: RawFd, bytes: i32) {
    // SAFETY: setsockopt with a valid int option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// Whether the process runs as root.
pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// chmod a socket file without following a symlink put in its place (fchmod on a socket
/// descriptor would change the socket's inode, not the file's): glibc's fchmodat with
/// AT_SYMLINK_NOFOLLOW refuses symlinks.
pub(super) fn chmod_nofollow(path: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            c.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// chown a socket file (lchown semantics: a symlink itself, never its target).
pub(super) fn chown_nofollow(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    let c = cpath(path)?;
    let (u, g) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
    // SAFETY: c is a valid NUL-terminated path; -1 (u32::MAX) leaves an id unchanged.
    let r = unsafe { libc::fchownat(libc::AT_FDCWD, c.as_ptr(), u, g, libc::AT_SYMLINK_NOFOLLOW) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Open a directory refusing a symlink (O_NOFOLLOW), so its mode and owner are changed on
/// the descriptor (fchmod/fchown), never on whatever a path would resolve to.
pub(super) fn open_dir_nofollow(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Set a directory's mode and group through its descriptor.
pub(super) fn fchmod_fchgrp(f: &std::fs::File, mode: u32, gid: Option<u32>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fd is a valid open descriptor.
    if unsafe { libc::fchmod(fd, mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(g) = gid {
        // SAFETY: as above; uid -1 leaves the owner unchanged.
        if unsafe { libc::fchown(fd, u32::MAX, g) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The effective uid of the switch (whose directories it may trust).
pub(super) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// What [`dir_problem`] judges of a directory (from lstat).
#[derive(Debug, Clone, Copy)]
pub struct DirFacts {
    pub is_dir: bool,
    pub is_symlink: bool,
    pub owner: u32,
    pub gid: u32,
    pub mode: u32,
}

/// What is wrong with an existing control directory, if anything (the pure core of
/// [`check_dir`]): it must be a real directory owned by the switch's user and writable by
/// nobody else, except by its group when that is the one `-g` names, or without `-g` the
/// switch's own group (vde_switch's shared-group setup, and what `-m 660` creates).
pub fn dir_problem(
    path: &Path,
    f: &DirFacts,
    me: (u32, u32),
    group: Option<u32>,
) -> Option<String> {
    let (me, my_gid) = me;
    let DirFacts {
        is_dir,
        is_symlink,
        owner,
        gid,
        mode,
    } = *f;
    let d = path.display();
    if is_symlink {
        return Some(format!(
            "{d} is a symlink: the switch does not follow it; remove it (`rm {d}`)"
        ));
    }
    if !is_dir {
        return Some(format!("{d} exists and is not a directory; remove it"));
    }
    if owner != me {
        return Some(format!(
            "{d} is owned by uid {owner}, not by the switch's user (uid {me}): \
             another user could replace its sockets; remove it (`rm -r {d}`) or `chown {me} {d}`"
        ));
    }
    // The group `-g` names, or the switch's own (what it gives a directory it creates).
    let group_ok = group.unwrap_or(my_gid) == gid;
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && !group_ok) {
        return Some(format!(
            "{d} is writable by {} (mode {:04o}): others could replace its sockets; \
             `chmod go-w {d}` (or give the switch `-g` its group) or remove it",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777
        ));
    }
    None
}

/// Refuse an existing directory the switch cannot trust (see [`dir_problem`]).
pub(super) fn check_dir(path: &Path, group: Option<u32>) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path)?;
    let ft = md.file_type();
    let f = DirFacts {
        is_dir: ft.is_dir(),
        is_symlink: ft.is_symlink(),
        owner: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
    };
    // SAFETY: getegid has no preconditions.
    let egid = unsafe { libc::getegid() };
    match dir_problem(path, &f, (euid(), egid), group) {
        Some(p) => anyhow::bail!("refusing control directory: {p}"),
        None => Ok(()),
    }
}

/// The uid the kernel recorded for the other end of a unix stream (SO_PEERCRED: the
/// process that connected, or that listened, never what the peer claims).
pub(super) fn peer_uid(fd: RawFd) -> io::Result<u32> {
    // SAFETY: an all-zero ucred is valid; getsockopt fills at most `len` bytes.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred/len are valid for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Whether a peer with kernel uid `peer` may have the switch connect to a file of this
/// type and owner: only its own sockets (root may name any socket).
pub fn client_socket_problem(is_socket: bool, owner: u32, peer: u32) -> Option<String> {
    if !is_socket {
        return Some("is not a socket".into());
    }
    if peer != 0 && owner != peer {
        return Some(format!(
            "is owned by uid {owner}, not by the connecting client (uid {peer})"
        ));
    }
    None
}

/// Open the client's data socket file without following a symlink (O_PATH|O_NOFOLLOW) and
/// check it is a socket the peer owns. The switch then connects through
/// `/proc/self/fd/N`, so the file checked is the file connected to (no swap in between).
pub(super) fn open_client_socket(path: &Path, peer: u32) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| anyhow::anyhow!("client socket {}: {e}", path.display()))?;
    let md = f.metadata()?;
    let owner = std::os::unix::fs::MetadataExt::uid(&md);
    if let Some(p) = client_socket_problem(md.file_type().is_socket(), owner, peer) {
        anyhow::bail!("client socket {} {p}", path.display());
    }
    Ok(f)
}

/// The path connect(2) should use to reach the file behind `f` (its /proc magic link when
/// /proc is mounted, else the path itself).
pub(super) fn fd_path(f: &std::fs::File, path: &Path) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    let p = std::path::PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
    if p.exists() {
        p
    } else {
        path.to_path_buf()
    }
}
