//! Preflight: whether a service can get a RUNNING GuardDuty agent at all, read before the
//! engine redeploys it (GuardDuty user guide, "Prerequisites for AWS Fargate (Amazon ECS
//! only) support": Linux, platform version 1.4.0 or `LATEST`, and a task execution role
//! that may pull the agent image from ECR).
//!
//! Per service: the task definition the PRIMARY deployment runs (`DescribeTaskDefinition`,
//! cached per task-definition ARN for the client's life: a revision never changes) gives
//! `executionRoleArn` and `runtimePlatform.operatingSystemFamily`; the platform version
//! comes with the service; IAM `SimulatePrincipalPolicy` tells whether the execution role
//! may call [`AGENT_PULL_ACTIONS`] on the region's agent repository (cached per role for
//! [`PREFLIGHT_TTL`]). A read that fails makes the answer [`Preflight::Unknown`], which is
//! never an error: the engine holds the service and says why. A role whose simulation
//! failed is not asked again for [`UNKNOWN_TTL`], so the services sharing it cost one
//! call per pass, not one each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gec_model::observed::{ObservedService, Preflight, PreflightCode, PreflightFinding};

use crate::error::{classify, ErrorKind};
use crate::text::bounded;
use crate::TargetClient;

/// How long an answer of `SimulatePrincipalPolicy` for one execution role is trusted.
/// Ten minutes: a fixed role policy shows within one such period (a pass a minute costs one
/// simulation per role per 10 passes), and a role that cannot pull is held, not
/// redeployed, in the meantime, so a stale "cannot pull" costs a delay, never a loop.
pub const PREFLIGHT_TTL: Duration = Duration::from_secs(600);
/// How long a failed simulation for one role is remembered: long enough for one pass over
/// every service of the role (a denied `iam:SimulatePrincipalPolicy` must not cost a call
/// per service against the account's IAM quota), short enough that the next pass asks
/// again.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// Most task definitions (and, separately, roles) a client remembers; when full, it forgets
/// them all (a fleet rarely has this many distinct revisions in flight at once).
pub const TASK_DEFINITION_CACHE: usize = 4096;
/// The repository that hosts the agent for ECS on Fargate, in every region.
pub const AGENT_REPOSITORY: &str = "aws-guardduty-agent-fargate";
/// What the execution role must be allowed to do to pull the agent image.
pub const AGENT_PULL_ACTIONS: [&str; 3] = [
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];
/// Longest text of AWS's kept in a detail.
const MAX_DETAIL_CHARS: usize = 256;
/// Longest ARN IAM accepts (`PolicySourceArn`): a role ARN is kept whole, up to this, for
/// the simulation must name the role exactly (an IAM path alone may be 512 characters).
const MAX_ARN_CHARS: usize = 2048;

/// The account that hosts [`AGENT_REPOSITORY`] per region, from the GuardDuty user guide,
/// "ECR Repository for GuardDuty agent on AWS Fargate (Amazon ECS only)":
/// <https://docs.aws.amazon.com/guardduty/latest/ug/ecs-runtime-agent-ecr-image-uri.html>
const AGENT_REGISTRY_ACCOUNTS: [(&str, &str); 33] = [
    ("af-south-1", "197869348890"),
    ("ap-east-1", "258348409381"),
    ("ap-east-2", "259886477082"),
    ("ap-northeast-1", "533107202818"),
    ("ap-northeast-2", "914738172881"),
    ("ap-northeast-3", "273192626886"),
    ("ap-south-1", "251508486986"),
    ("ap-south-2", "950823858135"),
    ("ap-southeast-1", "174946120834"),
    ("ap-southeast-2", "005257825471"),
    ("ap-southeast-3", "510637619217"),
    ("ap-southeast-4", "251357961535"),
    ("ap-southeast-5", "156041399949"),
    ("ap-southeast-7", "054037130133"),
    ("ca-central-1", "354763396469"),
    ("ca-west-1", "339712888787"),
    ("eu-central-1", "323658145986"),
    ("eu-central-2", "529164026651"),
    ("eu-north-1", "591436053604"),
    ("eu-south-1", "266869475730"),
    ("eu-south-2", "919611009337"),
    ("eu-west-1", "694911143906"),
    ("eu-west-2", "892757235363"),
    ("eu-west-3", "665651866788"),
    ("il-central-1", "870907303882"),
    ("me-central-1", "000014521398"),
    ("me-south-1", "536382113932"),
    ("mx-central-1", "311141559934"),
    ("sa-east-1", "758426053663"),
    ("us-east-1", "593207742271"),
    ("us-east-2", "307168627858"),
    ("us-west-1", "684579721401"),
    ("us-west-2", "733349766148"),
];

