//! The rollout gate (DESIGN §6): decides *when* the planned redeploys start, fleet-wide.
//!
//! The planner says which services need a redeploy. The gate holds what the engine saw
//! across passes — when each cluster's coverage turned on, the rollouts it started and is
//! watching, the FAILED rollouts — and applies `settleTime`, `windows`, `maxPerHour`,
//! `maxConcurrent`, `waitForSteadyState` and `stopOnFailure`. It keeps no file: after a
//! restart everything is derived from AWS again (an IN_PROGRESS deployment counts against
//! `maxConcurrent` and is never redeployed again; recent PRIMARY deployments made under
//! coverage count against `maxPerHour`; a FAILED PRIMARY deployment halts redeploys).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use gec_model::desired::{account_of_arn, RedeploySpec, Target};
use gec_model::observed::{
    effectively_covered, CodeDeploy, CodeDeployStatus, ObservedCluster, ObservedDeployment,
    ObservedService, ObservedTarget, RolloutState,
};
use gec_model::plan::{window_open, Deployer};
use gec_model::Action;

mod decision;

pub use decision::{Decision, Settled, Wait};

// Times here are Unix ms from AWS replies and the clock; differences saturate, so no
// timestamp a reply carries can overflow them.
const HOUR_MS: i64 = 3_600_000;

