// Binds one Y.Doc (and its awareness) in the webview to the engine's copy of a document.
//
// Protocol (ARCHITECTURE.md "Document binding protocol", the UI side):
// 1. subscribe to events first, so nothing the engine sends after `doc_open` is missed;
// 2. `doc_open(id, stateVector(doc))` → `{update, state_vector, read_only}`; apply `update`
//    with origin ENGINE; then send `encodeStateAsUpdate(doc, state_vector)` — what this doc
//    has and the engine lacks — through `doc_update`, unless it is the empty update (2 bytes);
// 3. from then on every local update (origin !== ENGINE) goes out through `doc_update`, and
//    every `doc_update` event is applied with origin ENGINE (so it is never echoed back);
// 4. missed events: on the shell's `reload` event (the webview fell behind) the same exchange
//    runs again through `doc_diff`, which does not bind a second time;
// 5. awareness: a change of the local client's state goes out through `doc_awareness`
//    (encoded for the local client only); `doc_awareness` events are applied with origin ENGINE.
//    y-protocols renews the local state every 15 s and drops peers silent for 30 s;
// 6. status: `doc_status(id)` → `{open, read_only, pending, failed}`, read after the open and
//    again whenever a `documents` event names this document (and after a `reload`).
//
// Yjs updates are idempotent and commute, so an event that races the handshake, or an update
// the engine already has, does no harm. A send that fails is reported and not retried here:
// the update stays in this Y.Doc and the next handshake (the engine's state vector) sends it.
// A read-only document forwards no local update (the editor is not editable either); the
// engine would refuse it with `refused`.

import * as Y from 'yjs';
import { applyAwarenessUpdate, Awareness, encodeAwarenessUpdate } from 'y-protocols/awareness';
import * as ipc from '../../ipc';
import type { AppError, Base64, DocOpened, DocStatus, RuwadEvent, Uuid } from '../../ipc';
import { fromBase64, toBase64 } from '../../ipc/base64';

/** The origin of every change that came from the engine. */
export const ENGINE = 'engine';

/** The part of the IPC facade a binding uses (a fake engine stands in for it in tests). */
export interface DocTransport {
  docOpen(documentId: Uuid, stateVector: Base64): Promise<DocOpened>;
  docDiff(documentId: Uuid, stateVector: Base64): Promise<DocOpened>;
  docUpdate(documentId: Uuid, update: Base64): Promise<void>;
  docAwareness(documentId: Uuid, update: Base64): Promise<void>;
  docClose(documentId: Uuid): Promise<void>;
  docStatus(documentId: Uuid): Promise<DocStatus>;
  subscribe(handler: (event: RuwadEvent) => void): () => void;
}

export const engineTransport: DocTransport = {
  docOpen: ipc.docOpen,
  docDiff: ipc.docDiff,
  docUpdate: ipc.docUpdate,
  docAwareness: ipc.docAwareness,
  docClose: ipc.docClose,
  docStatus: ipc.docStatus,
  subscribe: ipc.subscribe,
};

/** The empty update (no structs, empty delete set) that encodeStateAsUpdate returns when the
 * other side lacks nothing. */
const EMPTY_UPDATE_LENGTH = 2;

