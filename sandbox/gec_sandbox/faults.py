"""Fault injection (`/_sandbox/faults`): make chosen AWS requests fail the way AWS
fails — throttling, 5xx, a dropped connection, a slow answer, access denied, or
per-ARN failures of the Tagging API — deterministically from a seed.

A rule set replaces the previous one; rules are tried in order and the first matching
rule that fires (count not used up, and a draw from `random.Random(seed)` below its
`fraction`) applies. Every matching rule whose count is not used up draws one number,
so the same seed and the same sequence of requests fault the same requests. Only signed
`ecs`, `guardduty`, `tagging` and `codedeploy` requests are faulted, and `sts`, `iam`,
`dynamodb`, `events` and `sqs` requests by a rule that names that service (so that `*`
rules never break AssumeRole, the preflight's SimulatePrincipalPolicy, the lease or the
audit events by accident); never control endpoints, seeding requests with
`x-gec-sandbox-no-log`, or other services.
A rule may narrow its match to an `account` (the one the request acts in, as logged)
and to request `params` (e.g. `{"RoleArn": "arn:aws:iam::333333333333:role/x"}`: an
AssumeRole of that role), to take one account down while the others stay up, and to a
`userAgent` substring (the request log's `userAgent`, e.g. `app/gec-replica-a`), to fault
one replica of two that differ only in their SDK app name."""

from __future__ import annotations

import functools
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from .awsreq import REST_SERVICES, AwsError, AwsRequest

SERVICES = {"ecs", "guardduty", "tagging", "codedeploy"}
# Faulted only by a rule that names them (a `*` rule means SERVICES).
NAMED_ONLY = {"sts", "iam", "dynamodb", "events", "sqs"}
# Query-protocol services: error codes of their own (AWS STS and IAM API References,
# Common Errors).
QUERY_SERVICES = {"sts", "iam"}
# DynamoDB's error `__type` namespaces: its own errors, and the ones of the service framework
# (what DynamoDB sends for AccessDeniedException, as in the DynamoDB developer guide's
# "Error handling" examples).
DYNAMODB_NS = "com.amazonaws.dynamodb.v20120810#"
CORAL_NS = "com.amazon.coral.service#"
# DynamoDB's item (data-plane) operations: throttled with ProvisionedThroughputExceededException,
# the others (control plane) with ThrottlingException.
DYNAMODB_ITEM_OPS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactGetItems", "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement",
    "ExecuteTransaction",
}
DYNAMODB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
USER_AGENT_MAX = 256
ERRORS = {"throttle", "http500", "http503", "accessDenied"}
KINDS = ERRORS | {"reset", "delay", "failArns"}
TAGGING_WRITES = {"TagResources", "UntagResources"}
RULE_KEYS = {
    "service", "operation", "region", "account", "params", "userAgent", "fault", "count", "fraction",
    "delaySeconds", "arns",
}


class Dropped(ConnectionAbortedError):
    """Raised out of the WSGI app after the socket was cut: werkzeug treats a
    ConnectionError as a client that went away and writes nothing."""


