//! What the controller saw in AWS, in plain types (the AWS adapter fills them in).

use std::collections::BTreeMap;

mod deploy;
mod preflight;
mod status;

pub use deploy::{
    CodeDeploy, CodeDeployDeployment, DeploymentGroupRef, LoadBalancerTarget,
    MAX_CODEDEPLOY_DEPLOYMENTS,
};
pub use preflight::{Preflight, PreflightCode, PreflightFinding};
pub use status::{
    ClusterStatus, CodeDeployStatus, CoverageStatus, DeploymentController, DeploymentStatus,
    DeploymentStrategy, FeatureStatus, RolloutState, ServiceStatus,
};

/// Tag key that selects clusters for GuardDuty Runtime Monitoring; case-sensitive.
pub const MANAGED_TAG_KEY: &str = "GuardDutyManaged";
/// Detector feature for Runtime Monitoring.
pub const RUNTIME_MONITORING: &str = "RUNTIME_MONITORING";
/// The EKS-only predecessor feature; never sent together with [`RUNTIME_MONITORING`].
pub const EKS_RUNTIME_MONITORING: &str = "EKS_RUNTIME_MONITORING";
/// Additional configuration: automated agent management for ECS on Fargate.
pub const ECS_FARGATE_AGENT_MANAGEMENT: &str = "ECS_FARGATE_AGENT_MANAGEMENT";

/// Everything observed in one target (account and region).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedTarget {
    /// The target's region.
    pub region: String,
    /// The account, when known (from a cluster ARN or the role ARN).
    pub account: Option<String>,
    /// The ECS clusters, in the order AWS listed them.
    pub clusters: Vec<ObservedCluster>,
    /// The GuardDuty detector; `None` when GuardDuty is not enabled in the region.
    pub detector: Option<ObservedDetector>,
    /// The organization configuration, read in a delegated administrator's target only
    /// (`DescribeOrganizationConfiguration`).
    pub organization: Option<ObservedOrganization>,
}

/// What a delegated administrator's GuardDuty says about its organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedOrganization {
    /// Auto-enable (`NEW`, `ALL`, `NONE`) of `RUNTIME_MONITORING` and of its additional
    /// configurations (`ECS_FARGATE_AGENT_MANAGEMENT`, ...), by name; a name GuardDuty does
    /// not list is absent.
    pub auto_enable: BTreeMap<String, String>,
}

/// One associated member of a delegated administrator (`ListMembers`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrganizationMember {
    /// The member's account id.
    pub account: String,
    /// `relationshipStatus` as GuardDuty words it (`Enabled`, ...).
    pub relationship: String,
}

impl ObservedTarget {
    /// The cluster with this ARN.
    pub fn cluster_mut(&mut self, arn: &str) -> Option<&mut ObservedCluster> {
        self.clusters.iter_mut().find(|c| c.arn == arn)
    }
}

/// One ECS cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedCluster {
    /// Cluster name.
    pub name: String,
    /// Cluster ARN.
    pub arn: String,
    /// `ACTIVE`, `PROVISIONING`, `DEPROVISIONING`, `FAILED` or `INACTIVE`.
    pub status: ClusterStatus,
    /// Every tag on the cluster.
    pub tags: BTreeMap<String, String>,
    /// Services in the ACTIVE state, as DescribeClusters counts them.
    pub active_services: u32,
    /// Tasks in the RUNNING state, as DescribeClusters counts them.
    pub running_tasks: u32,
    /// Services and tasks; `None` when they were not read (coverage off and staying off).
    pub workload: Option<Workload>,
    /// GuardDuty's coverage record for the cluster (`ListCoverage`); `None` when GuardDuty
    /// lists none or coverage was not read.
    pub coverage: Option<CoverageRecord>,
    /// Since when (Unix milliseconds) the cluster's effective coverage is known to be on.
    /// Not read from AWS directly: the engine fills it in from what it saw (a transition it
    /// made or observed, or the earliest task that runs the agent). `None`: not known to be
    /// on yet.
    pub covered_since_ms: Option<i64>,
    /// `covered_since_ms` is the moment the engine saw coverage turn on (it saw the cluster
    /// uncovered before). Otherwise it is only a bound for `settleTime`, and a recent
    /// deployment may have been made with coverage already on.
    pub coverage_turn_on_seen: bool,
    /// Since when (Unix milliseconds) the cluster's effective coverage is known to be off:
    /// filled in by the engine like `covered_since_ms`. `None`: not known to be off.
    pub uncovered_since_ms: Option<i64>,
    /// `uncovered_since_ms` is the moment the engine saw coverage turn off (it saw the
    /// cluster covered before); otherwise it is when the engine first saw it off, and a
    /// recent deployment may have been made after the loss.
    pub coverage_turn_off_seen: bool,
}

