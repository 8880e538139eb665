//! Limits the file cannot raise (issue 11): the real binary against a sandbox fleet in two
//! regions. A refused pass writes nothing in any region, read back through the sandbox's
//! own API; only a ceiling raised where the controller runs lets the change through.

use std::collections::BTreeMap;

use crate::kit::{run_controller, run_offline, Run, Sandbox};

type Tags = BTreeMap<String, BTreeMap<String, String>>;

/// Issue 11's untag-all file: every cluster loses its tag, and the file tries to lift
/// both limits out of the way.
const UNTAG_ALL: &str = r#"
version: 1
targets: [{region: us-east-1}, {region: eu-west-1}]
unmatchedClusters: absent
safety: {maxClusterChangesPerCycle: 4294967295, maxCoverageLossFraction: 1.0}
"#;

/// 60 clusters in us-east-1 and 30 in eu-west-1, every one tagged and covered (Runtime
/// Monitoring on, automation off: the tag is what covers them).
const TAGGED_FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "app-{i:02d}", count: 60, tags: {GuardDutyManaged: "true", team: apps}}
  eu-west-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "web-{i:02d}", count: 30, tags: {GuardDutyManaged: "true"}}
"#;

async fn fleet_tags(sb: &Sandbox) -> [Tags; 2] {
    [
        sb.aws("us-east-1").await.cluster_tags().await,
        sb.aws("eu-west-1").await.cluster_tags().await,
    ]
}

fn managed(tags: &Tags) -> Vec<Option<&str>> {
    tags.values()
        .map(|t| t.get("GuardDutyManaged").map(String::as_str))
        .collect()
}

/// The controller against `sb` with extra environment (the ceilings' `GEC_*` variables).
fn controller_with(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec![("AWS_ENDPOINT_URL", sb.url.as_str())];
    all.extend_from_slice(env);
    run_controller(args, &all)
}

/// Exit 1, "refused" on stderr, no write request reached the sandbox, and every tag of
/// both regions is what it was.
async fn assert_refused_and_untouched(sb: &Sandbox, run: &Run, limit: &str, before: &[Tags; 2]) {
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("refused") && run.stderr.contains(limit),
        "{run}"
    );
    assert!(
        sb.writes().is_empty(),
        "a refused pass writes nothing: {:#?}",
        sb.writes()
    );
    assert_eq!(&fleet_tags(sb).await, before, "every tag is still there");
}

#[tokio::test]
async fn the_untag_all_file_with_a_huge_limit_is_refused_until_the_ceilings_are_raised() {
    let sb = Sandbox::start();
    sb.seed(TAGGED_FLEET);
    let before = fleet_tags(&sb).await;
    assert_eq!((before[0].len(), before[1].len()), (60, 30), "seeded fleet");
    assert!(before.iter().flat_map(managed).all(|t| t == Some("true")));
    let file = sb.write("untag-all.yaml", UNTAG_ALL);
    let config = file.to_str().unwrap();

    let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(plan.code, 1, "{plan}");
    let json = plan.json();
    assert_eq!(
        json["refused"]["limit"], "maxClusterChangesPerCycle",
        "{plan}"
    );
    assert_eq!(
        json["refused"]["max"].as_f64(),
        Some(50.0),
        "clamped: {plan}"
    );
    assert!(
        json["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w.as_str().unwrap_or_default().contains("4294967295")),
        "the plan says the file's value was clamped: {plan}"
    );

    let apply = sb.controller(&["apply", "--config", config]);
    assert_refused_and_untouched(&sb, &apply, "maxClusterChangesPerCycle", &before).await;

    // The change ceiling raised: the coverage-loss limit (1.0 in the file, clamped to
    // 0.2) still refuses turning coverage off everywhere.
    let changes_only = sb.controller(&[
        "apply",
        "--config",
        config,
        "--max-cluster-changes-ceiling",
        "1000",
    ]);
    assert_refused_and_untouched(&sb, &changes_only, "maxCoverageLossFraction", &before).await;

    let raised = sb.controller(&[
        "apply",
        "--config",
        config,
        "--max-cluster-changes-ceiling",
        "1000",
        "--max-coverage-loss-ceiling",
        "1",
    ]);
    assert_eq!(raised.code, 0, "{raised}");
    let after = fleet_tags(&sb).await;
    assert!(
        after.iter().flat_map(managed).all(|t| t.is_none()),
        "every GuardDutyManaged tag is removed: {after:?}"
    );
    assert_eq!(after[0]["app-07"]["team"], "apps", "other tags stay");
}

#[tokio::test]
async fn a_mass_untag_refused_in_one_region_writes_nothing_in_the_other() {
    let sb = Sandbox::start();
    sb.seed(
        r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "old-{i:02d}", count: 60, tags: {GuardDutyManaged: "false"}}
  eu-west-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: payments-prod
      - name: sandbox
"#,
    );
    let before = fleet_tags(&sb).await;
    // us-east-1: 60 exclusion tags removed (over 50 on its own); eu-west-1: one tag.
    let file = sb.write(
        "desired.yaml",
        r#"
version: 1
targets: [{region: us-east-1}, {region: eu-west-1}]
clusters:
  - {match: {namePattern: "old-*", regions: [us-east-1]}, guardDutyManaged: absent}
  - {name: payments-prod, guardDutyManaged: true}
"#,
    );
    let config = file.to_str().unwrap();

    let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(plan.code, 1, "{plan}");
    let refused = &plan.json()["refused"];
    assert_eq!(
        (refused["scope"].as_str(), refused["region"].as_str()),
        (Some("target"), Some("us-east-1")),
        "{plan}"
    );
    let text = sb.controller(&["plan", "--config", config]);
    assert!(
        text.stdout
            .contains("REFUSED (fleet-wide, maxClusterChangesPerCycle)"),
        "eu-west-1's plan is held back with the fleet: {text}"
    );

    let apply = sb.controller(&["apply", "--config", config]);
    assert_refused_and_untouched(&sb, &apply, "maxClusterChangesPerCycle", &before).await;
    assert_eq!(before[1]["payments-prod"].get("GuardDutyManaged"), None);

    // The ceiling raised through the environment, where the controller is deployed.
    let raised = controller_with(
        &sb,
        &["apply", "--config", config],
        &[("GEC_MAX_CLUSTER_CHANGES_CEILING", "100")],
    );
    assert_eq!(raised.code, 0, "{raised}");
    let [east, west] = fleet_tags(&sb).await;
    assert!(managed(&east).iter().all(Option::is_none), "{east:?}");
    assert_eq!(
        west["payments-prod"]
            .get("GuardDutyManaged")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        west["sandbox"].get("GuardDutyManaged"),
        None,
        "no rule names it"
    );
}

#[test]
fn ceilings_out_of_range_are_usage_errors() {
    for (flag, value) in [
        ("--max-coverage-loss-ceiling", "1.5"),
        ("--max-coverage-loss-ceiling", "NaN"),
        ("--max-cluster-changes-ceiling", "-1"),
        ("--max-cluster-changes-ceiling", "1000001"),
    ] {
        let arg = format!("{flag}={value}");
        let run = run_offline(&["plan", "--config", "/nonexistent.yaml", &arg]);
        assert_eq!(run.code, 1, "a usage error (exit 1, never 2): {run}");
        assert!(run.stderr.contains(flag), "{run}");
    }
}
