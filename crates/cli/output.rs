//! Rendering plans and apply results for people (text) and scripts (JSON).

use std::fmt::Write as _;
use std::io::Write as _;

use gec_daemon::status::HaltJson;
use gec_engine::rollout::Halt;
use gec_engine::{ApplyRun, Outcome, TargetPass, Wait};
use gec_model::plan::{
    ActionJson, ChangeJson, ClusterJson, Deployer, Held, HeldJson, Phase, PlanJson, RedeployPurpose,
};
use gec_model::Action;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// The plan JSON of DESIGN §4, plus per-target errors (`plan --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PlanOutput {
    /// The plan.
    #[serde(flatten)]
    pub plan: PlanJson,
    /// Targets that could not be observed, planned or applied.
    pub errors: Vec<ErrorJson>,
}

/// The AWS failure that stopped a target's pass.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ErrorJson {
    /// Region of the target.
    pub region: String,
    /// The target's label: region, plus the role's account.
    pub target: String,
    /// Classification (`throttled`, `access_denied`, ...).
    pub kind: String,
    /// The API operation, e.g. `TagResources`.
    pub operation: String,
    /// What went wrong.
    pub message: String,
}

/// The plan JSON of DESIGN §4, plus per-target errors.
pub fn json(passes: &[TargetPass]) -> PlanOutput {
    let plan = gec_model::Plan {
        targets: passes.iter().filter_map(|p| p.plan.clone()).collect(),
    };
    PlanOutput {
        plan: plan.json(),
        errors: errors(passes),
    }
}

