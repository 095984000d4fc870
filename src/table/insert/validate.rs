//! Stage 2 of INSERT: every rule an INSERT must pass before its first create, as pure
//! functions returning the rows to create or the words of the refusal. One bad row
//! refuses the whole statement, and nothing is created:
//!
//! - no read-only column is given a value (AWS sets them); this refusal comes first
//!   ([`read_only`]);
//! - `account` is an account id the server reaches (empty or NULL is the server's own),
//!   and that account could be readied: its role assumed and its enabled regions listed
//!   (`create::reach` asks AWS for the accounts [`accounts_named`] names, before any
//!   create); a problem of an account is listed once, with its rows;
//! - `region` is a region name ([`is_region_name`]), of a region enabled in the row's
//!   account; an empty or NULL region is the server's default region;
//! - `amiId` is given and is an AMI id ([`check_ami_id`]);
//! - `bucket` is given and is an S3 bucket name ([`check_bucket`]);
//! - each (account, region, AMI) appears once: AWS stores an AMI once at a time;
//! - no task for one of the AMIs is already in progress in the row's account and region
//!   ([`in_progress`], judged on what `DescribeStoreImageTasks` answered there): AWS would
//!   refuse that row after others were created.
//!
//! Every problem of every row is listed (the first [`MAX_PROBLEMS_LISTED`], then a count).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::rows::Rows;
use crate::ec2::{is_account_id, StoreImageTask};
use crate::table::accounts::check_named;
use crate::table::naming::{check_ami_id, check_bucket, is_region_name};
use crate::table::regions::{not_a_region_name, not_enabled};

/// How many problems one refusal lists.
const MAX_PROBLEMS_LISTED: usize = 20;
/// How many row numbers one problem of an account lists.
const MAX_ROWS_LISTED: usize = 10;

/// What an account the rows name turned out to be, before any create: the regions enabled
/// in it, or why it cannot be used (AWS's words: the account, the role, the code and the
/// request id).
pub(crate) type Reach = Result<Vec<String>, String>;

/// What the rules need to know about the server and the accounts the rows name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// The account of a row that gives none: the server's own.
    pub home: &'a str,
    /// The region of a row that gives none.
    pub default_region: &'a str,
    /// Every account the server reaches, its own first.
    pub reachable: &'a [String],
    /// What each reachable account the rows name turned out to be.
    pub accounts: &'a BTreeMap<String, Reach>,
}

/// A row that passed every rule: one store task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidRow {
    /// Its number in the statement (1-based).
    pub row: usize,
    /// The account, defaulted.
    pub account: String,
    /// The region, defaulted.
    pub region: String,
    /// The AMI to store.
    pub ami_id: String,
    /// The bucket to store it in.
    pub bucket: String,
}

/// Refuses a statement that gives a read-only column a value, before anything else.
pub(crate) fn read_only(given: &Rows) -> Result<(), String> {
    if given.read_only_given.is_empty() {
        return Ok(());
    }
    Err(format!(
        "cannot INSERT into read-only column(s) {}: AWS sets them; give only account, \
         region, amiId and bucket",
        given.read_only_given.join(", ")
    ))
}

/// The account of a row: the one it gives, else the server's own.
fn account_of(row: &super::rows::InsertRow, home: &str) -> String {
    row.account
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| home.to_owned())
}

/// The accounts the rows name that the server reaches (the rows' account, defaulted):
/// those whose role and regions must be looked up before the rows are judged.
pub(crate) fn accounts_named(given: &Rows, home: &str, reachable: &[String]) -> BTreeSet<String> {
    given
        .rows
        .iter()
        .map(|row| account_of(row, home))
        .filter(|a| reachable.contains(a))
        .collect()
}

