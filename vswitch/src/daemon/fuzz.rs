//! Fuzz bodies for the switch's connection state machines (`cd vswitch/fuzz && cargo +nightly
//! fuzz run handshake` / `stream` / `session` / `pending`), also run on fixed-seed mutations
//! by `tests/robust.rs` so CI exercises them. Each must never panic, and checks the
//! invariant its bound promises.

use super::handshake::{classify, description, pending_victim, Pending, MAX_PENDING};
use super::mgmt::{session_reply, take_lines, MAX_SESSION_INPUT, MGMT_OUT_MAX};
use crate::console::{self, Ctx};
use crate::core::Switch;
use crate::wire::{QemuFrames, RequestRepr, REQUEST_MAX_LEN};

/// Cut `data` into the chunks the kernel might deliver: byte `i` of a small header says how
/// long chunk `i` is (1..=64 bytes), the rest is the payload.
fn chunks(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let n = data
        .first()
        .map_or(0, |b| (*b as usize % 16) + 1)
        .min(data.len());
    let sizes = data[..n].iter().map(|b| (*b as usize % 64) + 1).collect();
    (sizes, &data[n..])
}

/// Feed `payload` in `sizes`-long chunks (cycled) to `step`.
fn feed(sizes: &[usize], payload: &[u8], mut step: impl FnMut(&[u8])) {
    let (mut off, mut k) = (0, 0);
    while off < payload.len() {
        let len = sizes
            .get(k % sizes.len().max(1))
            .copied()
            .unwrap_or(payload.len());
        let end = (off + len).min(payload.len());
        step(&payload[off..end]);
        off = end;
        k += 1;
    }
}

/// The ctl handshake's reassembly: a request read in chunks, capped at its maximum length
/// as `read_request` caps it, judged after each chunk and at EOF. A request judged whole
/// must be the request the whole buffer parses to.
pub fn fuzz_handshake(data: &[u8]) {
    let (sizes, payload) = chunks(data);
    let mut buf = Vec::new();
    let mut verdict = Pending::Wait;
    feed(&sizes, payload, |c| {
        if !matches!(verdict, Pending::Wait) {
            return;
        }
        let room = REQUEST_MAX_LEN - buf.len();
        buf.extend_from_slice(&c[..c.len().min(room)]);
        verdict = classify(&buf, false);
    });
    if matches!(verdict, Pending::Wait) {
        verdict = classify(&buf, true);
    }
    assert!(buf.len() <= REQUEST_MAX_LEN);
    if let Pending::Request(r) = verdict {
        let whole = crate::wire::Request::new_unchecked(&buf[..]);
        assert_eq!(RequestRepr::parse(&whole).ok(), Some(r.clone()));
        let _ = description(&r.description);
    }
}

/// A stream peer's reassembly: frames taken from a buffer refilled chunk by chunk, the
/// unconsumed rest kept, as `read_stream` does. The buffer never holds more than one
/// partial frame plus one chunk, and the frames are those of the whole stream.
pub fn fuzz_stream(data: &[u8]) {
    let (sizes, payload) = chunks(data);
    let mut dec: Vec<u8> = Vec::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut poisoned = false;
    feed(&sizes, payload, |c| {
        if poisoned {
            return;
        }
        dec.extend_from_slice(c);
        let mut fr = QemuFrames::new(&dec);
        got.extend(fr.by_ref().map(<[u8]>::to_vec));
        let (off, p) = (fr.consumed(), fr.poisoned());
        poisoned = p;
        dec.drain(..off);
        assert!(poisoned || dec.len() <= 4 + crate::wire::MAX_FRAME_LEN + 64);
    });
    let mut whole = QemuFrames::new(payload);
    let all: Vec<Vec<u8>> = whole.by_ref().map(<[u8]>::to_vec).collect();
    if !poisoned && !whole.poisoned() {
        assert_eq!(got, all);
    }
}

/// A management session: input arriving in chunks, split into lines with the session's
/// input bound, each line run by the console and its reply framed; the output a session
/// may hold stays bounded the way `mgmt_event` bounds it.
pub fn fuzz_session(data: &[u8]) {
    let (sizes, payload) = chunks(data);
    let mut sw = Switch::new(8, false, 16);
    let no = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    let ctx = Ctx {
        pid: 1,
        mac: [0; 6],
        uptime_s: 0,
        now_ms: 0,
        mgmt: None,
        mgmt_mode: 0o600,
        ctl_dir: String::new(),
        sock_mode: 0o600,
        read_file: &no,
        captures: vec![],
        debug_on: vec![],
        stats: vec![],
    };
    let (mut inbuf, mut out, mut closed) = (Vec::new(), Vec::new(), false);
    feed(&sizes, payload, |c| {
        if closed {
            return;
        }
        inbuf.extend_from_slice(c);
        closed = inbuf.len() > MAX_SESSION_INPUT;
        for l in take_lines(&mut inbuf).into_iter().take(256) {
            let (text, closing) = session_reply(&console::execute(&mut sw, &ctx, &l));
            out.extend_from_slice(text.as_bytes());
            closed |= closing || out.len() > MGMT_OUT_MAX;
            if closed {
                break;
            }
        }
        // The client reads half of what is pending now and then.
        out.drain(..out.len() / 2);
    });
    assert!(out.len() <= 2 * MGMT_OUT_MAX + 64 * 1024);
}

/// The pending-handshake bound: a random sequence of accepts (byte < 0x80), completed
/// requests (< 0xc0: the one at that index) and clock ticks (the rest). Never more than
/// [`MAX_PENDING`] pending, and an eviction always takes the oldest.
pub fn fuzz_pending(data: &[u8]) {
    let mut pending: Vec<(u32, u64)> = Vec::new();
    let (mut now, mut next) = (0u64, 0u32);
    for &b in data.iter().cycle().take(data.len() * 4) {
        match b {
            0..=0x7f => {
                if let Some(v) = pending_victim(&pending) {
                    let oldest = pending.iter().map(|(_, t)| *t).min();
                    let i = pending.iter().position(|(k, _)| *k == v).unwrap();
                    assert_eq!(Some(pending[i].1), oldest);
                    pending.remove(i);
                }
                pending.push((next, now));
                next += 1;
                assert!(pending.len() <= MAX_PENDING);
            }
            0x80..=0xbf if !pending.is_empty() => {
                let i = b as usize % pending.len();
                pending.remove(i);
            }
            _ => now += b as u64,
        }
    }
}
