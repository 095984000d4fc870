"""The Flight SQL surface through the ADBC driver (Go core; what pandas/polars notebooks,
Superset and Power BI use): metadata calls, parameters, schemas, DataFrames, bulk ingest,
sessions and cancellation, against the real server and EC2 emulator binaries, checked
against what boto3 reads from the same emulator.

Binaries come from ``$AWS_FLIGHTSQL_BIN_DIR`` (see conftest.py); both listen on port 0.
"""

import json
import time
import urllib.request

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from conftest import BinaryStack, binary_env

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
TASKS = 230
COLUMNS = [
    "account", "region", "amiId", "bucket", "progressPercentage", "s3objectKey",
    "storeTaskFailureReason", "storeTaskState", "taskStartTime",
]
COOKIES = {adbc_driver_flightsql.DatabaseOptions.WITH_COOKIE_MIDDLEWARE.value: "true"}


class Stack(BinaryStack):
    """An emulator and a server serving REGIONS, started from the binaries, with the
    emulator's hooks."""

    def __init__(self, emulator_args):
        super().__init__(emulator_args, ["--regions", ",".join(REGIONS)])

    def hook(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.emulator_url + "/_emulator/" + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def storable(self, region):
        state = self.hook("state")["regions"][region]
        return state["amis"], state["buckets"][0]

    def describe_calls(self):
        return sum(1 for r in self.hook("requests") if r["action"] == "DescribeStoreImageTasks")

    def boto3_amis(self, region):
        ec2 = boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=self.emulator_url,
            aws_access_key_id=binary_env()["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=binary_env()["AWS_SECRET_ACCESS_KEY"],
        )
        amis = []
        for page in ec2.get_paginator("describe_store_image_tasks").paginate():
            amis.extend(t["AmiId"] for t in page["StoreImageTaskResults"])
        return sorted(amis)


@pytest.fixture(scope="module")
def stack():
    s = Stack([
        "--regions", ",".join(REGIONS),
        "--tasks-per-region", str(TASKS),
        "--seed", "23",
        "--freeze-time",
    ])
    yield s
    s.stop()


def connect(stack, **db_kwargs):
    return flightsql.connect(stack.uri, db_kwargs=db_kwargs or None, autocommit=True)


def test_get_info_describes_the_server(stack):
    with connect(stack) as conn:
        info = conn.adbc_get_info()
    assert info["vendor_name"] == "aws-flightsql"
    assert info["vendor_version"]
    assert info["vendor_arrow_version"].split(".")[0].isdigit()
    assert "Flight SQL" in info["driver_name"]


def test_get_objects_all_depths_and_filters(stack):
    with connect(stack) as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        filtered = conn.adbc_get_objects(
            depth="all",
            catalog_filter="aws",
            db_schema_filter="e_2",
            table_name_filter="store%",
            column_name_filter="ami%",
        ).read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    assert list(catalogs) == ["aws"]
    schemas = {s["db_schema_name"]: s for s in catalogs["aws"]["catalog_db_schemas"]}
    assert set(schemas) == {"ec2", "information_schema", "organizations"}
    org_tables = [t["table_name"] for t in schemas["organizations"]["db_schema_tables"]]
    assert org_tables == ["accounts"]
    tables = {t["table_name"]: t for t in schemas["ec2"]["db_schema_tables"]}
    assert list(tables) == ["store_image_tasks"]
    table = tables["store_image_tasks"]
    assert table["table_type"] == "TABLE"
    columns = table["table_columns"]
    assert [c["column_name"] for c in columns] == COLUMNS
    assert [c["ordinal_position"] for c in columns] == list(range(1, len(COLUMNS) + 1))
    by_name = {c["column_name"]: c for c in columns}
    # The driver fills the xdbc_* fields from the ARROW:FLIGHT:SQL:* column metadata.
    assert by_name["amiId"]["xdbc_type_name"] == "VARCHAR"
    assert by_name["amiId"]["xdbc_data_type"] == 12
    assert by_name["progressPercentage"]["xdbc_type_name"] == "INTEGER"
    assert by_name["progressPercentage"]["xdbc_data_type"] == 4
    assert by_name["taskStartTime"]["xdbc_type_name"] == "TIMESTAMP WITH TIME ZONE"
    assert by_name["region"]["xdbc_scope_table"] == "store_image_tasks"
    views = {t["table_name"] for t in schemas["information_schema"]["db_schema_tables"]}
    assert {"tables", "columns", "views"} <= views

    [aws] = filtered
    [ec2] = aws["catalog_db_schemas"]
    [tasks] = ec2["db_schema_tables"]
    assert [c["column_name"] for c in tasks["table_columns"]] == ["amiId"]


def test_nullability_and_remarks_of_every_column(stack):
    with connect(stack) as conn:
        schema = conn.adbc_get_table_schema(
            "store_image_tasks", catalog_filter="aws", db_schema_filter="ec2"
        )
        objects = conn.adbc_get_objects(
            depth="columns", catalog_filter="aws", db_schema_filter="ec2",
            table_name_filter="store_image_tasks",
        ).read_all().to_pylist()
    writable = {"account", "region", "amiId", "bucket"}
    # adbc_get_table_schema shows all of it: only account and region are never null (AWS
    # marks every field of a task optional), one remark per column, the table's own remark,
    # and which columns INSERT takes.
    assert [f.name for f in schema if not f.nullable] == ["account", "region"]
    assert schema.metadata[b"ARROW:FLIGHT:SQL:REMARKS"].startswith(b"Tasks that store an AMI")
    remarks = {}
    for name in COLUMNS:
        metadata = schema.field(name).metadata
        remark = metadata[b"ARROW:FLIGHT:SQL:REMARKS"].decode()
        assert remark.endswith(".") and "&lt;" not in remark, (name, remark)
        remarks[name] = remark
        assert metadata[b"ARROW:FLIGHT:SQL:IS_READ_ONLY"] == (b"0" if name in writable else b"1")
        # The keys the Go driver's GetObjects code reads for remarks and nullability.
        assert metadata[b"REMARKS"].decode() == remark
        nullable = name not in ("account", "region")
        assert metadata[b"XDBC_NULLABLE"] == (b"1" if nullable else b"0"), name
        assert metadata[b"XDBC_IS_NULLABLE"] == (b"YES" if nullable else b"NO"), name
    assert remarks["account"].startswith("The 12-digit id of the AWS account")
    assert remarks["amiId"].startswith("The ID of the AMI")
    assert "InProgress, Completed or Failed" in remarks["storeTaskState"]
    assert "null unless" in remarks["storeTaskFailureReason"]

    # adbc_get_objects: the pinned Go driver (1.13.0) hands its xdbc builder none of the
    # column metadata (flightSqlMetadata.SetMetadata in go/adbc/driver/flightsql keeps it
    # to itself), so remarks, xdbc_nullable and xdbc_is_nullable are null with any Flight
    # SQL server; it fills what it reads itself. When a driver update makes this fail, the
    # values above are what it must show.
    [aws] = objects
    [ec2] = aws["catalog_db_schemas"]
    [tasks] = ec2["db_schema_tables"]
    columns = {c["column_name"]: c for c in tasks["table_columns"]}
    assert list(columns) == COLUMNS
    for name, column in columns.items():
        assert (column["remarks"], column["xdbc_nullable"], column["xdbc_is_nullable"]) == (
            None, None, None
        ), (name, column)
        assert column["xdbc_scope_table"] == "store_image_tasks"


def test_names_in_any_case_as_bi_tools_send_them(stack):
    """Unquoted names match the real (camelCase) ones in any case, in SQL and in
    get_objects; results keep the real names; quoted names stay exact."""
    want = stack.boto3_amis("eu-west-1")
    with connect(stack) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT AMIID, Region FROM STORE_IMAGE_TASKS "
                "WHERE REGION = 'eu-west-1' ORDER BY amiid"
            )
            table = cur.fetch_arrow_table()
            cur.execute("SELECT amiid FROM Aws.Ec2.Store_Image_Tasks WHERE REGION = ?",
                        parameters=("eu-west-1",))
            prepared = cur.fetch_arrow_table()
            with pytest.raises(adbc_driver_flightsql.dbapi.ProgrammingError) as quoted:
                cur.execute('SELECT "AMIID" FROM store_image_tasks')
        objects = conn.adbc_get_objects(
            depth="all",
            catalog_filter="AWS",
            db_schema_filter="EC2",
            table_name_filter="STORE_IMAGE_TASKS",
        ).read_all().to_pylist()
    assert table.column_names == ["amiId", "region"]
    assert table.column("amiId").to_pylist() == want
    assert prepared.column_names == ["amiId"]
    assert sorted(prepared.column("amiId").to_pylist()) == want
    assert "did you mean amiId?" in str(quoted.value)
    [aws] = objects
    [ec2] = aws["catalog_db_schemas"]
    [tasks] = ec2["db_schema_tables"]
    assert tasks["table_name"] == "store_image_tasks"
    assert [c["column_name"] for c in tasks["table_columns"]] == COLUMNS


