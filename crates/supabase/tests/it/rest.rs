//! Integration tests: the PostgREST client against the real local backend (row rules on),
//! every operation and filter on real rows, and the classification of real failures.

use std::time::Duration;

use ruwad_supabase::error::Retry;
use ruwad_supabase::rest::{Cond, Order, Rest, RestError, Returning};
use ruwad_supabase::Project;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::common::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Challenge {
    id: Uuid,
    title: String,
    description: String,
    status: String,
    deadline: Option<String>,
    created_by: Uuid,
}

fn challenge(me: Uuid, title: &str, status: &str, deadline: Option<&str>) -> Challenge {
    Challenge {
        id: Uuid::now_v7(),
        title: title.into(),
        description: format!("about {title}"),
        status: status.into(),
        deadline: deadline.map(|d| format!("{d}T00:00:00.000000+00:00")),
        created_by: me,
    }
}

/// A signed-in user's REST client and five challenges of theirs (one a draft, two without a
/// deadline, titles with spaces, commas and parentheses).
struct Seeded {
    _ts: TestServer,
    rest: Rest,
    me: Uuid,
    rows: Vec<Challenge>,
}

async fn seeded() -> Seeded {
    let ts = TestServer::start().await;
    let (auth, session) = ts.signed_up("amal").await;
    let me = session.user.id;
    let rest = Rest::with_auth(&auth);
    let rows = vec![
        challenge(me, "Solar water pump", "open", Some("2027-01-01")),
        challenge(me, "Arabic OCR, handwritten (v2)", "judging", None),
        challenge(me, "hello world", "closed", Some("2026-06-01")),
        challenge(me, "Desert greening", "draft", None),
        challenge(me, "Water reuse", "open", Some("2026-12-01")),
    ];
    let written: Vec<Challenge> =
        within(10, "seed insert", rest.from("challenges").insert(&rows).select("*").execute())
            .await
            .expect("the seed rows insert");
    assert_eq!(written, rows, "an array insert returns the rows as written");
    Seeded { _ts: ts, rest, me, rows }
}

fn titles(rows: &[Challenge]) -> Vec<&str> {
    let mut t: Vec<&str> = rows.iter().map(|r| r.title.as_str()).collect();
    t.sort_unstable();
    t
}

#[tokio::test]
async fn every_filter_selects_the_matching_rows() {
    let s = seeded().await;
    let q = || s.rest.from("challenges").select("*");
    let run = |q: ruwad_supabase::rest::Query| async move {
        within(10, "filtered select", q.execute::<Vec<Challenge>>()).await.expect("the select succeeds")
    };
    assert_eq!(titles(&run(q().eq("status", "open")).await), ["Solar water pump", "Water reuse"]);
    assert_eq!(run(q().neq("status", "draft")).await.len(), 4);
    assert_eq!(titles(&run(q().gt("deadline", "2026-06-01")).await), ["Solar water pump", "Water reuse"]);
    assert_eq!(run(q().gte("deadline", "2026-06-01")).await.len(), 3);
    assert_eq!(titles(&run(q().lt("deadline", "2026-12-01")).await), ["hello world"]);
    assert_eq!(titles(&run(q().lte("deadline", "2026-12-01")).await), ["Water reuse", "hello world"]);
    assert_eq!(titles(&run(q().like("title", "%water%")).await), ["Solar water pump"], "like is case-sensitive");
    assert_eq!(titles(&run(q().ilike("title", "%water%")).await), ["Solar water pump", "Water reuse"]);
    assert_eq!(
        titles(&run(q().in_("title", ["Arabic OCR, handwritten (v2)", "hello world"])).await),
        ["Arabic OCR, handwritten (v2)", "hello world"],
        "in-list values with commas, parentheses and spaces are quoted and encoded"
    );
    assert_eq!(titles(&run(q().eq("title", "Arabic OCR, handwritten (v2)")).await), ["Arabic OCR, handwritten (v2)"]);
    assert_eq!(titles(&run(q().is_null("deadline")).await), ["Arabic OCR, handwritten (v2)", "Desert greening"]);
    assert_eq!(run(q().not(Cond::is_null("deadline"))).await.len(), 3);
    assert_eq!(
        titles(&run(q().not(Cond::in_("status", ["open", "closed", "draft"]))).await),
        ["Arabic OCR, handwritten (v2)"]
    );
    let either = q().or([
        Cond::eq("status", "judging"),
        Cond::and([Cond::eq("status", "open"), Cond::gt("deadline", "2026-12-31")]),
    ]);
    assert_eq!(titles(&run(either).await), ["Arabic OCR, handwritten (v2)", "Solar water pump"]);
    let quoted = q().or([Cond::eq("title", "Arabic OCR, handwritten (v2)"), Cond::eq("title", "hello world")]);
    assert_eq!(run(quoted).await.len(), 2, "values inside or=(…) are quoted");
    let nothing: Vec<Challenge> = run(q().eq("status", "open").eq("status", "closed")).await;
    assert!(nothing.is_empty(), "filters are ANDed");
}

