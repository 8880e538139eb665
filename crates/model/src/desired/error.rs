//! The mistakes a desired-state file can hold: where each one is, a stable kind for
//! machines, and a message for people.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

/// What sort of mistake a [`ConfigError`] is: stable, machine-readable, and safe to show
/// where the message is not (the message and field path can echo the file's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigErrorKind {
    /// Not well-formed YAML, or YAML features the file may not use (anchors, tags, a
    /// second document).
    Syntax,
    /// Not UTF-8, or characters YAML does not allow (NUL and other control characters).
    Encoding,
    /// Nothing but comments and blank lines.
    Empty,
    /// A key the schema does not know.
    UnknownField,
    /// A required key is not there.
    MissingField,
    /// A value of the wrong type (a string for a number, a scalar for a list, ...).
    WrongType,
    /// A value of the right type that is not allowed (a bad region, a duration too long).
    InvalidValue,
    /// A size limit: file size, nesting depth, keys per mapping, rules, expanded targets.
    Limit,
    /// The same key, rule, account or target twice.
    Duplicate,
    /// The file could not be read at all (missing, not a regular file, no permission).
    Unreadable,
}

impl ConfigErrorKind {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigErrorKind::Syntax => "syntax",
            ConfigErrorKind::Encoding => "encoding",
            ConfigErrorKind::Empty => "empty",
            ConfigErrorKind::UnknownField => "unknown_field",
            ConfigErrorKind::MissingField => "missing_field",
            ConfigErrorKind::WrongType => "wrong_type",
            ConfigErrorKind::InvalidValue => "invalid_value",
            ConfigErrorKind::Limit => "limit",
            ConfigErrorKind::Duplicate => "duplicate",
            ConfigErrorKind::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One mistake in a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigError {
    /// 1-based line.
    #[schemars(range(min = 1))]
    pub line: usize,
    /// 1-based column.
    #[schemars(range(min = 1))]
    pub column: usize,
    /// What sort of mistake: stable, and never derived from the file's content.
    pub kind: ConfigErrorKind,
    /// Field path, like `clusters[2].match.namePattern`; empty for the whole file.
    pub path: String,
    /// What is wrong (may quote the file).
    pub message: String,
    /// For an unknown key or value: the allowed one nearest to what was written, when one
    /// is near (`clusters` for `clustres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl ConfigError {
    /// A mistake about the whole file, placed at its start.
    pub fn whole_file(kind: ConfigErrorKind, message: String) -> Self {
        ConfigError {
            line: 1,
            column: 1,
            kind,
            path: String::new(),
            message,
            suggestion: None,
        }
    }
}

/// Every mistake found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigErrors {
    /// The file (or other source) name as given.
    pub file: String,
    /// The mistakes, in document order.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// `file:line:column: kind` for the first `max` mistakes, joined by `; `, then `and N
    /// more`: the form to show where the file's content must not appear (HTTP endpoints,
    /// logs), since neither the message nor the field path is included.
    pub fn locations(&self, max: usize) -> Locations<'_> {
        Locations { errors: self, max }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: ", self.file, e.line, e.column)?;
            if !e.path.is_empty() {
                write!(f, "{}: ", e.path)?;
            }
            f.write_str(&e.message)?;
        }
        Ok(())
    }
}

/// See [`ConfigErrors::locations`].
#[derive(Debug, Clone, Copy)]
pub struct Locations<'a> {
    errors: &'a ConfigErrors,
    max: usize,
}

impl fmt::Display for Locations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.errors.file;
        for (i, e) in self.errors.errors.iter().take(self.max).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{file}:{}:{}: {}", e.line, e.column, e.kind)?;
        }
        let more = self.errors.errors.len().saturating_sub(self.max);
        if more > 0 {
            write!(f, "; and {more} more")?;
        }
        Ok(())
    }
}

/// The kind of a deserialization mistake. marked-yaml carries serde's `missing_field`,
/// `invalid_type`, ... as `Error::Other(message)` built by serde's default methods, so
/// the message prefix those methods write is the only signal there is; this is the one
/// place that reads it.
pub(crate) fn kind_of(e: &marked_yaml::Error) -> ConfigErrorKind {
    use marked_yaml::Error as E;
    match e {
        E::NotBoolean(_) | E::IntegerParseFailure(..) | E::FloatParseFailure(..) => {
            ConfigErrorKind::WrongType
        }
        E::UnknownFieldError(..) => ConfigErrorKind::UnknownField,
        E::Other(message, _) => {
            if message.starts_with("missing field") {
                ConfigErrorKind::MissingField
            } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
                ConfigErrorKind::WrongType
            } else if message.starts_with("duplicate field") {
                ConfigErrorKind::Duplicate
            } else {
                ConfigErrorKind::InvalidValue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_as_their_snake_case_name() {
        for kind in [
            ConfigErrorKind::Syntax,
            ConfigErrorKind::Encoding,
            ConfigErrorKind::Empty,
            ConfigErrorKind::UnknownField,
            ConfigErrorKind::MissingField,
            ConfigErrorKind::WrongType,
            ConfigErrorKind::InvalidValue,
            ConfigErrorKind::Limit,
            ConfigErrorKind::Duplicate,
            ConfigErrorKind::Unreadable,
        ] {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str()))
            );
        }
    }

    #[test]
    fn locations_show_neither_the_message_nor_the_path() {
        let errors = ConfigErrors {
            file: "d.yaml".into(),
            errors: vec![ConfigError {
                line: 3,
                column: 10,
                kind: ConfigErrorKind::InvalidValue,
                path: "s3cr3t-path".into(),
                message: "got \"s3cr3t\"".into(),
                suggestion: None,
            }],
        };
        assert_eq!(
            errors.locations(10).to_string(),
            "d.yaml:3:10: invalid_value"
        );
    }
}
