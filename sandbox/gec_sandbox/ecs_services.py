"""ECS services like AWS runs them: `desiredCount` RUNNING tasks, and deployments that
roll out. `UpdateService(forceNewDeployment)` adds a PRIMARY deployment with
`rolloutState` IN_PROGRESS (the old one turns ACTIVE); after `rolloutSeconds` (control
endpoint `/_sandbox/config`) new tasks replace the old ones, the new deployment is
COMPLETED and the old one is gone — or, with the `failRollout` knob, it ends FAILED.
moto starts no tasks and only renames the deployment.

Services are moto `Service` objects (so ECS tagging keeps working); the sandbox
answers CreateService, UpdateService, DescribeServices, ListServices, DeleteService."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from .awsreq import AwsError, AwsRequest, now
from .ecs import backend, invalid, page
from . import agent as gd_agent
from .ecs_tasks import (
    Task,
    check_network,
    check_platform,
    cluster_obj,
    launch,
    launch_type_of,
    stop,
    task_definition,
    tasks_in,
)
from .state import STATE


NO_CIRCUIT_BREAKER = {"enable": False, "rollback": False}


def _epoch(value: Any) -> Any:
    """moto's own deployments carry naive UTC datetimes; the wire wants epoch numbers."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp(), 3)
    return value


def adopt(service: Any) -> Any:
    """Give a service moto created itself (CloudFormation `AWS::ECS::Service` goes through
    moto's backend, not CreateService here) the sandbox's attributes, once, when the
    sandbox first meets it: no capacity provider, no circuit breaker unless set, and
    deployments with epoch-number times. As after CreateService (and as CloudFormation
    waits for), it is then steady: its PRIMARY deployment COMPLETED, `desiredCount` tasks
    RUNNING. Until that first meeting ListTasks shows none of its tasks."""
    if getattr(service, "gec_adopted", False):
        return service
    service.gec_adopted = True
    service.gec_provider = getattr(service, "gec_provider", None)
    service.gec_created_at = getattr(service, "gec_created_at", None) or now()
    service.gec_circuit_breaker = getattr(service, "gec_circuit_breaker", None) or dict(NO_CIRCUIT_BREAKER)
    service.network_configuration = getattr(service, "network_configuration", None) or None
    service.gec_controller = getattr(service, "gec_controller", None) or "ECS"
    service.gec_strategy = getattr(service, "gec_strategy", None) or "ROLLING"
    service.gec_bake = getattr(service, "gec_bake", None)
    service.gec_load_balancers = getattr(service, "gec_load_balancers", None) or []
    service.gec_task_sets = getattr(service, "gec_task_sets", None) or []
    deployments = []
    for d in getattr(service, "deployments", None) or []:
        d = {k: _epoch(v) for k, v in d.items() if v is not None}
        d.setdefault("rolloutState", "COMPLETED")
        d.setdefault("desiredCount", service.desired_count)
        d.setdefault("failedTasks", 0)
        d.setdefault("createdAt", service.gec_created_at)
        d.setdefault("updatedAt", d["createdAt"])
        d.pop("platformFamily", None)  # moto says EC2/FARGATE; AWS says Linux or a Windows family
        d.pop("platformVersion", None)
        if service.launch_type == "FARGATE" and d.get("taskDefinition"):
            d.update(fargate_platform(service, d["taskDefinition"]))
        if d.get("status") == "PRIMARY":
            # moto says IN_PROGRESS because it runs no tasks; nothing would ever finish it.
            d["rolloutState"] = "COMPLETED"
            d["rolloutStateReason"] = f"ECS deployment {d.get('id')} completed."
        deployments.append(d)
    service.deployments = deployments
    if service.status == "ACTIVE" and deployments:
        scale(service)
    return service


def service_obj(account: str, region: str, cluster: Any, ref: str, active: bool = True) -> Any:
    service = backend(account, region).services.get(f"{cluster.name}:{ref.split('/')[-1]}")
    if service is None or (active and service.status != "ACTIVE"):
        raise AwsError(
            "ServiceNotFoundException" if service is None else "ServiceNotActiveException",
            "Service not found." if service is None else "Service was not ACTIVE.",
        )
    return adopt(service)


def service_tasks(service: Any, deployment_id: str | None = None) -> list[Task]:
    return [
        t
        for t in tasks_in(service._account_id, service.region_name)
        if t.cluster_name == service.cluster_name
        and t.service == service.name
        and t.last_status == "RUNNING"
        and (deployment_id is None or t.deployment_id == deployment_id)
    ]


