//! The engine's one loop ([`gec_engine::Driver`]) on tokio's paused clock, against
//! in-memory clouds: backoff of a failing target, the requeue that rollouts ask for, the
//! desired-state generation that alone lifts a `stopOnFailure` halt, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::support::driving::{Controller, FakeClouds};
use crate::support::{aws_error, covered_apps, Call, FakeCloud};
use gec_aws::ErrorKind;
use gec_engine::{Clock, Host, Report, Requeue, Round, Skip, Wait};
use gec_model::desired::DesiredState;
use gec_model::testing::{self, cluster, detector, observed, observed_in};
use tokio::time::Instant;

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";

fn desired(redeploy: &str) -> DesiredState {
    let text = format!(
        "version: 1\ntargets: [{{region: {EAST}}}, {{region: {WEST}}}]\n\
         reconcile: {{interval: 5m, jitter: 0}}\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters: [{{name: apps, guardDutyManaged: true}}]\n\
         redeploy: {{settleTime: 0s, {redeploy}}}\n"
    );
    testing::desired(&text)
}

/// eu-west-1, whose every observation is throttled.
fn failing_west() -> Arc<FakeCloud> {
    let west = Arc::new(FakeCloud::new(observed_in(WEST)));
    west.fail_observe_after(0, aws_error(ErrorKind::Throttled, "ListClusters"));
    west
}

fn observations(cloud: &FakeCloud) -> usize {
    cloud
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Observe(_)))
        .count()
}

fn reconciled(report: &Report, region: &str) -> bool {
    report.passes.iter().any(|p| p.target.region == region)
}

