//! Audit records (DESIGN §9): every write and incident of a round as one structured
//! record, logged with a fixed `event` field and, with `--events-bus`, put on EventBridge
//! ([`crate::bus`]). The detail JSON is [`AuditRecord`]; its schema is
//! `schemas/event.schema.json`.

use std::collections::{BTreeSet, HashMap, HashSet};

use gec_engine::rollout::Halt;
use gec_engine::{Outcome, Report, Settled, TargetPass};
use gec_model::desired::{account_of_arn, Target};
use gec_model::plan::{Deployer, HoldReason};
use gec_model::Action;
use schemars::JsonSchema;
use serde::Serialize;
use tracing::{info, warn};

use crate::bus::EventSender;

/// The longest `reason` of a record, in bytes (longer ones are cut on a character
/// boundary, ending with `…`).
pub const MAX_REASON_BYTES: usize = 2048;
/// The longest `resource`, `target`, `from`, `to` and `kind`, in bytes. ARNs are at most
/// 2048 characters; everything else is much shorter.
pub const MAX_FIELD_BYTES: usize = 2048;

/// What a record is about: the `event` field of the log line and of the detail. Each has
/// its own EventBridge `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A write to AWS, accepted or failed (`result`).
    Write,
    /// A safety limit refused a target's plan (once while the refusal stands).
    PlanRefused,
    /// A rollout this process started settled FAILED (or CodeDeploy Failed / Stopped).
    RolloutFailed,
    /// `stopOnFailure` halted every redeploy (once, when the halt starts).
    RolloutsHalted,
    /// Another writer keeps changing a resource back (once, when the conflict appears).
    Conflict,
    /// A service cannot get the agent (once per service and code while it stands).
    PreflightFinding,
}

impl EventKind {
    /// The snake_case name (the `event` field).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Write => "write",
            EventKind::PlanRefused => "plan_refused",
            EventKind::RolloutFailed => "rollout_failed",
            EventKind::RolloutsHalted => "rollouts_halted",
            EventKind::Conflict => "conflict",
            EventKind::PreflightFinding => "preflight_finding",
        }
    }

    /// The EventBridge `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            EventKind::Write => "GuardDuty ECS Controller Write",
            EventKind::PlanRefused => "GuardDuty ECS Controller Plan Refused",
            EventKind::RolloutFailed => "GuardDuty ECS Controller Rollout Failed",
            EventKind::RolloutsHalted => "GuardDuty ECS Controller Rollouts Halted",
            EventKind::Conflict => "GuardDuty ECS Controller Conflict",
            EventKind::PreflightFinding => "GuardDuty ECS Controller Preflight Finding",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 6] = [
        EventKind::Write,
        EventKind::PlanRefused,
        EventKind::RolloutFailed,
        EventKind::RolloutsHalted,
        EventKind::Conflict,
        EventKind::PreflightFinding,
    ];
}

/// Whether a write was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    /// AWS accepted the write.
    Success,
    /// AWS refused or failed it; `reason` says why.
    Error,
}

/// One audit record: the JSON log line's fields and the EventBridge event's `detail`.
/// Every key is always present (`null` when it does not apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "guardduty-ecs-controller audit event detail")]
pub struct AuditRecord {
    /// What the record is about.
    pub event: EventKind,
    /// When the controller made the record (RFC 3339, UTC).
    pub time: String,
    /// The target's label (`<account>/<region>` or `<region>`); null for a fleet-wide
    /// halt whose target is not known.
    pub target: Option<String>,
    /// The account, when known.
    pub account: Option<String>,
    /// The region; null with `target`.
    pub region: Option<String>,
    /// What it concerns: a cluster ARN (tags), a service ARN (redeploys),
    /// `<detector id>/<feature>` (detector and organization settings), `<cluster>/<service>`
    /// (rollouts, preflight findings), the target label (a refused plan).
    pub resource: String,
    /// For a write: `tag_cluster`, `untag_cluster`, `update_detector`,
    /// `update_organization_configuration`, `redeploy_service` (ECS) or
    /// `codedeploy_deployment`. For a refused plan: the limit (`maxClusterChangesPerCycle`,
    /// ...). For a failed rollout: `redeploy_service` or `codedeploy_deployment`. For a halt:
    /// `stop_on_failure`. For a conflict: `tag`, `detector` or `organization`. For a
    /// preflight finding: its code (`platform_version`, `agent_failed`, ...).
    pub kind: String,
    /// The value before: a tag value, a feature status, an auto-enable; for a refused plan
    /// what the plan would do; for a conflict the other writer's value. Null when none.
    pub from: Option<String>,
    /// The value after: the tag value (null: removed), the status, the auto-enable, the
    /// redeploy's purpose (`add_agent`, `remove_agent`); for a refused plan the limit; for
    /// a conflict the desired value; for a failed rollout AWS's status.
    pub to: Option<String>,
    /// For a write, whether AWS accepted it; null for incidents.
    pub result: Option<WriteResult>,
    /// Why: the error of a failed write, the reason of a redeploy, the sentence of an
    /// incident. At most 2048 bytes.
    pub reason: Option<String>,
    /// The pass that made it (`/status` `passId`, `span.pass_id` in the log).
    pub pass_id: u64,
    /// SHA-256 of the desired state in force (hex), when known.
    pub desired_state_sha256: Option<String>,
    /// The replica that made it (`--replica-id`), when set.
    pub replica_id: Option<String>,
}

