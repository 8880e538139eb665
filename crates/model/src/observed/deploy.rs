//! How a service is redeployed: its deployment controller, and for `CODE_DEPLOY` services
//! the CodeDeploy deployment group that names it and that group's deployments.

use super::status::CodeDeployStatus;

/// Most CodeDeploy deployments kept per service: the active ones first, then the newest
/// of the last hour (what `maxPerHour` and `stopOnFailure` need).
pub const MAX_CODEDEPLOY_DEPLOYMENTS: usize = 25;

/// A CodeDeploy deployment group: the application and the group's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeploymentGroupRef {
    /// CodeDeploy application (compute platform `ECS`).
    pub application: String,
    /// Deployment group name.
    pub name: String,
}

impl std::fmt::Display for DeploymentGroupRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.application, self.name)
    }
}

/// What CodeDeploy says about a `CODE_DEPLOY` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDeploy {
    /// A deployment group names the service (`ecsServices`).
    Group {
        /// The group.
        group: DeploymentGroupRef,
        /// Its deployments that are active, and those created in the last hour; newest
        /// first, at most [`MAX_CODEDEPLOY_DEPLOYMENTS`].
        deployments: Vec<CodeDeployDeployment>,
    },
    /// No deployment group of an `ECS` application names the service: nobody can
    /// redeploy it through CodeDeploy.
    NoGroup,
    /// CodeDeploy could not be read (access denied, throttled): the text says why.
    Unknown(String),
}

impl CodeDeploy {
    /// The group's deployments (none unless [`CodeDeploy::Group`]).
    pub fn deployments(&self) -> &[CodeDeployDeployment] {
        match self {
            CodeDeploy::Group { deployments, .. } => deployments,
            _ => &[],
        }
    }

    /// A deployment that has not finished.
    pub fn active(&self) -> Option<&CodeDeployDeployment> {
        self.deployments().iter().find(|d| d.status.is_active())
    }

    /// The newest deployment.
    pub fn newest(&self) -> Option<&CodeDeployDeployment> {
        self.deployments().iter().max_by_key(|d| d.created_at_ms)
    }
}

/// One CodeDeploy deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDeployDeployment {
    /// Deployment id (`d-XXXXXXXXX`).
    pub id: String,
    /// Its status.
    pub status: CodeDeployStatus,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// CodeDeploy's words when it failed or stopped (`errorInformation.message`), bounded.
    pub error: Option<String>,
}

/// The container and port of a service's load balancer: what a CodeDeploy AppSpec for
/// an ECS service must name (`LoadBalancerInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoadBalancerTarget {
    /// `containerName`.
    pub container_name: String,
    /// `containerPort`.
    pub container_port: i32,
}
