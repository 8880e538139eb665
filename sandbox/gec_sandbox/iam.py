"""IAM where the sandbox needs more than moto: one policy evaluator, shared by the agent
injection (can this task execution role pull the GuardDuty agent image?) and by
`SimulatePrincipalPolicy` (moto does not implement it), and AWS managed policies that can
be attached without loading moto's whole catalogue.

The evaluator follows the IAM policy evaluation logic for identity-based policies of one
principal (IAM User Guide: reference_policies_evaluation-logic): an explicit Deny in any
statement wins, else an Allow in any statement allows, else the decision is an implicit
deny. `Action` / `NotAction` match case-insensitively, `Resource` / `NotResource` case-
sensitively, both with the `*` and `?` wildcards (IAM User Guide:
reference_policies_elements_action, reference_policies_elements_resource). A statement
with a `Condition` applies only when every key it tests is given in the context; the
keys that were not given are reported as missing (SimulatePrincipalPolicy's
`MissingContextValues`) and the statement does not match. Permissions boundaries,
session policies, SCPs and resource policies are not modelled."""

from __future__ import annotations

import functools
import json
import re
import uuid
from typing import Any
from xml.sax.saxutils import escape

from .awsreq import AwsError, AwsRequest

IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"

# GuardDuty UG, "ECR Repository for GuardDuty agent on AWS Fargate (Amazon ECS only)"
# (https://docs.aws.amazon.com/guardduty/latest/ug/ecs-runtime-agent-ecr-image-uri.html):
# the account hosting `aws-guardduty-agent-fargate` in each Region.
AGENT_REPOSITORY_ACCOUNTS = {
    "us-east-1": "593207742271",
    "us-east-2": "307168627858",
    "us-west-1": "684579721401",
    "us-west-2": "733349766148",
    "eu-west-1": "694911143906",
    "eu-west-2": "892757235363",
    "eu-west-3": "665651866788",
    "eu-central-1": "323658145986",
    "eu-central-2": "529164026651",
    "eu-north-1": "591436053604",
    "eu-south-1": "266869475730",
    "eu-south-2": "919611009337",
    "sa-east-1": "758426053663",
    "ca-central-1": "354763396469",
    "ca-west-1": "339712888787",
    "mx-central-1": "311141559934",
    "ap-south-1": "251508486986",
    "ap-south-2": "950823858135",
    "ap-southeast-1": "174946120834",
    "ap-southeast-2": "005257825471",
    "ap-southeast-3": "510637619217",
    "ap-southeast-4": "251357961535",
    "ap-southeast-5": "156041399949",
    "ap-southeast-7": "054037130133",
    "ap-northeast-1": "533107202818",
    "ap-northeast-2": "914738172881",
    "ap-northeast-3": "273192626886",
    "ap-east-1": "258348409381",
    "ap-east-2": "259886477082",
    "me-south-1": "536382113932",
    "me-central-1": "000014521398",
    "il-central-1": "870907303882",
    "af-south-1": "197869348890",
}
AGENT_REPOSITORY = "aws-guardduty-agent-fargate"
AGENT_TAG = "v1.6.0-Fg_x86_64"
# What a task execution role must allow to pull the agent image (GuardDuty UG,
# prereq-runtime-monitoring-ecs-support, "Permissions requirements"; Amazon ECR UG,
# ECR_on_ECS): the token on `*`, the image and its layers on the repository.
PULL_ACTIONS = ("ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


def agent_repository_account(region: str) -> str:
    return AGENT_REPOSITORY_ACCOUNTS.get(region, AGENT_REPOSITORY_ACCOUNTS["us-east-1"])


def agent_repository_arn(region: str) -> str:
    return f"arn:aws:ecr:{region}:{agent_repository_account(region)}:repository/{AGENT_REPOSITORY}"


def agent_image(region: str) -> str:
    return f"{agent_repository_account(region)}.dkr.ecr.{region}.amazonaws.com/{AGENT_REPOSITORY}:{AGENT_TAG}"


def backend(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


# ---------------------------------------------------------------- policy evaluation


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def _matches(patterns: Any, value: str, fold: bool) -> bool:
    return any(_pattern(p, fold).match(value) for p in _listed(patterns))


class Policy:
    """One policy document of a principal, with where it comes from (the `Statement`
    shape's SourcePolicyId / SourcePolicyType)."""

    def __init__(self, source_id: str, source_type: str, document: Any):
        self.source_id, self.source_type = source_id, source_type
        doc = json.loads(document) if isinstance(document, str) else document
        statements = doc.get("Statement", []) if isinstance(doc, dict) else []
        listed = [statements] if isinstance(statements, dict) else statements
        self.statements = [s for s in listed if isinstance(s, dict)]


def _statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: dict[str, list[str]], missing: set[str]
) -> bool:
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action, fold=True):
            return False
    elif not _matches(statement.get("Action"), action, fold=True):
        return False
    if "NotResource" in statement:
        if _matches(statement["NotResource"], resource, fold=False):
            return False
    elif not _matches(statement.get("Resource"), resource, fold=False):
        return False
    condition = statement.get("Condition")
    if isinstance(condition, dict) and condition:
        keys = {key for tests in condition.values() if isinstance(tests, dict) for key in tests}
        absent = {k for k in keys if k.lower() not in context}
        if absent:
            missing.update(absent)
            return False
        return _conditions_hold(condition, context)
    return True


