//! The desired state: the YAML document a GitOps repository edits (DESIGN §3).

mod bounds;
mod duplicates;
mod duration;
mod error;
mod human;
mod load;
mod located;
mod nulls;
mod org_checks;
mod organization;
mod patterns;
mod plain;
mod read_only;
mod render;
mod shape;
mod source;
mod targets;
mod typed;
mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use bounds::{MAX_DEPTH, MAX_KEYS};
pub use duration::DurationSpec;
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, Locations};
pub use load::{json_schema, parse, parse_bytes, MAX_FILE_BYTES, MAX_RULES, SCHEMA_ID};
pub use organization::{AdministratorSpec, AutoEnable, MemberSelection, OrgRole, OrganizationSpec};
pub use read_only::check_role_name;
pub use targets::{AccountRef, AccountsTarget, ExpandError, TargetEntry, MAX_TARGETS};
pub use validate::{parse_hhmm, MAX_CONFLICT_REVERTS};

/// The desired state of guardduty-ecs-controller: which AWS accounts and regions it
/// reconciles, which ECS clusters get GuardDuty Runtime Monitoring (the `GuardDutyManaged`
/// tag), and how services whose tasks lack the agent are redeployed. `guardduty-ecs-controller
/// validate` checks everything this schema says and more (duration limits, duplicates,
/// globs, time zones in the bundled database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "guardduty-ecs-controller desired state")]
#[schemars(extend("oneOf" = [{"required": ["targets"]}, {"required": ["organization"]}]))]
// The derived serde code becomes `DesiredState::deserialize`/`serialize` (inherent); the
// trait impls below wrap it so that any reading (the file, its JSON) derives the targets of
// an `organization` the same way.
#[serde(remote = "Self")]
pub struct DesiredState {
    /// Format version; must be 1.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// What to reconcile: `{region, roleArn?, externalId?}` for one (account, region), or
    /// `{regions, accounts, roleName?, externalId?}` for every listed account in every
    /// listed region; at least one. Either `targets` or `organization`, not both.
    // The file holds `TargetEntry`s; reading it expands them in file order, so this holds
    // one `Target` per (account, region) and the engine never sees the entry form. With
    // `organization`, `parse` fills it with the administrator's targets.
    #[serde(
        default,
        deserialize_with = "targets::deserialize",
        skip_serializing_if = "targets::derived"
    )]
    #[schemars(with = "Vec<TargetEntry>", transform = without_default)]
    #[schemars(length(min = 1, max = targets::MAX_TARGETS))]
    pub targets: Vec<Target>,
    /// Runtime Monitoring managed from the GuardDuty delegated administrator of an AWS
    /// Organization; instead of `targets`. The administrator's targets (one per region)
    /// are then `targets`; the members' are found at every pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationSpec>,
    /// GuardDuty detector features this controller owns (with `organization`: what every
    /// managed account, the administrator included, must have).
    #[serde(default)]
    pub detector: DetectorSpec,
    /// Cluster rules: an exact `name` beats any `match`; among `match` rules the first wins.
    #[serde(default)]
    #[schemars(length(max = load::MAX_RULES))]
    pub clusters: Vec<ClusterRule>,
    /// What to do with clusters that no rule names.
    #[serde(default)]
    pub unmatched_clusters: UnmatchedPolicy,
    /// `true`: observe and report only, never write.
    #[serde(default)]
    pub suspend: bool,
    /// Forced redeployments of services whose tasks lack the agent.
    #[serde(default)]
    pub redeploy: RedeploySpec,
    /// Limits that refuse a plan whole.
    #[serde(default)]
    pub safety: SafetySpec,
    /// Timer of the daemon.
    #[serde(default)]
    pub reconcile: ReconcileSpec,
}

/// `targets` has no default to show: it is required unless `organization` is given (the
/// document's `oneOf`).
fn without_default(schema: &mut schemars::Schema) {
    schema.remove("default");
}

