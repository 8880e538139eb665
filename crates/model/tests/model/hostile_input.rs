//! Hostile desired-state files (issue 11), each with its exact input: every one is a
//! located mistake of a stable kind, never a crash, a stall or a silent success.

use gec_model::desired::{
    parse, parse_bytes, ConfigError, ConfigErrorKind as Kind, ConfigErrors, MAX_DEPTH,
    MAX_FILE_BYTES, MAX_KEYS, MAX_TARGETS,
};
use gec_model::testing;

const HEAD: &str = "version: 1\ntargets:\n  - region: us-east-1\n";

fn errors_of(text: &str) -> ConfigErrors {
    match parse_bytes("hostile.yaml", text.as_bytes()) {
        Ok(parsed) => panic!("accepted a hostile file: {parsed:?}"),
        Err(errors) => errors,
    }
}

/// The one mistake a file must report: (line, column, kind), and a fragment of its message.
fn assert_only(text: &str, at: (usize, usize, Kind), says: &str) {
    let errors = errors_of(text);
    let got: Vec<(usize, usize, Kind)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.column, e.kind))
        .collect();
    assert_eq!(got, [at], "{errors}");
    assert!(errors.errors[0].message.contains(says), "{errors}");
}

#[test]
fn twenty_thousand_levels_of_block_nesting_are_a_located_limit_not_a_stack_overflow() {
    let text = "- ".repeat(20_000);
    assert_eq!(text.len(), 40_000);
    // The first list deeper than the limit starts at its `- `.
    assert_only(
        &text,
        (1, 2 * MAX_DEPTH + 1, Kind::Limit),
        "nested more than 32 levels",
    );
    // Inside a real document, on its own line.
    let nested = format!("{HEAD}clusters:\n{}x\n", "  - ".repeat(20_000));
    let errors = errors_of(&nested);
    assert_eq!(errors.errors.len(), 1, "{errors}");
    assert_eq!(
        (errors.errors[0].line, errors.errors[0].kind),
        (5, Kind::Limit)
    );
}

#[test]
fn twenty_thousand_levels_of_flow_nesting_are_a_located_limit() {
    // The YAML scanner reads a flow collection's brackets ahead of the parser, and stops
    // at its own limit of 255 levels, before the parser has reached the 33rd: past that
    // many the mistake is placed at the 256th bracket.
    let text = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert_only(&text, (1, 256, Kind::Limit), "nested more than 32 levels");
    let maps = format!("{}x{}", "{a: ".repeat(20_000), "}".repeat(20_000));
    assert_only(&maps, (1, 4 * 255 + 1, Kind::Limit), "nested more than");
    // Under the scanner's limit, at the first bracket past ours.
    let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert_only(&text, (1, MAX_DEPTH + 1, Kind::Limit), "nested more than");
}

#[test]
fn nesting_at_the_limit_is_read_and_reported_by_the_schema() {
    // One level under the limit: the loader and serde read it, and the schema says why
    // it is wrong.
    let text = format!("{HEAD}clusters:\n{}x\n", "  - ".repeat(MAX_DEPTH - 2));
    let errors = errors_of(&text);
    assert!(
        errors.errors.iter().all(|e| e.kind != Kind::Limit),
        "{errors}"
    );
}

#[test]
fn ten_thousand_keys_in_one_section_are_one_located_limit() {
    let keys: String = (0..10_000).map(|i| format!("  key{i}: 1\n")).collect();
    let text = format!("{HEAD}redeploy:\n{keys}");
    // Line 5 holds key0; the first key past the limit is key1000.
    assert_only(
        &text,
        (5 + MAX_KEYS, 3, Kind::Limit),
        "more than 1000 keys in one mapping",
    );
}

