//! Fuzz-style robustness under `cargo test`: the bodies of the cargo-fuzz targets (fuzz/, the
//! same functions) on thousands of mutations of real inputs (bytes replaced, deleted,
//! inserted, runs duplicated, truncations): the ctl handshake's reassembly, stream
//! reassembly, management sessions and the pending-handshake bound. They must never panic.
//! Deterministic: a fixed-seed xorshift, so a failure reproduces. VSWITCH_FUZZ_ROUNDS for more.

use vswitch::daemon::fuzz::{fuzz_handshake, fuzz_pending, fuzz_session, fuzz_stream};
use vswitch::wire::{stream_encode, PortRequest, RequestRepr};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four edits of `seed`.
fn mutate(r: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + r.below(4) {
        let i = r.below(v.len() + 1);
        match r.below(5) {
            0 if i < v.len() => v[i] = r.next() as u8,
            1 if i < v.len() => {
                v.remove(i);
            }
            2 => v.insert(i, r.next() as u8),
            3 => {
                let end = (i + 1 + r.below(32)).min(v.len());
                let run = v[i.min(end)..end].to_vec();
                v.splice(i.min(end)..i.min(end), run);
            }
            _ => v.truncate(i),
        }
    }
    v
}

fn rounds() -> usize {
    std::env::var("VSWITCH_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// Run `body` on the seeds and `rounds()` mutations of them.
fn run(seeds: &[Vec<u8>], body: fn(&[u8])) {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    for s in seeds {
        body(s);
    }
    for i in 0..rounds() {
        body(&mutate(&mut r, &seeds[i % seeds.len()]));
    }
}

/// A chunking header (see `chunks`) then `payload`.
fn chunked(header: &[u8], payload: &[u8]) -> Vec<u8> {
    [header, payload].concat()
}

#[test]
fn handshakes_never_panic() {
    let req = RequestRepr {
        port: PortRequest::Port(3),
        path: b"/tmp/vde.1234-00001".to_vec(),
        description: b"qemu user=root pid=1234".to_vec(),
    }
    .emit();
    let any = RequestRepr {
        port: PortRequest::Any,
        path: b"/run/ramux/switch/.01234-00000".to_vec(),
        description: vec![],
    }
    .emit();
    let seeds = vec![
        chunked(&[3, 7, 1, 64], &req),
        chunked(&[1, 200], &any),
        req.clone(),
    ];
    run(&seeds, fuzz_handshake);
}

#[test]
fn stream_reassembly_never_panics() {
    let mut s = Vec::new();
    for len in [60, 1514, 14, 9000] {
        stream_encode(&vec![0xab; len], &mut s);
    }
    let seeds = vec![chunked(&[2, 5, 63, 0], &s), chunked(&[1, 3], &s[..200])];
    run(&seeds, fuzz_stream);
}

#[test]
fn management_sessions_never_panic() {
    let script = "help\nport/create 2\nport/setvlan 2 10\nvlan/create 10\nport/print\n\
        hash/print\nhash/showinfo\nport/setuser 2 nobody\ndebug/add port\nload /nope\n\
        port/capture 1 off\nvlan/print 10\nshowinfo\nlogout\n";
    let seeds = vec![chunked(&[4, 9, 30, 2, 64], script.as_bytes())];
    run(&seeds, fuzz_session);
}

#[test]
fn the_pending_bound_holds_under_any_schedule() {
    let mut burst = vec![0u8; 300];
    burst.extend([0x90, 0xff, 0x85, 0x10, 0xc0, 0x20]);
    let seeds = vec![burst, (0..=255).collect()];
    run(&seeds, fuzz_pending);
}

/// Regression: the input fuzz/session found (`hash/setminper` with a huge value overflowed
/// its seconds-to-milliseconds product); kept as a seed of that target too.
#[test]
fn the_session_fuzz_crash_input_does_not_panic() {
    fuzz_session(include_bytes!(
        "../fuzz/seeds/session/regress-hash-timer-overflow"
    ));
}