fn errors(passes: &[TargetPass]) -> Vec<ErrorJson> {
    passes
        .iter()
        .filter_map(|p| {
            p.error.as_ref().map(|e| ErrorJson {
                region: p.target.region.clone(),
                target: p.target.label(),
                kind: e.kind.as_str().to_owned(),
                operation: e.operation.to_string(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// What is left after an apply run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Remaining {
    /// Changes that should have happened and did not: pending tag and detector changes,
    /// redeploys that failed or are halted, rollouts still running at the deadline.
    pub unsettled: usize,
    /// Redeploys deferred by policy: outside the windows, over maxPerHour, or queued
    /// behind maxConcurrent/settleTime without waitForSteadyState.
    pub deferred: usize,
}

/// Counts what an apply run leaves to do.
pub fn remaining(run: &ApplyRun) -> Remaining {
    let mut r = Remaining::default();
    for pass in &run.last {
        let Some(plan) = pass.pending() else { continue };
        for action in &plan.actions {
            if action.phase() != Phase::Redeploy {
                r.unsettled += 1;
                continue;
            }
            let last = pass.results.iter().rev().find(|x| &x.action == action);
            match last.map(|x| &x.outcome) {
                Some(Outcome::Failed(_)) => r.unsettled += 1,
                Some(Outcome::Skipped(why)) if !why.gate().is_some_and(Wait::is_policy) => {
                    r.unsettled += 1
                }
                _ => r.deferred += 1,
            }
        }
    }
    r.unsettled += run.still_rolling;
    r
}

/// The apply JSON (`apply --output json`): the plan JSON of the first pass, plus what was
/// done and what is left.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOutput {
    /// The plan of the first pass and the errors of the first and last passes.
    #[serde(flatten)]
    pub plan: PlanOutput,
    /// What became of each action, in the order they were applied.
    pub results: Vec<ResultJson>,
    /// Rollouts that settled while apply waited.
    pub rollouts: Vec<RolloutJson>,
    /// Changes that should have happened and did not.
    pub remaining: usize,
    /// Redeploys deferred by policy (windows, maxPerHour, maxConcurrent, settleTime).
    pub deferred: usize,
    /// `--timeout` passed while rollouts were in progress or redeploys were waiting.
    pub timed_out: bool,
    /// The desired state has `suspend: true`: nothing was written.
    pub suspended: bool,
}

/// One applied action and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ResultJson {
    /// The action, as in the plan JSON.
    #[serde(flatten)]
    pub action: ActionJson,
    /// What became of it.
    pub result: ResultLabel,
    /// Why it failed or was skipped; absent on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of an action (the `result` label of `actions_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultLabel {
    /// AWS accepted the write.
    Success,
    /// AWS refused or failed the write.
    Error,
    /// Not attempted.
    Skipped,
}

/// A rollout that settled.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RolloutJson {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// `COMPLETED`, `FAILED`, or `GONE` (superseded or the service was deleted); a
    /// CodeDeploy deployment that Succeeded is `COMPLETED`, one that Failed or Stopped is
    /// `FAILED`.
    pub state: String,
    /// AWS's own word: the ECS `rolloutState` (`COMPLETED`, `FAILED`), the CodeDeploy
    /// deployment status (`Succeeded`, `Failed`, `Stopped`), or `GONE`.
    pub status: String,
}

/// The apply JSON: the plan JSON of the first pass, plus what was done and what is left.
pub fn apply_json(run: &ApplyRun) -> ApplyOutput {
    let mut plan = json(&run.first);
    for e in errors(&run.last) {
        if !plan.errors.contains(&e) {
            plan.errors.push(e);
        }
    }
    let results = run
        .results
        .iter()
        .map(|r| {
            let (result, error) = match &r.outcome {
                Outcome::Success => (ResultLabel::Success, None),
                Outcome::Failed(e) => (ResultLabel::Error, Some(e.to_string())),
                Outcome::Skipped(why) => (ResultLabel::Skipped, Some(why.to_string())),
            };
            ResultJson {
                action: r.action.json(),
                result,
                error,
            }
        })
        .collect();
    let rollouts = run
        .events
        .iter()
        .map(|e| RolloutJson {
            cluster: e.cluster.clone(),
            service: e.service.clone(),
            state: e.state.to_string(),
            status: e.status.clone(),
        })
        .collect();
    let left = remaining(run);
    ApplyOutput {
        plan,
        results,
        rollouts,
        remaining: left.unsettled,
        deferred: left.deferred,
        timed_out: run.timed_out,
        suspended: run.first.iter().any(|p| p.suspended),
    }
}

/// The plan as text: one line per change, grouped by target and phase, then a summary.
pub fn plan_text(passes: &[TargetPass]) -> String {
    let mut out = String::new();
    let (mut tags, mut untags, mut detector, mut clusters, mut redeploys) = (0, 0, 0, 0, 0);
    let mut removals = 0;
    for pass in passes {
        let account = pass
            .plan
            .as_ref()
            .and_then(|p| p.clusters.first())
            .and_then(|c| c.target.account.clone());
        let label = pass.target.label();
        let _ = write!(out, "Target {label}{}", pass.target.management_note());
        if let Some(a) = account.filter(|a| !label.starts_with(a.as_str())) {
            let _ = write!(out, " (account {a})");
        }
        out.push('\n');
        if let Some(e) = &pass.error {
            let _ = writeln!(out, "  ERROR: {e}");
        }
        let Some(plan) = &pass.plan else { continue };
        clusters += plan.clusters.len();
        let mut phase = None;
        for action in &plan.actions {
            if phase != Some(action.phase()) {
                phase = Some(action.phase());
                let _ = writeln!(out, "  {}:", phase_title(action.phase()));
            }
            let _ = writeln!(out, "    {}", action_line(action));
            match action {
                Action::TagCluster { .. } => tags += 1,
                Action::UntagCluster { .. } => untags += 1,
                Action::UpdateDetector { .. } | Action::UpdateOrganizationConfiguration { .. } => {
                    detector += 1
                }
                Action::RedeployService { purpose, .. } => {
                    redeploys += 1;
                    if *purpose == RedeployPurpose::RemoveAgent {
                        removals += 1;
                    }
                }
            }
        }
        if plan.actions.is_empty() {
            let _ = writeln!(out, "  no changes ({} clusters)", plan.clusters.len());
        }
        for h in &plan.held {
            let _ = writeln!(out, "  {}", held_line(h));
        }
        for c in &plan.conflicts {
            let _ = writeln!(out, "  {}", conflict_line(c));
        }
        for w in &plan.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        if let Some(r) = &plan.refused {
            let scope = match r.scope {
                gec_model::plan::Scope::Fleet => "fleet-wide, ",
                gec_model::plan::Scope::Target => "",
            };
            let _ = writeln!(out, "  REFUSED ({scope}{}): {}", r.limit, r.reason);
        }
    }
    out.push('\n');
    if tags + untags + detector + redeploys == 0 {
        let _ = writeln!(
            out,
            "No changes. AWS matches the desired state ({} targets, {clusters} clusters).",
            passes.len()
        );
    } else {
        let _ = writeln!(
            out,
            "Plan: {tags} to tag, {detector} detector changes, {untags} to untag, {redeploys} to redeploy{}.",
            if removals > 0 {
                format!(" ({removals} to remove the agent)")
            } else {
                String::new()
            }
        );
    }
    out
}

/// What apply did, one line per action, then a summary.
pub fn results_text(run: &ApplyRun) -> String {
    let mut out = String::new();
    let (mut ok, mut failed, mut skipped) = (0, 0, 0);
    for r in &run.results {
        let line = action_line(&r.action);
        match &r.outcome {
            Outcome::Success => {
                ok += 1;
                let _ = writeln!(out, "  done     {line}");
            }
            Outcome::Failed(e) => {
                failed += 1;
                let _ = writeln!(out, "  FAILED   {line}: {e}");
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                let _ = writeln!(out, "  skipped  {line}: {why}");
            }
        }
    }
    for e in &run.events {
        let _ = writeln!(out, "  rollout  {}/{}: {}", e.cluster, e.service, e.status);
    }
    for pass in &run.first {
        if pass.suspended && pass.plan.as_ref().is_some_and(|p| !p.actions.is_empty()) {
            let _ = writeln!(
                out,
                "  {}: suspend: true in the desired state; nothing written",
                pass.target.region
            );
        }
    }
    let left = remaining(run);
    let _ = writeln!(
        out,
        "\nApply: {ok} succeeded, {failed} failed, {skipped} skipped; {} changes still pending, {} redeploys deferred{}.",
        left.unsettled,
        left.deferred,
        if run.timed_out { "; timed out" } else { "" }
    );
    out
}

/// The `status` table as text: one block per target, one row per cluster, then the
/// `stopOnFailure` halt, if redeploys are halted.
pub fn status_text(passes: &[TargetPass], halted: Option<&Halt>) -> String {
    let mut out = String::new();
    for pass in passes {
        let _ = writeln!(
            out,
            "Target {}{}",
            pass.target.label(),
            pass.target.management_note()
        );
        if let Some(e) = &pass.error {
            let _ = writeln!(out, "  ERROR: {e}");
        }
        let Some(plan) = &pass.plan else { continue };
        // Elastic tabstops (tabwriter): columns as wide as their widest cell, so a long
        // cluster name never shifts the others.
        let mut table = tabwriter::TabWriter::new(Vec::new()).padding(2);
        let _ = writeln!(
            table,
            "  CLUSTER\tDESIRED\tOBSERVED\tCOVERAGE\tGUARDDUTY\tRUNNING\tSERVICES\tTASKS\tSTANDALONE"
        );
        let dash = |v: Option<u32>| v.map_or("-".to_owned(), |n| n.to_string());
        let mut issues = Vec::new();
        for row in &plan.clusters {
            let t = row.tasks;
            let _ = writeln!(
                table,
                "  {}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                row.cluster,
                row.desired.map_or("-", |d| d.as_str()),
                row.observed.as_deref().unwrap_or("-"),
                row.coverage.as_str(),
                row.guardduty.as_ref().map_or("-", |g| g.status.as_str()),
                dash(t.map(|t| t.running)),
                dash(t.map(|t| t.services_without_agent)),
                dash(t.map(|t| t.service_tasks_without_agent)),
                dash(t.map(|t| t.standalone_tasks_without_agent)),
            );
            if let Some(g) = &row.guardduty {
                if let Some(issue) = g.issue.as_deref() {
                    issues.push(format!("  issue: {}: {issue}", row.cluster));
                }
                // GuardDuty often repeats its first Fargate issue as the record's `issue`.
                for issue in g
                    .fargate_issues
                    .iter()
                    .filter(|i| g.issue.as_deref() != Some(i.as_str()))
                {
                    issues.push(format!("  fargate issue: {}: {issue}", row.cluster));
                }
                if let Some(m) = g
                    .management_type
                    .as_deref()
                    .filter(|m| *m != "AUTO_MANAGED")
                {
                    issues.push(format!("  agent management: {}: {m}", row.cluster));
                }
            }
            if let Some(n) = row.agent_tasks.filter(|n| *n > 0) {
                issues.push(format!(
                    "  agent tasks: {}: {n} running tasks still run the GuardDuty agent after coverage loss",
                    row.cluster
                ));
            }
        }
        let rows = table.into_inner().unwrap_or_default();
        out.push_str(&String::from_utf8_lossy(&rows));
        for issue in issues {
            let _ = writeln!(out, "{issue}");
        }
        for a in &plan.actions {
            if let Action::RedeployService {
                cluster,
                service,
                purpose,
                via,
                reason,
                ..
            } = a
            {
                let what = match purpose {
                    RedeployPurpose::AddAgent => "redeploy pending",
                    RedeployPurpose::RemoveAgent => "redeploy pending (remove the agent)",
                };
                let via = deployer_label(via);
                let _ = writeln!(out, "  {what}: {cluster}/{service} ({via}): {reason}");
            }
        }
        for h in &plan.held {
            let _ = writeln!(out, "  {}", held_line(h));
        }
        for c in &plan.conflicts {
            let _ = writeln!(out, "  {}", conflict_line(c));
        }
        for w in &plan.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    if let Some(h) = halted {
        let _ = writeln!(
            out,
            "\nREDEPLOYS HALTED (stopOnFailure): {}/{}: deployment {} failed; no redeploy \
             starts until the desired state changes",
            h.cluster, h.service, h.deployment_id
        );
    }
    out.push_str(
        "\nSERVICES: services with tasks without the GuardDuty agent; TASKS: their tasks; \
         STANDALONE: standalone tasks without the agent (reported, never stopped). \
         \"-\": tasks not read (no rule names the cluster, or its coverage is off). \
         held: CLUSTER/SERVICE: CODE: why (see the Redeploys page for each code).\n",
    );
    out
}

/// The `status` JSON (`status --output json`): per-target errors, the cluster table,
/// pending redeploys, held services and warnings.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StatusOutput {
    /// Every target, with the failure that stopped its pass.
    pub targets: Vec<StatusTarget>,
    /// The cluster table (plan JSON clusters).
    pub clusters: Vec<ClusterJson>,
    /// Pending redeploys (plan JSON actions of kind `redeploy_service`).
    pub redeploys: Vec<ActionJson>,
    /// Services not redeployed although tasks of them lack the agent, and why.
    pub held: Vec<HeldJson>,
    /// Things the controller cannot fix by itself.
    pub warnings: Vec<String>,
    /// The FAILED rollout (or CodeDeploy deployment that ended `Failed` or `Stopped`) that
    /// halts redeploys under `stopOnFailure`; null when none.
    pub halted: Option<HaltJson>,
    /// Resources another writer keeps changing back (plan JSON conflicts). A one-shot
    /// `status` has seen no writes, so only the daemon's `/status` finds any.
    pub conflicts: Vec<gec_model::plan::ConflictJson>,
}

/// One target of the `status` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StatusTarget {
    /// The target's label: region, plus the role's account.
    pub target: String,
    /// Region.
    pub region: String,
    /// The AWS failure that stopped its pass; null when none.
    pub error: Option<String>,
}

/// The `status` JSON: per-target errors, the cluster table, pending redeploys, held
/// services, warnings and the `stopOnFailure` halt.
pub fn status_json(passes: &[TargetPass], halted: Option<&Halt>) -> StatusOutput {
    let plan = json(passes).plan;
    StatusOutput {
        targets: passes
            .iter()
            .map(|p| StatusTarget {
                target: p.target.label(),
                region: p.target.region.clone(),
                error: p.error.as_ref().map(ToString::to_string),
            })
            .collect(),
        clusters: plan.clusters,
        redeploys: plan
            .actions
            .into_iter()
            .filter(|a| matches!(a.change, ChangeJson::RedeployService { .. }))
            .collect(),
        held: plan.held,
        warnings: plan.warnings,
        conflicts: plan.conflicts,
        halted: halted.map(|h| HaltJson {
            cluster: h.cluster.clone(),
            service: h.service.clone(),
            deployment_id: h.deployment_id.clone(),
        }),
    }
}

/// The JSON Schema of `plan --output json`.
pub fn plan_schema() -> Value {
    gec_model::plan::output_schema::<PlanOutput>()
}

/// The JSON Schema of `apply --output json`.
pub fn apply_schema() -> Value {
    gec_model::plan::output_schema::<ApplyOutput>()
}

/// The JSON Schema of `status --output json`.
pub fn status_schema() -> Value {
    gec_model::plan::output_schema::<StatusOutput>()
}

fn phase_title(phase: Phase) -> &'static str {
    match phase {
        Phase::Tags => "phase 1, set tags",
        Phase::Detector => "phase 2, detector features",
        Phase::Untag => "phase 3, remove tags",
        Phase::Redeploy => "phase 4, redeploy services (rollout engine)",
    }
}

