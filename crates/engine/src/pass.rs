//! One reconcile pass over one target, and over every target of a desired state.

use std::collections::HashMap;
use std::sync::Arc;

use gec_aws::{AwsError, ClusterScope, Want};
use gec_model::desired::Target;
use gec_model::observed::{DeploymentController, ObservedCluster};
use gec_model::plan::{
    check_fleet, CompiledRules, CoverageChange, Limits, Phase, PlanOptions, TargetPlan,
};
use gec_model::{plan_target, Action, DesiredState, ObservedTarget};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info_span, Instrument};

use crate::apply::{apply_plan_fenced, log_result, ActionResult, Outcome, Skip, StopSignal};
use crate::cloud::TargetCloud;
use crate::conflict::Conflicts;
use crate::fence::Fence;
use crate::rollout::{Clock, Decision, RolloutEvent, Rollouts};

mod redeploy;

use redeploy::start_redeploy;

/// Targets reconciled at once by default.
pub const DEFAULT_MAX_CONCURRENT_TARGETS: usize = 8;

/// Whether a pass may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan only.
    Plan,
    /// Observe, plan, apply, then check what is left from the writes' answers.
    Apply,
}

/// Knobs of one pass.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Plan or apply.
    pub mode: Mode,
    /// Planner knobs (`--allow-mass-change`).
    pub plan: PlanOptions,
    /// Targets reconciled at once.
    pub max_concurrent_targets: usize,
    /// Raised on shutdown: start no new write.
    pub stop: StopSignal,
    /// With a lease: every write starts only while it permits ([`Fence`]).
    pub fence: Fence,
    /// The rollout gate and memory, shared by every target and kept across passes.
    pub rollouts: Rollouts,
    /// Wall-clock time for the rollout guards.
    pub clock: Clock,
    /// The desired state's generation (see [`Rollouts::desired_state`]): a new one lifts
    /// a `stopOnFailure` halt.
    pub generation: u64,
    /// Tug-of-war detection: what was written and reverted, kept across passes.
    pub conflicts: Conflicts,
}

impl PassOptions {
    /// Options for a pass in `mode` with the defaults otherwise.
    pub fn new(mode: Mode) -> Self {
        PassOptions {
            mode,
            plan: PlanOptions::default(),
            max_concurrent_targets: DEFAULT_MAX_CONCURRENT_TARGETS,
            stop: StopSignal::default(),
            fence: Fence::default(),
            rollouts: Rollouts::default(),
            clock: Clock::System,
            generation: 0,
            conflicts: Conflicts::default(),
        }
    }
}

/// What one pass did in one target.
#[derive(Debug, Clone)]
pub struct TargetPass {
    /// The target.
    pub target: Target,
    /// The plan; `None` when observation failed.
    pub plan: Option<TargetPlan>,
    /// What became of each applied action (empty when nothing was applied).
    pub results: Vec<ActionResult>,
    /// The AWS failure that stopped the pass, if any.
    pub error: Option<AwsError>,
    /// An apply pass under `suspend: true`: nothing was (or would have been) written.
    pub suspended: bool,
    /// After an apply: the plan a fresh observation gives (what is still pending).
    pub after: Option<TargetPlan>,
    /// Rollouts started earlier that settled, as seen in this pass.
    pub events: Vec<RolloutEvent>,
}

impl TargetPass {
    fn new(target: Target) -> Self {
        TargetPass {
            target,
            plan: None,
            results: Vec::new(),
            error: None,
            suspended: false,
            after: None,
            events: Vec::new(),
        }
    }

    /// After an apply: how many actions a fresh observation still finds pending.
    pub fn remaining(&self) -> Option<usize> {
        self.after.as_ref().map(|p| p.actions.len())
    }

    /// What is still to do: the plan after the apply when there was one, else the plan.
    pub fn pending(&self) -> Option<&TargetPlan> {
        self.after.as_ref().or(self.plan.as_ref())
    }

    /// Actions that failed in this pass.
    pub fn failed_actions(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.label() == "error")
            .count()
    }
}

/// Which clusters a pass must read in `region`: when every rule names a cluster exactly
/// and unmatched clusters are ignored, only those (plain names, and ARNs of this
/// region), without listing the account.
pub fn observe_scope(desired: &DesiredState, region: &str) -> ClusterScope {
    let rules = CompiledRules::new(desired);
    if rules.only_exact_names() {
        let here =
            |name: &&str| !name.starts_with("arn:") || name.split(':').nth(3) == Some(region);
        let mut names: Vec<String> = rules
            .exact_names()
            .filter(here)
            .map(str::to_owned)
            .collect();
        names.sort();
        ClusterScope::Named(names)
    } else {
        ClusterScope::All
    }
}

