//! The plan JSON of DESIGN §4: stable keys for scripts and GitOps CI.

use serde_json::{json, Value};

use super::{Action, ClusterRow, Plan, Refusal, TAG_KEY};

impl Action {
    /// The action as one object of the plan JSON's `actions` list.
    pub fn to_json(&self) -> Value {
        let t = self.target();
        match self {
            Action::TagCluster {
                cluster,
                cluster_arn,
                from,
                to,
                ..
            } => json!({
                "phase": self.phase().as_str(), "kind": self.kind(), "region": t.region, "account": t.account,
                "cluster": cluster, "clusterArn": cluster_arn, "key": TAG_KEY, "from": from, "to": to,
            }),
            Action::UntagCluster {
                cluster,
                cluster_arn,
                from,
                ..
            } => json!({
                "phase": self.phase().as_str(), "kind": self.kind(), "region": t.region, "account": t.account,
                "cluster": cluster, "clusterArn": cluster_arn, "key": TAG_KEY, "from": from, "to": null,
            }),
            Action::UpdateDetector {
                detector_id,
                feature,
                from,
                to,
                ..
            } => json!({
                "phase": self.phase().as_str(), "kind": self.kind(), "region": t.region, "account": t.account,
                "detectorId": detector_id, "feature": feature, "from": from, "to": to,
            }),
        }
    }
}

impl Refusal {
    /// The `refused` object of the plan JSON.
    pub fn to_json(&self) -> Value {
        json!({"reason": self.reason, "limit": self.limit, "region": self.region, "value": self.value, "max": self.max})
    }
}

impl ClusterRow {
    /// One object of the plan JSON's `clusters` list.
    pub fn to_json(&self) -> Value {
        json!({
            "region": self.target.region, "account": self.target.account, "cluster": self.cluster,
            "desired": self.desired.map(|d| d.as_str()), "observed": self.observed,
            "coverage": self.coverage.as_str(),
            // DESIGN §4 key; null until running tasks are observed (the rollout work).
            "uncoveredTasks": null,
        })
    }
}

impl Plan {
    /// The whole plan JSON.
    pub fn to_json(&self) -> Value {
        let targets = &self.targets;
        json!({
            "changes": self.changes(),
            "actions": targets.iter().flat_map(|t| &t.actions).map(Action::to_json).collect::<Vec<_>>(),
            "refused": self.refused().map(Refusal::to_json),
            "clusters": targets.iter().flat_map(|t| &t.clusters).map(ClusterRow::to_json).collect::<Vec<_>>(),
            "warnings": targets.iter().flat_map(|t| &t.warnings).collect::<Vec<_>>(),
        })
    }
}
