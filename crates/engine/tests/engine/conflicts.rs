//! Tug-of-war detection against the in-memory cloud: another writer changes back what the
//! controller wrote after every pass; after `reconcile.conflicts.reverts` reverts within the
//! window the resource is a conflict, left out of the writes, until its desired value
//! changes or the conflict is reset. Paused tokio time drives the clock.

use std::time::Duration;

use crate::support::{aws_error, Call, FakeCloud};
use gec_aws::ErrorKind;
use gec_engine::{reconcile_target, Clock, Mode, PassOptions, TargetPass};
use gec_model::desired::DesiredState;
use gec_model::observed::{ECS_FARGATE_AGENT_MANAGEMENT, RUNTIME_MONITORING};
use gec_model::plan::ConflictKind;
use gec_model::testing::{self, cluster, detector, observed};

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const APPS_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/apps";

/// `apps` wants `tag`; detector as given; detection as given.
fn desired(tag: &str, detector: &str, conflicts: &str) -> DesiredState {
    testing::desired(&format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\n\
         detector: {detector}\n\
         clusters: [{{name: apps, guardDutyManaged: {tag}}}]\n\
         redeploy: {{enabled: false}}\n\
         reconcile: {{conflicts: {conflicts}}}\n"
    ))
}

fn tag_desired(tag: &str) -> DesiredState {
    desired(tag, "{}", "{reverts: 3, window: 1h}")
}

