import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Challenge } from '../../ipc';
import { renderIn } from '../../test/render';
import { ChallengeDetail } from './ChallengeDetail';

vi.mock('../../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../ipc')>()),
  subscribe: () => () => {},
  submissions: vi.fn(async () => [
    { id: 's1', challenge_id: 'c1', user_id: 'me', title: 'Solar sensors', content: 'A mesh of sensors', status: 'submitted', created_at: null, updated_at: null, state: 'pending' },
  ]),
  createSubmission: vi.fn(async () => 's2'),
  profiles: vi.fn(async () => []),
}));
const ipc = await import('../../ipc');

const challenge = (status: Challenge['status']): Challenge => ({
  id: 'c1', title: 'Smart irrigation', description: 'Cut water use by 30%.', status, deadline: '2020-01-01T00:00:00Z',
  created_by: 'someone', created_at: '2019-12-01T00:00:00Z', updated_at: '2019-12-01T00:00:00Z',
});

describe('ChallengeDetail', () => {
  beforeEach(() => vi.clearAllMocks());

  it('lists submissions with their send state and submits a new one while open', async () => {
    renderIn(<ChallengeDetail challenge={challenge('open')} me="me" onBack={() => {}} />);
    expect(await screen.findByText('Solar sensors')).toBeTruthy();
    expect(screen.getByText('Sending…')).toBeTruthy();
    expect(screen.getByText(/Deadline passed/)).toBeTruthy();

    fireEvent.change(screen.getByLabelText('Title'), { target: { value: ' Drip kits ' } });
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: 'Cheap drip irrigation' } });
    fireEvent.click(screen.getByRole('button', { name: 'Submit' }));
    await waitFor(() => expect(ipc.createSubmission).toHaveBeenCalledWith('c1', 'Drip kits', 'Cheap drip irrigation'));
    expect(await screen.findByText('Submission saved; it is sent as soon as possible.')).toBeTruthy();
  });

  it('offers no form when the challenge is not open', async () => {
    renderIn(<ChallengeDetail challenge={challenge('judging')} me="me" onBack={() => {}} />);
    expect(await screen.findByText('This challenge does not take submissions now.')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Submit' })).toBeNull();
  });
});
