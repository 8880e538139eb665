//! The one reconcile loop, shared by the daemon and `apply` (kube-runtime's controller,
//! in small). The engine owns *what* a round does and *when it wants the next one*: which
//! targets are due (a failing target backs off, [`Backoff`]), the pass over them, the
//! shutdown grace, and the requeue the rollouts need ([`Requeue`]). Its host owns *what
//! starts a round* and *what is done with the result*: the daemon waits for its timer, a
//! file change or SIGHUP and updates metrics and `/status`; `apply` runs rounds until its
//! rollouts settle or its deadline passes.
//!
//! ```text
//!   host.next_round(due) ──► Round { desired, generation, every_target }
//!        ▲                          │
//!        │                 Driver::round: due targets → reconcile_fleet
//!        │                          │   (observe → plan → limits → apply)
//!        └── host.finished(report) ◄┘   requeue, backoff, next wake
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gec_aws::{AwsContext, AwsError, TargetClient};
use gec_model::desired::{Target, MAX_TARGETS};
use gec_model::plan::{HoldReason, Phase};
use gec_model::{Action, DesiredState, PlanOptions};
use tokio::time::Instant;
use tracing::{error, info, info_span, warn, Instrument};

use crate::apply::{Outcome, StopSignal};
use crate::backoff::Backoff;
use crate::cloud::TargetCloud;
use crate::conflict::Conflicts;
use crate::fence::Fence;
use crate::pass::{reconcile_fleet, Mode, PassOptions, TargetPass, DEFAULT_MAX_CONCURRENT_TARGETS};
use crate::rollout::{Clock, Halt, Rollouts, Settled, Watch};

/// How long a pass interrupted by shutdown may take to finish its in-flight call.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a delegated administrator's member list is used before it is listed again,
/// on rounds that do not try every target (the timer, rollout polls).
pub const MEMBER_LIST_TTL: Duration = Duration::from_secs(60);
/// The shortest rollout poll interval, whatever the settings say, so a zero cannot make
/// the loop spin.
pub const MIN_ROLLOUT_POLL: Duration = Duration::from_secs(1);

/// What lives as long as the process: the rollout gate and its memory, the clock, and the
/// stop signal. Cheap to clone; clones share everything.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The rollout gate and what it learned across passes.
    pub rollouts: Rollouts,
    /// Wall-clock time for the rollout guards.
    pub clock: Clock,
    /// Raised on shutdown: start no new write, end the loop.
    pub stop: StopSignal,
    /// Tug-of-war detection: what was written and changed back, and the conflicts.
    pub conflicts: Conflicts,
    /// With a lease: whether this replica may write. A round that starts while it is
    /// closed observes and plans only (the follower's round); one that starts open checks
    /// it again before every write.
    pub fence: Fence,
}

/// The clients of every target: the AWS adapter in production, memory in tests.
pub trait Clouds: Send + Sync {
    /// One target's cloud.
    type Cloud: TargetCloud + 'static;
    /// The cloud of `target` (made once and reused by the implementation).
    fn cloud(&self, target: &Target) -> impl Future<Output = Arc<Self::Cloud>> + Send;
    /// Forgets what is kept for targets not in `targets`.
    fn retain(&self, _targets: &[Target]) {}
}

impl Clouds for AwsContext {
    type Cloud = TargetClient;

    async fn cloud(&self, target: &Target) -> Arc<TargetClient> {
        // Cheap: the clients are made once per target and cached; no AWS call.
        Arc::new(self.target(target).await)
    }

    fn retain(&self, targets: &[Target]) {
        AwsContext::retain(self, targets);
    }
}

/// When the redeploys of a round want the next pass, whatever the interval says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Nothing ends by itself soon: the next pass comes at the interval.
    Never,
    /// A rollout is in progress or a redeploy waits for a slot: poll.
    Poll,
    /// Redeploys wait only for their settle time; the earliest ends at this time (Unix
    /// ms). Passes before it would only say "settling" again.
    At(i64),
}

