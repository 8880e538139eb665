"""EventBridge `PutEvents` as AWS answers it, and the event a rule delivers to an SQS queue
as AWS shapes it (moto 5.2.5 differs; see sandbox/README.md, "EventBridge → SQS").

- The request: 1-10 entries (else 400 ValidationException, nothing put); the entries'
  total size, as "Calculating PutEvents event entry size" counts it (Time 14 bytes, the
  UTF-8 bytes of Source, DetailType, Detail and each of Resources), at most 256 KiB (else
  400 ValidationException "Total size of the entries in the request is over the limit.",
  nothing put). A non-string Source/DetailType/Detail/EventBusName or non-list Resources is
  400 SerializationException (the JSON protocol's answer to a wrong type).
- Each entry on its own (PutEventsResultEntry): Source, DetailType and Detail required
  (InvalidArgument, moto's text), Detail a JSON *object* (MalformedDetail "Detail is
  malformed." — moto accepts any JSON value); the others are still put.
- An entry for a bus that does not exist gets an EventId and is dropped (200), as AWS
  does (moto: the whole request fails with ResourceNotFoundException).
- The answer is `application/x-amz-json-1.1` (moto: text/html).
- Delivery to a target without Input/InputPath/InputTransformer is the whole event:
  `{"version", "id", "detail-type", "source", "account", "time", "region", "resources",
  "detail"}` with `detail` the object (moto's default template drops `account` and builds
  the JSON by string substitution, which breaks on a `"` in Source or DetailType)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from .awsreq import AwsError, AwsRequest

MAX_ENTRIES = 10
MAX_TOTAL_SIZE = 256 * 1024
TIME_SIZE = 14
# The event envelope, in AWS's order (EventBridge user guide: "Amazon EventBridge events").
ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
STRING_FIELDS = ("Source", "DetailType", "Detail", "EventBusName", "TraceHeader")


def entry_size(entry: dict[str, Any]) -> int:
    size = TIME_SIZE if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if isinstance(value, str):
            size += len(value.encode("utf-8", "surrogatepass"))
    for resource in entry.get("Resources") or []:
        if isinstance(resource, str):
            size += len(resource.encode("utf-8", "surrogatepass"))
    return size


def check_request(entries: Any) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        raise AwsError("SerializationException", "Entries must be a list of PutEventsRequestEntry")
    if not 1 <= len(entries) <= MAX_ENTRIES:
        bound = "greater than or equal to 1" if not entries else f"less than or equal to {MAX_ENTRIES}"
        raise AwsError(
            "ValidationException",
            "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to "
            f"satisfy constraint: Member must have length {bound}",
        )
    for entry in entries:
        if not isinstance(entry, dict):
            raise AwsError("SerializationException", "each entry must be a PutEventsRequestEntry object")
        for name in STRING_FIELDS:
            if name in entry and not isinstance(entry[name], str):
                raise AwsError("SerializationException", f"{name} must be a string")
        resources = entry.get("Resources")
        if resources is not None and not (isinstance(resources, list) and all(isinstance(r, str) for r in resources)):
            raise AwsError("SerializationException", "Resources must be a list of strings")
        if "Time" in entry and not isinstance(entry["Time"], (int, float)):
            raise AwsError("SerializationException", "Time must be a timestamp (epoch seconds)")
    if sum(entry_size(e) for e in entries) > MAX_TOTAL_SIZE:
        raise AwsError("ValidationException", "Total size of the entries in the request is over the limit.")
    return entries


def entry_error(entry: dict[str, Any]) -> dict[str, str] | None:
    for name in ("Source", "DetailType", "Detail"):
        if not entry.get(name):
            return {
                "ErrorCode": "InvalidArgument",
                "ErrorMessage": f"Parameter {name} is not valid. Reason: {name} is a required argument.",
            }
    try:
        detail = json.loads(entry["Detail"])
    except (ValueError, RecursionError):
        detail = None
    if not isinstance(detail, dict):
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    return None


def put_events(req: AwsRequest) -> dict[str, Any]:
    from moto.events.models import events_backends

    entries = check_request(req.params.get("Entries"))
    backend = events_backends[req.account][req.region]
    results: list[dict[str, Any]] = []
    for entry in entries:
        failure = entry_error(entry)
        if failure is not None:
            results.append(failure)
            continue
        bus = backend._normalize_event_bus_arn(entry.get("EventBusName"))
        if bus not in backend.event_buses:
            results.append({"EventId": str(uuid.uuid4())})  # accepted, and dropped
            continue
        results.extend(backend.put_events([entry]))
    failed = sum(1 for r in results if "ErrorCode" in r)
    return {"FailedEntryCount": failed, "Entries": results}


def _whole_event(input_template: Any, input_paths_map: Any, event: dict[str, Any]) -> dict[str, Any]:
    """moto's EventTemplateParser.parse, except that a target with no InputTransformer gets
    the event itself (AWS: "If none of these is specified, EventBridge passes the entire
    matched event to the target"; PutTargets, Target)."""
    if not input_template and not input_paths_map:
        return {key: event[key] for key in ENVELOPE if key in event}
    return _moto_parse(input_template, input_paths_map, event)


def install() -> None:
    global _moto_parse
    from moto.events.utils import EventTemplateParser

    if getattr(EventTemplateParser.parse, "__name__", "") != "_whole_event":
        _moto_parse = EventTemplateParser.parse
        EventTemplateParser.parse = staticmethod(_whole_event)  # type: ignore[method-assign]


_moto_parse: Any = None
install()

HANDLERS = {("events", "PutEvents"): put_events}
