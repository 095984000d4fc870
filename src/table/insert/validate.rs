//! Stage 2 of INSERT: every rule an INSERT must pass before its first create, as pure
//! functions returning the rows to create or the words of the refusal. One bad row
//! refuses the whole statement, and nothing is created:
//!
//! - no read-only column is given a value (AWS sets them); this refusal comes first;
//! - `account` is the server's own account (or empty or NULL, which means it): INSERT does
//!   not create tasks in the other accounts the server reads;
//! - `region` is a region name ([`is_region_name`]), of a region enabled for the account;
//!   an empty or NULL region is the server's default region;
//! - `amiId` is given and is an AMI id ([`check_ami_id`]);
//! - `bucket` is given and is an S3 bucket name ([`check_bucket`]);
//! - each (region, AMI) appears once: AWS stores an AMI once at a time;
//! - no task for one of the AMIs is already in progress ([`in_progress`], judged on what
//!   `DescribeStoreImageTasks` answered): AWS would refuse that row after others were
//!   created.
//!
//! Every problem of every row is listed (the first [`MAX_PROBLEMS_LISTED`], then a count).

use std::collections::HashSet;

use super::rows::Rows;
use crate::ec2::{is_account_id, StoreImageTask};
use crate::table::naming::{check_ami_id, check_bucket, is_region_name};
use crate::table::regions::{not_a_region_name, not_enabled};

/// How many problems one refusal lists.
const MAX_PROBLEMS_LISTED: usize = 20;

/// What the rules need to know about the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// The account of a row that gives none, the only one INSERT creates in.
    pub account: &'a str,
    /// The region of a row that gives none.
    pub default_region: &'a str,
    /// The regions enabled for the account.
    pub enabled_regions: &'a [String],
}

/// A row that passed every rule: one store task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidRow {
    /// The region, defaulted.
    pub region: String,
    /// The AMI to store.
    pub ami_id: String,
    /// The bucket to store it in.
    pub bucket: String,
}

/// The rows to create, in statement order, or the refusal naming every problem.
pub(crate) fn rows(given: &Rows, rules: Rules<'_>) -> Result<Vec<ValidRow>, String> {
    if !given.read_only_given.is_empty() {
        return Err(format!(
            "cannot INSERT into read-only column(s) {}: AWS sets them; give only account, \
             region, amiId and bucket",
            given.read_only_given.join(", ")
        ));
    }
    let mut problems = Vec::new();
    let mut valid = Vec::new();
    let mut seen = HashSet::new();
    for (index, row) in given.rows.iter().enumerate() {
        let region = row
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| rules.default_region.to_owned());
        let account = row
            .account
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| rules.account.to_owned());
        let mut row_problems = Vec::new();
        if !is_account_id(&account) {
            row_problems.push(format!(
                "account `{account}` is not an AWS account id (12 digits)"
            ));
        } else if account != rules.account {
            row_problems.push(format!(
                "account {account}: INSERT creates tasks in the server's own account ({}) \
                 only; leave account out or give {}",
                rules.account, rules.account
            ));
        }
        if !is_region_name(&region) {
            row_problems.push(not_a_region_name(&region, rules.enabled_regions));
        } else if !rules.enabled_regions.contains(&region) {
            row_problems.push(not_enabled(&region, rules.enabled_regions));
        }
        match &row.ami_id {
            None => row_problems.push("amiId (or ImageId) is required".to_owned()),
            Some(a) => row_problems.extend(check_ami_id(a).err()),
        }
        match &row.bucket {
            None => row_problems.push("bucket (or Bucket) is required".to_owned()),
            Some(b) => row_problems.extend(check_bucket(b).err()),
        }
        if let (Some(ami), true) = (&row.ami_id, row_problems.is_empty()) {
            if !seen.insert((region.clone(), ami.clone())) {
                row_problems.push(format!(
                    "{ami} appears more than once for region {region}; AWS stores an AMI once \
                     at a time"
                ));
            }
        }
        match (row_problems.is_empty(), &row.ami_id, &row.bucket) {
            (true, Some(ami_id), Some(bucket)) => valid.push(ValidRow {
                region,
                ami_id: ami_id.clone(),
                bucket: bucket.clone(),
            }),
            _ => problems.push(format!("row {}: {}", index + 1, row_problems.join("; "))),
        }
    }
    if problems.is_empty() {
        Ok(valid)
    } else {
        Err(refusal(problems))
    }
}

/// The problems with `tasks`, the tasks `DescribeStoreImageTasks` listed in `region` for
/// the AMIs of the statement: one per task in progress.
pub(crate) fn in_progress(region: &str, tasks: &[StoreImageTask]) -> Vec<String> {
    tasks
        .iter()
        .filter(|t| t.store_task_state.as_deref() == Some("InProgress"))
        .map(|t| {
            format!(
                "a store task for {} in {region} is already in progress (bucket {}, {}%); \
                 wait for it to finish",
                t.ami_id.as_deref().unwrap_or_default(),
                t.bucket.as_deref().unwrap_or_default(),
                t.progress_percentage.unwrap_or_default()
            )
        })
        .collect()
}

