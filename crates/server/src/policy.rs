//! Row-level rules of the data model (`../shared/DESIGN.md`), as SQL predicates.
//!
//! Each rule is a SQLite boolean expression over the row, which is referred to by the table's
//! own name (`chat_messages.room_id`); the caller's id appears as a quoted literal (it comes
//! from a verified JWT and is checked to be a UUID, so it cannot carry SQL). The same
//! expression serves both places that must apply the rules:
//! - REST adds `USING` predicates to the `WHERE` of selects, updates and deletes, and checks
//!   `WITH CHECK` predicates on the rows an insert or update wrote, inside the transaction;
//! - Realtime evaluates the `SELECT` predicate against a changed row (even a deleted one) by
//!   aliasing a one-row `VALUES` subquery as the table: see [`row_visible_sql`].
//!
//! `service_role` bypasses every rule (no predicate); `anon` is refused everything (`0`).
//! Operations a table has no policy for match no row — as in Postgres with RLS on and the
//! default Supabase grants.

use crate::schema::Table;

/// Who is asking, from the verified JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Anon,
    /// A signed-in user; the id is a canonical lowercase UUID.
    User(String),
    ServiceRole,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Anon => "anon",
            Role::User(_) => "authenticated",
            Role::ServiceRole => "service_role",
        }
    }

    /// The role a verified token grants: `service_role`; a signed-in user (role
    /// `authenticated` with a UUID `sub`); anything else is `anon`.
    pub fn from_claims(claims: &crate::jwt::Claims) -> Role {
        match claims.role.as_str() {
            "service_role" => Role::ServiceRole,
            "authenticated" => match claims.sub.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
                Some(id) => Role::User(id.to_string()),
                None => Role::Anon,
            },
            _ => Role::Anon,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Role::User(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Select,
    Insert,
    Update,
    Delete,
}

/// The `USING` predicate (which existing rows `op` may see or touch), or `None` when the role
/// bypasses row security.
pub fn using(table: &Table, op: Op, role: &Role) -> Option<String> {
    rule(table.name, op, role, false)
}

/// The `WITH CHECK` predicate a row written by `op` (insert or update) must satisfy.
pub fn check(table: &Table, op: Op, role: &Role) -> Option<String> {
    rule(table.name, op, role, true)
}

/// A query returning one row iff `role` may read the row given as `?1, ?2, …` (in the table's
/// column order). Used by Realtime for rows that may no longer exist (deletes).
pub fn row_visible_sql(table: &Table, role: &Role) -> Option<String> {
    let pred = using(table, Op::Select, role)?;
    let cols: Vec<String> =
        table.columns.iter().enumerate().map(|(i, c)| format!("?{} AS \"{}\"", i + 1, c.name)).collect();
    Some(format!("SELECT 1 FROM (SELECT {}) AS \"{}\" WHERE {pred}", cols.join(", "), table.name))
}

/// A private topic that names no room or document we know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("private topic {0:?} is not chat:<room_id> or doc:<document_id>")]
pub struct UnknownTopic(pub String);

/// A private Realtime topic and the predicate that authorises `role` on it: `chat:<room_id>`
/// for room members, `doc:<document_id>` for document members, the id a UUID in its
/// canonical 8-4-4-4-12 form (either case). service_role may use any topic (`Ok(None)`: it
/// bypasses row security in Postgres too); `anon` none. `Err` for a topic that names nothing
/// we know, which is refused. Postgres: `private.may_use_topic` in
/// `supabase/migrations/*_realtime.sql`.
pub fn topic_sql(topic: &str, role: &Role) -> Result<Option<String>, UnknownTopic> {
    if *role == Role::ServiceRole {
        return Ok(None);
    }
    let unknown = || UnknownTopic(topic.to_string());
    let (kind, id) = topic.split_once(':').ok_or_else(unknown)?;
    // 36 characters: only the hyphenated form, not the simple, braced or URN forms `uuid` parses.
    if id.len() != 36 {
        return Err(unknown());
    }
    let id = uuid::Uuid::parse_str(id).map_err(|_| unknown())?.to_string();
    let Role::User(uid) = role else { return Ok(Some("SELECT 0".into())) };
    let u = lit(uid);
    let id = lit(&id);
    match kind {
        "chat" => Ok(Some(format!("SELECT {}", room_member(&id, &u)))),
        "doc" => Ok(Some(format!("SELECT {}", doc_member(&id, &u)))),
        _ => Err(unknown()),
    }
}

fn lit(s: &str) -> String {
    // Only ever called with canonical UUIDs, which contain no quote; doubling is belt and braces.
    format!("'{}'", s.replace('\'', "''"))
}

fn room_member(room: &str, u: &str) -> String {
    format!("EXISTS (SELECT 1 FROM room_members rm WHERE rm.room_id = {room} AND rm.user_id = {u})")
}

fn room_admin(room: &str, u: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM room_members ra WHERE ra.room_id = {room} AND ra.user_id = {u} AND ra.role = 'admin')"
    )
}

