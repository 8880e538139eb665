//! `apply` with `waitForSteadyState`: level-triggered passes, one every poll interval,
//! until the rollouts this run started have settled and no redeploy is waiting for a
//! slot or for its settle time — or until the deadline.

use std::sync::Arc;
use std::time::Duration;

use gec_model::plan::Phase;
use gec_model::DesiredState;
use tokio::time::Instant;

use crate::apply::{ActionResult, Outcome};
use crate::driver::{Clouds, Context, Driver, Host, Report, Round, Settings};
use crate::pass::TargetPass;
use crate::rollout::{RolloutEvent, Settled};

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
    /// A round finished (first of what its report brings): its writes and incidents,
    /// for the audit records.
    Round(&'a Report),
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
        failed_writes
            + self
                .events
                .iter()
                .filter(|e| e.state == Settled::Failed)
                .count()
    }
}

/// Runs rounds of the [`Driver`] until the run settles (see the module docs) or
/// `timeout` passes. Without `waitForSteadyState`, or under `suspend`, one pass. Every
/// round tries every target: a target whose pass fails or whose plan is refused does not
/// stop the wait for the others' rollouts; the next pass tries it again.
pub async fn apply_until_settled<C: Clouds>(
    clouds: C,
    desired: Arc<DesiredState>,
    ctx: Context,
    settings: Settings,
    timeout: Duration,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> ApplyRun {
    let mut host = ApplyHost {
        round: Round {
            desired,
            generation: 1,
            every_target: true,
        },
        deadline: after(timeout),
        poll: settings.rollout_poll,
        progress,
        wake: None,
        run: ApplyRun::default(),
        stop: ctx.stop.clone(),
    };
    Driver::new(clouds, ctx, settings).run(&mut host).await;
    host.run
}

/// `apply`'s side of the loop: one round, then more while rollouts it waits for move.
struct ApplyHost<'a> {
    round: Round,
    deadline: Instant,
    poll: Duration,
    progress: &'a (dyn Fn(Progress<'_>) + Sync),
    /// When the next round is due; `None` once the run is over.
    wake: Option<Instant>,
    run: ApplyRun,
    stop: crate::apply::StopSignal,
}

impl Host for ApplyHost<'_> {
    async fn next_round(&mut self, _due: Option<Instant>) -> Option<Round> {
        if self.run.passes > 0 {
            tokio::time::sleep_until(self.wake?).await;
        }
        Some(self.round.clone())
    }

    fn finished(&mut self, round: &Round, report: Report) {
        let run = &mut self.run;
        let progress = self.progress;
        progress(Progress::Round(&report));
        let passes = report.passes;
        run.passes += 1;
        for pass in &passes {
            for r in &pass.results {
                if !matches!(r.outcome, Outcome::Skipped(_)) {
                    if r.action.phase() == Phase::Redeploy {
                        progress(Progress::Started(r));
                    }
                    run.results.push(r.clone());
                }
            }
            for e in &pass.events {
                progress(Progress::Settled(e));
                run.events.push(e.clone());
            }
        }
        if run.first.is_empty() {
            run.first = passes.clone();
        }
        let wait = round.desired.redeploy.wait_for_steady_state;
        let stuck = passes.iter().any(|p| p.suspended);
        let waiting = wait && (report.rolling > 0 || report.queued > 0);
        self.wake = None;
        if stuck || !waiting || self.stop.is_stopped() || report.interrupted {
            run.still_rolling = if wait { report.watching.len() } else { 0 };
        } else if after(self.poll) > self.deadline {
            run.timed_out = true;
            run.still_rolling = report.watching.len();
        } else {
            progress(Progress::Waiting {
                rolling: report.rolling,
                queued: report.queued,
            });
            // Only redeploys waiting for their settle time: nothing to see before it ends.
            let nap = report.rollout_delay.unwrap_or(self.poll);
            self.wake = Some(self.deadline.min(after(nap)));
            return;
        }
        run.results.extend(skipped(&passes));
        run.last = passes;
    }
}

/// `now + d`, or a year from now when that overflows the clock: a settle time that ends
/// at the end of time must not panic.
fn after(d: Duration) -> Instant {
    let now = Instant::now();
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
