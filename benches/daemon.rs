//! Daemon benchmark (not a test): file-edit → tag-visible-in-AWS latency over 20 edits,
//! and the daemon's memory after 100 passes over 1,000 clusters, against the local
//! sandbox. Run: `cargo bench --bench daemon`.

// The end-to-end tests' harness; a bench uses only part of it.
#[path = "../tests/e2e/kit/mod.rs"]
#[allow(dead_code)]
mod kit;

use std::time::{Duration, Instant};

use kit::daemon::{replace_file, Daemon};
use kit::Sandbox;

const CLUSTERS: usize = 1000;
const EDITS: usize = 20;
const PASSES: usize = 100;

/// Ceilings for this bench's mass changes (`run` flags).
const CEILINGS: &[&str] = &[
    "--max-cluster-changes-ceiling",
    "5000",
    "--max-coverage-loss-ceiling",
    "1",
];

fn desired(first: &str) -> String {
    format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\nclusters:\n  - {{name: bench-0000, guardDutyManaged: {first}}}\n  - {{match: {{namePattern: 'bench-*'}}, guardDutyManaged: true}}\nreconcile: {{interval: 1h}}\n"
    )
}

fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let sb = Sandbox::start();
    sb.seed(&format!(
        "regions:\n  us-east-1:\n    detector: {{runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}}\n    generate: [{{name: 'bench-{{i:04d}}', count: {CLUSTERS}}}]\n"
    ));
    let file = sb.write("desired.yaml", &desired("true"));
    // Every edit flips most of the fleet: the ceilings are raised where the controller
    // runs (the file cannot raise them).
    let daemon = Daemon::start(&sb, &file, CEILINGS);
    let success = r#"guardduty_controller_reconcile_total{result="success"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(300), |d| d.metric(success) >= 1.0),
        "{}",
        daemon.logs()
    );

    let ecs = aws_sdk_ecs::Client::new(&sb.sdk("us-east-1").await);
    let tag_of = |ecs: aws_sdk_ecs::Client| async move {
        let out = ecs
            .describe_clusters()
            .clusters("bench-0000")
            .include(aws_sdk_ecs::types::ClusterField::Tags)
            .send()
            .await
            .expect("DescribeClusters");
        out.clusters()[0]
            .tags()
            .iter()
            .find(|t| t.key() == Some("GuardDutyManaged"))
            .and_then(|t| t.value().map(str::to_owned))
    };
    let mut delays = Vec::new();
    for i in 0..EDITS {
        let want = if i % 2 == 0 { "false" } else { "true" };
        let start = Instant::now();
        replace_file(&file, &desired(want));
        loop {
            if tag_of(ecs.clone()).await.as_deref() == Some(want) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "edit {i} not applied: {}",
                daemon.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        delays.push(start.elapsed());
    }
    delays.sort();

    let before = daemon.metric(success);
    let passes_start = Instant::now();
    for n in 1..=PASSES {
        daemon.signal("HUP");
        let target = before + n as f64;
        assert!(
            daemon.wait_for(Duration::from_secs(60), |d| d.metric(success) >= target),
            "{}",
            daemon.logs()
        );
    }
    let per_pass = passes_start.elapsed() / PASSES as u32;
    let (rss, peak) = (kib(daemon.pid(), "VmRSS:"), kib(daemon.pid(), "VmHWM:"));

    println!("daemon benchmark: {CLUSTERS} clusters, 1 region, local sandbox");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| file edit -> tag visible, median of {EDITS} | {:?} |",
        percentile(&delays, 0.5)
    );
    println!(
        "| file edit -> tag visible, max of {EDITS} | {:?} |",
        delays[delays.len() - 1]
    );
    println!("| steady-state pass (SIGHUP -> counted), mean of {PASSES} | {per_pass:?} |");
    println!(
        "| RSS after {PASSES} more passes | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    println!("| peak RSS (VmHWM) | {:.1} MiB |", peak as f64 / 1024.0);
}