def fargate_platform(service: Any, task_definition_arn: str) -> dict[str, str]:
    """A Fargate deployment's `platformVersion` (resolved: LATEST is 1.4.0 on Linux, 1.0.0
    on Windows) and `platformFamily` (`Linux` or the task definition's Windows family)."""
    task_def = task_definition(service._account_id, service.region_name, task_definition_arn)
    return {
        "platformVersion": gd_agent.platform_version(task_def, service.platform_version),
        "platformFamily": gd_agent.platform_family(task_def),
    }


def new_deployment(service: Any, rollout_state: str) -> dict[str, Any]:
    t = now()
    platform = fargate_platform(service, service.task_definition) if service.launch_type == "FARGATE" else {}
    return {
        **platform,
        "id": f"ecs-svc/{random.randint(10**18, 10**19 - 1)}",
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "failedTasks": 0,
        "createdAt": t,
        "updatedAt": t,
        "launchType": service.launch_type,
        "rolloutState": rollout_state,
        "rolloutStateReason": "ECS deployment in progress.",
    }


def start_tasks(service: Any, deployment: dict[str, Any], count: int) -> None:
    account, region = service._account_id, service.region_name
    cluster = backend(account, region).clusters[service.cluster_name]
    task_def = task_definition(account, region, deployment["taskDefinition"])
    for _ in range(count):
        launch(
            account,
            region,
            cluster,
            task_def,
            service.launch_type,
            group=f"service:{service.name}",
            started_by=deployment["id"],
            service=service.name,
            deployment_id=deployment["id"],
            platform_version=deployment.get("platformVersion"),
            capacity_provider=service.gec_provider,
        )


def serving(service: Any) -> dict[str, Any]:
    """The deployment whose tasks serve now: the newest COMPLETED one (during or after
    a rollout that has not completed, the old deployment keeps running)."""
    return next((d for d in service.deployments if d["rolloutState"] == "COMPLETED"), service.deployments[0])


def scale(service: Any) -> None:
    """Bring the serving deployment (task-set services: every task set) to `desiredCount`
    running tasks now."""
    if uses_task_sets(service):
        from .ecs_task_sets import scale_task_sets

        scale_task_sets(service)
        return
    for d in service.deployments:
        d["desiredCount"] = service.desired_count
    deployment = serving(service)
    running = service_tasks(service, deployment["id"])
    if len(running) < service.desired_count:
        start_tasks(service, deployment, service.desired_count - len(running))
    for task in running[service.desired_count :]:
        stop(task, "Scaling activity initiated by (deployment {})".format(deployment["id"]))


def replace_stopped(task: Task) -> None:
    """The service scheduler replaces a stopped task of an ACTIVE service."""
    service = backend(task.account, task.region).services.get(f"{task.cluster_name}:{task.service}")
    if service is not None and service.status == "ACTIVE":
        adopt(service)
        if service.deployments or service.gec_task_sets:
            scale(service)


CONTROLLERS = ("ECS", "CODE_DEPLOY", "EXTERNAL")
STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
MAX_BAKE_MINUTES = 1440


def uses_task_sets(service: Any) -> bool:
    """CODE_DEPLOY and EXTERNAL services run task sets, not ECS deployments."""
    return getattr(service, "gec_controller", "ECS") != "ECS"


