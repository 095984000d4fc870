//! The table layer's error type: refused writes and what an INSERT did when AWS refused
//! some of its rows. Carried through DataFusion as `DataFusionError::External`.

use std::collections::BTreeMap;
use std::fmt;

use crate::ec2::{AwsError, AwsErrorKind};

/// A row an INSERT created (or, in a dry run, would have created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRow {
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The AMI.
    pub ami_id: String,
    /// The bucket the task writes to.
    pub bucket: String,
    /// The object key the task writes.
    pub object_key: String,
}

/// A row AWS refused.
#[derive(Debug, Clone)]
pub struct RefusedRow {
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The AMI.
    pub ami_id: String,
    /// The bucket it was to write to.
    pub bucket: String,
    /// Why.
    pub error: AwsError,
}

/// A row an INSERT did not send: the server stopped creates (its shutdown grace ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSentRow {
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The AMI.
    pub ami_id: String,
    /// The bucket it was to write to.
    pub bucket: String,
}

/// Errors of the `store_image_tasks` table.
#[derive(Debug, Clone)]
pub enum TableError {
    /// The server runs `--read-only`: nothing was sent to AWS.
    ReadOnly,
    /// The statement is not one the table can run (bad values, read-only columns,
    /// UPDATE/DELETE): nothing was sent to AWS.
    Invalid(String),
    /// AWS refused a scan's call to a region the account has not enabled (it answers
    /// `AuthFailure` there, as for bad credentials): the query fails, naming the enabled
    /// regions.
    RegionNotEnabled {
        /// The regions enabled for the account (DescribeRegions), or why they could not be
        /// listed although AWS accepted the credentials (`UnauthorizedOperation`).
        enabled: Result<Vec<String>, Box<AwsError>>,
        /// AWS's answer: region, code, message and request id.
        cause: AwsError,
    },
    /// AWS refused some rows of an INSERT; every row is accounted for.
    InsertFailed {
        /// Rows created before or alongside the refusals.
        created: Vec<CreatedRow>,
        /// Rows AWS refused.
        refused: Vec<RefusedRow>,
        /// Rows whose create failed ambiguously and whose AMI has an in-progress task that
        /// another statement of this server claimed: created by this or that statement.
        unconfirmed: Vec<CreatedRow>,
        /// Rows not sent: the server stopped creates while shutting down.
        not_sent: Vec<NotSentRow>,
        /// True when this was a dry run (nothing was created).
        dry_run: bool,
        /// The id of the whole report, kept on the server (`insert_report('<id>')`).
        report_id: Option<String>,
    },
    /// An awaiting INSERT (`/*+ AWAIT */`) created every row but stopped waiting before
    /// every task ended: timed out, polling failed, or the server is shutting down.
    Await(super::insert::AwaitError),
}

/// One row of a failed INSERT's report, as the log and `insert_report(id)` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow<'a> {
    /// The account.
    pub account: &'a str,
    /// The region.
    pub region: &'a str,
    /// The AMI.
    pub ami_id: &'a str,
    /// The bucket given for it.
    pub bucket: &'a str,
    /// `created`, `would_create` (dry run), `refused`, `unconfirmed` (created by this or a
    /// concurrent statement) or `not_sent`.
    pub outcome: &'static str,
    /// The object key of a task that exists.
    pub object_key: Option<&'a str>,
    /// AWS's error code of a refused row.
    pub error_code: Option<&'a str>,
    /// AWS's message of a refused row.
    pub error_message: Option<&'a str>,
    /// AWS's request id of a refused row.
    pub request_id: Option<&'a str>,
}

