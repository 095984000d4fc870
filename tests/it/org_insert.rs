//! INSERT across an organization: each row is created in its `account` (the server's own
//! when the row gives none), exactly once, even when the emulator loses answers or fails
//! at random; an account the server does not reach, a role it cannot assume, a region not
//! enabled in the row's account or an AMI already being stored there refuses the whole
//! statement before any create, naming the rows and the account. All through the Flight
//! client against the emulator with accounts, checked against the emulator's state per
//! account and its request log.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::AsArray;
use aws_flightsql::ec2::AccountSpec;
use ec2_emulator::{account_id, ConfigUpdate, EmulatorOptions, HOME_ACCOUNT};
use tonic::Code;

use crate::common::{Fixture, REGIONS};

/// The role the server assumes in member `i` (1-based).
fn role(i: usize) -> String {
    format!("arn:aws:iam::{}:role/flightsql-writer", account_id(i))
}

fn organization(accounts: usize) -> EmulatorOptions {
    EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 20,
        freeze_time: true,
        accounts,
        ..EmulatorOptions::default()
    }
}

async fn start(options: EmulatorOptions) -> Fixture {
    let members: Vec<AccountSpec> = (1..options.accounts)
        .map(|i| AccountSpec {
            id: account_id(i),
            role_arn: role(i),
            external_id: None,
            regions: None,
        })
        .collect();
    Fixture::start_configured(options, move |server| server.aws.accounts = members).await
}

/// One row to insert: the account given (`None` = empty, the home account), the region,
/// AMI and bucket.
#[derive(Debug, Clone)]
struct Row {
    account: Option<String>,
    region: &'static str,
    ami: String,
    bucket: String,
}

impl Row {
    /// The account the row belongs in.
    fn account(&self) -> &str {
        self.account.as_deref().unwrap_or(HOME_ACCOUNT)
    }
}

/// Row `n` of `account` (`None` = empty, the home account) in `region`: a storable AMI and
/// a bucket of that account there.
fn row(fx: &Fixture, account: Option<&str>, region: &'static str, n: usize) -> Row {
    let of = account.unwrap_or(HOME_ACCOUNT);
    Row {
        account: account.map(str::to_owned),
        region,
        ami: fx.emulator.storable_amis_in(of, region)[n].clone(),
        bucket: fx.emulator.buckets_in(of, region)[0].clone(),
    }
}

fn insert(rows: &[Row]) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            let account = r
                .account
                .as_ref()
                .map_or("''".to_owned(), |a| format!("'{a}'"));
            format!("({account}, '{}', '{}', '{}')", r.region, r.ami, r.bucket)
        })
        .collect();
    format!(
        "INSERT INTO store_image_tasks (account, region, amiId, bucket) VALUES {}",
        values.join(", ")
    )
}

/// The tasks of `row`'s AMI in `account`'s region of the row.
fn tasks_in(fx: &Fixture, account: &str, row: &Row) -> usize {
    fx.emulator
        .tasks_in(account, row.region)
        .into_iter()
        .filter(|t| t.ami_id == row.ami)
        .count()
}

/// The CreateStoreImageTask requests the emulator received: (account, region, AMI, status).
fn creates(fx: &Fixture) -> Vec<(String, String, String, u16)> {
    fx.emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "CreateStoreImageTask")
        .map(|r| {
            (
                r.account.unwrap_or_default(),
                r.region.unwrap_or_default(),
                r.params.get("ImageId").cloned().unwrap_or_default(),
                r.status,
            )
        })
        .collect()
}

