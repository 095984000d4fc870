"""Fidelity of the EC2 emulator, checked with AWS's own Python client.

botocore parses EC2's XML strictly against the service model: if these tests pass, the
emulator's answers (items, timestamps, tokens, errors and request ids) have AWS's shape.
The emulator runs with a frozen clock, so its hooks and the API agree without races.
"""

import re
from collections import Counter

import botocore
import pytest
from botocore.exceptions import ClientError, WaiterError

REGION = "us-east-1"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def iso(timestamp):
    """botocore's datetime back in the API's format (UTC, milliseconds)."""
    assert timestamp.utcoffset().total_seconds() == 0
    return timestamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp.microsecond // 1000:03d}Z"


def from_api(item):
    """A StoreImageTaskResult as the hook spells it."""
    row = {
        "amiId": item["AmiId"],
        "taskStartTime": iso(item["TaskStartTime"]),
        "bucket": item["Bucket"],
        "s3objectKey": item["S3objectKey"],
        "progressPercentage": item["ProgressPercentage"],
        "storeTaskState": item["StoreTaskState"],
    }
    if "StoreTaskFailureReason" in item:
        row["storeTaskFailureReason"] = item["StoreTaskFailureReason"]
    return row


def from_hook(task, region):
    assert task["region"] == region
    return {k: v for k, v in task.items() if k not in ("region", "s3ObjectTags")}


