//! End to end: the daemon (`run`) against the sandbox.

use std::time::{Duration, Instant};

use crate::kit::daemon::{replace_file, Daemon};
use crate::kit::Sandbox;

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: alpha
      - name: beta
"#;

/// Flipping one of the two clusters' tags turns coverage off for half of them: the
/// coverage-loss ceiling is raised where the controller runs (the file cannot raise it).
const RAISED: &[&str] = &["--max-coverage-loss-ceiling", "1"];

/// A desired state with an interval far longer than any test: every pass seen in a test
/// came from the start, a file change or a signal.
fn desired(alpha: &str, beta: &str) -> String {
    format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\nclusters:\n  - {{name: alpha, guardDutyManaged: {alpha}}}\n  - {{name: beta, guardDutyManaged: {beta}}}\nreconcile: {{interval: 1h}}\n"
    )
}

async fn tag(sb: &Sandbox, cluster: &str) -> Option<String> {
    sb.aws("us-east-1")
        .await
        .managed_tags()
        .await
        .remove(cluster)
        .flatten()
}

async fn wait_tag(
    sb: &Sandbox,
    cluster: &str,
    want: Option<&str>,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if tag(sb, cluster).await.as_deref() == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

const RELOAD_ERRORS: &str = r#"guardduty_controller_config_reloads_total{result="error"}"#;

#[tokio::test]
async fn editing_the_file_applies_the_change_without_waiting_for_the_interval() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", &desired("true", "true"));
    let daemon = Daemon::start(&sb, &file, RAISED);
    assert!(
        wait_tag(&sb, "alpha", Some("true"), Duration::from_secs(60))
            .await
            .is_some(),
        "first pass: {}",
        daemon.logs()
    );

    let mut delays = Vec::new();
    for (i, value) in ["false", "true", "false"].into_iter().enumerate() {
        replace_file(&file, &desired(value, "true"));
        let delay = wait_tag(&sb, "alpha", Some(value), Duration::from_secs(60)).await;
        let delay = delay.unwrap_or_else(|| {
            panic!(
                "edit {i} was not applied (interval is 1h): {}",
                daemon.logs()
            )
        });
        delays.push(delay);
    }
    println!("file edit -> tag visible in AWS: {delays:?} (interval 1h, debounce 250 ms)");
    let success = r#"guardduty_controller_reconcile_total{result="success"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.metric(success) >= 4.0),
        "one pass per edit"
    );
}

#[tokio::test]
async fn a_broken_file_changes_nothing_in_aws_counts_an_error_and_fixing_it_resumes() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", &desired("true", "true"));
    let daemon = Daemon::start(&sb, &file, RAISED);
    assert!(
        wait_tag(&sb, "beta", Some("true"), Duration::from_secs(60))
            .await
            .is_some(),
        "{}",
        daemon.logs()
    );
    assert!(daemon.wait_for(Duration::from_secs(10), |d| d.get("/readyz").0 == 200));
    sb.clear_requests();

    let good = desired("true", "true");
    let half_written = &good[..good.len() / 2];
    let broken: [(&str, Option<&str>); 5] = [
        ("syntax error", Some("version: 1\ntargets: [\n")),
        (
            "unknown key",
            Some("version: 1\ntargets: [{region: us-east-1}]\nclustrs: []\n"),
        ),
        ("truncated, half-written file", Some(half_written)),
        ("empty file", Some("")),
        ("deleted file", None),
    ];
    for (label, text) in broken {
        let errors = daemon.metric(RELOAD_ERRORS);
        match text {
            // Written in place, not renamed: the way a tool that writes in steps leaves it.
            Some(text) => std::fs::write(&file, text).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        assert!(
            daemon.wait_for(Duration::from_secs(30), |d| d.metric(RELOAD_ERRORS)
                >= errors + 1.0),
            "{label}: the error counter did not move: {}",
            daemon.logs()
        );
        let (code, body) = daemon.get("/readyz");
        assert_eq!(
            code, 200,
            "{label}: the last good state is still in force: {body}"
        );
        assert!(
            body.contains("configError\":\""),
            "{label}: /readyz shows the error: {body}"
        );
        let (_, status) = daemon.get("/status");
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert!(
            status["desiredState"]["error"].is_string(),
            "{label}: {status}"
        );
    }
    // SIGHUP forces a pass with the last good state: still nothing to write.
    daemon.signal("HUP");
    assert!(daemon.wait_for(Duration::from_secs(30), |d| {
        d.metric(r#"guardduty_controller_reconcile_total{result="success"}"#) >= 2.0
    }));
    assert!(
        sb.writes().is_empty(),
        "a broken file must change nothing: {:?}",
        sb.writes()
    );
    assert_eq!(tag(&sb, "alpha").await.as_deref(), Some("true"));

    replace_file(&file, &desired("false", "true"));
    assert!(
        wait_tag(&sb, "alpha", Some("false"), Duration::from_secs(60))
            .await
            .is_some(),
        "fixing the file resumes: {}",
        daemon.logs()
    );
    assert!(daemon.metric(r#"guardduty_controller_config_reloads_total{result="success"}"#) >= 2.0);
    let (_, status) = daemon.get("/status");
    for (what, text) in [("logs", daemon.logs()), ("/status", status)] {
        assert!(
            !text.contains(crate::kit::SECRET_KEY),
            "credentials leaked into {what}"
        );
    }
}

#[tokio::test]
async fn readyz_is_503_before_the_first_good_pass_and_200_after() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", "");
    std::fs::remove_file(&file).unwrap();
    let daemon = Daemon::start(&sb, &file, RAISED);
    assert!(daemon.wait_for(Duration::from_secs(10), |d| d.get("/healthz").0 == 200));
    for _ in 0..5 {
        assert_eq!(daemon.get("/readyz").0, 503, "no desired state yet");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        sb.requests().is_empty(),
        "no valid desired state: no AWS call at all"
    );
    replace_file(&file, &desired("true", "false"));
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.get("/readyz").0 == 200),
        "ready after the first good pass: {}",
        daemon.logs()
    );
    assert_eq!(tag(&sb, "beta").await.as_deref(), Some("false"));
}

