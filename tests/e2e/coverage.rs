//! Honest coverage end to end (issue 13): a task is covered only while its agent RUNS, a
//! service that cannot get the agent is held with a stable code and never redeployed, and
//! the agent is reported — or taken out — after coverage is lost. The sandbox attaches
//! the agent as AWS does (sandbox/README.md, "GuardDuty agent sidecar"); everything is
//! checked in the sandbox's AWS state and request log, the controller's output only for
//! what it reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::kit::daemon::Daemon;
use crate::kit::Sandbox;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";

/// One cluster, not covered yet (manual mode, untagged), with three services started
/// before coverage: no agent in any task.
const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
    services:
      - {name: healthy, cluster: apps, desiredCount: 2}
      - {name: nopull, cluster: apps, desiredCount: 1, executionRole: noPull}
      - {name: oldplatform, cluster: apps, desiredCount: 1, platformVersion: "1.3.0"}
"#;

/// A fourth service, started once `apps` is covered: its task gets a RUNNING agent.
const LATE: &str = r#"
regions:
  us-east-1:
    services:
      - {name: late, cluster: apps, desiredCount: 1}
"#;

/// Coverage on for `apps`; redeploys at once, and retried after only 1 s.
const DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}
clusters:
  - {name: apps, guardDutyManaged: true}
redeploy: {settleTime: 0s, retryAfter: 1s, maxConcurrent: 2}
reconcile: {interval: 1h}
"#;

/// `apply` with 1 s rollout polls, JSON output.
fn apply(sb: &Sandbox, config: &str, extra: &[&str]) -> crate::kit::Run {
    let mut args = vec!["--output", "json"];
    args.extend(extra);
    sb.apply(config, "1m", &args)
}

