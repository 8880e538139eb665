//! The AWS adapter's workload reads against the sandbox, through the same path the engine
//! takes (`AwsContext::from_env` + `ctx.target`): tasks and services of a cluster, the
//! per-client task cache, GuardDuty's coverage records, and a forced redeployment. What the
//! adapter reports is checked against the sandbox, read with plain SDK calls.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::kit::Sandbox;
use gec_aws::{AwsContext, CallSettings, ClusterScope, TargetClient, Want};
use gec_model::desired::Target;
use gec_model::observed::{ObservedCluster, TaskCounts};
use serde_json::json;

const REGION: &str = "us-east-1";

/// `apps` is not covered while its services and tasks start (manual agent management, no
/// tag), so none of them has the agent; the test tags it afterwards.
const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
      - name: idle
    services:
      - {name: web, cluster: apps, desiredCount: 2}
      - {name: api, cluster: apps, desiredCount: 3}
      - {name: legacy, cluster: apps, desiredCount: 2, launchType: EC2}
    standaloneTasks:
      - {cluster: apps, count: 2}
      - {cluster: apps, count: 1, launchType: EC2}
"#;

async fn client() -> TargetClient {
    let ctx = AwsContext::from_env(CallSettings::default())
        .await
        .expect("the sandbox's endpoint");
    let target = Target {
        region: REGION.to_owned(),
        role_arn: None,
        external_id: None,
        org: None,
    };
    ctx.target(&target).await
}

async fn clusters(client: &TargetClient, names: &[&str]) -> BTreeMap<String, ObservedCluster> {
    let scope = ClusterScope::Named(names.iter().map(|n| (*n).to_owned()).collect());
    let observed = client.observe(&scope).await.expect("observe the clusters");
    observed
        .clusters
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect()
}

/// (RUNNING Fargate tasks, of those without a RUNNING agent): what these tests check of
/// a [`TaskCounts`] (the per-deployment split carries the sandbox's deployment ids).
fn counts(running: u32, without_agent: u32) -> (u32, u32) {
    (running, without_agent)
}

