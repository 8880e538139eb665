//! Applying one target's plan, phase by phase.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gec_aws::{AwsError, BatchOutcome, FeatureChange};
use gec_model::plan::{Phase, TargetPlan};
use gec_model::Action;
use tracing::{info, warn};

use crate::cloud::TargetCloud;

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// AWS accepted the write.
    Success,
    /// AWS refused or failed the write.
    Failed(AwsError),
    /// Not attempted, with the reason.
    Skipped(&'static str),
}

impl Outcome {
    /// The `result` label of `actions_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed(_) => "error",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

/// One action and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionResult {
    /// The planned action.
    pub action: Action,
    /// Its outcome.
    pub outcome: Outcome,
}

/// Why later phases were not attempted.
pub const SKIPPED_AFTER_FAILURE: &str =
    "an earlier phase had failures; later phases wait for the next pass";

/// Tells passes to start no new write (the daemon's shutdown). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// From now on, passes start no new write.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`StopSignal::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why actions were not attempted after a stop.
pub const SKIPPED_STOPPING: &str = "the controller is shutting down";

/// Applies a plan's tag and detector phases in order: tags, detector, untag. Redeploys
/// are not applied here: they start through the rollout gate once these phases are done.
///
/// # Guarantees
/// Phases run strictly in order, and a phase starts only when every action of the
/// phases before it succeeded. So an exclusion tag that could not be written never lets
/// automation turn on, and a crash between phases leaves no more coverage off than the
/// old or the new desired state would. A refused plan writes nothing.
///
/// # Errors
/// Failures are reported per action in the result, never returned.
pub async fn apply_plan<C: TargetCloud>(cloud: &C, plan: &TargetPlan) -> Vec<ActionResult> {
    apply_plan_until(cloud, plan, &StopSignal::default()).await
}

/// [`apply_plan`], starting no new write once `stop` is raised: the actions not yet
/// started are reported skipped.
pub async fn apply_plan_until<C: TargetCloud>(
    cloud: &C,
    plan: &TargetPlan,
    stop: &StopSignal,
) -> Vec<ActionResult> {
    if plan.refused.is_some() {
        return skip_all(&plan.actions, "the plan was refused by a safety limit");
    }
    let mut results: Vec<ActionResult> = Vec::with_capacity(plan.actions.len());
    for phase in [Phase::Tags, Phase::Detector, Phase::Untag] {
        let actions: Vec<&Action> = plan.actions.iter().filter(|a| a.phase() == phase).collect();
        if actions.is_empty() {
            continue;
        }
        let skip = if stop.is_stopped() {
            Some(SKIPPED_STOPPING)
        } else if results.iter().any(|r| r.outcome != Outcome::Success) {
            Some(SKIPPED_AFTER_FAILURE)
        } else {
            None
        };
        if let Some(why) = skip {
            results.extend(actions.into_iter().map(|a| ActionResult {
                action: a.clone(),
                outcome: Outcome::Skipped(why),
            }));
            continue;
        }
        let done = results.len();
        match phase {
            Phase::Tags => {
                // Exclusions first: within the phase it does not matter for coverage, but
                // it keeps the order of writes the same on every pass.
                for value in ["false", "true"] {
                    let batch: Vec<&Action> = actions
                        .iter()
                        .copied()
                        .filter(|a| matches!(a, Action::TagCluster { to, .. } if *to == value))
                        .collect();
                    if stop.is_stopped() {
                        results.extend(batch.iter().map(|a| ActionResult {
                            action: (*a).clone(),
                            outcome: Outcome::Skipped(SKIPPED_STOPPING),
                        }));
                    } else if !batch.is_empty() {
                        let outcome = cloud.tag_clusters(&arns(&batch), value).await;
                        results.extend(per_arn(&batch, &outcome));
                    }
                }
            }
            Phase::Detector => results.extend(apply_detector(cloud, &actions).await),
            Phase::Untag => {
                let outcome = cloud.untag_clusters(&arns(&actions)).await;
                results.extend(per_arn(&actions, &outcome));
            }
            // Redeploys go through the rollout gate (`pass.rs`), never through here.
            Phase::Redeploy => {}
        }
        results[done..].iter().for_each(log_result);
    }
    results
}

async fn apply_detector<C: TargetCloud>(cloud: &C, actions: &[&Action]) -> Vec<ActionResult> {
    let mut detector = None;
    let mut changes = Vec::new();
    for a in actions {
        if let Action::UpdateDetector {
            detector_id,
            feature,
            to,
            ..
        } = a
        {
            detector = Some(detector_id.as_str());
            changes.push(FeatureChange {
                name: feature,
                status: to,
            });
        }
    }
    let outcome = match detector {
        Some(id) => match cloud.update_detector(id, &changes).await {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Failed(e),
        },
        None => Outcome::Skipped("no detector"),
    };
    actions
        .iter()
        .map(|a| ActionResult {
            action: (*a).clone(),
            outcome: outcome.clone(),
        })
        .collect()
}

fn arns(actions: &[&Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| a.cluster_arn())
        .map(str::to_owned)
        .collect()
}

fn per_arn(actions: &[&Action], outcome: &BatchOutcome) -> Vec<ActionResult> {
    actions
        .iter()
        .map(|a| ActionResult {
            action: (*a).clone(),
            outcome: match a.cluster_arn().and_then(|arn| outcome.failed.get(arn)) {
                Some(e) => Outcome::Failed(e.clone()),
                None => Outcome::Success,
            },
        })
        .collect()
}

fn skip_all(actions: &[Action], why: &'static str) -> Vec<ActionResult> {
    actions
        .iter()
        .map(|a| ActionResult {
            action: a.clone(),
            outcome: Outcome::Skipped(why),
        })
        .collect()
}

pub(crate) fn log_result(r: &ActionResult) {
    let t = r.action.target();
    let what = match &r.action {
        Action::TagCluster { cluster, to, .. } => format!("tag {cluster} GuardDutyManaged={to}"),
        Action::UntagCluster { cluster, .. } => format!("untag {cluster} GuardDutyManaged"),
        Action::UpdateDetector {
            detector_id,
            feature,
            to,
            ..
        } => format!("detector {detector_id} {feature}={to}"),
        Action::RedeployService {
            cluster,
            service,
            reason,
            ..
        } => format!("redeploy {cluster}/{service} ({reason})"),
    };
    match &r.outcome {
        Outcome::Success => {
            info!(region = %t.region, kind = r.action.kind(), result = "success", "{what}")
        }
        Outcome::Failed(e) => {
            warn!(region = %t.region, kind = r.action.kind(), result = "error", error = %e, "{what}")
        }
        Outcome::Skipped(why) => {
            info!(region = %t.region, kind = r.action.kind(), result = "skipped", reason = why, "{what}")
        }
    }
}