/// The ARN of the agent repository in `region`; `None` for a region the GuardDuty user
/// guide lists no repository for.
pub fn agent_repository_arn(region: &str) -> Option<String> {
    AGENT_REGISTRY_ACCOUNTS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(r, account)| format!("arn:aws:ecr:{r}:{account}:repository/{AGENT_REPOSITORY}"))
}

/// What preflight needs of one task-definition revision.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskDefinitionFacts {
    execution_role: Option<String>,
    /// `runtimePlatform.operatingSystemFamily` when it names a Windows family.
    windows: Option<String>,
}

/// IAM's answer for one execution role.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RolePull {
    Allowed,
    /// The actions whose decision is not `allowed`, with the decision.
    Denied(Vec<String>),
    /// IAM does not know the role.
    Missing,
}

#[derive(Debug, Default)]
struct Caches {
    task_definitions: HashMap<String, TaskDefinitionFacts>,
    roles: HashMap<String, (Instant, RolePull)>,
    /// Roles whose simulation failed, with why, for [`UNKNOWN_TTL`].
    unknown_roles: HashMap<String, (Instant, String)>,
}

/// Preflight answers a target's client remembers, shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreflightCache(Arc<Mutex<Caches>>);

impl PreflightCache {
    // Each change is one insert or clear: a poisoned lock still holds a whole value.
    fn lock(&self) -> MutexGuard<'_, Caches> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Inserts into a bounded cache: when full, everything is forgotten first.
fn bounded_insert<V>(map: &mut HashMap<String, V>, key: String, value: V) {
    if map.len() >= TASK_DEFINITION_CACHE && !map.contains_key(&key) {
        map.clear();
        map.shrink_to_fit();
    }
    map.insert(key, value);
}

/// Whether a Linux Fargate platform version runs the agent: `LATEST` or at least 1.4.0.
/// `None` (ECS says none) counts as `LATEST`, ECS's default. `Err`: not a version ECS
/// documents (the text says so).
fn platform_supported(version: Option<&str>) -> Result<bool, String> {
    let Some(v) = version else {
        return Ok(true);
    };
    if v == "LATEST" {
        return Ok(true);
    }
    let unknown = || {
        format!(
            "the platform version {:?} is neither LATEST nor MAJOR.MINOR.PATCH",
            bounded(v, 32)
        )
    };
    let mut parts = [0u32; 3];
    let mut fields = v.split('.');
    for part in &mut parts {
        let field = fields.next().ok_or_else(unknown)?;
        if field.is_empty() || field.len() > 9 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        *part = field.parse().map_err(|_| unknown())?;
    }
    if fields.next().is_some() {
        return Err(unknown());
    }
    Ok(parts >= [1, 4, 0])
}

fn finding(code: PreflightCode, detail: String) -> PreflightFinding {
    PreflightFinding { code, detail }
}

impl TargetClient {
    /// Whether `service` can get a RUNNING agent (module docs). Never fails: a read that
    /// fails is [`Preflight::Unknown`], with the reason. Every finding that holds is
    /// returned, ordered by code; when some are known and another check could not be
    /// made, the known ones are the answer.
    pub async fn preflight(&self, service: &ObservedService) -> Preflight {
        self.preflight_at(service, Instant::now()).await
    }

