//! INSERT creates store image tasks, each exactly once, with every outcome reported; all
//! through a real Flight SQL client against the real server and the EC2 emulator, checked
//! against the emulator's own state.

use crate::common;

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use common::{insert_rows, to_status, Fixture, REGIONS};
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use tonic::Code;

fn options() -> EmulatorOptions {
    EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 20,
        freeze_time: true,
        ..EmulatorOptions::default()
    }
}

async fn fixture() -> Fixture {
    Fixture::start_with(options()).await
}

/// A storable AMI and a known bucket of `region`.
fn target(fx: &Fixture, region: &str, n: usize) -> (String, String) {
    (
        fx.emulator.storable_amis(region)[n].clone(),
        fx.emulator.buckets(region)[0].clone(),
    )
}

#[tokio::test]
async fn single_row_insert_creates_one_task_that_select_then_sees() {
    let fx = fixture().await;
    let (ami, bucket) = target(&fx, "us-west-2", 0);
    let n = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('us-west-2', '{ami}', '{bucket}')"
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let tasks = fx.tasks_of("us-west-2", &ami);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].bucket, bucket);
    assert_eq!(tasks[0].store_task_state, "InProgress");
    assert_eq!(tasks[0].s3_object_key, format!("{ami}.bin"));
    assert_eq!(fx.calls("CreateStoreImageTask"), 1);

    let (_, batches) = fx
        .query(&format!(
            "SELECT storeTaskState, s3objectKey FROM store_image_tasks \
             WHERE region = 'us-west-2' AND amiId = '{ami}'"
        ))
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[tokio::test]
async fn multi_row_insert_defaults_region_and_insert_select_takes_stackql_names() {
    let fx = fixture().await;
    let (a1, b) = target(&fx, "us-east-1", 0);
    let (a2, _) = target(&fx, "us-east-1", 1);
    let n = fx
        .update(&format!(
            "INSERT INTO aws.ec2.store_image_tasks (amiId, bucket) VALUES ('{a1}', '{b}'), ('{a2}', '{b}')"
        ))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(fx.tasks_of("us-east-1", &a1).len(), 1);
    assert_eq!(fx.tasks_of("us-east-1", &a2).len(), 1);

    let (a3, b3) = target(&fx, "eu-west-1", 0);
    let n = fx
        .update(&format!(
            "INSERT INTO aws.ec2.store_image_tasks (ImageId, Bucket, region) \
             SELECT '{a3}', '{b3}', 'eu-west-1'"
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(fx.tasks_of("eu-west-1", &a3)[0].bucket, b3);
}

#[tokio::test]
async fn every_bad_row_is_rejected_before_any_create() {
    let fx = fixture().await;
    let (ami, bucket) = target(&fx, "us-east-1", 0);
    let in_progress = fx
        .emulator
        .tasks("us-east-1")
        .into_iter()
        .find(|t| t.store_task_state == "InProgress")
        .expect("sample data has an in-progress task")
        .ami_id;
    let cases = [
        (format!("VALUES ('us-east-1', '{ami}', NULL)"), "bucket (or Bucket) is required"),
        (format!("VALUES ('us-east-1', NULL, '{bucket}')"), "amiId (or ImageId) is required"),
        (format!("VALUES ('us-east-1', 'ami-xyz', '{bucket}')"), "is not an AMI id"),
        (format!("VALUES ('us-east-1', '{ami}', 'Bad_Bucket')"), "is not a valid S3 bucket name"),
        (format!("VALUES ('ap-south-1', '{ami}', '{bucket}')"), "region `ap-south-1` is not enabled"),
        (
            format!("VALUES ('us-east1', '{ami}', '{bucket}')"),
            "region `us-east1` (did you mean `us-east-1`?) is not an AWS region name",
        ),
        (
            format!("VALUES ('us-east-1', '{ami}', '{bucket}'), ('us-east-1', '{ami}', '{bucket}')"),
            "appears more than once",
        ),
        (
            format!("VALUES ('us-east-1', '{ami}', '{bucket}'), ('us-east-1', '{in_progress}', '{bucket}')"),
            "already in progress",
        ),
    ];
    for (values, expected) in cases {
        let sql = format!("INSERT INTO store_image_tasks (region, amiId, bucket) {values}");
        let err = fx.update(&sql).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{sql}: {err}");
        assert!(err.message().contains(expected), "{sql}: {}", err.message());
        assert!(
            err.message().contains("nothing was created"),
            "{}",
            err.message()
        );
    }
    let err = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket, storeTaskState, progressPercentage) \
             VALUES ('us-east-1', '{ami}', '{bucket}', 'Completed', 100)"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("progressPercentage, storeTaskState"),
        "{}",
        err.message()
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 0, "no create was sent");
    assert!(fx.tasks_of("us-east-1", &ami).is_empty());
}

