//! The controller's writes: cluster tags through the Resource Groups Tagging API,
//! detector features by read-modify-write `UpdateDetector`, and forced redeployments of
//! services (`UpdateService` for the `ECS` deployment controller, CodeDeploy
//! `CreateDeployment` for `CODE_DEPLOY`).
//!
//! # Which writes are idempotent
//!
//! A write may be sent again — by the SDK's retry layer after a timeout, a dropped
//! connection or a 5xx, or by the next pass — only if applying it twice leaves the same
//! state as applying it once. The controller's writes:
//!
//! | write | idempotent | why |
//! |---|---|---|
//! | `TagResources` (`GuardDutyManaged=value`) | yes | sets a key to a value: the second call sets the same value |
//! | `UntagResources` (`GuardDutyManaged`) | yes | removes a key: removing it again changes nothing |
//! | `UpdateDetector` (Runtime Monitoring and its additional configurations) | yes | sends absolute statuses computed from a fresh `GetDetector` (read-modify-write), never a toggle or a delta |
//! | `UpdateMemberDetectors` (one member's Runtime Monitoring, from its delegated administrator) | yes | the same absolute statuses, computed from a fresh `GetMemberDetectors` |
//! | `UpdateOrganizationConfiguration` (auto-enable of Runtime Monitoring and its additional configurations) | yes | sends absolute `NEW`/`ALL`/`NONE` values for every feature, computed from a fresh `DescribeOrganizationConfiguration`, and `autoEnableOrganizationMembers` as read |
//! | `UpdateService(forceNewDeployment)` | **no** | every applied call starts another deployment; ECS takes no client token for it |
//! | CodeDeploy `CreateDeployment` (AppSpec of the service's current task definition) | **no** | every applied call starts another deployment; CodeDeploy takes no client token for it |
//!
//! The idempotent ones keep the SDK's standard retries. `UpdateService` and
//! `CreateDeployment` go out once, without them, and a failure that does not prove the
//! request was rejected ([`AwsError::proves_not_applied`]) is settled by a re-read before
//! any new attempt (the service's deployments, or the deployment group's deployments
//! since just before the write, whatever their status:
//! [`TargetClient::codedeploy_deployments_since`]); a new non-idempotent
//! write must take the same path (the engine's one generic helper for it, `write_once`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_guardduty::types::{
    DetectorAdditionalConfiguration, DetectorFeature, DetectorFeatureConfiguration,
    FeatureAdditionalConfiguration,
};
use gec_model::observed::{FeatureStatus, ObservedDeployment, ObservedFeature, RUNTIME_MONITORING};
use gec_model::plan::CodeDeployRedeploy;
use gec_model::MANAGED_TAG_KEY;

use aws_sdk_codedeploy::types::{AppSpecContent, RevisionLocation, RevisionLocationType};
use aws_sdk_resourcegroupstagging::types::FailureInfo;

use crate::error::{classify, ErrorKind};
use crate::org::OrgClient;
use crate::workload::observed_service;
use crate::{AwsError, TargetClient};

/// ARNs per `TagResources` / `UntagResources` call: the API's maximum.
pub const TAG_BATCH: usize = 20;

/// Longest `description` CodeDeploy takes: "Maximum number of characters in a deployment
/// description: 100" (CodeDeploy User Guide, quotas); longer is `DescriptionTooLongException`.
pub const MAX_CODEDEPLOY_DESCRIPTION_CHARS: usize = 100;

/// The `description` of the controller's CodeDeploy deployments (shows in the console and
/// in `GetDeployment`), within [`MAX_CODEDEPLOY_DESCRIPTION_CHARS`].
pub const CODEDEPLOY_DESCRIPTION: &str =
    "guardduty-ecs-controller: same task definition, tasks replaced for the GuardDuty agent";

