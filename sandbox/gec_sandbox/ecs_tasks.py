"""ECS tasks like AWS runs them, with the GuardDuty agent sidecar GuardDuty injects.

moto starts no service tasks, fails RunTask on Fargate without container-level memory,
ignores `serviceName` in ListTasks and returns only the first container in
DescribeTasks. The sandbox keeps its own task registry (`TASKS`) and answers RunTask,
StopTask, ListTasks and DescribeTasks from it; task definitions and clusters stay moto's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from . import agent as gd_agent
from .agent import AGENT_PREFIX
from .awsreq import AwsError, AwsRequest, now
from .ecs import backend, invalid, page
from .state import STATE

FARGATE_PROVIDERS = {"FARGATE", "FARGATE_SPOT"}


@dataclass
class Task:
    account: str
    region: str
    cluster_name: str
    cluster_arn: str
    arn: str
    task_definition_arn: str
    launch_type: str
    group: str
    started_by: str
    containers: list[dict[str, Any]]
    cpu: str | None
    memory: str | None
    platform_version: str | None
    service: str | None = None  # service name, for service tasks
    deployment_id: str | None = None
    capacity_provider: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    created_at: float = field(default_factory=now)
    last_status: str = "RUNNING"
    desired_status: str = "RUNNING"
    stopped_at: float | None = None
    stopped_reason: str | None = None
    platform_family: str | None = None  # Fargate: "Linux" or the Windows family
    task_definition: str = ""  # family:revision, for GuardDuty's coverage issues
    # Why GuardDuty provisioned no agent: (issue template, item), see agent.Launch.
    agent_gap: tuple[str, str] | None = None

    @property
    def agent(self) -> dict[str, Any] | None:
        """The GuardDuty agent container, if GuardDuty added one."""
        return next((c for c in self.containers if c["name"].startswith((AGENT_PREFIX, "aws-gd-agent"))), None)

    @property
    def has_agent(self) -> bool:
        return self.agent is not None

    @property
    def agent_running(self) -> bool:
        agent = self.agent
        return agent is not None and agent["lastStatus"] == "RUNNING"

    def to_json(self, include_tags: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "containers": self.containers,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": self.launch_type,
            "group": self.group,
            "createdAt": self.created_at,
            "startedAt": self.created_at,
            "availabilityZone": f"{self.region}a",
            "connectivity": "CONNECTED",
            "healthStatus": "UNKNOWN",
            "overrides": {"containerOverrides": [], "inferenceAcceleratorOverrides": []},
            "version": 2 if self.last_status == "STOPPED" else 1,
            "attachments": [],
        }
        optional = {
            "startedBy": self.started_by,
            "cpu": self.cpu,
            "memory": self.memory,
            "platformVersion": self.platform_version,
            "capacityProviderName": self.capacity_provider,
            "stoppedAt": self.stopped_at,
            "stoppingAt": self.stopped_at,
            "stoppedReason": self.stopped_reason,
        }
        out.update({k: v for k, v in optional.items() if v})
        if self.platform_family:
            out["platformFamily"] = self.platform_family
        if self.last_status == "STOPPED":
            out["stopCode"] = "ServiceSchedulerInitiated" if self.service else "UserInitiated"
        if include_tags:
            out["tags"] = self.tags
        return out


# (account, region) -> {task ARN: Task}, in launch order
TASKS: dict[tuple[str, str], dict[str, Task]] = {}
# The same tasks by (account, region, cluster name) -> {task ARN: Task}, in launch order:
# ListTasks, DescribeTasks and ListCoverage look at one cluster's tasks without scanning
# the region (a 100,000-task fleet would make every call slow).
BY_CLUSTER: dict[tuple[str, str, str], dict[str, Task]] = {}
STATE.on_reset.append(TASKS.clear)
STATE.on_reset.append(BY_CLUSTER.clear)


def tasks_in(account: str, region: str) -> list[Task]:
    return list(TASKS.get((account, region), {}).values())


def tasks_of(account: str, region: str, cluster_name: str) -> list[Task]:
    """Every task (any status) ever launched in the cluster, in launch order."""
    return list(BY_CLUSTER.get((account, region, cluster_name), {}).values())


def cluster_obj(account: str, region: str, name_or_arn: str | None) -> Any:
    name = (name_or_arn or "default").split("/")[-1]
    cluster = backend(account, region).clusters.get(name)
    if cluster is None or cluster.status != "ACTIVE":
        raise AwsError("ClusterNotFoundException", "Cluster not found.")
    return cluster


def task_definition(account: str, region: str, ref: str) -> Any:
    try:
        return backend(account, region).describe_task_definition(ref)
    except Exception:
        raise AwsError("ClientException", "Unable to describe task definition.") from None


def launch_type_of(
    launch_type: str | None, strategy: list[dict[str, Any]] | None, cluster: Any
) -> tuple[str, str | None]:
    """(launch type, capacity provider): explicit launch type, else the (cluster default)
    capacity provider strategy, else EC2 as in AWS."""
    if launch_type and strategy:
        raise invalid("Specify either Launch Type or Capacity Provider Strategy, but not both.")
    if launch_type:
        if launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise invalid("launch type should be one of [EC2,FARGATE,EXTERNAL]")
        return launch_type, None
    strategy = strategy or cluster.default_capacity_provider_strategy or []
    if strategy:
        provider = strategy[0]["capacityProvider"]
        return ("FARGATE" if provider in FARGATE_PROVIDERS else "EC2"), provider
    return "EC2", None


def check_platform(task_def: Any, platform_version: Any) -> None:
    """A Fargate platform version that exists for the task definition's operating system
    (InvalidParameterException otherwise), checked before anything starts."""
    if platform_version is not None and not isinstance(platform_version, str):
        raise invalid("platformVersion must be a string.")
    gd_agent.platform_version(task_def, platform_version)


def check_network(task_def: Any, network_configuration: dict[str, Any] | None) -> None:
    if task_def.network_mode == "awsvpc":
        subnets = ((network_configuration or {}).get("awsvpcConfiguration") or {}).get("subnets")
        if not subnets:
            raise invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")


def launch(
    account: str,
    region: str,
    cluster: Any,
    task_def: Any,
    launch_type: str,
    *,
    group: str,
    started_by: str = "",
    service: str | None = None,
    deployment_id: str | None = None,
    platform_version: str | None = None,
    capacity_provider: str | None = None,
    tags: list[dict[str, str]] | None = None,
    agent: bool | None = None,
) -> Task:
    """Start one RUNNING task; on Fargate GuardDuty decides its agent (agent.at_launch).
    `platform_version` must have passed `check_platform`."""
    task_id = uuid.uuid4().hex
    arn = f"arn:aws:ecs:{region}:{account}:task/{cluster.name}/{task_id}"
    names = [(cd["name"], cd.get("image")) for cd in task_def.container_definitions]
    fargate = launch_type == "FARGATE"
    version = gd_agent.platform_version(task_def, platform_version) if fargate else None
    decided = (
        gd_agent.at_launch(account, region, cluster, task_def, arn, version, service, agent)
        if fargate and version
        else gd_agent.Launch(None, None)
    )
    containers = [
        {
            "containerArn": f"arn:aws:ecs:{region}:{account}:container/{cluster.name}/{task_id}/{uuid.uuid4()}",
            "taskArn": arn,
            "name": name,
            "image": image,
            "lastStatus": "RUNNING",
            "networkInterfaces": [],
            "healthStatus": "UNKNOWN",
            "cpu": "0",
        }
        for name, image in names
    ]
    if decided.container is not None:
        containers.append(decided.container)
    task = Task(
        account=account,
        region=region,
        cluster_name=cluster.name,
        cluster_arn=cluster.arn,
        arn=arn,
        task_definition_arn=task_def.arn,
        launch_type=launch_type,
        group=group,
        started_by=started_by,
        containers=containers,
        cpu=task_def.cpu,
        memory=task_def.memory,
        platform_version=version,
        platform_family=gd_agent.platform_family(task_def) if fargate else None,
        task_definition=gd_agent.revision(task_def),
        agent_gap=decided.gap,
        service=service,
        deployment_id=deployment_id,
        capacity_provider=capacity_provider,
        tags=list(tags or []),
    )
    TASKS.setdefault((account, region), {})[arn] = task
    BY_CLUSTER.setdefault((account, region, cluster.name), {})[arn] = task
    cluster.running_tasks_count += 1
    return task


def stop(task: Task, reason: str) -> None:
    if task.last_status == "STOPPED":
        return
    task.last_status = task.desired_status = "STOPPED"
    task.stopped_at, task.stopped_reason = now(), reason
    for container in task.containers:
        if container["lastStatus"] == "STOPPED":
            continue  # e.g. an agent that was never pulled, or stopped earlier
        container["lastStatus"] = "STOPPED"
        container["exitCode"] = 0
    cluster = backend(task.account, task.region).clusters.get(task.cluster_name)
    if cluster is not None:
        cluster.running_tasks_count = max(0, cluster.running_tasks_count - 1)


def run_task(req: AwsRequest) -> dict[str, Any]:
    """RunTask: starts `count` tasks (1-10) at once; Fargate needs no container memory."""
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    task_def = task_definition(req.account, req.region, p.get("taskDefinition", ""))
    launch_type, provider = launch_type_of(p.get("launchType"), p.get("capacityProviderStrategy"), cluster)
    count = p.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= 10:
        raise invalid("count must be between 1 and 10.")
    if launch_type == "FARGATE":
        check_network(task_def, p.get("networkConfiguration"))
        check_platform(task_def, p.get("platformVersion"))
    tasks = [
        launch(
            req.account,
            req.region,
            cluster,
            task_def,
            launch_type,
            group=p.get("group") or f"family:{task_def.family}",
            started_by=p.get("startedBy", ""),
            platform_version=p.get("platformVersion"),
            capacity_provider=provider,
            tags=p.get("tags"),
        )
        for _ in range(count)
    ]
    return {"tasks": [t.to_json() for t in tasks], "failures": []}


def find(account: str, region: str, cluster: Any, ref: str) -> Task | None:
    """A task of the cluster by ARN or task id."""
    tasks = BY_CLUSTER.get((account, region, cluster.name), {})
    if ref.startswith("arn:"):
        return tasks.get(ref)
    return tasks.get(f"arn:aws:ecs:{region}:{account}:task/{cluster.name}/{ref.split('/')[-1]}")


def stop_task(req: AwsRequest) -> dict[str, Any]:
    """StopTask; a stopped service task is replaced by the service scheduler."""
    cluster = cluster_obj(req.account, req.region, req.params.get("cluster"))
    task = find(req.account, req.region, cluster, req.params.get("task", ""))
    if task is None:
        raise invalid("The referenced task was not found.")
    stop(task, req.params.get("reason") or "Task stopped by user")
    if task.service:
        from .ecs_services import replace_stopped

        replace_stopped(task)
    return {"task": task.to_json()}


def list_tasks(req: AwsRequest) -> dict[str, Any]:
    """ListTasks: exact cluster, `serviceName` filter, `desiredStatus` RUNNING by default."""
    p = req.params
    cluster = cluster_obj(req.account, req.region, p.get("cluster"))
    desired = p.get("desiredStatus") or "RUNNING"
    family, service = p.get("family"), p.get("serviceName")
    if service:
        service = service.split("/")[-1]
    arns = [
        t.arn
        for t in tasks_of(req.account, req.region, cluster.name)
        if t.desired_status == desired
        and (not service or t.service == service)
        and (not family or t.task_definition_arn.split("/")[-1].split(":")[0] == family)
        and (not p.get("startedBy") or t.started_by == p["startedBy"])
        and (not p.get("launchType") or t.launch_type == p["launchType"])
    ]
    chunk, token = page(arns, p, 100)
    return {"taskArns": chunk, **({"nextToken": token} if token else {})}


def describe_tasks(req: AwsRequest) -> dict[str, Any]:
    """DescribeTasks: every container of each task (the injected agent too), at most 100."""
    cluster = cluster_obj(req.account, req.region, req.params.get("cluster"))
    refs = req.params.get("tasks") or []
    if not refs:
        raise invalid("Tasks cannot be empty.")
    if len(refs) > 100:
        raise invalid("tasks can have at most 100 items.")
    include_tags = "TAGS" in (req.params.get("include") or [])
    found, failures = [], []
    for ref in refs:
        task = find(req.account, req.region, cluster, ref)
        if task is None:
            failures.append({"arn": ref, "reason": "MISSING"})
        else:
            found.append(task.to_json(include_tags))
    return {"tasks": found, "failures": failures}


HANDLERS = {
    ("ecs", "RunTask"): run_task,
    ("ecs", "StopTask"): stop_task,
    ("ecs", "ListTasks"): list_tasks,
    ("ecs", "DescribeTasks"): describe_tasks,
}
