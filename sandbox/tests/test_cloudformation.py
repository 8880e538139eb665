"""Services that moto creates itself (CloudFormation `AWS::ECS::Service`) work with the
sandbox's DescribeServices and UpdateService, like ones made by CreateService."""

from __future__ import annotations

import json

STACK = {
    "Resources": {
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "cfn"}},
        "TaskDef": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": "cfn-app",
                "ContainerDefinitions": [{"Name": "app", "Image": "nginx", "Memory": 128}],
            },
        },
        "Service": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": {"Ref": "Cluster"},
                "ServiceName": "svc",
                "TaskDefinition": {"Ref": "TaskDef"},
                "DesiredCount": 2,
                "LaunchType": "EC2",
            },
        },
    }
}


def test_a_cloudformation_service_is_described_steady_and_redeploys(sandbox):
    sandbox.call("POST", "config", {"rolloutSeconds": 0})
    sandbox.client("cloudformation").create_stack(StackName="app", TemplateBody=json.dumps(STACK))
    ecs = sandbox.client("ecs")

    # Used to fail with 500: the moto Service had no `gec_circuit_breaker`.
    status, _, body = sandbox.raw(
        "ecs",
        "POST",
        "/",
        {"cluster": "cfn", "services": ["svc"]},
        target="AmazonEC2ContainerServiceV20141113.DescribeServices",
    )
    assert status == 200, body
    [wire] = body["services"]
    assert wire["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}
    [d] = wire["deployments"]
    assert isinstance(wire["createdAt"], (int, float))
    assert isinstance(d["createdAt"], (int, float)) and isinstance(d["updatedAt"], (int, float))
    assert (d["status"], d["rolloutState"], d["runningCount"]) == ("PRIMARY", "COMPLETED", 2)
    assert len(ecs.list_tasks(cluster="cfn", serviceName="svc")["taskArns"]) == 2

    old = set(ecs.list_tasks(cluster="cfn", serviceName="svc")["taskArns"])
    updated = ecs.update_service(cluster="cfn", service="svc", forceNewDeployment=True)["service"]
    assert updated["deployments"][0]["rolloutState"] == "COMPLETED"  # rolloutSeconds 0
    new = set(ecs.list_tasks(cluster="cfn", serviceName="svc")["taskArns"])
    assert len(new) == 2 and not new & old
