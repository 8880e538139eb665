//! Services, tasks and rollouts of the fake cloud, on the engine's clock (tokio's paused
//! time in tests): a forced deployment is IN_PROGRESS for `rollout_ms`, then replaces the
//! service's tasks — with the agent when the cluster is covered at that moment — and ends
//! COMPLETED, or FAILED under `fail_next`. A `CODE_DEPLOY` service is redeployed by a
//! CodeDeploy deployment of its group instead (InProgress for `rollout_ms`, then
//! Succeeded or, under `fail_next`, Failed); an `EXTERNAL` one by nobody.

use std::collections::BTreeMap;

use gec_aws::Want;
use gec_model::observed::{
    CodeDeploy, CodeDeployDeployment, CoverageRecord, DeploymentController, DeploymentGroupRef,
    LoadBalancerTarget, ObservedDeployment, ObservedService, Preflight, TaskCounts, Workload,
};
use gec_model::testing::{codedeploy_deployment, deployment};

/// One task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTask {
    /// Task ARN.
    pub arn: String,
    /// Runs the agent container.
    pub has_agent: bool,
    /// When it started (Unix ms).
    pub started_ms: i64,
}

/// One service.
#[derive(Debug, Clone)]
pub struct FakeService {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Runs on Fargate.
    pub fargate: bool,
    /// RUNNING tasks.
    pub tasks: Vec<FakeTask>,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<ObservedDeployment>,
    /// New tasks come up without the agent even when covered.
    pub agent_missing: bool,
    /// The next rollout ends FAILED.
    pub fail_next: bool,
    /// When the IN_PROGRESS deployment finishes.
    finishes_ms: Option<i64>,
    /// Forced deployments so far.
    pub redeploys: u32,
    /// What `preflight` answers for the service; `None`: passed.
    pub preflight: Option<Preflight>,
    /// Its deployment controller.
    pub controller: DeploymentController,
    /// `CODE_DEPLOY`: the deployment group naming it, if any.
    pub group: Option<DeploymentGroupRef>,
    /// `CODE_DEPLOY`: its group's deployments, oldest first.
    pub codedeploy: Vec<CodeDeployDeployment>,
    /// `CODE_DEPLOY`: CodeDeploy cannot be read (the adapter reports it unknown).
    pub codedeploy_unreadable: bool,
}

impl FakeService {
    fn observed(&self) -> ObservedService {
        let codedeploy = (self.controller == DeploymentController::CodeDeploy).then(|| {
            match (&self.group, self.codedeploy_unreadable) {
                (_, true) => CodeDeploy::Unknown("AccessDenied: not authorized".into()),
                (None, false) => CodeDeploy::NoGroup,
                (Some(group), false) => CodeDeploy::Group {
                    group: group.clone(),
                    deployments: self.codedeploy.iter().rev().cloned().collect(),
                },
            }
        });
        ObservedService {
            name: self.name.clone(),
            arn: self.arn(),
            status: "ACTIVE".into(),
            fargate: self.fargate,
            deployments: self.deployments.clone(),
            controller: self.controller.clone(),
            load_balancer: Some(LoadBalancerTarget {
                container_name: "app".into(),
                container_port: 80,
            }),
            task_definition: Some(format!(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/{}:1",
                self.name
            )),
            codedeploy,
            ..ObservedService::default()
        }
    }

    /// Deploys through CodeDeploy, in the group `apps/<name>` (`group`: true) or none.
    pub fn code_deploy(&mut self, group: bool) {
        self.controller = DeploymentController::CodeDeploy;
        self.deployments[0].rollout_state = None;
        self.deployments[0].started_by = Some("CODE_DEPLOY".into());
        self.group = group.then(|| DeploymentGroupRef {
            application: "apps".into(),
            name: self.name.clone(),
        });
    }

    /// Is deployed by an external deployer.
    pub fn external(&mut self) {
        self.controller = DeploymentController::External;
        self.deployments[0].rollout_state = None;
        self.deployments[0].started_by = Some("deployer-1".into());
    }

    fn arn(&self) -> String {
        format!(
            "arn:aws:ecs:us-east-1:123456789012:service/{}/{}",
            self.cluster, self.name
        )
    }
}

/// The workloads of every cluster of a fake target.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Services by (cluster, name).
    pub services: BTreeMap<(String, String), FakeService>,
    /// Standalone tasks per cluster.
    pub standalone: BTreeMap<String, Vec<FakeTask>>,
    /// How long a rollout takes.
    pub rollout_ms: i64,
    /// Most deployments IN_PROGRESS at once, over the whole run.
    pub max_in_progress: usize,
    next_id: u64,
}

