//! The fuzz bodies, shared by the cargo-fuzz targets (fuzz/) and tests/robust.rs, so what CI
//! runs under `cargo test` is exactly what libFuzzer runs. Each must never panic.

use crate::config::{Net, Vlan};
use crate::mgmt::{Assembler, Event};
use crate::radius;
use crate::state::{check_attrs, Action, Daemon, Outcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The VLAN the bodies judge against.
pub fn vlan10() -> Vlan {
    Vlan {
        vlan: 10,
        management: PathBuf::from("/run/ramux/vpn/vlan10.sock"),
        tun: "tun10".into(),
        leg: "eth0.10".into(),
        network: Net {
            addr: std::net::Ipv4Addr::new(172, 16, 10, 0),
            prefix: 24,
        },
        reserved: vec![std::net::Ipv4Addr::new(172, 16, 10, 1)],
        nas_identifier: "vpn1-vlan10".into(),
    }
}

/// Bytes as management lines; every RADIUS query the machine asks is answered by a fixed
/// outcome chosen from the cid, so the whole machine is exercised. Returns the commands sent.
pub fn mgmt_stream(data: &[u8]) -> usize {
    let mut a = Assembler::default();
    let mut d = Daemon::new(vlan10(), Duration::from_secs(5));
    let t = Instant::now();
    let mut sent = 0;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let now = t + Duration::from_millis(i as u64 * 10);
        let mut acts = match a.push(line.trim_end_matches('\r')) {
            Ok(Event::Notice(n)) => d.notice(n, now),
            _ => vec![],
        };
        while let Some(act) = acts.pop() {
            match act {
                Action::Ask { cid, kid, .. } => acts.extend(d.outcome(cid, kid, answer(cid), now)),
                Action::Send(_) => sent += 1,
                _ => {}
            }
        }
        d.tick(now);
    }
    d.lost();
    sent
}

fn answer(cid: u64) -> Outcome {
    let attrs = radius::Attrs {
        framed_ip: Some(std::net::Ipv4Addr::new(172, 16, 10, 100 + (cid % 8) as u8)),
        tunnel_type: Some(radius::TUNNEL_VLAN),
        tunnel_medium: Some(radius::MEDIUM_802),
        group_id: Some(b"10".to_vec()),
        ..radius::Attrs::default()
    };
    match cid % 3 {
        0 => Outcome::NoAnswer,
        _ => Outcome::Reply(radius::Reply {
            code: radius::Code::Accept,
            attrs,
        }),
    }
}

/// The secret and request authenticator the reply body checks against.
pub const SECRET: &[u8] = b"fuzz-secret";
pub const REQ_AUTH: [u8; 16] = [0x5a; 16];

/// A datagram as the reply to request id 7; when it decodes, it is judged for VLAN 10.
pub fn radius_reply(data: &[u8]) -> bool {
    for require in [false, true] {
        if let Ok(r) = radius::decode_reply(data, 7, &REQ_AUTH, SECRET, require) {
            let _ = check_attrs(&vlan10(), &r.attrs);
            return true;
        }
    }
    false
}

/// Re-signs `data` as a valid reply (fixing Length, Response- and Message-Authenticator) so
/// mutations reach the attribute parser instead of stopping at the authenticator check.
pub fn resign(data: &[u8]) -> Vec<u8> {
    let attrs = radius::fuzz_attrs(data);
    let code = if data.first().is_some_and(|b| b & 1 == 1) {
        radius::ACCESS_ACCEPT
    } else {
        radius::ACCESS_REJECT
    };
    radius::encode_reply(code, 7, &REQ_AUTH, &attrs, SECRET, data.len() % 2 == 0)
}
