//! What a request addresses, resolved against the schema: which columns come back
//! ([`Selection`]), which rows ([`Cond`]), in what order ([`OrderBy`]) and which slice
//! ([`Window`]).
//!
//! Resolution is where client text stops being text: every name must be a column of
//! `schema::TABLES` (else `42703`, as Postgres reports it) and is replaced by the schema's own
//! `&'static Column`; every value is typed by its column (`value.rs`). Rendering to SQL
//! (`Cond::render`) therefore only ever writes identifiers that come from the schema, always
//! double-quoted, and `?` placeholders whose values are pushed on a parameter list.

use rusqlite::types::Value;

use super::error::{PgError, RangeError, RestError};
use super::grammar::{self, CmpOp, Direction, LogicOp, LogicTree, Nulls, OpExpr, Operation, SelectItem, Tri};
use super::params::QueryParams;
use super::value;
use crate::schema::{ColType, Column, Table};

/// `"table"."column"`, from schema names only.
pub fn qcol(table: &Table, col: &Column) -> String {
    format!("\"{}\".\"{}\"", table.name, col.name)
}

fn column(table: &'static Table, name: &str) -> Result<&'static Column, RestError> {
    table.column(name).ok_or_else(|| PgError::undefined_column(table.name, name).into())
}

/// The output columns, in order, each with the key it has in the JSON object.
#[derive(Debug, Clone)]
pub struct Selection {
    pub items: Vec<(String, &'static Column)>,
}

impl Selection {
    /// `select=` (absent means `*`).
    pub fn resolve(table: &'static Table, select: Option<&str>) -> Result<Selection, RestError> {
        let parsed = match select {
            None => vec![SelectItem::Star],
            Some(s) => grammar::parse_select(table.name, s)?,
        };
        let mut items = Vec::new();
        for item in parsed {
            match item {
                SelectItem::Star => items.extend(table.columns.iter().map(|c| (c.name.to_string(), c))),
                SelectItem::Field { alias, name } => {
                    let col = column(table, &name)?;
                    items.push((alias.unwrap_or(name), col));
                }
            }
        }
        Ok(Selection { items })
    }

    pub fn sql(&self, table: &Table) -> String {
        if self.items.is_empty() {
            return "NULL".into();
        }
        self.items.iter().map(|(_, c)| qcol(table, c)).collect::<Vec<_>>().join(", ")
    }
}

/// A row condition with typed values.
#[derive(Debug, Clone)]
pub enum Cond {
    Cmp {
        col: &'static Column,
        op: &'static str,
        value: Value,
    },
    /// Case-sensitive pattern (`like`), as a GLOB pattern.
    Glob {
        col: &'static Column,
        pattern: String,
    },
    /// Case-insensitive pattern (`ilike`), as a LIKE pattern with `\` escapes.
    Like {
        col: &'static Column,
        pattern: String,
    },
    In {
        col: &'static Column,
        values: Vec<Value>,
    },
    IsNull {
        col: &'static Column,
    },
    Not(Box<Cond>),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

impl Cond {
    /// A filter `field=expr`.
    pub fn filter(table: &'static Table, field: &str, expr: &OpExpr) -> Result<Cond, RestError> {
        let col = column(table, field)?;
        let cond = match &expr.op {
            Operation::Cmp(op, text) => {
                let sql_op = match op {
                    CmpOp::Eq => "=",
                    CmpOp::Neq => "<>",
                    CmpOp::Gt => ">",
                    CmpOp::Gte => ">=",
                    CmpOp::Lt => "<",
                    CmpOp::Lte => "<=",
                    CmpOp::Like | CmpOp::ILike => {
                        let pg_op = if *op == CmpOp::Like { "~~" } else { "~~*" };
                        if col.ty != ColType::Text {
                            return Err(PgError::new("42883", format!("operator does not exist: {} {pg_op} unknown", value::pg_type_name(col.ty)))
                                .hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
                                .into());
                        }
                        return Ok(negate(
                            expr.negated,
                            if *op == CmpOp::Like {
                                Cond::Glob { col, pattern: value::like_to_glob(text)? }
                            } else {
                                Cond::Like { col, pattern: value::ilike_pattern(text)? }
                            },
                        ));
                    }
                };
                Cond::Cmp { col, op: sql_op, value: value::from_text(col, text)? }
            }
            Operation::In(values) => {
                Cond::In { col, values: values.iter().map(|v| value::from_text(col, v)).collect::<Result<_, _>>()? }
            }
            Operation::Is(Tri::Null) => Cond::IsNull { col },
            Operation::Is(Tri::NotNull) => Cond::Not(Box::new(Cond::IsNull { col })),
            Operation::Is(t) => {
                let what = match t {
                    Tri::True => "IS TRUE",
                    Tri::False => "IS FALSE",
                    _ => "IS UNKNOWN",
                };
                return Err(PgError::new(
                    "42804",
                    format!("argument of {what} must be type boolean, not type {}", value::pg_type_name(col.ty)),
                )
                .into());
            }
        };
        Ok(negate(expr.negated, cond))
    }

    /// A logic tree from `and=`/`or=`.
    pub fn tree(table: &'static Table, tree: &LogicTree) -> Result<Cond, RestError> {
        match tree {
            LogicTree::Filter(f) => Cond::filter(table, &f.field, &f.expr),
            LogicTree::Group { negated, op, children } => {
                let children = children.iter().map(|c| Cond::tree(table, c)).collect::<Result<Vec<_>, _>>()?;
                let group = match op {
                    LogicOp::And => Cond::All(children),
                    LogicOp::Or => Cond::Any(children),
                };
                Ok(negate(*negated, group))
            }
        }
    }

    /// Appends this condition as SQL to `sql`, its values to `params`.
    pub fn render(&self, table: &Table, sql: &mut String, params: &mut Vec<Value>) {
        match self {
            Cond::Cmp { col, op, value } => {
                sql.push_str(&format!("{} {op} ?", qcol(table, col)));
                params.push(value.clone());
            }
            Cond::Glob { col, pattern } => {
                sql.push_str(&format!("{} GLOB ?", qcol(table, col)));
                params.push(Value::Text(pattern.clone()));
            }
            Cond::Like { col, pattern } => {
                sql.push_str(&format!("{} LIKE ? ESCAPE '\\'", qcol(table, col)));
                params.push(Value::Text(pattern.clone()));
            }
            Cond::In { values, .. } if values.is_empty() => sql.push('0'),
            Cond::In { col, values } => {
                let marks = vec!["?"; values.len()].join(", ");
                sql.push_str(&format!("{} IN ({marks})", qcol(table, col)));
                params.extend(values.iter().cloned());
            }
            Cond::IsNull { col } => sql.push_str(&format!("{} IS NULL", qcol(table, col))),
            Cond::Not(inner) => {
                sql.push_str("NOT (");
                inner.render(table, sql, params);
                sql.push(')');
            }
            Cond::All(children) | Cond::Any(children) => {
                if children.is_empty() {
                    sql.push_str(if matches!(self, Cond::All(_)) { "1" } else { "0" });
                    return;
                }
                let joiner = if matches!(self, Cond::All(_)) { " AND " } else { " OR " };
                sql.push('(');
                for (i, c) in children.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(joiner);
                    }
                    c.render(table, sql, params);
                }
                sql.push(')');
            }
        }
    }
}

fn negate(negated: bool, cond: Cond) -> Cond {
    if negated {
        Cond::Not(Box::new(cond))
    } else {
        cond
    }
}

/// One `ORDER BY` term with Postgres's null placement made explicit (SQLite's default differs:
/// Postgres puts nulls last ascending and first descending).
#[derive(Debug, Clone)]
pub struct OrderBy {
    pub col: &'static Column,
    pub desc: bool,
    pub nulls_first: bool,
}

/// `limit` / `offset` from the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub limit: Option<u64>,
    pub offset: u64,
}

