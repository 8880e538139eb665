"""The `delay` fault as the controller's non-idempotent-write tests use it (issue 11): a
write held past the client's timeout is still performed when the delay ends, and a
`count: 1` rule holds only the first matching request, so a resend is answered at once
(and would be performed too: the harm the controller must avoid)."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError


def impatient_ecs(sandbox):
    """One attempt, and a read timeout shorter than the delay."""
    return boto3.client(
        "ecs",
        endpoint_url=sandbox.url,
        region_name="us-east-1",
        config=Config(read_timeout=0.3, connect_timeout=2, retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def cluster_names(sandbox) -> set[str]:
    arns = sandbox.client("ecs").list_clusters()["clusterArns"]
    return {arn.rsplit("/", 1)[-1] for arn in arns}


def test_a_write_held_past_the_client_timeout_is_performed_once_its_delay_ends(sandbox):
    sandbox.call(
        "POST",
        "faults",
        {"rules": [{"service": "ecs", "operation": "CreateCluster", "fault": "delay", "delaySeconds": 1.0, "count": 1}]},
    )
    ecs = impatient_ecs(sandbox)
    with pytest.raises(ReadTimeoutError):
        ecs.create_cluster(clusterName="held")
    assert "held" not in cluster_names(sandbox), "not performed before its delay ends"

    deadline = time.monotonic() + 5
    while "held" not in cluster_names(sandbox):
        assert time.monotonic() < deadline, "the held write was never performed"
        time.sleep(0.05)
    held = [r for r in sandbox.requests("ecs") if r["operation"] == "CreateCluster"]
    assert [(r["params"]["clusterName"], r["status"], r.get("fault")) for r in held] == [("held", 200, "delay")]

    # count: 1 is used up: the same write again is answered at once, not held.
    started = time.monotonic()
    impatient_ecs(sandbox).create_cluster(clusterName="resent")
    assert time.monotonic() - started < 0.3
    assert sandbox.call("GET", "faults")["rules"][0]["injected"] == 1
    assert {"held", "resent"} <= cluster_names(sandbox)
