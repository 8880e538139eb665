//! Planner benchmark (criterion): the pure `plan_target` over large fleets, no AWS and no
//! I/O. Target: 100,000 clusters planned in under 200 ms (criterion median).
//! Run: `cargo bench --bench planner`.
//!
//! Scenarios, all in the group `plan_target`:
//! - `steady_100k`: 100,000 clusters, 50 exact rules and 5 `match` rules, detector and
//!   automation on, `unmatchedClusters: ignore`, the fleet already converged but for a
//!   little drift: a hundred or so actions.
//! - `mass_change_100k`: the same fleet shape with `unmatchedClusters: absent` and a
//!   `GuardDutyManaged` tag on 90% of the clusters, mostly the wrong one: the worst case,
//!   an action for most clusters.
//! - `mass_change_100k_with_drop`: the same, also timing the freeing of the plan (some
//!   900,000 strings), which the others leave out of the timed part.
//! - `redeploy_10k`: 10,000 covered clusters with three services each, so the redeploy
//!   planning (held services, `settleTime`, `retryAfter`) runs for every cluster.
//!
//! The fleets are generated (a fixed seed), then checked to have the intended shape. About
//! a minute in all.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, Criterion, SamplingMode};
use gec_model::desired::{self, ManagedTag};
use gec_model::observed::{
    CoverageRecord, FeatureStatus, ObservedCluster, ObservedDeployment, ObservedDetector,
    ObservedFeature, ObservedService, ObservedTarget, Preflight, TaskCounts, Workload,
    ECS_FARGATE_AGENT_MANAGEMENT, RUNTIME_MONITORING,
};
use gec_model::plan::Ceilings;
use gec_model::{plan_target, Action, DesiredState, PlanOptions, TargetPlan, MANAGED_TAG_KEY};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const LARGE: usize = 100_000;
const WITH_WORKLOAD: usize = 10_000;
/// 2026-11-27T00:00:00Z: the planning time of the redeploy scenario.
const NOW_MS: i64 = 1_795_737_600_000;
const MINUTE_MS: i64 = 60_000;

const TEAMS: [&str; 10] = [
    "payments", "search", "checkout", "ml", "data", "web", "identity", "ads", "research",
    "platform",
];
const ENVS: [&str; 5] = ["prod", "staging", "dev", "sandbox", "load"];

