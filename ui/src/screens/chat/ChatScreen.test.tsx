import { screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { View } from '../../hooks/useView';
import type { Room } from '../../ipc';
import { renderIn } from '../../test/render';
import { ChatScreen } from './ChatScreen';

vi.mock('../../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../ipc')>()),
  subscribe: () => () => {},
  uiReady: vi.fn(async () => {}),
}));
const ipc = await import('../../ipc');

const ME = '00000000-0000-7000-8000-0000000000aa';
const room = (id: string, name: string): Room => ({
  id, name, kind: 'channel', challenge_id: null, created_by: ME, created_at: '2026-11-01T00:00:00Z',
  member: true, last_read_at: null, unread: 0, latest_at: null,
});
const view = (data: Room[] | undefined): View<Room[]> => ({ data, error: undefined, reload: () => {} });

describe('ChatScreen', () => {
  it('reports "ready" to the shell once, when the room list from the cache is on screen', async () => {
    const { rerender } = renderIn(<ChatScreen me={ME} rooms={view(undefined)} />);
    expect(ipc.uiReady).not.toHaveBeenCalled();
    rerender(<ChatScreen me={ME} rooms={view([room('r1', 'general'), room('r2', 'ideas')])} />);
    expect(await screen.findByText('general')).toBeTruthy();
    expect(ipc.uiReady).toHaveBeenCalledTimes(1);
    expect(ipc.uiReady).toHaveBeenCalledWith('chat', 2);
    // A reload of the list (an event) is not a second start.
    rerender(<ChatScreen me={ME} rooms={view([room('r1', 'general')])} />);
    expect(ipc.uiReady).toHaveBeenCalledTimes(1);
  });
});