#[test]
fn every_unknown_key_of_a_section_at_the_limit_is_reported() {
    // The most keys a mapping may hold, each one unknown: each is checked on its own,
    // in time linear in the section.
    let keys: String = (0..MAX_KEYS).map(|i| format!("  key{i}: 1\n")).collect();
    let errors = errors_of(&format!("{HEAD}redeploy:\n{keys}"));
    assert_eq!(
        errors.errors.len(),
        MAX_KEYS,
        "{}",
        errors.errors[0].message
    );
    assert!(errors.errors.iter().all(|e| e.kind == Kind::UnknownField));
    assert_eq!(errors.errors[MAX_KEYS - 1].path, "redeploy.key999");
}

fn accounts_entry(accounts: usize, regions: usize) -> String {
    let mut entry = String::from("  - roleName: gec\n    regions:\n");
    for r in 0..regions {
        entry.push_str(&format!("      - r{r}-test-1\n"));
    }
    entry.push_str("    accounts:\n");
    for a in 0..accounts {
        entry.push_str(&format!("      - id: \"{a:012}\"\n"));
    }
    entry
}

#[test]
fn three_thousand_accounts_in_three_thousand_regions_are_refused_before_expanding() {
    let text = format!("version: 1\ntargets:\n{}", accounts_entry(3_000, 3_000));
    let errors = errors_of(&text);
    let limits: Vec<&ConfigError> = errors
        .errors
        .iter()
        .filter(|e| e.kind == Kind::Limit)
        .collect();
    assert_eq!(limits.len(), 1, "{errors}");
    // Placed on the entry (a block mapping is marked at its first key).
    assert_eq!(
        (limits[0].line, limits[0].column, limits[0].path.as_str()),
        (3, 13, "targets[0]")
    );
    assert!(limits[0].message.contains("5000"), "{}", limits[0].message);
}

#[test]
fn the_target_limit_counts_every_entry_of_the_file() {
    // 2,500 + 2,500 is the limit; one more target is past it, on the entry that adds it.
    let half = accounts_entry(50, 50);
    let at_limit = format!("version: 1\ntargets:\n{half}{half}");
    let at_limit = at_limit.replacen("\"000000000", "\"100000000", 50);
    let desired = testing::desired(&at_limit);
    assert_eq!(desired.targets.len(), MAX_TARGETS);

    let over = format!("{at_limit}  - region: eu-west-1\n");
    let errors = errors_of(&over);
    let got: Vec<(&str, Kind)> = errors
        .errors
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect();
    assert_eq!(got, [("targets[2]", Kind::Limit)], "{errors}");
}

#[test]
fn a_nul_byte_before_an_exclusion_rule_is_located_not_the_end_of_the_file() {
    let text = format!(
        "{HEAD}clusters:\n  - name: payments-prod\n    guardDutyManaged: true\n\0\
         \n  - name: sandbox\n    guardDutyManaged: false\n"
    );
    assert_only(&text, (7, 1, Kind::Encoding), "a NUL byte");
    // Inside a value too.
    let text = format!("{HEAD}clusters:\n  - name: sand\0box\n    guardDutyManaged: false\n");
    assert_only(&text, (5, 15, Kind::Encoding), "a NUL byte");
}

#[test]
fn control_characters_are_located_encoding_mistakes() {
    // (label, the character, where it is placed in the file)
    let rows = [
        ("BEL", '\u{7}'),
        ("backspace", '\u{8}'),
        ("vertical tab", '\u{b}'),
        ("form feed", '\u{c}'),
        ("escape", '\u{1b}'),
        ("unit separator", '\u{1f}'),
        ("DEL", '\u{7f}'),
        ("C1 start", '\u{80}'),
        ("NEL", '\u{85}'),
        ("CSI", '\u{9b}'),
        ("C1 end", '\u{9f}'),
        ("noncharacter U+FFFE", '\u{fffe}'),
        ("noncharacter U+FFFF", '\u{ffff}'),
    ];
    for (label, c) in rows {
        let text = format!("{HEAD}# a comment with {c} in it\n");
        let errors = errors_of(&text);
        let got: Vec<(usize, usize, Kind)> = errors
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.kind))
            .collect();
        assert_eq!(got, [(4, 18, Kind::Encoding)], "{label}: {errors}");
    }
    // TAB, CR and LF are text.
    let fine = format!("{HEAD}suspend: false # a\ttab\r\n");
    assert!(parse_bytes("t.yaml", fine.as_bytes()).is_ok());
}

