"""Seeding services and standalone tasks through the ECS API (fleet keys `services`
and `standaloneTasks`, see sandbox/README.md)."""

from __future__ import annotations

from typing import Any

TASK_KEYS = {"cluster", "count", "launchType", "platformVersion", "family", "executionRole", "operatingSystemFamily"}
DEPLOY_KEYS = {"deploymentController", "strategy", "bakeTimeInMinutes", "loadBalancer", "deploymentGroup", "externalId"}
SERVICE_KEYS = TASK_KEYS - {"count"} | {"name", "desiredCount"} | DEPLOY_KEYS
CONTROLLERS = ("ECS", "CODE_DEPLOY", "EXTERNAL")
STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
DEFAULT_EXTERNAL_ID = "external-deployer"
# The made-up target groups a seeded load balancer names (nothing checks them).
TARGET_GROUP = "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}-{color}/0123456789abcdef"
EXECUTION_ROLES = ("pull", "noPull", "none")
# botocore's ECS model, OSFamily
OS_FAMILIES = (
    "LINUX",
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
)


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
    if item.get("executionRole", "pull") not in EXECUTION_ROLES:
        raise ValueError(f"{kind} entry {item}: executionRole must be one of {', '.join(EXECUTION_ROLES)}")
    if item.get("operatingSystemFamily", "LINUX") not in OS_FAMILIES:
        raise ValueError(
            f"{kind} entry {item}: operatingSystemFamily must be one of {', '.join(OS_FAMILIES)}"
        )
    version = item.get("platformVersion")
    if version is not None and not isinstance(version, str):
        raise ValueError(f"{kind} entry {item}: platformVersion must be a string (quote it in YAML)")
    if kind == "services":
        check_deploy(item)


def check_deploy(item: dict[str, Any]) -> None:
    """The deployment keys of a `services` entry (sandbox/README.md, fleet file)."""
    controller = item.get("deploymentController", "ECS")
    if controller not in CONTROLLERS:
        raise ValueError(f"services entry {item}: deploymentController must be one of {', '.join(CONTROLLERS)}")
    strategy = item.get("strategy", "ROLLING")
    if strategy not in STRATEGIES:
        raise ValueError(f"services entry {item}: strategy must be one of {', '.join(STRATEGIES)}")
    if strategy != "ROLLING" and controller != "ECS":
        raise ValueError(f"services entry {item}: strategy {strategy} needs deploymentController ECS")
    bake = item.get("bakeTimeInMinutes")
    if bake is not None and (not isinstance(bake, int) or isinstance(bake, bool) or not 0 <= bake <= 1440):
        raise ValueError(f"services entry {item}: bakeTimeInMinutes must be an integer 0-1440")
    lb = item.get("loadBalancer")
    if lb is not None:
        if not isinstance(lb, dict) or set(lb) - {"containerName", "containerPort"}:
            raise ValueError(f"services entry {item}: loadBalancer takes only containerName, containerPort")
        port = lb.get("containerPort", 80)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise ValueError(f"services entry {item}: loadBalancer.containerPort must be 1-65535")
        if not isinstance(lb.get("containerName", "app"), str):
            raise ValueError(f"services entry {item}: loadBalancer.containerName must be a string")
    if "deploymentGroup" in item and (controller != "CODE_DEPLOY" or item["deploymentGroup"] != "none"):
        raise ValueError(f"services entry {item}: deploymentGroup takes only 'none', for deploymentController CODE_DEPLOY")
    if "externalId" in item and (controller != "EXTERNAL" or not isinstance(item["externalId"], str)):
        raise ValueError(f"services entry {item}: externalId (a string) is for deploymentController EXTERNAL only")


GENERATE_KEYS = {"name", "count", "tags", "workload"}


def check_generate(item: Any) -> None:
    """A `generate` entry; its `workload` is the body of POST /_sandbox/tasks without
    account, region and clusters."""
    check("generate", item, GENERATE_KEYS, {"name", "count"})
    workload = item.get("workload")
    if workload is None:
        return
    if not isinstance(workload, dict) or set(workload) - {"services", "standaloneTasks"}:
        raise ValueError(f"generate entry {item['name']!r}: workload takes only services, standaloneTasks")
    _bulk_items(workload, "services", BULK_SERVICE_KEYS)
    _bulk_items(workload, "standaloneTasks", BULK_TASK_KEYS)


