//! Secrets never leave the server: the binary runs with known AWS credentials, passwords and
//! token key at the most verbose log level (`RUST_LOG=trace`, which makes hyper, h2, tonic
//! and the AWS SDK print what they handle) through good and bad requests, and none of the
//! secrets, nor the tokens it issued, appears in its output, its error messages or its
//! metrics. Also: `hash-password` reads the password from standard input, and `serve`
//! refuses an unauthenticated non-loopback address.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::HandshakeRequest;
use aws_flightsql::auth::{token, Users};
use base64::Engine;
use common::secure::{users_file, TempDir};
use common::statement;
use ec2_emulator::{Emulator, EmulatorOptions};
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

const BIN: &str = env!("CARGO_BIN_EXE_aws-flightsql");

const ALICE_PASSWORD: &str = "Alice-Pa55word-7f3k";
const BOB_PASSWORD: &str = "Bob-Pa55word-q8z2";
const WRONG_PASSWORD: &str = "Wrong-Guess-Pa55-u1v";
const TOKEN_SECRET: &str = "token-signing-secret-4d9e2b7a1c6f3e8d5b0a";
const AWS_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY1";
const AWS_SESSION_TOKEN: &str = "FwoGZXIvYXdzSESSIONTOKENabcdef0123456789xyz";

