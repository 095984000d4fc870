//! Who may connect and who may write: the users file, the Flight handshake and its bearer
//! tokens, Basic credentials on every call, roles (a `read` user's writes refused by every
//! path before any AWS call, whatever the session says), TLS and mutual TLS, the
//! unauthenticated-exposure refusal, the login throttle (delays, lockout per user name and
//! address, failure budget per address), and the limits (concurrent queries, query timeout,
//! SQL, message and header sizes).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::UInt32Type;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandStatementIngest, ProstMessageExt, SqlInfo, TicketStatementQuery};
use arrow_flight::{Action, Criteria, Empty, HandshakeRequest, Ticket};
use aws_flightsql::auth::{token, AuthOptions, LoginLimits};
use aws_flightsql::client::{connect_with, ConnectOptions};
use aws_flightsql::flight::session::proto::{
    session_option_value::OptionValue, SessionOptionValue, SetSessionOptionsRequest,
    SET_SESSION_OPTIONS,
};
use aws_flightsql::flight::SESSION_COOKIE;
use aws_flightsql::limits::{QueryLimits, ServerLimits};
use aws_flightsql::metrics::Metrics;
use aws_flightsql::server::{Server, ServerOptions};
use aws_flightsql::tls::{ClientTls, TlsFiles};
use base64::Engine;
use common::secure::{users_file, Ca, TempDir};
use common::{channel, statement, to_status, Fixture};
use ec2_emulator::{ConfigUpdate, EmulatorOptions};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

const ALICE: (&str, &str) = ("alice", "alice-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-1");
const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

/// A server with a users file (alice writes, bob reads) and a known token secret.
async fn secured(emulator: EmulatorOptions, dir: &TempDir) -> Fixture {
    secured_with(emulator, dir, LoginLimits::default()).await.0
}

/// Like `secured`, with the login throttle set to `login`; also returns the server's metrics.
async fn secured_with(
    emulator: EmulatorOptions,
    dir: &TempDir,
    login: LoginLimits,
) -> (Fixture, Arc<Metrics>) {
    let users = users_file(dir, &[(ALICE.0, ALICE.1, "write"), (BOB.0, BOB.1, "read")]);
    let secret = dir.write("token.key", SECRET);
    let metrics = Arc::new(Metrics::default());
    let fx = Fixture::start_configured(emulator, |server| {
        server.auth = AuthOptions {
            users_file: Some(users),
            token_secret_file: Some(secret),
            login,
            ..AuthOptions::default()
        };
        server.aws.metrics = Arc::clone(&metrics);
    })
    .await;
    (fx, metrics)
}

fn small() -> EmulatorOptions {
    EmulatorOptions {
        regions: common::REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 5,
        freeze_time: true,
        ..EmulatorOptions::default()
    }
}

