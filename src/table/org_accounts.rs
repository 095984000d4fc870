//! `aws.organizations.accounts`: the organization's accounts from AWS Organizations
//! `ListAccounts` (id, name, email, status, joinedTimestamp), one record batch per page, so
//! that a query can join `store_image_tasks.account` to an account's name
//! (`WHERE a.name LIKE 'prod-%'`). Served when the server discovers the organization's
//! accounts (`org_member_role`): that is when its credentials may call ListAccounts. A
//! server reading only configured accounts (`[[accounts]]`) lists the table too, and a query
//! of it is refused before any call, saying how to turn discovery on.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringBuilder, TimestampMillisecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;

use super::error::TableError;
use super::schema::COMMENT;
use crate::ec2::{Ec2Clients, OrgAccount};

/// The schema the table is in.
pub const ORGANIZATIONS_SCHEMA: &str = "organizations";
/// The table's name.
pub const ACCOUNTS_TABLE: &str = "accounts";
/// The table's description.
pub const ACCOUNTS_COMMENT: &str = "The accounts of the AWS organization (Organizations \
    ListAccounts), when the server discovers them (org_member_role): join \
    store_image_tasks.account to id to query by account name.";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let field = |name: &str, data_type: DataType, nullable: bool, comment: &str| {
        Field::new(name, data_type, nullable).with_metadata(
            [(COMMENT.to_owned(), comment.to_owned())]
                .into_iter()
                .collect(),
        )
    };
    Arc::new(Schema::new_with_metadata(
        vec![
            field("id", DataType::Utf8, false, "The 12-digit account id."),
            field("name", DataType::Utf8, true, "The account's name."),
            field(
                "email",
                DataType::Utf8,
                true,
                "The email address of the account's owner.",
            ),
            field(
                "status",
                DataType::Utf8,
                true,
                "ACTIVE, SUSPENDED or PENDING_CLOSURE.",
            ),
            field(
                "joinedTimestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
                "When the account joined the organization (UTC).",
            ),
        ],
        [(COMMENT.to_owned(), ACCOUNTS_COMMENT.to_owned())]
            .into_iter()
            .collect(),
    ))
});

/// The Arrow schema of `aws.organizations.accounts`.
pub fn org_accounts_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// One page of ListAccounts as a record batch.
pub fn accounts_to_batch(accounts: &[OrgAccount]) -> Result<RecordBatch> {
    let mut id = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut email = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut joined = TimestampMillisecondBuilder::new().with_timezone("UTC");
    for a in accounts {
        id.append_value(&a.id);
        name.append_option(a.name.as_deref());
        email.append_option(a.email.as_deref());
        status.append_option(a.status.as_deref());
        joined.append_option(a.joined_ms);
    }
    Ok(RecordBatch::try_new(
        org_accounts_schema(),
        vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            Arc::new(email.finish()),
            Arc::new(status.finish()),
            Arc::new(joined.finish()),
        ],
    )?)
}

/// The `aws.organizations.accounts` table.
#[derive(Debug)]
pub struct OrgAccountsTable {
    clients: Ec2Clients,
}

impl OrgAccountsTable {
    /// The table, listing the organization with the home credentials of `clients`.
    pub fn new(clients: Ec2Clients) -> Self {
        OrgAccountsTable { clients }
    }
}

#[async_trait]
impl TableProvider for OrgAccountsTable {
    fn schema(&self) -> SchemaRef {
        org_accounts_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.clients.discovers() {
            return Err(DataFusionError::External(Box::new(TableError::Invalid(
                "aws.organizations.accounts lists the organization's accounts (AWS \
                 Organizations ListAccounts) only when the server discovers them: start it \
                 with org_member_role (--org-member-role NAME, AWS_FLIGHTSQL_ORG_MEMBER_ROLE) \
                 and credentials allowed organizations:ListAccounts. This server reads the \
                 accounts it is configured with and does not call Organizations"
                    .to_owned(),
            ))));
        }
        let pages: Arc<dyn PartitionStream> = Arc::new(ListAccountsPages {
            clients: self.clients.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            org_accounts_schema(),
            vec![pages],
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// The one partition of the table: the pages of ListAccounts, each a batch, the next page
/// asked when the consumer wants it.
struct ListAccountsPages {
    clients: Ec2Clients,
}

impl std::fmt::Debug for ListAccountsPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListAccountsPages")
    }
}

impl PartitionStream for ListAccountsPages {
    fn schema(&self) -> &SchemaRef {
        &SCHEMA
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.clients.list_accounts().map(|page| {
            page.map_err(|e| DataFusionError::External(Box::new(e)))
                .and_then(|accounts| accounts_to_batch(&accounts))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            org_accounts_schema(),
            batches,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_one_batch_with_utc_join_times() {
        let batch = accounts_to_batch(&[
            OrgAccount {
                id: "100000000001".into(),
                name: Some("member-01".into()),
                email: Some("a@example.com".into()),
                status: Some("ACTIVE".into()),
                joined_ms: Some(1_577_924_123_000),
            },
            OrgAccount {
                id: "100000000002".into(),
                name: None,
                email: None,
                status: None,
                joined_ms: None,
            },
        ])
        .unwrap();
        assert_eq!(batch.num_rows(), 2);
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&[batch])
            .unwrap()
            .to_string();
        assert!(text.contains("2020-01-02T00:15:23Z"), "{text}");
        assert!(text.contains("member-01"), "{text}");
    }
}
