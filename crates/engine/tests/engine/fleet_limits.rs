//! The safety limits across every target of a pass (issue 11): two regions against the
//! in-memory cloud, through `reconcile_fleet` as the daemon and `apply` run it. A pass
//! refused anywhere writes nothing anywhere; the file cannot raise a limit past its
//! ceiling; a target that cannot be observed holds nobody back.

use std::sync::Arc;

use crate::support::{aws_error, Call, FakeCloud, Panic};
use gec_aws::ErrorKind;
use gec_engine::{reconcile_fleet, reconcile_target, Clock, Mode, PassOptions, TargetPass};
use gec_model::desired::DesiredState;
use gec_model::observed::{ObservedCluster, ObservedDetector};
use gec_model::plan::{Ceilings, Scope, MAX_CLUSTER_CHANGES};
use gec_model::testing::{self, cluster, detector, observed_in};
use gec_model::PlanOptions;

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const MIN: i64 = 60_000;
const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";

fn desired(sections: &str) -> DesiredState {
    let text = format!("version: 1\ntargets: [{{region: {EAST}}}, {{region: {WEST}}}]\n{sections}");
    testing::desired(&text)
}

/// A cloud of `region` with these clusters (their ARNs moved to the region).
fn region(
    region: &str,
    clusters: impl IntoIterator<Item = ObservedCluster>,
    detector: ObservedDetector,
) -> FakeCloud {
    FakeCloud::new(observed_in(region).clusters(clusters).detector(detector))
}

/// `n` clusters `old-000`… carrying `GuardDutyManaged=value`.
fn old(n: usize, value: &str) -> Vec<ObservedCluster> {
    (0..n)
        .map(|i| cluster(&format!("old-{i:03}")).tagged(value))
        .collect()
}

/// Remove the tag of every `old-*` cluster.
const UNTAG_OLD: &str = "clusters: [{match: {namePattern: 'old-*'}, guardDutyManaged: absent}]\n";

/// A cloud of `region` with `n` clusters `old-000`… excluded (`GuardDutyManaged=false`),
/// Runtime Monitoring on and automation off.
fn excluded(region_name: &str, n: usize) -> Arc<FakeCloud> {
    Arc::new(region(
        region_name,
        old(n, "false"),
        detector().runtime("ENABLED").automation("DISABLED"),
    ))
}

fn options(ceilings: Ceilings, clock: Clock) -> PassOptions {
    PassOptions {
        plan: PlanOptions {
            ceilings,
            ..PlanOptions::default()
        },
        clock,
        ..PassOptions::new(Mode::Apply)
    }
}

/// One pass over both regions, east first.
async fn pass(
    desired: &DesiredState,
    east: &Arc<FakeCloud>,
    west: &Arc<FakeCloud>,
    options: PassOptions,
) -> Vec<TargetPass> {
    let clouds = vec![
        (desired.targets[0].clone(), Arc::clone(east)),
        (desired.targets[1].clone(), Arc::clone(west)),
    ];
    let passes = reconcile_fleet(clouds, Arc::new(desired.clone()), options).await;
    assert_eq!(passes.len(), 2);
    assert_eq!(
        passes[0].target.region, EAST,
        "passes keep the target order"
    );
    passes
}

fn refusal(pass: &TargetPass) -> Option<(Scope, &'static str, f64, f64)> {
    let r = pass.plan.as_ref()?.refused.as_ref()?;
    Some((r.scope, r.limit, r.value, r.max))
}

