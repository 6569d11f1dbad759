//! Parsers for PostgREST's small languages in query parameters: filter expressions
//! (`not.in.(a,"b,c")`), logic trees (`or=(a.eq.1,and(b.gt.2,c.is.null))`), `select`, `order`,
//! and column lists (`columns`, `on_conflict`).
//!
//! The grammar is PostgREST's: a top-level filter value is taken verbatim after the operator
//! (quotes are *not* special there), while inside a logic tree or an `in` list a value that
//! contains `,` `(` `)` must be double-quoted, with `\` escaping the next character. Field
//! names are identifiers (letters, digits, `_`, `$`, spaces, joined by `-`) or double-quoted.
//!
//! This module only parses: it knows nothing of tables or types. Names are checked against the
//! schema and values typed when the query is resolved (`query.rs`), so what comes out of here
//! is never trusted as SQL. A syntax error is `PGRST100` with PostgREST's message form
//! `"failed to parse filter (…)" (line 1, column N)` and an `unexpected … expecting …` detail;
//! a PostgREST feature the local backend does not offer (embedding, JSON paths, casts,
//! full-text search, range operators) is refused with its own clear error instead.

use super::error::RestError;
use super::params::FTS_OPERATORS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    ILike,
}

impl CmpOp {
    fn from_name(name: &str) -> Option<CmpOp> {
        Some(match name {
            "eq" => CmpOp::Eq,
            "neq" => CmpOp::Neq,
            "gt" => CmpOp::Gt,
            "gte" => CmpOp::Gte,
            "lt" => CmpOp::Lt,
            "lte" => CmpOp::Lte,
            "like" => CmpOp::Like,
            "ilike" => CmpOp::ILike,
            _ => return None,
        })
    }
}

