//! End to end: `POST /reconcile` asks for a pass now (instead of SIGHUP, which a Fargate
//! task cannot be sent). The timer is an hour away, so only the requests can start the
//! passes counted here.

use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use crate::kit::daemon::{Daemon, HTTP_TIMEOUT};
use crate::kit::{http, Sandbox};

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
"#;

const DESIRED: &str = "version: 1\ntargets: [{region: us-east-1}]\n\
     clusters: [{name: apps, guardDutyManaged: true}]\n\
     reconcile: {interval: 1h, jitter: 0}\n";

const TOKEN: &str = "reconcile-test-token";
const LIMIT: Duration = Duration::from_secs(60);
const BURST: usize = 100;

fn call(
    daemon: &Daemon,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    http::request(
        method,
        &daemon.url(path),
        &headers,
        body.to_owned(),
        HTTP_TIMEOUT,
    )
    .unwrap_or_else(|e| (0, e))
}

fn status(daemon: &Daemon) -> Value {
    let (code, body) = call(daemon, Method::GET, "/status", Some(TOKEN), "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

fn pass_id(daemon: &Daemon) -> u64 {
    status(daemon)["lastPass"]["id"].as_u64().unwrap_or(0)
}

#[test]
fn a_request_starts_a_pass_at_once_and_a_burst_of_a_hundred_starts_one() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    let token = sb.write("token", TOKEN);
    let daemon = Daemon::start(
        &sb,
        &file,
        &[
            "--status-token-file",
            token.to_str().expect("UTF-8 path"),
            "--reconcile-min-interval",
            "1h",
        ],
    );
    assert!(
        daemon.wait_for(LIMIT, |d| pass_id(d) == 1),
        "the first pass: {}",
        daemon.logs()
    );

    // Behind the bearer token, and it takes no body: nothing to converge on but the
    // desired state in force.
    let (code, _) = call(&daemon, Method::POST, "/reconcile", None, "");
    assert_eq!(code, 401);
    let (code, body) = call(
        &daemon,
        Method::POST,
        "/reconcile",
        Some(TOKEN),
        r#"{"clusters": []}"#,
    );
    assert_eq!(code, 400, "{body}");
    let (code, _) = call(&daemon, Method::GET, "/reconcile", Some(TOKEN), "");
    assert_eq!(code, 405, "POST only");

    // A burst of 100 at once.
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..BURST)
            .map(|_| s.spawn(|| call(&daemon, Method::POST, "/reconcile", Some(TOKEN), "")))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("request thread"))
            .collect()
    });
    let json = |body: &str| serde_json::from_str::<Value>(body).unwrap_or_default();
    let queued = answers
        .iter()
        .filter(|(code, body)| *code == 202 && json(body)["queued"] == true)
        .count();
    assert_eq!(queued, 1, "one request asks for the pass: {answers:?}");
    for (code, body) in &answers {
        let j = json(body);
        match code {
            // Joined the asked-for pass, or limited once it had started.
            202 => assert_eq!(j["accepted"], true, "{body}"),
            429 => {
                assert!(
                    j["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0),
                    "{body}"
                );
            }
            other => panic!("HTTP {other}: {body}"),
        }
    }

    // The asked-for pass started within a second of the request (both times are the
    // daemon's own), and ran.
    assert!(
        daemon.wait_for(LIMIT, |d| pass_id(d) == 2),
        "the asked-for pass: {}",
        daemon.logs()
    );
    let requests = &status(&daemon)["reconcileRequests"];
    let accepted = requests["lastAcceptedAt"].as_f64().expect("lastAcceptedAt");
    let started = requests["lastStartedAt"].as_f64().expect("lastStartedAt");
    assert_eq!(requests["pending"], false);
    let latency = started - accepted;
    eprintln!(
        "POST /reconcile: the pass started {:.0} ms after the request",
        latency * 1000.0
    );
    assert!(
        (0.0..1.0).contains(&latency),
        "the pass started {latency:.3} s after the request"
    );

    // No second pass from the burst: a request after the pass started was limited.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pass_id(&daemon),
        2,
        "at most one extra pass: {}",
        daemon.logs()
    );
    let (code, body) = call(&daemon, Method::POST, "/reconcile", Some(TOKEN), "");
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        daemon.metric(r#"guardduty_controller_reconcile_requests_total{result="queued"}"#),
        1.0
    );
    let others = daemon.metric(r#"guardduty_controller_reconcile_requests_total{result="joined"}"#)
        + daemon.metric(r#"guardduty_controller_reconcile_requests_total{result="limited"}"#);
    assert_eq!(others, BURST as f64, "99 of the burst and the last request");
    assert_eq!(
        daemon.metric(r#"guardduty_controller_reconcile_requests_total{result="refused"}"#),
        1.0,
        "the request with a body"
    );
}

#[test]
fn requests_are_accepted_again_after_the_minimum_interval() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    // No token configured: the endpoint is open, like /status.
    let daemon = Daemon::start(&sb, &file, &["--reconcile-min-interval", "1s"]);
    assert!(
        daemon.wait_for(LIMIT, |d| pass_id(d) == 1),
        "{}",
        daemon.logs()
    );
    for want in 2..=3 {
        assert!(
            daemon.wait_for(LIMIT, |d| {
                call(d, Method::POST, "/reconcile", None, "").0 == 202
            }),
            "accepted again: {}",
            daemon.logs()
        );
        assert!(
            daemon.wait_for(LIMIT, |d| pass_id(d) == want),
            "pass {want}: {}",
            daemon.logs()
        );
    }
    // The pass converged the fleet, as any pass does.
    let tags = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async { sb.aws("us-east-1").await.managed_tags().await });
    assert_eq!(tags.get("apps").cloned().flatten().as_deref(), Some("true"));
}
