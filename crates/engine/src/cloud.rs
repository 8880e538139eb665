//! The engine's view of one target's cloud: what it reads and writes. The AWS adapter
//! implements it; tests implement it in memory.

use std::future::Future;

use gec_aws::{AwsError, BatchOutcome, ClusterScope, FeatureChange, TargetClient};
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
}
