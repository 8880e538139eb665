"""GuardDuty organizations: a delegated administrator and its members per Region
(ListMembers, GetMemberDetectors, UpdateMemberDetectors, the organization configuration
and its NEW / ALL / NONE auto-enable), a member's UpdateDetector refused for Runtime
Monitoring, members joining later, faults per member, and coverage per account. Each
account is reached with its own credentials (STS AssumeRole), as the controller does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import SANDBOX_DIR

ADMIN, M1, M2, M3, OTHER = "111111111111", "222222222222", "333333333333", "444444444444", "555555555555"
DEFAULT = "123456789012"  # the dummy credentials' account (sandbox.raw signs with them)
NOT_ADMIN = "The request failed because you do not have required AWS Organization master permission."
NOT_MEMBER = (
    "The request is rejected because the given account ID is not an associated member of account the current account."
)


def rm(status: str, **additional: str) -> dict:
    return {
        "Name": "RUNTIME_MONITORING",
        "Status": status,
        "AdditionalConfiguration": [{"Name": k, "Status": v} for k, v in additional.items()],
    }


def gd(sandbox, account: str, region: str = "us-east-1"):
    return sandbox.client("guardduty", region, account=account)


def detector(sandbox, account: str, region: str = "us-east-1", features: list | None = None) -> str:
    kwargs = {"Features": features} if features else {}
    return gd(sandbox, account, region).create_detector(Enable=True, **kwargs)["DetectorId"]


def detector_id(sandbox, account: str, region: str = "us-east-1") -> str:
    [found] = gd(sandbox, account, region).list_detectors()["DetectorIds"]
    return found


def join(sandbox, account: str, regions=("us-east-1",), admin: str = ADMIN) -> dict:
    return sandbox.call(
        "POST", "organization/members", {"administrator": admin, "account": account, "regions": list(regions)}
    )


def org(sandbox, members=(M1, M2), admin: str = ADMIN, region: str = "us-east-1") -> str:
    """An administrator (with a detector) and members that join with detectors of their own."""
    admin_detector = detector(sandbox, admin, region)
    sandbox.call("POST", "organization/administrator", {"account": admin, "regions": [region]})
    for member in members:
        detector(sandbox, member, region)
        join(sandbox, member, [region], admin)
    return admin_detector


def features(sandbox, account: str, region: str = "us-east-1") -> dict:
    """{feature: (status, {additional: status})} from the account's own GetDetector."""
    client = gd(sandbox, account, region)
    return {
        f["Name"]: (f["Status"], {c["Name"]: c["Status"] for c in f.get("AdditionalConfiguration", [])})
        for f in client.get_detector(DetectorId=detector_id(sandbox, account, region))["Features"]
    }


def runtime(sandbox, account: str, region: str = "us-east-1") -> tuple[str, str]:
    status, additional = features(sandbox, account, region)["RUNTIME_MONITORING"]
    return status, additional["ECS_FARGATE_AGENT_MANAGEMENT"]


def bad_request(excinfo) -> str:
    err = excinfo.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Code"] == "BadRequestException"
    return err["Error"]["Message"]


def seed(sandbox, tmp_path, text: str) -> subprocess.CompletedProcess:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(textwrap.dedent(text))
    return subprocess.run(
        [sys.executable, "-m", "gec_sandbox", "seed", "--endpoint", sandbox.url, str(fleet)],
        env=dict(os.environ, PYTHONPATH=SANDBOX_DIR),
        capture_output=True,
        text=True,
    )


# --- the fleet file -------------------------------------------------------------------


