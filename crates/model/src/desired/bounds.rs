//! The checks that run before the YAML loader builds a tree, so that no input can make
//! the loader (or serde, or `Drop`) recurse deeply, spend more than linear time, or read
//! a file differently from what an editor shows: UTF-8, characters, nesting depth and
//! keys per mapping.

use yaml_rust2::parser::{Event, Parser};

use super::error::{ConfigError, ConfigErrorKind as Kind};

/// Deepest nesting of lists and mappings accepted (the top-level mapping is level 1).
///
/// The deepest path the schema has is five levels (`clusters[i].match.tags.key`,
/// `targets[i].accounts[j].id`, `redeploy.windows[i].days[j]`); anything deeper is a
/// mistake, so the limit only has to leave room for the mistake to be reported where it
/// is. 32 does that, and keeps every recursive step after this check (the loader, serde,
/// `Clone` and `Drop` of the tree) to a few kilobytes of stack on any thread.
pub const MAX_DEPTH: usize = 32;

/// Most keys accepted in one mapping. The schema's widest mapping is `redeploy` with 9
/// keys; `match.tags` is user data, and AWS allows 50 tags per resource. 1,000 leaves
/// room for both and bounds the per-key work of a section.
pub const MAX_KEYS: usize = 1_000;

/// The text of `bytes`, or an encoding mistake at the first byte that is not UTF-8.
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        // `valid_up_to` is a char boundary, and the prefix up to it is valid UTF-8.
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        let (line, column) = end_of(prefix);
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
        ConfigError {
            line,
            column,
            kind: Kind::Encoding,
            path: String::new(),
            message: format!("the file is not UTF-8 text (byte 0x{byte:02x})"),
            suggestion: None,
        }
    })
}

/// Whether YAML 1.2 allows `c` in a document (§5.1 `c-printable`), less NEL (U+0085):
/// YAML 1.1 read NEL as a line break, so two tools could disagree on the lines of a file
/// that holds one.
fn printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{7e}'
        | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}'
        | '\u{10000}'..='\u{10ffff}')
}

/// An encoding mistake at the first character YAML does not allow: NUL (which the YAML
/// scanner takes for the end of the input, silently dropping the rest of the file), the
/// other C0 controls but TAB, LF and CR, DEL, the C1 controls, U+FFFE and U+FFFF.
pub(super) fn characters(text: &str) -> Result<(), ConfigError> {
    let Some((at, c)) = text.char_indices().find(|&(_, c)| !printable(c)) else {
        return Ok(());
    };
    let (line, column) = end_of(text.get(..at).unwrap_or_default());
    let what = match c {
        '\0' => "a NUL byte".to_owned(),
        c => format!("control character U+{:04X}", u32::from(c)),
    };
    Err(ConfigError {
        line,
        column,
        kind: Kind::Encoding,
        path: String::new(),
        message: format!("{what}: YAML files hold printable text only"),
        suggestion: None,
    })
}

/// Line and column (1-based, in characters) just past `prefix`, counting line breaks as
/// YAML does (LF, CR LF, and a lone CR).
fn end_of(prefix: &str) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
    }
    (line, column)
}

/// One open collection of the event stream.
enum Open {
    Sequence,
    /// A mapping and the number of nodes (keys and values) read in it so far.
    Mapping(usize),
}

