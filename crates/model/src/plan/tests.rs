//! Planner tests: labelled tables for each rule of DESIGN §2–§4, and property tests over
//! random fleets and desired states checked against a small reference model.

use serde_json::{json, Value};

use super::*;
use crate::desired::{self, ClusterRule, DetectorSpec, MatchSpec, Target, UnmatchedPolicy};
use crate::observed::{ObservedCluster, ObservedDetector, ObservedFeature, EKS_RUNTIME_MONITORING};

const ACCOUNT: &str = "123456789012";
const KEY: &str = MANAGED_TAG_KEY;
const ECS_AUTO: &str = ECS_FARGATE_AGENT_MANAGEMENT;
/// Detector switch fixtures: a status the detector reports, or `MISSING` when it does not
/// list the feature (or the additional configuration) at all.
const ON: Option<&str> = Some(ENABLED);
const OFF: Option<&str> = Some(DISABLED);
const MISSING: Option<&str> = None;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn cluster_arn(region: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}")
}

/// An ACTIVE cluster without tags; its ARN follows the target it is added to.
fn cluster(name: &str) -> ObservedCluster {
    ObservedCluster {
        name: name.to_owned(),
        arn: cluster_arn("us-east-1", name),
        status: "ACTIVE".to_owned(),
        ..ObservedCluster::default()
    }
}

impl ObservedCluster {
    fn tagged(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_owned(), value.to_owned());
        self
    }

    fn in_status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }
}

/// A target in the test account, with no clusters and no detector.
fn target(region: &str) -> ObservedTarget {
    ObservedTarget {
        region: region.to_owned(),
        account: Some(ACCOUNT.to_owned()),
        clusters: Vec::new(),
        detector: None,
    }
}

impl ObservedTarget {
    fn with(mut self, mut cluster: ObservedCluster) -> Self {
        cluster.arn = cluster_arn(&self.region, &cluster.name);
        self.clusters.push(cluster);
        self
    }

    fn with_all<const N: usize>(self, clusters: [ObservedCluster; N]) -> Self {
        clusters.into_iter().fold(self, Self::with)
    }

    /// A detector reporting `RUNTIME_MONITORING` as `rm` and its additional configuration
    /// `ECS_FARGATE_AGENT_MANAGEMENT` as `auto`; `MISSING` leaves the entry out.
    fn detector(mut self, rm: Option<&str>, auto: Option<&str>) -> Self {
        let mut features = BTreeMap::new();
        if let Some(status) = rm {
            let mut additional = BTreeMap::new();
            if let Some(auto) = auto {
                additional.insert(ECS_AUTO.to_owned(), auto.to_owned());
            }
            features.insert(
                RUNTIME_MONITORING.to_owned(),
                ObservedFeature {
                    status: status.to_owned(),
                    additional,
                },
            );
        } else {
            assert!(auto.is_none(), "an additional configuration needs its feature");
        }
        self.detector = Some(ObservedDetector {
            id: "det-1".to_owned(),
            features,
        });
        self
    }
}

/// A desired state for one target in us-east-1, plus the given YAML sections.
fn desired(sections: &str) -> DesiredState {
    let text = format!("version: 1\ntargets: [{{region: us-east-1}}]\n{sections}");
    desired::parse("test.yaml", &text).unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}"))
}

fn plan(desired: &DesiredState, observed: &ObservedTarget) -> TargetPlan {
    plan_target(desired, observed, PlanOptions::default())
}

/// One line per action, e.g. `tag prod none->true`, `detector RUNTIME_MONITORING DISABLED->ENABLED`.
fn describe(action: &Action) -> String {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
    match action {
        Action::TagCluster { cluster, from, to, .. } => format!("tag {cluster} {}->{to}", or_none(from)),
        Action::UntagCluster { cluster, from, .. } => format!("untag {cluster} {from}"),
        Action::UpdateDetector { feature, from, to, .. } => format!("detector {feature} {}->{to}", or_none(from)),
    }
}

