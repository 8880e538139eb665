//! Least privilege, end to end: every AWS call the controller makes in its flows (`plan`,
//! `apply` with tags to add and remove, detector changes and a service to redeploy, whose
//! tasks and coverage it reads, a daemon pass, a target
//! reached by AssumeRole) is allowed by `deploy/iam-policy.json`, and every action the
//! policy grants is used by one of them. The calls come from the sandbox's request log.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::kit::daemon::Daemon;
use crate::kit::{repo_path, Sandbox};
use serde_json::{json, Value};

/// Two targets: the credentials' own account, and one reached through a role.
pub(crate) const FLEET: &str = r#"
accounts:
  "123456789012":
    regions:
      us-east-1:
        detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
        clusters:
          - name: payments-prod
            tags: {team: payments}
          - name: checkout-prod
            tags: {GuardDutyManaged: "True"}
          - name: sandbox
          - name: scratch
            tags: {GuardDutyManaged: "true"}
        # Started while payments-prod is not covered: no agent, so the apply redeploys
        # them: payments-api with UpdateService, payments-web through CodeDeploy (its
        # deployment group, gec-payments-prod/payments-web, is seeded with it).
        services:
          - {name: payments-api, cluster: payments-prod, desiredCount: 2}
          - {name: payments-web, cluster: payments-prod, desiredCount: 1, deploymentController: CODE_DEPLOY}
  "111111111111":
    regions:
      eu-west-1:
        detector: {runtimeMonitoring: DISABLED, ecsFargateAgentManagement: DISABLED}
        clusters:
          - name: orders-prod
            tags: {team: orders}
          - name: legacy
            tags: {GuardDutyManaged: "true"}
"#;

pub(crate) const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/guardduty-ecs-controller";

/// An organization (issue 15): the administrator 111111111111 and one member
/// 222222222222 in us-east-1, automation off everywhere, a cluster to tag in each.
pub(crate) const ORG_FLEET: &str = r#"
organization: {administrator: "111111111111", members: ["222222222222"]}
accounts:
  "111111111111":
    regions:
      us-east-1:
        detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
        clusters: [{name: admin-prod}]
  "222222222222":
    regions:
      us-east-1:
        detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
        clusters: [{name: member-prod}]
"#;

/// From the administrator: automation on, auto-enable `new` (no exclusion rule, so it is
/// allowed), so every organization call is made: ListMembers, GetMemberDetectors,
/// UpdateMemberDetectors, Describe/UpdateOrganizationConfiguration.
pub(crate) const ORG_DESIRED: &str = r#"
version: 1
organization:
  administrator:
    accountId: "111111111111"
    roleArn: arn:aws:iam::111111111111:role/guardduty-ecs-controller
    regions: [us-east-1]
  autoEnable: new
  memberRoleName: guardduty-ecs-controller
detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}
clusters:
  - match: {namePattern: "*-prod"}
    guardDutyManaged: true
reconcile: {interval: 1h}
"#;

/// A desired state for both targets. The `match` rule makes the controller list clusters.
/// The desired states below turn coverage off for most clusters: the coverage-loss ceiling
/// is raised where the controller runs (the file cannot raise it).
pub(crate) const RAISED: [&str; 2] = ["--max-coverage-loss-ceiling", "1"];
/// The deploy kit's lease table (deploy/cloudformation.yaml, `LeaseTableName`).
const LEASE_TABLE: &str = "guardduty-ecs-controller-lease";

pub(crate) fn desired(automation: &str, sandbox: &str, scratch: &str, legacy: &str) -> String {
    format!(
        r#"
version: 1
targets:
  - region: us-east-1
  - region: eu-west-1
    roleArn: {ROLE_ARN}
detector: {{runtimeMonitoring: enabled, ecsFargateAgentManagement: {automation}}}
clusters:
  - {{name: sandbox, guardDutyManaged: {sandbox}}}
  - {{name: scratch, guardDutyManaged: {scratch}}}
  - {{name: legacy, guardDutyManaged: {legacy}}}
  - match: {{namePattern: "*-prod"}}
    guardDutyManaged: true
redeploy: {{settleTime: 0s}}
reconcile: {{interval: 1h}}
"#
    )
}

// ---------------------------------------------------------------------------------------
// What a logged request asks IAM for.

/// One authorization the request needs: an action on a resource, with the request's tag
/// keys (`aws:TagKeys`) where the action has them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Authz {
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) tag_keys: Option<Vec<String>>,
}

