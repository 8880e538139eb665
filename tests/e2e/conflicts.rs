//! End to end: tug-of-war detection. The test is the other writer: through the ECS API it
//! sets the `GuardDutyManaged` tag back after each of the daemon's writes; after
//! `reconcile.conflicts.reverts` reverts the cluster is in conflict in `/status` and the
//! metric, and the request log shows no further write to it; a rule change or
//! `POST /conflicts/reset` lifts the hold.

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use crate::kit::daemon::{replace_file, Daemon, HTTP_TIMEOUT};
use crate::kit::{http, Sandbox};

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
"#;

const GAUGE: &str = r#"guardduty_controller_conflicts{kind="tag",target="us-east-1"}"#;
const SUCCESS: &str = r#"guardduty_controller_reconcile_total{result="success"}"#;
const TOKEN: &str = "conflict-test-token";
const LIMIT: Duration = Duration::from_secs(60);

/// `apps` wants `value`; the interval is short, the SIGHUPs of the test come sooner.
fn desired(value: &str) -> String {
    format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\n\
         clusters: [{{name: apps, guardDutyManaged: {value}}}]\n\
         reconcile: {{interval: 10s, jitter: 0, conflicts: {{reverts: 3, window: 1h}}}}\n"
    )
}

async fn tag(sb: &Sandbox) -> Option<String> {
    sb.aws("us-east-1")
        .await
        .managed_tags()
        .await
        .remove("apps")
        .flatten()
}

async fn wait_tag(sb: &Sandbox, want: Option<&str>) -> bool {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if tag(sb).await.as_deref() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The other writer: `GuardDutyManaged=false` through ECS `TagResource` (the controller
/// writes through the tagging API's `TagResources`, so the log tells the two apart).
async fn other_writer_sets_false(sb: &Sandbox, arn: &str) {
    sb.aws("us-east-1")
        .await
        .set_managed_tag(arn, "false")
        .await;
}

fn status(daemon: &Daemon) -> Value {
    let (code, body) = http::request(
        Method::GET,
        &daemon.url("/status"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
        HTTP_TIMEOUT,
    )
    .expect("GET /status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

/// The controller's tag writes to `arn` in the request log.
fn controller_writes(sb: &Sandbox, arn: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| {
            matches!(
                r["operation"].as_str(),
                Some("TagResources" | "UntagResources")
            ) && r["params"]["ResourceARNList"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == arn))
        })
        .count()
}

/// A pass now (SIGHUP), and wait until it is over.
fn pass_now(daemon: &Daemon) {
    let before = daemon.metric(SUCCESS);
    daemon.signal("HUP");
    assert!(
        daemon.wait_for(LIMIT, |d| d.metric(SUCCESS) > before),
        "a pass after SIGHUP: {}",
        daemon.logs()
    );
}

/// Starts the daemon and fights it until `apps` is in conflict: the controller writes
/// `true` three times, the other writer sets `false` after each.
async fn fight(sb: &Sandbox) -> (Daemon, std::path::PathBuf, String) {
    sb.seed(FLEET);
    let arn = sb.aws("us-east-1").await.cluster_arn("apps").await;
    let file = sb.write("desired.yaml", &desired("true"));
    let token = sb.write("token", TOKEN);
    let daemon = Daemon::start(
        sb,
        &file,
        &["--status-token-file", token.to_str().expect("UTF-8 path")],
    );
    for round in 1..=3 {
        assert!(
            wait_tag(sb, Some("true")).await,
            "write {round}: {}",
            daemon.logs()
        );
        other_writer_sets_false(sb, &arn).await;
        daemon.signal("HUP");
    }
    assert!(
        daemon.wait_for(LIMIT, |d| d.metric(GAUGE) == 1.0),
        "in conflict after the third revert: {}",
        daemon.logs()
    );
    assert_eq!(
        controller_writes(sb, &arn),
        3,
        "the first write and two rewrites"
    );
    (daemon, file, arn)
}

#[tokio::test]
async fn a_tag_another_writer_keeps_setting_back_is_a_conflict_until_its_rule_changes() {
    let sb = Sandbox::start();
    let (daemon, file, arn) = fight(&sb).await;

    let s = status(&daemon);
    let conflicts = s["conflicts"].as_array().expect("conflicts list");
    assert_eq!(conflicts.len(), 1, "{s}");
    let c = &conflicts[0];
    assert_eq!(
        (
            &c["kind"],
            &c["cluster"],
            &c["resource"],
            &c["desired"],
            &c["observed"],
            &c["reverts"]
        ),
        (
            &Value::from("tag"),
            &Value::from("apps"),
            &Value::from(arn.as_str()),
            &Value::from("true"),
            &Value::from("false"),
            &Value::from(3)
        ),
        "{s}"
    );
    assert_eq!(c["principal"], Value::Null);
    assert!(
        daemon.logs().contains("conflict: another writer changed"),
        "a warning when it starts"
    );

    // Held: more passes write nothing to apps, and report nothing pending.
    sb.clear_requests();
    for _ in 0..3 {
        pass_now(&daemon);
    }
    assert_eq!(controller_writes(&sb, &arn), 0, "never written again");
    assert_eq!(tag(&sb).await.as_deref(), Some("false"));
    assert_eq!(daemon.metric(GAUGE), 1.0);
    let drift = r#"guardduty_controller_drift{kind="tag",target="us-east-1"}"#;
    assert_eq!(daemon.metric(drift), 0.0, "a conflict is not drift");

    // The rule changes: the hold lifts and the new value is written.
    replace_file(&file, &desired("absent"));
    assert!(wait_tag(&sb, None).await, "untagged: {}", daemon.logs());
    assert!(daemon.wait_for(LIMIT, |d| d.metric(GAUGE) == 0.0));
    assert_eq!(status(&daemon)["conflicts"], Value::Array(Vec::new()));
    assert_eq!(controller_writes(&sb, &arn), 1, "the UntagResources");
    assert!(daemon
        .logs()
        .contains("conflict ended (the desired state changed)"));
}

#[tokio::test]
async fn a_reset_through_the_http_endpoint_lifts_the_hold() {
    let sb = Sandbox::start();
    let (daemon, _file, arn) = fight(&sb).await;
    let url = daemon.url("/conflicts/reset");

    let (code, _) = http::request(Method::POST, &url, &[], "", HTTP_TIMEOUT).unwrap();
    assert_eq!(code, 401, "behind the bearer token");
    assert_eq!(daemon.metric(GAUGE), 1.0);

    let auth = format!("Bearer {TOKEN}");
    let (code, _) = http::request(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        "x".repeat(5000),
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert_eq!(code, 413, "a body over 4 KiB is refused unread");
    assert_eq!(daemon.metric(GAUGE), 1.0);
    let body = format!(r#"{{"resource": "{arn}"}}"#);
    let (code, answer) = http::request(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        body,
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert_eq!(code, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["reset"][0]["cluster"], "apps", "{answer}");
    assert_eq!(daemon.metric(GAUGE), 0.0, "at once");
    let s = status(&daemon);
    assert_eq!(s["conflicts"], Value::Array(Vec::new()));
    assert_eq!(s["conflictsReset"]["reset"][0]["resource"], arn.as_str());

    pass_now(&daemon);
    assert!(
        wait_tag(&sb, Some("true")).await,
        "written again: {}",
        daemon.logs()
    );
    assert_eq!(controller_writes(&sb, &arn), 4);
}
