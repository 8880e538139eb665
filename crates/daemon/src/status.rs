//! What `/status` and `/readyz` report: the last pass and the desired state in force.

use std::time::{SystemTime, UNIX_EPOCH};

use gec_engine::rollout::{Halt, Watch};
use gec_engine::TargetPass;
use gec_model::plan::{ActionJson, ClusterJson, ConflictJson, HeldJson, Refusal, RefusalJson};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::conflicts::ResetJson;

/// Seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The shared, last-known picture of the controller.
#[derive(Debug, Default, Clone)]
pub struct Status {
    /// The desired-state file.
    pub source: String,
    /// SHA-256 of the state in force.
    pub sha256: Option<String>,
    /// When the state in force was loaded.
    pub loaded_at: Option<SystemTime>,
    /// The current file's problem, if any.
    pub config_error: Option<String>,
    /// Passes run so far.
    pub pass_id: u64,
    /// When the last pass finished.
    pub last_pass_at: Option<SystemTime>,
    /// Its result label.
    pub last_result: Option<&'static str>,
    /// How long it took, in seconds.
    pub last_pass_seconds: Option<f64>,
    /// Whether the last pass reached AWS in at least one target.
    pub reached_aws: bool,
    /// The last pass, per target.
    pub passes: Vec<TargetPass>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The controller's version and commit (`--version`), empty when unknown.
    pub version: String,
    /// After the last pass: the rollouts this process started and watches.
    pub watching: Vec<Watch>,
    /// After the last pass: the FAILED rollout that halts redeploys, if any.
    pub halted: Option<Halt>,
    /// The conflicts that stand (after the last pass or reset).
    pub conflicts: Vec<gec_model::plan::Conflict>,
    /// The last `POST /conflicts/reset`, if any.
    pub conflicts_reset: Option<gec_engine::Reset>,
    /// With `--lease-table`: the elector's view.
    pub leader: Option<crate::leader::LeaderJson>,
}

impl Status {
    /// Ready once a desired state is loaded and the last pass reached AWS.
    pub fn ready(&self) -> bool {
        self.sha256.is_some() && self.reached_aws
    }

    /// `/readyz` body.
    pub fn readiness(&self) -> Readiness {
        let reason = if self.sha256.is_none() {
            "no valid desired state loaded yet"
        } else if !self.reached_aws {
            "the last pass did not reach AWS"
        } else {
            "ok"
        };
        Readiness {
            ready: self.ready(),
            reason: reason.to_owned(),
            config_error: self.config_error.clone(),
        }
    }

    /// `/status` body. Holds no credential: targets are shown by region and role ARN.
    pub fn json(&self) -> StatusJson {
        let plan = gec_model::Plan {
            targets: self
                .passes
                .iter()
                .filter_map(|p| p.pending().cloned())
                .collect(),
        }
        .json();
        StatusJson {
            version: self.version.clone(),
            desired_state: DesiredStateJson {
                source: self.source.clone(),
                sha256: self.sha256.clone(),
                loaded_at: self.loaded_at.map(unix_secs),
                error: self.config_error.clone(),
            },
            dry_run: self.dry_run,
            last_pass: LastPassJson {
                id: self.pass_id,
                finished_at: self.last_pass_at.map(unix_secs),
                result: self.last_result.map(|r| r.to_string()),
                seconds: self.last_pass_seconds,
            },
            targets: self
                .passes
                .iter()
                .map(|p| TargetJson {
                    target: p.target.label(),
                    region: p.target.region.clone(),
                    role_arn: p.target.role_arn.clone(),
                    result: if p.error.is_some() || p.failed_actions() > 0 {
                        TargetResult::Error
                    } else {
                        TargetResult::Ok
                    },
                    error: p.error.as_ref().map(ToString::to_string),
                    pending: p.pending().map(|pl| pl.actions.len()),
                    refused: p
                        .plan
                        .as_ref()
                        .and_then(|pl| pl.refused.as_ref())
                        .map(Refusal::json),
                })
                .collect(),
            pending: plan.actions,
            refused: self
                .passes
                .iter()
                .filter_map(|p| p.plan.as_ref()?.refused.as_ref())
                .map(Refusal::json)
                .collect(),
            clusters: plan.clusters,
            warnings: plan.warnings,
            held: plan.held,
            watching: self
                .watching
                .iter()
                .map(|w| WatchJson {
                    target: w.target.clone(),
                    cluster: w.cluster.clone(),
                    service: w.service.clone(),
                    deployment_id: (!w.deployment_id.is_empty()).then(|| w.deployment_id.clone()),
                    deployment_controller: if w.codedeploy { "CODE_DEPLOY" } else { "ECS" }
                        .to_owned(),
                })
                .collect(),
            halted: self.halted.as_ref().map(|h| HaltJson {
                cluster: h.cluster.clone(),
                service: h.service.clone(),
                deployment_id: h.deployment_id.clone(),
            }),
            conflicts: self
                .conflicts
                .iter()
                .map(gec_model::plan::Conflict::json)
                .collect(),
            conflicts_reset: self.conflicts_reset.as_ref().map(ResetJson::of),
            leader: self
                .leader
                .clone()
                .unwrap_or_else(|| crate::leader::LeaderJson::disabled(self.dry_run)),
            // Filled in by `Shared::status_json`: the requests live outside `Status`.
            reconcile_requests: crate::reconcile::RequestsJson::default(),
        }
    }

