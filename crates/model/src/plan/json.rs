//! The plan JSON of DESIGN §4: stable keys for scripts and GitOps CI. Typed, so that
//! `guardduty-ecs-controller schema plan` prints its JSON Schema (`schemas/plan.schema.json`).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{
    Action, ClusterRow, Conflict, ConflictJson, CoverageChange, Held, Phase, Plan, RedeployPurpose,
    Refusal, Scope, TAG_KEY,
};
use crate::desired::ManagedTag;

/// The plan JSON (`plan --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanJson {
    /// How many changes the plan makes (0: AWS matches the desired state).
    pub changes: usize,
    /// The changes in apply order.
    pub actions: Vec<ActionJson>,
    /// The first refusal by a safety limit; null when the plan is not refused.
    pub refused: Option<RefusalJson>,
    /// Every ACTIVE cluster of every target.
    pub clusters: Vec<ClusterJson>,
    /// Things the controller cannot fix by itself.
    pub warnings: Vec<String>,
    /// Services the plan does not redeploy although their tasks lack the agent (or, after
    /// coverage loss with `onCoverageLoss: redeploy`, still run it), and why.
    pub held: Vec<HeldJson>,
    /// Resources another writer keeps changing back: the controller no longer writes them
    /// (their actions are not in `actions`) until their rule changes or the conflict is
    /// reset.
    pub conflicts: Vec<ConflictJson>,
}

/// One change to AWS.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionJson {
    /// The phase the change belongs to; phases apply in this order: tags, detector, untag, redeploy.
    pub phase: Phase,
    /// Region of the target.
    pub region: String,
    /// Account of the target, when known.
    pub account: Option<String>,
    /// What changes, by `kind`.
    #[serde(flatten)]
    pub change: ChangeJson,
}

/// What one action changes; `kind` says which.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ChangeJson {
    /// Set the `GuardDutyManaged` tag of a cluster.
    TagCluster {
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Always `GuardDutyManaged`.
        key: String,
        /// The value now; null when the cluster has no such tag.
        from: Option<String>,
        /// `true` or `false`.
        to: String,
    },
    /// Remove the `GuardDutyManaged` tag from a cluster.
    UntagCluster {
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Always `GuardDutyManaged`.
        key: String,
        /// The value now.
        from: String,
        /// Always null: the tag is removed.
        to: (),
    },
    /// Change one detector feature or additional configuration.
    UpdateDetector {
        /// Detector id.
        detector_id: String,
        /// `RUNTIME_MONITORING` or `ECS_FARGATE_AGENT_MANAGEMENT`.
        feature: String,
        /// Status now; null when the detector does not list the feature.
        from: Option<String>,
        /// `ENABLED` or `DISABLED`.
        to: String,
    },
    /// Change GuardDuty's organization auto-enable of one feature, from the delegated
    /// administrator.
    UpdateOrganizationConfiguration {
        /// The administrator's detector id.
        detector_id: String,
        /// `RUNTIME_MONITORING` or `ECS_FARGATE_AGENT_MANAGEMENT`.
        feature: String,
        /// Auto-enable now (`NEW`, `ALL`, `NONE`); null when not listed.
        from: Option<String>,
        /// `NEW`, `ALL` or `NONE`.
        to: String,
    },
    /// Force a new deployment of a Fargate service so its tasks get the agent
    /// (`add_agent`), or run without it after coverage loss (`remove_agent`).
    RedeployService {
        /// Cluster name.
        cluster: String,
        /// Cluster ARN.
        cluster_arn: String,
        /// Service name.
        service: String,
        /// Service ARN.
        service_arn: String,
        /// `add_agent` (coverage is on and tasks lack the agent) or `remove_agent`
        /// (coverage is off and tasks still run it, `onCoverageLoss: redeploy`).
        purpose: RedeployPurpose,
        /// The service's deployment controller, which decides the API: `ECS`
        /// (`UpdateService` with `forceNewDeployment`) or `CODE_DEPLOY` (a CodeDeploy
        /// deployment of the current task definition).
        deployment_controller: String,
        /// The ECS deployment strategy (`ROLLING`, `BLUE_GREEN`, `LINEAR`, `CANARY`);
        /// null for `CODE_DEPLOY`.
        strategy: Option<String>,
        /// `application/deployment-group` of a `CODE_DEPLOY` redeploy; null for `ECS`.
        deployment_group: Option<String>,
        /// Why, for people.
        reason: String,
        /// RFC 3339 UTC: not before the cluster's coverage has been on for `settleTime`;
        /// null while coverage is not on yet.
        not_before: Option<String>,
    },
}

/// Why a plan was refused whole.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusalJson {
    /// A sentence for people.
    pub reason: String,
    /// The safety limit, as in the YAML (`maxClusterChangesPerCycle`, ...).
    pub limit: String,
    /// Region of the refused target.
    pub region: String,
    /// What the plan would do.
    pub value: f64,
    /// The limit's value.
    pub max: f64,
    /// Whether the limit counted one target's plan or every target of the pass.
    pub scope: Scope,
    /// Labels of the targets that caused the refusal.
    pub targets: Vec<String>,
}

