//! Parsing a desired-state file into [`DesiredState`], reporting every mistake at once
//! with its line, column and field path.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use marked_yaml::{LoaderOptions, Node};
use serde::de::DeserializeOwned;

use super::error::{ConfigError, ConfigErrorKind as Kind, ConfigErrors};
use super::human::nearest;
use super::located::{
    at_node, at_path, at_span, clamp_to_text, clip_echoes, clip_path, load_error, node_error,
    with_suggestion,
};
use super::org_checks::unquoted_ids;
use super::source::Source;
use super::targets::{add_up, check_targets, entry_ok};
use super::typed::{check, without_failed_keys};
use super::validate::{validate, Seg};
use super::{bounds, nulls, shape};
use super::{
    ClusterRule, DesiredState, DetectorSpec, OrganizationSpec, ReconcileSpec, RedeploySpec,
    SafetySpec, UnmatchedPolicy,
};

/// The keys of the document, in the order the book lists them.
const TOP_LEVEL_KEYS: [&str; 10] = [
    "version",
    "targets",
    "organization",
    "detector",
    "clusters",
    "unmatchedClusters",
    "suspend",
    "redeploy",
    "safety",
    "reconcile",
];

/// Largest desired-state file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most cluster rules accepted in one file.
pub const MAX_RULES: usize = 10_000;

/// Where the desired-state schema is published (its `$id`): the repository's address
/// (Cargo.toml `repository`) and the file's path in it. Editors take it from a
/// `# yaml-language-server: $schema=...` modeline.
pub const SCHEMA_ID: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/schemas/desired.schema.json");

/// The JSON Schema of the desired-state file, generated from the same types the parser uses.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(DesiredState);
    schema.insert("$id".into(), SCHEMA_ID.into());
    let mut schema = schema.to_value();
    nulls::adjust(&mut schema);
    schema
}

/// Reads a desired-state file from its bytes: the whole validate path, with every
/// bound checked before the step it protects.
///
/// In order: the size ([`MAX_FILE_BYTES`]), UTF-8, a byte order mark, control characters,
/// nesting depth and keys per mapping ([`MAX_DEPTH`](super::MAX_DEPTH),
/// [`MAX_KEYS`](super::MAX_KEYS)), then the YAML itself, the schema, expansion of
/// `targets` ([`MAX_TARGETS`](super::MAX_TARGETS)) and validation.
///
/// # Errors
/// Every mistake [`parse`] reports, and an encoding mistake at the first byte that is not
/// UTF-8. A bound that fails is the only mistake reported.
///
/// # Guarantees
/// No input panics, recurses deeper than [`MAX_DEPTH`](super::MAX_DEPTH), or costs more than time and
/// memory linear in its size (up to a log factor).
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<DesiredState, ConfigErrors> {
    let fail = |error: ConfigError| {
        Err(ConfigErrors {
            file: file.to_owned(),
            errors: vec![error],
        })
    };
    if bytes.len() > MAX_FILE_BYTES {
        return fail(too_big(bytes.len()));
    }
    match bounds::utf8(bytes) {
        Ok(text) => parse(file, text),
        Err(e) => fail(e),
    }
}

