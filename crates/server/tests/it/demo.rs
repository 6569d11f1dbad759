//! Integration tests: the `--demo` seed, through a real server start and the auth endpoint.

use std::collections::BTreeSet;

use ruwad_server::db::DbError;
use ruwad_server::{Config, Server};
use serde_json::json;

use super::common::*;

/// Every table the seed may touch.
const TABLES: &[&str] = &[
    "auth_users",
    "auth_sessions",
    "auth_refresh_tokens",
    "profiles",
    "chat_rooms",
    "room_members",
    "chat_messages",
    "message_reactions",
    "challenges",
    "challenge_submissions",
    "user_activities",
    "collaborative_documents",
    "document_members",
];

fn demo_config(dir: &std::path::Path) -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), dir);
    config.demo = true;
    config
}

/// Every row of every seeded table, rendered as text, in storage order.
async fn dump(server: &Server) -> Vec<(String, Vec<String>)> {
    server
        .state
        .db
        .read(|c| -> Result<_, DbError> {
            let mut out = Vec::new();
            for t in TABLES {
                let mut stmt = c.prepare(&format!("SELECT * FROM {t} ORDER BY rowid"))?;
                let n = stmt.column_count();
                let rows = stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                        .collect::<Result<Vec<_>, _>>()
                })?;
                for row in rows {
                    out.push((t.to_string(), row?));
                }
            }
            Ok(out)
        })
        .await
        .expect("dump tables")
}

async fn query<T: Send + 'static>(
    ts: &TestServer,
    sql: &'static str,
    f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Vec<T> {
    ts.server
        .state
        .db
        .read(move |c| -> Result<Vec<T>, DbError> {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], |r| f(r))?.collect::<Result<Vec<T>, _>>()?;
            Ok(rows)
        })
        .await
        .expect("query")
}

