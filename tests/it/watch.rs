//! `watch_store_image_tasks(...)` through the Flight client against the server and the
//! emulator: the batches follow the emulator's progress sequence, the stream ends when every
//! task is terminal, polls use ImageIds, polling stops when the client drops the stream,
//! EXPLAIN shows the plan, bad arguments get clear errors, a watch outlives the query
//! timeout; and the CLI's `watch` command (plain lines when stdout is not a terminal, exit
//! codes).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, TimestampMillisecondType};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::sql::client::FlightSqlServiceClient;
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::common::{to_status, Fixture};

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");
const REGION: &str = "us-east-1";
/// How long a task created in the tests takes on the emulator's (frozen) clock.
const TASK_SECONDS: u64 = 10;

/// One region, no sample tasks, a frozen clock and tasks of [`TASK_SECONDS`].
fn options() -> EmulatorOptions {
    EmulatorOptions {
        regions: vec![REGION.to_owned()],
        tasks_per_region: 0,
        freeze_time: true,
        task_duration: Duration::from_secs(TASK_SECONDS),
        ..EmulatorOptions::default()
    }
}

/// `n` storable AMIs of the region and a bucket it owns.
fn amis_and_bucket(fx: &Fixture, n: usize) -> (Vec<String>, String) {
    let amis: Vec<String> = fx
        .emulator
        .storable_amis(REGION)
        .into_iter()
        .take(n)
        .collect();
    assert_eq!(amis.len(), n, "the emulator has {n} storable AMIs");
    (amis, fx.emulator.buckets(REGION)[0].clone())
}

/// Opens the watch `sql`: the client (kept alive with the stream) and the DoGet stream.
async fn open(
    fx: &Fixture,
    sql: &str,
) -> Result<(FlightSqlServiceClient<Channel>, FlightRecordBatchStream), tonic::Status> {
    let mut client = fx.client().await;
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .map_err(|e| tonic::Status::unknown(e.to_string()))?;
    let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
    let stream = client.do_get(ticket).await.map_err(to_status)?;
    Ok((client, stream))
}

/// Runs `sql` to its error.
async fn error_of(fx: &Fixture, sql: &str) -> tonic::Status {
    match fx.query(sql).await {
        Ok(_) => panic!("{sql} should fail"),
        Err(status) => status,
    }
}

/// One watched row: AMI, progress, state, failure reason, observedAt (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    ami: String,
    progress: i32,
    state: String,
    reason: Option<String>,
    observed_ms: i64,
}

fn seen(batch: &RecordBatch) -> Vec<Seen> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .clone()
    };
    let (ami, state, reason) = (
        text("amiId"),
        text("storeTaskState"),
        text("storeTaskFailureReason"),
    );
    let progress = batch
        .column_by_name("progressPercentage")
        .unwrap()
        .as_primitive::<Int32Type>()
        .clone();
    let observed = batch
        .column_by_name("observedAt")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>()
        .clone();
    let mut rows: Vec<Seen> = (0..batch.num_rows())
        .map(|i| Seen {
            ami: ami.value(i).to_owned(),
            progress: progress.value(i),
            state: state.value(i).to_owned(),
            reason: (!reason.is_null(i)).then(|| reason.value(i).to_owned()),
            observed_ms: observed.value(i),
        })
        .collect();
    rows.sort_by(|a, b| a.ami.cmp(&b.ami));
    rows
}

/// What the emulator's formula gives after `elapsed_ms` for a task of [`TASK_SECONDS`] that
/// fails halfway (`fails`) or not: progress, state.
fn expected(elapsed_ms: u64, fails: bool) -> (i32, &'static str) {
    let total = TASK_SECONDS * 1000;
    let percent = |ms: u64| (ms.min(total) * 100 / total) as i32;
    if fails && elapsed_ms >= total / 2 {
        (percent(total / 2).min(99), "Failed")
    } else if elapsed_ms >= total {
        (100, "Completed")
    } else {
        (percent(elapsed_ms).min(99), "InProgress")
    }
}

fn advance(fx: &Fixture, seconds: f64) {
    fx.emulator
        .update_config(ConfigUpdate {
            advance_seconds: Some(seconds),
            ..ConfigUpdate::default()
        })
        .expect("the emulator clock moves");
}

