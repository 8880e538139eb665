//! Audit events end to end (issue 16): `--events-bus` puts every write and incident on an
//! EventBridge bus; a rule delivers them to an SQS queue in the sandbox, where the test
//! reads them and checks them against `schemas/event.schema.json`. A bus that fails never
//! stops reconciliation and is counted.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::kit::daemon::Daemon;
use crate::kit::{repo_path, root, Sandbox};

const FLEET: &str = r#"
regions:
  us-east-1:
    detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
    clusters:
      - name: apps
      - name: batch
    services:
      - {name: api, cluster: apps, desiredCount: 1}
      - {name: web, cluster: apps, desiredCount: 1}
"#;

const DESIRED: &str = r#"
version: 1
targets: [{region: us-east-1}]
clusters:
  - {name: apps, guardDutyManaged: true}
  - {name: batch, guardDutyManaged: true}
redeploy: {settleTime: 0s, maxConcurrent: 1, waitForSteadyState: true, stopOnFailure: true, retryAfter: 0s}
"#;

const BUS: &str = "gec-audit";

/// Boto3 in the sandbox's venv, for the EventBridge and SQS plumbing the controller does
/// not have (bus, rule, queue target; reading the queue).
const PLUMBING: &str = r#"
import boto3, hashlib, json, sys
url, command = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
          aws_secret_access_key="testing")
