//! The kernel side of a connected client: its /32 route into the tun device, its proxy-ARP entry
//! on the VLAN leg, and one gratuitous ARP from the leg.
//!
//! Routes and proxy entries go through `ip -force -batch -` (iproute2) rather than a netlink
//! crate: iproute2 is in every ramux image already (ramux-init applies `network.ip` with it),
//! the commands are the exact ones the operator types to inspect or undo them, and these
//! changes happen once per connect, off the authorisation path (after `>CLIENT:ESTABLISHED`),
//! where one process spawn (about 2 ms) costs nothing; the rtnetlink crates would add an
//! async netlink stack and a much larger dependency tree to the image for two messages.
//! The gratuitous ARP is one raw frame on an `AF_PACKET` socket (no `arping` process).

use std::net::Ipv4Addr;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// The `ip -batch` lines that install (`add`) or remove a client's entries.
pub fn batch(add: bool, addr: Ipv4Addr, tun: &str, leg: &str) -> String {
    if add {
        format!("route replace {addr}/32 dev {tun}\nneigh replace proxy {addr} dev {leg}\n")
    } else {
        // The route is gone already when the tun went down with OpenVPN: -force goes on.
        format!("route del {addr}/32 dev {tun}\nneigh del proxy {addr} dev {leg}\n")
    }
}

/// Runs `ip -force -batch -` with `lines`; Err carries ip's stderr.
pub async fn ip_batch(lines: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(lines.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let o = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// A gratuitous ARP request (RFC 5227 announcement: sender = target = `addr`) from `mac`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    f[38..42].copy_from_slice(&addr.octets());
    f
}

/// `aa:bb:cc:dd:ee:ff` from /sys/class/net/<leg>/address.
fn leg_mac(leg: &str) -> Result<[u8; 6], String> {
    let p = format!("/sys/class/net/{leg}/address");
    let s = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    v.try_into().map_err(|_| format!("{p}: not a MAC"))
}

/// Sends one gratuitous ARP for `addr` out of `leg`.
pub fn send_garp(leg: &str, addr: Ipv4Addr) -> Result<(), String> {
    let mac = leg_mac(leg)?;
    let name = std::ffi::CString::new(leg).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name; returns 0 when there is no such interface.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("{leg}: no such interface"));
    }
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: plain socket(2); the descriptor is closed below on every path.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return Err(format!(
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto;
    sa.sll_ifindex = ifindex as i32;
    sa.sll_halen = 6;
    sa.sll_addr[..6].fill(0xff);
    let frame = garp_frame(mac, addr);
    // SAFETY: frame and sa outlive the call; lengths are theirs.
    let n = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    if n < 0 {
        return Err(format!("gratuitous ARP on {leg}: {err}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_batch() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(172, 16, 10, 130));
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[28..32], &f[38..42]);
        assert_eq!(
            batch(true, Ipv4Addr::new(172, 16, 10, 130), "tun10", "eth0.10"),
            "route replace 172.16.10.130/32 dev tun10\nneigh replace proxy 172.16.10.130 dev eth0.10\n"
        );
    }
}
