//! What a plain (unquoted) YAML scalar is to other YAML tools. marked-yaml hands every
//! scalar over as text, so `validate` alone would read `name: 123` or `tier: true` as
//! text; check-jsonschema (ruamel.yaml) and editors (YAML 1.2 core schema) read a number,
//! a boolean or null there, and the JSON Schema refuses it. A text field therefore takes
//! such a value only quoted, in `validate` as in the schema.

use std::sync::OnceLock;

use regex::Regex;

/// The YAML type of a plain scalar that is not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Typed {
    /// `~`, `null`, `Null`, `NULL`, or nothing.
    Null,
    /// `true`, `True`, `TRUE`, `false`, `False`, `FALSE`.
    Boolean,
    /// `12`, `-1`, `0x1F`, `0o17`, `0b101`, `1_000`.
    Integer,
    /// `1.5`, `1e3`, `.5`, `.inf`, `.nan`.
    Float,
}

impl Typed {
    /// The JSON Schema `type`s a value of this YAML type satisfies.
    pub(super) fn json_types(self) -> &'static [&'static str] {
        match self {
            Typed::Null => &["null"],
            Typed::Boolean => &["boolean"],
            Typed::Integer => &["integer", "number"],
            Typed::Float => &["number"],
        }
    }

    /// `a YAML number`, ... for a message.
    pub(super) fn words(self) -> &'static str {
        match self {
            Typed::Null => "YAML's null",
            Typed::Boolean => "a YAML boolean",
            Typed::Integer | Typed::Float => "a YAML number",
        }
    }
}

/// How ruamel.yaml (check-jsonschema's YAML reader) resolves a plain scalar under YAML
/// 1.2, its default: its implicit resolvers, regular expression for regular expression
/// (`ruamel/yaml/resolver.py`). Timestamps are text to check-jsonschema, so they are
/// text here too.
pub(super) fn typed(text: &str) -> Option<Typed> {
    struct Patterns {
        boolean: Regex,
        float: Regex,
        integer: Regex,
        null: Regex,
    }
    static PATTERNS: OnceLock<Option<Patterns>> = OnceLock::new();
    let p = PATTERNS
        .get_or_init(|| {
            Some(Patterns {
                boolean: Regex::new(r"^(?:true|True|TRUE|false|False|FALSE)$").ok()?,
                float: Regex::new(concat!(
                    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?",
                    r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)",
                    r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?",
                    r"|[-+]?\.(?:inf|Inf|INF)",
                    r"|\.(?:nan|NaN|NAN))$"
                ))
                .ok()?,
                integer: Regex::new(concat!(
                    r"^(?:[-+]?0b[0-1_]+",
                    r"|[-+]?0o?[0-7_]+",
                    r"|[-+]?[0-9_]+",
                    r"|[-+]?0x[0-9a-fA-F_]+)$"
                ))
                .ok()?,
                null: Regex::new(r"^(?:~|null|Null|NULL|)$").ok()?,
            })
        })
        .as_ref()?;
    // ruamel tries a resolver only when the first character may start its values (its
    // lists of first characters); the order is ruamel's: bool, float, int, null.
    let first = text.chars().next();
    let may = |chars: &str| first.is_some_and(|c| chars.contains(c));
    if may("tTfF") && p.boolean.is_match(text) {
        Some(Typed::Boolean)
    } else if may("-+0123456789.") && p.float.is_match(text) {
        Some(Typed::Float)
    } else if may("-+0123456789") && p.integer.is_match(text) {
        Some(Typed::Integer)
    } else if (first.is_none() || may("~nN")) && p.null.is_match(text) {
        Some(Typed::Null)
    } else {
        None
    }
}

/// The message for a plain scalar of YAML type `typed` where only text is allowed.
pub(super) fn quote_it(text: &str, typed: Typed) -> String {
    if text.is_empty() {
        return "expected text, got nothing (an empty value is YAML's null): write a value, \
                or \"\" for empty text"
            .to_owned();
    }
    format!(
        "{text} is {} here, not text: quote it, \"{text}\"",
        typed.words()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ruamel.yaml 0.18 (YAML 1.2) loads each plain scalar as, as check-jsonschema
    /// sees it (`k: VALUE`).
    #[test]
    fn plain_scalars_are_typed_as_check_jsonschema_types_them() {
        use Typed::*;
        let rows = [
            ("1", Some(Integer)),
            ("-1", Some(Integer)),
            ("+1", Some(Integer)),
            ("0o17", Some(Integer)),
            ("0x1F", Some(Integer)),
            ("0b101", Some(Integer)),
            ("1_000", Some(Integer)),
            ("0777", Some(Integer)),
            ("007", Some(Integer)),
            ("111111111111", Some(Integer)),
            ("1.5", Some(Float)),
            ("1e3", Some(Float)),
            ("1E3", Some(Float)),
            ("+1.", Some(Float)),
            ("1.", Some(Float)),
            (".5", Some(Float)),
            (".inf", Some(Float)),
            ("-.Inf", Some(Float)),
            (".nan", Some(Float)),
            ("0.1e-3", Some(Float)),
            ("true", Some(Boolean)),
            ("True", Some(Boolean)),
            ("FALSE", Some(Boolean)),
            ("~", Some(Null)),
            ("null", Some(Null)),
            ("Null", Some(Null)),
            ("NULL", Some(Null)),
            ("", Some(Null)),
            ("NaN", None),
            ("inf", None),
            ("tRue", None),
            ("yes", None),
            ("no", None),
            ("on", None),
            ("off", None),
            ("y", None),
            ("nUll", None),
            ("2001-12-14", None),
            ("12:30", None),
            ("1:00:00", None),
            ("1e", None),
            ("e3", None),
            ("1.2.3", None),
            ("0x", None),
            ("1,000", None),
            ("_1", None),
            ("30s", None),
            ("us-east-1", None),
            ("payments", None),
        ];
        for (text, want) in rows {
            assert_eq!(typed(text), want, "{text:?}");
        }
    }
}
