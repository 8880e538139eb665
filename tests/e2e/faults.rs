//! End to end under injected faults: convergence with a flaky AWS, and crash safety when
//! the controller is killed at random points of an apply.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::kit::daemon::Daemon;
use crate::kit::{hermetic_env, Sandbox};
use serde_json::{json, Value};

/// These fleets change in one pass more than the default ceilings allow: the ceilings are
/// raised where the controller runs (the desired-state file cannot raise them).
const CEILINGS: [&str; 4] = [
    "--max-cluster-changes-ceiling",
    "500",
    "--max-coverage-loss-ceiling",
    "1",
];

const FLAKY_FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate:
      - {name: "app-{i:02d}-prod", count: 30}
      - {name: "tmp-{i:02d}", count: 20, tags: {GuardDutyManaged: "true"}}
      - {name: "other-{i:02d}", count: 10, tags: {owner: someone, GuardDutyManaged: "True"}}
"#;

const FLAKY_DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}
clusters:
  - {name: app-00-prod, guardDutyManaged: false}
  - {match: {namePattern: "*-prod"}, guardDutyManaged: true}
  - {match: {namePattern: "tmp-*"}, guardDutyManaged: absent}
reconcile: {interval: 1h}
"#;

fn expected_tag(name: &str) -> Option<&'static str> {
    match name {
        "app-00-prod" => Some("false"),
        n if n.ends_with("-prod") => Some("true"),
        n if n.starts_with("tmp-") => None,
        _ => Some("True"), // other-*: no rule, untouched
    }
}

fn passes_counted(d: &Daemon) -> f64 {
    ["success", "error", "refused"]
        .iter()
        .map(|r| {
            d.metric(&format!(
                r#"guardduty_controller_reconcile_total{{result="{r}"}}"#
            ))
        })
        .sum()
}

