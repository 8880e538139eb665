//! The rollout engine's guards (DESIGN §6) against the in-memory cloud, on tokio's paused
//! clock: hours of passes run in milliseconds and nothing depends on wall time. Each test
//! runs daemon-like passes every `TICK` and checks what the fake cloud saw.

use std::sync::Arc;
use std::time::Duration;

use crate::support::driving::{Controller, FakeClouds};
use crate::support::{covered_apps, FakeCloud};
use gec_engine::{Clock, Mode, Outcome, Skip, TargetPass, Wait};
use gec_model::desired::DesiredState;
use gec_model::plan::HoldReason;
use gec_model::testing::{self, cluster, detector, observed};
use gec_model::Action;

const HALTED: Skip = Skip::Gate(Wait::Halted);
const MAX_PER_HOUR: Skip = Skip::Gate(Wait::MaxPerHour);
const SETTLING: Skip = Skip::Gate(Wait::Settling);
const WINDOW: Skip = Skip::Gate(Wait::Window);

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const MIN: i64 = 60_000;
const TICK: Duration = Duration::from_secs(10);
/// A rollout takes a minute.
const ROLLOUT_MS: i64 = MIN;

fn desired(redeploy: &str) -> DesiredState {
    let text = format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters: [{{name: apps, guardDutyManaged: true}}]\n\
         redeploy: {{settleTime: 0s, {redeploy}}}\n"
    );
    testing::desired(&text)
}

/// Rounds of the engine's loop every `TICK` for `total`; every pass, in order.
async fn run_for(
    c: &Controller,
    cloud: &Arc<FakeCloud>,
    desired: &DesiredState,
    total: Duration,
) -> Vec<TargetPass> {
    let reports = c
        .run(
            FakeClouds::one(Arc::clone(cloud)),
            desired,
            TICK,
            total,
            false,
        )
        .await;
    let passes: Vec<TargetPass> = reports.into_iter().flat_map(|r| r.passes).collect();
    for pass in &passes {
        assert!(pass.error.is_none(), "{:?}", pass.error);
    }
    passes
}

fn waits(passes: &[TargetPass]) -> Vec<Skip> {
    passes
        .iter()
        .flat_map(|p| &p.results)
        .filter_map(|r| match r.outcome {
            Outcome::Skipped(why) => Some(why),
            _ => None,
        })
        .collect()
}

fn without_agent(cloud: &FakeCloud) -> usize {
    cloud.fleet(|f| {
        f.services
            .values()
            .flat_map(|s| &s.tasks)
            .filter(|t| !t.has_agent)
            .count()
    })
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_is_never_exceeded_and_every_service_converges_once() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 6);
    let c = Controller::new(clock);
    run_for(
        &c,
        &cloud,
        &desired("maxConcurrent: 2"),
        Duration::from_secs(20 * 60),
    )
    .await;
    let max = cloud.fleet(|f| f.max_in_progress);
    assert_eq!(
        max, 2,
        "at most (and, with 6 waiting, exactly) 2 rollouts at once"
    );
    let mut done = cloud.redeployed();
    done.sort();
    assert_eq!(
        done,
        ["svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5"],
        "each once"
    );
    assert_eq!(without_agent(&cloud), 0);
}

#[tokio::test(start_paused = true)]
async fn max_per_hour_bounds_the_redeploys_of_any_hour() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 5);
    let c = Controller::new(clock);
    let d = desired("maxConcurrent: 5, maxPerHour: 2");
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(50 * 60)).await;
    assert_eq!(cloud.redeployed().len(), 2, "two in the first hour");
    assert!(waits(&passes).contains(&MAX_PER_HOUR));
    run_for(&c, &cloud, &d, Duration::from_secs(15 * 60)).await;
    assert_eq!(
        cloud.redeployed().len(),
        4,
        "two more once the first hour has passed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_window_starts_nothing_and_an_open_one_does() {
    let clock = Clock::tokio_at(FRIDAY + 12 * 60 * MIN); // Friday 12:00
    let cloud = covered_apps(clock, 2);
    let c = Controller::new(clock);
    let closed = desired("windows: [{days: [fri], start: '13:00', end: '14:00'}]");
    let passes = run_for(&c, &cloud, &closed, Duration::from_secs(59 * 60)).await;
    assert!(cloud.redeployed().is_empty(), "nothing starts before 13:00");
    assert!(waits(&passes).iter().all(|w| *w == WINDOW));
    run_for(&c, &cloud, &closed, Duration::from_secs(5 * 60)).await;
    assert_eq!(cloud.redeployed().len(), 2, "the window opened at 13:00");
}