export class DocBinding {
  readonly doc = new Y.Doc();
  readonly awareness = new Awareness(this.doc);
  /** Until the handshake says otherwise nothing local leaves: read-only is the safe default. */
  private readOnly = true;
  /** The handshake in flight or done; `close` waits for it so the engine never sees the
   * close before the open. */
  private opening: Promise<unknown> | undefined;
  private closed = false;
  /** The handshake is done: local updates flow, a `reload` re-syncs. */
  private bound = false;
  /** A `reload` came while the handshake was in flight: re-sync once it is done. */
  private resyncAfterOpen = false;
  /** Only the newest status read is kept (reads can overlap when events come fast). */
  private statusReads = 0;
  private status: DocStatus | undefined;
  private readonly statusListeners = new Set<(s: DocStatus) => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    readonly documentId: Uuid,
    private readonly transport: DocTransport = engineTransport,
    private readonly onError: (e: AppError) => void = () => {},
  ) {}

  get isReadOnly(): boolean {
    return this.readOnly;
  }

  /** Runs the handshake; resolves with whether the document is read-only. */
  async open(): Promise<{ readOnly: boolean }> {
    if (this.opening || this.closed) throw new Error('a DocBinding opens once');
    this.unsubscribe = this.transport.subscribe(this.onEvent);
    const request = this.transport.docOpen(this.documentId, toBase64(Y.encodeStateVector(this.doc)));
    this.opening = request;
    const reply = await request;
    if (this.closed) return { readOnly: reply.read_only };
    // No await between computing what the engine lacks and listening for local updates: an
    // edit in between would be in neither.
    this.integrate(reply);
    this.doc.on('update', this.onLocalUpdate);
    this.awareness.on('update', this.onAwarenessUpdate);
    this.bound = true;
    this.readStatus();
    if (this.resyncAfterOpen) void this.resync();
    return { readOnly: this.readOnly };
  }

  /** Catches up after missed events (the shell's `reload`): `doc_diff` with this doc's state
   * vector, applied like the handshake's answer, without binding again. Errors go to
   * `onError`; the next `reload` or open tries again. */
  async resync(): Promise<void> {
    if (this.closed) return;
    if (!this.bound) {
      this.resyncAfterOpen = true;
      return;
    }
    this.resyncAfterOpen = false;
    try {
      const reply = await this.transport.docDiff(this.documentId, toBase64(Y.encodeStateVector(this.doc)));
      if (!this.closed) this.integrate(reply);
    } catch (e) {
      if (!this.closed) this.onError(ipc.toAppError(e));
    }
    this.readStatus();
  }

  /** Calls `listener` with each status of this document; returns the unsubscribe. */
  onStatus(listener: (s: DocStatus) => void): () => void {
    this.statusListeners.add(listener);
    if (this.status) listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  /** Says goodbye to co-editors (the local awareness state becomes null), then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Destroying the awareness sets the local state to null, which the handler still sends.
    this.awareness.destroy();
    this.closed = true;
    this.doc.off('update', this.onLocalUpdate);
    this.awareness.off('update', this.onAwarenessUpdate);
    this.unsubscribe?.();
    this.statusListeners.clear();
    if (!this.opening) return;
    // A failed open has nothing to close.
    if (!(await this.opening.then(() => true, () => false))) return;
    await this.transport.docClose(this.documentId).catch((e) => this.onError(ipc.toAppError(e)));
  }

  /** Applies a `doc_open` / `doc_diff` answer and sends back what the engine lacks. */
  private integrate(reply: DocOpened) {
    Y.applyUpdate(this.doc, fromBase64(reply.update), ENGINE);
    this.readOnly = reply.read_only;
    const missing = Y.encodeStateAsUpdate(this.doc, fromBase64(reply.state_vector));
    if (!this.readOnly && missing.length > EMPTY_UPDATE_LENGTH) this.send(missing);
  }

  private readStatus() {
    if (this.closed) return;
    const mine = ++this.statusReads;
    this.transport.docStatus(this.documentId).then(
      (status) => {
        if (this.closed || mine !== this.statusReads) return;
        this.status = status;
        this.readOnly = status.read_only;
        this.statusListeners.forEach((l) => l(status));
      },
      (e) => this.closed || this.onError(ipc.toAppError(e)),
    );
  }

  private send(update: Uint8Array) {
    this.transport.docUpdate(this.documentId, toBase64(update)).catch((e) => this.onError(ipc.toAppError(e)));
  }

  private readonly onLocalUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === ENGINE || this.readOnly || this.closed) return;
    this.send(update);
  };

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ) => {
    if (origin === ENGINE || this.closed) return;
    const me = this.doc.clientID;
    if (!added.includes(me) && !updated.includes(me) && !removed.includes(me)) return;
    const update = encodeAwarenessUpdate(this.awareness, [me]);
    this.transport.docAwareness(this.documentId, toBase64(update)).catch((e) => this.onError(ipc.toAppError(e)));
  };

  private readonly onEvent = (e: RuwadEvent) => {
    if (this.closed) return;
    switch (e.type) {
      case 'doc_update':
        if (e.document_id === this.documentId) Y.applyUpdate(this.doc, fromBase64(e.update), ENGINE);
        break;
      case 'doc_awareness':
        if (e.document_id === this.documentId) applyAwarenessUpdate(this.awareness, fromBase64(e.update), ENGINE);
        break;
      case 'documents':
        // Listing, access or sync status changed: the status says which (before the open
        // finished, the open reads it).
        if (this.bound && e.ids.includes(this.documentId)) this.readStatus();
        break;
      case 'reload':
        void this.resync();
        break;
    }
  };
}
