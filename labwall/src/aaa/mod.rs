//! The site's services for the DNS/DHCP/RADIUS appliances (and the VPN servers that ask them):
//! what the site file says about names, leases and who may join which VLAN. The language side
//! (statements, cross-reference checks) fills [`Services`]; the generators (dnsmasq, FreeRADIUS)
//! only read it, so each is tested from a hand-made value. Secrets are never here: a NAS names
//! its secret, the file itself lives in the site secrets directory (docs/secrets.md).

use std::net::{IpAddr, Ipv4Addr};

pub mod radius;
pub mod reach;

/// A MAC address, as written in the site (`52:54:00:10:00:50`).
pub type MacAddr = [u8; 6];

/// Everything the dns role and the routers' relays need beyond the firewall model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    /// The site's DNS domain (`lab.demo.fr`), authoritative on the dns appliances.
    pub domain: Option<String>,
    /// Upstream resolvers for names outside the domain (none: outside names get no answer).
    pub forwarders: Vec<IpAddr>,
    /// The dns appliances (instances, `dns1`, `dns2`), each a site HOST with its address.
    pub servers: Vec<Server>,
    /// Per VLAN: its DHCP service.
    pub dhcp: Vec<DhcpScope>,
    /// Hosts with a MAC: static lease, A/AAAA and PTR records.
    pub hosts: Vec<StaticHost>,
    /// RADIUS clients (switches, access points, VPN servers).
    pub nas: Vec<Nas>,
    /// MAC-based authorisation: MAC -> VLAN.
    pub mab: Vec<MacVlan>,
    /// 802.1X identities: user name (PEAP) or certificate CN (EAP-TLS) -> VLAN.
    pub dot1x: Vec<Identity>,
    /// VPN users: certificate CN -> VLAN and fixed address.
    pub vpn_users: Vec<VpnUser>,
}

/// One dns appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The instance name (`dns1`): the image is named after it.
    pub name: String,
    pub addr: Ipv4Addr,
    /// The VLAN its leg is in.
    pub vlan: u16,
    pub line: u32,
}

/// DHCP for one VLAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpScope {
    pub vlan: u16,
    /// The dynamic range, first and last address (split between the servers by the generator).
    pub range: (Ipv4Addr, Ipv4Addr),
    pub lease_secs: u32,
    /// Default: the VLAN's VIP.
    pub router: Option<Ipv4Addr>,
    /// Default: the site's DNS servers.
    pub dns: Vec<Ipv4Addr>,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticHost {
    pub name: String,
    pub mac: MacAddr,
    pub v4: Ipv4Addr,
    pub v6: Option<std::net::Ipv6Addr>,
    pub line: u32,
}

/// A RADIUS client. `secret` names a file of the secrets directory (`radius/nas/<secret>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nas {
    pub name: String,
    pub addr: IpAddr,
    pub secret: String,
    /// A VPN server: its requests are VPN authorisations (address + VLAN), not port access.
    pub vpn: bool,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacVlan {
    pub mac: MacAddr,
    pub vlan: u16,
    pub line: u32,
}

/// How an 802.1X identity proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// PEAP-MSCHAPv2: a user name and a password (its NT hash in the secrets directory).
    User,
    /// EAP-TLS: the certificate's CN must equal the identity (`check_cert_cn`).
    CertCn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub kind: IdentityKind,
    pub vlan: u16,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnUser {
    /// The client certificate's CN.
    pub cn: String,
    pub vlan: u16,
    pub addr: Ipv4Addr,
    pub line: u32,
}

/// Where the appliance finds the site secrets at run time (tmpfs, files 0600), and the names
/// inside the secrets directory (docs/secrets.md is the reference of the format).
pub mod secrets {
    /// The secrets directory on a running appliance.
    pub const RUN_DIR: &str = "/run/ramux/secrets";
    /// `radius/nas/<secret name>`: one line, the shared secret of that NAS.
    pub const NAS_DIR: &str = "radius/nas";
    /// `radius/dot1x.nt`: `<user> <32 hex digits of the NT hash>` lines (never clear text).
    pub const DOT1X_NT: &str = "radius/dot1x.nt";
    /// The RADIUS server's certificate, key and the CA that signed the 802.1X clients.
    pub const RADIUS_CERT: &str = "pki/radius.crt";
    pub const RADIUS_KEY: &str = "pki/radius.key";
    pub const CA_CERT: &str = "pki/ca.crt";
}
