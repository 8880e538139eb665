//! The planner: desired state + observed state → an ordered list of actions. Pure and
//! deterministic.

mod conflict;
mod json;
mod limits;
mod redeploy;
mod rules;
mod window;

use std::collections::BTreeMap;

use crate::desired::{AutoEnable, CoverageLoss, DesiredState, FeatureSetting, ManagedTag};
use crate::observed::{
    effectively_covered, CoverageRecord, DeploymentController, DeploymentGroupRef,
    DeploymentStrategy, DetectorFlags, FeatureStatus, LoadBalancerTarget, ObservedCluster,
    ObservedFeature, ObservedTarget, Workload, ECS_FARGATE_AGENT_MANAGEMENT, MANAGED_TAG_KEY,
    RUNTIME_MONITORING,
};

pub use conflict::{Conflict, ConflictJson, ConflictKind};
pub use json::{
    output_schema, plan_schema, rfc3339, ActionJson, ChangeJson, ClusterJson, DesiredTag, HeldJson,
    PlanJson, RefusalJson,
};
pub use limits::{
    check_fleet, Ceilings, Clamped, Limits, Scope, DEFAULT_MAX_CLUSTER_CHANGES,
    DEFAULT_MAX_COVERAGE_LOSS, MAX_CLUSTER_CHANGES, MAX_COVERAGE_LOSS,
};
pub use redeploy::{Held, HoldReason, MAX_DETAIL_BYTES, PREFLIGHT_FINDING_CODES};
pub use rules::CompiledRules;
pub use window::window_open;

/// Where an action runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetRef {
    /// Region.
    pub region: String,
    /// Account, when known.
    pub account: Option<String>,
}

/// The phases of a plan, applied in this order so that coverage is never widened by
/// accident (DESIGN §2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Set tags to `true` / `false`.
    Tags,
    /// Detector feature changes.
    Detector,
    /// Remove tags (`absent`).
    Untag,
    /// Forced redeployments of services whose tasks lack the agent (rollout engine).
    Redeploy,
}

impl Phase {
    /// Name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Tags => "tags",
            Phase::Detector => "detector",
            Phase::Untag => "untag",
            Phase::Redeploy => "redeploy",
        }
    }
}

/// What a forced redeployment is for: a service's new tasks get the agent when its
/// cluster's coverage is on, and run without it once coverage is off.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RedeployPurpose {
    /// Coverage is on and tasks lack the agent: new tasks get it.
    AddAgent,
    /// Coverage is off (`redeploy.onCoverageLoss: redeploy`) and tasks still run the
    /// agent: new tasks run without it.
    RemoveAgent,
}

impl RedeployPurpose {
    /// Name used in output and logs: `add_agent`, `remove_agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            RedeployPurpose::AddAgent => "add_agent",
            RedeployPurpose::RemoveAgent => "remove_agent",
        }
    }
}

/// Which API a redeploy goes through: the service's deployment controller decides it
/// (DESIGN §1). `EXTERNAL` services are never redeployed (held).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deployer {
    /// `UpdateService(forceNewDeployment)`: the `ECS` controller, whatever its strategy.
    Ecs {
        /// The service's strategy (rolling, blue/green, linear, canary).
        strategy: DeploymentStrategy,
    },
    /// A CodeDeploy deployment of the service's *current* task definition (the same
    /// revision: only the tasks are replaced).
    CodeDeploy(Box<CodeDeployRedeploy>),
}

impl Deployer {
    /// The deployment controller, as ECS spells it: `ECS` or `CODE_DEPLOY`.
    pub fn controller(&self) -> DeploymentController {
        match self {
            Deployer::Ecs { .. } => DeploymentController::Ecs,
            Deployer::CodeDeploy(_) => DeploymentController::CodeDeploy,
        }
    }

    /// The ECS strategy, for the `ECS` controller.
    pub fn strategy(&self) -> Option<&DeploymentStrategy> {
        match self {
            Deployer::Ecs { strategy } => Some(strategy),
            Deployer::CodeDeploy(_) => None,
        }
    }
}

impl std::fmt::Display for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deployer::Ecs { strategy } => write!(f, "ECS {strategy}"),
            Deployer::CodeDeploy(c) => write!(f, "CODE_DEPLOY {}", c.group),
        }
    }
}