fn of(c: &TaskCounts) -> (u32, u32) {
    (c.running, c.without_agent)
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

#[tokio::test]
async fn workload_counts_fargate_service_standalone_and_ec2_tasks_and_a_redeploy_brings_the_agent()
{
    let sb = Sandbox::start();
    let _env = sb.aws_env().await;
    sb.seed(FLEET);
    let aws = sb.aws(REGION).await;
    let apps_arn = aws.cluster_arn("apps").await;
    // Tagged: its coverage turns on, for new tasks only.
    aws.set_managed_tag(&apps_arn, "true").await;

    let client = client().await;
    let seen = clusters(&client, &["apps", "idle"]).await;
    let apps = &seen["apps"];
    assert_eq!(
        apps.running_tasks, 10,
        "2 + 3 + 2 service tasks, 3 standalone"
    );

    // A cluster without running tasks and nothing to watch costs no call.
    sb.clear_requests();
    let idle = client
        .observe_workload(&seen["idle"], &[], Want::Coverage)
        .await
        .expect("idle workload");
    assert_eq!(idle, Default::default());
    assert!(sb.requests().is_empty(), "no call: {:?}", sb.requests());

    let workload = client
        .observe_workload(apps, &[], Want::Coverage)
        .await
        .expect("workload");
    let expected: BTreeMap<String, (u32, u32)> = [
        ("api".to_owned(), counts(3, 3)),
        ("web".to_owned(), counts(2, 2)),
    ]
    .into();
    assert_eq!(
        workload
            .service_tasks
            .iter()
            .map(|(name, c)| (name.clone(), of(c)))
            .collect::<BTreeMap<_, _>>(),
        expected,
        "Fargate service tasks, none with the agent; the EC2 service is not among them"
    );
    assert_eq!(of(&workload.standalone_tasks), counts(2, 2));
    let api = workload
        .services
        .iter()
        .find(|s| s.name == "api")
        .expect("api is described");
    let primary = api.primary().expect("a PRIMARY deployment").id.clone();
    assert_eq!(
        workload.service_tasks["api"]
            .by_deployment
            .iter()
            .map(|(id, gap)| (id.clone(), gap.tasks))
            .collect::<Vec<_>>(),
        [(primary, 3)],
        "the tasks without the agent, by the deployment that started them (startedBy)"
    );
    assert!(
        api.task_definition.is_some(),
        "the PRIMARY deployment's task definition"
    );
    assert_eq!(
        workload.other_tasks, 3,
        "2 EC2 service tasks + 1 EC2 standalone"
    );
    assert_eq!(workload.earliest_agent_task_ms, None);
    let listed = aws
        .ecs
        .list_tasks()
        .cluster(&apps_arn)
        .send()
        .await
        .expect("ListTasks");
    let total = workload
        .service_tasks
        .values()
        .map(|c| c.running)
        .sum::<u32>()
        + workload.standalone_tasks.running
        + workload.other_tasks;
    assert_eq!(
        usize::try_from(total).unwrap(),
        listed.task_arns().len(),
        "every RUNNING task the sandbox lists is counted once"
    );

    let names: Vec<&str> = workload.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "web"], "services lacking the agent, sorted");
    for s in &workload.services {
        assert!(s.fargate, "{s:?}");
        assert_eq!(s.status.as_str(), "ACTIVE");
        assert!(
            s.arn.ends_with(&format!("service/apps/{}", s.name)),
            "{s:?}"
        );
        let primary = s.primary().expect("a PRIMARY deployment");
        assert_eq!(s.deployments[0], *primary, "PRIMARY first");
        assert!(primary.id.starts_with("ecs-svc/"), "{primary:?}");
        assert_eq!(
            primary.rollout_state.as_ref().map(|r| r.as_str()),
            Some("COMPLETED")
        );
        assert!(
            (now_ms() - primary.created_at_ms).abs() < 600_000,
            "createdAt read as epoch milliseconds: {primary:?}"
        );
        assert!(!s.rollout_in_progress());
    }

    let detector = client
        .observe_detector()
        .await
        .expect("detector")
        .expect("the region has one");
    let coverage = client
        .list_coverage(&detector.id)
        .await
        .expect("ListCoverage");
    let record = coverage
        .get(&apps_arn)
        .unwrap_or_else(|| panic!("apps is covered, keyed by ARN: {coverage:?}"));
    assert_eq!(record.status.as_str(), "UNHEALTHY", "{record:?}");
    assert!(
        record.issue.as_deref().is_some_and(|i| !i.is_empty()),
        "{record:?}"
    );
    assert_eq!(coverage.len(), 1, "idle is not covered: {coverage:?}");

    // Redeploy web; its new tasks start in the covered cluster and get the agent.
    sb.config(json!({"rolloutSeconds": 1}));
    let started = client
        .redeploy_service(&apps_arn, "web")
        .await
        .expect("UpdateService");
    assert_eq!(started.status.as_str(), "PRIMARY");
    assert_eq!(
        started.rollout_state.as_ref().map(|r| r.as_str()),
        Some("IN_PROGRESS")
    );
    let mut completed = false;
    for _ in 0..100 {
        let deployments = aws.deployments(&apps_arn, "web").await;
        completed = deployments.len() == 1
            && deployments[0].id == started.id
            && deployments[0].status == "PRIMARY"
            && deployments[0].rollout_state == "COMPLETED";
        if completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(completed, "the redeploy's PRIMARY deployment COMPLETED");
    let tasks = aws.service_tasks(&apps_arn, "web").await;
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t.agent),
        "every new web task runs the agent: {tasks:?}"
    );

    // The same client again: only the two new tasks are described.
    sb.clear_requests();
    let after = client
        .observe_workload(apps, &["web".to_owned()], Want::Coverage)
        .await
        .expect("workload after the redeploy");
    let described: Vec<usize> = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "DescribeTasks")
        .map(|r| r["params"]["tasks"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(described, [2], "one DescribeTasks, for web's two new tasks");
    assert_eq!(of(&after.service_tasks["web"]), counts(2, 0));
    assert_eq!(of(&after.service_tasks["api"]), counts(3, 3));
    assert!(after.earliest_agent_task_ms.is_some());
    let names: Vec<&str> = after.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "web"], "api lacks the agent; web is watched");
    assert!(after
        .services
        .iter()
        .flat_map(|s| &s.deployments)
        .all(|d| d.status.as_str() == "PRIMARY"));
}

