//! Planner tests: labelled tables for each rule of DESIGN §2–§4, and property tests over
//! random fleets and desired states checked against a small reference model.

use serde_json::{json, Value};

use super::*;
use crate::desired::{self, ClusterRule, DetectorSpec, MatchSpec, UnmatchedPolicy};
use crate::observed::{
    ClusterStatus, ObservedCluster, ObservedDetector, ObservedFeature, EKS_RUNTIME_MONITORING,
};
use crate::testing::{
    cluster, cluster_arn, desired_with as desired, detector, observed_in, target, ACCOUNT,
};

const KEY: &str = MANAGED_TAG_KEY;
const ECS_AUTO: &str = ECS_FARGATE_AGENT_MANAGEMENT;
/// Detector switch fixtures: a status the detector reports, or `MISSING` when it does not
/// list the feature (or the additional configuration) at all.
const ON: Option<&str> = Some("ENABLED");
const OFF: Option<&str> = Some("DISABLED");
const MISSING: Option<&str> = None;
/// What a detector reports: (`RUNTIME_MONITORING`, its `ECS_FARGATE_AGENT_MANAGEMENT`).
type Switches = (Option<&'static str>, Option<&'static str>);

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A detector reporting `RUNTIME_MONITORING` as `rm` and its additional configuration
/// `ECS_FARGATE_AGENT_MANAGEMENT` as `auto`; `MISSING` leaves the entry out.
fn switches(rm: Option<&str>, auto: Option<&str>) -> ObservedDetector {
    let mut d = detector();
    if let Some(status) = rm {
        d = d.runtime(status);
    }
    if let Some(status) = auto {
        // Panics without `rm`: an additional configuration needs its feature.
        d = d.automation(status);
    }
    d
}

fn plan(desired: &DesiredState, observed: &ObservedTarget) -> TargetPlan {
    plan_target(desired, observed, PlanOptions::default())
}

/// One line per action, e.g. `tag prod none->true`, `detector RUNTIME_MONITORING DISABLED->ENABLED`.
fn describe(action: &Action) -> String {
    let or_none = |v: Option<&str>| v.unwrap_or("none").to_owned();
    match action {
        Action::TagCluster {
            cluster, from, to, ..
        } => format!("tag {cluster} {}->{to}", or_none(from.as_deref())),
        Action::UntagCluster { cluster, from, .. } => format!("untag {cluster} {from}"),
        Action::UpdateDetector {
            feature, from, to, ..
        } => format!(
            "detector {feature} {}->{to}",
            or_none(from.as_ref().map(FeatureStatus::as_str))
        ),
        Action::UpdateOrganizationConfiguration {
            feature, from, to, ..
        } => format!(
            "organization {feature} {}->{}",
            or_none(from.as_deref()),
            to.as_aws()
        ),
        Action::RedeployService {
            cluster, service, ..
        } => format!("redeploy {cluster}/{service}"),
    }
}

fn summary(plan: &TargetPlan) -> Vec<String> {
    plan.actions.iter().map(describe).collect()
}

fn row<'a>(plan: &'a TargetPlan, cluster: &str) -> Option<&'a ClusterRow> {
    plan.clusters.iter().find(|r| r.cluster == cluster)
}

/// `{name: NAME, guardDutyManaged: TAG}`
fn exact(name: &str, tag: &str) -> String {
    format!("{{name: '{name}', guardDutyManaged: {tag}}}")
}

/// `{match: {SELECTOR}, guardDutyManaged: TAG}`
fn matching(selector: &str, tag: &str) -> String {
    format!("{{match: {{{selector}}}, guardDutyManaged: {tag}}}")
}

/// A `clusters:` section with these rules, in order.
fn clusters(rules: &[String]) -> String {
    format!("clusters: [{}]\n", rules.join(", "))
}

// ---------------------------------------------------------------------------------------
// Rule precedence
// ---------------------------------------------------------------------------------------

#[test]
fn rules_decide_the_tag_by_precedence() {
    use ManagedTag::{Absent, False, True};
    let arn = |region: &str| cluster_arn(region, ACCOUNT, "prod");
    let (east, west) = ("us-east-1", "eu-west-1");
    // (label, sections, region, what the rules ask of "prod", which is tagged team=payments)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, &str, Option<ManagedTag>)> = vec![
        ("an exact name beats a match rule listed before it",
            clusters(&[matching("namePattern: '*'", "false"), exact("prod", "true")]), east, Some(True)),
        ("an exact ARN names the cluster",
            clusters(&[exact(&arn(east), "true")]), east, Some(True)),
        ("an exact ARN beats a match rule",
            clusters(&[matching("namePattern: '*'", "false"), exact(&arn(east), "absent")]), east, Some(Absent)),
        ("an ARN of the same name in another region names another cluster",
            clusters(&[exact(&arn(west), "true")]), east, None),
        ("an exact name is not a prefix",
            clusters(&[exact("pro", "true")]), east, None),
        ("an exact name is not a glob",
            clusters(&[exact("p*", "true")]), east, None),
        ("the first matching match rule wins",
            clusters(&[matching("namePattern: 'p*'", "true"), matching("namePattern: '*'", "false")]), east, Some(True)),
        ("the first matching match rule wins, in the other order too",
            clusters(&[matching("namePattern: '*'", "false"), matching("namePattern: 'p*'", "true")]), east, Some(False)),
        ("a match rule that does not match falls through to the next",
            clusters(&[matching("namePattern: 'x*'", "false"), matching("namePattern: '*od'", "true")]), east, Some(True)),
        ("a match by tag selects a cluster carrying the tag",
            clusters(&[matching("tags: {team: payments}", "true")]), east, Some(True)),
        ("a match by tag needs the exact value",
            clusters(&[matching("tags: {team: Payments}", "true")]), east, None),
        ("a match by tags needs every listed tag",
            clusters(&[matching("tags: {team: payments, env: prod}", "true")]), east, None),
        ("a match by region selects clusters of that region",
            clusters(&[matching("regions: [eu-west-1]", "true")]), west, Some(True)),
        ("a match by region skips clusters of other regions",
            clusters(&[matching("regions: [eu-west-1]", "true")]), east, None),
        ("every criterion of a match must hold",
            clusters(&[matching("namePattern: 'p*', tags: {team: payments}, regions: [eu-west-1]", "true")]), east, None),
        ("unmatchedClusters: ignore leaves a cluster no rule names alone",
            clusters(&[exact("other", "true")]) + "unmatchedClusters: ignore", east, None),
        ("unmatchedClusters: absent wants the tag off a cluster no rule names",
            clusters(&[exact("other", "true")]) + "unmatchedClusters: absent", east, Some(Absent)),
        ("unmatchedClusters: absent does not override a matching rule",
            clusters(&[matching("namePattern: '*d'", "false")]) + "unmatchedClusters: absent", east, Some(False)),
    ];
    for (label, sections, region, expected) in rows {
        let observed = observed_in(region).with(cluster("prod").tag("team", "payments"));
        let plan = plan(&desired(&sections), &observed);
        let row = row(&plan, "prod").unwrap_or_else(|| panic!("{label}: no row for prod"));
        assert_eq!(row.desired, expected, "{label}");
    }
}

// ---------------------------------------------------------------------------------------
// Tag actions
// ---------------------------------------------------------------------------------------

#[test]
fn tag_actions_make_the_tag_what_the_rule_says() {
    let rule = |tag: &str| clusters(&[exact("prod", tag)]);
    let prod = || cluster("prod");
    // (label, sections, cluster, expected actions)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, ObservedCluster, &[&str])> = vec![
        ("true on an untagged cluster sets it",
            rule("true"), prod(), &["tag prod none->true"]),
        ("true on a cluster tagged true does nothing",
            rule("true"), prod().tagged("true"), &[]),
        ("false on a cluster tagged true flips it",
            rule("false"), prod().tagged("true"), &["tag prod true->false"]),
        ("false on an untagged cluster sets it",
            rule("false"), prod(), &["tag prod none->false"]),
        ("absent on a tagged cluster removes the tag",
            rule("absent"), prod().tagged("false"), &["untag prod false"]),
        ("absent on an untagged cluster does nothing",
            rule("absent"), prod(), &[]),
        ("tag values are case-sensitive: True is rewritten to true",
            rule("true"), prod().tagged("True"), &["tag prod True->true"]),
        ("tag values are case-sensitive: False is rewritten to false",
            rule("false"), prod().tagged("False"), &["tag prod False->false"]),
        ("absent removes a tag of any value",
            rule("absent"), prod().tagged("True"), &["untag prod True"]),
        ("the tag key is case-sensitive: guardDutyManaged is not the tag",
            rule("true"), prod().tag("guardDutyManaged", "true"), &["tag prod none->true"]),
        ("other tags do not matter",
            rule("true"), prod().tag("team", "payments").tagged("true"), &[]),
        ("a cluster no rule names keeps even a miscased tag",
            clusters(&[exact("other", "true")]), prod().tagged("True"), &[]),
        ("an INACTIVE cluster is never tagged",
            rule("true"), prod().status("INACTIVE"), &[]),
        ("an INACTIVE cluster is never untagged",
            rule("absent"), prod().tagged("true").status("INACTIVE"), &[]),
        ("a PROVISIONING cluster is left alone",
            rule("false"), prod().status("PROVISIONING"), &[]),
        ("a DEPROVISIONING cluster is left alone",
            rule("false"), prod().status("DEPROVISIONING"), &[]),
        ("a FAILED cluster is left alone",
            rule("false"), prod().status("FAILED"), &[]),
    ];
    for (label, sections, cluster, expected) in rows {
        let plan = plan(&desired(&sections), &observed_in("us-east-1").with(cluster));
        assert_eq!(summary(&plan), expected, "{label}");
    }
}

#[test]
fn clusters_that_are_not_active_are_left_out_of_the_table() {
    let observed = observed_in("us-east-1")
        .with(cluster("gone").status("INACTIVE"))
        .with(cluster("live"));
    let plan = plan(&desired("unmatchedClusters: absent"), &observed);
    let names: Vec<&str> = plan.clusters.iter().map(|r| r.cluster.as_str()).collect();
    assert_eq!(names, ["live"]);
}

#[test]
fn tag_actions_carry_the_cluster_arn_and_the_target() {
    let observed = observed_in("eu-west-1").with(cluster("prod"));
    let plan = plan(
        &desired("clusters: [{name: prod, guardDutyManaged: true}]"),
        &observed,
    );
    let expected = Action::TagCluster {
        target: TargetRef {
            region: "eu-west-1".to_owned(),
            account: Some(ACCOUNT.to_owned()),
        },
        cluster: "prod".to_owned(),
        cluster_arn: "arn:aws:ecs:eu-west-1:123456789012:cluster/prod".to_owned(),
        from: None,
        to: "true",
    };
    assert_eq!(plan.actions, [expected]);
}

// ---------------------------------------------------------------------------------------
// Detector actions
// ---------------------------------------------------------------------------------------

