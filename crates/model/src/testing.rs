//! Fixture builders for tests: one way to build the model's types, shared by every crate's
//! tests (feature `testing`; other crates take it as a dev-dependency).
//!
//! Each builder starts from sensible defaults (region [`REGION`], account [`ACCOUNT`], an
//! ACTIVE untagged cluster, a detector [`DETECTOR_ID`] listing no feature) and chains the
//! differences: `observed().with(cluster("apps").tagged("true")).detector(detector()
//! .runtime(Enabled).automation(Disabled))`. The builders return the model's own types,
//! so a test can still set any field directly.

use std::collections::BTreeMap;

use crate::desired::{self, DesiredState, ManagedTag, Target};
use crate::observed::{
    AgentGap, ClusterStatus, CodeDeploy, CodeDeployDeployment, CodeDeployStatus, CoverageRecord,
    CoverageStatus, DeploymentController, DeploymentGroupRef, DeploymentStatus, DeploymentStrategy,
    FeatureStatus, LoadBalancerTarget, ObservedCluster, ObservedDeployment, ObservedDetector,
    ObservedService, Preflight, PreflightCode, PreflightFinding, RolloutState, TaskCounts,
    Workload, ECS_FARGATE_AGENT_MANAGEMENT, MANAGED_TAG_KEY, RUNTIME_MONITORING,
};
use crate::plan::{
    ClusterRow, CoverageChange, Deployer, Held, HoldReason, RedeployPurpose, TargetRef, TaskSummary,
};
use crate::{Action, ObservedTarget};

/// Account of every fixture.
pub const ACCOUNT: &str = "123456789012";
/// Region of the fixtures that take none.
pub const REGION: &str = "us-east-1";
/// Id of the fixture detector.
pub const DETECTOR_ID: &str = "det-1";

// ---------------------------------------------------------------------------------------
// Desired state
// ---------------------------------------------------------------------------------------

/// Parses a whole desired-state document; panics with the located errors when it is
/// invalid.
pub fn desired(yaml: &str) -> DesiredState {
    desired::parse("test.yaml", yaml).unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}"))
}

/// A desired state for one target in [`REGION`], plus these YAML sections.
pub fn desired_with(sections: &str) -> DesiredState {
    desired(&format!(
        "version: 1\ntargets: [{{region: {REGION}}}]\n{sections}"
    ))
}

/// A desired state managing an organization from its delegated administrator [`ACCOUNT`]
/// in [`REGION`] (`memberRoleName: gec`, every member), plus these lines of the
/// `organization` section (indented by two, e.g. `"  autoEnable: new\n"`) and these
/// top-level sections.
pub fn desired_org(organization: &str, sections: &str) -> DesiredState {
    desired(&format!(
        "version: 1\norganization:\n  administrator: {{accountId: \"{ACCOUNT}\", regions: [{REGION}]}}\n  memberRoleName: gec\n{organization}{sections}"
    ))
}

/// A desired target in `region` on the ambient credentials.
pub fn target(region: &str) -> Target {
    Target {
        region: region.to_owned(),
        role_arn: None,
        external_id: None,
        org: None,
    }
}

impl Target {
    /// Assumes this role.
    pub fn role(mut self, role_arn: &str) -> Self {
        self.role_arn = Some(role_arn.to_owned());
        self
    }

    /// With this external id.
    pub fn external_id(mut self, external_id: &str) -> Self {
        self.external_id = Some(external_id.to_owned());
        self
    }
}

