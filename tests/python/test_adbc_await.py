"""INSERT /*+ AWAIT */ through the ADBC Flight SQL driver against the real server and the
EC2 emulator binary running in real time with short tasks (``--task-seconds``) and a
failing bucket: the statement returns once every task ended, ``rowcount`` is the number
created, the result says how each ended; a timeout is an error that lists the tasks still
running, which were created once and keep running. Nothing sleeps: the INSERT waits for
the emulator's tasks."""

import json
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from conftest import BinaryStack

FAILING = "adbc-failing-bucket"
FAILURE_REASON = "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"
TASK_SECONDS = 1.5


@pytest.fixture(scope="module")
def stack():
    regions = ["--regions", "us-east-1,eu-west-1"]
    s = BinaryStack(
        [
            *regions, "--tasks-per-region", "5", "--seed", "11",
            "--task-seconds", str(TASK_SECONDS), "--failing-bucket", f"{FAILING}=40",
        ],
        [*regions, "--min-await-interval", "100ms"],
    )
    yield s
    s.stop()


def hook(stack, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(stack.emulator_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def storable(stack, region):
    state = hook(stack, "GET", "/_emulator/state")["regions"][region]
    return state["amis"], state["buckets"][0]


def task_of(stack, region, ami):
    tasks = hook(stack, "GET", f"/_emulator/tasks?region={region}")
    return [t for t in tasks if t["amiId"] == ami]


def connect(stack):
    # The session (SET) travels in a cookie.
    return flightsql.connect(
        stack.uri,
        autocommit=True,
        db_kwargs={"adbc.flight.sql.rpc.with_cookie_middleware": "true"},
    )


def test_insert_await_returns_when_every_task_ended_and_says_how(stack):
    amis, bucket = storable(stack, "us-east-1")
    with connect(stack) as conn, conn.cursor() as cur:
        cur.execute("SET aws.await_interval = '200ms'")
        cur.execute(
            "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) VALUES "
            f"('us-east-1', '{amis[0]}', '{bucket}'), ('us-east-1', '{amis[1]}', '{FAILING}')"
        )
        assert cur.rowcount == 2, "the number created, as without AWAIT"
        assert [d[0] for d in cur.description] == [
            "count", "regions", "completed", "failed", "failures",
        ]
        assert cur.fetchall() == [
            (2, "us-east-1", 1, 1, f"{amis[1]} in us-east-1: {FAILURE_REASON}")
        ]
    # The emulator had ended both when the INSERT returned.
    done, failed = task_of(stack, "us-east-1", amis[0]), task_of(stack, "us-east-1", amis[1])
    assert [(t["storeTaskState"], t["progressPercentage"]) for t in done] == [("Completed", 100)]
    assert [(t["storeTaskState"], t["progressPercentage"]) for t in failed] == [("Failed", 40)]
    assert failed[0]["storeTaskFailureReason"] == FAILURE_REASON


def test_a_timeout_lists_the_running_tasks_which_were_created_once(stack):
    amis, bucket = storable(stack, "eu-west-1")
    hook(stack, "DELETE", "/_emulator/requests")
    hook(stack, "POST", "/_emulator/config", {"task_duration_secs": 3600})
    try:
        with connect(stack) as conn, conn.cursor() as cur:
            cur.execute("SET aws.await_interval = 0.2")
            cur.execute("SET aws.await_timeout = '1 second'")
            with pytest.raises(Exception) as err:
                cur.execute(
                    "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) "
                    f"VALUES ('eu-west-1', '{amis[0]}', '{bucket}')"
                )
                cur.fetchall()
    finally:
        hook(stack, "POST", "/_emulator/config", {"task_duration_secs": TASK_SECONDS})
    message = str(err.value)
    assert "DEADLINE_EXCEEDED" in message or "DeadlineExceeded" in message, message
    assert "AWAIT timed out after 1s (aws.await_timeout) with 1 of 1 tasks still in" in message
    assert f"{amis[0]} in eu-west-1 at 0%" in message, message
    assert "nothing was re-sent" in message, message
    creates = [r for r in hook(stack, "GET", "/_emulator/requests")
               if r["action"] == "CreateStoreImageTask"]
    assert len(creates) == 1
    assert [t["storeTaskState"] for t in task_of(stack, "eu-west-1", amis[0])] == ["InProgress"]
