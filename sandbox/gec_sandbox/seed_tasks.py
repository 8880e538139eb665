"""Seeding services and standalone tasks through the ECS API (fleet keys `services`
and `standaloneTasks`, see sandbox/README.md)."""

from __future__ import annotations

from typing import Any

SERVICE_KEYS = {"name", "cluster", "desiredCount", "launchType", "platformVersion", "family"}
TASK_KEYS = {"cluster", "count", "launchType", "platformVersion", "family"}


def check(kind: str, item: Any, keys: set[str], required: set[str]) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{kind} entry {item!r} must be a mapping")
    unknown, missing = set(item) - keys, required - set(item)
    if unknown or missing:
        raise ValueError(
            f"{kind} entry {item}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
        )
    if item.get("launchType", "FARGATE") not in ("FARGATE", "EC2"):
        raise ValueError(f"{kind} entry {item}: launchType must be FARGATE or EC2")


class Workloads:
    def __init__(self, seeder: Any, account: str, region: str):
        self.ecs = seeder.client("ecs", account, region)
        self.ec2 = seeder.client("ec2", account, region)
        self.families: dict[str, str] = {}
        self._subnet: str | None = None

    def subnet(self) -> str:
        if self._subnet is None:
            self._subnet = self.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        return self._subnet

    def task_definition(self, family: str, launch_type: str) -> str:
        """Fargate: awsvpc, task-level cpu/memory, no container memory; EC2: bridge."""
        if family not in self.families:
            container = {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "essential": True}
            if launch_type == "FARGATE":
                td = self.ecs.register_task_definition(
                    family=family,
                    networkMode="awsvpc",
                    requiresCompatibilities=["FARGATE"],
                    cpu="256",
                    memory="512",
                    containerDefinitions=[container],
                )
            else:
                td = self.ecs.register_task_definition(
                    family=family,
                    networkMode="bridge",
                    requiresCompatibilities=["EC2"],
                    containerDefinitions=[{**container, "memory": 128}],
                )
            self.families[family] = td["taskDefinition"]["taskDefinitionArn"]
        return self.families[family]

    def placement(self, item: dict[str, Any]) -> dict[str, Any]:
        launch_type = item.get("launchType", "FARGATE")
        args: dict[str, Any] = {"cluster": item["cluster"], "launchType": launch_type}
        if launch_type == "FARGATE":
            args["networkConfiguration"] = {
                "awsvpcConfiguration": {"subnets": [self.subnet()], "assignPublicIp": "DISABLED"}
            }
            if item.get("platformVersion"):
                args["platformVersion"] = item["platformVersion"]
        return args

    def service(self, item: dict[str, Any]) -> None:
        launch_type = item.get("launchType", "FARGATE")
        family = item.get("family") or f"{item['name']}-{launch_type.lower()}"
        self.ecs.create_service(
            serviceName=item["name"],
            desiredCount=int(item.get("desiredCount", 1)),
            taskDefinition=self.task_definition(family, launch_type),
            **self.placement(item),
        )

    def standalone(self, item: dict[str, Any]) -> int:
        launch_type = item.get("launchType", "FARGATE")
        family = item.get("family") or f"standalone-{launch_type.lower()}"
        count = int(item.get("count", 1))
        for start in range(0, count, 10):  # RunTask starts at most 10 per call
            self.ecs.run_task(
                taskDefinition=self.task_definition(family, launch_type),
                count=min(10, count - start),
                startedBy="gec-sandbox-seed",
                **self.placement(item),
            )
        return count


def seed_workloads(seeder: Any, account: str, region: str, spec: dict[str, Any]) -> dict[str, int]:
    work = Workloads(seeder, account, region)
    services = spec.get("services") or []
    for item in services:
        work.service(item)
    tasks = sum(work.standalone(item) for item in spec.get("standaloneTasks") or [])
    return {"services": len(services), "standaloneTasks": tasks}
