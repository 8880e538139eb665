"""ECS tasks and services with the GuardDuty agent sidecar: injection by effective
coverage, RunTask / ListTasks / DescribeTasks like AWS."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

AGENT = "aws-guardduty-agent-"


EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


class Fleet:
    """A region with a detector, task definitions and a subnet, for tests. `web` (Fargate)
    runs with the task execution role `exec` (AWS managed AmazonECSTaskExecutionRolePolicy:
    the agent can be pulled)."""

    def __init__(self, sandbox, region: str = "us-east-1"):
        self.sandbox = sandbox
        self.ecs, self.gd = sandbox.client("ecs", region), sandbox.client("guardduty", region)
        self.iam = sandbox.client("iam")
        self.subnet = sandbox.client("ec2", region).describe_subnets()["Subnets"][0]["SubnetId"]
        self.detector = None
        self.execution_role = self.role("exec", managed=[EXECUTION_POLICY])
        self.ecs.register_task_definition(
            family="web",
            executionRoleArn=self.execution_role,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "app", "image": "nginx"},
                {"name": "log-router", "image": "fluent-bit"},
            ],
        )
        self.ecs.register_task_definition(
            family="legacy",
            networkMode="bridge",
            containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
        )

    def role(self, name: str, managed: list[str] = (), inline: dict | None = None) -> str:
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        for policy in managed:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=policy)
        if inline is not None:
            self.iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
        return arn

    def coverage(self, runtime: str, automated: str) -> Fleet:
        feature = [
            {
                "Name": "RUNTIME_MONITORING",
                "Status": runtime,
                "AdditionalConfiguration": [{"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "Status": automated}],
            }
        ]
        if self.detector is None:
            self.detector = self.gd.create_detector(Enable=True, Features=feature)["DetectorId"]
        else:
            self.gd.update_detector(DetectorId=self.detector, Features=feature)
        return self

    def cluster(self, name: str, managed: str | None = None) -> str:
        tags = [{"key": "GuardDutyManaged", "value": managed}] if managed is not None else []
        return self.ecs.create_cluster(clusterName=name, tags=tags)["cluster"]["clusterArn"]

    def network(self) -> dict:
        return {"awsvpcConfiguration": {"subnets": [self.subnet]}}

    def service(self, cluster: str, name: str, count: int = 2, launch_type: str = "FARGATE", **kw) -> dict:
        if launch_type == "FARGATE":
            kw.setdefault("networkConfiguration", self.network())
        td = "web" if launch_type == "FARGATE" else "legacy"
        return self.ecs.create_service(
            cluster=cluster,
            serviceName=name,
            taskDefinition=td,
            desiredCount=count,
            launchType=launch_type,
            **kw,
        )["service"]

    def run(self, cluster: str, count: int = 1, launch_type: str = "FARGATE") -> list[dict]:
        kw = {"networkConfiguration": self.network()} if launch_type == "FARGATE" else {}
        td = "web" if launch_type == "FARGATE" else "legacy"
        return self.ecs.run_task(
            cluster=cluster, taskDefinition=td, count=count, launchType=launch_type, **kw
        )["tasks"]

    def tasks(self, cluster: str, **filters) -> list[dict]:
        arns = self.ecs.list_tasks(cluster=cluster, **filters)["taskArns"]
        return self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def agents(task: dict) -> list[str]:
    """The names of the task's agent containers that RUN (a STOPPED one does not count)."""
    return [c["name"] for c in task["containers"] if c["name"].startswith(AGENT) and c["lastStatus"] == "RUNNING"]


def agent_containers(task: dict) -> list[dict]:
    """Every agent container of the task, whatever its state."""
    return [c for c in task["containers"] if c["name"].startswith(AGENT)]


@pytest.fixture
def fleet(sandbox) -> Fleet:
    return Fleet(sandbox)


@pytest.mark.parametrize(
    "runtime, automated, tag, expect_agent",
    [
        ("ENABLED", "ENABLED", None, True),
        ("ENABLED", "ENABLED", "true", True),
        ("ENABLED", "ENABLED", "false", False),
        ("ENABLED", "DISABLED", None, False),
        ("ENABLED", "DISABLED", "true", True),
        ("ENABLED", "DISABLED", "false", False),
        ("ENABLED", "ENABLED", "FALSE", True),  # case-sensitive: only "false" excludes
        ("ENABLED", "DISABLED", "True", False),  # and only "true" includes
        ("DISABLED", "ENABLED", "true", False),
        ("DISABLED", "DISABLED", "true", False),
    ],
)
def test_agent_is_injected_into_new_fargate_tasks_of_covered_clusters_only(
    fleet, runtime, automated, tag, expect_agent
):
    fleet.coverage(runtime, automated)
    fleet.cluster("c", tag)
    [task] = fleet.run("c")
    assert [c["name"] for c in task["containers"]][:2] == ["app", "log-router"]
    assert len(agents(task)) == (1 if expect_agent else 0)
    if expect_agent:
        assert len(agents(task)[0]) == len(AGENT) + 6


def test_no_detector_means_no_agent_and_ec2_tasks_never_get_one(fleet):
    fleet.cluster("c", "true")
    assert agents(fleet.run("c")[0]) == []
    fleet.coverage("ENABLED", "ENABLED")
    [ec2_task] = fleet.run("c", launch_type="EC2")
    assert ec2_task["launchType"] == "EC2" and agents(ec2_task) == []


