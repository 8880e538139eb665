//! The engine against an in-memory cloud (`support::FakeCloud`): phase order, failure
//! rules, safety limits, suspend and plan modes, idempotence and the observed scope.
//! Coverage invariants are checked at every instant: before the first write and after
//! each one.

use crate::support::{aws_error, Call, FakeCloud};
use gec_aws::{ClusterScope, ErrorKind};
use gec_engine::{
    apply_plan, observe_scope, reconcile_target, Mode, Outcome, PassOptions, Skip, TargetPass,
};
use gec_model::desired::DesiredState;
use gec_model::observed::{ECS_FARGATE_AGENT_MANAGEMENT, RUNTIME_MONITORING};
use gec_model::testing::{arn, cluster, desired_with as desired, detector, observed, DETECTOR_ID};
use gec_model::{plan_target, Action, PlanOptions};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn options(mode: Mode, allow_mass_change: bool) -> PassOptions {
    PassOptions {
        plan: PlanOptions {
            allow_mass_change,
            ..PlanOptions::default()
        },
        max_concurrent_targets: 1,
        ..PassOptions::new(mode)
    }
}

async fn pass(cloud: &FakeCloud, desired: &DesiredState, options: PassOptions) -> TargetPass {
    reconcile_target(cloud, desired.targets[0].clone(), desired, &options).await
}

async fn apply(cloud: &FakeCloud, desired: &DesiredState) -> TargetPass {
    pass(cloud, desired, options(Mode::Apply, false)).await
}

/// One word per action: `tag sandbox false`, `untag legacy`,
/// `detector ECS_FARGATE_AGENT_MANAGEMENT ENABLED`.
fn describe(action: &Action) -> String {
    match action {
        Action::TagCluster { cluster, to, .. } => format!("tag {cluster} {to}"),
        Action::UntagCluster { cluster, .. } => format!("untag {cluster}"),
        Action::UpdateDetector { feature, to, .. } => format!("detector {feature} {to}"),
        Action::UpdateOrganizationConfiguration { feature, to, .. } => {
            format!("organization {feature} {}", to.as_aws())
        }
        Action::RedeployService {
            cluster, service, ..
        } => format!("redeploy {cluster}/{service}"),
    }
}

/// What became of each applied action, by its description.
fn outcomes(pass: &TargetPass) -> Vec<(String, Outcome)> {
    pass.results
        .iter()
        .map(|r| (describe(&r.action), r.outcome.clone()))
        .collect()
}

fn tag_call(names: &[&str], value: &str) -> Call {
    Call::TagClusters {
        arns: names.iter().map(|n| arn(n)).collect(),
        value: value.to_owned(),
    }
}

fn detector_call(changes: &[(&str, &str)]) -> Call {
    Call::UpdateDetector {
        detector_id: DETECTOR_ID.to_owned(),
        changes: changes
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect(),
    }
}

/// Panics unless `name` has coverage `covered` at every recorded instant.
fn assert_coverage_at_every_instant(cloud: &FakeCloud, name: &str, covered: bool) {
    for (instant, coverage) in cloud.coverage_history().iter().enumerate() {
        assert_eq!(
            coverage.get(name),
            Some(&covered),
            "coverage of {name} at instant {instant} (0 = before any write), writes {:?}",
            cloud.write_operations()
        );
    }
}

fn final_coverage(cloud: &FakeCloud, name: &str) -> bool {
    let history = cloud.coverage_history();
    history.last().and_then(|c| c.get(name)).copied() == Some(true)
}