/// One row of the cluster table.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterJson {
    /// Region of the target.
    pub region: String,
    /// Account of the target, when known.
    pub account: Option<String>,
    /// Cluster name.
    pub cluster: String,
    /// What the rules ask for; null when no rule names the cluster.
    pub desired: Option<DesiredTag>,
    /// The `GuardDutyManaged` tag now; null when the cluster has none.
    pub observed: Option<String>,
    /// Coverage now and once the plan is applied.
    pub coverage: CoverageChange,
    /// RUNNING Fargate tasks without the agent; null when the cluster's tasks were not
    /// read (coverage off and staying off, or no rule names it).
    pub uncovered_tasks: Option<u32>,
    /// RUNNING Fargate tasks; null when not read.
    pub running_tasks: Option<u32>,
    /// Services with a RUNNING Fargate task without the agent; null when not read.
    pub services_without_agent: Option<u32>,
    /// Standalone RUNNING Fargate tasks without the agent (reported, never stopped);
    /// null when not read.
    pub standalone_tasks_without_agent: Option<u32>,
    /// GuardDuty's coverage status (`HEALTHY`, `UNHEALTHY`); null when it does not list
    /// the cluster.
    pub coverage_status: Option<String>,
    /// Why GuardDuty reports the cluster unhealthy (`ListCoverage` `issue`).
    pub coverage_issue: Option<String>,
    /// How GuardDuty manages the agent on Fargate in this cluster
    /// (`fargateDetails.managementType`: `AUTO_MANAGED`, `MANUAL`, `DISABLED`); null when
    /// GuardDuty does not say.
    pub management_type: Option<String>,
    /// GuardDuty's own list of Fargate problems in the cluster (`fargateDetails.issues`);
    /// empty when none or not listed.
    pub fargate_issues: Vec<String>,
    /// RUNNING Fargate tasks that still run the agent although the cluster's coverage is
    /// off once the plan is applied (they keep it until replaced); null when coverage
    /// stays on or the cluster's tasks were not read.
    pub agent_tasks: Option<u32>,
}

/// What a rule asks for on the `GuardDutyManaged` tag, as a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredTag {
    /// `GuardDutyManaged=true`.
    True,
    /// `GuardDutyManaged=false`.
    False,
    /// No `GuardDutyManaged` tag.
    Absent,
}

impl From<ManagedTag> for DesiredTag {
    fn from(t: ManagedTag) -> Self {
        match t {
            ManagedTag::True => DesiredTag::True,
            ManagedTag::False => DesiredTag::False,
            ManagedTag::Absent => DesiredTag::Absent,
        }
    }
}

/// A service the plan does not redeploy although tasks of it lack the agent.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldJson {
    /// Region of the target.
    pub region: String,
    /// Account of the target, when known.
    pub account: Option<String>,
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Why, as a stable identifier: `platform_version`, `windows`, `no_execution_role`,
    /// `execution_role_cannot_pull`, `agent_failed`, `preflight_unknown` (the service
    /// cannot get the agent, or that could not be checked), or `redeploy_disabled`,
    /// `excluded`, `not_described`, `service_inactive`, `not_fargate`,
    /// `deployment_in_progress`, `retry_after`.
    pub code: String,
    /// Why it is not redeployed, for people.
    pub reason: String,
    /// This service's facts behind the reason: the failed prerequisite's facts, AWS's
    /// reason for a stopped agent, why a check could not be made; null when none.
    pub detail: Option<String>,
}

/// The JSON Schema of the plan JSON.
pub fn plan_schema() -> Value {
    output_schema::<PlanJson>()
}

/// The JSON Schema of a JSON output, as the controller writes it: a field that is null,
/// not absent, when empty is required.
pub fn output_schema<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or_default()
}

