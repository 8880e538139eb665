//! Safety limits: the file's values clamped to ceilings the file cannot raise, checked
//! per target and across every target of a pass.

use std::fmt;

use super::{CoverageChange, Phase, Refusal, TargetPlan};
use crate::desired::{SafetySpec, Target};
use crate::plan::PlanOptions;

/// `safety.maxClusterChangesPerCycle`, as the YAML spells it.
pub const MAX_CLUSTER_CHANGES: &str = "maxClusterChangesPerCycle";
/// `safety.maxCoverageLossFraction`, as the YAML spells it.
pub const MAX_COVERAGE_LOSS: &str = "maxCoverageLossFraction";

/// Targets named in a refusal's sentence; the JSON `targets` list has them all.
const NAMED_IN_REASON: usize = 10;

/// What a refused limit counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The plan of one target.
    Target,
    /// Every target of the pass together; or another target's refusal, which holds the
    /// whole pass back.
    Fleet,
}

impl Scope {
    /// The plan JSON's `scope` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Target => "target",
            Scope::Fleet => "fleet",
        }
    }
}

/// Upper bounds of the safety limits, set where the controller runs (flags, environment),
/// not in the desired state: the file is the input the limits protect against, so it may
/// lower them but never raise them past these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    /// Ceiling of `safety.maxClusterChangesPerCycle`.
    pub max_cluster_changes: u32,
    /// Ceiling of `safety.maxCoverageLossFraction`, 0 to 1.
    pub max_coverage_loss: f64,
}

impl Ceilings {
    /// No ceiling: the file's values hold as written (tools and tests that plan a file on
    /// its own terms).
    pub const OPEN: Ceilings = Ceilings {
        max_cluster_changes: u32::MAX,
        max_coverage_loss: 1.0,
    };
}

/// The default ceiling of `maxClusterChangesPerCycle`: the limit's documented default.
pub const DEFAULT_MAX_CLUSTER_CHANGES: u32 = 50;
/// The default ceiling of `maxCoverageLossFraction`: the limit's documented default.
pub const DEFAULT_MAX_COVERAGE_LOSS: f64 = 0.2;

impl Default for Ceilings {
    /// The limits' documented defaults: out of the box a file can only lower the limits.
    fn default() -> Self {
        Ceilings {
            max_cluster_changes: DEFAULT_MAX_CLUSTER_CHANGES,
            max_coverage_loss: DEFAULT_MAX_COVERAGE_LOSS,
        }
    }
}

/// A file value above its ceiling: the ceiling applies instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clamped {
    /// The limit, as the YAML spells it.
    pub limit: &'static str,
    /// What the file asks for.
    pub file: f64,
    /// The ceiling that applies.
    pub ceiling: f64,
}

impl fmt::Display for Clamped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = match self.limit {
            MAX_CLUSTER_CHANGES => "--max-cluster-changes-ceiling",
            _ => "--max-coverage-loss-ceiling",
        };
        write!(
            f,
            "safety.{} {} is above its ceiling {} ({flag}); {} applies",
            self.limit, self.file, self.ceiling, self.ceiling
        )
    }
}

/// The safety limits in force: the file's values, each at most its ceiling; the ceiling
/// where the file sets none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Tag changes (set and remove) allowed in one pass.
    pub max_cluster_changes: u32,
    /// Share of covered clusters a pass may turn coverage off for.
    pub max_coverage_loss: f64,
}

impl Limits {
    /// The limits of `safety` under `ceilings`.
    pub fn new(safety: &SafetySpec, ceilings: Ceilings) -> Self {
        Limits {
            max_cluster_changes: safety
                .max_cluster_changes_per_cycle
                .map_or(ceilings.max_cluster_changes, |v| {
                    v.min(ceilings.max_cluster_changes)
                }),
            max_coverage_loss: safety
                .max_coverage_loss_fraction
                .map_or(ceilings.max_coverage_loss, |v| {
                    v.min(ceilings.max_coverage_loss)
                }),
        }
    }

