"""Parse an incoming AWS API request (service, operation, region, account, params)
and render responses and errors in the wire format of the service's protocol."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

# Content types of the JSON protocols we answer ourselves.
JSON_1_0 = "application/x-amz-json-1.0"
JSON_1_1 = "application/x-amz-json-1.1"
REST_JSON = "application/json"
# Services whose protocol is REST-JSON (operation comes from method + path).
REST_SERVICES = {"guardduty"}
# Services on AWS JSON 1.0 (botocore's model, metadata.jsonVersion); the other JSON ones are 1.1.
JSON_1_0_SERVICES = {"dynamodb", "sqs"}
# The longest user agent the request log keeps (SDKs send a few hundred characters).
USER_AGENT_MAX = 512
# Requests carrying this header are not recorded in the request log (used by `seed`).
NO_LOG_HEADER = "HTTP_X_GEC_SANDBOX_NO_LOG"


class AwsError(Exception):
    """An AWS error answer: HTTP status, error code and message."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        type: str = "",
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        # JSON protocols: the body's `__type` when it is not just `code` (DynamoDB's
        # `com.amazonaws.dynamodb.v20120810#CODE`), and further members of the error shape.
        self.type = type
        self.extra = extra or {}


@dataclass
class AwsRequest:
    environ: dict[str, Any]
    method: str
    path: str
    body: bytes
    service: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    account: str = "123456789012"
    operation: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    uri_params: dict[str, Any] = field(default_factory=dict)
    user_agent: str = ""
    # "json" (X-Amz-Target), "query" (Action=...), "rest" (method + path), "" (not AWS)
    protocol: str = ""

    @property
    def logged(self) -> bool:
        return NO_LOG_HEADER not in self.environ


def parse(environ: dict[str, Any]) -> AwsRequest:
    """Read the body (and put it back for moto) and work out what the request is."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    req = AwsRequest(environ, environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), body)

    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
        parts = scope.split("/")
        if len(parts) == 5:
            req.access_key, _, req.region, req.service, _ = parts
    req.account = _account(environ, req.access_key)
    req.user_agent = user_agent(environ)

    ctype = environ.get("CONTENT_TYPE", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if body and "json" in ctype:
        try:
            req.params = json.loads(body)
        except ValueError:
            req.params = {"_raw": body.decode("utf-8", "replace")}
    elif body and "x-www-form-urlencoded" in ctype:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        req.params = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if target:
        req.operation = target.rsplit(".", 1)[-1]
        req.protocol = "json"
    elif "Action" in req.params:
        req.operation = str(req.params.pop("Action"))
        req.params.pop("Version", None)
        req.protocol = "query"
    elif req.service:
        req.protocol = "rest"
        req.operation, req.uri_params = _rest_operation(req)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        req.params = {**{k: v[0] for k, v in query.items()}, **req.uri_params, **req.params}
    return req


def user_agent(environ: dict[str, Any]) -> str:
    """The user agent that names the application, at most USER_AGENT_MAX characters.

    boto3 sends one `User-Agent` (`... app/<user_agent_appid> ...` with Config(user_agent_appid)).
    The Rust SDK (aws-runtime 1.10) sends the same string in `User-Agent` and
    `x-amz-user-agent`, ending in `app/<AppName>`; older SDKs put it in `x-amz-user-agent`
    only. We take `User-Agent`, unless only `x-amz-user-agent` carries `app/`; a missing
    header is "". Non-printable characters become "?" (a hostile header stays one line of text)."""
    ua = str(environ.get("HTTP_USER_AGENT", ""))
    amz = str(environ.get("HTTP_X_AMZ_USER_AGENT", ""))
    if (amz and "app/" in amz and "app/" not in ua) or not ua:
        ua = amz
    ua = ua[:USER_AGENT_MAX]
    return "".join(c if c.isprintable() else "?" for c in ua)


def _account(environ: dict[str, Any], access_key: str) -> str:
    """Resolve the account exactly as moto does (see BaseResponse.get_current_account)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _rest_operation(req: AwsRequest) -> tuple[str, dict[str, Any]]:
    """Name a REST request's operation with botocore's model (the router moto uses)."""
    from moto.core.request import Request
    from moto.core.routing import get_service_router

    model_name = {"tagging": "resourcegroupstaggingapi"}.get(req.service, req.service)
    try:
        environ = dict(req.environ, **{"wsgi.input": io.BytesIO(req.body)})
        operation, uri_params = get_service_router(model_name).match(Request(environ))
        return operation.name, dict(uri_params)
    except Exception:  # unknown service/path: still log it, by method and path
        return f"{req.method} {req.path}", {}


def json_body(service: str, status: int, payload: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    if service in REST_SERVICES:
        ctype = REST_JSON
    else:
        ctype = JSON_1_0 if service in JSON_1_0_SERVICES else JSON_1_1
    headers = [("Content-Type", ctype), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return status, headers, json.dumps(payload).encode()


# Services on the query protocol: their errors are XML `<ErrorResponse>` documents in
# the service's namespace (botocore's model, metadata.xmlNamespace).
QUERY_NAMESPACES = {
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    # SQS speaks JSON 1.0 (botocore >= 1.34.90, the Rust SDK) or, from older clients, query.
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
}
# Services that are query-protocol only.
QUERY_SERVICES = {"sts", "iam"}


def error_body(service: str, err: AwsError, protocol: str = "") -> tuple[int, list[tuple[str, str]], bytes]:
    """JSON protocols: both the `x-amzn-ErrorType` header and `__type` in the body name the
    error (the Rust SDK reads the header first, boto3 reads either; both drop a
    `namespace#` prefix of `__type`, as DynamoDB sends it). SQS in JSON also sends
    `x-amzn-query-error: CODE;Sender|Receiver` (its model is awsQueryCompatible).
    Query protocol (STS, IAM, SQS when asked in query):
    `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
    `protocol` is the request's (AwsRequest.protocol); empty = by service."""
    if service in QUERY_SERVICES or (protocol == "query" and service in QUERY_NAMESPACES):
        from xml.sax.saxutils import escape

        kind = "Receiver" if err.status >= 500 else "Sender"
        xml = (
            f'<ErrorResponse xmlns="{QUERY_NAMESPACES[service]}">'
            f"<Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>"
            f"<Message>{escape(err.message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return err.status, [("Content-Type", "text/xml")], xml.encode()
    payload = {"__type": err.type or err.code, "message": err.message, **err.extra}
    status, headers, body = json_body(service, err.status, payload)
    headers.append(("x-amzn-ErrorType", err.code))
    if service == "sqs":
        headers.append(("x-amzn-query-error", f"{err.code};{'Receiver' if err.status >= 500 else 'Sender'}"))
    return status, headers, body


def now() -> float:
    """An AWS `Timestamp` for JSON protocols: epoch seconds as a number."""
    return round(time.time(), 3)
