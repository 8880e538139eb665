//! An in-memory [`TargetCloud`] for engine tests: it holds one target's observed state,
//! applies writes to it the way AWS would, records every call in order, can be told to
//! fail, and records every cluster's effective coverage after every write so tests can
//! check invariants "at every instant".

pub mod driving;
pub mod fleet;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use gec_aws::{AwsError, BatchOutcome, ClusterScope, ErrorKind, FeatureChange, Want};
use gec_engine::{Clock, TargetCloud};
use gec_model::desired::AutoEnable;
use gec_model::observed::OrganizationMember;
use gec_model::observed::{
    effectively_covered, CodeDeployDeployment, CoverageRecord, DeploymentGroupRef, ObservedCluster,
    ObservedDeployment, ObservedDetector, ObservedFeature, ObservedService, Preflight, Workload,
    ECS_FARGATE_AGENT_MANAGEMENT, RUNTIME_MONITORING,
};
use gec_model::plan::CodeDeployRedeploy;
use gec_model::testing::arn;

pub use fleet::Fleet;
use gec_model::testing::{cluster, detector, observed};
use gec_model::{ObservedTarget, MANAGED_TAG_KEY};

/// An error as the adapter would classify it.
pub fn aws_error(kind: ErrorKind, operation: &'static str) -> AwsError {
    AwsError::new(
        kind,
        operation,
        None,
        format!("injected {} failure", kind.as_str()),
    )
}

/// One call the engine made, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `observe(scope)`.
    Observe(ClusterScope),
    /// `tag_clusters(arns, value)`.
    TagClusters {
        /// ARNs, in the order given.
        arns: Vec<String>,
        /// Tag value.
        value: String,
    },
    /// `untag_clusters(arns)`.
    UntagClusters {
        /// ARNs, in the order given.
        arns: Vec<String>,
    },
    /// `update_detector(id, changes)`.
    UpdateDetector {
        /// Detector id.
        detector_id: String,
        /// `(name, status)` pairs, in the order given.
        changes: Vec<(String, String)>,
    },
    /// `observe_workload(cluster)`.
    ObserveWorkload(String),
    /// `observe_workload(cluster, .., Want::Offboarding)`.
    ObserveOffboarding(String),
    /// `preflight(service)`, by cluster and service names.
    Preflight(String, String),
    /// `list_coverage()`.
    ListCoverage,
    /// `redeploy_service(cluster, service)`, by names.
    RedeployService(String, String),
    /// `describe_service(cluster, service)`, by names.
    DescribeService(String, String),
    /// `start_codedeploy(redeploy)`: the deployment group's name (the service's).
    StartCodeDeploy(String),
    /// `codedeploy_since(group, ..)`: the deployment group's name.
    CodeDeploySince(String),
    /// `list_members()`.
    ListMembers,
    /// `update_organization(detector, changes)`: (name, auto-enable) pairs.
    UpdateOrganization(Vec<(String, String)>),
}

impl Call {
    /// The trait method's name.
    pub fn operation(&self) -> &'static str {
        match self {
            Call::Observe(_) => "observe",
            Call::TagClusters { .. } => "tag_clusters",
            Call::UntagClusters { .. } => "untag_clusters",
            Call::UpdateDetector { .. } => "update_detector",
            Call::ObserveWorkload(_) | Call::ObserveOffboarding(_) => "observe_workload",
            Call::Preflight(..) => "preflight",
            Call::ListCoverage => "list_coverage",
            Call::RedeployService(..) => "redeploy_service",
            Call::DescribeService(..) => "describe_service",
            Call::StartCodeDeploy(_) => "start_codedeploy",
            Call::CodeDeploySince(_) => "codedeploy_since",
            Call::ListMembers => "list_members",
            Call::UpdateOrganization(_) => "update_organization",
        }
    }

    /// Whether the call writes to the cloud.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Call::Observe(_)
                | Call::ObserveWorkload(_)
                | Call::ObserveOffboarding(_)
                | Call::Preflight(..)
                | Call::ListCoverage
                | Call::DescribeService(..)
                | Call::CodeDeploySince(_)
                | Call::ListMembers
        )
    }
}

/// Effective coverage of every ACTIVE cluster by name, at one instant.
pub type Coverage = BTreeMap<String, bool>;

