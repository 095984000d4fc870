//! The fewest API calls, every region at once: pushdown, concurrency, the cache, faults and
//! EXPLAIN, checked through the emulator's request log.

use crate::common;

use std::collections::BTreeSet;

use arrow::array::AsArray;
use common::{rows, Fixture, Row, REGIONS};
use ec2_emulator::{ConfigUpdate, EmulatorOptions, RequestRecord};

fn describes(fx: &Fixture) -> Vec<RequestRecord> {
    fx.emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .collect()
}

/// Whether all `calls` were in flight at one moment.
fn all_overlap(calls: &[RequestRecord]) -> bool {
    let last_start = calls.iter().map(|r| r.started_ms).max().unwrap();
    let first_end = calls.iter().map(|r| r.finished_ms).min().unwrap();
    last_start < first_end
}

fn expected(fx: &Fixture, keep: impl Fn(&Row) -> bool) -> Vec<Row> {
    let mut rows: Vec<Row> = REGIONS
        .iter()
        .flat_map(|r| fx.emulator.tasks(r))
        .map(|t| Row::from(&t))
        .filter(|r| keep(r))
        .collect();
    rows.sort();
    rows
}

async fn select(fx: &Fixture, sql: &str) -> Vec<Row> {
    let (_, batches) = fx.query(sql).await.unwrap();
    let mut got = rows(&batches);
    got.sort();
    got
}

#[tokio::test]
async fn region_and_ami_id_make_exactly_one_call_with_that_image_id() {
    let fx = Fixture::start(300).await;
    let ami = fx.emulator.tasks("us-east-1")[7].ami_id.clone();
    fx.emulator.clear_requests();
    let got = select(
        &fx,
        &format!("SELECT * FROM store_image_tasks WHERE region = 'us-east-1' AND amiId = '{ami}'"),
    )
    .await;
    assert_eq!(
        got,
        expected(&fx, |r| r.region == "us-east-1"
            && r.ami_id.as_deref() == Some(&ami))
    );
    let calls = describes(&fx);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(calls[0].params.get("ImageId.1"), Some(&ami));
    assert!(!calls[0].params.contains_key("MaxResults"));
}

#[tokio::test]
async fn limit_becomes_max_results_and_stops_paging() {
    let fx = Fixture::start(300).await;
    fx.emulator.clear_requests();
    let (_, batches) = fx
        .query("SELECT amiId FROM store_image_tasks WHERE region = 'eu-west-1' LIMIT 5")
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
    let calls = describes(&fx);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0].params.get("MaxResults").map(String::as_str),
        Some("5")
    );
}

#[tokio::test]
async fn state_and_bucket_become_filters_and_results_stay_exact() {
    let fx = Fixture::start(120).await;
    let bucket = fx.emulator.tasks("us-west-2")[0].bucket.clone();
    fx.emulator.clear_requests();
    let got = select(
        &fx,
        &format!(
            "SELECT * FROM store_image_tasks WHERE storeTaskState IN ('Failed', 'InProgress') \
             AND bucket = '{bucket}'"
        ),
    )
    .await;
    let want = expected(&fx, |r| {
        matches!(r.state.as_deref(), Some("Failed" | "InProgress"))
            && r.bucket.as_deref() == Some(&bucket)
    });
    assert_eq!(got, want);
    let calls = describes(&fx);
    assert_eq!(calls.len(), 3, "one call per region");
    for call in &calls {
        let filters: BTreeSet<(&str, &str)> = call
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("Filter."))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(
            filters.contains(&("Filter.1.Name", "task-state")),
            "{filters:?}"
        );
        assert!(
            filters.contains(&("Filter.2.Name", "bucket")),
            "{filters:?}"
        );
    }
}