/// Observes one target: clusters and detector, then GuardDuty's coverage, then the tasks
/// and services of the clusters a rule names:
/// - whose coverage is on or turns on with this plan ([`Want::Coverage`]); then the
///   preflight of each described service that owns a task without a RUNNING agent there;
/// - whose coverage is off after the plan (lost, excluded, uncovered) and that run tasks
///   ([`Want::Offboarding`]: the tasks that still carry the agent, and their services),
///   unless an earlier read found none while coverage was off and coverage has not been
///   on since ([`Rollouts::agent_free`]): no new task gets the agent while it is off.
///
/// The coverage records come first: the task cache of a cluster GuardDuty reports
/// UNHEALTHY reads its running agents again. A failed workload or coverage read is a
/// warning (redeploys of that cluster wait), not a failed pass: tags and detector changes
/// must not depend on it.
async fn observe_target<C: TargetCloud>(
    cloud: &C,
    scope: &ClusterScope,
    desired: &DesiredState,
    options: &PassOptions,
    warnings: &mut Vec<String>,
) -> Result<(ObservedTarget, TargetPlan), AwsError> {
    let mut observed = cloud.observe(scope).await?;
    let plan_options = PlanOptions {
        now_ms: options.clock.now_ms(),
        ..options.plan
    };
    let first = plan_target(desired, &observed, plan_options);
    let wants: HashMap<&str, (Want, CoverageChange)> = first
        .clusters
        .iter()
        .filter(|r| r.desired.is_some())
        .filter_map(|r| {
            let want = match r.coverage {
                CoverageChange::Covered | CoverageChange::Expected => Want::Coverage,
                CoverageChange::Lost | CoverageChange::Excluded | CoverageChange::Uncovered => {
                    Want::Offboarding
                }
                CoverageChange::Unmanaged => return None,
            };
            Some((r.cluster.as_str(), (want, r.coverage)))
        })
        .collect();
    // (index in observed.clusters, want, coverage change, watched services)
    let mut reads = Vec::new();
    for (index, cluster) in observed.clusters.iter().enumerate() {
        let Some(&(want, change)) = wants.get(cluster.name.as_str()) else {
            continue;
        };
        if !cluster.is_active() {
            continue;
        }
        let watch = options.rollouts.watched_services(&cluster.arn);
        if want == Want::Offboarding
            && watch.is_empty()
            && (cluster.running_tasks == 0 || options.rollouts.agent_free(&cluster.arn))
        {
            continue;
        }
        reads.push((index, want, change, watch));
    }
    // GuardDuty reports no coverage while Runtime Monitoring is off (the plan turns it on
    // first; the next pass reads it).
    let monitoring = observed
        .detector
        .as_ref()
        .filter(|d| d.runtime_monitoring_on())
        .map(|d| d.id.clone());
    if let (Some(detector), false) = (monitoring, reads.is_empty()) {
        match cloud.list_coverage(&detector).await {
            Ok(mut coverage) => {
                for cluster in observed.clusters.iter_mut() {
                    cluster.coverage = coverage.remove(&cluster.arn);
                }
            }
            Err(e) => warnings.push(format!("could not read GuardDuty coverage: {e}")),
        }
    }
    for (index, want, change, watch) in reads {
        let cluster = &mut observed.clusters[index];
        match cloud.observe_workload(cluster, &watch, want).await {
            Ok(w) => {
                // Only a cluster off now (not one this plan turns off) stays agent-free.
                if want == Want::Offboarding
                    && change != CoverageChange::Lost
                    && w.agent_tasks() == 0
                {
                    options.rollouts.found_agent_free(&cluster.arn);
                }
                cluster.workload = Some(w);
            }
            Err(e) => warnings.push(format!(
                "could not read the tasks of {}: {e}; its redeploys wait",
                cluster.name
            )),
        }
        if want == Want::Coverage {
            preflight_services(cloud, cluster).await;
        }
    }
    let now = options.clock.now_ms();
    options.rollouts.annotate(&mut observed, now);
    let mut plan = plan_target(
        desired,
        &observed,
        PlanOptions {
            now_ms: now,
            ..options.plan
        },
    );
    plan.warnings.append(warnings);
    Ok((observed, plan))
}