// ---------------------------------------------------------------------------------------
// Phase order and coverage at every instant
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn exclusion_tags_are_written_before_automation_is_enabled() {
    let desired = desired(
        "
detector:
  runtimeMonitoring: enabled
  ecsFargateAgentManagement: enabled
clusters:
  - match: {namePattern: 'sandbox-*'}
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([
                cluster("sandbox-a"),
                cluster("sandbox-b"),
                cluster("payments"),
            ])
            .detector(detector().runtime("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 0, "{:?}", outcomes(&pass));
    assert_eq!(
        cloud.writes(),
        vec![
            tag_call(&["sandbox-a", "sandbox-b"], "false"),
            detector_call(&[
                (RUNTIME_MONITORING, "ENABLED"),
                (ECS_FARGATE_AGENT_MANAGEMENT, "ENABLED")
            ]),
        ]
    );
    assert_coverage_at_every_instant(&cloud, "sandbox-a", false);
    assert_coverage_at_every_instant(&cloud, "sandbox-b", false);
    // Automation really is on by the end: the cluster no rule names is covered.
    assert_eq!(
        cloud.runtime_monitoring_status().as_deref(),
        Some("ENABLED")
    );
    assert!(final_coverage(&cloud, "payments"));
}

#[tokio::test]
async fn disabling_automation_while_including_clusters_tags_them_true_first() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: disabled
clusters:
  - match: {namePattern: 'payments-*'}
    guardDutyManaged: true
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("payments-api"), cluster("payments-db")])
            .detector(detector().runtime("ENABLED").automation("ENABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 0, "{:?}", outcomes(&pass));
    assert_eq!(
        cloud.writes(),
        vec![
            tag_call(&["payments-api", "payments-db"], "true"),
            detector_call(&[(ECS_FARGATE_AGENT_MANAGEMENT, "DISABLED")]),
        ]
    );
    assert_coverage_at_every_instant(&cloud, "payments-api", true);
    assert_coverage_at_every_instant(&cloud, "payments-db", true);
    assert_eq!(cloud.automation_status().as_deref(), Some("DISABLED"));
}

#[tokio::test]
async fn absent_untags_happen_after_the_detector_change() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - name: legacy
    guardDutyManaged: absent
",
    );
    // Covered by its inclusion tag now; covered by automation once the plan is applied.
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("legacy").tagged("true")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 0, "{:?}", outcomes(&pass));
    assert_eq!(
        cloud.writes(),
        vec![
            detector_call(&[(ECS_FARGATE_AGENT_MANAGEMENT, "ENABLED")]),
            Call::UntagClusters {
                arns: vec![arn("legacy")]
            },
        ]
    );
    assert_coverage_at_every_instant(&cloud, "legacy", true);
    assert_eq!(cloud.tag_of("legacy"), None);
}

// ---------------------------------------------------------------------------------------
// Failures stop later phases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_exclusion_tag_skips_the_detector_and_untag_phases() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - match: {namePattern: 'sandbox-*'}
    guardDutyManaged: false
  - name: legacy
    guardDutyManaged: absent
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([
                cluster("sandbox-a"),
                cluster("sandbox-b"),
                cluster("sandbox-c"),
                cluster("legacy").tagged("true"),
            ])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );
    let denied = aws_error(ErrorKind::AccessDenied, "TagResources");
    cloud.fail_arn(&arn("sandbox-b"), denied.clone());

    let pass = apply(&cloud, &desired).await;

    assert_eq!(cloud.write_operations(), vec!["tag_clusters"]);
    assert_eq!(cloud.tag_of("sandbox-a").as_deref(), Some("false"));
    assert_eq!(cloud.tag_of("sandbox-b"), None);
    assert_eq!(cloud.tag_of("sandbox-c").as_deref(), Some("false"));
    assert_eq!(cloud.tag_of("legacy").as_deref(), Some("true"));
    assert_eq!(
        outcomes(&pass),
        vec![
            ("tag sandbox-a false".to_owned(), Outcome::Success),
            ("tag sandbox-b false".to_owned(), Outcome::Failed(denied)),
            ("tag sandbox-c false".to_owned(), Outcome::Success),
            (
                format!("detector {ECS_FARGATE_AGENT_MANAGEMENT} ENABLED"),
                Outcome::Skipped(Skip::AfterFailure)
            ),
            (
                "untag legacy".to_owned(),
                Outcome::Skipped(Skip::AfterFailure)
            ),
        ]
    );
    assert_eq!(pass.failed_actions(), 1);
    assert_eq!(pass.error, None);
    // The check after the writes still finds the failed tag, the detector and the untag pending.
    assert_eq!(pass.remaining(), Some(3));
    for name in ["sandbox-a", "sandbox-b", "sandbox-c"] {
        assert_coverage_at_every_instant(&cloud, name, false);
    }
}

