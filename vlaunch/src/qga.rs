//! A small synchronous client of the QEMU guest agent (qemu-ga) on a VM's `qga.sock`.
//!
//! Written here rather than taken from a crate for the reason of [`crate::qmp`]: vlaunch needs
//! three commands. The wire is one JSON object per line, like QMP, minus greeting and events.
//! The channel outlives its clients: a client that died mid-command leaves a half-sent request
//! in the agent's parser and an unread reply in the pipe. So every session starts with
//! `guest-sync-delimited` (docs: qemu-ga-ref): we send 0xFF (the agent's parser resets on it),
//! then the sync with a random id; the agent puts 0xFF before its reply, and everything before
//! that byte and every reply with another id is stale and dropped.
//!
//! `guest-exec` starts the process and returns its guest pid; `guest-exec-status` is polled
//! until `exited` (the agent gives the captured output only then, and forgets the process).
//! The agent has no kill command, so on timeout we kill the process through a second
//! `guest-exec` (a shell line that kills it and its descendants) and collect what it printed.
//!
//! Everything read is untrusted: a reply line is capped at [`MAX_LINE`], captured output at
//! [`MAX_OUTPUT`] a stream (the agent's own cap is the same 16 MiB), and malformed replies are
//! errors.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The most output kept per stream; more sets [`ExecOutput::truncated`].
pub const MAX_OUTPUT: usize = 16 << 20;
/// The longest reply line accepted: two base64-encoded streams of [`MAX_OUTPUT`] fit.
pub const MAX_LINE: usize = 48 << 20;
/// The byte that resets the agent's parser and starts a `guest-sync-delimited` reply.
pub const DELIMITER: u8 = 0xFF;
/// How long a killed process gets to be reaped and report after a timeout.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What a command run in the guest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that ended it (9 after a timeout kill).
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Some output was cut: by the agent or at [`MAX_OUTPUT`].
    pub truncated: bool,
    /// The timeout passed; the process was killed (or we could not see it end).
    pub timed_out: bool,
    /// From `guest-exec` sent to `exited` seen.
    pub elapsed: Duration,
}

/// One reply of the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Return(Value),
    Error { class: String, desc: String },
}

/// Parses one reply line (without its newline).
pub fn parse_reply(line: &[u8]) -> Result<Reply> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        anyhow!(
            "guest agent sent a line that is not JSON ({e}): {}",
            show(line)
        )
    })?;
    if let Some(r) = v.get("return") {
        return Ok(Reply::Return(r.clone()));
    }
    if let Some(e) = v.get("error") {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Reply::Error {
            class: s("class"),
            desc: s("desc"),
        });
    }
    bail!("guest agent sent an unknown message: {}", show(line))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

/// Drops everything up to and including the first [`DELIMITER`]; false (and `buf` emptied)
/// when there is none yet.
pub fn skip_delimiter(buf: &mut Vec<u8>) -> bool {
    match buf.iter().position(|&b| b == DELIMITER) {
        Some(i) => {
            buf.drain(..=i);
            true
        }
        None => {
            buf.clear();
            false
        }
    }
}

/// Takes the first complete line out of `buf` (newline dropped); an error once `buf` holds
/// more than [`MAX_LINE`] bytes without one.
pub fn take_line(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let mut line: Vec<u8> = buf.drain(..=i).collect();
            line.pop();
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => bail!("guest agent reply longer than {MAX_LINE} bytes"),
        None => Ok(None),
    }
}

/// The `guest-exec-status` return value, as the agent documents it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecStatus {
    pub exited: bool,
    pub exitcode: Option<i32>,
    pub signal: Option<i32>,
    pub out_data: Option<String>,
    pub err_data: Option<String>,
    #[serde(default)]
    pub out_truncated: bool,
    #[serde(default)]
    pub err_truncated: bool,
}

/// Accumulates `guest-exec-status` replies into an [`ExecOutput`].
#[derive(Debug, Default)]
pub struct Collector {
    pub out: ExecOutput,
}

impl Collector {
    /// Adds one status; true once the process exited.
    pub fn feed(&mut self, v: &Value) -> Result<bool> {
        let st = ExecStatus::deserialize(v)
            .map_err(|e| anyhow!("bad guest-exec-status reply ({e}): {v}"))?;
        let o = &mut self.out;
        o.truncated |= st.out_truncated | st.err_truncated;
        o.truncated |= append_b64(&mut o.stdout, st.out_data.as_deref()).context("out-data")?;
        o.truncated |= append_b64(&mut o.stderr, st.err_data.as_deref()).context("err-data")?;
        if st.exited {
            o.code = st.exitcode;
            o.signal = st.signal;
        }
        Ok(st.exited)
    }
}

