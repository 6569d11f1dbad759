//! Integration tests: the PostgREST subset at `/rest/v1`, against a real in-process server,
//! with the row-level rules checked from each side (who may, who may not).

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use super::common::*;

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn rows(&self) -> &Vec<Value> {
        self.body.as_array().unwrap_or_else(|| panic!("expected an array, got {} {}", self.status, self.body))
    }
}

async fn send(
    ts: &TestServer,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = ts.rest(method, path, bearer);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.expect("request is answered");
    let headers = resp.headers().clone();
    let (status, body) = json_of(resp).await;
    Resp { status, headers, body }
}

async fn get(ts: &TestServer, path: &str, bearer: &str) -> Resp {
    send(ts, Method::GET, path, bearer, None, &[]).await
}

/// POST with `return=representation`; asserts 201 and returns the rows.
async fn create(ts: &TestServer, table: &str, bearer: &str, body: Value) -> Vec<Value> {
    let r = send(ts, Method::POST, table, bearer, Some(body), &[("Prefer", "return=representation")]).await;
    assert_eq!(r.status, 201, "creating {table} must succeed: {}", r.body);
    r.rows().clone()
}

fn svc(ts: &TestServer) -> String {
    ts.server.service_role_key.clone()
}

fn anon(ts: &TestServer) -> String {
    ts.server.anon_key.clone()
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Three users and a private (direct) room: layla created it and is its admin, omar is a
/// member, sara is not in it. Two messages are in it.
struct World {
    ts: TestServer,
    layla: TestUser,
    omar: TestUser,
    sara: TestUser,
    room: String,
}

async fn world() -> World {
    let ts = TestServer::start().await;
    let layla = ts.user("layla").await;
    let omar = ts.user("omar").await;
    let sara = ts.user("sara").await;
    let room = uuid();
    let s = svc(&ts);
    create(
        &ts,
        "chat_rooms",
        &s,
        json!({"id": room, "name": "layla & omar", "kind": "direct", "created_by": layla.id}),
    )
    .await;
    create(
        &ts,
        "room_members",
        &s,
        json!([{"room_id": room, "user_id": layla.id, "role": "admin"}, {"room_id": room, "user_id": omar.id}]),
    )
    .await;
    create(
        &ts,
        "chat_messages",
        &s,
        json!([{"room_id": room, "user_id": layla.id, "content": "مرحبا"}, {"room_id": room, "user_id": omar.id, "content": "hello world"}]),
    )
    .await;
    World { ts, layla, omar, sara, room }
}

/// A document created by layla (its creator, hence an editor); returns its id.
async fn document(w: &World) -> String {
    let doc = uuid();
    let body = json!({"id": doc, "title": "plan", "created_by": w.layla.id});
    let rows = create(&w.ts, "collaborative_documents", &w.layla.token, body).await;
    assert_eq!(rows[0]["id"], json!(doc), "the creator sees the document it just made");
    doc
}

// ---------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn missing_api_key_is_refused_by_the_gateway() {
    let ts = TestServer::start().await;
    let resp = ts.http.get(ts.url("/rest/v1/profiles")).send().await.expect("answered");
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "No API key found in request");
}

#[tokio::test]
async fn expired_token_is_pgrst303_jwt_expired() {
    let ts = TestServer::start().await;
    let u = ts.user("layla").await;
    let expired = ts.token_for(&u.id, &u.email, -30);
    let r = get(&ts, "profiles", &expired).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"code": "PGRST303", "message": "JWT expired", "details": null, "hint": null}));
    assert!(r.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")), "401 carries WWW-Authenticate");
}

#[tokio::test]
async fn badly_signed_unsigned_and_malformed_tokens_are_pgrst301() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let ts = TestServer::start().await;
    let u = ts.user("layla").await;
    let claims = ruwad_server::jwt::Claims {
        sub: Some(u.id.clone()),
        role: "authenticated".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        iat: None,
        session_id: None,
        extra: Default::default(),
    };
    let other_secret = ruwad_server::jwt::sign(&claims, b"not the project secret");
    let r = get(&ts, "profiles", &other_secret).await;
    assert_eq!((r.status, r.code()), (401, "PGRST301"), "{}", r.body);
    assert_eq!(r.body["message"], "JWT cryptographic operation failed");

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(br#"{"role":"service_role","exp":9999999999}"#);
    let r = get(&ts, "profiles", &format!("{header}.{payload}.")).await;
    assert_eq!((r.status, r.code()), (401, "PGRST301"), "alg none must not pass: {}", r.body);
    assert_eq!(r.body["message"], "Wrong or unsupported encoding algorithm");

    let r = get(&ts, "profiles", "garbage").await;
    assert_eq!((r.status, r.code()), (401, "PGRST301"));
    assert_eq!(r.body["message"], "Expected 3 parts in JWT; got 1");
}

// ---------------------------------------------------------------------------------------
// Tables, columns, select

#[tokio::test]
async fn unknown_and_auth_tables_are_pgrst205() {
    let w = world().await;
    for table in ["nope", "auth_users", "auth_refresh_tokens", "schema_migrations"] {
        let r = get(&w.ts, table, &svc(&w.ts)).await;
        assert_eq!(r.status, 404, "{table}");
        assert_eq!(r.code(), "PGRST205");
        assert_eq!(r.body["message"], format!("Could not find the table 'public.{table}' in the schema cache"));
    }
}