#[tokio::test]
async fn a_failed_inclusion_tag_keeps_automation_on() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: disabled
clusters:
  - match: {namePattern: 'payments-*'}
    guardDutyManaged: true
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("payments-api"), cluster("payments-db")])
            .detector(detector().runtime("ENABLED").automation("ENABLED")),
    );
    cloud.fail_arn(
        &arn("payments-db"),
        aws_error(ErrorKind::Throttled, "TagResources"),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 1, "{:?}", outcomes(&pass));
    assert_eq!(cloud.write_operations(), vec!["tag_clusters"]);
    assert_eq!(cloud.automation_status().as_deref(), Some("ENABLED"));
    assert_coverage_at_every_instant(&cloud, "payments-db", true);
}

#[tokio::test]
async fn a_failed_detector_update_skips_the_untag_phase() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - name: legacy
    guardDutyManaged: absent
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("legacy").tagged("true")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );
    let throttled = aws_error(ErrorKind::Throttled, "UpdateDetector");
    cloud.fail_update_detector(throttled.clone());

    let pass = apply(&cloud, &desired).await;

    assert_eq!(cloud.write_operations(), vec!["update_detector"]);
    assert_eq!(
        outcomes(&pass),
        vec![
            (
                format!("detector {ECS_FARGATE_AGENT_MANAGEMENT} ENABLED"),
                Outcome::Failed(throttled)
            ),
            (
                "untag legacy".to_owned(),
                Outcome::Skipped(Skip::AfterFailure)
            ),
        ]
    );
    assert_eq!(pass.failed_actions(), 1);
    assert_eq!(cloud.tag_of("legacy").as_deref(), Some("true"));
    assert_eq!(cloud.automation_status().as_deref(), Some("DISABLED"));
    assert_coverage_at_every_instant(&cloud, "legacy", true);
}

#[tokio::test]
async fn a_pass_after_a_failed_exclusion_tag_finishes_the_job_once_the_failure_clears() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - match: {namePattern: 'sandbox-*'}
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("sandbox-a"), cluster("sandbox-b")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );
    cloud.fail_arn(
        &arn("sandbox-b"),
        aws_error(ErrorKind::Transient, "TagResources"),
    );
    let first = apply(&cloud, &desired).await;
    assert_eq!(first.failed_actions(), 1);
    cloud.heal();

    let second = apply(&cloud, &desired).await;

    assert_eq!(second.failed_actions(), 0, "{:?}", outcomes(&second));
    assert_eq!(second.remaining(), Some(0));
    assert_eq!(
        cloud.writes(),
        vec![
            tag_call(&["sandbox-a", "sandbox-b"], "false"),
            tag_call(&["sandbox-b"], "false"),
            detector_call(&[(ECS_FARGATE_AGENT_MANAGEMENT, "ENABLED")]),
        ]
    );
    assert_coverage_at_every_instant(&cloud, "sandbox-b", false);
}

