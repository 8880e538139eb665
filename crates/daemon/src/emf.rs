//! `run --metrics-emf`: the key metrics of each finished pass as CloudWatch Embedded
//! Metric Format (EMF) documents, one JSON object per line on stdout. On ECS the `awslogs`
//! driver ships stdout to CloudWatch Logs, which extracts the metrics: a team without
//! Prometheus gets metrics and alarms from the log stream it already has. The tracing
//! logs go to stderr, so stdout carries only these lines.
//!
//! Specification:
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
//! (checked by `schemas/emf.schema.json`). The metrics are those the Prometheus alerts use
//! (`deploy/prometheus-alerts.yaml`), so the CloudFormation alarms can match them.
//!
//! A pass never waits for stdout: lines go through a bounded queue to a writer thread; a
//! full queue drops the line, a failed write (closed stdout) is counted, never a panic.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use gec_engine::TargetPass;
use gec_model::plan::Phase;
use prometheus::{IntCounterVec, Opts};
use serde_json::{json, Map, Value};

use crate::http::Shared;
use crate::metrics::{PassResult, PREFIX};

/// Default CloudWatch namespace of `--metrics-emf`.
pub const DEFAULT_NAMESPACE: &str = "GuardDutyEcsController";
/// The dimension that names a target (`account/region`, as the Prometheus `target` label).
pub const TARGET_DIMENSION: &str = "Target";
/// At most this many metrics per directive (the specification's limit).
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// A dimension value has at most this many characters (the specification's limit).
pub const MAX_DIMENSION_VALUE: usize = 1024;
/// A CloudWatch namespace has 1 to this many characters.
pub const MAX_NAMESPACE: usize = 255;
/// Passes waiting for stdout; a pass beyond them is dropped whole (its lines counted), so
/// a stuck stdout never holds a pass or grows memory, and a pass is written all or
/// nothing (the fleet line, which the alarms read, never lost to a long target list).
/// A pass writes one line per target and one for the fleet.
pub const QUEUE: usize = 4;

/// The settings of `--metrics-emf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfSettings {
    /// The CloudWatch namespace (`--metrics-emf-namespace`), checked by [`check_namespace`].
    pub namespace: String,
}

impl Default for EmfSettings {
    fn default() -> Self {
        EmfSettings {
            namespace: DEFAULT_NAMESPACE.to_owned(),
        }
    }
}

/// A CloudWatch namespace as PutMetricData takes it: 1 to 255 characters, ASCII letters,
/// digits and `.-_/#:` and space, not starting with `:` (the API's pattern `[^:].*`) or
/// `AWS/` (reserved for AWS services).
///
/// # Errors
/// A message saying what is wrong.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > MAX_NAMESPACE {
        return Err(format!(
            "a CloudWatch namespace has 1 to {MAX_NAMESPACE} characters"
        ));
    }
    if !ns
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" .-_/#:".contains(&b))
    {
        return Err(
            "a CloudWatch namespace has only ASCII letters, digits, spaces and . - _ / # :"
                .to_owned(),
        );
    }
    if ns.starts_with("AWS/") || ns.starts_with(':') || ns.trim().is_empty() {
        return Err(
            "a CloudWatch namespace must not start with AWS/ or ':', or be blank".to_owned(),
        );
    }
    Ok(())
}

/// `guardduty_controller_emf_lines_total{result}`: lines `written` to stdout, `dropped`
/// (queue full) and `failed` (the write failed, e.g. stdout closed).
///
/// # Errors
/// Only on a programming error (bad metric options).
pub fn lines_counter() -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(
        Opts::new(
            format!("{PREFIX}emf_lines_total"),
            "Embedded Metric Format lines on stdout (run --metrics-emf) by result",
        ),
        &["result"],
    )?;
    for result in ["written", "dropped", "failed"] {
        c.with_label_values(&[result]);
    }
    Ok(c)
}

/// A CloudWatch unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Seconds.
    Seconds,
    /// A 0/1 flag or a plain number.
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// One metric value of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric name (ours, never from input).
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// Its value; NaN and infinities are left out of the document.
    pub value: f64,
}

fn metric(name: &'static str, unit: Unit, value: impl Into<f64>) -> Metric {
    Metric {
        name,
        unit,
        value: value.into(),
    }
}

fn counted(n: usize) -> f64 {
    // Counts of a fleet stay far below 2^53; `as` is exact there.
    n as f64
}

