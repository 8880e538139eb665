//! Messages in the file's language: serde speaks of Rust types (`expected u32`, `a
//! sequence`, `struct RedeploySpec`); a desired-state file has whole numbers, numbers,
//! text, lists and mappings. Also the nearest allowed key or word for a mistyped one.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Rewrites one of serde's messages (`invalid type: string "1", expected u32`) in the
/// words of the file (`expected a whole number, got the text "1"`); any other message is
/// returned with its Rust type names replaced.
pub(crate) fn humanize(message: &str) -> String {
    for (prefix, got) in [("invalid type: ", true), ("invalid value: ", false)] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((unexpected, expected)) = split_expected(rest) {
                let expected = expected_words(expected);
                return if got {
                    format!("expected {expected}, got {}", unexpected_words(unexpected))
                } else {
                    format!(
                        "{} is not allowed: expected {expected}",
                        unexpected_words(unexpected)
                    )
                };
            }
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((length, expected)) = rest.split_once(", expected ") {
            return format!("expected {}, got {length} items", expected_words(expected));
        }
    }
    if let Some(name) = message.strip_prefix("data did not match any variant of untagged enum ") {
        return match name.trim() {
            "TargetEntry" => "expected a target: a mapping with `region` (and `roleArn`, \
                              `externalId`), or with `regions` and `accounts`"
                .to_owned(),
            _ => "the value matches none of the allowed forms".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    message.to_owned()
}

/// `string "a, expected b", expected u32` → (`string "a, expected b"`, `u32`): the last
/// `, expected ` is serde's (a quoted value may hold the words too).
fn split_expected(rest: &str) -> Option<(&str, &str)> {
    let at = rest.rfind(", expected ")?;
    Some((&rest[..at], &rest[at + ", expected ".len()..]))
}

/// serde's `Unexpected` (`integer `5``, `string "x"`, `sequence`, ...) in the file's words.
fn unexpected_words(what: &str) -> String {
    let tick = |s: &str| s.trim_matches('`').to_owned();
    if let Some(v) = what.strip_prefix("integer ") {
        return format!("the whole number {}", tick(v));
    }
    if let Some(v) = what.strip_prefix("floating point ") {
        return format!("the number {}", tick(v));
    }
    if let Some(v) = what.strip_prefix("boolean ") {
        return tick(v);
    }
    if let Some(v) = what.strip_prefix("string ") {
        return format!("the text {v}");
    }
    if let Some(v) = what.strip_prefix("character ") {
        return format!("the text {:?}", tick(v));
    }
    match what {
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        "unit value" | "unit" | "Option value" => "nothing".to_owned(),
        "byte array" => "bytes".to_owned(),
        "enum" | "unit variant" | "newtype variant" | "tuple variant" | "struct variant" => {
            "a tagged value".to_owned()
        }
        other => other.to_owned(),
    }
}

/// serde's `Expected` (`u32`, `a sequence`, `struct X`, `enum X`, or a visitor's own
/// words) in the file's words.
pub(crate) fn expected_words(what: &str) -> String {
    let what = what.trim();
    match what {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => return "a whole number".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => return "a whole number".to_owned(),
        "f32" | "f64" => return "a number".to_owned(),
        "a boolean" => return "true or false".to_owned(),
        "a string" | "a borrowed string" | "a character" | "a string or bytes" => {
            return "text".to_owned()
        }
        "a sequence" => return "a list".to_owned(),
        "a map" => return "a mapping".to_owned(),
        "unit" | "a unit struct" => return "nothing".to_owned(),
        "option" => return "a value".to_owned(),
        "field identifier" | "variant identifier" => return "a key name".to_owned(),
        _ => {}
    }
    for prefix in ["struct ", "tuple struct ", "unit struct "] {
        if what.starts_with(prefix) {
            return "a mapping".to_owned();
        }
    }
    if let Some(name) = what.strip_prefix("enum ") {
        return match words_of(name.trim()) {
            Some(words) => format!("one of: {}", words.join(", ")),
            None => "one of the allowed words".to_owned(),
        };
    }
    what.to_owned()
}

/// The words an enum of the desired state allows, read from its schema (`enum`, or the
/// `const`s of a `oneOf`).
fn words_of(name: &str) -> Option<&'static [String]> {
    static WORDS: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    let words = WORDS.get_or_init(|| {
        let schema = super::shape::schema();
        let mut out = BTreeMap::new();
        let defs = schema.get("$defs").and_then(|d| d.as_object());
        for (name, def) in defs.into_iter().flatten() {
            let mut words: Vec<String> = Vec::new();
            let mut push = |v: &serde_json::Value| {
                if let Some(s) = v.as_str() {
                    words.push(s.to_owned());
                }
            };
            def.get("enum")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
                .for_each(&mut push);
            let one_of = def.get("oneOf").and_then(|o| o.as_array());
            for variant in one_of.into_iter().flatten() {
                variant.get("const").into_iter().for_each(&mut push);
                variant
                    .get("enum")
                    .and_then(|e| e.as_array())
                    .into_iter()
                    .flatten()
                    .for_each(&mut push);
            }
            if !words.is_empty() {
                out.insert(name.clone(), words);
            }
        }
        out
    });
    words.get(name).map(Vec::as_slice)
}

