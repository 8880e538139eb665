//! Reading a node as a type, mistake by mistake: the lists and mappings in the wrong
//! place first (`shape`), then serde's mistakes key by key, so that one mistake does not
//! hide the next; and a mapping without the keys its mistakes are at, so that the rest of
//! it can still be read and validated.

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use serde::de::DeserializeOwned;

use super::error::{ConfigError, ConfigErrorKind as Kind};
use super::located::node_error;
use super::shape;
use super::source::Source;
use super::validate::Seg;

/// The mistakes of a node that must read as a `T`: lists and mappings where it takes
/// something else (`shape`), then serde's, key by key.
pub(super) fn check<T: DeserializeOwned>(
    node: &Node,
    path: &[Seg],
    src: &Source,
) -> Vec<ConfigError> {
    let mut errors = shape::mistakes(node, path);
    if errors.is_empty() {
        return check_typed::<T>(node, path, src);
    }
    // The rest of the node, without the keys of the misplaced collections.
    if let Some((rest, _)) = without_failed_keys(node, path, &errors) {
        errors.extend(check_typed::<T>(&rest, path, src));
    }
    errors
}

fn check_typed<T: DeserializeOwned>(node: &Node, path: &[Seg], src: &Source) -> Vec<ConfigError> {
    let first = match marked_yaml::from_node::<T>(node) {
        Ok(_) => return Vec::new(),
        Err(e) => node_error(node, path, &e, src),
    };
    // serde stops at the first mistake of a mapping: check each key again on its own so
    // that two mistakes in one section are both reported.
    let Some(map) = node.as_mapping().filter(|m| m.len() > 1) else {
        return vec![first];
    };
    let missing = |e: &ConfigError| e.kind == Kind::MissingField;
    let mut errors: Vec<ConfigError> = missing(&first).then(|| first.clone()).into_iter().collect();
    for (key, value) in map.iter() {
        // A mapping of this key alone: the cost is this key's value, not the section's,
        // so a section with many keys is checked in linear time.
        let mut alone = MarkedMappingNode::new_empty(*map.span());
        alone.insert(key.clone(), value.clone());
        let single = Node::Mapping(alone);
        if let Err(e) = marked_yaml::from_node::<T>(&single) {
            let e = node_error(&single, path, &e, src);
            if !missing(&e) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        errors.push(first);
    }
    errors
}

/// A mapping section without the keys its mistakes are at, and the paths of those keys;
/// `None` when a mistake is not at a key of a mapping (a missing key, a section of the
/// wrong type, a list section). A mistake inside a list removes the key of the list.
pub(super) fn without_failed_keys(
    value: &Node,
    base: &[Seg],
    found: &[ConfigError],
) -> Option<(Node, Vec<Vec<Seg>>)> {
    value.as_mapping()?;
    let mut node = value.clone();
    let mut removed = Vec::new();
    for e in found {
        if e.kind == Kind::MissingField {
            return None;
        }
        let path = parse_path(&e.path)?;
        let rest = path.strip_prefix(base)?;
        // Up to the first list index: the key whose value is the list.
        let upto = rest.iter().position(|s| matches!(s, Seg::Index(_)));
        let rest = &rest[..upto.unwrap_or(rest.len())];
        let (last, parents) = rest.split_last()?;
        let Seg::Key(last) = last else { return None };
        let mut at = &mut node;
        for seg in parents {
            let Seg::Key(k) = seg else { return None };
            at = at.as_mapping_mut()?.get_mut(k.as_str())?;
        }
        // Already removed when an earlier mistake was at the same key.
        at.as_mapping_mut()?.remove(last.as_str());
        let mut full = base.to_vec();
        full.extend_from_slice(parents);
        full.push(Seg::Key(last.clone()));
        removed.push(full);
    }
    Some((node, removed))
}

/// A rendered field path (`redeploy.windows[0].start`) back as segments; `None` for a
/// path a key with `.` or `[` in it makes ambiguous.
fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut indexes) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if key.is_empty() || key.contains(']') {
            return None;
        }
        out.push(Seg::Key(key.to_owned()));
        while let Some(rest) = indexes.strip_prefix('[') {
            let (index, after) = rest.split_once(']')?;
            out.push(Seg::Index(index.parse().ok()?));
            indexes = after;
        }
        if !indexes.is_empty() {
            return None;
        }
    }
    Some(out)
}