/// Where an action runs: `region` in [`ACCOUNT`].
pub fn target_ref(region: &str) -> TargetRef {
    TargetRef {
        region: region.to_owned(),
        account: Some(ACCOUNT.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------
// Observed state
// ---------------------------------------------------------------------------------------

/// A cluster ARN.
pub fn cluster_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:cluster/{name}")
}

/// The ARN of a cluster of [`observed`]: in [`REGION`] and [`ACCOUNT`].
pub fn arn(name: &str) -> String {
    cluster_arn(REGION, ACCOUNT, name)
}

/// [`REGION`] in [`ACCOUNT`], with no clusters and no detector.
pub fn observed() -> ObservedTarget {
    observed_in(REGION)
}

/// `region` in [`ACCOUNT`], with no clusters and no detector.
pub fn observed_in(region: &str) -> ObservedTarget {
    ObservedTarget {
        region: region.to_owned(),
        account: Some(ACCOUNT.to_owned()),
        clusters: Vec::new(),
        detector: None,
        organization: None,
    }
}

impl ObservedTarget {
    /// In this account (set it before adding clusters: their ARNs follow it).
    pub fn account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// Adds a cluster, its ARN in this target's region and account.
    pub fn with(mut self, mut cluster: ObservedCluster) -> Self {
        let account = self.account.as_deref().unwrap_or(ACCOUNT);
        cluster.arn = cluster_arn(&self.region, account, &cluster.name);
        self.clusters.push(cluster);
        self
    }

    /// Adds these clusters in order, as [`ObservedTarget::with`].
    pub fn clusters(self, clusters: impl IntoIterator<Item = ObservedCluster>) -> Self {
        clusters.into_iter().fold(self, Self::with)
    }

    /// With this detector.
    pub fn detector(mut self, detector: ObservedDetector) -> Self {
        self.detector = Some(detector);
        self
    }

    /// A delegated administrator's target, its organization configuration listing these
    /// (feature or additional configuration, `NEW` | `ALL` | `NONE`).
    pub fn organization(mut self, auto_enable: &[(&str, &str)]) -> Self {
        let org = self.organization.get_or_insert_with(Default::default);
        for (name, value) in auto_enable {
            org.auto_enable
                .insert((*name).to_owned(), (*value).to_owned());
        }
        self
    }
}

/// An ACTIVE cluster without tags in [`REGION`] and [`ACCOUNT`] (adding it to a target
/// moves its ARN there).
pub fn cluster(name: &str) -> ObservedCluster {
    ObservedCluster {
        name: name.to_owned(),
        arn: arn(name),
        status: ClusterStatus::Active,
        ..ObservedCluster::default()
    }
}

impl ObservedCluster {
    /// Carries `GuardDutyManaged=value`.
    pub fn tagged(self, value: &str) -> Self {
        self.tag(MANAGED_TAG_KEY, value)
    }

    /// Carries the tag `key=value`.
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_owned(), value.to_owned());
        self
    }

    /// In this status (`"INACTIVE"` or [`ClusterStatus::Inactive`]).
    pub fn status(mut self, status: impl Into<ClusterStatus>) -> Self {
        self.status = status.into();
        self
    }

    /// Running this workload.
    pub fn workload(mut self, workload: Workload) -> Self {
        self.workload = Some(workload);
        self
    }
}

/// A detector [`DETECTOR_ID`] that lists no feature.
pub fn detector() -> ObservedDetector {
    ObservedDetector {
        id: DETECTOR_ID.to_owned(),
        features: BTreeMap::new(),
    }
}

impl ObservedDetector {
    /// Lists `RUNTIME_MONITORING` in this status (keeping its additional configurations).
    pub fn runtime(self, status: impl Into<FeatureStatus>) -> Self {
        self.feature(RUNTIME_MONITORING, status)
    }

    /// Lists `ECS_FARGATE_AGENT_MANAGEMENT` under `RUNTIME_MONITORING` in this status.
    ///
    /// # Panics
    /// When `RUNTIME_MONITORING` is not listed: an additional configuration needs its
    /// feature.
    pub fn automation(mut self, status: impl Into<FeatureStatus>) -> Self {
        let feature = self
            .features
            .get_mut(RUNTIME_MONITORING)
            .expect("an additional configuration needs its feature: call runtime() first");
        feature
            .additional
            .insert(ECS_FARGATE_AGENT_MANAGEMENT.to_owned(), status.into());
        self
    }

    /// Lists the feature `name` in this status (keeping its additional configurations).
    pub fn feature(mut self, name: &str, status: impl Into<FeatureStatus>) -> Self {
        self.features.entry(name.to_owned()).or_default().status = status.into();
        self
    }
}

