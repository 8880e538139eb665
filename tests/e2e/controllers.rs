//! Every way a service deploys, end to end (issue 14): one covered cluster with a rolling
//! service, an ECS blue/green service, a CodeDeploy service and an EXTERNAL service, all
//! started before coverage (no agent). The sandbox refuses `forceNewDeployment` on
//! `CODE_DEPLOY` services and runs CodeDeploy deployments as AWS does
//! (sandbox/README.md); everything is checked in the sandbox's AWS state and request log.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kit::daemon::Daemon;
use crate::kit::Sandbox;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";

/// Started while `apps` is not covered: no task runs the agent. `orphan` deploys through
/// CodeDeploy but no deployment group names it.
const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
    services:
      - {name: bluegreen, cluster: apps, desiredCount: 2, strategy: BLUE_GREEN, bakeTimeInMinutes: 2}
      - {name: codedeploy, cluster: apps, desiredCount: 2, deploymentController: CODE_DEPLOY}
      - {name: external, cluster: apps, desiredCount: 1, deploymentController: EXTERNAL, externalId: spinnaker-42}
      - {name: orphan, cluster: apps, desiredCount: 1, deploymentController: CODE_DEPLOY, deploymentGroup: none}
      - {name: rolling, cluster: apps, desiredCount: 2}
"#;

/// Coverage on for `apps`, every redeploy at once.
const DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}
clusters:
  - {name: apps, guardDutyManaged: true}
redeploy: {settleTime: 0s, maxConcurrent: 3, stopOnFailure: true}
reconcile: {interval: 1h}
"#;

/// A sandbox with the fleet; rollouts and CodeDeploy deployments take `rollout` seconds,
/// a bake-time minute one second.
fn sandbox(rollout: u32) -> Sandbox {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": rollout, "bakeSecondsPerMinute": 1}));
    sb
}

/// Writes that start deployments, by (operation, service or deployment group) → count.
fn writes_by_service(sb: &Sandbox) -> BTreeMap<(String, String), usize> {
    const DEPLOYS: [&str; 4] = [
        "UpdateService",
        "CreateDeployment",
        "CreateTaskSet",
        "UpdateServicePrimaryTaskSet",
    ];
    let mut out = BTreeMap::new();
    for r in sb
        .requests()
        .into_iter()
        .filter(|r| DEPLOYS.contains(&r["operation"].as_str().unwrap_or_default()))
    {
        let op = r["operation"].as_str().unwrap_or_default().to_owned();
        let params = &r["params"];
        let who = params["service"]
            .as_str()
            .or(params["deploymentGroupName"].as_str())
            .unwrap_or_default()
            .to_owned();
        *out.entry((op, who)).or_default() += 1;
    }
    out
}

fn count(sb: &Sandbox, operation: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r["operation"] == operation)
        .count()
}

/// Whether every RUNNING task of `service` runs the agent, and how many there are.
async fn agent_tasks(sb: &Sandbox, service: &str) -> (bool, usize) {
    let tasks = sb.aws(REGION).await.running_tasks("apps").await;
    let mine: Vec<_> = tasks
        .iter()
        .filter(|t| t.group == format!("service:{service}"))
        .collect();
    (mine.iter().all(|t| t.agent), mine.len())
}

