//! Every way a service deploys (issue 14), against the in-memory cloud on tokio's paused
//! clock: `ECS` services through `UpdateService`, `CODE_DEPLOY` services through a
//! CodeDeploy deployment of their group, watched like a rollout (maxConcurrent, halts,
//! restarts), `EXTERNAL` services never.

use std::sync::Arc;
use std::time::Duration;

use crate::support::driving::{Controller, FakeClouds};
use crate::support::{aws_error, covered_apps, Call, FakeCloud, RedeployFault};
use gec_aws::ErrorKind;
use gec_engine::{Clock, Outcome, Settled, Skip, TargetPass, Wait};
use gec_model::desired::DesiredState;
use gec_model::plan::HoldReason;
use gec_model::testing;
use gec_model::Action;

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const TICK: Duration = Duration::from_secs(10);

fn desired(redeploy: &str) -> DesiredState {
    testing::desired(&format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters: [{{name: apps, guardDutyManaged: true}}]\n\
         redeploy: {{settleTime: 0s, {redeploy}}}\n"
    ))
}

async fn run_for(
    c: &Controller,
    cloud: &Arc<FakeCloud>,
    d: &DesiredState,
    total: Duration,
) -> Vec<TargetPass> {
    let reports = c
        .run(FakeClouds::one(Arc::clone(cloud)), d, TICK, total, false)
        .await;
    reports.into_iter().flat_map(|r| r.passes).collect()
}

/// `svc-0` deploys with ECS, `svc-1` through CodeDeploy (group `apps/svc-1`), `svc-2` is
/// EXTERNAL; all started 2 hours ago without the agent.
fn three_controllers(clock: Clock) -> Arc<FakeCloud> {
    let cloud = covered_apps(clock, 3);
    cloud.fleet(|f| {
        f.service("apps", "svc-1").code_deploy(true);
        f.service("apps", "svc-2").external();
    });
    cloud
}

fn without_agent(cloud: &FakeCloud, service: &str) -> usize {
    cloud.fleet(|f| {
        f.service("apps", service)
            .tasks
            .iter()
            .filter(|t| !t.has_agent)
            .count()
    })
}

