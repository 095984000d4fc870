//! TLS: the server speaks gRPC over TLS with its certificate, refuses plaintext and
//! clients that do not trust its authority, requires a client certificate from the client
//! CA under mutual TLS, and the `sql` and `health` commands connect with TLS and a user.

use aws_flightsql::client::{connect_with, ConnectOptions};
use aws_flightsql::tls::{ClientTls, TlsFiles};

use super::{count_rows, small, BOB};
use crate::common::secure::{users_file, Ca, TempDir};
use crate::common::Fixture;

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