/// No services and no tasks.
pub fn workload() -> Workload {
    Workload::default()
}

impl Workload {
    /// Runs `service` with `running` Fargate tasks, `without_agent` of them lacking the
    /// agent.
    pub fn service(mut self, service: ObservedService, running: u32, without_agent: u32) -> Self {
        self.service_tasks.insert(
            service.name.clone(),
            TaskCounts {
                running,
                without_agent,
                ..TaskCounts::default()
            },
        );
        self.services.push(service);
        self
    }

    /// Runs `service` with these task counts (see [`tasks`]).
    pub fn service_with(mut self, service: ObservedService, counts: TaskCounts) -> Self {
        self.service_tasks.insert(service.name.clone(), counts);
        self.services.push(service);
        self
    }

    /// Runs standalone Fargate tasks: `running`, `without_agent` of them lacking the agent.
    pub fn standalone(mut self, running: u32, without_agent: u32) -> Self {
        self.standalone_tasks = TaskCounts {
            running,
            without_agent,
            ..TaskCounts::default()
        };
        self
    }
}

/// `running` RUNNING Fargate tasks, `without_agent` of them without a RUNNING agent
/// (missing, unless [`TaskCounts::stopped`] says otherwise).
pub fn tasks(running: u32, without_agent: u32) -> TaskCounts {
    TaskCounts {
        running,
        without_agent,
        ..TaskCounts::default()
    }
}

impl TaskCounts {
    /// `n` of the tasks without the agent have a STOPPED agent container; AWS says
    /// `reason` for the first.
    pub fn stopped(mut self, n: u32, reason: &str) -> Self {
        self.agent_stopped = AgentGap {
            tasks: n,
            reason: Some(reason.to_owned()),
        };
        self
    }

    /// `n` of the tasks without the agent were started by deployment `id` (a service
    /// fixture's is `ecs-svc/NAME`); `reason`: AWS's words for a STOPPED agent among
    /// them, `None` when their agent is missing.
    pub fn started_by(mut self, id: &str, n: u32, reason: Option<&str>) -> Self {
        self.by_deployment.insert(
            id.to_owned(),
            AgentGap {
                tasks: n,
                reason: reason.map(str::to_owned),
            },
        );
        self
    }
}

/// A failed prerequisite with these facts.
pub fn finding(code: PreflightCode, detail: &str) -> PreflightFinding {
    PreflightFinding {
        code,
        detail: detail.to_owned(),
    }
}

/// An ACTIVE Fargate service in [`REGION`] and [`ACCOUNT`] whose one deployment, PRIMARY
/// and COMPLETED, was created at 0.
pub fn service(name: &str) -> ObservedService {
    ObservedService {
        name: name.to_owned(),
        arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{name}"),
        status: Default::default(),
        fargate: true,
        deployments: vec![deployment(&format!("ecs-svc/{name}"), 0)],
        task_definition: Some(format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{name}:1"
        )),
        platform_version: Some("LATEST".to_owned()),
        preflight: Some(Preflight::Passed),
        ..ObservedService::default()
    }
}

impl ObservedService {
    /// Its PRIMARY deployment was created at `ms`.
    pub fn created(mut self, ms: i64) -> Self {
        self.deployments[0].created_at_ms = ms;
        self
    }

    /// Its PRIMARY deployment's rollout is in this state.
    pub fn rollout(mut self, state: impl Into<RolloutState>) -> Self {
        self.deployments[0].rollout_state = Some(state.into());
        self
    }

    /// Runs on EC2, not Fargate.
    pub fn ec2(mut self) -> Self {
        self.fargate = false;
        self
    }

    /// Its preflight came out so.
    pub fn preflight(mut self, preflight: Preflight) -> Self {
        self.preflight = Some(preflight);
        self
    }

    /// Its preflight failed with these findings (see [`finding`]).
    pub fn failing(self, findings: impl IntoIterator<Item = PreflightFinding>) -> Self {
        self.preflight(Preflight::Failed(findings.into_iter().collect()))
    }

