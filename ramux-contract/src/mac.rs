//! MAC addresses of the VMs' NICs: one parser, one formatter, and the deterministic derivation
//! every tool uses when the user gives none, so a lab's addresses are the same on every run and
//! every host (a DHCP reservation or a switch's MAC table stays valid across restarts).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = String;
    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-...`; refuses multicast addresses (a NIC cannot use one).
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "invalid MAC address {s:?}: expected six hex bytes like 00:16:3e:12:34:56"
            ));
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(format!(
                    "invalid MAC address {s:?}: byte {:?} is not two hex digits",
                    p
                ));
            }
            b[i] = u8::from_str_radix(p, 16)
                .map_err(|_| format!("invalid MAC address {s:?}: {p:?} is not hex"))?;
        }
        if b[0] & 1 == 1 {
            return Err(format!(
                "invalid MAC address {s:?}: it is a multicast address (lowest bit of the first byte set)"
            ));
        }
        Ok(Mac(b))
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// `00:16:3e` (the OUI the 2009 lab used) + 3 bytes of FNV-1a over the VM name and NIC index:
/// stable across runs and hosts, different per VM and NIC, no registry of leases needed.
pub fn derived(vm_name: &str, nic_index: usize) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    vm_name.bytes().for_each(&mut eat);
    eat(0); // separator so ("a1", 0) and ("a", 10) differ
    (nic_index as u64)
        .to_le_bytes()
        .into_iter()
        .for_each(&mut eat);
    let x = h ^ (h >> 24) ^ (h >> 48);
    Mac([0x00, 0x16, 0x3e, (x >> 16) as u8, (x >> 8) as u8, x as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_roundtrip_and_errors() {
        let m: Mac = "00:16:3E:0a:0B:ff".parse().unwrap();
        assert_eq!(m.to_string(), "00:16:3e:0a:0b:ff");
        assert_eq!("00-16-3e-0a-0b-ff".parse::<Mac>().unwrap(), m);
        for bad in [
            "",
            "00:16:3e:0a:0b",
            "00:16:3e:0a:0b:fff",
            "01:00:5e:00:00:01",
            "zz:16:3e:0a:0b:ff",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_macs_are_stable_and_distinct() {
        let a0 = derived("RT1", 0);
        assert_eq!(a0, derived("RT1", 0));
        assert_eq!(&a0.0[..3], &[0x00, 0x16, 0x3e]);
        let mut seen = std::collections::HashSet::new();
        for name in ["RT1", "RT2", "VPN1", "a", "a1"] {
            for i in 0..16 {
                assert!(seen.insert(derived(name, i)), "collision {name} {i}");
            }
        }
        // Pinned values (seen in real launches): changing the derivation would renumber
        // every lab's MACs.
        assert_eq!(derived("rt1", 0).to_string(), "00:16:3e:1a:31:60");
        assert_eq!(derived("devn", 0).to_string(), "00:16:3e:25:e0:7c");
        assert_eq!(derived("devn", 1).to_string(), "00:16:3e:1f:04:05");
    }
}