/// Preflight of each described service of a covered cluster that owns a Fargate task
/// without a RUNNING agent, one at a time (the answers are cached by the cloud: a steady
/// pass makes no request for them).
async fn preflight_services<C: TargetCloud>(cloud: &C, cluster: &mut ObservedCluster) {
    let Some(workload) = cluster.workload.as_mut() else {
        return;
    };
    for service in &mut workload.services {
        // A service only its own deployer can redeploy is held whatever its agent's
        // prerequisites say: nothing to check.
        if matches!(
            service.controller,
            DeploymentController::External | DeploymentController::Other(_)
        ) {
            continue;
        }
        let lacking = workload
            .service_tasks
            .get(&service.name)
            .is_some_and(|c| c.without_agent > 0);
        if lacking {
            service.preflight = Some(cloud.preflight(service).await);
        }
    }
}

/// Reconciles one target on its own: [`reconcile_fleet`] with a fleet of one. Observe,
/// plan, check the limits, and in [`Mode::Apply`] apply the tag and detector phases,
/// check what is left from the writes' answers, then start the redeploys the rollout
/// gate allows.
///
/// # Guarantees
/// Writes nothing in [`Mode::Plan`], under `suspend: true`, or when a safety limit
/// refused the plan. Redeploys start only after every tag and detector action of the pass
/// succeeded, and only through the fleet-wide rollout gate. Never acts on why it was
/// called: the same inputs give the same writes.
///
/// # Caveats
/// The limits count this target alone; passes over several targets go through
/// [`reconcile_fleet`] (or [`reconcile_all`]) so that they count the whole fleet.
///
/// # Errors
/// An observation failure is returned in [`TargetPass::error`]; per-action failures are
/// in [`TargetPass::results`].
pub async fn reconcile_target<C: TargetCloud>(
    cloud: &C,
    target: Target,
    desired: &DesiredState,
    options: &PassOptions,
) -> TargetPass {
    let (pass, observed) = plan_stage(cloud, target, desired, options).await;
    let mut passes = [pass];
    check_limits(&mut passes, desired, options);
    judge_conflicts(&mut passes, desired, options);
    let [pass] = passes;
    apply_stage(cloud, pass, observed, desired, options).await
}

/// The first stage of a pass in one target: observe and plan, write nothing. Returns the
/// pass with its plan (or its observation error) and what was observed.
async fn plan_stage<C: TargetCloud>(
    cloud: &C,
    target: Target,
    desired: &DesiredState,
    options: &PassOptions,
) -> (TargetPass, Option<ObservedTarget>) {
    let scope = observe_scope(desired, &target.region);
    let label = target.label();
    let mut pass = TargetPass::new(target);
    options.rollouts.desired_state(options.generation);
    match observe_target(cloud, &scope, desired, options, &mut Vec::new()).await {
        Ok((observed, plan)) => {
            pass.events = options.rollouts.observe(
                &label,
                &observed,
                &desired.redeploy,
                options.clock.now_ms(),
            );
            pass.suspended = desired.suspend && options.mode == Mode::Apply;
            pass.plan = Some(plan);
            (pass, Some(observed))
        }
        Err(e) => {
            pass.error = Some(e);
            (pass, None)
        }
    }
}

/// The second check of a pass, between planning and writing: the limits across every
/// planned target (see [`gec_model::plan::check_fleet`]). A file value above its ceiling
/// is logged here, once per pass.
fn check_limits(passes: &mut [TargetPass], desired: &DesiredState, options: &PassOptions) {
    for clamped in Limits::clamped(&desired.safety, options.plan.ceilings) {
        tracing::warn!(
            limit = clamped.limit,
            file = clamped.file,
            ceiling = clamped.ceiling,
            "{clamped}"
        );
    }
    let mut plans: Vec<(&Target, &mut TargetPlan)> = passes
        .iter_mut()
        .filter_map(|p| {
            let TargetPass { target, plan, .. } = p;
            Some((&*target, plan.as_mut()?))
        })
        .collect();
    check_fleet(&mut plans, &desired.safety, options.plan);
}

/// The third step of a pass, after the limits were checked and before anything is
/// written: each planned target's reverts are counted and the changes of resources in
/// conflict leave its plan ([`Conflicts::judge`]). The limits count the plan as the
/// planner made it, conflicted changes included: a conflict never makes room for other
/// changes (and a refused plan writes nothing, so it arms no revert).
fn judge_conflicts(passes: &mut [TargetPass], desired: &DesiredState, options: &PassOptions) {
    let now = options.clock.now_ms();
    for pass in passes.iter_mut() {
        let label = pass.target.label();
        if let Some(plan) = pass.plan.as_mut() {
            options
                .conflicts
                .judge(&label, plan, &desired.reconcile.conflicts, now);
        }
    }
}