    /// Asks for this Fargate platform version.
    pub fn platform(mut self, version: &str) -> Self {
        self.platform_version = Some(version.to_owned());
        self
    }

    /// Its deployment controller is `text`, as AWS would send it.
    pub fn controller_text(mut self, text: &str) -> Self {
        self.controller = DeploymentController::from_aws(text);
        self
    }

    /// Deploys with the `ECS` controller and this strategy.
    pub fn strategy(mut self, strategy: impl Into<DeploymentStrategy>) -> Self {
        self.strategy = strategy.into();
        self
    }

    /// Its deployment controller is `EXTERNAL`; its PRIMARY task set was started by
    /// `by`.
    pub fn external(mut self, by: &str) -> Self {
        self.controller = DeploymentController::External;
        self.deployments[0].rollout_state = None;
        self.deployments[0].started_by = Some(by.to_owned());
        self
    }

    /// Its deployment controller is `CODE_DEPLOY`, CodeDeploy says `codedeploy`, and its
    /// load balancer targets container `app` on port 80. Its PRIMARY is a task set.
    pub fn code_deploy(mut self, codedeploy: CodeDeploy) -> Self {
        self.controller = DeploymentController::CodeDeploy;
        self.deployments[0].rollout_state = None;
        self.deployments[0].started_by = Some("CodeDeploy".to_owned());
        self.load_balancer = Some(LoadBalancerTarget {
            container_name: "app".to_owned(),
            container_port: 80,
        });
        self.codedeploy = Some(codedeploy);
        self
    }
}

/// The deployment group `apps/<service>` (application `apps`), with these deployments.
pub fn group(service: &str, deployments: Vec<CodeDeployDeployment>) -> CodeDeploy {
    CodeDeploy::Group {
        group: DeploymentGroupRef {
            application: "apps".to_owned(),
            name: service.to_owned(),
        },
        deployments,
    }
}

/// A CodeDeploy deployment in `status`, created at `created_ms`.
pub fn codedeploy_deployment(
    id: &str,
    status: impl Into<CodeDeployStatus>,
    created_ms: i64,
) -> CodeDeployDeployment {
    CodeDeployDeployment {
        id: id.to_owned(),
        status: status.into(),
        created_at_ms: created_ms,
        error: None,
    }
}

/// A PRIMARY deployment, COMPLETED, created at `created_ms`.
pub fn deployment(id: &str, created_ms: i64) -> ObservedDeployment {
    ObservedDeployment {
        id: id.to_owned(),
        status: DeploymentStatus::Primary,
        rollout_state: Some(RolloutState::Completed),
        created_at_ms: created_ms,
        started_by: None,
    }
}

impl ObservedDeployment {
    /// Its rollout is in this state.
    pub fn rollout(mut self, state: impl Into<RolloutState>) -> Self {
        self.rollout_state = Some(state.into());
        self
    }
}