impl TableError {
    /// The AWS error behind a failed INSERT (the first refusal), if any.
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            TableError::InsertFailed { refused, .. } => refused.first().map(|r| r.error.kind),
            _ => None,
        }
    }

    /// Every row of a failed INSERT's report, in the order created, refused, unconfirmed,
    /// not sent (none for other errors).
    pub fn report_rows(&self) -> Vec<ReportRow<'_>> {
        let TableError::InsertFailed {
            created,
            refused,
            unconfirmed,
            not_sent,
            dry_run,
            ..
        } = self
        else {
            return Vec::new();
        };
        let made = if *dry_run { "would_create" } else { "created" };
        let mut rows = Vec::new();
        for c in created {
            rows.push(ReportRow {
                object_key: Some(&c.object_key),
                ..row(&c.account, &c.region, &c.ami_id, &c.bucket, made)
            });
        }
        for r in refused {
            rows.push(ReportRow {
                error_code: Some(r.error.code.as_deref().unwrap_or("error")),
                error_message: Some(&r.error.message),
                request_id: r.error.request_id.as_deref(),
                ..row(&r.account, &r.region, &r.ami_id, &r.bucket, "refused")
            });
        }
        for c in unconfirmed {
            rows.push(ReportRow {
                object_key: Some(&c.object_key),
                ..row(&c.account, &c.region, &c.ami_id, &c.bucket, "unconfirmed")
            });
        }
        for n in not_sent {
            rows.push(row(&n.account, &n.region, &n.ami_id, &n.bucket, "not_sent"));
        }
        rows
    }
}

/// A report row with only its account, region, AMI, bucket and outcome.
fn row<'a>(
    account: &'a str,
    region: &'a str,
    ami_id: &'a str,
    bucket: &'a str,
    outcome: &'static str,
) -> ReportRow<'a> {
    ReportRow {
        account,
        region,
        ami_id,
        bucket,
        outcome,
        object_key: None,
        error_code: None,
        error_message: None,
        request_id: None,
    }
}

/// The AMIs of `rows` (account, region, AMI) per place, in order: the region, or the
/// account and the region when the statement's rows are in `several` accounts.
fn by_region<'a>(
    rows: impl Iterator<Item = (&'a String, &'a String, &'a String)>,
    several: bool,
) -> BTreeMap<String, Vec<&'a str>> {
    let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (account, region, ami) in rows {
        map.entry(place(account, region, several))
            .or_default()
            .push(ami);
    }
    map
}

/// Where a row is, as a report names it: `us-east-1`, or `account 100000000001
/// us-east-1` when the statement's rows are in `several` accounts.
fn place(account: &str, region: &str, several: bool) -> String {
    if several {
        format!("account {account} {region}")
    } else {
        region.to_owned()
    }
}

impl TableError {
    /// The first line of a failed INSERT's report: every row counted.
    fn headline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TableError::InsertFailed {
            created,
            refused,
            unconfirmed,
            not_sent,
            dry_run,
            ..
        } = self
        else {
            return Ok(());
        };
        let total = created.len() + refused.len() + unconfirmed.len() + not_sent.len();
        if *dry_run {
            // Never to be read as a write: the first words say nothing was created.
            write!(
                f,
                "dry run of INSERT failed, nothing was created: AWS would refuse {} of {total} \
                 rows, {} would be created",
                refused.len(),
                created.len()
            )?;
            if !not_sent.is_empty() {
                write!(
                    f,
                    ", {} not checked (the server was shutting down)",
                    not_sent.len()
                )?;
            }
            return write!(f, " (aws.dry_run is on).");
        }
        write!(
            f,
            "INSERT failed: AWS refused {} of {total} rows, {} created",
            refused.len(),
            created.len()
        )?;
        if !unconfirmed.is_empty() {
            write!(
                f,
                ", {} created by this or a concurrent statement (not counted)",
                unconfirmed.len()
            )?;
        }
        if !not_sent.is_empty() {
            write!(
                f,
                ", {} not sent: the server was shutting down and its grace period ended (no \
                 task was created for them; INSERT them again)",
                not_sent.len()
            )?;
        }
        write!(f, ".")
    }

    /// A failed INSERT's report with every row on a line of its own, request ids included,
    /// for the log.
    pub fn detailed(&self) -> String {
        let mut text = String::new();
        {
            use std::fmt::Write;
            struct Headline<'a>(&'a TableError);
            impl fmt::Display for Headline<'_> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.headline(f)
                }
            }
            let _ = write!(text, "{}", Headline(self));
            for r in self.report_rows() {
                let _ = write!(
                    text,
                    "\n{}: {} {} (account {})",
                    r.outcome, r.region, r.ami_id, r.account
                );
                if let Some(key) = r.object_key {
                    let _ = write!(text, " -> {key}");
                }
                if let (Some(code), Some(message)) = (r.error_code, r.error_message) {
                    let _ = write!(text, ": {code}: {message}");
                }
                if let Some(id) = r.request_id {
                    let _ = write!(text, " (request id {id})");
                }
            }
        }
        text
    }
}

