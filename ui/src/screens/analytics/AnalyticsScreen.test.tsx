import { act, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { RuwadEvent } from '../../ipc';
import { renderIn } from '../../test/render';
import { fillGaps } from './ActivityChart';
import { AnalyticsScreen } from './AnalyticsScreen';

const handlers: ((e: RuwadEvent) => void)[] = [];
vi.mock('../../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../ipc')>()),
  subscribe: (h: (e: RuwadEvent) => void) => {
    handlers.push(h);
    return () => void handlers.splice(handlers.indexOf(h), 1);
  },
  cachedMetrics: vi.fn(async () => ({ active_users: 1, total_challenges: 2, new_submissions: 3, online_users: 4 })),
  // The live read never answers here: what shows is the cache, then the pushed value.
  liveMetrics: vi.fn(() => new Promise(() => {})),
  activitySeries: vi.fn(async () => []),
  recentActivity: vi.fn(async () => [
    { id: 2, user_id: 'u1', kind: 'submission_created', ref_id: null, created_at: '2026-11-29T09:00:00Z' },
    { id: 1, user_id: 'u1', kind: 'planted_a_tree', ref_id: null, created_at: '2026-11-29T08:00:00Z' },
  ]),
  profiles: vi.fn(async () => [{ id: 'u1', display_name: 'Sara', avatar_url: null, locale: 'ar' }]),
}));
const ipc = await import('../../ipc');

const counter = (name: string) => screen.getByText(name).nextElementSibling?.textContent;

describe('AnalyticsScreen', () => {
  it('shows the cached counters at once, then each pushed value; re-reads the feed on analytics events', async () => {
    renderIn(<AnalyticsScreen />);
    await waitFor(() => expect(counter('Online now')).toBe('4'));
    expect(counter('Active users')).toBe('1');
    expect(await screen.findByText('Sara submitted an idea')).toBeTruthy();
    // A kind the UI has no words for is shown as it is.
    expect(screen.getByText('Sara: planted_a_tree')).toBeTruthy();

    const reads = vi.mocked(ipc.recentActivity).mock.calls.length;
    await act(async () => {
      handlers.forEach((h) => h({ type: 'analytics', metrics: { active_users: 9, total_challenges: 2, new_submissions: 5, online_users: 7 } }));
    });
    expect(counter('Active users')).toBe('9');
    expect(counter('Online now')).toBe('7');
    expect(vi.mocked(ipc.recentActivity).mock.calls.length).toBe(reads + 1);
  });
});

describe('fillGaps', () => {
  it('adds the empty buckets between the ones with activity, up to now', () => {
    const now = Math.floor(Date.now() / 1000 / 60) * 60;
    const filled = fillGaps([{ start: now - 180, events: 2, users: 1 }, { start: now - 60, events: 1, users: 1 }], 60);
    expect(filled.map((p) => [now - p.start, p.events])).toEqual([[180, 2], [120, 0], [60, 1], [0, 0]]);
  });
});
