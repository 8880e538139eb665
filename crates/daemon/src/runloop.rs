//! The reconcile loop: one pass at a time, on a jittered timer, on file changes and on
//! SIGHUP; last known good desired state; graceful stop. While redeploys roll (with
//! `waitForSteadyState`), timer passes come every rollout poll interval instead.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gec_aws::AwsContext;
use gec_engine::rollout::{Clock, Watch};
use gec_engine::{
    reconcile_all, redeploy_wake, until_or_poll, Mode, PassOptions, RedeployWake, Rollouts,
    StopSignal, TargetPass,
};
use gec_model::desired::Target;
use gec_model::plan::HELD_IN_PROGRESS;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{error, info, info_span, warn, Instrument};

use crate::backoff::Backoff;
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
    /// Time to poll an `s3://` desired state.
    Poll,
}

/// Quiet time after a file event before reading the file, so a file written in several
/// steps is read once it is complete.
pub const DEBOUNCE: Duration = Duration::from_millis(250);
/// Retry delay while no valid desired state has ever been loaded.
pub const NO_STATE_RETRY: Duration = Duration::from_secs(5);
/// How long a pass interrupted by shutdown may take to finish its in-flight call.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The shortest rollout poll interval, whatever the settings say, so a zero cannot make
/// the loop spin.
pub const MIN_ROLLOUT_POLL: Duration = Duration::from_secs(1);

/// The loop's fixed settings.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Plan only (`--dry-run`).
    pub dry_run: bool,
    /// Targets reconciled at once.
    pub max_concurrent_targets: usize,
    /// How often an `s3://` desired state is polled (files are watched instead).
    pub config_poll: Duration,
    /// How often passes come while redeploys roll (see [`rollout_wake`]), instead of
    /// every `reconcile.interval`.
    pub rollout_poll: Duration,
    /// Ceilings of the desired state's safety limits.
    pub ceilings: gec_model::plan::Ceilings,
}

