//! Which services to redeploy (DESIGN §6): the per-service conditions, including the
//! agent's prerequisites (preflight) and, after coverage loss, the services that still
//! run the agent. The fleet-wide
//! guards that decide *when* (maxConcurrent, maxPerHour, windows, settleTime,
//! stopOnFailure) belong to the engine's rollout gate; `settleTime` is turned into a
//! `not_before_ms` on each action here because it is a pure function of the cluster.

use crate::desired::RedeploySpec;
use crate::observed::{
    CodeDeploy, DeploymentController, ObservedCluster, ObservedService, Preflight, PreflightCode,
    PreflightFinding, ServiceStatus, TaskCounts, Workload,
};

use super::{Action, CodeDeployRedeploy, Deployer, RedeployPurpose, TargetRef, TaskSummary};

/// Longest `detail` kept on a held service, in bytes: it carries AWS's words (a
/// container's stopped reason, IAM's answer), which the controller does not bound itself.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// The codes of [`HoldReason`]s that say a service cannot get the agent (the
/// `guardduty_controller_preflight_findings` metric): the four preflight codes, then
/// `agent_failed` and `preflight_unknown`.
pub const PREFLIGHT_FINDING_CODES: [&str; 6] = [
    "platform_version",
    "windows",
    "no_execution_role",
    "execution_role_cannot_pull",
    "agent_failed",
    "preflight_unknown",
];

/// A service the plan leaves alone although it would redeploy it, and why.
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
    /// This service's facts behind the reason, for people: a failed prerequisite's facts
    /// (`platform version 1.3.0`), AWS's reason for a stopped agent, why a check could not
    /// be made. At most [`MAX_DETAIL_BYTES`].
    pub detail: Option<String>,
}

