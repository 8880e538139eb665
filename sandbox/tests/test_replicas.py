"""Two replicas, told apart by their SDK app name: the request log's `userAgent`, fault
rules that match it, and DynamoDB / EventBridge / SQS faults in their protocols' wire
formats (issue 16: a lease holder that cannot renew, a bus that fails)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

TABLE = "gec-lease"
CLIENTS: dict[tuple[str, str, str], Any] = {}


def replica(sandbox, service: str, app: str) -> Any:
    """A boto3 client of one replica (its app id in the user agent), one attempt per call."""
    key = (sandbox.url, service, app)
    if key not in CLIENTS:
        CLIENTS[key] = boto3.client(
            service,
            endpoint_url=sandbox.url,
            region_name="us-east-1",
            config=Config(user_agent_appid=app, retries={"total_max_attempts": 1, "mode": "standard"}),
        )
    return CLIENTS[key]


def set_faults(sandbox, *rules: dict, seed: int = 0) -> dict:
    return sandbox.call("POST", "faults", {"seed": seed, "rules": list(rules)})


def make_table(sandbox) -> None:
    replica(sandbox, "dynamodb", "gec-setup").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def put(client: Any, rvn: str) -> None:
    client.put_item(TableName=TABLE, Item={"key": {"S": "leader"}, "rvn": {"S": rvn}})


def send(
    sandbox,
    signing: str,
    body: str | bytes,
    headers: dict[str, str],
) -> tuple[int, dict[str, str], bytes]:
    """One signed POST / on a fresh connection: (status, lower-cased headers, raw body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="POST", url=sandbox.url + "/", data=body, headers=headers)
    SigV4Auth(boto3.Session().get_credentials(), signing, "us-east-1").add_auth(request)
    prepared = request.prepare()
    url = urlparse(sandbox.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def json_call(sandbox, signing: str, target: str, version: str, payload: dict, **headers: str):
    status, got, body = send(
        sandbox,
        signing,
        json.dumps(payload),
        {"Content-Type": f"application/x-amz-json-{version}", "X-Amz-Target": target, **headers},
    )
    return status, got, json.loads(body)


# --- the request log -----------------------------------------------------------------


def test_request_log_records_user_agent_and_the_lease_bus_and_queue_services(sandbox):
    make_table(sandbox)
    a = replica(sandbox, "dynamodb", "gec-replica-a")
    put(a, "1")
    a.get_item(TableName=TABLE, Key={"key": {"S": "leader"}}, ConsistentRead=True)
    events = replica(sandbox, "events", "gec-replica-b")
    events.put_events(Entries=[{"Source": "gec", "DetailType": "t", "Detail": "{}"}])
    sqs = replica(sandbox, "sqs", "gec-replica-b")
    sqs.create_queue(QueueName="audit")

    log = [(r["service"], r["operation"], r["status"]) for r in sandbox.requests()]
    assert log == [
        ("dynamodb", "CreateTable", 200),
        ("dynamodb", "PutItem", 200),
        ("dynamodb", "GetItem", 200),
        ("events", "PutEvents", 200),
        ("sqs", "CreateQueue", 200),
    ]
    agents = [r["userAgent"] for r in sandbox.requests()]
    assert "app/gec-setup" in agents[0] and agents[0].startswith("Boto3/")
    assert all("app/gec-replica-a" in ua for ua in agents[1:3])
    assert all("app/gec-replica-b" in ua for ua in agents[3:])
    put_item = sandbox.requests()[1]
    assert put_item["params"]["Item"] == {"key": {"S": "leader"}, "rvn": {"S": "1"}}
    assert sandbox.requests("sqs")[0]["params"] == {"QueueName": "audit"}


def test_request_log_user_agent_sources_and_bound(sandbox):
    target = "DynamoDB_20120810.ListTables"
    # the Rust SDK's second header carries the app name when User-Agent does not
    json_call(
        sandbox, "dynamodb", target, "1.0", {},
        **{"User-Agent": "aws-sdk-rust/1.3 os/linux", "x-amz-user-agent": "aws-sdk-rust/1.3 app/replica-z"},
    )
    # a User-Agent with the app name wins; a hostile one is cut to 512 printable characters
    json_call(sandbox, "dynamodb", target, "1.0", {}, **{"User-Agent": "x app/one", "x-amz-user-agent": "app/two"})
    json_call(sandbox, "dynamodb", target, "1.0", {}, **{"User-Agent": "A" * 5000 + "app/late"})
    json_call(sandbox, "dynamodb", target, "1.0", {}, **{"User-Agent": "a\tb"})
    agents = [r["userAgent"] for r in sandbox.requests()]
    assert agents[:2] == ["aws-sdk-rust/1.3 app/replica-z", "x app/one"]
    assert agents[2] == "A" * 512
    assert agents[3] == "a?b"


def test_sqs_in_the_query_protocol_is_logged_and_faulted_in_xml(sandbox):
    form = "Action=CreateQueue&QueueName=audit&Version=2012-11-05"
    ctype = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, _, body = send(sandbox, "sqs", form, ctype)
    assert status == 200, body
    entry = sandbox.requests()[-1]
    assert (entry["service"], entry["operation"], entry["params"]) == ("sqs", "CreateQueue", {"QueueName": "audit"})

    set_faults(sandbox, {"service": "sqs", "fault": "throttle"})
    status, headers, body = send(sandbox, "sqs", form, ctype)
    assert status == 400 and headers["content-type"] == "text/xml"
    assert b'<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">' in body
    assert b"<Code>RequestThrottled</Code>" in body and b"<Type>Sender</Type>" in body


# --- fault rules per replica ------------------------------------------------------------


def test_a_fault_rule_for_one_user_agent_spares_the_other_replica(sandbox):
    make_table(sandbox)
    a = replica(sandbox, "dynamodb", "gec-replica-a")
    b = replica(sandbox, "dynamodb", "gec-replica-b")
    answer = set_faults(sandbox, {"service": "dynamodb", "userAgent": "app/gec-replica-a", "fault": "throttle"})
    assert answer["rules"][0]["userAgent"] == "app/gec-replica-a"
    for round in range(3):
        with pytest.raises(ClientError) as excinfo:
            put(a, f"a{round}")
        assert excinfo.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        put(b, f"b{round}")
    item = b.get_item(TableName=TABLE, Key={"key": {"S": "leader"}}, ConsistentRead=True)["Item"]
    assert item["rvn"] == {"S": "b2"}  # replica A wrote nothing
    faulted = [(r["userAgent"], r["operation"]) for r in sandbox.requests() if r.get("fault")]
    assert len(faulted) == 3 and all("app/gec-replica-a" in ua and op == "PutItem" for ua, op in faulted)
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == 3


def test_star_rules_never_fault_dynamodb_events_or_sqs(sandbox):
    make_table(sandbox)
    set_faults(sandbox, {"service": "*", "fault": "http500"})
    put(replica(sandbox, "dynamodb", "gec-replica-a"), "1")
    replica(sandbox, "events", "gec-replica-a").put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}"}])
    replica(sandbox, "sqs", "gec-replica-a").create_queue(QueueName="q")
    assert all(r["status"] == 200 and "fault" not in r for r in sandbox.requests())