impl std::fmt::Display for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if let Some(keys) = &self.tag_keys {
            write!(f, " with aws:TagKeys {keys:?}")?;
        }
        Ok(())
    }
}

/// The IAM service prefix of a SigV4 signing name, as the sandbox logs it.
fn iam_prefix(service: &str) -> &str {
    match service {
        "tagging" => "tag",
        other => other,
    }
}

/// A cluster's name from its name or ARN (`default` when the request names none).
fn last_segment(v: &Value) -> String {
    let s = v.as_str().unwrap_or("default");
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

/// The last `/` segment of a name or ARN, `default` when the request names none.
fn last_segment_or(v: &Value, default: &str) -> String {
    let s = v.as_str().unwrap_or(default);
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The authorizations one logged request needs. The Resource Groups Tagging API acts with
/// the caller's permissions on the resource's own service, so `TagResources` also needs
/// `<service>:TagResource` on each ARN (and `UntagResources`, `<service>:UntagResource`).
pub(crate) fn authorizations(entry: &Value) -> Vec<Authz> {
    let service = entry["service"].as_str().unwrap_or_default();
    let op = entry["operation"].as_str().unwrap_or_default();
    let region = entry["region"].as_str().unwrap_or_default();
    let account = entry["account"].as_str().unwrap_or_default();
    let params = &entry["params"];
    let action = format!("{}:{op}", iam_prefix(service));
    let plain = |resource: String| Authz {
        action: action.clone(),
        resource,
        tag_keys: None,
    };
    // Resources of a cluster, given by ARN or by id / name.
    let in_cluster = |params: &Value, ids: &[String], kind: &str| -> Vec<Authz> {
        let cluster = last_segment(&params["cluster"]);
        ids.iter()
            .map(|id| {
                plain(if id.starts_with("arn:") {
                    id.clone()
                } else {
                    format!("arn:aws:ecs:{region}:{account}:{kind}/{cluster}/{id}")
                })
            })
            .collect()
    };
    match (service, op) {
        ("ecs", "DescribeClusters") if !strings(&params["clusters"]).is_empty() => {
            strings(&params["clusters"])
                .into_iter()
                .map(|c| {
                    plain(if c.starts_with("arn:") {
                        c
                    } else {
                        format!("arn:aws:ecs:{region}:{account}:cluster/{c}")
                    })
                })
                .collect()
        }
        // ECS authorizes these on the resource types of the Service Authorization
        // Reference: ListTasks on container instances, the others on tasks and services,
        // all named `<type>/<cluster name>/<id>`.
        ("ecs", "ListTasks") => vec![plain(format!(
            "arn:aws:ecs:{region}:{account}:container-instance/{}/*",
            last_segment(&params["cluster"])
        ))],
        ("ecs", "DescribeTasks") => in_cluster(params, &strings(&params["tasks"]), "task"),
        ("ecs", "DescribeServices") => in_cluster(params, &strings(&params["services"]), "service"),
        ("ecs", "UpdateService") if params["service"].is_string() => {
            in_cluster(params, &one_or_many(&params["service"]), "service")
        }
        ("guardduty", _) if params["DetectorId"].is_string() => vec![plain(format!(
            "arn:aws:guardduty:{region}:{account}:detector/{}",
            params["DetectorId"].as_str().unwrap()
        ))],
        // CodeDeploy authorizes on the application and deployment group of the Service
        // Authorization Reference (`application:NAME`, `deploymentgroup:APP/GROUP`).
        ("codedeploy", "BatchGetApplications") => strings(&params["applicationNames"])
            .into_iter()
            .map(|app| {
                plain(codedeploy_arn(
                    region,
                    account,
                    &format!("application:{app}"),
                ))
            })
            .collect(),
        ("codedeploy", "ListDeploymentGroups") => vec![plain(codedeploy_arn(
            region,
            account,
            &format!(
                "application:{}",
                params["applicationName"].as_str().unwrap_or("*")
            ),
        ))],
        ("codedeploy", "BatchGetDeploymentGroups" | "ListDeployments") => {
            let app = params["applicationName"].as_str().unwrap_or("*");
            let mut groups = strings(&params["deploymentGroupNames"]);
            groups.extend(params["deploymentGroupName"].as_str().map(str::to_owned));
            groups
                .into_iter()
                .map(|g| {
                    plain(codedeploy_arn(
                        region,
                        account,
                        &format!("deploymentgroup:{app}/{g}"),
                    ))
                })
                .collect()
        }
        // Authorized on each deployment's group, which the request (ids only) does not
        // name: any group of the account and region.
        ("codedeploy", "BatchGetDeployments") => vec![plain(codedeploy_arn(
            region,
            account,
            "deploymentgroup:*/*",
        ))],
        // CreateDeployment also checks, on the caller, the deployment configuration it
        // uses and the registration of the AppSpec revision with the application (AWS's
        // amazon-ecs-deploy-task-definition README, cited in deploy/README.md).
        ("codedeploy", "CreateDeployment") => {
            let app = params["applicationName"].as_str().unwrap_or("*");
            let group = params["deploymentGroupName"].as_str().unwrap_or("*");
            let config = params["deploymentConfigName"]
                .as_str()
                .unwrap_or("CodeDeployDefault.ECSAllAtOnce");
            vec![
                plain(codedeploy_arn(
                    region,
                    account,
                    &format!("deploymentgroup:{app}/{group}"),
                )),
                Authz {
                    action: "codedeploy:GetDeploymentConfig".to_owned(),
                    resource: codedeploy_arn(
                        region,
                        account,
                        &format!("deploymentconfig:{config}"),
                    ),
                    tag_keys: None,
                },
                Authz {
                    action: "codedeploy:RegisterApplicationRevision".to_owned(),
                    resource: codedeploy_arn(region, account, &format!("application:{app}")),
                    tag_keys: None,
                },
            ]
        }
        // The lease table's item calls are authorized on the table (Service Authorization
        // Reference, DynamoDB: resource type `table`).
        ("dynamodb", _) => vec![plain(format!(
            "arn:aws:dynamodb:{region}:{account}:table/{}",
            params["TableName"].as_str().unwrap_or("*")
        ))],
        // PutEvents is authorized on each entry's bus (`default` when an entry names
        // none); DescribeEventBus on the bus it names.
        ("events", "PutEvents") => {
            let mut buses: Vec<String> = params["Entries"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| last_segment_or(&e["EventBusName"], "default"))
                        .collect()
                })
                .unwrap_or_default();
            buses.sort();
            buses.dedup();
            buses
                .into_iter()
                .map(|bus| plain(format!("arn:aws:events:{region}:{account}:event-bus/{bus}")))
                .collect()
        }
        ("events", "DescribeEventBus") => vec![plain(format!(
            "arn:aws:events:{region}:{account}:event-bus/{}",
            last_segment_or(&params["Name"], "default")
        ))],
        ("sts", "AssumeRole") => vec![plain(params["RoleArn"].as_str().unwrap_or("*").to_owned())],
        // Authorized on the principal whose policies are simulated (the execution role).
        ("iam", "SimulatePrincipalPolicy") => vec![plain(
            params["PolicySourceArn"].as_str().unwrap_or("*").to_owned(),
        )],
        ("tagging", "TagResources" | "UntagResources") => {
            let (per_resource, keys) = if op == "TagResources" {
                let keys = params["Tags"]
                    .as_object()
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default();
                ("TagResource", keys)
            } else {
                ("UntagResource", strings(&params["TagKeys"]))
            };
            let mut out = vec![plain("*".to_owned())];
            for arn in strings(&params["ResourceARNList"]) {
                let prefix = arn.split(':').nth(2).unwrap_or_default().to_owned();
                out.push(Authz {
                    action: format!("{prefix}:{per_resource}"),
                    resource: arn,
                    tag_keys: Some(keys.clone()),
                });
            }
            out
        }
        // Everything else (ListClusters, ListDetectors, an operation the controller does not
        // call today, a request whose resources could not be read): on `*`, which only a
        // statement on `*` allows.
        _ => vec![plain("*".to_owned())],
    }
}