    /// The file values of `safety` that `ceilings` clamp.
    pub fn clamped(safety: &SafetySpec, ceilings: Ceilings) -> Vec<Clamped> {
        let mut clamped = Vec::new();
        if let Some(file) = safety
            .max_cluster_changes_per_cycle
            .filter(|v| *v > ceilings.max_cluster_changes)
        {
            clamped.push(Clamped {
                limit: MAX_CLUSTER_CHANGES,
                file: f64::from(file),
                ceiling: f64::from(ceilings.max_cluster_changes),
            });
        }
        if let Some(file) = safety
            .max_coverage_loss_fraction
            .filter(|v| *v > ceilings.max_coverage_loss)
        {
            clamped.push(Clamped {
                limit: MAX_COVERAGE_LOSS,
                file,
                ceiling: ceilings.max_coverage_loss,
            });
        }
        clamped
    }
}

/// What a plan counts against the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    tag_changes: usize,
    covered_now: usize,
    lost: usize,
}

impl Counts {
    fn of(plan: &TargetPlan) -> Self {
        let tag_changes = plan
            .actions
            .iter()
            .filter(|a| matches!(a.phase(), Phase::Tags | Phase::Untag))
            .count();
        let (mut covered_now, mut lost) = (0, 0);
        for row in &plan.clusters {
            // Covered now: covered before and after, or only before.
            covered_now += usize::from(matches!(
                row.coverage,
                CoverageChange::Covered | CoverageChange::Lost
            ));
            lost += usize::from(row.coverage == CoverageChange::Lost);
        }
        Counts {
            tag_changes,
            covered_now,
            lost,
        }
    }
}

/// The first limit a count breaks: which, the value counted and the max in force.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Breach {
    limit: &'static str,
    value: f64,
    max: f64,
}

impl Counts {
    /// The first limit these counts break, tag changes before coverage loss.
    fn breach(&self, limits: Limits) -> Option<Breach> {
        let max_changes = limits.max_cluster_changes as usize;
        if self.tag_changes > max_changes {
            return Some(Breach {
                limit: MAX_CLUSTER_CHANGES,
                value: self.tag_changes as f64,
                max: max_changes as f64,
            });
        }
        let fraction = loss_fraction(self.lost, self.covered_now)?;
        (fraction > limits.max_coverage_loss).then_some(Breach {
            limit: MAX_COVERAGE_LOSS,
            value: fraction,
            max: limits.max_coverage_loss,
        })
    }
}

/// The per-target check of [`super::plan_target`]: `None` when the plan is within the
/// limits.
pub(super) fn check_target(plan: &TargetPlan, limits: Limits, region: &str) -> Option<Refusal> {
    let counts = Counts::of(plan);
    let Breach { limit, value, max } = counts.breach(limits)?;
    let reason = if limit == MAX_CLUSTER_CHANGES {
        format!(
            "{value} cluster tag changes in {region} exceed safety.{MAX_CLUSTER_CHANGES} ({max}); \
             nothing was applied (use --allow-mass-change to override)"
        )
    } else {
        format!(
            "the plan turns coverage off for {} of {} covered clusters in {region} \
             ({:.0}%), more than safety.{MAX_COVERAGE_LOSS} ({:.0}%); nothing was applied \
             (use --allow-mass-change to override)",
            counts.lost,
            counts.covered_now,
            value * 100.0,
            max * 100.0
        )
    };
    Some(Refusal {
        region: region.to_owned(),
        scope: Scope::Target,
        targets: Vec::new(),
        limit,
        value,
        max,
        reason,
    })
}

fn loss_fraction(lost: usize, covered_now: usize) -> Option<f64> {
    (covered_now > 0).then(|| lost as f64 / covered_now as f64)
}

/// Checks the plans of every target of one pass together, so that a mass change refused
/// in one target is not applied in another and many small changes cannot add up to a
/// mass change: the sum of tag changes against `maxClusterChangesPerCycle`, and the
/// coverage lost over all covered clusters against `maxCoverageLossFraction`, under the
/// same clamped limits as [`super::plan_target`]. Pass only the targets that were
/// observed and planned: one that failed to observe contributes nothing.
///
/// # Guarantees
/// Afterwards either no plan is refused or every plan is: a plan refused by its own
/// limits keeps its [`Scope::Target`] refusal, every other plan gets a [`Scope::Fleet`]
/// refusal naming the limit, the value, the max and the targets that caused it. Never
/// changes the actions. Does nothing under `--allow-mass-change`.
pub fn check_fleet(
    plans: &mut [(&Target, &mut TargetPlan)],
    safety: &SafetySpec,
    options: PlanOptions,
) {
    if options.allow_mass_change {
        return;
    }
    for (target, plan) in plans.iter_mut() {
        if let Some(refusal) = plan.refused.as_mut() {
            refusal.targets = vec![target.label()];
        }
    }
    let Some(fleet) = fleet_refusal(plans, Limits::new(safety, options.ceilings)) else {
        return;
    };
    for (target, plan) in plans.iter_mut() {
        if plan.refused.is_none() {
            plan.refused = Some(Refusal {
                region: target.region.clone(),
                ..fleet.clone()
            });
        }
    }
}

