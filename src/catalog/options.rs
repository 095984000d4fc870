//! Which session options a client may set (`SET`, the Flight SQL session options, and the
//! settings a ticket or prepared-statement handle carries), and within what range. Everything
//! a client sends passes through here before DataFusion sees it: DataFusion's own settings
//! include ones that let one statement take the server's memory or CPU
//! (`target_partitions = 10000`), its stack (`sql_parser.recursion_limit`) or its files, so
//! only an allow-list of harmless ones is open to clients, each bounded.

use datafusion::common::{DataFusionError, Result};

/// How one option may be set.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Any value DataFusion accepts.
    Any,
    /// An integer in this range (both ends included).
    Range(u64, u64),
}

/// The options clients may set, with their rule. Names are compared as DataFusion does
/// (case-insensitively).
const SETTABLE: &[(&str, Rule)] = &[
    ("aws.dry_run", Rule::Any),
    ("aws.cache", Rule::Any),
    ("aws.await", Rule::Any),
    ("aws.await_interval", Rule::Any),
    ("aws.await_timeout", Rule::Any),
    ("aws.on_account_error", Rule::Any),
    ("datafusion.execution.batch_size", Rule::Range(1, 65_536)),
    ("datafusion.execution.target_partitions", Rule::Range(1, 16)),
    ("datafusion.execution.time_zone", Rule::Any),
    ("datafusion.sql_parser.dialect", Rule::Any),
    (
        "datafusion.sql_parser.enable_ident_normalization",
        Rule::Any,
    ),
    ("datafusion.sql_parser.parse_float_as_decimal", Rule::Any),
    (
        "datafusion.sql_parser.recursion_limit",
        Rule::Range(1, 1_000),
    ),
    ("datafusion.explain.logical_plan_only", Rule::Any),
    ("datafusion.explain.physical_plan_only", Rule::Any),
    ("datafusion.explain.show_statistics", Rule::Any),
    ("datafusion.explain.show_sizes", Rule::Any),
    ("datafusion.explain.show_schema", Rule::Any),
    ("datafusion.explain.format", Rule::Any),
];

/// Option name prefixes whose every option clients may set: how results are displayed.
const SETTABLE_PREFIXES: &[&str] = &["datafusion.format."];

/// Checks that a client may give option `key` the value `value`; the error says what is
/// allowed. Only the exact names listed pass: DataFusion sets a scalar option for any
/// longer name under it (`target_partitions.x`), so a name must match, not just start alike.
pub fn check_client_option(key: &str, value: &str, known: impl Fn(&str) -> bool) -> Result<()> {
    let lower = key.to_ascii_lowercase();
    let rule = SETTABLE
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, rule)| *rule)
        .or_else(|| {
            SETTABLE_PREFIXES
                .iter()
                .any(|p| lower.starts_with(p))
                .then_some(Rule::Any)
        });
    match rule {
        Some(Rule::Any) => Ok(()),
        Some(Rule::Range(low, high)) => match value.trim().parse::<u64>() {
            Ok(n) if (low..=high).contains(&n) => Ok(()),
            Ok(n) => Err(DataFusionError::Configuration(format!(
                "{key} may be set between {low} and {high} on this server, not {n}"
            ))),
            // Not a number: DataFusion says why.
            Err(_) => Ok(()),
        },
        None if known(&lower) => Err(DataFusionError::Configuration(format!(
            "{key} cannot be set by clients of this server; settable options: {}",
            settable_list()
        ))),
        None => Err(DataFusionError::Configuration(format!(
            "unknown session option `{key}`; settable options: {}",
            settable_list()
        ))),
    }
}

/// The settable options, for error messages.
fn settable_list() -> String {
    let mut names: Vec<String> = SETTABLE
        .iter()
        .map(|(name, rule)| match rule {
            Rule::Any => (*name).to_owned(),
            Rule::Range(low, high) => format!("{name} ({low} to {high})"),
        })
        .collect();
    names.extend(SETTABLE_PREFIXES.iter().map(|p| format!("{p}*")));
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, value: &str) -> Result<()> {
        check_client_option(key, value, |k| {
            k.starts_with("datafusion.") || k.starts_with("aws.")
        })
    }

    #[test]
    fn allowed_options_within_their_range_pass() {
        check("aws.dry_run", "true").unwrap();
        check("datafusion.execution.batch_size", "1234").unwrap();
        check("DataFusion.Execution.Target_Partitions", "4").unwrap();
        check("datafusion.format.null", "NULL").unwrap();
        // Unparsable values are left to DataFusion's own messages.
        check("datafusion.execution.batch_size", "lots").unwrap();
    }

    #[test]
    fn out_of_range_and_closed_options_are_refused_with_what_is_allowed() {
        let err = check("datafusion.execution.target_partitions", "10000").unwrap_err();
        assert!(err.to_string().contains("between 1 and 16"), "{err}");
        let err = check("datafusion.sql_parser.recursion_limit", "100000").unwrap_err();
        assert!(err.to_string().contains("1000"), "{err}");
        let err = check("datafusion.runtime.memory_limit", "100G").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("cannot be set by clients"), "{message}");
        assert!(message.contains("aws.dry_run"), "{message}");
        check("datafusion.execution.batch_size", "0").unwrap_err();
        // Unknown names, and longer names under a closed or bounded option, which DataFusion
        // would apply to the option itself.
        let err = check("no.such_option", "x").unwrap_err();
        assert!(err.to_string().contains("unknown session option"), "{err}");
        check("datafusion.execution.target_partitions.x", "10000").unwrap_err();
        check("datafusion.execution.target_partitions.", "10000").unwrap_err();
        check("aws.dry_run.x", "true").unwrap_err();
    }
}