/// The AppSpec (JSON) of a deployment that runs the service's task definition again
/// behind its load balancer: CodeDeploy replaces the tasks and changes nothing else.
///
/// AppSpec for ECS: `version` 0.0, one `Resources` entry `TargetService` of type
/// `AWS::ECS::Service` with `TaskDefinition`, `LoadBalancerInfo` (`ContainerName`,
/// `ContainerPort`) and, when ECS reports it, the PRIMARY task set's `PlatformVersion`
/// (so the new tasks run the same platform); no hooks. The network configuration and
/// capacity provider strategy are not sent: CodeDeploy keeps the service's.
pub fn codedeploy_appspec(redeploy: &CodeDeployRedeploy) -> String {
    let mut properties = serde_json::json!({
        "TaskDefinition": redeploy.task_definition,
        "LoadBalancerInfo": {
            "ContainerName": redeploy.load_balancer.container_name,
            "ContainerPort": redeploy.load_balancer.container_port,
        },
    });
    if let Some(version) = &redeploy.platform_version {
        properties["PlatformVersion"] = serde_json::Value::from(version.as_str());
    }
    serde_json::json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": properties,
            },
        }],
    })
    .to_string()
}

/// The result of a batched tag write: every ARN that was not written, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Failed ARNs.
    pub failed: BTreeMap<String, AwsError>,
}

/// One detector change: a feature (`RUNTIME_MONITORING`) or an additional configuration
/// of it (`ECS_FARGATE_AGENT_MANAGEMENT`), and the status to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureChange<'a> {
    /// Feature or additional-configuration name.
    pub name: &'a str,
    /// `ENABLED` or `DISABLED`.
    pub status: &'a FeatureStatus,
}

impl TargetClient {
    /// Sets `GuardDutyManaged=value` on clusters, [`TAG_BATCH`] ARNs per call.
    ///
    /// # Errors
    /// Never fails as a whole: a failed call marks each ARN of its batch failed, and
    /// per-ARN failures (`FailedResourcesMap`) are reported one by one.
    ///
    /// # Guarantees
    /// Only the `GuardDutyManaged` key is written; other tags are untouched.
    pub async fn tag_clusters(&self, arns: &[String], value: &str) -> BatchOutcome {
        in_batches(arns, "TagResources", |batch| async move {
            let out = self
                .tagging
                .tag_resources()
                .set_resource_arn_list(Some(batch))
                .tags(MANAGED_TAG_KEY, value)
                .send()
                .await
                .map_err(|e| classify("TagResources", e))?;
            Ok(out.failed_resources_map().cloned())
        })
        .await
    }

    /// Removes `GuardDutyManaged` from clusters, [`TAG_BATCH`] ARNs per call.
    ///
    /// # Errors
    /// As [`TargetClient::tag_clusters`].
    pub async fn untag_clusters(&self, arns: &[String]) -> BatchOutcome {
        in_batches(arns, "UntagResources", |batch| async move {
            let out = self
                .tagging
                .untag_resources()
                .set_resource_arn_list(Some(batch))
                .tag_keys(MANAGED_TAG_KEY)
                .send()
                .await
                .map_err(|e| classify("UntagResources", e))?;
            Ok(out.failed_resources_map().cloned())
        })
        .await
    }

