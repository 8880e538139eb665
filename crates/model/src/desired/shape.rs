//! Lists and mappings where the schema has something else. serde reads a struct from a
//! list as well as from a mapping (`redeploy: [1]` would be "expected true or false" at
//! `redeploy[0]`), and an enum from a one-key mapping; both would speak of things the file
//! does not say. The desired state's own JSON Schema says which shape each place takes.

use std::sync::OnceLock;

use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use serde_json::Value;

use super::error::{ConfigError, ConfigErrorKind as Kind};
use super::located::at_node;
use super::patterns;
use super::plain::{self, Typed};
use super::validate::Seg;

/// The generated desired-state schema, made once.
pub(super) fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(super::json_schema)
}

/// A wrong-type mistake at each list or mapping below `node` (at `path` in the
/// document) where the schema takes another shape; scalars are left to serde, whose
/// messages about them are good.
pub(super) fn mistakes(node: &Node, path: &[Seg]) -> Vec<ConfigError> {
    let mut at = Some(schema());
    for seg in path {
        at = at.and_then(|s| child(s, seg));
    }
    let mut out = Vec::new();
    if let Some(s) = at {
        walk(node, s, &mut path.to_vec(), &mut out);
    }
    out
}

fn walk(node: &Node, schema: &Value, path: &mut Vec<Seg>, out: &mut Vec<ConfigError>) {
    let (here, got) = match node {
        Node::Mapping(_) => (Shape::Mapping, "a mapping"),
        Node::Sequence(_) => (Shape::List, "a list"),
        Node::Scalar(s) => {
            out.extend(plain_mistake(node, s, schema, path));
            return;
        }
    };
    let shapes = shapes(schema);
    if !shapes.is_empty() && !shapes.contains(&here) {
        let message = format!("expected {}, got {got}", expected(schema));
        out.push(at_node(node, &Seg::render(path), Kind::WrongType, message));
        return;
    }
    match node {
        Node::Mapping(map) => {
            for (key, value) in map.iter() {
                let seg = Seg::Key(key.as_str().to_owned());
                if let Some(s) = child(schema, &seg) {
                    path.push(seg);
                    walk(value, s, path, out);
                    path.pop();
                }
            }
        }
        Node::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let seg = Seg::Index(i);
                if let Some(s) = child(schema, &seg) {
                    path.push(seg);
                    walk(item, s, path, out);
                    path.pop();
                }
            }
        }
        Node::Scalar(_) => {}
    }
}

/// A plain scalar that YAML types as null, a boolean or a number where the schema does
/// not take one: in a text field it must be quoted (other YAML tools, and so the schema,
/// read `name: 123` as a number), and nothing (null) is not a mapping or a list. Account
/// ids have their own message (`unquoted_number`); words from a list (`enum`) are left to
/// serde's "unknown value".
fn plain_mistake(
    node: &Node,
    scalar: &MarkedScalarNode,
    schema: &Value,
    path: &[Seg],
) -> Option<ConfigError> {
    if !scalar.may_coerce() {
        return None;
    }
    let typed = plain::typed(scalar.as_str())?;
    let alternatives = alternatives(schema);
    let unconstrained = |alt: &&Value| {
        types(alt).is_empty() && alt.get("enum").is_none() && alt.get("const").is_none()
    };
    let takes_it = |alt: &&Value| types(alt).iter().any(|t| typed.json_types().contains(t));
    if alternatives.iter().any(|a| unconstrained(a) || takes_it(a)) {
        return None;
    }
    let free_text = |alt: &&Value| {
        types(alt).contains(&"string")
            && alt.get("enum").is_none()
            && alt.get("const").is_none()
            && alt.get("pattern").and_then(Value::as_str) != Some(patterns::ACCOUNT_ID)
    };
    let text = scalar.as_str();
    let message = if alternatives.iter().any(free_text) {
        plain::quote_it(text, typed)
    } else if typed == Typed::Null && !shapes(schema).contains(&Shape::Scalar) {
        let got = if text.is_empty() {
            "nothing (an empty value)".to_owned()
        } else {
            format!("null ({text})")
        };
        format!("expected {}, got {got}", expected(schema))
    } else {
        return None;
    };
    Some(at_node(node, &Seg::render(path), Kind::WrongType, message))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Mapping,
    List,
    Scalar,
}