impl Held {
    /// The plan warning this hold calls for: a prerequisite, or how the service deploys,
    /// could not be checked.
    pub fn warning(&self) -> Option<String> {
        matches!(
            self.reason,
            HoldReason::PreflightUnknown | HoldReason::DeploymentUnknown
        )
        .then(|| {
            format!(
                "{}/{}: {}{}; it is not redeployed until the check can be made",
                self.cluster,
                self.service,
                self.reason,
                self.detail
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({d})"))
            )
        })
    }
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
    /// The service's deployment controller is `EXTERNAL`: only the deployer that owns its
    /// task sets can replace its tasks.
    ExternalController,
    /// The service's deployment controller is a type the controller does not know.
    UnknownController,
    /// The controller is `CODE_DEPLOY` and CodeDeploy could not be read (or was not), so
    /// neither the deployment group nor a deployment in progress is known: not
    /// redeployed, and a plan warning names the service.
    DeploymentUnknown,
    /// A deployment of the service is rolling: it may bring the agent by itself.
    InProgress,
    /// The controller is `CODE_DEPLOY` and no CodeDeploy deployment group names the
    /// service: nobody can start a deployment of it.
    NoDeploymentGroup,
    /// The controller is `CODE_DEPLOY` and the service has no load balancer container
    /// and port, which the AppSpec of an ECS deployment must name.
    NoLoadBalancer,
    /// A prerequisite of the agent fails (the first one found): a redeploy cannot bring
    /// a running agent, so the service is never redeployed while the finding stands.
    Preflight(PreflightCode),
    /// A prerequisite could not be checked (for example `iam:SimulatePrincipalPolicy`
    /// was denied): not redeployed, and a plan warning names the service.
    PreflightUnknown,
    /// The PRIMARY deployment was made with coverage on and tasks it started have a
    /// stopped or missing agent: redeploying again would fail the same way. Cleared by a
    /// new deployment (made by someone else) or the agent running.
    AgentFailed,
    /// Deployed with coverage on and still without the agent: not retried before
    /// `redeploy.retryAfter`.
    RetryAfter {
        /// How long ago the PRIMARY deployment was made (ms).
        age_ms: i64,
        /// `redeploy.retryAfter` (ms).
        retry_ms: i64,
    },
    /// Coverage is off and the service's tasks still run the agent, but it was deployed
    /// within `redeploy.retryAfter` (perhaps by the redeploy meant to remove it): not
    /// redeployed again before then. Same code as [`HoldReason::RetryAfter`].
    AgentStaysRetryAfter {
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
            HoldReason::ExternalController => "external_deployment_controller",
            HoldReason::UnknownController => "unknown_deployment_controller",
            HoldReason::DeploymentUnknown => "deployment_unknown",
            HoldReason::InProgress => "deployment_in_progress",
            HoldReason::NoDeploymentGroup => "no_deployment_group",
            HoldReason::NoLoadBalancer => "no_load_balancer",
            HoldReason::Preflight(code) => code.code(),
            HoldReason::PreflightUnknown => PREFLIGHT_FINDING_CODES[5],
            HoldReason::AgentFailed => PREFLIGHT_FINDING_CODES[4],
            HoldReason::RetryAfter { .. } | HoldReason::AgentStaysRetryAfter { .. } => {
                "retry_after"
            }
        }
    }

    /// Whether the reason says the service cannot get the agent (a preflight finding, a
    /// check that could not be made, or an agent that failed): counted by the
    /// `preflight_findings` metric.
    pub fn is_finding(&self) -> bool {
        matches!(
            self,
            HoldReason::Preflight(_) | HoldReason::PreflightUnknown | HoldReason::AgentFailed
        )
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
            HoldReason::ExternalController => f.write_str(
                "its deployment controller is EXTERNAL: only the deployer that owns its task \
                 sets can replace its tasks; that deployer must redeploy it",
            ),
            HoldReason::UnknownController => {
                f.write_str("its deployment controller is of a type the controller does not know")
            }
            HoldReason::DeploymentUnknown => f.write_str(
                "its deployment controller is CODE_DEPLOY and CodeDeploy could not be read",
            ),
            HoldReason::InProgress => f.write_str("a deployment is in progress"),
            HoldReason::NoDeploymentGroup => f.write_str(
                "its deployment controller is CODE_DEPLOY and no CodeDeploy deployment group \
                 names it: create one for the service, or redeploy it yourself",
            ),
            HoldReason::NoLoadBalancer => f.write_str(
                "its deployment controller is CODE_DEPLOY and it has no load balancer container \
                 and port for the AppSpec",
            ),
            HoldReason::Preflight(code) => write!(f, "{code}"),
            HoldReason::PreflightUnknown => {
                f.write_str("a prerequisite of the GuardDuty agent could not be checked")
            }
            HoldReason::AgentFailed => f.write_str(
                "deployed with coverage on and its new tasks have no running GuardDuty agent; \
                 not redeployed again while that stands",
            ),
            HoldReason::RetryAfter { age_ms, retry_ms } => write!(
                f,
                "deployed {} ago with coverage on and its tasks still lack the agent; \
                 not retried before redeploy.retryAfter ({})",
                human(*age_ms),
                human(*retry_ms)
            ),
            HoldReason::AgentStaysRetryAfter { age_ms, retry_ms } => write!(
                f,
                "deployed {} ago and its tasks still run the agent although coverage is off; \
                 not redeployed before redeploy.retryAfter ({})",
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

/// One cluster's services, and the holds they get.
struct Services<'a> {
    spec: &'a RedeploySpec,
    target: &'a TargetRef,
    cluster: &'a ObservedCluster,
    excluded: Vec<glob::Pattern>,
}

impl<'a> Services<'a> {
    fn new(spec: &'a RedeploySpec, target: &'a TargetRef, cluster: &'a ObservedCluster) -> Self {
        Services {
            spec,
            target,
            cluster,
            excluded: spec
                .exclude_services
                .iter()
                .filter_map(|g| glob::Pattern::new(g).ok())
                .collect(),
        }
    }

    fn hold(
        &self,
        held: &mut Vec<Held>,
        service: &str,
        reason: HoldReason,
        detail: Option<String>,
    ) {
        held.push(Held {
            target: self.target.clone(),
            cluster: self.cluster.name.clone(),
            service: service.to_owned(),
            reason,
            detail: detail.map(bounded),
        });
    }

    /// The guards every redeploy passes, whatever its purpose (in this order):
    /// `enabled`, `excludeServices`, described, ACTIVE, Fargate, a deployment controller
    /// the controller can drive (not `EXTERNAL`; for `CODE_DEPLOY`, CodeDeploy read), no
    /// rollout in progress (a CodeDeploy deployment included), then for `CODE_DEPLOY` a
    /// deployment group and a load balancer. Returns the service and how to redeploy it,
    /// or the hold and its detail.
    fn guard<'w>(
        &self,
        workload: &'w Workload,
        name: &str,
    ) -> Result<(&'w ObservedService, Deployer), (HoldReason, Option<String>)> {
        if !self.spec.enabled {
            return Err((HoldReason::Disabled, None));
        }
        if self.excluded.iter().any(|p| p.matches(name)) {
            return Err((HoldReason::Excluded, None));
        }
        let Some(service) = workload.services.iter().find(|s| s.name == name) else {
            return Err((HoldReason::NotDescribed, None));
        };
        if service.status != ServiceStatus::Active {
            return Err((HoldReason::Inactive, None));
        }
        if !service.fargate {
            return Err((HoldReason::NotFargate, None));
        }
        match (&service.controller, &service.codedeploy) {
            (DeploymentController::External, _) => {
                let by = service
                    .primary()
                    .and_then(|d| d.started_by.as_deref())
                    .map(|who| format!("its PRIMARY task set was started by {who}"));
                return Err((HoldReason::ExternalController, by));
            }
            (DeploymentController::Other(kind), _) => {
                return Err((
                    HoldReason::UnknownController,
                    Some(format!("deploymentController {kind}")),
                ));
            }
            (DeploymentController::CodeDeploy, None) => {
                let why = "CodeDeploy was not read for the service";
                return Err((HoldReason::DeploymentUnknown, Some(why.into())));
            }
            (DeploymentController::CodeDeploy, Some(CodeDeploy::Unknown(why))) => {
                return Err((HoldReason::DeploymentUnknown, Some(why.clone())));
            }
            _ => {}
        }
        if service.rollout_in_progress() {
            let detail = service
                .codedeploy
                .as_ref()
                .and_then(CodeDeploy::active)
                .map(|d| format!("CodeDeploy deployment {} is {}", d.id, d.status));
            return Err((HoldReason::InProgress, detail));
        }
        let via = match &service.codedeploy {
            Some(CodeDeploy::Group { group, .. })
                if service.controller == DeploymentController::CodeDeploy =>
            {
                let Some(load_balancer) = service.load_balancer.clone() else {
                    return Err((HoldReason::NoLoadBalancer, None));
                };
                let Some(task_definition) = service.task_definition.clone() else {
                    let why = "the service's task definition is not known";
                    return Err((HoldReason::DeploymentUnknown, Some(why.into())));
                };
                Deployer::CodeDeploy(Box::new(CodeDeployRedeploy {
                    group: group.clone(),
                    cluster: self.cluster.name.clone(),
                    service: service.name.clone(),
                    task_definition,
                    load_balancer,
                    platform_version: service.platform_version.clone(),
                }))
            }
            Some(CodeDeploy::NoGroup) if service.controller == DeploymentController::CodeDeploy => {
                return Err((HoldReason::NoDeploymentGroup, None));
            }
            _ => Deployer::Ecs {
                strategy: service.strategy.clone(),
            },
        };
        Ok((service, via))
    }

    fn redeploy(
        &self,
        service: &ObservedService,
        via: Deployer,
        purpose: RedeployPurpose,
        reason: String,
        not_before_ms: Option<i64>,
    ) -> Action {
        Action::RedeployService {
            target: self.target.clone(),
            cluster: self.cluster.name.clone(),
            cluster_arn: self.cluster.arn.clone(),
            service: service.name.clone(),
            service_arn: service.arn.clone(),
            purpose,
            via,
            reason,
            not_before_ms,
        }
    }
}

