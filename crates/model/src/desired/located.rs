//! Where a mistake is: turns what marked-yaml reports (load errors, deserialization
//! errors, nodes and spans) into located [`ConfigError`]s.

use marked_yaml::Node;

use super::error::{kind_of, ConfigError, ConfigErrorKind as Kind};
use super::human::{backticked, humanize, nearest};
use super::source::Source;
use super::validate::Seg;

pub(super) fn node_error(
    node: &Node,
    path: &[Seg],
    e: &marked_yaml::FromNodeError,
    src: &Source,
) -> ConfigError {
    let mut full = Seg::render(path);
    if let Some(inner) = e.path().filter(|p| !p.is_empty() && *p != ".") {
        if !full.is_empty() && !inner.starts_with('[') {
            full.push('.');
        }
        full.push_str(inner);
    }
    // The value the mistake is at: the scalar that starts there (its own text, without
    // quotes, and not what follows it on the line), or else the rest of the line.
    let found = |m: Option<marked_yaml::Marker>| {
        let Some(m) = m else {
            return String::new();
        };
        if let Some(scalar) = scalar_at(node, m.line(), m.column()) {
            return clip(scalar.as_str()).into_owned();
        }
        src.rest_of_line(m.line(), m.column())
            .map(|rest| clip(rest.split(" #").next().unwrap_or(rest).trim()).into_owned())
            .unwrap_or_default()
    };
    let kind = kind_of(e);
    let mut suggestion = None;
    let message = match &**e {
        marked_yaml::Error::IntegerParseFailure(parse, _) => {
            let got = found(e.start_mark());
            match parse.kind() {
                std::num::IntErrorKind::PosOverflow => format!("{got:?} is too large a number"),
                _ if got.starts_with('-') => {
                    format!("expected a whole number, 0 or more, got {got:?}")
                }
                _ => format!("expected a whole number, got {}", quoted(&got)),
            }
        }
        marked_yaml::Error::FloatParseFailure(..) => {
            format!("expected a number, got {}", quoted(&found(e.start_mark())))
        }
        marked_yaml::Error::NotBoolean(..) => {
            format!(
                "expected true or false, got {}",
                quoted(&found(e.start_mark()))
            )
        }
        marked_yaml::Error::UnknownFieldError(field, expected, _) => {
            suggestion = nearest(field, expected.iter().copied()).map(str::to_owned);
            let allowed: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown field `{}`, expected one of {}",
                clip(field),
                allowed.join(", ")
            )
        }
        marked_yaml::Error::Other(message, _) => {
            // `unknown variant `x`, expected one of `a`, `b``: the allowed words follow x.
            if message.starts_with("unknown variant ") {
                if let Some((written, allowed)) = backticked(message).split_first() {
                    suggestion = nearest(written, allowed.iter().copied()).map(str::to_owned);
                }
            }
            humanize(&lowercase_first(message))
        }
    };
    let message = with_suggestion(message, suggestion.as_deref());
    match e.start_mark() {
        Some(m) => ConfigError {
            line: m.line(),
            column: m.column(),
            kind,
            path: full,
            message,
            suggestion,
        },
        None => ConfigError {
            suggestion,
            ..at_node(node, &full, kind, message)
        },
    }
}

