//! The daemon's Prometheus metrics (DESIGN §5), on a registry it owns.

use std::collections::{BTreeMap, HashMap, HashSet};

use gec_aws::AwsMetrics;
use gec_engine::TargetPass;
use gec_model::plan::{ConflictKind, CoverageChange, Phase, PREFLIGHT_FINDING_CODES};
use gec_model::Action;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Prefix of every controller metric.
pub const PREFIX: &str = "guardduty_controller_";

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile_total: IntCounterVec,
    reconcile_duration: Histogram,
    last_success: Gauge,
    drift: IntGaugeVec,
    actions_total: IntCounterVec,
    clusters: IntGaugeVec,
    /// 1 per target of the last pass, with how its features are managed (`self`,
    /// `organization_administrator`, `organization_member`).
    pub target_info: IntGaugeVec,
    /// Coverage health per cluster, from ListCoverage: a series only for the clusters
    /// GuardDuty lists.
    pub cluster_coverage_healthy: IntGaugeVec,
    /// Tasks without the agent per cluster: a series only for the clusters whose tasks
    /// were read.
    pub uncovered_tasks: IntGaugeVec,
    /// Services held because they cannot get the agent, per target and code: every
    /// finding code of every target planned in the last pass, 0 when none.
    pub preflight_findings: IntGaugeVec,
    /// Tasks that still run the agent after their cluster's coverage turned off, per
    /// cluster: a series only for those clusters, when their tasks were read.
    pub agent_tasks: IntGaugeVec,
    /// Redeploys rolling now, fleet-wide.
    pub redeploys_in_progress: IntGauge,
    /// 1 while a FAILED rollout halts redeploys (`stopOnFailure`).
    pub redeploys_halted: IntGauge,
    /// Resources in conflict (another writer keeps changing them back), per target and
    /// kind: every kind of every target of the last pass, 0 when none.
    pub conflicts: IntGaugeVec,
    config_reloads_total: IntCounterVec,
    config_last_reload_success: Gauge,
    /// AWS request metrics, fed by an SDK interceptor.
    pub aws: AwsMetrics,
    /// Audit events for the EventBridge bus by result (`crate::bus`); 0 without
    /// `--events-bus`.
    pub events_total: IntCounterVec,
    /// 1 while this replica may write: it holds the lease, or runs without one.
    pub leader: IntGauge,
    /// `run --metrics-emf` lines by result (`crate::emf`).
    pub emf_lines_total: IntCounterVec,
    leader_transitions_total: prometheus::IntCounter,
    /// `POST /reconcile` requests by result (`crate::reconcile`).
    pub reconcile_requests_total: IntCounterVec,
}

/// The `result` label of `reconcile_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    /// Every target observed, every action succeeded (or nothing to do).
    Success,
    /// A target could not be observed or an action failed.
    Error,
    /// A safety limit refused a target's plan.
    Refused,
    /// `suspend: true`: observed and reported only.
    Suspended,
}

impl PassResult {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PassResult::Success => "success",
            PassResult::Error => "error",
            PassResult::Refused => "refused",
            PassResult::Suspended => "suspended",
        }
    }
}

