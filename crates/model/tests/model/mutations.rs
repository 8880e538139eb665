//! Valid desired-state files, damaged at random the way hands and tools damage them: the
//! parser never panics, points every mistake inside the text, in document order, and
//! whatever it still accepts is a state the validator vouches for.

use std::fs;
use std::path::{Path, PathBuf};

use gec_model::desired::{parse, DesiredState};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Random cases per example file; a run of all of them stays well under 20 s in debug.
/// proptest's own `PROPTEST_CASES` raises it for a deeper run.
const CASES_PER_FILE: u32 = 256;

/// Every key of the format, so that a swapped key is sometimes another valid one; read
/// from the JSON Schema so that a new key is picked up without editing this file.
static KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    fn walk(node: &serde_json::Value, out: &mut Vec<&'static str>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    out.extend(
                        props
                            .keys()
                            .map(|k| &*Box::leak(k.clone().into_boxed_str())),
                    );
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    walk(&gec_model::desired::json_schema(), &mut keys);
    keys.sort_unstable();
    keys.dedup();
    assert!(keys.len() > 30, "the schema names every key: {keys:?}");
    keys
});

/// The example files: everything in `config/`, and the demo's desired state.
fn examples() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("config");
    let mut paths: Vec<PathBuf> = fs::read_dir(&config)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", config.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    paths.push(root.join("demo/desired.yaml"));
    paths
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// A position in whatever the mutation applies to: lines, chars or keys. It shrinks
/// towards the first.
#[derive(Debug, Clone, Copy)]
struct Pick(usize);

impl Pick {
    /// The position among `len`; `len` must not be 0.
    fn of(self, len: usize) -> usize {
        self.0 % len
    }
}

/// How a key is misspelt.
#[derive(Debug, Clone)]
enum Typo {
    DropChar(Pick),
    DoubleChar(Pick),
    SwapAdjacent(Pick),
    FlipCase(Pick),
}

/// What a key is replaced with.
#[derive(Debug, Clone)]
enum NewKey {
    Known(&'static str),
    Misspelt(Typo),
}

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the file at a char boundary.
    Truncate(Pick),
    /// Replace one char.
    ReplaceChar(Pick, char),
    DeleteLine(Pick),
    DuplicateLine(Pick),
    SwapLines(Pick, Pick),
    /// Replace the key of one `key:` line.
    SwapKey(Pick, NewKey),
    /// Give one line `spaces` spaces of indentation, after a tab when `tab`.
    Reindent(Pick, usize, bool),
}

fn pick() -> impl Strategy<Value = Pick> {
    any::<usize>().prop_map(Pick)
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => (0x20u8..0x7f).prop_map(char::from),
        3 => prop::sample::select(
            &[':', '-', '#', '[', ']', '{', '}', ',', '"', '\'', '&', '*', '!', '|', '>', '%',
              '@', '`', '?', ' ', '\t', '\n'][..]
        ),
        1 => prop_oneof![(0u8..0x20).prop_map(char::from), Just('\x7f')],
        1 => prop::sample::select(
            &['\u{feff}', '\u{85}', '\u{a0}', '\u{2028}', 'é', '\u{fffd}', '\u{1f600}'][..]
        ),
    ]
}

fn any_typo() -> impl Strategy<Value = Typo> {
    prop_oneof![
        pick().prop_map(Typo::DropChar),
        pick().prop_map(Typo::DoubleChar),
        pick().prop_map(Typo::SwapAdjacent),
        pick().prop_map(Typo::FlipCase),
    ]
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        pick().prop_map(Mutation::Truncate),
        (pick(), any_char()).prop_map(|(i, c)| Mutation::ReplaceChar(i, c)),
        pick().prop_map(Mutation::DeleteLine),
        pick().prop_map(Mutation::DuplicateLine),
        (pick(), pick()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (
            pick(),
            prop_oneof![
                prop::sample::select(KEYS.clone()).prop_map(NewKey::Known),
                any_typo().prop_map(NewKey::Misspelt),
            ]
        )
            .prop_map(|(i, k)| Mutation::SwapKey(i, k)),
        (pick(), 0usize..=10, prop::bool::weighted(0.1))
            .prop_map(|(i, n, tab)| Mutation::Reindent(i, n, tab)),
    ]
}

/// The lines of a text without their ends, and whether the last one had an end.
fn split_lines(text: &str) -> (Vec<String>, bool) {
    let lines = text.split('\n').map(str::to_owned).collect::<Vec<_>>();
    match lines.split_last() {
        Some((last, rest)) if last.is_empty() => (rest.to_vec(), true),
        _ => (lines, false),
    }
}

