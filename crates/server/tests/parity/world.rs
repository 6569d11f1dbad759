//! The fixture both backends start every case from: six accounts and a small platform around
//! them, with fixed UUIDs so that a row is the same row in Postgres and in the local backend.
//!
//! Chosen so that every rule has someone on each side of it: room admins and plain members, a
//! room creator who is not a member, a member of no room at all, an account without a profile,
//! drafts and open / judging / closed challenges, document creators, editors, viewers and
//! outsiders, snapshots to move forward and backward.
//!
//! Rows are compared by a natural key ([`key_columns`]): the server-assigned `user_activities.id`
//! and `document_updates.seq` differ between the two after a rolled-back insert (Postgres does
//! not roll sequences back), so activities are known by user and kind, updates by their
//! client-made id.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

pub const USER_NAMES: [&str; 6] = ["layla", "omar", "sara", "nadia", "karim", "newcomer"];
/// The account that has no profile (so that creating one can succeed).
pub const NEWCOMER: usize = 5;

const USER: u32 = 0xa000_0000;
const ROOM: u32 = 0xb000_0000;
const MESSAGE: u32 = 0xc000_0000;
const CHALLENGE: u32 = 0xd000_0000;
const SUBMISSION: u32 = 0xe000_0000;
const DOCUMENT: u32 = 0xf000_0000;
const UPDATE: u32 = 0xf100_0000;
/// Ids of rows the cases create.
const NEW: u32 = 0x1000_0000;
/// A room / document id that names nothing.
const NOWHERE: u32 = 0x9000_0000;