/// What a CodeDeploy redeploy sends: `CreateDeployment` in `group` with an AppSpec that
/// names the task definition and the load balancer's container and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodeDeployRedeploy {
    /// The deployment group that names the service.
    pub group: DeploymentGroupRef,
    /// The service's cluster name, as the group's `ecsServices` names it (checked right
    /// before the write: a group changed since it was read is not deployed to).
    pub cluster: String,
    /// The service's name, as the group's `ecsServices` names it.
    pub service: String,
    /// The task definition ARN the service runs now.
    pub task_definition: String,
    /// The service's load balancer container and port.
    pub load_balancer: LoadBalancerTarget,
    /// The Fargate platform version its PRIMARY task set runs, kept in the AppSpec so
    /// that only the tasks change; `None` when ECS does not say.
    pub platform_version: Option<String>,
}

/// One change to AWS.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Set `GuardDutyManaged` on a cluster.
    TagCluster {
        /// Target.
        target: TargetRef,
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Value now, if any.
        from: Option<String>,
        /// Value to set: `true` or `false`.
        to: &'static str,
    },
    /// Remove `GuardDutyManaged` from a cluster.
    UntagCluster {
        /// Target.
        target: TargetRef,
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Value now.
        from: String,
    },
    /// Change one detector feature or additional configuration.
    UpdateDetector {
        /// Target.
        target: TargetRef,
        /// Detector id.
        detector_id: String,
        /// `RUNTIME_MONITORING` or `ECS_FARGATE_AGENT_MANAGEMENT`.
        feature: &'static str,
        /// Status now, if listed.
        from: Option<FeatureStatus>,
        /// `ENABLED` or `DISABLED`.
        to: FeatureStatus,
    },
    /// Change GuardDuty's organization auto-enable of one feature or additional
    /// configuration, from the delegated administrator (`UpdateOrganizationConfiguration`,
    /// read-modify-write).
    UpdateOrganizationConfiguration {
        /// The administrator's target.
        target: TargetRef,
        /// The administrator's detector id.
        detector_id: String,
        /// `RUNTIME_MONITORING` or `ECS_FARGATE_AGENT_MANAGEMENT`.
        feature: &'static str,
        /// Auto-enable now (`NEW`, `ALL`, `NONE`), if listed.
        from: Option<String>,
        /// Auto-enable to set.
        to: crate::desired::AutoEnable,
    },
    /// Force a new deployment of a Fargate service so its tasks get the agent, or, after
    /// coverage loss, run without it.
    RedeployService {
        /// Target.
        target: TargetRef,
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Service name.
        service: String,
        /// Service ARN.
        service_arn: String,
        /// Add or remove the agent.
        purpose: RedeployPurpose,
        /// Which API starts the deployment.
        via: Deployer,
        /// Why, for humans: "2 of 3 running tasks lack the GuardDuty agent".
        reason: String,
        /// Not before this time (Unix ms): the cluster's coverage has been on for
        /// `settleTime`. `None` while coverage is not on yet (it turns on in this plan).
        /// Removing the agent has no settle time: the time of planning.
        not_before_ms: Option<i64>,
    },
}

impl Action {
    /// Brings `observed` to the state AWS is in once this action succeeded, as the
    /// write's own answer proves it (a tag set or removed, a detector feature at its new
    /// status: `UpdateDetector` sends absolute statuses), so a pass need not read it
    /// again. A redeploy changes nothing observed here.
    pub fn written(&self, observed: &mut ObservedTarget) {
        match self {
            Action::TagCluster {
                cluster_arn, to, ..
            } => {
                if let Some(c) = observed.cluster_mut(cluster_arn) {
                    c.tags.insert(MANAGED_TAG_KEY.to_owned(), (*to).to_owned());
                }
            }
            Action::UntagCluster { cluster_arn, .. } => {
                if let Some(c) = observed.cluster_mut(cluster_arn) {
                    c.tags.remove(MANAGED_TAG_KEY);
                }
            }
            Action::UpdateDetector {
                detector_id,
                feature,
                to,
                ..
            } => {
                let Some(detector) = observed.detector.as_mut().filter(|d| d.id == *detector_id)
                else {
                    return;
                };
                // The adapter writes RUNTIME_MONITORING with its additional configurations,
                // creating the feature DISABLED when the detector did not list it.
                let runtime = detector
                    .features
                    .entry(RUNTIME_MONITORING.to_owned())
                    .or_insert_with(|| ObservedFeature {
                        status: FeatureStatus::Disabled,
                        additional: BTreeMap::new(),
                    });
                if *feature == RUNTIME_MONITORING {
                    runtime.status = to.clone();
                } else {
                    runtime.additional.insert((*feature).to_owned(), to.clone());
                }
            }
            Action::UpdateOrganizationConfiguration { feature, to, .. } => {
                // The adapter reads the configuration and sends it back with this one
                // auto-enable changed (read-modify-write).
                observed
                    .organization
                    .get_or_insert_with(Default::default)
                    .auto_enable
                    .insert((*feature).to_owned(), to.as_aws().to_owned());
            }
            Action::RedeployService { .. } => {}
        }
    }

