"""An organization through the ADBC Flight SQL driver with ``aws.on_account_error = 'skip'``:
the accounts the server cannot reach are left out, and the driver shows which, why, with
AWS's code and request id, in the result's schema metadata (``aws_flightsql.skipped_accounts``).
The rows are what boto3 reads, account by account, for the accounts and regions not skipped."""

import json

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pytest

from conftest import BinaryStack

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
HOME = "111111111111"
MEMBERS = ["100000000001", "100000000002", "100000000003"]
REFUSED = "arn:aws:iam::100000000002:role/reader"
DISABLED = ("100000000001", "eu-west-1")
KEY = "aws_flightsql.skipped_accounts"


def role(account):
    return f"arn:aws:iam::{account}:role/reader"


@pytest.fixture(scope="module")
def stack():
    regions = ["--regions", ",".join(REGIONS)]
    emulator = [
        *regions, "--accounts", "4", "--tasks-per-region", "40", "--seed", "11",
        "--freeze-time", "--unassumable-role", REFUSED,
        "--disabled-region", f"{DISABLED[0]}={DISABLED[1]}",
    ]
    server = [*regions]
    for account in MEMBERS:
        server += ["--account", f"{account}={role(account)}"]
    s = BinaryStack(emulator, server)
    yield s
    s.stop()


def boto3_rows(url, account, region):
    """(account, region, amiId) of every task boto3 lists in ``account``'s ``region``."""
    keys = {"aws_access_key_id": "AKIDORGTEST", "aws_secret_access_key": "org-test-secret"}
    if account != HOME:
        sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", **keys)
        creds = sts.assume_role(RoleArn=role(account), RoleSessionName="test")["Credentials"]
        keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    ec2 = boto3.client("ec2", endpoint_url=url, region_name=region, **keys)
    return [
        (account, region, t["AmiId"])
        for page in ec2.get_paginator("describe_store_image_tasks").paginate()
        for t in page["StoreImageTaskResults"]
    ]


def connect(stack):
    return flightsql.connect(
        stack.uri,
        autocommit=True,
        db_kwargs={"adbc.flight.sql.rpc.with_cookie_middleware": "true"},
    )


def test_the_default_fails_naming_the_account_and_the_role(stack):
    with connect(stack) as conn, conn.cursor() as cur:
        with pytest.raises(Exception) as err:
            cur.execute("SELECT count(*) FROM store_image_tasks")
            cur.fetchall()
    message = str(err.value)
    assert f"AssumeRole of role {REFUSED} for account 100000000002" in message, message
    assert "AccessDenied" in message, message


@pytest.mark.parametrize("how", ["set", "session_option"])
def test_skipped_accounts_are_in_the_schema_metadata(stack, how):
    with connect(stack) as conn, conn.cursor() as cur:
        if how == "set":
            cur.execute("SET aws.on_account_error = 'skip'")
        else:
            prefix = adbc_driver_flightsql.ConnectionOptions.OPTION_SESSION_OPTION_PREFIX.value
            conn.adbc_connection.set_options(**{prefix + "aws.on_account_error": "skip"})
        cur.execute("SELECT account, region, amiId FROM store_image_tasks")
        reader = cur.fetch_record_batch()
        metadata = reader.schema.metadata or {}
        table = reader.read_all()
    skipped = json.loads(metadata[KEY.encode()])
    by_account = {s["account"]: s for s in skipped}
    assert sorted(by_account) == ["100000000001", "100000000002"], skipped
    refused = by_account["100000000002"]
    assert refused["reason"] == "assume_role"
    assert refused["role_arn"] == REFUSED
    assert refused["code"] == "AccessDenied"
    assert refused["request_id"]
    region = by_account["100000000001"]
    assert (region["reason"], region["region"]) == ("region_not_enabled", "eu-west-1")

    got = sorted(
        (r["account"], r["region"], r["amiId"]) for r in table.to_pylist()
    )
    want = sorted(
        row
        for account, regions in [
            (HOME, REGIONS),
            ("100000000001", ["us-east-1", "us-west-2"]),
            ("100000000003", REGIONS),
        ]
        for region in regions
        for row in boto3_rows(stack.emulator_url, account, region)
    )
    assert len(want) == 8 * 40
    assert got == want