/// Container-name prefixes of the GuardDuty agent sidecar (DESIGN §1: match both).
pub const AGENT_CONTAINER_PREFIXES: [&str; 2] = ["aws-guardduty-agent-", "aws-gd-agent"];

/// Whether a container name is the GuardDuty agent sidecar.
pub fn is_agent_container(name: &str) -> bool {
    AGENT_CONTAINER_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What runs in a cluster, reduced to what coverage and redeploys need. Built from RUNNING
/// tasks (`ListTasks` + `DescribeTasks`) and the services that own tasks without the agent
/// (`DescribeServices`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// RUNNING Fargate tasks per owning service name (task `group` `service:NAME`).
    pub service_tasks: BTreeMap<String, TaskCounts>,
    /// RUNNING Fargate tasks not started by a service (RunTask, schedules).
    pub standalone_tasks: TaskCounts,
    /// RUNNING tasks on EC2 or external capacity: not Fargate, never counted as uncovered.
    pub other_tasks: u32,
    /// Earliest `startedAt` (Unix milliseconds) of a RUNNING task that runs the agent:
    /// proof that coverage was on then.
    pub earliest_agent_task_ms: Option<i64>,
    /// Services that were described: those owning a task without the agent, and those the
    /// engine is watching roll out. Sorted by name.
    pub services: Vec<ObservedService>,
}

impl Workload {
    /// RUNNING Fargate tasks (service and standalone) whose agent container is RUNNING:
    /// after coverage is lost, the tasks that keep the agent until they are replaced.
    pub fn agent_tasks(&self) -> u32 {
        self.service_tasks
            .values()
            .map(TaskCounts::with_agent)
            .sum::<u32>()
            .saturating_add(self.standalone_tasks.with_agent())
    }

    /// RUNNING Fargate service tasks without the agent.
    pub fn service_tasks_without_agent(&self) -> u32 {
        self.service_tasks.values().map(|c| c.without_agent).sum()
    }

    /// Services with at least one RUNNING Fargate task without the agent.
    pub fn services_without_agent(&self) -> usize {
        self.service_tasks
            .values()
            .filter(|c| c.without_agent > 0)
            .count()
    }
}

/// RUNNING Fargate tasks and how many of them lack a RUNNING agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// RUNNING Fargate tasks.
    pub running: u32,
    /// Of those, tasks whose agent container is not RUNNING: none at all, `PENDING`, or
    /// `STOPPED` (a task counts as covered only while its agent runs).
    pub without_agent: u32,
    /// Of `without_agent`, tasks that have an agent container and it is `STOPPED`, and
    /// AWS's words for the first of them.
    pub agent_stopped: AgentGap,
    /// Tasks without a RUNNING agent by the deployment that started them (the task's
    /// `startedBy`, `ecs-svc/…`); service tasks only. Tells whether the PRIMARY
    /// deployment's own tasks came up without the agent.
    pub by_deployment: BTreeMap<String, AgentGap>,
}

impl TaskCounts {
    /// RUNNING tasks whose agent container is RUNNING.
    pub fn with_agent(&self) -> u32 {
        self.running.saturating_sub(self.without_agent)
    }
}

/// Tasks without a RUNNING agent, and AWS's reason where it gave one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentGap {
    /// How many tasks.
    pub tasks: u32,
    /// AWS's words for the first such task with a STOPPED agent container: the
    /// container's `reason` (`CannotPullContainerError: …`), else `exit code N`. `None`
    /// when no agent container of these tasks stopped (missing or PENDING).
    pub reason: Option<String>,
}

