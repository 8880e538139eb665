//! Ceilings the file cannot raise, and the fleet-wide check of one pass.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::desired::{self, DesiredState};
use crate::plan::{plan_target, Plan};
use crate::testing::{self, cluster, detector, observed_in};
use crate::ObservedTarget;

/// Two regions, so plans can be checked as one fleet.
const TARGETS: &str = "targets: [{region: us-east-1}, {region: eu-west-1}]\n";

fn desired(sections: &str) -> DesiredState {
    testing::desired(&format!("version: 1\n{TARGETS}{sections}"))
}

/// A region with `n` clusters `c000`… tagged `GuardDutyManaged=true`, covered in
/// inclusion-tag mode (monitoring on, automation off).
fn covered(region: &str, n: usize) -> ObservedTarget {
    observed_in(region)
        .clusters((0..n).map(|i| cluster(&format!("c{i:03}")).tagged("true")))
        .detector(detector().runtime("ENABLED").automation("DISABLED"))
}

/// The untag-all file of issue 11: every cluster loses its tag, and the file tries to
/// lift both limits out of the way.
const UNTAG_ALL: &str = "unmatchedClusters: absent\n\
    safety: {maxClusterChangesPerCycle: 4294967295, maxCoverageLossFraction: 1.0}\n";

fn options(ceilings: Ceilings) -> PlanOptions {
    PlanOptions {
        ceilings,
        ..PlanOptions::default()
    }
}

/// Plans both targets of `desired` (us-east-1 then eu-west-1) and checks them as a fleet.
fn fleet(
    desired: &DesiredState,
    observed: [&ObservedTarget; 2],
    options: PlanOptions,
) -> Vec<TargetPlan> {
    let mut plans: Vec<TargetPlan> = observed
        .iter()
        .map(|o| plan_target(desired, o, options))
        .collect();
    let mut members: Vec<(&desired::Target, &mut TargetPlan)> =
        desired.targets.iter().zip(plans.iter_mut()).collect();
    check_fleet(&mut members, &desired.safety, options);
    plans
}

#[test]
fn the_ceilings_default_to_the_limits_documented_defaults() {
    let ceilings = Ceilings::default();
    assert_eq!(
        (ceilings.max_cluster_changes, ceilings.max_coverage_loss),
        (50, 0.2)
    );
    let unset = Limits::new(&SafetySpec::default(), ceilings);
    assert_eq!(
        (unset.max_cluster_changes, unset.max_coverage_loss),
        (50, 0.2)
    );
}

#[test]
fn a_file_may_lower_a_limit_but_never_raise_it_past_its_ceiling() {
    let ceilings = Ceilings {
        max_cluster_changes: 50,
        max_coverage_loss: 0.2,
    };
    /// (label, file changes, file loss, limits in force, limits clamped)
    type Row<'a> = (&'a str, Option<u32>, Option<f64>, (u32, f64), &'a [&'a str]);
    #[rustfmt::skip]
    let rows: [Row; 6] = [
        ("unset limits are the ceilings", None, None, (50, 0.2), &[]),
        ("values under the ceilings hold", Some(3), Some(0.1), (3, 0.1), &[]),
        ("values at the ceilings hold", Some(50), Some(0.2), (50, 0.2), &[]),
        ("zero holds", Some(0), Some(0.0), (0, 0.0), &[]),
        ("a huge change limit is clamped", Some(u32::MAX), None, (50, 0.2), &[MAX_CLUSTER_CHANGES]),
        ("both are clamped", Some(51), Some(1.0), (50, 0.2), &[MAX_CLUSTER_CHANGES, MAX_COVERAGE_LOSS]),
    ];
    for (label, changes, loss, (max_changes, max_loss), clamped) in rows {
        let safety = SafetySpec {
            max_cluster_changes_per_cycle: changes,
            max_coverage_loss_fraction: loss,
        };
        let limits = Limits::new(&safety, ceilings);
        assert_eq!(
            (limits.max_cluster_changes, limits.max_coverage_loss),
            (max_changes, max_loss),
            "{label}"
        );
        let names: Vec<&str> = Limits::clamped(&safety, ceilings)
            .iter()
            .map(|c| c.limit)
            .collect();
        assert_eq!(names, clamped, "{label}");
    }
}