/// The server binary, killed on drop.
struct Served {
    child: Child,
    uri: String,
    metrics: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str], stderr: std::fs::File) -> Served {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "trace")
        .env("AWS_ACCESS_KEY_ID", "AKIASECRETSTEST00001")
        .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
        .env("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut metrics = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("metrics: ") {
            metrics = url.trim().to_owned();
        }
        if let Some(uri) = line.strip_prefix("aws-flightsql listening on ") {
            // Keep draining stdout so that the server never blocks on it.
            std::thread::spawn(move || for _ in lines {});
            return Served {
                child,
                uri: uri.trim().to_owned(),
                metrics,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve exited before it was ready");
}

fn with_auth<T>(message: T, authorization: &str) -> Request<T> {
    common::with_metadata(message, "authorization", Some(authorization))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn run(
    client: &mut FlightServiceClient<Channel>,
    sql: &str,
    auth: &str,
) -> Result<usize, tonic::Status> {
    let info = client
        .get_flight_info(with_auth(statement(sql), auth))
        .await?
        .into_inner();
    let mut messages = 0;
    for endpoint in info.endpoint {
        let data: Vec<_> = client
            .do_get(with_auth(endpoint.ticket.unwrap(), auth))
            .await?
            .into_inner()
            .try_collect()
            .await?;
        messages += data.len();
    }
    Ok(messages)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_logs_errors_or_metrics_at_trace_level() {
    let dir = TempDir::new();
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorOptions {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            tasks_per_region: 3,
            freeze_time: true,
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap();
    let users = users_file(
        &dir,
        &[
            ("alice", ALICE_PASSWORD, "write"),
            ("bob", BOB_PASSWORD, "read"),
        ],
    );
    let secret = dir.write("token.key", TOKEN_SECRET);
    let log_path = dir.path().join("server.log");
    let endpoint = emulator.endpoint_url();
    let served = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--endpoint-url",
            &endpoint,
            "--regions",
            "us-east-1,eu-west-1",
            "--users-file",
            users.to_str().unwrap(),
            "--token-secret-file",
            secret.to_str().unwrap(),
        ],
        std::fs::File::create(&log_path).unwrap(),
    );
    let channel = Endpoint::from_shared(served.uri.replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightServiceClient::new(channel);
    let mut answers = String::new();
    let mut issued = Vec::new();

    // Good: a handshake (its token then used), Basic on every call, an INSERT.
    let response = client
        .handshake(with_auth(
            futures::stream::iter([HandshakeRequest::default()]),
            &basic("alice", ALICE_PASSWORD),
        ))
        .await
        .unwrap();
    let bearer = response
        .metadata()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    issued.push(bearer.trim_start_matches("Bearer ").to_owned());
    let _: Vec<_> = response.into_inner().try_collect().await.unwrap();
    assert!(
        run(&mut client, "SELECT * FROM store_image_tasks", &bearer)
            .await
            .unwrap()
            > 1
    );
    let bob = basic("bob", BOB_PASSWORD);
    assert!(
        run(&mut client, "SELECT count(*) FROM store_image_tasks", &bob)
            .await
            .unwrap()
            > 1
    );
    let insert = format!(
        "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '{}', '{}')",
        emulator.storable_amis("eu-west-1")[0],
        emulator.buckets("eu-west-1")[0]
    );
    run(&mut client, &insert, &bearer).await.unwrap();
    assert_eq!(
        emulator.tasks("eu-west-1").len(),
        4,
        "the INSERT created a task"
    );

    // Bad: each error message is kept to be checked too.
    let expired = format!(
        "Bearer {}",
        token::expired_token(TOKEN_SECRET.as_bytes(), "alice", Duration::from_secs(30))
    );
    issued.push(expired.trim_start_matches("Bearer ").to_owned());
    let bad: Vec<(String, Code)> = vec![
        (basic("alice", WRONG_PASSWORD), Code::Unauthenticated),
        (basic(WRONG_PASSWORD, ALICE_PASSWORD), Code::Unauthenticated),
        (expired, Code::Unauthenticated),
        (format!("{bearer}x"), Code::Unauthenticated),
        (format!("Basic {ALICE_PASSWORD}"), Code::Unauthenticated),
        (bob.clone(), Code::PermissionDenied),
    ];
    for (auth, code) in &bad {
        let err = run(&mut client, &insert, auth).await.unwrap_err();
        assert_eq!(err.code(), *code, "{err}");
        answers.push_str(&format!("{err:?}\n"));
    }
    // A handshake with a wrong password, and SQL errors.
    let err = client
        .handshake(with_auth(
            futures::stream::iter([HandshakeRequest::default()]),
            &basic("bob", WRONG_PASSWORD),
        ))
        .await
        .unwrap_err();
    answers.push_str(&format!("{err:?}\n"));
    for sql in [
        "SELECT nope FROM store_image_tasks",
        "SELEC 1",
        "SELECT * FROM nowhere",
    ] {
        let err = run(&mut client, sql, &bearer).await.unwrap_err();
        answers.push_str(&format!("{err:?}\n"));
    }

    // The bundled client, with the password in its environment, at trace level too.
    let client_out = Command::new(BIN)
        .args([
            "sql",
            "--connect",
            &served.uri,
            "--user",
            "alice",
            "SELECT 1 AS one",
        ])
        .env("AWS_FLIGHTSQL_PASSWORD", ALICE_PASSWORD)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        client_out.status.success(),
        "{}",
        String::from_utf8_lossy(&client_out.stderr)
    );
    let client_bad = Command::new(BIN)
        .args([
            "sql",
            "--connect",
            &served.uri,
            "--user",
            "alice",
            "SELECT 1 AS one",
        ])
        .env("AWS_FLIGHTSQL_PASSWORD", WRONG_PASSWORD)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(!client_bad.status.success());
    let client_text = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&client_out.stdout),
        String::from_utf8_lossy(&client_out.stderr),
        String::from_utf8_lossy(&client_bad.stdout),
        String::from_utf8_lossy(&client_bad.stderr)
    );
    assert!(
        client_text.contains("wrong user name or password"),
        "{client_text}"
    );

    let metrics = reqwest::get(&served.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("aws_flightsql_flight_rpcs_total"),
        "{metrics}"
    );
    drop(served);
    let mut log = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    // The log really is at trace level, with the HTTP/2 and AWS SDK internals in it.
    assert!(log.contains("TRACE"), "not a trace log");
    // Written to a file, not a terminal: no colour escape codes.
    assert!(!log.contains('\u{1b}'), "colour escape codes in a log file");
    for noisy in ["h2::", "hyper", "aws_smithy", "tonic"] {
        assert!(log.contains(noisy), "no {noisy} lines in the trace log");
    }
    assert!(log.contains("authentication failed"), "failures are logged");
    // With the client's address (the login throttle's key), found for the connection.
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert!(
        failures
            .iter()
            .all(|l| l.contains("address") && l.contains("127.0.0.1")),
        "failures are logged with the client's address: {failures:?}"
    );

    let mut secrets = vec![
        ALICE_PASSWORD.to_owned(),
        BOB_PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        TOKEN_SECRET.to_owned(),
        AWS_SECRET_KEY.to_owned(),
        AWS_SESSION_TOKEN.to_owned(),
        // The access key id is not a secret by itself, but it names the credentials.
        "AKIASECRETSTEST00001".to_owned(),
        // What travels in the headers.
        basic("alice", ALICE_PASSWORD)
            .trim_start_matches("Basic ")
            .to_owned(),
        basic("bob", BOB_PASSWORD)
            .trim_start_matches("Basic ")
            .to_owned(),
        basic("alice", WRONG_PASSWORD)
            .trim_start_matches("Basic ")
            .to_owned(),
        base64::engine::general_purpose::STANDARD.encode(TOKEN_SECRET),
    ];
    for token in &issued {
        // The whole token, and its signature alone.
        secrets.push(token.clone());
        secrets.push(token.rsplit('.').next().unwrap().to_owned());
    }
    for (name, text) in [
        ("server log", &log),
        ("error messages", &answers),
        ("sql client output", &client_text),
        ("metrics", &metrics),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret ({}…) appears in the {name}",
                &secret[..6]
            );
        }
    }
    emulator.shutdown().await;
}

#[test]
fn hash_password_reads_standard_input_and_makes_a_users_entry() {
    let mut child = Command::new(BIN)
        .args(["hash-password", "--user", "carol", "--role", "write"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"carol's long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(!entry.contains("carol's long password"), "{entry}");
    let users = Users::parse(&entry).unwrap();
    assert_eq!(
        users.verify("carol", "carol's long password"),
        Some(aws_flightsql::auth::Role::Write)
    );
    assert_eq!(users.verify("carol", "carol's long passwor"), None);

    // Too short, and never from the command line.
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
    let out = Command::new(BIN)
        .args(["hash-password", "a-password-on-the-command-line"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a password argument was accepted");
}

#[test]
fn serve_refuses_an_unauthenticated_public_address_and_says_why() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:50051", "--check-config"])
        .env_remove("AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED")
        .env_remove("AWS_FLIGHTSQL_USERS_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:50051 without authentication"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--users-file") && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:50051", "--check-config"])
        .env("AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(config.contains("allow_unauthenticated = true"), "{config}");
    assert!(config.contains("query_timeout = \"5m\""), "{config}");
    assert!(config.contains("max_concurrent_queries = 64"), "{config}");
}