/// `held` rows as service → code.
fn held_codes(out: &Value) -> BTreeMap<String, String> {
    out["held"]
        .as_array()
        .unwrap_or_else(|| panic!("no held list: {out:#}"))
        .iter()
        .map(|h| {
            (
                h["service"].as_str().unwrap().to_owned(),
                h["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn held_row<'a>(out: &'a Value, service: &str) -> &'a Value {
    out["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == service)
        .unwrap_or_else(|| panic!("{service} is not held: {out:#}"))
}

/// Stops the agent of every RUNNING task of `service` (an agent that dies later).
fn stop_agent(sb: &Sandbox, service: &str, reason: &str) {
    let (status, body) = crate::kit::http::request(
        hyper::Method::POST,
        &format!("{}/_sandbox/agents/stop", sb.url),
        &[],
        json!({
            "account": "123456789012",
            "region": REGION,
            "cluster": "apps",
            "service": service,
            "reason": reason,
            "exitCode": 137,
        })
        .to_string(),
        Duration::from_secs(10),
    )
    .expect("POST /_sandbox/agents/stop");
    assert_eq!(status, 200, "{body}");
}

/// The daemon's `/status` JSON.
fn status(daemon: &Daemon) -> Value {
    let (code, body) = daemon.get("/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

/// Waits until a pass with an id above `after` has finished; returns its `/status`.
fn next_pass(daemon: &Daemon, after: u64) -> Value {
    let start = Instant::now();
    loop {
        let s = status(daemon);
        let id = s["lastPass"]["id"].as_u64().unwrap_or(0);
        if id > after && s["lastPass"]["finishedAt"].is_number() {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pass after {after}: {s:#}\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Healthy, no ECR pull, platform 1.3.0, and an agent that stops after it started: only
/// the first is redeployed, once; the next two are held with their codes, never
/// redeployed — not by `apply`, not by a daemon passing again and again past
/// `retryAfter: 1s`; the fourth is reported without the agent in the very next pass,
/// with AWS's reason, and not redeployed either.
#[tokio::test]
async fn only_a_service_that_can_get_the_agent_is_redeployed_and_the_others_are_held_with_their_codes(
) {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    let desired = sb.write("desired.yaml", DESIRED);
    let config = desired.to_str().unwrap();

    let applied = apply(&sb, config, &[]);
    assert_eq!(applied.code, 0, "{applied}");
    let out = applied.json();
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("healthy".into(), 1)]),
        "only the service that can get the agent is redeployed: {out:#}"
    );
    assert_eq!(
        held_codes(&out),
        BTreeMap::from([
            ("nopull".into(), "execution_role_cannot_pull".into()),
            ("oldplatform".into(), "platform_version".into()),
        ]),
        "{out:#}"
    );
    let nopull = held_row(&out, "nopull");
    assert!(
        nopull["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gec-sandbox-no-pull") || d.contains("ecr:")),
        "the finding names the role or the denied actions: {nopull:#}"
    );
    let aws = sb.aws(REGION).await;
    let running = aws.running_tasks("apps").await;
    let of = |service: &str| -> Vec<_> {
        running
            .iter()
            .filter(|t| t.group == format!("service:{service}"))
            .cloned()
            .collect()
    };
    let healthy = of("healthy");
    assert!(
        healthy.len() == 2 && healthy.iter().all(|t| t.agent),
        "the redeployed service's tasks run the agent: {running:#?}"
    );
    for held in ["nopull", "oldplatform"] {
        let tasks = of(held);
        assert!(
            tasks.len() == 1 && tasks.iter().all(|t| t.agent_status.is_none()),
            "{held} was left alone, its task from before coverage: {running:#?}"
        );
    }

    // A fourth service comes up covered, then its agent dies.
    sb.seed(LATE);
    let late = aws.service_tasks("apps", "late").await;
    assert!(late.iter().all(|t| t.agent), "{late:#?}");
    sb.clear_requests();

    let daemon = Daemon::start(&sb, &desired, &[]);
    let first = next_pass(&daemon, 0);
    assert!(
        !held_codes(&first).contains_key("late"),
        "late runs the agent: {first:#}"
    );
    stop_agent(
        &sb,
        "late",
        "OutOfMemoryError: Container killed due to memory usage",
    );
    daemon.signal("HUP");
    let after = next_pass(&daemon, first["lastPass"]["id"].as_u64().unwrap());
    let late = held_row(&after, "late");
    assert_eq!(late["code"], "agent_failed", "{after:#}");
    assert!(
        late["detail"]
            .as_str()
            .is_some_and(|d| d.contains("OutOfMemoryError")),
        "AWS's reason for the stopped agent: {late:#}"
    );

    // More passes, each past retryAfter (1 s): nothing held is ever redeployed.
    let mut last = after["lastPass"]["id"].as_u64().unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1100));
        daemon.signal("HUP");
        last = next_pass(&daemon, last)["lastPass"]["id"].as_u64().unwrap();
    }
    let s = status(&daemon);
    assert_eq!(
        held_codes(&s),
        BTreeMap::from([
            ("late".into(), "agent_failed".into()),
            ("nopull".into(), "execution_role_cannot_pull".into()),
            ("oldplatform".into(), "platform_version".into()),
        ]),
        "{s:#}"
    );
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::new(),
        "the daemon redeployed nothing: {}",
        daemon.logs()
    );
    for (code, want) in [
        ("execution_role_cannot_pull", 1.0),
        ("platform_version", 1.0),
        ("agent_failed", 1.0),
        ("windows", 0.0),
    ] {
        let series = format!(
            "guardduty_controller_preflight_findings{{code=\"{code}\",target=\"{REGION}\"}}"
        );
        assert_eq!(daemon.metric(&series), want, "{series}");
    }
}

/// Coverage lost, `onCoverageLoss: redeploy`: the agent is taken out of every task.
#[tokio::test]
async fn coverage_loss_with_redeploy_ends_with_no_task_carrying_the_agent() {
    let sb = Sandbox::start();
    sb.seed(COVERED);
    sb.config(json!({"rolloutSeconds": 1}));
    let aws = sb.aws(REGION).await;
    let before = aws.running_tasks("apps").await;
    assert!(
        before.len() == 3 && before.iter().all(|t| t.agent),
        "{before:#?}"
    );
    let desired = sb.write("desired.yaml", &off("redeploy"));
    let applied = apply(&sb, desired.to_str().unwrap(), RAISED);
    assert_eq!(applied.code, 0, "{applied}");
    assert_eq!(
        sb.update_service_calls(),
        BTreeMap::from([("api".into(), 1), ("web".into(), 1)]),
        "{applied}"
    );
    let tags = aws.managed_tags().await;
    assert_eq!(tags["apps"].as_deref(), Some("false"));
    let after = aws.running_tasks("apps").await;
    assert_eq!(after.len(), 3, "{after:#?}");
    assert!(
        after.iter().all(|t| t.agent_status.is_none()),
        "no running task carries the agent: {after:#?}"
    );
}

/// Coverage lost, `onCoverageLoss: report` (the default): `status` lists the tasks that
/// keep the agent, and nothing is redeployed.
#[tokio::test]
async fn coverage_loss_with_report_lists_the_tasks_that_keep_the_agent_and_redeploys_nothing() {
    let sb = Sandbox::start();
    sb.seed(COVERED);
    let desired = sb.write("desired.yaml", &off("report"));
    let config = desired.to_str().unwrap();
    let applied = apply(&sb, config, RAISED);
    assert_eq!(applied.code, 0, "{applied}");
    let status = sb.controller(&["status", "--config", config, "--output", "json"]);
    assert_eq!(status.code, 0, "{status}");
    let out = status.json();
    let apps = out["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "apps")
        .unwrap_or_else(|| panic!("{out:#}"));
    assert_eq!(apps["agentTasks"], 3, "{out:#}");
    let text = sb.controller(&["status", "--config", config]);
    assert!(
        text.stdout.contains("agent"),
        "the table tells the tasks that keep the agent: {text}"
    );
    assert_eq!(sb.update_service_calls(), BTreeMap::new());
    let tasks = sb.aws(REGION).await.running_tasks("apps").await;
    assert!(tasks.iter().all(|t| t.agent), "untouched: {tasks:#?}");
}

/// A covered cluster (manual mode, tagged true) whose tasks run the agent.
const COVERED: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
        tags: {GuardDutyManaged: "true"}
    services:
      - {name: api, cluster: apps, desiredCount: 2}
      - {name: web, cluster: apps, desiredCount: 1}
"#;

/// Turning all coverage off trips the default coverage-loss limit: raised where the
/// controller runs.
const RAISED: &[&str] = &["--max-coverage-loss-ceiling", "1"];

fn off(on_loss: &str) -> String {
    format!(
        r#"
version: 1
targets: [{{region: us-east-1}}]
detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}}
clusters:
  - {{name: apps, guardDutyManaged: false}}
safety: {{maxCoverageLossFraction: 1}}
redeploy: {{settleTime: 0s, onCoverageLoss: {on_loss}}}
"#
    )
}

/// A denied `iam:SimulatePrincipalPolicy` is a warning on the service: no crash, no
/// redeploy, the service held as `preflight_unknown`.
#[tokio::test]
async fn a_denied_policy_simulation_is_a_warning_and_never_a_redeploy() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.faults(json!({"rules": [{
        "service": "iam",
        "operation": "SimulatePrincipalPolicy",
        "fault": "accessDenied",
    }]}));
    let desired = sb.write("desired.yaml", DESIRED);
    let applied = apply(&sb, desired.to_str().unwrap(), &[]);
    assert_eq!(applied.code, 0, "a warning, not a failure: {applied}");
    let out = applied.json();
    assert_eq!(
        held_codes(&out).get("healthy").map(String::as_str),
        Some("preflight_unknown"),
        "{out:#}"
    );
    let warnings = out["warnings"].to_string();
    assert!(
        warnings.contains("healthy") && warnings.contains("SimulatePrincipalPolicy"),
        "the warning names the service and the call: {out:#}"
    );
    assert_eq!(sb.update_service_calls(), BTreeMap::new(), "{applied}");
    assert_eq!(
        sb.aws(REGION).await.managed_tags().await["apps"].as_deref(),
        Some("true"),
        "the tag is still written: preflight gates redeploys only"
    );
}

/// An unknown `onCoverageLoss` is a located validation error.
#[test]
fn an_unknown_on_coverage_loss_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("desired.yaml");
    std::fs::write(&file, off("sometimes")).unwrap();
    let run = crate::kit::run_offline(&["validate", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "invalid (DESIGN §4): {run}");
    let line = off("sometimes")
        .lines()
        .position(|l| l.contains("sometimes"))
        .unwrap()
        + 1;
    assert!(
        run.stderr.contains(&format!("desired.yaml:{line}:"))
            && run.stderr.contains("onCoverageLoss")
            && run.stderr.contains("sometimes"),
        "file, line and field: {run}"
    );
}
