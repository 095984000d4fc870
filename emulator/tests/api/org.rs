//! Accounts, STS and Organizations: who calls (the access key of the credential scope),
//! AssumeRole's trust decisions and credentials, expiry, ListAccounts' paging and refusals,
//! and per-account state, regions, throttling and hooks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ec2_emulator::{
    account_id, ConfigUpdate, Emulator, EmulatorOptions, Faults, HOME_ACCOUNT, REQUEST_ID_HEADER,
};
use serde_json::{json, Value};

use crate::client::{parse_xml, result_items, Element, Fixture};

const MEMBER: &str = "100000000002";
const READER: &str = "arn:aws:iam::100000000002:role/Reader";

/// Credentials for a request: the access key and, for issued ones, the session token.
#[derive(Debug, Clone)]
struct Creds {
    key: String,
    token: Option<String>,
}

impl Creds {
    fn home() -> Creds {
        Creds {
            key: "AKIDEXAMPLE".into(),
            token: None,
        }
    }
}

/// An STS or EC2 answer: status, request id header, content type, parsed XML.
#[derive(Debug)]
struct XmlAnswer {
    status: u16,
    request_id: String,
    content_type: String,
    xml: Element,
}

impl XmlAnswer {
    /// STS's error code, checking the document's shape and request id.
    fn sts_error(&self) -> (u16, String, String) {
        assert_eq!(self.xml.name, "ErrorResponse", "{self:?}");
        assert_eq!(self.xml.names(), ["Error", "RequestId"]);
        assert_eq!(self.xml.text_of("RequestId").unwrap(), self.request_id);
        let error = self.xml.child("Error").unwrap();
        assert_eq!(error.names(), ["Type", "Code", "Message"]);
        (
            self.status,
            error.text_of("Code").unwrap().to_owned(),
            error.text_of("Message").unwrap().to_owned(),
        )
    }

    /// EC2's error code.
    fn ec2_error(&self) -> (u16, String, String) {
        assert_eq!(self.xml.name, "Response", "{self:?}");
        let error = self.xml.child("Errors").unwrap().child("Error").unwrap();
        (
            self.status,
            error.text_of("Code").unwrap().to_owned(),
            error.text_of("Message").unwrap().to_owned(),
        )
    }

    fn result(&self) -> &Element {
        assert_eq!(self.status, 200, "{self:?}");
        self.xml.children.first().unwrap()
    }
}

fn authorization(key: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={key}/20260101/{region}/{service}/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef"
    )
}

async fn options_fixture(options: EmulatorOptions) -> Fixture {
    Fixture::start(EmulatorOptions {
        freeze_time: true,
        tasks_per_region: 30,
        ..options
    })
    .await
}

async fn org(accounts: usize) -> Fixture {
    options_fixture(EmulatorOptions {
        accounts,
        ..EmulatorOptions::default()
    })
    .await
}

