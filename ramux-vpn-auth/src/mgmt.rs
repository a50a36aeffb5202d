//! The OpenVPN management-interface subset: one line parser and the assembler that turns a
//! `>CLIENT:` header and its `>CLIENT:ENV,` lines into one notice. Pure (no I/O): the daemon
//! feeds it lines, the fuzz targets feed it bytes.
//!
//! Lines used (OpenVPN 2.6 doc/management-notes.txt): `>CLIENT:CONNECT,cid,kid`,
//! `>CLIENT:REAUTH,cid,kid`, `>CLIENT:ESTABLISHED,cid`, `>CLIENT:DISCONNECT,cid`, each followed
//! by `>CLIENT:ENV,name=value` lines up to `>CLIENT:ENV,END` (atomic: nothing else between
//! them); `>CLIENT:ADDRESS,cid,addr,pri` (one line); `>HOLD:`; `>INFO:`; and the answers to our
//! commands, `SUCCESS: ...` and `ERROR: ...`. Every other line is ignored.

use std::collections::BTreeMap;

/// ENV names kept from a block; everything else is counted against the cap and dropped, so a
/// client with huge certificates cannot make the daemon keep them.
pub const KEPT_ENV: &[&str] = &[
    "common_name",
    "untrusted_ip",
    "untrusted_port",
    "ifconfig_pool_remote_ip",
    "username",
];

/// Most ENV lines accepted in one block (OpenVPN sends about 30 for a certificate client).
pub const MAX_ENV_LINES: usize = 256;

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Head(Head),
    Env(&'a str, &'a str),
    EnvEnd,
    Address {
        cid: u64,
        addr: &'a str,
    },
    Hold,
    Info,
    Success(&'a str),
    Error(&'a str),
    /// A real-time or other line this daemon does not use (`>LOG:`, `>STATE:`...).
    Ignored,
}

/// The first line of a multi-line `>CLIENT:` notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Connect {
        cid: u64,
        kid: u32,
    },
    Reauth {
        cid: u64,
        kid: u32,
    },
    Established {
        cid: u64,
    },
    Disconnect {
        cid: u64,
    },
    /// `>CLIENT:CR_RESPONSE,cid,kid,...`: assembled and then ignored.
    Other,
}

/// A line that claims to be a known notice but does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

/// Parses one line (without its `\r\n`).
pub fn parse_line(line: &str) -> Result<Line<'_>, Malformed> {
    let bad = || Malformed(line.chars().take(80).collect());
    if let Some(rest) = line.strip_prefix(">CLIENT:") {
        return parse_client(rest).ok_or_else(bad);
    }
    if line.starts_with(">HOLD:") {
        return Ok(Line::Hold);
    }
    if line.starts_with(">INFO:") {
        return Ok(Line::Info);
    }
    if let Some(r) = line.strip_prefix("SUCCESS:") {
        return Ok(Line::Success(r.trim()));
    }
    if let Some(r) = line.strip_prefix("ERROR:") {
        return Ok(Line::Error(r.trim()));
    }
    Ok(Line::Ignored)
}

fn parse_client(rest: &str) -> Option<Line<'_>> {
    let (kind, args) = rest.split_once(',').unwrap_or((rest, ""));
    let mut it = args.split(',');
    let mut cid = || it.next()?.parse::<u64>().ok();
    Some(match kind {
        "ENV" if args == "END" => Line::EnvEnd,
        "ENV" => {
            let (n, v) = args.split_once('=')?;
            Line::Env(n, v)
        }
        "CONNECT" | "REAUTH" => {
            let c = cid()?;
            let k = args.split(',').nth(1)?.parse::<u32>().ok()?;
            let h = if kind == "CONNECT" {
                Head::Connect { cid: c, kid: k }
            } else {
                Head::Reauth { cid: c, kid: k }
            };
            Line::Head(h)
        }
        "ESTABLISHED" => Line::Head(Head::Established { cid: cid()? }),
        "DISCONNECT" => Line::Head(Head::Disconnect { cid: cid()? }),
        "ADDRESS" => {
            let c = cid()?;
            let addr = args.split(',').nth(1)?;
            Line::Address { cid: c, addr }
        }
        "CR_RESPONSE" => Line::Head(Head::Other),
        _ => return None,
    })
}

/// A complete `>CLIENT:` notice with the kept ENV values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub head: Head,
    pub env: BTreeMap<String, String>,
    /// The block had more than [`MAX_ENV_LINES`] lines (the rest were dropped).
    pub truncated: bool,
}

/// What one line gave the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Notice(Notice),
    Hold,
    Success(String),
    Error(String),
    /// Nothing to do (ENV line inside a block, an ignored notice).
    None,
}

/// Why a line was counted as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Malformed(Malformed),
    /// ENV line or `END` with no open block.
    StrayEnv,
    /// A new header while a block was open: the open block is dropped.
    Interrupted,
}

