//! The XML of every answer: `<{Action}Response>` bodies for the three actions and EC2's
//! `<Response><Errors>` body, written with quick-xml (which escapes text) in the element names
//! botocore and the Rust SDK parse.

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::clock::format_timestamp;
use crate::error::ApiError;
use crate::store::TaskView;

/// The EC2 API namespace.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// One `<item>` of DescribeRegions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// `regionName`.
    pub name: String,
    /// `regionEndpoint`.
    pub endpoint: String,
    /// `optInStatus`.
    pub opt_in_status: &'static str,
}

pub(crate) type W = Writer<Vec<u8>>;

pub(crate) fn document(write: impl FnOnce(&mut W) -> io::Result<()>) -> Vec<u8> {
    // A page of 200 tasks is about 80 KB.
    let mut writer = Writer::new(Vec::with_capacity(64 * 1024));
    let result = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| writer.write_event(Event::Text(BytesText::new("\n"))))
        .and_then(|()| write(&mut writer));
    result.expect("writing XML into memory cannot fail");
    writer.into_inner()
}

pub(crate) fn text(writer: &mut W, name: &str, value: &str) -> io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn success(action: &str, request_id: &str, body: impl FnOnce(&mut W) -> io::Result<()>) -> Vec<u8> {
    document(|w| {
        w.create_element(format!("{action}Response"))
            .with_attribute(("xmlns", NAMESPACE))
            .write_inner_content(|w| {
                text(w, "requestId", request_id)?;
                body(w)
            })?;
        Ok(())
    })
}

/// EC2's error document.
pub fn error(err: &ApiError, request_id: &str) -> Vec<u8> {
    document(|w| {
        w.create_element("Response").write_inner_content(|w| {
            w.create_element("Errors").write_inner_content(|w| {
                w.create_element("Error").write_inner_content(|w| {
                    text(w, "Code", err.code)?;
                    text(w, "Message", &err.message)
                })?;
                Ok(())
            })?;
            text(w, "RequestID", request_id)
        })?;
        Ok(())
    })
}

/// The DescribeStoreImageTasks answer.
pub fn describe_store_image_tasks(
    request_id: &str,
    tasks: &[TaskView],
    next_token: Option<&str>,
) -> Vec<u8> {
    success("DescribeStoreImageTasks", request_id, |w| {
        w.create_element("storeImageTaskResultSet")
            .write_inner_content(|w| {
                for task in tasks {
                    w.create_element("item").write_inner_content(|w| {
                        text(w, "amiId", &task.ami_id)?;
                        text(w, "taskStartTime", &format_timestamp(task.task_start_time))?;
                        text(w, "bucket", &task.bucket)?;
                        text(w, "s3objectKey", &task.s3_object_key)?;
                        text(
                            w,
                            "progressPercentage",
                            &task.progress_percentage.to_string(),
                        )?;
                        text(w, "storeTaskState", &task.store_task_state)?;
                        if let Some(reason) = &task.store_task_failure_reason {
                            text(w, "storeTaskFailureReason", reason)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        if let Some(token) = next_token {
            text(w, "nextToken", token)?;
        }
        Ok(())
    })
}

/// The CreateStoreImageTask answer.
pub fn create_store_image_task(request_id: &str, object_key: &str) -> Vec<u8> {
    success("CreateStoreImageTask", request_id, |w| {
        text(w, "objectKey", object_key)
    })
}

/// The DescribeRegions answer.
pub fn describe_regions(request_id: &str, regions: &[RegionInfo]) -> Vec<u8> {
    success("DescribeRegions", request_id, |w| {
        w.create_element("regionInfo").write_inner_content(|w| {
            for region in regions {
                w.create_element("item").write_inner_content(|w| {
                    text(w, "regionName", &region.name)?;
                    text(w, "regionEndpoint", &region.endpoint)?;
                    text(w, "optInStatus", region.opt_in_status)
                })?;
            }
            Ok(())
        })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn string(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn error_document_is_ec2s_and_escaped() {
        let err = ApiError::invalid_parameter_value("a <b> & 'c'");
        let xml = string(error(&err, "req-1"));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidParameterValue</Code>\
             <Message>a &lt;b&gt; &amp; &apos;c&apos;</Message></Error></Errors><RequestID>req-1</RequestID></Response>"
        );
    }

    #[test]
    fn task_items_carry_every_field_in_order() {
        let task = TaskView {
            region: "us-east-1".into(),
            ami_id: "ami-12345678".into(),
            bucket: "b".into(),
            progress_percentage: 40,
            s3_object_key: "ami-12345678.bin".into(),
            store_task_state: "Failed".into(),
            store_task_failure_reason: Some("why".into()),
            task_start_time: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
            s3_object_tags: vec![],
        };
        let xml = string(describe_store_image_tasks("r", &[task], Some("tok")));
        assert!(xml.contains(
            "<DescribeStoreImageTasksResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>"
        ));
        assert!(xml.contains(
            "<item><amiId>ami-12345678</amiId><taskStartTime>2027-01-15T08:00:00.123Z</taskStartTime><bucket>b</bucket>\
             <s3objectKey>ami-12345678.bin</s3objectKey><progressPercentage>40</progressPercentage>\
             <storeTaskState>Failed</storeTaskState><storeTaskFailureReason>why</storeTaskFailureReason></item>"
        ));
        assert!(xml.ends_with("</storeImageTaskResultSet><nextToken>tok</nextToken></DescribeStoreImageTasksResponse>"));
        let empty = string(describe_store_image_tasks("r", &[], None));
        assert!(empty.contains("<storeImageTaskResultSet></storeImageTaskResultSet></Describe"));
    }
}
