import { vi } from 'vitest';
import * as Y from 'yjs';
import type { RuwadEvent } from '../ipc';
import { fromBase64, toBase64 } from '../ipc/base64';
import type { DocTransport } from '../screens/documents/DocBinding';

/** A stand-in for the engine: one Y.Doc per document, relaying each connection's updates and
 * awareness to the others as events (asynchronously, like Tauri events). */
export class FakeEngine {
  readonly doc = new Y.Doc();
  private readonly peers = new Set<(e: RuwadEvent) => void>();

  connect({ readOnly = false } = {}) {
    const own = new Set<(e: RuwadEvent) => void>();
    const broadcast = (e: RuwadEvent) =>
      queueMicrotask(() => this.peers.forEach((h) => own.has(h) || h(e)));
    const sync = (sv: string) => ({
      update: toBase64(Y.encodeStateAsUpdate(this.doc, fromBase64(sv))),
      state_vector: toBase64(Y.encodeStateVector(this.doc)),
      read_only: readOnly,
    });
    const transport = {
      docOpen: vi.fn(async (_id: string, sv: string) => sync(sv)),
      docDiff: vi.fn(async (_id: string, sv: string) => sync(sv)),
      docUpdate: vi.fn(async (document_id: string, update: string) => {
        if (readOnly) throw { code: 'refused', message: 'read-only document' };
        Y.applyUpdate(this.doc, fromBase64(update));
        broadcast({ type: 'doc_update', document_id, update });
      }),
      docAwareness: vi.fn(async (document_id: string, update: string) => {
        broadcast({ type: 'doc_awareness', document_id, update });
      }),
      docClose: vi.fn(async (_id: string) => {}),
      docStatus: vi.fn(async (_id: string) => ({ open: true, read_only: readOnly, pending: 0, failed: 0 })),
      subscribe: (h: (e: RuwadEvent) => void) => {
        own.add(h);
        this.peers.add(h);
        return () => {
          own.delete(h);
          this.peers.delete(h);
        };
      },
    } satisfies DocTransport;
    return transport;
  }
}

/** Lets queued promise callbacks and microtasks (event relays) run. */
export const settle = () => new Promise((r) => setTimeout(r, 0));