impl Requeue {
    /// The sooner of two requeues.
    pub fn min(self, other: Requeue) -> Requeue {
        match (self, other) {
            (Requeue::Poll, _) | (_, Requeue::Poll) => Requeue::Poll,
            (Requeue::At(a), Requeue::At(b)) => Requeue::At(a.min(b)),
            (Requeue::At(t), Requeue::Never) | (Requeue::Never, Requeue::At(t)) => Requeue::At(t),
            (Requeue::Never, Requeue::Never) => Requeue::Never,
        }
    }

    /// How long to wait for it: `poll`, or until `At` when that is later.
    pub fn delay(self, now_ms: i64, poll: Duration) -> Option<Duration> {
        match self {
            Requeue::Never => None,
            Requeue::Poll => Some(poll),
            Requeue::At(t) => Some(poll.max(Duration::from_millis(
                u64::try_from(t.saturating_sub(now_ms)).unwrap_or(0),
            ))),
        }
    }
}

/// One round: the desired state in force and which of its targets to reconcile.
#[derive(Debug, Clone)]
pub struct Round {
    /// The desired state in force (all of it; the driver picks the due targets).
    pub desired: Arc<DesiredState>,
    /// Bumped by the host on each successful reload: a new generation lifts a
    /// `stopOnFailure` halt, nothing else does.
    pub generation: u64,
    /// Reconcile every target, also those in backoff (a new desired state, SIGHUP, a
    /// one-shot `apply`); otherwise only the due ones (a timer round).
    pub every_target: bool,
}

/// Per-process settings of the passes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plan or apply.
    pub mode: Mode,
    /// Planner knobs (`--allow-mass-change`, ceilings).
    pub plan: PlanOptions,
    /// Targets reconciled at once.
    pub max_concurrent_targets: usize,
    /// How often passes come while rollouts move (see [`Requeue`]).
    pub rollout_poll: Duration,
}

impl Settings {
    /// Settings for `mode` with the defaults otherwise.
    pub fn new(mode: Mode) -> Self {
        Settings {
            mode,
            plan: PlanOptions::default(),
            max_concurrent_targets: DEFAULT_MAX_CONCURRENT_TARGETS,
            rollout_poll: Duration::from_secs(15),
        }
    }
}

/// What a round did, and when the driver wants the next one.
#[derive(Debug)]
pub struct Report {
    /// Counts rounds that reconciled at least one target.
    pub pass_id: u64,
    /// The passes of the targets reconciled, in the order of [`Report::targets`] (empty
    /// when no target was due).
    pub passes: Vec<TargetPass>,
    /// Every target of the round, due or not: the desired state's, then with an
    /// `organization` the members found for each administrator target.
    pub targets: Vec<Target>,
    /// What the redeploys want (see [`Requeue`]).
    pub requeue: Requeue,
    /// The delay [`Report::requeue`] asks for, if any.
    pub rollout_delay: Option<Duration>,
    /// Rollouts this process started and watches, in targets whose pass did not fail.
    pub rolling: usize,
    /// Redeploys waiting for something that ends soon (a slot, their settle time).
    pub queued: usize,
    /// Every rollout this process watches.
    pub watching: Vec<Watch>,
    /// Why redeploys are halted, if they are.
    pub halted: Option<Halt>,
    /// Rollouts in progress, fleet-wide.
    pub in_progress: usize,
    /// Wall time of the pass.
    pub seconds: f64,
    /// When the next round is due: the interval (or the rollout delay), or sooner when a
    /// failing target's backoff ends.
    pub next: Instant,
    /// Shutdown came during the pass.
    pub interrupted: bool,
}

/// What drives the rounds: the daemon's triggers, or `apply`'s wait.
pub trait Host: Send {
    /// Waits for the next round and returns it; `None` ends the loop. `due` is when the
    /// driver wants it (`None` before the first round).
    fn next_round(&mut self, due: Option<Instant>) -> impl Future<Output = Option<Round>> + Send;
    /// A round is over.
    fn finished(&mut self, round: &Round, report: Report);
}

/// The loop: rounds until the host stops or shutdown.
pub struct Driver<C: Clouds> {
    clouds: C,
    ctx: Context,
    settings: Settings,
    backoff: Backoff,
    pass_id: u64,
    /// With an `organization`: per administrator target, when its members were last
    /// listed and their account ids (kept for rounds between listings, and for a round
    /// whose listing fails).
    members: HashMap<Target, (Instant, Vec<String>)>,
    /// A pass was abandoned with a call in flight (see [`Driver::run`]).
    abandoned: bool,
}

