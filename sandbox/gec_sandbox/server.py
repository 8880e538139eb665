"""The sandbox server: moto's WSGI app behind a middleware that records every AWS
request, answers the operations our extensions own, and serves `/_sandbox/` control
endpoints."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from . import agent, awsreq, codedeploy, coverage, ecs, ecs_services, ecs_task_sets, ecs_tasks, events, faults, guardduty, iam, organization, tagging
from .awsreq import AwsError, AwsRequest
from .faults import FAULTS
from .state import STATE, UnknownEndpoint

# (service signing name, operation) -> handler(req) returning the JSON response body.
Handler = Callable[[AwsRequest], Any]
HANDLERS: dict[tuple[str, str], Handler] = {
    **guardduty.HANDLERS,
    **organization.HANDLERS,
    **tagging.HANDLERS,
    **ecs.HANDLERS,
    **ecs_tasks.HANDLERS,
    **ecs_services.HANDLERS,
    **ecs_task_sets.HANDLERS,
    **codedeploy.HANDLERS,
    **coverage.HANDLERS,
    **iam.HANDLERS,
    **events.HANDLERS,
}
# (service, operation) -> check(req) that raises AwsError before moto handles the request.
CHECKS: dict[tuple[str, str], Callable[[AwsRequest], None]] = {**ecs.CHECKS, **iam.CHECKS}
Response = tuple[int, list[tuple[str, str]], bytes]


class SandboxApp:
    """WSGI middleware in front of moto's `DomainDispatcherApplication`.

    AWS requests are handled one at a time (moto's backends are not thread-safe, and
    it makes the request log's order the order of execution)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            status, headers, body = self.control(environ, path)
        else:
            status, headers, body = self.aws(environ)
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
        start_response(_status_line(status), headers + [("Content-Length", str(len(body)))])
        return [body]

    def aws(self, environ: dict[str, Any]) -> Response:
        with STATE.lock:
            req = awsreq.parse(environ)
            rule = FAULTS.pick(req)
            if rule is None or rule.fault != "delay":
                return self.execute(environ, req, rule)
        # A delayed request waits without the lock (other requests go on) and is
        # recorded, and executed, after the wait.
        time.sleep(rule.delay_seconds)
        with STATE.lock:
            return self.execute(environ, req, rule)

    def execute(self, environ: dict[str, Any], req: AwsRequest, rule: faults.Rule | None) -> Response:
        entry = STATE.record(req)
        if entry is not None and rule is not None:
            entry["fault"] = rule.fault
        key = (req.service, req.operation)
        try:
            handler = HANDLERS.get(key)
            if rule is not None:
                handler = faults.inject(rule, req, handler)
            if key in CHECKS:
                CHECKS[key](req)
            if handler is not None:
                result = handler(req)
                if isinstance(result, iam.XmlResponse):  # a query-protocol document
                    status, headers, body = result
                else:
                    status, headers, body = awsreq.json_body(req.service, 200, result)
            else:
                status, headers, body = self.pass_to_moto(environ)
        except AwsError as err:
            status, headers, body = awsreq.error_body(req.service, err, req.protocol)
        except faults.Dropped:
            if entry is not None:
                entry["status"] = 0
            raise  # werkzeug takes it for a dropped connection and writes nothing
        except Exception as err:  # a sandbox bug or input it does not expect: say so
            traceback.print_exc()
            failure = AwsError("InternalFailure", f"gec-sandbox: {type(err).__name__}: {err}", 500)
            status, headers, body = awsreq.error_body(req.service, failure, req.protocol)
        if entry is not None:
            entry["status"] = status
        return status, headers, body

    def pass_to_moto(self, environ: dict[str, Any]) -> Response:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        chunks = self.moto(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return int(captured["status"].split()[0]), list(captured["headers"]), body

    def control(self, environ: dict[str, Any], path: str) -> Response:
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else {}
            result = STATE.control(method, path[len("/_sandbox/") :].strip("/"), payload)
        except UnknownEndpoint as err:
            return _json(404, {"error": f"no control endpoint {err}"})
        except (ValueError, TypeError, KeyError, AwsError) as err:
            return _json(400, {"error": f"{type(err).__name__}: {err}"})
        return _json(200, result)


def _json(status: int, payload: Any) -> Response:
    return status, [("Content-Type", "application/json")], json.dumps(payload).encode()


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 (every response has a Content-Length). werkzeug 3 still adds
    `Connection: close` to every response, so clients open a connection per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # quiet: the request log is at GET /_sandbox/requests


def warm_up() -> None:
    """Load the moto backends the controller uses, so the first request is fast."""
    from moto.backends import get_backend

    for name in ("ecs", "guardduty", "resourcegroupstaggingapi", "sts", "iam", "ec2", "codedeploy", "dynamodb", "events", "sqs"):
        get_backend(name)  # type: ignore[arg-type]


def serve(port: int, port_file: str | None) -> None:
    """Serve on 127.0.0.1 until SIGTERM/SIGINT; print the URL once it accepts requests."""
    # Block SIGTERM/SIGINT here, before any thread exists (threads inherit the mask), and
    # take them with sigwait below: a signal can then never land in a server thread
    # and leave the main thread waiting.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    app = SandboxApp()
    warm_up()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=KeepAliveHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write(url + "\n")
        os.replace(port_file + ".tmp", port_file)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    # Anything printed later (moto prints now and then) goes to stderr: the reader of
    # stdout may have closed it after the URL line.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.sigwait(stop_signals)
    # Nothing to save: end at once, without the interpreter teardown of moto's many
    # modules (about 1 s); open connections are closed by the kernel.
    os._exit(0)
