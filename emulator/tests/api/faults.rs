//! Injected faults over HTTP: latency (with concurrency), throttling, random failures, failures
//! after commit and denied actions.

use std::time::{Duration, Instant};

use ec2_emulator::{EmulatorOptions, Faults};

use crate::client::Fixture;

const REGION: &str = "eu-west-1";

#[tokio::test]
async fn latency_delays_requests_that_are_served_concurrently() {
    let fx = Fixture::start(EmulatorOptions {
        faults: Faults {
            latency_ms: 400,
            ..Faults::default()
        },
        freeze_time: true,
        ..EmulatorOptions::default()
    })
    .await;
    let started = Instant::now();
    let answer = fx.describe(REGION, &[("MaxResults", "5")]).await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    let started = Instant::now();
    let (a, b, c, d) = tokio::join!(
        fx.describe(REGION, &[("MaxResults", "5")]),
        fx.describe("us-east-1", &[("MaxResults", "5")]),
        fx.describe(REGION, &[("DryRun", "true")]),
        fx.call(REGION, &[("Action", "DescribeRegions")]),
    );
    let elapsed = started.elapsed();
    assert_eq!(
        (a.status, b.status, c.status, d.status),
        (200, 200, 412, 200)
    );
    assert!(elapsed >= Duration::from_millis(400));
    assert!(
        elapsed < Duration::from_millis(1500),
        "served one by one: {elapsed:?}"
    );

    // The hooks are not delayed.
    let started = Instant::now();
    let config = fx.config(serde_json::json!({"latency_ms": 0})).await;
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(config["latency_ms"], 0);
    let started = Instant::now();
    fx.describe(REGION, &[("MaxResults", "5")]).await;
    assert!(started.elapsed() < Duration::from_millis(400));

    let log = fx.emulator.requests();
    assert!(
        log[0].finished_ms - log[0].started_ms >= 400,
        "{:?}",
        log[0]
    );
}

#[tokio::test]
async fn throttling_is_per_region() {
    let fx = Fixture::frozen().await;
    // 0.01 rps: a burst of one, then nothing for 100 s.
    let config = fx.config(serde_json::json!({"throttle_rps": 0.01})).await;
    assert_eq!(config["throttle_rps"], 0.01);
    assert_eq!(fx.describe(REGION, &[]).await.status, 200);
    let throttled = fx.describe(REGION, &[]).await;
    throttled.assert_error(503, "RequestLimitExceeded");
    assert_eq!(throttled.error_message(), "Request limit exceeded.");
    assert_eq!(fx.describe("us-east-1", &[]).await.status, 200);
    // Creating is throttled too, and then creates nothing.
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    fx.create(REGION, &ami, &bucket, &[])
        .await
        .assert_error(503, "RequestLimitExceeded");
    assert!(fx.emulator.storable_amis(REGION).contains(&ami));

    let config = fx.config(serde_json::json!({"throttle_rps": null})).await;
    assert!(config["throttle_rps"].is_null());
    assert_eq!(fx.describe(REGION, &[]).await.status, 200);
}

#[tokio::test]
async fn throttling_admits_the_configured_rate() {
    let fx = Fixture::start(EmulatorOptions {
        faults: Faults {
            throttle_rps: Some(2.0),
            ..Faults::default()
        },
        freeze_time: true,
        ..EmulatorOptions::default()
    })
    .await;
    let started = Instant::now();
    let mut ok = 0u32;
    let mut throttled = 0u32;
    for _ in 0..10 {
        match fx.describe(REGION, &[("MaxResults", "1")]).await.status {
            200 => ok += 1,
            503 => throttled += 1,
            other => panic!("status {other}"),
        }
    }
    // A burst of 2, plus 2 per second of real time while the requests ran.
    let refilled = (2.0 * started.elapsed().as_secs_f64()).ceil() as u32;
    assert!(ok >= 2, "{ok} ok");
    assert!(
        ok <= 2 + refilled,
        "{ok} ok, at most {} allowed",
        2 + refilled
    );
    assert_eq!(ok + throttled, 10);
}

#[tokio::test]
async fn fail_rate_fails_requests_without_effect() {
    let fx = Fixture::frozen().await;
    fx.config(serde_json::json!({"fail_rate": 1.0})).await;
    let failed = fx.describe(REGION, &[]).await;
    failed.assert_error(500, "InternalError");
    assert_eq!(failed.error_message(), "An internal error has occurred");
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    fx.create(REGION, &ami, &bucket, &[])
        .await
        .assert_error(500, "InternalError");
    assert_eq!(fx.emulator.tasks(REGION).len(), 250, "nothing created");

    // About half with 0.5 (seeded dice, so the count is stable but not asserted exactly).
    fx.config(serde_json::json!({"fail_rate": 0.5})).await;
    let mut failures = 0;
    for _ in 0..40 {
        if fx.describe(REGION, &[("MaxResults", "1")]).await.status == 500 {
            failures += 1;
        }
    }
    assert!((8..=32).contains(&failures), "{failures} of 40");
    fx.config(serde_json::json!({"fail_rate": 0})).await;
    assert_eq!(fx.describe(REGION, &[]).await.status, 200);
}

#[tokio::test]
async fn fail_after_commit_creates_the_task_and_answers_an_error() {
    let fx = Fixture::frozen().await;
    fx.config(serde_json::json!({"fail_after_commit_rate": 1.0}))
        .await;
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    fx.create(REGION, &ami, &bucket, &[])
        .await
        .assert_error(500, "InternalError");
    assert_eq!(fx.task_of(REGION, &ami).store_task_state, "InProgress");
    // A naive retry is refused: the task exists.
    fx.create(REGION, &ami, &bucket, &[])
        .await
        .assert_error(400, "InvalidParameterValue");
    // Reads are unaffected.
    assert_eq!(fx.describe(REGION, &[]).await.status, 200);
}

#[tokio::test]
async fn denied_actions_are_unauthorized_even_in_dry_run() {
    let fx = Fixture::frozen().await;
    let config = fx
        .config(serde_json::json!({"deny_actions": ["CreateStoreImageTask"]}))
        .await;
    assert_eq!(
        config["deny_actions"],
        serde_json::json!(["CreateStoreImageTask"])
    );
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    let denied = fx.create(REGION, &ami, &bucket, &[]).await;
    denied.assert_error(403, "UnauthorizedOperation");
    assert_eq!(
        denied.error_message(),
        "You are not authorized to perform this operation."
    );
    fx.create(REGION, &ami, &bucket, &[("DryRun", "true")])
        .await
        .assert_error(403, "UnauthorizedOperation");
    assert_eq!(fx.describe(REGION, &[]).await.status, 200);
    fx.config(serde_json::json!({"deny_actions": []})).await;
    fx.create(REGION, &ami, &bucket, &[("DryRun", "true")])
        .await
        .assert_error(412, "DryRunOperation");
}