fn summary(plan: &TargetPlan) -> Vec<String> {
    plan.actions.iter().map(describe).collect()
}

fn row<'a>(plan: &'a TargetPlan, cluster: &str) -> Option<&'a ClusterRow> {
    plan.clusters.iter().find(|r| r.cluster == cluster)
}

// ---------------------------------------------------------------------------------------
// Rule precedence
// ---------------------------------------------------------------------------------------

#[test]
fn rules_decide_the_tag_by_precedence() {
    use ManagedTag::{Absent, False, True};
    let prod = || cluster("prod").tagged("team", "payments");
    // (label, sections, region, cluster, what the rules ask of "prod")
    let rows: Vec<(&str, &str, &str, ObservedCluster, Option<ManagedTag>)> = vec![
        (
            "an exact name beats a match rule listed before it",
            "clusters: [{match: {namePattern: '*'}, guardDutyManaged: false}, {name: prod, guardDutyManaged: true}]",
            "us-east-1", prod(), Some(True),
        ),
        (
            "an exact ARN names the cluster",
            "clusters: [{name: 'arn:aws:ecs:us-east-1:123456789012:cluster/prod', guardDutyManaged: true}]",
            "us-east-1", prod(), Some(True),
        ),
        (
            "an exact ARN beats a match rule",
            "clusters: [{match: {namePattern: '*'}, guardDutyManaged: false}, \
             {name: 'arn:aws:ecs:us-east-1:123456789012:cluster/prod', guardDutyManaged: absent}]",
            "us-east-1", prod(), Some(Absent),
        ),
        (
            "an ARN of the same name in another region names another cluster",
            "clusters: [{name: 'arn:aws:ecs:eu-west-1:123456789012:cluster/prod', guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "an exact name is not a prefix",
            "clusters: [{name: pro, guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "an exact name is not a glob",
            "clusters: [{name: 'p*', guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "the first matching match rule wins",
            "clusters: [{match: {namePattern: 'p*'}, guardDutyManaged: true}, {match: {namePattern: '*'}, guardDutyManaged: false}]",
            "us-east-1", prod(), Some(True),
        ),
        (
            "the first matching match rule wins, in the other order too",
            "clusters: [{match: {namePattern: '*'}, guardDutyManaged: false}, {match: {namePattern: 'p*'}, guardDutyManaged: true}]",
            "us-east-1", prod(), Some(False),
        ),
        (
            "a match rule that does not match falls through to the next",
            "clusters: [{match: {namePattern: 'x*'}, guardDutyManaged: false}, {match: {namePattern: '*od'}, guardDutyManaged: true}]",
            "us-east-1", prod(), Some(True),
        ),
        (
            "a match by tag selects a cluster carrying the tag",
            "clusters: [{match: {tags: {team: payments}}, guardDutyManaged: true}]",
            "us-east-1", prod(), Some(True),
        ),
        (
            "a match by tag needs the exact value",
            "clusters: [{match: {tags: {team: Payments}}, guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "a match by tags needs every listed tag",
            "clusters: [{match: {tags: {team: payments, env: prod}}, guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "a match by region selects clusters of that region",
            "clusters: [{match: {regions: [eu-west-1]}, guardDutyManaged: true}]",
            "eu-west-1", prod(), Some(True),
        ),
        (
            "a match by region skips clusters of other regions",
            "clusters: [{match: {regions: [eu-west-1]}, guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "every criterion of a match must hold",
            "clusters: [{match: {namePattern: 'p*', tags: {team: payments}, regions: [eu-west-1]}, guardDutyManaged: true}]",
            "us-east-1", prod(), None,
        ),
        (
            "unmatchedClusters: ignore leaves a cluster no rule names alone",
            "clusters: [{name: other, guardDutyManaged: true}]\nunmatchedClusters: ignore",
            "us-east-1", prod(), None,
        ),
        (
            "unmatchedClusters: absent wants the tag off a cluster no rule names",
            "clusters: [{name: other, guardDutyManaged: true}]\nunmatchedClusters: absent",
            "us-east-1", prod(), Some(Absent),
        ),
        (
            "unmatchedClusters: absent does not override a matching rule",
            "clusters: [{match: {namePattern: '*d'}, guardDutyManaged: false}]\nunmatchedClusters: absent",
            "us-east-1", prod(), Some(False),
        ),
    ];
    for (label, sections, region, cluster, expected) in rows {
        let observed = target(region).with(cluster);
        let plan = plan(&desired(sections), &observed);
        let row = row(&plan, "prod").unwrap_or_else(|| panic!("{label}: no row for prod"));
        assert_eq!(row.desired, expected, "{label}");
    }
}

