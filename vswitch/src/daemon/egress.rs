//! The data path, egress side: per-endpoint queues of encoded frames (recycled buffers),
//! written at the end of each batch with one `sendmmsg`/`writev`, and on EPOLLOUT for what
//! the receiver did not take. A queue past half its bound pauses the ingress that feeds it
//! (back-pressure); below a quarter the ingress is read again.

use super::{Daemon, POOL_MAX};
use crate::core::DropReason;
use mio::unix::SourceFd;
use mio::Interest;
use std::collections::VecDeque;
use std::io;
use std::time::Instant;

impl Daemon {
    /// Queue a frame for an endpoint; it is written by [`Self::flush_dirty`] at the end of
    /// the current batch, so frames that arrived together leave together (one sendmmsg).
    /// Returns a drop reason when the frame is lost.
    #[inline]
    pub(super) fn send_ep(&mut self, ep: usize, frame: &[u8]) -> Option<DropReason> {
        let limit = self.cfg.egress_queue_bytes;
        let e = self.eps.get_mut(ep)?.as_mut()?;
        let len = e.sink.encoded_len(frame.len());
        if e.queued_bytes + len > limit {
            return Some(DropReason::QueueFull);
        }
        e.queued_bytes += len;
        // Recycled buffers: no allocation per frame in steady state.
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        e.sink.encode_into(frame, &mut v);
        e.queue.push_back(v);
        if !e.dirty {
            e.dirty = true;
            self.dirty.push(ep);
        }
        if e.queued_bytes > limit / 2 {
            if let Some(t) = self.cur_in {
                if !e.paused_ingress.contains(&t) {
                    e.paused_ingress.push(t);
                }
                self.paused.entry(t).or_insert_with(Instant::now);
            }
        }
        None
    }

    /// Write every endpoint that got frames in this batch.
    pub(super) fn flush_dirty(&mut self) {
        while let Some(ep) = self.dirty.pop() {
            if let Some(Some(e)) = self.eps.get_mut(ep) {
                e.dirty = false;
            }
            self.flush_ep(ep);
        }
    }

    /// Write as much of the endpoint's queue as the receiver takes; arm EPOLLOUT for the rest.
    pub(super) fn flush_ep(&mut self, ep: usize) {
        let Some(e) = self.eps.get_mut(ep).and_then(|e| e.as_mut()) else {
            return;
        };
        let mut errors = 0u64;
        let mut blocked = false;
        while let Some(head) = e.queue.front() {
            let res = if e.queue.len() > 1 {
                e.sink.write_batch(&e.queue)
            } else {
                e.sink.write(head)
            };
            match res {
                Ok(n) => take_written(&mut e.queue, &mut e.queued_bytes, &mut self.pool, n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // The peer is gone (its ctl or read side closes it): drop the head frame.
                    errors += 1;
                    if errors <= 1 {
                        self.log.log("send", &format!("port {}: {err}", e.port));
                    }
                    let len = e.queue.front().map_or(0, Vec::len);
                    take_written(&mut e.queue, &mut e.queued_bytes, &mut self.pool, len);
                }
            }
        }
        if !e.paused_ingress.is_empty() && e.queued_bytes <= self.cfg.egress_queue_bytes / 4 {
            for t in e.paused_ingress.drain(..) {
                self.paused.remove(&t);
                self.again.push(t);
            }
        }
        if blocked != e.writable_armed {
            e.writable_armed = blocked;
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ =
                self.poll
                    .registry()
                    .reregister(&mut SourceFd(&e.sink.fd()), e.data_tok, interest);
        }
        let port = e.port;
        for _ in 0..errors {
            self.sw.count_drop(port, DropReason::SendError);
        }
    }
}

/// Drop the first `n` written bytes from an egress queue: whole frames go back to the buffer
/// pool, a frame a stream took only part of keeps its rest at the head.
fn take_written(
    queue: &mut VecDeque<Vec<u8>>,
    queued: &mut usize,
    pool: &mut Vec<Vec<u8>>,
    mut n: usize,
) {
    while let Some(f) = queue.front_mut() {
        if f.len() > n {
            f.drain(..n);
            *queued -= n;
            return;
        }
        n -= f.len();
        *queued -= f.len();
        let f = queue.pop_front().expect("non-empty");
        if pool.len() < POOL_MAX && f.capacity() <= 16 * 1024 {
            pool.push(f);
        }
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(lens: &[usize]) -> (VecDeque<Vec<u8>>, usize) {
        let q: VecDeque<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| vec![i as u8; l])
            .collect();
        (q, lens.iter().sum())
    }

    #[test]
    fn whole_frames_go_back_to_the_pool() {
        let (mut q, mut queued) = queue(&[10, 20, 30]);
        let mut pool = Vec::new();
        take_written(&mut q, &mut queued, &mut pool, 30);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0], vec![2u8; 30]);
        assert_eq!(queued, 30);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn a_partly_written_frame_keeps_its_rest() {
        let (mut q, mut queued) = queue(&[10, 20]);
        let mut pool = Vec::new();
        take_written(&mut q, &mut queued, &mut pool, 15);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0], vec![1u8; 15]);
        assert_eq!(queued, 15);
        assert_eq!(pool.len(), 1);
        take_written(&mut q, &mut queued, &mut pool, 15);
        assert!(q.is_empty());
        assert_eq!(queued, 0);
    }

    #[test]
    fn nothing_written_changes_nothing_and_the_pool_is_bounded() {
        let (mut q, mut queued) = queue(&[10]);
        let mut pool = vec![Vec::new(); POOL_MAX];
        take_written(&mut q, &mut queued, &mut pool, 0);
        assert_eq!((q.len(), queued), (1, 10));
        take_written(&mut q, &mut queued, &mut pool, 10);
        assert_eq!((q.len(), queued, pool.len()), (0, 0, POOL_MAX));
        // Big buffers are not kept either.
        let (mut q, mut queued) = queue(&[32 * 1024]);
        let mut pool = Vec::new();
        take_written(&mut q, &mut queued, &mut pool, 32 * 1024);
        assert!(pool.is_empty());
    }
}
