//! Client values typed by their column, as Postgres would type them.
//!
//! PostgREST hands filter values and JSON body fields to Postgres as text (or through
//! `json_populate_record`), and Postgres parses them with the column type's input function.
//! This module does the same before anything touches SQLite, so that:
//! - integers compare as integers (bound as `INTEGER`), not as text;
//! - uuids are stored and compared in Postgres's canonical lowercase form, whatever form the
//!   client sent (upper case, braces, no hyphens);
//! - timestamps are normalised to the canonical text `schema::normalize_ts` produces, which
//!   sorts in time order, so `gt`/`lt` and `ORDER BY` work on the stored text;
//! - a value that does not parse is refused with Postgres's SQLSTATE and message (`22P02`
//!   `invalid input syntax for type uuid: "x"`, `22007` for timestamps, `22003` out of range).
//!
//! Every typed value ends up as a bound parameter, never in SQL text.

use rusqlite::types::{Value, ValueRef};
use serde_json::Value as Json;

use super::error::PgError;
use crate::schema::{self, ColType, Column};

/// The name Postgres uses for a type in its messages.
pub fn pg_type_name(ty: ColType) -> &'static str {
    match ty {
        ColType::Uuid => "uuid",
        ColType::Text => "text",
        ColType::Timestamptz => "timestamp with time zone",
        ColType::Int4 => "integer",
        ColType::Int8 => "bigint",
    }
}

/// Parses `text` as a value of `col`'s type.
pub fn from_text(col: &Column, text: &str) -> Result<Value, PgError> {
    match col.ty {
        ColType::Text => {
            if text.contains('\0') {
                return Err(PgError::new("22P05", "unsupported Unicode escape sequence")
                    .details("\\u0000 cannot be converted to text."));
            }
            Ok(Value::Text(text.to_string()))
        }
        ColType::Uuid => uuid::Uuid::parse_str(text.trim())
            .ok()
            .filter(|_| !text.trim().starts_with("urn:"))
            .map(|u| Value::Text(u.to_string()))
            .ok_or_else(|| invalid_syntax(col.ty, text)),
        ColType::Timestamptz => schema::normalize_ts(text).map(Value::Text).ok_or_else(|| invalid_syntax(col.ty, text)),
        ColType::Int4 | ColType::Int8 => {
            let t = text.trim();
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_syntax(col.ty, text));
            }
            let out_of_range =
                || PgError::new("22003", format!("value \"{text}\" is out of range for type {}", pg_type_name(col.ty)));
            let n: i64 = t.parse().map_err(|_| out_of_range())?;
            if col.ty == ColType::Int4 && i32::try_from(n).is_err() {
                return Err(out_of_range());
            }
            Ok(Value::Integer(n))
        }
    }
}

/// Types a JSON body field the way `json_populate_record` does: strings are parsed as text
/// input, numbers and booleans by their JSON text, objects and arrays as JSON text.
pub fn from_json(col: &Column, v: &Json) -> Result<Value, PgError> {
    match v {
        Json::Null => Ok(Value::Null),
        Json::String(s) => from_text(col, s),
        Json::Number(n) => from_text(col, &n.to_string()),
        Json::Bool(b) => from_text(col, if *b { "true" } else { "false" }),
        other => from_text(col, &other.to_string()),
    }
}

fn invalid_syntax(ty: ColType, text: &str) -> PgError {
    let code = if ty == ColType::Timestamptz { "22007" } else { "22P02" };
    PgError::new(code, format!("invalid input syntax for type {}: \"{text}\"", pg_type_name(ty)))
}

/// A value read from SQLite as JSON: integers as numbers, text as strings.
pub fn to_json(v: ValueRef<'_>) -> Json {
    match v {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(i) => Json::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
        ValueRef::Text(t) => Json::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A value as Postgres prints it in error details (`Key (id)=(…)`, `Failing row contains`).
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// PostgREST's `like` pattern (`*` stands for `%`) as a case-sensitive SQLite `GLOB` pattern
/// with Postgres `LIKE` semantics: `%` any run, `_` one character, `\` escapes the next one.
pub fn like_to_glob(pattern: &str) -> Result<String, PgError> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(l) => push_glob_literal(&mut out, l),
                None => return Err(trailing_escape()),
            },
            l => push_glob_literal(&mut out, l),
        }
    }
    Ok(out)
}

