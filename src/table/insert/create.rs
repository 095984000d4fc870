//! Stage 3 of INSERT: the AWS calls. Before the rows are judged, each account they name
//! is readied ([`reach`]): its role assumed (the home account needs none) and its enabled
//! regions listed. Then, for a statement whose every row passed `validate`, one
//! `DescribeStoreImageTasks` per account and region (never from the cache) refuses the
//! statement when a task for one of its AMIs is already in progress there; then each row
//! is sent as one `CreateStoreImageTask` through its account's clients
//! (`Ec2Clients::for_account`), exactly once (the claim, retry and confirm state machine
//! is `ec2::create`'s, keyed on account, region and AMI), at most [`CREATES_PER_REGION`]
//! at a time per account and region, all of them at once. Every row comes back with its
//! outcome, for `report`.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;

use super::invalid;
use super::validate::{self, Reach, ValidRow};
use crate::ec2::{AwsError, AwsErrorKind, CreateOutcome, CreateRequest, Ec2Clients, StatementId};

/// Creates in flight at once per account and region.
const CREATES_PER_REGION: usize = 4;
/// Accounts readied at once (roles assumed, regions listed).
const READY_AT_ONCE: usize = 16;

/// What one row's create did.
pub(crate) type Outcome = (CreateRequest, Result<CreateOutcome, AwsError>);

/// Readies every account of `accounts` (each one the server reaches): assumes its role
/// and lists its enabled regions, `home_enabled` being the home account's (`home`). An
/// account refused (AccessDenied, a role that does not exist, bad credentials) comes back
/// as the words of its refusal, for `validate` to list with its rows; a throttled or
/// unavailable AWS fails the statement with that error (nothing was created, and trying
/// again may work).
pub(crate) async fn reach(
    clients: &Ec2Clients,
    home: &str,
    home_enabled: &[String],
    accounts: BTreeSet<String>,
) -> Result<BTreeMap<String, Reach>> {
    let lookups = futures::stream::iter(accounts)
        .map(|account| async move {
            if account == home {
                return (account, Ok(Ok(home_enabled.to_vec())));
            }
            let Some(member) = clients.for_account(&account) else {
                let why = format!("account {account} is no longer one this server reaches");
                return (account, Ok(Err(why)));
            };
            let looked_up = async {
                member.ready().await?;
                member.enabled_regions().await
            }
            .await;
            let outcome = match looked_up {
                Ok(regions) => Ok(Ok(regions)),
                Err(mut e) => {
                    e.account.get_or_insert_with(|| account.clone());
                    match e.kind {
                        AwsErrorKind::Throttled | AwsErrorKind::Unavailable => Err(e),
                        _ => Ok(Err(e.summary())),
                    }
                }
            };
            (account, outcome)
        })
        .buffer_unordered(READY_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut reached = BTreeMap::new();
    for (account, outcome) in lookups {
        match outcome {
            Ok(reach) => {
                reached.insert(account, reach);
            }
            Err(mut e) => {
                e.message.push_str(
                    "; the INSERT was refused before any create (nothing was created): try \
                     again",
                );
                return Err(DataFusionError::External(Box::new(e)));
            }
        }
    }
    Ok(reached)
}

/// The create requests of `rows`, sent by `statement` (tasks are claimed per statement,
/// see `ec2::claims`), as a dry run when `dry_run`.
pub(crate) fn requests(
    rows: Vec<ValidRow>,
    dry_run: bool,
    statement: StatementId,
) -> Vec<CreateRequest> {
    rows.into_iter()
        .map(|row| CreateRequest {
            account: row.account,
            region: row.region,
            ami_id: row.ami_id,
            bucket: row.bucket,
            dry_run,
            statement,
        })
        .collect()
}

/// Refuses the statement if a task is already in progress for any of its AMIs in the
/// row's account and region: AWS would refuse that row after others were created.
pub(crate) async fn none_in_progress(clients: &Ec2Clients, rows: &[ValidRow]) -> Result<()> {
    let mut by_place: BTreeMap<(&str, &str), Vec<&ValidRow>> = BTreeMap::new();
    for r in rows {
        by_place.entry((&r.account, &r.region)).or_default().push(r);
    }
    let several = by_place
        .keys()
        .map(|(account, _)| account)
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let checks = by_place
        .into_iter()
        .map(|((account, region), rows)| async move {
            let clients = clients
                .for_account(account)
                .ok_or_else(|| no_longer_reached(account, region))?;
            let amis: Vec<String> = rows.iter().map(|r| r.ami_id.clone()).collect();
            let tasks = clients
                .tasks_of_images(region, &amis)
                .await
                .map_err(|mut e| {
                    e.account.get_or_insert_with(|| account.to_owned());
                    e
                })?;
            Ok::<_, AwsError>(validate::in_progress(&rows, &tasks, several))
        });
    let mut problems = Vec::new();
    for result in futures::future::join_all(checks).await {
        problems.extend(result.map_err(|e| DataFusionError::External(Box::new(e)))?);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid(validate::refusal(problems)))
    }
}

/// The error of a row whose account the server no longer reaches (nothing is sent for it).
fn no_longer_reached(account: &str, region: &str) -> AwsError {
    let mut e = AwsError::local(
        region,
        "CreateStoreImageTask",
        AwsErrorKind::InvalidRequest,
        format!("account {account} is no longer one this server reaches; nothing was sent for it"),
    );
    e.account = Some(account.to_owned());
    e
}

/// Sends every request through its account's clients, exactly once each; every request
/// comes back with its outcome, in the order of the requests (the statement's rows).
pub(crate) async fn create_all(clients: &Ec2Clients, requests: Vec<CreateRequest>) -> Vec<Outcome> {
    let mut by_place: BTreeMap<(String, String), Vec<(usize, CreateRequest)>> = BTreeMap::new();
    for (index, r) in requests.into_iter().enumerate() {
        by_place
            .entry((r.account.clone(), r.region.clone()))
            .or_default()
            .push((index, r));
    }
    let per_place = by_place.into_iter().map(|((account, region), rows)| {
        let account_clients = clients
            .for_account(&account)
            .ok_or_else(|| no_longer_reached(&account, &region));
        futures::stream::iter(rows)
            .map(move |(index, r)| {
                let account_clients = account_clients.clone();
                async move {
                    let outcome = match account_clients {
                        Ok(clients) => clients.create_store_image_task(&r).await,
                        Err(e) => Err(e),
                    };
                    (index, (r, outcome))
                }
            })
            .buffer_unordered(CREATES_PER_REGION)
            .collect::<Vec<_>>()
    });
    let mut outcomes: Vec<(usize, Outcome)> = futures::future::join_all(per_place)
        .await
        .into_iter()
        .flatten()
        .collect();
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_account_the_statement_and_the_dry_run() {
        let row = ValidRow {
            row: 1,
            account: "100000000001".into(),
            region: "us-east-1".into(),
            ami_id: "ami-12345678".into(),
            bucket: "b-bucket".into(),
        };
        assert_eq!(
            requests(vec![row], true, 7),
            [CreateRequest {
                account: "100000000001".into(),
                region: "us-east-1".into(),
                ami_id: "ami-12345678".into(),
                bucket: "b-bucket".into(),
                dry_run: true,
                statement: 7,
            }]
        );
    }
}
