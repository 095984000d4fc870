//! DescribeStoreImageTasks and DescribeRegions over HTTP: paging, filters, ImageIds, the
//! 31-day window, determinism and the error answers.

use std::collections::{HashMap, HashSet};

use ec2_emulator::{EmulatorOptions, LISTING_WINDOW};

use crate::client::{authorization, item_key, result_items, view_key, Fixture};

const REGION: &str = "us-east-1";

#[tokio::test]
async fn paging_lists_every_task_once_newest_first() {
    let fx = Fixture::frozen().await;
    let expected: Vec<_> = fx.emulator.tasks(REGION).iter().map(view_key).collect();
    assert_eq!(expected.len(), 250);

    let (items, pages) = fx.describe_all(REGION, &[("MaxResults", "7")]).await;
    assert_eq!(pages, 250usize.div_ceil(7));
    let got: Vec<_> = items.iter().map(item_key).collect();
    assert_eq!(got, expected);
    let starts: Vec<&str> = items
        .iter()
        .map(|i| i.text_of("taskStartTime").unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Default page size: 200.
    let first = fx.describe(REGION, &[]).await;
    assert_eq!(result_items(&first).len(), 200);
    let token = first
        .xml
        .text_of("nextToken")
        .expect("more remain")
        .to_owned();
    let second = fx.describe(REGION, &[("NextToken", &token)]).await;
    assert_eq!(result_items(&second).len(), 50);
    assert_eq!(
        second.xml.text_of("nextToken"),
        None,
        "no token on the last page"
    );
    assert_eq!(second.xml.names(), ["requestId", "storeImageTaskResultSet"]);

    // An exact multiple of the page size ends without an empty page.
    let (_, pages) = fx.describe_all(REGION, &[("MaxResults", "50")]).await;
    assert_eq!(pages, 5);
}

#[tokio::test]
async fn items_have_the_contract_fields() {
    let fx = Fixture::frozen().await;
    let answer = fx.describe(REGION, &[("MaxResults", "200")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.xml.name, "DescribeStoreImageTasksResponse");
    assert_eq!(
        answer.xml.text_of("requestId").unwrap(),
        answer.request_id_header
    );
    assert!(uuid::Uuid::parse_str(&answer.request_id_header).is_ok());
    assert!(answer.content_type.starts_with("text/xml"));
    let mut states = HashSet::new();
    for item in result_items(&answer) {
        let state = item.text_of("storeTaskState").unwrap().to_owned();
        let mut expected = vec![
            "amiId",
            "taskStartTime",
            "bucket",
            "s3objectKey",
            "progressPercentage",
            "storeTaskState",
        ];
        if state == "Failed" {
            expected.push("storeTaskFailureReason");
            assert!(!item.text_of("storeTaskFailureReason").unwrap().is_empty());
        }
        assert_eq!(item.names(), expected);
        let ami = item.text_of("amiId").unwrap();
        assert_eq!(item.text_of("s3objectKey").unwrap(), format!("{ami}.bin"));
        let start = item.text_of("taskStartTime").unwrap();
        assert_eq!(start.len(), "2026-11-20T08:15:30.123Z".len(), "{start}");
        assert!(chrono::DateTime::parse_from_rfc3339(start).is_ok());
        let progress: i32 = item.text_of("progressPercentage").unwrap().parse().unwrap();
        assert!((0..=100).contains(&progress));
        states.insert(state);
    }
    assert_eq!(states.len(), 3, "every state appears: {states:?}");
}

#[tokio::test]
async fn paging_is_stable_while_tasks_are_created() {
    let fx = Fixture::frozen().await;
    let before: Vec<_> = fx.emulator.tasks(REGION).iter().map(view_key).collect();
    let first = fx.describe(REGION, &[("MaxResults", "10")]).await;
    let mut got: Vec<_> = result_items(&first).iter().map(item_key).collect();
    let mut token = first.xml.text_of("nextToken").unwrap().to_owned();

    // New tasks are the newest: an offset-based listing would repeat items now.
    let amis = fx.emulator.storable_amis(REGION);
    let bucket = &fx.emulator.buckets(REGION)[0];
    for ami in &amis[..3] {
        assert_eq!(fx.create(REGION, ami, bucket, &[]).await.status, 200);
    }
    loop {
        let page = fx
            .describe(REGION, &[("MaxResults", "10"), ("NextToken", &token)])
            .await;
        got.extend(result_items(&page).iter().map(item_key));
        match page.xml.text_of("nextToken") {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(got, before);
    assert_eq!(fx.emulator.tasks(REGION).len(), 253);
}

#[tokio::test]
async fn filters_are_anded_and_their_values_ored() {
    let fx = Fixture::frozen().await;
    let all = fx.emulator.tasks(REGION);
    let buckets = fx.emulator.buckets(REGION);
    let count =
        |pred: &dyn Fn(&ec2_emulator::TaskView) -> bool| all.iter().filter(|t| pred(t)).count();

    let (items, _) = fx
        .describe_all(
            REGION,
            &[
                ("Filter.1.Name", "task-state"),
                ("Filter.1.Value.1", "InProgress"),
            ],
        )
        .await;
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|i| i.text_of("storeTaskState") == Some("InProgress")));
    assert_eq!(items.len(), count(&|t| t.store_task_state == "InProgress"));

    let (items, _) = fx
        .describe_all(
            REGION,
            &[
                ("Filter.1.Name", "task-state"),
                ("Filter.1.Value.1", "Failed"),
                ("Filter.1.Value.2", "InProgress"),
                ("MaxResults", "5"),
            ],
        )
        .await;
    assert_eq!(items.len(), count(&|t| t.store_task_state != "Completed"));

    let (items, _) = fx
        .describe_all(
            REGION,
            &[
                ("Filter.1.Name", "bucket"),
                ("Filter.1.Value.1", &buckets[0]),
            ],
        )
        .await;
    assert_eq!(items.len(), count(&|t| t.bucket == buckets[0]));

    let (items, _) = fx
        .describe_all(
            REGION,
            &[
                ("Filter.1.Name", "bucket"),
                ("Filter.1.Value.1", &buckets[0]),
                ("Filter.1.Value.2", &buckets[1]),
                ("Filter.2.Name", "task-state"),
                ("Filter.2.Value.1", "Completed"),
                ("MaxResults", "9"),
            ],
        )
        .await;
    let expected: Vec<_> = all
        .iter()
        .filter(|t| {
            t.store_task_state == "Completed" && (t.bucket == buckets[0] || t.bucket == buckets[1])
        })
        .map(view_key)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(items.iter().map(item_key).collect::<Vec<_>>(), expected);

    let (items, _) = fx
        .describe_all(
            REGION,
            &[
                ("Filter.1.Name", "bucket"),
                ("Filter.1.Value.1", "no-such-bucket"),
            ],
        )
        .await;
    assert!(items.is_empty());

    fx.describe(
        REGION,
        &[("Filter.1.Name", "owner-id"), ("Filter.1.Value.1", "1")],
    )
    .await
    .assert_error(400, "InvalidParameterValue");
}

#[tokio::test]
async fn tokens_are_bound_to_their_listing() {
    let fx = Fixture::frozen().await;
    let filter = [
        ("Filter.1.Name", "task-state"),
        ("Filter.1.Value.1", "Completed"),
    ];
    let mut form = filter.to_vec();
    form.push(("MaxResults", "5"));
    let first = fx.describe(REGION, &form).await;
    let token = first.xml.text_of("nextToken").unwrap().to_owned();

    // Same filters, other MaxResults: fine.
    let mut next = filter.to_vec();
    next.push(("NextToken", &token));
    assert_eq!(fx.describe(REGION, &next).await.status, 200);

    // Other filters, another region, garbage.
    fx.describe(REGION, &[("NextToken", &token)])
        .await
        .assert_error(400, "InvalidPaginationToken");
    fx.describe("us-west-2", &next)
        .await
        .assert_error(400, "InvalidPaginationToken");
    fx.describe(REGION, &[("NextToken", "bm90LWEtdG9rZW4")])
        .await
        .assert_error(400, "InvalidPaginationToken");
    // An empty token is no token.
    assert_eq!(fx.describe(REGION, &[("NextToken", "")]).await.status, 200);
}

#[tokio::test]
async fn image_ids_list_every_task_of_those_amis_and_ignore_filters() {
    let fx = Fixture::frozen().await;
    let all = fx.emulator.tasks(REGION);
    let mut per_ami: HashMap<&str, usize> = HashMap::new();
    for t in &all {
        *per_ami.entry(&t.ami_id).or_default() += 1;
    }
    let twice = *per_ami
        .iter()
        .find(|(_, n)| **n >= 2)
        .expect("an AMI stored twice")
        .0;
    let once = all
        .iter()
        .find(|t| per_ami[t.ami_id.as_str()] == 1)
        .unwrap();
    let untasked = &fx.emulator.storable_amis(REGION)[0];
    assert!(!per_ami.contains_key(untasked.as_str()));

    let answer = fx
        .describe(
            REGION,
            &[
                ("ImageId.1", twice),
                ("ImageId.2", &once.ami_id),
                ("ImageId.3", untasked),
                ("ImageId.4", "ami-12345678"),
                // Ignored with ImageIds, as AWS does.
                ("Filter.1.Name", "task-state"),
                ("Filter.1.Value.1", "NoSuchState"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.xml.text_of("nextToken"), None);
    let got: Vec<_> = result_items(&answer).iter().map(item_key).collect();
    let expected: Vec<_> = all
        .iter()
        .filter(|t| t.ami_id == twice || t.ami_id == once.ami_id)
        .map(view_key)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), per_ami[twice] + 1);

    let many: Vec<String> = (1..=21).map(|i| format!("ami-{i:08x}")).collect();
    let names: Vec<String> = (1..=21).map(|i| format!("ImageId.{i}")).collect();
    let form: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(many.iter().map(String::as_str))
        .collect();
    fx.describe(REGION, &form)
        .await
        .assert_error(400, "InvalidParameterValue");
    assert_eq!(fx.describe(REGION, &form[..20]).await.status, 200);

    fx.describe(REGION, &[("ImageId.1", "ami-XYZ")])
        .await
        .assert_error(400, "InvalidAMIID.Malformed");
    fx.describe(
        REGION,
        &[("ImageId.1", "ami-12345678"), ("MaxResults", "5")],
    )
    .await
    .assert_error(400, "InvalidParameterCombination");
}

#[tokio::test]
async fn parameter_errors() {
    let fx = Fixture::frozen().await;
    for bad in ["0", "201", "-1", "many"] {
        fx.describe(REGION, &[("MaxResults", bad)])
            .await
            .assert_error(400, "InvalidParameterValue");
    }
    for good in ["1", "200"] {
        assert_eq!(
            fx.describe(REGION, &[("MaxResults", good)]).await.status,
            200
        );
    }
    let dry = fx.describe(REGION, &[("DryRun", "true")]).await;
    dry.assert_error(412, "DryRunOperation");
    assert_eq!(
        dry.error_message(),
        "Request would have succeeded, but DryRun flag is set."
    );
    // DryRun comes after validation.
    fx.describe(REGION, &[("DryRun", "true"), ("MaxResults", "0")])
        .await
        .assert_error(400, "InvalidParameterValue");
    fx.describe(REGION, &[("MaxResult", "5")])
        .await
        .assert_error(400, "UnknownParameter");
    fx.call(REGION, &[("Action", "RunInstances")])
        .await
        .assert_error(400, "InvalidAction");
    fx.call(REGION, &[("Version", "2016-11-15")])
        .await
        .assert_error(400, "InvalidAction");
}

#[tokio::test]
async fn credentials_choose_and_guard_the_region() {
    let fx = Fixture::frozen().await;
    let form = [("Action", "DescribeStoreImageTasks")];
    let missing = fx.call_with_auth(None, &form).await;
    missing.assert_error(401, "MissingAuthenticationToken");
    assert!(missing.content_type.starts_with("text/xml"));
    fx.call_with_auth(Some("Bearer xyz"), &form)
        .await
        .assert_error(401, "AuthFailure");
    let unserved = fx.call("af-south-1", &form).await;
    unserved.assert_error(401, "AuthFailure");
    assert!(unserved
        .error_message()
        .contains("'af-south-1' is not enabled for this account"));

    // Each region has its own data.
    let east = fx.describe("us-east-1", &[("MaxResults", "5")]).await;
    let west = fx.describe("us-west-2", &[("MaxResults", "5")]).await;
    assert_ne!(
        result_items(&east).iter().map(item_key).collect::<Vec<_>>(),
        result_items(&west).iter().map(item_key).collect::<Vec<_>>()
    );
    let west_items = result_items(&west);
    assert!(west_items[0]
        .text_of("bucket")
        .unwrap()
        .ends_with("-us-west-2"));
    assert_eq!(
        west_items.iter().map(item_key).collect::<Vec<_>>(),
        fx.emulator.tasks("us-west-2")[..5]
            .iter()
            .map(view_key)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn get_with_a_query_string_works_like_post() {
    let fx = Fixture::frozen().await;
    let form = [
        ("Action", "DescribeStoreImageTasks"),
        ("Version", "2016-11-15"),
        ("MaxResults", "3"),
        ("Filter.1.Name", "task-state"),
        ("Filter.1.Value.1", "Failed"),
    ];
    let via_get = fx.get(REGION, &form).await;
    let via_post = fx.call(REGION, &form).await;
    assert_eq!(via_get.status, 200);
    assert_eq!(
        result_items(&via_get)
            .iter()
            .map(item_key)
            .collect::<Vec<_>>(),
        result_items(&via_post)
            .iter()
            .map(item_key)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        via_get.xml.text_of("nextToken"),
        via_post.xml.text_of("nextToken")
    );
}

#[tokio::test]
async fn only_the_last_31_days_are_listed() {
    let fx = Fixture::frozen().await;
    let listed = fx.emulator.tasks(REGION);
    let listed_amis: HashSet<&str> = listed.iter().map(|t| t.ami_id.as_str()).collect();
    // Registered AMIs beyond the 10 without tasks and those listed: the ones whose only tasks
    // are older than 31 days.
    let hidden: Vec<String> = fx.emulator.storable_amis(REGION)[10..]
        .iter()
        .filter(|a| !listed_amis.contains(a.as_str()))
        .cloned()
        .collect();
    assert_eq!(hidden.len(), 5);
    let names: Vec<String> = (1..=hidden.len()).map(|i| format!("ImageId.{i}")).collect();
    let form: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(hidden.iter().map(String::as_str))
        .collect();
    let answer = fx.describe(REGION, &form).await;
    assert_eq!(answer.status, 200);
    assert!(result_items(&answer).is_empty());

    // Two days later, the tasks that are then older than 31 days are no longer listed.
    let oldest = listed.last().unwrap().task_start_time;
    fx.config(serde_json::json!({"advance_seconds": 2 * 86_400}))
        .await;
    let now = chrono::DateTime::parse_from_rfc3339(fx.emulator.config().now.as_str())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let expected: Vec<_> = listed
        .iter()
        .filter(|t| t.task_start_time >= now - LISTING_WINDOW)
        .map(|t| (t.ami_id.clone(), t.task_start_time))
        .collect();
    assert!(
        expected.len() < listed.len(),
        "advancing two days hides some tasks"
    );
    assert!(now - oldest > LISTING_WINDOW);
    let (items, _) = fx.describe_all(REGION, &[]).await;
    let got: Vec<_> = items
        .iter()
        .map(|i| {
            let start = chrono::DateTime::parse_from_rfc3339(i.text_of("taskStartTime").unwrap())
                .unwrap()
                .with_timezone(&chrono::Utc);
            (i.text_of("amiId").unwrap().to_owned(), start)
        })
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data() {
    async fn snapshot(seed: u64) -> Vec<(String, String, String, i32, i64, Option<String>)> {
        let fx = Fixture::start(EmulatorOptions {
            seed,
            freeze_time: true,
            ..EmulatorOptions::default()
        })
        .await;
        let now = chrono::DateTime::parse_from_rfc3339(&fx.emulator.config().now)
            .unwrap()
            .with_timezone(&chrono::Utc);
        fx.emulator
            .tasks("eu-west-1")
            .into_iter()
            .map(|t| {
                (
                    t.ami_id,
                    t.bucket,
                    t.store_task_state,
                    t.progress_percentage,
                    (now - t.task_start_time).num_milliseconds(),
                    t.store_task_failure_reason,
                )
            })
            .collect()
    }
    let a = snapshot(7).await;
    assert_eq!(a, snapshot(7).await);
    assert_ne!(a, snapshot(8).await);
}

#[tokio::test]
async fn describe_regions_lists_served_and_unusable_regions() {
    let fx = Fixture::frozen().await;
    let answer = fx
        .call(
            "eu-west-1",
            &[("Action", "DescribeRegions"), ("Version", "2016-11-15")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.xml.name, "DescribeRegionsResponse");
    let items = &answer.xml.child("regionInfo").unwrap().children;
    let regions: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i.text_of("regionName").unwrap(),
                i.text_of("regionEndpoint").unwrap(),
                i.text_of("optInStatus").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        regions,
        [
            ("af-south-1", "ec2.af-south-1.amazonaws.com", "not-opted-in"),
            (
                "eu-west-1",
                "ec2.eu-west-1.amazonaws.com",
                "opt-in-not-required"
            ),
            ("me-south-1", "ec2.me-south-1.amazonaws.com", "not-opted-in"),
            (
                "us-east-1",
                "ec2.us-east-1.amazonaws.com",
                "opt-in-not-required"
            ),
            (
                "us-west-2",
                "ec2.us-west-2.amazonaws.com",
                "opt-in-not-required"
            ),
        ]
    );
    fx.call(
        "eu-west-1",
        &[("Action", "DescribeRegions"), ("DryRun", "true")],
    )
    .await
    .assert_error(412, "DryRunOperation");
    // A request scoped to a region that is listed but not enabled is refused.
    let refused = fx
        .call_with_auth(
            Some(&authorization("me-south-1")),
            &[("Action", "DescribeRegions")],
        )
        .await;
    refused.assert_error(401, "AuthFailure");
}
