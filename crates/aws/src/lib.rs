//! The AWS adapter: the only crate that names aws-sdk-*. It observes ECS clusters, their
//! tasks and services, and the GuardDuty detector and its coverage; writes tags and
//! detector features, forces service redeployments (ECS `UpdateService` or a CodeDeploy
//! deployment), and classifies SDK errors once. In an AWS Organization it reads and writes
//! a member's detector features through the GuardDuty delegated administrator, and the
//! administrator's member list and organization configuration (`org.rs`).
#![deny(missing_docs)]

mod client;
mod codedeploy;
mod error;
mod events;
pub mod fence;
mod lease;
mod metrics;
mod object;
mod observe;
mod org;
mod preflight;
mod text;
mod workload;
mod write;

pub use client::{
    AwsContext, CallSettings, EmptyEndpoint, TargetClient, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT,
    IAM_REGION, MAX_ATTEMPTS, MAX_BACKOFF, OPERATION_TIMEOUT, SESSION_NAME,
};
pub use codedeploy::{
    BATCH_GET_APPLICATIONS_BATCH, BATCH_GET_DEPLOYMENTS_BATCH, BATCH_GET_DEPLOYMENT_GROUPS_BATCH,
    DEPLOYMENT_GROUP_MISS_TTL, DEPLOYMENT_GROUP_TTL, MAX_CODEDEPLOY_APPLICATIONS,
    MAX_CODEDEPLOY_TEXT_CHARS, MAX_DEPLOYMENT_GROUPS, MAX_LISTED_DEPLOYMENTS, MAX_LIST_PAGES,
};
pub use error::{AwsError, ErrorKind};
pub use events::{EventBus, EventEntry, PutOutcome, EVENT_SOURCE, PUT_EVENTS_BATCH};
pub use fence::{Fence, NOT_LEADER, WRITE_OPERATIONS};
pub use lease::{
    LeaseError, LeaseRecord, LeaseTable, RawRvn, DEFAULT_LEASE_KEY, MAX_LEASE_TEXT, MAX_OLD_RVNS,
    MIN_TTL, TTL_LEASES,
};
pub use metrics::AwsMetrics;
pub use object::{FetchError, Fetched, ObjectClient, ObjectLocation, MAX_OBJECT_BYTES};
pub use observe::{ClusterScope, DESCRIBE_CLUSTERS_BATCH, LIST_CLUSTERS_PAGE};
pub use org::{
    AutoEnableChange, LIST_MEMBERS_PAGE, MAX_LIST_MEMBERS_PAGES, MAX_MEMBERS, MAX_ORG_CONFIG_PAGES,
};
pub use preflight::{
    agent_repository_arn, AGENT_PULL_ACTIONS, AGENT_REPOSITORY, PREFLIGHT_TTL,
    TASK_DEFINITION_CACHE,
};
pub use workload::{
    Want, DESCRIBE_SERVICES_BATCH, DESCRIBE_TASKS_BATCH, LIST_COVERAGE_PAGE, LIST_TASKS_PAGE,
    MAX_FARGATE_ISSUES, MAX_REASON_CHARS, MAX_SERVICE_DEPLOYMENTS,
};
pub use write::{
    codedeploy_appspec, BatchOutcome, FeatureChange, CODEDEPLOY_DESCRIPTION,
    MAX_CODEDEPLOY_DESCRIPTION_CHARS, TAG_BATCH,
};