#[tokio::test]
async fn forty_five_ami_ids_make_three_concurrent_calls() {
    let fx = Fixture::start(100).await;
    let mut amis: Vec<String> = Vec::new();
    for t in fx.emulator.tasks("us-west-2") {
        if amis.len() < 45 && !amis.contains(&t.ami_id) {
            amis.push(t.ami_id);
        }
    }
    assert_eq!(amis.len(), 45);
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(150),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let list = amis
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let got = select(
        &fx,
        &format!("SELECT * FROM store_image_tasks WHERE region = 'us-west-2' AND amiId IN ({list}, {list})"),
    )
    .await;
    assert_eq!(
        got,
        expected(&fx, |r| r.region == "us-west-2"
            && amis.contains(r.ami_id.as_ref().unwrap()))
    );
    let calls = describes(&fx);
    let sizes: BTreeSet<usize> = calls
        .iter()
        .map(|c| {
            c.params
                .keys()
                .filter(|k| k.starts_with("ImageId."))
                .count()
        })
        .collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(sizes, BTreeSet::from([5, 20]));
    assert!(
        all_overlap(&calls),
        "the three chunks were asked concurrently: {calls:?}"
    );
}

#[tokio::test]
async fn three_regions_are_asked_at_once() {
    let fx = Fixture::start(50).await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(200),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let got = select(&fx, "SELECT * FROM store_image_tasks").await;
    assert_eq!(got, expected(&fx, |_| true));
    let calls = describes(&fx);
    assert_eq!(calls.len(), 3);
    assert!(all_overlap(&calls), "{calls:?}");
}

#[tokio::test]
async fn the_same_query_within_the_ttl_makes_no_new_call_unless_the_cache_is_off() {
    let fx = Fixture::start(250).await;
    let sql = "SELECT count(*) FROM store_image_tasks WHERE region = 'us-east-1'";
    fx.query(sql).await.unwrap();
    let first = describes(&fx).len();
    assert_eq!(first, 2);
    fx.query(sql).await.unwrap();
    assert_eq!(describes(&fx).len(), first, "served from the cache");

    // With the cache off (as a session would set it), AWS is asked again.
    let (ctx, catalog) = common::catalog_for(&fx.emulator, &[("aws.cache", "off")]).await;
    catalog
        .plan(&ctx, sql, &[])
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(describes(&fx).len(), first + 2);
}