#[test]
fn detector_actions_change_only_the_features_the_file_manages() {
    const RM_ON: &str = "detector RUNTIME_MONITORING DISABLED->ENABLED";
    const AUTO_ON: &str = "detector ECS_FARGATE_AGENT_MANAGEMENT DISABLED->ENABLED";
    // (label, detector section, observed (RUNTIME_MONITORING, ECS_FARGATE_AGENT_MANAGEMENT),
    // expected actions)
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Switches, &[&str])> = vec![
        ("enabling a disabled feature",
            "{runtimeMonitoring: enabled}", (OFF, MISSING), &[RM_ON]),
        ("disabling an enabled feature",
            "{runtimeMonitoring: disabled}", (ON, MISSING), &["detector RUNTIME_MONITORING ENABLED->DISABLED"]),
        ("an enabled feature stays",
            "{runtimeMonitoring: enabled}", (ON, MISSING), &[]),
        ("a feature the detector does not list is enabled",
            "{runtimeMonitoring: enabled}", (MISSING, MISSING), &["detector RUNTIME_MONITORING none->ENABLED"]),
        ("a feature the detector does not list counts as disabled",
            "{runtimeMonitoring: disabled}", (MISSING, MISSING), &[]),
        ("an additional configuration the detector does not list is enabled",
            "{ecsFargateAgentManagement: enabled}", (ON, MISSING), &["detector ECS_FARGATE_AGENT_MANAGEMENT none->ENABLED"]),
        ("an additional configuration the detector does not list counts as disabled",
            "{ecsFargateAgentManagement: disabled}", (ON, MISSING), &[]),
        ("automation of a detector without the feature is enabled",
            "{ecsFargateAgentManagement: enabled}", (MISSING, MISSING), &["detector ECS_FARGATE_AGENT_MANAGEMENT none->ENABLED"]),
        ("automation is disabled",
            "{ecsFargateAgentManagement: disabled}", (ON, ON), &["detector ECS_FARGATE_AGENT_MANAGEMENT ENABLED->DISABLED"]),
        ("unmanaged features never produce actions",
            "{runtimeMonitoring: unmanaged, ecsFargateAgentManagement: unmanaged}", (OFF, ON), &[]),
        ("an empty detector section means unmanaged",
            "{}", (OFF, OFF), &[]),
        ("monitoring is turned on before automation",
            "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}", (OFF, OFF), &[RM_ON, AUTO_ON]),
    ];
    for (label, section, (rm, auto), expected) in rows {
        let observed = observed_in("us-east-1").detector(switches(rm, auto));
        let plan = plan(&desired(&format!("detector: {section}")), &observed);
        assert_eq!(summary(&plan), expected, "{label}");
        assert!(plan.warnings.is_empty(), "{label}: {:?}", plan.warnings);
    }
}

#[test]
fn detector_actions_name_the_detector_and_leave_other_features_alone() {
    let observed = observed_in("us-east-1")
        .detector(switches(OFF, MISSING).feature(EKS_RUNTIME_MONITORING, FeatureStatus::Enabled));
    let plan = plan(
        &desired("detector: {runtimeMonitoring: enabled}"),
        &observed,
    );
    let features: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateDetector {
                detector_id,
                feature,
                ..
            } => Some((detector_id.as_str(), *feature)),
            _ => None,
        })
        .collect();
    assert_eq!(features, [("det-1", RUNTIME_MONITORING)]);
}

/// An organization configuration as GuardDuty lists it: (feature, `NEW` | `ALL` | `NONE`).
type Listed = &'static [(&'static str, &'static str)];

#[test]
fn an_administrator_sets_the_organization_auto_enable_of_each_feature_the_file_manages() {
    const RM: &str = RUNTIME_MONITORING;
    // (label, organization lines, detector section, observed auto-enable, expected actions)
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, &str, Listed, &[&str])> = vec![
        ("none for enabled features GuardDuty does not list: nothing to do",
            "", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}", &[], &[]),
        ("new for enabled features GuardDuty does not list",
            "  autoEnable: new\n", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}", &[],
            &["organization RUNTIME_MONITORING none->NEW", "organization ECS_FARGATE_AGENT_MANAGEMENT none->NEW"]),
        ("all replaces new, and a feature already right is left alone",
            "  autoEnable: all\n", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}",
            &[(RM, "NEW"), (ECS_AUTO, "ALL")],
            &["organization RUNTIME_MONITORING NEW->ALL"]),
        ("none turns GuardDuty's auto-enable off for enabled features",
            "  autoEnable: none\n", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}",
            &[(RM, "ALL"), (ECS_AUTO, "NEW")],
            &["organization RUNTIME_MONITORING ALL->NONE", "organization ECS_FARGATE_AGENT_MANAGEMENT NEW->NONE"]),
        ("a disabled feature is auto-enabled for nobody, whatever autoEnable says",
            "  autoEnable: new\n", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}",
            &[(RM, "NEW"), (ECS_AUTO, "ALL")],
            &["organization ECS_FARGATE_AGENT_MANAGEMENT ALL->NONE"]),
        ("an unmanaged feature is left as it is",
            "  autoEnable: new\n", "{runtimeMonitoring: enabled}",
            &[(RM, "NEW"), (ECS_AUTO, "ALL")], &[]),
        ("a NONE GuardDuty lists is already none",
            "", "{runtimeMonitoring: disabled, ecsFargateAgentManagement: disabled}",
            &[(RM, "NONE"), (ECS_AUTO, "NONE")], &[]),
    ];
    for (label, organization, section, listed, expected) in rows {
        let desired = crate::testing::desired_org(organization, &format!("detector: {section}\n"));
        let observed = observed_in("us-east-1")
            .detector(switches(ON, ON))
            .organization(listed);
        let plan = plan(&desired, &observed);
        let organization: Vec<&Action> = (plan.actions.iter())
            .filter(|a| a.kind() == "update_organization_configuration")
            .collect();
        let got: Vec<String> = organization.iter().map(|a| describe(a)).collect();
        assert_eq!(got, expected, "{label}");
        for action in organization {
            assert_eq!(action.phase(), Phase::Detector, "{label}");
            assert!(
                matches!(action, Action::UpdateOrganizationConfiguration { detector_id, .. } if detector_id == "det-1"),
                "{label}: the administrator's detector"
            );
        }
    }
}

#[test]
fn an_unmanaged_agent_auto_enable_with_exclusion_rules_is_a_warning() {
    let desired = crate::testing::desired_org(
        "",
        "detector: {runtimeMonitoring: enabled}\nclusters: [{name: sandbox, guardDutyManaged: false}]\n",
    );
    let warned = |listed: Listed| {
        let observed = observed_in("us-east-1")
            .detector(switches(ON, ON))
            .organization(listed);
        plan(&desired, &observed)
            .warnings
            .iter()
            .any(|w| w.contains("accounts that join get automated agent configuration"))
    };
    assert!(warned(&[(ECS_AUTO, "NEW")]));
    assert!(warned(&[(ECS_AUTO, "ALL")]));
    assert!(!warned(&[(ECS_AUTO, "NONE")]));
    assert!(!warned(&[]));
}

#[test]
fn organization_auto_enable_comes_after_the_administrators_own_detector() {
    let org = crate::testing::desired_org(
        "  autoEnable: all\n",
        "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n",
    );
    let observed = observed_in("us-east-1")
        .detector(switches(OFF, OFF))
        .organization(&[]);
    assert_eq!(
        summary(&plan(&org, &observed)),
        [
            "detector RUNTIME_MONITORING DISABLED->ENABLED",
            "detector ECS_FARGATE_AGENT_MANAGEMENT DISABLED->ENABLED",
            "organization RUNTIME_MONITORING none->ALL",
            "organization ECS_FARGATE_AGENT_MANAGEMENT none->ALL",
        ]
    );
    let observed = observed_in("us-east-1")
        .detector(switches(ON, ON))
        .organization(&[(RUNTIME_MONITORING, "NEW")]);
    let json = Plan {
        targets: vec![plan(&org, &observed)],
    }
    .to_json();
    assert_eq!(
        json["actions"],
        json!([
            {"phase": "detector", "kind": "update_organization_configuration", "region": "us-east-1",
             "account": ACCOUNT, "detectorId": "det-1", "feature": "RUNTIME_MONITORING",
             "from": "NEW", "to": "ALL"},
            {"phase": "detector", "kind": "update_organization_configuration", "region": "us-east-1",
             "account": ACCOUNT, "detectorId": "det-1", "feature": "ECS_FARGATE_AGENT_MANAGEMENT",
             "from": null, "to": "ALL"},
        ])
    );
    // A target whose organization configuration was not read (a member, or a single
    // account) plans none; an administrator without a detector neither.
    let member = observed_in("us-east-1").detector(switches(ON, ON));
    assert!(plan(&org, &member).actions.is_empty());
    let no_detector = observed_in("us-east-1").organization(&[]);
    assert!(plan(&org, &no_detector).actions.is_empty());
    // Nor does a single-account file, whatever was observed.
    let single = desired("detector: {runtimeMonitoring: enabled}");
    let admin = observed_in("us-east-1")
        .detector(switches(ON, ON))
        .organization(&[(RUNTIME_MONITORING, "ALL")]);
    assert!(plan(&single, &admin).actions.is_empty());
}