/// splitmix64: a small deterministic generator, so every run plans the same fleet.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Planner options for the scenarios: the fleet-sized changes they plan need ceilings
/// raised where the controller runs; each file's own `safety` values are within them.
fn bench_options() -> PlanOptions {
    PlanOptions {
        ceilings: Ceilings {
            max_cluster_changes: 100_000,
            max_coverage_loss: 1.0,
        },
        ..PlanOptions::default()
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

fn cluster_name(i: usize, team: &str, env: &str) -> String {
    if env == "load" {
        format!("load-{team}-{i:06}")
    } else {
        format!("{team}-{env}-{i:06}")
    }
}

/// `n` clusters named `TEAM-ENV-NNNNNN` (`load-TEAM-NNNNNN` for load tests); 30% carry
/// team, env, cost-center or owner tags in various combinations, 1% are not ACTIVE, and
/// GuardDuty lists a coverage record for 70%. `managed_tag` gives each cluster its
/// `GuardDutyManaged` value, if any.
fn fleet(
    n: usize,
    rng: &mut Rng,
    mut managed_tag: impl FnMut(&mut Rng) -> Option<&'static str>,
) -> ObservedTarget {
    let clusters = (0..n)
        .map(|i| {
            let (team, env) = (rng.pick(&TEAMS), rng.pick(&ENVS));
            let name = cluster_name(i, team, env);
            let mut tags = BTreeMap::new();
            if rng.chance(0.3) {
                tags.insert("team".to_owned(), team.to_owned());
                if rng.chance(0.7) {
                    tags.insert("env".to_owned(), env.to_owned());
                }
                if rng.chance(0.3) {
                    let center = if team == "research" { team } else { "shared" };
                    tags.insert("cost-center".to_owned(), center.to_owned());
                }
                if rng.chance(0.2) {
                    tags.insert("owner".to_owned(), format!("{team}-oncall@example.com"));
                }
            }
            if let Some(value) = managed_tag(rng) {
                tags.insert(MANAGED_TAG_KEY.to_owned(), value.to_owned());
            }
            let status = match rng.below(100) {
                0 => "INACTIVE",
                _ => "ACTIVE",
            };
            let coverage = rng.chance(0.7).then(|| CoverageRecord {
                status: "HEALTHY".into(),
                issue: None,
                ..CoverageRecord::default()
            });
            ObservedCluster {
                arn: arn(&name),
                name,
                status: status.into(),
                tags,
                active_services: rng.below(20) as u32,
                running_tasks: rng.below(200) as u32,
                coverage,
                ..ObservedCluster::default()
            }
        })
        .collect();
    ObservedTarget {
        region: REGION.to_owned(),
        account: Some(ACCOUNT.to_owned()),
        clusters,
        detector: Some(detector_on()),
        organization: None,
    }
}

/// A detector with Runtime Monitoring and ECS Fargate automation on.
fn detector_on() -> ObservedDetector {
    let additional = BTreeMap::from([(
        ECS_FARGATE_AGENT_MANAGEMENT.to_owned(),
        FeatureStatus::Enabled,
    )]);
    ObservedDetector {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        features: BTreeMap::from([(
            RUNTIME_MONITORING.to_owned(),
            ObservedFeature {
                status: FeatureStatus::Enabled,
                additional,
            },
        )]),
    }
}

/// The desired-state YAML: 45 exact names and 5 exact ARNs of clusters in the fleet, then
/// five `match` rules with globs and tags.
fn desired_yaml(fleet: &ObservedTarget, unmatched: &str, safety: &str) -> String {
    let mut text = format!(
        "version: 1\n\
         targets: [{{region: {REGION}}}]\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters:\n"
    );
    for k in 0..50 {
        let c = &fleet.clusters[k * (fleet.clusters.len() / 50) + 7];
        let name = if k % 10 == 9 { &c.arn } else { &c.name };
        let tag = ["true", "false", "true", "absent"][k % 4];
        text += &format!("  - {{name: '{name}', guardDutyManaged: {tag}}}\n");
    }
    text += "  - {match: {namePattern: 'payments-prod-*', tags: {team: payments}}, guardDutyManaged: true}\n\
             \x20 - {match: {namePattern: '*-prod-*', tags: {env: prod}}, guardDutyManaged: true}\n\
             \x20 - {match: {namePattern: 'load-*'}, guardDutyManaged: false}\n\
             \x20 - {match: {namePattern: 'research-*', tags: {cost-center: research}}, guardDutyManaged: false}\n\
             \x20 - {match: {namePattern: '*-sandbox-[0-9]*', tags: {team: ml}, regions: [us-east-1]}, guardDutyManaged: absent}\n";
    text += &format!("unmatchedClusters: {unmatched}\nsafety: {safety}\n");
    text
}

fn parse(text: &str) -> DesiredState {
    desired::parse("bench.yaml", text).unwrap_or_else(|e| panic!("bench YAML is invalid:\n{e}"))
}

/// Applies a plan's tag actions to the fleet, as a successful pass would.
fn apply_tags(observed: &mut ObservedTarget, plan: &TargetPlan) {
    let index: HashMap<String, usize> = observed
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    for action in &plan.actions {
        match action {
            Action::TagCluster { cluster, to, .. } => {
                let c = &mut observed.clusters[index[cluster]];
                c.tags.insert(MANAGED_TAG_KEY.to_owned(), (*to).to_owned());
            }
            Action::UntagCluster { cluster, .. } => {
                observed.clusters[index[cluster]]
                    .tags
                    .remove(MANAGED_TAG_KEY);
            }
            _ => {}
        }
    }
}

/// Scenario 1: a converged fleet with a little drift on the clusters the rules manage.
fn steady() -> (DesiredState, ObservedTarget) {
    let mut rng = Rng(1);
    let mut observed = fleet(LARGE, &mut rng, |rng| match rng.below(20) {
        0 => Some("true"),
        1 => Some("false"),
        _ => None,
    });
    let desired = parse(&desired_yaml(
        &observed,
        "ignore",
        "{maxClusterChangesPerCycle: 500, maxCoverageLossFraction: 0.2}",
    ));
    let first = plan_target(&desired, &observed, bench_options());
    apply_tags(&mut observed, &first);
    let converged = plan_target(&desired, &observed, bench_options());
    assert!(converged.actions.is_empty(), "the fleet converges");

    // Drift: every 200th managed cluster lost or flipped its tag since the last pass.
    let managed: Vec<(String, ManagedTag)> = converged
        .clusters
        .iter()
        .filter_map(|r| Some((r.cluster.clone(), r.desired?)))
        .collect();
    let index: HashMap<&str, usize> = observed
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let drift: Vec<(usize, ManagedTag)> = managed
        .iter()
        .step_by(200)
        .map(|(name, tag)| (index[name.as_str()], *tag))
        .collect();
    for (i, tag) in drift {
        let tags = &mut observed.clusters[i].tags;
        match tag {
            ManagedTag::True => tags.remove(MANAGED_TAG_KEY),
            ManagedTag::False | ManagedTag::Absent => {
                tags.insert(MANAGED_TAG_KEY.to_owned(), "true".to_owned())
            }
        };
    }
    let plan = plan_target(&desired, &observed, bench_options());
    assert!(plan.refused.is_none(), "{:?}", plan.refused);
    assert!(
        (50..=300).contains(&plan.actions.len()),
        "steady state plans a few actions, not {}",
        plan.actions.len()
    );
    eprintln!(
        "steady_100k: {} clusters, {} managed, {} actions",
        observed.clusters.len(),
        managed.len(),
        plan.actions.len()
    );
    (desired, observed)
}

/// Scenario 2: `unmatchedClusters: absent` over a fleet whose tags are mostly wrong.
fn mass_change() -> (DesiredState, ObservedTarget) {
    let mut rng = Rng(2);
    let observed = fleet(LARGE, &mut rng, |rng| match rng.below(10) {
        0..=4 => Some("true"),
        5..=7 => Some("false"),
        8 => Some("True"),
        _ => None,
    });
    let desired = parse(&desired_yaml(
        &observed,
        "absent",
        "{maxClusterChangesPerCycle: 100000, maxCoverageLossFraction: 1.0}",
    ));
    let plan = plan_target(&desired, &observed, bench_options());
    assert!(plan.refused.is_none(), "{:?}", plan.refused);
    assert!(
        plan.actions.len() > LARGE * 7 / 10,
        "most clusters need a change, not {}",
        plan.actions.len()
    );
    eprintln!(
        "mass_change_100k: {} clusters, {} actions",
        observed.clusters.len(),
        plan.actions.len()
    );
    (desired, observed)
}

fn service(cluster: &str, name: &str, rng: &mut Rng) -> ObservedService {
    let created_at_ms = NOW_MS - rng.below(48 * 60) as i64 * MINUTE_MS;
    let mut deployments = vec![ObservedDeployment {
        id: format!("ecs-svc/{}", rng.next()),
        status: "PRIMARY".into(),
        rollout_state: Some("COMPLETED".into()),
        created_at_ms,
        started_by: None,
    }];
    if rng.chance(0.05) {
        deployments[0].rollout_state = Some("IN_PROGRESS".into());
        deployments.push(ObservedDeployment {
            id: format!("ecs-svc/{}", rng.next()),
            status: "ACTIVE".into(),
            rollout_state: Some("COMPLETED".into()),
            created_at_ms: created_at_ms - 86_400_000,
            started_by: None,
        });
    }
    ObservedService {
        name: name.to_owned(),
        arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"),
        status: if rng.chance(0.02) {
            "DRAINING"
        } else {
            "ACTIVE"
        }
        .into(),
        fargate: !rng.chance(0.03),
        deployments,
        preflight: Some(Preflight::Passed),
        ..ObservedService::default()
    }
}

/// Scenario 3: covered clusters running `api`, `worker` and `db-migrations`, some of whose
/// tasks lack the agent.
fn redeploy() -> (DesiredState, ObservedTarget, PlanOptions) {
    let mut rng = Rng(3);
    let mut observed = fleet(WITH_WORKLOAD, &mut rng, |rng| {
        rng.chance(0.5).then_some("true")
    });
    for c in &mut observed.clusters {
        let mut workload = Workload::default();
        for name in ["api", "worker", "db-migrations"] {
            let running = 1 + rng.below(6) as u32;
            let without_agent = if rng.chance(0.4) {
                1 + rng.below(running as usize) as u32
            } else {
                0
            };
            workload.service_tasks.insert(
                name.to_owned(),
                TaskCounts {
                    running,
                    without_agent,
                    ..TaskCounts::default()
                },
            );
            if without_agent > 0 {
                workload.services.push(service(&c.name, name, &mut rng));
            }
        }
        workload.standalone_tasks = TaskCounts {
            running: rng.below(3) as u32,
            without_agent: 0,
            ..TaskCounts::default()
        };
        workload.other_tasks = rng.below(2) as u32;
        workload.earliest_agent_task_ms = Some(NOW_MS - 3 * 86_400_000);
        c.workload = Some(workload);
        c.covered_since_ms = Some(NOW_MS - rng.below(4 * 60) as i64 * MINUTE_MS);
        c.coverage_turn_on_seen = rng.chance(0.5);
    }
    let desired = parse(&format!(
        "version: 1\n\
         targets: [{{region: {REGION}}}]\n\
         detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}}\n\
         clusters:\n\
         \x20 - {{match: {{namePattern: 'load-*'}}, guardDutyManaged: false}}\n\
         \x20 - {{match: {{namePattern: '*'}}, guardDutyManaged: true}}\n\
         redeploy: {{enabled: true, settleTime: 5m, retryAfter: 1h, excludeServices: ['*-migrations']}}\n\
         safety: {{maxClusterChangesPerCycle: {WITH_WORKLOAD}, maxCoverageLossFraction: 0.5}}\n"
    ));
    let options = PlanOptions {
        now_ms: NOW_MS,
        ..bench_options()
    };
    let plan = plan_target(&desired, &observed, options);
    assert!(plan.refused.is_none(), "{:?}", plan.refused);
    let redeploys = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::RedeployService { .. }))
        .count();
    assert!(redeploys > 0 && !plan.held.is_empty());
    eprintln!(
        "redeploy_10k: {} clusters, {} actions ({redeploys} redeploys), {} held",
        observed.clusters.len(),
        plan.actions.len(),
        plan.held.len()
    );
    (desired, observed, options)
}

