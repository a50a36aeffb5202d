//! The data path, ingress side: an endpoint is readable, its frames are read (in batches),
//! go through the port's ingress impairment, are switched by the core, tagged or untagged
//! per egress port, captured, go through the egress impairment, and are queued on the
//! egress endpoints (see `egress`, which writes the queues).

use super::transport::{Endpoint, Recv, Sink};
use super::{Daemon, MAX_FRAME_LEN, READ_BUDGET};
use crate::core::{DropReason, Learned, PortId, TagAction};
use crate::wire;
use mio::Token;
use std::io;

impl Daemon {
    /// An endpoint's data source is readable (unless back-pressure paused it).
    pub(super) fn read_data(&mut self, tok: Token, ep: usize) {
        if self.paused.contains_key(&tok) {
            return;
        }
        match self.eps.get(ep) {
            Some(Some(Endpoint {
                sink: Sink::Dgram(_),
                ..
            })) => self.read_dgram_batch(tok, ep),
            Some(Some(Endpoint {
                sink: Sink::Stream { .. },
                ..
            })) => self.read_stream(tok, ep),
            _ => self.read_frames(tok, ep),
        }
    }

    /// One frame per read (taps, VXLAN, QEMU dgram), up to [`READ_BUDGET`] per turn.
    fn read_frames(&mut self, tok: Token, ep: usize) {
        self.cur_in = Some(tok);
        let mut buf = std::mem::take(&mut self.buf);
        let mut n_read = 0;
        let mut close = false;
        loop {
            if n_read >= READ_BUDGET {
                self.again.push(tok);
                break;
            }
            let Some(e) = self.eps.get_mut(ep).and_then(|e| e.as_mut()) else {
                break;
            };
            let port = e.port;
            match e.sink.recv(&mut buf) {
                Ok(Recv::Foreign) => {
                    self.log
                        .log("vxlan", "datagram with bad header or foreign VNI ignored");
                    n_read += 1;
                }
                Ok(Recv::Frame(0)) => {
                    // Legacy libvdeplug sends an empty datagram on close; taps never do.
                    self.stats.zero_length_datagrams += 1;
                    n_read += 1;
                }
                Ok(Recv::Frame(n)) => {
                    n_read += 1;
                    if n > MAX_FRAME_LEN {
                        self.sw.count_drop(port, DropReason::Oversize);
                        self.log.log(
                            "frame",
                            &format!("oversized frame ({n} bytes) on port {port}"),
                        );
                        continue;
                    }
                    self.ingress(port, &buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.log.log("recv", &format!("port {port}: {e}"));
                    // A tap that went away (EIO/EBADFD) cannot recover: close it.
                    close = !matches!(e.raw_os_error(), Some(libc::ECONNREFUSED));
                    break;
                }
            }
        }
        self.buf = buf;
        self.cur_in = None;
        if close {
            self.close_endpoint(ep);
        }
    }

    fn capture(&mut self, port: PortId, frame: &[u8]) {
        if let Some(c) = self.captures.get_mut(&port) {
            #[allow(clippy::disallowed_methods)] // pcap records carry wall-clock timestamps
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
            if crate::pcap::write_record(&mut c.w, ts, frame).is_err() {
                self.log.log(
                    "capture",
                    &format!("write to {} failed; capture stopped", c.path),
                );
                self.captures.remove(&port);
            }
        }
    }

    /// A frame arrived from a port: ingress impairment, then switching.
    #[inline]
    pub(super) fn ingress(&mut self, port: PortId, frame: &[u8]) {
        if let Some(q) = self.impair_in.get_mut(&port) {
            let now = self.start.elapsed().as_micros() as u64;
            if let Err(r) = q.push(frame, now) {
                self.sw.count_drop(port, r);
            }
            return;
        }
        self.switch_frame(port, frame);
    }

    /// Switch one frame from `port` to the ports the core chooses.
    pub(super) fn switch_frame(&mut self, port: PortId, frame: &[u8]) {
        if !self.captures.is_empty() {
            self.capture(port, frame);
        }
        let now = self.batch_now_ms;
        let mut egress = std::mem::take(&mut self.egress);
        match self.sw.forward(port, frame, now, &mut egress) {
            Ok(learned) => {
                if let Some(l) = learned {
                    self.learned(port, frame, l);
                }
                let mut tagged: Option<Vec<u8>> = None;
                for e in egress.iter() {
                    let bytes = retag(frame, e.action, &mut tagged);
                    self.deliver(e.port, bytes);
                }
            }
            Err(r) => {
                if matches!(
                    r,
                    DropReason::Runt | DropReason::BadTag | DropReason::Oversize
                ) {
                    self.log.log(
                        "frame",
                        &format!(
                            "dropped {} frame ({} bytes) from port {port}",
                            r.name(),
                            frame.len()
                        ),
                    );
                }
            }
        }
        self.egress = egress;
    }

    /// What the MAC table learned from a frame: a debug event for a new address, a log line
    /// for one that moved.
    fn learned(&mut self, port: PortId, frame: &[u8], l: Learned) {
        if self.debug_any && l == Learned::New {
            let src = wire::EthernetFrame::new_unchecked(frame).src();
            self.debug_event("hash/+", &format!("{} Port {port:02}", wire::fmt_mac(&src)));
        }
        if let Learned::Moved { from } = l {
            let src = wire::EthernetFrame::new_unchecked(frame).src();
            self.log.log(
                "mac",
                &format!(
                    "MAC {} moved from port {from} to port {port}",
                    wire::fmt_mac(&src)
                ),
            );
        }
    }

    /// A switched frame for `port`: egress impairment, then the port's endpoints.
    #[inline]
    pub(super) fn deliver(&mut self, port: PortId, frame: &[u8]) {
        if let Some(q) = self.impair_out.get_mut(&port) {
            let now = self.start.elapsed().as_micros() as u64;
            if let Err(r) = q.push(frame, now) {
                self.sw.count_drop(port, r);
            }
            return;
        }
        self.send_to_port(port, frame);
    }

    /// Count, capture and queue a frame on every endpoint of `port`.
    pub(super) fn send_to_port(&mut self, port: PortId, frame: &[u8]) {
        self.sw.count_out(port, frame.len());
        if !self.captures.is_empty() {
            self.capture(port, frame);
        }
        let n = self.port_eps.get(port as usize).map_or(0, |v| v.len());
        for k in 0..n {
            let ep = self.port_eps[port as usize][k];
            if let Some(r) = self.send_ep(ep, frame) {
                self.sw.count_drop(port, r);
            }
        }
    }
}

/// The bytes to send for an egress action: the frame itself, or its tagged/untagged copy,
/// built once per frame in `tagged` (all egress ports of one frame need the same copy).
#[inline]
fn retag<'a>(frame: &'a [u8], action: TagAction, tagged: &'a mut Option<Vec<u8>>) -> &'a [u8] {
    match action {
        TagAction::Unchanged => frame,
        TagAction::Strip => tagged.get_or_insert_with(|| {
            let mut v = Vec::new();
            wire::strip_tag(frame, &mut v);
            v
        }),
        TagAction::Insert(vid) => tagged.get_or_insert_with(|| {
            let mut v = Vec::new();
            wire::insert_tag(frame, vid, &mut v);
            v
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retag_builds_the_copy_once() {
        // dst, src, type IPv4, payload.
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00, 1, 2, 3, 4]);
        let mut tagged = None;
        assert_eq!(retag(&frame, TagAction::Unchanged, &mut tagged), &frame[..]);
        assert!(tagged.is_none());
        let t = retag(&frame, TagAction::Insert(10), &mut tagged).to_vec();
        assert_eq!(t.len(), frame.len() + 4);
        assert_eq!(&t[12..16], &[0x81, 0x00, 0x00, 10]);
        assert_eq!(&t[16..], &frame[12..]);
        // A second egress port with the same action reuses the copy.
        assert_eq!(retag(&frame, TagAction::Insert(10), &mut tagged), &t[..]);
        let mut untagged = None;
        let s = retag(&t, TagAction::Strip, &mut untagged).to_vec();
        assert_eq!(s, frame);
    }
}
