"""Shared pytest fixtures: the EC2 emulator binary, started once per session.

The binary comes from ``$AWS_FLIGHTSQL_BIN_DIR`` (default
``~/.cache/aws-flightsql/target/debug``); build it first with
``cargo build -p ec2-emulator``.
"""

import json
import os
import selectors
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config

BIN_DIR = os.environ.get(
    "AWS_FLIGHTSQL_BIN_DIR",
    os.path.expanduser("~/.cache/aws-flightsql/target/debug"),
)
EMULATOR_REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
LISTENING = "ec2-emulator listening on "
# The run-time configuration every test starts from (see the `emulator` fixture).
NO_FAULTS = {
    "latency_ms": 0,
    "throttle_rps": None,
    "fail_rate": 0.0,
    "fail_after_commit_rate": 0.0,
    "deny_actions": [],
}


def binary_env():
    """The environment the server and emulator binaries run with in tests: static dummy AWS
    credentials, us-east-1, no instance metadata, warnings only."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="AKIDPYTEST",
        AWS_SECRET_ACCESS_KEY="python-test-secret",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        RUST_LOG="warn",
    )
    return env


def start_binary(args, marker, timeout=60.0, env=None):
    """Starts a binary that prints ``marker`` + URL on stdout when ready, with ``env`` (default
    [`binary_env`]).

    Returns ``(process, url, stderr_file)``. Its stderr goes to a temporary file (a pipe
    nobody reads could fill and block it), shown if it fails to start.
    """
    if not os.path.exists(args[0]):
        raise RuntimeError(
            f"{args[0]} does not exist: build it first (cargo build) or set AWS_FLIGHTSQL_BIN_DIR"
        )
    stderr = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env or binary_env()
    )
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(marker):
                return proc, line[len(marker):].strip(), stderr
    finally:
        selector.close()
    proc.kill()
    proc.wait()
    stderr.seek(0)
    raise RuntimeError(f"{args[0]} did not print {marker!r}:\n{stderr.read()}")


def stop_process(proc, stderr=None):
    """Stops a process of `start_binary` (and closes its stderr file)."""
    if stderr is not None:
        stderr.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class BinaryStack:
    """The emulator binary with ``emulator_args`` and the server binary serving it with
    ``server_args``, both on 127.0.0.1:0; ``emulator_url`` and ``uri`` say where."""

    def __init__(self, emulator_args, server_args=()):
        self._processes = []
        emulator, self.emulator_url, err = start_binary(
            [os.path.join(BIN_DIR, "ec2-emulator"), "--listen", "127.0.0.1:0", *emulator_args],
            "ec2-emulator listening on ",
        )
        self._processes.append((emulator, err))
        server, self.uri, err = start_binary(
            [
                os.path.join(BIN_DIR, "aws-flightsql"), "serve",
                "--listen", "127.0.0.1:0",
                "--endpoint-url", self.emulator_url,
                *server_args,
            ],
            "aws-flightsql listening on ",
        )
        self._processes.append((server, err))

    def stop(self):
        for proc, err in reversed(self._processes):
            stop_process(proc, err)


class EmulatorProcess:
    """A running ``ec2-emulator``: its URL, its test hooks, and boto3 clients for it."""

    def __init__(self, url):
        self.url = url

    def hook(self, method, path, body=None):
        """Calls a ``/_emulator`` hook; returns ``(status, parsed JSON or None)``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        return status, (json.loads(raw) if raw else None)

    def configure(self, **changes):
        """``POST /_emulator/config``; returns the effective configuration."""
        status, body = self.hook("POST", "/_emulator/config", changes)
        assert status == 200, body
        return body

    def tasks(self, region, account=None):
        query = {"region": region}
        if account is not None:
            query["account"] = account
        status, body = self.hook("GET", "/_emulator/tasks?" + urllib.parse.urlencode(query))
        assert status == 200, body
        return body

    def state(self, account=None):
        path = "/_emulator/state"
        if account is not None:
            path += "?" + urllib.parse.urlencode({"account": account})
        status, body = self.hook("GET", path)
        assert status == 200, body
        return body

    def requests(self):
        status, body = self.hook("GET", "/_emulator/requests")
        assert status == 200, body
        return body

    def clear_requests(self):
        status, _ = self.hook("DELETE", "/_emulator/requests")
        assert status in (200, 204)

    def client(self, region="us-east-1", single_attempt=False, **config):
        """A boto3 EC2 client for this emulator, with static dummy credentials.

        ``single_attempt=True`` turns retries off, so injected faults surface as errors;
        other keyword arguments go to ``botocore.config.Config``.
        """
        return self.service_client("ec2", region, single_attempt=single_attempt, **config)

    def service_client(
        self, service, region="us-east-1", credentials=None, single_attempt=False, **config
    ):
        """A boto3 client of ``service`` (ec2, sts, organizations) for this emulator, with
        ``credentials`` (the ``Credentials`` of an AssumeRole answer) or, by default, static
        dummy credentials of the home account."""
        if single_attempt:
            config["retries"] = {"mode": "standard", "total_max_attempts": 1}
        if credentials is None:
            keys = {
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            }
        else:
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            config=Config(**config),
            **keys,
        )


