import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { ConnectionState, QueueCounts, RuwadEvent } from '../ipc';
import { useAppState } from './useAppState';

// A read answered after a newer event must not win: the shell answers `connection()` from
// before the socket came up, the `online` event overtakes the answer.
const handlers: ((e: RuwadEvent) => void)[] = [];
const emit = (e: RuwadEvent) => [...handlers].forEach((h) => h(e));
let answerConnection: (s: ConnectionState) => void = () => {};
let answerCounts: (c: QueueCounts) => void = () => {};

vi.mock('../ipc', async (importOriginal) => {
  const real = await importOriginal<typeof import('../ipc')>();
  return {
    ...real,
    subscribe: (h: (e: RuwadEvent) => void) => {
      handlers.push(h);
      return () => void handlers.splice(handlers.indexOf(h), 1);
    },
    appInfo: vi.fn(() => new Promise(() => {})),
    settings: vi.fn(() => new Promise(() => {})),
    session: vi.fn(async () => ({ user_id: null, email: null, display_name: null, remembered: true })),
    connection: vi.fn(() => new Promise<ConnectionState>((resolve) => (answerConnection = resolve))),
    queueCounts: vi.fn(() => new Promise<QueueCounts>((resolve) => (answerCounts = resolve))),
  };
});

describe('useAppState', () => {
  it('keeps an event newer than a read that is answered late', async () => {
    const { result } = renderHook(() => useAppState());
    await waitFor(() => expect(handlers.length).toBeGreaterThan(0));
    act(() => emit({ type: 'connection', state: { state: 'online' } }));
    act(() => emit({ type: 'outbox', counts: { queued: 2, failed: 0 } }));
    await act(async () => {
      answerConnection({ state: 'connecting', attempt: 1, retry_in_ms: 500 });
      answerCounts({ queued: 0, failed: 0 });
    });
    expect(result.current.connection.state).toEqual({ state: 'online' });
    expect(result.current.counts).toEqual({ queued: 2, failed: 0 });
  });

  it('takes a read when no event came in meanwhile', async () => {
    const { result } = renderHook(() => useAppState());
    await act(async () => {
      answerConnection({ state: 'online' });
      answerCounts({ queued: 1, failed: 1 });
    });
    expect(result.current.connection.state).toEqual({ state: 'online' });
    expect(result.current.counts).toEqual({ queued: 1, failed: 1 });
  });
});
