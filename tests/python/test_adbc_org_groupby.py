"""An organization-wide GROUP BY through the ADBC Flight SQL driver equals what boto3 reads
account by account: the server reaches the members through roles (``--account ID=ROLE``),
boto3 assumes the same roles with STS and pages DescribeStoreImageTasks in each region, all
against the organization emulator binary."""

import os
from collections import Counter

import adbc_driver_flightsql.dbapi as flightsql

from conftest import BIN_DIR, EMULATOR_REGIONS, ORG_ACCOUNTS, start_binary, stop_process

HOME = "111111111111"
MEMBERS = [f"10000000000{i}" for i in range(1, ORG_ACCOUNTS)]


def reader(account):
    return f"arn:aws:iam::{account}:role/Reader"


def start_server(emulator):
    """The server binary reading the organization emulator: its own (home) account and every
    member through its Reader role."""
    accounts = [arg for m in MEMBERS for arg in ("--account", f"{m}={reader(m)}")]
    return start_binary(
        [
            os.path.join(BIN_DIR, "aws-flightsql"), "serve",
            "--listen", "127.0.0.1:0",
            "--endpoint-url", emulator.url,
            "--regions", ",".join(EMULATOR_REGIONS),
            *accounts,
        ],
        "aws-flightsql listening on ",
    )


def boto3_counts(emulator):
    """(account, region, storeTaskState) -> tasks, read with boto3: the home account with its
    own keys, each member with the credentials of AssumeRole on its Reader role."""
    sts = emulator.service_client("sts")
    credentials = {HOME: None}
    for member in MEMBERS:
        answer = sts.assume_role(RoleArn=reader(member), RoleSessionName="boto3-groupby")
        credentials[member] = answer["Credentials"]
    counts = Counter()
    for account, creds in credentials.items():
        assert (
            emulator.service_client("sts", credentials=creds).get_caller_identity()["Account"]
            == account
        )
        for region in EMULATOR_REGIONS:
            ec2 = emulator.service_client("ec2", region, credentials=creds)
            # Small pages: the listing takes several calls per region.
            pages = ec2.get_paginator("describe_store_image_tasks").paginate(
                PaginationConfig={"PageSize": 10}
            )
            for page in pages:
                for task in page["StoreImageTaskResults"]:
                    counts[(account, region, task["StoreTaskState"])] += 1
    return counts


def test_organization_wide_group_by_equals_boto3_per_account(org_emulator):
    server, uri, stderr = start_server(org_emulator)
    try:
        with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT account, region, storeTaskState, count(*) AS n "
                "FROM aws.ec2.store_image_tasks "
                "GROUP BY account, region, storeTaskState "
                "ORDER BY account, region, storeTaskState"
            )
            assert [d[0] for d in cur.description] == [
                "account", "region", "storeTaskState", "n",
            ]
            rows = cur.fetchall()
    finally:
        stop_process(server, stderr)
    want = boto3_counts(org_emulator)
    got = {(account, region, state): n for account, region, state, n in rows}
    assert got == dict(want)
    # Every account and region answered, and the accounts hold data of their own.
    assert {(a, r) for a, r, _ in got} == {
        (a, r) for a in [HOME, *MEMBERS] for r in EMULATOR_REGIONS
    }
    per_account = Counter()
    for (account, _, _), n in got.items():
        per_account[account] += n
    assert len(per_account) == ORG_ACCOUNTS
    # ORDER BY account, region, storeTaskState held.
    assert [r[:3] for r in rows] == sorted(r[:3] for r in rows)
