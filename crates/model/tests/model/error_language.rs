//! `validate`'s messages speak the file's language (issue 17): no Rust type names, the
//! nearest allowed key for a mistyped one, and a type mistake does not hide a range
//! mistake of the same section.

use gec_model::desired::{parse, ConfigErrorKind, ConfigErrors};

fn errors_of(label: &str, text: &str) -> ConfigErrors {
    match parse(label, text) {
        Ok(parsed) => panic!("{label} parsed, but it is invalid: {parsed:?}"),
        Err(errors) => errors,
    }
}

const HEAD: &str = "version: 1\ntargets:\n  - region: us-east-1\n";

/// Every numeric, boolean, list, mapping and word field, with `{v}` where a value goes.
const FIELDS: &[(&str, &str)] = &[
    ("version", "version: {v}\ntargets: [{region: us-east-1}]\n"),
    ("targets", "version: 1\ntargets: {v}\n"),
    ("targets[0]", "version: 1\ntargets:\n  - {v}\n"),
    ("targets[0].region", "version: 1\ntargets:\n  - region: {v}\n"),
    ("targets[0].regions", "version: 1\ntargets:\n  - regions: {v}\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n"),
    ("targets[0].accounts", "version: 1\ntargets:\n  - regions: [us-east-1]\n    accounts: {v}\n    roleName: gec\n"),
    ("targets[0].accounts[0]", "version: 1\ntargets:\n  - regions: [us-east-1]\n    accounts: [{v}]\n    roleName: gec\n"),
    ("targets[0].accounts[0].id", "version: 1\ntargets:\n  - regions: [us-east-1]\n    accounts: [{id: {v}}]\n    roleName: gec\n"),
    ("suspend", "{H}suspend: {v}\n"),
    ("unmatchedClusters", "{H}unmatchedClusters: {v}\n"),
    ("detector", "{H}detector: {v}\n"),
    ("detector.runtimeMonitoring", "{H}detector:\n  runtimeMonitoring: {v}\n"),
    ("detector.ecsFargateAgentManagement", "{H}detector:\n  ecsFargateAgentManagement: {v}\n"),
    ("clusters", "{H}clusters: {v}\n"),
    ("clusters[0]", "{H}clusters:\n  - {v}\n"),
    ("clusters[0].name", "{H}clusters:\n  - name: {v}\n    guardDutyManaged: true\n"),
    ("clusters[0].guardDutyManaged", "{H}clusters:\n  - name: a\n    guardDutyManaged: {v}\n"),
    ("clusters[0].match", "{H}clusters:\n  - match: {v}\n    guardDutyManaged: true\n"),
    ("clusters[0].match.tags", "{H}clusters:\n  - match:\n      tags: {v}\n    guardDutyManaged: true\n"),
    ("clusters[0].match.regions", "{H}clusters:\n  - match:\n      regions: {v}\n    guardDutyManaged: true\n"),
    ("redeploy", "{H}redeploy: {v}\n"),
    ("redeploy.enabled", "{H}redeploy:\n  enabled: {v}\n"),
    ("redeploy.settleTime", "{H}redeploy:\n  settleTime: {v}\n"),
    ("redeploy.maxConcurrent", "{H}redeploy:\n  maxConcurrent: {v}\n"),
    ("redeploy.maxPerHour", "{H}redeploy:\n  maxPerHour: {v}\n"),
    ("redeploy.waitForSteadyState", "{H}redeploy:\n  waitForSteadyState: {v}\n"),
    ("redeploy.stopOnFailure", "{H}redeploy:\n  stopOnFailure: {v}\n"),
    ("redeploy.retryAfter", "{H}redeploy:\n  retryAfter: {v}\n"),
    ("redeploy.excludeServices", "{H}redeploy:\n  excludeServices: {v}\n"),
    ("redeploy.onCoverageLoss", "{H}redeploy:\n  onCoverageLoss: {v}\n"),
    ("redeploy.windows", "{H}redeploy:\n  windows: {v}\n"),
    ("redeploy.windows[0].days", "{H}redeploy:\n  windows:\n    - days: {v}\n      start: \"01:00\"\n      end: \"02:00\"\n"),
    ("redeploy.windows[0].days[0]", "{H}redeploy:\n  windows:\n    - days: [{v}]\n      start: \"01:00\"\n      end: \"02:00\"\n"),
    ("redeploy.windows[0].start", "{H}redeploy:\n  windows:\n    - days: [mon]\n      start: {v}\n      end: \"02:00\"\n"),
    ("safety", "{H}safety: {v}\n"),
    ("safety.maxClusterChangesPerCycle", "{H}safety:\n  maxClusterChangesPerCycle: {v}\n"),
    ("safety.maxCoverageLossFraction", "{H}safety:\n  maxCoverageLossFraction: {v}\n"),
    ("reconcile", "{H}reconcile: {v}\n"),
    ("reconcile.interval", "{H}reconcile:\n  interval: {v}\n"),
    ("reconcile.jitter", "{H}reconcile:\n  jitter: {v}\n"),
    ("reconcile.conflicts", "{H}reconcile:\n  conflicts: {v}\n"),
    ("reconcile.conflicts.reverts", "{H}reconcile:\n  conflicts:\n    reverts: {v}\n"),
    ("reconcile.conflicts.window", "{H}reconcile:\n  conflicts:\n    window: {v}\n"),
    ("organization", "version: 1\norganization: {v}\n"),
    ("organization.administrator", "version: 1\norganization:\n  administrator: {v}\n  memberRoleName: gec\n"),
    ("organization.administrator.regions", "version: 1\norganization:\n  administrator:\n    accountId: \"111111111111\"\n    regions: {v}\n  memberRoleName: gec\n"),
    ("organization.autoEnable", "version: 1\norganization:\n  administrator:\n    accountId: \"111111111111\"\n    regions: [us-east-1]\n  memberRoleName: gec\n  autoEnable: {v}\n"),
    ("organization.members", "version: 1\norganization:\n  administrator:\n    accountId: \"111111111111\"\n    regions: [us-east-1]\n  memberRoleName: gec\n  members: {v}\n"),
];

