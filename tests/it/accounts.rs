//! An organization in one query: the emulator with several accounts, the server reaching
//! the members through roles (`AwsConfig::accounts`). Rows per account and region equal the
//! emulator's; `account` predicates choose the accounts asked; a role that cannot be
//! assumed fails the query naming the account and the role; credentials that expire during
//! a query are renewed.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::AsArray;
use aws_flightsql::ec2::AccountSpec;
use ec2_emulator::{account_id, EmulatorOptions, Faults, HOME_ACCOUNT};
use tonic::Code;

use crate::common::{Fixture, REGIONS};

/// The role the server assumes in member `i` (1-based).
fn role(i: usize) -> String {
    format!("arn:aws:iam::{}:role/flightsql-reader", account_id(i))
}

/// Every member of an organization of `accounts` (the home one included), as the server's
/// configuration lists them.
fn members(accounts: usize) -> Vec<AccountSpec> {
    (1..accounts)
        .map(|i| AccountSpec {
            id: account_id(i),
            role_arn: role(i),
            external_id: None,
            regions: None,
        })
        .collect()
}

pub(crate) fn organization(accounts: usize, tasks_per_region: usize) -> EmulatorOptions {
    EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region,
        freeze_time: true,
        accounts,
        ..EmulatorOptions::default()
    }
}

async fn start(options: EmulatorOptions) -> Fixture {
    let accounts = members(options.accounts);
    Fixture::start_configured(options, move |server| server.aws.accounts = accounts).await
}

/// `(account, region, amiId)` of every row of `sql`'s answer (its first three columns).
async fn rows(fx: &Fixture, sql: &str) -> Vec<(String, String, String)> {
    let (_, batches) = fx.query(sql).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let (a, r, m) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            out.push((
                a.value(i).to_owned(),
                r.value(i).to_owned(),
                m.value(i).to_owned(),
            ));
        }
    }
    out.sort();
    out
}

/// `(account, region, amiId)` of every task the emulator has in `REGIONS` of every account.
fn all_emulator_rows(fx: &Fixture) -> Vec<(String, String, String)> {
    let accounts = fx.emulator.accounts();
    let wanted: Vec<(&str, &[&str])> = accounts
        .iter()
        .map(|a| (a.as_str(), &REGIONS[..]))
        .collect();
    emulator_rows(fx, &wanted)
}

/// The DescribeStoreImageTasks calls the emulator received, per account.
fn describes_per_account(fx: &Fixture) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for r in fx.emulator.requests() {
        if r.action == "DescribeStoreImageTasks" {
            *calls.entry(r.account.unwrap_or_default()).or_default() += 1;
        }
    }
    calls
}

#[tokio::test]
async fn rows_per_account_and_region_equal_the_emulators() {
    let fx = start(organization(3, 250)).await;
    let got = rows(&fx, "SELECT account, region, amiId FROM store_image_tasks").await;
    let want = all_emulator_rows(&fx);
    assert_eq!(got.len(), 3 * 3 * 250);
    assert_eq!(got, want);
    // The accounts' data differ: the members are not the home account read three times.
    let amis = |account: &str| -> BTreeSet<&str> {
        got.iter()
            .filter(|(a, _, _)| a == account)
            .map(|(_, _, m)| m.as_str())
            .collect()
    };
    assert_ne!(amis(HOME_ACCOUNT), amis(&account_id(1)));

    // A GROUP BY over the organization.
    let (_, batches) = fx
        .query(
            "SELECT account, count(*) AS n FROM store_image_tasks GROUP BY account \
             ORDER BY account",
        )
        .await
        .unwrap();
    let accounts: Vec<&str> = (0..batches[0].num_rows())
        .map(|i| batches[0].column(0).as_string::<i32>().value(i))
        .collect();
    let mut all = fx.emulator.accounts();
    all.sort();
    assert_eq!(accounts, all);
}

