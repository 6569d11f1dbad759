-- Ruwād local backend, migration 1: auth and the platform data model (schema `public` of
-- ../shared/DESIGN.md). Column order matches src/schema.rs (checked by a test).
-- Times are TEXT in the canonical form `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, so they sort in
-- time order; the server fills them, hence no SQL defaults.

CREATE TABLE auth_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    encrypted_password TEXT NOT NULL,
    raw_user_meta_data TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_sign_in_at TEXT
);

CREATE TABLE auth_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Rotating refresh tokens: a token is used once; reusing a revoked token is refused.
CREATE TABLE auth_refresh_tokens (
    token TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
    parent TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens(session_id);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY REFERENCES auth_users(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    avatar_url TEXT,
    locale TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'judging', 'closed')),
    deadline TEXT,
    created_by TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX challenges_updated ON challenges(updated_at);

CREATE TABLE chat_rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('channel', 'direct', 'challenge')),
    challenge_id TEXT REFERENCES challenges(id) ON DELETE SET NULL,
    created_by TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);

CREATE TABLE room_members (
    room_id TEXT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    joined_at TEXT NOT NULL,
    last_read_at TEXT,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);

CREATE TABLE chat_messages (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('text', 'file')),
    reply_to TEXT REFERENCES chat_messages(id) ON DELETE SET NULL,
    edited_at TEXT,
    deleted_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX chat_messages_room_time ON chat_messages(room_id, created_at, id);

CREATE TABLE message_reactions (
    message_id TEXT NOT NULL REFERENCES chat_messages(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    emoji TEXT NOT NULL CHECK (length(emoji) BETWEEN 1 AND 64),
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE challenge_submissions (
    id TEXT PRIMARY KEY,
    challenge_id TEXT NOT NULL REFERENCES challenges(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('submitted', 'accepted', 'rejected')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX challenge_submissions_challenge ON challenge_submissions(challenge_id, created_at);

CREATE TABLE user_activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    ref_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX user_activities_time ON user_activities(created_at);

CREATE TABLE collaborative_documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    challenge_id TEXT REFERENCES challenges(id) ON DELETE SET NULL,
    created_by TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_modified_by TEXT REFERENCES profiles(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE document_members (
    document_id TEXT NOT NULL REFERENCES collaborative_documents(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'editor')),
    PRIMARY KEY (document_id, user_id)
);
CREATE INDEX document_members_user ON document_members(user_id);

CREATE TABLE document_updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL REFERENCES collaborative_documents(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    "update" TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX document_updates_doc_seq ON document_updates(document_id, seq);

CREATE TABLE document_snapshots (
    document_id TEXT PRIMARY KEY REFERENCES collaborative_documents(id) ON DELETE CASCADE,
    upto_seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Document updates are append-only, for every role (Postgres: a trigger, so service_role too).
-- A cascade from deleting the whole document is the one way they go.
CREATE TRIGGER document_updates_no_update BEFORE UPDATE ON document_updates
BEGIN SELECT RAISE(ABORT, 'document_updates is append-only'); END;

-- A snapshot only moves forward.
CREATE TRIGGER document_snapshots_forward BEFORE UPDATE ON document_snapshots
WHEN NEW.upto_seq < OLD.upto_seq
BEGIN SELECT RAISE(ABORT, 'document snapshot upto_seq cannot move backwards'); END;
