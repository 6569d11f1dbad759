//! The access matrix: who (anon, service_role, each account) tries what (read a table, insert
//! a row, change or delete each fixture row, call the RPC, use a private topic), generated
//! from the fixture so that every rule meets callers on both of its sides.
//!
//! A case says what is asked, never what should happen: the two backends are each other's
//! expectation. Coverage — that every policy was seen to allow and to refuse — is checked
//! separately, against the policies Postgres actually has.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::{json, Map, Value};

use crate::world::{self, World, NEWCOMER, USER_NAMES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Anon,
    Service,
    /// Account `i` of [`USER_NAMES`].
    User(usize),
}

impl Actor {
    pub fn all() -> Vec<Actor> {
        let mut v = vec![Actor::Anon, Actor::Service];
        v.extend((0..USER_NAMES.len()).map(Actor::User));
        v
    }

    /// The Postgres role PostgREST would switch to.
    pub fn role(self) -> &'static str {
        match self {
            Actor::Anon => "anon",
            Actor::Service => "service_role",
            Actor::User(_) => "authenticated",
        }
    }

    /// The JWT claims the request carries (what Supabase puts in `request.jwt.claims`).
    pub fn claims(self) -> String {
        match self {
            Actor::User(i) => {
                json!({"sub": world::user(i), "role": "authenticated", "aud": "authenticated"}).to_string()
            }
            other => json!({"role": other.role()}).to_string(),
        }
    }

    /// The account whose id this actor writes into rows "as themselves". anon and
    /// service_role have none; they act for karim, who has a profile and few rights.
    fn me(self) -> usize {
        match self {
            Actor::User(i) => i,
            _ => 4,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(i) => write!(f, "{} (authenticated)", USER_NAMES[*i]),
            other => f.write_str(other.role()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// `Prefer: resolution=merge-duplicates` on the primary key.
    Merge,
    /// `Prefer: resolution=ignore-duplicates` with `on_conflict=<these columns>`.
    Ignore(&'static [&'static str]),
}

#[derive(Debug, Clone)]
pub enum Action {
    Select {
        table: &'static str,
    },
    /// `returning`: `Prefer: return=representation` (`RETURNING`), which also needs the
    /// written rows to pass the SELECT rule.
    Insert {
        table: &'static str,
        row: Map<String, Value>,
        upsert: Option<Upsert>,
        returning: bool,
    },
    Update {
        table: &'static str,
        key: Vec<(&'static str, String)>,
        set: Map<String, Value>,
        returning: bool,
    },
    Delete {
        table: &'static str,
        key: Vec<(&'static str, String)>,
    },
    LiveMetrics,
    /// Private Realtime topic: read (join / receive) or write (send / track).
    Topic {
        topic: String,
        write: bool,
    },
}

impl Action {
    /// The table and Postgres command whose policies this action meets.
    pub fn policy_target(&self) -> (&'static str, &'static str) {
        match self {
            Action::Select { table } => (table, "SELECT"),
            Action::Insert { table, .. } => (table, "INSERT"),
            Action::Update { table, .. } => (table, "UPDATE"),
            Action::Delete { table, .. } => (table, "DELETE"),
            Action::LiveMetrics => ("get_live_metrics", "EXECUTE"),
            // realtime.messages, whose policies authorise private topics.
            Action::Topic { write: false, .. } => ("messages", "SELECT"),
            Action::Topic { write: true, .. } => ("messages", "INSERT"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub actor: Actor,
    pub action: Action,
}

/// What a backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A read: the natural keys of the rows returned.
    Rows(BTreeSet<String>),
    /// A write that went through, touching this many rows (0: row security filtered them out).
    Wrote(u64),
    /// Refused with this SQLSTATE.
    Refused(String),
    /// `get_live_metrics()`: the counts both backends compute the same way.
    Metrics(String),
    /// A private topic: allowed or not.
    Topic(bool),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Rows(r) => write!(f, "{} rows", r.len()),
            Outcome::Wrote(n) => write!(f, "wrote {n}"),
            Outcome::Refused(code) => write!(f, "refused {code}"),
            Outcome::Metrics(m) => write!(f, "metrics {m}"),
            Outcome::Topic(ok) => f.write_str(if *ok { "topic allowed" } else { "topic refused" }),
        }
    }
}

/// An outcome with what came with it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub outcome: Outcome,
    /// After a write that changed rows: every row of the data model ([`world::state_sql`]).
    pub state: Option<BTreeSet<String>>,
    /// The error message, if refused.
    pub message: String,
}

impl Observed {
    pub fn plain(outcome: Outcome) -> Observed {
        Observed { outcome, state: None, message: String::new() }
    }
}

/// Prints a case with the fixture's short names instead of UUIDs.
pub struct Describe<'a>(pub &'a Case, pub &'a HashMap<String, String>);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |s: &str| self.1.get(s).cloned().unwrap_or_else(|| s.to_string());
        let obj = |m: &Map<String, Value>| {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}: {}", short(s)),
                    other => format!("{k}: {other}"),
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        };
        let key =
            |k: &[(&str, String)]| k.iter().map(|(c, v)| format!("{c}={}", short(v))).collect::<Vec<_>>().join(" ");
        write!(f, "{} ", self.0.actor)?;
        match &self.0.action {
            Action::Select { table } => write!(f, "SELECT {table}"),
            Action::Insert { table, row, upsert, returning } => {
                write!(f, "INSERT {table} {}", obj(row))?;
                match upsert {
                    Some(Upsert::Merge) => f.write_str(" (merge duplicates)")?,
                    Some(Upsert::Ignore(cols)) => write!(f, " (ignore duplicates on {})", cols.join(","))?,
                    None => {}
                }
                f.write_str(if *returning { " RETURNING" } else { "" })
            }
            Action::Update { table, key: k, set, returning } => {
                write!(f, "UPDATE {table} {} SET {}{}", key(k), obj(set), if *returning { " RETURNING" } else { "" })
            }
            Action::Delete { table, key: k } => write!(f, "DELETE {table} {}", key(k)),
            Action::LiveMetrics => f.write_str("RPC get_live_metrics()"),
            Action::Topic { topic, write } => {
                let mut t = topic.clone();
                for (id, name) in self.1 {
                    t = t.replace(id.as_str(), name);
                }
                write!(f, "{} private topic {t:?}", if *write { "WRITE" } else { "READ" })
            }
        }
    }
}