/// The longest written name [`nearest`] looks at, in characters.
const LONGEST_TYPO: usize = 64;

/// The allowed name nearest to `written`, if one is near enough to be a typo of it:
/// case-insensitive Damerau-Levenshtein distance (a swap of two letters is one edit) of
/// at most a third of the length, and at least 1 for names of three letters or more.
pub(crate) fn nearest<'a>(
    written: &str,
    allowed: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = written.chars().count();
    // A key longer than any allowed name is no typo of one, and the distance costs the
    // product of the lengths: a megabyte key would take seconds.
    if length > LONGEST_TYPO {
        return None;
    }
    let written_lower = written.to_lowercase();
    let limit = length / 3;
    allowed
        .into_iter()
        .filter(|a| *a != written)
        // The distance is at least the difference of the lengths.
        .filter(|a| a.chars().count().abs_diff(length) <= limit)
        .map(|a| {
            (
                strsim::damerau_levenshtein(&written_lower, &a.to_lowercase()),
                a,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// The backticked names of a serde list (`` `a`, `b` or `c` ``), in order.
pub(crate) fn backticked(list: &str) -> Vec<&str> {
    list.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_said_in_the_files_words() {
        let rows = [
            (
                "invalid type: string \"1\", expected u32",
                "expected a whole number, got the text \"1\"",
            ),
            (
                "invalid type: sequence, expected f64",
                "expected a number, got a list",
            ),
            (
                "invalid type: map, expected a boolean",
                "expected true or false, got a mapping",
            ),
            (
                "invalid type: integer `5`, expected a sequence",
                "expected a list, got the whole number 5",
            ),
            (
                "invalid type: integer `5`, expected struct RedeploySpec",
                "expected a mapping, got the whole number 5",
            ),
            (
                "invalid type: floating point `1.5`, expected a string",
                "expected text, got the number 1.5",
            ),
            (
                "invalid type: boolean `true`, expected a map",
                "expected a mapping, got true",
            ),
            (
                "invalid type: map, expected enum FeatureSetting",
                "expected one of: enabled, disabled, unmanaged, got a mapping",
            ),
            (
                "invalid type: string \"a, expected b\", expected i64",
                "expected a whole number, got the text \"a, expected b\"",
            ),
            (
                "unknown variant `on`, expected one of `enabled`, `disabled`",
                "unknown value `on`, expected one of `enabled`, `disabled`",
            ),
            (
                "missing field `guardDutyManaged`",
                "missing field `guardDutyManaged`",
            ),
        ];
        for (serde, ours) in rows {
            assert_eq!(humanize(serde), ours, "{serde}");
        }
    }

    #[test]
    fn the_nearest_allowed_name_is_suggested_when_it_is_near() {
        let top = [
            "version",
            "targets",
            "organization",
            "clusters",
            "redeploy",
            "reconcile",
        ];
        for (written, want) in [
            ("clustres", Some("clusters")),
            ("clsuters", Some("clusters")),
            ("Clusters", Some("clusters")),
            ("verison", Some("version")),
            ("redeply", Some("redeploy")),
            ("target", Some("targets")),
            ("xyz", None),
            ("banana", None),
        ] {
            assert_eq!(nearest(written, top), want, "{written}");
        }
        assert_eq!(
            nearest("rolearn", ["region", "roleArn", "externalId"]),
            Some("roleArn")
        );
        // Too long to be a typo of any name, or too far in length from a candidate.
        let long = "clusters".repeat(9);
        assert_eq!(nearest(&long, [long.as_str(), "clusters"]), None);
        assert_eq!(nearest("redeployyyyyy", ["redeploy"]), None);
        assert_eq!(
            backticked("expected one of `a`, `bc` or `d`"),
            ["a", "bc", "d"]
        );
    }
}
