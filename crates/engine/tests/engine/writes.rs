//! A non-idempotent write (`UpdateService(forceNewDeployment)`) against the in-memory
//! cloud, on tokio's paused clock: after an outcome that proves nothing the engine
//! re-reads the service and sends the write again only if no new deployment appeared;
//! a rejection that proves "not applied" is retried (throttle) or reported, without a
//! re-read; the rollout gate hears of the redeploy once.

use crate::support::{aws_error, Call, FakeCloud, RedeployFault};
use gec_aws::ErrorKind;
use gec_engine::{reconcile_target, Clock, Mode, Outcome, PassOptions, Rollouts, TargetPass};
use gec_model::desired::DesiredState;
use gec_model::testing::{self, cluster, detector, observed};

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const MIN: i64 = 60_000;

fn desired() -> DesiredState {
    let text = "version: 1\ntargets: [{region: us-east-1}]\n\
                detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
                clusters: [{name: apps, guardDutyManaged: true}]\n\
                redeploy: {settleTime: 0s, maxConcurrent: 1, maxPerHour: 1}\n";
    testing::desired(text)
}

/// A covered cluster with one Fargate service `api` whose tasks lack the agent.
fn cloud(clock: Clock) -> FakeCloud {
    FakeCloud::new(
        observed()
            .clusters([cluster("apps").tagged("true")])
            .detector(detector().runtime("ENABLED").automation("ENABLED")),
    )
    .with_fleet(clock, MIN, |fleet, now| {
        fleet.add_service("apps", "api", 2, false, true, now - 120 * MIN);
    })
}

fn options(clock: Clock) -> PassOptions {
    PassOptions {
        clock,
        rollouts: Rollouts::default(),
        max_concurrent_targets: 1,
        ..PassOptions::new(Mode::Apply)
    }
}

async fn pass(cloud: &FakeCloud, options: &PassOptions) -> TargetPass {
    let desired = desired();
    reconcile_target(cloud, desired.targets[0].clone(), &desired, options).await
}

/// The service calls of the redeploy, in order: `describe` / `redeploy`.
fn service_calls(cloud: &FakeCloud) -> Vec<&'static str> {
    cloud
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::DescribeService(..) => Some("describe"),
            Call::RedeployService(..) => Some("redeploy"),
            _ => None,
        })
        .collect()
}

fn redeploy_outcome(pass: &TargetPass) -> &Outcome {
    let results: Vec<&Outcome> = pass
        .results
        .iter()
        .filter(|r| r.action.kind() == "redeploy_service")
        .map(|r| &r.outcome)
        .collect();
    assert_eq!(results.len(), 1, "one redeploy result: {:?}", pass.results);
    results[0]
}

fn fault(lag_ms: Option<i64>, kind: ErrorKind) -> RedeployFault {
    RedeployFault {
        lag_ms,
        error: aws_error(kind, "UpdateService"),
    }
}

/// Deployments the service has had, and the id of its PRIMARY one.
fn deployments(cloud: &FakeCloud) -> (u32, String) {
    cloud.fleet(|f| {
        let s = f.service("apps", "api");
        (s.redeploys, s.deployments[0].id.clone())
    })
}

/// Every rollout the gate watches, as (service, deployment id).
fn watched(options: &PassOptions) -> Vec<(String, String)> {
    options
        .rollouts
        .watching()
        .into_iter()
        .map(|w| (w.service, w.deployment_id))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_redeploy_that_was_applied_is_found_by_a_reread_and_not_sent_again() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    cloud.fail_redeploys([fault(Some(0), ErrorKind::Transient)]);
    let options = options(clock);

    let pass = pass(&cloud, &options).await;

    assert_eq!(redeploy_outcome(&pass), &Outcome::Success);
    assert_eq!(
        service_calls(&cloud),
        ["describe", "redeploy", "describe"],
        "read before, one write, one re-read that finds it"
    );
    let (count, primary) = deployments(&cloud);
    assert_eq!(count, 1, "exactly one forced deployment");
    assert_eq!(
        watched(&options),
        [("api".to_owned(), primary)],
        "the gate watches the deployment the re-read found"
    );
}

