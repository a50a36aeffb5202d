//! ACPI events over generic netlink (family `acpi_event`, group `acpi_mc_group`): the power
//! button path that needs only the `button` module, not `evdev` (a module in Debian's kernel,
//! CONFIG_INPUT_EVDEV=m). The `button` driver reports each press both as KEY_POWER on its input
//! device and as an `acpi_genl_event` with device class `button/power`
//! (drivers/acpi/button.c, acpi_bus_generate_netlink_event).
//!
//! Pure encoding/decoding of the few netlink messages involved; sockets live in `sys`.

/// `GENL_ID_CTRL`: the generic netlink controller's message type.
pub const GENL_ID_CTRL: u16 = 0x10;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
/// `ACPI_GENL_ATTR_EVENT` in drivers/acpi/event.c.
const ACPI_GENL_ATTR_EVENT: u16 = 1;
/// Attribute type bits that are flags, not part of the type.
const NLA_TYPE_MASK: u16 = 0x3fff;

pub const FAMILY: &str = "acpi_event";
pub const GROUP: &str = "acpi_mc_group";

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `CTRL_CMD_GETFAMILY` request for `name`, sequence `seq`.
pub fn getfamily_request(name: &str, seq: u32) -> Vec<u8> {
    let mut attr = Vec::new();
    let payload_len = name.len() + 1;
    attr.extend_from_slice(&((4 + payload_len) as u16).to_ne_bytes());
    attr.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    attr.extend_from_slice(name.as_bytes());
    attr.push(0);
    attr.resize(align4(attr.len()), 0);
    let len = 16 + 4 + attr.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]);
    m.extend_from_slice(&attr);
    m
}

/// One netlink message: type and the bytes after the 16-byte header.
struct Msg<'a> {
    kind: u16,
    body: &'a [u8],
}

/// Splits a datagram into netlink messages, stopping at the first malformed header.
fn messages(buf: &[u8]) -> Vec<Msg<'_>> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len().saturating_sub(off) >= 16 {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        out.push(Msg {
            kind,
            body: &buf[off + 16..off + len],
        });
        off += align4(len);
    }
    out
}

/// Iterates over netlink attributes: (type without flag bits, payload).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

fn cstr(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

/// Family id and multicast group id from a `CTRL_CMD_NEWFAMILY` reply; `Err` carries the
/// kernel's errno when it answered with NLMSG_ERROR (ENOENT: no ACPI netlink in this kernel).
pub fn parse_family_reply(buf: &[u8], group: &str) -> Result<(u16, u32), String> {
    for m in messages(buf) {
        if m.kind == NLMSG_ERROR {
            let errno = m
                .body
                .get(..4)
                .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                .unwrap_or(0);
            // i64: -i32::MIN overflowed (found by the acpi_netlink fuzz target).
            return Err(format!("netlink error {}", -i64::from(errno)));
        }
        if m.kind != GENL_ID_CTRL || m.body.len() < 4 {
            continue;
        }
        let mut family = None;
        let mut gid = None;
        for (kind, val) in attrs(&m.body[4..]) {
            match kind {
                CTRL_ATTR_FAMILY_ID if val.len() >= 2 => {
                    family = Some(u16::from_ne_bytes([val[0], val[1]]))
                }
                CTRL_ATTR_MCAST_GROUPS => {
                    for (_, grp) in attrs(val) {
                        let fields = attrs(grp);
                        let name = fields
                            .iter()
                            .find(|(k, _)| *k == CTRL_ATTR_MCAST_GRP_NAME)
                            .map(|(_, v)| cstr(v));
                        let id = fields
                            .iter()
                            .find(|(k, _)| *k == CTRL_ATTR_MCAST_GRP_ID)
                            .and_then(|(_, v)| v.get(..4))
                            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()));
                        if name == Some(group.as_bytes()) {
                            gid = id;
                        }
                    }
                }
                _ => {}
            }
        }
        return match (family, gid) {
            (Some(f), Some(g)) => Ok((f, g)),
            (None, _) => Err("reply without family id".into()),
            (_, None) => Err(format!("family has no multicast group {group}")),
        };
    }
    Err("no reply to CTRL_CMD_GETFAMILY".into())
}

/// One `struct acpi_genl_event` (packed: class[20], bus_id[15], type u32, data u32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiEvent {
    pub device_class: String,
    pub bus_id: String,
    pub kind: u32,
    pub data: u32,
}

/// ACPI events in a datagram received on the `acpi_mc_group` of family `family`.
pub fn parse_events(buf: &[u8], family: u16) -> Vec<AcpiEvent> {
    let mut out = Vec::new();
    for m in messages(buf) {
        if m.kind != family || m.body.len() < 4 {
            continue;
        }
        for (kind, v) in attrs(&m.body[4..]) {
            if kind != ACPI_GENL_ATTR_EVENT || v.len() < 43 {
                continue;
            }
            out.push(AcpiEvent {
                device_class: String::from_utf8_lossy(cstr(&v[..20])).into_owned(),
                bus_id: String::from_utf8_lossy(cstr(&v[20..35])).into_owned(),
                kind: u32::from_ne_bytes(v[35..39].try_into().unwrap()),
                data: u32::from_ne_bytes(v[39..43].try_into().unwrap()),
            });
        }
    }
    out
}