impl Fleet {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn tasks(
        &mut self,
        cluster: &str,
        name: &str,
        count: u32,
        has_agent: bool,
        now: i64,
    ) -> Vec<FakeTask> {
        (0..count)
            .map(|_| {
                let id = self.id();
                FakeTask {
                    arn: format!("arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{name}-{id}"),
                    has_agent,
                    started_ms: now,
                }
            })
            .collect()
    }

    /// Adds a service whose `count` tasks started at `created_ms`, with or without the agent.
    pub fn add_service(
        &mut self,
        cluster: &str,
        name: &str,
        count: u32,
        has_agent: bool,
        fargate: bool,
        created_ms: i64,
    ) {
        let tasks = self.tasks(cluster, name, count, has_agent && fargate, created_ms);
        let id = self.id();
        self.services.insert(
            (cluster.to_owned(), name.to_owned()),
            FakeService {
                cluster: cluster.to_owned(),
                name: name.to_owned(),
                fargate,
                tasks,
                deployments: vec![deployment(&format!("ecs-svc/{id}"), created_ms)],
                agent_missing: false,
                fail_next: false,
                finishes_ms: None,
                redeploys: 0,
                preflight: None,
                controller: DeploymentController::Ecs,
                group: None,
                codedeploy: Vec::new(),
                codedeploy_unreadable: false,
            },
        );
    }

    /// Adds standalone Fargate tasks without the agent.
    pub fn add_standalone(&mut self, cluster: &str, count: u32, now: i64) {
        let tasks = self.tasks(cluster, "standalone", count, false, now);
        self.standalone
            .entry(cluster.to_owned())
            .or_default()
            .extend(tasks);
    }

    /// A service by cluster and name.
    pub fn service(&mut self, cluster: &str, name: &str) -> &mut FakeService {
        self.services
            .get_mut(&(cluster.to_owned(), name.to_owned()))
            .expect("the service exists")
    }

    fn in_progress(&self) -> usize {
        self.services
            .values()
            .filter(|s| s.finishes_ms.is_some())
            .count()
    }

    /// Finishes every rollout due by `now`; `covered(cluster)` decides the agent.
    pub fn advance(&mut self, now: i64, covered: &dyn Fn(&str) -> bool) {
        let mut fresh = Vec::new();
        for (key, s) in &self.services {
            if s.finishes_ms.is_some_and(|t| t <= now) {
                fresh.push(key.clone());
            }
        }
        for key in fresh {
            let (cluster, count, agent, fail) = {
                let s = &self.services[&key];
                let agent = covered(&s.cluster) && !s.agent_missing && s.fargate;
                (
                    s.cluster.clone(),
                    u32::try_from(s.tasks.len()).unwrap_or(0),
                    agent,
                    s.fail_next,
                )
            };
            let tasks = if fail {
                Vec::new()
            } else {
                self.tasks(&cluster, &key.1, count, agent, now)
            };
            let task_set = self.id();
            let s = self.services.get_mut(&key).expect("service");
            s.finishes_ms = None;
            if s.controller == DeploymentController::CodeDeploy {
                let Some(d) = s.codedeploy.last_mut() else {
                    continue;
                };
                if fail {
                    s.fail_next = false;
                    d.status = "Failed".into();
                } else {
                    d.status = "Succeeded".into();
                    s.tasks = tasks;
                    let mut set = deployment(&format!("ecs-svc/{task_set}"), d.created_at_ms);
                    set.rollout_state = None;
                    set.started_by = Some("CODE_DEPLOY".into());
                    s.deployments = vec![set];
                }
            } else if fail {
                s.fail_next = false;
                s.deployments[0].rollout_state = Some("FAILED".into());
            } else {
                s.tasks = tasks;
                s.deployments.truncate(1);
                s.deployments[0].rollout_state = Some("COMPLETED".into());
            }
        }
    }

    /// `UpdateService(forceNewDeployment)`.
    pub fn redeploy(&mut self, cluster: &str, name: &str, now: i64) -> Option<ObservedDeployment> {
        let id = self.id();
        let rollout_ms = self.rollout_ms;
        let s = self
            .services
            .get_mut(&(cluster.to_owned(), name.to_owned()))?;
        for d in &mut s.deployments {
            d.status = "ACTIVE".into();
        }
        let deployment = deployment(&format!("ecs-svc/{id}"), now).rollout("IN_PROGRESS");
        s.deployments.insert(0, deployment.clone());
        s.finishes_ms = Some(now + rollout_ms);
        s.redeploys += 1;
        self.max_in_progress = self.max_in_progress.max(self.in_progress());
        Some(deployment)
    }