/// The JSON Schema of the detail of every event (`schema event`,
/// `schemas/event.schema.json`).
pub fn event_schema() -> serde_json::Value {
    gec_model::plan::output_schema::<AuditRecord>()
}

impl AuditRecord {
    /// The detail JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// ARNs for EventBridge's `resources`: the resource when it is one.
    pub fn arns(&self) -> Vec<String> {
        if self.resource.starts_with("arn:") {
            vec![self.resource.clone()]
        } else {
            Vec::new()
        }
    }

    /// One JSON log line with the fixed `event` field and the record's fields: writes that
    /// succeeded at `info`, failures and incidents at `warn`.
    pub fn log(&self) {
        let result = self.result.map(|r| match r {
            WriteResult::Success => "success",
            WriteResult::Error => "error",
        });
        macro_rules! line {
            ($level:ident) => {
                $level!(
                    event = self.event.as_str(),
                    target = self.target.as_deref(),
                    account = self.account.as_deref(),
                    region = self.region.as_deref(),
                    resource = %self.resource,
                    kind = %self.kind,
                    from = self.from.as_deref(),
                    to = self.to.as_deref(),
                    result,
                    reason = self.reason.as_deref(),
                    pass_id = self.pass_id,
                    desired_state_sha256 = self.desired_state_sha256.as_deref(),
                    replica_id = self.replica_id.as_deref(),
                    "audit"
                )
            };
        }
        if self.event == EventKind::Write && self.result == Some(WriteResult::Success) {
            line!(info);
        } else {
            line!(warn);
        }
    }
}

/// The `desiredStateSha256` of a desired state read as `bytes`: SHA-256, lowercase hex
/// (what `sha256sum` prints, and `/status` `sha256`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Cuts `text` to at most `max` bytes on a character boundary, ending with `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What the auditor remembers of one target, so an incident that stands is reported once.
#[derive(Debug, Default)]
struct Seen {
    refused: Option<String>,
    conflicts: BTreeSet<String>,
    findings: BTreeSet<(String, String, &'static str)>,
}

/// Turns rounds into records, remembering the incidents that stand so each is reported
/// once; logs them and hands them to the event bus, if any.
#[derive(Debug, Default)]
pub struct Auditor {
    replica_id: Option<String>,
    sender: Option<EventSender>,
    seen: HashMap<String, Seen>,
    halted: bool,
    /// With a lease, only the replica that may write reports incidents.
    fence: gec_engine::Fence,
}

impl Auditor {
    /// An auditor that logs, and sends to `sender` when there is one.
    pub fn new(replica_id: Option<String>, sender: Option<EventSender>) -> Self {
        Auditor {
            replica_id,
            sender,
            ..Auditor::default()
        }
    }

    /// Logs the records of a finished round and queues them for the bus. Never waits.
    pub fn round(&mut self, report: &Report, sha256: Option<&str>) {
        let now = jiff::Timestamp::now().to_string();
        for record in self.records(report, sha256, &now) {
            record.log();
            if let Some(sender) = &self.sender {
                sender.send(&record);
            }
        }
    }

    /// With a lease (`run --lease-table`): incidents (refused plans, conflicts, preflight
    /// findings, halts) are reported only by the replica the fence lets write at the end
    /// of a round. Followers plan too and would report the same incidents from every
    /// replica. A replica forgets what stands while it may not write, so when it becomes
    /// the leader it reports the incidents that stand then, once. Writes and failed
    /// rollouts (of rollouts this process started) are recorded whatever the fence says.
    #[must_use]
    pub fn with_fence(mut self, fence: gec_engine::Fence) -> Self {
        self.fence = fence;
        self
    }

