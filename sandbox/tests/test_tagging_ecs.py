"""Tagging API limits and partial failures; ECS ListClusters paging and DescribeClusters."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"


def arn(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def make_clusters(ecs, names):
    return [ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"] for n in names]


def tags_of(ecs, cluster_arn: str) -> dict:
    return {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=cluster_arn).get("tags", [])}


def test_tags_written_through_tagging_api_are_seen_by_ecs(sandbox):
    ecs, tagging = sandbox.client("ecs"), sandbox.client("resourcegroupstaggingapi")
    [a] = make_clusters(ecs, ["payments-prod"])
    assert (
        tagging.tag_resources(ResourceARNList=[a], Tags={"GuardDutyManaged": "true"})["FailedResourcesMap"]
        == {}
    )
    assert tags_of(ecs, a) == {"GuardDutyManaged": "true"}
    described = ecs.describe_clusters(clusters=[a], include=["TAGS"])["clusters"][0]
    assert described["tags"] == [{"key": "GuardDutyManaged", "value": "true"}]
    assert "tags" not in ecs.describe_clusters(clusters=[a])["clusters"][0]
    assert (
        tagging.untag_resources(ResourceARNList=[a], TagKeys=["GuardDutyManaged"])["FailedResourcesMap"] == {}
    )
    assert tags_of(ecs, a) == {}


def test_more_than_20_arns_is_invalid_parameter(sandbox):
    ecs, tagging = sandbox.client("ecs"), sandbox.client("resourcegroupstaggingapi")
    arns = make_clusters(ecs, [f"c{i}" for i in range(21)])
    for call in (
        lambda: tagging.tag_resources(ResourceARNList=arns, Tags={"k": "v"}),
        lambda: tagging.untag_resources(ResourceARNList=arns, TagKeys=["k"]),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert tags_of(ecs, arns[0]) == {}
    assert tagging.tag_resources(ResourceARNList=arns[:20], Tags={"k": "v"})["FailedResourcesMap"] == {}


def test_missing_cluster_fails_alone_and_the_others_are_tagged(sandbox):
    ecs, tagging = sandbox.client("ecs"), sandbox.client("resourcegroupstaggingapi")
    a, deleted, b = make_clusters(ecs, ["a", "deleted", "b"])
    ecs.delete_cluster(cluster="deleted")
    never = arn("never-existed")
    failed = tagging.tag_resources(
        ResourceARNList=[a, deleted, never, b], Tags={"GuardDutyManaged": "false"}
    )["FailedResourcesMap"]
    assert set(failed) == {deleted, never}
    assert failed[deleted]["StatusCode"] == 404
    assert failed[deleted]["ErrorCode"] == "InvalidParameterException"
    assert failed[deleted]["ErrorMessage"]
    assert tags_of(ecs, a) == tags_of(ecs, b) == {"GuardDutyManaged": "false"}
    failed = tagging.untag_resources(ResourceARNList=[a, never], TagKeys=["GuardDutyManaged"])[
        "FailedResourcesMap"
    ]
    assert set(failed) == {never} and tags_of(ecs, a) == {}


def test_cluster_of_another_region_or_account_is_a_failure(sandbox):
    tagging = sandbox.client("resourcegroupstaggingapi")
    [other_region] = make_clusters(sandbox.client("ecs", "eu-west-1"), ["x"])
    [other_account] = make_clusters(sandbox.client("ecs", account="210987654321"), ["x"])
    failed = tagging.tag_resources(ResourceARNList=[other_region, other_account], Tags={"k": "v"})[
        "FailedResourcesMap"
    ]
    assert set(failed) == {other_region, other_account}


def test_list_clusters_pages_by_max_results(sandbox):
    ecs = sandbox.client("ecs")
    sandbox.call(
        "POST",
        "clusters",
        {"account": ACCOUNT, "region": "us-east-1", "clusters": [{"name": f"c{i:03d}"} for i in range(250)]},
    )
    first = ecs.list_clusters()
    assert len(first["clusterArns"]) == 100 and first["nextToken"]
    pages, token = [], None
    while True:
        kwargs = {"maxResults": 30, **({"nextToken": token} if token else {})}
        resp = ecs.list_clusters(**kwargs)
        pages.append(resp["clusterArns"])
        token = resp.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [30] * 8 + [10]
    assert sum(pages, []) == [arn(f"c{i:03d}") for i in range(250)]
    paginated = [a for p in ecs.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    assert len(paginated) == 250


@pytest.mark.parametrize("max_results", [0, 101])
def test_list_clusters_rejects_out_of_range_max_results(sandbox, max_results):
    status, headers, body = sandbox.raw(
        "ecs",
        "POST",
        "/",
        {"maxResults": max_results},
        target="AmazonEC2ContainerServiceV20141113.ListClusters",
    )
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert headers["x-amzn-errortype"] == "InvalidParameterException"


def test_list_clusters_leaves_out_deleted_clusters(sandbox):
    ecs = sandbox.client("ecs")
    make_clusters(ecs, ["keep", "gone"])
    ecs.delete_cluster(cluster="gone")
    assert ecs.list_clusters()["clusterArns"] == [arn("keep")]


def test_describe_clusters_takes_at_most_100(sandbox):
    ecs = sandbox.client("ecs")
    names = [f"c{i}" for i in range(101)]
    sandbox.call(
        "POST",
        "clusters",
        {"account": ACCOUNT, "region": "us-east-1", "clusters": [{"name": n} for n in names]},
    )
    with pytest.raises(ClientError) as excinfo:
        ecs.describe_clusters(clusters=names)
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterException"
    assert len(ecs.describe_clusters(clusters=names[:100])["clusters"]) == 100
