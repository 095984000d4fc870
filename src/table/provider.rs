//! `StoreImageTasksTable`, the DataFusion `TableProvider` of `aws.ec2.store_image_tasks`.
//! It decides which regions a query asks and hands the rest to the scan plan. A DataFusion
//! application can register it in its own `SessionContext`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{project_schema, DataFusionError, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use tokio::sync::OnceCell;

use super::pushdown;
use super::scan::StoreImageTasksExec;
use super::schema::store_image_tasks_schema;
use crate::ec2::{DescribeRequest, Ec2Clients};

/// The regions a query asks when its `WHERE` names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSet {
    /// These regions.
    Fixed(Vec<String>),
    /// Every region enabled for the account, from `DescribeRegions` (looked up once).
    AllEnabled,
}

/// The `store_image_tasks` table: `SELECT` runs `DescribeStoreImageTasks` in each region.
#[derive(Debug)]
pub struct StoreImageTasksTable {
    clients: Ec2Clients,
    regions: RegionSet,
    enabled: OnceCell<Vec<String>>,
}

impl StoreImageTasksTable {
    /// A table reading through `clients`, asking `regions` by default.
    pub fn new(clients: Ec2Clients, regions: RegionSet) -> Self {
        StoreImageTasksTable {
            clients,
            regions,
            enabled: OnceCell::new(),
        }
    }

    /// The regions asked when a query names none.
    pub async fn default_regions(&self) -> Result<Vec<String>> {
        match &self.regions {
            RegionSet::Fixed(regions) => Ok(regions.clone()),
            RegionSet::AllEnabled => self
                .enabled
                .get_or_try_init(|| self.clients.enabled_regions())
                .await
                .cloned()
                .map_err(|e| DataFusionError::External(Box::new(e))),
        }
    }
}

#[async_trait]
impl TableProvider for StoreImageTasksTable {
    fn schema(&self) -> SchemaRef {
        store_image_tasks_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| pushdown::support(f)).collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let regions: BTreeSet<String> = match pushdown::regions(filters) {
            Some(chosen) => chosen,
            None => self.default_regions().await?.into_iter().collect(),
        };
        let projected = project_schema(&self.schema(), projection)?;
        Ok(Arc::new(StoreImageTasksExec::new(
            self.clients.clone(),
            regions.into_iter().collect(),
            DescribeRequest::default(),
            projection.cloned(),
            projected,
            limit,
        )))
    }
}