    /// `/status` body as a value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.json()).unwrap_or_default()
    }
}

/// `/readyz` body.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// A desired state is loaded and the last pass reached AWS.
    pub ready: bool,
    /// Why not, or `ok`.
    pub reason: String,
    /// The current desired-state file's problem, if any.
    pub config_error: Option<String>,
}

/// `/status` body: the desired state in force, the last pass per target, its pending
/// changes and cluster table, and the rollouts this process watches.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusJson {
    /// The controller's version and commit, as `--version` prints it.
    pub version: String,
    /// The desired state in force.
    pub desired_state: DesiredStateJson,
    /// `--dry-run`: the daemon plans and writes nothing.
    pub dry_run: bool,
    /// The last pass.
    pub last_pass: LastPassJson,
    /// The last pass, per target.
    pub targets: Vec<TargetJson>,
    /// What is still pending after the last pass (plan JSON actions).
    pub pending: Vec<ActionJson>,
    /// Every refusal by a safety limit in the last pass.
    pub refused: Vec<RefusalJson>,
    /// The cluster table (plan JSON clusters).
    pub clusters: Vec<ClusterJson>,
    /// Things the controller cannot fix by itself.
    pub warnings: Vec<String>,
    /// Services not redeployed although tasks of them lack the agent, and why.
    pub held: Vec<HeldJson>,
    /// The rollouts this process started and watches.
    pub watching: Vec<WatchJson>,
    /// The FAILED rollout that halts redeploys; null when none.
    pub halted: Option<HaltJson>,
    /// Resources another writer keeps changing back: the controller does not write them
    /// until their rule changes, AWS holds the desired value again, or a reset.
    pub conflicts: Vec<ConflictJson>,
    /// The last `POST /conflicts/reset` and what it ended; null when none since start.
    pub conflicts_reset: Option<ResetJson>,
    /// Leader election (`run --lease-table`): whether this replica leads, and who does.
    pub leader: crate::leader::LeaderJson,
    /// `POST /reconcile`: the last accepted request and whether its pass started.
    pub reconcile_requests: crate::reconcile::RequestsJson,
}

/// The desired state in force.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredStateJson {
    /// The file or `s3://bucket/key`.
    pub source: String,
    /// SHA-256 of the state in force; null before one is loaded.
    pub sha256: Option<String>,
    /// When it was loaded, in seconds since the Unix epoch.
    pub loaded_at: Option<f64>,
    /// The current file's problem, if any (the last good state stays in force).
    pub error: Option<String>,
}

/// The last pass.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastPassJson {
    /// Passes run so far.
    pub id: u64,
    /// When the last pass finished, in seconds since the Unix epoch.
    pub finished_at: Option<f64>,
    /// Its result label (`reconcile_total`'s `result`).
    pub result: Option<String>,
    /// How long it took, in seconds.
    pub seconds: Option<f64>,
}

/// One target of the last pass.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetJson {
    /// The target's label: region, plus the role's account.
    pub target: String,
    /// Region.
    pub region: String,
    /// The role assumed for it; null for the ambient credentials.
    pub role_arn: Option<String>,
    /// `error` when the pass or one of its writes failed.
    pub result: TargetResult,
    /// The AWS failure that stopped the pass.
    pub error: Option<String>,
    /// Changes still pending; null when the target could not be planned.
    pub pending: Option<usize>,
    /// The refusal of its plan by a safety limit.
    pub refused: Option<RefusalJson>,
}

/// How a target's last pass went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetResult {
    /// No failure.
    Ok,
    /// The pass or one of its writes failed.
    Error,
}

