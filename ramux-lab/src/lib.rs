//! The pure core of `vlaunch lab`: a `lab.toml` describes a whole site on one PC (switches with
//! their VLANs, nodes with their NICs, uplinks, tests); this crate reads it, applies the
//! defaults, checks it against itself and against the site file, and derives what `up`, `graph`
//! and `status` need. No process, no QEMU, no socket: the only I/O is reading the files named,
//! so every rule is tested in milliseconds. The reference of the file is docs/lab.md.
//!
//! ```no_run
//! let checked = ramux_lab::check_file(std::path::Path::new("labs/seed.toml"), None);
//! eprint!("{}", ramux_lab::render_all(&checked.diagnostics));
//! let ok = checked.ok();
//! if let Some(lab) = checked.lab.filter(|_| ok) {
//!     let plan = ramux_lab::start_plan(&lab).expect("validate found no cycle");
//!     println!("{:?}\n{}", plan.waves, ramux_lab::graph::mermaid(&lab));
//! }
//! ```

pub mod diag;
pub mod failover;
pub mod graph;
pub mod host;
pub mod matrix;
pub mod model;
pub mod parse;
pub mod plan;
pub mod probe;
pub mod radius;
mod raw;
pub mod report;
pub mod resolve;
pub mod site;
pub mod sitefile;
pub mod status;
pub mod units;
pub mod validate;
pub mod vpn;

use std::path::Path;

pub use diag::{render_all, At, Diagnostic, Pos, Severity};
pub use model::Lab;
pub use plan::{start_plan, StartPlan};
pub use site::{SiteDev, SiteFacts};
pub use status::LabStatus;

/// The result of reading and checking a lab: the resolved lab (also when it has errors, as far
/// as it could be read, so `graph` can show a broken lab) and every diagnostic in file order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub lab: Option<Lab>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// No errors (warnings allowed).
    pub fn ok(&self) -> bool {
        self.lab.is_some() && !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parse, resolve and validate `text`. `file` is how messages name it, `dir` the directory
/// relative paths are resolved against; with `site` (and a `site` key in the lab), the checks
/// against the site file run too.
pub fn check_text(text: &str, file: &str, dir: &Path, site: Option<&SiteFacts>) -> Checked {
    check_text_with(text, file, dir, &mut |_| {
        site.cloned().ok_or_else(String::new)
    })
}

/// [`check_text`] with the site facts read by `site_facts` from the lab's `site` path (resolved
/// against `dir`), when the lab names one. An `Err(text)` of `site_facts` is reported at the
/// `site` key (an empty text: no site checks, no message).
pub fn check_text_with(
    text: &str,
    file: &str,
    dir: &Path,
    site_facts: &mut dyn FnMut(&Path) -> Result<SiteFacts, String>,
) -> Checked {
    let mut cx = raw::Cx::new(text, file);
    let Some(root) = raw::parse_toml(text, &cx.ix, &mut cx.diags) else {
        return Checked {
            lab: None,
            diagnostics: cx.diags.sorted(),
        };
    };
    let raw::Raw::Table(root) = root else {
        unreachable!("a TOML document is a table")
    };
    let parsed = parse::lab_file(&root, &mut cx);
    let mut diags = cx.diags;
    let lab = resolve::resolve(&parsed, dir, &mut diags);
    validate::validate_lab(&lab, &mut diags);
    if let Some(site) = &lab.site {
        match site_facts(&site.value) {
            Ok(facts) => site::check_site(&lab, &facts, &mut diags),
            Err(e) if e.is_empty() => {}
            Err(e) => {
                let msg = format!(
                    "cannot read the site file {}:\n{}",
                    site.value.display(),
                    indent(&e)
                );
                let fix = "correct the site file (labwall check SITE shows every problem), or the `site` path";
                diags.error(site.pos, msg, fix);
            }
        }
    }
    Checked {
        lab: Some(lab),
        diagnostics: diags.sorted(),
    }
}

/// [`check_text`] on a file; messages name it as given.
pub fn check_file(path: &Path, site: Option<&SiteFacts>) -> Checked {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&text, &file, path.parent().unwrap_or(Path::new("")), site),
        Err(e) => {
            let mut d = diag::Diags::new(&file);
            d.push(
                None,
                Severity::Error,
                format!("cannot read the lab file: {e}"),
                Some("check the path (vlaunch lab validate FILE)".into()),
            );
            Checked {
                lab: None,
                diagnostics: d.list,
            }
        }
    }
}

/// Another tool's diagnostics inside one of ours.
fn indent(text: &str) -> String {
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| format!("    {l}"))
        .collect();
    lines.join("\n")
}

/// The whole check of a lab file, its site file read by labwall ([`sitefile::site_facts`]):
/// what `vlaunch lab validate FILE` prints.
pub fn check_lab(path: &Path) -> Checked {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_text_with(
            &text,
            &file,
            path.parent().unwrap_or(Path::new("")),
            &mut sitefile::site_facts,
        ),
        Err(_) => check_file(path, None),
    }
}