    /// The bus sender, to flush at shutdown.
    pub fn take_sender(&mut self) -> Option<EventSender> {
        self.sender.take()
    }

    /// The records of a round made at `time`: every write attempted (success or failure;
    /// skipped actions are not writes), failed rollouts, and incidents not reported
    /// before (a refused plan, a conflict, a preflight finding: once while they stand; a
    /// halt: once when it starts).
    pub fn records(
        &mut self,
        report: &Report,
        sha256: Option<&str>,
        time: &str,
    ) -> Vec<AuditRecord> {
        let base = Base {
            time,
            pass_id: report.pass_id,
            sha256,
            replica_id: self.replica_id.as_deref(),
        };
        let mut out = Vec::new();
        let may_write = self.fence.permits();
        let labels: HashSet<String> = report.targets.iter().map(Target::label).collect();
        self.seen.retain(|label, _| labels.contains(label));
        for pass in &report.passes {
            let label = pass.target.label();
            for r in &pass.results {
                let (result, error) = match &r.outcome {
                    Outcome::Success => (WriteResult::Success, None),
                    Outcome::Failed(e) => (WriteResult::Error, Some(e.to_string())),
                    Outcome::Skipped(_) => continue,
                };
                out.push(base.write(&pass.target, &r.action, result, error));
            }
            for e in pass.events.iter().filter(|e| e.state == Settled::Failed) {
                let kind = if e.status == "FAILED" {
                    "redeploy_service"
                } else {
                    "codedeploy_deployment"
                };
                out.push(base.record(
                    EventKind::RolloutFailed,
                    Some(&pass.target),
                    account(pass),
                    format!("{}/{}", e.cluster, e.service),
                    kind,
                    None,
                    Some(e.status.clone()),
                    Some(format!(
                        "the rollout of {}/{} ended {}",
                        e.cluster, e.service, e.status
                    )),
                ));
            }
            if !may_write {
                // A follower: the leader reports incidents; this one reports what stands
                // when it becomes the leader.
                self.seen.remove(&label);
                continue;
            }
            let Some(plan) = &pass.plan else {
                continue; // not observed: what stood before is not known to have ended
            };
            let seen = self.seen.entry(label.clone()).or_default();
            let refused = plan.refused.as_ref().map(|r| r.limit.to_owned());
            if let Some(r) = &plan.refused {
                if seen.refused.as_deref() != Some(r.limit) {
                    out.push(base.record(
                        EventKind::PlanRefused,
                        Some(&pass.target),
                        account(pass),
                        label.clone(),
                        r.limit,
                        Some(r.value.to_string()),
                        Some(r.max.to_string()),
                        Some(r.reason.clone()),
                    ));
                }
            }
            seen.refused = refused;
            let conflicts: BTreeSet<String> =
                plan.conflicts.iter().map(|c| c.resource.clone()).collect();
            for c in &plan.conflicts {
                if !seen.conflicts.contains(&c.resource) {
                    let by = c
                        .principal
                        .as_deref()
                        .map_or(String::new(), |p| format!(" by {p}"));
                    out.push(base.record(
                        EventKind::Conflict,
                        Some(&pass.target),
                        account(pass),
                        c.resource.clone(),
                        c.kind.as_str(),
                        Some(c.observed.clone()),
                        Some(c.desired.clone()),
                        Some(format!(
                            "changed back {} times{by}; the controller stopped rewriting it",
                            c.reverts
                        )),
                    ));
                }
            }
            seen.conflicts = conflicts;
            let mut findings = BTreeSet::new();
            for h in plan.held.iter().filter(|h| h.reason.is_finding()) {
                let key = (h.cluster.clone(), h.service.clone(), h.reason.code());
                if !seen.findings.contains(&key) {
                    out.push(base.record(
                        EventKind::PreflightFinding,
                        Some(&pass.target),
                        account(pass),
                        format!("{}/{}", h.cluster, h.service),
                        h.reason.code(),
                        None,
                        None,
                        Some(finding_reason(h.reason, h.detail.as_deref())),
                    ));
                }
                findings.insert(key);
            }
            seen.findings = findings;
        }
        match &report.halted {
            Some(_) if !may_write => self.halted = false,
            Some(halt) if !self.halted => {
                let target = halt_target(report, halt);
                out.push(base.record(
                    EventKind::RolloutsHalted,
                    target.map(|p| &p.target),
                    target.and_then(account),
                    format!("{}/{}", halt.cluster, halt.service),
                    "stop_on_failure",
                    None,
                    None,
                    Some(format!(
                        "deployment {} of {}/{} FAILED: redeploys are halted until the desired state changes",
                        halt.deployment_id, halt.cluster, halt.service
                    )),
                ));
                self.halted = true;
            }
            Some(_) => {}
            None => self.halted = false,
        }
        out
    }
}

/// The pass whose failed rollout is the halt's, if it is in this round.
fn halt_target<'a>(report: &'a Report, halt: &Halt) -> Option<&'a TargetPass> {
    report.passes.iter().find(|p| {
        p.events
            .iter()
            .any(|e| e.cluster == halt.cluster && e.service == halt.service)
    })
}