/// Values of every YAML type, some that no field takes.
const VALUES: &[&str] = &[
    "\"text\"",
    "text",
    "[1, 2]",
    "{a: 1}",
    "true",
    "1.5",
    "-3",
    "7",
    "99999999999999999999",
    "",
    "null",
    "[]",
    "{}",
];

#[test]
fn no_message_names_a_rust_type() {
    let rust = regex::Regex::new(
        r"\b(u8|u16|u32|u64|u128|i8|i16|i32|i64|i128|usize|isize|f32|f64)\b|struct|enum |sequence|\bmap |\bmap\b|variant|identifier|Option value",
    )
    .expect("regex");
    let mut checked = 0;
    for (field, template) in FIELDS {
        for value in VALUES {
            let text = template.replace("{H}", HEAD).replace("{v}", value);
            let Err(errors) = parse(field, &text) else {
                continue;
            };
            for e in &errors.errors {
                checked += 1;
                assert!(
                    !rust.is_match(&e.message),
                    "{field} = {value}: a Rust name in {:?}\n{text}",
                    e.message
                );
            }
        }
    }
    assert!(checked > 300, "only {checked} messages checked");
}

#[test]
fn wrong_types_are_named_in_the_files_words() {
    // (label, text after the head, path, the message must say)
    let rows = [
        (
            "a word for a count",
            "redeploy:\n  maxConcurrent: two\n",
            "redeploy.maxConcurrent",
            "expected a whole number, got \"two\"",
        ),
        (
            "a quoted count",
            "redeploy:\n  maxConcurrent: \"2\"\n",
            "redeploy.maxConcurrent",
            "expected a whole number, got the text \"2\"",
        ),
        (
            "a list for a count",
            "redeploy:\n  maxPerHour: [1]\n",
            "redeploy.maxPerHour",
            "expected a whole number, got a list",
        ),
        (
            "a fraction for a count",
            "safety:\n  maxClusterChangesPerCycle: 1.5\n",
            "safety.maxClusterChangesPerCycle",
            "expected a whole number",
        ),
        (
            "a negative count",
            "redeploy:\n  maxPerHour: -1\n",
            "redeploy.maxPerHour",
            "0 or more",
        ),
        (
            "a huge count",
            "redeploy:\n  maxPerHour: 99999999999\n",
            "redeploy.maxPerHour",
            "too large",
        ),
        (
            "a word for a number",
            "reconcile:\n  jitter: lots\n",
            "reconcile.jitter",
            "expected a number, got \"lots\"",
        ),
        (
            "a word for a boolean",
            "suspend: yes\n",
            "suspend",
            "expected true or false, got \"yes\"",
        ),
        (
            "a number for a list",
            "redeploy:\n  excludeServices: 5\n",
            "redeploy.excludeServices",
            "expected a list",
        ),
        (
            "a list for a section",
            "redeploy: [1]\n",
            "redeploy",
            "expected a mapping, got a list",
        ),
        (
            "a number for a section",
            "reconcile: 5\n",
            "reconcile",
            "expected a mapping",
        ),
        (
            "a list for text",
            "clusters:\n  - name: [a]\n    guardDutyManaged: true\n",
            "clusters[0].name",
            "expected text, got a list",
        ),
        (
            "a mapping for a word",
            "detector:\n  runtimeMonitoring: {a: 1}\n",
            "detector.runtimeMonitoring",
            "one of: enabled, disabled, unmanaged",
        ),
        (
            "a word not allowed",
            "unmatchedClusters: absnet\n",
            "unmatchedClusters",
            "unknown value `absnet`, expected `ignore` or `absent`; did you mean `absent`?",
        ),
    ];
    for (label, tail, path, says) in rows {
        let errors = errors_of(label, &format!("{HEAD}{tail}"));
        let e = errors
            .errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{label}: no mistake at {path}\n{errors}"));
        assert!(
            e.message.contains(says),
            "{label}: {:?} should say {says:?}",
            e.message
        );
    }
}

