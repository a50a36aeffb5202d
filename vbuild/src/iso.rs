//! ISO mastering: kernel + initrd -> hybrid ISO that boots BIOS and UEFI, from CD and from USB.
//!
//! The layout is Fedora's (`isolinux/`, `EFI/BOOT/`, `images/pxeboot/`, `images/efiboot.img`) so
//! people who know lorax output find their way. BIOS boots through ISOLINUX with an isohybrid MBR,
//! UEFI through Debian's signed shim and GRUB (so machines with Secure Boot enforced boot it too),
//! placed both in `EFI/BOOT/` and inside a FAT El Torito image that is also the isohybrid GPT's
//! EFI partition (CD and USB paths).
//!
//! Mastering goes through [`IsoWriter`] so a native writer (hadris-iso 3.x once it is final, see
//! docs/live-iso.md, What is outside the recipe) can replace xorriso and be compared byte for
//! byte. [`Xorriso`] uses the pinned flags of docs/live-iso.md, xorriso options: every date comes
//! from the build clock, the preparer id does not carry xorriso's version, the GPT GUID derives
//! from the date, and `-no_rc` keeps startup files out.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the ISO is made of; paths are read, never embedded in the output.
pub struct IsoInput<'a> {
    /// The kernel image (bzImage).
    pub kernel: &'a Path,
    /// Compressed cpio archives, concatenated in this order into `images/pxeboot/initrd.img`
    /// (the kernel unpacks concatenated archives in order; later files win).
    pub initrd_parts: &'a [PathBuf],
    /// Kernel command-line extras; the console arguments of the boot contract are added here.
    pub cmdline: &'a str,
    /// ISO9660 volume id: 1 to 32 characters of `A-Z 0-9 _`.
    pub volume_id: &'a str,
    /// The build clock (SOURCE_DATE_EPOCH), used for every date in the ISO and the FAT image.
    pub epoch: i64,
    /// Menu entry title shown by ISOLINUX and GRUB.
    pub title: &'a str,
}

/// Writes a bootable ISO from an [`IsoInput`].
pub trait IsoWriter {
    /// Name and version of every external tool whose output lands in the ISO (for the manifest).
    fn tool_versions(&self) -> Result<Vec<(String, String)>>;
    /// Writes the ISO to `out` (the caller writes to a temp path and renames).
    fn write(&self, input: &IsoInput, out: &Path) -> Result<()>;
}

/// The kernel arguments every image carries (ARCHITECTURE.md boot contract): the VGA console and
/// the serial console both; the last `console=` becomes /dev/console, so serial it is.
pub const CONSOLE_ARGS: &str = "console=tty0 console=ttyS0,115200n8";

const ISOLINUX_BIN: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX_BIN: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";
const LDLINUX_C32: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
/// Debian's Secure Boot chain, signed by Microsoft's UEFI CA (shim) and Debian's key (GRUB,
/// kernel, modules): shim is what the firmware starts, and it loads `grubx64.efi` (and the MOK
/// manager `mmx64.efi`) from its own directory. Each entry: the file on the host, its name in
/// `EFI/BOOT/`, the Debian package.
const EFI_CHAIN: &[(&str, &str, &str)] = &[
    (
        "/usr/lib/shim/shimx64.efi.signed",
        "BOOTX64.EFI",
        "shim-signed",
    ),
    (
        "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
        "grubx64.efi",
        "grub-efi-amd64-signed",
    ),
    (
        "/usr/lib/shim/mmx64.efi.signed",
        "mmx64.efi",
        "shim-helpers-amd64-signed",
    ),
];

/// Host tool -> Debian package that provides it, for "missing tool" errors.
const TOOLS: &[(&str, &str)] = &[
    ("xorriso", "xorriso"),
    ("mkfs.fat", "dosfstools"),
    ("mmd", "mtools"),
    ("mcopy", "mtools"),
    ("dpkg-query", "dpkg"),
];