    /// Applies detector changes in one `UpdateDetector` call. Reads the detector first and
    /// sends `RUNTIME_MONITORING` with every additional configuration it has, changing
    /// only the ones in `changes`; `EKS_RUNTIME_MONITORING` is never sent with it.
    ///
    /// A member of an organization does the same through its delegated administrator:
    /// `GetMemberDetectors` then `UpdateMemberDetectors` for that one account, never
    /// `UpdateDetector` (or `GetDetector`) in the member account.
    ///
    /// # Errors
    /// A failed `GetDetector` or `UpdateDetector` call; for a member, a failed
    /// `ListDetectors` (the administrator's), `GetMemberDetectors` or
    /// `UpdateMemberDetectors` call, or the member in the answer's `unprocessedAccounts`.
    pub async fn update_detector(
        &self,
        detector_id: &str,
        changes: &[FeatureChange<'_>],
    ) -> Result<(), AwsError> {
        if let OrgClient::Member(route) = &self.org {
            // A member account cannot change its own Runtime Monitoring: the delegated
            // administrator writes it (`UpdateMemberDetectors`). `detector_id` is the
            // member's own id, which that call does not take.
            return route.update_member_detector(changes).await;
        }
        let current = self.get_detector(detector_id).await?;
        let (status, additional) =
            runtime_monitoring_with(current.features.get(RUNTIME_MONITORING), changes);
        let config = DetectorFeatureConfiguration::builder()
            .name(DetectorFeature::RuntimeMonitoring)
            .status(wire_status(&status))
            .set_additional_configuration(Some(
                additional
                    .iter()
                    .map(|(name, status)| {
                        DetectorAdditionalConfiguration::builder()
                            .name(FeatureAdditionalConfiguration::from(name.as_str()))
                            .status(wire_status(status))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.guardduty
            .update_detector()
            .detector_id(detector_id)
            .features(config)
            .send()
            .await
            .map_err(|e| classify("UpdateDetector", e))?;
        Ok(())
    }

    /// Forces a new deployment of a service (`UpdateService` with `forceNewDeployment`),
    /// so that its tasks are replaced by new ones (which get the agent where coverage is on).
    /// One request: the SDK does not retry it (see Caveats).
    ///
    /// # Errors
    /// A failed `UpdateService` call, or an answer without a PRIMARY deployment (a
    /// [`ErrorKind::Transient`] error: the deployment did start).
    ///
    /// # Guarantees
    /// Changes nothing but the deployment: same task definition, count and network.
    /// Exactly one request is sent, whatever the client's retry settings.
    ///
    /// # Caveats
    /// Not idempotent: each call that ECS applies starts another deployment, and the API
    /// has no client token. So the SDK's retry layer is switched off for this operation
    /// (it would resend after an attempt timeout, a dropped connection or a 5xx, all of
    /// which may come after ECS applied the first request: two forced deployments). A
    /// failure whose error does not prove "not applied" ([`AwsError::proves_not_applied`])
    /// is resolved by the caller: re-read the service ([`TargetClient::describe_service`])
    /// and look for a deployment that was not there before, then retry only if there is
    /// none (the engine's `write_once`). The other writes of this module are idempotent
    /// (see the table above) and keep the SDK's retries.
    pub async fn redeploy_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<ObservedDeployment, AwsError> {
        let out = self
            .ecs
            .update_service()
            .cluster(cluster_arn)
            .service(service)
            .force_new_deployment(true)
            .customize()
            .config_override(
                aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| classify("UpdateService", e))?;
        out.service()
            .map(observed_service)
            .and_then(|s| s.primary().cloned())
            .ok_or_else(|| {
                // ECS applied the request; only its answer is unusable. Transient, so the
                // caller re-reads the service instead of taking it as "not applied".
                AwsError::new(
                    ErrorKind::Transient,
                    "UpdateService",
                    None,
                    "the answer has no PRIMARY deployment",
                )
            })
    }

    /// Starts a CodeDeploy deployment of a `CODE_DEPLOY` service's current task definition
    /// (`CreateDeployment` in the service's deployment group, with an AppSpec from
    /// [`codedeploy_appspec`]), so that CodeDeploy replaces its tasks. One request: the SDK
    /// does not retry it (see Caveats). Returns the deployment id.
    ///
    /// # Errors
    /// A failed `CreateDeployment` call, or an answer without a deployment id (a
    /// [`ErrorKind::Transient`] error: the deployment may have started).
    ///
    /// # Guarantees
    /// The deployment group's own configuration (deployment config, rollback, alarms) is
    /// used; only the revision is sent. Right before it, the group is read
    /// (`BatchGetDeploymentGroups`): a group that no longer names the service (changed
    /// since the cached map was built) gets nothing. Exactly one `CreateDeployment` request
    /// is sent, whatever the client's retry settings.
    ///
    /// # Caveats
    /// Not idempotent, like [`TargetClient::redeploy_service`]: each applied call starts
    /// another deployment and CodeDeploy takes no client token. A failure that does not
    /// prove "not applied" is settled by the caller with
    /// [`TargetClient::codedeploy_deployments_since`] (a deployment that was not there
    /// before, whatever its status, or none) before any new attempt.
    pub async fn create_codedeploy_deployment(
        &self,
        redeploy: &CodeDeployRedeploy,
    ) -> Result<String, AwsError> {
        self.check_group_names_service(redeploy).await?;
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(
                AppSpecContent::builder()
                    .content(codedeploy_appspec(redeploy))
                    .build(),
            )
            .build();
        let out = self
            .codedeploy
            .create_deployment()
            .application_name(&redeploy.group.application)
            .deployment_group_name(&redeploy.group.name)
            .revision(revision)
            .description(CODEDEPLOY_DESCRIPTION)
            .customize()
            .config_override(
                aws_sdk_codedeploy::config::Builder::default()
                    .retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| classify("CreateDeployment", e))?;
        out.deployment_id()
            .filter(|id| !id.is_empty() && id.chars().count() <= 64)
            .map(str::to_owned)
            .ok_or_else(|| {
                // CodeDeploy answered 200: the deployment started, only its id is
                // unusable. Transient, so the caller re-reads the group's deployments.
                AwsError::new(
                    ErrorKind::Transient,
                    "CreateDeployment",
                    None,
                    "the answer has no usable deployment id",
                )
            })
    }

    /// Reads the deployment group right before a deployment is created in it: it must
    /// still name the service (`ecsServices`). The map of groups is kept for minutes; a
    /// group changed since would otherwise get another service's task definition.
    ///
    /// # Errors
    /// A failed read, or [`ErrorKind::NotFound`] when the group no longer names the
    /// service (the map is dropped, so the next pass lists the groups again).
    async fn check_group_names_service(
        &self,
        redeploy: &CodeDeployRedeploy,
    ) -> Result<(), AwsError> {
        let out = self
            .codedeploy
            .batch_get_deployment_groups()
            .application_name(&redeploy.group.application)
            .deployment_group_names(&redeploy.group.name)
            .send()
            .await
            .map_err(|e| classify("BatchGetDeploymentGroups", e))?;
        let names_it = out
            .deployment_groups_info()
            .iter()
            .filter(|g| g.deployment_group_name() == Some(redeploy.group.name.as_str()))
            .flat_map(|g| g.ecs_services())
            .any(|s| {
                s.cluster_name() == Some(redeploy.cluster.as_str())
                    && s.service_name() == Some(redeploy.service.as_str())
            });
        if names_it {
            return Ok(());
        }
        self.deployment_groups.clear();
        Err(AwsError::new(
            ErrorKind::NotFound,
            "BatchGetDeploymentGroups",
            None,
            format!(
                "deployment group {} no longer names {}/{}: nothing was deployed",
                redeploy.group, redeploy.cluster, redeploy.service
            ),
        ))
    }
}

type FailedResources = HashMap<String, FailureInfo>;

/// Runs a tagging write [`TAG_BATCH`] ARNs at a time. A failed call marks every ARN of its
/// batch failed; per-ARN failures are reported one by one; later batches still run.
async fn in_batches<F, Fut>(arns: &[String], operation: &'static str, call: F) -> BatchOutcome
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Option<FailedResources>, AwsError>>,
{
    let mut outcome = BatchOutcome::default();
    for batch in arns.chunks(TAG_BATCH) {
        match call(batch.to_vec()).await {
            Ok(failed) => {
                for (arn, info) in failed.into_iter().flatten() {
                    outcome.failed.insert(arn, failure(operation, &info));
                }
            }
            Err(error) => {
                for arn in batch {
                    outcome.failed.insert(arn.clone(), error.clone());
                }
            }
        }
    }
    outcome
}

fn failure(operation: &'static str, info: &FailureInfo) -> AwsError {
    let kind = match info.status_code() {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::AccessDenied,
        429 => ErrorKind::Throttled,
        s if s >= 500 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    let code = info.error_code().map(|c| c.as_str().to_owned());
    let message = info.error_message().unwrap_or("no message");
    AwsError::new(kind, operation, code, message)
}

/// The Runtime Monitoring feature to send in a read-modify-write: its status and every
/// additional configuration `current` has, with `changes` applied (`RUNTIME_MONITORING`
/// is the feature itself, any other name one of its additional configurations).
pub(crate) fn runtime_monitoring_with(
    current: Option<&ObservedFeature>,
    changes: &[FeatureChange<'_>],
) -> (FeatureStatus, BTreeMap<String, FeatureStatus>) {
    let mut status = current.map_or(FeatureStatus::Disabled, |f| f.status.clone());
    let mut additional = current.map(|f| f.additional.clone()).unwrap_or_default();
    for change in changes {
        if change.name == RUNTIME_MONITORING {
            status = change.status.clone();
        } else {
            additional.insert(change.name.to_owned(), change.status.clone());
        }
    }
    (status, additional)
}

/// A feature status as the GuardDuty API takes it.
pub(crate) fn wire_status(status: &FeatureStatus) -> aws_sdk_guardduty::types::FeatureStatus {
    aws_sdk_guardduty::types::FeatureStatus::from(status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::mocked;
    use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentOutput;
    use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
    use aws_smithy_mocks::mock;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use gec_model::observed::{DeploymentGroupRef, LoadBalancerTarget};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn redeploy() -> CodeDeployRedeploy {
        CodeDeployRedeploy {
            group: DeploymentGroupRef {
                application: "web".into(),
                name: "blue-api".into(),
            },
            cluster: "apps".into(),
            service: "api".into(),
            task_definition: "arn:aws:ecs:us-east-1:111111111111:task-definition/api:7".into(),
            load_balancer: LoadBalancerTarget {
                container_name: "web \"quoted\"".into(),
                container_port: 8080,
            },
            platform_version: Some("1.4.0".into()),
        }
    }

    /// BatchGetDeploymentGroups: `blue-api` names `apps/api` when `names` is true.
    fn group_names_api(names: bool) -> aws_smithy_mocks::Rule {
        use aws_sdk_codedeploy::operation::batch_get_deployment_groups::BatchGetDeploymentGroupsOutput;
        use aws_sdk_codedeploy::types::{DeploymentGroupInfo, EcsService};
        mock!(aws_sdk_codedeploy::Client::batch_get_deployment_groups).then_output(move || {
            let service = if names { "api" } else { "other" };
            BatchGetDeploymentGroupsOutput::builder()
                .deployment_groups_info(
                    DeploymentGroupInfo::builder()
                        .deployment_group_name("blue-api")
                        .ecs_services(
                            EcsService::builder()
                                .cluster_name("apps")
                                .service_name(service)
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
    }

    #[tokio::test]
    async fn a_group_that_no_longer_names_the_service_gets_no_deployment() {
        let create = mock!(aws_sdk_codedeploy::Client::create_deployment).then_output(|| {
            CreateDeploymentOutput::builder()
                .deployment_id("d-X")
                .build()
        });
        let moved = group_names_api(false);
        let client = mocked("us-east-1", &[&create, &moved]);
        let err = client
            .create_codedeploy_deployment(&redeploy())
            .await
            .expect_err("refused");
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.proves_not_applied());
        assert!(
            err.to_string().contains("no longer names apps/api"),
            "{err}"
        );
        assert_eq!(create.num_calls(), 0, "nothing created");
    }

    #[tokio::test]
    async fn create_deployment_sends_an_appspec_of_the_current_task_definition() {
        // (application, group, description, AppSpec content) of each request.
        type Sent = Vec<(String, String, String, String)>;
        let sent: Arc<Mutex<Sent>> = Arc::default();
        let seen = Arc::clone(&sent);
        let create =
            mock!(aws_sdk_codedeploy::Client::create_deployment).then_compute_output(move |r| {
                let revision = r.revision().expect("a revision");
                assert_eq!(
                    revision.revision_type(),
                    Some(&RevisionLocationType::AppSpecContent)
                );
                seen.lock().expect("lock").push((
                    r.application_name().unwrap_or_default().to_owned(),
                    r.deployment_group_name().unwrap_or_default().to_owned(),
                    r.description().unwrap_or_default().to_owned(),
                    revision
                        .app_spec_content()
                        .and_then(|c| c.content())
                        .unwrap_or_default()
                        .to_owned(),
                ));
                CreateDeploymentOutput::builder()
                    .deployment_id("d-ABCDEF123")
                    .build()
            });
        let names = group_names_api(true);
        let client = mocked("us-east-1", &[&create, &names]);
        let id = client
            .create_codedeploy_deployment(&redeploy())
            .await
            .expect("created");
        assert_eq!(id, "d-ABCDEF123");
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1);
        let (app, group, description, content) = &sent[0];
        assert_eq!((app.as_str(), group.as_str()), ("web", "blue-api"));
        assert!(description.contains("GuardDuty"), "{description}");
        assert!(
            description.chars().count() <= MAX_CODEDEPLOY_DESCRIPTION_CHARS,
            "CodeDeploy refuses a longer description: {description}"
        );
        let spec: serde_json::Value = serde_json::from_str(content).expect("JSON");
        assert_eq!(
            spec,
            serde_json::json!({
                "version": 0.0,
                "Resources": [{"TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": "arn:aws:ecs:us-east-1:111111111111:task-definition/api:7",
                        "LoadBalancerInfo": {"ContainerName": "web \"quoted\"", "ContainerPort": 8080},
                        "PlatformVersion": "1.4.0",
                    },
                }}],
            })
        );
    }

    /// The mocked client's CodeDeploy client, with the SDK's standard retries switched on
    /// (three retries, short backoff), as `AwsContext` configures every client.
    fn with_retries(client: &mut TargetClient) {
        client.codedeploy = aws_sdk_codedeploy::Client::from_conf(
            client
                .codedeploy
                .config()
                .to_builder()
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(4)
                        .with_initial_backoff(Duration::from_millis(1))
                        .with_max_backoff(Duration::from_millis(2)),
                )
                .build(),
        );
    }

    fn internal_error() -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(500).expect("status"),
            SdkBody::from(r#"{"__type":"InternalFailure","message":"try again"}"#),
        )
    }

    #[tokio::test]
    async fn create_deployment_is_sent_once_on_a_5xx_and_proves_nothing() {
        let create = mock!(aws_sdk_codedeploy::Client::create_deployment)
            .sequence()
            .http_response(internal_error)
            .repeatedly()
            .build();
        // The same failure on a read is retried: the retries are really on.
        let list = mock!(aws_sdk_codedeploy::Client::list_deployments)
            .sequence()
            .http_response(internal_error)
            .times(2)
            .output(|| ListDeploymentsOutput::builder().build())
            .repeatedly()
            .build();
        let names = group_names_api(true);
        let mut client = mocked("us-east-1", &[&create, &list, &names]);
        with_retries(&mut client);
        let err = client
            .create_codedeploy_deployment(&redeploy())
            .await
            .expect_err("a 5xx");
        assert_eq!(create.num_calls(), 1, "exactly one request");
        assert_eq!(err.kind, ErrorKind::Transient);
        assert!(!err.proves_not_applied(), "CodeDeploy may have started it");
        let group = redeploy().group;
        let found = client
            .codedeploy_deployments_since(&group, std::time::SystemTime::now())
            .await
            .expect("retried until it answered");
        assert!(found.is_empty());
        assert_eq!(
            list.num_calls(),
            4,
            "a read keeps the SDK's retries (two failures, then both listings answer)"
        );
    }
}

#[cfg(test)]
mod fence_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use aws_config::{BehaviorVersion, Region, SdkConfig};
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use tokio::time::{Duration, Instant};

    use crate::client::mocked_fenced;
    use crate::{Fence, NOT_LEADER};

    /// Answers every request `{}` (HTTP 200), counts them, and runs `on_request` first.
    #[derive(Clone)]
    struct Counting {
        sent: Arc<AtomicUsize>,
        on_request: Arc<dyn Fn() + Send + Sync>,
    }

    impl std::fmt::Debug for Counting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Counting")
        }
    }

    impl HttpConnector for Counting {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            self.sent.fetch_add(1, Ordering::SeqCst);
            (self.on_request)();
            let status = StatusCode::try_from(200u16).expect("200");
            HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from("{}"))))
        }
    }

