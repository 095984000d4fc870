"""Apache Superset's path to the server: flightsql-dbapi's SQLAlchemy dialect (what Superset
connects with) and the repository's engine spec (clients/superset), against the real server
and the EC2 emulator binary, checked against what boto3 reads from the same emulator.

Superset itself is not installed here (too heavy for CI): the engine spec keeps its grain
expressions and literal conversions in plain module-level data, and this test runs the SQL
Superset builds from them (the form Superset 6.1.0 prints for a chart on a virtual dataset).
"""

import os
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import datetime, timedelta, timezone
from importlib.metadata import EntryPoint, entry_points

import boto3
import pandas as pd
import pytest
import trustme
from pyarrow import flight
from sqlalchemy import create_engine, inspect, text

from conftest import BIN_DIR, BinaryStack

SPEC_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "clients", "superset")
sys.path.insert(0, SPEC_DIR)
import aws_flightsql_engine_spec as spec  # noqa: E402

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
COLUMNS = {
    "account": ("TEXT", "string", False),
    "region": ("TEXT", "string", False),
    "amiId": ("TEXT", "string", True),
    "bucket": ("TEXT", "string", True),
    "progressPercentage": ("INTEGER", "integer", True),
    "s3objectKey": ("TEXT", "string", True),
    "storeTaskFailureReason": ("TEXT", "string", True),
    "storeTaskState": ("TEXT", "string", True),
    "taskStartTime": ("TIMESTAMP", "timestamp", True),
}
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack():
    regions = ["--regions", ",".join(REGIONS)]
    s = BinaryStack(
        [*regions, "--tasks-per-region", "180", "--seed", "11", "--freeze-time"], regions
    )
    yield s
    s.stop()


def sqlalchemy_url(stack, scheme="datafusion"):
    # stack.uri is grpc://127.0.0.1:PORT; flightsql-dbapi wants host:port and `insecure` for h2c.
    return f"{scheme}://{stack.uri.removeprefix('grpc://')}?insecure=true"


def in_fresh_python(code, **env):
    """Runs ``code`` in a new interpreter of this venv (nothing registered yet); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.path.abspath(SPEC_DIR), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def engine(stack):
    e = create_engine(sqlalchemy_url(stack))
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def truth(stack):
    """Every task's (region, taskStartTime as an aware UTC datetime), as boto3 reads them."""
    rows = []
    for region in REGIONS:
        ec2 = boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=stack.emulator_url,
            aws_access_key_id="AKIDSUPERSETTEST",
            aws_secret_access_key="superset-test-secret",
        )
        for page in ec2.get_paginator("describe_store_image_tasks").paginate():
            rows.extend((region, t["TaskStartTime"]) for t in page["StoreImageTaskResults"])
    assert len(rows) == 180 * len(REGIONS)
    # Sub-second parts make the second grain (and the filter boundaries) mean something.
    assert any(t.microsecond for _, t in rows)
    return rows


def run(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).fetchall()


def as_utc(value):
    """A timestamp cell (flightsql-dbapi gives pandas Timestamps) as an aware UTC datetime."""
    ts = pd.Timestamp(value)
    assert ts.tzinfo is not None, f"{value!r} has no time zone"
    return ts.tz_convert("UTC").to_pydatetime()