/// The last stage of a pass in one target, after the limits were checked: in
/// [`Mode::Apply`] apply the tag and detector phases, check what is left, then start the
/// redeploys the rollout gate allows. A pass without a plan (its observation failed) or
/// whose plan was refused is returned as it is.
///
/// The check reads nothing again: every tag and detector write answers whether it took
/// (TagResources and UntagResources per ARN, UpdateDetector with the absolute statuses it
/// sent), so the observation is brought up to date from those answers
/// ([`Action::written`]) and planned again. What is still pending is what failed, and the
/// redeploys of clusters whose coverage the writes turned on (their tasks were read with
/// the first observation).
async fn apply_stage<C: TargetCloud>(
    cloud: &C,
    mut pass: TargetPass,
    observed: Option<ObservedTarget>,
    desired: &DesiredState,
    options: &PassOptions,
) -> TargetPass {
    let Some(plan) = pass.plan.take() else {
        return pass;
    };
    let label = pass.target.label();
    let spec = &desired.redeploy;
    let mut observed = observed;
    let may_write = options.mode == Mode::Apply && plan.refused.is_none() && !desired.suspend;
    if !may_write {
        pass.plan = Some(plan);
        return pass;
    }
    let mut base = None;
    if plan.actions.iter().any(|a| a.phase() != Phase::Redeploy) {
        pass.results = apply_plan_fenced(cloud, &plan, &options.stop, &options.fence).await;
        if desired.reconcile.conflicts.reverts > 0 {
            options
                .conflicts
                .written(&label, &pass.results, options.clock.now_ms());
        }
        if let Some(mut seen) = observed.take() {
            for r in pass
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Success)
            {
                r.action.written(&mut seen);
            }
            let now = options.clock.now_ms();
            options.rollouts.annotate(&mut seen, now);
            let mut after = plan_target(
                desired,
                &seen,
                PlanOptions {
                    now_ms: now,
                    ..options.plan
                },
            );
            options.conflicts.hold(&label, &mut after);
            after.warnings.clone_from(&plan.warnings);
            base = Some(after);
        }
    }
    let earlier_failed = pass.results.iter().any(|r| r.outcome != Outcome::Success);
    let source = base.as_ref().unwrap_or(&plan);
    let redeploys: Vec<&Action> = source
        .actions
        .iter()
        .filter(|a| a.phase() == Phase::Redeploy)
        .collect();
    let mut started = Vec::new();
    if !redeploys.is_empty() && pass.error.is_none() && source.refused.is_none() {
        let decisions: Vec<(&Action, Option<Decision>)> = if earlier_failed {
            redeploys.into_iter().map(|a| (a, None)).collect()
        } else {
            options
                .rollouts
                .schedule(&label, &redeploys, spec, options.clock.now_ms())
                .into_iter()
                .map(|(a, d)| (a, Some(d)))
                .collect()
        };
        for (action, decision) in decisions {
            let outcome = match (decision, action) {
                (None, _) => Outcome::Skipped(Skip::AfterFailure),
                (Some(Decision::Wait(why)), _) => Outcome::Skipped(Skip::Gate(why)),
                (
                    Some(Decision::Start),
                    Action::RedeployService {
                        cluster_arn,
                        service,
                        service_arn,
                        via,
                        ..
                    },
                ) => {
                    let service = (cluster_arn.as_str(), service.as_str(), service_arn.as_str());
                    let outcome = start_redeploy(cloud, service, via, options, spec).await;
                    if outcome == Outcome::Success {
                        started.push(action.clone());
                    }
                    outcome
                }
                // The gate decides redeploys only: nothing else is started here.
                (Some(Decision::Start), _) => continue,
            };
            let result = ActionResult {
                action: action.clone(),
                outcome,
            };
            log_result(&result);
            pass.results.push(result);
        }
    }
    if let Some(mut after) = base {
        after.actions.retain(|a| !started.contains(a));
        pass.after = Some(after);
    } else if !started.is_empty() {
        let mut after = plan.clone();
        after.actions.retain(|a| !started.contains(a));
        pass.after = Some(after);
    }
    pass.plan = Some(plan);
    pass
}

