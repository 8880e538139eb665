//! `plan --read-only-role NAME`: the same desired state, read through a read-only role of
//! the given name in every account the file reaches through a role.

use super::targets::{bad_role_name, partition_of};
use super::{account_of_arn, DesiredState};

/// Checks a role name as `roleName` takes it (an optional `path/`).
///
/// # Errors
/// Why it is not an IAM role name.
pub fn check_role_name(name: &str) -> Result<(), String> {
    bad_role_name(name).map_or(Ok(()), Err)
}

/// `arn:<partition>:iam::<account>:role/<name>` in the partition and account of `role_arn`.
fn same_account(role_arn: &str, region: &str, name: &str) -> String {
    let partition = role_arn
        .split(':')
        .nth(1)
        .filter(|p| p.starts_with("aws"))
        .unwrap_or_else(|| partition_of(region));
    let account = account_of_arn(role_arn).unwrap_or_default();
    format!("arn:{partition}:iam::{account}:role/{name}")
}

impl DesiredState {
    /// The same desired state with every role it assumes replaced by role `name` of the
    /// same account: each target's `roleArn` (also the ones built from an `accounts`
    /// entry's `roleName`), the organization administrator's `roleArn` and
    /// `memberRoleName`. External ids are kept; a target without a role stays on the
    /// caller's credentials (its own account).
    #[must_use]
    pub fn with_read_only_role(mut self, name: &str) -> Self {
        for target in &mut self.targets {
            if let Some(arn) = &target.role_arn {
                target.role_arn = Some(same_account(arn, &target.region, name));
            }
        }
        if let Some(org) = &mut self.organization {
            org.member_role_name = name.to_owned();
            let region = org
                .administrator
                .regions
                .first()
                .cloned()
                .unwrap_or_default();
            if let Some(arn) = &org.administrator.role_arn {
                org.administrator.role_arn = Some(same_account(arn, &region, name));
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::desired::parse;

    #[test]
    fn every_role_becomes_the_read_only_role_of_its_account() {
        let file = r#"
version: 1
targets:
  - region: us-east-1
  - region: eu-west-1
    roleArn: arn:aws:iam::111111111111:role/path/guardduty-ecs-controller
    externalId: x-1
  - regions: [cn-north-1]
    roleName: writer
    accounts:
      - id: "222222222222"
      - id: "333333333333"
        roleArn: arn:aws-cn:iam::333333333333:role/other
"#;
        let desired = parse("t.yaml", file)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_read_only_role("gec-readonly");
        let roles: Vec<_> = desired
            .targets
            .iter()
            .map(|t| (t.role_arn.as_deref(), t.external_id.as_deref()))
            .collect();
        assert_eq!(
            roles,
            [
                (None, None),
                (
                    Some("arn:aws:iam::111111111111:role/gec-readonly"),
                    Some("x-1")
                ),
                (Some("arn:aws-cn:iam::222222222222:role/gec-readonly"), None),
                (Some("arn:aws-cn:iam::333333333333:role/gec-readonly"), None),
            ]
        );
    }

    #[test]
    fn the_organization_reads_through_the_read_only_role_too() {
        let file = r#"
version: 1
organization:
  administrator:
    accountId: "111111111111"
    roleArn: arn:aws:iam::111111111111:role/guardduty-ecs-controller
    regions: [us-east-1]
  memberRoleName: guardduty-ecs-controller
"#;
        let desired = parse("t.yaml", file)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_read_only_role("gec-readonly");
        let org = desired.organization.as_ref().expect("organization");
        assert_eq!(org.member_role_name, "gec-readonly");
        let admin = "arn:aws:iam::111111111111:role/gec-readonly";
        assert_eq!(org.administrator.role_arn.as_deref(), Some(admin));
        assert_eq!(desired.targets[0].role_arn.as_deref(), Some(admin));
        let member = org.member_target(&desired.targets[0], "222222222222");
        assert_eq!(
            member.role_arn.as_deref(),
            Some("arn:aws:iam::222222222222:role/gec-readonly")
        );
    }

    #[test]
    fn a_read_only_role_is_a_role_name() {
        assert!(super::check_role_name("gec-readonly").is_ok());
        assert!(super::check_role_name("ci/gec-readonly").is_ok());
        for bad in ["", "arn:aws:iam::1:role/x", "a b", &"x".repeat(65)] {
            assert!(super::check_role_name(bad).is_err(), "{bad:?}");
        }
    }
}
