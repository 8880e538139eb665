//! The rollout engine end to end: the real binary against the sandbox, which starts tasks
//! for services, injects the GuardDuty agent into new tasks of covered clusters, rolls
//! deployments on a timer and computes ListCoverage. Everything is checked by reading the
//! sandbox through the SDK, never through the controller's own report.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kit::aws::Task;
use crate::kit::daemon::Daemon;
use crate::kit::Sandbox;
use serde_json::{json, Value};

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
      - name: batch
      - name: bystander
    services:
      - {name: web, cluster: apps, desiredCount: 2}
      - {name: api, cluster: apps, desiredCount: 3}
      - {name: worker, cluster: apps, desiredCount: 1}
      - {name: legacy, cluster: batch, desiredCount: 1, launchType: EC2}
      - {name: other, cluster: bystander, desiredCount: 1}
    standaloneTasks:
      - {cluster: batch, count: 2}
"#;

const DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
clusters:
  - {name: apps, guardDutyManaged: true}
  - {name: batch, guardDutyManaged: true}
redeploy: {settleTime: 0s, maxConcurrent: 2, waitForSteadyState: true}
"#;

const REGION: &str = "us-east-1";

/// `apply` with 1 s rollout polls and the given timeout, JSON output when asked.
fn apply(sb: &Sandbox, config: &str, timeout: &str, json: bool) -> crate::kit::Run {
    let extra: &[&str] = if json { &["--output", "json"] } else { &[] };
    sb.apply(config, timeout, extra)
}

fn count(sb: &Sandbox, operation: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r["operation"] == operation)
        .count()
}

/// Every RUNNING task of a cluster, read through the SDK.
async fn running_tasks(sb: &Sandbox, cluster: &str) -> Vec<Task> {
    sb.aws(REGION).await.running_tasks(cluster).await
}

/// GuardDuty's coverage status of a cluster (ListCoverage filtered by cluster name).
async fn coverage_status(sb: &Sandbox, cluster: &str) -> Option<(String, Option<String>)> {
    sb.aws(REGION).await.coverage(cluster).await
}

fn row<'a>(status: &'a Value, cluster: &str) -> &'a Value {
    status["clusters"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["cluster"] == cluster))
        .unwrap_or_else(|| panic!("no row for {cluster} in {status:#}"))
}

