// Hand-written mirror of the IPC contract (ipc-contract.md) and of ruwad-core's model.rs,
// events.rs and notify.rs. It is replaced by the bindings generated from the Rust types
// (ui/src/bindings.ts) once the shell exists; every call site goes through ./index.ts, so only
// that module changes then. Field names are snake_case, as serde writes them.

export type Uuid = string;
/** RFC 3339 text as the server wrote it. */
export type Timestamp = string;
/** Binary data (Yjs updates, state vectors) as base64. */
export type Base64 = string;

export type ErrorCode =
  | 'not_signed_in'
  | 'invalid_credentials'
  | 'refused'
  | 'unavailable'
  | 'server'
  | 'storage'
  | 'internal'
  | 'keychain'
  | 'update'
  | 'config';

/** What every command rejects with. */
export interface AppErrorPayload {
  code: ErrorCode;
  message: string;
}

// ---- app -----------------------------------------------------------------------------------

export type Backend = { kind: 'embedded' } | { kind: 'supabase'; url: string; anon_key: string };

export interface Capability {
  available: boolean;
  /** What is missing, shown to the user when not available. */
  message: string | null;
}

export interface DemoAccount {
  email: string;
  password: string;
  display_name: string;
}

export interface AppInfo {
  version: string;
  backend: Backend;
  demo_accounts: DemoAccount[];
  capabilities: { keychain: Capability; notifications: Capability; tray: Capability };
}

export type Language = 'en' | 'ar';
export type Theme = 'system' | 'light' | 'dark';
export type UpdateChannel = 'stable' | 'beta';

export interface Settings {
  language: Language;
  theme: Theme;
  update_channel: UpdateChannel;
  notifications_paused: boolean;
}

export interface UpdateCheck {
  available: boolean;
  version: string | null;
  notes: string | null;
}

// ---- session -------------------------------------------------------------------------------

export interface Session {
  user_id: Uuid | null;
  email: string | null;
  display_name: string | null;
  /** False when there is no keychain: the session is not kept across restarts. */
  remembered: boolean;
}

export type ConnectionState =
  | { state: 'online' }
  | { state: 'connecting'; attempt: number; retry_in_ms: number }
  | { state: 'offline' };

export interface QueueCounts {
  queued: number;
  failed: number;
}

export interface EntryError {
  status: number | null;
  code: string | null;
  message: string;
}

export interface OutboxEntry {
  seq: number;
  kind: string;
  stream: string;
  /** The id of the row the change concerns (a message, a submission, a room). */
  target: string;
  failed: boolean;
  error: EntryError | null;
  attempts: number;
  created_at: Timestamp;
}

export interface Profile {
  id: Uuid;
  display_name: string;
  avatar_url: string | null;
  locale: string;
}

// ---- chat ----------------------------------------------------------------------------------

export type SendState = 'pending' | 'sent' | 'failed';

export interface Room {
  id: Uuid;
  name: string;
  kind: 'channel' | 'direct' | 'challenge';
  challenge_id: Uuid | null;
  created_by: Uuid;
  created_at: Timestamp;
  member: boolean;
  last_read_at: Timestamp | null;
  unread: number;
  latest_at: Timestamp | null;
}

export interface Reaction {
  emoji: string;
  user_id: Uuid;
  pending: boolean;
}

export interface Message {
  id: Uuid;
  room_id: Uuid;
  user_id: Uuid;
  /** Empty for a deleted message. */
  content: string;
  kind: 'text' | 'file';
  reply_to: Uuid | null;
  edited_at: Timestamp | null;
  deleted_at: Timestamp | null;
  /** Null until the server has the message. */
  created_at: Timestamp | null;
  state: SendState;
  reactions: Reaction[];
}

/** Oldest first. */
export interface MessagePage {
  messages: Message[];
  complete: boolean;
}

export interface Anchor {
  created_at: Timestamp;
  id: Uuid;
}

// ---- challenges ----------------------------------------------------------------------------

export type ChallengeStatus = 'draft' | 'open' | 'judging' | 'closed';

export interface Challenge {
  id: Uuid;
  title: string;
  description: string;
  status: ChallengeStatus;
  deadline: Timestamp | null;
  created_by: Uuid;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface Submission {
  id: Uuid;
  challenge_id: Uuid;
  user_id: Uuid;
  title: string;
  content: string;
  status: 'submitted' | 'accepted' | 'rejected';
  created_at: Timestamp | null;
  updated_at: Timestamp | null;
  state: SendState;
}

export type NoticeKind = 'new_challenge' | 'challenge_status' | 'new_submission' | 'submission_decision';

export const NOTICE_KINDS: readonly NoticeKind[] = [
  'new_challenge',
  'challenge_status',
  'new_submission',
  'submission_decision',
];

export interface Prefs {
  muted: boolean;
  /** A kind not listed is on. */
  kinds: Partial<Record<NoticeKind, boolean>>;
}

export interface Notice {
  kind: NoticeKind;
  challenge_id: Uuid | null;
  title: string;
  status: string | null;
  count: number;
}

// ---- analytics -----------------------------------------------------------------------------

export interface LiveMetrics {
  active_users: number;
  total_challenges: number;
  new_submissions: number;
  online_users: number;
}

export interface Activity {
  id: number;
  user_id: Uuid;
  kind: string;
  ref_id: Uuid | null;
  created_at: Timestamp;
}

export interface SeriesPoint {
  /** Start of the bucket, Unix seconds. */
  start: number;
  events: number;
  users: number;
}

// ---- documents -----------------------------------------------------------------------------

export interface DocumentInfo {
  id: Uuid;
  title: string;
  challenge_id: Uuid | null;
  role: 'owner' | 'editor' | 'viewer';
  updated_at: Timestamp;
  last_modified_by: Uuid | null;
}

export interface DocOpened {
  /** What the engine has that the UI's state vector lacks. */
  update: Base64;
  /** The engine's state vector: the UI sends back what the engine lacks. */
  state_vector: Base64;
  read_only: boolean;
}

export interface DocStatus {
  read_only: boolean;
  /** Local updates not yet on the server. */
  pending: number;
  synced: boolean;
}

// ---- events (`ruwad://event`) --------------------------------------------------------------

export type RuwadEvent =
  | { type: 'session'; user_id: Uuid | null }
  | { type: 'connection'; state: ConnectionState }
  | { type: 'rooms'; ids: Uuid[] }
  | { type: 'messages'; room_id: Uuid; ids: Uuid[] }
  | { type: 'challenges'; ids: Uuid[] }
  | { type: 'submissions'; challenge_id: Uuid; ids: Uuid[] }
  | { type: 'outbox'; counts: QueueCounts }
  | { type: 'analytics'; metrics: LiveMetrics | null }
  | { type: 'notify'; notices: Notice[] }
  | { type: 'typing'; room_id: Uuid; user_ids: Uuid[] }
  | { type: 'presence'; room_id: Uuid; user_ids: Uuid[] }
  | { type: 'documents'; ids: Uuid[] }
  | { type: 'doc_update'; document_id: Uuid; update: Base64 }
  | { type: 'doc_awareness'; document_id: Uuid; update: Base64 }
  | { type: 'doc_status'; document_id: Uuid; status: DocStatus }
  | { type: 'navigate'; screen: 'challenge'; id: Uuid }
  | { type: 'update_available'; version: string; notes: string | null };

export type RuwadEventType = RuwadEvent['type'];