#[tokio::test]
async fn order_range_and_count_page_through_the_rows() {
    let s = seeded().await;
    let page = |from, to| {
        s.rest
            .from("challenges")
            .select("id,title,description,status,deadline,created_by")
            .order("deadline", Order::Desc.nulls_last())
            .order("title", Order::Asc)
            .range(from, to)
            .count_exact()
            .execute_full::<Vec<Challenge>>()
    };
    let first = within(10, "first page", page(0, 2)).await.expect("first page");
    assert_eq!(
        first.data.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(),
        ["Solar water pump", "Water reuse", "hello world"]
    );
    assert_eq!(first.count, Some(5), "the count is of all matching rows, not the page");
    assert_eq!(first.status, 206, "a partial page with a count");
    let second = within(10, "second page", page(3, 4)).await.expect("second page");
    assert_eq!(
        second.data.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(),
        ["Arabic OCR, handwritten (v2)", "Desert greening"],
        "nulls last, then the tie-breaker"
    );
    let asc: Vec<Challenge> = s
        .rest
        .from("challenges")
        .select("*")
        .order("deadline", Order::Asc.nulls_first())
        .limit(1)
        .execute()
        .await
        .expect("nulls first");
    assert_eq!(asc[0].deadline, None);
    let head = within(
        10,
        "head count",
        s.rest.from("challenges").select("*").eq("status", "open").count_exact().head().execute_full::<()>(),
    )
    .await
    .expect("head");
    assert_eq!(head.count, Some(2), "HEAD carries the count without rows");
}

#[tokio::test]
async fn single_and_maybe_single_want_exactly_and_at_most_one_row() {
    let s = seeded().await;
    let target = &s.rows[2];
    let one: Challenge =
        s.rest.from("challenges").select("*").eq("id", target.id).single().execute().await.expect("one row");
    assert_eq!(&one, target);
    let none = s.rest.from("challenges").select("*").eq("id", Uuid::now_v7()).single().execute::<Challenge>().await;
    let err = none.expect_err("no row is not a single object");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(406), Some("PGRST116"), Retry::Permanent));

    let maybe: Option<Challenge> = s
        .rest
        .from("challenges")
        .select("*")
        .eq("id", Uuid::now_v7())
        .maybe_single()
        .execute()
        .await
        .expect("zero rows");
    assert_eq!(maybe, None);
    let maybe: Option<Challenge> =
        s.rest.from("challenges").select("*").eq("id", target.id).maybe_single().execute().await.expect("one row");
    assert_eq!(maybe.as_ref(), Some(target));
    let many = s.rest.from("challenges").select("*").maybe_single().execute::<Option<Challenge>>().await;
    assert_eq!(many.expect_err("five rows").code(), Some("PGRST116"));
}

#[tokio::test]
async fn inserts_write_one_or_many_rows_and_missing_keys_take_defaults_only_when_asked() {
    let s = seeded().await;
    let one = challenge(s.me, "Single insert", "open", None);
    let nothing: () = s.rest.from("challenges").insert(&one).execute().await.expect("minimal insert");
    assert_eq!(nothing, (), "return=minimal has no body");
    let back: Vec<Challenge> =
        s.rest.from("challenges").select("*").eq("id", one.id).execute().await.expect("read back");
    assert_eq!(back, vec![one]);

    // Two objects with different keys: the second has no description.
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let rows = json!([
        {"id": a, "title": "With description", "description": "text", "status": "open", "created_by": s.me},
        {"id": b, "title": "Without description", "status": "open", "created_by": s.me},
    ]);
    let err = s.rest.from("challenges").insert(&rows).execute::<()>().await.expect_err("NULL description refused");
    assert_eq!((err.status(), err.code(), err.is_transient()), (Some(400), Some("23502"), false));
    let none: Vec<Challenge> = s.rest.from("challenges").select("*").in_("id", [a, b]).execute().await.expect("read");
    assert!(none.is_empty(), "a refused array insert writes nothing");

    let written: Vec<Challenge> = s
        .rest
        .from("challenges")
        .insert(&rows)
        .missing_default()
        .returning(Returning::Representation)
        .execute()
        .await
        .expect("defaults fill the missing key");
    assert_eq!(written.len(), 2);
    assert_eq!(written[1].description, "", "the column default, not NULL");
}

#[derive(Debug, PartialEq, Deserialize)]
struct Profile {
    id: Uuid,
    display_name: String,
    locale: String,
}

