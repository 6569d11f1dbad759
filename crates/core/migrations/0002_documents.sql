-- Documents: the local copy of each document's CRDT (yrs) and where its sync stands.
--
-- doc_log is append-only between compactions: every update the local copy integrates — typed
-- here (origin 'local') or received (origin 'remote') — is appended before it is applied, so a
-- killed process loses nothing it showed. A row packs one or more yrs v1 updates, each
-- prefixed by its length as a varint (a catch-up page is one row). AUTOINCREMENT: a sequence
-- number is never reused after compaction deleted rows, so "rows after upto_log" stays true.
CREATE TABLE doc_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('local', 'remote')),
    updates BLOB NOT NULL,
    -- Local rows: 0 until their outbox entry exists (then 1). Remote rows are always 1.
    queued INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX doc_log_document ON doc_log(document_id, seq);
CREATE INDEX doc_log_unqueued ON doc_log(document_id, seq) WHERE queued = 0;

-- One row per document the device holds.
CREATE TABLE doc_state (
    document_id TEXT PRIMARY KEY,
    -- yrs v1 encoding of the state after every doc_log row with seq <= upto_log (NULL: none yet).
    snapshot BLOB,
    -- The state vector of that snapshot (v1), so a binding can be answered before it is loaded.
    snapshot_sv BLOB,
    upto_log INTEGER NOT NULL DEFAULT 0,
    -- Highest document_updates.seq integrated (catch-up resumes a little before it).
    server_seq INTEGER NOT NULL DEFAULT 0,
    -- upto_seq of the newest server snapshot known; and rows integrated above it since.
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    rows_since_snapshot INTEGER NOT NULL DEFAULT 0
);

-- The server's plain-text rendering of documents, for the list (previews, search).
ALTER TABLE documents ADD COLUMN content TEXT NOT NULL DEFAULT '';