    /// The phase the action belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            Action::TagCluster { .. } => Phase::Tags,
            Action::UpdateDetector { .. } | Action::UpdateOrganizationConfiguration { .. } => {
                Phase::Detector
            }
            Action::UntagCluster { .. } => Phase::Untag,
            Action::RedeployService { .. } => Phase::Redeploy,
        }
    }

    /// The stable `kind` word of the plan JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::TagCluster { .. } => "tag_cluster",
            Action::UntagCluster { .. } => "untag_cluster",
            Action::UpdateDetector { .. } => "update_detector",
            Action::UpdateOrganizationConfiguration { .. } => "update_organization_configuration",
            Action::RedeployService { .. } => "redeploy_service",
        }
    }

    /// The cluster ARN a tag or redeploy action writes to; `None` for detector actions.
    pub fn cluster_arn(&self) -> Option<&str> {
        match self {
            Action::TagCluster { cluster_arn, .. }
            | Action::UntagCluster { cluster_arn, .. }
            | Action::RedeployService { cluster_arn, .. } => Some(cluster_arn),
            Action::UpdateDetector { .. } | Action::UpdateOrganizationConfiguration { .. } => None,
        }
    }

    /// The service a redeploy action restarts: (cluster ARN, service name, service ARN);
    /// `None` for other actions.
    pub fn redeployed_service(&self) -> Option<(&str, &str, &str)> {
        match self {
            Action::RedeployService {
                cluster_arn,
                service,
                service_arn,
                ..
            } => Some((cluster_arn, service, service_arn)),
            _ => None,
        }
    }

    /// The target the action writes to.
    pub fn target(&self) -> &TargetRef {
        match self {
            Action::TagCluster { target, .. }
            | Action::UntagCluster { target, .. }
            | Action::UpdateDetector { target, .. }
            | Action::UpdateOrganizationConfiguration { target, .. }
            | Action::RedeployService { target, .. } => target,
        }
    }
}

/// Why a plan was refused whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Region of the refused target.
    pub region: String,
    /// Whether the limit counted this target's plan or every target of the pass.
    pub scope: Scope,
    /// Labels of the targets that caused the refusal (for [`Scope::Target`], this one once
    /// [`check_fleet`] has run).
    pub targets: Vec<String>,
    /// Name of the limit, as in the YAML (`maxClusterChangesPerCycle`, ...).
    pub limit: &'static str,
    /// What the plan would do.
    pub value: f64,
    /// The limit's value.
    pub max: f64,
    /// A sentence for humans.
    pub reason: String,
}

/// Coverage of a cluster now and once the plan is applied.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CoverageChange {
    /// Covered now and after.
    Covered,
    /// Not covered now; covered once the plan is applied.
    Expected,
    /// Covered now; not once the plan is applied.
    Lost,
    /// Not covered, because the cluster is excluded (`false`).
    Excluded,
    /// Not covered, and no rule names the cluster.
    Unmanaged,
    /// Not covered although a rule names it (detector off, or `absent` in manual mode).
    Uncovered,
}

impl CoverageChange {
    /// Name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageChange::Covered => "covered",
            CoverageChange::Expected => "expected",
            CoverageChange::Lost => "lost",
            CoverageChange::Excluded => "excluded",
            CoverageChange::Unmanaged => "unmanaged",
            CoverageChange::Uncovered => "uncovered",
        }
    }
}

