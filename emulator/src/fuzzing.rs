//! Entry points for the fuzz targets (`fuzz/`, `scripts/fuzz.sh`): the request pipeline of
//! the APIs (every service) without the HTTP server. Form parsing, the credential scope, the action's
//! parameters, pagination tokens, the store and the XML answers all run; nothing may panic.

use std::sync::OnceLock;

use crate::config::EmulatorOptions;
use crate::emulator::Shared;
use crate::http::{Request, Seen};

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Handles one request (query string, form body, `Authorization` header) against a small
/// emulator with a frozen clock; returns the HTTP status of the answer.
pub fn handle_request(query: Option<&str>, body: &[u8], authorization: Option<&str>) -> u16 {
    let shared = SHARED.get_or_init(|| {
        Shared::new(&EmulatorOptions {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            tasks_per_region: 250,
            freeze_time: true,
            ..EmulatorOptions::default()
        })
        .expect("valid options")
    });
    let request = Request {
        query,
        body,
        authorization,
        ..Request::default()
    };
    crate::http::handle(shared, request, "fuzz", &mut Seen::default())
        .status
        .as_u16()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_whatever_they_hold() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ec2/aws4_request, \
                    SignedHeaders=host, Signature=x";
        assert_eq!(
            handle_request(
                None,
                b"Action=DescribeStoreImageTasks&MaxResults=5",
                Some(auth)
            ),
            200
        );
        assert_eq!(
            handle_request(
                None,
                b"Action=DescribeStoreImageTasks&NextToken=%FF%FE",
                Some(auth)
            ),
            400
        );
        assert_eq!(handle_request(Some("%zz"), b"\xff\xfe", Some(auth)), 400);
        assert_eq!(handle_request(None, b"Action=DescribeRegions", None), 401);
        let sts = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, \
                   SignedHeaders=host, Signature=x";
        assert_eq!(
            handle_request(None, b"Action=GetCallerIdentity", Some(sts)),
            200
        );
        assert_eq!(handle_request(None, b"Action=AssumeRole", Some(sts)), 400);
    }
}
