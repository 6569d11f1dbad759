//! Filter conditions and how they are written into a PostgREST query string, as postgrest-js
//! writes them.
//!
//! A [`Cond`] is either one `column.operator.value` test or an `and`/`or` group of conditions,
//! each optionally negated (`!cond`). At the top level a test becomes the pair `column=[not.]op.value`
//! and a group `[not.]or=(…)`; inside a group a test is `column.[not.]op.value` and a group
//! `[not.]and(…)`.
//!
//! Quoting follows PostgREST's grammar: a top-level value is taken verbatim after the
//! operator, so it is never quoted; inside a group or an `in` list a value that holds one of
//! `,` `(` `)` `"` `\`, is empty, or starts or ends with a space is double-quoted with `\`
//! before `"` and `\`. (postgrest-js quotes only values with `,()`; the wider rule also keeps
//! quotes and backslashes in a value intact.) Percent-encoding is the URL layer's job.

use std::fmt::Display;

/// The right-hand side of an `is` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Is {
    Null,
    True,
    False,
    Unknown,
}

impl Is {
    fn as_str(self) -> &'static str {
        match self {
            Is::Null => "null",
            Is::True => "true",
            Is::False => "false",
            Is::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// A scalar, quoted inside groups when needed.
    Scalar(String),
    /// An `in` list, each item quoted when needed.
    List(Vec<String>),
    /// A keyword (`null`, `true`, …), never quoted.
    Keyword(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Test { column: String, op: &'static str, value: Value },
    Group { op: &'static str, children: Vec<Cond> },
}

/// A filter condition: one test or an `and`/`or` group, possibly negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    negated: bool,
    node: Node,
}

fn test(column: impl Into<String>, op: &'static str, value: Value) -> Cond {
    Cond { negated: false, node: Node::Test { column: column.into(), op, value } }
}

fn scalar(column: impl Into<String>, op: &'static str, value: impl Display) -> Cond {
    test(column, op, Value::Scalar(value.to_string()))
}

impl Cond {
    /// `column = value`.
    pub fn eq(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "eq", value)
    }

    /// `column <> value`.
    pub fn neq(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "neq", value)
    }

    /// `column > value`.
    pub fn gt(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "gt", value)
    }

    /// `column >= value`.
    pub fn gte(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "gte", value)
    }

    /// `column < value`.
    pub fn lt(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "lt", value)
    }

    /// `column <= value`.
    pub fn lte(column: impl Into<String>, value: impl Display) -> Cond {
        scalar(column, "lte", value)
    }

    /// `column LIKE pattern` (`%` any run, `_` one character; `*` is accepted for `%`).
    pub fn like(column: impl Into<String>, pattern: impl Display) -> Cond {
        scalar(column, "like", pattern)
    }

    /// `column ILIKE pattern`: [`Cond::like`] ignoring case.
    pub fn ilike(column: impl Into<String>, pattern: impl Display) -> Cond {
        scalar(column, "ilike", pattern)
    }

    /// `column IN (values…)`.
    pub fn in_<V: Display>(column: impl Into<String>, values: impl IntoIterator<Item = V>) -> Cond {
        test(column, "in", Value::List(values.into_iter().map(|v| v.to_string()).collect()))
    }

    /// `column IS null | true | false | unknown`.
    pub fn is(column: impl Into<String>, value: Is) -> Cond {
        test(column, "is", Value::Keyword(value.as_str()))
    }

    /// `column IS NULL`.
    pub fn is_null(column: impl Into<String>) -> Cond {
        Cond::is(column, Is::Null)
    }

    /// True when any of `conds` is.
    pub fn or(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond { negated: false, node: Node::Group { op: "or", children: conds.into_iter().collect() } }
    }

    /// True when all of `conds` are.
    pub fn and(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond { negated: false, node: Node::Group { op: "and", children: conds.into_iter().collect() } }
    }

    /// The query-string pair of this condition at the top level (before percent-encoding).
    pub(crate) fn to_param(&self) -> (String, String) {
        let not = if self.negated { "not." } else { "" };
        match &self.node {
            Node::Test { column, op, value } => (column.clone(), format!("{not}{op}.{}", value_text(value, false))),
            Node::Group { op, children } => (format!("{not}{op}"), group_body(children)),
        }
    }

    /// This condition inside a group.
    fn nested(&self) -> String {
        let not = if self.negated { "not." } else { "" };
        match &self.node {
            Node::Test { column, op, value } => format!("{column}.{not}{op}.{}", value_text(value, true)),
            Node::Group { op, children } => format!("{not}{op}{}", group_body(children)),
        }
    }
}

