//! Thin, checked wrappers over the socket calls vrrpd needs (raw IP protocol 112 sockets for
//! IPv4 and IPv6, AF_PACKET for gratuitous ARP, raw ICMPv6 for neighbour advertisements).
//! Socket options follow keepalived (docs/vrrp.md, Sockets).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::wire::{IPPROTO_VRRP, MCAST_V4, MCAST_V6};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn socket(domain: i32, ty: i32, proto: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) })?;
    // SAFETY: fresh valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the given size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    })?;
    Ok(())
}

fn ctx(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) })?;
    Ok(())
}

fn bind_device(fd: RawFd, ifname: &str) -> io::Result<()> {
    // SAFETY: ifname bytes are valid for their length.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as u32,
        )
    })
    .map(|_| ())
    .map_err(|e| ctx(e, &format!("SO_BINDTODEVICE {ifname}")))
}

/// A raw VRRP socket on one interface and family, used to send and receive.
pub struct VrrpSocket {
    pub fd: OwnedFd,
    pub ifindex: u32,
    pub v6: bool,
}

/// A received datagram.
pub struct Rx {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// For IPv4 the whole IP packet (header included); for IPv6 the VRRP message only.
    pub data: Vec<u8>,
}

impl VrrpSocket {
    /// Open, bind to the device and join the VRRP group.
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> io::Result<VrrpSocket> {
        let fd = if v6 {
            socket(libc::AF_INET6, libc::SOCK_RAW, i32::from(IPPROTO_VRRP))
        } else {
            socket(libc::AF_INET, libc::SOCK_RAW, i32::from(IPPROTO_VRRP))
        }
        .map_err(|e| ctx(e, "raw socket for IP protocol 112 (needs CAP_NET_RAW)"))?;
        let raw = fd.as_raw_fd();
        bind_device(raw, ifname)?;
        let one: libc::c_int = 1;
        let zero: libc::c_int = 0;
        let ttl: libc::c_int = 255;
        if v6 {
            // The kernel computes and verifies the v3/IPv6 checksum at offset 6.
            let off: libc::c_int = 6;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, &off)?;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)?;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
            let idx = ifindex as libc::c_int;
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
            let _ = setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL, &zero);
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: MCAST_V6.octets(),
                },
                ipv6mr_interface: ifindex,
            };
            setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| ctx(e, "join ff02::12"))?;
        } else {
            let tos: libc::c_int = 0xc0;
            setopt(raw, libc::IPPROTO_IP, libc::IP_TOS, &tos)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, &zero)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_PKTINFO, &one)?;
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(MCAST_V4).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
            setopt(raw, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| ctx(e, "join 224.0.0.18"))?;
        }
        Ok(VrrpSocket { fd, ifindex, v6 })
    }

    /// Send a VRRP message from `src` to `dst` (the group or a unicast peer).
    pub fn send(&self, msg: &[u8], src: IpAddr, dst: IpAddr) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut libc::c_void,
            iov_len: msg.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: msghdr is plain data.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf.as_mut_ptr().cast();
        let r = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let sa = sockaddr_in(dst);
                let pi = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                mh.msg_name = &sa as *const _ as *mut libc::c_void;
                mh.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                // SAFETY: cbuf is large enough for one in_pktinfo cmsg.
                unsafe { put_cmsg(&mut mh, libc::IPPROTO_IP, libc::IP_PKTINFO, &pi) };
                // SAFETY: mh points to live buffers for the duration of the call.
                unsafe { libc::sendmsg(self.fd.as_raw_fd(), &mh, 0) }
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let sa = sockaddr_in6(dst, self.ifindex);
                let pi = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                mh.msg_name = &sa as *const _ as *mut libc::c_void;
                mh.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
                // SAFETY: as above.
                unsafe { put_cmsg(&mut mh, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &pi) };
                // SAFETY: as above.
                unsafe { libc::sendmsg(self.fd.as_raw_fd(), &mh, 0) }
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "address family mix",
                ))
            }
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receive one datagram, or None when the queue is empty.
    pub fn recv(&self) -> io::Result<Option<Rx>> {
        // One byte more than the largest legal packet, so a longer one is seen as too long
        // (bad_length) instead of being cut to a plausible size.
        let mut buf = vec![0u8; MAX_PACKET + 1];
        // SAFETY: sockaddr_storage is plain data.
        let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // IPv6 has no header to read these from: they come as control messages.
        let mut ttl = 0u8;
        let mut dst = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let on_cmsg = |level, ty, data: *const libc::c_uchar| {
            if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT {
                // SAFETY: an IPV6_HOPLIMIT payload is a c_int.
                ttl = unsafe { std::ptr::read_unaligned(data as *const libc::c_int) } as u8;
            } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                // SAFETY: an IPV6_PKTINFO payload is an in6_pktinfo.
                let pi = unsafe { std::ptr::read_unaligned(data as *const libc::in6_pktinfo) };
                dst = IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
            }
        };
        let Some(n) = recvmsg_with_cmsgs(self.fd.as_raw_fd(), &mut sa, &mut buf, on_cmsg)? else {
            return Ok(None);
        };
        buf.truncate(n);
        if self.v6 {
            // SAFETY: the kernel filled a sockaddr_in6 for an AF_INET6 socket.
            let s6 = unsafe { &*(&sa as *const _ as *const libc::sockaddr_in6) };
            let src = IpAddr::V6(Ipv6Addr::from(s6.sin6_addr.s6_addr));
            Ok(Some(Rx {
                src,
                dst,
                ttl,
                data: buf,
            }))
        } else {
            let Some(h) = crate::wire::Ipv4Header::parse(&buf) else {
                return Ok(Some(Rx {
                    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    ttl: 0,
                    data: buf,
                }));
            };
            Ok(Some(Rx {
                src: IpAddr::V4(h.src),
                dst: IpAddr::V4(h.dst),
                ttl: h.ttl,
                data: buf,
            }))
        }
    }
}

