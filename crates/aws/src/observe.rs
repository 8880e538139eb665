//! Reading a target's ECS clusters and GuardDuty detector into the model's types.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::ClusterField;
use gec_model::observed::{
    ClusterStatus, FeatureStatus, ObservedCluster, ObservedDetector, ObservedFeature,
    ObservedTarget,
};

use crate::error::{classify, ErrorKind};
use crate::org::OrgClient;
use crate::{AwsError, TargetClient};

/// `ListClusters` page size: the API's maximum.
pub const LIST_CLUSTERS_PAGE: i32 = 100;
/// Clusters per `DescribeClusters` call: the API's maximum.
pub const DESCRIBE_CLUSTERS_BATCH: usize = 100;

/// Which clusters to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterScope {
    /// List every cluster of the account and region.
    All,
    /// Only these names or ARNs (every rule is an exact name): no `ListClusters` call.
    Named(Vec<String>),
}

impl TargetClient {
    /// Observes the target: its clusters (with tags) and its detector; for a delegated
    /// administrator with a detector, the organization configuration too
    /// (`DescribeOrganizationConfiguration`).
    ///
    /// # Errors
    /// The first AWS call that failed after the SDK's retries.
    pub async fn observe(&self, scope: &ClusterScope) -> Result<ObservedTarget, AwsError> {
        let ids = match scope {
            ClusterScope::All => self.list_cluster_arns().await?,
            ClusterScope::Named(names) => names.clone(),
        };
        let clusters = self.describe_clusters(&ids).await?;
        self.tasks.retain_clusters(
            clusters
                .iter()
                .filter(|c| c.is_active())
                .map(|c| c.arn.as_str()),
        );
        let detector = self.observe_detector().await?;
        let organization = match &detector {
            Some(d) if self.is_administrator() => Some(self.observe_organization(&d.id).await?),
            _ => None,
        };
        let account = clusters
            .iter()
            .find_map(|c| gec_model::desired::account_of_arn(&c.arn).map(str::to_owned))
            .or_else(|| self.account_hint.clone());
        Ok(ObservedTarget {
            region: self.region.clone(),
            account,
            clusters,
            detector,
            organization,
        })
    }

