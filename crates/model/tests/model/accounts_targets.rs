//! The `accounts` form of `targets`: one entry for many accounts in many regions, expanded
//! in file order to one target per (account, region), with every mistake reported at its
//! line, column and field path.

use std::fs;
use std::path::Path;

use gec_model::desired::{json_schema, parse, DesiredState, Target, TargetEntry};
use gec_model::testing::target;

fn parsed(name: &str, text: &str) -> DesiredState {
    parse(name, text).unwrap_or_else(|errors| panic!("{name} is valid, but:\n{errors}"))
}

const HEAD: &str = "version: 1\ntargets:\n";

/// (region, role ARN) of each target an entry expands to.
type RolesByRegion = &'static [(&'static str, &'static str)];
/// One reported mistake: line, column, field path, and fragments of its message.
type Mistake = (usize, usize, &'static str, &'static [&'static str]);

#[test]
fn an_accounts_entry_expands_to_each_account_in_every_region_in_file_order() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/multi-account.yaml"),
    )
    .expect("the example");
    let desired = parsed("multi-account.yaml", &text);
    let role = |account: &str| format!("arn:aws:iam::{account}:role/guardduty-ecs-controller");
    let ext = "platform-team-7f3a";
    let mut want = vec![target("us-east-1")];
    for account in ["111111111111", "222222222222", "333333333333"] {
        for region in ["us-east-1", "eu-west-1"] {
            want.push(target(region).role(&role(account)).external_id(ext));
        }
    }
    assert_eq!(desired.targets, want);
    let labels: Vec<String> = desired.targets.iter().map(Target::label).collect();
    assert_eq!(
        labels,
        [
            "us-east-1",
            "111111111111/us-east-1",
            "111111111111/eu-west-1",
            "222222222222/us-east-1",
            "222222222222/eu-west-1",
            "333333333333/us-east-1",
            "333333333333/eu-west-1",
        ]
    );
}

