//! A real Prometheus (Debian's `prometheus` package, installed by scripts/test) scrapes the
//! daemon; `promtool check metrics` lints the exposition.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::kit::daemon::{Daemon, HTTP_TIMEOUT};
use crate::kit::http;
use crate::kit::Sandbox;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed: scripts/test installs Debian's prometheus package"
    );
    String::from_utf8_lossy(&found.stdout).trim().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_daemon_and_promtool_finds_no_problem() {
    let (prometheus, promtool) = (tool("prometheus"), tool("promtool"));
    let sb = Sandbox::start();
    sb.seed("regions:\n  us-east-1:\n    detector: {runtimeMonitoring: ENABLED}\n    clusters: [{name: alpha}]\n");
    let file = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]\n",
    );
    let daemon = Daemon::start(&sb, &file, &[]);
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.get("/readyz").0 == 200),
        "{}",
        daemon.logs()
    );

    let (_, exposition) = daemon.get("/metrics");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );
    for name in [
        "process_resident_memory_bytes",
        "guardduty_controller_build_info",
        "guardduty_controller_reconcile_total",
    ] {
        assert!(exposition.contains(name), "{name} missing from /metrics");
    }

    let port = free_port();
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: guardduty-ecs-controller\n    static_configs: [{{targets: ['{}']}}]\n",
            daemon.addr
        ),
    )
    .unwrap();
    let _prom = Killed(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query =
        format!("http://127.0.0.1:{port}/api/v1/query?query=guardduty_controller_reconcile_total");
    let mut last = String::new();
    let found = daemon.wait_for(Duration::from_secs(60), |_| {
        if let Ok((_, body)) = http::get(&query, HTTP_TIMEOUT) {
            last = body;
            let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
            return v["data"]["result"].as_array().is_some_and(|series| {
                series.iter().any(|s| {
                    s["metric"]["result"] == "success"
                        && s["value"][1].as_str().is_some_and(|n| n != "0")
                })
            });
        }
        false
    });
    assert!(found, "Prometheus never saw a successful pass: {last}");
}
