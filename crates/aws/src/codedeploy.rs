//! Reading CodeDeploy for services whose deployment controller is `CODE_DEPLOY`: the
//! deployment group that names the service, and that group's recent deployments.
//!
//! # Finding a service's deployment group
//! CodeDeploy has no "group of this ECS service" lookup: a group names its services in
//! `ecsServices` (cluster name, service name). So the adapter lists them all once and keeps
//! a map per target (in [`TargetClient`], with the other caches): `ListApplications`
//! (paged) → `BatchGetApplications` ([`BATCH_GET_APPLICATIONS_BATCH`] per call; only
//! compute platform `ECS`) → `ListDeploymentGroups` per application (paged) →
//! `BatchGetDeploymentGroups` ([`BATCH_GET_DEPLOYMENT_GROUPS_BATCH`] per call). The map is
//! built again when it is older than [`DEPLOYMENT_GROUP_TTL`], and on a miss when it is
//! older than [`DEPLOYMENT_GROUP_MISS_TTL`] (a group made for a new service is found
//! within a pass or two). A service the map was found not to name is not listed again
//! for before the map's TTL: one without a group costs no listing per pass.
//!
//! Everything CodeDeploy answers is bounded: at most [`MAX_CODEDEPLOY_APPLICATIONS`]
//! applications, [`MAX_DEPLOYMENT_GROUPS`] groups, [`MAX_LIST_PAGES`] pages per listing,
//! names of at most [`MAX_NAME_CHARS`] / [`MAX_ECS_NAME_CHARS`] characters (longer ones
//! are skipped, never cut: a cut name names something else). A listing cut short by a
//! bound is remembered, and a service not found in it is `Unknown`, not `NoGroup`.
//!
//! # A group's deployments
//! `ListDeployments` twice (first page each): the active ones (`includeOnlyStatuses` =
//! Created, Queued, InProgress, Baking, Ready) and those created in the last hour
//! (`createTimeRange.start` = now − 1 h); then `BatchGetDeployments` of the union, plus
//! the ones that were active at the group's last read and the group's
//! `lastAttemptedDeployment` ([`BATCH_GET_DEPLOYMENTS_BATCH`] per call). So a deployment
//! that ends after more than an hour (a long termination wait, a `Ready` waiting for a
//! person) is still seen to end, and after a restart the newest outcome is known. Kept:
//! at most [`MAX_CODEDEPLOY_DEPLOYMENTS`], the active ones first, newest first.
//!
//! A failed CodeDeploy call never fails the workload read: the service's state is
//! [`CodeDeploy::Unknown`] with the classified error, and the planner holds it. A group
//! that is gone (`DeploymentGroupDoesNotExistException`, `ApplicationDoesNotExistException`)
//! drops the map, so the next read lists again.
//!
//! # Caveats
//! Two clusters of one target read at once may both find the map stale and both list
//! (the lock is not held across the calls); the later map wins. Both are complete.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codedeploy::error::ProvideErrorMetadata;
use aws_sdk_codedeploy::types::{ComputePlatform, DeploymentStatus, TimeRange};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::DateTime;
use gec_model::observed::{
    CodeDeploy, CodeDeployDeployment, CodeDeployStatus, DeploymentGroupRef,
    MAX_CODEDEPLOY_DEPLOYMENTS,
};

use crate::error::{classify, ErrorKind};
use crate::text::bounded;
use crate::{AwsError, TargetClient};

/// How long the map of deployment groups is trusted.
pub const DEPLOYMENT_GROUP_TTL: Duration = Duration::from_secs(5 * 60);
/// How old the map may be before a service it does not know makes it built again.
pub const DEPLOYMENT_GROUP_MISS_TTL: Duration = Duration::from_secs(30);
/// Application names per `BatchGetApplications` call: the API's maximum.
pub const BATCH_GET_APPLICATIONS_BATCH: usize = 100;
/// Group names per `BatchGetDeploymentGroups` call: the API's maximum
/// (`BatchLimitExceededException`: "the maximum number of names or IDs allowed for this
/// request (100)").
pub const BATCH_GET_DEPLOYMENT_GROUPS_BATCH: usize = 100;
/// Deployment ids per `BatchGetDeployments` call: the API's maximum.
pub const BATCH_GET_DEPLOYMENTS_BATCH: usize = 25;
/// Most applications read per target: CodeDeploy's default quota per account and region.
pub const MAX_CODEDEPLOY_APPLICATIONS: usize = 1000;
/// Most deployment groups read per target (all `ECS` applications together).
pub const MAX_DEPLOYMENT_GROUPS: usize = 5000;
/// Most pages read per listing (`ListApplications`, `ListDeploymentGroups`).
pub const MAX_LIST_PAGES: usize = 50;
/// Most deployment ids described per group and pass (the two `ListDeployments` pages).
pub const MAX_LISTED_DEPLOYMENTS: usize = 100;
/// Longest application or group name (the API's own limit).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest ECS cluster or service name (ECS's own limit).
pub const MAX_ECS_NAME_CHARS: usize = 255;
/// Longest deployment id kept (`d-` and nine characters; anything longer is no id).
const MAX_DEPLOYMENT_ID_CHARS: usize = 64;
/// Longest CodeDeploy error text kept (a deployment's `errorInformation.message`, or why
/// CodeDeploy could not be read).
pub const MAX_CODEDEPLOY_TEXT_CHARS: usize = 512;
/// How far back the deployments of a group are read (what `maxPerHour` needs).
const RECENT: Duration = Duration::from_secs(60 * 60);

