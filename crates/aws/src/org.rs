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
    AutoEnableMembers, MemberAdditionalConfiguration, MemberFeaturesConfiguration, OrgFeature,
    OrgFeatureAdditionalConfiguration, OrgFeatureStatus, OrganizationAdditionalConfiguration,
    OrganizationFeatureConfiguration, UnprocessedAccount,
};
use gec_model::desired::AutoEnable;
use gec_model::observed::{
    ObservedFeature, ObservedOrganization, OrganizationMember, EKS_RUNTIME_MONITORING,
    RUNTIME_MONITORING,
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
                    relationship: bounded(
                        m.relationship_status().unwrap_or_default(),
                        MAX_TEXT_CHARS,
                    ),
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
                            a.auto_enable()
                                .map_or("NONE", OrgFeatureStatus::as_str)
                                .to_owned(),
                        ))
                    })
                    .collect::<BTreeMap<_, _>>();
                if additional.len() > MAX_ORG_FEATURES {
                    return Err(too_many_in(
                        OP,
                        MAX_ORG_FEATURES,
                        "additional configurations in one feature",
                    ));
                }
                config.features.push(OrgFeatureConfig {
                    name: name.as_str().to_owned(),
                    auto_enable: f
                        .auto_enable()
                        .map_or("NONE", OrgFeatureStatus::as_str)
                        .to_owned(),
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
        Ok(crate::observe::observed_features(
            config.features().iter().map(|f| {
                (
                    f.name().map(|n| n.as_str()),
                    f.status().map(|s| s.as_str()),
                    f.additional_configuration()
                        .iter()
                        .map(|a| (a.name().map(|n| n.as_str()), a.status().map(|s| s.as_str())))
                        .collect(),
                )
            }),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::mocked;
    use aws_sdk_guardduty::operation::describe_organization_configuration::DescribeOrganizationConfigurationOutput;
    use aws_sdk_guardduty::operation::get_member_detectors::GetMemberDetectorsOutput;
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::operation::list_members::ListMembersOutput;
    use aws_sdk_guardduty::operation::update_member_detectors::UpdateMemberDetectorsOutput;
    use aws_sdk_guardduty::operation::update_organization_configuration::UpdateOrganizationConfigurationOutput;
    use aws_sdk_guardduty::types::{
        Member, MemberAdditionalConfigurationResult, MemberDataSourceConfiguration,
        MemberFeaturesConfigurationResult, OrganizationAdditionalConfigurationResult,
        OrganizationFeatureConfigurationResult,
    };
    use aws_smithy_mocks::{mock, Rule};
    use gec_model::observed::FeatureStatus;
    use gec_model::observed::ECS_FARGATE_AGENT_MANAGEMENT;
    use std::sync::Mutex;

    const MEMBER: &str = "222222222222";

    fn list_detectors(id: &'static str) -> Rule {
        mock!(aws_sdk_guardduty::Client::list_detectors)
            .then_output(move || ListDetectorsOutput::builder().detector_ids(id).build())
    }

    /// Rules that must never be answered in a member account: its own detector reads and
    /// writes go through the administrator.
    fn forbidden_in_member() -> [Rule; 2] {
        [
            mock!(aws_sdk_guardduty::Client::get_detector).then_error(|| {
                aws_sdk_guardduty::operation::get_detector::GetDetectorError::unhandled("no")
            }),
            mock!(aws_sdk_guardduty::Client::update_detector).then_error(|| {
                aws_sdk_guardduty::operation::update_detector::UpdateDetectorError::unhandled("no")
            }),
        ]
    }

    /// The member's features as the administrator reads them: Runtime Monitoring enabled,
    /// agent management for Fargate disabled and for EKS enabled, and the old
    /// EKS_RUNTIME_MONITORING feature.
    fn member_features() -> MemberDataSourceConfiguration {
        let additional = |name: &str, status: &str| {
            MemberAdditionalConfigurationResult::builder()
                .name(OrgFeatureAdditionalConfiguration::from(name))
                .status(aws_sdk_guardduty::types::FeatureStatus::from(status))
                .build()
        };
        MemberDataSourceConfiguration::builder()
            .account_id(MEMBER)
            .features(
                MemberFeaturesConfigurationResult::builder()
                    .name(OrgFeature::RuntimeMonitoring)
                    .status(aws_sdk_guardduty::types::FeatureStatus::Enabled)
                    .additional_configuration(additional(ECS_FARGATE_AGENT_MANAGEMENT, "DISABLED"))
                    .additional_configuration(additional("EKS_ADDON_MANAGEMENT", "ENABLED"))
                    .build(),
            )
            .features(
                MemberFeaturesConfigurationResult::builder()
                    .name(OrgFeature::EksRuntimeMonitoring)
                    .status(aws_sdk_guardduty::types::FeatureStatus::Enabled)
                    .build(),
            )
            .build()
    }

    /// A member's client (with `member_rules`) routed through an administrator's client
    /// (with `admin_rules`).
    fn member(member_rules: &[&Rule], admin_rules: &[&Rule]) -> TargetClient {
        let mut client = mocked("us-east-1", member_rules);
        client.org = OrgClient::Member(Arc::new(MemberRoute {
            account: MEMBER.to_owned(),
            administrator: mocked("us-east-1", admin_rules),
        }));
        client
    }

    fn unprocessed_account(result: &str) -> UnprocessedAccount {
        UnprocessedAccount::builder()
            .account_id(MEMBER)
            .result(result)
            .build()
    }

    #[tokio::test]
    async fn a_members_detector_is_its_own_id_with_the_features_its_administrator_reads() {
        let [get, update] = forbidden_in_member();
        let own = list_detectors("member-detector");
        let admin_list = list_detectors("admin-detector");
        // (detector id, account ids) of each request.
        type Asked = Vec<(String, Vec<String>)>;
        let asked: Arc<Mutex<Asked>> = Arc::default();
        let seen = Arc::clone(&asked);
        let get_members = mock!(aws_sdk_guardduty::Client::get_member_detectors)
            .then_compute_output(move |r| {
                seen.lock().expect("lock").push((
                    r.detector_id().unwrap_or_default().to_owned(),
                    r.account_ids().to_vec(),
                ));
                GetMemberDetectorsOutput::builder()
                    .member_data_source_configurations(member_features())
                    .build()
            });
        let client = member(&[&own, &get, &update], &[&admin_list, &get_members]);
        let detector = client
            .observe_detector()
            .await
            .expect("observed")
            .expect("a detector");
        assert_eq!(
            detector.id, "member-detector",
            "the member's own id, for ListCoverage"
        );
        let rm = &detector.features[RUNTIME_MONITORING];
        assert_eq!(rm.status, FeatureStatus::Enabled);
        assert_eq!(
            rm.additional[ECS_FARGATE_AGENT_MANAGEMENT],
            FeatureStatus::Disabled
        );
        assert_eq!(
            asked.lock().expect("lock").clone(),
            vec![("admin-detector".to_owned(), vec![MEMBER.to_owned()])],
            "the administrator's detector, for this one member"
        );
        // A second pass lists neither detector again.
        client.observe_detector().await.expect("observed");
        assert_eq!((own.num_calls(), admin_list.num_calls()), (1, 1));
        assert_eq!(get.num_calls(), 0, "no GetDetector in the member account");
    }

    #[tokio::test]
    async fn a_members_features_are_written_through_the_administrator_never_update_detector() {
        let [get, update] = forbidden_in_member();
        let own = list_detectors("member-detector");
        let admin_list = list_detectors("admin-detector");
        let get_members =
            mock!(aws_sdk_guardduty::Client::get_member_detectors).then_output(|| {
                GetMemberDetectorsOutput::builder()
                    .member_data_source_configurations(member_features())
                    .build()
            });
        type Sent = Vec<(String, Vec<String>, Vec<MemberFeaturesConfiguration>)>;
        let sent: Arc<Mutex<Sent>> = Arc::default();
        let seen = Arc::clone(&sent);
        let update_members = mock!(aws_sdk_guardduty::Client::update_member_detectors)
            .then_compute_output(move |r| {
                seen.lock().expect("lock").push((
                    r.detector_id().unwrap_or_default().to_owned(),
                    r.account_ids().to_vec(),
                    r.features().to_vec(),
                ));
                UpdateMemberDetectorsOutput::builder().build()
            });
        let client = member(
            &[&own, &get, &update],
            &[&admin_list, &get_members, &update_members],
        );
        client
            .update_detector(
                "member-detector",
                &[FeatureChange {
                    name: ECS_FARGATE_AGENT_MANAGEMENT,
                    status: &FeatureStatus::Enabled,
                }],
            )
            .await
            .expect("written");
        assert_eq!((get.num_calls(), update.num_calls()), (0, 0));
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1);
        let (detector, accounts, features) = &sent[0];
        assert_eq!(detector, "admin-detector");
        assert_eq!(accounts, &[MEMBER.to_owned()]);
        let additional = |name: &str, status: aws_sdk_guardduty::types::FeatureStatus| {
            MemberAdditionalConfiguration::builder()
                .name(OrgFeatureAdditionalConfiguration::from(name))
                .status(status)
                .build()
        };
        assert_eq!(
            features,
            &[MemberFeaturesConfiguration::builder()
                .name(OrgFeature::RuntimeMonitoring)
                .status(aws_sdk_guardduty::types::FeatureStatus::Enabled)
                .additional_configuration(additional(
                    ECS_FARGATE_AGENT_MANAGEMENT,
                    aws_sdk_guardduty::types::FeatureStatus::Enabled
                ))
                .additional_configuration(additional(
                    "EKS_ADDON_MANAGEMENT",
                    aws_sdk_guardduty::types::FeatureStatus::Enabled
                ))
                .build()],
            "Runtime Monitoring only (never EKS_RUNTIME_MONITORING with it), with the \
             additional configuration it does not own kept"
        );
    }

    #[tokio::test]
    async fn a_member_in_unprocessed_accounts_is_that_targets_error_in_guarddutys_words() {
        let own = list_detectors("member-detector");
        let admin_list = list_detectors("admin-detector");
        let not_member = mock!(aws_sdk_guardduty::Client::get_member_detectors).then_output(|| {
            GetMemberDetectorsOutput::builder()
                .unprocessed_accounts(unprocessed_account(
                    "The request is rejected because the given account ID is not an \
                         associated member of account the current account.",
                ))
                .build()
        });
        let client = member(&[&own], &[&admin_list, &not_member]);
        let err = client.observe_detector().await.expect_err("unprocessed");
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.operation, "GetMemberDetectors");
        assert!(err.message.contains(MEMBER), "{err}");
        assert!(err.message.contains("not an associated member"), "{err}");

        // The write: GetMemberDetectors answers, UpdateMemberDetectors does not process it.
        let [get, update] = forbidden_in_member();
        let get_members =
            mock!(aws_sdk_guardduty::Client::get_member_detectors).then_output(|| {
                GetMemberDetectorsOutput::builder()
                    .member_data_source_configurations(member_features())
                    .build()
            });
        let refused = mock!(aws_sdk_guardduty::Client::update_member_detectors).then_output(|| {
            UpdateMemberDetectorsOutput::builder()
                .unprocessed_accounts(unprocessed_account("The member account is suspended."))
                .build()
        });
        let client = member(
            &[&own, &get, &update],
            &[&admin_list, &get_members, &refused],
        );
        let err = client
            .update_detector(
                "member-detector",
                &[FeatureChange {
                    name: ECS_FARGATE_AGENT_MANAGEMENT,
                    status: &FeatureStatus::Enabled,
                }],
            )
            .await
            .expect_err("unprocessed");
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(err.operation, "UpdateMemberDetectors");
        assert!(
            err.message.contains("The member account is suspended."),
            "{err}"
        );
        assert_eq!(update.num_calls(), 0, "never UpdateDetector in the member");
        assert_eq!(refused.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_member_missing_from_the_answer_is_an_error() {
        let own = list_detectors("member-detector");
        let admin_list = list_detectors("admin-detector");
        let empty = mock!(aws_sdk_guardduty::Client::get_member_detectors)
            .then_output(|| GetMemberDetectorsOutput::builder().build());
        let client = member(&[&own], &[&admin_list, &empty]);
        let err = client.observe_detector().await.expect_err("missing");
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains(MEMBER), "{err}");
    }

    fn members_page(accounts: std::ops::Range<u64>, next: Option<&str>) -> ListMembersOutput {
        accounts
            .fold(ListMembersOutput::builder(), |b, a| {
                b.members(
                    Member::builder()
                        .account_id(format!("{a:012}"))
                        .relationship_status("Enabled")
                        .build(),
                )
            })
            .set_next_token(next.map(str::to_owned))
            .build()
    }

    #[tokio::test]
    async fn list_members_reads_every_page_of_associated_members() {
        let admin_list = list_detectors("admin-detector");
        type Asked = Vec<(Option<String>, Option<i32>, Option<String>)>;
        let asked: Arc<Mutex<Asked>> = Arc::default();
        let seen = Arc::clone(&asked);
        let list = mock!(aws_sdk_guardduty::Client::list_members).then_compute_output(move |r| {
            seen.lock().expect("lock").push((
                r.only_associated().map(str::to_owned),
                r.max_results(),
                r.next_token().map(str::to_owned),
            ));
            match r.next_token() {
                None => members_page(100..150, Some("page-2")),
                Some(_) => {
                    let mut last = members_page(150..152, None);
                    // Hostile entries: no account id, a short one, and a repeat.
                    last.members.get_or_insert_with(Vec::new).extend([
                        Member::builder().relationship_status("Enabled").build(),
                        Member::builder().account_id("12345").build(),
                        Member::builder()
                            .account_id(format!("{:012}", 100))
                            .relationship_status("Enabled")
                            .build(),
                    ]);
                    last
                }
            }
        });
        let admin = mocked("us-east-1", &[&admin_list, &list]);
        let members = admin.list_members().await.expect("listed");
        assert_eq!(
            members.len(),
            52,
            "50 + 2, the bad entries and the repeat left out"
        );
        assert_eq!(members[0].account, "000000000100");
        assert_eq!(members[0].relationship, "Enabled");
        assert!(members.iter().all(|m| is_account_id(&m.account)));
        assert_eq!(
            asked.lock().expect("lock").clone(),
            vec![
                (Some("true".to_owned()), Some(LIST_MEMBERS_PAGE), None),
                (
                    Some("true".to_owned()),
                    Some(LIST_MEMBERS_PAGE),
                    Some("page-2".to_owned())
                ),
            ]
        );
    }

    #[tokio::test]
    async fn list_members_is_bounded_in_members_and_pages() {
        let admin_list = list_detectors("admin-detector");
        let endless_full = mock!(aws_sdk_guardduty::Client::list_members)
            .then_output(|| members_page(0..50, Some("more")));
        let admin = mocked("us-east-1", &[&admin_list, &endless_full]);
        let err = admin.list_members().await.expect_err("too many members");
        assert_eq!(err.kind, ErrorKind::Other);
        assert!(err.message.contains("5000"), "{err}");
        assert_eq!(endless_full.num_calls(), MAX_MEMBERS / 50 + 1);

        let endless_empty = mock!(aws_sdk_guardduty::Client::list_members)
            .then_output(|| members_page(0..0, Some("more")));
        let admin = mocked("us-east-1", &[&admin_list, &endless_empty]);
        let err = admin.list_members().await.expect_err("too many pages");
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(endless_empty.num_calls(), MAX_LIST_MEMBERS_PAGES);
    }

    #[tokio::test]
    async fn list_members_without_a_detector_is_not_found() {
        let none = mock!(aws_sdk_guardduty::Client::list_detectors)
            .then_output(|| ListDetectorsOutput::builder().build());
        let admin = mocked("us-east-1", &[&none]);
        let err = admin.list_members().await.expect_err("no detector");
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    /// The organization configuration: S3 data events auto-enabled for new accounts,
    /// Runtime Monitoring `NONE` with Fargate agent management `NONE` and EKS add-on
    /// management `ALL`, the old EKS Runtime Monitoring `NEW`; members auto-enabled `NEW`.
    fn org_configuration(with_members: bool) -> DescribeOrganizationConfigurationOutput {
        let additional = |name: &str, auto: &str| {
            OrganizationAdditionalConfigurationResult::builder()
                .name(OrgFeatureAdditionalConfiguration::from(name))
                .auto_enable(OrgFeatureStatus::from(auto))
                .build()
        };
        let feature = |name: OrgFeature, auto: &str| {
            OrganizationFeatureConfigurationResult::builder()
                .name(name)
                .auto_enable(OrgFeatureStatus::from(auto))
        };
        DescribeOrganizationConfigurationOutput::builder()
            .features(feature(OrgFeature::S3DataEvents, "NEW").build())
            .features(
                feature(OrgFeature::RuntimeMonitoring, "NONE")
                    .additional_configuration(additional(ECS_FARGATE_AGENT_MANAGEMENT, "NONE"))
                    .additional_configuration(additional("EKS_ADDON_MANAGEMENT", "ALL"))
                    .build(),
            )
            .features(feature(OrgFeature::EksRuntimeMonitoring, "NEW").build())
            .set_auto_enable_organization_members(with_members.then_some(AutoEnableMembers::New))
            .build()
    }

    #[tokio::test]
    async fn organization_auto_enable_is_read_modify_write_and_keeps_what_it_does_not_own() {
        let describe = mock!(aws_sdk_guardduty::Client::describe_organization_configuration)
            .then_output(|| org_configuration(true));
        type Sent = Vec<(
            String,
            Vec<OrganizationFeatureConfiguration>,
            Option<AutoEnableMembers>,
        )>;
        let sent: Arc<Mutex<Sent>> = Arc::default();
        let seen = Arc::clone(&sent);
        let update = mock!(aws_sdk_guardduty::Client::update_organization_configuration)
            .then_compute_output(move |r| {
                #[allow(deprecated)] // the old field must not be sent with the new one
                let old = r.auto_enable();
                assert_eq!(old, None, "autoEnable is never sent");
                seen.lock().expect("lock").push((
                    r.detector_id().unwrap_or_default().to_owned(),
                    r.features().to_vec(),
                    r.auto_enable_organization_members().cloned(),
                ));
                UpdateOrganizationConfigurationOutput::builder().build()
            });
        let admin = mocked("us-east-1", &[&describe, &update]);
        admin
            .update_organization_configuration(
                "admin-detector",
                &[
                    AutoEnableChange {
                        name: RUNTIME_MONITORING,
                        auto_enable: AutoEnable::All,
                    },
                    AutoEnableChange {
                        name: ECS_FARGATE_AGENT_MANAGEMENT,
                        auto_enable: AutoEnable::New,
                    },
                ],
            )
            .await
            .expect("written");
        let sent = sent.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1);
        let (detector, features, members) = &sent[0];
        assert_eq!(detector, "admin-detector");
        assert_eq!(members, &Some(AutoEnableMembers::New), "as read");
        let additional = |name: &str, auto: &str| {
            OrganizationAdditionalConfiguration::builder()
                .name(OrgFeatureAdditionalConfiguration::from(name))
                .auto_enable(OrgFeatureStatus::from(auto))
                .build()
        };
        assert_eq!(
            features,
            &[
                OrganizationFeatureConfiguration::builder()
                    .name(OrgFeature::S3DataEvents)
                    .auto_enable(OrgFeatureStatus::New)
                    .set_additional_configuration(Some(vec![]))
                    .build(),
                OrganizationFeatureConfiguration::builder()
                    .name(OrgFeature::RuntimeMonitoring)
                    .auto_enable(OrgFeatureStatus::All)
                    .additional_configuration(additional(ECS_FARGATE_AGENT_MANAGEMENT, "NEW"))
                    .additional_configuration(additional("EKS_ADDON_MANAGEMENT", "ALL"))
                    .build(),
            ],
            "a feature and an additional configuration it does not own are sent back \
             unchanged; EKS_RUNTIME_MONITORING is not sent with RUNTIME_MONITORING"
        );
    }

    #[tokio::test]
    async fn organization_configuration_without_members_auto_enable_is_not_written() {
        let describe = mock!(aws_sdk_guardduty::Client::describe_organization_configuration)
            .then_output(|| org_configuration(false));
        let update = mock!(aws_sdk_guardduty::Client::update_organization_configuration)
            .then_output(|| UpdateOrganizationConfigurationOutput::builder().build());
        let admin = mocked("us-east-1", &[&describe, &update]);
        let err = admin
            .update_organization_configuration(
                "admin-detector",
                &[AutoEnableChange {
                    name: RUNTIME_MONITORING,
                    auto_enable: AutoEnable::All,
                }],
            )
            .await
            .expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Other);
        assert_eq!(update.num_calls(), 0, "nothing sent");
    }

    #[tokio::test]
    async fn an_administrator_observes_the_organizations_auto_enable_by_name() {
        let list = list_detectors("admin-detector");
        let get = mock!(aws_sdk_guardduty::Client::get_detector).then_output(|| {
            aws_sdk_guardduty::operation::get_detector::GetDetectorOutput::builder().build()
        });
        let describe = mock!(aws_sdk_guardduty::Client::describe_organization_configuration)
            .then_output(|| org_configuration(true));
        let clusters = mock!(aws_sdk_ecs::Client::describe_clusters).then_output(|| {
            aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput::builder().build()
        });
        let mut admin = mocked("us-east-1", &[&list, &get, &describe, &clusters]);
        admin.org = OrgClient::Administrator;
        let observed = admin
            .observe(&crate::ClusterScope::Named(vec![]))
            .await
            .expect("observed");
        let org = observed.organization.expect("read in an administrator");
        assert_eq!(org.auto_enable[RUNTIME_MONITORING], "NONE");
        assert_eq!(org.auto_enable[ECS_FARGATE_AGENT_MANAGEMENT], "NONE");
        assert_eq!(org.auto_enable["EKS_ADDON_MANAGEMENT"], "ALL");
        assert_eq!(org.auto_enable["S3_DATA_EVENTS"], "NEW");

        // Any other target reads no organization configuration.
        let own = mocked("us-east-1", &[&list, &get, &describe, &clusters]);
        let observed = own
            .observe(&crate::ClusterScope::Named(vec![]))
            .await
            .expect("observed");
        assert_eq!(observed.organization, None);
        assert_eq!(describe.num_calls(), 1);
    }
}