#[tokio::test]
async fn apply_redeploys_the_services_of_a_newly_covered_cluster_until_every_task_runs_the_agent() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    let desired = sb.write("desired.yaml", DESIRED);
    let config = desired.to_str().unwrap();
    let standalone_before: Vec<Task> = running_tasks(&sb, "batch")
        .await
        .into_iter()
        .filter(|t| !t.group.starts_with("service:"))
        .collect();
    assert_eq!(standalone_before.len(), 2);
    let bystander_before = running_tasks(&sb, "bystander").await;

    // Before: the status table shows what is about to change.
    let before = sb.controller(&["status", "--config", config, "--output", "json"]);
    assert_eq!(before.code, 0, "{before}");
    let before = before.json();
    let apps = row(&before, "apps");
    assert_eq!(apps["coverage"], "expected");
    assert_eq!(apps["servicesWithoutAgent"], 3);
    assert_eq!(apps["uncoveredTasks"], 6);
    assert_eq!(row(&before, "batch")["standaloneTasksWithoutAgent"], 2);
    assert!(
        before["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cluster"] != "bystander"),
        "every rule is an exact name: other clusters are not even described"
    );
    let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(plan.code, 2, "{plan}");
    let kinds: Vec<(String, String)> = plan.json()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["service"]
                    .as_str()
                    .or(a["cluster"].as_str())
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("tag_cluster".into(), "apps".into()),
            ("tag_cluster".into(), "batch".into()),
            ("redeploy_service".into(), "api".into()),
            ("redeploy_service".into(), "web".into()),
            ("redeploy_service".into(), "worker".into()),
        ],
        "the EC2 service and standalone tasks are never planned"
    );

    sb.clear_requests();
    let applied = apply(&sb, config, "2m", true);
    assert_eq!(applied.code, 0, "{applied}");

    // Each Fargate service of the managed clusters was redeployed exactly once.
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1), ("web".into(), 1), ("worker".into(), 1)])
    );
    // Every RUNNING task of `apps` runs the agent, and GuardDuty says so.
    let apps_tasks = running_tasks(&sb, "apps").await;
    assert_eq!(apps_tasks.len(), 6);
    assert!(apps_tasks.iter().all(|t| t.agent), "{apps_tasks:#?}");
    assert_eq!(
        coverage_status(&sb, "apps").await,
        Some(("HEALTHY".to_owned(), None))
    );
    // Standalone tasks were not stopped, and they keep the cluster UNHEALTHY in GuardDuty.
    let standalone_after: Vec<Task> = running_tasks(&sb, "batch")
        .await
        .into_iter()
        .filter(|t| !t.group.starts_with("service:"))
        .collect();
    assert_eq!(standalone_after, standalone_before);
    assert_eq!(
        count(&sb, "StopTask"),
        0,
        "the controller never stops a task"
    );
    let (status, issue) = coverage_status(&sb, "batch")
        .await
        .expect("batch is covered");
    assert_eq!(status, "UNHEALTHY");
    assert!(issue.is_some());
    assert_eq!(running_tasks(&sb, "bystander").await, bystander_before);

    // After: status reads the same facts.
    let after = sb.controller(&["status", "--config", config, "--output", "json"]);
    assert_eq!(after.code, 0, "{after}");
    let after = after.json();
    let apps = row(&after, "apps");
    assert_eq!(
        (
            &apps["coverage"],
            &apps["coverageStatus"],
            &apps["uncoveredTasks"],
            &apps["runningTasks"]
        ),
        (&json!("covered"), &json!("HEALTHY"), &json!(0), &json!(6))
    );
    let batch = row(&after, "batch");
    assert_eq!(batch["coverageStatus"], "UNHEALTHY");
    assert_eq!(batch["standaloneTasksWithoutAgent"], 2);
    assert_eq!(
        batch["servicesWithoutAgent"], 0,
        "EC2 tasks are not counted"
    );
    let text = sb.controller(&["status", "--config", config]);
    assert_eq!(text.code, 0, "{text}");
    let apps_line = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("apps "))
        .unwrap_or_else(|| panic!("no apps row:\n{}", text.stdout));
    let cells: Vec<&str> = apps_line.split_whitespace().collect();
    assert_eq!(
        cells,
        ["apps", "true", "true", "covered", "HEALTHY", "6", "0", "0", "0"]
    );
    assert!(text.stdout.contains("issue: "), "{}", text.stdout);

    // Converged: a second apply does nothing.
    sb.clear_requests();
    let again = sb.controller(&["apply", "--config", config]);
    assert_eq!(again.code, 0, "{again}");
    assert_eq!(count(&sb, "UpdateService"), 0);
}

#[tokio::test]
async fn a_controller_killed_mid_wave_does_not_redeploy_any_service_twice() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 3}));
    let desired = sb.write(
        "desired.yaml",
        // retryAfter 10s: after the restart the controller cannot tell a deployment made
        // before coverage from one made after it, so the seeded deployments wait 10s.
        &(DESIRED.replace("maxConcurrent: 2", "maxConcurrent: 1, retryAfter: 10s")
            + "reconcile: {interval: 10s}\n"),
    );
    let mut first = Daemon::start(&sb, &desired, &["--rollout-poll", "1s"]);
    assert!(
        first.wait_for(Duration::from_secs(30), |_| count(&sb, "UpdateService")
            >= 1),
        "the first redeploy starts"
    );
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    assert_eq!(
        count(&sb, "UpdateService"),
        1,
        "killed while the first rollout rolls"
    );

    let second = Daemon::start(&sb, &desired, &["--rollout-poll", "1s"]);
    let converged = second.wait_for(Duration::from_secs(60), |d| {
        sb.update_service_calls().len() == 3
            && d.metric("guardduty_controller_redeploys_in_progress") == 0.0
    });
    assert!(
        converged,
        "all three redeployed: {:?}\n{}",
        sb.update_service_calls(),
        second.logs()
    );
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1), ("web".into(), 1), ("worker".into(), 1)]),
        "no service redeployed twice across the restart"
    );
    let tasks = running_tasks(&sb, "apps").await;
    assert!(tasks.iter().all(|t| t.agent), "{tasks:#?}");
}