/// Operators PostgREST has that make no sense on this schema's types or need Postgres
/// features SQLite lacks (regular expressions, ranges, arrays).
const UNSUPPORTED_OPERATORS: &[&str] =
    &["cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "match", "imatch", "isdistinct"];

/// The right-hand side of `is.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Null,
    NotNull,
    Unknown,
    True,
    False,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Cmp(CmpOp, String),
    In(Vec<String>),
    Is(Tri),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpExpr {
    pub negated: bool,
    pub op: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub expr: OpExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicOp {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicTree {
    Filter(Filter),
    Group { negated: bool, op: LogicOp, children: Vec<LogicTree> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    Star,
    Field { alias: Option<String>, name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub field: String,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

/// A top-level filter value, e.g. `not.eq.5` or `in.(a,"b,c")`.
pub fn parse_filter(value: &str) -> Result<OpExpr, RestError> {
    let mut p = Parser::new(format!("failed to parse filter ({value})"), value);
    let expr = p.op_expr(false)?;
    p.end()?;
    Ok(expr)
}

/// A filter's key: one column name.
pub fn parse_field_key(key: &str) -> Result<String, RestError> {
    let mut p = Parser::new(format!("failed to parse tree path ({key})"), key);
    p.ws();
    let name = p.field_name()?;
    p.no_json_path()?;
    p.ws();
    p.end()?;
    Ok(name)
}

/// A logic parameter: `op` is `and`, `or`, `not.and` or `not.or`, `value` is `(…)`.
pub fn parse_logic(op: &str, value: &str) -> Result<LogicTree, RestError> {
    let input = format!("{op}{value}");
    let mut p = Parser::new(format!("failed to parse logic tree ({value})"), &input);
    if !value.trim_start().starts_with('(') {
        p.pos = op.chars().count();
        return Err(p.fail("\"(\""));
    }
    let tree = p.tree()?;
    p.ws();
    p.end()?;
    Ok(tree)
}

/// The `select` parameter. `table` names the table for the "no relationship" error.
pub fn parse_select(table: &str, input: &str) -> Result<Vec<SelectItem>, RestError> {
    Parser::new(format!("failed to parse select parameter ({input})"), input).comma_list(|p| p.select_item(table))
}

/// The `order` parameter.
pub fn parse_order(input: &str) -> Result<Vec<OrderTerm>, RestError> {
    Parser::new(format!("failed to parse order ({input})"), input).comma_list(Parser::order_term)
}

/// A list of column names (`columns`, `on_conflict`); `what` names the parameter.
pub fn parse_columns(what: &str, input: &str) -> Result<Vec<String>, RestError> {
    Parser::new(format!("failed to parse {what} parameter ({input})"), input).comma_list(Parser::field_name)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    context: String,
}

impl Parser {
    fn new(context: String, input: &str) -> Parser {
        Parser { chars: input.chars().collect(), pos: 0, context }
    }

    /// `item (, item)*` up to the end of the input, spaces allowed around items.
    fn comma_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Parser) -> Result<T, RestError>,
    ) -> Result<Vec<T>, RestError> {
        let mut items = Vec::new();
        loop {
            self.ws();
            items.push(item(self)?);
            self.ws();
            if self.eat(',') {
                continue;
            }
            if self.at_end() {
                return Ok(items);
            }
            return Err(self.fail("\",\" or end of input"));
        }
    }

    /// `field[.asc|.desc][.nullsfirst|.nullslast]`.
    fn order_term(&mut self) -> Result<OrderTerm, RestError> {
        let field = self.field_name()?;
        if self.peek() == Some('(') {
            return Err(RestError::NotEmbedded(field));
        }
        self.no_json_path()?;
        let (mut direction, mut nulls) = (None, None);
        if self.eat('.') {
            if self.eat_word("asc") {
                direction = Some(Direction::Asc);
            } else if self.eat_word("desc") {
                direction = Some(Direction::Desc);
            } else if let Some(n) = self.nulls() {
                nulls = Some(n);
            } else {
                return Err(self.fail("\"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""));
            }
            if direction.is_some() && self.eat('.') {
                nulls = Some(self.nulls().ok_or_else(|| self.fail("\"nullsfirst\" or \"nullslast\""))?);
            }
        }
        Ok(OrderTerm { field, direction, nulls })
    }

    fn nulls(&mut self) -> Option<Nulls> {
        if self.eat_word("nullsfirst") {
            Some(Nulls::First)
        } else if self.eat_word("nullslast") {
            Some(Nulls::Last)
        } else {
            None
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn looking_at(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.looking_at(s) {
            self.pos += s.chars().count();
            true
        } else {
            false
        }
    }

    /// Eats `word` only if it is followed by `.`, `,` or the end.
    fn eat_word(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        if self.looking_at(word) && matches!(self.peek_at(n), None | Some('.') | Some(',') | Some(' ')) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ') | Some('\t')) {
            self.pos += 1;
        }
    }

    fn error(&self, details: String) -> RestError {
        RestError::QueryParam { message: format!("\"{}\" (line 1, column {})", self.context, self.pos + 1), details }
    }

    fn fail(&self, expecting: &str) -> RestError {
        let unexpected = match self.peek() {
            Some(c) => format!("unexpected \"{c}\""),
            None => "unexpected end of input".to_string(),
        };
        self.error(format!("{unexpected} expecting {expecting}"))
    }

    fn end(&self) -> Result<(), RestError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.fail("end of input"))
        }
    }

    fn expect(&mut self, c: char) -> Result<(), RestError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.fail(&format!("\"{c}\"")))
        }
    }

    fn no_json_path(&self) -> Result<(), RestError> {
        if self.looking_at("->") {
            return Err(RestError::NotImplemented(
                "JSON path operators (-> and ->>) are not available: no column is JSON".into(),
            ));
        }
        Ok(())
    }

    /// `"quoted \" name"`, with `\` escaping the next character.
    fn quoted(&mut self) -> Result<String, RestError> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.fail("\"\\\"\"")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        None => return Err(self.fail("any character")),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A field name: quoted, or identifiers joined by `-` (not `->`), each trimmed.
    fn field_name(&mut self) -> Result<String, RestError> {
        if self.peek() == Some('"') {
            return self.quoted();
        }
        let mut name = String::new();
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '$')) {
                self.pos += 1;
            }
            let ident: String = self.chars[start..self.pos].iter().collect();
            if ident.trim().is_empty() {
                self.pos = start;
                return Err(self.fail(if name.is_empty() {
                    "field name (* or [a..z0..9_$])"
                } else {
                    "letter or digit"
                }));
            }
            name.push_str(ident.trim());
            if self.peek() == Some('-') && self.peek_at(1) != Some('>') {
                self.pos += 1;
                name.push('-');
                continue;
            }
            return Ok(name);
        }
    }

    fn select_item(&mut self, table: &str) -> Result<SelectItem, RestError> {
        if self.eat_str("..") {
            let target = self.field_name()?;
            return Err(RestError::NoRelationship { table: table.into(), target });
        }
        if self.eat('*') {
            return Ok(SelectItem::Star);
        }
        let first = self.field_name()?;
        let (alias, name) = if self.peek() == Some(':') && self.peek_at(1) != Some(':') {
            self.pos += 1;
            self.ws();
            (Some(first), self.field_name()?)
        } else {
            (None, first)
        };
        if matches!(self.peek(), Some('(') | Some('!')) {
            return Err(RestError::NoRelationship { table: table.into(), target: name });
        }
        self.no_json_path()?;
        if self.looking_at("::") {
            return Err(RestError::NotImplemented(
                "casts in select (::type) are not available in the local backend".into(),
            ));
        }
        Ok(SelectItem::Field { alias, name })
    }

    /// `[not.]op.value`, `[not.]in.(…)`, `[not.]is.null`. Inside a logic tree (`logic`) a
    /// value ends at `,` or `)` unless quoted; at the top level it is the rest of the input.
    fn op_expr(&mut self, logic: bool) -> Result<OpExpr, RestError> {
        let negated = self.eat_str("not.");
        let op = if self.eat_str("in.") {
            Operation::In(self.list()?)
        } else if self.eat_str("is.") {
            Operation::Is(self.tri(logic)?)
        } else {
            let start = self.pos;
            while self.peek().is_some_and(|c| c != '.' && c != '(') {
                self.pos += 1;
            }
            let name: String = self.chars[start..self.pos].iter().collect();
            if FTS_OPERATORS.contains(&name.as_str()) {
                return Err(RestError::NotImplemented(format!(
                    "full-text search ({name}) is not available in the local backend; use like or ilike"
                )));
            }
            if name.is_empty() && self.at_end() {
                return Err(self.fail("\"not\" or operator (eq, gt, ...)"));
            }
            if self.peek() == Some('(') {
                while self.peek().is_some_and(|c| c != '.') {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                return Err(self.error(format!("unknown single value operator {name}")));
            }
            if !self.eat('.') {
                return Err(self.fail("delimiter (.)"));
            }
            if UNSUPPORTED_OPERATORS.contains(&name.as_str()) {
                return Err(RestError::NotImplemented(format!(
                    "the '{name}' operator is not available in the local backend (columns are text, uuid, timestamptz or integers)"
                )));
            }
            let Some(cmp) = CmpOp::from_name(&name) else {
                return Err(self.error(format!("unknown single value operator {name}")));
            };
            let value = if logic { self.logic_value()? } else { self.rest() };
            Operation::Cmp(cmp, value)
        };
        Ok(OpExpr { negated, op })
    }

    fn rest(&mut self) -> String {
        let s: String = self.chars[self.pos..].iter().collect();
        self.pos = self.chars.len();
        s
    }

    fn tri(&mut self, logic: bool) -> Result<Tri, RestError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !(logic && matches!(c, ',' | ')'))) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect::<String>().to_ascii_lowercase();
        Ok(match word.as_str() {
            "null" => Tri::Null,
            "not_null" => Tri::NotNull,
            "unknown" => Tri::Unknown,
            "true" => Tri::True,
            "false" => Tri::False,
            _ => {
                self.pos = start;
                return Err(self.fail("null or trilean value (unknown, true, false)"));
            }
        })
    }

    /// `(a, "b,c", d)`: a quoted element must be followed by `,` or `)`.
    fn list(&mut self) -> Result<Vec<String>, RestError> {
        self.ws();
        self.expect('(')?;
        self.ws();
        let mut items = Vec::new();
        if self.eat(')') {
            self.ws();
            return Ok(items);
        }
        loop {
            items.push(self.element()?);
            if self.eat(',') {
                continue;
            }
            self.ws();
            self.expect(')')?;
            self.ws();
            return Ok(items);
        }
    }

    /// One value inside `in.(…)` or a logic tree: quoted, or up to the next `,` / `)`.
    fn element(&mut self) -> Result<String, RestError> {
        if self.peek() == Some('"') {
            let save = self.pos;
            if let Ok(v) = self.quoted() {
                if matches!(self.peek(), None | Some(',') | Some(')')) {
                    return Ok(v);
                }
            }
            self.pos = save;
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ',' && c != ')') {
            self.pos += 1;
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn logic_value(&mut self) -> Result<String, RestError> {
        if self.peek() == Some('{') {
            let start = self.pos;
            while self.peek().is_some_and(|c| c != '}') {
                self.pos += 1;
            }
            if self.eat('}') {
                return Ok(self.chars[start..self.pos].iter().collect());
            }
            self.pos = start;
        }
        self.element()
    }

    fn tree(&mut self) -> Result<LogicTree, RestError> {
        self.ws();
        let save = self.pos;
        let negated = self.eat_str("not.");
        let op = if self.eat_str("and") {
            Some(LogicOp::And)
        } else if self.eat_str("or") {
            Some(LogicOp::Or)
        } else {
            None
        };
        if let Some(op) = op {
            self.ws();
            if self.eat('(') {
                let mut children = Vec::new();
                loop {
                    children.push(self.tree()?);
                    self.ws();
                    if self.eat(',') {
                        continue;
                    }
                    self.expect(')')?;
                    return Ok(LogicTree::Group { negated, op, children });
                }
            }
        }
        self.pos = save;
        if self.at_end() || matches!(self.peek(), Some(')') | Some(',')) {
            return Err(
                self.fail("field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)")
            );
        }
        let field = self.field_name()?;
        self.no_json_path()?;
        self.ws();
        self.expect('.')?;
        let expr = self.op_expr(true)?;
        Ok(LogicTree::Filter(Filter { field, expr }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(op: CmpOp, v: &str) -> OpExpr {
        OpExpr { negated: false, op: Operation::Cmp(op, v.into()) }
    }

    #[test]
    fn top_level_values_are_verbatim() {
        assert_eq!(parse_filter("eq.a,b(c)\"d\"").expect("parses"), cmp(CmpOp::Eq, "a,b(c)\"d\""));
        assert_eq!(parse_filter("eq.").expect("parses"), cmp(CmpOp::Eq, ""));
        assert_eq!(parse_filter("like.*x.y*").expect("parses"), cmp(CmpOp::Like, "*x.y*"));
        let e = parse_filter("not.gte.5").expect("parses");
        assert!(e.negated);
    }

    #[test]
    fn in_lists_unquote_values() {
        let e = parse_filter("in.(a,\"b,c\",\"d\\\"e\", f )").expect("parses");
        assert_eq!(e.op, Operation::In(vec!["a".into(), "b,c".into(), "d\"e".into(), " f ".into()]));
        assert_eq!(parse_filter("in.()").expect("parses").op, Operation::In(vec![]));
        assert!(parse_filter("in.(a,b").is_err());
        assert!(parse_filter("in.a,b").is_err());
    }

    #[test]
    fn is_accepts_trilean_values_case_insensitively() {
        assert_eq!(parse_filter("is.NULL").expect("parses").op, Operation::Is(Tri::Null));
        assert_eq!(parse_filter("not.is.null").expect("parses").op, Operation::Is(Tri::Null));
        assert!(parse_filter("is.nothing").is_err());
    }

    #[test]
    fn unknown_operators_report_postgrest_style() {
        match parse_filter("foo.1") {
            Err(RestError::QueryParam { message, details }) => {
                assert_eq!(message, "\"failed to parse filter (foo.1)\" (line 1, column 5)");
                assert_eq!(details, "unknown single value operator foo");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_filter("fts.x"), Err(RestError::NotImplemented(_))));
        assert!(matches!(parse_filter("cs.{1}"), Err(RestError::NotImplemented(_))));
    }

    #[test]
    fn logic_trees_nest_and_quote() {
        let t =
            parse_logic("or", "(a.eq.1,and(b.gt.2,c.not.is.null),not.or(d.eq.\"x,y)\",e.in.(1,2)))").expect("parses");
        let LogicTree::Group { negated: false, op: LogicOp::Or, children } = t else { panic!("group") };
        assert_eq!(children.len(), 3);
        assert_eq!(children[0], LogicTree::Filter(Filter { field: "a".into(), expr: cmp(CmpOp::Eq, "1") }));
        let LogicTree::Group { op: LogicOp::And, children: inner, .. } = &children[1] else { panic!("and") };
        assert_eq!(
            inner[1],
            LogicTree::Filter(Filter {
                field: "c".into(),
                expr: OpExpr { negated: true, op: Operation::Is(Tri::Null) }
            })
        );
        let LogicTree::Group { negated: true, op: LogicOp::Or, children: inner } = &children[2] else {
            panic!("not.or")
        };
        assert_eq!(inner[0], LogicTree::Filter(Filter { field: "d".into(), expr: cmp(CmpOp::Eq, "x,y)") }));
        assert_eq!(
            inner[1],
            LogicTree::Filter(Filter {
                field: "e".into(),
                expr: OpExpr { negated: false, op: Operation::In(vec!["1".into(), "2".into()]) }
            })
        );
        let t = parse_logic("not.and", "(a.eq.1)").expect("parses");
        assert!(matches!(t, LogicTree::Group { negated: true, op: LogicOp::And, .. }));
    }

    #[test]
    fn broken_logic_trees_are_errors() {
        for bad in ["()", "(a.eq.1", "(a.eq.1,)", "(a)", "a.eq.1"] {
            assert!(matches!(parse_logic("or", bad), Err(RestError::QueryParam { .. })), "{bad}");
        }
    }

    #[test]
    fn select_lists_aliases_and_refusals() {
        let items = parse_select("t", "id, label:name,*").expect("parses");
        assert_eq!(
            items,
            vec![
                SelectItem::Field { alias: None, name: "id".into() },
                SelectItem::Field { alias: Some("label".into()), name: "name".into() },
                SelectItem::Star
            ]
        );
        assert!(matches!(parse_select("t", "*,rooms(*)"), Err(RestError::NoRelationship { .. })));
        assert!(matches!(parse_select("t", "id::text"), Err(RestError::NotImplemented(_))));
        assert!(matches!(parse_select("t", "id,"), Err(RestError::QueryParam { .. })));
    }

    #[test]
    fn order_terms_take_direction_and_nulls() {
        let t = parse_order("a.asc,b.desc.nullsfirst,c.nullslast,d").expect("parses");
        assert_eq!(t[0], OrderTerm { field: "a".into(), direction: Some(Direction::Asc), nulls: None });
        assert_eq!(t[1], OrderTerm { field: "b".into(), direction: Some(Direction::Desc), nulls: Some(Nulls::First) });
        assert_eq!(t[2], OrderTerm { field: "c".into(), direction: None, nulls: Some(Nulls::Last) });
        assert_eq!(t[3], OrderTerm { field: "d".into(), direction: None, nulls: None });
        match parse_order("id.ac") {
            Err(RestError::QueryParam { message, details }) => {
                assert_eq!(message, "\"failed to parse order (id.ac)\" (line 1, column 4)");
                assert!(details.starts_with("unexpected \"a\" expecting"), "{details}");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_order("id.descc").is_err());
    }

    #[test]
    fn column_lists_accept_quotes() {
        assert_eq!(parse_columns("columns", "\"a\",\"b\"").expect("parses"), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            parse_columns("on_conflict", "room_id, user_id").expect("parses"),
            vec!["room_id".to_string(), "user_id".to_string()]
        );
    }
}