#[tokio::test]
async fn predicates_the_api_cannot_take_still_give_correct_results() {
    let fx = Fixture::start(150).await;
    let pivot = fx.emulator.tasks("eu-west-1")[40].task_start_time;
    let pivot_ms = pivot.timestamp_millis();
    let got = select(
        &fx,
        &format!(
            "SELECT * FROM store_image_tasks WHERE taskStartTime > to_timestamp_millis({pivot_ms}) \
             AND (progressPercentage < 50 OR storeTaskState = 'Failed' OR region = 'us-west-2')"
        ),
    )
    .await;
    let want = expected(&fx, |r| {
        r.start_ms.unwrap() > pivot_ms
            && (r.progress.unwrap() < 50
                || r.state.as_deref() == Some("Failed")
                || r.region == "us-west-2")
    });
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[tokio::test]
async fn throttling_and_faults_leave_results_exactly_equal() {
    let fx = Fixture::start_with(EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 450,
        freeze_time: true,
        ..EmulatorOptions::default()
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            throttle_rps: Some(Some(4.0)),
            fail_rate: Some(0.15),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let (_, batches) = fx
        .query("SELECT * FROM store_image_tasks")
        .await
        .expect("retries absorb throttling and transient faults");
    let mut got = rows(&batches);
    got.sort();
    assert_eq!(got, expected(&fx, |_| true));
    let statuses: Vec<u16> = describes(&fx).iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().any(|s| *s != 200),
        "faults were injected: {statuses:?}"
    );
}

#[tokio::test]
async fn explain_shows_the_requests_and_explain_analyze_what_happened() {
    let fx = Fixture::start(250).await;
    let (_, batches) = fx
        .query(
            "EXPLAIN SELECT * FROM store_image_tasks WHERE region IN ('us-east-1', 'eu-west-1') \
             AND storeTaskState = 'Completed' LIMIT 10",
        )
        .await
        .unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        plan.contains(
            "111111111111/eu-west-1: DescribeStoreImageTasks(task-state=[\"Completed\"], \
             MaxResults=10)"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("111111111111/us-east-1: DescribeStoreImageTasks("),
        "{plan}"
    );

    let text = fx
        .explain(
            "EXPLAIN ANALYZE SELECT count(*) FROM store_image_tasks WHERE region = 'us-west-2'",
        )
        .await;
    for metric in [
        "api_calls=2",
        "pages=2",
        "rows_from_aws=250",
        "retries=0",
        "throttled=0",
        "cache_hits=0",
        // The second page was asked for from the first answer's raw NextToken.
        "calls_read_ahead=1",
        // Both answers were decoded by the server's one-pass decoder, not left to the SDK's.
        "pages_sdk_decoded=0",
        "aws_wait_time=",
    ] {
        assert!(text.contains(metric), "{metric} missing from {text}");
    }
}

#[tokio::test]
async fn identical_concurrent_queries_share_one_call_per_page() {
    let fx = Fixture::start(250).await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(150),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let sql = "SELECT * FROM store_image_tasks WHERE region = 'us-west-2'";
    let (a, b) = tokio::join!(fx.query(sql), fx.query(sql));
    let (mut a, mut b) = (rows(&a.unwrap().1), rows(&b.unwrap().1));
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(a.len(), 250);
    assert_eq!(describes(&fx).len(), 2, "two pages, each asked once");
}

#[tokio::test]
async fn an_insert_invalidates_its_regions_cached_pages() {
    let fx = Fixture::start(30).await;
    let count = "SELECT count(*) AS n FROM store_image_tasks WHERE region = 'eu-west-1'";
    let n = |batches: &[arrow::array::RecordBatch]| {
        batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    };
    let before = n(&fx.query(count).await.unwrap().1);
    let calls = describes(&fx).len();
    assert_eq!(n(&fx.query(count).await.unwrap().1), before);
    assert_eq!(describes(&fx).len(), calls, "cached");
    let ami = fx.emulator.storable_amis("eu-west-1")[0].clone();
    let bucket = fx.emulator.buckets("eu-west-1")[0].clone();
    fx.update(&format!(
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '{ami}', '{bucket}')"
    ))
    .await
    .unwrap();
    assert_eq!(n(&fx.query(count).await.unwrap().1), before + 1);
}

#[tokio::test]
async fn a_query_past_its_budget_of_aws_calls_is_refused_or_stopped() {
    let fx = Fixture::start_configured(
        EmulatorOptions {
            regions: REGIONS.iter().map(|r| r.to_string()).collect(),
            tasks_per_region: 1000,
            freeze_time: true,
            ..EmulatorOptions::default()
        },
        |server| server.limits.max_aws_calls_per_query = 12,
    )
    .await;
    fx.emulator.clear_requests();
    // 30,000 AMI ids are 1,500 calls per region: refused before the first call, saying why.
    let ids = (0..30_000)
        .map(|i| format!("'ami-{i:017x}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let err = fx
        .query(&format!(
            "SELECT * FROM store_image_tasks WHERE amiId IN ({ids})"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains("4500 DescribeStoreImageTasks calls")
            && err.message().contains("--max-aws-calls-per-query"),
        "{}",
        err.message()
    );
    assert_eq!(describes(&fx).len(), 0);
    // Three regions of 1,000 tasks are 15 pages of 200: the scan stops at the 12th call.
    let err = fx
        .query("SELECT * FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("budget of 12 AWS calls"),
        "{}",
        err.message()
    );
    // Calls read ahead and aborted by the error may never reach the emulator: never more.
    let sent = describes(&fx).len();
    assert!((9..=12).contains(&sent), "{sent} calls");
    // Within the budget, a query runs as always, and each statement has a budget of its own.
    fx.emulator.clear_requests();
    for _ in 0..2 {
        let got = select(
            &fx,
            "SELECT * FROM store_image_tasks WHERE region = 'eu-west-1' AND amiId IS NOT NULL",
        )
        .await;
        assert_eq!(got.len(), 1000);
    }
}
