//! Fuzz-style robustness: thousands of mutations of the labs in tests/labs/ (bytes replaced,
//! deleted, inserted from TOML-ish fragments, lines swapped, truncations) go through the whole
//! pipeline (check, site checks, plan, graphs, status) and must never panic. Deterministic: the
//! generator is a fixed-seed xorshift, so a failure reproduces. Set RAMUX_LAB_FUZZ_ROUNDS for more.

mod common;

use std::path::Path;

use common::{crate_dir, seed_facts};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "\"",
    "=",
    ",",
    "\n",
    "#",
    ".",
    "[[test]]\n",
    "[node.X]\n",
    "port = 0",
    "access = 99",
    "trunk = [10, 20]",
    "native = 4094",
    "after = [\"RT1\"]",
    "after = [\"X\"]",
    "mac = \"00:16:3e:00:00:01\"",
    "address = \"1.2.3.4/32 via vip\"",
    "1e9",
    "-1",
    "99999999999999999999",
    "\"vip:10\"",
    "é",
    "\u{0}",
    "'''",
    "true",
    "1979-05-27T07:32:00Z",
    "ports = 1",
    "role = \"BACKUP\"",
    "profile = \"router\"",
    "switch = \"sw0\"",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                chars.splice(at..at, f.chars());
            }
            2 if at < chars.len() => {
                chars[at] = FRAGMENTS[rng.below(FRAGMENTS.len())]
                    .chars()
                    .next()
                    .unwrap()
            }
            _ => chars.truncate(at.max(chars.len() / 2)),
        }
    }
    chars.into_iter().collect()
}

fn run(text: &str) {
    let facts = seed_facts();
    for site in [None, Some(&facts)] {
        let c = ramux_lab::check_text(text, "lab.toml", Path::new("/labs"), site);
        let _ = ramux_lab::render_all(&c.diagnostics);
        if let Some(lab) = c.lab {
            let _ = ramux_lab::start_plan(&lab);
            let _ = ramux_lab::graph::mermaid(&lab);
            let _ = ramux_lab::graph::dot(&lab);
            let _ = ramux_lab::LabStatus::defined(&lab).to_json();
        }
    }
}

fn seeds() -> Vec<String> {
    let mut files = vec![crate_dir().join("tests/labs/cenbg2009.toml")];
    let bad = std::fs::read_dir(crate_dir().join("tests/labs/bad")).unwrap();
    files.extend(bad.map(|e| e.unwrap().path()));
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[test]
fn mutated_labs_never_panic() {
    let rounds: usize = std::env::var("RAMUX_LAB_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1ab0_2009);
    for i in 0..rounds {
        let text = mutate(&mut rng, &seeds[i % seeds.len()]);
        let r = std::panic::catch_unwind(|| run(&text));
        assert!(r.is_ok(), "panic on input:\n{text}");
    }
}

#[test]
fn every_prefix_of_the_example_is_handled() {
    let text = std::fs::read_to_string(crate_dir().join("tests/labs/cenbg2009.toml")).unwrap();
    for (i, _) in text.char_indices() {
        run(&text[..i]);
    }
}

#[test]
fn arbitrary_bytes_as_text_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..500 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        run(&String::from_utf8_lossy(&bytes));
    }
}
