"""Deployment controllers (issue 14): CODE_DEPLOY services with task sets and CodeDeploy
deployments, EXTERNAL services with CreateTaskSet, and ECS blue/green rollouts that bake."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError
from conftest import SANDBOX_DIR
from test_server import seed
from test_tasks import Fleet, agents

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/0123456789abcdef"
LB = [{"targetGroupArn": TG, "containerName": "app", "containerPort": 80}]


@pytest.fixture
def fleet(sandbox) -> Fleet:
    return Fleet(sandbox)


def describe(fleet: Fleet, service: str, cluster: str = "c") -> dict:
    return fleet.ecs.describe_services(cluster=cluster, services=[service])["services"][0]


def until(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def codedeploy_service(fleet: Fleet, name: str = "api", count: int = 2, group: bool = True) -> dict:
    svc = fleet.service("c", name, count=count, deploymentController={"type": "CODE_DEPLOY"}, loadBalancers=LB)
    if group:
        cd = fleet.sandbox.client("codedeploy")
        try:
            cd.create_application(applicationName="gec-c", computePlatform="ECS")
        except ClientError:
            pass
        cd.create_deployment_group(**group_args(name))
    return svc


def group_args(service: str, group: str | None = None) -> dict:
    return dict(
        applicationName="gec-c",
        deploymentGroupName=group or service,
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        loadBalancerInfo={
            "targetGroupPairInfoList": [
                {"targetGroups": [{"name": "blue"}, {"name": "green"}], "prodTrafficRoute": {"listenerArns": ["arn:l"]}}
            ]
        },
        ecsServices=[{"serviceName": service, "clusterName": "c"}],
    )


def appspec(task_definition: str, container: str = "app", port: int = 80) -> dict:
    content = {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": task_definition,
                        "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port},
                    },
                }
            }
        ],
    }
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(content)}}


def deploy(fleet: Fleet, service: str = "api", **kw) -> str:
    td = describe(fleet, service)["taskDefinition"]
    cd = fleet.sandbox.client("codedeploy")
    return cd.create_deployment(
        applicationName="gec-c", deploymentGroupName=service, revision=appspec(td, **kw)
    )["deploymentId"]


def status(fleet: Fleet, deployment_id: str) -> dict:
    return fleet.sandbox.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]


# ECS services keep controller, strategy, load balancers ---------------------------------


def test_create_service_keeps_controller_strategy_bake_time_and_load_balancers(fleet):
    fleet.cluster("c")
    fleet.service(
        "c",
        "bg",
        deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5},
        loadBalancers=LB,
    )
    svc = describe(fleet, "bg")
    assert svc["deploymentController"] == {"type": "ECS"}
    assert svc["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert svc["deploymentConfiguration"]["bakeTimeInMinutes"] == 5
    assert svc["loadBalancers"] == LB
    fleet.service("c", "plain")
    plain = describe(fleet, "plain")
    assert plain["deploymentConfiguration"]["strategy"] == "ROLLING" and plain["loadBalancers"] == []


@pytest.mark.parametrize(
    "kw",
    [
        {"deploymentController": {"type": "BLUE"}},
        {"deploymentConfiguration": {"strategy": "SIDEWAYS"}},
        {"deploymentConfiguration": {"strategy": "BLUE_GREEN"}},  # bake time required
        {"deploymentController": {"type": "CODE_DEPLOY"}},  # no load balancer
        {"deploymentController": {"type": "CODE_DEPLOY"}, "loadBalancers": [{**LB[0], "containerName": "nope"}]},
        {"deploymentController": {"type": "EXTERNAL"}, "deploymentConfiguration": {"strategy": "CANARY"}},
    ],
)
def test_create_service_refuses_bad_deployment_settings(fleet, kw):
    fleet.cluster("c")
    with pytest.raises(ClientError) as err:
        fleet.service("c", "x", **kw)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert fleet.ecs.list_services(cluster="c")["serviceArns"] == []


def test_codedeploy_service_runs_a_primary_task_set(fleet, sandbox):
    fleet.cluster("c")
    codedeploy_service(fleet, group=False)
    svc = describe(fleet, "api")
    assert svc["deploymentController"] == {"type": "CODE_DEPLOY"}
    assert svc["deployments"] == []
    [ts] = svc["taskSets"]
    assert ts["status"] == "PRIMARY" and ts["id"].startswith("ecs-svc/") and len(ts["id"]) == 8 + 19
    assert ts["computedDesiredCount"] == 2 and ts["runningCount"] == 2 and ts["stabilityStatus"] == "STEADY_STATE"
    assert ts["taskSetArn"].endswith(f"task-set/c/api/{ts['id']}") and ts["loadBalancers"] == LB
    tasks = fleet.tasks("c", serviceName="api")
    assert {t["startedBy"] for t in tasks} == {ts["id"]} and {t["group"] for t in tasks} == {"service:api"}
    _, _, body = sandbox.raw(
        "ecs", "POST", "/", {"cluster": "c", "services": ["api"]},
        target="AmazonEC2ContainerServiceV20141113.DescribeServices",
    )
    assert isinstance(body["services"][0]["taskSets"][0]["createdAt"], (int, float))


def test_update_service_on_codedeploy_service_refuses_a_new_deployment_but_scales(fleet):
    fleet.cluster("c")
    codedeploy_service(fleet, group=False)
    for kw in ({"forceNewDeployment": True}, {"taskDefinition": "web"}, {"platformVersion": "1.4.0"}):
        with pytest.raises(ClientError) as err:
            fleet.ecs.update_service(cluster="c", service="api", **kw)
        assert err.value.response["Error"]["Code"] == "InvalidParameterException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment." in str(err.value)
    with pytest.raises(ClientError) as err:
        fleet.ecs.update_service(cluster="c", service="api", taskDefinition="web")
    assert err.value.response["Error"]["Message"] == (
        "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
        "Use AWS CodeDeploy to trigger a new deployment."
    )
    fleet.ecs.update_service(cluster="c", service="api", desiredCount=3)
    svc = describe(fleet, "api")
    assert svc["runningCount"] == 3 and svc["taskSets"][0]["runningCount"] == 3


# EXTERNAL ---------------------------------------------------------------------------------


def test_external_service_refuses_updates_and_runs_task_sets_made_by_its_deployer(fleet):
    fleet.cluster("c")
    fleet.service("c", "ext", count=2, deploymentController={"type": "EXTERNAL"})
    assert describe(fleet, "ext")["taskSets"] == [] and fleet.tasks("c", serviceName="ext") == []
    with pytest.raises(ClientError) as err:
        fleet.ecs.update_service(cluster="c", service="ext", forceNewDeployment=True)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "EXTERNAL deployment controller" in str(err.value)
    ts = fleet.ecs.create_task_set(
        cluster="c", service="ext", taskDefinition="web", externalId="spinnaker", networkConfiguration=fleet.network()
    )["taskSet"]
    assert "startedBy" not in ts and ts["externalId"] == "spinnaker" and ts["status"] == "PRIMARY"
    tasks = fleet.tasks("c", serviceName="ext")
    assert len(tasks) == 2 and {t["startedBy"] for t in tasks} == {ts["id"]}
    [described] = fleet.ecs.describe_task_sets(cluster="c", service="ext")["taskSets"]
    assert described["id"] == ts["id"] and described["runningCount"] == 2


def test_create_task_set_only_for_external_services(fleet):
    fleet.cluster("c")
    fleet.service("c", "api")
    with pytest.raises(ClientError) as err:
        fleet.ecs.create_task_set(cluster="c", service="api", taskDefinition="web", networkConfiguration=fleet.network())
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


# CodeDeploy ---------------------------------------------------------------------------------


def test_codedeploy_deployment_replaces_the_tasks_and_succeeds(fleet, sandbox):
    # Long enough that both generations are still there when read on a loaded machine.
    sandbox.call("POST", "config", {"rolloutSeconds": 3})
    fleet.coverage("ENABLED", "DISABLED")
    fleet.cluster("c")
    codedeploy_service(fleet)
    old = {t["taskArn"] for t in fleet.tasks("c", serviceName="api")}
    assert all(not agents(t) for t in fleet.tasks("c", serviceName="api"))
    original = describe(fleet, "api")["taskSets"][0]["id"]
    fleet.coverage("ENABLED", "ENABLED")

    deployment_id = deploy(fleet)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", deployment_id)
    until(lambda: status(fleet, deployment_id)["status"] == "InProgress")
    sets = describe(fleet, "api")["taskSets"]
    assert [(s["status"], s.get("startedBy"), s.get("externalId")) for s in sets] == [
        ("PRIMARY", None, None),
        ("ACTIVE", "CODE_DEPLOY", deployment_id),
    ]
    assert len(fleet.tasks("c", serviceName="api")) == 4  # both generations during the deployment

    info = until(lambda: (d := status(fleet, deployment_id))["status"] == "Succeeded" and d)
    assert info["completeTime"] >= info["createTime"]
    [ts] = describe(fleet, "api")["taskSets"]
    assert ts["status"] == "PRIMARY" and ts["externalId"] == deployment_id and ts["id"] != original
    new = fleet.tasks("c", serviceName="api")
    assert len(new) == 2 and not old & {t["taskArn"] for t in new}
    assert all(len(agents(t)) == 1 for t in new)


def test_codedeploy_answers_have_epoch_number_timestamps(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    fleet.cluster("c")
    codedeploy_service(fleet)
    deployment_id = deploy(fleet)
    target = "CodeDeploy_20141006."
    _, _, body = sandbox.raw("codedeploy", "POST", "/", {"deploymentId": deployment_id}, target=target + "GetDeployment")
    info = body["deploymentInfo"]
    assert info["status"] == "Succeeded"
    for key in ("createTime", "startTime", "completeTime"):
        assert isinstance(info[key], (int, float)), key
    _, _, body = sandbox.raw("codedeploy", "POST", "/", {"applicationNames": ["gec-c"]}, target=target + "BatchGetApplications")
    assert isinstance(body["applicationsInfo"][0]["createTime"], (int, float))
    _, _, body = sandbox.raw(
        "codedeploy", "POST", "/", {"applicationName": "gec-c", "deploymentGroupNames": ["api", "nope"]},
        target=target + "BatchGetDeploymentGroups",
    )
    [group] = body["deploymentGroupsInfo"]
    assert group["ecsServices"] == [{"serviceName": "api", "clusterName": "c"}] and "nope" in body["errorMessage"]
    assert isinstance(group["lastSuccessfulDeployment"]["createTime"], (int, float))
    status_code, headers, body = sandbox.raw(
        "codedeploy", "POST", "/", {"applicationName": "gec-c", "deploymentGroupNames": ["g"] * 101},
        target=target + "BatchGetDeploymentGroups",
    )
    assert status_code == 400 and headers["x-amzn-errortype"] == "BatchLimitExceededException"


def test_codedeploy_failed_by_knob_keeps_the_original_tasks(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0.3})
    sandbox.call("POST", "knobs", {"failCodeDeploy": ["api"]})
    fleet.cluster("c")
    codedeploy_service(fleet)
    before = describe(fleet, "api")["taskSets"][0]
    old = {t["taskArn"] for t in fleet.tasks("c", serviceName="api")}
    deployment_id = deploy(fleet)
    info = until(lambda: (d := status(fleet, deployment_id))["status"] not in ("Created", "InProgress") and d)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    [ts] = describe(fleet, "api")["taskSets"]
    assert ts["id"] == before["id"] and ts["status"] == "PRIMARY"
    assert {t["taskArn"] for t in fleet.tasks("c", serviceName="api")} == old
    assert sandbox.call("GET", "knobs")["failCodeDeploy"] == {}  # used up


def test_codedeploy_stopped_by_knob_and_stop_deployment(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0.3})
    sandbox.call("POST", "knobs", {"stopCodeDeploy": ["api"]})
    fleet.cluster("c")
    codedeploy_service(fleet)
    first = deploy(fleet)
    assert until(lambda: status(fleet, first)["status"] == "Stopped")
    sandbox.call("POST", "config", {"rolloutSeconds": 30})
    second = deploy(fleet)
    cd = sandbox.client("codedeploy")
    assert cd.stop_deployment(deploymentId=second)["status"] == "Succeeded"
    assert status(fleet, second)["status"] == "Stopped"
    assert len(describe(fleet, "api")["taskSets"]) == 1 and len(fleet.tasks("c", serviceName="api")) == 2
    with pytest.raises(ClientError) as err:
        cd.stop_deployment(deploymentId=second)
    assert err.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"


def test_one_active_deployment_per_group(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 30})
    fleet.cluster("c")
    codedeploy_service(fleet)
    first = deploy(fleet)
    with pytest.raises(ClientError) as err:
        deploy(fleet)
    assert err.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert err.value.response["Error"]["Message"] == f"The Deployment Group 'api' already has an active Deployment '{first}'"
    cd = sandbox.client("codedeploy")
    active = cd.list_deployments(
        applicationName="gec-c", deploymentGroupName="api", includeOnlyStatuses=["Created", "Queued", "InProgress"]
    )["deployments"]
    assert active == [first]
    recent = cd.list_deployments(
        applicationName="gec-c", deploymentGroupName="api", createTimeRange={"start": time.time() - 3600}
    )["deployments"]
    assert recent == [first]
    assert cd.list_deployments(
        applicationName="gec-c", deploymentGroupName="api", createTimeRange={"end": time.time() - 3600}
    )["deployments"] == []
    [info] = cd.batch_get_deployments(deploymentIds=[first])["deploymentsInfo"]
    assert info["deploymentId"] == first


def test_appspec_that_does_not_match_the_load_balancer_fails_the_deployment(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    fleet.cluster("c")
    codedeploy_service(fleet)
    deployment_id = deploy(fleet, port=8080)
    info = status(fleet, deployment_id)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    with pytest.raises(ClientError) as err:
        sandbox.client("codedeploy").create_deployment(
            applicationName="gec-c",
            deploymentGroupName="api",
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{not: [valid"}},
        )
    assert err.value.response["Error"]["Code"] == "InvalidRevisionException"


def test_deployment_group_needs_a_codedeploy_service_and_one_group_per_service(fleet, sandbox):
    fleet.cluster("c")
    fleet.service("c", "rolling")
    codedeploy_service(fleet)
    cd = sandbox.client("codedeploy")
    with pytest.raises(ClientError) as err:
        cd.create_deployment_group(**group_args("rolling"))
    assert err.value.response["Error"]["Code"] == "InvalidECSServiceException"
    with pytest.raises(ClientError) as err:
        cd.create_deployment_group(**group_args("api", group="second"))
    assert err.value.response["Error"]["Code"] == "ECSServiceMappingLimitExceededException"
    with pytest.raises(ClientError) as err:
        cd.create_deployment_group(**group_args("missing"))
    assert err.value.response["Error"]["Code"] == "InvalidECSServiceException"


# ECS blue/green --------------------------------------------------------------------------


def test_ecs_blue_green_rollout_bakes_with_both_generations_then_completes(fleet, sandbox):
    # A 4 s bake: both generations are still there when read on a loaded machine.
    sandbox.call("POST", "config", {"rolloutSeconds": 0.2, "bakeSecondsPerMinute": 2})
    fleet.cluster("c")
    fleet.service("c", "bg", count=2, deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2})
    blue = {t["taskArn"] for t in fleet.tasks("c", serviceName="bg")}
    fleet.ecs.update_service(cluster="c", service="bg", forceNewDeployment=True)

    baking = until(lambda: len(fleet.tasks("c", serviceName="bg")) == 4)
    assert baking
    svc = describe(fleet, "bg")
    assert svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert blue < {t["taskArn"] for t in fleet.tasks("c", serviceName="bg")}

    svc = until(lambda: (s := describe(fleet, "bg"))["deployments"][0]["rolloutState"] == "COMPLETED" and s)
    assert len(svc["deployments"]) == 1
    green = {t["taskArn"] for t in fleet.tasks("c", serviceName="bg")}
    assert len(green) == 2 and not blue & green


def test_ecs_blue_green_fail_rollout_knob_still_fails(fleet, sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0.2, "bakeSecondsPerMinute": 0.5})
    sandbox.call("POST", "knobs", {"failRollout": ["bg"]})
    fleet.cluster("c")
    fleet.service("c", "bg", count=1, deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1})
    fleet.ecs.update_service(cluster="c", service="bg", forceNewDeployment=True)
    svc = until(lambda: (s := describe(fleet, "bg"))["deployments"][0]["rolloutState"] == "FAILED" and s)
    assert len(fleet.tasks("c", serviceName="bg")) == 1 and svc["deployments"][1]["status"] == "ACTIVE"


# Fleet file ----------------------------------------------------------------------------


def test_seed_deployment_controller_keys(sandbox, tmp_path):
    seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            clusters: [{name: c}]
            services:
              - {name: rolling, cluster: c}
              - {name: bg, cluster: c, strategy: BLUE_GREEN, bakeTimeInMinutes: 3}
              - {name: cd, cluster: c, deploymentController: CODE_DEPLOY, desiredCount: 2}
              - {name: cd-alone, cluster: c, deploymentController: CODE_DEPLOY, deploymentGroup: none,
                 loadBalancer: {containerName: app, containerPort: 8080}}
              - {name: ext, cluster: c, deploymentController: EXTERNAL}
        """,
    )
    ecs, cd = sandbox.client("ecs"), sandbox.client("codedeploy")
    svcs = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster="c", services=["rolling", "bg", "cd", "cd-alone", "ext"])["services"]
    }
    assert svcs["rolling"]["deploymentConfiguration"]["strategy"] == "ROLLING"
    assert svcs["bg"]["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert svcs["bg"]["deploymentConfiguration"]["bakeTimeInMinutes"] == 3
    assert svcs["cd"]["deploymentController"]["type"] == "CODE_DEPLOY"
    assert [(lb["containerName"], lb["containerPort"]) for lb in svcs["cd"]["loadBalancers"]] == [("app", 80)]
    assert svcs["cd"]["taskSets"][0]["runningCount"] == 2
    assert svcs["cd-alone"]["loadBalancers"][0]["containerPort"] == 8080
    assert [t["externalId"] for t in svcs["ext"]["taskSets"]] == ["external-deployer"]
    assert svcs["ext"]["runningCount"] == 1
    assert cd.list_applications()["applications"] == ["gec-c"]
    assert cd.list_deployment_groups(applicationName="gec-c")["deploymentGroups"] == ["cd"]
    [group] = cd.batch_get_deployment_groups(applicationName="gec-c", deploymentGroupNames=["cd"])["deploymentGroupsInfo"]
    assert group["ecsServices"] == [{"serviceName": "cd", "clusterName": "c"}]


@pytest.mark.parametrize(
    "entry",
    [
        "{name: a, cluster: c, deploymentController: ROLLING}",
        "{name: a, cluster: c, strategy: RED_BLACK}",
        "{name: a, cluster: c, deploymentController: CODE_DEPLOY, strategy: BLUE_GREEN}",
        "{name: a, cluster: c, deploymentGroup: none}",
        "{name: a, cluster: c, externalId: x}",
        "{name: a, cluster: c, loadBalancer: {containerPort: 0}}",
        "{name: a, cluster: c, bakeTimeInMinutes: -1}",
    ],
)
def test_seed_rejects_bad_deployment_keys(sandbox, tmp_path, entry):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"regions:\n  us-east-1:\n    clusters: [{{name: c}}]\n    services:\n      - {entry}\n")
    out = subprocess.run(
        [sys.executable, "-m", "gec_sandbox", "seed", "--endpoint", sandbox.url, str(fleet)],
        env=dict(os.environ, PYTHONPATH=SANDBOX_DIR),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert sandbox.client("ecs").list_clusters()["clusterArns"] == []


def test_codedeploy_requests_can_be_faulted(sandbox):
    sandbox.call("POST", "faults", {"rules": [{"service": "codedeploy", "operation": "ListApplications", "fault": "throttle", "count": 1}]})
    cd = sandbox.client("codedeploy")
    status_code, headers, _ = sandbox.raw("codedeploy", "POST", "/", {}, target="CodeDeploy_20141006.ListApplications")
    assert status_code == 400 and headers["x-amzn-errortype"] == "ThrottlingException"
    assert cd.list_applications()["applications"] == []
