//! Applying one target's plan, phase by phase.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gec_aws::{AwsError, BatchOutcome, FeatureChange};
use gec_model::plan::{Phase, TargetPlan};
use gec_model::Action;
use tracing::{info, warn};

use crate::cloud::TargetCloud;
use crate::fence::Fence;
use crate::rollout::Wait;

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// AWS accepted the write.
    Success,
    /// AWS refused or failed the write.
    Failed(AwsError),
    /// Not attempted, and why.
    Skipped(Skip),
}

/// Why an action was not attempted. `Display` is the sentence for people;
/// [`Skip::code`] the stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The rollout gate holds the redeploy back.
    Gate(Wait),
    /// An earlier phase had failures; later phases wait for the next pass.
    AfterFailure,
    /// The controller is shutting down: no new write starts.
    Stopping,
    /// A safety limit refused the plan.
    Refused,
    /// The detector changes have no detector to go to.
    NoDetector,
    /// With a lease: this replica does not hold it (or its hold may have run out), so it
    /// writes nothing ([`Fence`]).
    NotLeader,
}

impl Skip {
    /// A stable snake_case identifier.
    pub fn code(self) -> &'static str {
        match self {
            Skip::Gate(wait) => wait.code(),
            Skip::AfterFailure => "after_failure",
            Skip::Stopping => "stopping",
            Skip::Refused => "refused",
            Skip::NoDetector => "no_detector",
            Skip::NotLeader => "not_leader",
        }
    }

    /// What the rollout gate said, when the gate skipped it.
    pub fn gate(self) -> Option<Wait> {
        match self {
            Skip::Gate(wait) => Some(wait),
            _ => None,
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Gate(wait) => wait.fmt(f),
            Skip::AfterFailure => {
                f.write_str("an earlier phase had failures; later phases wait for the next pass")
            }
            Skip::Stopping => f.write_str("the controller is shutting down"),
            Skip::Refused => f.write_str("the plan was refused by a safety limit"),
            Skip::NoDetector => f.write_str("no detector"),
            Skip::NotLeader => f.write_str("this replica does not hold the lease"),
        }
    }
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

/// Tells passes to start no new write, and the loop to end (the daemon's shutdown).
/// Cheap to clone; clones share the signal.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<StopState>);