#[tokio::test]
async fn each_row_is_created_once_in_its_account_even_when_every_answer_is_lost() {
    let fx = start(organization(3)).await;
    let (one, two) = (account_id(1), account_id(2));
    let rows = vec![
        row(&fx, None, "us-east-1", 0),
        row(&fx, Some(&one), "us-east-1", 0),
        row(&fx, Some(&one), "eu-west-1", 0),
        row(&fx, Some(HOME_ACCOUNT), "us-west-2", 0),
        row(&fx, Some(&two), "us-west-2", 0),
        row(&fx, Some(&two), "us-west-2", 1),
    ];
    // Every create takes effect and is answered 500: only a look at the account's tasks
    // tells the server its create worked.
    fx.emulator
        .update_config(ConfigUpdate {
            fail_after_commit_rate: Some(1.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    fx.emulator.clear_requests();
    let (_, batches) = fx.query(&insert(&rows)).await.unwrap();
    let result = &batches[0];
    assert_eq!(
        result
            .column_by_name("count")
            .unwrap()
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .value(0),
        6
    );
    // The result names the accounts, each with its regions, in the order of the rows.
    assert_eq!(
        result
            .column_by_name("regions")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        format!(
            "account {HOME_ACCOUNT}: us-east-1 (1), us-west-2 (1); account {one}: us-east-1 \
             (1), eu-west-1 (1); account {two}: us-west-2 (2)"
        )
    );
    let accounts = fx.emulator.accounts();
    for r in &rows {
        for account in &accounts {
            let want = usize::from(account == r.account());
            assert_eq!(tasks_in(&fx, account, r), want, "{r:?} in {account}");
        }
    }
    // One create per row, sent in the row's account and region, never again.
    let mut sent = creates(&fx);
    sent.sort();
    let mut want: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.account().to_owned(),
                r.region.to_owned(),
                r.ami.clone(),
                500,
            )
        })
        .collect();
    want.sort();
    assert_eq!(sent, want);

    // An INSERT that leaves the account column out creates in the home account.
    fx.emulator
        .update_config(ConfigUpdate {
            fail_after_commit_rate: Some(0.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let home = row(&fx, None, "eu-west-1", 1);
    let n = fx
        .update(&format!(
            "INSERT INTO store_image_tasks (region, amiId, bucket) VALUES ('eu-west-1', '{}', \
             '{}')",
            home.ami, home.bucket
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(tasks_in(&fx, HOME_ACCOUNT, &home), 1);
}

#[tokio::test]
async fn random_faults_never_store_a_row_twice_nor_in_another_account() {
    let fx = start(organization(3)).await;
    let accounts = [HOME_ACCOUNT.to_owned(), account_id(1), account_id(2)];
    for round in 0..2 {
        let mut rows = Vec::new();
        for account in &accounts {
            for region in REGIONS {
                rows.push(row(&fx, Some(account), region, round));
            }
        }
        fx.emulator
            .update_config(ConfigUpdate {
                fail_rate: Some(0.3),
                fail_after_commit_rate: Some(0.3),
                ..ConfigUpdate::default()
            })
            .unwrap();
        fx.emulator.clear_requests();
        let outcome = fx.update(&insert(&rows)).await;
        fx.emulator
            .update_config(ConfigUpdate {
                fail_rate: Some(0.0),
                fail_after_commit_rate: Some(0.0),
                ..ConfigUpdate::default()
            })
            .unwrap();
        let real: usize = rows.iter().map(|r| tasks_in(&fx, r.account(), r)).sum();
        for r in &rows {
            assert!(tasks_in(&fx, r.account(), r) <= 1, "{r:?} stored twice");
            for other in accounts.iter().filter(|a| *a != r.account()) {
                assert_eq!(tasks_in(&fx, other, r), 0, "{r:?} stored in {other}");
            }
        }
        // Every create went to its row's account.
        let of: BTreeMap<&str, &str> = rows.iter().map(|r| (r.ami.as_str(), r.account())).collect();
        for (account, _, ami, _) in creates(&fx) {
            assert_eq!(
                of.get(ami.as_str()).copied(),
                Some(account.as_str()),
                "{ami}"
            );
        }
        match outcome {
            Ok(n) => {
                assert_eq!(n as usize, rows.len());
                assert_eq!(real, rows.len(), "every row counted exists");
            }
            // Loud: every row is accounted for, and nothing claimed that does not exist.
            Err(status) if status.message().starts_with("INSERT failed") => {
                let headline = status.message().lines().next().unwrap().to_owned();
                let created: usize = headline
                    .split(", ")
                    .find_map(|part| part.trim_end_matches('.').strip_suffix(" created"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{headline}"));
                assert!(created <= real, "{created} reported for {real}: {headline}");
                assert!(
                    headline.contains(&format!("of {} rows", rows.len())),
                    "{headline}"
                );
            }
            // Refused before any create (the checks met faults of their own).
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        Code::Unavailable | Code::ResourceExhausted | Code::InvalidArgument
                    ),
                    "{status}"
                );
                assert_eq!(real, 0, "{status}");
            }
        }
    }
}

#[tokio::test]
async fn a_row_whose_account_cannot_take_it_refuses_the_whole_insert_before_any_create() {
    let (one, two) = (account_id(1), account_id(2));
    let fx = start(EmulatorOptions {
        unassumable_roles: [role(2)].into(),
        disabled_regions: [(one.clone(), ["eu-west-1".to_owned()].into())].into(),
        ..organization(3)
    })
    .await;
    let good = row(&fx, None, "us-east-1", 0);
    let in_progress = fx
        .emulator
        .tasks_in(&one, "us-west-2")
        .into_iter()
        .find(|t| t.store_task_state == "InProgress")
        .expect("sample data has an in-progress task");
    let other = |account: &str, region: &'static str| Row {
        account: Some(account.to_owned()),
        region,
        ami: good.ami.clone(),
        bucket: good.bucket.clone(),
    };
    let cases: Vec<(Vec<Row>, Vec<String>)> = vec![
        (
            vec![good.clone(), other("999999999999", "us-east-1")],
            vec![format!(
                "row 2 (account 999999999999): 999999999999 is not an account this server \
                 reaches; it reaches {HOME_ACCOUNT}, {one}, {two}"
            )],
        ),
        (
            vec![
                good.clone(),
                other(&two, "us-east-1"),
                other(&two, "us-west-2"),
            ],
            vec![
                format!(
                    "rows 2, 3: account {two} cannot be used: AssumeRole of role {} for account \
                     {two} failed: AccessDenied",
                    role(2)
                ),
                "request id".to_owned(),
            ],
        ),
        (
            vec![good.clone(), row(&fx, Some(&one), "us-east-1", 0), {
                let mut r = row(&fx, Some(&one), "us-west-2", 0);
                r.region = "eu-west-1";
                r
            }],
            vec![format!(
                "row 3: region `eu-west-1` is not enabled in account {one} (enabled: us-east-1, \
                 us-west-2)"
            )],
        ),
        (
            vec![
                good.clone(),
                Row {
                    account: Some(one.clone()),
                    region: "us-west-2",
                    ami: in_progress.ami_id.clone(),
                    bucket: fx.emulator.buckets_in(&one, "us-west-2")[0].clone(),
                },
            ],
            vec![format!(
                "row 2: a store task for {} in account {one} region us-west-2 is already in \
                 progress",
                in_progress.ami_id
            )],
        ),
    ];
    fx.emulator.clear_requests();
    for (rows, expected) in cases {
        let sql = insert(&rows);
        let err = fx.update(&sql).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{sql}: {err}");
        let message = err.message();
        assert!(
            message.starts_with("INSERT rejected, nothing was created: "),
            "{message}"
        );
        for part in expected {
            assert!(message.contains(&part), "{part}\n{message}");
        }
    }
    assert_eq!(creates(&fx), [], "no create was sent");
    assert_eq!(tasks_in(&fx, HOME_ACCOUNT, &good), 0);
    // Tasks were listed only to look for stores in progress, and only for the statement
    // whose accounts and regions all passed.
    let accounts_listed: BTreeSet<String> = fx
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.action == "DescribeStoreImageTasks")
        .filter_map(|r| r.account)
        .collect();
    assert_eq!(
        accounts_listed,
        BTreeSet::from([HOME_ACCOUNT.to_owned(), one.clone()]),
        "only the statement whose rows all passed looked for tasks in progress"
    );
}
