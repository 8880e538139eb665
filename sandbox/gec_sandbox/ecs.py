"""ECS cluster extensions: `ListClusters` paging and the `DescribeClusters` limit.
Services and tasks are in `ecs_tasks.py`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from .awsreq import AwsError, AwsRequest

MAX_LIST = 100  # ECS API reference, ListClusters: maxResults 1-100, default 100
MAX_DESCRIBE = 100  # ECS API reference, DescribeClusters: up to 100 cluster names or ARNs


def backend(account: str, region: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[account][region]


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message)


def encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"i": position}).encode()).decode()


def page(
    items: list[Any],
    params: dict[str, Any],
    limit: int,
    default: int | None = None,
    error: Callable[[str], AwsError] = invalid,
) -> tuple[list[Any], str | None]:
    """One page of `items` by `maxResults` (1..limit) and an opaque `nextToken`."""
    size = params.get("maxResults", default or limit)
    if not isinstance(size, int) or not 1 <= size <= limit:
        raise error(f"maxResults must be between 1 and {limit}.")
    start = 0
    if params.get("nextToken"):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(params["nextToken"].encode()))["i"])
        except (ValueError, KeyError, TypeError):
            raise error("Invalid nextToken.") from None
    chunk = items[start : start + size]
    token = encode_token(start + size) if start + size < len(items) else None
    return chunk, token


def list_clusters(req: AwsRequest) -> dict[str, Any]:
    """ListClusters pages of at most 100 (moto returns one page and ignores maxResults).
    Deleted (INACTIVE) clusters are not listed."""
    arns = [c.arn for c in backend(req.account, req.region).clusters.values() if c.status == "ACTIVE"]
    chunk, token = page(arns, req.params, MAX_LIST)
    result: dict[str, Any] = {"clusterArns": chunk}
    if token:
        result["nextToken"] = token
    return result


def check_describe_clusters(req: AwsRequest) -> None:
    """DescribeClusters accepts at most 100 clusters; moto answers the rest (tags with
    include=["TAGS"])."""
    clusters = req.params.get("clusters") or []
    if len(clusters) > MAX_DESCRIBE:
        raise invalid(f"clusters can have at most {MAX_DESCRIBE} items.")


HANDLERS = {
    ("ecs", "ListClusters"): list_clusters,
}
# Checks run before the request is passed on to moto.
CHECKS = {
    ("ecs", "DescribeClusters"): check_describe_clusters,
}
