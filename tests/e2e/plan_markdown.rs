//! `plan --output markdown` (issue 17): the pull-request comment of the demo fleet is
//! compared with a golden file. Regenerate it with
//! `GEC_BLESS=1 cargo test --test e2e -- plan_markdown` and review the diff.

use crate::kit::{repo_path, Sandbox};

const GOLDEN: &str = "tests/e2e/golden/plan.md";

/// What differs between runs of the same plan: detector ids are random in the sandbox
/// (as in AWS), so each becomes `<detector-N>` in order of appearance.
fn normalise(markdown: &str) -> String {
    let mut ids: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in markdown.split_inclusive('\n') {
        let mut rest = line;
        while let Some(at) = rest.find("detector ") {
            let (before, after) = rest.split_at(at + "detector ".len());
            out.push_str(before);
            let id: String = after
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            if id.len() >= 16 {
                let n = match ids.iter().position(|i| *i == id) {
                    Some(n) => n,
                    None => {
                        ids.push(id.clone());
                        ids.len() - 1
                    }
                };
                out.push_str(&format!("<detector-{}>", n + 1));
                rest = &after[id.len()..];
            } else {
                rest = after;
            }
        }
        out.push_str(rest);
    }
    out
}

#[test]
fn plan_markdown_of_the_demo_fleet_matches_the_golden_file() {
    let sb = Sandbox::start();
    sb.seed(&std::fs::read_to_string(repo_path("demo/fleet.yaml")).expect("demo/fleet.yaml"));
    let desired = repo_path("demo/desired.yaml");
    let run = sb.controller(&[
        "plan",
        "--config",
        desired.to_str().unwrap(),
        "--output",
        "markdown",
    ]);
    assert_eq!(run.code, 2, "changes pending: {run}");
    let got = normalise(&run.stdout);
    let path = repo_path(GOLDEN);
    if std::env::var_os("GEC_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write the golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "plan --output markdown differs from {GOLDEN} (GEC_BLESS=1 cargo test --test e2e -- \
         plan_markdown rewrites it):\n--- got\n{got}\n--- want\n{want}"
    );
    // Every code block is closed, every <details> too.
    assert_eq!(
        got.matches("<details").count(),
        got.matches("</details>").count()
    );
    assert_eq!(got.lines().filter(|l| l.starts_with("```")).count() % 2, 0);
}
