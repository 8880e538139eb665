//! The states AWS reports, as enums. The adapter parses each once, where the answer
//! enters the program; everything after it matches on variants. A value AWS adds later
//! parses to `Other` with its text, so it is shown as AWS said it and matches nothing.

use strum::{AsRefStr, Display, EnumIter, IntoEnumIterator};

macro_rules! from_aws_text {
    ($($name:ident),*) => {$(
        impl $name {
            /// Parses the text AWS sent; unknown text becomes `Other`.
            pub fn from_aws(text: &str) -> Self {
                Self::iter()
                    .find(|known| !matches!(known, Self::Other(_)) && known.as_ref() == text)
                    .unwrap_or_else(|| Self::Other(text.to_owned()))
            }

            /// The text AWS sent.
            pub fn as_str(&self) -> &str {
                match self {
                    Self::Other(text) => text,
                    known => known.as_ref(),
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::from_aws(text)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string"})
            }
        }
    )*};
}

/// An ECS cluster's `status`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    /// `ACTIVE`: the only status the controller writes to.
    #[default]
    Active,
    /// `PROVISIONING`.
    Provisioning,
    /// `DEPROVISIONING`.
    Deprovisioning,
    /// `FAILED`.
    Failed,
    /// `INACTIVE`: deleted.
    Inactive,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// An ECS service's `status`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    /// `ACTIVE`.
    #[default]
    Active,
    /// `DRAINING`: being deleted.
    Draining,
    /// `INACTIVE`: deleted.
    Inactive,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// An ECS deployment's `status`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// `PRIMARY`: the most recent deployment.
    #[default]
    Primary,
    /// `ACTIVE`: an older deployment still running tasks.
    Active,
    /// `INACTIVE`: replaced.
    Inactive,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// An ECS deployment's `rolloutState` (services with the deployment circuit breaker).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutState {
    /// `IN_PROGRESS`.
    InProgress,
    /// `COMPLETED`: steady state reached.
    Completed,
    /// `FAILED`: the circuit breaker stopped it.
    Failed,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// GuardDuty's coverage status of a resource (`ListCoverage` `coverageStatus`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum CoverageStatus {
    /// `HEALTHY`.
    Healthy,
    /// `UNHEALTHY`.
    #[default]
    Unhealthy,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// A detector feature's or additional configuration's `status`.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum FeatureStatus {
    /// `ENABLED`.
    Enabled,
    /// `DISABLED`: also what an unlisted feature means.
    #[default]
    Disabled,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// How a service takes a new deployment: ECS `deploymentController.type` (`ECS` when ECS
/// does not say).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentController {
    /// `ECS`: `UpdateService(forceNewDeployment)` starts a deployment (rolling, or ECS's
    /// own blue/green, linear and canary strategies).
    #[default]
    Ecs,
    /// `CODE_DEPLOY`: a new deployment must be a CodeDeploy deployment; ECS refuses
    /// `forceNewDeployment`.
    CodeDeploy,
    /// `EXTERNAL`: a third-party deployer owns the service's task sets.
    External,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// The strategy of an `ECS`-controlled service's deployments
/// (`deploymentConfiguration.strategy`; `ROLLING` when ECS does not say).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStrategy {
    /// `ROLLING`: new tasks replace old ones batch by batch.
    #[default]
    Rolling,
    /// `BLUE_GREEN`: a full new (green) set of tasks, traffic shifted at once, the old
    /// (blue) tasks kept for the bake time.
    BlueGreen,
    /// `LINEAR`: traffic shifted in equal steps, then the bake time.
    Linear,
    /// `CANARY`: a share of traffic first, then the rest, then the bake time.
    Canary,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

/// A CodeDeploy deployment's `status`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Display, AsRefStr)]
pub enum CodeDeployStatus {
    /// `Created`.
    Created,
    /// `Queued`.
    Queued,
    /// `InProgress`.
    InProgress,
    /// `Baking`: traffic shifted, the original tasks kept until the wait ends.
    Baking,
    /// `Ready`: waiting for traffic to be rerouted.
    Ready,
    /// `Succeeded`.
    Succeeded,
    /// `Failed`.
    Failed,
    /// `Stopped`: stopped by a person or an alarm.
    Stopped,
    /// Anything else, as AWS sent it.
    #[strum(to_string = "{0}")]
    Other(String),
}

impl CodeDeployStatus {
    /// Not finished: the deployment group takes no other deployment meanwhile.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            CodeDeployStatus::Created
                | CodeDeployStatus::Queued
                | CodeDeployStatus::InProgress
                | CodeDeployStatus::Baking
                | CodeDeployStatus::Ready
        )
    }

    /// Ended without replacing the tasks: `Failed` or `Stopped`.
    pub fn is_failure(&self) -> bool {
        matches!(self, CodeDeployStatus::Failed | CodeDeployStatus::Stopped)
    }
}

from_aws_text!(
    ClusterStatus,
    ServiceStatus,
    DeploymentStatus,
    RolloutState,
    CoverageStatus,
    FeatureStatus,
    DeploymentController,
    DeploymentStrategy,
    CodeDeployStatus
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_text_round_trips_and_unknown_text_is_kept() {
        assert_eq!(
            RolloutState::from_aws("IN_PROGRESS"),
            RolloutState::InProgress
        );
        assert_eq!(RolloutState::InProgress.to_string(), "IN_PROGRESS");
        assert_eq!(RolloutState::InProgress.as_str(), "IN_PROGRESS");
        assert_eq!(
            DeploymentStatus::from_aws("PRIMARY"),
            DeploymentStatus::Primary
        );
        assert_eq!(FeatureStatus::from_aws("ENABLED"), FeatureStatus::Enabled);
        assert_eq!(CoverageStatus::from_aws("HEALTHY"), CoverageStatus::Healthy);
        let later = ClusterStatus::from_aws("SUSPENDED");
        assert_eq!(later, ClusterStatus::Other("SUSPENDED".into()));
        assert_eq!(later.to_string(), "SUSPENDED");
        assert_eq!(later.as_str(), "SUSPENDED");
        assert_eq!(
            FeatureStatus::from_aws("enabled"),
            FeatureStatus::Other("enabled".into()),
            "case-sensitive, as AWS is"
        );
        assert_eq!(
            DeploymentController::from_aws("CODE_DEPLOY"),
            DeploymentController::CodeDeploy
        );
        assert_eq!(
            DeploymentStrategy::from_aws("BLUE_GREEN"),
            DeploymentStrategy::BlueGreen
        );
        assert_eq!(
            CodeDeployStatus::from_aws("InProgress"),
            CodeDeployStatus::InProgress
        );
        assert_eq!(CodeDeployStatus::Succeeded.as_str(), "Succeeded");
    }
}