/// True for the power button (`button/power`; QEMU's fixed-feature button is LNXPWRBN:00).
pub fn is_power_button(e: &AcpiEvent) -> bool {
    e.device_class == "button/power"
}

/// Fuzz body: arbitrary datagrams never panic the decoders.
pub fn fuzz_decode(data: &[u8]) {
    let _ = parse_family_reply(data, GROUP);
    let family = data.first().copied().unwrap_or(0x1a) as u16;
    for e in parse_events(data, family) {
        assert!(e.device_class.len() <= 20 * 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz/acpi_netlink found it): an NLMSG_ERROR carrying i32::MIN as its
    /// errno panicked negating it.
    #[test]
    fn an_error_reply_with_errno_i32_min_is_an_error_not_a_panic() {
        let crash = include_bytes!("../fuzz/seeds/acpi_netlink/regress-errno-i32-min");
        assert_eq!(
            parse_family_reply(crash, GROUP),
            Err("netlink error 2147483648".to_string())
        );
        fuzz_decode(crash);
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        a.resize(align4(a.len()), 0);
        a
    }

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn request_layout() {
        let r = getfamily_request(FAMILY, 7);
        assert_eq!(r.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(r[..4].try_into().unwrap()) as usize,
            r.len()
        );
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), GENL_ID_CTRL);
        assert_eq!(r[16], CTRL_CMD_GETFAMILY);
        let a = attrs(&r[20..]);
        assert_eq!(a, vec![(CTRL_ATTR_FAMILY_NAME, &b"acpi_event\0"[..])]);
    }

    fn family_reply(groups: &[(&str, u32)]) -> Vec<u8> {
        let mut body = vec![1, 2, 0, 0];
        body.extend(attr(CTRL_ATTR_FAMILY_NAME, b"acpi_event\0"));
        body.extend(attr(CTRL_ATTR_FAMILY_ID, &0x1au16.to_ne_bytes()));
        let mut nested = Vec::new();
        for (i, (name, id)) in groups.iter().enumerate() {
            let mut g = attr(CTRL_ATTR_MCAST_GRP_NAME, format!("{name}\0").as_bytes());
            g.extend(attr(CTRL_ATTR_MCAST_GRP_ID, &id.to_ne_bytes()));
            nested.extend(attr(i as u16 + 1, &g));
        }
        body.extend(attr(CTRL_ATTR_MCAST_GROUPS | 0x8000, &nested));
        msg(GENL_ID_CTRL, &body)
    }

    #[test]
    fn parses_family_and_group() {
        assert_eq!(
            parse_family_reply(&family_reply(&[("other", 3), (GROUP, 9)]), GROUP),
            Ok((0x1a, 9))
        );
        assert!(parse_family_reply(&family_reply(&[("other", 3)]), GROUP)
            .unwrap_err()
            .contains("no multicast group"));
        let err = msg(NLMSG_ERROR, &(-2i32).to_ne_bytes());
        assert_eq!(
            parse_family_reply(&err, GROUP),
            Err("netlink error 2".into())
        );
        assert!(parse_family_reply(&[], GROUP).is_err());
    }

    fn event(class: &str, bus: &str) -> Vec<u8> {
        let mut ev = vec![0u8; 43];
        ev[..class.len()].copy_from_slice(class.as_bytes());
        ev[20..20 + bus.len()].copy_from_slice(bus.as_bytes());
        ev[35..39].copy_from_slice(&0x80u32.to_ne_bytes());
        ev[39..43].copy_from_slice(&1u32.to_ne_bytes());
        let mut body = vec![1, 1, 0, 0];
        body.extend(attr(ACPI_GENL_ATTR_EVENT, &ev));
        msg(0x1a, &body)
    }

    #[test]
    fn decodes_power_button_event() {
        let evs = parse_events(&event("button/power", "LNXPWRBN:00"), 0x1a);
        assert_eq!(
            evs,
            vec![AcpiEvent {
                device_class: "button/power".into(),
                bus_id: "LNXPWRBN:00".into(),
                kind: 0x80,
                data: 1
            }]
        );
        assert!(is_power_button(&evs[0]));
        let lid = parse_events(&event("button/lid", "PNP0C0D:00"), 0x1a);
        assert!(!is_power_button(&lid[0]));
        assert!(
            parse_events(&event("button/power", "x"), 0x1b).is_empty(),
            "other family ignored"
        );
    }

    #[test]
    fn truncated_input_is_ignored() {
        let full = event("button/power", "LNXPWRBN:00");
        for n in 0..full.len() {
            assert!(parse_events(&full[..n], 0x1a).is_empty());
            fuzz_decode(&full[..n]);
        }
        fuzz_decode(&family_reply(&[(GROUP, 1)]));
    }
}