#[tokio::test]
async fn merge_upsert_is_refused_and_ignore_duplicates_keeps_the_existing_row() {
    let s = seeded().await;
    // A merge writes `DO UPDATE SET` over every sent column, the key included, and nobody may
    // update key columns: refused as a whole (as on Supabase with the platform's grants).
    let err = s
        .rest
        .from("profiles")
        .upsert(json!({"id": s.me, "display_name": "Amal", "locale": "ar"}))
        .on_conflict("id")
        .execute::<()>()
        .await
        .expect_err("merge needs UPDATE on the key");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(403), Some("42501"), Retry::Permanent));
    let merged: Vec<Profile> = s
        .rest
        .from("profiles")
        .update(json!({"display_name": "Amal", "locale": "ar"}))
        .eq("id", s.me)
        .returning(Returning::Representation)
        .execute()
        .await
        .expect("patch");
    assert_eq!(merged, vec![Profile { id: s.me, display_name: "Amal".into(), locale: "ar".into() }]);

    let skipped: Vec<Profile> = s
        .rest
        .from("profiles")
        .upsert(json!({"id": s.me, "display_name": "ignored", "locale": "en"}))
        .on_conflict("id")
        .ignore_duplicates()
        .select("id,display_name,locale")
        .execute()
        .await
        .expect("ignore");
    assert!(skipped.is_empty(), "an ignored duplicate is not returned");
    let now: Profile = s.rest.from("profiles").select("*").eq("id", s.me).single().execute().await.expect("read");
    assert_eq!(now.display_name, "Amal", "the existing row is kept");

    // A merge that would set a column users may not update is refused as a whole, as in
    // Postgres (`ON CONFLICT DO UPDATE SET created_by` needs that column privilege).
    let mut row = s.rows[0].clone();
    row.title = "Solar water pump, v2".into();
    let err = s.rest.from("challenges").upsert(&row).execute::<()>().await.expect_err("created_by not updatable");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(403), Some("42501"), Retry::Permanent));

    // Ignore-duplicates needs no update privilege: a new row goes in, an existing one stays.
    let fresh = challenge(s.me, "Upserted", "open", None);
    let batch = vec![row.clone(), fresh.clone()];
    let inserted: Vec<Challenge> =
        s.rest.from("challenges").upsert(&batch).ignore_duplicates().select("*").execute().await.expect("upsert");
    assert_eq!(inserted, vec![fresh], "only the new row was written");
    let count = s.rest.from("challenges").select("id").count_exact().head().execute_full::<()>().await.expect("count");
    assert_eq!(count.count, Some(6));
    let kept: Challenge =
        s.rest.from("challenges").select("*").eq("id", row.id).single().execute().await.expect("read");
    assert_eq!(kept.title, "Solar water pump", "the existing row is untouched");
}

#[tokio::test]
async fn a_retried_message_insert_with_ignore_duplicates_is_idempotent() {
    let ts = TestServer::start().await;
    let (auth, session) = ts.signed_up("badr").await;
    let rest = Rest::with_auth(&auth);
    let me = session.user.id;
    let room = Uuid::now_v7();
    rest.from("chat_rooms")
        .insert(json!({"id": room, "name": "general", "kind": "channel", "created_by": me}))
        .execute::<()>()
        .await
        .expect("room");
    rest.from("room_members").insert(json!({"room_id": room, "user_id": me})).execute::<()>().await.expect("join");

    // The outbound queue's send: a client-made id, so a retry after a lost answer is harmless.
    let message = json!({"id": Uuid::now_v7(), "room_id": room, "user_id": me, "content": "مرحبا, world (1)"});
    let send = || rest.from("chat_messages").insert(&message).ignore_duplicates().execute::<()>();
    for attempt in 1..=3 {
        within(10, "send", send()).await.unwrap_or_else(|e| panic!("attempt {attempt} succeeds: {e}"));
    }
    let stored =
        rest.from("chat_messages").select("content").eq("room_id", room).count_exact().execute_full::<Vec<Value>>();
    let stored = within(10, "read messages", stored).await.expect("read");
    assert_eq!(stored.count, Some(1), "three sends, one message");
    assert_eq!(stored.data, vec![json!({"content": "مرحبا, world (1)"})]);

    let err = rest.from("chat_messages").insert(&message).execute::<()>().await.expect_err("plain insert");
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.code(), Some("23505"));
    assert_eq!(err.retry(), Retry::Permanent, "a duplicate key is permanent: retrying cannot pass");
}

