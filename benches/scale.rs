//! Scale benchmark (not a test): for fleets of 20 to 10,000 clusters and up to 100,000
//! tasks against the local sandbox, the AWS requests of a pass per operation next to the
//! fewest requests that pass could make at AWS's batch sizes, the wall time, and the
//! controller's memory. Run: `scripts/bench` (or `cargo bench --bench scale`).
//!
//! Environment: `GEC_BENCH_QUICK=1` (one run, fleets a tenth the size: a smoke test),
//! `GEC_BENCH_ONLY=a,d` (only these scenarios), `GEC_BENCH_RUNS=N` (default 3; the
//! table shows the median).
//!
//! How a pass is measured: `plan`/`apply` are one-shot processes that describe every task
//! again (no cache across processes), so steady state is a later pass of a daemon
//! (`run --dry-run`): clear the sandbox's request log, send SIGHUP, wait until the
//! daemon logs `pass finished` for it, read the log. Each run is a fresh daemon (its first
//! pass is the cold one: AssumeRole, ListDetectors, every task described) followed by
//! one measured steady-state pass. Wall time of a daemon pass is the daemon's own measure
//! (`seconds` of that log line, as `reconcile_duration_seconds`); peak RSS is its VmHWM
//! (`/proc/<pid>/status`) after both passes and one `/metrics` scrape, idle RSS its VmRSS
//! a few seconds later. `apply` (scenario a) runs as a process of its own: wall time from
//! start to exit, VmHWM sampled every 2 ms.

// The end-to-end tests' harness; a bench uses only part of it.
#[path = "../tests/e2e/kit/mod.rs"]
#[allow(dead_code)]
mod kit;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kit::daemon::Daemon;
use kit::Sandbox;

// AWS batch sizes (API reference maxima), as the controller uses them.
const LIST_CLUSTERS_PAGE: u64 = 100;
const DESCRIBE_CLUSTERS_BATCH: u64 = 100;
const LIST_TASKS_PAGE: u64 = 100;
const DESCRIBE_TASKS_BATCH: u64 = 100;
const DESCRIBE_SERVICES_BATCH: u64 = 10;
const LIST_COVERAGE_PAGE: u64 = 50;
const TAG_BATCH: u64 = 20;
/// CodeDeploy: `ListApplications` and `ListDeploymentGroups` take no page size and AWS
/// documents none (the sandbox, moto, answers in one page); 100 is assumed, a floor for
/// the fleets here either way (at most 20 applications, 5 groups each).
const LIST_APPLICATIONS_PAGE: u64 = 100;
const LIST_DEPLOYMENT_GROUPS_PAGE: u64 = 100;
const BATCH_GET_APPLICATIONS_BATCH: u64 = 100;
const BATCH_GET_DEPLOYMENT_GROUPS_BATCH: u64 = 100;
const BATCH_GET_DEPLOYMENTS_BATCH: u64 = 25;

/// The limits of issue 7.
const MAX_STEADY_RATIO: f64 = 1.1;
/// Issue 12: initial tagging with `apply` reads nothing again after writing.
const MAX_APPLY_RATIO: f64 = 1.05;
const MAX_PEAK_MIB_100K_TASKS: f64 = 150.0;
const MAX_IDLE_MIB_1000_CLUSTERS: f64 = 30.0;

const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];

/// Requests made, per operation.
type Ops = BTreeMap<String, u64>;
/// The fewest requests, per operation.
type Minimum = BTreeMap<&'static str, u64>;

/// What one target (account and region) holds, as far as the minimum depends on it.
#[derive(Debug, Clone, Default)]
struct TargetFleet {
    /// Clusters in the account and region (every rule is a `match`: all are listed).
    clusters: u64,
    /// Every rule is an exact name (no ListClusters).
    exact_names_only: bool,
    /// The target has a `roleArn`.
    role: bool,
    /// RUNTIME_MONITORING is ENABLED before the pass.
    monitoring_on: bool,
    /// Clusters GuardDuty covers before the pass (ListCoverage records).
    covered: u64,
    /// Managed clusters whose coverage is or turns on (the controller reads their tasks
    /// and GuardDuty's coverage).
    managed_covered: u64,
    /// Of those, clusters with running tasks, and their tasks each.
    task_clusters: u64,
    tasks_per_cluster: u64,
    /// Services per such cluster with a RUNNING task without the agent.
    services_without_agent: u64,
    /// Of the task clusters, those GuardDuty reports UNHEALTHY (some task lacks a running
    /// agent), and the tasks whose agent RUNS in each: the task cache reads them again.
    unhealthy_task_clusters: u64,
    agent_tasks_per_cluster: u64,
    /// Distinct task-definition revisions, and distinct execution roles among them, of
    /// the services preflight checks (those owning a task without a running agent).
    preflight_task_definitions: u64,
    preflight_roles: u64,
    /// Tag writes and detector writes the pass must make.
    tag_true: u64,
    tag_false: u64,
    untag: u64,
    detector_update: bool,
    /// CodeDeploy applications of compute platform ECS in the target, and deployment
    /// groups in each (the adapter's map of groups, built on the first pass).
    codedeploy_apps: u64,
    groups_per_app: u64,
    /// CODE_DEPLOY services the pass describes (each lacks the agent somewhere), and the
    /// deployment ids each one's two `ListDeployments` return (active or of the last hour).
    codedeploy_services: u64,
    deployments_per_service: u64,
}