@dataclass
class Rule:
    service: str
    operation: str
    fault: str
    count: int | None = None
    fraction: float = 1.0
    delay_seconds: float = 0.0
    arns: frozenset[str] = frozenset()
    region: str = "*"  # only requests signed for this region (a whole target "down")
    account: str = "*"  # only requests acting in this account (as the request log names it)
    params: dict[str, Any] = field(default_factory=dict)  # only requests with these params
    user_agent: str = ""  # only requests whose logged user agent contains this ("" = any)
    injected: int = 0

    @classmethod
    def parse(cls, raw: Any) -> Rule:
        if not isinstance(raw, dict):
            raise ValueError(f"a rule must be an object, got {raw!r}")
        unknown = set(raw) - RULE_KEYS
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)} (known: {sorted(RULE_KEYS)})")
        rule = cls(str(raw.get("service", "*")), str(raw.get("operation", "*")), str(raw.get("fault")))
        rule.region = str(raw.get("region", "*"))
        if rule.service not in SERVICES | NAMED_ONLY | {"*"}:
            raise ValueError(f"service {rule.service!r}: one of {sorted(SERVICES | NAMED_ONLY)} or '*'")
        rule.account = raw.get("account", "*")
        if not isinstance(rule.account, str) or (
            rule.account != "*" and not (len(rule.account) == 12 and rule.account.isdigit())
        ):
            raise ValueError(f"account {rule.account!r}: a string of 12 digits, or '*'")
        params = raw.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise ValueError("params must be an object of request parameter names to values")
        rule.params = dict(params)
        user_agent = raw.get("userAgent", "")
        if not isinstance(user_agent, str) or len(user_agent) > USER_AGENT_MAX:
            raise ValueError(f"userAgent must be a string of at most {USER_AGENT_MAX} characters")
        rule.user_agent = user_agent
        if rule.fault not in KINDS:
            raise ValueError(f"fault {rule.fault!r}: one of {sorted(KINDS)}")
        if raw.get("count") is not None:
            rule.count = int(raw["count"])
            if rule.count < 0:
                raise ValueError("count must be >= 0")
        rule.fraction = float(raw.get("fraction", 1.0))
        if not 0.0 <= rule.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if ("delaySeconds" in raw) != (rule.fault == "delay"):
            raise ValueError("delaySeconds is required for, and only for, fault 'delay'")
        if rule.fault == "delay":
            rule.delay_seconds = float(raw["delaySeconds"])
            if rule.delay_seconds < 0:
                raise ValueError("delaySeconds must be >= 0")
        if ("arns" in raw) != (rule.fault == "failArns"):
            raise ValueError("arns is required for, and only for, fault 'failArns'")
        if rule.fault == "failArns":
            arns = raw["arns"]
            if not isinstance(arns, list) or not arns or not all(isinstance(a, str) for a in arns):
                raise ValueError("arns must be a non-empty list of ARN strings")
            if rule.service not in ("tagging", "*") or rule.operation not in TAGGING_WRITES | {"*"}:
                raise ValueError("failArns applies to tagging TagResources / UntagResources only")
            rule.arns = frozenset(arns)
        return rule

    def matches(self, req: AwsRequest) -> bool:
        if self.service != req.service and (self.service != "*" or req.service in NAMED_ONLY):
            return False
        if self.operation not in ("*", req.operation):
            return False
        if self.region not in ("*", req.region) or self.account not in ("*", req.account):
            return False
        # A parameter matches when the request has it with this exact value (query-protocol
        # values arrive as strings, JSON ones as their JSON type).
        if any(name not in req.params or req.params[name] != value for name, value in self.params.items()):
            return False
        if self.user_agent not in req.user_agent:
            return False
        if self.fault == "failArns":  # only a tagging write naming one of the ARNs
            listed = req.params.get("ResourceARNList")
            return (
                req.service == "tagging"
                and req.operation in TAGGING_WRITES
                and isinstance(listed, list)
                and bool(self.arns.intersection(a for a in listed if isinstance(a, str)))
            )
        return True

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "operation": self.operation, "fault": self.fault}
        if self.region != "*":
            out["region"] = self.region
        if self.account != "*":
            out["account"] = self.account
        if self.params:
            out["params"] = dict(self.params)
        if self.user_agent:
            out["userAgent"] = self.user_agent
        if self.count is not None:
            out["count"] = self.count
        out["fraction"] = self.fraction
        if self.fault == "delay":
            out["delaySeconds"] = self.delay_seconds
        if self.fault == "failArns":
            out["arns"] = sorted(self.arns)
        out["injected"] = self.injected
        return out