/// One action for people.
pub fn action_line(action: &Action) -> String {
    let quoted = |v: Option<&str>| v.map_or("(none)".to_owned(), |v| format!("{v:?}"));
    match action {
        Action::TagCluster {
            cluster, from, to, ..
        } => {
            let sign = if from.is_some() { '~' } else { '+' };
            format!(
                "{sign} {cluster}  GuardDutyManaged: {} -> {:?}",
                quoted(from.as_deref()),
                to
            )
        }
        Action::UntagCluster { cluster, from, .. } => {
            format!("- {cluster}  GuardDutyManaged: {:?} -> (none)", from)
        }
        Action::UpdateDetector {
            detector_id,
            feature,
            from,
            to,
            ..
        } => {
            format!(
                "~ detector {detector_id}  {feature}: {} -> {to}",
                from.as_ref().map_or("(not set)", |f| f.as_str())
            )
        }
        Action::UpdateOrganizationConfiguration {
            detector_id,
            feature,
            from,
            to,
            ..
        } => format!(
            "~ organization (administrator detector {detector_id})  {feature} auto-enable: {} -> {}",
            from.as_deref().unwrap_or("(not set)"),
            to.as_aws()
        ),
        Action::RedeployService {
            cluster,
            service,
            purpose,
            via,
            reason,
            ..
        } => {
            let how = match via {
                Deployer::Ecs { .. } => "force new deployment",
                Deployer::CodeDeploy(_) => "new CodeDeploy deployment",
            };
            let what = match purpose {
                RedeployPurpose::AddAgent => "",
                RedeployPurpose::RemoveAgent => " to remove the agent",
            };
            let via = deployer_label(via);
            format!("↻ {cluster}/{service}  {how}{what} ({via}): {reason}")
        }
    }
}

