//! Starting one redeploy the rollout gate allowed, through the API the service's
//! deployment controller takes: `UpdateService(forceNewDeployment)` for `ECS`, a CodeDeploy
//! `CreateDeployment` for `CODE_DEPLOY`. Neither is idempotent, so each is sent once and
//! its outcome found by reading AWS again (`write_once`).

use std::collections::HashSet;

use gec_aws::{AwsError, ErrorKind};
use gec_model::observed::{DeploymentStatus, ObservedDeployment, ObservedService, RolloutState};
use gec_model::plan::{CodeDeployRedeploy, Deployer};

use crate::apply::{Outcome, Skip};
use crate::cloud::{write_once_fenced, TargetCloud, NOT_LEADER};
use crate::pass::PassOptions;

/// Starts one redeploy the rollout gate allowed, and reports it to the gate once.
///
/// # Errors
/// The outcome is [`Outcome::Failed`] when AWS cannot be read before the write (the
/// service, or the deployment group's active deployments), when a CodeDeploy deployment
/// of the group is already active (someone else started one since the plan: it is not
/// doubled), or when the write failed (see [`write_once`]).
///
/// # Guarantees
/// Neither write is idempotent, so each goes through [`write_once`]: what exists is read
/// right before it (the freshest "before": the service's deployments, or the group's
/// active CodeDeploy deployments), and after an outcome that proves nothing a deployment
/// that was not there before is the write's result, never a reason to send another. The
/// gate hears of the redeploy exactly once, with that deployment, however many requests
/// it took.
pub(super) async fn start_redeploy<C: TargetCloud>(
    cloud: &C,
    (cluster_arn, service, service_arn): (&str, &str, &str),
    via: &Deployer,
    options: &PassOptions,
    spec: &gec_model::desired::RedeploySpec,
) -> Outcome {
    if options.stop.is_stopped() {
        options
            .rollouts
            .started(service_arn, None, spec, options.clock.now_ms());
        return Outcome::Skipped(Skip::Stopping);
    }
    if !options.fence.permits() {
        options
            .rollouts
            .started(service_arn, None, spec, options.clock.now_ms());
        return Outcome::Skipped(Skip::NotLeader);
    }
    let result = match via {
        Deployer::Ecs { .. } => force_new_deployment(cloud, cluster_arn, service, options).await,
        Deployer::CodeDeploy(redeploy) => codedeploy(cloud, redeploy, options).await,
    };
    match result {
        Err(e) if e.operation == "Fence" && e.code.as_deref() == Some(NOT_LEADER) => {
            options
                .rollouts
                .started(service_arn, None, spec, options.clock.now_ms());
            Outcome::Skipped(Skip::NotLeader)
        }
        Ok(deployment) => {
            options
                .rollouts
                .started(service_arn, Some(&deployment), spec, options.clock.now_ms());
            Outcome::Success
        }
        Err(e) => {
            options
                .rollouts
                .started(service_arn, None, spec, options.clock.now_ms());
            Outcome::Failed(e)
        }
    }
}

/// `UpdateService(forceNewDeployment)`; the new deployment is found among the service's.
async fn force_new_deployment<C: TargetCloud>(
    cloud: &C,
    cluster_arn: &str,
    service: &str,
    options: &PassOptions,
) -> Result<ObservedDeployment, AwsError> {
    let before = cloud
        .describe_service(cluster_arn, service)
        .await?
        .ok_or_else(|| {
            AwsError::new(
                ErrorKind::NotFound,
                "DescribeServices",
                None,
                "the service no longer exists",
            )
        })?;
    let known: HashSet<String> = before.deployments.into_iter().map(|d| d.id).collect();
    let find = || async {
        let now = cloud.describe_service(cluster_arn, service).await?;
        Ok(now.and_then(|s| new_deployment(s, &known)))
    };
    write_once_fenced(
        cloud.write_retry(),
        &options.stop,
        &options.fence,
        || cloud.redeploy_service(cluster_arn, service),
        find,
    )
    .await
}

/// How far before the write the "before" read of a CodeDeploy group looks, so that a
/// clock that runs ahead of CodeDeploy's cannot hide the write's own deployment.
const CLOCK_MARGIN_MS: i64 = 5 * 60 * 1000;

/// CodeDeploy `CreateDeployment`; after an unknown outcome the new deployment is found
/// among the group's deployments created since just before the write, whatever their
/// status (one that failed at once is still the write's). Returned as the deployment the
/// gate watches: its id is the CodeDeploy id.
async fn codedeploy<C: TargetCloud>(
    cloud: &C,
    redeploy: &CodeDeployRedeploy,
    options: &PassOptions,
) -> Result<ObservedDeployment, AwsError> {
    let since = options.clock.now_ms().saturating_sub(CLOCK_MARGIN_MS);
    let before = cloud.codedeploy_since(&redeploy.group, since).await?;
    if let Some(active) = before.iter().find(|d| d.status.is_active()) {
        // CodeDeploy would refuse it too (one active deployment per group); saying so
        // here costs no write.
        return Err(AwsError::new(
            ErrorKind::Other,
            "CreateDeployment",
            Some("DeploymentLimitExceededException".to_owned()),
            format!(
                "deployment group {} already has an active deployment {} ({}): not doubled",
                redeploy.group, active.id, active.status
            ),
        ));
    }
    let known: HashSet<String> = before.into_iter().map(|d| d.id).collect();
    let find = || async {
        let now = cloud.codedeploy_since(&redeploy.group, since).await?;
        Ok(now
            .into_iter()
            .find(|d| !known.contains(&d.id))
            .map(|d| d.id))
    };
    let id = write_once_fenced(
        cloud.write_retry(),
        &options.stop,
        &options.fence,
        || cloud.start_codedeploy(redeploy),
        find,
    )
    .await?;
    Ok(ObservedDeployment {
        id,
        status: DeploymentStatus::Primary,
        rollout_state: Some(RolloutState::InProgress),
        created_at_ms: options.clock.now_ms(),
        started_by: None,
    })
}

/// The deployment of `service` that is not among `known`: the PRIMARY one if it is new
/// (the forced deployment becomes PRIMARY at once), else any new one.
fn new_deployment(service: ObservedService, known: &HashSet<String>) -> Option<ObservedDeployment> {
    let is_new = |d: &&ObservedDeployment| !known.contains(&d.id);
    service
        .primary()
        .filter(is_new)
        .or_else(|| service.deployments.iter().find(is_new))
        .cloned()
}