#[tokio::test]
async fn changes_under_the_limit_in_each_region_write_nothing_when_the_fleet_is_over_it() {
    // 30 exclusion tags removed in each region: under 50 in each, 60 in the pass.
    let desired = desired(UNTAG_OLD);
    let east = excluded(EAST, 30);
    let west = excluded(WEST, 30);
    let alone = reconcile_target(
        &*east,
        desired.targets[0].clone(),
        &desired,
        &PassOptions::new(Mode::Plan),
    )
    .await;
    assert_eq!(
        refusal(&alone),
        None,
        "one region alone is within the limit"
    );

    let passes = pass(
        &desired,
        &east,
        &west,
        options(Ceilings::default(), Clock::System),
    )
    .await;

    for p in &passes {
        assert_eq!(
            refusal(p),
            Some((Scope::Fleet, MAX_CLUSTER_CHANGES, 60.0, 50.0)),
            "{}",
            p.target.region
        );
        assert!(p.results.is_empty(), "{:?}", p.results);
    }
    assert_eq!(east.writes(), Vec::<Call>::new());
    assert_eq!(west.writes(), Vec::<Call>::new());
    let targets = &passes[1]
        .plan
        .as_ref()
        .unwrap()
        .refused
        .as_ref()
        .unwrap()
        .targets;
    assert_eq!(targets, &[EAST, WEST]);

    // The operator raises the ceiling where the controller runs: the same file applies.
    let raised = Ceilings {
        max_cluster_changes: 60,
        ..Ceilings::default()
    };
    let passes = pass(&desired, &east, &west, options(raised, Clock::System)).await;

    assert!(passes
        .iter()
        .all(|p| refusal(p).is_none() && p.failed_actions() == 0));
    assert_eq!(east.write_operations(), ["untag_clusters"]);
    assert_eq!(west.write_operations(), ["untag_clusters"]);
    assert_eq!(
        (east.tag_of("old-029"), west.tag_of("old-000")),
        (None, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_mass_untag_refused_in_one_region_writes_no_tag_detector_or_redeploy_in_the_other() {
    let clock = Clock::tokio_at(FRIDAY);
    let desired = desired(
        "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}
clusters:
  - {name: apps, guardDutyManaged: true}
  - {name: new-1, guardDutyManaged: false}
  - {match: {namePattern: 'old-*'}, guardDutyManaged: absent}
redeploy: {settleTime: 0s}
",
    );
    // us-east-1: 60 exclusion tags to remove, over the limit on its own.
    let east = Arc::new(region(
        EAST,
        old(60, "false"),
        detector().runtime("ENABLED").automation("ENABLED"),
    ));
    // eu-west-1: one tag, the automation switch, and a service to redeploy.
    let west = Arc::new(
        region(
            WEST,
            [cluster("apps").tagged("true"), cluster("new-1")],
            detector().runtime("ENABLED").automation("DISABLED"),
        )
        .with_fleet(clock, MIN, |fleet, now| {
            fleet.add_service("apps", "api", 2, false, true, now - 120 * MIN);
        }),
    );
    let west_alone = reconcile_target(
        &*west,
        desired.targets[1].clone(),
        &desired,
        &PassOptions {
            clock,
            ..PassOptions::new(Mode::Plan)
        },
    )
    .await;
    let kinds: Vec<&str> = west_alone
        .plan
        .as_ref()
        .unwrap()
        .actions
        .iter()
        .map(|a| a.kind())
        .collect();
    assert_eq!(
        kinds,
        ["tag_cluster", "update_detector", "redeploy_service"]
    );
    assert_eq!(refusal(&west_alone), None);

    let passes = pass(&desired, &east, &west, options(Ceilings::default(), clock)).await;

    assert_eq!(
        refusal(&passes[0]),
        Some((Scope::Target, MAX_CLUSTER_CHANGES, 60.0, 50.0))
    );
    assert_eq!(
        refusal(&passes[1]),
        Some((Scope::Fleet, MAX_CLUSTER_CHANGES, 60.0, 50.0))
    );
    assert_eq!(east.writes(), Vec::<Call>::new());
    assert_eq!(
        west.writes(),
        Vec::<Call>::new(),
        "no tag, detector or redeploy"
    );
    assert_eq!(west.tag_of("new-1"), None);
    assert_eq!(west.automation_status().as_deref(), Some("DISABLED"));

    let raised = Ceilings {
        max_cluster_changes: 100,
        ..Ceilings::default()
    };
    let passes = pass(&desired, &east, &west, options(raised, clock)).await;

    assert!(passes.iter().all(|p| refusal(p).is_none()), "{passes:?}");
    assert_eq!(east.write_operations(), ["untag_clusters"]);
    assert_eq!(
        west.write_operations(),
        ["tag_clusters", "update_detector", "redeploy_service"]
    );
}

#[tokio::test]
async fn the_files_huge_limit_is_clamped_to_the_ceiling_until_the_ceiling_is_raised() {
    // Issue 11's untag-all file: every cluster loses its tag, and the file lifts both
    // limits out of the way.
    let desired = desired(
        "unmatchedClusters: absent\n\
         safety: {maxClusterChangesPerCycle: 4294967295, maxCoverageLossFraction: 1.0}\n",
    );
    let covered = || detector().runtime("ENABLED").automation("DISABLED");
    let east = Arc::new(region(EAST, old(60, "true"), covered()));
    // eu-west-1: 5 exclusion tags to remove, within every limit on its own.
    let west = Arc::new(region(WEST, old(5, "false"), covered()));

    let passes = pass(
        &desired,
        &east,
        &west,
        options(Ceilings::default(), Clock::System),
    )
    .await;

    assert_eq!(
        refusal(&passes[0]),
        Some((Scope::Target, MAX_CLUSTER_CHANGES, 60.0, 50.0)),
        "4294967295 is clamped to the ceiling 50"
    );
    assert_eq!(refusal(&passes[1]).map(|r| r.0), Some(Scope::Fleet));
    let warnings = &passes[0].plan.as_ref().unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("4294967295")),
        "the plan says the file's value was clamped: {warnings:?}"
    );
    assert_eq!(east.writes(), Vec::<Call>::new());
    assert_eq!(west.writes(), Vec::<Call>::new());
    assert_eq!(east.tag_of("old-000").as_deref(), Some("true"));

    // Only the coverage-loss ceiling raised: 100% loss is still clamped to 20%.
    let changes_only = Ceilings {
        max_cluster_changes: 1000,
        ..Ceilings::default()
    };
    let passes = pass(&desired, &east, &west, options(changes_only, Clock::System)).await;
    assert_eq!(
        refusal(&passes[0]).map(|r| (r.1, r.3)),
        Some(("maxCoverageLossFraction", 0.2))
    );
    assert_eq!(east.writes(), Vec::<Call>::new());

    let passes = pass(
        &desired,
        &east,
        &west,
        options(Ceilings::OPEN, Clock::System),
    )
    .await;

    assert!(passes.iter().all(|p| refusal(p).is_none()));
    assert_eq!(east.write_operations(), ["untag_clusters"]);
    assert_eq!(west.write_operations(), ["untag_clusters"]);
    assert_eq!(east.tag_of("old-000"), None);
}

#[tokio::test]
async fn a_target_that_fails_to_observe_does_not_block_the_others() {
    let desired = desired(UNTAG_OLD);
    // us-east-1 would be over the limit, but it cannot be read: it contributes nothing.
    let east = excluded(EAST, 60);
    east.fail_observe_after(0, aws_error(ErrorKind::AccessDenied, "ListClusters"));
    let west = excluded(WEST, 3);

    let passes = pass(
        &desired,
        &east,
        &west,
        options(Ceilings::default(), Clock::System),
    )
    .await;

    assert!(passes[0].error.is_some() && passes[0].plan.is_none());
    assert_eq!(refusal(&passes[1]), None);
    assert_eq!(passes[1].failed_actions(), 0);
    assert_eq!(west.write_operations(), ["untag_clusters"]);
    assert_eq!(west.tag_of("old-002"), None);
    assert_eq!(east.writes(), Vec::<Call>::new());
}

#[tokio::test]
async fn allow_mass_change_lets_a_refused_fleet_through_once() {
    let desired = desired(UNTAG_OLD);
    let east = excluded(EAST, 30);
    let west = excluded(WEST, 30);
    let mut forced = options(Ceilings::default(), Clock::System);
    forced.plan.allow_mass_change = true;

    let passes = pass(&desired, &east, &west, forced).await;

    assert!(passes.iter().all(|p| refusal(p).is_none()));
    assert_eq!(east.write_operations(), ["untag_clusters"]);
    assert_eq!(west.write_operations(), ["untag_clusters"]);
}

/// A target whose pass panics (a bug, e.g. the SDK's "URL was unset" under an empty
/// `AWS_ENDPOINT_URL`) is a failed target with an error, in either stage; the other
/// target is reconciled.
#[tokio::test]
async fn a_target_whose_pass_panics_is_a_failed_target_and_the_other_goes_on() {
    let desired = desired(UNTAG_OLD);
    for at in [Panic::Observe, Panic::Tag] {
        let east = excluded(EAST, 2);
        let west = excluded(WEST, 2);
        east.panic_in(at);
        let passes = pass(
            &desired,
            &east,
            &west,
            options(Ceilings::default(), Clock::System),
        )
        .await;
        let error = passes[0]
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{at:?}: the panicked target has an error"));
        assert!(
            error.message.contains("panicked") && error.message.contains("URL was unset"),
            "{error}"
        );
        assert!(passes[1].error.is_none(), "{:?}", passes[1].error);
        assert!(
            !passes[1].results.is_empty() && passes[1].failed_actions() == 0,
            "west is untagged"
        );
    }
}