/// How a redeploy goes, for people: the deployment controller, then the ECS strategy
/// (`ECS BLUE_GREEN`) or the CodeDeploy deployment group (`CODE_DEPLOY via app/group`).
pub fn deployer_label(via: &Deployer) -> String {
    let controller = via.controller();
    match via {
        Deployer::Ecs { strategy } => format!("{controller} {strategy}"),
        Deployer::CodeDeploy(c) => format!("{controller} via {}", c.group),
    }
}

/// A resource in conflict for people: `conflict: WHAT (KIND): desired D, found O, changed
/// back N times since T; not written until ...`.
pub fn conflict_line(c: &gec_model::plan::Conflict) -> String {
    format!(
        "conflict: {} ({}): desired {}, found {}, changed back {} times since {}; not written \
         until its rule changes, AWS holds the desired value again, or POST /conflicts/reset",
        c.cluster.as_deref().unwrap_or(&c.resource),
        c.kind.as_str(),
        c.desired,
        c.observed,
        c.reverts,
        gec_model::plan::rfc3339(c.since_ms)
    )
}

/// A held service for people: `held: CLUSTER/SERVICE: CODE: reason (detail)`.
pub fn held_line(h: &Held) -> String {
    let detail = h
        .detail
        .as_deref()
        .map_or(String::new(), |d| format!(" ({d})"));
    format!(
        "held: {}/{}: {}: {}{detail}",
        h.cluster,
        h.service,
        h.reason.code(),
        h.reason
    )
}