#[tokio::test]
async fn select_keeps_column_order_aliases_and_json_types() {
    let w = world().await;
    let s = svc(&w.ts);
    create(&w.ts, "user_activities", &s, json!({"user_id": w.layla.id, "kind": "login"})).await;
    let r = get(&w.ts, "user_activities?select=kind,who:user_id,id", &w.omar.token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    let row = r.rows()[0].as_object().expect("object");
    assert_eq!(row.keys().collect::<Vec<_>>(), vec!["kind", "who", "id"], "keys come in the selected order");
    assert!(row["id"].is_i64(), "integers are JSON numbers");
    assert_eq!(row["who"], json!(w.layla.id));
    let r = get(&w.ts, "user_activities?select=id,nope", &w.omar.token).await;
    assert_eq!((r.status, r.code()), (400, "42703"));
    assert_eq!(r.body["message"], "column user_activities.nope does not exist");
    let r = get(&w.ts, "user_activities?select=*,profiles(*)", &w.omar.token).await;
    assert_eq!((r.status, r.code()), (400, "PGRST200"), "embedding is refused clearly");
}

// ---------------------------------------------------------------------------------------
// Filters

/// Five activities for layla, kinds `alpha`…, `ref_id` set on two of them; returns the ids.
async fn activities(w: &World) -> Vec<i64> {
    let s = svc(&w.ts);
    let reff = uuid();
    let rows = create(
        &w.ts,
        "user_activities",
        &s,
        json!([
            {"user_id": w.layla.id, "kind": "Alpha"},
            {"user_id": w.layla.id, "kind": "beta", "ref_id": reff},
            {"user_id": w.layla.id, "kind": "gamma,delta"},
            {"user_id": w.layla.id, "kind": "alpha (2)", "ref_id": reff},
            {"user_id": w.layla.id, "kind": "x y"},
        ]),
    )
    .await;
    rows.iter().map(|r| r["id"].as_i64().expect("id")).collect()
}

fn kinds(r: &Resp) -> Vec<String> {
    r.rows().iter().map(|x| x["kind"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn every_operator_and_its_negation_filters_rows() {
    let w = world().await;
    let ids = activities(&w).await;
    let t = &w.omar.token;
    let q = |f: String| format!("user_activities?select=kind&order=id&{f}");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("id=eq.{}", ids[1]), vec!["beta"]),
        (format!("id=neq.{}", ids[1]), vec!["Alpha", "gamma,delta", "alpha (2)", "x y"]),
        (format!("id=gt.{}", ids[3]), vec!["x y"]),
        (format!("id=gte.{}", ids[3]), vec!["alpha (2)", "x y"]),
        (format!("id=lt.{}", ids[1]), vec!["Alpha"]),
        (format!("id=lte.{}", ids[1]), vec!["Alpha", "beta"]),
        (format!("id=not.lte.{}", ids[1]), vec!["gamma,delta", "alpha (2)", "x y"]),
        ("kind=like.alpha*".into(), vec!["alpha (2)"]),
        ("kind=ilike.alpha*".into(), vec!["Alpha", "alpha (2)"]),
        ("kind=not.ilike.*a*".into(), vec!["x y"]),
        ("kind=like.*_*".into(), vec!["Alpha", "beta", "gamma,delta", "alpha (2)", "x y"]),
        ("kind=in.(beta,\"gamma,delta\",\"alpha (2)\")".into(), vec!["beta", "gamma,delta", "alpha (2)"]),
        ("kind=not.in.(beta,Alpha)".into(), vec!["gamma,delta", "alpha (2)", "x y"]),
        ("kind=in.()".into(), vec![]),
        ("ref_id=is.null".into(), vec!["Alpha", "gamma,delta", "x y"]),
        ("ref_id=not.is.null".into(), vec!["beta", "alpha (2)"]),
        ("kind=eq.gamma,delta".into(), vec!["gamma,delta"]),
    ];
    for (filter, want) in cases {
        let r = get(&w.ts, &q(filter.clone()), t).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(kinds(&r), want, "filter {filter}");
    }
}

#[tokio::test]
async fn or_and_trees_nest_negate_and_take_quoted_values() {
    let w = world().await;
    let ids = activities(&w).await;
    let t = &w.omar.token;
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("or=(kind.eq.beta,kind.eq.\"gamma,delta\")".into(), vec!["beta", "gamma,delta"]),
        (format!("or=(kind.eq.\"x y\",and(id.gt.{},id.lt.{}))", ids[0], ids[2]), vec!["beta", "x y"]),
        ("or=(kind.like.alpha*,ref_id.not.is.null)".into(), vec!["beta", "alpha (2)"]),
        ("not.or=(kind.eq.beta,kind.ilike.*alpha*)".into(), vec!["gamma,delta", "x y"]),
        (format!("and=(id.gte.{},not.or(kind.eq.beta,kind.in.(\"x y\")))", ids[1]), vec!["gamma,delta", "alpha (2)"]),
        ("or=(kind.eq.\"alpha (2)\")&kind=like.*(*".into(), vec!["alpha (2)"]),
    ];
    for (filter, want) in cases {
        let r = get(&w.ts, &format!("user_activities?select=kind&order=id&{filter}"), t).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(kinds(&r), want, "filter {filter}");
    }
}

#[tokio::test]
async fn plus_in_the_query_string_is_a_space_and_percent_escapes_decode() {
    let w = world().await;
    activities(&w).await;
    let r = get(&w.ts, "user_activities?select=kind&kind=eq.x+y", &w.omar.token).await;
    assert_eq!(kinds(&r), vec!["x y"], "form encoding: + is a space");
    let r =
        get(&w.ts, "user_activities?select=kind&kind=in.%28beta%2C%22gamma%2Cdelta%22%29&order=id.desc", &w.omar.token)
            .await;
    assert_eq!(kinds(&r), vec!["gamma,delta", "beta"]);
}

#[tokio::test]
async fn values_that_look_like_sql_are_only_values() {
    let w = world().await;
    let evil = "'); DROP TABLE chat_messages; --";
    let rows = create(
        &w.ts,
        "chat_messages",
        &w.omar.token,
        json!({"room_id": w.room, "user_id": w.omar.id, "content": evil}),
    )
    .await;
    assert_eq!(rows[0]["content"], evil, "stored verbatim");
    let path = format!("chat_messages?select=content&content=eq.{}", urlencode(evil));
    let r = get(&w.ts, &path, &w.omar.token).await;
    assert_eq!(r.rows().len(), 1, "found by exact value: {}", r.body);
    let r = get(&w.ts, &format!("chat_messages?or=(content.eq.\"{evil}\",content.eq.x)&select=content"), &w.omar.token)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&w.ts, "chat_messages?id=eq.1%27%20OR%20%271%27=%271", &w.omar.token).await;
    assert_eq!((r.status, r.code()), (400, "22P02"), "a uuid column types the value");
    let r = get(&w.ts, "chat_messages?select=content", &svc(&w.ts)).await;
    assert_eq!(r.rows().len(), 3, "the table is intact");
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn values_are_typed_by_their_column() {
    let w = world().await;
    let ids = activities(&w).await;
    let t = &w.omar.token;
    // Integer comparison: "9" < "10" numerically, not as text.
    let r = get(&w.ts, &format!("user_activities?select=id&id=lt.{}", ids[0] + 10), t).await;
    assert_eq!(r.rows().len(), 5, "{}", r.body);
    let r = get(&w.ts, "user_activities?id=eq.abc", t).await;
    assert_eq!((r.status, r.code()), (400, "22P02"));
    assert_eq!(r.body["message"], "invalid input syntax for type bigint: \"abc\"");
    let r = get(&w.ts, "chat_messages?room_id=eq.not-a-uuid", t).await;
    assert_eq!((r.status, r.code()), (400, "22P02"));
    assert_eq!(r.body["message"], "invalid input syntax for type uuid: \"not-a-uuid\"");
    // An upper-case uuid matches the stored canonical form.
    let r = get(&w.ts, &format!("chat_messages?room_id=eq.{}", w.room.to_uppercase()), t).await;
    assert_eq!(r.rows().len(), 2);
    // Timestamps are normalised: an offset form compares correctly with stored UTC.
    let s = svc(&w.ts);
    create(
        &w.ts,
        "challenges",
        &s,
        json!({"title": "deadline", "status": "open", "deadline": "2030-01-01T12:00:00Z", "created_by": w.layla.id}),
    )
    .await;
    let r = get(&w.ts, "challenges?select=title&deadline=eq.2030-01-01T14:00:00%2B02:00", t).await;
    assert_eq!(r.rows().len(), 1, "{}", r.body);
    let r = get(&w.ts, "challenges?select=title&deadline=gt.2030-01-01T13:00:00%2B02:00", t).await;
    assert_eq!(r.rows().len(), 1);
    let r = get(&w.ts, "challenges?deadline=gt.tomorrow", t).await;
    assert_eq!((r.status, r.code()), (400, "22007"));
}

#[tokio::test]
async fn bad_filter_syntax_is_pgrst100() {
    let w = world().await;
    let t = &w.omar.token;
    let r = get(&w.ts, "user_activities?id=foo.1", t).await;
    assert_eq!((r.status, r.code()), (400, "PGRST100"));
    assert_eq!(r.body["message"], "\"failed to parse filter (foo.1)\" (line 1, column 5)");
    assert_eq!(r.body["details"], "unknown single value operator foo");
    for bad in
        ["id=in.(1,2", "or=(id.eq.1", "or=(id.eq.1,)", "order=id.up", "select=id,", "id=is.maybe", "not.or=id.eq.1"]
    {
        let r = get(&w.ts, &format!("user_activities?{bad}"), t).await;
        assert_eq!((r.status, r.code()), (400, "PGRST100"), "{bad}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap_or("").starts_with("\"failed to parse"), "{bad}: {}", r.body);
    }
    // PostgREST would ignore a pair without an operator; here it is an error, so a typo
    // cannot widen a PATCH to every row.
    let r = send(
        &w.ts,
        Method::PATCH,
        "chat_messages?content=eqq.hello",
        &svc(&w.ts),
        Some(json!({"content": "oops"})),
        &[],
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "PGRST100"), "{}", r.body);
    assert_eq!(get(&w.ts, "chat_messages?content=eq.oops", &svc(&w.ts)).await.rows().len(), 0);
    let r = get(&w.ts, "user_activities?kind=fts.x", t).await;
    assert_eq!((r.status, r.code()), (400, "PGRST127"), "unsupported operators say so");
    let r = get(&w.ts, "user_activities?id=like.1*", t).await;
    assert_eq!((r.status, r.code()), (404, "42883"), "like on a bigint: operator does not exist");
}