fn id(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// Account `i` (0-based, `USER_NAMES` order).
pub fn user(i: usize) -> String {
    id(USER, i + 1)
}
/// Room `R<n>` (1-based).
pub fn room(n: usize) -> String {
    id(ROOM, n)
}
pub fn message(n: usize) -> String {
    id(MESSAGE, n)
}
pub fn challenge(n: usize) -> String {
    id(CHALLENGE, n)
}
pub fn submission(n: usize) -> String {
    id(SUBMISSION, n)
}
pub fn document(n: usize) -> String {
    id(DOCUMENT, n)
}
pub fn doc_update(n: usize) -> String {
    id(UPDATE, n)
}
/// A fresh id for a row a case inserts.
pub fn new_id(n: usize) -> String {
    id(NEW, n)
}
pub fn nowhere() -> String {
    id(NOWHERE, 1)
}

pub const ROOMS: usize = 5;
pub const MESSAGES: usize = 6;
pub const CHALLENGES: usize = 5;
pub const DOCUMENTS: usize = 4;

/// One fixture row.
#[derive(Debug, Clone)]
pub struct Row {
    pub table: &'static str,
    pub values: Map<String, Value>,
}

impl Row {
    pub fn text(&self, col: &str) -> String {
        match self.values.get(col) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

pub struct World {
    /// In foreign-key order: a row only refers to rows before it.
    pub rows: Vec<Row>,
}

fn row(table: &'static str, values: Value) -> Row {
    let Value::Object(values) = values else { panic!("fixture rows are objects") };
    Row { table, values }
}

impl World {
    pub fn new() -> World {
        let u = user;
        let mut rows = Vec::new();
        for (i, name) in USER_NAMES.iter().enumerate() {
            if i != NEWCOMER {
                let locale = if i % 2 == 0 { "ar" } else { "en" };
                rows.push(row("profiles", json!({"id": u(i), "display_name": name, "locale": locale})));
            }
        }
        let (layla, omar, sara, nadia, karim) = (0, 1, 2, 3, 4);
        // (n, title, status, creator)
        for (n, status, by) in
            [(1, "open", layla), (2, "draft", omar), (3, "judging", sara), (4, "closed", layla), (5, "draft", layla)]
        {
            rows.push(row(
                "challenges",
                json!({"id": challenge(n), "title": format!("C{n}"), "status": status, "created_by": u(by)}),
            ));
        }
        // R1 public channel; R2 direct whose creator is a plain member; R3 a challenge room with
        // two admins; R4 a channel nobody is in (its creator left); R5 a direct room of one.
        for (n, kind, by) in [
            (1, "channel", layla),
            (2, "direct", layla),
            (3, "challenge", omar),
            (4, "channel", sara),
            (5, "direct", nadia),
        ] {
            let mut r = json!({"id": room(n), "name": format!("R{n}"), "kind": kind, "created_by": u(by)});
            if n == 3 {
                r["challenge_id"] = json!(challenge(3));
            }
            rows.push(row("chat_rooms", r));
        }
        for (n, who, role) in [
            (1, layla, "admin"),
            (1, omar, "member"),
            (2, layla, "member"),
            (2, sara, "member"),
            (3, omar, "admin"),
            (3, nadia, "admin"),
            (3, sara, "member"),
            (5, nadia, "admin"),
        ] {
            rows.push(row("room_members", json!({"room_id": room(n), "user_id": u(who), "role": role})));
        }
        for (n, r, by) in [(1, 1, layla), (2, 1, omar), (3, 2, sara), (4, 3, nadia), (5, 4, sara), (6, 2, layla)] {
            let mut m = json!({"id": message(n), "room_id": room(r), "user_id": u(by), "content": format!("M{n}")});
            if n == 2 {
                m["reply_to"] = json!(message(1));
            }
            rows.push(row("chat_messages", m));
        }
        for (m, by, emoji) in [(1, omar, "👍"), (3, layla, "❤️"), (4, sara, "🎉"), (5, sara, "👀")] {
            rows.push(row("message_reactions", json!({"message_id": message(m), "user_id": u(by), "emoji": emoji})));
        }
        for (n, c, by) in [(1, 1, omar), (2, 1, sara), (3, 3, nadia), (4, 4, omar), (5, 2, nadia)] {
            rows.push(row(
                "challenge_submissions",
                json!({"id": submission(n), "challenge_id": challenge(c), "user_id": u(by), "title": format!("S{n}")}),
            ));
        }
        for (by, kind, refers) in
            [(layla, "login", None), (omar, "joined_room", Some(room(1))), (nadia, "submitted", Some(submission(3)))]
        {
            rows.push(row("user_activities", json!({"user_id": u(by), "kind": kind, "ref_id": refers})));
        }
        // D1 by layla (omar edits, sara views); D2 by omar (nadia views, layla edits); D3 by
        // sara alone; D4 by nadia, edited by karim.
        for (n, by) in [(1, layla), (2, omar), (3, sara), (4, nadia)] {
            let mut d = json!({"id": document(n), "title": format!("D{n}"), "created_by": u(by), "content": "text"});
            if n == 1 {
                d["challenge_id"] = json!(challenge(1));
            }
            rows.push(row("collaborative_documents", d));
        }
        for (d, who, role) in
            [(1, omar, "editor"), (1, sara, "viewer"), (2, nadia, "viewer"), (2, layla, "editor"), (4, karim, "editor")]
        {
            rows.push(row("document_members", json!({"document_id": document(d), "user_id": u(who), "role": role})));
        }
        for (n, d, by) in [(1, 1, layla), (2, 1, omar), (3, 2, layla), (4, 3, sara), (5, 4, karim)] {
            rows.push(row(
                "document_updates",
                json!({"id": doc_update(n), "document_id": document(d), "user_id": u(by), "update": "AQID"}),
            ));
        }
        for (d, upto) in [(1, 2), (2, 1), (4, 5)] {
            rows.push(row(
                "document_snapshots",
                json!({"document_id": document(d), "upto_seq": upto, "state": format!("S{upto}")}),
            ));
        }
        World { rows }
    }

    pub fn rows_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        self.rows.iter().filter(move |r| r.table == table)
    }

    /// The user ids that are members of room `room_id`.
    pub fn room_members(&self, room_id: &str) -> Vec<String> {
        self.rows_of("room_members").filter(|r| r.text("room_id") == room_id).map(|r| r.text("user_id")).collect()
    }

    /// The user ids in document_members of `doc` (the creator aside).
    pub fn document_members(&self, doc: &str) -> Vec<String> {
        self.rows_of("document_members").filter(|r| r.text("document_id") == doc).map(|r| r.text("user_id")).collect()
    }

    /// Short names for the fixture's ids (`omar`, `R3`, `M2`…), to print cases readably.
    pub fn names(&self) -> HashMap<String, String> {
        let mut names = HashMap::new();
        for (i, n) in USER_NAMES.iter().enumerate() {
            names.insert(user(i), n.to_string());
        }
        type IdOf = fn(usize) -> String;
        let kinds: [(IdOf, &str, usize); 6] = [
            (room, "R", ROOMS),
            (message, "M", MESSAGES),
            (challenge, "C", CHALLENGES),
            (submission, "S", 5),
            (document, "D", DOCUMENTS),
            (doc_update, "DU", 5),
        ];
        for (f, prefix, count) in kinds {
            for n in 1..=count {
                names.insert(f(n), format!("{prefix}{n}"));
            }
        }
        names.insert(nowhere(), "nowhere".into());
        names
    }
}

/// The columns that identify a row of `table` across both backends.
pub fn key_columns(table: &str) -> &'static [&'static str] {
    match table {
        "room_members" => &["room_id", "user_id"],
        "message_reactions" => &["message_id", "user_id", "emoji"],
        "user_activities" => &["user_id", "kind"],
        "document_members" => &["document_id", "user_id"],
        "document_snapshots" => &["document_id"],
        _ => &["id"],
    }
}

/// Key columns plus the columns the cases change, for comparing whole states after a write.
fn state_columns(table: &str) -> Vec<&'static str> {
    let extra: &[&str] = match table {
        "profiles" => &["display_name"],
        "chat_rooms" => &["name"],
        "room_members" => &["role"],
        "chat_messages" => &["content", "room_id"],
        "challenges" => &["title", "status"],
        "challenge_submissions" => &["status"],
        "collaborative_documents" => &["title", "version"],
        "document_members" => &["role"],
        "document_updates" => &["document_id"],
        "document_snapshots" => &["upto_seq", "state"],
        _ => &[],
    };
    key_columns(table).iter().chain(extra).copied().collect()
}

/// A row's natural key as text (`value|value…`), from its JSON.
pub fn label(table: &str, row: &Map<String, Value>) -> String {
    key_columns(table)
        .iter()
        .map(|c| match row.get(*c) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "∅".into(),
            Some(other) => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// One query, valid in Postgres and in SQLite alike, listing every row of the data model as
/// `table|key…|changed columns…`: the state both backends must agree on after a write.
pub fn state_sql() -> String {
    ruwad_server::schema::TABLES
        .iter()
        .map(|t| {
            let cols: Vec<String> =
                state_columns(t.name).iter().map(|c| format!("COALESCE(\"{c}\" || '', '∅')")).collect();
            format!("SELECT '{}' || '|' || {} FROM \"{}\"", t.name, cols.join(" || '|' || "), t.name)
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}
