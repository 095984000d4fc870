//! Discovery of the organization's accounts (`org_member_role`): Organizations ListAccounts
//! from the home credentials, every ACTIVE account but the home one and the skipped ones
//! reached through the member role, configured accounts winning over discovered ones, the
//! list refreshed on its TTL without blocking queries, a failed first listing failing
//! queries loudly; and the table `aws.organizations.accounts`, joined by account name.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use aws_flightsql::ec2::{AccountSpec, OrgDiscovery};
use ec2_emulator::{account_id, ConfigUpdate, EmulatorOptions, Faults, HOME_ACCOUNT};
use tonic::Code;

use crate::accounts::organization;
use crate::common::{Fixture, REGIONS};

const ROLE: &str = "flightsql-reader";

fn discovery(skip: &[String], refresh: Duration) -> OrgDiscovery {
    OrgDiscovery {
        member_role: ROLE.into(),
        skip_accounts: skip.to_vec(),
        refresh,
        external_id: None,
    }
}

async fn start(
    options: EmulatorOptions,
    discovery: OrgDiscovery,
    accounts: Vec<AccountSpec>,
) -> Fixture {
    Fixture::start_configured(options, move |server| {
        server.aws.discovery = Some(discovery);
        server.aws.accounts = accounts;
    })
    .await
}

/// Tasks per account, as the server counts them.
async fn tasks_per_account(fx: &Fixture) -> BTreeMap<String, i64> {
    let (_, batches) = fx
        .query("SELECT account, count(*) FROM store_image_tasks GROUP BY account")
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            let n = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).unwrap();
            out.insert(
                b.column(0).as_string::<i32>().value(i).to_owned(),
                n.as_primitive::<arrow::datatypes::Int64Type>().value(i),
            );
        }
    }
    out
}

/// Tasks per account in `regions`, as the emulator has them.
fn emulator_tasks(fx: &Fixture, accounts: &[(&str, &[&str])]) -> BTreeMap<String, i64> {
    accounts
        .iter()
        .map(|(account, regions)| {
            let n: usize = regions
                .iter()
                .map(|r| fx.emulator.tasks_in(account, r).len())
                .sum();
            (account.to_string(), n as i64)
        })
        .collect()
}

fn calls(fx: &Fixture, action: &str) -> usize {
    fx.emulator
        .requests()
        .iter()
        .filter(|r| r.action == action)
        .count()
}

#[tokio::test]
async fn every_active_account_but_home_and_the_skipped_is_read_through_the_member_role() {
    let (one, two, three, four) = (account_id(1), account_id(2), account_id(3), account_id(4));
    let fx = start(
        EmulatorOptions {
            suspended_accounts: [four.clone()].into(),
            ..organization(5, 9)
        },
        discovery(std::slice::from_ref(&three), Duration::from_secs(900)),
        // A configured account wins over the discovered one: its regions are its own.
        vec![AccountSpec {
            id: two.clone(),
            role_arn: format!("arn:aws:iam::{two}:role/other-reader"),
            external_id: None,
            regions: Some(vec!["eu-west-1".into()]),
        }],
    )
    .await;
    let got = tasks_per_account(&fx).await;
    let want = emulator_tasks(
        &fx,
        &[
            (HOME_ACCOUNT, &REGIONS),
            (&one, &REGIONS),
            (&two, &["eu-west-1"]),
        ],
    );
    assert_eq!(got, want);
    // The member role was assumed in the discovered account, the configured role in the
    // configured one; none in the skipped or suspended accounts.
    let assumed: Vec<String> = fx
        .emulator
        .requests()
        .iter()
        .filter(|r| r.action == "AssumeRole")
        .filter_map(|r| r.params.get("RoleArn").cloned())
        .collect();
    assert!(
        assumed.contains(&format!("arn:aws:iam::{one}:role/{ROLE}")),
        "{assumed:?}"
    );
    assert!(
        assumed.contains(&format!("arn:aws:iam::{two}:role/other-reader")),
        "{assumed:?}"
    );
    assert!(
        assumed
            .iter()
            .all(|r| !r.contains(&three) && !r.contains(&four)),
        "{assumed:?}"
    );
    // Listed once for both queries (the TTL is 15 minutes).
    tasks_per_account(&fx).await;
    assert_eq!(calls(&fx, "ListAccounts"), 1);
}

