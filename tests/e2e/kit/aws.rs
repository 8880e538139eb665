//! AWS state read back from the sandbox with plain SDK clients (never through the
//! controller or its adapter): the readers the tests share.

use std::collections::BTreeMap;

use aws_sdk_guardduty::types::{
    CoverageFilterCondition, CoverageFilterCriteria, CoverageFilterCriterion,
    CoverageFilterCriterionKey,
};
use gec_model::observed::is_agent_container;

/// A detector's features: feature → (status, additional configuration name → status).
pub type Features = BTreeMap<String, (String, BTreeMap<String, String>)>;

/// SDK clients of one region (and credentials), made once.
#[derive(Clone)]
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub guardduty: aws_sdk_guardduty::Client,
    /// Path-style, as the sandbox needs.
    pub s3: aws_sdk_s3::Client,
}

/// One task: ARN, group, and its GuardDuty agent container (either prefix).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Task {
    pub arn: String,
    pub group: String,
    /// The agent container is RUNNING: the task is covered.
    pub agent: bool,
    /// The agent container's `lastStatus`; `None` when the task has no agent container.
    pub agent_status: Option<String>,
    /// The agent container's `reason` (e.g. `CannotPullContainerError: …`), if any.
    pub agent_reason: Option<String>,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub rollout_state: String,
}