def test_fleet_organization_associates_members_where_both_have_a_detector(sandbox, tmp_path):
    out = seed(
        sandbox,
        tmp_path,
        f"""
        organization: {{administrator: "{ADMIN}", members: ["{M1}", "{M2}", "{M3}"]}}
        accounts:
          "{ADMIN}":
            regions:
              us-east-1: {{detector: {{}}}}
              eu-west-1: {{detector: {{}}}}
          "{M1}":
            regions:
              us-east-1: {{detector: {{runtimeMonitoring: ENABLED}}}}
              eu-west-1: {{detector: {{}}}}
          "{M2}":
            regions:
              us-east-1: {{detector: {{}}}}
              eu-west-1: {{clusters: [{{name: no-detector}}]}}
          "{M3}":
            regions:
              ap-south-1: {{detector: {{}}}}
        """,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["organization"] == {
        "administrator": ADMIN,
        "regions": {"us-east-1": [M1, M2], "eu-west-1": [M1]},
    }

    def members(region):
        client = gd(sandbox, ADMIN, region)
        listed = client.list_members(DetectorId=detector_id(sandbox, ADMIN, region))["Members"]
        return [(m["AccountId"], m["RelationshipStatus"], m["DetectorId"]) for m in listed]

    assert members("us-east-1") == [
        (M1, "Enabled", detector_id(sandbox, M1)),
        (M2, "Enabled", detector_id(sandbox, M2)),
    ]
    assert members("eu-west-1") == [(M1, "Enabled", detector_id(sandbox, M1, "eu-west-1"))]
    # Seeding kept each member's declared features (auto-enable is NONE until set).
    assert runtime(sandbox, M1) == ("ENABLED", "DISABLED")


@pytest.mark.parametrize(
    "organization, word",
    [
        (f'{{administrator: "{OTHER}"}}', "no detector"),
        (f'{{administrator: "{ADMIN}", members: ["{ADMIN}"]}}', "distinct"),
        (f'{{administrator: "{ADMIN}", members: [{M1}]}}', "12-digit"),
        (f'{{administrator: "{ADMIN}", member: ["{M1}"]}}', "organization takes"),
        (f'{{members: ["{M1}"]}}', "administrator"),
    ],
)
def test_fleet_organization_is_checked_before_anything_is_created(sandbox, tmp_path, organization, word):
    out = seed(
        sandbox,
        tmp_path,
        f"""
        organization: {organization}
        accounts:
          "{ADMIN}": {{regions: {{us-east-1: {{detector: {{}}}}}}}}
        """,
    )
    assert out.returncode == 2 and word in out.stderr, out.stderr
    assert gd(sandbox, ADMIN).list_detectors()["DetectorIds"] == []


# --- ListMembers ----------------------------------------------------------------------


def test_list_members_pages_by_50_with_next_token(sandbox):
    admin_detector = detector(sandbox, DEFAULT)
    accounts = [f"{200000000000 + i:012d}" for i in range(55)]
    for account in accounts:
        join(sandbox, account, admin=DEFAULT)  # joining creates the member's detector
    status, _, first = sandbox.raw("guardduty", "GET", f"/detector/{admin_detector}/member?onlyAssociated=true")
    assert status == 200 and len(first["members"]) == 50 and first["nextToken"]
    member = first["members"][0]
    assert set(member) == {
        "accountId", "detectorId", "masterId", "administratorId", "email", "relationshipStatus", "invitedAt", "updatedAt"
    }
    assert (member["accountId"], member["administratorId"], member["relationshipStatus"]) == (
        accounts[0], DEFAULT, "Enabled"
    )
    status, _, second = sandbox.raw(
        "guardduty", "GET", f"/detector/{admin_detector}/member?nextToken={first['nextToken']}&maxResults=10"
    )
    assert status == 200 and "nextToken" not in second
    assert [m["accountId"] for m in first["members"] + second["members"]] == accounts
    for query in ("maxResults=51", "maxResults=0", "maxResults=x", "onlyAssociated=maybe", "nextToken=junk"):
        status, headers, body = sandbox.raw("guardduty", "GET", f"/detector/{admin_detector}/member?{query}")
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException"), query


def test_list_members_of_an_account_without_an_organization_is_empty(sandbox):
    org(sandbox, [M1])
    assert gd(sandbox, M1).list_members(DetectorId=detector_id(sandbox, M1))["Members"] == []
    with pytest.raises(ClientError) as excinfo:
        gd(sandbox, M1).list_members(DetectorId=detector_id(sandbox, ADMIN))  # not its detector
    assert "not owned by the current account" in bad_request(excinfo)


# --- GetMemberDetectors / UpdateMemberDetectors ---------------------------------------


def test_get_member_detectors_wire_shape_and_unprocessed_accounts(sandbox):
    admin_detector = detector(sandbox, DEFAULT)
    detector(sandbox, M1, features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")])
    join(sandbox, M1, admin=DEFAULT)
    status, _, body = sandbox.raw(
        "guardduty",
        "POST",
        f"/detector/{admin_detector}/member/detector/get",
        {"accountIds": [M1, OTHER, M1]},
    )
    assert status == 200 and set(body) == {"members", "unprocessedAccounts"}
    [member] = body["members"]
    assert member["accountId"] == M1
    assert member["dataSources"]["cloudTrail"] == {"status": "ENABLED"}
    assert member["dataSources"]["s3Logs"] == {"status": "DISABLED"}
    by_name = {f["name"]: f for f in member["features"]}
    assert "CLOUD_TRAIL" not in by_name  # not an OrgFeature
    runtime_monitoring = by_name["RUNTIME_MONITORING"]
    assert runtime_monitoring["status"] == "ENABLED" and isinstance(runtime_monitoring["updatedAt"], (int, float))
    assert {c["name"]: c["status"] for c in runtime_monitoring["additionalConfiguration"]} == {
        "EKS_ADDON_MANAGEMENT": "DISABLED",
        "ECS_FARGATE_AGENT_MANAGEMENT": "ENABLED",
        "EC2_AGENT_MANAGEMENT": "DISABLED",
    }
    assert body["unprocessedAccounts"] == [{"accountId": OTHER, "result": NOT_MEMBER}]
    for ids in ([], [f"{i:012d}" for i in range(51)], ["12345"]):
        status, headers, _ = sandbox.raw(
            "guardduty", "POST", f"/detector/{admin_detector}/member/detector/get", {"accountIds": ids}
        )
        assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException")


def test_update_member_detectors_merges_like_update_detector(sandbox):
    admin_detector = org(sandbox, [M1, M2])
    detector(sandbox, OTHER)  # has a detector but is no member
    admin = gd(sandbox, ADMIN)
    out = admin.update_member_detectors(
        DetectorId=admin_detector,
        AccountIds=[M1, OTHER],
        Features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED"), {"Name": "S3_DATA_EVENTS", "Status": "ENABLED"}],
    )
    assert out["UnprocessedAccounts"] == [{"AccountId": OTHER, "Result": NOT_MEMBER}]
    assert runtime(sandbox, M1) == ("ENABLED", "ENABLED")
    assert runtime(sandbox, M2) == ("DISABLED", "DISABLED")  # not named
    assert runtime(sandbox, OTHER) == ("DISABLED", "DISABLED")  # not a member: untouched
    assert runtime(sandbox, ADMIN) == ("DISABLED", "DISABLED")  # the administrator's own detector
    # Per additional configuration: the feature's status alone keeps the configurations.
    admin.update_member_detectors(
        DetectorId=admin_detector, AccountIds=[M1], Features=[{"Name": "RUNTIME_MONITORING", "Status": "DISABLED"}]
    )
    status, additional = features(sandbox, M1)["RUNTIME_MONITORING"]
    assert status == "DISABLED" and additional["ECS_FARGATE_AGENT_MANAGEMENT"] == "ENABLED"
    assert features(sandbox, M1)["S3_DATA_EVENTS"] == ("ENABLED", {})
    read = admin.get_member_detectors(DetectorId=admin_detector, AccountIds=[M1])["MemberDataSourceConfigurations"]
    assert read[0]["DataSources"]["S3Logs"] == {"Status": "ENABLED"}


@pytest.mark.parametrize(
    "bad",
    [
        [{"Name": "NOT_A_FEATURE", "Status": "ENABLED"}],
        [rm("ENABLED", EKS_ADDON_MANAGEMENT="ENABLED"), {"Name": "EKS_RUNTIME_MONITORING", "Status": "ENABLED"}],
        [{"Name": "S3_DATA_EVENTS", "Status": "ENABLED", "AdditionalConfiguration": [
            {"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "Status": "ENABLED"}]}],
    ],
)
def test_a_rejected_update_member_detectors_changes_nothing(sandbox, bad):
    admin_detector = org(sandbox, [M1])
    with pytest.raises(ClientError) as excinfo:
        gd(sandbox, ADMIN).update_member_detectors(DetectorId=admin_detector, AccountIds=[M1], Features=bad)
    bad_request(excinfo)
    assert runtime(sandbox, M1) == ("DISABLED", "DISABLED")
    assert features(sandbox, M1)["S3_DATA_EVENTS"] == ("DISABLED", {})


def test_only_the_administrator_reaches_its_members(sandbox):
    org(sandbox, [M1, M2])
    member = gd(sandbox, M1)
    out = member.update_member_detectors(
        DetectorId=detector_id(sandbox, M1), AccountIds=[M2], Features=[rm("ENABLED")]
    )
    assert out["UnprocessedAccounts"] == [{"AccountId": M2, "Result": NOT_MEMBER}]
    got = member.get_member_detectors(DetectorId=detector_id(sandbox, M1), AccountIds=[M2])
    assert got["MemberDataSourceConfigurations"] == [] and got["UnprocessedAccounts"][0]["AccountId"] == M2
    assert runtime(sandbox, M2) == ("DISABLED", "DISABLED")


# --- organization configuration -------------------------------------------------------


def auto_enable(config: dict) -> dict:
    """{feature: autoEnable, "feature/additional": autoEnable} of DescribeOrganizationConfiguration."""
    out = {}
    for f in config["Features"]:
        out[f["Name"]] = f["AutoEnable"]
        for c in f.get("AdditionalConfiguration", []):
            out[f"{f['Name']}/{c['Name']}"] = c["AutoEnable"]
    return out


def test_organization_configuration_starts_none_and_merges_per_feature(sandbox):
    admin_detector = org(sandbox, [])
    admin = gd(sandbox, ADMIN)
    config = admin.describe_organization_configuration(DetectorId=admin_detector)
    assert config["AutoEnableOrganizationMembers"] == "NONE" and config["MemberAccountLimitReached"] is False
    assert set(auto_enable(config).values()) == {"NONE"}
    assert "RUNTIME_MONITORING/ECS_FARGATE_AGENT_MANAGEMENT" in auto_enable(config)
    admin.update_organization_configuration(
        DetectorId=admin_detector,
        AutoEnableOrganizationMembers="NEW",
        Features=[
            {"Name": "S3_DATA_EVENTS", "AutoEnable": "NEW"},
            {"Name": "RUNTIME_MONITORING", "AutoEnable": "NEW",
             "AdditionalConfiguration": [{"Name": "EKS_ADDON_MANAGEMENT", "AutoEnable": "NEW"}]},
        ],
    )
    # A feature left out, and an additional configuration left out, keep their setting.
    admin.update_organization_configuration(
        DetectorId=admin_detector,
        AutoEnableOrganizationMembers="NEW",
        Features=[{"Name": "RUNTIME_MONITORING", "AutoEnable": "NONE",
                   "AdditionalConfiguration": [{"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "AutoEnable": "NEW"}]}],
    )
    got = auto_enable(admin.describe_organization_configuration(DetectorId=admin_detector))
    assert got["S3_DATA_EVENTS"] == "NEW"
    assert got["RUNTIME_MONITORING"] == "NONE"
    assert got["RUNTIME_MONITORING/EKS_ADDON_MANAGEMENT"] == "NEW"
    assert got["RUNTIME_MONITORING/ECS_FARGATE_AGENT_MANAGEMENT"] == "NEW"
    assert got["RUNTIME_MONITORING/EC2_AGENT_MANAGEMENT"] == "NONE"


@pytest.mark.parametrize(
    "params",
    [
        {},  # neither autoEnableOrganizationMembers nor autoEnable
        {"autoEnableOrganizationMembers": "ALL", "autoEnable": True},  # both
        {"autoEnableOrganizationMembers": "SOME"},
        {"autoEnableOrganizationMembers": "NONE", "features": [{"name": "RUNTIME_MONITORING", "autoEnable": "YES"}]},
        {"autoEnableOrganizationMembers": "NONE", "features": [{"name": "NOPE", "autoEnable": "ALL"}]},
        {"autoEnableOrganizationMembers": "NONE", "features": [
            {"name": "S3_DATA_EVENTS", "autoEnable": "ALL",
             "additionalConfiguration": [{"name": "EKS_ADDON_MANAGEMENT", "autoEnable": "ALL"}]}]},
        {"autoEnableOrganizationMembers": "NONE", "features": [
            {"name": "RUNTIME_MONITORING", "autoEnable": "ALL"}, {"name": "EKS_RUNTIME_MONITORING", "autoEnable": "ALL"}]},
    ],
)
def test_a_rejected_update_organization_configuration_changes_nothing(sandbox, params):
    admin_detector = detector(sandbox, DEFAULT)
    detector(sandbox, M1)
    join(sandbox, M1, admin=DEFAULT)
    status, headers, _ = sandbox.raw("guardduty", "POST", f"/detector/{admin_detector}/admin", params)
    assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException")
    status, _, config = sandbox.raw("guardduty", "GET", f"/detector/{admin_detector}/admin")
    assert status == 200 and config["autoEnableOrganizationMembers"] == "NONE" and config["autoEnable"] is False
    assert {f["autoEnable"] for f in config["features"]} == {"NONE"}
    assert runtime(sandbox, M1) == ("DISABLED", "DISABLED")


def test_non_administrators_get_the_organization_master_permission_error(sandbox):
    org(sandbox, [M1])
    detector(sandbox, OTHER)
    for account in (M1, OTHER):
        client = gd(sandbox, account)
        own = detector_id(sandbox, account)
        with pytest.raises(ClientError) as excinfo:
            client.describe_organization_configuration(DetectorId=own)
        assert bad_request(excinfo) == NOT_ADMIN
        with pytest.raises(ClientError) as excinfo:
            client.update_organization_configuration(DetectorId=own, AutoEnableOrganizationMembers="ALL")
        assert bad_request(excinfo) == NOT_ADMIN


def test_all_enables_for_every_existing_member_new_and_none_for_none(sandbox):
    admin_detector = org(sandbox, [M1, M2])
    admin = gd(sandbox, ADMIN)

    def set_auto(feature: str, agent: str) -> None:
        admin.update_organization_configuration(
            DetectorId=admin_detector,
            AutoEnableOrganizationMembers="NONE",
            Features=[{"Name": "RUNTIME_MONITORING", "AutoEnable": feature,
                       "AdditionalConfiguration": [{"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "AutoEnable": agent}]}],
        )

    set_auto("NEW", "NEW")
    assert runtime(sandbox, M1) == runtime(sandbox, M2) == ("DISABLED", "DISABLED")
    set_auto("NONE", "NONE")
    assert runtime(sandbox, M1) == ("DISABLED", "DISABLED")
    set_auto("ALL", "NONE")
    assert runtime(sandbox, M1) == runtime(sandbox, M2) == ("ENABLED", "DISABLED")
    set_auto("ALL", "ALL")
    assert runtime(sandbox, M1) == runtime(sandbox, M2) == ("ENABLED", "ENABLED")
    assert features(sandbox, M1)["RUNTIME_MONITORING"][1]["EC2_AGENT_MANAGEMENT"] == "DISABLED"
    assert runtime(sandbox, ADMIN) == ("DISABLED", "DISABLED")  # the administrator manages its own
    # NONE afterwards turns nothing off: the administrator manages each account.
    set_auto("NONE", "NONE")
    assert runtime(sandbox, M1) == ("ENABLED", "ENABLED")


# --- a member's own UpdateDetector ----------------------------------------------------


def test_a_member_cannot_change_runtime_monitoring_itself(sandbox):
    admin_detector = org(sandbox, [M1])
    member = gd(sandbox, M1)
    own = detector_id(sandbox, M1)
    for feature in (rm("ENABLED"), rm("DISABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")):
        with pytest.raises(ClientError) as excinfo:
            member.update_detector(DetectorId=own, Features=[feature, {"Name": "S3_DATA_EVENTS", "Status": "ENABLED"}])
        assert "only the delegated administrator" in bad_request(excinfo)
    assert runtime(sandbox, M1) == ("DISABLED", "DISABLED")
    assert features(sandbox, M1)["S3_DATA_EVENTS"] == ("DISABLED", {})  # the whole request refused
    # Other settings stay the member's own; its GetDetector reads what the administrator set.
    member.update_detector(DetectorId=own, Features=[{"Name": "S3_DATA_EVENTS", "Status": "ENABLED"}])
    member.update_detector(DetectorId=own, FindingPublishingFrequency="ONE_HOUR")
    gd(sandbox, ADMIN).update_member_detectors(
        DetectorId=admin_detector, AccountIds=[M1], Features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")]
    )
    assert runtime(sandbox, M1) == ("ENABLED", "ENABLED")
    assert features(sandbox, M1)["S3_DATA_EVENTS"] == ("ENABLED", {})
    # In a Region where it is no member, the same account manages its detector itself.
    detector(sandbox, M1, "eu-west-1")
    gd(sandbox, M1, "eu-west-1").update_detector(
        DetectorId=detector_id(sandbox, M1, "eu-west-1"), Features=[rm("ENABLED")]
    )
    assert runtime(sandbox, M1, "eu-west-1") == ("ENABLED", "DISABLED")
    # The administrator itself is no member: its own UpdateDetector works.
    gd(sandbox, ADMIN).update_detector(DetectorId=admin_detector, Features=[rm("ENABLED")])
    assert runtime(sandbox, ADMIN) == ("ENABLED", "DISABLED")


# --- members joining later ------------------------------------------------------------


def test_a_member_joining_later_gets_new_and_all_at_join(sandbox):
    admin_detector = org(sandbox, [M1])
    admin = gd(sandbox, ADMIN)
    admin.update_organization_configuration(
        DetectorId=admin_detector,
        AutoEnableOrganizationMembers="NEW",
        Features=[
            {"Name": "RUNTIME_MONITORING", "AutoEnable": "NEW",
             "AdditionalConfiguration": [{"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "AutoEnable": "ALL"}]},
            {"Name": "S3_DATA_EVENTS", "AutoEnable": "NONE"},
        ],
    )
    # ALL on the agent management reached the existing member; NEW did not.
    assert runtime(sandbox, M1) == ("DISABLED", "ENABLED")
    # M2 had no detector: joining creates one and applies NEW and ALL.
    out = join(sandbox, M2, ["us-east-1"])
    region = out["regions"]["us-east-1"]
    assert region["created"] and region["joined"]
    assert region["enabled"] == ["RUNTIME_MONITORING", "RUNTIME_MONITORING/ECS_FARGATE_AGENT_MANAGEMENT"]
    assert region["detectorId"] == detector_id(sandbox, M2)
    assert runtime(sandbox, M2) == ("ENABLED", "ENABLED")
    assert features(sandbox, M2)["S3_DATA_EVENTS"] == ("DISABLED", {})
    listed = admin.list_members(DetectorId=admin_detector, OnlyAssociated="true")["Members"]
    assert [m["AccountId"] for m in listed] == [M1, M2]
    # Joining again changes nothing.
    again = join(sandbox, M2, ["us-east-1"])["regions"]["us-east-1"]
    assert (again["created"], again["joined"], again["enabled"]) == (False, False, [])


def test_a_member_joining_under_none_gets_nothing(sandbox):
    org(sandbox, [])
    detector(sandbox, M1, features=[rm("DISABLED")])
    assert join(sandbox, M1)["regions"]["us-east-1"]["enabled"] == []
    assert runtime(sandbox, M1) == ("DISABLED", "DISABLED")


@pytest.mark.parametrize(
    "payload, word",
    [
        ({"administrator": ADMIN, "account": M3, "regions": ["eu-west-1"]}, "no detector"),
        ({"administrator": OTHER, "account": M1, "regions": ["us-east-1"]}, "already a member"),
        ({"administrator": ADMIN, "account": ADMIN, "regions": ["us-east-1"]}, "its own member"),
        ({"administrator": ADMIN, "account": M3, "regions": []}, "regions"),
        ({"administrator": ADMIN, "account": 444444444444, "regions": ["us-east-1"]}, "12-digit"),
        ({"administrator": ADMIN, "account": M3, "regions": ["us-east-1"], "extra": 1}, "takes only"),
        ({"administrator": M1, "account": M3, "regions": ["us-east-1"]}, "is a member"),
    ],
)
def test_join_refuses_bad_requests_and_changes_nothing(sandbox, payload, word):
    org(sandbox, [M1])
    detector(sandbox, OTHER)
    sandbox.call("POST", "organization/administrator", {"account": OTHER, "regions": ["us-east-1"]})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        sandbox.call("POST", "organization/members", payload)
    assert excinfo.value.code == 400 and word in json.load(excinfo.value)["error"]
    assert gd(sandbox, M3).list_detectors()["DetectorIds"] == []
    admin_members = gd(sandbox, ADMIN).list_members(DetectorId=detector_id(sandbox, ADMIN))["Members"]
    assert [m["AccountId"] for m in admin_members] == [M1]


def test_reset_forgets_the_organization(sandbox):
    org(sandbox, [M1])
    sandbox.call("POST", "reset")
    sandbox.assumed.clear()  # assumed-role keys die with a reset
    admin_detector = detector(sandbox, ADMIN)
    assert gd(sandbox, ADMIN).list_members(DetectorId=admin_detector)["Members"] == []
    with pytest.raises(ClientError) as excinfo:
        gd(sandbox, ADMIN).describe_organization_configuration(DetectorId=admin_detector)
    assert bad_request(excinfo) == NOT_ADMIN


# --- faults per member ----------------------------------------------------------------


def test_faults_take_one_member_down(sandbox):
    """An account rule fails one member's tagging calls; a params rule refuses AssumeRole
    into one member (the controller reaches each member through its role)."""
    org(sandbox, [M1, M2])
    arns = {}
    for member in (M1, M2):
        arns[member] = sandbox.client("ecs", account=member).create_cluster(clusterName="apps")["cluster"][
            "clusterArn"
        ]
    sandbox.call(
        "POST",
        "faults",
        {
            "rules": [
                {"service": "tagging", "account": M1, "fault": "accessDenied"},
                {"service": "sts", "operation": "AssumeRole", "fault": "accessDenied",
                 "params": {"RoleArn": f"arn:aws:iam::{M2}:role/guardduty-ecs-controller"}},
            ]
        },
    )
    import boto3

    one = Config(retries={"total_max_attempts": 1})
    with pytest.raises(ClientError) as excinfo:
        sandbox.client("resourcegroupstaggingapi", account=M1).tag_resources(
            ResourceARNList=[arns[M1]], Tags={"GuardDutyManaged": "false"}
        )
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    sandbox.client("resourcegroupstaggingapi", account=M2).tag_resources(
        ResourceARNList=[arns[M2]], Tags={"GuardDutyManaged": "false"}
    )
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1", config=one)
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn=f"arn:aws:iam::{M2}:role/guardduty-ecs-controller", RoleSessionName="gec")
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    sts.assume_role(RoleArn=f"arn:aws:iam::{M1}:role/guardduty-ecs-controller", RoleSessionName="gec")
    log = [(r["operation"], r["account"], r.get("fault")) for r in sandbox.requests() if r["service"] != "guardduty"]
    assert ("TagResources", M1, "accessDenied") in log and ("TagResources", M2, None) in log


# --- coverage per account -------------------------------------------------------------


def agents(sandbox, account: str, cluster: str) -> list[int]:
    ecs = sandbox.client("ecs", account=account)
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return sorted(sum(c["name"].startswith("aws-guardduty-agent-") for c in t["containers"]) for t in tasks)


def test_a_members_coverage_follows_what_the_administrator_set(sandbox):
    admin_detector = org(sandbox, [M1, M2])
    for member in (M1, M2):
        sandbox.call("POST", "clusters", {"account": member, "region": "us-east-1", "clusters": [{"name": "apps"}]})
    gd(sandbox, ADMIN).update_member_detectors(
        DetectorId=admin_detector, AccountIds=[M1], Features=[rm("ENABLED", ECS_FARGATE_AGENT_MANAGEMENT="ENABLED")]
    )
    for member in (M1, M2):
        sandbox.call(
            "POST",
            "tasks",
            {"account": member, "region": "us-east-1", "clusters": ["apps"], "standaloneTasks": [{"count": 1}]},
        )
    assert agents(sandbox, M1, "apps") == [1]  # covered through the administrator's write
    assert agents(sandbox, M2, "apps") == [0]
    [own] = gd(sandbox, M1).list_coverage(DetectorId=detector_id(sandbox, M1))["Resources"]
    assert (own["AccountId"], own["DetectorId"], own["CoverageStatus"]) == (M1, detector_id(sandbox, M1), "HEALTHY")
    assert gd(sandbox, M2).list_coverage(DetectorId=detector_id(sandbox, M2))["Resources"] == []
    # The administrator's ListCoverage includes its members' resources.
    admin = gd(sandbox, ADMIN)
    [listed] = admin.list_coverage(DetectorId=admin_detector)["Resources"]
    assert listed["ResourceId"] == own["ResourceId"] and listed["AccountId"] == M1
    only_admin = admin.list_coverage(
        DetectorId=admin_detector,
        FilterCriteria={"FilterCriterion": [{"CriterionKey": "ACCOUNT_ID", "FilterCondition": {"Equals": [ADMIN]}}]},
    )["Resources"]
    assert only_admin == []