/// Decodes base64 `data` onto `to`, keeping `to` within [`MAX_OUTPUT`]; true when it cut.
pub fn append_b64(to: &mut Vec<u8>, data: Option<&str>) -> Result<bool> {
    let Some(data) = data else { return Ok(false) };
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| anyhow!("not base64: {e}"))?;
    let room = MAX_OUTPUT.saturating_sub(to.len());
    let cut = bytes.len() > room;
    bytes.truncate(room);
    to.extend_from_slice(&bytes);
    Ok(cut)
}

/// The `guest-exec` arguments: `argv[0]` is the path (the agent searches PATH for a bare name).
pub fn exec_args(argv: &[String], input: Option<&[u8]>) -> Result<Value> {
    let (path, args) = argv
        .split_first()
        .ok_or_else(|| anyhow!("no command given"))?;
    let mut a = json!({"path": path, "arg": args, "capture-output": true});
    if let Some(i) = input {
        a["input-data"] = json!(base64::engine::general_purpose::STANDARD.encode(i));
    }
    Ok(a)
}

/// The shell line that kills guest process `pid` and all its descendants: each is stopped
/// first (no new children meanwhile), its children found by their parent pid in
/// `/proc/*/stat` (no `pkill` needed; `kill` and `read` are builtins), then killed.
pub fn kill_line(pid: i64) -> String {
    format!(
        "k() {{ kill -STOP $1; for f in /proc/[0-9]*/stat; do read -r c _ _ pp _ <$f && \
         [ \"$pp\" = \"$1\" ] && k $c; done; kill -KILL $1; }} 2>/dev/null; k {pid}; true"
    )
}

/// A random sync id (std's hasher keys are random per process and call).
fn random_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() >> 33) as u32
}

/// A session with the guest agent.
pub struct Agent {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Bounds the wait for each reply.
    pub reply_timeout: Duration,
}

/// Connects to a unix socket within `timeout`: QEMU accepts one client at a time and leaves
/// the next ones in its backlog, where `connect` can block. A connect still blocked when we
/// give up finishes (and closes) in its thread.
fn connect(sock: &Path, timeout: Duration) -> Result<UnixStream> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = sock.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(p));
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => r.with_context(|| format!("connecting to {}", sock.display())),
        Err(_) => bail!(
            "connecting to {} took over {timeout:?} (another client of the guest agent?)",
            sock.display()
        ),
    }
}

impl Agent {
    /// Connects and synchronises; `timeout` bounds each of the two.
    pub fn connect(sock: &Path, timeout: Duration) -> Result<Agent> {
        let mut a = Agent::unsynced(sock, timeout)?;
        a.sync(timeout)?;
        Ok(a)
    }

    fn unsynced(sock: &Path, timeout: Duration) -> Result<Agent> {
        let stream = connect(sock, timeout)?;
        stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        Ok(Agent {
            stream,
            buf: Vec::new(),
            reply_timeout: timeout,
        })
    }

    /// `guest-sync-delimited`: drops stale bytes and replies until ours comes back.
    pub fn sync(&mut self, timeout: Duration) -> Result<()> {
        let id = random_id();
        let mut req = vec![DELIMITER];
        req.extend_from_slice(
            json!({"execute": "guest-sync-delimited", "arguments": {"id": id}})
                .to_string()
                .as_bytes(),
        );
        req.push(b'\n');
        self.send(&req)?;
        let deadline = Instant::now() + timeout;
        loop {
            self.skip_to_delimiter(deadline)?;
            let line = self.line(deadline)?;
            // A stale 0xFF inside the line: the reply after it is what counts.
            let tail = match line.iter().rposition(|&b| b == DELIMITER) {
                Some(i) => &line[i + 1..],
                None => &line[..],
            };
            if let Ok(Reply::Return(v)) = parse_reply(tail) {
                if v.as_u64() == Some(u64::from(id)) {
                    return Ok(());
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .context("writing to the guest agent socket")
    }

    /// Reads more bytes into the buffer, failing at `deadline` or EOF.
    fn fill(&mut self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no answer from the guest agent in time (is qemu-ga running in the guest?)");
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => bail!("the guest agent socket closed (QEMU stopped?)"),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if is_timeout(&e) => self.fill(deadline),
            Err(e) => Err(e).context("reading from the guest agent socket"),
        }
    }

    fn skip_to_delimiter(&mut self, deadline: Instant) -> Result<()> {
        while !skip_delimiter(&mut self.buf) {
            self.fill(deadline)?;
        }
        Ok(())
    }

    /// The next non-empty line.
    fn line(&mut self, deadline: Instant) -> Result<Vec<u8>> {
        loop {
            match take_line(&mut self.buf)? {
                Some(l) if l.iter().all(u8::is_ascii_whitespace) => {}
                Some(l) => return Ok(l),
                None => self.fill(deadline)?,
            }
        }
    }

    /// Runs one command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let mut req = json!({"execute": command, "arguments": arguments}).to_string();
        req.push('\n');
        self.send(req.as_bytes())?;
        let deadline = Instant::now() + self.reply_timeout;
        match parse_reply(&self.line(deadline)?)? {
            Reply::Return(v) => Ok(v),
            Reply::Error { class, desc } => bail!("guest agent: {command} failed: {class}: {desc}"),
        }
    }

    /// Runs `argv` in the guest with `input` on its stdin, waiting at most `timeout` for it to
    /// exit; on timeout it is killed and [`ExecOutput::timed_out`] is set.
    pub fn exec(
        &mut self,
        argv: &[String],
        input: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let t0 = Instant::now();
        let pid = self.spawn(argv, input)?;
        let mut c = Collector::default();
        let exited = self.poll(pid, &mut c, t0 + timeout)?;
        c.out.elapsed = t0.elapsed();
        if !exited {
            c.out.timed_out = true;
            self.kill(pid, &mut c)?;
        }
        Ok(c.out)
    }

    fn spawn(&mut self, argv: &[String], input: Option<&[u8]>) -> Result<i64> {
        let r = self.execute("guest-exec", exec_args(argv, input)?)?;
        r.get("pid")
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("guest-exec returned no pid: {r}"))
    }

