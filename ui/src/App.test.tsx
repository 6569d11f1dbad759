import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message, Room, RuwadEvent, Settings } from './ipc';

// The whole app over a mocked facade: the wiring of screens, events and re-reads.
const ME = '00000000-0000-7000-8000-0000000000aa';
const ROOM: Room = {
  id: '00000000-0000-7000-8000-000000000100',
  name: 'general',
  kind: 'channel',
  challenge_id: null,
  created_by: ME,
  created_at: '2026-11-01T00:00:00Z',
  member: true,
  last_read_at: null,
  unread: 3,
  latest_at: '2026-11-29T09:00:00Z',
};
const hello: Message = {
  id: '00000000-0000-7000-8000-000000000001',
  room_id: ROOM.id,
  user_id: '00000000-0000-7000-8000-0000000000bb',
  content: 'صباح الخير',
  kind: 'text',
  reply_to: null,
  edited_at: null,
  deleted_at: null,
  created_at: '2026-11-29T09:00:00Z',
  state: 'sent',
  reactions: [],
};

// Several hooks subscribe; an engine event reaches each of them.
const handlers: ((e: RuwadEvent) => void)[] = [];
const emit = (e: RuwadEvent) => [...handlers].forEach((h) => h(e));
let stored: Message[] = [];
let settings: Settings = { language: 'en', theme: 'light', update_channel: 'stable', notifications_paused: false };

vi.mock('./ipc', async (importOriginal) => {
  const real = await importOriginal<typeof import('./ipc')>();
  return {
    ...real,
    subscribe: (h: (e: RuwadEvent) => void) => {
      handlers.push(h);
      return () => void handlers.splice(handlers.indexOf(h), 1);
    },
    appInfo: vi.fn(async () => ({
      version: '0.1.0',
      backend: { kind: 'embedded' },
      demo_accounts: [],
      capabilities: {
        keychain: { available: false, message: 'no Secret Service on the session bus' },
        notifications: { available: true, message: null },
        tray: { available: true, message: null },
      },
    })),
    settings: vi.fn(async () => settings),
    setSettings: vi.fn(async (s: Settings) => void (settings = s)),
    session: vi.fn(async () => ({ user_id: ME, email: 'layla@demo.ruwad.app', display_name: 'Layla', remembered: false })),
    connection: vi.fn(async () => ({ state: 'online' })),
    queueCounts: vi.fn(async () => ({ queued: 0, failed: 0 })),
    outbox: vi.fn(async () => []),
    profiles: vi.fn(async (ids: string[]) => ids.map((id) => ({ id, display_name: 'Omar', avatar_url: null, locale: 'ar' }))),
    rooms: vi.fn(async () => [ROOM]),
    messages: vi.fn(async () => ({ messages: stored, complete: true })),
    enterRoom: vi.fn(async () => {}),
    leaveRoom: vi.fn(async () => {}),
    online: vi.fn(async () => [ME]),
    typers: vi.fn(async () => []),
    markRead: vi.fn(async () => {}),
    draft: vi.fn(async () => null),
    setDraft: vi.fn(async () => {}),
    typing: vi.fn(async () => true),
    stopTyping: vi.fn(async () => {}),
    sendMessage: vi.fn(async (_room: string, content: string) => {
      stored = [...stored, { ...hello, id: 'local-1', user_id: ME, content, created_at: null, state: 'pending' }];
      return 'local-1';
    }),
    notificationPrefs: vi.fn(async () => ({ muted: false, kinds: {} })),
  };
});
const ipc = await import('./ipc');
const { App } = await import('./App');

describe('App', () => {
  beforeEach(() => {
    stored = [hello];
    settings = { ...settings, language: 'en' };
    vi.clearAllMocks();
  });

  it('shows the workspace with the unread badge, a room with its history, and says the session is not remembered', async () => {
    render(<App />);
    const rail = await screen.findByRole('navigation', { name: 'Main navigation' });
    expect(await within(rail).findByLabelText('3 unread')).toBeTruthy();
    expect(screen.getByText(/Not remembered \(no keychain\)/)).toBeTruthy();
    // The keychain capability is not repeated: the "not remembered" notice says it.
    expect(screen.queryByText(/Keychain unavailable/)).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: /general/ }));
    expect(await screen.findByText('صباح الخير')).toBeTruthy();
    expect(ipc.enterRoom).toHaveBeenCalledWith(ROOM.id);
    expect(await screen.findByText('Omar')).toBeTruthy();
  });

  it('sends with Enter, then shows the echo as sending when the engine says the room changed', async () => {
    render(<App />);
    fireEvent.click(await screen.findByRole('button', { name: /general/ }));
    const box = await screen.findByRole('textbox', { name: 'Message general' });
    fireEvent.change(box, { target: { value: 'hello all' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(ipc.sendMessage).toHaveBeenCalledWith(ROOM.id, 'hello all'));
    act(() => emit({ type: 'messages', room_id: ROOM.id, ids: ['local-1'] }));
    expect(await screen.findByText('hello all')).toBeTruthy();
    expect(screen.getByText('Sending…')).toBeTruthy();
  });

  it('switching to Arabic in settings turns the page right-to-left', async () => {
    render(<App />);
    await screen.findByRole('navigation', { name: 'Main navigation' });
    expect(document.documentElement.dir).toBe('ltr');
    fireEvent.keyDown(window, { key: '5', ctrlKey: true });
    fireEvent.click(await screen.findByRole('radio', { name: 'العربية' }));
    await waitFor(() => expect(document.documentElement.dir).toBe('rtl'));
    expect(ipc.setSettings).toHaveBeenCalledWith(expect.objectContaining({ language: 'ar' }));
    expect(screen.getByRole('heading', { name: 'الإعدادات' })).toBeTruthy();
  });

  it('re-reads every view it shows when the shell says events were missed (reload)', async () => {
    render(<App />);
    fireEvent.click(await screen.findByRole('button', { name: /general/ }));
    expect(await screen.findByText('صباح الخير')).toBeTruthy();
    vi.clearAllMocks();
    stored = [...stored, { ...hello, id: 'missed-1', content: 'missed while behind' }];

    act(() => emit({ type: 'reload' }));
    expect(await screen.findByText('missed while behind')).toBeTruthy();
    for (const read of [ipc.rooms, ipc.messages, ipc.outbox, ipc.session, ipc.connection, ipc.queueCounts, ipc.online, ipc.typers]) {
      expect(read).toHaveBeenCalled();
    }
    expect(ipc.messages).toHaveBeenCalledWith(ROOM.id, 50);
  });

  it('follows the connection events in the bar', async () => {
    render(<App />);
    await screen.findByRole('navigation', { name: 'Main navigation' });
    act(() => emit({ type: 'connection', state: { state: 'offline' } }));
    act(() => emit({ type: 'outbox', counts: { queued: 4, failed: 0 } }));
    const bar = screen.getByRole('contentinfo', { name: 'Connection' });
    expect(bar.textContent).toContain('Offline');
    expect(bar.textContent).toContain('4 waiting to send');
  });
});