events, sqs = boto3.client("events", **kw), boto3.client("sqs", **kw)
if command == "setup":
    bus = sys.argv[3]
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName="gec-audit-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="gec-audit", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["guardduty-ecs-controller"]}))
    events.put_targets(Rule="gec-audit", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    print(json.dumps({"queue": queue}))
elif command == "drain":
    queue, bodies = sys.argv[3], []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    print(json.dumps(bodies))
elif command == "sha256":
    print(json.dumps(hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest()))
"#;

fn plumbing(sb: &Sandbox, args: &[&str]) -> Value {
    let out = Command::new(root().join("sandbox/.venv/bin/python"))
        .args(["-c", PLUMBING, &sb.url])
        .args(args)
        .output()
        .expect("run the sandbox's python");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the plumbing prints JSON")
}

/// Creates the bus, a rule on the controller's source and its SQS queue target; the queue
/// URL.
fn bus_to_queue(sb: &Sandbox) -> String {
    plumbing(sb, &["setup", BUS])["queue"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every event the queue holds (EventBridge envelopes), removed from it.
fn drain(sb: &Sandbox, queue: &str) -> Vec<Value> {
    plumbing(sb, &["drain", queue])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Checks every detail against schemas/event.schema.json with check-jsonschema.
fn assert_details_match_the_schema(sb: &Sandbox, events: &[Value]) {
    let files: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            sb.write(&format!("detail-{i}.json"), &e["detail"].to_string())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let out = Command::new(root().join("sandbox/.venv/bin/check-jsonschema"))
        .arg("--schemafile")
        .arg(repo_path("schemas/event.schema.json"))
        .args(&files)
        .output()
        .expect("run check-jsonschema");
    assert!(
        out.status.success(),
        "details do not match schemas/event.schema.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And a detail with a key the schema does not know fails: the check can fail.
    let mut extra = events[0]["detail"].clone();
    extra["unexpected"] = json!(1);
    let file = sb.write("detail-extra.json", &extra.to_string());
    let refused = Command::new(root().join("sandbox/.venv/bin/check-jsonschema"))
        .arg("--schemafile")
        .arg(repo_path("schemas/event.schema.json"))
        .arg(&file)
        .output()
        .expect("run check-jsonschema");
    assert!(!refused.status.success(), "the schema refuses unknown keys");
}

fn details<'a>(events: &'a [Value], event: &str) -> Vec<&'a Value> {
    events
        .iter()
        .map(|e| &e["detail"])
        .filter(|d| d["event"] == event)
        .collect()
}

#[tokio::test]
async fn apply_puts_its_writes_and_a_failed_rollout_on_the_bus_in_the_documented_shape() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    sb.config(json!({"rolloutSeconds": 1}));
    // `api` sorts first; its rollout ends FAILED and `stopOnFailure` halts the rest.
    sb.knobs(json!({"failRollout": ["api"]}));
    let queue = bus_to_queue(&sb);
    let desired = sb.write("desired.yaml", DESIRED);
    let config = desired.to_str().unwrap();
    let sha256 = plumbing(&sb, &["sha256", config]);

    let applied = sb.apply(config, "1m", &["--events-bus", BUS]);
    assert_eq!(applied.code, 3, "a FAILED rollout: {applied}");
    let events = drain(&sb, &queue);
    assert!(!events.is_empty(), "nothing on the queue: {applied}");
    for e in &events {
        assert_eq!(e["source"], "guardduty-ecs-controller");
        assert_eq!(e["detail"]["desiredStateSha256"], sha256);
    }
    assert_details_match_the_schema(&sb, &events);

    let aws = sb.aws("us-east-1").await;
    let writes = details(&events, "write");
    for cluster in ["apps", "batch"] {
        let arn = aws.cluster_arn(cluster).await;
        let tag = writes
            .iter()
            .find(|d| d["resource"] == arn.as_str())
            .unwrap_or_else(|| panic!("no write of {cluster} in {events:#?}"));
        assert_eq!(tag["kind"], "tag_cluster");
        assert_eq!(tag["to"], "true");
        assert_eq!(tag["from"], Value::Null);
        assert_eq!(tag["result"], "success");
        assert_eq!(tag["target"], "us-east-1");
        assert_eq!(tag["region"], "us-east-1");
        assert!(tag["passId"].as_u64().unwrap() >= 1);
    }
    // What the events say was written is what AWS holds.
    let tags = aws.managed_tags().await;
    assert_eq!(tags["apps"].as_deref(), Some("true"));
    assert_eq!(tags["batch"].as_deref(), Some("true"));
    let redeploys: Vec<_> = writes
        .iter()
        .filter(|d| d["kind"] == "redeploy_service")
        .collect();
    assert_eq!(
        redeploys.len(),
        1,
        "api only, then the halt: {redeploys:#?}"
    );
    assert!(redeploys[0]["resource"]
        .as_str()
        .unwrap()
        .ends_with(":service/apps/api"));
    assert_eq!(redeploys[0]["to"], "add_agent");
    assert_eq!(sb.update_service_calls().len(), 1);

    let failed = details(&events, "rollout_failed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0]["resource"], "apps/api");
    assert_eq!(failed[0]["to"], "FAILED");
    let halted = details(&events, "rollouts_halted");
    assert_eq!(halted.len(), 1, "a halt is reported once: {events:#?}");
    let types: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["detail"]["event"].as_str().unwrap(),
                e["detail-type"].as_str().unwrap(),
            )
        })
        .collect();
    for (event, detail_type) in [
        ("write", "GuardDuty ECS Controller Write"),
        ("rollout_failed", "GuardDuty ECS Controller Rollout Failed"),
        (
            "rollouts_halted",
            "GuardDuty ECS Controller Rollouts Halted",
        ),
    ] {
        assert!(types.contains(&(event, detail_type)), "{types:?}");
    }

    // The same records are in the JSON log, under the fixed `event` field.
    let logged: Vec<Value> = applied
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["event"].is_string())
        .collect();
    assert_eq!(
        logged.len(),
        events.len(),
        "one log line per event:\n{}",
        applied.stderr
    );
    assert!(logged
        .iter()
        .any(|l| l["fields"]["event"] == "write" && l["fields"]["kind"] == "tag_cluster"));
}

