
pub use crate::types::_s3_object_tag::S3ObjectTagBuilder;

pub use crate::types::_filter::FilterBuilder;

pub use crate::types::_region::RegionBuilder;

pub use crate::types::_store_image_task_result::StoreImageTaskResultBuilder;

pub use crate::types::_region_geography::RegionGeographyBuilder;
