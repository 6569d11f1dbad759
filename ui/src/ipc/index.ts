// The one way the UI talks to the Rust shell: a typed function per command of the IPC
// contract and `subscribe` for the single `ruwad://event` channel. Components import from here
// and never call `invoke` themselves, so the generated bindings can replace ./types.ts without
// touching a call site, and tests mock this one module.

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type {
  Activity,
  Anchor,
  AppErrorPayload,
  AppInfo,
  Backend,
  Base64,
  Challenge,
  ConnectionState,
  DocOpened,
  DocumentInfo,
  ErrorCode,
  LiveMetrics,
  MessagePage,
  OutboxEntry,
  Prefs,
  Profile,
  QueueCounts,
  Room,
  RuwadEvent,
  SeriesPoint,
  Session,
  Settings,
  Submission,
  UpdateCheck,
  Uuid,
} from './types';

export * from './types';

export const EVENT_CHANNEL = 'ruwad://event';

/** A command's refusal: `code` is what the UI branches on, `message` what it shows. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'not_signed_in',
  'invalid_credentials',
  'refused',
  'unavailable',
  'server',
  'storage',
  'internal',
  'keychain',
  'update',
  'config',
]);

/** Any rejection as an AppError: the shell sends `{code, message}`, but Tauri itself rejects
 * with a bare string (unknown command, bad arguments) and a browser without Tauri throws. */
export function toAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const { code, message } = e as AppErrorPayload;
    return new AppError(ERROR_CODES.has(code) ? code : 'internal', String(message));
  }
  if (e instanceof Error) return new AppError('internal', e.message);
  return new AppError('internal', String(e));
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toAppError(e);
  }
}

// ---- app -----------------------------------------------------------------------------------
export const appInfo = () => call<AppInfo>('app_info');
export const setBackend = (backend: Backend) => call<void>('set_backend', { backend });
export const settings = () => call<Settings>('settings');
export const setSettings = (settings: Settings) => call<void>('set_settings', { settings });
export const checkUpdate = () => call<UpdateCheck>('check_update');
export const installUpdate = () => call<void>('install_update');

// ---- session -------------------------------------------------------------------------------
export const session = () => call<Session>('session');
export const signIn = (email: string, password: string) =>
  call<{ user_id: Uuid }>('sign_in', { email, password });
export const signOut = () => call<void>('sign_out');
export const connection = () => call<ConnectionState>('connection');
export const queueCounts = () => call<QueueCounts>('queue_counts');
export const outbox = () => call<OutboxEntry[]>('outbox');
export const retry = (seq: number) => call<void>('retry', { seq });
export const discard = (seq: number) => call<void>('discard', { seq });
export const profiles = (ids: Uuid[]) => call<Profile[]>('profiles', { ids });

// ---- chat ----------------------------------------------------------------------------------
export const rooms = () => call<Room[]>('rooms');
export const messages = (room_id: Uuid, limit: number) => call<MessagePage>('messages', { room_id, limit });
export const history = (room_id: Uuid, before: Anchor | null, limit: number) =>
  call<MessagePage>('history', { room_id, before, limit });
export const sendMessage = (room_id: Uuid, content: string, reply_to: Uuid | null = null) =>
  call<Uuid>('send_message', { room_id, content, reply_to });
export const editMessage = (id: Uuid, content: string) => call<void>('edit_message', { id, content });
export const deleteMessage = (id: Uuid) => call<void>('delete_message', { id });
export const react = (message_id: Uuid, emoji: string) => call<void>('react', { message_id, emoji });
export const unreact = (message_id: Uuid, emoji: string) => call<void>('unreact', { message_id, emoji });
export const markRead = (room_id: Uuid) => call<void>('mark_read', { room_id });
export const enterRoom = (room_id: Uuid) => call<void>('enter_room', { room_id });
export const leaveRoom = (room_id: Uuid) => call<void>('leave_room', { room_id });
export const typing = (room_id: Uuid) => call<boolean>('typing', { room_id });
export const stopTyping = (room_id: Uuid) => call<void>('stop_typing', { room_id });
export const online = (room_id: Uuid) => call<Uuid[]>('online', { room_id });
export const typers = (room_id: Uuid) => call<Uuid[]>('typers', { room_id });
export const draft = (room_id: Uuid) => call<string | null>('draft', { room_id });
export const setDraft = (room_id: Uuid, content: string) => call<void>('set_draft', { room_id, content });

// ---- challenges ----------------------------------------------------------------------------
export const challenges = () => call<Challenge[]>('challenges');
export const submissions = (challenge_id: Uuid) => call<Submission[]>('submissions', { challenge_id });
export const createSubmission = (challenge_id: Uuid, title: string, content: string) =>
  call<Uuid>('create_submission', { challenge_id, title, content });
export const notificationPrefs = () => call<Prefs>('notification_prefs');
export const setNotificationPrefs = (prefs: Prefs) => call<void>('set_notification_prefs', { prefs });
export const muteChallenge = (challenge_id: Uuid, muted: boolean) =>
  call<void>('mute_challenge', { challenge_id, muted });

// ---- analytics -----------------------------------------------------------------------------
export const liveMetrics = () => call<LiveMetrics>('live_metrics');
export const cachedMetrics = () => call<LiveMetrics | null>('cached_metrics');
export const recentActivity = (limit: number) => call<Activity[]>('recent_activity', { limit });
export const activitySeries = (window_secs: number, bucket_secs: number) =>
  call<SeriesPoint[]>('activity_series', { window_secs, bucket_secs });

// ---- documents -----------------------------------------------------------------------------
export const documents = () => call<DocumentInfo[]>('documents');
export const docOpen = (document_id: Uuid, state_vector: Base64) =>
  call<DocOpened>('doc_open', { document_id, state_vector });
export const docUpdate = (document_id: Uuid, update: Base64) => call<void>('doc_update', { document_id, update });
export const docAwareness = (document_id: Uuid, update: Base64) =>
  call<void>('doc_awareness', { document_id, update });
export const docClose = (document_id: Uuid) => call<void>('doc_close', { document_id });

// ---- events --------------------------------------------------------------------------------

/** Calls `handler` with every engine / shell event until the returned function is called. */
export function subscribe(handler: (event: RuwadEvent) => void): () => void {
  let stopped = false;
  let unlisten: (() => void) | undefined;
  listen<RuwadEvent>(EVENT_CHANNEL, (e) => handler(e.payload)).then(
    (u) => {
      // `listen` resolves after registration; an unsubscribe that came first must still stop it.
      if (stopped) u();
      else unlisten = u;
    },
    (e) => console.warn('ruwad: cannot listen to engine events', e),
  );
  return () => {
    stopped = true;
    unlisten?.();
  };
}
