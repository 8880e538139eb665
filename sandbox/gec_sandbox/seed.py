"""`gec-sandbox seed`: create the fleet a YAML file describes (format: sandbox/README.md).

Detectors, named clusters, services and standalone tasks are created through the AWS
API with boto3, like any client would (other accounts through STS AssumeRole).
`generate` entries (scale tests) go through `POST /_sandbox/clusters`, which calls the
same moto backend function as CreateCluster, so the ARNs and tags are identical.
Seeding requests are sent with `x-gec-sandbox-no-log` and stay out of the request log."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import yaml

DEFAULT_ACCOUNT = "123456789012"
REGION_KEYS = {"detector", "clusters", "generate", "services", "standaloneTasks"}
DETECTOR_KEYS = {"runtimeMonitoring", "ecsFargateAgentManagement"}
STATUSES = {"ENABLED", "DISABLED"}


class FleetError(ValueError):
    pass


def load(path: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Read a fleet file into {(account, region): region spec}, rejecting unknown keys."""
    return load_with_organization(path)[0]


def load_with_organization(
    path: str,
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any] | None]:
    """The fleet and its `organization` ({"administrator", "members"}, or None)."""
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    if not isinstance(doc, dict) or set(doc) - {"accounts", "regions", "organization"}:
        raise FleetError(f"{path}: top level takes only 'accounts', 'regions' and 'organization'")
    accounts = dict(doc.get("accounts") or {})
    if "regions" in doc:
        accounts.setdefault(DEFAULT_ACCOUNT, {}).setdefault("regions", {}).update(doc["regions"])
    fleet = {}
    for account, spec in accounts.items():
        account = str(account)
        if not (account.isdigit() and len(account) == 12):
            raise FleetError(f"{path}: account {account!r} must be 12 digits (quote it in YAML)")
        if not isinstance(spec, dict) or set(spec) - {"regions"}:
            raise FleetError(f"{path}: accounts.{account} takes only 'regions'")
        for region, rspec in (spec.get("regions") or {}).items():
            rspec = rspec or {}
            unknown = set(rspec) - REGION_KEYS
            if unknown:
                raise FleetError(
                    f"{path}: accounts.{account}.regions.{region}: unknown keys {sorted(unknown)}"
                )
            det = rspec.get("detector")
            if det is not None:
                if set(det) - DETECTOR_KEYS or any(v not in STATUSES for v in det.values()):
                    raise FleetError(
                        f"{path}: {account}/{region} detector takes {sorted(DETECTOR_KEYS)} = ENABLED|DISABLED"
                    )
            from .seed_tasks import SERVICE_KEYS, TASK_KEYS, check, check_generate

            try:
                for g in rspec.get("generate") or []:
                    check_generate(g)
                for item in rspec.get("services") or []:
                    check("services", item, SERVICE_KEYS, {"name", "cluster"})
                for item in rspec.get("standaloneTasks") or []:
                    check("standaloneTasks", item, TASK_KEYS, {"cluster"})
            except ValueError as err:
                raise FleetError(f"{path}: {account}/{region}: {err}") from None
            fleet[(account, str(region))] = rspec
    return fleet, organization(path, doc.get("organization"), fleet)