class Faults:
    """The rule set. Callers hold STATE.lock (draws happen in request order)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.seed = 0
        self.rules: list[Rule] = []
        self.random = random.Random(0)

    def replace(self, payload: Any) -> None:
        if not isinstance(payload, dict) or set(payload) - {"seed", "rules"}:
            raise ValueError('expected {"seed": N, "rules": [...]}')
        rules = payload.get("rules", [])
        if not isinstance(rules, list):
            raise ValueError("rules must be a list")
        parsed = [Rule.parse(raw) for raw in rules]  # all valid, or nothing changes
        self.seed = int(payload.get("seed", 0))
        self.rules = parsed
        self.random = random.Random(self.seed)

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [rule.describe() for rule in self.rules]}

    def pick(self, req: AwsRequest) -> Rule | None:
        """The rule that fires for this request (its counter taken), or None."""
        if not self.rules or not req.logged or req.service not in SERVICES | NAMED_ONLY:
            return None
        for rule in self.rules:
            if rule.count is not None and rule.injected >= rule.count:
                continue
            if not rule.matches(req):
                continue
            if self.random.random() < rule.fraction:
                rule.injected += 1
                return rule
        return None


def inject(rule: Rule, req: AwsRequest, handler: Callable[[AwsRequest], Any] | None) -> Any:
    """Apply a fired rule: raise the AWS error or cut the connection, or return the
    handler to run instead of `handler` (`delay`: the same one, after the wait)."""
    if rule.fault == "reset":
        drop_connection(req.environ)
    if rule.fault in ERRORS:
        raise error(rule.fault, req)
    if rule.fault == "failArns":
        from . import tagging

        return functools.partial(tagging.HANDLERS[(req.service, req.operation)], fail=rule.arns)
    return handler


def error(kind: str, req: AwsRequest) -> AwsError:
    """The error in the service's wire format (status and code; awsreq.error_body puts the
    code in both `x-amzn-ErrorType` and the body's `__type`)."""
    if req.service in QUERY_SERVICES or (req.service == "sqs" and req.protocol == "query"):
        return query_error(kind, req)
    if req.service == "dynamodb":
        return dynamodb_error(kind, req)
    if req.service in ("events", "sqs"):
        return json_error(kind, req)
    rest = req.service in REST_SERVICES  # GuardDuty (REST-JSON) vs ECS/tagging/CodeDeploy (JSON 1.1)
    if kind == "throttle":
        if rest:
            return AwsError("TooManyRequestsException", "Rate exceeded", 429)
        return AwsError("ThrottlingException", "Rate exceeded", 400)
    if kind == "http500":
        return AwsError("InternalServerError", "We encountered an internal error. Please try again.", 500)
    if kind == "http503":
        return AwsError("ServiceUnavailable", "Service is unavailable. Please try again later.", 503)
    action = {"tagging": "tag"}.get(req.service, req.service) + ":" + req.operation
    message = (
        f"User: arn:aws:iam::{req.account}:user/gec-sandbox is not authorized to perform: {action} "
        f"because no identity-based policy allows the {action} action"
    )
    return AwsError("AccessDeniedException", message, 403 if rest else 400)


def denied(req: AwsRequest, resource: str) -> str:
    action = f"{req.service}:{req.operation}"
    return (
        f"User: arn:aws:iam::{req.account}:user/gec-sandbox is not authorized to perform: {action} "
        f"on resource: {resource} because no identity-based policy allows the {action} action"
    )


def dynamodb_error(kind: str, req: AwsRequest) -> AwsError:
    """DynamoDB (JSON 1.0; `__type` `com.amazonaws.dynamodb.v20120810#CODE`). Item operations
    are throttled with 400 ProvisionedThroughputExceededException and its `ThrottlingReasons`
    (on-demand tables: `Table{Read,Write}KeyRangeThroughputExceeded`), control-plane ones with
    400 ThrottlingException; 500 InternalServerError, 503 ServiceUnavailable; 400
    AccessDeniedException (`com.amazon.coral.service#`). DynamoDB developer guide: Error
    handling (HTTP status codes, error components), Troubleshooting throttling; API
    Reference: PutItem (Errors), ThrottlingReason."""
    table = req.params.get("TableName")
    table_arn = f"arn:aws:dynamodb:{req.region}:{req.account}:table/{table}" if isinstance(table, str) else "*"
    if kind == "throttle":
        if req.operation in DYNAMODB_ITEM_OPS:
            what = "Read" if req.operation in DYNAMODB_READS else "Write"
            return AwsError(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. Consider "
                "increasing your provisioning level with the UpdateTable API.",
                400,
                type=DYNAMODB_NS + "ProvisionedThroughputExceededException",
                extra={"ThrottlingReasons": [{"reason": f"Table{what}KeyRangeThroughputExceeded", "resource": table_arn}]},
            )
        return AwsError(
            "ThrottlingException", "Rate of requests exceeds the allowed throughput.", 400,
            type=DYNAMODB_NS + "ThrottlingException",
        )
    if kind == "http500":
        return AwsError(
            "InternalServerError", "Internal server error", 500, type=DYNAMODB_NS + "InternalServerError"
        )
    if kind == "http503":
        return AwsError(
            "ServiceUnavailable", "Service is unavailable. Please try again later.", 503,
            type=CORAL_NS + "ServiceUnavailable",
        )
    return AwsError("AccessDeniedException", denied(req, table_arn), 400, type=CORAL_NS + "AccessDeniedException")


