//! Many accounts from one desired state: an `accounts` entry of 3 accounts x 2 regions is
//! applied through STS AssumeRole, every (account, region) converges, and an account
//! whose role cannot be assumed fails on its own while the others converge.

use std::collections::{BTreeMap, BTreeSet};

use crate::kit::aws::Aws;
use crate::kit::Sandbox;
use serde_json::{json, Value};

const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const ROLE: &str = "guardduty-ecs-controller";
const EXTERNAL_ID: &str = "gec-multi-account-test";

fn role_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{ROLE}")
}

/// Every account and region: a detector with Runtime Monitoring off, and three clusters.
fn fleet() -> String {
    let mut out = String::from("accounts:\n");
    for account in ACCOUNTS {
        out.push_str(&format!("  \"{account}\":\n    regions:\n"));
        for region in REGIONS {
            out.push_str(&format!(
                "      {region}:\n        detector: {{runtimeMonitoring: DISABLED, ecsFargateAgentManagement: DISABLED}}\n        clusters: [{{name: payments-prod}}, {{name: web-prod}}, {{name: batch-dev}}]\n"
            ));
        }
    }
    out
}

/// The first account names its role; the others get it from `roleName`.
fn desired() -> String {
    format!(
        r#"version: 1
targets:
  - regions: [{regions}]
    accounts:
      - {{id: "{a}", roleArn: "{a_role}"}}
      - {{id: "{b}"}}
      - {{id: "{c}"}}
    roleName: {ROLE}
    externalId: {EXTERNAL_ID}
detector:
  runtimeMonitoring: enabled
  ecsFargateAgentManagement: enabled
clusters:
  - match: {{namePattern: "*-dev"}}
    guardDutyManaged: false
  - match: {{namePattern: "*-prod"}}
    guardDutyManaged: true
reconcile: {{interval: 1h}}
"#,
        regions = REGIONS.join(", "),
        a = ACCOUNTS[0],
        a_role = role_arn(ACCOUNTS[0]),
        b = ACCOUNTS[1],
        c = ACCOUNTS[2],
    )
}

fn converged_tags() -> BTreeMap<String, Option<String>> {
    [
        ("batch-dev", Some("false")),
        ("payments-prod", Some("true")),
        ("web-prod", Some("true")),
    ]
    .into_iter()
    .map(|(c, t)| (c.to_owned(), t.map(str::to_owned)))
    .collect()
}

/// Asserts that `account` is converged (or untouched) in every region.
async fn assert_account(sb: &Sandbox, account: &str, converged: bool) {
    for region in REGIONS {
        let aws = Aws::new(&sb.sdk_in(account, region).await);
        let (tags, detector) = if converged {
            (
                converged_tags(),
                ("ENABLED".to_owned(), "ENABLED".to_owned()),
            )
        } else {
            (
                converged_tags().into_keys().map(|c| (c, None)).collect(),
                ("DISABLED".to_owned(), "DISABLED".to_owned()),
            )
        };
        assert_eq!(
            aws.managed_tags().await,
            tags,
            "{account}/{region} cluster tags"
        );
        assert_eq!(
            aws.runtime_monitoring().await,
            detector,
            "{account}/{region} detector"
        );
    }
}

/// The controller's AssumeRole requests: (RoleArn, ExternalId, signing region).
fn controller_assume_roles(log: &[Value]) -> Vec<(String, String, String)> {
    log.iter()
        .filter(|r| r["operation"] == "AssumeRole")
        .filter(|r| {
            r["params"]["RoleArn"]
                .as_str()
                .is_some_and(|a| a.ends_with(ROLE))
        })
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                s(&r["params"]["RoleArn"]),
                s(&r["params"]["ExternalId"]),
                s(&r["region"]),
            )
        })
        .collect()
}

