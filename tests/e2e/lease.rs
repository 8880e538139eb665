//! End to end: two daemons on one DynamoDB lease table (`run --lease-table`) against one
//! sandbox. Exactly one writes; when it dies (`kill -9`) the other takes over once it has
//! seen the same record version for a lease duration, and converges a change made
//! meanwhile; on SIGTERM the leader releases the lease and the other takes over at once.
//! The failover times are printed (the README quotes them), never asserted.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::kit::daemon::{replace_file, Daemon};
use crate::kit::Sandbox;

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: alpha
      - name: beta
"#;

const TABLE: &str = "gec-lease";
/// Short, so that failovers take seconds.
const LEASE: &str = "4s";
const LEASE_SECS: f64 = 4.0;

fn desired(alpha: &str) -> String {
    // The tests churn alpha's tag themselves (another writer, on purpose) so the leader
    // writes again and again: tug-of-war detection (3 reverts by default) would stop that.
    format!(
        "version: 1\ntargets: [{{region: us-east-1}}]\nclusters:\n  - {{name: alpha, guardDutyManaged: {alpha}}}\n  - {{name: beta, guardDutyManaged: true}}\nreconcile: {{interval: 1h, conflicts: {{reverts: 0}}}}\n"
    )
}

/// The lease table as the deploy kit makes it: partition key `key` (a string), on demand.
pub async fn create_lease_table(sb: &Sandbox, name: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(&sb.sdk("us-east-1").await);
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("key")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("key")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the lease table");
}

/// A replica named `id` on the lease table.
pub fn replica(sb: &Sandbox, file: &std::path::Path, id: &str, lease: &str) -> Daemon {
    Daemon::start(
        sb,
        file,
        &[
            "--lease-table",
            TABLE,
            "--lease-duration",
            lease,
            "--replica-id",
            id,
            "--max-coverage-loss-ceiling",
            "1",
        ],
    )
}

pub fn leading(d: &Daemon) -> bool {
    d.metric("guardduty_controller_leader") == 1.0
}