fn finding_reason(reason: HoldReason, detail: Option<&str>) -> String {
    match detail {
        Some(d) => format!("{reason} ({d})"),
        None => reason.to_string(),
    }
}

/// The target's account: the role's, else what the plan's clusters say.
fn account(pass: &TargetPass) -> Option<String> {
    pass.target
        .role_arn
        .as_deref()
        .and_then(account_of_arn)
        .map(str::to_owned)
        .or_else(|| {
            pass.plan
                .as_ref()
                .and_then(|p| p.clusters.first())
                .and_then(|c| c.target.account.clone())
        })
}

/// What every record of a round shares.
struct Base<'a> {
    time: &'a str,
    pass_id: u64,
    sha256: Option<&'a str>,
    replica_id: Option<&'a str>,
}

impl Base<'_> {
    #[allow(clippy::too_many_arguments)] // one argument per record field
    fn record(
        &self,
        event: EventKind,
        target: Option<&Target>,
        account: Option<String>,
        resource: String,
        kind: &str,
        from: Option<String>,
        to: Option<String>,
        reason: Option<String>,
    ) -> AuditRecord {
        let field = |s: &str| bounded(s, MAX_FIELD_BYTES);
        AuditRecord {
            event,
            time: self.time.to_owned(),
            target: target.map(|t| field(&t.label())),
            account: account.map(|a| field(&a)),
            region: target.map(|t| field(&t.region)),
            resource: field(&resource),
            kind: field(kind),
            from: from.as_deref().map(field),
            to: to.as_deref().map(field),
            result: None,
            reason: reason.map(|r| bounded(&r, MAX_REASON_BYTES)),
            pass_id: self.pass_id,
            desired_state_sha256: self.sha256.map(field),
            replica_id: self.replica_id.map(field),
        }
    }

    fn write(
        &self,
        target: &Target,
        action: &Action,
        result: WriteResult,
        error: Option<String>,
    ) -> AuditRecord {
        let (resource, kind, from, to, why) = match action {
            Action::TagCluster {
                cluster_arn,
                from,
                to,
                ..
            } => (
                cluster_arn.clone(),
                action.kind(),
                from.clone(),
                Some((*to).to_owned()),
                None,
            ),
            Action::UntagCluster {
                cluster_arn, from, ..
            } => (
                cluster_arn.clone(),
                action.kind(),
                Some(from.clone()),
                None,
                None,
            ),
            Action::UpdateDetector {
                detector_id,
                feature,
                from,
                to,
                ..
            } => (
                format!("{detector_id}/{feature}"),
                action.kind(),
                from.as_ref().map(ToString::to_string),
                Some(to.to_string()),
                None,
            ),
            Action::UpdateOrganizationConfiguration {
                detector_id,
                feature,
                from,
                to,
                ..
            } => (
                format!("{detector_id}/{feature}"),
                action.kind(),
                from.clone(),
                Some(to.as_aws().to_owned()),
                None,
            ),
            Action::RedeployService {
                service_arn,
                purpose,
                via,
                reason,
                ..
            } => (
                service_arn.clone(),
                match via {
                    Deployer::Ecs { .. } => "redeploy_service",
                    Deployer::CodeDeploy(_) => "codedeploy_deployment",
                },
                None,
                Some(purpose.as_str().to_owned()),
                Some(reason.clone()),
            ),
        };
        let mut record = self.record(
            EventKind::Write,
            Some(target),
            action.target().account.clone(),
            resource,
            kind,
            from,
            to,
            error.or(why),
        );
        record.result = Some(result);
        record
    }
}

#[cfg(test)]
mod tests;
