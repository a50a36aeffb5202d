//! Linux evdev decoding: finds KEY_POWER presses in bytes read from `/dev/input/event*`, and
//! reads the key capability bitmap from sysfs to pick which devices to watch.
//!
//! The ACPI `button` driver reports the power button (QEMU `system_powerdown`) as an input
//! device; `evdev` gives it a `/dev/input/eventN` node.

/// `EV_KEY` from linux/input-event-codes.h.
pub const EV_KEY: u16 = 0x01;
/// `KEY_POWER` from linux/input-event-codes.h.
pub const KEY_POWER: u16 = 116;
/// `sizeof(struct input_event)` on 64-bit Linux: timeval (16) + type (2) + code (2) + value (4).
pub const EVENT_SIZE: usize = 24;

/// One decoded `struct input_event` (timestamp dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

/// Decodes whole events; a trailing partial event is ignored (evdev never returns one).
pub fn decode(buf: &[u8]) -> impl Iterator<Item = Event> + '_ {
    buf.chunks_exact(EVENT_SIZE).map(|c| Event {
        kind: u16::from_ne_bytes([c[16], c[17]]),
        code: u16::from_ne_bytes([c[18], c[19]]),
        value: i32::from_ne_bytes([c[20], c[21], c[22], c[23]]),
    })
}

/// True when the buffer holds a KEY_POWER press (value 1) or autorepeat (2).
pub fn power_pressed(buf: &[u8]) -> bool {
    decode(buf).any(|e| e.kind == EV_KEY && e.code == KEY_POWER && e.value >= 1)
}

/// Tests bit `code` in a sysfs capability bitmap such as
/// `/sys/class/input/event0/device/capabilities/key` (`"10000000000000 0"`): space-separated
/// hex words of `unsigned long`, most significant first.
pub fn has_key(bitmap: &str, code: u16) -> bool {
    let words: Vec<&str> = bitmap.split_whitespace().rev().collect();
    let (word, bit) = (usize::from(code) / 64, u32::from(code) % 64);
    words
        .get(word)
        .and_then(|w| u64::from_str_radix(w, 16).ok())
        .is_some_and(|w| w >> bit & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&code.to_ne_bytes());
        v.extend_from_slice(&value.to_ne_bytes());
        v
    }

    #[test]
    fn detects_power_press_among_syn() {
        let mut buf = ev(EV_KEY, KEY_POWER, 1);
        buf.extend(ev(0, 0, 0)); // EV_SYN
        assert!(power_pressed(&buf));
        assert_eq!(decode(&buf).count(), 2);
    }

    #[test]
    fn ignores_release_other_keys_and_partial() {
        let mut buf = ev(EV_KEY, KEY_POWER, 0);
        buf.extend(ev(EV_KEY, 30, 1));
        buf.extend(ev(4, KEY_POWER, 1)); // EV_MSC with same code
        assert!(!power_pressed(&buf));
        let press = ev(EV_KEY, KEY_POWER, 1);
        assert!(!power_pressed(&press[..EVENT_SIZE - 1]));
    }

    #[test]
    fn capability_bitmap() {
        // ACPI "Power Button" device in QEMU: only KEY_POWER (bit 116 = word 1, bit 52).
        assert!(has_key("10000000000000 0", KEY_POWER));
        assert!(!has_key("0", KEY_POWER));
        assert!(!has_key("", KEY_POWER));
        assert!(!has_key("zz 0", KEY_POWER));
        // bit 30 (KEY_A) in word 0
        assert!(has_key("40000000", 30));
    }
}