/// Issue 12: the daemon used to hand the engine a desired state filtered to the targets
/// not in backoff, and the gate fingerprinted it, so a target going in or out of backoff
/// looked like a new desired state and lifted the halt (on the old code this test saw
/// `["svc-0", "svc-1", "svc-2", "svc-0"]`). Now only a new generation lifts it.
#[tokio::test(start_paused = true)]
async fn a_halt_holds_while_a_target_goes_in_and_out_of_backoff_until_the_desired_state_changes() {
    let clock = Clock::tokio_at(FRIDAY);
    let east = covered_apps(clock, 3);
    east.fleet(|f| f.service("apps", "svc-0").fail_next = true);
    let west = failing_west();
    let clouds = FakeClouds::by_region([(EAST, Arc::clone(&east)), (WEST, Arc::clone(&west))]);
    let c = Controller::new(clock);
    let d = desired("maxConcurrent: 1, stopOnFailure: true");
    let reports = c
        .run(
            clouds.clone(),
            &d,
            Duration::from_secs(30),
            Duration::from_secs(3 * 3600),
            true,
        )
        .await;
    let west_rounds = reports.iter().filter(|r| reconciled(r, WEST)).count();
    assert!(
        west_rounds > 3 && west_rounds < reports.len(),
        "eu-west-1 went in and out of backoff: in {west_rounds} of {} rounds",
        reports.len()
    );
    assert_eq!(
        east.redeployed(),
        ["svc-0"],
        "nothing after the FAILED rollout"
    );
    assert!(
        c.ctx.rollouts.halted().is_some(),
        "still halted after 3 hours"
    );
    let halted = reports
        .iter()
        .flat_map(|r| &r.passes)
        .flat_map(|p| &p.results)
        .filter(|r| r.outcome == gec_engine::Outcome::Skipped(Skip::Gate(Wait::Halted)))
        .count();
    assert!(halted > 0, "the gate said why");

    let edited = desired("maxConcurrent: 1, stopOnFailure: true, maxPerHour: 19");
    c.run(
        clouds,
        &edited,
        Duration::from_secs(30),
        Duration::from_secs(10 * 60),
        true,
    )
    .await;
    let mut all = east.redeployed();
    all.sort();
    assert_eq!(
        all,
        ["svc-0", "svc-0", "svc-1", "svc-2"],
        "a new desired state resumes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_target_backs_off_while_the_others_pass_every_round() {
    let clock = Clock::tokio_at(FRIDAY);
    let east = covered_apps(clock, 0);
    let west = failing_west();
    let clouds = FakeClouds::by_region([(EAST, Arc::clone(&east)), (WEST, Arc::clone(&west))]);
    let c = Controller::new(clock);
    let reports = c
        .run(
            clouds,
            &desired(""),
            Duration::from_secs(10),
            Duration::from_secs(3600),
            true,
        )
        .await;
    assert_eq!(reports.len(), 360, "a round every 10 s for an hour");
    assert_eq!(
        observations(&east),
        360,
        "the healthy target passes every round"
    );
    let tries = observations(&west);
    // 30 s, then doubling with jitter, capped at 30 min: about 7 tries in an hour.
    assert!(
        (4..=10).contains(&tries),
        "the throttled target is tried {tries} times, not 360"
    );
}

#[tokio::test(start_paused = true)]
async fn rounds_requeue_at_the_poll_while_a_rollout_moves_and_at_the_interval_otherwise() {
    let clock = Clock::tokio_at(FRIDAY);
    let east = covered_apps(clock, 1);
    let c = Controller::new(clock);
    let one = |text: &str| {
        let text = format!(
            "version: 1\ntargets: [{{region: {EAST}}}]\nreconcile: {{interval: 5m, jitter: 0}}\n\
             clusters: [{{name: apps, guardDutyManaged: true}}]\nredeploy: {{{text}}}\n"
        );
        testing::desired(&text)
    };
    // A settle time of 3 minutes: the round asks to come back when it ends.
    let settling = one("settleTime: 3m");
    let started = Instant::now();
    let mut driver = gec_engine::Driver::new(
        FakeClouds::one(Arc::clone(&east)),
        c.ctx.clone(),
        c.settings.clone(),
    );
    let round = |d: &DesiredState| Round {
        desired: Arc::new(d.clone()),
        generation: 1,
        every_target: true,
    };
    let report = driver.round(&round(&settling)).await;
    assert!(
        matches!(report.requeue, Requeue::At(_)),
        "{:?}",
        report.requeue
    );
    let wait = report.next - started;
    assert!(
        wait >= Duration::from_secs(170) && wait <= Duration::from_secs(180),
        "back when the settle time ends: {wait:?}"
    );
    // Settled: the redeploy starts and its rollout is watched: poll.
    tokio::time::sleep(Duration::from_secs(181)).await;
    let report = driver.round(&round(&settling)).await;
    assert_eq!(east.redeployed(), ["svc-0"]);
    assert_eq!(report.requeue, Requeue::Poll);
    assert_eq!(report.rolling, 1);
    assert_eq!(report.next - Instant::now(), c.settings.rollout_poll);
    // Rolled out: nothing moves, the interval.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let report = driver.round(&round(&settling)).await;
    assert_eq!(report.requeue, Requeue::Never);
    assert_eq!(report.next - Instant::now(), Duration::from_secs(300));
    // Plan mode never requeues for rollouts.
    let mut planner = Controller::new(clock);
    planner.settings.mode = gec_engine::Mode::Plan;
    let mut plan_driver = gec_engine::Driver::new(
        FakeClouds::one(Arc::clone(&east)),
        planner.ctx.clone(),
        planner.settings.clone(),
    );
    let report = plan_driver.round(&round(&settling)).await;
    assert_eq!(report.requeue, Requeue::Never);
}

/// A host that raises the stop signal from `finished` after `rounds` rounds.
struct StopAfter {
    round: Round,
    rounds: usize,
    seen: usize,
    stop: gec_engine::StopSignal,
    asked_after_stop: bool,
}

impl Host for StopAfter {
    async fn next_round(&mut self, _due: Option<Instant>) -> Option<Round> {
        self.asked_after_stop |= self.stop.is_stopped();
        tokio::time::sleep(Duration::from_secs(10)).await;
        Some(self.round.clone())
    }

    fn finished(&mut self, _round: &Round, _report: Report) {
        self.seen += 1;
        if self.seen == self.rounds {
            self.stop.stop();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_ends_the_loop_after_the_round_in_flight_and_while_it_waits() {
    let clock = Clock::tokio_at(FRIDAY);
    let east = covered_apps(clock, 0);
    let c = Controller::new(clock);
    let round = Round {
        desired: Arc::new(desired("")),
        generation: 1,
        every_target: true,
    };
    let clouds = FakeClouds::by_region([(EAST, Arc::clone(&east)), (WEST, Arc::clone(&east))]);
    let mut host = StopAfter {
        round: round.clone(),
        rounds: 2,
        seen: 0,
        stop: c.ctx.stop.clone(),
        asked_after_stop: false,
    };
    gec_engine::Driver::new(clouds.clone(), c.ctx.clone(), c.settings.clone())
        .run(&mut host)
        .await;
    assert_eq!(host.seen, 2, "no round after the stop");
    assert!(
        !host.asked_after_stop,
        "the host is not asked for another round"
    );

    // A stop while the host waits for its next round ends the wait at once.
    let waiting = Controller::new(clock);
    let stop = waiting.ctx.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(15)).await;
        stop.stop();
    });
    let started = Instant::now();
    let reports = waiting
        .run(
            clouds,
            &desired(""),
            Duration::from_secs(600),
            Duration::from_secs(3600),
            false,
        )
        .await;
    assert_eq!(
        reports.len(),
        1,
        "one round, then the stop came during the wait"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(15));

    // Writes after a stop are skipped, not started.
    let stopped = Controller::new(clock);
    stopped.ctx.stop.stop();
    let untagged = Arc::new(FakeCloud::new(
        observed()
            .clusters([cluster("apps")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    ));
    let pass = stopped.pass(&untagged, &desired("")).await;
    assert!(pass
        .results
        .iter()
        .all(|r| r.outcome == gec_engine::Outcome::Skipped(Skip::Stopping)));
    assert!(untagged.writes().is_empty(), "{:?}", untagged.writes());
}