#[tokio::test]
async fn demo_start_lets_layla_sign_in_and_finds_the_seeded_platform() {
    let ts = TestServer::start_with(|c| c.demo = true).await;
    let resp = ts
        .http
        .post(ts.url("/auth/v1/token?grant_type=password"))
        .header("apikey", &ts.server.anon_key)
        .header("X-Supabase-Api-Version", "2024-01-01")
        .json(&json!({"email": "layla@demo.ruwad.app", "password": ruwad_server::demo::DEMO_PASSWORD}))
        .send()
        .await
        .expect("sign in");
    let (status, session) = json_of(resp).await;
    assert_eq!(status, 200, "the demo password signs Layla in: {session}");
    let layla = session["user"]["id"].as_str().expect("user id").to_string();
    assert_eq!(session["user"]["user_metadata"]["display_name"], "ليلى حسن");

    let profiles = query(&ts, "SELECT display_name, locale FROM profiles ORDER BY display_name", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .await;
    let names: BTreeSet<&str> = profiles.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["ليلى حسن", "عمر خالد", "سارة يوسف"]));
    assert!(profiles.iter().all(|p| p.1 == "ar" || p.1 == "en"));

    let rooms = query(
        &ts,
        "SELECT r.kind, (SELECT count(*) FROM room_members m WHERE m.room_id = r.id),
                (SELECT count(*) FROM chat_messages m WHERE m.room_id = r.id) FROM chat_rooms r ORDER BY r.kind",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
    )
    .await;
    let channels: Vec<_> = rooms.iter().filter(|r| r.0 == "channel").collect();
    assert_eq!(channels.len(), 2, "two public channels: {rooms:?}");
    for (_, members, messages) in &channels {
        assert_eq!(*members, 3, "all three are members of every channel");
        assert!((20..=40).contains(messages), "a realistic history: {messages} messages");
    }
    let direct: Vec<_> = rooms.iter().filter(|r| r.0 == "direct").collect();
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0].1, 2, "the direct room has Layla and Omar");
    assert!(direct[0].2 >= 3, "a few direct messages");

    let features = query(
        &ts,
        "SELECT (SELECT count(*) FROM chat_messages WHERE reply_to IS NOT NULL),
                (SELECT count(*) FROM chat_messages WHERE edited_at IS NOT NULL),
                (SELECT count(*) FROM message_reactions),
                (SELECT count(*) FROM chat_messages WHERE content GLOB '*[ء-ي]*'),
                (SELECT count(*) FROM chat_messages WHERE content GLOB '*[A-Za-z]*'),
                (SELECT count(*) FROM chat_messages WHERE created_at > strftime('%Y-%m-%dT%H:%M:%S', 'now')),
                (SELECT count(DISTINCT substr(created_at, 1, 10)) FROM chat_messages)",
        |r| (0..7).map(|i| r.get::<_, i64>(i)).collect::<Result<Vec<_>, _>>(),
    )
    .await
    .remove(0);
    assert!(features[0] >= 1 && features[1] >= 1 && features[2] >= 3, "replies, edits, reactions: {features:?}");
    assert!(features[3] >= 10 && features[4] >= 10, "Arabic and English messages: {features:?}");
    assert_eq!(features[5], 0, "no message is in the future");
    assert!(features[6] >= 2, "history spread over days: {features:?}");

    let unread = query(
        &ts,
        "SELECT count(*) FROM chat_messages m JOIN room_members rm ON rm.room_id = m.room_id
                              WHERE rm.user_id = (SELECT id FROM auth_users WHERE email = 'layla@demo.ruwad.app')
                                AND m.created_at > rm.last_read_at",
        |r| r.get::<_, i64>(0),
    )
    .await;
    assert!(unread[0] > 0, "Layla has something unread on first start");

    let challenges = query(
        &ts,
        "SELECT c.status, c.deadline IS NOT NULL AND length(c.description) > 20,
                (SELECT count(*) FROM challenge_submissions s WHERE s.challenge_id = c.id),
                (SELECT count(*) FROM challenge_submissions s WHERE s.challenge_id = c.id AND s.user_id = c.created_by)
           FROM challenges c ORDER BY c.status",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
    )
    .await;
    let statuses: Vec<&str> = challenges.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(statuses, ["closed", "judging", "open"]);
    for (status, described, submissions, own) in &challenges {
        assert!(described, "{status} has a deadline and a description");
        assert!(*submissions >= 1, "{status} has submissions");
        assert_eq!(*own, 0, "nobody submits to their own challenge ({status})");
    }
    let submission_statuses: BTreeSet<String> =
        query(&ts, "SELECT DISTINCT status FROM challenge_submissions", |r| r.get(0)).await.into_iter().collect();
    assert_eq!(submission_statuses.len(), 3, "submitted, accepted and rejected all appear");

    let docs = query(
        &ts,
        "SELECT d.created_by, length(d.content),
                (SELECT count(*) FROM document_members m WHERE m.document_id = d.id),
                (SELECT role FROM document_members m WHERE m.document_id = d.id AND m.user_id = d.created_by)
           FROM collaborative_documents d",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?)),
    )
    .await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, layla, "Layla created the shared document");
    assert!(docs[0].1 > 50, "the document has content");
    assert_eq!(docs[0].2, 3, "all three are document members");
    assert_eq!(docs[0].3, "editor", "the creator edits");

    let kinds: BTreeSet<String> =
        query(&ts, "SELECT DISTINCT kind FROM user_activities", |r| r.get(0)).await.into_iter().collect();
    for kind in ["message_sent", "submission_created", "challenge_created", "signed_in"] {
        assert!(kinds.contains(kind), "activity kind {kind} is seeded: {kinds:?}");
    }
    ts.shutdown().await;
}

#[tokio::test]
async fn a_second_demo_start_on_the_same_dir_adds_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Server::start(demo_config(dir.path())).await.expect("first start");
    let seeded = dump(&first).await;
    assert!(seeded.len() > 100, "the first start seeds: {} rows", seeded.len());
    first.shutdown().await;

    let second = Server::start(demo_config(dir.path())).await.expect("second start");
    let again = dump(&second).await;
    assert!(again == seeded, "a second --demo start must leave every row as it was");
    second.shutdown().await;
}