#[tokio::test]
async fn a_failing_bus_never_stops_reconciliation_and_its_failures_are_counted() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let desired = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: apps, guardDutyManaged: true}\n",
    );
    // Every PutEvents (and the DescribeEventBus lookup) is refused: a role without
    // events:PutEvents. The failed lookup is warned about; the records are still sent.
    sb.faults(json!({"rules": [{"service": "events", "fault": "accessDenied"}]}));
    let daemon = Daemon::start(&sb, &desired, &["--events-bus", BUS]);
    let failed = r#"guardduty_controller_events_total{result="failed"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.metric(failed) >= 1.0),
        "the failed PutEvents is counted:\n{}",
        daemon.logs()
    );
    let tags = sb.aws("us-east-1").await.managed_tags().await;
    assert_eq!(tags["apps"].as_deref(), Some("true"), "the write happened");
    assert_eq!(
        daemon.metric(r#"guardduty_controller_events_total{result="sent"}"#),
        0.0
    );
    assert!(
        daemon.metric(r#"guardduty_controller_reconcile_total{result="success"}"#) >= 1.0,
        "the pass succeeded"
    );
    assert!(daemon.logs().contains("AccessDeniedException"));

    // `apply` too: it converges, exits 0 and says the events did not arrive.
    let untag = sb.write(
        "untag.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: batch, guardDutyManaged: true}\n",
    );
    let applied = sb.apply(untag.to_str().unwrap(), "1m", &["--events-bus", BUS]);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied.stderr.contains("1 audit events failed"),
        "{applied}"
    );
    let tags = sb.aws("us-east-1").await.managed_tags().await;
    assert_eq!(tags["batch"].as_deref(), Some("true"));
}

/// A mistyped `--events-bus`: PutEvents would answer 200 and drop every event, so the
/// controller looks the bus up (DescribeEventBus), puts nothing on it, counts the records
/// failed, says so in an error line naming the bus, and reconciles as usual.
#[tokio::test]
async fn a_bus_that_does_not_exist_is_found_its_records_counted_failed_and_reconciliation_goes_on()
{
    let sb = Sandbox::start();
    sb.seed(FLEET);
    let desired = sb.write(
        "desired.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: apps, guardDutyManaged: true}\n",
    );
    let missing = "gec-audit-typo";
    let daemon = Daemon::start(&sb, &desired, &["--events-bus", missing]);
    let failed = r#"guardduty_controller_events_total{result="failed"}"#;
    assert!(
        daemon.wait_for(Duration::from_secs(30), |d| d.metric(failed) >= 1.0),
        "the records for the missing bus are counted failed:\n{}",
        daemon.logs()
    );
    let tags = sb.aws("us-east-1").await.managed_tags().await;
    assert_eq!(tags["apps"].as_deref(), Some("true"), "the write happened");
    assert!(
        daemon.metric(r#"guardduty_controller_reconcile_total{result="success"}"#) >= 1.0,
        "the pass succeeded"
    );
    assert_eq!(
        daemon.metric(r#"guardduty_controller_events_total{result="sent"}"#),
        0.0
    );
    let logs = daemon.logs();
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["level"] == "ERROR" && l["fields"]["bus"] == missing)
        .unwrap_or_else(|| panic!("no error line naming the bus:\n{logs}"));
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{line}"
    );
    let calls: Vec<String> = sb
        .requests()
        .iter()
        .filter(|r| r["service"] == "events")
        .map(|r| r["operation"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(calls.contains(&"DescribeEventBus".to_owned()), "{calls:?}");
    assert!(
        !calls.contains(&"PutEvents".to_owned()),
        "nothing is put on a bus that does not exist: {calls:?}"
    );

    // `apply` converges, exits 0 and says the bus does not exist.
    let untag = sb.write(
        "untag.yaml",
        "version: 1\ntargets: [{region: us-east-1}]\nclusters:\n  - {name: batch, guardDutyManaged: true}\n",
    );
    let applied = sb.apply(untag.to_str().unwrap(), "1m", &["--events-bus", missing]);
    assert_eq!(applied.code, 0, "{applied}");
    assert!(
        applied
            .stderr
            .contains(&format!("the event bus {missing} does not exist")),
        "{applied}"
    );
    let tags = sb.aws("us-east-1").await.managed_tags().await;
    assert_eq!(tags["batch"].as_deref(), Some("true"));
}
