//! Reading what runs in a cluster (tasks, the services that own them) and GuardDuty's
//! coverage records.
//!
//! Every read here is idempotent and keeps the SDK's retries. The forced redeployment
//! these reads lead to, `UpdateService(forceNewDeployment)`, is the controller's one write
//! that is **not** idempotent (every applied call starts another deployment; ECS takes no
//! client token for it): it lives with the other writes in `write.rs`, is sent once
//! without the SDK's retries, and a failure that does not prove the request was rejected
//! is settled with [`TargetClient::describe_service`] (a new deployment, or none) before
//! any new attempt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_sdk_ecs::types::{DesiredStatus, LaunchType};
use aws_sdk_guardduty::types::{
    CoverageFilterCondition, CoverageFilterCriteria, CoverageFilterCriterion,
    CoverageFilterCriterionKey,
};
use gec_model::observed::{
    is_agent_container, CoverageRecord, CoverageStatus, DeploymentStatus, ObservedCluster,
    ObservedDeployment, ObservedService, RolloutState, ServiceStatus, TaskCounts, Workload,
};

use crate::error::classify;
use crate::{AwsError, TargetClient};

/// `ListTasks` page size: the API's maximum.
pub const LIST_TASKS_PAGE: i32 = 100;
/// Tasks per `DescribeTasks` call: the API's maximum.
pub const DESCRIBE_TASKS_BATCH: usize = 100;
/// Services per `DescribeServices` call: the API's maximum.
pub const DESCRIBE_SERVICES_BATCH: usize = 10;
/// `ListCoverage` page size: the API's maximum.
pub const LIST_COVERAGE_PAGE: i32 = 50;

/// Capacity providers that run tasks on Fargate.
const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];
/// Task `group` prefix of tasks a service started.
const SERVICE_GROUP_PREFIX: &str = "service:";

/// What the controller needs of a RUNNING task. A task's containers, launch type, group
/// and start time never change while it runs, so one `DescribeTasks` per task is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskFacts {
    service: Option<Box<str>>,
    fargate: bool,
    has_agent: bool,
    started_at_ms: Option<i64>,
}

/// RUNNING tasks described so far, per cluster ARN, then per task id.
type Tasks = HashMap<String, HashMap<Box<str>, TaskFacts>>;

/// What a target's client remembers across passes, shared by the clones of one
/// [`TargetClient`]: the RUNNING tasks described so far (per cluster ARN, then per task
/// id), so a steady cluster costs a `ListTasks` and no `DescribeTasks`; and the id of
/// the region's detector, so a steady pass reads it with `GetDetector` alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskCache {
    tasks: Arc<Mutex<Tasks>>,
    detector_id: Arc<Mutex<Option<String>>>,
}

/// A task's id: its ARN after the last `/`. Unique within a cluster, in both ARN formats
/// (`task/CLUSTER/ID` and the old `task/ID`), and a third the length of the ARN: the
/// cache keeps one per RUNNING task (100,000 in a large fleet).
fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

// A panic while a lock was held cannot leave a value half-written (each change is one
// insert, remove or assignment), so a poisoned lock is still safe to use.
fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TaskCache {
    fn lock(&self) -> MutexGuard<'_, Tasks> {
        unpoisoned(&self.tasks)
    }

    /// The detector id learned by an earlier `ListDetectors`, if any.
    pub(crate) fn detector_id(&self) -> Option<String> {
        unpoisoned(&self.detector_id).clone()
    }

    /// Remembers (or, with `None`, forgets) the region's detector id.
    pub(crate) fn set_detector_id(&self, id: Option<&str>) {
        *unpoisoned(&self.detector_id) = id.map(str::to_owned);
    }
}