fn held(pass: &TargetPass) -> Vec<(String, HoldReason)> {
    pass.plan
        .as_ref()
        .map(|p| {
            p.held
                .iter()
                .map(|h| (h.service.clone(), h.reason))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn each_service_is_redeployed_through_its_own_controller_once_and_external_is_held() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = three_controllers(clock);
    let c = Controller::new(clock);
    let d = desired("maxConcurrent: 3");
    let first = c.pass(&cloud, &d).await;
    let vias: Vec<(String, String)> = first
        .results
        .iter()
        .filter_map(|r| match &r.action {
            Action::RedeployService { service, via, .. } => {
                Some((service.clone(), via.to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        vias,
        [
            ("svc-0".to_owned(), "ECS ROLLING".to_owned()),
            ("svc-1".to_owned(), "CODE_DEPLOY apps/svc-1".to_owned()),
        ]
    );
    let writes = cloud.writes();
    assert_eq!(
        writes,
        [
            Call::RedeployService("apps".into(), "svc-0".into()),
            Call::StartCodeDeploy("svc-1".into())
        ],
        "UpdateService for ECS, CreateDeployment for CODE_DEPLOY, nothing for EXTERNAL"
    );
    assert_eq!(
        held(&first),
        [("svc-2".to_owned(), HoldReason::ExternalController)]
    );
    let detail = first.plan.as_ref().unwrap().held[0].detail.clone();
    assert_eq!(
        detail.as_deref(),
        Some("its PRIMARY task set was started by deployer-1"),
        "the hold says who owns the service"
    );
    assert_eq!(c.ctx.rollouts.in_progress(), 2);
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(5 * 60)).await;
    let settled: Vec<(String, Settled, String)> = passes
        .iter()
        .flat_map(|p| &p.events)
        .map(|e| (e.service.clone(), e.state, e.status.clone()))
        .collect();
    assert!(
        settled.contains(&("svc-1".into(), Settled::Completed, "Succeeded".into())),
        "the CodeDeploy deployment is watched until Succeeded: {settled:?}"
    );
    assert_eq!(cloud.redeployed(), ["svc-0", "svc-1"], "each once");
    assert_eq!(without_agent(&cloud, "svc-0"), 0);
    assert_eq!(without_agent(&cloud, "svc-1"), 0);
    assert_eq!(
        without_agent(&cloud, "svc-2"),
        2,
        "EXTERNAL tasks untouched"
    );
    let last = passes.last().expect("passes ran");
    assert_eq!(
        held(last),
        [("svc-2".to_owned(), HoldReason::ExternalController)]
    );
    assert!(last.results.is_empty(), "converged: {:?}", last.results);
}

#[tokio::test(start_paused = true)]
async fn a_failed_codedeploy_deployment_halts_redeploys_under_stop_on_failure() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 3);
    cloud.fleet(|f| {
        let s = f.service("apps", "svc-0");
        s.code_deploy(true);
        s.fail_next = true;
    });
    let c = Controller::new(clock);
    let d = desired("maxConcurrent: 1, stopOnFailure: true");
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(30 * 60)).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0"],
        "nothing after the Failed deployment"
    );
    let halt = c.ctx.rollouts.halted().expect("halted");
    assert_eq!(halt.service, "svc-0");
    assert!(halt.deployment_id.starts_with("d-"), "{halt:?}");
    assert!(passes
        .iter()
        .flat_map(|p| &p.results)
        .any(|r| r.outcome == Outcome::Skipped(Skip::Gate(Wait::Halted))));
    assert!(passes
        .iter()
        .flat_map(|p| &p.events)
        .any(|e| e.service == "svc-0" && e.state == Settled::Failed && e.status == "Failed"));
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_a_failed_codedeploy_deployment_still_halts() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 2);
    cloud.fleet(|f| {
        let s = f.service("apps", "svc-0");
        s.code_deploy(true);
        s.fail_next = true;
    });
    let d = desired("maxConcurrent: 1, stopOnFailure: true");
    let first = Controller::new(clock);
    first.pass(&cloud, &d).await;
    drop(first);
    tokio::time::sleep(Duration::from_secs(120)).await; // it fails meanwhile
    let second = Controller::new(clock);
    run_for(&second, &cloud, &d, Duration::from_secs(10 * 60)).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0"],
        "derived from CodeDeploy: the newest deployment of the group Failed"
    );
    assert!(second.ctx.rollouts.halted().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_controller_does_not_double_an_active_codedeploy_deployment() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 2);
    cloud.fleet(|f| f.service("apps", "svc-0").code_deploy(true));
    let d = desired("maxConcurrent: 1");
    let first = Controller::new(clock);
    first.pass(&cloud, &d).await;
    assert_eq!(cloud.redeployed(), ["svc-0"]);
    drop(first); // the crash
    tokio::time::sleep(TICK).await;
    let second = Controller::new(clock);
    let passes = run_for(&second, &cloud, &d, Duration::from_secs(10 * 60)).await;
    assert_eq!(
        held(&passes[0]),
        [("svc-0".to_owned(), HoldReason::InProgress)],
        "the active deployment is seen in CodeDeploy"
    );
    assert!(
        passes[0]
            .results
            .iter()
            .all(|r| r.outcome == Outcome::Skipped(Skip::Gate(Wait::MaxConcurrent))),
        "it counts against maxConcurrent: {:?}",
        passes[0].results
    );
    assert_eq!(
        cloud.redeployed(),
        ["svc-0", "svc-1"],
        "svc-0 was not doubled"
    );
    assert_eq!(cloud.fleet(|f| f.max_in_progress), 1);
    assert_eq!(
        without_agent(&cloud, "svc-0") + without_agent(&cloud, "svc-1"),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn codedeploy_deployments_count_against_max_per_hour_after_a_restart() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 3);
    cloud.fleet(|f| f.service("apps", "svc-0").code_deploy(true));
    let d = desired("maxConcurrent: 3, maxPerHour: 2");
    let first = Controller::new(clock);
    first.pass(&cloud, &d).await;
    assert_eq!(cloud.redeployed(), ["svc-0", "svc-1"]);
    drop(first);
    tokio::time::sleep(TICK).await;
    // Both still roll (a rollout takes a minute): the restarted controller learns them
    // from AWS, the CodeDeploy one from CodeDeploy.
    let second = Controller::new(clock);
    let passes = run_for(&second, &cloud, &d, Duration::from_secs(30)).await;
    assert_eq!(cloud.redeployed(), ["svc-0", "svc-1"], "svc-2 waits");
    let results: Vec<&Outcome> = passes
        .iter()
        .flat_map(|p| &p.results)
        .map(|r| &r.outcome)
        .collect();
    assert!(
        !results.is_empty()
            && results
                .iter()
                .all(|o| **o == Outcome::Skipped(Skip::Gate(Wait::MaxPerHour))),
        "both deployments of the last hour count, with one slot free"
    );
}