#[tokio::test]
async fn a_steady_state_pass_describes_no_task_it_has_already_seen() {
    let sb = Sandbox::start();
    let mut services = String::new();
    for i in 0..50 {
        services.push_str(&format!(
            "      - {{name: svc-{i:02}, cluster: apps, desiredCount: 4}}\n"
        ));
    }
    sb.seed(&format!(
        "regions:\n  us-east-1:\n    detector: {{runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}}\n    clusters:\n      - name: apps\n        tags: {{GuardDutyManaged: \"true\"}}\n    services:\n{services}"
    ));
    let desired = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters: [{name: apps, guardDutyManaged: true}]\nreconcile: {interval: 1h}\n",
    );
    sb.clear_requests();
    let daemon = Daemon::start(&sb, &desired, &["--dry-run"]);
    let passes = |d: &Daemon| d.metric_sum("guardduty_controller_reconcile_total", "");
    assert!(daemon.wait_for(Duration::from_secs(30), |d| passes(d) >= 1.0));
    let first_pass_describes = count(&sb, "DescribeTasks");
    assert_eq!(
        first_pass_describes, 2,
        "200 tasks: two DescribeTasks of 100 on the first pass"
    );
    sb.clear_requests();
    for _ in 0..3 {
        // SIGHUP: one more pass now.
        let seen = passes(&daemon);
        daemon.signal("HUP");
        assert!(daemon.wait_for(Duration::from_secs(30), |d| passes(d) > seen));
    }
    let describe_tasks = count(&sb, "DescribeTasks");
    let list_tasks = count(&sb, "ListTasks");
    assert!(
        list_tasks >= 3 * 2,
        "tasks are still listed every pass ({list_tasks})"
    );
    assert_eq!(
        describe_tasks, 0,
        "steady state over 50 services x 4 tasks: no DescribeTasks for tasks already seen"
    );
}

#[tokio::test]
async fn a_failed_rollout_stops_the_wave_and_apply_says_so() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    // `api` sorts first and its rollout ends FAILED (the circuit breaker).
    sb.knobs(json!({"failRollout": ["api"]}));
    let desired = sb.write(
        "desired.yaml",
        &DESIRED.replace(
            "maxConcurrent: 2",
            "maxConcurrent: 1, stopOnFailure: true, retryAfter: 0s",
        ),
    );
    let config = desired.to_str().unwrap();
    let applied = apply(&sb, config, "1m", true);
    assert_eq!(
        applied.code, 3,
        "a FAILED rollout is a failed action: {applied}"
    );
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1)]),
        "nothing is redeployed after the FAILED rollout"
    );
    let out = applied.json();
    assert_eq!(
        out["rollouts"],
        json!([{"cluster": "apps", "service": "api", "state": "FAILED", "status": "FAILED"}])
    );
    // A second apply sees the FAILED deployment in AWS and stays halted.
    let again = apply(&sb, config, "1m", false);
    assert_eq!(again.code, 3, "{again}");
    assert!(again.stdout.contains("halted"), "{again}");
    assert_eq!(sb.update_service_calls().len(), 1);
    // `status` derives the halt from AWS too, and says which deployment.
    let status = sb.controller(&["status", "--config", config, "--output", "json"]);
    assert_eq!(status.code, 0, "{status}");
    assert_eq!(status.json()["halted"]["service"], "api", "{status}");
    let text = sb.controller(&["status", "--config", config]);
    assert!(
        text.stdout
            .contains("REDEPLOYS HALTED (stopOnFailure): apps/api: deployment "),
        "{text}"
    );
}