#[tokio::test]
async fn partial_failure_lists_every_created_and_refused_row() {
    let fx = fixture().await;
    let (good, bucket) = target(&fx, "us-west-2", 0);
    let unknown = "ami-0000000000000000f";
    let err = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES \
             ('us-west-2', '{good}', '{bucket}'), ('us-west-2', '{unknown}', '{bucket}')"
        ))
        .await
        .unwrap_err();
    let msg = err.message();
    assert_eq!(err.code(), Code::NotFound, "{msg}");
    assert!(msg.contains("AWS refused 1 of 2 rows, 1 created"), "{msg}");
    assert!(
        msg.contains("refused in us-west-2, InvalidAMIID.NotFound") && msg.contains(unknown),
        "{msg}"
    );
    assert!(msg.contains("request id"), "{msg}");
    assert!(
        msg.contains(&format!("created in us-west-2: {good}")),
        "{msg}"
    );
    assert_eq!(fx.tasks_of("us-west-2", &good).len(), 1);
    assert!(fx.tasks_of("us-west-2", unknown).is_empty());
}

#[tokio::test]
async fn a_create_answered_500_after_it_took_effect_counts_once() {
    let fx = fixture().await;
    fx.emulator
        .update_config(ConfigUpdate {
            fail_after_commit_rate: Some(1.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let (ami, bucket) = target(&fx, "eu-west-1", 0);
    let n = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '{ami}', '{bucket}')"
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(fx.tasks_of("eu-west-1", &ami).len(), 1, "exactly one task");
    let creates: Vec<u16> = fx
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "CreateStoreImageTask")
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, [500], "the create was not sent again");
}

#[tokio::test]
async fn random_500s_before_commit_are_retried_without_duplicates() {
    let fx = fixture().await;
    let (ami, bucket) = target(&fx, "us-east-1", 2);
    fx.emulator
        .update_config(ConfigUpdate {
            fail_rate: Some(0.5),
            ..ConfigUpdate::default()
        })
        .unwrap();
    // The pre-check and the creates may all meet faults; a failure must be loud, a success
    // exact.
    match fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('us-east-1', '{ami}', '{bucket}')"
        ))
        .await
    {
        Ok(n) => {
            assert_eq!(n, 1);
            assert_eq!(fx.tasks_of("us-east-1", &ami).len(), 1);
        }
        Err(e) => assert!(
            matches!(e.code(), Code::Unavailable | Code::ResourceExhausted),
            "{e}"
        ),
    }
    assert!(fx.tasks_of("us-east-1", &ami).len() <= 1);
}

#[tokio::test]
async fn prepared_insert_with_many_parameter_rows_creates_one_task_per_row() {
    let fx = fixture().await;
    let mut client = fx.client().await;
    let mut prepared = client
        .prepare(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(prepared.parameter_schema().unwrap().fields().len(), 3);
    let rows: Vec<(String, String, String)> = REGIONS
        .iter()
        .map(|r| {
            let (a, b) = target(&fx, r, 3);
            (r.to_string(), a, b)
        })
        .collect();
    let column = |f: fn(&(String, String, String)) -> &String| {
        Arc::new(StringArray::from(
            rows.iter().map(f).cloned().collect::<Vec<_>>(),
        )) as _
    };
    let batch = RecordBatch::try_from_iter([
        ("$1", column(|r| &r.0)),
        ("$2", column(|r| &r.1)),
        ("$3", column(|r| &r.2)),
    ])
    .unwrap();
    prepared.set_parameters(batch).unwrap();
    let n = prepared.execute_update().await.map_err(to_status).unwrap();
    assert_eq!(n, 3);
    for (region, ami, _) in &rows {
        assert_eq!(fx.tasks_of(region, ami).len(), 1, "{region} {ami}");
    }
}

#[tokio::test]
async fn read_only_server_refuses_insert_before_any_call() {
    let fx = Fixture::start_full(options(), true).await;
    fx.emulator.clear_requests();
    let (ami, bucket) = target(&fx, "us-east-1", 0);
    let err = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("read-only"), "{}", err.message());
    assert!(fx.emulator.requests().is_empty(), "no AWS call at all");
}