#[test]
fn a_region_without_a_detector_is_reported_not_changed() {
    // (label, detector section, warns)
    let rows = [
        (
            "enabling monitoring without a detector warns",
            "{runtimeMonitoring: enabled}",
            true,
        ),
        (
            "enabling automation without a detector warns",
            "{ecsFargateAgentManagement: enabled}",
            true,
        ),
        (
            "disabling without a detector is already true",
            "{runtimeMonitoring: disabled}",
            false,
        ),
        ("unmanaged features need no detector", "{}", false),
    ];
    for (label, section, warns) in rows {
        let plan = plan(
            &desired(&format!("detector: {section}")),
            &observed_in("eu-west-1"),
        );
        assert_eq!(summary(&plan), Vec::<String>::new(), "{label}");
        assert_eq!(
            plan.warnings.len(),
            usize::from(warns),
            "{label}: {:?}",
            plan.warnings
        );
        if warns {
            assert!(
                plan.warnings[0].contains("eu-west-1"),
                "{label}: the warning names the region"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Phase order
// ---------------------------------------------------------------------------------------

/// Clusters listed out of order, a rule of every kind, and both detector switches off.
fn mixed_change() -> (DesiredState, ObservedTarget) {
    let desired = desired(
        "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n\
         clusters:\n\
         - {name: zeta, guardDutyManaged: false}\n\
         - {name: mid, guardDutyManaged: absent}\n\
         - {name: alpha, guardDutyManaged: true}\n\
         - {name: beta, guardDutyManaged: absent}\n\
         - {match: {namePattern: 'load-*'}, guardDutyManaged: false}\n",
    );
    let observed = observed_in("us-east-1")
        .with(cluster("zeta"))
        .with(cluster("mid").tagged("true"))
        .with(cluster("load-b"))
        .with(cluster("beta").tagged("false"))
        .with(cluster("alpha"))
        .with(cluster("load-a"))
        .detector(switches(OFF, OFF));
    (desired, observed)
}

#[test]
fn exclusion_tags_come_before_automation_is_enabled_and_tags_are_removed_last() {
    let (desired, observed) = mixed_change();
    assert_eq!(
        summary(&plan(&desired, &observed)),
        [
            "tag alpha none->true",
            "tag load-a none->false",
            "tag load-b none->false",
            "tag zeta none->false",
            "detector RUNTIME_MONITORING DISABLED->ENABLED",
            "detector ECS_FARGATE_AGENT_MANAGEMENT DISABLED->ENABLED",
            "untag beta false",
            "untag mid true",
        ]
    );
}

#[test]
fn actions_report_their_phase_and_kind() {
    let (desired, observed) = mixed_change();
    let phases: Vec<(&str, &str)> = plan(&desired, &observed)
        .actions
        .iter()
        .map(|a| (a.phase().as_str(), a.kind()))
        .collect();
    let mut expected = vec![("tags", "tag_cluster"); 4];
    expected.extend([("detector", "update_detector"); 2]);
    expected.extend([("untag", "untag_cluster"); 2]);
    assert_eq!(phases, expected);
}

#[test]
fn the_cluster_table_is_sorted_by_name() {
    let (desired, observed) = mixed_change();
    let names: Vec<String> = plan(&desired, &observed)
        .clusters
        .into_iter()
        .map(|r| r.cluster)
        .collect();
    assert_eq!(names, ["alpha", "beta", "load-a", "load-b", "mid", "zeta"]);
}

// ---------------------------------------------------------------------------------------
// Safety limits
// ---------------------------------------------------------------------------------------

#[test]
fn safety_limits_refuse_mass_changes_unless_allowed() {
    let untagged = || observed_in("us-east-1").clusters([cluster("a"), cluster("b"), cluster("c")]);
    let tagged_false = || {
        observed_in("us-east-1")
            .clusters([cluster("a"), cluster("b"), cluster("c")].map(|c| c.tagged("false")))
    };
    // Five clusters covered in inclusion-tag mode.
    let covered = || {
        observed_in("us-east-1")
            .clusters(["c1", "c2", "c3", "c4", "c5"].map(|n| cluster(n).tagged("true")))
            .detector(switches(ON, OFF))
    };
    let exclude = |names: &[&str], safety: &str| {
        clusters(&names.iter().map(|n| exact(n, "false")).collect::<Vec<_>>()) + safety
    };
    let all = |tag: &str, max: u32| {
        clusters(&[matching("namePattern: '*'", tag)])
            + &format!("safety: {{maxClusterChangesPerCycle: {max}}}")
    };
    let loss = "safety: {maxCoverageLossFraction: 0.2}";
    let (changes, coverage) = (
        Some("maxClusterChangesPerCycle"),
        Some("maxCoverageLossFraction"),
    );
    // (label, sections, observed, allow_mass_change, refusing limit)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, ObservedTarget, bool, Option<&str>)> = vec![
        ("more tag changes than the limit are refused",
            all("true", 2), untagged(), false, changes),
        ("exactly the limit of tag changes is not refused",
            all("true", 3), untagged(), false, None),
        ("--allow-mass-change overrides the change limit",
            all("true", 2), untagged(), true, None),
        ("removing tags counts as a tag change",
            all("absent", 2), tagged_false(), false, changes),
        ("detector changes are not cluster changes",
            "detector: {runtimeMonitoring: enabled}\nsafety: {maxClusterChangesPerCycle: 0}".into(),
            observed_in("us-east-1").with(cluster("a")).detector(switches(OFF, OFF)), false, None),
        ("losing coverage of 2 of 5 covered clusters exceeds 0.2",
            exclude(&["c1", "c2"], loss), covered(), false, coverage),
        ("losing coverage of 1 of 5 covered clusters is exactly 0.2",
            exclude(&["c1"], loss), covered(), false, None),
        ("--allow-mass-change overrides the coverage-loss limit",
            exclude(&["c1", "c2"], loss), covered(), true, None),
        ("turning monitoring off loses every covered cluster",
            format!("detector: {{runtimeMonitoring: disabled}}\n{loss}"), covered(), false, coverage),
        ("turning automation off loses the clusters it covered",
            format!("detector: {{ecsFargateAgentManagement: disabled}}\n{loss}"),
            observed_in("us-east-1").clusters([cluster("a"), cluster("b")]).detector(switches(ON, ON)), false, coverage),
        ("changes that lose no coverage are never refused for it",
            exclude(&["a", "b", "c"], "safety: {maxCoverageLossFraction: 0}"), untagged().detector(switches(ON, OFF)), false, None),
        ("a fraction of 1 allows losing everything",
            "detector: {runtimeMonitoring: disabled}\nsafety: {maxCoverageLossFraction: 1}".into(), covered(), false, None),
    ];
    for (label, sections, observed, allow_mass_change, limit) in rows {
        let desired = desired(&sections);
        let plan = plan_target(
            &desired,
            &observed,
            PlanOptions {
                allow_mass_change,
                // The file's values as written: the ceilings have their own tests.
                ceilings: Ceilings::OPEN,
                ..PlanOptions::default()
            },
        );
        assert!(
            !plan.actions.is_empty(),
            "{label}: the row must plan some change"
        );
        assert_eq!(plan.refused.as_ref().map(|r| r.limit), limit, "{label}");
        if let Some(refusal) = &plan.refused {
            let reason = &refusal.reason;
            assert!(reason.contains(refusal.limit), "{label}: {reason}");
            assert!(reason.contains("--allow-mass-change"), "{label}: {reason}");
            assert!(refusal.value > refusal.max, "{label}: {refusal:?}");
        }
    }
}

#[test]
fn a_refused_plan_still_shows_what_it_would_do_and_by_how_much() {
    let observed = observed_in("us-east-1")
        .clusters(["c1", "c2", "c3", "c4", "c5"].map(|n| cluster(n).tagged("true")))
        .detector(switches(ON, OFF));
    let desired = desired("clusters: [{match: {namePattern: 'c[12]'}, guardDutyManaged: false}]");
    let plan = plan(&desired, &observed);
    assert_eq!(summary(&plan), ["tag c1 true->false", "tag c2 true->false"]);
    let refusal = plan.refused.expect("2 of 5 is more than the default 0.2");
    assert_eq!(
        (
            refusal.limit,
            refusal.value,
            refusal.max,
            refusal.region.as_str()
        ),
        ("maxCoverageLossFraction", 0.4, 0.2, "us-east-1")
    );
}

// ---------------------------------------------------------------------------------------
// Coverage column
// ---------------------------------------------------------------------------------------

#[test]
fn the_coverage_column_says_what_the_plan_does_to_coverage() {
    use CoverageChange::*;
    let manual = |tag: &str| {
        "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}\n".to_owned()
            + &clusters(&[exact("prod", tag)])
    };
    let automated = |rules: &[String]| {
        "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n".to_owned()
            + &clusters(rules)
    };
    let monitoring_off = || {
        "detector: {runtimeMonitoring: disabled}\n".to_owned() + &clusters(&[exact("prod", "true")])
    };
    let prod = || cluster("prod");
    // (label, sections, observed (RUNTIME_MONITORING, ECS_FARGATE_AGENT_MANAGEMENT), cluster, coverage)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Switches, ObservedCluster, CoverageChange)> = vec![
        ("an included cluster in manual mode stays covered",
            manual("true"), (ON, OFF), prod().tagged("true"), Covered),
        ("tagging a cluster true in manual mode is expected to cover it",
            manual("true"), (ON, OFF), prod(), Expected),
        ("fixing a miscased tag is expected to cover it",
            manual("true"), (ON, OFF), prod().tagged("True"), Expected),
        ("enabling monitoring is expected to cover an included cluster",
            manual("true"), (OFF, OFF), prod().tagged("true"), Expected),
        ("removing the inclusion tag in manual mode loses coverage",
            manual("absent"), (ON, OFF), prod().tagged("true"), Lost),
        ("excluding a cluster under automation loses coverage",
            automated(&[exact("prod", "false")]), (ON, ON), prod(), Lost),
        ("an excluded cluster stays excluded",
            automated(&[exact("prod", "false")]), (ON, ON), prod().tagged("false"), Excluded),
        ("an exclusion tag no rule names still excludes",
            automated(&[]), (ON, ON), prod().tagged("false"), Excluded),
        ("automation covers an untagged cluster no rule names",
            automated(&[]), (ON, ON), prod(), Covered),
        ("enabling automation is expected to cover clusters no rule names",
            automated(&[]), (ON, OFF), prod(), Expected),
        ("a cluster no rule names and nothing covers is unmanaged",
            manual("true").replace("prod", "other"), (ON, OFF), prod(), Unmanaged),
        ("a named cluster with monitoring off is uncovered",
            monitoring_off(), (OFF, OFF), prod().tagged("true"), Uncovered),
        ("absent in manual mode leaves a named cluster uncovered",
            manual("absent"), (ON, OFF), prod(), Uncovered),
        ("a detector without the feature covers nothing",
            clusters(&[exact("prod", "true")]), (MISSING, MISSING), prod().tagged("true"), Uncovered),
    ];
    for (label, sections, (rm, auto), cluster, coverage) in rows {
        let observed = observed_in("us-east-1")
            .with(cluster)
            .detector(switches(rm, auto));
        let options = PlanOptions {
            allow_mass_change: true,
            ..PlanOptions::default()
        };
        let plan = plan_target(&desired(&sections), &observed, options);
        assert_eq!(
            row(&plan, "prod").map(|r| r.coverage),
            Some(coverage),
            "{label}"
        );
    }
}

#[test]
fn without_a_detector_nothing_is_expected_to_be_covered() {
    let desired = desired("detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\nclusters: [{name: prod, guardDutyManaged: true}]");
    let observed = observed_in("us-east-1")
        .with(cluster("prod"))
        .with(cluster("other"));
    let plan = plan(&desired, &observed);
    let coverage: Vec<(&str, &str)> = plan
        .clusters
        .iter()
        .map(|r| (r.cluster.as_str(), r.coverage.as_str()))
        .collect();
    assert_eq!(coverage, [("other", "unmanaged"), ("prod", "uncovered")]);
}

// ---------------------------------------------------------------------------------------
// Holds with stable codes (issue 13): services that cannot get the agent
// ---------------------------------------------------------------------------------------

mod findings {
    use super::*;
    use crate::observed::{ObservedService, Preflight, PreflightCode, TaskCounts};
    use crate::testing::{finding, service, tasks, workload};

    const NOW: i64 = 1_795_737_600_000;
    const MIN: i64 = 60_000;
    const PULL: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                        failed to resolve ref 593207742271.dkr.ecr.us-east-1.amazonaws.com/aws-guardduty-agent-fargate:v1.5.0: \
                        not authorized";

    /// A covered cluster `prod` whose coverage turn-on the engine saw at `since`, running
    /// `services` with these task counts.
    fn fleet(services: Vec<(ObservedService, TaskCounts)>, since: i64) -> ObservedTarget {
        let workload = services
            .into_iter()
            .fold(workload(), |w, (s, counts)| w.service_with(s, counts));
        let mut c = cluster("prod").tagged("true").workload(workload);
        c.covered_since_ms = Some(since);
        c.coverage_turn_on_seen = true;
        observed_in("us-east-1").with(c).detector(switches(ON, ON))
    }

    fn managed(redeploy: &str) -> DesiredState {
        desired(&format!(
            "clusters: [{{name: prod, guardDutyManaged: true}}]\nredeploy: {redeploy}"
        ))
    }

    /// The plan at [`NOW`].
    pub(super) fn at_now(desired: &DesiredState, observed: &ObservedTarget) -> TargetPlan {
        plan_target(
            desired,
            observed,
            PlanOptions {
                now_ms: NOW,
                ..PlanOptions::default()
            },
        )
    }

    fn redeployed(plan: &TargetPlan) -> Vec<&str> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::RedeployService { service, .. } => Some(service.as_str()),
                _ => None,
            })
            .collect()
    }

    /// `service: code (detail)` per held service.
    fn holds(plan: &TargetPlan) -> Vec<String> {
        plan.held
            .iter()
            .map(|h| match &h.detail {
                Some(d) => format!("{}: {} ({d})", h.service, h.reason.code()),
                None => format!("{}: {}", h.service, h.reason.code()),
            })
            .collect()
    }

    /// A service deployed 90 minutes ago, before the coverage (`since` in `fleet`).
    fn old(name: &str) -> ObservedService {
        service(name).created(NOW - 90 * MIN)
    }

    #[test]
    fn each_failed_prerequisite_holds_the_service_with_its_code_and_facts() {
        use PreflightCode::*;
        let observed = fleet(
            vec![
                (
                    old("legacy")
                        .platform("1.3.0")
                        .failing([finding(PlatformVersion, "platform version 1.3.0")]),
                    tasks(2, 2),
                ),
                (
                    old("win").failing([finding(Windows, "WINDOWS_SERVER_2022_CORE")]),
                    tasks(1, 1),
                ),
                (
                    old("norole").failing([finding(NoExecutionRole, "task definition norole:3")]),
                    tasks(1, 1),
                ),
                (
                    old("nopull").failing([finding(
                        ExecutionRoleCannotPull,
                        "arn:aws:iam::123456789012:role/exec denied ecr:BatchGetImage",
                    )]),
                    tasks(1, 1),
                ),
                (
                    old("both").failing([
                        finding(PlatformVersion, "platform version 1.2.0"),
                        finding(NoExecutionRole, "task definition both:1"),
                    ]),
                    tasks(1, 1),
                ),
                (old("passed").preflight(Preflight::Passed), tasks(1, 1)),
                // A failed preflight of a service whose tasks all run the agent holds
                // nothing: there is nothing to redeploy.
                (old("fine").failing([finding(Windows, "x")]), tasks(1, 0)),
            ],
            NOW - 60 * MIN,
        );
        let plan = at_now(&managed("{settleTime: 0s}"), &observed);
        assert_eq!(
            redeployed(&plan),
            ["passed"],
            "a passed preflight does not hold"
        );
        assert_eq!(
            holds(&plan),
            [
                "both: platform_version (platform_version: platform version 1.2.0; no_execution_role: task definition both:1)",
                "legacy: platform_version (platform version 1.3.0)",
                "nopull: execution_role_cannot_pull (arn:aws:iam::123456789012:role/exec denied ecr:BatchGetImage)",
                "norole: no_execution_role (task definition norole:3)",
                "win: windows (WINDOWS_SERVER_2022_CORE)",
            ],
            "held in service order, the first finding's code, every finding's facts"
        );
        let legacy = plan.held.iter().find(|h| h.service == "legacy").unwrap();
        assert_eq!(
            legacy.reason.to_string(),
            "the Fargate platform version is below 1.4.0, which GuardDuty's agent needs"
        );
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn a_prerequisite_that_could_not_be_checked_holds_the_service_with_a_warning() {
        let why = "iam:SimulatePrincipalPolicy: AccessDenied";
        let observed = fleet(
            vec![
                (
                    old("api").preflight(Preflight::Unknown(why.into())),
                    tasks(2, 1),
                ),
                (old("web"), tasks(1, 1)),
                // Nobody checked: not knowing is never a reason to redeploy.
                (
                    ObservedService {
                        preflight: None,
                        ..old("unchecked")
                    },
                    tasks(1, 1),
                ),
            ],
            NOW - 60 * MIN,
        );
        let plan = at_now(&managed("{settleTime: 0s}"), &observed);
        assert_eq!(redeployed(&plan), ["web"], "never a redeploy of api");
        let unchecked = "the prerequisites of the GuardDuty agent were not checked";
        assert_eq!(
            holds(&plan),
            [
                format!("api: preflight_unknown ({why})"),
                format!("unchecked: preflight_unknown ({unchecked})"),
            ]
        );
        assert_eq!(
            plan.warnings,
            [
                format!(
                    "prod/api: a prerequisite of the GuardDuty agent could not be checked ({why}); \
                     it is not redeployed until the check can be made"
                ),
                format!(
                    "prod/unchecked: a prerequisite of the GuardDuty agent could not be checked \
                     ({unchecked}); it is not redeployed until the check can be made"
                ),
            ]
        );
    }

    #[test]
    fn holds_come_in_their_order_of_precedence() {
        use PreflightCode::*;
        let failed = |s: ObservedService| s.failing([finding(Windows, "w")]);
        let unknown = |s: ObservedService| s.preflight(Preflight::Unknown("denied".into()));
        // Deployed under coverage; its own tasks lack the agent (AgentFailed).
        let failing_agent =
            |n: &str| tasks(1, 1).started_by(&format!("ecs-svc/{n}"), 1, Some(PULL));
        // (label, service, counts, desired redeploy, the code it is held with)
        let rows: Vec<(&str, ObservedService, TaskCounts, &str, &str)> = vec![
            (
                "disabled beats everything",
                failed(old("a")),
                tasks(1, 1),
                "{enabled: false}",
                "redeploy_disabled",
            ),
            (
                "excluded beats a finding",
                failed(old("a")),
                tasks(1, 1),
                "{excludeServices: [a]}",
                "excluded",
            ),
            (
                "not Fargate beats a finding",
                failed(old("a").ec2()),
                tasks(1, 1),
                "{}",
                "not_fargate",
            ),
            (
                "a rollout beats a finding",
                failed(old("a").rollout("IN_PROGRESS")),
                tasks(1, 1),
                "{}",
                "deployment_in_progress",
            ),
            (
                "a finding beats an agent that failed",
                failed(service("a").created(NOW - MIN)),
                failing_agent("a"),
                "{}",
                "windows",
            ),
            (
                "an unknown check beats an agent that failed",
                unknown(service("a").created(NOW - MIN)),
                failing_agent("a"),
                "{}",
                "preflight_unknown",
            ),
            (
                "an agent that failed beats retryAfter",
                service("a").created(NOW - MIN),
                failing_agent("a"),
                "{retryAfter: 1h}",
                "agent_failed",
            ),
        ];
        for (label, svc, counts, redeploy, code) in rows {
            let plan = at_now(
                &managed(redeploy),
                &fleet(vec![(svc, counts)], NOW - 60 * MIN),
            );
            assert!(redeployed(&plan).is_empty(), "{label}");
            let codes: Vec<&str> = plan.held.iter().map(|h| h.reason.code()).collect();
            assert_eq!(codes, [code], "{label}");
        }
        let mut inactive = failed(old("a"));
        inactive.status = "DRAINING".into();
        let plan = at_now(
            &managed("{}"),
            &fleet(vec![(inactive, tasks(1, 1))], NOW - 60 * MIN),
        );
        assert_eq!(holds(&plan), ["a: service_inactive"]);
        let mut gone = fleet(vec![(failed(old("a")), tasks(1, 1))], NOW - 60 * MIN);
        gone.clusters[0].workload.as_mut().unwrap().services.clear();
        assert_eq!(holds(&at_now(&managed("{}"), &gone)), ["a: not_described"]);
    }

    #[test]
    fn an_agent_that_failed_in_the_primary_deployments_tasks_is_never_redeployed_again() {
        let since = NOW - 180 * MIN;
        // Deployed 2h ago, 1h after coverage turned on: older than retryAfter, yet its own
        // tasks came up with the agent STOPPED (AWS's reason) or without it.
        let stopped = service("stopped").created(NOW - 120 * MIN);
        let missing = service("missing").created(NOW - 120 * MIN);
        let observed = fleet(
            vec![
                (
                    stopped,
                    tasks(2, 2)
                        .stopped(2, PULL)
                        .started_by("ecs-svc/stopped", 2, Some(PULL)),
                ),
                (missing, tasks(2, 1).started_by("ecs-svc/missing", 1, None)),
            ],
            since,
        );
        let plan = at_now(&managed("{retryAfter: 1h, settleTime: 5m}"), &observed);
        assert!(redeployed(&plan).is_empty(), "{:?}", plan.actions);
        assert_eq!(
            holds(&plan),
            [
                "missing: agent_failed (no agent container running)".to_owned(),
                format!("stopped: agent_failed ({PULL})"),
            ]
        );

        // A new deployment by someone else clears it: the gap was the old deployment's.
        let mut next = observed.clone();
        for s in &mut next.clusters[0].workload.as_mut().unwrap().services {
            s.deployments[0].id = format!("ecs-svc/{}-2", s.name);
        }
        let plan = at_now(&managed("{retryAfter: 1h, settleTime: 5m}"), &next);
        assert_eq!(redeployed(&plan), ["missing", "stopped"]);

        // The agent running clears it too: nothing lacks the agent any more.
        let healed = fleet(
            vec![(service("stopped").created(NOW - 120 * MIN), tasks(2, 0))],
            since,
        );
        let plan = at_now(&managed("{retryAfter: 1h}"), &healed);
        assert!(plan.actions.is_empty() && plan.held.is_empty());
    }

    #[test]
    fn tasks_the_primary_deployment_did_not_start_are_left_to_retry_after() {
        let since = NOW - 180 * MIN;
        // Deployed 20m ago under coverage; the tasks without the agent are an older
        // deployment's (still draining, or the gap is not attributed): retryAfter, then
        // a redeploy.
        let observed = |created: i64| {
            fleet(
                vec![(
                    service("api").created(created),
                    tasks(3, 1).started_by("ecs-svc/older", 1, None),
                )],
                since,
            )
        };
        let plan = at_now(&managed("{retryAfter: 1h}"), &observed(NOW - 20 * MIN));
        assert_eq!(holds(&plan), ["api: retry_after"]);
        let plan = at_now(&managed("{retryAfter: 1h}"), &observed(NOW - 61 * MIN));
        assert_eq!(redeployed(&plan), ["api"]);
    }

    #[test]
    fn a_missing_agent_in_a_deployment_that_may_predate_the_coverage_is_redeployed() {
        // First sight after a restart: coverage is known on since the oldest task that
        // runs the agent (NOW - 60m), and `api` was deployed before that. It may have been
        // made before coverage turned on, which is what a redeploy fixes: retryAfter
        // bounds it, never agent_failed.
        let mut observed = fleet(
            vec![(
                service("api").created(NOW - 90 * MIN),
                tasks(1, 1).started_by("ecs-svc/api", 1, None),
            )],
            NOW - 60 * MIN,
        );
        observed.clusters[0].coverage_turn_on_seen = false;
        let plan = at_now(&managed("{retryAfter: 1h}"), &observed);
        assert_eq!(redeployed(&plan), ["api"]);
        // A deployment within settleTime of the turn-on: GuardDuty may not have been ready.
        let observed = fleet(
            vec![(
                service("api").created(NOW - 58 * MIN),
                tasks(1, 1).started_by("ecs-svc/api", 1, None),
            )],
            NOW - 60 * MIN,
        );
        let plan = at_now(&managed("{retryAfter: 1h, settleTime: 5m}"), &observed);
        assert_eq!(holds(&plan), ["api: retry_after"]);
        // A STOPPED agent is proof GuardDuty injected it, whenever the deployment was made.
        let mut observed = fleet(
            vec![(
                service("api").created(NOW - 90 * MIN),
                tasks(1, 1).stopped(1, "exit code 1").started_by(
                    "ecs-svc/api",
                    1,
                    Some("exit code 1"),
                ),
            )],
            NOW - 60 * MIN,
        );
        observed.clusters[0].coverage_turn_on_seen = false;
        let plan = at_now(&managed("{retryAfter: 1h}"), &observed);
        assert_eq!(holds(&plan), ["api: agent_failed (exit code 1)"]);
    }

    #[test]
    fn held_rows_carry_the_code_and_the_detail_in_the_json() {
        use PreflightCode::*;
        let observed = fleet(
            vec![
                (
                    old("legacy").failing([finding(PlatformVersion, "platform version 1.3.0")]),
                    tasks(1, 1),
                ),
                (old("rolling").rollout("IN_PROGRESS"), tasks(1, 1)),
            ],
            NOW - 60 * MIN,
        );
        let json = Plan {
            targets: vec![at_now(&managed("{}"), &observed)],
        }
        .to_json();
        assert_eq!(
            json["held"],
            json!([
                {"region": "us-east-1", "account": ACCOUNT, "cluster": "prod", "service": "legacy",
                 "code": "platform_version",
                 "reason": "the Fargate platform version is below 1.4.0, which GuardDuty's agent needs",
                 "detail": "platform version 1.3.0"},
                {"region": "us-east-1", "account": ACCOUNT, "cluster": "prod", "service": "rolling",
                 "code": "deployment_in_progress", "reason": "a deployment is in progress",
                 "detail": null},
            ])
        );
    }
}