/// More places than output partitions (8 accounts x 3 regions = 24 > 16): places share
/// partitions, and every row still arrives exactly once, pages of every place included.
#[tokio::test]
async fn more_places_than_partitions_give_every_row_exactly_once() {
    let fx = start(organization(8, 450)).await;
    let got = rows(
        &fx,
        "SELECT account, region, amiId FROM store_image_tasks WHERE storeTaskState IS NOT NULL",
    )
    .await;
    let want = all_emulator_rows(&fx);
    assert_eq!(got.len(), 8 * 3 * 450);
    assert_eq!(got, want);
    // Three pages of at most 200 in each place.
    let describes: usize = describes_per_account(&fx).values().sum();
    assert_eq!(describes, 8 * 3 * 3);
    // The plan still names all 24 places.
    let plan = fx
        .explain("EXPLAIN SELECT account, region, amiId FROM store_image_tasks")
        .await;
    assert_eq!(
        plan.matches(": DescribeStoreImageTasks(").count(),
        24,
        "{plan}"
    );
    // EXPLAIN ANALYZE adds up the pages of places sharing a partition (answered from the
    // response cache: the same request was just made) and lists every place.
    let analyzed = fx
        .explain("EXPLAIN ANALYZE SELECT count(*) FROM store_image_tasks")
        .await;
    assert!(analyzed.contains("pages=72,"), "{analyzed}");
    assert!(analyzed.contains("cache_hits=72,"), "{analyzed}");
    assert!(
        analyzed.contains("calls per account: 8 account(s)")
            && analyzed.contains("(24 account/region pairs in all)"),
        "{analyzed}"
    );
    // A LIMIT over shared partitions gives exactly that many rows.
    let limited = rows(
        &fx,
        "SELECT account, region, amiId FROM store_image_tasks LIMIT 7",
    )
    .await;
    assert_eq!(limited.len(), 7);
    assert!(limited.iter().all(|r| want.binary_search(r).is_ok()));
}

#[tokio::test]
async fn account_predicates_ask_only_those_accounts() {
    let fx = start(organization(3, 30)).await;
    let one = account_id(1);
    fx.emulator.clear_requests();
    let got = rows(
        &fx,
        &format!("SELECT account, region, amiId FROM store_image_tasks WHERE account = '{one}'"),
    )
    .await;
    assert_eq!(got.len(), 3 * 30);
    assert!(got.iter().all(|(a, _, _)| *a == one));
    assert_eq!(describes_per_account(&fx), [(one.clone(), 3)].into());

    fx.emulator.clear_requests();
    let two = account_id(2);
    let got = rows(
        &fx,
        &format!(
            "SELECT account, region, amiId FROM store_image_tasks \
             WHERE account IN ('{HOME_ACCOUNT}', '{two}') AND region = 'eu-west-1'"
        ),
    )
    .await;
    assert_eq!(got.len(), 2 * 30);
    assert_eq!(
        describes_per_account(&fx),
        [(two.clone(), 1), (HOME_ACCOUNT.to_owned(), 1)].into()
    );

    // EXPLAIN names each partition's account and region.
    let (_, batches) = fx
        .query(&format!(
            "EXPLAIN SELECT * FROM store_image_tasks WHERE account = '{two}' \
             AND region IN ('us-east-1', 'eu-west-1')"
        ))
        .await
        .unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        plan.contains(&format!("{two}/eu-west-1: DescribeStoreImageTasks("))
            && plan.contains(&format!("{two}/us-east-1: DescribeStoreImageTasks(")),
        "{plan}"
    );
    assert!(!plan.contains(HOME_ACCOUNT), "{plan}");
}

#[tokio::test]
async fn an_account_the_server_does_not_reach_is_refused_naming_those_it_reaches() {
    let fx = start(organization(2, 5)).await;
    fx.emulator.clear_requests();
    let err = fx
        .query("SELECT * FROM store_image_tasks WHERE account = '999999999999'")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains(&format!(
            "999999999999 is not an account this server reaches; it reaches {HOME_ACCOUNT}, {}",
            account_id(1)
        )),
        "{}",
        err.message()
    );
    assert_eq!(describes_per_account(&fx), BTreeMap::new());
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_the_query_naming_account_and_role() {
    let refused = role(2);
    let fx = start(EmulatorOptions {
        unassumable_roles: [refused.clone()].into(),
        ..organization(3, 5)
    })
    .await;
    fx.emulator.clear_requests();
    let err = fx
        .query("SELECT count(*) FROM store_image_tasks")
        .await
        .unwrap_err();
    let message = err.message();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    for part in [
        format!("AssumeRole of role {refused} for account {}", account_id(2)),
        "AccessDenied".to_owned(),
        "request id".to_owned(),
    ] {
        assert!(message.contains(&part), "{part}: {message}");
    }
    // Refused while planning: no account was listed.
    assert_eq!(describes_per_account(&fx), BTreeMap::new());

    // The other accounts still answer when the query leaves that one out.
    let got = rows(
        &fx,
        &format!(
            "SELECT account, region, amiId FROM store_image_tasks WHERE account <> '{}' \
             AND account IN ('{HOME_ACCOUNT}', '{}')",
            account_id(2),
            account_id(1)
        ),
    )
    .await;
    assert_eq!(got.len(), 2 * 3 * 5);
}