@pytest.mark.parametrize("bad", [{"userAgent": 7}, {"userAgent": "x" * 257}, {"service": "s3"}])
def test_bad_user_agent_or_service_rules_are_refused(sandbox, bad):
    set_faults(sandbox, {"service": "ecs", "fault": "throttle"})
    with pytest.raises(Exception) as excinfo:
        set_faults(sandbox, {"service": "dynamodb", "fault": "throttle", **bad})
    assert getattr(excinfo.value, "code", None) == 400
    assert sandbox.call("GET", "faults")["rules"][0]["service"] == "ecs"  # old set kept


# --- wire formats -------------------------------------------------------------------------

DDB_NS = "com.amazonaws.dynamodb.v20120810#"


@pytest.mark.parametrize(
    "kind, operation, status, code, type_",
    [
        ("throttle", "PutItem", 400, "ProvisionedThroughputExceededException", DDB_NS + "ProvisionedThroughputExceededException"),
        ("throttle", "DescribeTable", 400, "ThrottlingException", DDB_NS + "ThrottlingException"),
        ("http500", "UpdateItem", 500, "InternalServerError", DDB_NS + "InternalServerError"),
        ("http503", "GetItem", 503, "ServiceUnavailable", "com.amazon.coral.service#ServiceUnavailable"),
        ("accessDenied", "DeleteItem", 400, "AccessDeniedException", "com.amazon.coral.service#AccessDeniedException"),
    ],
)
def test_dynamodb_faults_in_json_1_0(sandbox, kind, operation, status, code, type_):
    make_table(sandbox)
    set_faults(sandbox, {"service": "dynamodb", "operation": operation, "fault": kind})
    payload = {"TableName": TABLE, "Key": {"key": {"S": "leader"}}, "Item": {"key": {"S": "leader"}}}
    got_status, headers, body = json_call(sandbox, "dynamodb", f"DynamoDB_20120810.{operation}", "1.0", payload)
    assert got_status == status
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amzn-errortype"] == code and body["__type"] == type_ and body["message"]
    if code == "ProvisionedThroughputExceededException":
        assert body["ThrottlingReasons"] == [
            {"reason": "TableWriteKeyRangeThroughputExceeded",
             "resource": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"}
        ]
    if kind == "accessDenied":
        assert f"dynamodb:{operation} on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}" in body["message"]
    # boto3 reads the same code (the namespace dropped)
    client = replica(sandbox, "dynamodb", "x")
    calls = {
        "PutItem": lambda: client.put_item(TableName=TABLE, Item=payload["Item"]),
        "DescribeTable": lambda: client.describe_table(TableName=TABLE),
        "UpdateItem": lambda: client.update_item(TableName=TABLE, Key=payload["Key"]),
        "GetItem": lambda: client.get_item(TableName=TABLE, Key=payload["Key"]),
        "DeleteItem": lambda: client.delete_item(TableName=TABLE, Key=payload["Key"]),
    }
    with pytest.raises(ClientError) as excinfo:
        calls[operation]()
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(
    "service, kind, status, code",
    [
        ("events", "throttle", 400, "ThrottlingException"),
        ("events", "http500", 500, "InternalException"),
        ("events", "http503", 503, "ServiceUnavailable"),
        ("events", "accessDenied", 400, "AccessDeniedException"),
        ("sqs", "throttle", 400, "RequestThrottled"),
        ("sqs", "http500", 500, "InternalFailure"),
        ("sqs", "accessDenied", 400, "AccessDeniedException"),
    ],
)
def test_eventbridge_and_sqs_faults_in_their_json_protocols(sandbox, service, kind, status, code):
    set_faults(sandbox, {"service": service, "fault": kind})
    if service == "events":
        target, version = "AWSEvents.PutEvents", "1.1"
        payload = {"Entries": [{"Source": "gec", "DetailType": "t", "Detail": "{}", "EventBusName": "audit"}]}
    else:
        target, version, payload = "AmazonSQS.CreateQueue", "1.0", {"QueueName": "q"}
    got_status, headers, body = json_call(sandbox, service, target, version, payload)
    assert got_status == status
    assert headers["content-type"] == f"application/x-amz-json-{version}"
    assert headers["x-amzn-errortype"] == code and body["__type"] == code and body["message"]
    if service == "sqs":
        assert headers["x-amzn-query-error"] == f"{code};{'Receiver' if status >= 500 else 'Sender'}"
    if service == "events" and kind == "accessDenied":
        assert "events:PutEvents on resource: arn:aws:events:us-east-1:123456789012:event-bus/audit" in body["message"]
    with pytest.raises(ClientError) as excinfo:
        if service == "events":
            replica(sandbox, "events", "x").put_events(Entries=payload["Entries"])
        else:
            replica(sandbox, "sqs", "x").create_queue(QueueName="q")
    assert excinfo.value.response["Error"]["Code"] == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_reset_fault_drops_a_dynamodb_request_and_writes_nothing(sandbox):
    make_table(sandbox)
    a = replica(sandbox, "dynamodb", "gec-replica-a")
    set_faults(sandbox, {"service": "dynamodb", "operation": "PutItem", "userAgent": "gec-replica-a", "fault": "reset"})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        put(a, "1")
    assert "Item" not in a.get_item(TableName=TABLE, Key={"key": {"S": "leader"}}, ConsistentRead=True)
    puts = [r for r in sandbox.requests() if r["operation"] == "PutItem"]
    assert [(r["status"], r["fault"]) for r in puts] == [(0, "reset")]


def test_delay_fault_holds_one_replicas_write_while_the_other_goes_on(sandbox):
    """A delayed write is executed after the wait: the other replica's write, sent meanwhile,
    is executed (and logged) first — the lease's conditional write then decides."""
    make_table(sandbox)
    a = replica(sandbox, "dynamodb", "gec-replica-a")
    b = replica(sandbox, "dynamodb", "gec-replica-b")
    set_faults(
        sandbox,
        {"service": "dynamodb", "operation": "PutItem", "userAgent": "gec-replica-a", "fault": "delay", "delaySeconds": 3.0},
    )
    thread = threading.Thread(target=put, args=(a, "a"))
    thread.start()
    # the rule's counter is taken when A's request arrives, before its wait
    while sandbox.call("GET", "faults")["rules"][0]["injected"] == 0:
        time.sleep(0.02)
    put(b, "b")
    thread.join(timeout=30)
    puts = [(r["userAgent"], r.get("fault")) for r in sandbox.requests() if r["operation"] == "PutItem"]
    assert len(puts) == 2
    assert "app/gec-replica-b" in puts[0][0] and puts[0][1] is None
    assert "app/gec-replica-a" in puts[1][0] and puts[1][1] == "delay"
    item = b.get_item(TableName=TABLE, Key={"key": {"S": "leader"}}, ConsistentRead=True)["Item"]
    assert item["rvn"] == {"S": "a"}