fn ceil(n: u64, d: u64) -> u64 {
    n.div_ceil(d)
}

/// The fewest requests one pass over `t` can make, per operation. `cold`: the first pass
/// of a process, which knows nothing yet (role credentials, detector id, tasks).
///
/// - ListClusters: ceil(clusters/100), at least 1, unless every rule is an exact name.
/// - DescribeClusters: ceil(clusters/100).
/// - AssumeRole: 1 per `roleArn` target, cold only (credentials are kept and refreshed).
/// - ListDetectors: cold only. A detector id never changes, so a process that knows it
///   reads the detector with GetDetector alone (and lists again only if that fails).
/// - GetDetector: 1 (the features can change any time).
/// - ListTasks: ceil(tasks/100) per managed covered cluster with running tasks (a cluster
///   DescribeClusters reports without running tasks needs none).
/// - DescribeTasks: cold ceil(tasks/100) per such cluster; steady ceil(tasks whose agent
///   runs/100) per such cluster GuardDuty reports UNHEALTHY (an agent that stops there is
///   seen within one pass), else 0 (what a task is never changes; a missing or STOPPED
///   agent never comes back).
/// - DescribeServices: ceil(services with a task lacking the agent/10) per such cluster.
/// - ListCoverage: ceil(covered clusters/50), at least 1, when RUNTIME_MONITORING is on
///   and some managed cluster is or turns covered (none can be covered while it is off).
/// - DescribeTaskDefinition: cold 1 per distinct task-definition revision among the
///   services preflight checks; steady 0 (a revision never changes).
/// - SimulatePrincipalPolicy: cold 1 per distinct execution role among them; steady 0
///   (an answer is kept for 10 minutes, longer than a measured pass).
/// - TagResources: ceil(changes/20) per tag value; UntagResources: ceil(removals/20).
/// - UpdateDetector: 1 when the detector changes.
/// - CodeDeploy, cold only (the map of deployment groups is kept 5 minutes, and a service
///   it names never makes it listed again): ListApplications ceil(apps/100), at least 1,
///   when some CODE_DEPLOY service is described; BatchGetApplications ceil(apps/100);
///   ListDeploymentGroups ceil(groups/100), at least 1, per ECS application;
///   BatchGetDeploymentGroups ceil(groups/100) per ECS application.
/// - CodeDeploy, every pass: ListDeployments 2 per described CODE_DEPLOY service (the
///   active ones, those of the last hour); BatchGetDeployments ceil(ids/25) per such
///   service with any.
fn minimum(t: &TargetFleet, cold: bool) -> BTreeMap<&'static str, u64> {
    let per_task_cluster = |n: u64| t.task_clusters * n;
    let rows = [
        (
            "ListClusters",
            if t.exact_names_only {
                0
            } else {
                ceil(t.clusters, LIST_CLUSTERS_PAGE).max(1)
            },
        ),
        (
            "DescribeClusters",
            ceil(t.clusters, DESCRIBE_CLUSTERS_BATCH),
        ),
        ("AssumeRole", u64::from(cold && t.role)),
        ("ListDetectors", u64::from(cold)),
        // Once to observe, and once more for each detector update: UpdateDetector must send
        // every additional configuration, so the adapter reads them right before writing.
        ("GetDetector", 1 + u64::from(t.detector_update)),
        (
            "ListTasks",
            per_task_cluster(ceil(t.tasks_per_cluster, LIST_TASKS_PAGE).max(1)),
        ),
        (
            "DescribeTasks",
            if cold {
                per_task_cluster(ceil(t.tasks_per_cluster, DESCRIBE_TASKS_BATCH))
            } else {
                t.unhealthy_task_clusters * ceil(t.agent_tasks_per_cluster, DESCRIBE_TASKS_BATCH)
            },
        ),
        (
            "DescribeTaskDefinition",
            if cold {
                t.preflight_task_definitions
            } else {
                0
            },
        ),
        (
            "SimulatePrincipalPolicy",
            if cold { t.preflight_roles } else { 0 },
        ),
        (
            "DescribeServices",
            per_task_cluster(ceil(t.services_without_agent, DESCRIBE_SERVICES_BATCH)),
        ),
        (
            "ListCoverage",
            if t.monitoring_on && t.managed_covered > 0 {
                ceil(t.covered, LIST_COVERAGE_PAGE).max(1)
            } else {
                0
            },
        ),
        (
            "TagResources",
            ceil(t.tag_true, TAG_BATCH) + ceil(t.tag_false, TAG_BATCH),
        ),
        ("UntagResources", ceil(t.untag, TAG_BATCH)),
        ("UpdateDetector", u64::from(t.detector_update)),
        (
            "ListApplications",
            if cold && t.codedeploy_services > 0 {
                ceil(t.codedeploy_apps, LIST_APPLICATIONS_PAGE).max(1)
            } else {
                0
            },
        ),
        (
            "BatchGetApplications",
            if cold && t.codedeploy_services > 0 {
                ceil(t.codedeploy_apps, BATCH_GET_APPLICATIONS_BATCH)
            } else {
                0
            },
        ),
        (
            "ListDeploymentGroups",
            if cold && t.codedeploy_services > 0 {
                t.codedeploy_apps * ceil(t.groups_per_app, LIST_DEPLOYMENT_GROUPS_PAGE).max(1)
            } else {
                0
            },
        ),
        (
            "BatchGetDeploymentGroups",
            if cold && t.codedeploy_services > 0 {
                t.codedeploy_apps * ceil(t.groups_per_app, BATCH_GET_DEPLOYMENT_GROUPS_BATCH)
            } else {
                0
            },
        ),
        ("ListDeployments", 2 * t.codedeploy_services),
        (
            "BatchGetDeployments",
            t.codedeploy_services * ceil(t.deployments_per_service, BATCH_GET_DEPLOYMENTS_BATCH),
        ),
    ];
    rows.into_iter().filter(|(_, n)| *n > 0).collect()
}

