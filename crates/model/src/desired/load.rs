//! Parsing a desired-state file into [`DesiredState`], reporting every mistake at once
//! with its line, column and field path.

use std::fmt;

use marked_yaml::{LoaderOptions, Node};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::validate::{validate, Seg};
use super::{
    ClusterRule, DesiredState, DetectorSpec, ReconcileSpec, RedeploySpec, SafetySpec, Target,
    UnmatchedPolicy,
};

/// Largest desired-state file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most cluster rules accepted in one file.
pub const MAX_RULES: usize = 10_000;

/// One mistake in a desired-state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path, like `clusters[2].match.namePattern`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every mistake found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigErrors {
    /// The file (or other source) name as given.
    pub file: String,
    /// The mistakes, in document order.
    pub errors: Vec<ConfigError>,
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

/// The JSON Schema of the desired-state file, generated from the same types the parser uses.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(DesiredState)).unwrap_or_default()
}

/// Parses and validates a desired-state document.
///
/// # Errors
/// Every syntax, type, unknown-key and validation mistake, each with line, column and path.
pub fn parse(file: &str, text: &str) -> Result<DesiredState, ConfigErrors> {
    let fail = |errors: Vec<ConfigError>| {
        Err(ConfigErrors {
            file: file.to_owned(),
            errors,
        })
    };
    if text.len() > MAX_FILE_BYTES {
        return fail(vec![whole_file(format!(
            "file is {} bytes, larger than the limit of {MAX_FILE_BYTES}",
            text.len()
        ))]);
    }
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return fail(vec![whole_file(
            "file is empty: a desired state needs at least `version` and `targets`".into(),
        )]);
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => root,
        Err(e) => return fail(vec![clamp_to_text(load_error(&e), text)]),
    };
    let mut errors = check_sections(&root);
    if !errors.is_empty() {
        return fail(errors);
    }
    let desired: DesiredState = match marked_yaml::from_node(&root) {
        Ok(d) => d,
        Err(e) => return fail(vec![node_error(&root, &[], &e)]),
    };
    for (path, message) in validate(&desired) {
        errors.push(at_path(&root, &path, message));
    }
    if errors.is_empty() {
        Ok(desired)
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        fail(errors)
    }
}

/// Deserializes each top-level section, and each list item, on its own so that one
/// mistake does not hide the next.
fn check_sections(root: &Node) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let Some(map) = root.as_mapping() else {
        return vec![at_node(root, "", "the top level must be a mapping".into())];
    };
    for required in ["version", "targets"] {
        if map.get(required).is_none() {
            errors.push(at_node(root, "", format!("missing field `{required}`")));
        }
    }
    for (key, value) in map.iter() {
        let name = key.as_str();
        let path = [Seg::Key(name.to_owned())];
        let found = match name {
            "version" => check::<u32>(value, &path),
            "targets" => check_list::<Target>(value, &path),
            "detector" => check::<DetectorSpec>(value, &path),
            "clusters" => check_list::<ClusterRule>(value, &path),
            "unmatchedClusters" => check::<UnmatchedPolicy>(value, &path),
            "suspend" => check::<bool>(value, &path),
            "redeploy" => check::<RedeploySpec>(value, &path),
            "safety" => check::<SafetySpec>(value, &path),
            "reconcile" => check::<ReconcileSpec>(value, &path),
            other => vec![ConfigError {
                message: format!(
                    "unknown field `{other}`, expected one of version, targets, detector, clusters, \
                     unmatchedClusters, suspend, redeploy, safety, reconcile"
                ),
                ..at_span(key.span(), "")
            }],
        };
        errors.extend(found);
    }
    errors
}

fn check<T: DeserializeOwned>(node: &Node, path: &[Seg]) -> Vec<ConfigError> {
    match marked_yaml::from_node::<T>(node) {
        Ok(_) => Vec::new(),
        Err(e) => vec![node_error(node, path, &e)],
    }
}

