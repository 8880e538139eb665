"""Fault injection (`/_sandbox/faults`): wire formats of each fault kind, seeded
fractions, counts, failArns partial application, and faulted writes changing nothing.
boto3 clients here make one attempt per call, so each call is one request."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.error
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError

ACCOUNT = "123456789012"
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
TAGGING_TARGET = "ResourceGroupsTaggingAPI_20170126."
ONE_ATTEMPT: dict[tuple[str, str], Any] = {}


def client(sandbox, service: str) -> Any:
    """A boto3 client without retries (cached: creating one is slow)."""
    key = (sandbox.url, service)
    if key not in ONE_ATTEMPT:
        ONE_ATTEMPT[key] = boto3.client(
            service,
            endpoint_url=sandbox.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
    return ONE_ATTEMPT[key]


def set_faults(sandbox, *rules: dict, seed: int = 0) -> dict:
    return sandbox.call("POST", "faults", {"seed": seed, "rules": list(rules)})


def send(
    sandbox,
    signing: str,
    method: str,
    path: str,
    payload: Any = None,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One signed request on a fresh connection: (status, lower-cased headers, JSON body).
    A dropped connection raises (http.client.RemoteDisconnected / ConnectionResetError)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    all_headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/json"}
    if target:
        all_headers["X-Amz-Target"] = target
    all_headers.update(headers or {})
    data = json.dumps(payload) if payload is not None else None
    request = AWSRequest(method=method, url=sandbox.url + path, data=data, headers=all_headers)
    SigV4Auth(boto3.Session().get_credentials(), signing, "us-east-1").add_auth(request)
    prepared = request.prepare()
    url = urlparse(sandbox.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, body=prepared.body, headers=dict(prepared.headers))
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(body) if body else None
    finally:
        conn.close()


def ecs_call(sandbox, operation: str, payload: dict, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return send(sandbox, "ecs", "POST", "/", payload, target=ECS_TARGET + operation, **kw)


def log(sandbox) -> list[tuple[str, str, Any, Any]]:
    return [(r["service"], r["operation"], r["status"], r.get("fault")) for r in sandbox.requests()]


def error_code(excinfo) -> tuple[str, int]:
    resp = excinfo.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]


# --- wire formats, one kind at a time -------------------------------------------------


@pytest.mark.parametrize(
    "kind, ecs_status, gd_status, code",
    [
        ("throttle", 400, 429, None),  # code differs per protocol, checked below
        ("http500", 500, 500, "InternalServerError"),
        ("http503", 503, 503, "ServiceUnavailable"),
        ("accessDenied", 400, 403, "AccessDeniedException"),
    ],
)
def test_error_faults_answer_in_each_protocols_wire_format(sandbox, kind, ecs_status, gd_status, code):
    set_faults(sandbox, {"service": "*", "operation": "*", "fault": kind})
    ecs_code = code or "ThrottlingException"
    gd_code = code or "TooManyRequestsException"
    for status, headers, body, want_status, want_code, ctype in [
        (*ecs_call(sandbox, "ListClusters", {}), ecs_status, ecs_code, "application/x-amz-json-1.1"),
        (*send(sandbox, "tagging", "POST", "/", {}, target=TAGGING_TARGET + "GetResources"),
         ecs_status, ecs_code, "application/x-amz-json-1.1"),
        (*send(sandbox, "guardduty", "GET", "/detector"), gd_status, gd_code, "application/json"),
    ]:
        assert status == want_status
        assert headers["x-amzn-errortype"] == want_code and headers["content-type"] == ctype
        assert body["__type"] == want_code and body["message"]
    if kind == "throttle":
        assert body["message"] == "Rate exceeded"
    # boto3 reads the same codes
    with pytest.raises(ClientError) as excinfo:
        client(sandbox, "ecs").list_clusters()
    assert error_code(excinfo) == (ecs_code, ecs_status)
    with pytest.raises(ClientError) as excinfo:
        client(sandbox, "guardduty").list_detectors()
    assert error_code(excinfo) == (gd_code, gd_status)
    assert log(sandbox) == [
        ("ecs", "ListClusters", ecs_status, kind),
        ("tagging", "GetResources", ecs_status, kind),
        ("guardduty", "ListDetectors", gd_status, kind),
        ("ecs", "ListClusters", ecs_status, kind),
        ("guardduty", "ListDetectors", gd_status, kind),
    ]


def test_reset_drops_the_connection_without_a_response(sandbox):
    set_faults(sandbox, {"service": "ecs", "operation": "CreateCluster", "fault": "reset", "count": 2})
    with pytest.raises(ConnectionError):  # RemoteDisconnected or ConnectionResetError: no HTTP bytes
        ecs_call(sandbox, "CreateCluster", {"clusterName": "c"})
    with pytest.raises(HTTPClientError):  # botocore: ConnectionClosedError
        client(sandbox, "ecs").create_cluster(clusterName="c")
    assert ecs_call(sandbox, "ListClusters", {})[2] == {"clusterArns": []}  # the server goes on
    assert log(sandbox) == [
        ("ecs", "CreateCluster", 0, "reset"),
        ("ecs", "CreateCluster", 0, "reset"),
        ("ecs", "ListClusters", 200, None),
    ]


def test_delay_answers_normally_after_the_wait_without_blocking_others(sandbox):
    set_faults(sandbox, {"service": "ecs", "operation": "CreateCluster", "fault": "delay", "delaySeconds": 0.6})
    ecs, gd = client(sandbox, "ecs"), client(sandbox, "guardduty")
    result: dict[str, Any] = {}

    def slow() -> None:
        started = time.monotonic()
        result["cluster"] = ecs.create_cluster(clusterName="slow")["cluster"]["clusterName"]
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    while sandbox.call("GET", "faults")["rules"][0]["injected"] == 0:  # the delay has begun
        time.sleep(0.01)
    started = time.monotonic()
    gd.list_detectors()
    assert time.monotonic() - started < 0.4  # not held up by the delayed request
    thread.join(timeout=5)
    assert result["cluster"] == "slow" and result["seconds"] >= 0.6
    # recorded (and executed) after its wait
    assert log(sandbox) == [("guardduty", "ListDetectors", 200, None), ("ecs", "CreateCluster", 200, "delay")]


def test_fail_arns_fails_those_arns_and_applies_the_others(sandbox):
    ecs, tagging = client(sandbox, "ecs"), client(sandbox, "resourcegroupstaggingapi")
    a, b, c = (ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"] for n in "abc")
    set_faults(sandbox, {"service": "tagging", "operation": "*", "fault": "failArns", "arns": [b], "count": 2})

    assert tagging.tag_resources(ResourceARNList=[a], Tags={"k": "v"})["FailedResourcesMap"] == {}
    failed = tagging.tag_resources(ResourceARNList=[a, b, c], Tags={"GuardDutyManaged": "true"})
    failed = failed["FailedResourcesMap"]
    assert set(failed) == {b} and failed[b].pop("ErrorMessage")
    assert failed[b] == {"StatusCode": 500, "ErrorCode": "InternalServiceException"}

    def tags(arn: str) -> dict:
        return {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])}

    assert tags(a) == {"k": "v", "GuardDutyManaged": "true"} and tags(c) == {"GuardDutyManaged": "true"}
    assert tags(b) == {}
    failed = tagging.untag_resources(ResourceARNList=[a, b], TagKeys=["k"])["FailedResourcesMap"]
    assert set(failed) == {b} and tags(a) == {"GuardDutyManaged": "true"}
    # count used up: b is tagged now
    assert tagging.tag_resources(ResourceARNList=[b], Tags={"k": "v"})["FailedResourcesMap"] == {}
    assert tags(b) == {"k": "v"}
    assert [r for r in log(sandbox) if r[0] == "tagging"] == [
        ("tagging", "TagResources", 200, None),  # b not named: no fault, count kept
        ("tagging", "TagResources", 200, "failArns"),
        ("tagging", "UntagResources", 200, "failArns"),
        ("tagging", "TagResources", 200, None),
    ]
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == 2


# --- faulted writes change nothing -----------------------------------------------------


@pytest.mark.parametrize("kind", ["throttle", "http500", "http503", "accessDenied", "reset"])
def test_faulted_writes_change_no_state(sandbox, kind):
    ecs, gd = client(sandbox, "ecs"), client(sandbox, "guardduty")
    tagging = client(sandbox, "resourcegroupstaggingapi")
    arn = ecs.create_cluster(clusterName="keep")["cluster"]["clusterArn"]
    detector = gd.create_detector(Enable=True)["DetectorId"]
    set_faults(sandbox, {"service": "*", "operation": "*", "fault": kind})
    for write in (
        lambda: ecs.create_cluster(clusterName="new"),
        lambda: ecs.delete_cluster(cluster="keep"),
        lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}]),
        lambda: tagging.tag_resources(ResourceARNList=[arn], Tags={"GuardDutyManaged": "true"}),
        lambda: gd.update_detector(
            DetectorId=detector, Features=[{"Name": "RUNTIME_MONITORING", "Status": "ENABLED"}]
        ),
        lambda: gd.create_detector(Enable=True),
    ):
        with pytest.raises((ClientError, HTTPClientError)):
            write()
    assert {r[3] for r in log(sandbox)[2:]} == {kind} and len(log(sandbox)) == 8
    set_faults(sandbox)
    assert ecs.list_clusters()["clusterArns"] == [arn]
    assert ecs.list_tags_for_resource(resourceArn=arn).get("tags", []) == []
    assert gd.list_detectors()["DetectorIds"] == [detector]
    runtime = [f for f in gd.get_detector(DetectorId=detector)["Features"] if f["Name"] == "RUNTIME_MONITORING"]
    assert runtime[0]["Status"] == "DISABLED"


# --- rule selection: seed, fraction, count, order -------------------------------------


def faulted_calls(sandbox, seed: int, n: int = 40) -> list[int]:
    sandbox.call("DELETE", "requests")
    set_faults(sandbox, {"service": "ecs", "operation": "ListClusters", "fault": "throttle", "fraction": 0.3},
               seed=seed)
    ecs = client(sandbox, "ecs")
    out = []
    for i in range(n):
        try:
            ecs.list_clusters()
        except ClientError:
            out.append(i)
    assert [i for i, r in enumerate(log(sandbox)) if r[3] == "throttle"] == out
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == len(out)
    return out


def test_fraction_draws_from_the_seed(sandbox):
    first = faulted_calls(sandbox, 42)
    rng = random.Random(42)  # one draw per matching request
    assert first == [i for i in range(40) if rng.random() < 0.3]
    assert 0 < len(first) < 40
    assert faulted_calls(sandbox, 42) == first  # same seed, same requests
    assert faulted_calls(sandbox, 7) != first


def test_count_is_used_up_and_rules_apply_in_order(sandbox):
    set_faults(
        sandbox,
        {"service": "ecs", "operation": "ListClusters", "fault": "throttle", "count": 2},
        {"service": "ecs", "operation": "*", "fault": "http503", "count": 1},
        {"service": "guardduty", "operation": "*", "fault": "http500", "count": 0},
    )
    ecs, gd = client(sandbox, "ecs"), client(sandbox, "guardduty")
    codes = []
    for call in [ecs.list_clusters] * 4 + [gd.list_detectors]:
        try:
            call()
            codes.append("ok")
        except ClientError as err:
            codes.append(err.response["Error"]["Code"])
    assert codes == ["ThrottlingException", "ThrottlingException", "ServiceUnavailable", "ok", "ok"]
    assert [r["injected"] for r in sandbox.call("GET", "faults")["rules"]] == [2, 1, 0]


def test_seeding_and_control_requests_are_never_faulted(sandbox):
    set_faults(sandbox, {"service": "*", "operation": "*", "fault": "throttle"})
    status, _, body = ecs_call(sandbox, "CreateCluster", {"clusterName": "seeded"},
                               headers={"x-gec-sandbox-no-log": "1"})
    assert status == 200 and body["cluster"]["clusterName"] == "seeded"
    assert sandbox.call("GET", "requests") == []
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1")
    assert sts.get_caller_identity()["Account"] == ACCOUNT  # other services are not faulted
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == 0


# --- the control endpoint --------------------------------------------------------------


def test_faults_endpoint_replaces_describes_and_clears(sandbox):
    rules = [
        {"service": "ecs", "operation": "TagResource", "fault": "delay", "delaySeconds": 15},
        {"service": "tagging", "operation": "TagResources", "fault": "failArns", "arns": ["arn:x"], "count": 3,
         "fraction": 0.5},
    ]
    assert sandbox.call("POST", "faults", {"seed": 42, "rules": rules}) == {
        "seed": 42,
        "rules": [
            {**rules[0], "fraction": 1.0, "delaySeconds": 15.0, "injected": 0},
            {**rules[1], "injected": 0},
        ],
    }
    assert sandbox.call("GET", "faults")["seed"] == 42
    assert sandbox.call("POST", "faults", {"rules": []}) == {"seed": 0, "rules": []}
    set_faults(sandbox, {"fault": "throttle"})
    assert sandbox.call("GET", "faults")["rules"] == [
        {"service": "*", "operation": "*", "fault": "throttle", "fraction": 1.0, "injected": 0}
    ]
    sandbox.call("POST", "reset")
    assert sandbox.call("GET", "faults")["rules"] == []


@pytest.mark.parametrize(
    "rule",
    [
        {"fault": "explode"},
        {"service": "s3", "fault": "throttle"},
        {"service": "sts", "fault": "failArns", "arns": ["arn:x"]},
        {"fault": "throttle", "account": "1234"},
        {"fault": "throttle", "account": 123456789012},
        {"fault": "throttle", "params": ["RoleArn"]},
        {"fault": "throttle", "colour": "red"},
        {"fault": "throttle", "fraction": 1.5},
        {"fault": "throttle", "count": -1},
        {"fault": "delay"},
        {"fault": "throttle", "delaySeconds": 1},
        {"service": "ecs", "fault": "failArns", "arns": ["arn:x"]},
        {"service": "tagging", "operation": "GetResources", "fault": "failArns", "arns": ["arn:x"]},
        {"service": "tagging", "fault": "failArns", "arns": []},
    ],
)
def test_invalid_rules_are_rejected_and_keep_the_old_set(sandbox, rule):
    set_faults(sandbox, {"fault": "http500", "count": 1})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        sandbox.call("POST", "faults", {"rules": [rule]})
    assert excinfo.value.code == 400
    assert [r["fault"] for r in sandbox.call("GET", "faults")["rules"]] == ["http500"]


def test_a_region_rule_faults_only_that_region(sandbox):
    """One target down, the others up: the daemon's isolation test relies on it."""
    set_faults(sandbox, {"region": "eu-west-1", "fault": "http503"})
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    kw = dict(endpoint_url=sandbox.url, config=cfg)
    boto3.client("ecs", region_name="us-east-1", **kw).list_clusters()
    with pytest.raises(ClientError) as err:
        boto3.client("ecs", region_name="eu-west-1", **kw).list_clusters()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert set_faults(sandbox)["rules"] == []


