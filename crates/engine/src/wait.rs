//! `apply` with `waitForSteadyState`: level-triggered passes, one every poll interval,
//! until the rollouts this run started have settled and no redeploy is waiting for a
//! slot or for its settle time — or until the deadline.

use std::sync::Arc;
use std::time::Duration;

use gec_aws::AwsContext;
use gec_model::plan::Phase;
use gec_model::DesiredState;

use crate::apply::{ActionResult, Outcome};
use crate::pass::{reconcile_all, PassOptions, TargetPass};
use crate::rollout::{RolloutEvent, WAIT_MAX_CONCURRENT, WAIT_ROLLING, WAIT_SETTLING};

/// Redeploys waiting for one of these reasons start by themselves soon: worth waiting for.
const SOON: [&str; 3] = [WAIT_SETTLING, WAIT_MAX_CONCURRENT, WAIT_ROLLING];

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
/// `waitForSteadyState`, or when a pass fails, was refused or is suspended, one pass.
pub async fn apply_until_settled(
    ctx: &AwsContext,
    desired: Arc<DesiredState>,
    options: PassOptions,
    timeout: Duration,
    poll: Duration,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> ApplyRun {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut run = ApplyRun::default();
    loop {
        let passes = reconcile_all(ctx, Arc::clone(&desired), options.clone()).await;
        run.passes += 1;
        let mut queued = 0;
        for pass in &passes {
            for r in &pass.results {
                match r.outcome {
                    Outcome::Skipped(why) => {
                        if r.action.phase() == Phase::Redeploy && SOON.contains(&why) {
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
        let stuck = passes.iter().any(|p| {
            p.error.is_some() || p.suspended || p.plan.as_ref().is_some_and(|p| p.refused.is_some())
        });
        let rolling = options.rollouts.watching().len();
        let waiting = desired.redeploy.wait_for_steady_state && (rolling > 0 || queued > 0);
        if run.first.is_empty() {
            run.first = passes.clone();
        }
        if stuck || !waiting || options.stop.is_stopped() {
            run.still_rolling = if desired.redeploy.wait_for_steady_state {
                rolling
            } else {
                0
            };
            run.results.extend(skipped(&passes));
            run.last = passes;
            return run;
        }
        if tokio::time::Instant::now() + poll > deadline {
            run.timed_out = true;
            run.still_rolling = rolling;
            run.results.extend(skipped(&passes));
            run.last = passes;
            return run;
        }
        progress(Progress::Waiting { rolling, queued });
        tokio::time::sleep(poll).await;
    }
}

fn skipped(passes: &[TargetPass]) -> Vec<ActionResult> {
    passes
        .iter()
        .flat_map(|p| &p.results)
        .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
        .cloned()
        .collect()
}