fn add<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> Result<C, prometheus::Error> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// Creates and registers every metric, `process_*` included, on a new registry.
    ///
    /// # Errors
    /// Only on a programming error (a name registered twice).
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(format!("{PREFIX}{name}"), help);
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build = add(
            &r,
            IntGaugeVec::new(
                opts("build_info", "Build of the running controller"),
                &["version"],
            )?,
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = Metrics {
            reconcile_total: add(
                &r,
                IntCounterVec::new(
                    opts("reconcile_total", "Reconcile passes by result"),
                    &["result"],
                )?,
            )?,
            reconcile_duration: add(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        format!("{PREFIX}reconcile_duration_seconds"),
                        "Duration of reconcile passes",
                    )
                    .buckets(vec![
                        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    ]),
                )?,
            )?,
            last_success: add(
                &r,
                Gauge::with_opts(opts(
                    "last_success_timestamp_seconds",
                    "Unix time of the last successful pass",
                ))?,
            )?,
            drift: add(
                &r,
                IntGaugeVec::new(
                    opts("drift", "Pending actions by target and kind"),
                    &["target", "kind"],
                )?,
            )?,
            actions_total: add(
                &r,
                IntCounterVec::new(
                    opts(
                        "actions_total",
                        "Actions applied by target, kind and result",
                    ),
                    &["target", "kind", "result"],
                )?,
            )?,
            clusters: add(
                &r,
                IntGaugeVec::new(
                    opts("clusters", "Clusters by target and coverage state"),
                    &["target", "state"],
                )?,
            )?,
            target_info: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "target_info",
                        "1 per target (account and region) of the last pass, by how its GuardDuty features are managed",
                    ),
                    &["target", "management"],
                )?,
            )?,
            cluster_coverage_healthy: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "cluster_coverage_healthy",
                        "1 when GuardDuty reports the cluster's coverage HEALTHY",
                    ),
                    &["target", "cluster"],
                )?,
            )?,
            uncovered_tasks: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "uncovered_tasks",
                        "Running tasks without the GuardDuty agent",
                    ),
                    &["target", "cluster", "kind"],
                )?,
            )?,
            preflight_findings: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "preflight_findings",
                        "Services held because they cannot get the GuardDuty agent, by code",
                    ),
                    &["target", "code"],
                )?,
            )?,
            agent_tasks: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "agent_tasks",
                        "Running tasks that still run the GuardDuty agent after the cluster's coverage turned off",
                    ),
                    &["target", "cluster"],
                )?,
            )?,
            redeploys_in_progress: add(
                &r,
                IntGauge::with_opts(opts(
                    "redeploys_in_progress",
                    "Forced redeployments rolling now",
                ))?,
            )?,
            redeploys_halted: add(
                &r,
                IntGauge::with_opts(opts(
                    "redeploys_halted",
                    "1 while a FAILED rollout halts redeploys (redeploy.stopOnFailure)",
                ))?,
            )?,
            conflicts: add(
                &r,
                IntGaugeVec::new(
                    opts(
                        "conflicts",
                        "Resources another writer keeps changing back, which the controller no longer writes",
                    ),
                    &["target", "kind"],
                )?,
            )?,
            config_reloads_total: add(
                &r,
                IntCounterVec::new(
                    opts("config_reloads_total", "Desired-state reloads by result"),
                    &["result"],
                )?,
            )?,
            config_last_reload_success: add(
                &r,
                Gauge::with_opts(opts(
                    "config_last_reload_success_timestamp_seconds",
                    "Unix time of the last good reload",
                ))?,
            )?,
            aws: AwsMetrics::register(&r, PREFIX)?,
            events_total: add(&r, crate::bus::events_counter()?)?,
            emf_lines_total: add(&r, crate::emf::lines_counter()?)?,
            leader: add(
                &r,
                IntGauge::with_opts(opts(
                    "leader",
                    "1 while this replica may write: it holds the lease (run --lease-table), or runs without one and not --dry-run",
                ))?,
            )?,
            leader_transitions_total: add(
                &r,
                prometheus::IntCounter::with_opts(opts(
                    "leader_transitions_total",
                    "Times this replica became or stopped being the leader",
                ))?,
            )?,
            reconcile_requests_total: add(&r, crate::reconcile::requests_counter()?)?,
            registry: r,
        };
        for result in ["success", "error", "refused", "suspended"] {
            m.reconcile_total.with_label_values(&[result]);
        }
        for result in ["success", "error"] {
            m.config_reloads_total.with_label_values(&[result]);
        }
        Ok(m)
    }

    /// This replica became (`true`) or stopped being the leader.
    pub fn leader_transition(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        self.leader_transitions_total.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Counts a desired-state reload.
    pub fn config_reload(&self, ok: bool, now_secs: f64) {
        self.config_reloads_total
            .with_label_values(&[if ok { "success" } else { "error" }])
            .inc();
        if ok {
            self.config_last_reload_success.set(now_secs);
        }
    }

    /// Records a finished pass. `passes` holds every target of the desired state (the
    /// last known pass of targets this pass skipped): the per-target and per-cluster
    /// gauges are set from them, and the series of targets and clusters no longer in
    /// them are removed, so label sets stay bounded by the fleet.
    pub fn pass(&self, passes: &[TargetPass], result: PassResult, seconds: f64, now_secs: f64) {
        self.reconcile_total
            .with_label_values(&[result.as_str()])
            .inc();
        self.reconcile_duration.observe(seconds);
        if result == PassResult::Success {
            self.last_success.set(now_secs);
        }
        let mut drift = BTreeMap::new();
        let mut clusters = BTreeMap::new();
        let mut healthy = BTreeMap::new();
        let mut uncovered = BTreeMap::new();
        let mut findings = BTreeMap::new();
        let mut agent_tasks = BTreeMap::new();
        for pass in passes {
            let target = pass.target.label();
            // A redeploy the rollout gate holds back (settle time, a slot, a window) was
            // not attempted and is no action: it shows in `drift{kind="redeploy"}`, not
            // as a `skipped` count that grows every poll.
            let gated = |r: &&gec_engine::ActionResult| {
                matches!(r.outcome, gec_engine::Outcome::Skipped(why) if why.gate().is_some())
                    && r.action.phase() == gec_model::plan::Phase::Redeploy
            };
            for r in pass.results.iter().filter(|r| !gated(r)) {
                self.actions_total
                    .with_label_values(&[&target, r.action.kind(), r.outcome.label()])
                    .inc();
            }
            let Some(plan) = pass.pending() else { continue };
            for kind in ["tag", "detector", "redeploy"] {
                let pending = plan
                    .actions
                    .iter()
                    .filter(|a| drift_kind(a) == kind)
                    .count();
                drift.insert(vec![target.clone(), kind.to_owned()], count(pending));
            }
            for state in ["covered", "excluded", "uncovered", "unmanaged"] {
                let n = plan
                    .clusters
                    .iter()
                    .filter(|c| state_now(c) == state)
                    .count();
                clusters.insert(vec![target.clone(), state.to_owned()], count(n));
            }
            for code in PREFLIGHT_FINDING_CODES {
                let n = plan
                    .held
                    .iter()
                    .filter(|h| h.reason.is_finding() && h.reason.code() == code)
                    .count();
                findings.insert(vec![target.clone(), code.to_owned()], count(n));
            }
            for row in &plan.clusters {
                if let Some(n) = row.agent_tasks {
                    agent_tasks.insert(vec![target.clone(), row.cluster.clone()], i64::from(n));
                }
                if let Some(coverage) = &row.guardduty {
                    healthy.insert(
                        vec![target.clone(), row.cluster.clone()],
                        i64::from(coverage.healthy()),
                    );
                }
                if let Some(tasks) = row.tasks {
                    for (kind, n) in [
                        ("service", tasks.service_tasks_without_agent),
                        ("standalone", tasks.standalone_tasks_without_agent),
                    ] {
                        uncovered.insert(
                            vec![target.clone(), row.cluster.clone(), kind.to_owned()],
                            i64::from(n),
                        );
                    }
                }
            }
        }
        replace(&self.drift, &["target", "kind"], &drift);
        replace(&self.clusters, &["target", "state"], &clusters);
        replace(
            &self.cluster_coverage_healthy,
            &["target", "cluster"],
            &healthy,
        );
        replace(
            &self.uncovered_tasks,
            &["target", "cluster", "kind"],
            &uncovered,
        );
        replace(&self.preflight_findings, &["target", "code"], &findings);
        replace(&self.agent_tasks, &["target", "cluster"], &agent_tasks);
        let info: BTreeMap<Vec<String>, i64> = passes
            .iter()
            .map(|p| (vec![p.target.label(), p.target.management().to_owned()], 1))
            .collect();
        replace(&self.target_info, &["target", "management"], &info);
        let targets: HashSet<String> = passes.iter().map(|p| p.target.label()).collect();
        forget_targets(&self.actions_total, &targets);
    }

    /// Records the rollout engine's state after a pass: rollouts in progress fleet-wide
    /// (`Rollouts::in_progress`) and whether redeploys are halted (`Rollouts::halted`).
    pub fn rollouts(&self, in_progress: usize, halted: bool) {
        self.redeploys_in_progress.set(count(in_progress));
        self.redeploys_halted.set(i64::from(halted));
    }
}