def test_suspended_detector_injects_no_agent(fleet):
    fleet.coverage("ENABLED", "ENABLED")
    fleet.cluster("c")
    fleet.gd.update_detector(DetectorId=fleet.detector, Enable=False)
    assert agents(fleet.run("c")[0]) == []


def test_coverage_change_affects_new_tasks_only(fleet):
    fleet.coverage("ENABLED", "DISABLED")
    fleet.cluster("c")
    [old] = fleet.run("c")
    fleet.coverage("ENABLED", "ENABLED")
    [new] = fleet.run("c")
    described = {t["taskArn"]: t for t in fleet.tasks("c")}
    assert agents(described[old["taskArn"]]) == [] and len(agents(described[new["taskArn"]])) == 1


def test_describe_tasks_returns_every_container_and_epoch_timestamps(fleet, sandbox):
    fleet.coverage("ENABLED", "ENABLED")
    fleet.cluster("c")
    [task] = fleet.run("c")
    status, _, body = sandbox.raw(
        "ecs",
        "POST",
        "/",
        {"cluster": "c", "tasks": [task["taskArn"]]},
        target="AmazonEC2ContainerServiceV20141113.DescribeTasks",
    )
    [wire] = body["tasks"]
    assert status == 200 and len(wire["containers"]) == 3
    assert isinstance(wire["createdAt"], (int, float)) and wire["lastStatus"] == "RUNNING"
    assert wire["launchType"] == "FARGATE" and wire["platformVersion"]


def test_run_task_on_fargate_needs_no_container_memory_but_a_network(fleet):
    fleet.cluster("c")
    assert fleet.run("c", count=3)[0]["lastStatus"] == "RUNNING"
    with pytest.raises(ClientError) as excinfo:
        fleet.ecs.run_task(cluster="c", taskDefinition="web", launchType="FARGATE")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_list_tasks_matches_cluster_exactly_filters_service_and_defaults_to_running(fleet):
    fleet.cluster("prod")
    fleet.cluster("prod-2")
    fleet.service("prod", "api", count=2)
    fleet.service("prod", "worker", count=1)
    [standalone] = fleet.run("prod")
    fleet.run("prod-2", count=2)
    assert len(fleet.ecs.list_tasks(cluster="prod")["taskArns"]) == 4
    assert len(fleet.ecs.list_tasks(cluster="prod", serviceName="api")["taskArns"]) == 2
    assert len(fleet.ecs.list_tasks(cluster="prod", serviceName="worker")["taskArns"]) == 1
    fleet.ecs.stop_task(cluster="prod", task=standalone["taskArn"])
    running = fleet.ecs.list_tasks(cluster="prod")["taskArns"]
    assert standalone["taskArn"] not in running and len(running) == 3
    assert fleet.ecs.list_tasks(cluster="prod", desiredStatus="STOPPED")["taskArns"] == [
        standalone["taskArn"]
    ]
    with pytest.raises(ClientError) as excinfo:
        fleet.ecs.list_tasks(cluster="nope")
    assert excinfo.value.response["Error"]["Code"] == "ClusterNotFoundException"


def test_list_tasks_pages(fleet):
    fleet.cluster("c")
    for _ in range(3):
        fleet.run("c", count=10)
    pages = [
        p["taskArns"]
        for p in fleet.ecs.get_paginator("list_tasks").paginate(
            cluster="c", PaginationConfig={"PageSize": 12}
        )
    ]
    assert [len(p) for p in pages] == [12, 12, 6]


def test_stopped_service_task_is_replaced(fleet):
    fleet.coverage("ENABLED", "ENABLED")
    fleet.cluster("c")
    fleet.service("c", "api", count=2)
    victim = fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"][0]
    fleet.ecs.stop_task(cluster="c", task=victim)
    running = fleet.tasks("c", serviceName="api")
    assert len(running) == 2 and victim not in [t["taskArn"] for t in running]
    assert all(agents(t) for t in running)


def test_agent_missing_knob_gives_a_services_new_tasks_a_stopped_agent(fleet, sandbox):
    """The knob models an execution role without ECR pull: the agent container is there,
    STOPPED with a CannotPullContainerError reason (GuardDuty UG gdu-assess-coverage-ecs,
    "Agent exited")."""
    fleet.coverage("ENABLED", "ENABLED")
    fleet.cluster("c")
    sandbox.call("POST", "knobs", {"agentMissing": ["api"]})
    fleet.service("c", "api", count=2)
    fleet.service("c", "web", count=1)
    api = fleet.tasks("c", serviceName="api")
    assert [agents(t) for t in api] == [[], []]
    assert [[c["lastStatus"] for c in agent_containers(t)] for t in api] == [["STOPPED"], ["STOPPED"]]
    assert all(agent_containers(t)[0]["reason"].startswith("CannotPullContainerError:") for t in api)
    assert len(agents(fleet.tasks("c", serviceName="web")[0])) == 1
    assert sandbox.call("GET", "knobs")["agentMissing"] == {"api": True}
    sandbox.call("POST", "knobs", {"agentMissing": {"api": False}})
    assert sandbox.call("GET", "knobs")["agentMissing"] == {}


def test_platform_version_below_1_4_gets_no_agent(fleet):
    fleet.coverage("ENABLED", "ENABLED")
    fleet.cluster("c")
    fleet.service("c", "old", count=1, platformVersion="1.3.0")
    assert agents(fleet.tasks("c")[0]) == []
