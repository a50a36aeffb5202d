//! The console fuzz target's body (`cd vswitch/fuzz && cargo +nightly fuzz run console`).

use super::{execute, Ctx};
use crate::core::Switch;

/// Fuzz body: console lines (text before the first NUL) run against a switch with a few
/// clients, then the rest is cut into frames (1-byte port, 2-byte length, bytes) and
/// switched. Must never panic.
pub fn fuzz_console(data: &[u8]) {
    use crate::core::EndpointInfo;
    use crate::wire::PortRequest;
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let mut sw = Switch::new(8, false, 16);
    for p in 1..=4u32 {
        let ep = EndpointInfo {
            id: p,
            module: "fuzz".into(),
            descr: String::new(),
        };
        let _ = sw.alloc(PortRequest::Port(p), Some(0), &[], ep);
    }
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
    for line in String::from_utf8_lossy(&data[..split]).lines().take(64) {
        let r = execute(&mut sw, &ctx, line);
        let mut out = String::new();
        r.render(&mut out);
    }
    let mut rest = data.get(split + 1..).unwrap_or(&[]);
    let mut out = Vec::new();
    let mut now = 0;
    while rest.len() >= 3 {
        let port = rest[0] as u16 % 10;
        let n = (u16::from_be_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
        let f = &rest[3..3 + n];
        now += 700;
        if sw.forward(port, f, now, &mut out).is_ok() {
            for e in &out {
                assert!(e.port != port, "never back to the ingress port");
                sw.count_out(e.port, f.len());
            }
        }
        rest = &rest[3 + n..];
    }
    sw.table.gc(now + 1_000_000);
}