def _conditions_hold(condition: dict[str, Any], context: dict[str, list[str]]) -> bool:
    """The string operators, enough for context entries a caller passes explicitly."""
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return False
        base = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            given = context.get(key.lower(), [])
            wanted = _listed(expected)
            if base == "StringEquals":
                ok = any(g in wanted for g in given)
            elif base == "StringNotEquals":
                ok = all(g not in wanted for g in given)
            elif base == "StringLike":
                ok = any(_matches(wanted, g, fold=False) for g in given)
            elif base == "StringNotLike":
                ok = not any(_matches(wanted, g, fold=False) for g in given)
            else:
                return False  # an operator the sandbox does not model never matches
            if not ok:
                return False
    return True


def evaluate(
    policies: list[Policy], action: str, resource: str, context: dict[str, list[str]] | None = None
) -> tuple[str, list[tuple[Policy, int]], set[str]]:
    """(decision allowed | explicitDeny | implicitDeny, matched (policy, statement index),
    missing context keys). Explicit Deny wins; matched statements are the Deny ones then,
    else the Allow ones."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    allows: list[tuple[Policy, int]] = []
    denies: list[tuple[Policy, int]] = []
    missing: set[str] = set()
    for policy in policies:
        for i, statement in enumerate(policy.statements):
            if _statement_applies(statement, action, resource, context, missing):
                (denies if statement.get("Effect") == "Deny" else allows).append((policy, i))
    if denies:
        return "explicitDeny", denies, missing
    if allows:
        return "allowed", allows, missing
    return "implicitDeny", [], missing


# ---------------------------------------------------------------- principals


def aws_managed_policy(arn: str) -> Any | None:
    """moto's `AWSManagedPolicy` for an AWS managed policy ARN, from moto's bundled
    catalogue (parsed once), or None."""
    if not arn.startswith(MANAGED_POLICY_PREFIX):
        return None
    data = _aws_managed_catalogue()
    name = arn.rsplit("/", 1)[-1]
    entry = data.get(name)
    if entry is None or f"{MANAGED_POLICY_PREFIX}{entry.get('Path', '/').lstrip('/')}{name}" != arn:
        return None
    from moto.iam.models import AWSManagedPolicy

    return AWSManagedPolicy.from_data(name, "aws", "us-east-1", entry)


@functools.lru_cache(maxsize=1)
def _aws_managed_catalogue() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def ensure_managed_policy(account: str, arn: str) -> None:
    """Make an AWS managed policy attachable in this account, as in AWS (moto only knows
    them when it loads its whole catalogue into every account, about a second each)."""
    iam = backend(account)
    if arn in iam.managed_policies:
        return
    policy = aws_managed_policy(arn)
    if policy is not None:
        iam.managed_policies[arn] = policy


def check_attach(req: AwsRequest) -> None:
    """Before moto's AttachRolePolicy / AttachUserPolicy / AttachGroupPolicy."""
    arn = req.params.get("PolicyArn")
    if isinstance(arn, str):
        ensure_managed_policy(req.account, arn)


def _document(managed: Any) -> str:
    version = next((v for v in managed.versions if v.is_default), None)
    return version.document if version is not None else managed.document


def _managed(policies: dict[str, Any]) -> list[Policy]:
    out = []
    for arn, managed in policies.items():
        kind = "aws-managed" if arn.startswith(MANAGED_POLICY_PREFIX) else "user-managed"
        out.append(Policy(arn, kind, _document(managed)))
    return out


def role_policies(account: str, role_name: str) -> list[Policy] | None:
    """The role's inline and attached managed policies, or None if there is no such role."""
    iam = backend(account)
    role = next((r for r in iam.get_roles() if r.name == role_name), None)
    if role is None:
        return None
    inline = [Policy(name, "role", doc) for name, doc in role.policies.items()]
    return inline + _managed(role.managed_policies)