/// The refusal every not yet refused plan of the pass gets, if any. `region` is left
/// for the caller to fill in.
fn fleet_refusal(plans: &[(&Target, &mut TargetPlan)], limits: Limits) -> Option<Refusal> {
    let refused: Vec<(&Target, &Refusal)> = plans
        .iter()
        .filter_map(|(t, p)| Some((*t, p.refused.as_ref()?)))
        .collect();
    if let Some((_, first)) = refused.first() {
        let labels: Vec<String> = refused.iter().map(|(t, _)| t.label()).collect();
        return Some(Refusal {
            region: String::new(),
            scope: Scope::Fleet,
            limit: first.limit,
            value: first.value,
            max: first.max,
            reason: format!(
                "safety.{} refused the plan of {}; nothing was applied in any target of this pass \
                 (use --allow-mass-change to override)",
                first.limit,
                named(labels.iter().map(String::as_str))
            ),
            targets: labels,
        });
    }
    let counts: Vec<(String, Counts)> = plans
        .iter()
        .map(|(t, p)| (t.label(), Counts::of(p)))
        .collect();
    let total = counts.iter().fold(Counts::default(), |sum, (_, c)| Counts {
        tag_changes: sum.tag_changes + c.tag_changes,
        covered_now: sum.covered_now + c.covered_now,
        lost: sum.lost + c.lost,
    });
    // When every target is within the loss limit, so is the fleet's share (a weighted
    // mean of theirs); checked anyway, so that the rule does not rest on that.
    let Breach { limit, value, max } = total.breach(limits)?;
    let (parts, reason) = if limit == MAX_CLUSTER_CHANGES {
        let parts = contributors(&counts, |c| c.tag_changes);
        let reason = format!(
            "{value} cluster tag changes across the fleet ({}) exceed safety.{MAX_CLUSTER_CHANGES} ({max}), \
             which counts every target of a pass together; nothing was applied in any target \
             (use --allow-mass-change to override)",
            named(parts.iter().map(|(_, text)| text.as_str()))
        );
        (parts, reason)
    } else {
        let parts = contributors(&counts, |c| c.lost);
        let reason = format!(
            "the plans turn coverage off for {} of {} covered clusters across the fleet ({}) ({:.0}%), \
             more than safety.{MAX_COVERAGE_LOSS} ({:.0}%), which counts every target of a pass \
             together; nothing was applied in any target (use --allow-mass-change to override)",
            total.lost,
            total.covered_now,
            named(parts.iter().map(|(_, text)| text.as_str())),
            value * 100.0,
            max * 100.0
        );
        (parts, reason)
    };
    Some(Refusal {
        region: String::new(),
        scope: Scope::Fleet,
        limit,
        value,
        max,
        reason,
        targets: parts.into_iter().map(|(label, _)| label).collect(),
    })
}

/// The targets with a non-zero count: `(label, "label: count")`.
fn contributors(
    counts: &[(String, Counts)],
    count: impl Fn(&Counts) -> usize,
) -> Vec<(String, String)> {
    counts
        .iter()
        .filter(|(_, c)| count(c) > 0)
        .map(|(label, c)| (label.clone(), format!("{label}: {}", count(c))))
        .collect()
}

/// Up to [`NAMED_IN_REASON`] items joined by commas, then how many more: a refusal's
/// sentence stays short in a fleet of thousands.
fn named<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = items.len();
    let mut text = items.take(NAMED_IN_REASON).collect::<Vec<_>>().join(", ");
    if n > NAMED_IN_REASON {
        text.push_str(&format!(" and {} more", n - NAMED_IN_REASON));
    }
    text
}

#[cfg(test)]
mod tests;
