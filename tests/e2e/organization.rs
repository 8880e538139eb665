//! An AWS Organization end to end (issue 15): the controller acts from the GuardDuty
//! delegated administrator; member accounts are found with ListMembers, their clusters
//! tagged through the member role, their automation turned on through the administrator
//! (UpdateMemberDetectors) only after their exclusion tags; no member ever calls
//! UpdateDetector. Everything is checked in the sandbox's request log and AWS state.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kit::aws::Aws;
use crate::kit::daemon::Daemon;
use crate::kit::Sandbox;
use serde_json::{json, Value};

const ADMIN: &str = "111111111111";
const MEMBERS: [&str; 3] = ["222222222222", "333333333333", "444444444444"];
/// An account that joins the organization later.
const LATE: &str = "555555555555";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const MEMBER_ROLE: &str = "gec-member";

/// Every account and region: Runtime Monitoring on, automation off. 222 and 333 run a
/// `-dev` cluster (excluded); everyone a `-prod` cluster.
fn fleet() -> String {
    let mut out = format!(
        "organization:\n  administrator: \"{ADMIN}\"\n  members: [{}]\naccounts:\n",
        MEMBERS.map(|m| format!("\"{m}\"")).join(", ")
    );
    for account in [ADMIN, MEMBERS[0], MEMBERS[1], MEMBERS[2], LATE] {
        out.push_str(&format!("  \"{account}\":\n    regions:\n"));
        let dev = if has_dev(account) {
            ", {name: batch-dev}"
        } else {
            ""
        };
        for region in REGIONS {
            out.push_str(&format!(
                "      {region}:\n        detector: {{runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}}\n        clusters: [{{name: payments-prod}}{dev}]\n"
            ));
        }
    }
    out
}

/// 222, 333 and the late joiner run a `-dev` cluster (excluded).
fn has_dev(account: &str) -> bool {
    [MEMBERS[0], MEMBERS[1], LATE].contains(&account)
}

fn desired(auto_enable: &str) -> String {
    format!(
        r#"version: 1
organization:
  administrator:
    accountId: "{ADMIN}"
    roleArn: "arn:aws:iam::{ADMIN}:role/gec-admin"
    regions: [{regions}]
  autoEnable: {auto_enable}
  members: all
  memberRoleName: {MEMBER_ROLE}
detector:
  runtimeMonitoring: enabled
  ecsFargateAgentManagement: enabled
clusters:
  - match: {{namePattern: "*-dev"}}
    guardDutyManaged: false
  - match: {{namePattern: "*-prod"}}
    guardDutyManaged: true
reconcile: {{interval: 1h}}
"#,
        regions = REGIONS.join(", "),
    )
}

/// (tags by cluster, automation status) of `account` in `region`, read in that account.
async fn state(
    sb: &Sandbox,
    account: &str,
    region: &str,
) -> (BTreeMap<String, Option<String>>, String) {
    let aws = Aws::new(&sb.sdk_in(account, region).await);
    (aws.managed_tags().await, aws.runtime_monitoring().await.1)
}

fn tags(dev: bool) -> BTreeMap<String, Option<String>> {
    let mut t = BTreeMap::from([("payments-prod".to_owned(), Some("true".to_owned()))]);
    if dev {
        t.insert("batch-dev".to_owned(), Some("false".to_owned()));
    }
    t
}

async fn assert_converged(sb: &Sandbox, account: &str) {
    for region in REGIONS {
        let dev = has_dev(account);
        assert_eq!(
            state(sb, account, region).await,
            (tags(dev), "ENABLED".to_owned()),
            "{account}/{region}"
        );
    }
}

/// Position in the log of the first request matching `pred`.
fn first(log: &[Value], pred: impl Fn(&Value) -> bool) -> Option<usize> {
    log.iter().position(pred)
}

fn is_member_update(r: &Value, account: &str, region: &str) -> bool {
    r["operation"] == "UpdateMemberDetectors"
        && r["account"] == ADMIN
        && r["region"] == region
        && r["params"]["accountIds"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == account))
}

fn is_exclusion_tag(r: &Value, account: &str, region: &str) -> bool {
    r["operation"] == "TagResources"
        && r["account"] == account
        && r["region"] == region
        && r["params"]["Tags"]["GuardDutyManaged"] == "false"
}