/// A rollout this process started and watches.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatchJson {
    /// Target label.
    pub target: String,
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The deployment started (an ECS deployment id, or a CodeDeploy one `d-…`); null
    /// while the write is in flight.
    pub deployment_id: Option<String>,
    /// How it was started: `ECS` (`UpdateService`) or `CODE_DEPLOY` (a CodeDeploy
    /// deployment, watched until Succeeded, Failed or Stopped).
    pub deployment_controller: String,
}

/// The FAILED rollout (or Failed / Stopped CodeDeploy deployment) that halts redeploys.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaltJson {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The FAILED deployment (or CodeDeploy deployment `d-…`).
    pub deployment_id: String,
}

/// The JSON Schema of `/status`.
pub fn status_schema() -> Value {
    gec_model::plan::output_schema::<StatusJson>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pass;
    use gec_model::observed::CoverageRecord;
    use gec_model::testing::{held, row, ACCOUNT};
    use gec_model::TargetPlan;
    use serde_json::json;

    #[test]
    fn status_shows_held_services_with_their_codes_guardduty_s_words_watched_rollouts_and_the_halt()
    {
        let mut status = Status::default();
        let json = status.to_json();
        assert_eq!(json["held"], json!([]));
        assert_eq!(json["watching"], json!([]));
        assert_eq!(json["halted"], Value::Null);

        status.passes = vec![pass(
            "us-east-1",
            TargetPlan {
                held: vec![
                    held(
                        "us-east-1",
                        "apps",
                        "db",
                        gec_model::plan::HoldReason::Disabled,
                    ),
                    held(
                        "us-east-1",
                        "apps",
                        "legacy",
                        gec_model::plan::HoldReason::Preflight(
                            gec_model::observed::PreflightCode::PlatformVersion,
                        ),
                    )
                    .detail("platform version 1.3.0"),
                ],
                clusters: vec![
                    row("us-east-1", "apps").coverage_record(CoverageRecord {
                        status: "UNHEALTHY".into(),
                        issue: Some("No agent reporting".into()),
                        management_type: Some("AUTO_MANAGED".into()),
                        fargate_issues: vec!["Execution role cannot pull".into()],
                    }),
                    row("us-east-1", "old").agent_tasks(2),
                ],
                ..TargetPlan::default()
            },
            vec![],
        )];
        status.watching = vec![
            Watch {
                target: "us-east-1".into(),
                cluster_arn: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
                cluster: "apps".into(),
                service: "api".into(),
                deployment_id: "ecs-svc/1".into(),
                codedeploy: false,
            },
            Watch {
                target: "us-east-1".into(),
                cluster_arn: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
                cluster: "apps".into(),
                service: "web".into(),
                deployment_id: "d-ABCDEFGHI".into(),
                codedeploy: true,
            },
        ];
        status.halted = Some(Halt {
            cluster: "apps".into(),
            service: "worker".into(),
            deployment_id: "ecs-svc/9".into(),
        });
        let json = status.to_json();
        assert_eq!(
            json["held"],
            json!([
                {"region": "us-east-1", "account": ACCOUNT, "cluster": "apps",
                 "service": "db", "code": "redeploy_disabled",
                 "reason": "redeploy.enabled is false", "detail": null},
                {"region": "us-east-1", "account": ACCOUNT, "cluster": "apps",
                 "service": "legacy", "code": "platform_version",
                 "reason": "the Fargate platform version is below 1.4.0, which GuardDuty's agent needs",
                 "detail": "platform version 1.3.0"},
            ])
        );
        let apps = &json["clusters"][0];
        assert_eq!(apps["coverageIssue"], "No agent reporting");
        assert_eq!(apps["fargateIssues"], json!(["Execution role cannot pull"]));
        assert_eq!(apps["managementType"], "AUTO_MANAGED");
        assert_eq!(apps["agentTasks"], Value::Null);
        assert_eq!(
            json["clusters"][1]["agentTasks"], 2,
            "tasks left with the agent"
        );
        assert_eq!(
            json["watching"],
            json!([
                {"target": "us-east-1", "cluster": "apps", "service": "api", "deploymentId": "ecs-svc/1", "deploymentController": "ECS"},
                {"target": "us-east-1", "cluster": "apps", "service": "web", "deploymentId": "d-ABCDEFGHI", "deploymentController": "CODE_DEPLOY"},
            ])
        );
        assert_eq!(
            json["halted"],
            json!({"cluster": "apps", "service": "worker", "deploymentId": "ecs-svc/9"})
        );
    }
}