/// The row-addressing part of a request: filters, order, window.
#[derive(Debug, Clone)]
pub struct Query {
    pub conds: Vec<Cond>,
    pub order: Vec<OrderBy>,
    pub window: Window,
}

impl Query {
    pub fn resolve(table: &'static Table, q: &QueryParams) -> Result<Query, RestError> {
        let mut conds = Vec::new();
        // Pairs PostgREST would take for RPC arguments are filters on a table (see params.rs).
        for (key, value) in q.filters.iter().chain(&q.args) {
            let field = grammar::parse_field_key(key)?;
            let expr = grammar::parse_filter(value)?;
            conds.push(Cond::filter(table, &field, &expr)?);
        }
        for (op, value) in &q.logic {
            conds.push(Cond::tree(table, &grammar::parse_logic(op, value)?)?);
        }
        let mut order = Vec::new();
        if let Some(o) = &q.order {
            for term in grammar::parse_order(o)? {
                let col = column(table, &term.field)?;
                let desc = term.direction == Some(Direction::Desc);
                let nulls_first = match term.nulls {
                    Some(n) => n == Nulls::First,
                    None => desc,
                };
                order.push(OrderBy { col, desc, nulls_first });
            }
        }
        let limit = q.limit.as_deref().map(|l| parse_count("limit", l)).transpose()?;
        let offset = q.offset.as_deref().map(|o| parse_count("offset", o)).transpose()?.unwrap_or(0);
        Ok(Query { conds, order, window: Window { limit, offset } })
    }

