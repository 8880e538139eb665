//! The AWS adapter: the only crate that names aws-sdk-*. It observes ECS clusters, their
//! tasks and services, and the GuardDuty detector and its coverage; writes tags and
//! detector features, forces service redeployments, and classifies SDK errors once.
#![deny(missing_docs)]

mod client;
mod error;
mod lead_stub;
mod metrics;
mod object;
mod observe;
mod preflight;
mod text;
mod workload;
mod write;

pub use client::{
    AwsContext, CallSettings, TargetClient, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, IAM_REGION,
    MAX_ATTEMPTS, MAX_BACKOFF, OPERATION_TIMEOUT, SESSION_NAME,
};
pub use error::{AwsError, ErrorKind};
pub use metrics::AwsMetrics;
pub use object::{FetchError, Fetched, ObjectClient, ObjectLocation, MAX_OBJECT_BYTES};
pub use observe::{ClusterScope, DESCRIBE_CLUSTERS_BATCH, LIST_CLUSTERS_PAGE};
pub use preflight::{
    agent_repository_arn, AGENT_PULL_ACTIONS, AGENT_REPOSITORY, PREFLIGHT_TTL,
    TASK_DEFINITION_CACHE,
};
pub use workload::{
    Want, DESCRIBE_SERVICES_BATCH, DESCRIBE_TASKS_BATCH, LIST_COVERAGE_PAGE, LIST_TASKS_PAGE,
    MAX_FARGATE_ISSUES, MAX_REASON_CHARS,
};
pub use write::{BatchOutcome, FeatureChange, TAG_BATCH};
