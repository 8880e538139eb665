//! `run --metrics-emf`: the daemon's stdout lines are CloudWatch Embedded Metric Format
//! documents, checked against the specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>)
//! twice: with check-jsonschema and schemas/emf.schema.json, and by hand for what JSON
//! Schema cannot say (every referenced member present at the root with the right type).
//! Their values match the sandbox's fleet and the daemon's own /metrics.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::kit::daemon::Daemon;
use crate::kit::{repo_path, root, Sandbox};

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
    services:
      - {name: web, cluster: apps, desiredCount: 2}
      - {name: api, cluster: apps, desiredCount: 3}
  us-west-2:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: quiet
"#;

const DESIRED: &str = "version: 1
targets: [{region: us-east-1}, {region: us-west-2}]
clusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]
reconcile: {interval: 1h}
";

const NAMESPACE: &str = "Test/GuardDuty ECS";

/// The units CloudWatch knows (API_MetricDatum).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The specification's rules JSON Schema cannot express, on one document. Returns the
/// document's dimensions (name → value) and metrics (name → value).
fn check_by_hand(
    line: &str,
    after_ms: u64,
    before_ms: u64,
) -> (BTreeMap<String, String>, BTreeMap<String, f64>) {
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let root = doc.as_object().expect("the root is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let ts = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
    assert!(
        (after_ms..=before_ms).contains(&ts),
        "Timestamp {ts} is milliseconds since the epoch of this run: {line}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().expect("an array");
    assert!(!directives.is_empty(), "{line}");
    let (mut dims, mut metrics) = (BTreeMap::new(), BTreeMap::new());
    for d in directives {
        assert_eq!(d["Namespace"], NAMESPACE, "{line}");
        let sets = d["Dimensions"].as_array().expect("Dimensions is an array");
        for set in sets {
            let set = set.as_array().expect("a DimensionSet is an array");
            assert!(set.len() <= 30, "{line}");
            for key in set {
                let key = key.as_str().expect("a dimension key is a string");
                let value = root
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("dimension {key} is no string member: {line}"));
                assert!(!value.is_empty() && value.chars().count() <= 1024, "{line}");
                assert!(
                    value.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()),
                    "CloudWatch dimension values are ASCII: {line}"
                );
                dims.insert(key.to_owned(), value.to_owned());
            }
        }
        let defs = d["Metrics"].as_array().expect("Metrics is an array");
        assert!(!defs.is_empty() && defs.len() <= 100, "{line}");
        for def in defs {
            let name = def["Name"].as_str().expect("Name is a string");
            if let Some(unit) = def.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap_or_default()), "{line}");
            }
            let value = root
                .get(name)
                .unwrap_or_else(|| panic!("metric {name} is no root member: {line}"));
            let value = match value {
                Value::Number(n) => n.as_f64().unwrap(),
                Value::Array(a) => {
                    assert!(a.len() <= 100 && a.iter().all(Value::is_number), "{line}");
                    a.iter().filter_map(Value::as_f64).sum()
                }
                other => panic!("metric {name} is {other}, not a number: {line}"),
            };
            metrics.insert(name.to_owned(), value);
        }
    }
    (dims, metrics)
}

fn check_jsonschema(files: &[std::path::PathBuf]) -> std::process::Output {
    Command::new(root().join("sandbox/.venv/bin/check-jsonschema"))
        .arg("--schemafile")
        .arg(repo_path("schemas/emf.schema.json"))
        .args(files)
        .output()
        .expect("run check-jsonschema")
}