fn doc_member(doc: &str, u: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM collaborative_documents dd WHERE dd.id = {doc} AND dd.created_by = {u}) \
         OR EXISTS (SELECT 1 FROM document_members dm WHERE dm.document_id = {doc} AND dm.user_id = {u}))"
    )
}

fn doc_editor(doc: &str, u: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM collaborative_documents de WHERE de.id = {doc} AND de.created_by = {u}) \
         OR EXISTS (SELECT 1 FROM document_members dme WHERE dme.document_id = {doc} AND dme.user_id = {u} AND dme.role = 'editor'))"
    )
}

fn doc_creator(doc: &str, u: &str) -> String {
    format!("EXISTS (SELECT 1 FROM collaborative_documents dc WHERE dc.id = {doc} AND dc.created_by = {u})")
}

const DENY: &str = "0";

fn rule(table: &str, op: Op, role: &Role, with_check: bool) -> Option<String> {
    let uid = match role {
        Role::ServiceRole => return None,
        Role::Anon => return Some(DENY.into()),
        Role::User(uid) => lit(uid),
    };
    let u = uid.as_str();
    let c = |col: &str| format!("\"{table}\".\"{col}\"");
    let own = |col: &str| format!("{} = {u}", c(col));
    let p = match (table, op) {
        ("profiles", Op::Select) => "1".into(),
        ("profiles", Op::Insert | Op::Update) => own("id"),

        ("chat_rooms", Op::Select) => format!("({} = 'channel' OR {} OR {})", c("kind"), own("created_by"), room_member(&c("id"), u)),
        ("chat_rooms", Op::Insert) => own("created_by"),
        ("chat_rooms", Op::Update | Op::Delete) => format!("({} OR {})", own("created_by"), room_admin(&c("id"), u)),

        ("room_members", Op::Select) => format!("({} OR {})", own("user_id"), room_member(&c("room_id"), u)),
        ("room_members", Op::Insert) => format!(
            "(({own_user} AND {role} = 'member' AND EXISTS (SELECT 1 FROM chat_rooms r WHERE r.id = {room} AND r.kind = 'channel')) \
             OR ({own_user} AND EXISTS (SELECT 1 FROM chat_rooms r WHERE r.id = {room} AND r.created_by = {u})) \
             OR {admin})",
            own_user = own("user_id"),
            role = c("role"),
            room = c("room_id"),
            admin = room_admin(&c("room_id"), u)
        ),
        ("room_members", Op::Update) if with_check => {
            format!("({} OR ({} AND {} = 'member'))", room_admin(&c("room_id"), u), own("user_id"), c("role"))
        }
        ("room_members", Op::Update | Op::Delete) => format!("({} OR {})", own("user_id"), room_admin(&c("room_id"), u)),

        ("chat_messages", Op::Select) => room_member(&c("room_id"), u),
        ("chat_messages", Op::Insert) => format!("({} AND {})", own("user_id"), room_member(&c("room_id"), u)),
        ("chat_messages", Op::Update) => own("user_id"),

        ("message_reactions", Op::Select) => {
            format!("EXISTS (SELECT 1 FROM chat_messages m WHERE m.id = {} AND {})", c("message_id"), room_member("m.room_id", u))
        }
        ("message_reactions", Op::Insert) => format!(
            "({} AND EXISTS (SELECT 1 FROM chat_messages m WHERE m.id = {} AND {}))",
            own("user_id"),
            c("message_id"),
            room_member("m.room_id", u)
        ),
        ("message_reactions", Op::Delete) => own("user_id"),

        ("challenges", Op::Select) => format!("({} <> 'draft' OR {})", c("status"), own("created_by")),
        ("challenges", Op::Insert | Op::Update | Op::Delete) => own("created_by"),

        ("challenge_submissions", Op::Select) => format!(
            "({} OR EXISTS (SELECT 1 FROM challenges ch WHERE ch.id = {} AND ch.created_by = {u}))",
            own("user_id"),
            c("challenge_id")
        ),
        ("challenge_submissions", Op::Insert) => format!(
            "({} AND EXISTS (SELECT 1 FROM challenges ch WHERE ch.id = {} AND ch.status = 'open'))",
            own("user_id"),
            c("challenge_id")
        ),
        ("challenge_submissions", Op::Update) => {
            format!("EXISTS (SELECT 1 FROM challenges ch WHERE ch.id = {} AND ch.created_by = {u})", c("challenge_id"))
        }
        ("challenge_submissions", Op::Delete) => format!(
            "({} AND EXISTS (SELECT 1 FROM challenges ch WHERE ch.id = {} AND ch.status = 'open'))",
            own("user_id"),
            c("challenge_id")
        ),

        ("user_activities", Op::Select) => "1".into(),
        ("user_activities", Op::Insert) => own("user_id"),

        // The row's own creator first: it also holds for a row not (or no longer) stored.
        ("collaborative_documents", Op::Select) => format!("({} OR {})", own("created_by"), doc_member(&c("id"), u)),
        ("collaborative_documents", Op::Insert) => own("created_by"),
        ("collaborative_documents", Op::Update) => format!("({} OR {})", own("created_by"), doc_editor(&c("id"), u)),
        ("collaborative_documents", Op::Delete) => own("created_by"),

        ("document_members", Op::Select) => doc_member(&c("document_id"), u),
        ("document_members", Op::Insert | Op::Update | Op::Delete) => doc_creator(&c("document_id"), u),

        ("document_updates", Op::Select) => doc_member(&c("document_id"), u),
        ("document_updates", Op::Insert) => format!("({} AND {})", own("user_id"), doc_editor(&c("document_id"), u)),

        ("document_snapshots", Op::Select) => doc_member(&c("document_id"), u),
        ("document_snapshots", Op::Insert | Op::Update) => doc_editor(&c("document_id"), u),

        _ => DENY.into(),
    };
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{self, TABLES};

    #[test]
    fn service_role_bypasses_and_anon_is_denied_everywhere() {
        for t in TABLES {
            for op in [Op::Select, Op::Insert, Op::Update, Op::Delete] {
                assert_eq!(using(t, op, &Role::ServiceRole), None);
                assert_eq!(using(t, op, &Role::Anon).as_deref(), Some(DENY), "{} {:?}", t.name, op);
            }
        }
    }

    #[test]
    fn every_rule_is_valid_sqlite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = crate::db::Db::open(dir.path()).expect("open");
        let role = Role::User(uuid::Uuid::new_v4().to_string());
        db.read_blocking(|conn| -> Result<(), rusqlite::Error> {
            for t in TABLES {
                for op in [Op::Select, Op::Insert, Op::Update, Op::Delete] {
                    for p in [using(t, op, &role), check(t, op, &role)].into_iter().flatten() {
                        conn.prepare(&format!("SELECT 1 FROM \"{}\" WHERE {p}", t.name))
                            .unwrap_or_else(|e| panic!("{} {:?}: {e}\n{p}", t.name, op));
                    }
                }
                if let Some(sql) = row_visible_sql(t, &role) {
                    conn.prepare(&sql).unwrap_or_else(|e| panic!("{}: {e}\n{sql}", t.name));
                }
            }
            Ok(())
        })
        .expect("prepare all");
        let _ = schema::table("profiles");
    }

    #[test]
    fn private_topics_parse_and_unknown_ones_are_refused() {
        let role = Role::User(uuid::Uuid::new_v4().to_string());
        let id = uuid::Uuid::new_v4();
        assert!(topic_sql(&format!("chat:{id}"), &role).expect("chat topic").is_some());
        assert!(topic_sql(&format!("doc:{id}"), &role).expect("doc topic").is_some());
        assert!(topic_sql("chat:'; drop table x; --", &role).is_err());
        assert!(topic_sql("lobby", &role).is_err());
        assert_eq!(topic_sql(&format!("chat:{id}"), &Role::ServiceRole), Ok(None));
        assert_eq!(topic_sql("lobby", &Role::ServiceRole), Ok(None), "service_role bypasses, as in Postgres");
        let simple = id.simple().to_string();
        for odd in
            [format!("chat:{simple}"), format!("chat:{{{id}}}"), format!("chat:urn:uuid:{id}"), format!("chat:{id} ")]
        {
            assert!(topic_sql(&odd, &role).is_err(), "{odd} is not the canonical form");
        }
        let upper = id.to_string().to_uppercase();
        assert!(topic_sql(&format!("doc:{upper}"), &role).expect("upper-case doc topic").is_some());
    }
}
