//! Classic pcap (libpcap 2.4, LINKTYPE_ETHERNET) writer for `port/capture`.

use std::io::{self, Write};

/// Global header for Ethernet captures with the given snap length.
pub fn file_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone, sigfigs = 0
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

/// Append one record with timestamp `ts_us` (microseconds since the epoch).
pub fn write_record<W: Write>(w: &mut W, ts_us: u64, frame: &[u8]) -> io::Result<()> {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    w.write_all(&h)?;
    w.write_all(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut v = file_header(65535).to_vec();
        write_record(&mut v, 1_500_000, &[1, 2, 3]).unwrap();
        assert_eq!(&v[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(v.len(), 24 + 16 + 3);
        assert_eq!(&v[24..28], &1u32.to_le_bytes());
        assert_eq!(&v[28..32], &500_000u32.to_le_bytes());
    }
}
