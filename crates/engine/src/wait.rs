//! `apply` with `waitForSteadyState`: level-triggered passes, one every poll interval,
//! until the rollouts this run started have settled and no redeploy is waiting for a
//! slot or for its settle time — or until the deadline.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gec_aws::AwsContext;
use gec_model::plan::Phase;
use gec_model::{Action, DesiredState};

use crate::apply::{ActionResult, Outcome};
use crate::pass::{reconcile_all, PassOptions, TargetPass};
use crate::rollout::{RolloutEvent, WAIT_MAX_CONCURRENT, WAIT_ROLLING, WAIT_SETTLING};

/// When a pass is next worth making for the redeploys of some passes that wait for
/// something that ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeployWake {
    /// No redeploy waits for such a thing.
    Never,
    /// One waits for a `maxConcurrent` slot or its own rollout: poll.
    Poll,
    /// All wait for their settle time; the earliest ends at this time (ms since the
    /// epoch). Passes before it would only say "settling" again.
    At(i64),
}

/// [`RedeployWake`] of these passes' skipped redeploys.
pub fn redeploy_wake(passes: &[TargetPass]) -> RedeployWake {
    let mut wake = RedeployWake::Never;
    for r in passes.iter().flat_map(|p| &p.results) {
        let Outcome::Skipped(why) = r.outcome else {
            continue;
        };
        let not_before = match &r.action {
            Action::RedeployService { not_before_ms, .. } => *not_before_ms,
            _ => continue,
        };
        wake = match (wake, why, not_before) {
            (RedeployWake::Poll, _, _) => RedeployWake::Poll,
            (_, WAIT_MAX_CONCURRENT | WAIT_ROLLING, _) | (_, WAIT_SETTLING, None) => {
                RedeployWake::Poll
            }
            (RedeployWake::At(t), WAIT_SETTLING, Some(u)) => RedeployWake::At(t.min(u)),
            (RedeployWake::Never, WAIT_SETTLING, Some(u)) => RedeployWake::At(u),
            (w, _, _) => w,
        };
    }
    wake
}

/// How long to sleep before the next pass: `poll`, or until `at` when that is later.
pub fn until_or_poll(wake: RedeployWake, now_ms: i64, poll: Duration) -> Duration {
    match wake {
        RedeployWake::At(t) => poll.max(Duration::from_millis(
            u64::try_from(t.saturating_sub(now_ms)).unwrap_or(0),
        )),
        RedeployWake::Poll | RedeployWake::Never => poll,
    }
}

/// Something worth telling a person watching `apply`.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// A redeploy started (or failed to start).
    Started(&'a ActionResult),
    /// A rollout this run watches settled.
    Settled(&'a RolloutEvent),
    /// Still waiting: rollouts in progress and redeploys waiting to start.
    Waiting {
        /// Rollouts in progress, fleet-wide.
        rolling: usize,
        /// Redeploys waiting for a slot or their settle time.
        queued: usize,
    },
}

/// What an `apply` run did over all its passes.
#[derive(Debug, Default)]
pub struct ApplyRun {
    /// The first pass: its plans are what `apply` set out to do.
    pub first: Vec<TargetPass>,
    /// The last pass: what is still pending.
    pub last: Vec<TargetPass>,
    /// Every write attempted over the run (successes and failures), in order, then the
    /// last pass's skipped actions.
    pub results: Vec<ActionResult>,
    /// Rollouts that settled during the run.
    pub events: Vec<RolloutEvent>,
    /// The deadline passed while rollouts were in progress or redeploys were waiting.
    pub timed_out: bool,
    /// Passes made.
    pub passes: usize,
    /// Rollouts this run started that had not settled when it stopped waiting.
    pub still_rolling: usize,
}

impl ApplyRun {
    /// Writes that failed, and rollouts this run started that ended FAILED.
    pub fn failures(&self) -> usize {
        let failed_writes = self
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count();
        failed_writes + self.events.iter().filter(|e| e.state == "FAILED").count()
    }
}

/// Runs passes until the run settles (see the module docs) or `timeout` passes. Without
/// `waitForSteadyState`, or under `suspend`, one pass. A target whose pass fails or whose
/// plan is refused does not stop the wait for the others' rollouts; the next pass tries it
/// again.
pub async fn apply_until_settled(
    ctx: &AwsContext,
    desired: Arc<DesiredState>,
    options: PassOptions,
    timeout: Duration,
    poll: Duration,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> ApplyRun {
    let deadline = after(timeout);
    let mut run = ApplyRun::default();
    loop {
        let passes = reconcile_all(ctx, Arc::clone(&desired), options.clone()).await;
        run.passes += 1;
        let mut queued = 0;
        for pass in &passes {
            for r in &pass.results {
                match r.outcome {
                    Outcome::Skipped(why) => {
                        if r.action.phase() == Phase::Redeploy
                            && [WAIT_SETTLING, WAIT_MAX_CONCURRENT, WAIT_ROLLING].contains(&why)
                        {
                            queued += 1;
                        }
                    }
                    _ => {
                        if r.action.phase() == Phase::Redeploy {
                            progress(Progress::Started(r));
                        }
                        run.results.push(r.clone());
                    }
                }
            }
            for e in &pass.events {
                progress(Progress::Settled(e));
                run.events.push(e.clone());
            }
        }
        // A target that failed is retried by the next pass, and one whose plan was refused
        // writes nothing; the rollouts of the others are still worth waiting for, but not
        // those of a failed target (they cannot be observed).
        let failed: HashSet<String> = passes
            .iter()
            .filter(|p| p.error.is_some())
            .map(|p| p.target.label())
            .collect();
        let stuck = passes.iter().any(|p| p.suspended);
        let watching = options.rollouts.watching();
        let rolling = watching
            .iter()
            .filter(|w| !failed.contains(&w.target))
            .count();
        let waiting = desired.redeploy.wait_for_steady_state && (rolling > 0 || queued > 0);
        if run.first.is_empty() {
            run.first = passes.clone();
        }
        if stuck || !waiting || options.stop.is_stopped() {
            run.still_rolling = if desired.redeploy.wait_for_steady_state {
                watching.len()
            } else {
                0
            };
            run.results.extend(skipped(&passes));
            run.last = passes;
            return run;
        }
        if after(poll) > deadline {
            run.timed_out = true;
            run.still_rolling = watching.len();
            run.results.extend(skipped(&passes));
            run.last = passes;
            return run;
        }
        progress(Progress::Waiting { rolling, queued });
        // Only redeploys waiting for their settle time: nothing to see before it ends.
        let wake = if rolling > 0 {
            RedeployWake::Poll
        } else {
            redeploy_wake(&passes)
        };
        let nap = until_or_poll(wake, options.clock.now_ms(), poll);
        tokio::time::sleep_until(deadline.min(after(nap))).await;
    }
}

/// `now + d`, or a year from now when that overflows the clock: a settle time that ends
/// at the end of time (`until_or_poll` of a saturated timestamp) must not panic.
fn after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

fn skipped(passes: &[TargetPass]) -> Vec<ActionResult> {
    passes
        .iter()
        .flat_map(|p| &p.results)
        .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
        .cloned()
        .collect()
}