#[derive(Debug)]
struct State {
    observed: ObservedTarget,
    calls: Vec<Call>,
    coverage: Vec<Coverage>,
    failing_arns: BTreeMap<String, AwsError>,
    failing_detector: Option<AwsError>,
    /// How long each tag, untag and detector write takes (tokio time), before it lands.
    write_latency: std::time::Duration,
    /// `(successful observations still allowed, error)`.
    failing_observe: Option<(usize, AwsError)>,
    /// `observe` / `tag_clusters` panic (a bug in an adapter).
    panics: Option<Panic>,
    fleet: Fleet,
    clock: Option<Clock>,
    /// How the next `redeploy_service` calls fail, in order.
    redeploy_faults: std::collections::VecDeque<RedeployFault>,
    /// Redeploys the cloud applies later than it answered: (due ms, cluster, service).
    landing: Vec<(i64, String, String)>,
    /// An administrator's associated members (`list_members`); `Err` fails the listing.
    members: Result<Vec<OrganizationMember>, AwsError>,
}

impl Default for State {
    fn default() -> Self {
        State {
            observed: ObservedTarget::default(),
            calls: Vec::new(),
            coverage: Vec::new(),
            failing_arns: BTreeMap::new(),
            failing_detector: None,
            write_latency: std::time::Duration::ZERO,
            failing_observe: None,
            panics: None,
            fleet: Fleet::default(),
            clock: None,
            redeploy_faults: std::collections::VecDeque::new(),
            landing: Vec::new(),
            members: Ok(Vec::new()),
        }
    }
}

/// How one `redeploy_service` call fails: with `error`, after applying the write at once
/// (`Some(0)`), `lag_ms` later (a request the service held), or never (`None`).
#[derive(Debug, Clone)]
pub struct RedeployFault {
    /// When the write is applied, in ms after the call; `None`: it is not.
    pub lag_ms: Option<i64>,
    /// What the call returns.
    pub error: AwsError,
}

impl State {
    fn coverage_now(&self) -> Coverage {
        let flags = self
            .observed
            .detector
            .as_ref()
            .map(ObservedDetector::flags)
            .unwrap_or_default();
        self.observed
            .clusters
            .iter()
            .filter(|c| c.is_active())
            .map(|c| (c.name.clone(), effectively_covered(flags, c.managed_tag())))
            .collect()
    }

    /// Applies `write` to every cluster in `arns`, as the Tagging API does: ARNs that are
    /// unknown or told to fail are reported per ARN, the others are written.
    fn write_tags(
        &mut self,
        operation: &'static str,
        arns: &[String],
        write: impl Fn(&mut ObservedCluster),
    ) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        for arn in arns {
            if let Some(e) = self.failing_arns.get(arn) {
                outcome.failed.insert(arn.clone(), e.clone());
                continue;
            }
            match self.observed.clusters.iter_mut().find(|c| c.arn == *arn) {
                Some(c) => write(c),
                None => {
                    let e = aws_error(ErrorKind::NotFound, operation);
                    outcome.failed.insert(arn.clone(), e);
                }
            }
        }
        outcome
    }

    fn now(&self) -> i64 {
        self.clock.map_or(0, |c| c.now_ms())
    }

    /// Applies the late redeploys and finishes the rollouts due by now.
    fn advance(&mut self) {
        let now = self.now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.landing)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.landing = later;
        for (at, cluster, service) in due {
            self.fleet.redeploy(&cluster, &service, at);
        }
        let coverage = self.coverage_now();
        self.fleet.advance(now, &|cluster| {
            coverage.get(cluster).copied().unwrap_or(false)
        });
    }

    fn after_write(&mut self) {
        let now = self.coverage_now();
        self.coverage.push(now);
    }
}

/// Where [`FakeCloud::panic_in`] panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panic {
    /// In `observe` (the planning stage).
    Observe,
    /// In `tag_clusters` and `untag_clusters` (the apply stage).
    Tag,
}

/// The in-memory cloud of one target.
#[derive(Debug)]
pub struct FakeCloud {
    state: Mutex<State>,
}