impl<C: Clouds> Driver<C> {
    /// A driver over `clouds`.
    pub fn new(clouds: C, ctx: Context, settings: Settings) -> Self {
        Driver {
            clouds,
            ctx,
            settings,
            backoff: Backoff::default(),
            pass_id: 0,
            members: HashMap::new(),
            abandoned: false,
        }
    }

    /// Runs rounds until the host returns `None` or the stop signal is raised.
    ///
    /// # Guarantees
    /// One round at a time. After a stop no new write starts; a pass in flight gets
    /// [`SHUTDOWN_GRACE`] to finish its call, then the loop ends.
    ///
    /// Returns whether the last pass was abandoned with a call in flight (after
    /// [`SHUTDOWN_GRACE`]): that call may still land, so a leased replica must not
    /// release its lease at once.
    pub async fn run(mut self, host: &mut impl Host) -> bool {
        let mut due = None;
        loop {
            let stop = self.ctx.stop.clone();
            let next = tokio::select! {
                biased;
                () = stop.stopped() => None,
                round = host.next_round(due) => round,
            };
            let Some(round) = next else { break };
            let report = self.round(&round).await;
            due = Some(report.next);
            let interrupted = report.interrupted;
            host.finished(&round, report);
            if interrupted || self.ctx.stop.is_stopped() {
                break;
            }
        }
        self.abandoned
    }

