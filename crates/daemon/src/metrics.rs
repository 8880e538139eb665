//! The daemon's Prometheus metrics (DESIGN §5), on a registry it owns.

use gec_aws::AwsMetrics;
use gec_engine::TargetPass;
use gec_model::plan::{CoverageChange, Phase};
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
    /// Coverage health per cluster, from ListCoverage (filled once coverage is observed).
    pub cluster_coverage_healthy: IntGaugeVec,
    /// Tasks without the agent per cluster (filled once tasks are observed).
    pub uncovered_tasks: IntGaugeVec,
    /// Redeploys rolling now.
    pub redeploys_in_progress: IntGauge,
    config_reloads_total: IntCounterVec,
    config_last_reload_success: Gauge,
    /// AWS request metrics, fed by an SDK interceptor.
    pub aws: AwsMetrics,
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
            redeploys_in_progress: add(
                &r,
                IntGauge::with_opts(opts(
                    "redeploys_in_progress",
                    "Forced redeployments rolling now",
                ))?,
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

    /// Records a finished pass.
    pub fn pass(&self, passes: &[TargetPass], result: PassResult, seconds: f64, now_secs: f64) {
        self.reconcile_total
            .with_label_values(&[result.as_str()])
            .inc();
        self.reconcile_duration.observe(seconds);
        if result == PassResult::Success {
            self.last_success.set(now_secs);
        }
        self.drift.reset();
        self.clusters.reset();
        for pass in passes {
            let target = pass.target.label();
            for r in &pass.results {
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
                self.drift
                    .with_label_values(&[&target, kind])
                    .set(pending as i64);
            }
            for state in ["covered", "excluded", "uncovered", "unmanaged"] {
                let n = plan
                    .clusters
                    .iter()
                    .filter(|c| state_now(c) == state)
                    .count();
                self.clusters
                    .with_label_values(&[&target, state])
                    .set(n as i64);
            }
        }
    }
}

fn drift_kind(action: &Action) -> &'static str {
    match action.phase() {
        Phase::Tags | Phase::Untag => "tag",
        Phase::Detector => "detector",
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
