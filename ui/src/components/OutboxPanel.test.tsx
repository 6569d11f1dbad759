import { fireEvent, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { renderIn } from '../test/render';
import { OutboxPanel } from './OutboxPanel';

vi.mock('../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../ipc')>()),
  subscribe: () => () => {},
  outbox: vi.fn(async () => [
    { seq: 1, kind: 'send_message', stream: 'room:r', target: 'm', failed: false, error: null, attempts: 0, created_at: '2026-11-29T09:00:00Z' },
    { seq: 2, kind: 'create_submission', stream: 'challenge:c', target: 's', failed: true, error: { status: 403, code: '42501', message: 'challenge is closed' }, attempts: 1, created_at: '2026-11-29T09:01:00Z' },
  ]),
  retry: vi.fn(async () => {}),
  discard: vi.fn(async () => {}),
}));
const ipc = await import('../ipc');

describe('OutboxPanel', () => {
  it('lists only the refused changes, with the reason, and retries / discards them by seq', async () => {
    renderIn(<OutboxPanel onClose={() => {}} />);
    expect(await screen.findByText('challenge is closed')).toBeTruthy();
    expect(screen.queryByText('send_message')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    fireEvent.click(screen.getByRole('button', { name: 'Discard' }));
    await waitFor(() => expect(ipc.retry).toHaveBeenCalledWith(2));
    expect(ipc.discard).toHaveBeenCalledWith(2);
  });
});
