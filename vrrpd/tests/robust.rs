//! Fuzz-style robustness under `cargo test`: the bodies of the cargo-fuzz targets (fuzz/, the
//! same functions: `config::fuzz_one`, `validate::fuzz_one`, `control::fuzz_one`) on thousands
//! of mutations of real inputs: the seed configuration and the lab's configurations, golden
//! packets, control commands. They must never panic. Deterministic (fixed-seed xorshift), so a
//! failure reproduces; RAMUX_VRRP_FUZZ_ROUNDS for more rounds.

use vrrpd::wire::{pass_bytes, ChecksumForm, Repr, Version};

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

/// Pieces a mutation may insert: keepalived syntax and VRRP-looking bytes.
const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\n",
    b"\"",
    b"#",
    b"!",
    b" ",
    b"vrrp_instance x {\n",
    b"virtual_ipaddress {\n",
    b"255",
    b"0",
    b"-1",
    b"fe80::1",
    b"10.0.0.1/33",
    b"dev",
    b"\xff\xfe",
    b"\x00",
    b"status",
    b"\x21\x64\x96\xff",
    b"\x31\x64",
];

/// One mutation: replace, delete, insert a byte or a fragment, duplicate a slice, truncate.
fn mutate(r: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + r.below(4) {
        let at = r.below(v.len() + 1);
        match r.below(6) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = r.next() as u8;
            }
            1 if at < v.len() => {
                let n = r.below(16).min(v.len() - at);
                v.drain(at..at + n);
            }
            2 => v.insert(at, r.next() as u8),
            3 => {
                let f = FRAGMENTS[r.below(FRAGMENTS.len())];
                v.splice(at..at, f.iter().copied());
            }
            4 if at < v.len() => {
                let n = r.below(64).min(v.len() - at);
                let dup: Vec<u8> = v[at..at + n].to_vec();
                v.splice(at..at, dup);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn rounds(default: usize) -> usize {
    std::env::var("RAMUX_VRRP_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn run(seeds: &[Vec<u8>], n: usize, seed: u64, body: fn(&[u8])) {
    let mut r = Rng(seed);
    for s in seeds {
        body(s);
    }
    for _ in 0..n {
        let s = &seeds[r.below(seeds.len())];
        body(&mutate(&mut r, s));
    }
}

const LAB_CONF: &str = "global_defs {\n    router_id lab\n    vrrp_version 3\n}\nvrrp_sync_group g {\n    group {\n        interne\n        v6\n    }\n    track_interface {\n        eth1\n    }\n}\nvrrp_instance interne {\n    state BACKUP\n    interface vlan10\n    virtual_router_id 100\n    priority 150\n    advert_int 0.1\n    unicast_src_ip 10.10.0.2\n    unicast_peer {\n        10.10.0.3\n    }\n    virtual_ipaddress {\n        10.10.0.1/24 brd 10.10.0.255 dev vlan10 label vlan10:v\n        10.11.0.1/24 dev vlan20 scope link no_track\n    }\n    virtual_ipaddress_excluded {\n        10.12.0.1/24\n    }\n    track_interface {\n        eth0 weight -20\n    }\n    preempt_delay 2.5\n    notify \"/bin/echo 'a b'\"\n}\nvrrp_instance v6 {\n    interface vlan10\n    virtual_router_id 60\n    virtual_ipaddress {\n        fe80::60/64\n        2001:db8:10::1/64\n    }\n    nopreempt\n    garp_master_refresh 1\n}\n";

#[test]
fn config_parser_survives_mutations() {
    let seeds = vec![
        include_bytes!("data/seed-r1.conf").to_vec(),
        LAB_CONF.as_bytes().to_vec(),
        b"a {\n b {\n c {\n".to_vec(),
    ];
    run(&seeds, rounds(3000), 0x5eed_c0f1, vrrpd::config::fuzz_one);
}

#[test]
fn packet_decoder_survives_mutations() {
    let v2 = Repr {
        version: Version::V2,
        vrid: 100,
        priority: 150,
        adver_int: 1,
        addrs: vec!["10.10.0.1".parse().unwrap(), "10.20.0.1".parse().unwrap()],
        auth_type: 1,
        auth_data: pass_bytes("s3cr3tpw"),
        rsvd: 0,
    };
    let mut v3 = v2.clone();
    v3.version = Version::V3;
    v3.adver_int = 100;
    v3.auth_type = 0;
    let mut v6 = v3.clone();
    v6.addrs = vec!["fe80::60".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    let with_family = |f: u8, b: Vec<u8>| [vec![f], b].concat();
    let seeds = vec![
        with_family(0, v2.to_bytes(ChecksumForm::MessageOnly)),
        with_family(0, v3.to_bytes(ChecksumForm::MessageOnly)),
        with_family(1, v6.to_bytes(ChecksumForm::MessageOnly)),
        with_family(
            0,
            vec![
                0x45, 0xc0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 10, 10, 0, 3, 224, 0, 0, 18,
            ],
        ),
    ];
    run(
        &seeds,
        rounds(20000),
        0x5eed_9ac7,
        vrrpd::validate::fuzz_one,
    );
}

#[test]
fn control_parser_survives_mutations() {
    let seeds = vec![
        b"status\n".to_vec(),
        b"status".to_vec(),
        b"\n".to_vec(),
        vec![b's'; 300],
        b"reload\nstatus\n".to_vec(),
    ];
    run(&seeds, rounds(20000), 0x5eed_c7a1, vrrpd::control::fuzz_one);
}