/// The refusal of a statement with `problems` (at least one).
pub(crate) fn refusal(problems: Vec<String>) -> String {
    let total = problems.len();
    let mut message = "INSERT rejected, nothing was created: ".to_owned();
    message.push_str(
        &problems
            .into_iter()
            .take(MAX_PROBLEMS_LISTED)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if total > MAX_PROBLEMS_LISTED {
        message.push_str(&format!("\n... and {} more", total - MAX_PROBLEMS_LISTED));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::super::rows::InsertRow;
    use super::*;

    const AMI: &str = "ami-0123456789abcdef0";

    fn enabled() -> Vec<String> {
        vec!["eu-west-1".to_owned(), "us-east-1".to_owned()]
    }

    fn check(rows: Vec<InsertRow>) -> Result<Vec<ValidRow>, String> {
        let enabled = enabled();
        let given = Rows {
            rows,
            read_only_given: Vec::new(),
        };
        super::rows(
            &given,
            Rules {
                account: "111111111111",
                default_region: "us-east-1",
                enabled_regions: &enabled,
            },
        )
    }

    fn row(region: Option<&str>, ami: Option<&str>, bucket: Option<&str>) -> InsertRow {
        InsertRow {
            account: None,
            region: region.map(str::to_owned),
            ami_id: ami.map(str::to_owned),
            bucket: bucket.map(str::to_owned),
        }
    }

    #[test]
    fn good_rows_pass_and_an_empty_region_is_the_default() {
        let valid = check(vec![
            row(None, Some(AMI), Some("my-bucket")),
            row(Some(""), Some("ami-12345678"), Some("my-bucket")),
            row(Some("eu-west-1"), Some(AMI), Some("other")),
        ])
        .unwrap();
        let regions: Vec<&str> = valid.iter().map(|v| v.region.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "us-east-1", "eu-west-1"]);
        assert_eq!(valid[2].bucket, "other");
    }

    #[test]
    fn read_only_columns_are_refused_first() {
        let enabled = enabled();
        let given = Rows {
            rows: vec![row(Some("Mars"), None, None)],
            read_only_given: vec!["progressPercentage", "s3objectKey"],
        };
        let err = rows(
            &given,
            Rules {
                account: "111111111111",
                default_region: "us-east-1",
                enabled_regions: &enabled,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            "cannot INSERT into read-only column(s) progressPercentage, s3objectKey: AWS sets \
             them; give only account, region, amiId and bucket"
        );
    }

    #[test]
    fn the_account_defaults_to_the_servers_and_another_is_refused() {
        let mut home = row(None, Some(AMI), Some("my-bucket"));
        home.account = Some("111111111111".into());
        let mut other = row(None, Some(AMI), Some("my-bucket"));
        other.account = Some("100000000001".into());
        let mut bad = row(None, Some("ami-12345678"), Some("my-bucket"));
        bad.account = Some("prod".into());
        let valid = check(vec![
            home.clone(),
            row(Some("eu-west-1"), Some(AMI), Some("b-b")),
        ])
        .unwrap();
        assert_eq!(valid.len(), 2);
        let err = check(vec![home, other, bad]).unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "INSERT rejected, nothing was created: row 2: account 100000000001: INSERT \
                 creates tasks in the server's own account (111111111111) only; leave account \
                 out or give 111111111111",
                "row 3: account `prod` is not an AWS account id (12 digits)",
            ]
        );
    }

    #[test]
    fn every_problem_of_every_row_is_listed() {
        let err = check(vec![
            row(None, Some(AMI), Some("ok-bucket")),
            row(Some("us-east1"), None, Some("Bad_Bucket")),
            row(Some("ap-south-1"), Some("ami-1"), None),
        ])
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(
            lines[0].starts_with(
                "INSERT rejected, nothing was created: row 2: region `us-east1` (did you mean \
                 `us-east-1`?) is not an AWS region name"
            ),
            "{err}"
        );
        assert!(lines[0].contains("; amiId (or ImageId) is required; `Bad_Bucket`"));
        assert!(lines[1].starts_with(
            "row 3: region `ap-south-1` is not enabled for this account (enabled: eu-west-1, \
             us-east-1); `ami-1` is not an AMI id"
        ));
        assert!(
            lines[1].ends_with("; bucket (or Bucket) is required"),
            "{err}"
        );
    }

    #[test]
    fn an_ami_twice_in_one_region_is_refused_once_per_repeat() {
        let err = check(vec![
            row(None, Some(AMI), Some("a-bucket")),
            row(Some("eu-west-1"), Some(AMI), Some("a-bucket")),
            row(Some("us-east-1"), Some(AMI), Some("b-bucket")),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "INSERT rejected, nothing was created: row 3: {AMI} appears more than once \
                 for region us-east-1; AWS stores an AMI once at a time"
            )
        );
    }

    #[test]
    fn a_refusal_lists_twenty_problems_then_counts() {
        let rows = (0..25).map(|_| row(None, None, Some("b-bucket"))).collect();
        let err = check(rows).unwrap_err();
        assert_eq!(err.lines().count(), 21, "{err}");
        assert!(err.ends_with("\n... and 5 more"), "{err}");
    }

    #[test]
    fn only_tasks_in_progress_are_problems() {
        let task = |state: &str| StoreImageTask {
            ami_id: Some(AMI.to_owned()),
            bucket: Some("b-bucket".to_owned()),
            progress_percentage: Some(40),
            s3_object_key: None,
            store_task_failure_reason: None,
            store_task_state: Some(state.to_owned()),
            task_start_time: None,
        };
        let problems = in_progress(
            "us-east-1",
            &[task("Completed"), task("InProgress"), task("Failed")],
        );
        assert_eq!(
            problems,
            [format!(
                "a store task for {AMI} in us-east-1 is already in progress (bucket b-bucket, \
                 40%); wait for it to finish"
            )]
        );
    }
}