// ---------------------------------------------------------------------------------------
// Order, slices, counts

#[tokio::test]
async fn order_sorts_by_several_columns_with_postgres_null_placement() {
    let w = world().await;
    let s = svc(&w.ts);
    for (title, status, deadline) in [
        ("a", "open", Some("2030-01-02T00:00:00Z")),
        ("b", "open", None),
        ("c", "closed", Some("2030-01-01T00:00:00Z")),
        ("d", "closed", None),
    ] {
        create(
            &w.ts,
            "challenges",
            &s,
            json!({"title": title, "status": status, "deadline": deadline, "created_by": w.layla.id}),
        )
        .await;
    }
    let titles = |r: &Resp| r.rows().iter().map(|x| x["title"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    let t = &w.omar.token;
    let r = get(&w.ts, "challenges?select=title&order=deadline.asc,title.asc", t).await;
    assert_eq!(titles(&r), ["c", "a", "b", "d"], "asc puts nulls last");
    let r = get(&w.ts, "challenges?select=title&order=deadline.desc,title.desc", t).await;
    assert_eq!(titles(&r), ["d", "b", "a", "c"], "desc puts nulls first");
    let r = get(&w.ts, "challenges?select=title&order=deadline.asc.nullsfirst,title", t).await;
    assert_eq!(titles(&r), ["b", "d", "c", "a"]);
    let r = get(&w.ts, "challenges?select=title&order=deadline.desc.nullslast,title", t).await;
    assert_eq!(titles(&r), ["a", "c", "b", "d"]);
    let r = get(&w.ts, "challenges?select=title&order=status.desc,title.desc", t).await;
    assert_eq!(titles(&r), ["b", "a", "d", "c"]);
}

#[tokio::test]
async fn limit_offset_range_and_exact_count_shape_the_slice() {
    let w = world().await;
    activities(&w).await;
    let t = &w.omar.token;
    let r = get(&w.ts, "user_activities?order=id&limit=2", t).await;
    assert_eq!((r.status, r.rows().len()), (200, 2));
    assert_eq!(r.header("content-range"), Some("0-1/*"), "Content-Range is always sent on reads");
    let r =
        send(&w.ts, Method::GET, "user_activities?order=id&limit=2&offset=1", t, None, &[("Prefer", "count=exact")])
            .await;
    assert_eq!(r.status, 206, "a partial slice with a known total is 206");
    assert_eq!(r.header("content-range"), Some("1-2/5"));
    let r = send(&w.ts, Method::GET, "user_activities?order=id", t, None, &[("Prefer", "count=exact")]).await;
    assert_eq!((r.status, r.header("content-range")), (200, Some("0-4/5")));
    let r = send(&w.ts, Method::GET, "user_activities?order=id", t, None, &[("Range", "1-3"), ("Range-Unit", "items")])
        .await;
    assert_eq!((r.rows().len(), r.header("content-range")), (3, Some("1-3/*")));
    let r = send(&w.ts, Method::GET, "user_activities?order=id&limit=2", t, None, &[("Range", "1-3")]).await;
    assert_eq!(r.header("content-range"), Some("1-1/*"), "limit (rows 0-1) and Range (1-3) intersect");
    let r = send(&w.ts, Method::GET, "user_activities?kind=eq.none", t, None, &[("Prefer", "count=exact")]).await;
    assert_eq!((r.status, r.header("content-range")), (200, Some("*/0")));
    assert_eq!(r.body, json!([]));
    let r = send(&w.ts, Method::GET, "user_activities?offset=9", t, None, &[("Prefer", "count=exact")]).await;
    assert_eq!((r.status, r.code()), (416, "PGRST103"));
    assert_eq!(r.body["details"], "An offset of 9 was requested, but there are only 5 rows.");
    let r = send(&w.ts, Method::GET, "user_activities", t, None, &[("Range", "5-1")]).await;
    assert_eq!((r.status, r.code()), (416, "PGRST103"));
    let r = get(&w.ts, "user_activities?limit=-1", t).await;
    assert_eq!((r.status, r.code()), (416, "PGRST103"));
}

#[tokio::test]
async fn single_object_accept_wants_exactly_one_row() {
    let w = world().await;
    let ids = activities(&w).await;
    let one = [("Accept", "application/vnd.pgrst.object+json")];
    let r = send(&w.ts, Method::GET, &format!("user_activities?id=eq.{}", ids[0]), &w.omar.token, None, &one).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_object(), "one row comes back as an object: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/vnd.pgrst.object+json; charset=utf-8"));
    for (filter, n) in [("id=eq.0", 0), ("id=gt.0", 5)] {
        let r = send(&w.ts, Method::GET, &format!("user_activities?{filter}"), &w.omar.token, None, &one).await;
        assert_eq!((r.status, r.code()), (406, "PGRST116"));
        assert_eq!(r.body["message"], "JSON object requested, multiple (or no) rows returned");
        assert_eq!(r.body["details"], format!("The result contains {n} rows"));
    }
    let r = send(&w.ts, Method::GET, "user_activities", &w.omar.token, None, &[("Accept", "text/csv")]).await;
    assert_eq!((r.status, r.code()), (406, "PGRST107"));
    let r = send(&w.ts, Method::GET, "user_activities", &w.omar.token, None, &[("Accept-Profile", "private")]).await;
    assert_eq!((r.status, r.code()), (406, "PGRST106"));
    let r =
        send(&w.ts, Method::GET, "user_activities", &w.omar.token, None, &[("Prefer", "handling=strict, colour=blue")])
            .await;
    assert_eq!((r.status, r.code()), (400, "PGRST122"));
    let r = send(&w.ts, Method::PUT, "user_activities", &w.omar.token, Some(json!({})), &[]).await;
    assert_eq!((r.status, r.code()), (405, "PGRST117"));
    let r = get(&w.ts, "user_activities/1", &w.omar.token).await;
    assert_eq!((r.status, r.code()), (404, "PGRST125"));
}