fn join_lines(lines: &[String], trailing_newline: bool) -> String {
    let mut text = lines.join("\n");
    if trailing_newline && !lines.is_empty() {
        text.push('\n');
    }
    text
}

/// The byte range of the key of a `key:` or `- key:` line.
fn key_of(line: &str) -> Option<std::ops::Range<usize>> {
    let body = line.trim_start();
    let mut start = line.len() - body.len();
    if let Some(rest) = body.strip_prefix("- ") {
        start += 2 + (rest.len() - rest.trim_start().len());
    }
    let len = line[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|&n| n > 0 && line[start + n..].starts_with(':'))?;
    Some(start..start + len)
}

fn misspell(key: &str, typo: &Typo) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    match typo {
        Typo::DropChar(i) => {
            chars.remove(i.of(chars.len()));
        }
        Typo::DoubleChar(i) => {
            let i = i.of(chars.len());
            chars.insert(i, chars[i]);
        }
        Typo::SwapAdjacent(i) if chars.len() > 1 => {
            let i = i.of(chars.len() - 1);
            chars.swap(i, i + 1);
        }
        Typo::SwapAdjacent(_) => {}
        Typo::FlipCase(i) => {
            let i = i.of(chars.len());
            let c = chars[i];
            chars[i] = if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
        }
    }
    chars.into_iter().collect()
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let (mut lines, trailing_newline) = split_lines(text);
    let at = |i: &Pick, len: usize| (len > 0).then(|| i.of(len));
    match mutation {
        Mutation::Truncate(i) => {
            let ends: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
            let cut = if ends.is_empty() {
                0
            } else {
                ends[i.of(ends.len())]
            };
            return text[..cut].to_owned();
        }
        Mutation::ReplaceChar(i, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            if !chars.is_empty() {
                let i = i.of(chars.len());
                chars[i] = *c;
            }
            return chars.into_iter().collect();
        }
        Mutation::DeleteLine(i) => {
            if let Some(i) = at(i, lines.len()) {
                lines.remove(i);
            }
        }
        Mutation::DuplicateLine(i) => {
            if let Some(i) = at(i, lines.len()) {
                lines.insert(i, lines[i].clone());
            }
        }
        Mutation::SwapLines(a, b) => {
            if let (Some(a), Some(b)) = (at(a, lines.len()), at(b, lines.len())) {
                lines.swap(a, b);
            }
        }
        Mutation::SwapKey(i, new) => {
            let keyed: Vec<usize> = (0..lines.len())
                .filter(|&n| key_of(&lines[n]).is_some())
                .collect();
            if let Some(&n) = at(i, keyed.len()).map(|k| &keyed[k]) {
                let range = key_of(&lines[n]).expect("a keyed line");
                let replacement = match new {
                    NewKey::Known(k) => (*k).to_owned(),
                    NewKey::Misspelt(typo) => misspell(&lines[n][range.clone()], typo),
                };
                lines[n].replace_range(range, &replacement);
            }
        }
        Mutation::Reindent(i, spaces, tab) => {
            if let Some(i) = at(i, lines.len()) {
                let body = lines[i].trim_start_matches([' ', '\t']).to_owned();
                let tab = if *tab { "\t" } else { "" };
                lines[i] = format!("{tab}{}{body}", " ".repeat(*spaces));
            }
        }
    }
    join_lines(&lines, trailing_newline)
}

/// What must hold for any text, valid or not.
fn check(name: &str, text: &str) -> Result<(), TestCaseError> {
    match parse(name, text) {
        Ok(desired) => check_accepted(&desired),
        Err(errors) => {
            prop_assert_eq!(&errors.file, name);
            prop_assert!(!errors.errors.is_empty(), "an Err without a mistake");
            // One line of slack: an empty value at the very end is placed on the line after
            // it (see desired_files.rs, `every_prefix_of_a_valid_file_...`).
            let lines = yaml_lines(text).max(1) + 1;
            for e in &errors.errors {
                prop_assert!(
                    (1..=lines).contains(&e.line) && e.column >= 1,
                    "{}:{} is outside a text of {} lines: {:?}",
                    e.line,
                    e.column,
                    lines - 1,
                    e
                );
                prop_assert!(!e.message.trim().is_empty(), "no message: {:?}", e);
            }
            prop_assert!(
                errors
                    .errors
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
                "mistakes out of document order:\n{}",
                errors
            );
            Ok(())
        }
    }
}

/// The lines of a text as YAML counts them: a lone CR ends a line too, unlike in
/// `str::lines`, and the parser's line numbers are YAML's.
fn yaml_lines(text: &str) -> usize {
    let lf = text.replace("\r\n", "\n");
    let breaks = lf.chars().filter(|&c| c == '\n' || c == '\r').count();
    breaks + usize::from(!lf.is_empty() && !lf.ends_with(['\n', '\r']))
}

