//! End to end: the real binary against the sandbox, AWS state read back through the
//! sandbox's own API (never through the controller).

use std::collections::BTreeMap;

use crate::kit::{run_offline, Sandbox};
use serde_json::Value;

const SMALL_FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: payments-prod
        tags: {team: payments}
      - name: sandbox
      - name: scratch
        tags: {GuardDutyManaged: "true"}
      - name: bystander
        tags: {owner: someone, GuardDutyManaged: "True"}
"#;

const AUTOMATED: &str = r#"
version: 1
targets: [{region: us-east-1}]
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}
clusters:
  - {name: payments-prod, guardDutyManaged: true}
  - {name: sandbox, guardDutyManaged: false}
  - {name: scratch, guardDutyManaged: absent}
"#;

fn tags_of<'a>(
    all: &'a BTreeMap<String, BTreeMap<String, String>>,
    cluster: &str,
) -> &'a BTreeMap<String, String> {
    all.get(cluster)
        .unwrap_or_else(|| panic!("cluster {cluster} is missing"))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn plan_and_apply_exit_codes_follow_the_contract_and_aws_ends_as_declared() {
    let sb = Sandbox::start();
    sb.seed(SMALL_FLEET);
    let desired = sb.write("desired.yaml", AUTOMATED);
    let config = desired.to_str().unwrap();

    let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(plan.code, 2, "changes pending: {plan}");
    let json = plan.json();
    assert_eq!(json["changes"], 4, "{plan}");
    let kinds: Vec<&str> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "tag_cluster",
            "tag_cluster",
            "update_detector",
            "untag_cluster"
        ],
        "{plan}"
    );
    assert!(
        sb.writes().is_empty(),
        "plan must not write: {:?}",
        sb.writes()
    );

    let apply = sb.controller(&["apply", "--config", config]);
    assert_eq!(apply.code, 0, "converged: {apply}");

    let tags = sb.aws("us-east-1").await.cluster_tags().await;
    assert_eq!(
        tags_of(&tags, "payments-prod"),
        &map(&[("GuardDutyManaged", "true"), ("team", "payments")])
    );
    assert_eq!(
        tags_of(&tags, "sandbox"),
        &map(&[("GuardDutyManaged", "false")])
    );
    assert_eq!(tags_of(&tags, "scratch"), &map(&[]));
    assert_eq!(
        tags_of(&tags, "bystander"),
        &map(&[("GuardDutyManaged", "True"), ("owner", "someone")]),
        "a cluster no rule names is untouched"
    );
    let features = sb.aws("us-east-1").await.detector_features().await;
    let (status, extra) = &features["RUNTIME_MONITORING"];
    assert_eq!(status, "ENABLED");
    assert_eq!(extra["ECS_FARGATE_AGENT_MANAGEMENT"], "ENABLED");
    // Read-modify-write: the configurations the controller does not own are still there.
    assert_eq!(extra["EKS_ADDON_MANAGEMENT"], "DISABLED", "{features:?}");
    assert_eq!(extra["EC2_AGENT_MANAGEMENT"], "DISABLED", "{features:?}");

    let again = sb.controller(&["plan", "--config", config]);
    assert_eq!(again.code, 0, "no changes after apply: {again}");
    assert!(again.stdout.contains("No changes."), "{again}");

    sb.clear_requests();
    let idempotent = sb.controller(&["apply", "--config", config]);
    assert_eq!(idempotent.code, 0, "{idempotent}");
    assert!(
        sb.writes().is_empty(),
        "a converged apply writes nothing: {:?}",
        sb.writes()
    );
}

