//! Diagnostics: every problem carries file:line:col, what was expected and how to fix it.
//! The compiler collects them all and reports them at once.

use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A source position (1-based line and column) in a named file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn at(&self, col: u32) -> Loc {
        Loc {
            file: self.file.clone(),
            line: self.line,
            col,
        }
    }
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Loc,
    pub message: String,
    /// What the compiler expected at that place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The source line, for the caret display.
    #[serde(skip)]
    pub source_line: Option<String>,
    #[serde(skip)]
    pub width: u32,
}

impl Diagnostic {
    pub fn error(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
            expected: None,
            fix: None,
            source_line: None,
            width: 1,
        }
    }
    pub fn warning(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(loc, message)
        }
    }
    pub fn expected(mut self, e: impl Into<String>) -> Diagnostic {
        self.expected = Some(e.into());
        self
    }
    pub fn fix(mut self, f: impl Into<String>) -> Diagnostic {
        self.fix = Some(f.into());
        self
    }
    pub fn width(mut self, w: usize) -> Diagnostic {
        self.width = w.max(1) as u32;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: message` then the source line with a caret, expected and fix.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(s, "{}: {}: {}", self.loc, sev, self.message);
        if let Some(src) = &self.source_line {
            let n = self.loc.line.to_string();
            let pad = " ".repeat(n.len());
            let _ = writeln!(s, " {n} | {src}");
            let col = self.loc.col.max(1) as usize;
            let _ = writeln!(
                s,
                " {pad} | {}{}",
                " ".repeat(col - 1),
                "^".repeat(self.width.max(1) as usize)
            );
        }
        if let Some(e) = &self.expected {
            let _ = writeln!(s, "  = expected: {e}");
        }
        if let Some(f) = &self.fix {
            let _ = writeln!(s, "  = fix: {f}");
        }
        s
    }
}

/// Render a list of diagnostics, errors and warnings in source order.
pub fn render_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render())
        .collect::<Vec<_>>()
        .join("")
}
