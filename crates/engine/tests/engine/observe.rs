//! What a pass reads (issue 13): GuardDuty's coverage before the workloads, preflight for
//! the services of covered clusters that lack a running agent, and offboarding reads of
//! clusters whose coverage is off, until one finds no task with the agent.

use std::sync::Arc;

use crate::support::{Call, FakeCloud};
use gec_engine::{reconcile_target, Clock, Mode, PassOptions, TargetPass};
use gec_model::desired::DesiredState;
use gec_model::observed::{Preflight, PreflightCode, PreflightFinding};
use gec_model::testing::{self, cluster, detector, observed};
use gec_model::PlanOptions;

const MIN: i64 = 60_000;

fn desired(apps: &str) -> DesiredState {
    testing::desired(&format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters: [{{name: apps, guardDutyManaged: {apps}}}, {{name: web, guardDutyManaged: true}}]\n\
         redeploy: {{settleTime: 0s}}\n"
    ))
}

/// `apps` and `web`, both tagged `apps_tag`/`true`, automation on. `apps` runs `old`
/// (2 tasks without the agent), `new` (2 with it); `web` runs `site` (1 with the agent).
fn cloud(clock: Clock, apps_tag: &str) -> Arc<FakeCloud> {
    Arc::new(
        FakeCloud::new(
            observed()
                .clusters([
                    cluster("apps").tagged(apps_tag),
                    cluster("web").tagged("true"),
                ])
                .detector(detector().runtime("ENABLED").automation("ENABLED")),
        )
        .with_fleet(clock, MIN, |fleet, now| {
            fleet.add_service("apps", "old", 2, false, true, now - 120 * MIN);
            fleet.add_service("apps", "new", 2, true, true, now - 60 * MIN);
            fleet.add_service("web", "site", 1, true, true, now - 60 * MIN);
        }),
    )
}

async fn pass(
    cloud: &FakeCloud,
    desired: &DesiredState,
    options: &PassOptions,
) -> (TargetPass, Vec<Call>) {
    let before = cloud.calls().len();
    let pass = reconcile_target(cloud, desired.targets[0].clone(), desired, options).await;
    assert!(pass.error.is_none(), "{:?}", pass.error);
    (pass, cloud.calls().split_off(before))
}

fn reads(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| {
            matches!(
                c,
                Call::ListCoverage
                    | Call::ObserveWorkload(_)
                    | Call::ObserveOffboarding(_)
                    | Call::Preflight(..)
            )
        })
        .cloned()
        .collect()
}

fn workload(name: &str) -> Call {
    Call::ObserveWorkload(name.into())
}

fn offboarding(name: &str) -> Call {
    Call::ObserveOffboarding(name.into())
}

fn preflight(cluster: &str, service: &str) -> Call {
    Call::Preflight(cluster.into(), service.into())
}

#[tokio::test(start_paused = true)]
async fn coverage_is_read_first_then_workloads_then_preflight_of_services_lacking_the_agent() {
    let clock = Clock::tokio_at(1_795_737_600_000);
    let cloud = cloud(clock, "true");
    let options = PassOptions {
        clock,
        ..PassOptions::new(Mode::Plan)
    };
    let (_, calls) = pass(&cloud, &desired("true"), &options).await;
    assert_eq!(
        reads(&calls),
        [
            Call::ListCoverage,
            workload("apps"),
            preflight("apps", "old"),
            workload("web"),
        ],
        "only `old` lacks a running agent; `new` and `site` run it"
    );
}

#[tokio::test(start_paused = true)]
async fn preflight_is_asked_every_pass_for_each_service_lacking_the_agent() {
    // The planner decides holds; here only the wiring: each pass asks again (the adapter
    // caches the answers), whatever the answer.
    let clock = Clock::tokio_at(1_795_737_600_000);
    let cloud = cloud(clock, "true");
    cloud.fleet(|f| {
        f.service("apps", "old").preflight = Some(Preflight::Failed(vec![PreflightFinding {
            code: PreflightCode::PlatformVersion,
            detail: "platform version 1.3.0".into(),
        }]))
    });
    let options = PassOptions {
        clock,
        ..PassOptions::new(Mode::Plan)
    };
    for _ in 0..2 {
        let (_, calls) = pass(&cloud, &desired("true"), &options).await;
        let asked: Vec<Call> = calls
            .into_iter()
            .filter(|c| matches!(c, Call::Preflight(..)))
            .collect();
        assert_eq!(asked, [preflight("apps", "old")]);
    }
}

#[tokio::test(start_paused = true)]
async fn offboarding_reads_stop_once_a_read_finds_no_agent_until_coverage_is_on_again() {
    let clock = Clock::tokio_at(1_795_737_600_000);
    let cloud = cloud(clock, "true");
    // Turning one of two clusters off is over the default coverage-loss limit.
    let options = PassOptions {
        clock,
        plan: PlanOptions {
            allow_mass_change: true,
            ..PlanOptions::default()
        },
        ..PassOptions::new(Mode::Apply)
    };
    // The rule turns `apps` off: it is read for its agent tasks, without preflight.
    let (_, calls) = pass(&cloud, &desired("false"), &options).await;
    assert_eq!(
        reads(&calls),
        [Call::ListCoverage, offboarding("apps"), workload("web")],
        "coverage lost: offboarding read, no preflight"
    );
    assert_eq!(cloud.tag_of("apps").as_deref(), Some("false"));
    // Off now, `new` still carries the agent: read again.
    let (_, calls) = pass(&cloud, &desired("false"), &options).await;
    assert!(reads(&calls).contains(&offboarding("apps")));
    // Its tasks are replaced without the agent (as a redeploy while excluded does).
    cloud.fleet(|f| {
        for t in &mut f.service("apps", "new").tasks {
            t.has_agent = false;
        }
    });
    let (_, calls) = pass(&cloud, &desired("false"), &options).await;
    assert!(
        reads(&calls).contains(&offboarding("apps")),
        "the read that finds none"
    );
    for _ in 0..3 {
        let (_, calls) = pass(&cloud, &desired("false"), &options).await;
        assert_eq!(
            reads(&calls),
            [Call::ListCoverage, workload("web")],
            "no new task gets the agent while coverage is off: not read again"
        );
    }
    // Coverage on again, then off again: the cluster is read for offboarding again.
    let (_, calls) = pass(&cloud, &desired("true"), &options).await;
    assert!(reads(&calls).contains(&workload("apps")));
    assert_eq!(cloud.tag_of("apps").as_deref(), Some("true"));
    let (_, calls) = pass(&cloud, &desired("false"), &options).await;
    assert!(reads(&calls).contains(&offboarding("apps")));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_off_without_running_tasks_is_not_read() {
    let clock = Clock::tokio_at(1_795_737_600_000);
    let cloud = cloud(clock, "false");
    cloud.fleet(|f| {
        f.service("apps", "old").tasks.clear();
        f.service("apps", "new").tasks.clear();
    });
    let options = PassOptions {
        clock,
        ..PassOptions::new(Mode::Plan)
    };
    let (_, calls) = pass(&cloud, &desired("false"), &options).await;
    assert_eq!(reads(&calls), [Call::ListCoverage, workload("web")]);
}
