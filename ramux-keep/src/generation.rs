//! Names and hash files of generations: `gen-000042.tar` holds the files, `gen-000042.sha256`
//! (written after the tar is on the key, and fsynced) says what the tar's hash must be and
//! where it came from. The second line is for people and `ramux keep list`; only the first
//! decides validity.

use sha2::{Digest, Sha256};
use std::fmt;

/// A generation number; six digits in file names, so names sort as numbers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gen(pub u32);

/// Which of a generation's two files a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Tar,
    Sum,
}

impl Gen {
    pub fn tar_name(self) -> String {
        format!("gen-{:06}.tar", self.0)
    }

    pub fn sum_name(self) -> String {
        format!("gen-{:06}.sha256", self.0)
    }

    /// `gen-000042.tar` -> (42, Tar). Anything else (editor backups, `.new` files, other
    /// widths) is not a generation file and is left alone.
    pub fn parse_name(name: &str) -> Option<(Gen, Part)> {
        let rest = name.strip_prefix("gen-")?;
        let (num, part) = match rest.split_once('.')? {
            (n, "tar") => (n, Part::Tar),
            (n, "sha256") => (n, Part::Sum),
            _ => return None,
        };
        if num.len() != 6 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((Gen(num.parse().ok()?), part))
    }
}

impl fmt::Display for Gen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a generation came from: its second line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Seconds since the epoch at commit (passed in by the caller).
    pub time: u64,
    /// The image that committed it (the manifest's image id).
    pub image: String,
    pub files: usize,
    /// The admin's `-m` message, one line.
    pub message: String,
}

/// The `.sha256` file: `HEX  gen-NNNNNN.tar` (the `sha256sum` format, so an admin can check
/// it by hand on any PC) then `gen=N time=T image=I files=F msg=...`.
pub fn sum_file(gen: Gen, tar: &[u8], o: &Origin) -> String {
    let msg: String = o.message.chars().filter(|c| !c.is_control()).collect();
    format!(
        "{}  {}\ngen={} time={} image={} files={} msg={}\n",
        hex(&Sha256::digest(tar)),
        gen.tar_name(),
        gen.0,
        o.time,
        o.image,
        o.files,
        msg
    )
}

/// Why a generation is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// One of the two files is absent (a commit cut before its hash file was written).
    Missing(Part),
    /// The hash file does not read as ours (torn, or edited).
    BadSumFile,
    /// The hash file is for another generation's tar.
    WrongName,
    /// The tar does not have the hash (torn, corrupted, or edited).
    HashMismatch,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Missing(Part::Tar) => write!(f, "its .tar is missing"),
            Invalid::Missing(Part::Sum) => write!(f, "its .sha256 is missing (commit cut short?)"),
            Invalid::BadSumFile => write!(f, "its .sha256 is not a sha256sum line"),
            Invalid::WrongName => write!(f, "its .sha256 names another file"),
            Invalid::HashMismatch => write!(f, "its .tar does not match its .sha256"),
        }
    }
}

/// Checks a generation's tar against its hash file.
pub fn check(gen: Gen, tar: &[u8], sum: &[u8]) -> Result<(), Invalid> {
    let text = std::str::from_utf8(sum).map_err(|_| Invalid::BadSumFile)?;
    let first = text.lines().next().ok_or(Invalid::BadSumFile)?;
    let (want, name) = first.split_once("  ").ok_or(Invalid::BadSumFile)?;
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Invalid::BadSumFile);
    }
    if name != gen.tar_name() {
        return Err(Invalid::WrongName);
    }
    if !want.eq_ignore_ascii_case(&hex(&Sha256::digest(tar))) {
        return Err(Invalid::HashMismatch);
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            time: 1_700_000_000,
            image: "router-1.2".into(),
            files: 3,
            message: "new ssh key\nsecond line".into(),
        }
    }

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(Gen(42).tar_name(), "gen-000042.tar");
        assert_eq!(
            Gen::parse_name("gen-000042.sha256"),
            Some((Gen(42), Part::Sum))
        );
        assert_eq!(
            Gen::parse_name("gen-000042.tar"),
            Some((Gen(42), Part::Tar))
        );
        for n in [
            "gen-42.tar",
            "gen-000042.tar.new",
            "gen-00004x.tar",
            "x.tar",
            "gen-000042",
        ] {
            assert_eq!(Gen::parse_name(n), None, "{n}");
        }
    }

    #[test]
    fn a_written_generation_checks_and_any_damage_is_named() {
        let tar = b"payload".to_vec();
        let sum = sum_file(Gen(7), &tar, &origin());
        assert!(sum.ends_with("msg=new ssh keysecond line\n"), "{sum}");
        assert_eq!(check(Gen(7), &tar, sum.as_bytes()), Ok(()));
        assert_eq!(check(Gen(8), &tar, sum.as_bytes()), Err(Invalid::WrongName));
        assert_eq!(
            check(Gen(7), b"payloaX", sum.as_bytes()),
            Err(Invalid::HashMismatch)
        );
        let torn = &sum.as_bytes()[..40];
        assert_eq!(check(Gen(7), &tar, torn), Err(Invalid::BadSumFile));
        assert_eq!(check(Gen(7), &tar, b""), Err(Invalid::BadSumFile));
        assert_eq!(check(Gen(7), &tar, &[0xff, 0xfe]), Err(Invalid::BadSumFile));
    }
}