def deployment_settings(p: dict[str, Any], task_def: Any) -> tuple[str, str, int | None, list[dict[str, Any]]]:
    """(controller, strategy, bake time in minutes, load balancers) of a CreateService
    request, validated as the ECS API reference describes them (see sandbox/README.md)."""
    controller = (p.get("deploymentController") or {}).get("type", "ECS")
    if controller not in CONTROLLERS:
        raise invalid(f"deploymentController.type must be one of [{', '.join(CONTROLLERS)}], got {controller!r}.")
    config = p.get("deploymentConfiguration") or {}
    strategy = config.get("strategy", "ROLLING")
    if strategy not in STRATEGIES:
        raise invalid(f"deploymentConfiguration.strategy must be one of [{', '.join(STRATEGIES)}], got {strategy!r}.")
    if strategy != "ROLLING" and controller != "ECS":
        raise invalid(f"The {strategy} deployment strategy is only supported for services using the ECS deployment controller.")
    bake = config.get("bakeTimeInMinutes")
    if bake is not None and (not isinstance(bake, int) or isinstance(bake, bool) or not 0 <= bake <= MAX_BAKE_MINUTES):
        raise invalid(f"bakeTimeInMinutes must be between 0 and {MAX_BAKE_MINUTES}.")
    if strategy == "BLUE_GREEN" and bake is None:
        raise invalid("bakeTimeInMinutes must be provided when using the BLUE_GREEN deployment strategy.")
    balancers = p.get("loadBalancers") or []
    if not isinstance(balancers, list):
        raise invalid("loadBalancers must be a list.")
    if controller == "CODE_DEPLOY" and not balancers:
        raise invalid("A load balancer is required for services using the CODE_DEPLOY deployment controller.")
    containers = {cd["name"] for cd in task_def.container_definitions}
    out = []
    for lb in balancers:
        if not isinstance(lb, dict):
            raise invalid("loadBalancers entries must be objects.")
        name, port = lb.get("containerName"), lb.get("containerPort")
        if not name or not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise invalid("A load balancer needs containerName and containerPort.")
        if name not in containers:
            raise invalid(f"The container {name} does not exist in the task definition.")
        if not lb.get("targetGroupArn") and not lb.get("loadBalancerName"):
            raise invalid("Either targetGroupArn or loadBalancerName must be specified for a load balancer.")
        if controller == "CODE_DEPLOY" and not lb.get("targetGroupArn"):
            raise invalid("Services using the CODE_DEPLOY deployment controller need an Application or Network Load Balancer target group.")
        out.append({k: lb[k] for k in ("targetGroupArn", "loadBalancerName", "containerName", "containerPort") if k in lb})
    return controller, strategy, bake, out


def create_service(req: AwsRequest) -> dict[str, Any]:
    from moto.ecs.models import Service

    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    name = p.get("serviceName") or ""
    ecs = backend(req.account, req.region)
    existing = ecs.services.get(f"{cluster.name}:{name}")
    if existing is not None and existing.status != "INACTIVE":
        raise invalid("Creation of service was not idempotent.")
    task_def = task_definition(req.account, req.region, p.get("taskDefinition", ""))
    desired = p.get("desiredCount", 0)
    launch_type, provider = launch_type_of(p.get("launchType"), p.get("capacityProviderStrategy"), cluster)
    controller, strategy, bake, balancers = deployment_settings(p, task_def)
    if launch_type == "FARGATE":
        check_network(task_def, p.get("networkConfiguration"))
        check_platform(task_def, p.get("platformVersion"))
    service = Service(
        cluster,
        name,
        desired,
        ecs,
        task_definition=task_def,
        tags=p.get("tags"),
        launch_type=launch_type,
        platform_version=p.get("platformVersion"),
        propagate_tags=p.get("propagateTags", "NONE"),
    )
    service.gec_adopted = True  # made here: nothing to adopt
    service.network_configuration = p.get("networkConfiguration")
    service.gec_provider = provider
    service.gec_created_at = now()
    service.gec_circuit_breaker = (p.get("deploymentConfiguration") or {}).get(
        "deploymentCircuitBreaker", {"enable": False, "rollback": False}
    )
    service.gec_controller, service.gec_strategy, service.gec_bake = controller, strategy, bake
    service.gec_load_balancers = balancers
    service.gec_task_sets = []
    ecs.services[f"{cluster.name}:{name}"] = service
    cluster.active_services_count += 1
    if controller != "ECS":
        # Task-set services have no ECS deployments. CODE_DEPLOY: the service's first task
        # set (PRIMARY) comes with it; EXTERNAL: the deployer makes task sets (CreateTaskSet).
        service.deployments = []
        if controller == "CODE_DEPLOY":
            from .ecs_task_sets import new_task_set

            new_task_set(service, service.task_definition, started_by=None, status="PRIMARY")
        return {"service": service_json(service)}
    # Tasks start at once and the first deployment is steady: no waiting after seeding.
    service.deployments = [new_deployment(service, "COMPLETED")]
    service.deployments[0]["rolloutStateReason"] = f"ECS deployment {service.deployments[0]['id']} completed."
    scale(service)
    return {"service": service_json(service)}