#[tokio::test]
async fn head_returns_the_headers_without_a_body() {
    let w = world().await;
    activities(&w).await;
    let resp =
        w.ts.rest(Method::HEAD, "user_activities?limit=2", &w.omar.token)
            .header("Prefer", "count=exact")
            .send()
            .await
            .expect("answered");
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.headers().get("content-range").and_then(|v| v.to_str().ok()), Some("0-1/5"));
    assert!(resp.bytes().await.expect("body").is_empty(), "HEAD has no body");
}

// ---------------------------------------------------------------------------------------
// Inserts and upserts

#[tokio::test]
async fn insert_fills_server_columns_and_honours_return_modes() {
    let w = world().await;
    let t = &w.omar.token;
    let body = json!({"room_id": w.room, "user_id": w.omar.id, "content": "hi", "created_at": "1999-01-01T00:00:00Z"});
    let r = send(&w.ts, Method::POST, "chat_messages", t, Some(body.clone()), &[]).await;
    assert_eq!((r.status, &r.body), (201, &Value::Null), "default return=minimal: 201 without body");
    let r = send(
        &w.ts,
        Method::POST,
        "chat_messages?select=content,created_at,type,id",
        t,
        Some(body),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.status, 201);
    let row = &r.rows()[0];
    assert_eq!(row.as_object().map(|o| o.len()), Some(4), "select= shapes the representation");
    assert!(
        row["created_at"].as_str().is_some_and(|c| c.starts_with("20") && !c.starts_with("1999")),
        "server time wins: {row}"
    );
    assert_eq!(row["type"], "text", "column default");
    assert!(uuid::Uuid::parse_str(row["id"].as_str().unwrap_or("")).is_ok(), "random uuid default");
    let id = uuid();
    let r = send(
        &w.ts,
        Method::POST,
        "chat_messages",
        t,
        Some(json!({"id": id, "room_id": w.room, "user_id": w.omar.id, "content": "located"})),
        &[("Prefer", "return=headers-only")],
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some(format!("/chat_messages?id=eq.{id}").as_str()));
    let r = send(
        &w.ts,
        Method::POST,
        "user_activities",
        t,
        Some(json!({"user_id": w.omar.id, "kind": "x", "id": 999999})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "428C9"), "a server sequence is GENERATED ALWAYS: {}", r.body);
    assert_eq!(r.body["message"], "cannot insert a non-DEFAULT value into column \"id\"");
}

#[tokio::test]
async fn insert_array_with_different_keys_uses_defaults_for_missing_ones() {
    let w = world().await;
    let rows = create(
        &w.ts,
        "chat_messages",
        &w.omar.token,
        json!([
            {"room_id": w.room, "user_id": w.omar.id, "content": "a"},
            {"room_id": w.room, "user_id": w.omar.id, "content": "b", "type": "file"}
        ]),
    )
    .await;
    assert_eq!((rows[0]["type"].as_str(), rows[1]["type"].as_str()), (Some("text"), Some("file")));
    // With columns= (what supabase-js sends for arrays) a missing key is NULL unless missing=default.
    let body = json!([{"room_id": w.room, "user_id": w.omar.id, "content": "c", "type": "file"}, {"room_id": w.room, "user_id": w.omar.id, "content": "d"}]);
    let cols = "chat_messages?columns=%22room_id%22,%22user_id%22,%22content%22,%22type%22";
    let r = send(&w.ts, Method::POST, cols, &w.omar.token, Some(body.clone()), &[]).await;
    assert_eq!((r.status, r.code()), (400, "23502"), "type is NOT NULL: {}", r.body);
    let r = send(
        &w.ts,
        Method::POST,
        cols,
        &w.omar.token,
        Some(body),
        &[("Prefer", "missing=default, return=representation")],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.rows()[1]["type"], "text");
    assert_eq!(r.header("preference-applied"), Some("missing=default, return=representation"));
}

#[tokio::test]
async fn insert_array_is_all_or_nothing() {
    let w = world().await;
    let mut feed = w.ts.server.state.db.changes();
    let dup = uuid();
    let r = send(
        &w.ts,
        Method::POST,
        "chat_messages",
        &w.omar.token,
        Some(json!([
            {"id": dup, "room_id": w.room, "user_id": w.omar.id, "content": "first"},
            {"id": uuid(), "room_id": w.room, "user_id": w.omar.id, "content": "second"},
            {"id": dup, "room_id": w.room, "user_id": w.omar.id, "content": "duplicate"}
        ])),
        &[],
    )
    .await;
    assert_eq!((r.status, r.code()), (409, "23505"), "{}", r.body);
    assert_eq!(r.body["message"], "duplicate key value violates unique constraint \"chat_messages_pkey\"");
    assert_eq!(r.body["details"], format!("Key (id)=({dup}) already exists."));
    let r = get(&w.ts, "chat_messages?select=content", &svc(&w.ts)).await;
    assert_eq!(r.rows().len(), 2, "no row of the failed array was kept");
    assert!(feed.try_recv().is_err(), "a rolled-back write publishes nothing");
}

