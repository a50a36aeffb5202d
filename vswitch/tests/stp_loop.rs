//! Spanning tree (`-F`, and `--rstp`) between vswitch daemons cabled into loops with
//! `vswitch plug` pairs (the vde_plug cable: each plug's stdout is the other's stdin).
//! Timers are the shortest 802.1D allows: hello 1 s, max age 6 s, forward delay 4 s.
#[allow(unused_imports)]
mod common;

use common::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::stp::bpdu::STP_GROUP;

/// A cable between port `pa` of `a` and port `pb` of `b`; cut (both plugs killed) on drop.
struct Cable(#[allow(dead_code)] Proc, #[allow(dead_code)] Proc);

/// A pipe's (read, write) ends.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success; each is then owned
    // exactly once.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: see above.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn cable(a: &Sw, pa: u32, b: &Sw, pb: u32) -> Cable {
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    let plug = |sw: &Sw, p: u32, stdin: OwnedFd, stdout: OwnedFd| {
        Proc(
            Command::new(bin())
                .arg("plug")
                .arg(format!("{}:{p}", sw.sock.display()))
                .stdin(stdin)
                .stdout(stdout)
                .spawn()
                .unwrap(),
        )
    };
    Cable(plug(a, pa, r1, w2), plug(b, pb, r2, w1))
}

/// A switch with spanning tree, fast timers and bridge priority `prio`.
fn stp_switch(prio: u16) -> Sw {
    tree_switch("-F", prio)
}

/// The same running RSTP.
fn rstp_switch(prio: u16) -> Sw {
    tree_switch("--rstp", prio)
}

fn tree_switch(flag: &str, prio: u16) -> Sw {
    let sw = Sw::start(&[flag]);
    sw.cmds(&[
        "stp/setmaxage 6",
        "stp/setfwddelay 4",
        "stp/sethello 1",
        &format!("stp/setprio {prio}"),
    ]);
    sw
}

fn json(sw: &Sw, cmd: &str) -> serde_json::Value {
    let r = sw.mgmt().cmd(&format!("json {cmd}")).unwrap();
    assert_eq!(r.code, 1000, "{cmd}: {r:?}");
    serde_json::from_str(&r.data[0]).unwrap()
}

/// (port, state) of every port with a link.
fn states(sw: &Sw) -> Vec<(u64, String)> {
    json(sw, "stp/print")["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn state_of(sw: &Sw, port: u64) -> String {
    states(sw)
        .into_iter()
        .find(|(p, _)| *p == port)
        .map_or("disabled".into(), |(_, s)| s)
}

/// The next data frame (BPDUs skipped) within `ms`.
fn recv_data(p: &Port, ms: u64) -> Option<Vec<u8>> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(ms) {
        let left = ms.saturating_sub(t.elapsed().as_millis() as u64).max(1);
        match p.recv_within(left) {
            Some(f) if f[..6] == STP_GROUP => continue,
            other => return other,
        }
    }
    None
}

/// Copies of `f` arriving at `p` within `ms`.
fn copies(p: &Port, f: &[u8], ms: u64) -> usize {
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_millis(ms) {
        if let Some(g) = recv_data(p, 100) {
            n += usize::from(g == f);
        }
    }
    n
}

/// Waits until exactly the given ports of each switch have a link, and every one is
/// forwarding or blocking (RSTP: discarding): the tree is stable.
fn converged(sws: &[(&Sw, &[u64])], timeout: Duration) {
    wait_for("spanning tree convergence", timeout, || {
        sws.iter().all(|(sw, ports)| {
            let st = states(sw);
            st.iter().map(|(p, _)| *p).eq(ports.iter().copied())
                && st
                    .iter()
                    .all(|(_, s)| ["forwarding", "blocking", "discarding"].contains(&s.as_str()))
        })
    });
}

/// A broadcast from `x` reaches `y` once, and a unicast comes back.
fn connected(x: &Port, y: &Port, tag: u8) {
    let f = frame([0xff; 6], mac(1), None, 46 + tag as usize);
    x.send(&f);
    assert_eq!(copies(y, &f, 1500), 1, "broadcast {tag} crossed once");
    let g = frame(mac(1), mac(2), None, 46);
    y.send(&g);
    assert_eq!(recv_data(x, 2000).as_deref(), Some(&g[..]), "reply {tag}");
}

