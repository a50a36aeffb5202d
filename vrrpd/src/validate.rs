//! Receive validation of an advertisement against the local instance, in keepalived's order
//! (docs/vrrp.md, Receive checks), as a pure function: every drop has its own reason so the
//! daemon can count it and report configuration mismatches loudly instead of sliding into a
//! silent split brain.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::InstanceConfig;
use crate::wire::{self, ChecksumForm, Family, Packet, Version, AUTH_PASS, MCAST_V4};

/// What the receive path knows besides the VRRP bytes.
#[derive(Debug, Clone, Copy)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 total length field minus the header length (None for IPv6: the kernel checks it).
    pub ip_payload_len: Option<usize>,
}

/// Why a packet was dropped. Each maps to a status counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Drop {
    /// Too short or length does not match the address count.
    BadLength,
    /// TTL / hop limit not 255 (multicast mode only).
    BadTtl,
    WrongVersion {
        got: u8,
    },
    /// Auth type differs from ours.
    AuthTypeMismatch {
        got: u8,
    },
    /// PASS bytes differ.
    BadAuth,
    /// v2: advert interval differs from ours (RFC 3768 7.1).
    IntervalMismatch {
        got_cs: u16,
    },
    BadType,
    /// Address count differs from our VIP count.
    VipCountMismatch {
        got: u8,
    },
    BadChecksum,
    /// One of our VIPs is missing from the advert.
    VipMismatch,
    /// Unicast mode and the source is not a configured peer.
    NotPeer,
}

impl Drop {
    /// Is this a configuration mismatch with the peer (to be reported loudly)?
    pub fn is_config_mismatch(&self) -> bool {
        matches!(
            self,
            Drop::WrongVersion { .. }
                | Drop::AuthTypeMismatch { .. }
                | Drop::BadAuth
                | Drop::IntervalMismatch { .. }
                | Drop::VipCountMismatch { .. }
                | Drop::VipMismatch
        )
    }
}

/// Which v3/IPv4 checksum form the peer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CsumForm {
    /// v2, IPv6 (kernel-checked), or not applicable.
    Standard,
    /// keepalived 2.2.7: IPv4 pseudo-header.
    Ipv4Pseudo,
    /// RFC 9568: message only.
    MessageOnly,
    /// Old keepalived unicast: pseudo-header with 224.0.0.18 as destination.
    OldUnicast,
}

/// A packet that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valid {
    pub priority: u8,
    pub interval: Duration,
    pub csum: CsumForm,
}

/// Validate `msg` (the VRRP message, after the IP header) for instance `cfg`. The VRID has
/// already been used to find `cfg`.
pub fn validate(cfg: &InstanceConfig, msg: &[u8], meta: &RxMeta) -> Result<Valid, Drop> {
    let family = Family::of(&meta.src);
    let p = Packet::new_unchecked(msg);
    if msg.len() < 8 {
        return Err(Drop::BadLength);
    }
    // 3. exact length from the count (no padding)
    match p.check_len(family) {
        Ok(()) => {}
        Err(wire::Error::BadVersion(v)) => return Err(Drop::WrongVersion { got: v }),
        Err(wire::Error::V2OverIpv6) => return Err(Drop::WrongVersion { got: 2 }),
        Err(_) => return Err(Drop::BadLength),
    }
    // 4. TTL in multicast mode
    if cfg.unicast_peers.is_empty() && meta.ttl != 255 {
        return Err(Drop::BadTtl);
    }
    // 5. version
    if p.version_number() != cfg.version.number() {
        return Err(Drop::WrongVersion {
            got: p.version_number(),
        });
    }
    // 6. v2 auth and interval
    if cfg.version == Version::V2 {
        let want = if cfg.auth_pass.is_some() {
            AUTH_PASS
        } else {
            0
        };
        if p.auth_type() != want {
            return Err(Drop::AuthTypeMismatch { got: p.auth_type() });
        }
        if let Some(pass) = cfg.auth_pass {
            // Constant time, as keepalived does.
            let got = p.auth_data();
            let diff = pass
                .iter()
                .zip(got.iter())
                .fold(0u8, |a, (x, y)| a | (x ^ y));
            if diff != 0 {
                return Err(Drop::BadAuth);
            }
        }
        if u16::from(p.adver_int_v2()) != cfg.wire_adver_int() {
            return Err(Drop::IntervalMismatch {
                got_cs: u16::from(p.adver_int_v2()) * 100,
            });
        }
    }
    // 7. type
    if p.msg_type() != wire::TYPE_ADVERTISEMENT {
        return Err(Drop::BadType);
    }
    // 8. count
    if usize::from(p.count()) != cfg.vips.len() {
        return Err(Drop::VipCountMismatch { got: p.count() });
    }
    // 9. IPv4 total length
    if let Some(l) = meta.ip_payload_len {
        if l != msg.len() {
            return Err(Drop::BadLength);
        }
    }
    // 10. checksum
    let csum = match (cfg.version, meta.src, meta.dst) {
        (Version::V2, _, _) => {
            if !p.verify_checksum(ChecksumForm::MessageOnly) {
                return Err(Drop::BadChecksum);
            }
            CsumForm::Standard
        }
        (Version::V3, IpAddr::V4(src), IpAddr::V4(dst)) => {
            if p.verify_checksum(ChecksumForm::Ipv4Pseudo { src, dst }) {
                CsumForm::Ipv4Pseudo
            } else if p.verify_checksum(ChecksumForm::MessageOnly) {
                CsumForm::MessageOnly
            } else if dst != MCAST_V4
                && p.verify_checksum(ChecksumForm::Ipv4Pseudo { src, dst: MCAST_V4 })
            {
                CsumForm::OldUnicast
            } else {
                return Err(Drop::BadChecksum);
            }
        }
        (Version::V3, IpAddr::V6(src), IpAddr::V6(dst)) => {
            // The kernel verifies it when IPV6_CHECKSUM is set; checking again costs nothing.
            if !p.verify_checksum(ChecksumForm::Ipv6Pseudo { src, dst }) {
                return Err(Drop::BadChecksum);
            }
            CsumForm::Standard
        }
        _ => return Err(Drop::BadLength),
    };
    // 12. every configured VIP must be present
    let n = usize::from(p.count());
    for v in &cfg.vips {
        if !(0..n).any(|i| p.addr(family, i) == v.addr) {
            return Err(Drop::VipMismatch);
        }
    }
    // 13. unicast source must be a peer
    if !cfg.unicast_peers.is_empty() && !cfg.unicast_peers.contains(&meta.src) {
        return Err(Drop::NotPeer);
    }
    let interval = match cfg.version {
        Version::V2 => Duration::from_secs(u64::from(p.adver_int_v2())),
        Version::V3 => Duration::from_millis(10 * u64::from(p.max_adver_int_v3())),
    };
    Ok(Valid {
        priority: p.priority(),
        interval,
        csum,
    })
}

