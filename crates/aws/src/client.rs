//! SDK clients for one target: region, credentials (optionally by AssumeRole), retry and
//! timeout settings.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecs::config::retry::RetryPartition;
use gec_model::desired::{OrgRole, Target};

use crate::codedeploy::GroupCache;
use crate::org::{MemberRoute, OrgClient};
use crate::preflight::PreflightCache;
use crate::workload::TaskCache;
use crate::AwsMetrics;

/// Attempts per AWS call (1 try + 3 retries), with the SDK's standard jittered backoff.
pub const MAX_ATTEMPTS: u32 = 4;
/// Longest wait between SDK retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Time limit of one attempt (connect, send, read the response).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit of one operation, all attempts and backoff included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(40);
/// Time limit to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Session name of the controller's AssumeRole sessions (shows in CloudTrail).
pub const SESSION_NAME: &str = "guardduty-ecs-controller";
/// The region IAM requests are signed for: IAM is a global service whose endpoint in the
/// `aws` partition (`iam.amazonaws.com`) is in us-east-1.
pub const IAM_REGION: &str = "us-east-1";

/// Retry and timeout settings of every AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSettings {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Time limit of one attempt.
    pub attempt_timeout: Duration,
    /// Time limit of one call, all attempts and backoff included.
    pub operation_timeout: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            max_attempts: MAX_ATTEMPTS,
            attempt_timeout: ATTEMPT_TIMEOUT,
            operation_timeout: OPERATION_TIMEOUT,
        }
    }
}

/// The shared AWS configuration, loaded once from the standard environment and config chain.
#[derive(Debug, Clone)]
pub struct AwsContext {
    base: SdkConfig,
    metrics: Option<AwsMetrics>,
    calls: CallSettings,
    /// With a lease: refuses write requests while the replica may not write.
    fence: crate::Fence,
    /// One set of clients per target, kept across passes so that assumed-role
    /// credentials are reused until the SDK refreshes them (no AssumeRole per pass).
    /// Targets that leave the desired state are dropped by [`AwsContext::retain`].
    clients: Arc<Mutex<HashMap<Target, TargetClient>>>,
}

/// An endpoint URL setting that is present but empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} is set but empty: unset it to use AWS's endpoints, or set it to a URL")]
pub struct EmptyEndpoint {
    /// The setting: `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, with its profile key.
    pub setting: String,
}

/// The SDK service ids of the services the controller calls; their
/// `AWS_ENDPOINT_URL_<ID>` (spaces as `_`) and the profile's `services` sections are read
/// when their clients are made.
const SERVICE_IDS: &[&str] = &[
    "ECS",
    "GuardDuty",
    "Resource Groups Tagging API",
    "STS",
    "IAM",
    "CodeDeploy",
    "EventBridge",
    "S3",
    "DynamoDB",
    "SQS",
];