def _is_account(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 12 and value.isdigit()


def organization(
    path: str, raw: Any, fleet: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any] | None:
    """`organization: {administrator: "111111111111", members: ["222222222222", ...]}`:
    the administrator needs a detector in at least one Region; members are distinct
    12-digit strings other than the administrator. Each member is associated in every
    Region where both it and the administrator have a detector."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"administrator", "members"} or "administrator" not in raw:
        raise FleetError(f"{path}: organization takes 'administrator' (required) and 'members'")
    admin, members = raw["administrator"], raw.get("members") or []
    if not _is_account(admin):
        raise FleetError(f"{path}: organization.administrator must be a quoted 12-digit account id")
    if not isinstance(members, list) or not all(_is_account(m) for m in members):
        raise FleetError(f"{path}: organization.members must be a list of quoted 12-digit account ids")
    if len(set(members)) != len(members) or admin in members:
        raise FleetError(f"{path}: organization.members must be distinct and not the administrator")
    regions = [r for (a, r), spec in fleet.items() if a == admin and spec.get("detector") is not None]
    if not regions:
        raise FleetError(f"{path}: organization.administrator {admin} has no detector in the fleet")
    return {"administrator": admin, "members": list(members)}


def create_clusters(payload: dict[str, Any]) -> dict[str, Any]:
    """POST /_sandbox/clusters, run inside the server: bulk CreateCluster through moto's
    backend (the same call moto's CreateCluster handler makes)."""
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[payload["account"]][payload["region"]]
    arns = []
    for c in payload["clusters"]:
        tags = [{"key": k, "value": str(v)} for k, v in (c.get("tags") or {}).items()]
        arns.append(ecs.create_cluster(c["name"], tags or None).arn)
    return {"clusterArns": arns}


def _tags(tags: dict[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": str(k), "value": str(v)} for k, v in (tags or {}).items()]


class Seeder:
    def __init__(self, endpoint: str):
        import boto3

        self.endpoint = endpoint.rstrip("/")
        self.boto3 = boto3
        self.base = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        self.creds: dict[str, dict[str, str]] = {DEFAULT_ACCOUNT: self.base}

    def client(self, service: str, account: str, region: str) -> Any:
        if account not in self.creds:
            sts = self.client("sts", DEFAULT_ACCOUNT, region)
            c = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/gec-sandbox-seed", RoleSessionName="seed"
            )
            c = c["Credentials"]
            self.creds[account] = dict(
                aws_access_key_id=c["AccessKeyId"],
                aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"],
            )
        client = self.boto3.client(
            service, endpoint_url=self.endpoint, region_name=region, **self.creds[account]
        )
        client.meta.events.register("before-sign.*.*", _no_log)
        return client

    def control(self, path: str, payload: Any) -> Any:
        req = urllib.request.Request(
            f"{self.endpoint}/_sandbox/{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)

    def seed_region(self, account: str, region: str, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"detectorId": None, "clusters": 0}
        det = spec.get("detector")
        if det is not None:
            gd = self.client("guardduty", account, region)
            feature = {
                "Name": "RUNTIME_MONITORING",
                "Status": det.get("runtimeMonitoring", "DISABLED"),
                "AdditionalConfiguration": [
                    {
                        "Name": "ECS_FARGATE_AGENT_MANAGEMENT",
                        "Status": det.get("ecsFargateAgentManagement", "DISABLED"),
                    }
                ],
            }
            out["detectorId"] = gd.create_detector(Enable=True, Features=[feature])["DetectorId"]
        ecs = self.client("ecs", account, region)
        for c in spec.get("clusters") or []:
            ecs.create_cluster(clusterName=c["name"], tags=_tags(c.get("tags")))
            out["clusters"] += 1
        for g in spec.get("generate") or []:
            clusters = [
                {"name": g["name"].format(i=i), "tags": g.get("tags")} for i in range(int(g["count"]))
            ]
            for start in range(0, len(clusters), 500):
                self.control(
                    "clusters",
                    {"account": account, "region": region, "clusters": clusters[start : start + 500]},
                )
            out["clusters"] += len(clusters)
            if g.get("workload"):
                # One call per generate entry: its services are all created before its tasks.
                made = self.control(
                    "tasks",
                    {
                        "account": account,
                        "region": region,
                        "clusters": [c["name"] for c in clusters],
                        **g["workload"],
                    },
                )
                out["services"] = out.get("services", 0) + made["services"]
                out["bulkTasks"] = out.get("bulkTasks", 0) + made["tasks"]
        if spec.get("services") or spec.get("standaloneTasks"):
            from .seed_tasks import seed_workloads

            for key, n in seed_workloads(self, account, region, spec).items():
                out[key] = out.get(key, 0) + n
        return out


def _no_log(request: Any, **kwargs: Any) -> None:
    request.headers["x-gec-sandbox-no-log"] = "1"


def seed_file(endpoint: str, path: str) -> str:
    """Seed the fleet in `path`; returns a JSON summary (detector ids, counts)."""
    # Hermetic: dummy credentials, and no profile or config file of the user's.
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    fleet, org = load_with_organization(path)
    seeder = Seeder(endpoint)
    summary: dict[str, Any] = {}
    for (account, region), spec in fleet.items():
        summary.setdefault(account, {})[region] = seeder.seed_region(account, region, spec)
    out: dict[str, Any] = {"accounts": summary}
    if org is not None:
        out["organization"] = seed_organization(seeder, fleet, org)
    return json.dumps(out, sort_keys=True)


def seed_organization(
    seeder: Seeder, fleet: dict[tuple[str, str], dict[str, Any]], org: dict[str, Any]
) -> dict[str, Any]:
    """The administrator in each Region where it has a detector; each member joins where
    it has one too. Returns {"administrator", "regions": {region: [members]}}."""
    def detector_regions(account: str) -> list[str]:
        return [r for (a, r), spec in fleet.items() if a == account and spec.get("detector") is not None]

    admin = org["administrator"]
    regions = detector_regions(admin)
    seeder.control("organization/administrator", {"account": admin, "regions": regions})
    joined: dict[str, list[str]] = {region: [] for region in regions}
    for member in org["members"]:
        common = [r for r in detector_regions(member) if r in joined]
        if common:
            seeder.control("organization/members", {"administrator": admin, "account": member, "regions": common})
        for region in common:
            joined[region].append(member)
    return {"administrator": admin, "regions": joined}