/// Fuzz body: never panics on any input, whatever the configuration.
pub fn fuzz_one(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let fam = if data[0] & 1 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    let msg = &data[1..];
    if let Ok(p) = Packet::new_checked(msg, fam) {
        if let Ok(r) = wire::Repr::parse(&p, fam) {
            let form = match fam {
                Family::V4 => ChecksumForm::MessageOnly,
                Family::V6 => ChecksumForm::Ipv6Pseudo {
                    src: std::net::Ipv6Addr::LOCALHOST,
                    dst: wire::MCAST_V6,
                },
            };
            let b = r.to_bytes(form);
            assert_eq!(b.len(), msg.len());
        }
    }
    let _ = wire::Ipv4Header::parse(msg);
    let _ = wire::Arp::parse_frame(msg);
    for cfg in fuzz_configs() {
        let src: IpAddr = if fam == Family::V4 {
            "10.0.0.3".parse().unwrap()
        } else {
            "fe80::3".parse().unwrap()
        };
        let dst: IpAddr = if fam == Family::V4 {
            MCAST_V4.into()
        } else {
            wire::MCAST_V6.into()
        };
        let _ = validate(
            cfg,
            msg,
            &RxMeta {
                src,
                dst,
                ttl: 255,
                ip_payload_len: Some(msg.len()),
            },
        );
    }
}