impl FakeCloud {
    /// A cloud in this state, with no failures.
    pub fn new(observed: ObservedTarget) -> Self {
        let mut state = State {
            observed,
            ..State::default()
        };
        let initial = state.coverage_now();
        state.coverage.push(initial);
        FakeCloud {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Services, tasks and rollouts follow `clock` (the engine's).
    pub fn with_fleet(
        self,
        clock: Clock,
        rollout_ms: i64,
        build: impl FnOnce(&mut Fleet, i64),
    ) -> Self {
        {
            let mut s = self.lock();
            s.clock = Some(clock);
            s.fleet.rollout_ms = rollout_ms;
            let now = clock.now_ms();
            build(&mut s.fleet, now);
        }
        self
    }

    /// Changes the fleet (knobs, new services) now.
    pub fn fleet<T>(&self, change: impl FnOnce(&mut Fleet) -> T) -> T {
        let mut s = self.lock();
        s.advance();
        change(&mut s.fleet)
    }

    /// Each tag, untag and detector write takes `latency` (on tokio's clock) before it
    /// lands.
    pub fn slow_writes(&self, latency: std::time::Duration) {
        self.lock().write_latency = latency;
    }

    async fn write_delay(&self) {
        let latency = self.lock().write_latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    /// Tag and untag writes to `arn` fail with `error` (reported per ARN).
    pub fn fail_arn(&self, arn: &str, error: AwsError) {
        self.lock().failing_arns.insert(arn.to_owned(), error);
    }

    /// Every `update_detector` call fails with `error`, writing nothing.
    pub fn fail_update_detector(&self, error: AwsError) {
        self.lock().failing_detector = Some(error);
    }

    /// After `successes` more successful observations, every `observe` fails with `error`.
    pub fn fail_observe_after(&self, successes: usize, error: AwsError) {
        self.lock().failing_observe = Some((successes, error));
    }

    /// Every call of `at` panics, like an SDK bug reached from the environment.
    pub fn panic_in(&self, at: Panic) {
        self.lock().panics = Some(at);
    }

    /// The next `redeploy_service` calls fail as given, in order.
    pub fn fail_redeploys(&self, faults: impl IntoIterator<Item = RedeployFault>) {
        self.lock().redeploy_faults.extend(faults);
    }

    /// An administrator with these associated members (`list_members`), or a listing
    /// that fails.
    pub fn set_members(&self, members: Result<Vec<&str>, AwsError>) {
        self.lock().members = members.map(|m| {
            m.into_iter()
                .map(|account| OrganizationMember {
                    account: account.to_owned(),
                    relationship: "Enabled".to_owned(),
                })
                .collect()
        });
    }

    /// A delegated administrator whose organization configuration auto-enables these
    /// (name, NEW | ALL | NONE).
    pub fn set_organization(&self, auto_enable: &[(&str, &str)]) {
        self.lock().observed.organization = Some(gec_model::observed::ObservedOrganization {
            auto_enable: auto_enable
                .iter()
                .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
                .collect(),
        });
    }

    /// Every failure told so far stops.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.failing_arns.clear();
        s.failing_detector = None;
        s.failing_observe = None;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every write call so far, in order.
    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    /// Operation names of the write calls so far, in order.
    pub fn write_operations(&self) -> Vec<&'static str> {
        self.writes().iter().map(Call::operation).collect()
    }

    /// Coverage before the first call, then after every write call (failed ones too).
    pub fn coverage_history(&self) -> Vec<Coverage> {
        self.lock().coverage.clone()
    }

    /// The cloud's state now.
    pub fn observed(&self) -> ObservedTarget {
        self.lock().observed.clone()
    }

    /// The `GuardDutyManaged` tag of a cluster now.
    pub fn tag_of(&self, name: &str) -> Option<String> {
        self.lock()
            .observed
            .clusters
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.managed_tag().map(str::to_owned))
    }

    /// Another writer (Terraform, a person in the console) sets the `GuardDutyManaged`
    /// tag of cluster `name` to `value`, or removes it: no call of the engine's.
    pub fn other_writer_tags(&self, name: &str, value: Option<&str>) {
        let mut s = self.lock();
        if let Some(c) = s.observed.clusters.iter_mut().find(|c| c.name == name) {
            match value {
                Some(v) => c.tags.insert(MANAGED_TAG_KEY.to_owned(), v.to_owned()),
                None => c.tags.remove(MANAGED_TAG_KEY),
            };
        }
    }

    /// Another writer sets a RUNTIME_MONITORING additional configuration (or, for
    /// `RUNTIME_MONITORING` itself, the feature's status).
    pub fn other_writer_detector(&self, feature: &str, status: &str) {
        let mut s = self.lock();
        if let Some(d) = s.observed.detector.as_mut() {
            let runtime = d.features.entry(RUNTIME_MONITORING.to_owned()).or_default();
            if feature == RUNTIME_MONITORING {
                runtime.status = status.into();
            } else {
                runtime.additional.insert(feature.to_owned(), status.into());
            }
        }
    }

    /// Status of `ECS_FARGATE_AGENT_MANAGEMENT` now.
    pub fn automation_status(&self) -> Option<String> {
        self.lock()
            .observed
            .detector
            .as_ref()
            .and_then(|d| d.runtime_additional_status(ECS_FARGATE_AGENT_MANAGEMENT))
            .map(ToString::to_string)
    }

    /// Status of `RUNTIME_MONITORING` now.
    pub fn runtime_monitoring_status(&self) -> Option<String> {
        self.lock()
            .observed
            .detector
            .as_ref()
            .and_then(|d| d.feature_status(RUNTIME_MONITORING))
            .map(ToString::to_string)
    }
}

impl TargetCloud for FakeCloud {
    async fn observe(&self, scope: &ClusterScope) -> Result<ObservedTarget, AwsError> {
        let mut s = self.lock();
        s.advance();
        s.calls.push(Call::Observe(scope.clone()));
        if s.panics == Some(Panic::Observe) {
            drop(s);
            panic!("URL was unset");
        }
        if let Some((successes, error)) = &mut s.failing_observe {
            if *successes == 0 {
                return Err(error.clone());
            }
            *successes -= 1;
        }
        let mut observed = s.observed.clone();
        for c in &mut observed.clusters {
            c.running_tasks = s.fleet.running(&c.name);
        }
        if let ClusterScope::Named(ids) = scope {
            // DescribeClusters by name or ARN: only those clusters, missing ones left out.
            observed
                .clusters
                .retain(|c| ids.iter().any(|id| *id == c.name || *id == c.arn));
        }
        Ok(observed)
    }

    async fn tag_clusters(&self, arns: &[String], value: &str) -> BatchOutcome {
        self.write_delay().await;
        let mut s = self.lock();
        s.calls.push(Call::TagClusters {
            arns: arns.to_vec(),
            value: value.to_owned(),
        });
        if s.panics == Some(Panic::Tag) {
            drop(s);
            panic!("URL was unset");
        }
        let outcome = s.write_tags("TagResources", arns, |c| {
            c.tags.insert(MANAGED_TAG_KEY.to_owned(), value.to_owned());
        });
        s.after_write();
        outcome
    }

    async fn untag_clusters(&self, arns: &[String]) -> BatchOutcome {
        self.write_delay().await;
        let mut s = self.lock();
        s.calls.push(Call::UntagClusters {
            arns: arns.to_vec(),
        });
        if s.panics == Some(Panic::Tag) {
            drop(s);
            panic!("URL was unset");
        }
        let outcome = s.write_tags("UntagResources", arns, |c| {
            c.tags.remove(MANAGED_TAG_KEY);
        });
        s.after_write();
        outcome
    }

    async fn update_detector(
        &self,
        detector_id: &str,
        changes: &[FeatureChange<'_>],
    ) -> Result<(), AwsError> {
        self.write_delay().await;
        let mut guard = self.lock();
        let s = &mut *guard;
        s.calls.push(Call::UpdateDetector {
            detector_id: detector_id.to_owned(),
            changes: changes
                .iter()
                .map(|c| (c.name.to_owned(), c.status.to_string()))
                .collect(),
        });
        let result = match (&s.failing_detector, &mut s.observed.detector) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(d)) if d.id == detector_id => {
                // Read-modify-write of RUNTIME_MONITORING, as the adapter does: the feature
                // is created DISABLED when missing, and additional configurations merge.
                let feature = d
                    .features
                    .entry(RUNTIME_MONITORING.to_owned())
                    .or_insert_with(|| ObservedFeature {
                        status: "DISABLED".into(),
                        additional: BTreeMap::new(),
                    });
                for change in changes {
                    if change.name == RUNTIME_MONITORING {
                        feature.status = change.status.to_owned();
                    } else {
                        feature
                            .additional
                            .insert(change.name.to_owned(), change.status.to_owned());
                    }
                }
                Ok(())
            }
            (None, _) => Err(aws_error(ErrorKind::NotFound, "UpdateDetector")),
        };
        s.after_write();
        result
    }

    async fn observe_workload(
        &self,
        cluster: &ObservedCluster,
        watch: &[String],
        want: Want,
    ) -> Result<Workload, AwsError> {
        let mut s = self.lock();
        s.advance();
        s.calls.push(match want {
            Want::Coverage => Call::ObserveWorkload(cluster.name.clone()),
            Want::Offboarding => Call::ObserveOffboarding(cluster.name.clone()),
        });
        Ok(s.fleet.workload(&cluster.name, watch, want))
    }

    async fn preflight(&self, service: &ObservedService) -> Preflight {
        let mut s = self.lock();
        let cluster = service
            .arn
            .rsplit('/')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        s.calls
            .push(Call::Preflight(cluster.clone(), service.name.clone()));
        s.fleet.preflight(&cluster, &service.name)
    }

    async fn list_coverage(
        &self,
        _detector_id: &str,
    ) -> Result<BTreeMap<String, CoverageRecord>, AwsError> {
        let mut s = self.lock();
        s.advance();
        s.calls.push(Call::ListCoverage);
        let covered = s.coverage_now();
        Ok(covered
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| (arn(&name), s.fleet.coverage(&name)))
            .collect())
    }