// ---------------------------------------------------------------------------------------
// Offboarding (issue 13): tasks that keep the agent after coverage loss
// ---------------------------------------------------------------------------------------

mod offboarding {
    use super::findings::at_now;
    use super::*;
    use crate::observed::{ObservedService, PreflightCode, TaskCounts};
    use crate::testing::{coverage, finding, service, tasks, workload};

    const NOW: i64 = 1_795_737_600_000;

    /// Cluster `prod`, tagged `tag`, automation on, running `services` and 3 standalone
    /// tasks, 1 of them without the agent.
    fn fleet(tag: &str, services: Vec<(ObservedService, TaskCounts)>) -> ObservedTarget {
        let workload = services
            .into_iter()
            .fold(workload().standalone(3, 1), |w, (s, counts)| {
                w.service_with(s, counts)
            });
        let mut c = cluster("prod").tagged(tag).workload(workload);
        c.covered_since_ms = Some(0);
        c.coverage = Some(coverage("HEALTHY"));
        observed_in("us-east-1").with(c).detector(switches(ON, ON))
    }

    fn excluding(redeploy: &str) -> DesiredState {
        desired(&format!(
            "clusters: [{{name: prod, guardDutyManaged: false}}]\nredeploy: {redeploy}"
        ))
    }

    fn lines(plan: &TargetPlan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| match a {
                Action::RedeployService {
                    service,
                    purpose,
                    reason,
                    not_before_ms,
                    ..
                } => format!(
                    "{} {service}: {reason} @{}",
                    purpose.as_str(),
                    not_before_ms.map_or("-".into(), |t| (t - NOW).to_string())
                ),
                other => describe(other),
            })
            .collect()
    }

    fn services() -> Vec<(ObservedService, TaskCounts)> {
        vec![
            (service("api"), tasks(3, 1)),
            (service("done"), tasks(2, 2)),
            // The preflight is about getting the agent: it does not hold taking it out.
            (
                service("legacy").failing([finding(PreflightCode::PlatformVersion, "1.3.0")]),
                tasks(1, 0),
            ),
            (service("batch-1"), tasks(1, 0)),
            (service("rolling").rollout("IN_PROGRESS"), tasks(1, 0)),
        ]
    }

    #[test]
    fn by_default_tasks_that_keep_the_agent_are_reported_and_nothing_is_redeployed() {
        let plan = at_now(&excluding("{}"), &fleet("true", services()));
        assert_eq!(lines(&plan), ["tag prod true->false"]);
        assert!(plan.held.is_empty());
        let lost = row(&plan, "prod").unwrap();
        assert_eq!(lost.coverage, CoverageChange::Lost);
        assert_eq!(
            lost.agent_tasks,
            Some(7),
            "api 2, done 0, legacy 1, batch-1 1, rolling 1, standalone 2: every task that runs the agent"
        );
        // Once the tag is written (the plan the engine makes after the tag phase).
        let plan = at_now(&excluding("{}"), &fleet("false", services()));
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let row = row(&plan, "prod").unwrap();
        assert_eq!(row.coverage, CoverageChange::Excluded);
        assert_eq!(row.agent_tasks, Some(7));
        assert_eq!(
            row.tasks, None,
            "an excluded cluster's tasks are not uncovered tasks to fix"
        );
    }

    #[test]
    fn on_coverage_loss_redeploy_takes_the_agent_out_under_the_guards_of_any_redeploy() {
        let desired =
            excluding("{onCoverageLoss: redeploy, excludeServices: ['batch-*'], settleTime: 1h}");
        for tag in ["true", "false"] {
            let plan = at_now(&desired, &fleet(tag, services()));
            let mut want = vec![];
            if tag == "true" {
                want.push("tag prod true->false".to_owned());
            }
            want.extend([
                "remove_agent api: coverage is off and 2 of 3 running tasks still run the GuardDuty agent @0".to_owned(),
                "remove_agent legacy: coverage is off and 1 of 1 running tasks still run the GuardDuty agent @0".to_owned(),
            ]);
            assert_eq!(
                lines(&plan),
                want,
                "tag {tag}: no settle time, no preflight"
            );
            let held: Vec<String> = plan
                .held
                .iter()
                .map(|h| format!("{}: {}", h.service, h.reason.code()))
                .collect();
            assert_eq!(
                held,
                ["batch-1: excluded", "rolling: deployment_in_progress"]
            );
        }
        let off = excluding("{onCoverageLoss: redeploy, enabled: false}");
        let plan = at_now(&off, &fleet("false", services()));
        assert!(plan.actions.is_empty());
        assert!(plan.held.iter().all(|h| h.reason == HoldReason::Disabled));
    }

    #[test]
    fn coverage_lost_to_the_detector_or_manual_mode_counts_too() {
        let disabling = desired(
            "detector: {runtimeMonitoring: disabled}\n\
             clusters: [{name: prod, guardDutyManaged: true}]\n\
             redeploy: {onCoverageLoss: redeploy}",
        );
        let plan = at_now(
            &disabling,
            &fleet("true", vec![(service("api"), tasks(1, 0))]),
        );
        let kinds: Vec<String> = lines(&plan);
        assert_eq!(
            kinds,
            [
                "detector RUNTIME_MONITORING ENABLED->DISABLED",
                "remove_agent api: coverage is off and 1 of 1 running tasks still run the GuardDuty agent @0",
            ]
        );
        // Manual mode: a rule that asks for `absent` ends coverage.
        let mut observed = fleet("true", vec![(service("api"), tasks(1, 0))]);
        observed.detector = Some(switches(ON, OFF));
        let absent = desired(
            "clusters: [{name: prod, guardDutyManaged: absent}]\nredeploy: {onCoverageLoss: redeploy}",
        );
        let plan = at_now(&absent, &observed);
        assert_eq!(row(&plan, "prod").unwrap().coverage, CoverageChange::Lost);
        assert_eq!(redeploy_count(&plan), 1);
    }

    /// A service deployed within retryAfter whose tasks still run the agent after the
    /// loss (the redeploy that should have removed it, GuardDuty acting late) is held,
    /// not redeployed after every rollout; in the pass that turns coverage off every
    /// deployment predates the loss and is redeployed.
    #[test]
    fn a_service_redeployed_after_the_loss_that_still_runs_the_agent_waits_for_retry_after() {
        let desired = excluding("{onCoverageLoss: redeploy, retryAfter: 1h}");
        let recent = || vec![(service("api").created(NOW - 10 * 60_000), tasks(2, 0))];
        let lost = at_now(&desired, &fleet("true", recent()));
        assert_eq!(redeploy_count(&lost), 1, "{:?}", lost.actions);
        let later = at_now(&desired, &fleet("false", recent()));
        assert_eq!(redeploy_count(&later), 0, "{:?}", later.actions);
        let held: Vec<String> = later
            .held
            .iter()
            .map(|h| format!("{}: {}: {}", h.service, h.reason.code(), h.reason))
            .collect();
        assert_eq!(
            held,
            [
                "api: retry_after: deployed 10m ago and its tasks still run the agent although \
              coverage is off; not redeployed before redeploy.retryAfter (1h)"
            ]
        );
        let old = vec![(service("api").created(NOW - 2 * 3_600_000), tasks(2, 0))];
        let past = at_now(&desired, &fleet("false", old));
        assert_eq!(redeploy_count(&past), 1, "past retryAfter: {:?}", past.held);
        // A turn-off the engine saw dates the loss: a deployment from before it (the one
        // apply re-plans right after writing the tag) is what a redeploy fixes.
        let mut seen = fleet("false", recent());
        seen.clusters[0].uncovered_since_ms = Some(NOW - 5 * 60_000);
        seen.clusters[0].coverage_turn_off_seen = true;
        let plan = at_now(&desired, &seen);
        assert_eq!(redeploy_count(&plan), 1, "{:?}", plan.held);
        seen.clusters[0].uncovered_since_ms = Some(NOW - 20 * 60_000);
        let plan = at_now(&desired, &seen);
        assert_eq!(
            redeploy_count(&plan),
            0,
            "deployed after the loss: {:?}",
            plan.actions
        );
    }

    fn redeploy_count(plan: &TargetPlan) -> usize {
        plan.actions
            .iter()
            .filter(|a| a.phase() == Phase::Redeploy)
            .count()
    }

    #[test]
    fn clusters_no_rule_names_are_never_offboarded() {
        let desired = desired("redeploy: {onCoverageLoss: redeploy}");
        let plan = at_now(&desired, &fleet("false", services()));
        assert!(plan.actions.is_empty());
        assert!(plan.held.is_empty());
    }

    #[test]
    fn the_json_says_what_a_redeploy_is_for_and_what_guardduty_says() {
        let mut observed = fleet("false", vec![(service("api"), tasks(1, 0))]);
        observed.clusters[0].coverage = Some(crate::observed::CoverageRecord {
            status: "UNHEALTHY".into(),
            issue: Some("No agent reporting".into()),
            management_type: Some("AUTO_MANAGED".into()),
            fargate_issues: vec!["Task execution role cannot pull the agent image".into()],
        });
        let plan = at_now(&excluding("{onCoverageLoss: redeploy}"), &observed);
        let json = Plan {
            targets: vec![plan],
        }
        .to_json();
        assert_eq!(json["actions"][0]["kind"], "redeploy_service");
        assert_eq!(json["actions"][0]["purpose"], "remove_agent");
        assert_eq!(json["actions"][0]["notBefore"], "2026-11-27T00:00:00Z");
        let c = &json["clusters"][0];
        assert_eq!(c["coverage"], "excluded");
        assert_eq!(c["agentTasks"], 3, "1 service task and 2 standalone tasks");
        assert_eq!(c["uncoveredTasks"], Value::Null);
        assert_eq!(c["coverageIssue"], "No agent reporting");
        assert_eq!(c["managementType"], "AUTO_MANAGED");
        assert_eq!(
            c["fargateIssues"],
            json!(["Task execution role cannot pull the agent image"])
        );
    }
}