/// Runs until `shutdown` completes.
pub async fn run_loop(
    shared: Arc<Shared>,
    ctx: AwsContext,
    mut source: Source,
    mut triggers: UnboundedReceiver<Trigger>,
    settings: LoopSettings,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let stop = StopSignal::default();
    let mut backoff = Backoff::default();
    let mut next_pass = Instant::now();
    let polled = matches!(source.location(), Location::Object(_));
    let mut next_poll = Instant::now() + settings.config_poll;
    let mut pass_id: u64 = 0;
    // The rollout gate and its memory (when coverage turned on, the rollouts started and
    // watched, FAILED ones): one for the life of the process, shared by every pass.
    let rollouts = Rollouts::default();
    loop {
        let first = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(t) = triggers.recv() => Some(t),
            () = sleep_until(next_pass) => None,
            () = sleep_until(next_poll), if polled => {
                next_poll = Instant::now() + settings.config_poll;
                Some(Trigger::Poll)
            }
        };
        if first == Some(Trigger::File) {
            sleep(DEBOUNCE).await;
        }
        // Everything that arrived meanwhile is folded into this one pass.
        let mut hangup = first == Some(Trigger::Hangup);
        while let Ok(t) = triggers.try_recv() {
            hangup |= t == Trigger::Hangup;
        }
        let timer = first.is_none();
        let refresh = reload(&shared, &mut source).await;
        if !timer && !hangup && refresh != Refresh::Loaded {
            continue; // a folder event that did not change the desired state
        }
        let Some(loaded) = source.good().cloned() else {
            warn!(file = %source.location(), "no valid desired state yet: nothing is written; retrying");
            next_pass = Instant::now() + NO_STATE_RETRY;
            continue;
        };
        // A timer pass skips targets in backoff; a new desired state or SIGHUP tries all.
        backoff.retain(&loaded.desired.targets);
        // Targets that left the desired state leave no clients, credentials, caches or
        // rollout memory behind: a fleet whose accounts come and go stays the same size.
        ctx.retain(&loaded.desired.targets);
        rollouts.retain(&loaded.desired.targets);
        let mut due = (*loaded.desired).clone();
        if timer && refresh != Refresh::Loaded {
            let now = Instant::now();
            due.targets.retain(|t| backoff.is_due(t, now));
        }
        if due.targets.is_empty() {
            next_pass = next_wake(&loaded.desired, &backoff, None);
            continue;
        }
        pass_id += 1;
        let options = PassOptions {
            max_concurrent_targets: settings.max_concurrent_targets,
            plan: gec_model::PlanOptions {
                ceilings: settings.ceilings,
                ..gec_model::PlanOptions::default()
            },
            stop: stop.clone(),
            rollouts: rollouts.clone(),
            ..PassOptions::new(if settings.dry_run {
                Mode::Plan
            } else {
                Mode::Apply
            })
        };
        let started = Instant::now();
        let span = info_span!("pass", pass_id);
        let pass = reconcile_all(&ctx, Arc::new(due), options).instrument(span.clone());
        tokio::pin!(pass);
        let passes = tokio::select! {
            passes = &mut pass => passes,
            () = &mut shutdown => {
                stop.stop();
                info!(pass_id, "shutting down: no new writes; waiting for the in-flight call");
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut pass).await.is_err() {
                    warn!(pass_id, "abandoned the in-flight call after {SHUTDOWN_GRACE:?}");
                }
                break;
            }
        };
        let result = result_of(&passes, loaded.desired.suspend);
        let seconds = started.elapsed().as_secs_f64();
        let now = SystemTime::now();
        let reached_aws = passes.iter().any(|p| p.plan.is_some());
        let pending: usize = passes
            .iter()
            .filter_map(TargetPass::pending)
            .map(|p| p.actions.len())
            .sum();
        span.in_scope(|| {
            for p in &passes {
                let failed = p.error.is_some() || p.failed_actions() > 0;
                let retry_in = backoff.record(&p.target, failed, Instant::now());
                if let Some(e) = &p.error {
                    error!(target = %p.target.label(), kind = e.kind.as_str(), error = %e, ?retry_in, "target failed");
                } else if failed {
                    warn!(target = %p.target.label(), failed = p.failed_actions(), ?retry_in, "target had failed actions");
                }
            }
            for p in &passes {
                for e in &p.events {
                    if e.state == "FAILED" {
                        warn!(target = %p.target.label(), cluster = %e.cluster, service = %e.service, state = e.state, "rollout settled");
                    } else {
                        info!(target = %p.target.label(), cluster = %e.cluster, service = %e.service, state = e.state, "rollout settled");
                    }
                }
            }
            info!(result = result.as_str(), seconds, pending, "pass finished");
        });
        let watching = rollouts.watching();
        let halted = rollouts.halted();
        let wake = if settings.dry_run {
            RedeployWake::Never
        } else {
            rollout_wake(
                &passes,
                &watching,
                &loaded.desired.targets,
                loaded.desired.redeploy.wait_for_steady_state,
            )
        };
        let rollout_delay = (wake != RedeployWake::Never)
            .then(|| until_or_poll(wake, Clock::System.now_ms(), settings.rollout_poll));
        let previous = shared
            .status
            .write()
            .map(|mut s| std::mem::take(&mut s.passes))
            .unwrap_or_default();
        let passes = carry_over(previous, passes, &loaded.desired.targets);
        shared
            .metrics
            .pass(&passes, result, seconds, unix_secs(now));
        shared
            .metrics
            .rollouts(rollouts.in_progress(), halted.is_some());
        if let Ok(mut status) = shared.status.write() {
            status.pass_id = pass_id;
            status.last_pass_at = Some(now);
            status.last_result = Some(result.as_str());
            status.reached_aws = reached_aws;
            status.passes = passes;
            status.watching = watching;
            status.halted = halted;
        }
        next_pass = next_wake(&loaded.desired, &backoff, rollout_delay);
    }
}

