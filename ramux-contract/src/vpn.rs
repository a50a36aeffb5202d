//! The VPN appliance's authorisation contract: labwall writes [`VpnAuth`] (TOML, at
//! [`VPN_AUTH_CONF`]) for one VPN instance of the site, and `ramux-vpn-auth` reads it.
//!
//! Why a daemon and not a client-connect script: every VLAN has one single-threaded OpenVPN
//! server. A synchronous script freezes all of that VLAN's users while RADIUS is slow, and the
//! deferred-file variant costs about a second per connect in OpenVPN's polling. Each server is
//! therefore started with `management <socket> unix`, `management-client-auth`,
//! `management-hold` (no user before ramux-vpn-auth is attached; it sends `hold release`) and
//! `auth-user-pass-optional` (else OpenVPN 2.6 refuses certificate-only clients before asking),
//! and ramux-vpn-auth answers its `>CLIENT:CONNECT` events asynchronously (`client-auth` with
//! the RADIUS address, or `client-deny`), adds the /32 route and the proxy-ARP entry on
//! `>CLIENT:ESTABLISHED` and removes them on `>CLIENT:DISCONNECT` (docs/vpn.md,
//! docs/vpn-auth.md).

use serde::{Deserialize, Serialize};

/// Where the file is on a VPN appliance.
pub const VPN_AUTH_CONF: &str = "/etc/ramux/vpn-auth.toml";
/// The directory holding every VLAN server's management socket.
pub const MGMT_DIR: &str = "/run/ramux/vpn";

/// One VPN appliance's authorisation setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnAuth {
    /// This server's instance name in the site (`vpn1`): the RADIUS `NAS-Identifier` prefix.
    pub instance: String,
    /// The site's RADIUS servers, asked in this order (the next on timeout).
    pub radius: Vec<RadiusServer>,
    /// How long one server may take to answer before the next is tried, in milliseconds.
    pub timeout_ms: u64,
    /// Tries per server before moving on.
    pub tries: u32,
    /// One OpenVPN server per VLAN the appliance serves.
    pub daemons: Vec<VlanDaemon>,
}

/// A RADIUS server as the VPN appliance reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusServer {
    /// `address:port` (port 1812 for authentication).
    pub address: String,
    /// The shared secret's file, relative to the secrets directory (`radius/nas/vpn1`); the
    /// secret itself is never in this file.
    pub secret: String,
}

/// One VLAN's OpenVPN server and the interfaces its clients' traffic uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanDaemon {
    /// The 802.1Q VLAN id.
    pub vlan: u16,
    /// The unix socket of the server's management interface (under [`MGMT_DIR`]).
    pub management: String,
    /// The server's tun device (`tun10`): the /32 route of each client points here.
    pub tun: String,
    /// The VLAN leg (`eth0.10`): the proxy-ARP entry of each client is added here, and the
    /// gratuitous ARP sent from it.
    pub leg: String,
    /// The VLAN's network as `address/prefix` (`172.16.10.0/24`): a RADIUS address outside it is
    /// refused.
    pub network: String,
    /// Addresses in the VLAN that no client may be given (the routers, the VIP, the VPN legs,
    /// the DHCP range is checked by the compiler), as `a.b.c.d` strings.
    pub reserved: Vec<String>,
}

impl VpnAuth {
    /// `NAS-Identifier` of a VLAN's requests: `<instance>-vlan<vid>`.
    pub fn nas_identifier(&self, vlan: u16) -> String {
        format!("{}-vlan{vlan}", self.instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let a = VpnAuth {
            instance: "vpn1".into(),
            radius: vec![RadiusServer {
                address: "172.16.10.10:1812".into(),
                secret: "radius/nas/vpn1".into(),
            }],
            timeout_ms: 2000,
            tries: 2,
            daemons: vec![VlanDaemon {
                vlan: 10,
                management: format!("{MGMT_DIR}/vlan10.sock"),
                tun: "tun10".into(),
                leg: "eth0.10".into(),
                network: "172.16.10.0/24".into(),
                reserved: vec!["172.16.10.1".into()],
            }],
        };
        let t = toml::to_string(&a).unwrap();
        assert_eq!(toml::from_str::<VpnAuth>(&t).unwrap(), a);
        assert_eq!(a.nas_identifier(10), "vpn1-vlan10");
        assert!(toml::from_str::<VpnAuth>(&format!("{t}\nextra = 1\n")).is_err());
    }
}
