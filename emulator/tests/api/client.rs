//! A small EC2 Query client for the tests: signs nothing, but puts the region in a SigV4-shaped
//! `Authorization` header, and parses answers into a simple XML tree.

use std::time::Duration;

use ec2_emulator::{Emulator, EmulatorOptions, TaskView, REQUEST_ID_HEADER};
use quick_xml::events::Event;
use quick_xml::Reader;

/// An emulator and a client for it; the emulator stops when this is dropped.
pub struct Fixture {
    pub emulator: Emulator,
    pub http: reqwest::Client,
}

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub request_id_header: String,
    pub content_type: String,
    pub xml: Element,
}

/// An XML element: its name, its text (entities resolved) and its children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

pub fn parse_xml(text: &str) -> Element {
    let mut reader = Reader::from_str(text);
    let mut stack = vec![Element::default()];
    let mut raw_text = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => {
                stack.push(Element {
                    name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
                    ..Element::default()
                });
                raw_text.clear();
            }
            Event::Empty(start) => {
                let element = Element {
                    name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
                    ..Element::default()
                };
                stack.last_mut().unwrap().children.push(element);
            }
            Event::Text(t) => raw_text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                raw_text.push('&');
                raw_text.push_str(&r.decode().unwrap());
                raw_text.push(';');
            }
            Event::End(_) => {
                let mut element = stack.pop().unwrap();
                if element.children.is_empty() {
                    element.text = quick_xml::escape::unescape(&raw_text).unwrap().into_owned();
                }
                raw_text.clear();
                stack.last_mut().unwrap().children.push(element);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert!(stack.is_empty(), "unbalanced XML: {text}");
    assert_eq!(document.children.len(), 1, "one root element: {text}");
    document.children.pop().unwrap()
}

pub fn authorization(region: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/{region}/ec2/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef"
    )
}

impl Fixture {
    /// An emulator with the default sample data and a frozen clock.
    pub async fn frozen() -> Fixture {
        Fixture::start(EmulatorOptions {
            freeze_time: true,
            ..EmulatorOptions::default()
        })
        .await
    }

    pub async fn start(options: EmulatorOptions) -> Fixture {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options)
            .await
            .expect("emulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Fixture { emulator, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.endpoint_url())
    }

    /// POSTs the form with a credential scope for `region` (none when `None`).
    pub async fn call_with_auth(
        &self,
        authorization: Option<&str>,
        form: &[(&str, &str)],
    ) -> Answer {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut request = self
            .http
            .post(self.url("/"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        answer(request.send().await.expect("request sent")).await
    }

    pub async fn call(&self, region: &str, form: &[(&str, &str)]) -> Answer {
        self.call_with_auth(Some(&authorization(region)), form)
            .await
    }

    /// GETs `/?<form>` with a credential scope for `region`.
    pub async fn get(&self, region: &str, form: &[(&str, &str)]) -> Answer {
        let query = serde_urlencoded::to_string(form).unwrap();
        let request = self
            .http
            .get(self.url(&format!("/?{query}")))
            .header("authorization", authorization(region));
        answer(request.send().await.expect("request sent")).await
    }

    /// One DescribeStoreImageTasks call with extra parameters.
    pub async fn describe(&self, region: &str, extra: &[(&str, &str)]) -> Answer {
        let mut form = vec![
            ("Action", "DescribeStoreImageTasks"),
            ("Version", "2016-11-15"),
        ];
        form.extend_from_slice(extra);
        self.call(region, &form).await
    }

    /// Every page of a listing; returns the items and the number of pages.
    pub async fn describe_all(
        &self,
        region: &str,
        extra: &[(&str, &str)],
    ) -> (Vec<Element>, usize) {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut form: Vec<(&str, &str)> = extra.to_vec();
            if let Some(token) = &token {
                form.push(("NextToken", token));
            }
            let answer = self.describe(region, &form).await;
            assert_eq!(answer.status, 200, "{answer:?}");
            pages += 1;
            items.extend(result_items(&answer));
            token = answer.xml.text_of("nextToken").map(str::to_owned);
            if token.is_none() {
                return (items, pages);
            }
            assert!(pages < 1000, "paging does not end");
        }
    }

    pub async fn create(
        &self,
        region: &str,
        ami: &str,
        bucket: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut form = vec![
            ("Action", "CreateStoreImageTask"),
            ("Version", "2016-11-15"),
            ("ImageId", ami),
            ("Bucket", bucket),
        ];
        form.extend_from_slice(extra);
        self.call(region, &form).await
    }

    pub async fn config(&self, json: serde_json::Value) -> serde_json::Value {
        let response = self
            .http
            .post(self.url("/_emulator/config"))
            .json(&json)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub fn task_of(&self, region: &str, ami: &str) -> TaskView {
        self.emulator
            .tasks(region)
            .into_iter()
            .find(|t| t.ami_id == ami)
            .unwrap_or_else(|| panic!("no task of {ami}"))
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let request_id_header = header(REQUEST_ID_HEADER);
    let content_type = header("content-type");
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "XML declaration: {text}"
    );
    Answer {
        status,
        request_id_header,
        content_type,
        xml: parse_xml(&text),
    }
}

pub fn result_items(answer: &Answer) -> Vec<Element> {
    answer
        .xml
        .child("storeImageTaskResultSet")
        .expect("a result set")
        .children
        .clone()
}

impl Answer {
    /// The error code, checking the error document's shape and request id on the way.
    pub fn error_code(&self) -> &str {
        assert_eq!(self.xml.name, "Response", "{self:?}");
        assert_eq!(self.xml.names(), ["Errors", "RequestID"]);
        assert_eq!(
            self.xml.text_of("RequestID").unwrap(),
            self.request_id_header
        );
        self.error().text_of("Code").unwrap()
    }

    pub fn error_message(&self) -> &str {
        self.error().text_of("Message").unwrap()
    }

    fn error(&self) -> &Element {
        self.xml.child("Errors").unwrap().child("Error").unwrap()
    }

    /// Asserts an error's status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error_code()), (status, code), "{self:?}");
    }
}

/// The fields of a result item as a TaskView-like tuple for comparisons.
pub fn item_key(item: &Element) -> (String, String, String, String, String) {
    (
        item.text_of("amiId").unwrap().to_owned(),
        item.text_of("taskStartTime").unwrap().to_owned(),
        item.text_of("bucket").unwrap().to_owned(),
        item.text_of("storeTaskState").unwrap().to_owned(),
        item.text_of("progressPercentage").unwrap().to_owned(),
    )
}

pub fn view_key(task: &TaskView) -> (String, String, String, String, String) {
    (
        task.ami_id.clone(),
        ec2_emulator::format_timestamp(task.task_start_time),
        task.bucket.clone(),
        task.store_task_state.clone(),
        task.progress_percentage.to_string(),
    )
}
