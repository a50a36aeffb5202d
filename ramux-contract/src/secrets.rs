//! The site secrets overlay: one small archive, packed on the host by `vbuild secrets pack`,
//! handed to a VM by vlaunch (`-fw_cfg name=opt/ramux/secrets,file=...`) and later read from the
//! labelled USB key, unpacked by ramux-init into [`RUN_DIR`] (tmpfs). It is never in an ISO, so
//! the ISO stays generic, reproducible and public (docs/secrets.md).
//!
//! Format: an uncompressed `newc` cpio (the kernel's own initramfs format, so the same bytes can
//! one day be appended as a second initrd on bare metal; a fixed 110-byte ASCII header that a
//! strict reader checks in a few lines, unlike tar's ustar/pax/GNU variants). Entries are sorted,
//! owner root (uid/gid 0), mtime 0, directories `0700`, files `0600`; the first entry is
//! [`SUMS`], `sha256sum` lines of every file, so an overlay cut short or edited is refused whole
//! and `cpio -id < FILE && sha256sum -c SHA256SUMS` checks it by hand.
//!
//! Everything here is pure: the packer takes what the host directory holds ([`HostEntry`]),
//! the reader takes untrusted bytes and returns a bounded [`Plan`] (no `..`, no absolute paths,
//! no links or devices, size caps) that ramux-init then writes.

use sha2::{Digest, Sha256};

/// The QEMU fw_cfg item vlaunch adds (`-fw_cfg name=opt/ramux/secrets,file=FILE`).
pub const FW_CFG_NAME: &str = "opt/ramux/secrets";
/// Where Linux's `qemu_fw_cfg` module shows that item's bytes.
pub const FW_CFG_RAW: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/ramux/secrets/raw";
/// The secrets directory on a running appliance (tmpfs, `0700`, files `0600`).
pub const RUN_DIR: &str = "/run/ramux/secrets";
/// The checksum file, first entry of every overlay (`<sha256 hex>  <path>` lines, sorted).
pub const SUMS: &str = "SHA256SUMS";
/// Caps for untrusted input: a site's keys, certificates and secrets are a few KiB each.
pub const MAX_OVERLAY: usize = 4 << 20;
pub const MAX_FILE: usize = 1 << 20;
pub const MAX_ENTRIES: usize = 4096;
pub const MAX_PATH: usize = 255;
/// Modes written into an overlay by [`pack`].
pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

const MAGIC: &[u8; 6] = b"070701";
const HEADER: usize = 110;
const TRAILER: &str = "TRAILER!!!";
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// What one path of the host's secrets directory is (from `lstat`, not following links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    File(Vec<u8>),
    Dir,
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

/// One path below the secrets directory, `/`-separated and relative (`radius/nas/sw1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub path: String,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub kind: HostKind,
}

/// One archive entry as [`encode`] writes it: a directory when `data` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub data: Option<Vec<u8>>,
}

/// A file of a checked overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub path: String,
    /// The permission bits it was packed with.
    pub mode: u32,
    pub data: Vec<u8>,
}

impl PlanFile {
    /// Packed readable or writable by group or others: ramux-init refuses to install it.
    pub fn exposed(&self) -> bool {
        self.mode & 0o077 != 0
    }
}

/// What to create under [`RUN_DIR`], parents first; [`SUMS`] is checked, not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub dirs: Vec<String>,
    pub files: Vec<PlanFile>,
}

/// Checks a relative secret path: `[A-Za-z0-9._@+-]` components that do not start with a dot
/// (so no `.`, `..` or hidden editor files), no empty component, at most [`MAX_PATH`] bytes.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
    };
    if path.len() > MAX_PATH || !path.split('/').all(ok_part) {
        return Err(format!(
            "{path:?}: a secret path is relative, at most {MAX_PATH} bytes, of [A-Za-z0-9._@+-] \
             names not starting with a dot"
        ));
    }
    Ok(())
}