/// The DescribeStoreImageTasks requests the emulator received: their ImageId values (empty
/// for a listing).
fn describe_image_ids(fx: &Fixture) -> Vec<Vec<String>> {
    fx.emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .map(|r| {
            r.params
                .iter()
                .filter(|(k, _)| k.starts_with("ImageId."))
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn batches_follow_the_emulator_progress_and_the_stream_ends_when_all_are_done() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 2);
    let (good, bad) = (amis[0].clone(), amis[1].clone());
    // A bucket the region does not own makes the emulator fail the task halfway.
    let created = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES \
             ('{REGION}', '{good}', '{bucket}'), ('{REGION}', '{bad}', 'no-such-bucket-here')"
        ))
        .await
        .unwrap();
    assert_eq!(created, 2);
    fx.emulator.clear_requests();
    // No amiId predicate: the first poll is a listing, the later ones ask ImageIds.
    let (_client, mut stream) = open(
        &fx,
        &format!(
            "SELECT amiId, progressPercentage, storeTaskState, storeTaskFailureReason, \
             observedAt FROM watch_store_image_tasks(interval => '200 milliseconds', \
             timeout => '5 minutes') WHERE region = '{REGION}'"
        ),
    )
    .await
    .unwrap();
    let started_ms = chrono::Utc::now().timestamp_millis();
    let mut elapsed_ms = 0;
    let mut last_observed = 0;
    let mut batches = 0;
    // (seconds to move the emulator clock, the AMIs expected to change)
    let steps: [(f64, &[&String]); 4] = [
        (0.0, &[&bad, &good]),
        (2.5, &[&bad, &good]),
        (2.5, &[&bad, &good]),
        (5.0, &[&good]),
    ];
    for (seconds, changed) in steps {
        advance(&fx, seconds);
        elapsed_ms += (seconds * 1000.0) as u64;
        let batch = stream
            .try_next()
            .await
            .unwrap()
            .expect("a batch after the clock moved");
        batches += 1;
        let rows = seen(&batch);
        let amis: Vec<&String> = rows.iter().map(|r| &r.ami).collect();
        let mut want: Vec<&String> = changed.to_vec();
        want.sort();
        assert_eq!(amis, want, "batch {batches}: the tasks that changed");
        for row in &rows {
            let fails = row.ami == bad;
            let (progress, state) = expected(elapsed_ms, fails);
            assert_eq!(
                (row.progress, row.state.as_str()),
                (progress, state),
                "batch {batches}, {} after {elapsed_ms} ms",
                row.ami
            );
            assert_eq!(row.reason.is_some(), state == "Failed", "{row:?}");
            assert!(row.observed_ms >= started_ms - 1000, "{row:?}");
            assert!(
                row.observed_ms >= last_observed,
                "observedAt never goes back"
            );
        }
        last_observed = rows[0].observed_ms;
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends once every task is Completed or Failed"
    );
    // The first call is the listing; every later call asks ImageIds: both AMIs while both
    // ran, the good one alone once the bad one failed.
    let calls = describe_image_ids(&fx);
    assert!(calls[0].is_empty(), "{calls:?}");
    assert!(calls.len() >= 4, "{calls:?}");
    let mut both = vec![good.clone(), bad.clone()];
    both.sort();
    for ids in &calls[1..] {
        let mut ids = ids.clone();
        ids.sort();
        assert!(ids == both || ids == [good.clone()], "{calls:?}");
    }
    assert_eq!(
        calls.last().unwrap(),
        std::slice::from_ref(&good),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_state_predicate_chooses_the_tasks_and_their_later_rows_follow_whatever_the_state() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 2);
    let insert = |ami: &str| {
        format!("INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{ami}', '{bucket}')")
    };
    // The first task is done before the watch starts; the second one runs.
    fx.update(&insert(&amis[0])).await.unwrap();
    advance(&fx, TASK_SECONDS as f64);
    fx.update(&insert(&amis[1])).await.unwrap();
    let (_client, mut stream) = open(
        &fx,
        "SELECT amiId, progressPercentage, storeTaskState, storeTaskFailureReason, observedAt \
         FROM watch_store_image_tasks('200ms') WHERE storeTaskState = 'InProgress'",
    )
    .await
    .unwrap();
    let first = seen(&stream.try_next().await.unwrap().expect("the running task"));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (first[0].ami.as_str(), first[0].state.as_str()),
        (amis[1].as_str(), "InProgress")
    );
    advance(&fx, TASK_SECONDS as f64);
    let last = seen(&stream.try_next().await.unwrap().expect("its completion"));
    assert_eq!(
        (
            last[0].ami.as_str(),
            last[0].progress,
            last[0].state.as_str()
        ),
        (amis[1].as_str(), 100, "Completed"),
        "the predicate chose the task; its Completed row is not filtered out"
    );
    assert!(stream.try_next().await.unwrap().is_none());
}