#[tokio::test]
async fn with_30_percent_of_requests_failing_the_daemon_converges_within_5_passes() {
    let sb = Sandbox::start();
    sb.seed(FLAKY_FLEET);
    let file = sb.write("desired.yaml", FLAKY_DESIRED);
    // Each rule draws on its own: about 1 - 0.88^3 = 32 % of the controller's requests to
    // ECS, GuardDuty and the tagging API fail, by throttling, a 503, or a delay longer than
    // the attempt timeout.
    let mut rules = Vec::new();
    for service in ["ecs", "guardduty", "tagging"] {
        rules.push(json!({"service": service, "fault": "throttle", "fraction": 0.12}));
        rules.push(json!({"service": service, "fault": "http503", "fraction": 0.12}));
        rules.push(
            json!({"service": service, "fault": "delay", "delaySeconds": 1.5, "fraction": 0.12}),
        );
    }
    sb.faults(json!({"seed": 7, "rules": rules}));

    let daemon = Daemon::start(
        &sb,
        &file,
        &[&["--aws-attempt-timeout", "1s"][..], &CEILINGS].concat(),
    );
    let drift = |d: &Daemon| -> f64 {
        ["tag", "detector"]
            .iter()
            .map(|k| {
                d.metric(&format!(
                    r#"guardduty_controller_drift{{kind="{k}",target="us-east-1"}}"#
                ))
            })
            .sum()
    };
    let mut converged_after = None;
    for pass in 1..=5 {
        if pass > 1 {
            daemon.signal("HUP");
        }
        assert!(
            daemon.wait_for(Duration::from_secs(120), |d| passes_counted(d)
                >= pass as f64),
            "pass {pass} did not finish: {}",
            daemon.logs()
        );
        let success = daemon.metric(r#"guardduty_controller_reconcile_total{result="success"}"#);
        if success >= 1.0 && drift(&daemon) == 0.0 {
            converged_after = Some(pass);
            break;
        }
    }
    let throttled = daemon.metric_sum(
        "guardduty_controller_aws_requests_total",
        r#"outcome="throttled""#,
    );
    let failed = daemon.metric_sum(
        "guardduty_controller_aws_requests_total",
        r#"outcome="error""#,
    );
    sb.faults(json!({"rules": []}));
    let converged_after =
        converged_after.unwrap_or_else(|| panic!("no convergence in 5 passes: {}", daemon.logs()));
    println!("converged after {converged_after} passes; throttled requests {throttled}, failed requests {failed}");
    assert!(
        throttled > 0.0 && failed > 0.0,
        "metrics count throttled ({throttled}) and failed ({failed}) requests"
    );

    let tags = sb.aws("us-east-1").await.cluster_tags().await;
    assert_eq!(tags.len(), 60);
    for (name, t) in &tags {
        assert_eq!(
            t.get("GuardDutyManaged").map(String::as_str),
            expected_tag(name),
            "{name}"
        );
    }
    let features = sb.aws("us-east-1").await.detector_features().await;
    assert_eq!(
        features["RUNTIME_MONITORING"].1["ECS_FARGATE_AGENT_MANAGEMENT"],
        "ENABLED"
    );
    for write in sb.writes() {
        let arns = write["params"]["ResourceARNList"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            arns.iter()
                .all(|a| !a.as_str().unwrap_or_default().contains("/other-")),
            "a cluster outside the rules was written: {write}"
        );
    }
}

/// Replays the request log and checks the one ordering rule that matters: whenever a
/// successful UpdateDetector turned automation on, every cluster the desired state marks
/// `false` already carried the exclusion tag.
fn assert_exclusions_precede_automation(
    log: &[Value],
    excluded: &BTreeSet<String>,
    iteration: usize,
) {
    let mut tagged_false: BTreeSet<String> = BTreeSet::new();
    for entry in log {
        if entry["status"] != 200 {
            continue;
        }
        let params = &entry["params"];
        match entry["operation"].as_str().unwrap_or_default() {
            "TagResources" | "UntagResources" => {
                let arns = params["ResourceARNList"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let sets_false = entry["operation"] == "TagResources"
                    && params["Tags"]["GuardDutyManaged"] == "false";
                for arn in arns.iter().filter_map(Value::as_str) {
                    if sets_false {
                        tagged_false.insert(arn.to_owned());
                    } else {
                        tagged_false.remove(arn);
                    }
                }
            }
            "UpdateDetector" => {
                let turns_on = params["features"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| {
                        f["additionalConfiguration"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|a| {
                                a["name"] == "ECS_FARGATE_AGENT_MANAGEMENT"
                                    && a["status"] == "ENABLED"
                            })
                    });
                if turns_on {
                    let missing: Vec<&String> = excluded.difference(&tagged_false).collect();
                    assert!(
                        missing.is_empty(),
                        "kill {iteration}: automation turned on while {} excluded clusters lacked the tag, e.g. {:?}",
                        missing.len(),
                        missing.first()
                    );
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn killing_an_apply_that_tags_200_clusters_at_20_points_never_lets_automation_come_first() {
    let sb = Sandbox::start();
    let fleet = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    generate: [{name: "svc-{i:03d}", count: 200}]
"#;
    let desired = sb.write(
        "desired.yaml",
        r#"
version: 1
targets: [{region: us-east-1}]
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}
clusters:
  - {match: {namePattern: "svc-0[0-3]?"}, guardDutyManaged: false}
  - {match: {namePattern: "svc-*"}, guardDutyManaged: true}
"#,
    );
    let config = desired.to_str().unwrap().to_owned();
    // A deterministic spread of kill points over the apply (which takes about 1.5 s with
    // the write delays below), from "before any write" to "after the detector change".
    let mut rng_state: u64 = 0x9e3779b97f4a7c15;
    let mut kills = Vec::new();
    for i in 0..20u64 {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        kills.push(Duration::from_millis(i * 90 + rng_state % 90));
    }
    let mut interrupted = 0;
    for (iteration, kill_after) in kills.into_iter().enumerate() {
        sb.reset();
        let seeded = sb.seed(fleet);
        assert_eq!(
            seeded["accounts"]["123456789012"]["us-east-1"]["clusters"], 200,
            "{seeded}"
        );
        let arns = sb.aws("us-east-1").await.cluster_arns().await;
        let excluded: BTreeSet<String> = (0..40)
            .map(|i| arns[&format!("svc-{i:03}")].clone())
            .collect();
        sb.clear_requests();
        sb.faults(json!({"rules": [
            {"service": "tagging", "operation": "TagResources", "fault": "delay", "delaySeconds": 0.25},
            {"service": "guardduty", "operation": "UpdateDetector", "fault": "delay", "delaySeconds": 0.25},
        ]}));

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
        cmd.args(["apply", "--config", &config])
            .args(CEILINGS)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        hermetic_env(&mut cmd, &[("AWS_ENDPOINT_URL", sb.url.as_str())]);
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(kill_after);
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        sb.faults(json!({"rules": []}));
        // Requests the killed process had sent finish on the server; let them land.
        std::thread::sleep(Duration::from_millis(400));
        let fresh = sb.controller(&[&["apply", "--config", &config][..], &CEILINGS].concat());
        assert_eq!(
            fresh.code, 0,
            "kill {iteration} after {kill_after:?}: a fresh apply converges: {fresh}"
        );
        assert_exclusions_precede_automation(&sb.requests(), &excluded, iteration);
        let tags = sb.aws("us-east-1").await.cluster_tags().await;
        for (name, t) in &tags {
            let n: usize = name[4..].parse().unwrap();
            let want = if n < 40 { Some("false") } else { Some("true") };
            assert_eq!(
                t.get("GuardDutyManaged").map(String::as_str),
                want,
                "kill {iteration}: {name}"
            );
        }
    }
    println!("{interrupted} of 20 applies were killed mid-way");
    assert!(
        interrupted >= 10,
        "most kills must land during the apply, not after it ({interrupted})"
    );
}

#[tokio::test]
async fn a_failed_detector_update_in_one_region_does_not_hold_back_another() {
    let sb = Sandbox::start();
    let region = "    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}\n    clusters: [{name: excluded}, {name: other}]\n";
    sb.seed(&format!(
        "regions:\n  us-east-1:\n{region}  eu-west-1:\n{region}"
    ));
    sb.faults(json!({"rules": [{"region": "eu-west-1", "service": "guardduty", "operation": "UpdateDetector", "fault": "accessDenied"}]}));
    let desired = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: eu-west-1}, {region: us-east-1}]\ndetector: {ecsFargateAgentManagement: enabled}\nclusters: [{name: excluded, guardDutyManaged: false}]\n",
    );
    let apply = sb.controller(&["apply", "--config", desired.to_str().unwrap()]);
    assert_eq!(apply.code, 3, "{apply}");
    for region in ["eu-west-1", "us-east-1"] {
        let tags = sb.aws(region).await.cluster_tags().await;
        assert_eq!(
            tags["excluded"]["GuardDutyManaged"], "false",
            "{region}: phase 1 ran in both regions"
        );
    }
    let automation = |f: &BTreeMap<String, (String, BTreeMap<String, String>)>| {
        f["RUNTIME_MONITORING"].1["ECS_FARGATE_AGENT_MANAGEMENT"].clone()
    };
    assert_eq!(
        automation(&sb.aws("us-east-1").await.detector_features().await),
        "ENABLED",
        "the healthy region converged"
    );
    assert_eq!(
        automation(&sb.aws("eu-west-1").await.detector_features().await),
        "DISABLED",
        "the denied update changed nothing"
    );
}