fn codedeploy_arn(region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:codedeploy:{region}:{account}:{resource}")
}

// ---------------------------------------------------------------------------------------
// A small evaluator for the policy file: enough for what it uses, and loud about the rest.

/// `*` and `?` wildcards, as in IAM's Action (case-insensitive) and Resource elements.
fn wildcard(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) => a == b && go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

pub(crate) fn one_or_many(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(_) => strings(v),
        Value::Null => Vec::new(),
        other => panic!("expected a string or a list, got {other}"),
    }
}

/// Whether the statement's `Condition` holds for the request. Only the operators and keys
/// the policy uses are understood; anything else fails the test so it gets modelled.
fn condition_holds(condition: &Value, request: &Authz) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object()
            .unwrap_or_else(|| panic!("condition {operator} is not an object"))
            .iter()
            .all(|(key, wanted)| {
                assert_eq!(
                    key, "aws:TagKeys",
                    "the test's policy evaluator does not model condition key {key}"
                );
                let present = request.tag_keys.as_ref();
                let wanted = one_or_many(wanted);
                match operator.as_str() {
                    // IAM: true when the key is absent or every request value is listed.
                    "ForAllValues:StringEquals" => {
                        present.is_none_or(|keys| keys.iter().all(|k| wanted.contains(k)))
                    }
                    "ForAnyValue:StringEquals" => {
                        present.is_some_and(|keys| keys.iter().any(|k| wanted.contains(k)))
                    }
                    "Null" => {
                        let absent = present.is_none_or(Vec::is_empty);
                        wanted.iter().all(|w| (w == "true") == absent)
                    }
                    other => panic!("the test's policy evaluator does not model {other}"),
                }
            })
    })
}