def test_uri_schemes_in_a_fresh_process(stack):
    probe = (
        "from sqlalchemy import create_engine, text\n"
        "with create_engine({url!r}).connect() as c:\n"
        "    print(c.execute(text('SELECT count(*) FROM store_image_tasks')).scalar())\n"
    )
    # `datafusion://` is flightsql-dbapi's own entry point: it works with nothing else.
    assert in_fresh_python(probe.format(url=sqlalchemy_url(stack))) == str(180 * len(REGIONS))

    # `datafusion+flightsql://` is registered only by importing flightsql.sqlalchemy; the engine
    # spec module does, and its package declares the entry point for a fresh process.
    plus = sqlalchemy_url(stack, "datafusion+flightsql")
    installed = {ep.name for ep in entry_points(group="sqlalchemy.dialects")}
    if "datafusion.flightsql" not in installed:
        failure = in_fresh_python(
            "from sqlalchemy import create_engine\n"
            "from sqlalchemy.exc import NoSuchModuleError\n"
            "try:\n"
            f"    create_engine({plus!r})\n"
            "except NoSuchModuleError as e:\n"
            "    print(e)\n"
        )
        assert "Can't load plugin: sqlalchemy.dialects:datafusion.flightsql" in failure
    assert in_fresh_python("import aws_flightsql_engine_spec\n" + probe.format(url=plus)) == str(
        180 * len(REGIONS)
    )

    with open(os.path.join(SPEC_DIR, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    dialects = project["entry-points"]["sqlalchemy.dialects"]
    dialect = EntryPoint("datafusion.flightsql", dialects["datafusion.flightsql"], "x").load()
    assert (dialect.name, dialect.driver) == ("datafusion", "flightsql")
    superset_ep = project["entry-points"]["superset.db_engine_specs"]["aws_flightsql"]
    module, _, attr = superset_ep.partition(":")
    assert module == spec.__name__ and attr == "AwsFlightSqlEngineSpec"
    assert project["dependencies"] == ["flightsql-dbapi==0.2.2"]


def test_inspector_lists_schemas_tables_and_typed_columns(engine):
    insp = inspect(engine)
    assert {"ec2", "information_schema", "organizations"} <= set(insp.get_schema_names())
    assert insp.get_table_names(schema="ec2") == ["store_image_tasks"]
    assert insp.get_table_names(schema="organizations") == ["accounts"]
    columns = insp.get_columns("store_image_tasks", schema="ec2")
    got = {
        c["name"]: (str(c["type"]), spec.type_kind(str(c["type"])), c["nullable"]) for c in columns
    }
    assert got == COLUMNS
    assert [c["name"] for c in columns] == list(COLUMNS)

    # The server's own type names (what SQL Lab shows from information_schema) map the same.
    rows = run(
        engine,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'ec2' AND table_name = 'store_image_tasks'",
    )
    assert {name: spec.type_kind(data_type) for name, data_type in rows} == {
        name: kind for name, (_, kind, _) in COLUMNS.items()
    }


def test_result_types_map_to_superset_names(engine):
    with engine.connect() as conn:
        result = conn.execute(
            text('SELECT region, "progressPercentage", "taskStartTime", count(*) OVER () AS n '
                 "FROM store_image_tasks LIMIT 1")
        )
        description = result.cursor.description
    names = [spec.datatype_name(d[1]) for d in description]
    assert names == ["TEXT", "INTEGER", "TIMESTAMP", "BIGINT"]
    assert [spec.type_kind(n) for n in names] == ["string", "integer", "timestamp", "bigint"]


def _week_monday(t):
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _week_sunday(t):
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _bin(seconds):
    def bucket(t):
        elapsed = (t - EPOCH) // timedelta(seconds=seconds)
        return EPOCH + elapsed * timedelta(seconds=seconds)

    return bucket


# What each Superset grain means, in Python, for the emulator's truth.
GRAIN_TRUTH = {
    "PT1S": lambda t: t.replace(microsecond=0),
    "PT5S": _bin(5),
    "PT30S": _bin(30),
    "PT1M": lambda t: t.replace(second=0, microsecond=0),
    "PT5M": _bin(5 * 60),
    "PT10M": _bin(10 * 60),
    "PT15M": _bin(15 * 60),
    "PT30M": _bin(30 * 60),
    "PT1H": lambda t: t.replace(minute=0, second=0, microsecond=0),
    "PT6H": _bin(6 * 3600),
    "P1D": lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
    "P1W": _week_monday,
    "1969-12-28T00:00:00Z/P1W": _week_sunday,
    "1969-12-29T00:00:00Z/P1W": _week_monday,
    "P1W/1970-01-03T00:00:00Z": lambda t: _week_sunday(t) + timedelta(days=6),
    "P1W/1970-01-04T00:00:00Z": lambda t: _week_monday(t) + timedelta(days=6),
    "P1M": lambda t: t.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    "P3M": lambda t: t.replace(
        month=(t.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    ),
    "P1Y": lambda t: t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
}


def grain_sql(grain, where=""):
    """A chart's query as Superset 6.1.0 writes it for a virtual dataset: the grain expression
    as the x-axis, a COUNT(*) metric, the dataset's SQL as `virtual_table`."""
    expr = spec.TIME_GRAIN_EXPRESSIONS[grain].format(col='"taskStartTime"')
    return (
        f'SELECT {expr} AS "taskStartTime", COUNT(*) AS count \n'
        "FROM (SELECT * FROM store_image_tasks\n) AS virtual_table "
        f"{where}GROUP BY {expr} ORDER BY count DESC\n LIMIT 10000"
    )


def test_every_grain_groups_like_the_emulator(engine, truth):
    required = {"PT1S", "PT1M", "PT1H", "P1D", "P1W", "P1M", "P3M", "P1Y"}
    assert required <= set(spec.TIME_GRAIN_EXPRESSIONS)
    assert spec.TIME_GRAIN_EXPRESSIONS[None] == "{col}"
    assert set(spec.TIME_GRAIN_EXPRESSIONS) - {None} == set(GRAIN_TRUTH)
    for grain, bucket in GRAIN_TRUTH.items():
        got = Counter()
        for start, count in run(engine, grain_sql(grain)):
            got[as_utc(start)] += count
        want = Counter(bucket(t) for _, t in truth)
        assert got == want, grain


def test_time_range_filter_with_convert_dttm_literals(engine, truth):
    times = sorted(t for _, t in truth)
    # Boundaries on exact task start times (millisecond instants, microseconds in the
    # literal): the first is included (>=), the second excluded (<).
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    want_rows = [t for t in times if start <= t < end]

    naive_start, naive_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    tokyo = timezone(timedelta(hours=9))
    for target_type, lo, hi in [
        # Superset passes naive UTC datetimes and the column's type name: TIMESTAMP from the
        # dialect's reflection, DATETIME for result columns it typed itself.
        ("TIMESTAMP", naive_start, naive_end),
        ("DATETIME", naive_start, naive_end),
        ('Timestamp(ms, "UTC")', naive_start, naive_end),
        ("TIMESTAMP", start.astimezone(tokyo), end.astimezone(tokyo)),
    ]:
        lo_sql, hi_sql = spec.convert_dttm(target_type, lo), spec.convert_dttm(target_type, hi)
        assert lo_sql.startswith("TIMESTAMP '") and lo_sql.endswith("+00:00'"), lo_sql
        where = f'WHERE "taskStartTime" >= {lo_sql} AND "taskStartTime" < {hi_sql} '
        (count,) = run(engine, f"SELECT COUNT(*) FROM store_image_tasks {where}")[0]
        assert count == len(want_rows), (target_type, where)

        # The day-grain chart with the same time range, grouped as Superset does.
        got = Counter()
        for day, n in run(engine, grain_sql("P1D", where)):
            got[as_utc(day)] += n
        assert got == Counter(GRAIN_TRUTH["P1D"](t) for t in want_rows)

    # Where convert_dttm answers None (a column typed as text), Superset writes a plain
    # '%Y-%m-%d %H:%M:%S.%f' string: the server compares it as a UTC timestamp too.
    assert spec.convert_dttm("TEXT", naive_start) is None
    lo_str, hi_str = (f"'{d.strftime('%Y-%m-%d %H:%M:%S.%f')}'" for d in (naive_start, naive_end))
    (count,) = run(
        engine,
        f'SELECT COUNT(*) FROM store_image_tasks WHERE "taskStartTime" >= {lo_str} '
        f'AND "taskStartTime" < {hi_str}',
    )[0]
    assert count == len(want_rows)

    # Dates: whole UTC days.
    day = start.date()
    assert spec.convert_dttm("DATE", naive_start) == f"DATE '{day.isoformat()}'"
    (count,) = run(
        engine,
        f'SELECT COUNT(*) FROM store_image_tasks WHERE "taskStartTime" >= '
        f"{spec.convert_dttm('DATE', naive_start)} AND \"taskStartTime\" < "
        f"{spec.convert_dttm('DATE', naive_start + timedelta(days=1))}",
    )[0]
    assert count == sum(1 for t in times if t.date() == day)


def test_native_filter_values_and_region_filter(engine, truth):
    # A native filter's value list and its selection, as Superset queries them.
    rows = run(
        engine, "SELECT DISTINCT region AS column_values FROM ec2.store_image_tasks LIMIT 10000"
    )
    assert sorted(r[0] for r in rows) == sorted(REGIONS)
    chosen = ["us-east-1", "eu-west-1"]
    got = Counter()
    for day, n in run(engine, grain_sql("P1D", "WHERE region IN ('us-east-1', 'eu-west-1') ")):
        got[as_utc(day)] += n
    assert got == Counter(GRAIN_TRUTH["P1D"](t) for r, t in truth if r in chosen)


def test_epoch_columns_convert(engine):
    instant = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    seconds, millis = int(instant.timestamp()), int(instant.timestamp() * 1000)
    from_s = spec.EPOCH_TO_DTTM.format(col=seconds)
    from_ms = spec.EPOCH_MS_TO_DTTM.format(col=millis)
    ((s, ms),) = run(engine, f"SELECT {from_s}, {from_ms}")
    # DataFusion's epoch conversions give UTC wall times without a zone.
    assert pd.Timestamp(s).to_pydatetime() == instant.replace(microsecond=0, tzinfo=None)
    assert pd.Timestamp(ms).to_pydatetime() == instant.replace(tzinfo=None)


def test_tls_and_users_through_the_url(tmp_path):
    """A server with TLS and a users file, as Superset reaches it: user and password in the URL
    (flightsql-dbapi's Basic handshake, then the server's bearer token), TLS verified against
    the CA through gRPC's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, or not verified."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    hashed = subprocess.run(
        [
            os.path.join(BIN_DIR, "aws-flightsql"), "hash-password",
            "--user", "analyst", "--role", "read",
        ],
        input="superset-analyst-password\n", capture_output=True, text=True, check=True,
    )
    (tmp_path / "users.toml").write_text(hashed.stdout)
    s = BinaryStack(
        ["--regions", "eu-west-1", "--tasks-per-region", "15", "--seed", "3", "--freeze-time"],
        [
            "--regions", "eu-west-1",
            "--tls-cert", str(tmp_path / "server.pem"),
            "--tls-key", str(tmp_path / "server.key"),
            "--users-file", str(tmp_path / "users.toml"),
        ],
    )
    try:
        hostport = s.uri.removeprefix("grpc+tls://")
        probe = (
            "from sqlalchemy import create_engine, text\n"
            "with create_engine({url!r}).connect() as c:\n"
            "    print(c.execute(text('SELECT count(*) FROM store_image_tasks')).scalar())\n"
        )
        verified = f"datafusion://analyst:superset-analyst-password@{hostport}"
        roots = {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(tmp_path / "ca.pem")}
        assert in_fresh_python(probe.format(url=verified), **roots) == "15"
        unverified = verified + "?disable_server_verification=true"
        assert in_fresh_python(probe.format(url=unverified)) == "15"

        # Without the CA the certificate is refused, so the check above did verify it (pyarrow's
        # handshake reports it only as "Could not finish writing before closing").
        indented = "".join(f"    {line}\n" for line in probe.format(url=verified).splitlines())
        refused = in_fresh_python(
            "try:\n" + indented + "except Exception as e:\n    print('refused:', e)\n"
        )
        assert refused.startswith("refused:"), refused

        # flightsql-dbapi's handshake runs in create_engine.
        with pytest.raises(flight.FlightUnauthenticatedError, match="wrong user name or password"):
            create_engine(f"datafusion://analyst:wrong@{hostport}?disable_server_verification=true")
    finally:
        s.stop()
