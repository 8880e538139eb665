//! The engine's view of one target's cloud: what it reads and writes. The AWS adapter
//! implements it; tests implement it in memory.

use std::future::Future;

use std::collections::BTreeMap;

use gec_aws::{AwsError, BatchOutcome, ClusterScope, FeatureChange, TargetClient};
use gec_model::observed::{CoverageRecord, ObservedCluster, ObservedDeployment, Workload};
use gec_model::ObservedTarget;

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
    /// Reads a cluster's RUNNING tasks (describing only tasks not seen before) and the
    /// services that own tasks without the agent, plus the `watch` services.
    fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
    ) -> impl Future<Output = Result<Workload, AwsError>> + Send;
    /// GuardDuty's coverage of the target's ECS clusters, by cluster ARN.
    fn list_coverage(
        &self,
        detector_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, CoverageRecord>, AwsError>> + Send;
    /// Forces a new deployment of a service; returns the new PRIMARY deployment.
    fn redeploy_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> impl Future<Output = Result<ObservedDeployment, AwsError>> + Send;
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
    ) -> Result<Workload, AwsError> {
        TargetClient::observe_workload(self, cluster, watch).await
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
}
