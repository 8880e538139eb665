"""The server process, the request log and reset, and seeding a fleet file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error

import pytest
from conftest import SANDBOX_DIR, Sandbox, start_server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_writes_port_file_and_exits_0_on_signal(tmp_path, signum):
    port_file = tmp_path / "url"
    proc, url = start_server("--port-file", str(port_file))
    try:
        assert port_file.read_text().strip() == url
        # keep-alive connections leave server threads behind: the signal must still stop it
        ecs = Sandbox(url).client("ecs")
        for i in range(5):
            ecs.create_cluster(clusterName=f"c{i}")
    finally:
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
    assert proc.stdout.read() == ""  # exactly one line on stdout


def test_request_log_records_each_call_in_order(sandbox):
    gd, ecs = sandbox.client("guardduty", "eu-west-1"), sandbox.client("ecs", "eu-west-1")
    tagging = sandbox.client("resourcegroupstaggingapi", "eu-west-1")
    cluster_arn = ecs.create_cluster(clusterName="c")["cluster"]["clusterArn"]
    detector_id = gd.create_detector(Enable=True)["DetectorId"]
    tagging.tag_resources(ResourceARNList=[cluster_arn], Tags={"GuardDutyManaged": "false"})
    gd.update_detector(DetectorId=detector_id, Features=[{"Name": "RUNTIME_MONITORING", "Status": "ENABLED"}])
    gd.list_detectors()
    gd.get_detector(DetectorId=detector_id)
    try:
        ecs.describe_clusters(clusters=[f"c{i}" for i in range(101)])
    except Exception:
        pass
    log = sandbox.requests()
    assert [(r["service"], r["operation"], r["status"]) for r in log] == [
        ("ecs", "CreateCluster", 200),
        ("guardduty", "CreateDetector", 200),
        ("tagging", "TagResources", 200),
        ("guardduty", "UpdateDetector", 200),
        ("guardduty", "ListDetectors", 200),
        ("guardduty", "GetDetector", 200),
        ("ecs", "DescribeClusters", 400),
    ]
    assert [r["seq"] for r in log] == sorted(r["seq"] for r in log)
    assert {r["region"] for r in log} == {"eu-west-1"} and {r["account"] for r in log} == {"123456789012"}
    assert log[2]["params"] == {"ResourceARNList": [cluster_arn], "Tags": {"GuardDutyManaged": "false"}}
    assert log[3]["params"]["DetectorId"] == detector_id
    assert log[3]["params"]["features"] == [{"name": "RUNTIME_MONITORING", "status": "ENABLED"}]
    sandbox.call("DELETE", "requests")
    assert sandbox.requests() == []


def test_request_log_names_the_assumed_account(sandbox):
    ecs = sandbox.client("ecs", account="210987654321")
    ecs.list_clusters()
    log = sandbox.requests()
    assert [(r["service"], r["operation"], r["account"]) for r in log] == [
        ("sts", "AssumeRole", "123456789012"),
        ("ecs", "ListClusters", "210987654321"),
    ]
    assert log[0]["params"]["RoleArn"] == "arn:aws:iam::210987654321:role/test"


def test_control_endpoint_errors(sandbox):
    for method, path, payload, status in [
        ("GET", "nope", None, 404),
        ("POST", "knobs", {"bogus": ["api"]}, 400),
        ("POST", "config", {"rolloutSecs": 1}, 400),
        ("POST", "clusters", {"region": "us-east-1"}, 400),
    ]:
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            sandbox.call(method, path, payload)
        assert excinfo.value.code == status, (method, path)
    assert sandbox.call("POST", "config", {"rolloutSeconds": 1}) == {"rolloutSeconds": 1.0, "bakeSecondsPerMinute": 60.0}


def test_reset_clears_aws_state_and_log(sandbox):
    sandbox.client("ecs").create_cluster(clusterName="c")
    sandbox.call("POST", "reset")
    assert sandbox.requests() == []
    assert sandbox.client("ecs").list_clusters()["clusterArns"] == []


def seed(url: str, tmp_path, text: str) -> dict:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(textwrap.dedent(text))
    out = subprocess.run(
        [sys.executable, "-m", "gec_sandbox", "seed", "--endpoint", url, str(fleet)],
        env=dict(os.environ, PYTHONPATH=SANDBOX_DIR),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_seed_creates_detectors_and_clusters_in_each_account(sandbox, tmp_path):
    summary = seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: DISABLED}
            clusters:
              - name: payments-prod
                tags: {team: payments, GuardDutyManaged: "true"}
        accounts:
          "210987654321":
            regions:
              eu-west-1:
                clusters: [{name: other}]
    """,
    )
    us = summary["accounts"]["123456789012"]["us-east-1"]
    assert us["clusters"] == 1 and us["detectorId"]
    assert summary["accounts"]["210987654321"]["eu-west-1"] == {"clusters": 1, "detectorId": None}
    gd = sandbox.client("guardduty")
    runtime = next(
        f
        for f in gd.get_detector(DetectorId=us["detectorId"])["Features"]
        if f["Name"] == "RUNTIME_MONITORING"
    )
    assert runtime["Status"] == "ENABLED"
    assert {c["Name"]: c["Status"] for c in runtime["AdditionalConfiguration"]}[
        "ECS_FARGATE_AGENT_MANAGEMENT"
    ] == "DISABLED"
    described = sandbox.client("ecs").describe_clusters(clusters=["payments-prod"], include=["TAGS"])[
        "clusters"
    ][0]
    assert described["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/payments-prod"
    assert sorted((t["key"], t["value"]) for t in described["tags"]) == [
        ("GuardDutyManaged", "true"),
        ("team", "payments"),
    ]
    other = sandbox.client("ecs", "eu-west-1", account="210987654321").list_clusters()["clusterArns"]
    assert other == ["arn:aws:ecs:eu-west-1:210987654321:cluster/other"]
    assert sandbox.client("ecs", "eu-west-1").list_clusters()["clusterArns"] == []
    seeding = {"CreateCluster", "CreateDetector", "AssumeRole"} & {r["operation"] for r in sandbox.requests()}
    assert seeding == {"AssumeRole"}  # the test's own AssumeRole; seeding is not logged


def test_seed_generates_a_thousand_clusters_quickly(sandbox, tmp_path):
    started = time.monotonic()
    summary = seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            generate:
              - {name: "fleet-{i:04d}", count: 1200, tags: {env: dev}}
    """,
    )
    assert summary["accounts"]["123456789012"]["us-east-1"]["clusters"] == 1200
    assert time.monotonic() - started < 20
    ecs = sandbox.client("ecs")
    arns = [a for p in ecs.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    assert len(arns) == 1200 and arns[7] == "arn:aws:ecs:us-east-1:123456789012:cluster/fleet-0007"
    assert ecs.list_tags_for_resource(resourceArn=arns[7])["tags"] == [{"key": "env", "value": "dev"}]


def test_seed_starts_services_and_standalone_tasks(sandbox, tmp_path):
    summary = seed(
        sandbox.url,
        tmp_path,
        """
        regions:
          us-east-1:
            detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: ENABLED}
            clusters: [{name: prod}, {name: excluded, tags: {GuardDutyManaged: "false"}}]
            services:
              - {name: api, cluster: prod, desiredCount: 3, launchType: FARGATE}
              - {name: legacy, cluster: prod, desiredCount: 1, launchType: EC2}
              - {name: api, cluster: excluded, desiredCount: 2}
            standaloneTasks:
              - {cluster: prod, count: 12, launchType: FARGATE}
    """,
    )
    assert summary["accounts"]["123456789012"]["us-east-1"]["services"] == 3
    assert summary["accounts"]["123456789012"]["us-east-1"]["standaloneTasks"] == 12
    ecs = sandbox.client("ecs")

    def agent_counts(cluster, **kw):
        arns = [
            a for p in ecs.get_paginator("list_tasks").paginate(cluster=cluster, **kw) for a in p["taskArns"]
        ]
        tasks = [
            t
            for i in range(0, len(arns), 100)
            for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"]
        ]
        return sorted(
            sum(c["name"].startswith("aws-guardduty-agent-") for c in t["containers"]) for t in tasks
        )

    assert agent_counts("prod", serviceName="api") == [1, 1, 1]
    assert agent_counts("prod", serviceName="legacy") == [0]
    assert agent_counts("excluded", serviceName="api") == [0, 0]
    assert agent_counts("prod", startedBy="gec-sandbox-seed") == [1] * 12


def test_seed_rejects_unknown_keys(sandbox, tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("regions:\n  us-east-1:\n    clustres: []\n")
    out = subprocess.run(
        [sys.executable, "-m", "gec_sandbox", "seed", "--endpoint", sandbox.url, str(fleet)],
        env=dict(os.environ, PYTHONPATH=SANDBOX_DIR),
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "clustres" in out.stderr


def test_seed_execution_roles_and_operating_systems(sandbox, tmp_path):
    """Fleet-file keys `executionRole` (pull | noPull | none) and `operatingSystemFamily`:
    the agent as GuardDuty attaches it (GuardDuty UG prereq-runtime-monitoring-ecs-support;
    ECS developer guide ecs-guard-duty-troubleshooting), in another account too."""
    seed(
        sandbox.url,
        tmp_path,
        """
        accounts:
          "222222222222":
            regions:
              eu-west-1:
                detector: {runtimeMonitoring: ENABLED, ecsFargateAgentManagement: ENABLED}
                clusters: [{name: apps}]
                services:
                  - {name: ok, cluster: apps}
                  - {name: nopull, cluster: apps, executionRole: noPull}
                  - {name: norole, cluster: apps, executionRole: none}
                  - {name: old, cluster: apps, platformVersion: "1.3.0"}
                  - {name: win, cluster: apps, operatingSystemFamily: WINDOWS_SERVER_2022_CORE}
    """,
    )
    ecs = sandbox.client("ecs", "eu-west-1", account="222222222222")

    def agent_state(service):
        [arn] = ecs.list_tasks(cluster="apps", serviceName=service)["taskArns"]
        [task] = ecs.describe_tasks(cluster="apps", tasks=[arn])["tasks"]
        states = [c["lastStatus"] for c in task["containers"] if c["name"].startswith("aws-guardduty-agent-")]
        return task["platformFamily"], task["platformVersion"], states

    assert agent_state("ok") == ("Linux", "1.4.0", ["RUNNING"])
    assert agent_state("nopull") == ("Linux", "1.4.0", ["STOPPED"])
    assert agent_state("norole") == ("Linux", "1.4.0", [])
    assert agent_state("old") == ("Linux", "1.3.0", [])
    assert agent_state("win") == ("WINDOWS_SERVER_2022_CORE", "1.0.0", [])
    td = ecs.describe_task_definition(taskDefinition="ok-fargate")["taskDefinition"]
    assert td["executionRoleArn"] == "arn:aws:iam::222222222222:role/gec-sandbox-task-execution"
    iam = sandbox.client("iam", account="222222222222")
    assert iam.list_attached_role_policies(RoleName="gec-sandbox-task-execution")["AttachedPolicies"][0][
        "PolicyArn"
    ] == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


@pytest.mark.parametrize(
    "entry, word",
    [
        ("{name: a, cluster: c, executionRole: maybe}", "executionRole"),
        ("{name: a, cluster: c, operatingSystemFamily: MACOS}", "operatingSystemFamily"),
        ("{name: a, cluster: c, platformVersion: 1.4}", "platformVersion"),
    ],
)
def test_seed_rejects_bad_service_keys(sandbox, tmp_path, entry, word):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"regions:\n  us-east-1:\n    clusters: [{{name: c}}]\n    services: [{entry}]\n")
    out = subprocess.run(
        [sys.executable, "-m", "gec_sandbox", "seed", "--endpoint", sandbox.url, str(fleet)],
        env=dict(os.environ, PYTHONPATH=SANDBOX_DIR),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and word in out.stderr
    assert sandbox.client("ecs").list_clusters()["clusterArns"] == []  # nothing created
