//! Which generation boot applies, which number the next commit takes, and what a commit prunes,
//! from the names in `/RAMUX/<hostname>/` and the bytes the caller reads for them.

use crate::generation::{check, Gen, Invalid, Part};
use std::collections::BTreeMap;

/// What a host directory holds, generation by generation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    gens: BTreeMap<Gen, (bool, bool)>,
}

impl Listing {
    /// From the file names in the host directory; names that are not generation files (an
    /// admin's notes, `overrides/`) are ignored.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Listing {
        let mut gens: BTreeMap<Gen, (bool, bool)> = BTreeMap::new();
        for (g, part) in names.into_iter().filter_map(Gen::parse_name) {
            let e = gens.entry(g).or_default();
            match part {
                Part::Tar => e.0 = true,
                Part::Sum => e.1 = true,
            }
        }
        Listing { gens }
    }

    /// Newest first, every generation with at least one file.
    pub fn newest_first(&self) -> impl Iterator<Item = Gen> + '_ {
        self.gens.keys().rev().copied()
    }

    /// One above every number on the key, valid or not: a torn generation's files are never
    /// overwritten in place, so its number is not reused.
    pub fn next(&self) -> Gen {
        Gen(self.gens.keys().next_back().map_or(1, |g| g.0 + 1))
    }

    /// The files a commit of `new` deletes so that `keep` generations remain: everything older
    /// than the `keep - 1` newest valid ones before it. Invalid generations newer than the
    /// cut stay until they age out, so a fault can still be looked at.
    pub fn prune(&self, new: Gen, valid: &[Gen], keep: usize) -> Vec<String> {
        let mut kept: Vec<Gen> = valid.iter().copied().filter(|g| *g < new).collect();
        kept.sort_unstable_by(|a, b| b.cmp(a));
        kept.truncate(keep.saturating_sub(1));
        let oldest = kept.last().copied().unwrap_or(new);
        self.gens
            .iter()
            .filter(|(g, _)| **g < oldest)
            .flat_map(|(g, (tar, sum))| {
                let mut v = vec![];
                if *tar {
                    v.push(g.tar_name());
                }
                if *sum {
                    v.push(g.sum_name());
                }
                v
            })
            .collect()
    }

    fn parts(&self, g: Gen) -> (bool, bool) {
        self.gens.get(&g).copied().unwrap_or_default()
    }
}

/// What boot found: the generation to apply (if any) and why each newer one was passed over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Choice {
    pub applied: Option<Gen>,
    pub rejected: Vec<(Gen, Reject)>,
}

/// Why a generation was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    Invalid(Invalid),
    /// Reading it failed (the caller's error text).
    Unreadable(String),
    /// It checked, but its content was refused (the validator's text, e.g. labwall's error).
    Refused(String),
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::Invalid(i) => i.fmt(f),
            Reject::Unreadable(e) => write!(f, "unreadable: {e}"),
            Reject::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

/// The newest generation whose hash checks and whose content `accept` takes. `read` returns a
/// file's bytes by name; `accept` gets the checked tar and says why it refuses it, if it does.
pub fn choose(
    l: &Listing,
    mut read: impl FnMut(&str) -> Result<Vec<u8>, String>,
    mut accept: impl FnMut(Gen, &[u8]) -> Result<(), String>,
) -> Choice {
    let mut c = Choice::default();
    for g in l.newest_first() {
        match judge(l, g, &mut read, &mut accept) {
            Ok(()) => {
                c.applied = Some(g);
                break;
            }
            Err(r) => c.rejected.push((g, r)),
        }
    }
    c
}

fn judge(
    l: &Listing,
    g: Gen,
    read: &mut impl FnMut(&str) -> Result<Vec<u8>, String>,
    accept: &mut impl FnMut(Gen, &[u8]) -> Result<(), String>,
) -> Result<(), Reject> {
    match l.parts(g) {
        (false, _) => return Err(Reject::Invalid(Invalid::Missing(Part::Tar))),
        (_, false) => return Err(Reject::Invalid(Invalid::Missing(Part::Sum))),
        _ => {}
    }
    let sum = read(&g.sum_name()).map_err(Reject::Unreadable)?;
    let tar = read(&g.tar_name()).map_err(Reject::Unreadable)?;
    check(g, &tar, &sum).map_err(Reject::Invalid)?;
    accept(g, &tar).map_err(Reject::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::{sum_file, Origin};
    use std::collections::HashMap;

    fn key(gens: &[(u32, &[u8])]) -> HashMap<String, Vec<u8>> {
        let o = Origin {
            time: 0,
            image: "i".into(),
            files: 1,
            message: String::new(),
        };
        let mut m = HashMap::new();
        for (n, body) in gens {
            let g = Gen(*n);
            m.insert(g.tar_name(), body.to_vec());
            m.insert(g.sum_name(), sum_file(g, body, &o).into_bytes());
        }
        m
    }

    fn pick(m: &HashMap<String, Vec<u8>>, refuse: &[u8]) -> Choice {
        let l = Listing::new(m.keys().map(String::as_str));
        choose(
            &l,
            |n| m.get(n).cloned().ok_or_else(|| format!("{n}: gone")),
            |_, tar| {
                if tar == refuse {
                    Err("site.lw:12:3 bad".into())
                } else {
                    Ok(())
                }
            },
        )
    }

    #[test]
    fn newest_valid_wins_and_each_passed_over_one_says_why() {
        let mut m = key(&[(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]);
        m.get_mut("gen-000004.tar").unwrap()[0] ^= 1;
        m.remove("gen-000003.sha256");
        let c = pick(&m, b"b");
        assert_eq!(c.applied, Some(Gen(1)));
        assert_eq!(
            c.rejected,
            vec![
                (Gen(4), Reject::Invalid(Invalid::HashMismatch)),
                (Gen(3), Reject::Invalid(Invalid::Missing(Part::Sum))),
                (Gen(2), Reject::Refused("site.lw:12:3 bad".into())),
            ]
        );
        assert_eq!(pick(&HashMap::new(), b"").applied, None);
        assert_eq!(pick(&key(&[(1, b"a")]), b"a").applied, None);
    }

    #[test]
    fn next_number_skips_torn_ones_and_prune_keeps_n() {
        let mut m = key(&[(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]);
        m.insert("gen-000005.tar".into(), b"torn".to_vec());
        m.insert("notes.txt".into(), vec![]);
        let l = Listing::new(m.keys().map(String::as_str));
        assert_eq!(l.next(), Gen(6));
        assert_eq!(Listing::default().next(), Gen(1));
        let valid = [Gen(1), Gen(2), Gen(3), Gen(4)];
        let mut gone = l.prune(Gen(6), &valid, 3);
        gone.sort();
        assert_eq!(
            gone,
            [
                "gen-000001.sha256",
                "gen-000001.tar",
                "gen-000002.sha256",
                "gen-000002.tar"
            ]
        );
        assert!(l.prune(Gen(6), &valid, 10).is_empty());
        assert_eq!(
            l.prune(Gen(6), &valid, 1).len(),
            9,
            "keep 1: only the new one stays"
        );
    }
}
