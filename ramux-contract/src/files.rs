//! The `/etc/ramux` file set: what vbuild puts into an image and ramux-init applies at boot, in
//! this order, each only when present. Paths are absolute as PID 1 sees them; vbuild writes them
//! relative to the image root ([`in_image`]).

/// The appliance description ([`crate::appliance`]); always present.
pub const APPLIANCE_TOML: &str = "/etc/ramux/appliance.toml";
/// Kernel settings, `key = value` lines (a `-` before the key ignores its failure), from labwall.
pub const SYSCTL_CONF: &str = "/etc/ramux/sysctl.conf";
/// Interfaces, VLANs, addresses and routes as one `ip -batch` file, from labwall.
pub const NETWORK_IP: &str = "/etc/ramux/network.ip";
/// The nftables ruleset, loaded with `nft -f`, from labwall.
pub const RULESET_NFT: &str = "/etc/ramux/ruleset.nft";
/// The VRRP configuration vrrpd runs on (keepalived syntax), from labwall.
pub const KEEPALIVED_CONF: &str = "/etc/keepalived/keepalived.conf";

/// The dns appliance's dnsmasq configuration (DHCP and authoritative DNS of its instance), from
/// labwall; run by the profile's service, not applied by ramux-init.
pub const DNSMASQ_CONF: &str = "/etc/ramux/dnsmasq.conf";
/// The routers' DHCP relay (dnsmasq relay-only), from labwall when the site relays a VLAN; run
/// by the profile's service, which vbuild leaves out of images without the file.
pub const DHCP_RELAY_CONF: &str = "/etc/ramux/dhcp-relay.conf";

/// The files `ramux keep commit` may save on the site key and boot may restore from it (one
/// absolute path per line, a trailing `/` for a directory's files), from the profile's `keep`
/// list (docs/keep.md).
pub const KEEP_LIST: &str = "/etc/ramux/keep.list";

/// The network files labwall compiles for a role, in the order ramux-init applies them.
pub const NETWORK_FILES: [&str; 3] = [SYSCTL_CONF, NETWORK_IP, RULESET_NFT];

/// `path` relative to the image root (`etc/ramux/network.ip`), as archive entries are named.
pub fn in_image(path: &str) -> &str {
    path.trim_start_matches('/')
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_paths_are_relative() {
        assert_eq!(super::in_image(super::NETWORK_IP), "etc/ramux/network.ip");
        assert_eq!(
            super::in_image(super::KEEPALIVED_CONF),
            "etc/keepalived/keepalived.conf"
        );
    }
}
