//! `StoreImageTasksExec`, the scan plan: one partition per region, each a background task
//! that pages through `DescribeStoreImageTasks` and sends one record batch per page into a
//! small buffer. The buffer bounds how far paging runs ahead of the consumer, and dropping
//! the stream aborts the task, so no further page is requested.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

use super::schema::tasks_to_batch;
use crate::ec2::{DescribeRequest, Ec2Clients};

/// Pages fetched ahead of the consumer, per partition.
const PAGES_BUFFERED: usize = 2;
/// The API's largest page.
const MAX_PAGE_SIZE: usize = 200;

/// Scans `store_image_tasks` in a set of regions, one partition per region.
#[derive(Debug)]
pub struct StoreImageTasksExec {
    clients: Ec2Clients,
    regions: Vec<String>,
    request: DescribeRequest,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl StoreImageTasksExec {
    /// A scan of `regions` with `request`, producing `schema` (the projection of the table's
    /// schema by `projection`), stopping after `limit` rows per region.
    pub fn new(
        clients: Ec2Clients,
        regions: Vec<String>,
        mut request: DescribeRequest,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
        limit: Option<usize>,
    ) -> Self {
        if let Some(n) = limit {
            if request.image_ids.is_empty() && n > 0 {
                request.max_results = Some(n.min(MAX_PAGE_SIZE) as i32);
            }
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(regions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        StoreImageTasksExec {
            clients,
            regions,
            request,
            projection,
            limit,
            properties: Arc::new(properties),
        }
    }

    /// The regions this scan asks, one per partition.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The request sent to each region.
    pub fn request(&self) -> &DescribeRequest {
        &self.request
    }
}

impl DisplayAs for StoreImageTasksExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoreImageTasksExec: ")?;
        for (i, region) in self.regions.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{region}: DescribeStoreImageTasks(")?;
            let mut params = Vec::new();
            if !self.request.image_ids.is_empty() {
                params.push(format!("ImageIds={:?}", self.request.image_ids));
            }
            if !self.request.task_states.is_empty() {
                params.push(format!("task-state={:?}", self.request.task_states));
            }
            if !self.request.buckets.is_empty() {
                params.push(format!("bucket={:?}", self.request.buckets));
            }
            if let Some(m) = self.request.max_results {
                params.push(format!("MaxResults={m}"));
            }
            write!(f, "{})", params.join(", "))?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StoreImageTasksExec {
    fn name(&self) -> &str {
        "StoreImageTasksExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let mut builder = RecordBatchReceiverStreamBuilder::new(schema, PAGES_BUFFERED);
        let Some(region) = self.regions.get(partition).cloned() else {
            // No region to ask (e.g. `WHERE region IN ()` after intersection): no rows.
            return Ok(builder.build());
        };
        if self.limit == Some(0) {
            return Ok(builder.build());
        }
        let tx = builder.tx();
        let mut pages = self
            .clients
            .describe_store_image_tasks(&region, self.request.clone());
        let projection = self.projection.clone();
        let mut remaining = self.limit;
        builder.spawn(async move {
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| DataFusionError::External(Box::new(e)))?;
                let mut batch = tasks_to_batch(&page.region, &page.tasks)?;
                if let Some(indices) = &projection {
                    batch = batch.project(indices)?;
                }
                if let Some(left) = remaining.as_mut() {
                    if batch.num_rows() >= *left {
                        batch = batch.slice(0, *left);
                        *left = 0;
                    } else {
                        *left -= batch.num_rows();
                    }
                }
                let done = remaining == Some(0);
                if tx.send(Ok(batch)).await.is_err() || done {
                    // The consumer went away, or the limit is reached: stop paging.
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}
