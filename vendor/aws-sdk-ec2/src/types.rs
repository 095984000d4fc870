
pub use crate::types::_s3_object_tag::S3ObjectTag;

pub use crate::types::_filter::Filter;

pub use crate::types::_region::Region;

pub use crate::types::_store_image_task_result::StoreImageTaskResult;

pub use crate::types::_region_geography::RegionGeography;

mod _filter;

mod _region;

mod _region_geography;

mod _s3_object_tag;

mod _store_image_task_result;

/// Builders
pub mod builders;