    pub(crate) async fn preflight_at(&self, service: &ObservedService, now: Instant) -> Preflight {
        let Some(task_definition) = service.task_definition.as_deref() else {
            return Preflight::Unknown("ECS names no task definition for the service".into());
        };
        let facts = match self.task_definition_facts(task_definition).await {
            Ok(facts) => facts,
            Err(why) => return Preflight::Unknown(why),
        };
        let mut findings = Vec::new();
        let mut unknown = None;
        if let Some(family) = &facts.windows {
            findings.push(finding(
                PreflightCode::Windows,
                format!("operatingSystemFamily {family}"),
            ));
        } else if service.fargate {
            match platform_supported(service.platform_version.as_deref()) {
                Ok(true) => {}
                Ok(false) => findings.push(finding(
                    PreflightCode::PlatformVersion,
                    format!(
                        "platform version {}",
                        service.platform_version.as_deref().unwrap_or_default()
                    ),
                )),
                Err(why) => unknown = Some(why),
            }
        }
        match &facts.execution_role {
            None => findings.push(finding(
                PreflightCode::NoExecutionRole,
                format!("task definition {task_definition}"),
            )),
            Some(role) => match self.role_can_pull(role, now).await {
                Ok(RolePull::Allowed) => {}
                Ok(RolePull::Denied(denied)) => findings.push(finding(
                    PreflightCode::ExecutionRoleCannotPull,
                    format!("{role} is not allowed {}", denied.join(", ")),
                )),
                Ok(RolePull::Missing) => findings.push(finding(
                    PreflightCode::ExecutionRoleCannotPull,
                    format!("{role} does not exist"),
                )),
                Err(why) => unknown = unknown.or(Some(why)),
            },
        }
        match (findings.is_empty(), unknown) {
            (false, _) => {
                findings.sort();
                Preflight::Failed(findings)
            }
            (true, Some(why)) => Preflight::Unknown(why),
            (true, None) => Preflight::Passed,
        }
    }

    /// The execution role and OS family of a task-definition revision, from the cache or
    /// one `DescribeTaskDefinition`.
    async fn task_definition_facts(&self, arn: &str) -> Result<TaskDefinitionFacts, String> {
        if let Some(facts) = self.preflight.lock().task_definitions.get(arn) {
            return Ok(facts.clone());
        }
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| {
                let e = classify("DescribeTaskDefinition", e);
                format!("could not read task definition {arn}: {e}")
            })?;
        let Some(td) = out.task_definition() else {
            return Err(format!("ECS returned no task definition for {arn}"));
        };
        let facts = TaskDefinitionFacts {
            execution_role: td
                .execution_role_arn()
                .filter(|r| !r.is_empty())
                .map(|r| bounded(r, MAX_ARN_CHARS)),
            windows: td
                .runtime_platform()
                .and_then(|p| p.operating_system_family())
                .map(|f| f.as_str())
                .filter(|f| f.starts_with("WINDOWS"))
                .map(|f| bounded(f, MAX_DETAIL_CHARS)),
        };
        // Only a revision ARN names something immutable (a family name follows its
        // latest revision): cache what ECS confirms is the revision asked for.
        if td.task_definition_arn() == Some(arn) {
            let mut cache = self.preflight.lock();
            bounded_insert(&mut cache.task_definitions, arn.to_owned(), facts.clone());
        }
        Ok(facts)
    }

    /// IAM's answer for `role` on the agent repository of this client's region, cached
    /// for [`PREFLIGHT_TTL`]. `Err`: no answer, with the reason (kept [`UNKNOWN_TTL`]).
    async fn role_can_pull(&self, role: &str, now: Instant) -> Result<RolePull, String> {
        {
            let cache = self.preflight.lock();
            if let Some((at, answer)) = cache.roles.get(role) {
                if now.saturating_duration_since(*at) < PREFLIGHT_TTL {
                    return Ok(answer.clone());
                }
            }
            if let Some((at, why)) = cache.unknown_roles.get(role) {
                if now.saturating_duration_since(*at) < UNKNOWN_TTL {
                    return Err(why.clone());
                }
            }
        }
        let answer = self.simulate(role).await;
        let mut cache = self.preflight.lock();
        match &answer {
            Ok(pull) => {
                cache.unknown_roles.remove(role);
                bounded_insert(&mut cache.roles, role.to_owned(), (now, pull.clone()));
            }
            Err(why) => {
                bounded_insert(
                    &mut cache.unknown_roles,
                    role.to_owned(),
                    (now, why.clone()),
                );
            }
        }
        answer
    }

