"""Resource Groups Tagging API `TagResources` / `UntagResources` as AWS answers them:
at most 20 ARNs per call, and per-ARN failures in `FailedResourcesMap` while the other
ARNs are still tagged (moto accepts any number and fails the whole call on one missing
resource)."""

from __future__ import annotations

import re
from typing import Any

from .awsreq import AwsError, AwsRequest

MAX_ARNS = 20  # Resource Groups Tagging API reference, TagResources: ResourceARNList 1-20 items
CLUSTER_ARN = re.compile(r"^arn:[^:]+:ecs:(?P<region>[^:]+):(?P<account>\d{12}):cluster/(?P<name>.+)$")


def _arns(req: AwsRequest) -> list[str]:
    arns = req.params.get("ResourceARNList")
    if not isinstance(arns, list) or not 1 <= len(arns) <= MAX_ARNS:
        count = len(arns) if isinstance(arns, list) else 0
        raise AwsError(
            "InvalidParameterException",
            f"ResourceARNList must contain between 1 and {MAX_ARNS} ARNs, got {count}.",
        )
    return arns


def _failure(message: str) -> dict[str, Any]:
    return {"StatusCode": 404, "ErrorCode": "InvalidParameterException", "ErrorMessage": message}


def _apply(req: AwsRequest, arn: str, op: str, arg: Any) -> dict[str, Any] | None:
    """Tag or untag one ARN in the caller's account and Region; a failure entry or None."""
    match = CLUSTER_ARN.match(arn)
    if match:
        if (match["account"], match["region"]) != (req.account, req.region):
            return _failure(f"The resource {arn} is not in account {req.account}, Region {req.region}.")
        from moto.ecs.models import ecs_backends

        ecs = ecs_backends[req.account][req.region]
        cluster = ecs.clusters.get(match["name"])
        if cluster is None or cluster.status != "ACTIVE":
            return _failure(f"The specified cluster {arn} is not found or is inactive.")
        if op == "tag":
            ecs.tag_resource(arn, arg)
        else:
            ecs.untag_resource(arn, arg)
        return None
    # Any other resource: moto's own tagging backend, one ARN at a time.
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    backend = resourcegroupstaggingapi_backends[req.account][req.region]
    try:
        failed = backend.tag_resources([arn], arg) if op == "tag" else backend.untag_resources([arn], arg)
    except Exception as err:  # moto raises for resources it cannot find
        return _failure(str(err) or f"The resource {arn} was not found.")
    return _failure(f"The resource {arn} was not found.") if failed else None


def injected_failure(arn: str) -> dict[str, Any]:
    """The failure of an ARN named by a `failArns` fault (see faults.py)."""
    return {
        "StatusCode": 500,
        "ErrorCode": "InternalServiceException",
        "ErrorMessage": f"Internal service error while processing {arn}.",
    }


def tag_resources(req: AwsRequest, fail: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`fail`: ARNs that fail with InternalServiceException without being touched."""
    tags = req.params.get("Tags")
    if not isinstance(tags, dict) or not tags:
        raise AwsError("InvalidParameterException", "Tags must contain at least one tag.")
    failed = {}
    for arn in _arns(req):
        failure = injected_failure(arn) if arn in fail else _apply(req, arn, "tag", dict(tags))
        if failure:
            failed[arn] = failure
    return {"FailedResourcesMap": failed}


def untag_resources(req: AwsRequest, fail: frozenset[str] = frozenset()) -> dict[str, Any]:
    keys = req.params.get("TagKeys")
    if not isinstance(keys, list) or not keys:
        raise AwsError("InvalidParameterException", "TagKeys must contain at least one key.")
    failed = {}
    for arn in _arns(req):
        failure = injected_failure(arn) if arn in fail else _apply(req, arn, "untag", list(keys))
        if failure:
            failed[arn] = failure
    return {"FailedResourcesMap": failed}


HANDLERS = {
    ("tagging", "TagResources"): tag_resources,
    ("tagging", "UntagResources"): untag_resources,
}