    /// `ORDER BY …` (empty when unordered).
    pub fn order_sql(&self, table: &Table) -> String {
        if self.order.is_empty() {
            return String::new();
        }
        let terms: Vec<String> = self
            .order
            .iter()
            .map(|o| {
                format!(
                    "{} {} NULLS {}",
                    qcol(table, o.col),
                    if o.desc { "DESC" } else { "ASC" },
                    if o.nulls_first { "FIRST" } else { "LAST" }
                )
            })
            .collect();
        format!(" ORDER BY {}", terms.join(", "))
    }
}

fn parse_count(what: &str, text: &str) -> Result<u64, RestError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    if what == "limit" && t.parse::<i64>().is_ok() {
        return Err(RestError::Range(RangeError::NegativeLimit));
    }
    Err(RestError::QueryParam {
        message: format!("\"failed to parse {what} parameter ({text})\" (line 1, column 1)"),
        details: "unexpected input expecting a non-negative integer".into(),
    })
}

/// `WHERE …` from conditions and row-level predicates (`None` = no restriction), or empty.
pub fn where_sql(table: &Table, conds: &[Cond], policies: &[Option<String>], params: &mut Vec<Value>) -> String {
    let mut parts = Vec::new();
    for c in conds {
        let mut s = String::new();
        c.render(table, &mut s, params);
        parts.push(s);
    }
    for p in policies.iter().flatten() {
        parts.push(format!("({p})"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    fn table(name: &str) -> &'static Table {
        schema::table(name).expect("table exists")
    }

    fn query(t: &'static Table, qs: &str) -> Result<Query, RestError> {
        Query::resolve(t, &QueryParams::parse(Some(qs))?)
    }

    #[test]
    fn filters_render_with_bound_values_only() {
        let t = table("chat_messages");
        let q = query(
            t,
            "content=eq.x'); DROP TABLE chat_messages; --&or=(type.eq.text,and(edited_at.is.null,content.ilike.*hi*))",
        )
        .expect("resolves");
        let mut params = Vec::new();
        let sql = where_sql(t, &q.conds, &[Some("1".into())], &mut params);
        assert_eq!(
            sql,
            " WHERE \"chat_messages\".\"content\" = ? AND (\"chat_messages\".\"type\" = ? OR (\"chat_messages\".\"edited_at\" IS NULL AND \"chat_messages\".\"content\" LIKE ? ESCAPE '\\')) AND (1)"
        );
        assert_eq!(params[0], Value::Text("x'); DROP TABLE chat_messages; --".into()));
        assert_eq!(params[2], Value::Text("%hi%".into()));
    }

    #[test]
    fn unknown_columns_are_42703_everywhere() {
        let t = table("challenges");
        for qs in ["nope=eq.1", "order=nope.desc", "or=(nope.eq.1)"] {
            match query(t, qs) {
                Err(RestError::Pg(e)) => {
                    assert_eq!((e.code, e.message.as_str()), ("42703", "column challenges.nope does not exist"), "{qs}")
                }
                other => panic!("{qs}: {other:?}"),
            }
        }
        assert!(matches!(Selection::resolve(t, Some("id,nope")), Err(RestError::Pg(e)) if e.code == "42703"));
    }

    #[test]
    fn order_defaults_follow_postgres_null_placement() {
        let t = table("challenges");
        let q = query(t, "order=deadline.asc,created_at.desc,title.desc.nullslast").expect("resolves");
        assert_eq!(
            q.order_sql(t),
            " ORDER BY \"challenges\".\"deadline\" ASC NULLS LAST, \"challenges\".\"created_at\" DESC NULLS FIRST, \"challenges\".\"title\" DESC NULLS LAST"
        );
    }

    #[test]
    fn pattern_operators_need_text_columns() {
        let t = table("challenges");
        assert!(matches!(query(t, "id=like.*a*"), Err(RestError::Pg(e)) if e.code == "42883"));
        assert!(matches!(query(t, "title=is.true"), Err(RestError::Pg(e)) if e.code == "42804"));
    }

    #[test]
    fn limits_must_be_counts() {
        let t = table("challenges");
        assert_eq!(query(t, "limit=5&offset=10").expect("ok").window, Window { limit: Some(5), offset: 10 });
        assert!(matches!(query(t, "limit=-1"), Err(RestError::Range(RangeError::NegativeLimit))));
        assert!(matches!(query(t, "limit=abc"), Err(RestError::QueryParam { .. })));
    }
}
