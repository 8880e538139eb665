//! The plan JSON of DESIGN §4: stable keys for scripts and GitOps CI.

use serde_json::{json, Value};

use super::{Action, ClusterRow, Held, Plan, Refusal, TAG_KEY};

impl Held {
    /// One object of the plan JSON's `held` list.
    pub fn to_json(&self) -> Value {
        json!({"region": self.target.region, "account": self.target.account, "cluster": self.cluster,
               "service": self.service, "reason": self.reason})
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
            Action::RedeployService {
                cluster,
                cluster_arn,
                service,
                service_arn,
                reason,
                not_before_ms,
                ..
            } => json!({
                "phase": self.phase().as_str(), "kind": self.kind(), "region": t.region, "account": t.account,
                "cluster": cluster, "clusterArn": cluster_arn, "service": service, "serviceArn": service_arn,
                "reason": reason, "notBefore": not_before_ms.map(rfc3339),
            }),
        }
    }
}

impl Refusal {
    /// The `refused` object of the plan JSON.
    pub fn to_json(&self) -> Value {
        json!({"reason": self.reason, "limit": self.limit, "region": self.region, "value": self.value, "max": self.max,
               "scope": self.scope.as_str(), "targets": self.targets})
    }
}

impl ClusterRow {
    /// One object of the plan JSON's `clusters` list.
    pub fn to_json(&self) -> Value {
        json!({
            "region": self.target.region, "account": self.target.account, "cluster": self.cluster,
            "desired": self.desired.map(|d| d.as_str()), "observed": self.observed,
            "coverage": self.coverage.as_str(),
            // null when the cluster's tasks were not read (coverage off and staying off)
            "uncoveredTasks": self.tasks.map(|t| t.without_agent()),
            "runningTasks": self.tasks.map(|t| t.running),
            "servicesWithoutAgent": self.tasks.map(|t| t.services_without_agent),
            "standaloneTasksWithoutAgent": self.tasks.map(|t| t.standalone_tasks_without_agent),
            "coverageStatus": self.guardduty.as_ref().map(|g| g.status.as_str()),
            "coverageIssue": self.guardduty.as_ref().and_then(|g| g.issue.as_deref()),
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
            "held": targets.iter().flat_map(|t| &t.held).map(Held::to_json).collect::<Vec<_>>(),
        })
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