/// The first endpoint URL setting of `base` that is present but blank. An empty one makes
/// the SDK panic ("URL was unset", aws-smithy-types' endpoint builder) inside the first
/// request of every client.
fn empty_endpoint(base: &SdkConfig) -> Option<String> {
    let blank = |url: &str| url.trim().is_empty();
    if base.endpoint_url().is_some_and(blank) {
        return Some("AWS_ENDPOINT_URL (or endpoint_url in the AWS profile)".to_owned());
    }
    let config = base.service_config()?;
    SERVICE_IDS.iter().find_map(|id| {
        let key = aws_types::service_config::ServiceConfigKey::builder()
            .service_id(id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .ok()?;
        config.load_config(key).filter(|u| blank(u)).map(|_| {
            // The setting that gave it: the service's variable, the global one (aws-config
            // drops a blank global for the SdkConfig, but each client reads it again), or a
            // profile.
            let service = format!(
                "AWS_ENDPOINT_URL_{}",
                id.to_ascii_uppercase().replace(' ', "_")
            );
            let set_blank = |name: &str| std::env::var(name).is_ok_and(|v| blank(&v));
            if set_blank(&service) {
                service
            } else if set_blank("AWS_ENDPOINT_URL") {
                "AWS_ENDPOINT_URL".to_owned()
            } else {
                format!("{service} or AWS_ENDPOINT_URL (or endpoint_url in the AWS profile)")
            }
        })
    })
}

impl AwsContext {
    /// Loads credentials, region and endpoint (`AWS_ENDPOINT_URL`, ...) from the
    /// environment, with the controller's retry and timeout settings.
    ///
    /// # Errors
    /// An endpoint URL setting is present but empty (`AWS_ENDPOINT_URL=`,
    /// `AWS_ENDPOINT_URL_ECS=`, `endpoint_url =` in the profile): the SDK would panic on
    /// the first request, and falling back to AWS's endpoints is not what was meant.
    pub async fn from_env(calls: CallSettings) -> Result<Self, EmptyEndpoint> {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(calls.max_attempts.max(1))
                    .with_max_backoff(MAX_BACKOFF),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT.min(calls.attempt_timeout))
                    .operation_attempt_timeout(calls.attempt_timeout)
                    .operation_timeout(calls.operation_timeout)
                    .build(),
            )
            .load()
            .await;
        if let Some(setting) = empty_endpoint(&base) {
            return Err(EmptyEndpoint { setting });
        }
        Ok(AwsContext {
            base,
            metrics: None,
            calls,
            fence: crate::Fence::default(),
            clients: Arc::default(),
        })
    }

    pub(crate) fn base(&self) -> &SdkConfig {
        &self.base
    }

    pub(crate) fn metrics(&self) -> Option<&AwsMetrics> {
        self.metrics.as_ref()
    }

    /// The calls' retry and timeout settings.
    pub fn calls(&self) -> CallSettings {
        self.calls
    }

    /// Sends `app/<name>` in the user agent of every client made from now on (call it
    /// before the first [`AwsContext::target`]): with two replicas, each names itself, so
    /// AWS logs (and the sandbox's fault rules) can tell them apart.
    ///
    /// # Errors
    /// `name` has characters an app name cannot have (only ASCII letters, digits and
    /// ``!#$%&'*+-.^_`|~``).
    pub fn with_app_name(mut self, name: &str) -> Result<Self, aws_config::InvalidAppName> {
        let app = aws_config::AppName::new(name.to_owned())?;
        self.base = self.base.to_builder().app_name(app).build();
        Ok(self)
    }

    /// Every write request of the target clients made from now on is refused while
    /// `fence` is closed (call it before the first [`AwsContext::target`]; see
    /// [`crate::fence`]).
    pub fn with_fence(mut self, fence: crate::Fence) -> Self {
        self.fence = fence;
        self
    }

    /// Counts every request attempt of the clients made from now on (call it before the
    /// first [`AwsContext::target`]).
    pub fn with_metrics(mut self, metrics: AwsMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Clients for one target, made once and reused. With `roleArn` the credentials come
    /// from STS AssumeRole, cached and refreshed by the SDK before they expire.
    ///
    /// A member of an organization (`org: Some(OrgRole::Member {..})`) gets its own
    /// clients (its member role) and, attached, the clients of its administrator target
    /// (the same ones [`AwsContext::target`] gives for it): its detector's features are
    /// read and written through the administrator (see [`TargetClient::observe_detector`]
    /// and [`TargetClient::update_detector`]).
    pub async fn target(&self, target: &Target) -> TargetClient {
        if let Some(client) = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(target).cloned())
        {
            return client;
        }
        let mut client = self.new_target(target).await;
        client.org = match &target.org {
            None => OrgClient::Own,
            Some(OrgRole::Administrator) => OrgClient::Administrator,
            Some(OrgRole::Member {
                account,
                administrator,
            }) => {
                // Boxed: an async fn cannot await itself directly (its future would
                // contain itself). The administrator's own target has no administrator,
                // so this recurses once.
                let admin = Box::pin(self.target(administrator)).await;
                OrgClient::Member(std::sync::Arc::new(MemberRoute {
                    account: account.clone(),
                    administrator: admin,
                }))
            }
        };
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(target.clone(), client.clone());
        }
        client
    }

    /// Forgets the clients of every target not in `targets`: their credentials, identity
    /// cache, retry token buckets and task cache are freed once no pass holds them.
    /// Call it whenever the desired state changes, so a fleet whose accounts come and go
    /// keeps only what its current targets need.
    ///
    /// # Guarantees
    /// Clients of targets in `targets` are kept as they are (a pass in flight keeps its
    /// clone of a dropped target's clients until it ends).
    pub fn retain(&self, targets: &[Target]) {
        let keep: HashSet<&Target> = targets.iter().collect();
        if let Ok(mut clients) = self.clients.lock() {
            clients.retain(|t, _| keep.contains(t));
            // A swap of many accounts leaves a table sized for the old and new fleets.
            clients.shrink_to_fit();
        }
    }

    /// How many targets have clients.
    #[cfg(test)]
    fn targets_held(&self) -> usize {
        self.clients.lock().map_or(0, |c| c.len())
    }

    /// Makes the clients of one target.
    ///
    /// # Guarantees
    /// - Credentials: with `roleArn`, an [`AssumeRoleProvider`] (with `externalId` when
    ///   given) behind this target's own lazy identity cache. `AssumeRoleProvider` itself
    ///   caches nothing (aws-config `sts::assume_role`, test
    ///   `provider_does_not_cache_credentials_by_default`); the lazy cache keeps the
    ///   credentials and loads new ones once they are within its buffer time of expiring
    ///   (docs.rs aws-smithy-runtime `LazyCacheBuilder::buffer_time`: "amount of time before
    ///   the actual identity expiration time where the identity is considered expired",
    ///   10 s by default), so one AssumeRole serves the target's three clients until then.
    ///   The cache is the target's own: the SDK's default cache is one per `SdkConfig`,
    ///   shared by every target made from it, and evicts above 64 credential providers
    ///   (`LazyCacheBuilder::max_partitions`), which a fleet of accounts x regions passes.
    /// - Retries: each client has the retry partition [`retry_partition_name`] (service and
    ///   target label), so each has its own retry token bucket. The SDK's default partition
    ///   is per service and region (`ecs-us-east-1`), so without this one throttled account
    ///   would empty the retry quota of every account in that region (docs.rs
    ///   aws-smithy-runtime `RetryPartition`: "default partitions with the same name share
    ///   the same token bucket").
    ///
    /// # Caveats
    /// The STS client inside `AssumeRoleProvider` keeps the SDK's default partition
    /// (`sts-<region>`): its builder takes an `SdkConfig`, which has no retry partition.
    async fn new_target(&self, target: &Target) -> TargetClient {
        let region = Region::new(target.region.clone());
        let mut config = self
            .base
            .to_builder()
            .region(region.clone())
            .identity_cache(IdentityCache::lazy().build());
        if let Some(role_arn) = &target.role_arn {
            let mut builder = AssumeRoleProvider::builder(role_arn.clone())
                .session_name(SESSION_NAME)
                .region(region)
                .configure(&self.base);
            if let Some(id) = &target.external_id {
                builder = builder.external_id(id.clone());
            }
            let provider = builder.build().await;
            config = config.credentials_provider(
                aws_sdk_ecs::config::SharedCredentialsProvider::new(provider),
            );
        }
        target_client(
            &config.build(),
            target,
            self.metrics.as_ref(),
            self.calls,
            &self.fence,
        )
    }
}

