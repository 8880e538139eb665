//! TEMPORARY (lead, issue 15): signatures the engine builds against until the adapter
//! branch lands; removed at merge.
#![allow(missing_docs, clippy::unused_async)]

use gec_model::desired::AutoEnable;
use gec_model::observed::OrganizationMember;

use crate::{AwsError, ErrorKind, TargetClient};

/// One auto-enable change of the organization configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoEnableChange<'a> {
    pub name: &'a str,
    pub auto_enable: AutoEnable,
}

impl TargetClient {
    pub async fn list_members(&self) -> Result<Vec<OrganizationMember>, AwsError> {
        Err(AwsError::new(ErrorKind::Other, "ListMembers", None, "stub"))
    }

    pub async fn update_organization_configuration(
        &self,
        _detector_id: &str,
        _changes: &[AutoEnableChange<'_>],
    ) -> Result<(), AwsError> {
        Err(AwsError::new(
            ErrorKind::Other,
            "UpdateOrganizationConfiguration",
            None,
            "stub",
        ))
    }
}