#[tokio::test]
async fn credentials_that_expire_during_a_query_are_renewed() {
    // Credentials for one second, which STS rounds up to the whole second: each set lasts
    // at most 2 s. 16 pages of at least 150 ms each, asked one after the other: the scan
    // of a member's region lasts at least 2.4 s, longer than any one set.
    let fx = start(EmulatorOptions {
        credential_seconds: 1,
        faults: Faults {
            latency_ms: 150,
            ..Faults::default()
        },
        ..organization(2, 3200)
    })
    .await;
    let one = account_id(1);
    fx.emulator.clear_requests();
    let got = rows(
        &fx,
        &format!(
            "SELECT account, region, amiId FROM store_image_tasks \
             WHERE account = '{one}' AND region = 'us-east-1'"
        ),
    )
    .await;
    let want = fx.emulator.tasks_in(&one, "us-east-1").len();
    assert_eq!(got.len(), want);
    let requests = fx.emulator.requests();
    let assumed = requests
        .iter()
        .filter(|r| r.action == "AssumeRole" && r.status == 200)
        .count();
    assert!(assumed >= 2, "the role was assumed {assumed} time(s)");
    // A page signed just before a set of credentials expired and arriving just after (a
    // loaded machine) is refused 400 RequestExpired and sent again with renewed ones;
    // nothing else is refused.
    let refused: Vec<_> = requests
        .iter()
        .filter(|r| r.status != 200)
        .map(|r| (r.action.as_str(), r.status))
        .collect();
    assert!(
        refused
            .iter()
            .all(|&(action, status)| action == "DescribeStoreImageTasks" && status == 400),
        "{refused:?}"
    );
}