/// Plans the redeploys of one cluster whose coverage is on once the plan is applied.
/// `covered_now`: coverage is already on (not only after this plan's tag/detector
/// changes).
///
/// Holds, in this order: `enabled`, `excludeServices`, not described, not ACTIVE, not
/// Fargate, a deployment controller it cannot drive (`EXTERNAL`, unknown, CodeDeploy
/// unread), a rollout in progress, no CodeDeploy deployment group or load balancer, a
/// failed preflight (or one that could not be made), an
/// agent that failed in the PRIMARY deployment's own tasks, `retryAfter`.
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
    let services = Services::new(spec, target, cluster);
    for (name, counts) in &workload.service_tasks {
        if counts.without_agent == 0 {
            continue;
        }
        let (service, via) = match services.guard(workload, name) {
            Ok(found) => found,
            Err((reason, detail)) => {
                services.hold(held, name, reason, detail);
                continue;
            }
        };
        match &service.preflight {
            Some(Preflight::Failed(findings)) if !findings.is_empty() => {
                services.hold(
                    held,
                    name,
                    HoldReason::Preflight(findings[0].code),
                    Some(findings_detail(findings)),
                );
                continue;
            }
            Some(Preflight::Unknown(why)) => {
                services.hold(held, name, HoldReason::PreflightUnknown, Some(why.clone()));
                continue;
            }
            Some(Preflight::Passed) => {}
            // Nobody checked (the engine checks every service it plans a redeploy for):
            // not knowing is never a reason to redeploy.
            None | Some(Preflight::Failed(_)) => {
                let why = "the prerequisites of the GuardDuty agent were not checked";
                services.hold(held, name, HoldReason::PreflightUnknown, Some(why.into()));
                continue;
            }
        }
        if let Some(primary) = service.primary() {
            if let Some(reason) = agent_failed(
                counts,
                &primary.id,
                primary.created_at_ms,
                covered_since,
                settle_ms,
            ) {
                services.hold(held, name, HoldReason::AgentFailed, Some(reason));
                continue;
            }
        }
        if let Some(deployed_ms) = service.last_deployed_ms() {
            let age = now_ms.saturating_sub(deployed_ms);
            // A deployment made while coverage was already on should have brought the
            // agent; redeploying again before retryAfter would be a storm. A deployment
            // older than the coverage is exactly what a redeploy fixes — but only a
            // turn-on the engine saw tells which is which; otherwise (first sight, a
            // restart) a recent deployment counts as made under coverage.
            let under_coverage = match covered_since {
                Some(since) if cluster.coverage_turn_on_seen => deployed_ms >= since,
                Some(_) => true,
                None => false,
            };
            if under_coverage && age < retry_ms {
                services.hold(
                    held,
                    name,
                    HoldReason::RetryAfter {
                        age_ms: age,
                        retry_ms,
                    },
                    None,
                );
                continue;
            }
        }
        actions.push(services.redeploy(
            service,
            via,
            RedeployPurpose::AddAgent,
            format!(
                "{} of {} running tasks lack the GuardDuty agent",
                counts.without_agent, counts.running
            ),
            covered_since.map(|since| since.saturating_add(settle_ms)),
        ));
    }
}

