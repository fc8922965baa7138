//! Raw SQL that diesel keeps prepared on each connection.
//!
//! `diesel::sql_query` marks its statement as never to be cached, so PostgreSQL parses and
//! plans its text again on every call. On the check-in path that planning was more than
//! half of the time of the two busiest statements (`benches/RESULTS.md`). A [`Prepared`]
//! statement is the same hand-written SQL as a query fragment of fixed text: diesel caches
//! it per connection, keyed by its text and bind types, and runs it as a prepared statement
//! from the second call on.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement of fixed text whose `{}` are its binds, in order. Loads `QueryableByName`
/// rows like `sql_query`, or executes.
pub struct Prepared<'a> {
    sql: &'static str,
    binds: Vec<Bind<'a>>,
}

/// The kinds of values these statements bind.
enum Bind<'a> {
    Ids(&'a [i64]),
    Time(DateTime<Utc>),
    Text(&'a str),
    Strs(&'a [&'a str]),
    OptionalStrs(&'a [Option<&'a str>]),
    Times(&'a [DateTime<Utc>]),
    Bools(&'a [bool]),
}

impl<'a> Prepared<'a> {
    pub fn new(sql: &'static str) -> Self {
        Self { sql, binds: Vec::new() }
    }

    /// Binds a `bigint[]`.
    pub fn ids(mut self, ids: &'a [i64]) -> Self {
        self.binds.push(Bind::Ids(ids));
        self
    }

    /// Binds a `timestamptz`.
    pub fn time(mut self, at: DateTime<Utc>) -> Self {
        self.binds.push(Bind::Time(at));
        self
    }

    /// Binds a `text`.
    pub fn text(mut self, text: &'a str) -> Self {
        self.binds.push(Bind::Text(text));
        self
    }

    /// Binds a `text[]`.
    pub fn strs(mut self, strs: &'a [&'a str]) -> Self {
        self.binds.push(Bind::Strs(strs));
        self
    }

    /// Binds a `text[]` whose elements may be `NULL`.
    pub fn optional_strs(mut self, strs: &'a [Option<&'a str>]) -> Self {
        self.binds.push(Bind::OptionalStrs(strs));
        self
    }

    /// Binds a `timestamptz[]`.
    pub fn times(mut self, times: &'a [DateTime<Utc>]) -> Self {
        self.binds.push(Bind::Times(times));
        self
    }

    /// Binds a `boolean[]`.
    pub fn bools(mut self, bools: &'a [bool]) -> Self {
        self.binds.push(Bind::Bools(bools));
        self
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut pieces = self.sql.split("{}");
        out.push_sql(pieces.next().unwrap_or_default());
        let mut binds = self.binds.iter();
        for piece in pieces {
            match binds.next() {
                Some(Bind::Ids(ids)) => out.push_bind_param::<Array<BigInt>, [i64]>(ids)?,
                Some(Bind::Time(at)) => out.push_bind_param::<Timestamptz, _>(at)?,
                Some(Bind::Text(text)) => out.push_bind_param::<Text, str>(text)?,
                Some(Bind::Strs(strs)) => out.push_bind_param::<Array<Text>, [&str]>(strs)?,
                Some(Bind::OptionalStrs(strs)) => {
                    out.push_bind_param::<Array<Nullable<Text>>, [Option<&str>]>(strs)?
                }
                Some(Bind::Times(times)) => {
                    out.push_bind_param::<Array<Timestamptz>, [DateTime<Utc>]>(times)?
                }
                Some(Bind::Bools(bools)) => out.push_bind_param::<Array<Bool>, [bool]>(bools)?,
                None => return Err(unbound(self.sql)),
            }
            out.push_sql(piece);
        }
        if binds.next().is_some() {
            return Err(unbound(self.sql));
        }
        Ok(())
    }
}

/// A statement whose placeholders and binds do not pair up: a programming error, reported
/// as the query error it would otherwise become in PostgreSQL.
fn unbound(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("placeholders and binds do not match in: {sql}").into())
}

/// Cached by its text (no static id: every statement shares this type).
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;
    use diesel::debug_query;

    fn sql(query: &Prepared<'_>) -> Result<String, std::fmt::Error> {
        let mut sql = String::new();
        write!(sql, "{}", debug_query::<Pg, _>(query))?;
        Ok(sql)
    }

    #[test]
    fn binds_go_where_the_braces_are_in_order() {
        let ids = [1, 2];
        let query = Prepared::new("SELECT {} WHERE id = ANY({}) AND name = {}")
            .time(DateTime::UNIX_EPOCH)
            .ids(&ids)
            .text("x");
        let sql = sql(&query).unwrap();
        assert!(sql.starts_with("SELECT $1 WHERE id = ANY($2) AND name = $3 -- binds: "), "{sql}");
    }

    #[test]
    fn a_missing_or_extra_bind_is_an_error_not_a_statement() {
        assert!(sql(&Prepared::new("SELECT {}, {}").text("x")).is_err());
        assert!(sql(&Prepared::new("SELECT {}").text("x").text("y")).is_err());
        assert!(sql(&Prepared::new("SELECT {}").text("x")).is_ok());
    }
}