/// The rows to create, in statement order, or the refusal naming every problem.
pub(crate) fn rows(given: &Rows, rules: Rules<'_>) -> Result<Vec<ValidRow>, String> {
    read_only(given)?;
    let mut problems = Vec::new();
    let mut valid = Vec::new();
    let mut seen = HashSet::new();
    // The rows of each account that is not reached or could not be readied.
    let mut unknown: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut failed: BTreeMap<String, (&str, Vec<usize>)> = BTreeMap::new();
    let several = given
        .rows
        .iter()
        .map(|row| account_of(row, rules.home))
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    for (index, row) in given.rows.iter().enumerate() {
        let number = index + 1;
        let region = row
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| rules.default_region.to_owned());
        let account = account_of(row, rules.home);
        let mut row_problems = Vec::new();
        let mut account_ok = false;
        let mut enabled: &[String] = &[];
        if !is_account_id(&account) {
            row_problems.push(format!(
                "account `{account}` is not an AWS account id (12 digits)"
            ));
        } else {
            match rules.accounts.get(&account) {
                _ if !rules.reachable.contains(&account) => {
                    unknown.entry(account.clone()).or_default().push(number)
                }
                Some(Ok(regions)) => {
                    account_ok = true;
                    enabled = regions;
                }
                Some(Err(why)) => failed
                    .entry(account.clone())
                    .or_insert((why, Vec::new()))
                    .1
                    .push(number),
                None => unknown.entry(account.clone()).or_default().push(number),
            }
        }
        if !is_region_name(&region) {
            row_problems.push(not_a_region_name(&region, enabled));
        } else if account_ok && !enabled.contains(&region) {
            row_problems.push(if account == rules.home {
                not_enabled(&region, enabled)
            } else {
                format!(
                    "region `{region}` is not enabled in account {account} (enabled: {})",
                    enabled.join(", ")
                )
            });
        }
        match &row.ami_id {
            None => row_problems.push("amiId (or ImageId) is required".to_owned()),
            Some(a) => row_problems.extend(check_ami_id(a).err()),
        }
        match &row.bucket {
            None => row_problems.push("bucket (or Bucket) is required".to_owned()),
            Some(b) => row_problems.extend(check_bucket(b).err()),
        }
        if let (Some(ami), true, true) = (&row.ami_id, row_problems.is_empty(), account_ok) {
            if !seen.insert((account.clone(), region.clone(), ami.clone())) {
                row_problems.push(if several {
                    format!(
                        "{ami} appears more than once for account {account} region {region}; \
                         AWS stores an AMI once at a time"
                    )
                } else {
                    format!(
                        "{ami} appears more than once for region {region}; AWS stores an AMI \
                         once at a time"
                    )
                });
            }
        }
        match (
            row_problems.is_empty(),
            account_ok,
            &row.ami_id,
            &row.bucket,
        ) {
            (true, true, Some(ami_id), Some(bucket)) => valid.push(ValidRow {
                row: number,
                account,
                region,
                ami_id: ami_id.clone(),
                bucket: bucket.clone(),
            }),
            (true, false, _, _) => {}
            _ => problems.push(format!("row {number}: {}", row_problems.join("; "))),
        }
    }
    // A problem of an account comes once, before the rows' own, naming its rows.
    let mut of_accounts = Vec::new();
    if !unknown.is_empty() {
        let named: BTreeSet<String> = unknown.keys().cloned().collect();
        let rows: Vec<String> = unknown
            .iter()
            .map(|(account, rows)| format!("{} (account {account})", row_list(rows)))
            .collect();
        let why = check_named(&named, rules.reachable)
            .err()
            .unwrap_or_else(|| "not an account this server reaches".to_owned());
        of_accounts.push(format!("{}: {why}", rows.join(", ")));
    }
    for (account, (why, rows)) in failed {
        of_accounts.push(format!(
            "{}: account {account} cannot be used: {why}",
            row_list(&rows)
        ));
    }
    of_accounts.extend(problems);
    if of_accounts.is_empty() {
        Ok(valid)
    } else {
        Err(refusal(of_accounts))
    }
}

/// `row 3` or `rows 3, 4, 9` (the first [`MAX_ROWS_LISTED`], then a count).
fn row_list(rows: &[usize]) -> String {
    let mut listed: Vec<String> = rows
        .iter()
        .take(MAX_ROWS_LISTED)
        .map(usize::to_string)
        .collect();
    if rows.len() > MAX_ROWS_LISTED {
        listed.push(format!("and {} more", rows.len() - MAX_ROWS_LISTED));
    }
    match rows.len() {
        1 => format!("row {}", listed[0]),
        _ => format!("rows {}", listed.join(", ")),
    }
}

