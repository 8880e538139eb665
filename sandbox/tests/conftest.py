"""One real sandbox server for the test session (reset before each test), and boto3
clients pointed at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest

SANDBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(key, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=SANDBOX_DIR)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gec_sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return proc, url


# boto3 clients are slow to create; default-account ones (static keys) survive resets.
CLIENTS: dict[tuple[str, str, str], Any] = {}


class Sandbox:
    def __init__(self, url: str):
        self.url = url
        self.assumed: dict[tuple[str, str, str], Any] = {}  # assumed-role keys die with a reset

    def client(self, service: str, region: str = "us-east-1", account: str | None = None) -> Any:
        key = (self.url, service, region)
        if not account or account == "123456789012":
            if key not in CLIENTS:
                CLIENTS[key] = boto3.client(service, endpoint_url=self.url, region_name=region)
            return CLIENTS[key]
        if (service, region, account) in self.assumed:
            return self.assumed[(service, region, account)]
        sts = self.client("sts", region)
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/test", RoleSessionName="test")[
            "Credentials"
        ]
        creds = dict(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
        client = boto3.client(service, endpoint_url=self.url, region_name=region, **creds)
        self.assumed[(service, region, account)] = client
        return client

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"{self.url}/_sandbox/{path}", data=data, method=method)
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)

    def requests(self, service: str | None = None) -> list[dict[str, Any]]:
        log = self.call("GET", "requests")
        return [r for r in log if service is None or r["service"] == service]

    def raw(
        self,
        signing: str,
        method: str,
        path: str,
        payload: Any = None,
        target: str | None = None,
        region: str = "us-east-1",
    ) -> tuple[int, dict[str, str], Any]:
        """Send one signed request and return (status, lower-cased headers, parsed JSON body),
        to check the wire format the Rust SDK will parse."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/json"}
        if target:
            headers["X-Amz-Target"] = target
        data = json.dumps(payload) if payload is not None else None
        request = AWSRequest(method=method, url=self.url + path, data=data, headers=headers)
        SigV4Auth(boto3.Session().get_credentials(), signing, region).add_auth(request)
        prepared = request.prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method=method)
        try:
            with urllib.request.urlopen(http) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, json.load(r)
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, json.load(err)


@pytest.fixture(scope="session")
def server() -> Any:
    proc, url = start_server()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def sandbox(server: str) -> Sandbox:
    box = Sandbox(server)
    box.call("POST", "reset")
    return box