impl Metrics {
    /// Sets `conflicts{target,kind}` from the conflicts that stand: every kind of every
    /// target in `targets` (0 when none), and the series of other targets removed.
    pub fn conflicts(&self, targets: &[String], current: &[(String, gec_model::plan::Conflict)]) {
        let kinds = [
            ConflictKind::Tag,
            ConflictKind::Detector,
            ConflictKind::Organization,
        ];
        let mut values = BTreeMap::new();
        for target in targets {
            for kind in kinds {
                let n = current
                    .iter()
                    .filter(|(t, c)| t == target && c.kind == kind)
                    .count();
                values.insert(vec![target.clone(), kind.as_str().to_owned()], count(n));
            }
        }
        replace(&self.conflicts, &["target", "kind"], &values);
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sets `values` (label values in the order of `names` → value) on `vec`, then removes
/// every other series of it. Unlike `reset` then set, a scrape in between never misses a
/// series that stays, which would restart the `for:` of an alert on it.
fn replace(vec: &IntGaugeVec, names: &[&str], values: &BTreeMap<Vec<String>, i64>) {
    for (labels, value) in values {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        vec.with_label_values(&labels).set(*value);
    }
    let mut stale = Vec::new();
    for family in vec.collect() {
        for metric in family.get_metric() {
            let by_name: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            let labels: Vec<String> = names
                .iter()
                .map(|n| by_name.get(n).copied().unwrap_or_default().to_owned())
                .collect();
            if !values.contains_key(&labels) {
                stale.push(labels);
            }
        }
    }
    for labels in stale {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let _ = vec.remove_label_values(&labels);
    }
}

/// Removes the series of `counter` (labels `target`, `kind`, `result`) whose target is not
/// in `targets`: a counter of a target that left the desired state would otherwise stay
/// for the life of the process, one set per account ever managed.
fn forget_targets(counter: &IntCounterVec, targets: &HashSet<String>) {
    let mut stale = Vec::new();
    for family in counter.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map_or_else(String::new, |l| l.value().to_owned())
            };
            if !targets.contains(&label("target")) {
                stale.push([label("target"), label("kind"), label("result")]);
            }
        }
    }
    for labels in stale {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        let _ = counter.remove_label_values(&labels);
    }
}