impl<'de> Deserialize<'de> for DesiredState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut desired = DesiredState::deserialize(d)?;
        // With `organization`, the targets are the administrator's, one per region; its
        // members' are found at every pass.
        if let Some(organization) = &desired.organization {
            desired.targets = organization.administrator_targets();
        }
        Ok(desired)
    }
}

impl Serialize for DesiredState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DesiredState::serialize(self, s)
    }
}

/// One (account, region) the controller reconciles.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("dependentRequired" = {"externalId": ["roleArn"]}))]
pub struct Target {
    /// AWS region, e.g. `us-east-1`.
    #[schemars(pattern(patterns::REGION))]
    pub region: String,
    /// Role to assume for this target; without it the ambient credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::ROLE_ARN))]
    pub role_arn: Option<String>,
    /// External id for the AssumeRole call; only with `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Its place in an organization (`organization` section); never written in the
    /// file: the administrator targets come from `organization.administrator`, the member
    /// targets from the administrator's member list at each pass.
    #[serde(skip)]
    #[schemars(skip)]
    pub org: Option<OrgRole>,
}

impl Target {
    /// How the target's GuardDuty features are managed: `self` (its own detector),
    /// `organization_administrator`, `organization_member` (through the administrator).
    /// The `management` label of `guardduty_controller_target_info`.
    pub fn management(&self) -> &'static str {
        match &self.org {
            None => "self",
            Some(OrgRole::Administrator) => "organization_administrator",
            Some(OrgRole::Member { .. }) => "organization_member",
        }
    }

    /// For people: ` (organization administrator)`, ` (organization member, features
    /// through <administrator label>)`, or nothing for a target on its own.
    pub fn management_note(&self) -> String {
        match &self.org {
            None => String::new(),
            Some(OrgRole::Administrator) => " (organization administrator)".to_owned(),
            Some(OrgRole::Member { administrator, .. }) => format!(
                " (organization member, features through {})",
                administrator.label()
            ),
        }
    }

    /// A short, bounded label for logs and metrics: the region, plus the role's account.
    pub fn label(&self) -> String {
        match self.role_arn.as_deref().and_then(account_of_arn) {
            Some(account) => format!("{account}/{}", self.region),
            None => self.region.clone(),
        }
    }
}

/// The account field of an ARN (`arn:partition:service:region:account:resource`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Detector features owned by the controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectorSpec {
    /// Feature `RUNTIME_MONITORING`.
    #[serde(default)]
    pub runtime_monitoring: FeatureSetting,
    /// Additional configuration `ECS_FARGATE_AGENT_MANAGEMENT` (automated agent for Fargate).
    #[serde(default)]
    pub ecs_fargate_agent_management: FeatureSetting,
}

/// Desired status of a detector feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSetting {
    /// Status `ENABLED`.
    Enabled,
    /// Status `DISABLED`.
    Disabled,
    /// Left as it is.
    #[default]
    Unmanaged,
}

/// One cluster rule: either an exact `name` (or ARN) or a `match` selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["name"]}, {"required": ["match"]}]))]
pub struct ClusterRule {
    /// Exact cluster name or full cluster ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::CLUSTER_NAME))]
    pub name: Option<String>,
    /// Selector; used when `name` is not given.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub selector: Option<MatchSpec>,
    /// What the `GuardDutyManaged` tag of the selected clusters must be.
    pub guard_duty_managed: ManagedTag,
}

/// A selector over clusters; every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchSpec {
    /// Glob on the cluster name (`*`, `?`, `[...]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_pattern: Option<String>,
    /// Every listed tag must be on the cluster with this exact value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"minLength": 1}, "maxProperties" = bounds::MAX_KEYS))]
    pub tags: BTreeMap<String, String>,
    /// Only clusters in these regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(patterns::REGION)))]
    pub regions: Vec<String>,
}

/// The value a rule asks for on the `GuardDutyManaged` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagedTag {
    /// `GuardDutyManaged=true`: include the cluster.
    True,
    /// `GuardDutyManaged=false`: exclude the cluster.
    False,
    /// No `GuardDutyManaged` tag at all.
    Absent,
}