/// Assembles blocks line by line; bounded: at most one open block of at most
/// [`MAX_ENV_LINES`] lines, values only of the [`KEPT_ENV`] names.
#[derive(Debug, Default)]
pub struct Assembler {
    open: Option<Notice>,
    lines: usize,
}

impl Assembler {
    /// Feeds one line; an `Err` is counted by the caller and the stream goes on.
    pub fn push(&mut self, line: &str) -> Result<Event, Fault> {
        match parse_line(line).map_err(Fault::Malformed)? {
            Line::Head(h) => self.open_block(h),
            Line::Env(n, v) => self.env(n, v),
            Line::EnvEnd => self.end(),
            Line::Hold => Ok(Event::Hold),
            Line::Success(s) => Ok(Event::Success(s.to_string())),
            Line::Error(s) => Ok(Event::Error(s.to_string())),
            Line::Address { .. } | Line::Info | Line::Ignored => Ok(Event::None),
        }
    }

    fn open_block(&mut self, head: Head) -> Result<Event, Fault> {
        let was_open = self.open.is_some();
        self.open = Some(Notice {
            head,
            env: BTreeMap::new(),
            truncated: false,
        });
        self.lines = 0;
        if was_open {
            Err(Fault::Interrupted)
        } else {
            Ok(Event::None)
        }
    }

    fn env(&mut self, name: &str, value: &str) -> Result<Event, Fault> {
        let n = self.open.as_mut().ok_or(Fault::StrayEnv)?;
        self.lines += 1;
        if self.lines > MAX_ENV_LINES {
            n.truncated = true;
        } else if KEPT_ENV.contains(&name) {
            n.env.insert(name.to_string(), value.to_string());
        }
        Ok(Event::None)
    }

    fn end(&mut self) -> Result<Event, Fault> {
        let n = self.open.take().ok_or(Fault::StrayEnv)?;
        self.lines = 0;
        Ok(Event::Notice(n))
    }
}

/// Quotes a reason for `client-deny` (management-notes: a double-quoted string): quotes,
/// backslashes and control characters cannot break out of it or end the command line.
pub fn quote(reason: &str) -> String {
    let clean: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .take(200)
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_block() {
        let mut a = Assembler::default();
        for l in [
            ">CLIENT:CONNECT,3,1",
            ">CLIENT:ENV,common_name=alice",
            ">CLIENT:ENV,untrusted_ip=127.0.0.1",
            ">CLIENT:ENV,tls_digest_0=ab:cd=ef",
        ] {
            assert_eq!(a.push(l), Ok(Event::None), "{l}");
        }
        let Ok(Event::Notice(n)) = a.push(">CLIENT:ENV,END") else {
            panic!()
        };
        assert_eq!(n.head, Head::Connect { cid: 3, kid: 1 });
        assert_eq!(n.env["common_name"], "alice");
        assert_eq!(n.env.len(), 2);
    }

    #[test]
    fn other_lines() {
        assert_eq!(
            parse_line(">CLIENT:ESTABLISHED,7"),
            Ok(Line::Head(Head::Established { cid: 7 }))
        );
        assert_eq!(
            parse_line(">CLIENT:ADDRESS,7,172.16.10.130,1"),
            Ok(Line::Address {
                cid: 7,
                addr: "172.16.10.130"
            })
        );
        assert_eq!(
            parse_line(">HOLD:Waiting for hold release:0"),
            Ok(Line::Hold)
        );
        assert_eq!(
            parse_line("SUCCESS: client-auth command succeeded"),
            Ok(Line::Success("client-auth command succeeded"))
        );
        assert_eq!(parse_line(">LOG:1,I,x"), Ok(Line::Ignored));
        assert!(parse_line(">CLIENT:CONNECT,x,1").is_err());
        assert!(parse_line(">CLIENT:CONNECT,1").is_err());
        assert!(parse_line(">CLIENT:BOGUS,1").is_err());
        assert!(parse_line(">CLIENT:ENV,noequals").is_err());
    }

    #[test]
    fn faults_and_caps() {
        let mut a = Assembler::default();
        assert_eq!(a.push(">CLIENT:ENV,END"), Err(Fault::StrayEnv));
        a.push(">CLIENT:DISCONNECT,1").unwrap();
        assert_eq!(a.push(">CLIENT:CONNECT,2,0"), Err(Fault::Interrupted));
        for i in 0..1000 {
            a.push(&format!(">CLIENT:ENV,x{i}=y")).unwrap();
        }
        let Ok(Event::Notice(n)) = a.push(">CLIENT:ENV,END") else {
            panic!()
        };
        assert!(n.truncated && n.env.is_empty());
        assert_eq!(n.head, Head::Connect { cid: 2, kid: 0 });
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a \"b\"\\\n"), "\"a 'b''\"");
    }
}
