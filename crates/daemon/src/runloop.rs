//! The daemon's side of the reconcile loop ([`gec_engine::Driver`]): what starts a round
//! (the jittered timer or the rollout requeue the engine asks for, a file change, SIGHUP,
//! an `s3://` poll), the last known good desired state and its generation, and what a
//! finished round updates (metrics and `/status`). The engine decides which targets are
//! due, backs off failing ones, and stops writing on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gec_aws::AwsContext;
use gec_engine::{Context, Driver, Host, Mode, Report, Round, Settings, TargetPass};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{error, info, info_span, warn};

use crate::audit::Auditor;
use crate::bus::FLUSH_DEADLINE;
use crate::http::Shared;
use crate::metrics::PassResult;
use crate::source::{Location, Refresh, Source};
use crate::status::unix_secs;

/// Why the loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Something changed in the desired-state file's folder.
    File,
    /// SIGHUP.
    Hangup,
    /// `POST /reconcile` (rate-limited in [`crate::reconcile`]): what SIGHUP does.
    Request,
    /// Time to poll an `s3://` desired state.
    Poll,
}

/// Quiet time after a file event before reading the file, so a file written in several
/// steps is read once it is complete.
pub const DEBOUNCE: Duration = Duration::from_millis(250);
/// Retry delay while no valid desired state has ever been loaded.
pub const NO_STATE_RETRY: Duration = Duration::from_secs(5);

/// The loop's fixed settings.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Plan only (`--dry-run`).
    pub dry_run: bool,
    /// Targets reconciled at once.
    pub max_concurrent_targets: usize,
    /// How often an `s3://` desired state is polled (files are watched instead).
    pub config_poll: Duration,
    /// How often passes come while redeploys roll (see [`gec_engine::Requeue`]), instead
    /// of every `reconcile.interval`.
    pub rollout_poll: Duration,
    /// Ceilings of the desired state's safety limits.
    pub ceilings: gec_model::plan::Ceilings,
    /// With a lease: writes start only while it permits.
    pub fence: gec_engine::Fence,
    /// `--metrics-emf`: each pass's key metrics as EMF lines on stdout.
    pub emf: Option<crate::emf::Emf>,
}

