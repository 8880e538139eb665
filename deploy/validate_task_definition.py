"""Checks deploy/ecs-task-definition.json against the ECS API, the deployment contract and
the CloudFormation template.

Run by scripts/check-deploy with the sandbox's virtualenv. Four checks, all reported:

1. botocore's ParamValidator on the `ecs` `RegisterTaskDefinition` input shape (the
   model boto3 itself sends with): unknown keys, wrong types, missing required members,
   list and string lengths. botocore does not check enum values (`networkMode: bridged`
   passes it); checks 2 and 3 pin those. Placeholders such as `<ACCOUNT>` are strings,
   which the model allows.
2. The contract of the deployment (README "Running it as a service", DESIGN §5): Fargate,
   one controller container, `--config s3://...` (the image's entrypoint is the binary with `run`), non-root, read-only root file
   system, port 9090, a health check on /healthz, ECS's 30 s stop timeout, JSON logs.
3. The `TaskDefinition` of deploy/cloudformation.yaml has the same settings: property
   names compared case-insensitively on their first letter (CloudFormation's `Cpu` is the
   API's `cpu`), every key on both sides; where the template has a parameter, a `!Sub` or
   a `!GetAtt`, the JSON file must have a `<PLACEHOLDER>` there (a `!Sub` must match the
   JSON string with placeholders as wildcards).
4. RegisterTaskDefinition against the local sandbox (`sandbox/bin/gec-sandbox serve`,
   moto, 127.0.0.1 only), then DescribeTaskDefinition: everything sent comes back.

Usage: validate_task_definition.py [--task-definition FILE] [--template FILE]
[--no-register]. Exit 0 all good, 1 a check failed (every problem printed).
"""

from __future__ import annotations

import argparse
import json
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.validate import ParamValidator
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TASK_DEFINITION = ROOT / "deploy" / "ecs-task-definition.json"
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
SANDBOX = ROOT / "sandbox" / "bin" / "gec-sandbox"
CONTAINER = "guardduty-ecs-controller"
PLACEHOLDER = re.compile(r"<[A-Z_]+>")


def model_problems(task_definition: dict) -> list[str]:
    shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task_definition, shape)
    return [line for line in report.generate_report().splitlines() if line.strip()] if report.has_errors() else []


