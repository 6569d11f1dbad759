import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import type { RuwadEvent } from '../../ipc';
import { toBase64 } from '../../ipc/base64';
import { FakeEngine, settle } from '../../test/fakeEngine';
import { DocBinding } from './DocBinding';

const DOC = '0190f2f8-0000-7000-8000-000000000001';

const text = (b: DocBinding | Y.Doc) => (b instanceof DocBinding ? b.doc : b).getText('t').toString();

describe('DocBinding', () => {
  it('two bindings editing concurrently through the engine converge', async () => {
    const engine = new FakeEngine();
    engine.doc.getText('t').insert(0, 'base');
    const a = new DocBinding(DOC, engine.connect());
    const b = new DocBinding(DOC, engine.connect());
    await Promise.all([a.open(), b.open()]);
    expect(text(a)).toBe('base');
    expect(text(b)).toBe('base');

    a.doc.getText('t').insert(0, 'A:');
    b.doc.getText('t').insert(4, ':B');
    a.doc.getText('t').insert(text(a).length, '!');
    await settle();

    expect(text(a)).toBe(text(b));
    expect(text(engine.doc)).toBe(text(a));
    expect(text(a)).toContain('A:');
    expect(text(a)).toContain(':B');
    expect(text(a)).toContain('!');
  });

  it('sends what the engine lacks after the handshake (edits made offline), and nothing when it lacks nothing', async () => {
    const engine = new FakeEngine();
    engine.doc.getText('t').insert(0, 'server ');
    const offline = new DocBinding(DOC, engine.connect());
    offline.doc.getText('t').insert(0, 'local');
    const transport = engine.connect();
    const fresh = new DocBinding(DOC, transport);

    await offline.open();
    await fresh.open();
    await settle();

    expect(text(engine.doc)).toContain('local');
    expect(text(engine.doc)).toContain('server');
    expect(text(fresh)).toBe(text(engine.doc));
    // The fresh binding had nothing of its own: the empty update is not sent.
    expect(transport.docUpdate).not.toHaveBeenCalled();
  });

  it('does not echo updates that came from the engine', async () => {
    const engine = new FakeEngine();
    const a = new DocBinding(DOC, engine.connect());
    const bTransport = engine.connect();
    const b = new DocBinding(DOC, bTransport);
    await Promise.all([a.open(), b.open()]);
    a.doc.getText('t').insert(0, 'hello');
    await settle();
    expect(text(b)).toBe('hello');
    expect(bTransport.docUpdate).not.toHaveBeenCalled();
  });

  it('a read-only binding forwards no local edit but still receives others', async () => {
    const engine = new FakeEngine();
    const writer = new DocBinding(DOC, engine.connect());
    const viewerTransport = engine.connect({ readOnly: true });
    const viewer = new DocBinding(DOC, viewerTransport);
    await writer.open();
    expect(await viewer.open()).toEqual({ readOnly: true });
    expect(viewer.isReadOnly).toBe(true);

    viewer.doc.getText('t').insert(0, 'vandal');
    writer.doc.getText('t').insert(0, 'news');
    await settle();

    expect(viewerTransport.docUpdate).not.toHaveBeenCalled();
    expect(text(engine.doc)).toBe('news');
    expect(text(writer)).toBe('news');
    expect(text(viewer)).toContain('news');
  });

  it('relays awareness: a co-editor appears with its state and disappears on close', async () => {
    const engine = new FakeEngine();
    const a = new DocBinding(DOC, engine.connect());
    const b = new DocBinding(DOC, engine.connect());
    await Promise.all([a.open(), b.open()]);

    a.awareness.setLocalStateField('user', { name: 'Layla', color: '#0F766E' });
    await settle();
    expect(b.awareness.getStates().get(a.doc.clientID)).toEqual({ user: { name: 'Layla', color: '#0F766E' } });

    await a.close();
    await settle();
    expect(b.awareness.getStates().has(a.doc.clientID)).toBe(false);
  });

  it('ignores events of other documents and stops after close', async () => {
    const engine = new FakeEngine();
    const transport = engine.connect();
    const handlers: ((e: RuwadEvent) => void)[] = [];
    const a = new DocBinding(DOC, { ...transport, subscribe: (h) => (handlers.push(h), transport.subscribe(h)) });
    await a.open();
    const other = new Y.Doc();
    other.getText('t').insert(0, 'elsewhere');
    const update = toBase64(Y.encodeStateAsUpdate(other));
    handlers.forEach((h) => h({ type: 'doc_update', document_id: 'another', update }));
    expect(text(a)).toBe('');
    await a.close();
    expect(transport.docClose).toHaveBeenCalledWith(DOC);
    handlers.forEach((h) => h({ type: 'doc_update', document_id: DOC, update }));
    expect(text(a)).toBe('');
  });
});