#[test]
fn a_raised_ceiling_raises_a_limit_the_file_leaves_unset() {
    let safety = SafetySpec::default();
    let raised = Ceilings {
        max_cluster_changes: 5000,
        max_coverage_loss: 0.5,
    };
    assert_eq!(
        Limits::new(&safety, raised),
        Limits {
            max_cluster_changes: 5000,
            max_coverage_loss: 0.5
        }
    );
    let lowered = SafetySpec {
        max_cluster_changes_per_cycle: Some(10),
        ..SafetySpec::default()
    };
    assert_eq!(Limits::new(&lowered, raised).max_cluster_changes, 10);
}

#[test]
fn the_untag_all_file_with_a_huge_limit_is_refused_under_the_default_ceilings() {
    let desired = desired(UNTAG_ALL);
    let plan = plan_target(&desired, &covered("us-east-1", 60), PlanOptions::default());

    assert_eq!(plan.actions.len(), 60, "every cluster would lose its tag");
    let refusal = plan
        .refused
        .as_ref()
        .expect("the huge file limit is clamped");
    assert_eq!(
        (refusal.limit, refusal.value, refusal.max, refusal.scope),
        (MAX_CLUSTER_CHANGES, 60.0, 50.0, Scope::Target)
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("4294967295") && w.contains("--max-cluster-changes-ceiling")),
        "the plan says the file's value was clamped: {:?}",
        plan.warnings
    );
}

#[test]
fn the_coverage_loss_ceiling_clamps_a_file_that_allows_losing_everything() {
    let desired = desired(UNTAG_ALL);
    let ceilings = Ceilings {
        max_cluster_changes: 1000,
        ..Ceilings::default()
    };
    let plan = plan_target(&desired, &covered("us-east-1", 10), options(ceilings));

    let refusal = plan.refused.as_ref().expect("1.0 is clamped to 0.2");
    assert_eq!(
        (refusal.limit, refusal.value, refusal.max),
        (MAX_COVERAGE_LOSS, 1.0, 0.2)
    );
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.contains("--max-coverage-loss-ceiling")));
}

#[test]
fn raised_ceilings_let_the_files_values_through() {
    let desired = desired(UNTAG_ALL);
    let plan = plan_target(&desired, &covered("us-east-1", 60), options(Ceilings::OPEN));

    assert_eq!(plan.refused, None);
    assert_eq!(plan.warnings, Vec::<String>::new());
}