// ---------------------------------------------------------------------------------------
// Plan JSON (DESIGN §4)
// ---------------------------------------------------------------------------------------

#[test]
fn the_plan_json_has_the_stable_keys_of_the_design() {
    let desired = desired(
        "detector: {runtimeMonitoring: enabled}\n\
         clusters: [{name: prod, guardDutyManaged: true}, {name: sandbox, guardDutyManaged: absent}]",
    );
    let observed = observed_in("us-east-1")
        .with(cluster("sandbox").tagged("false"))
        .with(cluster("prod"))
        .detector(switches(OFF, MISSING));
    let json = Plan {
        targets: vec![plan(&desired, &observed)],
    }
    .to_json();
    assert_eq!(json["changes"], 3);
    assert_eq!(
        json["actions"],
        json!([
            {"phase": "tags", "kind": "tag_cluster", "region": "us-east-1", "account": ACCOUNT,
             "cluster": "prod", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
             "key": "GuardDutyManaged", "from": null, "to": "true"},
            {"phase": "detector", "kind": "update_detector", "region": "us-east-1", "account": ACCOUNT,
             "detectorId": "det-1", "feature": "RUNTIME_MONITORING", "from": "DISABLED", "to": "ENABLED"},
            {"phase": "untag", "kind": "untag_cluster", "region": "us-east-1", "account": ACCOUNT,
             "cluster": "sandbox", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/sandbox",
             "key": "GuardDutyManaged", "from": "false", "to": null},
        ])
    );
    assert_eq!(json["refused"], Value::Null);
    assert_eq!(
        json["clusters"],
        json!([
            {"region": "us-east-1", "account": ACCOUNT, "cluster": "prod",
             "desired": "true", "observed": null, "coverage": "expected", "uncoveredTasks": null,
             "runningTasks": null, "servicesWithoutAgent": null, "standaloneTasksWithoutAgent": null, "coverageStatus": null, "coverageIssue": null,
             "managementType": null, "fargateIssues": [], "agentTasks": null},
            {"region": "us-east-1", "account": ACCOUNT, "cluster": "sandbox",
             "desired": "absent", "observed": "false", "coverage": "uncovered", "uncoveredTasks": null,
             "runningTasks": null, "servicesWithoutAgent": null, "standaloneTasksWithoutAgent": null, "coverageStatus": null, "coverageIssue": null,
             "managementType": null, "fargateIssues": [], "agentTasks": null},
        ])
    );
    assert_eq!(json["warnings"], json!([]));
    assert_eq!(json["held"], json!([]));
}

#[test]
fn a_refusal_in_the_plan_json_names_the_limit() {
    let desired = desired("clusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]\nsafety: {maxClusterChangesPerCycle: 1}");
    let observed = observed_in("us-east-1").clusters([cluster("a"), cluster("b")]);
    let json = Plan {
        targets: vec![plan(&desired, &observed)],
    }
    .to_json();
    let refused = &json["refused"];
    assert_eq!(refused["limit"], "maxClusterChangesPerCycle");
    assert_eq!(
        (refused["value"].as_f64(), refused["max"].as_f64()),
        (Some(2.0), Some(1.0))
    );
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("2 cluster tag changes")),
        "{refused}"
    );
    assert_eq!(
        json["changes"], 2,
        "a refused plan still counts its changes"
    );
}