impl AgentGap {
    /// Counts one more task; keeps the first reason.
    pub fn add(&mut self, reason: Option<&str>) {
        self.tasks = self.tasks.saturating_add(1);
        if self.reason.is_none() {
            self.reason = reason.map(str::to_owned);
        }
    }
}

/// One ECS service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedService {
    /// Service name.
    pub name: String,
    /// Service ARN.
    pub arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: ServiceStatus,
    /// Runs on Fargate: launch type `FARGATE`, or a capacity provider strategy of only
    /// `FARGATE` / `FARGATE_SPOT`.
    pub fargate: bool,
    /// Deployments, PRIMARY first. For a service whose controller is `CODE_DEPLOY` or
    /// `EXTERNAL`: its task sets (PRIMARY first), which ECS reports instead.
    pub deployments: Vec<ObservedDeployment>,
    /// How the service takes a new deployment (`deploymentController.type`).
    pub controller: DeploymentController,
    /// The strategy of its deployments (`deploymentConfiguration.strategy`), for the
    /// `ECS` controller.
    pub strategy: DeploymentStrategy,
    /// The container and port of its first load balancer, if it has one.
    pub load_balancer: Option<LoadBalancerTarget>,
    /// What CodeDeploy says about it: read for `CODE_DEPLOY` services only; `None`
    /// otherwise, or when nobody read it.
    pub codedeploy: Option<CodeDeploy>,
    /// The task definition ARN the PRIMARY deployment runs (else the service's).
    pub task_definition: Option<String>,
    /// The Fargate platform version the PRIMARY deployment asked for (`LATEST`, `1.4.0`,
    /// …; else the service's); `None` when ECS does not say.
    pub platform_version: Option<String>,
    /// Whether the service can get the agent at all (DESIGN §1 prerequisites), checked by
    /// the engine before a redeploy; `None` when nobody checked.
    pub preflight: Option<Preflight>,
}

impl ObservedService {
    /// The PRIMARY deployment, if listed.
    pub fn primary(&self) -> Option<&ObservedDeployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    /// When the service was last deployed (Unix ms): its PRIMARY deployment, or for a
    /// `CODE_DEPLOY` service whose CodeDeploy was read the newest CodeDeploy deployment
    /// of its group if that is newer, whatever its status (a Failed one leaves the old
    /// task set PRIMARY, and must not make the service look untouched for hours).
    pub fn last_deployed_ms(&self) -> Option<i64> {
        let primary = self.primary().map(|p| p.created_at_ms);
        let codedeploy = self
            .codedeploy
            .as_ref()
            .and_then(CodeDeploy::newest)
            .map(|d| d.created_at_ms);
        primary.max(codedeploy)
    }

    /// A deployment whose rollout has not finished (`rolloutState` IN_PROGRESS, an
    /// ACTIVE deployment or task set still running next to the PRIMARY, or a CodeDeploy
    /// deployment that is active).
    pub fn rollout_in_progress(&self) -> bool {
        if self
            .codedeploy
            .as_ref()
            .is_some_and(|c| c.active().is_some())
        {
            return true;
        }
        self.deployments.iter().any(|d| {
            d.rollout_state == Some(RolloutState::InProgress)
                || (d.status == DeploymentStatus::Primary
                    && d.rollout_state.is_none()
                    && self.deployments.len() > 1)
        })
    }
}

/// One deployment of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedDeployment {
    /// Deployment id (`ecs-svc/...`).
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: DeploymentStatus,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; `None` when the service has no circuit
    /// breaker information.
    pub rollout_state: Option<RolloutState>,
    /// When the deployment was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// Who started it, for a task set (`startedBy`: `CodeDeploy`, or the external
    /// deployer's own words); `None` for an ECS deployment.
    pub started_by: Option<String>,
}

/// GuardDuty's coverage of one ECS cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageRecord {
    /// `HEALTHY` or `UNHEALTHY`.
    pub status: CoverageStatus,
    /// Why it is unhealthy, as GuardDuty words it.
    pub issue: Option<String>,
    /// `fargateDetails.managementType`: `AUTO_MANAGED`, `MANUAL` or `DISABLED`.
    pub management_type: Option<String>,
    /// `fargateDetails.issues`: GuardDuty's own list of Fargate problems in the cluster.
    pub fargate_issues: Vec<String>,
}

