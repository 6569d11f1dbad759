//! The request builder: [`Table`] picks the operation, [`Query`] adds filters and transforms
//! and runs it.
//!
//! Wire form (postgrest-js's, see `supabase-wire.md` §6.2): the query string is
//! form-encoded like `URLSearchParams` (`,` → `%2C`, space → `+`); reads send
//! `Accept-Profile: public`, writes `Content-Profile: public` and `Content-Type:
//! application/json`; preferences go comma-joined in one `Prefer` header; `.single()` asks for
//! `application/vnd.pgrst.object+json`. An array insert names its columns (`columns="a","b"`,
//! the union of the objects' keys) so that objects with fewer keys get NULL, or their column
//! default with [`Query::missing_default`].

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, RestError};
use super::filter::{Cond, Is};
use super::Rest;
use crate::project::send;

const SCHEMA: &str = "public";
const OBJECT: &str = "application/vnd.pgrst.object+json";

/// Sort direction of an [`order`](Query::order) term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    /// Sorts NULLs before other values.
    pub fn nulls_first(self) -> Sort {
        Sort { order: self, nulls_first: Some(true) }
    }

    /// Sorts NULLs after other values.
    pub fn nulls_last(self) -> Sort {
        Sort { order: self, nulls_first: Some(false) }
    }
}

/// A direction with an optional placement of NULLs (the server's default otherwise: last for
/// ascending, first for descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    order: Order,
    nulls_first: Option<bool>,
}

impl From<Order> for Sort {
    fn from(order: Order) -> Sort {
        Sort { order, nulls_first: None }
    }
}

/// What a write answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    /// Nothing (201/204, empty body): the default.
    Minimal,
    /// The written rows (shaped by [`Query::select`], else all columns).
    Representation,
}

/// How many rows the answer should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Many,
    /// Exactly one, as an object; anything else is `PGRST116` (406) from the server.
    Single,
    /// Zero or one: `null` or the object; more is `PGRST116` (checked here, as postgrest-js does).
    MaybeSingle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Merge,
    Ignore,
}

/// A successful answer with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    pub data: T,
    /// The total from `Content-Range` (`0-9/42` → 42), when a count was asked for.
    pub count: Option<u64>,
    pub status: u16,
}

/// `from(table)`: choose the operation.
#[derive(Debug, Clone)]
pub struct Table {
    rest: Rest,
    name: String,
}

impl Table {
    pub(crate) fn new(rest: Rest, name: String) -> Table {
        Table { rest, name }
    }

    fn query(self, method: Method) -> Query {
        Query::new(self.rest, vec!["rest".into(), "v1".into(), self.name], method)
    }

    /// Reads `columns` (`"*"`, `"id,content"`, `"alias:column"`); whitespace outside double
    /// quotes is dropped as postgrest-js does.
    pub fn select(self, columns: &str) -> Query {
        let mut q = self.query(Method::GET);
        q.select = Some(clean_select(columns));
        q
    }

    /// Inserts one row (a JSON object) or many (a JSON array of objects).
    pub fn insert(self, rows: impl Serialize) -> Query {
        self.query(Method::POST).with_body(rows, true)
    }

    /// Inserts rows, or merges them into the existing rows with the same key (the primary key,
    /// or the columns of [`Query::on_conflict`]); [`Query::ignore_duplicates`] keeps the
    /// existing rows instead.
    pub fn upsert(self, rows: impl Serialize) -> Query {
        let mut q = self.query(Method::POST).with_body(rows, true);
        q.resolution = Some(Resolution::Merge);
        q
    }

    /// Updates the rows the filters select with the columns of `patch` (a JSON object).
    /// Without a filter every row the caller may update is updated.
    pub fn update(self, patch: impl Serialize) -> Query {
        self.query(Method::PATCH).with_body(patch, false)
    }

    /// Deletes the rows the filters select. Without a filter every row the caller may delete
    /// is deleted.
    pub fn delete(self) -> Query {
        self.query(Method::DELETE)
    }
}

/// A request under construction; [`execute`](Query::execute) sends it.
#[derive(Debug, Clone)]
pub struct Query {
    rest: Rest,
    path: Vec<String>,
    method: Method,
    head: bool,
    select: Option<String>,
    filters: Vec<(String, String)>,
    order: Vec<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    columns: Option<String>,
    on_conflict: Option<String>,
    resolution: Option<Resolution>,
    returning: Option<Returning>,
    count: bool,
    missing_default: bool,
    shape: Shape,
    /// The JSON body, or why it could not be made (reported by `execute`).
    body: Option<Result<Value, String>>,
}

