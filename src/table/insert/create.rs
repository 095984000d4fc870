//! Stage 3 of INSERT: the AWS calls, made only for a statement whose every row passed
//! `validate`. First one `DescribeStoreImageTasks` per region (never from the cache)
//! refuses the statement when a task for one of its AMIs is already in progress; then
//! each row is sent as one `CreateStoreImageTask`, exactly once (the claim, retry and
//! confirm state machine is `ec2::create`'s), at most [`CREATES_PER_REGION`] at a time
//! per region, all regions at once. Every row comes back with its outcome, for `report`.

use std::collections::BTreeMap;

use datafusion::common::{DataFusionError, Result};
use futures::StreamExt;

use super::invalid;
use super::validate::{self, ValidRow};
use crate::ec2::{AwsError, CreateOutcome, CreateRequest, Ec2Clients, StatementId};

/// Creates in flight at once per region.
const CREATES_PER_REGION: usize = 4;

/// What one row's create did.
pub(crate) type Outcome = (CreateRequest, Result<CreateOutcome, AwsError>);

/// The create requests of `rows`, sent by `statement` (tasks are claimed per statement,
/// see `ec2::claims`), as a dry run when `dry_run`.
pub(crate) fn requests(
    rows: Vec<ValidRow>,
    dry_run: bool,
    statement: StatementId,
) -> Vec<CreateRequest> {
    rows.into_iter()
        .map(|row| CreateRequest {
            region: row.region,
            ami_id: row.ami_id,
            bucket: row.bucket,
            dry_run,
            statement,
        })
        .collect()
}

/// Refuses the statement if a task is already in progress for any of its AMIs: AWS would
/// refuse that row after others were created.
pub(crate) async fn none_in_progress(
    clients: &Ec2Clients,
    requests: &[CreateRequest],
) -> Result<()> {
    let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in requests {
        by_region
            .entry(&r.region)
            .or_default()
            .push(r.ami_id.clone());
    }
    let checks = by_region.into_iter().map(|(region, amis)| async move {
        let tasks = clients.tasks_of_images(region, &amis).await?;
        Ok::<_, AwsError>(validate::in_progress(region, &tasks))
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

/// Sends every request, exactly once each; every request comes back with its outcome
/// (grouped by region, in region order).
pub(crate) async fn create_all(clients: &Ec2Clients, requests: Vec<CreateRequest>) -> Vec<Outcome> {
    let mut by_region: BTreeMap<String, Vec<CreateRequest>> = BTreeMap::new();
    for r in requests {
        by_region.entry(r.region.clone()).or_default().push(r);
    }
    let per_region = by_region.into_values().map(|rows| {
        let clients = clients.clone();
        futures::stream::iter(rows)
            .map(move |r| {
                let clients = clients.clone();
                async move {
                    let outcome = clients.create_store_image_task(&r).await;
                    (r, outcome)
                }
            })
            .buffer_unordered(CREATES_PER_REGION)
            .collect::<Vec<_>>()
    });
    futures::future::join_all(per_region)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_statement_and_the_dry_run() {
        let row = ValidRow {
            region: "us-east-1".into(),
            ami_id: "ami-12345678".into(),
            bucket: "b-bucket".into(),
        };
        assert_eq!(
            requests(vec![row], true, 7),
            [CreateRequest {
                region: "us-east-1".into(),
                ami_id: "ami-12345678".into(),
                bucket: "b-bucket".into(),
                dry_run: true,
                statement: 7,
            }]
        );
    }
}