    /// An SDK configuration whose requests reach `counting` only.
    fn config(counting: &Counting) -> SdkConfig {
        let counting = counting.clone();
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "test"),
            ))
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(counting.clone())
            }))
            .build()
    }

    fn arns(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:cluster/c{i}"))
            .collect()
    }

    #[tokio::test]
    async fn a_fence_that_closes_between_two_tagging_requests_stops_the_next_request() {
        // One adapter call, three TagResources requests (20 ARNs each): the lease runs
        // out during the first. The engine checked the fence once, before the call; the
        // requests after the first must not leave.
        let fence = Fence::leased();
        fence.grant(Instant::now() + Duration::from_secs(60));
        let closing = fence.clone();
        let counting = Counting {
            sent: Arc::default(),
            on_request: Arc::new(move || closing.revoke()),
        };
        let mut client = mocked_fenced("us-east-1", &[], &fence);
        client.tagging = aws_sdk_resourcegroupstagging::Client::from_conf(
            aws_sdk_resourcegroupstagging::config::Builder::from(&config(&counting))
                .interceptor(fence.interceptor())
                .build(),
        );
        let outcome = client.tag_clusters(&arns(60), "true").await;
        assert_eq!(
            counting.sent.load(Ordering::SeqCst),
            1,
            "only the first request left"
        );
        assert_eq!(outcome.failed.len(), 40, "{:?}", outcome.failed.keys());
        assert!(outcome
            .failed
            .values()
            .all(|e| e.code.as_deref() == Some(NOT_LEADER)));
    }

    #[tokio::test]
    async fn a_closed_fence_lets_reads_through_and_an_open_one_every_request() {
        let fence = Fence::leased();
        let counting = Counting {
            sent: Arc::default(),
            on_request: Arc::new(|| {}),
        };
        let guardduty = aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(&config(&counting))
                .interceptor(fence.interceptor())
                .build(),
        );
        let read = guardduty.list_detectors().send().await;
        assert!(read.is_ok(), "a read passes a closed fence: {read:?}");
        assert_eq!(counting.sent.load(Ordering::SeqCst), 1);
        let write = guardduty
            .update_detector()
            .detector_id("det-1")
            .send()
            .await;
        let error = crate::error::classify("UpdateDetector", write.expect_err("refused"));
        assert_eq!(error.code.as_deref(), Some(NOT_LEADER), "{error}");
        assert_eq!(
            counting.sent.load(Ordering::SeqCst),
            1,
            "the write never left"
        );
        fence.grant(Instant::now() + Duration::from_secs(60));
        let write = guardduty
            .update_detector()
            .detector_id("det-1")
            .send()
            .await;
        assert!(write.is_ok(), "{write:?}");
        assert_eq!(counting.sent.load(Ordering::SeqCst), 2);
    }
}
