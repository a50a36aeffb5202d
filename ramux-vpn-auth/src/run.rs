//! The daemon's I/O: one task per VLAN server (its management socket, reconnected with
//! backoff), one task per RADIUS exchange, one kernel worker per VLAN (changes applied in
//! order), one status writer.
//!
//! tokio on a current-thread runtime: the work is waiting (sockets, timers, child processes),
//! never computing, so one thread serves every VLAN; each RADIUS exchange being its own task
//! is what keeps a slow server from delaying anyone but the client it is about, and tokio's
//! timers, UDP, unix sockets and `process` save writing a poll loop with timer wheels by hand.

use crate::config::Config;
use crate::counters::Counters;
use crate::kernel;
use crate::mgmt::{Assembler, Event, Fault};
use crate::radius;
use crate::radius_io;
use crate::state::{Action, ClientView, Daemon, Outcome};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest management line kept (an ENV value is at most a certificate subject or so).
pub const MAX_LINE: usize = 8192;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What every task shares.
pub struct Shared {
    pub cfg: Config,
    pub counters: Counters,
    views: Mutex<BTreeMap<u16, (bool, Vec<ClientView>)>>,
}

/// Runs until SIGTERM or SIGINT; writes `status` every half second.
pub fn run(cfg: Config, status: PathBuf) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared {
        cfg,
        counters: Counters::default(),
        views: Mutex::new(BTreeMap::new()),
    });
    rt.block_on(async move {
        for i in 0..shared.cfg.vlans.len() {
            tokio::spawn(serve_vlan(shared.clone(), i));
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => write_status(&shared, &status),
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        eprintln!("ramux-vpn-auth: stopping: {}", shared.counters.line());
        let _ = std::fs::remove_file(&status);
        Ok(())
    })
}