#[cfg(test)]
mod tests {
    use gec_engine::rollout::Halt;
    use gec_engine::TargetPass;
    use gec_model::observed::{CoverageRecord, PreflightCode};
    use gec_model::plan::{HoldReason, RedeployPurpose};
    use gec_model::testing::{held, redeploy, row, target};
    use gec_model::TargetPlan;

    use super::{action_line, plan_text, status_json, status_text};

    const EAST: &str = "us-east-1";

    #[test]
    fn plan_and_status_name_each_conflict_and_how_it_ends() {
        let conflict = gec_model::plan::Conflict {
            target: gec_model::plan::TargetRef {
                region: EAST.into(),
                account: Some(gec_model::testing::ACCOUNT.into()),
            },
            kind: gec_model::plan::ConflictKind::Tag,
            resource: gec_model::testing::arn("apps"),
            cluster: Some("apps".into()),
            desired: "true".into(),
            observed: "false".into(),
            reverts: 3,
            since_ms: 1_795_737_600_000,
            principal: None,
        };
        let passes = [pass(TargetPlan {
            conflicts: vec![conflict],
            ..TargetPlan::default()
        })];
        let line = "  conflict: apps (tag): desired true, found false, changed back 3 times since \
                    2026-11-27T00:00:00Z; not written until its rule changes, AWS holds the \
                    desired value again, or POST /conflicts/reset\n";
        assert!(status_text(&passes, None).contains(line));
        assert!(plan_text(&passes).contains(line));
        let json = serde_json::to_value(status_json(&passes, None)).unwrap();
        assert_eq!(json["conflicts"][0]["since"], "2026-11-27T00:00:00Z");
        assert_eq!(json["conflicts"][0]["account"], gec_model::testing::ACCOUNT);
    }

