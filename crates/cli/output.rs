//! Rendering plans and apply results for people (text) and scripts (JSON).

use std::fmt::Write as _;

use gec_engine::{Outcome, TargetPass};
use gec_model::plan::Phase;
use gec_model::Action;
use serde_json::{json, Value};

/// The plan JSON of DESIGN §4, plus per-target errors and (after apply) results.
pub fn json(passes: &[TargetPass], with_results: bool) -> Value {
    let plan = gec_model::Plan {
        targets: passes.iter().filter_map(|p| p.plan.clone()).collect(),
    };
    let mut out = plan.to_json();
    out["errors"] = passes
        .iter()
        .filter_map(|p| {
            p.error.as_ref().map(|e| {
                json!({"region": p.target.region, "target": p.target.label(), "kind": e.kind.as_str(),
                       "operation": e.operation, "message": e.to_string()})
            })
        })
        .collect();
    if with_results {
        out["results"] = passes
            .iter()
            .flat_map(|p| &p.results)
            .map(|r| {
                let mut v = r.action.to_json();
                v["result"] = r.outcome.label().into();
                match &r.outcome {
                    Outcome::Failed(e) => v["error"] = e.to_string().into(),
                    Outcome::Skipped(why) => v["error"] = (*why).into(),
                    Outcome::Success => {}
                }
                v
            })
            .collect();
        out["remaining"] = passes
            .iter()
            .filter_map(|p| p.remaining())
            .sum::<usize>()
            .into();
        out["suspended"] = passes.iter().any(|p| p.suspended).into();
    }
    out
}

/// The plan as text: one line per change, grouped by target and phase, then a summary.
pub fn plan_text(passes: &[TargetPass]) -> String {
    let mut out = String::new();
    let (mut tags, mut untags, mut detector, mut clusters) = (0, 0, 0, 0);
    for pass in passes {
        let account = pass
            .plan
            .as_ref()
            .and_then(|p| p.clusters.first())
            .and_then(|c| c.target.account.clone());
        let _ = write!(out, "Target {}", pass.target.region);
        if let Some(a) = account {
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
            }
        }
        if plan.actions.is_empty() {
            let _ = writeln!(out, "  no changes ({} clusters)", plan.clusters.len());
        }
        for w in &plan.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        if let Some(r) = &plan.refused {
            let _ = writeln!(out, "  REFUSED ({}): {}", r.limit, r.reason);
        }
    }
    out.push('\n');
    if tags + untags + detector == 0 {
        let _ = writeln!(
            out,
            "No changes. AWS matches the desired state ({} targets, {clusters} clusters).",
            passes.len()
        );
    } else {
        let _ = writeln!(
            out,
            "Plan: {tags} to tag, {detector} detector changes, {untags} to untag."
        );
    }
    out
}

/// What apply did, one line per action, then a summary.
pub fn results_text(passes: &[TargetPass]) -> String {
    let mut out = String::new();
    let (mut ok, mut failed, mut skipped) = (0, 0, 0);
    for pass in passes {
        for r in &pass.results {
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
        if pass.suspended && pass.plan.as_ref().is_some_and(|p| !p.actions.is_empty()) {
            let _ = writeln!(
                out,
                "  {}: suspend: true in the desired state; nothing written",
                pass.target.region
            );
        }
    }
    let remaining: usize = passes.iter().filter_map(|p| p.remaining()).sum();
    let _ = writeln!(
        out,
        "\nApply: {ok} succeeded, {failed} failed, {skipped} skipped; {remaining} changes still pending."
    );
    out
}

fn phase_title(phase: Phase) -> &'static str {
    match phase {
        Phase::Tags => "phase 1, set tags",
        Phase::Detector => "phase 2, detector features",
        Phase::Untag => "phase 3, remove tags",
    }
}

fn action_line(action: &Action) -> String {
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
                from.as_deref().unwrap_or("(not set)")
            )
        }
    }
}
