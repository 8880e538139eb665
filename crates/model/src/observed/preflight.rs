//! Whether a service can get the GuardDuty agent at all: the prerequisites GuardDuty
//! lists for ECS on Fargate (DESIGN §1), checked before the controller redeploys it.

use std::fmt;

/// The outcome of one service's preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Every prerequisite holds: a redeploy brings the agent.
    Passed,
    /// At least one prerequisite fails: a redeploy cannot bring a running agent.
    Failed(Vec<PreflightFinding>),
    /// A check could not be made (for example `iam:SimulatePrincipalPolicy` was denied):
    /// the controller does not know, so it does not redeploy; the text says why.
    Unknown(String),
}

impl Preflight {
    /// The findings, if any prerequisite fails.
    pub fn findings(&self) -> &[PreflightFinding] {
        match self {
            Preflight::Failed(f) => f,
            _ => &[],
        }
    }
}

/// One failed prerequisite, with AWS's facts in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PreflightFinding {
    /// What fails.
    pub code: PreflightCode,
    /// The facts, for people: `platform version 1.3.0`, the role ARN, the denied actions.
    pub detail: String,
}

/// The prerequisites, each with a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreflightCode {
    /// Linux Fargate platform version below 1.4.0 (and not `LATEST`).
    PlatformVersion,
    /// The task definition runs Windows (`runtimePlatform.operatingSystemFamily`).
    Windows,
    /// The task definition has no `executionRoleArn`: nothing can pull the agent image.
    NoExecutionRole,
    /// The execution role may not pull the agent image (`ecr:GetAuthorizationToken`,
    /// `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer` on the region's agent repository).
    ExecutionRoleCannotPull,
}

impl PreflightCode {
    /// Every code, in output order.
    pub const ALL: [PreflightCode; 4] = [
        PreflightCode::PlatformVersion,
        PreflightCode::Windows,
        PreflightCode::NoExecutionRole,
        PreflightCode::ExecutionRoleCannotPull,
    ];

    /// A stable snake_case identifier (JSON `code`, metric label).
    pub fn code(self) -> &'static str {
        match self {
            PreflightCode::PlatformVersion => "platform_version",
            PreflightCode::Windows => "windows",
            PreflightCode::NoExecutionRole => "no_execution_role",
            PreflightCode::ExecutionRoleCannotPull => "execution_role_cannot_pull",
        }
    }
}

impl fmt::Display for PreflightCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PreflightCode::PlatformVersion => {
                "the Fargate platform version is below 1.4.0, which GuardDuty's agent needs"
            }
            PreflightCode::Windows => "GuardDuty's agent does not run on Windows tasks",
            PreflightCode::NoExecutionRole => {
                "the task definition has no execution role to pull the agent image"
            }
            PreflightCode::ExecutionRoleCannotPull => {
                "the execution role may not pull the agent image from ECR"
            }
        })
    }
}

impl fmt::Display for PreflightFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.detail)
    }
}