#[tokio::test]
async fn retry_after_keeps_a_service_whose_new_tasks_lack_the_agent_from_a_redeploy_storm() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    // `worker`'s new tasks come up without the agent (no ECR pull permission).
    sb.knobs(json!({"agentMissing": ["worker"]}));
    let desired = sb.write(
        "desired.yaml",
        &DESIRED.replace("settleTime: 0s", "settleTime: 0s, retryAfter: 1h"),
    );
    let config = desired.to_str().unwrap();
    let applied = apply(&sb, config, "1m", false);
    assert_eq!(applied.code, 0, "{applied}");
    // Its PRIMARY deployment (the redeploy) brought tasks whose agent STOPPED: held
    // `agent_failed` with AWS's reason, for good, not only until retryAfter.
    for _ in 0..3 {
        let again = apply(&sb, config, "1m", false);
        assert_eq!(again.code, 0, "{again}");
        assert!(
            again.stdout.contains("held: apps/worker: agent_failed: ")
                && again.stdout.contains("CannotPullContainerError"),
            "the held service is reported with its code and AWS's reason: {again}"
        );
    }
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1), ("web".into(), 1), ("worker".into(), 1)]),
        "worker was redeployed once, not on every apply"
    );
    let worker_tasks: Vec<Task> = running_tasks(&sb, "apps")
        .await
        .into_iter()
        .filter(|t| t.group == "service:worker")
        .collect();
    assert!(
        worker_tasks.iter().all(|t| !t.agent),
        "the knob held: {worker_tasks:?}"
    );
}

/// A target that cannot be reached does not cut the wait short for the rollouts of the
/// others: `apply` still rolls every service of the healthy region one at a time, reports
/// each settled rollout, and exits 1 naming the unreachable region.
#[tokio::test]
async fn apply_keeps_waiting_for_the_healthy_targets_rollouts_when_another_target_is_down() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    sb.faults(json!({"rules": [{"region": "eu-west-1", "fault": "reset"}]}));
    let desired = sb.write(
        "desired.yaml",
        &DESIRED
            .replace(
                "targets: [{region: us-east-1}]",
                "targets: [{region: us-east-1}, {region: eu-west-1}]",
            )
            .replace("maxConcurrent: 2", "maxConcurrent: 1"),
    );
    let applied = apply(&sb, desired.to_str().unwrap(), "2m", true);
    assert_eq!(applied.code, 1, "eu-west-1 could not be read: {applied}");
    let out = applied.json();
    let errors: Vec<&str> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["eu-west-1"], "{out:#}");
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1), ("web".into(), 1), ("worker".into(), 1)]),
        "one rollout at a time, each service once"
    );
    let mut settled: Vec<(String, String)> = out["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    settled.sort();
    assert_eq!(
        settled,
        [
            ("api".to_owned(), "COMPLETED".to_owned()),
            ("web".to_owned(), "COMPLETED".to_owned()),
            ("worker".to_owned(), "COMPLETED".to_owned()),
        ],
        "apply watched every rollout it started to the end: {out:#}"
    );
    assert_eq!(out["remaining"], 0, "{out:#}");
    let tasks = running_tasks(&sb, "apps").await;
    assert_eq!(tasks.len(), 6);
    assert!(tasks.iter().all(|t| t.agent), "{tasks:#?}");
}

/// Redeploys that wait only for `settleTime` do not make `apply` poll AWS every
/// `--rollout-poll`: it sleeps until the settle time ends, then starts them.
#[tokio::test]
async fn apply_sleeps_through_the_settle_time_instead_of_polling() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 0}));
    let desired = sb.write(
        "desired.yaml",
        &DESIRED.replace(
            "settleTime: 0s, maxConcurrent: 2",
            "settleTime: 5s, maxConcurrent: 3",
        ),
    );
    let applied = apply(&sb, desired.to_str().unwrap(), "1m", false);
    assert_eq!(applied.code, 0, "{applied}");
    let log = sb.requests();
    let first_redeploy = log
        .iter()
        .position(|r| r["operation"] == "UpdateService")
        .expect("the services were redeployed");
    let observations = log[..first_redeploy]
        .iter()
        .filter(|r| r["operation"] == "GetDetector")
        .count();
    // The first pass observes and tags `apps` (its answer proves coverage turned on: the
    // settle clock starts, nothing is read again); the next observation is the pass that
    // starts the redeploys. Polling every second through 5 s of settle time would make
    // about 5 more.
    assert_eq!(observations, 2, "passes before the redeploys: {applied}");
    assert_eq!(sb.update_service_calls().len(), 3);
    assert!(running_tasks(&sb, "apps").await.iter().all(|t| t.agent));
}
