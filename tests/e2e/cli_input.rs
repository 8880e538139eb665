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