/// One row of the cluster table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    /// Target.
    pub target: TargetRef,
    /// Cluster name.
    pub cluster: String,
    /// What the rules ask for; `None` when no rule names the cluster.
    pub desired: Option<ManagedTag>,
    /// The tag now.
    pub observed: Option<String>,
    /// Coverage now and after.
    pub coverage: CoverageChange,
    /// GuardDuty's coverage record (`ListCoverage`), when it lists the cluster.
    pub guardduty: Option<CoverageRecord>,
    /// Tasks without the agent; `None` when the cluster's tasks were not read, or its
    /// coverage is off now and stays off.
    pub tasks: Option<TaskSummary>,
    /// RUNNING Fargate tasks that still run the agent although the cluster's coverage is
    /// off once the plan is applied (they keep it until they are replaced); `None` when
    /// coverage stays on, or the cluster's tasks were not read.
    pub agent_tasks: Option<u32>,
}

/// Running Fargate tasks of a cluster and the ones without the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskSummary {
    /// RUNNING Fargate tasks.
    pub running: u32,
    /// Services with at least one RUNNING Fargate task without the agent.
    pub services_without_agent: u32,
    /// RUNNING Fargate service tasks without the agent.
    pub service_tasks_without_agent: u32,
    /// RUNNING standalone Fargate tasks without the agent (never stopped: reported only).
    pub standalone_tasks_without_agent: u32,
}

impl TaskSummary {
    /// Every RUNNING Fargate task without the agent.
    pub fn without_agent(&self) -> u32 {
        self.service_tasks_without_agent + self.standalone_tasks_without_agent
    }
}

/// The plan of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetPlan {
    /// Actions in apply order: phase, then cluster name or feature.
    pub actions: Vec<Action>,
    /// Set when a safety limit refuses the plan whole.
    pub refused: Option<Refusal>,
    /// Every ACTIVE cluster of the target.
    pub clusters: Vec<ClusterRow>,
    /// Things the controller cannot fix by itself (no detector, ...).
    pub warnings: Vec<String>,
    /// Services the plan does not redeploy although their tasks lack the agent (or, after
    /// coverage loss with `onCoverageLoss: redeploy`, still run it), and why.
    pub held: Vec<Held>,
    /// Resources another writer keeps changing back: their actions are left out of
    /// `actions` while the conflict stands (filled by the engine, not the planner).
    pub conflicts: Vec<Conflict>,
}

/// Knobs for one planning call.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// `--allow-mass-change`: do not refuse a plan over a safety limit.
    pub allow_mass_change: bool,
    /// Upper bounds of the file's safety limits (`--max-*-ceiling`); the file's own
    /// defaults unless set.
    pub ceilings: Ceilings,
    /// The time of planning (Unix ms), for `retryAfter` and `settleTime`.
    pub now_ms: i64,
}