/// The xorriso backend (xorriso 1.5.4 in Debian 12).
pub struct Xorriso;

impl IsoWriter for Xorriso {
    fn tool_versions(&self) -> Result<Vec<(String, String)>> {
        check_host_tools()?;
        let version = |name: &str, args: &[&str]| {
            crate::tool::version(name, args)
                .with_context(|| format!("running `{name} {}`", args.join(" ")))
        };
        Ok(vec![
            ("xorriso".into(), version("xorriso", &["-version"])?),
            ("mkfs.fat".into(), version("mkfs.fat", &["--help"])?),
            ("mtools".into(), version("mcopy", &["--version"])?),
        ]
        .into_iter()
        .chain(efi_chain_versions()?)
        .collect())
    }

    fn write(&self, input: &IsoInput, out: &Path) -> Result<()> {
        check_host_tools()?;
        validate_volume_id(input.volume_id)?;
        let staging = StagingDir::new(out)?;
        let tree = staging.path();
        stage_tree(input, tree)?;
        let date16 = date16(input.epoch);
        let mut cmd = Command::new(tool("xorriso"));
        cmd.arg("-no_rc")
            .args(["-as", "mkisofs", "-o"])
            .arg(out)
            .args(xorriso_mkisofs_args(input.volume_id, &date16))
            .arg(tree);
        run(&mut cmd, "xorriso")
    }
}

