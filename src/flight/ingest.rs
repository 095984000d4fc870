//! The ingest family: DoPut of CommandStatementIngest appends the rows that follow to a
//! table, as `INSERT INTO table (columns) SELECT columns FROM the rows` in the session of
//! the call: the same path (admission, exactly-once create, report) as a SQL INSERT. Only
//! appending to an existing table is supported.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption};
use arrow_flight::FlightData;
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::datasource::MemTable;
use futures::stream::Peekable;
use tonic::Streaming;

use super::admit;
use super::call::Call;
use super::command::read_batches;
use super::service::FlightSqlHandler;
use super::session;
use super::statement::{self, Planned};
use super::statements::affected_rows;
use super::tickets::Settings;
use crate::auth::Caller;
use crate::error::Error;

/// The catalog, schema and table the rows of a bulk ingest are read from, in the ingest's
/// own session only.
const INGEST_CATALOG: &str = "__flight_sql_ingest";
const INGEST_SCHEMA: &str = "data";
const INGEST_TABLE: &str = "rows";

impl FlightSqlHandler {
    /// DoPut of a bulk ingest: reads the rows (after the write permission is checked:
    /// they would be refused anyway) and appends them.
    pub(super) async fn do_put_ingest(
        &self,
        call: &Call,
        command: CommandStatementIngest,
        data: Peekable<Streaming<FlightData>>,
    ) -> Result<i64, Error> {
        admit::check_ingest(&call.caller)?;
        let batches = read_batches(data, "rows to ingest").await?;
        self.ingest(&call.caller, command, batches, call.session.settings())
            .await
    }

    /// Appends `batches` to the table `command` names.
    async fn ingest(
        &self,
        caller: &Caller,
        command: CommandStatementIngest,
        batches: Vec<RecordBatch>,
        settings: &Settings,
    ) -> Result<i64, Error> {
        if command.temporary {
            return Err(Error::Unsupported(
                "ingest into a temporary table is not supported: ingest appends to an \
                 existing table (mode=\"append\")"
                    .into(),
            ));
        }
        if command.transaction_id.is_some() {
            return Err(Error::Unsupported(
                "transactions are not supported: every ingest commits on its own".into(),
            ));
        }
        let if_exists = command
            .table_definition_options
            .map(|o| o.if_exists)
            .unwrap_or_default();
        if if_exists != TableExistsOption::Unspecified as i32
            && if_exists != TableExistsOption::Append as i32
        {
            return Err(Error::Unsupported(
                "ingest only appends to an existing table (ADBC mode=\"append\"); creating or \
                 replacing tables is not supported"
                    .into(),
            ));
        }
        let Some(first) = batches.first() else {
            return Ok(0);
        };
        let schema = first.schema();
        let ctx = session::open(&self.catalog, settings)?;
        let rows = MemTable::try_new(Arc::clone(&schema), vec![batches])?;
        let ingest_schema = MemorySchemaProvider::new();
        ingest_schema.register_table(INGEST_TABLE.into(), Arc::new(rows))?;
        let ingest_catalog = MemoryCatalogProvider::new();
        ingest_catalog.register_schema(INGEST_SCHEMA, Arc::new(ingest_schema))?;
        ctx.register_catalog(INGEST_CATALOG, Arc::new(ingest_catalog));

        let mut target = Vec::new();
        for part in [command.catalog.as_deref(), command.schema.as_deref()]
            .into_iter()
            .flatten()
        {
            target.push(quote(part));
        }
        target.push(quote(&command.table));
        let columns = schema
            .fields()
            .iter()
            .map(|f| quote(f.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {}.{}.{}",
            target.join("."),
            quote(INGEST_CATALOG),
            quote(INGEST_SCHEMA),
            quote(INGEST_TABLE),
        );
        crate::observe::note_statement(&sql);
        let planned = statement::plan(&self.catalog, &ctx, &sql, &[]).await?;
        admit::check_write(caller, &planned)?;
        let Planned::Plan(df) = planned else {
            unreachable!("an INSERT is a plan")
        };
        let batches = df.collect().await?;
        affected_rows(&batches)
    }
}

/// A SQL identifier, quoted.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