#[tokio::test]
async fn apply_converges_from_the_administrator_with_each_members_exclusion_tags_first() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    // Someone set GuardDuty's auto-enable by hand: agent management NEW (unsafe with the
    // exclusion rules), S3 data events NEW (a feature the controller does not own).
    for region in REGIONS {
        use aws_sdk_guardduty::types::{
            AutoEnableMembers, OrgFeature, OrgFeatureAdditionalConfiguration, OrgFeatureStatus,
            OrganizationAdditionalConfiguration, OrganizationFeatureConfiguration,
        };
        let gd = aws_sdk_guardduty::Client::new(&sb.sdk_in(ADMIN, region).await);
        let id = gd
            .list_detectors()
            .send()
            .await
            .expect("ListDetectors")
            .detector_ids()[0]
            .clone();
        gd.update_organization_configuration()
            .detector_id(id)
            .auto_enable_organization_members(AutoEnableMembers::None)
            .features(
                OrganizationFeatureConfiguration::builder()
                    .name(OrgFeature::RuntimeMonitoring)
                    .auto_enable(OrgFeatureStatus::None)
                    .additional_configuration(
                        OrganizationAdditionalConfiguration::builder()
                            .name(OrgFeatureAdditionalConfiguration::EcsFargateAgentManagement)
                            .auto_enable(OrgFeatureStatus::New)
                            .build(),
                    )
                    .build(),
            )
            .features(
                OrganizationFeatureConfiguration::builder()
                    .name(OrgFeature::S3DataEvents)
                    .auto_enable(OrgFeatureStatus::New)
                    .build(),
            )
            .send()
            .await
            .expect("UpdateOrganizationConfiguration");
    }
    let config = sb.write("desired.yaml", &desired("none"));
    let config = config.to_str().unwrap();
    sb.clear_requests();
    let applied = sb.controller(&["apply", "--config", config, "--output", "json"]);
    assert_eq!(applied.code, 0, "{applied}");
    let log = sb.requests();
    for region in REGIONS {
        for member in MEMBERS {
            let update = first(&log, |r| is_member_update(r, member, region))
                .unwrap_or_else(|| panic!("{member}/{region}: no UpdateMemberDetectors"));
            if member == MEMBERS[0] || member == MEMBERS[1] {
                let tag = first(&log, |r| is_exclusion_tag(r, member, region))
                    .unwrap_or_else(|| panic!("{member}/{region}: no exclusion tag"));
                assert!(
                    tag < update,
                    "{member}/{region}: the exclusion tag ({tag}) before automation ({update})"
                );
            }
        }
    }
    let member_writes: Vec<&Value> = log
        .iter()
        .filter(|r| {
            ["UpdateDetector", "GetDetector"].contains(&r["operation"].as_str().unwrap_or(""))
                && MEMBERS.contains(&r["account"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(
        member_writes.is_empty(),
        "no member calls UpdateDetector or GetDetector: {member_writes:#?}"
    );
    for account in [ADMIN, MEMBERS[0], MEMBERS[1], MEMBERS[2]] {
        assert_converged(&sb, account).await;
    }
    // The organization configuration as declared (none) for the features the file
    // manages; S3 data events, which it does not manage, kept as set.
    for region in REGIONS {
        let gd = aws_sdk_guardduty::Client::new(&sb.sdk_in(ADMIN, region).await);
        let id = gd
            .list_detectors()
            .send()
            .await
            .expect("ListDetectors")
            .detector_ids()[0]
            .clone();
        let org = gd
            .describe_organization_configuration()
            .detector_id(id)
            .send()
            .await
            .expect("DescribeOrganizationConfiguration");
        let auto = |name: &str| {
            org.features()
                .iter()
                .find(|f| f.name().map(|n| n.as_str()) == Some(name))
                .and_then(|f| f.auto_enable())
                .map(|a| a.as_str().to_owned())
        };
        let agent = org
            .features()
            .iter()
            .find(|f| f.name().map(|n| n.as_str()) == Some("RUNTIME_MONITORING"))
            .and_then(|f| {
                f.additional_configuration()
                    .iter()
                    .find(|c| c.name().map(|n| n.as_str()) == Some("ECS_FARGATE_AGENT_MANAGEMENT"))
                    .and_then(|c| c.auto_enable())
                    .map(|a| a.as_str().to_owned())
            });
        assert_eq!(
            auto("RUNTIME_MONITORING").as_deref(),
            Some("NONE"),
            "{region}"
        );
        assert_eq!(agent.as_deref(), Some("NONE"), "{region}: set back to none");
        assert_eq!(
            auto("S3_DATA_EVENTS").as_deref(),
            Some("NEW"),
            "{region}: not the controller's"
        );
    }
    let plan = sb.controller(&["plan", "--config", config]);
    assert_eq!(plan.code, 0, "converged: {plan}");
    let status = sb.controller(&["status", "--config", config]);
    let member = format!(
        "Target {}/us-east-1 (organization member, features through {ADMIN}/us-east-1)",
        MEMBERS[0]
    );
    let admin = format!("Target {ADMIN}/us-east-1 (organization administrator)");
    assert!(
        status.stdout.contains(&member) && status.stdout.contains(&admin),
        "status says how each account is managed: {status}"
    );
}

#[tokio::test]
async fn a_member_that_joins_is_covered_by_the_next_daemon_pass_without_editing_the_file() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    let config = sb.write("desired.yaml", &desired("none"));
    let daemon = Daemon::start(&sb, &config, &[]);
    let passes = |d: &Daemon| d.metric_sum("guardduty_controller_reconcile_total", "");
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| passes(d) >= 1.0),
        "{}",
        daemon.logs()
    );
    let joined = sb.control_post(
        "organization/members",
        json!({"administrator": ADMIN, "account": LATE, "regions": REGIONS}),
    );
    assert_eq!(joined["account"], LATE, "{joined}");
    let seen = passes(&daemon);
    daemon.signal("HUP");
    assert!(
        daemon.wait_for(Duration::from_secs(60), |d| passes(d) > seen),
        "{}",
        daemon.logs()
    );
    assert_converged(&sb, LATE).await;
    for (target, management) in [
        (format!("{LATE}/us-east-1"), "organization_member"),
        (format!("{ADMIN}/eu-west-1"), "organization_administrator"),
    ] {
        let series = format!(
            "guardduty_controller_target_info{{management=\"{management}\",target=\"{target}\"}}"
        );
        assert_eq!(daemon.metric(&series), 1.0, "{series}");
    }
}