# UpdateService parameters a task-set service refuses, with AWS's wording: CODE_DEPLOY as
# AWS answers it for taskDefinition (boto3 #1936, terraform-provider-aws #8005/#13473),
# EXTERNAL after the UpdateService API reference ("create a new task set").
REFUSED_FOR_TASK_SETS = {
    "taskDefinition": "task definition",
    "networkConfiguration": "network configuration",
    "platformVersion": "platform version",
    "forceNewDeployment": "force new deployment",
    "loadBalancers": "load balancers",
    "launchType": "launch type",
}


def refuse_task_set_update(service: Any, p: dict[str, Any]) -> None:
    for key, words in REFUSED_FOR_TASK_SETS.items():
        if key not in p or (key == "forceNewDeployment" and not p[key]):
            continue
        if key == "loadBalancers" and service.gec_controller == "CODE_DEPLOY":
            continue  # "If you use the CODE_DEPLOY deployment controller, these values can be changed"
        if service.gec_controller == "CODE_DEPLOY":
            raise invalid(
                f"Unable to update {words} on services with a CODE_DEPLOY deployment controller. "
                "Use AWS CodeDeploy to trigger a new deployment."
            )
        raise invalid(
            f"Unable to update {words} on services with a EXTERNAL deployment controller. "
            "Use task set management APIs (CreateTaskSet) instead."
        )


