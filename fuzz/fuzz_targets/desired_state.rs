//! Arbitrary bytes into the desired-state parser: it never panics, every mistake points
//! inside the text, line endings do not matter, and whatever it accepts survives a trip
//! through JSON.
#![no_main]

use gec_model::desired::{parse, DesiredState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 never reaches `parse` (the caller reads a `String`); the lossy
    // form keeps the fuzzer's byte-level mutations useful. Valid input is unchanged.
    let text = String::from_utf8_lossy(data);
    check(&text);
});

fn check(text: &str) {
    let result = parse("fuzz.yaml", text);
    // A file saved on Windows means what it meant: same state, same mistakes, same places.
    if !text.contains('\r') {
        let crlf = parse("fuzz.yaml", &text.replace('\n', "\r\n"));
        assert_eq!(
            crlf, result,
            "CRLF line endings change the outcome of {text:?}"
        );
    }
    match result {
        Ok(desired) => check_accepted(text, &desired),
        Err(errors) => {
            // One line of slack: a mistake at the very end may be placed past the last line.
            let lines = yaml_lines(text).max(1) + 1;
            assert!(!errors.errors.is_empty(), "an Err without a mistake");
            for e in &errors.errors {
                assert!(
                    (1..=lines).contains(&e.line) && e.column >= 1,
                    "{}:{} is outside a text of {} lines: {e:?}",
                    e.line,
                    e.column,
                    lines - 1
                );
                assert!(!e.message.is_empty(), "a mistake without a message: {e:?}");
            }
            assert!(
                errors
                    .errors
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
                "mistakes out of document order: {errors}"
            );
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

fn check_accepted(text: &str, desired: &DesiredState) {
    // What the validator guarantees.
    assert_eq!(desired.version, 1, "accepted {text:?}");
    assert!(!desired.targets.is_empty(), "accepted {text:?}");
    // The types derive Serialize and Deserialize: what the parser accepts reads back as itself.
    let json = serde_json::to_string(desired).expect("a desired state serializes to JSON");
    let back: DesiredState = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("its JSON does not read back: {e}\n{json}"));
    assert_eq!(
        &back, desired,
        "its JSON reads back as something else\n{json}"
    );
}
