//! keepalived's conditional configuration (keepalived.conf(5), "Conditional configuration and
//! configuration id"): a line whose first word is `@NAME` is kept (without that word) only when
//! NAME is the config id, one starting `@^NAME` only when it is not. One file can then carry
//! both routers' priorities, router ids and addresses.
//!
//! Applied line by line before tokenizing, so line numbers stay those of the file.

use std::borrow::Cow;

/// The text with conditional lines resolved for `config_id` (`None`: no id, so every `@NAME`
/// line is dropped and every `@^NAME` line kept). Dropped lines become empty lines.
pub fn resolve<'t>(text: &'t str, config_id: Option<&str>) -> Cow<'t, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(resolve_line(line, config_id));
        out.push('\n');
    }
    Cow::Owned(out)
}

/// One line: itself, its rest after a matching `@NAME`, or "" when the condition fails.
fn resolve_line<'l>(line: &'l str, config_id: Option<&str>) -> &'l str {
    let Some(cond) = line.trim_start().strip_prefix('@') else {
        return line;
    };
    let end = cond.find(char::is_whitespace).unwrap_or(cond.len());
    let (word, rest) = cond.split_at(end);
    let (name, negated) = match word.strip_prefix('^') {
        Some(n) => (n, true),
        None => (word, false),
    };
    if (config_id == Some(name)) != negated {
        rest
    } else {
        ""
    }
}

/// keepalived's default config id: the node name up to its first dot.
pub fn default_id(nodename: &str) -> &str {
    nodename.split('.').next().unwrap_or(nodename)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_kept_dropped_and_negated() {
        let t =
            "a\n@high  priority 170\n\t@low priority 85\n@^high state BACKUP\n@^low  x\nb @high\n";
        assert_eq!(
            resolve(t, Some("high")),
            "a\n  priority 170\n\n\n  x\nb @high\n"
        );
        assert_eq!(
            resolve(t, Some("low")),
            "a\n\n priority 85\n state BACKUP\n\nb @high\n"
        );
        assert_eq!(resolve(t, None), "a\n\n\n state BACKUP\n  x\nb @high\n");
        assert!(matches!(resolve("no at sign", Some("x")), Cow::Borrowed(_)));
    }

    #[test]
    fn default_id_is_the_first_label() {
        assert_eq!(default_id("r1.lab.example"), "r1");
        assert_eq!(default_id("r2"), "r2");
    }
}
