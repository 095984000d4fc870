//! The `/_emulator` hooks and the request log, and the server's lifecycle.

use std::time::Duration;

use ec2_emulator::{Emulator, EmulatorOptions, TaskView};

use crate::client::Fixture;

#[tokio::test]
async fn state_and_tasks_hooks_show_what_clients_see() {
    let fx = Fixture::frozen().await;
    let state: serde_json::Value = fx
        .http
        .get(fx.url("/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let regions = state["regions"].as_object().unwrap();
    assert_eq!(regions.len(), 3);
    for region in fx.emulator.regions() {
        let amis: Vec<String> = serde_json::from_value(regions[&region]["amis"].clone()).unwrap();
        let buckets: Vec<String> =
            serde_json::from_value(regions[&region]["buckets"].clone()).unwrap();
        assert_eq!(amis, fx.emulator.storable_amis(&region));
        assert_eq!(buckets, fx.emulator.buckets(&region));
        assert_eq!(buckets[0], format!("ami-archive-{region}"));
    }

    let response = fx
        .http
        .get(fx.url("/_emulator/tasks?region=us-west-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let raw: serde_json::Value = response.json().await.unwrap();
    let first = raw[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = vec![
        "amiId",
        "bucket",
        "progressPercentage",
        "region",
        "s3objectKey",
        "storeTaskState",
        "taskStartTime",
    ];
    if first["storeTaskState"] == "Failed" {
        expected.push("storeTaskFailureReason");
        expected.sort();
    }
    assert_eq!(keys, expected);
    assert_eq!(first["taskStartTime"].as_str().unwrap().len(), 24);
    let tasks: Vec<TaskView> = serde_json::from_value(raw).unwrap();
    assert_eq!(tasks, fx.emulator.tasks("us-west-2"));
    assert!(tasks.iter().all(|t| t.region == "us-west-2"));

    let missing = fx
        .http
        .get(fx.url("/_emulator/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = fx
        .http
        .get(fx.url("/_emulator/tasks?region=ap-east-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn config_hook_validates_and_answers_the_effective_config() {
    let fx = Fixture::frozen().await;
    let post = |body: &'static str| {
        let fx = &fx;
        async move {
            let response = fx
                .http
                .post(fx.url("/_emulator/config"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    for bad in [
        "{not json",
        r#"{"fail_rate": 2}"#,
        r#"{"latency": 5}"#,
        r#"{"advance_seconds": -1}"#,
        r#"{"task_duration_secs": 0}"#,
        r#"{"throttle_rps": -3}"#,
    ] {
        let (status, body) = post(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {body}"
        );
    }
    // A rejected update changes nothing.
    let (status, body) = post(r#"{"latency_ms": 5, "fail_rate": 2}"#).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fx.emulator.config().latency_ms, 0);

    let before = fx.emulator.config().now;
    let (status, body) = post(
        r#"{"latency_ms": 1, "throttle_rps": 100, "fail_rate": 0, "fail_after_commit_rate": 0,
            "deny_actions": ["DescribeRegions"], "task_duration_secs": 5, "advance_seconds": 1.5}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["latency_ms"], 1);
    assert_eq!(body["throttle_rps"], 100.0);
    assert_eq!(body["deny_actions"], serde_json::json!(["DescribeRegions"]));
    assert_eq!(body["task_duration_secs"], 5.0);
    assert_eq!(body["freeze_time"], true);
    let moved = chrono::DateTime::parse_from_rfc3339(body["now"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&before).unwrap();
    assert_eq!(moved, chrono::TimeDelta::milliseconds(1500));

    // Unfreezing lets time run from the frozen instant.
    let (_, body) = post(r#"{"freeze_time": false}"#).await;
    assert_eq!(body["freeze_time"], false);
    let get: serde_json::Value = fx
        .http
        .get(fx.url("/_emulator/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["latency_ms"], 1);
}

#[tokio::test]
async fn the_request_log_records_each_api_request_in_order() {
    let fx = Fixture::frozen().await;
    fx.describe("us-east-1", &[("MaxResults", "2")]).await;
    let cleared = fx
        .http
        .delete(fx.url("/_emulator/requests"))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    assert!(fx.emulator.requests().is_empty());

    fx.describe("us-east-1", &[("MaxResults", "2")]).await;
    fx.call_with_auth(None, &[("Action", "DescribeRegions")])
        .await;
    fx.describe("us-west-2", &[("MaxResults", "0")]).await;
    // Hooks are not API requests.
    fx.http
        .get(fx.url("/_emulator/state"))
        .send()
        .await
        .unwrap();

    let log: Vec<ec2_emulator::RequestRecord> = fx
        .http
        .get(fx.url("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log, fx.emulator.requests());
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(log[0].action, "DescribeStoreImageTasks");
    assert_eq!(log[0].params["MaxResults"], "2");
    assert_eq!(log[0].params["Version"], "2016-11-15");
    assert_eq!(log[0].status, 200);
    assert_eq!(log[1].region, None);
    assert_eq!(log[1].action, "DescribeRegions");
    assert_eq!(log[1].status, 401);
    assert_eq!(log[2].region.as_deref(), Some("us-west-2"));
    assert_eq!(log[2].status, 400);
    for pair in log.windows(2) {
        assert!(pair[0].started_ms <= pair[1].started_ms);
    }
    assert!(log.iter().all(|r| r.started_ms <= r.finished_ms));

    let json: serde_json::Value = fx
        .http
        .get(fx.url("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(json[1]["region"].is_null());
    assert_eq!(json[0]["params"]["Action"], "DescribeStoreImageTasks");

    fx.emulator.clear_requests();
    assert!(fx.emulator.requests().is_empty());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorOptions::default())
        .await
        .unwrap();
    let url = emulator.endpoint_url();
    assert_eq!(
        url,
        format!("http://127.0.0.1:{}", emulator.local_addr().port())
    );
    assert_ne!(emulator.local_addr().port(), 0);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(client
        .get(format!("{url}/_emulator/state"))
        .send()
        .await
        .is_ok());
    emulator.shutdown().await;
    assert!(client
        .get(format!("{url}/_emulator/state"))
        .send()
        .await
        .is_err());

    // Dropping stops it too.
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorOptions::default())
        .await
        .unwrap();
    let url = emulator.endpoint_url();
    drop(emulator);
    // The aborted server task closes its listener when the runtime next polls it.
    let fresh = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fresh
        .get(format!("{url}/_emulator/state"))
        .send()
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still serving after drop"
        );
        tokio::task::yield_now().await;
    }

    // Bad options are refused before binding.
    let bad = EmulatorOptions {
        regions: vec!["Not A Region".into()],
        ..EmulatorOptions::default()
    };
    assert!(Emulator::start("127.0.0.1:0".parse().unwrap(), bad)
        .await
        .is_err());
}

#[test]
fn the_handle_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Emulator>();
}
