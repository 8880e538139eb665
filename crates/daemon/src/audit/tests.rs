use gec_aws::{AwsError, ErrorKind};
use gec_engine::rollout::{Halt, RolloutEvent};
use gec_engine::{Outcome, Report, Requeue, Settled, Skip, TargetPass};
use gec_model::plan::{Conflict, ConflictKind, Held, HoldReason, Refusal, Scope};
use gec_model::testing::{redeploy, tag, target_ref};
use gec_model::TargetPlan;

use super::*;
use crate::testing::{pass, target};

const EAST: &str = "us-east-1";
const TIME: &str = "2026-11-30T15:00:00Z";
const SHA: &str = "ab12";

fn report(pass_id: u64, passes: Vec<TargetPass>, halted: Option<Halt>) -> Report {
    Report {
        pass_id,
        passes,
        targets: vec![target(EAST)],
        requeue: Requeue::Never,
        rollout_delay: None,
        rolling: 0,
        queued: 0,
        watching: Vec::new(),
        halted,
        in_progress: 0,
        seconds: 0.0,
        next: tokio::time::Instant::now(),
        interrupted: false,
    }
}

fn records(auditor: &mut Auditor, report: &Report) -> Vec<AuditRecord> {
    auditor.records(report, Some(SHA), TIME)
}

fn events(records: &[AuditRecord]) -> Vec<(&'static str, &str)> {
    records
        .iter()
        .map(|r| (r.event.as_str(), r.resource.as_str()))
        .collect()
}

#[test]
fn every_attempted_write_is_a_record_and_skipped_actions_are_not() {
    let failed = AwsError::new(ErrorKind::AccessDenied, "TagResources", None, "no");
    let mut codedeploy = redeploy(EAST, "apps", "api");
    if let Action::RedeployService { via, .. } = &mut codedeploy {
        *via = Deployer::CodeDeploy(Box::new(gec_model::plan::CodeDeployRedeploy {
            group: gec_model::observed::DeploymentGroupRef {
                application: "app".into(),
                name: "group".into(),
            },
            cluster: "apps".into(),
            service: "api".into(),
            task_definition: "arn:td".into(),
            load_balancer: gec_model::observed::LoadBalancerTarget {
                container_name: "app".into(),
                container_port: 80,
            },
            platform_version: None,
        }));
    }
    let passes = vec![pass(
        EAST,
        TargetPlan::default(),
        vec![
            (tag(EAST, "apps"), Outcome::Success),
            (tag(EAST, "web"), Outcome::Failed(failed)),
            (redeploy(EAST, "apps", "web"), Outcome::Success),
            (codedeploy, Outcome::Success),
            (
                redeploy(EAST, "apps", "later"),
                Outcome::Skipped(Skip::Stopping),
            ),
        ],
    )];
    let mut auditor = Auditor::new(Some("replica-a".into()), None);
    let out = records(&mut auditor, &report(7, passes, None));
    assert_eq!(out.len(), 4, "{out:#?}");
    let ok = &out[0];
    assert_eq!(ok.event, EventKind::Write);
    assert_eq!(ok.kind, "tag_cluster");
    assert_eq!(ok.resource, gec_model::testing::arn("apps"));
    assert_eq!(ok.to.as_deref(), Some("true"));
    assert_eq!(ok.from, None);
    assert_eq!(ok.result, Some(WriteResult::Success));
    assert_eq!(ok.pass_id, 7);
    assert_eq!(ok.desired_state_sha256.as_deref(), Some(SHA));
    assert_eq!(ok.replica_id.as_deref(), Some("replica-a"));
    assert_eq!(ok.target.as_deref(), Some(EAST));
    assert_eq!(ok.account, target_ref(EAST).account);
    assert_eq!(ok.time, TIME);
    assert_eq!(out[1].result, Some(WriteResult::Error));
    assert!(
        out[1].reason.as_deref().is_some_and(|r| r.contains("no")),
        "{:?}",
        out[1].reason
    );
    assert_eq!(out[2].kind, "redeploy_service");
    assert_eq!(out[2].to.as_deref(), Some("add_agent"));
    assert_eq!(
        out[2].reason.as_deref(),
        Some("1 of 2 running tasks lack the GuardDuty agent")
    );
    assert_eq!(out[3].kind, "codedeploy_deployment");
    let json: serde_json::Value = serde_json::from_str(&out[0].to_json()).unwrap();
    assert_eq!(json["event"], "write");
    assert_eq!(json["passId"], 7);
    assert!(
        json["reason"].is_null(),
        "every key is present, null when it does not apply"
    );
}

fn incidents(findings: &[(&str, HoldReason)], refused: bool, conflict: bool) -> TargetPlan {
    TargetPlan {
        refused: refused.then(|| Refusal {
            region: EAST.into(),
            scope: Scope::Target,
            targets: vec![EAST.into()],
            limit: "maxClusterChangesPerCycle",
            value: 30.0,
            max: 20.0,
            reason: "30 cluster changes, more than 20".into(),
        }),
        held: findings
            .iter()
            .map(|(service, reason)| Held {
                target: target_ref(EAST),
                cluster: "apps".into(),
                service: (*service).into(),
                reason: *reason,
                detail: None,
            })
            .collect(),
        conflicts: conflict
            .then(|| Conflict {
                target: target_ref(EAST),
                kind: ConflictKind::Tag,
                resource: gec_model::testing::arn("apps"),
                cluster: Some("apps".into()),
                desired: "true".into(),
                observed: "false".into(),
                reverts: 3,
                since_ms: 0,
                principal: None,
            })
            .into_iter()
            .collect(),
        ..TargetPlan::default()
    }
}