@pytest.fixture(scope="session")
def ec2_emulator_process():
    """The emulator binary, with sample data (seed 42) and a frozen clock, for the session."""
    args = [
        os.path.join(BIN_DIR, "ec2-emulator"),
        "--listen",
        "127.0.0.1:0",
        "--freeze-time",
        "--seed",
        "42",
        "--regions",
        ",".join(EMULATOR_REGIONS),
        "--tasks-per-region",
        "250",
        "--task-duration-secs",
        "60",
    ]
    proc, url, stderr = start_binary(args, LISTENING)
    try:
        yield EmulatorProcess(url)
    finally:
        stop_process(proc, stderr)


@pytest.fixture
def emulator(ec2_emulator_process):
    """The session's emulator, with no faults injected when the test starts and ends."""
    ec2_emulator_process.configure(**NO_FAULTS)
    yield ec2_emulator_process
    ec2_emulator_process.configure(**NO_FAULTS)


# The organization emulator: home account 111111111111 and three members; one role refused,
# one role requiring an external id (see test_emulator_org_boto3.py).
ORG_ACCOUNTS = 4
ORG_UNASSUMABLE_ROLE = "arn:aws:iam::100000000003:role/Locked"
ORG_EXTERNAL_ID_ROLE = "arn:aws:iam::100000000001:role/Partner"
ORG_EXTERNAL_ID = "partner-ext-id"
# The account rules every organization test starts from.
ORG_DEFAULT_RULES = {
    "unassumable_roles": [ORG_UNASSUMABLE_ROLE],
    "role_external_ids": {ORG_EXTERNAL_ID_ROLE: ORG_EXTERNAL_ID},
    "credential_seconds": 43200,
    "suspended_accounts": [],
    "accounts": {
        f"10000000000{i}": {"disabled_regions": [], "credential_seconds": None}
        for i in range(1, ORG_ACCOUNTS)
    },
}


@pytest.fixture(scope="session")
def org_emulator_process():
    """The emulator binary with an organization of ``ORG_ACCOUNTS`` accounts, sample data
    (seed 42, 40 tasks per region) and a frozen clock, for the session."""
    args = [
        os.path.join(BIN_DIR, "ec2-emulator"),
        "--listen", "127.0.0.1:0",
        "--freeze-time",
        "--seed", "42",
        "--regions", ",".join(EMULATOR_REGIONS),
        "--tasks-per-region", "40",
        "--accounts", str(ORG_ACCOUNTS),
        "--unassumable-role", ORG_UNASSUMABLE_ROLE,
        "--role-external-id", f"{ORG_EXTERNAL_ID_ROLE}={ORG_EXTERNAL_ID}",
    ]
    proc, url, stderr = start_binary(args, LISTENING)
    try:
        yield EmulatorProcess(url)
    finally:
        stop_process(proc, stderr)


@pytest.fixture
def org_emulator(org_emulator_process):
    """The session's organization emulator, with no faults and the default account rules when
    the test starts and ends."""
    org_emulator_process.configure(**NO_FAULTS, **ORG_DEFAULT_RULES)
    yield org_emulator_process
    org_emulator_process.configure(**NO_FAULTS, **ORG_DEFAULT_RULES)
