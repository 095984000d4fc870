"""Apache Superset engine spec for aws-flightsql, through flightsql-dbapi's SQLAlchemy dialect.

flightsql-dbapi 0.2.2 (``pip install flightsql-dbapi==0.2.2``) provides the SQLAlchemy
dialect ``DataFusionDialect`` (name ``datafusion``, driver ``flightsql``). Stock Superset has
no engine spec for it, so it falls back to its generic spec: no time grains ("No grain spec
for P1D" on a day-grain chart) and no time-filter literals of its own. This module supplies
them as DataFusion SQL, which the aws-flightsql server runs:

- ``TIME_GRAIN_EXPRESSIONS``: Superset's ISO 8601 grain keys to ``DATE_TRUNC`` /
  ``DATE_BIN`` expressions over ``{col}``;
- ``convert_dttm``: a Python ``datetime`` as a SQL literal for time-range filters;
- ``type_kind`` / ``datatype_name``: the column type mapping (Arrow and SQLAlchemy names);
- ``AwsFlightSqlEngineSpec``: the Superset ``BaseEngineSpec`` subclass built from the above,
  defined only where Superset is importable (everything else imports without Superset, so
  tests can check the SQL against the server).

Importing the module also imports ``flightsql.sqlalchemy`` when it is installed, which
registers the ``datafusion+flightsql://`` URI scheme in SQLAlchemy's registry; the package's
own entry point (see ``pyproject.toml``) does the same in a fresh process. ``datafusion://``
works without either.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

# DataFusion's DATE_BIN origin for the sub-unit grains: bins are aligned to the epoch, in UTC.
_EPOCH = "TIMESTAMP '1970-01-01T00:00:00Z'"


def _bin(interval: str) -> str:
    return f"DATE_BIN(INTERVAL '{interval}', {{col}}, {_EPOCH})"


#: Superset time grain (ISO 8601 duration, as ``superset.constants.TimeGrain``) -> DataFusion
#: expression over ``{col}``. Units DataFusion's ``date_trunc`` knows: second, minute, hour,
#: day, week (weeks start on Monday), month, quarter, year; the multiples go through
#: ``date_bin``. Every result keeps the column's time zone (UTC for ``taskStartTime``).
TIME_GRAIN_EXPRESSIONS: dict[str | None, str] = {
    None: "{col}",
    "PT1S": "DATE_TRUNC('second', {col})",
    "PT5S": _bin("5 seconds"),
    "PT30S": _bin("30 seconds"),
    "PT1M": "DATE_TRUNC('minute', {col})",
    "PT5M": _bin("5 minutes"),
    "PT10M": _bin("10 minutes"),
    "PT15M": _bin("15 minutes"),
    "PT30M": _bin("30 minutes"),
    "PT1H": "DATE_TRUNC('hour', {col})",
    "PT6H": _bin("6 hours"),
    "P1D": "DATE_TRUNC('day', {col})",
    "P1W": "DATE_TRUNC('week', {col})",
    # Week starting Sunday / Monday, week ending Saturday / Sunday (labelled by that day).
    "1969-12-28T00:00:00Z/P1W": "DATE_TRUNC('week', {col} + INTERVAL '1 day') - INTERVAL '1 day'",
    "1969-12-29T00:00:00Z/P1W": "DATE_TRUNC('week', {col})",
    "P1W/1970-01-03T00:00:00Z": "DATE_TRUNC('week', {col} + INTERVAL '1 day') + INTERVAL '5 days'",
    "P1W/1970-01-04T00:00:00Z": "DATE_TRUNC('week', {col}) + INTERVAL '6 days'",
    "P1M": "DATE_TRUNC('month', {col})",
    "P3M": "DATE_TRUNC('quarter', {col})",
    "P1Y": "DATE_TRUNC('year', {col})",
}

#: Epoch seconds / milliseconds (a column Superset is told holds ``epoch_s`` / ``epoch_ms``)
#: as a DataFusion timestamp.
EPOCH_TO_DTTM = "TO_TIMESTAMP_SECONDS({col})"
EPOCH_MS_TO_DTTM = "TO_TIMESTAMP_MILLIS({col})"

# Column type names -> kind. Names come from three places: SQLAlchemy types of the dialect's
# reflection (str(TIMESTAMP()) == "TIMESTAMP"), Arrow/DataFusion names
# (information_schema.columns.data_type, e.g. "Timestamp(ms, \"UTC\")", "Utf8", "Int32"), and
# Superset's own names for result columns ("DATETIME", "STRING", "INT").
_TYPE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), kind)
    for p, kind in [
        (r"^(large_?)?utf8(_?view)?$|^(var)?char|^text$|^string$", "string"),
        (r"^u?int64$|^bigint$", "bigint"),
        (r"^u?int(8|16|32)?$|^integer$|^smallint$|^tinyint$", "integer"),
        (r"^float(16|32|64)?$|^double$|^real$", "float"),
        (r"^decimal(128|256)?\b|^numeric\b", "decimal"),
        (r"^bool(ean)?$", "boolean"),
        (r"^timestamp\b|^datetime$", "timestamp"),
        (r"^date(32|64)?$", "date"),
        (r"^time(32|64)?\b|^time$", "time"),
    ]
]


def type_kind(type_name: str | None) -> str | None:
    """The kind of a column type name: ``string``, ``integer``, ``bigint``, ``float``,
    ``decimal``, ``boolean``, ``timestamp``, ``date``, ``time``; None when unknown."""
    if not type_name:
        return None
    name = type_name.strip()
    for pattern, kind in _TYPE_PATTERNS:
        if pattern.search(name):
            return kind
    return None


def datatype_name(type_code: Any) -> str | None:
    """The type name of a DB-API ``cursor.description`` type code.

    flightsql-dbapi describes columns with SQLAlchemy type classes (``sqlalchemy.types.TIMESTAMP``
    for an Arrow timestamp); Superset wants a name it can map, e.g. ``TIMESTAMP``.
    """
    if isinstance(type_code, str):
        return type_code.upper() or None
    visit_name = getattr(type_code, "__visit_name__", None)
    if isinstance(visit_name, str):
        return visit_name.upper()
    return None


def convert_dttm(target_type: str, dttm: datetime) -> str | None:
    """A Python datetime as a DataFusion literal of ``target_type``, for time-range filters.

    Timestamps become ``TIMESTAMP '...+00:00'`` (microseconds kept): Superset's naive datetimes
    are read as UTC, the time zone of ``taskStartTime`` and of every grain expression above;
    aware ones are converted to UTC. Dates become ``DATE 'YYYY-MM-DD'`` (the UTC day). Other
    types return None, so Superset falls back to its plain string literal.
    """
    kind = type_kind(target_type)
    if kind not in ("date", "timestamp"):
        return None
    if dttm.tzinfo is not None:
        dttm = dttm.astimezone(timezone.utc).replace(tzinfo=None)
    if kind == "date":
        return f"DATE '{dttm.date().isoformat()}'"
    return f"TIMESTAMP '{dttm.isoformat(sep='T', timespec='microseconds')}+00:00'"


try:  # flightsql-dbapi registers "datafusion.flightsql" only when this module is imported
    import flightsql.sqlalchemy  # noqa: F401
except ImportError:
    pass

try:
    from sqlalchemy import types as _sa_types
    from superset.db_engine_specs.base import BaseEngineSpec
    from superset.utils.core import GenericDataType
except ImportError:  # Superset is not installed: the data and functions above still work.
    BaseEngineSpec = None

if BaseEngineSpec is not None:
    _KIND_TYPES = {
        "string": (_sa_types.String(), GenericDataType.STRING),
        "integer": (_sa_types.Integer(), GenericDataType.NUMERIC),
        "bigint": (_sa_types.BigInteger(), GenericDataType.NUMERIC),
        "float": (_sa_types.Float(), GenericDataType.NUMERIC),
        "decimal": (_sa_types.Numeric(), GenericDataType.NUMERIC),
        "boolean": (_sa_types.Boolean(), GenericDataType.BOOLEAN),
        "timestamp": (_sa_types.TIMESTAMP(timezone=True), GenericDataType.TEMPORAL),
        "date": (_sa_types.Date(), GenericDataType.TEMPORAL),
        "time": (_sa_types.Time(), GenericDataType.TEMPORAL),
    }

    class AwsFlightSqlEngineSpec(BaseEngineSpec):
        """aws-flightsql (DataFusion SQL over Arrow Flight SQL) through flightsql-dbapi."""

        engine = "datafusion"
        engine_name = "aws-flightsql (DataFusion over Flight SQL)"
        drivers = {"flightsql": "flightsql-dbapi 0.2.2"}
        default_driver = "flightsql"
        sqlalchemy_uri_placeholder = "datafusion://host:50051?insecure=true"

        _time_grain_expressions = TIME_GRAIN_EXPRESSIONS
        column_type_mappings = tuple(
            (pattern, *_KIND_TYPES[kind]) for pattern, kind in _TYPE_PATTERNS
        )

        @classmethod
        def epoch_to_dttm(cls) -> str:
            return EPOCH_TO_DTTM

        @classmethod
        def epoch_ms_to_dttm(cls) -> str:
            return EPOCH_MS_TO_DTTM

        @classmethod
        def convert_dttm(
            cls, target_type: str, dttm: datetime, db_extra: dict[str, Any] | None = None
        ) -> str | None:
            return convert_dttm(target_type, dttm)

        @classmethod
        def get_datatype(cls, type_code: Any) -> str | None:
            return datatype_name(type_code)
