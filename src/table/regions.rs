//! Regions as the configuration, queries and INSERTs give them (what a region name looks
//! like is a rule of [`super::naming`]): the set of regions a query asks when it names none
//! ([`RegionSet`], parsed from `--regions`), the refusal of a region
//! predicate naming something that is not one (with the nearest name when it looks like a
//! typo), and the wording for a region the account has not enabled, which AWS answers
//! with `AuthFailure` as if the credentials were wrong.

use std::collections::BTreeSet;

use datafusion::common::utils::datafusion_strsim::levenshtein;
use datafusion::common::DataFusionError;

use super::error::TableError;
use super::naming::is_region_name;
use crate::ec2::{AwsError, AwsErrorKind, Ec2Clients};

/// The regions a query asks when its `WHERE` names none: the server's `--regions`
/// (`default`, `all` or a comma list, see [`FromStr`](std::str::FromStr)), also named
/// `server::Regions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegionSet {
    /// The region of the AWS environment or profile, else `us-east-1`.
    #[default]
    Default,
    /// Every region enabled for the account (`DescribeRegions`, looked up once).
    All,
    /// These regions.
    List(Vec<String>),
}

impl std::str::FromStr for RegionSet {
    type Err = String;

    /// `all` (any case), or a comma-separated list of region names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(RegionSet::All);
        }
        let list: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if list.is_empty() {
            return Err("expected a comma-separated list of regions, or `all`".into());
        }
        if let Some(bad) = list.iter().find(|r| !is_region_name(r)) {
            return Err(format!(
                "`{bad}` is not a region name (expected something like us-east-1)"
            ));
        }
        Ok(RegionSet::List(list))
    }
}

/// The words for a region the account has not enabled, the same for INSERT and SELECT.
pub(crate) fn not_enabled(region: &str, enabled: &[String]) -> String {
    format!(
        "region `{region}` is not enabled for this account (enabled: {})",
        enabled.join(", ")
    )
}

/// The words for an INSERT row whose region is not a region name, with the name it
/// probably meant among `known` (the enabled regions).
pub(crate) fn not_a_region_name(value: &str, known: &[String]) -> String {
    let known: BTreeSet<String> = known.iter().cloned().collect();
    let hint = nearest(value, &known)
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default();
    format!(
        "region `{}`{hint} is not an AWS region name: regions are named like us-east-1 or \
         eu-west-2",
        shown(value)
    )
}

/// The most values an error names; a longer IN list is counted.
const MAX_NAMED: usize = 5;
/// The most characters of one value an error shows.
const MAX_VALUE_CHARS: usize = 64;

/// Refuses region predicate values that are not region names. `configured` says which
/// regions the server asks when a query names none; `known` are region names a typo may
/// have meant (the configured and enabled regions).
pub(crate) fn check_named(
    named: &BTreeSet<String>,
    configured: &str,
    known: &BTreeSet<String>,
) -> Result<(), String> {
    let bad: Vec<&String> = named.iter().filter(|v| !is_region_name(v)).collect();
    if bad.is_empty() {
        return Ok(());
    }
    let mut listed: Vec<String> = bad
        .iter()
        .take(MAX_NAMED)
        .map(|value| {
            let shown = shown(value);
            match nearest(value, known) {
                Some(name) => format!("`{shown}` (did you mean `{name}`?)"),
                None => format!("`{shown}`"),
            }
        })
        .collect();
    if bad.len() > MAX_NAMED {
        listed.push(format!("{} more", bad.len() - MAX_NAMED));
    }
    let (list, verb) = match bad.len() {
        1 => (listed.join(""), "is not an AWS region name"),
        _ => (listed.join(", "), "are not AWS region names"),
    };
    Err(format!(
        "{list} {verb}: a region predicate (region = ... or region IN (...)) takes names \
         like us-east-1 or eu-west-2. Without one this server asks {configured}"
    ))
}

/// A value as an error shows it: printable and short.
fn shown(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(MAX_VALUE_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if value.chars().count() > MAX_VALUE_CHARS {
        text.push_str("...");
    }
    text
}

/// The region name `value` probably meant: the value written the way region names are
/// written (lowercase, hyphens, `us-east1` -> `us-east-1`) when that is a region name, else
/// the closest of `known` within a few typed characters.
fn nearest(value: &str, known: &BTreeSet<String>) -> Option<String> {
    let lower: String = value
        .trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    // A number run straight after a letter: `us-east1`.
    let mut repaired = String::with_capacity(lower.len() + 1);
    let mut previous = None;
    for c in lower.chars() {
        if c.is_ascii_digit() && previous.is_some_and(|p: char| p.is_ascii_lowercase()) {
            repaired.push('-');
        }
        repaired.push(c);
        previous = Some(c);
    }
    if is_region_name(&repaired) {
        return Some(repaired);
    }
    known
        .iter()
        .map(|name| (levenshtein(&lower, name), name))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, name)| name.clone())
}