    async fn redeploy_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<ObservedDeployment, AwsError> {
        let mut s = self.lock();
        s.advance();
        let cluster = name_of(cluster_arn);
        s.calls
            .push(Call::RedeployService(cluster.clone(), service.to_owned()));
        let now = s.now();
        if let Some(fault) = s.redeploy_faults.pop_front() {
            match fault.lag_ms {
                Some(0) => {
                    s.fleet.redeploy(&cluster, service, now);
                }
                Some(lag) => s.landing.push((now + lag, cluster, service.to_owned())),
                None => {}
            }
            return Err(fault.error);
        }
        s.fleet
            .redeploy(&cluster, service, now)
            .ok_or_else(|| aws_error(ErrorKind::NotFound, "UpdateService"))
    }

    async fn list_members(&self) -> Result<Vec<OrganizationMember>, AwsError> {
        let mut s = self.lock();
        s.calls.push(Call::ListMembers);
        s.members.clone()
    }

    async fn update_organization(
        &self,
        _detector_id: &str,
        changes: &[(&'static str, AutoEnable)],
    ) -> Result<(), AwsError> {
        let mut s = self.lock();
        s.calls.push(Call::UpdateOrganization(
            changes
                .iter()
                .map(|(n, a)| ((*n).to_owned(), a.as_aws().to_owned()))
                .collect(),
        ));
        let org = s.observed.organization.get_or_insert_with(Default::default);
        for (name, auto) in changes {
            org.auto_enable
                .insert((*name).to_owned(), auto.as_aws().to_owned());
        }
        s.after_write();
        Ok(())
    }

    async fn start_codedeploy(&self, redeploy: &CodeDeployRedeploy) -> Result<String, AwsError> {
        self.start_codedeploy_impl(redeploy).await
    }

    async fn codedeploy_since(
        &self,
        group: &DeploymentGroupRef,
        since_ms: i64,
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        let mut s = self.lock();
        s.advance();
        s.calls.push(Call::CodeDeploySince(group.name.clone()));
        Ok(s.fleet.codedeploy_since(group, since_ms))
    }

    async fn describe_service(
        &self,
        cluster_arn: &str,
        service: &str,
    ) -> Result<Option<ObservedService>, AwsError> {
        let mut s = self.lock();
        s.advance();
        let cluster = name_of(cluster_arn);
        s.calls
            .push(Call::DescribeService(cluster.clone(), service.to_owned()));
        Ok(s.fleet.describe(&cluster, service))
    }
}

impl FakeCloud {
    async fn start_codedeploy_impl(
        &self,
        redeploy: &CodeDeployRedeploy,
    ) -> Result<String, AwsError> {
        let mut s = self.lock();
        s.advance();
        s.calls
            .push(Call::StartCodeDeploy(redeploy.group.name.clone()));
        let now = s.now();
        if let Some(fault) = s.redeploy_faults.pop_front() {
            if fault.lag_ms == Some(0) {
                let _ = s.fleet.start_codedeploy(&redeploy.group, now);
            }
            return Err(fault.error);
        }
        s.fleet.start_codedeploy(&redeploy.group, now).map_err(|m| {
            AwsError::new(
                ErrorKind::Other,
                "CreateDeployment",
                Some("DeploymentLimitExceededException".into()),
                m,
            )
        })
    }
}

/// A cluster's name from its ARN.
fn name_of(cluster_arn: &str) -> String {
    cluster_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A covered cluster `apps` (automation on, tagged `true`) with `n` Fargate services of 2
/// tasks each, all started 2 hours ago without the agent (before coverage); every rollout
/// takes a minute.
pub fn covered_apps(clock: Clock, n: usize) -> Arc<FakeCloud> {
    const MIN: i64 = 60_000;
    Arc::new(
        FakeCloud::new(
            observed()
                .clusters([cluster("apps").tagged("true")])
                .detector(detector().runtime("ENABLED").automation("ENABLED")),
        )
        .with_fleet(clock, MIN, |fleet, now| {
            for i in 0..n {
                fleet.add_service("apps", &format!("svc-{i}"), 2, false, true, now - 120 * MIN);
            }
        }),
    )
}

impl FakeCloud {
    /// The services redeployed so far, in order.
    pub fn redeployed(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::RedeployService(_, service) | Call::StartCodeDeploy(service) => Some(service),
                _ => None,
            })
            .collect()
    }
}