#[test]
fn bytes_that_are_not_utf8_are_located_at_the_first_one() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"clusters:\n  - name: caf\xe9\n    guardDutyManaged: true\n");
    let errors = parse_bytes("latin1.yaml", &bytes).unwrap_err();
    let got: Vec<(usize, usize, Kind)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.column, e.kind))
        .collect();
    assert_eq!(got, [(5, 14, Kind::Encoding)], "{errors}");
    assert!(errors.errors[0].message.contains("0xe9"), "{errors}");
}

#[test]
fn a_byte_order_mark_is_read_past_and_a_file_over_the_size_limit_is_refused_unread() {
    let with_bom = format!("\u{feff}{HEAD}");
    assert!(parse_bytes("bom.yaml", with_bom.as_bytes()).is_ok());
    // Past the size limit nothing else is looked at, not even the encoding.
    let mut big = vec![0xff; MAX_FILE_BYTES + 1];
    big[..HEAD.len()].copy_from_slice(HEAD.as_bytes());
    let errors = parse_bytes("big.yaml", &big).unwrap_err();
    let got: Vec<(usize, usize, Kind)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.column, e.kind))
        .collect();
    assert_eq!(got, [(1, 1, Kind::Limit)], "{errors}");
}

#[test]
fn huge_and_overlong_durations_are_located_mistakes() {
    // (label, text after the head, line, column, path)
    let rows = [
        (
            "a settle time past u64 seconds",
            "redeploy:\n  settleTime: 99999999999999999999h\n",
            5,
            15,
            "redeploy.settleTime",
        ),
        (
            "a retry-after that fits in u64 seconds but not in a deadline",
            "redeploy:\n  retryAfter: 999999999999h\n",
            5,
            15,
            "redeploy.retryAfter",
        ),
        (
            "a settle time just over 30 days",
            "redeploy:\n  settleTime: 720h1s\n",
            5,
            15,
            "redeploy.settleTime",
        ),
        (
            "an interval over a day",
            "reconcile:\n  interval: 24h1s\n",
            5,
            13,
            "reconcile.interval",
        ),
    ];
    for (label, tail, line, column, path) in rows {
        let errors = errors_of(&format!("{HEAD}{tail}"));
        let got: Vec<(usize, usize, &str, Kind)> = errors
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.path.as_str(), e.kind))
            .collect();
        assert_eq!(
            got,
            [(line, column, path, Kind::InvalidValue)],
            "{label}: {errors}"
        );
    }
    // The limits themselves are accepted.
    let text = format!(
        "{HEAD}redeploy:\n  settleTime: 720h\n  retryAfter: 720h\nreconcile:\n  interval: 24h\n"
    );
    assert!(parse_bytes("t.yaml", text.as_bytes()).is_ok());
}

/// jiff's friendly format: each unit at most once, sub-second units where the field
/// allows them, `d` as 24 hours; the bounds hold whatever the spelling.
#[test]
fn friendly_durations_keep_their_bounds_and_their_locations() {
    assert_only(
        &format!("{HEAD}redeploy:\n  settleTime: 5m5m\n"),
        (5, 15, Kind::InvalidValue),
        "can't be repeated",
    );
    assert_only(
        &format!("{HEAD}reconcile:\n  interval: 9500ms\n"),
        (5, 13, Kind::InvalidValue),
        "must be at least 10s",
    );
    assert_only(
        &format!("{HEAD}reconcile:\n  interval: 1d500ms\n"),
        (5, 13, Kind::InvalidValue),
        "must be at most 24h",
    );
    assert_only(
        &format!("{HEAD}redeploy:\n  retryAfter: 30d1s\n"),
        (5, 15, Kind::InvalidValue),
        "longer than the limit of 720h",
    );
    let text = format!(
        "{HEAD}redeploy:\n  settleTime: 500ms\n  retryAfter: 30d\nreconcile:\n  interval: 1d\n"
    );
    let desired = parse_bytes("t.yaml", text.as_bytes()).expect("within every bound");
    assert_eq!(desired.redeploy.settle_time.get().as_millis(), 500);
    assert_eq!(desired.redeploy.retry_after.get().as_secs(), 720 * 3600);
    assert_eq!(desired.reconcile.interval.get().as_secs(), 24 * 3600);
    let text = format!("{HEAD}reconcile:\n  interval: 1h30m\n");
    let desired = parse_bytes("t.yaml", text.as_bytes()).expect("1h30m");
    assert_eq!(desired.reconcile.interval.get().as_secs(), 5400);
}

