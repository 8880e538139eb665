//! Rendering plans and apply results for people (text) and scripts (JSON).

use std::fmt::Write as _;

use gec_engine::{ApplyRun, Outcome, TargetPass, Wait};
use gec_model::plan::Phase;
use gec_model::Action;
use serde_json::{json, Value};

/// The plan JSON of DESIGN §4, plus per-target errors.
pub fn json(passes: &[TargetPass]) -> Value {
    let plan = gec_model::Plan {
        targets: passes.iter().filter_map(|p| p.plan.clone()).collect(),
    };
    let mut out = plan.to_json();
    out["errors"] = errors(passes);
    out
}

fn errors(passes: &[TargetPass]) -> Value {
    passes
        .iter()
        .filter_map(|p| {
            p.error.as_ref().map(|e| {
                json!({"region": p.target.region, "target": p.target.label(), "kind": e.kind.as_str(),
                       "operation": e.operation, "message": e.to_string()})
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

/// The apply JSON: the plan JSON of the first pass, plus what was done and what is left.
pub fn apply_json(run: &ApplyRun) -> Value {
    let mut out = json(&run.first);
    let mut errs = errors(&run.last);
    if let (Some(a), Some(b)) = (out["errors"].as_array_mut(), errs.as_array_mut()) {
        for e in b.drain(..) {
            if !a.contains(&e) {
                a.push(e);
            }
        }
    }
    out["results"] = run
        .results
        .iter()
        .map(|r| {
            let mut v = r.action.to_json();
            v["result"] = r.outcome.label().into();
            match &r.outcome {
                Outcome::Failed(e) => v["error"] = e.to_string().into(),
                Outcome::Skipped(why) => v["error"] = why.to_string().into(),
                Outcome::Success => {}
            }
            v
        })
        .collect();
    out["rollouts"] = run
        .events
        .iter()
        .map(|e| json!({"cluster": e.cluster, "service": e.service, "state": e.state.as_str()}))
        .collect();
    let left = remaining(run);
    out["remaining"] = left.unsettled.into();
    out["deferred"] = left.deferred.into();
    out["timedOut"] = run.timed_out.into();
    out["suspended"] = run.first.iter().any(|p| p.suspended).into();
    out
}

/// The plan as text: one line per change, grouped by target and phase, then a summary.
pub fn plan_text(passes: &[TargetPass]) -> String {
    let mut out = String::new();
    let (mut tags, mut untags, mut detector, mut clusters, mut redeploys) = (0, 0, 0, 0, 0);
    for pass in passes {
        let account = pass
            .plan
            .as_ref()
            .and_then(|p| p.clusters.first())
            .and_then(|c| c.target.account.clone());
        let label = pass.target.label();
        let _ = write!(out, "Target {label}");
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
                Action::UpdateDetector { .. } => detector += 1,
                Action::RedeployService { .. } => redeploys += 1,
            }
        }
        if plan.actions.is_empty() {
            let _ = writeln!(out, "  no changes ({} clusters)", plan.clusters.len());
        }
        for h in &plan.held {
            let _ = writeln!(out, "  held: {}/{}: {}", h.cluster, h.service, h.reason);
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
            "Plan: {tags} to tag, {detector} detector changes, {untags} to untag, {redeploys} to redeploy."
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
        let _ = writeln!(out, "  rollout  {}/{}: {}", e.cluster, e.service, e.state);
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

/// The `status` table as text: one block per target, one row per cluster.
pub fn status_text(passes: &[TargetPass]) -> String {
    let mut out = String::new();
    for pass in passes {
        let _ = writeln!(out, "Target {}", pass.target.label());
        if let Some(e) = &pass.error {
            let _ = writeln!(out, "  ERROR: {e}");
        }
        let Some(plan) = &pass.plan else { continue };
        let _ = writeln!(
            out,
            "  {:<28} {:<8} {:<8} {:<10} {:<10} {:>8} {:>8} {:>10} {:>10}",
            "CLUSTER",
            "DESIRED",
            "OBSERVED",
            "COVERAGE",
            "GUARDDUTY",
            "RUNNING",
            "SERVICES",
            "TASKS",
            "STANDALONE"
        );
        let dash = |v: Option<u32>| v.map_or("-".to_owned(), |n| n.to_string());
        for row in &plan.clusters {
            let t = row.tasks;
            let _ = writeln!(
                out,
                "  {:<28} {:<8} {:<8} {:<10} {:<10} {:>8} {:>8} {:>10} {:>10}",
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
            if let Some(issue) = row.guardduty.as_ref().and_then(|g| g.issue.as_deref()) {
                let _ = writeln!(out, "      issue: {issue}");
            }
        }
        for a in &plan.actions {
            if let Action::RedeployService {
                cluster,
                service,
                reason,
                ..
            } = a
            {
                let _ = writeln!(out, "  redeploy pending: {cluster}/{service}: {reason}");
            }
        }
        for h in &plan.held {
            let _ = writeln!(out, "  held: {}/{}: {}", h.cluster, h.service, h.reason);
        }
        for w in &plan.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    out.push_str(
        "\nSERVICES: services with tasks without the GuardDuty agent; TASKS: their tasks; \
         STANDALONE: standalone tasks without the agent (reported, never stopped). \
         \"-\": tasks not read (no rule names the cluster, or its coverage is off).\n",
    );
    out
}

/// The `status` JSON: per-target errors, the cluster table, pending redeploys, held
/// services and warnings.
pub fn status_json(passes: &[TargetPass]) -> Value {
    let plan = json(passes);
    json!({
        "targets": passes.iter().map(|p| json!({
            "target": p.target.label(), "region": p.target.region,
            "error": p.error.as_ref().map(ToString::to_string),
        })).collect::<Vec<_>>(),
        "clusters": plan["clusters"],
        "redeploys": plan["actions"].as_array().map(|a| a.iter().filter(|x| x["kind"] == "redeploy_service").cloned().collect::<Vec<_>>()),
        "held": plan["held"],
        "warnings": plan["warnings"],
    })
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
        Action::RedeployService {
            cluster,
            service,
            reason,
            ..
        } => format!("↻ {cluster}/{service}  force new deployment: {reason}"),
    }
}