#[test]
fn allow_mass_change_overrides_the_ceilings_too() {
    let desired = desired(UNTAG_ALL);
    let plan = plan_target(
        &desired,
        &covered("us-east-1", 60),
        PlanOptions {
            allow_mass_change: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(plan.refused, None);
}

#[test]
fn changes_under_the_limit_in_each_region_are_refused_when_the_fleet_is_over_it() {
    // 30 + 30 removals: each region is under 50, the pass is not.
    let desired = desired(
        "clusters: [{match: {namePattern: 'c0[0-2]*'}, guardDutyManaged: absent}]\n\
         safety: {maxCoverageLossFraction: 1.0}\n",
    );
    let ceilings = Ceilings {
        max_coverage_loss: 1.0,
        ..Ceilings::default()
    };
    let (east, west) = (covered("us-east-1", 40), covered("eu-west-1", 40));
    let alone = plan_target(&desired, &east, options(ceilings));
    assert_eq!((alone.actions.len(), alone.refused.as_ref()), (30, None));

    let plans = fleet(&desired, [&east, &west], options(ceilings));

    for plan in &plans {
        let refusal = plan.refused.as_ref().expect("the fleet is over the limit");
        assert_eq!(
            (refusal.scope, refusal.limit, refusal.value, refusal.max),
            (Scope::Fleet, MAX_CLUSTER_CHANGES, 60.0, 50.0)
        );
        assert_eq!(refusal.targets, ["us-east-1", "eu-west-1"]);
        assert!(
            refusal.reason.contains("us-east-1: 30") && refusal.reason.contains("fleet"),
            "{}",
            refusal.reason
        );
        assert_eq!(
            plan.actions.len(),
            30,
            "the actions are kept for the report"
        );
    }
    assert_eq!(
        plans
            .iter()
            .map(|p| p.refused.as_ref().map(|r| r.region.as_str()))
            .collect::<Vec<_>>(),
        [Some("us-east-1"), Some("eu-west-1")]
    );
}

#[test]
fn a_target_refused_by_its_own_limit_holds_back_every_other_target() {
    // us-east-1 would lose all 60 tags; eu-west-1 only one.
    let desired = desired(
        "clusters:\n\
         \x20 - {match: {namePattern: '*', regions: [us-east-1]}, guardDutyManaged: absent}\n\
         \x20 - {name: c000, guardDutyManaged: false}\n",
    );
    let plans = fleet(
        &desired,
        [&covered("us-east-1", 60), &covered("eu-west-1", 40)],
        PlanOptions::default(),
    );

    let east = plans[0].refused.as_ref().expect("us-east-1 is over");
    assert_eq!(
        (east.scope, east.limit),
        (Scope::Target, MAX_CLUSTER_CHANGES)
    );
    assert_eq!(east.targets, ["us-east-1"]);
    let west = plans[1].refused.as_ref().expect("eu-west-1 is held back");
    assert_eq!(
        (west.scope, west.limit, west.value, west.max),
        (Scope::Fleet, MAX_CLUSTER_CHANGES, 60.0, 50.0)
    );
    assert_eq!(west.targets, ["us-east-1"]);
    assert_eq!(plans[1].actions.len(), 1);
    assert!(west.reason.contains("us-east-1"), "{}", west.reason);
}

#[test]
fn coverage_lost_in_one_region_over_its_limit_holds_back_the_other_region() {
    // us-east-1 loses 2 of 10 (20%: at the limit), eu-west-1 3 of 10 (30%: over).
    let desired = desired(
        "clusters:\n\
         \x20 - {match: {namePattern: 'c00[0-1]', regions: [us-east-1]}, guardDutyManaged: false}\n\
         \x20 - {match: {namePattern: 'c00[0-2]', regions: [eu-west-1]}, guardDutyManaged: false}\n",
    );
    let observed = [&covered("us-east-1", 10), &covered("eu-west-1", 10)];
    let alone = plan_target(&desired, observed[0], PlanOptions::default());
    assert_eq!(alone.refused, None, "us-east-1 alone is within the limit");

    let plans = fleet(&desired, observed, PlanOptions::default());

    let west = plans[1].refused.as_ref().expect("eu-west-1 is over");
    assert_eq!(
        (west.scope, west.limit, west.value),
        (Scope::Target, MAX_COVERAGE_LOSS, 0.3)
    );
    let east = plans[0].refused.as_ref().expect("us-east-1 is held back");
    assert_eq!(
        (east.scope, east.limit, east.value, east.max),
        (Scope::Fleet, MAX_COVERAGE_LOSS, 0.3, 0.2)
    );
    assert_eq!(east.targets, ["eu-west-1"]);
}

#[test]
fn coverage_lost_across_the_fleet_is_counted_over_every_covered_cluster() {
    // Without the per-target refusals (a plan made under other limits, as a caller could
    // hand in), the fleet share alone decides: 5 lost of 20 covered is 25%.
    let desired = desired("clusters: [{match: {namePattern: 'c00[0-4]', regions: [us-east-1]}, guardDutyManaged: false}]\n");
    let (east, west) = (covered("us-east-1", 10), covered("eu-west-1", 10));
    let mut plans = [
        plan_target(&desired, &east, options(Ceilings::OPEN)),
        plan_target(&desired, &west, options(Ceilings::OPEN)),
    ];
    plans[0].refused = None;
    let [a, b] = &mut plans;
    let mut members = vec![(&desired.targets[0], a), (&desired.targets[1], b)];

    check_fleet(&mut members, &desired.safety, PlanOptions::default());

    for plan in &plans {
        let refusal = plan.refused.as_ref().expect("5 of 20 is over 20%");
        assert_eq!(
            (refusal.scope, refusal.limit, refusal.value, refusal.max),
            (Scope::Fleet, MAX_COVERAGE_LOSS, 0.25, 0.2)
        );
        assert_eq!(
            refusal.targets,
            ["us-east-1"],
            "only us-east-1 lost coverage"
        );
    }
}

#[test]
fn plans_within_every_limit_are_left_alone_and_allow_mass_change_skips_the_fleet_check() {
    let desired = desired(
        "clusters: [{match: {namePattern: 'c00*'}, guardDutyManaged: absent}]\n\
         safety: {maxCoverageLossFraction: 1.0}\n",
    );
    let ceilings = Ceilings {
        max_coverage_loss: 1.0,
        max_cluster_changes: 19,
    };
    let observed = [&covered("us-east-1", 10), &covered("eu-west-1", 10)];
    let over = fleet(&desired, observed, options(ceilings));
    assert!(over.iter().all(|p| p.refused.is_some()), "20 > 19");

    let forced = fleet(
        &desired,
        observed,
        PlanOptions {
            allow_mass_change: true,
            ..options(ceilings)
        },
    );
    assert!(forced.iter().all(|p| p.refused.is_none()));

    let raised = Ceilings {
        max_cluster_changes: 20,
        ..ceilings
    };
    let within = fleet(&desired, observed, options(raised));
    assert!(within.iter().all(|p| p.refused.is_none()), "20 = 20");
}

#[test]
fn a_fleet_refusal_in_the_plan_json_says_its_scope_and_targets() {
    let desired = desired(UNTAG_ALL);
    let plans = fleet(
        &desired,
        [&covered("us-east-1", 30), &covered("eu-west-1", 30)],
        options(Ceilings {
            max_coverage_loss: 1.0,
            ..Ceilings::default()
        }),
    );
    let json = Plan { targets: plans }.to_json();
    let refused = &json["refused"];
    assert_eq!(refused["scope"], "fleet", "{refused}");
    assert_eq!(refused["limit"], MAX_CLUSTER_CHANGES);
    assert_eq!(refused["value"].as_f64(), Some(60.0));
    assert_eq!(refused["max"].as_f64(), Some(50.0));
    assert_eq!(refused["region"], "us-east-1");
    assert_eq!(
        refused["targets"],
        Value::from(vec!["us-east-1", "eu-west-1"])
    );
    assert!(refused["reason"].is_string());
}

#[test]
fn a_refusal_names_at_most_ten_targets_in_its_sentence() {
    let labels: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
    let text = named(labels.iter().map(String::as_str));
    assert!(text.starts_with("t0, t1,"), "{text}");
    assert!(text.ends_with("t9 and 15 more"), "{text}");
}

proptest! {
    /// All or nothing, and the actions never change: whatever two regions plan, after the
    /// fleet check either every plan is refused or none is.
    #[test]
    fn the_fleet_check_refuses_all_plans_or_none_and_never_changes_them(
        east in 0usize..30,
        west in 0usize..30,
        untag_east in 0usize..30,
        untag_west in 0usize..30,
        max_changes in 0u32..40,
        max_loss in prop::sample::select(vec![0.0, 0.1, 0.5, 1.0]),
    ) {
        let desired = desired(&format!(
            "clusters:\n\
             \x20 - {{match: {{namePattern: 'x*'}}, guardDutyManaged: true}}\n{}{}\
             safety: {{maxClusterChangesPerCycle: {max_changes}, maxCoverageLossFraction: {max_loss}}}\n",
            rules("us-east-1", untag_east.min(east)),
            rules("eu-west-1", untag_west.min(west)),
        ));
        let observed = [&covered("us-east-1", east), &covered("eu-west-1", west)];
        let alone: Vec<TargetPlan> = observed
            .iter()
            .map(|o| plan_target(&desired, o, options(Ceilings::OPEN)))
            .collect();
        let plans = fleet(&desired, observed, options(Ceilings::OPEN));
        let refused = plans.iter().filter(|p| p.refused.is_some()).count();
        prop_assert!(refused == 0 || refused == 2, "{refused} of 2 refused");
        for (a, p) in alone.iter().zip(&plans) {
            prop_assert_eq!(&a.actions, &p.actions);
            if a.refused.is_some() {
                prop_assert_eq!(p.refused.as_ref().map(|r| r.scope), Some(Scope::Target));
            }
        }
        let changes: usize = plans.iter().map(|p| p.actions.len()).sum();
        if changes as u32 > max_changes {
            prop_assert_eq!(refused, 2);
        }
    }
}

/// Exclusion rules for the first `n` clusters of `region`.
fn rules(region: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("  - {{match: {{namePattern: 'c{i:03}', regions: [{region}]}}, guardDutyManaged: false}}\n")
        })
        .collect()
}
