//! Who may connect and who may write: the users file, the Flight handshake and its bearer
//! tokens, Basic credentials on every call, roles (a `read` user's writes refused by every
//! path before any AWS call, whatever the session says), the unauthenticated-exposure
//! refusal, and the login throttle (delays, lockout per user name and address, failure
//! budget per address).

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
use aws_flightsql::metrics::Metrics;
use aws_flightsql::server::{Server, ServerOptions};
use aws_flightsql::tls::ClientTls;
use base64::Engine;
use ec2_emulator::EmulatorOptions;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

use super::{count_rows, small, ALICE, BOB};
use crate::common::secure::{users_file, TempDir};
use crate::common::{self, channel, statement, to_status, Fixture};

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
    let fx = Fixture::start_configured(emulator, |server| {
        server.auth = AuthOptions {
            users_file: Some(users),
            token_secret_file: Some(secret),
            login,
            ..AuthOptions::default()
        };
    })
    .await;
    let metrics = fx.server.metrics();
    (fx, metrics)
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
    let target = dir.path().join("aws-flightsql-copy.csv");
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
            // account, region, amiId, bucket, then the five columns AWS fills in
            vec!["0", "0", "0", "0", "1", "1", "1", "1", "1"],
            vec!["0", "0", "0", "1"]
        ]
    );
    let mut bob = client_as(&fx, BOB).await;
    assert_eq!(
        read_only_flags(&mut bob).await,
        [vec!["1"; 9], vec!["1"; 4]]
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
