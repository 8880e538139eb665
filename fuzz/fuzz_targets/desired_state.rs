//! Arbitrary bytes into the whole validate path (`parse_bytes`: size, encoding,
//! characters, depth, keys, YAML, schema, expansion, validation): it never panics, every
//! mistake points inside the text and has a kind, line endings do not matter, and
//! whatever it accepts survives a trip through JSON.
#![no_main]

use gec_model::desired::{parse_bytes, ConfigErrorKind, DesiredState, MAX_TARGETS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = parse_bytes("fuzz.yaml", data);
    match std::str::from_utf8(data) {
        // (`parse_bytes` hands UTF-8 to `parse`: comparing the two would parse twice for
        // nothing.)
        Ok(text) => check(text, result),
        Err(_) => {
            // Bytes that are not UTF-8: one encoding mistake, inside the text.
            let errors = result.expect_err("bytes that are not UTF-8 were accepted");
            assert_eq!(errors.errors.len(), 1, "{errors}");
            let e = &errors.errors[0];
            assert_eq!(e.kind, ConfigErrorKind::Encoding, "{errors}");
            let lossy = String::from_utf8_lossy(data);
            assert!(
                (1..=yaml_lines(&lossy).max(1)).contains(&e.line) && e.column >= 1,
                "{errors}"
            );
        }
    }
});

fn check(text: &str, result: Result<DesiredState, gec_model::desired::ConfigErrors>) {
    // A file saved on Windows means what it meant: same state, same mistakes, same places.
    if !text.contains('\r') {
        let crlf = parse_bytes("fuzz.yaml", text.replace('\n', "\r\n").as_bytes());
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
            // The human form shows each mistake's place, whatever the text holds.
            let shown = errors.render(text);
            for e in &errors.errors {
                let at = format!("fuzz.yaml:{}:{}: ", e.line, e.column);
                assert!(shown.contains(&at), "{at} not in {shown}");
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
    assert!(desired.targets.len() <= MAX_TARGETS, "accepted {text:?}");
    // The types derive Serialize and Deserialize: what the parser accepts reads back as itself.
    let json = serde_json::to_string(desired).expect("a desired state serializes to JSON");
    let back: DesiredState = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("its JSON does not read back: {e}\n{json}"));
    assert_eq!(
        &back, desired,
        "its JSON reads back as something else\n{json}"
    );
}