#[tokio::test]
async fn a_member_whose_role_cannot_be_assumed_is_access_denied_and_the_others_converge() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    let unreachable = MEMBERS[2];
    sb.faults(json!({"rules": [
        {"service": "sts", "operation": "AssumeRole",
         "params": {"RoleArn": format!("arn:aws:iam::{unreachable}:role/{MEMBER_ROLE}")},
         "fault": "accessDenied"},
    ]}));
    let config = sb.write("desired.yaml", &desired("none"));
    let applied = sb.controller(&[
        "apply",
        "--config",
        config.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(applied.code, 1, "a target failed: {applied}");
    let out = applied.json();
    let errors: Vec<&Value> = out["errors"].as_array().expect("errors").iter().collect();
    assert_eq!(
        errors.len(),
        REGIONS.len(),
        "one per region of the member: {errors:#?}"
    );
    for e in &errors {
        let text = e.to_string();
        assert!(
            text.contains(unreachable) && text.contains("access_denied"),
            "the unreachable member is access_denied: {e}"
        );
    }
    for region in REGIONS {
        assert_eq!(
            state(&sb, unreachable, region).await.1,
            "DISABLED",
            "{unreachable}/{region}"
        );
    }
    for account in [ADMIN, MEMBERS[0], MEMBERS[1]] {
        assert_converged(&sb, account).await;
    }
}

#[tokio::test]
async fn a_member_whose_exclusion_tags_fail_gets_no_automation_and_apply_exits_3_naming_it() {
    let sb = Sandbox::start();
    sb.seed(&fleet());
    let untaggable = MEMBERS[0];
    sb.faults(json!({"rules": [
        {"service": "tagging", "account": untaggable, "fault": "accessDenied"},
    ]}));
    let config = sb.write("desired.yaml", &desired("none"));
    let applied = sb.controller(&[
        "apply",
        "--config",
        config.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(applied.code, 3, "applied, some actions failed: {applied}");
    let out = applied.json();
    let failed: Vec<&Value> = out["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["result"] == "error")
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|r| r["account"] == untaggable),
        "apply names the member whose tags failed, and only it: {failed:#?}"
    );
    let log = sb.requests();
    for region in REGIONS {
        assert_eq!(
            state(&sb, untaggable, region).await.1,
            "DISABLED",
            "{untaggable}/{region}"
        );
        assert!(
            first(&log, |r| is_member_update(r, untaggable, region)).is_none(),
            "{untaggable}/{region}: no UpdateMemberDetectors after its tags failed"
        );
    }
    for account in [ADMIN, MEMBERS[1], MEMBERS[2]] {
        assert_converged(&sb, account).await;
    }
}

#[test]
fn validate_refuses_auto_enable_with_exclusion_rules_and_says_why() {
    let dir = tempfile::TempDir::new().expect("a temp dir");
    for word in ["new", "all"] {
        let path = dir.path().join(format!("org-{word}.yaml"));
        std::fs::write(&path, desired(word)).expect("write");
        let run = crate::kit::run_offline(&["validate", path.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{run}");
        assert!(
            run.stderr.contains("organization.autoEnable") && run.stderr.contains("exclusion"),
            "a located error that says why: {run}"
        );
    }
}