/// Runs until `shutdown` completes. Returns whether the last pass was abandoned with a
/// call in flight (see [`gec_engine::Driver::run`]).
pub async fn run_loop(
    shared: Arc<Shared>,
    ctx: AwsContext,
    source: Source,
    triggers: UnboundedReceiver<Trigger>,
    settings: LoopSettings,
    auditor: Auditor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> bool {
    let engine = Context {
        conflicts: shared.conflicts.clone(),
        fence: settings.fence.clone(),
        ..Context::default()
    };
    let stop = engine.stop.clone();
    let on_shutdown = tokio::spawn(async move {
        shutdown.await;
        stop.stop();
    });
    // Followers plan too: only the replica that may write reports incidents.
    let auditor = auditor.with_fence(settings.fence.clone());
    let polled = matches!(source.location(), Location::Object(_));
    let mut host = DaemonHost {
        shared,
        source,
        triggers,
        config_poll: settings.config_poll,
        next_poll: polled.then(|| Instant::now() + settings.config_poll),
        generation: 0,
        auditor,
        emf: settings.emf.clone(),
    };
    let driver = Driver::new(
        ctx,
        engine,
        Settings {
            mode: if settings.dry_run {
                Mode::Plan
            } else {
                Mode::Apply
            },
            plan: gec_model::PlanOptions {
                ceilings: settings.ceilings,
                ..gec_model::PlanOptions::default()
            },
            max_concurrent_targets: settings.max_concurrent_targets,
            rollout_poll: settings.rollout_poll,
        },
    );
    let abandoned = driver.run(&mut host).await;
    on_shutdown.abort();
    if let Some(sender) = host.auditor.take_sender() {
        sender.flush(FLUSH_DEADLINE).await;
    }
    abandoned
}

/// The daemon's triggers, desired state and status.
struct DaemonHost {
    shared: Arc<Shared>,
    source: Source,
    triggers: UnboundedReceiver<Trigger>,
    config_poll: Duration,
    /// When an `s3://` desired state is next polled; `None` for a file.
    next_poll: Option<Instant>,
    /// Bumped on each successful reload.
    generation: u64,
    /// The audit records of each finished round.
    auditor: Auditor,
    /// `--metrics-emf`.
    emf: Option<crate::emf::Emf>,
}

impl Host for DaemonHost {
    async fn next_round(&mut self, due: Option<Instant>) -> Option<Round> {
        // The first round comes at once; later ones when the engine wants them.
        let mut wake = due.unwrap_or_else(Instant::now);
        loop {
            let poll = self.next_poll;
            let first = tokio::select! {
                biased;
                Some(t) = self.triggers.recv() => Some(t),
                () = sleep_until(wake) => None,
                () = sleep_until(poll.unwrap_or(wake)), if poll.is_some() => {
                    self.next_poll = Some(Instant::now() + self.config_poll);
                    Some(Trigger::Poll)
                }
            };
            if first == Some(Trigger::File) {
                sleep(DEBOUNCE).await;
            }
            // Everything that arrived meanwhile is folded into this one round.
            // A request for a pass now does what SIGHUP does.
            let forced = |t: Option<Trigger>| matches!(t, Some(Trigger::Hangup | Trigger::Request));
            let mut hangup = forced(first);
            while let Ok(t) = self.triggers.try_recv() {
                hangup |= forced(Some(t));
            }
            let timer = first.is_none();
            let refresh = self.reload().await;
            if !timer && !hangup && refresh != Refresh::Loaded {
                continue; // a folder event that did not change the desired state
            }
            let Some(loaded) = self.source.good() else {
                warn!(file = %self.source.location(), "no valid desired state yet: nothing is written; retrying");
                wake = Instant::now() + NO_STATE_RETRY;
                continue;
            };
            if refresh == Refresh::Loaded {
                self.generation += 1;
            }
            // Whatever woke it, this round is the pass a waiting request asked for.
            self.shared.reconcile.round_started();
            // A timer round skips targets in backoff; a new desired state or SIGHUP tries
            // all.
            return Some(Round {
                desired: Arc::clone(&loaded.desired),
                generation: self.generation,
                every_target: !timer || refresh == Refresh::Loaded,
            });
        }
    }

    fn finished(&mut self, round: &Round, report: Report) {
        if report.passes.is_empty() {
            return; // no target was due
        }
        let desired = &round.desired;
        let sha256 = self.source.good().map(|g| g.sha256.clone());
        self.auditor.round(&report, sha256.as_deref());
        let result = result_of(&report.passes, desired.suspend);
        let now = SystemTime::now();
        let reached_aws = report.passes.iter().any(|p| p.plan.is_some());
        let pending: usize = report
            .passes
            .iter()
            .filter_map(TargetPass::pending)
            .map(|p| p.actions.len())
            .sum();
        // In the pass's span, as the engine's logs of that pass are: scripts and the scale
        // bench find a pass's line by `span.pass_id`.
        info_span!("pass", pass_id = report.pass_id).in_scope(|| {
            info!(
                result = result.as_str(),
                seconds = report.seconds,
                pending,
                "pass finished"
            );
        });
        let shared = &self.shared;
        let previous = shared
            .status
            .write()
            .map(|mut s| std::mem::take(&mut s.passes))
            .unwrap_or_default();
        let passes = carry_over(previous, report.passes, &report.targets);
        shared
            .metrics
            .pass(&passes, result, report.seconds, unix_secs(now));
        shared
            .metrics
            .rollouts(report.in_progress, report.halted.is_some());
        if let Some(emf) = &self.emf {
            let summary = crate::emf::Summary {
                result,
                seconds: report.seconds,
                in_progress: report.in_progress,
                halted: report.halted.is_some(),
                leader: shared.metrics.leader.get() == 1,
            };
            emf.pass(&passes, summary, shared);
        }
        if let Ok(mut status) = shared.status.write() {
            status.pass_id = report.pass_id;
            status.last_pass_at = Some(now);
            status.last_result = Some(result.as_str());
            status.reached_aws = reached_aws;
            status.passes = passes;
            status.watching = report.watching;
            status.halted = report.halted;
        }
        shared.publish_conflicts();
    }
}

impl DaemonHost {
    /// Re-reads the desired state, counts and logs a reload, and updates the status.
    async fn reload(&mut self) -> Refresh {
        let source = &mut self.source;
        let shared = &self.shared;
        let refresh = source.refresh().await;
        let now = SystemTime::now();
        match refresh {
            Refresh::Unchanged => return refresh,
            Refresh::Loaded => {
                shared.metrics.config_reload(true, unix_secs(now));
                info!(file = %source.location(), sha256 = source.good().map(|g| g.sha256.as_str()), "desired state loaded");
            }
            Refresh::Failed => {
                shared.metrics.config_reload(false, unix_secs(now));
                let kept = source.good().map(|g| g.sha256.as_str());
                error!(
                    error = source.error(),
                    last_good_sha256 = kept,
                    "desired state rejected; the last good one stays in force"
                );
            }
        }
        if let Ok(mut status) = shared.status.write() {
            status.sha256 = source.good().map(|g| g.sha256.clone());
            status.loaded_at = source.good().map(|g| g.loaded_at);
            status.config_error = source.error().map(str::to_owned);
        }
        refresh
    }
}

/// This pass's results, plus the last known result of targets it skipped (in backoff),
/// in the desired state's target order.
fn carry_over(
    previous: Vec<TargetPass>,
    fresh: Vec<TargetPass>,
    order: &[gec_model::desired::Target],
) -> Vec<TargetPass> {
    let mut by_target: std::collections::HashMap<_, _> = previous
        .into_iter()
        .map(|mut p| {
            p.results.clear();
            (p.target.clone(), p)
        })
        .collect();
    for p in fresh {
        by_target.insert(p.target.clone(), p);
    }
    order.iter().filter_map(|t| by_target.remove(t)).collect()
}

fn result_of(passes: &[TargetPass], suspended: bool) -> PassResult {
    if passes
        .iter()
        .any(|p| p.error.is_some() || p.failed_actions() > 0)
    {
        PassResult::Error
    } else if passes
        .iter()
        .any(|p| p.plan.as_ref().is_some_and(|pl| pl.refused.is_some()))
    {
        PassResult::Refused
    } else if suspended {
        PassResult::Suspended
    } else {
        PassResult::Success
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::testing::{pass, redeploy, tag, target};
    use gec_engine::driver::{next_delay, rollout_requeue as rollout_wake, MIN_ROLLOUT_POLL};
    use gec_engine::rollout::Watch;
    use gec_engine::{ActionResult, Outcome, Requeue as RedeployWake, Skip, TargetPass, Wait};
    use gec_model::{Action, TargetPlan};

    const SETTLING: Skip = Skip::Gate(Wait::Settling);
    const MAX_CONCURRENT: Skip = Skip::Gate(Wait::MaxConcurrent);
    const ROLLING: Skip = Skip::Gate(Wait::Rolling);
    const WINDOW: Skip = Skip::Gate(Wait::Window);
    const MAX_PER_HOUR: Skip = Skip::Gate(Wait::MaxPerHour);
    const HALTED: Skip = Skip::Gate(Wait::Halted);
    const AFTER_FAILURE: Skip = Skip::AfterFailure;

    fn until_or_poll(wake: RedeployWake, now_ms: i64, poll: Duration) -> Duration {
        wake.delay(now_ms, poll).unwrap_or(poll)
    }

    const EAST: &str = "us-east-1";

    fn watch(region: &str) -> Watch {
        Watch {
            target: target(region).label(),
            cluster_arn: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
            cluster: "apps".into(),
            service: "api".into(),
            deployment_id: "ecs-svc/1".into(),
            codedeploy: false,
        }
    }

    fn skipped(why: Skip) -> Vec<TargetPass> {
        vec![pass(
            EAST,
            TargetPlan::default(),
            vec![(redeploy(EAST, "apps", "web"), Outcome::Skipped(why))],
        )]
    }

    #[test]
    fn rollouts_move_while_one_is_watched_or_a_redeploy_waits_for_something_that_ends_soon() {
        use RedeployWake::{At, Never, Poll};
        let targets = [target(EAST)];
        let quiet = [pass(EAST, TargetPlan::default(), vec![])];
        assert_eq!(rollout_wake(&quiet, &[], &targets, true), Never);
        assert_eq!(rollout_wake(&quiet, &[watch(EAST)], &targets, true), Poll);
        assert_eq!(
            rollout_wake(&quiet, &[watch("eu-west-1")], &targets, true),
            Never,
            "a watch of a target that left the desired state settles never: no fast poll"
        );
        for (why, wake) in [(SETTLING, At(0)), (MAX_CONCURRENT, Poll), (ROLLING, Poll)] {
            assert_eq!(
                rollout_wake(&skipped(why), &[], &targets, true),
                wake,
                "{why}"
            );
            assert_eq!(
                rollout_wake(&skipped(why), &[], &targets, false),
                Never,
                "without waitForSteadyState: {why}"
            );
        }
        for why in [WINDOW, MAX_PER_HOUR, HALTED, AFTER_FAILURE] {
            assert_eq!(
                rollout_wake(&skipped(why), &[], &targets, true),
                Never,
                "{why}"
            );
        }
        let tag_skipped = [pass(
            EAST,
            TargetPlan::default(),
            vec![(tag(EAST, "apps"), Outcome::Skipped(SETTLING))],
        )];
        assert_eq!(
            rollout_wake(&tag_skipped, &[], &targets, true),
            Never,
            "only redeploys count"
        );
        let started = [pass(
            EAST,
            TargetPlan::default(),
            vec![(redeploy(EAST, "apps", "web"), Outcome::Success)],
        )];
        assert_eq!(
            rollout_wake(&started, &[], &targets, true),
            Never,
            "a started rollout counts through the watch list"
        );
        assert_eq!(rollout_wake(&[], &[watch(EAST)], &targets, false), Never);
    }

    /// Redeploys that wait only for their settle time wake the loop when the first one
    /// may start, not every poll; one that waits for anything that can end sooner, or
    /// whose settle time is unknown, polls.
    #[test]
    fn settling_redeploys_wake_the_loop_when_the_earliest_settle_time_ends() {
        use RedeployWake::{At, Poll};
        let targets = [target(EAST)];
        let settling = |service: &str, not_before_ms: Option<i64>| {
            let mut action = redeploy(EAST, "apps", service);
            if let Action::RedeployService {
                not_before_ms: nb, ..
            } = &mut action
            {
                *nb = not_before_ms;
            }
            (action, Outcome::Skipped(SETTLING))
        };
        let passes = |results| vec![pass(EAST, TargetPlan::default(), results)];
        let two = passes(vec![
            settling("web", Some(400_000)),
            settling("api", Some(300_000)),
        ]);
        assert_eq!(rollout_wake(&two, &[], &targets, true), At(300_000));
        let poll = Duration::from_secs(15);
        assert_eq!(
            until_or_poll(At(300_000), 0, poll),
            Duration::from_secs(300),
            "five minutes of settle time: one pass when it ends, not twenty polls"
        );
        assert_eq!(
            until_or_poll(At(300_000), 299_000, poll),
            poll,
            "never sooner than the poll interval"
        );
        let unknown = passes(vec![settling("web", Some(400_000)), settling("api", None)]);
        assert_eq!(rollout_wake(&unknown, &[], &targets, true), Poll);
        let mut mixed = two.clone();
        mixed[0].results.push(ActionResult {
            action: redeploy(EAST, "apps", "worker"),
            outcome: Outcome::Skipped(MAX_CONCURRENT),
        });
        assert_eq!(rollout_wake(&mixed, &[], &targets, true), Poll);
        assert_eq!(
            rollout_wake(&two, &[watch(EAST)], &targets, true),
            Poll,
            "a watched rollout is polled whatever else waits"
        );
    }

    #[test]
    fn the_next_pass_comes_after_the_rollout_poll_while_rollouts_move() {
        let interval = Duration::from_secs(300);
        let poll = Duration::from_secs(15);
        assert_eq!(next_delay(interval, None), interval);
        assert_eq!(next_delay(interval, Some(poll)), poll);
        assert_eq!(
            next_delay(Duration::from_secs(10), Some(poll)),
            Duration::from_secs(10),
            "never later than the interval"
        );
        assert_eq!(
            next_delay(interval, Some(Duration::ZERO)),
            MIN_ROLLOUT_POLL,
            "a zero poll does not spin"
        );
    }
}