/// The (account, region) pairs a list of plan actions or errors speaks of.
fn pairs(items: &Value, account_of: impl Fn(&Value) -> String) -> BTreeSet<(String, String)> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("a list: {items}"))
        .iter()
        .map(|i| {
            (
                account_of(i),
                i["region"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn all_pairs(accounts: &[&str]) -> BTreeSet<(String, String)> {
    accounts
        .iter()
        .flat_map(|a| REGIONS.map(|r| ((*a).to_owned(), r.to_owned())))
        .collect()
}

#[tokio::test]
async fn apply_converges_every_account_and_region_of_an_accounts_entry() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    let file = sb.write("desired.yaml", &desired());
    let config = file.to_str().unwrap();

    let run = sb.controller(&["apply", "--config", config, "--output", "json"]);
    assert_eq!(run.code, 0, "apply converges: {run}");
    let log = sb.requests();
    let out = run.json();
    assert_eq!(out["errors"], json!([]), "{run}");
    let account = |a: &Value| a["account"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        pairs(&out["actions"], account),
        all_pairs(&ACCOUNTS),
        "every (account, region) had changes planned: {run}"
    );
    for account in ACCOUNTS {
        assert_account(&sb, account, true).await;
    }

    // One AssumeRole per target (its credentials are cached for all its calls), of the
    // role its account entry names or `roleName` builds, with the entry's externalId, in
    // the target's region.
    let mut assumed = controller_assume_roles(&log);
    assumed.sort();
    let mut want: Vec<(String, String, String)> = ACCOUNTS
        .iter()
        .flat_map(|a| REGIONS.map(|r| (role_arn(a), EXTERNAL_ID.to_owned(), r.to_owned())))
        .collect();
    want.sort();
    assert_eq!(assumed, want);
    // Each account's ECS and GuardDuty calls ran in that account.
    assert_eq!(
        acted_in(&log),
        all_pairs(&ACCOUNTS),
        "ECS, GuardDuty and tagging calls in each target's account and region, none in the controller's own"
    );

    // GuardDuty has no coverage to list while Runtime Monitoring is off, and apply reads
    // nothing again after its writes (their answers are the check): no target lists
    // coverage in this run; the next pass will.
    for (account, region) in all_pairs(&ACCOUNTS) {
        let in_target: Vec<&str> = log
            .iter()
            .filter(|r| r["account"] == account.as_str() && r["region"] == region.as_str())
            .filter_map(|r| r["operation"].as_str())
            .filter(|op| matches!(*op, "UpdateDetector" | "ListCoverage"))
            .collect();
        assert_eq!(in_target, ["UpdateDetector"], "{account}/{region}");
    }

    // Converged: a plan across all six targets finds nothing, two targets at a time.
    let plan = sb.controller(&[
        "plan",
        "--config",
        config,
        "--output",
        "json",
        "--max-concurrent-targets",
        "2",
    ]);
    assert_eq!(plan.code, 0, "nothing left to do: {plan}");
    assert_eq!(plan.json()["changes"], 0, "{plan}");
}

#[tokio::test]
async fn an_account_whose_role_cannot_be_assumed_fails_alone_and_the_others_converge() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    let file = sb.write("desired.yaml", &desired());
    let config = file.to_str().unwrap();
    let down = ACCOUNTS[2];
    sb.faults(json!({"rules": [{
        "service": "sts", "operation": "AssumeRole",
        "params": {"RoleArn": role_arn(down)}, "fault": "accessDenied",
    }]}));
    let error_target = |e: &Value| {
        e["target"]
            .as_str()
            .and_then(|t| t.split_once('/'))
            .map(|(account, _)| account.to_owned())
            .unwrap_or_default()
    };
    let account = |a: &Value| a["account"].as_str().unwrap_or_default().to_owned();
    // What the errors of the failed account's targets must say. AssumeRole fails inside
    // the SDK's credentials provider, before the ECS request is sent: the SDK reports a
    // dispatch failure of the ECS call, and crates/aws/src/error.rs finds STS's
    // AccessDenied in its source chain.
    let check_errors = |errors: &Value, what: &str| {
        assert_eq!(
            pairs(errors, error_target),
            all_pairs(&[down]),
            "{what}: exactly the failed account's targets, both regions: {errors}"
        );
        for e in errors.as_array().unwrap() {
            assert_eq!(e["kind"], "access_denied", "{what}: {e}");
            let message = e["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("credentials"),
                "{what}: the message says the credentials failed: {e}"
            );
        }
    };

    let plan = sb.controller(&[
        "plan",
        "--config",
        config,
        "--output",
        "json",
        "--max-concurrent-targets",
        "2",
    ]);
    assert_eq!(
        plan.code, 1,
        "a failed target makes the plan an error: {plan}"
    );
    let out = plan.json();
    check_errors(&out["errors"], "plan");
    assert_eq!(
        pairs(&out["actions"], account),
        all_pairs(&ACCOUNTS[..2]),
        "the other targets are planned: {plan}"
    );
    assert!(sb.writes().is_empty(), "plan writes nothing");

    let run = sb.controller(&["apply", "--config", config, "--output", "json"]);
    assert_eq!(run.code, 1, "apply with a failed target exits 1: {run}");
    check_errors(&run.json()["errors"], "apply");
    assert_eq!(
        acted_in(&sb.requests()),
        all_pairs(&ACCOUNTS[..2]),
        "no call reached the failed account"
    );
    let denied = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "AssumeRole" && r.get("fault").is_some())
        .count();
    assert!(
        denied >= 4,
        "each failed target tried its role (plan and apply): {denied}"
    );
    for account in &ACCOUNTS[..2] {
        assert_account(&sb, account, true).await;
    }
    assert_account(&sb, down, false).await;
}

/// The (account, region) pairs the logged ECS, GuardDuty and tagging requests acted in.
fn acted_in(log: &[Value]) -> BTreeSet<(String, String)> {
    log.iter()
        .filter(|r| ["ecs", "guardduty", "tagging"].contains(&r["service"].as_str().unwrap_or("")))
        .map(|r| {
            (
                r["account"].as_str().unwrap_or_default().to_owned(),
                r["region"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
