//! The human form of a file's mistakes, like rustc's: each located message, then the line
//! it is on with a caret under the place.
//!
//! ```text
//! desired.yaml:4:1: clustres: unknown field `clustres`, expected one of ...; did you mean `clusters`?
//!   |
//! 4 | clustres:
//!   | ^^^^^^^^
//! ```

use std::fmt::Write as _;

use super::error::{ConfigErrorKind, ConfigErrors};

/// Characters of a line shown on each side of the caret when the line is longer than
/// [`WIDEST`]: a one-line file of a megabyte is not printed whole.
const CONTEXT: usize = 60;
/// The longest line shown whole, in characters.
const WIDEST: usize = 2 * CONTEXT;
/// The longest underline, in characters.
const LONGEST_MARK: usize = 40;
/// Mistakes shown with their line; the rest are shown as messages only. A snippet costs
/// the length of its line, so that thousands of mistakes on one long line stay linear.
pub const MAX_SNIPPETS: usize = 50;

impl ConfigErrors {
    /// Every mistake as [`Display`](std::fmt::Display) shows it, each followed by the line
    /// of `text` it is on with a caret under its column. `text` is the file as read
    /// (line breaks CR, LF or CRLF; a byte order mark is skipped). Mistakes about the
    /// file as a whole (encoding, empty, unreadable) have no line to show.
    pub fn render(&self, text: &str) -> String {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text
            .split(['\n'])
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        // A lone CR also ends a line (YAML); files with one are rare enough to split again.
        let lines: Vec<&str> = if lines.iter().any(|l| l.contains('\r')) {
            lines.iter().flat_map(|l| l.split('\r')).collect()
        } else {
            lines
        };
        let mut out = String::new();
        let mut snippets = 0;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = write!(out, "{}:{}:{}: ", self.file, e.line, e.column);
            if !e.path.is_empty() {
                let _ = write!(out, "{}: ", e.path);
            }
            out.push_str(&e.message);
            let whole_file = matches!(
                e.kind,
                ConfigErrorKind::Encoding | ConfigErrorKind::Empty | ConfigErrorKind::Unreadable
            );
            let line = e.line.checked_sub(1).and_then(|i| lines.get(i));
            if let (false, Some(line)) = (whole_file, line) {
                if snippets < MAX_SNIPPETS {
                    out.push('\n');
                    snippet(&mut out, e.line, e.column, line);
                }
                snippets += 1;
            }
        }
        if snippets > MAX_SNIPPETS {
            let _ = write!(
                out,
                "\n({snippets} mistakes; the lines of the first {MAX_SNIPPETS} are shown)"
            );
        }
        out
    }
}

/// ` | ` gutter lines: the line (or a window of it) and the caret under `column`.
fn snippet(out: &mut String, number: usize, column: usize, line: &str) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    // The window of the line shown, in characters.
    let (from, to) = if chars.len() <= WIDEST {
        (0, chars.len())
    } else {
        let from = at.saturating_sub(CONTEXT);
        (from, (at + CONTEXT).min(chars.len()))
    };
    let shown: String = chars[from..to].iter().collect();
    let (lead, tail) = (
        if from > 0 { "…" } else { "" },
        if to < chars.len() { "…" } else { "" },
    );
    // The caret lines up under tabs as the terminal expands them: copy them.
    let pad: String = std::iter::once(lead)
        .filter(|l| !l.is_empty())
        .map(|_| ' ')
        .chain(
            chars[from..at]
                .iter()
                .map(|&c| if c == '\t' { '\t' } else { ' ' }),
        )
        .collect();
    let width = mark_width(&chars[at..to]);
    let gutter = " ".repeat(number.to_string().len());
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{number} | {lead}{shown}{tail}");
    let _ = write!(out, "{gutter} | {pad}{}", "^".repeat(width));
}

