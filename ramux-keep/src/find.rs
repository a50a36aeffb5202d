//! Which device is the key: `ramux.key=` on the kernel command line (LABEL=, UUID= or none;
//! LABEL=RAMUXKEY when absent), matched against the probed disks and partitions. Two matches
//! apply nothing, as lbu refuses two apkovls: guessing could put one site's secrets on another
//! host.

use crate::label::{FsKind, Probe};

/// The label a key has unless the command line names another.
pub const DEFAULT_LABEL: &str = "RAMUXKEY";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Label(String),
    Uuid(String),
    /// `ramux.key=none`: boot with the image's defaults and do not look.
    Off,
}

/// Reads `ramux.key=` from a kernel command line (the last one wins, as for kernel options).
pub fn want(cmdline: &str) -> Result<Want, String> {
    let Some(v) = cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("ramux.key="))
        .next_back()
    else {
        return Ok(Want::Label(DEFAULT_LABEL.into()));
    };
    match v.split_once('=') {
        _ if v == "none" => Ok(Want::Off),
        Some(("LABEL", l)) if !l.is_empty() => Ok(Want::Label(l.into())),
        Some(("UUID", u)) if !u.is_empty() => Ok(Want::Uuid(u.into())),
        _ => Err(format!(
            "ramux.key={v}: expected LABEL=NAME, UUID=ID (as blkid prints it) or none"
        )),
    }
}

/// A disk or partition with what its first bytes said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Kernel name, `sdb1`.
    pub dev: String,
    pub probe: Probe,
}

/// The outcome of looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Key(Candidate),
    None,
    Off,
    /// The first two devices that match, by name.
    Ambiguous(String, String),
}

/// Picks the key among `c`. FAT labels compare without case (Windows and mlabel upper-case
/// them), ext labels exactly; UUIDs without case.
pub fn choose(w: &Want, c: &[Candidate]) -> Found {
    if *w == Want::Off {
        return Found::Off;
    }
    let mut hits = c.iter().filter(|c| matches(w, &c.probe));
    match (hits.next(), hits.next()) {
        (None, _) => Found::None,
        (Some(k), None) => Found::Key(k.clone()),
        (Some(a), Some(b)) => Found::Ambiguous(a.dev.clone(), b.dev.clone()),
    }
}

fn matches(w: &Want, p: &Probe) -> bool {
    match w {
        Want::Label(l) if p.kind == FsKind::Fat => p.label.eq_ignore_ascii_case(l),
        Want::Label(l) => p.label == *l,
        Want::Uuid(u) => p.uuid.eq_ignore_ascii_case(u),
        Want::Off => false,
    }
}

impl Found {
    /// The one console line boot prints about the key; `waited` is how long it looked.
    pub fn line(&self, w: &Want, waited_s: u64) -> String {
        let what = match w {
            Want::Label(l) => format!("LABEL={l}"),
            Want::Uuid(u) => format!("UUID={u}"),
            Want::Off => "none".into(),
        };
        match self {
            Found::Key(k) => format!("ramux: keep found {} ({what})", k.dev),
            Found::None => format!("ramux: keep none (no {what} after {waited_s}s)"),
            Found::Off => "ramux: keep none (ramux.key=none)".into(),
            Found::Ambiguous(a, b) => format!(
                "ramux: keep ambiguous: {a} and {b} are both {what}; nothing applied \
                 (set ramux.key=UUID=... to choose)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dev: &str, kind: FsKind, label: &str, uuid: &str) -> Candidate {
        Candidate {
            dev: dev.into(),
            probe: Probe {
                kind,
                label: label.into(),
                uuid: uuid.into(),
                dirty: false,
            },
        }
    }

    #[test]
    fn command_line_forms_and_their_errors() {
        let d = Want::Label("RAMUXKEY".into());
        assert_eq!(want("quiet console=ttyS0"), Ok(d));
        assert_eq!(want("ramux.key=none"), Ok(Want::Off));
        assert_eq!(
            want("ramux.key=none ramux.key=UUID=1A2B-3C4D"),
            Ok(Want::Uuid("1A2B-3C4D".into()))
        );
        assert_eq!(
            want("ramux.key=LABEL=SITE2"),
            Ok(Want::Label("SITE2".into()))
        );
        for bad in [
            "ramux.key=",
            "ramux.key=sdb1",
            "ramux.key=LABEL=",
            "ramux.key=PATH=/x",
        ] {
            let e = want(bad).unwrap_err();
            assert!(e.contains("expected LABEL=NAME"), "{bad}: {e}");
        }
    }

    #[test]
    fn one_match_is_the_key_two_are_refused_none_is_said() {
        let disks = [
            c("vda1", FsKind::Ext, "root", "u0"),
            c("sdb1", FsKind::Fat, "ramuxkey", "1A2B-3C4D"),
            c("sdc1", FsKind::Ext, "ramuxkey", "u2"),
        ];
        let w = want("").unwrap();
        assert_eq!(choose(&w, &disks), Found::Key(disks[1].clone()));
        let mut two = disks.to_vec();
        two.push(c("sdd", FsKind::Fat, "RAMUXKEY", "9999-0000"));
        let f = choose(&w, &two);
        assert_eq!(f, Found::Ambiguous("sdb1".into(), "sdd".into()));
        assert!(f
            .line(&w, 10)
            .contains("sdb1 and sdd are both LABEL=RAMUXKEY"));
        let u = want("ramux.key=UUID=1a2b-3c4d").unwrap();
        assert_eq!(choose(&u, &two), Found::Key(disks[1].clone()));
        assert_eq!(choose(&w, &disks[..1]), Found::None);
        assert_eq!(
            Found::None.line(&w, 10),
            "ramux: keep none (no LABEL=RAMUXKEY after 10s)"
        );
        assert_eq!(choose(&Want::Off, &two), Found::Off);
    }
}