/// # Safety
/// `mh.msg_control` must point to a buffer big enough for one cmsg carrying a T.
unsafe fn put_cmsg<T>(mh: &mut libc::msghdr, level: i32, ty: i32, val: &T) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        mh.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<T>() as u32) as usize;
        let c = libc::CMSG_FIRSTHDR(mh);
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<T>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut T, std::ptr::read(val));
    }
}

fn sockaddr_in(a: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: plain data.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_addr.s_addr = u32::from(a).to_be();
    sa
}

fn sockaddr_in6(a: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: plain data.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as u16;
    sa.sin6_addr.s6_addr = a.octets();
    sa.sin6_scope_id = scope;
    sa
}

/// AF_PACKET socket for gratuitous ARP frames (also usable for capture).
pub struct PacketSocket {
    pub fd: OwnedFd,
}

impl PacketSocket {
    /// An unbound sending socket (protocol 0: receives nothing).
    pub fn sender() -> io::Result<PacketSocket> {
        let fd =
            socket(libc::AF_PACKET, libc::SOCK_RAW, 0).map_err(|e| ctx(e, "AF_PACKET socket"))?;
        Ok(PacketSocket { fd })
    }

    /// A capture socket for all frames on `ifindex`.
    pub fn capture(ifindex: u32) -> io::Result<PacketSocket> {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, proto)?;
        // SAFETY: plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        Ok(PacketSocket { fd })
    }

    /// Send a complete Ethernet frame out of `ifindex`.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        // SAFETY: plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll are valid for the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ask the kernel to stamp received frames (SO_TIMESTAMPNS, CLOCK_REALTIME).
    pub fn enable_timestamps(&self) -> io::Result<()> {
        let one: libc::c_int = 1;
        setopt(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &one,
        )
    }

    /// Receive one frame with its kernel timestamp (see [`PacketSocket::enable_timestamps`]):
    /// (length, outgoing?, realtime stamp).
    pub fn recv_stamped(&self, buf: &mut [u8]) -> io::Result<Option<(usize, bool, Duration)>> {
        // SAFETY: plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut ts = Duration::ZERO;
        let on_cmsg = |level, ty, data: *const libc::c_uchar| {
            if level == libc::SOL_SOCKET && ty == libc::SCM_TIMESTAMPNS {
                // SAFETY: an SCM_TIMESTAMPNS payload is a timespec.
                let t = unsafe { std::ptr::read_unaligned(data as *const libc::timespec) };
                ts = Duration::new(t.tv_sec as u64, t.tv_nsec as u32);
            }
        };
        let Some(n) = recvmsg_with_cmsgs(self.fd.as_raw_fd(), &mut sll, buf, on_cmsg)? else {
            return Ok(None);
        };
        Ok(Some((n, sll.sll_pkttype == libc::PACKET_OUTGOING, ts)))
    }

    /// Receive one frame (non-blocking): (frame, outgoing?).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, bool)>> {
        // SAFETY: plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: buf and sll are valid.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                &mut sll as *mut _ as *mut libc::sockaddr,
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some((n as usize, sll.sll_pkttype == libc::PACKET_OUTGOING)))
    }
}

/// Raw ICMPv6 socket for unsolicited neighbour advertisements.
pub struct NdSocket {
    fd: OwnedFd,
}

