"""The GuardDuty agent as AWS attaches it: the execution role's ECR pull, the platform
version, Windows, an agent that stops later, and what ListCoverage says about it."""

from __future__ import annotations

import json
import urllib.error

import pytest
from botocore.exceptions import ClientError
from test_tasks import AGENT, Fleet, agent_containers, agents

ACCOUNT = "123456789012"
REPO = "arn:aws:ecr:us-east-1:593207742271:repository/aws-guardduty-agent-fargate"
IMAGE = "593207742271.dkr.ecr.us-east-1.amazonaws.com/aws-guardduty-agent-fargate:v1.6.0-Fg_x86_64"
PULL_ERROR = (
    f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    f"{IMAGE}: pulling from host 593207742271.dkr.ecr.us-east-1.amazonaws.com failed with status code "
    "[manifests v1.6.0-Fg_x86_64]: 403 Forbidden"
)


@pytest.fixture
def fleet(sandbox) -> Fleet:
    f = Fleet(sandbox)
    f.coverage("ENABLED", "ENABLED")
    f.cluster("c")
    return f


def register(fleet: Fleet, family: str, **kw) -> str:
    return fleet.ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "app", "image": "nginx"}],
        **kw,
    )["taskDefinition"]["taskDefinitionArn"]


def run(fleet: Fleet, family: str, **kw) -> dict:
    [task] = fleet.ecs.run_task(
        cluster="c", taskDefinition=family, launchType="FARGATE", networkConfiguration=fleet.network(), **kw
    )["tasks"]
    [described] = fleet.ecs.describe_tasks(cluster="c", tasks=[task["taskArn"]])["tasks"]
    return described


def fargate_details(fleet: Fleet) -> tuple[dict, dict]:
    [r] = fleet.gd.list_coverage(DetectorId=fleet.detector)["Resources"]
    return r, r["ResourceDetails"]["EcsClusterDetails"]["FargateDetails"]


def test_an_execution_role_without_ecr_pull_leaves_the_agent_stopped_and_the_task_running(fleet):
    """GuardDuty UG, prereq-runtime-monitoring-ecs-support ("Permissions requirements":
    ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer on the
    repository of ecs-runtime-agent-ecr-image-uri) and gdu-assess-coverage-ecs ("Agent
    exited: Reason: CannotPullContainerError ... Your task will continue to run")."""
    logs_only = fleet.role(
        "logs-only",
        inline={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]},
    )
    register(fleet, "no-pull", executionRoleArn=logs_only)
    task = run(fleet, "no-pull")
    [agent] = agent_containers(task)
    assert task["lastStatus"] == "RUNNING" and agents(task) == []
    assert agent["lastStatus"] == "STOPPED" and agent["reason"] == PULL_ERROR and "exitCode" not in agent
    assert agent["image"] == IMAGE and agent["name"].startswith(AGENT)
    assert [c["lastStatus"] for c in task["containers"] if c is not agent] == ["RUNNING"]
    r, details = fargate_details(fleet)
    assert r["CoverageStatus"] == "UNHEALTHY" and details["ManagementType"] == "AUTO_MANAGED"
    assert details["Issues"] == [f"Agent exited: Reason: {PULL_ERROR} for tasks in TaskDefinition - 'no-pull:1'"]
    assert r["Issue"] == details["Issues"][0]


@pytest.mark.parametrize(
    "statements",
    [
        # pull on the wrong repository
        [{"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:us-east-1:111111111111:repository/x"}],
        # the token, but not the layers
        [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], "Resource": "*"}],
        # an explicit Deny beats the Allow
        [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ECR:Get*", "Resource": "*"},
        ],
        # NotResource excludes the agent repository
        [{"Effect": "Allow", "Action": "ecr:*", "NotResource": "arn:aws:ecr:*:593207742271:repository/*"}],
    ],
)
def test_pull_needs_every_ecr_permission_on_the_agent_repository(fleet, statements):
    """IAM UG, reference_policies_evaluation-logic (explicit Deny wins; Action case-
    insensitive, Resource / NotResource wildcards) on the three pull actions of
    prereq-runtime-monitoring-ecs-support."""
    role = fleet.role("partial", inline={"Version": "2012-10-17", "Statement": statements})
    register(fleet, "partial", executionRoleArn=role)
    [agent] = agent_containers(run(fleet, "partial"))
    assert agent["lastStatus"] == "STOPPED" and agent["reason"].startswith("CannotPullContainerError:")


def test_a_role_scoped_to_the_regions_agent_repository_pulls(fleet):
    """GuardDuty UG, runtime-monitoring-ecr-repository-gdu-agent: the ECR permissions may be
    restricted to the repository that hosts the agent in the Region."""
    role = fleet.role(
        "scoped",
        inline={
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": REPO},
            ],
        },
    )
    register(fleet, "scoped", executionRoleArn=role)
    assert len(agents(run(fleet, "scoped"))) == 1
    assert fargate_details(fleet)[0]["CoverageStatus"] == "HEALTHY"