    fn pass(plan: TargetPlan) -> TargetPass {
        TargetPass {
            target: target(EAST),
            plan: Some(plan),
            results: Vec::new(),
            error: None,
            suspended: false,
            after: None,
            events: Vec::new(),
        }
    }

    fn offboarding_and_held() -> TargetPass {
        let pull = "CannotPullContainerError: not authorized";
        pass(TargetPlan {
            actions: vec![redeploy(EAST, "old", "api").purpose(RedeployPurpose::RemoveAgent)],
            clusters: vec![
                row(EAST, "apps").coverage_record(CoverageRecord {
                    status: "UNHEALTHY".into(),
                    issue: Some("No agent reporting".into()),
                    management_type: Some("MANUAL".into()),
                    fargate_issues: vec![
                        "No agent reporting".into(),
                        "Execution role cannot pull the agent image".into(),
                    ],
                }),
                row(EAST, "old").agent_tasks(4),
            ],
            held: vec![
                held(
                    EAST,
                    "apps",
                    "legacy",
                    HoldReason::Preflight(PreflightCode::PlatformVersion),
                )
                .detail("platform version 1.3.0"),
                held(EAST, "apps", "web", HoldReason::AgentFailed).detail(pull),
            ],
            ..TargetPlan::default()
        })
    }

    #[test]
    fn status_shows_each_held_service_with_its_code_guardduty_s_words_and_the_agent_s_leftovers() {
        let text = status_text(&[offboarding_and_held()], None);
        for line in [
            "  issue: apps: No agent reporting",
            "  fargate issue: apps: Execution role cannot pull the agent image",
            "  agent management: apps: MANUAL",
            "  agent tasks: old: 4 running tasks still run the GuardDuty agent after coverage loss",
            "  redeploy pending (remove the agent): old/api (ECS ROLLING): 1 of 2 running tasks lack the GuardDuty agent",
            "  held: apps/legacy: platform_version: the Fargate platform version is below 1.4.0, \
             which GuardDuty's agent needs (platform version 1.3.0)",
            "  held: apps/web: agent_failed: deployed with coverage on and its new tasks have no \
             running GuardDuty agent; not redeployed again while that stands \
             (CannotPullContainerError: not authorized)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert_eq!(
            text.matches("No agent reporting").count(),
            1,
            "a Fargate issue that repeats the record's issue is said once:\n{text}"
        );
    }

    #[test]
    fn the_plan_says_which_redeploys_remove_the_agent_and_why_services_are_held() {
        let text = plan_text(&[offboarding_and_held()]);
        assert!(
            text.contains(
                "↻ old/api  force new deployment to remove the agent (ECS ROLLING): 1 of 2 running tasks lack the GuardDuty agent"
            ),
            "{text}"
        );
        assert!(
            text.contains("  held: apps/legacy: platform_version: "),
            "{text}"
        );
        assert!(
            text.contains("1 to redeploy (1 to remove the agent)."),
            "{text}"
        );
    }

