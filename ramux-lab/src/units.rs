//! Durations and memory sizes as people write them in a lab file ("240s", "20ms", "1m30s",
//! "256M", "1G"). A bare number is refused: "240" could be seconds or milliseconds, and a wrong
//! guess is a lab that waits four minutes or gives up at once.

use std::time::Duration;

/// `<n><unit>` repeated (`1m30s`), units `ms`, `s`, `m`, `h`. Zero is allowed (`0s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!("bad duration {s:?}: {why}; write a number and a unit: 240s, 20ms, 1m30s, 1h")
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err(bad("a number without a unit")),
            u => return Err(bad(&format!("unknown unit {u:?}"))),
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| bad("it is too long"))?;
        rest = &rest[unit..];
    }
    Ok(total)
}

/// `<n>K|M|G|T` (also `MB`, `MiB`: powers of 1024 as QEMU's `-m`) -> whole MiB, at least 1.
pub fn parse_memory_mib(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("bad memory size {s:?}: {why}; write it like 256M or 1G");
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad("expected a number"));
    }
    let n: u64 = t[..digits]
        .parse()
        .map_err(|_| bad("the number is too large"))?;
    let unit = t[digits..].trim_start();
    let unit = unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit);
    let kib = match unit.to_ascii_uppercase().as_str() {
        "K" => Some(n),
        "M" => n.checked_mul(1024),
        "G" => n.checked_mul(1024 * 1024),
        "T" => n.checked_mul(1024 * 1024 * 1024),
        "" => return Err(bad("a number without a unit")),
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    }
    .ok_or_else(|| bad("it is too large"))?;
    if kib % 1024 != 0 || kib == 0 {
        return Err(bad("QEMU takes whole MiB, at least 1M"));
    }
    Ok(kib / 1024)
}

/// The shortest spelling `parse_duration` reads back (for graphs and messages).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("240s"), Ok(Duration::from_secs(240)));
        assert_eq!(parse_duration("17s"), Ok(Duration::from_secs(17)));
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "240",
            "s",
            "10x",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("240s"), "{bad}: {e}");
        }
        assert_eq!(format_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(format_duration(Duration::from_secs(240)), "240s");
    }

    #[test]
    fn memory() {
        assert_eq!(parse_memory_mib("256M"), Ok(256));
        assert_eq!(parse_memory_mib("1G"), Ok(1024));
        assert_eq!(parse_memory_mib("2GiB"), Ok(2048));
        assert_eq!(parse_memory_mib("512MB"), Ok(512));
        assert_eq!(parse_memory_mib("2048K"), Ok(2));
        assert_eq!(parse_memory_mib("1t"), Ok(1024 * 1024));
        for bad in ["", "256", "1.5G", "0M", "1000K", "12Q", "M"] {
            assert!(parse_memory_mib(bad).unwrap_err().contains("256M"), "{bad}");
        }
    }
}
