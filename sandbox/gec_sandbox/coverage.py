"""GuardDuty Runtime Monitoring coverage of ECS clusters (moto: HTTP 404).

`covered()` is the effective-coverage rule (DESIGN.md §1; GuardDuty UG,
managing-gdu-agent-ecs-automated). `ListCoverage` and `GetCoverageStatistics` are
computed from the sandbox's tasks (GuardDuty UG, gdu-assess-coverage-ecs): a covered
cluster whose running Fargate tasks all run the agent (container RUNNING) is HEALTHY;
one with a task whose agent is missing or STOPPED is UNHEALTHY with an `issue` and
`fargateDetails.issues` in GuardDuty's words."""

from __future__ import annotations

from typing import Any

from .awsreq import AwsRequest, now
from .ecs import page
from .guardduty import backend as gd_backend
from .guardduty import bad_request, feature_status, get_detector_obj

TAG_KEY = "GuardDutyManaged"
MAX_RESULTS = 50  # GuardDuty API reference, ListCoverage: maxResults 1-50


def detector_of(account: str, region: str) -> Any:
    detectors = list(gd_backend(account, region).detectors.values())
    return detectors[0] if detectors else None


def coverage_rule(account: str, region: str) -> tuple[bool, bool]:
    """(RUNTIME_MONITORING on in an enabled detector, ECS_FARGATE_AGENT_MANAGEMENT on)."""
    detector = detector_of(account, region)
    if detector is None or not detector.enabled:
        return False, False
    if feature_status(detector, "RUNTIME_MONITORING") != "ENABLED":
        return False, False
    automated = feature_status(detector, "RUNTIME_MONITORING", "ECS_FARGATE_AGENT_MANAGEMENT") == "ENABLED"
    return True, automated


def tag_of(cluster: Any) -> str | None:
    return next((t.get("value") for t in (cluster.tags or []) if t.get("key") == TAG_KEY), None)


def covered_by(rule: tuple[bool, bool], cluster: Any) -> bool:
    monitoring, automated = rule
    if not monitoring:
        return False
    tag = tag_of(cluster)
    return (automated and tag != "false") or (not automated and tag == "true")


def covered(account: str, region: str, cluster: Any) -> bool:
    """RUNTIME_MONITORING == ENABLED and ((ECS_FARGATE_AGENT_MANAGEMENT == ENABLED and tag
    != "false") or (ECS_FARGATE_AGENT_MANAGEMENT != ENABLED and tag == "true"))."""
    return covered_by(coverage_rule(account, region), cluster)


MAX_ISSUES = 50  # GuardDuty API reference, FargateDetails: issues 0-50 items


def issues_of(tasks: list[Any]) -> list[str]:
    """GuardDuty's issues for the running Fargate tasks that do not run the agent, in the
    wording of the GuardDuty UG (gdu-assess-coverage-ecs, "Troubleshooting Amazon
    ECS-Fargate runtime coverage issues"): "Agent exited: ..." for an agent container that
    stopped (its exit code and/or reason), "Agent not provisioned: ..." / "Others: ..."
    for a task GuardDuty gave no agent (tasks sharing a template are listed together:
    their ids or service names, in launch order)."""
    from .agent import exited_issue

    grouped: dict[str, list[str]] = {}
    for task in tasks:
        agent = task.agent
        if agent is not None:
            template, item = exited_issue(agent, task.task_definition), ""
        elif task.agent_gap is not None:
            template, item = task.agent_gap
        else:
            td = task.task_definition
            template, item = f"Others: Unidentified issue, for tasks in TaskDefinition - '{td}'", ""
        items = grouped.setdefault(template, [])
        if item and item not in items:
            items.append(item)
    return [template.replace("{items}", ", ".join(items)) for template, items in grouped.items()][:MAX_ISSUES]


def resources(account: str, region: str, detector_id: str) -> list[dict[str, Any]]:
    """One coverage resource per ACTIVE cluster whose effective coverage is on
    (`managementType` AUTO_MANAGED), and per cluster no longer covered that still runs
    tasks with a RUNNING agent (offboarding: `managementType` DISABLED). A task counts as
    covered only while its agent container is RUNNING."""
    from .ecs import backend as ecs_backend
    from .ecs_tasks import tasks_of

    rule = coverage_rule(account, region)
    if not rule[0]:
        return []
    out = []
    for cluster in ecs_backend(account, region).clusters.values():
        if cluster.status != "ACTIVE":
            continue
        tasks = [
            t
            for t in tasks_of(account, region, cluster.name)
            if t.last_status == "RUNNING" and t.launch_type == "FARGATE"
        ]
        on = covered_by(rule, cluster)
        if not on and not any(t.agent_running for t in tasks):
            continue
        issues = issues_of([t for t in tasks if not t.agent_running])
        item: dict[str, Any] = {
            "resourceId": cluster.arn,
            "detectorId": detector_id,
            "accountId": account,
            "resourceDetails": {
                "resourceType": "ECS",
                "ecsClusterDetails": {
                    "clusterName": cluster.name,
                    "fargateDetails": {
                        "managementType": "AUTO_MANAGED" if on else "DISABLED",
                        "issues": issues,
                    },
                    "containerInstanceDetails": {
                        "coveredContainerInstances": 0,
                        "compatibleContainerInstances": 0,
                    },
                },
            },
            "coverageStatus": "UNHEALTHY" if issues else "HEALTHY",
            "updatedAt": now(),
        }
        if issues:
            item["issue"] = issues[0]
        out.append(item)
    return out