#[tokio::test]
async fn update_delete_and_ddl_are_refused_with_what_is_supported() {
    let fx = fixture().await;
    for sql in [
        "UPDATE store_image_tasks SET bucket = 'x' WHERE amiId = 'ami-12345678'",
        "DELETE FROM store_image_tasks WHERE amiId = 'ami-12345678'",
        "DROP TABLE store_image_tasks",
        "CREATE TABLE t (a INT)",
    ] {
        let err = fx.update(sql).await.unwrap_err();
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::Unimplemented),
            "{sql}: {err}"
        );
        assert!(
            err.message().contains("SELECT and INSERT"),
            "{sql}: {}",
            err.message()
        );
    }
    assert_eq!(fx.calls("CreateStoreImageTask"), 0);
}

#[tokio::test]
async fn dry_run_creates_nothing_and_reports_what_would_be_created() {
    // The `aws.dry_run` session setting, applied the way a session option or SET applies it.
    let fx = fixture().await;
    let (ami, bucket) = target(&fx, "us-west-2", 1);
    let catalog = common::catalog_for(&fx.emulator, &[("aws.dry_run", "true")]).await;
    let (ctx, plan_sql) = (
        catalog.0,
        format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('us-west-2', '{ami}', '{bucket}')"
        ),
    );
    let df = catalog.1.plan(&ctx, &plan_sql, &[]).await.unwrap();
    let batches = df.collect().await.unwrap();
    let count = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    // Nothing was created: 0 rows affected, even to a DataFusion application.
    assert!(count.contains("| 0 "), "{count}");
    assert!(fx.tasks_of("us-west-2", &ami).is_empty(), "nothing created");
    let create = fx
        .emulator
        .requests()
        .into_iter()
        .find(|r| r.action == "CreateStoreImageTask")
        .unwrap();
    assert_eq!(
        create.params.get("DryRun").map(String::as_str),
        Some("true")
    );
    assert_eq!(create.status, 412);

    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec!["CreateStoreImageTask".into()]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let df = catalog.1.plan(&ctx, &plan_sql, &[]).await.unwrap();
    let err = df.collect().await.unwrap_err();
    let status = tonic::Status::from(aws_flightsql::flight::ServiceError::from(err));
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(
        status.message().contains("UnauthorizedOperation"),
        "{status}"
    );
}

/// What one INSERT reported: rows created by it, and rows it could not attribute.
fn reported(outcome: &Result<i64, tonic::Status>) -> (usize, usize) {
    let number_before = |text: &str, marker: &str| -> usize {
        text.find(marker)
            .and_then(|at| text[..at].split_whitespace().last()?.parse().ok())
            .unwrap_or(0)
    };
    match outcome {
        Ok(n) => (*n as usize, 0),
        Err(status) if status.message().starts_with("INSERT failed") => {
            let headline = status.message().lines().next().unwrap();
            (
                number_before(headline, " created"),
                number_before(headline, " created by this or a concurrent"),
            )
        }
        // Refused before any create (the pre-check found the other statement's tasks, or
        // met faults of its own).
        Err(_) => (0, 0),
    }
}