fn successes(d: &Daemon) -> f64 {
    d.metric_sum("guardduty_controller_actions_total", r#"result="success""#)
}

async fn tag(sb: &Sandbox, cluster: &str) -> Option<String> {
    sb.aws("us-east-1")
        .await
        .managed_tags()
        .await
        .remove(cluster)
        .flatten()
}

async fn wait_tag(sb: &Sandbox, cluster: &str, want: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if tag(sb, cluster).await.as_deref() == Some(want) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Waits until exactly one of `replicas` leads; its index.
fn one_leader(replicas: &[&Daemon], limit: Duration) -> usize {
    let start = Instant::now();
    while start.elapsed() < limit {
        let leaders: Vec<usize> = (0..replicas.len())
            .filter(|i| leading(replicas[*i]))
            .collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no single leader within {limit:?}");
}

#[tokio::test]
async fn one_of_two_replicas_writes_and_the_other_takes_over_after_kill_9_and_at_once_after_sigterm(
) {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    create_lease_table(&sb, TABLE).await;
    let file = sb.write("desired.yaml", &desired("true"));
    let a = replica(&sb, &file, "replica-a", LEASE);
    let b = replica(&sb, &file, "replica-b", LEASE);

    let first = one_leader(&[&a, &b], Duration::from_secs(60));
    let leader_id = ["replica-a", "replica-b"][first];
    let (leader, follower) = if first == 0 { (a, b) } else { (b, a) };
    assert!(
        wait_tag(&sb, "alpha", "true", Duration::from_secs(60))
            .await
            .is_some()
            && wait_tag(&sb, "beta", "true", Duration::from_secs(60))
                .await
                .is_some(),
        "the leader converges: {}",
        leader.logs()
    );
    assert!(
        follower.wait_for(Duration::from_secs(30), |d| d.get("/readyz").0 == 200),
        "a follower is ready once its plan-only pass reached AWS"
    );
    let (_, status) = follower.get("/status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["leader"]["enabled"], true);
    assert_eq!(status["leader"]["leading"], false);
    assert!(successes(&leader) >= 2.0);
    assert_eq!(successes(&follower), 0.0, "only the leader writes");
    let writes = replica_writes(&sb);
    assert!(
        !writes.is_empty() && writes.iter().all(|(_, id)| id == leader_id),
        "every write request came from the leader: {writes:?}"
    );

    // kill -9: no release. The follower waits for the leader's record version to stand
    // still for a lease duration, then takes over and converges the change made meanwhile.
    let killed = Instant::now();
    leader.signal("KILL");
    replace_file(&file, &desired("false"));
    assert!(
        follower.wait_for(Duration::from_secs(60), leading),
        "the follower takes over: {}",
        follower.logs()
    );
    let took_over = killed.elapsed();
    assert!(
        wait_tag(&sb, "alpha", "false", Duration::from_secs(60))
            .await
            .is_some(),
        "the new leader converges the change: {}",
        follower.logs()
    );
    let converged = killed.elapsed();
    eprintln!(
        "FAILOVER kill -9 (lease {LEASE_SECS}s): new leader after {:.2}s, change written after {:.2}s",
        took_over.as_secs_f64(),
        converged.as_secs_f64()
    );
    drop(leader);

    // SIGTERM: the leader stops writing, releases the lease, and a follower's next read
    // (every quarter lease) finds it free.
    let mut new_leader = follower;
    let c = replica(&sb, &file, "replica-c", LEASE);
    assert!(c.wait_for(Duration::from_secs(30), |d| d.get("/readyz").0 == 200));
    assert!(!leading(&c));
    let termed = Instant::now();
    new_leader.signal("TERM");
    assert!(
        c.wait_for(Duration::from_secs(30), leading),
        "the follower takes over once the lease is released: {}",
        c.logs()
    );
    let after_term = termed.elapsed();
    assert_eq!(new_leader.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(
        new_leader.logs().contains("released the lease"),
        "{}",
        new_leader.logs()
    );
    eprintln!(
        "FAILOVER SIGTERM (lease {LEASE_SECS}s): new leader after {:.2}s",
        after_term.as_secs_f64()
    );
    assert_eq!(
        c.metric("guardduty_controller_leader_transitions_total"),
        1.0
    );
}

/// The operations that write to AWS (the lease's own DynamoDB calls are not among them).
const WRITES: &[&str] = &[
    "TagResources",
    "UntagResources",
    "TagResource",
    "UntagResource",
    "UpdateDetector",
    "UpdateMemberDetectors",
    "UpdateOrganizationConfiguration",
    "UpdateService",
    "CreateDeployment",
];
const APP: &str = "app/guardduty-ecs-controller-";

/// Every write a replica sent, in the order the sandbox received them: (seq, replica id).
fn replica_writes(sb: &Sandbox) -> Vec<(u64, String)> {
    sb.requests()
        .into_iter()
        .filter(|r| WRITES.contains(&r["operation"].as_str().unwrap_or_default()))
        .filter_map(|r| {
            let ua = r["userAgent"].as_str()?;
            let id = ua.split(APP).nth(1)?.split(' ').next()?.to_owned();
            Some((r["seq"].as_u64()?, id))
        })
        .collect()
}

/// The writers in order, each run of writes by one replica as one entry.
fn writer_runs(writes: &[(u64, String)]) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for (_, id) in writes {
        if runs.last() != Some(id) {
            runs.push(id.clone());
        }
    }
    runs
}

/// Another writer: sets alpha's tag back to `false` (the desired state says `true`), then
/// asks every replica for a pass (SIGHUP), so the leader writes again and again.
async fn churn(sb: &Sandbox, replicas: &[&Daemon]) {
    let aws = sb.aws("us-east-1").await;
    let arn = aws.cluster_arn("alpha").await;
    aws.set_managed_tag(&arn, "false").await;
    for r in replicas {
        r.signal("HUP");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Churns until `id` has written after `after` (a request log seq); the seq of that write.
async fn until_written(sb: &Sandbox, replicas: &[&Daemon], id: &str, after: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        churn(sb, replicas).await;
        if let Some((seq, _)) = replica_writes(sb)
            .into_iter()
            .find(|(seq, w)| *seq > after && w == id)
        {
            return seq;
        }
    }
    let logs: Vec<String> = replicas.iter().map(|r| r.logs()).collect();
    panic!("{id} wrote nothing within 60 s:\n{}", logs.join("\n----\n"));
}

/// `n` failovers: each time, DynamoDB fails for the leader only (a rule on its user
/// agent), so it cannot renew; it must stop writing before its lease can run out, and
/// the other replica takes over. The request log must show the replicas' writes in `n + 1`
/// runs, one per leadership: no write by an old leader after its successor's first.
async fn failovers(n: usize, lease: &str) {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    create_lease_table(&sb, TABLE).await;
    let file = sb.write("desired.yaml", &desired("true"));
    let ids = ["replica-a", "replica-b"];
    let a = replica(&sb, &file, ids[0], lease);
    let b = replica(&sb, &file, ids[1], lease);
    let both = [&a, &b];
    let mut leader = one_leader(&both, Duration::from_secs(60));
    let mut seq = until_written(&sb, &both, ids[leader], 0).await;
    let mut times = Vec::new();
    for round in 0..n {
        let next = 1 - leader;
        sb.faults(serde_json::json!({"rules": [
            {"service": "dynamodb", "userAgent": format!("{APP}{}", ids[leader]), "fault": "http500"}
        ]}));
        let faulted = Instant::now();
        let start = Instant::now();
        while !leading(both[next]) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "round {round}: {} did not take over: {}",
                ids[next],
                both[next].logs()
            );
            churn(&sb, &both).await;
        }
        times.push(faulted.elapsed().as_secs_f64());
        assert!(
            !leading(both[leader]),
            "round {round}: the old leader stepped down"
        );
        seq = until_written(&sb, &both, ids[next], seq).await;
        sb.faults(serde_json::json!({"rules": []}));
        leader = next;
    }
    // A few more passes by the last leader, then the whole log.
    for _ in 0..3 {
        churn(&sb, &both).await;
    }
    let writes = replica_writes(&sb);
    let runs = writer_runs(&writes);
    assert_eq!(
        runs.len(),
        n + 1,
        "one run of writes per leadership, no overlap: {runs:?}\n{writes:?}"
    );
    let total: f64 = times.iter().sum();
    eprintln!(
        "FAILOVER dynamodb faults on the leader (lease {lease}), {n} failovers: fault -> new leader mean {:.2}s, max {:.2}s; {} replica writes",
        total / n as f64,
        times.iter().copied().fold(0.0, f64::max),
        writes.len()
    );
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_writing_before_the_other_takes_over() {
    failovers(1, LEASE).await;
}

#[tokio::test]
async fn twenty_failovers_never_overlap() {
    failovers(20, "3s").await;
}

/// `apply --lease-table` with replica id `id`, `--ignore-lease` when asked.
fn apply(sb: &Sandbox, file: &std::path::Path, id: &str, ignore: bool) -> crate::kit::Run {
    let mut args = vec![
        "apply",
        "--config",
        file.to_str().expect("UTF-8 path"),
        "--timeout",
        "60s",
        "--lease-table",
        TABLE,
        "--lease-duration",
        LEASE,
        "--replica-id",
        id,
        "--max-coverage-loss-ceiling",
        "1",
    ];
    if ignore {
        args.push("--ignore-lease");
    }
    sb.controller(&args)
}

#[tokio::test]
async fn apply_refuses_while_a_daemon_leads_and_takes_the_free_lease_itself() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    create_lease_table(&sb, TABLE).await;
    let file = sb.write("desired.yaml", &desired("true"));
    let mut daemon = replica(&sb, &file, "replica-a", LEASE);
    assert!(daemon.wait_for(Duration::from_secs(60), leading));
    assert!(wait_tag(&sb, "alpha", "true", Duration::from_secs(60))
        .await
        .is_some());

    // A change the daemon does not see (another file): apply must not write it.
    let other = sb.write("other.yaml", &desired("false"));
    let refused = apply(&sb, &other, "laptop", false);
    assert_eq!(refused.code, 4, "{refused}");
    assert!(refused.stderr.contains("replica-a"), "{refused}");
    assert!(
        !replica_writes(&sb).iter().any(|(_, id)| id == "laptop"),
        "apply wrote nothing"
    );
    assert!(leading(&daemon), "the daemon keeps the lease");

    // A table that does not exist is an error (exit 1), not someone else's lease.
    let missing = sb.controller(&[
        "apply",
        "--config",
        other.to_str().expect("UTF-8 path"),
        "--lease-table",
        "no-such-table",
        "--lease-duration",
        "2s",
    ]);
    assert_eq!(missing.code, 1, "{missing}");
    assert!(missing.stderr.contains("cannot use the lease"), "{missing}");

    let forced = apply(&sb, &other, "laptop", true);
    assert_eq!(forced.code, 0, "{forced}");
    assert_eq!(tag(&sb, "alpha").await.as_deref(), Some("false"));

    // The daemon stops and releases the lease: apply takes it, writes, releases it.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
    let started = Instant::now();
    let held = apply(&sb, &file, "laptop", false);
    assert_eq!(held.code, 0, "{held}");
    eprintln!(
        "apply --lease-table on a released lease took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(tag(&sb, "alpha").await.as_deref(), Some("true"));
    let ddb = aws_sdk_dynamodb::Client::new(&sb.sdk("us-east-1").await);
    let item = ddb
        .get_item()
        .table_name(TABLE)
        .key(
            "key",
            aws_sdk_dynamodb::types::AttributeValue::S("guardduty-ecs-controller".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("read the lease");
    assert!(item.item.is_none(), "apply released the lease: {item:?}");
}
