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

from_aws_text!(
    ClusterStatus,
    ServiceStatus,
    DeploymentStatus,
    RolloutState,
    CoverageStatus,
    FeatureStatus
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
    }
}