/// Wall-clock time in Unix milliseconds. Tests use a clock that follows tokio's (paused)
/// time, so guards measured in minutes and hours run instantly.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// `base_ms` at `start`, then advancing with `tokio::time::Instant`.
    Tokio {
        /// Unix ms at `start`.
        base_ms: i64,
        /// The tokio instant of `base_ms`.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `base_ms` now and follows tokio's time from here.
    pub fn tokio_at(base_ms: i64) -> Self {
        Clock::Tokio {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Tokio { base_ms, start } => base_ms
                .saturating_add(i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// A rollout the engine started and watches until its `rolloutState` settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Target label.
    pub target: String,
    /// Cluster ARN.
    pub cluster_arn: String,
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The deployment started; empty while the write is in flight.
    pub deployment_id: String,
    /// `deployment_id` is a CodeDeploy deployment (a `CODE_DEPLOY` service), watched
    /// until CodeDeploy says Succeeded, Failed or Stopped.
    pub codedeploy: bool,
}

/// A change in a watched rollout, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutEvent {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// How it ended.
    pub state: Settled,
    /// AWS's word for it: the ECS `rolloutState` (`COMPLETED`, `FAILED`), the CodeDeploy
    /// status (`Succeeded`, `Failed`, `Stopped`), or `GONE`.
    pub status: String,
}

/// Why redeploys are halted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The FAILED deployment.
    pub deployment_id: String,
}

#[derive(Debug, Default)]
struct CoverageMemory {
    since_ms: Option<i64>,
    seen_off: bool,
    /// A read while coverage was off found no task that runs the agent: no new task gets
    /// it while coverage stays off, so the cluster is not read for offboarding again until
    /// its coverage has been on again (cleared by [`Rollouts::annotate`]).
    agent_free: bool,
    /// Since when coverage is known to be off: the moment this process saw it turn off,
    /// or (not `off_seen`) first saw it off.
    off_since_ms: Option<i64>,
    /// `off_since_ms` is a turn-off this process saw (made or observed).
    off_seen: bool,
}

#[derive(Debug, Default)]
struct State {
    coverage: HashMap<String, CoverageMemory>,
    /// Service ARN → the rollout this process started.
    watching: BTreeMap<String, Watch>,
    /// Target → services whose deployment AWS reports rolling (ours or anyone's).
    rolling: HashMap<String, BTreeSet<String>>,
    /// Deployments this process started, for `maxPerHour`: (start ms, deployment id).
    started: VecDeque<(i64, String)>,
    /// Target → recent PRIMARY deployments made under coverage (id → created ms): after
    /// a restart they count against `maxPerHour`.
    recent: HashMap<String, BTreeMap<String, i64>>,
    /// FAILED deployments seen so far.
    failed_seen: BTreeSet<String>,
    /// FAILED deployments seen before the desired state last changed: they halt no more.
    acknowledged: BTreeSet<String>,
    halt: Option<Halt>,
    generation: Option<u64>,
}

/// The gate and memory of the rollout engine, shared by every target of a process and kept
/// across passes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Rollouts(Arc<Mutex<State>>);

impl Rollouts {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the gate which desired state is in force: its generation, which the host
    /// bumps on each successful reload (never for a pass over fewer targets). A new
    /// generation lifts a `stopOnFailure` halt: the FAILED rollouts seen so far are
    /// acknowledged.
    pub fn desired_state(&self, generation: u64) {
        let mut s = self.lock();
        if s.generation.is_some_and(|g| g != generation) {
            let seen = std::mem::take(&mut s.failed_seen);
            s.acknowledged.extend(seen);
            s.halt = None;
        }
        s.generation = Some(generation);
    }

    /// Services of a cluster whose rollout this process watches: they are described on
    /// every pass until their rollout settles.
    pub fn watched_services(&self, cluster_arn: &str) -> Vec<String> {
        self.lock()
            .watching
            .values()
            .filter(|w| w.cluster_arn == cluster_arn)
            .map(|w| w.service.clone())
            .collect()
    }

    /// Remembers that a read of a cluster whose coverage is off found no task that runs
    /// the agent (see [`Rollouts::agent_free`]).
    pub fn found_agent_free(&self, cluster_arn: &str) {
        self.lock()
            .coverage
            .entry(cluster_arn.to_owned())
            .or_default()
            .agent_free = true;
    }

    /// Whether a cluster was found without agent tasks while its coverage was off, and its
    /// coverage has not been on since ([`Rollouts::annotate`] forgets it when it is): the
    /// engine need not read its tasks for offboarding.
    pub fn agent_free(&self, cluster_arn: &str) -> bool {
        self.lock()
            .coverage
            .get(cluster_arn)
            .is_some_and(|m| m.agent_free)
    }

    /// Fills in `covered_since_ms` of each cluster: the time this process saw its coverage
    /// turn on (`coverage_turn_on_seen`); for a cluster covered when first seen, the start
    /// of its oldest task that runs the agent, else now (the settle clock starts at first
    /// sight).
    pub fn annotate(&self, observed: &mut ObservedTarget, now_ms: i64) {
        let flags = observed
            .detector
            .as_ref()
            .map(|d| d.flags())
            .unwrap_or_default();
        let mut s = self.lock();
        for cluster in &mut observed.clusters {
            let covered = cluster.is_active() && effectively_covered(flags, cluster.managed_tag());
            let memory = s.coverage.entry(cluster.arn.clone()).or_default();
            if !covered {
                // Covered at the last look: this is the turn-off, now.
                let turned_off = memory.since_ms.is_some();
                let off_since = memory.off_since_ms.unwrap_or(now_ms);
                let off_seen = memory.off_seen || turned_off;
                *memory = CoverageMemory {
                    since_ms: None,
                    seen_off: true,
                    agent_free: memory.agent_free,
                    off_since_ms: Some(off_since),
                    off_seen,
                };
                cluster.covered_since_ms = None;
                cluster.uncovered_since_ms = Some(off_since);
                cluster.coverage_turn_off_seen = off_seen;
                continue;
            }
            memory.agent_free = false;
            memory.off_since_ms = None;
            memory.off_seen = false;
            let evidence = cluster
                .workload
                .as_ref()
                .and_then(|w| w.earliest_agent_task_ms)
                .map(|t| t.min(now_ms));
            let since = *memory.since_ms.get_or_insert(if memory.seen_off {
                now_ms
            } else {
                evidence.unwrap_or(now_ms)
            });
            cluster.covered_since_ms = Some(since);
            cluster.coverage_turn_on_seen = memory.seen_off;
        }
    }

    /// Learns from the services described in one target: which rollouts are in progress,
    /// which watched ones settled, which FAILED (halting with `stopOnFailure`), and the
    /// recent deployments made under coverage. Returns the watched rollouts that settled.
    pub fn observe(
        &self,
        target: &str,
        observed: &ObservedTarget,
        spec: &RedeploySpec,
        now_ms: i64,
    ) -> Vec<RolloutEvent> {
        let mut s = self.lock();
        let mut rolling = BTreeSet::new();
        let mut recent = BTreeMap::new();
        let mut failed = Vec::new();
        let mut described = BTreeMap::new();
        for cluster in &observed.clusters {
            let Some(workload) = &cluster.workload else {
                continue;
            };
            for service in &workload.services {
                described.insert(service.arn.clone(), (cluster, service));
                if service.rollout_in_progress() {
                    rolling.insert(service.arn.clone());
                }
                learn(cluster, service, now_ms, &mut recent, &mut failed);
            }
        }
        let mut events = Vec::new();
        let watched: Vec<(String, Watch)> = s
            .watching
            .iter()
            .filter(|(_, w)| w.target == target && !w.deployment_id.is_empty())
            .map(|(arn, w)| (arn.clone(), w.clone()))
            .collect();
        for (arn, watch) in watched {
            // A cluster that is gone, or whose tasks are no longer read (coverage turned
            // off), ends the watch: AWS's IN_PROGRESS deployments still count against
            // maxConcurrent whenever the cluster is read again.
            let service = described.get(&arn).map(|(_, svc)| *svc);
            let (state, status) = if watch.codedeploy {
                match codedeploy_settled(service, &watch.deployment_id) {
                    Some(settled) => settled,
                    None => continue,
                }
            } else {
                match ecs_settled(service, &watch.deployment_id) {
                    Some(settled) => settled,
                    None => continue,
                }
            };
            if state == Settled::Failed {
                failed.push((
                    watch.cluster.clone(),
                    watch.service.clone(),
                    watch.deployment_id.clone(),
                ));
            }
            s.watching.remove(&arn);
            events.push(RolloutEvent {
                cluster: watch.cluster,
                service: watch.service,
                state,
                status,
            });
        }
        for (cluster, service, deployment_id) in failed {
            if s.acknowledged.contains(&deployment_id) {
                continue;
            }
            s.failed_seen.insert(deployment_id.clone());
            if spec.stop_on_failure && s.halt.is_none() {
                tracing::warn!(%cluster, %service, deployment = %deployment_id,
                    "a rollout or CodeDeploy deployment failed: redeploys halt until the desired state changes");
                s.halt = Some(Halt {
                    cluster,
                    service,
                    deployment_id,
                });
            }
        }
        s.rolling.insert(target.to_owned(), rolling);
        s.recent.insert(target.to_owned(), recent);
        events
    }

    /// Decides which of the planned redeploys start now, reserving a slot for each one
    /// that does: one decision per redeploy among `actions`, in their order (other
    /// actions are not the gate's and are left out). Deterministic for the same state,
    /// actions and time.
    pub fn schedule<'a>(
        &self,
        target: &str,
        actions: &[&'a Action],
        spec: &RedeploySpec,
        now_ms: i64,
    ) -> Vec<(&'a Action, Decision)> {
        let redeploys = actions
            .iter()
            .copied()
            .filter(|a| matches!(a, Action::RedeployService { .. }));
        let mut s = self.lock();
        while s
            .started
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) >= HOUR_MS)
        {
            s.started.pop_front();
        }
        if s.halt.is_some() {
            return redeploys
                .map(|a| (a, Decision::Wait(Wait::Halted)))
                .collect();
        }
        if !window_open(&spec.windows, now_ms) {
            return redeploys
                .map(|a| (a, Decision::Wait(Wait::Window)))
                .collect();
        }
        let mut this_hour: BTreeSet<&str> = s.started.iter().map(|(_, id)| id.as_str()).collect();
        for recent in s.recent.values() {
            this_hour.extend(
                recent
                    .iter()
                    .filter(|(_, at)| now_ms.saturating_sub(**at) < HOUR_MS)
                    .map(|(id, _)| id.as_str()),
            );
        }
        let mut budget = (spec.max_per_hour as usize).saturating_sub(this_hour.len());
        let mut slots = if spec.wait_for_steady_state {
            (spec.max_concurrent as usize).saturating_sub(in_progress(&s))
        } else {
            // Fire and forget: maxConcurrent bounds the redeploys started per pass.
            spec.max_concurrent as usize
        };
        let mut decisions = Vec::with_capacity(actions.len());
        for action in redeploys {
            let Action::RedeployService {
                cluster,
                cluster_arn,
                service,
                service_arn,
                not_before_ms,
                via,
                ..
            } = action
            else {
                continue;
            };
            let decision = if not_before_ms.is_none_or(|t| now_ms < t) {
                Decision::Wait(Wait::Settling)
            } else if s.watching.contains_key(service_arn) {
                Decision::Wait(Wait::Rolling)
            } else if budget == 0 {
                Decision::Wait(Wait::MaxPerHour)
            } else if slots == 0 {
                Decision::Wait(Wait::MaxConcurrent)
            } else {
                budget -= 1;
                slots -= 1;
                s.watching.insert(
                    service_arn.clone(),
                    Watch {
                        target: target.to_owned(),
                        cluster_arn: cluster_arn.clone(),
                        cluster: cluster.clone(),
                        service: service.clone(),
                        deployment_id: String::new(),
                        codedeploy: matches!(via, Deployer::CodeDeploy(_)),
                    },
                );
                Decision::Start
            };
            decisions.push((action, decision));
        }
        decisions
    }

    /// Reports the outcome of a started redeploy: the new deployment, or `None` when the
    /// call failed (the reserved slot is released).
    pub fn started(
        &self,
        service_arn: &str,
        deployment: Option<&ObservedDeployment>,
        spec: &RedeploySpec,
        now_ms: i64,
    ) {
        let mut s = self.lock();
        match deployment {
            Some(d) => {
                s.started.push_back((now_ms, d.id.clone()));
                if spec.wait_for_steady_state {
                    if let Some(w) = s.watching.get_mut(service_arn) {
                        w.deployment_id.clone_from(&d.id);
                    }
                } else {
                    s.watching.remove(service_arn);
                }
            }
            None => {
                s.watching.remove(service_arn);
            }
        }
    }

    /// Rollouts in progress, fleet-wide: the ones this process watches and the ones AWS
    /// reports rolling (`redeploys_in_progress`).
    pub fn in_progress(&self) -> usize {
        in_progress(&self.lock())
    }

    /// The rollouts this process started and still watches.
    pub fn watching(&self) -> Vec<Watch> {
        self.lock().watching.values().cloned().collect()
    }

    /// Why redeploys are halted, if they are.
    pub fn halted(&self) -> Option<Halt> {
        self.lock().halt.clone()
    }

    /// Forgets what the gate learned about targets that left the desired state: their
    /// rolling and recent deployments, the rollouts it watched there (never observed
    /// again, they would hold a `maxConcurrent` slot for ever), and the coverage memory
    /// of their clusters. Call it whenever the desired state changes.
    ///
    /// # Guarantees
    /// Nothing about a target still in `targets` changes, nor the halt and the FAILED
    /// rollouts seen (a halt holds fleet-wide until the desired state changes).
    pub fn retain(&self, targets: &[Target]) {
        let labels: HashSet<String> = targets.iter().map(Target::label).collect();
        // A cluster ARN belongs to a target of its region, and of its account when the
        // target names one (a target on the controller's own credentials has none).
        let places: HashSet<(&str, Option<&str>)> = targets
            .iter()
            .map(|t| {
                let account = t.role_arn.as_deref().and_then(account_of_arn);
                (t.region.as_str(), account)
            })
            .collect();
        let kept = |arn: &str| {
            let region = arn.split(':').nth(3).unwrap_or_default();
            places.contains(&(region, None)) || places.contains(&(region, account_of_arn(arn)))
        };
        let mut s = self.lock();
        s.rolling.retain(|t, _| labels.contains(t));
        s.recent.retain(|t, _| labels.contains(t));
        s.watching.retain(|_, w| labels.contains(&w.target));
        s.coverage.retain(|arn, _| kept(arn));
        s.rolling.shrink_to_fit();
        s.recent.shrink_to_fit();
        s.coverage.shrink_to_fit();
    }

    /// How many targets and clusters the gate remembers: (targets, clusters).
    pub fn remembered(&self) -> (usize, usize) {
        let s = self.lock();
        let targets: HashSet<&String> = s
            .rolling
            .keys()
            .chain(s.recent.keys())
            .chain(s.watching.values().map(|w| &w.target))
            .collect();
        (targets.len(), s.coverage.len())
    }
}