// ---------------------------------------------------------------------------------------
// Passes that must not write
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_plan_over_the_cluster_change_limit_writes_nothing_until_mass_change_is_allowed() {
    let desired = desired(
        "
clusters:
  - match: {namePattern: 'svc-*'}
    guardDutyManaged: true
safety:
  maxClusterChangesPerCycle: 2
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("svc-a"), cluster("svc-b"), cluster("svc-c")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let refused = apply(&cloud, &desired).await;

    let plan = refused.plan.as_ref().expect("a plan");
    let refusal = plan.refused.as_ref().expect("the plan is refused");
    assert_eq!(refusal.limit, "maxClusterChangesPerCycle");
    assert_eq!(plan.actions.len(), 3);
    assert_eq!(cloud.writes(), Vec::<Call>::new());
    assert!(refused.results.is_empty());
    assert_eq!(refused.remaining(), None);

    let allowed = pass(&cloud, &desired, options(Mode::Apply, true)).await;

    assert_eq!(allowed.plan.as_ref().and_then(|p| p.refused.as_ref()), None);
    assert_eq!(allowed.failed_actions(), 0);
    assert_eq!(allowed.remaining(), Some(0));
    assert_eq!(
        cloud.writes(),
        vec![tag_call(&["svc-a", "svc-b", "svc-c"], "true")]
    );
}

/// `reconcile_target` never hands a refused plan to `apply_plan`; `apply_plan` refuses it
/// on its own too, since it is public.
#[tokio::test]
async fn apply_plan_skips_every_action_of_a_refused_plan() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - match: {namePattern: 'svc-*'}
    guardDutyManaged: false
safety:
  maxClusterChangesPerCycle: 1
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("svc-a"), cluster("svc-b")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );
    let plan = plan_target(&desired, &cloud.observed(), PlanOptions::default());
    assert!(plan.refused.is_some());

    let results = apply_plan(&cloud, &plan).await;

    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Skipped(_))),
        "{results:?}"
    );
    assert_eq!(cloud.writes(), Vec::<Call>::new());
}

#[tokio::test]
async fn a_plan_that_loses_too_much_coverage_writes_nothing() {
    let desired = desired(
        "
clusters:
  - match: {namePattern: '*'}
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("a"), cluster("b"), cluster("c")])
            .detector(detector().runtime("ENABLED").automation("ENABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    let refusal = pass.plan.as_ref().and_then(|p| p.refused.as_ref());
    assert_eq!(refusal.map(|r| r.limit), Some("maxCoverageLossFraction"));
    assert_eq!(cloud.writes(), Vec::<Call>::new());
    assert_coverage_at_every_instant(&cloud, "a", true);
}

#[tokio::test]
async fn suspend_writes_nothing_and_marks_the_pass_suspended() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - name: sandbox
    guardDutyManaged: false
suspend: true
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("sandbox")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let before = cloud.observed();

    let pass = apply(&cloud, &desired).await;

    assert!(pass.suspended);
    assert_eq!(pass.plan.as_ref().map(|p| p.actions.len()), Some(2));
    assert!(pass.results.is_empty());
    assert_eq!(pass.remaining(), None);
    assert_eq!(cloud.writes(), Vec::<Call>::new());
    assert_eq!(cloud.observed(), before);
}

