//! Fuzz-style robustness under `cargo test`: the bodies of the cargo-fuzz targets (fuzz/, the
//! same functions) on thousands of mutations of real management streams and RADIUS replies
//! (bytes replaced, deleted, inserted, lines duplicated, truncations). They must never panic.
//! Deterministic: a fixed-seed xorshift, so a failure reproduces. RAMUX_VPN_FUZZ_ROUNDS for more.

use ramux_vpn_auth::fuzzing::{mgmt_stream, radius_reply, resign, REQ_AUTH, SECRET};
use ramux_vpn_auth::radius;

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

const STREAM: &str = ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info
>HOLD:Waiting for hold release:0
SUCCESS: hold release succeeded
>CLIENT:CONNECT,0,1
>CLIENT:ENV,common_name=alice
>CLIENT:ENV,untrusted_ip=10.99.1.2
>CLIENT:ENV,END
SUCCESS: client-auth command succeeded
>CLIENT:ESTABLISHED,0
>CLIENT:ENV,ifconfig_pool_remote_ip=172.16.10.100
>CLIENT:ENV,END
>CLIENT:REAUTH,0,2
>CLIENT:ENV,common_name=alice
>CLIENT:ENV,END
>CLIENT:ADDRESS,0,172.16.10.100,1
>CLIENT:CONNECT,1,0
>CLIENT:ENV,common_name=bob
>CLIENT:ENV,END
ERROR: client-deny command failed
>CLIENT:DISCONNECT,0
>CLIENT:ENV,ifconfig_pool_remote_ip=172.16.10.100
>CLIENT:ENV,END
>CLIENT:CR_RESPONSE,1,0,aGVsbG8=
>CLIENT:ENV,END
>LOG:1700000000,I,something
";

const FRAGMENTS: &[&str] = &[
    ">CLIENT:",
    "ENV,",
    "END",
    ",",
    "=",
    "\n",
    "\r\n",
    "CONNECT",
    "REAUTH",
    "ESTABLISHED",
    "DISCONNECT",
    "18446744073709551615",
    "-1",
    "common_name=",
    "\u{0}",
    "é",
    ">HOLD:",
];

fn mutate_text(r: &mut Rng, s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..1 + r.below(8) {
        let at = r.below(b.len() + 1);
        match r.below(5) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = r.next() as u8;
            }
            1 if at < b.len() => {
                let n = r.below(40).min(b.len() - at);
                b.drain(at..at + n);
            }
            2 => {
                let f = FRAGMENTS[r.below(FRAGMENTS.len())];
                b.splice(at..at, f.bytes());
            }
            3 => {
                let lines: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
                let l = lines[r.below(lines.len())].to_vec();
                b.extend_from_slice(b"\n");
                b.extend_from_slice(&l);
            }
            _ => b.truncate(at),
        }
    }
    b
}

fn rounds() -> usize {
    std::env::var("RAMUX_VPN_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn management_streams_never_panic() {
    assert!(
        mgmt_stream(STREAM.as_bytes()) >= 2,
        "the seed stream sends commands"
    );
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..rounds() {
        let m = mutate_text(&mut r, STREAM);
        mgmt_stream(&m);
    }
    // Floods: many ENV lines, many clients, one enormous line.
    let mut flood = String::from(">CLIENT:CONNECT,1,0\n");
    flood += &">CLIENT:ENV,x=y\n".repeat(10_000);
    flood += ">CLIENT:ENV,END\n";
    for cid in 0..500 {
        flood +=
            &format!(">CLIENT:CONNECT,{cid},0\n>CLIENT:ENV,common_name=u{cid}\n>CLIENT:ENV,END\n");
    }
    flood += &"A".repeat(1 << 20);
    mgmt_stream(flood.as_bytes());
}

fn seed_replies() -> Vec<Vec<u8>> {
    let ok = [
        (radius::FRAMED_IP_ADDRESS, vec![172, 16, 10, 130]),
        (radius::FRAMED_IP_NETMASK, vec![255, 255, 255, 0]),
        (radius::TUNNEL_TYPE, vec![0, 0, 0, 13]),
        (radius::TUNNEL_MEDIUM_TYPE, vec![0, 0, 0, 6]),
        (radius::TUNNEL_PRIVATE_GROUP_ID, b"10".to_vec()),
        (radius::REPLY_MESSAGE, b"hello".to_vec()),
    ];
    vec![
        radius::encode_reply(radius::ACCESS_ACCEPT, 7, &REQ_AUTH, &ok, SECRET, true),
        radius::encode_reply(radius::ACCESS_ACCEPT, 7, &REQ_AUTH, &ok, SECRET, false),
        radius::encode_reply(radius::ACCESS_REJECT, 7, &REQ_AUTH, &[], SECRET, true),
    ]
}

#[test]
fn radius_replies_never_panic() {
    let seeds = seed_replies();
    assert!(seeds.iter().all(|s| radius_reply(s)), "seeds decode");
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut decoded = 0;
    for round in 0..rounds() * 3 {
        let s = &seeds[round % seeds.len()];
        let mut b = s.clone();
        for _ in 0..1 + r.below(6) {
            if b.is_empty() {
                break;
            }
            let at = r.below(b.len());
            match r.below(4) {
                0 => b[at] = r.next() as u8,
                1 => {
                    b.remove(at);
                }
                2 => b.insert(at, r.next() as u8),
                _ => b.truncate(at.max(1)),
            }
        }
        radius_reply(&b);
        // Re-signed, the mutation gets past the authenticators into the attribute parser.
        if radius_reply(&resign(&b[20.min(b.len())..])) {
            decoded += 1;
        }
    }
    assert!(
        decoded > 100,
        "only {decoded} mutations reached the attribute parser"
    );
}