def test_an_execution_role_that_does_not_exist_cannot_pull(fleet):
    """ECS developer guide, task_execution_IAM_role: Fargate pulls with the execution role;
    a role that does not exist gives no credentials, so the agent image cannot be pulled."""
    register(fleet, "ghost", executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/does-not-exist")
    [agent] = agent_containers(run(fleet, "ghost"))
    assert agent["lastStatus"] == "STOPPED" and agent["reason"] == PULL_ERROR


def test_no_execution_role_means_no_agent_container(fleet):
    """ECS developer guide, ecs-guard-duty-troubleshooting ("What happens when there is no
    task execution role": the task starts without the sidecar) and GuardDuty UG
    gdu-assess-coverage-ecs ("Agent not provisioned: TaskExecutionRole missing from
    TaskDefinition")."""
    register(fleet, "no-role")
    task = run(fleet, "no-role")
    assert task["lastStatus"] == "RUNNING" and agent_containers(task) == []
    r, details = fargate_details(fleet)
    assert r["CoverageStatus"] == "UNHEALTHY"
    assert details["Issues"] == ["Agent not provisioned: TaskExecutionRole missing from TaskDefinition - 'no-role:1'"]


@pytest.mark.parametrize("version", ["1.3.0", "1.0.0"])
def test_no_agent_below_platform_1_4_0(fleet, version):
    """GuardDuty UG, prereq-runtime-monitoring-ecs-support: "The corresponding platform
    version must be at least 1.4.0, or LATEST"."""
    register(fleet, "old", executionRoleArn=fleet.execution_role)
    task = run(fleet, "old", platformVersion=version)
    assert agent_containers(task) == [] and task["platformVersion"] == version
    assert task["platformFamily"] == "Linux"
    assert fargate_details(fleet)[0]["CoverageStatus"] == "UNHEALTHY"
    latest = run(fleet, "old", platformVersion="LATEST")
    assert latest["platformVersion"] == "1.4.0" and len(agents(latest)) == 1


def test_no_agent_on_windows_and_the_task_says_its_family(fleet):
    """GuardDuty UG, prereq-runtime-monitoring-ecs-support: "The Windows platform versions
    are not yet supported"; ECS API reference, Task.platformFamily / RuntimePlatform
    (a Windows Fargate task runs platform version 1.0.0)."""
    family = "WINDOWS_SERVER_2019_FULL"
    register(
        fleet,
        "win",
        executionRoleArn=fleet.execution_role,
        runtimePlatform={"operatingSystemFamily": family, "cpuArchitecture": "X86_64"},
    )
    td = fleet.ecs.describe_task_definition(taskDefinition="win")["taskDefinition"]
    assert td["runtimePlatform"]["operatingSystemFamily"] == family
    assert td["executionRoleArn"] == fleet.execution_role
    task = run(fleet, "win")
    assert agent_containers(task) == []
    assert (task["platformFamily"], task["platformVersion"]) == (family, "1.0.0")
    with pytest.raises(ClientError) as excinfo:
        run(fleet, "win", platformVersion="1.4.0")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_services_and_deployments_report_platform_and_task_definition(fleet, sandbox):
    """ECS API reference, DescribeServices: Service.platformVersion / platformFamily and
    each Deployment's taskDefinition, platformVersion (resolved), platformFamily."""
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    svc = fleet.service("c", "api", count=1)
    assert (svc["platformVersion"], svc["platformFamily"]) == ("LATEST", "Linux")
    [d] = svc["deployments"]
    assert (d["platformVersion"], d["platformFamily"]) == ("1.4.0", "Linux")
    assert d["taskDefinition"] == svc["taskDefinition"]
    fleet.ecs.update_service(cluster="c", service="api", platformVersion="1.3.0")
    [d] = fleet.ecs.describe_services(cluster="c", services=["api"])["services"][0]["deployments"]
    assert d["platformVersion"] == "1.3.0"
    assert [agent_containers(t) for t in fleet.tasks("c", serviceName="api")] == [[]]
    with pytest.raises(ClientError) as excinfo:
        fleet.ecs.update_service(cluster="c", service="api", platformVersion="9.9.9")
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"


def test_an_agent_stopped_later_leaves_the_task_running_and_the_cluster_unhealthy(fleet, sandbox):
    """GuardDuty UG gdu-assess-coverage-ecs: "Agent exited: ExitCode: EXIT_CODE with reason:
    ..."; ECS API reference, Container.exitCode / reason."""
    fleet.service("c", "api", count=2)
    fleet.service("c", "web", count=1)
    assert fargate_details(fleet)[0]["CoverageStatus"] == "HEALTHY"
    [victim, other] = fleet.ecs.list_tasks(cluster="c", serviceName="api")["taskArns"]
    out = sandbox.call(
        "POST",
        "agents/stop",
        {"account": ACCOUNT, "region": "us-east-1", "cluster": "c", "task": victim.rsplit("/", 1)[-1], "reason": "OutOfMemoryError: Container killed due to memory usage", "exitCode": 137},
    )
    assert out == {"stopped": [victim]}
    described = {t["taskArn"]: t for t in fleet.tasks("c")}
    [agent] = agent_containers(described[victim])
    assert described[victim]["lastStatus"] == "RUNNING"
    assert (agent["lastStatus"], agent["exitCode"], agent["reason"]) == (
        "STOPPED",
        137,
        "OutOfMemoryError: Container killed due to memory usage",
    )
    assert len(agents(described[other])) == 1
    r, details = fargate_details(fleet)
    assert r["CoverageStatus"] == "UNHEALTHY" and details["Issues"] == [
        "Agent exited: ExitCode: 137 with reason: 'OutOfMemoryError: Container killed due to memory usage' "
        "for tasks in TaskDefinition - 'web:1'"
    ]
    # every running task of a service, default exit code 1, no reason
    out = sandbox.call("POST", "agents/stop", {"account": ACCOUNT, "region": "us-east-1", "cluster": "c", "service": "web"})
    [web_task] = fleet.tasks("c", serviceName="web")
    assert out == {"stopped": [web_task["taskArn"]]}
    [agent] = agent_containers(web_task)
    assert agent["exitCode"] == 1 and "reason" not in agent
    assert "Agent exited: ExitCode: 1 for tasks in TaskDefinition - 'web:1'" in fargate_details(fleet)[1]["Issues"]
    stats = fleet.gd.get_coverage_statistics(DetectorId=fleet.detector, StatisticsType=["COUNT_BY_COVERAGE_STATUS"])
    assert stats["CoverageStatistics"]["CountByCoverageStatus"] == {"UNHEALTHY": 1}
    # a redeploy brings new tasks with a running agent
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    for name in ("api", "web"):
        fleet.ecs.update_service(cluster="c", service=name, forceNewDeployment=True)
    assert fargate_details(fleet)[0]["CoverageStatus"] == "HEALTHY"


@pytest.mark.parametrize(
    "payload",
    [
        {"cluster": "c", "service": "nope"},  # nothing matches
        {"cluster": "c", "task": "0" * 32},
        {"cluster": "c"},  # neither task nor service
        {"cluster": "c", "service": "api", "task": "x"},
        {"cluster": "c", "service": "api", "exitCode": "1"},
        {"cluster": "c", "service": "api", "color": "red"},
        {"cluster": "missing", "service": "api"},
    ],
)
def test_stopping_agents_refuses_what_matches_nothing_or_is_malformed(fleet, sandbox, payload):
    fleet.service("c", "api", count=1)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        sandbox.call("POST", "agents/stop", {"account": ACCOUNT, "region": "us-east-1", **payload})
    assert excinfo.value.code == 400
    assert len(agents(fleet.tasks("c", serviceName="api")[0])) == 1  # nothing changed


def test_offboarded_cluster_with_agent_tasks_is_listed_as_disabled(fleet):
    """FargateDetails.managementType (GuardDuty API reference): DISABLED "indicates that the
    deployment of the GuardDuty security agent is disabled for this resource" — a cluster
    tagged out of coverage whose running tasks still carry the agent (they keep it until
    replaced: gdu-assess-coverage-ecs, tasks are immutable)."""
    fleet.service("c", "api", count=1)
    arn = fleet.ecs.describe_clusters(clusters=["c"])["clusters"][0]["clusterArn"]
    fleet.ecs.tag_resource(resourceArn=arn, tags=[{"key": "GuardDutyManaged", "value": "false"}])
    r, details = fargate_details(fleet)
    assert details == {"ManagementType": "DISABLED", "Issues": []} and r["CoverageStatus"] == "HEALTHY"
    filtered = fleet.gd.list_coverage(
        DetectorId=fleet.detector,
        FilterCriteria={"FilterCriterion": [{"CriterionKey": "MANAGEMENT_TYPE", "FilterCondition": {"Equals": ["AUTO_MANAGED"]}}]},
    )["Resources"]
    assert filtered == []


def test_fargate_details_wire_shape(fleet, sandbox):
    """GuardDuty API reference, FargateDetails: `issues` (0-50 strings) and
    `managementType` in lowerCamel on the wire."""
    fleet.service("c", "api", count=1)
    status, _, body = sandbox.raw("guardduty", "POST", f"/detector/{fleet.detector}/coverage", {})
    details = body["resources"][0]["resourceDetails"]["ecsClusterDetails"]["fargateDetails"]
    assert status == 200 and details == {"managementType": "AUTO_MANAGED", "issues": []}
    assert json.dumps(details)  # plain JSON
