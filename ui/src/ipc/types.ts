// The IPC types. Everything the shell sends or takes is generated from the Rust types by
// tauri-specta into ../bindings.ts (do not edit that file: `RUWAD_WRITE_BINDINGS=1 cargo test
// -p ruwad-desktop bindings_are_current` rewrites it, and that test fails when it drifts).
// This module re-exports those types under the names the UI uses and adds only what is the
// UI's own: readable aliases for strings and a few lists. Object fields are snake_case, as
// serde writes them.

import type { AppEvent, NoticeKind } from '../bindings';

export type {
  Activity,
  Anchor,
  AppEvent,
  AppInfo,
  Backend,
  Capabilities,
  Capability,
  Challenge,
  ConnectionState,
  DemoAccount,
  DocOpened,
  DocStatus,
  DocumentInfo,
  EntryError,
  ErrorCode,
  Event,
  Language,
  LiveMetrics,
  Message,
  MessagePage,
  Profile,
  Notice,
  NoticeKind,
  OutboxEntry,
  Prefs,
  QueueCounts,
  Reaction,
  ReadyScreen,
  Role,
  Room,
  Screen,
  SendState,
  SeriesPoint,
  SessionInfo,
  Settings,
  ShellEvent,
  SignedIn,
  Submission,
  Theme,
  UpdateChannel,
  UpdateInfo,
} from '../bindings';
/** What every command rejects with (the facade turns it into the `AppError` class). */
export type { AppError as AppErrorPayload } from '../bindings';

// ---- UI-only aliases ----------------------------------------------------------------------

/** The bindings type ids as plain strings; the alias says what the string is. */
export type Uuid = string;
/** RFC 3339 text as the server wrote it. */
export type Timestamp = string;
/** Binary data (Yjs updates, state vectors, awareness) as base64. */
export type Base64 = string;

/** The payload of `ruwad://event`: every engine event plus the shell's `navigate` / `reload`. */
export type RuwadEvent = AppEvent;
export type RuwadEventType = RuwadEvent['type'];

export const NOTICE_KINDS: readonly NoticeKind[] = [
  'new_challenge',
  'challenge_status',
  'new_submission',
  'submission_decision',
];

