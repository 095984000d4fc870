//! AWAIT on INSERT (`INSERT /*+ AWAIT */`, `aws.await`) through a real Flight SQL client
//! against the real server and the EC2 emulator running in real time with short tasks
//! (`task_duration` of a second or two, a failing bucket): the INSERT returns when the
//! emulator has ended every task, says how each ended, polls only with ImageIds, times out
//! with the unfinished tasks listed and nothing re-sent, and stops polling when its client
//! goes away; and the CLI's `sql` with an awaiting INSERT (its watch's lines while it
//! waits, how the tasks ended, the exit code, the watch stopped when the INSERT returns).
//! Nothing here sleeps to wait for the tasks: their duration is what the INSERT waits for.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use aws_flightsql::client::Session;
use aws_flightsql::metrics::Metrics;
use aws_flightsql::table::{AwaitLimits, LOWEST_AWAIT_INTERVAL, NOTHING_TO_AWAIT};
use common::{to_status, Fixture, REGIONS};
use ec2_emulator::{BucketFailure, ConfigUpdate, EmulatorOptions, RequestRecord};
use tonic::Code;

/// The bucket whose tasks fail at 40%, with the emulator's default reason.
const FAILING: &str = "awaited-failing-bucket";

/// How long the emulator's tasks take: long enough for a few polls, short enough for a test.
const TASK_SECONDS: f64 = 1.5;

/// The emulator in real time with short tasks and a failing bucket, and a server whose
/// sessions may poll every 100 ms; with the server's metrics (RPCs in flight).
async fn fixture() -> (Fixture, Arc<Metrics>) {
    fixture_with(|_| ()).await
}

/// Like `fixture`, with the server's options changed by `configure`.
async fn fixture_with(
    configure: impl FnOnce(&mut aws_flightsql::server::ServerOptions),
) -> (Fixture, Arc<Metrics>) {
    let options = EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 5,
        freeze_time: false,
        task_duration: Duration::from_secs_f64(TASK_SECONDS),
        failing_buckets: [(
            FAILING.to_owned(),
            BucketFailure {
                at_percent: 40,
                ..BucketFailure::default()
            },
        )]
        .into(),
        ..EmulatorOptions::default()
    };
    let fx = Fixture::start_configured(options, |server| {
        server.awaiting = AwaitLimits {
            min_interval: LOWEST_AWAIT_INTERVAL,
            ..AwaitLimits::default()
        };
        configure(server);
    })
    .await;
    let metrics = fx.server.metrics();
    (fx, metrics)
}

/// A session on the fixture's server with `settings` applied (`SET name = value`).
async fn session(fx: &Fixture, settings: &[&str]) -> Session {
    let mut session = Session::new(fx.client().await);
    for set in settings {
        session.flight_info(set).await.expect(set);
    }
    session
}

fn u64_of(batch: &RecordBatch, name: &str) -> u64 {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}: {:?}", batch.schema()))
        .as_primitive::<UInt64Type>()
        .value(0)
}

fn text_of(batch: &RecordBatch, name: &str) -> Option<String> {
    let column = batch.column_by_name(name)?.as_string::<i32>();
    (!column.is_null(0)).then(|| column.value(0).to_owned())
}

/// The DescribeStoreImageTasks requests in the log, with the AMIs each named.
fn describes(fx: &Fixture) -> Vec<(RequestRecord, Vec<String>)> {
    fx.emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .map(|r| {
            let amis = r
                .params
                .iter()
                .filter(|(k, _)| k.starts_with("ImageId."))
                .map(|(_, v)| v.clone())
                .collect();
            (r, amis)
        })
        .collect()
}

