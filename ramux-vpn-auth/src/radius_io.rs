//! One RADIUS exchange over UDP: the servers in order, `tries` sends of the same packet to
//! each, `timeout` per send. Runs as its own task, so a slow server delays only the client it
//! is about.

use crate::config::Server;
use crate::counters::Counters;
use crate::radius::{self, ReplyError, MAX_PACKET};
use crate::state::Outcome;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Asks the servers about `req`; never fails: every error becomes an [`Outcome`] that refuses.
pub async fn ask(
    servers: &[Server],
    timeout: Duration,
    tries: u32,
    req: &radius::Request,
    counters: &Counters,
) -> Outcome {
    for s in servers {
        match ask_one(s, timeout, tries, req, counters).await {
            Some(o) => return o,
            None => Counters::add(&counters.radius_server_timeouts),
        }
    }
    Counters::add(&counters.radius_no_answer);
    Outcome::NoAnswer
}

/// One server; None when it did not answer (timeout, ICMP unreachable, send error).
async fn ask_one(
    s: &Server,
    timeout: Duration,
    tries: u32,
    req: &radius::Request,
    counters: &Counters,
) -> Option<Outcome> {
    let mut rnd = [0u8; 17];
    if getrandom::getrandom(&mut rnd).is_err() {
        return Some(Outcome::Invalid(
            "no randomness for the authenticator".into(),
        ));
    }
    let (id, auth): (u8, [u8; 16]) = (rnd[0], rnd[1..].try_into().ok()?);
    let pkt = match radius::encode_request(id, &auth, req, &s.secret) {
        Ok(p) => p,
        Err(e) => return Some(Outcome::Invalid(format!("cannot encode request: {e:?}"))),
    };
    let sock = bind(s.address).await?;
    for _ in 0..tries {
        sock.send(&pkt).await.ok()?;
        let deadline = tokio::time::Instant::now() + timeout;
        match wait_reply(&sock, deadline, id, &auth, s, counters).await {
            Wait::Done(o) => return Some(o),
            Wait::Unreachable => return None,
            Wait::Timeout => {}
        }
    }
    None
}

async fn bind(to: SocketAddr) -> Option<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = UdpSocket::bind(any).await.ok()?;
    // connect: the kernel drops datagrams from any other address and port.
    sock.connect(to).await.ok()?;
    Some(sock)
}

enum Wait {
    Done(Outcome),
    Timeout,
    Unreachable,
}

/// Reads datagrams until one is the reply (valid or not) or the deadline passes. Datagrams
/// with another identifier are late answers to an earlier try or noise: counted, skipped.
async fn wait_reply(
    sock: &UdpSocket,
    deadline: tokio::time::Instant,
    id: u8,
    auth: &[u8; 16],
    s: &Server,
    counters: &Counters,
) -> Wait {
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => return Wait::Timeout,
            Ok(Err(_)) => return Wait::Unreachable,
            Ok(Ok(n)) => n,
        };
        match radius::decode_reply(&buf[..n], id, auth, &s.secret, s.require_ma) {
            Ok(r) => {
                if !r.attrs.message_authenticator {
                    Counters::add(&counters.radius_unsigned);
                }
                return Wait::Done(Outcome::Reply(r));
            }
            Err(ReplyError::WrongId) => Counters::add(&counters.radius_ignored),
            Err(e) => {
                Counters::add(&counters.radius_bad_replies);
                return Wait::Done(Outcome::Invalid(format!("{e} from {}", s.address)));
            }
        }
    }
}