/// AWS's words for why the PRIMARY deployment's own tasks have no running agent, when
/// that deployment should have brought it: an agent container of its tasks STOPPED
/// (proof GuardDuty injected it, so coverage was on), or the deployment was made once
/// coverage had been on for `settleTime` (`covered_since` is when it is known to be on:
/// the turn-on the engine saw, else a bound from the oldest task that runs the agent, so
/// a deployment after it certainly ran under coverage). A deployment that may predate
/// the coverage is left to `retryAfter`: a redeploy is what fixes it.
fn agent_failed(
    counts: &TaskCounts,
    deployment: &str,
    created_ms: i64,
    covered_since: Option<i64>,
    settle_ms: i64,
) -> Option<String> {
    let since = covered_since?;
    let gap = counts
        .by_deployment
        .get(deployment)
        .filter(|g| g.tasks > 0)?;
    let certain = created_ms >= since.saturating_add(settle_ms);
    match &gap.reason {
        Some(reason) => Some(reason.clone()),
        None if certain => Some("no agent container running".to_owned()),
        None => None,
    }
}

/// Every finding's facts: the first one's alone when it is the only one, else each with
/// its code.
fn findings_detail(findings: &[PreflightFinding]) -> String {
    match findings {
        [one] => one.detail.clone(),
        many => many
            .iter()
            .map(|f| format!("{}: {}", f.code.code(), f.detail))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `text` cut to at most [`MAX_DETAIL_BYTES`] on a character boundary, with `…` when cut.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Plans the redeploys that take the agent out of a cluster whose coverage is off once
/// the plan is applied (`redeploy.onCoverageLoss: redeploy`): every service with a task
/// that still runs the agent, under the guards of any redeploy. No preflight (nothing has
/// to be pulled) and no settle time: coverage is off already, or turns off in this plan's
/// tag or detector phase, which runs before redeploys.
///
/// `lost_now`: this plan turns coverage off, so every deployment predates the loss. After
/// that, a service deployed after the loss and within `redeploy.retryAfter` is held
/// `retry_after`: its tasks may be the ones a redeploy just started, still with the agent
/// because coverage has not really turned off (GuardDuty acting late, or a setting the
/// controller cannot see). Without that guard such a service would be redeployed after
/// every rollout. Only a turn-off the engine saw (`coverage_turn_off_seen`) dates the
/// loss; otherwise (first sight, a restart) a recent deployment counts as made after it:
/// slower, never a second redeploy.
pub(super) fn plan_offboarding(
    spec: &RedeploySpec,
    target: &TargetRef,
    cluster: &ObservedCluster,
    lost_now: bool,
    now_ms: i64,
    actions: &mut Vec<Action>,
    held: &mut Vec<Held>,
) {
    let Some(workload) = &cluster.workload else {
        return;
    };
    let services = Services::new(spec, target, cluster);
    let retry_ms = millis(spec.retry_after.get());
    for (name, counts) in &workload.service_tasks {
        let with_agent = counts.with_agent();
        if with_agent == 0 {
            continue;
        }
        let (service, via) = match services.guard(workload, name) {
            Ok(found) => found,
            Err((reason, detail)) => {
                services.hold(held, name, reason, detail);
                continue;
            }
        };
        let deployed_ms = service.last_deployed_ms();
        let age_ms = deployed_ms.map(|t| now_ms.saturating_sub(t));
        // A deployment made after the loss should have come up without the agent; only a
        // turn-off the engine saw tells it from one made before (what a redeploy fixes).
        let after_loss = deployed_ms.is_some_and(|t| {
            match (cluster.uncovered_since_ms, cluster.coverage_turn_off_seen) {
                (Some(since), true) => t >= since,
                _ => true,
            }
        });
        match age_ms {
            Some(age_ms) if !lost_now && after_loss && age_ms < retry_ms => {
                services.hold(
                    held,
                    name,
                    HoldReason::AgentStaysRetryAfter { age_ms, retry_ms },
                    None,
                );
            }
            _ => actions.push(services.redeploy(
                service,
                via,
                RedeployPurpose::RemoveAgent,
                format!(
                    "coverage is off and {with_agent} of {} running tasks still run the GuardDuty agent",
                    counts.running
                ),
                Some(now_ms),
            )),
        }
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
    fn the_finding_codes_are_the_preflight_codes_then_the_agent_and_unknown() {
        let codes: Vec<&str> = PreflightCode::ALL
            .iter()
            .map(|c| HoldReason::Preflight(*c).code())
            .chain([
                HoldReason::AgentFailed.code(),
                HoldReason::PreflightUnknown.code(),
            ])
            .collect();
        assert_eq!(codes, PREFLIGHT_FINDING_CODES);
    }

    #[test]
    fn a_long_detail_is_cut_on_a_character_boundary() {
        let cut = bounded("é".repeat(MAX_DETAIL_BYTES));
        assert!(cut.len() <= MAX_DETAIL_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(3_600_000), "1h");
        assert_eq!(human(5_400_000), "1h30m");
        assert_eq!(human(720_000), "12m");
        assert_eq!(human(40_000), "40s");
    }
}