/// Plans one target.
///
/// # Guarantees
/// Deterministic: the same inputs give the same actions in the same order. Clusters no
/// rule names are never touched under `unmatchedClusters: ignore`. Only ACTIVE clusters
/// are considered.
pub fn plan_target(
    desired: &DesiredState,
    observed: &ObservedTarget,
    options: PlanOptions,
) -> TargetPlan {
    let rules = CompiledRules::new(desired);
    let target = TargetRef {
        region: observed.region.clone(),
        account: observed.account.clone(),
    };
    let mut plan = TargetPlan::default();
    let now = observed
        .detector
        .as_ref()
        .map(|d| d.flags())
        .unwrap_or_default();
    let after = desired_flags(desired, now, observed.detector.is_some());

    // One pass over the clusters in AWS's order (memory order: a pass in name order
    // would chase every cluster through the cache), then rows and tag actions are put
    // in name order, AWS's order among equal names, as a stable sort by name would.
    let active: Vec<&ObservedCluster> =
        observed.clusters.iter().filter(|c| c.is_active()).collect();
    plan.clusters.reserve_exact(active.len());
    // By name; the leading bytes, compared first, spare most comparisons a trip to the
    // name itself. The third field: the cluster's place in `active`.
    let mut by_name: Vec<(u128, &str, usize)> = Vec::with_capacity(active.len());
    // (place in `active`, action)
    let mut tags = Vec::new();
    let mut untags = Vec::new();
    let mut redeploys = Vec::new();
    for (place, cluster) in active.iter().copied().enumerate() {
        by_name.push((name_prefix(&cluster.name), cluster.name.as_str(), place));
        let desired_tag = rules.desired_tag(&observed.region, cluster);
        let current = cluster.managed_tag();
        let next = match desired_tag {
            None => current,
            Some(t) => t.tag_value(),
        };
        match (desired_tag, current) {
            (Some(ManagedTag::Absent), Some(from)) => {
                untags.push((
                    place,
                    Action::UntagCluster {
                        target: target.clone(),
                        cluster: cluster.name.clone(),
                        cluster_arn: cluster.arn.clone(),
                        from: from.to_owned(),
                    },
                ));
            }
            (Some(t), _) if t != ManagedTag::Absent && current != t.tag_value() => {
                tags.push((
                    place,
                    Action::TagCluster {
                        target: target.clone(),
                        cluster: cluster.name.clone(),
                        cluster_arn: cluster.arn.clone(),
                        from: current.map(str::to_owned),
                        to: t.tag_value().unwrap_or_default(),
                    },
                ));
            }
            _ => {}
        }
        let was = effectively_covered(now, current);
        let will = effectively_covered(after, next);
        let coverage = coverage_change(was, will, next, desired_tag.is_some());
        // Coverage off once the plan is applied: tasks started while it was on keep the
        // agent until they are replaced.
        let off_after = matches!(
            coverage,
            CoverageChange::Lost | CoverageChange::Excluded | CoverageChange::Uncovered
        );
        // Only clusters the desired state manages: under `unmatchedClusters: ignore` a
        // cluster no rule names is never touched, its services included.
        if will && desired_tag.is_some() {
            redeploy::plan_cluster(
                &desired.redeploy,
                &target,
                cluster,
                was,
                options.now_ms,
                &mut redeploys,
                &mut plan.held,
            );
        } else if off_after
            && desired_tag.is_some()
            && desired.redeploy.on_coverage_loss == CoverageLoss::Redeploy
        {
            redeploy::plan_offboarding(
                &desired.redeploy,
                &target,
                cluster,
                coverage == CoverageChange::Lost,
                options.now_ms,
                &mut redeploys,
                &mut plan.held,
            );
        }
        plan.clusters.push(ClusterRow {
            target: target.clone(),
            cluster: cluster.name.clone(),
            desired: desired_tag,
            observed: current.map(str::to_owned),
            coverage,
            guardduty: cluster.coverage.clone(),
            // Tasks of a cluster that is not covered now nor after are not uncovered
            // tasks to fix (they are read only to find the agent's leftovers).
            tasks: cluster
                .workload
                .as_ref()
                .filter(|_| was || will)
                .map(redeploy::summary),
            agent_tasks: cluster
                .workload
                .as_ref()
                .filter(|_| off_after)
                .map(Workload::agent_tasks),
        });
    }
    by_name.sort_unstable();
    let name_order = NameOrder::new(&by_name);
    permute(
        &mut plan.clusters,
        by_name.iter().map(|&(_, _, place)| place),
    );
    plan.actions = name_order.one_per_name(tags);
    let untags = name_order.one_per_name(untags);
    redeploys.sort();
    plan.held.sort();
    // A prerequisite that could not be checked is a warning on that service (in held
    // order, so whatever order AWS lists clusters in).
    plan.warnings
        .extend(plan.held.iter().filter_map(Held::warning));

    let detector = detector_actions(desired, observed, &target, &mut plan.warnings);
    plan.actions
        .reserve_exact(detector.len() + untags.len() + redeploys.len());
    plan.actions.extend(detector);
    plan.actions.extend(untags);
    plan.actions.extend(redeploys);

    plan.warnings.extend(
        Limits::clamped(&desired.safety, options.ceilings)
            .iter()
            .map(Clamped::to_string),
    );
    if !options.allow_mass_change {
        let limits = Limits::new(&desired.safety, options.ceilings);
        plan.refused = limits::check_target(&plan, limits, &observed.region);
    }
    plan
}