#[tokio::test]
async fn insert_errors_carry_postgres_codes_and_messages() {
    let w = world().await;
    let t = &w.omar.token;
    let post = |body: Value| send(&w.ts, Method::POST, "chat_messages", t, Some(body), &[]);
    let r = post(json!({"room_id": w.room, "user_id": w.omar.id, "content": "x", "colour": "red"})).await;
    assert_eq!((r.status, r.code()), (400, "PGRST204"));
    assert_eq!(r.body["message"], "Could not find the 'colour' column of 'chat_messages' in the schema cache");
    let r = post(json!({"room_id": "nope", "user_id": w.omar.id, "content": "x"})).await;
    assert_eq!((r.status, r.code()), (400, "22P02"));
    assert_eq!(r.body["message"], "invalid input syntax for type uuid: \"nope\"");
    let r = post(json!({"room_id": w.room, "user_id": w.omar.id, "content": "x", "type": "video"})).await;
    assert_eq!((r.status, r.code()), (400, "23514"));
    assert_eq!(
        r.body["message"],
        "new row for relation \"chat_messages\" violates check constraint \"chat_messages_type_check\""
    );
    assert!(r.body["details"].as_str().is_some_and(|d| d.starts_with("Failing row contains (")), "{}", r.body);
    let r = post(json!({"room_id": w.room, "user_id": w.omar.id, "content": null})).await;
    assert_eq!((r.status, r.code()), (400, "23502"));
    assert_eq!(
        r.body["message"],
        "null value in column \"content\" of relation \"chat_messages\" violates not-null constraint"
    );
    let ghost = uuid();
    let r = post(json!({"room_id": w.room, "user_id": w.omar.id, "content": "x", "reply_to": ghost})).await;
    assert_eq!((r.status, r.code()), (409, "23503"));
    assert_eq!(
        r.body["message"],
        "insert or update on table \"chat_messages\" violates foreign key constraint \"chat_messages_reply_to_fkey\""
    );
    assert_eq!(r.body["details"], format!("Key (reply_to)=({ghost}) is not present in table \"chat_messages\"."));
    let resp =
        w.ts.rest(Method::POST, "chat_messages", t)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("answered");
    let (status, body) = json_of(resp).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("PGRST102")));
    assert_eq!(body["message"], "Empty or invalid json");
    let big = "x".repeat(6 * 1024 * 1024);
    let resp =
        w.ts.rest(Method::POST, "chat_messages", t)
            .header("Content-Type", "application/json")
            .body(big)
            .send()
            .await
            .expect("answered");
    assert_eq!(resp.status().as_u16(), 413, "oversized body");
    let r = get(&w.ts, "chat_messages", &svc(&w.ts)).await;
    assert_eq!(r.rows().len(), 2, "none of the refused inserts left a row");
}

#[tokio::test]
async fn merge_upserts_need_update_privilege_on_every_sent_column_and_ignore_duplicates_skips() {
    let w = world().await;
    let t = &w.omar.token;
    let merge = [("Prefer", "resolution=merge-duplicates, return=representation")];
    // PostgREST's DO UPDATE SET lists every payload column, the conflict key included; no role
    // may update key columns, so a merge is refused (as on Supabase with the same grants).
    let membership = json!({"room_id": w.room, "user_id": w.layla.id, "last_read_at": "2030-05-05T05:05:05Z"});
    let r =
        send(&w.ts, Method::POST, "room_members?on_conflict=room_id,user_id", &w.layla.token, Some(membership), &merge)
            .await;
    assert_eq!((r.status, r.code()), (403, "42501"), "{}", r.body);
    let svc_profile = json!({"id": w.omar.id, "display_name": "by service"});
    let r = send(&w.ts, Method::POST, "profiles", &svc(&w.ts), Some(svc_profile), &merge).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "service_role holds no UPDATE on key columns either: {}", r.body);
    let r = get(&w.ts, &format!("profiles?id=eq.{}&select=display_name", w.omar.id), t).await;
    assert_eq!(r.body, json!([{"display_name": "omar"}]), "a refused merge changes nothing");
    // The idempotent retry of a message: ignore-duplicates keeps the first version.
    let id = uuid();
    let msg = |content: &str| json!({"id": id, "room_id": w.room, "user_id": w.omar.id, "content": content});
    let ignore = [("Prefer", "resolution=ignore-duplicates, return=representation")];
    let r = send(&w.ts, Method::POST, "chat_messages", t, Some(msg("once")), &ignore).await;
    assert_eq!(r.rows().len(), 1);
    let r = send(&w.ts, Method::POST, "chat_messages", t, Some(msg("twice")), &ignore).await;
    assert_eq!((r.status, r.rows().len()), (201, 0), "a duplicate is skipped: {}", r.body);
    let r = get(&w.ts, &format!("chat_messages?id=eq.{id}&select=content"), t).await;
    assert_eq!(r.body, json!([{"content": "once"}]));
    let r = send(&w.ts, Method::POST, "chat_messages", t, Some(msg("edit")), &merge).await;
    assert_eq!((r.status, r.code()), (403, "42501"));
    assert_eq!(r.body["message"], "permission denied for table chat_messages");
}

#[tokio::test]
async fn upsert_target_must_be_a_unique_key() {
    let w = world().await;
    let doc = document(&w).await;
    let id = uuid();
    let update = json!({"id": id, "document_id": doc, "user_id": w.layla.id, "update": "AAEC"});
    let ignore = [("Prefer", "resolution=ignore-duplicates, return=representation")];
    let r = send(&w.ts, Method::POST, "document_updates?on_conflict=id", &w.layla.token, Some(update.clone()), &ignore)
        .await;
    assert_eq!((r.status, r.rows().len()), (201, 1), "{}", r.body);
    let r = send(&w.ts, Method::POST, "document_updates?on_conflict=id", &w.layla.token, Some(update.clone()), &ignore)
        .await;
    assert_eq!((r.status, r.rows().len()), (201, 0), "the retry is a no-op");
    let r = send(
        &w.ts,
        Method::POST,
        "document_updates?on_conflict=user_id",
        &w.layla.token,
        Some(update.clone()),
        &ignore,
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "42P10"));
    let r = send(&w.ts, Method::POST, "document_updates", &w.layla.token, Some(update), &[]).await;
    assert_eq!((r.status, r.code()), (409, "23505"), "a plain insert of the same id is a unique violation");
    assert_eq!(r.body["message"], "duplicate key value violates unique constraint \"document_updates_id_key\"");
}

