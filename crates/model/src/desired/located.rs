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
    let found = |m: Option<marked_yaml::Marker>| {
        m.and_then(|m| src.rest_of_line(m.line(), m.column()))
            .map(|rest| rest.split(" #").next().unwrap_or(rest).trim().to_owned())
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
                _ => format!("expected a whole number, got {got:?}"),
            }
        }
        marked_yaml::Error::FloatParseFailure(..) => {
            format!("expected a number, got {:?}", found(e.start_mark()))
        }
        marked_yaml::Error::NotBoolean(..) => {
            format!("expected true or false, got {:?}", found(e.start_mark()))
        }
        marked_yaml::Error::UnknownFieldError(field, expected, _) => {
            suggestion = nearest(field, expected.iter().copied()).map(str::to_owned);
            let allowed: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown field `{field}`, expected one of {}",
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