def json_error(kind: str, req: AwsRequest) -> AwsError:
    """EventBridge (JSON 1.1) and SQS (JSON 1.0, awsQueryCompatible: also `x-amzn-query-error`,
    see awsreq.error_body): EventBridge 400 ThrottlingException, 500 InternalException
    (PutEvents' only modelled error), 503 ServiceUnavailable, 400 AccessDeniedException;
    SQS 400 RequestThrottled, 500 InternalFailure, 503 ServiceUnavailable, 400
    AccessDeniedException (EventBridge and SQS API References: Common Errors, PutEvents,
    SendMessage; botocore's events and sqs models)."""
    sqs = req.service == "sqs"
    if kind == "throttle":
        return AwsError("RequestThrottled" if sqs else "ThrottlingException", "Rate exceeded", 400)
    if kind == "http500":
        if sqs:
            return AwsError("InternalFailure", "The request processing has failed because of an unknown error.", 500)
        return AwsError("InternalException", "An internal error occurred. Try again.", 500)
    if kind == "http503":
        return AwsError("ServiceUnavailable", "Service is unavailable. Please try again later.", 503)
    if sqs:
        resource = str(req.params.get("QueueUrl", "*"))
    else:
        bus = req.params.get("EventBusName")
        if req.operation == "PutEvents":
            entries = req.params.get("Entries")
            first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
            bus = first.get("EventBusName")
        bus = bus if isinstance(bus, str) and bus else "default"
        resource = bus if bus.startswith("arn:") else f"arn:aws:events:{req.region}:{req.account}:event-bus/{bus}"
    return AwsError("AccessDeniedException", denied(req, resource), 400)


def query_error(kind: str, req: AwsRequest) -> AwsError:
    """STS's and IAM's codes: `Throttling` (400), `AccessDenied` (403) naming the resource
    it refused (the role of AssumeRole, the principal of SimulatePrincipalPolicy), 500
    `InternalFailure` (STS) / `ServiceFailure` (IAM), 503 `ServiceUnavailable` (AWS STS
    and IAM API References: Common Errors, AssumeRole, SimulatePrincipalPolicy). The body
    format is awsreq.error_body's."""
    if kind == "throttle":
        return AwsError("RequestThrottled" if req.service == "sqs" else "Throttling", "Rate exceeded", 400)
    if kind == "http500":
        if req.service == "sqs":
            return AwsError("InternalError", "We encountered an internal error. Please try again.", 500)
        if req.service == "iam":
            return AwsError(
                "ServiceFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
                500,
            )
        return AwsError("InternalFailure", "An internal error occurred. Try again.", 500)
    if kind == "http503":
        return AwsError("ServiceUnavailable", "Service is unavailable. Please try again later.", 503)
    resource = req.params.get("RoleArn") or req.params.get("PolicySourceArn") or req.params.get("QueueUrl") or "*"
    message = (
        f"User: arn:aws:iam::{req.account}:user/gec-sandbox is not authorized to perform: "
        f"{req.service}:{req.operation} on resource: {resource}"
    )
    return AwsError("AccessDenied", message, 403)


def drop_connection(environ: dict[str, Any]) -> None:
    """Cut the client's TCP connection with no response and raise Dropped.

    SO_LINGER 0 makes the server's close an RST; SHUT_RD makes werkzeug's wait for a
    next request on this connection end at once, so it closes the socket right away.
    Nothing is written: werkzeug swallows the ConnectionError raised here."""
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
    raise Dropped("gec-sandbox fault: connection reset")


FAULTS = Faults()