    /// One round: the due targets of `round`, reconciled as one fleet.
    pub async fn round(&mut self, round: &Round) -> Report {
        let desired = &round.desired;
        let (targets, listing_errors) = self.targets(desired, round.every_target).await;
        // Targets that left the desired state (or the organization) leave no clients,
        // credentials, caches, backoff or rollout memory behind.
        self.backoff.retain(&targets);
        self.clouds.retain(&targets);
        self.ctx.rollouts.retain(&targets);
        self.ctx.conflicts.retain(&targets);
        let now = Instant::now();
        let due: Vec<&Target> = targets
            .iter()
            .filter(|t| round.every_target || self.backoff.is_due(t, now))
            .collect();
        if due.is_empty() {
            return self.report(round, &targets, Vec::new(), 0.0, false);
        }
        self.pass_id += 1;
        let pass_id = self.pass_id;
        let mut clouds = Vec::with_capacity(due.len());
        for target in due {
            clouds.push((target.clone(), self.clouds.cloud(target).await));
        }
        // A follower (or a leader whose hold ran out) observes and plans only.
        let mode = if self.ctx.fence.permits() {
            self.settings.mode
        } else {
            Mode::Plan
        };
        let options = PassOptions {
            mode,
            plan: self.settings.plan,
            max_concurrent_targets: self.settings.max_concurrent_targets,
            stop: self.ctx.stop.clone(),
            fence: self.ctx.fence.clone(),
            rollouts: self.ctx.rollouts.clone(),
            clock: self.ctx.clock,
            generation: round.generation,
            conflicts: self.ctx.conflicts.clone(),
        };
        let started = Instant::now();
        let span = info_span!("pass", pass_id);
        let pass = reconcile_fleet(clouds, Arc::clone(desired), options).instrument(span.clone());
        tokio::pin!(pass);
        let stop = self.ctx.stop.clone();
        let (passes, interrupted) = tokio::select! {
            passes = &mut pass => (passes, false),
            () = stop.stopped() => {
                info!(pass_id, "shutting down: no new writes; waiting for the in-flight call");
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut pass).await {
                    Ok(passes) => (passes, true),
                    Err(_) => {
                        warn!(pass_id, "abandoned the in-flight call after {SHUTDOWN_GRACE:?}");
                        self.abandoned = true;
                        (Vec::new(), true)
                    }
                }
            }
        };
        let mut passes = passes;
        // A member list that could not be read fails the administrator's pass (its plan
        // stays): members may go unmanaged, which must show in the exit code, the pass
        // result and the backoff, not only in a warning.
        for (admin, e) in listing_errors {
            if let Some(pass) = passes.iter_mut().find(|p| p.target == admin) {
                if let Some(plan) = pass.plan.as_mut() {
                    plan.warnings.push(format!(
                        "could not list the organization's members: {e}; the members found before are reconciled"
                    ));
                }
                pass.error.get_or_insert(e);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        span.in_scope(|| self.record(&passes));
        self.report(round, &targets, passes, seconds, interrupted)
    }

    /// The targets of a round: the desired state's, and with an `organization` the member
    /// targets of each administrator target, at most [`MAX_TARGETS`] in all. The members
    /// are the account ids `ListMembers` gave, kept per administrator: listed again on
    /// every round that tries every target (a new desired state, SIGHUP, `apply`) and on
    /// others once [`MEMBER_LIST_TTL`] has passed; filtered by the current
    /// `organization.members` and made into targets with the current member role on every
    /// round, so an edit of the file applies at once. A failed listing keeps the accounts
    /// found before (if any) and is returned with the administrator target: that pass
    /// counts as failed.
    async fn targets(
        &mut self,
        desired: &DesiredState,
        every_target: bool,
    ) -> (Vec<Target>, Vec<(Target, AwsError)>) {
        let Some(org) = &desired.organization else {
            self.members.clear();
            return (desired.targets.clone(), Vec::new());
        };
        self.members
            .retain(|admin, _| desired.targets.contains(admin));
        let mut all = desired.targets.clone();
        let mut errors = Vec::new();
        let now = Instant::now();
        for admin in &desired.targets {
            let fresh = self
                .members
                .get(admin)
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) < MEMBER_LIST_TTL);
            if every_target || !fresh {
                let cloud = self.clouds.cloud(admin).await;
                match cloud.list_members().await {
                    Ok(members) => {
                        let mut accounts: Vec<String> =
                            members.into_iter().map(|m| m.account).collect();
                        accounts.sort();
                        accounts.dedup();
                        self.members.insert(admin.clone(), (now, accounts));
                    }
                    Err(e) => {
                        warn!(target = %admin.label(), error = %e,
                            "could not list the organization's members; the members found before are reconciled");
                        errors.push((admin.clone(), e));
                    }
                }
            }
            let accounts = self
                .members
                .get(admin)
                .map(|(_, a)| a.as_slice())
                .unwrap_or_default();
            all.extend(
                accounts
                    .iter()
                    .filter(|a| **a != org.administrator.account_id && org.members.includes(a))
                    .map(|a| org.member_target(admin, a)),
            );
        }
        if all.len() > MAX_TARGETS {
            warn!(
                targets = all.len(),
                "the organization has more member targets than the limit of {MAX_TARGETS}; the rest wait"
            );
            all.truncate(MAX_TARGETS);
        }
        (all, errors)
    }

    /// Backoff and logs of each target's pass.
    fn record(&mut self, passes: &[TargetPass]) {
        for p in passes {
            let failed = p.error.is_some() || p.failed_actions() > 0;
            let retry_in = self.backoff.record(&p.target, failed, Instant::now());
            if let Some(e) = &p.error {
                error!(target = %p.target.label(), kind = e.kind.as_str(), error = %e, ?retry_in, "target failed");
            } else if failed {
                warn!(target = %p.target.label(), failed = p.failed_actions(), ?retry_in, "target had failed actions");
            }
            for e in &p.events {
                if e.state == Settled::Failed {
                    warn!(target = %p.target.label(), cluster = %e.cluster, service = %e.service, state = %e.state, "rollout settled");
                } else {
                    info!(target = %p.target.label(), cluster = %e.cluster, service = %e.service, state = %e.state, "rollout settled");
                }
            }
        }
    }

    fn report(
        &self,
        round: &Round,
        targets: &[Target],
        passes: Vec<TargetPass>,
        seconds: f64,
        interrupted: bool,
    ) -> Report {
        let desired = &round.desired;
        let watching = self.ctx.rollouts.watching();
        let failed: Vec<String> = passes
            .iter()
            .filter(|p| p.error.is_some())
            .map(|p| p.target.label())
            .collect();
        let rolling = watching
            .iter()
            .filter(|w| !failed.contains(&w.target))
            .count();
        let queued = passes.iter().map(TargetPass::queued).sum();
        let requeue = if self.settings.mode == Mode::Plan {
            Requeue::Never
        } else {
            rollout_requeue(
                &passes,
                &watching,
                targets,
                desired.redeploy.wait_for_steady_state,
            )
        };
        let rollout_delay = requeue
            .delay(self.ctx.clock.now_ms(), self.settings.rollout_poll)
            .map(|d| d.max(MIN_ROLLOUT_POLL));
        let interval = jittered(desired.reconcile.interval.get(), desired.reconcile.jitter);
        let wake = Instant::now() + next_delay(interval, rollout_delay);
        let next = self.backoff.next_due().map_or(wake, |due| due.min(wake));
        Report {
            pass_id: self.pass_id,
            passes,
            targets: targets.to_vec(),
            requeue,
            rollout_delay,
            rolling,
            queued,
            watching,
            halted: self.ctx.rollouts.halted(),
            in_progress: self.ctx.rollouts.in_progress(),
            seconds,
            next,
            interrupted,
        }
    }
}

