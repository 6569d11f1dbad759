//! The platform data model (`../shared/DESIGN.md`) as data: every table of schema `public`,
//! its columns with their Postgres types, keys, server-side defaults and the columns a
//! signed-in user may update.
//!
//! REST (type checking, JSON output, defaults) and Realtime (the `columns` list of a
//! postgres_changes event) both read this one description; the SQLite DDL in `db.rs` creates
//! the same tables, and a test checks that the two agree.

/// Postgres type of a column, as Realtime names it (`typname`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Uuid,
    Text,
    Timestamptz,
    Int4,
    Int8,
}

impl ColType {
    pub fn pg_name(self) -> &'static str {
        match self {
            ColType::Uuid => "uuid",
            ColType::Text => "text",
            ColType::Timestamptz => "timestamptz",
            ColType::Int4 => "int4",
            ColType::Int8 => "int8",
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, ColType::Int4 | ColType::Int8)
    }
}

/// What the server puts in a column the client did not send (or may not send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// No default: the value comes from the client (or is NULL if nullable).
    None,
    /// `gen_random_uuid()` when absent.
    RandomUuid,
    /// `now()` when absent.
    Now,
    /// Always `now()` on insert, whatever the client sent (server time).
    ServerNow,
    /// Always `now()` on insert and update (`updated_at` trigger).
    Touch,
    /// A sequence (`GENERATED ALWAYS AS IDENTITY`): assigned by the server; a client that
    /// sends the column is refused (`428C9`).
    Serial,
    /// A constant default (as text / integer literal).
    Const(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    pub nullable: bool,
    pub fill: Fill,
    /// Allowed values (a CHECK constraint), if any.
    pub one_of: Option<&'static [&'static str]>,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub primary_key: &'static [&'static str],
    /// Columns that `anon` / `authenticated` may change with UPDATE (Postgres column grants).
    /// `service_role` may change any non-key column.
    pub updatable: &'static [&'static str],
    /// Rows are never updated or deleted, by anyone: the API roles hold no UPDATE or DELETE
    /// privilege on the table (so `updatable` is empty), and a trigger refuses service_role
    /// (`P0001`). Rows go only with a cascade from their document or author.
    pub append_only: bool,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn is_key(&self, name: &str) -> bool {
        self.primary_key.contains(&name)
    }
}