// ---------------------------------------------------------------------------------------
// Tag actions
// ---------------------------------------------------------------------------------------

#[test]
fn tag_actions_make_the_tag_what_the_rule_says() {
    let rule = |tag: &str| format!("clusters: [{{name: prod, guardDutyManaged: {tag}}}]");
    // (label, sections, cluster, expected actions)
    let rows: Vec<(&str, String, ObservedCluster, &[&str])> = vec![
        ("true on an untagged cluster sets it", rule("true"), cluster("prod"), &["tag prod none->true"]),
        ("true on a cluster tagged true does nothing", rule("true"), cluster("prod").tagged(KEY, "true"), &[]),
        ("false on a cluster tagged true flips it", rule("false"), cluster("prod").tagged(KEY, "true"), &["tag prod true->false"]),
        ("false on an untagged cluster sets it", rule("false"), cluster("prod"), &["tag prod none->false"]),
        ("absent on a tagged cluster removes the tag", rule("absent"), cluster("prod").tagged(KEY, "false"), &["untag prod false"]),
        ("absent on an untagged cluster does nothing", rule("absent"), cluster("prod"), &[]),
        ("tag values are case-sensitive: True is rewritten to true", rule("true"), cluster("prod").tagged(KEY, "True"), &["tag prod True->true"]),
        ("tag values are case-sensitive: False is rewritten to false", rule("false"), cluster("prod").tagged(KEY, "False"), &["tag prod False->false"]),
        ("absent removes a tag of any value", rule("absent"), cluster("prod").tagged(KEY, "True"), &["untag prod True"]),
        ("the tag key is case-sensitive: guardDutyManaged is not the tag", rule("true"), cluster("prod").tagged("guardDutyManaged", "true"), &["tag prod none->true"]),
        ("other tags do not matter", rule("true"), cluster("prod").tagged("team", "payments").tagged(KEY, "true"), &[]),
        ("a cluster no rule names keeps even a miscased tag", rule("true").replace("prod", "other"), cluster("prod").tagged(KEY, "True"), &[]),
        ("an INACTIVE cluster is never tagged", rule("true"), cluster("prod").in_status("INACTIVE"), &[]),
        ("an INACTIVE cluster is never untagged", rule("absent"), cluster("prod").tagged(KEY, "true").in_status("INACTIVE"), &[]),
        ("a PROVISIONING cluster is left alone", rule("false"), cluster("prod").in_status("PROVISIONING"), &[]),
        ("a DEPROVISIONING cluster is left alone", rule("false"), cluster("prod").in_status("DEPROVISIONING"), &[]),
        ("a FAILED cluster is left alone", rule("false"), cluster("prod").in_status("FAILED"), &[]),
    ];
    for (label, sections, cluster, expected) in rows {
        let plan = plan(&desired(&sections), &target("us-east-1").with(cluster));
        assert_eq!(summary(&plan), expected, "{label}");
    }
}

#[test]
fn clusters_that_are_not_active_are_left_out_of_the_table() {
    let observed = target("us-east-1")
        .with(cluster("gone").in_status("INACTIVE"))
        .with(cluster("live"));
    let plan = plan(&desired("unmatchedClusters: absent"), &observed);
    let names: Vec<&str> = plan.clusters.iter().map(|r| r.cluster.as_str()).collect();
    assert_eq!(names, ["live"]);
}

