//! The command line around the commands (issue 17): usage errors never exit 2 (that is
//! "changes pending"), `--version` names the commit, `completions` and `man` cover every
//! subcommand.

use std::process::Command;

use crate::kit::{root, run_offline};

/// The subcommands a user can type (clap's own `help` aside).
const SUBCOMMANDS: [&str; 9] = [
    "validate",
    "schema",
    "plan",
    "apply",
    "status",
    "run",
    "completions",
    "man",
    "probe",
];

#[test]
fn a_usage_error_exits_1_with_clap_s_suggestion_not_2() {
    let run = run_offline(&["plan", "--outptu", "json"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("unexpected argument '--outptu'")
            && run.stderr.contains("a similar argument exists: '--output'"),
        "{run}"
    );
    assert!(run.stdout.is_empty(), "{run}");
    // The other kinds of usage error, and the checks across flags.
    for args in [
        &["plan"][..],
        &["frobnicate"],
        &["plan", "--config", "f", "--max-concurrent-targets", "0"],
        &[
            "--aws-attempt-timeout",
            "20s",
            "--aws-operation-timeout",
            "10s",
            "schema",
        ],
        &["apply", "--config", "f", "--output", "markdown"],
        &["status", "--config", "f", "--output", "markdown"],
        &[
            "plan",
            "--config",
            "f",
            "--read-only-role",
            "arn:aws:iam::1:role/x",
        ],
        &["completions", "tcsh"],
    ] {
        let run = run_offline(args);
        assert_eq!(run.code, 1, "{args:?}: {run}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run}");
    }
    // Help is not an error.
    for args in [&["--help"][..], &["plan", "--help"], &["help", "plan"]] {
        let run = run_offline(args);
        assert_eq!(run.code, 0, "{args:?}: {run}");
        assert!(run.stdout.contains("Usage:"), "{args:?}: {run}");
    }
    // No subcommand at all: clap prints the help on stderr as an error.
    assert_eq!(run_offline(&[]).code, 1);
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let run = run_offline(&["--version"]);
    assert_eq!(run.code, 0, "{run}");
    let line = run.stdout.trim_end();
    let rest = line
        .strip_prefix(&format!(
            "guardduty-ecs-controller {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"));
    let (commit, date) = rest.split_once(' ').unwrap_or((rest, ""));
    let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{line:?}"
    );
    assert!(
        date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }),
        "{line:?}"
    );
    // Built in this repository: the commit is HEAD's (cargo reran the build script when
    // HEAD moved).
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .expect("git rev-parse HEAD");
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout);
        assert_eq!(hex, &head.trim()[..12], "{line:?}");
    }
    assert_eq!(run_offline(&["-V"]).stdout, run.stdout);
}

#[test]
fn the_bash_completion_parses_and_completes_every_subcommand() {
    let run = run_offline(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{run}");
    let dir = tempfile::TempDir::new().expect("temp dir");
    let script = dir.path().join("gec.bash");
    std::fs::write(&script, &run.stdout).expect("write the script");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash -n");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for sub in SUBCOMMANDS {
        assert!(run.stdout.contains(sub), "the completion lacks {sub}");
    }
    assert!(run.stdout.contains("--read-only-role"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = run_offline(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run}");
        assert!(run.stdout.contains("plan"), "{shell}: {run}");
    }
}

#[test]
fn the_man_page_renders_and_names_every_subcommand() {
    let run = run_offline(&["man"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains(".TH"), "{run}");
    for sub in SUBCOMMANDS {
        assert!(run.stdout.contains(sub), "the man page lacks {sub}");
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    let page = dir.path().join("guardduty-ecs-controller.1");
    std::fs::write(&page, &run.stdout).expect("write the page");
    // Rendered by man(1) where it is installed; its warnings (-ww) fail the test.
    if let Ok(out) = Command::new("man")
        .args(["-l", "--warnings=w"])
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "man warns: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("SUBCOMMANDS"), "{text}");
    }
    // --dir: one page per subcommand.
    let run = run_offline(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run}");
    for sub in SUBCOMMANDS {
        let page = dir.path().join(format!("guardduty-ecs-controller-{sub}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(text.contains(".TH"), "{page:?}");
    }
}

/// Output that cannot be written (`plan | head`, a full disk) loses the text, never the
/// exit code: std's `println!` and clap_complete panic on a failed write (exit 101).
#[test]
fn a_stream_that_cannot_be_written_keeps_the_exit_code() {
    let full = |stream: &str, args: &[&str], want: i32| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
        cmd.args(args).current_dir(root());
        crate::kit::hermetic_env(&mut cmd, &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
        if stream == "stdout" {
            cmd.stdout(file).stderr(std::process::Stdio::null());
        } else {
            cmd.stderr(file).stdout(std::process::Stdio::null());
        }
        let status = cmd.status().expect("run the controller");
        assert_eq!(status.code(), Some(want), "{args:?} with {stream} full");
    };
    full("stdout", &["schema"], 0);
    full("stdout", &["validate", "config/multi-rule.yaml"], 0);
    full(
        "stdout",
        &["validate", "--output", "json", "/nonexistent.yaml"],
        1,
    );
    full("stdout", &["completions", "bash"], 1);
    full("stderr", &["validate", "/nonexistent.yaml"], 1);
    full("stderr", &["plan", "--config", "/nonexistent.yaml"], 1);
    full("stderr", &["plan", "--outptu", "json"], 1);
}