/// What one described service tells the gate: its recent deployments made under
/// coverage (for `maxPerHour` after a restart) and its failed one. For a `CODE_DEPLOY`
/// service whose deployment group was read, its CodeDeploy deployments (the newest one
/// Failed or Stopped is a failure); otherwise its PRIMARY deployment (FAILED rollout).
fn learn(
    cluster: &ObservedCluster,
    service: &ObservedService,
    now_ms: i64,
    recent: &mut BTreeMap<String, i64>,
    failed: &mut Vec<(String, String, String)>,
) {
    let under_coverage = |created_ms: i64| match cluster.covered_since_ms {
        Some(since) if cluster.coverage_turn_on_seen => created_ms >= since,
        Some(_) => true,
        None => false,
    };
    let mut note = |id: &str, created_ms: i64| {
        if under_coverage(created_ms) && now_ms.saturating_sub(created_ms) < HOUR_MS {
            recent.insert(id.to_owned(), created_ms);
        }
    };
    let mut fail = |id: &str| {
        failed.push((cluster.name.clone(), service.name.clone(), id.to_owned()));
    };
    if let Some(codedeploy @ CodeDeploy::Group { deployments, .. }) = &service.codedeploy {
        // Its task sets are CodeDeploy's doing: counting them too would count each
        // deployment twice.
        for d in deployments {
            note(&d.id, d.created_at_ms);
        }
        if let Some(newest) = codedeploy.newest().filter(|d| d.status.is_failure()) {
            fail(&newest.id);
        }
        return;
    }
    if let Some(primary) = service.primary() {
        note(&primary.id, primary.created_at_ms);
        if primary.rollout_state == Some(RolloutState::Failed) {
            fail(&primary.id);
        }
    }
}