# criterion key / sort key -> value of a coverage resource (None: EKS/EC2-only keys)
FIELDS = {
    "ACCOUNT_ID": lambda r: r["accountId"],
    "RESOURCE_TYPE": lambda r: r["resourceDetails"]["resourceType"],
    "COVERAGE_STATUS": lambda r: r["coverageStatus"],
    "ECS_CLUSTER_NAME": lambda r: r["resourceDetails"]["ecsClusterDetails"]["clusterName"],
    "CLUSTER_ARN": lambda r: r["resourceId"],
    "MANAGEMENT_TYPE": lambda r: r["resourceDetails"]["ecsClusterDetails"]["fargateDetails"][
        "managementType"
    ],
    "ISSUE": lambda r: r.get("issue", ""),
    "UPDATED_AT": lambda r: r["updatedAt"],
}
EKS_KEYS = {"CLUSTER_NAME", "EKS_CLUSTER_NAME", "ADDON_VERSION", "AGENT_VERSION", "INSTANCE_ID"}


def filtered(req: AwsRequest) -> list[dict[str, Any]]:
    from .organization import members_of

    detector_id = req.uri_params.get("DetectorId", "")
    get_detector_obj(req.account, req.region, detector_id)
    # An administrator's coverage includes its members' resources (API reference,
    # ListCoverage: "If you're a GuardDuty administrator, you can retrieve all resources
    # associated with the active member accounts in your organization").
    items = resources(req.account, req.region, detector_id)
    for member, member_detector in members_of(req.account, req.region):
        items += resources(member, req.region, member_detector)
    for criterion in (req.params.get("filterCriteria") or {}).get("filterCriterion") or []:
        key = criterion.get("criterionKey")
        if key not in FIELDS and key not in EKS_KEYS:
            raise bad_request(f"The request is rejected because the criterionKey {key!r} is invalid.")
        value = FIELDS.get(key, lambda r: None)
        cond = criterion.get("filterCondition") or {}
        if "equals" in cond:
            items = [r for r in items if value(r) in cond["equals"]]
        if "notEquals" in cond:
            items = [r for r in items if value(r) not in cond["notEquals"]]
    return items


def list_coverage(req: AwsRequest) -> dict[str, Any]:
    items = filtered(req)
    sort = req.params.get("sortCriteria") or {}
    if sort.get("attributeName") in FIELDS:
        items.sort(key=FIELDS[sort["attributeName"]], reverse=sort.get("orderBy") == "DESC")
    chunk, token = page(
        items, req.params, MAX_RESULTS, error=lambda m: bad_request(f"The request is rejected because {m}")
    )
    return {"resources": chunk, **({"nextToken": token} if token else {})}


def get_coverage_statistics(req: AwsRequest) -> dict[str, Any]:
    kinds = req.params.get("statisticsType")
    valid = {"COUNT_BY_RESOURCE_TYPE", "COUNT_BY_COVERAGE_STATUS"}
    if not kinds or not isinstance(kinds, list) or set(kinds) - valid:
        raise bad_request(
            f"The request is rejected because statisticsType must be a list of {sorted(valid)}."
        )
    items = filtered(req)
    stats: dict[str, Any] = {}
    if "COUNT_BY_RESOURCE_TYPE" in kinds:
        stats["countByResourceType"] = {"ECS": len(items)} if items else {}
    if "COUNT_BY_COVERAGE_STATUS" in kinds:
        counts: dict[str, int] = {}
        for r in items:
            counts[r["coverageStatus"]] = counts.get(r["coverageStatus"], 0) + 1
        stats["countByCoverageStatus"] = counts
    return {"coverageStatistics": stats}


HANDLERS = {
    ("guardduty", "ListCoverage"): list_coverage,
    ("guardduty", "GetCoverageStatistics"): get_coverage_statistics,
}