#[test]
fn tag_actions_carry_the_cluster_arn_and_the_target() {
    let observed = target("eu-west-1").with(cluster("prod"));
    let plan = plan(&desired("clusters: [{name: prod, guardDutyManaged: true}]"), &observed);
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
    let rm = "RUNTIME_MONITORING";
    let auto = "ECS_FARGATE_AGENT_MANAGEMENT";
    // (label, detector section, observed detector as (rm, auto) or None, expected actions)
    type Detector = Option<(Option<&'static str>, Option<&'static str>)>;
    let rows: Vec<(&str, &str, Detector, Vec<String>)> = vec![
        ("enabling a disabled feature", "{runtimeMonitoring: enabled}", Some((OFF, MISSING)), vec![format!("detector {rm} DISABLED->ENABLED")]),
        ("disabling an enabled feature", "{runtimeMonitoring: disabled}", Some((ON, MISSING)), vec![format!("detector {rm} ENABLED->DISABLED")]),
        ("an enabled feature stays", "{runtimeMonitoring: enabled}", Some((ON, MISSING)), vec![]),
        ("a feature the detector does not list is enabled", "{runtimeMonitoring: enabled}", Some((MISSING, MISSING)), vec![format!("detector {rm} none->ENABLED")]),
        ("a feature the detector does not list counts as disabled", "{runtimeMonitoring: disabled}", Some((MISSING, MISSING)), vec![]),
        ("an additional configuration the detector does not list is enabled", "{ecsFargateAgentManagement: enabled}", Some((ON, MISSING)), vec![format!("detector {auto} none->ENABLED")]),
        ("an additional configuration the detector does not list counts as disabled", "{ecsFargateAgentManagement: disabled}", Some((ON, MISSING)), vec![]),
        ("automation of a detector without the feature is enabled", "{ecsFargateAgentManagement: enabled}", Some((MISSING, MISSING)), vec![format!("detector {auto} none->ENABLED")]),
        ("automation is disabled", "{ecsFargateAgentManagement: disabled}", Some((ON, ON)), vec![format!("detector {auto} ENABLED->DISABLED")]),
        ("unmanaged features never produce actions", "{runtimeMonitoring: unmanaged, ecsFargateAgentManagement: unmanaged}", Some((OFF, ON)), vec![]),
        ("a missing detector section means unmanaged", "{}", Some((OFF, OFF)), vec![]),
        (
            "monitoring is turned on before automation",
            "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}",
            Some((OFF, OFF)),
            vec![format!("detector {rm} DISABLED->ENABLED"), format!("detector {auto} DISABLED->ENABLED")],
        ),
        ("no detector: nothing to change", "{runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}", None, vec![]),
    ];
    for (label, section, detector, expected) in rows {
        let mut observed = target("us-east-1");
        if let Some((rm, auto)) = detector {
            observed = observed.detector(rm, auto);
        }
        let plan = plan(&desired(&format!("detector: {section}")), &observed);
        assert_eq!(summary(&plan), expected, "{label}");
    }
}

#[test]
fn detector_actions_name_the_detector_and_leave_other_features_alone() {
    let mut observed = target("us-east-1").detector(OFF, MISSING);
    if let Some(d) = observed.detector.as_mut() {
        d.features.insert(
            EKS_RUNTIME_MONITORING.to_owned(),
            ObservedFeature {
                status: ENABLED.to_owned(),
                additional: BTreeMap::new(),
            },
        );
    }
    let plan = plan(&desired("detector: {runtimeMonitoring: enabled}"), &observed);
    let features: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateDetector { detector_id, feature, .. } => Some((detector_id.as_str(), *feature)),
            _ => None,
        })
        .collect();
    assert_eq!(features, [("det-1", RUNTIME_MONITORING)]);
}

