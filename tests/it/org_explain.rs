//! EXPLAIN ANALYZE across an organization: the scan shows its calls per account (and its
//! busiest account × region partitions), and the counts equal the emulator's request log.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use aws_flightsql::ec2::AccountSpec;
use ec2_emulator::{account_id, EmulatorOptions, HOME_ACCOUNT};

use crate::common::{Fixture, REGIONS};

#[tokio::test]
async fn explain_analyze_counts_the_calls_of_each_account() {
    let options = EmulatorOptions {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        tasks_per_region: 250,
        freeze_time: true,
        accounts: 3,
        ..EmulatorOptions::default()
    };
    let members: Vec<AccountSpec> = (1..3)
        .map(|i| AccountSpec {
            id: account_id(i),
            role_arn: format!("arn:aws:iam::{}:role/flightsql-reader", account_id(i)),
            external_id: None,
            regions: None,
        })
        .collect();
    let fx = Fixture::start_configured(options, move |server| server.aws.accounts = members).await;
    fx.emulator.clear_requests();
    let sql = "EXPLAIN ANALYZE SELECT count(*) FROM store_image_tasks";
    let (_, batches) = fx.query(sql).await.unwrap();
    let text: String = batches
        .iter()
        .flat_map(|b| {
            let col = b.column(1).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| col.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_place: BTreeMap<String, usize> = BTreeMap::new();
    for r in fx.emulator.requests() {
        if r.action == "DescribeStoreImageTasks" {
            let account = r.account.unwrap_or_default();
            *by_place
                .entry(format!("{account}/{}", r.region.unwrap_or_default()))
                .or_default() += 1;
            *logged.entry(account).or_default() += 1;
        }
    }
    assert_eq!(logged.len(), 3, "{logged:?}");
    let total: usize = logged.values().sum();
    assert!(
        text.contains(&format!(
            "calls per account: 3 account(s), {total} call(s): "
        )),
        "{text}"
    );
    // Each account's count, as the emulator saw it.
    for (account, calls) in &logged {
        assert!(
            text.contains(&format!("{account}={calls}")),
            "{account}={calls}: {text}"
        );
    }
    assert!(logged[HOME_ACCOUNT] >= REGIONS.len(), "{logged:?}");
    // The busiest partitions, with their own counts.
    let (place, calls) = by_place
        .iter()
        .max_by(|(a, x), (b, y)| x.cmp(y).then(b.cmp(a)))
        .unwrap();
    assert!(
        text.contains(&format!("busiest account/region: {place}={calls}")),
        "{place}={calls}: {text}"
    );
    // The metrics still sum every partition's.
    assert!(text.contains(&format!("api_calls={total}")), "{text}");
}