/// What goes on the wire, before the bearer token is added.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prepared {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

impl Query {
    fn new(rest: Rest, path: Vec<String>, method: Method) -> Query {
        Query {
            rest,
            path,
            method,
            head: false,
            select: None,
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
            columns: None,
            on_conflict: None,
            resolution: None,
            returning: None,
            count: false,
            missing_default: false,
            shape: Shape::Many,
            body: None,
        }
    }

    pub(crate) fn rpc(rest: Rest, name: String, args: impl Serialize) -> Query {
        let q = Query::new(rest, vec!["rest".into(), "v1".into(), "rpc".into(), name], Method::POST);
        let mut q = q.with_body(args, false);
        // `()` serialises to null: a function without arguments gets `{}`.
        if let Some(Ok(v @ Value::Null)) = &mut q.body {
            *v = Value::Object(Default::default());
        }
        q
    }

    fn with_body(mut self, body: impl Serialize, name_columns: bool) -> Query {
        let body = serde_json::to_value(body).map_err(|e| format!("the body does not serialise to JSON: {e}"));
        if let (true, Ok(Value::Array(rows))) = (name_columns, &body) {
            let mut names: Vec<&str> = Vec::new();
            for key in rows.iter().filter_map(Value::as_object).flat_map(|o| o.keys()) {
                if !names.contains(&key.as_str()) {
                    names.push(key);
                }
            }
            if !names.is_empty() {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                self.columns = Some(quoted.join(","));
            }
        }
        self.body = Some(body);
        self
    }

    /// The columns to return: for a read, what to read; for a write, the written rows are
    /// returned with these columns (implies [`Returning::Representation`]).
    pub fn select(mut self, columns: &str) -> Query {
        self.select = Some(clean_select(columns));
        if self.method != Method::GET {
            self.returning = Some(Returning::Representation);
        }
        self
    }

    /// Adds a condition (see [`Cond`]); conditions are ANDed.
    pub fn filter(mut self, cond: Cond) -> Query {
        self.filters.push(cond.to_param());
        self
    }