/// The statuses of a deployment that has not finished.
const ACTIVE_STATUSES: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// (cluster name, service name).
type ServiceKey = (String, String);

/// Every deployment group of the target's `ECS` applications, by the services it names.
#[derive(Debug, Clone, Default)]
struct GroupMap {
    groups: HashMap<ServiceKey, DeploymentGroupRef>,
    /// Each group's `lastAttemptedDeployment`: read with the group's deployments whatever
    /// its age, so the newest outcome is known after a restart.
    last_attempted: HashMap<DeploymentGroupRef, String>,
    /// A bound cut the listing short: a service not in `groups` may still have a group.
    truncated: bool,
}

/// What the cache keeps: the map, and what the reads learned since.
#[derive(Debug, Default)]
struct CacheState {
    /// The map and when it was built.
    built: Option<(Instant, Arc<GroupMap>)>,
    /// Services the current map does not name, and when that was first found: not listed
    /// again for them before the map's own TTL (a service without a group would otherwise
    /// cost a full listing every [`DEPLOYMENT_GROUP_MISS_TTL`]).
    misses: HashMap<ServiceKey, Instant>,
    /// Per group, the deployments that were active at its last read: read once more after
    /// they end, however old they are by then, so their outcome (Succeeded, Failed,
    /// Stopped) is seen even past the hour the recent read covers.
    active: HashMap<DeploymentGroupRef, Vec<String>>,
}

/// The map of deployment groups, kept with the target's client and shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupCache(Arc<Mutex<CacheState>>);

impl GroupCache {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // Every update is a few assignments that leave the state consistent at each
        // step, so a poisoned lock is still safe to use.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map if it may be used at `now` for `key`: younger than the TTL, and on a miss
    /// younger than the miss TTL or already known not to name `key`.
    fn fresh(&self, key: &ServiceKey, now: Instant) -> Option<Arc<GroupMap>> {
        let guard = self.lock();
        let (built, map) = guard.built.as_ref()?;
        let age = now.saturating_duration_since(*built);
        let usable = age < DEPLOYMENT_GROUP_TTL
            && (map.groups.contains_key(key)
                || age < DEPLOYMENT_GROUP_MISS_TTL
                || guard.misses.contains_key(key));
        usable.then(|| Arc::clone(map))
    }

    fn store(&self, built: Instant, map: Arc<GroupMap>) {
        let mut state = self.lock();
        state.built = Some((built, map));
        state.misses.clear();
    }

    /// Remembers that the current map does not name `key`.
    fn missed(&self, key: ServiceKey, now: Instant) {
        let mut state = self.lock();
        if state.misses.len() < MAX_DEPLOYMENT_GROUPS {
            state.misses.entry(key).or_insert(now);
        }
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.built = None;
        state.misses.clear();
    }

    /// The deployments of `group` that were active at its last read.
    fn was_active(&self, group: &DeploymentGroupRef) -> Vec<String> {
        self.lock().active.get(group).cloned().unwrap_or_default()
    }

    /// Remembers the deployments of `group` active now (none: forgets the group).
    fn now_active(&self, group: &DeploymentGroupRef, ids: Vec<String>) {
        let mut state = self.lock();
        if ids.is_empty() {
            state.active.remove(group);
        } else if state.active.len() < MAX_DEPLOYMENT_GROUPS || state.active.contains_key(group) {
            state.active.insert(group.clone(), ids);
        }
    }
}

/// What the lookup found for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// The group, and its last attempted deployment when CodeDeploy names one.
    Found(DeploymentGroupRef, Option<String>),
    NotFound,
    /// Not found in a listing cut short by a bound.
    Undecided,
}