    /// One `SimulatePrincipalPolicy` for `role` on this region's agent repository.
    async fn simulate(&self, role: &str) -> Result<RolePull, String> {
        let Some(repository) = agent_repository_arn(&self.region) else {
            return Err(format!(
                "the GuardDuty user guide lists no agent repository for region {}",
                self.region
            ));
        };
        let answer = match self
            .iam
            .simulate_principal_policy()
            .policy_source_arn(role)
            .set_action_names(Some(AGENT_PULL_ACTIONS.map(str::to_owned).to_vec()))
            .resource_arns(repository)
            .send()
            .await
        {
            Ok(out) => decide(out.evaluation_results())?,
            Err(e) => {
                let e = classify("SimulatePrincipalPolicy", e);
                if e.code.as_deref() == Some("NoSuchEntity") {
                    RolePull::Missing
                } else if e.kind == ErrorKind::AccessDenied {
                    tracing::warn!(role, error = %e,
                        "iam:SimulatePrincipalPolicy was denied: the services of this role are held until it is allowed");
                    return Err(format!(
                        "iam:SimulatePrincipalPolicy was denied: {}",
                        bounded(&e.message, MAX_DETAIL_CHARS)
                    ));
                } else {
                    return Err(format!("could not simulate {role}'s policies: {e}"));
                }
            }
        };
        Ok(answer)
    }
}