impl ManagedTag {
    /// The tag value to write, or `None` when the tag must not be there.
    pub fn tag_value(self) -> Option<&'static str> {
        match self {
            ManagedTag::True => Some("true"),
            ManagedTag::False => Some("false"),
            ManagedTag::Absent => None,
        }
    }

    /// The word used in the YAML and in plan output.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedTag::True => "true",
            ManagedTag::False => "false",
            ManagedTag::Absent => "absent",
        }
    }
}

impl Serialize for ManagedTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ManagedTag::True => s.serialize_bool(true),
            ManagedTag::False => s.serialize_bool(false),
            ManagedTag::Absent => s.serialize_str("absent"),
        }
    }
}

impl<'de> Deserialize<'de> for ManagedTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ManagedTag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or absent")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ManagedTag, E> {
                Ok(if v {
                    ManagedTag::True
                } else {
                    ManagedTag::False
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ManagedTag, E> {
                match v {
                    "true" => Ok(ManagedTag::True),
                    "false" => Ok(ManagedTag::False),
                    "absent" => Ok(ManagedTag::Absent),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ManagedTag {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ManagedTag".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "true | false | absent (the tag is case-sensitive: `true`/`false`)",
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false", "absent"]}]
        })
    }
}

/// Policy for clusters that no rule names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnmatchedPolicy {
    /// Leave them untouched.
    #[default]
    Ignore,
    /// Remove the `GuardDutyManaged` tag from them.
    Absent,
}

/// Forced redeployments (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RedeploySpec {
    /// Redeploy services whose running tasks lack the agent.
    pub enabled: bool,
    /// Wait after a cluster's coverage turns on before redeploying it; at most 720h (30 days).
    pub settle_time: DurationSpec,
    /// Services rolling at once, whole fleet; at least 1.
    #[schemars(range(min = 1))]
    pub max_concurrent: u32,
    /// Redeploys started per hour, whole fleet; at least 1.
    #[schemars(range(min = 1))]
    pub max_per_hour: u32,
    /// Start the next service only after the previous rollout COMPLETED.
    pub wait_for_steady_state: bool,
    /// A FAILED rollout halts redeploys until the desired state changes.
    pub stop_on_failure: bool,
    /// A service deployed with coverage on whose tasks still lack the agent is not
    /// redeployed again sooner (when they are its PRIMARY deployment's own tasks, it is held
    /// `agent_failed` until that changes); at most 720h (30 days).
    pub retry_after: DurationSpec,
    /// Globs of service names never redeployed.
    pub exclude_services: Vec<String>,
    /// Allow windows, each in UTC or its own `timeZone`; empty means always allowed.
    pub windows: Vec<Window>,
    /// What to do with running tasks that still carry the agent once a cluster's
    /// coverage turns off (tag `false` or removed, automation or Runtime Monitoring
    /// disabled): `report` them (status, JSON `agentTasks`), or `redeploy` their services
    /// so new tasks run without it, under the same guards as any redeploy.
    pub on_coverage_loss: CoverageLoss,
}

/// What to do with tasks that keep the agent after their cluster's coverage turns off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CoverageLoss {
    /// Report them; they lose the agent when they are replaced anyway.
    #[default]
    Report,
    /// Redeploy the services that own them (no settle time, no preflight).
    Redeploy,
}

impl Default for RedeploySpec {
    fn default() -> Self {
        RedeploySpec {
            enabled: true,
            settle_time: DurationSpec::from_secs(300),
            max_concurrent: 2,
            max_per_hour: 20,
            wait_for_steady_state: true,
            stop_on_failure: true,
            retry_after: DurationSpec::from_secs(3600),
            exclude_services: Vec::new(),
            windows: Vec::new(),
            on_coverage_loss: CoverageLoss::Report,
        }
    }
}