def contract_problems(td: dict) -> list[str]:
    containers = td.get("containerDefinitions", [])
    if len(containers) != 1 or containers[0].get("name") != CONTAINER:
        return [f"expected exactly one container, named {CONTAINER}"]
    c = containers[0]
    command = c.get("command", [])
    health = c.get("healthCheck", {}).get("command", [])
    env = {e.get("name"): e.get("value") for e in c.get("environment", [])}
    logs = c.get("logConfiguration", {})
    rows = [
        # (what, holds)
        ("requiresCompatibilities is [FARGATE]", td.get("requiresCompatibilities") == ["FARGATE"]),
        ("networkMode is awsvpc", td.get("networkMode") == "awsvpc"),
        ("cpu 256, memory 512", (td.get("cpu"), td.get("memory")) == ("256", "512")),
        (
            "runtimePlatform LINUX on X86_64 or ARM64",
            td.get("runtimePlatform", {}).get("operatingSystemFamily") == "LINUX"
            and td.get("runtimePlatform", {}).get("cpuArchitecture") in ("X86_64", "ARM64"),
        ),
        ("taskRoleArn and executionRoleArn are set", bool(td.get("taskRoleArn")) and bool(td.get("executionRoleArn"))),
        ("the container is essential", c.get("essential") is True),
        (
            "command is --config s3://BUCKET/KEY --listen 0.0.0.0:9090 (ENTRYPOINT is the binary with run;"
            " it listens on loopback unless told otherwise)",
            len(command) == 4
            and command[0] == "--config"
            and re.fullmatch(r"s3://[^/]+/.+", command[1])
            and command[2:] == ["--listen", "0.0.0.0:9090"],
        ),
        ("user is 65532:65532 (non-root)", c.get("user") == "65532:65532"),
        ("readonlyRootFilesystem", c.get("readonlyRootFilesystem") is True),
        (
            "one port mapping, 9090/tcp",
            [(p.get("containerPort"), p.get("protocol")) for p in c.get("portMappings", [])] == [(9090, "tcp")],
        ),
        (
            "healthCheck runs a command (no shell) against /healthz on 127.0.0.1:9090",
            health[:1] == ["CMD"] and "http://127.0.0.1:9090/healthz" in health,
        ),
        ("stopTimeout 30 (SIGTERM, then SIGKILL after 30 s)", c.get("stopTimeout") == 30),
        (
            "RUST_LOG=info, GEC_LOG_FORMAT=json, GEC_LEASE_TABLE and GEC_EVENTS_BUS set (two replicas on a lease), "
            "GEC_METRICS_EMF=true with GEC_METRICS_EMF_NAMESPACE set (CloudWatch metrics and alarms)",
            env.keys()
            == {"RUST_LOG", "GEC_LOG_FORMAT", "GEC_LEASE_TABLE", "GEC_EVENTS_BUS", "GEC_METRICS_EMF", "GEC_METRICS_EMF_NAMESPACE"}
            and (env["RUST_LOG"], env["GEC_LOG_FORMAT"], env["GEC_METRICS_EMF"]) == ("info", "json", "true")
            and all(env[k] for k in ("GEC_LEASE_TABLE", "GEC_EVENTS_BUS", "GEC_METRICS_EMF_NAMESPACE")),
        ),
        (
            "awslogs to /ecs/guardduty-ecs-controller with a stream prefix",
            logs.get("logDriver") == "awslogs"
            and logs.get("options", {}).get("awslogs-group") == "/ecs/guardduty-ecs-controller"
            and bool(logs.get("options", {}).get("awslogs-region"))
            and bool(logs.get("options", {}).get("awslogs-stream-prefix")),
        ),
        ("no secrets, no privileged mode", "secrets" not in c and not c.get("privileged")),
    ]
    return [f"contract: {what}" for what, holds in rows if not holds]


def camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def intrinsic(value) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or key.startswith("Fn::"):
            return key
    return None


def template_problems(td: dict, template: dict) -> list[str]:
    """Differences between the template's TaskDefinition and the JSON file."""
    resources = template.get("Resources", {})
    definitions = [r for r in resources.values() if r.get("Type") == "AWS::ECS::TaskDefinition"]
    if len(definitions) != 1:
        return [f"template: expected one AWS::ECS::TaskDefinition, found {len(definitions)}"]
    problems: list[str] = []

    def compare(cfn, ours, path: str, free_form: bool = False) -> None:
        kind = intrinsic(cfn)
        if kind == "Ref" and cfn["Ref"] in resources:
            # A Ref to a log group the template creates: its name is known.
            target = resources[cfn["Ref"]]
            if target.get("Type") == "AWS::Logs::LogGroup" and "LogGroupName" in target.get("Properties", {}):
                return compare(target["Properties"]["LogGroupName"], ours, path)
        if kind == "Fn::Sub" and isinstance(cfn["Fn::Sub"], str):
            # ${X} in the template and <X> in the file are both "some value".
            pattern = "".join(
                ".+" if part.startswith("${") else re.escape(part) for part in re.split(r"(\$\{[^}]+\})", cfn["Fn::Sub"])
            )
            if not (isinstance(ours, str) and PLACEHOLDER.search(ours) and re.fullmatch(pattern, ours)):
                problems.append(f"{path}: template {cfn} vs file {ours!r} (expected a <PLACEHOLDER> where the template substitutes)")
            return None
        if kind is not None:
            if not (isinstance(ours, str) and PLACEHOLDER.search(ours)):
                problems.append(f"{path}: the template computes it ({cfn}), the file should hold a <PLACEHOLDER>, not {ours!r}")
            return None
        if isinstance(cfn, dict) and isinstance(ours, dict):
            cfn_keys = {(k if free_form else camel(k)): k for k in cfn}
            for key in sorted(cfn_keys.keys() | ours.keys()):
                if key not in ours:
                    problems.append(f"{path}.{key}: only in the template")
                elif key not in cfn_keys:
                    problems.append(f"{path}.{key}: only in the file")
                else:
                    # `options` of logConfiguration is a free-form map: its keys stay as written.
                    compare(cfn[cfn_keys[key]], ours[key], f"{path}.{key}", free_form=key == "options")
            return None
        if isinstance(cfn, list) and isinstance(ours, list):
            if len(cfn) != len(ours):
                problems.append(f"{path}: {len(cfn)} items in the template, {len(ours)} in the file")
            for i, (a, b) in enumerate(zip(cfn, ours)):
                compare(a, b, f"{path}[{i}]")
            return None
        # CloudFormation accepts "256" and 256 alike; the API model says which one.
        if cfn != ours and str(cfn).lower() != str(ours).lower():
            problems.append(f"{path}: template {cfn!r} vs file {ours!r}")
        return None

    compare(definitions[0].get("Properties", {}), td, "TaskDefinition")
    return [f"template: {p}" for p in problems]