#[tokio::test]
async fn a_second_observation_of_50_services_with_4_tasks_each_makes_no_describe_tasks_request() {
    let sb = Sandbox::start();
    let _env = sb.aws_env().await;
    let mut fleet =
        String::from("regions:\n  us-east-1:\n    clusters:\n      - name: big\n    services:\n");
    for i in 0..50 {
        fleet.push_str(&format!(
            "      - {{name: svc-{i:02}, cluster: big, desiredCount: 4}}\n"
        ));
    }
    sb.seed(&fleet);

    let client = client().await;
    let big = clusters(&client, &["big"]).await.remove("big").unwrap();
    assert_eq!(big.running_tasks, 200);

    sb.clear_requests();
    let first = client
        .observe_workload(&big, &[], Want::Coverage)
        .await
        .expect("first");
    let ops = sb.operation_counts();
    assert_eq!(
        ops.get("ListTasks"),
        Some(&2),
        "200 tasks, 100 a page: {ops:?}"
    );
    assert_eq!(
        ops.get("DescribeTasks"),
        Some(&2),
        "100 tasks a call: {ops:?}"
    );
    assert_eq!(ops.get("DescribeServices"), Some(&5), "10 a call: {ops:?}");
    assert_eq!(first.service_tasks.len(), 50);
    assert!(first.service_tasks.values().all(|c| of(c) == counts(4, 4)));
    assert_eq!(first.services.len(), 50);

    sb.clear_requests();
    let second = client
        .observe_workload(&big, &[], Want::Coverage)
        .await
        .expect("second");
    let ops = sb.operation_counts();
    assert_eq!(
        ops.get("DescribeTasks"),
        None,
        "the second observation of 50 services x 4 tasks describes no task: {ops:?}"
    );
    assert_eq!(ops.get("ListTasks"), Some(&2), "{ops:?}");
    assert_eq!(second, first);

    // The engine's next pass gets the same client from the context: the cache holds.
    let again = client.clone();
    sb.clear_requests();
    again
        .observe_workload(&big, &[], Want::Coverage)
        .await
        .expect("third");
    assert_eq!(sb.operation_counts().get("DescribeTasks"), None);

    // A stopped task is replaced (service scheduler): only the replacement is described.
    let ecs = sb.aws(REGION).await.ecs;
    let one = ecs
        .list_tasks()
        .cluster("big")
        .service_name("svc-07")
        .send()
        .await
        .expect("ListTasks")
        .task_arns()[0]
        .clone();
    ecs.stop_task()
        .cluster("big")
        .task(&one)
        .send()
        .await
        .expect("StopTask");
    sb.clear_requests();
    let after = client
        .observe_workload(&big, &[], Want::Coverage)
        .await
        .expect("fourth");
    let described: Vec<Vec<String>> = sb
        .requests()
        .iter()
        .filter(|r| r["operation"] == "DescribeTasks")
        .map(|r| {
            r["params"]["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(described.len(), 1, "{described:?}");
    assert_eq!(described[0].len(), 1, "only the replacement: {described:?}");
    assert_ne!(described[0][0], one, "the stopped task is not described");
    assert_eq!(of(&after.service_tasks["svc-07"]), counts(4, 4));
}

#[tokio::test]
async fn the_detector_is_listed_once_and_again_only_when_it_is_gone() {
    let sb = Sandbox::start();
    let _env = sb.aws_env().await;
    sb.seed("regions:\n  us-east-1:\n    detector: {runtimeMonitoring: ENABLED}\n    clusters: [{name: apps}]\n");
    let client = client().await;
    let scope = ClusterScope::Named(vec!["apps".to_owned()]);
    sb.clear_requests();
    let first = client
        .observe(&scope)
        .await
        .expect("first")
        .detector
        .expect("a detector");
    assert_eq!(sb.operation_counts().get("ListDetectors"), Some(&1));
    sb.clear_requests();
    let second = client
        .observe(&scope)
        .await
        .expect("second")
        .detector
        .expect("a detector");
    let ops = sb.operation_counts();
    assert_eq!(
        (ops.get("ListDetectors"), ops.get("GetDetector")),
        (None, Some(&1)),
        "a steady-state pass reads the known detector only: {ops:?}"
    );
    assert_eq!(second, first);
    let gd = sb.aws(REGION).await.guardduty;
    gd.delete_detector()
        .detector_id(&first.id)
        .send()
        .await
        .expect("DeleteDetector");
    let new = gd
        .create_detector()
        .enable(true)
        .send()
        .await
        .expect("CreateDetector")
        .detector_id()
        .unwrap()
        .to_owned();
    sb.clear_requests();
    let third = client
        .observe(&scope)
        .await
        .expect("third")
        .detector
        .expect("the new detector");
    assert_eq!(third.id, new, "a replaced detector is found again");
    let ops = sb.operation_counts();
    assert_eq!(
        (ops.get("GetDetector"), ops.get("ListDetectors")),
        (Some(&2), Some(&1)),
        "{ops:?}"
    );
    gd.delete_detector()
        .detector_id(&new)
        .send()
        .await
        .expect("DeleteDetector");
    assert_eq!(client.observe(&scope).await.expect("fourth").detector, None);
    sb.clear_requests();
    assert_eq!(client.observe(&scope).await.expect("fifth").detector, None);
    assert_eq!(
        sb.operation_counts().get("ListDetectors"),
        Some(&1),
        "no detector: listed every pass"
    );
}