/// The policy's statements, checked for the elements the evaluator understands.
pub(crate) fn statements(policy: &Value) -> Vec<Value> {
    let list = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        other => panic!("Statement is {other}"),
    };
    for s in &list {
        for unsupported in ["NotAction", "NotResource", "Principal", "NotPrincipal"] {
            assert!(
                s.get(unsupported).is_none(),
                "the test's policy evaluator does not model {unsupported}: {s}"
            );
        }
    }
    list
}

fn statement_matches(statement: &Value, request: &Authz) -> bool {
    one_or_many(&statement["Action"])
        .iter()
        .any(|a| wildcard(&a.to_lowercase(), &request.action.to_lowercase()))
        && one_or_many(&statement["Resource"])
            .iter()
            .any(|r| wildcard(r, &request.resource))
        && statement
            .get("Condition")
            .is_none_or(|c| condition_holds(c, request))
}

/// The actions (lower case) the logged calls of the flows need, and those of the calls
/// `policy` does not allow (`flow: request (request entry)`).
pub(crate) fn check_calls(
    policy: &Value,
    log: &[(String, Value)],
) -> (BTreeSet<String>, Vec<String>) {
    let mut used = BTreeSet::new();
    let mut denied = Vec::new();
    for (flow, entry) in log {
        for request in authorizations(entry) {
            if !allowed(policy, &request) {
                denied.push(format!("{flow}: {request} (request {entry})"));
            }
            used.insert(request.action.to_lowercase());
        }
    }
    (used, denied)
}

/// IAM's decision for one request under this policy alone: an explicit deny wins, then
/// an allow, else the implicit deny.
pub(crate) fn allowed(policy: &Value, request: &Authz) -> bool {
    let matching: Vec<Value> = statements(policy)
        .into_iter()
        .filter(|s| statement_matches(s, request))
        .collect();
    !matching.iter().any(|s| s["Effect"] == "Deny")
        && matching.iter().any(|s| s["Effect"] == "Allow")
}

fn policy() -> Value {
    let path = repo_path("deploy/iam-policy.json");
    let text = std::fs::read_to_string(&path).expect("read deploy/iam-policy.json");
    serde_json::from_str(&text).expect("deploy/iam-policy.json is JSON")
}

// ---------------------------------------------------------------------------------------

/// The requests of one controller run: the log is cleared before and read right after,
/// so no request of the harness is counted.
pub(crate) fn calls_of(sb: &Sandbox, flow: &str, run: impl FnOnce()) -> Vec<(String, Value)> {
    sb.clear_requests();
    run();
    let log = sb.requests();
    assert!(!log.is_empty(), "{flow}: no AWS request at all");
    for entry in &log {
        let status = entry["status"].as_u64().unwrap_or_default();
        assert!(
            (200..300).contains(&status),
            "{flow}: a request failed, so the flow did not run through: {entry}"
        );
    }
    log.into_iter().map(|e| (flow.to_owned(), e)).collect()
}