impl NdSocket {
    pub fn open() -> io::Result<NdSocket> {
        let fd = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)
            .map_err(|e| ctx(e, "raw ICMPv6 socket"))?;
        let hops: libc::c_int = 255;
        setopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_HOPS,
            &hops,
        )?;
        Ok(NdSocket { fd })
    }

    /// Send an ICMPv6 body to ff02::1 on `ifindex` (the kernel fills in the checksum).
    pub fn send_all_nodes(&self, ifindex: u32, body: &[u8]) -> io::Result<()> {
        let idx = ifindex as libc::c_int;
        setopt(
            self.fd.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            &idx,
        )?;
        let sa = sockaddr_in6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), ifindex);
        // SAFETY: body and sa are valid for the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                body.as_ptr().cast(),
                body.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Block SIGTERM/SIGINT/SIGHUP/SIGCHLD and return a signalfd for them.
pub fn signalfd() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set, then signalfd on it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        // Health check children ending wake the poll loop (std resets the mask in children).
        libc::sigaddset(&mut set, libc::SIGCHLD);
        cvt(libc::pthread_sigmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
        let fd = cvt(libc::signalfd(
            -1,
            &set,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// In a child between fork and exec: clear the mask `signalfd` set, which children inherit
/// (std does not reset it), or SIGTERM on a timeout or PDEATHSIG would not reach them.
pub fn unblock_signals() {
    // SAFETY: async-signal-safe calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Read one signal number from a signalfd.
pub fn read_signal(fd: RawFd) -> Option<u32> {
    // SAFETY: plain data, read into it.
    let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    // SAFETY: si is valid for its size.
    let n = unsafe {
        libc::read(
            fd,
            &mut si as *mut _ as *mut libc::c_void,
            std::mem::size_of::<libc::signalfd_siginfo>(),
        )
    };
    (n == std::mem::size_of::<libc::signalfd_siginfo>() as isize).then_some(si.ssi_signo)
}

/// poll(2) over `fds` for readability; returns the readable ones' positions.
/// The largest legal VRRP packet as a raw socket hands it over: 255 IPv6 addresses
/// (8 + 16 x 255 bytes, no IP header on IPv6), or an IPv4 header with options (60) and 255
/// IPv4 addresses with v2 auth (16 + 4 x 255).
pub const MAX_PACKET: usize = 8 + 16 * 255;
const _: () = assert!(MAX_PACKET >= 60 + 16 + 4 * 255);

pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<usize>> {
    let fds: Vec<(RawFd, i16)> = fds.iter().map(|&fd| (fd, libc::POLLIN)).collect();
    poll_events(&fds, timeout_ms)
}

/// poll(2) on (fd, events) pairs: the indexes of those with any event (errors and hang-ups
/// included, so the caller reads and closes them).
pub fn poll_events(fds: &[(RawFd, i16)], timeout_ms: i32) -> io::Result<Vec<usize>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: p is a valid array of pollfd.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as u64, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![]);
        }
        return Err(e);
    }
    Ok(p.iter()
        .enumerate()
        .filter(|(_, x)| x.revents != 0)
        .map(|(i, _)| i)
        .collect())
}

/// One `recvmsg` with room for the sender's address (`name`: the sockaddr type the socket's
/// family fills) and for control messages; `Ok(None)` when the queue is empty. Each control
/// message the kernel wrote is handed to `on_cmsg(level, type, payload)`; the payload may be
/// unaligned.
fn recvmsg_with_cmsgs<A>(
    fd: RawFd,
    name: &mut A,
    buf: &mut [u8],
    mut on_cmsg: impl FnMut(libc::c_int, libc::c_int, *const libc::c_uchar),
) -> io::Result<Option<usize>> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_name = (name as *mut A).cast();
    mh.msg_namelen = std::mem::size_of::<A>() as u32;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: all pointers in mh are live for the call.
    let n = unsafe { libc::recvmsg(fd, &mut mh, 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(e);
    }
    // SAFETY: iterating the cmsgs the kernel wrote into cbuf, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            on_cmsg((*c).cmsg_level, (*c).cmsg_type, libc::CMSG_DATA(c));
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    Ok(Some(n as usize))
}

/// glob(3) with csh braces (what keepalived's `include` uses): the matching paths, sorted;
/// none on no match or error.
pub fn glob(pattern: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let Ok(c) = std::ffi::CString::new(pattern.as_os_str().as_bytes()) else {
        return vec![];
    };
    // SAFETY: glob fills a zeroed glob_t, read below and freed with globfree.
    unsafe {
        let mut g: libc::glob_t = std::mem::zeroed();
        let mut out = Vec::new();
        if libc::glob(c.as_ptr(), libc::GLOB_BRACE, None, &mut g) == 0 {
            for i in 0..g.gl_pathc {
                let p = std::ffi::CStr::from_ptr(*g.gl_pathv.add(i));
                out.push(std::ffi::OsString::from_vec(p.to_bytes().to_vec()).into());
            }
        }
        libc::globfree(&mut g);
        out
    }
}