/// The first 16 bytes of a name, zero-padded, as a big-endian number: two names whose
/// prefixes differ compare as their prefixes do; equal prefixes say nothing.
fn name_prefix(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = name.len().min(16);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// The name order of the ACTIVE clusters: a cluster's place in `active` → its rank.
struct NameOrder<'a> {
    by_name: &'a [(u128, &'a str, usize)],
    rank: Vec<usize>,
}

impl<'a> NameOrder<'a> {
    /// `by_name` sorted: by name, then place.
    fn new(by_name: &'a [(u128, &'a str, usize)]) -> Self {
        let mut rank = vec![0; by_name.len()];
        for (r, &(_, _, place)) in by_name.iter().enumerate() {
            rank[place] = r;
        }
        NameOrder { by_name, rank }
    }

    /// Whether the clusters of two ranks have the same name.
    fn same_name(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.by_name[a], &self.by_name[b]);
        a.0 == b.0 && a.1 == b.1
    }

    /// Actions of clusters (by place, in place order) in name order, one per name: of
    /// clusters with the same name, the last one's in place order (what a map keyed by
    /// name, filled in place order, keeps).
    fn one_per_name(&self, actions: Vec<(usize, Action)>) -> Vec<Action> {
        let mut ranked: Vec<(usize, usize)> = actions
            .iter()
            .enumerate()
            .map(|(i, &(place, _))| (self.rank[place], i))
            .collect();
        ranked.sort_unstable();
        let mut actions: Vec<Action> = actions.into_iter().map(|(_, a)| a).collect();
        permute(&mut actions, ranked.iter().map(|&(_, i)| i));
        // Keep an action unless the next one is for the same name.
        let mut keep = ranked
            .windows(2)
            .map(|w| !self.same_name(w[0].0, w[1].0))
            .chain([true]);
        actions.retain(|_| keep.next().unwrap_or(true));
        actions
    }
}

