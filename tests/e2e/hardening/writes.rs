//! A hostile network and churn (issue 11, items 5 and 6): an `UpdateService` answered
//! after the attempt timeout forces exactly one deployment; the daemon's memory stays
//! flat while reloads swap its accounts; knobs refuse impossible values.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::kit::aws::Deployment;
use crate::kit::daemon::{replace_file, Daemon};
use crate::kit::{run_offline, Sandbox};

const REGION: &str = "us-east-1";

/// Runtime Monitoring on, automation off: `apps` becomes covered when the plan tags it,
/// and its service's tasks (started before) lack the agent.
const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
    services:
      - {name: api, cluster: apps, desiredCount: 1}
"#;

/// Fire and forget (no wait for the rollout), so the deployments are read while the new
/// one still rolls next to the old one.
const DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
clusters:
  - {name: apps, guardDutyManaged: true}
redeploy: {settleTime: 0s, waitForSteadyState: false}
"#;

/// The service's deployments, read through ECS.
async fn deployments(sb: &Sandbox) -> Vec<Deployment> {
    sb.aws(REGION).await.deployments("apps", "api").await
}

fn executed(sb: &Sandbox, operation: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r["operation"] == operation && r["status"] == 200)
        .count()
}

/// The issue's case: the attempt timeout is 2 s and the sandbox holds the one
/// `UpdateService` for 4 s before it performs it. The SDK used to resend it after the
/// timeout (the resend was applied at once, then the held one: two deployments).
#[tokio::test]
async fn an_update_service_answered_after_the_attempt_timeout_forces_exactly_one_deployment() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    // Rollouts outlast the test: old and new deployments stay side by side.
    sb.config(json!({"rolloutSeconds": 600}));
    let before = deployments(&sb).await;
    assert_eq!(before.len(), 1, "{before:?}");
    sb.faults(json!({"rules": [{
        "service": "ecs", "operation": "UpdateService", "fault": "delay",
        "delaySeconds": 4, "count": 1
    }]}));
    let desired = sb.write("desired.yaml", DESIRED);

    let run = sb.controller(&[
        "--aws-attempt-timeout",
        "2s",
        "apply",
        "--config",
        desired.to_str().unwrap(),
        "--output",
        "json",
    ]);

    // The held request is performed when its delay ends, whether or not the client
    // still waits: wait for it before counting (a resend would have finished sooner).
    let held = Instant::now();
    while !sb
        .requests()
        .iter()
        .any(|r| r["operation"] == "UpdateService" && r["fault"] == "delay")
    {
        assert!(
            held.elapsed() < Duration::from_secs(30),
            "the held UpdateService never ran: {run}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        executed(&sb, "UpdateService"),
        1,
        "one forced deployment requested and performed: {run}"
    );
    let after = deployments(&sb).await;
    let new: Vec<&Deployment> = after
        .iter()
        .filter(|d| before.iter().all(|old| old.id != d.id))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "exactly one new deployment: before {before:?}, after {after:?}"
    );
    assert_eq!(new[0].status, "PRIMARY");
    assert_eq!(run.code, 0, "applied, no failed action: {run}");
    assert!(
        run.stderr.contains("a re-read found it applied"),
        "the timeout was settled by re-reading the service: {run}"
    );
}

/// A throttled `UpdateService` was rejected: it is sent again (no deployment is lost),
/// and the one that goes through is the only deployment.
#[tokio::test]
async fn a_throttled_update_service_is_retried_and_deploys_once() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 600}));
    let before = deployments(&sb).await;
    sb.faults(json!({"rules": [{
        "service": "ecs", "operation": "UpdateService", "fault": "throttle", "count": 1
    }]}));
    let desired = sb.write("desired.yaml", DESIRED);

    let run = sb.controller(&["apply", "--config", desired.to_str().unwrap()]);

    let calls = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "UpdateService")
        .count();
    assert_eq!(calls, 2, "the throttled one and its retry: {run}");
    let after = deployments(&sb).await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(run.code, 0, "{run}");
}

