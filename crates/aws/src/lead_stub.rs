//! TEMPORARY (lead, issue 14): signatures the engine builds against until the adapter
//! branch lands; removed at merge.
#![allow(missing_docs, clippy::unused_async)]

use gec_model::observed::{CodeDeployDeployment, DeploymentGroupRef};
use gec_model::plan::CodeDeployRedeploy;

use crate::{AwsError, ErrorKind, TargetClient};

impl TargetClient {
    pub async fn create_codedeploy_deployment(
        &self,
        _redeploy: &CodeDeployRedeploy,
    ) -> Result<String, AwsError> {
        Err(AwsError::new(
            ErrorKind::Other,
            "CreateDeployment",
            None,
            "stub",
        ))
    }

    pub async fn active_codedeploy_deployments(
        &self,
        _group: &DeploymentGroupRef,
    ) -> Result<Vec<CodeDeployDeployment>, AwsError> {
        Ok(Vec::new())
    }
}