/// Reorders `items` in place so that place `k` holds what was at `order[k]`; `order` is a
/// permutation of the places.
fn permute<T>(items: &mut [T], order: impl IntoIterator<Item = usize>) {
    let order: Vec<usize> = order.into_iter().collect();
    debug_assert_eq!(order.len(), items.len());
    let mut done = vec![false; items.len()];
    for start in 0..items.len() {
        // Follow the cycle through `start`: each swap puts one item at its place.
        let mut at = start;
        while !done[at] {
            done[at] = true;
            let from = order[at];
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// Detector flags once the desired features are in force. Without a detector the
/// controller cannot change anything, so coverage stays off.
fn desired_flags(desired: &DesiredState, now: DetectorFlags, has_detector: bool) -> DetectorFlags {
    if !has_detector {
        return now;
    }
    let pick = |setting: FeatureSetting, current: bool| match setting {
        FeatureSetting::Enabled => true,
        FeatureSetting::Disabled => false,
        FeatureSetting::Unmanaged => current,
    };
    DetectorFlags {
        runtime_monitoring: pick(desired.detector.runtime_monitoring, now.runtime_monitoring),
        fargate_automation: pick(
            desired.detector.ecs_fargate_agent_management,
            now.fargate_automation,
        ),
    }
}

fn detector_actions(
    desired: &DesiredState,
    observed: &ObservedTarget,
    target: &TargetRef,
    warnings: &mut Vec<String>,
) -> Vec<Action> {
    let wanted = [
        (RUNTIME_MONITORING, desired.detector.runtime_monitoring),
        (
            ECS_FARGATE_AGENT_MANAGEMENT,
            desired.detector.ecs_fargate_agent_management,
        ),
    ];
    let Some(detector) = &observed.detector else {
        if wanted.iter().any(|(_, s)| *s == FeatureSetting::Enabled) {
            warnings.push(format!(
                "no GuardDuty detector in {}: enable GuardDuty there first; the controller does not create detectors",
                observed.region
            ));
        }
        return Vec::new();
    };
    let mut actions = Vec::new();
    for (feature, setting) in wanted {
        let to = match setting {
            FeatureSetting::Enabled => FeatureStatus::Enabled,
            FeatureSetting::Disabled => FeatureStatus::Disabled,
            FeatureSetting::Unmanaged => continue,
        };
        let from = if feature == RUNTIME_MONITORING {
            detector.feature_status(feature)
        } else {
            detector.runtime_additional_status(feature)
        };
        // A feature the detector does not list is off as far as coverage goes.
        let effective = from.unwrap_or(&FeatureStatus::Disabled);
        if *effective != to {
            actions.push(Action::UpdateDetector {
                target: target.clone(),
                detector_id: detector.id.clone(),
                feature,
                from: from.cloned(),
                to,
            });
        }
    }
    actions.extend(organization_actions(
        desired,
        observed,
        &detector.id,
        target,
        warnings,
    ));
    actions
}

/// In a delegated administrator's target (its organization configuration observed), the
/// auto-enable of each feature the `detector` section manages: `organization.autoEnable`
/// for an enabled feature, `NONE` for a disabled one (DESIGN §8). After the detector's own
/// actions, in feature order.
fn organization_actions(
    desired: &DesiredState,
    observed: &ObservedTarget,
    detector_id: &str,
    target: &TargetRef,
    warnings: &mut Vec<String>,
) -> Vec<Action> {
    let (Some(spec), Some(now)) = (&desired.organization, &observed.organization) else {
        return Vec::new();
    };
    // An auto-enable of the agent management the file does not manage, while rules
    // exclude clusters: accounts that join get automation before their exclusion tags.
    let agent = now
        .auto_enable
        .get(ECS_FARGATE_AGENT_MANAGEMENT)
        .map(String::as_str);
    let excludes = desired
        .clusters
        .iter()
        .any(|r| r.guard_duty_managed == ManagedTag::False);
    if desired.detector.ecs_fargate_agent_management == FeatureSetting::Unmanaged
        && excludes
        && matches!(agent, Some("NEW" | "ALL"))
    {
        warnings.push(format!(
            "the organization auto-enables {ECS_FARGATE_AGENT_MANAGEMENT} ({}) while rules exclude \
             clusters: accounts that join get automated agent configuration before their \
             exclusion tags are written; manage it (detector.ecsFargateAgentManagement) so the \
             controller sets it to NONE",
            agent.unwrap_or_default()
        ));
    }
    let wanted = [
        (RUNTIME_MONITORING, desired.detector.runtime_monitoring),
        (
            ECS_FARGATE_AGENT_MANAGEMENT,
            desired.detector.ecs_fargate_agent_management,
        ),
    ];
    let mut actions = Vec::new();
    for (feature, setting) in wanted {
        let to = match setting {
            FeatureSetting::Enabled => spec.auto_enable,
            FeatureSetting::Disabled => AutoEnable::None,
            FeatureSetting::Unmanaged => continue,
        };
        let from = now.auto_enable.get(feature);
        // A feature GuardDuty does not list is auto-enabled for nobody.
        let effective = from.map_or(AutoEnable::None.as_aws(), String::as_str);
        if effective != to.as_aws() {
            actions.push(Action::UpdateOrganizationConfiguration {
                target: target.clone(),
                detector_id: detector_id.to_owned(),
                feature,
                from: from.cloned(),
                to,
            });
        }
    }
    actions
}

fn coverage_change(was: bool, will: bool, next: Option<&str>, named: bool) -> CoverageChange {
    match (was, will) {
        (true, true) => CoverageChange::Covered,
        (false, true) => CoverageChange::Expected,
        (true, false) => CoverageChange::Lost,
        (false, false) if next == Some("false") => CoverageChange::Excluded,
        (false, false) if !named => CoverageChange::Unmanaged,
        (false, false) => CoverageChange::Uncovered,
    }
}

/// The tag key every tag action writes.
pub const TAG_KEY: &str = MANAGED_TAG_KEY;

/// The plan of every target, as printed by `plan` and served on `/status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Per-target plans, in target order.
    pub targets: Vec<TargetPlan>,
}

impl Plan {
    /// Number of actions over all targets.
    pub fn changes(&self) -> usize {
        self.targets.iter().map(|t| t.actions.len()).sum()
    }

    /// The first refusal, if any target was refused.
    pub fn refused(&self) -> Option<&Refusal> {
        self.targets.iter().find_map(|t| t.refused.as_ref())
    }
}

#[cfg(test)]
mod tests;