impl Aws {
    /// Clients on `config` (the sandbox's, or one acting in another account).
    pub fn new(config: &aws_config::SdkConfig) -> Aws {
        Aws {
            ecs: aws_sdk_ecs::Client::new(config),
            guardduty: aws_sdk_guardduty::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(true)
                    .build(),
            ),
        }
    }

    /// Creates an S3 bucket.
    pub async fn create_bucket(&self, bucket: &str) {
        self.s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("CreateBucket");
    }

    /// Every cluster ARN, by cluster name (ListClusters, every page).
    pub async fn cluster_arns(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .ecs
                .list_clusters()
                .set_next_token(token)
                .send()
                .await
                .expect("ListClusters");
            for arn in page.cluster_arns() {
                let name = arn.rsplit('/').next().unwrap_or_default();
                out.insert(name.to_owned(), arn.clone());
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return out;
            }
        }
    }

    /// Every cluster's tags, by cluster name.
    pub async fn cluster_tags(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let arns: Vec<String> = self.cluster_arns().await.into_values().collect();
        let mut out = BTreeMap::new();
        for batch in arns.chunks(100) {
            let described = self
                .ecs
                .describe_clusters()
                .set_clusters(Some(batch.to_vec()))
                .include(aws_sdk_ecs::types::ClusterField::Tags)
                .send()
                .await
                .expect("DescribeClusters");
            for c in described.clusters() {
                let tags = c
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                out.insert(c.cluster_name().unwrap_or_default().to_owned(), tags);
            }
        }
        out
    }

    /// Every cluster's `GuardDutyManaged` tag, by cluster name.
    pub async fn managed_tags(&self) -> BTreeMap<String, Option<String>> {
        self.cluster_tags()
            .await
            .into_iter()
            .map(|(name, mut tags)| (name, tags.remove("GuardDutyManaged")))
            .collect()
    }

    /// Sets `GuardDutyManaged=value` on a cluster as another writer would: through ECS
    /// `TagResource` (the controller writes through the Tagging API's `TagResources`, so
    /// the request log tells the two apart).
    pub async fn set_managed_tag(&self, cluster_arn: &str, value: &str) {
        self.ecs
            .tag_resource()
            .resource_arn(cluster_arn)
            .tags(
                aws_sdk_ecs::types::Tag::builder()
                    .key("GuardDutyManaged")
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .expect("TagResource GuardDutyManaged");
    }

    /// A cluster's ARN.
    pub async fn cluster_arn(&self, name: &str) -> String {
        let out = self
            .ecs
            .describe_clusters()
            .clusters(name)
            .send()
            .await
            .expect("DescribeClusters");
        out.clusters()
            .first()
            .and_then(|c| c.cluster_arn())
            .expect("the cluster exists")
            .to_owned()
    }

    /// The region's detector id (the first one listed).
    pub async fn detector_id(&self) -> String {
        self.guardduty
            .list_detectors()
            .send()
            .await
            .expect("ListDetectors")
            .detector_ids()
            .first()
            .expect("a detector")
            .clone()
    }

    /// The region's detector features.
    pub async fn detector_features(&self) -> Features {
        let d = self
            .guardduty
            .get_detector()
            .detector_id(self.detector_id().await)
            .send()
            .await
            .expect("GetDetector");
        d.features()
            .iter()
            .map(|f| {
                let extra = f
                    .additional_configuration()
                    .iter()
                    .map(|a| {
                        (
                            a.name().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                            a.status()
                                .map(|s| s.as_str().to_owned())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                (
                    f.name().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                    (
                        f.status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        extra,
                    ),
                )
            })
            .collect()
    }

    /// (RUNTIME_MONITORING's status, its ECS_FARGATE_AGENT_MANAGEMENT's status).
    pub async fn runtime_monitoring(&self) -> (String, String) {
        let features = self.detector_features().await;
        let (status, extra) = features
            .get("RUNTIME_MONITORING")
            .expect("RUNTIME_MONITORING");
        let fargate = extra
            .get("ECS_FARGATE_AGENT_MANAGEMENT")
            .cloned()
            .unwrap_or_default();
        (status.clone(), fargate)
    }

    /// Every task whose last status is RUNNING, of those listed as desired RUNNING, sorted.
    pub async fn running_tasks(&self, cluster: &str) -> Vec<Task> {
        let arns = self
            .ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        let mut tasks = self.describe_tasks(cluster, arns, true).await;
        tasks.sort();
        tasks
    }

    /// Every task ListTasks gives for a service, in its order, whatever its last status.
    pub async fn service_tasks(&self, cluster: &str, service: &str) -> Vec<Task> {
        let arns = self
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        self.describe_tasks(cluster, arns, false).await
    }

    async fn describe_tasks(&self, cluster: &str, arns: Vec<String>, running: bool) -> Vec<Task> {
        if arns.is_empty() {
            return Vec::new();
        }
        let described = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks");
        described
            .tasks()
            .iter()
            .filter(|t| !running || t.last_status() == Some("RUNNING"))
            .map(|t| {
                let agent = t
                    .containers()
                    .iter()
                    .find(|c| c.name().is_some_and(is_agent_container));
                let agent_status = agent.and_then(|c| c.last_status()).map(str::to_owned);
                Task {
                    arn: t.task_arn().unwrap_or_default().to_owned(),
                    group: t.group().unwrap_or_default().to_owned(),
                    agent: agent_status.as_deref() == Some("RUNNING"),
                    agent_status,
                    agent_reason: agent.and_then(|c| c.reason()).map(str::to_owned),
                }
            })
            .collect()
    }

    /// A service's deployments, in DescribeServices' order.
    pub async fn deployments(&self, cluster: &str, service: &str) -> Vec<Deployment> {
        let out = self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .expect("DescribeServices");
        out.services()
            .first()
            .unwrap_or_else(|| panic!("service {service} in {cluster}"))
            .deployments()
            .iter()
            .map(|d| Deployment {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().unwrap_or_default().to_owned(),
                rollout_state: d
                    .rollout_state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// GuardDuty's coverage of a cluster (ListCoverage by cluster name): status and issue.
    pub async fn coverage(&self, cluster: &str) -> Option<(String, Option<String>)> {
        let criteria = CoverageFilterCriteria::builder()
            .filter_criterion(
                CoverageFilterCriterion::builder()
                    .criterion_key(CoverageFilterCriterionKey::EcsClusterName)
                    .filter_condition(CoverageFilterCondition::builder().equals(cluster).build())
                    .build(),
            )
            .build();
        let out = self
            .guardduty
            .list_coverage()
            .detector_id(self.detector_id().await)
            .filter_criteria(criteria)
            .send()
            .await
            .expect("ListCoverage");
        out.resources().first().map(|r| {
            (
                r.coverage_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                r.issue().map(str::to_owned),
            )
        })
    }
}