/// Parses and validates a desired-state document: [`parse_bytes`] for text already read.
///
/// # Errors
/// Every syntax, type, unknown-key and validation mistake, each with line, column and
/// path; or the one bound that failed (size, characters, depth, keys per mapping).
pub fn parse(file: &str, text: &str) -> Result<DesiredState, ConfigErrors> {
    let fail = |errors: Vec<ConfigError>| {
        Err(ConfigErrors {
            file: file.to_owned(),
            errors,
        })
    };
    // Before anything else looks at the text, so that nothing scans more than the limit.
    if text.len() > MAX_FILE_BYTES {
        return fail(vec![too_big(text.len())]);
    }
    // YAML allows a byte order mark at the start; it is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The YAML scanner takes a NUL for the end of the input: without this, whatever
    // follows one would silently not be read.
    if let Err(e) = bounds::characters(text) {
        return fail(vec![e]);
    }
    // YAML ends a line at CR, LF or CRLF; the checks below count lines with `str::lines`,
    // so bring every line break to LF first (line and column numbers stay the same).
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let content = |l: &&str| {
        let l = l.trim();
        !(l.is_empty() || l.starts_with('#') || l == "---")
    };
    if !text.lines().any(|l| content(&l)) {
        return fail(vec![ConfigError::whole_file(
            Kind::Empty,
            "file is empty: a desired state needs at least `version` and `targets` (or `organization`)".into(),
        )]);
    }
    if let Some(line) = second_document(text) {
        return fail(vec![ConfigError {
            line,
            column: 1,
            kind: Kind::Syntax,
            path: String::new(),
            message: "a second YAML document: the file must hold exactly one".into(),
            suggestion: None,
        }]);
    }
    // The loader, serde and the tree's Drop recurse once per level of nesting.
    if let Err(e) = bounds::structure(text) {
        return fail(vec![e]);
    }
    let src = Source::new(text);
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let mut root = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(root) => root,
        Err(e) => return fail(vec![clipped(clamp_to_text(load_error(&e), text))]),
    };
    // An empty (or `~`) section is the section left out.
    nulls::drop_nulls(&mut root);
    let mut checked = check_sections(&root, &src);
    let mut errors = std::mem::take(&mut checked.errors);
    // Validate whatever parsed, so a type mistake does not hide a validation mistake.
    // Deserializing fills the targets of an `organization` (the administrator's).
    match marked_yaml::from_node::<DesiredState>(&checked.pruned) {
        Ok(desired) if errors.is_empty() => {
            errors.extend(
                validate(&desired)
                    .into_iter()
                    .map(|(path, kind, m)| at_path(&root, &path, kind, m)),
            );
            if errors.is_empty() {
                return Ok(desired);
            }
        }
        Ok(desired) => {
            for (path, kind, message) in validate(&desired) {
                if let Some(path) = remap(&path, &checked) {
                    errors.push(at_path(&root, &path, kind, message));
                }
            }
        }
        Err(e) if errors.is_empty() => errors.push(node_error(&root, &[], &e, &src)),
        Err(_) => {}
    }
    let empties = empty_values(&root);
    for e in &mut errors {
        if let Some(&(line, column)) = empties.get(&(e.line, e.column)) {
            (e.line, e.column) = (line, column);
        }
    }
    let mut errors: Vec<ConfigError> = errors.into_iter().map(clipped).collect();
    errors.sort_by(|a, b| (a.line, a.column, &a.path).cmp(&(b.line, b.column, &b.path)));
    errors.dedup();
    fail(errors)
}

/// A mistake whose message and path repeat no key or value longer than
/// [`LONGEST_ECHO`](super::located::LONGEST_ECHO) characters.
fn clipped(mut e: ConfigError) -> ConfigError {
    if let Cow::Owned(m) = clip_echoes(&e.message) {
        e.message = m;
    }
    if let Cow::Owned(p) = clip_path(&e.path) {
        e.path = p;
    }
    e
}

fn too_big(size: usize) -> ConfigError {
    ConfigError::whole_file(
        Kind::Limit,
        format!("file is {size} bytes, larger than the limit of {MAX_FILE_BYTES}"),
    )
}

/// The line of a `---` that starts a second document, if any.
fn second_document(text: &str) -> Option<usize> {
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if seen_content {
                return Some(i + 1);
            }
        } else if !(trimmed.trim_start().is_empty() || trimmed.trim_start().starts_with('#')) {
            seen_content = true;
        }
    }
    None
}

/// The result of checking each section on its own.
struct Checked {
    errors: Vec<ConfigError>,
    /// The document without the sections and list items that failed, with placeholders
    /// for the required keys, so the rest can still be validated.
    pruned: Node,
    /// Top-level keys with a type mistake (their validation messages would be noise).
    broken: BTreeSet<String>,
    /// For list sections with dropped items: the original index of each kept item.
    kept: BTreeMap<String, Vec<usize>>,
    /// For mapping sections kept without the keys that failed: the paths of those keys
    /// (their validation messages would be noise; the rest of the section's are not).
    removed: BTreeMap<String, Vec<Vec<Seg>>>,
}