/// A dimension value as CloudWatch takes it: ASCII without control characters (others
/// become `?`), at least one non-blank character, at most [`MAX_DIMENSION_VALUE`].
pub fn dimension_value(raw: &str) -> String {
    let mut v: String = raw
        .chars()
        .take(MAX_DIMENSION_VALUE)
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if v.trim().is_empty() {
        v = "-".to_owned();
    }
    v
}

/// The EMF documents (one JSON text each, no newline) of `metrics` with the dimensions
/// `dims` (name → value; names are ours, values are cleaned by [`dimension_value`]) at
/// `timestamp_ms`: one document per [`MAX_METRICS_PER_DIRECTIVE`] metrics, none when no
/// metric has a finite value. A metric name that is also a dimension name, or that
/// appears twice, keeps its first value.
pub fn encode(
    namespace: &str,
    timestamp_ms: u64,
    dims: &[(&'static str, &str)],
    metrics: &[Metric],
) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let finite: Vec<&Metric> = metrics
        .iter()
        .filter(|m| m.value.is_finite())
        .filter(|m| !dims.iter().any(|(d, _)| *d == m.name) && seen.insert(m.name))
        .collect();
    finite
        .chunks(MAX_METRICS_PER_DIRECTIVE)
        .map(|chunk| {
            let mut root = Map::new();
            let definitions: Vec<Value> = chunk
                .iter()
                .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                .collect();
            let dimension_set: Vec<&str> = dims.iter().map(|(d, _)| *d).collect();
            root.insert(
                "_aws".to_owned(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimension_set],
                        "Metrics": definitions,
                    }],
                }),
            );
            for (d, v) in dims {
                root.insert((*d).to_owned(), Value::String(dimension_value(v)));
            }
            for m in chunk {
                // Finite by the filter above, so always a JSON number.
                if let Some(n) = serde_json::Number::from_f64(m.value) {
                    root.insert(m.name.to_owned(), Value::Number(n));
                }
            }
            Value::Object(root).to_string()
        })
        .collect()
}

/// What the daemon knows of a finished pass besides the target passes.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The pass's result.
    pub result: PassResult,
    /// Its wall time.
    pub seconds: f64,
    /// Redeploys rolling now, fleet-wide.
    pub in_progress: usize,
    /// Redeploys halted after a FAILED rollout.
    pub halted: bool,
    /// This replica may write.
    pub leader: bool,
}

/// Per-target values, summed into the fleet line.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    uncovered: usize,
    pending_actions: usize,
    pending_redeploys: usize,
    cannot_get_agent: usize,
    conflicts: usize,
    error: bool,
}

fn counts(pass: &TargetPass, conflicts: usize) -> (Counts, bool) {
    let mut c = Counts {
        conflicts,
        error: pass.error.is_some() || pass.failed_actions() > 0,
        ..Counts::default()
    };
    let Some(plan) = pass.pending() else {
        return (c, false);
    };
    for a in &plan.actions {
        if a.phase() == Phase::Redeploy {
            c.pending_redeploys += 1;
        } else {
            c.pending_actions += 1;
        }
    }
    c.cannot_get_agent = plan.held.iter().filter(|h| h.reason.is_finding()).count();
    c.uncovered = plan
        .clusters
        .iter()
        .filter_map(|r| r.tasks)
        .map(|t| {
            usize::try_from(t.service_tasks_without_agent)
                .unwrap_or(usize::MAX)
                .saturating_add(
                    usize::try_from(t.standalone_tasks_without_agent).unwrap_or(usize::MAX),
                )
        })
        .fold(0usize, usize::saturating_add);
    (c, true)
}

fn target_metrics(c: Counts, planned: bool) -> Vec<Metric> {
    let mut m = vec![
        metric("TargetErrors", Unit::Count, u8::from(c.error)),
        metric("Conflicts", Unit::Count, counted(c.conflicts)),
    ];
    // A target that could not be observed has no plan: its counts are unknown, not 0.
    if planned {
        m.extend([
            metric("UncoveredTasks", Unit::Count, counted(c.uncovered)),
            metric("PendingActions", Unit::Count, counted(c.pending_actions)),
            metric(
                "PendingRedeploys",
                Unit::Count,
                counted(c.pending_redeploys),
            ),
            metric(
                "ServicesCannotGetAgent",
                Unit::Count,
                counted(c.cannot_get_agent),
            ),
        ]);
    }
    m
}

