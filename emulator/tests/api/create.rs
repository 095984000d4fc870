//! CreateStoreImageTask over HTTP: validation, DryRun, creation, and progress that follows the
//! emulator clock.

use ec2_emulator::{ConfigUpdate, ObjectTag};

use crate::client::{result_items, Fixture};

const REGION: &str = "us-west-2";

#[tokio::test]
async fn a_created_task_progresses_with_the_clock() {
    let fx = Fixture::frozen().await;
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[1].clone();
    let answer = fx
        .create(
            REGION,
            &ami,
            &bucket,
            &[
                ("S3ObjectTag.1.Key", "team"),
                ("S3ObjectTag.1.Value", "data"),
                ("S3ObjectTag.2.Key", "bare"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.xml.name, "CreateStoreImageTaskResponse");
    assert_eq!(answer.xml.names(), ["requestId", "objectKey"]);
    assert_eq!(
        answer.xml.text_of("objectKey").unwrap(),
        format!("{ami}.bin")
    );
    assert_eq!(
        answer.xml.text_of("requestId").unwrap(),
        answer.request_id_header
    );

    let task = fx.task_of(REGION, &ami);
    assert_eq!(fx.emulator.tasks(REGION)[0], task, "the newest task");
    assert_eq!(
        (task.store_task_state.as_str(), task.progress_percentage),
        ("InProgress", 0)
    );
    assert_eq!(task.bucket, bucket);
    assert_eq!(
        task.s3_object_tags,
        [
            ObjectTag {
                key: "team".into(),
                value: Some("data".into())
            },
            ObjectTag {
                key: "bare".into(),
                value: None
            },
        ]
    );
    assert!(!fx.emulator.storable_amis(REGION).contains(&ami));

    // The API shows the same task.
    let listed = fx.describe(REGION, &[("ImageId.1", &ami)]).await;
    let items = result_items(&listed);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text_of("progressPercentage"), Some("0"));
    assert_eq!(items[0].text_of("storeTaskState"), Some("InProgress"));

    // A second store while it runs is refused, and creates nothing.
    let again = fx.create(REGION, &ami, &bucket, &[]).await;
    again.assert_error(400, "InvalidParameterValue");
    assert!(
        again.error_message().contains("already in progress"),
        "{}",
        again.error_message()
    );
    assert_eq!(fx.emulator.tasks(REGION).len(), 251);

    fx.config(serde_json::json!({"advance_seconds": 15})).await;
    let task = fx.task_of(REGION, &ami);
    assert_eq!(
        (task.store_task_state.as_str(), task.progress_percentage),
        ("InProgress", 25)
    );
    fx.config(serde_json::json!({"advance_seconds": 44.999}))
        .await;
    assert_eq!(fx.task_of(REGION, &ami).progress_percentage, 99);
    fx.config(serde_json::json!({"advance_seconds": 0.001}))
        .await;
    let task = fx.task_of(REGION, &ami);
    assert_eq!(
        (task.store_task_state.as_str(), task.progress_percentage),
        ("Completed", 100)
    );
    assert_eq!(task.store_task_failure_reason, None);
    assert!(fx.emulator.storable_amis(REGION).contains(&ami));

    // Stored again once done: a second, newer task.
    assert_eq!(fx.create(REGION, &ami, &bucket, &[]).await.status, 200);
    let both = fx.describe(REGION, &[("ImageId.1", &ami)]).await;
    let states: Vec<_> = result_items(&both)
        .iter()
        .map(|i| i.text_of("storeTaskState").unwrap().to_owned())
        .collect();
    assert_eq!(states, ["InProgress", "Completed"]);
}

#[tokio::test]
async fn an_unknown_bucket_fails_the_task_halfway() {
    let fx = Fixture::frozen().await;
    fx.emulator
        .update_config(ConfigUpdate {
            task_duration_secs: Some(10.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let ami = fx.emulator.storable_amis(REGION)[1].clone();
    // A bucket of another region is not this region's.
    let foreign = fx.emulator.buckets("us-east-1")[0].clone();
    assert_eq!(fx.create(REGION, &ami, &foreign, &[]).await.status, 200);
    fx.config(serde_json::json!({"advance_seconds": 4.999}))
        .await;
    assert_eq!(fx.task_of(REGION, &ami).store_task_state, "InProgress");
    fx.config(serde_json::json!({"advance_seconds": 0.001}))
        .await;
    let task = fx.task_of(REGION, &ami);
    assert_eq!(
        (task.store_task_state.as_str(), task.progress_percentage),
        ("Failed", 50)
    );
    let reason = task.store_task_failure_reason.unwrap();
    assert!(reason.starts_with("Access Denied"), "{reason}");
    assert!(
        reason.contains(&format!("'{foreign}' does not exist")),
        "{reason}"
    );
    // It stays failed.
    fx.config(serde_json::json!({"advance_seconds": 3600}))
        .await;
    assert_eq!(fx.task_of(REGION, &ami).store_task_state, "Failed");

    let listed = fx.describe(REGION, &[("ImageId.1", &ami)]).await;
    let item = &result_items(&listed)[0];
    assert_eq!(
        item.text_of("storeTaskFailureReason"),
        Some(reason.as_str())
    );
}

#[tokio::test]
async fn progress_runs_with_real_time_when_not_frozen() {
    let fx = Fixture::start(ec2_emulator::EmulatorOptions {
        task_duration: std::time::Duration::from_millis(400),
        ..ec2_emulator::EmulatorOptions::default()
    })
    .await;
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    assert_eq!(fx.create(REGION, &ami, &bucket, &[]).await.status, 200);
    // Poll (bounded) until the real clock completes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fx.task_of(REGION, &ami).store_task_state != "Completed" {
        assert!(
            std::time::Instant::now() < deadline,
            "the task never completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(fx.task_of(REGION, &ami).progress_percentage, 100);
}

#[tokio::test]
async fn create_errors_and_dry_run() {
    let fx = Fixture::frozen().await;
    let ami = fx.emulator.storable_amis(REGION)[0].clone();
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    let before = fx.emulator.tasks(REGION);

    let call = |form: Vec<(&'static str, String)>| {
        let fx = &fx;
        async move {
            let mut full: Vec<(&str, &str)> = vec![("Action", "CreateStoreImageTask")];
            full.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            fx.call(REGION, &full).await
        }
    };
    let missing = call(vec![("Bucket", bucket.clone())]).await;
    missing.assert_error(400, "MissingParameter");
    assert!(missing.error_message().contains("ImageId"));
    let missing = call(vec![("ImageId", ami.clone())]).await;
    missing.assert_error(400, "MissingParameter");
    assert!(missing.error_message().contains("Bucket"));
    call(vec![
        ("ImageId", "ami-nothex!".into()),
        ("Bucket", bucket.clone()),
    ])
    .await
    .assert_error(400, "InvalidAMIID.Malformed");
    let unknown = call(vec![
        ("ImageId", "ami-0123456789abcdef0".into()),
        ("Bucket", bucket.clone()),
    ])
    .await;
    unknown.assert_error(400, "InvalidAMIID.NotFound");
    assert_eq!(
        unknown.error_message(),
        "The image id '[ami-0123456789abcdef0]' does not exist"
    );
    // An AMI of another region does not exist here.
    let elsewhere = fx.emulator.storable_amis("eu-west-1")[0].clone();
    call(vec![("ImageId", elsewhere), ("Bucket", bucket.clone())])
        .await
        .assert_error(400, "InvalidAMIID.NotFound");

    let dry = call(vec![
        ("ImageId", ami.clone()),
        ("Bucket", bucket.clone()),
        ("DryRun", "true".into()),
    ])
    .await;
    dry.assert_error(412, "DryRunOperation");
    // DryRun still validates.
    call(vec![
        ("ImageId", "ami-0123456789abcdef0".into()),
        ("Bucket", bucket.clone()),
        ("DryRun", "true".into()),
    ])
    .await
    .assert_error(400, "InvalidAMIID.NotFound");
    // An AMI with a sample task still running.
    let running = before
        .iter()
        .find(|t| t.store_task_state == "InProgress")
        .unwrap()
        .ami_id
        .clone();
    call(vec![("ImageId", running), ("Bucket", bucket.clone())])
        .await
        .assert_error(400, "InvalidParameterValue");

    assert_eq!(fx.emulator.tasks(REGION), before, "nothing was created");
}

#[tokio::test]
async fn a_failing_bucket_set_at_run_time_fails_its_tasks_at_the_percentage() {
    let fx = Fixture::frozen().await;
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    let other = fx.emulator.buckets(REGION)[1].clone();
    let answer = fx
        .config(serde_json::json!({
            "task_duration_secs": 10,
            "failing_buckets": {&bucket: {"at_percent": 30, "reason": "Disk quota exceeded"}},
        }))
        .await;
    assert_eq!(answer["failing_buckets"][&bucket]["at_percent"], 30);
    let amis = fx.emulator.storable_amis(REGION);
    assert_eq!(fx.create(REGION, &amis[0], &bucket, &[]).await.status, 200);
    assert_eq!(fx.create(REGION, &amis[1], &other, &[]).await.status, 200);
    fx.config(serde_json::json!({"advance_seconds": 2.999}))
        .await;
    let task = fx.task_of(REGION, &amis[0]);
    assert_eq!(
        (task.store_task_state.as_str(), task.progress_percentage),
        ("InProgress", 29)
    );
    fx.config(serde_json::json!({"advance_seconds": 0.001}))
        .await;
    let listed = fx.describe(REGION, &[("ImageId.1", &amis[0])]).await;
    let item = &result_items(&listed)[0];
    assert_eq!(item.text_of("storeTaskState"), Some("Failed"));
    assert_eq!(item.text_of("progressPercentage"), Some("30"));
    assert_eq!(
        item.text_of("storeTaskFailureReason"),
        Some("Disk quota exceeded")
    );
    // Another bucket's task runs on and completes.
    fx.config(serde_json::json!({"advance_seconds": 7})).await;
    assert_eq!(fx.task_of(REGION, &amis[1]).store_task_state, "Completed");
    assert_eq!(fx.task_of(REGION, &amis[0]).store_task_state, "Failed");

    // A bad percentage changes nothing; `{}` ends the failures for new tasks.
    let bad = fx
        .http
        .post(fx.url("/_emulator/config"))
        .body(r#"{"failing_buckets": {"b": {"at_percent": 100}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let answer = fx.config(serde_json::json!({"failing_buckets": {}})).await;
    assert_eq!(answer["failing_buckets"], serde_json::json!({}));
    assert_eq!(fx.create(REGION, &amis[2], &bucket, &[]).await.status, 200);
    fx.config(serde_json::json!({"advance_seconds": 10})).await;
    assert_eq!(fx.task_of(REGION, &amis[2]).store_task_state, "Completed");
}

#[tokio::test]
async fn a_whole_lifecycle_runs_in_real_time_with_fractional_task_seconds() {
    let failing = "failing-bucket-1".to_owned();
    let fx = Fixture::start(ec2_emulator::EmulatorOptions {
        task_duration: std::time::Duration::from_millis(600),
        failing_buckets: [(
            failing.clone(),
            ec2_emulator::BucketFailure {
                at_percent: 40,
                ..ec2_emulator::BucketFailure::default()
            },
        )]
        .into(),
        ..ec2_emulator::EmulatorOptions::default()
    })
    .await;
    let amis = fx.emulator.storable_amis(REGION);
    let bucket = fx.emulator.buckets(REGION)[0].clone();
    assert_eq!(fx.create(REGION, &amis[0], &bucket, &[]).await.status, 200);
    assert_eq!(fx.create(REGION, &amis[1], &failing, &[]).await.status, 200);
    // Poll (bounded) until both tasks have ended, checking every state seen on the way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (done, failed) = (fx.task_of(REGION, &amis[0]), fx.task_of(REGION, &amis[1]));
        assert!(
            failed.progress_percentage <= 40,
            "a failing task never passes its percentage: {failed:?}"
        );
        if done.store_task_state == "Completed" && failed.store_task_state == "Failed" {
            assert_eq!(done.progress_percentage, 100);
            assert_eq!(failed.progress_percentage, 40);
            assert_eq!(
                failed.store_task_failure_reason.as_deref(),
                Some(ec2_emulator::DEFAULT_FAIL_REASON)
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tasks never ended: {done:?} {failed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