#[test]
fn a_region_without_a_detector_is_reported_not_changed() {
    // (label, detector section, warns)
    let rows = [
        ("enabling monitoring without a detector warns", "{runtimeMonitoring: enabled}", true),
        ("enabling automation without a detector warns", "{ecsFargateAgentManagement: enabled}", true),
        ("disabling without a detector is already true", "{runtimeMonitoring: disabled}", false),
        ("unmanaged features need no detector", "{}", false),
    ];
    for (label, section, warns) in rows {
        let plan = plan(&desired(&format!("detector: {section}")), &target("eu-west-1"));
        assert_eq!(summary(&plan), Vec::<String>::new(), "{label}");
        assert_eq!(plan.warnings.len(), usize::from(warns), "{label}: {:?}", plan.warnings);
        if warns {
            assert!(plan.warnings[0].contains("eu-west-1"), "{label}: the warning names the region");
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
    let observed = target("us-east-1")
        .with(cluster("zeta"))
        .with(cluster("mid").tagged(KEY, "true"))
        .with(cluster("load-b"))
        .with(cluster("beta").tagged(KEY, "false"))
        .with(cluster("alpha"))
        .with(cluster("load-a"))
        .detector(OFF, OFF);
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
    let names: Vec<String> = plan(&desired, &observed).clusters.into_iter().map(|r| r.cluster).collect();
    assert_eq!(names, ["alpha", "beta", "load-a", "load-b", "mid", "zeta"]);
}

// ---------------------------------------------------------------------------------------
// Safety limits
// ---------------------------------------------------------------------------------------

#[test]
fn safety_limits_refuse_mass_changes_unless_allowed() {
    let untagged = || target("us-east-1").with_all([cluster("a"), cluster("b"), cluster("c")]);
    // Five clusters covered in inclusion-tag mode.
    let covered = || {
        target("us-east-1")
            .with_all(["c1", "c2", "c3", "c4", "c5"].map(|n| cluster(n).tagged(KEY, "true")))
            .detector(ON, OFF)
    };
    let exclude = |names: &[&str], extra: &str| {
        let rules: Vec<String> = names
            .iter()
            .map(|n| format!("{{name: {n}, guardDutyManaged: false}}"))
            .collect();
        format!("clusters: [{}]\n{extra}", rules.join(", "))
    };
    let tag_all = |max: u32| {
        format!("clusters: [{{match: {{namePattern: '*'}}, guardDutyManaged: true}}]\nsafety: {{maxClusterChangesPerCycle: {max}}}")
    };
    let loss = "safety: {maxCoverageLossFraction: 0.2}";
    // (label, sections, observed, allow_mass_change, refusing limit)
    let rows: Vec<(&str, String, ObservedTarget, bool, Option<&str>)> = vec![
        ("more tag changes than the limit are refused", tag_all(2), untagged(), false, Some("maxClusterChangesPerCycle")),
        ("exactly the limit of tag changes is not refused", tag_all(3), untagged(), false, None),
        ("--allow-mass-change overrides the change limit", tag_all(2), untagged(), true, None),
        (
            "removing tags counts as a tag change",
            "clusters: [{match: {namePattern: '*'}, guardDutyManaged: absent}]\nsafety: {maxClusterChangesPerCycle: 2}".to_owned(),
            target("us-east-1").with_all([cluster("a"), cluster("b"), cluster("c")].map(|c| c.tagged(KEY, "false"))),
            false,
            Some("maxClusterChangesPerCycle"),
        ),
        (
            "detector changes are not cluster changes",
            "detector: {runtimeMonitoring: enabled}\nsafety: {maxClusterChangesPerCycle: 0}".to_owned(),
            target("us-east-1").with(cluster("a")).detector(OFF, OFF),
            false,
            None,
        ),
        ("losing coverage of 2 of 5 covered clusters exceeds 0.2", exclude(&["c1", "c2"], loss), covered(), false, Some("maxCoverageLossFraction")),
        ("losing coverage of 1 of 5 covered clusters is exactly 0.2", exclude(&["c1"], loss), covered(), false, None),
        ("--allow-mass-change overrides the coverage-loss limit", exclude(&["c1", "c2"], loss), covered(), true, None),
        (
            "turning monitoring off loses every covered cluster",
            format!("detector: {{runtimeMonitoring: disabled}}\n{loss}"),
            covered(),
            false,
            Some("maxCoverageLossFraction"),
        ),
        (
            "turning automation off loses the clusters it covered",
            format!("detector: {{ecsFargateAgentManagement: disabled}}\n{loss}"),
            target("us-east-1").with_all([cluster("a"), cluster("b")]).detector(ON, ON),
            false,
            Some("maxCoverageLossFraction"),
        ),
        (
            "changes that lose no coverage are never refused for it",
            exclude(&["a", "b", "c"], "safety: {maxCoverageLossFraction: 0}"),
            untagged().detector(ON, OFF),
            false,
            None,
        ),
        (
            "a fraction of 1 allows losing everything",
            "detector: {runtimeMonitoring: disabled}\nsafety: {maxCoverageLossFraction: 1}".to_owned(),
            covered(),
            false,
            None,
        ),
    ];
    for (label, sections, observed, allow_mass_change, limit) in rows {
        let desired = desired(&sections);
        let plan = plan_target(&desired, &observed, PlanOptions { allow_mass_change });
        assert!(!plan.actions.is_empty(), "{label}: the row must plan some change");
        assert_eq!(plan.refused.as_ref().map(|r| r.limit), limit, "{label}");
        if let Some(refusal) = &plan.refused {
            assert!(refusal.reason.contains(refusal.limit), "{label}: {}", refusal.reason);
            assert!(refusal.reason.contains("--allow-mass-change"), "{label}: {}", refusal.reason);
            assert!(refusal.value > refusal.max, "{label}: {refusal:?}");
        }
    }
}

#[test]
fn a_refused_plan_still_shows_what_it_would_do_and_by_how_much() {
    let observed = target("us-east-1")
        .with_all(["c1", "c2", "c3", "c4", "c5"].map(|n| cluster(n).tagged(KEY, "true")))
        .detector(ON, OFF);
    let desired = desired("clusters: [{match: {namePattern: 'c[12]'}, guardDutyManaged: false}]");
    let plan = plan(&desired, &observed);
    assert_eq!(summary(&plan), ["tag c1 true->false", "tag c2 true->false"]);
    let refusal = plan.refused.expect("2 of 5 is more than the default 0.2");
    assert_eq!(
        (refusal.limit, refusal.value, refusal.max, refusal.region.as_str()),
        ("maxCoverageLossFraction", 0.4, 0.2, "us-east-1")
    );
}

// ---------------------------------------------------------------------------------------
// Coverage column
// ---------------------------------------------------------------------------------------

#[test]
fn the_coverage_column_says_what_the_plan_does_to_coverage() {
    use CoverageChange::*;
    let rule = |tag: &str| format!("clusters: [{{name: prod, guardDutyManaged: {tag}}}]");
    let manual = "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: disabled}\n";
    let automated = "detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\n";
    let prod = || cluster("prod");
    // (label, sections, observed detector (rm, auto), cluster, coverage)
    type Row<'a> = (&'a str, String, (Option<&'a str>, Option<&'a str>), ObservedCluster, CoverageChange);
    let rows: Vec<Row> = vec![
        ("an included cluster in manual mode stays covered", format!("{manual}{}", rule("true")), (ON, OFF), prod().tagged(KEY, "true"), Covered),
        ("tagging a cluster true in manual mode is expected to cover it", format!("{manual}{}", rule("true")), (ON, OFF), prod(), Expected),
        ("fixing a miscased tag is expected to cover it", format!("{manual}{}", rule("true")), (ON, OFF), prod().tagged(KEY, "True"), Expected),
        ("enabling monitoring is expected to cover an included cluster", format!("{manual}{}", rule("true")), (OFF, OFF), prod().tagged(KEY, "true"), Expected),
        ("removing the inclusion tag in manual mode loses coverage", format!("{manual}{}", rule("absent")), (ON, OFF), prod().tagged(KEY, "true"), Lost),
        ("excluding a cluster under automation loses coverage", format!("{automated}{}", rule("false")), (ON, ON), prod(), Lost),
        ("an excluded cluster stays excluded", format!("{automated}{}", rule("false")), (ON, ON), prod().tagged(KEY, "false"), Excluded),
        ("an exclusion tag no rule names still excludes", automated.to_owned(), (ON, ON), prod().tagged(KEY, "false"), Excluded),
        ("automation covers an untagged cluster no rule names", automated.to_owned(), (ON, ON), prod(), Covered),
        ("enabling automation is expected to cover clusters no rule names", automated.to_owned(), (ON, OFF), prod(), Expected),
        ("a cluster no rule names and nothing covers is unmanaged", manual.to_owned(), (ON, OFF), prod(), Unmanaged),
        ("a named cluster with monitoring off is uncovered", format!("detector: {{runtimeMonitoring: disabled}}\n{}", rule("true")), (OFF, OFF), prod().tagged(KEY, "true"), Uncovered),
        ("absent in manual mode leaves a named cluster uncovered", format!("{manual}{}", rule("absent")), (ON, OFF), prod(), Uncovered),
        ("a missing feature covers nothing", rule("true"), (MISSING, MISSING), prod().tagged(KEY, "true"), Uncovered),
    ];
    for (label, sections, (rm, auto), cluster, coverage) in rows {
        let observed = target("us-east-1").with(cluster).detector(rm, auto);
        let plan = plan_target(&desired(&sections), &observed, PlanOptions { allow_mass_change: true });
        assert_eq!(row(&plan, "prod").map(|r| r.coverage), Some(coverage), "{label}");
    }
}

#[test]
fn without_a_detector_nothing_is_expected_to_be_covered() {
    let desired = desired("detector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\nclusters: [{name: prod, guardDutyManaged: true}]");
    let observed = target("us-east-1").with(cluster("prod")).with(cluster("other"));
    let plan = plan(&desired, &observed);
    let coverage: Vec<(&str, &str)> = plan.clusters.iter().map(|r| (r.cluster.as_str(), r.coverage.as_str())).collect();
    assert_eq!(coverage, [("other", "unmanaged"), ("prod", "uncovered")]);
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
    let observed = target("us-east-1")
        .with(cluster("sandbox").tagged(KEY, "false"))
        .with(cluster("prod"))
        .detector(OFF, MISSING);
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
             "desired": "true", "observed": null, "coverage": "expected"},
            {"region": "us-east-1", "account": ACCOUNT, "cluster": "sandbox",
             "desired": "absent", "observed": "false", "coverage": "uncovered"},
        ])
    );
    assert_eq!(json["warnings"], json!([]));
}