#[tokio::test]
async fn await_returns_when_the_emulator_has_ended_every_task_and_says_how_each_ended() {
    let (fx, _) = fixture().await;
    let east = fx.emulator.storable_amis("us-east-1");
    let east_bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let west = fx.emulator.storable_amis("eu-west-1")[0].clone();
    let mut session = session(&fx, &["SET aws.await_interval = '200ms'"]).await;
    let sql = format!(
        "insert  /*+   await */ INTO aws.ec2.store_image_tasks (region, amiId, bucket) VALUES \
         ('us-east-1', '{}', '{east_bucket}'), ('us-east-1', '{}', '{east_bucket}'), \
         ('eu-west-1', '{west}', '{FAILING}')",
        east[0], east[1]
    );
    let (info, _, batches) = session.query_with(&sql, |_| ()).await.unwrap();

    // The count stays the number created, where ADBC reads it and in the result row.
    assert_eq!(info.total_records, 3);
    let result = &batches[0];
    assert_eq!(u64_of(result, "count"), 3);
    assert_eq!(
        text_of(result, "regions").as_deref(),
        Some("us-east-1 (2), eu-west-1 (1)")
    );
    assert_eq!(u64_of(result, "completed"), 2);
    assert_eq!(u64_of(result, "failed"), 1);
    assert_eq!(
        text_of(result, "failures").unwrap(),
        format!("{west} in eu-west-1: {}", ec2_emulator::DEFAULT_FAIL_REASON)
    );
    // When it returned, the emulator had ended every task so.
    for ami in &east[..2] {
        let task = &fx.tasks_of("us-east-1", ami)[0];
        assert_eq!(
            (task.store_task_state.as_str(), task.progress_percentage),
            ("Completed", 100)
        );
    }
    let failed = &fx.tasks_of("eu-west-1", &west)[0];
    assert_eq!(
        (failed.store_task_state.as_str(), failed.progress_percentage),
        ("Failed", 40)
    );

    // Exactly one create per row; every DescribeStoreImageTasks named the INSERT's AMIs
    // (the in-progress check, then the polls): never a listing.
    assert_eq!(fx.calls("CreateStoreImageTask"), 3);
    let ours = [east[0].clone(), east[1].clone(), west.clone()];
    let calls = describes(&fx);
    assert!(calls.len() >= 4, "a check per region and polls: {calls:?}");
    for (call, amis) in &calls {
        assert!(!amis.is_empty(), "a call without ImageIds: {call:?}");
        assert!(amis.iter().all(|a| ours.contains(a)), "{call:?}");
        assert!(!call.params.contains_key("MaxResults"), "{call:?}");
    }
    // After the creates, every poll of a region asked for its unfinished AMIs only.
    let first_create = fx
        .emulator
        .requests()
        .iter()
        .position(|r| r.action == "CreateStoreImageTask")
        .unwrap();
    let polls: Vec<_> = fx
        .emulator
        .requests()
        .into_iter()
        .skip(first_create)
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .collect();
    assert!(!polls.is_empty());
    for poll in &polls {
        let named: Vec<&String> = poll
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("ImageId."))
            .map(|(_, v)| v)
            .collect();
        match poll.region.as_deref() {
            Some("us-east-1") => assert!(
                !named.is_empty() && named.iter().all(|a| east[..2].contains(a)),
                "{poll:?}"
            ),
            Some("eu-west-1") => assert_eq!(named, [&west], "{poll:?}"),
            other => panic!("a poll of {other:?}, where the INSERT created nothing"),
        }
    }
}

#[tokio::test]
async fn execute_update_with_the_hint_returns_the_count_after_the_tasks_ended() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-west-2")[0].clone();
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let mut session = session(&fx, &["SET aws.await_interval = 0.1"]).await;
    let n = session
        .client_mut()
        .execute_update(
            format!(
                "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
                 VALUES ('us-west-2', '{ami}', '{bucket}')"
            ),
            None,
        )
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        fx.tasks_of("us-west-2", &ami)[0].store_task_state,
        "Completed"
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 1);
}

#[tokio::test]
async fn set_aws_await_awaits_without_the_hint() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-east-1")[2].clone();
    let mut session = session(
        &fx,
        &["SET aws.await = true", "SET aws.await_interval = '100ms'"],
    )
    .await;
    let (_, _, batches) = session
        .query_with(
            &format!("INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{FAILING}')"),
            |_| (),
        )
        .await
        .unwrap();
    assert_eq!(u64_of(&batches[0], "failed"), 1);
    assert_eq!(fx.tasks_of("us-east-1", &ami)[0].store_task_state, "Failed");
}

