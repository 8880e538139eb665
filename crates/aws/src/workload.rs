//! Reading what runs in a cluster (tasks, the services that own them) and GuardDuty's
//! coverage records.
//!
//! # Coverage is an agent that RUNS
//! A task counts as covered only while its GuardDuty agent container's `lastStatus` is
//! `RUNNING`. An agent container that is missing, `PENDING` or `STOPPED` leaves the task
//! uncovered; a `STOPPED` one carries AWS's words (the container's `reason`, such as
//! `CannotPullContainerError: …`, else `exit code N`).
//!
//! # What the task cache keeps, and what is described again
//! A task's group, launch type, `startedBy` and start time never change while it runs, so
//! they are described once and kept. The agent's state can change, so the cache keeps it
//! only while it cannot change unseen. Each pass describes again:
//! - tasks whose agent container was `PENDING` (it may start or stop);
//! - every cached task whose agent was `RUNNING`, in a cluster whose GuardDuty coverage
//!   record is `UNHEALTHY` (an agent that dies later is seen within one pass; GuardDuty's
//!   record is what says something is wrong there, so a cluster it reports `HEALTHY`, or
//!   does not report, costs no `DescribeTasks` in steady state);
//!
//! and nothing else: an agent missing from a running task never appears later (ECS adds
//! containers only when it starts a task), and a `STOPPED` container never restarts.
//! The trade-off: in a cluster GuardDuty calls healthy, an agent that stops is seen once
//! GuardDuty's record turns `UNHEALTHY` (or the task is replaced), not sooner; in an
//! unhealthy cluster every pass pays ceil(tasks with a running agent / 100) `DescribeTasks`.
//! The engine reads the coverage records before the workloads so that this rule holds in
//! the same pass ([`TargetClient::observe_workload`] looks at `cluster.coverage`).
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
    is_agent_container, CoverageRecord, CoverageStatus, DeploymentController, DeploymentStatus,
    DeploymentStrategy, LoadBalancerTarget, ObservedCluster, ObservedDeployment, ObservedService,
    RolloutState, ServiceStatus, TaskCounts, Workload,
};

use crate::text::bounded;

use crate::error::{classify, ErrorKind};
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

/// Longest AWS reason kept per stopped agent (characters): a reason is AWS's text, and
/// the cache keeps one per task.
pub const MAX_REASON_CHARS: usize = 256;
/// Most `fargateDetails.issues` kept per coverage record, and their longest text.
pub const MAX_FARGATE_ISSUES: usize = 16;
const MAX_ISSUE_CHARS: usize = 512;

/// Which services [`TargetClient::observe_workload`] describes besides the watched ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Coverage is on (or turns on): the services that own a Fargate task without a
    /// RUNNING agent (candidates for a redeploy that brings it).
    Coverage,
    /// Coverage is off after the plan: also the services that own a Fargate task whose
    /// agent still RUNS (candidates for a redeploy that removes it).
    Offboarding,
}

/// The state of a task's GuardDuty agent container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Agent {
    /// The task has no agent container.
    Missing,
    /// An agent container is `PENDING` (or in a state ECS does not document).
    Pending,
    /// An agent container is `RUNNING`: the task is covered.
    Running,
    /// The agent container is `STOPPED`, with AWS's reason when it gave one.
    Stopped(Option<Box<str>>),
}

/// What the controller needs of a RUNNING task. A task's containers, launch type, group,
/// `startedBy` and start time never change while it runs; its agent's state may (see the
/// module docs for when it is read again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskFacts {
    service: Option<Box<str>>,
    fargate: bool,
    /// `startedBy` of a service task without a running agent: the deployment
    /// (`ecs-svc/…`) that started it.
    deployment: Option<Box<str>>,
    agent: Agent,
    started_at_ms: Option<i64>,
}

impl TaskFacts {
    fn agent_runs(&self) -> bool {
        self.agent == Agent::Running
    }

    /// Whether the cached facts may be stale: the agent was PENDING, or it was RUNNING in
    /// a cluster GuardDuty reports UNHEALTHY.
    fn describe_again(&self, unhealthy: bool) -> bool {
        match self.agent {
            Agent::Pending => true,
            Agent::Running => unhealthy,
            Agent::Missing | Agent::Stopped(_) => false,
        }
    }
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

    /// Forgets the tasks of every cluster but these (the ACTIVE clusters just observed):
    /// a deleted or deactivated cluster's tasks are not kept for the client's life.
    pub(crate) fn retain_clusters<'a>(&self, arns: impl Iterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = arns.collect();
        self.lock().retain(|arn, _| keep.contains(arn.as_str()));
    }
}

