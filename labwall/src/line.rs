//! Source positions shared by every stage: a [`Token`] remembers the column of the source token
//! it came from (also after variable expansion), a [`Line`] is one logical source line, so that
//! the preprocessor, the parser and the checks all report `file:line:col` with a caret.

use crate::diag::{Diagnostic, Loc};

/// A token after expansion: text plus the column of the source token it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub col: u32,
    pub width: u32,
}

impl Token {
    /// A token standing for `text` at `col` (width = its length), e.g. one half of `a:b`.
    pub fn at(text: &str, col: u32) -> Token {
        Token {
            text: text.to_string(),
            col,
            width: text.len() as u32,
        }
    }
}

/// One logical source line (continuations joined), expanded and tokenised.
#[derive(Clone, Debug)]
pub struct Line {
    pub loc: Loc,
    pub src: String,
    pub toks: Vec<Token>,
    /// An expansion on this line failed (already reported): later stages stay quiet about it.
    pub tainted: bool,
}

impl Line {
    pub fn loc_of(&self, t: &Token) -> Loc {
        self.loc.at(t.col)
    }
    /// An error pointing at `t` (caret under the token).
    pub fn diag_at(&self, t: &Token, msg: impl Into<String>) -> Diagnostic {
        let mut d = Diagnostic::error(self.loc_of(t), msg).width(t.width as usize);
        d.source_line = Some(self.src.clone());
        d
    }
    /// An error pointing just past the end of the line (something is missing).
    pub fn diag_end(&self, msg: impl Into<String>) -> Diagnostic {
        let col = self.src.trim_end().chars().count() as u32 + 1;
        let mut d = Diagnostic::error(self.loc.at(col), msg);
        d.source_line = Some(self.src.clone());
        d
    }
}
