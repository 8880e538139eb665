"""CodeDeploy for ECS services, like AWS runs it (JSON protocol, X-Amz-Target
`CodeDeploy_20141006.<Op>`).

moto 5.2.5 keeps applications and deployment groups (left in its backend: CreateApplication,
ListApplications, ListDeploymentGroups, tags and deletes stay moto's), but has no
BatchGetDeploymentGroups, answers timestamps as ISO strings (the Rust SDK wants epoch
numbers for the JSON protocol) and its deployments stay `Created` forever. The sandbox
answers the deployment-group reads and writes, and owns deployments: for an ECS
application a deployment goes Created -> InProgress (a replacement task set with the
AppSpec's task definition, `startedBy` CODE_DEPLOY, `externalId` the deployment id) ->
after `rolloutSeconds` Succeeded (the replacement set PRIMARY, the original removed), or
Failed / Stopped (knobs `failCodeDeploy` / `stopCodeDeploy`, StopDeployment)."""

from __future__ import annotations

import random
import string
from datetime import datetime, timezone
from typing import Any

import yaml

from .awsreq import AwsError, AwsRequest, now
from .ecs import backend as ecs_backend
from .state import STATE

ACTIVE = ("Created", "Queued", "InProgress", "Baking", "Ready")
STATUSES = ACTIVE + ("Succeeded", "Failed", "Stopped")
MAX_BATCH_GROUPS = 100  # BatchLimitExceededException: "(100)"
MAX_BATCH_DEPLOYMENTS = 25  # BatchGetDeployments: "The maximum number ... is 25"
MAX_BATCH_APPLICATIONS = 100
LIST_PAGE = 100
ECS_DEFAULT_CONFIG = "CodeDeployDefault.ECSAllAtOnce"

# (account, region) -> {deployment id: deployment}, in creation order
DEPLOYMENTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
STATE.on_reset.append(DEPLOYMENTS.clear)


def backend(req: AwsRequest) -> Any:
    from moto.codedeploy.models import codedeploy_backends

    return codedeploy_backends[req.account][req.region]


def _epoch(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp(), 3)
    return value


def _name(p: dict[str, Any], key: str, required: str, invalid: str) -> str:
    value = p.get(key)
    if value is None or value == "":
        raise AwsError(required, f"The {key} is required.")
    if not isinstance(value, str) or len(value) > 100:
        raise AwsError(invalid, f"The {key} {value!r} is not valid: 1-100 characters.")
    return value


def application(req: AwsRequest, name: str) -> Any:
    app = backend(req).applications.get(name)
    if app is None:
        raise AwsError("ApplicationDoesNotExistException", f"No application found for name: {name}")
    return app


def group(req: AwsRequest, app_name: str, group_name: str) -> Any:
    application(req, app_name)
    found = backend(req).deployment_groups.get(app_name, {}).get(group_name)
    if found is None:
        raise AwsError("DeploymentGroupDoesNotExistException", f"No Deployment Group found for name: {group_name}")
    return found


# Applications -------------------------------------------------------------------------


def application_json(app: Any) -> dict[str, Any]:
    return {
        "applicationId": app.id,
        "applicationName": app.application_name,
        "createTime": _epoch(app.create_time),
        "linkedToGitHub": False,
        "computePlatform": app.compute_platform,
    }


def batch_get_applications(req: AwsRequest) -> dict[str, Any]:
    names = req.params.get("applicationNames")
    if not names:
        raise AwsError("ApplicationNameRequiredException", "The application name is required.")
    if len(names) > MAX_BATCH_APPLICATIONS:
        raise AwsError("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (100) was exceeded.")
    return {"applicationsInfo": [application_json(application(req, n)) for n in names]}


def get_application(req: AwsRequest) -> dict[str, Any]:
    name = _name(req.params, "applicationName", "ApplicationNameRequiredException", "InvalidApplicationNameException")
    return {"application": application_json(application(req, name))}


# Deployment groups --------------------------------------------------------------------


def _ecs_service(req: AwsRequest, ref: dict[str, Any]) -> Any:
    cluster, name = ref.get("clusterName"), ref.get("serviceName")
    if not cluster or not name:
        raise AwsError("InvalidECSServiceException", "The ECS service identifier needs clusterName and serviceName.")
    service = ecs_backend(req.account, req.region).services.get(f"{cluster.split('/')[-1]}:{name.split('/')[-1]}")
    if service is None or service.status != "ACTIVE":
        raise AwsError("InvalidECSServiceException", f"ECS Service {name} does not exist in cluster {cluster}.")
    from .ecs_services import adopt

    adopt(service)
    if service.gec_controller != "CODE_DEPLOY":
        raise AwsError(
            "InvalidECSServiceException",
            "Deployment group's ECS service must be configured for a CODE_DEPLOY deployment controller.",
        )
    return service


