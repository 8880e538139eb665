//! Which services to redeploy (DESIGN §6): the per-service conditions. The fleet-wide
//! guards that decide *when* (maxConcurrent, maxPerHour, windows, settleTime,
//! stopOnFailure) belong to the engine's rollout gate; `settleTime` is turned into a
//! `not_before_ms` on each action here because it is a pure function of the cluster.

use crate::desired::RedeploySpec;
use crate::observed::{ObservedCluster, ServiceStatus, Workload};

use super::{Action, TargetRef, TaskSummary};

/// A service with tasks without the agent that the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    /// Target.
    pub target: TargetRef,
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// Why it is not redeployed.
    pub reason: HoldReason,
}

/// Why the plan leaves a service without the agent alone. `Display` is the sentence for
/// people; [`HoldReason::code`] is the stable identifier for scripts and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldReason {
    /// `redeploy.enabled` is false.
    Disabled,
    /// The service matches `redeploy.excludeServices`.
    Excluded,
    /// The service owns tasks without the agent but could not be described.
    NotDescribed,
    /// The service is being deleted (not ACTIVE).
    Inactive,
    /// The service does not run on Fargate.
    NotFargate,
    /// A deployment of the service is rolling: it may bring the agent by itself.
    InProgress,
    /// Deployed with coverage on and still without the agent: not retried before
    /// `redeploy.retryAfter`.
    RetryAfter {
        /// How long ago the PRIMARY deployment was made (ms).
        age_ms: i64,
        /// `redeploy.retryAfter` (ms).
        retry_ms: i64,
    },
}

impl HoldReason {
    /// A stable snake_case identifier.
    pub fn code(&self) -> &'static str {
        match self {
            HoldReason::Disabled => "redeploy_disabled",
            HoldReason::Excluded => "excluded",
            HoldReason::NotDescribed => "not_described",
            HoldReason::Inactive => "service_inactive",
            HoldReason::NotFargate => "not_fargate",
            HoldReason::InProgress => "deployment_in_progress",
            HoldReason::RetryAfter { .. } => "retry_after",
        }
    }
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::Disabled => f.write_str("redeploy.enabled is false"),
            HoldReason::Excluded => f.write_str("excluded by redeploy.excludeServices"),
            HoldReason::NotDescribed => f.write_str("the service could not be described"),
            HoldReason::Inactive => f.write_str("the service is not ACTIVE"),
            HoldReason::NotFargate => f.write_str("not a Fargate service"),
            HoldReason::InProgress => f.write_str("a deployment is in progress"),
            HoldReason::RetryAfter { age_ms, retry_ms } => write!(
                f,
                "deployed {} ago with coverage on and its tasks still lack the agent; \
                 not retried before redeploy.retryAfter ({})",
                human(*age_ms),
                human(*retry_ms)
            ),
        }
    }
}

pub(super) fn summary(w: &Workload) -> TaskSummary {
    TaskSummary {
        running: w.service_tasks.values().map(|c| c.running).sum::<u32>()
            + w.standalone_tasks.running,
        services_without_agent: u32::try_from(w.services_without_agent()).unwrap_or(u32::MAX),
        service_tasks_without_agent: w.service_tasks_without_agent(),
        standalone_tasks_without_agent: w.standalone_tasks.without_agent,
    }
}

/// Plans the redeploys of one cluster whose coverage is on once the plan is applied.
/// `covered_now`: coverage is already on (not only after this plan's tag/detector
/// changes).
pub(super) fn plan_cluster(
    spec: &RedeploySpec,
    target: &TargetRef,
    cluster: &ObservedCluster,
    covered_now: bool,
    now_ms: i64,
    actions: &mut Vec<Action>,
    held: &mut Vec<Held>,
) {
    let Some(workload) = &cluster.workload else {
        return;
    };
    // Coverage that only turns on with this plan starts its settle clock after the apply.
    let covered_since = if covered_now {
        cluster.covered_since_ms
    } else {
        None
    };
    let settle_ms = millis(spec.settle_time.get());
    let retry_ms = millis(spec.retry_after.get());
    let excluded: Vec<glob::Pattern> = spec
        .exclude_services
        .iter()
        .filter_map(|g| glob::Pattern::new(g).ok())
        .collect();
    for (name, counts) in &workload.service_tasks {
        if counts.without_agent == 0 {
            continue;
        }
        let hold = |reason: HoldReason, held: &mut Vec<Held>| {
            held.push(Held {
                target: target.clone(),
                cluster: cluster.name.clone(),
                service: name.clone(),
                reason,
            });
        };
        if !spec.enabled {
            hold(HoldReason::Disabled, held);
            continue;
        }
        if excluded.iter().any(|p| p.matches(name)) {
            hold(HoldReason::Excluded, held);
            continue;
        }
        let Some(service) = workload.services.iter().find(|s| &s.name == name) else {
            hold(HoldReason::NotDescribed, held);
            continue;
        };
        if service.status != ServiceStatus::Active {
            hold(HoldReason::Inactive, held);
            continue;
        }
        if !service.fargate {
            hold(HoldReason::NotFargate, held);
            continue;
        }
        if service.rollout_in_progress() {
            hold(HoldReason::InProgress, held);
            continue;
        }
        if let Some(primary) = service.primary() {
            let age = now_ms.saturating_sub(primary.created_at_ms);
            // A deployment made while coverage was already on should have brought the
            // agent; redeploying again before retryAfter would be a storm. A deployment
            // older than the coverage is exactly what a redeploy fixes — but only a
            // turn-on the engine saw tells which is which; otherwise (first sight, a
            // restart) a recent deployment counts as made under coverage.
            let under_coverage = match covered_since {
                Some(since) if cluster.coverage_turn_on_seen => primary.created_at_ms >= since,
                Some(_) => true,
                None => false,
            };
            if under_coverage && age < retry_ms {
                hold(
                    HoldReason::RetryAfter {
                        age_ms: age,
                        retry_ms,
                    },
                    held,
                );
                continue;
            }
        }
        actions.push(Action::RedeployService {
            target: target.clone(),
            cluster: cluster.name.clone(),
            cluster_arn: cluster.arn.clone(),
            service: name.clone(),
            service_arn: service.arn.clone(),
            reason: format!(
                "{} of {} running tasks lack the GuardDuty agent",
                counts.without_agent, counts.running
            ),
            not_before_ms: covered_since.map(|since| since.saturating_add(settle_ms)),
        });
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `1h`, `12m`, `40s`: the largest whole unit, for messages.
pub(crate) fn human(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(3_600_000), "1h");
        assert_eq!(human(5_400_000), "1h30m");
        assert_eq!(human(720_000), "12m");
        assert_eq!(human(40_000), "40s");
    }
}
