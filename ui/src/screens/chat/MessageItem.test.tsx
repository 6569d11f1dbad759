import { fireEvent, screen } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Message, OutboxEntry } from '../../ipc';
import { renderIn } from '../../test/render';
import { MessageItem } from './MessageItem';

vi.mock('../../ipc', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../ipc')>();
  return {
    ...real,
    retry: vi.fn(async () => {}),
    discard: vi.fn(async () => {}),
    editMessage: vi.fn(async () => {}),
    deleteMessage: vi.fn(async () => {}),
    react: vi.fn(async () => {}),
    unreact: vi.fn(async () => {}),
  };
});
const ipc = await import('../../ipc');

const ME = '00000000-0000-7000-8000-0000000000aa';
const OTHER = '00000000-0000-7000-8000-0000000000bb';

function message(patch: Partial<Message> = {}): Message {
  return {
    id: '00000000-0000-7000-8000-000000000001',
    room_id: '00000000-0000-7000-8000-000000000100',
    user_id: ME,
    content: 'مرحبا بالجميع',
    kind: 'text',
    reply_to: null,
    edited_at: null,
    deleted_at: null,
    created_at: '2026-11-29T09:00:00Z',
    state: 'sent',
    reactions: [],
    ...patch,
  };
}

const refused: OutboxEntry = {
  seq: 42,
  kind: 'send_message',
  stream: 'room:x',
  target: '00000000-0000-7000-8000-000000000001',
  failed: true,
  error: { status: 403, code: '42501', message: 'not a member of this room' },
  attempts: 1,
  created_at: '2026-11-29T09:00:00Z',
};

const item = (m: Message, failed?: OutboxEntry) =>
  renderIn(
    <ol>
      <MessageItem message={m} me={ME} author="Layla" failed={failed} />
    </ol>,
  );

describe('MessageItem', () => {
  beforeEach(() => vi.clearAllMocks());

  it('a sent message shows no send state and no retry', () => {
    item(message());
    expect(screen.getByText('مرحبا بالجميع')).toBeTruthy();
    expect(screen.queryByText('Sending…')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Retry' })).toBeNull();
  });

  it('a queued message says it is sending and offers no retry yet', () => {
    item(message({ state: 'pending', created_at: null }));
    expect(screen.getByText('Sending…')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Retry' })).toBeNull();
  });

  it('a refused message says why, and retry / discard act on its outbox entry', () => {
    item(message({ state: 'failed', created_at: null }), refused);
    expect(screen.getByRole('alert').textContent).toContain('Not sent: not a member of this room');
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(ipc.retry).toHaveBeenCalledWith(42);
    fireEvent.click(screen.getByRole('button', { name: 'Discard' }));
    expect(ipc.discard).toHaveBeenCalledWith(42);
  });

  it('shows the engine refusing a retry with a localised prefix', async () => {
    vi.mocked(ipc.retry).mockRejectedValueOnce({ code: 'unavailable', message: 'connection refused' });
    item(message({ state: 'failed' }), refused);
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect((await screen.findByText('Cannot reach the server')).parentElement?.textContent).toBe(
      'Cannot reach the server: connection refused',
    );
  });

  it('the author edits with Enter and the edit goes to the engine', () => {
    item(message());
    fireEvent.click(screen.getByRole('button', { name: 'Edit' }));
    const box = screen.getByRole('textbox', { name: 'Edit' });
    fireEvent.change(box, { target: { value: 'أهلًا' } });
    fireEvent.keyDown(box, { key: 'Enter' });
    expect(ipc.editMessage).toHaveBeenCalledWith(message().id, 'أهلًا');
  });

  it("others' messages offer no edit or delete; a deleted one shows as deleted", () => {
    item(message({ user_id: OTHER, deleted_at: '2026-11-29T09:05:00Z', content: '' }));
    expect(screen.getByText('Message deleted')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Edit' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete' })).toBeNull();
  });

  it('reaction chips count, show mine as pressed, and a click on mine removes it', () => {
    item(
      message({
        reactions: [
          { emoji: '👍', user_id: ME, pending: false },
          { emoji: '👍', user_id: OTHER, pending: false },
          { emoji: '🎉', user_id: OTHER, pending: false },
        ],
      }),
    );
    const thumbs = screen.getByRole('button', { name: '👍 2' });
    expect(thumbs.getAttribute('aria-pressed')).toBe('true');
    expect(screen.getByRole('button', { name: '🎉 1' }).getAttribute('aria-pressed')).toBe('false');
    fireEvent.click(thumbs);
    expect(ipc.unreact).toHaveBeenCalledWith(message().id, '👍');
    fireEvent.click(screen.getByRole('button', { name: '🎉 1' }));
    expect(ipc.react).toHaveBeenCalledWith(message().id, '🎉');
  });
});