/// A limit mistake at the first node nested deeper than [`MAX_DEPTH`], or at the first
/// key past [`MAX_KEYS`] in a mapping.
///
/// Reads the event stream of the same parser the loader uses; the parser itself is a
/// state machine with an explicit stack, so this pass holds at any depth. A syntax error
/// ends the pass without a mistake: the loader reports it, and cannot recurse deeper than
/// this pass has seen, since it reads the same events.
pub(super) fn structure(text: &str) -> Result<(), ConfigError> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open> = Vec::new();
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            // The scanner reads the brackets of flow collections ahead of the parser and
            // stops at 255 levels, before this pass sees the 33rd; its error says only
            // this. Deep flow nesting is the same mistake as deep block nesting.
            Err(e) if e.info() == "recursion limit exceeded" => {
                return Err(ConfigError {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    kind: Kind::Limit,
                    path: String::new(),
                    message: too_deep(),
                    suggestion: None,
                })
            }
            Err(_) => return Ok(()),
        };
        // The parser's columns are 0-based; the loader adds one, and so does this.
        let at = |kind: Kind, message: String| ConfigError {
            line: mark.line(),
            column: mark.col() + 1,
            kind,
            path: String::new(),
            message,
            suggestion: None,
        };
        let collection = match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
                continue;
            }
            Event::SequenceStart(..) => Some(Open::Sequence),
            Event::MappingStart(..) => Some(Open::Mapping(0)),
            Event::Scalar(..) | Event::Alias(_) => None,
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {
                continue
            }
        };
        // A node: a key or a value of the innermost mapping, or an item of a list.
        if let Some(Open::Mapping(nodes)) = open.last_mut() {
            *nodes += 1;
            // Keys are the odd nodes: the first, the third, ...
            if *nodes % 2 == 1 && *nodes / 2 + 1 > MAX_KEYS {
                return Err(at(
                    Kind::Limit,
                    format!("more than {MAX_KEYS} keys in one mapping"),
                ));
            }
        }
        if let Some(collection) = collection {
            if open.len() >= MAX_DEPTH {
                return Err(at(Kind::Limit, too_deep()));
            }
            open.push(collection);
        }
    }
}

fn too_deep() -> String {
    format!("lists and mappings nested more than {MAX_DEPTH} levels deep")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_block(depth: usize) -> String {
        "- ".repeat(depth) + "x\n"
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted_and_one_more_level_is_not() {
        assert_eq!(structure(&nested_block(MAX_DEPTH)), Ok(()));
        let e = structure(&nested_block(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (1, 2 * MAX_DEPTH + 1, Kind::Limit)
        );
    }

    #[test]
    fn flow_nesting_is_bounded_like_block_nesting() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(structure(&ok), Ok(()));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let e = structure(&deep).unwrap_err();
        assert_eq!((e.line, e.column), (1, MAX_DEPTH + 1));
        let mixed = "{a: ".repeat(MAX_DEPTH + 1) + "b" + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(structure(&mixed).map_err(|e| e.kind), Err(Kind::Limit));
    }

    #[test]
    fn keys_up_to_the_limit_are_accepted_and_one_more_is_not() {
        let keys = |n: usize| (0..n).map(|i| format!("k{i}: v\n")).collect::<String>();
        assert_eq!(structure(&keys(MAX_KEYS)), Ok(()));
        let e = structure(&keys(MAX_KEYS + 1)).unwrap_err();
        assert_eq!((e.line, e.column, e.kind), (MAX_KEYS + 1, 1, Kind::Limit));
        // Values that are collections do not count as keys.
        let nested: String = (0..MAX_KEYS)
            .map(|i| format!("k{i}:\n  - a\n  - b\n"))
            .collect();
        assert_eq!(structure(&nested), Ok(()));
    }

    #[test]
    fn control_characters_are_located() {
        // (label, text, line, column)
        let rows = [
            ("NUL", "a: 1\nb: \u{0}x\n", 2, 4),
            ("BEL", "\u{7}", 1, 1),
            ("ESC after CRLF", "a\r\nb\u{1b}", 2, 2),
            ("DEL after a lone CR", "a\rbc\u{7f}", 2, 3),
            ("C1 after a multi-byte char", "é\u{9b}", 1, 2),
            ("NEL", "a: b\u{85}", 1, 5),
            ("U+FFFE", "\u{fffe}", 1, 1),
        ];
        for (label, text, line, column) in rows {
            let e = characters(text).unwrap_err();
            assert_eq!(
                (e.line, e.column, e.kind),
                (line, column, Kind::Encoding),
                "{label}"
            );
        }
        assert_eq!(characters("a:\tb\r\n# é ☃ 𝄞\n"), Ok(()));
    }

    #[test]
    fn invalid_utf8_is_located_at_its_first_byte() {
        let e = utf8(b"a: 1\nb: \xff\n").unwrap_err();
        assert_eq!((e.line, e.column, e.kind), (2, 4, Kind::Encoding));
        assert!(e.message.contains("0xff"), "{}", e.message);
        // A multi-byte sequence cut short.
        let e = utf8("é".as_bytes().get(..1).unwrap_or_default()).unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
    }
}