impl std::error::Error for TableError {}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::ReadOnly => write!(
                f,
                "this server is read-only (--read-only): INSERT is refused and nothing was sent \
                 to AWS"
            ),
            TableError::Invalid(message) => write!(f, "{message}"),
            TableError::Await(error) => write!(f, "{error}"),
            TableError::RegionNotEnabled {
                enabled: Ok(enabled),
                cause,
            } => write!(
                f,
                "{}: enable the region for the account or leave it out of the query. AWS \
                 answered: {}",
                super::regions::not_enabled(&cause.region, enabled),
                cause.summary()
            ),
            TableError::RegionNotEnabled {
                enabled: Err(lookup),
                cause,
            } => write!(
                f,
                "region `{}` refused the server's credentials, which AWS accepts in {}: the \
                 region is most likely not enabled for this account (the server may not list \
                 the enabled regions: {}). Enable the region or leave it out of the query. \
                 AWS answered: {}",
                cause.region,
                lookup.region,
                lookup.summary(),
                cause.summary()
            ),
            TableError::InsertFailed {
                created,
                refused,
                unconfirmed,
                not_sent,
                dry_run,
                report_id,
            } => {
                self.headline(f)?;
                if let Some(id) = report_id {
                    write!(
                        f,
                        "\nthe whole report, a row per row: SELECT * FROM insert_report('{id}') \
                         (on this server, for an hour)"
                    )?;
                }
                // Compact, grouped and created rows first: gRPC clients cap an error's
                // size (the message is cut at 4 KB), and the rows that exist are the ones
                // a retry must not repeat. The log has every row on a line of its own.
                let verb = if *dry_run {
                    "would be created"
                } else {
                    "created"
                };
                // Rows in more than one account name the account of each group.
                let accounts: std::collections::BTreeSet<&str> = created
                    .iter()
                    .chain(unconfirmed)
                    .map(|c| c.account.as_str())
                    .chain(refused.iter().map(|r| r.account.as_str()))
                    .chain(not_sent.iter().map(|n| n.account.as_str()))
                    .collect();
                let several = accounts.len() > 1;
                let other_keys: Vec<String> = created
                    .iter()
                    .filter(|c| c.object_key != format!("{}.bin", c.ami_id))
                    .map(|c| format!("{} -> {}", c.ami_id, c.object_key))
                    .collect();
                for (region, amis) in by_region(
                    created.iter().map(|c| (&c.account, &c.region, &c.ami_id)),
                    several,
                ) {
                    write!(f, "\n{verb} in {region}: {}", amis.join(" "))?;
                }
                if !other_keys.is_empty() {
                    write!(
                        f,
                        "\nobject keys other than <amiId>.bin: {}",
                        other_keys.join(", ")
                    )?;
                }
                let mut groups: BTreeMap<(String, &str, &str), Vec<&RefusedRow>> = BTreeMap::new();
                for r in refused {
                    let code = r.error.code.as_deref().unwrap_or("error");
                    groups
                        .entry((
                            place(&r.account, &r.region, several),
                            code,
                            &r.error.message,
                        ))
                        .or_default()
                        .push(r);
                }
                for ((region, code, message), rows) in groups {
                    write!(f, "\nrefused in {region}, {code}: {message}")?;
                    if let Some(id) = rows.iter().find_map(|r| r.error.request_id.as_deref()) {
                        write!(f, " (request id {id})")?;
                    }
                    let amis: Vec<&str> = rows.iter().map(|r| r.ami_id.as_str()).collect();
                    write!(f, ": {}", amis.join(" "))?;
                }
                for (region, amis) in by_region(
                    unconfirmed
                        .iter()
                        .map(|c| (&c.account, &c.region, &c.ami_id)),
                    several,
                ) {
                    write!(
                        f,
                        "\ncreated by this or a concurrent statement (the create failed \
                         ambiguously and another statement claimed the AMI's task) in \
                         {region}: {}",
                        amis.join(" ")
                    )?;
                }
                for (region, amis) in by_region(
                    not_sent.iter().map(|n| (&n.account, &n.region, &n.ami_id)),
                    several,
                ) {
                    write!(f, "\nnot sent in {region}: {}", amis.join(" "))?;
                }
                Ok(())
            }
        }
    }
}
