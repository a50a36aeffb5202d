use super::*;

const S: &[u8] = b"s3cret";
const RA: [u8; 16] = [7; 16];

fn accept(attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    encode_reply(ACCESS_ACCEPT, 9, &RA, attrs, S, true)
}

fn md5_block(prev: &[u8]) -> [u8; 16] {
    let mut m = Md5::new();
    m.update(S);
    m.update(prev);
    m.finalize().into()
}

#[test]
fn request_is_signed_and_readable() {
    let mut b = Builder::request(9, &RA);
    b.str(USER_NAME, "alice").unwrap().u32(NAS_PORT, 3);
    let p = b.finish(S).unwrap();
    assert!(request_ma_ok(&p, S));
    assert!(!request_ma_ok(&p, b"other"));
    assert_eq!(peek_request(&p), Some((9, RA, "alice".into())));
    let mut b = Builder::request(1, &RA);
    assert_eq!(
        b.str(USER_NAME, &"x".repeat(254)).err(),
        Some(EncodeError::BadString(USER_NAME))
    );
}

#[test]
fn password_hiding_round_trips() {
    // Un-hiding is the same XOR chain over the cipher blocks.
    let pw = b"52-54-00-10-00-50";
    let h = hide_password(pw, &RA, S);
    assert_eq!(h.len(), 32);
    let mut prev = RA.to_vec();
    let mut plain = Vec::new();
    for c in h.chunks(16) {
        plain.extend(c.iter().zip(md5_block(&prev)).map(|(x, k)| x ^ k));
        prev = c.to_vec();
    }
    assert_eq!(&plain[..pw.len()], pw);
    assert!(plain[pw.len()..].iter().all(|&b| b == 0));
}

#[test]
fn eap_is_split_and_joined() {
    let eap: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let mut b = Builder::request(4, &RA);
    b.eap(&eap).unwrap().bytes(STATE, b"st").unwrap();
    let p = b.finish(S).unwrap();
    // 253 + 253 + 94: three attributes.
    assert_eq!(p.len(), 20 + 18 + 3 * 2 + 600 + 4);
    let seen = peek(&p).unwrap();
    assert_eq!(seen.eap.as_deref(), Some(&eap[..]));
    assert_eq!(seen.state.as_deref(), Some(&b"st"[..]));
    let reply = encode_reply(
        ACCESS_CHALLENGE,
        9,
        &RA,
        &[
            (EAP_MESSAGE, eap[..253].to_vec()),
            (EAP_MESSAGE, eap[253..506].to_vec()),
            (EAP_MESSAGE, eap[506..].to_vec()),
            (STATE, b"abc".to_vec()),
        ],
        S,
        true,
    );
    let r = decode_reply(&reply, 9, &RA, S, false).unwrap();
    assert_eq!(r.code, Code::Challenge);
    assert_eq!(r.attrs.eap.as_deref(), Some(&eap[..]));
    assert_eq!(r.attrs.state.as_deref(), Some(&b"abc"[..]));
    let mut big = Builder::request(4, &RA);
    big.eap(&vec![0; MAX_PACKET]).unwrap();
    assert_eq!(big.finish(S).err(), Some(EncodeError::TooLong));
}

#[test]
fn eap_without_message_authenticator_refused() {
    let p = encode_reply(
        ACCESS_CHALLENGE,
        9,
        &RA,
        &[(EAP_MESSAGE, vec![1, 2, 0, 4])],
        S,
        false,
    );
    assert_eq!(
        decode_reply(&p, 9, &RA, S, false),
        Err(ReplyError::MissingMessageAuthenticator)
    );
}

#[test]
fn accept_with_rfc3580_attributes() {
    let p = accept(&[
        (FRAMED_IP_ADDRESS, vec![172, 16, 10, 130]),
        (SESSION_TIMEOUT, 3600u32.to_be_bytes().to_vec()),
        (TUNNEL_TYPE, vec![0, 0, 0, 13]),
        (TUNNEL_MEDIUM_TYPE, vec![0, 0, 0, 6]),
        (TUNNEL_PRIVATE_GROUP_ID, b"\x0010".to_vec()),
        (99, vec![1, 2, 3]),
    ]);
    let r = decode_reply(&p, 9, &RA, S, true).unwrap();
    assert_eq!(r.code, Code::Accept);
    assert_eq!(r.attrs.framed_ip, Some(Ipv4Addr::new(172, 16, 10, 130)));
    assert_eq!(r.attrs.session_timeout, Some(3600));
    assert_eq!(r.attrs.group_id.as_deref(), Some(&b"10"[..]));
    assert_eq!(r.attrs.vlan(), Some(Ok(10)));
    let untyped = Attrs {
        group_id: Some(b"10".to_vec()),
        ..Attrs::default()
    };
    assert_eq!(untyped.vlan(), Some(Err(())));
    assert_eq!(Attrs::default().vlan(), None);
}

#[test]
fn forged_and_garbled_replies_refused() {
    let good = accept(&[(SESSION_TIMEOUT, vec![0, 0, 0, 5])]);
    let dec = |p: &[u8], id, s, req| decode_reply(p, id, &RA, s, req);
    assert_eq!(
        dec(&good, 9, b"wrong", true),
        Err(ReplyError::BadResponseAuthenticator)
    );
    assert_eq!(dec(&good, 8, S, true), Err(ReplyError::WrongId));
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        dec(&flipped, 9, S, true),
        Err(ReplyError::BadResponseAuthenticator)
    );
    let no_ma = encode_reply(ACCESS_ACCEPT, 9, &RA, &[], S, false);
    assert_eq!(
        dec(&no_ma, 9, S, true),
        Err(ReplyError::MissingMessageAuthenticator)
    );
    assert!(dec(&no_ma, 9, S, false).is_ok());
    assert_eq!(dec(&good[..19], 9, S, true), Err(ReplyError::BadLength));
    let dup = accept(&[(SESSION_TIMEOUT, vec![1; 4]), (SESSION_TIMEOUT, vec![2; 4])]);
    assert_eq!(
        dec(&dup, 9, S, true),
        Err(ReplyError::Duplicate(SESSION_TIMEOUT))
    );
    let short = accept(&[(SESSION_TIMEOUT, vec![1; 3])]);
    assert_eq!(
        dec(&short, 9, S, true),
        Err(ReplyError::BadAttribute(SESSION_TIMEOUT))
    );
}

#[test]
fn message_authenticator_checked_with_valid_response_authenticator() {
    // A correct Response-Authenticator over a wrong Message-Authenticator: someone who knows
    // the secret's MD5 trick but not HMAC, or a corrupting middlebox after signing.
    let mut p = vec![ACCESS_ACCEPT, 9, 0, 38];
    p.extend_from_slice(&RA);
    p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
    p.extend_from_slice(&[0xab; 16]);
    let mut h = Md5::new();
    h.update(&p);
    h.update(S);
    let a: [u8; 16] = h.finalize().into();
    p[4..20].copy_from_slice(&a);
    assert_eq!(
        decode_reply(&p, 9, &RA, S, true),
        Err(ReplyError::BadMessageAuthenticator)
    );
}

#[test]
fn fuzz_body_survives_edges() {
    for d in [
        &[][..],
        &[0; 19],
        &[2, 7, 0, 20],
        &[79, 2, 80, 3, 1],
        &[0xff; 300],
    ] {
        fuzz_reply(d);
    }
    assert!(fuzz_reply(&[24, 5, 1, 2, 3]));
}
