//! Named arguments of the server's table functions. DataFusion 55 passes a table function
//! only the values of its arguments, by position, and refuses `name => value` in `FROM`; so
//! before planning, the arguments of `watch_store_image_tasks(...)` are put in the order of
//! its parameters ([`WATCH_PARAMETERS`]), NULL for one left out. Both spellings then work:
//! `watch_store_image_tasks(timeout => '10 minutes', interval => '2 seconds')` and
//! `watch_store_image_tasks('2 seconds', 'done', '10 minutes')`, positional ones first.
//! Parameter names match in any case; `=>`, `:=` and `=` are accepted. A qualified name
//! (`aws.ec2.watch_store_image_tasks`) is called by its own name, as DataFusion looks table
//! functions up by their bare name.

use std::ops::ControlFlow;

use datafusion::common::{DataFusionError, Result};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, TableFactor, Value,
};

use super::rewrite::{walk, Rewrite};

use crate::table::{WATCH_FUNCTION, WATCH_PARAMETERS};

/// Rewrites the arguments of every call of a table function with named parameters in
/// `statement`, in place; a wrong argument is an error that says what the function takes.
pub(super) fn name_arguments(statement: &mut Statement) -> Result<()> {
    let inner = match statement {
        Statement::Statement(inner) => inner,
        Statement::Explain(explain) => return name_arguments(&mut explain.statement),
        _ => return Ok(()),
    };
    match walk(inner, &mut Arguments) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(message) => Err(DataFusionError::Plan(message)),
    }
}

struct Arguments;

impl Rewrite for Arguments {
    fn table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<String> {
        let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let Some(ObjectNamePart::Identifier(last)) = name.0.last() else {
            return ControlFlow::Continue(());
        };
        let matches = match last.quote_style {
            None => last.value.eq_ignore_ascii_case(WATCH_FUNCTION),
            Some(_) => last.value == WATCH_FUNCTION,
        };
        if !matches {
            return ControlFlow::Continue(());
        }
        *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(WATCH_FUNCTION))]);
        match in_order(std::mem::take(&mut args.args)) {
            Ok(ordered) => {
                args.args = ordered;
                ControlFlow::Continue(())
            }
            Err(message) => ControlFlow::Break(message),
        }
    }
}

/// `args` in parameter order, NULL for a parameter left out before one given.
fn in_order(args: Vec<FunctionArg>) -> Result<Vec<FunctionArg>, String> {
    let usage = format!(
        "{WATCH_FUNCTION} takes {}, by name (interval => '5 seconds') or by position in that \
         order, every one optional",
        WATCH_PARAMETERS.join(", ")
    );
    let mut slots: Vec<Option<FunctionArgExpr>> = vec![None; WATCH_PARAMETERS.len()];
    let mut position = 0;
    let mut named = false;
    for arg in args {
        let (name, value) = match arg {
            FunctionArg::Unnamed(value) => (None, value),
            FunctionArg::Named { name, arg, .. } => (Some(name.value), arg),
            FunctionArg::ExprNamed {
                name: Expr::Identifier(name),
                arg,
                ..
            } => (Some(name.value), arg),
            FunctionArg::ExprNamed { name, .. } => {
                return Err(format!("`{name}` is not a parameter name: {usage}"))
            }
        };
        let slot = match name {
            None if named => {
                return Err(format!(
                    "a positional argument follows a named one: {usage}"
                ))
            }
            None => {
                position += 1;
                if position > WATCH_PARAMETERS.len() {
                    return Err(format!("too many arguments: {usage}"));
                }
                position - 1
            }
            Some(name) => {
                named = true;
                let Some(slot) = WATCH_PARAMETERS
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case(&name))
                else {
                    return Err(format!("no parameter `{name}`: {usage}"));
                };
                slot
            }
        };
        if slots[slot].is_some() {
            return Err(format!(
                "{} is given twice: {usage}",
                WATCH_PARAMETERS[slot]
            ));
        }
        slots[slot] = Some(value);
    }
    while slots.last().is_some_and(Option::is_none) {
        slots.pop();
    }
    Ok(slots
        .into_iter()
        .map(|slot| {
            FunctionArg::Unnamed(
                slot.unwrap_or_else(|| FunctionArgExpr::Expr(Expr::Value(Value::Null.into()))),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn rewritten(sql: &str) -> Result<String> {
        let state = SessionContext::new().state();
        let mut statement = state.sql_to_statement(sql, &Default::default())?;
        name_arguments(&mut statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn named_arguments_become_positional() {
        let out = rewritten(
            "SELECT * FROM watch_store_image_tasks(timeout => '1 hour', interval => '5 seconds')",
        )
        .unwrap();
        assert!(
            out.contains("watch_store_image_tasks('5 seconds', NULL, '1 hour')"),
            "{out}"
        );
        let out = rewritten(
            "SELECT * FROM aws.ec2.WATCH_STORE_IMAGE_TASKS('1s', UNTIL => 'timeout') WHERE 1 = 1",
        )
        .unwrap();
        assert!(
            out.contains("FROM watch_store_image_tasks('1s', 'timeout')"),
            "{out}"
        );
        let out =
            rewritten("EXPLAIN SELECT * FROM watch_store_image_tasks(until => 'done')").unwrap();
        assert!(
            out.contains("watch_store_image_tasks(NULL, 'done')"),
            "{out}"
        );
        let out = rewritten("SELECT * FROM watch_store_image_tasks()").unwrap();
        assert!(out.contains("watch_store_image_tasks()"), "{out}");
        // Other functions are left alone.
        let out = rewritten("SELECT * FROM insert_report('x')").unwrap();
        assert!(out.contains("insert_report('x')"), "{out}");
    }

    #[test]
    fn wrong_arguments_say_what_the_function_takes() {
        let e = rewritten("SELECT * FROM watch_store_image_tasks(every => '1s')")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no parameter `every`"), "{e}");
        assert!(e.contains("takes interval, until, timeout"), "{e}");
        let e = rewritten("SELECT * FROM watch_store_image_tasks(interval => '1s', 'done')")
            .unwrap_err()
            .to_string();
        assert!(e.contains("positional argument follows a named one"), "{e}");
        let e = rewritten("SELECT * FROM watch_store_image_tasks('1s', interval => '2s')")
            .unwrap_err()
            .to_string();
        assert!(e.contains("interval is given twice"), "{e}");
        let e = rewritten("SELECT * FROM watch_store_image_tasks('1s', 'done', '1h', 'x')")
            .unwrap_err()
            .to_string();
        assert!(e.contains("too many arguments"), "{e}");
    }
}
