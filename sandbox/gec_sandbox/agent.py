"""The GuardDuty security agent sidecar as GuardDuty attaches it to Fargate tasks, and
an agent that dies later.

At launch (GuardDuty UG: how-runtime-monitoring-works-ecs-fargate,
prereq-runtime-monitoring-ecs-support; ECS developer guide: ecs-guard-duty-troubleshooting):

- no agent container unless the cluster's effective coverage is on (coverage.covered);
- no agent container on a Fargate platform below 1.4.0 (LATEST is 1.4.0 on Linux) or on
  a Windows operating system family (Windows platform versions are not supported);
- no agent container when the task definition has no task execution role ("For Fargate
  tasks, the task starts without the GuardDuty security agent sidecar container";
  GuardDuty reports "Agent not provisioned: TaskExecutionRole missing from
  TaskDefinition");
- otherwise the container `aws-guardduty-agent-XXXXXX` is added. When the execution role
  does not exist or its policies do not allow ecr:GetAuthorizationToken (on `*`),
  ecr:BatchGetImage and ecr:GetDownloadUrlForLayer (on the Region's agent repository),
  the agent cannot be pulled: the container is STOPPED with a CannotPullContainerError
  reason and no exit code, and the task keeps RUNNING (the agent is not essential;
  GuardDuty UG gdu-assess-coverage-ecs: "Your task will continue to run but GuardDuty
  can't detect potential threats").

`POST /_sandbox/agents/stop` stops the agent of running tasks later (an agent that
exits or is killed), with a reason and an exit code."""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from typing import Any

from . import coverage, iam
from .ecs import invalid
from .state import STATE

AGENT_PREFIX = "aws-guardduty-agent-"
LINUX = "LINUX"
# ECS developer guide, platform-linux-fargate / platform-windows-fargate: the versions
# RunTask and CreateService accept; LATEST is 1.4.0 on Linux and 1.0.0 on Windows.
LINUX_VERSIONS = {"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"}
WINDOWS_VERSIONS = {"1.0.0"}


@dataclass
class Launch:
    """What GuardDuty does to one new Fargate task: the agent container (None: not
    provisioned) and, when the task will not run the agent, GuardDuty's coverage issue as
    (template, item): ListCoverage joins the items (task ids, service names) of the tasks
    sharing a template into its `{items}`."""

    container: dict[str, Any] | None
    gap: tuple[str, str] | None


def os_family(task_def: Any) -> str:
    platform = getattr(task_def, "runtime_platform", None) or {}
    return str(platform.get("operatingSystemFamily") or LINUX)


def platform_family(task_def: Any) -> str:
    """A Fargate task's `platformFamily`: `Linux`, or the Windows family as registered."""
    family = os_family(task_def)
    return "Linux" if family == LINUX else family


def platform_version(task_def: Any, requested: str | None) -> str:
    """The version a Fargate task runs: the requested one, or LATEST's (1.4.0 Linux,
    1.0.0 Windows). Raises InvalidParameterException for a version that does not exist
    on that operating system."""
    windows = os_family(task_def) != LINUX
    known = WINDOWS_VERSIONS if windows else LINUX_VERSIONS
    if requested in (None, "", "LATEST"):
        return "1.0.0" if windows else "1.4.0"
    if requested not in known:
        raise invalid(f"The specified platform version ({requested}) does not exist.")
    return str(requested)


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def revision(task_def: Any) -> str:
    return f"{task_def.family}:{task_def.revision}"


def cannot_pull_reason(region: str) -> str:
    """The container reason Fargate (platform 1.4.0) gives when the registry refuses the
    pull: the execution role has no ECR permission on the image (ECS developer guide:
    task_cannot_pull_image, "CannotPullContainerError"; GuardDuty UG gdu-assess-coverage-ecs,
    "Agent exited: Reason: CannotPullContainerError: pull image manifest has been
    retried...")."""
    image = iam.agent_image(region)
    host = image.split("/", 1)[0]
    tag = image.rsplit(":", 1)[1]
    return (
        f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        f"failed to resolve ref {image}: pulling from host {host} failed with status code "
        f"[manifests {tag}]: 403 Forbidden"
    )


def _name() -> str:
    return AGENT_PREFIX + "".join(random.choices(string.ascii_letters + string.digits, k=6))


def container(
    account: str, region: str, cluster_name: str, task_arn: str, status: str, reason: str | None
) -> dict[str, Any]:
    task_id = task_arn.rsplit("/", 1)[-1]
    out: dict[str, Any] = {
        "containerArn": f"arn:aws:ecs:{region}:{account}:container/{cluster_name}/{task_id}/{uuid.uuid4()}",
        "taskArn": task_arn,
        "name": _name(),
        "image": iam.agent_image(region),
        "lastStatus": status,
        "networkInterfaces": [],
        "healthStatus": "UNKNOWN",
        "cpu": "0",
    }
    if reason:
        out["reason"] = reason
    return out


