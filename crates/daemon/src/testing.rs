//! Builders of synthetic passes for the unit tests.

use gec_engine::{ActionResult, Outcome, TargetPass};
use gec_model::desired::{ManagedTag, Target};
use gec_model::observed::{CoverageRecord, CoverageStatus};
use gec_model::plan::{ClusterRow, CoverageChange, Held, HoldReason, TargetRef, TaskSummary};
use gec_model::{Action, TargetPlan};

pub fn target(region: &str) -> Target {
    Target {
        region: region.into(),
        role_arn: None,
        external_id: None,
    }
}

fn target_ref(region: &str) -> TargetRef {
    TargetRef {
        region: region.into(),
        account: Some("111122223333".into()),
    }
}

pub fn redeploy(region: &str, cluster: &str, service: &str) -> Action {
    Action::RedeployService {
        target: target_ref(region),
        cluster: cluster.into(),
        cluster_arn: format!("arn:aws:ecs:{region}:111122223333:cluster/{cluster}"),
        service: service.into(),
        service_arn: format!("arn:aws:ecs:{region}:111122223333:service/{cluster}/{service}"),
        reason: "1 of 2 running tasks lack the GuardDuty agent".into(),
        not_before_ms: Some(0),
    }
}

pub fn tag(region: &str, cluster: &str) -> Action {
    Action::TagCluster {
        target: target_ref(region),
        cluster: cluster.into(),
        cluster_arn: format!("arn:aws:ecs:{region}:111122223333:cluster/{cluster}"),
        from: None,
        to: "true",
    }
}

pub fn held(region: &str, cluster: &str, service: &str, reason: HoldReason) -> Held {
    Held {
        target: target_ref(region),
        cluster: cluster.into(),
        service: service.into(),
        reason,
    }
}

/// A covered cluster; `coverage` is GuardDuty's status, `tasks` (service, standalone)
/// the tasks without the agent.
pub fn row(
    region: &str,
    cluster: &str,
    coverage: Option<&str>,
    tasks: Option<(u32, u32)>,
) -> ClusterRow {
    ClusterRow {
        target: target_ref(region),
        cluster: cluster.into(),
        desired: Some(ManagedTag::True),
        observed: Some("true".into()),
        coverage: CoverageChange::Covered,
        guardduty: coverage.map(|status| {
            let status = CoverageStatus::from_aws(status);
            CoverageRecord {
                issue: (status != CoverageStatus::Healthy).then(|| "No agent reporting".into()),
                status,
            }
        }),
        tasks: tasks.map(|(service, standalone)| TaskSummary {
            running: 6,
            services_without_agent: u32::from(service > 0),
            service_tasks_without_agent: service,
            standalone_tasks_without_agent: standalone,
        }),
    }
}

pub fn pass(region: &str, plan: TargetPlan, results: Vec<(Action, Outcome)>) -> TargetPass {
    TargetPass {
        target: target(region),
        plan: Some(plan),
        results: results
            .into_iter()
            .map(|(action, outcome)| ActionResult { action, outcome })
            .collect(),
        error: None,
        suspended: false,
        after: None,
        events: Vec::new(),
    }
}