#[tokio::test]
async fn sigterm_exits_0_within_10_seconds() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", &desired("true", "true"));
    let mut daemon = Daemon::start(&sb, &file, RAISED);
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.get("/readyz").0 == 200),
        "{}",
        daemon.logs()
    );
    let start = Instant::now();
    daemon.signal("TERM");
    let code = daemon.wait_exit(Duration::from_secs(10));
    println!("SIGTERM -> exit in {:?}", start.elapsed());
    assert_eq!(code, Some(0), "exit 0 within 10 s: {}", daemon.logs());
}

/// The daemon listens (and answers /healthz) before its AWS clients are built; a SIGTERM
/// in that window, as from an ECS deployment that stops a task at once, is a clean
/// shutdown too, not death by the signal (exit 143, which once failed CI's check-image).
#[tokio::test]
async fn sigterm_while_starting_up_exits_0() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", &desired("true", "true"));
    for attempt in 1..=5 {
        let mut daemon = Daemon::start(&sb, &file, RAISED);
        daemon.signal("TERM"); // right after it logged its address
        let code = daemon.wait_exit(Duration::from_secs(10));
        assert_eq!(
            code,
            Some(0),
            "attempt {attempt}: SIGTERM during start-up must exit 0: {}",
            daemon.logs()
        );
    }
}

#[tokio::test]
async fn dry_run_and_suspend_write_nothing_but_report_drift() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let drift = r#"guardduty_controller_drift{kind="tag",target="us-east-1"}"#;
    for (label, extra, text, result) in [
        (
            "--dry-run",
            vec!["--dry-run", RAISED[0], RAISED[1]],
            desired("true", "false"),
            "success",
        ),
        (
            "suspend",
            RAISED.to_vec(),
            format!("{}suspend: true\n", desired("true", "false")),
            "suspended",
        ),
    ] {
        let file = sb.write("desired.yaml", &text);
        let daemon = Daemon::start(&sb, &file, &extra);
        let series = format!(r#"guardduty_controller_reconcile_total{{result="{result}"}}"#);
        assert!(
            daemon.wait_for(Duration::from_secs(30), |d| d.metric(&series) >= 1.0),
            "{label}: {}",
            daemon.logs()
        );
        assert_eq!(daemon.metric(drift), 2.0, "{label}: two tags pending");
        assert!(
            sb.writes().is_empty(),
            "{label} writes nothing: {:?}",
            sb.writes()
        );
    }
}

#[tokio::test]
async fn a_target_that_is_down_does_not_stop_the_healthy_one() {
    let sb = Sandbox::start();
    sb.seed(
        r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters: [{name: alpha}]
  eu-west-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters: [{name: alpha}]
"#,
    );
    // Every request for eu-west-1 has its connection dropped: that region's endpoint is down.
    sb.faults(serde_json::json!({"rules": [{"region": "eu-west-1", "fault": "reset"}]}));
    let file = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: eu-west-1}, {region: us-east-1}]\nclusters: [{name: alpha, guardDutyManaged: true}]\nreconcile: {interval: 1h}\n",
    );
    let daemon = Daemon::start(&sb, &file, RAISED);
    assert!(
        wait_tag(&sb, "alpha", Some("true"), Duration::from_secs(60))
            .await
            .is_some(),
        "the healthy target converges: {}",
        daemon.logs()
    );
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| d
            .metric(r#"guardduty_controller_reconcile_total{result="error"}"#)
            >= 1.0),
        "{}",
        daemon.logs()
    );
    let (_, status) = daemon.get("/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let targets = status["targets"].as_array().unwrap();
    let by_region = |r: &str| targets.iter().find(|t| t["region"] == r).unwrap().clone();
    assert_eq!(by_region("eu-west-1")["result"], "error", "{status}");
    assert_eq!(by_region("us-east-1")["result"], "ok", "{status}");
    let failed_calls = r#"guardduty_controller_aws_requests_total{operation="DescribeClusters",outcome="error",service="ecs"}"#;
    assert!(
        daemon.metric(failed_calls) >= 1.0,
        "{}",
        daemon.get("/metrics").1
    );
    assert!(
        daemon.logs().contains("target failed"),
        "the failure is logged per target"
    );
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "one healthy target reached AWS"
    );
}