fn fleet_minimum(targets: &[TargetFleet], cold: bool) -> BTreeMap<&'static str, u64> {
    let mut total = BTreeMap::new();
    for t in targets {
        for (op, n) in minimum(t, cold) {
            *total.entry(op).or_insert(0) += n;
        }
    }
    total
}

/// How a scenario is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// `apply` once on a fresh fleet (a new sandbox per run).
    InitialApply,
    /// A daemon's steady-state pass (`run --dry-run`).
    Steady,
}

struct Scenario {
    key: &'static str,
    title: String,
    fleet: String,
    desired: String,
    targets: Vec<TargetFleet>,
    drive: Drive,
    /// The RSS limit this scenario checks (full runs only): (limit MiB, idle RSS
    /// instead of peak).
    rss_limit: Option<(f64, bool)>,
    /// Measure the daemon's idle RSS after its passes ((f)).
    idle: bool,
    /// The most requests the scenario may make, as a multiple of its minimum.
    max_ratio: Option<f64>,
}

/// Clusters of each (account, region) pair when `total` are spread over `pairs`.
fn spread(total: u64, pairs: u64) -> Vec<u64> {
    (0..pairs)
        .map(|i| total / pairs + u64::from(i < total % pairs))
        .collect()
}

/// The fleet is tagged in one pass: the safety limits' ceilings are raised where the
/// controller runs ([`CEILINGS`]), since the file cannot raise them.
const RECONCILE: &str = "reconcile: {interval: 1h}\n";
/// Ceilings of the safety limits for every controller run of the bench.
const CEILINGS: [(&str, &str); 2] = [
    ("GEC_MAX_CLUSTER_CHANGES_CEILING", "100000"),
    ("GEC_MAX_COVERAGE_LOSS_CEILING", "1"),
];

fn desired(targets: &str, rule: &str) -> String {
    format!(
        "version: 1\ntargets:\n{targets}detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}}\nclusters:\n  - {{match: {{namePattern: '{rule}'}}, guardDutyManaged: true}}\n{RECONCILE}"
    )
}

/// One region of the default account: `clusters` clusters named `fleet-NNNNN`.
fn one_region_fleet(clusters: u64, monitoring: &str, tagged: bool, workload: &str) -> String {
    let tags = if tagged {
        ", tags: {GuardDutyManaged: 'true'}"
    } else {
        ""
    };
    format!(
        "regions:\n  us-east-1:\n    detector: {{runtimeMonitoring: {monitoring}, ecsFargateAgentManagement: DISABLED}}\n    generate:\n      - {{name: 'fleet-{{i:05d}}', count: {clusters}{tags}{workload}}}\n"
    )
}