impl TargetPass {
    /// Redeploys of this pass that wait for something that ends soon (see
    /// [`crate::rollout::Wait::ends_soon`]).
    pub fn queued(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.action.phase() == Phase::Redeploy)
            .filter(|r| matches!(r.outcome, Outcome::Skipped(s) if s.gate().is_some_and(|w| w.ends_soon())))
            .count()
    }

    /// What this pass's redeploys want (see [`Requeue`]).
    pub fn requeue(&self) -> Requeue {
        let mut requeue = Requeue::Never;
        for r in &self.results {
            let Outcome::Skipped(skip) = r.outcome else {
                continue;
            };
            let (Some(wait), Action::RedeployService { not_before_ms, .. }) =
                (skip.gate(), &r.action)
            else {
                continue;
            };
            if !wait.ends_soon() {
                continue;
            }
            requeue = requeue.min(match (wait, not_before_ms) {
                (crate::rollout::Wait::Settling, Some(t)) => Requeue::At(*t),
                _ => Requeue::Poll,
            });
        }
        requeue
    }
}

/// What the rollouts want (see [`Requeue`]): with `waitForSteadyState`, poll while a
/// rollout this process started is still watched in a target of the desired state, AWS
/// reports a deployment rolling in a managed cluster (it frees a slot or a service soon),
/// or a redeploy waits for a `maxConcurrent` slot or its own rollout; when redeploys wait
/// only for their settle time, wake when the first one ends. Windows, `maxPerHour` and a
/// halt wait for the interval.
///
/// Without `waitForSteadyState` nothing is watched and `maxConcurrent` bounds the
/// redeploys started per pass, so the interval is kept. A watch of a target no longer in
/// the desired state is never observed again, so it does not count.
pub fn rollout_requeue(
    passes: &[TargetPass],
    watching: &[Watch],
    targets: &[Target],
    wait_for_steady_state: bool,
) -> Requeue {
    if !wait_for_steady_state {
        return Requeue::Never;
    }
    let labels: Vec<String> = targets.iter().map(Target::label).collect();
    let watched = watching.iter().any(|w| labels.contains(&w.target));
    let rolling = passes
        .iter()
        .filter_map(|p| p.plan.as_ref())
        .flat_map(|p| &p.held)
        .any(|h| h.reason == HoldReason::InProgress);
    if watched || rolling {
        Requeue::Poll
    } else {
        passes
            .iter()
            .map(TargetPass::requeue)
            .fold(Requeue::Never, Requeue::min)
    }
}

/// The delay before the next timer round: `interval`, or the rollout delay (at least
/// [`MIN_ROLLOUT_POLL`], at most `interval`) while redeploys move.
pub fn next_delay(interval: Duration, rollout_delay: Option<Duration>) -> Duration {
    rollout_delay.map_or(interval, |d| d.max(MIN_ROLLOUT_POLL).min(interval))
}

/// `interval` ± `jitter` (a fraction), so replicas and restarts do not pass in step.
fn jittered(interval: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return interval;
    }
    let factor = 1.0 + (fastrand::f64() * 2.0 - 1.0) * jitter;
    interval.mul_f64(factor.max(0.0))
}