#[test]
fn the_plan_json_joins_targets_in_order_and_reports_the_first_refusal() {
    let strict = desired("clusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]\nsafety: {maxClusterChangesPerCycle: 0}");
    let east = plan(&strict, &observed_in("us-east-1").with(cluster("a")));
    let west = plan(&strict, &observed_in("eu-west-1").with(cluster("b")));
    let json = Plan {
        targets: vec![west, east],
    }
    .to_json();
    let clusters: Vec<&str> = json["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["cluster"].as_str())
        .collect();
    assert_eq!(clusters, ["b", "a"]);
    assert_eq!(json["refused"]["region"], "eu-west-1");
}

#[test]
fn the_plan_json_lists_warnings() {
    let plan = plan(
        &desired("detector: {runtimeMonitoring: enabled}"),
        &observed_in("us-east-1"),
    );
    let json = Plan {
        targets: vec![plan],
    }
    .to_json();
    assert_eq!(json["changes"], 0);
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------------------------------
// Properties over random fleets and desired states
// ---------------------------------------------------------------------------------------

mod properties {
    use proptest::prelude::*;

    use super::*;

    const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

    fn managed_tag() -> impl Strategy<Value = ManagedTag> {
        prop::sample::select(vec![
            ManagedTag::True,
            ManagedTag::False,
            ManagedTag::Absent,
        ])
    }

    fn feature_setting() -> impl Strategy<Value = FeatureSetting> {
        prop::sample::select(vec![
            FeatureSetting::Enabled,
            FeatureSetting::Disabled,
            FeatureSetting::Unmanaged,
        ])
    }

    fn status() -> impl Strategy<Value = Option<&'static str>> {
        prop::sample::select(vec![MISSING, ON, OFF])
    }

    fn auto_enable() -> impl Strategy<Value = desired::AutoEnable> {
        prop::sample::select(vec![
            desired::AutoEnable::None,
            desired::AutoEnable::New,
            desired::AutoEnable::All,
        ])
    }

    /// An organization configuration as GuardDuty lists it: each feature `NEW`, `ALL`,
    /// `NONE` or not listed.
    fn observed_organization() -> impl Strategy<Value = crate::observed::ObservedOrganization> {
        let listed = || prop::option::of(prop::sample::select(vec!["NEW", "ALL", "NONE"]));
        (listed(), listed()).prop_map(|(rm, auto)| {
            let mut org = crate::observed::ObservedOrganization::default();
            for (name, value) in [(RUNTIME_MONITORING, rm), (ECS_AUTO, auto)] {
                if let Some(value) = value {
                    org.auto_enable.insert(name.to_owned(), value.to_owned());
                }
            }
            org
        })
    }

    fn observed_cluster(
    ) -> impl Strategy<Value = (Option<&'static str>, Option<&'static str>, &'static str)> {
        (
            prop::sample::select(vec![None, Some("true"), Some("false"), Some("True")]),
            prop::sample::select(vec![None, Some("a"), Some("b")]),
            prop_oneof![
                8 => Just("ACTIVE"),
                1 => Just("INACTIVE"),
                1 => prop::sample::select(vec!["PROVISIONING", "DEPROVISIONING", "FAILED"]),
            ],
        )
    }

    /// 0–60 clusters with unique names (as in one AWS region) from a small alphabet, so
    /// that the rules' names and patterns hit often.
    fn observed_target() -> impl Strategy<Value = ObservedTarget> {
        (
            prop::sample::select(REGIONS.to_vec()),
            prop::collection::btree_map("[abc]{1,4}", observed_cluster(), 0..=60),
            prop::option::weighted(0.8, (status(), status(), any::<bool>())),
            prop::option::weighted(0.3, observed_organization()),
        )
            .prop_map(|(region, clusters, detector, organization)| {
                let mut observed = observed_in(region);
                for (name, (managed, team, status)) in clusters {
                    let mut c = cluster(&name).status(status);
                    if let Some(v) = managed {
                        c = c.tagged(v);
                    }
                    if let Some(v) = team {
                        c = c.tag("team", v);
                    }
                    observed = observed.with(c);
                }
                if let Some((rm, auto, eks)) = detector {
                    let mut d = switches(rm, rm.and(auto));
                    if eks {
                        d = d.feature(EKS_RUNTIME_MONITORING, FeatureStatus::Disabled);
                    }
                    observed = observed.detector(d);
                }
                // As read in a delegated administrator's target.
                observed.organization = organization;
                observed
            })
    }

    /// A target and the same target with its clusters listed in another order.
    fn observed_target_and_shuffle() -> impl Strategy<Value = (ObservedTarget, ObservedTarget)> {
        observed_target().prop_flat_map(|t| {
            let clusters = Just(t.clusters.clone()).prop_shuffle();
            (Just(t), clusters).prop_map(|(t, clusters)| {
                let shuffled = ObservedTarget {
                    clusters,
                    ..t.clone()
                };
                (t, shuffled)
            })
        })
    }

    fn match_rule() -> impl Strategy<Value = ClusterRule> {
        let pattern = prop::option::of(prop::sample::select(vec![
            "a*", "*b", "*", "?b*", "*c*", "b?", "abc",
        ]));
        let team = prop::option::of(prop::sample::select(vec!["a", "b"]));
        let regions = prop::sample::subsequence(REGIONS.to_vec(), 0..=2);
        (
            pattern,
            team,
            regions,
            managed_tag(),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(pattern, team, regions, tag, on_managed)| {
                let mut tags = BTreeMap::new();
                if let Some(team) = team {
                    tags.insert("team".to_owned(), team.to_owned());
                }
                // Selecting on the managed tag is valid only for a rule that sets it to true.
                if on_managed && tag == ManagedTag::True {
                    tags.insert(KEY.to_owned(), "true".to_owned());
                }
                ClusterRule {
                    name: None,
                    selector: Some(MatchSpec {
                        name_pattern: pattern.map(str::to_owned),
                        tags,
                        regions: regions.into_iter().map(str::to_owned).collect(),
                    }),
                    guard_duty_managed: tag,
                }
            })
    }

    /// Valid desired states: exact rules (by name or by ARN, some in the wrong region) and
    /// match rules, interleaved, for one target or an organization's administrator;
    /// validity is checked by [`round_trip`].
    fn desired_state() -> impl Strategy<Value = DesiredState> {
        let exact = prop::collection::btree_map(
            "[abc]{1,4}",
            (
                managed_tag(),
                prop::sample::select(vec![None, Some("us-east-1"), Some("eu-west-1")]),
            ),
            0..8,
        );
        (
            exact,
            prop::collection::vec(match_rule(), 0..5),
            any::<u64>(),
            prop::sample::select(vec![UnmatchedPolicy::Ignore, UnmatchedPolicy::Absent]),
            feature_setting(),
            feature_setting(),
            prop::option::weighted(0.4, auto_enable()),
        )
            .prop_map(
                |(exact, matches, interleave, unmatched, mut rm, auto, org)| {
                    let mut clusters: Vec<ClusterRule> = exact
                        .into_iter()
                        .map(|(name, (tag, arn_region))| ClusterRule {
                            name: Some(match arn_region {
                                Some(region) => cluster_arn(region, ACCOUNT, &name),
                                None => name,
                            }),
                            selector: None,
                            guard_duty_managed: tag,
                        })
                        .collect();
                    // Spread the match rules among the exact ones; exact rules win wherever they are.
                    for (i, rule) in matches.into_iter().enumerate() {
                        let at =
                            (interleave.rotate_left(7 * i as u32) as usize) % (clusters.len() + 1);
                        clusters.insert(at, rule);
                    }
                    let organization = org.map(|auto_enable| {
                        if auto_enable != desired::AutoEnable::None {
                            // What validation demands of GuardDuty's own auto-enable: Runtime
                            // Monitoring enabled, and no exclusion rule.
                            rm = FeatureSetting::Enabled;
                            for rule in &mut clusters {
                                if rule.guard_duty_managed == ManagedTag::False {
                                    rule.guard_duty_managed = ManagedTag::Absent;
                                }
                            }
                        }
                        desired::OrganizationSpec {
                            administrator: desired::AdministratorSpec {
                                account_id: ACCOUNT.to_owned(),
                                role_arn: None,
                                external_id: None,
                                regions: vec!["us-east-1".to_owned()],
                            },
                            auto_enable,
                            members: desired::MemberSelection::All,
                            member_role_name: "gec".to_owned(),
                            member_external_id: None,
                        }
                    });
                    let targets = match &organization {
                        Some(o) => o.administrator_targets(),
                        None => vec![target("us-east-1")],
                    };
                    DesiredState {
                        version: 1,
                        targets,
                        organization,
                        detector: DetectorSpec {
                            runtime_monitoring: rm,
                            ecs_fargate_agent_management: auto,
                        },
                        clusters,
                        unmatched_clusters: unmatched,
                        suspend: false,
                        redeploy: Default::default(),
                        safety: Default::default(),
                        reconcile: Default::default(),
                    }
                },
            )
    }

    /// Writes the state as JSON (which is YAML), parses and validates it back: proves the
    /// generated state is one a user could write.
    fn round_trip(d: &DesiredState) -> DesiredState {
        let text = serde_json::to_string_pretty(d).expect("a desired state serializes");
        let parsed =
            desired::parse("generated.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&parsed, d, "the desired state survives a round trip");
        parsed
    }

    // --- A reference model of DESIGN §3, written independently of the planner. ----------

    fn glob(pattern: &[u8], name: &[u8]) -> bool {
        match (pattern.split_first(), name.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                glob(rest, name) || (!name.is_empty() && glob(pattern, &name[1..]))
            }
            (Some((b'?', p)), Some((_, n))) => glob(p, n),
            (Some((a, p)), Some((b, n))) if a == b => glob(p, n),
            _ => false,
        }
    }

    fn selects(m: &MatchSpec, region: &str, c: &ObservedCluster) -> bool {
        m.name_pattern
            .as_deref()
            .is_none_or(|p| glob(p.as_bytes(), c.name.as_bytes()))
            && m.tags.iter().all(|(k, v)| c.tags.get(k) == Some(v))
            && (m.regions.is_empty() || m.regions.iter().any(|r| r == region))
    }

    /// The rule that names the cluster, if any: exact name, then exact ARN, then the
    /// first match rule.
    fn naming_rule(d: &DesiredState, region: &str, c: &ObservedCluster) -> Option<ManagedTag> {
        let exact = |key: &str| {
            d.clusters
                .iter()
                .find(|r| r.name.as_deref() == Some(key))
                .map(|r| r.guard_duty_managed)
        };
        exact(&c.name).or_else(|| exact(&c.arn)).or_else(|| {
            d.clusters
                .iter()
                .find(|r| r.selector.as_ref().is_some_and(|m| selects(m, region, c)))
                .map(|r| r.guard_duty_managed)
        })
    }

    fn wanted_tag(d: &DesiredState, region: &str, c: &ObservedCluster) -> Option<ManagedTag> {
        naming_rule(d, region, c).or(match d.unmatched_clusters {
            UnmatchedPolicy::Ignore => None,
            UnmatchedPolicy::Absent => Some(ManagedTag::Absent),
        })
    }

    fn set_status(d: &mut ObservedDetector, feature: &str, status: &FeatureStatus) {
        let rm = d
            .features
            .entry(RUNTIME_MONITORING.to_owned())
            .or_insert_with(|| ObservedFeature {
                status: FeatureStatus::Disabled,
                additional: BTreeMap::new(),
            });
        if feature == RUNTIME_MONITORING {
            rm.status = status.clone();
        } else {
            rm.additional.insert(feature.to_owned(), status.clone());
        }
    }

    /// The observed state once everything the file asks for is true.
    fn satisfied(d: &DesiredState, observed: &ObservedTarget) -> ObservedTarget {
        let mut t = observed.clone();
        for c in t
            .clusters
            .iter_mut()
            .filter(|c| c.status == ClusterStatus::Active)
        {
            match wanted_tag(d, &observed.region, c) {
                Some(ManagedTag::True) => drop(c.tags.insert(KEY.to_owned(), "true".to_owned())),
                Some(ManagedTag::False) => drop(c.tags.insert(KEY.to_owned(), "false".to_owned())),
                Some(ManagedTag::Absent) => drop(c.tags.remove(KEY)),
                None => {}
            }
        }
        if let Some(det) = t.detector.as_mut() {
            for (feature, setting) in [
                (RUNTIME_MONITORING, d.detector.runtime_monitoring),
                (ECS_AUTO, d.detector.ecs_fargate_agent_management),
            ] {
                match setting {
                    FeatureSetting::Enabled => set_status(det, feature, &FeatureStatus::Enabled),
                    FeatureSetting::Disabled => set_status(det, feature, &FeatureStatus::Disabled),
                    FeatureSetting::Unmanaged => {}
                }
            }
            if let (Some(spec), Some(org)) = (&d.organization, t.organization.as_mut()) {
                for (feature, setting) in [
                    (RUNTIME_MONITORING, d.detector.runtime_monitoring),
                    (ECS_AUTO, d.detector.ecs_fargate_agent_management),
                ] {
                    let value = match setting {
                        FeatureSetting::Enabled => spec.auto_enable.as_aws(),
                        FeatureSetting::Disabled => "NONE",
                        FeatureSetting::Unmanaged => continue,
                    };
                    // Not listed is auto-enabled for nobody: NONE already.
                    if value == "NONE" && !org.auto_enable.contains_key(feature) {
                        continue;
                    }
                    org.auto_enable.insert(feature.to_owned(), value.to_owned());
                }
            }
        }
        t
    }

    /// What AWS would look like after every action succeeded. Clusters are found by ARN,
    /// as the tagging API does.
    fn apply(observed: &ObservedTarget, actions: &[Action]) -> ObservedTarget {
        let mut t = observed.clone();
        for action in actions {
            match action {
                Action::TagCluster {
                    cluster_arn, to, ..
                } => {
                    let c = t
                        .clusters
                        .iter_mut()
                        .find(|c| &c.arn == cluster_arn)
                        .expect("tagged cluster exists");
                    c.tags.insert(KEY.to_owned(), (*to).to_owned());
                }
                Action::UntagCluster { cluster_arn, .. } => {
                    let c = t
                        .clusters
                        .iter_mut()
                        .find(|c| &c.arn == cluster_arn)
                        .expect("untagged cluster exists");
                    c.tags.remove(KEY);
                }
                Action::UpdateDetector {
                    detector_id,
                    feature,
                    to,
                    ..
                } => {
                    let d = t
                        .detector
                        .as_mut()
                        .filter(|d| &d.id == detector_id)
                        .expect("updated detector exists");
                    set_status(d, feature, to);
                }
                Action::UpdateOrganizationConfiguration { .. } => action.written(&mut t),
                Action::RedeployService { .. } => {}
            }
        }
        t
    }

    fn mass_change() -> PlanOptions {
        PlanOptions {
            allow_mass_change: true,
            ..PlanOptions::default()
        }
    }

    fn covered(t: &ObservedTarget, c: &ObservedCluster) -> bool {
        let flags = t.detector.as_ref().map(|d| d.flags()).unwrap_or_default();
        effectively_covered(flags, c.managed_tag())
    }

    proptest! {
        #[test]
        fn planning_a_satisfied_state_yields_nothing(d in desired_state(), observed in observed_target()) {
            let d = round_trip(&d);
            let plan = plan_target(&d, &satisfied(&d, &observed), PlanOptions::default());
            prop_assert_eq!(summary(&plan), Vec::<String>::new());
            prop_assert!(plan.refused.is_none());
        }

        #[test]
        fn applying_a_plan_reaches_the_desired_state_and_planning_again_yields_nothing(
            d in desired_state(),
            observed in observed_target(),
        ) {
            let d = round_trip(&d);
            let plan = plan_target(&d, &observed, mass_change());
            let after = apply(&observed, &plan.actions);
            prop_assert_eq!(summary(&plan_target(&d, &after, mass_change())), Vec::<String>::new());
            let expected = satisfied(&d, &observed);
            prop_assert_eq!(&after.clusters, &expected.clusters);
            prop_assert_eq!(
                after.detector.as_ref().map(|d| d.flags()),
                expected.detector.as_ref().map(|d| d.flags())
            );
            prop_assert_eq!(&after.organization, &expected.organization);
        }

        #[test]
        fn every_action_changes_something_from_what_was_observed(
            d in desired_state(),
            observed in observed_target(),
        ) {
            let d = round_trip(&d);
            for action in plan_target(&d, &observed, mass_change()).actions {
                let tag_of = |arn: &str| {
                    observed.clusters.iter().find(|c| c.arn == arn).and_then(|c| c.managed_tag().map(str::to_owned))
                };
                match &action {
                    Action::TagCluster { cluster_arn, from, to, .. } => {
                        prop_assert_eq!(from, &tag_of(cluster_arn));
                        prop_assert_ne!(from.as_deref(), Some(*to));
                    }
                    Action::UntagCluster { cluster_arn, from, .. } => {
                        prop_assert_eq!(Some(from.clone()), tag_of(cluster_arn));
                    }
                    Action::UpdateDetector { feature, from, to, .. } => {
                        let det = observed.detector.as_ref().expect("a detector action needs a detector");
                        let now = if *feature == RUNTIME_MONITORING {
                            det.feature_status(feature)
                        } else {
                            det.runtime_additional_status(feature)
                        };
                        prop_assert_eq!(from.as_ref(), now);
                        prop_assert_ne!(now.unwrap_or(&FeatureStatus::Disabled), to);
                    }
                    Action::RedeployService { .. } => {
                        prop_assert!(false, "no workload was observed, so no redeploy");
                    }
                    Action::UpdateOrganizationConfiguration { feature, from, to, detector_id, .. } => {
                        prop_assert!(d.organization.is_some(), "only with an organization section");
                        let org = observed.organization.as_ref().expect("only in an administrator's target");
                        let det = observed.detector.as_ref().expect("only with the administrator's detector");
                        prop_assert_eq!(detector_id, &det.id);
                        prop_assert_eq!(from.as_ref(), org.auto_enable.get(*feature));
                        prop_assert_ne!(from.as_deref().unwrap_or("NONE"), to.as_aws());
                    }
                }
            }
        }

        #[test]
        fn clusters_outside_every_rule_are_never_touched(
            mut d in desired_state(),
            observed in observed_target(),
        ) {
            d.unmatched_clusters = UnmatchedPolicy::Ignore;
            let d = round_trip(&d);
            let plan = plan_target(&d, &observed, mass_change());
            let outside: Vec<&str> = observed
                .clusters
                .iter()
                .filter(|c| naming_rule(&d, &observed.region, c).is_none())
                .map(|c| c.name.as_str())
                .collect();
            for action in &plan.actions {
                if let Action::TagCluster { cluster, .. } | Action::UntagCluster { cluster, .. } = action {
                    prop_assert!(!outside.contains(&cluster.as_str()), "{} is outside every rule: {}", cluster, describe(action));
                }
            }
            for row in &plan.clusters {
                prop_assert_eq!(row.desired.is_none(), outside.contains(&row.cluster.as_str()), "{}", row.cluster);
            }
        }

        #[test]
        fn the_same_input_gives_the_same_plan_whatever_order_aws_lists_clusters_in(
            d in desired_state(),
            (observed, shuffled) in observed_target_and_shuffle(),
        ) {
            let d = round_trip(&d);
            let first = plan_target(&d, &observed, mass_change());
            prop_assert_eq!(&first, &plan_target(&d, &observed, mass_change()));
            let other = plan_target(&d, &shuffled, mass_change());
            prop_assert_eq!(&first.actions, &other.actions);
            prop_assert_eq!(&first.clusters, &other.clusters);
        }

        #[test]
        fn phases_never_go_backwards_and_clusters_are_in_name_order_within_a_phase(
            d in desired_state(),
            observed in observed_target(),
        ) {
            let d = round_trip(&d);
            let plan = plan_target(&d, &observed, mass_change());
            for pair in plan.actions.windows(2) {
                prop_assert!(pair[0].phase() <= pair[1].phase(), "{} then {}", describe(&pair[0]), describe(&pair[1]));
                if let (
                    Action::TagCluster { cluster: a, .. } | Action::UntagCluster { cluster: a, .. },
                    Action::TagCluster { cluster: b, .. } | Action::UntagCluster { cluster: b, .. },
                ) = (&pair[0], &pair[1])
                {
                    if pair[0].phase() == pair[1].phase() {
                        prop_assert!(a < b, "{} then {}", a, b);
                    }
                }
            }
        }

        #[test]
        fn the_coverage_column_predicts_coverage_after_the_plan(
            d in desired_state(),
            observed in observed_target(),
        ) {
            let d = round_trip(&d);
            let plan = plan_target(&d, &observed, mass_change());
            let after = apply(&observed, &plan.actions);
            for row in &plan.clusters {
                let find = |t: &ObservedTarget| t.clusters.iter().find(|c| c.name == row.cluster).cloned();
                let (before_c, after_c) = (find(&observed).expect("row of an observed cluster"), find(&after).expect("still there"));
                let (was, will) = (covered(&observed, &before_c), covered(&after, &after_c));
                use CoverageChange::*;
                let predicted = match row.coverage {
                    Covered => (true, true),
                    Expected => (false, true),
                    Lost => (true, false),
                    Excluded | Unmanaged | Uncovered => (false, false),
                };
                prop_assert_eq!((was, will), predicted, "{} {:?}", &row.cluster, row.coverage);
                if row.coverage == Excluded {
                    prop_assert_eq!(after_c.managed_tag(), Some("false"));
                }
                if row.coverage == Unmanaged {
                    prop_assert!(row.desired.is_none());
                }
                prop_assert_eq!(row.observed.as_deref(), before_c.managed_tag());
            }
            let active = observed.clusters.iter().filter(|c| c.is_active()).count();
            prop_assert_eq!(plan.clusters.len(), active);
        }

        #[test]
        fn safety_limits_only_ever_refuse_they_never_change_the_actions(
            d in desired_state(),
            observed in observed_target(),
            max_changes in 0u32..8,
            max_loss in prop::sample::select(vec![0.0, 0.2, 0.5, 1.0]),
        ) {
            let mut d = round_trip(&d);
            d.safety.max_cluster_changes_per_cycle = Some(max_changes);
            d.safety.max_coverage_loss_fraction = Some(max_loss);
            let guarded = plan_target(&d, &observed, PlanOptions::default());
            let forced = plan_target(&d, &observed, mass_change());
            prop_assert_eq!(&guarded.actions, &forced.actions);
            prop_assert!(forced.refused.is_none());
            let tag_changes = guarded.actions.iter().filter(|a| a.phase() != Phase::Detector).count();
            if tag_changes as u32 > max_changes {
                prop_assert_eq!(guarded.refused.map(|r| r.limit), Some("maxClusterChangesPerCycle"));
            } else if guarded.actions.is_empty() {
                prop_assert!(guarded.refused.is_none());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Redeploys (DESIGN §6): which services; the engine decides when
// ---------------------------------------------------------------------------------------

mod redeploys {
    use super::*;
    use crate::observed::ObservedService;
    use crate::testing::{service, workload};

    const NOW: i64 = 1_795_737_600_000;
    const MIN: i64 = 60_000;

    /// A covered cluster `prod` (automation on, no tag) whose coverage is known since
    /// `since`, running `services` with (running, without agent) task counts.
    fn fleet(services: Vec<(ObservedService, u32, u32)>, since: Option<i64>) -> ObservedTarget {
        let workload = services.into_iter().fold(
            workload().standalone(2, 2),
            |w, (s, running, without_agent)| w.service(s, running, without_agent),
        );
        let mut c = cluster("prod").tagged("true").workload(workload);
        c.covered_since_ms = since;
        c.coverage_turn_on_seen = true;
        observed_in("us-east-1").with(c).detector(switches(ON, ON))
    }

    /// The rule that makes `prod` managed, plus the given `redeploy` mapping.
    fn managed(redeploy: &str) -> DesiredState {
        desired(&format!(
            "clusters: [{{name: prod, guardDutyManaged: true}}]\nredeploy: {redeploy}"
        ))
    }

    fn at_now() -> PlanOptions {
        PlanOptions {
            now_ms: NOW,
            ..PlanOptions::default()
        }
    }

    fn redeploy_lines(plan: &TargetPlan) -> Vec<String> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::RedeployService {
                    service, reason, ..
                } => Some(format!("{service}: {reason}")),
                _ => None,
            })
            .collect()
    }

    fn held_lines(plan: &TargetPlan) -> Vec<String> {
        plan.held
            .iter()
            .map(|h| format!("{}: {}", h.service, h.reason))
            .collect()
    }

    #[test]
    fn a_service_with_tasks_without_the_agent_is_redeployed_with_a_reason() {
        let observed = fleet(
            vec![
                (service("web").created(NOW - 90 * MIN), 3, 2),
                (service("api").created(NOW - 90 * MIN), 2, 0),
            ],
            Some(NOW - 10 * MIN),
        );
        let plan = plan_target(&managed("{settleTime: 5m}"), &observed, at_now());
        assert_eq!(
            redeploy_lines(&plan),
            ["web: 2 of 3 running tasks lack the GuardDuty agent"]
        );
        match &plan.actions[0] {
            Action::RedeployService { not_before_ms, .. } => {
                assert_eq!(
                    *not_before_ms,
                    Some(NOW - 5 * MIN),
                    "covered since + settleTime"
                )
            }
            other => panic!("{other:?}"),
        }
        let row = &plan.clusters[0];
        let tasks = row.tasks.expect("tasks were observed");
        assert_eq!(
            (
                tasks.running,
                tasks.without_agent(),
                tasks.standalone_tasks_without_agent
            ),
            (7, 4, 2),
            "standalone tasks are reported, never redeployed"
        );
    }

    #[test]
    fn services_that_must_not_be_touched_are_held_with_the_reason() {
        let ec2 = service("ec2-svc").created(NOW - 90 * MIN).ec2();
        let rolling = service("rolling").created(NOW - MIN).rollout("IN_PROGRESS");
        let observed = fleet(
            vec![
                (ec2, 1, 1),
                (rolling, 2, 1),
                (service("batch-1").created(NOW - 90 * MIN), 1, 1),
                (service("retried").created(NOW - 20 * MIN), 1, 1),
                (service("old").created(NOW - 30 * MIN), 1, 1),
            ],
            Some(NOW - 25 * MIN),
        );
        let desired = managed("{excludeServices: ['batch-*'], retryAfter: 1h}");
        let plan = plan_target(&desired, &observed, at_now());
        assert_eq!(
            redeploy_lines(&plan),
            ["old: 1 of 1 running tasks lack the GuardDuty agent"],
            "a deployment older than the coverage is what a redeploy fixes"
        );
        assert_eq!(
            held_lines(&plan),
            [
                "batch-1: excluded by redeploy.excludeServices",
                "ec2-svc: not a Fargate service",
                "retried: deployed 20m ago with coverage on and its tasks still lack the agent; not retried before redeploy.retryAfter (1h)",
                "rolling: a deployment is in progress",
            ]
        );
    }

    #[test]
    fn retry_after_expires() {
        let observed = fleet(
            vec![(service("api").created(NOW - 61 * MIN), 1, 1)],
            Some(NOW - 120 * MIN),
        );
        let plan = plan_target(&managed("{retryAfter: 1h}"), &observed, at_now());
        assert_eq!(redeploy_lines(&plan).len(), 1);
    }

    #[test]
    fn coverage_turning_on_in_this_plan_plans_redeploys_without_a_start_time() {
        let mut observed = fleet(vec![(service("api").created(NOW - MIN), 1, 1)], None);
        observed.clusters[0]
            .tags
            .insert(KEY.to_owned(), "false".to_owned());
        let desired = desired("clusters: [{name: prod, guardDutyManaged: true}]");
        let plan = plan_target(&desired, &observed, at_now());
        let kinds: Vec<&str> = plan.actions.iter().map(Action::kind).collect();
        assert_eq!(kinds, ["tag_cluster", "redeploy_service"]);
        match &plan.actions[1] {
            Action::RedeployService { not_before_ms, .. } => assert_eq!(*not_before_ms, None),
            other => panic!("{other:?}"),
        }
        let json = Plan {
            targets: vec![plan],
        }
        .to_json();
        assert_eq!(json["actions"][1]["phase"], "redeploy");
        assert_eq!(json["actions"][1]["service"], "api");
        assert_eq!(json["clusters"][0]["uncoveredTasks"], 3);
    }

    #[test]
    fn uncovered_clusters_and_disabled_redeploys_plan_nothing() {
        let mut observed = fleet(vec![(service("api").created(NOW - 90 * MIN), 1, 1)], None);
        observed.clusters[0]
            .tags
            .insert(KEY.to_owned(), "false".to_owned());
        let excluded = desired("clusters: [{name: prod, guardDutyManaged: false}]");
        assert!(plan_target(&excluded, &observed, at_now())
            .actions
            .is_empty());
        let covered = fleet(
            vec![(service("api").created(NOW - 90 * MIN), 1, 1)],
            Some(NOW),
        );
        let plan = plan_target(&managed("{enabled: false}"), &covered, at_now());
        assert!(plan.actions.is_empty());
        assert_eq!(held_lines(&plan), ["api: redeploy.enabled is false"]);
    }

    #[test]
    fn services_in_clusters_no_rule_names_are_never_touched() {
        let observed = fleet(
            vec![(service("api").created(NOW - 90 * MIN), 1, 1)],
            Some(NOW - 60 * MIN),
        );
        let plan = plan_target(&desired("redeploy: {settleTime: 0s}"), &observed, at_now());
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert!(plan.held.is_empty());
    }

    #[test]
    fn without_a_seen_turn_on_a_recent_deployment_counts_as_made_under_coverage() {
        // First sight (or after a restart): the engine cannot tell whether `api` was
        // deployed before or after coverage turned on, so retryAfter holds it.
        let mut observed = fleet(
            vec![(service("api").created(NOW - 30 * MIN), 1, 1)],
            Some(NOW),
        );
        observed.clusters[0].coverage_turn_on_seen = false;
        let plan = plan_target(&managed("{retryAfter: 1h}"), &observed, at_now());
        assert!(redeploy_lines(&plan).is_empty());
        assert_eq!(held_lines(&plan).len(), 1);
        observed.clusters[0].workload.as_mut().unwrap().services[0].deployments[0].created_at_ms =
            NOW - 61 * MIN;
        let plan = plan_target(&managed("{retryAfter: 1h}"), &observed, at_now());
        assert_eq!(
            redeploy_lines(&plan).len(),
            1,
            "older than retryAfter: redeployed"
        );
    }

    /// (service, deployer shown as people read it), for the redeploy actions.
    fn vias(plan: &TargetPlan) -> Vec<(String, String)> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::RedeployService { service, via, .. } => {
                    Some((service.clone(), via.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_deployment_controller_is_redeployed_its_own_way_or_held_with_a_code() {
        use crate::observed::{CodeDeploy, LoadBalancerTarget};
        use crate::testing::{codedeploy_deployment, group};
        let old = |name: &str| service(name).created(NOW - 90 * MIN);
        let mut no_lb = old("cd-no-lb").code_deploy(group("cd-no-lb", vec![]));
        no_lb.load_balancer = None;
        let observed = fleet(
            vec![
                (old("rolling"), 1, 1),
                (old("blue-green").strategy("BLUE_GREEN"), 1, 1),
                (old("canary").strategy("CANARY"), 1, 1),
                (
                    old("cd").code_deploy(group(
                        "cd",
                        vec![codedeploy_deployment("d-OLD", "Succeeded", NOW - 100 * MIN)],
                    )),
                    1,
                    1,
                ),
                (
                    old("cd-busy").code_deploy(group(
                        "cd-busy",
                        vec![codedeploy_deployment("d-BUSY", "Baking", NOW - 10 * MIN)],
                    )),
                    1,
                    1,
                ),
                (old("cd-orphan").code_deploy(CodeDeploy::NoGroup), 1, 1),
                (
                    old("cd-unread").code_deploy(CodeDeploy::Unknown(
                        "ThrottlingException: rate exceeded".into(),
                    )),
                    1,
                    1,
                ),
                (no_lb, 1, 1),
                (old("ext").external("spinnaker"), 1, 1),
                (
                    old("odd").external("x").controller_text("SOMETHING_NEW"),
                    1,
                    1,
                ),
            ],
            Some(NOW - 60 * MIN),
        );
        let plan = plan_target(&managed("{settleTime: 0s}"), &observed, at_now());
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        assert_eq!(
            vias(&plan),
            pairs(&[
                ("blue-green", "ECS BLUE_GREEN"),
                ("canary", "ECS CANARY"),
                ("cd", "CODE_DEPLOY apps/cd"),
                ("rolling", "ECS ROLLING"),
            ])
        );
        let codes: Vec<(String, String)> = plan
            .held
            .iter()
            .map(|h| (h.service.clone(), h.reason.code().to_owned()))
            .collect();
        assert_eq!(
            codes,
            pairs(&[
                ("cd-busy", "deployment_in_progress"),
                ("cd-no-lb", "no_load_balancer"),
                ("cd-orphan", "no_deployment_group"),
                ("cd-unread", "deployment_unknown"),
                ("ext", "external_deployment_controller"),
                ("odd", "unknown_deployment_controller"),
            ])
        );
        let detail = |name: &str| {
            plan.held
                .iter()
                .find(|h| h.service == name)
                .and_then(|h| h.detail.clone())
        };
        assert_eq!(
            detail("cd-busy").as_deref(),
            Some("CodeDeploy deployment d-BUSY is Baking")
        );
        assert_eq!(
            detail("ext").as_deref(),
            Some("its PRIMARY task set was started by spinnaker")
        );
        assert_eq!(
            detail("odd").as_deref(),
            Some("deploymentController SOMETHING_NEW")
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("cd-unread") && w.contains("ThrottlingException")),
            "CodeDeploy that could not be read is a warning: {:?}",
            plan.warnings
        );
        let cd = plan
            .actions
            .iter()
            .find_map(|a| match a {
                Action::RedeployService {
                    service,
                    via: super::Deployer::CodeDeploy(r),
                    ..
                } if service == "cd" => Some(r.clone()),
                _ => None,
            })
            .expect("cd is redeployed through CodeDeploy");
        assert_eq!(
            (cd.task_definition.as_str(), &cd.load_balancer),
            (
                "arn:aws:ecs:us-east-1:123456789012:task-definition/cd:1",
                &LoadBalancerTarget {
                    container_name: "app".into(),
                    container_port: 80
                }
            ),
            "the service's current task definition, and its load balancer's container and port"
        );
        let json = Plan {
            targets: vec![plan],
        }
        .to_json();
        let by_service = |name: &str| {
            json["actions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["service"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(by_service("cd")["deploymentController"], "CODE_DEPLOY");
        assert_eq!(by_service("cd")["deploymentGroup"], "apps/cd");
        assert_eq!(by_service("cd")["strategy"], serde_json::Value::Null);
        assert_eq!(by_service("blue-green")["deploymentController"], "ECS");
        assert_eq!(by_service("blue-green")["strategy"], "BLUE_GREEN");
        assert_eq!(
            by_service("blue-green")["deploymentGroup"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn a_codedeploy_service_is_judged_by_its_primary_task_set_like_any_deployment() {
        use crate::testing::{codedeploy_deployment, group};
        // Redeployed 20 minutes ago through CodeDeploy with coverage on, and its tasks
        // still lack the agent: retryAfter holds it, as it would an ECS service.
        let recent = service("cd").created(NOW - 20 * MIN).code_deploy(group(
            "cd",
            vec![codedeploy_deployment("d-1", "Succeeded", NOW - 20 * MIN)],
        ));
        let observed = fleet(vec![(recent, 1, 1)], Some(NOW - 60 * MIN));
        let plan = plan_target(&managed("{retryAfter: 1h}"), &observed, at_now());
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.held[0].reason.code(), "retry_after");
    }
}