    pub fn eq(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::eq(column, value))
    }

    pub fn neq(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::neq(column, value))
    }

    pub fn gt(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::gt(column, value))
    }

    pub fn gte(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::gte(column, value))
    }

    pub fn lt(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::lt(column, value))
    }

    pub fn lte(self, column: &str, value: impl std::fmt::Display) -> Query {
        self.filter(Cond::lte(column, value))
    }

    pub fn like(self, column: &str, pattern: impl std::fmt::Display) -> Query {
        self.filter(Cond::like(column, pattern))
    }

    pub fn ilike(self, column: &str, pattern: impl std::fmt::Display) -> Query {
        self.filter(Cond::ilike(column, pattern))
    }

    pub fn in_<V: std::fmt::Display>(self, column: &str, values: impl IntoIterator<Item = V>) -> Query {
        self.filter(Cond::in_(column, values))
    }

    pub fn is(self, column: &str, value: Is) -> Query {
        self.filter(Cond::is(column, value))
    }

    pub fn is_null(self, column: &str) -> Query {
        self.filter(Cond::is_null(column))
    }

    /// Keeps the rows for which `cond` is false: `.not(Cond::is_null("deleted_at"))`.
    pub fn not(self, cond: Cond) -> Query {
        self.filter(!cond)
    }

    /// Keeps the rows for which any of `conds` holds: `or=(a.eq.1,b.is.null)`.
    pub fn or(self, conds: impl IntoIterator<Item = Cond>) -> Query {
        self.filter(Cond::or(conds))
    }

    /// Sorts by `column`; later calls add tie-breakers.
    pub fn order(mut self, column: &str, sort: impl Into<Sort>) -> Query {
        let sort = sort.into();
        let dir = match sort.order {
            Order::Asc => "asc",
            Order::Desc => "desc",
        };
        let nulls = match sort.nulls_first {
            None => "",
            Some(true) => ".nullsfirst",
            Some(false) => ".nullslast",
        };
        self.order.push(format!("{column}.{dir}{nulls}"));
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: u64) -> Query {
        self.limit = Some(n);
        self
    }

    /// Rows `from..=to` (0-based) of the result: `offset=from&limit=to-from+1`.
    pub fn range(mut self, from: u64, to: u64) -> Query {
        self.offset = Some(from);
        self.limit = Some((to + 1).saturating_sub(from));
        self
    }

    /// Asks for the total number of matching rows ([`Reply::count`]).
    pub fn count_exact(mut self) -> Query {
        self.count = true;
        self
    }

    /// Sends `HEAD` instead of `GET`: no rows, only the count (with [`Query::count_exact`]).
    pub fn head(mut self) -> Query {
        if self.method == Method::GET {
            self.head = true;
        }
        self
    }

    /// Exactly one row, as an object; zero or several rows fail with `PGRST116` (406).
    pub fn single(mut self) -> Query {
        self.shape = Shape::Single;
        self
    }

    /// Zero or one row: `null` or the object (deserialise into an `Option`); several rows fail
    /// with `PGRST116` (406).
    pub fn maybe_single(mut self) -> Query {
        self.shape = Shape::MaybeSingle;
        self
    }

    /// What a write answers with (default [`Returning::Minimal`]).
    pub fn returning(mut self, returning: Returning) -> Query {
        self.returning = Some(returning);
        self
    }

    /// The unique columns an upsert matches on (comma-separated), instead of the primary key.
    pub fn on_conflict(mut self, columns: &str) -> Query {
        self.on_conflict = Some(columns.to_string());
        self
    }

    /// Rows whose key already exists are skipped instead of merged or refused with `23505`:
    /// with client-made ids this makes an insert idempotent, so a retry is harmless.
    pub fn ignore_duplicates(mut self) -> Query {
        self.resolution = Some(Resolution::Ignore);
        self
    }

    /// Keys missing from some objects of an array insert take their column default instead
    /// of NULL (`Prefer: missing=default`).
    pub fn missing_default(mut self) -> Query {
        self.missing_default = true;
        self
    }

    /// Sends the request and deserialises the body into `T`: `Vec<Row>` for rows, `Row` after
    /// [`single`](Query::single), `Option<Row>` after [`maybe_single`](Query::maybe_single),
    /// `()` (or `Option<…>`) when there is no body (`Returning::Minimal`, `head`), or
    /// `serde_json::Value`.
    pub async fn execute<T: DeserializeOwned>(self) -> Result<T, RestError> {
        Ok(self.execute_full().await?.data)
    }

    /// [`execute`](Query::execute) with the count and the status.
    pub async fn execute_full<T: DeserializeOwned>(self) -> Result<Reply<T>, RestError> {
        let shape = self.shape;
        let prepared = self.prepare()?;
        let bearer = self.rest.bearer().await;
        let mut request = self.rest.project().request(prepared.method, prepared.url, &bearer);
        for (name, value) in prepared.headers {
            request = request.header(name, value);
        }
        if let Some(body) = prepared.body {
            request = request.body(body);
        }
        let answer = send(request).await.map_err(RestError::Network)?;
        if !answer.status.is_success() {
            return Err(RestError::Api(ApiError::decode(answer.status, &answer.headers, &answer.body)));
        }
        let data = decode_body(shape, &answer.body)?;
        Ok(Reply { data, count: total_of(&answer.headers), status: answer.status.as_u16() })
    }

    /// The wire form of this request (everything but the bearer).
    pub(crate) fn prepare(&self) -> Result<Prepared, RestError> {
        let mut url = self.rest.project().endpoint(self.path.iter().map(String::as_str));
        let write = self.method != Method::GET;
        {
            let mut q = url.query_pairs_mut();
            let select = match (&self.select, self.returning) {
                (Some(s), _) => Some(s.as_str()),
                (None, Some(Returning::Representation)) if write => Some("*"),
                _ => None,
            };
            if let Some(s) = select {
                q.append_pair("select", s);
            }
            if let Some(c) = &self.columns {
                q.append_pair("columns", c);
            }
            if let Some(c) = &self.on_conflict {
                q.append_pair("on_conflict", c);
            }
            for (k, v) in &self.filters {
                q.append_pair(k, v);
            }
            if !self.order.is_empty() {
                q.append_pair("order", &self.order.join(","));
            }
            if let Some(o) = self.offset {
                q.append_pair("offset", &o.to_string());
            }
            if let Some(l) = self.limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        let mut prefer: Vec<&str> = Vec::new();
        match self.resolution {
            Some(Resolution::Merge) => prefer.push("resolution=merge-duplicates"),
            Some(Resolution::Ignore) => prefer.push("resolution=ignore-duplicates"),
            None => {}
        }
        match self.returning {
            Some(Returning::Representation) if write => prefer.push("return=representation"),
            Some(Returning::Minimal) if write => prefer.push("return=minimal"),
            _ => {}
        }
        if self.count {
            prefer.push("count=exact");
        }
        if self.missing_default {
            prefer.push("missing=default");
        }
        if !prefer.is_empty() {
            headers.push(("Prefer", prefer.join(",")));
        }
        let accept = if self.shape == Shape::Single { OBJECT } else { "application/json" };
        headers.push(("Accept", accept.to_string()));
        let method = if self.head { Method::HEAD } else { self.method.clone() };
        let body = if write {
            headers.push(("Content-Profile", SCHEMA.to_string()));
            headers.push(("Content-Type", "application/json".to_string()));
            match &self.body {
                Some(Ok(v)) => Some(serde_json::to_vec(v).map_err(|e| RestError::Request(e.to_string()))?),
                Some(Err(e)) => return Err(RestError::Request(e.clone())),
                None => None,
            }
        } else {
            headers.push(("Accept-Profile", SCHEMA.to_string()));
            None
        };
        Ok(Prepared { method, url, headers, body })
    }
}

