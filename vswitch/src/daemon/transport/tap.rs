//! `-t TAP`: an existing Linux TAP device attached through `/dev/net/tun` (TUNSETIFF with
//! `IFF_TAP | IFF_NO_PI`: raw Ethernet frames, one per read/write).

use super::super::sys::set_nonblocking;
use super::super::{log, Daemon};
use super::Sink;
use crate::core::EndpointInfo;
use crate::wire::PortRequest;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x400454ca;
/// `sizeof(struct ifreq)`.
const IFREQ_LEN: usize = 40;

/// The `struct ifreq` TUNSETIFF takes: the interface name (NUL-terminated, at most 15
/// bytes) and the flags at offset 16.
fn tap_ifreq(name: &str) -> Result<[u8; IFREQ_LEN]> {
    if name.len() >= 16 {
        bail!("tap name {name:?} longer than 15 bytes");
    }
    let mut ifr = [0u8; IFREQ_LEN];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    let flags: i16 = (libc::IFF_TAP | libc::IFF_NO_PI) as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    Ok(ifr)
}

/// Attach to tap `name`, non-blocking.
fn open_tap(name: &str) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("open /dev/net/tun (needs root or CAP_NET_ADMIN)")?;
    let mut ifr = tap_ifreq(name)?;
    // SAFETY: ifr is a 40-byte struct ifreq buffer, valid for the ioctl.
    if unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("attach tap {name} (TUNSETIFF)"));
    }
    set_nonblocking(f.as_raw_fd())?;
    Ok(f)
}

impl Daemon {
    /// `-t NAME`: the tap gets the first free port.
    pub(in crate::daemon) fn add_tap(&mut self, name: &str) -> Result<()> {
        let f = open_tap(name)?;
        let id = f.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "tuntap".into(),
            descr: name.to_string(),
        };
        let port = self
            .sw
            .alloc(PortRequest::Any, Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("tap {name}: {e}"))?;
        self.attach(id, port, Sink::Tap(f), None)?;
        log::emit(self.log.syslog, &format!("tap {name} on port {port}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_layout() {
        let ifr = tap_ifreq("tap0").unwrap();
        assert_eq!(&ifr[..5], b"tap0\0");
        let flags = i16::from_ne_bytes([ifr[16], ifr[17]]);
        assert_eq!(flags, 0x0002 | 0x1000); // IFF_TAP | IFF_NO_PI
        assert!(ifr[18..].iter().all(|&b| b == 0));
        // 15 bytes fit with the NUL; 16 do not.
        assert!(tap_ifreq("abcdefghijklmno").is_ok());
        assert!(tap_ifreq("abcdefghijklmnop").is_err());
    }
}