def user_policies(account: str, user_name: str) -> list[Policy] | None:
    """The user's inline and attached policies and those of its groups, or None."""
    iam = backend(account)
    user = iam.users.get(user_name)
    if user is None:
        return None
    out = [Policy(name, "user", doc) for name, doc in user.policies.items()] + _managed(user.managed_policies)
    for group in iam.get_groups_for_user(user_name):
        out += [Policy(name, "group", doc) for name, doc in group.policies.items()]
        out += _managed(group.managed_policies)
    return out


ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[\w+=,.@-]+)$")
USER_ARN = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):user/(?:.*/)?(?P<name>[\w+=,.@-]+)$")


def principal_policies(arn: str) -> list[Policy] | None:
    """A role's or user's policies by ARN (None: no such principal)."""
    for pattern, lookup in ((ROLE_ARN, role_policies), (USER_ARN, user_policies)):
        match = pattern.match(arn)
        if match:
            return lookup(match["account"], match["name"])
    return None


def pull_denied(account: str, region: str, role_arn: str | None) -> str | None:
    """None when the task execution role can pull the agent image in `region`, else why
    not (for the sandbox's own log and tests; the task shows AWS's pull error)."""
    if not role_arn:
        return "no task execution role"
    match = ROLE_ARN.match(role_arn)
    if match is None or match["account"] != account:
        return f"{role_arn} is not a role of account {account}"
    policies = role_policies(account, match["name"])
    if policies is None:
        return f"{role_arn} does not exist"
    repository = agent_repository_arn(region)
    for action in PULL_ACTIONS:
        resource = "*" if action == "ecr:GetAuthorizationToken" else repository
        decision, _, _ = evaluate(policies, action, resource)
        if decision != "allowed":
            return f"{action} on {resource}: {decision}"
    return None


# ---------------------------------------------------------------- seeding

# Task execution roles the seeder and bulk seeding give task definitions (fleet-file
# `executionRole`): `pull` has the AWS managed AmazonECSTaskExecutionRolePolicy (ECR pull
# on `*`, CloudWatch Logs), `noPull` only CloudWatch Logs.
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
EXECUTION_POLICY_ARN = f"{MANAGED_POLICY_PREFIX}service-role/AmazonECSTaskExecutionRolePolicy"
LOGS_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
        ],
    }
)
SEED_ROLES = {"pull": "gec-sandbox-task-execution", "noPull": "gec-sandbox-task-execution-no-pull"}


def seed_role_arn(account: str, kind: str) -> str | None:
    return f"arn:aws:iam::{account}:role/{SEED_ROLES[kind]}" if kind in SEED_ROLES else None


def create_seed_role(client: Any, kind: str) -> None:
    """Create a seed execution role through the IAM API (boto3 `client`), once."""
    name = SEED_ROLES[kind]
    try:
        client.get_role(RoleName=name)
        return
    except client.exceptions.NoSuchEntityException:
        pass
    client.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)
    if kind == "pull":
        client.attach_role_policy(RoleName=name, PolicyArn=EXECUTION_POLICY_ARN)
    else:
        client.put_role_policy(RoleName=name, PolicyName="logs-only", PolicyDocument=LOGS_ONLY_POLICY)


def ensure_pull_role(account: str) -> str:
    """The `pull` seed role made in moto's backend directly (bulk seeding, in the server)."""
    iam = backend(account)
    name = SEED_ROLES["pull"]
    if not any(r.name == name for r in iam.get_roles()):
        iam.create_role(name, TRUST_POLICY, "/", None, "", [], None)
        ensure_managed_policy(account, EXECUTION_POLICY_ARN)
        iam.attach_role_policy(EXECUTION_POLICY_ARN, name)
    return str(seed_role_arn(account, "pull"))


# ---------------------------------------------------------------- SimulatePrincipalPolicy


class XmlResponse(tuple):
    """A handler's answer that is already a query-protocol document: (status, headers, body)."""


def _members(params: dict[str, Any], name: str) -> list[str] | None:
    """`Name.member.N` query parameters in order, or None when the list is absent."""
    found = {}
    for key, value in params.items():
        match = re.fullmatch(re.escape(name) + r"\.member\.(\d+)", key)
        if match:
            found[int(match[1])] = value
    if not found:
        return [] if name in params else None
    return [found[i] for i in sorted(found)]


def invalid_input(message: str) -> AwsError:
    return AwsError("InvalidInput", message, 400)


SUPPORTED = {"PolicySourceArn", "ActionNames", "ResourceArns", "MaxItems", "Marker", "ContextEntries"}