#[tokio::test(start_paused = true)]
async fn a_redeploy_the_service_holds_past_the_timeout_is_found_within_the_settle_time() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    // Applied 4 s after the call failed: later than the first re-read (about 1 s).
    cloud.fail_redeploys([fault(Some(4_000), ErrorKind::Transient)]);
    let options = options(clock);

    let pass = pass(&cloud, &options).await;

    assert_eq!(redeploy_outcome(&pass), &Outcome::Success);
    let calls = service_calls(&cloud);
    assert_eq!(
        calls.iter().filter(|c| **c == "redeploy").count(),
        1,
        "never sent again: {calls:?}"
    );
    assert!(
        calls.iter().filter(|c| **c == "describe").count() >= 3,
        "re-read until it landed: {calls:?}"
    );
    assert_eq!(deployments(&cloud).0, 1, "exactly one forced deployment");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_redeploy_that_was_not_applied_is_sent_once_more_after_the_rereads() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    cloud.fail_redeploys([fault(None, ErrorKind::Transient)]);
    let options = options(clock);
    let started = tokio::time::Instant::now();

    let pass = pass(&cloud, &options).await;

    assert_eq!(redeploy_outcome(&pass), &Outcome::Success);
    let calls = service_calls(&cloud);
    assert_eq!(calls.first(), Some(&"describe"));
    assert_eq!(
        calls.iter().filter(|c| **c == "redeploy").count(),
        2,
        "one retry: {calls:?}"
    );
    let second = calls.iter().rposition(|c| *c == "redeploy").unwrap_or(0);
    assert!(
        calls[1..second].contains(&"describe"),
        "re-read between the two writes: {calls:?}"
    );
    assert!(
        started.elapsed() >= gec_engine::WriteRetry::default().settle,
        "the retry waited out the settle time"
    );
    let (count, primary) = deployments(&cloud);
    assert_eq!(count, 1, "exactly one forced deployment");
    assert_eq!(watched(&options), [("api".to_owned(), primary)]);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_redeploy_is_retried_without_a_reread() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    cloud.fail_redeploys([fault(None, ErrorKind::Throttled)]);
    let options = options(clock);

    let pass = pass(&cloud, &options).await;

    assert_eq!(redeploy_outcome(&pass), &Outcome::Success);
    assert_eq!(
        service_calls(&cloud),
        ["describe", "redeploy", "redeploy"],
        "a throttle proves the request was rejected"
    );
    assert_eq!(deployments(&cloud).0, 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_redeploy_is_reported_and_never_retried() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    cloud.fail_redeploys([fault(None, ErrorKind::AccessDenied)]);
    let options = options(clock);

    let pass = pass(&cloud, &options).await;

    assert!(
        matches!(redeploy_outcome(&pass), Outcome::Failed(e) if e.kind == ErrorKind::AccessDenied)
    );
    assert_eq!(service_calls(&cloud), ["describe", "redeploy"]);
    assert_eq!(deployments(&cloud).0, 0);
    assert!(watched(&options).is_empty(), "the gate's slot is released");
}

#[tokio::test(start_paused = true)]
async fn the_gate_counts_a_redeploy_found_by_a_reread_once_against_max_per_hour() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = cloud(clock);
    cloud.fleet(|f| f.add_service("apps", "web", 2, false, true, FRIDAY - 120 * MIN));
    cloud.fail_redeploys([fault(Some(0), ErrorKind::Transient)]);
    let options = options(clock);

    // Passes every 10 s for 10 minutes: the first redeploy rolls (1 minute) and
    // completes; maxPerHour: 1 holds the second service for the rest of the hour.
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    while tokio::time::Instant::now() < end {
        let p = pass(&cloud, &options).await;
        assert!(p.error.is_none(), "{:?}", p.error);
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }

    let redeploys: Vec<String> = cloud
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::RedeployService(_, s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        redeploys.len(),
        1,
        "one write in the hour, counted once: {redeploys:?}"
    );
    let total: u32 = cloud.fleet(|f| f.services.values().map(|s| s.redeploys).sum());
    assert_eq!(total, 1);
}