/// Every case of the matrix.
pub fn cases(w: &World) -> Vec<Case> {
    let mut out = Vec::new();
    let mut fresh = 0usize;
    let mut new_id = || {
        fresh += 1;
        world::new_id(fresh)
    };
    let ts = "2026-01-02T03:04:05Z";
    for actor in Actor::all() {
        let me = actor.me();
        let u = |i: usize| world::user(i);
        let my = u(me);
        // Someone with a profile who is not `me`.
        let other = if me == 0 { u(1) } else { u(0) };
        let mut push = |action: Action| out.push(Case { actor, action });

        for t in ruwad_server::schema::TABLES {
            push(Action::Select { table: t.name });
        }

        // Inserts.
        let mut insert = |table: &'static str, row: Value, upsert: Option<Upsert>| {
            let Value::Object(row) = row else { unreachable!("rows are objects") };
            for returning in [false, true] {
                push(Action::Insert { table, row: row.clone(), upsert, returning });
            }
        };
        insert("profiles", json!({"id": u(NEWCOMER), "display_name": "new"}), None);
        if me != NEWCOMER {
            insert("profiles", json!({"id": my, "display_name": "again"}), None);
        }
        insert("profiles", json!({"id": my, "display_name": "merged"}), Some(Upsert::Merge));
        insert("chat_rooms", json!({"id": new_id(), "name": "mine", "kind": "direct", "created_by": my}), None);
        insert("chat_rooms", json!({"id": new_id(), "name": "theirs", "kind": "channel", "created_by": other}), None);
        for r in 1..=world::ROOMS {
            let room = world::room(r);
            let members = w.room_members(&room);
            let outsider = (0..NEWCOMER).map(u).find(|x| *x != my && !members.contains(x)).unwrap_or_else(|| u(4));
            insert("room_members", json!({"room_id": room, "user_id": my, "role": "member"}), None);
            insert("room_members", json!({"room_id": room, "user_id": my, "role": "admin"}), None);
            insert("room_members", json!({"room_id": room, "user_id": outsider, "role": "member"}), None);
            insert("chat_messages", json!({"id": new_id(), "room_id": room, "user_id": my, "content": "hi"}), None);
        }
        for r in [1, 2] {
            insert(
                "room_members",
                json!({"room_id": world::room(r), "user_id": my, "last_read_at": ts}),
                Some(Upsert::Merge),
            );
        }
        insert(
            "chat_messages",
            json!({"id": new_id(), "room_id": world::room(1), "user_id": other, "content": "as them"}),
            None,
        );
        for m in 1..=world::MESSAGES {
            insert("message_reactions", json!({"message_id": world::message(m), "user_id": my, "emoji": "🚀"}), None);
        }
        insert("message_reactions", json!({"message_id": world::message(1), "user_id": other, "emoji": "🚀"}), None);
        insert("challenges", json!({"id": new_id(), "title": "mine", "status": "open", "created_by": my}), None);
        insert("challenges", json!({"id": new_id(), "title": "theirs", "created_by": other}), None);
        for c in 1..=world::CHALLENGES {
            let row = json!({"id": new_id(), "challenge_id": world::challenge(c), "user_id": my, "title": "entry"});
            insert("challenge_submissions", row, None);
        }
        let row = json!({"id": new_id(), "challenge_id": world::challenge(1), "user_id": other, "title": "as them"});
        insert("challenge_submissions", row, None);
        insert("user_activities", json!({"user_id": my, "kind": "case"}), None);
        insert("user_activities", json!({"user_id": other, "kind": "case"}), None);
        insert("user_activities", json!({"id": 424242, "user_id": my, "kind": "case-with-id"}), None);
        insert("collaborative_documents", json!({"id": new_id(), "title": "mine", "created_by": my}), None);
        insert("collaborative_documents", json!({"id": new_id(), "title": "theirs", "created_by": other}), None);
        for d in 1..=world::DOCUMENTS {
            let doc = world::document(d);
            let members = w.document_members(&doc);
            let creator =
                w.rows_of("collaborative_documents").find(|r| r.text("id") == doc).map(|r| r.text("created_by"));
            let outsider = (0..NEWCOMER)
                .map(u)
                .find(|x| !members.contains(x) && Some(x) != creator.as_ref() && *x != my)
                .unwrap_or_else(|| u(4));
            insert("document_members", json!({"document_id": doc, "user_id": outsider, "role": "viewer"}), None);
            let row = json!({"id": new_id(), "document_id": doc, "user_id": my, "update": "AQ=="});
            insert("document_updates", row, None);
            let row = json!({"document_id": doc, "upto_seq": 10, "state": "S10"});
            insert("document_snapshots", row, Some(Upsert::Merge));
        }
        insert("document_members", json!({"document_id": world::document(1), "user_id": my, "role": "editor"}), None);
        let row = json!({"id": new_id(), "document_id": world::document(1), "user_id": other, "update": "AQ=="});
        insert("document_updates", row, None);
        let existing =
            json!({"id": world::doc_update(1), "document_id": world::document(1), "user_id": u(0), "update": "AQID"});
        insert("document_updates", existing, Some(Upsert::Ignore(&["id"])));
        insert("document_snapshots", json!({"document_id": world::document(3), "upto_seq": 1, "state": "S1"}), None);
        let back = json!({"document_id": world::document(4), "upto_seq": 1, "state": "S1"});
        insert("document_snapshots", back, Some(Upsert::Merge));

        // Updates and deletes of every fixture row.
        for row in &w.rows {
            let key: Vec<(&'static str, String)> =
                world::key_columns(row.table).iter().map(|c| (*c, row.text(c))).collect();
            let sets: Vec<Value> = match row.table {
                "profiles" => vec![json!({"display_name": "renamed"})],
                "chat_rooms" => vec![json!({"name": "renamed"})],
                "room_members" => {
                    let flip = if row.text("role") == "admin" { "member" } else { "admin" };
                    vec![json!({"last_read_at": ts}), json!({"role": flip})]
                }
                "chat_messages" if row.text("id") == world::message(1) => {
                    vec![json!({"content": "edited", "edited_at": ts}), json!({"room_id": world::room(2)})]
                }
                "chat_messages" => vec![json!({"content": "edited", "edited_at": ts, "deleted_at": ts})],
                "message_reactions" => vec![json!({"emoji": "🎈"})],
                "challenges" => vec![json!({"title": "renamed", "status": "closed"})],
                "challenge_submissions" => vec![json!({"status": "accepted"})],
                "user_activities" => vec![json!({"kind": "renamed"})],
                "collaborative_documents" => vec![json!({"title": "renamed", "version": 7})],
                "document_members" => {
                    vec![json!({"role": if row.text("role") == "editor" { "viewer" } else { "editor" }})]
                }
                "document_updates" => vec![json!({"update": "AA=="})],
                "document_snapshots" => {
                    vec![json!({"upto_seq": 100, "state": "S100"}), json!({"upto_seq": 0, "state": "S0"})]
                }
                other => panic!("no update for {other}"),
            };
            for set in sets {
                let Value::Object(set) = set else { unreachable!("sets are objects") };
                for returning in [false, true] {
                    push(Action::Update { table: row.table, key: key.clone(), set: set.clone(), returning });
                }
            }
            push(Action::Delete { table: row.table, key });
        }

        push(Action::LiveMetrics);

        // Private topics: every room and document, and names that are not quite one.
        let r1 = world::room(1);
        let d1 = world::document(1);
        let mut topics: Vec<String> = (1..=world::ROOMS).map(|r| format!("chat:{}", world::room(r))).collect();
        topics.extend((1..=world::DOCUMENTS).map(|d| format!("doc:{}", world::document(d))));
        topics.extend([
            format!("chat:{}", r1.to_uppercase()),
            format!("doc:{}", d1.replace('-', "")),
            format!("chat:{{{r1}}}"),
            format!("chat:urn:uuid:{r1}"),
            format!("chat:{r1}:x"),
            format!("room:{r1}"),
            format!("doc:{r1}"),
            format!("chat:{}", world::nowhere()),
            "lobby".into(),
            "chat:".into(),
        ]);
        for topic in topics {
            for write in [false, true] {
                push(Action::Topic { topic: topic.clone(), write });
            }
        }
    }
    out
}
