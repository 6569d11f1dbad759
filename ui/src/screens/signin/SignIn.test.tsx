import { fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { AppInfo } from '../../ipc';
import { renderIn } from '../../test/render';
import { SignIn } from './SignIn';

vi.mock('../../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../ipc')>()),
  signIn: vi.fn(async () => ({ user_id: 'u' })),
  setBackend: vi.fn(async () => {}),
}));
const ipc = await import('../../ipc');

const info: AppInfo = {
  version: '0.1.0',
  backend: { kind: 'embedded' },
  demo_accounts: [{ email: 'layla@demo.ruwad.app', password: 'ruwad-demo', display_name: 'ليلى حسن' }],
  capabilities: {
    keychain: { available: true, message: null },
    notifications: { available: true, message: null },
    tray: { available: true, message: null },
  },
};

describe('SignIn', () => {
  beforeEach(() => vi.clearAllMocks());

  it('a demo account signs in on the embedded backend without switching it', async () => {
    renderIn(<SignIn info={info} />);
    fireEvent.click(screen.getByRole('button', { name: /Sign in as ليلى حسن/ }));
    await waitFor(() => expect(ipc.signIn).toHaveBeenCalledWith('layla@demo.ruwad.app', 'ruwad-demo'));
    expect(ipc.setBackend).not.toHaveBeenCalled();
  });

  it('choosing a Supabase project switches the backend before the credentials go out, and hides the demo accounts', async () => {
    renderIn(<SignIn info={info} />);
    fireEvent.click(screen.getByRole('radio', { name: 'Supabase project' }));
    expect(screen.queryByRole('button', { name: /Sign in as/ })).toBeNull();
    fireEvent.change(screen.getByLabelText('Project URL'), { target: { value: 'https://abc.supabase.co' } });
    fireEvent.change(screen.getByLabelText('Anon key'), { target: { value: 'anon' } });
    fireEvent.change(screen.getByLabelText('Email'), { target: { value: 'me@x.org' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(ipc.signIn).toHaveBeenCalledWith('me@x.org', 'pw'));
    expect(ipc.setBackend).toHaveBeenCalledWith({ kind: 'supabase', url: 'https://abc.supabase.co', anon_key: 'anon' });
    expect(vi.mocked(ipc.setBackend).mock.invocationCallOrder[0]!).toBeLessThan(vi.mocked(ipc.signIn).mock.invocationCallOrder[0]!);
  });

  it('shows a refusal with its localised prefix', async () => {
    vi.mocked(ipc.signIn).mockRejectedValueOnce({ code: 'invalid_credentials', message: 'Invalid login credentials' });
    renderIn(<SignIn info={info} />, 'ar');
    fireEvent.click(screen.getByRole('button', { name: /الدخول باسم/ }));
    expect((await screen.findByRole('alert')).textContent).toBe('البريد الإلكتروني أو كلمة المرور غير صحيحة: Invalid login credentials');
  });
});

describe('SignIn: a second window', () => {
  beforeEach(() => vi.clearAllMocks());

  it('the embedded backend offers a second window, which says when it opens or why not', async () => {
    const open = vi.spyOn(ipc, 'openSecondWindow');
    open.mockResolvedValueOnce(undefined);
    renderIn(<SignIn info={info} />);
    fireEvent.click(screen.getByTestId('open-second-window'));
    await screen.findByText('A second window is opening.');
    open.mockRejectedValueOnce(new ipc.AppError('internal', 'cannot start a second window: no such file'));
    fireEvent.click(screen.getByTestId('open-second-window'));
    await screen.findByText(/cannot start a second window/);
    expect(open).toHaveBeenCalledTimes(2);
  });

  it('a Supabase project has no second window (it has no embedded backend to share)', () => {
    renderIn(<SignIn info={info} />);
    fireEvent.click(screen.getByRole('radio', { name: 'Supabase project' }));
    expect(screen.queryByTestId('open-second-window')).toBeNull();
  });
});