#[tokio::test]
async fn the_accounts_table_streams_list_accounts_and_joins_by_name() {
    // 25 accounts: ListAccounts answers 20 per page, so two pages, two batches.
    let fx = start(
        organization(25, 3),
        discovery(&[], Duration::from_secs(900)),
        vec![],
    )
    .await;
    let (schema, batches) = fx
        .query("SELECT * FROM aws.organizations.accounts")
        .await
        .unwrap();
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        columns,
        ["id", "name", "email", "status", "joinedTimestamp"]
    );
    assert_eq!(
        schema.field(4).data_type(),
        &arrow::datatypes::DataType::Timestamp(
            arrow::datatypes::TimeUnit::Millisecond,
            Some("UTC".into())
        )
    );
    assert_eq!(batches.len(), 2, "one batch per page");
    // The rows are the emulator's accounts (its own view of them).
    let listed: serde_json::Value =
        reqwest::get(format!("{}/_emulator/accounts", fx.emulator.endpoint_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let mut want: Vec<(String, String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    want.sort();
    let mut got = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            got.push((
                b.column(0).as_string::<i32>().value(i).to_owned(),
                b.column(1).as_string::<i32>().value(i).to_owned(),
                b.column(3).as_string::<i32>().value(i).to_owned(),
            ));
            assert!(!b.column(4).is_null(i));
        }
    }
    got.sort();
    assert_eq!(got, want);

    // tasks per member by name, for the names of a prefix (the emulator names its members
    // member-01, member-02, ...; the home account is "management").
    let (_, batches) = fx
        .query(
            "SELECT a.name, count(*) AS n FROM aws.ec2.store_image_tasks t \
             JOIN aws.organizations.accounts a ON t.account = a.id \
             WHERE a.name LIKE 'member-%' GROUP BY a.name ORDER BY a.name",
        )
        .await
        .unwrap();
    let mut by_name = BTreeMap::new();
    for b in &batches {
        let n = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64).unwrap();
        for i in 0..b.num_rows() {
            by_name.insert(
                b.column(0).as_string::<i32>().value(i).to_owned(),
                n.as_primitive::<arrow::datatypes::Int64Type>().value(i),
            );
        }
    }
    let mut want = BTreeMap::new();
    for (id, name, _) in &got {
        if name.starts_with("member-") {
            let n: usize = REGIONS
                .iter()
                .map(|r| fx.emulator.tasks_in(id, r).len())
                .sum();
            want.insert(name.clone(), n as i64);
        }
    }
    assert_eq!(want.len(), 24);
    assert_eq!(by_name, want);
}