fn check_list<T: DeserializeOwned>(node: &Node, path: &[Seg]) -> Vec<ConfigError> {
    let Some(items) = node.as_sequence() else {
        if node.as_scalar().is_some_and(|s| s.as_str().is_empty()) {
            return Vec::new();
        }
        return vec![at_node(node, &Seg::render(path), "expected a list".into())];
    };
    if path.first() == Some(&Seg::Key("clusters".into())) && items.len() > MAX_RULES {
        return vec![at_node(
            node,
            &Seg::render(path),
            format!("{} rules, more than the limit of {MAX_RULES}", items.len()),
        )];
    }
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut item_path = path.to_vec();
        item_path.push(Seg::Index(i));
        errors.extend(check::<T>(item, &item_path));
    }
    errors
}

fn node_error(node: &Node, path: &[Seg], e: &marked_yaml::FromNodeError) -> ConfigError {
    let mut full = Seg::render(path);
    if let Some(inner) = e.path().filter(|p| !p.is_empty() && *p != ".") {
        if !full.is_empty() && !inner.starts_with('[') {
            full.push('.');
        }
        full.push_str(inner);
    }
    let message = lowercase_first(&e.to_string_without_path());
    match e.start_mark() {
        Some(m) => ConfigError {
            line: m.line(),
            column: m.column(),
            path: full,
            message,
        },
        None => at_node(node, &full, message),
    }
}

trait InnerMessage {
    fn to_string_without_path(&self) -> String;
}

impl InnerMessage for marked_yaml::FromNodeError {
    fn to_string_without_path(&self) -> String {
        let inner: &marked_yaml::Error = self;
        inner.to_string()
    }
}

fn load_error(e: &marked_yaml::LoadError) -> ConfigError {
    use marked_yaml::LoadError as L;
    let (mark, message) = match e {
        L::TopLevelMustBeMapping(m) => (Some(*m), "the top level must be a mapping".to_owned()),
        L::TopLevelMustBeSequence(m) => (Some(*m), "the top level must be a list".to_owned()),
        L::UnexpectedAnchor(m) => (Some(*m), "YAML anchors and aliases are not supported".to_owned()),
        L::MappingKeyMustBeScalar(m) => (Some(*m), "mapping keys must be plain strings".to_owned()),
        L::UnexpectedTag(m) => (Some(*m), "YAML tags (`!something`) are not supported".to_owned()),
        L::ScanError(m, scan) => (Some(*m), format!("YAML syntax error: {}", scan.info())),
        L::DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            (
                inner.key.span().start().copied(),
                format!("duplicate key `{}` (first at line {first})", inner.key.as_str()),
            )
        }
        // LoadError is non-exhaustive in spirit; keep whatever it says.
        #[allow(unreachable_patterns)]
        other => (None, other.to_string()),
    };
    match mark {
        Some(m) => ConfigError {
            line: m.line(),
            column: m.column(),
            path: String::new(),
            message,
        },
        None => whole_file(message),
    }
}

/// The YAML scanner marks an error found at the end of the input one line past the last;
/// point at the end of the last line instead.
fn clamp_to_text(mut e: ConfigError, text: &str) -> ConfigError {
    let lines: Vec<&str> = text.lines().collect();
    if e.line > lines.len() {
        e.line = lines.len().max(1);
        e.column = lines.last().map_or(0, |l| l.chars().count()) + 1;
        e.message.push_str(" (at the end of the file: is it truncated?)");
    }
    e
}

fn at_path(root: &Node, path: &[Seg], message: String) -> ConfigError {
    let mut node = root;
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
    at_node(node, &Seg::render(path), message)
}

fn at_node(node: &Node, path: &str, message: String) -> ConfigError {
    ConfigError {
        message,
        ..at_span(node.span(), path)
    }
}

fn at_span(span: &marked_yaml::Span, path: &str) -> ConfigError {
    let (line, column) = span.start().map(|m| (m.line(), m.column())).unwrap_or((1, 1));
    ConfigError {
        line,
        column,
        path: path.to_owned(),
        message: String::new(),
    }
}

fn whole_file(message: String) -> ConfigError {
    ConfigError {
        line: 1,
        column: 1,
        path: String::new(),
        message,
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