/// `accounts` × `regions` with `roleName`: 150 accounts from `first`, one region.
fn churn_desired(first: usize) -> String {
    let mut text = String::from(
        "version: 1\ntargets:\n  - regions: [us-east-1]\n    roleName: gec\n    accounts:\n",
    );
    for i in first..first + 150 {
        text.push_str(&format!(
            "      - {{id: \"{:012}\"}}\n",
            100_000_000_000 + i
        ));
    }
    text.push_str(
        "clusters:\n  - {match: {namePattern: \"*-dev\"}, guardDutyManaged: false}\nreconcile: {interval: 1h}\n",
    );
    text
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Waits for the first pass over the desired state whose first account is `first` to
/// finish; returns its status.
fn wait_for_pass(daemon: &Daemon, first: usize, after_pass: u64) -> Value {
    let label = format!("{:012}/{REGION}", 100_000_000_000 + first);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(180) {
        let (code, body) = daemon.get("/status");
        if code == 200 {
            let status: Value = serde_json::from_str(&body).unwrap_or_default();
            let pass = status["lastPass"]["id"].as_u64().unwrap_or(0);
            let targets = status["targets"].as_array().map_or(0, Vec::len);
            if pass > after_pass && targets == 150 && status["targets"][0]["target"] == label {
                return status;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "no pass over accounts from {first} within 180 s\n{}",
        daemon.logs()
    );
}

/// Issue 11's churn case: 8 reloads that each swap all 150 accounts. RSS is read after
/// each reload's pass; after two warm-up reloads it must stay within 10 %.
#[test]
fn the_daemons_memory_stays_flat_across_reloads_that_swap_150_accounts() {
    let sb = Sandbox::start();
    let desired = sb.write("desired.yaml", &churn_desired(0));
    let daemon = Daemon::start(&sb, &desired, &["--max-concurrent-targets", "32"]);
    let mut status = wait_for_pass(&daemon, 0, 0);
    let mut rss = vec![vm_rss_kib(daemon.pid())];
    for reload in 1..=8 {
        let first = reload * 150;
        let pass = status["lastPass"]["id"].as_u64().unwrap_or(0);
        replace_file(&desired, &churn_desired(first));
        status = wait_for_pass(&daemon, first, pass);
        let failed: Vec<&Value> = status["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["result"] != "ok")
            .collect();
        assert!(
            failed.is_empty(),
            "every target reached the sandbox: {failed:?}"
        );
        rss.push(vm_rss_kib(daemon.pid()));
    }
    eprintln!("VmRSS (KiB) after the first pass and each of 8 reloads: {rss:?}");
    let warm = rss[2] as f64;
    let last = *rss.last().unwrap_or(&0) as f64;
    assert!(
        last <= warm * 1.10,
        "RSS grew more than 10 % after warm-up: {rss:?} KiB"
    );
    let assumed: std::collections::BTreeSet<String> = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "AssumeRole")
        .filter_map(|r| r["params"]["RoleArn"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        assumed.len(),
        9 * 150,
        "every account of every reload was reached"
    );
}

#[test]
fn knobs_that_would_spin_or_never_come_are_refused_at_the_command_line() {
    // (arguments, what the error says)
    let rows: [(&[&str], &str); 4] = [
        (
            &["run", "--config", "x.yaml", "--rollout-poll", "0s"],
            "must be at least 1s",
        ),
        (
            &["run", "--config", "x.yaml", "--config-poll", "500ms"],
            "--config-poll",
        ),
        (
            &[
                "--aws-attempt-timeout",
                "30s",
                "--aws-operation-timeout",
                "10s",
                "schema",
            ],
            "must be at least --aws-attempt-timeout",
        ),
        (
            &[
                "plan",
                "--config",
                "x.yaml",
                "--max-concurrent-targets",
                "100000",
            ],
            "not in 1..=256",
        ),
    ];
    for (args, says) in rows {
        let run = run_offline(args);
        assert_eq!(run.code, 1, "a usage error (exit 1): {args:?}\n{run}");
        assert!(run.stderr.contains(says), "{args:?}\n{run}");
    }
}

/// The log collector goes away (stderr closed): the daemon loses its log lines and goes
/// on reconciling. tracing-subscriber used to report the failed write with `eprintln!`,
/// which panicked on the same closed stderr (exit 101) at the first line after it.
#[test]
fn a_closed_stderr_does_not_stop_the_daemon() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let sb = crate::kit::Sandbox::start();
    sb.seed("regions:\n  us-east-1:\n    clusters:\n      - name: apps\n");
    let file = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters: [{name: apps, guardDutyManaged: true}]\n",
    );
    // A free port: bound, then released for the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
    cmd.args([
        "--log-format",
        "json",
        "run",
        "--listen",
        &listen,
        "--config",
    ])
    .arg(&file)
    .args(["--reconcile-min-interval", "1s"]);
    crate::kit::hermetic_env(
        &mut cmd,
        &[("AWS_ENDPOINT_URL", sb.url.as_str()), ("RUST_LOG", "info")],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    // Close the read end at once: every log line now fails with EPIPE.
    drop(child.stderr.take());
    let url = |path: &str| format!("http://{listen}{path}");
    let get = |path: &str| crate::kit::http::get(&url(path), Duration::from_secs(5)).ok();
    let start = Instant::now();
    let mut tagged = false;
    while start.elapsed() < Duration::from_secs(60) && !tagged {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the daemon exited: {:?}",
            child.try_wait()
        );
        // Passes on request, each logging lines nobody reads.
        let _ = crate::kit::http::request(
            hyper::Method::POST,
            &url("/reconcile"),
            &[],
            "",
            Duration::from_secs(5),
        );
        tagged = get("/metrics").is_some_and(|(_, body)| {
            body.lines().any(|l| {
                l.starts_with("guardduty_controller_reconcile_total{result=\"success\"}")
                    && !l.ends_with(" 0")
            })
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(tagged, "a successful pass while stderr is closed");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still running after its passes"
    );
    assert_eq!(get("/healthz").map(|(code, _)| code), Some(200));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "a clean shutdown: {status:?}");
}