/// The documents of one pass: one per target (dimension `Target`), then one for the fleet
/// (no dimension). When `follower` (on a lease, not leading), only `Leader` 0: the metrics have no
/// replica dimension (a task id changes with every deployment, and alarms need a fixed
/// metric), so only the replica that writes speaks for the fleet; a follower's passes,
/// which never write, would otherwise hide the leader's failures from a `Minimum` alarm.
pub fn documents(
    namespace: &str,
    timestamp_ms: u64,
    passes: &[TargetPass],
    summary: Summary,
    conflicts: &[(String, gec_model::plan::Conflict)],
    follower: bool,
) -> Vec<String> {
    if follower {
        return encode(
            namespace,
            timestamp_ms,
            &[],
            &[metric("Leader", Unit::None, 0u8)],
        );
    }
    let mut lines = Vec::new();
    let mut fleet = Counts::default();
    let mut failing = 0usize;
    for pass in passes {
        let label = pass.target.label();
        let n = conflicts.iter().filter(|(t, _)| *t == label).count();
        let (c, planned) = counts(pass, n);
        fleet.uncovered = fleet.uncovered.saturating_add(c.uncovered);
        fleet.pending_actions = fleet.pending_actions.saturating_add(c.pending_actions);
        fleet.pending_redeploys = fleet.pending_redeploys.saturating_add(c.pending_redeploys);
        fleet.cannot_get_agent = fleet.cannot_get_agent.saturating_add(c.cannot_get_agent);
        fleet.conflicts = fleet.conflicts.saturating_add(c.conflicts);
        failing += usize::from(c.error);
        lines.extend(encode(
            namespace,
            timestamp_ms,
            &[(TARGET_DIMENSION, &label)],
            &target_metrics(c, planned),
        ));
    }
    let result = summary.result;
    let fleet_metrics = [
        metric(
            "ReconcileErrors",
            Unit::Count,
            u8::from(result == PassResult::Error),
        ),
        metric(
            "ReconcileRefusals",
            Unit::Count,
            u8::from(result == PassResult::Refused),
        ),
        metric(
            "ReconcileSuspended",
            Unit::Count,
            u8::from(result == PassResult::Suspended),
        ),
        metric("PassDuration", Unit::Seconds, summary.seconds),
        metric("Targets", Unit::Count, counted(passes.len())),
        metric("FailingTargets", Unit::Count, counted(failing)),
        metric("UncoveredTasks", Unit::Count, counted(fleet.uncovered)),
        metric(
            "PendingActions",
            Unit::Count,
            counted(fleet.pending_actions),
        ),
        metric(
            "PendingRedeploys",
            Unit::Count,
            counted(fleet.pending_redeploys),
        ),
        metric(
            "ServicesCannotGetAgent",
            Unit::Count,
            counted(fleet.cannot_get_agent),
        ),
        metric("Conflicts", Unit::Count, counted(fleet.conflicts)),
        metric(
            "RedeploysInProgress",
            Unit::Count,
            counted(summary.in_progress),
        ),
        metric("RedeploysHalted", Unit::None, u8::from(summary.halted)),
        metric("Leader", Unit::None, u8::from(summary.leader)),
    ];
    lines.extend(encode(namespace, timestamp_ms, &[], &fleet_metrics));
    lines
}

/// The `--metrics-emf` writer: a bounded queue to a thread that writes stdout.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    /// Runs on a lease: a follower writes only `Leader` (see [`documents`]).
    leased: bool,
    queue: SyncSender<Vec<String>>,
    lines: IntCounterVec,
}

impl Emf {
    /// Starts the writer thread on stdout.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn start(
        settings: EmfSettings,
        leased: bool,
        lines: IntCounterVec,
    ) -> std::io::Result<Self> {
        let (queue, rx) = sync_channel(QUEUE);
        let counter = lines.clone();
        std::thread::Builder::new()
            .name("emf-stdout".to_owned())
            .spawn(move || write_lines(&rx, std::io::stdout, &counter))?;
        Ok(Emf {
            namespace: settings.namespace,
            leased,
            queue,
            lines,
        })
    }

    /// Queues the documents of a finished pass (see [`documents`]); never waits.
    pub fn pass(&self, passes: &[TargetPass], summary: Summary, shared: &Shared) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let conflicts = shared.conflicts.current();
        let follower = self.leased && !summary.leader;
        let lines = documents(&self.namespace, now, passes, summary, &conflicts, follower);
        match self.queue.try_send(lines) {
            Ok(()) => {}
            Err(TrySendError::Full(lines)) => {
                self.lines
                    .with_label_values(&["dropped"])
                    .inc_by(lines.len() as u64);
            }
            Err(TrySendError::Disconnected(lines)) => {
                self.lines
                    .with_label_values(&["failed"])
                    .inc_by(lines.len() as u64);
            }
        }
    }
}