/// Deserializes each top-level section, and each list item, on its own so that one
/// mistake does not hide the next.
fn check_sections(root: &Node, src: &Source) -> Checked {
    let mut checked = Checked {
        errors: Vec::new(),
        pruned: root.clone(),
        broken: BTreeSet::new(),
        kept: BTreeMap::new(),
        removed: BTreeMap::new(),
    };
    let Some(map) = root.as_mapping() else {
        checked.errors.push(at_node(
            root,
            "",
            Kind::WrongType,
            "the top level must be a mapping".into(),
        ));
        return checked;
    };
    if map.get("version").is_none() {
        checked.errors.push(at_node(
            root,
            "",
            Kind::MissingField,
            "missing field `version`".into(),
        ));
        checked.broken.insert("version".to_owned());
    }
    // Exactly one of `targets` and `organization`.
    let organization_key = map.iter().find(|(k, _)| k.as_str() == "organization");
    match (map.get("targets"), organization_key) {
        (None, None) => {
            checked.errors.push(at_node(
                root,
                "",
                Kind::MissingField,
                "missing field `targets` (or `organization`, to manage the members of an \
                 AWS Organization from its GuardDuty delegated administrator)"
                    .into(),
            ));
            checked.broken.insert("targets".to_owned());
        }
        (Some(_), Some((key, _))) => {
            checked.errors.push(at_span(
                key.span(),
                "organization",
                Kind::InvalidValue,
                "give either `targets` or `organization`, not both: with `organization` the \
                 targets are the administrator's regions and its members"
                    .into(),
            ));
            // Both are still checked: the entries of `targets` on their own, the
            // organization with the rest of the file (its targets replace the entries').
        }
        _ => {}
    }
    for (key, value) in map.iter() {
        let name = key.as_str();
        let path = [Seg::Key(name.to_owned())];
        let found = match check_section(name, value, &path, src) {
            Some(found) => found,
            None => {
                let near = nearest(name, TOP_LEVEL_KEYS);
                let allowed: Vec<String> =
                    TOP_LEVEL_KEYS.iter().map(|k| format!("`{k}`")).collect();
                let message = format!(
                    "unknown field `{name}`, expected one of {}",
                    allowed.join(", ")
                );
                let message = with_suggestion(message, near);
                vec![ConfigError {
                    suggestion: near.map(str::to_owned),
                    ..at_span(key.span(), name, Kind::UnknownField, message)
                }]
            }
        };
        if found.is_empty() {
            if name == "organization" {
                // Reported, but the section is still validated: an id is a string either way.
                checked.errors.extend(unquoted_ids(value, &path));
            }
            continue;
        }
        checked.broken.insert(name.to_owned());
        // A mapping section keeps its keys that are right, so that their values are
        // still validated: a type mistake does not hide a range mistake beside it.
        let trimmed = (!matches!(name, "targets" | "clusters"))
            .then(|| without_failed_keys(value, &path, &found))
            .flatten()
            .filter(|(node, _)| {
                check_section(name, node, &path, src).is_some_and(|e| e.is_empty())
            });
        checked.errors.extend(found);
        match trimmed {
            Some((node, removed)) => {
                if name == "organization" {
                    checked.errors.extend(unquoted_ids(value, &path));
                }
                if let Some(map) = checked.pruned.as_mapping_mut() {
                    map.insert(name.into(), node);
                }
                checked.removed.insert(name.to_owned(), removed);
            }
            None => prune(&mut checked, name, value, src),
        }
    }
    if let Some(map) = checked.pruned.as_mapping_mut() {
        if !map.contains_key("version") {
            map.insert("version".into(), Node::from("1"));
        }
        if !map.contains_key("targets") && !map.contains_key("organization") {
            // Whatever is missing is reported already (the key, or the section's mistakes).
            map.insert("targets".into(), Node::from(Vec::<Node>::new()));
            checked.broken.insert("targets".to_owned());
        }
    }
    checked
}

/// The mistakes of one top-level section (`None` for a key the document does not have).
fn check_section(name: &str, value: &Node, path: &[Seg], src: &Source) -> Option<Vec<ConfigError>> {
    Some(match name {
        "version" => check::<u32>(value, path, src),
        "targets" => check_targets(value, path, src),
        "detector" => check::<DetectorSpec>(value, path, src),
        "clusters" => check_list::<ClusterRule>(value, path, src),
        "unmatchedClusters" => check::<UnmatchedPolicy>(value, path, src),
        "suspend" => check::<bool>(value, path, src),
        "redeploy" => check::<RedeploySpec>(value, path, src),
        "safety" => check::<SafetySpec>(value, path, src),
        "reconcile" => check::<ReconcileSpec>(value, path, src),
        "organization" => check::<OrganizationSpec>(value, path, src),
        _ => return None,
    })
}

