//! Starting one redeploy the rollout gate allowed: `UpdateService` is not idempotent, so
//! it is sent once and its outcome found by reading the service (`write_once`).

use std::collections::HashSet;

use gec_aws::{AwsError, ErrorKind};
use gec_model::observed::{ObservedDeployment, ObservedService};

use crate::apply::{Outcome, Skip};
use crate::cloud::{write_once, TargetCloud};
use crate::pass::PassOptions;

/// Starts one redeploy the rollout gate allowed, and reports it to the gate once.
///
/// # Errors
/// The outcome is [`Outcome::Failed`] when the service cannot be read before the write,
/// or the write failed (see [`write_once`]).
///
/// # Guarantees
/// `UpdateService(forceNewDeployment)` is not idempotent, so it goes through
/// [`write_once`]: the service's deployments are read right before it (the freshest
/// "before"), and after an outcome that proves nothing a deployment that was not there
/// before is the write's result, never a reason to send another. The gate hears of the
/// redeploy exactly once, with that deployment, however many requests it took.
pub(super) async fn start_redeploy<C: TargetCloud>(
    cloud: &C,
    (cluster_arn, service, service_arn): (&str, &str, &str),
    options: &PassOptions,
    spec: &gec_model::desired::RedeploySpec,
) -> Outcome {
    if options.stop.is_stopped() {
        options
            .rollouts
            .started(service_arn, None, spec, options.clock.now_ms());
        return Outcome::Skipped(Skip::Stopping);
    }
    let result = match cloud.describe_service(cluster_arn, service).await {
        Ok(Some(before)) => {
            let known: HashSet<String> = before.deployments.into_iter().map(|d| d.id).collect();
            let find = || async {
                let now = cloud.describe_service(cluster_arn, service).await?;
                Ok(now.and_then(|s| new_deployment(s, &known)))
            };
            write_once(
                cloud.write_retry(),
                &options.stop,
                || cloud.redeploy_service(cluster_arn, service),
                find,
            )
            .await
        }
        Ok(None) => Err(AwsError::new(
            ErrorKind::NotFound,
            "DescribeServices",
            None,
            "the service no longer exists",
        )),
        Err(e) => Err(e),
    };
    match result {
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
