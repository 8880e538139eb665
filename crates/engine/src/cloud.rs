//! The engine's view of one target's cloud: what it reads and writes, and the one way a
//! write that is not idempotent is sent ([`write_once`]). The AWS adapter implements it;
//! tests implement it in memory.

use std::future::Future;
use std::time::Duration;

use std::collections::BTreeMap;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use gec_aws::{
    AutoEnableChange, AwsError, BatchOutcome, CallSettings, ClusterScope, ErrorKind, FeatureChange,
    TargetClient, Want, MAX_BACKOFF,
};
use gec_model::desired::AutoEnable;
use gec_model::observed::{
    CodeDeployDeployment, CoverageRecord, DeploymentGroupRef, ObservedCluster, ObservedDeployment,
    ObservedService, OrganizationMember, Preflight, Workload,
};
use gec_model::plan::CodeDeployRedeploy;
use gec_model::ObservedTarget;
use tokio::time::{sleep, Instant};

use crate::apply::StopSignal;
use crate::fence::Fence;

/// Reads and writes of one target (account and region).
pub trait TargetCloud: Send + Sync {
    /// Observes clusters (in `scope`) and the detector.
    fn observe(
        &self,
        scope: &ClusterScope,
    ) -> impl Future<Output = Result<ObservedTarget, AwsError>> + Send;
    /// Sets `GuardDutyManaged=value` on clusters; per-ARN failures in the outcome.
    fn tag_clusters(
        &self,
        arns: &[String],
        value: &str,
    ) -> impl Future<Output = BatchOutcome> + Send;
    /// Removes `GuardDutyManaged` from clusters; per-ARN failures in the outcome.
    fn untag_clusters(&self, arns: &[String]) -> impl Future<Output = BatchOutcome> + Send;
    /// Applies detector changes in one read-modify-write update.
    fn update_detector(
        &self,
        detector_id: &str,
        changes: &[FeatureChange<'_>],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// A delegated administrator's associated members in this region (`ListMembers`).
    fn list_members(
        &self,
    ) -> impl Future<Output = Result<Vec<OrganizationMember>, AwsError>> + Send;
    /// Sets the organization's auto-enable of features (`RUNTIME_MONITORING`) and
    /// additional configurations (`ECS_FARGATE_AGENT_MANAGEMENT`), read-modify-write, from
    /// a delegated administrator.
    fn update_organization(
        &self,
        detector_id: &str,
        changes: &[(&'static str, AutoEnable)],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Reads a cluster's RUNNING tasks (describing only tasks not seen before, and those
    /// whose agent state may have changed given `cluster.coverage`) and the services that
    /// own tasks without a RUNNING agent (with [`Want::Offboarding`] also those whose
    /// tasks run it), plus the `watch` services.
    fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
        want: Want,
    ) -> impl Future<Output = Result<Workload, AwsError>> + Send;
    /// Whether a service can get a RUNNING agent at all (platform version, OS family,
    /// execution role and its ECR permissions). Never fails: what cannot be read is
    /// [`Preflight::Unknown`].
    fn preflight(&self, service: &ObservedService) -> impl Future<Output = Preflight> + Send;
    /// GuardDuty's coverage of the target's ECS clusters, by cluster ARN.
    fn list_coverage(
        &self,
        detector_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, CoverageRecord>, AwsError>> + Send;
    /// Forces a new deployment of a service; returns the new PRIMARY deployment. One
    /// request, never retried by the implementation: not idempotent, so the engine sends
    /// it through [`write_once`].
    fn redeploy_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> impl Future<Output = Result<ObservedDeployment, AwsError>> + Send;
    /// Starts a CodeDeploy deployment of a `CODE_DEPLOY` service's current task definition
    /// in the deployment group that names it; returns the deployment id. One request,
    /// never retried by the implementation: not idempotent (each applied call starts a
    /// deployment), so the engine sends it through [`write_once`].
    fn start_codedeploy(
        &self,
        redeploy: &CodeDeployRedeploy,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
    /// The deployments of a CodeDeploy deployment group that are active (Created,
    /// Queued, InProgress, Baking, Ready) or were created at or after `since_ms` (Unix
    /// ms), whatever their status.
    fn codedeploy_since(
        &self,
        group: &DeploymentGroupRef,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<CodeDeployDeployment>, AwsError>> + Send;
    /// One service by name, with its deployments; `None` when it does not exist.
    fn describe_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> impl Future<Output = Result<Option<ObservedService>, AwsError>> + Send;
    /// How [`write_once`] paces this target's non-idempotent writes.
    fn write_retry(&self) -> WriteRetry {
        WriteRetry::default()
    }
}

impl TargetCloud for TargetClient {
    async fn observe(&self, scope: &ClusterScope) -> Result<ObservedTarget, AwsError> {
        TargetClient::observe(self, scope).await
    }
    async fn tag_clusters(&self, arns: &[String], value: &str) -> BatchOutcome {
        TargetClient::tag_clusters(self, arns, value).await
    }
    async fn untag_clusters(&self, arns: &[String]) -> BatchOutcome {
        TargetClient::untag_clusters(self, arns).await
    }
    async fn update_detector(
        &self,
        detector_id: &str,
        changes: &[FeatureChange<'_>],
    ) -> Result<(), AwsError> {
        TargetClient::update_detector(self, detector_id, changes).await
    }
    async fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
        want: Want,
    ) -> Result<Workload, AwsError> {
        TargetClient::observe_workload(self, cluster, watch, want).await
    }
    async fn list_members(&self) -> Result<Vec<OrganizationMember>, AwsError> {
        TargetClient::list_members(self).await
    }
    async fn update_organization(
        &self,
        detector_id: &str,
        changes: &[(&'static str, AutoEnable)],
    ) -> Result<(), AwsError> {
        let changes: Vec<AutoEnableChange<'_>> = changes
            .iter()
            .map(|&(name, auto_enable)| AutoEnableChange { name, auto_enable })
            .collect();
        TargetClient::update_organization_configuration(self, detector_id, &changes).await
    }
    async fn preflight(&self, service: &ObservedService) -> Preflight {
        TargetClient::preflight(self, service).await
    }
    async fn list_coverage(
        &self,
        detector_id: &str,
    ) -> Result<BTreeMap<String, CoverageRecord>, AwsError> {
        TargetClient::list_coverage(self, detector_id).await
    }
    async fn redeploy_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<ObservedDeployment, AwsError> {
        TargetClient::redeploy_service(self, cluster_arn, service).await
    }
    async fn start_codedeploy(&self, redeploy: &CodeDeployRedeploy) -> Result<String, AwsError> {
        TargetClient::create_codedeploy_deployment(self, redeploy).await
    }
    async fn codedeploy_since(
        &self,
        group: &DeploymentGroupRef,
        since_ms: i64,
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        let since = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(since_ms).unwrap_or_default());
        TargetClient::codedeploy_deployments_since(self, group, since).await
    }
    async fn describe_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<Option<ObservedService>, AwsError> {
        TargetClient::describe_service(self, cluster_arn, service).await
    }
    fn write_retry(&self) -> WriteRetry {
        WriteRetry::from_calls(&self.calls())
    }
}

/// First delay between attempts of a non-idempotent write, or between the re-reads that
/// look for it; it doubles (jittered) up to [`MAX_BACKOFF`].
pub const WRITE_FIRST_DELAY: Duration = Duration::from_secs(1);

/// How [`write_once`] attempts a write that is not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRetry {
    /// Attempts of the write, the first included (`--aws-max-attempts`).
    pub max_attempts: u32,
    /// First delay between attempts or re-reads.
    pub first_delay: Duration,
    /// Longest delay between attempts or re-reads.
    pub max_delay: Duration,
    /// After an outcome that proves nothing, how long re-reads keep looking for the write
    /// before it counts as not applied: twice the attempt timeout, so a request the
    /// service received just before the client gave up has as long again to land.
    pub settle: Duration,
}

impl WriteRetry {
    /// The pacing that goes with the client's call settings.
    pub fn from_calls(calls: &CallSettings) -> Self {
        WriteRetry {
            max_attempts: calls.max_attempts.max(1),
            first_delay: WRITE_FIRST_DELAY,
            max_delay: MAX_BACKOFF,
            settle: calls.attempt_timeout.saturating_mul(2),
        }
    }

    fn delays(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

impl Default for WriteRetry {
    fn default() -> Self {
        WriteRetry::from_calls(&CallSettings::default())
    }
}

/// Sends a write that is **not idempotent** (applying it twice is not applying it once,
/// e.g. `UpdateService(forceNewDeployment)`) so that it is never sent again while it may
/// already have been applied.
///
/// `write` sends it once (the implementation must not retry). `find` reads the resource
/// and returns what the write produced if it can see it (`Some`: e.g. a deployment that
/// was not there before the first attempt), `None` if it was not applied (as far as the
/// read shows).
///
/// # Errors
/// The last error of `write` when: the error proves the write was not applied and
/// retrying cannot help (access denied, not found, a validation error); the attempts
/// are used up; `find` fails (then nobody can tell whether it was applied, so it is not
/// sent again: the next pass observes and decides); or `stop` was raised before a retry.
///
/// # Guarantees
/// - An answer that proves the write was rejected ([`AwsError::proves_not_applied`]):
///   only a throttle is retried, after a jittered, growing delay, without a re-read.
/// - Any other failure (timeout, dropped connection, 5xx, unusable answer): the write is
///   sent again only after `find` saw nothing for [`WriteRetry::settle`] (re-reads at
///   growing delays); if `find` sees it, that is the result, as if the write had
///   answered, and the write is not sent again.
/// - At most [`WriteRetry::max_attempts`] writes in all.
///
/// # Caveats
/// A request that the service holds longer than `settle` before applying it can still
/// land after a retry; AWS gives no bound, and waiting longer only delays every retry.
pub async fn write_once<T, W, WF, F, FF>(
    retry: WriteRetry,
    stop: &StopSignal,
    write: W,
    find: F,
) -> Result<T, AwsError>
where
    W: FnMut() -> WF,
    WF: Future<Output = Result<T, AwsError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, AwsError>>,
{
    write_once_fenced(retry, stop, &Fence::default(), write, find).await
}

/// The code of the error [`write_once_fenced`] returns when `fence` closed before the
/// first attempt: nothing was sent.
pub const NOT_LEADER: &str = "NotLeader";

/// [`write_once`], sending each attempt (the first included) only while `fence` permits.
///
/// # Errors
/// Those of [`write_once`]; and when the fence is closed before the first attempt, an
/// [`ErrorKind::Other`] error with the code [`NOT_LEADER`] (nothing was sent); before a
/// later attempt, the last attempt's error.
pub async fn write_once_fenced<T, W, WF, F, FF>(
    retry: WriteRetry,
    stop: &StopSignal,
    fence: &Fence,
    mut write: W,
    mut find: F,
) -> Result<T, AwsError>
where
    W: FnMut() -> WF,
    WF: Future<Output = Result<T, AwsError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, AwsError>>,
{
    let mut delays = retry.delays();
    let mut attempt = 1;
    if !fence.permits() {
        return Err(AwsError::new(
            ErrorKind::Other,
            "Fence",
            Some(NOT_LEADER.to_owned()),
            "this replica does not hold the lease: nothing sent",
        ));
    }
    loop {
        let error = match write().await {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        let last = attempt >= retry.max_attempts.max(1);
        if error.proves_not_applied() {
            if error.kind != ErrorKind::Throttled || last {
                return Err(error);
            }
            tracing::debug!(
                operation = error.operation,
                attempt,
                "write throttled; retrying"
            );
        } else {
            match settle(&retry, &mut delays, &mut find).await {
                Ok(Some(done)) => {
                    tracing::warn!(operation = error.operation, attempt, error = %error,
                        "the write's outcome was unknown; a re-read found it applied: not sent again");
                    return Ok(done);
                }
                Ok(None) if !last => {
                    tracing::warn!(operation = error.operation, attempt, error = %error,
                        "the write's outcome was unknown; re-reads did not find it applied: retrying");
                }
                Ok(None) => return Err(error),
                Err(read) => {
                    tracing::warn!(operation = error.operation, error = %error, read_error = %read,
                        "the write's outcome is unknown and the re-read failed: not sent again");
                    return Err(error);
                }
            }
        }
        if stop.is_stopped() {
            return Err(error);
        }
        sleep(next_delay(&mut delays, &retry)).await;
        if stop.is_stopped() || !fence.permits() {
            return Err(error);
        }
        attempt += 1;
    }
}

/// Re-reads until `find` sees the write or [`WriteRetry::settle`] has passed.
async fn settle<T, F, FF>(
    retry: &WriteRetry,
    delays: &mut ExponentialBackoff,
    find: &mut F,
) -> Result<Option<T>, AwsError>
where
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, AwsError>>,
{
    let deadline = Instant::now() + retry.settle;
    loop {
        sleep(next_delay(delays, retry)).await;
        if let Some(done) = find().await? {
            return Ok(Some(done));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

fn next_delay(delays: &mut ExponentialBackoff, retry: &WriteRetry) -> Duration {
    delays.next().unwrap_or(retry.max_delay)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn error(kind: ErrorKind) -> AwsError {
        AwsError::new(kind, "UpdateService", None, "injected")
    }

    fn retry(max_attempts: u32) -> WriteRetry {
        WriteRetry {
            max_attempts,
            ..WriteRetry::default()
        }
    }

    /// Runs `write_once` with a write that always fails with `kind` and a re-read that
    /// answers `found`; returns (writes, re-reads, result).
    async fn run(
        retry: WriteRetry,
        stop: &StopSignal,
        kind: ErrorKind,
        found: Result<Option<u32>, AwsError>,
    ) -> (u32, u32, Result<u32, AwsError>) {
        let writes = Cell::new(0);
        let reads = Cell::new(0);
        let result = write_once(
            retry,
            stop,
            || {
                writes.set(writes.get() + 1);
                async move { Err::<u32, _>(error(kind)) }
            },
            || {
                reads.set(reads.get() + 1);
                let found = found.clone();
                async move { found }
            },
        )
        .await;
        (writes.get(), reads.get(), result)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_whose_outcome_cannot_be_read_is_not_sent_again() {
        let unreadable = Err(error(ErrorKind::Throttled));
        let (writes, reads, result) = run(
            retry(4),
            &StopSignal::default(),
            ErrorKind::Transient,
            unreadable,
        )
        .await;
        assert_eq!((writes, reads), (1, 1));
        assert_eq!(
            result.map_err(|e| e.kind),
            Err(ErrorKind::Transient),
            "the write's own error is reported"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_stop_at_max_attempts_each_after_rereads_that_found_nothing() {
        let (writes, reads, result) = run(
            retry(3),
            &StopSignal::default(),
            ErrorKind::Transient,
            Ok(None),
        )
        .await;
        assert_eq!(writes, 3);
        assert!(
            reads >= 3 * 2,
            "each unknown outcome is re-read for the settle time: {reads}"
        );
        assert!(result.is_err());
        let (writes, _, _) = run(
            retry(3),
            &StopSignal::default(),
            ErrorKind::Throttled,
            Ok(None),
        )
        .await;
        assert_eq!(writes, 3, "throttles count against the same attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_found_write_is_the_result() {
        let (writes, reads, result) = run(
            retry(4),
            &StopSignal::default(),
            ErrorKind::Transient,
            Ok(Some(7)),
        )
        .await;
        assert_eq!((writes, reads, result), (1, 1, Ok(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn no_write_is_retried_once_the_controller_stops() {
        let stop = StopSignal::default();
        stop.stop();
        let (writes, _, result) = run(retry(4), &stop, ErrorKind::Throttled, Ok(None)).await;
        assert_eq!(writes, 1);
        assert!(result.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn no_write_is_sent_or_retried_once_the_fence_closes() {
        let fence = Fence::leased();
        let writes = Cell::new(0);
        let write = || {
            writes.set(writes.get() + 1);
            async { Err::<u32, _>(error(ErrorKind::Throttled)) }
        };
        let closed = write_once_fenced(retry(4), &StopSignal::default(), &fence, write, || async {
            Ok(None)
        })
        .await;
        assert_eq!(writes.get(), 0, "never sent");
        assert_eq!(closed.unwrap_err().code.as_deref(), Some(NOT_LEADER));
        // Open for less than the first retry delay: one attempt, no retry.
        fence.grant(Instant::now() + Duration::from_millis(100));
        let result = write_once_fenced(retry(4), &StopSignal::default(), &fence, write, || async {
            Ok(None)
        })
        .await;
        assert_eq!(writes.get(), 1);
        assert_eq!(result.unwrap_err().kind, ErrorKind::Throttled);
    }

    #[test]
    fn the_settle_time_is_twice_the_attempt_timeout() {
        let calls = CallSettings {
            attempt_timeout: Duration::from_secs(2),
            ..CallSettings::default()
        };
        let r = WriteRetry::from_calls(&calls);
        assert_eq!(r.settle, Duration::from_secs(4));
        assert_eq!(r.max_attempts, calls.max_attempts);
    }
}
