//! AWS Organizations (DESIGN §8): what the GuardDuty delegated administrator reads and
//! writes for the organization (its members, the organization configuration), and a
//! member's detector features, read and written through the administrator.
//!
//! AWS says only the delegated administrator can change a member's automated agent
//! configuration (GuardDuty User Guide, "Managing automated security agent for Fargate
//! (Amazon ECS only)"), so a member's Runtime Monitoring goes through
//! `GetMemberDetectors` / `UpdateMemberDetectors` in the administrator account, never
//! through `GetDetector` / `UpdateDetector` in the member account.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_guardduty::types::{
    AutoEnableMembers, MemberAdditionalConfiguration,
    MemberFeaturesConfiguration, OrgFeature, OrgFeatureAdditionalConfiguration,
    OrgFeatureStatus, OrganizationAdditionalConfiguration, OrganizationFeatureConfiguration,
    UnprocessedAccount,
};
use gec_model::desired::AutoEnable;
use gec_model::observed::{
    FeatureStatus, ObservedFeature, ObservedOrganization, OrganizationMember,
    EKS_RUNTIME_MONITORING, RUNTIME_MONITORING,
};

use crate::error::{classify, ErrorKind};
use crate::text::bounded;
use crate::write::{runtime_monitoring_with, wire_status};
use crate::{AwsError, FeatureChange, TargetClient};

/// `ListMembers` page size: the API's maximum (botocore: `MaxResults` 1..=50).
pub const LIST_MEMBERS_PAGE: i32 = 50;
/// Most members read from one administrator in one region; more is an error (the list
/// would be cut, and a member left out would silently not be managed).
pub const MAX_MEMBERS: usize = 5_000;
/// Most `ListMembers` pages read in one listing (a service that keeps answering with a
/// next token and few members stops here).
pub const MAX_LIST_MEMBERS_PAGES: usize = 200;
/// Most `DescribeOrganizationConfiguration` pages read in one call.
pub const MAX_ORG_CONFIG_PAGES: usize = 20;
/// Most features (and additional configurations of one feature) kept from
/// `DescribeOrganizationConfiguration`; GuardDuty has 8 features and 4 additional
/// configurations today. More is an error: they are all written back.
const MAX_ORG_FEATURES: usize = 64;
/// Longest GuardDuty text kept (a relationship status, an `unprocessedAccounts` result).
const MAX_TEXT_CHARS: usize = 256;

/// A target's place in an organization, as its clients know it.
#[derive(Debug, Clone, Default)]
pub(crate) enum OrgClient {
    /// A target reconciled on its own: its own detector.
    #[default]
    Own,
    /// The delegated administrator: its own detector, plus the organization configuration.
    Administrator,
    /// A member: its detector's features through the administrator.
    Member(Arc<MemberRoute>),
}

/// How a member's detector features are reached: through its administrator's clients.
#[derive(Debug)]
pub(crate) struct MemberRoute {
    /// The member's account id.
    pub(crate) account: String,
    /// The administrator target's clients (same region).
    pub(crate) administrator: TargetClient,
}

/// One organization auto-enable change: a feature (`RUNTIME_MONITORING`) or an additional
/// configuration of it (`ECS_FARGATE_AGENT_MANAGEMENT`), and its new auto-enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoEnableChange<'a> {
    /// Feature or additional-configuration name.
    pub name: &'a str,
    /// `NEW`, `ALL` or `NONE`.
    pub auto_enable: AutoEnable,
}

/// One feature of the organization configuration, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrgFeatureConfig {
    name: String,
    auto_enable: String,
    additional: BTreeMap<String, String>,
}

/// The organization configuration, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OrgConfig {
    features: Vec<OrgFeatureConfig>,
    /// `autoEnableOrganizationMembers`, as read.
    members: Option<AutoEnableMembers>,
}

impl TargetClient {
    /// The region's detector id: the one learned before, or `ListDetectors` (then kept);
    /// `None` when GuardDuty is not enabled. Never reads the detector itself.
    ///
    /// # Errors
    /// A failed `ListDetectors` call.
    pub(crate) async fn detector_id(&self) -> Result<Option<String>, AwsError> {
        if let Some(id) = self.tasks.detector_id() {
            return Ok(Some(id));
        }
        let list = self
            .guardduty
            .list_detectors()
            .send()
            .await
            .map_err(|e| classify("ListDetectors", e))?;
        // GuardDuty allows one detector per account and region.
        let id = list.detector_ids().first().cloned();
        self.tasks.set_detector_id(id.as_deref());
        Ok(id)
    }

    /// The administrator's own detector id, which every administrator call takes.
    async fn administrator_detector(&self) -> Result<String, AwsError> {
        self.detector_id().await?.ok_or_else(|| {
            AwsError::new(
                ErrorKind::NotFound,
                "ListDetectors",
                None,
                format!(
                    "the delegated administrator has no GuardDuty detector in {}",
                    self.region
                ),
            )
        })
    }