/// How many characters the underline covers: a quoted string to its closing quote, else
/// the word (up to a space, a `:` that ends a key, or a flow bracket or comma); at least
/// one.
fn mark_width(rest: &[char]) -> usize {
    let width = match rest.first() {
        Some(&q @ ('"' | '\'')) => rest
            .iter()
            .skip(1)
            .position(|&c| c == q)
            .map_or(rest.len(), |end| end + 2),
        _ => rest
            .iter()
            .enumerate()
            .position(|(i, &c)| {
                c.is_whitespace()
                    || matches!(c, ',' | ']' | '}' | '#')
                    || (c == ':' && rest.get(i + 1).is_none_or(|n| n.is_whitespace()))
            })
            .unwrap_or(rest.len()),
    };
    width.clamp(1, LONGEST_MARK)
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    fn rendered(text: &str) -> String {
        match parse("d.yaml", text) {
            Ok(_) => panic!("valid"),
            Err(e) => e.render(text),
        }
    }

    #[test]
    fn the_line_is_shown_with_a_caret_under_the_mistake() {
        let text = "version: 1\ntargets:\n  - region: us-east-1\nclustres:\n  - name: a\n";
        let out = rendered(text);
        let want = "d.yaml:4:1: clustres: unknown field `clustres`, expected one of `version`, \
                    `targets`, `organization`, `detector`, `clusters`, `unmatchedClusters`, \
                    `suspend`, `redeploy`, `safety`, `reconcile`; did you mean `clusters`?\n  |\n4 | clustres:\n  | ^^^^^^^^";
        assert_eq!(out, want);
    }

    #[test]
    fn a_quoted_value_is_underlined_whole_and_tabs_are_kept() {
        let text = "version: \"1\"\ntargets:\n  - region: us-east-1\n";
        let out = rendered(text);
        assert!(
            out.ends_with("1 | version: \"1\"\n  |          ^^^"),
            "{out}"
        );
        let text = "version: 1\ntargets:\n  - region: us-east-1\n#\tx\nsuspend: maybe # c\n";
        let out = rendered(text);
        assert!(
            out.ends_with("5 | suspend: maybe # c\n  |          ^^^^^"),
            "{out}"
        );
    }

    #[test]
    fn only_the_first_mistakes_get_their_line() {
        // 2,000 mistakes on one long flow line: each snippet costs the whole line.
        let rules: Vec<String> = (0..2000)
            .map(|i| format!("{{name: c{i}, guardDutyManaged: maybe}}"))
            .collect();
        let text = format!(
            "version: 1\ntargets: [{{region: us-east-1}}]\nclusters: [{}]\n",
            rules.join(", ")
        );
        let errors = match parse("d.yaml", &text) {
            Ok(_) => panic!("valid"),
            Err(e) => e,
        };
        assert_eq!(errors.errors.len(), 2000);
        let out = errors.render(&text);
        let carets = out
            .lines()
            .filter(|l| l.starts_with("  | ") && l.contains('^'));
        assert_eq!(carets.count(), super::MAX_SNIPPETS, "{out}");
        assert_eq!(out.matches("d.yaml:3:").count(), 2000);
        assert!(
            out.ends_with("(2000 mistakes; the lines of the first 50 are shown)"),
            "{out}"
        );
    }

    #[test]
    fn a_long_line_is_shown_around_the_mistake() {
        let long = "a".repeat(5000);
        let text = format!("version: 1\ntargets: [{{region: us-east-1}}]\nclusters: [{{name: {long}, guardDutyManaged: maybe}}]\n");
        let out = rendered(&text);
        let shown = out.lines().nth(2).unwrap_or_default();
        assert!(shown.chars().count() < 140, "{shown}");
        assert!(shown.contains("…") && shown.contains("maybe"), "{shown}");
        let caret = out.lines().nth(3).unwrap_or_default();
        let at = |s: &str, needle: &str| s.find(needle).map(|b| s[..b].chars().count());
        assert_eq!(at(caret, "^"), at(shown, "maybe"), "{out}");
    }
}