pub(super) fn load_error(e: &marked_yaml::LoadError) -> ConfigError {
    use marked_yaml::LoadError as L;
    let (mark, kind, message) = match e {
        L::TopLevelMustBeMapping(m) => (
            Some(*m),
            Kind::WrongType,
            "the top level must be a mapping".to_owned(),
        ),
        L::TopLevelMustBeSequence(m) => (
            Some(*m),
            Kind::WrongType,
            "the top level must be a list".to_owned(),
        ),
        L::UnexpectedAnchor(m) => (
            Some(*m),
            Kind::Syntax,
            "YAML anchors and aliases are not supported".to_owned(),
        ),
        L::MappingKeyMustBeScalar(m) => (
            Some(*m),
            Kind::WrongType,
            "mapping keys must be plain strings".to_owned(),
        ),
        L::UnexpectedTag(m) => (
            Some(*m),
            Kind::Syntax,
            "YAML tags (`!something`) are not supported".to_owned(),
        ),
        L::ScanError(m, scan) => (
            Some(*m),
            Kind::Syntax,
            format!("YAML syntax error: {}", scan.info()),
        ),
        L::DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            (
                inner.key.span().start().copied(),
                Kind::Duplicate,
                format!(
                    "duplicate key `{}` (first at line {first})",
                    inner.key.as_str()
                ),
            )
        }
        // LoadError is non-exhaustive in spirit; keep whatever it says.
        #[allow(unreachable_patterns)]
        other => (None, Kind::Syntax, other.to_string()),
    };
    match mark {
        Some(m) => ConfigError {
            line: m.line(),
            column: m.column(),
            kind,
            path: String::new(),
            message,
            suggestion: None,
        },
        None => ConfigError::whole_file(kind, message),
    }
}

/// The YAML scanner marks an error found at the end of the input one line past the last;
/// point at the end of the last line instead.
pub(super) fn clamp_to_text(mut e: ConfigError, text: &str) -> ConfigError {
    let lines: Vec<&str> = text.lines().collect();
    if e.line > lines.len() {
        e.line = lines.len().max(1);
        e.column = lines.last().map_or(0, |l| l.chars().count()) + 1;
        e.message
            .push_str(" (at the end of the file: is it truncated?)");
    }
    e
}

/// The node at `path` below `node`, or the deepest one of the path that exists.
pub(super) fn deepest<'n>(mut node: &'n Node, path: &[Seg]) -> &'n Node {
    for seg in path {
        let next = match seg {
            Seg::Key(k) => node.as_mapping().and_then(|m| m.get(k.as_str())),
            Seg::Index(i) => node.as_sequence().and_then(|s| s.get(*i)),
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

pub(super) fn at_path(root: &Node, path: &[Seg], kind: Kind, message: String) -> ConfigError {
    at_node(deepest(root, path), &Seg::render(path), kind, message)
}

pub(super) fn at_node(node: &Node, path: &str, kind: Kind, message: String) -> ConfigError {
    at_span(node.span(), path, kind, message)
}

pub(super) fn at_span(
    span: &marked_yaml::Span,
    path: &str,
    kind: Kind,
    message: String,
) -> ConfigError {
    let (line, column) = span
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1));
    ConfigError {
        line,
        column,
        kind,
        path: path.to_owned(),
        message,
        suggestion: None,
    }
}

/// The scalar of `node` (a value, not a key) that starts at a line and column.
fn scalar_at(
    node: &Node,
    line: usize,
    column: usize,
) -> Option<&marked_yaml::types::MarkedScalarNode> {
    let starts_here = |span: &marked_yaml::Span| {
        span.start()
            .is_some_and(|m| (m.line(), m.column()) == (line, column))
    };
    match node {
        Node::Scalar(s) => starts_here(s.span()).then_some(s),
        Node::Sequence(items) => items.iter().find_map(|i| scalar_at(i, line, column)),
        Node::Mapping(map) => map.values().find_map(|v| scalar_at(v, line, column)),
    }
}

/// What was found, for a message: quoted, or `nothing` for an empty value.
fn quoted(found: &str) -> String {
    if found.is_empty() {
        "nothing (an empty value)".to_owned()
    } else {
        format!("{found:?}")
    }
}

/// Longest key or value a message repeats, in characters.
pub(super) const LONGEST_ECHO: usize = 80;

/// A key or value as a message repeats it: at most [`LONGEST_ECHO`] characters, then `…`.
pub(super) fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(LONGEST_ECHO) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

