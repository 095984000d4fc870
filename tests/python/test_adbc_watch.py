"""`watch_store_image_tasks` read live through ADBC's record-batch reader: the batches of a
watch arrive while it runs, before its stream ends. The emulator's clock is frozen, so a task
moves only when the test moves the clock: the first batch arriving before the first move
proves the stream is read as it happens, not collected at its end."""

import time

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from conftest import BinaryStack, EmulatorProcess

REGION = "us-east-1"
TASK_SECONDS = 10


@pytest.fixture(scope="module")
def stack():
    s = BinaryStack(
        [
            "--regions", REGION, "--tasks-per-region", "0", "--freeze-time",
            "--task-duration-secs", str(TASK_SECONDS),
        ],
        ["--regions", REGION],
    )
    yield s
    s.stop()


def test_watch_batches_arrive_before_the_stream_ends(stack):
    emulator = EmulatorProcess(stack.emulator_url)
    region = emulator.state()["regions"][REGION]
    ami, bucket = region["amis"][0], region["buckets"][0]
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"
        )
        cur.fetchall()
        cur.execute(
            "SELECT amiId, progressPercentage, storeTaskState, observedAt "
            "FROM watch_store_image_tasks(interval => '200ms', timeout => '5 minutes') "
            f"WHERE amiId = '{ami}'"
        )
        reader = cur.fetch_record_batch()
        assert reader.schema.names == [
            "amiId", "progressPercentage", "storeTaskState", "observedAt"
        ]
        arrivals = []
        first = reader.read_next_batch()
        arrivals.append(time.monotonic())
        assert first.to_pylist()[0]["progressPercentage"] == 0
        assert first.to_pylist()[0]["storeTaskState"] == "InProgress"
        # Halfway, then to the end, each move after the batch before it arrived.
        moves = []
        seen = []
        for seconds in (TASK_SECONDS / 2, TASK_SECONDS / 2):
            moves.append(time.monotonic())
            emulator.configure(advance_seconds=seconds)
            batch = reader.read_next_batch()
            arrivals.append(time.monotonic())
            seen.append(batch.to_pylist()[0])
        with pytest.raises(StopIteration):
            reader.read_next_batch()
        ended = time.monotonic()
    assert [(r["progressPercentage"], r["storeTaskState"]) for r in seen] == [
        (50, "InProgress"),
        (100, "Completed"),
    ]
    # Each batch arrived before the clock move that made the next one, and so before the
    # stream could end.
    assert arrivals[0] < moves[0] < arrivals[1] < moves[1] < arrivals[2] <= ended
    assert str(first.schema.field("observedAt").type) == "timestamp[ms, tz=UTC]"