    /// CodeDeploy `CreateDeployment` in `group`: refused while one of the group's
    /// deployments is active, as CodeDeploy does.
    pub fn start_codedeploy(
        &mut self,
        group: &DeploymentGroupRef,
        now: i64,
    ) -> Result<String, String> {
        let id = self.id();
        let rollout_ms = self.rollout_ms;
        let s = self
            .services
            .values_mut()
            .find(|s| s.group.as_ref() == Some(group))
            .ok_or_else(|| format!("no deployment group {group}"))?;
        if let Some(active) = s.codedeploy.iter().find(|d| d.status.is_active()) {
            return Err(format!(
                "{group} already has an active Deployment '{}'",
                active.id
            ));
        }
        let id = format!("d-{id:09}");
        s.codedeploy
            .push(codedeploy_deployment(&id, "InProgress", now));
        s.finishes_ms = Some(now + rollout_ms);
        s.redeploys += 1;
        self.max_in_progress = self.max_in_progress.max(self.in_progress());
        Ok(id)
    }

    /// The CodeDeploy deployments of `group` that are active or were created at or after
    /// `since_ms`.
    pub fn codedeploy_since(
        &self,
        group: &DeploymentGroupRef,
        since_ms: i64,
    ) -> Vec<CodeDeployDeployment> {
        self.services
            .values()
            .filter(|s| s.group.as_ref() == Some(group))
            .flat_map(|s| &s.codedeploy)
            .filter(|d| d.status.is_active() || d.created_at_ms >= since_ms)
            .cloned()
            .collect()
    }

    /// One service as `DescribeServices` reports it.
    pub fn describe(&self, cluster: &str, name: &str) -> Option<ObservedService> {
        self.services
            .get(&(cluster.to_owned(), name.to_owned()))
            .map(FakeService::observed)
    }

    /// RUNNING tasks in a cluster, as DescribeClusters counts them.
    pub fn running(&self, cluster: &str) -> u32 {
        let services = self
            .services
            .values()
            .filter(|s| s.cluster == cluster)
            .map(|s| s.tasks.len());
        let standalone = self.standalone.get(cluster).map_or(0, Vec::len);
        u32::try_from(services.sum::<usize>() + standalone).unwrap_or(u32::MAX)
    }

    /// What preflight answers for a service.
    pub fn preflight(&self, cluster: &str, name: &str) -> Preflight {
        self.services
            .get(&(cluster.to_owned(), name.to_owned()))
            .and_then(|s| s.preflight.clone())
            .unwrap_or(Preflight::Passed)
    }

    /// The cluster's workload as the adapter reports it.
    pub fn workload(&self, cluster: &str, watch: &[String], want: Want) -> Workload {
        let mut w = Workload::default();
        let mut agent_times = Vec::new();
        for s in self.services.values().filter(|s| s.cluster == cluster) {
            if !s.fargate {
                w.other_tasks += u32::try_from(s.tasks.len()).unwrap_or(0);
                continue;
            }
            let counts = w
                .service_tasks
                .entry(s.name.clone())
                .or_insert(TaskCounts::default());
            for t in &s.tasks {
                counts.running += 1;
                counts.without_agent += u32::from(!t.has_agent);
                if t.has_agent {
                    agent_times.push(t.started_ms);
                }
            }
        }
        for t in self.standalone.get(cluster).into_iter().flatten() {
            w.standalone_tasks.running += 1;
            w.standalone_tasks.without_agent += u32::from(!t.has_agent);
        }
        w.earliest_agent_task_ms = agent_times.into_iter().min();
        for s in self.services.values().filter(|s| s.cluster == cluster) {
            let lacking = s.fargate && s.tasks.iter().any(|t| !t.has_agent);
            let carrying = s.fargate && s.tasks.iter().any(|t| t.has_agent);
            if lacking || (want == Want::Offboarding && carrying) || watch.contains(&s.name) {
                w.services.push(s.observed());
            }
        }
        w
    }

    /// GuardDuty's coverage record of a covered cluster.
    pub fn coverage(&self, cluster: &str) -> CoverageRecord {
        let missing = self
            .services
            .values()
            .filter(|s| s.cluster == cluster && s.fargate)
            .flat_map(|s| &s.tasks)
            .chain(self.standalone.get(cluster).into_iter().flatten())
            .filter(|t| !t.has_agent)
            .count();
        if missing == 0 {
            CoverageRecord {
                status: "HEALTHY".into(),
                issue: None,
                ..CoverageRecord::default()
            }
        } else {
            CoverageRecord {
                status: "UNHEALTHY".into(),
                issue: Some(format!("agent not running on {missing} tasks")),
                ..CoverageRecord::default()
            }
        }
    }
}