def update_service(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    service = service_obj(req.account, req.region, cluster, p.get("service", ""))
    if uses_task_sets(service):
        refuse_task_set_update(service, p)
        if p.get("desiredCount") is not None:
            service.desired_count = p["desiredCount"]
        scale(service)
        return {"service": service_json(service)}
    rollout = bool(p.get("forceNewDeployment"))
    if service.launch_type == "FARGATE" and ("taskDefinition" in p or "platformVersion" in p):
        td = task_definition(req.account, req.region, p.get("taskDefinition") or service.task_definition)
        check_platform(td, p.get("platformVersion", service.platform_version))
    if p.get("taskDefinition"):
        arn = task_definition(req.account, req.region, p["taskDefinition"]).arn
        rollout |= arn != service.task_definition
        service.task_definition = arn
    for key, attr in (
        ("networkConfiguration", "network_configuration"),
        ("platformVersion", "platform_version"),
    ):
        if key in p and p[key] != getattr(service, attr):
            setattr(service, attr, p[key])
            rollout = True
    if p.get("desiredCount") is not None:
        service.desired_count = p["desiredCount"]
    if rollout:
        start_rollout(service)
    else:
        scale(service)
    return {"service": service_json(service)}


def start_rollout(service: Any) -> None:
    for d in service.deployments:
        if d["status"] == "PRIMARY":
            d["status"], d["updatedAt"] = "ACTIVE", now()
    deployment = new_deployment(service, "IN_PROGRESS")
    service.deployments.insert(0, deployment)
    key = (service._account_id, service.region_name, f"{service.cluster_name}:{service.name}")
    STATE.after(STATE.config["rolloutSeconds"], finish_rollout, key, deployment["id"])


def current(key: tuple[str, str, str], deployment_id: str) -> tuple[Any, dict[str, Any]] | None:
    """The service and its newest deployment, if that is still `deployment_id`."""
    account, region, pair = key
    service = backend(account, region).services.get(pair)
    if service is None or service.status != "ACTIVE" or not service.deployments:
        return None
    deployment = service.deployments[0]
    if deployment["id"] != deployment_id:
        return None  # superseded by a newer deployment
    return service, deployment


def finish_rollout(key: tuple[str, str, str], deployment_id: str) -> None:
    found = current(key, deployment_id)
    if found is None:
        return
    service, deployment = found
    deployment["updatedAt"] = now()
    if STATE.knobs["failRollout"].pop(service.name, None):
        deployment["rolloutState"] = "FAILED"
        deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        deployment["failedTasks"] = service.desired_count
        return
    start_tasks(service, deployment, service.desired_count)
    if service.gec_strategy != "ROLLING":
        # Blue/green, linear, canary: the green tasks serve, the blue ones keep running
        # through the bake time, then they stop and the deployment completes.
        bake = (service.gec_bake or 0) * STATE.config["bakeSecondsPerMinute"]
        STATE.after(bake, end_bake, key, deployment_id)
        return
    complete(service, deployment)


def end_bake(key: tuple[str, str, str], deployment_id: str) -> None:
    found = current(key, deployment_id)
    if found is not None:
        complete(*found)


def complete(service: Any, deployment: dict[str, Any]) -> None:
    deployment_id = deployment["id"]
    for task in service_tasks(service):
        if task.deployment_id != deployment_id:
            stop(task, f"Scaling activity initiated by (deployment {deployment_id})")
    service.deployments = [deployment]
    deployment["updatedAt"] = now()
    deployment["rolloutState"] = "COMPLETED"
    deployment["rolloutStateReason"] = f"ECS deployment {deployment_id} completed."


def describe_services(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    refs = p.get("services") or []
    if not refs or len(refs) > 10:
        raise invalid("services must contain between 1 and 10 items.")
    include_tags = "TAGS" in (p.get("include") or [])
    found, failures = [], []
    for ref in refs:
        service = backend(req.account, req.region).services.get(f"{cluster.name}:{ref.split('/')[-1]}")
        if service is not None:
            adopt(service)
        if service is None:
            arn = (
                ref
                if ref.startswith("arn:")
                else f"arn:aws:ecs:{req.region}:{req.account}:service/{cluster.name}/{ref}"
            )
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(service_json(service, include_tags))
    return {"services": found, "failures": failures}


def list_services(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    arns = [
        s.arn
        for s in backend(req.account, req.region).services.values()
        if s.cluster_name == cluster.name
        and s.status == "ACTIVE"
        and (not p.get("launchType") or s.launch_type == p["launchType"])
    ]
    chunk, token = page(arns, p, 100, default=10)
    return {"serviceArns": chunk, **({"nextToken": token} if token else {})}


def delete_service(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    service = service_obj(req.account, req.region, cluster, p.get("service", ""))
    if service.desired_count > 0 and not p.get("force"):
        raise invalid("The service cannot be stopped while it is scaled above 0.")
    for task in service_tasks(service):
        stop(task, "Service deleted")
    service.status, service.desired_count = "INACTIVE", 0
    cluster.active_services_count = max(0, cluster.active_services_count - 1)
    return {"service": service_json(service)}


def service_json(service: Any, include_tags: bool = False) -> dict[str, Any]:
    adopt(service)
    running = service_tasks(service)
    deployments = []
    task_sets = []
    if uses_task_sets(service):
        from .ecs_task_sets import task_set_json

        task_sets = [task_set_json(service, ts, running) for ts in service.gec_task_sets]
    for d in service.deployments:
        count = sum(1 for t in running if t.deployment_id == d["id"])
        pending = d["desiredCount"] - count if d["rolloutState"] == "IN_PROGRESS" else 0
        deployments.append(
            {
                **d,
                "runningCount": count,
                "pendingCount": max(0, pending),
                **(
                    {"networkConfiguration": service.network_configuration}
                    if service.network_configuration
                    else {}
                ),
            }
        )
    out: dict[str, Any] = {
        "serviceArn": service.arn,
        "serviceName": service.name,
        "clusterArn": service.cluster_arn,
        "status": service.status,
        "desiredCount": service.desired_count,
        "runningCount": len(running),
        "pendingCount": sum(d["pendingCount"] for d in deployments + task_sets),
        "launchType": service.launch_type,
        "taskDefinition": service.task_definition,
        "deploymentConfiguration": deployment_configuration(service),
        "deployments": deployments,
        "events": [],
        "createdAt": service.gec_created_at,
        "loadBalancers": service.gec_load_balancers,
        "serviceRegistries": [],
        "placementConstraints": [],
        "placementStrategy": [],
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": service.gec_controller},
        "propagateTags": service.propagate_tags,
        "enableECSManagedTags": False,
        "enableExecuteCommand": False,
    }
    if uses_task_sets(service):
        out["taskSets"] = task_sets
    if service.network_configuration:
        out["networkConfiguration"] = service.network_configuration
    if service.launch_type == "FARGATE":
        out["platformVersion"] = service.platform_version or "LATEST"
        first = (deployments or task_sets or [{}])[0]
        out["platformFamily"] = first.get("platformFamily", "Linux")
    if include_tags:
        out["tags"] = service.tags
    return out


def deployment_configuration(service: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "deploymentCircuitBreaker": service.gec_circuit_breaker,
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    if service.gec_controller == "ECS":
        out["strategy"] = service.gec_strategy
    if service.gec_bake is not None:
        out["bakeTimeInMinutes"] = service.gec_bake
    return out


HANDLERS = {
    ("ecs", "CreateService"): create_service,
    ("ecs", "UpdateService"): update_service,
    ("ecs", "DescribeServices"): describe_services,
    ("ecs", "ListServices"): list_services,
    ("ecs", "DeleteService"): delete_service,
}