#[test]
fn an_incident_that_stands_is_reported_once_and_again_after_it_cleared() {
    let mut auditor = Auditor::new(None, None);
    let standing = |auditor: &mut Auditor, id| {
        let plan = incidents(
            &[
                ("api", HoldReason::AgentFailed),
                (
                    "web",
                    HoldReason::RetryAfter {
                        age_ms: 1,
                        retry_ms: 2,
                    },
                ),
            ],
            true,
            true,
        );
        records(auditor, &report(id, vec![pass(EAST, plan, vec![])], None))
    };
    let first = standing(&mut auditor, 1);
    assert_eq!(
        events(&first),
        vec![
            ("plan_refused", EAST),
            ("conflict", gec_model::testing::arn("apps").as_str()),
            ("preflight_finding", "apps/api"),
        ],
        "a hold that is not a finding (retry_after) is no incident"
    );
    assert_eq!(first[0].kind, "maxClusterChangesPerCycle");
    assert_eq!(first[1].from.as_deref(), Some("false"));
    assert_eq!(first[1].to.as_deref(), Some("true"));
    assert_eq!(first[2].kind, "agent_failed");
    assert!(
        standing(&mut auditor, 2).is_empty(),
        "still standing: nothing new"
    );

    let mut failed_pass = pass(EAST, TargetPlan::default(), vec![]);
    failed_pass.plan = None;
    let unobserved = records(&mut auditor, &report(3, vec![failed_pass], None));
    assert!(unobserved.is_empty());
    assert!(
        standing(&mut auditor, 4).is_empty(),
        "a pass that could not observe does not end what stands"
    );

    let cleared = records(
        &mut auditor,
        &report(5, vec![pass(EAST, TargetPlan::default(), vec![])], None),
    );
    assert!(cleared.is_empty());
    assert_eq!(standing(&mut auditor, 6).len(), 3, "back after it cleared");
}

#[tokio::test(start_paused = true)]
async fn only_the_replica_that_may_write_reports_incidents() {
    let fence = gec_engine::Fence::leased();
    let mut auditor = Auditor::new(Some("b".into()), None).with_fence(fence.clone());
    let halt = Halt {
        cluster: "apps".into(),
        service: "api".into(),
        deployment_id: "ecs-svc/1".into(),
    };
    let round = |auditor: &mut Auditor, id| {
        let plan = incidents(&[("api", HoldReason::AgentFailed)], true, true);
        records(
            auditor,
            &report(id, vec![pass(EAST, plan, vec![])], Some(halt.clone())),
        )
    };
    assert!(round(&mut auditor, 1).is_empty(), "a follower reports none");
    fence.grant(tokio::time::Instant::now() + std::time::Duration::from_secs(10));
    assert_eq!(
        round(&mut auditor, 2).len(),
        4,
        "the new leader reports what stands, once"
    );
    assert!(round(&mut auditor, 3).is_empty());
    fence.revoke();
    assert!(round(&mut auditor, 4).is_empty());
    assert!(
        Auditor::new(None, None)
            .records(
                &report(
                    5,
                    vec![pass(EAST, incidents(&[], true, false), vec![])],
                    None
                ),
                None,
                TIME
            )
            .len()
            == 1,
        "without a lease: always"
    );
}

#[test]
fn a_failed_rollout_is_a_record_and_a_halt_is_reported_when_it_starts() {
    let mut auditor = Auditor::new(None, None);
    let mut settled = pass(EAST, TargetPlan::default(), vec![]);
    settled.events = vec![
        RolloutEvent {
            cluster: "apps".into(),
            service: "api".into(),
            state: Settled::Failed,
            status: "FAILED".into(),
        },
        RolloutEvent {
            cluster: "apps".into(),
            service: "web".into(),
            state: Settled::Completed,
            status: "COMPLETED".into(),
        },
    ];
    let halt = Halt {
        cluster: "apps".into(),
        service: "api".into(),
        deployment_id: "ecs-svc/1".into(),
    };
    let out = records(&mut auditor, &report(1, vec![settled], Some(halt.clone())));
    assert_eq!(
        events(&out),
        vec![
            ("rollout_failed", "apps/api"),
            ("rollouts_halted", "apps/api")
        ]
    );
    assert_eq!(out[0].to.as_deref(), Some("FAILED"));
    assert_eq!(out[0].kind, "redeploy_service");
    assert_eq!(
        out[1].target.as_deref(),
        Some(EAST),
        "the halt's target is found"
    );
    let quiet = || pass(EAST, TargetPlan::default(), vec![]);
    assert!(records(&mut auditor, &report(2, vec![quiet()], Some(halt.clone()))).is_empty());
    assert!(records(&mut auditor, &report(3, vec![quiet()], None)).is_empty());
    let again = records(&mut auditor, &report(4, vec![quiet()], Some(halt)));
    assert_eq!(events(&again), vec![("rollouts_halted", "apps/api")]);
    assert_eq!(
        again[0].target, None,
        "fleet-wide: no failed rollout of a target in this round"
    );
}

#[test]
fn long_texts_are_cut_to_their_bound() {
    let cut = bounded(&"é".repeat(MAX_REASON_BYTES), MAX_REASON_BYTES);
    assert!(cut.len() <= MAX_REASON_BYTES);
    assert!(cut.ends_with('…'));
    let failed = AwsError::new(ErrorKind::Other, "TagResources", None, "x".repeat(1 << 20));
    let passes = vec![pass(
        EAST,
        TargetPlan::default(),
        vec![(tag(EAST, "apps"), Outcome::Failed(failed))],
    )];
    let out = records(&mut Auditor::new(None, None), &report(1, passes, None));
    assert!(out[0].reason.as_ref().unwrap().len() <= MAX_REASON_BYTES);
    assert!(
        out[0].to_json().len() < 16 * 1024,
        "far below EventBridge's 256 KB"
    );
}