def test_get_table_schema_and_table_types(stack):
    with connect(stack) as conn:
        schema = conn.adbc_get_table_schema(
            "store_image_tasks", catalog_filter="aws", db_schema_filter="ec2"
        )
        types = conn.adbc_get_table_types()
    assert schema.names == COLUMNS
    assert schema.field("region").nullable is False
    assert schema.field("taskStartTime").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("bucket").type == pa.string()
    assert {"TABLE", "VIEW"} <= set(types)


def test_execute_with_question_mark_and_dollar_parameters(stack):
    amis = stack.boto3_amis("us-west-2")
    ami = amis[0]
    with connect(stack) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT amiId, region FROM store_image_tasks WHERE region = ? AND amiId = ?",
            parameters=("us-west-2", ami),
        )
        rows = cur.fetchall()
        cur.execute(
            "SELECT count(*) FROM store_image_tasks WHERE region = $1", parameters=("us-west-2",)
        )
        (count,) = cur.fetchone()
    assert rows and rows == [(ami, "us-west-2")] * amis.count(ami)
    assert count == len(amis) == TASKS


def test_execute_schema_equals_the_fetched_schema_with_column_metadata(stack):
    sql = "SELECT amiId, taskStartTime, progressPercentage * 2 AS doubled FROM store_image_tasks"
    with connect(stack) as conn, conn.cursor() as cur:
        schema = cur.adbc_execute_schema(sql)
        cur.execute(sql + " WHERE region = 'eu-west-1'")
        table = cur.fetch_arrow_table()
    assert schema.names == ["amiId", "taskStartTime", "doubled"]
    ami = schema.field("amiId").metadata
    assert ami[b"ARROW:FLIGHT:SQL:TABLE_NAME"] == b"store_image_tasks"
    assert ami[b"ARROW:FLIGHT:SQL:CATALOG_NAME"] == b"aws"
    assert ami[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"VARCHAR"
    assert b"ARROW:FLIGHT:SQL:TABLE_NAME" not in schema.field("doubled").metadata
    assert table.schema.equals(schema, check_metadata=True)
    assert table.num_rows == TASKS


def test_fetch_arrow_table_pandas_and_polars_agree_with_boto3(stack):
    want = stack.boto3_amis("eu-west-1")
    sql = "SELECT * FROM aws.ec2.store_image_tasks WHERE region = 'eu-west-1'"
    with connect(stack) as conn, conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
        cur.execute(sql)
        df = cur.fetch_df()
        cur.execute(sql)
        polars_df = cur.fetch_polars()
        via_polars = pl.read_database(sql, connection=conn)

    assert table.column_names == COLUMNS
    assert table.schema.field("taskStartTime").type == pa.timestamp("ms", tz="UTC")
    assert sorted(table.column("amiId").to_pylist()) == want

    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == COLUMNS
    assert str(df["taskStartTime"].dtype) == "datetime64[ms, UTC]"
    assert sorted(df["amiId"].tolist()) == want
    assert df["progressPercentage"].between(0, 100).all()

    for frame in (polars_df, via_polars):
        assert isinstance(frame, pl.DataFrame)
        assert frame.columns == COLUMNS
        assert frame.schema["taskStartTime"] == pl.Datetime("ms", "UTC")
        assert sorted(frame["amiId"].to_list()) == want


def test_ingest_appends_through_insert_and_refuses_create(stack):
    amis, bucket = stack.storable("us-east-1")
    before = stack.boto3_amis("us-east-1")
    rows = pa.table({
        "region": ["us-east-1", "us-east-1"],
        "amiId": amis[:2],
        "bucket": [bucket, bucket],
    })
    with connect(stack) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as err:
            cur.adbc_ingest("store_image_tasks", rows, mode="create")
        assert "append" in str(err.value)
        created = cur.adbc_ingest(
            "store_image_tasks", rows, mode="append", catalog_name="aws", db_schema_name="ec2"
        )
    assert created == 2
    after = stack.boto3_amis("us-east-1")
    assert sorted(set(after) - set(before)) == sorted(amis[:2])
    assert len(after) == len(before) + 2


def test_statements_the_table_cannot_do_are_refused(stack):
    with connect(stack) as conn, conn.cursor() as cur:
        for sql in ("DELETE FROM store_image_tasks", "CREATE TABLE t (a INT)"):
            with pytest.raises(Exception) as err:
                cur.execute(sql)
                cur.fetchall()
            assert "SELECT and INSERT" in str(err.value), sql


def test_session_options_and_set_persist_with_cookies(stack):
    amis, bucket = stack.storable("us-west-2")
    before = stack.boto3_amis("us-west-2")
    with connect(stack, **COOKIES) as conn, conn.cursor() as cur:
        # SetSessionOptions through the driver's session option.
        prefix = adbc_driver_flightsql.ConnectionOptions.OPTION_SESSION_OPTION_PREFIX.value
        conn.adbc_connection.set_options(**{prefix + "aws.dry_run": "true"})
        options = json.loads(
            conn.adbc_connection.get_option(
                adbc_driver_flightsql.ConnectionOptions.OPTION_SESSION_OPTIONS.value
            )
        )
        assert options["aws.dry_run"] is True
        assert options["catalog"] == "aws"
        cur.execute(
            "INSERT INTO store_image_tasks (region, amiId, bucket) "
            f"VALUES ('us-west-2', '{amis[0]}', '{bucket}')"
        )
        # A dry run: no row affected, the row it would create.
        assert cur.rowcount == 0
        assert [(r[2], r[4]) for r in cur.fetchall()] == [(amis[0], "would_create")]
        # SET as a statement: the new session comes back in the cookie.
        cur.execute("SET datafusion.execution.batch_size = 1234")
        cur.execute(
            "SELECT value FROM information_schema.df_settings "
            "WHERE name = 'datafusion.execution.batch_size'"
        )
        assert cur.fetchall() == [("1234",)]
    assert stack.boto3_amis("us-west-2") == before, "a dry run creates nothing"


@pytest.fixture
def slow_stack():
    """One region with 2000 tasks (10 pages), each page answered after 200 ms."""
    s = Stack([
        "--regions", "us-east-1",
        "--tasks-per-region", "2000",
        "--freeze-time",
        "--latency-ms", "200",
    ])
    yield s
    s.stop()


def test_cancel_stops_the_query_and_upstream_paging(slow_stack):
    with connect(slow_stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM store_image_tasks WHERE region = 'us-east-1'")
        reader = cur.fetch_record_batch()
        first = reader.read_next_batch()
        assert first.num_rows > 0
        calls_at_cancel = slow_stack.describe_calls()
        cur.adbc_cancel()
        with pytest.raises(Exception) as err:
            reader.read_all()
        assert "cancel" in str(err.value).lower()
    # Upstream paging stopped: at most the page in flight and the buffered ones follow.
    # (Bounded wait: the remaining 8 pages would take 1.6 s.)
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        time.sleep(0.1)
    calls = slow_stack.describe_calls()
    assert calls <= calls_at_cancel + 3, (calls_at_cancel, calls)
    assert calls < 10, "the whole table was read"
