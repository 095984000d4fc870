//! What aws-sdk-ec2 costs per page. The release profile builds `aws-sdk-ec2` at
//! opt-level 0 (it would otherwise take most of a 44-minute release build); this measures
//! whether that matters (run it with `--profile release` to measure that build; change the
//! profile's opt-level to compare): the same 100 pages of 200 tasks from the in-process
//! emulator, fetched once as raw HTTP (request, emulator, response body, no parsing) and once through
//! the SDK (request signing and serialisation, XML parsing into typed results), with the
//! SDK's own decoder and with this crate's one-pass decoder, one page after the other and
//! with read-ahead as the server pages. The differences are what each part costs per page.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_flightsql::ec2::{AwsConfig, Credentials, DescribeRequest, Ec2Clients, PageOptions};
use ec2_emulator::{Emulator, EmulatorOptions};
use futures::TryStreamExt;

const TASKS: usize = 20_000;
const ROUNDS: usize = 5;

async fn raw_pages(url: &str) -> (usize, Duration) {
    let http = reqwest::Client::new();
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/ec2/aws4_request, \
                SignedHeaders=host, Signature=0";
    let start = Instant::now();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut form = vec![
            ("Action", "DescribeStoreImageTasks".to_owned()),
            ("Version", "2016-11-15".to_owned()),
        ];
        if let Some(t) = &token {
            form.push(("NextToken", t.clone()));
        }
        let body = http
            .post(url)
            .header("authorization", auth)
            .form(&form)
            .send()
            .await
            .expect("emulator answers")
            .text()
            .await
            .expect("body");
        pages += 1;
        // Only the token is read, by string search: this side does no XML parsing.
        token = body
            .split_once("<nextToken>")
            .and_then(|(_, rest)| rest.split_once("</nextToken>"))
            .map(|(t, _)| t.to_owned());
        if token.is_none() {
            return (pages, start.elapsed());
        }
    }
}

/// How pages are fetched through the SDK: `(label, read_ahead, fast_decode)`.
const WAYS: [(&str, bool, bool); 4] = [
    (
        "through aws-sdk-ec2 one page after the other: signing, request, the SDK's XML decoder",
        false,
        false,
    ),
    (
        "the same with this crate's one-pass decoder (the SDK still signs, sends, retries)",
        false,
        true,
    ),
    (
        "SDK decoder, next call started from the raw answer's NextToken (the previous release)",
        true,
        false,
    ),
    (
        "as the server pages: read-ahead and the one-pass decoder",
        true,
        true,
    ),
];

async fn sdk_pages(clients: &Ec2Clients, read_ahead: bool, fast_decode: bool) -> (usize, Duration) {
    let start = Instant::now();
    let options = PageOptions {
        use_cache: false,
        read_ahead,
        fast_decode,
        ..PageOptions::default()
    };
    let pages: Vec<_> = clients
        .describe_store_image_tasks("us-east-1", DescribeRequest::default(), options)
        .try_collect()
        .await
        .expect("pages");
    let rows: usize = pages.iter().map(|p| p.tasks.len()).sum();
    assert_eq!(rows, TASKS);
    (pages.len(), start.elapsed())
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let emulator = Emulator::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            EmulatorOptions::one_frozen_region(TASKS),
        )
        .await
        .expect("emulator");
        let clients = Ec2Clients::load(&AwsConfig {
            endpoint_url: Some(emulator.endpoint_url()),
            credentials: Credentials::Static {
                access_key_id: "AKIDBENCH".into(),
                secret_access_key: "bench".into(),
            },
            default_region: Some("us-east-1".into()),
            ..AwsConfig::default()
        })
        .await;
        // Warm up connections.
        raw_pages(&emulator.endpoint_url()).await;
        for (_, read_ahead, fast) in WAYS {
            sdk_pages(&clients, read_ahead, fast).await;
        }
        let mut raw = Vec::new();
        let mut ways: Vec<Vec<Duration>> = vec![Vec::new(); WAYS.len()];
        let mut pages = 0;
        for _ in 0..ROUNDS {
            let (p, t) = raw_pages(&emulator.endpoint_url()).await;
            raw.push(t);
            pages = p;
            for (times, (_, read_ahead, fast)) in ways.iter_mut().zip(WAYS) {
                let (q, u) = sdk_pages(&clients, read_ahead, fast).await;
                assert_eq!(p, q);
                times.push(u);
            }
        }
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[ROUNDS / 2].as_secs_f64() * 1000.0 / pages as f64
        };
        let raw_ms = median(&mut raw);
        println!("| per page of 200 tasks (median of {ROUNDS} x {pages} pages) | ms | rows/s |");
        println!("|---|---|---|");
        println!("| raw HTTP: request + emulator + body, no parsing | {raw_ms:.2} | |");
        for (times, (label, _, _)) in ways.iter_mut().zip(WAYS) {
            let ms = median(times);
            println!("| {label} | {ms:.2} | {:.0} |", 200.0 / (ms / 1000.0));
        }
    });
}