impl TargetClient {
    /// What CodeDeploy says about one `CODE_DEPLOY` service: its group and the group's
    /// deployments, [`CodeDeploy::NoGroup`], or [`CodeDeploy::Unknown`] when a CodeDeploy
    /// call failed (never an error: the workload read goes on).
    pub(crate) async fn read_codedeploy(&self, cluster: &str, service: &str) -> CodeDeploy {
        let unknown =
            |e: AwsError| CodeDeploy::Unknown(bounded(&e.to_string(), MAX_CODEDEPLOY_TEXT_CHARS));
        let group = match self
            .deployment_group(cluster, service, Instant::now())
            .await
        {
            Ok(Lookup::Found(group, last)) => (group, last),
            Ok(Lookup::NotFound) => return CodeDeploy::NoGroup,
            Ok(Lookup::Undecided) => {
                return CodeDeploy::Unknown(format!(
                    "more CodeDeploy applications or deployment groups than the controller reads \
                     ({MAX_CODEDEPLOY_APPLICATIONS} applications, {MAX_DEPLOYMENT_GROUPS} groups); \
                     none of those read names this service"
                ))
            }
            Err(e) => return unknown(e),
        };
        let (group, last_attempted) = group;
        match self
            .group_deployments(&group, last_attempted, SystemTime::now())
            .await
        {
            Ok(deployments) => CodeDeploy::Group { group, deployments },
            Err(e) => {
                if e.kind == ErrorKind::NotFound {
                    // The group (or its application) is gone: list again next time.
                    self.deployment_groups.clear();
                }
                unknown(e)
            }
        }
    }

    /// The deployment group whose `ecsServices` names (cluster, service), from the cached
    /// map (built again as the module docs say).
    async fn deployment_group(
        &self,
        cluster: &str,
        service: &str,
        now: Instant,
    ) -> Result<Lookup, AwsError> {
        let key = (cluster.to_owned(), service.to_owned());
        let map = match self.deployment_groups.fresh(&key, now) {
            Some(map) => map,
            None => {
                let map = Arc::new(self.list_deployment_groups().await?);
                tracing::debug!(
                    groups = map.groups.len(),
                    truncated = map.truncated,
                    "listed the CodeDeploy deployment groups of ECS applications"
                );
                self.deployment_groups.store(now, Arc::clone(&map));
                map
            }
        };
        Ok(match map.groups.get(&key) {
            Some(group) => Lookup::Found(group.clone(), map.last_attempted.get(group).cloned()),
            None if map.truncated => Lookup::Undecided,
            None => {
                self.deployment_groups.missed(key, now);
                Lookup::NotFound
            }
        })
    }