/// GuardDuty's coverage record: `status`, with an issue unless HEALTHY.
pub fn coverage(status: impl Into<CoverageStatus>) -> CoverageRecord {
    let status = status.into();
    CoverageRecord {
        issue: (status != CoverageStatus::Healthy).then(|| "No agent reporting".to_owned()),
        status,
        management_type: Some("AUTO_MANAGED".to_owned()),
        fargate_issues: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

/// Sets `GuardDutyManaged=true` on an untagged cluster of `region`.
pub fn tag(region: &str, cluster: &str) -> Action {
    Action::TagCluster {
        target: target_ref(region),
        cluster: cluster.to_owned(),
        cluster_arn: cluster_arn(region, ACCOUNT, cluster),
        from: None,
        to: "true",
    }
}

/// Redeploys a service of `region` in which 1 of 2 running tasks lack the agent; due
/// since 0.
pub fn redeploy(region: &str, cluster: &str, service: &str) -> Action {
    Action::RedeployService {
        target: target_ref(region),
        cluster: cluster.to_owned(),
        cluster_arn: cluster_arn(region, ACCOUNT, cluster),
        service: service.to_owned(),
        service_arn: format!("arn:aws:ecs:{region}:{ACCOUNT}:service/{cluster}/{service}"),
        purpose: RedeployPurpose::AddAgent,
        via: Deployer::Ecs {
            strategy: DeploymentStrategy::Rolling,
        },
        reason: "1 of 2 running tasks lack the GuardDuty agent".to_owned(),
        not_before_ms: Some(0),
    }
}

impl Action {
    /// The same action in `account`: its target and ARNs.
    pub fn in_account(mut self, account: &str) -> Self {
        let (target, arns) = match &mut self {
            Action::TagCluster {
                target,
                cluster_arn,
                ..
            }
            | Action::UntagCluster {
                target,
                cluster_arn,
                ..
            } => (target, vec![cluster_arn]),
            Action::RedeployService {
                target,
                cluster_arn,
                service_arn,
                ..
            } => (target, vec![cluster_arn, service_arn]),
            Action::UpdateDetector { target, .. }
            | Action::UpdateOrganizationConfiguration { target, .. } => (target, vec![]),
        };
        let from = target.account.replace(account.to_owned());
        if let Some(from) = from {
            for arn in arns {
                *arn = arn.replacen(&format!(":{from}:"), &format!(":{account}:"), 1);
            }
        }
        self
    }

    /// A redeploy due from `ms`.
    ///
    /// # Panics
    /// On any other action.
    pub fn not_before(mut self, ms: i64) -> Self {
        match &mut self {
            Action::RedeployService { not_before_ms, .. } => *not_before_ms = Some(ms),
            other => panic!("not_before on {other:?}"),
        }
        self
    }

    /// A redeploy for this purpose.
    ///
    /// # Panics
    /// On any other action.
    pub fn purpose(mut self, to: RedeployPurpose) -> Self {
        match &mut self {
            Action::RedeployService { purpose, .. } => *purpose = to,
            other => panic!("purpose on {other:?}"),
        }
        self
    }

    /// A redeploy with this reason.
    ///
    /// # Panics
    /// On any other action.
    pub fn reason(mut self, text: &str) -> Self {
        match &mut self {
            Action::RedeployService { reason, .. } => *reason = text.to_owned(),
            other => panic!("reason on {other:?}"),
        }
        self
    }
}

/// A service of `region` the plan holds back for `reason`.
pub fn held(region: &str, cluster: &str, service: &str, reason: HoldReason) -> Held {
    Held {
        target: target_ref(region),
        cluster: cluster.to_owned(),
        service: service.to_owned(),
        reason,
        detail: None,
    }
}

impl Held {
    /// With these facts behind the reason.
    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = Some(detail.to_owned());
        self
    }
}

/// The table row of a cluster of `region` that is tagged `true`, stays covered, and whose
/// GuardDuty coverage and tasks were not read.
pub fn row(region: &str, cluster: &str) -> ClusterRow {
    ClusterRow {
        target: target_ref(region),
        cluster: cluster.to_owned(),
        desired: Some(ManagedTag::True),
        observed: Some("true".to_owned()),
        coverage: CoverageChange::Covered,
        guardduty: None,
        tasks: None,
        agent_tasks: None,
    }
}

impl ClusterRow {
    /// GuardDuty reports the cluster in this status (see [`coverage`]).
    pub fn guardduty(mut self, status: impl Into<CoverageStatus>) -> Self {
        self.guardduty = Some(coverage(status));
        self
    }

    /// Coverage is off once the plan is applied and `n` tasks still run the agent.
    pub fn agent_tasks(mut self, n: u32) -> Self {
        self.agent_tasks = Some(n);
        self
    }

    /// GuardDuty reports this coverage record.
    pub fn coverage_record(mut self, record: CoverageRecord) -> Self {
        self.guardduty = Some(record);
        self
    }

    /// 6 running tasks, of which `service` service tasks (in one service when any) and
    /// `standalone` standalone tasks lack the agent.
    pub fn tasks(mut self, service: u32, standalone: u32) -> Self {
        self.tasks = Some(TaskSummary {
            running: 6,
            services_without_agent: u32::from(service > 0),
            service_tasks_without_agent: service,
            standalone_tasks_without_agent: standalone,
        });
        self
    }
}