fn sum_series(body: &str, name: &str, label: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_emf_writes_valid_documents_with_the_fleets_values() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    let started = now_ms();
    // A dry run: the fleet stays as seeded, so every pass reports the same values.
    let daemon = Daemon::start(
        &sb,
        &file,
        &[
            "--dry-run",
            "--metrics-emf",
            "--metrics-emf-namespace",
            NAMESPACE,
        ],
    );
    let fleet_line = |d: &Daemon| d.stdout_lines().iter().any(|l| !l.contains("\"Target\""));
    assert!(
        daemon.wait_for(Duration::from_secs(60), fleet_line),
        "no fleet line on stdout: {:?}\n{}",
        daemon.stdout_lines(),
        daemon.logs()
    );
    let lines = daemon.stdout_lines();
    let (_, exposition) = daemon.get("/metrics");
    let ended = now_ms();

    // Every stdout line is an EMF document (the logs go to stderr), valid by hand...
    let mut by_target = BTreeMap::new();
    let mut fleet = Vec::new();
    for line in &lines {
        let (dims, metrics) = check_by_hand(line, started, ended);
        match dims.get("Target") {
            Some(t) => {
                assert_eq!(dims.len(), 1, "{line}");
                by_target.insert(t.clone(), metrics);
            }
            None => {
                assert!(dims.is_empty(), "{line}");
                fleet.push(metrics);
            }
        }
    }
    assert!(
        !daemon.logs().contains("\"_aws\""),
        "EMF lines go to stdout only"
    );
    // ... and by the schema written from the specification.
    let files: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| sb.write(&format!("emf-{i}.json"), l))
        .collect();
    let out = check_jsonschema(&files);
    assert!(
        out.status.success(),
        "EMF lines do not match schemas/emf.schema.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema can fail: a directive without Namespace, or 101 metrics, is refused.
    let mut bad: Value = serde_json::from_str(&lines[0]).unwrap();
    bad["_aws"]["CloudWatchMetrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("Namespace");
    let mut many: Value = serde_json::from_str(&lines[0]).unwrap();
    many["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!((0..101)
        .map(|i| json!({"Name": format!("m{i}")}))
        .collect::<Vec<_>>());
    for (name, doc) in [("no-namespace", bad), ("101-metrics", many)] {
        let f = sb.write(&format!("emf-{name}.json"), &doc.to_string());
        assert!(
            !check_jsonschema(&[f]).status.success(),
            "the schema refuses {name}"
        );
    }

    // One line per target and one for the fleet per pass.
    assert_eq!(
        by_target.keys().collect::<Vec<_>>(),
        ["us-east-1", "us-west-2"]
    );
    let east = &by_target["us-east-1"];
    let west = &by_target["us-west-2"];
    // The fleet's facts, read from the sandbox: apps runs 5 tasks, none with the agent
    // (coverage was off when they started); quiet runs none.
    let tasks = sb.aws("us-east-1").await.running_tasks("apps").await;
    let without_agent = tasks.iter().filter(|t| !t.agent).count();
    assert_eq!(without_agent, 5);
    assert_eq!(east["UncoveredTasks"], 5.0);
    assert_eq!(west["UncoveredTasks"], 0.0);
    // The same values as the Prometheus series the alerts use.
    for (target, m) in [("us-east-1", east), ("us-west-2", west)] {
        let label = format!("target=\"{target}\"");
        assert_eq!(
            m["UncoveredTasks"],
            sum_series(&exposition, "guardduty_controller_uncovered_tasks", &label),
            "{target}"
        );
        let drift = |kind: &str| {
            sum_series(
                &exposition,
                "guardduty_controller_drift",
                &format!("{label},kind=\"{kind}\""),
            ) + sum_series(
                &exposition,
                "guardduty_controller_drift",
                &format!("kind=\"{kind}\",{label}"),
            )
        };
        assert_eq!(
            m["PendingActions"],
            drift("tag") + drift("detector"),
            "{target}"
        );
        assert_eq!(m["PendingRedeploys"], drift("redeploy"), "{target}");
        assert_eq!(m["TargetErrors"], 0.0, "{target}");
        assert_eq!(m["Conflicts"], 0.0, "{target}");
    }
    // Both clusters are to be tagged: pending actions in both targets.
    assert!(east["PendingActions"] >= 1.0 && west["PendingActions"] >= 1.0);
    let f = &fleet[0];
    assert_eq!(f["UncoveredTasks"], 5.0);
    assert_eq!(
        f["PendingActions"],
        east["PendingActions"] + west["PendingActions"]
    );
    assert_eq!(f["Targets"], 2.0);
    assert_eq!(f["FailingTargets"], 0.0);
    assert_eq!(f["ReconcileErrors"], 0.0);
    assert_eq!(f["RedeploysHalted"], 0.0);
    // A dry run writes nothing: this replica is no writer.
    assert_eq!(f["Leader"], 0.0);
    assert!(f["PassDuration"] >= 0.0);
    // Every line seen was counted as written (more may have come since).
    let written = daemon.metric(r#"guardduty_controller_emf_lines_total{result="written"}"#);
    assert!(written >= lines.len() as f64, "{written} < {}", lines.len());
    assert_eq!(
        daemon.metric(r#"guardduty_controller_emf_lines_total{result="dropped"}"#),
        0.0
    );
}

#[test]
fn a_bad_namespace_is_a_usage_error() {
    for ns in ["AWS/ECS", "", "naïve"] {
        let out = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"))
            .args(["run", "--config", "x.yaml", "--metrics-emf-namespace", ns])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{ns}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("namespace"),
            "{ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