/// Sends a numbered broadcast from `x` every 100 ms until one reaches `y`; the time taken.
fn time_to_reconnect(x: &Port, y: &Port, limit: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let f = frame([0xff; 6], mac(1), None, 100);
        x.send(&f);
        if let Some(g) = recv_data(y, 100) {
            if g == f {
                return t.elapsed();
            }
        }
        assert!(t.elapsed() < limit, "no connectivity within {limit:?}");
    }
}

#[test]
fn two_switches_with_two_cables_block_one_and_fail_over() {
    let a = stp_switch(0x1000);
    let b = stp_switch(0x8000);
    let c1 = cable(&a, 1, &b, 1);
    let c2 = cable(&a, 2, &b, 2);
    let x = a.port(10);
    let y = b.port(10);
    let t = Instant::now();
    converged(
        &[(&a, &[1, 2, 10]), (&b, &[1, 2, 10])],
        Duration::from_secs(30),
    );
    eprintln!("two switches: converged in {:?} after cabling", t.elapsed());
    // A is root with both cables designated; B forwards on port 1 (lower port id at A)
    // and blocks port 2.
    let info = json(&b, "stp/showinfo");
    assert_eq!(info["root_id"], json(&a, "stp/showinfo")["bridge_id"]);
    assert_eq!(info["root_port"], 1);
    assert_eq!(state_of(&a, 1), "forwarding");
    assert_eq!(state_of(&a, 2), "forwarding");
    assert_eq!(state_of(&b, 1), "forwarding");
    assert_eq!(state_of(&b, 2), "blocking");
    let bp = json(&b, "stp/print 2")["ports"][0].clone();
    assert!(bp["bpdu_in"].as_u64().unwrap() > 3, "{bp}");
    assert_eq!(bp["role"], "blocked");
    x.drain();
    y.drain();
    // A broadcast crosses once and does not come back round the loop; unicast works.
    let f = frame([0xff; 6], mac(1), None, 60);
    x.send(&f);
    assert_eq!(copies(&y, &f, 2000), 1, "broadcast looped");
    assert_eq!(copies(&x, &f, 500), 0, "broadcast came back to its sender");
    connected(&x, &y, 1);
    // Cut the forwarding cable: B's port 2 takes over after listening and learning.
    drop(c1);
    let took = time_to_reconnect(&x, &y, Duration::from_secs(6 + 2 * 4 + 3));
    eprintln!("two switches: connectivity back {took:?} after cutting the forwarding cable");
    assert!(took <= Duration::from_secs(6 + 2 * 4 + 1), "{took:?}");
    assert_eq!(state_of(&b, 2), "forwarding");
    x.drain();
    y.drain();
    connected(&x, &y, 2);
    drop(c2);
}

