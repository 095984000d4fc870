"""Fidelity of the emulator's organization side (accounts, STS, Organizations), checked with
AWS's own Python client.

botocore parses STS's XML and Organizations' JSON 1.1 strictly against the service models:
if these tests pass, GetCallerIdentity, AssumeRole, ListAccounts and their errors have AWS's
shape, and credentials from AssumeRole act in the role's account on the EC2 side.
"""

import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import ORG_ACCOUNTS, ORG_EXTERNAL_ID, ORG_EXTERNAL_ID_ROLE, ORG_UNASSUMABLE_ROLE

HOME = "111111111111"
MEMBER = "100000000002"
READER = f"arn:aws:iam::{MEMBER}:role/Reader"
REGION = "us-east-1"


def expect_error(code, call, *args, **kwargs):
    """Runs a call that must fail with ``code``; checks the request id; returns the response."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    assert err["Error"]["Code"] == code, err
    assert err["Error"]["Message"], err
    request_id = err["ResponseMetadata"]["RequestId"]
    assert len(request_id) == 36, err
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == request_id
    return err


def assume(emulator, role=READER, **kwargs):
    sts = emulator.service_client("sts")
    return sts.assume_role(RoleArn=role, RoleSessionName="boto3-test", **kwargs)


def test_get_caller_identity_of_the_home_account(org_emulator):
    identity = org_emulator.service_client("sts").get_caller_identity()
    assert identity["Account"] == HOME
    assert identity["Arn"] == f"arn:aws:iam::{HOME}:user/emulator"
    assert identity["UserId"].startswith("AIDA")
    assert len(identity["ResponseMetadata"]["RequestId"]) == 36


def test_assume_role_gives_credentials_of_the_roles_account(org_emulator):
    answer = assume(org_emulator, DurationSeconds=900)
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["SecretAccessKey"] and creds["SessionToken"]
    lifetime = (creds["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 890 <= lifetime <= 901, lifetime
    user = answer["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/Reader/boto3-test"
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":boto3-test")

    identity = org_emulator.service_client("sts", credentials=creds).get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"] == user["Arn"]
    assert identity["UserId"] == user["AssumedRoleId"]
    assert assume(org_emulator)["Credentials"]["AccessKeyId"] != creds["AccessKeyId"]


def test_assume_role_refusals_are_access_denied(org_emulator):
    caller = f"arn:aws:iam::{HOME}:user/emulator"
    for role, kwargs in [
        ("arn:aws:iam::222222222222:role/Reader", {}),
        (ORG_UNASSUMABLE_ROLE, {}),
        (ORG_EXTERNAL_ID_ROLE, {}),
        (ORG_EXTERNAL_ID_ROLE, {"ExternalId": "not-the-id"}),
    ]:
        err = expect_error("AccessDenied", assume, org_emulator, role, **kwargs)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert err["Error"]["Type"] == "Sender"
        assert err["Error"]["Message"] == (
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"
        )
    assert assume(org_emulator, ORG_EXTERNAL_ID_ROLE, ExternalId=ORG_EXTERNAL_ID)["Credentials"]
    # The hook makes a role unassumable at run time.
    org_emulator.configure(accounts={MEMBER: {"unassumable_roles": [READER]}})
    expect_error("AccessDenied", assume, org_emulator)
    err = expect_error("ValidationError", assume, org_emulator, READER, DurationSeconds=43201)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_accounts_through_the_paginator(org_emulator):
    org_emulator.configure(suspended_accounts=["100000000003"])
    client = org_emulator.service_client("organizations")
    pages = list(client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 3}))
    assert len(pages) == 2
    assert "NextToken" in pages[0] and "NextToken" not in pages[-1]
    accounts = [a for page in pages for a in page["Accounts"]]
    assert [a["Id"] for a in accounts] == [HOME] + [f"10000000000{i}" for i in range(1, ORG_ACCOUNTS)]
    assert [a["Name"] for a in accounts] == ["management", "member-01", "member-02", "member-03"]
    assert [a["Status"] for a in accounts] == ["ACTIVE", "ACTIVE", "ACTIVE", "SUSPENDED"]
    for account in accounts:
        assert account["Arn"] == f"arn:aws:organizations::{HOME}:account/o-emulator/{account['Id']}"
        assert account["Email"] == f"account-{account['Id']}@example.com"
        assert account["JoinedMethod"] in ("INVITED", "CREATED")
        assert isinstance(account["JoinedTimestamp"], datetime)
    # The default page holds them all.
    assert len(client.list_accounts()["Accounts"]) == ORG_ACCOUNTS
    err = expect_error("InvalidInputException", client.list_accounts, NextToken="bm9wZQ")
    assert err["Reason"] == "INVALID_NEXT_TOKEN"
    # A suspended account's roles cannot be assumed.
    expect_error("AccessDenied", assume, org_emulator, "arn:aws:iam::100000000003:role/Reader")


def test_only_the_management_account_lists_accounts(org_emulator):
    creds = assume(org_emulator)["Credentials"]
    member = org_emulator.service_client("organizations", credentials=creds)
    err = expect_error("AccessDeniedException", member.list_accounts)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Message"] == "You don't have permissions to access this resource."


def test_assumed_credentials_see_their_accounts_tasks_only(org_emulator):
    creds = assume(org_emulator)["Credentials"]
    member = org_emulator.service_client("ec2", "eu-west-1", credentials=creds)
    home = org_emulator.service_client("ec2", "eu-west-1")
    org_emulator.clear_requests()

    def listed(client):
        pages = client.get_paginator("describe_store_image_tasks").paginate(
            PaginationConfig={"PageSize": 15}
        )
        return [t["AmiId"] for page in pages for t in page["StoreImageTaskResults"]]

    member_amis = listed(member)
    assert member_amis == [t["amiId"] for t in org_emulator.tasks("eu-west-1", account=MEMBER)]
    home_amis = listed(home)
    assert home_amis == [t["amiId"] for t in org_emulator.tasks("eu-west-1")]
    assert len(member_amis) == 40 and not set(member_amis) & set(home_amis)
    log = org_emulator.requests()
    assert [r["account"] for r in log] == [MEMBER] * 3 + [HOME] * 3
    assert all(r["service"] == "ec2" and r["region"] == "eu-west-1" for r in log)

    # A task created with the member's credentials exists in the member's account only.
    state = org_emulator.state(account=MEMBER)["regions"]["eu-west-1"]
    assert state["buckets"][0] == f"ami-archive-{MEMBER}-eu-west-1"
    ami = state["amis"][0]
    member.create_store_image_task(ImageId=ami, Bucket=state["buckets"][0])
    [task] = member.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert task["StoreTaskState"] == "InProgress"
    assert ami not in [t["amiId"] for t in org_emulator.tasks("eu-west-1")]
    expect_error(
        "InvalidAMIID.NotFound",
        home.create_store_image_task,
        ImageId=ami,
        Bucket=org_emulator.state()["regions"]["eu-west-1"]["buckets"][0],
    )


def test_a_region_disabled_in_one_account(org_emulator):
    org_emulator.configure(accounts={MEMBER: {"disabled_regions": ["us-west-2"]}})
    creds = assume(org_emulator)["Credentials"]
    member = org_emulator.service_client("ec2", "us-west-2", credentials=creds, single_attempt=True)
    err = expect_error("AuthFailure", member.describe_store_image_tasks)
    assert "us-west-2" in err["Error"]["Message"]
    org_emulator.service_client("ec2", "us-west-2").describe_store_image_tasks(MaxResults=5)
    regions = org_emulator.service_client("ec2", REGION, credentials=creds).describe_regions()
    status = {r["RegionName"]: r["OptInStatus"] for r in regions["Regions"]}
    assert status["us-west-2"] == "not-opted-in" and status[REGION] == "opt-in-not-required"


def test_expired_credentials_are_refused_with_each_services_code(org_emulator):
    org_emulator.configure(accounts={MEMBER: {"credential_seconds": 1}})
    creds = assume(org_emulator)["Credentials"]
    # Credentials expire in real time: wait for the instant AssumeRole named.
    remaining = (creds["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert remaining <= 2
    time.sleep(max(0.0, remaining) + 0.05)
    ec2 = org_emulator.service_client("ec2", REGION, credentials=creds, single_attempt=True)
    err = expect_error("RequestExpired", ec2.describe_store_image_tasks)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Message"] == "Request has expired."
    sts = org_emulator.service_client("sts", credentials=creds, single_attempt=True)
    err = expect_error("ExpiredToken", sts.get_caller_identity)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Error"]["Message"] == "The security token included in the request is expired"
    orgs = org_emulator.service_client("organizations", credentials=creds, single_attempt=True)
    err = expect_error("ExpiredTokenException", orgs.list_accounts)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403

    forged = dict(creds, AccessKeyId="ASIAFORGEDFORGED0000")
    ec2 = org_emulator.service_client("ec2", REGION, credentials=forged, single_attempt=True)
    expect_error("AuthFailure", ec2.describe_store_image_tasks)
    sts = org_emulator.service_client("sts", credentials=forged, single_attempt=True)
    expect_error("InvalidClientTokenId", sts.get_caller_identity)


def test_faults_apply_to_sts_and_organizations(org_emulator):
    creds = assume(org_emulator)["Credentials"]
    org_emulator.configure(throttle_rps=0.01)
    sts = org_emulator.service_client("sts", single_attempt=True)
    sts.get_caller_identity()
    err = expect_error("Throttling", sts.get_caller_identity)
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Throttling is counted per account and region: the member has its own budget.
    member_sts = org_emulator.service_client("sts", credentials=creds, single_attempt=True)
    assert member_sts.get_caller_identity()["Account"] == MEMBER
    # Organizations calls of the home account share the home account's us-east-1 budget.
    orgs = org_emulator.service_client("organizations", single_attempt=True)
    expect_error("TooManyRequestsException", orgs.list_accounts)
    org_emulator.configure(throttle_rps=None, fail_rate=1.0)
    expect_error("InternalFailure", sts.get_caller_identity)
    expect_error("ServiceException", orgs.list_accounts)
    org_emulator.configure(fail_rate=0.0)
    log = org_emulator.requests()
    assert [r["service"] for r in log[-2:]] == ["sts", "organizations"]
    assert all(r["account"] == HOME for r in log[-2:])
