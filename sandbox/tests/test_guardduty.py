"""GuardDuty detector extensions: feature merge and validation, one detector per
account and Region, wire format of GetDetector and of errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def rm(status: str, **additional: str) -> dict:
    return {
        "Name": "RUNTIME_MONITORING",
        "Status": status,
        "AdditionalConfiguration": [{"Name": k, "Status": v} for k, v in additional.items()],
    }


def features(gd, detector_id: str) -> dict:
    """{feature: (status, {additional: status})} from GetDetector."""
    return {
        f["Name"]: (f["Status"], {c["Name"]: c["Status"] for c in f.get("AdditionalConfiguration", [])})
        for f in gd.get_detector(DetectorId=detector_id)["Features"]
    }


def bad_request(excinfo) -> str:
    err = excinfo.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Code"] == "BadRequestException"
    return err["Error"]["Message"]


def test_new_detector_reports_runtime_monitoring_and_its_configurations_disabled(sandbox):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(Enable=True)["DetectorId"]
    got = features(gd, detector_id)
    assert got["RUNTIME_MONITORING"] == (
        "DISABLED",
        {
            "EKS_ADDON_MANAGEMENT": "DISABLED",
            "ECS_FARGATE_AGENT_MANAGEMENT": "DISABLED",
            "EC2_AGENT_MANAGEMENT": "DISABLED",
        },
    )
    assert got["EKS_RUNTIME_MONITORING"] == ("DISABLED", {"EKS_ADDON_MANAGEMENT": "DISABLED"})


def test_update_detector_merges_features_and_additional_configurations(sandbox):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(
        Enable=True,
        Features=[
            rm("ENABLED", EKS_ADDON_MANAGEMENT="ENABLED"),
            {"Name": "S3_DATA_EVENTS", "Status": "ENABLED"},
        ],
    )["DetectorId"]
    gd.update_detector(
        DetectorId=detector_id, Features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")]
    )
    got = features(gd, detector_id)
    assert got["RUNTIME_MONITORING"] == (
        "ENABLED",
        {
            "EKS_ADDON_MANAGEMENT": "ENABLED",
            "ECS_FARGATE_AGENT_MANAGEMENT": "ENABLED",
            "EC2_AGENT_MANAGEMENT": "DISABLED",
        },
    )
    assert got["S3_DATA_EVENTS"] == ("ENABLED", {})
    gd.update_detector(
        DetectorId=detector_id, Features=[{"Name": "RUNTIME_MONITORING", "Status": "DISABLED"}]
    )
    status, additional = features(gd, detector_id)["RUNTIME_MONITORING"]
    assert status == "DISABLED" and additional["ECS_FARGATE_AGENT_MANAGEMENT"] == "ENABLED"


def test_update_without_features_keeps_them(sandbox):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(Enable=True, Features=[rm("ENABLED")])["DetectorId"]
    gd.update_detector(DetectorId=detector_id, FindingPublishingFrequency="ONE_HOUR")
    assert features(gd, detector_id)["RUNTIME_MONITORING"][0] == "ENABLED"
    assert gd.get_detector(DetectorId=detector_id)["FindingPublishingFrequency"] == "ONE_HOUR"


@pytest.mark.parametrize(
    "bad_features",
    [
        pytest.param([{"Name": "NOT_A_FEATURE", "Status": "ENABLED"}], id="unknown feature"),
        pytest.param([rm("ON")], id="unknown status"),
        pytest.param([{"Name": "RUNTIME_MONITORING"}], id="missing status"),
        pytest.param([rm("ENABLED", NOT_A_CONFIG="ENABLED")], id="unknown additional configuration"),
        pytest.param([rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="YES")], id="unknown additional status"),
        pytest.param(
            [
                {
                    "Name": "S3_DATA_EVENTS",
                    "Status": "ENABLED",
                    "AdditionalConfiguration": [
                        {"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "Status": "ENABLED"}
                    ],
                }
            ],
            id="configuration of another feature",
        ),
        pytest.param(
            [rm("ENABLED"), {"Name": "EKS_RUNTIME_MONITORING", "Status": "DISABLED"}],
            id="EKS and runtime together",
        ),
    ],
)
def test_invalid_features_are_rejected_and_change_nothing(sandbox, bad_features):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(Enable=True)["DetectorId"]
    before = features(gd, detector_id)
    with pytest.raises(ClientError) as excinfo:
        gd.update_detector(DetectorId=detector_id, Features=bad_features)
    bad_request(excinfo)
    assert features(gd, detector_id) == before
    gd.delete_detector(DetectorId=detector_id)
    with pytest.raises(ClientError) as excinfo:
        gd.create_detector(Enable=True, Features=bad_features)
    bad_request(excinfo)
    assert gd.list_detectors()["DetectorIds"] == []


def test_second_detector_in_account_and_region_is_rejected(sandbox):
    gd = sandbox.client("guardduty")
    gd.create_detector(Enable=True)
    with pytest.raises(ClientError) as excinfo:
        gd.create_detector(Enable=True)
    assert "already exists" in bad_request(excinfo)
    # another Region and another account each get their own
    sandbox.client("guardduty", "eu-west-1").create_detector(Enable=True)
    sandbox.client("guardduty", account="210987654321").create_detector(Enable=True)
    assert len(gd.list_detectors()["DetectorIds"]) == 1


def test_unknown_detector_is_bad_request(sandbox):
    gd = sandbox.client("guardduty")
    with pytest.raises(ClientError) as excinfo:
        gd.get_detector(DetectorId="0" * 32)
    bad_request(excinfo)


def test_get_detector_wire_format_uses_lower_camel_names_and_epoch_numbers(sandbox):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(
        Enable=True, Features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")]
    )["DetectorId"]
    status, headers, body = sandbox.raw("guardduty", "GET", f"/detector/{detector_id}")
    assert status == 200 and headers["content-type"] == "application/json"
    runtime = next(f for f in body["features"] if f["name"] == "RUNTIME_MONITORING")
    assert runtime["status"] == "ENABLED"
    assert isinstance(runtime["updatedAt"], (int, float))
    ecs = next(c for c in runtime["additionalConfiguration"] if c["name"] == "ECS_FARGATE_AGENT_MANAGEMENT")
    assert ecs["status"] == "ENABLED" and isinstance(ecs["updatedAt"], (int, float))
    assert body["status"] == "ENABLED" and "serviceRole" in body


def test_errors_carry_the_error_type_header_and_body(sandbox):
    gd = sandbox.client("guardduty")
    detector_id = gd.create_detector(Enable=True)["DetectorId"]
    status, headers, body = sandbox.raw(
        "guardduty",
        "POST",
        f"/detector/{detector_id}",
        {"features": [{"name": "BOGUS", "status": "ENABLED"}]},
    )
    assert status == 400
    assert headers["x-amzn-errortype"] == "BadRequestException"
    assert body["__type"] == "BadRequestException" and body["message"]
