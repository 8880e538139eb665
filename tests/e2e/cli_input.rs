//! End to end: the binary's handling of desired-state files, before any AWS call.

use crate::kit::{repo_path, Sandbox};

const GOOD: &str = "version: 1\ntargets:\n  - region: us-east-1\n";

/// (label, file text, expected `line:column` in the message, a word the message must say)
const INVALID: &[(&str, &str, &str, &str)] = &[
    ("syntax error", "version: 1\ntargets: [\n  - region: us-east-1\n", ":3:", "syntax"),
    ("unknown key", "version: 1\ntargets:\n  - region: us-east-1\nclustrs: []\n", ":4:1:", "unknown field `clustrs`"),
    (
        "wrong type",
        "version: 1\ntargets:\n  - region: us-east-1\nredeploy:\n  maxConcurrent: lots\n",
        ":5:18:",
        "redeploy.maxConcurrent",
    ),
    (
        "duplicate rule",
        "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - name: a\n    guardDutyManaged: true\n  - name: a\n    guardDutyManaged: false\n",
        ":7:11:",
        "duplicate rule",
    ),
    ("empty file", "", ":1:1:", "empty"),
    ("truncated file", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - name: a\n    guardDutyMan", ":6:17:", "truncated"),
    (
        "file cut after a rule's name",
        "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - name: a\n",
        ":5:9: clusters[0]",
        "missing field `guardDutyManaged`",
    ),
];

#[test]
fn invalid_files_exit_1_with_line_and_column_and_never_reach_aws() {
    let sb = Sandbox::start();
    for (label, text, location, word) in INVALID {
        let file = sb.write("bad.yaml", text);
        let config = file.to_str().unwrap();
        for args in [
            vec!["validate", config],
            vec!["plan", "--config", config],
            vec!["apply", "--config", config],
        ] {
            let run = sb.controller(&args);
            assert_eq!(run.code, 1, "{label}, {}: {run}", args[0]);
            assert!(
                run.stderr.contains(&format!("{config}{location}")),
                "{label}: wants {location}: {run}"
            );
            assert!(run.stderr.contains(word), "{label}: wants {word:?}: {run}");
        }
    }
    assert!(
        sb.requests().is_empty(),
        "no invalid file may reach AWS: {:?}",
        sb.requests()
    );
}

#[test]
fn several_mistakes_in_one_file_are_reported_together() {
    let sb = Sandbox::start();
    let file = sb.write(
        "bad.yaml",
        "version: 2\ntargets:\n  - region: Mars\nclusters:\n  - name: a\n    guardDutyManaged: maybe\nreconcile:\n  interval: soon\n",
    );
    let run = sb.controller(&["validate", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run}");
    for needle in [
        ":6:23: clusters[0].guardDutyManaged",
        ":8:13: reconcile.interval",
    ] {
        assert!(run.stderr.contains(needle), "wants {needle:?}: {run}");
    }
}

#[test]
fn every_example_file_validates_and_schema_prints_a_json_schema() {
    let mut files: Vec<String> = std::fs::read_dir(repo_path("config"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.push(repo_path("demo/desired.yaml").display().to_string());
    assert!(files.len() >= 4, "config/ holds the examples: {files:?}");
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let run = crate::kit::run_offline(&args);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.stdout.lines().count(), files.len(), "{run}");

    let schema = crate::kit::run_offline(&["schema"]);
    assert_eq!(schema.code, 0, "{schema}");
    let json = schema.json();
    for key in [
        "version",
        "targets",
        "detector",
        "clusters",
        "unmatchedClusters",
        "suspend",
        "redeploy",
        "safety",
        "reconcile",
    ] {
        assert!(
            json["properties"][key].is_object(),
            "schema lacks {key}: {schema}"
        );
    }
    let good = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(good.path(), GOOD).unwrap();
    assert_eq!(
        crate::kit::run_offline(&["validate", good.path().to_str().unwrap()]).code,
        0
    );
}

/// An endpoint setting that is present but empty (`AWS_ENDPOINT_URL=` from a template
/// whose variable was unset) made the SDK panic inside every target's pass, and `apply`
/// then exited 0 with "0 targets". Now every command refuses it before any AWS call,
/// naming the setting; the daemon too.
#[test]
fn an_empty_aws_endpoint_setting_is_refused_before_any_aws_call() {
    let sb = Sandbox::start();
    let config = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: apps, guardDutyManaged: true}\n",
    );
    let config = config.to_str().unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("AWS_ENDPOINT_URL", "")], "AWS_ENDPOINT_URL "),
        (&[("AWS_ENDPOINT_URL", " ")], "AWS_ENDPOINT_URL "),
        (
            &[("AWS_ENDPOINT_URL", &sb.url), ("AWS_ENDPOINT_URL_ECS", "")],
            "AWS_ENDPOINT_URL_ECS ",
        ),
    ];
    for (env, setting) in cases {
        for args in [
            vec!["apply", "--config", config, "--timeout", "20s"],
            vec!["plan", "--config", config],
            vec!["run", "--config", config, "--listen", "127.0.0.1:0"],
        ] {
            let run = crate::kit::run_controller(&args, env);
            assert_eq!(run.code, 1, "{args:?} {env:?}: {run}");
            assert!(
                run.stderr.contains(setting) && run.stderr.contains("is set but empty"),
                "{args:?} {env:?}: {run}"
            );
            assert!(!run.stderr.contains("panicked"), "{run}");
        }
    }
    assert_eq!(
        sb.requests(),
        Vec::<serde_json::Value>::new(),
        "no AWS call"
    );
}

/// `validate` shows the offending line with a caret, suggests the nearest key, and with
/// `--output json` prints one document for all files (issue 17).
#[test]
fn validate_shows_the_line_with_a_caret_and_prints_json_on_request() {
    let dir = tempfile::TempDir::new().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\ntargets:\n  - region: us-east-1\nclustres: []\n",
    )
    .unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD).unwrap();
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());

    let run = crate::kit::run_offline(&["validate", bad]);
    assert_eq!(run.code, 1, "{run}");
    for needle in [
        &format!("{bad}:4:1: clustres: unknown field `clustres`") as &str,
        "did you mean `clusters`?",
        "4 | clustres: []\n  | ^^^^^^^^",
    ] {
        assert!(run.stderr.contains(needle), "wants {needle:?}: {run}");
    }

    let run = crate::kit::run_offline(&["validate", "--output", "json", bad, good]);
    assert_eq!(run.code, 1, "{run}");
    let json = run.json();
    let files = json["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{run}");
    assert_eq!(files[0]["file"], bad);
    assert_eq!(files[0]["valid"], false);
    let e = &files[0]["errors"][0];
    assert_eq!(
        e,
        &serde_json::json!({
            "line": 4, "column": 1, "kind": "unknown_field", "path": "clustres",
            "message": e["message"], "suggestion": "clusters"
        }),
        "{run}"
    );
    assert_eq!(files[1]["valid"], true);
    assert_eq!(files[1]["errors"], serde_json::json!([]));

    let run = crate::kit::run_offline(&["validate", "--output", "json", good]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["files"][0]["valid"], true, "{run}");
}
