-- ruwad-core, migration 1: the cache of what the signed-in user can see, and local state.
--
-- Cached server rows keep the server's column names (../shared/DESIGN.md, schema `public`).
-- Times are the server's text form `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, which sorts in time
-- order. One database belongs to one user (the engine keeps one file per account), so no
-- table needs an owner column.
--
-- The outbox has no foreign key on purpose: no cascade from the cache may ever delete a
-- queued change. Entries go only when the server confirmed them or the user discarded them.

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    avatar_url TEXT,
    locale TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    challenge_id TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Members of the rooms the user belongs to; the user's own row carries the read marker
-- (`last_read_at`) that unread counts are computed from.
CREATE TABLE room_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    last_read_at TEXT,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);

-- `created_at` is the server's time, NULL until the server has the row (a local echo);
-- `local_at` is when this client wrote or first stored the row, by its own clock.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    type TEXT NOT NULL,
    reply_to TEXT,
    edited_at TEXT,
    deleted_at TEXT,
    created_at TEXT,
    local_at TEXT NOT NULL
);
CREATE INDEX messages_room_time ON messages(room_id, created_at, id);

CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    emoji TEXT NOT NULL,
    created_at TEXT,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    deadline TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX challenges_updated ON challenges(updated_at);

CREATE TABLE submissions (
    id TEXT PRIMARY KEY,
    challenge_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT,
    updated_at TEXT,
    local_at TEXT NOT NULL
);
CREATE INDEX submissions_challenge ON submissions(challenge_id, created_at);

-- Server rows only: their ids come from the server's sequence.
CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX activities_time ON activities(created_at);

-- Document metadata (the CRDT state lives with the documents work, not here).
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    challenge_id TEXT,
    created_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_modified_by TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE document_members (
    document_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (document_id, user_id)
);

-- Where catch-up resumes, per sync stream (`messages:<room>`, `challenges`, …): the newest
-- server time seen; catch-up asks again from a little before it (the overlap window).
CREATE TABLE sync_cursors (
    stream TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Rooms whose history the cache holds back to the first message.
CREATE TABLE room_history (
    room_id TEXT PRIMARY KEY,
    complete INTEGER NOT NULL
);

CREATE TABLE drafts (
    room_id TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- `scope` is `global`, `room:<id>` or `challenge:<id>`; `kinds` a JSON object of per-type
-- switches (`{"new_challenge": false}`).
CREATE TABLE notification_prefs (
    scope TEXT PRIMARY KEY,
    muted INTEGER NOT NULL DEFAULT 0,
    kinds TEXT NOT NULL DEFAULT '{}'
);

-- Small values that outlive a run (the last live metrics, …).
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The outbound queue. `seq` is the FIFO order; `stream` the unit of ordering (a room, a
-- challenge's submissions, …); `target` the local row the change concerns (the message id for
-- messages and their reactions); `request` what to send, `undo` how a discard rolls the
-- local echo back (both JSON, see src/queue/entry.rs); `state` `failed` with `error` after a
-- permanent refusal.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    request TEXT NOT NULL,
    undo TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX outbox_stream ON outbox(stream, seq);
CREATE INDEX outbox_target ON outbox(target);
