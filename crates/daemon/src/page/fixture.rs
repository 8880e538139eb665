//! Statuses for the page's tests: one whose every name is hostile HTML, and one that
//! shows every part of the page.

use std::time::{Duration, UNIX_EPOCH};

use gec_engine::rollout::{Halt, Watch};
use gec_engine::TargetPass;
use gec_model::observed::{CoverageRecord, PreflightCode};
use gec_model::plan::{Conflict, ConflictKind, CoverageChange, HoldReason, TaskSummary};
use gec_model::testing::{held, redeploy, row, tag, target, target_ref, ACCOUNT};
use gec_model::TargetPlan;

use crate::status::Status;

/// A script that would retitle the page if it ran.
pub const SCRIPT: &str = "<script>document.title='pwned'</script>";
/// An attribute break-out that would load an image and run its handler.
pub const IMG: &str = "\"><img src=x onerror=\"document.title='pwned'\">";

/// The hostile text: both attacks in one string.
pub fn hostile_text() -> String {
    format!("{SCRIPT}{IMG}")
}

/// A status whose cluster, target (region and role), service, warning, conflict, held
/// reason detail and config error are all [`hostile_text`]. AWS allows none of them in
/// a cluster name; the page must not trust that.
pub fn hostile() -> Status {
    let bad = hostile_text();
    let region = format!("us-east-1{bad}");
    let mut cluster = row(&region, &bad);
    cluster.observed = Some(bad.clone());
    cluster.guardduty = Some(CoverageRecord {
        status: gec_model::observed::CoverageStatus::Other(bad.clone()),
        issue: Some(bad.clone()),
        management_type: Some(bad.clone()),
        fargate_issues: vec![bad.clone()],
    });
    let plan = TargetPlan {
        actions: vec![
            tag(&region, &bad),
            redeploy(&region, &bad, &bad).reason(&bad),
        ],
        clusters: vec![cluster],
        warnings: vec![bad.clone()],
        held: vec![held(&region, &bad, &bad, HoldReason::Disabled).detail(&bad)],
        ..TargetPlan::default()
    };
    let mut pass = pass(
        target(&region).role(&format!("arn:aws:iam::{ACCOUNT}:role/{bad}")),
        plan,
    );
    pass.error = None;
    Status {
        source: format!("/etc/gec/{bad}.yaml"),
        sha256: Some(bad.clone()),
        loaded_at: Some(UNIX_EPOCH + Duration::from_secs(1_764_000_000)),
        config_error: Some(format!("clusters[0].name: {bad}")),
        pass_id: 3,
        last_pass_at: Some(UNIX_EPOCH + Duration::from_secs(1_764_000_100)),
        last_result: Some("success"),
        last_pass_seconds: Some(0.25),
        reached_aws: true,
        watching: vec![Watch {
            target: pass.target.label(),
            cluster_arn: bad.clone(),
            cluster: bad.clone(),
            service: bad.clone(),
            deployment_id: bad.clone(),
            codedeploy: false,
        }],
        halted: Some(Halt {
            cluster: bad.clone(),
            service: bad.clone(),
            deployment_id: bad.clone(),
        }),
        conflicts: vec![Conflict {
            target: target_ref(&region),
            kind: ConflictKind::Tag,
            resource: bad.clone(),
            cluster: Some(bad.clone()),
            desired: bad.clone(),
            observed: bad.clone(),
            reverts: 3,
            since_ms: 1_764_000_000_000,
            principal: Some(bad),
        }],
        passes: vec![pass],
        ..Status::default()
    }
}

/// A status with one target in us-east-1: `covered` (HEALTHY), `apps` (tag to set, 3
/// tasks without the agent, a redeploy of `api` pending, `legacy` with a preflight
/// finding, `db` held), `off` (excluded), a rollout in progress and a conflict.
pub fn sample() -> Status {
    let region = "us-east-1";
    let mut covered = row(region, "covered");
    covered.guardduty = Some(CoverageRecord {
        status: "HEALTHY".into(),
        issue: None,
        management_type: Some("MANUAL".into()),
        fargate_issues: vec![],
    });
    covered.tasks = Some(TaskSummary {
        running: 2,
        ..TaskSummary::default()
    });
    let mut apps = row(region, "apps");
    apps.observed = None;
    apps.coverage = CoverageChange::Expected;
    apps.guardduty = Some(CoverageRecord {
        status: "UNHEALTHY".into(),
        issue: Some("No agent reporting".into()),
        management_type: None,
        fargate_issues: vec![],
    });
    apps.tasks = Some(TaskSummary {
        running: 4,
        services_without_agent: 2,
        service_tasks_without_agent: 3,
        standalone_tasks_without_agent: 0,
    });
    let mut off = row(region, "off");
    off.desired = Some(gec_model::desired::ManagedTag::False);
    off.observed = Some("false".into());
    off.coverage = CoverageChange::Excluded;
    let plan = TargetPlan {
        actions: vec![tag(region, "apps"), redeploy(region, "apps", "api")],
        clusters: vec![covered, apps, off],
        held: vec![
            held(
                region,
                "apps",
                "legacy",
                HoldReason::Preflight(PreflightCode::PlatformVersion),
            )
            .detail("platform version 1.3.0"),
            held(region, "apps", "db", HoldReason::Disabled),
        ],
        ..TargetPlan::default()
    };
    let pass = pass(target(region), plan);
    Status {
        source: "desired.yaml".into(),
        sha256: Some("ab".repeat(32)),
        loaded_at: Some(UNIX_EPOCH + Duration::from_secs(1_764_000_000)),
        pass_id: 7,
        last_pass_at: Some(UNIX_EPOCH + Duration::from_secs(1_764_000_100)),
        last_result: Some("success"),
        last_pass_seconds: Some(1.5),
        reached_aws: true,
        watching: vec![Watch {
            target: pass.target.label(),
            cluster_arn: format!("arn:aws:ecs:{region}:{ACCOUNT}:cluster/covered"),
            cluster: "covered".into(),
            service: "web".into(),
            deployment_id: "ecs-svc/1".into(),
            codedeploy: false,
        }],
        conflicts: vec![Conflict {
            target: target_ref(region),
            kind: ConflictKind::Tag,
            resource: format!("arn:aws:ecs:{region}:{ACCOUNT}:cluster/off"),
            cluster: Some("off".into()),
            desired: "false".into(),
            observed: "true".into(),
            reverts: 3,
            since_ms: 1_764_000_000_000,
            principal: Some("arn:aws:iam::123456789012:role/other".into()),
        }],
        passes: vec![pass],
        ..Status::default()
    }
}

fn pass(target: gec_model::desired::Target, plan: TargetPlan) -> TargetPass {
    TargetPass {
        target,
        plan: Some(plan),
        results: Vec::new(),
        error: None,
        suspended: false,
        after: None,
        events: Vec::new(),
    }
}