impl Fixture {
    async fn query(
        &self,
        creds: &Creds,
        region: &str,
        service: &str,
        form: &[(&str, &str)],
    ) -> XmlAnswer {
        let mut request = self
            .http
            .post(self.url("/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", authorization(&creds.key, region, service))
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(token) = &creds.token {
            request = request.header("x-amz-security-token", token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let request_id = header(REQUEST_ID_HEADER);
        let content_type = header("content-type");
        let text = response.text().await.unwrap();
        XmlAnswer {
            status,
            request_id,
            content_type,
            xml: parse_xml(&text),
        }
    }

    async fn sts(&self, creds: &Creds, form: &[(&str, &str)]) -> XmlAnswer {
        let mut form = form.to_vec();
        form.push(("Version", "2011-06-15"));
        self.query(creds, "us-east-1", "sts", &form).await
    }

    async fn ec2(&self, creds: &Creds, region: &str, form: &[(&str, &str)]) -> XmlAnswer {
        let mut form = form.to_vec();
        form.push(("Version", "2016-11-15"));
        self.query(creds, region, "ec2", &form).await
    }

    async fn assume(&self, creds: &Creds, role: &str, extra: &[(&str, &str)]) -> XmlAnswer {
        let mut form = vec![
            ("Action", "AssumeRole"),
            ("RoleArn", role),
            ("RoleSessionName", "emulator-test"),
        ];
        form.extend_from_slice(extra);
        self.sts(creds, &form).await
    }

    /// AssumeRole that must succeed: the credentials and their expiration.
    async fn assumed(&self, role: &str, extra: &[(&str, &str)]) -> (Creds, DateTime<Utc>) {
        let answer = self.assume(&Creds::home(), role, extra).await;
        let credentials = answer.result().child("Credentials").unwrap();
        let expiration = credentials.text_of("Expiration").unwrap();
        (
            Creds {
                key: credentials.text_of("AccessKeyId").unwrap().to_owned(),
                token: Some(credentials.text_of("SessionToken").unwrap().to_owned()),
            },
            DateTime::parse_from_rfc3339(expiration).unwrap().into(),
        )
    }

    /// A ListAccounts call: status, request id header, JSON body.
    async fn list_accounts(&self, creds: &Creds, body: Value) -> (u16, String, Value) {
        self.organizations(creds, "AWSOrganizationsV20161128.ListAccounts", body)
            .await
    }

    async fn organizations(
        &self,
        creds: &Creds,
        target: &str,
        body: Value,
    ) -> (u16, String, Value) {
        let mut request = self
            .http
            .post(self.url("/"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header(
                "authorization",
                authorization(&creds.key, "us-east-1", "organizations"),
            )
            .body(body.to_string());
        if let Some(token) = &creds.token {
            request = request.header("x-amz-security-token", token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"],
            "application/x-amz-json-1.1"
        );
        let request_id = response.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        (status, request_id, response.json().await.unwrap())
    }

    async fn hook(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn amis(items: &[Element]) -> Vec<String> {
    items
        .iter()
        .map(|i| i.text_of("amiId").unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn get_caller_identity_names_the_home_account_for_any_key_not_issued() {
    let fx = org(3).await;
    for key in ["AKIDEXAMPLE", "AKIDTEST", "anything"] {
        let answer = fx
            .sts(
                &Creds {
                    key: key.into(),
                    token: None,
                },
                &[("Action", "GetCallerIdentity")],
            )
            .await;
        assert_eq!(answer.content_type, "text/xml");
        assert_eq!(answer.xml.name, "GetCallerIdentityResponse");
        assert_eq!(
            answer.xml.names(),
            ["GetCallerIdentityResult", "ResponseMetadata"]
        );
        assert_eq!(
            answer
                .xml
                .child("ResponseMetadata")
                .unwrap()
                .text_of("RequestId"),
            Some(answer.request_id.as_str())
        );
        let result = answer.result();
        assert_eq!(result.text_of("Account"), Some(HOME_ACCOUNT));
        assert_eq!(
            result.text_of("Arn"),
            Some("arn:aws:iam::111111111111:user/emulator")
        );
        assert!(result.text_of("UserId").unwrap().starts_with("AIDA"));
    }
}

#[tokio::test]
async fn assumed_credentials_act_in_the_roles_account() {
    let fx = org(3).await;
    let (creds, expiration) = fx.assumed(READER, &[]).await;
    assert!(creds.key.starts_with("ASIA") && creds.key.len() == 20);
    let lifetime = expiration - Utc::now();
    assert!(
        (3590..=3601).contains(&lifetime.num_seconds()),
        "default lifetime is an hour: {lifetime}"
    );
    let (again, _) = fx.assumed(READER, &[]).await;
    assert_ne!(creds.key, again.key, "each AssumeRole issues a new key");

    let identity = fx.sts(&creds, &[("Action", "GetCallerIdentity")]).await;
    let result = identity.result();
    assert_eq!(result.text_of("Account"), Some(MEMBER));
    assert_eq!(
        result.text_of("Arn"),
        Some("arn:aws:sts::100000000002:assumed-role/Reader/emulator-test")
    );
    assert!(result.text_of("UserId").unwrap().starts_with("AROA"));
    assert!(result
        .text_of("UserId")
        .unwrap()
        .ends_with(":emulator-test"));

    // EC2 with the assumed credentials lists the member's tasks, not the home account's.
    fx.emulator.clear_requests();
    let answer = fx
        .ec2(
            &creds,
            "eu-west-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let listed = amis(&result_items_of(&answer));
    let member: Vec<String> = fx
        .emulator
        .tasks_in(MEMBER, "eu-west-1")
        .into_iter()
        .map(|t| t.ami_id)
        .collect();
    assert_eq!(listed, member);
    let home: BTreeSet<String> = fx
        .emulator
        .tasks("eu-west-1")
        .into_iter()
        .map(|t| t.ami_id)
        .collect();
    assert!(listed.iter().all(|ami| !home.contains(ami)));
    let home_answer = fx
        .ec2(
            &Creds::home(),
            "eu-west-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await;
    assert_eq!(
        amis(&result_items_of(&home_answer)),
        fx.emulator
            .tasks("eu-west-1")
            .into_iter()
            .map(|t| t.ami_id)
            .collect::<Vec<_>>()
    );

    // The log says who called which service.
    let log = fx.emulator.requests();
    let seen: Vec<(Option<&str>, Option<&str>)> = log
        .iter()
        .map(|r| (r.account.as_deref(), r.service.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some(MEMBER), Some("ec2")),
            (Some(HOME_ACCOUNT), Some("ec2"))
        ]
    );
}

fn result_items_of(answer: &XmlAnswer) -> Vec<Element> {
    result_items(&crate::client::Answer {
        status: answer.status,
        request_id_header: answer.request_id.clone(),
        content_type: answer.content_type.clone(),
        xml: answer.xml.clone(),
    })
}

#[tokio::test]
async fn tasks_are_created_in_the_callers_account_only() {
    let fx = org(3).await;
    let (creds, _) = fx.assumed(READER, &[]).await;
    let ami = fx.emulator.storable_amis_in(MEMBER, "us-east-1")[0].clone();
    let bucket = fx.emulator.buckets_in(MEMBER, "us-east-1")[0].clone();
    assert_eq!(bucket, "ami-archive-100000000002-us-east-1");
    let home_before = fx.emulator.tasks("us-east-1");
    let answer = fx
        .ec2(
            &creds,
            "us-east-1",
            &[
                ("Action", "CreateStoreImageTask"),
                ("ImageId", &ami),
                ("Bucket", &bucket),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(fx
        .emulator
        .tasks_in(MEMBER, "us-east-1")
        .iter()
        .any(|t| t.ami_id == ami && t.bucket == bucket));
    assert_eq!(fx.emulator.tasks("us-east-1"), home_before);
    assert!(fx
        .emulator
        .tasks_in(&account_id(1), "us-east-1")
        .iter()
        .all(|t| t.ami_id != ami));
    // The member's AMI does not exist in the home account.
    let home_bucket = fx.emulator.buckets("us-east-1")[0].clone();
    let refused = fx
        .ec2(
            &Creds::home(),
            "us-east-1",
            &[
                ("Action", "CreateStoreImageTask"),
                ("ImageId", &ami),
                ("Bucket", &home_bucket),
            ],
        )
        .await;
    assert_eq!(refused.ec2_error().1, "InvalidAMIID.NotFound");
}

#[tokio::test]
async fn assume_role_refusals_are_access_denied_in_iams_words() {
    let fx = options_fixture(EmulatorOptions {
        accounts: 4,
        unassumable_roles: ["arn:aws:iam::100000000001:role/Locked".to_owned()].into(),
        role_external_ids: [(READER.to_owned(), "ext-1234".to_owned())].into(),
        suspended_accounts: ["100000000003".to_owned()].into(),
        ..EmulatorOptions::default()
    })
    .await;
    for (role, extra) in [
        ("arn:aws:iam::222222222222:role/Reader", vec![]),
        ("arn:aws:iam::100000000004:role/Reader", vec![]),
        ("arn:aws:iam::100000000001:role/Locked", vec![]),
        (READER, vec![]),
        (READER, vec![("ExternalId", "wrong-id")]),
        ("arn:aws:iam::100000000003:role/Reader", vec![]),
    ] {
        let answer = fx.assume(&Creds::home(), role, &extra).await;
        assert_eq!(answer.content_type, "text/xml");
        let (status, code, message) = answer.sts_error();
        assert_eq!((status, code.as_str()), (403, "AccessDenied"), "{role}");
        assert_eq!(
            message,
            format!(
                "User: arn:aws:iam::111111111111:user/emulator is not authorized to perform: sts:AssumeRole on resource: {role}"
            )
        );
        assert!(!message.contains("wrong-id"));
    }
    // The right external id, and a role of the same account without one.
    fx.assumed(READER, &[("ExternalId", "ext-1234")]).await;
    fx.assumed("arn:aws:iam::100000000001:role/Other", &[])
        .await;

    // The hook changes the rules at run time.
    fx.config(json!({
        "unassumable_roles": [],
        "role_external_ids": {},
        "accounts": {"100000000002": {"unassumable_roles": [READER]}}
    }))
    .await;
    fx.assumed("arn:aws:iam::100000000001:role/Locked", &[])
        .await;
    let (status, code, _) = fx.assume(&Creds::home(), READER, &[]).await.sts_error();
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));

    // Malformed requests are validation errors.
    let (status, code, _) = fx
        .sts(
            &Creds::home(),
            &[("Action", "AssumeRole"), ("RoleSessionName", "s1")],
        )
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (400, "ValidationError"));
    let (status, code, _) = fx
        .assume(
            &Creds::home(),
            "arn:aws:iam::100000000001:user/Someone",
            &[],
        )
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (400, "ValidationError"));
    let (status, code, message) = fx
        .sts(&Creds::home(), &[("Action", "GetSessionToken")])
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (400, "InvalidAction"), "{message}");
}

#[tokio::test]
async fn lifetime_is_the_shorter_of_duration_and_credential_seconds() {
    let fx = org(3).await;
    let (_, expiration) = fx.assumed(READER, &[("DurationSeconds", "900")]).await;
    let lifetime = (expiration - Utc::now()).num_seconds();
    assert!((890..=901).contains(&lifetime), "{lifetime}");
    let effective = fx
        .config(json!({"accounts": {MEMBER: {"credential_seconds": 5}}}))
        .await;
    assert_eq!(effective["account_credential_seconds"][MEMBER], 5);
    let (_, expiration) = fx.assumed(READER, &[("DurationSeconds", "900")]).await;
    let lifetime = (expiration - Utc::now()).num_seconds();
    assert!((3..=6).contains(&lifetime), "{lifetime}");
    // Another account keeps the global bound.
    let (_, expiration) = fx.assumed("arn:aws:iam::100000000001:role/R", &[]).await;
    assert!((expiration - Utc::now()).num_seconds() > 3000);
}

#[tokio::test]
async fn expired_and_unknown_credentials_are_refused_per_service() {
    let fx = options_fixture(EmulatorOptions {
        accounts: 3,
        credential_seconds: 1,
        ..EmulatorOptions::default()
    })
    .await;
    let (creds, expiration) = fx.assumed(READER, &[]).await;
    // Valid until the expiration instant.
    let ok = fx
        .ec2(&creds, "us-east-1", &[("Action", "DescribeRegions")])
        .await;
    assert!(ok.status == 200 || Utc::now() >= expiration, "{ok:?}");
    // Credentials expire in real time: wait for the instant the answer named.
    let wait = (expiration - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(20)).await;

    let (status, code, message) = fx
        .ec2(
            &creds,
            "us-east-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await
        .ec2_error();
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (400, "RequestExpired", "Request has expired.")
    );
    let (status, code, message) = fx
        .sts(&creds, &[("Action", "GetCallerIdentity")])
        .await
        .sts_error();
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            403,
            "ExpiredToken",
            "The security token included in the request is expired"
        )
    );
    let (status, _, body) = fx.list_accounts(&creds, json!({})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (403, Some("ExpiredTokenException"))
    );

    // A temporary key never issued, or an issued key with another token.
    let forged = Creds {
        key: "ASIAFORGEDFORGED0000".into(),
        token: Some("token".into()),
    };
    let (status, code, _) = fx
        .ec2(&forged, "us-east-1", &[("Action", "DescribeRegions")])
        .await
        .ec2_error();
    assert_eq!((status, code.as_str()), (401, "AuthFailure"));
    let (status, code, _) = fx
        .sts(&forged, &[("Action", "GetCallerIdentity")])
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (403, "InvalidClientTokenId"));
    let (status, _, body) = fx.list_accounts(&forged, json!({})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (403, Some("UnrecognizedClientException"))
    );
    let stolen = Creds {
        key: creds.key.clone(),
        token: Some("not-its-token".into()),
    };
    let (status, code, _) = fx
        .sts(&stolen, &[("Action", "GetCallerIdentity")])
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (403, "InvalidClientTokenId"));
}

#[tokio::test]
async fn list_accounts_pages_every_account_for_the_management_account() {
    let fx = options_fixture(EmulatorOptions {
        accounts: 45,
        suspended_accounts: ["100000000007".to_owned()].into(),
        ..EmulatorOptions::default()
    })
    .await;
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let body = match &token {
            Some(token) => json!({"NextToken": token}),
            None => json!({}),
        };
        let (status, request_id, page) = fx.list_accounts(&Creds::home(), body).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(request_id.len(), 36);
        pages += 1;
        accounts.extend(page["Accounts"].as_array().unwrap().iter().cloned());
        match page.get("NextToken") {
            Some(next) => token = Some(next.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<&str> = accounts.iter().map(|a| a["Id"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..45).map(account_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(fx.emulator.accounts(), expected);
    let first = &accounts[0];
    assert_eq!(first["Name"], "management");
    assert_eq!(
        first["Arn"],
        "arn:aws:organizations::111111111111:account/o-emulator/111111111111"
    );
    assert_eq!(first["Email"], "account-111111111111@example.com");
    assert!(first["JoinedTimestamp"].is_number());
    assert_eq!(accounts[3]["Name"], "member-03");
    assert_eq!(accounts[7]["Status"], "SUSPENDED");
    assert_eq!(
        accounts.iter().filter(|a| a["Status"] == "ACTIVE").count(),
        44
    );
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "Arn",
            "Email",
            "Id",
            "JoinedMethod",
            "JoinedTimestamp",
            "Name",
            "State",
            "Status"
        ]
    );

    // Smaller pages, same order.
    let (_, _, page) = fx
        .list_accounts(&Creds::home(), json!({"MaxResults": 7}))
        .await;
    assert_eq!(page["Accounts"].as_array().unwrap().len(), 7);
    assert_eq!(page["Accounts"][6]["Id"], "100000000006");

    // Refusals.
    for (body, reason) in [
        (json!({"MaxResults": 21}), "MAX_VALUE_EXCEEDED"),
        (json!({"MaxResults": 0}), "MIN_VALUE_EXCEEDED"),
        (json!({"NextToken": "bm9wZQ"}), "INVALID_NEXT_TOKEN"),
    ] {
        let (status, _, error) = fx.list_accounts(&Creds::home(), body).await;
        assert_eq!(status, 400);
        assert_eq!(error["__type"], "InvalidInputException");
        assert_eq!(error["Reason"], reason);
        assert!(error["Message"].as_str().unwrap().len() > 10);
    }
    let (creds, _) = fx.assumed(READER, &[]).await;
    let (status, request_id, error) = fx.list_accounts(&creds, json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(request_id.len(), 36);
    assert_eq!(error["__type"], "AccessDeniedException");
    assert_eq!(
        error["Message"],
        "You don't have permissions to access this resource."
    );
    let (status, _, error) = fx
        .organizations(
            &Creds::home(),
            "AWSOrganizationsV20161128.DescribeOrganization",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    // The log records the operation and the caller.
    let last = fx.emulator.requests().pop().unwrap();
    assert_eq!(last.service.as_deref(), Some("organizations"));
    assert_eq!(last.account.as_deref(), Some(HOME_ACCOUNT));
    assert_eq!(last.action, "DescribeOrganization");
}

#[tokio::test]
async fn a_region_disabled_in_one_account_is_refused_there_only() {
    let fx = options_fixture(EmulatorOptions {
        accounts: 3,
        disabled_regions: [(MEMBER.to_owned(), ["eu-west-1".to_owned()].into())].into(),
        ..EmulatorOptions::default()
    })
    .await;
    let (creds, _) = fx.assumed(READER, &[]).await;
    let (status, code, message) = fx
        .ec2(
            &creds,
            "eu-west-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await
        .ec2_error();
    assert_eq!((status, code.as_str()), (401, "AuthFailure"));
    assert!(message.contains("'eu-west-1' is not enabled"), "{message}");
    let ok = fx
        .ec2(
            &Creds::home(),
            "eu-west-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await;
    assert_eq!(ok.status, 200);
    let regions = fx
        .ec2(&creds, "us-east-1", &[("Action", "DescribeRegions")])
        .await;
    assert_eq!(regions.status, 200);
    let info = regions.xml.child("regionInfo").unwrap();
    let eu = info
        .children
        .iter()
        .find(|i| i.text_of("regionName") == Some("eu-west-1"))
        .unwrap();
    assert_eq!(eu.text_of("optInStatus"), Some("not-opted-in"));
    assert_eq!(
        fx.emulator.enabled_regions(MEMBER),
        ["us-east-1", "us-west-2"]
    );

    // The hook enables it again; the state hook shows each account's regions.
    let (_, state) = fx.hook(&format!("/_emulator/state?account={MEMBER}")).await;
    assert_eq!(state["account"], MEMBER);
    assert_eq!(state["disabled_regions"], json!(["eu-west-1"]));
    assert!(state["regions"].get("eu-west-1").is_none());
    fx.config(json!({"accounts": {MEMBER: {"disabled_regions": []}}}))
        .await;
    let ok = fx
        .ec2(
            &creds,
            "eu-west-1",
            &[("Action", "DescribeStoreImageTasks")],
        )
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn throttling_is_counted_per_account_and_region_for_every_service() {
    let fx = org(3).await;
    let (creds, _) = fx.assumed(READER, &[]).await;
    fx.emulator
        .update_config(ConfigUpdate {
            throttle_rps: Some(Some(1.0)),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let describe = [("Action", "DescribeRegions")];
    assert_eq!(fx.ec2(&creds, "us-east-1", &describe).await.status, 200);
    let (status, code, _) = fx.ec2(&creds, "us-east-1", &describe).await.ec2_error();
    assert_eq!((status, code.as_str()), (503, "RequestLimitExceeded"));
    // Another account, or another region, has its own bucket.
    assert_eq!(
        fx.ec2(&Creds::home(), "us-east-1", &describe).await.status,
        200
    );
    assert_eq!(fx.ec2(&creds, "us-west-2", &describe).await.status, 200);
    // STS and Organizations calls count in the same buckets.
    let (status, code, _) = fx
        .sts(&creds, &[("Action", "GetCallerIdentity")])
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (400, "Throttling"));
    let (status, _, body) = fx.list_accounts(&Creds::home(), json!({})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("TooManyRequestsException"))
    );

    fx.emulator
        .update_config(ConfigUpdate {
            throttle_rps: Some(None),
            fail_rate: Some(1.0),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let (status, code, _) = fx
        .sts(&creds, &[("Action", "GetCallerIdentity")])
        .await
        .sts_error();
    assert_eq!((status, code.as_str()), (500, "InternalFailure"));
    let (status, _, body) = fx.list_accounts(&Creds::home(), json!({})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (500, Some("ServiceException"))
    );
    fx.emulator
        .update_config(ConfigUpdate {
            fail_rate: Some(0.0),
            deny_actions: Some(vec!["AssumeRole".into(), "ListAccounts".into()]),
            ..ConfigUpdate::default()
        })
        .unwrap();
    let (status, code, _) = fx.assume(&Creds::home(), READER, &[]).await.sts_error();
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
    let (status, _, body) = fx.list_accounts(&Creds::home(), json!({})).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("AccessDeniedException"))
    );
}

#[tokio::test]
async fn injected_latency_delays_sts_and_organizations_too() {
    let fx = Fixture::start(EmulatorOptions {
        accounts: 2,
        tasks_per_region: 3,
        faults: Faults {
            latency_ms: 150,
            ..Faults::default()
        },
        ..EmulatorOptions::default()
    })
    .await;
    let started = std::time::Instant::now();
    fx.sts(&Creds::home(), &[("Action", "GetCallerIdentity")])
        .await
        .result();
    let (status, _, _) = fx.list_accounts(&Creds::home(), json!({})).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let log = fx.emulator.requests();
    assert!(log.iter().all(|r| r.finished_ms - r.started_ms >= 150));
}

#[tokio::test]
async fn the_home_accounts_data_does_not_depend_on_the_number_of_accounts() {
    let one = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorOptions {
            freeze_time: true,
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap();
    let many = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorOptions {
            freeze_time: true,
            accounts: 50,
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap();
    for region in one.regions() {
        let amis = |e: &Emulator, account: &str| -> Vec<(String, String)> {
            e.tasks_in(account, &region)
                .into_iter()
                .map(|t| (t.ami_id, t.bucket))
                .collect()
        };
        assert_eq!(amis(&one, HOME_ACCOUNT), amis(&many, HOME_ACCOUNT));
        assert_eq!(one.buckets(&region), many.buckets(&region));
        assert_eq!(one.storable_amis(&region), many.storable_amis(&region));
        assert_ne!(amis(&many, "100000000049"), amis(&many, "100000000048"));
        assert_eq!(many.tasks_in("100000000049", &region).len(), 250);
        assert!(one.tasks_in("100000000001", &region).is_empty());
    }
}

#[tokio::test]
async fn hooks_show_accounts_and_refuse_unknown_ones() {
    let fx = options_fixture(EmulatorOptions {
        accounts: 3,
        suspended_accounts: ["100000000001".to_owned()].into(),
        ..EmulatorOptions::default()
    })
    .await;
    let (status, state) = fx.hook("/_emulator/state").await;
    assert_eq!(status, 200);
    assert_eq!(state["account"], HOME_ACCOUNT);
    assert_eq!(
        state["accounts"],
        json!(["111111111111", "100000000001", "100000000002"])
    );
    let (_, member) = fx.hook(&format!("/_emulator/state?account={MEMBER}")).await;
    assert_eq!(
        member["regions"]["us-east-1"]["buckets"][0],
        "ami-archive-100000000002-us-east-1"
    );
    let (status, tasks) = fx
        .hook(&format!(
            "/_emulator/tasks?region=us-east-1&account={MEMBER}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(tasks.as_array().unwrap().len(), 30);
    assert_eq!(
        tasks[0]["amiId"].as_str(),
        Some(fx.emulator.tasks_in(MEMBER, "us-east-1")[0].ami_id.as_str())
    );
    let (_, accounts) = fx.hook("/_emulator/accounts").await;
    assert_eq!(accounts[1]["status"], "SUSPENDED");
    assert_eq!(accounts[2]["name"], "member-02");
    assert_eq!(accounts[0]["enabled_regions"].as_array().unwrap().len(), 3);
    for path in [
        "/_emulator/state?account=999999999999",
        "/_emulator/tasks?region=us-east-1&account=100000000003",
    ] {
        let (status, body) = fx.hook(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body["error"].as_str().unwrap().contains("is not one of"));
    }
    // The config hook refuses unknown accounts and bad rules, changing nothing.
    for bad in [
        json!({"accounts": {"999999999999": {"suspended": true}}}),
        json!({"unassumable_roles": ["not-an-arn"]}),
        json!({"credential_seconds": 0}),
    ] {
        let response = fx
            .http
            .post(fx.url("/_emulator/config"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    // External ids are never shown, only which roles require one.
    let effective = fx
        .config(json!({"role_external_ids": {READER: "secret-ext-id"}}))
        .await;
    assert_eq!(effective["roles_with_external_id"], json!([READER]));
    assert!(!effective.to_string().contains("secret-ext-id"));
    let effective = fx.config(json!({"suspended_accounts": []})).await;
    assert_eq!(effective["suspended_accounts"], json!([]));
}