#[test]
fn plan_and_apply_exit_1_when_aws_cannot_be_reached() {
    let dir = tempfile::TempDir::new().unwrap();
    let desired = dir.path().join("desired.yaml");
    std::fs::write(&desired, AUTOMATED).unwrap();
    for command in ["plan", "apply"] {
        let run = run_offline(&[
            command,
            "--config",
            desired.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(run.code, 1, "{command}: {run}");
        let errors = run.json()["errors"].clone();
        assert_eq!(errors[0]["region"], "us-east-1", "{run}");
        assert_eq!(errors[0]["kind"], "transient", "{run}");
    }
}

#[tokio::test]
async fn exclusion_tags_are_written_before_automation_is_enabled() {
    let sb = Sandbox::start();
    sb.seed(SMALL_FLEET);
    let desired = sb.write("desired.yaml", AUTOMATED);
    let apply = sb.controller(&["apply", "--config", desired.to_str().unwrap()]);
    assert_eq!(apply.code, 0, "{apply}");

    let writes = sb.writes();
    let position = |pred: &dyn Fn(&Value) -> bool| writes.iter().position(pred);
    let exclusion = position(&|r| {
        r["operation"] == "TagResources" && r["params"]["Tags"]["GuardDutyManaged"] == "false"
    })
    .unwrap_or_else(|| panic!("no exclusion tag write in {writes:#?}"));
    let automation = position(&|r| {
        r["operation"] == "UpdateDetector"
            && r["params"]
                .to_string()
                .contains("ECS_FARGATE_AGENT_MANAGEMENT")
    })
    .unwrap_or_else(|| panic!("no UpdateDetector in {writes:#?}"));
    let untag = position(&|r| r["operation"] == "UntagResources").expect("an untag write");
    assert!(
        exclusion < automation,
        "exclusion tags must come first: {writes:#?}"
    );
    assert!(
        automation < untag,
        "tags are removed only after the detector change: {writes:#?}"
    );
    let seq = |i: usize| writes[i]["seq"].as_u64().unwrap();
    assert!(
        seq(exclusion) < seq(automation),
        "sandbox sequence numbers agree"
    );
}

#[tokio::test]
async fn a_plan_over_a_safety_limit_writes_nothing_and_names_the_limit() {
    let sb = Sandbox::start();
    sb.seed(
        r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "untagged-{i:02d}", count: 8}
      - {name: "covered-{i:02d}", count: 4, tags: {GuardDutyManaged: "true"}}
"#,
    );
    let before = sb.aws("us-east-1").await.cluster_tags().await;
    let too_many = sb.write(
        "too-many.yaml",
        r#"
version: 1
targets: [{region: us-east-1}]
clusters:
  - {match: {namePattern: "untagged-*"}, guardDutyManaged: true}
safety: {maxClusterChangesPerCycle: 5}
"#,
    );
    let too_much_loss = sb.write(
        "loss.yaml",
        r#"
version: 1
targets: [{region: us-east-1}]
clusters:
  - {name: covered-00, guardDutyManaged: absent}
  - {name: covered-01, guardDutyManaged: false}
safety: {maxCoverageLossFraction: 0.25}
"#,
    );
    for (file, limit) in [
        (&too_many, "maxClusterChangesPerCycle"),
        (&too_much_loss, "maxCoverageLossFraction"),
    ] {
        let config = file.to_str().unwrap();
        let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
        assert_eq!(plan.code, 1, "{plan}");
        assert_eq!(plan.json()["refused"]["limit"], limit, "{plan}");
        let apply = sb.controller(&["apply", "--config", config]);
        assert_eq!(apply.code, 1, "{apply}");
        assert!(
            apply.stderr.contains(limit),
            "the message names the limit: {apply}"
        );
        assert!(
            sb.writes().is_empty(),
            "refused plans write nothing: {:?}",
            sb.writes()
        );
        assert_eq!(sb.aws("us-east-1").await.cluster_tags().await, before);
    }

    let forced = sb.controller(&[
        "apply",
        "--config",
        too_many.to_str().unwrap(),
        "--allow-mass-change",
    ]);
    assert_eq!(
        forced.code, 0,
        "--allow-mass-change overrides the limit: {forced}"
    );
    let after = sb.aws("us-east-1").await.cluster_tags().await;
    assert!((0..8).all(|i| after[&format!("untagged-{i:02}")]
        .get("GuardDutyManaged")
        .map(String::as_str)
        == Some("true")));
}

#[tokio::test]
async fn suspend_reports_drift_and_writes_nothing() {
    let sb = Sandbox::start();
    sb.seed(SMALL_FLEET);
    let desired = sb.write("desired.yaml", &format!("{AUTOMATED}suspend: true\n"));
    let apply = sb.controller(&[
        "apply",
        "--config",
        desired.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(apply.code, 1, "{apply}");
    assert_eq!(apply.json()["suspended"], true, "{apply}");
    assert_eq!(apply.json()["changes"], 4, "{apply}");
    assert!(sb.writes().is_empty(), "{:?}", sb.writes());
}

/// What the multi-rule file below must do to a cluster, written out independently of
/// the controller's planner.
fn expected_managed_tag(
    region: &str,
    name: &str,
    seeded: &BTreeMap<String, String>,
) -> Option<String> {
    let current = seeded.get("GuardDutyManaged").cloned();
    if name == "web-000-prod" {
        return Some("false".into());
    }
    if name.ends_with("-prod")
        && seeded.get("team").map(String::as_str) == Some("data")
        && region == "eu-west-1"
    {
        return None; // rule 3: absent
    }
    if name.ends_with("-prod") {
        return Some("true".into());
    }
    if seeded.get("team").map(String::as_str) == Some("data") {
        return Some("false".into());
    }
    if name.starts_with("scratch-") {
        return None;
    }
    current // unmatched: ignore
}

#[tokio::test]
async fn a_250_cluster_fleet_in_two_regions_ends_exactly_as_a_multi_rule_file_declares() {
    let sb = Sandbox::start();
    let region_fleet = r#"
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "web-{i:03d}-prod", count: 40}
      - {name: "api-{i:03d}-prod", count: 20, tags: {team: data}}
      - {name: "etl-{i:03d}", count: 25, tags: {team: data, GuardDutyManaged: "true"}}
      - {name: "scratch-{i:03d}", count: 20, tags: {GuardDutyManaged: "true"}}
      - {name: "other-{i:03d}", count: 15, tags: {owner: x}}
      - {name: "legacy-{i:03d}", count: 10, tags: {GuardDutyManaged: "false", owner: y}}
"#;
    sb.seed(&format!(
        "regions:\n  us-east-1:{region_fleet}  eu-west-1:{region_fleet}"
    ));
    let desired = sb.write(
        "multi.yaml",
        r#"
version: 1
targets: [{region: us-east-1}, {region: eu-west-1}]
clusters:
  - match: {namePattern: "*-prod", tags: {team: data}, regions: [eu-west-1]}
    guardDutyManaged: absent
  - match: {namePattern: "*-prod"}
    guardDutyManaged: true
  - name: web-000-prod
    guardDutyManaged: false
  - match: {tags: {team: data}}
    guardDutyManaged: false
  - match: {namePattern: "scratch-*"}
    guardDutyManaged: absent
unmatchedClusters: ignore
"#,
    );
    let mut before = BTreeMap::new();
    for region in ["us-east-1", "eu-west-1"] {
        before.insert(region, sb.aws(region).await.cluster_tags().await);
    }
    let total: usize = before.values().map(BTreeMap::len).sum();
    assert_eq!(total, 260, "seeded fleet size");

    // Over 200 tag changes in one pass: the ceilings are raised where the controller runs.
    let apply = sb.controller(&[
        "apply",
        "--config",
        desired.to_str().unwrap(),
        "--max-cluster-changes-ceiling",
        "500",
        "--max-coverage-loss-ceiling",
        "1",
    ]);
    assert_eq!(apply.code, 0, "{apply}");

    let mut checked = 0;
    for (region, clusters) in &before {
        let after = sb.aws(region).await.cluster_tags().await;
        for (name, seeded) in clusters {
            let mut expected = seeded.clone();
            match expected_managed_tag(region, name, seeded) {
                Some(v) => expected.insert("GuardDutyManaged".into(), v),
                None => expected.remove("GuardDutyManaged"),
            };
            assert_eq!(after[name], expected, "{region}/{name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 260);
    // The first match rule wins over later ones, but an exact name beats them all, and
    // the unmatched clusters kept every tag they had.
    let east = sb.aws("us-east-1").await.cluster_tags().await;
    assert_eq!(east["web-000-prod"]["GuardDutyManaged"], "false");
    assert_eq!(
        east["api-000-prod"]["GuardDutyManaged"], "true",
        "the regions selector keeps rule 1 out of us-east-1"
    );
    let west = sb.aws("eu-west-1").await.cluster_tags().await;
    assert_eq!(
        west["api-000-prod"].get("GuardDutyManaged"),
        None,
        "rule 1 comes first in eu-west-1"
    );
    assert_eq!(
        east["legacy-000"],
        map(&[("GuardDutyManaged", "false"), ("owner", "y")])
    );
    let plan = sb.controller(&["plan", "--config", desired.to_str().unwrap()]);
    assert_eq!(plan.code, 0, "{plan}");
}

#[tokio::test]
async fn apply_exits_3_when_some_actions_failed_and_keeps_the_phase_order() {
    let sb = Sandbox::start();
    sb.seed(SMALL_FLEET);
    let desired = sb.write("desired.yaml", AUTOMATED);
    let config = desired.to_str().unwrap();

    // The detector update is denied: the tags of phase 1 land, phase 3 waits.
    sb.faults(serde_json::json!({"rules": [{"service": "guardduty", "operation": "UpdateDetector", "fault": "accessDenied"}]}));
    let apply = sb.controller(&["apply", "--config", config, "--output", "json"]);
    assert_eq!(apply.code, 3, "{apply}");
    let results = apply.json()["results"].clone();
    let result_of = |kind: &str| -> Vec<String> {
        results
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["result"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(result_of("tag_cluster"), ["success", "success"], "{apply}");
    assert_eq!(result_of("update_detector"), ["error"], "{apply}");
    assert_eq!(result_of("untag_cluster"), ["skipped"], "{apply}");
    let tags = sb.aws("us-east-1").await.cluster_tags().await;
    assert_eq!(tags["sandbox"]["GuardDutyManaged"], "false");
    assert_eq!(
        tags["scratch"]["GuardDutyManaged"], "true",
        "the untag phase did not run"
    );
    let features = sb.aws("us-east-1").await.detector_features().await;
    assert_eq!(
        features["RUNTIME_MONITORING"].1["ECS_FARGATE_AGENT_MANAGEMENT"],
        "DISABLED"
    );

    // One ARN of a tag batch fails: the others are applied, and the failed one is named.
    sb.faults(serde_json::json!({"rules": []}));
    let fresh = Sandbox::start();
    fresh.seed(SMALL_FLEET);
    let payments = fresh
        .aws("us-east-1")
        .await
        .cluster_arn("payments-prod")
        .await;
    fresh.faults(serde_json::json!({"rules": [{"service": "tagging", "operation": "TagResources", "fault": "failArns", "arns": [payments]}]}));
    let partial = fresh.controller(&["apply", "--config", config, "--output", "json"]);
    assert_eq!(partial.code, 3, "{partial}");
    let failed: Vec<Value> = partial.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "error")
        .cloned()
        .collect();
    assert_eq!(failed.len(), 1, "{partial}");
    assert_eq!(failed[0]["cluster"], "payments-prod");
    let tags = fresh.aws("us-east-1").await.cluster_tags().await;
    assert_eq!(
        tags["sandbox"]["GuardDutyManaged"], "false",
        "the rest of the batch landed"
    );
    assert_eq!(tags["payments-prod"].get("GuardDutyManaged"), None);

    // Once AWS heals, the next apply converges.
    fresh.faults(serde_json::json!({"rules": []}));
    let healed = fresh.controller(&["apply", "--config", config]);
    assert_eq!(healed.code, 0, "{healed}");
}