/// Drops a failed section, or only the failed items of a list section, from the pruned
/// document.
fn prune(checked: &mut Checked, name: &str, value: &Node, src: &Source) {
    let Some(map) = checked.pruned.as_mapping_mut() else {
        return;
    };
    // Targets kept so far; the entries past the limit are dropped with the rest.
    let mut total = Some(0);
    let mut list_item_ok = |item: &Node| match name {
        // An entry with a mistake of its own may not expand: drop it.
        "targets" => {
            entry_ok(item, src) && {
                total = add_up(total, item);
                total.is_some()
            }
        }
        "clusters" => {
            marked_yaml::from_node::<ClusterRule>(item).is_ok()
                && shape::mistakes(item, &[Seg::Key("clusters".into()), Seg::Index(0)]).is_empty()
        }
        _ => false,
    };
    match (name, value.as_sequence()) {
        ("targets" | "clusters", Some(items)) => {
            let mut kept = Vec::new();
            let mut nodes = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if list_item_ok(item) {
                    kept.push(i);
                    nodes.push(item.clone());
                }
            }
            map.insert(name.into(), Node::from(nodes));
            checked.kept.insert(name.to_owned(), kept);
        }
        _ => {
            map.remove(name);
        }
    }
}

/// Maps a validation path on the pruned document back to the original, or drops it when
/// it speaks of a placeholder.
fn remap(path: &[Seg], checked: &Checked) -> Option<Vec<Seg>> {
    let (broken, kept) = (&checked.broken, &checked.kept);
    let Some(Seg::Key(section)) = path.first() else {
        return Some(path.to_vec());
    };
    if let Some(removed) = checked.removed.get(section) {
        let noise = removed.iter().any(|r| path.starts_with(r));
        return (!noise).then(|| path.to_vec());
    }
    if !broken.contains(section) {
        return Some(path.to_vec());
    }
    match (kept.get(section), path.get(1)) {
        (Some(kept), Some(Seg::Index(i))) => {
            let mut out = path.to_vec();
            out[1] = Seg::Index(*kept.get(*i)?);
            Some(out)
        }
        _ => None,
    }
}

/// Where an empty value (`key:` with nothing after it) is reported, mapped to its key: the
/// YAML scanner places an empty value at the next token, which may be lines further on.
fn empty_values(root: &Node) -> HashMap<(usize, usize), (usize, usize)> {
    fn walk(node: &Node, out: &mut HashMap<(usize, usize), (usize, usize)>) {
        let pos = |span: &marked_yaml::Span| span.start().map(|m| (m.line(), m.column()));
        match node {
            Node::Mapping(map) => {
                for (key, value) in map.iter() {
                    if let (Node::Scalar(v), Some(k)) = (value, pos(key.span())) {
                        if v.as_str().is_empty() {
                            if let Some(at) = pos(v.span()) {
                                out.entry(at).or_insert(k);
                            }
                        }
                    }
                    walk(value, out);
                }
            }
            Node::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
            Node::Scalar(_) => {}
        }
    }
    let mut out = HashMap::new();
    walk(root, &mut out);
    out
}

/// The items of a list section: an empty value is an empty list, anything else that is
/// not a list is a mistake.
pub(super) fn list_items<'a>(node: &'a Node, path: &[Seg]) -> Result<&'a [Node], Vec<ConfigError>> {
    match node.as_sequence() {
        Some(items) => Ok(items),
        None if node.as_scalar().is_some_and(|s| s.as_str().is_empty()) => Ok(&[]),
        None => Err(vec![at_node(
            node,
            &Seg::render(path),
            Kind::WrongType,
            "expected a list".into(),
        )]),
    }
}

fn check_list<T: DeserializeOwned>(node: &Node, path: &[Seg], src: &Source) -> Vec<ConfigError> {
    let items = match list_items(node, path) {
        Ok(items) => items,
        Err(errors) => return errors,
    };
    if path.first() == Some(&Seg::Key("clusters".into())) && items.len() > MAX_RULES {
        return vec![at_node(
            node,
            &Seg::render(path),
            Kind::Limit,
            format!("{} rules, more than the limit of {MAX_RULES}", items.len()),
        )];
    }
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut item_path = path.to_vec();
        item_path.push(Seg::Index(i));
        errors.extend(check::<T>(item, &item_path, src));
    }
    errors
}
