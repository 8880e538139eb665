//! Read-only plans (issue 17): `plan` and `status --read-only-role NAME` reach every
//! target through role NAME of its account, and `deploy/iam-policy-readonly.json` allows
//! every call they make, grants no write and nothing they do not use. The calls come from
//! the sandbox's request log, checked with the evaluator of `iam_policy.rs`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::iam_policy::{
    calls_of, check_calls, desired, one_or_many, statements, FLEET, ORG_DESIRED, ORG_FLEET, RAISED,
    ROLE_ARN,
};
use crate::kit::{repo_path, run_controller, Sandbox};

const READ_ONLY: &str = "guardduty-ecs-controller-readonly";

fn policy() -> Value {
    let path = repo_path("deploy/iam-policy-readonly.json");
    let text = std::fs::read_to_string(&path).expect("read deploy/iam-policy-readonly.json");
    serde_json::from_str(&text).expect("deploy/iam-policy-readonly.json is JSON")
}

/// The RoleArns of the AssumeRole calls in the log.
fn assumed(log: &[(String, Value)]) -> BTreeSet<String> {
    log.iter()
        .filter(|(_, e)| e["operation"] == "AssumeRole")
        .map(|(_, e)| {
            e["params"]["RoleArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn the_read_only_policy_allows_every_call_of_a_read_only_plan_and_no_write() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(serde_json::json!({"rolloutSeconds": 0}));
    // The write policy's desired state: tags, detector changes and redeploys (one through
    // CodeDeploy) pending, one target reached through ROLE_ARN.
    let file = sb.write(
        "desired.yaml",
        &desired("enabled", "false", "absent", "absent"),
    );
    let config = file.to_str().unwrap();
    let read_only_plan = |config: &str| {
        let args = [
            &["plan", "--config", config, "--output", "markdown"][..],
            &["--read-only-role", READ_ONLY],
            &RAISED,
        ]
        .concat();
        let plan = sb.controller(&args);
        assert_eq!(plan.code, 2, "changes pending: {plan}");
        assert!(plan.stdout.starts_with("### "), "{plan}");
        assert!(plan.stdout.contains("! redeploy"), "{plan}");
    };
    let mut log = Vec::new();
    log.extend(calls_of(&sb, "plan", || read_only_plan(config)));
    // An apply (not counted) whose CodeDeploy redeploy of payments-web fails: the next
    // plan still wants the redeploy and reads that recent deployment
    // (BatchGetDeployments), as a plan does after any real redeploy.
    sb.knobs(serde_json::json!({"failCodeDeploy": ["payments-web"]}));
    let apply = sb.apply(config, "5m", &RAISED);
    assert_ne!(apply.code, 0, "{apply}");
    log.extend(calls_of(&sb, "plan after a redeploy", || {
        let args = [
            &["plan", "--config", config, "--output", "json"][..],
            &["--read-only-role", READ_ONLY],
            &RAISED,
        ]
        .concat();
        let plan = sb.controller(&args);
        assert!(plan.code == 2 || plan.code == 0, "{plan}");
    }));
    log.extend(calls_of(&sb, "status", || {
        let status = sb.controller(&[
            "status",
            "--config",
            config,
            "--read-only-role",
            READ_ONLY,
            "--output",
            "json",
        ]);
        assert_eq!(status.code, 0, "{status}");
    }));
    sb.reset();
    sb.seed(ORG_FLEET);
    let org = sb.write("organization.yaml", ORG_DESIRED);
    log.extend(calls_of(&sb, "organization", || {
        let plan = sb.controller(&[
            "plan",
            "--config",
            org.to_str().unwrap(),
            "--read-only-role",
            READ_ONLY,
        ]);
        assert_eq!(plan.code, 2, "changes pending: {plan}");
    }));

    // Every role assumed is the read-only one, never a role the file names.
    let roles = assumed(&log);
    let want: BTreeSet<String> = ["111111111111", "222222222222"]
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:role/{READ_ONLY}"))
        .collect();
    assert_eq!(roles, want, "AssumeRole calls");
    assert!(!roles.contains(ROLE_ARN));

    // (a) Every call is allowed by the read-only policy.
    let policy = policy();
    let (used, denied) = check_calls(&policy, &log);
    assert!(
        denied.is_empty(),
        "deploy/iam-policy-readonly.json does not allow these calls of a read-only plan:\n{}",
        denied.join("\n")
    );

    // (b) It grants no write, no wildcard, and nothing the flows do not use.
    let granted: Vec<String> = statements(&policy)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| one_or_many(&s["Action"]))
        .collect();
    let writes: Vec<&String> = granted
        .iter()
        .filter(|a| {
            let op = a.split(':').nth(1).unwrap_or_default().to_lowercase();
            a.contains(['*', '?'])
                || [
                    "tag", "untag", "update", "create", "put", "delete", "register", "start",
                    "stop", "run",
                ]
                .iter()
                .any(|w| op.starts_with(w))
        })
        .collect();
    assert!(writes.is_empty(), "the read-only policy grants {writes:?}");
    let unused: Vec<&String> = granted
        .iter()
        .filter(|a| !used.contains(&a.to_lowercase()))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/iam-policy-readonly.json grants actions no read-only flow uses: {unused:?} \
         (used: {used:?})"
    );
    // And the read-only flows called nothing but reads (and AssumeRole).
    let calls: BTreeSet<&str> = log
        .iter()
        .filter_map(|(_, e)| e["operation"].as_str())
        .collect();
    let reads = [
        "List",
        "Describe",
        "Get",
        "BatchGet",
        "Simulate",
        "AssumeRole",
    ];
    let others: Vec<&&str> = calls
        .iter()
        .filter(|op| !reads.iter().any(|r| op.starts_with(r)))
        .collect();
    assert!(others.is_empty(), "a read-only flow called {others:?}");
}

/// `GEC_READ_ONLY_ROLE` (as a CI job sets it) on a fleet whose target is reached through
/// a role: the AssumeRole names the read-only role of that account.
#[test]
fn plan_with_a_read_only_role_assumes_it_in_the_target_s_account() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write(
        "desired.yaml",
        &desired("enabled", "false", "absent", "absent"),
    );
    sb.clear_requests();
    let args = [&["plan", "--config", file.to_str().unwrap()][..], &RAISED].concat();
    let plan = run_controller(
        &args,
        &[
            ("AWS_ENDPOINT_URL", sb.url.as_str()),
            ("GEC_READ_ONLY_ROLE", "gec-readonly"),
        ],
    );
    assert_eq!(plan.code, 2, "{plan}");
    let log: Vec<(String, Value)> = sb
        .requests()
        .into_iter()
        .map(|e| (String::new(), e))
        .collect();
    assert_eq!(
        assumed(&log),
        BTreeSet::from(["arn:aws:iam::111111111111:role/gec-readonly".to_owned()])
    );
    // Both targets were planned: the one on the caller's credentials too.
    assert!(plan.stdout.contains("Target us-east-1"), "{plan}");
    assert!(plan.stdout.contains("eu-west-1"), "{plan}");
    // apply has no such flag: it writes with the roles the file names.
    let apply = run_controller(
        &["apply", "--config", "f", "--read-only-role", "gec-readonly"],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(apply.code, 1, "{apply}");
    assert!(apply.stderr.contains("unexpected argument"), "{apply}");
}
