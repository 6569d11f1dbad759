import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();
let resolveListen: (unlisten: () => void) => void = () => {};
let delivered: ((e: { payload: unknown }) => void) | undefined;
vi.mock('@tauri-apps/api/core', () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock('@tauri-apps/api/event', () => ({
  listen: (_name: string, handler: (e: { payload: unknown }) => void) => {
    delivered = handler;
    return new Promise((r) => (resolveListen = r));
  },
}));
const ipc = await import('.');

describe('the IPC facade', () => {
  beforeEach(() => invoke.mockReset());

  it('passes snake_case arguments, as the shell declares them', async () => {
    invoke.mockResolvedValue({ messages: [], complete: true });
    await ipc.history('room-1', { created_at: '2026-11-29T09:00:00Z', id: 'm-1' }, 50);
    expect(invoke).toHaveBeenCalledWith('history', {
      room_id: 'room-1',
      before: { created_at: '2026-11-29T09:00:00Z', id: 'm-1' },
      limit: 50,
    });
  });

  it('turns the wire error into an AppError with its code and message', async () => {
    invoke.mockImplementationOnce(async () => {
      throw { code: 'invalid_credentials', message: 'Invalid login credentials' };
    });
    const err = await ipc.signIn('a@b.c', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ipc.AppError);
    const { code, message } = err as InstanceType<typeof ipc.AppError>;
    expect({ code, message }).toEqual({ code: 'invalid_credentials', message: 'Invalid login credentials' });
  });

  it("Tauri's own string rejections and unknown codes become `internal`", () => {
    const plain = (e: InstanceType<typeof ipc.AppError>) => ({ code: e.code, message: e.message });
    expect(plain(ipc.toAppError('command doc_open not found'))).toEqual({ code: 'internal', message: 'command doc_open not found' });
    expect(plain(ipc.toAppError({ code: 'martian', message: 'm' }))).toEqual({ code: 'internal', message: 'm' });
  });

  it('subscribe delivers payloads, and an unsubscribe before listen resolved still unlistens', async () => {
    const handler = vi.fn();
    const unlisten = vi.fn();
    const stop = ipc.subscribe(handler);
    delivered?.({ payload: { type: 'rooms', ids: ['r'] } });
    expect(handler).toHaveBeenCalledWith({ type: 'rooms', ids: ['r'] });
    stop();
    resolveListen(unlisten);
    await Promise.resolve();
    expect(unlisten).toHaveBeenCalledOnce();
  });
});
