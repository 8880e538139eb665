"""Bulk seeding of services and tasks (`POST /_sandbox/tasks`, fleet `generate.workload`):
what it makes must look, through the AWS API, like what CreateService and RunTask make."""

from __future__ import annotations

import subprocess
import time
import urllib.error

import pytest

from test_server import seed

AGENT = "aws-guardduty-agent-"


def detector(sandbox, runtime: str = "ENABLED", automated: str = "DISABLED") -> str:
    feature = {
        "Name": "RUNTIME_MONITORING",
        "Status": runtime,
        "AdditionalConfiguration": [{"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "Status": automated}],
    }
    return sandbox.client("guardduty").create_detector(Enable=True, Features=[feature])["DetectorId"]


def clusters(sandbox, names: list[str], managed: str | None = "true") -> None:
    tags = {"GuardDutyManaged": managed} if managed is not None else {}
    sandbox.call(
        "POST",
        "clusters",
        {"account": "123456789012", "region": "us-east-1", "clusters": [{"name": n, "tags": tags} for n in names]},
    )


def tasks_of(ecs, cluster: str, **kw) -> list[dict]:
    arns = [a for p in ecs.get_paginator("list_tasks").paginate(cluster=cluster, **kw) for a in p["taskArns"]]
    out = []
    for start in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]
    return out


def has_agent(task: dict) -> bool:
    return any(c["name"].startswith(AGENT) for c in task["containers"])


def test_bulk_services_and_standalone_tasks_look_like_api_made_ones(sandbox):
    detector_id = detector(sandbox)
    clusters(sandbox, ["c0", "c1"])
    made = sandbox.call(
        "POST",
        "tasks",
        {
            "account": "123456789012",
            "region": "us-east-1",
            "clusters": ["c0", "arn:aws:ecs:us-east-1:123456789012:cluster/c1"],
            "services": [
                {"name": "svc-{j:02d}", "count": 3, "desiredCount": 2},
                {"name": "old", "desiredCount": 3, "agent": False},
            ],
            "standaloneTasks": [{"count": 4, "agent": False}, {"count": 1}],
        },
    )
    assert (made["clusters"], made["services"], made["tasks"]) == (2, 8, 2 * (3 * 2 + 3 + 5))
    ecs = sandbox.client("ecs")
    described = ecs.describe_clusters(clusters=["c0", "c1"])["clusters"]
    assert [(c["runningTasksCount"], c["activeServicesCount"]) for c in described] == [(14, 4), (14, 4)]

    tasks = tasks_of(ecs, "c0")
    assert len(tasks) == 14 and all(t["lastStatus"] == "RUNNING" and t["launchType"] == "FARGATE" for t in tasks)
    by_group: dict[str, list[dict]] = {}
    for t in tasks:
        by_group.setdefault(t["group"], []).append(t)
    assert sorted(by_group) == ["family:gec-bulk-fargate", "service:old", "service:svc-00", "service:svc-01", "service:svc-02"]
    # agent null: decided by coverage (c0 is covered), false: none
    assert all(has_agent(t) for t in by_group["service:svc-01"])
    assert not any(has_agent(t) for t in by_group["service:old"])
    assert sum(has_agent(t) for t in by_group["family:gec-bulk-fargate"]) == 1
    assert len(tasks_of(ecs, "c0", serviceName="svc-02")) == 2

    svc = ecs.describe_services(cluster="c1", services=["old", "svc-00"])["services"]
    assert [(s["serviceName"], s["desiredCount"], s["runningCount"], s["launchType"]) for s in svc] == [
        ("old", 3, 3, "FARGATE"),
        ("svc-00", 2, 2, "FARGATE"),
    ]
    primary = svc[0]["deployments"][0]
    assert (primary["status"], primary["rolloutState"], primary["runningCount"]) == ("PRIMARY", "COMPLETED", 3)
    old_task = next(t for t in tasks_of(ecs, "c1", serviceName="old"))
    assert old_task["startedBy"] == primary["id"]

    # GuardDuty UG gdu-assess-coverage-ecs, "Agent not provisioned": tasks launched before
    # coverage, listed together per kind (service names, standalone task ids).
    coverage = sandbox.client("guardduty").list_coverage(DetectorId=detector_id)["Resources"]
    for r in coverage:
        name = r["ResourceDetails"]["EcsClusterDetails"]["ClusterName"]
        standalone = [
            t["taskArn"].rsplit("/", 1)[-1]
            for t in tasks_of(ecs, name)
            if t["group"] == "family:gec-bulk-fargate" and not has_agent(t)
        ]
        issues = r["ResourceDetails"]["EcsClusterDetails"]["FargateDetails"]["Issues"]
        assert r["CoverageStatus"] == "UNHEALTHY" and r["Issue"] == issues[0] and len(standalone) == 4
        assert issues[0] == (
            "Agent not provisioned: Services deployed before enabling Automated Agent Configuration are not "
            "covered. Impacted service name(s): 'old'"
        )
        prefix = (
            "Agent not provisioned: Tasks started before enabling Automated Agent Configuration are not "
            "covered. Impacted task ID(s): '"
        )
        assert len(issues) == 2 and issues[1].startswith(prefix) and issues[1].endswith("'")
        assert sorted(issues[1][len(prefix) : -1].split(", ")) == sorted(standalone)

    # A bulk service is a real service: a forced deployment replaces its tasks (with the agent now).
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    ecs.update_service(cluster="c0", service="old", forceNewDeployment=True)
    assert all(has_agent(t) for t in tasks_of(ecs, "c0", serviceName="old"))
    seeding = {r["operation"] for r in sandbox.requests()} & {"CreateService", "RunTask", "RegisterTaskDefinition"}
    assert seeding == set()  # bulk seeding is not an AWS request


def test_agent_true_even_where_coverage_is_off(sandbox):
    clusters(sandbox, ["plain"], managed=None)
    sandbox.call(
        "POST",
        "tasks",
        {"account": "123456789012", "region": "us-east-1", "clusters": ["plain"], "standaloneTasks": [{"count": 2, "agent": True}, {"count": 1}]},
    )
    assert sorted(has_agent(t) for t in tasks_of(sandbox.client("ecs"), "plain")) == [False, True, True]


def test_bulk_codedeploy_services_look_like_fleet_file_ones(sandbox, tmp_path):
    """`deploymentController: CODE_DEPLOY` in a bulk (generate) workload: a load balancer, a
    PRIMARY task set running the tasks, the application `gec-<cluster>` and a group named
    after the service naming it, as a fleet file's `services` entry makes them."""
    from test_deployment_controllers import appspec, until

    summary = seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
            generate:
              - name: "cd-{i}"
                count: 2
                tags: {GuardDutyManaged: "true"}
                workload:
                  services:
                    - {name: "dg-{j}", count: 2, desiredCount: 2, agent: false, deploymentController: CODE_DEPLOY}
                    - {name: "web", desiredCount: 1, deploymentController: ECS}
    """,
    )
    region = summary["accounts"]["123456789012"]["us-east-1"]
    assert (region["services"], region["bulkTasks"]) == (6, 10)
    ecs = sandbox.client("ecs")
    svc = ecs.describe_services(cluster="cd-1", services=["dg-1", "web"])["services"]
    assert svc[0]["deploymentController"] == {"type": "CODE_DEPLOY"} and svc[0]["deployments"] == []
    assert svc[0]["loadBalancers"] == [
        {
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/dg-1-blue/0123456789abcdef",
            "containerName": "app",
            "containerPort": 80,
        }
    ]
    [ts] = svc[0]["taskSets"]
    assert (ts["status"], ts["computedDesiredCount"], ts["runningCount"]) == ("PRIMARY", 2, 2)
    assert (svc[0]["desiredCount"], svc[0]["runningCount"]) == (2, 2)
    tasks = tasks_of(ecs, "cd-1", serviceName="dg-1")
    assert {t["startedBy"] for t in tasks} == {ts["id"]} and not any(has_agent(t) for t in tasks)
    assert svc[1].get("deploymentController", {"type": "ECS"}) == {"type": "ECS"} and svc[1]["deployments"]

    cd = sandbox.client("codedeploy")
    assert sorted(cd.list_applications()["applications"]) == ["gec-cd-0", "gec-cd-1"]
    assert cd.batch_get_applications(applicationNames=["gec-cd-1"])["applicationsInfo"][0]["computePlatform"] == "ECS"
    assert sorted(cd.list_deployment_groups(applicationName="gec-cd-1")["deploymentGroups"]) == ["dg-0", "dg-1"]
    [group] = cd.batch_get_deployment_groups(applicationName="gec-cd-1", deploymentGroupNames=["dg-1"])[
        "deploymentGroupsInfo"
    ]
    assert group["ecsServices"] == [{"serviceName": "dg-1", "clusterName": "cd-1"}]
    assert group["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}

    # A real CODE_DEPLOY service: a CodeDeploy deployment replaces its task set.
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    deployment_id = cd.create_deployment(
        applicationName="gec-cd-1", deploymentGroupName="dg-1", revision=appspec(svc[0]["taskDefinition"])
    )["deploymentId"]
    until(lambda: cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Succeeded")
    [new] = ecs.describe_services(cluster="cd-1", services=["dg-1"])["services"][0]["taskSets"]
    assert new["externalId"] == deployment_id and new["runningCount"] == 2

    with pytest.raises(urllib.error.HTTPError) as err:
        sandbox.call(
            "POST",
            "tasks",
            {
                "account": "123456789012",
                "region": "us-east-1",
                "clusters": ["cd-0"],
                "services": [{"name": "x", "deploymentController": "EXTERNAL"}],
            },
        )
    assert err.value.code == 400
    assert ecs.describe_services(cluster="cd-0", services=["x"])["services"] == []


def test_bulk_refuses_bad_input_and_makes_nothing(sandbox):
    clusters(sandbox, ["c0"])
    bad = [
        {"account": "123456789012", "region": "us-east-1", "clusters": ["c0", "missing"], "standaloneTasks": [{"count": 1}]},
        {"account": "123456789012", "region": "us-east-1", "clusters": ["c0"], "standaloneTasks": [{"count": -1}]},
        {"account": "123456789012", "region": "us-east-1", "clusters": ["c0"], "services": [{"name": "a", "agent": "yes"}]},
        {"account": "123456789012", "region": "us-east-1", "clusters": ["c0"], "tasks": 3},
    ]
    for payload in bad:
        with pytest.raises(urllib.error.HTTPError) as err:
            sandbox.call("POST", "tasks", payload)
        assert err.value.code == 400, payload
    assert sandbox.client("ecs").list_tasks(cluster="c0")["taskArns"] == []


def test_fleet_file_generate_workload_seeds_ten_thousand_tasks_quickly(sandbox, tmp_path):
    started = time.monotonic()
    summary = seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: ENABLED}
            generate:
              - name: "w-{i:04d}"
                count: 1000
                workload:
                  services: [{name: "api", desiredCount: 8}]
                  standaloneTasks: [{count: 2, agent: false}]
    """,
    )
    elapsed = time.monotonic() - started
    assert summary["accounts"]["123456789012"]["us-east-1"] == {
        "bulkTasks": 10000,
        "clusters": 1000,
        "detectorId": summary["accounts"]["123456789012"]["us-east-1"]["detectorId"],
        "services": 1000,
    }
    assert elapsed < 30, elapsed
    ecs = sandbox.client("ecs")
    tasks = tasks_of(ecs, "w-0999")
    assert len(tasks) == 10 and sum(has_agent(t) for t in tasks) == 8
    assert ecs.describe_clusters(clusters=["w-0500"])["clusters"][0]["runningTasksCount"] == 10


def test_fleet_file_rejects_unknown_workload_keys(sandbox, tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as err:
        seed(
            sandbox.url,
            tmp_path,
            """
            regions:
              us-east-1:
                generate: [{name: "w-{i}", count: 1, workload: {pods: 3}}]
        """,
        )
    assert err.value.returncode == 2
