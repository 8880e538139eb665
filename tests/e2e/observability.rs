//! The SRE artefacts in deploy/ name only metrics the daemon really exports: every metric
//! in the alerting rules (and their unit tests) and in the Grafana dashboard's queries is
//! looked up in the `/metrics` of a daemon that has completed a pass against the sandbox,
//! and every controller metric the daemon exports has a place on the dashboard.
//! `scripts/check-observability` checks the same files with promtool (syntax, unit tests).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::kit::daemon::Daemon;
use crate::kit::Sandbox;

const RULES: &str = include_str!("../../deploy/prometheus-alerts.yaml");
const RULE_TESTS: &str = include_str!("../../deploy/prometheus-alerts.test.yaml");
const DASHBOARD: &str = include_str!("../../deploy/grafana-dashboard.json");
const METRICS_RS: &str = include_str!("../../crates/daemon/src/metrics.rs");

const PREFIX: &str = "guardduty_controller_";

/// Metrics registered by the daemon that this test's fleet gives no series (the Rust
/// client prints neither `# HELP` nor `# TYPE` for a vector with no series). A name listed
/// must still be registered in crates/daemon/src/metrics.rs (checked below), so this list
/// cannot hide a typo.
const NO_SERIES_YET: &[&str] = &[
    // Only clusters whose coverage turned off while tasks still run the agent; this
    // fleet has none.
    "guardduty_controller_agent_tasks",
];

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: alpha
      - name: beta
"#;

/// One tag to write, so `actions_total` has a series; a long interval, so the only pass
/// is the one at start.
const DESIRED: &str = "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: alpha, guardDutyManaged: true}\nreconcile: {interval: 1h}\n";

/// Identifiers (`[a-zA-Z_:][a-zA-Z0-9_:]*`) that name a controller or process metric.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.split(|c: char| !is_ident(c))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .map(|word| word.trim_end_matches(':'))
        .filter(|word| word.starts_with(PREFIX) || word.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// The `expr:` of every rule: a one-line value or a block scalar (`expr: |`).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        i += 1;
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with(['|', '>']) {
            exprs.push(value.to_owned());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() {
            let next = lines[i];
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty() && next_indent <= indent {
                break;
            }
            block.push_str(next.trim());
            block.push('\n');
            i += 1;
        }
        exprs.push(block);
    }
    exprs
}

/// Every `expr` string in the dashboard (panel targets).
fn dashboard_exprs(node: &serde_json::Value, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(s) if key == "expr" => out.push(s.clone()),
                    _ => dashboard_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// What `/metrics` exposes: the `# TYPE` of each metric, and the name of each sample.
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut types = BTreeMap::new();
        let mut samples = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_owned());
            }
        }
        Exposition { types, samples }
    }

    /// The name is exported: a sample of that name, a `# TYPE` line, or the
    /// `_bucket`/`_sum`/`_count` series of an exported histogram (or summary).
    fn has(&self, name: &str) -> bool {
        self.samples.contains(name)
            || self.types.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix).is_some_and(|base| {
                    matches!(
                        self.types.get(base).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                })
            })
    }
}

#[test]
fn the_extractors_find_every_rule_and_panel_query() {
    let alerts = RULES
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    let exprs = rule_exprs(RULES);
    assert_eq!(exprs.len(), alerts, "one expr per alert: {exprs:#?}");
    assert!(alerts >= 8, "the eight alerts of issue 6");
    for expr in &exprs {
        assert!(
            !metric_names(expr).is_empty() || expr.contains("up{"),
            "an alert expression names no metric: {expr}"
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let mut queries = Vec::new();
    dashboard_exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "panel queries: {queries:#?}");
    for query in &queries {
        assert!(
            !metric_names(query).is_empty(),
            "a panel query names no metric: {query}"
        );
    }
    assert_eq!(
        metric_names("rate(guardduty_controller_x_bucket{a=\"b\"}[5m]) / process_y and foo_process_z 9guardduty_controller_w"),
        ["guardduty_controller_x_bucket", "process_y"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}

#[test]
fn every_metric_in_the_alerts_and_the_dashboard_is_exported_by_the_daemon() {
    // The allowlist only covers metrics the daemon registers.
    for name in NO_SERIES_YET {
        let short = name
            .strip_prefix(PREFIX)
            .expect("allowlisted names carry the prefix");
        assert!(
            METRICS_RS.contains(&format!("\"{short}\"")),
            "{name} is allowlisted but crates/daemon/src/metrics.rs does not register it"
        );
    }

    let sb = Sandbox::start();
    sb.seed(FLEET);
    let file = sb.write("desired.yaml", DESIRED);
    let daemon = Daemon::start(&sb, &file, &[]);
    let success = r#"guardduty_controller_reconcile_total{result="success"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| d.metric(success) >= 1.0),
        "no successful pass: {}",
        daemon.logs()
    );
    // The first pass tags `alpha` and reads nothing again (the write's answer is the
    // check), so GuardDuty's coverage of it is read by the next pass.
    daemon.signal("HUP");
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| d.metric(success) >= 2.0),
        "no second pass: {}",
        daemon.logs()
    );
    let (status, body) = daemon.get("/metrics");
    assert_eq!(status, 200, "{body}");
    let live = Exposition::parse(&body);

    // Where each name is used, for the failure message.
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let mut queries = Vec::new();
    dashboard_exprs(&dashboard, &mut queries);
    let sources: [(&str, BTreeSet<String>); 5] = [
        (
            "deploy/prometheus-alerts.yaml (expr)",
            metric_names(&rule_exprs(RULES).join("\n")),
        ),
        ("deploy/prometheus-alerts.yaml", metric_names(RULES)),
        (
            "deploy/prometheus-alerts.test.yaml",
            metric_names(RULE_TESTS),
        ),
        (
            "deploy/grafana-dashboard.json (expr)",
            metric_names(&queries.join("\n")),
        ),
        ("deploy/grafana-dashboard.json", metric_names(DASHBOARD)),
    ];
    let mut missing = Vec::new();
    let mut checked = BTreeSet::new();
    for (source, names) in &sources {
        for name in names {
            checked.insert(name.clone());
            if !live.has(name) && !NO_SERIES_YET.contains(&name.as_str()) {
                missing.push(format!("{name} (in {source})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metrics named in deploy/ but not in /metrics:\n  {}\n--- /metrics\n{body}",
        missing.join("\n  ")
    );
    println!(
        "{} metric names checked against /metrics: {checked:?}",
        checked.len()
    );

    // The allowlist holds nothing stale: each name is used, and once it has series it is
    // simply found in /metrics (then it can leave the list).
    for name in NO_SERIES_YET {
        assert!(checked.contains(*name), "{name} is allowlisted but unused");
        if live.has(name) {
            println!("{name} now has series: it can leave NO_SERIES_YET");
        }
    }

    // The other way round: every controller metric has a place on the dashboard.
    let on_dashboard = metric_names(DASHBOARD);
    let absent: Vec<&String> = live
        .types
        .keys()
        .filter(|name| name.starts_with(PREFIX))
        .filter(|name| {
            !on_dashboard.contains(*name)
                && !["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| on_dashboard.contains(&format!("{name}{s}")))
        })
        .collect();
    assert!(
        absent.is_empty(),
        "exported but on no panel of deploy/grafana-dashboard.json: {absent:?}"
    );
}
