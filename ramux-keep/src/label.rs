//! Filesystem labels, UUIDs and the FAT dirty bit read straight from a device's first bytes, so
//! PID 1 finds the key without udev or blkid. Offsets: FAT boot sector (Microsoft's FAT spec:
//! FAT32 label at 0x47 and volume id at 0x43, FAT12/16 at 0x2B and 0x27), ext2/3/4 superblock
//! at 1024 (magic 0xEF53 at +0x38, UUID at +0x68, volume name at +0x78).

/// How many bytes of a device [`probe`] needs.
pub const PROBE_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Fat,
    Ext,
}

/// What a device's first bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: FsKind,
    /// Trimmed; empty when the volume has none (FAT's "NO NAME").
    pub label: String,
    /// As blkid prints it: `1A2B-3C4D` for FAT, the dashed form for ext.
    pub uuid: String,
    /// FAT only: the volume was not unmounted cleanly (Linux sets this bit while it is mounted
    /// read-write), so `fsck.fat -a` must run before the next read-write mount.
    pub dirty: bool,
}

/// Reads the first [`PROBE_BYTES`] of a device; None when it is neither FAT nor ext.
pub fn probe(head: &[u8]) -> Option<Probe> {
    fat(head).or_else(|| ext(head))
}

fn fat(b: &[u8]) -> Option<Probe> {
    if b.len() < 512 || b[510..512] != [0x55, 0xAA] {
        return None;
    }
    // (state byte, volume id, label) offsets, by the file system type string.
    let (state, id, label) = if &b[0x52..0x57] == b"FAT32" {
        (0x41, 0x43, 0x47)
    } else if &b[0x36..0x39] == b"FAT" {
        (0x25, 0x27, 0x2B)
    } else {
        return None;
    };
    let name = trim(&b[label..label + 11]);
    let v = &b[id..id + 4];
    Some(Probe {
        kind: FsKind::Fat,
        label: if name == "NO NAME" {
            String::new()
        } else {
            name
        },
        uuid: format!("{:02X}{:02X}-{:02X}{:02X}", v[3], v[2], v[1], v[0]),
        dirty: b[state] & 1 != 0,
    })
}

fn ext(b: &[u8]) -> Option<Probe> {
    let sb = b.get(1024..1024 + 0x88)?;
    if sb[0x38..0x3A] != [0x53, 0xEF] {
        return None;
    }
    let u = &sb[0x68..0x78];
    let h =
        |r: std::ops::Range<usize>| -> String { u[r].iter().map(|x| format!("{x:02x}")).collect() };
    Some(Probe {
        kind: FsKind::Ext,
        label: trim(&sb[0x78..0x88]),
        uuid: format!(
            "{}-{}-{}-{}-{}",
            h(0..4),
            h(4..6),
            h(6..8),
            h(8..10),
            h(10..16)
        ),
        dirty: false,
    })
}

fn trim(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A real filesystem made by Debian's mkfs tool on a sparse file; None when the tool is
    /// not installed (dosfstools and e2fsprogs are in scripts/apt-packages).
    fn made_by(tool: &str, args: &[&str]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(40 << 20)
            .unwrap();
        let st = Command::new(tool).args(args).arg(&img).output();
        let st = st.unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            st.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::fs::read(&img).unwrap()[..PROBE_BYTES].to_vec()
    }

    #[test]
    fn fat32_and_fat16_labels_ids_and_the_dirty_bit() {
        let mut b = made_by(
            "mkfs.fat",
            &["-F", "32", "-n", "RAMUXKEY", "-i", "1a2b3c4d"],
        );
        let p = probe(&b).unwrap();
        assert_eq!(
            (p.kind, p.label.as_str(), p.uuid.as_str(), p.dirty),
            (FsKind::Fat, "RAMUXKEY", "1A2B-3C4D", false)
        );
        b[0x41] |= 1;
        assert!(probe(&b).unwrap().dirty);
        let p = probe(&made_by(
            "mkfs.fat",
            &["-F", "16", "-n", "key2", "-i", "00000001"],
        ))
        .unwrap();
        assert_eq!((p.label.as_str(), p.uuid.as_str()), ("key2", "0000-0001"));
        let p = probe(&made_by("mkfs.fat", &["-F", "32"])).unwrap();
        assert_eq!(p.label, "");
    }

    #[test]
    fn ext4_label_and_uuid_as_blkid_prints_them() {
        let u = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let p = probe(&made_by(
            "mkfs.ext4",
            &["-q", "-F", "-L", "RAMUXKEY", "-U", u],
        ))
        .unwrap();
        assert_eq!(
            (p.kind, p.label.as_str(), p.uuid.as_str()),
            (FsKind::Ext, "RAMUXKEY", u)
        );
    }

    #[test]
    fn anything_else_is_not_a_key() {
        assert_eq!(probe(&[0; PROBE_BYTES]), None);
        assert_eq!(probe(&[0x55; 100]), None);
        let mut b = vec![0; PROBE_BYTES];
        b[510] = 0x55;
        b[511] = 0xAA; // an MBR with no FAT boot sector
        assert_eq!(probe(&b), None);
    }
}