/// Reconciles targets of `desired`, each through its cloud, in two stages: observe and
/// plan every target, then check the safety limits across all of them, then apply; each
/// stage runs at most `max_concurrent_targets` targets at once. Passes come back in the
/// order of `clouds`.
///
/// # Guarantees
/// - Nothing is written before every target has been observed and planned, and nothing
///   at all (tags, detector, redeploys) in any target when one target's plan, or the
///   fleet's sum, is over a safety limit: then every plan carries a refusal
///   ([`gec_model::plan::check_fleet`]). The limits are the file's, clamped to
///   `options.plan.ceilings`.
/// - One target's failure never stops the others: a target that fails to observe
///   contributes nothing to the limits and the others go on.
/// - Otherwise each target is applied as [`reconcile_target`] would.
///
/// # Caveats
/// The limits count the targets of this call only: the daemon's timer passes skip targets
/// in backoff, so those count in the pass that retries them.
///
/// # Errors
/// Per target, in [`TargetPass::error`] and [`TargetPass::results`].
pub async fn reconcile_fleet<C: TargetCloud + 'static>(
    clouds: Vec<(Target, Arc<C>)>,
    desired: Arc<DesiredState>,
    options: PassOptions,
) -> Vec<TargetPass> {
    let limit = Arc::new(Semaphore::new(options.max_concurrent_targets.max(1)));
    let options = Arc::new(options);
    let mut planning = JoinSet::new();
    let mut ids = HashMap::new();
    for (index, (target, cloud)) in clouds.iter().enumerate() {
        let (cloud, target, desired, limit, options) = (
            Arc::clone(cloud),
            target.clone(),
            Arc::clone(&desired),
            Arc::clone(&limit),
            Arc::clone(&options),
        );
        let span = info_span!("target", target = %target.label());
        let task = planning.spawn(
            async move {
                let _permit = limit.acquire_owned().await;
                (index, plan_stage(&*cloud, target, &desired, &options).await)
            }
            .instrument(span),
        );
        ids.insert(task.id(), index);
    }
    let mut planned = joined(planning, &ids, |index, error| {
        (panicked(&clouds[index].0, error), None)
    })
    .await;
    let (mut passes, seen): (Vec<TargetPass>, Vec<(usize, Option<ObservedTarget>)>) = planned
        .drain(..)
        .map(|(index, (pass, observed))| (pass, (index, observed)))
        .unzip();
    check_limits(&mut passes, &desired, &options);
    judge_conflicts(&mut passes, &desired, &options);

    let mut applying = JoinSet::new();
    ids.clear();
    for (pass, (index, observed)) in passes.into_iter().zip(seen) {
        let (cloud, desired, limit, options) = (
            Arc::clone(&clouds[index].1),
            Arc::clone(&desired),
            Arc::clone(&limit),
            Arc::clone(&options),
        );
        let span = info_span!("target", target = %pass.target.label());
        let task = applying.spawn(
            async move {
                let _permit = limit.acquire_owned().await;
                (
                    index,
                    apply_stage(&*cloud, pass, observed, &desired, &options).await,
                )
            }
            .instrument(span),
        );
        ids.insert(task.id(), index);
    }
    joined(applying, &ids, |index, error| {
        panicked(&clouds[index].0, error)
    })
    .await
    .into_iter()
    .map(|(_, p)| p)
    .collect()
}

/// The results of a stage's tasks, in target order. A task that panicked (a bug) must not
/// take the others down, nor vanish: it is logged and stands as `failed(index, error)`,
/// a failed target (and contributes nothing to the limits).
async fn joined<T: 'static>(
    mut tasks: JoinSet<(usize, T)>,
    ids: &HashMap<tokio::task::Id, usize>,
    failed: impl Fn(usize, AwsError) -> T,
) -> Vec<(usize, T)> {
    let mut done = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, d)) => done.push(d),
            Err(e) => {
                let Some(&index) = ids.get(&e.id()) else {
                    tracing::error!(error = %e, "a target's reconcile task failed");
                    continue;
                };
                let message = panic_message(e);
                tracing::error!(error = %message, "a target's reconcile task panicked (a bug)");
                let error = AwsError::new(
                    gec_aws::ErrorKind::Other,
                    "Reconcile",
                    None,
                    format!("the target's pass panicked (a bug): {message}"),
                );
                done.push((index, failed(index, error)));
            }
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done
}

/// A pass of `target` that failed with `error` before it had a plan.
fn panicked(target: &Target, error: AwsError) -> TargetPass {
    let mut pass = TargetPass::new(target.clone());
    pass.error = Some(error);
    pass
}

/// What a task's panic said, at most 512 bytes; "cancelled" for a cancelled task.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    let mut end = text.len().min(512);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