#[tokio::test]
async fn polling_stops_when_the_client_drops_the_stream() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 1);
    fx.update(&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
        amis[0]
    ))
    .await
    .unwrap();
    fx.emulator.clear_requests();
    let (client, mut stream) = open(
        &fx,
        &format!(
            "SELECT * FROM watch_store_image_tasks('200ms') WHERE amiId = '{}'",
            amis[0]
        ),
    )
    .await
    .unwrap();
    let first = stream.try_next().await.unwrap().expect("the first poll");
    assert_eq!(first.num_rows(), 1);
    // The frozen clock keeps the task running: the watch polls on, ImageIds only.
    let waiting = Instant::now();
    while describe_image_ids(&fx).len() < 4 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the watch polls every 200 ms"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(describe_image_ids(&fx)
        .iter()
        .all(|ids| ids == &[amis[0].clone()]));
    drop(stream);
    drop(client);
    // A poll already sent may still arrive; after that, none: in 15 more intervals a
    // watch that polled on would have called again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_drop = describe_image_ids(&fx).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        describe_image_ids(&fx).len(),
        after_drop,
        "no AWS call after the client went away"
    );
}

#[tokio::test]
async fn explain_shows_the_polling_plan() {
    let fx = Fixture::start_with(options()).await;
    let (amis, _) = amis_and_bucket(&fx, 1);
    let (_, batches) = fx
        .query(&format!(
            "EXPLAIN SELECT amiId, observedAt FROM watch_store_image_tasks(interval => \
             '2 seconds', until => 'done', timeout => '10 minutes') WHERE region = '{REGION}' \
             AND amiId = '{}'",
            amis[0]
        ))
        .await
        .unwrap();
    let plan: String = batches
        .iter()
        .flat_map(|b| {
            let text = b.column(1).as_string::<i32>().clone();
            (0..b.num_rows())
                .map(|i| text.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        plan.contains("WatchStoreImageTasksExec: interval=2s, until=done, timeout=10m"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "/{REGION}: DescribeStoreImageTasks(ImageIds=[\"{}\"])",
            amis[0]
        )),
        "{plan}"
    );
    assert!(
        plan.contains("then every 2s: DescribeStoreImageTasks(ImageIds="),
        "{plan}"
    );
    // EXPLAIN makes no call.
    assert_eq!(fx.calls("DescribeStoreImageTasks"), 0);
}

#[tokio::test]
async fn bad_arguments_get_clear_errors() {
    let fx = Fixture::start_configured(options(), |server| {
        server.limits.max_watch = Duration::from_secs(600);
    })
    .await;
    let cases = [
        (
            "SELECT * FROM watch_store_image_tasks(every => '1s')",
            "no parameter `every`: watch_store_image_tasks takes interval, until, timeout",
        ),
        (
            "SELECT * FROM watch_store_image_tasks(interval => 'soon')",
            "interval is a duration such as '5 seconds'",
        ),
        (
            "SELECT * FROM watch_store_image_tasks(until => 'forever')",
            "until is 'done'",
        ),
        (
            "SELECT * FROM watch_store_image_tasks(timeout => '1 hour')",
            "timeout 1h is longer than this server lets a watch run (10m, --max-watch)",
        ),
        (
            "SELECT * FROM watch_store_image_tasks('10ms')",
            "shorter than the shortest allowed (100ms)",
        ),
    ];
    for (sql, message) in cases {
        let status = error_of(&fx, sql).await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{sql}: {status:?}"
        );
        assert!(
            status.message().contains(message),
            "{sql}: {}",
            status.message()
        );
    }
    assert_eq!(fx.calls("DescribeStoreImageTasks"), 0);
}

