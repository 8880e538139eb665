"""Task sets: how CODE_DEPLOY and EXTERNAL services run their tasks (ECS API reference,
TaskSet, CreateTaskSet, DescribeTaskSets). A CODE_DEPLOY service gets its first task set
(PRIMARY) from CreateService; CodeDeploy deployments add a replacement set (codedeploy.py);
an EXTERNAL service's deployer makes them with CreateTaskSet. A task set's tasks have
`startedBy` = the task set id and `group` = `service:NAME`, like AWS's.

Task sets are dicts in `service.gec_task_sets` (PRIMARY first); a task's
`deployment_id` is its task set's id."""

from __future__ import annotations

import math
import random
from typing import Any

from .awsreq import AwsRequest, now
from .ecs import invalid
from .ecs_tasks import check_network, check_platform, cluster_obj, launch_type_of, stop, task_definition


def new_task_set(
    service: Any,
    task_definition_arn: str,
    *,
    started_by: str | None,
    status: str,
    external_id: str | None = None,
    scale: float = 100.0,
    network: dict[str, Any] | None = None,
    platform_version: str | None = None,
    load_balancers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Add a task set to the service and start its tasks now."""
    from . import agent as gd_agent

    set_id = f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"
    t = now()
    arn = f"arn:aws:ecs:{service.region_name}:{service._account_id}:task-set/{service.cluster_name}/{service.name}/{set_id}"
    ts: dict[str, Any] = {
        "id": set_id,
        "taskSetArn": arn,
        "serviceArn": service.arn,
        "clusterArn": service.cluster_arn,
        "status": status,
        "taskDefinition": task_definition_arn,
        "createdAt": t,
        "updatedAt": t,
        "launchType": service.launch_type,
        "loadBalancers": list(load_balancers if load_balancers is not None else service.gec_load_balancers),
        "serviceRegistries": [],
        "scale": {"value": scale, "unit": "PERCENT"},
        "stabilityStatus": "STEADY_STATE",
        "stabilityStatusAt": t,
    }
    if started_by:
        ts["startedBy"] = started_by
    if external_id is not None:
        ts["externalId"] = external_id
    if network or service.network_configuration:
        ts["networkConfiguration"] = network or service.network_configuration
    if service.launch_type == "FARGATE":
        td = task_definition(service._account_id, service.region_name, task_definition_arn)
        ts["platformVersion"] = gd_agent.platform_version(td, platform_version or service.platform_version)
        ts["platformFamily"] = gd_agent.platform_family(td)
    if status == "PRIMARY":
        service.gec_task_sets.insert(0, ts)
    else:
        service.gec_task_sets.append(ts)
    scale_task_set(service, ts)
    return ts


def computed_desired(service: Any, ts: dict[str, Any]) -> int:
    return math.ceil(service.desired_count * ts["scale"]["value"] / 100)


def set_tasks(service: Any, set_id: str) -> list[Any]:
    from .ecs_services import service_tasks

    return service_tasks(service, set_id)


def scale_task_set(service: Any, ts: dict[str, Any]) -> None:
    want = computed_desired(service, ts)
    running = set_tasks(service, ts["id"])
    if len(running) < want:
        # A task set starts its tasks as a deployment does: startedBy is its id.
        from .ecs_services import start_tasks  # ecs_services imports this module

        start_tasks(service, ts, want - len(running))
    for task in running[want:]:
        stop(task, f"Scaling activity initiated by (deployment {ts['id']})")


def scale_task_sets(service: Any) -> None:
    for ts in service.gec_task_sets:
        scale_task_set(service, ts)


def remove_task_set(service: Any, set_id: str, reason: str) -> None:
    for task in set_tasks(service, set_id):
        stop(task, reason)
    service.gec_task_sets = [ts for ts in service.gec_task_sets if ts["id"] != set_id]


def promote(service: Any, set_id: str) -> None:
    """Make the task set PRIMARY (the others ACTIVE); the service follows its task definition."""
    for ts in service.gec_task_sets:
        ts["status"] = "PRIMARY" if ts["id"] == set_id else "ACTIVE"
        ts["updatedAt"] = now()
    service.gec_task_sets.sort(key=lambda ts: ts["status"] != "PRIMARY")
    service.task_definition = service.gec_task_sets[0]["taskDefinition"]


def task_set_json(service: Any, ts: dict[str, Any], running: list[Any] | None = None) -> dict[str, Any]:
    if running is None:
        from .ecs_services import service_tasks

        running = service_tasks(service)
    count = sum(1 for t in running if t.deployment_id == ts["id"])
    out = {k: v for k, v in ts.items() if not k.startswith("gec")}
    out["computedDesiredCount"] = computed_desired(service, ts)
    out["runningCount"] = count
    out["pendingCount"] = 0
    return out


def _service(req: AwsRequest) -> Any:
    from .ecs_services import service_obj

    cluster = cluster_obj(req.account, req.region, req.params.get("cluster"))
    return service_obj(req.account, req.region, cluster, req.params.get("service") or "")


def create_task_set(req: AwsRequest) -> dict[str, Any]:
    """CreateTaskSet: only for EXTERNAL services ("This is used when a service uses the
    EXTERNAL deployment controller type")."""
    p = req.params
    service = _service(req)
    if service.gec_controller != "EXTERNAL":
        raise invalid(
            "Amazon ECS only supports task set management on services configured to use external deployment controllers."
        )
    if not p.get("taskDefinition"):
        raise invalid("taskDefinition can not be blank.")
    task_def = task_definition(req.account, req.region, p["taskDefinition"])
    external_id = p.get("externalId")
    if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 255):
        raise invalid("externalId must be a string of at most 255 characters.")
    scale = p.get("scale") or {"value": 100.0, "unit": "PERCENT"}
    value = scale.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
        raise invalid("scale.value must be between 0 and 100.")
    if scale.get("unit", "PERCENT") != "PERCENT":
        raise invalid("scale.unit must be PERCENT.")
    if p.get("launchType") or p.get("capacityProviderStrategy"):
        cluster = cluster_obj(req.account, req.region, p.get("cluster"))
        launch_type, _ = launch_type_of(p.get("launchType"), p.get("capacityProviderStrategy"), cluster)
        if launch_type != service.launch_type:
            raise invalid("The task set launch type must match the service launch type in the sandbox.")
    if service.launch_type == "FARGATE":
        check_network(task_def, p.get("networkConfiguration") or service.network_configuration)
        check_platform(task_def, p.get("platformVersion"))
    status = "ACTIVE" if any(ts["status"] == "PRIMARY" for ts in service.gec_task_sets) else "PRIMARY"
    ts = new_task_set(
        service,
        task_def.arn,
        started_by=None,
        status=status,
        external_id=external_id,
        scale=float(value),
        network=p.get("networkConfiguration"),
        platform_version=p.get("platformVersion"),
        load_balancers=p.get("loadBalancers") or [],
    )
    if status == "PRIMARY":
        service.task_definition = task_def.arn
    return {"taskSet": task_set_json(service, ts)}


def describe_task_sets(req: AwsRequest) -> dict[str, Any]:
    service = _service(req)
    if service.gec_controller != "EXTERNAL":
        raise invalid(
            "Amazon ECS only supports task set management on services configured to use external deployment controllers."
        )
    refs = req.params.get("taskSets")
    found, failures = [], []
    if refs is None:
        found = [task_set_json(service, ts) for ts in service.gec_task_sets]
    else:
        for ref in refs:
            ts = next((t for t in service.gec_task_sets if ref in (t["id"], t["taskSetArn"], t["id"].split("/")[-1])), None)
            if ts is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(task_set_json(service, ts))
    return {"taskSets": found, "failures": failures}


HANDLERS = {
    ("ecs", "CreateTaskSet"): create_task_set,
    ("ecs", "DescribeTaskSets"): describe_task_sets,
}
