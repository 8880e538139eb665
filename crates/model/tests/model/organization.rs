//! The `organization` section: the GuardDuty delegated administrator's targets, its members,
//! and the auto-enable the rest of the file allows, every mistake at its line, column and
//! field path (DESIGN §8).

use gec_model::desired::{
    parse, AutoEnable, DesiredState, MemberSelection, OrgRole, OrganizationSpec,
};
use gec_model::testing::target;

fn parsed(name: &str, text: &str) -> DesiredState {
    parse(name, text).unwrap_or_else(|errors| panic!("{name} is valid, but:\n{errors}"))
}

/// One reported mistake: line, column, field path, and fragments of its message.
type Mistake = (usize, usize, &'static str, &'static [&'static str]);

/// A valid organization section, line 2 to 7 of every file below.
const ORG: &str = "\
version: 1
organization:
  administrator:
    accountId: \"111111111111\"
    roleArn: arn:aws:iam::111111111111:role/gec
    regions: [us-east-1, eu-west-1]
  memberRoleName: gec
";

#[test]
fn the_targets_are_the_administrators_regions_each_in_its_organization_role() {
    let d = parsed("org.yaml", ORG);
    let role = "arn:aws:iam::111111111111:role/gec";
    let admin = |region: &str| {
        let mut t = target(region).role(role);
        t.org = Some(OrgRole::Administrator);
        t
    };
    assert_eq!(d.targets, [admin("us-east-1"), admin("eu-west-1")]);
    let org = d.organization.expect("the section");
    assert_eq!(org.auto_enable, AutoEnable::None, "none unless asked");
    assert_eq!(
        org.members,
        MemberSelection::All,
        "every member unless listed"
    );
    let member = org.member_target(&d.targets[1], "222222222222");
    assert_eq!(
        member.role_arn.as_deref(),
        Some("arn:aws:iam::222222222222:role/gec")
    );
}

#[test]
fn members_are_all_or_a_list_and_auto_enable_reads_each_word() {
    let rows: &[(&str, MemberSelection, AutoEnable)] = &[
        (
            "  members: all\n  autoEnable: none\n",
            MemberSelection::All,
            AutoEnable::None,
        ),
        (
            "  members: [\"222222222222\", \"333333333333\"]\n  autoEnable: none\n",
            MemberSelection::Accounts(vec!["222222222222".into(), "333333333333".into()]),
            AutoEnable::None,
        ),
        (
            "  members: all\n  autoEnable: new\n",
            MemberSelection::All,
            AutoEnable::New,
        ),
        (
            "  members:\n    - \"222222222222\"\n  autoEnable: none\n",
            MemberSelection::Accounts(vec!["222222222222".into()]),
            AutoEnable::None,
        ),
        ("  autoEnable: all\n", MemberSelection::All, AutoEnable::All),
    ];
    for (extra, members, auto) in rows {
        let text = format!("{ORG}{extra}detector:\n  runtimeMonitoring: enabled\n");
        let org: OrganizationSpec = parsed(extra, &text).organization.expect("the section");
        assert_eq!((&org.members, org.auto_enable), (members, *auto), "{extra}");
        let json = serde_json::to_value(&org).expect("serializes");
        let back: OrganizationSpec = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, org, "{extra}");
    }
}

#[test]
fn members_and_regions_past_the_target_limit_are_refused() {
    let members: Vec<String> = (0..2_501)
        .map(|i| format!("\"{:012}\"", 200_000_000_000u64 + i))
        .collect();
    let text = format!(
        "version: 1\norganization:\n  administrator: {{accountId: \"111111111111\", regions: [us-east-1, eu-west-1]}}\n  memberRoleName: gec\n  members: [{}]\n",
        members.join(", ")
    );
    let errors = parse("many.yaml", &text).expect_err("2,501 members × 2 regions");
    let got: Vec<(&str, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.path.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(got, [("organization.members", "limit")], "{errors}");

    let regions: Vec<String> = (0..=5_000).map(|i| format!("xx-east-{i}")).collect();
    let text = format!(
        "version: 1\norganization:\n  administrator: {{accountId: \"111111111111\", regions: [{}]}}\n  memberRoleName: gec\n",
        regions.join(", ")
    );
    let errors = parse("regions.yaml", &text).expect_err("5,001 regions");
    assert_eq!(
        errors.errors[0].path, "organization.administrator.regions",
        "{errors}"
    );
    assert!(
        errors.errors[0].message.contains("more than the limit"),
        "{errors}"
    );
}

#[test]
fn mistakes_in_the_organization_section_are_reported_at_their_line_column_and_path() {
    // (label, the file after `version: 1`, every mistake as (line, column, path, fragments))
    #[rustfmt::skip]
    let rows: &[(&str, &str, &[Mistake])] = &[
        ("neither targets nor organization",
            "detector: {runtimeMonitoring: enabled}\n",
            &[(1, 8, "", &["missing field `targets`", "`organization`"])]),
        ("both targets and organization",
            "targets: [{region: us-east-1}]\norganization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n",
            &[(3, 1, "organization", &["either `targets` or `organization`, not both"])]),
        ("both, and a mistake in each",
            "targets: [{region: us-east1}]\norganization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoEnable: all\nclusters: [{name: a, guardDutyManaged: false}]\n",
            &[(2, 20, "targets[0].region", &["\"us-east1\" is not an AWS region name"]),
              (3, 1, "organization", &["not both"]),
              (6, 15, "organization.autoEnable", &["clusters[0]"]),
              (6, 15, "organization.autoEnable", &["detector.runtimeMonitoring is unmanaged"])]),
        ("an unknown key",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoenable: none\n",
            &[(5, 3, "organization.autoenable", &["unknown field `autoenable`", "`autoEnable`"])]),
        ("memberRoleName missing",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n",
            &[(3, 16, "organization", &["missing field `memberRoleName`"])]),
        ("an unknown autoEnable word",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoEnable: always\n",
            &[(5, 15, "organization.autoEnable", &["always"])]),
        ("members neither all nor a list",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  members: some\n",
            &[(5, 12, "organization.members", &["`all` or a list of account ids"])]),
        ("unquoted ids",
            "organization:\n  administrator:\n    accountId: 111111111111\n    regions: [us-east-1]\n  memberRoleName: gec\n  members: [222222222222]\n",
            &[(4, 16, "organization.administrator.accountId", &["YAML number", "accountId: \"111111111111\""]),
              (7, 13, "organization.members[0]", &["YAML number", "- \"222222222222\""])]),
        ("ids that are not 12 digits, a repeat, the administrator as a member",
            "organization:\n  administrator: {accountId: \"1111\", regions: [us-east-1]}\n  memberRoleName: gec\n  members: [\"22\", \"333333333333\", \"333333333333\", \"111111111111\"]\n",
            &[(3, 30, "organization.administrator.accountId", &["\"1111\" is not a 12-digit AWS account id"]),
              (5, 13, "organization.members[0]", &["\"22\" is not a 12-digit"]),
              (5, 35, "organization.members[2]", &["duplicate member 333333333333 (first at members[1])"])]),
        ("the administrator listed as a member",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  members: [\"111111111111\"]\n",
            &[(5, 13, "organization.members[0]", &["111111111111 is the administrator"])]),
        ("no members listed",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  members: []\n",
            &[(5, 12, "organization.members", &["list at least one member account", "members: all"])]),
        ("regions: none, bad, repeated, two partitions",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1, useast2, us-east-1, cn-north-1]}\n  memberRoleName: gec\n",
            &[(3, 67, "organization.administrator.regions[1]", &["\"useast2\" is not an AWS region name"]),
              (3, 76, "organization.administrator.regions[2]", &["duplicate region us-east-1 (first at regions[0])"]),
              (3, 87, "organization.administrator.regions[3]", &["cn-north-1 is in partition aws-cn"])]),
        ("no regions",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: []}\n  memberRoleName: gec\n",
            &[(3, 55, "organization.administrator.regions", &["list at least one region"])]),
        ("a roleArn that is not one",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1], roleArn: gec}\n  memberRoleName: gec\n",
            &[(3, 77, "organization.administrator.roleArn", &["\"gec\" is not an IAM role ARN"])]),
        ("a roleArn in another account",
            "organization:\n  administrator:\n    accountId: \"111111111111\"\n    regions: [us-east-1]\n    roleArn: arn:aws:iam::222222222222:role/gec\n  memberRoleName: gec\n",
            &[(6, 14, "organization.administrator.roleArn", &["the role is in account 222222222222, not in the administrator account (111111111111)"])]),
        ("externalId without roleArn",
            "organization:\n  administrator:\n    accountId: \"111111111111\"\n    regions: [us-east-1]\n    externalId: x\n  memberRoleName: gec\n",
            &[(6, 17, "organization.administrator.externalId", &["externalId needs roleArn"])]),
        ("memberRoleName an ARN",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: arn:aws:iam::111111111111:role/gec\n",
            &[(4, 19, "organization.memberRoleName", &["is an ARN", "name only"])]),
        ("memberRoleName with a space",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: g e c\n",
            &[(4, 19, "organization.memberRoleName", &["not an IAM role name"])]),
        ("autoEnable new with an exclusion rule",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoEnable: new\ndetector: {runtimeMonitoring: enabled, ecsFargateAgentManagement: enabled}\nclusters:\n  - {name: a, guardDutyManaged: true}\n  - {name: b, guardDutyManaged: true}\n  - {match: {namePattern: \"*-dev\"}, guardDutyManaged: false}\n  - {name: c, guardDutyManaged: false}\n",
            &[(5, 15, "organization.autoEnable", &["autoEnable: new", "guardDutyManaged: false in clusters[2] and 1 more rule", "the moment it joins", "before the controller can write its exclusion tags", "autoEnable: none"])]),
        ("autoEnable all with an exclusion rule and Runtime Monitoring unmanaged",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoEnable: all\nclusters:\n  - {name: sandbox, guardDutyManaged: false}\n",
            &[(5, 15, "organization.autoEnable", &["autoEnable: all", "guardDutyManaged: false in clusters[0])"]),
              (5, 15, "organization.autoEnable", &["detector.runtimeMonitoring is unmanaged"])]),
        ("autoEnable new with Runtime Monitoring disabled",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  autoEnable: new\ndetector: {runtimeMonitoring: disabled}\n",
            &[(5, 15, "organization.autoEnable", &["detector.runtimeMonitoring is disabled"])]),
        ("a broken organization does not hide a mistake elsewhere",
            "organization:\n  administrator: {accountId: \"111111111111\", regions: [us-east-1]}\n  memberRoleName: gec\n  members: some\nclusters:\n  - {name: a, match: {namePattern: x}, guardDutyManaged: true}\n",
            &[(5, 12, "organization.members", &["`all` or a list"]),
              (7, 5, "clusters[0]", &["either `name` or `match`"])]),
        ("several mistakes at once",
            "organization:\n  administrator: {accountId: \"1111\", regions: [useast1]}\n  memberRoleName: arn:aws:iam::111111111111:role/gec\n  autoEnable: all\ndetector: {runtimeMonitoring: enabled}\nclusters:\n  - {name: sandbox, guardDutyManaged: false}\n",
            &[(3, 30, "organization.administrator.accountId", &["12-digit"]),
              (3, 48, "organization.administrator.regions[0]", &["not an AWS region"]),
              (4, 19, "organization.memberRoleName", &["is an ARN"]),
              (5, 15, "organization.autoEnable", &["clusters[0]"])]),
    ];
    let mut wrong = Vec::new();
    for (label, body, expected) in rows {
        let text = format!("version: 1\n{body}");
        let errors = match parse(label, &text) {
            Ok(d) => panic!("{label}: accepted {:?}", d.organization),
            Err(errors) => errors,
        };
        let got: Vec<(usize, usize, &str)> = errors
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.path.as_str()))
            .collect();
        let want: Vec<(usize, usize, &str)> = expected.iter().map(|x| (x.0, x.1, x.2)).collect();
        if got != want {
            wrong.push(format!(
                "{label}: got {got:?}, want {want:?}\n{errors}\n---\n{text}"
            ));
            continue;
        }
        for (error, (_, _, _, says)) in errors.errors.iter().zip(expected.iter()) {
            for fragment in *says {
                if !error.message.contains(fragment) {
                    wrong.push(format!(
                        "{label}: {:?} should say {fragment:?}",
                        error.message
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn auto_enable_with_a_members_list_is_refused_because_it_reaches_every_account() {
    for word in ["new", "all"] {
        let text = format!(
            "{ORG}  members: [\"222222222222\"]\n  autoEnable: {word}\ndetector:\n  runtimeMonitoring: enabled\n"
        );
        let errors = parse("list.yaml", &text).expect_err("auto-enable reaches unlisted accounts");
        let e = &errors.errors[0];
        assert_eq!(e.path, "organization.autoEnable", "{errors}");
        assert!(
            e.message
                .contains("also those organization.members does not list"),
            "{errors}"
        );
    }
}