#[test]
fn a_refusal_in_the_plan_json_names_the_limit() {
    let desired = desired("clusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]\nsafety: {maxClusterChangesPerCycle: 1}");
    let observed = target("us-east-1").with_all([cluster("a"), cluster("b")]);
    let json = Plan {
        targets: vec![plan(&desired, &observed)],
    }
    .to_json();
    let refused = &json["refused"];
    assert_eq!(refused["limit"], "maxClusterChangesPerCycle");
    assert_eq!((refused["value"].as_f64(), refused["max"].as_f64()), (Some(2.0), Some(1.0)));
    assert!(refused["reason"].as_str().is_some_and(|r| r.contains("2 cluster tag changes")), "{refused}");
    assert_eq!(json["changes"], 2, "a refused plan still counts its changes");
}

#[test]
fn the_plan_json_joins_targets_in_order_and_reports_the_first_refusal() {
    let strict = desired("clusters: [{match: {namePattern: '*'}, guardDutyManaged: true}]\nsafety: {maxClusterChangesPerCycle: 0}");
    let east = plan(&strict, &target("us-east-1").with(cluster("a")));
    let west = plan(&strict, &target("eu-west-1").with(cluster("b")));
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
    let plan = plan(&desired("detector: {runtimeMonitoring: enabled}"), &target("us-east-1"));
    let json = Plan { targets: vec![plan] }.to_json();
    assert_eq!(json["changes"], 0);
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1));
}
