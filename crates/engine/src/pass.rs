//! One reconcile pass over one target, and over every target of a desired state.

use std::sync::Arc;

use gec_aws::{AwsContext, AwsError, ClusterScope};
use gec_model::desired::Target;
use gec_model::plan::{CompiledRules, PlanOptions, TargetPlan};
use gec_model::{plan_target, DesiredState};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info_span, Instrument};

use crate::apply::{apply_plan_until, ActionResult, StopSignal};
use crate::cloud::TargetCloud;

/// Targets reconciled at once by default.
pub const DEFAULT_MAX_CONCURRENT_TARGETS: usize = 8;

/// Whether a pass may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and plan only.
    Plan,
    /// Observe, plan, apply, then observe again to check convergence.
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
}

impl PassOptions {
    /// Options for a pass in `mode` with the defaults otherwise.
    pub fn new(mode: Mode) -> Self {
        PassOptions {
            mode,
            plan: PlanOptions::default(),
            max_concurrent_targets: DEFAULT_MAX_CONCURRENT_TARGETS,
            stop: StopSignal::default(),
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

/// Reconciles one target: observe, plan, and in [`Mode::Apply`] apply and re-observe.
///
/// # Guarantees
/// Writes nothing in [`Mode::Plan`], under `suspend: true`, or when a safety limit
/// refused the plan. Never acts on why it was called: the same inputs give the same
/// writes.
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
    let scope = observe_scope(desired, &target.region);
    let mut pass = TargetPass::new(target);
    let observed = match cloud.observe(&scope).await {
        Ok(o) => o,
        Err(e) => {
            pass.error = Some(e);
            return pass;
        }
    };
    let plan = plan_target(desired, &observed, options.plan);
    pass.suspended = desired.suspend && options.mode == Mode::Apply;
    let must_write =
        options.mode == Mode::Apply && !plan.actions.is_empty() && plan.refused.is_none();
    if must_write && !desired.suspend {
        pass.results = apply_plan_until(cloud, &plan, &options.stop).await;
        match cloud.observe(&scope).await {
            Ok(after) => pass.after = Some(plan_target(desired, &after, options.plan)),
            Err(e) => pass.error = Some(e),
        }
    }
    pass.plan = Some(plan);
    pass
}

/// Reconciles every target of the desired state against AWS, at most
/// `max_concurrent_targets` at once. One target's failure never stops the others.
pub async fn reconcile_all(
    ctx: &AwsContext,
    desired: Arc<DesiredState>,
    options: PassOptions,
) -> Vec<TargetPass> {
    let limit = Arc::new(Semaphore::new(options.max_concurrent_targets.max(1)));
    let mut tasks = JoinSet::new();
    for (index, target) in desired.targets.iter().cloned().enumerate() {
        let (ctx, desired, limit, options) = (
            ctx.clone(),
            Arc::clone(&desired),
            Arc::clone(&limit),
            options.clone(),
        );
        let span = info_span!("target", target = %target.label());
        tasks.spawn(
            async move {
                let _permit = limit.acquire_owned().await;
                let client = ctx.target(&target).await;
                (
                    index,
                    reconcile_target(&client, target, &desired, &options).await,
                )
            }
            .instrument(span),
        );
    }
    let mut passes: Vec<(usize, TargetPass)> = Vec::with_capacity(desired.targets.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => passes.push(done),
            // A panic in one target's task must not take the others down; it is a bug,
            // so surface it loudly.
            Err(e) => tracing::error!(error = %e, "a target's reconcile task panicked"),
        }
    }
    passes.sort_by_key(|(i, _)| *i);
    passes.into_iter().map(|(_, p)| p).collect()
}