def at_launch(
    account: str,
    region: str,
    cluster: Any,
    task_def: Any,
    task_arn: str,
    version: str,
    service: str | None,
    override: bool | None = None,
) -> Launch:
    """The agent of a new Fargate task (see the module docstring). `override` (bulk
    seeding, `POST /_sandbox/tasks`): True a RUNNING agent, False none (launched before
    coverage)."""
    task_id = task_arn.rsplit("/", 1)[-1]
    if override is not None:
        if override:
            return Launch(container(account, region, cluster.name, task_arn, "RUNNING", None), None)
        return Launch(None, not_covered_gap(account, region, cluster, service, task_id))
    if not coverage.covered(account, region, cluster):
        return Launch(None, not_covered_gap(account, region, cluster, service, task_id))
    td = revision(task_def)
    if os_family(task_def) != LINUX or _version(version) < (1, 4, 0):
        return Launch(None, (f"Others: Unidentified issue, for tasks in TaskDefinition - '{td}'", ""))
    role = getattr(task_def, "execution_role_arn", None)
    if not role:
        return Launch(
            None, (f"Agent not provisioned: TaskExecutionRole missing from TaskDefinition - '{td}'", "")
        )
    knob = bool(service and STATE.knobs["agentMissing"].get(service))
    if knob or iam.pull_denied(account, region, role) is not None:
        reason = cannot_pull_reason(region)
        return Launch(container(account, region, cluster.name, task_arn, "STOPPED", reason), None)
    return Launch(container(account, region, cluster.name, task_arn, "RUNNING", None), None)


def not_covered_gap(
    account: str, region: str, cluster: Any, service: str | None, task_id: str
) -> tuple[str, str]:
    """GuardDuty's "Agent not provisioned" wording for a task that started while its
    cluster was not covered (GuardDuty UG gdu-assess-coverage-ecs, troubleshooting)."""
    monitoring, _ = coverage.coverage_rule(account, region)
    excluded = coverage.tag_of(cluster) == "false"
    if not monitoring:
        return (
            "Agent not provisioned: Tasks started before enabling Runtime Monitoring require a relaunch. "
            "Impacted task ID(s): '{items}'",
            task_id,
        )
    if excluded and service:
        return (
            "Agent not provisioned: Services deployed when clusters had exclusion tag are excluded from "
            "Runtime Monitoring. Impacted service name(s): '{items}'",
            service,
        )
    if excluded:
        return (
            "Agent not provisioned: Tasks started when clusters had exclusion tag are excluded from "
            "Runtime Monitoring. Impacted task ID(s): '{items}'",
            task_id,
        )
    if service:
        return (
            "Agent not provisioned: Services deployed before enabling Automated Agent Configuration are "
            "not covered. Impacted service name(s): '{items}'",
            service,
        )
    return (
        "Agent not provisioned: Tasks started before enabling Automated Agent Configuration are not "
        "covered. Impacted task ID(s): '{items}'",
        task_id,
    )


def exited_issue(agent: dict[str, Any], td: str) -> str:
    """"Agent exited" with the container's exit code and/or reason."""
    code, reason = agent.get("exitCode"), agent.get("reason")
    if code is not None and reason:
        return f"Agent exited: ExitCode: {code} with reason: '{reason}' for tasks in TaskDefinition - '{td}'"
    if code is not None:
        return f"Agent exited: ExitCode: {code} for tasks in TaskDefinition - '{td}'"
    return f"Agent exited: Reason: {reason or 'unknown'} for tasks in TaskDefinition - '{td}'"


STOP_KEYS = {"account", "region", "cluster", "task", "service", "reason", "exitCode"}


def stop_agents(payload: Any) -> dict[str, Any]:
    """POST /_sandbox/agents/stop: the RUNNING agent container of a running task (`task`:
    ARN or id) or of every running task of a service (`service`: name) goes STOPPED with
    `reason` (optional) and `exitCode` (default 1); the tasks keep RUNNING. 400 when
    nothing matches."""
    from .ecs_tasks import cluster_obj, find, tasks_of

    if not isinstance(payload, dict) or set(payload) - STOP_KEYS:
        raise ValueError(f"takes only {sorted(STOP_KEYS)}")
    for key in ("account", "region", "cluster"):
        if not isinstance(payload.get(key), str):
            raise ValueError(f"{key} is required (a string)")
    if ("task" in payload) == ("service" in payload):
        raise ValueError("give exactly one of task (ARN or id) and service (name)")
    reason = payload.get("reason")
    if reason is not None and not (isinstance(reason, str) and 0 < len(reason) <= 1024):
        raise ValueError("reason must be a string of 1-1024 characters")
    exit_code = payload.get("exitCode", 1)
    if not isinstance(exit_code, int) or isinstance(exit_code, bool) or not -(2**31) <= exit_code < 2**31:
        raise ValueError("exitCode must be a 32-bit integer")
    account, region = payload["account"], payload["region"]
    cluster = cluster_obj(account, region, payload["cluster"])
    if "task" in payload:
        task = find(account, region, cluster, str(payload["task"]))
        tasks = [task] if task is not None else []
    else:
        tasks = [t for t in tasks_of(account, region, cluster.name) if t.service == payload["service"]]
    stopped = []
    for task in tasks:
        agent = task.agent
        if task.last_status != "RUNNING" or agent is None or agent["lastStatus"] != "RUNNING":
            continue
        agent["lastStatus"], agent["exitCode"] = "STOPPED", exit_code
        if reason:
            agent["reason"] = reason
        stopped.append(task.arn)
    if not stopped:
        raise ValueError("no running task with a RUNNING agent matches")
    return {"stopped": stopped}
