import { act, fireEvent, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { renderIn } from '../test/render';
import { ConnectionBar } from './ConnectionBar';

const none = { queued: 0, failed: 0 };

describe('ConnectionBar', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-29T10:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('says online and nothing about the queue when it is empty', () => {
    renderIn(<ConnectionBar state={{ state: 'online' }} counts={none} since={Date.now()} />);
    expect(screen.getByRole('status').textContent).toBe('Online');
    expect(screen.queryByText(/waiting to send/)).toBeNull();
    expect(screen.queryByText(/not sent/)).toBeNull();
  });

  it('counts down the reconnect and then says it is reconnecting', () => {
    renderIn(<ConnectionBar state={{ state: 'connecting', attempt: 3, retry_in_ms: 4500 }} counts={none} since={Date.now()} />);
    expect(screen.getByRole('status').textContent).toBe('Reconnecting in 5 s');
    act(() => void vi.advanceTimersByTime(2000));
    expect(screen.getByRole('status').textContent).toBe('Reconnecting in 3 s');
    act(() => void vi.advanceTimersByTime(3000));
    expect(screen.getByRole('status').textContent).toBe('Reconnecting…');
  });

  it('counts from when the state was reported, not from when it was drawn', () => {
    renderIn(<ConnectionBar state={{ state: 'connecting', attempt: 1, retry_in_ms: 10_000 }} counts={none} since={Date.now() - 6000} />);
    expect(screen.getByRole('status').textContent).toBe('Reconnecting in 4 s');
  });

  it('says offline with the number of queued changes, and offers the failed ones', () => {
    const onShowFailed = vi.fn();
    renderIn(<ConnectionBar state={{ state: 'offline' }} counts={{ queued: 7, failed: 2 }} since={Date.now()} onShowFailed={onShowFailed} />);
    expect(screen.getByRole('status').textContent).toBe('Offline');
    expect(screen.getByText('7 waiting to send')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: '2 not sent' }));
    expect(onShowFailed).toHaveBeenCalledOnce();
  });

  it('speaks Arabic in Arabic', () => {
    renderIn(<ConnectionBar state={{ state: 'connecting', attempt: 1, retry_in_ms: 3000 }} counts={{ queued: 3, failed: 0 }} since={Date.now()} />, 'ar');
    expect(screen.getByRole('status').textContent).toBe('إعادة الاتصال خلال 3 ث');
    expect(screen.getByText('3 بانتظار الإرسال')).toBeTruthy();
  });
});
