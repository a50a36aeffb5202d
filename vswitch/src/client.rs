//! Client side of the VDE2 protocol and of the console: used by `vswitch plug`,
//! `vswitch ctl`, the tests and the benchmark. Speaks to vswitch and to Debian's vde_switch.

use crate::wire::{parse_sockaddr_reply, PortRequest, RequestRepr, SOCKADDR_UN_LEN};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A connected VDE endpoint: keep `ctl` open for the life of the connection.
pub struct VdeClient {
    pub ctl: UnixStream,
    pub data: UnixDatagram,
    /// Switch-side data socket path from the reply.
    pub switch_path: PathBuf,
    /// Port number parsed from the reply path (`DIR/PPP.F`), when it has that form.
    pub port: Option<u16>,
}

/// Parse `DIR`, `DIR:N` or `DIR[N]` into (dir, request).
pub fn parse_target(s: &str) -> Result<(PathBuf, PortRequest)> {
    if let Some(rest) = s.strip_suffix(']') {
        if let Some((dir, n)) = rest.rsplit_once('[') {
            let req = match n {
                "" => PortRequest::Any,
                "0" => PortRequest::Port0,
                n => PortRequest::Port(n.parse().with_context(|| format!("bad port in {s:?}"))?),
            };
            return Ok((dir.into(), req));
        }
    }
    if let Some((dir, n)) = s.rsplit_once(':') {
        if let Ok(n) = n.parse::<u32>() {
            let req = if n == 0 {
                PortRequest::Any
            } else {
                PortRequest::Port(n)
            };
            return Ok((dir.into(), req));
        }
    }
    Ok((s.into(), PortRequest::Any))
}

impl VdeClient {
    /// Perform the handshake on `dir/ctl`.
    pub fn connect(dir: &Path, req: PortRequest, descr: &str) -> Result<VdeClient> {
        let ctl_path = crate::layout::SwitchDir::new(dir).ctl();
        let mut ctl = UnixStream::connect(&ctl_path)
            .with_context(|| format!("connect {} (is a switch running?)", ctl_path.display()))?;
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut own = dir.join(format!(".{pid:05}-{seq:05}"));
        let data = match UnixDatagram::bind(&own) {
            Ok(d) => d,
            Err(_) => {
                own = PathBuf::from(format!("/tmp/vde.{pid}-{seq}"));
                let _ = std::fs::remove_file(&own);
                UnixDatagram::bind(&own).with_context(|| format!("bind {}", own.display()))?
            }
        };
        let res = (|| -> Result<VdeClient> {
            let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
            let repr = RequestRepr {
                port: req,
                path: own.as_os_str().as_encoded_bytes().to_vec(),
                description: format!("{descr} user={user} pid={pid}").into_bytes(),
            };
            ctl.write_all(&repr.emit()).context("send request")?;
            ctl.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut reply = [0u8; SOCKADDR_UN_LEN];
            let mut got = 0;
            while got < reply.len() {
                let n = ctl.read(&mut reply[got..]).context("read reply")?;
                if n == 0 {
                    bail!(
                        "switch at {} refused the request (closed the control connection)",
                        dir.display()
                    );
                }
                got += n;
            }
            ctl.set_read_timeout(None)?;
            let sp = parse_sockaddr_reply(&reply).map_err(|e| anyhow!("bad reply: {e}"))?;
            let switch_path = PathBuf::from(String::from_utf8_lossy(&sp).into_owned());
            data.connect(&switch_path)
                .with_context(|| format!("connect {}", switch_path.display()))?;
            let port = switch_path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.split('.').next())
                .and_then(|p| p.parse().ok());
            Ok(VdeClient {
                ctl,
                data: data.try_clone()?,
                switch_path,
                port,
            })
        })();
        let _ = std::fs::remove_file(&own);
        res
    }
}