/// No secret of an assumed role reaches the server's log at the most verbose level: not
/// the external id (given in the configuration file), not an issued secret key or session
/// token; `--check-config` does not show the external id either.
#[tokio::test(flavor = "multi_thread")]
async fn no_external_id_secret_key_or_session_token_in_the_log() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const EXTERNAL_ID: &str = "ext-id-Never-Logged-93xq";
    let emulator = ec2_emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorOptions {
            role_external_ids: [(role(1), EXTERNAL_ID.to_owned())].into(),
            credential_seconds: 1,
            ..organization(2, 450)
        },
    )
    .await
    .unwrap();
    let dir = crate::common::secure::TempDir::new();
    let config = dir.write(
        "server.toml",
        format!(
            "[[accounts]]\nid = \"{}\"\nrole_arn = \"{}\"\nexternal_id = \"{EXTERNAL_ID}\"\n",
            account_id(1),
            role(1)
        ),
    );
    let bin = env!("CARGO_BIN_EXE_aws-flightsql");
    let env = |command: &mut Command| {
        command
            .env("RUST_LOG", "trace")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    };
    let mut check = Command::new(bin);
    check
        .args(["serve", "--check-config", "--config"])
        .arg(&config);
    env(&mut check);
    let shown = crate::common::stdout(&check.output().unwrap());
    assert!(shown.contains(&role(1)), "{shown}");
    assert!(!shown.contains(EXTERNAL_ID), "{shown}");

    let log_path = dir.path().join("server.log");
    let mut serve = Command::new(bin);
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--endpoint-url"])
        .arg(emulator.endpoint_url())
        .args(["--regions", "us-east-1,eu-west-1", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap());
    env(&mut serve);
    let mut child = serve.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let uri = loop {
        let line = lines
            .next()
            .expect("the server prints where it listens")
            .unwrap();
        if let Some(uri) = line.strip_prefix("aws-flightsql listening on ") {
            break uri.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut client = aws_flightsql::client::connect(&uri).await.unwrap();
    // Two queries more than 2 s apart (the longest a set of 1-second credentials lasts,
    // STS rounding their expiry up to the whole second): the role is assumed twice.
    for _ in 0..2 {
        let (_, batches) = aws_flightsql::client::query(
            &mut client,
            "SELECT account, count(*) FROM store_image_tasks GROUP BY account",
        )
        .await
        .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let assumed = emulator
        .requests()
        .iter()
        .filter(|r| r.action == "AssumeRole" && r.status == 200)
        .count();
    assert!(assumed >= 2, "{assumed}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("AssumeRole"), "the log is at trace level");
    assert!(!log.contains(EXTERNAL_ID), "the external id is in the log");
    // The emulator's session tokens start so (AWS's do too).
    assert!(
        !log.contains("FwoGZXIvYXdzE"),
        "a session token is in the log"
    );
    // Its secret keys are 40 letters and digits of both cases; nothing else in the log is.
    let secret_like = log.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| {
        w.len() == 40
            && w.chars().any(|c| c.is_ascii_lowercase())
            && w.chars().any(|c| c.is_ascii_uppercase())
    });
    assert_eq!(secret_like, None, "a secret key is in the log");
    emulator.shutdown().await;
}

/// The settings of a session that skips the accounts it cannot reach.
const SKIP: &str = "SET aws.on_account_error = 'skip'";

/// The skips a JSON list (schema metadata, header, trailer) names:
/// `(account, reason, region)`, sorted.
fn skips_of(json: &str) -> Vec<(String, String, String)> {
    let list: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |name: &str| {
                s.get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned()
            };
            (field("account"), field("reason"), field("region"))
        })
        .collect();
    out.sort();
    out
}

/// `(account, region, amiId)` of every task the emulator has in those accounts and regions.
fn emulator_rows(fx: &Fixture, wanted: &[(&str, &[&str])]) -> Vec<(String, String, String)> {
    let mut want = Vec::new();
    for (account, regions) in wanted {
        for region in *regions {
            for t in fx.emulator.tasks_in(account, region) {
                want.push((account.to_string(), region.to_string(), t.ami_id));
            }
        }
    }
    want.sort();
    want
}

#[tokio::test]
async fn the_opt_in_skip_leaves_out_unreachable_accounts_and_reports_each() {
    let refused = role(2);
    let (one, two, three) = (account_id(1), account_id(2), account_id(3));
    let fx = Fixture::start_configured(
        EmulatorOptions {
            unassumable_roles: [refused.clone()].into(),
            disabled_regions: [(one.clone(), ["eu-west-1".to_owned()].into())].into(),
            ..organization(4, 7)
        },
        move |server| {
            server.aws.accounts = members(4);
        },
    )
    .await;
    let metrics = fx.server.metrics();
    let skipped_total = |reason: &str| -> u64 {
        let text = metrics.encode();
        let key = format!("aws_flightsql_accounts_skipped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    const SQL: &str = "SELECT account, region, amiId FROM store_image_tasks";

    // The default stays loud.
    let err = fx.query(SQL).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    let mut session = aws_flightsql::client::Session::new(fx.client().await);
    session.flight_info(SKIP).await.unwrap();
    let (info, schema, batches) = session.query_with(SQL, |_| ()).await.unwrap();
    let mut got = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            got.push((
                b.column(0).as_string::<i32>().value(i).to_owned(),
                b.column(1).as_string::<i32>().value(i).to_owned(),
                b.column(2).as_string::<i32>().value(i).to_owned(),
            ));
        }
    }
    got.sort();
    // The rows are the emulator's for every account and region not skipped.
    let want = emulator_rows(
        &fx,
        &[
            (HOME_ACCOUNT, &REGIONS),
            (&one, &["us-east-1", "us-west-2"]),
            (&three, &REGIONS),
        ],
    );
    assert_eq!(got, want);

    // Logged and counted once for the query that ran (not again for its FlightInfo).
    assert_eq!(skipped_total("assume_role"), 1);
    assert_eq!(skipped_total("region_not_enabled"), 1);

    // The FlightInfo's schema (ADBC, the Rust client, the CLI) names every skip, with the
    // role, AWS's code and request id of the refused AssumeRole.
    let listed = schema.metadata()["aws_flightsql.skipped_accounts"].clone();
    assert_eq!(
        skips_of(&listed),
        vec![
            (one.clone(), "region_not_enabled".into(), "eu-west-1".into()),
            (two.clone(), "assume_role".into(), String::new()),
        ]
    );
    let parsed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let assume = parsed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["account"] == two.as_str())
        .unwrap();
    assert_eq!(assume["role_arn"], refused.as_str());
    assert_eq!(assume["code"], "AccessDenied");
    assert!(
        !assume["request_id"].as_str().unwrap().is_empty(),
        "{assume}"
    );
    assert!(
        assume["message"]
            .as_str()
            .unwrap()
            .contains(&format!("AssumeRole of role {refused} for account {two}")),
        "{assume}"
    );
    // The same in the FlightInfo's app_metadata (what the JDBC driver exposes).
    let app: serde_json::Value = serde_json::from_slice(&info.app_metadata).unwrap();
    assert_eq!(
        skips_of(&app["aws_flightsql.skipped_accounts"].to_string()),
        skips_of(&listed)
    );

    // DoGet: the schema it streams, its header and its trailer say the same.
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = session.client_mut().do_get(ticket).await.unwrap();
    let header = stream
        .headers()
        .get("aws-flightsql-skipped-accounts")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut streamed = None;
    while let Some(batch) = futures::TryStreamExt::try_next(&mut stream).await.unwrap() {
        streamed = Some(batch.schema());
    }
    let trailers = stream.trailers().unwrap();
    assert_eq!(skips_of(&header), skips_of(&listed));
    assert_eq!(
        skips_of(
            trailers
                .get("aws-flightsql-skipped-accounts")
                .unwrap()
                .to_str()
                .unwrap()
        ),
        skips_of(&listed)
    );
    assert_eq!(trailers.get("aws-flightsql-skipped-count").unwrap(), "2");
    assert_eq!(
        skips_of(&streamed.unwrap().metadata()["aws_flightsql.skipped_accounts"]),
        skips_of(&listed)
    );
}