def subset_problems(sent, got, path: str = "taskDefinition") -> list[str]:
    """Every value sent must come back the same (the response may add defaults)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{path}: sent an object, got {got!r}"]
        out = []
        for key, value in sent.items():
            if key not in got:
                out.append(f"{path}.{key}: sent, not returned")
            else:
                out.extend(subset_problems(value, got[key], f"{path}.{key}"))
        return out
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{path}: sent {sent!r}, got {got!r}"]
        return [p for i, (a, b) in enumerate(zip(sent, got)) for p in subset_problems(a, b, f"{path}[{i}]")]
    return [] if sent == got else [f"{path}: sent {sent!r}, got {got!r}"]


def register_problems(td: dict) -> list[str]:
    """Register the task definition in a private sandbox on 127.0.0.1 and read it back."""
    server = subprocess.Popen([str(SANDBOX), "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        url = ""
        while not url and time.monotonic() < deadline and server.poll() is None:
            ready, _, _ = select.select([server.stdout], [], [], 1.0)
            if ready:
                url = server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            return [f"sandbox: did not start (exit {server.poll()}, first line {url!r})"]
        ecs = boto3.client(
            "ecs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        registered = ecs.register_task_definition(**td)["taskDefinition"]
        described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]
        problems = [f"sandbox: {p}" for p in subset_problems(td, described)]
        if not problems:
            print(f"validate_task_definition: sandbox ({url}) registered {registered['taskDefinitionArn']}; all sent fields read back")
        return problems
    except BotoCoreError as err:
        return [f"sandbox: {err}"]
    except ClientError as err:
        return [f"sandbox: RegisterTaskDefinition refused it: {err}"]
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task-definition", type=Path, default=TASK_DEFINITION)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--no-register", action="store_true", help="skip the sandbox registration")
    args = parser.parse_args(argv)

    try:
        td = json.loads(args.task_definition.read_text())
    except (OSError, ValueError) as err:
        print(f"validate_task_definition: {args.task_definition}: {err}", file=sys.stderr)
        return 1
    template, matches = decode(str(args.template))
    if template is None or matches:
        print(f"validate_task_definition: {args.template}: cannot read: {matches}", file=sys.stderr)
        return 1

    problems = [f"model: {p}" for p in model_problems(td)]
    if not problems:
        print(f"validate_task_definition: valid RegisterTaskDefinition input (botocore {botocore.__version__} ecs model)")
    problems += contract_problems(td)
    problems += template_problems(td, template)
    if not problems and not args.no_register:
        problems += register_problems(td)
    for problem in problems:
        print(f"validate_task_definition: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"validate_task_definition: {args.task_definition.name}: contract holds; {args.template.name} TaskDefinition has the same settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