impl CoverageRecord {
    /// GuardDuty reports the cluster healthy.
    pub fn healthy(&self) -> bool {
        self.status == CoverageStatus::Healthy
    }
}

impl ObservedCluster {
    /// The value of the `GuardDutyManaged` tag, if present.
    pub fn managed_tag(&self) -> Option<&str> {
        self.tags.get(MANAGED_TAG_KEY).map(String::as_str)
    }

    /// Whether the controller may write to this cluster (only ACTIVE ones).
    pub fn is_active(&self) -> bool {
        self.status == ClusterStatus::Active
    }
}

/// A GuardDuty detector and the features it reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedDetector {
    /// Detector id.
    pub id: String,
    /// Features by name.
    pub features: BTreeMap<String, ObservedFeature>,
}

/// One detector feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedFeature {
    /// `ENABLED` or `DISABLED`.
    pub status: FeatureStatus,
    /// Additional configurations by name, with their status.
    pub additional: BTreeMap<String, FeatureStatus>,
}

impl ObservedDetector {
    /// Status of a feature, if the detector lists it.
    pub fn feature_status(&self, feature: &str) -> Option<&FeatureStatus> {
        self.features.get(feature).map(|f| &f.status)
    }

    /// Status of an additional configuration of `RUNTIME_MONITORING`, if listed.
    pub fn runtime_additional_status(&self, name: &str) -> Option<&FeatureStatus> {
        self.features
            .get(RUNTIME_MONITORING)
            .and_then(|f| f.additional.get(name))
    }

    /// Runtime Monitoring is ENABLED (GuardDuty lists coverage only then).
    pub fn runtime_monitoring_on(&self) -> bool {
        self.feature_status(RUNTIME_MONITORING) == Some(&FeatureStatus::Enabled)
    }

    /// The two switches that decide ECS Fargate coverage.
    pub fn flags(&self) -> DetectorFlags {
        DetectorFlags {
            runtime_monitoring: self.runtime_monitoring_on(),
            fargate_automation: self.runtime_additional_status(ECS_FARGATE_AGENT_MANAGEMENT)
                == Some(&FeatureStatus::Enabled),
        }
    }
}

/// The detector switches that, with a cluster's tag, decide its coverage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectorFlags {
    /// `RUNTIME_MONITORING` is ENABLED.
    pub runtime_monitoring: bool,
    /// `ECS_FARGATE_AGENT_MANAGEMENT` is ENABLED.
    pub fargate_automation: bool,
}

/// Effective coverage of a cluster for new tasks (DESIGN §1): with automation on, every
/// cluster not tagged `false`; with it off, only clusters tagged `true`.
pub fn effectively_covered(flags: DetectorFlags, managed_tag: Option<&str>) -> bool {
    flags.runtime_monitoring
        && if flags.fargate_automation {
            managed_tag != Some("false")
        } else {
            managed_tag == Some("true")
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_follows_the_guardduty_user_guide() {
        let on = |rm, auto| DetectorFlags {
            runtime_monitoring: rm,
            fargate_automation: auto,
        };
        // (label, flags, tag, covered)
        let rows = [
            (
                "monitoring off covers nothing",
                on(false, true),
                Some("true"),
                false,
            ),
            (
                "automation covers untagged clusters",
                on(true, true),
                None,
                true,
            ),
            (
                "automation respects the exclusion tag",
                on(true, true),
                Some("false"),
                false,
            ),
            (
                "automation covers clusters tagged true",
                on(true, true),
                Some("true"),
                true,
            ),
            (
                "tag values are case-sensitive: False is not an exclusion",
                on(true, true),
                Some("False"),
                true,
            ),
            (
                "manual mode covers only the inclusion tag",
                on(true, false),
                Some("true"),
                true,
            ),
            (
                "manual mode ignores untagged clusters",
                on(true, false),
                None,
                false,
            ),
            (
                "manual mode: True is not the inclusion tag",
                on(true, false),
                Some("True"),
                false,
            ),
        ];
        for (label, flags, tag, covered) in rows {
            assert_eq!(effectively_covered(flags, tag), covered, "{label}");
        }
    }
}