fn cloud() -> FakeCloud {
    FakeCloud::new(
        observed()
            .clusters([cluster("apps")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    )
}

fn options() -> PassOptions {
    PassOptions {
        clock: Clock::tokio_at(FRIDAY),
        ..PassOptions::new(Mode::Apply)
    }
}

/// One pass, then a minute passes.
async fn pass(cloud: &FakeCloud, desired: &DesiredState, options: &PassOptions) -> TargetPass {
    let pass = reconcile_target(cloud, desired.targets[0].clone(), desired, options).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    pass
}

fn tag_writes(cloud: &FakeCloud) -> usize {
    cloud
        .writes()
        .iter()
        .filter(|c| matches!(c, Call::TagClusters { .. } | Call::UntagClusters { .. }))
        .count()
}

fn conflicts(pass: &TargetPass) -> Vec<(ConflictKind, String, String, String, u32)> {
    pass.plan
        .iter()
        .flat_map(|p| &p.conflicts)
        .map(|c| {
            (
                c.kind,
                c.resource.clone(),
                c.desired.clone(),
                c.observed.clone(),
                c.reverts,
            )
        })
        .collect()
}

/// Passes with the other writer setting `apps` back to `false` after each, until the
/// third revert: the tag is written 3 times (the first write and two rewrites).
async fn fight_until_conflict(cloud: &FakeCloud, desired: &DesiredState, options: &PassOptions) {
    for round in 1..=3 {
        let p = pass(cloud, desired, options).await;
        assert!(conflicts(&p).is_empty(), "round {round}: no conflict yet");
        assert_eq!(
            cloud.tag_of("apps").as_deref(),
            Some("true"),
            "round {round}"
        );
        cloud.other_writer_tags("apps", Some("false"));
    }
    assert_eq!(tag_writes(cloud), 3);
}

#[tokio::test(start_paused = true)]
async fn a_tag_changed_back_after_every_pass_is_a_conflict_after_three_reverts_and_not_written_again(
) {
    let cloud = cloud();
    let desired = tag_desired("true");
    let options = options();
    fight_until_conflict(&cloud, &desired, &options).await;

    let p = pass(&cloud, &desired, &options).await;
    let expected = vec![(
        ConflictKind::Tag,
        APPS_ARN.to_owned(),
        "true".to_owned(),
        "false".to_owned(),
        3,
    )];
    assert_eq!(conflicts(&p), expected, "the third revert");
    let plan = p.plan.as_ref().unwrap();
    assert!(
        plan.actions.is_empty(),
        "its action left the plan: {plan:?}"
    );
    assert_eq!(plan.conflicts[0].cluster.as_deref(), Some("apps"));
    assert_eq!(plan.conflicts[0].principal, None);
    assert!(p.results.is_empty(), "nothing applied");
    for _ in 0..5 {
        let p = pass(&cloud, &desired, &options).await;
        assert_eq!(conflicts(&p), expected, "the conflict stands");
        assert_eq!(p.remaining(), None, "nothing written, nothing pending");
    }
    assert_eq!(tag_writes(&cloud), 3, "never written again");
    assert_eq!(cloud.tag_of("apps").as_deref(), Some("false"));
    assert_eq!(options.conflicts.current().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn changing_the_desired_value_lifts_the_hold_and_the_new_value_is_written() {
    let cloud = cloud();
    let options = options();
    fight_until_conflict(&cloud, &tag_desired("true"), &options).await;
    assert_eq!(
        conflicts(&pass(&cloud, &tag_desired("true"), &options).await).len(),
        1
    );

    let p = pass(&cloud, &tag_desired("absent"), &options).await;
    assert!(
        conflicts(&p).is_empty(),
        "a new desired value ends the conflict"
    );
    assert_eq!(cloud.tag_of("apps"), None, "and it is written");
    assert!(options.conflicts.current().is_empty());

    // Back to `true`: our own untag and re-tag are no reverts.
    cloud.other_writer_tags("apps", Some("false"));
    let p = pass(&cloud, &tag_desired("true"), &options).await;
    assert!(conflicts(&p).is_empty());
    assert_eq!(cloud.tag_of("apps").as_deref(), Some("true"));
}

#[tokio::test(start_paused = true)]
async fn a_reset_lifts_the_hold_and_the_count_starts_again() {
    let cloud = cloud();
    let desired = tag_desired("true");
    let options = options();
    fight_until_conflict(&cloud, &desired, &options).await;
    assert_eq!(conflicts(&pass(&cloud, &desired, &options).await).len(), 1);

    let other = options.conflicts.reset(
        Some("arn:aws:ecs:us-east-1:123456789012:cluster/other"),
        FRIDAY,
    );
    assert!(other.ended.is_empty(), "another resource: nothing reset");
    assert_eq!(
        options.conflicts.last_reset(),
        None,
        "a reset that ended nothing is not the last reset"
    );
    let reset = options.conflicts.reset(None, FRIDAY);
    assert_eq!(reset.ended.len(), 1);
    assert_eq!(reset.ended[0].resource, APPS_ARN);
    assert_eq!(options.conflicts.last_reset(), Some(reset.clone()));
    options.conflicts.reset(Some(APPS_ARN), FRIDAY + 1);
    assert_eq!(
        options.conflicts.last_reset(),
        Some(reset),
        "a 404 reset keeps the last one that ended something"
    );

    let p = pass(&cloud, &desired, &options).await;
    assert!(conflicts(&p).is_empty());
    assert_eq!(
        cloud.tag_of("apps").as_deref(),
        Some("true"),
        "written again"
    );
    assert_eq!(tag_writes(&cloud), 4);
    // Three fresh reverts make it a conflict again.
    for _ in 0..2 {
        cloud.other_writer_tags("apps", Some("false"));
        assert!(conflicts(&pass(&cloud, &desired, &options).await).is_empty());
    }
    cloud.other_writer_tags("apps", Some("false"));
    assert_eq!(conflicts(&pass(&cloud, &desired, &options).await).len(), 1);
    assert_eq!(tag_writes(&cloud), 6);
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_retried_every_pass_is_no_revert() {
    let cloud = cloud();
    let desired = tag_desired("true");
    let options = options();
    // One successful write, one revert, then every write fails.
    pass(&cloud, &desired, &options).await;
    cloud.other_writer_tags("apps", Some("false"));
    cloud.fail_arn(APPS_ARN, aws_error(ErrorKind::Throttled, "TagResources"));
    for _ in 0..6 {
        let p = pass(&cloud, &desired, &options).await;
        assert!(
            conflicts(&p).is_empty(),
            "a retry of a failed write is not a revert"
        );
    }
    assert_eq!(tag_writes(&cloud), 7, "retried every pass");
    cloud.heal();
    let p = pass(&cloud, &desired, &options).await;
    assert!(conflicts(&p).is_empty());
    assert_eq!(cloud.tag_of("apps").as_deref(), Some("true"));
}

#[tokio::test(start_paused = true)]
async fn reverts_further_apart_than_the_window_never_make_a_conflict() {
    let cloud = cloud();
    let desired = tag_desired("true");
    let options = options();
    for _ in 0..6 {
        let p = pass(&cloud, &desired, &options).await;
        assert!(conflicts(&p).is_empty());
        cloud.other_writer_tags("apps", None);
        tokio::time::advance(Duration::from_secs(40 * 60)).await;
    }
    assert_eq!(tag_writes(&cloud), 6, "every revert repaired");
}

#[tokio::test(start_paused = true)]
async fn with_reverts_zero_the_controller_rewrites_every_time() {
    let cloud = cloud();
    let desired = desired("true", "{}", "{reverts: 0}");
    let options = options();
    for _ in 0..6 {
        assert!(conflicts(&pass(&cloud, &desired, &options).await).is_empty());
        cloud.other_writer_tags("apps", Some("false"));
    }
    assert_eq!(tag_writes(&cloud), 6);
    assert_eq!(options.conflicts.remembered(), 0, "nothing remembered");
}

#[tokio::test(start_paused = true)]
async fn a_detector_feature_in_conflict_is_left_out_of_the_update_detector_call() {
    let cloud = cloud();
    let desired = desired(
        "true",
        "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}",
        "{reverts: 2, window: 1h}",
    );
    let options = options();
    for _ in 0..2 {
        let p = pass(&cloud, &desired, &options).await;
        assert!(conflicts(&p).is_empty());
        assert_eq!(cloud.automation_status().as_deref(), Some("ENABLED"));
        cloud.other_writer_detector(ECS_FARGATE_AGENT_MANAGEMENT, "DISABLED");
    }
    let p = pass(&cloud, &desired, &options).await;
    assert_eq!(
        conflicts(&p),
        [(
            ConflictKind::Detector,
            format!("{}/{ECS_FARGATE_AGENT_MANAGEMENT}", detector().id),
            "ENABLED".to_owned(),
            "DISABLED".to_owned(),
            2
        )]
    );
    // Someone also turns Runtime Monitoring off: it is written, the feature in conflict
    // is not.
    cloud.other_writer_detector(RUNTIME_MONITORING, "DISABLED");
    let before = cloud.writes().len();
    let p = pass(&cloud, &desired, &options).await;
    assert_eq!(conflicts(&p).len(), 1);
    let writes = cloud.writes().split_off(before);
    let sent: Vec<Vec<(String, String)>> = writes
        .into_iter()
        .filter_map(|c| match c {
            Call::UpdateDetector { changes, .. } => Some(changes),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [vec![(RUNTIME_MONITORING.to_owned(), "ENABLED".to_owned())]]
    );
    assert_eq!(cloud.automation_status().as_deref(), Some("DISABLED"));
}

#[tokio::test(start_paused = true)]
async fn an_exclusion_tag_in_conflict_holds_turning_automation_on() {
    let cloud = cloud();
    let desired = desired(
        "false",
        "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}",
        "{reverts: 2, window: 1h}",
    );
    // Each exclusion the other writer removes is coverage the next pass takes away again:
    // past the coverage-loss limit, which would refuse the repair.
    let mut options = options();
    options.plan.allow_mass_change = true;
    for _ in 0..2 {
        let p = pass(&cloud, &desired, &options).await;
        assert!(conflicts(&p).is_empty());
        cloud.other_writer_tags("apps", None);
    }
    // The exclusion is in conflict; someone also turns automation off.
    cloud.other_writer_detector(ECS_FARGATE_AGENT_MANAGEMENT, "DISABLED");
    let before = cloud.writes().len();
    let p = pass(&cloud, &desired, &options).await;
    assert_eq!(conflicts(&p).len(), 1);
    assert!(
        cloud.writes().len() == before,
        "automation stays off while apps is not excluded: {:?}",
        cloud.writes()
    );
    let plan = p.plan.as_ref().unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("exclusion tag of apps is in conflict")),
        "{:?}",
        plan.warnings
    );
    assert_eq!(cloud.automation_status().as_deref(), Some("DISABLED"));
}

#[tokio::test(start_paused = true)]
async fn a_conflict_ends_when_aws_holds_the_desired_value_again() {
    let cloud = cloud();
    let desired = tag_desired("true");
    let options = options();
    fight_until_conflict(&cloud, &desired, &options).await;
    assert_eq!(conflicts(&pass(&cloud, &desired, &options).await).len(), 1);
    // The other writer gives in.
    cloud.other_writer_tags("apps", Some("true"));
    let p = pass(&cloud, &desired, &options).await;
    assert!(conflicts(&p).is_empty());
    assert!(options.conflicts.current().is_empty());
    assert_eq!(tag_writes(&cloud), 3);
}

#[tokio::test(start_paused = true)]
async fn while_a_detector_setting_is_in_conflict_no_redeploy_starts_in_its_target() {
    // Automation is wanted on, another writer keeps turning it off: the planner counts
    // the cluster as covered (the desired settings), so it wants to redeploy `api`,
    // whose tasks lack the agent; with automation held off that redeploy would bring
    // no agent, and the next pass would redeploy again.
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = FakeCloud::new(
        observed()
            .clusters([cluster("apps").tagged("true")])
            .detector(detector().runtime("ENABLED").automation("DISABLED")),
    )
    .with_fleet(clock, 60_000, |f, now| {
        f.add_service("apps", "api", 2, false, true, now - 120 * 60_000)
    });
    let desired = testing::desired(
        "version: 1\ntargets: [{region: us-east-1}]\n\
         detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
         clusters: [{name: apps, guardDutyManaged: true}]\n\
         redeploy: {settleTime: 1h}\n\
         reconcile: {conflicts: {reverts: 2, window: 1d}}\n",
    );
    let options = PassOptions {
        clock,
        ..PassOptions::new(Mode::Apply)
    };
    // Two passes write automation on (the settle time keeps redeploys back meanwhile);
    // the other writer turns it off after each.
    for _ in 0..2 {
        let p = pass(&cloud, &desired, &options).await;
        assert!(conflicts(&p).is_empty());
        cloud.other_writer_detector(ECS_FARGATE_AGENT_MANAGEMENT, "DISABLED");
    }
    // Past the settle time: the redeploy would be due, but the setting is in conflict.
    tokio::time::advance(Duration::from_secs(3600)).await;
    let p = pass(&cloud, &desired, &options).await;
    assert_eq!(conflicts(&p).len(), 1, "{:?}", p.plan);
    let redeploys = cloud.fleet(|f| f.service("apps", "api").redeploys);
    assert_eq!(redeploys, 0, "no redeploy while the setting is in conflict");
    let plan = p.plan.as_ref().unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("redeploys in this target wait")),
        "{:?}",
        plan.warnings
    );
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, gec_model::Action::RedeployService { .. })));
}