/// Re-reads the desired state, counts and logs a reload, and updates the status.
async fn reload(shared: &Shared, source: &mut Source) -> Refresh {
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

/// The next timer pass: the jittered interval (`rollout_delay` instead while redeploys
/// move, see [`rollout_wake`]), or sooner when a failing target is due.
fn next_wake(
    desired: &gec_model::DesiredState,
    backoff: &Backoff,
    rollout_poll: Option<Duration>,
) -> Instant {
    let interval = jittered(desired.reconcile.interval.get(), desired.reconcile.jitter);
    let wake = Instant::now() + next_delay(interval, rollout_poll);
    backoff.next_due().map_or(wake, |due| due.min(wake))
}

/// The delay before the next timer pass: `interval`, or the rollout delay (at least
/// [`MIN_ROLLOUT_POLL`], at most `interval`) while redeploys move.
pub fn next_delay(interval: Duration, rollout_poll: Option<Duration>) -> Duration {
    rollout_poll.map_or(interval, |poll| poll.max(MIN_ROLLOUT_POLL).min(interval))
}

/// When the next pass is worth making for redeploys (see [`RedeployWake`]): with
/// `waitForSteadyState`, poll while a rollout this process started is still watched in a
/// target of the desired state, AWS reports a deployment rolling in a managed cluster (it
/// frees a slot or a service soon), or a redeploy waits for a `maxConcurrent` slot or its
/// own rollout; when redeploys wait only for their settle time, wake when the first one
/// ends. Windows, `maxPerHour` and a halt wait for the interval.
///
/// Without `waitForSteadyState` nothing is watched and `maxConcurrent` bounds the
/// redeploys started per pass, so the interval is kept. A watch of a target no longer in
/// the desired state is never observed again, so it does not count.
pub fn rollout_wake(
    passes: &[TargetPass],
    watching: &[Watch],
    targets: &[Target],
    wait_for_steady_state: bool,
) -> RedeployWake {
    if !wait_for_steady_state {
        return RedeployWake::Never;
    }
    let labels: Vec<String> = targets.iter().map(Target::label).collect();
    let watched = watching.iter().any(|w| labels.contains(&w.target));
    let rolling = passes
        .iter()
        .filter_map(|p| p.plan.as_ref())
        .flat_map(|p| &p.held)
        .any(|h| h.reason == HELD_IN_PROGRESS);
    if watched || rolling {
        RedeployWake::Poll
    } else {
        redeploy_wake(passes)
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

fn jittered(interval: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return interval;
    }
    // fastrand::f64() is in [0, 1): the factor in [1 - jitter, 1 + jitter).
    let factor = 1.0 + jitter * (2.0 * fastrand::f64() - 1.0);
    interval.mul_f64(factor.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pass, redeploy, tag, target};
    use gec_engine::apply::SKIPPED_AFTER_FAILURE;
    use gec_engine::rollout::{
        WAIT_HALTED, WAIT_MAX_CONCURRENT, WAIT_MAX_PER_HOUR, WAIT_ROLLING, WAIT_SETTLING,
        WAIT_WINDOW,
    };
    use gec_engine::{ActionResult, Outcome};
    use gec_model::{Action, TargetPlan};

    const EAST: &str = "us-east-1";

    fn watch(region: &str) -> Watch {
        Watch {
            target: target(region).label(),
            cluster_arn: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
            cluster: "apps".into(),
            service: "api".into(),
            deployment_id: "ecs-svc/1".into(),
        }
    }

    fn skipped(why: &'static str) -> Vec<TargetPass> {
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
        for (why, wake) in [
            (WAIT_SETTLING, At(0)),
            (WAIT_MAX_CONCURRENT, Poll),
            (WAIT_ROLLING, Poll),
        ] {
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
        for why in [
            WAIT_WINDOW,
            WAIT_MAX_PER_HOUR,
            WAIT_HALTED,
            SKIPPED_AFTER_FAILURE,
        ] {
            assert_eq!(
                rollout_wake(&skipped(why), &[], &targets, true),
                Never,
                "{why}"
            );
        }
        let tag_skipped = [pass(
            EAST,
            TargetPlan::default(),
            vec![(tag(EAST, "apps"), Outcome::Skipped(WAIT_SETTLING))],
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
            (action, Outcome::Skipped(WAIT_SETTLING))
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
            outcome: Outcome::Skipped(WAIT_MAX_CONCURRENT),
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