    /// Every cluster ARN, in pages of [`LIST_CLUSTERS_PAGE`].
    ///
    /// # Errors
    /// A failed `ListClusters` call.
    pub async fn list_cluster_arns(&self) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut pages = self
            .ecs
            .list_clusters()
            .max_results(LIST_CLUSTERS_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListClusters", e))?;
            arns.extend(page.cluster_arns().iter().cloned());
        }
        Ok(arns)
    }

    /// Describes clusters with their tags, [`DESCRIBE_CLUSTERS_BATCH`] at a time. Names
    /// that do not exist are left out; a cluster named twice (by name and by ARN) is
    /// returned once.
    ///
    /// # Errors
    /// A failed `DescribeClusters` call.
    pub async fn describe_clusters(
        &self,
        ids: &[String],
    ) -> Result<Vec<ObservedCluster>, AwsError> {
        let mut clusters = Vec::with_capacity(ids.len());
        for batch in ids.chunks(DESCRIBE_CLUSTERS_BATCH) {
            let out = self
                .ecs
                .describe_clusters()
                .set_clusters(Some(batch.to_vec()))
                .include(ClusterField::Tags)
                .send()
                .await
                .map_err(|e| classify("DescribeClusters", e))?;
            clusters.extend(out.clusters().iter().map(|c| {
                ObservedCluster {
                    name: c.cluster_name().unwrap_or_default().to_owned(),
                    arn: c.cluster_arn().unwrap_or_default().to_owned(),
                    status: ClusterStatus::from_aws(c.status().unwrap_or_default()),
                    tags: c
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((
                                t.key()?.to_owned(),
                                t.value().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                    active_services: u32::try_from(c.active_services_count()).unwrap_or(0),
                    running_tasks: u32::try_from(c.running_tasks_count()).unwrap_or(0),
                    ..ObservedCluster::default()
                }
            }));
        }
        let mut seen = std::collections::HashSet::new();
        clusters.retain(|c| seen.insert(c.arn.clone()));
        Ok(clusters)
    }

    /// The region's detector with its features; `None` when GuardDuty is not enabled.
    ///
    /// A detector's id never changes, so the id found by `ListDetectors` is kept with the
    /// client and later passes read the detector with `GetDetector` alone. When that
    /// fails as if the detector were gone (not found, or GuardDuty's 400 for an id the
    /// account does not own), the id is forgotten and the detector listed again in the
    /// same call. A region without a detector is listed every time.
    ///
    /// A member of an organization: its own detector id (`ListDetectors` in the member
    /// account, kept the same way, forgotten when `ListCoverage` with it fails as if it
    /// were gone) with the features its administrator reads (`GetMemberDetectors`).
    ///
    /// # Errors
    /// A failed `ListDetectors` or `GetDetector` call; for a member, a failed
    /// `ListDetectors` (its own or the administrator's) or `GetMemberDetectors` call, or
    /// the member in the answer's `unprocessedAccounts`.
    pub async fn observe_detector(&self) -> Result<Option<ObservedDetector>, AwsError> {
        if let OrgClient::Member(route) = &self.org {
            // The member's own detector id (for ListCoverage), its features from the
            // administrator: no GetDetector in the member account.
            let Some(id) = self.detector_id().await? else {
                return Ok(None);
            };
            let features = route.member_features().await?;
            return Ok(Some(ObservedDetector { id, features }));
        }
        if let Some(id) = self.tasks.detector_id() {
            match self.get_detector(&id).await {
                Ok(detector) => return Ok(Some(detector)),
                Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Other) => {
                    tracing::info!(detector = %id, error = %e, "the detector is gone; listing detectors again");
                    self.tasks.set_detector_id(None);
                }
                Err(e) => return Err(e),
            }
        }
        let list = self
            .guardduty
            .list_detectors()
            .send()
            .await
            .map_err(|e| classify("ListDetectors", e))?;
        // GuardDuty allows one detector per account and region.
        let Some(id) = list.detector_ids().first() else {
            return Ok(None);
        };
        let detector = self.get_detector(id).await?;
        self.tasks.set_detector_id(Some(id));
        Ok(Some(detector))
    }

    pub(crate) async fn get_detector(&self, id: &str) -> Result<ObservedDetector, AwsError> {
        let out = self
            .guardduty
            .get_detector()
            .detector_id(id)
            .send()
            .await
            .map_err(|e| classify("GetDetector", e))?;
        let features = observed_features(out.features().iter().map(|f| {
            (
                f.name().map(|n| n.as_str()),
                f.status().map(|s| s.as_str()),
                f.additional_configuration()
                    .iter()
                    .map(|a| (a.name().map(|n| n.as_str()), a.status().map(|s| s.as_str())))
                    .collect(),
            )
        }));
        Ok(ObservedDetector {
            id: id.to_owned(),
            features,
        })
    }
}

/// One feature as GuardDuty lists it (in `GetDetector` and `GetMemberDetectors` alike):
/// its name, status, and its additional configurations' names and statuses.
pub(crate) type ListedFeature<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Vec<(Option<&'a str>, Option<&'a str>)>,
);

/// Features by name, each with its additional configurations; a status GuardDuty leaves
/// out is `DISABLED`, an entry without a name is skipped.
pub(crate) fn observed_features<'a>(
    listed: impl Iterator<Item = ListedFeature<'a>>,
) -> BTreeMap<String, ObservedFeature> {
    let status = |s: Option<&str>| s.map_or(FeatureStatus::Disabled, FeatureStatus::from_aws);
    listed
        .filter_map(|(name, feature_status, additional)| {
            let additional = additional
                .into_iter()
                .filter_map(|(n, s)| Some((n?.to_owned(), status(s))))
                .collect();
            Some((
                name?.to_owned(),
                ObservedFeature {
                    status: status(feature_status),
                    additional,
                },
            ))
        })
        .collect()
}