#[test]
fn an_accounts_own_role_arn_beats_the_role_name_and_partitions_follow_the_region() {
    // (label, entry, the roles it expands to, by region)
    let rows: &[(&str, &str, RolesByRegion)] = &[
        (
            "roleArn of the account",
            "  - regions: [us-east-1]\n    accounts: [{id: \"111111111111\", roleArn: \"arn:aws:iam::111111111111:role/other\"}]\n    roleName: gec\n",
            &[("us-east-1", "arn:aws:iam::111111111111:role/other")],
        ),
        (
            "roleName with a path",
            "  - regions: [us-east-1]\n    accounts: [{id: \"011111111111\"}]\n    roleName: platform/gec\n",
            &[("us-east-1", "arn:aws:iam::011111111111:role/platform/gec")],
        ),
        (
            "China regions are partition aws-cn",
            "  - regions: [cn-north-1, cn-northwest-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n",
            &[
                ("cn-north-1", "arn:aws-cn:iam::111111111111:role/gec"),
                ("cn-northwest-1", "arn:aws-cn:iam::111111111111:role/gec"),
            ],
        ),
        (
            "GovCloud regions are partition aws-us-gov",
            "  - regions: [us-gov-west-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n",
            &[("us-gov-west-1", "arn:aws-us-gov:iam::111111111111:role/gec")],
        ),
    ];
    for (label, entry, want) in rows {
        let desired = parsed(label, &format!("{HEAD}{entry}"));
        let got: Vec<(&str, &str)> = desired
            .targets
            .iter()
            .map(|t| (t.region.as_str(), t.role_arn.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(&got, want, "{label}");
        assert!(
            desired.targets.iter().all(|t| t.external_id.is_none()),
            "{label}"
        );
    }
}

#[test]
fn mistakes_in_accounts_entries_are_reported_at_their_line_column_and_path() {
    // (label, the targets list, every mistake as (line, column, path, fragments))
    #[rustfmt::skip]
    let rows: &[(&str, &str, &[Mistake])] = &[
        ("an unquoted account id",
            "  - regions: [us-east-1]\n    accounts:\n      - id: 111111111111\n    roleName: gec\n",
            &[(5, 13, "targets[0].accounts[0].id", &["YAML number", "quote it", "id: \"111111111111\""])]),
        ("an unquoted id does not hide the entry's other mistakes",
            "  - regions: [us-east-1]\n    accounts:\n      - id: 111111111111\n      - id: \"22222222222\"\n    roleName: gec\n",
            &[(5, 13, "targets[0].accounts[0].id", &["quote it"]),
              (6, 13, "targets[0].accounts[1].id", &["\"22222222222\" is not a 12-digit AWS account id"])]),
        ("an id that is not 12 digits",
            "  - regions: [us-east-1]\n    accounts: [{id: \"11111\"}]\n    roleName: gec\n",
            &[(4, 21, "targets[0].accounts[0].id", &["\"11111\" is not a 12-digit AWS account id"])]),
        ("a roleArn in another account",
            "  - regions: [us-east-1]\n    accounts:\n      - id: \"111111111111\"\n        roleArn: arn:aws:iam::222222222222:role/gec\n",
            &[(6, 18, "targets[0].accounts[0].roleArn", &["the role is in account 222222222222, not in this account (111111111111)"])]),
        ("a roleArn that is not one",
            "  - regions: [us-east-1]\n    accounts: [{id: \"111111111111\", roleArn: gec}]\n",
            &[(4, 46, "targets[0].accounts[0].roleArn", &["\"gec\" is not an IAM role ARN"])]),
        ("no role for an account",
            "  - regions: [us-east-1]\n    accounts:\n      - id: \"111111111111\"\n        roleArn: arn:aws:iam::111111111111:role/gec\n      - id: \"222222222222\"\n",
            &[(7, 11, "targets[0].accounts[1]", &["no role to assume in account 222222222222", "roleArn", "roleName"])]),
        ("a roleName that is an ARN",
            "  - regions: [us-east-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: arn:aws:iam::111111111111:role/gec\n",
            &[(5, 15, "targets[0].roleName", &["is an ARN", "name only"])]),
        ("an unknown key in an account",
            "  - regions: [us-east-1]\n    accounts:\n      - id: \"111111111111\"\n        rolearn: arn:aws:iam::111111111111:role/gec\n    roleName: gec\n",
            &[(6, 9, "targets[0].accounts[0].rolearn", &["unknown field `rolearn`", "`roleArn`"])]),
        ("two unknown keys in two accounts",
            "  - regions: [us-east-1]\n    accounts:\n      - {id: \"111111111111\", name: a}\n      - {id: \"222222222222\", name: b}\n    roleName: gec\n",
            &[(5, 30, "targets[0].accounts[0].name", &["unknown field `name`"]),
              (6, 30, "targets[0].accounts[1].name", &["unknown field `name`"])]),
        ("region instead of regions",
            "  - region: us-east-1\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n",
            &[(3, 5, "targets[0].region", &["unknown field `region`", "`regions`"])]),
        ("accounts missing",
            "  - regions: [us-east-1]\n    roleName: gec\n",
            &[(3, 12, "targets[0]", &["missing field `accounts`"])]),
        ("no regions and no accounts",
            "  - regions: []\n    accounts: []\n    roleName: gec\n",
            &[(3, 14, "targets[0].regions", &["list at least one region"]),
              (4, 15, "targets[0].accounts", &["list at least one account"])]),
        ("a region that is not one, and a repeated one",
            "  - regions: [us-east-1, useast2, us-east-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n",
            &[(3, 26, "targets[0].regions[1]", &["\"useast2\" is not an AWS region name"]),
              (3, 35, "targets[0].regions[2]", &["duplicate region us-east-1 (first at regions[0])"])]),
        ("regions of two partitions",
            "  - regions: [us-east-1, cn-north-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n",
            &[(3, 26, "targets[0].regions[1]", &["cn-north-1 is in partition aws-cn, us-east-1 in aws"])]),
        ("an account listed twice in one entry",
            "  - regions: [us-east-1]\n    accounts: [{id: \"111111111111\"}, {id: \"111111111111\"}]\n    roleName: gec\n",
            &[(4, 43, "targets[0].accounts[1].id", &["duplicate account 111111111111 (first at accounts[0])"])]),
        ("an account and region already listed by another entry",
            "  - regions: [us-east-1, eu-west-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n  - regions: [eu-west-1, us-east-1, us-west-2]\n    accounts: [{id: \"222222222222\"}, {id: \"111111111111\"}]\n    roleName: gec\n",
            &[(7, 38, "targets[1].accounts[1]", &["duplicate target: account 111111111111 in eu-west-1, us-east-1 is already listed at targets[0].accounts[0]"])]),
        ("a single target with the role of an accounts entry",
            "  - regions: [us-east-1]\n    accounts: [{id: \"111111111111\"}]\n    roleName: gec\n  - region: us-east-1\n    roleArn: arn:aws:iam::111111111111:role/other\n",
            &[(6, 11, "targets[1]", &["duplicate target: account 111111111111 in us-east-1 is already listed at targets[0].accounts[0]"])]),
        ("two single targets with the own credentials",
            "  - region: us-east-1\n  - region: us-east-1\n",
            &[(4, 11, "targets[1]", &["duplicate target: us-east-1 with the controller's own credentials is already listed at targets[0]"])]),
        ("externalId without a role in a single target",
            "  - region: us-east-1\n    externalId: x\n",
            &[(4, 17, "targets[0].externalId", &["externalId needs roleArn"])]),
    ];
    let mut wrong = Vec::new();
    for (label, targets, expected) in rows {
        let text = format!("{HEAD}{targets}");
        let errors = match parse(label, &text) {
            Ok(d) => panic!("{label}: accepted {:?}", d.targets),
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
fn a_broken_accounts_entry_does_not_hide_mistakes_elsewhere() {
    let text = "\
version: 1
targets:
  - regions: [us-east-1]
    accounts: [{id: \"111111111111\"}]
  - region: us-east-1
clusters:
  - name: a
    guardDutyManaged: true
  - name: a
    guardDutyManaged: false
";
    let errors = parse("mixed.yaml", text).expect_err("two mistakes");
    let got: Vec<(usize, &str)> = errors
        .errors
        .iter()
        .map(|e| (e.line, e.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [(4, "targets[0].accounts[0]"), (9, "clusters[1].name")],
        "{errors}"
    );
}

#[test]
fn the_expanded_state_reads_back_from_its_json_and_entries_read_either_form() {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/multi-account.yaml"),
    )
    .expect("the example");
    let desired = parsed("multi-account.yaml", &text);
    let json = serde_json::to_string(&desired).expect("serializes");
    let back: DesiredState = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, desired);

    let entries: Vec<TargetEntry> = serde_json::from_value(serde_json::json!([
        {"region": "us-east-1"},
        {"regions": ["eu-west-1"], "accounts": [{"id": "111111111111"}], "roleName": "gec"},
    ]))
    .expect("both forms");
    assert!(matches!(entries[0], TargetEntry::Single(_)));
    let expanded = entries[1].expand().expect("has a role");
    assert_eq!(
        expanded,
        [target("eu-west-1").role("arn:aws:iam::111111111111:role/gec")]
    );
    let no_role: TargetEntry = serde_json::from_value(serde_json::json!(
        {"regions": ["eu-west-1"], "accounts": [{"id": "111111111111"}]}
    ))
    .expect("reads");
    assert!(no_role.expand().is_err(), "an account without a role");
}

#[test]
fn the_json_schema_describes_both_target_forms() {
    let schema = json_schema();
    let defs = &schema["$defs"];
    let resolve = |node: &serde_json::Value| -> serde_json::Value {
        match node["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            Some(name) => defs[name].clone(),
            None => node.clone(),
        }
    };
    let items = resolve(&schema["properties"]["targets"]["items"]);
    let forms = items["anyOf"]
        .as_array()
        .or_else(|| items["oneOf"].as_array())
        .unwrap_or_else(|| panic!("targets items are a choice of forms: {items}"));
    let names: Vec<&str> = forms
        .iter()
        .filter_map(|f| f["$ref"].as_str())
        .map(|r| r.rsplit('/').next().unwrap_or(r))
        .collect();
    assert_eq!(names, ["Target", "AccountsTarget"], "{items}");
    let accounts = &defs["AccountsTarget"];
    assert_eq!(accounts["additionalProperties"], false);
    assert_eq!(
        accounts["required"],
        serde_json::json!(["regions", "accounts"])
    );
    for key in ["regions", "accounts", "roleName", "externalId"] {
        assert!(
            accounts["properties"].get(key).is_some(),
            "AccountsTarget lacks {key}: {accounts}"
        );
    }
    let account = &defs["AccountRef"];
    assert_eq!(account["additionalProperties"], false);
    assert_eq!(account["properties"]["id"]["type"], "string");
    assert_eq!(account["properties"]["id"]["pattern"], "^[0-9]{12}$");
}