/// A message with every quoted (`"..."`) or backticked run longer than [`LONGEST_ECHO`]
/// characters clipped: whatever site repeats a value, a megabyte value is not repeated.
pub(super) fn clip_echoes(message: &str) -> std::borrow::Cow<'_, str> {
    if message.chars().count() <= LONGEST_ECHO {
        return message.into();
    }
    let mut out = String::with_capacity(message.len().min(4 * LONGEST_ECHO));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&clip_words(&rest[..open]));
        out.push(quote);
        let inner = &rest[open + 1..];
        // The closing quote; a `"` escaped by Debug formatting is not one.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(close) = close else {
            out.push_str(&clip(inner));
            return out.into();
        };
        out.push_str(&clip(&inner[..close]));
        out.push(quote);
        rest = &inner[close + 1..];
    }
    out.push_str(&clip_words(rest));
    out.into()
}

/// Text outside quotes with each word clipped (an unquoted number of a megabyte repeated
/// in a message).
fn clip_words(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= LONGEST_ECHO {
        return text.into();
    }
    let words: Vec<std::borrow::Cow<'_, str>> = text.split(' ').map(clip).collect();
    words.join(" ").into()
}

/// A field path with each key clipped (an unknown key of a megabyte).
pub(super) fn clip_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.chars().count() <= LONGEST_ECHO {
        return path.into();
    }
    let parts: Vec<std::borrow::Cow<'_, str>> = path.split('.').map(clip).collect();
    parts.join(".").into()
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A message with `; did you mean `x`?` when there is a suggestion.
pub(super) fn with_suggestion(message: String, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(near) => format!("{message}; did you mean `{near}`?"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    fn messages(text: &str) -> Vec<String> {
        match parse("d.yaml", text) {
            Ok(_) => panic!("valid: {text}"),
            Err(e) => e
                .errors
                .into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    }

    const BASE: &str = "version: 1\ntargets: [{region: us-east-1}]\n";

    #[test]
    fn a_mistake_quotes_the_value_it_is_at_and_nothing_after_it() {
        let rows = [
            (
                "redeploy:\n  maxConcurrent:\n  maxPerHour: 0\n",
                "redeploy.maxConcurrent: expected a whole number, got nothing (an empty value)",
            ),
            (
                "reconcile: {conflicts: {reverts: x}, jitter: 0.2}\n",
                "reconcile.conflicts.reverts: expected a whole number, got \"x\"",
            ),
            (
                "reconcile: {jitter: lots, interval: 5m}\n",
                "reconcile.jitter: expected a number, got \"lots\"",
            ),
            (
                "suspend: \"x\"\n",
                "suspend: expected true or false, got \"x\"",
            ),
            (
                "suspend: 'x' # why\n",
                "suspend: expected true or false, got \"x\"",
            ),
        ];
        for (tail, want) in rows {
            let got = messages(&format!("{BASE}{tail}"));
            assert!(got.iter().any(|m| m == want), "{tail}: {got:?}");
        }
    }

    #[test]
    fn no_message_repeats_more_than_a_line_of_a_key_or_value() {
        let long = "x".repeat(10_000);
        let digits = "1".repeat(10_000);
        // YAML limits a plain key to 1,024 characters.
        let key = "k".repeat(1000);
        let text = format!(
            "{BASE}suspend: {long}\nredeploy: {{maxConcurrent: \"{long}\", {key}: 1}}\n\
             reconcile: {{interval: {long}}}\nclusters: [{{name: {long}, guardDutyManaged: {long}}}]\n\
             organizationn: {{administrator: {{accountId: {digits}}}}}\n{key}: 1\n"
        );
        let got = messages(&text);
        assert!(got.len() >= 6, "{got:?}");
        for m in &got {
            assert!(
                m.chars().count() < 600,
                "{} characters: {m}",
                m.chars().count()
            );
        }
        assert!(
            got.iter()
                .any(|m| m.contains(&format!("`{}…`", "k".repeat(80)))),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.contains(&format!("\"{}…\"", "x".repeat(80)))),
            "{got:?}"
        );
    }
}