#[test]
fn a_window_time_zone_is_an_iana_name_or_a_located_mistake() {
    let window = |zone: &str| {
        format!(
            "{HEAD}redeploy:\n  windows:\n    - days: [sun]\n      start: \"01:00\"\n      end: \"05:00\"\n      timeZone: {zone}\n"
        )
    };
    assert_only(
        &window("Europe/Atlantis"),
        (9, 17, Kind::InvalidValue),
        "\"Europe/Atlantis\" is not an IANA time zone name",
    );
    assert_only(
        &window("\"+02:00\""),
        (9, 17, Kind::InvalidValue),
        "is not an IANA time zone name",
    );
    for zone in ["Europe/Berlin", "UTC", "America/New_York", "europe/berlin"] {
        let desired = parse_bytes("t.yaml", window(zone).as_bytes()).expect(zone);
        assert_eq!(desired.redeploy.windows[0].time_zone.as_deref(), Some(zone));
    }
}

#[test]
fn parse_bytes_and_parse_agree_on_text() {
    for text in [
        HEAD.to_owned(),
        format!("{HEAD}clusters:\n  - name: x\n"),
        "version: [".to_owned(),
        String::new(),
    ] {
        assert_eq!(
            parse_bytes("f.yaml", text.as_bytes()),
            parse("f.yaml", &text)
        );
    }
}

/// `reconcile.conflicts`: bounded, located, and off at 0.
#[test]
fn conflict_detection_settings_are_bounded_and_located() {
    // (label, text after the head, line, column, says)
    let rows = [
        (
            "too many reverts",
            "reconcile:\n  conflicts:\n    reverts: 101\n",
            (6, 14, Kind::InvalidValue),
            "more than 100",
        ),
        (
            "a window shorter than a minute",
            "reconcile:\n  conflicts:\n    window: 59s\n",
            (6, 13, Kind::InvalidValue),
            "at least 1m",
        ),
        (
            "a window longer than a week",
            "reconcile:\n  conflicts:\n    window: 7d1s\n",
            (6, 13, Kind::InvalidValue),
            "at most 7d",
        ),
        (
            "a negative count",
            "reconcile:\n  conflicts:\n    reverts: -1\n",
            (6, 14, Kind::WrongType),
            "",
        ),
        (
            "an unknown key",
            "reconcile:\n  conflicts:\n    revert: 3\n",
            (6, 5, Kind::UnknownField),
            "revert",
        ),
    ];
    for (label, tail, at, says) in rows {
        let errors = errors_of(&format!("{HEAD}{tail}"));
        let got: Vec<(usize, usize, Kind)> = errors
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.kind))
            .collect();
        assert_eq!(got, [at], "{label}: {errors}");
        assert!(errors.errors[0].message.contains(says), "{label}: {errors}");
    }
    let parsed = |tail: &str| {
        parse_bytes("t.yaml", format!("{HEAD}{tail}").as_bytes())
            .unwrap()
            .reconcile
            .conflicts
    };
    let default = parsed("");
    assert_eq!(
        (default.reverts, default.window.to_string()),
        (3, "1h".to_owned())
    );
    let off = parsed("reconcile:\n  conflicts:\n    reverts: 0\n");
    assert_eq!(off.reverts, 0, "0 turns detection off");
    let edges = parsed("reconcile:\n  conflicts:\n    reverts: 100\n    window: 7d\n");
    assert_eq!(
        (edges.reverts, edges.window.get().as_secs()),
        (100, 604_800)
    );
}
