"""The ADBC Flight SQL driver against a server with TLS and a users file: grpc+tls:// with
the test CA trusted (and with verification skipped), user name and password (the driver's
handshake and bearer token), wrong passwords refused, a read user's INSERT refused before
any AWS call. Certificates are made at run time with trustme."""

import json
import os
import subprocess
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import boto3
import pytest
import trustme

from conftest import BIN_DIR, BinaryStack

REGIONS = ["us-east-1", "eu-west-1"]
ALICE = ("alice", "alice-adbc-password")
BOB = ("bob", "bob-adbc-password")


def _users_entry(user, password, role):
    """A users file entry, from `aws-flightsql hash-password` reading standard input."""
    out = subprocess.run(
        [os.path.join(BIN_DIR, "aws-flightsql"), "hash-password", "--user", user, "--role", role],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert password not in out.stdout
    return out.stdout


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp / "server.pem", tmp / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    users = tmp / "users.toml"
    users.write_text(_users_entry(*ALICE, "write") + "\n" + _users_entry(*BOB, "read"))
    regions = ["--regions", ",".join(REGIONS)]
    s = BinaryStack(
        [*regions, "--tasks-per-region", "20", "--seed", "5", "--freeze-time"],
        [
            *regions,
            "--tls-cert", str(cert_path),
            "--tls-key", str(key_path),
            "--users-file", str(users),
        ],
    )
    yield {"uri": s.uri, "ca": ca.cert_pem.bytes().decode(), "emulator_url": s.emulator_url}
    s.stop()


def _connect(secured, user, **options):
    kwargs = {"username": user[0], "password": user[1]}
    kwargs.update(options)
    return flightsql.connect(secured["uri"], db_kwargs=kwargs, autocommit=True)


def _trusted(secured):
    return {"adbc.flight.sql.client_option.tls_root_certs": secured["ca"]}


def test_the_server_speaks_grpc_tls_with_users(secured):
    assert secured["uri"].startswith("grpc+tls://127.0.0.1:")
    with _connect(secured, BOB, **_trusted(secured)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM store_image_tasks")
        assert cur.fetchone()[0] == 2 * 20
        # Parameters and a second statement ride on the same token.
        cur.execute("SELECT amiId FROM store_image_tasks WHERE region = $1", parameters=("eu-west-1",))
        assert len(cur.fetchall()) == 20


def test_verification_can_be_skipped_but_an_unknown_ca_is_refused(secured):
    skip = {"adbc.flight.sql.client_option.tls_skip_verify": "true"}
    with _connect(secured, BOB, **skip) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetchone()[0] == 1
    other = trustme.CA().cert_pem.bytes().decode()
    with pytest.raises(adbc_driver_manager.Error) as refused:
        with _connect(
            secured, BOB, **{"adbc.flight.sql.client_option.tls_root_certs": other}
        ) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            cur.fetchall()
    assert "certificate" in str(refused.value).lower(), refused.value


def test_plaintext_and_wrong_passwords_are_refused(secured):
    plain = secured["uri"].replace("grpc+tls://", "grpc://")
    with pytest.raises(adbc_driver_manager.Error):
        with flightsql.connect(
            plain, db_kwargs={"username": BOB[0], "password": BOB[1]}, autocommit=True
        ) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
    with pytest.raises(adbc_driver_manager.Error) as refused:
        with _connect(secured, (BOB[0], "not-bobs-password"), **_trusted(secured)) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
    message = str(refused.value)
    assert "Unauthenticated" in message or "UNAUTHENTICATED" in message, message
    assert "not-bobs-password" not in message


def _tasks(secured, region):
    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=secured["emulator_url"],
        aws_access_key_id="AKIDADBCTLS",
        aws_secret_access_key="adbc-tls-secret",
    )
    return ec2.describe_store_image_tasks()["StoreImageTaskResults"]


def test_a_read_user_cannot_insert_and_a_write_user_can(secured):
    before = len(_tasks(secured, "eu-west-1"))
    # An AMI the emulator can store, and a bucket: its hooks list them.
    with urllib.request.urlopen(secured["emulator_url"] + "/_emulator/state") as response:
        state = json.loads(response.read())["regions"]["eu-west-1"]
    ami, bucket = state["amis"][0], state["buckets"][0]
    insert = (
        "INSERT INTO store_image_tasks (region, amiId, bucket) "
        f"VALUES ('eu-west-1', '{ami}', '{bucket}')"
    )
    with _connect(secured, BOB, **_trusted(secured)) as conn, conn.cursor() as cur:
        cur.execute("SET aws.dry_run = false")
        with pytest.raises(adbc_driver_manager.Error) as refused:
            cur.execute(insert)
            cur.fetchall()
    assert "PermissionDenied" in str(refused.value) or "PERMISSION_DENIED" in str(refused.value)
    assert "role `read`" in str(refused.value)
    assert len(_tasks(secured, "eu-west-1")) == before
    with _connect(secured, ALICE, **_trusted(secured)) as conn, conn.cursor() as cur:
        cur.execute(insert)
        assert cur.fetchone()[0] == 1
    assert len(_tasks(secured, "eu-west-1")) == before + 1
