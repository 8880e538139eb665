"""The services of issue 16 as strict as AWS: DynamoDB conditional writes (the lease's
record-version-number protocol), EventBridge PutEvents limits and per-entry failures, and
a rule's delivery to an SQS queue (the whole event, `detail` an object)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from test_replicas import json_call

TABLE = "gec-lease"
ACCOUNT = "123456789012"
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"})
CLIENTS: dict[tuple[str, str], Any] = {}


def client(sandbox, service: str) -> Any:
    key = (sandbox.url, service)
    if key not in CLIENTS:
        CLIENTS[key] = boto3.client(service, endpoint_url=sandbox.url, region_name="us-east-1", config=ONE_ATTEMPT)
    return CLIENTS[key]


# --- DynamoDB: the lease's conditional writes ----------------------------------------------


@pytest.fixture
def table(sandbox) -> Any:
    ddb = client(sandbox, "dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def item(ddb: Any) -> dict[str, Any] | None:
    return ddb.get_item(TableName=TABLE, Key={"key": {"S": "leader"}}, ConsistentRead=True).get("Item")


def acquire(ddb: Any, owner: str, rvn: str, **kw: Any) -> None:
    ddb.put_item(
        TableName=TABLE,
        Item={"key": {"S": "leader"}, "owner": {"S": owner}, "rvn": {"S": rvn}},
        ConditionExpression="attribute_not_exists(#k)",
        ExpressionAttributeNames={"#k": "key"},
        **kw,
    )


def test_put_item_attribute_not_exists_lets_exactly_one_contender_in(sandbox, table):
    acquire(table, "a", "1")
    with pytest.raises(ClientError) as excinfo:
        acquire(table, "b", "2", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    resp = excinfo.value.response
    assert resp["Error"]["Code"] == "ConditionalCheckFailedException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400
    # ALL_OLD: the item that made the condition fail comes back with the error
    assert resp["Item"] == {"key": {"S": "leader"}, "owner": {"S": "a"}, "rvn": {"S": "1"}}
    assert item(table)["owner"] == {"S": "a"}
    # without ReturnValuesOnConditionCheckFailure the error carries no item
    with pytest.raises(ClientError) as excinfo:
        acquire(table, "b", "2")
    assert "Item" not in excinfo.value.response


def test_update_and_delete_conditioned_on_the_record_version_number(sandbox, table):
    acquire(table, "a", "1")

    def renew(old: str, new: str, owner: str) -> dict[str, Any]:
        return table.update_item(
            TableName=TABLE,
            Key={"key": {"S": "leader"}},
            UpdateExpression="SET rvn = :new, #o = :owner",
            ConditionExpression="rvn = :old",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":new": {"S": new}, ":old": {"S": old}, ":owner": {"S": owner}},
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    assert renew("1", "2", "a")["Attributes"]["rvn"] == {"S": "2"}
    # a contender that saw version 1 takes over too late: refused, the holder's item unchanged
    with pytest.raises(ClientError) as excinfo:
        renew("1", "3", "b")
    assert excinfo.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert excinfo.value.response["Item"]["rvn"] == {"S": "2"}
    assert item(table)["owner"] == {"S": "a"}
    # release only while still the holder
    with pytest.raises(ClientError) as excinfo:
        table.delete_item(
            TableName=TABLE, Key={"key": {"S": "leader"}},
            ConditionExpression="rvn = :v", ExpressionAttributeValues={":v": {"S": "1"}},
        )
    assert excinfo.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    table.delete_item(
        TableName=TABLE, Key={"key": {"S": "leader"}},
        ConditionExpression="rvn = :v", ExpressionAttributeValues={":v": {"S": "2"}},
    )
    assert item(table) is None
    # an update with attribute_exists on a missing item fails rather than creating it
    with pytest.raises(ClientError) as excinfo:
        table.update_item(
            TableName=TABLE, Key={"key": {"S": "leader"}}, UpdateExpression="SET rvn = :n",
            ConditionExpression="attribute_exists(rvn)", ExpressionAttributeValues={":n": {"S": "9"}},
        )
    assert excinfo.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert item(table) is None


def test_dynamodb_errors_are_json_1_0_with_the_dynamodb_namespace(sandbox, table):
    acquire(table, "a", "1")
    status, headers, body = json_call(
        sandbox, "dynamodb", "DynamoDB_20120810.PutItem", "1.0",
        {"TableName": TABLE, "Item": {"key": {"S": "leader"}}, "ConditionExpression": "attribute_not_exists(rvn)"},
    )
    assert status == 400
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    status, _, body = json_call(sandbox, "dynamodb", "DynamoDB_20120810.GetItem", "1.0",
                                {"TableName": "missing", "Key": {"key": {"S": "x"}}})
    assert status == 400 and body["__type"].endswith("#ResourceNotFoundException")


# --- EventBridge PutEvents ------------------------------------------------------------------


@pytest.fixture
def bus(sandbox) -> dict[str, Any]:
    """Bus `gec-audit` with a rule for source `gec` delivering to queue `audit`."""
    events, sqs = client(sandbox, "events"), client(sandbox, "sqs")
    events.create_event_bus(Name="gec-audit")
    url = sqs.create_queue(QueueName="audit")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="gec-audit", EventPattern=json.dumps({"source": [{"prefix": "gec"}]}))
    events.put_targets(Rule="all", EventBusName="gec-audit", Targets=[{"Id": "q", "Arn": arn}])
    return {"events": events, "sqs": sqs, "url": url}


def drain(bus: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    while True:
        got = bus["sqs"].receive_message(QueueUrl=bus["url"], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            bus["sqs"].delete_message(QueueUrl=bus["url"], ReceiptHandle=m["ReceiptHandle"])


def entry(**kw: Any) -> dict[str, Any]:
    return {"Source": "gec.controller", "DetailType": "Write", "Detail": json.dumps({"n": 1}),
            "EventBusName": "gec-audit", **kw}


def test_a_rule_delivers_the_whole_event_to_sqs(sandbox, bus):
    detail = {"target": "prod", "from": None, "to": {"GuardDutyManaged": "true"}, "n": [1, 2]}
    out = bus["events"].put_events(Entries=[
        entry(Detail=json.dumps(detail), DetailType='say "hi"', Resources=["arn:aws:ecs:us-east-1:123456789012:cluster/x"]),
    ])
    assert out["FailedEntryCount"] == 0
    [event] = drain(bus)
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert event["version"] == "0" and event["id"] == out["Entries"][0]["EventId"]
    assert event["detail-type"] == 'say "hi"' and event["source"] == "gec.controller"
    assert event["account"] == ACCOUNT and event["region"] == "us-east-1"
    assert event["resources"] == ["arn:aws:ecs:us-east-1:123456789012:cluster/x"]
    assert event["detail"] == detail  # an object, not a string
    assert len(event["time"]) == 20 and event["time"].endswith("Z")  # 2026-01-01T00:00:00Z


def test_put_events_answers_in_json_1_1(sandbox, bus):
    status, headers, body = json_call(sandbox, "events", "AWSEvents.PutEvents", "1.1", {"Entries": [entry()]})
    assert status == 200 and headers["content-type"] == "application/x-amz-json-1.1"
    assert body["FailedEntryCount"] == 0 and set(body["Entries"][0]) == {"EventId"}


@pytest.mark.parametrize("count", [0, 11])
def test_put_events_takes_one_to_ten_entries(sandbox, bus, count):
    status, _, body = json_call(sandbox, "events", "AWSEvents.PutEvents", "1.1", {"Entries": [entry()] * count})
    assert status == 400 and body["__type"] == "ValidationException"
    assert "at 'entries' failed to satisfy constraint" in body["message"]
    assert drain(bus) == []
    assert len(bus["events"].put_events(Entries=[entry()] * 10)["Entries"]) == 10
    assert len(drain(bus)) == 10


def test_put_events_total_entry_size_at_most_256_kib(sandbox, bus):
    def sized(total: int) -> list[dict[str, Any]]:
        # two entries; size = Source + DetailType + Detail bytes (+ 14 for Time), "é" is 2 bytes
        first = entry(Time=1700000000, Detail=json.dumps({"x": "é"}))
        fixed = 14 + len("gec.controller") + len("Write") + len(first["Detail"].encode())
        pad = total - fixed - len("gec.controller") - len("Write") - len('{"x": ""}')
        return [first, entry(Detail=json.dumps({"x": "a" * pad}))]

    assert bus["events"].put_events(Entries=sized(256 * 1024))["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as excinfo:
        bus["events"].put_events(Entries=sized(256 * 1024 + 1))
    err = excinfo.value.response["Error"]
    assert err == {"Code": "ValidationException", "Message": "Total size of the entries in the request is over the limit."}
    assert len(drain(bus)) == 2  # only the first call's


def test_put_events_fails_bad_entries_one_by_one(sandbox, bus):
    out = bus["events"].put_events(Entries=[
        entry(Detail="[1, 2]"),          # JSON, but not an object
        entry(Detail='"text"'),
        entry(Detail="{not json"),
        entry(Detail=""),
        {"DetailType": "Write", "Detail": "{}", "EventBusName": "gec-audit"},
        entry(),
    ])
    codes = [(e.get("ErrorCode"), e.get("ErrorMessage")) for e in out["Entries"]]
    assert codes[:3] == [("MalformedDetail", "Detail is malformed.")] * 3
    assert codes[3] == ("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.")
    assert codes[4] == ("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.")
    assert "EventId" in out["Entries"][5] and out["FailedEntryCount"] == 5
    [event] = drain(bus)
    assert event["id"] == out["Entries"][5]["EventId"]


def test_put_events_to_a_bus_that_does_not_exist_is_accepted_and_dropped(sandbox, bus):
    out = bus["events"].put_events(Entries=[entry(EventBusName="no-such-bus"), entry()])
    assert out["FailedEntryCount"] == 0 and all("EventId" in e for e in out["Entries"])
    [event] = drain(bus)
    assert event["id"] == out["Entries"][1]["EventId"]
    # the bus's absence shows only through DescribeEventBus
    with pytest.raises(ClientError) as excinfo:
        bus["events"].describe_event_bus(Name="no-such-bus")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_put_events_refuses_wrong_types_whole(sandbox, bus):
    status, _, body = json_call(sandbox, "events", "AWSEvents.PutEvents", "1.1",
                                {"Entries": [entry(), entry(Detail={"n": 1})]})
    assert status == 400 and body["__type"] == "SerializationException"
    assert drain(bus) == []