/// Packs a host secrets directory's entries into an overlay, refusing (with the path named) a
/// file readable by group or others, links, devices, bad names and oversized files.
pub fn pack(host: &[HostEntry]) -> Result<Vec<u8>, String> {
    let mut entries = Vec::new();
    for h in host {
        check_path(&h.path)?;
        let data = match &h.kind {
            HostKind::Dir => None,
            HostKind::File(_) if h.mode & 0o077 != 0 => {
                return Err(format!(
                    "{}: mode {:04o} lets group or others read or write it: `chmod 600` it \
                     (a secret is readable by root only)",
                    h.path, h.mode
                ))
            }
            HostKind::File(d) if d.len() > MAX_FILE => {
                return Err(format!("{}: larger than {MAX_FILE} bytes", h.path))
            }
            HostKind::File(d) => Some(d.clone()),
            HostKind::Symlink => {
                return Err(format!("{}: a symbolic link (copy the file in)", h.path))
            }
            HostKind::Other => return Err(format!("{}: not a regular file or directory", h.path)),
        };
        let mode = if data.is_some() { FILE_MODE } else { DIR_MODE };
        entries.push(Entry {
            path: h.path.clone(),
            mode,
            data,
        });
    }
    if entries.iter().all(|e| e.data.is_none()) {
        return Err("no secret file to pack".into());
    }
    encode(entries)
}

/// Writes entries as an overlay (sorted, [`SUMS`] first) without judging their modes: [`pack`]
/// is the front door; this one lets a test build an overlay a careless packer would have made.
pub fn encode(mut entries: Vec<Entry>) -> Result<Vec<u8>, String> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if entries.len() + 1 > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} entries"));
    }
    let sums = sums_text(&entries);
    let mut out = Vec::new();
    push_entry(&mut out, 1, SUMS, S_IFREG | FILE_MODE, sums.as_bytes());
    for (i, e) in entries.iter().enumerate() {
        check_path(&e.path)?;
        let (kind, data) = match &e.data {
            Some(d) => (S_IFREG, d.as_slice()),
            None => (S_IFDIR, &[][..]),
        };
        push_entry(
            &mut out,
            i as u32 + 2,
            &e.path,
            kind | (e.mode & 0o7777),
            data,
        );
    }
    push_entry(&mut out, 0, TRAILER, 0, &[]);
    if out.len() > MAX_OVERLAY {
        return Err(format!("overlay larger than {MAX_OVERLAY} bytes"));
    }
    Ok(out)
}

fn sums_text(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        if let Some(d) = &e.data {
            s.push_str(&format!("{}  {}\n", sha256_hex(d), e.path));
        }
    }
    s
}

/// Lower-case hex sha256.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn push_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(MAGIC);
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// One raw entry read back.
struct Raw<'a> {
    name: &'a str,
    mode: u32,
    data: &'a [u8],
}

/// Reads an overlay (untrusted bytes) into a [`Plan`], or says why it is refused as a whole:
/// wrong format, over a cap, a bad path, a link or device, a duplicate, a parent missing, or a
/// file that [`SUMS`] does not list with its hash.
pub fn unpack_plan(bytes: &[u8]) -> Result<Plan, String> {
    if bytes.len() > MAX_OVERLAY {
        return Err(format!("overlay larger than {MAX_OVERLAY} bytes"));
    }
    let raws = read_entries(bytes)?;
    let (first, rest) = raws.split_first().ok_or("empty overlay")?;
    if first.name != SUMS || first.mode & S_IFMT != S_IFREG {
        return Err(format!(
            "first entry is {:?}, not {SUMS}: not a ramux secrets overlay",
            first.name
        ));
    }
    let sums = std::str::from_utf8(first.data).map_err(|_| format!("{SUMS} is not text"))?;
    let plan = plan_of(rest)?;
    check_sums(sums, &plan)?;
    Ok(plan)
}

fn read_entries(bytes: &[u8]) -> Result<Vec<Raw<'_>>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let (raw, next) = read_one(bytes, at)?;
        if raw.name == TRAILER {
            return Ok(out);
        }
        if out.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        out.push(raw);
        at = next;
    }
}