impl TargetClient {
    /// Reads a cluster's RUNNING tasks and the services that own Fargate tasks without a
    /// RUNNING agent (with [`Want::Offboarding`] also those that own tasks whose agent
    /// runs), plus the `watch` services (names), whatever their tasks.
    ///
    /// `ListTasks` lists the cluster's RUNNING tasks in pages of [`LIST_TASKS_PAGE`];
    /// `DescribeTasks` ([`DESCRIBE_TASKS_BATCH`] at a time) reads the tasks this client
    /// has not described before and those whose agent state may have changed (module
    /// docs: a PENDING agent; a RUNNING one when `cluster.coverage` is UNHEALTHY);
    /// `DescribeServices` ([`DESCRIBE_SERVICES_BATCH`] at a time) reads the services. A
    /// cluster that DescribeClusters reported without running tasks, with nothing to
    /// watch, costs no call. Each described service whose controller is `CODE_DEPLOY`
    /// gets what CodeDeploy says about it (`codedeploy`: its deployment group and that
    /// group's deployments, see `codedeploy.rs`).
    ///
    /// # Errors
    /// The first failed `ListTasks`, `DescribeTasks` or `DescribeServices` call. A failed
    /// CodeDeploy call is no error: that service's `codedeploy` is `Unknown`.
    ///
    /// # Caveats
    /// A task is remembered only once it is RUNNING (a PENDING one is described again),
    /// and forgotten when it is no longer listed. Services that `DescribeServices` reports
    /// missing are left out.
    pub async fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
        want: Want,
    ) -> Result<Workload, AwsError> {
        if cluster.running_tasks == 0 && watch.is_empty() {
            self.tasks.lock().remove(&cluster.arn);
            return Ok(Workload::default());
        }
        let unhealthy = cluster.coverage.as_ref().is_some_and(|c| !c.healthy());
        let listed = self.list_running_tasks(&cluster.arn).await?;
        let mut known = self.tasks.lock().remove(&cluster.arn).unwrap_or_default();
        let stale = stale_tasks(&listed, &mut known, unhealthy);
        // On failure the cluster's cache is dropped: the next pass describes everything.
        let described = self.describe_tasks(&cluster.arn, &stale).await?;
        known.extend(
            described
                .into_iter()
                .map(|(arn, facts)| (Box::from(task_id(&arn)), facts)),
        );
        // Only what is listed now stays: stopped tasks are forgotten. Counted in the
        // order ECS listed them, so "the first reason" is the same on every pass.
        let mut current = HashMap::with_capacity(listed.len());
        for arn in &listed {
            if let Some((id, facts)) = known.remove_entry(task_id(arn)) {
                current.insert(id, facts);
            }
        }
        let mut workload = tally(listed.iter().filter_map(|arn| current.get(task_id(arn))));
        tracing::debug!(
            cluster = %cluster.name,
            running = current.len(),
            described = stale.len(),
            unhealthy,
            "read the cluster's tasks"
        );
        self.tasks.lock().insert(cluster.arn.clone(), current);

        let names: BTreeSet<&str> = workload
            .service_tasks
            .iter()
            .filter(|(_, counts)| {
                counts.without_agent > 0 || (want == Want::Offboarding && counts.with_agent() > 0)
            })
            .map(|(name, _)| name.as_str())
            .chain(watch.iter().map(|w| w.rsplit('/').next().unwrap_or(w)))
            .collect();
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        workload.services = self.describe_services(&cluster.arn, &names).await?;
        // CodeDeploy decides how a CODE_DEPLOY service is redeployed; a failure to read it
        // is the service's state (`Unknown`), not the workload's.
        for service in workload
            .services
            .iter_mut()
            .filter(|s| s.controller == DeploymentController::CodeDeploy)
        {
            service.codedeploy = Some(self.read_codedeploy(&cluster.name, &service.name).await);
        }
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
        let mut filter = CoverageFilterCriteria::builder().filter_criterion(
            CoverageFilterCriterion::builder()
                .criterion_key(CoverageFilterCriterionKey::ResourceType)
                .filter_condition(CoverageFilterCondition::builder().equals("ECS").build())
                .build(),
        );
        // A delegated administrator's ListCoverage also lists its members' resources (API
        // reference, ListCoverage): only this target's account, when it is known.
        if let Some(account) = &self.account_hint {
            filter = filter.filter_criterion(
                CoverageFilterCriterion::builder()
                    .criterion_key(CoverageFilterCriterionKey::AccountId)
                    .filter_condition(CoverageFilterCondition::builder().equals(account).build())
                    .build(),
            );
        }
        let filter = filter.build();
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
            let page =
                page.map_err(|e| self.coverage_failed(detector_id, classify("ListCoverage", e)))?;
            for resource in page.resources() {
                let Some(cluster_arn) = resource.resource_id() else {
                    continue;
                };
                records.insert(cluster_arn.to_owned(), coverage_record(resource));
            }
        }
        Ok(records)
    }

    /// A member keeps its detector id without reading the detector (that goes through its
    /// administrator), so a `ListCoverage` that fails as if the kept id were gone forgets
    /// it: the next pass lists the member's detectors again.
    fn coverage_failed(&self, detector_id: &str, e: AwsError) -> AwsError {
        if matches!(self.org, crate::org::OrgClient::Member(_))
            && matches!(e.kind, ErrorKind::NotFound | ErrorKind::Other)
            && self.tasks.detector_id().as_deref() == Some(detector_id)
        {
            self.tasks.set_detector_id(None);
        }
        e
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

/// The ARNs of `listed` tasks to describe: those not in `known`, and those whose cached
/// agent state may be stale ([`TaskFacts::describe_again`]); the stale ones are dropped
/// from `known` (a task that is no longer RUNNING when described again is forgotten).
fn stale_tasks(
    listed: &[String],
    known: &mut HashMap<Box<str>, TaskFacts>,
    unhealthy: bool,
) -> Vec<String> {
    let mut stale = Vec::new();
    for arn in listed {
        let id = task_id(arn);
        match known.get(id) {
            Some(facts) if !facts.describe_again(unhealthy) => {}
            Some(_) => {
                known.remove(id);
                stale.push(arn.clone());
            }
            None => stale.push(arn.clone()),
        }
    }
    stale
}

/// A coverage record from GuardDuty's `CoverageResource`, with `fargateDetails` (bounded:
/// the text is AWS's).
fn coverage_record(resource: &aws_sdk_guardduty::types::CoverageResource) -> CoverageRecord {
    let fargate = resource
        .resource_details()
        .and_then(|d| d.ecs_cluster_details())
        .and_then(|d| d.fargate_details());
    CoverageRecord {
        status: resource
            .coverage_status()
            .map_or(CoverageStatus::Other(String::new()), |s| {
                CoverageStatus::from_aws(s.as_str())
            }),
        issue: resource.issue().map(|i| bounded(i, MAX_ISSUE_CHARS)),
        management_type: fargate
            .and_then(|f| f.management_type())
            .map(|m| bounded(m.as_str(), MAX_ISSUE_CHARS)),
        fargate_issues: fargate
            .map(|f| f.issues())
            .unwrap_or_default()
            .iter()
            .take(MAX_FARGATE_ISSUES)
            .map(|i| bounded(i, MAX_ISSUE_CHARS))
            .collect(),
    }
}

fn task_facts(task: &aws_sdk_ecs::types::Task) -> TaskFacts {
    let service = task
        .group()
        .and_then(|g| g.strip_prefix(SERVICE_GROUP_PREFIX))
        .map(Box::from);
    let agent = agent_state(task.containers());
    TaskFacts {
        // Only tasks without a running agent are counted per deployment, so only they
        // keep it (a task whose agent state changes is described again, whole): the cache
        // of a large covered fleet holds no deployment id per task.
        deployment: service
            .as_ref()
            .filter(|_| agent != Agent::Running)
            .and(task.started_by())
            .map(|d| Box::from(bounded(d, MAX_REASON_CHARS))),
        service,
        fargate: task.launch_type() == Some(&LaunchType::Fargate)
            || task
                .capacity_provider_name()
                .is_some_and(|p| FARGATE_PROVIDERS.contains(&p)),
        agent,
        started_at_ms: task.started_at().and_then(|t| t.to_millis().ok()),
    }
}

/// The state of a task's agent: RUNNING if any agent container runs, else PENDING if
/// one may still start, else STOPPED if one stopped, else missing.
fn agent_state(containers: &[aws_sdk_ecs::types::Container]) -> Agent {
    let rank = |a: &Agent| match a {
        Agent::Missing => 0,
        Agent::Stopped(_) => 1,
        Agent::Pending => 2,
        Agent::Running => 3,
    };
    let mut best = Agent::Missing;
    for c in containers
        .iter()
        .filter(|c| c.name().is_some_and(is_agent_container))
    {
        let state = match c.last_status() {
            Some("RUNNING") => Agent::Running,
            Some("STOPPED") => Agent::Stopped(stop_reason(c)),
            _ => Agent::Pending,
        };
        if rank(&state) > rank(&best) {
            best = state;
        }
    }
    best
}

/// AWS's words for a stopped container: its `reason`, else its exit code.
fn stop_reason(c: &aws_sdk_ecs::types::Container) -> Option<Box<str>> {
    c.reason()
        .filter(|r| !r.trim().is_empty())
        .map(|r| bounded(r, MAX_REASON_CHARS))
        .or_else(|| c.exit_code().map(|code| format!("exit code {code}")))
        .map(Box::from)
}

/// Counts RUNNING tasks: Fargate ones per service or standalone, the rest as other. A
/// task is covered only while its agent RUNS; the others are counted per deployment
/// (service tasks) with the first STOPPED agent's reason.
fn tally<'a>(tasks: impl Iterator<Item = &'a TaskFacts>) -> Workload {
    let mut workload = Workload::default();
    for task in tasks {
        let runs = task.agent_runs();
        if runs {
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
        if runs {
            continue;
        }
        counts.without_agent += 1;
        let reason = match &task.agent {
            Agent::Stopped(reason) => {
                counts.agent_stopped.add(reason.as_deref());
                reason.as_deref()
            }
            _ => None,
        };
        if let (Some(_), Some(deployment)) = (&task.service, &task.deployment) {
            counts
                .by_deployment
                .entry(deployment.to_string())
                .or_default()
                .add(reason);
        }
    }
    workload
}

/// Most deployments (or task sets) kept per service, PRIMARY first: ECS keeps a few per
/// service, and every answer is hostile input.
pub const MAX_SERVICE_DEPLOYMENTS: usize = 16;
/// Longest ECS name kept (a container name, ECS's own limit): a longer one is no name ECS
/// gave, and a cut one would name another container.
const MAX_ECS_NAME_CHARS: usize = 255;
/// Longest status or strategy text parsed: AWS's words, kept when unknown (`Other`).
const MAX_STATUS_CHARS: usize = 64;

pub(crate) fn observed_service(service: &aws_sdk_ecs::types::Service) -> ObservedService {
    let strategy = service.capacity_provider_strategy();
    let fargate = service.launch_type() == Some(&LaunchType::Fargate)
        || (!strategy.is_empty()
            && strategy
                .iter()
                .all(|s| FARGATE_PROVIDERS.contains(&s.capacity_provider())));
    let controller = service
        .deployment_controller()
        .map_or(DeploymentController::Ecs, |c| {
            DeploymentController::from_aws(&bounded(c.r#type().as_str(), MAX_STATUS_CHARS))
        });
    let deployment_strategy = service
        .deployment_configuration()
        .and_then(|c| c.strategy())
        .map_or(DeploymentStrategy::Rolling, |s| {
            DeploymentStrategy::from_aws(&bounded(s.as_str(), MAX_STATUS_CHARS))
        });
    let load_balancer = service.load_balancers().iter().find_map(|lb| {
        let name = lb.container_name()?;
        let port = lb.container_port()?;
        (!name.is_empty() && name.chars().count() <= MAX_ECS_NAME_CHARS).then(|| {
            LoadBalancerTarget {
                container_name: name.to_owned(),
                container_port: port,
            }
        })
    });
    // CODE_DEPLOY and EXTERNAL services report task sets, not deployments.
    let task_sets = controller != DeploymentController::Ecs && !service.task_sets().is_empty();
    let (mut deployments, primary_task_definition, primary_platform) = if task_sets {
        let primary = service
            .task_sets()
            .iter()
            .find(|t| t.status() == Some("PRIMARY"));
        (
            service
                .task_sets()
                .iter()
                .map(task_set_deployment)
                .collect(),
            primary.and_then(|t| t.task_definition()),
            primary.and_then(|t| t.platform_version()),
        )
    } else {
        let primary = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        (
            service
                .deployments()
                .iter()
                .map(|d| ObservedDeployment {
                    id: bounded(d.id().unwrap_or_default(), MAX_REASON_CHARS),
                    status: DeploymentStatus::from_aws(&bounded(
                        d.status().unwrap_or_default(),
                        MAX_STATUS_CHARS,
                    )),
                    rollout_state: d
                        .rollout_state()
                        .map(|s| RolloutState::from_aws(&bounded(s.as_str(), MAX_STATUS_CHARS))),
                    created_at_ms: d
                        .created_at()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or_default(),
                    started_by: None,
                })
                .collect::<Vec<_>>(),
            primary.and_then(|d| d.task_definition()),
            primary.and_then(|d| d.platform_version()),
        )
    };
    // Stable: the other deployments keep the order ECS listed them in.
    deployments.sort_by_key(|d| d.status != DeploymentStatus::Primary);
    deployments.truncate(MAX_SERVICE_DEPLOYMENTS);
    let task_definition = primary_task_definition
        .or(service.task_definition())
        .map(str::to_owned);
    let platform_version = primary_platform
        .or(service.platform_version())
        .map(str::to_owned);
    ObservedService {
        task_definition,
        platform_version,
        name: service.service_name().unwrap_or_default().to_owned(),
        arn: service.service_arn().unwrap_or_default().to_owned(),
        status: ServiceStatus::from_aws(service.status().unwrap_or_default()),
        fargate,
        deployments,
        controller,
        strategy: deployment_strategy,
        load_balancer,
        ..ObservedService::default()
    }
}

/// A task set as a deployment: `PRIMARY` and `ACTIVE` as ECS deployments say them,
/// `DRAINING` (and anything else) as `Other`; no rollout state (task sets have none);
/// started by `startedBy` (`CodeDeploy`, or the external deployer), else `externalId`.
fn task_set_deployment(t: &aws_sdk_ecs::types::TaskSet) -> ObservedDeployment {
    let status = match t.status() {
        Some("PRIMARY") => DeploymentStatus::Primary,
        Some("ACTIVE") => DeploymentStatus::Active,
        other => DeploymentStatus::Other(bounded(other.unwrap_or_default(), MAX_STATUS_CHARS)),
    };
    ObservedDeployment {
        id: bounded(t.id().unwrap_or_default(), MAX_REASON_CHARS),
        status,
        rollout_state: None,
        created_at_ms: t
            .created_at()
            .and_then(|c| c.to_millis().ok())
            .unwrap_or_default(),
        started_by: t
            .started_by()
            .filter(|s| !s.is_empty())
            .or(t.external_id().filter(|s| !s.is_empty()))
            .map(|s| bounded(s, MAX_REASON_CHARS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tasks_of_clusters_no_longer_observed_are_forgotten() {
        let cache = TaskCache::default();
        for arn in ["arn:c/kept", "arn:c/deleted"] {
            cache.lock().insert(arn.to_owned(), HashMap::new());
        }
        cache.retain_clusters(["arn:c/kept", "arn:c/new"].into_iter());
        let left: Vec<String> = cache.lock().keys().cloned().collect();
        assert_eq!(left, ["arn:c/kept"]);
    }
    use aws_sdk_ecs::types::{
        CapacityProviderStrategyItem, Container, Deployment, DeploymentRolloutState, Service, Task,
    };
    use aws_smithy_types::DateTime;
    use gec_model::observed::AgentGap;

    /// A RUNNING task; each container is `name` or `name=STATUS` (a bare name RUNS).
    fn task(group: &str, launch: LaunchType, containers: &[&str], started: i64) -> Task {
        let mut t = Task::builder()
            .group(group)
            .launch_type(launch)
            .last_status("RUNNING")
            .started_by("ecs-svc/1")
            .started_at(DateTime::from_millis(started));
        for spec in containers {
            let (name, status) = spec.split_once('=').unwrap_or((spec, "RUNNING"));
            t = t.containers(Container::builder().name(name).last_status(status).build());
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
        let mut api = counts(2, 1);
        api.by_deployment.insert(
            "ecs-svc/1".into(),
            AgentGap {
                tasks: 1,
                reason: None,
            },
        );
        assert_eq!(w.service_tasks["api"], api, "one of two lacks it");
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

    fn stopped_agent(reason: Option<&str>, exit: Option<i32>) -> Container {
        Container::builder()
            .name("aws-guardduty-agent-abc")
            .last_status("STOPPED")
            .set_reason(reason.map(str::to_owned))
            .set_exit_code(exit)
            .build()
    }

    fn with_container(t: Task, c: Container, started_by: &str) -> Task {
        let mut b = Task::builder()
            .set_group(t.group().map(str::to_owned))
            .set_launch_type(t.launch_type().cloned())
            .last_status("RUNNING")
            .started_by(started_by)
            .set_started_at(t.started_at().copied());
        for existing in t.containers() {
            b = b.containers(existing.clone());
        }
        b.containers(c).build()
    }

    #[test]
    fn only_a_running_agent_covers_a_task_and_stopped_ones_carry_aws_words() {
        let app = || task("service:api", LaunchType::Fargate, &["app"], 50);
        let pull = "CannotPullContainerError: pull access denied";
        let tasks = [
            // (1) RUNNING agent, deployment 1.
            task(
                "service:api",
                LaunchType::Fargate,
                &["app", "aws-guardduty-agent-x"],
                40,
            ),
            // (2) PENDING agent, deployment 2.
            with_container(
                app(),
                Container::builder()
                    .name("aws-guardduty-agent-x")
                    .last_status("PENDING")
                    .build(),
                "ecs-svc/2",
            ),
            // (3) STOPPED with a reason, deployment 2.
            with_container(app(), stopped_agent(Some(pull), Some(1)), "ecs-svc/2"),
            // (4) STOPPED with only an exit code, deployment 3.
            with_container(app(), stopped_agent(None, Some(137)), "ecs-svc/3"),
            // (5) no agent at all, deployment 1.
            app(),
            // (6) standalone, STOPPED agent; (7) standalone, RUNNING agent started first.
            with_container(
                task("family:job", LaunchType::Fargate, &["job"], 10),
                stopped_agent(Some("OutOfMemoryError"), None),
                "me",
            ),
            task(
                "family:job",
                LaunchType::Fargate,
                &["job", "aws-gd-agent"],
                5,
            ),
        ];
        let facts: Vec<TaskFacts> = tasks.iter().map(task_facts).collect();
        let w = tally(facts.iter());
        let api = &w.service_tasks["api"];
        assert_eq!((api.running, api.without_agent), (5, 4));
        assert_eq!(api.with_agent(), 1);
        assert_eq!(
            api.agent_stopped,
            AgentGap {
                tasks: 2,
                reason: Some(pull.into())
            },
            "the first stopped agent's reason"
        );
        let gap = |tasks, reason: Option<&str>| AgentGap {
            tasks,
            reason: reason.map(str::to_owned),
        };
        assert_eq!(
            api.by_deployment,
            BTreeMap::from([
                ("ecs-svc/1".to_owned(), gap(1, None)),
                ("ecs-svc/2".to_owned(), gap(2, Some(pull))),
                ("ecs-svc/3".to_owned(), gap(1, Some("exit code 137"))),
            ]),
            "a PENDING or missing agent has no reason; a STOPPED one without a reason has its exit code"
        );
        assert_eq!(w.standalone_tasks.running, 2);
        assert_eq!(w.standalone_tasks.without_agent, 1);
        assert_eq!(
            w.standalone_tasks.agent_stopped.reason.as_deref(),
            Some("OutOfMemoryError")
        );
        assert!(
            w.standalone_tasks.by_deployment.is_empty(),
            "startedBy of a standalone task is no deployment"
        );
        assert_eq!(w.agent_tasks(), 2);
        assert_eq!(
            w.earliest_agent_task_ms,
            Some(5),
            "only tasks whose agent runs prove coverage"
        );
        let stopped_first = [with_container(
            app(),
            stopped_agent(None, None),
            "ecs-svc/9",
        )];
        let facts: Vec<TaskFacts> = stopped_first.iter().map(task_facts).collect();
        let w = tally(facts.iter());
        assert_eq!(w.earliest_agent_task_ms, None);
        assert_eq!(w.service_tasks["api"].agent_stopped, gap(1, None));
    }

    #[test]
    fn a_running_agent_wins_over_a_stopped_one_and_reasons_are_bounded() {
        let long = "x".repeat(10 * MAX_REASON_CHARS);
        let t = with_container(
            task(
                "service:api",
                LaunchType::Fargate,
                &["aws-guardduty-agent-a"],
                1,
            ),
            stopped_agent(Some(&long), None),
            "ecs-svc/1",
        );
        assert_eq!(task_facts(&t).agent, Agent::Running);
        let t = with_container(
            task("service:api", LaunchType::Fargate, &["app"], 1),
            stopped_agent(Some(&long), None),
            "ecs-svc/1",
        );
        let Agent::Stopped(Some(reason)) = task_facts(&t).agent else {
            panic!("a stopped agent");
        };
        assert_eq!(
            reason.chars().count(),
            MAX_REASON_CHARS + 1,
            "cut, with an ellipsis"
        );
    }

    /// Cached facts of one task with this agent state.
    fn cached(agent: Agent) -> TaskFacts {
        TaskFacts {
            service: Some("api".into()),
            fargate: true,
            deployment: None,
            agent,
            started_at_ms: None,
        }
    }

    #[test]
    fn the_cache_keeps_an_agent_state_only_while_it_cannot_change_unseen() {
        let arn = |id: &str| format!("arn:aws:ecs:us-east-1:1:task/c/{id}");
        let listed: Vec<String> = ["run", "pend", "stop", "none", "new"]
            .iter()
            .map(|id| arn(id))
            .collect();
        let known = || {
            HashMap::from([
                (Box::from("run"), cached(Agent::Running)),
                (Box::from("pend"), cached(Agent::Pending)),
                (Box::from("stop"), cached(Agent::Stopped(None))),
                (Box::from("none"), cached(Agent::Missing)),
                (Box::from("gone"), cached(Agent::Running)),
            ])
        };
        // (label, GuardDuty reports the cluster UNHEALTHY, tasks described again)
        let rows = [
            ("healthy", false, vec!["pend", "new"]),
            ("unhealthy", true, vec!["run", "pend", "new"]),
        ];
        for (label, unhealthy, want) in rows {
            let mut k = known();
            let stale = stale_tasks(&listed, &mut k, unhealthy);
            let want: Vec<String> = want.into_iter().map(arn).collect();
            assert_eq!(stale, want, "{label}");
            for id in ["pend", "new"] {
                assert!(!k.contains_key(id), "{label}: {id} is read afresh");
            }
            assert_eq!(k.contains_key("run"), !unhealthy, "{label}");
            assert!(k.contains_key("stop") && k.contains_key("none"), "{label}");
        }
    }

    #[test]
    fn a_service_reports_the_task_definition_and_platform_of_its_primary_deployment() {
        let d = |id: &str, status: &str, td: &str, pv: Option<&str>| {
            Deployment::builder()
                .id(id)
                .status(status)
                .task_definition(td)
                .set_platform_version(pv.map(str::to_owned))
                .build()
        };
        let s = Service::builder()
            .service_name("api")
            .task_definition("arn:td/api:1")
            .platform_version("LATEST")
            .deployments(d("ecs-svc/1", "ACTIVE", "arn:td/api:1", Some("1.3.0")))
            .deployments(d("ecs-svc/2", "PRIMARY", "arn:td/api:2", Some("1.4.0")))
            .build();
        let o = observed_service(&s);
        assert_eq!(o.task_definition.as_deref(), Some("arn:td/api:2"));
        assert_eq!(o.platform_version.as_deref(), Some("1.4.0"));
        let s = Service::builder()
            .service_name("api")
            .task_definition("arn:td/api:1")
            .platform_version("1.3.0")
            .deployments(
                Deployment::builder()
                    .id("ecs-svc/3")
                    .status("PRIMARY")
                    .build(),
            )
            .build();
        let o = observed_service(&s);
        assert_eq!(
            (o.task_definition.as_deref(), o.platform_version.as_deref()),
            (Some("arn:td/api:1"), Some("1.3.0")),
            "the service's own fields when the PRIMARY deployment does not say"
        );
    }

    #[test]
    fn a_service_reports_its_controller_strategy_and_load_balancer_with_ecs_defaults() {
        use aws_sdk_ecs::types::{
            DeploymentConfiguration, DeploymentController as Controller, DeploymentControllerType,
            DeploymentStrategy as Strategy, LoadBalancer,
        };
        let bare = observed_service(&Service::builder().service_name("api").build());
        assert_eq!(
            bare.controller,
            DeploymentController::Ecs,
            "ECS when absent"
        );
        assert_eq!(
            bare.strategy,
            DeploymentStrategy::Rolling,
            "ROLLING when absent"
        );
        assert_eq!(bare.load_balancer, None);
        assert_eq!(bare.codedeploy, None, "read by observe_workload, not here");
        let controller =
            |t: DeploymentControllerType| Controller::builder().r#type(t).build().expect("a type");
        let s = Service::builder()
            .service_name("api")
            .deployment_controller(controller(DeploymentControllerType::Ecs))
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(Strategy::BlueGreen)
                    .build(),
            )
            // Without a container (a Classic Load Balancer of an old service), then the
            // one CodeDeploy needs, then a second one.
            .load_balancers(LoadBalancer::builder().load_balancer_name("clb").build())
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn("arn:tg/blue")
                    .container_name("web")
                    .container_port(8080)
                    .build(),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .container_name("admin")
                    .container_port(9090)
                    .build(),
            )
            .build();
        let o = observed_service(&s);
        assert_eq!(o.controller, DeploymentController::Ecs);
        assert_eq!(o.strategy, DeploymentStrategy::BlueGreen);
        assert_eq!(
            o.load_balancer,
            Some(LoadBalancerTarget {
                container_name: "web".into(),
                container_port: 8080
            }),
            "the first entry with both a container name and port"
        );
        for (aws, want) in [
            (
                DeploymentControllerType::CodeDeploy,
                DeploymentController::CodeDeploy,
            ),
            (
                DeploymentControllerType::External,
                DeploymentController::External,
            ),
            (
                DeploymentControllerType::from("SOMETHING_NEW"),
                DeploymentController::Other("SOMETHING_NEW".into()),
            ),
        ] {
            let s = Service::builder()
                .service_name("api")
                .deployment_controller(controller(aws))
                .build();
            assert_eq!(observed_service(&s).controller, want);
        }
        let long = LoadBalancer::builder()
            .container_name("x".repeat(MAX_ECS_NAME_CHARS + 1))
            .container_port(80)
            .build();
        let s = Service::builder()
            .service_name("api")
            .load_balancers(long)
            .build();
        assert_eq!(
            observed_service(&s).load_balancer,
            None,
            "a name longer than ECS allows is no container ECS named"
        );
    }

    #[test]
    fn a_code_deploy_or_external_service_reports_its_task_sets_primary_first() {
        use aws_sdk_ecs::types::{
            DeploymentController as Controller, DeploymentControllerType, TaskSet,
        };
        let set = |id: &str, status: &str, td: &str, created: i64| {
            TaskSet::builder()
                .id(id)
                .status(status)
                .task_definition(td)
                .platform_version(format!("pv-{id}"))
                .created_at(DateTime::from_millis(created))
        };
        let service = |t: DeploymentControllerType| {
            Service::builder()
                .service_name("api")
                .task_definition("arn:td/api:1")
                .deployment_controller(Controller::builder().r#type(t).build().expect("type"))
                .task_sets(
                    set("ecs-svc/old", "DRAINING", "arn:td/api:1", 10)
                        .started_by("CodeDeploy")
                        .build(),
                )
                .task_sets(
                    set("ecs-svc/blue", "ACTIVE", "arn:td/api:1", 20)
                        .external_id("deployer-7")
                        .build(),
                )
                .task_sets(
                    set("ecs-svc/green", "PRIMARY", "arn:td/api:2", 30)
                        .started_by("CodeDeploy")
                        .external_id("ignored")
                        .build(),
                )
                // An ECS deployment as well: not what such a service is read from.
                .deployments(
                    Deployment::builder()
                        .id("ecs-svc/ignored")
                        .status("PRIMARY")
                        .build(),
                )
                .build()
        };
        for t in [
            DeploymentControllerType::CodeDeploy,
            DeploymentControllerType::External,
        ] {
            let o = observed_service(&service(t.clone()));
            let got: Vec<(&str, DeploymentStatus, i64, Option<&str>)> = o
                .deployments
                .iter()
                .map(|d| {
                    (
                        d.id.as_str(),
                        d.status.clone(),
                        d.created_at_ms,
                        d.started_by.as_deref(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    (
                        "ecs-svc/green",
                        DeploymentStatus::Primary,
                        30,
                        Some("CodeDeploy")
                    ),
                    (
                        "ecs-svc/old",
                        DeploymentStatus::Other("DRAINING".into()),
                        10,
                        Some("CodeDeploy")
                    ),
                    (
                        "ecs-svc/blue",
                        DeploymentStatus::Active,
                        20,
                        Some("deployer-7")
                    ),
                ],
                "{t:?}: PRIMARY first, the others as ECS listed them"
            );
            assert!(o.deployments.iter().all(|d| d.rollout_state.is_none()));
            assert_eq!(o.task_definition.as_deref(), Some("arn:td/api:2"), "{t:?}");
            assert_eq!(o.platform_version.as_deref(), Some("pv-ecs-svc/green"));
            assert!(o.rollout_in_progress(), "task sets next to the PRIMARY one");
        }
        // An ECS service keeps reading its deployments (ECS reports no task sets for it).
        let o = observed_service(&service(DeploymentControllerType::Ecs));
        assert_eq!(o.deployments.len(), 1);
        assert_eq!(o.deployments[0].id, "ecs-svc/ignored");
        assert_eq!(o.deployments[0].started_by, None);
    }

    #[test]
    fn deployments_of_a_service_are_bounded_primary_kept() {
        let mut s = Service::builder().service_name("api");
        for i in 0..(MAX_SERVICE_DEPLOYMENTS + 10) {
            s = s.deployments(
                Deployment::builder()
                    .id(format!("ecs-svc/{i}"))
                    .status("ACTIVE")
                    .build(),
            );
        }
        s = s.deployments(
            Deployment::builder()
                .id("ecs-svc/p")
                .status("PRIMARY")
                .build(),
        );
        let o = observed_service(&s.build());
        assert_eq!(o.deployments.len(), MAX_SERVICE_DEPLOYMENTS);
        assert_eq!(o.deployments[0].id, "ecs-svc/p");
    }

    #[test]
    fn coverage_records_carry_fargate_details_bounded() {
        use aws_sdk_guardduty::types::{
            CoverageEcsClusterDetails, CoverageResource, CoverageResourceDetails,
            CoverageStatus as GdStatus, FargateDetails, ManagementType,
        };
        let mut fargate = FargateDetails::builder().management_type(ManagementType::AutoManaged);
        for i in 0..(MAX_FARGATE_ISSUES + 5) {
            fargate = fargate.issues(format!("issue {i}"));
        }
        let resource = CoverageResource::builder()
            .resource_id("arn:aws:ecs:us-east-1:1:cluster/apps")
            .coverage_status(GdStatus::Unhealthy)
            .issue("agent not reporting")
            .resource_details(
                CoverageResourceDetails::builder()
                    .ecs_cluster_details(
                        CoverageEcsClusterDetails::builder()
                            .fargate_details(fargate.build())
                            .build(),
                    )
                    .build(),
            )
            .build();
        let r = coverage_record(&resource);
        assert_eq!(r.status, CoverageStatus::Unhealthy);
        assert_eq!(r.issue.as_deref(), Some("agent not reporting"));
        assert_eq!(r.management_type.as_deref(), Some("AUTO_MANAGED"));
        assert_eq!(r.fargate_issues.len(), MAX_FARGATE_ISSUES);
        assert_eq!(r.fargate_issues[0], "issue 0");
        let bare = coverage_record(&CoverageResource::builder().build());
        assert_eq!(bare.management_type, None);
        assert!(bare.fargate_issues.is_empty());
    }

    mod against_mocks {
        use super::*;
        use crate::client::mocked;
        use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
        use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
        use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
        use aws_smithy_mocks::mock;

        const CLUSTER: &str = "arn:aws:ecs:us-east-1:1:cluster/apps";

        fn running(id: &str, containers: &[&str]) -> Task {
            let mut t = task("service:api", LaunchType::Fargate, containers, 1);
            t.task_arn = Some(format!("arn:aws:ecs:us-east-1:1:task/apps/{id}"));
            t
        }

        fn cluster(coverage: Option<&str>) -> ObservedCluster {
            ObservedCluster {
                name: "apps".into(),
                arn: CLUSTER.into(),
                running_tasks: 2,
                coverage: coverage.map(|s| CoverageRecord {
                    status: CoverageStatus::from_aws(s),
                    ..CoverageRecord::default()
                }),
                ..ObservedCluster::default()
            }
        }

        /// Two passes over a cluster whose two tasks run the agent (the second one's
        /// agent stops between the passes); returns the DescribeTasks calls and the
        /// second pass's workload.
        async fn two_passes(coverage: Option<&str>) -> (usize, Workload) {
            let list = mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("arn:aws:ecs:us-east-1:1:task/apps/a")
                    .task_arns("arn:aws:ecs:us-east-1:1:task/apps/b")
                    .build()
            });
            let describe = mock!(aws_sdk_ecs::Client::describe_tasks)
                .sequence()
                .output(|| {
                    DescribeTasksOutput::builder()
                        .tasks(running("a", &["app", "aws-guardduty-agent-x"]))
                        .tasks(running("b", &["app", "aws-guardduty-agent-x"]))
                        .build()
                })
                .output(|| {
                    DescribeTasksOutput::builder()
                        .tasks(running("a", &["app", "aws-guardduty-agent-x"]))
                        .tasks(running("b", &["app", "aws-guardduty-agent-x=STOPPED"]))
                        .build()
                })
                .build();
            let services = mock!(aws_sdk_ecs::Client::describe_services)
                .then_output(|| DescribeServicesOutput::builder().build());
            let client = mocked("us-east-1", &[&list, &describe, &services]);
            let c = cluster(coverage);
            client
                .observe_workload(&c, &[], Want::Coverage)
                .await
                .expect("first pass");
            let second = client
                .observe_workload(&c, &[], Want::Coverage)
                .await
                .expect("second pass");
            (describe.num_calls(), second)
        }

        #[tokio::test]
        async fn an_agent_that_stops_is_seen_next_pass_where_guardduty_reports_unhealthy() {
            let (calls, w) = two_passes(Some("UNHEALTHY")).await;
            assert_eq!(calls, 2, "the running agents are described again");
            assert_eq!(w.service_tasks["api"].without_agent, 1);
            let (calls, w) = two_passes(Some("HEALTHY")).await;
            assert_eq!(
                calls, 1,
                "a healthy cluster costs no DescribeTasks in steady state"
            );
            assert_eq!(w.service_tasks["api"].without_agent, 0);
            let (calls, _) = two_passes(None).await;
            assert_eq!(calls, 1, "no record: the cache is trusted");
        }

        #[tokio::test]
        async fn offboarding_also_describes_the_services_whose_tasks_run_the_agent() {
            let list = mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| {
                ListTasksOutput::builder()
                    .task_arns("arn:aws:ecs:us-east-1:1:task/apps/a")
                    .build()
            });
            let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
                DescribeTasksOutput::builder()
                    .tasks(running("a", &["app", "aws-guardduty-agent-x"]))
                    .build()
            });
            let services = mock!(aws_sdk_ecs::Client::describe_services)
                .match_requests(|r| r.services() == ["api".to_owned()])
                .then_output(|| {
                    DescribeServicesOutput::builder()
                        .services(Service::builder().service_name("api").build())
                        .build()
                });
            let client = mocked("us-east-1", &[&list, &describe, &services]);
            let w = client
                .observe_workload(&cluster(None), &[], Want::Coverage)
                .await
                .expect("coverage read");
            assert!(w.services.is_empty(), "every task runs the agent");
            assert_eq!(services.num_calls(), 0);
            let w = client
                .observe_workload(&cluster(None), &[], Want::Offboarding)
                .await
                .expect("offboarding read");
            assert_eq!(w.agent_tasks(), 1);
            assert_eq!(w.services.len(), 1);
            assert_eq!(services.num_calls(), 1);
        }
    }
}