/// `total` clusters over 3 accounts x 4 regions, tagged `true`, monitoring on; targets
/// with a roleArn each.
fn multi_account(total: u64, workload: &str) -> (String, String, Vec<u64>) {
    let counts = spread(total, (ACCOUNTS.len() * REGIONS.len()) as u64);
    let mut fleet = String::from("accounts:\n");
    let mut targets = String::new();
    let mut i = 0;
    for account in ACCOUNTS {
        fleet.push_str(&format!("  \"{account}\":\n    regions:\n"));
        for region in REGIONS {
            fleet.push_str(&format!(
                "      {region}:\n        detector: {{runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}}\n        generate:\n          - {{name: 'fleet-{{i:05d}}', count: {}, tags: {{GuardDutyManaged: 'true'}}{workload}}}\n",
                counts[i]
            ));
            targets.push_str(&format!(
                "  - {{region: {region}, roleArn: 'arn:aws:iam::{account}:role/x'}}\n"
            ));
            i += 1;
        }
    }
    (fleet, desired(&targets, "fleet-*"), counts)
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let k = if quick { 10 } else { 1 };
    let one_target = "  - {region: us-east-1}\n";
    let mut out = Vec::new();

    // (a) initial tagging: 1,000 untagged clusters, RUNTIME_MONITORING off -> on.
    let n = 1000 / k;
    out.push(Scenario {
        key: "a",
        title: format!("{n} clusters, 1 region: initial tagging (`apply`)"),
        fleet: one_region_fleet(n, "DISABLED", false, ""),
        desired: desired(one_target, "fleet-*"),
        targets: vec![TargetFleet {
            clusters: n,
            managed_covered: n,
            tag_true: n,
            detector_update: true,
            ..TargetFleet::default()
        }],
        drive: Drive::InitialApply,
        rss_limit: None,
        idle: false,
        max_ratio: Some(MAX_APPLY_RATIO),
    });

    // (b) the same fleet in steady state; (f) is its daemon's idle RSS.
    let steady_one = |n: u64| TargetFleet {
        clusters: n,
        monitoring_on: true,
        covered: n,
        managed_covered: n,
        ..TargetFleet::default()
    };
    out.push(Scenario {
        key: "b",
        title: format!("{n} clusters, 1 region: steady state (+ (f) idle RSS)"),
        fleet: one_region_fleet(n, "ENABLED", true, ""),
        desired: desired(one_target, "fleet-*"),
        targets: vec![steady_one(n)],
        drive: Drive::Steady,
        rss_limit: (!quick).then_some((MAX_IDLE_MIB_1000_CLUSTERS, true)),
        idle: true,
        max_ratio: Some(MAX_STEADY_RATIO),
    });

    // (c) 10,000 clusters, 4 regions x 3 accounts, steady state.
    let total = 10_000 / k;
    let (fleet, desired_c, counts) = multi_account(total, "");
    out.push(Scenario {
        key: "c",
        title: format!(
            "{total} clusters, 4 regions x 3 accounts (12 roleArn targets): steady state"
        ),
        fleet,
        desired: desired_c,
        targets: counts
            .iter()
            .map(|&n| TargetFleet {
                role: true,
                ..steady_one(n)
            })
            .collect(),
        drive: Drive::Steady,
        rss_limit: None,
        idle: false,
        max_ratio: Some(MAX_STEADY_RATIO),
    });

    // (d) 200 clusters x 10 services x 3 tasks, coverage on; 2 services per cluster run
    // tasks from before coverage (no agent).
    let n = 200 / k;
    let workload = ", workload: {services: [{name: 'svc-{j:02d}', count: 8, desiredCount: 3}, {name: 'old-{j}', count: 2, desiredCount: 3, agent: false}]}";
    out.push(Scenario {
        key: "d",
        title: format!(
            "{n} clusters x 10 services x 3 tasks, 1 region, coverage on (2 services per cluster lack the agent): steady state"
        ),
        fleet: one_region_fleet(n, "ENABLED", true, workload),
        desired: desired(one_target, "fleet-*"),
        targets: vec![TargetFleet {
            task_clusters: n,
            tasks_per_cluster: 30,
            services_without_agent: 2,
            // The 2 services without the agent make every cluster UNHEALTHY; the other 8
            // run 24 tasks with the agent.
            unhealthy_task_clusters: n,
            agent_tasks_per_cluster: 24,
            // Every bulk service runs the sandbox's one bulk task definition, whose
            // execution role (`gec-sandbox-task-execution`) is simulated once.
            preflight_task_definitions: 1,
            preflight_roles: 1,
            ..steady_one(n)
        }],
        drive: Drive::Steady,
        rss_limit: None,
        idle: false,
        max_ratio: Some(MAX_STEADY_RATIO),
    });

    // (e) memory: (c) with 10 tasks per cluster (2 services x 4 tasks + 2 standalone).
    let workload = ", workload: {services: [{name: 'svc-{j}', count: 2, desiredCount: 4}], standaloneTasks: [{count: 2}]}";
    let (fleet, desired_e, counts) = multi_account(total, workload);
    out.push(Scenario {
        key: "e",
        title: format!(
            "{total} clusters, {} tasks, 4 regions x 3 accounts: steady state, peak RSS",
            total * 10
        ),
        fleet,
        desired: desired_e,
        targets: counts
            .iter()
            .map(|&n| TargetFleet {
                role: true,
                task_clusters: n,
                tasks_per_cluster: 10,
                ..steady_one(n)
            })
            .collect(),
        drive: Drive::Steady,
        rss_limit: (!quick).then_some((MAX_PEAK_MIB_100K_TASKS, false)),
        idle: false,
        max_ratio: Some(MAX_STEADY_RATIO),
    });

    // (g) issue 14: 20 clusters x 5 CODE_DEPLOY services x 2 tasks, coverage on, none of
    // the tasks has the agent (started before coverage). The seed gives each cluster the
    // ECS CodeDeploy application `gec-<cluster>` and each service a deployment group named
    // after it; no deployment yet.
    let n = (20 / k).max(1);
    let workload = ", workload: {services: [{name: 'dg-{j}', count: 5, desiredCount: 2, agent: false, deploymentController: CODE_DEPLOY}]}";
    out.push(Scenario {
        key: "g",
        title: format!(
            "{n} clusters x 5 CODE_DEPLOY services x 2 tasks, 1 region, coverage on, no task has the agent: steady state"
        ),
        fleet: one_region_fleet(n, "ENABLED", true, workload),
        desired: desired(one_target, "fleet-*"),
        targets: vec![TargetFleet {
            task_clusters: n,
            tasks_per_cluster: 10,
            services_without_agent: 5,
            // Every task lacks the agent: every cluster is UNHEALTHY, none has a task whose
            // agent runs (nothing to describe again in steady state).
            unhealthy_task_clusters: n,
            agent_tasks_per_cluster: 0,
            // The bulk services share one task definition and its execution role.
            preflight_task_definitions: 1,
            preflight_roles: 1,
            codedeploy_apps: n,
            groups_per_app: 5,
            codedeploy_services: n * 5,
            deployments_per_service: 0,
            ..steady_one(n)
        }],
        drive: Drive::Steady,
        rss_limit: None,
        idle: false,
        max_ratio: Some(MAX_STEADY_RATIO),
    });
    out
}