fn read_one(bytes: &[u8], at: usize) -> Result<(Raw<'_>, usize), String> {
    let short = || format!("overlay cut short at byte {at}");
    let head = bytes.get(at..at + HEADER).ok_or_else(short)?;
    if &head[..6] != MAGIC {
        return Err(format!("no newc cpio header at byte {at}"));
    }
    let field = |i: usize| -> Result<usize, String> {
        let hex = std::str::from_utf8(&head[6 + 8 * i..14 + 8 * i]).map_err(|_| short())?;
        usize::from_str_radix(hex, 16).map_err(|_| format!("bad header field at byte {at}"))
    };
    let (mode, size, namesize) = (field(1)? as u32, field(6)?, field(11)?);
    if size > MAX_FILE || namesize == 0 || namesize > MAX_PATH + 1 {
        return Err(format!(
            "entry at byte {at}: size or name length over the caps"
        ));
    }
    let name_end = at + HEADER + namesize;
    let name = bytes.get(at + HEADER..name_end - 1).ok_or_else(short)?;
    let name =
        std::str::from_utf8(name).map_err(|_| format!("entry at byte {at}: name not UTF-8"))?;
    let data_at = align4(name_end);
    let data = bytes.get(data_at..data_at + size).ok_or_else(short)?;
    Ok((Raw { name, mode, data }, align4(data_at + size)))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn plan_of(raws: &[Raw<'_>]) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut seen = std::collections::BTreeSet::new();
    for r in raws {
        check_path(r.name)?;
        if !seen.insert(r.name) {
            return Err(format!("{}: twice in the overlay", r.name));
        }
        if let Some((parent, _)) = r.name.rsplit_once('/') {
            if !plan.dirs.iter().any(|d| d == parent) {
                return Err(format!(
                    "{}: its directory {parent} comes later or not at all",
                    r.name
                ));
            }
        }
        match r.mode & S_IFMT {
            S_IFDIR => plan.dirs.push(r.name.to_string()),
            S_IFREG => plan.files.push(PlanFile {
                path: r.name.to_string(),
                mode: r.mode & 0o7777,
                data: r.data.to_vec(),
            }),
            _ => return Err(format!("{}: not a regular file or directory", r.name)),
        }
    }
    Ok(plan)
}

fn check_sums(sums: &str, plan: &Plan) -> Result<(), String> {
    let mut listed = std::collections::BTreeMap::new();
    for line in sums.lines() {
        let (hash, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("{SUMS}: bad line {line:?}"))?;
        listed.insert(path, hash);
    }
    for f in &plan.files {
        match listed.remove(f.path.as_str()) {
            Some(h) if h == sha256_hex(&f.data) => {}
            Some(_) => return Err(format!("{}: sha256 differs from {SUMS}", f.path)),
            None => return Err(format!("{}: not listed in {SUMS}", f.path)),
        }
    }
    match listed.keys().next() {
        Some(p) => Err(format!("{p}: listed in {SUMS} but not in the overlay")),
        None => Ok(()),
    }
}

/// Fuzz body (also run by a unit test over samples): reading arbitrary bytes never panics, and
/// whatever it accepts has only safe paths and re-encodes to an overlay that reads the same.
pub fn fuzz_secrets(data: &[u8]) {
    let Ok(plan) = unpack_plan(data) else { return };
    assert!(plan.dirs.iter().all(|d| check_path(d).is_ok()));
    assert!(plan
        .files
        .iter()
        .all(|f| check_path(&f.path).is_ok() && f.data.len() <= MAX_FILE));
    let entries = plan
        .dirs
        .iter()
        .map(|d| Entry {
            path: d.clone(),
            mode: DIR_MODE,
            data: None,
        })
        .chain(plan.files.iter().map(|f| Entry {
            path: f.path.clone(),
            mode: f.mode,
            data: Some(f.data.clone()),
        }))
        .collect();
    let again = unpack_plan(&encode(entries).expect("re-encode")).expect("re-read");
    assert_eq!(again.files, plan.files);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mode: u32, data: &str) -> HostEntry {
        HostEntry {
            path: path.into(),
            mode,
            kind: HostKind::File(data.as_bytes().to_vec()),
        }
    }

    fn dir(path: &str) -> HostEntry {
        HostEntry {
            path: path.into(),
            mode: 0o755,
            kind: HostKind::Dir,
        }
    }

    fn sample() -> Vec<HostEntry> {
        vec![
            dir("radius"),
            dir("radius/nas"),
            file("radius/nas/sw1", 0o600, "s3cret\n"),
            file(
                "radius/dot1x.nt",
                0o400,
                "alice 8846f7eaee8fb117ad06bdd830b7586c\n",
            ),
            dir("pki"),
            file("pki/ca.crt", 0o600, "-----BEGIN CERTIFICATE-----\n"),
        ]
    }

    #[test]
    fn pack_then_plan_round_trips_with_safe_modes() {
        let bytes = pack(&sample()).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(pack(&sample()).unwrap(), bytes, "same input, same bytes");
        let plan = unpack_plan(&bytes).unwrap();
        assert_eq!(plan.dirs, ["pki", "radius", "radius/nas"]);
        let names: Vec<_> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["pki/ca.crt", "radius/dot1x.nt", "radius/nas/sw1"]);
        assert!(plan
            .files
            .iter()
            .all(|f| f.mode == FILE_MODE && !f.exposed()));
        assert_eq!(plan.files[2].data, b"s3cret\n");
    }

    #[test]
    fn the_system_cpio_reads_it() {
        let Ok(out) = std::process::Command::new("cpio").arg("--version").output() else {
            return;
        };
        assert!(out.status.success());
        let bytes = pack(&sample()).unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let list = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        assert!(
            list.contains("-rw-------") && list.contains("radius/nas/sw1"),
            "{list}"
        );
        assert!(list.contains("drwx------") && list.contains(SUMS), "{list}");
    }

    #[test]
    fn pack_refuses_exposed_files_links_and_devices_naming_them() {
        let mut s = sample();
        s.push(file("radius/nas/sw2", 0o644, "x"));
        let e = pack(&s).unwrap_err();
        assert!(e.starts_with("radius/nas/sw2: mode 0644"), "{e}");
        let link = HostEntry {
            path: "pki/x".into(),
            mode: 0o777,
            kind: HostKind::Symlink,
        };
        assert!(pack(&[link])
            .unwrap_err()
            .contains("pki/x: a symbolic link"));
        let dev = HostEntry {
            path: "null".into(),
            mode: 0o600,
            kind: HostKind::Other,
        };
        assert!(pack(&[dev]).unwrap_err().contains("null: not a regular"));
        assert!(pack(&[file("../x", 0o600, "")]).is_err());
        assert!(pack(&[file(".x.swp", 0o600, "")]).is_err());
        assert!(pack(&[dir("pki")]).unwrap_err().contains("no secret file"));
    }

    #[test]
    fn an_overlay_forced_with_0644_keeps_the_mode_for_init_to_refuse() {
        let e = vec![Entry {
            path: "k".into(),
            mode: 0o644,
            data: Some(b"x".to_vec()),
        }];
        let plan = unpack_plan(&encode(e).unwrap()).unwrap();
        assert!(plan.files[0].exposed());
    }

    #[test]
    fn plan_refuses_traversal_links_and_tampering() {
        let bytes = pack(&sample()).unwrap();
        assert!(unpack_plan(&bytes[..bytes.len() - 200]).is_err());
        let mut edited = bytes.clone();
        let at = edited.windows(6).position(|w| w == b"s3cret").unwrap();
        edited[at] = b'S';
        assert!(unpack_plan(&edited).unwrap_err().contains("sha256 differs"));
        let mut raw = Vec::new();
        push_entry(&mut raw, 1, SUMS, S_IFREG | 0o600, b"");
        push_entry(&mut raw, 2, "../etc/shadow", S_IFREG | 0o600, b"");
        push_entry(&mut raw, 0, TRAILER, 0, b"");
        assert!(unpack_plan(&raw).unwrap_err().contains("relative"));
        let mut raw = Vec::new();
        push_entry(&mut raw, 1, SUMS, S_IFREG | 0o600, b"");
        push_entry(&mut raw, 2, "l", 0o120777, b"/etc/shadow");
        push_entry(&mut raw, 0, TRAILER, 0, b"");
        assert!(unpack_plan(&raw).unwrap_err().contains("not a regular"));
        let mut raw = Vec::new();
        push_entry(&mut raw, 1, SUMS, S_IFREG | 0o600, b"");
        push_entry(&mut raw, 2, "a/b", S_IFREG | 0o600, b"");
        push_entry(&mut raw, 0, TRAILER, 0, b"");
        assert!(unpack_plan(&raw).unwrap_err().contains("its directory a"));
    }

    #[test]
    fn fuzz_body_over_samples() {
        let good = pack(&sample()).unwrap();
        let mut samples: Vec<Vec<u8>> = vec![vec![], b"070701".to_vec(), good.clone()];
        for cut in (0..good.len()).step_by(7) {
            samples.push(good[..cut].to_vec());
            let mut flipped = good.clone();
            flipped[cut] ^= 0x5a;
            samples.push(flipped);
        }
        for s in &samples {
            fuzz_secrets(s);
        }
    }
}
