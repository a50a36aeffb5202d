//! The Access-Request ramux-vpn-auth sends for a connecting VPN client, on top of the shared
//! RADIUS wire format ([`ramux_radius`], re-exported here: reply decoding and its checks).

pub use ramux_radius::*;

/// What one Access-Request says about a connecting VPN client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub user_name: String,
    pub nas_identifier: String,
    pub calling_station_id: String,
}

/// Encodes an Access-Request, signed (Message-Authenticator first).
pub fn encode_request(
    id: u8,
    authenticator: &[u8; 16],
    req: &Request,
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut b = Builder::request(id, authenticator);
    b.str(USER_NAME, &req.user_name)?
        .str(NAS_IDENTIFIER, &req.nas_identifier)?
        .u32(NAS_PORT_TYPE, PORT_TYPE_VIRTUAL)
        .u32(SERVICE_TYPE, SERVICE_FRAMED)
        .str(CALLING_STATION_ID, &req.calling_station_id)?;
    b.finish(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_signed_and_readable() {
        let r = Request {
            user_name: "alice".into(),
            nas_identifier: "vpn1-vlan10".into(),
            calling_station_id: "127.0.0.1".into(),
        };
        let p = encode_request(9, &[7; 16], &r, b"s3cret").unwrap();
        assert!(request_ma_ok(&p, b"s3cret"));
        assert_eq!(peek_request(&p), Some((9, [7; 16], "alice".into())));
        let long = Request {
            user_name: "x".repeat(254),
            ..r
        };
        assert_eq!(
            encode_request(1, &[7; 16], &long, b"s3cret"),
            Err(EncodeError::BadString(USER_NAME))
        );
    }
}