    const NOW: i64 = 1_795_737_600_000;

    /// One covered cluster `apps` (coverage on for an hour) whose services all have tasks
    /// without the agent, each deployed a different way, planned by the real planner.
    fn every_deployment_controller() -> TargetPass {
        use gec_model::observed::{CodeDeploy, DeploymentController};
        use gec_model::plan::{plan_target, PlanOptions};
        use gec_model::testing::{
            cluster, codedeploy_deployment, desired_with, detector, group, observed_in, service,
            workload,
        };

        let mut weird = service("weird");
        weird.controller = DeploymentController::from_aws("SOMETHING_NEW");
        let mut nolb = service("nolb").code_deploy(group("nolb", vec![]));
        nolb.load_balancer = None;
        let busy = group(
            "busy",
            vec![codedeploy_deployment(
                "d-BUSY12345",
                "InProgress",
                NOW - 60_000,
            )],
        );
        let services = workload()
            .service(service("web"), 2, 1)
            .service(service("api").strategy("BLUE_GREEN"), 3, 2)
            .service(service("cart").code_deploy(group("cart", vec![])), 2, 2)
            .service(
                service("feed").external("ecs-deployer/github-actions"),
                2,
                2,
            )
            .service(weird, 1, 1)
            .service(service("busy").code_deploy(busy), 1, 1)
            .service(service("lonely").code_deploy(CodeDeploy::NoGroup), 1, 1)
            .service(nolb, 1, 1)
            .service(
                service("unread").code_deploy(CodeDeploy::Unknown(
                    "AccessDeniedException: not authorized to perform: codedeploy:ListApplications"
                        .into(),
                )),
                1,
                1,
            );
        let mut apps = cluster("apps").tagged("true").workload(services);
        apps.covered_since_ms = Some(NOW - 3_600_000);
        apps.coverage_turn_on_seen = true;
        let observed = observed_in(EAST)
            .with(apps)
            .detector(detector().runtime("ENABLED").automation("ENABLED"));
        let desired = desired_with(
            "clusters: [{name: apps, guardDutyManaged: true}]\nredeploy: {settleTime: 0s}",
        );
        let options = PlanOptions {
            now_ms: NOW,
            ..PlanOptions::default()
        };
        pass(plan_target(&desired, &observed, options))
    }

