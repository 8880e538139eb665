"""Sandbox-wide state beside moto's backends: the request log, settings (config and
knobs) and the `/_sandbox/` control endpoints that read and change them."""

from __future__ import annotations

import threading
from typing import Any

from .awsreq import AwsRequest
from .faults import FAULTS

# knobs, each {service name: true}: see sandbox/README.md
KNOBS = ("agentMissing", "failRollout", "failCodeDeploy", "stopCodeDeploy")
DEFAULT_CONFIG = {"rolloutSeconds": 2.0, "bakeSecondsPerMinute": 60.0}


class UnknownEndpoint(Exception):
    pass


class State:
    def __init__(self) -> None:
        # One lock for every AWS request, control call and background timer.
        self.lock = threading.RLock()
        self.log: list[dict[str, Any]] = []
        self.seq = 0
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self.knobs: dict[str, dict[str, bool]] = {kind: {} for kind in KNOBS}
        self.timers: list[threading.Timer] = []
        # Extensions with state of their own register a clear() here.
        self.on_reset: list[Any] = []

    def record(self, req: AwsRequest) -> dict[str, Any] | None:
        if not req.logged or not req.service:
            return None  # seeding, or not a signed AWS API call (e.g. moto's /moto-api)
        self.seq += 1
        entry = {
            "seq": self.seq,
            "service": req.service,
            "operation": req.operation,
            "region": req.region,
            "account": req.account,
            "userAgent": req.user_agent,
            "status": None,
            "params": req.params,
        }
        self.log.append(entry)
        return entry

    def after(self, seconds: float, fn: Any, *args: Any) -> None:
        """Run fn(*args) under the lock after `seconds` (a simulated AWS delay)."""

        def run() -> None:
            with self.lock:
                if timer in self.timers:
                    self.timers.remove(timer)
                    fn(*args)

        if seconds <= 0:
            fn(*args)
            return
        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        self.cancel_timers()
        FAULTS.clear()
        moto_api_backend.reset()
        for clear in self.on_reset:
            clear()
        self.log.clear()
        self.seq = 0
        self.config = dict(DEFAULT_CONFIG)
        self.knobs = {kind: {} for kind in KNOBS}

    def shutdown(self) -> None:
        with self.lock:
            self.cancel_timers()

    def control(self, method: str, path: str, payload: Any) -> Any:
        with self.lock:
            if (method, path) == ("GET", "requests"):
                return [dict(entry) for entry in self.log]
            if (method, path) == ("DELETE", "requests"):
                self.log.clear()
                return {"cleared": True}
            if (method, path) == ("POST", "reset"):
                self.reset()
                return {"reset": True}
            if (method, path) == ("POST", "config"):
                self.set_config(payload)
            if path == "config" and method in ("GET", "POST"):
                return dict(self.config)
            if (method, path) == ("POST", "knobs"):
                self.set_knobs(payload)
            if path == "knobs" and method in ("GET", "POST"):
                return {kind: dict(names) for kind, names in self.knobs.items()}
            if (method, path) == ("POST", "faults"):
                FAULTS.replace(payload)
            if path == "faults" and method in ("GET", "POST"):
                return FAULTS.describe()
            if (method, path) == ("POST", "clusters"):
                from .seed import create_clusters

                return create_clusters(payload)
            if (method, path) == ("POST", "tasks"):
                from .seed_tasks import bulk_tasks

                return bulk_tasks(payload)
            if (method, path) == ("POST", "organization/administrator"):
                from .organization import administrator

                return administrator(payload)
            if (method, path) == ("POST", "organization/members"):
                from .organization import join

                return join(payload)
            if (method, path) == ("POST", "agents/stop"):
                from .agent import stop_agents

                return stop_agents(payload)
            raise UnknownEndpoint(f"{method} /_sandbox/{path}")

    def set_config(self, payload: dict[str, Any]) -> None:
        for key, value in payload.items():
            if key not in DEFAULT_CONFIG:
                raise ValueError(f"unknown config key {key!r}")
            self.config[key] = float(value)

    def set_knobs(self, payload: dict[str, Any]) -> None:
        for key, services in payload.items():
            if key not in self.knobs:
                raise ValueError(f"unknown knob {key!r} (known: {sorted(self.knobs)})")
            if isinstance(services, list):
                services = {name: True for name in services}
            for name, on in services.items():
                if on:
                    self.knobs[key][name] = True
                else:
                    self.knobs[key].pop(name, None)


STATE = State()