fn drift_kind(action: &Action) -> &'static str {
    match action.phase() {
        Phase::Tags | Phase::Untag => "tag",
        Phase::Detector => "detector",
        Phase::Redeploy => "redeploy",
    }
}

/// A cluster's coverage state now (before the plan), for the `clusters` gauge.
fn state_now(row: &gec_model::plan::ClusterRow) -> &'static str {
    match row.coverage {
        CoverageChange::Covered | CoverageChange::Lost => "covered",
        _ if row.observed.as_deref() == Some("false") => "excluded",
        _ if row.desired.is_none() => "unmanaged",
        _ => "uncovered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pass;
    use gec_engine::Outcome;
    use gec_engine::{Skip, Wait};
    use gec_model::testing::{redeploy, row, tag};
    use gec_model::TargetPlan;

    /// The value of the sample `name{labels}` (labels in any order), if exported.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
                let mut got: Vec<String> = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                got.sort();
                (metric == format!("{PREFIX}{name}") && got == want).then(|| value.parse().unwrap())
            })
    }

    fn series(text: &str, name: &str) -> usize {
        let name = format!("{PREFIX}{name}");
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .count()
    }

    #[test]
    fn cluster_gauges_follow_the_last_pass_and_drop_clusters_that_left() {
        let m = Metrics::new().unwrap();
        let east = "us-east-1";
        let plan = TargetPlan {
            actions: vec![
                tag(east, "gamma"),
                redeploy(east, "alpha", "api"),
                redeploy(east, "alpha", "web"),
            ],
            clusters: vec![
                row(east, "alpha").guardduty("HEALTHY").tasks(3, 1),
                row(east, "beta").guardduty("UNHEALTHY").tasks(0, 0),
                row(east, "gamma"),
            ],
            ..TargetPlan::default()
        };
        // api started; web waits for a slot. What is still pending: the tag and web.
        let mut after = plan.clone();
        after.actions.remove(1);
        let mut first = pass(
            east,
            plan,
            vec![
                (tag(east, "gamma"), Outcome::Success),
                (redeploy(east, "alpha", "api"), Outcome::Success),
                (
                    redeploy(east, "alpha", "web"),
                    Outcome::Skipped(Skip::Gate(Wait::MaxConcurrent)),
                ),
            ],
        );
        first.after = Some(after);
        let west = "eu-west-1";
        let other = pass(
            west,
            TargetPlan {
                clusters: vec![row(west, "alpha").guardduty("HEALTHY").tasks(0, 2)],
                ..TargetPlan::default()
            },
            vec![],
        );
        m.pass(&[first, other], PassResult::Success, 1.0, 100.0);
        m.rollouts(2, false);
        let text = m.render();

        let healthy = |t: &str, c: &str| {
            sample(
                &text,
                "cluster_coverage_healthy",
                &[("target", t), ("cluster", c)],
            )
        };
        assert_eq!(healthy(east, "alpha"), Some(1.0));
        assert_eq!(healthy(east, "beta"), Some(0.0));
        assert_eq!(
            healthy(east, "gamma"),
            None,
            "GuardDuty does not list gamma"
        );
        assert_eq!(healthy(west, "alpha"), Some(1.0));
        assert_eq!(series(&text, "cluster_coverage_healthy"), 3);

        let uncovered = |t: &str, c: &str, k: &str| {
            sample(
                &text,
                "uncovered_tasks",
                &[("target", t), ("cluster", c), ("kind", k)],
            )
        };
        assert_eq!(uncovered(east, "alpha", "service"), Some(3.0));
        assert_eq!(uncovered(east, "alpha", "standalone"), Some(1.0));
        assert_eq!(uncovered(east, "beta", "service"), Some(0.0));
        assert_eq!(uncovered(east, "beta", "standalone"), Some(0.0));
        assert_eq!(uncovered(west, "alpha", "standalone"), Some(2.0));
        assert_eq!(
            series(&text, "uncovered_tasks"),
            6,
            "gamma's tasks were not read"
        );

        let drift = |t: &str, k: &str| sample(&text, "drift", &[("target", t), ("kind", k)]);
        assert_eq!(drift(east, "redeploy"), Some(1.0), "web is still pending");
        assert_eq!(drift(east, "tag"), Some(1.0), "pending() is the after plan");
        assert_eq!(drift(east, "detector"), Some(0.0));
        assert_eq!(drift(west, "redeploy"), Some(0.0));

        let actions = |k: &str, r: &str| {
            sample(
                &text,
                "actions_total",
                &[("target", east), ("kind", k), ("result", r)],
            )
        };
        assert_eq!(actions("redeploy_service", "success"), Some(1.0));
        assert_eq!(
            actions("redeploy_service", "skipped"),
            None,
            "a redeploy the gate holds back is drift, not a skipped action"
        );
        assert_eq!(actions("tag_cluster", "success"), Some(1.0));
        assert_eq!(sample(&text, "redeploys_in_progress", &[]), Some(2.0));
        assert_eq!(sample(&text, "redeploys_halted", &[]), Some(0.0));

        // Next pass: alpha is gone from us-east-1, beta is no longer listed by GuardDuty
        // and its tasks were not read; eu-west-1 left the desired state.
        let second = pass(
            east,
            TargetPlan {
                clusters: vec![row(east, "beta")],
                ..TargetPlan::default()
            },
            vec![],
        );
        m.pass(&[second], PassResult::Success, 1.0, 200.0);
        m.rollouts(0, true);
        let text = m.render();
        assert_eq!(series(&text, "cluster_coverage_healthy"), 0, "{text}");
        assert_eq!(series(&text, "uncovered_tasks"), 0, "{text}");
        assert_eq!(
            series(&text, "drift"),
            3,
            "only us-east-1's three kinds: {text}"
        );
        assert_eq!(
            sample(&text, "drift", &[("target", east), ("kind", "redeploy")]),
            Some(0.0)
        );
        assert_eq!(series(&text, "clusters"), 4, "{text}");
        assert_eq!(
            sample(&text, "clusters", &[("target", east), ("state", "covered")]),
            Some(1.0)
        );
        assert_eq!(sample(&text, "redeploys_in_progress", &[]), Some(0.0));
        assert_eq!(sample(&text, "redeploys_halted", &[]), Some(1.0));
    }

    #[test]
    fn preflight_findings_count_held_services_per_code_and_go_to_zero_when_they_clear() {
        use gec_model::observed::PreflightCode;
        use gec_model::plan::HoldReason;
        use gec_model::testing::held;
        let m = Metrics::new().unwrap();
        let east = "us-east-1";
        let plan = TargetPlan {
            held: vec![
                held(
                    east,
                    "apps",
                    "legacy",
                    HoldReason::Preflight(PreflightCode::PlatformVersion),
                ),
                held(
                    east,
                    "apps",
                    "old",
                    HoldReason::Preflight(PreflightCode::PlatformVersion),
                ),
                held(east, "apps", "web", HoldReason::AgentFailed),
                held(east, "apps", "batch", HoldReason::Excluded),
            ],
            clusters: vec![row(east, "gone").agent_tasks(3)],
            ..TargetPlan::default()
        };
        m.pass(&[pass(east, plan, vec![])], PassResult::Success, 1.0, 100.0);
        let text = m.render();
        let finding = |text: &str, code: &str| {
            sample(
                text,
                "preflight_findings",
                &[("target", east), ("code", code)],
            )
        };
        assert_eq!(finding(&text, "platform_version"), Some(2.0));
        assert_eq!(finding(&text, "agent_failed"), Some(1.0));
        for code in [
            "windows",
            "no_execution_role",
            "execution_role_cannot_pull",
            "preflight_unknown",
        ] {
            assert_eq!(finding(&text, code), Some(0.0), "{code}");
        }
        assert_eq!(
            series(&text, "preflight_findings"),
            6,
            "only the finding codes, never excluded and the like: {text}"
        );
        assert_eq!(
            sample(
                &text,
                "agent_tasks",
                &[("target", east), ("cluster", "gone")]
            ),
            Some(3.0)
        );

        // The findings cleared and the tasks were replaced.
        m.pass(
            &[pass(east, TargetPlan::default(), vec![])],
            PassResult::Success,
            1.0,
            200.0,
        );
        let text = m.render();
        assert_eq!(finding(&text, "platform_version"), Some(0.0));
        assert_eq!(finding(&text, "agent_failed"), Some(0.0));
        assert_eq!(series(&text, "agent_tasks"), 0, "{text}");

        // A target that left the desired state keeps no series.
        m.pass(&[], PassResult::Success, 1.0, 300.0);
        assert_eq!(series(&m.render(), "preflight_findings"), 0);
    }

    #[test]
    fn action_counters_of_targets_that_left_the_desired_state_are_dropped() {
        let m = Metrics::new().unwrap();
        let (east, west) = ("us-east-1", "eu-west-1");
        let tagged = |region: &str| {
            pass(
                region,
                TargetPlan::default(),
                vec![(tag(region, "alpha"), Outcome::Success)],
            )
        };
        m.pass(
            &[tagged(east), tagged(west)],
            PassResult::Success,
            1.0,
            100.0,
        );
        assert_eq!(series(&m.render(), "actions_total"), 2);
        m.pass(&[tagged(east)], PassResult::Success, 1.0, 200.0);
        let text = m.render();
        assert_eq!(series(&text, "actions_total"), 1, "{text}");
        let east_tags = [
            ("target", east),
            ("kind", "tag_cluster"),
            ("result", "success"),
        ];
        assert_eq!(
            sample(&text, "actions_total", &east_tags),
            Some(2.0),
            "a target that stays keeps counting"
        );
    }

    #[test]
    fn a_failed_target_keeps_no_cluster_series() {
        let m = Metrics::new().unwrap();
        let east = "us-east-1";
        let ok = pass(
            east,
            TargetPlan {
                clusters: vec![row(east, "alpha").guardduty("UNHEALTHY").tasks(1, 0)],
                ..TargetPlan::default()
            },
            vec![],
        );
        m.pass(std::slice::from_ref(&ok), PassResult::Success, 1.0, 100.0);
        assert_eq!(series(&m.render(), "cluster_coverage_healthy"), 1);
        let mut failed = ok;
        failed.plan = None;
        m.pass(&[failed], PassResult::Error, 1.0, 200.0);
        let text = m.render();
        assert_eq!(series(&text, "cluster_coverage_healthy"), 0, "{text}");
        assert_eq!(series(&text, "uncovered_tasks"), 0, "{text}");
    }
}
