//! The metadata family: catalogs, schemas, tables, table types, SQL info, XDBC type info
//! and keys. Each FlightInfo's ticket is the command itself; its DoGet answers one batch
//! read from the catalog (names and LIKE patterns match in any case, as unquoted names in
//! SQL do). Nothing here runs a query, so a metadata ticket is served while the server
//! drains.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{Any, ProstMessageExt};
use arrow_flight::{FlightDescriptor, FlightInfo};

use super::boundary::boundary_schema;
use super::call::Call;
use super::columns::{describe_table, Origin};
use super::command::Metadata;
use super::keys::{no_keys, FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA};
use super::respond::{flight_info, one_batch, DoGetStream};
use super::service::FlightSqlHandler;
use super::sql_info::{canonical_batch, canonical_schema};
use crate::catalog::MetadataFilter;
use crate::error::Error;
use prost::Message;

impl FlightSqlHandler {
    /// GetFlightInfo of a metadata command: its schema, and the command as its ticket.
    pub(super) fn metadata_flight_info(
        &self,
        call: &Call,
        metadata: Metadata,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Error> {
        let (schema, command): (SchemaRef, Any) = match &metadata {
            Metadata::Catalogs(q) => ((*q).into_builder().schema(), q.as_any()),
            Metadata::Schemas(q) => (q.clone().into_builder().schema(), q.as_any()),
            Metadata::Tables(q) => (q.clone().into_builder().schema(), q.as_any()),
            Metadata::TableTypes(q) => ((*q).into_builder().schema(), q.as_any()),
            Metadata::SqlInfo(q) => {
                let info = self.sql_info_for(&call.caller);
                let schema = canonical_schema(&q.clone().into_builder(info).schema());
                (schema, q.as_any())
            }
            Metadata::XdbcTypeInfo(q) => ((*q).into_builder(&self.xdbc_types).schema(), q.as_any()),
            Metadata::PrimaryKeys(q) => (Arc::clone(&PRIMARY_KEYS_SCHEMA), q.as_any()),
            Metadata::ExportedKeys(q) => (Arc::clone(&FOREIGN_KEYS_SCHEMA), q.as_any()),
            Metadata::ImportedKeys(q) => (Arc::clone(&FOREIGN_KEYS_SCHEMA), q.as_any()),
            Metadata::CrossReference(q) => (Arc::clone(&FOREIGN_KEYS_SCHEMA), q.as_any()),
        };
        flight_info(&schema, command.encode_to_vec(), descriptor)
    }

    /// DoGet of a metadata command: its one batch.
    pub(super) async fn do_get_metadata(
        &self,
        call: &Call,
        metadata: Metadata,
    ) -> Result<DoGetStream, Error> {
        Ok(match metadata {
            Metadata::Catalogs(query) => {
                let tables = self.catalog.tables().await?;
                let mut builder = query.into_builder();
                let mut catalogs: Vec<&str> = tables.iter().map(|t| t.catalog.as_str()).collect();
                catalogs.dedup();
                for catalog in catalogs {
                    builder.append(catalog);
                }
                one_batch(builder.schema(), builder.build())
            }
            Metadata::Schemas(mut query) => {
                let tables = self.catalog.tables().await?;
                // The builder's own filters are case-sensitive.
                let filter = MetadataFilter {
                    catalog: query.catalog.take(),
                    schema_pattern: query.db_schema_filter_pattern.take(),
                    table_pattern: None,
                };
                let mut builder = query.into_builder();
                let mut schemas: Vec<(&str, &str)> = tables
                    .iter()
                    .filter(|t| filter.matches(&t.catalog, &t.schema, None))
                    .map(|t| (t.catalog.as_str(), t.schema.as_str()))
                    .collect();
                schemas.dedup();
                for (catalog, schema) in schemas {
                    builder.append(catalog, schema);
                }
                one_batch(builder.schema(), builder.build())
            }
            Metadata::Tables(mut query) => {
                let style = call.style()?;
                let may_write = self.may_write(&call.caller);
                let tables = self.catalog.tables().await?;
                // The JDBC driver upper-cases names and patterns
                // (`getColumns(null, null, "STORE_IMAGE_TASKS", "%")`).
                let filter = MetadataFilter {
                    catalog: query.catalog.take(),
                    schema_pattern: query.db_schema_filter_pattern.take(),
                    table_pattern: query.table_name_filter_pattern.take(),
                };
                let mut builder = query.into_builder();
                for t in tables
                    .iter()
                    .filter(|t| filter.matches(&t.catalog, &t.schema, Some(&t.name)))
                {
                    let origin = Origin {
                        catalog: t.catalog.clone(),
                        schema: t.schema.clone(),
                        table: t.name.clone(),
                        columns: Arc::clone(&t.arrow_schema),
                    };
                    let schema = describe_table(
                        &boundary_schema(&t.arrow_schema, style),
                        &origin,
                        may_write,
                    );
                    builder.append(&t.catalog, &t.schema, &t.name, &t.table_type, &schema)?;
                }
                one_batch(builder.schema(), builder.build())
            }
            Metadata::TableTypes(query) => {
                let mut builder = query.into_builder();
                for table_type in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
                    builder.append(table_type);
                }
                one_batch(builder.schema(), builder.build())
            }
            Metadata::SqlInfo(query) => {
                let builder = query.into_builder(self.sql_info_for(&call.caller));
                let schema = canonical_schema(&builder.schema());
                let batch = builder
                    .build()
                    .and_then(|b| canonical_batch(b).map_err(FlightError::from));
                one_batch(schema, batch)
            }
            Metadata::XdbcTypeInfo(query) => {
                let builder = query.into_builder(&self.xdbc_types);
                one_batch(builder.schema(), builder.build())
            }
            Metadata::PrimaryKeys(_) => {
                let schema = Arc::clone(&PRIMARY_KEYS_SCHEMA);
                one_batch(Arc::clone(&schema), Ok(no_keys(&schema)))
            }
            Metadata::ExportedKeys(_) | Metadata::ImportedKeys(_) | Metadata::CrossReference(_) => {
                let schema = Arc::clone(&FOREIGN_KEYS_SCHEMA);
                one_batch(Arc::clone(&schema), Ok(no_keys(&schema)))
            }
        })
    }
}
