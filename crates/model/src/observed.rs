//! What the controller saw in AWS, in plain types (the AWS adapter fills them in).

use std::collections::BTreeMap;

/// Tag key that selects clusters for GuardDuty Runtime Monitoring; case-sensitive.
pub const MANAGED_TAG_KEY: &str = "GuardDutyManaged";
/// Detector feature for Runtime Monitoring.
pub const RUNTIME_MONITORING: &str = "RUNTIME_MONITORING";
/// The EKS-only predecessor feature; never sent together with [`RUNTIME_MONITORING`].
pub const EKS_RUNTIME_MONITORING: &str = "EKS_RUNTIME_MONITORING";
/// Additional configuration: automated agent management for ECS on Fargate.
pub const ECS_FARGATE_AGENT_MANAGEMENT: &str = "ECS_FARGATE_AGENT_MANAGEMENT";
/// Feature and additional-configuration status that means on.
pub const ENABLED: &str = "ENABLED";
/// Feature and additional-configuration status that means off.
pub const DISABLED: &str = "DISABLED";

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
}

/// One ECS cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedCluster {
    /// Cluster name.
    pub name: String,
    /// Cluster ARN.
    pub arn: String,
    /// `ACTIVE`, `PROVISIONING`, `DEPROVISIONING`, `FAILED` or `INACTIVE`.
    pub status: String,
    /// Every tag on the cluster.
    pub tags: BTreeMap<String, String>,
    /// Services in the ACTIVE state, as DescribeClusters counts them.
    pub active_services: u32,
    /// Tasks in the RUNNING state, as DescribeClusters counts them.
    pub running_tasks: u32,
}

impl ObservedCluster {
    /// The value of the `GuardDutyManaged` tag, if present.
    pub fn managed_tag(&self) -> Option<&str> {
        self.tags.get(MANAGED_TAG_KEY).map(String::as_str)
    }

    /// Whether the controller may write to this cluster (only ACTIVE ones).
    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
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
    pub status: String,
    /// Additional configurations by name, with their status.
    pub additional: BTreeMap<String, String>,
}

impl ObservedDetector {
    /// Status of a feature, if the detector lists it.
    pub fn feature_status(&self, feature: &str) -> Option<&str> {
        self.features.get(feature).map(|f| f.status.as_str())
    }

    /// Status of an additional configuration of `RUNTIME_MONITORING`, if listed.
    pub fn runtime_additional_status(&self, name: &str) -> Option<&str> {
        self.features
            .get(RUNTIME_MONITORING)
            .and_then(|f| f.additional.get(name))
            .map(String::as_str)
    }

    /// The two switches that decide ECS Fargate coverage.
    pub fn flags(&self) -> DetectorFlags {
        DetectorFlags {
            runtime_monitoring: self.feature_status(RUNTIME_MONITORING) == Some(ENABLED),
            fargate_automation: self.runtime_additional_status(ECS_FARGATE_AGENT_MANAGEMENT)
                == Some(ENABLED),
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