    /// Whether this target is the delegated administrator of its organization.
    pub(crate) fn is_administrator(&self) -> bool {
        matches!(self.org, OrgClient::Administrator)
    }

    /// The associated members of this delegated administrator (`ListMembers` with
    /// `onlyAssociated=true`, [`LIST_MEMBERS_PAGE`] per page), sorted by account, each
    /// once, with GuardDuty's `relationshipStatus`.
    ///
    /// # Errors
    /// A failed `ListDetectors` or `ListMembers` call; no detector in the region
    /// ([`ErrorKind::NotFound`]); more than [`MAX_MEMBERS`] members or
    /// [`MAX_LIST_MEMBERS_PAGES`] pages ([`ErrorKind::Other`]: a cut list would leave
    /// members out without saying so).
    ///
    /// # Guarantees
    /// Every account id returned has 12 digits; an entry without one is left out (and
    /// logged).
    pub async fn list_members(&self) -> Result<Vec<OrganizationMember>, AwsError> {
        let detector = self.administrator_detector().await?;
        let mut members = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_MEMBERS_PAGES {
            let page = self
                .guardduty
                .list_members()
                .detector_id(&detector)
                .only_associated("true")
                .max_results(LIST_MEMBERS_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ListMembers", e))?;
            for m in page.members() {
                let account = m.account_id().unwrap_or_default();
                if !is_account_id(account) {
                    tracing::warn!(
                        account = %bounded(account, 32),
                        "ListMembers: an entry without a 12-digit account id is left out"
                    );
                    continue;
                }
                members.push(OrganizationMember {
                    account: account.to_owned(),
                    relationship: bounded(m.relationship_status().unwrap_or_default(), MAX_TEXT_CHARS),
                });
                if members.len() > MAX_MEMBERS {
                    return Err(too_many(format!(
                        "more than {MAX_MEMBERS} members: the list is not used"
                    )));
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => {
                    members.sort();
                    members.dedup_by(|a, b| a.account == b.account);
                    return Ok(members);
                }
            }
        }
        Err(too_many(format!(
            "more than {MAX_LIST_MEMBERS_PAGES} pages: the list is not used"
        )))
    }

    /// The organization's auto-enable of each feature and additional configuration
    /// (`DescribeOrganizationConfiguration` of the administrator's detector), by name.
    ///
    /// # Errors
    /// A failed `DescribeOrganizationConfiguration` call, or an answer out of bounds.
    pub(crate) async fn observe_organization(
        &self,
        detector_id: &str,
    ) -> Result<ObservedOrganization, AwsError> {
        let config = self.organization_configuration(detector_id).await?;
        let mut auto_enable = BTreeMap::new();
        for f in config.features {
            auto_enable.extend(f.additional);
            auto_enable.insert(f.name, f.auto_enable);
        }
        Ok(ObservedOrganization { auto_enable })
    }

    /// Changes the organization's auto-enable of Runtime Monitoring or of its additional
    /// configurations (`UpdateOrganizationConfiguration` on the administrator's detector).
    ///
    /// Read-modify-write: reads `DescribeOrganizationConfiguration`, then sends every
    /// feature with every additional configuration as read, changing only those in
    /// `changes` (`RUNTIME_MONITORING` is a feature; any other name an additional
    /// configuration of it), and `autoEnableOrganizationMembers` as read.
    /// `EKS_RUNTIME_MONITORING` is not sent: the request always has `RUNTIME_MONITORING`,
    /// and "specifying both ... will cause an error" (API reference,
    /// UpdateOrganizationConfiguration); a feature left out of the request keeps its value.
    ///
    /// # Errors
    /// A failed `DescribeOrganizationConfiguration` or `UpdateOrganizationConfiguration`
    /// call; an answer without `autoEnableOrganizationMembers` ([`ErrorKind::Other`],
    /// nothing sent: the request needs it or the deprecated `autoEnable`, and the
    /// controller owns neither).
    ///
    /// # Guarantees
    /// Idempotent (absolute values): keeps the SDK's retries.
    pub async fn update_organization_configuration(
        &self,
        detector_id: &str,
        changes: &[AutoEnableChange<'_>],
    ) -> Result<(), AwsError> {
        let current = self.organization_configuration(detector_id).await?;
        let features = organization_features_with(&current.features, changes);
        let request = self
            .guardduty
            .update_organization_configuration()
            .detector_id(detector_id)
            .set_features(Some(features));
        // The request takes `autoEnableOrganizationMembers` or the deprecated `autoEnable`
        // ("but not both"); the controller does not own either, so it sends the one it read.
        let Some(members) = current.members else {
            return Err(AwsError::new(
                ErrorKind::Other,
                "DescribeOrganizationConfiguration",
                None,
                "the answer has no autoEnableOrganizationMembers, which \
                 UpdateOrganizationConfiguration must be sent as read: nothing was sent",
            ));
        };
        let request = request.auto_enable_organization_members(members);
        request
            .send()
            .await
            .map_err(|e| classify("UpdateOrganizationConfiguration", e))?;
        Ok(())
    }

    /// `DescribeOrganizationConfiguration`, every page (at most [`MAX_ORG_CONFIG_PAGES`]).
    async fn organization_configuration(&self, detector_id: &str) -> Result<OrgConfig, AwsError> {
        const OP: &str = "DescribeOrganizationConfiguration";
        let mut config = OrgConfig::default();
        let mut token: Option<String> = None;
        for page_number in 0..MAX_ORG_CONFIG_PAGES {
            let page = self
                .guardduty
                .describe_organization_configuration()
                .detector_id(detector_id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            if page_number == 0 {
                config.members = page.auto_enable_organization_members().cloned();
            }
            for f in page.features() {
                let Some(name) = f.name() else { continue };
                let additional = f
                    .additional_configuration()
                    .iter()
                    .filter_map(|a| {
                        Some((
                            a.name()?.as_str().to_owned(),
                            a.auto_enable().map_or("NONE", OrgFeatureStatus::as_str).to_owned(),
                        ))
                    })
                    .collect::<BTreeMap<_, _>>();
                if additional.len() > MAX_ORG_FEATURES {
                    return Err(too_many_in(OP, MAX_ORG_FEATURES, "additional configurations in one feature"));
                }
                config.features.push(OrgFeatureConfig {
                    name: name.as_str().to_owned(),
                    auto_enable: f.auto_enable().map_or("NONE", OrgFeatureStatus::as_str).to_owned(),
                    additional,
                });
                if config.features.len() > MAX_ORG_FEATURES {
                    return Err(too_many_in(OP, MAX_ORG_FEATURES, "features"));
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(config),
            }
        }
        Err(too_many_in(OP, MAX_ORG_CONFIG_PAGES, "pages"))
    }
}

impl MemberRoute {
    /// The member's detector features, read by the administrator (`GetMemberDetectors` on
    /// the administrator's detector, for this one account).
    ///
    /// # Errors
    /// A failed `ListDetectors` (the administrator's) or `GetMemberDetectors` call; the
    /// member in `unprocessedAccounts` (with GuardDuty's words) or missing from the answer.
    pub(crate) async fn member_features(
        &self,
    ) -> Result<BTreeMap<String, ObservedFeature>, AwsError> {
        const OP: &str = "GetMemberDetectors";
        let admin = &self.administrator;
        let detector = admin.administrator_detector().await?;
        let out = admin
            .guardduty
            .get_member_detectors()
            .detector_id(&detector)
            .account_ids(&self.account)
            .send()
            .await
            .map_err(|e| self.forget_stale_detector(classify(OP, e)))?;
        if let Some(u) = self.unprocessed(out.unprocessed_accounts()) {
            return Err(unprocessed(OP, &self.account, u));
        }
        let Some(config) = out
            .member_data_source_configurations()
            .iter()
            .find(|c| c.account_id() == Some(self.account.as_str()))
        else {
            return Err(AwsError::new(
                ErrorKind::NotFound,
                OP,
                None,
                format!(
                    "the answer has no detector configuration for member {}",
                    self.account
                ),
            ));
        };
        let mut features = BTreeMap::new();
        for f in config.features() {
            let Some(name) = f.name() else { continue };
            let additional = f
                .additional_configuration()
                .iter()
                .filter_map(|a| {
                    Some((
                        a.name()?.as_str().to_owned(),
                        a.status().map_or(FeatureStatus::Disabled, |s| {
                            FeatureStatus::from_aws(s.as_str())
                        }),
                    ))
                })
                .collect();
            features.insert(
                name.as_str().to_owned(),
                ObservedFeature {
                    status: f.status().map_or(FeatureStatus::Disabled, |s| {
                        FeatureStatus::from_aws(s.as_str())
                    }),
                    additional,
                },
            );
        }
        Ok(features)
    }

    /// Applies detector changes to the member through the administrator: reads its
    /// features (`GetMemberDetectors`), then one `UpdateMemberDetectors` for this account
    /// with `RUNTIME_MONITORING` and every additional configuration it has, changing only
    /// those in `changes`; `EKS_RUNTIME_MONITORING` is never sent with it.
    ///
    /// # Errors
    /// As [`MemberRoute::member_features`], a failed `UpdateMemberDetectors` call, or the
    /// member in its `unprocessedAccounts` (with GuardDuty's `result` text).
    pub(crate) async fn update_member_detector(
        &self,
        changes: &[FeatureChange<'_>],
    ) -> Result<(), AwsError> {
        const OP: &str = "UpdateMemberDetectors";
        let current = self.member_features().await?;
        let (status, additional) =
            runtime_monitoring_with(current.get(RUNTIME_MONITORING), changes);
        let feature = MemberFeaturesConfiguration::builder()
            .name(OrgFeature::RuntimeMonitoring)
            .status(wire_status(&status))
            .set_additional_configuration(Some(
                additional
                    .iter()
                    .map(|(name, status)| {
                        MemberAdditionalConfiguration::builder()
                            .name(OrgFeatureAdditionalConfiguration::from(name.as_str()))
                            .status(wire_status(status))
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let admin = &self.administrator;
        let detector = admin.administrator_detector().await?;
        let out = admin
            .guardduty
            .update_member_detectors()
            .detector_id(&detector)
            .account_ids(&self.account)
            .features(feature)
            .send()
            .await
            .map_err(|e| self.forget_stale_detector(classify(OP, e)))?;
        if let Some(u) = self.unprocessed(out.unprocessed_accounts()) {
            return Err(unprocessed(OP, &self.account, u));
        }
        Ok(())
    }

    /// This member's entry in an answer's `unprocessedAccounts`.
    fn unprocessed<'a>(&self, entries: &'a [UnprocessedAccount]) -> Option<&'a UnprocessedAccount> {
        entries
            .iter()
            .find(|u| u.account_id() == Some(self.account.as_str()))
    }

    /// After a failed administrator call that may mean its detector id is stale (not
    /// found, or GuardDuty's 400 for an id the account does not own), forgets the id so
    /// the next call lists the detectors again.
    fn forget_stale_detector(&self, e: AwsError) -> AwsError {
        if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Other) {
            self.administrator.tasks.set_detector_id(None);
        }
        e
    }
}

/// The features of an `UpdateOrganizationConfiguration` request: every feature read
/// (but `EKS_RUNTIME_MONITORING`) with its additional configurations, `changes` applied
/// to `RUNTIME_MONITORING` (added, with `NONE`, when GuardDuty did not list it).
fn organization_features_with(
    read: &[OrgFeatureConfig],
    changes: &[AutoEnableChange<'_>],
) -> Vec<OrganizationFeatureConfiguration> {
    let mut features: Vec<OrgFeatureConfig> = read
        .iter()
        .filter(|f| f.name != EKS_RUNTIME_MONITORING)
        .cloned()
        .collect();
    if !features.iter().any(|f| f.name == RUNTIME_MONITORING) {
        features.push(OrgFeatureConfig {
            name: RUNTIME_MONITORING.to_owned(),
            auto_enable: AutoEnable::None.as_aws().to_owned(),
            additional: BTreeMap::new(),
        });
    }
    for f in features.iter_mut().filter(|f| f.name == RUNTIME_MONITORING) {
        for change in changes {
            let value = change.auto_enable.as_aws().to_owned();
            if change.name == RUNTIME_MONITORING {
                f.auto_enable = value;
            } else {
                f.additional.insert(change.name.to_owned(), value);
            }
        }
    }
    features
        .into_iter()
        .map(|f| {
            OrganizationFeatureConfiguration::builder()
                .name(OrgFeature::from(f.name.as_str()))
                .auto_enable(OrgFeatureStatus::from(f.auto_enable.as_str()))
                .set_additional_configuration(Some(
                    f.additional
                        .iter()
                        .map(|(name, auto_enable)| {
                            OrganizationAdditionalConfiguration::builder()
                                .name(OrgFeatureAdditionalConfiguration::from(name.as_str()))
                                .auto_enable(OrgFeatureStatus::from(auto_enable.as_str()))
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
        .collect()
}

/// A member GuardDuty did not process: not found when its words say the account is not
/// (or no longer) an associated member, otherwise other; the message is GuardDuty's.
fn unprocessed(operation: &'static str, account: &str, u: &UnprocessedAccount) -> AwsError {
    let result = bounded(u.result().unwrap_or("no reason given"), MAX_TEXT_CHARS);
    let lower = result.to_ascii_lowercase();
    let kind = if lower.contains("not an associated member")
        || lower.contains("not found")
        || lower.contains("does not exist")
    {
        ErrorKind::NotFound
    } else {
        ErrorKind::Other
    };
    AwsError::new(
        kind,
        operation,
        None,
        format!("member {account} unprocessed: {result}"),
    )
}

fn too_many(message: String) -> AwsError {
    AwsError::new(ErrorKind::Other, "ListMembers", None, message)
}

fn too_many_in(operation: &'static str, limit: usize, what: &str) -> AwsError {
    AwsError::new(
        ErrorKind::Other,
        operation,
        None,
        format!("the answer has more than {limit} {what}: nothing is used"),
    )
}

/// A 12-digit AWS account id.
fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