/// Whitespace outside double quotes removed, as postgrest-js does with `select`.
fn clean_select(columns: &str) -> String {
    let mut quoted = false;
    columns
        .chars()
        .filter(|c| {
            if *c == '"' {
                quoted = !quoted;
            }
            quoted || !c.is_whitespace()
        })
        .collect()
}

/// The total after `/` in `Content-Range` (`0-9/42`, `*/0`); `None` for `*` or no header.
fn total_of(headers: &HeaderMap) -> Option<u64> {
    let range = headers.get("content-range")?.to_str().ok()?;
    range.rsplit_once('/')?.1.trim().parse().ok()
}

fn decode_body<T: DeserializeOwned>(shape: Shape, bytes: &[u8]) -> Result<T, RestError> {
    let bad = |e: serde_json::Error| RestError::Decode(e.to_string());
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    if shape != Shape::MaybeSingle {
        return if empty {
            serde_json::from_value(Value::Null).map_err(bad)
        } else {
            serde_json::from_slice(bytes).map_err(bad)
        };
    }
    let value: Value = if empty { Value::Null } else { serde_json::from_slice(bytes).map_err(bad)? };
    let one = match value {
        Value::Array(mut rows) if rows.len() <= 1 => rows.pop().unwrap_or(Value::Null),
        Value::Array(rows) => {
            let body = serde_json::json!({
                "code": "PGRST116",
                "message": "JSON object requested, multiple (or no) rows returned",
                "details": format!("Results contain {} rows, application/vnd.pgrst.object+json requires 1 row", rows.len()),
                "hint": null,
            });
            let body = body.to_string();
            return Err(RestError::Api(ApiError::decode(
                StatusCode::NOT_ACCEPTABLE,
                &HeaderMap::new(),
                body.as_bytes(),
            )));
        }
        other => other,
    };
    serde_json::from_value(one).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Project;
    use serde_json::json;

    fn rest() -> Rest {
        Rest::new(Project::new("http://127.0.0.1:9", "anon").expect("valid"))
    }

    fn query_of(q: &Query) -> String {
        q.prepare().expect("prepares").url.query().unwrap_or("").to_string()
    }

    fn header<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
        p.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[test]
    fn reads_encode_like_url_search_params() {
        let q = rest()
            .from("todos")
            .select("id, name")
            .in_("name", ["a", "b,c"])
            .eq("title", "hello world")
            .order("id", Order::Desc)
            .order("name", Order::Asc.nulls_first())
            .range(10, 19);
        assert_eq!(
            query_of(&q),
            "select=id%2Cname&name=in.%28a%2C%22b%2Cc%22%29&title=eq.hello+world\
             &order=id.desc%2Cname.asc.nullsfirst&offset=10&limit=10"
        );
        let p = q.prepare().expect("prepares");
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.url.path(), "/rest/v1/todos");
        assert_eq!(header(&p, "Accept-Profile"), Some("public"));
        assert_eq!(header(&p, "Content-Type"), None);
        assert_eq!(p.body, None);
    }

    #[test]
    fn single_count_and_head_set_their_headers() {
        let p = rest().from("t").select("*").count_exact().single().prepare().expect("prepares");
        assert_eq!(header(&p, "Accept"), Some(OBJECT));
        assert_eq!(header(&p, "Prefer"), Some("count=exact"));
        let p = rest().from("t").select("*").count_exact().head().prepare().expect("prepares");
        assert_eq!(p.method, Method::HEAD);
    }

    #[test]
    fn array_inserts_name_the_union_of_their_columns() {
        let q = rest().from("t").insert(json!([{"a": 1, "b": 2}, {"b": 3, "c": 4}]));
        let p = q.prepare().expect("prepares");
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.url.query(), Some("columns=%22a%22%2C%22b%22%2C%22c%22"));
        assert_eq!(header(&p, "Prefer"), None, "minimal by default, like postgrest-js");
        assert_eq!(header(&p, "Content-Profile"), Some("public"));
        assert_eq!(header(&p, "Content-Type"), Some("application/json"));
        assert_eq!(p.body.as_deref(), Some(br#"[{"a":1,"b":2},{"b":3,"c":4}]"#.as_slice()));
        let p = rest().from("t").insert(json!({"a": 1})).select("a").prepare().expect("prepares");
        assert_eq!(p.url.query(), Some("select=a"));
        assert_eq!(header(&p, "Prefer"), Some("return=representation"));
    }

    #[test]
    fn upserts_carry_resolution_and_conflict_target() {
        let p = rest()
            .from("t")
            .upsert(json!({"id": 1}))
            .on_conflict("id")
            .returning(Returning::Representation)
            .prepare()
            .expect("prepares");
        assert_eq!(p.url.query(), Some("select=*&on_conflict=id"));
        assert_eq!(header(&p, "Prefer"), Some("resolution=merge-duplicates,return=representation"));
        let p = rest().from("t").insert(json!({"id": 1})).ignore_duplicates().prepare().expect("prepares");
        assert_eq!(header(&p, "Prefer"), Some("resolution=ignore-duplicates"));
    }

    #[test]
    fn updates_deletes_and_rpc_have_their_methods_and_paths() {
        let p = rest().from("t").update(json!({"x": 1})).eq("id", 1).prepare().expect("prepares");
        assert_eq!((p.method.clone(), p.url.query()), (Method::PATCH, Some("id=eq.1")));
        let p = rest().from("t").delete().eq("id", 1).prepare().expect("prepares");
        assert_eq!((p.method.clone(), p.body.clone()), (Method::DELETE, None));
        assert_eq!(header(&p, "Content-Type"), Some("application/json"), "postgrest-js sends it even on DELETE");
        let p = rest().rpc("get_live_metrics", ()).prepare().expect("prepares");
        assert_eq!((p.url.path(), p.body.as_deref()), ("/rest/v1/rpc/get_live_metrics", Some(b"{}".as_slice())));
    }

    #[test]
    fn a_body_that_does_not_serialise_is_a_permanent_request_error() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), "tuple keys are not JSON");
        let err = rest().from("t").insert(bad).prepare().expect_err("refused");
        assert!(matches!(err, RestError::Request(_)));
        assert!(!err.is_transient());
    }

    #[test]
    fn content_range_totals_are_read() {
        let mut h = HeaderMap::new();
        h.insert("content-range", "0-9/42".parse().expect("value"));
        assert_eq!(total_of(&h), Some(42));
        h.insert("content-range", "0-9/*".parse().expect("value"));
        assert_eq!(total_of(&h), None);
        h.insert("content-range", "*/0".parse().expect("value"));
        assert_eq!(total_of(&h), Some(0));
    }

    #[test]
    fn maybe_single_maps_zero_one_and_many_rows() {
        let none: Option<Value> = decode_body(Shape::MaybeSingle, b"[]").expect("zero rows");
        assert_eq!(none, None);
        let one: Option<Value> = decode_body(Shape::MaybeSingle, br#"[{"a":1}]"#).expect("one");
        assert_eq!(one, Some(json!({"a": 1})));
        let many = decode_body::<Option<Value>>(Shape::MaybeSingle, br#"[{"a":1},{"a":2}]"#);
        assert_eq!(many.expect_err("two rows").code(), Some("PGRST116"));
        let unit: () = decode_body(Shape::Many, b"").expect("empty body");
        assert_eq!(unit, ());
    }
}