/// What the validator guarantees of an accepted state, and that it survives JSON.
fn check_accepted(desired: &DesiredState) -> Result<(), TestCaseError> {
    prop_assert_eq!(desired.version, 1);
    prop_assert!(!desired.targets.is_empty(), "accepted without a target");
    let json = serde_json::to_string(desired).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: DesiredState = serde_json::from_str(&json)
        .map_err(|e| TestCaseError::fail(format!("its JSON does not read back: {e}\n{json}")))?;
    prop_assert_eq!(&back, desired, "its JSON reads back as something else");
    Ok(())
}

#[test]
fn damaged_examples_are_refused_with_mistakes_inside_the_text_or_accepted_whole() {
    let examples = examples();
    assert!(examples.len() >= 2, "too few examples: {examples:?}");
    for (path, original) in examples {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        // The mutations only mean something when they start from a valid file.
        if let Err(errors) = parse(&name, &original) {
            panic!("the example itself is invalid:\n{errors}");
        }
        let mut runner = TestRunner::new(Config {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(CASES_PER_FILE),
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&prop::collection::vec(any_mutation(), 1..=4), |mutations| {
            let text = mutations.iter().fold(original.clone(), |t, m| apply(&t, m));
            check(&name, &text)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, mutations)) => {
                let text = mutations.iter().fold(original.clone(), |t, m| apply(&t, m));
                panic!("{name} after {mutations:?}:\n{why}\n--- the damaged text ---\n{text}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn the_mutations_damage_what_they_say() {
    let text = "version: 1\ntargets:\n  - region: us-east-1\n";
    let first = Pick(0);
    // The text has three lines, each with a key.
    let last = Pick(2);
    // (label, mutation, the text it must give)
    let rows: &[(&str, Mutation, &str)] = &[
        ("truncate at the start", Mutation::Truncate(first), ""),
        (
            "replace the first char",
            Mutation::ReplaceChar(first, '\t'),
            "\tersion: 1\ntargets:\n  - region: us-east-1\n",
        ),
        (
            "delete the last line",
            Mutation::DeleteLine(last),
            "version: 1\ntargets:\n",
        ),
        (
            "duplicate the first line",
            Mutation::DuplicateLine(first),
            "version: 1\nversion: 1\ntargets:\n  - region: us-east-1\n",
        ),
        (
            "swap the first and last lines",
            Mutation::SwapLines(first, last),
            "  - region: us-east-1\ntargets:\nversion: 1\n",
        ),
        (
            "swap a list item's key",
            Mutation::SwapKey(last, NewKey::Known("roleArn")),
            "version: 1\ntargets:\n  - roleArn: us-east-1\n",
        ),
        (
            "misspell the first key",
            Mutation::SwapKey(first, NewKey::Misspelt(Typo::SwapAdjacent(first))),
            "evrsion: 1\ntargets:\n  - region: us-east-1\n",
        ),
        (
            "indent the first line",
            Mutation::Reindent(first, 2, true),
            "\t  version: 1\ntargets:\n  - region: us-east-1\n",
        ),
    ];
    for (label, mutation, want) in rows {
        assert_eq!(apply(text, mutation), *want, "{label}");
    }
}

/// Texts whose outcome must not depend on their line endings: the examples, and a few
/// mistakes whose report quotes the text or looks at its lines.
fn line_ending_cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = examples()
        .into_iter()
        .map(|(path, text)| {
            (
                path.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                text,
            )
        })
        .collect();
    let head = "# a comment first\nversion: 1\ntargets:\n  - region: us-east-1\n";
    for (name, tail) in [
        (
            "a value of the wrong type",
            "redeploy:\n  maxConcurrent: lots\n",
        ),
        ("a second document", "---\nsuspend: true\n"),
        ("a file cut inside a list", "clusters: ["),
        ("an empty value", "suspend:\n"),
    ] {
        cases.push((name.to_owned(), format!("{head}{tail}")));
    }
    cases
}

fn assert_same_outcome_with_line_ending(ending: &str) {
    for (name, lf) in line_ending_cases() {
        let other = lf.replace('\n', ending);
        let (want, got) = (parse(&name, &lf), parse(&name, &other));
        assert!(
            want == got,
            "{name} with {ending:?} line endings\nwith LF: {want:?}\nwith {ending:?}: {got:?}"
        );
    }
}

#[test]
fn a_file_saved_with_crlf_line_endings_means_what_it_meant() {
    assert_same_outcome_with_line_ending("\r\n");
}

#[test]
fn a_file_saved_with_cr_line_endings_means_what_it_meant() {
    assert_same_outcome_with_line_ending("\r");
}