/// One measured pass.
#[derive(Debug, Clone, Default)]
struct Pass {
    ops: BTreeMap<String, u64>,
    wall: Duration,
    /// CPU time (user + system) the controller process spent on it.
    cpu: Duration,
}

#[derive(Debug, Clone, Default)]
struct RunResult {
    cold: Option<Pass>,
    measured: Pass,
    peak_kib: u64,
    idle_kib: Option<u64>,
}

fn kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// User + system CPU time of a process so far (`/proc/<pid>/stat`, clock ticks of 10 ms:
/// Linux's USER_HZ is 100).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses, which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Requests per operation in the sandbox's request log. (Read here, not with
/// `Sandbox::requests`: the log of a first pass over 100,000 tasks is larger than the
/// body limit there.)
fn op_counts(sb: &Sandbox) -> Ops {
    let body = get_all(&format!("{}/_sandbox/requests", sb.url));
    let log: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("request log is JSON");
    let mut counts = BTreeMap::new();
    for r in log {
        let op = r["operation"].as_str().unwrap_or_default().to_owned();
        *counts.entry(op).or_insert(0) += 1;
    }
    counts
}

/// GETs a sandbox URL and reads the whole body, however large (the hyper client the AWS
/// SDK brings; no second HTTP client).
fn get_all(url: &str) -> Vec<u8> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let client: Client<HttpConnector, Empty<hyper::body::Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
        let resp = client
            .get(url.parse().expect("a sandbox URL"))
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            resp.status().is_success(),
            "GET {url}: HTTP {}",
            resp.status()
        );
        let body = resp.into_body().collect().await;
        body.unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .to_bytes()
            .to_vec()
    })
}