/// The clients of one target, from its finished SDK configuration.
fn target_client(
    config: &SdkConfig,
    target: &Target,
    metrics: Option<&AwsMetrics>,
    calls: CallSettings,
    fence: &crate::Fence,
) -> TargetClient {
    let label = target.label();
    // A custom partition carries its own token bucket, dropped with the client. A
    // partition made by `RetryPartition::new` keeps its bucket in a process-wide map of
    // aws-smithy-runtime that never forgets a name (`TOKEN_BUCKET`, a
    // `StaticPartitionMap`): one entry per service and target ever seen, a leak when
    // accounts come and go.
    let partition =
        |service: &str| RetryPartition::custom(retry_partition_name(service, &label)).build();
    let mut ecs = aws_sdk_ecs::config::Builder::from(config).retry_partition(partition("ecs"));
    let mut guardduty =
        aws_sdk_guardduty::config::Builder::from(config).retry_partition(partition("guardduty"));
    let mut tagging = aws_sdk_resourcegroupstagging::config::Builder::from(config)
        .retry_partition(partition("tagging"));
    // The target's credentials (its assumed role included) and endpoint settings
    // (`AWS_ENDPOINT_URL`), signed for IAM's own region whatever the target's.
    let mut iam = aws_sdk_iam::config::Builder::from(config)
        .region(Region::new(IAM_REGION))
        .retry_partition(partition("iam"));
    let mut codedeploy =
        aws_sdk_codedeploy::config::Builder::from(config).retry_partition(partition("codedeploy"));
    if let Some(m) = metrics.map(AwsMetrics::interceptor) {
        ecs = ecs.interceptor(m.clone());
        codedeploy = codedeploy.interceptor(m.clone());
        guardduty = guardduty.interceptor(m.clone());
        tagging = tagging.interceptor(m.clone());
        iam = iam.interceptor(m);
    }
    // Every client that writes (IAM only simulates).
    if fence.is_leased() {
        let f = fence.interceptor();
        ecs = ecs.interceptor(f.clone());
        codedeploy = codedeploy.interceptor(f.clone());
        guardduty = guardduty.interceptor(f.clone());
        tagging = tagging.interceptor(f);
    }
    TargetClient {
        region: target.region.clone(),
        account_hint: target
            .role_arn
            .as_deref()
            .and_then(gec_model::desired::account_of_arn)
            .map(str::to_owned),
        ecs: aws_sdk_ecs::Client::from_conf(ecs.build()),
        guardduty: aws_sdk_guardduty::Client::from_conf(guardduty.build()),
        tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging.build()),
        iam: aws_sdk_iam::Client::from_conf(iam.build()),
        codedeploy: aws_sdk_codedeploy::Client::from_conf(codedeploy.build()),
        tasks: TaskCache::default(),
        deployment_groups: GroupCache::default(),
        preflight: PreflightCache::default(),
        org: OrgClient::Own,
        calls,
    }
}