const fn col(name: &'static str, ty: ColType) -> Column {
    Column { name, ty, nullable: false, fill: Fill::None, one_of: None }
}
const fn opt(name: &'static str, ty: ColType) -> Column {
    Column { name, ty, nullable: true, fill: Fill::None, one_of: None }
}
const fn fill(name: &'static str, ty: ColType, fill: Fill) -> Column {
    Column { name, ty, nullable: false, fill, one_of: None }
}
const fn choice(name: &'static str, values: &'static [&'static str], default: Fill) -> Column {
    Column { name, ty: ColType::Text, nullable: false, fill: default, one_of: Some(values) }
}

use ColType::*;

pub const ROOM_KINDS: &[&str] = &["channel", "direct", "challenge"];
pub const MEMBER_ROLES: &[&str] = &["member", "admin"];
pub const MESSAGE_TYPES: &[&str] = &["text", "file"];
pub const CHALLENGE_STATUSES: &[&str] = &["draft", "open", "judging", "closed"];
pub const SUBMISSION_STATUSES: &[&str] = &["submitted", "accepted", "rejected"];
pub const DOCUMENT_ROLES: &[&str] = &["viewer", "editor"];

pub static TABLES: &[Table] = &[
    Table {
        name: "profiles",
        columns: &[
            col("id", Uuid),
            fill("display_name", Text, Fill::Const("")),
            opt("avatar_url", Text),
            fill("locale", Text, Fill::Const("ar")),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["id"],
        updatable: &["display_name", "avatar_url", "locale"],
        append_only: false,
    },
    Table {
        name: "chat_rooms",
        columns: &[
            fill("id", Uuid, Fill::RandomUuid),
            col("name", Text),
            choice("kind", ROOM_KINDS, Fill::Const("channel")),
            opt("challenge_id", Uuid),
            col("created_by", Uuid),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["id"],
        updatable: &["name"],
        append_only: false,
    },
    Table {
        name: "room_members",
        columns: &[
            col("room_id", Uuid),
            col("user_id", Uuid),
            choice("role", MEMBER_ROLES, Fill::Const("member")),
            fill("joined_at", Timestamptz, Fill::ServerNow),
            opt("last_read_at", Timestamptz),
        ],
        primary_key: &["room_id", "user_id"],
        updatable: &["last_read_at", "role"],
        append_only: false,
    },
    Table {
        name: "chat_messages",
        columns: &[
            fill("id", Uuid, Fill::RandomUuid),
            col("room_id", Uuid),
            col("user_id", Uuid),
            col("content", Text),
            choice("type", MESSAGE_TYPES, Fill::Const("text")),
            opt("reply_to", Uuid),
            opt("edited_at", Timestamptz),
            opt("deleted_at", Timestamptz),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["id"],
        updatable: &["content", "edited_at", "deleted_at"],
        append_only: false,
    },
    Table {
        name: "message_reactions",
        columns: &[
            col("message_id", Uuid),
            col("user_id", Uuid),
            col("emoji", Text),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["message_id", "user_id", "emoji"],
        updatable: &[],
        append_only: false,
    },
    Table {
        name: "challenges",
        columns: &[
            fill("id", Uuid, Fill::RandomUuid),
            col("title", Text),
            fill("description", Text, Fill::Const("")),
            choice("status", CHALLENGE_STATUSES, Fill::Const("draft")),
            opt("deadline", Timestamptz),
            col("created_by", Uuid),
            fill("created_at", Timestamptz, Fill::ServerNow),
            fill("updated_at", Timestamptz, Fill::Touch),
        ],
        primary_key: &["id"],
        updatable: &["title", "description", "status", "deadline"],
        append_only: false,
    },
    Table {
        name: "challenge_submissions",
        columns: &[
            fill("id", Uuid, Fill::RandomUuid),
            col("challenge_id", Uuid),
            col("user_id", Uuid),
            col("title", Text),
            fill("content", Text, Fill::Const("")),
            choice("status", SUBMISSION_STATUSES, Fill::Const("submitted")),
            fill("created_at", Timestamptz, Fill::ServerNow),
            fill("updated_at", Timestamptz, Fill::Touch),
        ],
        primary_key: &["id"],
        updatable: &["status"],
        append_only: false,
    },
    Table {
        name: "user_activities",
        columns: &[
            fill("id", Int8, Fill::Serial),
            col("user_id", Uuid),
            col("kind", Text),
            opt("ref_id", Uuid),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["id"],
        updatable: &[],
        append_only: false,
    },
    Table {
        name: "collaborative_documents",
        columns: &[
            fill("id", Uuid, Fill::RandomUuid),
            col("title", Text),
            opt("challenge_id", Uuid),
            col("created_by", Uuid),
            fill("content", Text, Fill::Const("")),
            fill("version", Int4, Fill::Const("0")),
            opt("last_modified_by", Uuid),
            fill("updated_at", Timestamptz, Fill::Touch),
        ],
        primary_key: &["id"],
        updatable: &["title", "content", "version", "last_modified_by"],
        append_only: false,
    },
    Table {
        name: "document_members",
        columns: &[
            col("document_id", Uuid),
            col("user_id", Uuid),
            choice("role", DOCUMENT_ROLES, Fill::Const("editor")),
        ],
        primary_key: &["document_id", "user_id"],
        updatable: &["role"],
        append_only: false,
    },
    Table {
        name: "document_updates",
        columns: &[
            fill("seq", Int8, Fill::Serial),
            col("id", Uuid),
            col("document_id", Uuid),
            col("user_id", Uuid),
            col("update", Text),
            fill("created_at", Timestamptz, Fill::ServerNow),
        ],
        primary_key: &["seq"],
        updatable: &[],
        append_only: true,
    },
    Table {
        name: "document_snapshots",
        columns: &[
            col("document_id", Uuid),
            col("upto_seq", Int8),
            col("state", Text),
            fill("updated_at", Timestamptz, Fill::Touch),
        ],
        primary_key: &["document_id"],
        updatable: &["upto_seq", "state"],
        append_only: false,
    },
];

/// Looks a table of schema `public` up by name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Current time the way PostgREST renders `timestamptz`: `2026-11-29T07:33:20.123456+00:00`.
pub fn now_text() -> String {
    format_ts(chrono::Utc::now())
}

pub fn format_ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// Parses a timestamp as Postgres would accept it from a client (RFC 3339, a space instead of
/// `T`, no zone meaning UTC, a date alone) and renders it canonically, so stored texts sort in
/// time order. `None` for anything else.
pub fn normalize_ts(input: &str) -> Option<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)) {
        return Some(format_ts(t.with_timezone(&Utc)));
    }
    // `+00` / `+0000` offsets without a colon, as Postgres prints them.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(format_ts(t.with_timezone(&Utc)));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(format_ts(t.and_utc()));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| format_ts(t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_normalise_to_one_sortable_form() {
        let want = "2026-01-02T03:04:05.000000+00:00";
        for input in
            ["2026-01-02T03:04:05Z", "2026-01-02 03:04:05+00", "2026-01-02T05:04:05+02:00", "2026-01-02T03:04:05"]
        {
            assert_eq!(normalize_ts(input).as_deref(), Some(want), "input {input}");
        }
        assert_eq!(normalize_ts("2026-01-02").as_deref(), Some("2026-01-02T00:00:00.000000+00:00"));
        assert_eq!(normalize_ts("yesterday"), None);
        assert_eq!(normalize_ts("2026-13-01"), None);
    }

    #[test]
    fn every_table_has_its_key_columns() {
        for t in TABLES {
            for k in t.primary_key {
                assert!(t.column(k).is_some(), "{}.{} is a key but not a column", t.name, k);
            }
            for u in t.updatable {
                assert!(t.column(u).is_some(), "{}.{} is updatable but not a column", t.name, u);
            }
            assert!(
                !t.append_only || t.updatable.is_empty(),
                "{} is append-only, so nothing in it is updatable",
                t.name
            );
        }
    }
}