/// Times `plan_target` alone: each plan is dropped outside the timed part, as the daemon
/// drops the previous plan after it has made the next one.
fn plan_only(
    b: &mut Bencher,
    desired: &DesiredState,
    observed: &ObservedTarget,
    options: PlanOptions,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let plan = plan_target(black_box(desired), black_box(observed), options);
            total += start.elapsed();
            drop(black_box(plan));
        }
        total
    });
}

fn bench_planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_target");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));

    let (desired, observed) = steady();
    group.bench_function("steady_100k", |b| {
        plan_only(b, &desired, &observed, bench_options())
    });
    drop((desired, observed));

    let (desired, observed) = mass_change();
    group.bench_function("mass_change_100k", |b| {
        plan_only(b, &desired, &observed, bench_options())
    });
    // The same, with freeing the plan (some 900,000 strings) timed too.
    group.bench_function("mass_change_100k_with_drop", |b| {
        b.iter(|| plan_target(black_box(&desired), black_box(&observed), bench_options()))
    });
    drop((desired, observed));

    let (desired, observed, options) = redeploy();
    group.bench_function("redeploy_10k", |b| {
        plan_only(b, &desired, &observed, options)
    });
    group.finish();
}

criterion_group!(benches, bench_planner);
criterion_main!(benches);