/// The retry partition of one service's client for one target, e.g.
/// `gec-ecs-111111111111/us-east-1`: unique per target (targets have unique labels, the
/// desired state refuses duplicates), so that every target has its own retry token bucket.
pub(crate) fn retry_partition_name(service: &str, target_label: &str) -> String {
    format!("gec-{service}-{target_label}")
}

/// The SDK clients of one target. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TargetClient {
    pub(crate) region: String,
    pub(crate) account_hint: Option<String>,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) guardduty: aws_sdk_guardduty::Client,
    pub(crate) tagging: aws_sdk_resourcegroupstagging::Client,
    /// IAM, for `SimulatePrincipalPolicy` (preflight), signed for [`IAM_REGION`].
    pub(crate) iam: aws_sdk_iam::Client,
    /// CodeDeploy, for the services whose deployment controller is `CODE_DEPLOY`.
    pub(crate) codedeploy: aws_sdk_codedeploy::Client,
    /// RUNNING tasks already described, kept across passes with the client.
    pub(crate) tasks: TaskCache,
    /// Task definitions and execution-role answers of preflight, kept with the client.
    pub(crate) preflight: PreflightCache,
    /// The CodeDeploy deployment groups of the target's ECS applications, by service.
    pub(crate) deployment_groups: GroupCache,
    /// The target's place in an organization: its own detector, the administrator's, or
    /// a member's whose features go through the administrator.
    pub(crate) org: OrgClient,
    pub(crate) calls: CallSettings,
}

impl TargetClient {
    /// The target's region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The retry and timeout settings of this target's calls.
    pub fn calls(&self) -> CallSettings {
        self.calls
    }
}

/// A client of `region` whose every call is answered by `rules` (aws-smithy-mocks, any
/// matching rule) and never leaves the process.
#[cfg(test)]
pub(crate) fn mocked(region: &str, rules: &[&aws_smithy_mocks::Rule]) -> TargetClient {
    mocked_fenced(region, rules, &crate::Fence::default())
}