/// `!cond`: the negation (`not.`); negating twice gives the condition back.
impl std::ops::Not for Cond {
    type Output = Cond;

    fn not(mut self) -> Cond {
        self.negated = !self.negated;
        self
    }
}

fn group_body(children: &[Cond]) -> String {
    let inner: Vec<String> = children.iter().map(Cond::nested).collect();
    format!("({})", inner.join(","))
}

fn value_text(value: &Value, nested: bool) -> String {
    match value {
        Value::Scalar(s) if nested => quote(s),
        Value::Scalar(s) => s.clone(),
        Value::List(items) => format!("({})", items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(",")),
        Value::Keyword(k) => (*k).to_string(),
    }
}

/// `value` as an item of an `in` list or a value inside a logic group: double-quoted (with `\`
/// escapes) when PostgREST would otherwise split or trim it.
pub fn quote(value: &str) -> String {
    let needs = value.is_empty()
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.chars().any(|c| matches!(c, ',' | '(' | ')' | '"' | '\\'));
    if !needs {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(c: Cond) -> (String, String) {
        c.to_param()
    }

    #[test]
    fn top_level_tests_are_verbatim_after_the_operator() {
        assert_eq!(param(Cond::eq("title", "hello world")), ("title".into(), "eq.hello world".into()));
        assert_eq!(param(Cond::eq("title", "a,b")), ("title".into(), "eq.a,b".into()), "no quoting at top level");
        assert_eq!(param(Cond::gte("n", 5)), ("n".into(), "gte.5".into()));
        assert_eq!(param(Cond::is_null("deleted_at")), ("deleted_at".into(), "is.null".into()));
        assert_eq!(param(!Cond::eq("x", 1)), ("x".into(), "not.eq.1".into()));
        assert_eq!(param(!!Cond::eq("x", 1)), ("x".into(), "eq.1".into()));
    }

    #[test]
    fn in_lists_quote_like_postgrest_js() {
        assert_eq!(param(Cond::in_("name", ["a", "b,c"])), ("name".into(), "in.(a,\"b,c\")".into()));
        assert_eq!(param(Cond::in_("n", [1, 2, 3])), ("n".into(), "in.(1,2,3)".into()));
        assert_eq!(
            param(Cond::in_("t", ["say \"hi\"", "back\\slash", "", " padded"])),
            ("t".into(), r#"in.("say \"hi\"","back\\slash",""," padded")"#.into())
        );
    }

    #[test]
    fn groups_nest_and_quote_their_values() {
        let c = Cond::or([Cond::eq("a", 1), Cond::and([Cond::gt("b", 2), Cond::is_null("c")]), Cond::eq("d", "x (y)")]);
        assert_eq!(param(c), ("or".into(), "(a.eq.1,and(b.gt.2,c.is.null),d.eq.\"x (y)\")".into()));
        let c = !Cond::and([!Cond::eq("a", 1), !Cond::or([Cond::eq("b", 2)])]);
        assert_eq!(param(c), ("not.and".into(), "(a.not.eq.1,not.or(b.eq.2))".into()));
        let c = Cond::or([Cond::in_("k", ["a,b", "c"])]);
        assert_eq!(param(c), ("or".into(), "(k.in.(\"a,b\",c))".into()));
    }
}