def deployment_group_params(account: str, region: str, cluster: str, service: str) -> dict[str, Any]:
    """CreateDeploymentGroup of the seed's group for a CODE_DEPLOY service: in application
    `gec-<cluster>`, named after the service, naming it (BLUE_GREEN / WITH_TRAFFIC_CONTROL, a
    made-up target group pair and listener)."""
    tg = TARGET_GROUP.format(region=region, account=account, name=service[:20], color="{}")
    return {
        "applicationName": f"gec-{cluster}",
        "deploymentGroupName": service,
        "serviceRoleArn": f"arn:aws:iam::{account}:role/gec-sandbox-codedeploy",
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 0},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": tg.format("blue").split("/")[-2]}, {"name": tg.format("green").split("/")[-2]}],
                    "prodTrafficRoute": {
                        "listenerArns": [
                            f"arn:aws:elasticloadbalancing:{region}:{account}:listener/app/gec/0123456789abcdef/0123456789abcdef"
                        ]
                    },
                }
            ]
        },
        "ecsServices": [{"serviceName": service, "clusterName": cluster}],
    }


class Workloads:
    def __init__(self, seeder: Any, account: str, region: str):
        self.account, self.region = account, region
        self.ecs = seeder.client("ecs", account, region)
        self.codedeploy = seeder.client("codedeploy", account, region)
        self.applications: set[str] = set()
        self.ec2 = seeder.client("ec2", account, region)
        self.iam = seeder.client("iam", account, "us-east-1")  # IAM is global
        self.families: dict[tuple[str, str, str, str], str] = {}
        self.roles: set[str] = set()
        self._subnet: str | None = None

    def subnet(self) -> str:
        if self._subnet is None:
            self._subnet = self.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        return self._subnet

    def role(self, kind: str) -> dict[str, str]:
        """`executionRoleArn` for the task definition (the role created once per account)."""
        from .iam import create_seed_role, seed_role_arn

        arn = seed_role_arn(self.account, kind)
        if arn is None:
            return {}
        if kind not in self.roles:
            create_seed_role(self.iam, kind)
            self.roles.add(kind)
        return {"executionRoleArn": arn}

    def task_definition(self, family: str, item: dict[str, Any]) -> str:
        """Fargate: awsvpc, task-level cpu/memory (1024/2048 on Windows, its minimum), no
        container memory; EC2: bridge. Both with the item's execution role (default `pull`)
        and operating system family (default LINUX). One revision per distinct setting."""
        launch_type = item.get("launchType", "FARGATE")
        role, os_family = item.get("executionRole", "pull"), item.get("operatingSystemFamily", "LINUX")
        key = (family, launch_type, role, os_family)
        if key not in self.families:
            container = {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "essential": True}
            extra: dict[str, Any] = {**self.role(role)}
            if os_family != "LINUX":
                extra["runtimePlatform"] = {"operatingSystemFamily": os_family, "cpuArchitecture": "X86_64"}
            if launch_type == "FARGATE":
                windows = os_family != "LINUX"
                td = self.ecs.register_task_definition(
                    family=family,
                    networkMode="awsvpc",
                    requiresCompatibilities=["FARGATE"],
                    cpu="1024" if windows else "256",
                    memory="2048" if windows else "512",
                    containerDefinitions=[container],
                    **extra,
                )
            else:
                td = self.ecs.register_task_definition(
                    family=family,
                    networkMode="bridge",
                    requiresCompatibilities=["EC2"],
                    containerDefinitions=[{**container, "memory": 128}],
                    **extra,
                )
            self.families[key] = td["taskDefinition"]["taskDefinitionArn"]
        return self.families[key]

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
        controller = item.get("deploymentController", "ECS")
        strategy = item.get("strategy", "ROLLING")
        extra: dict[str, Any] = {}
        if controller != "ECS":
            extra["deploymentController"] = {"type": controller}
        config: dict[str, Any] = {}
        if strategy != "ROLLING":
            config["strategy"] = strategy
        bake = item.get("bakeTimeInMinutes", 1 if strategy == "BLUE_GREEN" else None)
        if bake is not None:
            config["bakeTimeInMinutes"] = bake
        if config:
            extra["deploymentConfiguration"] = config
        lb = item.get("loadBalancer")
        if lb is not None or controller == "CODE_DEPLOY":
            lb = lb or {}
            extra["loadBalancers"] = [
                {
                    "targetGroupArn": TARGET_GROUP.format(
                        region=self.region, account=self.account, name=item["name"][:20], color="blue"
                    ),
                    "containerName": lb.get("containerName", "app"),
                    "containerPort": lb.get("containerPort", 80),
                }
            ]
        placement = self.placement(item)
        self.ecs.create_service(
            serviceName=item["name"],
            desiredCount=int(item.get("desiredCount", 1)),
            taskDefinition=self.task_definition(family, item),
            **placement,
            **extra,
        )
        if controller == "CODE_DEPLOY" and item.get("deploymentGroup") != "none":
            self.deployment_group(item["cluster"], item["name"])
        if controller == "EXTERNAL":
            args = {k: placement[k] for k in ("networkConfiguration", "platformVersion") if k in placement}
            self.ecs.create_task_set(
                cluster=item["cluster"],
                service=item["name"],
                taskDefinition=self.task_definition(family, item),
                externalId=item.get("externalId", DEFAULT_EXTERNAL_ID),
                **args,
            )

    def deployment_group(self, cluster: str, service: str) -> None:
        """The ECS CodeDeploy application `gec-<cluster>` (once) and a deployment group named
        after the service, naming it."""
        app = f"gec-{cluster}"
        if app not in self.applications:
            try:
                self.codedeploy.create_application(applicationName=app, computePlatform="ECS")
            except self.codedeploy.exceptions.ApplicationAlreadyExistsException:
                pass
            self.applications.add(app)
        self.codedeploy.create_deployment_group(**deployment_group_params(self.account, self.region, cluster, service))

    def standalone(self, item: dict[str, Any]) -> int:
        launch_type = item.get("launchType", "FARGATE")
        family = item.get("family") or f"standalone-{launch_type.lower()}"
        count = int(item.get("count", 1))
        for start in range(0, count, 10):  # RunTask starts at most 10 per call
            self.ecs.run_task(
                taskDefinition=self.task_definition(family, item),
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


# POST /_sandbox/tasks (bulk seeding, run inside the server)
BULK_KEYS = {"account", "region", "clusters", "services", "standaloneTasks"}
BULK_SERVICE_KEYS = {"name", "count", "desiredCount", "agent", "deploymentController"}
# What a bulk service's `deploymentController` may be (default ECS).
BULK_CONTROLLERS = ("ECS", "CODE_DEPLOY")
BULK_TASK_KEYS = {"count", "agent"}
BULK_FAMILY = "gec-bulk-fargate"


def _bulk_items(payload: dict[str, Any], key: str, keys: set[str]) -> list[dict[str, Any]]:
    items = payload.get(key) or []
    if not isinstance(items, list):
        raise ValueError(f"{key} must be a list")
    for item in items:
        if not isinstance(item, dict) or set(item) - keys:
            raise ValueError(f"{key} entry {item!r}: takes only {sorted(keys)}")
        for field in ("count", "desiredCount"):
            if field in item and (not isinstance(item[field], int) or item[field] < 0):
                raise ValueError(f"{key} entry {item!r}: {field} must be an integer >= 0")
        if item.get("agent") not in (None, True, False):
            raise ValueError(f"{key} entry {item!r}: agent must be true, false or null")
        if item.get("deploymentController", "ECS") not in BULK_CONTROLLERS:
            raise ValueError(f"{key} entry {item!r}: deploymentController must be one of {', '.join(BULK_CONTROLLERS)}")
    return items


def _bulk_task_definition(account: str, region: str) -> Any:
    """The Fargate task definition bulk tasks run (awsvpc, cpu 256 / memory 512, one
    container `app`, the `pull` seed execution role), registered once per account and
    Region like RegisterTaskDefinition."""
    from .ecs import backend
    from .iam import ensure_pull_role

    ecs = backend(account, region)
    try:
        return ecs.describe_task_definition(BULK_FAMILY)
    except Exception:
        return ecs.register_task_definition(
            family=BULK_FAMILY,
            execution_role_arn=ensure_pull_role(account),
            container_definitions=[
                {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "essential": True}
            ],
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            cpu="256",
            memory="512",
        )


def _default_subnet(account: str, region: str) -> str:
    from moto.ec2.models import ec2_backends

    subnets = ec2_backends[account][region].describe_subnets()
    return subnets[0].id if subnets else "subnet-00000000"


def bulk_tasks(payload: dict[str, Any]) -> dict[str, Any]:
    """POST /_sandbox/tasks: in each listed cluster, create `services` (through the same
    code as CreateService) and RUNNING Fargate tasks (through the same task registry as
    RunTask and the service scheduler), so ListTasks, DescribeTasks, DescribeServices,
    DescribeClusters counts and ListCoverage see them as if made through the API.

    `agent`: true = every task has the agent container, false = none has it (launched
    before coverage turned on), null/absent = decided by the cluster's effective coverage
    now, as for RunTask. `deploymentController` CODE_DEPLOY: as a fleet file's
    `services` entry makes one (a load balancer, the first task set PRIMARY running the
    tasks, the ECS CodeDeploy application `gec-<cluster>` and a deployment group named
    after the service), through the same code as CreateService, CreateApplication and
    CreateDeploymentGroup. Every service of the call is created before any task, so the
    cost stays linear in what the call creates."""
    import time

    from moto.codedeploy.models import codedeploy_backends

    from .awsreq import AwsRequest
    from .codedeploy import create_deployment_group
    from .ecs import backend
    from .ecs_services import create_service
    from .ecs_tasks import cluster_obj, launch

    if not isinstance(payload, dict) or set(payload) - BULK_KEYS:
        raise ValueError(f"takes only {sorted(BULK_KEYS)}")
    account, region = str(payload["account"]), str(payload["region"])
    names = payload.get("clusters") or []
    if not isinstance(names, list):
        raise ValueError("clusters must be a list of names or ARNs")
    services = _bulk_items(payload, "services", BULK_SERVICE_KEYS)
    standalone = _bulk_items(payload, "standaloneTasks", BULK_TASK_KEYS)
    started = time.monotonic()
    clusters = [cluster_obj(account, region, name) for name in names]  # all exist, or nothing is made
    task_def = _bulk_task_definition(account, region)
    network = {"awsvpcConfiguration": {"subnets": [_default_subnet(account, region)], "assignPublicIp": "DISABLED"}}
    made: list[tuple[Any, Any, int, Any]] = []  # (cluster, service, desired count, agent)
    for cluster in clusters:
        for item in services:
            for j in range(int(item.get("count", 1))):
                name = str(item["name"]).format(j=j)
                controller = item.get("deploymentController", "ECS")
                req = AwsRequest({}, "POST", "/", b"", service="ecs", region=region, account=account)
                req.operation = "CreateService"
                req.params = {
                    "cluster": cluster.arn,
                    "serviceName": name,
                    "taskDefinition": task_def.arn,
                    "desiredCount": 0,
                    "launchType": "FARGATE",
                    "networkConfiguration": network,
                }
                if controller == "CODE_DEPLOY":
                    req.params["deploymentController"] = {"type": controller}
                    req.params["loadBalancers"] = [
                        {
                            "targetGroupArn": TARGET_GROUP.format(
                                region=region, account=account, name=name[:20], color="blue"
                            ),
                            "containerName": "app",
                            "containerPort": 80,
                        }
                    ]
                create_service(req)
                if controller == "CODE_DEPLOY":
                    app = f"gec-{cluster.name}"
                    if app not in codedeploy_backends[account][region].applications:
                        codedeploy_backends[account][region].create_application(app, "ECS", [])
                    cd = AwsRequest({}, "POST", "/", b"", service="codedeploy", region=region, account=account)
                    cd.operation = "CreateDeploymentGroup"
                    cd.params = deployment_group_params(account, region, cluster.name, name)
                    create_deployment_group(cd)
                service = backend(account, region).services[f"{cluster.name}:{name}"]
                made.append((cluster, service, int(item.get("desiredCount", 1)), item.get("agent")))
    tasks = 0
    for cluster, service, desired, agent in made:
        platform = None
        if service.gec_task_sets:  # CODE_DEPLOY: the tasks are the PRIMARY task set's
            deployment = service.gec_task_sets[0]
            service.desired_count = desired
            platform = deployment.get("platformVersion")
        else:
            deployment = service.deployments[0]
            service.desired_count = deployment["desiredCount"] = desired
        for _ in range(desired):
            launch(
                account,
                region,
                cluster,
                task_def,
                "FARGATE",
                group=f"service:{service.name}",
                started_by=deployment["id"],
                service=service.name,
                deployment_id=deployment["id"],
                platform_version=platform,
                agent=agent,
            )
        tasks += desired
    for cluster in clusters:
        for item in standalone:
            for _ in range(int(item.get("count", 1))):
                launch(
                    account,
                    region,
                    cluster,
                    task_def,
                    "FARGATE",
                    group=f"family:{BULK_FAMILY}",
                    started_by="gec-sandbox-seed",
                    agent=item.get("agent"),
                )
                tasks += 1
    return {
        "clusters": len(clusters),
        "services": len(made),
        "tasks": tasks,
        "seconds": round(time.monotonic() - started, 3),
    }