/// `apply` once, sampling the process's VmHWM until it exits.
fn apply_once(sb: &Sandbox, config: &std::path::Path) -> RunResult {
    sb.clear_requests();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guardduty-ecs-controller"));
    cmd.args(["apply", "--output", "json", "--config"])
        .arg(config)
        .current_dir(kit::root());
    let mut env = vec![("AWS_ENDPOINT_URL", sb.url.as_str())];
    env.extend(CEILINGS);
    kit::hermetic_env(&mut cmd, &env);
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start apply");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (mut peak, mut cpu) = (0, Duration::ZERO);
    let status = loop {
        if let Some(v) = kib(pid, "VmHWM:") {
            peak = peak.max(v);
        }
        if let Some(t) = cpu_time(pid) {
            cpu = cpu.max(t);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(
        status.code(),
        Some(0),
        "apply did not converge:\n{stdout}\n{stderr}"
    );
    RunResult {
        cold: None,
        measured: Pass {
            ops: op_counts(sb),
            wall,
            cpu,
        },
        peak_kib: peak,
        idle_kib: None,
    }
}

/// Waits for the daemon's log line `pass finished` of pass `id` (1 = the first); the
/// pass must have succeeded. Returns its duration as the daemon measured it. (The log,
/// not `/metrics`: scraping 10,000 clusters' gauges every few milliseconds would add the
/// scrapes' memory and CPU to what is measured.)
fn wait_pass(daemon: &Daemon, id: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let logs = daemon.logs();
        let finished = logs.lines().rev().find_map(|line| {
            if !line.contains("pass finished") {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["span"]["pass_id"].as_u64() == Some(id)).then(|| {
                (
                    v["fields"]["result"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    v["fields"]["seconds"].as_f64().unwrap_or_default(),
                )
            })
        });
        if let Some((result, seconds)) = finished {
            assert_eq!(
                result,
                "success",
                "pass {id} did not succeed; last log lines:\n{}",
                tail(&logs, 20)
            );
            return Duration::from_secs_f64(seconds);
        }
        assert!(
            start.elapsed() < limit,
            "pass {id} did not finish within {limit:?}; last log lines:\n{}",
            tail(&logs, 20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh dry-run daemon: its first (cold) pass, then one steady-state pass.
fn daemon_once(sb: &Sandbox, config: &std::path::Path, idle: bool) -> RunResult {
    let limit = Duration::from_secs(1800);
    sb.clear_requests();
    let daemon = Daemon::start(
        sb,
        config,
        &[
            "--dry-run",
            "--max-cluster-changes-ceiling",
            CEILINGS[0].1,
            "--max-coverage-loss-ceiling",
            CEILINGS[1].1,
        ],
    );
    let wall = wait_pass(&daemon, 1, limit);
    let cpu_before = cpu_time(daemon.pid()).unwrap_or_default();
    let cold = Pass {
        ops: op_counts(sb),
        wall,
        cpu: cpu_before,
    };
    sb.clear_requests();
    daemon.signal("HUP");
    let wall = wait_pass(&daemon, 2, limit);
    let cpu = cpu_time(daemon.pid()).unwrap_or_default() - cpu_before;
    let measured = Pass {
        ops: op_counts(sb),
        wall,
        cpu,
    };
    // One scrape, as Prometheus would make between passes: its memory counts.
    let (status, _) = daemon.get("/metrics");
    assert_eq!(status, 200, "/metrics");
    let peak_kib = kib(daemon.pid(), "VmHWM:").unwrap_or(0);
    let idle_kib = idle.then(|| {
        std::thread::sleep(Duration::from_secs(3));
        kib(daemon.pid(), "VmRSS:").unwrap_or(0)
    });
    RunResult {
        cold: Some(cold),
        measured,
        peak_kib,
        idle_kib,
    }
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

fn median_ops(passes: &[&Pass]) -> BTreeMap<String, u64> {
    let mut ops: Vec<String> = passes.iter().flat_map(|p| p.ops.keys().cloned()).collect();
    ops.sort();
    ops.dedup();
    ops.into_iter()
        .map(|op| {
            let n = median(
                passes
                    .iter()
                    .map(|p| p.ops.get(&op).copied().unwrap_or(0))
                    .collect(),
            );
            (op, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn median_wall(passes: &[&Pass]) -> Duration {
    median(passes.iter().map(|p| p.wall).collect())
}

struct Measured {
    key: &'static str,
    title: String,
    seed: Duration,
    seeded: String,
    ops: BTreeMap<String, u64>,
    min: BTreeMap<&'static str, u64>,
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
    idle_kib: Option<u64>,
    /// The daemon's first pass: requests, their minimum, wall time, CPU time of the
    /// process so far (start included).
    cold: Option<(Ops, Minimum, Duration, Duration)>,
    runs: usize,
    spread: String,
}

fn total<K>(m: &BTreeMap<K, u64>) -> u64 {
    m.values().sum()
}

fn ratio(ops: &BTreeMap<String, u64>, min: &BTreeMap<&'static str, u64>) -> f64 {
    total(ops) as f64 / total(min).max(1) as f64
}

fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn run_scenario(s: &Scenario, runs: usize) -> Measured {
    eprintln!("== ({}) {}", s.key, s.title);
    let mut results = Vec::new();
    let mut seed_times = Vec::new();
    let mut seeded = String::new();
    let mut keep = None;
    for run in 0..runs {
        // `apply` changes the fleet: a fresh sandbox per run. Daemons in dry-run change
        // nothing: one sandbox, a fresh daemon per run.
        if run == 0 || s.drive == Drive::InitialApply {
            drop(keep.take());
            let sb = Sandbox::start();
            let start = Instant::now();
            let summary = sb.seed(&s.fleet);
            seed_times.push(start.elapsed());
            seeded = summarize_seed(&summary);
            eprintln!("   seeded in {:.1?}: {seeded}", start.elapsed());
            keep = Some(sb);
        }
        let sb = keep.as_ref().expect("a sandbox");
        let config = sb.write("desired.yaml", &s.desired);
        let result = match s.drive {
            Drive::InitialApply => apply_once(sb, &config),
            Drive::Steady => daemon_once(sb, &config, s.idle),
        };
        eprintln!(
            "   run {}: {} requests in {} (controller CPU {}), peak RSS {:.1} MiB{}",
            run + 1,
            total(&result.measured.ops),
            seconds(result.measured.wall),
            seconds(result.measured.cpu),
            mib(result.peak_kib),
            result
                .cold
                .as_ref()
                .map(|c| format!(
                    " (first pass: {} requests in {})",
                    total(&c.ops),
                    seconds(c.wall)
                ))
                .unwrap_or_default()
        );
        results.push(result);
    }
    let measured: Vec<&Pass> = results.iter().map(|r| &r.measured).collect();
    let totals: Vec<u64> = measured.iter().map(|p| total(&p.ops)).collect();
    let cold_passes: Vec<&Pass> = results.iter().filter_map(|r| r.cold.as_ref()).collect();
    let cold_min = fleet_minimum(&s.targets, true);
    let min = fleet_minimum(&s.targets, s.drive == Drive::InitialApply);
    Measured {
        key: s.key,
        title: s.title.clone(),
        seed: median(seed_times),
        seeded,
        ops: median_ops(&measured),
        min,
        wall: median_wall(&measured),
        cpu: median(measured.iter().map(|p| p.cpu).collect()),
        peak_kib: median(results.iter().map(|r| r.peak_kib).collect()),
        idle_kib: results
            .iter()
            .map(|r| r.idle_kib)
            .collect::<Option<Vec<u64>>>()
            .map(median),
        cold: (!cold_passes.is_empty()).then(|| {
            (
                median_ops(&cold_passes),
                cold_min,
                median_wall(&cold_passes),
                median(cold_passes.iter().map(|p| p.cpu).collect()),
            )
        }),
        runs,
        spread: format!(
            "requests per run {totals:?}; wall {:?}; controller CPU {:?}; peak RSS {:?} MiB",
            measured.iter().map(|p| seconds(p.wall)).collect::<Vec<_>>(),
            measured.iter().map(|p| seconds(p.cpu)).collect::<Vec<_>>(),
            results
                .iter()
                .map(|r| (mib(r.peak_kib) * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        ),
    }
}

fn summarize_seed(summary: &serde_json::Value) -> String {
    let (mut clusters, mut services, mut tasks) = (0, 0, 0);
    if let Some(accounts) = summary["accounts"].as_object() {
        for regions in accounts.values() {
            for r in regions.as_object().into_iter().flat_map(|m| m.values()) {
                clusters += r["clusters"].as_u64().unwrap_or(0);
                services += r["services"].as_u64().unwrap_or(0);
                tasks += r["bulkTasks"].as_u64().unwrap_or(0);
            }
        }
    }
    format!("{clusters} clusters, {services} services, {tasks} tasks")
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cores} cores, {:.1} GiB RAM, {} {}",
        mib(mem_kib) / 1024.0,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn ops_line(ops: &BTreeMap<String, u64>, min: &BTreeMap<&'static str, u64>) -> String {
    let mut names: Vec<&str> = ops
        .keys()
        .map(String::as_str)
        .chain(min.keys().copied())
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|op| {
            format!(
                "{op} {}/{}",
                ops.get(*op).copied().unwrap_or(0),
                min.get(op).copied().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the tables; returns whether every check held.
fn print_report(all: &[Measured], quick: bool) -> bool {
    println!();
    println!(
        "scale benchmark{}: {}",
        if quick {
            " (QUICK: fleets / 10, 1 run)"
        } else {
            ""
        },
        machine()
    );
    println!(
        "median of {} run(s) per scenario; requests from the sandbox's request log; wall time \
         of the pass (daemon) or the process (apply); controller CPU = user + system time of \
         the controller process for it",
        all.first().map_or(0, |m| m.runs)
    );
    println!();
    println!("| scenario | requests | minimum | ratio | wall time | controller CPU | peak RSS |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for m in all {
        println!(
            "| ({}) {} | {} | {} | {:.2} | {} | {} | {:.1} MiB |",
            m.key,
            m.title,
            total(&m.ops),
            total(&m.min),
            ratio(&m.ops, &m.min),
            seconds(m.wall),
            seconds(m.cpu),
            mib(m.peak_kib)
        );
    }
    if let Some(b) = all.iter().find(|m| m.idle_kib.is_some()) {
        println!(
            "| (f) {} idle daemon (after the ({}) passes) | | | | | | {:.1} MiB (VmRSS) |",
            b.seeded.split(',').next().unwrap_or_default(),
            b.key,
            mib(b.idle_kib.unwrap_or(0))
        );
    }
    println!();
    println!("Requests per operation (made/minimum):");
    println!();
    println!("| scenario | pass | operations |");
    println!("|---|---|---|");
    for m in all {
        let pass = if m.cold.is_some() {
            "steady state"
        } else {
            "apply (observe, write; the writes' answers are the check)"
        };
        println!("| ({}) | {pass} | {} |", m.key, ops_line(&m.ops, &m.min));
        if let Some((ops, min, wall, cpu)) = &m.cold {
            println!(
                "| ({}) | first pass of the daemon: {} requests (min {}) in {} (controller CPU {}, start included) | {} |",
                m.key,
                total(ops),
                total(min),
                seconds(*wall),
                seconds(*cpu),
                ops_line(ops, min)
            );
        }
    }
    println!();
    println!("| scenario | seeded | seeding time |");
    println!("|---|---|---:|");
    for m in all {
        println!("| ({}) | {} | {} |", m.key, m.seeded, seconds(m.seed));
    }
    println!();
    for m in all {
        println!("({}) runs: {}", m.key, m.spread);
    }
    println!();
    let scenarios = scenarios(quick);
    let mut failed = false;
    for m in all {
        let s = scenarios.iter().find(|s| s.key == m.key).expect("scenario");
        if let Some(max) = s.max_ratio {
            let r = ratio(&m.ops, &m.min);
            let ok = r <= max;
            failed |= !ok;
            println!(
                "check ({}): requests / minimum = {r:.3} <= {max}: {}",
                m.key,
                if ok { "ok" } else { "FAILED" }
            );
        }
        if let Some((limit, idle)) = s.rss_limit {
            let (what, value) = if idle {
                ("idle RSS (f)", m.idle_kib.unwrap_or(0))
            } else {
                ("peak RSS", m.peak_kib)
            };
            let ok = mib(value) <= limit;
            failed |= !ok;
            println!(
                "check ({}): {what} {:.1} MiB <= {limit} MiB: {}",
                m.key,
                mib(value),
                if ok { "ok" } else { "FAILED" }
            );
        }
    }
    if failed {
        println!("\nsome checks FAILED");
    }
    !failed
}

fn main() {
    let quick = std::env::var("GEC_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let runs = std::env::var("GEC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 })
        .max(1);
    let only: Option<Vec<String>> = std::env::var("GEC_BENCH_ONLY")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_lowercase()).collect());
    let selected: Vec<Scenario> = scenarios(quick)
        .into_iter()
        .filter(|s| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|k| k == s.key || (k == "f" && s.key == "b")))
        })
        .collect();
    let started = Instant::now();
    let all: Vec<Measured> = selected.iter().map(|s| run_scenario(s, runs)).collect();
    let ok = print_report(&all, quick);
    eprintln!("benchmark took {:.0?}", started.elapsed());
    if !ok {
        std::process::exit(1);
    }
}