#[tokio::test]
async fn plan_mode_writes_nothing() {
    let desired = desired(
        "
detector:
  ecsFargateAgentManagement: enabled
clusters:
  - name: sandbox
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("sandbox")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let before = cloud.observed();

    let pass = pass(&cloud, &desired, options(Mode::Plan, false)).await;

    assert!(!pass.suspended);
    assert_eq!(pass.plan.as_ref().map(|p| p.actions.len()), Some(2));
    assert!(pass.results.is_empty());
    assert_eq!(pass.remaining(), None);
    assert_eq!(cloud.writes(), Vec::<Call>::new());
    assert_eq!(cloud.observed(), before);
}

#[tokio::test]
async fn an_observe_failure_is_reported_and_nothing_is_written() {
    let desired = desired(
        "
clusters:
  - name: sandbox
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(observed().clusters([cluster("sandbox")]));
    let throttled = aws_error(ErrorKind::Throttled, "ListClusters");
    cloud.fail_observe_after(0, throttled.clone());

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.error, Some(throttled));
    assert_eq!(pass.plan, None);
    assert!(pass.results.is_empty());
    assert_eq!(pass.failed_actions(), 0);
    assert_eq!(
        cloud.calls(),
        vec![Call::Observe(ClusterScope::Named(vec![
            "sandbox".to_owned()
        ]))]
    );
}

/// Apply's check reads nothing again (issue 12): the writes' own answers say what took,
/// so a read that would fail after the writes is never made, and what is left is what
/// failed.
#[tokio::test]
async fn after_an_apply_the_remainder_comes_from_the_writes_answers_not_another_read() {
    let desired = desired(
        "
detector:
  runtimeMonitoring: enabled
  ecsFargateAgentManagement: enabled
clusters:
  - name: sandbox
    guardDutyManaged: false
  - name: payments
    guardDutyManaged: true
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("sandbox"), cluster("payments")])
            .detector(detector().runtime("DISABLED").automation("DISABLED")),
    );
    let denied = aws_error(ErrorKind::AccessDenied, "DescribeClusters");
    cloud.fail_observe_after(1, denied);
    cloud.fail_arn(
        &arn("payments"),
        aws_error(ErrorKind::Throttled, "TagResources"),
    );

    let pass = apply(&cloud, &desired).await;

    let observes = cloud
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Observe(_)))
        .count();
    assert_eq!(observes, 1, "no second observation: {:?}", cloud.calls());
    assert_eq!(pass.error, None);
    let left: Vec<String> = pass
        .after
        .as_ref()
        .expect("a check of what is left")
        .actions
        .iter()
        .map(describe)
        .collect();
    assert_eq!(
        left,
        [
            "tag payments true".to_owned(),
            format!("detector {RUNTIME_MONITORING} ENABLED"),
            format!("detector {ECS_FARGATE_AGENT_MANAGEMENT} ENABLED"),
        ],
        "the exclusion tag took; the failed tag is left, and the detector phase waited"
    );
    assert_eq!(cloud.tag_of("sandbox").as_deref(), Some("false"));
}

// ---------------------------------------------------------------------------------------
// Convergence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_pass_after_a_successful_apply_writes_nothing() {
    let desired = desired(
        "
detector:
  runtimeMonitoring: enabled
  ecsFargateAgentManagement: enabled
clusters:
  - name: sandbox
    guardDutyManaged: false
  - name: payments
    guardDutyManaged: true
  - name: legacy
    guardDutyManaged: absent
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([
                cluster("sandbox"),
                cluster("payments"),
                cluster("legacy").tagged("false"),
            ])
            .detector(detector().runtime("DISABLED").automation("DISABLED")),
    );

    let first = apply(&cloud, &desired).await;
    assert_eq!(first.failed_actions(), 0, "{:?}", outcomes(&first));
    assert_eq!(first.remaining(), Some(0));
    let writes = cloud.writes();
    assert_eq!(
        writes.iter().map(Call::operation).collect::<Vec<_>>(),
        vec![
            "tag_clusters",
            "tag_clusters",
            "update_detector",
            "untag_clusters"
        ]
    );

    let second = apply(&cloud, &desired).await;

    assert_eq!(second.plan.as_ref().map(|p| p.actions.len()), Some(0));
    assert!(second.results.is_empty());
    assert_eq!(second.error, None);
    assert_eq!(cloud.writes(), writes);
    assert_coverage_at_every_instant(&cloud, "sandbox", false);
}

#[tokio::test]
async fn inactive_clusters_are_never_written() {
    let desired = desired(
        "
clusters:
  - match: {namePattern: '*'}
    guardDutyManaged: true
",
    );
    let mut going = cluster("going");
    going.status = "INACTIVE".into();
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("staying"), going])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.remaining(), Some(0));
    assert_eq!(cloud.writes(), vec![tag_call(&["staying"], "true")]);
    assert_eq!(cloud.tag_of("going"), None);
}

// ---------------------------------------------------------------------------------------
// Observed scope
// ---------------------------------------------------------------------------------------