def simulate_principal_policy(req: AwsRequest) -> XmlResponse:
    """IAM `SimulatePrincipalPolicy` for a role or user moto knows: one EvaluationResult
    per action and resource (`ResourceArns` default `*`), paged by MaxItems (1-1000,
    default 100) / Marker (IAM API Reference: SimulatePrincipalPolicy)."""
    p = req.params
    unsupported = sorted({k.split(".", 1)[0] for k in p} - SUPPORTED - {"Version"})
    if unsupported:
        raise invalid_input(
            f"gec-sandbox does not model {', '.join(unsupported)} in SimulatePrincipalPolicy."
        )
    source = p.get("PolicySourceArn")
    if not isinstance(source, str) or not 20 <= len(source) <= 2048:
        raise invalid_input(
            "1 validation error detected: Value at 'policySourceArn' failed to satisfy constraint: "
            "Member must have length between 20 and 2048"
        )
    actions = _members(p, "ActionNames")
    if not actions:
        raise invalid_input(
            "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: "
            "Member must not be null"
        )
    for action in actions:
        if not 3 <= len(action) <= 128 or ":" not in action:
            raise invalid_input(f"Actions must be of the form service:action, got {action!r}.")
    resources = _members(p, "ResourceArns") or ["*"]
    for resource in resources:
        if not 1 <= len(resource) <= 2048:
            raise invalid_input("ResourceArns members must have length between 1 and 2048.")
    context = _context_entries(p)
    try:
        max_items = int(p.get("MaxItems", 100))
    except ValueError:
        raise invalid_input("MaxItems must be an integer.") from None
    if not 1 <= max_items <= 1000:
        raise invalid_input(
            "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: "
            "Member must have value between 1 and 1000"
        )
    start = 0
    if p.get("Marker"):
        try:
            start = int(p["Marker"].removeprefix("gec-"))
        except ValueError:
            raise invalid_input("Invalid Marker.") from None
    if not (ROLE_ARN.match(source) or USER_ARN.match(source)):
        raise invalid_input(f"Invalid ARN: {source}. Must be the ARN of a user, group or role.")
    policies = principal_policies(source)
    if policies is None:
        kind = "role" if ROLE_ARN.match(source) else "user"
        name = source.rsplit("/", 1)[-1]
        raise AwsError("NoSuchEntity", f"The {kind} with name {name} cannot be found.", 404)
    pairs = [(a, r) for a in actions for r in resources]
    chunk = pairs[start : start + max_items]
    results = []
    for action, resource in chunk:
        decision, matched, missing = evaluate(policies, action, resource, context)
        results.append(_result_xml(action, resource, decision, matched, missing))
    truncated = start + max_items < len(pairs)
    marker = f"<Marker>gec-{start + max_items}</Marker>" if truncated else ""
    body = (
        f'<SimulatePrincipalPolicyResponse xmlns="{IAM_XMLNS}">'
        "<SimulatePrincipalPolicyResult>"
        f"<EvaluationResults>{''.join(results)}</EvaluationResults>"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{marker}"
        "</SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return XmlResponse((200, [("Content-Type", "text/xml")], body.encode()))


CONTEXT_PARAM = re.compile(
    r"ContextEntries\.member\.(\d+)\.(ContextKeyName|ContextKeyType|ContextKeyValues\.member\.(\d+))"
)


def _context_entries(p: dict[str, Any]) -> dict[str, list[str]]:
    """`ContextEntries.member.N.ContextKeyName` / `.ContextKeyValues.member.M` (string values)."""
    context: dict[str, list[str]] = {}
    entries: dict[int, dict[str, Any]] = {}
    for key, value in p.items():
        match = CONTEXT_PARAM.fullmatch(key)
        if not match:
            if key.startswith("ContextEntries"):
                raise invalid_input(f"Unexpected parameter {key}.")
            continue
        entry = entries.setdefault(int(match[1]), {"values": {}})
        if match[2] == "ContextKeyName":
            entry["name"] = value
        elif match[3]:
            entry["values"][int(match[3])] = value
    for entry in entries.values():
        if "name" not in entry:
            raise invalid_input("ContextKeyName is required in each ContextEntries member.")
        context[entry["name"]] = [entry["values"][i] for i in sorted(entry["values"])]
    return context


def _result_xml(
    action: str, resource: str, decision: str, matched: list[tuple[Policy, int]], missing: set[str]
) -> str:
    statements = "".join(
        f"<member><SourcePolicyId>{escape(policy.source_id)}</SourcePolicyId>"
        f"<SourcePolicyType>{policy.source_type}</SourcePolicyType></member>"
        for policy, _ in matched
    )
    missing_xml = "".join(f"<member>{escape(k)}</member>" for k in sorted(missing))
    return (
        "<member>"
        f"<EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        f"<EvalDecision>{decision}</EvalDecision>"
        f"<MatchedStatements>{statements}</MatchedStatements>"
        f"<MissingContextValues>{missing_xml}</MissingContextValues>"
        "</member>"
    )


HANDLERS = {
    ("iam", "SimulatePrincipalPolicy"): simulate_principal_policy,
}
CHECKS = {
    ("iam", "AttachRolePolicy"): check_attach,
    ("iam", "AttachUserPolicy"): check_attach,
    ("iam", "AttachGroupPolicy"): check_attach,
}