fn fuzz_configs() -> &'static [InstanceConfig] {
    use std::sync::OnceLock;
    static C: OnceLock<Vec<InstanceConfig>> = OnceLock::new();
    C.get_or_init(|| {
        let text = "vrrp_instance a {\n interface e\n virtual_router_id 1\n authentication {\n auth_type PASS\n auth_pass x\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n\
                    vrrp_instance b {\n interface e\n virtual_router_id 2\n version 3\n virtual_ipaddress {\n 10.0.0.1\n 10.0.0.2\n }\n}\n\
                    vrrp_instance c {\n interface e\n virtual_router_id 3\n virtual_ipaddress {\n fe80::1\n }\n}\n";
        crate::config::parse_str(text, std::path::Path::new("fuzz"))
            .expect("fuzz config")
            .instances
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::wire::{pass_bytes, Repr};
    use std::path::Path;

    fn cfg(extra: &str, version: u8) -> InstanceConfig {
        parse_str(
            &format!("vrrp_instance a {{\n interface e\n virtual_router_id 100\n version {version}\n {extra}\n virtual_ipaddress {{\n 10.10.0.1\n 10.20.0.1\n }}\n}}\n"),
            Path::new("t"),
        )
        .unwrap()
        .instances
        .remove(0)
    }
    fn meta(ttl: u8) -> RxMeta {
        RxMeta {
            src: "10.10.0.2".parse().unwrap(),
            dst: MCAST_V4.into(),
            ttl,
            ip_payload_len: None,
        }
    }
    fn adv(version: Version, int: u16, pass: Option<&str>) -> Repr {
        Repr {
            version,
            vrid: 100,
            priority: 150,
            adver_int: int,
            addrs: vec!["10.20.0.1".parse().unwrap(), "10.10.0.1".parse().unwrap()],
            auth_type: if pass.is_some() { 1 } else { 0 },
            auth_data: pass.map(pass_bytes).unwrap_or([0; 8]),
            rsvd: 0,
        }
    }
    const PASS: &str = "authentication {\n auth_type PASS\n auth_pass s3cr3tpw\n }";

    #[test]
    fn v2_pass_accept_and_each_drop() {
        let c = cfg(PASS, 2);
        let ok = adv(Version::V2, 1, Some("s3cr3tpw")).to_bytes(ChecksumForm::MessageOnly);
        let v = validate(&c, &ok, &meta(255)).unwrap();
        assert_eq!((v.priority, v.interval), (150, Duration::from_secs(1)));
        assert_eq!(validate(&c, &ok, &meta(254)), Err(Drop::BadTtl));
        let bad = adv(Version::V2, 1, Some("wrong")).to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(validate(&c, &bad, &meta(255)), Err(Drop::BadAuth));
        let none = adv(Version::V2, 1, None).to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(
            validate(&c, &none, &meta(255)),
            Err(Drop::AuthTypeMismatch { got: 0 })
        );
        let int = adv(Version::V2, 2, Some("s3cr3tpw")).to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(
            validate(&c, &int, &meta(255)),
            Err(Drop::IntervalMismatch { got_cs: 200 })
        );
        let mut cs = ok.clone();
        cs[7] ^= 1;
        assert_eq!(validate(&c, &cs, &meta(255)), Err(Drop::BadChecksum));
        let mut one = adv(Version::V2, 1, Some("s3cr3tpw"));
        one.addrs.pop();
        let one = one.to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(
            validate(&c, &one, &meta(255)),
            Err(Drop::VipCountMismatch { got: 1 })
        );
        let mut other = adv(Version::V2, 1, Some("s3cr3tpw"));
        other.addrs[0] = "10.99.0.1".parse().unwrap();
        let other = other.to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(validate(&c, &other, &meta(255)), Err(Drop::VipMismatch));
        let v3 = adv(Version::V3, 100, None).to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(
            validate(&c, &v3, &meta(255)),
            Err(Drop::WrongVersion { got: 3 })
        );
        assert_eq!(validate(&c, &ok[..20], &meta(255)), Err(Drop::BadLength));
        let mut m = meta(255);
        m.ip_payload_len = Some(30);
        assert_eq!(validate(&c, &ok, &m), Err(Drop::BadLength));
    }

    #[test]
    fn v3_accepts_both_ipv4_checksum_forms() {
        let c = cfg("", 3);
        let r = adv(Version::V3, 10, None);
        let src = "10.10.0.2".parse().unwrap();
        let pseudo = r.to_bytes(ChecksumForm::Ipv4Pseudo { src, dst: MCAST_V4 });
        assert_eq!(
            validate(&c, &pseudo, &meta(255)).unwrap().csum,
            CsumForm::Ipv4Pseudo
        );
        let msg = r.to_bytes(ChecksumForm::MessageOnly);
        let v = validate(&c, &msg, &meta(255)).unwrap();
        assert_eq!(v.csum, CsumForm::MessageOnly);
        assert_eq!(v.interval, Duration::from_millis(100));
        // v3: a different interval is not a drop (the backup learns it).
        let r2 = adv(Version::V3, 50, None).to_bytes(ChecksumForm::MessageOnly);
        assert!(validate(&c, &r2, &meta(255)).is_ok());
        // Old unicast form: 224.0.0.18 in the pseudo-header of a unicast packet.
        let mut uc = cfg("unicast_peer {\n 10.10.0.2\n }", 3);
        uc.unicast_src_ip = Some("10.10.0.3".parse().unwrap());
        let old = r.to_bytes(ChecksumForm::Ipv4Pseudo { src, dst: MCAST_V4 });
        let m = RxMeta {
            src: src.into(),
            dst: "10.10.0.3".parse().unwrap(),
            ttl: 64,
            ip_payload_len: None,
        };
        assert_eq!(validate(&uc, &old, &m).unwrap().csum, CsumForm::OldUnicast);
        let m2 = RxMeta {
            src: "10.10.0.9".parse().unwrap(),
            ..m
        };
        let from9 = r.to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(validate(&uc, &from9, &m2), Err(Drop::NotPeer));
    }

    #[test]
    fn fuzz_body_survives_samples() {
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0], vec![1, 0x31]];
        let good = adv(Version::V2, 1, Some("x")).to_bytes(ChecksumForm::MessageOnly);
        for cut in 0..good.len() {
            let mut v = vec![0];
            v.extend_from_slice(&good[..cut]);
            inputs.push(v);
        }
        for b in 0..=255u8 {
            inputs.push(vec![b & 1, b, 1, 100, 255, b, 1, 0, 0, 1, 2, 3, 4]);
        }
        for i in &inputs {
            fuzz_one(i);
        }
    }
}