    #[test]
    fn the_plan_says_which_deployment_controller_and_strategy_each_redeploy_goes_through() {
        let text = plan_text(&[every_deployment_controller()]);
        for line in [
            "    ↻ apps/api  force new deployment (ECS BLUE_GREEN): 2 of 3 running tasks lack the GuardDuty agent",
            "    ↻ apps/cart  new CodeDeploy deployment (CODE_DEPLOY via apps/cart): 2 of 2 running tasks lack the GuardDuty agent",
            "    ↻ apps/web  force new deployment (ECS ROLLING): 1 of 2 running tasks lack the GuardDuty agent",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert!(text.contains("3 to redeploy."), "{text}");
        let removal =
            action_line(&redeploy(EAST, "old", "api").purpose(RedeployPurpose::RemoveAgent));
        assert_eq!(
            removal,
            "↻ old/api  force new deployment to remove the agent (ECS ROLLING): \
             1 of 2 running tasks lack the GuardDuty agent"
        );
    }

    #[test]
    fn services_no_redeploy_can_reach_are_held_with_the_deployment_controller_codes() {
        let pass = every_deployment_controller();
        let status = status_text(std::slice::from_ref(&pass), None);
        let plan = plan_text(std::slice::from_ref(&pass));
        let held = [
            "  held: apps/busy: deployment_in_progress: a deployment is in progress \
             (CodeDeploy deployment d-BUSY12345 is InProgress)",
            "  held: apps/feed: external_deployment_controller: its deployment controller is \
             EXTERNAL: only the deployer that owns its task sets can replace its tasks; that \
             deployer must redeploy it (its PRIMARY task set was started by \
             ecs-deployer/github-actions)",
            "  held: apps/lonely: no_deployment_group: its deployment controller is CODE_DEPLOY \
             and no CodeDeploy deployment group names it: create one for the service, or \
             redeploy it yourself",
            "  held: apps/nolb: no_load_balancer: its deployment controller is CODE_DEPLOY and it \
             has no load balancer container and port for the AppSpec",
            "  held: apps/unread: deployment_unknown: its deployment controller is CODE_DEPLOY \
             and CodeDeploy could not be read (AccessDeniedException: not authorized to \
             perform: codedeploy:ListApplications)",
            "  held: apps/weird: unknown_deployment_controller: its deployment controller is of a \
             type the controller does not know (deploymentController SOMETHING_NEW)",
        ];
        for text in [&status, &plan] {
            for line in held {
                assert!(
                    text.lines().any(|l| l == line),
                    "no line {line:?} in:\n{text}"
                );
            }
            assert!(
                text.lines()
                    .any(|l| l.starts_with("  warning: apps/unread: ")),
                "CodeDeploy that could not be read is a warning too:\n{text}"
            );
        }
        for line in [
            "  redeploy pending: apps/api (ECS BLUE_GREEN): 2 of 3 running tasks lack the GuardDuty agent",
            "  redeploy pending: apps/cart (CODE_DEPLOY via apps/cart): 2 of 2 running tasks lack the GuardDuty agent",
            "  redeploy pending: apps/web (ECS ROLLING): 1 of 2 running tasks lack the GuardDuty agent",
        ] {
            assert!(
                status.lines().any(|l| l == line),
                "no line {line:?} in:\n{status}"
            );
        }
    }

    #[test]
    fn status_json_says_how_each_pending_redeploy_goes() {
        let json =
            serde_json::to_value(status_json(&[every_deployment_controller()], None)).unwrap();
        let redeploys: Vec<_> = json["redeploys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["service"].as_str().unwrap(),
                    r["deploymentController"].as_str().unwrap(),
                    r["strategy"].as_str(),
                    r["deploymentGroup"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            redeploys,
            [
                ("api", "ECS", Some("BLUE_GREEN"), None),
                ("cart", "CODE_DEPLOY", None, Some("apps/cart")),
                ("web", "ECS", Some("ROLLING"), None),
            ]
        );
        let codes: Vec<_> = json["held"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["service"].as_str().unwrap(), h["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            codes,
            [
                ("busy", "deployment_in_progress"),
                ("feed", "external_deployment_controller"),
                ("lonely", "no_deployment_group"),
                ("nolb", "no_load_balancer"),
                ("unread", "deployment_unknown"),
                ("weird", "unknown_deployment_controller"),
            ]
        );
    }

    #[test]
    fn status_says_when_a_failed_codedeploy_deployment_halts_redeploys() {
        let halt = Halt {
            cluster: "apps".into(),
            service: "cart".into(),
            deployment_id: "d-FAILED123".into(),
        };
        let pass = every_deployment_controller();
        let text = status_text(std::slice::from_ref(&pass), Some(&halt));
        let line = "REDEPLOYS HALTED (stopOnFailure): apps/cart: deployment d-FAILED123 failed; \
                    no redeploy starts until the desired state changes";
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
        assert!(
            !status_text(std::slice::from_ref(&pass), None).contains("HALTED"),
            "no halt, no line"
        );
        let json = serde_json::to_value(status_json(&[pass], Some(&halt))).unwrap();
        assert_eq!(
            json["halted"],
            serde_json::json!({"cluster": "apps", "service": "cart", "deploymentId": "d-FAILED123"})
        );
        let none = serde_json::to_value(status_json(&[offboarding_and_held()], None)).unwrap();
        assert_eq!(none["halted"], serde_json::Value::Null);
    }

    #[test]
    fn status_json_carries_the_codes_and_the_agent_tasks() {
        let json = serde_json::to_value(status_json(&[offboarding_and_held()], None)).unwrap();
        assert_eq!(json["held"][0]["code"], "platform_version");
        assert_eq!(json["held"][0]["detail"], "platform version 1.3.0");
        assert_eq!(json["held"][1]["code"], "agent_failed");
        assert_eq!(json["clusters"][0]["managementType"], "MANUAL");
        assert_eq!(json["clusters"][0]["agentTasks"], serde_json::Value::Null);
        assert_eq!(json["clusters"][1]["agentTasks"], 4);
        assert_eq!(json["redeploys"][0]["purpose"], "remove_agent");
    }
}