impl TargetClient {
    /// Reads a cluster's RUNNING tasks and the services that own Fargate tasks without the
    /// agent, plus the `watch` services (names), whatever their tasks.
    ///
    /// `ListTasks` lists the cluster's RUNNING tasks in pages of [`LIST_TASKS_PAGE`];
    /// `DescribeTasks` ([`DESCRIBE_TASKS_BATCH`] at a time) reads only tasks this client
    /// has not described before; `DescribeServices` ([`DESCRIBE_SERVICES_BATCH`] at a time)
    /// reads the services. A cluster that DescribeClusters reported without running tasks,
    /// with nothing to watch, costs no call.
    ///
    /// # Errors
    /// The first failed `ListTasks`, `DescribeTasks` or `DescribeServices` call.
    ///
    /// # Caveats
    /// A task is remembered only once it is RUNNING (a PENDING one is described again),
    /// and forgotten when it is no longer listed. Services that `DescribeServices` reports
    /// missing are left out.
    pub async fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
    ) -> Result<Workload, AwsError> {
        if cluster.running_tasks == 0 && watch.is_empty() {
            self.tasks.lock().remove(&cluster.arn);
            return Ok(Workload::default());
        }
        let listed = self.list_running_tasks(&cluster.arn).await?;
        let mut known = self.tasks.lock().remove(&cluster.arn).unwrap_or_default();
        let unknown: Vec<String> = listed
            .iter()
            .filter(|arn| !known.contains_key(task_id(arn)))
            .cloned()
            .collect();
        // On failure the cluster's cache is dropped: the next pass describes everything.
        let described = self.describe_tasks(&cluster.arn, &unknown).await?;
        known.extend(
            described
                .into_iter()
                .map(|(arn, facts)| (Box::from(task_id(&arn)), facts)),
        );
        // Only what is listed now stays: stopped tasks are forgotten.
        let mut current = HashMap::with_capacity(listed.len());
        for arn in &listed {
            if let Some((id, facts)) = known.remove_entry(task_id(arn)) {
                current.insert(id, facts);
            }
        }
        tracing::debug!(
            cluster = %cluster.name,
            running = current.len(),
            described = unknown.len(),
            "read the cluster's tasks"
        );
        let mut workload = tally(current.values());
        self.tasks.lock().insert(cluster.arn.clone(), current);

        let names: BTreeSet<&str> = workload
            .service_tasks
            .iter()
            .filter(|(_, counts)| counts.without_agent > 0)
            .map(|(name, _)| name.as_str())
            .chain(watch.iter().map(|w| w.rsplit('/').next().unwrap_or(w)))
            .collect();
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        workload.services = self.describe_services(&cluster.arn, &names).await?;
        Ok(workload)
    }

    /// The ARNs of a cluster's RUNNING tasks, in pages of [`LIST_TASKS_PAGE`].
    async fn list_running_tasks(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .ecs
            .list_tasks()
            .cluster(cluster_arn)
            .desired_status(DesiredStatus::Running)
            .max_results(LIST_TASKS_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
        Ok(arns)
    }

    /// Facts of the tasks that are RUNNING, [`DESCRIBE_TASKS_BATCH`] per call. Tasks that
    /// are not (yet) RUNNING or that ECS no longer knows are left out.
    async fn describe_tasks(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<HashMap<String, TaskFacts>, AwsError> {
        let mut facts = HashMap::with_capacity(arns.len());
        for batch in arns.chunks(DESCRIBE_TASKS_BATCH) {
            let out = self
                .ecs
                .describe_tasks()
                .cluster(cluster_arn)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeTasks", e))?;
            for task in out.tasks() {
                if task.last_status() != Some("RUNNING") {
                    continue;
                }
                if let Some(arn) = task.task_arn() {
                    facts.insert(arn.to_owned(), task_facts(task));
                }
            }
        }
        Ok(facts)
    }

    /// Services by name, [`DESCRIBE_SERVICES_BATCH`] per call, sorted by name; missing
    /// ones are left out.
    async fn describe_services(
        &self,
        cluster_arn: &str,
        names: &[String],
    ) -> Result<Vec<ObservedService>, AwsError> {
        let mut services = Vec::with_capacity(names.len());
        for batch in names.chunks(DESCRIBE_SERVICES_BATCH) {
            let out = self
                .ecs
                .describe_services()
                .cluster(cluster_arn)
                .set_services(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeServices", e))?;
            services.extend(out.services().iter().map(observed_service));
        }
        services.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(services)
    }

    /// GuardDuty's coverage of the region's ECS clusters, by cluster ARN (`ListCoverage`
    /// filtered to resource type `ECS`, pages of [`LIST_COVERAGE_PAGE`]). Clusters
    /// GuardDuty does not cover are absent.
    ///
    /// # Errors
    /// A failed `ListCoverage` call.
    pub async fn list_coverage(
        &self,
        detector_id: &str,
    ) -> Result<BTreeMap<String, CoverageRecord>, AwsError> {
        let filter = CoverageFilterCriteria::builder()
            .filter_criterion(
                CoverageFilterCriterion::builder()
                    .criterion_key(CoverageFilterCriterionKey::ResourceType)
                    .filter_condition(CoverageFilterCondition::builder().equals("ECS").build())
                    .build(),
            )
            .build();
        let mut records = BTreeMap::new();
        let mut pages = self
            .guardduty
            .list_coverage()
            .detector_id(detector_id)
            .filter_criteria(filter)
            .max_results(LIST_COVERAGE_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListCoverage", e))?;
            for resource in page.resources() {
                let Some(cluster_arn) = resource.resource_id() else {
                    continue;
                };
                records.insert(
                    cluster_arn.to_owned(),
                    CoverageRecord {
                        status: resource
                            .coverage_status()
                            .map_or(CoverageStatus::Other(String::new()), |s| {
                                CoverageStatus::from_aws(s.as_str())
                            }),
                        issue: resource.issue().map(str::to_owned),
                        ..CoverageRecord::default()
                    },
                );
            }
        }
        Ok(records)
    }

    /// One service by name, as [`TargetClient::observe_workload`] reports services (one
    /// `DescribeServices`); `None` when ECS does not know it. The read that tells whether
    /// a redeploy whose outcome was unknown happened (its deployments before and after).
    ///
    /// # Errors
    /// A failed `DescribeServices` call.
    pub async fn describe_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<Option<ObservedService>, AwsError> {
        let mut found = self
            .describe_services(cluster_arn, &[service.to_owned()])
            .await?;
        Ok(found.pop())
    }
}

fn task_facts(task: &aws_sdk_ecs::types::Task) -> TaskFacts {
    TaskFacts {
        service: task
            .group()
            .and_then(|g| g.strip_prefix(SERVICE_GROUP_PREFIX))
            .map(Box::from),
        fargate: task.launch_type() == Some(&LaunchType::Fargate)
            || task
                .capacity_provider_name()
                .is_some_and(|p| FARGATE_PROVIDERS.contains(&p)),
        has_agent: task
            .containers()
            .iter()
            .any(|c| c.name().is_some_and(is_agent_container)),
        started_at_ms: task.started_at().and_then(|t| t.to_millis().ok()),
    }
}

/// Counts RUNNING tasks: Fargate ones per service or standalone, the rest as other.
fn tally<'a>(tasks: impl Iterator<Item = &'a TaskFacts>) -> Workload {
    let mut workload = Workload::default();
    for task in tasks {
        if task.has_agent {
            workload.earliest_agent_task_ms =
                match (workload.earliest_agent_task_ms, task.started_at_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
        }
        if !task.fargate {
            workload.other_tasks += 1;
            continue;
        }
        let counts = match &task.service {
            Some(name) => workload
                .service_tasks
                .entry(name.to_string())
                .or_insert_with(TaskCounts::default),
            None => &mut workload.standalone_tasks,
        };
        counts.running += 1;
        if !task.has_agent {
            counts.without_agent += 1;
        }
    }
    workload
}

pub(crate) fn observed_service(service: &aws_sdk_ecs::types::Service) -> ObservedService {
    let strategy = service.capacity_provider_strategy();
    let fargate = service.launch_type() == Some(&LaunchType::Fargate)
        || (!strategy.is_empty()
            && strategy
                .iter()
                .all(|s| FARGATE_PROVIDERS.contains(&s.capacity_provider())));
    let mut deployments: Vec<ObservedDeployment> = service
        .deployments()
        .iter()
        .map(|d| ObservedDeployment {
            id: d.id().unwrap_or_default().to_owned(),
            status: DeploymentStatus::from_aws(d.status().unwrap_or_default()),
            rollout_state: d
                .rollout_state()
                .map(|s| RolloutState::from_aws(s.as_str())),
            created_at_ms: d
                .created_at()
                .and_then(|t| t.to_millis().ok())
                .unwrap_or_default(),
        })
        .collect();
    // Stable: the other deployments keep the order ECS listed them in.
    deployments.sort_by_key(|d| d.status != DeploymentStatus::Primary);
    ObservedService {
        name: service.service_name().unwrap_or_default().to_owned(),
        arn: service.service_arn().unwrap_or_default().to_owned(),
        status: ServiceStatus::from_aws(service.status().unwrap_or_default()),
        fargate,
        deployments,
        ..ObservedService::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{
        CapacityProviderStrategyItem, Container, Deployment, DeploymentRolloutState, Service, Task,
    };
    use aws_smithy_types::DateTime;

    fn task(group: &str, launch: LaunchType, containers: &[&str], started: i64) -> Task {
        let mut t = Task::builder()
            .group(group)
            .launch_type(launch)
            .last_status("RUNNING")
            .started_at(DateTime::from_millis(started));
        for name in containers {
            t = t.containers(Container::builder().name(*name).build());
        }
        t.build()
    }

    #[test]
    fn a_task_is_remembered_by_its_id_in_both_arn_formats() {
        let id = "0f5c1a8e9b7d4c3a2b1f0e9d8c7b6a5f";
        assert_eq!(
            task_id(&format!(
                "arn:aws:ecs:us-east-1:111111111111:task/prod/{id}"
            )),
            id
        );
        assert_eq!(
            task_id(&format!("arn:aws:ecs:us-east-1:111111111111:task/{id}")),
            id
        );
    }

    #[test]
    fn tasks_are_counted_per_service_standalone_or_other() {
        let tasks = [
            task("service:api", LaunchType::Fargate, &["app"], 5),
            task(
                "service:api",
                LaunchType::Fargate,
                &["app", "aws-guardduty-agent-x1Y2z3"],
                3,
            ),
            task(
                "service:web",
                LaunchType::Fargate,
                &["app", "aws-gd-agent"],
                9,
            ),
            task("family:batch", LaunchType::Fargate, &["job"], 1),
            task("service:legacy", LaunchType::Ec2, &["app"], 0),
        ];
        let facts: Vec<TaskFacts> = tasks.iter().map(task_facts).collect();
        let w = tally(facts.iter());
        let counts = |running, without_agent| TaskCounts {
            running,
            without_agent,
            ..TaskCounts::default()
        };
        assert_eq!(w.service_tasks["api"], counts(2, 1), "one of two lacks it");
        assert_eq!(w.service_tasks["web"], counts(1, 0), "aws-gd-agent counts");
        assert_eq!(
            w.standalone_tasks,
            counts(1, 1),
            "a family: group is no service"
        );
        assert_eq!(w.other_tasks, 1, "EC2 tasks are never counted as uncovered");
        assert!(!w.service_tasks.contains_key("legacy"));
        assert_eq!(w.earliest_agent_task_ms, Some(3));
    }

    #[test]
    fn a_fargate_spot_capacity_provider_task_is_fargate() {
        let t = Task::builder()
            .group("service:spot")
            .capacity_provider_name("FARGATE_SPOT")
            .build();
        assert!(task_facts(&t).fargate);
    }

    fn deployment(id: &str, status: &str, state: Option<DeploymentRolloutState>) -> Deployment {
        Deployment::builder()
            .id(id)
            .status(status)
            .set_rollout_state(state)
            .created_at(DateTime::from_secs(7))
            .build()
    }

    #[test]
    fn services_list_the_primary_deployment_first_with_times_in_milliseconds() {
        let s = Service::builder()
            .service_name("api")
            .service_arn("arn:aws:ecs:us-east-1:1:service/c/api")
            .status("ACTIVE")
            .launch_type(LaunchType::Fargate)
            .deployments(deployment("ecs-svc/1", "ACTIVE", None))
            .deployments(deployment(
                "ecs-svc/2",
                "PRIMARY",
                Some(DeploymentRolloutState::InProgress),
            ))
            .build();
        let o = observed_service(&s);
        assert!(o.fargate);
        assert_eq!(o.deployments[0].id, "ecs-svc/2");
        assert_eq!(
            o.deployments[0].rollout_state,
            Some(gec_model::observed::RolloutState::InProgress)
        );
        assert_eq!(o.deployments[0].created_at_ms, 7_000);
        assert_eq!(o.deployments[1].rollout_state, None);
        assert!(o.rollout_in_progress());
    }

    #[test]
    fn a_service_is_fargate_only_when_every_capacity_provider_is() {
        let provider = |name: &str| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(name)
                .build()
                .unwrap()
        };
        // (label, providers, fargate)
        let rows = [
            ("fargate and spot", vec!["FARGATE", "FARGATE_SPOT"], true),
            (
                "mixed with an ASG provider",
                vec!["FARGATE", "my-asg"],
                false,
            ),
            ("no strategy and no launch type", vec![], false),
        ];
        for (label, providers, fargate) in rows {
            let s = Service::builder()
                .set_capacity_provider_strategy(Some(providers.into_iter().map(provider).collect()))
                .build();
            assert_eq!(observed_service(&s).fargate, fargate, "{label}");
        }
    }
}