#[tokio::test(start_paused = true)]
async fn codedeploy_services_without_a_group_or_readable_codedeploy_are_held() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 2);
    cloud.fleet(|f| {
        f.service("apps", "svc-0").code_deploy(false);
        let s = f.service("apps", "svc-1");
        s.code_deploy(true);
        s.codedeploy_unreadable = true;
    });
    let c = Controller::new(clock);
    let pass = c.pass(&cloud, &desired("maxConcurrent: 3")).await;
    assert_eq!(
        held(&pass),
        [
            ("svc-0".to_owned(), HoldReason::NoDeploymentGroup),
            ("svc-1".to_owned(), HoldReason::DeploymentUnknown),
        ]
    );
    assert!(cloud.writes().is_empty());
    let warnings = &pass.plan.as_ref().unwrap().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("svc-1") && w.contains("AccessDenied")),
        "{warnings:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_create_deployment_whose_answer_was_lost_is_found_and_not_sent_again() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 1);
    cloud.fleet(|f| f.service("apps", "svc-0").code_deploy(true));
    // CodeDeploy applied it, then the connection dropped.
    cloud.fail_redeploys([RedeployFault {
        lag_ms: Some(0),
        error: aws_error(ErrorKind::Transient, "CreateDeployment"),
    }]);
    let c = Controller::new(clock);
    let pass = c.pass(&cloud, &desired("maxConcurrent: 1")).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0"],
        "one CreateDeployment: the re-read found the deployment"
    );
    assert!(pass.results.iter().any(|r| r.outcome == Outcome::Success));
    let watching = c.ctx.rollouts.watching();
    assert!(
        watching.len() == 1
            && watching[0].codedeploy
            && watching[0].deployment_id.starts_with("d-"),
        "{watching:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_codedeploy_deployment_is_not_retried_before_retry_after() {
    let clock = Clock::tokio_at(FRIDAY);
    let cloud = covered_apps(clock, 1);
    cloud.fleet(|f| {
        let s = f.service("apps", "svc-0");
        s.code_deploy(true);
        s.fail_next = true;
    });
    let c = Controller::new(clock);
    // No halt: only retryAfter keeps the service from a redeploy storm. A Failed
    // CodeDeploy deployment leaves the old task set PRIMARY (hours old), so the
    // deployment's own time must count.
    let d = desired("maxConcurrent: 1, stopOnFailure: false, retryAfter: 1h");
    let passes = run_for(&c, &cloud, &d, Duration::from_secs(50 * 60)).await;
    assert_eq!(cloud.redeployed(), ["svc-0"], "once, not every pass");
    let last = passes.last().expect("passes ran");
    assert_eq!(held(last)[0].1.code(), "retry_after", "{:?}", held(last));
    run_for(&c, &cloud, &d, Duration::from_secs(15 * 60)).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0", "svc-0"],
        "retried once retryAfter has passed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_to_create_deployment_is_found_even_if_the_deployment_already_failed() {
    let clock = Clock::tokio_at(FRIDAY);
    // Deployments end as soon as the cloud next moves: before the re-read.
    let cloud = Arc::new(
        FakeCloud::new(
            testing::observed()
                .clusters([testing::cluster("apps").tagged("true")])
                .detector(testing::detector().runtime("ENABLED").automation("ENABLED")),
        )
        .with_fleet(clock, 0, |f, now| {
            f.add_service("apps", "svc-0", 2, false, true, now - 120 * 60_000);
            let s = f.service("apps", "svc-0");
            s.code_deploy(true);
            s.fail_next = true;
        }),
    );
    cloud.fail_redeploys([RedeployFault {
        lag_ms: Some(0),
        error: aws_error(ErrorKind::Transient, "CreateDeployment"),
    }]);
    let c = Controller::new(clock);
    let pass = c.pass(&cloud, &desired("maxConcurrent: 1")).await;
    assert_eq!(
        cloud.redeployed(),
        ["svc-0"],
        "the re-read found the Failed deployment: not sent again"
    );
    assert!(pass.results.iter().any(|r| r.outcome == Outcome::Success));
}