def expect_error(code, call, *args, **kwargs):
    """Runs a call that must fail with ``code``; checks the request id; returns the error."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    err = info.value.response
    assert err["Error"]["Code"] == code, err
    assert err["Error"]["Message"]
    request_id = err["ResponseMetadata"]["RequestId"]
    assert UUID.match(request_id), err
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == request_id
    return info.value


def list_all(client, **kwargs):
    paginator = client.get_paginator("describe_store_image_tasks")
    pages = list(paginator.paginate(**kwargs))
    return [item for page in pages for item in page["StoreImageTaskResults"]], pages


def storable(emulator, region):
    return emulator.state()["regions"][region]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_paginator_lists_exactly_what_the_emulator_holds(emulator, region):
    client = emulator.client(region)
    items, pages = list_all(client, PaginationConfig={"PageSize": 37})
    expected = [from_hook(t, region) for t in emulator.tasks(region)]
    assert len(expected) >= 250
    assert [from_api(i) for i in items] == expected
    assert len(pages) == -(-len(expected) // 37)
    assert all(len(p["StoreImageTaskResults"]) <= 37 for p in pages)
    assert "NextToken" not in pages[-1]
    assert all(p["ResponseMetadata"]["HTTPStatusCode"] == 200 for p in pages)
    states = Counter(i["StoreTaskState"] for i in items)
    assert set(states) == {"InProgress", "Completed", "Failed"}
    for item in items:
        assert isinstance(item["ProgressPercentage"], int)
        assert item["S3objectKey"] == item["AmiId"] + ".bin"
        assert ("StoreTaskFailureReason" in item) == (item["StoreTaskState"] == "Failed")
        if item["StoreTaskState"] == "Completed":
            assert item["ProgressPercentage"] == 100
    starts = [i["TaskStartTime"] for i in items]
    assert starts == sorted(starts, reverse=True)


def test_default_page_is_200_with_a_token(emulator):
    client = emulator.client(REGION)
    first = client.describe_store_image_tasks()
    assert len(first["StoreImageTaskResults"]) == 200
    assert first["NextToken"]
    second = client.describe_store_image_tasks(NextToken=first["NextToken"], MaxResults=200)
    assert len(second["StoreImageTaskResults"]) == len(emulator.tasks(REGION)) - 200
    assert "NextToken" not in second
    one = client.describe_store_image_tasks(MaxResults=1)
    assert len(one["StoreImageTaskResults"]) == 1 and one["NextToken"]


@pytest.mark.parametrize("state", ["InProgress", "Completed", "Failed"])
def test_task_state_filter(emulator, state):
    client = emulator.client(REGION)
    items, _ = list_all(
        client,
        Filters=[{"Name": "task-state", "Values": [state]}],
        PaginationConfig={"PageSize": 50},
    )
    expected = [from_hook(t, REGION) for t in emulator.tasks(REGION) if t["storeTaskState"] == state]
    assert expected
    assert [from_api(i) for i in items] == expected


def test_bucket_filter_and_combined_filters(emulator):
    client = emulator.client(REGION)
    buckets = storable(emulator, REGION)["buckets"]
    tasks = emulator.tasks(REGION)

    items, _ = list_all(client, Filters=[{"Name": "bucket", "Values": [buckets[0]]}])
    assert [from_api(i) for i in items] == [from_hook(t, REGION) for t in tasks if t["bucket"] == buckets[0]]

    items, _ = list_all(
        client,
        Filters=[
            {"Name": "bucket", "Values": buckets[:2]},
            {"Name": "task-state", "Values": ["Completed", "Failed"]},
        ],
        PaginationConfig={"PageSize": 10},
    )
    expected = [
        from_hook(t, REGION)
        for t in tasks
        if t["bucket"] in buckets[:2] and t["storeTaskState"] in ("Completed", "Failed")
    ]
    assert expected
    assert [from_api(i) for i in items] == expected


def test_image_ids_ignore_filters_and_max_20(emulator):
    client = emulator.client(REGION)
    tasks = emulator.tasks(REGION)
    counts = Counter(t["amiId"] for t in tasks)
    twice = next(ami for ami, n in counts.items() if n >= 2)
    # AMIs that never had a task come first in the state hook.
    fresh = storable(emulator, REGION)["amis"][0]
    assert fresh not in counts

    answer = client.describe_store_image_tasks(
        ImageIds=[twice, fresh],
        Filters=[{"Name": "task-state", "Values": ["NoSuchState"]}],
    )
    assert "NextToken" not in answer
    assert [from_api(i) for i in answer["StoreImageTaskResults"]] == [
        from_hook(t, REGION) for t in tasks if t["amiId"] == twice
    ]
    assert len(answer["StoreImageTaskResults"]) == counts[twice]

    assert client.describe_store_image_tasks(ImageIds=[fresh])["StoreImageTaskResults"] == []
    ids = [f"ami-{i:08x}" for i in range(1, 22)]
    assert client.describe_store_image_tasks(ImageIds=ids[:20])["StoreImageTaskResults"] == []
    expect_error("InvalidParameterValue", client.describe_store_image_tasks, ImageIds=ids)


def test_describe_parameter_errors(emulator):
    client = emulator.client(REGION)
    expect_error("InvalidParameterValue", client.describe_store_image_tasks, MaxResults=201)
    # botocore refuses MaxResults below its model's minimum itself; the server must too.
    unchecked = emulator.client(REGION, parameter_validation=False)
    expect_error("InvalidParameterValue", unchecked.describe_store_image_tasks, MaxResults=0)
    expect_error(
        "InvalidParameterCombination",
        client.describe_store_image_tasks,
        ImageIds=[storable(emulator, REGION)["amis"][0]],
        MaxResults=5,
    )
    expect_error("InvalidAMIID.Malformed", client.describe_store_image_tasks, ImageIds=["ami-xyz"])
    expect_error(
        "InvalidParameterValue",
        client.describe_store_image_tasks,
        Filters=[{"Name": "owner-id", "Values": ["123456789012"]}],
    )
    expect_error("InvalidPaginationToken", client.describe_store_image_tasks, NextToken="not-a-token")
    # A token is bound to its region and filters.
    token = client.describe_store_image_tasks(MaxResults=5)["NextToken"]
    expect_error(
        "InvalidPaginationToken", emulator.client("us-west-2").describe_store_image_tasks, NextToken=token
    )
    expect_error(
        "InvalidPaginationToken",
        client.describe_store_image_tasks,
        NextToken=token,
        Filters=[{"Name": "task-state", "Values": ["Failed"]}],
    )
    err = expect_error("DryRunOperation", client.describe_store_image_tasks, DryRun=True)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.response["Error"]["Message"] == "Request would have succeeded, but DryRun flag is set."


def test_create_then_describe_and_wait(emulator):
    client = emulator.client(REGION)
    state = storable(emulator, REGION)
    ami, bucket = state["amis"][0], state["buckets"][0]

    dry = expect_error("DryRunOperation", client.create_store_image_task, ImageId=ami, Bucket=bucket, DryRun=True)
    assert dry.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"] == []

    created = client.create_store_image_task(
        ImageId=ami, Bucket=bucket, S3ObjectTags=[{"Key": "team", "Value": "data"}]
    )
    assert created["ObjectKey"] == f"{ami}.bin"
    assert UUID.match(created["ResponseMetadata"]["RequestId"])
    tagged = [t for t in emulator.tasks(REGION) if t["amiId"] == ami]
    assert tagged[0]["s3ObjectTags"] == [{"key": "team", "value": "data"}]

    [task] = client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert (task["StoreTaskState"], task["ProgressPercentage"]) == ("InProgress", 0)
    assert task["Bucket"] == bucket and task["S3objectKey"] == f"{ami}.bin"
    newest = client.describe_store_image_tasks(MaxResults=1)["StoreImageTaskResults"][0]
    assert newest["AmiId"] == ami
    assert ami not in storable(emulator, REGION)["amis"]

    err = expect_error("InvalidParameterValue", client.create_store_image_task, ImageId=ami, Bucket=bucket)
    assert "in progress" in err.response["Error"]["Message"]

    emulator.configure(advance_seconds=30)
    [task] = client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert (task["StoreTaskState"], task["ProgressPercentage"]) == ("InProgress", 50)

    emulator.configure(advance_seconds=30)
    waiter = client.get_waiter("store_image_task_complete")
    waiter.wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    [task] = client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert (task["StoreTaskState"], task["ProgressPercentage"]) == ("Completed", 100)
    assert ami in storable(emulator, REGION)["amis"]


def test_unknown_bucket_fails_and_the_waiter_sees_it(emulator):
    client = emulator.client("us-west-2")
    ami = storable(emulator, "us-west-2")["amis"][0]
    client.create_store_image_task(ImageId=ami, Bucket="someone-elses-bucket")
    emulator.configure(advance_seconds=30)
    [task] = client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert (task["StoreTaskState"], task["ProgressPercentage"]) == ("Failed", 50)
    assert "someone-elses-bucket" in task["StoreTaskFailureReason"]
    with pytest.raises(WaiterError):
        client.get_waiter("store_image_task_complete").wait(
            ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 2}
        )


def test_create_errors(emulator):
    client = emulator.client(REGION)
    state = storable(emulator, REGION)
    bucket = state["buckets"][0]
    before = emulator.tasks(REGION)
    err = expect_error("InvalidAMIID.NotFound", client.create_store_image_task, ImageId="ami-0123456789abcdef0", Bucket=bucket)
    assert err.response["Error"]["Message"] == "The image id '[ami-0123456789abcdef0]' does not exist"
    expect_error("InvalidAMIID.Malformed", client.create_store_image_task, ImageId="ami-12", Bucket=bucket)
    running = next(t["amiId"] for t in before if t["storeTaskState"] == "InProgress")
    expect_error("InvalidParameterValue", client.create_store_image_task, ImageId=running, Bucket=bucket)
    # botocore checks required parameters itself; without that check the server must.
    unchecked = emulator.client(REGION, parameter_validation=False)
    err = expect_error("MissingParameter", unchecked.create_store_image_task, ImageId=state["amis"][0])
    assert "Bucket" in err.response["Error"]["Message"]
    err = expect_error("MissingParameter", unchecked.create_store_image_task, Bucket=bucket)
    assert "ImageId" in err.response["Error"]["Message"]
    assert emulator.tasks(REGION) == before


def test_describe_regions(emulator):
    regions = emulator.client("eu-west-1").describe_regions()["Regions"]
    by_name = {r["RegionName"]: r for r in regions}
    usable = sorted(n for n, r in by_name.items() if r["OptInStatus"] in ("opt-in-not-required", "opted-in"))
    assert usable == sorted(["us-east-1", "us-west-2", "eu-west-1"])
    assert sorted(n for n, r in by_name.items() if r["OptInStatus"] == "not-opted-in") == ["af-south-1", "me-south-1"]
    assert all(r["Endpoint"] == f"ec2.{n}.amazonaws.com" for n, r in by_name.items())


def test_credentials_select_and_guard_the_region(emulator):
    err = expect_error("AuthFailure", emulator.client("af-south-1").describe_store_image_tasks)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert "af-south-1" in err.response["Error"]["Message"]
    unsigned = emulator.client(REGION, signature_version=botocore.UNSIGNED)
    err = expect_error("MissingAuthenticationToken", unsigned.describe_store_image_tasks)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 401


def test_denied_actions(emulator):
    emulator.configure(deny_actions=["CreateStoreImageTask", "DescribeRegions"])
    client = emulator.client(REGION)
    state = storable(emulator, REGION)
    for dry_run in (False, True):
        err = expect_error(
            "UnauthorizedOperation",
            client.create_store_image_task,
            ImageId=state["amis"][0],
            Bucket=state["buckets"][0],
            DryRun=dry_run,
        )
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    expect_error("UnauthorizedOperation", client.describe_regions)
    client.describe_store_image_tasks(MaxResults=5)


def test_throttling_is_request_limit_exceeded_and_retried(emulator):
    emulator.configure(throttle_rps=0.01)
    single = emulator.client(REGION, single_attempt=True)
    emulator.clear_requests()
    single.describe_store_image_tasks(MaxResults=5)
    err = expect_error("RequestLimitExceeded", single.describe_store_image_tasks, MaxResults=5)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert [r["status"] for r in emulator.requests()] == [200, 503]
    # Another region has its own budget.
    emulator.client("eu-west-1", single_attempt=True).describe_store_image_tasks(MaxResults=5)

    # botocore classifies it as throttling and retries it.
    emulator.clear_requests()
    retrying = emulator.client(REGION, retries={"mode": "standard", "total_max_attempts": 3})
    expect_error("RequestLimitExceeded", retrying.describe_store_image_tasks, MaxResults=5)
    log = emulator.requests()
    assert [r["status"] for r in log] == [503, 503, 503]


def test_internal_errors_are_retried(emulator):
    emulator.configure(fail_rate=1.0)
    single = emulator.client(REGION, single_attempt=True)
    emulator.clear_requests()
    err = expect_error("InternalError", single.describe_store_image_tasks)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert err.response["Error"]["Message"] == "An internal error has occurred"
    assert [r["status"] for r in emulator.requests()] == [500]
    emulator.clear_requests()
    retrying = emulator.client(REGION, retries={"mode": "standard", "total_max_attempts": 2})
    expect_error("InternalError", retrying.describe_store_image_tasks)
    assert [r["status"] for r in emulator.requests()] == [500, 500]


def test_failure_after_commit_still_creates_the_task(emulator):
    emulator.configure(fail_after_commit_rate=1.0)
    client = emulator.client("eu-west-1", single_attempt=True)
    state = storable(emulator, "eu-west-1")
    ami = state["amis"][0]
    expect_error("InternalError", client.create_store_image_task, ImageId=ami, Bucket=state["buckets"][0])
    emulator.configure(fail_after_commit_rate=0.0)
    [task] = client.describe_store_image_tasks(ImageIds=[ami])["StoreImageTaskResults"]
    assert task["StoreTaskState"] == "InProgress"


def test_request_log_shows_what_boto3_sent(emulator):
    emulator.clear_requests()
    client = emulator.client("us-west-2")
    list_all(client, Filters=[{"Name": "task-state", "Values": ["Completed"]}], PaginationConfig={"PageSize": 100})
    log = emulator.requests()
    assert len(log) >= 2
    assert all(r["region"] == "us-west-2" and r["action"] == "DescribeStoreImageTasks" for r in log)
    assert all(r["status"] == 200 for r in log)
    first = log[0]["params"]
    assert first["Filter.1.Name"] == "task-state"
    assert first["Filter.1.Value.1"] == "Completed"
    assert first["MaxResults"] == "100"
    assert first["Version"] == "2016-11-15"
    assert "NextToken" not in first
    assert all("NextToken" in r["params"] for r in log[1:])
    assert all(r["started_ms"] <= r["finished_ms"] for r in log)


def test_config_hook_rejects_bad_input(emulator):
    status, body = emulator.hook("POST", "/_emulator/config", {"fail_rate": 3})
    assert status == 400 and body["error"]
    status, body = emulator.hook("POST", "/_emulator/config", {"no_such_setting": 1})
    assert status == 400 and body["error"]
    effective = emulator.configure(latency_ms=5)
    assert effective["latency_ms"] == 5 and effective["freeze_time"] is True