fn basic((user, password): (&str, &str)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn with_auth<T>(message: T, authorization: Option<&str>) -> Request<T> {
    common::with_metadata(message, "authorization", authorization)
}

/// A Flight handshake with Basic credentials; returns the `Bearer ...` header value.
async fn handshake(
    client: &mut FlightServiceClient<Channel>,
    user: (&str, &str),
) -> Result<String, tonic::Status> {
    let request = with_auth(
        futures::stream::iter([HandshakeRequest::default()]),
        Some(&basic(user)),
    );
    let response = client.handshake(request).await?;
    let header = response
        .metadata()
        .get("authorization")
        .expect("a handshake answers with an authorization header")
        .to_str()
        .unwrap()
        .to_owned();
    let _: Vec<_> = response.into_inner().try_collect().await?;
    Ok(header)
}

/// A Flight SQL client authenticated as `user` through a handshake.
async fn client_as(fx: &Fixture, user: (&str, &str)) -> FlightSqlServiceClient<Channel> {
    connect_with(
        &fx.server.uri(),
        &ConnectOptions {
            credentials: Some((user.0.into(), user.1.into())),
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn count_rows(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> usize {
    let (_, batches) = aws_flightsql::client::query(client, sql)
        .await
        .map_err(to_status)
        .unwrap();
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn a_handshake_answers_with_a_bearer_token_that_authenticates_later_calls() {
    let dir = TempDir::new();
    let fx = secured(small(), &dir).await;
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let bearer = handshake(&mut raw, ALICE).await.unwrap();
    assert!(bearer.starts_with("Bearer "), "{bearer}");

    // The token alone authenticates GetFlightInfo and DoGet.
    let info = raw
        .get_flight_info(with_auth(
            statement("SELECT amiId FROM store_image_tasks"),
            Some(&bearer),
        ))
        .await
        .unwrap()
        .into_inner();
    let data: Vec<_> = raw
        .do_get(with_auth(
            info.endpoint[0].ticket.clone().unwrap(),
            Some(&bearer),
        ))
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    assert!(data.len() > 1, "schema and batches");

    // arrow-flight's Flight SQL client: handshake(user, password), then queries.
    let mut client = client_as(&fx, BOB).await;
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        15
    );
}

#[tokio::test]
async fn basic_credentials_work_on_every_call_without_a_handshake() {
    let dir = TempDir::new();
    let fx = secured(small(), &dir).await;
    let mut client = FlightSqlServiceClient::new(channel(&fx.server.uri()).await);
    client.set_header("authorization", basic(BOB));
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        15
    );
    let mut prepared = client
        .prepare("SELECT count(*) FROM store_image_tasks".into(), None)
        .await
        .map_err(to_status)
        .unwrap();
    let info = prepared.execute().await.map_err(to_status).unwrap();
    assert_eq!(info.endpoint.len(), 1);
    let tables = client
        .get_tables(Default::default())
        .await
        .map_err(to_status)
        .unwrap();
    assert_eq!(tables.endpoint.len(), 1);

    // Without the base64 padding, as the Go Flight client (ADBC) sends it.
    let unpadded =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{}:{}", ALICE.0, ALICE.1));
    assert_ne!(
        format!("{}:{}", ALICE.0, ALICE.1).len() % 3,
        0,
        "needs padding"
    );
    let mut client = FlightSqlServiceClient::new(channel(&fx.server.uri()).await);
    client.set_header("authorization", format!("Basic {unpadded}"));
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        15
    );
}

#[tokio::test]
async fn calls_without_good_credentials_are_unauthenticated_and_health_stays_open() {
    let dir = TempDir::new();
    // 14 wrong passwords for alice: no lockout or delay here (the login throttle is tested
    // on its own), so every refusal says what was wrong.
    let lenient = LoginLimits {
        max_failures: 1000,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        address_failures: 0,
        ..LoginLimits::default()
    };
    let (fx, _) = secured_with(small(), &dir, lenient).await;
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let good = handshake(&mut raw, ALICE).await.unwrap();
    let expired = format!(
        "Bearer {}",
        token::expired_token(SECRET.as_bytes(), "alice", Duration::from_secs(10))
    );
    let foreign = format!(
        "Bearer {}",
        aws_flightsql::auth::Tokens::new(
            b"another server's key, 32 bytes long!",
            Duration::from_secs(60)
        )
        .issue("alice")
    );
    let tampered = {
        let mut t = good.clone();
        t.pop();
        t.push(if good.ends_with('A') { 'B' } else { 'A' });
        t
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no credentials", None, "requires authentication"),
        (
            "wrong password",
            Some(basic((ALICE.0, "not-her-password"))),
            "wrong user name or password",
        ),
        (
            "unknown user",
            Some(basic(("mallory", ALICE.1))),
            "wrong user name or password",
        ),
        (
            "password of another user",
            Some(basic((ALICE.0, BOB.1))),
            "wrong user name or password",
        ),
        ("expired token", Some(expired), "expired"),
        ("token of another server", Some(foreign), "not valid"),
        ("tampered token", Some(tampered), "not valid"),
        ("garbage bearer", Some("Bearer garbage".into()), "not valid"),
        // flightsql-dbapi (Superset) without credentials.
        (
            "bearer None",
            Some("Bearer None".into()),
            "the client sent no credentials",
        ),
        ("unknown scheme", Some("Digest abc".into()), "malformed"),
        (
            "basic without colon",
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice")
            )),
            "malformed",
        ),
        ("basic not base64", Some("Basic !!!".into()), "malformed"),
        ("no scheme", Some("alice".into()), "malformed"),
    ];
    fx.emulator.clear_requests();
    for (what, header, says) in &cases {
        let header = header.as_deref();
        let mut results: Vec<(&str, Result<(), tonic::Status>)> = vec![
            (
                "GetFlightInfo",
                raw.get_flight_info(with_auth(statement("SELECT 1"), header))
                    .await
                    .map(drop),
            ),
            (
                "DoGet",
                raw.do_get(with_auth(Ticket::new("x"), header))
                    .await
                    .map(drop),
            ),
            (
                "DoAction",
                raw.do_action(with_auth(Action::new("CancelFlightInfo", ""), header))
                    .await
                    .map(drop),
            ),
            (
                "ListActions",
                raw.list_actions(with_auth(Empty {}, header))
                    .await
                    .map(drop),
            ),
            (
                "ListFlights",
                raw.list_flights(with_auth(Criteria::default(), header))
                    .await
                    .map(drop),
            ),
            (
                "GetSchema",
                raw.get_schema(with_auth(statement("SELECT 1"), header))
                    .await
                    .map(drop),
            ),
        ];
        // A handshake with bad credentials is refused too (a good bearer is not tested here).
        results.push((
            "Handshake",
            raw.handshake(with_auth(
                futures::stream::iter([HandshakeRequest::default()]),
                header,
            ))
            .await
            .map(drop),
        ));
        for (rpc, result) in results {
            let status = result.expect_err(&format!("{what}: {rpc} succeeded"));
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{what}: {rpc}: {status}"
            );
            assert!(
                status.message().contains(says),
                "{what}: {rpc}: {}",
                status.message()
            );
        }
    }
    assert!(
        fx.emulator.requests().is_empty(),
        "an unauthenticated call reached AWS"
    );

    // The health service needs no credentials.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(channel(&fx.server.uri()).await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    aws_flightsql::client::health(&fx.server.uri(), &ClientTls::default())
        .await
        .unwrap();
}

const WRONG: &str = "wrong user name or password";
const LOCKED_OUT: &str =
    "too many failed logins for this user name from your address: try again in about";
const ADDRESS_SPENT: &str = "too many failed logins from your address: try again in about";

/// A Flight SQL client's handshake (arrow-flight's `FlightSqlServiceClient::handshake`, Basic
/// credentials) on `channel`.
async fn login(channel: &Channel, (user, password): (&str, &str)) -> Result<(), tonic::Status> {
    FlightSqlServiceClient::new(channel.clone())
        .handshake(user, password)
        .await
        .map(drop)
        .map_err(handshake_status)
}

/// The server's status in a failed handshake: arrow-flight reports it as text (`Can't
/// handshake code: '<the code's description>', message: "..."`).
fn handshake_status(e: arrow_flight::error::FlightError) -> tonic::Status {
    match e {
        arrow_flight::error::FlightError::Arrow(arrow::error::ArrowError::IpcError(text)) => {
            let code = (0..=16)
                .map(Code::from_i32)
                .find(|c| text.contains(&format!("code: '{}'", c.description())))
                .unwrap_or(Code::Unknown);
            tonic::Status::new(code, text)
        }
        other => to_status(other),
    }
}

/// The message of `result`, which must be UNAUTHENTICATED saying `says`.
fn refused_with(result: Result<(), tonic::Status>, says: &str) -> String {
    let status = result.expect_err(&format!("accepted; expected a refusal saying `{says}`"));
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains(says), "{}", status.message());
    status.message().to_owned()
}