    /// Every deployment group of the target's `ECS` applications, by the services it
    /// names (bounded, see the module docs).
    async fn list_deployment_groups(&self) -> Result<GroupMap, AwsError> {
        let mut map = GroupMap::default();
        let (names, cut) = bounded_names(
            self.codedeploy.list_applications().into_paginator().send(),
            "ListApplications",
            MAX_CODEDEPLOY_APPLICATIONS,
            |page| (page.applications(), page.next_token()),
        )
        .await?;
        map.truncated |= cut;
        let mut ecs_apps = Vec::new();
        for batch in names.chunks(BATCH_GET_APPLICATIONS_BATCH) {
            let out = self
                .codedeploy
                .batch_get_applications()
                .set_application_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("BatchGetApplications", e))?;
            ecs_apps.extend(
                out.applications_info()
                    .iter()
                    .filter(|a| a.compute_platform() == Some(&ComputePlatform::Ecs))
                    .filter_map(|a| a.application_name())
                    .filter(|n| batch.iter().any(|b| b == n))
                    .map(str::to_owned),
            );
        }
        ecs_apps.sort();
        ecs_apps.dedup();
        let mut groups_read = 0usize;
        for app in &ecs_apps {
            let (group_names, cut) = bounded_names(
                self.codedeploy
                    .list_deployment_groups()
                    .application_name(app)
                    .into_paginator()
                    .send(),
                "ListDeploymentGroups",
                MAX_DEPLOYMENT_GROUPS.saturating_sub(groups_read),
                |page| (page.deployment_groups(), page.next_token()),
            )
            .await?;
            map.truncated |= cut;
            groups_read += group_names.len();
            for batch in group_names.chunks(BATCH_GET_DEPLOYMENT_GROUPS_BATCH) {
                let out = self
                    .codedeploy
                    .batch_get_deployment_groups()
                    .application_name(app)
                    .set_deployment_group_names(Some(batch.to_vec()))
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetDeploymentGroups", e))?;
                for info in out.deployment_groups_info() {
                    let Some(name) = info
                        .deployment_group_name()
                        .filter(|n| batch.iter().any(|b| b == n))
                    else {
                        continue;
                    };
                    let group = DeploymentGroupRef {
                        application: app.clone(),
                        name: name.to_owned(),
                    };
                    if let Some(id) = info
                        .last_attempted_deployment()
                        .and_then(|d| d.deployment_id())
                        .filter(|id| valid_deployment_id(id))
                    {
                        map.last_attempted.insert(group.clone(), id.to_owned());
                    }
                    for svc in info.ecs_services() {
                        let (Some(c), Some(s)) = (svc.cluster_name(), svc.service_name()) else {
                            continue;
                        };
                        if !valid_ecs_name(c) || !valid_ecs_name(s) {
                            continue;
                        }
                        // ECS lets a service be in one group only; should two name it,
                        // the first by name is kept, the same on every pass.
                        map.groups
                            .entry((c.to_owned(), s.to_owned()))
                            .or_insert_with(|| group.clone());
                    }
                }
            }
            if groups_read >= MAX_DEPLOYMENT_GROUPS {
                map.truncated = true;
                break;
            }
        }
        Ok(map)
    }

    /// The group's deployments that are active, were created in the hour before `now`,
    /// were active at the last read (so an ending is seen however long it took), or are
    /// the group's last attempted one (so the newest outcome is known after a restart):
    /// at most [`MAX_CODEDEPLOY_DEPLOYMENTS`], the active ones kept first, newest first.
    async fn group_deployments(
        &self,
        group: &DeploymentGroupRef,
        last_attempted: Option<String>,
        now: SystemTime,
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        let since = now.checked_sub(RECENT).unwrap_or(SystemTime::UNIX_EPOCH);
        let listed = self.deployment_ids_since(group, since).await?;
        // The remembered ones first: the read keeps only the first ids of a long list.
        let mut ids = self.deployment_groups.was_active(group);
        ids.extend(last_attempted);
        ids.extend(listed);
        let mut deployments = self.describe_deployments(&ids).await?;
        self.deployment_groups.now_active(
            group,
            deployments
                .iter()
                .filter(|d| d.status.is_active())
                .map(|d| d.id.clone())
                .take(MAX_CODEDEPLOY_DEPLOYMENTS)
                .collect(),
        );
        // Active first (they decide whether a redeploy may start), then newest first.
        deployments.sort_by(|a, b| {
            b.status
                .is_active()
                .cmp(&a.status.is_active())
                .then(b.created_at_ms.cmp(&a.created_at_ms))
                .then(a.id.cmp(&b.id))
        });
        deployments.truncate(MAX_CODEDEPLOY_DEPLOYMENTS);
        deployments.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(deployments)
    }

    /// The ids of the group's deployments that are active or were created at or after
    /// `since` (first page of each `ListDeployments`), valid ones only, active ones first.
    async fn deployment_ids_since(
        &self,
        group: &DeploymentGroupRef,
        since: SystemTime,
    ) -> Result<Vec<String>, AwsError> {
        let mut ids = self.active_deployment_ids(group).await?;
        let recent = self
            .codedeploy
            .list_deployments()
            .application_name(&group.application)
            .deployment_group_name(&group.name)
            .create_time_range(TimeRange::builder().start(DateTime::from(since)).build())
            .send()
            .await
            .map_err(|e| classify("ListDeployments", e))?;
        ids.extend(
            recent
                .deployments()
                .iter()
                .filter(|id| valid_deployment_id(id))
                .cloned(),
        );
        Ok(ids)
    }

    /// The ids of the group's active deployments (first page of `ListDeployments` with
    /// `includeOnlyStatuses`), valid ones only.
    async fn active_deployment_ids(
        &self,
        group: &DeploymentGroupRef,
    ) -> Result<Vec<String>, AwsError> {
        let out = self
            .codedeploy
            .list_deployments()
            .application_name(&group.application)
            .deployment_group_name(&group.name)
            .set_include_only_statuses(Some(ACTIVE_STATUSES.to_vec()))
            .send()
            .await
            .map_err(|e| classify("ListDeployments", e))?;
        Ok(out
            .deployments()
            .iter()
            .filter(|id| valid_deployment_id(id))
            .cloned()
            .collect())
    }

    /// The deployments of `ids` (duplicates and ids past [`MAX_LISTED_DEPLOYMENTS`] left
    /// out, in the order given), [`BATCH_GET_DEPLOYMENTS_BATCH`] per call. Ids CodeDeploy
    /// does not return are left out.
    pub(crate) async fn describe_deployments(
        &self,
        ids: &[String],
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .take(MAX_LISTED_DEPLOYMENTS)
            .cloned()
            .collect();
        let mut deployments = Vec::with_capacity(ids.len());
        for batch in ids.chunks(BATCH_GET_DEPLOYMENTS_BATCH) {
            let out = self
                .codedeploy
                .batch_get_deployments()
                .set_deployment_ids(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("BatchGetDeployments", e))?;
            deployments.extend(
                out.deployments_info()
                    .iter()
                    .filter(|d| {
                        d.deployment_id()
                            .is_some_and(|id| batch.iter().any(|b| b == id))
                    })
                    .map(codedeploy_deployment),
            );
        }
        let mut seen = BTreeSet::new();
        deployments.retain(|d| seen.insert(d.id.clone()));
        Ok(deployments)
    }

    /// The group's deployments that are active or were created at or after `since`,
    /// whatever their status, newest first: `ListDeployments` twice and
    /// `BatchGetDeployments`. The read around a `CreateDeployment` (the engine's
    /// `write_once`): an active one means the group is busy; after an unknown outcome, a
    /// deployment not there before is the write's, even if it already failed.
    ///
    /// # Errors
    /// A failed `ListDeployments` or `BatchGetDeployments` call.
    pub async fn codedeploy_deployments_since(
        &self,
        group: &DeploymentGroupRef,
        since: SystemTime,
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        let ids = self.deployment_ids_since(group, since).await?;
        let mut deployments = self.describe_deployments(&ids).await?;
        deployments.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(deployments)
    }
}