def group_for_service(req: AwsRequest, service: Any) -> tuple[str, str] | None:
    for app_name, groups in backend(req).deployment_groups.items():
        for g in groups.values():
            for ref in g.ecs_services:
                if (
                    ref.get("clusterName", "").split("/")[-1] == service.cluster_name
                    and ref.get("serviceName", "").split("/")[-1] == service.name
                ):
                    return app_name, g.deployment_group_name
    return None


def create_deployment_group(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    app_name = _name(p, "applicationName", "ApplicationNameRequiredException", "InvalidApplicationNameException")
    name = _name(p, "deploymentGroupName", "DeploymentGroupNameRequiredException", "InvalidDeploymentGroupNameException")
    app = application(req, app_name)
    cd = backend(req)
    if name in cd.deployment_groups.get(app_name, {}):
        raise AwsError("DeploymentGroupAlreadyExistsException", f"Deployment group {name} already exists.")
    if not p.get("serviceRoleArn"):
        raise AwsError("RoleRequiredException", "Role ARN is required.")
    if app.compute_platform == "ECS":
        style = p.get("deploymentStyle") or {}
        if style != {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}:
            raise AwsError(
                "InvalidDeploymentStyleException",
                "For ECS deployment group, deploymentType must be BLUE_GREEN and deploymentOption must be WITH_TRAFFIC_CONTROL",
            )
        pairs = (p.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or []
        if len(pairs) != 1:
            raise AwsError(
                "InvalidLoadBalancerInfoException",
                "For ECS deployment group, targetGroupPairInfoList must contain exactly one target group pair",
            )
        refs = p.get("ecsServices") or []
        if len(refs) != 1:
            raise AwsError("InvalidECSServiceException", "For ECS deployment group, exactly one ECS service must be specified.")
        service = _ecs_service(req, refs[0])
        taken = group_for_service(req, service)
        if taken is not None:
            raise AwsError(
                "ECSServiceMappingLimitExceededException",
                f"The ECS service {service.cluster_name}:{service.name} is already associated with deployment group "
                f"{taken[0]}/{taken[1]}. An Amazon ECS service can be associated with only one deployment group.",
            )
    elif p.get("ecsServices"):
        raise AwsError("InvalidECSServiceException", "ecsServices can only be given for an ECS application.")
    default_config = ECS_DEFAULT_CONFIG if app.compute_platform == "ECS" else None
    group_id = cd.create_deployment_group(
        application_name=app_name,
        deployment_group_name=name,
        deployment_config_name=p.get("deploymentConfigName") or default_config,
        ec2_tag_filters=p.get("ec2TagFilters"),
        on_premises_instance_tag_filters=p.get("onPremisesInstanceTagFilters"),
        auto_scaling_groups=p.get("autoScalingGroups"),
        service_role_arn=p["serviceRoleArn"],
        trigger_configurations=p.get("triggerConfigurations"),
        alarm_configuration=None,
        auto_rollback_configuration=p.get("autoRollbackConfiguration"),
        outdated_instances_strategy=p.get("outdatedInstancesStrategy"),
        deployment_style=p.get("deploymentStyle"),
        blue_green_deployment_configuration=p.get("blueGreenDeploymentConfiguration"),
        load_balancer_info=p.get("loadBalancerInfo"),
        ec2_tag_set=p.get("ec2TagSet"),
        ecs_services=p.get("ecsServices"),
        on_premises_tag_set=p.get("onPremisesTagSet"),
        tags=p.get("tags"),
        termination_hook_enabled=p.get("terminationHookEnabled"),
    )
    return {"deploymentGroupId": group_id}


def group_json(req: AwsRequest, g: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "applicationName": g.application.application_name,
        "deploymentGroupId": g.deployment_group_id,
        "deploymentGroupName": g.deployment_group_name,
        "deploymentConfigName": str(g.deployment_config_name),
        "ec2TagFilters": g.ec2_tag_filters,
        "onPremisesInstanceTagFilters": g.on_premises_instance_tag_filters,
        "autoScalingGroups": g.auto_scaling_groups,
        "serviceRoleArn": g.service_role_arn,
        "triggerConfigurations": g.trigger_configurations,
        "alarmConfiguration": {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []},
        "autoRollbackConfiguration": g.auto_rollback_configuration or {"enabled": False},
        "deploymentStyle": g.deployment_style,
        "outdatedInstancesStrategy": g.outdated_instances_strategy or "UPDATE",
        "blueGreenDeploymentConfiguration": g.blue_green_deployment_configuration,
        "loadBalancerInfo": g.load_balancer_info,
        "computePlatform": g.application.compute_platform,
        "ecsServices": g.ecs_services,
        "terminationHookEnabled": bool(g.termination_hook_enabled),
    }
    mine = [d for d in deployments(req) if d["applicationName"] == out["applicationName"]
            and d["deploymentGroupName"] == out["deploymentGroupName"]]
    if mine:
        last = mine[-1]
        out["lastAttemptedDeployment"] = {
            "deploymentId": last["deploymentId"],
            "status": last["status"],
            "createTime": last["createTime"],
            **({"endTime": last["completeTime"]} if "completeTime" in last else {}),
        }
        ok = [d for d in mine if d["status"] == "Succeeded"]
        if ok:
            out["lastSuccessfulDeployment"] = {
                "deploymentId": ok[-1]["deploymentId"],
                "status": "Succeeded",
                "createTime": ok[-1]["createTime"],
                "endTime": ok[-1]["completeTime"],
            }
    return out


def get_deployment_group(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    app_name = _name(p, "applicationName", "ApplicationNameRequiredException", "InvalidApplicationNameException")
    name = _name(p, "deploymentGroupName", "DeploymentGroupNameRequiredException", "InvalidDeploymentGroupNameException")
    return {"deploymentGroupInfo": group_json(req, group(req, app_name, name))}


def batch_get_deployment_groups(req: AwsRequest) -> dict[str, Any]:
    """Unknown names are not an error: they are named in `errorMessage` (as AWS does)."""
    p = req.params
    app_name = _name(p, "applicationName", "ApplicationNameRequiredException", "InvalidApplicationNameException")
    names = p.get("deploymentGroupNames")
    if not names:
        raise AwsError("DeploymentGroupNameRequiredException", "The deployment group name is required.")
    if len(names) > MAX_BATCH_GROUPS:
        raise AwsError("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (100) was exceeded.")
    application(req, app_name)
    groups = backend(req).deployment_groups.get(app_name, {})
    found, missing = [], []
    for n in names:
        if not isinstance(n, str) or not 1 <= len(n) <= 100:
            raise AwsError("InvalidDeploymentGroupNameException", f"The deployment group name {n!r} is not valid.")
        if n in groups:
            found.append(group_json(req, groups[n]))
        else:
            missing.append(n)
    out: dict[str, Any] = {"deploymentGroupsInfo": found}
    if missing:
        out["errorMessage"] = f"Deployment groups not found: {', '.join(missing)}"
    return out


# Deployments --------------------------------------------------------------------------


def deployments(req: AwsRequest) -> list[dict[str, Any]]:
    return list(DEPLOYMENTS.get((req.account, req.region), {}).values())


def new_id() -> str:
    return "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))


def target_service(content: str) -> dict[str, Any]:
    """The AppSpec's TargetService properties (JSON or YAML); InvalidRevisionException when
    the content is not an ECS AppSpec."""
    try:
        spec = yaml.safe_load(content)
    except yaml.YAMLError as err:
        raise AwsError("InvalidRevisionException", f"The AppSpec content is not valid JSON or YAML: {err}") from None
    resources = spec.get("Resources") if isinstance(spec, dict) else None
    if not isinstance(resources, list) or not resources:
        raise AwsError("InvalidRevisionException", "The AppSpec content must contain a Resources section.")
    for resource in resources:
        ts = resource.get("TargetService") if isinstance(resource, dict) else None
        if not isinstance(ts, dict) or ts.get("Type") != "AWS::ECS::Service":
            raise AwsError("InvalidRevisionException", "The AppSpec Resources must contain one TargetService of Type AWS::ECS::Service.")
        props = ts.get("Properties")
        if not isinstance(props, dict) or not props.get("TaskDefinition"):
            raise AwsError("InvalidRevisionException", "The AppSpec TargetService needs Properties.TaskDefinition.")
        lb = props.get("LoadBalancerInfo")
        if not isinstance(lb, dict) or not lb.get("ContainerName") or "ContainerPort" not in lb:
            raise AwsError(
                "InvalidRevisionException",
                "The AppSpec TargetService needs Properties.LoadBalancerInfo.ContainerName and ContainerPort.",
            )
        return props
    raise AwsError("InvalidRevisionException", "The AppSpec content has no TargetService.")


def create_deployment(req: AwsRequest) -> dict[str, Any]:
    p = req.params
    app_name = _name(p, "applicationName", "ApplicationNameRequiredException", "InvalidApplicationNameException")
    group_name = _name(p, "deploymentGroupName", "DeploymentGroupNameRequiredException", "InvalidDeploymentGroupNameException")
    app = application(req, app_name)
    g = group(req, app_name, group_name)
    description = p.get("description")
    if description is not None and len(str(description)) > 100:
        raise AwsError("DescriptionTooLongException", "The description is too long.")
    revision = p.get("revision")
    if not revision:
        raise AwsError("RevisionRequiredException", "The revision ID was not specified.")
    props = None
    if app.compute_platform == "ECS":
        if revision.get("revisionType") != "AppSpecContent" or not isinstance(revision.get("appSpecContent"), dict):
            raise AwsError("InvalidRevisionException", "An ECS deployment needs an AppSpecContent revision.")
        content = revision["appSpecContent"].get("content")
        if not isinstance(content, str) or not content:
            raise AwsError("InvalidRevisionException", "The AppSpec content is empty.")
        props = target_service(content)
    active = next(
        (d for d in deployments(req)
         if d["applicationName"] == app_name and d["deploymentGroupName"] == group_name and d["status"] in ACTIVE),
        None,
    )
    if active is not None:
        raise AwsError(
            "DeploymentLimitExceededException",
            f"The Deployment Group '{group_name}' already has an active Deployment '{active['deploymentId']}'",
        )
    deployment_id = new_id()
    d: dict[str, Any] = {
        "applicationName": app_name,
        "deploymentGroupName": group_name,
        "deploymentConfigName": str(p.get("deploymentConfigName") or g.deployment_config_name),
        "deploymentId": deployment_id,
        "revision": revision,
        "status": "Created",
        "createTime": now(),
        "deploymentOverview": {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0, "Ready": 0},
        "creator": "user",
        "ignoreApplicationStopFailures": bool(p.get("ignoreApplicationStopFailures")),
        "updateOutdatedInstancesOnly": False,
        "deploymentStyle": g.deployment_style,
        "instanceTerminationWaitTimeStarted": False,
        "blueGreenDeploymentConfiguration": g.blue_green_deployment_configuration,
        "loadBalancerInfo": g.load_balancer_info,
        "fileExistsBehavior": p.get("fileExistsBehavior") or "DISALLOW",
        "deploymentStatusMessages": [],
        "computePlatform": app.compute_platform,
    }
    if description:
        d["description"] = description
    DEPLOYMENTS.setdefault((req.account, req.region), {})[deployment_id] = d
    if props is not None and g.ecs_services:
        key = (req.account, req.region, deployment_id)
        d["gec"] = {"props": props, "service": dict(g.ecs_services[0])}
        STATE.after(min(0.05, STATE.config["rolloutSeconds"]), begin, key)
    return {"deploymentId": deployment_id}


def _find(key: tuple[str, str, str]) -> dict[str, Any] | None:
    account, region, deployment_id = key
    return DEPLOYMENTS.get((account, region), {}).get(deployment_id)


def _service_of(key: tuple[str, str, str], d: dict[str, Any]) -> Any:
    from .ecs_services import adopt

    ref = d["gec"]["service"]
    service = ecs_backend(key[0], key[1]).services.get(f"{ref['clusterName'].split('/')[-1]}:{ref['serviceName']}")
    if service is None or service.status != "ACTIVE":
        return None
    return adopt(service)


def fail(d: dict[str, Any], status: str, code: str, message: str) -> None:
    d["status"] = status
    d["completeTime"] = now()
    d["errorInformation"] = {"code": code, "message": message}
    d["deploymentOverview"]["InProgress"] = 0
    d["deploymentOverview"]["Failed" if status == "Failed" else "Skipped"] = 1


def begin(key: tuple[str, str, str]) -> None:
    """Created -> InProgress: the replacement task set starts its tasks (the AppSpec's task
    definition, desiredCount of the service; GuardDuty decides each task's agent)."""
    from .ecs_task_sets import new_task_set
    from .ecs_tasks import task_definition

    d = _find(key)
    if d is None or d["status"] != "Created":
        return
    d["status"], d["startTime"] = "InProgress", now()
    d["deploymentOverview"]["InProgress"] = 1
    service = _service_of(key, d)
    if service is None:
        fail(d, "Failed", "INVALID_ECS_SERVICE", "The ECS service of the deployment group does not exist.")
        return
    props = d["gec"]["props"]
    try:
        task_def = task_definition(key[0], key[1], str(props["TaskDefinition"]))
    except AwsError:
        fail(d, "Failed", "INVALID_REVISION", f"The task definition {props['TaskDefinition']} does not exist.")
        return
    lb = props["LoadBalancerInfo"]
    served = [(b.get("containerName"), b.get("containerPort")) for b in service.gec_load_balancers]
    if (lb["ContainerName"], lb["ContainerPort"]) not in served:
        fail(
            d,
            "Failed",
            "ECS_UPDATE_ERROR",
            f"The ECS service cannot be updated: the AppSpec's LoadBalancerInfo (container {lb['ContainerName']}, "
            f"port {lb['ContainerPort']}) does not match the load balancer of service {service.name}.",
        )
        return
    if lb["ContainerName"] not in {c["name"] for c in task_def.container_definitions}:
        fail(d, "Failed", "ECS_UPDATE_ERROR", f"The container {lb['ContainerName']} does not exist in the task definition.")
        return
    ts = new_task_set(service, task_def.arn, started_by="CODE_DEPLOY", status="ACTIVE", external_id=d["deploymentId"])
    d["gec"]["taskSet"] = ts["id"]
    STATE.after(STATE.config["rolloutSeconds"], finish, key)


def _drop_replacement(key: tuple[str, str, str], d: dict[str, Any], reason: str) -> None:
    from .ecs_task_sets import remove_task_set

    service = _service_of(key, d)
    set_id = d.get("gec", {}).get("taskSet")
    if service is not None and set_id:
        remove_task_set(service, set_id, reason)


def finish(key: tuple[str, str, str]) -> None:
    from .ecs_task_sets import promote, remove_task_set

    d = _find(key)
    if d is None or d["status"] != "InProgress":
        return
    service = _service_of(key, d)
    name = d["gec"]["service"]["serviceName"]
    if STATE.knobs["stopCodeDeploy"].pop(name, None):
        _drop_replacement(key, d, f"Task set deleted by CodeDeploy deployment {d['deploymentId']}")
        fail(d, "Stopped", "MANUAL_STOP", "The deployment was stopped by the user.")
        return
    if service is None or STATE.knobs["failCodeDeploy"].pop(name, None):
        _drop_replacement(key, d, f"Task set deleted by CodeDeploy deployment {d['deploymentId']}")
        fail(
            d,
            "Failed",
            "ECS_UPDATE_ERROR",
            "The deployment failed because the replacement task set did not reach a steady state.",
        )
        return
    set_id = d["gec"]["taskSet"]
    if not any(ts["id"] == set_id for ts in service.gec_task_sets):
        fail(d, "Failed", "ECS_UPDATE_ERROR", "The replacement task set no longer exists.")
        return
    promote(service, set_id)
    for ts in list(service.gec_task_sets):
        if ts["id"] != set_id:
            remove_task_set(service, ts["id"], f"Task set deleted by CodeDeploy deployment {d['deploymentId']}")
    d["status"], d["completeTime"] = "Succeeded", now()
    d["deploymentOverview"].update(InProgress=0, Succeeded=1)


def stop_deployment(req: AwsRequest) -> dict[str, Any]:
    d = _get(req, req.params.get("deploymentId"))
    if d["status"] not in ACTIVE:
        raise AwsError("DeploymentAlreadyCompletedException", f"The deployment {d['deploymentId']} has already completed.")
    key = (req.account, req.region, d["deploymentId"])
    if "gec" in d:
        _drop_replacement(key, d, f"Task set deleted by CodeDeploy deployment {d['deploymentId']}")
    fail(d, "Stopped", "MANUAL_STOP", "The deployment was stopped by the user.")
    return {"status": "Succeeded", "statusMessage": "Deployment stopped."}


def deployment_json(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "gec"}


def _get(req: AwsRequest, deployment_id: Any) -> dict[str, Any]:
    if not deployment_id:
        raise AwsError("DeploymentIdRequiredException", "The deployment ID was not specified.")
    if not isinstance(deployment_id, str) or not deployment_id.startswith("d-") or len(deployment_id) != 11:
        raise AwsError("InvalidDeploymentIdException", f"The deployment ID {deployment_id!r} is not valid.")
    d = DEPLOYMENTS.get((req.account, req.region), {}).get(deployment_id)
    if d is None:
        raise AwsError("DeploymentDoesNotExistException", f"The deployment {deployment_id} could not be found.")
    return d


def get_deployment(req: AwsRequest) -> dict[str, Any]:
    return {"deploymentInfo": deployment_json(_get(req, req.params.get("deploymentId")))}


def batch_get_deployments(req: AwsRequest) -> dict[str, Any]:
    ids = req.params.get("deploymentIds")
    if not ids:
        raise AwsError("DeploymentIdRequiredException", "The deployment ID was not specified.")
    if len(ids) > MAX_BATCH_DEPLOYMENTS:
        raise AwsError("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (25) was exceeded.")
    out = []
    for deployment_id in ids:
        try:
            out.append(deployment_json(_get(req, deployment_id)))
        except AwsError as err:
            if err.code != "DeploymentDoesNotExistException":
                raise
    return {"deploymentsInfo": out}


def _time(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AwsError("InvalidTimeRangeException", f"createTimeRange.{field} must be a timestamp.")
    return float(value)


def list_deployments(req: AwsRequest) -> dict[str, Any]:
    """Newest first; `includeOnlyStatuses`, `createTimeRange` (epoch numbers on the wire),
    `externalId`; pages of 100 with an opaque `nextToken`."""
    p = req.params
    app_name, group_name = p.get("applicationName"), p.get("deploymentGroupName")
    if app_name and not group_name:
        raise AwsError("DeploymentGroupNameRequiredException", "If applicationName is specified, then deploymentGroupName must be specified.")
    if group_name and not app_name:
        raise AwsError("ApplicationNameRequiredException", "If deploymentGroupName is specified, then applicationName must be specified.")
    if app_name:
        group(req, app_name, group_name)
    statuses = p.get("includeOnlyStatuses") or []
    for status in statuses:
        if status not in STATUSES:
            raise AwsError("InvalidDeploymentStatusException", f"The deployment status {status!r} is not valid.")
    window = p.get("createTimeRange") or {}
    start, end = _time(window.get("start"), "start"), _time(window.get("end"), "end")
    if start is not None and end is not None and start > end:
        raise AwsError("InvalidTimeRangeException", "The start time must be earlier than the end time.")
    ids = [
        d["deploymentId"]
        for d in reversed(deployments(req))
        if (not app_name or (d["applicationName"], d["deploymentGroupName"]) == (app_name, group_name))
        and (not statuses or d["status"] in statuses)
        and (start is None or d["createTime"] >= start)
        and (end is None or d["createTime"] <= end)
        and (not p.get("externalId") or d.get("externalId") == p["externalId"])
    ]
    offset = 0
    token = p.get("nextToken")
    if token:
        try:
            offset = int(token.removeprefix("gec-"))
        except (ValueError, AttributeError):
            raise AwsError("InvalidNextTokenException", "The next token was specified in an invalid format.") from None
        if not token.startswith("gec-") or not 0 <= offset <= len(ids):
            raise AwsError("InvalidNextTokenException", "The next token was specified in an invalid format.")
    chunk = ids[offset : offset + LIST_PAGE]
    out: dict[str, Any] = {"deployments": chunk}
    if offset + LIST_PAGE < len(ids):
        out["nextToken"] = f"gec-{offset + LIST_PAGE}"
    return out


HANDLERS = {
    ("codedeploy", "BatchGetApplications"): batch_get_applications,
    ("codedeploy", "GetApplication"): get_application,
    ("codedeploy", "CreateDeploymentGroup"): create_deployment_group,
    ("codedeploy", "GetDeploymentGroup"): get_deployment_group,
    ("codedeploy", "BatchGetDeploymentGroups"): batch_get_deployment_groups,
    ("codedeploy", "CreateDeployment"): create_deployment,
    ("codedeploy", "GetDeployment"): get_deployment,
    ("codedeploy", "BatchGetDeployments"): batch_get_deployments,
    ("codedeploy", "ListDeployments"): list_deployments,
    ("codedeploy", "StopDeployment"): stop_deployment,
}