#[test]
fn a_mistyped_key_gets_the_nearest_allowed_one() {
    // (label, text after the head, path, suggestion)
    let rows = [
        (
            "top level",
            "clustres:\n  - name: a\n    guardDutyManaged: true\n",
            "clustres",
            "clusters",
        ),
        (
            "a section",
            "reconcile:\n  intreval: 5m\n",
            "reconcile.intreval",
            "interval",
        ),
        (
            "a rule's selector",
            "clusters:\n  - match:\n      nmePattern: \"*\"\n    guardDutyManaged: true\n",
            "clusters[0].match.nmePattern",
            "namePattern",
        ),
        (
            "a target",
            "    rolearn: arn:aws:iam::111111111111:role/x\n",
            "targets[0].rolearn",
            "roleArn",
        ),
        (
            "a word",
            "redeploy:\n  onCoverageLoss: redeplyo\n",
            "redeploy.onCoverageLoss",
            "redeploy",
        ),
    ];
    for (label, tail, path, near) in rows {
        let errors = errors_of(label, &format!("{HEAD}{tail}"));
        let e = errors
            .errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{label}: no mistake at {path}\n{errors}"));
        assert_eq!(e.suggestion.as_deref(), Some(near), "{label}: {e:?}");
        assert!(
            e.message.contains(&format!("did you mean `{near}`?")),
            "{label}: {:?}",
            e.message
        );
        let json = serde_json::to_value(e).expect("json");
        assert_eq!(json["suggestion"], near, "{label}");
    }
    // Nothing near: no suggestion, and none in the JSON.
    let errors = errors_of("far", &format!("{HEAD}bananas: 1\n"));
    assert_eq!(errors.errors[0].suggestion, None);
    assert!(!errors.errors[0].message.contains("did you mean"));
    let json = serde_json::to_value(&errors.errors[0]).expect("json");
    assert!(json.get("suggestion").is_none(), "{json}");
}

/// A mistake's path and kind.
type Found = (&'static str, ConfigErrorKind);

#[test]
fn a_type_mistake_and_a_range_mistake_of_one_section_are_both_reported() {
    // (label, text after the head, [(path, kind)])
    let rows: &[(&str, &str, &[Found])] = &[
        (
            "redeploy",
            "redeploy:\n  maxConcurrent: two\n  maxPerHour: 0\n",
            &[("redeploy.maxConcurrent", ConfigErrorKind::WrongType), ("redeploy.maxPerHour", ConfigErrorKind::InvalidValue)],
        ),
        (
            "reconcile",
            "reconcile:\n  interval: 1s\n  jitter: lots\n",
            &[("reconcile.interval", ConfigErrorKind::InvalidValue), ("reconcile.jitter", ConfigErrorKind::WrongType)],
        ),
        (
            "safety",
            "safety:\n  maxClusterChangesPerCycle: many\n  maxCoverageLossFraction: 1.5\n",
            &[("safety.maxClusterChangesPerCycle", ConfigErrorKind::WrongType), ("safety.maxCoverageLossFraction", ConfigErrorKind::InvalidValue)],
        ),
        (
            "nested",
            "reconcile:\n  conflicts:\n    reverts: x\n    window: 1s\n",
            &[("reconcile.conflicts.reverts", ConfigErrorKind::WrongType), ("reconcile.conflicts.window", ConfigErrorKind::InvalidValue)],
        ),
        (
            "an unknown key and a range",
            "reconcile:\n  jittr: 0.1\n  jitter: 0.9\n",
            &[("reconcile.jittr", ConfigErrorKind::UnknownField), ("reconcile.jitter", ConfigErrorKind::InvalidValue)],
        ),
        (
            "a list inside the section",
            "redeploy:\n  windows:\n    - days: monday\n      start: \"01:00\"\n      end: \"02:00\"\n  maxPerHour: 0\n",
            &[("redeploy.windows[0].days", ConfigErrorKind::WrongType), ("redeploy.maxPerHour", ConfigErrorKind::InvalidValue)],
        ),
    ];
    for (label, tail, want) in rows {
        let errors = errors_of(label, &format!("{HEAD}{tail}"));
        let got: Vec<(&str, ConfigErrorKind)> = errors
            .errors
            .iter()
            .map(|e| (e.path.as_str(), e.kind))
            .collect();
        assert_eq!(got, *want, "{label}\n{errors}");
    }
}
