//! Empty and null values, the same in `validate` as in the JSON Schema. In YAML `key:`,
//! `key: ~` and `key: null` are all null. A section or list that has a default (every
//! rule of `clusters:` commented out, `redeploy: ~`) is that default when null, and its
//! schema allows null; anywhere else null is refused by both: an optional text field
//! (`roleArn: ~`) is left out rather than written null.

use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use serde_json::{json, Value};

use super::plain::{typed, Typed};
use super::shape::{alternatives, child, schema, types};
use super::validate::Seg;

/// The sections and lists whose default a null stands for: (JSON pointer of the schema of
/// the mapping, key).
const NULLABLE: [(&str, &str); 10] = [
    ("", "detector"),
    ("", "clusters"),
    ("", "redeploy"),
    ("", "safety"),
    ("", "reconcile"),
    ("/$defs/RedeploySpec", "excludeServices"),
    ("/$defs/RedeploySpec", "windows"),
    ("/$defs/ReconcileSpec", "conflicts"),
    ("/$defs/MatchSpec", "tags"),
    ("/$defs/MatchSpec", "regions"),
];

/// The generated schema with null where `validate` takes it ([`NULLABLE`]) and nowhere
/// else: schemars allows null for every `Option` field, which `validate` never reads as
/// "left out" (and `required`, `dependentRequired` would count such a key as given).
/// Returns how many of [`NULLABLE`] were found (all, unless a type was renamed).
pub(super) fn adjust(schema: &mut Value) -> usize {
    strip_nulls(schema);
    bound_u32(schema);
    let mut found = 0;
    for (at, key) in NULLABLE {
        if let Some(property) = schema.pointer_mut(&format!("{at}/properties/{key}")) {
            nullable(property);
            found += 1;
        }
    }
    found
}

/// A `u32` field without an upper bound gets `u32::MAX`: `validate` refuses a larger
/// number ("too large a number"), and so must the schema.
fn bound_u32(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("uint32")
                && !map.contains_key("maximum")
            {
                map.insert("maximum".into(), json!(u32::MAX));
            }
            map.values_mut().for_each(bound_u32);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_u32),
        _ => {}
    }
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(ts)) = map.get_mut("type") {
                ts.retain(|t| t != "null");
                if let [only] = &ts[..] {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alts)) = map.get_mut("anyOf") {
                alts.retain(|a| a != &json!({"type": "null"}));
                if let [Value::Object(only)] = &alts[..] {
                    let only = only.clone();
                    map.remove("anyOf");
                    for (k, v) in only {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn nullable(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(ts)) => {
            if !ts.contains(&json!("null")) {
                ts.push(json!("null"));
            }
        }
        _ => {
            if let Some(r) = map.remove("$ref") {
                map.insert("anyOf".into(), json!([{"$ref": r}, {"type": "null"}]));
            }
        }
    }
}

/// A plain (unquoted) null: nothing, `~`, `null`, `Null` or `NULL`.
pub(super) fn is_null(node: &Node) -> bool {
    node.as_scalar()
        .is_some_and(|s| s.may_coerce() && typed(s.as_str()) == Some(Typed::Null))
}

/// Whether the schema allows null.
pub(super) fn admits_null(schema: &Value) -> bool {
    alternatives(schema)
        .iter()
        .any(|alt| types(alt).contains(&"null"))
}

/// The document without the keys whose value is null where the schema allows null:
/// reading it then gives those sections their defaults, as if they were left out. Plain
/// `True`, `FALSE`, ... where the schema takes a boolean are written `true`, `false`.
pub(super) fn drop_nulls(root: &mut Node) {
    walk(root, schema());
}

fn walk(node: &mut Node, at: &Value) {
    match node {
        Node::Mapping(map) => {
            let gone: Vec<String> = map
                .iter()
                .filter(|(k, v)| {
                    is_null(v)
                        && child(at, &Seg::Key(k.as_str().to_owned())).is_some_and(admits_null)
                })
                .map(|(k, _)| k.as_str().to_owned())
                .collect();
            for k in gone {
                map.remove(k.as_str());
            }
            for (k, v) in map.iter_mut() {
                if let Some(s) = child(at, &Seg::Key(k.as_str().to_owned())) {
                    walk(v, s);
                }
            }
        }
        Node::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Some(s) = child(at, &Seg::Index(i)) {
                    walk(item, s);
                }
            }
        }
        Node::Scalar(scalar) => {
            // `True`, `FALSE`: YAML booleans like `true` and `false` (the schema's
            // `boolean`), whatever reads the value (`guardDutyManaged` reads words).
            let text = scalar.as_str();
            let boolean = scalar.may_coerce() && typed(text) == Some(Typed::Boolean);
            let takes_boolean = || {
                alternatives(at)
                    .iter()
                    .any(|a| types(a).contains(&"boolean"))
            };
            if boolean && !matches!(text, "true" | "false") && takes_boolean() {
                let word = if text.eq_ignore_ascii_case("true") {
                    "true"
                } else {
                    "false"
                };
                *scalar = MarkedScalarNode::new(*scalar.span(), word);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nullable_section_is_in_the_schema_and_nothing_else_takes_null() {
        let mut schema = schemars::schema_for!(super::super::DesiredState).to_value();
        assert_eq!(adjust(&mut schema), NULLABLE.len());
        let text = serde_json::to_string(&schema).unwrap_or_default();
        assert_eq!(text.matches("\"null\"").count(), NULLABLE.len(), "{text}");
    }
}