impl Held {
    /// One object of the plan JSON's `held` list.
    pub fn json(&self) -> HeldJson {
        HeldJson {
            region: self.target.region.clone(),
            account: self.target.account.clone(),
            cluster: self.cluster.clone(),
            service: self.service.clone(),
            code: self.reason.code().to_owned(),
            reason: self.reason.to_string(),
            detail: self.detail.clone(),
        }
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (`2026-11-27T06:00:00Z`), seconds
/// precision (truncated toward the past). An instant past the years jiff represents
/// (-9999 to 9999) prints as the nearest one, never a panic.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000).clamp(
        jiff::Timestamp::MIN.as_second(),
        jiff::Timestamp::MAX.as_second(),
    );
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

impl Action {
    /// The action as one object of the plan JSON's `actions` list.
    pub fn json(&self) -> ActionJson {
        let t = self.target();
        let change = match self {
            Action::UpdateOrganizationConfiguration {
                detector_id,
                feature,
                from,
                to,
                ..
            } => ChangeJson::UpdateOrganizationConfiguration {
                detector_id: detector_id.clone(),
                feature: (*feature).to_owned(),
                from: from.clone(),
                to: to.as_aws().to_owned(),
            },
            Action::TagCluster {
                cluster,
                cluster_arn,
                from,
                to,
                ..
            } => ChangeJson::TagCluster {
                cluster: cluster.clone(),
                cluster_arn: cluster_arn.clone(),
                key: TAG_KEY.to_owned(),
                from: from.clone(),
                to: (*to).to_owned(),
            },
            Action::UntagCluster {
                cluster,
                cluster_arn,
                from,
                ..
            } => ChangeJson::UntagCluster {
                cluster: cluster.clone(),
                cluster_arn: cluster_arn.clone(),
                key: TAG_KEY.to_owned(),
                from: from.clone(),
                to: (),
            },
            Action::UpdateDetector {
                detector_id,
                feature,
                from,
                to,
                ..
            } => ChangeJson::UpdateDetector {
                detector_id: detector_id.clone(),
                feature: (*feature).to_owned(),
                from: from.as_ref().map(ToString::to_string),
                to: to.to_string(),
            },
            Action::RedeployService {
                cluster,
                cluster_arn,
                service,
                service_arn,
                purpose,
                via,
                reason,
                not_before_ms,
                ..
            } => ChangeJson::RedeployService {
                deployment_controller: via.controller().as_str().to_owned(),
                strategy: via.strategy().map(|s| s.as_str().to_owned()),
                deployment_group: match via {
                    super::Deployer::CodeDeploy(c) => Some(c.group.to_string()),
                    super::Deployer::Ecs { .. } => None,
                },
                cluster: cluster.clone(),
                cluster_arn: cluster_arn.clone(),
                service: service.clone(),
                service_arn: service_arn.clone(),
                purpose: *purpose,
                reason: reason.clone(),
                not_before: not_before_ms.map(rfc3339),
            },
        };
        ActionJson {
            phase: self.phase(),
            region: t.region.clone(),
            account: t.account.clone(),
            change,
        }
    }
}

impl Refusal {
    /// The `refused` object of the plan JSON.
    pub fn json(&self) -> RefusalJson {
        RefusalJson {
            reason: self.reason.clone(),
            limit: self.limit.to_owned(),
            region: self.region.clone(),
            value: self.value,
            max: self.max,
            scope: self.scope,
            targets: self.targets.clone(),
        }
    }
}

impl ClusterRow {
    /// One object of the plan JSON's `clusters` list.
    pub fn json(&self) -> ClusterJson {
        let gd = self.guardduty.as_ref();
        ClusterJson {
            region: self.target.region.clone(),
            account: self.target.account.clone(),
            cluster: self.cluster.clone(),
            desired: self.desired.map(DesiredTag::from),
            observed: self.observed.clone(),
            coverage: self.coverage,
            uncovered_tasks: self.tasks.map(|t| t.without_agent()),
            running_tasks: self.tasks.map(|t| t.running),
            services_without_agent: self.tasks.map(|t| t.services_without_agent),
            standalone_tasks_without_agent: self.tasks.map(|t| t.standalone_tasks_without_agent),
            coverage_status: gd.map(|g| g.status.as_str().to_owned()),
            coverage_issue: gd.and_then(|g| g.issue.clone()),
            management_type: gd.and_then(|g| g.management_type.clone()),
            fargate_issues: gd.map(|g| g.fargate_issues.clone()).unwrap_or_default(),
            agent_tasks: self.agent_tasks,
        }
    }
}

impl Plan {
    /// The whole plan JSON.
    pub fn json(&self) -> PlanJson {
        let targets = &self.targets;
        PlanJson {
            changes: self.changes(),
            actions: targets
                .iter()
                .flat_map(|t| &t.actions)
                .map(Action::json)
                .collect(),
            refused: self.refused().map(Refusal::json),
            clusters: targets
                .iter()
                .flat_map(|t| &t.clusters)
                .map(ClusterRow::json)
                .collect(),
            warnings: targets.iter().flat_map(|t| &t.warnings).cloned().collect(),
            held: targets
                .iter()
                .flat_map(|t| &t.held)
                .map(Held::json)
                .collect(),
            conflicts: targets
                .iter()
                .flat_map(|t| &t.conflicts)
                .map(Conflict::json)
                .collect(),
        }
    }

    /// The whole plan JSON as a value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.json()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_737_600_000), "2026-11-27T00:00:00Z");
        assert_eq!(
            super::rfc3339(951_782_400_000 + 3_723_000),
            "2000-02-29T01:02:03Z"
        );
        // Milliseconds are dropped, before the epoch too.
        assert_eq!(super::rfc3339(1_999), "1970-01-01T00:00:01Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
        for ms in [i64::MIN, i64::MAX] {
            assert!(super::rfc3339(ms).ends_with('Z'));
        }
    }
}