/// A schema with its `$ref` followed (one level: `$defs` do not chain refs to refs here).
fn resolve(schema: &Value) -> &Value {
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| schema_def(name));
    target.unwrap_or(schema)
}

fn schema_def(name: &str) -> Option<&'static Value> {
    schema().get("$defs")?.get(name)
}

/// The alternatives a value may match: the schema itself when it has a type, else its
/// `anyOf` / `oneOf` members (each resolved).
pub(super) fn alternatives(schema: &Value) -> Vec<&Value> {
    let schema = resolve(schema);
    if schema.get("type").is_some() || schema.get("properties").is_some() {
        return vec![schema];
    }
    let mut out = Vec::new();
    for key in ["anyOf", "oneOf"] {
        for alt in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(resolve(alt));
        }
    }
    if out.is_empty() {
        out.push(schema);
    }
    out
}

pub(super) fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The shapes a value may take there; empty when the schema does not say.
fn shapes(schema: &Value) -> Vec<Shape> {
    let mut out = Vec::new();
    for alt in alternatives(schema) {
        for t in types(alt) {
            out.push(match t {
                "object" => Shape::Mapping,
                "array" => Shape::List,
                _ => Shape::Scalar,
            });
        }
        if types(alt).is_empty() && (alt.get("const").is_some() || alt.get("enum").is_some()) {
            out.push(Shape::Scalar);
        }
    }
    out
}

/// What the schema takes, in the file's words: `a mapping`, `a list`, `one of: a, b`.
fn expected(schema: &Value) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    for alt in alternatives(schema) {
        let mut listed = false;
        for v in alt
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            words.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            listed = true;
        }
        if let Some(v) = alt.get("const") {
            words.push(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            listed = true;
        }
        if listed {
            continue;
        }
        for t in types(alt) {
            match t {
                "boolean" => words.extend(["true".to_owned(), "false".to_owned()]),
                "object" => kinds.push("a mapping"),
                "array" => kinds.push("a list"),
                "integer" => kinds.push("a whole number"),
                "number" => kinds.push("a number"),
                "string" => kinds.push("text"),
                _ => {}
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    words.retain(|w| seen.insert(w.clone()));
    // `targets` items are a mapping of one form or another: say it once.
    let mut seen = std::collections::BTreeSet::new();
    kinds.retain(|k| seen.insert(*k));
    let mut parts = Vec::new();
    if !words.is_empty() {
        parts.push(format!("one of: {}", words.join(", ")));
    }
    parts.extend(kinds.into_iter().map(str::to_owned));
    if parts.is_empty() {
        return "another value".to_owned();
    }
    parts.join(" or ")
}

/// The schema of a key's value or of a list's items.
pub(super) fn child<'a>(schema: &'a Value, seg: &Seg) -> Option<&'a Value> {
    for alt in alternatives(schema) {
        let found = match seg {
            Seg::Key(k) => alt
                .get("properties")
                .and_then(|p| p.get(k.as_str()))
                .or_else(|| alt.get("additionalProperties").filter(|a| a.is_object())),
            Seg::Index(_) => alt.get("items"),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &[&str]) -> Vec<Seg> {
        path.iter().map(|k| Seg::Key((*k).to_owned())).collect()
    }

    #[test]
    fn each_place_says_what_it_takes() {
        let rows = [
            (at(&["redeploy"]), "a mapping"),
            (at(&["redeploy", "excludeServices"]), "a list"),
            (at(&["redeploy", "maxConcurrent"]), "a whole number"),
            (at(&["reconcile", "jitter"]), "a number"),
            (at(&["suspend"]), "one of: true, false"),
            (at(&["unmatchedClusters"]), "one of: ignore, absent"),
            (
                at(&["detector", "runtimeMonitoring"]),
                "one of: enabled, disabled, unmanaged",
            ),
            (at(&["organization", "members"]), "one of: all or a list"),
            (at(&["version"]), "one of: 1"),
            (vec![Seg::Key("targets".into()), Seg::Index(0)], "a mapping"),
        ];
        for (path, want) in rows {
            let mut s = Some(schema());
            for seg in &path {
                s = s.and_then(|s| child(s, seg));
            }
            let s = s.unwrap_or_else(|| panic!("{path:?}: no schema"));
            assert_eq!(expected(s), want, "{path:?}");
        }
    }
}