#[test]
fn three_switch_ring_blocks_one_port_and_survives_a_silent_cut() {
    // A (root) - B - C - A; the blocked port is C's on the B-C segment (B's id is lower).
    let a = stp_switch(0x1000);
    let b = stp_switch(0x2000);
    let c = stp_switch(0x3000);
    let _ab = cable(&a, 1, &b, 1);
    let _bc = cable(&b, 2, &c, 1);
    let _ca = cable(&c, 2, &a, 2);
    let x = b.port(10);
    let y = c.port(10);
    let t = Instant::now();
    converged(
        &[(&a, &[1, 2]), (&b, &[1, 2, 10]), (&c, &[1, 2, 10])],
        Duration::from_secs(30),
    );
    eprintln!(
        "three-switch ring: converged in {:?} after cabling",
        t.elapsed()
    );
    let blocked: Vec<_> = [&a, &b, &c]
        .iter()
        .enumerate()
        .flat_map(|(i, sw)| {
            states(sw)
                .into_iter()
                .filter(|(_, s)| s == "blocking")
                .map(move |(p, _)| (i, p))
        })
        .collect();
    assert_eq!(blocked, vec![(2, 1)], "only C's port 1 blocks");
    assert_eq!(json(&c, "stp/showinfo")["root_port"], 2);
    x.drain();
    y.drain();
    let f = frame([0xff; 6], mac(1), None, 60);
    x.send(&f);
    assert_eq!(copies(&y, &f, 2000), 1, "broadcast looped");
    assert_eq!(copies(&x, &f, 500), 0, "broadcast came back to its sender");
    connected(&x, &y, 1);
    // Silent cut of C-A (both directions lose everything, links stay up): C notices only
    // when A's information ages out (max age), then port 1 listens and learns.
    a.cmds(&["port/impair 2 both loss 100"]);
    let took = time_to_reconnect(&x, &y, Duration::from_secs(6 + 2 * 4 + 4));
    eprintln!(
        "three-switch ring: connectivity back {took:?} after a silent cut of the root port's cable"
    );
    assert!(
        took <= Duration::from_millis((6 + 2 * 4) * 1000 + 1500),
        "{took:?}"
    );
    assert_eq!(json(&c, "stp/showinfo")["root_port"], 1);
    assert_eq!(state_of(&c, 1), "forwarding");
    x.drain();
    y.drain();
    // Unicast right after the change: the topology change aged the stale addresses out.
    connected(&x, &y, 2);
}

#[test]
fn rstp_ring_converges_at_once_and_fails_over_in_well_under_a_second() {
    // A (root) - B - C - A as above, in RSTP: C's port on the B-C segment is alternate.
    let a = rstp_switch(0x1000);
    let b = rstp_switch(0x2000);
    let c = rstp_switch(0x3000);
    let _ab = cable(&a, 1, &b, 1);
    let _bc = cable(&b, 2, &c, 1);
    let ca = cable(&c, 2, &a, 2);
    let x = b.port(10);
    let y = c.port(10);
    let t = Instant::now();
    // The client ports hear no BPDU and turn edge after 3 s; the cables are at once.
    converged(
        &[(&a, &[1, 2]), (&b, &[1, 2, 10]), (&c, &[1, 2, 10])],
        Duration::from_secs(10),
    );
    eprintln!("RSTP ring: converged in {:?} after cabling", t.elapsed());
    wait_for("client ports to turn edge", Duration::from_secs(6), || {
        state_of(&b, 10) == "forwarding" && state_of(&c, 10) == "forwarding"
    });
    eprintln!(
        "RSTP ring: client ports forward {:?} after cabling",
        t.elapsed()
    );
    assert_eq!(json(&c, "stp/showinfo")["mode"], "rstp");
    assert_eq!(json(&c, "stp/showinfo")["root_port"], 2);
    assert_eq!(state_of(&c, 1), "discarding");
    let cp = json(&c, "stp/print 1")["ports"][0].clone();
    assert_eq!(cp["role"], "alternate", "{cp}");
    assert_eq!(cp["rstp"]["protocol"], "rstp", "{cp}");
    for (sw, p) in [(&a, 1), (&a, 2), (&b, 1), (&b, 2), (&c, 2)] {
        assert_eq!(state_of(sw, p), "forwarding", "port {p}");
    }
    let edge = json(&b, "stp/print 10")["ports"][0].clone();
    assert_eq!(edge["rstp"]["oper_edge"], true, "{edge}");
    x.drain();
    y.drain();
    let f = frame([0xff; 6], mac(1), None, 60);
    x.send(&f);
    assert_eq!(copies(&y, &f, 2000), 1, "broadcast looped");
    assert_eq!(copies(&x, &f, 500), 0, "broadcast came back to its sender");
    connected(&x, &y, 1);
    // Cut C's root port cable: the alternate port becomes root port and forwards at once.
    drop(ca);
    let took = time_to_reconnect(&x, &y, Duration::from_secs(5));
    eprintln!("RSTP ring: connectivity back {took:?} after cutting the root port's cable");
    assert!(took <= Duration::from_secs(2), "{took:?}");
    assert_eq!(json(&c, "stp/showinfo")["root_port"], 1);
    assert_eq!(state_of(&c, 1), "forwarding");
    x.drain();
    y.drain();
    connected(&x, &y, 2);
}