#[tokio::test]
async fn update_and_delete_change_only_the_filtered_rows() {
    let s = seeded().await;
    let target = &s.rows[1];
    let updated: Vec<Challenge> = s
        .rest
        .from("challenges")
        .update(json!({"status": "closed"}))
        .eq("id", target.id)
        .select("*")
        .execute()
        .await
        .expect("update");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].status, "closed");
    let closed: Vec<Challenge> =
        s.rest.from("challenges").select("*").eq("status", "closed").execute().await.expect("read");
    assert_eq!(titles(&closed), ["Arabic OCR, handwritten (v2)", "hello world"], "only the filtered row changed");
    let none: () = s
        .rest
        .from("challenges")
        .update(json!({"title": "x"}))
        .eq("id", Uuid::now_v7())
        .execute()
        .await
        .expect("no match");
    assert_eq!(none, ());

    let deleted: Vec<Challenge> = s
        .rest
        .from("challenges")
        .delete()
        .eq("id", target.id)
        .returning(Returning::Representation)
        .execute()
        .await
        .expect("delete");
    assert_eq!(deleted[0].id, target.id);
    let left = s.rest.from("challenges").select("id").count_exact().head().execute_full::<()>().await.expect("count");
    assert_eq!(left.count, Some(4));
}

#[tokio::test]
async fn rpc_returns_the_live_metrics_object() {
    let s = seeded().await;
    let metrics: Value = within(10, "rpc", s.rest.rpc("get_live_metrics", ()).execute()).await.expect("rpc");
    assert_eq!(metrics["total_challenges"], json!(4), "drafts are not counted: {metrics}");
    for key in ["active_users", "new_submissions", "online_users"] {
        assert!(metrics[key].is_number(), "{key} in {metrics}");
    }
    let err = s.rest.rpc("no_such_function", json!({})).execute::<Value>().await.expect_err("unknown function");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(404), Some("PGRST202"), Retry::Permanent));
}

#[tokio::test]
async fn row_rule_and_privilege_refusals_are_permanent() {
    let s = seeded().await;
    let someone_else = challenge(Uuid::now_v7(), "Not mine", "open", None);
    let err = s.rest.from("challenges").insert(&someone_else).execute::<()>().await.expect_err("row rule");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(403), Some("42501"), Retry::Permanent));
    assert!(matches!(&err, RestError::Api(e) if e.message.contains("row-level security")), "{err}");

    let anon = Rest::new(s._ts.project());
    let err = anon.rpc("get_live_metrics", ()).execute::<Value>().await.expect_err("anon may not call it");
    assert_eq!((err.status(), err.code()), (Some(401), Some("42501")));
    assert_eq!(err.retry(), Retry::Permanent, "a missing privilege is not an expired token");
    let err = s.rest.from("no_such_table").select("*").execute::<Value>().await.expect_err("unknown table");
    assert_eq!((err.status(), err.code(), err.retry()), (Some(404), Some("PGRST205"), Retry::Permanent));
}

#[tokio::test]
async fn an_expired_token_asks_for_a_refresh_instead_of_a_retry() {
    let ts = TestServer::start().await;
    let expired = ts.token_for(&Uuid::now_v7().to_string(), -10);
    let rest = Rest::with_bearer(ts.project(), expired);
    let err = rest.from("challenges").select("*").execute::<Value>().await.expect_err("expired");
    assert_eq!((err.status(), err.code()), (Some(401), Some("PGRST303")));
    assert_eq!(err.retry(), Retry::Unauthorized);
    assert!(!err.is_transient());
}

#[tokio::test]
async fn the_session_token_is_sent_and_the_api_key_after_sign_out() {
    let ts = TestServer::start().await;
    let (auth, session) = ts.signed_up("dana").await;
    let rest = Rest::with_auth(&auth);
    let draft = challenge(session.user.id, "My draft", "draft", None);
    rest.from("challenges").insert(&draft).execute::<()>().await.expect("insert as the user");
    let mine: Vec<Challenge> = rest.from("challenges").select("*").execute().await.expect("read as the user");
    assert_eq!(mine, vec![draft], "the creator sees their draft: the user's token was sent");
    within(10, "sign-out", auth.sign_out()).await.expect("sign out");
    let anon: Vec<Challenge> = rest.from("challenges").select("*").execute().await.expect("read as anon");
    assert!(anon.is_empty(), "signed out, the API key is sent and anon sees nothing");
}

#[tokio::test]
async fn a_closed_port_is_a_transient_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let rest = Rest::new(Project::new(&format!("http://{addr}"), "anon").expect("project"));
    let err = within(10, "refused connection", rest.from("challenges").select("*").execute::<Value>())
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, RestError::Network(_)), "{err:?}");
    assert_eq!(err.retry(), Retry::Transient { after: None });
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_transient() {
    // Accepts connections and reads nothing: a black hole.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hole = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let project = Project::new(&format!("http://{addr}"), "anon").expect("project").with_http_client(http);
    let err = within(10, "timeout", Rest::new(project).from("challenges").select("*").execute::<Value>())
        .await
        .expect_err("no answer");
    assert!(matches!(&err, RestError::Network(e) if e.is_timeout()), "{err:?}");
    assert!(err.is_transient());
    hole.abort();
}