#[tokio::test]
async fn upsert_cannot_merge_into_a_profile_and_patch_changes_only_ones_own() {
    let w = world().await;
    for (who, target) in [(&w.omar, &w.layla), (&w.omar, &w.omar)] {
        let r = send(
            &w.ts,
            Method::POST,
            "profiles",
            &who.token,
            Some(json!({"id": target.id, "display_name": "hijacked"})),
            &[("Prefer", "resolution=merge-duplicates")],
        )
        .await;
        assert_eq!((r.status, r.code()), (403, "42501"), "{}", r.body);
    }
    let r = get(&w.ts, &format!("profiles?id=eq.{}&select=display_name", w.layla.id), &w.omar.token).await;
    assert_eq!(r.body, json!([{"display_name": "layla"}]));
    let patch = |id: &str| format!("profiles?id=eq.{id}");
    let r = send(
        &w.ts,
        Method::PATCH,
        &patch(&w.layla.id),
        &w.omar.token,
        Some(json!({"display_name": "hijacked"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!((r.status, r.rows().len()), (200, 0), "someone else's profile is not touched: {}", r.body);
    let r = send(
        &w.ts,
        Method::PATCH,
        &patch(&w.omar.id),
        &w.omar.token,
        Some(json!({"display_name": "Omar", "locale": "ar"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.status, 200, "own profile changes: {}", r.body);
    assert_eq!(r.rows()[0]["display_name"], "Omar");
}

// ---------------------------------------------------------------------------------------
// Updates and deletes

#[tokio::test]
async fn patch_changes_own_rows_and_silently_skips_others() {
    let w = world().await;
    let path = |extra: &str| format!("chat_messages?room_id=eq.{}{extra}", w.room);
    let r = send(&w.ts, Method::PATCH, &path(""), &w.omar.token, Some(json!({"content": "edited"})), &[]).await;
    assert_eq!((r.status, &r.body), (204, &Value::Null), "no representation: 204");
    let r = get(&w.ts, &format!("{}&select=content&order=created_at,content", path("")), &w.omar.token).await;
    let contents: Vec<&str> = r.rows().iter().filter_map(|x| x["content"].as_str()).collect();
    assert!(contents.contains(&"مرحبا") && contents.contains(&"edited"), "only omar's message changed: {contents:?}");
    let r = send(
        &w.ts,
        Method::PATCH,
        &path("&select=content,edited_at"),
        &w.layla.token,
        Some(json!({"content": "layla edited", "edited_at": "2030-01-01T00:00:00Z"})),
        &[("Prefer", "return=representation, count=exact")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!([{"content": "layla edited", "edited_at": "2030-01-01T00:00:00.000000+00:00"}]));
    assert_eq!(r.header("content-range"), Some("0-0/1"));
    let r = send(
        &w.ts,
        Method::PATCH,
        &path(""),
        &w.sara.token,
        Some(json!({"content": "vandal"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!((r.status, &r.body), (200, &json!([])), "a non-member touches nothing, without an error");
}

#[tokio::test]
async fn patch_refuses_columns_the_role_may_not_update() {
    let w = world().await;
    let path = format!("chat_messages?user_id=eq.{}", w.omar.id);
    for body in
        [json!({"room_id": uuid()}), json!({"created_at": "2020-01-01T00:00:00Z"}), json!({"user_id": w.layla.id})]
    {
        let r = send(&w.ts, Method::PATCH, &path, &w.omar.token, Some(body.clone()), &[]).await;
        assert_eq!((r.status, r.code()), (403, "42501"), "{body}");
        assert_eq!(r.body["message"], "permission denied for table chat_messages");
    }
    let r = send(&w.ts, Method::PATCH, &path, &anon(&w.ts), Some(json!({"room_id": uuid()})), &[]).await;
    assert_eq!((r.status, r.code()), (401, "42501"), "anonymous: 401");
    let r = send(&w.ts, Method::PATCH, &path, &w.omar.token, Some(json!({"nope": 1})), &[]).await;
    assert_eq!((r.status, r.code()), (400, "PGRST204"));
    let r = send(&w.ts, Method::PATCH, &path, &w.omar.token, Some(json!({"edited_at": "whenever"})), &[]).await;
    assert_eq!((r.status, r.code()), (400, "22007"));
}

#[tokio::test]
async fn member_cannot_make_themselves_admin_but_the_admin_can() {
    let w = world().await;
    let me = format!("room_members?room_id=eq.{}&user_id=eq.{}", w.room, w.omar.id);
    let r = send(&w.ts, Method::PATCH, &me, &w.omar.token, Some(json!({"role": "admin"})), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "{}", r.body);
    assert_eq!(r.body["message"], "new row violates row-level security policy for table \"room_members\"");
    let r = send(&w.ts, Method::PATCH, &me, &w.omar.token, Some(json!({"last_read_at": "2030-01-01T00:00:00Z"})), &[])
        .await;
    assert_eq!(r.status, 204, "a member may mark their own room read");
    let r = send(
        &w.ts,
        Method::PATCH,
        &me,
        &w.layla.token,
        Some(json!({"role": "admin"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.rows()[0]["role"], "admin");
    // Anyone joins a public channel as a plain member, not as its admin.
    let channel = create(&w.ts, "chat_rooms", &w.layla.token, json!({"name": "general", "created_by": w.layla.id}))
        .await[0]["id"]
        .clone();
    let join = |role: &str| json!({"room_id": channel, "user_id": w.sara.id, "role": role});
    let r = send(&w.ts, Method::POST, "room_members", &w.sara.token, Some(join("admin")), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "{}", r.body);
    let r = send(&w.ts, Method::POST, "room_members", &w.sara.token, Some(join("member")), &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Joining a private room yourself is refused; the admin adds people.
    let r = send(
        &w.ts,
        Method::POST,
        "room_members",
        &w.sara.token,
        Some(json!({"room_id": w.room, "user_id": w.sara.id})),
        &[],
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "42501"));
    let r = send(
        &w.ts,
        Method::POST,
        "room_members",
        &w.layla.token,
        Some(json!({"room_id": w.room, "user_id": w.sara.id})),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn delete_follows_the_rules_and_can_return_the_deleted_rows() {
    let w = world().await;
    let s = svc(&w.ts);
    let rows = create(&w.ts, "message_reactions", &s, json!([])).await;
    assert!(rows.is_empty(), "an empty array inserts nothing");
    let msgs = get(&w.ts, &format!("chat_messages?select=id&user_id=eq.{}", w.layla.id), &s).await;
    let msg = msgs.rows()[0]["id"].as_str().unwrap_or("").to_string();
    create(&w.ts, "message_reactions", &w.omar.token, json!({"message_id": msg, "user_id": w.omar.id, "emoji": "👍"}))
        .await;
    create(
        &w.ts,
        "message_reactions",
        &w.layla.token,
        json!({"message_id": msg, "user_id": w.layla.id, "emoji": "🎉"}),
    )
    .await;
    let all = format!("message_reactions?message_id=eq.{msg}");
    let r = send(&w.ts, Method::DELETE, &all, &w.omar.token, None, &[("Prefer", "return=representation")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.rows().len(), 1, "omar removes only his own reaction: {}", r.body);
    assert_eq!(r.rows()[0]["emoji"], "👍");
    let r = send(&w.ts, Method::DELETE, "chat_messages", &w.omar.token, None, &[]).await;
    assert_eq!(r.status, 204, "messages are never hard-deleted by users: nothing matches");
    let r = get(&w.ts, "chat_messages", &s).await;
    assert_eq!(r.rows().len(), 2);
    let r = send(&w.ts, Method::DELETE, &all, &s, None, &[("Prefer", "count=exact")]).await;
    assert_eq!((r.status, r.header("content-range")), (204, Some("*/1")));
}

#[tokio::test]
async fn unfiltered_patch_and_delete_are_bounded_by_row_rules() {
    let w = world().await;
    let s = svc(&w.ts);
    create(
        &w.ts,
        "challenges",
        &s,
        json!([
            {"title": "layla's", "status": "open", "created_by": w.layla.id},
            {"title": "omar's", "status": "open", "created_by": w.omar.id}
        ]),
    )
    .await;
    let r = send(
        &w.ts,
        Method::PATCH,
        "challenges",
        &w.omar.token,
        Some(json!({"status": "closed"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.rows().len(), 1, "only omar's challenge: {}", r.body);
    let r =
        send(&w.ts, Method::DELETE, "challenges", &w.omar.token, None, &[("Prefer", "return=representation")]).await;
    assert_eq!(r.body[0]["title"], "omar's");
    let r = send(&w.ts, Method::DELETE, "challenges", &anon(&w.ts), None, &[]).await;
    assert_eq!(r.status, 204);
    let r = get(&w.ts, "challenges?select=title", &s).await;
    assert_eq!(r.body, json!([{"title": "layla's"}]));
}

#[tokio::test]
async fn singular_mutation_with_several_rows_is_rolled_back() {
    let w = world().await;
    let r = send(
        &w.ts,
        Method::PATCH,
        "chat_messages",
        &svc(&w.ts),
        Some(json!({"content": "all"})),
        &[("Accept", "application/vnd.pgrst.object+json"), ("Prefer", "return=representation")],
    )
    .await;
    assert_eq!((r.status, r.code()), (406, "PGRST116"));
    let r = get(&w.ts, "chat_messages?content=eq.all", &svc(&w.ts)).await;
    assert_eq!(r.rows().len(), 0, "the update was undone");
}

// ---------------------------------------------------------------------------------------
// Row-level rules, table by table

#[tokio::test]
async fn room_messages_are_private_to_members() {
    let w = world().await;
    let path = format!("chat_messages?room_id=eq.{}", w.room);
    assert_eq!(get(&w.ts, &path, &w.omar.token).await.rows().len(), 2, "a member reads the room");
    assert_eq!(get(&w.ts, &path, &w.sara.token).await.rows().len(), 0, "a non-member reads nothing");
    assert_eq!(get(&w.ts, &path, &svc(&w.ts)).await.rows().len(), 2, "service_role reads everything");
    assert_eq!(get(&w.ts, &path, &anon(&w.ts)).await.rows().len(), 0, "anon reads nothing");
    let msg = |who: &TestUser| json!({"room_id": w.room, "user_id": who.id, "content": "let me in"});
    let r = send(&w.ts, Method::POST, "chat_messages", &w.sara.token, Some(msg(&w.sara)), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"));
    assert_eq!(r.body["message"], "new row violates row-level security policy for table \"chat_messages\"");
    let r = send(&w.ts, Method::POST, "chat_messages", &w.omar.token, Some(msg(&w.layla)), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "members post only as themselves");
    let r = send(&w.ts, Method::POST, "chat_messages", &anon(&w.ts), Some(msg(&w.omar)), &[]).await;
    assert_eq!((r.status, r.code()), (401, "42501"), "anon: 401");
    let r = send(&w.ts, Method::POST, "chat_messages", &svc(&w.ts), Some(msg(&w.sara)), &[]).await;
    assert_eq!(r.status, 201, "service_role bypasses the rules");
}

#[tokio::test]
async fn drafts_are_visible_only_to_their_creator() {
    let w = world().await;
    create(&w.ts, "challenges", &w.layla.token, json!({"title": "secret", "created_by": w.layla.id})).await;
    create(&w.ts, "challenges", &w.layla.token, json!({"title": "public", "status": "open", "created_by": w.layla.id}))
        .await;
    let titles = |r: Resp| r.rows().iter().map(|x| x["title"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(titles(get(&w.ts, "challenges?order=title", &w.layla.token).await), ["public", "secret"]);
    assert_eq!(titles(get(&w.ts, "challenges?order=title", &w.omar.token).await), ["public"]);
    assert!(titles(get(&w.ts, "challenges", &anon(&w.ts)).await).is_empty());
    let r = send(
        &w.ts,
        Method::POST,
        "challenges",
        &w.omar.token,
        Some(json!({"title": "as layla", "created_by": w.layla.id})),
        &[],
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "42501"), "challenges are created as yourself");
}

#[tokio::test]
async fn submissions_are_seen_by_submitter_and_challenge_creator_and_only_open_challenges_take_them() {
    let w = world().await;
    let open = create(
        &w.ts,
        "challenges",
        &w.layla.token,
        json!({"title": "open", "status": "open", "created_by": w.layla.id}),
    )
    .await[0]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let closed = create(
        &w.ts,
        "challenges",
        &w.layla.token,
        json!({"title": "closed", "status": "closed", "created_by": w.layla.id}),
    )
    .await[0]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let sub = |c: &str| json!({"challenge_id": c, "user_id": w.omar.id, "title": "my idea"});
    let r = send(&w.ts, Method::POST, "challenge_submissions", &w.omar.token, Some(sub(&closed)), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "a closed challenge takes no submission");
    let id = create(&w.ts, "challenge_submissions", &w.omar.token, sub(&open)).await[0]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(get(&w.ts, "challenge_submissions", &w.omar.token).await.rows().len(), 1, "the submitter sees it");
    assert_eq!(
        get(&w.ts, "challenge_submissions", &w.layla.token).await.rows().len(),
        1,
        "the challenge creator sees it"
    );
    assert_eq!(get(&w.ts, "challenge_submissions", &w.sara.token).await.rows().len(), 0, "nobody else does");
    let path = format!("challenge_submissions?id=eq.{id}");
    let r = send(
        &w.ts,
        Method::PATCH,
        &path,
        &w.omar.token,
        Some(json!({"status": "accepted"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.body, json!([]), "the submitter cannot accept their own submission");
    let r = send(
        &w.ts,
        Method::PATCH,
        &path,
        &w.layla.token,
        Some(json!({"status": "accepted"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.rows()[0]["status"], "accepted", "the challenge creator judges");
    let r = send(&w.ts, Method::PATCH, &path, &w.layla.token, Some(json!({"status": "great"})), &[]).await;
    assert_eq!((r.status, r.code()), (400, "23514"));
}

#[tokio::test]
async fn document_editors_write_and_viewers_only_read() {
    let w = world().await;
    let doc = document(&w).await;
    create(
        &w.ts,
        "document_members",
        &w.layla.token,
        json!([{"document_id": doc, "user_id": w.omar.id, "role": "editor"}, {"document_id": doc, "user_id": w.sara.id, "role": "viewer"}]),
    )
    .await;
    let upd = |who: &TestUser| json!({"id": uuid(), "document_id": doc, "user_id": who.id, "update": "AQID"});
    let r = send(&w.ts, Method::POST, "document_updates", &w.omar.token, Some(upd(&w.omar)), &[]).await;
    assert_eq!(r.status, 201, "an editor appends updates: {}", r.body);
    let r = send(&w.ts, Method::POST, "document_updates", &w.sara.token, Some(upd(&w.sara)), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"), "a viewer may not");
    assert_eq!(get(&w.ts, "document_updates", &w.sara.token).await.rows().len(), 1, "but reads them");
    let r = send(
        &w.ts,
        Method::PATCH,
        &format!("collaborative_documents?id=eq.{doc}"),
        &w.sara.token,
        Some(json!({"title": "mine"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.body, json!([]), "a viewer cannot rename");
    let r = send(
        &w.ts,
        Method::PATCH,
        &format!("collaborative_documents?id=eq.{doc}"),
        &w.omar.token,
        Some(json!({"title": "ours", "version": 2})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!((r.rows()[0]["title"].as_str(), r.rows()[0]["version"].as_i64()), (Some("ours"), Some(2)));
    assert_eq!(
        get(&w.ts, "collaborative_documents", &w.ts.user("stranger").await.token).await.rows().len(),
        0,
        "non-members see nothing"
    );
    let r = send(
        &w.ts,
        Method::POST,
        "document_members",
        &w.omar.token,
        Some(json!({"document_id": doc, "user_id": w.layla.id, "role": "viewer"})),
        &[],
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "42501"), "only the creator manages members");
}

#[tokio::test]
async fn document_updates_are_append_only_for_everyone() {
    let w = world().await;
    let doc = document(&w).await;
    create(
        &w.ts,
        "document_updates",
        &w.layla.token,
        json!({"id": uuid(), "document_id": doc, "user_id": w.layla.id, "update": "AQID"}),
    )
    .await;
    // Signed-in users hold no UPDATE or DELETE privilege on the table; service_role meets the
    // trigger on every row it reaches.
    let layla = w.layla.token.clone();
    let r = send(&w.ts, Method::PATCH, "document_updates", &layla, Some(json!({"update": "AAAA"})), &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"));
    assert_eq!(r.body["message"], "permission denied for table document_updates");
    let r = send(&w.ts, Method::DELETE, "document_updates", &layla, None, &[]).await;
    assert_eq!((r.status, r.code()), (403, "42501"));
    let service = svc(&w.ts);
    let r = send(&w.ts, Method::PATCH, "document_updates", &service, Some(json!({"update": "AAAA"})), &[]).await;
    assert_eq!((r.status, r.code()), (400, "P0001"));
    assert_eq!(r.body["message"], "document_updates is append-only");
    let r = send(&w.ts, Method::DELETE, "document_updates", &service, None, &[]).await;
    assert_eq!((r.status, r.code()), (400, "P0001"));
    let r = send(&w.ts, Method::DELETE, "document_updates?seq=eq.0", &service, None, &[]).await;
    assert_eq!(r.status, 204, "no row reached, nothing refused: {}", r.body);
    assert_eq!(get(&w.ts, "document_updates?select=update", &svc(&w.ts)).await.body, json!([{"update": "AQID"}]));
}

#[tokio::test]
async fn document_snapshot_cannot_move_backwards() {
    let w = world().await;
    let doc = document(&w).await;
    create(&w.ts, "document_snapshots", &w.layla.token, json!({"document_id": doc, "upto_seq": 10, "state": "S10"}))
        .await;
    let path = format!("document_snapshots?document_id=eq.{doc}");
    let r = send(&w.ts, Method::PATCH, &path, &w.layla.token, Some(json!({"upto_seq": 5, "state": "S5"})), &[]).await;
    assert_eq!((r.status, r.code()), (400, "P0001"));
    assert_eq!(r.body["message"], "document snapshot upto_seq cannot move backwards");
    let r = send(
        &w.ts,
        Method::PATCH,
        &path,
        &w.layla.token,
        Some(json!({"upto_seq": 12, "state": "S12"})),
        &[("Prefer", "return=representation")],
    )
    .await;
    assert_eq!(r.rows()[0]["upto_seq"], 12);
    let r = send(
        &w.ts,
        Method::POST,
        "document_snapshots",
        &w.layla.token,
        Some(json!({"document_id": doc, "upto_seq": 3, "state": "S3"})),
        &[("Prefer", "resolution=merge-duplicates")],
    )
    .await;
    assert_eq!((r.status, r.code()), (403, "42501"), "a merge would SET the key, which nobody may update: {}", r.body);
    assert_eq!(get(&w.ts, &format!("{path}&select=upto_seq"), &w.layla.token).await.body, json!([{"upto_seq": 12}]));
}

// ---------------------------------------------------------------------------------------
// RPC

#[tokio::test]
async fn live_metrics_count_recent_activity_challenges_and_submissions() {
    let w = world().await;
    let s = svc(&w.ts);
    create(&w.ts, "user_activities", &s, json!([{"user_id": w.layla.id, "kind": "a"}, {"user_id": w.layla.id, "kind": "b"}, {"user_id": w.omar.id, "kind": "c"}])).await;
    let open = create(&w.ts, "challenges", &s, json!({"title": "o", "status": "open", "created_by": w.layla.id})).await
        [0]["id"]
        .clone();
    create(&w.ts, "challenges", &s, json!([{"title": "d", "created_by": w.layla.id}, {"title": "j", "status": "judging", "created_by": w.layla.id}])).await;
    create(&w.ts, "challenge_submissions", &s, json!({"challenge_id": open, "user_id": w.omar.id, "title": "t"})).await;
    let want = json!({"active_users": 2, "total_challenges": 2, "new_submissions": 1, "online_users": 0});
    let r = send(&w.ts, Method::POST, "rpc/get_live_metrics", &w.sara.token, Some(json!({})), &[]).await;
    assert_eq!((r.status, &r.body), (200, &want));
    let r = get(&w.ts, "rpc/get_live_metrics", &s).await;
    assert_eq!((r.status, &r.body), (200, &want));
}

#[tokio::test]
async fn live_metrics_refuse_anon_and_unknown_functions_are_404() {
    let w = world().await;
    let r = send(&w.ts, Method::POST, "rpc/get_live_metrics", &anon(&w.ts), Some(json!({})), &[]).await;
    assert_eq!((r.status, r.code()), (401, "42501"));
    assert_eq!(r.body["message"], "permission denied for function get_live_metrics");
    let r = send(&w.ts, Method::POST, "rpc/drop_everything", &w.omar.token, Some(json!({})), &[]).await;
    assert_eq!((r.status, r.code()), (404, "PGRST202"));
    assert_eq!(
        r.body["message"],
        "Could not find the function public.drop_everything without parameters in the schema cache"
    );
    let r = send(&w.ts, Method::POST, "rpc/get_live_metrics", &w.omar.token, Some(json!({"days": 7})), &[]).await;
    assert_eq!((r.status, r.code()), (404, "PGRST202"));
    assert_eq!(r.body["message"], "Could not find the function public.get_live_metrics(days) in the schema cache");
    let r = send(&w.ts, Method::PATCH, "rpc/get_live_metrics", &w.omar.token, Some(json!({})), &[]).await;
    assert_eq!((r.status, r.code()), (405, "PGRST101"));
}

// ---------------------------------------------------------------------------------------
// Realtime feed

#[tokio::test]
async fn committed_rest_write_is_published_and_a_refused_one_is_not() {
    let w = world().await;
    let mut feed = w.ts.server.state.db.changes();
    let r = send(
        &w.ts,
        Method::POST,
        "chat_messages",
        &w.sara.token,
        Some(json!({"room_id": w.room, "user_id": w.sara.id, "content": "no"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(feed.try_recv().is_err(), "a refused insert publishes nothing");
    let r = send(
        &w.ts,
        Method::PATCH,
        &format!("room_members?user_id=eq.{}", w.omar.id),
        &w.omar.token,
        Some(json!({"role": "admin"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(feed.try_recv().is_err(), "a refused update publishes nothing");
    create(&w.ts, "chat_messages", &w.omar.token, json!({"room_id": w.room, "user_id": w.omar.id, "content": "yes"}))
        .await;
    let change = feed.try_recv().expect("the committed insert is on the feed");
    assert_eq!((change.table.name, change.kind.as_str()), ("chat_messages", "INSERT"));
    assert_eq!(change.record.as_ref().and_then(|r| r.get("content")), Some(&json!("yes")));
}
