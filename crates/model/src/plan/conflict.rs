//! Resources another writer keeps changing back (DESIGN §9): reported, not fought.

use schemars::JsonSchema;
use serde::Serialize;

/// What kind of resource is in conflict (the `kind` label of
/// `guardduty_controller_conflicts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A cluster's `GuardDutyManaged` tag.
    Tag,
    /// A detector feature or additional configuration.
    Detector,
    /// The organization's auto-enable of a feature.
    Organization,
}

impl ConflictKind {
    /// The stable snake_case identifier (metric label, plan JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::Tag => "tag",
            ConflictKind::Detector => "detector",
            ConflictKind::Organization => "organization",
        }
    }
}

impl Conflict {
    /// The object of the plan JSON's `conflicts` list.
    pub fn json(&self) -> ConflictJson {
        ConflictJson {
            region: self.target.region.clone(),
            account: self.target.account.clone(),
            kind: self.kind,
            resource: self.resource.clone(),
            cluster: self.cluster.clone(),
            desired: self.desired.clone(),
            observed: self.observed.clone(),
            reverts: self.reverts,
            since: super::json::rfc3339(self.since_ms),
            principal: self.principal.clone(),
        }
    }
}

/// A resource in conflict, as the plan JSON and `/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictJson {
    /// Region of the target.
    pub region: String,
    /// Account of the target, when known.
    pub account: Option<String>,
    /// `tag` (a cluster's `GuardDutyManaged`), `detector` (a detector feature) or
    /// `organization` (the organization's auto-enable of a feature).
    pub kind: ConflictKind,
    /// A cluster ARN, or `<detector id>/<feature>`.
    pub resource: String,
    /// The cluster name, for a tag conflict; null otherwise.
    pub cluster: Option<String>,
    /// The value the desired state asks for (`absent`: no tag).
    pub desired: String,
    /// The value found, the other writer's (`absent`: no tag).
    pub observed: String,
    /// How many times the controller's value was found changed back within
    /// `reconcile.conflicts.window`.
    pub reverts: u32,
    /// RFC 3339 UTC: when the conflict began.
    pub since: String,
    /// Who changed it back, when known; null otherwise.
    pub principal: Option<String>,
}

/// One resource the controller stopped rewriting because another writer changed it back
/// again and again. Its action is left out of the plan while the conflict stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The target the resource is in (the plan JSON shows its region and account).
    #[serde(skip)]
    #[schemars(skip)]
    pub target: super::TargetRef,
    /// What kind of resource.
    pub kind: ConflictKind,
    /// The resource: a cluster ARN, or `<detector id>/<feature>` for a detector setting
    /// or the organization's auto-enable.
    pub resource: String,
    /// The cluster name, for a tag conflict.
    pub cluster: Option<String>,
    /// The value the desired state asks for (`absent` for a tag to remove).
    pub desired: String,
    /// The value found (the other writer's; `absent` when the tag is missing).
    pub observed: String,
    /// How many times the value the controller wrote was found changed back within the
    /// window.
    pub reverts: u32,
    /// When the conflict began (Unix ms).
    pub since_ms: i64,
    /// Who changed it back, when known (CloudTrail), else null.
    pub principal: Option<String>,
}