/// The pinned `xorriso -as mkisofs` arguments (docs/live-iso.md, xorriso options), without `-o`
/// and the tree.
pub fn xorriso_mkisofs_args(volume_id: &str, date16: &str) -> Vec<String> {
    [
        "-iso-level",
        "3",
        "-full-iso9660-filenames",
        "-joliet",
        "-joliet-long",
        "-rational-rock",
        "-volid",
        volume_id,
        "-preparer",
        "RAMUX VBUILD",
        "-appid",
        "RAMUX VBUILD",
        "-sysid",
        "LINUX",
        &format!("--modification-date={date16}"),
        "--set_all_file_dates",
        date16,
        "--gpt_disk_guid",
        "modification-date",
        "-isohybrid-mbr",
        ISOHDPFX_BIN,
        "-b",
        "isolinux/isolinux.bin",
        "-c",
        "isolinux/boot.cat",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        "-eltorito-alt-boot",
        "-e",
        "images/efiboot.img",
        "-no-emul-boot",
        "-isohybrid-gpt-basdat",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// ISOLINUX configuration: serial first (it must be the first directive), then the VGA console
/// stays on too, and the single entry boots at once.
pub fn isolinux_cfg(title: &str, cmdline: &str) -> String {
    format!(
        "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 10\nDEFAULT ramux\nLABEL ramux\n  MENU LABEL {title}\n  \
         KERNEL /images/pxeboot/vmlinuz\n  INITRD /images/pxeboot/initrd.img\n  APPEND {}\n",
        full_cmdline(cmdline)
    )
}

/// GRUB configuration at `boot/grub/grub.cfg`, where Debian's signed GRUB looks after finding
/// the filesystem that holds `/.disk/info`. Another medium may hold one too (a Debian CD), so
/// the root is searched again by this image's volume label (unique per profile and role) before
/// the kernel is read from it.
pub fn grub_cfg(title: &str, cmdline: &str, volume_id: &str) -> String {
    format!(
        "search --no-floppy --label --set=root {volume_id}\n\
         serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n\
         set timeout=1\nset default=0\nmenuentry '{}' {{\n  linux /images/pxeboot/vmlinuz {}\n  \
         initrd /images/pxeboot/initrd.img\n}}\n",
        title.replace('\'', ""),
        full_cmdline(cmdline)
    )
}

/// `/.disk/info`, the file Debian's signed GRUB searches for to find its medium.
pub fn disk_info(title: &str, volume_id: &str) -> String {
    format!("{title} ({volume_id})\n")
}

fn full_cmdline(extras: &str) -> String {
    let extras = extras.trim();
    if extras.is_empty() {
        CONSOLE_ARGS.to_string()
    } else {
        // Extras first: the console arguments stay last, so ttyS0 remains /dev/console.
        format!("{extras} {CONSOLE_ARGS}")
    }
}

/// `YYYYMMDDhhmmss00` in UTC, the date format of `--modification-date`.
pub fn date16(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}00",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 -> (year, month, day), Howard Hinnant's algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ISO9660 d-characters, at most 32: GRUB finds the ISO by this label, so it must survive as is.
pub fn validate_volume_id(v: &str) -> Result<()> {
    if v.is_empty()
        || v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("invalid ISO volume id {v:?}: use 1 to 32 characters of A-Z, 0-9 and _");
    }
    Ok(())
}

fn check_host_tools() -> Result<()> {
    for (tool, pkg) in TOOLS {
        crate::tool::require(tool, pkg)?;
    }
    for (file, pkg) in [
        (ISOLINUX_BIN, "isolinux"),
        (ISOHDPFX_BIN, "isolinux"),
        (LDLINUX_C32, "syslinux-common"),
    ]
    .into_iter()
    .chain(EFI_CHAIN.iter().map(|(file, _, pkg)| (*file, *pkg)))
    {
        if !Path::new(file).exists() {
            bail!("{file} not found: install it with `apt-get install {pkg}`");
        }
    }
    Ok(())
}

/// The Debian versions of the signed EFI binaries, for the manifest (they land in the ISO).
fn efi_chain_versions() -> Result<Vec<(String, String)>> {
    EFI_CHAIN
        .iter()
        .map(|(_, _, pkg)| {
            let out = Command::new(tool("dpkg-query"))
                .args(["-W", "-f=${Version}", pkg])
                .output()
                .with_context(|| format!("running dpkg-query for {pkg}"))?;
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || v.is_empty() {
                bail!("{pkg} is not installed: install it with `apt-get install {pkg}`");
            }
            Ok(((*pkg).to_string(), v))
        })
        .collect()
}

/// The path to run a host tool by (check_host_tools ran first, so it exists; this also finds
/// tools in /usr/sbin when PATH lacks it).
fn tool(name: &str) -> PathBuf {
    crate::tool::find(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Lays out the ISO tree; every file's mtime is the build clock (FAT entries copy it).
fn stage_tree(input: &IsoInput, tree: &Path) -> Result<()> {
    for d in [
        "isolinux",
        "EFI/BOOT",
        "images/pxeboot",
        "boot/grub",
        ".disk",
    ] {
        fs::create_dir_all(tree.join(d))?;
    }
    copy(Path::new(ISOLINUX_BIN), &tree.join("isolinux/isolinux.bin"))?;
    copy(Path::new(LDLINUX_C32), &tree.join("isolinux/ldlinux.c32"))?;
    fs::write(
        tree.join("isolinux/isolinux.cfg"),
        isolinux_cfg(input.title, input.cmdline),
    )?;
    copy(input.kernel, &tree.join("images/pxeboot/vmlinuz"))?;
    concat(input.initrd_parts, &tree.join("images/pxeboot/initrd.img"))?;
    fs::write(
        tree.join("boot/grub/grub.cfg"),
        grub_cfg(input.title, input.cmdline, input.volume_id),
    )?;
    fs::write(
        tree.join(".disk/info"),
        disk_info(input.title, input.volume_id),
    )?;
    let mut efi = Vec::new();
    for (src, name, _) in EFI_CHAIN {
        let dst = tree.join("EFI/BOOT").join(name);
        copy(Path::new(src), &dst)?;
        set_mtime(&dst, input.epoch)?;
        efi.push(dst);
    }
    make_efiboot(&efi, &tree.join("images/efiboot.img"), input.epoch)?;

    for entry in walk(tree)? {
        set_mtime(&entry, input.epoch)?;
    }
    Ok(())
}

/// The El Torito EFI image: a FAT filesystem holding the EFI chain in `EFI/BOOT/`, with a fixed
/// volume id (`--invariant`) and dates, sized from the EFI binaries (whole MiB, 1 MiB spare).
fn make_efiboot(efi: &[PathBuf], img: &Path, epoch: i64) -> Result<()> {
    let mut efi_len = 0;
    for f in efi {
        efi_len += fs::metadata(f)?.len();
    }
    let mib = efi_len.div_ceil(1 << 20) + 1;
    let kib = (mib * 1024).max(2048);
    run(
        Command::new(tool("mkfs.fat"))
            .args(["-C", "--invariant", "-i", "52414d58", "-n", "EFIBOOT"])
            .arg(img)
            .arg(kib.to_string())
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
        "mkfs.fat",
    )?;
    let mtools = |args: &[&std::ffi::OsStr], what: &str| -> Result<()> {
        run(
            Command::new(tool(what))
                .arg("-i")
                .arg(img)
                .args(args)
                .env("SOURCE_DATE_EPOCH", epoch.to_string())
                .env("MTOOLS_SKIP_CHECK", "1"),
            what,
        )
    };
    mtools(&["::/EFI".as_ref(), "::/EFI/BOOT".as_ref()], "mmd")?;
    // -m keeps the source mtime, which stage_tree clamped to the build clock beforehand.
    let mut args: Vec<&std::ffi::OsStr> = vec!["-m".as_ref()];
    args.extend(efi.iter().map(|f| f.as_os_str()));
    args.push("::/EFI/BOOT/".as_ref());
    mtools(&args, "mcopy")?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn concat(parts: &[PathBuf], to: &Path) -> Result<()> {
    if parts.is_empty() {
        bail!("no initrd: at least one archive is needed");
    }
    let mut out = fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    for p in parts {
        let mut f = fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        std::io::copy(&mut f, &mut out).with_context(|| format!("reading {}", p.display()))?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = fs::read_dir(&out[i])?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    Ok(out)
}

fn set_mtime(path: &Path, epoch: i64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0) as u64);
    let f = fs::File::options()
        .read(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
        .with_context(|| format!("setting the mtime of {}", path.display()))
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {what}: {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {:?}\n{}",
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A staging directory beside the output (same filesystem, never inside the ISO's name space),
/// removed on drop whatever happens.
struct StagingDir(PathBuf);

impl StagingDir {
    fn new(out: &Path) -> Result<Self> {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .map_or("iso".into(), |n| n.to_string_lossy());
        let dir = parent.join(format!(".{name}.tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating staging directory {}", dir.display()))?;
        Ok(Self(dir))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date16_matches_gnu_date() {
        // date -u -d @1700000000 +%Y%m%d%H%M%S00
        assert_eq!(date16(1_700_000_000), "2023111422132000");
        assert_eq!(date16(0), "1970010100000000");
        assert_eq!(date16(951_782_400), "2000022900000000"); // leap day
    }

    #[test]
    fn console_arguments_stay_last() {
        assert_eq!(
            full_cmdline("quiet"),
            "quiet console=tty0 console=ttyS0,115200n8"
        );
        assert!(isolinux_cfg("t", "").starts_with("SERIAL 0 115200\n"));
        let grub = grub_cfg("t", "panic=10", "RAMUX_T");
        assert!(grub.contains("vmlinuz panic=10 console=tty0 console=ttyS0,115200n8\n"));
        assert!(grub.starts_with("search --no-floppy --label --set=root RAMUX_T\n"));
    }

    #[test]
    fn volume_ids_are_checked() {
        assert!(validate_volume_id("RAMUX_ROUTER_BACKUP").is_ok());
        assert!(validate_volume_id("").is_err());
        assert!(validate_volume_id("lower").is_err());
        assert!(validate_volume_id(&"A".repeat(33)).is_err());
    }

    /// The ISO carries what Debian's signed GRUB looks for, and the EFI partition carries shim
    /// with GRUB and the MOK manager beside it (shim loads them from its own directory).
    fn assert_secure_boot_layout(iso: &Path, dir: &Path) {
        let img = dir.join("efiboot.img");
        let x = Command::new("xorriso")
            .args(["-no_rc", "-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", "/images/efiboot.img"])
            .arg(&img)
            .args(["-extract", "/.disk/info"])
            .arg(dir.join("info"))
            .args(["-extract", "/boot/grub/grub.cfg"])
            .arg(dir.join("grub.cfg"))
            .output()
            .unwrap();
        assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
        assert!(fs::read_to_string(dir.join("grub.cfg"))
            .unwrap()
            .contains("--label --set=root RAMUX_TEST"));
        assert_eq!(
            fs::read_to_string(dir.join("info")).unwrap(),
            "ramux test (RAMUX_TEST)\n"
        );
        let ls = Command::new("mdir")
            .args(["-b", "-i"])
            .arg(&img)
            .arg("::/EFI/BOOT")
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        let ls = String::from_utf8_lossy(&ls.stdout).to_ascii_uppercase();
        for (src, name, _) in EFI_CHAIN {
            assert!(
                ls.contains(&name.to_ascii_uppercase()),
                "{name} missing: {ls}"
            );
            let on_iso = dir.join(name);
            let m = Command::new("mcopy")
                .args(["-n", "-i"])
                .arg(&img)
                .arg(format!("::/EFI/BOOT/{name}"))
                .arg(&on_iso)
                .env("MTOOLS_SKIP_CHECK", "1")
                .status()
                .unwrap();
            assert!(m.success());
            assert!(
                fs::read(&on_iso).unwrap() == fs::read(src).unwrap(),
                "{name} differs"
            );
        }
    }

    /// Masters a tiny ISO twice (dummy kernel and initrd: booting is the e2e tests' job) and checks
    /// it is byte-identical and carries a BIOS and a UEFI El Torito entry.
    #[test]
    fn xorriso_writes_identical_hybrid_isos() {
        let dir = std::env::temp_dir().join(format!("vbuild-iso-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("vmlinuz");
        let initrd = [dir.join("a.cpio.gz"), dir.join("b.cpio.gz")];
        fs::write(&kernel, b"not a kernel").unwrap();
        fs::write(&initrd[0], b"first").unwrap();
        fs::write(&initrd[1], b"second").unwrap();
        let input = IsoInput {
            kernel: &kernel,
            initrd_parts: &initrd,
            cmdline: "quiet",
            volume_id: "RAMUX_TEST",
            epoch: 1_700_000_000,
            title: "ramux test",
        };
        let (a, b) = (dir.join("a.iso"), dir.join("b.iso"));
        Xorriso.write(&input, &a).unwrap();
        Xorriso.write(&input, &b).unwrap();
        let (ba, bb) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert!(ba == bb, "two masterings of the same input differ");
        let report = Command::new("xorriso")
            .args(["-no_rc", "-indev"])
            .arg(&a)
            .args(["-report_el_torito", "plain"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&report.stdout);
        assert!(text.contains("El Torito boot img :   1  BIOS"), "{text}");
        assert!(text.contains("El Torito boot img :   2  UEFI"), "{text}");
        assert!(
            !ba.windows(dir.as_os_str().len())
                .any(|w| w == dir.as_os_str().as_encoded_bytes()),
            "the ISO embeds the staging path"
        );
        assert!(
            Xorriso.tool_versions().unwrap()[0].1.contains("xorriso"),
            "xorriso version not found"
        );
        assert_secure_boot_layout(&a, &dir);
        fs::remove_dir_all(&dir).unwrap();
    }
}
