import { beforeEach, describe, expect, it, vi } from 'vitest';

// The facade over the generated bindings, with Tauri's `invoke` and `listen` mocked: what
// really goes over IPC is the command name and a camelCase argument object.
const invoke = vi.fn();
let resolveListen: (unlisten: () => void) => void = () => {};
let delivered: ((e: { payload: unknown }) => void) | undefined;
let listenedTo: string | undefined;
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({
  listen: (name: string, handler: (e: { payload: unknown }) => void) => {
    listenedTo = name;
    delivered = handler;
    return new Promise((r) => (resolveListen = r));
  },
}));
const ipc = await import('.');
const { commands } = await import('../bindings');

const ROOM = '0190f2f8-0000-7000-8000-000000000100';
const DOC = '0190f2f8-0000-7000-8000-000000000001';
const MSG = '0190f2f8-0000-7000-8000-000000000002';

/** What `invoke` received for the one call `f` makes. */
async function sent(f: () => Promise<unknown>): Promise<unknown[]> {
  invoke.mockClear();
  await f();
  expect(invoke).toHaveBeenCalledOnce();
  return invoke.mock.calls[0]!;
}

describe('the IPC facade', () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockResolvedValue(null);
  });

  it('sends camelCase argument keys, as the shell expects them', async () => {
    invoke.mockResolvedValue({ messages: [], complete: true });
    await ipc.history(ROOM, { created_at: '2026-11-29T09:00:00Z', id: MSG }, 50);
    expect(invoke).toHaveBeenCalledWith('history', {
      roomId: ROOM,
      before: { created_at: '2026-11-29T09:00:00Z', id: MSG },
      limit: 50,
    });
  });

  // Each facade call against the generated command it stands for: the same name and arguments
  // as bindings.ts sends for those positional arguments, and the object written out, so an
  // argument passed in the wrong position fails here.
  const cases: [string, () => Promise<unknown>, () => Promise<unknown>, Record<string, unknown>][] = [
    ['messages', () => ipc.messages(ROOM, 50), () => commands.messages(ROOM, 50), { roomId: ROOM, limit: 50 }],
    [
      'send_message',
      () => ipc.sendMessage(ROOM, 'hello'),
      () => commands.send_message(ROOM, 'hello', null),
      { roomId: ROOM, content: 'hello', replyTo: null },
    ],
    [
      'send_message',
      () => ipc.sendMessage(ROOM, 'a reply', MSG),
      () => commands.send_message(ROOM, 'a reply', MSG),
      { roomId: ROOM, content: 'a reply', replyTo: MSG },
    ],
    ['react', () => ipc.react(MSG, '👍'), () => commands.react(MSG, '👍'), { messageId: MSG, emoji: '👍' }],
    ['set_draft', () => ipc.setDraft(ROOM, 'draft'), () => commands.set_draft(ROOM, 'draft'), { roomId: ROOM, content: 'draft' }],
    [
      'create_submission',
      () => ipc.createSubmission('c1', 'Title', 'Body'),
      () => commands.create_submission('c1', 'Title', 'Body'),
      { challengeId: 'c1', title: 'Title', content: 'Body' },
    ],
    [
      'activity_series',
      () => ipc.activitySeries(3600, 60),
      () => commands.activity_series(3600, 60),
      { windowSecs: 3600, bucketSecs: 60 },
    ],
    ['doc_open', () => ipc.docOpen(DOC, 'AA=='), () => commands.doc_open(DOC, 'AA=='), { documentId: DOC, stateVector: 'AA==' }],
    ['doc_diff', () => ipc.docDiff(DOC, 'AQ=='), () => commands.doc_diff(DOC, 'AQ=='), { documentId: DOC, stateVector: 'AQ==' }],
    ['doc_update', () => ipc.docUpdate(DOC, 'AAA='), () => commands.doc_update(DOC, 'AAA='), { documentId: DOC, update: 'AAA=' }],
    ['doc_status', () => ipc.docStatus(DOC), () => commands.doc_status(DOC), { documentId: DOC }],
    ['profiles', () => ipc.profiles([MSG, ROOM]), () => commands.profiles([MSG, ROOM]), { ids: [MSG, ROOM] }],
    ['install_update', () => ipc.installUpdate('0.2.0'), () => commands.install_update('0.2.0'), { version: '0.2.0' }],
  ];
  it.each(cases)('%s: the facade sends what bindings.ts sends', async (name, facade, generated, args) => {
    const viaFacade = await sent(facade);
    expect(viaFacade).toEqual(await sent(generated));
    expect(viaFacade).toEqual([name, args]);
  });

  it('has a function for every generated command', () => {
    const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const missing = Object.keys(commands).filter((name) => typeof (ipc as Record<string, unknown>)[camel(name)] !== 'function');
    expect(missing).toEqual([]);
  });

  it("turns the shell's `null` into undefined and passes results through", async () => {
    expect(await ipc.markRead(ROOM)).toBeUndefined();
    invoke.mockResolvedValueOnce('0190f2f8-0000-7000-8000-0000000000ff');
    expect(await ipc.sendMessage(ROOM, 'x')).toBe('0190f2f8-0000-7000-8000-0000000000ff');
  });

  it('turns the wire error into an AppError with its code and message', async () => {
    invoke.mockImplementationOnce(async () => {
      throw { code: 'invalid_credentials', message: 'Invalid login credentials' };
    });
    const err = await ipc.signIn('a@b.c', 'x').catch((e: unknown) => e);
    expect(invoke).toHaveBeenCalledWith('sign_in', { email: 'a@b.c', password: 'x' });
    expect(err).toBeInstanceOf(ipc.AppError);
    const { code, message } = err as InstanceType<typeof ipc.AppError>;
    expect({ code, message }).toEqual({ code: 'invalid_credentials', message: 'Invalid login credentials' });
  });

  it("Tauri's own string rejections and unknown codes become `internal`", () => {
    const plain = (e: InstanceType<typeof ipc.AppError>) => ({ code: e.code, message: e.message });
    expect(plain(ipc.toAppError('command doc_open not found'))).toEqual({ code: 'internal', message: 'command doc_open not found' });
    expect(plain(ipc.toAppError({ code: 'martian', message: 'm' }))).toEqual({ code: 'internal', message: 'm' });
    expect(plain(ipc.toAppError({ code: 'toString', message: 'm' }))).toEqual({ code: 'internal', message: 'm' });
  });

  it('subscribe listens to ruwad://event, delivers payloads, and an unsubscribe before listen resolved still unlistens', async () => {
    const handler = vi.fn();
    const unlisten = vi.fn();
    const stop = ipc.subscribe(handler);
    expect(listenedTo).toBe('ruwad://event');
    delivered?.({ payload: { type: 'reload' } });
    expect(handler).toHaveBeenCalledWith({ type: 'reload' });
    stop();
    resolveListen(unlisten);
    await Promise.resolve();
    await Promise.resolve();
    expect(unlisten).toHaveBeenCalledOnce();
  });
});