/// A failed call of a scan, as the query reports it. AWS answers a call to a region the
/// account has not enabled with `AuthFailure` (or `OptInRequired`), the same codes as for
/// bad credentials; when DescribeRegions does not list the region, the region is what is
/// wrong, and the error says so instead of giving credential advice. When DescribeRegions
/// is refused as `UnauthorizedOperation`, AWS accepted the credentials there, so the
/// region is still what is wrong. AWS's code, message and request id stay in the error
/// either way; credential advice stays only where the credentials may be at fault.
pub(crate) async fn explain_failure(clients: &Ec2Clients, err: AwsError) -> DataFusionError {
    if err.kind == AwsErrorKind::Credentials {
        let enabled = match clients.enabled_regions().await {
            Ok(enabled) if !enabled.contains(&err.region) => Some(Ok(enabled)),
            Err(lookup)
                if lookup.kind == AwsErrorKind::PermissionDenied && lookup.region != err.region =>
            {
                Some(Err(Box::new(lookup)))
            }
            _ => None,
        };
        if let Some(enabled) = enabled {
            return DataFusionError::External(Box::new(TableError::RegionNotEnabled {
                enabled,
                cause: err,
            }));
        }
    }
    DataFusionError::External(Box::new(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn region_sets_parse() {
        assert_eq!("all".parse::<RegionSet>(), Ok(RegionSet::All));
        assert_eq!(" ALL ".parse::<RegionSet>(), Ok(RegionSet::All));
        assert_eq!(
            "us-east-1, eu-west-1".parse::<RegionSet>(),
            Ok(RegionSet::List(vec![
                "us-east-1".into(),
                "eu-west-1".into()
            ]))
        );
        assert!("us-gov-west-1".parse::<RegionSet>().is_ok());
        assert!("".parse::<RegionSet>().is_err());
        let err = "us-east-1,Mars".parse::<RegionSet>().unwrap_err();
        assert_eq!(
            err,
            "`Mars` is not a region name (expected something like us-east-1)"
        );
    }

    #[test]
    fn typos_get_the_nearest_region_name() {
        let known = set(&["eu-west-1", "us-east-1", "us-west-2"]);
        assert_eq!(nearest("us-east1", &known).as_deref(), Some("us-east-1"));
        assert_eq!(nearest("US-EAST-1", &known).as_deref(), Some("us-east-1"));
        assert_eq!(nearest("EU-WEST-2", &known).as_deref(), Some("eu-west-2"));
        assert_eq!(
            nearest("ca_central_1", &known).as_deref(),
            Some("ca-central-1")
        );
        assert_eq!(nearest("useast1", &known).as_deref(), Some("us-east-1"));
        assert_eq!(nearest("euwest1", &known).as_deref(), Some("eu-west-1"));
        assert_eq!(nearest("eu-wst-1x", &known).as_deref(), Some("eu-west-1"));
        assert_eq!(nearest("' OR '1'='1", &known), None);
    }

    #[test]
    fn names_that_are_not_regions_are_refused_with_the_configured_ones() {
        let known = set(&["us-east-1"]);
        assert!(check_named(&set(&["ca-central-1"]), "us-east-1", &known).is_ok());
        let err = check_named(&set(&["us-east1", "us-east-1"]), "us-east-1", &known).unwrap_err();
        assert_eq!(
            err,
            "`us-east1` (did you mean `us-east-1`?) is not an AWS region name: a region \
             predicate (region = ... or region IN (...)) takes names like us-east-1 or \
             eu-west-2. Without one this server asks us-east-1"
        );
        let many: BTreeSet<String> = (0..8).map(|i| format!("x{i}")).collect();
        let err = check_named(&many, "us-east-1", &known).unwrap_err();
        assert!(
            err.starts_with("`x0`, `x1`, `x2`, `x3`, `x4`, 3 more are not"),
            "{err}"
        );
        let long = "a".repeat(1000);
        let err = check_named(&set(&[&long]), "us-east-1", &known).unwrap_err();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn an_insert_region_that_is_no_region_name_is_told_the_nearest() {
        let enabled = vec!["eu-west-1".to_owned(), "us-east-1".to_owned()];
        let message = not_a_region_name("us-east1", &enabled);
        assert!(
            message.starts_with("region `us-east1` (did you mean `us-east-1`?) is not an AWS"),
            "{message}"
        );
        let message = not_a_region_name("Frankfurt", &enabled);
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn not_enabled_wording() {
        assert_eq!(
            not_enabled("ap-south-1", &["eu-west-1".into(), "us-east-1".into()]),
            "region `ap-south-1` is not enabled for this account (enabled: eu-west-1, us-east-1)"
        );
    }
}
