//! Account predicates: which accounts a query asks, and the words of a refused one. An
//! account the server does not reach is refused before any call, naming those it reaches:
//! an empty answer would pass for "no tasks there".

use std::collections::BTreeSet;

/// The most account ids an error lists.
const MAX_LISTED: usize = 20;

/// Refuses the accounts in `named` that are not in `reachable` (the home account first,
/// then the configured ones).
pub(crate) fn check_named(named: &BTreeSet<String>, reachable: &[String]) -> Result<(), String> {
    let unknown: Vec<&String> = named.iter().filter(|a| !reachable.contains(a)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let shown = |ids: &mut dyn Iterator<Item = &String>, total: usize| {
        let mut text: Vec<String> = ids.take(MAX_LISTED).map(|a| shown(a)).collect();
        if total > MAX_LISTED {
            text.push(format!("{} more", total - MAX_LISTED));
        }
        text.join(", ")
    };
    let (list, verb) = match unknown.len() {
        1 => (shown(&mut unknown.iter().copied(), 1), "is not an account"),
        n => (shown(&mut unknown.iter().copied(), n), "are not accounts"),
    };
    Err(format!(
        "{list} {verb} this server reaches; it reaches {} (its own account first; more are \
         configured with [[accounts]] or discovered with org_member_role)",
        shown(&mut reachable.iter(), reachable.len())
    ))
}

/// A value as an error shows it: printable and short.
fn shown(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    if value.chars().count() > 40 {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_account_not_reached_is_refused_naming_those_reached() {
        let reachable = vec!["111111111111".to_owned(), "100000000001".to_owned()];
        assert_eq!(check_named(&set(&["100000000001"]), &reachable), Ok(()));
        let err = check_named(&set(&["100000000009", "111111111111"]), &reachable).unwrap_err();
        assert!(
            err.starts_with(
                "100000000009 is not an account this server reaches; it reaches 111111111111, \
                 100000000001"
            ),
            "{err}"
        );
        let err = check_named(&set(&["x';--", "y"]), &reachable).unwrap_err();
        assert!(err.starts_with("x\\';--, y are not accounts"), "{err}");
    }
}
