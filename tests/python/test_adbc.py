"""The ADBC Flight SQL driver (what pandas/polars notebooks, Superset and Power BI use)
against the real aws-flightsql server and the EC2 emulator binary, checked against what
boto3 reads from the same emulator."""


import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pytest

from conftest import BinaryStack

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]


@pytest.fixture(scope="module")
def stack():
    regions = ["--regions", ",".join(REGIONS)]
    s = BinaryStack([*regions, "--tasks-per-region", "230", "--seed", "7", "--freeze-time"], regions)
    yield s
    s.stop()


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
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM aws.ec2.store_image_tasks")
        table = cur.fetch_arrow_table()
    assert table.column_names == [
        "account", "region", "amiId", "bucket", "progressPercentage", "s3objectKey",
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
        row for region in REGIONS for row in boto3_tasks(stack.emulator_url, region)
    )
    assert len(want) == 3 * 230
    assert got == want


def test_parameters_and_dbapi_rows(stack):
    ami = boto3_tasks(stack.emulator_url, "us-west-2")[0][1]
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT amiId, region FROM store_image_tasks WHERE region = 'us-west-2' AND amiId = $1",
            parameters=(ami,),
        )
        rows = cur.fetchall()
    assert rows and all(r == (ami, "us-west-2") for r in rows)


def test_errors_reach_the_client_with_the_server_message(stack):
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as err:
            cur.execute("SELECT nope FROM store_image_tasks")
            cur.fetchall()
        assert "nope" in str(err.value)
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [(1,)]


def storable(emulator_url, region):
    """AMIs of `region` that can be stored now, and a bucket of that region."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{emulator_url}/_emulator/state") as resp:
        state = json.load(resp)["regions"][region]
    return state["amis"], state["buckets"][0]


def test_insert_through_adbc_creates_exactly_the_rows_boto3_then_sees(stack):
    amis, bucket = storable(stack.emulator_url, "eu-west-1")
    before = {r[1] for r in boto3_tasks(stack.emulator_url, "eu-west-1")}
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES "
            f"('eu-west-1', '{amis[0]}', '{bucket}'), ('eu-west-1', '{amis[1]}', '{bucket}')"
        )
        # The tasks created, as DB-API's rowcount; the result stays readable, and says
        # where the tasks were created.
        assert cur.rowcount == 2
        assert [d[0] for d in cur.description] == ["count", "regions"]
        assert cur.fetchall() == [(2, "eu-west-1")]
        # A prepared INSERT with parameters.
        cur.execute(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)",
            parameters=("eu-west-1", amis[2], bucket),
        )
        assert cur.rowcount == 1
        assert cur.fetchall() == [(1, "eu-west-1")]
    after = boto3_tasks(stack.emulator_url, "eu-west-1")
    new = sorted(r for r in after if r[1] not in before)
    assert [r[1] for r in new] == sorted(amis[:3])
    assert all(r[2] == bucket and r[6] == "InProgress" and r[4] == f"{r[1]}.bin" for r in new)


def test_bad_insert_fails_clearly_and_creates_nothing(stack):
    amis, _ = storable(stack.emulator_url, "us-east-1")
    before = boto3_tasks(stack.emulator_url, "us-east-1")
    with flightsql.connect(stack.uri, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as err:
            cur.execute(
                "INSERT INTO store_image_tasks (amiId, bucket) VALUES "
                f"('{amis[0]}', 'Not_A_Bucket')"
            )
            cur.fetchall()
    assert "is not a valid S3 bucket name" in str(err.value)
    assert boto3_tasks(stack.emulator_url, "us-east-1") == before


def test_a_dry_run_insert_affects_no_row_and_lists_what_would_be_created(stack):
    amis, bucket = storable(stack.emulator_url, "us-west-2")
    before = boto3_tasks(stack.emulator_url, "us-west-2")
    insert = (
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES "
        f"('us-west-2', '{amis[0]}', '{bucket}'), ('us-west-2', '{amis[1]}', '{bucket}')"
    )
    with flightsql.connect(
        stack.uri,
        autocommit=True,
        db_kwargs={"adbc.flight.sql.rpc.with_cookie_middleware": "true"},
    ) as conn, conn.cursor() as cur:
        cur.execute("SET aws.dry_run = true")
        cur.execute("SHOW aws.dry_run")
        assert cur.fetchall() == [("aws.dry_run", "true")]
        cur.execute(insert)
        assert cur.rowcount == 0, "nothing was created"
        assert [d[0] for d in cur.description] == [
            "account", "region", "amiId", "bucket", "outcome", "s3objectKey",
            "errorCode", "errorMessage", "requestId",
        ]
        rows = sorted(cur.fetchall())
        assert rows == sorted(
            ("111111111111", "us-west-2", ami, bucket, "would_create", f"{ami}.bin", None, None, None)
            for ami in amis[:2]
        )
        # Prepared, with parameters: the same.
        cur.execute(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)",
            parameters=("us-west-2", amis[2], bucket),
        )
        assert cur.rowcount == 0
        assert [r[4] for r in cur.fetchall()] == ["would_create"]
        # A row AWS would refuse fails the statement, saying it was a dry run.
        with pytest.raises(Exception) as err:
            cur.execute(
                "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES "
                f"('us-west-2', 'ami-0123456789abcdef0', '{bucket}')"
            )
            cur.fetchall()
        assert "dry run of INSERT failed, nothing was created" in str(err.value)
        assert "InvalidAMIID.NotFound" in str(err.value)
    # The emulator holds nothing new, and the AMIs are still storable.
    assert boto3_tasks(stack.emulator_url, "us-west-2") == before
    still, _ = storable(stack.emulator_url, "us-west-2")
    assert set(amis[:3]) <= set(still)