#[derive(Debug, Default)]
struct StopState {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopSignal {
    /// From now on, passes start no new write; [`StopSignal::stopped`] completes.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`StopSignal::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Completes once [`StopSignal::stop`] is called (at once if it was).
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a stop between the two is not missed.
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

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
    apply_plan_fenced(cloud, plan, stop, &Fence::default()).await
}

/// [`apply_plan_until`], and starting each write (each tag batch, untag batch, detector
/// and organization write) only while `fence` permits: the writes it closes on are
/// skipped with [`Skip::NotLeader`], never attempted.
pub async fn apply_plan_fenced<C: TargetCloud>(
    cloud: &C,
    plan: &TargetPlan,
    stop: &StopSignal,
    fence: &Fence,
) -> Vec<ActionResult> {
    if plan.refused.is_some() {
        return skip_all(&plan.actions, Skip::Refused);
    }
    let mut results: Vec<ActionResult> = Vec::with_capacity(plan.actions.len());
    for phase in [Phase::Tags, Phase::Detector, Phase::Untag] {
        let actions: Vec<&Action> = plan.actions.iter().filter(|a| a.phase() == phase).collect();
        if actions.is_empty() {
            continue;
        }
        let skip = if stop.is_stopped() {
            Some(Skip::Stopping)
        } else if !fence.permits() {
            Some(Skip::NotLeader)
        } else if results.iter().any(|r| r.outcome != Outcome::Success) {
            Some(Skip::AfterFailure)
        } else {
            None
        };
        if let Some(why) = skip {
            // Turning the organization's auto-enable off only narrows what GuardDuty turns
            // on by itself for joining accounts: it never waits for the phases before it.
            let (narrowing, rest): (Vec<&Action>, Vec<&Action>) =
                actions.into_iter().partition(|a| {
                    why == Skip::AfterFailure
                        && matches!(
                            a,
                            Action::UpdateOrganizationConfiguration {
                                to: gec_model::desired::AutoEnable::None,
                                ..
                            }
                        )
                });
            results.extend(rest.into_iter().map(|a| ActionResult {
                action: a.clone(),
                outcome: Outcome::Skipped(why),
            }));
            if !narrowing.is_empty() {
                let done = results.len();
                results.extend(apply_detector(cloud, &narrowing, fence).await);
                results[done..].iter().for_each(log_result);
            }
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
                    let skip = if stop.is_stopped() {
                        Some(Skip::Stopping)
                    } else if !fence.permits() {
                        Some(Skip::NotLeader)
                    } else {
                        None
                    };
                    if let Some(why) = skip {
                        results.extend(batch.iter().map(|a| ActionResult {
                            action: (*a).clone(),
                            outcome: Outcome::Skipped(why),
                        }));
                    } else if !batch.is_empty() {
                        let outcome = cloud.tag_clusters(&arns(&batch), value).await;
                        results.extend(per_arn(&batch, &outcome));
                    }
                }
            }
            Phase::Detector => results.extend(apply_detector(cloud, &actions, fence).await),
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

async fn apply_detector<C: TargetCloud>(
    cloud: &C,
    actions: &[&Action],
    fence: &Fence,
) -> Vec<ActionResult> {
    let mut detector = None;
    let mut changes = Vec::new();
    let mut features = Vec::new();
    let mut organization = None;
    let mut auto_enable = Vec::new();
    let mut org_actions = Vec::new();
    for a in actions {
        match a {
            Action::UpdateDetector {
                detector_id,
                feature,
                to,
                ..
            } => {
                detector = Some(detector_id.as_str());
                changes.push(FeatureChange {
                    name: feature,
                    status: to,
                });
                features.push(*a);
            }
            Action::UpdateOrganizationConfiguration {
                detector_id,
                feature,
                to,
                ..
            } => {
                organization = Some(detector_id.as_str());
                auto_enable.push((*feature, *to));
                org_actions.push(*a);
            }
            _ => {}
        }
    }
    let mut results = Vec::with_capacity(actions.len());
    let mut detector_ok = true;
    if !features.is_empty() {
        let outcome = match detector {
            Some(_) if !fence.permits() => Outcome::Skipped(Skip::NotLeader),
            Some(id) => match cloud.update_detector(id, &changes).await {
                Ok(()) => Outcome::Success,
                Err(e) => Outcome::Failed(e),
            },
            None => Outcome::Skipped(Skip::NoDetector),
        };
        detector_ok = outcome == Outcome::Success;
        results.extend(features.iter().map(|a| ActionResult {
            action: (*a).clone(),
            outcome: outcome.clone(),
        }));
    }
    // The organization's auto-enable after the administrator's own detector: a pass
    // whose detector write failed changes nothing more this pass.
    if let Some(id) = organization {
        let outcome = if !fence.permits() {
            Outcome::Skipped(Skip::NotLeader)
        } else if detector_ok {
            match cloud.update_organization(id, &auto_enable).await {
                Ok(()) => Outcome::Success,
                Err(e) => Outcome::Failed(e),
            }
        } else {
            Outcome::Skipped(Skip::AfterFailure)
        };
        results.extend(org_actions.iter().map(|a| ActionResult {
            action: (*a).clone(),
            outcome: outcome.clone(),
        }));
    }
    results
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

fn skip_all(actions: &[Action], why: Skip) -> Vec<ActionResult> {
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
        Action::UpdateOrganizationConfiguration {
            detector_id,
            feature,
            to,
            ..
        } => format!(
            "organization configuration of {detector_id}: {feature} auto-enable {}",
            to.as_aws()
        ),
        Action::RedeployService {
            cluster,
            service,
            purpose,
            reason,
            ..
        } => format!(
            "redeploy {cluster}/{service} to {} ({reason})",
            match purpose {
                gec_model::plan::RedeployPurpose::AddAgent => "add the agent",
                gec_model::plan::RedeployPurpose::RemoveAgent => "remove the agent",
            }
        ),
    };
    match &r.outcome {
        Outcome::Success => {
            info!(region = %t.region, kind = r.action.kind(), result = "success", "{what}")
        }
        Outcome::Failed(e) => {
            warn!(region = %t.region, kind = r.action.kind(), result = "error", error = %e, "{what}")
        }
        Outcome::Skipped(why) => {
            info!(region = %t.region, kind = r.action.kind(), result = "skipped", reason = why.code(), "{what}")
        }
    }
}
