import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message, Room } from '../../ipc';
import { renderIn } from '../../test/render';
import { RoomView } from './RoomView';

const ME = '00000000-0000-7000-8000-0000000000aa';
const room: Room = {
  id: 'room-1', name: 'general', kind: 'channel', challenge_id: null, created_by: ME, created_at: '2026-11-01T00:00:00Z',
  member: true, last_read_at: null, unread: 0, latest_at: null,
};
const msg = (id: string, created_at: string | null, content: string): Message => ({
  id, room_id: room.id, user_id: ME, content, kind: 'text', reply_to: null, edited_at: null, deleted_at: null,
  created_at, state: created_at ? 'sent' : 'pending', reactions: [],
});
// The cache: the two newest server messages and a local echo; older ones arrive with history().
const cache = [msg('m1', '2026-11-29T08:00:00Z', 'old'), msg('m2', '2026-11-29T09:00:00Z', 'hello'), msg('local', null, 'queued')];
let inCache = 2;

vi.mock('../../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../ipc')>()),
  subscribe: () => () => {},
  messages: vi.fn(async () => ({ messages: inCache === 2 ? cache.slice(1) : cache, complete: false })),
  history: vi.fn(async () => {
    inCache = 3;
    return { messages: [cache[0]], complete: true };
  }),
  outbox: vi.fn(async () => []),
  enterRoom: vi.fn(async () => {}),
  leaveRoom: vi.fn(async () => {}),
  online: vi.fn(async () => []),
  typers: vi.fn(async () => []),
  markRead: vi.fn(async () => {}),
  draft: vi.fn(async () => 'half a thought'),
  setDraft: vi.fn(async () => {}),
  stopTyping: vi.fn(async () => {}),
  profiles: vi.fn(async () => []),
}));
const ipc = await import('../../ipc');

describe('RoomView', () => {
  beforeEach(() => {
    inCache = 2;
    vi.clearAllMocks();
  });

  it('reads the cache first, loads older pages anchored on the oldest server message, then re-reads a longer window', async () => {
    renderIn(<RoomView room={room} me={ME} />);
    expect(await screen.findByText('hello')).toBeTruthy();
    expect(screen.getByText('queued')).toBeTruthy();
    expect(ipc.messages).toHaveBeenCalledWith('room-1', 50);
    expect(ipc.markRead).toHaveBeenCalledWith('room-1');

    fireEvent.click(screen.getByRole('button', { name: 'Load older messages' }));
    await waitFor(() => expect(ipc.history).toHaveBeenCalledWith('room-1', { created_at: '2026-11-29T09:00:00Z', id: 'm2' }, 50));
    expect(await screen.findByText('old')).toBeTruthy();
    expect(ipc.messages).toHaveBeenLastCalledWith('room-1', 51);
    expect(screen.getByText('This is the beginning of the room.')).toBeTruthy();
  });

  it('restores the draft the engine kept', async () => {
    renderIn(<RoomView room={room} me={ME} />);
    await waitFor(() => expect((screen.getByRole('textbox', { name: 'Message general' }) as HTMLTextAreaElement).value).toBe('half a thought'));
  });
});