# --- one account down: rules scoped by account and request parameters -------------------

ROLE_A = "arn:aws:iam::111111111111:role/gec"
ROLE_C = "arn:aws:iam::333333333333:role/gec"


def assume_role(sandbox, role_arn: str) -> tuple[int, dict[str, str], bytes]:
    """One signed STS AssumeRole (query protocol): (status, lower-cased headers, raw body)."""
    from urllib.parse import urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    body = urlencode({"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role_arn,
                      "RoleSessionName": "test"})
    request = AWSRequest(method="POST", url=sandbox.url + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(boto3.Session().get_credentials(), "sts", "us-east-1").add_auth(request)
    prepared = request.prepare()
    url = urlparse(sandbox.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_params_rule_denies_assume_role_of_one_role_only(sandbox):
    rule = {"service": "sts", "operation": "AssumeRole", "params": {"RoleArn": ROLE_C}, "fault": "accessDenied"}
    assert set_faults(sandbox, rule)["rules"] == [{**rule, "fraction": 1.0, "injected": 0}]
    status, _, body = assume_role(sandbox, ROLE_C)
    assert status == 403 and b"AccessDenied" in body
    assert f"sts:AssumeRole on resource: {ROLE_C}".encode() in body
    status, _, body = assume_role(sandbox, ROLE_A)  # another role of the same call: assumed
    assert status == 200 and b"<AccessKeyId>" in body
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1")
    assert sts.get_caller_identity()["Account"] == ACCOUNT  # other STS calls: not matched
    assert [(r["service"], r["operation"], r["status"], r.get("fault"), r["params"].get("RoleArn"))
            for r in sandbox.requests()] == [
        ("sts", "AssumeRole", 403, "accessDenied", ROLE_C),
        ("sts", "AssumeRole", 200, None, ROLE_A),
        ("sts", "GetCallerIdentity", 200, None, None),
    ]
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == 1


def test_sts_fault_answers_are_in_the_query_protocols_xml(sandbox):
    set_faults(sandbox, {"service": "sts", "operation": "AssumeRole", "params": {"RoleArn": ROLE_C},
                         "fault": "accessDenied"})
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1",
                       config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn=ROLE_C, RoleSessionName="boto3")
    assert error_code(excinfo) == ("AccessDenied", 403)


@pytest.mark.parametrize(
    "kind, status, code",
    [("throttle", 400, "Throttling"), ("http500", 500, "InternalFailure"), ("http503", 503, "ServiceUnavailable")],
)
def test_sts_faults_use_sts_error_codes(sandbox, kind, status, code):
    set_faults(sandbox, {"service": "sts", "operation": "AssumeRole", "fault": kind})
    got_status, _, body = assume_role(sandbox, ROLE_A)
    assert got_status == status and code.encode() in body


def test_an_account_rule_faults_only_requests_acting_in_that_account(sandbox):
    other = sandbox.client("ecs", account="111111111111")  # assumed before the rule
    set_faults(sandbox, {"service": "ecs", "account": "111111111111", "fault": "throttle"})
    with pytest.raises(ClientError) as excinfo:
        other.list_clusters()
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert client(sandbox, "ecs").list_clusters()["clusterArns"] == []
    assert [(r["account"], r.get("fault")) for r in sandbox.requests("ecs")][-2:] == [
        ("111111111111", "throttle"),
        (ACCOUNT, None),
    ]


def test_a_params_rule_matches_json_values_exactly(sandbox):
    ecs = client(sandbox, "ecs")
    set_faults(sandbox, {"service": "ecs", "operation": "CreateCluster", "params": {"clusterName": "b"},
                         "fault": "http500"})
    ecs.create_cluster(clusterName="a")
    with pytest.raises(ClientError):
        ecs.create_cluster(clusterName="b")
    ecs.list_clusters()  # no clusterName param: not matched
    assert [r.get("fault") for r in sandbox.requests("ecs")] == [None, "http500", None]
