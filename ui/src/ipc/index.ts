// The one way the UI talks to the Rust shell: a function per command and `subscribe` for the
// single `ruwad://event` channel. Each function calls the generated `commands.*` of
// ../bindings.ts (tauri-specta), which sends the arguments under the camelCase keys the shell
// expects (`{ roomId, limit }`); this module only keeps the UI's names, maps every rejection to
// one `AppError` class and turns the shell's `null` results into `void`. Components import from
// here and never from the bindings or `@tauri-apps/api`, and tests mock this one module.

import { commands, events } from '../bindings';
import type {
  Anchor,
  AppErrorPayload,
  Backend,
  Base64,
  ErrorCode,
  Prefs,
  Profile,
  ReadyScreen,
  RuwadEvent,
  Settings,
  Uuid,
} from './types';

export * from './types';

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

// Every code of the generated `ErrorCode` (a code added in Rust fails to compile here).
const ERROR_CODES: Record<ErrorCode, true> = {
  not_signed_in: true,
  invalid_credentials: true,
  refused: true,
  unavailable: true,
  server: true,
  storage: true,
  internal: true,
  keychain: true,
  update: true,
  update_unavailable: true,
  update_unsupported: true,
  signature: true,
  config: true,
};
const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);

/** Any rejection as an AppError: the shell sends `{code, message}`, but Tauri itself rejects
 * with a bare string (unknown command, bad arguments) and a browser without Tauri throws. */
export function toAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const { code, message } = e as AppErrorPayload;
    return new AppError(isErrorCode(code) ? code : 'internal', String(message));
  }
  if (e instanceof Error) return new AppError('internal', e.message);
  return new AppError('internal', String(e));
}

/** Runs one command, rejecting with an AppError whatever went wrong. */
async function call<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (e) {
    throw toAppError(e);
  }
}

/** The same for a command that answers nothing (`null` on the wire). */
async function run(command: () => Promise<null>): Promise<void> {
  await call(command);
}

// ---- app -----------------------------------------------------------------------------------
export const appInfo = () => call(commands.app_info);
export const setBackend = (backend: Backend) => run(() => commands.set_backend(backend));
export const settings = () => call(commands.settings);
export const setSettings = (settings: Settings) => run(() => commands.set_settings(settings));
/** Another window of the app, in its own profile on this embedded backend (`refused` on a
 * Supabase project). */
export const openSecondWindow = () => run(commands.open_second_window);
/** A newer version on the user's channel, or null when this one is the latest. */
export const checkUpdate = () => call(commands.check_update);
/** Installs the `version` that `checkUpdate` (or an `update_available` event) offered, then the
 * app restarts: call it only on the user's "Install now". */
export const installUpdate = (version: string) => run(() => commands.install_update(version));
/** The first screen is drawn from the local cache: the shell logs the startup time. */
export const uiReady = (screen: ReadyScreen, items: number) => run(() => commands.ui_ready(screen, items));

// ---- session -------------------------------------------------------------------------------
export const session = () => call(commands.session);
export const signIn = (email: string, password: string) => call(() => commands.sign_in(email, password));
export const signOut = () => run(commands.sign_out);
export const connection = () => call(commands.connection);
export const queueCounts = () => call(commands.queue_counts);
export const outbox = () => call(commands.outbox);
export const retry = (seq: number) => run(() => commands.retry(seq));
export const discard = (seq: number) => run(() => commands.discard(seq));
/** Display names: the engine's cache, then the server; unknown ids are left out. */
export const profiles = (ids: Uuid[]): Promise<Profile[]> => call(() => commands.profiles(ids));

// ---- chat ----------------------------------------------------------------------------------
export const rooms = () => call(commands.rooms);
export const messages = (roomId: Uuid, limit: number) => call(() => commands.messages(roomId, limit));
export const history = (roomId: Uuid, before: Anchor | null, limit: number) =>
  call(() => commands.history(roomId, before, limit));
export const sendMessage = (roomId: Uuid, content: string, replyTo: Uuid | null = null) =>
  call(() => commands.send_message(roomId, content, replyTo));
export const editMessage = (id: Uuid, content: string) => run(() => commands.edit_message(id, content));
export const deleteMessage = (id: Uuid) => run(() => commands.delete_message(id));
export const react = (messageId: Uuid, emoji: string) => run(() => commands.react(messageId, emoji));
export const unreact = (messageId: Uuid, emoji: string) => run(() => commands.unreact(messageId, emoji));
export const markRead = (roomId: Uuid) => run(() => commands.mark_read(roomId));
export const enterRoom = (roomId: Uuid) => run(() => commands.enter_room(roomId));
export const leaveRoom = (roomId: Uuid) => run(() => commands.leave_room(roomId));
export const typing = (roomId: Uuid) => call(() => commands.typing(roomId));
export const stopTyping = (roomId: Uuid) => run(() => commands.stop_typing(roomId));
export const online = (roomId: Uuid) => call(() => commands.online(roomId));
export const typers = (roomId: Uuid) => call(() => commands.typers(roomId));
export const draft = (roomId: Uuid) => call(() => commands.draft(roomId));
export const setDraft = (roomId: Uuid, content: string) => run(() => commands.set_draft(roomId, content));

// ---- challenges ----------------------------------------------------------------------------
export const challenges = () => call(commands.challenges);
export const submissions = (challengeId: Uuid) => call(() => commands.submissions(challengeId));
export const createSubmission = (challengeId: Uuid, title: string, content: string) =>
  call(() => commands.create_submission(challengeId, title, content));
export const notificationPrefs = () => call(commands.notification_prefs);
export const setNotificationPrefs = (prefs: Prefs) => run(() => commands.set_notification_prefs(prefs));
export const muteChallenge = (challengeId: Uuid, muted: boolean) =>
  run(() => commands.mute_challenge(challengeId, muted));

// ---- analytics -----------------------------------------------------------------------------
export const liveMetrics = () => call(commands.live_metrics);
export const cachedMetrics = () => call(commands.cached_metrics);
export const recentActivity = (limit: number) => call(() => commands.recent_activity(limit));
export const activitySeries = (windowSecs: number, bucketSecs: number) =>
  call(() => commands.activity_series(windowSecs, bucketSecs));

// ---- documents (the binding protocol: screens/documents/DocBinding.ts) --------------------
export const documents = () => call(commands.documents);
export const docOpen = (documentId: Uuid, stateVector: Base64) => call(() => commands.doc_open(documentId, stateVector));
/** What a bound doc lacks, without binding again (after a `reload` event). */
export const docDiff = (documentId: Uuid, stateVector: Base64) => call(() => commands.doc_diff(documentId, stateVector));
export const docUpdate = (documentId: Uuid, update: Base64) => run(() => commands.doc_update(documentId, update));
export const docAwareness = (documentId: Uuid, update: Base64) =>
  run(() => commands.doc_awareness(documentId, update));
export const docClose = (documentId: Uuid) => run(() => commands.doc_close(documentId));
export const docStatus = (documentId: Uuid) => call(() => commands.doc_status(documentId));

// ---- events --------------------------------------------------------------------------------

/** Calls `handler` with every event of `ruwad://event` (the engine's, and the shell's `navigate`
 * and `reload`) until the returned function is called. */
export function subscribe(handler: (event: RuwadEvent) => void): () => void {
  let stopped = false;
  let unlisten: (() => void) | undefined;
  events.ruwad_event.listen((e) => handler(e.payload)).then(
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