/// The CodeDeploy deployments of the `codedeploy` service's group, with their status.
async fn codedeploy_statuses(sb: &Sandbox) -> Vec<(String, String)> {
    let cd = aws_sdk_codedeploy::Client::new(&sb.sdk(REGION).await);
    let ids = cd
        .list_deployments()
        .application_name("gec-apps")
        .deployment_group_name("codedeploy")
        .send()
        .await
        .expect("ListDeployments")
        .deployments()
        .to_vec();
    if ids.is_empty() {
        return Vec::new();
    }
    let got = cd
        .batch_get_deployments()
        .set_deployment_ids(Some(ids))
        .send()
        .await
        .expect("BatchGetDeployments");
    let mut out: Vec<(String, String)> = got
        .deployments_info()
        .iter()
        .map(|d| {
            (
                d.deployment_id().unwrap_or_default().to_owned(),
                d.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn redeploy_actions(out: &Value) -> BTreeMap<String, Value> {
    out["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {out:#}"))
        .iter()
        .filter(|a| a["kind"] == "redeploy_service")
        .map(|a| (a["service"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

#[tokio::test]
async fn each_service_is_redeployed_through_its_own_deployment_controller_exactly_once() {
    let sb = sandbox(2);
    let config = sb.write("desired.yaml", DESIRED);
    let config = config.to_str().unwrap();

    let plan = sb.controller(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(plan.code, 2, "{plan}");
    let planned = redeploy_actions(&plan.json());
    let how: BTreeMap<&str, (&str, &str, &str)> = planned
        .iter()
        .map(|(s, a)| {
            (
                s.as_str(),
                (
                    a["deploymentController"].as_str().unwrap_or("-"),
                    a["strategy"].as_str().unwrap_or("-"),
                    a["deploymentGroup"].as_str().unwrap_or("-"),
                ),
            )
        })
        .collect();
    assert_eq!(
        how,
        BTreeMap::from([
            ("bluegreen", ("ECS", "BLUE_GREEN", "-")),
            ("codedeploy", ("CODE_DEPLOY", "-", "gec-apps/codedeploy")),
            ("rolling", ("ECS", "ROLLING", "-")),
        ]),
        "the EXTERNAL service and the CODE_DEPLOY one without a group are not planned"
    );

    sb.clear_requests();
    let applied = sb.apply(config, "2m", &["--output", "json"]);
    assert_eq!(applied.code, 0, "{applied}");
    let out = applied.json();
    assert_eq!(
        writes_by_service(&sb),
        BTreeMap::from([
            (("UpdateService".into(), "bluegreen".into()), 1),
            (("CreateDeployment".into(), "codedeploy".into()), 1),
            (("UpdateService".into(), "rolling".into()), 1),
        ]),
        "each through its API, once; nothing written for the EXTERNAL service"
    );
    let held: BTreeMap<&str, &Value> = out["held"]
        .as_array()
        .expect("held")
        .iter()
        .map(|h| (h["service"].as_str().unwrap(), h))
        .collect();
    assert_eq!(
        held.keys().copied().collect::<Vec<_>>(),
        ["external", "orphan"],
        "{held:#?}"
    );
    assert_eq!(held["external"]["code"], "external_deployment_controller");
    assert!(
        held["external"]["reason"]
            .as_str()
            .unwrap()
            .contains("deployer"),
        "the reason says who must redeploy it: {:#}",
        held["external"]
    );
    assert_eq!(
        held["orphan"]["code"], "no_deployment_group",
        "a CODE_DEPLOY service no deployment group names"
    );
    let settled: BTreeMap<String, String> = out["rollouts"]
        .as_array()
        .expect("rollouts")
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        settled,
        BTreeMap::from([
            ("bluegreen".into(), "COMPLETED".into()),
            ("codedeploy".into(), "Succeeded".into()),
            ("rolling".into(), "COMPLETED".into()),
        ]),
        "apply waited for every rollout, the CodeDeploy one until Succeeded"
    );
    let deployments = codedeploy_statuses(&sb).await;
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0].1, "Succeeded");
    for service in ["rolling", "bluegreen", "codedeploy"] {
        let (all, n) = agent_tasks(&sb, service).await;
        assert!(
            all && n == 2,
            "{service}: every task runs the agent ({n} tasks)"
        );
    }
    for untouched in ["external", "orphan"] {
        let (all, n) = agent_tasks(&sb, untouched).await;
        assert!(!all && n == 1, "{untouched}: its task is untouched");
    }

    // Converged: a second apply writes nothing.
    sb.clear_requests();
    let again = sb.apply(config, "1m", &[]);
    assert_eq!(again.code, 0, "{again}");
    assert!(sb.writes().is_empty(), "{:#?}", sb.writes());
    assert!(
        writes_by_service(&sb).is_empty(),
        "{:#?}",
        writes_by_service(&sb)
    );
}

#[tokio::test]
async fn a_failed_codedeploy_deployment_halts_redeploys_and_says_so_everywhere() {
    let sb = sandbox(1);
    sb.knobs(json!({"failCodeDeploy": ["codedeploy"]}));
    // One at a time, in name order: bluegreen, then codedeploy (fails), rolling never.
    let desired = sb.write(
        "desired.yaml",
        &DESIRED.replace("maxConcurrent: 3", "maxConcurrent: 1"),
    );
    let daemon = Daemon::start(&sb, &desired, &["--rollout-poll", "1s"]);
    let halted = daemon.wait_for(Duration::from_secs(60), |d| {
        d.metric("guardduty_controller_redeploys_halted") == 1.0
    });
    assert!(halted, "{}", daemon.logs());
    let deployments = codedeploy_statuses(&sb).await;
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(deployments[0].1, "Failed");
    let (_, status) = daemon.get("/status");
    let status: Value = serde_json::from_str(&status).expect("/status JSON");
    assert_eq!(status["halted"]["service"], "codedeploy", "{status:#}");
    assert_eq!(status["halted"]["deploymentId"], deployments[0].0.as_str());
    // Another pass changes nothing: still halted, `rolling` never redeployed.
    let before = daemon.metric_sum("guardduty_controller_reconcile_total", "");
    daemon.signal("HUP");
    assert!(daemon.wait_for(Duration::from_secs(30), |d| {
        d.metric_sum("guardduty_controller_reconcile_total", "") > before
    }));
    assert_eq!(count(&sb, "CreateDeployment"), 1);
    assert!(
        !sb.update_service_calls().contains_key("rolling"),
        "{:?}",
        sb.update_service_calls()
    );
    let config = desired.to_str().unwrap();
    let text = sb.controller(&["status", "--config", config]);
    assert!(
        text.stdout.to_lowercase().contains("halted") && text.stdout.contains("apps/codedeploy"),
        "`status` says why redeploys stopped: {text}"
    );
}

#[tokio::test]
async fn a_daemon_restarted_mid_deployment_does_not_double_the_codedeploy_deployment() {
    let sb = sandbox(10);
    // Only the CodeDeploy service lacks the agent that matters here: the others are
    // excluded, so the first redeploy is the CodeDeploy one.
    let desired = sb.write(
        "desired.yaml",
        &DESIRED.replace(
            "stopOnFailure: true",
            "stopOnFailure: true, excludeServices: [rolling, bluegreen]",
        ),
    );
    let mut first = Daemon::start(&sb, &desired, &["--rollout-poll", "1s"]);
    assert!(
        first.wait_for(Duration::from_secs(30), |_| count(&sb, "CreateDeployment")
            >= 1),
        "the CodeDeploy deployment starts: {}",
        first.logs()
    );
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    let second = Daemon::start(&sb, &desired, &["--rollout-poll", "1s"]);
    let sees_it_rolling = second.wait_for(Duration::from_secs(30), |d| {
        let (_, body) = d.get("/status");
        serde_json::from_str::<Value>(&body).is_ok_and(|status| {
            status["held"].as_array().is_some_and(|held| {
                held.iter()
                    .any(|h| h["service"] == "codedeploy" && h["code"] == "deployment_in_progress")
            })
        })
    });
    assert!(
        sees_it_rolling,
        "the restarted daemon finds the deployment in progress in CodeDeploy: {}",
        second.logs()
    );
    let mut done = false;
    for _ in 0..60 {
        if agent_tasks(&sb, "codedeploy").await == (true, 2) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(done, "the deployment Succeeded: {}", second.logs());
    assert_eq!(
        count(&sb, "CreateDeployment"),
        1,
        "the deployment in progress was found in CodeDeploy, not doubled"
    );
    let (all, n) = agent_tasks(&sb, "codedeploy").await;
    assert!(
        all && n == 2,
        "every task of the CodeDeploy service runs the agent"
    );
}