#[test]
fn the_policy_allows_every_call_of_every_flow_and_nothing_they_do_not_use() {
    let sb = Sandbox::start();
    sb.seed(FLEET);
    // Rollouts complete within UpdateService: the apply need not wait for them.
    sb.config(json!({"rolloutSeconds": 0}));
    let apply_file = sb.write(
        "desired.yaml",
        &desired("enabled", "false", "absent", "absent"),
    );
    let config = apply_file.to_str().unwrap();
    let mut log = Vec::new();

    log.extend(calls_of(&sb, "plan", || {
        let plan = sb.controller(
            &[
                &["plan", "--config", config, "--output", "json"][..],
                &RAISED,
            ]
            .concat(),
        );
        assert_eq!(plan.code, 2, "changes pending: {plan}");
    }));
    log.extend(calls_of(&sb, "apply", || {
        let apply = sb.controller(
            &[
                &[
                    "apply",
                    "--config",
                    config,
                    "--output",
                    "json",
                    "--rollout-poll",
                    "1s",
                ][..],
                &RAISED,
            ]
            .concat(),
        );
        assert_eq!(apply.code, 0, "converged: {apply}");
    }));
    // The daemon gets a different desired state, so its pass writes too.
    let daemon_file = sb.write(
        "daemon.yaml",
        &desired("disabled", "absent", "false", "false"),
    );
    // As the deploy kit runs it: on the lease table, with audit events on the account's
    // `default` bus (created before the log is cleared: the table is the stack's).
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(crate::lease::create_lease_table(&sb, LEASE_TABLE));
    log.extend(calls_of(&sb, "daemon", || {
        let extra = [
            &RAISED[..],
            &["--lease-table", LEASE_TABLE, "--events-bus", "default"],
        ]
        .concat();
        let mut daemon = Daemon::start(&sb, &daemon_file, &extra);
        // Leading (the lease taken), its pass written, and the writes' audit events sent.
        assert!(
            daemon.wait_for(Duration::from_secs(60), |d| {
                d.get("/readyz").0 == 200
                    && d.metric("guardduty_controller_events_total{result=\"sent\"}") >= 1.0
            }),
            "the daemon leads, writes and puts its audit events: {}",
            daemon.logs()
        );
        // Stopped before the log is read: every request of its pass is in it.
        daemon.signal("TERM");
        assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    }));

    // The organization flow: a fresh sandbox with an organization, one apply from its
    // delegated administrator.
    sb.reset();
    sb.seed(ORG_FLEET);
    let org_file = sb.write("organization.yaml", ORG_DESIRED);
    log.extend(calls_of(&sb, "organization", || {
        let apply = sb.controller(&["apply", "--config", org_file.to_str().unwrap()]);
        assert_eq!(apply.code, 0, "converged: {apply}");
    }));
    let org_ops: BTreeSet<String> = log
        .iter()
        .filter(|(f, _)| f == "organization")
        .map(|(_, e)| e["operation"].as_str().unwrap_or_default().to_owned())
        .collect();
    for op in [
        "ListMembers",
        "GetMemberDetectors",
        "UpdateMemberDetectors",
        "DescribeOrganizationConfiguration",
        "UpdateOrganizationConfiguration",
    ] {
        assert!(
            org_ops.contains(op),
            "the organization flow did not call {op}: {org_ops:?}"
        );
    }

    // Each flow did what it is here for.
    let ops = |flow: &str| -> BTreeSet<String> {
        log.iter()
            .filter(|(f, _)| f == flow)
            .map(|(_, e)| e["operation"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let writes = ["TagResources", "UntagResources", "UpdateDetector"];
    assert!(
        writes.iter().all(|w| !ops("plan").contains(*w)),
        "plan wrote: {:?}",
        ops("plan")
    );
    for flow in ["apply", "daemon"] {
        for w in writes {
            assert!(
                ops(flow).contains(w),
                "{flow} did not call {w}: {:?}",
                ops(flow)
            );
        }
    }
    assert!(
        !ops("plan").contains("UpdateService"),
        "plan redeployed: {:?}",
        ops("plan")
    );
    assert!(
        ops("apply").contains("UpdateService") && ops("apply").contains("CreateDeployment"),
        "apply did not redeploy the services without the agent: {:?}",
        ops("apply")
    );
    for flow in ["plan", "apply", "daemon"] {
        assert!(
            ops(flow).contains("AssumeRole"),
            "{flow} reached the roleArn target without AssumeRole: {:?}",
            ops(flow)
        );
        let in_role_account = log
            .iter()
            .any(|(f, e)| f == flow && e["account"] == "111111111111");
        assert!(in_role_account, "{flow} made no call in the role's account");
    }

    // (a) Every call is allowed by the policy.
    let policy = policy();
    let (used, denied) = check_calls(&policy, &log);
    assert!(
        denied.is_empty(),
        "deploy/iam-policy.json does not allow these calls of the controller:\n{}",
        denied.join("\n")
    );

    // (b) Every action the policy grants is used by some flow. A wildcard would grant
    // actions no flow uses (the checker above still understands it): name each action.
    let granted: Vec<String> = statements(&policy)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| one_or_many(&s["Action"]))
        .collect();
    let wildcards: Vec<&String> = granted.iter().filter(|a| a.contains(['*', '?'])).collect();
    assert!(
        wildcards.is_empty(),
        "deploy/iam-policy.json grants wildcard actions, which cover more than the controller \
         calls: {wildcards:?} (used: {used:?})"
    );
    let unused: Vec<&String> = granted
        .iter()
        .filter(|a| !used.contains(&a.to_lowercase()))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/iam-policy.json grants actions no flow of the controller uses: {unused:?} \
         (used: {used:?})"
    );
}

/// The evaluator refuses what the policy does not grant, so the end-to-end test above fails
/// as soon as the controller calls something new, or writes a tag key other than
/// `GuardDutyManaged`, or reaches outside the resources the policy names.
#[test]
fn the_checker_refuses_calls_outside_the_policy() {
    let policy = policy();
    let entry = |service: &str, operation: &str, params: Value| {
        json!({"service": service, "operation": operation, "region": "us-east-1",
               "account": "123456789012", "params": params})
    };
    let decide = |e: Value| -> Vec<bool> {
        authorizations(&e)
            .iter()
            .map(|r| allowed(&policy, r))
            .collect()
    };
    let cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/payments-prod";

    // Granted.
    assert_eq!(decide(entry("ecs", "ListClusters", json!({}))), [true]);
    assert_eq!(
        decide(entry(
            "tagging",
            "TagResources",
            json!({"ResourceARNList": [cluster], "Tags": {"GuardDutyManaged": "true"}})
        )),
        [true, true]
    );
    assert_eq!(
        decide(entry(
            "tagging",
            "UntagResources",
            json!({"ResourceARNList": [cluster], "TagKeys": ["GuardDutyManaged"]})
        )),
        [true, true]
    );
    assert_eq!(
        decide(entry("sts", "AssumeRole", json!({"RoleArn": ROLE_ARN}))),
        [true]
    );
    assert_eq!(
        decide(entry(
            "ecs",
            "ListTasks",
            json!({"cluster": cluster, "desiredStatus": "RUNNING"})
        )),
        [true]
    );
    assert_eq!(
        decide(entry(
            "ecs",
            "DescribeServices",
            json!({"cluster": cluster, "services": ["api", "web"]})
        )),
        [true, true]
    );
    assert_eq!(
        decide(entry(
            "ecs",
            "UpdateService",
            json!({"cluster": cluster, "service": "api", "forceNewDeployment": true})
        )),
        [true]
    );

    // Not granted.
    for (label, e) in [
        (
            "an operation the policy lacks (standalone tasks are never stopped)",
            entry(
                "ecs",
                "StopTask",
                json!({"cluster": "payments-prod", "task": "0123"}),
            ),
        ),
        (
            "a service write by another name",
            entry(
                "ecs",
                "DeleteService",
                json!({"cluster": "payments-prod", "service": "api"}),
            ),
        ),
        (
            "another service",
            entry("ec2", "DescribeInstances", json!({})),
        ),
        (
            "a detector write by another name",
            entry("guardduty", "DeleteDetector", json!({"DetectorId": "abc"})),
        ),
        (
            "another role",
            entry(
                "sts",
                "AssumeRole",
                json!({"RoleArn": "arn:aws:iam::111111111111:role/admin"}),
            ),
        ),
    ] {
        assert_eq!(decide(e), [false], "{label}");
    }
    let other_key = entry(
        "tagging",
        "TagResources",
        json!({"ResourceARNList": [cluster], "Tags": {"GuardDutyManaged": "true", "team": "x"}}),
    );
    assert_eq!(
        decide(other_key),
        [true, false],
        "a tag key other than GuardDutyManaged"
    );
    let a_service = entry(
        "tagging",
        "TagResources",
        json!({"ResourceARNList": ["arn:aws:ecs:us-east-1:123456789012:service/payments-prod/api"],
               "Tags": {"GuardDutyManaged": "true"}}),
    );
    assert_eq!(
        decide(a_service),
        [true, false],
        "a resource that is not a cluster"
    );
    assert_eq!(
        decide(entry(
            "tagging",
            "UntagResources",
            json!({"ResourceARNList": [cluster], "TagKeys": []})
        )),
        [true, false],
        "no tag key at all (ForAllValues alone would allow it; the Null condition does not)"
    );
}