#[tokio::test]
async fn a_timeout_lists_the_unfinished_tasks_and_nothing_is_re_created() {
    let (fx, _) = fixture().await;
    // Tasks created from now on take an hour: the wait of a second times out.
    fx.emulator
        .update_config(ConfigUpdate {
            task_duration_secs: Some(3600.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let amis = fx.emulator.storable_amis("eu-west-1");
    let bucket = fx.emulator.buckets("eu-west-1")[0].clone();
    let mut session = session(
        &fx,
        &[
            "SET aws.await_interval = '200ms'",
            "SET aws.await_timeout = '1s'",
        ],
    )
    .await;
    let sql = format!(
        "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) VALUES \
         ('eu-west-1', '{}', '{bucket}'), ('eu-west-1', '{}', '{bucket}')",
        amis[0], amis[1]
    );
    let status = to_status(session.query_with(&sql, |_| ()).await.unwrap_err());
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let message = status.message();
    assert!(
        message.starts_with(
            "AWAIT timed out after 1s (aws.await_timeout) with 2 of 2 tasks still in progress: "
        ),
        "{message}"
    );
    for ami in &amis[..2] {
        assert!(
            message.contains(&format!("{ami} in eu-west-1 at 0%")),
            "{message}"
        );
    }
    assert!(
        message.contains(
            "The 2 tasks were created, once each, and keep running in AWS: nothing was re-sent"
        ),
        "{message}"
    );
    // One create per row, and the tasks exist and run.
    assert_eq!(fx.calls("CreateStoreImageTask"), 2);
    for ami in &amis[..2] {
        let tasks = fx.tasks_of("eu-west-1", ami);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].store_task_state, "InProgress");
    }
    // The SELECT the message proposes finds them.
    let (_, batches) = fx
        .query(&format!(
            "SELECT amiId FROM store_image_tasks WHERE amiId IN ('{}', '{}') \
             AND storeTaskState = 'InProgress'",
            amis[0], amis[1]
        ))
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[tokio::test]
async fn polling_stops_when_the_client_drops_the_call() {
    let (fx, metrics) = fixture().await;
    fx.emulator
        .update_config(ConfigUpdate {
            task_duration_secs: Some(3600.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let ami = fx.emulator.storable_amis("us-west-2")[1].clone();
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let mut session = session(&fx, &["SET aws.await_interval = '100ms'"]).await;
    let sql = format!(
        "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
         VALUES ('us-west-2', '{ami}', '{bucket}')"
    );
    let running = tokio::spawn(async move { session.query_with(&sql, |_| ()).await.map(|_| ()) });
    // The INSERT is awaiting once the emulator has seen a poll after the create.
    let polled = || {
        let log = fx.emulator.requests();
        let created = log.iter().position(|r| r.action == "CreateStoreImageTask");
        created.map_or(0, |at| {
            log[at..]
                .iter()
                .filter(|r| r.action == "DescribeStoreImageTasks")
                .count()
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while polled() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the INSERT never polled"
        );
        assert!(
            !running.is_finished(),
            "the INSERT ended: {:?}",
            running.await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client goes away: the call is dropped (its connection with it).
    running.abort();
    let _ = running.await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metrics.in_flight() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still runs the INSERT"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // No poll after that: ten intervals go by without one.
    let seen = polled();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        polled(),
        seen,
        "the server kept polling for a client that left"
    );
    // The task exists and runs on; it was created once.
    assert_eq!(fx.calls("CreateStoreImageTask"), 1);
    assert_eq!(
        fx.tasks_of("us-west-2", &ami)[0].store_task_state,
        "InProgress"
    );
}

#[tokio::test]
async fn a_dry_run_says_there_is_nothing_to_await() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-east-1")[3].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let mut session = session(&fx, &["SET aws.dry_run = true"]).await;
    let (info, schema, batches) = session
        .query_with(
            &format!(
                "INSERT /*+ AWAIT */ INTO store_image_tasks (amiId, bucket) \
                 VALUES ('{ami}', '{bucket}')"
            ),
            |_| (),
        )
        .await
        .unwrap();
    assert_eq!(info.total_records, 0);
    assert_eq!(schema.fields().last().unwrap().name(), "await");
    let batch = &batches[0];
    assert_eq!(text_of(batch, "outcome").as_deref(), Some("would_create"));
    assert_eq!(text_of(batch, "await").as_deref(), Some(NOTHING_TO_AWAIT));
    assert!(
        fx.tasks_of("us-east-1", &ami).is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn settings_out_of_bounds_refuse_the_insert_before_anything_is_sent() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-east-1")[4].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let insert = format!(
        "INSERT /*+ AWAIT */ INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')"
    );
    // Below the server's --min-await-interval (100ms here).
    let mut fast = session(&fx, &["SET aws.await_interval = '50ms'"]).await;
    let status = to_status(fast.query_with(&insert, |_| ()).await.unwrap_err());
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("--min-await-interval"),
        "{}",
        status.message()
    );
    // A value that is no interval is refused when set.
    let mut bad = Session::new(fx.client().await);
    let status = to_status(
        bad.flight_info("SET aws.await_timeout = 'soon'")
            .await
            .unwrap_err(),
    );
    assert!(
        status
            .message()
            .contains("aws.await_timeout must be an interval"),
        "{}",
        status.message()
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 0);
    assert!(fx.tasks_of("us-east-1", &ami).is_empty());
}

/// A plain comment that says AWAIT is no hint: the INSERT returns at once, as without it.
#[tokio::test]
async fn a_plain_comment_is_no_hint() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-west-2")[2].clone();
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let (_, batches) = fx
        .query(&format!(
            "INSERT /* AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
             VALUES ('us-west-2', '{ami}', '{bucket}')"
        ))
        .await
        .unwrap();
    assert!(batches[0].column_by_name("completed").is_none());
    assert_eq!(batches[0].num_columns(), 2);
    assert_eq!(u64_of(&batches[0], "count"), 1);
}

#[tokio::test]
async fn an_awaiting_insert_ends_with_unavailable_when_the_shutdown_grace_ends() {
    let (fx, _) = fixture().await;
    fx.emulator
        .update_config(ConfigUpdate {
            task_duration_secs: Some(3600.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let ami = fx.emulator.storable_amis("eu-west-1")[2].clone();
    let bucket = fx.emulator.buckets("eu-west-1")[0].clone();
    let mut session = session(&fx, &["SET aws.await_interval = '100ms'"]).await;
    let sql = format!(
        "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
         VALUES ('eu-west-1', '{ami}', '{bucket}')"
    );
    let running = tokio::spawn(async move { session.query_with(&sql, |_| ()).await.map(|_| ()) });
    let Fixture { emulator, server } = fx;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !emulator.tasks("eu-west-1").iter().any(|t| t.ami_id == ami) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task was never created"
        );
        assert!(
            !running.is_finished(),
            "the INSERT ended: {:?}",
            running.await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
        .shutdown_within(Duration::from_millis(500))
        .await
        .unwrap();
    let status = to_status(running.await.unwrap().unwrap_err());
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with(
            "AWAIT stopped: the server is shutting down and its grace period ended with 1 of 1 \
             tasks still in progress"
        ),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("nothing was re-sent"),
        "{}",
        status.message()
    );
    assert_eq!(
        emulator
            .requests()
            .iter()
            .filter(|r| r.action == "CreateStoreImageTask")
            .count(),
        1
    );
}

#[tokio::test]
async fn explain_shows_the_await_and_creates_nothing() {
    let (fx, _) = fixture().await;
    let ami = fx.emulator.storable_amis("us-east-1")[0].clone();
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let plan = fx
        .explain(&format!(
            "EXPLAIN INSERT /*+ AWAIT */ INTO store_image_tasks (amiId, bucket) \
             VALUES ('{ami}', '{bucket}')"
        ))
        .await;
    assert!(
        plan.contains(
            "then AWAIT: DescribeStoreImageTasks with ImageIds per account and region every 5s, \
             for at most 1h"
        ),
        "{plan}"
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_pings_a_client_while_its_insert_awaits() {
    let (fx, _) = fixture_with(|server| server.keepalive = Duration::from_millis(300)).await;
    let (via, seen) = crate::operate::relay(fx.server.local_addr()).await;
    let client = aws_flightsql::client::connect(&format!("grpc://{via}"))
        .await
        .unwrap();
    let mut session = Session::new(client);
    session
        .flight_info("SET aws.await_interval = '1s'")
        .await
        .unwrap();
    let ami = fx.emulator.storable_amis("us-west-2")[3].clone();
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let start = std::time::Instant::now();
    let (info, _, _) = session
        .query_with(
            &format!(
                "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
                 VALUES ('us-west-2', '{ami}', '{bucket}')"
            ),
            |_| (),
        )
        .await
        .unwrap();
    assert_eq!(info.total_records, 1);
    // The call waited for the task (TASK_SECONDS at least), with no data to send: only the
    // server's PINGs went to the client, never a second of silence.
    assert!(start.elapsed() >= Duration::from_secs_f64(TASK_SECONDS));
    let times: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= start)
        .collect();
    let longest = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    assert!(
        longest < Duration::from_millis(1000),
        "the connection was silent for {longest:?} while the INSERT awaited"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");

/// Runs `aws-flightsql sql --connect URI args...` with stdout and stderr pipes (not a
/// terminal: the watch's change lines go to stderr, no bars).
async fn sql_cli(fx: &Fixture, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(BIN);
    command
        .args(["sql", "--connect", &fx.server.uri()])
        .args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The DescribeStoreImageTasks calls that name `ami`, by their index in the request log.
fn describes_naming(fx: &Fixture, ami: &str) -> Vec<usize> {
    fx.emulator
        .requests()
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.action == "DescribeStoreImageTasks" && r.params.values().any(|v| v == ami)
        })
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test]
async fn the_cli_follows_an_awaiting_insert_says_how_it_ended_and_stops_its_watch() {
    let (fx, _) = fixture().await;
    let amis = fx.emulator.storable_amis("us-east-1");
    let (ami, other) = (amis[3].clone(), amis[4].clone());
    let bucket = fx.emulator.buckets("us-east-1")[0].clone();
    // A task long enough for the CLI's watch to see it running however loaded the machine
    // (starting the CLI, its baseline query and its watch take a moment).
    fx.emulator
        .update_config(ConfigUpdate {
            task_duration_secs: Some(5.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    // The awaiting INSERT, then a watch of another AMI (which has no task) for 2 s: its
    // polls come after the INSERT returned, and while they run no poll may name the
    // INSERT's AMI (the INSERT's watch is gone).
    let statements = format!(
        "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
         VALUES ('us-east-1', '{ami}', '{bucket}'); \
         SELECT amiId FROM watch_store_image_tasks(interval => '100ms', until => 'timeout', \
         timeout => '2s') WHERE region = 'us-east-1' AND amiId = '{other}'"
    );
    let out = sql_cli(&fx, &["--set", "aws.await_interval=100ms", &statements]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 task created in us-east-1; awaited: 1 completed, 0 failed"),
        "{stdout}\n{stderr}"
    );
    // The watch's lines (stdout is no terminal): the task, as it ran, on stderr.
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&ami)).collect();
    assert!(!lines.is_empty(), "the watch's lines: {stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("us-east-1") && l.contains(&bucket)),
        "{stderr}"
    );
    assert_eq!(fx.calls("CreateStoreImageTask"), 1);

    let others = describes_naming(&fx, &other);
    assert!(
        others.len() >= 5,
        "the second statement's watch polled for 2 s: {others:?}"
    );
    let ours = describes_naming(&fx, &ami);
    // Three polls of the second watch in, the INSERT's watch has long been dropped.
    let late: Vec<usize> = ours.into_iter().filter(|&i| i > others[2]).collect();
    assert!(
        late.is_empty(),
        "polls naming {ami} after the INSERT returned: {late:?} (the other watch's: {others:?})"
    );
}

#[tokio::test]
async fn the_cli_exits_one_with_the_reason_when_an_awaited_task_failed_and_csv_stays_data() {
    let (fx, _) = fixture().await;
    let amis = fx.emulator.storable_amis("eu-west-1");
    let bucket = fx.emulator.buckets("eu-west-1")[0].clone();
    // aws.await set by a statement (no hint), CSV output.
    let statements = format!(
        "SET aws.await = true; INSERT INTO store_image_tasks (region, amiId, bucket) \
         VALUES ('eu-west-1', '{}', '{bucket}'), ('eu-west-1', '{}', '{FAILING}')",
        amis[0], amis[1]
    );
    let out = sql_cli(
        &fx,
        &[
            "--set",
            "aws.await_interval=0.1",
            "--format",
            "csv",
            &statements,
        ],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // stdout holds the result row and nothing else.
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0], "count,regions,completed,failed,failures");
    assert!(
        rows[1].starts_with(&format!("2,eu-west-1,1,1,{} in eu-west-1: ", amis[1])),
        "{stdout}"
    );
    for expected in [
        "2 tasks created in eu-west-1; awaited: 1 completed, 1 failed".to_owned(),
        format!(
            "{} in eu-west-1 failed: {}",
            amis[1],
            ec2_emulator::DEFAULT_FAIL_REASON
        ),
        "1 of 2 stored tasks failed (the INSERT itself succeeded".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{expected} in {stderr}");
    }
    // The watch followed both tasks (SET aws.await made the CLI see the wait).
    for ami in &amis[..2] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(ami.as_str()) && !l.contains("failed")),
            "a watch line of {ami}: {stderr}"
        );
    }
    assert_eq!(fx.calls("CreateStoreImageTask"), 2);
}

#[tokio::test]
async fn a_refused_watch_does_not_fail_the_awaiting_insert() {
    let (fx, _) = fixture_with(|server| server.limits.max_watch = Duration::ZERO).await;
    let ami = fx.emulator.storable_amis("us-west-2")[1].clone();
    let bucket = fx.emulator.buckets("us-west-2")[0].clone();
    let out = sql_cli(
        &fx,
        &[
            "--set",
            "aws.await_interval=100ms",
            &format!(
                "INSERT /*+ AWAIT */ INTO store_image_tasks (region, amiId, bucket) \
                 VALUES ('us-west-2', '{ami}', '{bucket}')"
            ),
        ],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 task created in us-west-2; awaited: 1 completed, 0 failed"),
        "{stdout}"
    );
    // It says why there are no bars, and nothing fails.
    assert!(
        stderr.contains("no progress bars:") && stderr.contains("--max-watch is 0s"),
        "{stderr}"
    );
    assert!(!stderr.contains("error:"), "{stderr}");
}
