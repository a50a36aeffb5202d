//! Diagnostics in the compiler style the rest of ramux uses (labwall, rustc): one line
//! `FILE:LINE:COL: error: WHAT`, then `  = fix: HOW`, so an editor jumps to the spot and the user
//! knows what to type next. Every check pushes into one list, so a run reports every problem.

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A value together with where the lab file wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> At<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        At { value, pos }
    }
}

/// How bad a problem is: warnings never stop `up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, already located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// `None` for problems of the file as a whole (it cannot be read).
    pub pos: Option<Pos>,
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{}:{}: {sev}: {}",
                self.file, p.line, p.col, self.message
            )?,
            None => write!(f, "{}: {sev}: {}", self.file, self.message)?,
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n  = fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every diagnostic, one after the other, each ending in a newline.
pub fn render_all(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("{d}\n")).collect()
}

/// Byte offsets -> line:col, computed once per file.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    /// The position of byte `offset` (clamped to the text, and to a char boundary).
    pub fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        Pos { line, col }
    }
}

/// The list every pass appends to, with the file name the messages carry.
#[derive(Debug, Clone)]
pub struct Diags {
    pub file: String,
    pub list: Vec<Diagnostic>,
}

impl Diags {
    pub fn new(file: &str) -> Self {
        Diags {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    /// An error at `pos` with a fix.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Some(pos), Severity::Error, message.into(), Some(fix.into()));
    }

    /// A warning at `pos` with a fix.
    pub fn warning(&mut self, pos: Pos, message: impl Into<String>, fix: impl Into<String>) {
        self.push(
            Some(pos),
            Severity::Warning,
            message.into(),
            Some(fix.into()),
        );
    }

    pub fn push(
        &mut self,
        pos: Option<Pos>,
        severity: Severity,
        message: String,
        fix: Option<String>,
    ) {
        self.list.push(Diagnostic {
            file: self.file.clone(),
            pos,
            severity,
            message,
            fix,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// In file order (stable: two problems at one spot keep the order the checks found them).
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| d.pos);
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_chars() {
        let ix = LineIndex::new("ab\né=1\n\nx");
        assert_eq!(ix.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(ix.pos(3), Pos { line: 2, col: 1 });
        assert_eq!(ix.pos(5), Pos { line: 2, col: 2 }, "after the two-byte é");
        assert_eq!(ix.pos(9), Pos { line: 4, col: 1 });
        assert_eq!(ix.pos(999), Pos { line: 4, col: 2 });
    }

    #[test]
    fn renders_like_rustc() {
        let mut d = Diags::new("lab.toml");
        d.error(Pos { line: 3, col: 7 }, "bad thing", "do better");
        assert_eq!(
            render_all(&d.sorted()),
            "lab.toml:3:7: error: bad thing\n  = fix: do better\n"
        );
    }
}