/// IAM's decisions for [`AGENT_PULL_ACTIONS`]: allowed only when every action has a
/// result and every result for it says `allowed`.
fn decide(results: &[aws_sdk_iam::types::EvaluationResult]) -> Result<RolePull, String> {
    let mut denied = Vec::new();
    for action in AGENT_PULL_ACTIONS {
        let mut mine = results
            .iter()
            .filter(|r| r.eval_action_name().eq_ignore_ascii_case(action))
            .peekable();
        if mine.peek().is_none() {
            return Err(format!(
                "iam:SimulatePrincipalPolicy answered nothing for {action}"
            ));
        }
        if let Some(no) = mine.find(|r| {
            r.eval_decision() != &aws_sdk_iam::types::PolicyEvaluationDecisionType::Allowed
        }) {
            // A statement with a condition the simulation had no value for: IAM could not
            // decide, and neither can the controller (the real pull may be allowed).
            let missing = no.missing_context_values();
            if !missing.is_empty() {
                let keys: Vec<String> = missing.iter().take(5).map(|k| bounded(k, 64)).collect();
                return Err(format!(
                    "the execution role's permission for {action} depends on condition keys \
                     the policy simulation cannot evaluate ({})",
                    keys.join(", ")
                ));
            }
            denied.push(format!(
                "{action} ({})",
                bounded(no.eval_decision().as_str(), 32)
            ));
        }
    }
    Ok(if denied.is_empty() {
        RolePull::Allowed
    } else {
        RolePull::Denied(denied)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::mocked;
    use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
    use aws_sdk_ecs::types::{OsFamily, RuntimePlatform, TaskDefinition};
    use aws_sdk_iam::operation::simulate_principal_policy::{
        SimulatePrincipalPolicyError, SimulatePrincipalPolicyOutput,
    };
    use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType as Decision};
    use aws_smithy_mocks::{mock, Rule};
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn platform_versions_are_parsed_defensively() {
        // (version, Some(supported) or None for unknown)
        let rows: [(Option<&str>, Option<bool>); 16] = [
            (None, Some(true)),
            (Some("LATEST"), Some(true)),
            (Some("1.4.0"), Some(true)),
            (Some("1.10.0"), Some(true)),
            (Some("2.0.0"), Some(true)),
            (Some("1.3.0"), Some(false)),
            (Some("1.0.0"), Some(false)),
            (Some("0.99.99"), Some(false)),
            (Some("latest"), None),
            (Some(""), None),
            (Some("1.4"), None),
            (Some("1.4.0.1"), None),
            (Some("+1.4.0"), None),
            (Some("1.4.x"), None),
            (Some("99999999999.0.0"), None),
            (Some("1..0"), None),
        ];
        for (version, want) in rows {
            assert_eq!(platform_supported(version).ok(), want, "{version:?}");
        }
        let long = "9".repeat(10_000);
        let why = platform_supported(Some(&long)).expect_err("garbage");
        assert!(why.len() < 200, "the reason quotes a bounded part: {why}");
    }

    #[test]
    fn the_agent_repository_is_the_documented_one_per_region() {
        assert_eq!(
            agent_repository_arn("us-east-1").as_deref(),
            Some("arn:aws:ecr:us-east-1:593207742271:repository/aws-guardduty-agent-fargate")
        );
        assert_eq!(
            agent_repository_arn("ap-southeast-2").as_deref(),
            Some("arn:aws:ecr:ap-southeast-2:005257825471:repository/aws-guardduty-agent-fargate")
        );
        assert_eq!(agent_repository_arn("cn-north-1"), None);
        assert_eq!(agent_repository_arn(""), None);
        let mut regions: Vec<&str> = AGENT_REGISTRY_ACCOUNTS.iter().map(|(r, _)| *r).collect();
        regions.dedup();
        assert_eq!(regions.len(), AGENT_REGISTRY_ACCOUNTS.len());
        assert!(AGENT_REGISTRY_ACCOUNTS
            .iter()
            .all(|(_, a)| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())));
    }

    const ROLE: &str = "arn:aws:iam::1:role/exec";

    fn service(td: &str, platform: Option<&str>) -> ObservedService {
        ObservedService {
            name: "api".into(),
            fargate: true,
            task_definition: Some(td.into()),
            platform_version: platform.map(str::to_owned),
            ..ObservedService::default()
        }
    }

    /// `DescribeTaskDefinition` of any revision: `arn:td/NAME:1`, with `role` and `os`.
    fn task_definitions(role: Option<&'static str>, os: Option<OsFamily>) -> Rule {
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_compute_output(move |input| {
            let arn = input.task_definition().unwrap_or_default().to_owned();
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(arn)
                        .set_execution_role_arn(role.map(str::to_owned))
                        .set_runtime_platform(os.clone().map(|os| {
                            RuntimePlatform::builder()
                                .operating_system_family(os)
                                .build()
                        }))
                        .build(),
                )
                .build()
        })
    }

    /// IAM allows every pull action but those in `denied` (implicit deny).
    fn simulation(denied: &'static [&'static str]) -> Rule {
        mock!(aws_sdk_iam::Client::simulate_principal_policy).then_compute_output(move |input| {
            assert_eq!(input.policy_source_arn(), Some(ROLE));
            assert_eq!(
                input.resource_arns(),
                [agent_repository_arn("us-east-1").expect("documented")]
            );
            let mut out = SimulatePrincipalPolicyOutput::builder();
            for action in input.action_names() {
                let decision = if denied.contains(&action.as_str()) {
                    Decision::ImplicitDeny
                } else {
                    Decision::Allowed
                };
                out = out.evaluation_results(
                    EvaluationResult::builder()
                        .eval_action_name(action)
                        .eval_decision(decision)
                        .build()
                        .expect("a whole result"),
                );
            }
            out.build()
        })
    }

    fn iam_error(code: &'static str) -> Rule {
        mock!(aws_sdk_iam::Client::simulate_principal_policy).then_error(move || {
            SimulatePrincipalPolicyError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("not for you")
                    .build(),
            )
        })
    }

    fn codes(p: &Preflight) -> Vec<&'static str> {
        p.findings().iter().map(|f| f.code.code()).collect()
    }

    #[tokio::test]
    async fn answers_are_cached_per_revision_and_per_role_for_the_ttl() {
        let tds = task_definitions(Some(ROLE), Some(OsFamily::Linux));
        let sim = simulation(&[]);
        let client = mocked("us-east-1", &[&tds, &sim]);
        let now = Instant::now();
        for (td, platform) in [
            ("arn:td/api:1", None),
            ("arn:td/api:1", Some("LATEST")),
            ("arn:td/web:1", Some("1.4.0")),
        ] {
            let p = client.preflight_at(&service(td, platform), now).await;
            assert_eq!(p, Preflight::Passed, "{td} {platform:?}");
        }
        assert_eq!(
            tds.num_calls(),
            2,
            "one DescribeTaskDefinition per revision"
        );
        assert_eq!(sim.num_calls(), 1, "one simulation per role");
        let later = now + PREFLIGHT_TTL;
        client
            .preflight_at(&service("arn:td/api:1", None), later)
            .await;
        assert_eq!(tds.num_calls(), 2, "revisions never change");
        assert_eq!(
            sim.num_calls(),
            2,
            "a role's answer is read again after the TTL"
        );
    }

    /// A deny that rests on a condition the simulation had no value for (say
    /// `aws:SourceVpce`) proves nothing: unknown, not a finding.
    #[test]
    fn a_deny_that_depends_on_missing_context_values_is_unknown() {
        let result = |action: &str, decision: Decision, missing: &[&str]| {
            EvaluationResult::builder()
                .eval_action_name(action)
                .eval_decision(decision)
                .set_missing_context_values(Some(missing.iter().map(|k| (*k).to_owned()).collect()))
                .build()
                .expect("a whole result")
        };
        let results = [
            result("ecr:GetAuthorizationToken", Decision::Allowed, &[]),
            result(
                "ecr:BatchGetImage",
                Decision::ImplicitDeny,
                &["aws:SourceVpce"],
            ),
            result("ecr:GetDownloadUrlForLayer", Decision::Allowed, &[]),
        ];
        let why = decide(&results).expect_err("unknown");
        assert!(why.contains("aws:SourceVpce"), "{why}");
        let plain = [
            result("ecr:GetAuthorizationToken", Decision::Allowed, &[]),
            result("ecr:BatchGetImage", Decision::ImplicitDeny, &[]),
            result("ecr:GetDownloadUrlForLayer", Decision::Allowed, &[]),
        ];
        assert!(matches!(decide(&plain), Ok(RolePull::Denied(_))));
    }

    #[tokio::test]
    async fn a_role_that_may_not_pull_the_image_is_a_finding_naming_the_actions() {
        let tds = task_definitions(Some(ROLE), None);
        let sim = simulation(&["ecr:BatchGetImage"]);
        let client = mocked("us-east-1", &[&tds, &sim]);
        let p = client.preflight(&service("arn:td/api:1", None)).await;
        assert_eq!(codes(&p), ["execution_role_cannot_pull"]);
        let detail = &p.findings()[0].detail;
        assert!(
            detail.contains(ROLE) && detail.contains("ecr:BatchGetImage (implicitDeny)"),
            "{detail}"
        );
        assert!(!detail.contains("GetAuthorizationToken"), "{detail}");
    }

    #[tokio::test]
    async fn every_finding_is_returned_in_code_order() {
        let tds = task_definitions(None, Some(OsFamily::WindowsServer2019Full));
        let client = mocked("us-east-1", &[&tds]);
        let p = client
            .preflight(&service("arn:td/api:1", Some("1.0.0")))
            .await;
        assert_eq!(
            codes(&p),
            ["windows", "no_execution_role"],
            "a Windows task has no Linux platform version to judge"
        );
        assert!(p.findings()[0].detail.contains("WINDOWS_SERVER_2019_FULL"));

        let tds = task_definitions(Some(ROLE), None);
        let sim = simulation(&["ecr:GetAuthorizationToken"]);
        let client = mocked("us-east-1", &[&tds, &sim]);
        let p = client
            .preflight(&service("arn:td/api:1", Some("1.3.0")))
            .await;
        assert_eq!(
            codes(&p),
            ["platform_version", "execution_role_cannot_pull"]
        );
        assert_eq!(p.findings()[0].detail, "platform version 1.3.0");
    }

    #[tokio::test]
    async fn a_denied_simulation_is_unknown_and_asked_again_by_the_next_pass() {
        let tds = task_definitions(Some(ROLE), None);
        let denied = iam_error("AccessDenied");
        let client = mocked("us-east-1", &[&tds, &denied]);
        for _ in 0..2 {
            let p = client.preflight(&service("arn:td/api:1", None)).await;
            let Preflight::Unknown(why) = p else {
                panic!("unknown, not {p:?}");
            };
            assert!(
                why.starts_with("iam:SimulatePrincipalPolicy was denied: "),
                "{why}"
            );
        }
        assert_eq!(
            denied.num_calls(),
            1,
            "the services of one pass share the role's failed answer"
        );
        client
            .preflight_at(&service("arn:td/api:1", None), Instant::now() + UNKNOWN_TTL)
            .await;
        assert_eq!(denied.num_calls(), 2, "the next pass asks again");
        // Known findings stand even when the role cannot be checked.
        let p = client
            .preflight(&service("arn:td/api:1", Some("1.1.0")))
            .await;
        assert_eq!(codes(&p), ["platform_version"]);
    }

    #[tokio::test]
    async fn a_role_iam_does_not_know_cannot_pull() {
        let tds = task_definitions(Some(ROLE), None);
        let missing = iam_error("NoSuchEntity");
        let client = mocked("us-east-1", &[&tds, &missing]);
        let p = client.preflight(&service("arn:td/api:1", None)).await;
        assert_eq!(codes(&p), ["execution_role_cannot_pull"]);
        assert!(p.findings()[0].detail.ends_with("does not exist"));
    }

    #[tokio::test]
    async fn what_cannot_be_read_is_unknown_never_an_error() {
        let tds = task_definitions(Some(ROLE), None);
        let client = mocked("cn-north-1", &[&tds]);
        let p = client.preflight(&service("arn:td/api:1", None)).await;
        assert!(
            matches!(&p, Preflight::Unknown(why) if why.contains("cn-north-1")),
            "{p:?}"
        );
        let failing = mock!(aws_sdk_ecs::Client::describe_task_definition).then_error(|| {
            aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError::generic(
                ErrorMetadata::builder()
                    .code("ClientException")
                    .message("Unable to describe task definition.")
                    .build(),
            )
        });
        let client = mocked("us-east-1", &[&failing]);
        let p = client.preflight(&service("arn:td/gone:1", None)).await;
        assert!(
            matches!(&p, Preflight::Unknown(why) if why.contains("arn:td/gone:1")),
            "{p:?}"
        );
        let p = client
            .preflight(&ObservedService {
                task_definition: None,
                ..service("", None)
            })
            .await;
        assert!(matches!(p, Preflight::Unknown(_)));
        let p = client
            .preflight(&service("arn:td/gone:1", Some("v1")))
            .await;
        assert!(matches!(p, Preflight::Unknown(_)), "{p:?}");
    }

    #[test]
    fn a_full_cache_forgets_everything_first() {
        let mut map = HashMap::new();
        for i in 0..TASK_DEFINITION_CACHE {
            bounded_insert(&mut map, format!("k{i}"), i);
        }
        assert_eq!(map.len(), TASK_DEFINITION_CACHE);
        bounded_insert(&mut map, "k0".into(), 0);
        assert_eq!(map.len(), TASK_DEFINITION_CACHE, "a known key is replaced");
        bounded_insert(&mut map, "new".into(), 0);
        assert_eq!(map.len(), 1);
    }
}