fn write_status(shared: &Shared, path: &std::path::Path) {
    let text = status_text(shared);
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// The `--status` text: counters, then each VLAN server and its clients.
fn status_text(shared: &Shared) -> String {
    let mut s = format!(
        "ramux-vpn-auth pid {}\ncounters {}\n",
        std::process::id(),
        shared.counters.line()
    );
    let views = shared.views.lock().unwrap_or_else(|e| e.into_inner());
    for v in &shared.cfg.vlans {
        let (up, clients) = views.get(&v.vlan).cloned().unwrap_or_default();
        let state = if up { "connected" } else { "waiting" };
        s += &format!(
            "vlan{} {state} {} clients={}\n",
            v.vlan,
            v.management.display(),
            clients.len()
        );
        for c in clients {
            let a = c.addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            s += &format!("  cid {} cn={} {} {a}\n", c.cid, c.cn, c.phase);
        }
    }
    s
}

/// One VLAN server, for ever: connect, serve, clean up, back off, reconnect.
async fn serve_vlan(shared: Arc<Shared>, i: usize) {
    let vlan = shared.cfg.vlans[i].clone();
    let per = shared.cfg.timeout * shared.cfg.tries;
    let deadline = per * shared.cfg.servers.len() as u32 + Duration::from_secs(2);
    let mut d = Daemon::new(vlan.clone(), deadline);
    let (ktx, krx) = mpsc::unbounded_channel();
    tokio::spawn(kernel_worker(
        shared.clone(),
        vlan.tun.clone(),
        vlan.leg.clone(),
        krx,
    ));
    let mut backoff = BACKOFF_MIN;
    let mut said_waiting = false;
    loop {
        match UnixStream::connect(&vlan.management).await {
            Ok(s) => {
                Counters::add(&shared.counters.mgmt_connects);
                eprintln!(
                    "ramux-vpn-auth: vlan{}: connected to {}",
                    vlan.vlan,
                    vlan.management.display()
                );
                set_view(&shared, &d, true);
                let why = session(&shared, &mut d, &ktx, s).await;
                Counters::add(&shared.counters.mgmt_lost);
                eprintln!(
                    "ramux-vpn-auth: vlan{}: management socket lost ({why}): cleaning up",
                    vlan.vlan
                );
                let acts = d.lost();
                perform_kernel(&ktx, acts);
                set_view(&shared, &d, false);
                backoff = BACKOFF_MIN;
                said_waiting = false;
            }
            Err(e) if !said_waiting => {
                eprintln!(
                    "ramux-vpn-auth: vlan{}: {}: {e}; retrying",
                    vlan.vlan,
                    vlan.management.display()
                );
                said_waiting = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn set_view(shared: &Shared, d: &Daemon, up: bool) {
    let mut v = shared.views.lock().unwrap_or_else(|e| e.into_inner());
    v.insert(d.vlan.vlan, (up, d.view()));
}

fn perform_kernel(ktx: &mpsc::UnboundedSender<Action>, acts: Vec<Action>) {
    for a in acts {
        if matches!(a, Action::Install(_) | Action::Remove(_)) {
            let _ = ktx.send(a);
        }
    }
}

type Answer = (u64, u32, Outcome);

/// One connection to a management socket; returns why it ended.
async fn session(
    shared: &Arc<Shared>,
    d: &mut Daemon,
    ktx: &mpsc::UnboundedSender<Action>,
    s: UnixStream,
) -> String {
    let (r, mut w) = s.into_split();
    let mut lines = LineReader::new(BufReader::new(r));
    let (atx, mut arx) = mpsc::unbounded_channel::<Answer>();
    let mut tasks = JoinSet::new();
    let mut asm = Assembler::default();
    // With --management-hold OpenVPN waits for this; without it the command is harmless.
    if let Err(e) = w.write_all(b"hold release\n").await {
        return e.to_string();
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let acts = tokio::select! {
            l = lines.next() => match l {
                Ok(Some(Some(l))) => on_line(shared, d, &mut asm, &l),
                Ok(Some(None)) => { Counters::add(&shared.counters.mgmt_overlong); vec![] }
                Ok(None) => return "end of stream".into(),
                Err(e) => return e.to_string(),
            },
            Some((cid, kid, o)) = arx.recv() => d.outcome(cid, kid, o, Instant::now()),
            _ = tick.tick() => d.tick(Instant::now()),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => vec![],
        };
        if let Err(e) = perform(shared, d.vlan.vlan, acts, &mut w, ktx, &atx, &mut tasks).await {
            return e;
        }
        set_view(shared, d, true);
    }
}

fn on_line(shared: &Shared, d: &mut Daemon, asm: &mut Assembler, line: &str) -> Vec<Action> {
    let c = &shared.counters;
    match asm.push(line) {
        Ok(Event::Notice(n)) => {
            if n.truncated {
                Counters::add(&c.env_truncated);
            }
            d.notice(n, Instant::now())
        }
        Ok(Event::Hold) => vec![Action::Send("hold release\n".into())],
        Ok(Event::Error(e)) => {
            Counters::add(&c.mgmt_errors);
            vec![Action::Log(format!("OpenVPN answered ERROR: {e}"))]
        }
        Ok(Event::Success(_) | Event::None) => vec![],
        Err(f) => {
            Counters::add(&c.mgmt_malformed);
            let what = match f {
                Fault::Malformed(m) => format!("malformed line {:?}", m.0),
                Fault::StrayEnv => "ENV line outside a CLIENT block".into(),
                Fault::Interrupted => "CLIENT block cut by another".into(),
            };
            vec![Action::Log(what)]
        }
    }
}

async fn perform(
    shared: &Arc<Shared>,
    vlan: u16,
    acts: Vec<Action>,
    w: &mut tokio::net::unix::OwnedWriteHalf,
    ktx: &mpsc::UnboundedSender<Action>,
    atx: &mpsc::UnboundedSender<Answer>,
    tasks: &mut JoinSet<()>,
) -> Result<(), String> {
    for a in acts {
        match a {
            Action::Send(cmd) => {
                count_verdict(&shared.counters, &cmd);
                w.write_all(cmd.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Action::Ask {
                cid,
                kid,
                user,
                calling,
            } => {
                let req = radius::Request {
                    user_name: user,
                    nas_identifier: shared
                        .cfg
                        .vlans
                        .iter()
                        .find(|v| v.vlan == vlan)
                        .map(|v| v.nas_identifier.clone())
                        .unwrap_or_default(),
                    calling_station_id: calling,
                };
                let (sh, tx) = (shared.clone(), atx.clone());
                tasks.spawn(async move {
                    let c = &sh.cfg;
                    let o =
                        radius_io::ask(&c.servers, c.timeout, c.tries, &req, &sh.counters).await;
                    let _ = tx.send((cid, kid, o));
                });
            }
            Action::Install(_) | Action::Remove(_) => {
                let _ = ktx.send(a);
            }
            Action::Log(l) => eprintln!("ramux-vpn-auth: vlan{vlan}: {l}"),
        }
    }
    Ok(())
}

fn count_verdict(c: &Counters, cmd: &str) {
    if cmd.starts_with("client-auth ") {
        Counters::add(&c.accepted);
    } else if cmd.starts_with("client-deny ") {
        Counters::add(&c.denied);
    }
}

/// Applies route/proxy changes in order, one `ip` run each, and the gratuitous ARP.
async fn kernel_worker(
    shared: Arc<Shared>,
    tun: String,
    leg: String,
    mut rx: mpsc::UnboundedReceiver<Action>,
) {
    while let Some(a) = rx.recv().await {
        let (add, addr): (bool, Ipv4Addr) = match a {
            Action::Install(x) => (true, x),
            Action::Remove(x) => (false, x),
            _ => continue,
        };
        let mut r = kernel::ip_batch(&kernel::batch(add, addr, &tun, &leg)).await;
        if add && r.is_ok() {
            r = kernel::send_garp(&leg, addr);
        }
        match r {
            Err(e) if add || !gone_already(&e) => {
                Counters::add(&shared.counters.kernel_errors);
                eprintln!("ramux-vpn-auth: {addr}: {e}");
            }
            _ => {}
        }
    }
}

/// A delete whose object went away with the tun device (OpenVPN stopped) is not an error.
fn gone_already(e: &str) -> bool {
    e.lines().all(|l| {
        l.trim().is_empty()
            || l.contains("No such process")
            || l.contains("Cannot find device")
            || l.contains("No such file")
            || l.contains("Command failed")
    })
}

/// Reads `\n`-terminated lines of at most [`MAX_LINE`] bytes; a longer line is consumed and
/// reported as `None` (counted), so one bad line costs no more than the cap in memory.
struct LineReader<R> {
    r: R,
    buf: Vec<u8>,
    skipping: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    fn new(r: R) -> Self {
        LineReader {
            r,
            buf: Vec::new(),
            skipping: false,
        }
    }

    /// Cancel-safe: state changes only right after `fill_buf` returns, never across an await.
    async fn next(&mut self) -> std::io::Result<Option<Option<String>>> {
        loop {
            let avail = self.r.fill_buf().await?;
            if avail.is_empty() {
                return Ok(None);
            }
            let (take, nl) = match avail.iter().position(|b| *b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if !self.skipping {
                self.buf.extend_from_slice(&avail[..take]);
            }
            self.r.consume(take + usize::from(nl));
            if self.buf.len() > MAX_LINE {
                self.buf.clear();
                self.skipping = true;
            }
            if nl {
                let over = std::mem::replace(&mut self.skipping, false);
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(
                    (!over).then(|| String::from_utf8_lossy(&line).into_owned()),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_reader_caps_long_lines_and_strips_cr() {
        let mut input = b">INFO:hello\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', MAX_LINE * 3));
        input.extend_from_slice(b"\nSUCCESS: ok\nno newline at end");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            // A tiny buffer: lines arrive in many pieces, as from a socket.
            let mut r = LineReader::new(BufReader::with_capacity(7, &input[..]));
            let mut v = vec![];
            while let Some(l) = r.next().await.unwrap() {
                v.push(l);
            }
            v
        });
        assert_eq!(
            got,
            [
                Some(">INFO:hello".to_string()),
                None,
                Some("SUCCESS: ok".to_string())
            ]
        );
    }
}