    /// Polls `guest-exec-status` until exited (true) or `deadline` (false), backing off from
    /// 2 ms to 100 ms so that short commands return fast without flooding the agent.
    fn poll(&mut self, pid: i64, c: &mut Collector, deadline: Instant) -> Result<bool> {
        let mut pause = Duration::from_millis(2);
        loop {
            if c.feed(&self.execute("guest-exec-status", json!({"pid": pid}))?)? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Kills `pid` and waits briefly for the agent to see it end; both processes' status is
    /// read, which frees their entries in the agent.
    fn kill(&mut self, pid: i64, c: &mut Collector) -> Result<()> {
        let argv = ["/bin/sh".to_string(), "-c".into(), kill_line(pid)];
        let killer = self.spawn(&argv, None)?;
        self.poll(pid, c, Instant::now() + KILL_GRACE)?;
        self.poll(
            killer,
            &mut Collector::default(),
            Instant::now() + KILL_GRACE,
        )?;
        Ok(())
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Connects and retries the sync until the agent answers or `timeout` passes: the agent starts
/// a few seconds after the ready line, and bytes sent before it opens the port go unanswered.
pub fn wait_agent(sock: &Path, timeout: Duration) -> Result<Agent> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut a = Agent::unsynced(sock, left().max(Duration::from_millis(1)))?;
    loop {
        let try_for = left().min(Duration::from_secs(1));
        match a.sync(try_for) {
            Ok(()) => return Ok(a),
            Err(e) if left().is_zero() => {
                return Err(e).with_context(|| {
                    format!(
                        "the guest agent on {} did not answer within {timeout:?}",
                        sock.display()
                    )
                })
            }
            Err(_) => {}
        }
    }
}

/// Fuzz body (also run by a unit test): any bytes must give lines and replies or errors,
/// never a panic.
pub fn fuzz_qga(data: &[u8]) {
    let mut buf = data.to_vec();
    let _ = skip_delimiter(&mut buf.clone());
    buf.push(b'\n');
    while let Ok(Some(line)) = take_line(&mut buf) {
        if let Ok(Reply::Return(v)) = parse_reply(&line) {
            let _ = Collector::default().feed(&v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    #[test]
    fn framing() {
        let mut b = b"{\"return\": 1}\n\xff{\"ret".to_vec();
        assert!(skip_delimiter(&mut b));
        assert_eq!(b, b"{\"ret");
        assert_eq!(take_line(&mut b).unwrap(), None);
        b.extend_from_slice(b"urn\": 7}\r\n{");
        assert_eq!(take_line(&mut b).unwrap().unwrap(), b"{\"return\": 7}\r");
        assert_eq!(b, b"{");
        let mut none = b"no delimiter".to_vec();
        assert!(!skip_delimiter(&mut none));
        assert!(none.is_empty());
        let mut huge = vec![b'x'; MAX_LINE + 1];
        assert!(take_line(&mut huge).is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply(br#"{"return": {"pid": 812}}"#).unwrap(),
            Reply::Return(json!({"pid": 812}))
        );
        let e = br#"{"error": {"class": "GenericError", "desc": "Guest agent command failed, error was 'Failed to execute child process \u201c/nope\u201d (No such file or directory)'"}}"#;
        assert!(
            matches!(parse_reply(e).unwrap(), Reply::Error { class, .. } if class == "GenericError")
        );
        for bad in [&b"{}"[..], b"[1]", b"\xff\xfe", b"{\"return\": ", b""] {
            assert!(parse_reply(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_state_machine() {
        let mut c = Collector::default();
        assert!(!c.feed(&json!({"exited": false})).unwrap());
        // Captured from qemu-ga 7.2 for `sh -c 'echo hi; echo oops >&2; exit 3'`.
        let done =
            json!({"exitcode": 3, "out-data": "aGkK", "err-data": "b29wcwo=", "exited": true});
        assert!(c.feed(&done).unwrap());
        assert_eq!(c.out.code, Some(3));
        assert_eq!(c.out.signal, None);
        assert_eq!(
            (&c.out.stdout[..], &c.out.stderr[..]),
            (&b"hi\n"[..], &b"oops\n"[..])
        );
        assert!(!c.out.truncated);
        let mut k = Collector::default();
        assert!(k
            .feed(&json!({"exited": true, "signal": 9, "out-truncated": true}))
            .unwrap());
        assert_eq!(
            (k.out.code, k.out.signal, k.out.truncated),
            (None, Some(9), true)
        );
    }

    #[test]
    fn malformed_status_is_an_error() {
        for v in [
            json!({"exited": "yes"}),
            json!({"exited": true, "out-data": "not base64!"}),
            json!({"exited": true, "exitcode": 1e99}),
            json!([]),
            json!({}),
        ] {
            assert!(Collector::default().feed(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn output_is_capped() {
        let mut to = vec![0u8; MAX_OUTPUT - 2];
        assert!(append_b64(&mut to, Some("aGkK")).unwrap());
        assert_eq!(to.len(), MAX_OUTPUT);
        assert!(!append_b64(&mut to, None).unwrap());
    }

    #[test]
    fn exec_arguments() {
        let argv = ["sh".to_string(), "-c".into(), "cat".into()];
        assert_eq!(
            exec_args(&argv, Some(b"hi")).unwrap(),
            json!({"path": "sh", "arg": ["-c", "cat"], "capture-output": true, "input-data": "aGk="})
        );
        assert!(exec_args(&[], None).is_err());
        assert!(kill_line(42).ends_with("; k 42; true"));
    }

    #[test]
    fn fuzz_body_over_samples() {
        for s in [
            &b""[..],
            b"\xff\xff\n\n{\"return\": {\"exited\": true, \"out-data\": \"====\"}}",
            b"{\"return\": {\"exited\": true, \"exitcode\": -1, \"signal\": 99999999999}}\n",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ] {
            fuzz_qga(s);
        }
    }

    /// A scripted agent on a real socket: stale bytes and a stale sync reply before ours, then
    /// one exec that runs for two polls.
    fn scripted_agent(path: &Path) -> std::thread::JoinHandle<()> {
        let l = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut req = Vec::new();
            r.read_until(b'\n', &mut req).unwrap();
            assert_eq!(req[0], DELIMITER);
            let v: Value = serde_json::from_slice(&req[1..]).unwrap();
            let id = &v["arguments"]["id"];
            // A stale reply, a stale delimited reply, one cut short, then ours.
            w.write_all(b"{\"return\": {\"pid\": 1}}\n\xff{\"return\": 5}\n\xff{\"ret")
                .unwrap();
            w.write_all(b"\xff").unwrap();
            w.write_all(format!("{{\"return\": {id}}}\n").as_bytes())
                .unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("\"input-data\":\"aGk=\""), "{line}");
            w.write_all(b"{\"return\": {\"pid\": 77}}\n").unwrap();
            for reply in [
                "{\"return\": {\"exited\": false}}\n",
                "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"aGkK\"}}\n",
            ] {
                line.clear();
                r.read_line(&mut line).unwrap();
                assert!(
                    line.contains("guest-exec-status") && line.contains("77"),
                    "{line}"
                );
                w.write_all(reply.as_bytes()).unwrap();
            }
        })
    }

    #[test]
    fn session_against_scripted_agent() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("qga.sock");
        let t = scripted_agent(&path);
        let mut a = Agent::connect(&path, Duration::from_secs(5)).unwrap();
        let argv = ["cat".to_string()];
        let out = a.exec(&argv, Some(b"hi"), Duration::from_secs(5)).unwrap();
        assert_eq!(
            (out.code, &out.stdout[..], out.timed_out),
            (Some(0), &b"hi\n"[..], false)
        );
        t.join().unwrap();
    }

    #[test]
    fn silent_agent_times_out() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("qga.sock");
        let _l = UnixListener::bind(&path).unwrap();
        let t0 = Instant::now();
        let e = wait_agent(&path, Duration::from_millis(1500))
            .err()
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert!(format!("{e:#}").contains("did not answer"), "{e:#}");
        assert!(Agent::connect(&d.path().join("none"), Duration::from_secs(1)).is_err());
    }
}
