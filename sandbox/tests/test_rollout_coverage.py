"""Service deployments that roll out (forceNewDeployment, FAILED knob), and GuardDuty
ListCoverage / GetCoverageStatistics computed from the tasks."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from test_tasks import Fleet, agents


@pytest.fixture
def fleet(sandbox) -> Fleet:
    return Fleet(sandbox)


def describe(fleet: Fleet, cluster: str, service: str) -> dict:
    return fleet.ecs.describe_services(cluster=cluster, services=[service])["services"][0]


def wait_for(fleet: Fleet, cluster: str, service: str, state: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        svc = describe(fleet, cluster, service)
        if svc["deployments"][0]["rolloutState"] == state:
            return svc
        time.sleep(0.05)
    raise AssertionError(f"{service} did not reach {state}: {svc['deployments']}")


def test_create_service_runs_desired_count_with_a_completed_deployment(fleet, sandbox):
    fleet.cluster("c")
    fleet.service("c", "api", count=3)
    svc = describe(fleet, "c", "api")
    assert svc["runningCount"] == 3 and svc["desiredCount"] == 3 and svc["status"] == "ACTIVE"
    [d] = svc["deployments"]
    assert (d["status"], d["rolloutState"], d["runningCount"]) == ("PRIMARY", "COMPLETED", 3)
    status, _, body = sandbox.raw(
        "ecs",
        "POST",
        "/",
        {"cluster": "c", "services": ["api"]},
        target="AmazonEC2ContainerServiceV20141113.DescribeServices",
    )
    wire = body["services"][0]
    assert isinstance(wire["createdAt"], (int, float))
    assert isinstance(wire["deployments"][0]["createdAt"], (int, float))
    assert isinstance(wire["deployments"][0]["updatedAt"], (int, float))


def test_force_new_deployment_rolls_out_and_new_tasks_get_the_agent(fleet, sandbox):
    # Long enough that the in-progress state is still there when read on a loaded machine
    # (0.5 s was not, once, in CI).
    sandbox.call("POST", "config", {"rolloutSeconds": 3})
    fleet.coverage("ENABLED", "DISABLED")
    fleet.cluster("c")
    fleet.service("c", "api", count=2)
    old_tasks = set(fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"])
    old_id = describe(fleet, "c", "api")["deployments"][0]["id"]
    fleet.coverage("ENABLED", "ENABLED")

    fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)
    svc = describe(fleet, "c", "api")
    assert [(d["status"], d["rolloutState"]) for d in svc["deployments"]] == [
        ("PRIMARY", "IN_PROGRESS"),
        ("ACTIVE", "COMPLETED"),
    ]
    assert svc["deployments"][1]["id"] == old_id and svc["deployments"][0]["id"] != old_id
    assert set(fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"]) == old_tasks

    svc = wait_for(fleet, "c", "api", "COMPLETED", timeout=15)
    assert len(svc["deployments"]) == 1 and svc["runningCount"] == 2
    new = fleet.tasks("c", serviceName="api")
    assert len(new) == 2 and not old_tasks & {t["taskArn"] for t in new}
    assert all(len(agents(t)) == 1 for t in new)
    stopped = set(fleet.ecs.list_tasks(cluster="c", serviceName="api", desiredStatus="STOPPED")["taskArns"])
    assert stopped == old_tasks


def test_rollout_seconds_zero_completes_within_the_call(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    fleet.cluster("c")
    fleet.service("c", "api", count=1)
    resp = fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)["service"]
    assert [d["rolloutState"] for d in resp["deployments"]] == ["COMPLETED"]


def test_fail_rollout_knob_ends_the_next_rollout_failed(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0.2})
    fleet.cluster("c")
    fleet.service("c", "api", count=2)
    old_tasks = set(fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"])
    sandbox.call("POST", "knobs", {"failRollout": ["api"]})
    fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)
    svc = wait_for(fleet, "c", "api", "FAILED")
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert svc["deployments"][0]["failedTasks"] == 2
    assert set(fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"]) == old_tasks
    assert sandbox.call("GET", "knobs")["failRollout"] == {}  # used up: the next rollout completes
    fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)
    assert len(wait_for(fleet, "c", "api", "COMPLETED")["deployments"]) == 1


def test_update_desired_count_scales_without_a_deployment(fleet):
    fleet.cluster("c")
    fleet.service("c", "api", count=2)
    fleet.ecs.update_service(cluster="c", service="api", desiredCount=4)
    svc = describe(fleet, "c", "api")
    assert svc["runningCount"] == 4 and len(svc["deployments"]) == 1
    with pytest.raises(ClientError) as excinfo:
        fleet.ecs.delete_service(cluster="c", service="api")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"
    fleet.ecs.delete_service(cluster="c", service="api", force=True)
    assert fleet.ecs.list_tasks(cluster="c")["taskArns"] == []
    assert fleet.ecs.list_services(cluster="c")["serviceArns"] == []


def coverage(fleet: Fleet, **kw) -> list[dict]:
    return fleet.gd.list_coverage(DetectorId=fleet.detector, **kw)["Resources"]


def by_cluster(name: str) -> dict:
    return {
        "FilterCriterion": [
            {"CriterionKey": "RESOURCE_TYPE", "FilterCondition": {"Equals": ["ECS"]}},
            {"CriterionKey": "ECS_CLUSTER_NAME", "FilterCondition": {"Equals": [name]}},
        ]
    }


def test_coverage_is_healthy_when_all_tasks_have_the_agent(fleet, sandbox):
    fleet.coverage("ENABLED", "DISABLED")
    fleet.cluster("included", "true")
    fleet.cluster("ignored")
    fleet.service("included", "api", count=2)
    [r] = coverage(fleet)
    assert r["ResourceDetails"]["EcsClusterDetails"]["ClusterName"] == "included"
    assert r["ResourceDetails"]["ResourceType"] == "ECS" and r["CoverageStatus"] == "HEALTHY"
    assert r["AccountId"] == "123456789012" and "Issue" not in r
    status, _, body = sandbox.raw("guardduty", "POST", f"/detector/{fleet.detector}/coverage", {})
    assert status == 200 and isinstance(body["resources"][0]["updatedAt"], (int, float))


def test_coverage_is_unhealthy_with_an_issue_when_tasks_lack_the_agent(fleet, sandbox):
    fleet.coverage("ENABLED", "DISABLED")
    cluster_arn = fleet.cluster("c")
    fleet.service("c", "api", count=3)  # started before coverage: no agent
    assert coverage(fleet) == []
    fleet.ecs.tag_resource(resourceArn=cluster_arn, tags=[{"key": "GuardDutyManaged", "value": "true"}])
    [r] = coverage(fleet, FilterCriteria=by_cluster("c"))
    assert r["CoverageStatus"] == "UNHEALTHY" and r["Issue"] == (
        "Agent not provisioned: Services deployed before enabling Automated Agent Configuration are not "
        "covered. Impacted service name(s): 'api'"
    )
    stats = fleet.gd.get_coverage_statistics(
        DetectorId=fleet.detector, StatisticsType=["COUNT_BY_COVERAGE_STATUS", "COUNT_BY_RESOURCE_TYPE"]
    )
    assert stats["CoverageStatistics"] == {
        "CountByCoverageStatus": {"UNHEALTHY": 1},
        "CountByResourceType": {"ECS": 1},
    }
    # the knob's service stays unhealthy after a redeploy; a normal one turns healthy
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)
    assert coverage(fleet)[0]["CoverageStatus"] == "HEALTHY"
    sandbox.call("POST", "knobs", {"agentMissing": ["api"]})
    fleet.ecs.update_service(cluster="c", service="api", forceNewDeployment=True)
    assert coverage(fleet)[0]["CoverageStatus"] == "UNHEALTHY"


def test_list_coverage_pages_of_at_most_50_and_filters(fleet, sandbox):
    fleet.coverage("ENABLED", "ENABLED")
    sandbox.call(
        "POST",
        "clusters",
        {
            "account": "123456789012",
            "region": "us-east-1",
            "clusters": [{"name": f"c{i:03d}"} for i in range(120)]
            + [{"name": "x", "tags": {"GuardDutyManaged": "false"}}],
        },
    )
    pages = [
        p["Resources"] for p in fleet.gd.get_paginator("list_coverage").paginate(DetectorId=fleet.detector)
    ]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert "x" not in {r["ResourceDetails"]["EcsClusterDetails"]["ClusterName"] for p in pages for r in p}
    assert len(coverage(fleet, FilterCriteria=by_cluster("c007"))) == 1
    with pytest.raises(ClientError) as excinfo:
        fleet.gd.list_coverage(DetectorId=fleet.detector, MaxResults=51)
    assert excinfo.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError):
        fleet.gd.list_coverage(DetectorId="0" * 32)


def test_runtime_monitoring_off_means_empty_coverage(fleet):
    fleet.coverage("DISABLED", "ENABLED")
    fleet.cluster("c", "true")
    assert coverage(fleet) == []
    stats = fleet.gd.get_coverage_statistics(
        DetectorId=fleet.detector, StatisticsType=["COUNT_BY_COVERAGE_STATUS"]
    )
    assert stats["CoverageStatistics"]["CountByCoverageStatus"] == {}
