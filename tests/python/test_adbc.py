"""The ADBC Flight SQL driver (what pandas/polars notebooks, Superset and Power BI use)
against the real aws-flightsql server and the EC2 emulator binary, checked against what
boto3 reads from the same emulator."""

import os
import subprocess
import sys

import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pytest

BIN_DIR = os.environ.get(
    "AWS_FLIGHTSQL_BIN_DIR",
    os.path.expanduser("~/.cache/aws-flightsql/target/debug"),
)
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]


def _start(args, env, marker):
    """Starts a binary and waits for its readiness line; returns (process, URL)."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, env=env
    )
    for line in proc.stdout:
        if marker in line:
            return proc, line.strip().split(marker, 1)[1].strip()
    proc.kill()
    raise RuntimeError(f"{args[0]} exited before printing {marker!r}")


@pytest.fixture(scope="module")
def stack():
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="AKIDADBCTEST",
        AWS_SECRET_ACCESS_KEY="adbc-test-secret",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        RUST_LOG="warn",
    )
    emulator, emulator_url = _start(
        [
            os.path.join(BIN_DIR, "ec2-emulator"),
            "--listen", "127.0.0.1:0",
            "--regions", ",".join(REGIONS),
            "--tasks-per-region", "230",
            "--seed", "7",
            "--freeze-time",
        ],
        env,
        "listening on ",
    )
    server, uri = _start(
        [
            os.path.join(BIN_DIR, "aws-flightsql"), "serve",
            "--listen", "127.0.0.1:0",
            "--endpoint-url", emulator_url,
            "--regions", ",".join(REGIONS),
        ],
        env,
        "listening on ",
    )
    yield {"emulator_url": emulator_url, "uri": uri}
    for proc in (server, emulator):
        proc.terminate()
        proc.wait(timeout=10)


def boto3_tasks(emulator_url, region):
    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=emulator_url,
        aws_access_key_id="AKIDADBCTEST",
        aws_secret_access_key="adbc-test-secret",
    )
    rows = []
    for page in ec2.get_paginator("describe_store_image_tasks").paginate():
        for t in page["StoreImageTaskResults"]:
            rows.append(
                (
                    region,
                    t["AmiId"],
                    t["Bucket"],
                    t["ProgressPercentage"],
                    t["S3objectKey"],
                    t.get("StoreTaskFailureReason"),
                    t["StoreTaskState"],
                    int(t["TaskStartTime"].timestamp() * 1000),
                )
            )
    return rows


def test_select_star_equals_what_boto3_reads(stack):
    with flightsql.connect(stack["uri"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM aws.ec2.store_image_tasks")
        table = cur.fetch_arrow_table()
    assert table.column_names == [
        "region", "amiId", "bucket", "progressPercentage", "s3objectKey",
        "storeTaskFailureReason", "storeTaskState", "taskStartTime",
    ]
    assert str(table.schema.field("taskStartTime").type) == "timestamp[ms, tz=UTC]"
    got = sorted(
        (
            r["region"], r["amiId"], r["bucket"], r["progressPercentage"],
            r["s3objectKey"], r["storeTaskFailureReason"], r["storeTaskState"],
            int(r["taskStartTime"].timestamp() * 1000),
        )
        for r in table.to_pylist()
    )
    want = sorted(
        row for region in REGIONS for row in boto3_tasks(stack["emulator_url"], region)
    )
    assert len(want) == 3 * 230
    assert got == want


def test_parameters_and_dbapi_rows(stack):
    ami = boto3_tasks(stack["emulator_url"], "us-west-2")[0][1]
    with flightsql.connect(stack["uri"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT amiId, region FROM store_image_tasks WHERE region = 'us-west-2' AND amiId = $1",
            parameters=(ami,),
        )
        rows = cur.fetchall()
    assert rows and all(r == (ami, "us-west-2") for r in rows)


def test_errors_reach_the_client_with_the_server_message(stack):
    with flightsql.connect(stack["uri"], autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as err:
            cur.execute("SELECT nope FROM store_image_tasks")
            cur.fetchall()
        assert "nope" in str(err.value)
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [(1,)]