/// An allow window for redeploys, on the wall clock of its time zone (UTC by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    /// Days of the week the window opens on, in its time zone; at least one.
    #[schemars(length(min = 1))]
    pub days: Vec<Weekday>,
    /// Start, `HH:MM` in the window's time zone.
    #[schemars(pattern(patterns::HHMM))]
    pub start: String,
    /// End, `HH:MM` in the window's time zone (exclusive; `24:00` is the end of the day);
    /// an end before the start runs past midnight.
    #[schemars(pattern(patterns::HHMM))]
    pub end: String,
    /// IANA time zone the days and times are read in, like `Europe/Berlin`; UTC when
    /// not given. Across a daylight saving change the window keeps its wall-clock times:
    /// a window `01:00`-`05:00` is three hours long on the night clocks go forward, five
    /// on the night they go back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::TIME_ZONE))]
    pub time_zone: Option<String>,
}

impl Window {
    /// The time zone the window is read in; `None` when `timeZone` names none.
    pub fn zone(&self) -> Option<jiff::tz::TimeZone> {
        time_zone(self.time_zone.as_deref())
    }
}

/// A time zone by IANA name (any letter case) from jiff's bundled database, which the
/// binary carries, so the host's /usr/share/zoneinfo plays no part; UTC for `None`.
pub fn time_zone(name: Option<&str>) -> Option<jiff::tz::TimeZone> {
    match name {
        None => Some(jiff::tz::TimeZone::UTC),
        Some(name) => jiff::tz::TimeZoneDatabase::bundled().get(name).ok(),
    }
}

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// The same day as jiff names it.
    pub fn civil(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as W;
        match self {
            Weekday::Mon => W::Monday,
            Weekday::Tue => W::Tuesday,
            Weekday::Wed => W::Wednesday,
            Weekday::Thu => W::Thursday,
            Weekday::Fri => W::Friday,
            Weekday::Sat => W::Saturday,
            Weekday::Sun => W::Sunday,
        }
    }
}

/// Limits that refuse a pass whole. The file may lower them, never raise them: each is at
/// most its ceiling, set where the controller runs (`--max-*-ceiling`), and is the ceiling
/// when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SafetySpec {
    /// A pass with more tag changes than this, over all targets, is refused whole. Unset:
    /// the ceiling (`--max-cluster-changes-ceiling`, 50 by default); above it: clamped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cluster_changes_per_cycle: Option<u32>,
    /// Refuse a pass that turns coverage off for more than this share of covered clusters,
    /// 0 to 1. Unset: the ceiling (`--max-coverage-loss-ceiling`, 0.2 by default); above
    /// it: clamped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_coverage_loss_fraction: Option<f64>,
}

/// The daemon's timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReconcileSpec {
    /// Time between passes: at least 10s, at most 24h.
    pub interval: DurationSpec,
    /// Random share of the interval added or removed, 0 to 0.5.
    #[schemars(range(min = 0.0, max = 0.5))]
    pub jitter: f64,
    /// Tug-of-war detection: a value the controller wrote that another writer changes
    /// back `reverts` times within `window` is left alone (a `conflict`) until its rule
    /// changes or the conflict is reset.
    pub conflicts: ConflictSpec,
}

impl Default for ReconcileSpec {
    fn default() -> Self {
        ReconcileSpec {
            interval: DurationSpec::from_secs(300),
            jitter: 0.1,
            conflicts: ConflictSpec::default(),
        }
    }
}

/// When a resource another writer keeps changing back becomes a `conflict` (DESIGN §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConflictSpec {
    /// How many times a value the controller wrote must be found changed back, within
    /// `window`, before the controller stops rewriting it; 0 turns detection off; at most
    /// 100.
    #[schemars(range(max = validate::MAX_CONFLICT_REVERTS))]
    pub reverts: u32,
    /// How far back reverts count: at least 1m, at most 7d.
    pub window: DurationSpec,
}

impl Default for ConflictSpec {
    fn default() -> Self {
        ConflictSpec {
            reverts: 3,
            window: DurationSpec::from_secs(3600),
        }
    }
}