#[tokio::test]
async fn two_statements_storing_the_same_amis_under_faults_never_claim_one_task_twice() {
    let fx = fixture().await;
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let amis = fx.emulator.storable_amis("us-east-1");
    assert!(amis.len() >= 12, "{}", amis.len());
    fx.emulator
        .update_config(ConfigUpdate {
            fail_rate: Some(0.2),
            fail_after_commit_rate: Some(0.2),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut claimed = 0;
    for round in amis[..12].chunks(4) {
        let sql = insert_rows(
            round
                .iter()
                .map(|ami| ("us-east-1", ami.as_str(), bucket.as_str())),
        );
        // The sample data holds finished tasks of some AMIs: count the new ones.
        let tasks = |ami: &String| fx.tasks_of("us-east-1", ami).len();
        let before: Vec<usize> = round.iter().map(tasks).collect();
        let (a, b) = tokio::join!(fx.update(&sql), fx.update(&sql));
        let ((a_created, _), (b_created, _)) = (reported(&a), reported(&b));
        let new: Vec<usize> = round
            .iter()
            .zip(&before)
            .map(|(ami, before)| tasks(ami) - before)
            .collect();
        let real: usize = new.iter().sum();
        assert!(
            a_created + b_created <= real,
            "{a_created} + {b_created} created reported for {real} real tasks: {a:?} {b:?}"
        );
        claimed += a_created + b_created;
        for (ami, new) in round.iter().zip(&new) {
            assert!(*new <= 1, "{ami} stored twice");
        }
    }
    assert!(claimed > 0, "no statement created anything in three rounds");
}

#[tokio::test]
async fn a_throttled_insert_of_100_rows_lists_every_row_in_its_error() {
    let fx = Fixture::start_with(EmulatorOptions {
        tasks_per_region: 400,
        ..options()
    })
    .await;
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let amis: Vec<String> = fx.emulator.storable_amis("us-east-1");
    assert!(amis.len() >= 100, "{}", amis.len());
    let amis = &amis[..100];
    let before: Vec<usize> = amis
        .iter()
        .map(|a| fx.tasks_of("us-east-1", a).len())
        .collect();
    fx.emulator
        .update_config(ConfigUpdate {
            throttle_rps: Some(Some(5.0)),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let outcome = fx
        .update(&insert_rows(
            amis.iter()
                .map(|ami| ("us-east-1", ami.as_str(), bucket.as_str())),
        ))
        .await;
    let created_now: Vec<bool> = amis
        .iter()
        .zip(&before)
        .map(|(ami, before)| fx.tasks_of("us-east-1", ami).len() > *before)
        .collect();
    let real = created_now.iter().filter(|c| **c).count();
    let err = match outcome {
        Ok(n) => {
            assert_eq!((n as usize, real), (100, 100));
            return;
        }
        Err(err) => err,
    };
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    let msg = err.message();
    assert!(!msg.contains("(truncated)"), "{msg}");
    let (created, unconfirmed) = reported(&Err(err.clone()));
    assert_eq!(unconfirmed, 0, "{msg}");
    assert_eq!(created, real, "{msg}");
    assert!(
        msg.contains(&format!("AWS refused {} of 100 rows", 100 - real)),
        "{msg}"
    );
    // Every row is in the message, on the line of its outcome.
    let line_of = |ami: &str| {
        msg.lines()
            .skip(1)
            .find(|line| line.contains(ami))
            .unwrap_or_else(|| panic!("{ami} is not listed: {msg}"))
            .to_owned()
    };
    for (ami, created) in amis.iter().zip(created_now) {
        let line = line_of(ami);
        assert_eq!(
            line.starts_with("created in us-east-1"),
            created,
            "{ami}: {line}"
        );
        assert_eq!(
            line.starts_with("refused in us-east-1"),
            !created,
            "{ami}: {line}"
        );
    }
}

#[tokio::test]
async fn an_insert_of_1000_rows_under_faults_reports_every_row_as_a_result_set() {
    let fx = Fixture::start_with(EmulatorOptions {
        tasks_per_region: 1500,
        ..options()
    })
    .await;
    let mut rows = Vec::new();
    for region in REGIONS {
        let bucket = fx.emulator.buckets(region)[0].clone();
        let amis = fx.emulator.storable_amis(region);
        assert!(amis.len() >= 334, "{region}: {}", amis.len());
        for ami in amis.into_iter().take(334) {
            rows.push((region.to_string(), ami, bucket.clone()));
        }
    }
    rows.truncate(1000);
    let tasks_before: Vec<usize> = rows
        .iter()
        .map(|(region, ami, _)| fx.tasks_of(region, ami).len())
        .collect();
    fx.emulator
        .update_config(ConfigUpdate {
            fail_rate: Some(0.3),
            fail_after_commit_rate: Some(0.1),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let sql = insert_rows(
        rows.iter()
            .map(|(region, ami, bucket)| (region.as_str(), ami.as_str(), bucket.as_str())),
    );
    // The faults hit the validation's DescribeStoreImageTasks calls too: one that fails all
    // its attempts (rare, 0.3^5 a call) fails the INSERT before any create, which is the
    // rule; then nothing may have been created, and the statement is sent again.
    let mut outcome = fx.update(&sql).await;
    for _ in 0..5 {
        match &outcome {
            Err(err)
                if !err.message().contains("insert_report('")
                    && err.message().contains("DescribeStoreImageTasks") =>
            {
                let created = rows
                    .iter()
                    .zip(&tasks_before)
                    .filter(|((region, ami, _), before)| fx.tasks_of(region, ami).len() > **before)
                    .count();
                assert_eq!(
                    created, 0,
                    "validation failed, yet tasks were created: {err}"
                );
                outcome = fx.update(&sql).await;
            }
            _ => break,
        }
    }
    fx.emulator
        .update_config(ConfigUpdate {
            fail_rate: Some(0.0),
            fail_after_commit_rate: Some(0.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let created_now: std::collections::HashMap<&str, bool> = rows
        .iter()
        .zip(&tasks_before)
        .map(|((region, ami, _), before)| (ami.as_str(), fx.tasks_of(region, ami).len() > *before))
        .collect();
    let err = match outcome {
        Ok(n) => {
            assert_eq!(n, 1000);
            assert!(created_now.values().all(|c| *c));
            return;
        }
        Err(err) => err,
    };
    // The message names the whole report, whatever else it had room for.
    let msg = err.message();
    let id = msg
        .split("insert_report('")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no report named: {msg}"));
    let (_, batches) = fx
        .query(&format!(
            "SELECT amiId, outcome, errorCode, requestId FROM insert_report('{id}')"
        ))
        .await
        .unwrap();
    let mut seen = std::collections::HashMap::new();
    for batch in &batches {
        let text = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let (amis, outcomes, codes) = (text(0), text(1), text(2));
        for i in 0..batch.num_rows() {
            let (ami, outcome) = (amis.value(i).to_owned(), outcomes.value(i).to_owned());
            let created = created_now[ami.as_str()];
            match outcome.as_str() {
                "created" => assert!(created, "{ami} reported created, not in the emulator"),
                "refused" => {
                    assert!(!created, "{ami} reported refused, created in the emulator");
                    assert!(!codes.is_null(i));
                }
                other => panic!("{ami}: unexpected outcome {other}"),
            }
            assert!(seen.insert(ami.clone(), outcome).is_none(), "{ami} twice");
        }
    }
    assert_eq!(seen.len(), 1000, "every row is in the report");
    let created = seen.values().filter(|o| *o == "created").count();
    assert_eq!(created, created_now.values().filter(|c| **c).count());
    assert!(
        msg.starts_with(&format!(
            "INSERT failed: AWS refused {} of 1000 rows, {created} created",
            1000 - created
        )),
        "{msg}"
    );
    // An unknown report says where reports are.
    let err = fx
        .query("SELECT * FROM insert_report('no-such-report')")
        .await
        .unwrap_err();
    assert!(
        err.message().contains("on the server that ran the INSERT"),
        "{err}"
    );
}

/// The text column `name` of `batches`, row by row.
fn texts(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let column = b
                .column_by_name(name)
                .unwrap_or_else(|| panic!("no column {name}"))
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..column.len()).map(move |i| (!column.is_null(i)).then(|| column.value(i).to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn a_dry_run_insert_reports_no_row_affected_and_lists_what_would_be_created() {
    let fx = fixture().await;
    let (a1, b) = target(&fx, "us-east-1", 0);
    let (a2, _) = target(&fx, "us-east-1", 1);
    let (a3, b3) = target(&fx, "eu-west-1", 0);
    let tasks_before: usize = REGIONS.iter().map(|r| fx.emulator.tasks(r).len()).sum();
    let sql = insert_rows([
        ("us-east-1", a1.as_str(), b.as_str()),
        ("us-east-1", a2.as_str(), b.as_str()),
        ("eu-west-1", a3.as_str(), b3.as_str()),
    ]);
    // A session with aws.dry_run on (SET, carried by the session cookie).
    let mut session = aws_flightsql::client::Session::new(fx.client().await);
    session.flight_info("SET aws.dry_run = true").await.unwrap();
    let (_, _, shown) = session
        .query_with("SHOW aws.dry_run", |_| ())
        .await
        .unwrap();
    assert_eq!(texts(&shown, "name"), vec![Some("aws.dry_run".to_owned())]);
    assert_eq!(texts(&shown, "value"), vec![Some("true".to_owned())]);

    // As a query (what ADBC's execute and the CLI send): total_records 0, a row per row.
    let (info, schema, batches) = session.query_with(&sql, |_| ()).await.unwrap();
    assert_eq!(info.total_records, 0, "nothing was created");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "account",
            "region",
            "amiId",
            "bucket",
            "outcome",
            "s3objectKey",
            "errorCode",
            "errorMessage",
            "requestId"
        ]
    );
    let mut rows: Vec<_> = texts(&batches, "amiId")
        .into_iter()
        .zip(texts(&batches, "bucket"))
        .zip(texts(&batches, "outcome"))
        .zip(texts(&batches, "s3objectKey"))
        .map(|(((ami, bucket), outcome), key)| {
            (
                ami.unwrap(),
                bucket.unwrap(),
                outcome.unwrap(),
                key.unwrap(),
            )
        })
        .collect();
    rows.sort();
    let mut expected = vec![
        (
            a1.clone(),
            b.clone(),
            "would_create".to_owned(),
            format!("{a1}.bin"),
        ),
        (
            a2.clone(),
            b.clone(),
            "would_create".to_owned(),
            format!("{a2}.bin"),
        ),
        (
            a3.clone(),
            b3.clone(),
            "would_create".to_owned(),
            format!("{a3}.bin"),
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    assert!(texts(&batches, "errorCode").iter().all(Option::is_none));

    // As an update (JDBC executeUpdate, DoPut): 0 rows affected.
    let affected = session
        .client_mut()
        .execute_update(sql.clone(), None)
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(affected, 0);
    // As JDBC runs it (executeUpdate and execute alike): prepared, no result columns, so
    // the driver takes it for an update, which affects 0 rows.
    let mut prepared = session
        .client_mut()
        .prepare(sql.clone(), None)
        .await
        .map_err(to_status)
        .unwrap();
    assert!(prepared.dataset_schema().unwrap().fields().is_empty());
    assert_eq!(
        prepared.execute_update().await.map_err(to_status).unwrap(),
        0
    );

    // AWS was asked with DryRun=true, nine times, and holds no new task.
    let creates: Vec<_> = fx
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "CreateStoreImageTask")
        .collect();
    assert_eq!(creates.len(), 9);
    assert!(creates
        .iter()
        .all(|r| r.params.get("DryRun").map(String::as_str) == Some("true")));
    let tasks_after: usize = REGIONS.iter().map(|r| fx.emulator.tasks(r).len()).sum();
    assert_eq!(tasks_after, tasks_before, "a dry run creates nothing");

    // A row AWS would refuse fails the statement loudly, saying it was a dry run.
    let missing = "ami-0123456789abcdef0";
    let err = session
        .query_with(
            &insert_rows([
                ("us-east-1", a1.as_str(), b.as_str()),
                ("us-east-1", missing, b.as_str()),
            ]),
            |_| (),
        )
        .await
        .map_err(to_status)
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let message = err.message();
    assert!(
        message.starts_with(
            "dry run of INSERT failed, nothing was created: AWS would refuse 1 of 2 rows, 1 \
             would be created (aws.dry_run is on)."
        ),
        "{message}"
    );
    assert!(message.contains("InvalidAMIID.NotFound"), "{message}");
    assert!(message.contains("insert_report('"), "{message}");
    let tasks_after: usize = REGIONS.iter().map(|r| fx.emulator.tasks(r).len()).sum();
    assert_eq!(tasks_after, tasks_before, "a dry run creates nothing");

    // RESET ends the dry run: the same INSERT now creates, and counts, its tasks.
    session.flight_info("RESET aws.dry_run").await.unwrap();
    let (info, _, batches) = session.query_with(&sql, |_| ()).await.unwrap();
    assert_eq!(info.total_records, 3);
    assert_eq!(batches[0].num_rows(), 1);
    let count = batches[0].schema().index_of("count").unwrap();
    assert_eq!(common::first_count(&batches[0], count), 3);
    for (region, ami) in [("us-east-1", &a1), ("us-east-1", &a2), ("eu-west-1", &a3)] {
        assert_eq!(fx.tasks_of(region, ami).len(), 1, "{ami}");
    }
}
