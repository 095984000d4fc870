//! One walk of the SQL syntax tree for every rewrite the catalog makes before planning.
//! sqlparser's `VisitMut::visit` is generic over the visitor, so each visitor type compiles
//! the whole walk of its syntax tree again, every node wrapped in DataFusion's stack-overflow
//! protection: with two visitor types the crate's unoptimised LLVM IR was 3.38 million lines,
//! with this one 3.23 million (`cargo llvm-lines --release --lib`), 4.4% less for the
//! release build to optimise. The rewrites ([`super::duplicates`], [`super::table_args`])
//! are therefore [`Rewrite`] hooks, called by the one visitor type here.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Query, Statement, TableFactor, VisitMut, VisitorMut};

/// What a rewrite does at the nodes it cares about; a `Break` stops the walk with a message
/// for the user.
pub(super) trait Rewrite {
    /// Called before the parts of each query (the statement's own and each nested one).
    fn query(&mut self, _query: &mut Query) -> ControlFlow<String> {
        ControlFlow::Continue(())
    }

    /// Called at each table factor of a `FROM` (a table, a table function, a subquery).
    fn table_factor(&mut self, _factor: &mut TableFactor) -> ControlFlow<String> {
        ControlFlow::Continue(())
    }
}

/// Walks `statement` once, calling `rewrite` at every node it has a hook for.
pub(super) fn walk(statement: &mut Statement, rewrite: &mut dyn Rewrite) -> ControlFlow<String> {
    statement.visit(&mut Walker(rewrite))
}

struct Walker<'a>(&'a mut dyn Rewrite);

impl VisitorMut for Walker<'_> {
    type Break = String;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<String> {
        self.0.query(query)
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<String> {
        self.0.table_factor(factor)
    }
}