/// A deployment as the model keeps it (texts bounded).
fn codedeploy_deployment(d: &aws_sdk_codedeploy::types::DeploymentInfo) -> CodeDeployDeployment {
    CodeDeployDeployment {
        id: d.deployment_id().unwrap_or_default().to_owned(),
        status: d
            .status()
            .map_or(CodeDeployStatus::Other(String::new()), |s| {
                CodeDeployStatus::from_aws(&bounded(s.as_str(), 64))
            }),
        created_at_ms: d
            .create_time()
            .and_then(|t| t.to_millis().ok())
            .unwrap_or_default(),
        error: d
            .error_information()
            .and_then(|e| e.message())
            .filter(|m| !m.trim().is_empty())
            .map(|m| bounded(m, MAX_CODEDEPLOY_TEXT_CHARS)),
    }
}

/// A CodeDeploy application or group name within the API's limit.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS
}

/// An ECS cluster or service name within ECS's limit.
fn valid_ecs_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= MAX_ECS_NAME_CHARS
}

fn valid_deployment_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_DEPLOYMENT_ID_CHARS
}

/// The valid names a paginated listing gives, sorted and unique, at most `room`, read in
/// at most [`MAX_LIST_PAGES`] pages; `true` when the listing was cut short (more names,
/// or more pages, than that).
async fn bounded_names<O, E>(
    mut pages: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
    operation: &'static str,
    room: usize,
    page_names: impl Fn(&O) -> (&[String], Option<&str>),
) -> Result<(Vec<String>, bool), AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut names = Vec::new();
    let mut truncated = false;
    let mut read = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify(operation, e))?;
        let (listed, next) = page_names(&page);
        names.extend(listed.iter().filter(|n| valid_name(n)).cloned());
        read += 1;
        if names.len() > room || read >= MAX_LIST_PAGES {
            truncated = names.len() > room || next.is_some_and(|t| !t.is_empty());
            break;
        }
    }
    names.sort();
    names.dedup();
    names.truncate(room);
    Ok((names, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::mocked;
    use aws_sdk_codedeploy::operation::batch_get_applications::BatchGetApplicationsOutput;
    use aws_sdk_codedeploy::operation::batch_get_deployment_groups::BatchGetDeploymentGroupsOutput;
    use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
    use aws_sdk_codedeploy::operation::list_applications::{
        ListApplicationsError, ListApplicationsOutput,
    };
    use aws_sdk_codedeploy::operation::list_deployment_groups::ListDeploymentGroupsOutput;
    use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
    use aws_sdk_codedeploy::types::{
        ApplicationInfo, DeploymentGroupInfo, DeploymentInfo, EcsService, ErrorInformation,
    };
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::error::ErrorMetadata;

    fn ecs_service(cluster: &str, service: &str) -> EcsService {
        EcsService::builder()
            .cluster_name(cluster)
            .service_name(service)
            .build()
    }

    /// Two applications: `web` (ECS; groups `blue-api` naming apps/api and `blue-worker`
    /// naming apps/worker and batch/worker) and `legacy` (Server, a group that also names
    /// apps/api and is never read); listings in two pages.
    fn fleet() -> Vec<Rule> {
        let apps = mock!(aws_sdk_codedeploy::Client::list_applications)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                ListApplicationsOutput::builder()
                    .applications("web")
                    .next_token("page-2")
                    .build()
            });
        let apps_2 = mock!(aws_sdk_codedeploy::Client::list_applications)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                ListApplicationsOutput::builder()
                    .applications("legacy")
                    .build()
            });
        let infos =
            mock!(aws_sdk_codedeploy::Client::batch_get_applications).then_compute_output(|r| {
                let mut out = BatchGetApplicationsOutput::builder();
                for name in r.application_names() {
                    let platform = if name == "web" {
                        ComputePlatform::Ecs
                    } else {
                        ComputePlatform::Server
                    };
                    out = out.applications_info(
                        ApplicationInfo::builder()
                            .application_name(name)
                            .compute_platform(platform)
                            .build(),
                    );
                }
                out.build()
            });
        let groups = mock!(aws_sdk_codedeploy::Client::list_deployment_groups)
            .match_requests(|r| r.application_name() == Some("web"))
            .then_output(|| {
                ListDeploymentGroupsOutput::builder()
                    .application_name("web")
                    .deployment_groups("blue-worker")
                    .deployment_groups("blue-api")
                    .build()
            });
        let group_infos = mock!(aws_sdk_codedeploy::Client::batch_get_deployment_groups)
            .match_requests(|r| r.application_name() == Some("web"))
            .then_compute_output(|r| {
                let mut out = BatchGetDeploymentGroupsOutput::builder();
                for name in r.deployment_group_names() {
                    let mut info = DeploymentGroupInfo::builder()
                        .application_name("web")
                        .deployment_group_name(name)
                        .compute_platform(ComputePlatform::Ecs);
                    info = match name.as_str() {
                        "blue-api" => info.ecs_services(ecs_service("apps", "api")),
                        _ => info
                            .ecs_services(ecs_service("apps", "worker"))
                            .ecs_services(ecs_service("batch", "worker")),
                    };
                    out = out.deployment_groups_info(info.build());
                }
                out.build()
            });
        vec![apps, apps_2, infos, groups, group_infos]
    }

    fn group(name: &str) -> DeploymentGroupRef {
        DeploymentGroupRef {
            application: "web".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn the_group_naming_a_service_is_found_among_ecs_applications_only() {
        let rules = fleet();
        let refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        let now = Instant::now();
        let rows = [
            ("apps", "api", Lookup::Found(group("blue-api"), None)),
            ("apps", "worker", Lookup::Found(group("blue-worker"), None)),
            ("batch", "worker", Lookup::Found(group("blue-worker"), None)),
            ("batch", "api", Lookup::NotFound),
            ("apps", "other", Lookup::NotFound),
        ];
        for (cluster, service, want) in rows {
            let got = client
                .deployment_group(cluster, service, now)
                .await
                .expect("listed");
            assert_eq!(got, want, "{cluster}/{service}");
        }
        assert_eq!(rules[0].num_calls(), 1, "one listing serves every service");
        assert_eq!(rules[1].num_calls(), 1, "the second page is read");
        assert_eq!(
            rules[2].num_calls(),
            1,
            "both names in one BatchGetApplications"
        );
        assert_eq!(rules[3].num_calls(), 1, "only the ECS application's groups");
        assert_eq!(rules[4].num_calls(), 1, "both groups in one call");
    }

    #[tokio::test]
    async fn the_map_is_rebuilt_after_its_ttl_and_on_a_new_miss_after_the_miss_ttl() {
        let rules = fleet();
        let refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        let t0 = Instant::now();
        let listings = || rules[0].num_calls();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        // (when, service, listings so far)
        let rows = [
            (0, "api", 1),
            (10, "other", 1),
            (DEPLOYMENT_GROUP_MISS_TTL.as_secs() + 1, "api", 1),
            // Known not to be named since 10 s: no listing for it before the map's TTL.
            (DEPLOYMENT_GROUP_MISS_TTL.as_secs() + 1, "other", 1),
            // Never looked up: the map is old enough to be listed again for it.
            (DEPLOYMENT_GROUP_MISS_TTL.as_secs() + 1, "newcomer", 2),
            (DEPLOYMENT_GROUP_TTL.as_secs(), "api", 2),
            (
                DEPLOYMENT_GROUP_MISS_TTL.as_secs() + DEPLOYMENT_GROUP_TTL.as_secs() + 2,
                "api",
                3,
            ),
        ];
        for (secs, service, want) in rows {
            client
                .deployment_group("apps", service, at(secs))
                .await
                .expect("listed");
            assert_eq!(listings(), want, "at {secs} s, {service}");
        }
    }

    fn denied() -> Rule {
        mock!(aws_sdk_codedeploy::Client::list_applications).then_error(|| {
            ListApplicationsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: codedeploy:ListApplications")
                    .build(),
            )
        })
    }

    #[tokio::test]
    async fn no_group_and_unknown_are_what_the_engine_sees() {
        let rules = fleet();
        let mut refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        assert_eq!(
            client.read_codedeploy("apps", "other").await,
            CodeDeploy::NoGroup
        );
        let deny = denied();
        refs = vec![&deny];
        let client = mocked("us-east-1", &refs);
        let CodeDeploy::Unknown(why) = client.read_codedeploy("apps", "api").await else {
            panic!("unknown");
        };
        assert!(
            why.contains("ListApplications") && why.contains("access_denied"),
            "{why}"
        );
        assert!(why.chars().count() <= MAX_CODEDEPLOY_TEXT_CHARS + 1);
    }

    #[tokio::test]
    async fn a_group_that_is_gone_is_unknown_and_the_map_is_listed_again() {
        use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsError;
        let mut rules = fleet();
        rules.push(
            mock!(aws_sdk_codedeploy::Client::list_deployments).then_error(|| {
                ListDeploymentsError::generic(
                    ErrorMetadata::builder()
                        .code("DeploymentGroupDoesNotExistException")
                        .message("No Deployment Group found for name: blue-api")
                        .build(),
                )
            }),
        );
        let refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        let state = client.read_codedeploy("apps", "api").await;
        assert!(
            matches!(&state, CodeDeploy::Unknown(why) if why.contains("not_found")),
            "{state:?}"
        );
        client.read_codedeploy("apps", "api").await;
        assert_eq!(
            rules[0].num_calls(),
            2,
            "listed again after the group was gone"
        );
    }

    /// ListDeployments: `active` ids for the status filter, `recent` ones for the time
    /// range; BatchGetDeployments makes each id's deployment from its name
    /// (`<status>-<created ms>`).
    fn deployments(active: Vec<String>, recent: Vec<String>) -> Vec<Rule> {
        let a = mock!(aws_sdk_codedeploy::Client::list_deployments)
            .match_requests(|r| {
                r.include_only_statuses() == ACTIVE_STATUSES
                    && r.create_time_range().is_none()
                    && r.application_name() == Some("web")
                    && r.deployment_group_name() == Some("blue-api")
            })
            .then_output(move || {
                ListDeploymentsOutput::builder()
                    .set_deployments(Some(active.clone()))
                    .build()
            });
        let r = mock!(aws_sdk_codedeploy::Client::list_deployments)
            .match_requests(|r| {
                r.include_only_statuses().is_empty()
                    && r.create_time_range()
                        .and_then(|t| t.start())
                        .is_some_and(|s| s.secs() > 0)
                    && r.create_time_range().and_then(|t| t.end()).is_none()
            })
            .then_output(move || {
                ListDeploymentsOutput::builder()
                    .set_deployments(Some(recent.clone()))
                    .build()
            });
        let get =
            mock!(aws_sdk_codedeploy::Client::batch_get_deployments).then_compute_output(|r| {
                assert!(r.deployment_ids().len() <= BATCH_GET_DEPLOYMENTS_BATCH);
                let mut out = BatchGetDeploymentsOutput::builder();
                for id in r.deployment_ids() {
                    let (status, created) = id.split_once('-').expect("status-ms");
                    let mut d = DeploymentInfo::builder()
                        .deployment_id(id)
                        .status(DeploymentStatus::from(status))
                        .create_time(DateTime::from_millis(created.parse().expect("ms")));
                    if status == "Failed" {
                        d = d.error_information(
                            ErrorInformation::builder()
                                .message("x".repeat(10 * MAX_CODEDEPLOY_TEXT_CHARS))
                                .build(),
                        );
                    }
                    out = out.deployments_info(d.build());
                }
                out.build()
            });
        vec![a, r, get]
    }

    #[tokio::test]
    async fn a_groups_deployments_are_the_active_and_recent_ones_newest_first() {
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rules = deployments(
            ids(&["InProgress-300"]),
            ids(&["InProgress-300", "Succeeded-100", "Failed-200"]),
        );
        let refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        let got = client
            .group_deployments(&group("blue-api"), None, SystemTime::now())
            .await
            .expect("read");
        let summary: Vec<(&str, CodeDeployStatus)> = got
            .iter()
            .map(|d| (d.id.as_str(), d.status.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("InProgress-300", CodeDeployStatus::InProgress),
                ("Failed-200", CodeDeployStatus::Failed),
                ("Succeeded-100", CodeDeployStatus::Succeeded),
            ],
            "each once, newest first"
        );
        assert_eq!(got[0].created_at_ms, 300);
        let error = got[1].error.as_deref().expect("the failure's words");
        assert_eq!(
            error.chars().count(),
            MAX_CODEDEPLOY_TEXT_CHARS + 1,
            "bounded"
        );
        assert_eq!(got[2].error, None);
        assert_eq!((rules[0].num_calls(), rules[1].num_calls()), (1, 1));
        assert_eq!(
            rules[2].num_calls(),
            1,
            "three ids, one BatchGetDeployments"
        );
        let around_a_write = client
            .codedeploy_deployments_since(&group("blue-api"), SystemTime::now())
            .await
            .expect("read");
        let ids: Vec<&str> = around_a_write.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            ["InProgress-300", "Failed-200", "Succeeded-100"],
            "active or created since, whatever their status (a write that failed at once is found)"
        );
    }

    #[tokio::test]
    async fn a_deployment_seen_active_is_read_again_when_it_ends_however_old_it_is() {
        // First read: `InProgress-300` is active. Second read: it is no longer listed
        // (ended, and created more than an hour ago), yet it is read to learn its end;
        // the group's last attempted deployment is read too.
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let first = deployments(ids(&["InProgress-300"]), ids(&[]));
        let refs: Vec<&Rule> = first.iter().collect();
        let client = mocked("us-east-1", &refs);
        client
            .group_deployments(&group("blue-api"), None, SystemTime::now())
            .await
            .expect("read");
        let ended = deployments(ids(&[]), ids(&[]));
        let refs: Vec<&Rule> = ended.iter().collect();
        let later = TargetClient {
            deployment_groups: client.deployment_groups.clone(),
            ..mocked("us-east-1", &refs)
        };
        let got = later
            .group_deployments(
                &group("blue-api"),
                Some("Stopped-50".to_owned()),
                SystemTime::now(),
            )
            .await
            .expect("read");
        let summary: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(summary, ["InProgress-300", "Stopped-50"]);
        assert!(
            later.deployment_groups.was_active(&group("blue-api")) == ["InProgress-300"],
            "still active in this canned answer, so still remembered"
        );
    }

    #[tokio::test]
    async fn active_deployments_are_kept_first_when_there_are_too_many() {
        let active: Vec<String> = (0..30).map(|i| format!("Queued-{i}")).collect();
        let recent: Vec<String> = (0..10).map(|i| format!("Succeeded-{}", 1000 + i)).collect();
        let rules = deployments(active, recent);
        let refs: Vec<&Rule> = rules.iter().collect();
        let client = mocked("us-east-1", &refs);
        let got = client
            .group_deployments(&group("blue-api"), None, SystemTime::now())
            .await
            .expect("read");
        assert_eq!(got.len(), MAX_CODEDEPLOY_DEPLOYMENTS);
        assert!(got.iter().all(|d| d.status.is_active()), "{got:?}");
        assert_eq!(got[0].id, "Queued-29", "newest first");
        assert_eq!(rules[2].num_calls(), 2, "40 ids in batches of 25");
    }

    #[tokio::test]
    async fn observe_workload_reads_codedeploy_for_code_deploy_services_only() {
        use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
        use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType, Service};
        use gec_model::observed::ObservedCluster;
        let controller = |t| {
            DeploymentController::builder()
                .r#type(t)
                .build()
                .expect("t")
        };
        let services = mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name("api")
                        .deployment_controller(controller(DeploymentControllerType::CodeDeploy))
                        .build(),
                )
                .services(Service::builder().service_name("rolling").build())
                .build()
        });
        let tasks = mock!(aws_sdk_ecs::Client::list_tasks)
            .then_output(|| aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder().build());
        let deny = denied();
        let client = mocked("us-east-1", &[&tasks, &services, &deny]);
        let cluster = ObservedCluster {
            name: "apps".into(),
            arn: "arn:aws:ecs:us-east-1:1:cluster/apps".into(),
            ..ObservedCluster::default()
        };
        let w = client
            .observe_workload(
                &cluster,
                &["api".to_owned(), "rolling".to_owned()],
                crate::Want::Coverage,
            )
            .await
            .expect("a CodeDeploy failure does not fail the read");
        let api = w.services.iter().find(|s| s.name == "api").expect("api");
        assert!(
            matches!(api.codedeploy, Some(CodeDeploy::Unknown(_))),
            "{api:?}"
        );
        let rolling = w
            .services
            .iter()
            .find(|s| s.name == "rolling")
            .expect("rolling");
        assert_eq!(rolling.codedeploy, None);
    }
}