#[test]
fn the_scope_is_named_only_when_every_rule_is_an_exact_name_and_unmatched_clusters_are_ignored() {
    let named =
        |names: &[&str]| ClusterScope::Named(names.iter().map(|n| (*n).to_owned()).collect());
    let by_arn = arn("by-arn");
    let arn_rule = format!("clusters: [{{name: '{by_arn}', guardDutyManaged: true}}]");
    // (label, sections, scope)
    let rows: Vec<(&str, &str, ClusterScope)> = vec![
        (
            "exact names only, sorted",
            "clusters: [{name: zeta, guardDutyManaged: true}, {name: alpha, guardDutyManaged: false}]",
            named(&["alpha", "zeta"]),
        ),
        ("an ARN is an exact name", &arn_rule, named(&[by_arn.as_str()])),
        (
            "an ARN of another region is not described here",
            "clusters: [{name: 'arn:aws:ecs:eu-west-1:123456789012:cluster/x', guardDutyManaged: true}, {name: y, guardDutyManaged: true}]",
            named(&["y"]),
        ),
        ("no rules name no clusters", "detector: {runtimeMonitoring: enabled}", named(&[])),
        (
            "a match rule needs the whole account",
            "clusters: [{name: alpha, guardDutyManaged: true}, {match: {namePattern: 'b-*'}, guardDutyManaged: false}]",
            ClusterScope::All,
        ),
        (
            "unmatchedClusters absent needs the whole account",
            "clusters: [{name: alpha, guardDutyManaged: true}]\nunmatchedClusters: absent",
            ClusterScope::All,
        ),
    ];
    for (label, sections, scope) in rows {
        assert_eq!(
            observe_scope(&desired(sections), "us-east-1"),
            scope,
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_pass_observes_only_the_named_clusters_and_leaves_the_others_alone() {
    let desired = desired(
        "
clusters:
  - name: payments
    guardDutyManaged: true
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("payments"), cluster("other").tagged("false")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    let scope = ClusterScope::Named(vec!["payments".to_owned()]);
    let cluster_calls: Vec<Call> = cloud
        .calls()
        .into_iter()
        .filter(|c| !matches!(c, Call::ObserveWorkload(_) | Call::ListCoverage))
        .collect();
    assert_eq!(
        cluster_calls,
        vec![Call::Observe(scope), tag_call(&["payments"], "true")]
    );
    let rows: Vec<&str> = pass
        .plan
        .iter()
        .flat_map(|p| p.clusters.iter().map(|r| r.cluster.as_str()))
        .collect();
    assert_eq!(rows, vec!["payments"]);
    assert_eq!(cloud.tag_of("other").as_deref(), Some("false"));
}

// ---------------------------------------------------------------------------------------
// Tag batches
// ---------------------------------------------------------------------------------------

/// The engine hands the adapter every ARN of one value in a single call; splitting into
/// `gec_aws::TAG_BATCH` (20) ARNs per `TagResources` request is the adapter's job
/// (`TargetClient::tag_clusters`), tested against the sandbox, not here.
#[tokio::test]
async fn clusters_tagged_with_the_same_value_go_to_the_adapter_in_one_call() {
    let desired = desired(
        "
clusters:
  - match: {namePattern: 'svc-*'}
    guardDutyManaged: false
",
    );
    let names: Vec<String> = (0..45).map(|i| format!("svc-{i:02}")).collect();
    let cloud = FakeCloud::new(
        observed()
            .clusters(names.iter().map(|n| cluster(n)))
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 0);
    assert_eq!(pass.remaining(), Some(0));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(cloud.writes(), vec![tag_call(&names, "false")]);
}

#[tokio::test]
async fn exclusions_are_tagged_in_a_call_before_inclusions() {
    let desired = desired(
        "
clusters:
  - match: {namePattern: 'prod-*'}
    guardDutyManaged: true
  - match: {namePattern: 'dev-*'}
    guardDutyManaged: false
",
    );
    let cloud = FakeCloud::new(
        observed()
            .clusters([
                cluster("prod-a"),
                cluster("dev-a"),
                cluster("prod-b"),
                cluster("dev-b"),
            ])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    );

    let pass = apply(&cloud, &desired).await;

    assert_eq!(pass.failed_actions(), 0);
    assert_eq!(
        cloud.writes(),
        vec![
            tag_call(&["dev-a", "dev-b"], "false"),
            tag_call(&["prod-a", "prod-b"], "true"),
        ]
    );
}