#[tokio::test]
async fn a_region_refused_during_the_scan_is_skipped_and_reported_in_the_trailer() {
    // Without DescribeRegions the server cannot tell at planning that a region is not
    // enabled: the region's first call is refused (AuthFailure), and the region is skipped.
    let one = account_id(1);
    let fx = start(EmulatorOptions {
        disabled_regions: [(one.clone(), ["us-west-2".to_owned()].into())].into(),
        faults: Faults {
            deny_actions: vec!["DescribeRegions".into()],
            ..Faults::default()
        },
        ..organization(2, 4)
    })
    .await;
    let mut session = aws_flightsql::client::Session::new(fx.client().await);
    session.flight_info(SKIP).await.unwrap();
    let info = session
        .flight_info("SELECT account, region, amiId FROM store_image_tasks")
        .await
        .unwrap();
    let schema = info.clone().try_decode_schema().unwrap();
    assert!(
        !schema
            .metadata()
            .contains_key("aws_flightsql.skipped_accounts"),
        "{:?}",
        schema.metadata()
    );
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = session.client_mut().do_get(ticket).await.unwrap();
    let mut rows = 0;
    while let Some(batch) = futures::TryStreamExt::try_next(&mut stream).await.unwrap() {
        rows += batch.num_rows();
    }
    let want = emulator_rows(
        &fx,
        &[
            (HOME_ACCOUNT, &REGIONS),
            (&one, &["us-east-1", "eu-west-1"]),
        ],
    );
    assert_eq!(rows, want.len());
    let trailers = stream.trailers().unwrap();
    let listed = trailers
        .get("aws-flightsql-skipped-accounts")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        skips_of(listed),
        vec![(one.clone(), "region_not_enabled".into(), "us-west-2".into())]
    );
    let parsed: serde_json::Value = serde_json::from_str(listed).unwrap();
    assert_eq!(parsed[0]["code"], "AuthFailure");
    assert!(!parsed[0]["request_id"].as_str().unwrap().is_empty());

    // The default fails the same query loudly.
    let err = fx
        .query("SELECT account, region, amiId FROM store_image_tasks")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("us-west-2"), "{}", err.message());
}