/// How a watched ECS rollout ended, and AWS's word for it; `None` while it goes on.
/// A service no longer described (gone, or its cluster's tasks are no longer read)
/// ends the watch: AWS's IN_PROGRESS deployments still count against maxConcurrent
/// whenever the cluster is read again.
fn ecs_settled(service: Option<&ObservedService>, id: &str) -> Option<(Settled, String)> {
    let Some(service) = service else {
        return Some((Settled::Gone, Settled::Gone.as_str().to_owned()));
    };
    let Some(deployment) = service.deployments.iter().find(|d| d.id == id) else {
        return Some((Settled::Gone, Settled::Gone.as_str().to_owned()));
    };
    let state = match &deployment.rollout_state {
        Some(RolloutState::InProgress) => return None,
        Some(RolloutState::Failed) => Settled::Failed,
        Some(RolloutState::Completed) => Settled::Completed,
        // No rolloutState: the rollout is over once it is the only deployment.
        _ if service.deployments.len() == 1 => Settled::Completed,
        _ => return None,
    };
    Some((state, state.as_str().to_owned()))
}

/// How a watched CodeDeploy deployment ended, and CodeDeploy's word for it; `None`
/// while it is active, or while CodeDeploy cannot be read. A service no longer
/// described, or no longer named by a deployment group, ends the watch (`GONE`).
fn codedeploy_settled(service: Option<&ObservedService>, id: &str) -> Option<(Settled, String)> {
    let gone = || Some((Settled::Gone, Settled::Gone.as_str().to_owned()));
    let Some(service) = service else {
        return gone();
    };
    let deployments = match &service.codedeploy {
        Some(CodeDeploy::Group { deployments, .. }) => deployments,
        Some(CodeDeploy::NoGroup) => return gone(),
        Some(CodeDeploy::Unknown(_)) | None => return None,
    };
    let Some(deployment) = deployments.iter().find(|d| d.id == id) else {
        return gone();
    };
    let state = match &deployment.status {
        CodeDeployStatus::Succeeded => Settled::Completed,
        status if status.is_failure() => Settled::Failed,
        _ => return None,
    };
    Some((state, deployment.status.as_str().to_owned()))
}

fn in_progress(s: &State) -> usize {
    let mut all: BTreeSet<&str> = s.watching.keys().map(String::as_str).collect();
    for rolling in s.rolling.values() {
        all.extend(rolling.iter().map(String::as_str));
    }
    all.len()
}