describe('DocBinding after missed events (the shell\'s `reload`)', () => {
  /** A transport whose event stream can be cut (a webview that fell behind), and which can
   * deliver one event to this binding by hand. */
  function lagging(engine: FakeEngine) {
    const transport = engine.connect();
    let deaf = false;
    let handler: ((e: RuwadEvent) => void) | undefined;
    return {
      transport: {
        ...transport,
        subscribe: (h: (e: RuwadEvent) => void) => {
          handler = h;
          return transport.subscribe((e) => deaf || h(e));
        },
      },
      raw: transport,
      setDeaf: (d: boolean) => (deaf = d),
      deliver: (e: RuwadEvent) => handler?.(e),
    };
  }

  it('catches up with doc_diff, applies it as the engine\'s (no echo) and sends back what the engine lacks', async () => {
    const engine = new FakeEngine();
    const writer = new DocBinding(DOC, engine.connect());
    const reader = lagging(engine);
    const b = new DocBinding(DOC, reader.transport);
    await Promise.all([writer.open(), b.open()]);

    reader.setDeaf(true);
    writer.doc.getText('t').insert(0, 'missed ');
    await settle();
    expect(text(b)).toBe('');

    // A local edit whose doc_update failed: the engine never got it.
    reader.raw.docUpdate.mockRejectedValueOnce({ code: 'unavailable', message: 'down' });
    b.doc.getText('t').insert(0, 'mine');
    await settle();
    expect(text(engine.doc)).not.toContain('mine');
    reader.raw.docUpdate.mockClear();

    reader.setDeaf(false);
    reader.deliver({ type: 'reload' });
    await settle();
    await settle();

    expect(reader.raw.docDiff).toHaveBeenCalledOnce();
    expect(reader.raw.docDiff.mock.calls[0]![0]).toBe(DOC);
    expect(text(b)).toContain('missed');
    expect(text(engine.doc)).toContain('mine');
    expect(text(writer)).toBe(text(b));
    // Only what the engine lacked went out, once: the diff itself was not echoed.
    expect(reader.raw.docUpdate).toHaveBeenCalledOnce();
    expect(reader.raw.docOpen).toHaveBeenCalledOnce();
  });

  it('a reload during the handshake re-syncs once the open is done', async () => {
    const engine = new FakeEngine();
    const reader = lagging(engine);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const b = new DocBinding(DOC, {
      ...reader.transport,
      docOpen: async (id, sv) => {
        await gate;
        return reader.raw.docOpen(id, sv);
      },
    });
    const opened = b.open();
    reader.deliver({ type: 'reload' });
    expect(reader.raw.docDiff).not.toHaveBeenCalled();
    release();
    await opened;
    await settle();
    expect(reader.raw.docDiff).toHaveBeenCalledOnce();
  });
});

describe('DocBinding status', () => {
  it('reads doc_status after the open, again when a documents event names it, and on reload', async () => {
    const engine = new FakeEngine();
    const transport = engine.connect();
    const handlers: ((e: RuwadEvent) => void)[] = [];
    const b = new DocBinding(DOC, { ...transport, subscribe: (h) => (handlers.push(h), transport.subscribe(h)) });
    const seen: unknown[] = [];
    b.onStatus((s) => seen.push(s));
    await b.open();
    await settle();
    expect(transport.docStatus).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([{ open: true, read_only: false, pending: 0, failed: 0 }]);

    transport.docStatus.mockResolvedValueOnce({ open: true, read_only: true, pending: 2, failed: 1 });
    handlers.forEach((h) => h({ type: 'documents', ids: ['another'] }));
    handlers.forEach((h) => h({ type: 'documents', ids: [DOC] }));
    await settle();
    expect(transport.docStatus).toHaveBeenCalledTimes(2);
    expect(seen[1]).toEqual({ open: true, read_only: true, pending: 2, failed: 1 });
    expect(b.isReadOnly).toBe(true);

    handlers.forEach((h) => h({ type: 'reload' }));
    await settle();
    await settle();
    expect(transport.docStatus).toHaveBeenCalledTimes(3);
  });
});

describe('DocBinding.close', () => {
  it('closed while the handshake is in flight: closes after the open, applies nothing', async () => {
    const engine = new FakeEngine();
    engine.doc.getText('t').insert(0, 'late');
    const transport = engine.connect();
    const order: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const b = new DocBinding(DOC, {
      ...transport,
      docOpen: async (id, sv) => {
        await gate;
        order.push('open');
        return transport.docOpen(id, sv);
      },
      docClose: async (id) => {
        order.push('close');
        return transport.docClose(id);
      },
    });
    const opened = b.open();
    const closed = b.close();
    release();
    await Promise.all([opened, closed]);
    expect(order).toEqual(['open', 'close']);
    expect(text(b)).toBe('');
  });
});
