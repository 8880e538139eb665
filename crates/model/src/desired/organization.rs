//! The `organization` section: Runtime Monitoring managed from the GuardDuty delegated
//! administrator (DESIGN §8). Its members are found in AWS at every pass, not listed here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns;
use super::targets::{partition_of, MAX_TARGETS};
use super::Target;

/// Runtime Monitoring of an AWS Organization, from its GuardDuty delegated administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationSpec {
    /// The delegated administrator account and the regions it administers.
    pub administrator: AdministratorSpec,
    /// GuardDuty's own auto-enable, for the features `detector` manages, for accounts as
    /// they join (`new`) or for every member (`all`). Must be `none` when a rule excludes
    /// clusters: GuardDuty would turn automation on for a joining account before its
    /// exclusion tags can be written.
    #[serde(default)]
    pub auto_enable: AutoEnable,
    /// Which members the controller manages: `all` associated members, or a list of
    /// account ids.
    #[serde(default)]
    pub members: MemberSelection,
    /// The role the controller assumes in each member account to tag its clusters and
    /// redeploy its services: `arn:<partition>:iam::<member>:role/<memberRoleName>`.
    #[schemars(pattern(patterns::ROLE_NAME))]
    pub member_role_name: String,
    /// External id of the AssumeRole call into each member account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_external_id: Option<String>,
}

/// The delegated administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("dependentRequired" = {"externalId": ["roleArn"]}))]
pub struct AdministratorSpec {
    /// The administrator's 12-digit account id, as a quoted string.
    #[schemars(pattern(patterns::ACCOUNT_ID))]
    pub account_id: String,
    /// Role to assume in the administrator account; without it the controller's own
    /// credentials are used (they must be the administrator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::ROLE_ARN))]
    pub role_arn: Option<String>,
    /// External id for the AssumeRole call; only with `roleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The regions the organization is managed in (GuardDuty administration is per region).
    #[schemars(length(min = 1, max = MAX_TARGETS), inner(pattern(patterns::REGION)))]
    #[schemars(extend("uniqueItems" = true))]
    pub regions: Vec<String>,
}

/// GuardDuty's organization auto-enable (`UpdateOrganizationConfiguration`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AutoEnable {
    /// `NONE`: GuardDuty enables nothing by itself; the controller enables each member
    /// after its exclusion tags are written.
    #[default]
    None,
    /// `NEW`: accounts that join get the features at once.
    New,
    /// `ALL`: every member, those that join included.
    All,
}

impl AutoEnable {
    /// As the GuardDuty API spells it: `NONE`, `NEW`, `ALL`.
    pub fn as_aws(self) -> &'static str {
        match self {
            AutoEnable::None => "NONE",
            AutoEnable::New => "NEW",
            AutoEnable::All => "ALL",
        }
    }
}

/// Which associated members the controller manages: the word `all`, or a list of account
/// ids.
// Serde by hand: an untagged unit variant would read `null`, not `all`.
#[derive(Debug, Clone, Default, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum MemberSelection {
    /// `all`: every associated member (`ListMembers`), new ones included.
    #[default]
    #[schemars(with = "AllMembers")]
    All,
    /// Only these account ids (12 digits, quoted), when they are associated members.
    Accounts(
        #[schemars(
            length(min = 1, max = MAX_TARGETS),
            inner(pattern(patterns::ACCOUNT_ID)),
            extend("uniqueItems" = true)
        )]
        Vec<String>,
    ),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum AllMembers {
    All,
}

impl Serialize for MemberSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MemberSelection::All => s.serialize_str("all"),
            MemberSelection::Accounts(ids) => ids.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MemberSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MemberSelection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`all` or a list of account ids")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemberSelection, E> {
                match v {
                    "all" => Ok(MemberSelection::All),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MemberSelection, A::Error> {
                // No size hint is trusted: the list grows as it is read (the file is bounded).
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    ids.push(id);
                }
                Ok(MemberSelection::Accounts(ids))
            }
        }
        d.deserialize_any(V)
    }
}

impl MemberSelection {
    /// Whether the controller manages this member account.
    pub fn includes(&self, account: &str) -> bool {
        match self {
            MemberSelection::All => true,
            MemberSelection::Accounts(ids) => ids.iter().any(|id| id == account),
        }
    }
}

/// A target's place in an organization; `None` on a [`Target`] reconciled on its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrgRole {
    /// The delegated administrator in this region: its own detector (`UpdateDetector`),
    /// the organization configuration, and the member list.
    Administrator,
    /// A member account in this region: its clusters through the member role, its
    /// detector features only through the administrator (`GetMemberDetectors`,
    /// `UpdateMemberDetectors`), never its own `UpdateDetector`.
    Member {
        /// The member's account id.
        account: String,
        /// The administrator target of the same region.
        administrator: Box<Target>,
    },
}

impl OrganizationSpec {
    /// The administrator's targets, one per region, in file order.
    pub fn administrator_targets(&self) -> Vec<Target> {
        self.administrator
            .regions
            .iter()
            .map(|region| Target {
                region: region.clone(),
                role_arn: self.administrator.role_arn.clone(),
                external_id: self.administrator.external_id.clone(),
                org: Some(OrgRole::Administrator),
            })
            .collect()
    }

    /// The target of member `account` in the region of `administrator` (one of
    /// [`OrganizationSpec::administrator_targets`]).
    pub fn member_target(&self, administrator: &Target, account: &str) -> Target {
        Target {
            region: administrator.region.clone(),
            role_arn: Some(format!(
                "arn:{}:iam::{account}:role/{}",
                partition_of(&administrator.region),
                self.member_role_name
            )),
            external_id: self.member_external_id.clone(),
            org: Some(OrgRole::Member {
                account: account.to_owned(),
                administrator: Box::new(administrator.clone()),
            }),
        }
    }
}
