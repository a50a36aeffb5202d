//! The MAB Access-Request on top of the shared RADIUS wire format ([`ramux_radius`], re-exported
//! here): User-Name, User-Password (RFC 2865 5.2 hiding) and Calling-Station-Id are the MAC, as
//! switches send them, with NAS-IP-Address, NAS-Port and Service-Type Call-Check.

pub use ramux_radius::*;
use std::net::Ipv4Addr;

/// What one MAB Access-Request says: the MAC (User-Name, User-Password and
/// Calling-Station-Id) and who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `AA-BB-CC-DD-EE-FF`, the form labwall's `rewrite_calling_station_id` produces.
    pub mac: String,
    pub nas_ip: Ipv4Addr,
    pub nas_identifier: String,
    pub nas_port: u32,
}

/// Encodes a MAB Access-Request, signed.
pub fn encode_request(
    id: u8,
    authenticator: &[u8; 16],
    req: &Request,
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut b = Builder::request(id, authenticator);
    b.str(USER_NAME, &req.mac)?
        .password(req.mac.as_bytes(), secret)?
        .str(CALLING_STATION_ID, &req.mac)?
        .ipv4(NAS_IP_ADDRESS, req.nas_ip)
        .str(NAS_IDENTIFIER, &req.nas_identifier)?
        .u32(NAS_PORT, req.nas_port)
        .u32(NAS_PORT_TYPE, PORT_TYPE_ETHERNET)
        .u32(SERVICE_TYPE, SERVICE_CALL_CHECK);
    b.finish(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mab_request_is_signed_and_names_the_mac() {
        let req = Request {
            mac: "52-54-00-10-00-50".into(),
            nas_ip: Ipv4Addr::LOCALHOST,
            nas_identifier: "sw1".into(),
            nas_port: 3,
        };
        let p = encode_request(9, &[7; 16], &req, b"s3cret").unwrap();
        assert!(request_ma_ok(&p, b"s3cret"));
        assert_eq!(
            peek_request(&p),
            Some((9, [7; 16], "52-54-00-10-00-50".into()))
        );
    }
}
