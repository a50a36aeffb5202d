//! Reading and checking `/etc/ramux/vpn-auth.toml` ([`ramux_contract::vpn::VpnAuth`]) into the
//! values the daemon uses. Every error names the file, and the line and column when TOML knows
//! them, so a bad file is fixed from the message alone.

use anyhow::{bail, Context, Result};
use ramux_contract::vpn::VpnAuth;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An IPv4 network `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 32).then_some(Net { addr, prefix })
    }
    pub fn mask(&self) -> Ipv4Addr {
        let m = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(m)
    }
    /// A usable host address of the network (neither the network nor the broadcast address).
    pub fn has_host(&self, a: Ipv4Addr) -> bool {
        let m = u32::from(self.mask());
        let (a, n) = (u32::from(a), u32::from(self.addr));
        if a & m != n & m {
            return false;
        }
        let host = a & !m;
        self.prefix >= 31 || (host != 0 && host != !m)
    }
}

/// One VLAN server as the daemon serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    pub vlan: u16,
    pub management: PathBuf,
    pub tun: String,
    pub leg: String,
    pub network: Net,
    pub reserved: Vec<Ipv4Addr>,
    pub nas_identifier: String,
}

/// A RADIUS server with its secret read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub address: SocketAddr,
    pub secret: Vec<u8>,
    /// Refuse replies without a Message-Authenticator (`--require-signed-replies`): Debian 12's
    /// FreeRADIUS 3.2.1 signs only EAP replies unless told to, so this is off by default.
    pub require_ma: bool,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub servers: Vec<Server>,
    pub timeout: Duration,
    pub tries: u32,
    pub vlans: Vec<Vlan>,
}

/// Reads the file; `secrets_dir` holds the RADIUS secrets the file names.
pub fn load(path: &Path, secrets_dir: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw = parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    check(&raw, secrets_dir).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// TOML to [`VpnAuth`]; the error starts with `line:col: `.
pub fn parse(text: &str) -> Result<VpnAuth, String> {
    toml::from_str::<VpnAuth>(text).map_err(|e| {
        let (l, c) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        format!("{l}:{c}: {}", e.message())
    })
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Checks every value; reads the secrets (first line, without its newline; never logged).
pub fn check(raw: &VpnAuth, secrets_dir: &Path) -> Result<Config> {
    if raw.radius.is_empty() {
        bail!("radius: no server");
    }
    if raw.daemons.is_empty() {
        bail!("daemons: none");
    }
    if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 || raw.tries == 0 || raw.tries > 10 {
        bail!("timeout_ms must be 1..=60000 and tries 1..=10");
    }
    let servers = raw
        .radius
        .iter()
        .map(|s| server(s, secrets_dir))
        .collect::<Result<Vec<_>>>()?;
    let mut vlans = Vec::new();
    for d in &raw.daemons {
        let v = vlan(raw, d).with_context(|| format!("daemons: vlan {}", d.vlan))?;
        if vlans
            .iter()
            .any(|o: &Vlan| o.vlan == v.vlan || o.management == v.management)
        {
            bail!("daemons: vlan {} or its socket given twice", v.vlan);
        }
        vlans.push(v);
    }
    Ok(Config {
        servers,
        timeout: Duration::from_millis(raw.timeout_ms),
        tries: raw.tries,
        vlans,
    })
}

fn server(s: &ramux_contract::vpn::RadiusServer, dir: &Path) -> Result<Server> {
    let address: SocketAddr = s
        .address
        .parse()
        .with_context(|| format!("radius: address {:?}: want a.b.c.d:port", s.address))?;
    if s.secret.split('/').any(|c| c.is_empty() || c == "..") {
        bail!(
            "radius: secret {:?}: a relative path without '..'",
            s.secret
        );
    }
    let f = dir.join(&s.secret);
    let text = std::fs::read(&f).with_context(|| format!("radius secret {}", f.display()))?;
    let secret: Vec<u8> = text.split(|b| *b == b'\n').next().unwrap_or(&[]).to_vec();
    if secret.is_empty() {
        bail!("radius secret {}: empty first line", f.display());
    }
    Ok(Server {
        address,
        secret,
        require_ma: false,
    })
}

fn vlan(raw: &VpnAuth, d: &ramux_contract::vpn::VlanDaemon) -> Result<Vlan> {
    if !(1..=4094).contains(&d.vlan) {
        bail!("vlan id outside 1..=4094");
    }
    let network = Net::parse(&d.network)
        .with_context(|| format!("network {:?}: want a.b.c.d/prefix", d.network))?;
    let reserved = d
        .reserved
        .iter()
        .map(|r| {
            r.parse()
                .with_context(|| format!("reserved {r:?}: want a.b.c.d"))
        })
        .collect::<Result<Vec<Ipv4Addr>>>()?;
    for (what, n) in [("tun", &d.tun), ("leg", &d.leg)] {
        if n.is_empty() || n.len() > 15 || !n.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            bail!("{what} {n:?}: not an interface name");
        }
    }
    Ok(Vlan {
        vlan: d.vlan,
        management: PathBuf::from(&d.management),
        tun: d.tun.clone(),
        leg: d.leg.clone(),
        network,
        reserved,
        nas_identifier: raw.nas_identifier(d.vlan),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets() {
        let n = Net::parse("172.16.10.0/24").unwrap();
        assert_eq!(n.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(n.has_host("172.16.10.130".parse().unwrap()));
        assert!(!n.has_host("172.16.10.0".parse().unwrap()));
        assert!(!n.has_host("172.16.10.255".parse().unwrap()));
        assert!(!n.has_host("172.16.20.130".parse().unwrap()));
        assert_eq!(
            Net::parse("0.0.0.0/0").unwrap().mask(),
            Ipv4Addr::UNSPECIFIED
        );
        assert!(Net::parse("1.2.3.4/33").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("instance = \"vpn1\"\ntimeout_ms = \"x\"\n").unwrap_err();
        assert!(e.starts_with("2:"), "{e}");
    }
}
