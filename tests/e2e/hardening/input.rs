//! Hostile desired-state files against the real binary's `validate` (issue 11, bounded
//! parsing): each exact input exits 1 with the file, line and column of a located
//! mistake, never a crash, a stall or "ok".

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{hermetic_env, root, run_offline, Run};

/// Generous: every case takes well under a second in a debug build. A run past this is
/// killed, so a regression fails the test instead of hanging it.
const KILL_AFTER: Duration = Duration::from_secs(20);

const HEAD: &str = "version: 1\ntargets:\n  - region: us-east-1\n";

/// Runs `validate FILE` offline; kills it after [`KILL_AFTER`]. Also returns how long it took.
fn validate(file: &Path) -> (Run, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
    cmd.arg("validate")
        .arg(file)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    hermetic_env(&mut cmd, &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the controller");
    // The outputs are small (one located mistake), so the pipes cannot fill up meanwhile.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the controller") {
            break Some(status);
        }
        if started.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let output = child
        .wait_with_output()
        .expect("read the controller's output");
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        status.is_some(),
        "validate was killed after {KILL_AFTER:?}: {run}"
    );
    (run, took)
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

/// (label, the exact file, `:line:column:` of the mistake, a word of its message)
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let keys: String = (0..10_000).map(|i| format!("  key{i}: 1\n")).collect();
    vec![
        (
            "20,000 levels of block nesting",
            "- ".repeat(20_000).into_bytes(),
            ":1:65:",
            "nested more than 32 levels",
        ),
        (
            "20,000 levels of flow nesting",
            format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
            ":1:256:",
            "nested more than 32 levels",
        ),
        (
            "10,000 unknown keys in one section",
            format!("{HEAD}redeploy:\n{keys}").into_bytes(),
            ":1005:3:",
            "more than 1000 keys",
        ),
        (
            "3,000 accounts in 3,000 regions",
            format!("version: 1\ntargets:\n{}", accounts_entry(3_000, 3_000)).into_bytes(),
            ":3:13: targets[0]",
            "limit of 5000",
        ),
        (
            "a NUL byte before an exclusion rule",
            format!(
                "{HEAD}clusters:\n  - name: payments-prod\n    guardDutyManaged: true\n\0\
                 \n  - name: sandbox\n    guardDutyManaged: false\n"
            )
            .into_bytes(),
            ":7:1:",
            "NUL",
        ),
        (
            "an escape character in a comment",
            format!("{HEAD}# \u{1b}[2J\n").into_bytes(),
            ":4:3:",
            "control character U+001B",
        ),
        (
            "a Latin-1 byte",
            [HEAD.as_bytes(), b"clusters:\n  - name: caf\xe9\n"].concat(),
            ":5:14:",
            "not UTF-8",
        ),
        (
            "a duration past any deadline",
            format!("{HEAD}redeploy:\n  settleTime: 999999999999h\n").into_bytes(),
            ":5:15: redeploy.settleTime",
            "longer than the limit",
        ),
    ]
}

#[test]
fn hostile_files_are_located_mistakes_of_validate_never_a_crash() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (label, bytes, location, word) in hostile_files() {
        let file = dir.path().join("hostile.yaml");
        std::fs::write(&file, &bytes).expect("write the file");
        let (run, took) = validate(&file);
        eprintln!("{label}: {} bytes, validate took {took:?}", bytes.len());
        assert_eq!(run.code, 1, "{label}: {run}");
        let at = format!("{}{location}", file.display());
        assert!(run.stderr.contains(&at), "{label}: wants {at}: {run}");
        assert!(run.stderr.contains(word), "{label}: wants {word:?}: {run}");
        assert!(
            run.stderr.contains("1 error, nothing applied"),
            "{label}: one mistake: {run}"
        );
        assert!(!run.stdout.contains(": ok"), "{label}: {run}");
    }
}

#[test]
fn a_duration_flag_past_any_deadline_is_a_clean_usage_error() {
    let config = crate::kit::repo_path("config/inclusion-tags.yaml");
    let config = config.to_str().expect("a UTF-8 path");
    for flag in ["--timeout", "--rollout-poll"] {
        let run = run_offline(&["apply", "--config", config, flag, "999999999999h"]);
        assert_eq!(run.code, 1, "a usage error exits 1, never 2: {flag}: {run}");
        assert!(
            run.stderr.contains("longer than the limit"),
            "{flag}: {run}"
        );
        assert!(!run.stderr.contains("panicked"), "{flag}: {run}");
    }
}
