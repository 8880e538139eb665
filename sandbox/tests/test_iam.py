"""IAM SimulatePrincipalPolicy (moto has none) in the query protocol, its errors, faults,
and AWS managed policies attached like in AWS."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REPO = "arn:aws:ecr:us-east-1:593207742271:repository/aws-guardduty-agent-fargate"
PULL = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


@pytest.fixture
def iam(sandbox):
    return sandbox.client("iam")


def role(iam, name: str, statements: list | None = None, managed: str | None = None) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    if statements is not None:
        doc = {"Version": "2012-10-17", "Statement": statements}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(doc))
    if managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=managed)
    return arn


def decisions(iam, arn: str, actions: list[str], resources: list[str] | None = None) -> dict:
    kw = {"ResourceArns": resources} if resources else {}
    out = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions, **kw)
    assert out["IsTruncated"] is False
    return {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in out["EvaluationResults"]}


def test_simulate_allows_the_aws_managed_execution_policy(iam, sandbox):
    """IAM API reference, SimulatePrincipalPolicy (EvaluationResults, EvalDecision
    allowed, MatchedStatements with SourcePolicyType aws-managed); ECS developer guide,
    AmazonECSTaskExecutionRolePolicy (ECR pull on `*`)."""
    arn = role(iam, "exec", managed=EXECUTION_POLICY)
    out = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=PULL, ResourceArns=[REPO])
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        (a, REPO, "allowed") for a in PULL
    ]
    matched = out["EvaluationResults"][0]["MatchedStatements"]
    assert matched == [{"SourcePolicyId": EXECUTION_POLICY, "SourcePolicyType": "aws-managed"}]
    [entry] = [r for r in sandbox.requests() if r["operation"] == "SimulatePrincipalPolicy"]
    assert (entry["service"], entry["status"], entry["account"]) == ("iam", 200, ACCOUNT)
    assert entry["params"]["PolicySourceArn"] == arn
    assert entry["params"]["ActionNames.member.1"] == "ecr:GetAuthorizationToken"


def test_simulate_denies_implicitly_and_explicitly(iam):
    """IAM UG, reference_policies_evaluation-logic: no Allow = implicitDeny, a matching
    Deny = explicitDeny (and wins over an Allow); ResourceArns defaults to `*`."""
    arn = role(
        iam,
        "mixed",
        [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": REPO},
        ],
    )
    assert decisions(iam, arn, ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "s3:GetObject"], [REPO]) == {
        ("ecr:GetAuthorizationToken", REPO): "allowed",
        ("ecr:BatchGetImage", REPO): "explicitDeny",
        ("s3:GetObject", REPO): "implicitDeny",
    }
    assert decisions(iam, arn, ["ecr:BatchGetImage"]) == {("ecr:BatchGetImage", "*"): "allowed"}
    out = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ecr:BatchGetImage"], ResourceArns=[REPO])
    [result] = out["EvaluationResults"]
    assert result["MatchedStatements"] == [{"SourcePolicyId": "p", "SourcePolicyType": "role"}]


def test_simulate_reports_missing_context_values(iam):
    """IAM API reference, EvaluationResult.MissingContextValues: condition keys the policy
    tests that the request did not supply."""
    arn = role(
        iam,
        "cond",
        [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}],
    )
    [r] = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ecr:BatchGetImage"])["EvaluationResults"]
    assert r["EvalDecision"] == "implicitDeny" and r["MissingContextValues"] == ["aws:SourceVpc"]
    [r] = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["ecr:BatchGetImage"],
        ContextEntries=[{"ContextKeyName": "aws:SourceVpc", "ContextKeyValues": ["vpc-1"], "ContextKeyType": "string"}],
    )["EvaluationResults"]
    assert r["EvalDecision"] == "allowed"


def test_simulate_pages_with_max_items(iam):
    arn = role(iam, "pager", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    first = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=PULL, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    rest = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=PULL, MaxItems=2, Marker=first["Marker"])
    assert rest["IsTruncated"] is False and [r["EvalActionName"] for r in rest["EvaluationResults"]] == [PULL[2]]


def test_simulate_for_a_user_includes_group_policies(iam):
    iam.create_user(UserName="u")
    iam.create_group(GroupName="g")
    iam.add_user_to_group(UserName="u", GroupName="g")
    iam.put_group_policy(
        GroupName="g",
        PolicyName="gp",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:Get*", "Resource": "*"}]}),
    )
    arn = f"arn:aws:iam::{ACCOUNT}:user/u"
    assert decisions(iam, arn, ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]) == {
        ("ecr:GetDownloadUrlForLayer", "*"): "allowed",
        ("ecr:BatchGetImage", "*"): "implicitDeny",
    }


def test_simulate_errors_as_iam_answers_them(iam):
    """IAM API reference, SimulatePrincipalPolicy errors: NoSuchEntity (404) for an unknown
    principal, InvalidInput (400) for bad input."""
    with pytest.raises(ClientError) as excinfo:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/nobody", ActionNames=PULL)
    err = excinfo.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("NoSuchEntity", 404)
    assert err["Error"]["Message"] == "The role with name nobody cannot be found."
    with pytest.raises(ClientError) as excinfo:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:policy/not-a-principal", ActionNames=PULL)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInput"
    arn = role(iam, "r")
    with pytest.raises(ClientError) as excinfo:
        iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["no-colon"])
    assert excinfo.value.response["Error"]["Code"] == "InvalidInput"
    with pytest.raises(ClientError) as excinfo:
        iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=PULL, MaxItems=1001)
    assert excinfo.value.response["Error"]["Code"] == "InvalidInput"


def test_simulate_requires_action_names(sandbox):
    """The wire answer when ActionNames is missing (botocore refuses to send it)."""
    status, body = query(sandbox, {"Action": "SimulatePrincipalPolicy", "Version": "2010-05-08", "PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:role/x-role-name"})
    assert status == 400 and b"<Code>InvalidInput</Code>" in body
    assert b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">' in body


def query(sandbox, form: dict) -> tuple[int, bytes]:
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method="POST",
        url=sandbox.url + "/",
        data=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(boto3.Session().get_credentials(), "iam", "us-east-1").add_auth(request)
    prepared = request.prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize(
    "kind, status, code",
    [("accessDenied", 403, "AccessDenied"), ("throttle", 400, "Throttling"), ("http500", 500, "ServiceFailure"), ("http503", 503, "ServiceUnavailable")],
)
def test_iam_faults_answer_in_iam_query_xml(sandbox, kind, status, code):
    """IAM API reference, Common Errors; a fault rule must name `iam` (`*` never faults it)."""
    iam = sandbox.client("iam")
    arn = role(iam, "faulted", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    sandbox.call("POST", "faults", {"rules": [{"fault": kind}]})  # `*`: not iam
    assert decisions(iam, arn, ["ecr:BatchGetImage"]) == {("ecr:BatchGetImage", "*"): "allowed"}
    sandbox.call("POST", "faults", {"rules": [{"service": "iam", "operation": "SimulatePrincipalPolicy", "fault": kind}]})
    client = boto3.client("iam", endpoint_url=sandbox.url, region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as excinfo:
        client.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ecr:BatchGetImage"])
    err = excinfo.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
    if kind == "accessDenied":
        assert err["Error"]["Message"] == (
            f"User: arn:aws:iam::{ACCOUNT}:user/gec-sandbox is not authorized to perform: "
            f"iam:SimulatePrincipalPolicy on resource: {arn}"
        )
    status_raw, body = query(sandbox, {"Action": "SimulatePrincipalPolicy", "Version": "2010-05-08", "PolicySourceArn": arn, "ActionNames.member.1": "ecr:BatchGetImage"})
    assert status_raw == status and f"<Code>{code}</Code>".encode() in body
    logged = [r for r in sandbox.requests("iam") if r["operation"] == "SimulatePrincipalPolicy"]
    assert logged[-1]["fault"] == kind and logged[-1]["status"] == status


def test_aws_managed_policies_attach_without_loading_the_catalogue(iam):
    """IAM UG, access_policies_managed-vs-inline: AWS managed policies exist in every
    account (moto knows them only with MOTO_IAM_LOAD_MANAGED_POLICIES)."""
    role(iam, "exec", managed=EXECUTION_POLICY)
    attached = iam.list_attached_role_policies(RoleName="exec")["AttachedPolicies"]
    assert attached == [{"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": EXECUTION_POLICY}]
    with pytest.raises(ClientError) as excinfo:
        iam.attach_role_policy(RoleName="exec", PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert excinfo.value.response["Error"]["Code"] == "NoSuchEntity"