fn push_glob_literal(out: &mut String, c: char) {
    match c {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        c => out.push(c),
    }
}

/// PostgREST's `ilike` pattern as a SQLite `LIKE … ESCAPE '\'` pattern. SQLite's `LIKE` folds
/// ASCII case only (there is no ICU in the bundled SQLite); Arabic has no case, and Latin
/// letters outside ASCII match only in the same case.
pub fn ilike_pattern(pattern: &str) -> Result<String, PgError> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push('%'),
            '\\' => match chars.next() {
                Some(l) => {
                    out.push('\\');
                    out.push(l);
                }
                None => return Err(trailing_escape()),
            },
            l => out.push(l),
        }
    }
    Ok(out)
}

fn trailing_escape() -> PgError {
    PgError::new("22025", "LIKE pattern must not end with escape character")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Fill;

    fn col(ty: ColType) -> Column {
        Column { name: "c", ty, nullable: true, fill: Fill::None, one_of: None }
    }

    #[test]
    fn uuids_are_canonicalised_or_refused() {
        let u = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
        assert_eq!(from_text(&col(ColType::Uuid), u), Ok(Value::Text(u.to_lowercase())));
        assert_eq!(
            from_text(&col(ColType::Uuid), "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
            Ok(Value::Text(u.to_lowercase()))
        );
        let e = from_text(&col(ColType::Uuid), "x'; DROP TABLE t; --").expect_err("not a uuid");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22P02", "invalid input syntax for type uuid: \"x'; DROP TABLE t; --\"")
        );
    }

    #[test]
    fn integers_are_checked_for_syntax_and_range() {
        assert_eq!(from_text(&col(ColType::Int8), " 42 "), Ok(Value::Integer(42)));
        assert_eq!(from_text(&col(ColType::Int4), "-7"), Ok(Value::Integer(-7)));
        assert_eq!(from_text(&col(ColType::Int4), "1.5").expect_err("fraction").code, "22P02");
        assert_eq!(from_text(&col(ColType::Int4), "3000000000").expect_err("range").code, "22003");
        assert_eq!(from_json(&col(ColType::Int8), &serde_json::json!(7)), Ok(Value::Integer(7)));
        assert_eq!(from_json(&col(ColType::Int8), &serde_json::json!("8")), Ok(Value::Integer(8)));
        assert_eq!(from_json(&col(ColType::Int8), &serde_json::json!(1.0)).expect_err("float").code, "22P02");
    }

    #[test]
    fn timestamps_normalise_and_bad_ones_are_22007() {
        assert_eq!(
            from_text(&col(ColType::Timestamptz), "2026-01-02T05:04:05+02:00"),
            Ok(Value::Text("2026-01-02T03:04:05.000000+00:00".into()))
        );
        let e = from_text(&col(ColType::Timestamptz), "soon").expect_err("bad");
        assert_eq!(
            (e.code, e.message.as_str()),
            ("22007", "invalid input syntax for type timestamp with time zone: \"soon\"")
        );
    }

    #[test]
    fn text_takes_json_scalars_as_their_text() {
        assert_eq!(from_json(&col(ColType::Text), &serde_json::json!(5)), Ok(Value::Text("5".into())));
        assert_eq!(from_json(&col(ColType::Text), &serde_json::json!({"a": 1})), Ok(Value::Text("{\"a\":1}".into())));
        assert_eq!(from_json(&col(ColType::Text), &serde_json::json!("a\u{0}b")).expect_err("nul").code, "22P05");
    }

    #[test]
    fn like_patterns_translate_to_glob() {
        assert_eq!(like_to_glob("*abc*").expect("ok"), "*abc*");
        assert_eq!(like_to_glob("a_c%").expect("ok"), "a?c*");
        assert_eq!(like_to_glob("[x]?\\_").expect("ok"), "[[]x][?]_");
        assert!(like_to_glob("a\\").is_err());
        assert_eq!(ilike_pattern("*Ab\\%*").expect("ok"), "%Ab\\%%");
    }
}