fn write_lines<W: Write>(rx: &Receiver<Vec<String>>, open: impl Fn() -> W, lines: &IntCounterVec) {
    let mut warned = false;
    for batch in rx {
        // One write per pass: the lines of a pass leave together.
        let mut text = batch.join("\n");
        text.push('\n');
        let count = batch.len() as u64;
        let mut out = open();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => lines.with_label_values(&["written"]).inc_by(count),
            Err(e) => {
                lines.with_label_values(&["failed"]).inc_by(count);
                if !warned {
                    warned = true;
                    tracing::warn!(error = %e, "cannot write EMF metrics to stdout; counted in guardduty_controller_emf_lines_total{{result=\"failed\"}}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EAST: &str = "us-east-1";
    const WEST: &str = "us-west-2";

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).expect("a JSON text")
    }

    #[test]
    fn a_document_names_every_member_it_references() {
        let lines = encode(
            "NS",
            1_700_000_000_123,
            &[("Target", "123456789012/eu-west-1")],
            &[
                metric("UncoveredTasks", Unit::Count, 3u8),
                metric("PassDuration", Unit::Seconds, 0.25),
            ],
        );
        assert_eq!(lines.len(), 1);
        let doc = parse(&lines[0]);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "NS");
        assert_eq!(directive["Dimensions"], json!([["Target"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "UncoveredTasks", "Unit": "Count"}, {"Name": "PassDuration", "Unit": "Seconds"}])
        );
        assert_eq!(doc["Target"], "123456789012/eu-west-1");
        assert_eq!(doc["UncoveredTasks"], 3.0);
        assert_eq!(doc["PassDuration"], 0.25);
        assert!(!lines[0].contains('\n'));
    }

    #[test]
    fn nan_and_infinities_are_left_out() {
        let lines = encode(
            "NS",
            1,
            &[],
            &[
                metric("A", Unit::None, f64::NAN),
                metric("B", Unit::None, f64::INFINITY),
                metric("C", Unit::None, f64::NEG_INFINITY),
                metric("D", Unit::None, 1u8),
            ],
        );
        let doc = parse(&lines[0]);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "D", "Unit": "None"}])
        );
        assert!(doc.get("A").is_none() && doc.get("B").is_none() && doc.get("C").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        // Nothing finite: no document at all.
        assert!(encode("NS", 1, &[], &[metric("A", Unit::None, f64::NAN)]).is_empty());
    }

    #[test]
    fn a_long_or_foreign_label_is_cut_and_cleaned() {
        let long = "é\u{7}".repeat(2000);
        let lines = encode(
            "NS",
            1,
            &[("Target", &long)],
            &[metric("A", Unit::Count, 1u8)],
        );
        let value = parse(&lines[0])["Target"].as_str().unwrap().to_owned();
        assert_eq!(value.chars().count(), MAX_DIMENSION_VALUE);
        assert!(value.bytes().all(|b| b == b'?'));
        assert_eq!(dimension_value("   "), "-");
        assert_eq!(dimension_value(""), "-");
    }

    #[test]
    fn more_than_100_metrics_are_split() {
        // Metric names are ours (static); a test makes 250 distinct ones.
        let metrics: Vec<Metric> = (0..250)
            .map(|i| {
                let name: &'static str = Box::leak(format!("M{i}").into_boxed_str());
                metric(name, Unit::Count, 1u8)
            })
            .collect();
        let lines = encode("NS", 1, &[("Target", "t")], &metrics);
        assert_eq!(lines.len(), 3);
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| {
                parse(l)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        for l in &lines {
            let doc = parse(l);
            assert_eq!(doc["Target"], "t");
            for d in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
            {
                assert!(doc[d["Name"].as_str().unwrap()].is_number());
            }
        }
    }

    #[test]
    fn a_duplicate_or_dimension_named_metric_keeps_one_value() {
        let lines = encode(
            "NS",
            1,
            &[("Target", "t")],
            &[
                metric("Target", Unit::Count, 1u8),
                metric("A", Unit::Count, 1u8),
                metric("A", Unit::Count, 2u8),
            ],
        );
        let doc = parse(&lines[0]);
        assert_eq!(doc["Target"], "t");
        assert_eq!(doc["A"], 1.0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "A", "Unit": "Count"}])
        );
    }

    fn summary(result: PassResult) -> Summary {
        Summary {
            result,
            seconds: 1.5,
            in_progress: 1,
            halted: true,
            leader: true,
        }
    }

    #[test]
    fn a_pass_gives_a_line_per_target_and_one_for_the_fleet() {
        use crate::testing::{pass, redeploy, tag};
        use gec_model::TargetPlan;
        let plan = TargetPlan {
            actions: vec![tag(EAST, "a"), tag(EAST, "b"), redeploy(EAST, "a", "web")],
            ..TargetPlan::default()
        };
        let mut down = pass(WEST, TargetPlan::default(), vec![]);
        down.plan = None;
        down.error = Some(gec_aws::AwsError::new(
            gec_aws::ErrorKind::AccessDenied,
            "ListClusters",
            None,
            "no",
        ));
        let lines = documents(
            "NS",
            7,
            &[pass(EAST, plan, vec![]), down],
            summary(PassResult::Error),
            &[],
            false,
        );
        let docs: Vec<Value> = lines.iter().map(|l| parse(l)).collect();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0]["Target"], EAST);
        assert_eq!(docs[0]["PendingActions"], 2.0);
        assert_eq!(docs[0]["PendingRedeploys"], 1.0);
        assert_eq!(docs[0]["TargetErrors"], 0.0);
        // A target that could not be read: an error, and no counts it does not know.
        assert_eq!(docs[1]["Target"], WEST);
        assert_eq!(docs[1]["TargetErrors"], 1.0);
        assert!(docs[1].get("UncoveredTasks").is_none());
        let fleet = &docs[2];
        assert!(fleet.get("Target").is_none());
        assert_eq!(fleet["ReconcileErrors"], 1.0);
        assert_eq!(fleet["FailingTargets"], 1.0);
        assert_eq!(fleet["PendingActions"], 2.0);
        assert_eq!(fleet["RedeploysHalted"], 1.0);
        assert_eq!(fleet["RedeploysInProgress"], 1.0);
        assert_eq!(fleet["PassDuration"], 1.5);
        assert_eq!(fleet["Leader"], 1.0);
    }

    #[test]
    fn a_follower_writes_only_that_it_does_not_lead() {
        use crate::testing::pass;
        let lines = documents(
            "NS",
            7,
            &[pass(EAST, gec_model::TargetPlan::default(), vec![])],
            Summary {
                leader: false,
                ..summary(PassResult::Success)
            },
            &[],
            true,
        );
        assert_eq!(lines.len(), 1);
        let doc = parse(&lines[0]);
        assert_eq!(doc["Leader"], 0.0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Leader", "Unit": "None"}])
        );
    }

    #[test]
    fn namespaces() {
        assert!(check_namespace(DEFAULT_NAMESPACE).is_ok());
        assert!(check_namespace("Team/GuardDuty Controller").is_ok());
        assert!(check_namespace("").is_err());
        assert!(check_namespace(&"a".repeat(256)).is_err());
        assert!(check_namespace("AWS/ECS").is_err());
        assert!(check_namespace(":x").is_err());
        assert!(check_namespace("naïve").is_err());
        assert!(check_namespace("a\nb").is_err());
    }

    #[test]
    fn a_closed_stdout_is_counted_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let counter = lines_counter().unwrap();
        let (tx, rx) = sync_channel(4);
        tx.send(vec!["{}".to_owned(), "{}".to_owned()]).unwrap();
        tx.send(vec!["{}".to_owned()]).unwrap();
        drop(tx);
        write_lines(&rx, || Closed, &counter);
        assert_eq!(counter.with_label_values(&["failed"]).get(), 3);
        assert_eq!(counter.with_label_values(&["written"]).get(), 0);
    }

    #[test]
    fn a_pass_of_five_thousand_targets_is_written_whole() {
        let counter = lines_counter().unwrap();
        let (tx, rx) = sync_channel(QUEUE);
        let lines: Vec<String> = (0..5_001).map(|i| format!("{{\"n\":{i}}}")).collect();
        tx.try_send(lines).unwrap();
        drop(tx);
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        write_lines(&rx, || Sink(std::sync::Arc::clone(&out)), &counter);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 5_001);
        assert!(
            text.ends_with("{\"n\":5000}\n"),
            "the last (fleet) line is there"
        );
        assert_eq!(counter.with_label_values(&["written"]).get(), 5_001);
    }
}