/// The login throttle's refusals for `reason` the server counted.
fn throttled(metrics: &Metrics, reason: &str) -> u64 {
    let prefix = format!("aws_flightsql_logins_throttled_total{{reason=\"{reason}\"}} ");
    metrics
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// Short delays, so the tests do not wait the default ones.
fn quick_delays(login: LoginLimits) -> LoginLimits {
    LoginLimits {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        ..login
    }
}

#[tokio::test]
async fn after_max_failures_even_the_right_password_is_refused_until_the_lockout_ends() {
    let dir = TempDir::new();
    let lockout = Duration::from_secs(2);
    let (fx, metrics) = secured_with(
        small(),
        &dir,
        quick_delays(LoginLimits {
            max_failures: 3,
            lockout,
            ..LoginLimits::default()
        }),
    )
    .await;
    // A bearer token from before the lockout.
    let mut with_token = client_as(&fx, ALICE).await;
    let channel = channel(&fx.server.uri()).await;
    let wrong = (ALICE.0, "not-alices-password");
    for _ in 0..2 {
        refused_with(login(&channel, wrong).await, WRONG);
    }
    let before_last_failure = Instant::now();
    refused_with(login(&channel, wrong).await, WRONG);

    // Locked out: the right password gets the refusal a wrong one gets (the password is not
    // checked), in a handshake and as Basic credentials on a call.
    let right = refused_with(login(&channel, ALICE).await, LOCKED_OUT);
    let wrong_again = refused_with(login(&channel, wrong).await, LOCKED_OUT);
    let without_time = |m: &str| m.split(" about ").next().unwrap().to_owned();
    assert_eq!(without_time(&right), without_time(&wrong_again));
    let mut basic_client = FlightSqlServiceClient::new(channel.clone());
    basic_client.set_header("authorization", basic(ALICE));
    let on_a_call = basic_client
        .execute("SELECT 1".into(), None)
        .await
        .map(drop)
        .map_err(to_status);
    refused_with(on_a_call, LOCKED_OUT);
    assert_eq!(throttled(&metrics, "locked_out"), 3);
    assert_eq!(throttled(&metrics, "address"), 0);

    // The token issued before still works, and bob logs in from the same address.
    assert_eq!(
        count_rows(&mut with_token, "SELECT * FROM store_image_tasks").await,
        15
    );
    login(&channel, BOB).await.unwrap();

    // The lockout ends `lockout` after the last failure: then the right password works.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match login(&channel, ALICE).await {
            Ok(()) => break,
            Err(status) => {
                refused_with(Err(status), LOCKED_OUT);
                assert!(Instant::now() < deadline, "the lockout never ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(before_last_failure.elapsed() >= lockout);
    // The failures are forgotten: a wrong password is just wrong again.
    refused_with(login(&channel, wrong).await, WRONG);
    login(&channel, ALICE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_for_one_name_locks_out_no_other_user() {
    let dir = TempDir::new();
    // The default limits (5 failures, 5 minutes, 30 failures a minute per address), with
    // short delays.
    let (fx, metrics) = secured_with(small(), &dir, quick_delays(LoginLimits::default())).await;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(channel(&fx.server.uri()).await);
    }
    let channels = &channels;
    let mallory = futures::future::join_all((0..40).map(|i| async move {
        let guess = format!("guess-{i}");
        login(&channels[i % 4], ("mallory", &guess)).await
    }));
    let alice = futures::future::join_all(
        (0..10).map(|i| login(&channels[i % 4], (ALICE.0, "alice-guess"))),
    );
    // Bob logs in again and again during the flood, from the same address.
    let bob = async {
        for i in 0..5 {
            login(&channels[i % 4], BOB).await.unwrap();
        }
    };
    let (mallory, alice, ()) = tokio::join!(mallory, alice, bob);

    // Each flooded name was checked 5 times, then refused unchecked, however concurrent.
    let count = |results: &[Result<(), tonic::Status>], says: &str| {
        results
            .iter()
            .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated && s.message().contains(says)))
            .count()
    };
    assert_eq!(
        (count(&mallory, WRONG), count(&mallory, LOCKED_OUT)),
        (5, 35)
    );
    assert_eq!((count(&alice, WRONG), count(&alice, LOCKED_OUT)), (5, 5));
    assert_eq!(throttled(&metrics, "locked_out"), 40);
    assert_eq!(throttled(&metrics, "address"), 0);
    // Bob still logs in; alice is locked out from this address, her password too.
    login(&channels[1], BOB).await.unwrap();
    refused_with(login(&channels[1], ALICE).await, LOCKED_OUT);
}

#[tokio::test]
async fn wrong_passwords_are_answered_ever_more_slowly_one_by_one_or_all_at_once() {
    let dir = TempDir::new();
    let limits = LoginLimits {
        max_failures: 20,
        first_delay: Duration::from_millis(25),
        max_delay: Duration::from_millis(200),
        ..LoginLimits::default()
    };
    // 25 + 50 + 100 + 5 x 200 ms.
    let delays: Duration = (1..=8).map(|n| limits.delay_after(n)).sum();
    assert_eq!(delays, Duration::from_millis(1175));
    let (fx, _) = secured_with(small(), &dir, limits).await;
    let channel = channel(&fx.server.uri()).await;

    let started = Instant::now();
    for _ in 0..8 {
        refused_with(login(&channel, (ALICE.0, "alice-guess")).await, WRONG);
    }
    let one_by_one = started.elapsed();
    assert!(one_by_one >= delays, "8 failures in {one_by_one:?}");

    // Sent at once on one connection, a name's checks take turns: the delays add up alike.
    let started = Instant::now();
    let at_once =
        futures::future::join_all((0..8).map(|_| login(&channel, (BOB.0, "bob-guess")))).await;
    let all_at_once = started.elapsed();
    for result in at_once {
        refused_with(result, WRONG);
    }
    assert!(all_at_once >= delays, "8 failures in {all_at_once:?}");

    // Below the lockout the right password works at once (a success is not delayed).
    login(&channel, ALICE).await.unwrap();
}

#[tokio::test]
async fn guessing_many_user_names_from_one_address_spends_its_failure_budget() {
    let dir = TempDir::new();
    // 4 failures per 8 s from one address: one comes back every 2 s.
    let (fx, metrics) = secured_with(
        small(),
        &dir,
        quick_delays(LoginLimits {
            address_failures: 4,
            address_period: Duration::from_secs(8),
            ..LoginLimits::default()
        }),
    )
    .await;
    // Good logins do not spend the budget, and a token from before keeps working.
    for _ in 0..6 {
        login(&channel(&fx.server.uri()).await, BOB).await.unwrap();
    }
    let mut with_token = client_as(&fx, ALICE).await;
    let channel = channel(&fx.server.uri()).await;
    let mut results = Vec::new();
    for i in 0..10 {
        results.push(login(&channel, (&format!("user{i}"), "guess")).await);
    }
    for result in results.drain(..4) {
        refused_with(result, WRONG);
    }
    // The failure that finds the budget spent was checked; the next ones are not.
    let last = results.pop().unwrap();
    refused_with(last, ADDRESS_SPENT);
    for result in results {
        let status = result.unwrap_err();
        assert!(
            status.message().contains(WRONG) || status.message().contains(ADDRESS_SPENT),
            "{status}"
        );
    }
    // Every check from the address is refused now, a known user's right password too...
    refused_with(login(&channel, BOB).await, ADDRESS_SPENT);
    assert!(throttled(&metrics, "address") >= 2);
    assert_eq!(throttled(&metrics, "locked_out"), 0);
    // ...bearer tokens are no password checks...
    assert_eq!(count_rows(&mut with_token, "SELECT 1").await, 1);
    // ...and when a failure's worth comes back, a check is let through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match login(&channel, BOB).await {
            Ok(()) => break,
            Err(status) => {
                refused_with(Err(status), ADDRESS_SPENT);
                assert!(Instant::now() < deadline, "the budget never came back");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// An INSERT of one task into eu-west-1.
fn insert_sql(fx: &Fixture, n: usize) -> String {
    format!(
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '{}', '{}')",
        fx.emulator.storable_amis("eu-west-1")[n],
        fx.emulator.buckets("eu-west-1")[0]
    )
}

fn forged_insert_ticket(sql: &str) -> Ticket {
    #[derive(Clone, PartialEq, prost::Message)]
    struct StatementTicket {
        #[prost(string, tag = "1")]
        sql: String,
        #[prost(string, tag = "4")]
        query_id: String,
    }
    let statement = StatementTicket {
        sql: sql.into(),
        query_id: "forged".into(),
    };
    let ticket = TicketStatementQuery {
        statement_handle: statement.encode_to_vec().into(),
    };
    Ticket::new(ticket.as_any().encode_to_vec())
}

#[tokio::test]
async fn a_read_user_cannot_write_by_any_path_whatever_the_session_says() {
    let dir = TempDir::new();
    let fx = secured(small(), &dir).await;
    let sql = insert_sql(&fx, 0);
    let mut bob = client_as(&fx, BOB).await;
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let bob_basic = basic(BOB);
    fx.emulator.clear_requests();

    let mut refusals: Vec<(&str, tonic::Status)> = Vec::new();
    // INSERT as a query (GetFlightInfo) and as an update (DoPut).
    refusals.push((
        "execute",
        bob.execute(sql.clone(), None)
            .await
            .map_err(to_status)
            .unwrap_err(),
    ));
    refusals.push((
        "execute_update",
        bob.execute_update(sql.clone(), None)
            .await
            .map_err(to_status)
            .unwrap_err(),
    ));
    // A prepared INSERT is refused when prepared.
    refusals.push((
        "prepare",
        bob.prepare(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ($1, $2, $3)".into(),
            None,
        )
        .await
        .map_err(to_status)
        .unwrap_err(),
    ));
    // Bulk ingest.
    let rows = RecordBatch::try_from_iter([
        (
            "region",
            Arc::new(StringArray::from(vec!["eu-west-1"])) as _,
        ),
        (
            "amiId",
            Arc::new(StringArray::from(vec![fx
                .emulator
                .storable_amis("eu-west-1")[1]
                .clone()])) as _,
        ),
        (
            "bucket",
            Arc::new(StringArray::from(vec![
                fx.emulator.buckets("eu-west-1")[0].clone()
            ])) as _,
        ),
    ])
    .unwrap();
    refusals.push((
        "ingest",
        bob.execute_ingest(
            CommandStatementIngest {
                table: "store_image_tasks".into(),
                ..Default::default()
            },
            futures::stream::iter([Ok(rows)]),
        )
        .await
        .map_err(to_status)
        .unwrap_err(),
    ));
    // SET in the session, then INSERT with the session's cookie: nothing a client can set
    // decides permissions.
    for set in [
        "SET aws.dry_run = true",
        "SET aws.dry_run = false",
        "SET datafusion.sql_parser.dialect = 'PostgreSQL'",
    ] {
        let response = raw
            .get_flight_info(with_auth(statement(set), Some(&bob_basic)))
            .await
            .unwrap();
        let cookie = response
            .metadata()
            .get("set-cookie")
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
        let mut request = with_auth(statement(&sql), Some(&bob_basic));
        if let Some(cookie) = &cookie {
            assert!(cookie.starts_with(SESSION_COOKIE));
            request
                .metadata_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        refusals.push((set, raw.get_flight_info(request).await.unwrap_err()));
    }
    // The session options action, then INSERT.
    let mut options = std::collections::HashMap::new();
    options.insert(
        "aws.dry_run".to_owned(),
        SessionOptionValue {
            option_value: Some(OptionValue::BoolValue(true)),
        },
    );
    let response = raw
        .do_action(with_auth(
            Action::new(
                SET_SESSION_OPTIONS,
                SetSessionOptionsRequest {
                    session_options: options,
                }
                .encode_to_vec(),
            ),
            Some(&bob_basic),
        ))
        .await
        .unwrap();
    let cookie = response
        .metadata()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut request = with_auth(statement(&sql), Some(&bob_basic));
    request
        .metadata_mut()
        .insert("cookie", cookie.parse().unwrap());
    refusals.push((
        "SetSessionOptions",
        raw.get_flight_info(request).await.unwrap_err(),
    ));
    // A forged ticket carrying the INSERT.
    refusals.push((
        "forged ticket",
        raw.do_get(with_auth(forged_insert_ticket(&sql), Some(&bob_basic)))
            .await
            .unwrap_err(),
    ));

    for (path, status) in &refusals {
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status}");
        assert!(
            status.message().contains("bob") && status.message().contains("role `read`"),
            "{path}: {}",
            status.message()
        );
    }
    assert_eq!(refusals.len(), 9);
    assert!(
        fx.emulator.requests().is_empty(),
        "a refused write reached AWS: {:?}",
        fx.emulator.requests()
    );

    // Bob can read; alice can write, and a forged ticket does not run her INSERT either.
    assert_eq!(
        count_rows(&mut bob, "SELECT * FROM store_image_tasks").await,
        15
    );
    let mut alice = client_as(&fx, ALICE).await;
    assert_eq!(
        alice
            .execute_update(sql.clone(), None)
            .await
            .map_err(to_status)
            .unwrap(),
        1
    );
    let ami = fx.emulator.storable_amis("eu-west-1");
    let err = raw
        .do_get(with_auth(
            forged_insert_ticket(&insert_sql(&fx, 0)),
            Some(&basic(ALICE)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("tickets never"), "{}", err.message());
    assert!(!ami.is_empty());
    assert_eq!(fx.calls("CreateStoreImageTask"), 1);

    // EXPLAIN ANALYZE would run the INSERT where the role check and the run-once rule do
    // not look: refused for every caller and by every path, before any AWS call.
    let analyze = format!("EXPLAIN ANALYZE {}", insert_sql(&fx, 2));
    for (who, client, credentials) in [
        ("bob", &mut bob, basic(BOB)),
        ("alice", &mut alice, basic(ALICE)),
    ] {
        let prepared = "EXPLAIN ANALYZE INSERT INTO store_image_tasks (region, amiId, bucket) \
                        VALUES ($1, $2, $3)";
        let wrapped = [
            client.execute(analyze.clone(), None).await.map(drop),
            client.execute_update(analyze.clone(), None).await.map(drop),
            client.prepare(prepared.into(), None).await.map(drop),
        ];
        for (i, outcome) in wrapped.into_iter().enumerate() {
            let status = outcome.map_err(to_status).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{who} {i}: {status}");
            assert!(
                status
                    .message()
                    .contains("EXPLAIN ANALYZE of an INSERT is refused"),
                "{who} {i}: {status}"
            );
        }
        let forged = raw
            .do_get(with_auth(
                forged_insert_ticket(&analyze),
                Some(&credentials),
            ))
            .await
            .unwrap_err();
        assert_eq!(forged.code(), Code::InvalidArgument, "{who}: {forged}");
    }
    // Nor can a wrapper write files: EXPLAIN ANALYZE of a COPY TO is refused too.
    let target = std::env::temp_dir().join(format!("aws-flightsql-{}.csv", std::process::id()));
    let copy = format!(
        "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{}'",
        target.display()
    );
    let status = bob
        .execute(copy, None)
        .await
        .map_err(to_status)
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(!target.exists(), "a COPY wrote {}", target.display());
    // EXPLAIN alone plans and never writes, for a read user too.
    assert!(count_rows(&mut bob, &format!("EXPLAIN {}", insert_sql(&fx, 2))).await > 0);
    assert_eq!(fx.calls("CreateStoreImageTask"), 1, "a wrapper wrote");
}

/// GetSqlInfo's boolean answers for `ids`, as `client`'s user sees them.
async fn sql_info_flags(
    client: &mut FlightSqlServiceClient<Channel>,
    ids: &[SqlInfo],
) -> Vec<(u32, bool)> {
    let info = client.get_sql_info(ids.to_vec()).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<RecordBatch> = client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut flags = Vec::new();
    for batch in &batches {
        let names = batch.column(0).as_primitive::<UInt32Type>();
        let values = batch.column(1).as_union();
        for row in 0..batch.num_rows() {
            let child = values.child(values.type_id(row));
            let value = child.as_boolean().value(values.value_offset(row));
            flags.push((names.value(row), value));
        }
    }
    flags.sort();
    flags
}

#[tokio::test]
async fn get_sql_info_tells_a_read_user_the_server_is_read_only() {
    let dir = TempDir::new();
    let fx = secured(small(), &dir).await;
    let ids = [
        SqlInfo::FlightSqlServerReadOnly,
        SqlInfo::FlightSqlServerBulkIngestion,
    ];
    let (read_only, ingest) = (ids[0] as u32, ids[1] as u32);
    let mut alice = client_as(&fx, ALICE).await;
    assert_eq!(
        sql_info_flags(&mut alice, &ids).await,
        [(read_only, false), (ingest, true)]
    );
    let mut bob = client_as(&fx, BOB).await;
    assert_eq!(
        sql_info_flags(&mut bob, &ids).await,
        [(read_only, true), (ingest, false)]
    );
}

/// `ARROW:FLIGHT:SQL:IS_READ_ONLY` of the table's columns in GetTables and of a query's
/// result, as `client`'s user sees them.
async fn read_only_flags(client: &mut FlightSqlServiceClient<Channel>) -> [Vec<String>; 2] {
    let flags = |schema: &arrow::datatypes::Schema| -> Vec<String> {
        let key = "ARROW:FLIGHT:SQL:IS_READ_ONLY";
        schema
            .fields()
            .iter()
            .map(|f| f.metadata()[key].clone())
            .collect()
    };
    let info = client
        .get_tables(arrow_flight::sql::CommandGetTables {
            table_name_filter_pattern: Some("store_image_tasks".into()),
            include_schema: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<RecordBatch> = client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ipc = batches[0].column(4).as_binary::<i32>().value(0).to_vec();
    let table = arrow::datatypes::Schema::try_from(arrow_flight::IpcMessage(ipc.into())).unwrap();
    let (result, _) = aws_flightsql::client::query(
        client,
        "SELECT region, amiId, bucket, storeTaskState FROM store_image_tasks",
    )
    .await
    .map_err(to_status)
    .unwrap();
    [flags(&table), flags(&result)]
}

#[tokio::test]
async fn columns_insert_takes_are_writable_for_a_write_user_only() {
    let dir = TempDir::new();
    let fx = secured(small(), &dir).await;
    let mut alice = client_as(&fx, ALICE).await;
    assert_eq!(
        read_only_flags(&mut alice).await,
        [
            vec!["0", "0", "0", "1", "1", "1", "1", "1"],
            vec!["0", "0", "0", "1"]
        ]
    );
    let mut bob = client_as(&fx, BOB).await;
    assert_eq!(
        read_only_flags(&mut bob).await,
        [vec!["1"; 8], vec!["1"; 4]]
    );
}

#[tokio::test]
async fn without_a_users_file_only_loopback_addresses_are_served() {
    let err = Server::start(ServerOptions::new("0.0.0.0:0".parse().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{err}"
    );
    assert!(
        err.contains("--users-file") && err.contains("--allow-unauthenticated"),
        "{err}"
    );
    let err = Server::start(ServerOptions::new("[::]:0".parse().unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("without authentication"), "{err}");
    // Loopback without users: anyone on this machine, as before.
    let fx = Fixture::start(1).await;
    let mut client = fx.client().await;
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        3
    );
}

fn tls_connect(
    ca: Option<&std::path::Path>,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> ConnectOptions {
    ConnectOptions {
        tls: ClientTls {
            ca: ca.map(std::path::Path::to_path_buf),
            identity,
        },
        credentials: None,
    }
}

#[tokio::test]
async fn tls_serves_grpc_tls_and_refuses_plaintext_and_unknown_authorities() {
    let dir = TempDir::new();
    let ca = Ca::new("test CA");
    let server = ca.server();
    let cert = dir.write("server.pem", &server.cert);
    let key = dir.write("server.key", &server.key);
    let ca_file = dir.write("ca.pem", &ca.pem);
    let fx = Fixture::start_configured(small(), |options| {
        options.tls = Some(TlsFiles {
            cert,
            key,
            client_ca: None,
        });
    })
    .await;
    let uri = fx.server.uri();
    assert!(uri.starts_with("grpc+tls://127.0.0.1:"), "{uri}");

    let mut client = connect_with(&uri, &tls_connect(Some(&ca_file), None))
        .await
        .unwrap();
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        15
    );
    aws_flightsql::client::health(
        &uri,
        &ClientTls {
            ca: Some(ca_file.clone()),
            identity: None,
        },
    )
    .await
    .unwrap();

    // Plaintext gRPC to a TLS port fails.
    let plain = uri.replace("grpc+tls://", "grpc://");
    let plain_result = match aws_flightsql::client::connect(&plain).await {
        Ok(mut c) => aws_flightsql::client::query(&mut c, "SELECT 1")
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(plain_result.is_err(), "plaintext worked against TLS");

    // A CA that did not sign the server's certificate is not trusted.
    let other = dir.write("other-ca.pem", Ca::new("other CA").pem);
    let err = connect_with(&uri, &tls_connect(Some(&other), None))
        .await
        .err();
    let err = match err {
        Some(e) => format!("{e:#}"),
        None => "connected".into(),
    };
    assert!(
        err.contains("certificate") || err.contains("Unknown"),
        "{err}"
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let dir = TempDir::new();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let server = server_ca.server();
    let (cert, key) = (
        dir.write("server.pem", &server.cert),
        dir.write("server.key", &server.key),
    );
    let ca_file = dir.write("ca.pem", &server_ca.pem);
    let client_ca_file = dir.write("client-ca.pem", &client_ca.pem);
    let fx = Fixture::start_configured(small(), |options| {
        options.tls = Some(TlsFiles {
            cert,
            key,
            client_ca: Some(client_ca_file),
        });
    })
    .await;
    let uri = fx.server.uri();

    let good = client_ca.client("reporting");
    let good = (
        dir.write("good.pem", &good.cert),
        dir.write("good.key", &good.key),
    );
    let mut client = connect_with(&uri, &tls_connect(Some(&ca_file), Some(good)))
        .await
        .unwrap();
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        15
    );

    let rogue = Ca::new("rogue CA").client("reporting");
    let rogue = (
        dir.write("rogue.pem", &rogue.cert),
        dir.write("rogue.key", &rogue.key),
    );
    for (what, identity) in [
        ("no client certificate", None),
        ("a rogue CA's certificate", Some(rogue)),
    ] {
        let outcome = match connect_with(&uri, &tls_connect(Some(&ca_file), identity)).await {
            Ok(mut c) => aws_flightsql::client::query(&mut c, "SELECT 1")
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        assert!(outcome.is_err(), "{what}: the server accepted it");
    }
}

#[tokio::test]
async fn concurrent_queries_past_the_limit_are_resource_exhausted() {
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(2000), |options| {
        options.limits.queries.max_concurrent_queries = 1;
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(200),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    // A running stream (10 pages of 200 ms) holds the only slot...
    let mut stream = raw
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    let mut other = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let err = other
        .get_flight_info(statement("SELECT 1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("--max-concurrent-queries"),
        "{}",
        err.message()
    );
    // ...metadata-free calls are not queries...
    other.list_actions(Empty {}).await.unwrap();
    // ...and once it is gone, the next query runs.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match other.get_flight_info(statement("SELECT 1")).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the slot was never freed: {e}"),
        }
    }
}

#[tokio::test]
async fn the_query_timeout_stops_the_stream_and_its_aws_paging() {
    // 3000 tasks: 15 pages of 200, each answered after 150 ms; the timeout is 600 ms.
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(3000), |options| {
        options.limits.queries.query_timeout = Some(Duration::from_millis(600));
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(150),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    let mut stream = raw
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .into_inner();
    let mut ended_with = None;
    let mut messages = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => messages += 1,
            Err(status) => {
                ended_with = Some(status);
                break;
            }
        }
    }
    let status = ended_with.expect("the stream ended without an error");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--query-timeout"),
        "{}",
        status.message()
    );
    assert!(messages < 15, "the whole table came: {messages} messages");
    let calls_at_timeout = fx.calls("DescribeStoreImageTasks");
    // No further page is asked for: give paging the time of several more pages.
    let until = Instant::now() + Duration::from_millis(5 * 150);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = fx.calls("DescribeStoreImageTasks");
    assert!(
        calls <= calls_at_timeout + 1,
        "paging went on after the timeout: {calls_at_timeout} then {calls}"
    );
    // The server still answers.
    let mut client = fx.client().await;
    assert_eq!(count_rows(&mut client, "SELECT 1").await, 1);
}

#[tokio::test]
async fn sql_message_and_header_sizes_are_limited() {
    let fx = Fixture::start_configured(small(), |options| {
        options.limits = ServerLimits {
            queries: QueryLimits::default(),
            max_sql_bytes: 1000,
            max_message_bytes: 256 * 1024,
            max_header_bytes: 16 * 1024,
            ..ServerLimits::default()
        };
    })
    .await;
    let mut client = fx.client().await;
    let long = format!("SELECT '{}' AS s", "x".repeat(1000));
    let err = client
        .execute(long, None)
        .await
        .map_err(to_status)
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains("at most 1000") && err.message().contains("--max-sql-bytes"),
        "{}",
        err.message()
    );

    // A message over the limit (a 512 KiB statement) is refused by the gRPC layer, with
    // tonic's OUT_OF_RANGE.
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await)
        .max_encoding_message_size(usize::MAX);
    let err = raw
        .get_flight_info(statement(&format!("SELECT '{}'", "y".repeat(512 * 1024))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err}");
    assert!(err.message().contains("too large"), "{}", err.message());

    // Headers over the limit: the request is refused.
    let mut big = FlightSqlServiceClient::new(channel(&fx.server.uri()).await);
    big.set_header("x-padding", "p".repeat(32 * 1024));
    let err = big.execute("SELECT 1".into(), None).await.unwrap_err();
    // (HTTP 431, Request Header Fields Too Large, before any gRPC handling.)
    let err = to_status(err);
    assert!(err.message().contains("431"), "{err}");

    // The server still answers.
    assert_eq!(count_rows(&mut client, "SELECT 1").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sql_and_health_commands_speak_grpc_tls_with_a_user() {
    let dir = TempDir::new();
    let ca = Ca::new("cli CA");
    let server = ca.server();
    let (cert, key) = (
        dir.write("server.pem", &server.cert),
        dir.write("server.key", &server.key),
    );
    let ca_file = dir.write("ca.pem", &ca.pem);
    let users = users_file(&dir, &[(BOB.0, BOB.1, "read")]);
    let fx = Fixture::start_configured(small(), |options| {
        options.tls = Some(TlsFiles {
            cert,
            key,
            client_ca: None,
        });
        options.auth.users_file = Some(users);
    })
    .await;
    let uri = fx.server.uri();
    let run = |args: Vec<String>, password: Option<&'static str>| {
        tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aws-flightsql"));
            command.args(&args).env_remove("AWS_FLIGHTSQL_PASSWORD");
            if let Some(password) = password {
                command.env("AWS_FLIGHTSQL_PASSWORD", password);
            }
            command.output().unwrap()
        })
    };
    let ca_arg = ca_file.to_str().unwrap().to_owned();
    let sql = |user: &str| {
        vec![
            "sql".into(),
            "--connect".into(),
            uri.clone(),
            "--tls-ca".into(),
            ca_arg.clone(),
            "--user".into(),
            user.into(),
            "--format".into(),
            "csv".into(),
            "SELECT count(*) AS n FROM store_image_tasks".into(),
        ]
    };
    let out = run(sql(BOB.0), Some(BOB.1)).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n15\n");

    let out = run(sql(BOB.0), Some("wrong-password")).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot authenticate as `bob`")
            && stderr.contains("wrong user name or password"),
        "{stderr}"
    );

    // Without the CA the server's certificate is not trusted.
    let mut untrusted = sql(BOB.0);
    untrusted.drain(3..5);
    let out = run(untrusted, Some(BOB.1)).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );

    let out = run(
        vec![
            "health".into(),
            "--connect".into(),
            uri.clone(),
            "--tls-ca".into(),
            ca_arg.clone(),
        ],
        None,
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "SERVING");
}

/// The stream window of the stalled client's DoGet streams: data beyond it is never asked
/// for.
const STALL_WINDOW: u32 = 1024;

/// A DoGet from a raw HTTP/2 client that never reads: its stream's initial window is
/// [`STALL_WINDOW`] bytes and it never releases what it received, so it never sends a
/// WINDOW_UPDATE. (Its connection task still answers the server's PINGs and SETTINGS, as a
/// live client's does.)
struct StalledDoGet {
    body: h2::RecvStream,
    /// Bytes received and not released.
    held: usize,
    _client: h2::client::SendRequest<bytes::Bytes>,
}

impl StalledDoGet {
    /// Sends DoGet `ticket` to `addr` and waits for the response and the first data.
    async fn start(addr: std::net::SocketAddr, ticket: &Ticket) -> StalledDoGet {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::Builder::new()
            .initial_window_size(STALL_WINDOW)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::post(format!(
            "http://{addr}/arrow.flight.protocol.FlightService/DoGet"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let (response, mut send) = client.send_request(request, false).unwrap();
        // A gRPC message: no compression, length, the protobuf `Ticket`.
        let ticket = ticket.encode_to_vec();
        let mut message = vec![0];
        message.extend_from_slice(&u32::try_from(ticket.len()).unwrap().to_be_bytes());
        message.extend_from_slice(&ticket);
        send.send_data(message.into(), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(
            response.headers().get("grpc-status").is_none(),
            "DoGet refused: {:?}",
            response.headers()
        );
        let mut body = response.into_body();
        let first = body.data().await.expect("data").unwrap();
        assert!(first.len() <= STALL_WINDOW as usize);
        StalledDoGet {
            body,
            held: first.len(),
            _client: client,
        }
    }

    /// Reads again: what the server had sent, then the status in its trailers.
    async fn read_to_end(mut self) -> tonic::Status {
        let read = async {
            self.body
                .flow_control()
                .release_capacity(self.held)
                .unwrap();
            while let Some(data) = self.body.data().await {
                let data = data.unwrap();
                self.body
                    .flow_control()
                    .release_capacity(data.len())
                    .unwrap();
            }
            self.body.trailers().await.unwrap().expect("trailers")
        };
        let trailers = tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the stream ends once the client reads");
        tonic::Status::from_header_map(&trailers).expect("a grpc-status")
    }
}

/// A server on an emulator of 2000 tasks (10 pages, far more than [`STALL_WINDOW`]) with
/// `limits`, its metrics, and a DoGet ticket for all of them.
async fn stall_fixture(
    limits: QueryLimits,
) -> (Fixture, Arc<aws_flightsql::metrics::Metrics>, Ticket) {
    let metrics = Arc::new(aws_flightsql::metrics::Metrics::default());
    let server_metrics = Arc::clone(&metrics);
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(2000), |options| {
        options.aws.metrics = server_metrics;
        options.limits.queries = limits;
    })
    .await;
    let mut raw = FlightServiceClient::new(channel(&fx.server.uri()).await);
    let info = raw
        .get_flight_info(statement("SELECT * FROM store_image_tasks"))
        .await
        .unwrap()
        .into_inner();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    (fx, metrics, ticket)
}

/// Runs `sql` as soon as a slot is free (RESOURCE_EXHAUSTED until then, for at most 20 s);
/// returns its row count.
async fn rows_once_a_slot_is_free(fx: &Fixture, sql: &str) -> usize {
    let mut client = fx.client().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match aws_flightsql::client::query(&mut client, sql)
            .await
            .map_err(to_status)
        {
            Ok((_, batches)) => return batches.iter().map(RecordBatch::num_rows).sum(),
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no slot was freed: {e}"),
        }
    }
}

/// Waits (at most 10 s) until the metrics text contains `line`.
async fn metric_line(metrics: &aws_flightsql::metrics::Metrics, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.encode().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no `{line}` in\n{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stalled_clients_lose_their_slots_after_the_client_stall_timeout() {
    const STALL: Duration = Duration::from_secs(2);
    let (fx, metrics, ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 2,
        client_stall_timeout: Some(STALL),
        ..QueryLimits::default()
    })
    .await;
    let started = Instant::now();
    let addr = fx.server.local_addr();
    let stalled = [
        StalledDoGet::start(addr, &ticket).await,
        StalledDoGet::start(addr, &ticket).await,
    ];
    // Two clients that do not read hold both slots...
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < STALL, "too slow to see the slots held");
    // ...until the stall timeout ends their streams: then everyone else's queries run.
    assert_eq!(
        rows_once_a_slot_is_free(&fx, "SELECT * FROM store_image_tasks").await,
        2000
    );
    assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"stalled\"} 2",
    )
    .await;
    assert!(!metrics.encode().contains("reason=\"timeout\""));
    // Both slots are free: two queries at once run.
    let (a, b) = tokio::join!(fx.query("SELECT 1"), fx.query("SELECT 2"));
    a.unwrap();
    b.unwrap();
    // A stalled client that reads again gets what the server had sent, then the reason.
    for stream in stalled {
        let status = stream.read_to_end().await;
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
        assert!(
            status.message().contains("--client-stall-timeout"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn the_query_timeout_ends_a_stalled_stream_when_the_stall_timeout_is_off() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let (fx, metrics, ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 1,
        query_timeout: Some(TIMEOUT),
        client_stall_timeout: None,
    })
    .await;
    let started = Instant::now();
    let stalled = StalledDoGet::start(fx.server.local_addr(), &ticket).await;
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < TIMEOUT, "too slow to see the slot held");
    // The query timeout counts wall time, read or not.
    assert_eq!(rows_once_a_slot_is_free(&fx, "SELECT 1").await, 1);
    assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"timeout\"} 1",
    )
    .await;
    assert!(!metrics.encode().contains("reason=\"stalled\""));
    let status = stalled.read_to_end().await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--query-timeout"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_stream_waiting_on_slow_aws_pages_is_not_a_stalled_client() {
    // 3 pages of 200, each answered after 700 ms; the stall timeout is 300 ms.
    let metrics = Arc::new(aws_flightsql::metrics::Metrics::default());
    let server_metrics = Arc::clone(&metrics);
    let fx = Fixture::start_configured(EmulatorOptions::one_frozen_region(600), |options| {
        options.aws.metrics = server_metrics;
        options.limits.queries.client_stall_timeout = Some(Duration::from_millis(300));
    })
    .await;
    fx.emulator
        .update_config(ConfigUpdate {
            latency_ms: Some(700),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let mut client = fx.client().await;
    assert_eq!(
        count_rows(&mut client, "SELECT * FROM store_image_tasks").await,
        600
    );
    assert!(
        !metrics.encode().contains("streams_ended_total{"),
        "{}",
        metrics.encode()
    );
}

/// A client that sends a statement RPC's headers and never its message loses its slot after
/// the stall timeout too: the slot is taken before the request is read.
#[tokio::test]
async fn a_client_that_never_sends_its_request_loses_its_slot() {
    const STALL: Duration = Duration::from_secs(2);
    let (fx, metrics, _ticket) = stall_fixture(QueryLimits {
        max_concurrent_queries: 1,
        client_stall_timeout: Some(STALL),
        ..QueryLimits::default()
    })
    .await;
    let addr = fx.server.local_addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{addr}/arrow.flight.protocol.FlightService/GetFlightInfo"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let started = Instant::now();
    // Headers only: the message never comes (the stream stays open).
    let (response, _send) = client.send_request(request, false).unwrap();
    // The slot is held: others are refused until the stall timeout frees it.
    let err = fx.query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(started.elapsed() < STALL, "too slow to see the slot held");
    assert_eq!(rows_once_a_slot_is_free(&fx, "SELECT 1").await, 1);
    assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
    metric_line(
        &metrics,
        "aws_flightsql_streams_ended_total{reason=\"stalled\"} 1",
    )
    .await;
    // The silent client is told why.
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer")
        .unwrap();
    let status = match tonic::Status::from_header_map(response.headers()) {
        Some(status) => status,
        None => {
            let mut body = response.into_body();
            while body.data().await.is_some() {}
            let trailers = body.trailers().await.unwrap().expect("trailers");
            tonic::Status::from_header_map(&trailers).expect("a grpc-status")
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(
        status.message().contains("--client-stall-timeout"),
        "{}",
        status.message()
    );
}
