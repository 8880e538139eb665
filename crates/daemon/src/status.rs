//! What `/status` and `/readyz` report: the last pass and the desired state in force.

use std::time::{SystemTime, UNIX_EPOCH};

use gec_engine::rollout::{Halt, Watch};
use gec_engine::TargetPass;
use serde_json::{json, Value};

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
    /// Whether the last pass reached AWS in at least one target.
    pub reached_aws: bool,
    /// The last pass, per target.
    pub passes: Vec<TargetPass>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// After the last pass: the rollouts this process started and watches.
    pub watching: Vec<Watch>,
    /// After the last pass: the FAILED rollout that halts redeploys, if any.
    pub halted: Option<Halt>,
}

impl Status {
    /// Ready once a desired state is loaded and the last pass reached AWS.
    pub fn ready(&self) -> bool {
        self.sha256.is_some() && self.reached_aws
    }

    /// `/readyz` body.
    pub fn readiness(&self) -> Value {
        let reason = if self.sha256.is_none() {
            "no valid desired state loaded yet"
        } else if !self.reached_aws {
            "the last pass did not reach AWS"
        } else {
            "ok"
        };
        json!({"ready": self.ready(), "reason": reason, "configError": self.config_error})
    }

    /// `/status` body. Holds no credential: targets are shown by region and role ARN.
    pub fn to_json(&self) -> Value {
        let plan = gec_model::Plan {
            targets: self
                .passes
                .iter()
                .filter_map(|p| p.pending().cloned())
                .collect(),
        };
        let plan_json = plan.to_json();
        json!({
            "desiredState": {
                "source": self.source, "sha256": self.sha256,
                "loadedAt": self.loaded_at.map(unix_secs), "error": self.config_error,
            },
            "dryRun": self.dry_run,
            "lastPass": {"id": self.pass_id, "finishedAt": self.last_pass_at.map(unix_secs), "result": self.last_result},
            "targets": self.passes.iter().map(|p| json!({
                "target": p.target.label(), "region": p.target.region, "roleArn": p.target.role_arn,
                "result": if p.error.is_some() || p.failed_actions() > 0 { "error" } else { "ok" },
                "error": p.error.as_ref().map(ToString::to_string),
                "pending": p.pending().map(|pl| pl.actions.len()),
                "refused": p.plan.as_ref().and_then(|pl| pl.refused.as_ref()).map(|r| r.to_json()),
            })).collect::<Vec<_>>(),
            "pending": plan_json["actions"],
            "refused": self.passes.iter().filter_map(|p| p.plan.as_ref()?.refused.as_ref()).map(|r| r.to_json()).collect::<Vec<_>>(),
            "clusters": plan_json["clusters"],
            "warnings": plan_json["warnings"],
            "held": plan_json["held"],
            "watching": self.watching.iter().map(|w| json!({
                "target": w.target, "cluster": w.cluster, "service": w.service,
                "deploymentId": (!w.deployment_id.is_empty()).then_some(&w.deployment_id),
            })).collect::<Vec<_>>(),
            "halted": self.halted.as_ref().map(|h| json!({
                "cluster": h.cluster, "service": h.service, "deploymentId": h.deployment_id,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{held, pass};
    use gec_model::TargetPlan;

    #[test]
    fn status_shows_held_services_watched_rollouts_and_the_halt() {
        let mut status = Status::default();
        let json = status.to_json();
        assert_eq!(json["held"], json!([]));
        assert_eq!(json["watching"], json!([]));
        assert_eq!(json["halted"], Value::Null);

        status.passes = vec![pass(
            "us-east-1",
            TargetPlan {
                held: vec![held(
                    "us-east-1",
                    "apps",
                    "db",
                    gec_model::plan::HoldReason::Disabled,
                )],
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
            },
            Watch {
                target: "us-east-1".into(),
                cluster_arn: "arn:aws:ecs:us-east-1:111122223333:cluster/apps".into(),
                cluster: "apps".into(),
                service: "web".into(),
                deployment_id: String::new(),
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
            json!([{"region": "us-east-1", "account": "111122223333", "cluster": "apps",
                    "service": "db", "reason": "redeploy.enabled is false"}])
        );
        assert_eq!(
            json["watching"],
            json!([
                {"target": "us-east-1", "cluster": "apps", "service": "api", "deploymentId": "ecs-svc/1"},
                {"target": "us-east-1", "cluster": "apps", "service": "web", "deploymentId": null},
            ])
        );
        assert_eq!(
            json["halted"],
            json!({"cluster": "apps", "service": "worker", "deploymentId": "ecs-svc/9"})
        );
    }
}