/// `vswitch plug`: relay a port over stdin/stdout with vde_plug's 2-byte big-endian
/// length framing. Ends when stdin closes or the switch closes the port.
pub fn plug_stdio(dir: &Path, req: PortRequest) -> Result<()> {
    let c = VdeClient::connect(dir, req, "vswitch plug")?;
    let data_in = c.data.try_clone()?;
    let mut ctl = c.ctl.try_clone()?;
    // Switch closed the port: exit.
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while matches!(ctl.read(&mut b), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    // switch -> stdout
    std::thread::spawn(move || {
        let mut buf = vec![0u8; crate::wire::MAX_FRAME_LEN + 16];
        let stdout = std::io::stdout();
        let mut out = Vec::with_capacity(buf.len() + 2);
        loop {
            let n = match data_in.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => std::process::exit(0),
            };
            if n == 0 {
                continue;
            }
            out.clear();
            crate::wire::stream_encode(&buf[..n], &mut out);
            let mut lock = stdout.lock();
            if lock.write_all(&out).and_then(|_| lock.flush()).is_err() {
                std::process::exit(0);
            }
        }
    });
    // stdin -> switch
    let mut dec = crate::wire::StreamDecoder::new();
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("read stdin"),
        };
        dec.push(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            // Frames the switch cannot take right now are retried (blocking send).
            c.data.send(&f).context("send to switch")?;
        }
    }
}

/// Result of one console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdResult {
    pub data: Vec<String>,
    /// 1000 = success.
    pub code: u32,
    pub message: String,
    /// Other output (load echo lines, async events).
    pub other: Vec<String>,
}

/// A console session on a `-M` socket (vswitch or vde_switch).
pub struct MgmtSession {
    s: UnixStream,
    pub banner: String,
}

fn read_until_prompt(s: &mut UnixStream) -> Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).context("read from management socket")?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"$ ") || buf.ends_with(b"9999 END OF SESSION") {
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }
}

impl MgmtSession {
    pub fn connect(path: &Path) -> Result<Self> {
        let mut s = UnixStream::connect(path)
            .with_context(|| format!("connect management socket {}", path.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let banner = read_until_prompt(&mut s)?;
        Ok(MgmtSession { s, banner })
    }

    /// Send one command line and parse the reply.
    pub fn cmd(&mut self, line: &str) -> Result<CmdResult> {
        self.s
            .write_all(format!("{}\n", line.trim_end()).as_bytes())?;
        let text = read_until_prompt(&mut self.s)?;
        Ok(parse_reply(&text))
    }
}

/// Parse the text between two prompts.
pub fn parse_reply(text: &str) -> CmdResult {
    let mut r = CmdResult {
        data: vec![],
        code: 0,
        message: String::new(),
        other: vec![],
    };
    let mut in_data = false;
    for l in text.lines() {
        if in_data {
            if l == "." {
                in_data = false;
            } else {
                r.data.push(l.to_string());
            }
        } else if l.starts_with("0000 DATA END WITH") {
            in_data = true;
        } else if l.len() >= 4 && l.starts_with('1') && l[..4].chars().all(|c| c.is_ascii_digit()) {
            r.code = l[..4].parse().unwrap_or(0);
            r.message = l[4..].trim().to_string();
        } else if l.starts_with("9999") {
            r.code = 9999;
        } else if !l.is_empty() && l != "vde$ " && !l.ends_with("$ ") {
            r.other.push(l.to_string());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("/tmp/sw").unwrap(),
            (PathBuf::from("/tmp/sw"), PortRequest::Any)
        );
        assert_eq!(
            parse_target("/tmp/sw:4").unwrap(),
            (PathBuf::from("/tmp/sw"), PortRequest::Port(4))
        );
        assert_eq!(
            parse_target("/tmp/sw[5]").unwrap(),
            (PathBuf::from("/tmp/sw"), PortRequest::Port(5))
        );
        assert_eq!(
            parse_target("/tmp/sw[0]").unwrap(),
            (PathBuf::from("/tmp/sw"), PortRequest::Port0)
        );
        assert!(parse_target("/tmp/sw[x]").is_err());
    }

    #[test]
    fn replies() {
        let r = parse_reply("0000 DATA END WITH '.'\nNumports=32\n.\n1000 Success\n\nvde$ ");
        assert_eq!(r.data, vec!["Numports=32"]);
        assert_eq!(r.code, 1000);
        let r = parse_reply("1022 Invalid argument\n\nvde$ ");
        assert_eq!((r.code, r.message.as_str()), (1022, "Invalid argument"));
    }
}