/// The problems with `tasks`, the tasks `DescribeStoreImageTasks` listed in one account
/// and region for the AMIs of `rows` (the statement's rows there): one per row whose AMI
/// has a task in progress. The account is named when `named` (a statement in several
/// accounts).
pub(crate) fn in_progress(
    rows: &[&ValidRow],
    tasks: &[StoreImageTask],
    named: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows {
        let running = tasks.iter().find(|t| {
            t.store_task_state.as_deref() == Some("InProgress")
                && t.ami_id.as_deref() == Some(row.ami_id.as_str())
        });
        if let Some(t) = running {
            let place = if named {
                format!("account {} region {}", row.account, row.region)
            } else {
                row.region.clone()
            };
            problems.push(format!(
                "row {}: a store task for {} in {place} is already in progress (bucket {}, \
                 {}%); wait for it to finish",
                row.row,
                row.ami_id,
                t.bucket.as_deref().unwrap_or_default(),
                t.progress_percentage.unwrap_or_default()
            ));
        }
    }
    problems
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
    const HOME: &str = "111111111111";
    const MEMBER: &str = "100000000001";
    const DENIED: &str = "100000000002";

    fn enabled() -> Vec<String> {
        vec!["eu-west-1".to_owned(), "us-east-1".to_owned()]
    }

    fn reachable() -> Vec<String> {
        [HOME, MEMBER, DENIED].map(str::to_owned).to_vec()
    }

    fn accounts() -> BTreeMap<String, Reach> {
        BTreeMap::from([
            (HOME.to_owned(), Ok(enabled())),
            (MEMBER.to_owned(), Ok(vec!["us-east-1".to_owned()])),
            (
                DENIED.to_owned(),
                Err(
                    "AssumeRole of role arn:aws:iam::100000000002:role/r for account \
                     100000000002 failed: AccessDenied: no (request id r-1)"
                        .to_owned(),
                ),
            ),
        ])
    }

    fn check(rows: Vec<InsertRow>) -> Result<Vec<ValidRow>, String> {
        let given = Rows {
            rows,
            read_only_given: Vec::new(),
        };
        let (reachable, accounts) = (reachable(), accounts());
        super::rows(
            &given,
            Rules {
                home: HOME,
                default_region: "us-east-1",
                reachable: &reachable,
                accounts: &accounts,
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

    fn in_account(account: &str, region: Option<&str>, ami: &str) -> InsertRow {
        InsertRow {
            account: Some(account.to_owned()),
            ..row(region, Some(ami), Some("my-bucket"))
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
        assert_eq!(valid[2].row, 3);
        assert!(valid.iter().all(|v| v.account == HOME));
    }

    #[test]
    fn read_only_columns_are_refused_first() {
        let given = Rows {
            rows: vec![row(Some("Mars"), None, None)],
            read_only_given: vec!["progressPercentage", "s3objectKey"],
        };
        let (reachable, accounts) = (reachable(), accounts());
        let err = rows(
            &given,
            Rules {
                home: HOME,
                default_region: "us-east-1",
                reachable: &reachable,
                accounts: &accounts,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            "cannot INSERT into read-only column(s) progressPercentage, s3objectKey: AWS sets \
             them; give only account, region, amiId and bucket"
        );
        assert_eq!(read_only(&given).unwrap_err(), err);
    }

    #[test]
    fn each_row_goes_to_its_account_and_the_default_is_the_servers() {
        let mut home = row(None, Some(AMI), Some("my-bucket"));
        home.account = Some(HOME.into());
        let mut empty = row(Some("eu-west-1"), Some(AMI), Some("b-b"));
        empty.account = Some(String::new());
        // The same AMI id and region in two accounts are two stores.
        let valid = check(vec![home, empty, in_account(MEMBER, None, AMI)]).unwrap();
        let accounts: Vec<(&str, &str)> = valid
            .iter()
            .map(|v| (v.account.as_str(), v.region.as_str()))
            .collect();
        assert_eq!(
            accounts,
            [
                (HOME, "us-east-1"),
                (HOME, "eu-west-1"),
                (MEMBER, "us-east-1")
            ]
        );
        let given = Rows {
            rows: vec![
                row(None, Some(AMI), Some("b-b")),
                in_account(MEMBER, None, AMI),
                in_account("100000000009", None, AMI),
            ],
            read_only_given: Vec::new(),
        };
        let named: Vec<String> = accounts_named(&given, HOME, &reachable())
            .into_iter()
            .collect();
        assert_eq!(
            named,
            [MEMBER, HOME],
            "only reachable accounts are looked up"
        );
    }

    #[test]
    fn an_account_not_reached_or_not_usable_is_named_once_with_its_rows() {
        let err = check(vec![
            row(None, Some(AMI), Some("my-bucket")),
            in_account("100000000009", None, AMI),
            in_account(DENIED, None, AMI),
            in_account("100000000009", Some("eu-west-1"), "ami-12345678"),
            in_account(DENIED, Some("eu-west-1"), AMI),
            in_account("prod", None, "ami-12345678"),
            in_account(MEMBER, Some("eu-west-1"), AMI),
        ])
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "INSERT rejected, nothing was created: rows 2, 4 (account 100000000009): \
                 100000000009 is not an account this server reaches; it reaches 111111111111, \
                 100000000001, 100000000002 (its own account first; more are configured with \
                 [[accounts]] or discovered with org_member_role)",
                "rows 3, 5: account 100000000002 cannot be used: AssumeRole of role \
                 arn:aws:iam::100000000002:role/r for account 100000000002 failed: \
                 AccessDenied: no (request id r-1)",
                "row 6: account `prod` is not an AWS account id (12 digits)",
                "row 7: region `eu-west-1` is not enabled in account 100000000001 (enabled: \
                 us-east-1)",
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
    fn an_ami_twice_in_one_region_of_one_account_is_refused_once_per_repeat() {
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
        let err = check(vec![
            in_account(MEMBER, None, AMI),
            row(None, Some(AMI), Some("a-bucket")),
            in_account(MEMBER, Some("us-east-1"), AMI),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "INSERT rejected, nothing was created: row 3: {AMI} appears more than once \
                 for account {MEMBER} region us-east-1; AWS stores an AMI once at a time"
            )
        );
    }

    #[test]
    fn a_refusal_lists_twenty_problems_then_counts() {
        let rows = (0..25).map(|_| row(None, None, Some("b-bucket"))).collect();
        let err = check(rows).unwrap_err();
        assert_eq!(err.lines().count(), 21, "{err}");
        assert!(err.ends_with("\n... and 5 more"), "{err}");
        assert_eq!(
            row_list(&(1..=12).collect::<Vec<_>>()),
            "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, and 2 more"
        );
    }

    #[test]
    fn only_tasks_in_progress_are_problems_naming_the_row() {
        let task = |ami: &str, state: &str| StoreImageTask {
            ami_id: Some(ami.to_owned()),
            bucket: Some("b-bucket".to_owned()),
            progress_percentage: Some(40),
            s3_object_key: None,
            store_task_failure_reason: None,
            store_task_state: Some(state.to_owned()),
            task_start_time: None,
        };
        let valid = |row: usize, ami: &str| ValidRow {
            row,
            account: MEMBER.to_owned(),
            region: "us-east-1".to_owned(),
            ami_id: ami.to_owned(),
            bucket: "c-bucket".to_owned(),
        };
        let (first, second) = (valid(2, AMI), valid(5, "ami-12345678"));
        let tasks = [
            task(AMI, "Completed"),
            task(AMI, "InProgress"),
            task("ami-12345678", "Failed"),
        ];
        let problems = in_progress(&[&first, &second], &tasks, false);
        assert_eq!(
            problems,
            [format!(
                "row 2: a store task for {AMI} in us-east-1 is already in progress (bucket \
                 b-bucket, 40%); wait for it to finish"
            )]
        );
        let problems = in_progress(&[&first], &tasks, true);
        assert!(
            problems[0].contains(&format!("in account {MEMBER} region us-east-1 is already")),
            "{problems:?}"
        );
    }
}