#[tokio::test(start_paused = true)]
async fn excluded_and_ec2_services_and_standalone_tasks_are_never_touched() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 1);
    cloud.fleet(|f| {
        f.add_service("apps", "batch-nightly", 1, false, true, FRIDAY - 120 * MIN);
        f.add_service("apps", "on-ec2", 2, false, false, FRIDAY - 120 * MIN);
        f.add_standalone("apps", 3, FRIDAY - 120 * MIN);
    });
    let standalone_before = cloud.fleet(|f| f.standalone.clone());
    let c = Controller::new(clock);
    let passes = run_for(
        &c,
        &cloud,
        &desired("excludeServices: ['batch-*']"),
        Duration::from_secs(10 * 60),
    )
    .await;
    assert_eq!(cloud.redeployed(), ["svc-0"]);
    assert_eq!(
        cloud.fleet(|f| f.standalone.clone()),
        standalone_before,
        "never stopped"
    );
    let last = passes
        .last()
        .expect("passes ran")
        .plan
        .as_ref()
        .expect("a plan");
    let held: Vec<(&str, HoldReason)> = last
        .held
        .iter()
        .map(|h| (h.service.as_str(), h.reason))
        .collect();
    assert_eq!(
        held,
        [("batch-nightly", HoldReason::Excluded)],
        "EC2 tasks are not Fargate tasks: never counted, never redeployed"
    );
    let tasks = last.clusters[0].tasks.expect("tasks read");
    assert_eq!(
        tasks.standalone_tasks_without_agent, 3,
        "standalone tasks are reported"
    );
}

#[tokio::test(start_paused = true)]
async fn settle_time_runs_from_the_moment_coverage_turns_on() {
    let clock = Clock::tokio_at(FRIDAY);
    // Excluded now; the desired state includes it: the tag flips in the first pass.
    let fake = Arc::new(
        FakeCloud::new(
            observed()
                .clusters([cluster("apps").tagged("false")])
                .detector(detector().runtime("ENABLED").automation("ENABLED")),
        )
        .with_fleet(clock, ROLLOUT_MS, |f, now| {
            f.add_service("apps", "api", 2, false, true, now - 120 * MIN)
        }),
    );
    let d = {
        let text = "version: 1\ntargets: [{region: us-east-1}]\n\
                    clusters: [{name: apps, guardDutyManaged: true}]\n\
                    redeploy: {settleTime: 5m}\n";
        testing::desired(text)
    };
    let c = Controller::new(clock);
    let first = c.pass(&fake, &d).await;
    assert_eq!(fake.tag_of("apps").as_deref(), Some("true"));
    assert!(waits(&[first]).contains(&SETTLING));
    run_for(&c, &fake, &d, Duration::from_secs(4 * 60 + 50)).await;
    assert!(
        fake.redeployed().is_empty(),
        "not before 5 minutes of coverage"
    );
    run_for(&c, &fake, &d, Duration::from_secs(30)).await;
    assert_eq!(fake.redeployed(), ["api"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_rollout_halts_redeploys_until_the_desired_state_changes() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 3);
    cloud.fleet(|f| f.service("apps", "svc-0").fail_next = true);
    let c = Controller::new(clock);
    let d = desired("maxConcurrent: 1, stopOnFailure: true");
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(3 * 60 * 60)).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0"],
        "nothing after the FAILED rollout"
    );
    assert!(waits(&passes).contains(&HALTED));
    assert!(c.ctx.rollouts.halted().is_some());
    let edited = desired("maxConcurrent: 1, stopOnFailure: true, maxPerHour: 19");
    run_for(&c, &cloud, &edited, Duration::from_secs(10 * 60)).await;
    let mut all = cloud.redeployed();
    all.sort();
    assert_eq!(
        all,
        ["svc-0", "svc-0", "svc-1", "svc-2"],
        "a new desired state resumes, svc-0 (past retryAfter) included"
    );
    assert_eq!(without_agent(&cloud), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_stops_a_redeploy_storm_when_new_tasks_still_lack_the_agent() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 1);
    cloud.fleet(|f| {
        // A healthy service proves coverage is on; `svc-0` comes up without the agent.
        f.add_service("apps", "healthy", 1, true, true, FRIDAY - 100 * MIN);
        f.service("apps", "svc-0").agent_missing = true;
    });
    let c = Controller::new(clock);
    let d = desired("retryAfter: 1h");
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(55 * 60)).await;
    assert_eq!(cloud.redeployed(), ["svc-0"], "once, not every pass");
    let last = passes.last().and_then(|p| p.plan.as_ref()).expect("a plan");
    assert!(
        last.held
            .iter()
            .any(|h| matches!(h.reason, HoldReason::RetryAfter { .. })),
        "{:?}",
        last.held
    );
    run_for(&c, &cloud, &d, Duration::from_secs(10 * 60)).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0", "svc-0"],
        "retried after an hour"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_controller_does_not_redeploy_a_rolling_service_again() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 3);
    let d = desired("maxConcurrent: 1");
    let first = Controller::new(clock);
    first.pass(&cloud, &d).await;
    assert_eq!(cloud.redeployed(), ["svc-0"]);
    drop(first); // the crash: all memory is gone
    tokio::time::sleep(TICK).await;
    let second = Controller::new(clock);
    let passes = run_for(&second, &cloud, &d, Duration::from_secs(10 * 60)).await;
    let mut all = cloud.redeployed();
    all.sort();
    assert_eq!(
        all,
        ["svc-0", "svc-1", "svc-2"],
        "svc-0 was not redeployed twice"
    );
    assert!(
        cloud.fleet(|f| f.max_in_progress) <= 1,
        "the rolling one counted against maxConcurrent"
    );
    assert_eq!(without_agent(&cloud), 0);
    let first_pass = &passes[0];
    assert!(
        first_pass
            .results
            .iter()
            .all(|r| r.outcome != Outcome::Success),
        "nothing started while svc-0 was still rolling"
    );
}