#[tokio::test]
async fn a_desired_state_in_s3_is_applied_without_a_restart_and_a_corrupt_object_is_not() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let aws = sb.aws("us-east-1").await;
    aws.create_bucket("gitops").await;
    let s3 = aws.s3;
    let put = |text: String| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("gitops")
                .key("guardduty/desired.yaml")
                .body(text.into_bytes().into())
                .send()
                .await
                .expect("PutObject");
        }
    };
    put(desired("true", "true")).await;
    let url = "s3://gitops/guardduty/desired.yaml";
    let daemon =
        Daemon::start_with_config(&sb, url, &["--config-poll", "1s", RAISED[0], RAISED[1]]);
    assert!(
        wait_tag(&sb, "alpha", Some("true"), Duration::from_secs(60))
            .await
            .is_some(),
        "{}",
        daemon.logs()
    );

    put(desired("false", "true")).await;
    let delay = wait_tag(&sb, "alpha", Some("false"), Duration::from_secs(60)).await;
    assert!(
        delay.is_some(),
        "the new object is applied without a restart: {}",
        daemon.logs()
    );
    println!("S3 object replaced -> tag visible: {delay:?} (poll 1s)");

    sb.clear_requests();
    let errors = daemon.metric(RELOAD_ERRORS);
    put("version: 1\ntargets: [{region: us-east-1}]\nclusters: [{name: alpha, guardDutyManaged: maybe}]\n".into()).await;
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.metric(RELOAD_ERRORS)
            >= errors + 1.0),
        "a corrupt object is counted: {}",
        daemon.logs()
    );
    daemon.signal("HUP");
    let success = r#"guardduty_controller_reconcile_total{result="success"}"#;
    let before = daemon.metric(success);
    assert!(daemon.wait_for(Duration::from_secs(30), |d| d.metric(success) > before));
    assert!(
        sb.writes().is_empty(),
        "a corrupt object is not applied: {:?}",
        sb.writes()
    );
    assert_eq!(tag(&sb, "alpha").await.as_deref(), Some("false"));
    let (_, status) = daemon.get("/status");
    assert!(
        status.contains("s3://gitops/guardduty/desired.yaml:3:"),
        "/status shows where the object's error is: {status}"
    );
    assert!(
        !status.contains("maybe"),
        "/status never echoes the object's content: {status}"
    );
}

#[tokio::test]
async fn assumed_role_credentials_are_reused_across_passes() {
    let sb = Sandbox::start();
    sb.seed(
        r#"
accounts:
  "111111111111":
    regions:
      us-east-1:
        detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
        clusters: [{name: alpha}]
"#,
    );
    let file = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1, roleArn: 'arn:aws:iam::111111111111:role/guardduty-ecs-controller'}]\nclusters: [{name: alpha, guardDutyManaged: true}]\nreconcile: {interval: 1h}\n",
    );
    let daemon = Daemon::start(&sb, &file, RAISED);
    let success = r#"guardduty_controller_reconcile_total{result="success"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| d.metric(success) >= 1.0),
        "{}",
        daemon.logs()
    );
    for n in 2..=4 {
        daemon.signal("HUP");
        assert!(
            daemon.wait_for(Duration::from_secs(60), |d| d.metric(success) >= n as f64),
            "{}",
            daemon.logs()
        );
    }
    let assumed = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "AssumeRole")
        .count();
    // Each target's clients are kept across passes, so the SDK refreshes the assumed-role
    // credentials only when they near expiry (without that cache: 4 calls).
    assert_eq!(assumed, 1, "one AssumeRole for 4 passes, not one per pass");
    let accounts: std::collections::BTreeSet<String> = sb
        .requests()
        .iter()
        .filter(|r| r["service"] == "ecs")
        .filter_map(|r| r["account"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        accounts,
        ["111111111111".to_owned()].into(),
        "every ECS call ran in the role's account"
    );
}