/// [`mocked`], with the write fence's interceptor of `fence` on every client that writes
/// (as [`AwsContext::with_fence`] installs it).
#[cfg(test)]
pub(crate) fn mocked_fenced(
    region: &str,
    rules: &[&aws_smithy_mocks::Rule],
    fence: &crate::Fence,
) -> TargetClient {
    use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, RuleMode};
    // One interceptor per client, each with the same rules (clones share their counts).
    let mock = || {
        rules.iter().fold(
            MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
            |m, rule| m.with_rule(rule),
        )
    };
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
            aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .http_client(create_mock_http_client())
        .build();
    TargetClient {
        region: region.to_owned(),
        account_hint: None,
        ecs: aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&config)
                .interceptor(mock())
                .interceptor(fence.interceptor())
                .build(),
        ),
        guardduty: aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(&config)
                .interceptor(mock())
                .interceptor(fence.interceptor())
                .build(),
        ),
        tagging: aws_sdk_resourcegroupstagging::Client::from_conf(
            aws_sdk_resourcegroupstagging::config::Builder::from(&config)
                .interceptor(mock())
                .interceptor(fence.interceptor())
                .build(),
        ),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config)
                .region(Region::new(IAM_REGION))
                .interceptor(mock())
                .build(),
        ),
        codedeploy: aws_sdk_codedeploy::Client::from_conf(
            aws_sdk_codedeploy::config::Builder::from(&config)
                .interceptor(mock())
                .interceptor(fence.interceptor())
                .build(),
        ),
        tasks: TaskCache::default(),
        preflight: PreflightCache::default(),
        deployment_groups: GroupCache::default(),
        org: OrgClient::Own,
        calls: CallSettings {
            max_attempts: 1,
            ..CallSettings::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gec_model::testing::target;

    /// A context that reaches nothing: fixed credentials, no endpoint is ever called.
    async fn context() -> AwsContext {
        AwsContext {
            base: aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load()
                .await,
            metrics: None,
            calls: CallSettings::default(),
            fence: crate::Fence::default(),
            clients: Arc::default(),
        }
    }

    #[tokio::test]
    async fn clients_of_targets_that_left_the_desired_state_are_dropped() {
        let ctx = context().await;
        let role = |account: u32| format!("arn:aws:iam::{account:012}:role/gec");
        let fleet = |accounts: std::ops::Range<u32>| -> Vec<Target> {
            accounts
                .map(|a| target("us-east-1").role(&role(a)))
                .collect()
        };
        let old = fleet(0..150);
        for t in &old {
            ctx.target(t).await;
        }
        assert_eq!(ctx.targets_held(), 150);
        // Another 150 accounts replace them, five of the old ones stay.
        let mut new = fleet(150..300);
        new.extend_from_slice(&old[..5]);
        ctx.retain(&new);
        assert_eq!(ctx.targets_held(), 5, "only the targets still desired");
        ctx.target(&old[0]).await.tasks.set_detector_id(Some("d-1"));
        for t in &new {
            ctx.target(t).await;
        }
        assert_eq!(ctx.targets_held(), 155);
        assert_eq!(
            ctx.target(&old[0]).await.tasks.detector_id().as_deref(),
            Some("d-1"),
            "a target that stays keeps its clients and caches"
        );
        ctx.retain(&[]);
        assert_eq!(ctx.targets_held(), 0);
    }

    #[tokio::test]
    async fn a_member_target_carries_its_administrators_clients() {
        let ctx = context().await;
        let mut admin = target("us-east-1").role("arn:aws:iam::111111111111:role/gec");
        admin.org = Some(OrgRole::Administrator);
        let mut member = target("us-east-1").role("arn:aws:iam::222222222222:role/gec-member");
        member.org = Some(OrgRole::Member {
            account: "222222222222".into(),
            administrator: Box::new(admin.clone()),
        });
        let member_client = ctx.target(&member).await;
        let OrgClient::Member(route) = &member_client.org else {
            panic!("a member's client routes through its administrator");
        };
        assert_eq!(route.account, "222222222222");
        assert!(ctx.target(&admin).await.is_administrator());
        // The administrator's clients are the ones its own target has: one detector-id
        // cache, one set of credentials.
        ctx.target(&admin)
            .await
            .tasks
            .set_detector_id(Some("admin-detector"));
        assert_eq!(
            route.administrator.tasks.detector_id().as_deref(),
            Some("admin-detector")
        );
        assert_eq!(ctx.targets_held(), 2);
        assert!(matches!(
            ctx.target(&target("us-east-1")).await.org,
            OrgClient::Own
        ));
    }

    #[test]
    fn each_target_has_its_own_retry_partition_per_service() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        // (label, target, the partitions of its ecs, guardduty, tagging and codedeploy
        // clients)
        let rows = [
            (
                "own credentials",
                target("us-east-1"),
                [
                    "gec-ecs-us-east-1",
                    "gec-guardduty-us-east-1",
                    "gec-tagging-us-east-1",
                    "gec-codedeploy-us-east-1",
                ],
            ),
            (
                "a role in one account",
                target("us-east-1").role("arn:aws:iam::111111111111:role/gec"),
                [
                    "gec-ecs-111111111111/us-east-1",
                    "gec-guardduty-111111111111/us-east-1",
                    "gec-tagging-111111111111/us-east-1",
                    "gec-codedeploy-111111111111/us-east-1",
                ],
            ),
            (
                "the same region in another account",
                target("us-east-1").role("arn:aws:iam::222222222222:role/gec"),
                [
                    "gec-ecs-222222222222/us-east-1",
                    "gec-guardduty-222222222222/us-east-1",
                    "gec-tagging-222222222222/us-east-1",
                    "gec-codedeploy-222222222222/us-east-1",
                ],
            ),
        ];
        for (label, t, want) in rows {
            let client = target_client(
                &config,
                &t,
                None,
                CallSettings::default(),
                &crate::Fence::default(),
            );
            // `Config::retry_partition` is marked unstable by the SDK; if it goes away,
            // `retry_partition_name` is what is left to check.
            let got = [
                client
                    .ecs
                    .config()
                    .retry_partition()
                    .map(ToString::to_string),
                client
                    .guardduty
                    .config()
                    .retry_partition()
                    .map(ToString::to_string),
                client
                    .tagging
                    .config()
                    .retry_partition()
                    .map(ToString::to_string),
                client
                    .codedeploy
                    .config()
                    .retry_partition()
                    .map(ToString::to_string),
            ];
            assert_eq!(got, want.map(|w| Some(w.to_owned())), "{label}");
        }
    }

    /// Endpoint settings as an environment or profile would give them.
    #[derive(Debug)]
    struct Settings(&'static [(&'static str, &'static str)]);

    impl aws_types::service_config::LoadServiceConfig for Settings {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            self.0
                .iter()
                .find(|(id, _)| *id == key.service_id())
                .map(|(_, url)| (*url).to_owned())
        }
    }

    fn config(
        global: Option<&str>,
        services: &'static [(&'static str, &'static str)],
    ) -> SdkConfig {
        let mut b = SdkConfig::builder().service_config(Settings(services));
        b.set_endpoint_url(global.map(str::to_owned));
        b.build()
    }

    #[test]
    fn an_empty_endpoint_url_is_refused_and_a_set_or_unset_one_is_not() {
        assert_eq!(empty_endpoint(&config(None, &[])), None);
        assert_eq!(
            empty_endpoint(&config(
                Some("http://127.0.0.1:1"),
                &[("ECS", "http://127.0.0.1:2")]
            )),
            None
        );
        let global = empty_endpoint(&config(Some(""), &[])).unwrap();
        assert!(global.starts_with("AWS_ENDPOINT_URL "), "{global}");
        assert!(empty_endpoint(&config(Some("  "), &[])).is_some());
        let ecs = empty_endpoint(&config(None, &[("ECS", "")])).unwrap();
        assert!(ecs.starts_with("AWS_ENDPOINT_URL_ECS "), "{ecs}");
        let tagging = empty_endpoint(&config(
            Some("http://127.0.0.1:1"),
            &[("Resource Groups Tagging API", "")],
        ))
        .unwrap();
        assert!(
            tagging.starts_with("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API "),
            "{tagging}"
        );
        let err = EmptyEndpoint { setting: global };
        assert!(err.to_string().contains("is set but empty"), "{err}");
    }
}