#[tokio::test(start_paused = true)]
async fn plan_mode_and_suspend_start_no_redeploy() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 2);
    let c = Controller::new(clock);
    let mut planner = Controller::new(clock);
    planner.settings.mode = Mode::Plan;
    let plan = planner.pass(&cloud, &desired("")).await;
    let planned: Vec<&str> = plan
        .plan
        .as_ref()
        .expect("a plan")
        .actions
        .iter()
        .filter(|a| matches!(a, Action::RedeployService { .. }))
        .map(Action::kind)
        .collect();
    assert_eq!(planned, ["redeploy_service", "redeploy_service"]);
    let text = "version: 1\ntargets: [{region: us-east-1}]\nsuspend: true\n\
                clusters: [{name: apps, guardDutyManaged: true}]\nredeploy: {settleTime: 0s}\n";
    let suspended = testing::desired(text);
    run_for(&c, &cloud, &suspended, Duration::from_secs(60)).await;
    assert!(cloud.redeployed().is_empty());
}

/// The engine dates a loss of coverage as it dates a turn-on: the moment it saw the
/// turn-off (`coverage_turn_off_seen`), else when it first saw the cluster off; coverage
/// on again forgets it.
#[test]
fn the_engine_remembers_when_it_saw_coverage_turn_off() {
    use gec_engine::Rollouts;
    let at = |tag: &str| {
        observed()
            .with(cluster("apps").tagged(tag))
            .detector(detector().runtime("ENABLED").automation("DISABLED"))
    };
    let seen = |o: &gec_model::ObservedTarget| {
        let c = &o.clusters[0];
        (c.uncovered_since_ms, c.coverage_turn_off_seen)
    };
    let rollouts = Rollouts::default();
    let mut o = at("true");
    rollouts.annotate(&mut o, 1_000);
    assert_eq!(seen(&o), (None, false), "covered");
    let mut o = at("false");
    rollouts.annotate(&mut o, 5_000);
    assert_eq!(seen(&o), (Some(5_000), true), "the turn-off, seen");
    rollouts.annotate(&mut o, 9_000);
    assert_eq!(seen(&o), (Some(5_000), true), "kept while off");
    let mut o = at("true");
    rollouts.annotate(&mut o, 10_000);
    let mut o = at("false");
    rollouts.annotate(&mut o, 12_000);
    assert_eq!(seen(&o), (Some(12_000), true), "a new loss, a new date");

    let fresh = Rollouts::default();
    let mut o = at("false");
    fresh.annotate(&mut o, 3_000);
    assert_eq!(
        seen(&o),
        (Some(3_000), false),
        "first sight: not a turn-off it saw"
    );
}