#[tokio::test]
async fn a_failed_first_listing_fails_queries_naming_list_accounts_and_what_to_do() {
    let fx = start(
        EmulatorOptions {
            faults: Faults {
                deny_actions: vec!["ListAccounts".into()],
                ..Faults::default()
            },
            ..organization(3, 2)
        },
        discovery(&[], Duration::from_secs(900)),
        vec![],
    )
    .await;
    let err = fx
        .query("SELECT count(*) FROM store_image_tasks")
        .await
        .unwrap_err();
    let message = err.message();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    for part in [
        "ListAccounts",
        "AccessDeniedException",
        "request id",
        "organizations:ListAccounts",
        "management account or a delegated administrator",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // Asked again by the next query: once allowed, the organization is read.
    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec![]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    assert_eq!(tasks_per_account(&fx).await.len(), 3);
}

#[tokio::test]
async fn queries_waiting_for_a_failed_first_listing_share_its_error() {
    const QUERIES: usize = 6;
    let fx = start(
        EmulatorOptions {
            faults: Faults {
                deny_actions: vec!["ListAccounts".into()],
                // Every call takes 300 ms: the queries all wait for the first listing.
                latency_ms: 300,
                ..Faults::default()
            },
            ..organization(3, 2)
        },
        discovery(&[], Duration::from_secs(900)),
        vec![],
    )
    .await;
    let results = futures::future::join_all(
        (0..QUERIES).map(|_| fx.query("SELECT count(*) FROM store_image_tasks")),
    )
    .await;
    for result in results {
        let err = result.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
        assert!(err.message().contains("ListAccounts"), "{err}");
    }
    // Each query asking again after the one before it failed made one call per query (and
    // the last query waited for all of them). A query that arrived after the failure asks
    // again, hence at most 2 rather than exactly 1 on a machine that stalls for 300 ms.
    let asked = calls(&fx, "ListAccounts");
    assert!(
        asked <= 2,
        "{asked} ListAccounts calls for {QUERIES} queries"
    );
}

#[tokio::test]
async fn the_list_is_refreshed_on_its_ttl_without_blocking_queries() {
    let refresh = Duration::from_secs(1);
    let two = account_id(2);
    let fx = start(organization(3, 2), discovery(&[], refresh), vec![]).await;
    assert_eq!(tasks_per_account(&fx).await.len(), 3);
    assert_eq!(calls(&fx, "ListAccounts"), 1);

    // A failed refresh keeps the last list.
    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec!["ListAccounts".into()]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    tokio::time::sleep(refresh).await;
    assert_eq!(tasks_per_account(&fx).await.len(), 3);
    wait_for(|| calls(&fx, "ListAccounts") >= 2).await;
    assert_eq!(tasks_per_account(&fx).await.len(), 3);

    // A refresh that sees account 2 suspended drops it; the query that started the refresh
    // ran with the last list.
    fx.emulator
        .update_config(ConfigUpdate {
            deny_actions: Some(vec![]),
            suspended_accounts: Some([two.clone()].into()),
            ..ConfigUpdate::default()
        })
        .unwrap();
    tokio::time::sleep(refresh).await;
    let asked = calls(&fx, "ListAccounts");
    fx.query("SELECT count(*) FROM store_image_tasks WHERE account = '111111111111'")
        .await
        .unwrap();
    wait_for(|| {
        fx.emulator
            .requests()
            .iter()
            .filter(|r| r.action == "ListAccounts" && r.status == 200)
            .count()
            >= 2
            && calls(&fx, "ListAccounts") > asked
    })
    .await;
    // The new list is in place once the listing has answered and been taken in.
    let mut accounts = tasks_per_account(&fx).await;
    for _ in 0..100 {
        if !accounts.contains_key(&two) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        accounts = tasks_per_account(&fx).await;
    }
    assert_eq!(
        accounts.keys().cloned().collect::<Vec<_>>(),
        [account_id(1), HOME_ACCOUNT.to_owned()]
    );
}

/// Waits until `done` holds (at most 20 s).
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the condition did not hold within 20 s");
}

#[tokio::test]
async fn without_discovery_the_accounts_table_is_refused_saying_how_to_turn_it_on() {
    let fx = Fixture::start(2).await;
    let err = fx
        .query("SELECT * FROM aws.organizations.accounts")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(
        err.message().contains("org_member_role"),
        "{}",
        err.message()
    );
    assert_eq!(fx.calls("ListAccounts"), 0);
}

/// The bundled CLI prints a warning line per skipped account: those of the FlightInfo and
/// those only the trailer names (a region refused during the scan).
#[tokio::test]
async fn the_cli_warns_of_every_skipped_account() {
    let (one, two) = (account_id(1), account_id(2));
    let role = |id: &str| format!("arn:aws:iam::{id}:role/reader");
    let accounts = [one.clone(), two.clone()]
        .iter()
        .map(|id| AccountSpec {
            id: id.clone(),
            role_arn: role(id),
            external_id: None,
            regions: None,
        })
        .collect::<Vec<_>>();
    let fx = Fixture::start_configured(
        EmulatorOptions {
            unassumable_roles: [role(&two)].into(),
            disabled_regions: [(one.clone(), ["us-west-2".to_owned()].into())].into(),
            faults: Faults {
                deny_actions: vec!["DescribeRegions".into()],
                ..Faults::default()
            },
            ..organization(3, 2)
        },
        move |server| server.aws.accounts = accounts,
    )
    .await;
    let uri = fx.server.uri();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_aws-flightsql"))
            .args(["sql", "--connect", &uri, "--format", "csv"])
            .args(["--set", "aws.on_account_error=skip"])
            .arg("SELECT account, count(*) AS n FROM store_image_tasks GROUP BY account")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains(&format!(
            "warning: account {two} skipped (assume_role): AssumeRole of role {} for account \
             {two} failed: AccessDenied",
            role(&two)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: account {one} region us-west-2 skipped (region_not_enabled)"
        )),
        "{stderr}"
    );
    assert!(stdout.contains(&format!("{one},")), "{stdout}");
    assert!(!stdout.contains(&two), "{stdout}");
}