#[tokio::test]
async fn a_watch_runs_past_the_query_timeout_for_its_own_timeout() {
    let fx = Fixture::start_configured(options(), |server| {
        server.limits.queries.query_timeout = Some(Duration::from_secs(2));
    })
    .await;
    let (amis, bucket) = amis_and_bucket(&fx, 1);
    fx.update(&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
        amis[0]
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let (_client, stream) = open(
        &fx,
        &format!(
            "SELECT amiId FROM watch_store_image_tasks('500ms', 'timeout', '4 seconds') \
             WHERE amiId = '{}'",
            amis[0]
        ),
    )
    .await
    .unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.expect("no DEADLINE_EXCEEDED");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "until => 'timeout' runs to the timeout, past the 2 s query timeout"
    );
}

#[tokio::test]
async fn a_task_started_after_the_watch_began_joins_it_with_until_timeout() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 1);
    let (_client, mut stream) = open(
        &fx,
        &format!(
            "SELECT amiId, storeTaskState FROM watch_store_image_tasks(interval => '200ms', \
             until => 'timeout', timeout => '5 minutes') WHERE amiId = '{}'",
            amis[0]
        ),
    )
    .await
    .unwrap();
    // Nothing to show yet: the stream waits. Start the task, then it arrives.
    fx.update(&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
        amis[0]
    ))
    .await
    .unwrap();
    let batch = stream.try_next().await.unwrap().expect("the new task");
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "InProgress");
    advance(&fx, TASK_SECONDS as f64);
    let batch = stream.try_next().await.unwrap().expect("its completion");
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "Completed");
}

/// Runs `aws-flightsql watch --connect URI args...` with stdout a pipe.
async fn watch_cli(uri: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(["watch", "--connect", uri]).args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cli_logs_lines_and_exits_zero_when_all_completed() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 1);
    fx.update(&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}')",
        amis[0]
    ))
    .await
    .unwrap();
    // The task is done by the emulator's clock before the watch starts: one poll.
    advance(&fx, TASK_SECONDS as f64);
    let out = watch_cli(
        &fx.server.uri(),
        &["--region", REGION, "--ami", &amis[0], "--interval", "200ms"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains(&amis[0]))
        .unwrap_or_else(|| panic!("a line for the task: {stdout}"));
    for part in [REGION, bucket.as_str(), "100%", "Completed"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(stdout.contains("1 task completed"), "{stdout}");
}

#[tokio::test]
async fn the_cli_exits_non_zero_and_prints_the_reason_when_a_task_failed() {
    let fx = Fixture::start_with(options()).await;
    let (amis, bucket) = amis_and_bucket(&fx, 2);
    fx.update(&format!(
        "INSERT INTO store_image_tasks (amiId, bucket) VALUES ('{}', '{bucket}'), \
         ('{}', 'no-such-bucket-here')",
        amis[0], amis[1]
    ))
    .await
    .unwrap();
    advance(&fx, TASK_SECONDS as f64);
    let ami_args: Vec<&str> = amis.iter().flat_map(|a| ["--ami", a.as_str()]).collect();
    let mut args = vec!["--interval", "200ms"];
    args.extend(ami_args);
    let out = watch_cli(&fx.server.uri(), &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 task completed, 1 failed"), "{stdout}");
    assert!(
        stderr.contains(&format!("{} in {REGION} failed: Access Denied", amis[1])),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-bucket-here"), "{stderr}");
}

#[tokio::test]
async fn the_cli_says_when_nothing_matches_and_when_the_server_is_wrong() {
    let fx = Fixture::start_with(options()).await;
    let out = watch_cli(&fx.server.uri(), &["--ami", "ami-00000000000000000"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no store image task matches"), "{stderr}");
    let out = watch_cli(&fx.server.uri(), &["--interval", "1ms"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shorter than the shortest allowed"),
        "{stderr}"
    );
}
