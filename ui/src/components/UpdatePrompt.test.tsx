import { act, fireEvent, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { RuwadEvent, UpdateInfo } from '../ipc';
import { UpdateCheck } from '../screens/settings/UpdateCheck';
import { renderIn } from '../test/render';
import { UpdateOffer, UpdatePrompt } from './UpdatePrompt';

const listeners = new Set<(e: RuwadEvent) => void>();
vi.mock('../ipc', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../ipc')>()),
  subscribe: (handler: (e: RuwadEvent) => void) => {
    listeners.add(handler);
    return () => listeners.delete(handler);
  },
  installUpdate: vi.fn(),
  checkUpdate: vi.fn(),
}));
const ipc = await import('../ipc');
const installUpdate = vi.mocked(ipc.installUpdate);
const checkUpdate = vi.mocked(ipc.checkUpdate);

const UPDATE: UpdateInfo = { version: '0.2.0', current_version: '0.1.0', date: '2026-01-01T00:00:00Z', notes: 'Faster chat' };
const send = (e: RuwadEvent) => act(() => listeners.forEach((l) => l(e)));

beforeEach(() => {
  installUpdate.mockReset();
  checkUpdate.mockReset();
});

describe('UpdatePrompt', () => {
  it('installs only after "Install now" is clicked, then shows progress and the restart', async () => {
    installUpdate.mockReturnValue(new Promise(() => {}));
    renderIn(<UpdatePrompt update={UPDATE} onLater={() => {}} />);
    expect(screen.getByText('Update available: version 0.2.0')).toBeTruthy();
    expect(screen.getByText('Faster chat')).toBeTruthy();
    expect(installUpdate).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole('button', { name: 'Install now' }));
    expect(installUpdate).toHaveBeenCalledTimes(1);
    expect(installUpdate).toHaveBeenCalledWith('0.2.0');
    expect(screen.queryByRole('button', { name: 'Install now' })).toBeNull();
    expect(screen.getByRole('status').textContent).toBe('Downloading the update…');

    send({ type: 'update_progress', downloaded: 512, total: 2048 });
    expect(screen.getByRole('status').textContent).toBe('Downloading the update… 25%');
    send({ type: 'update_installed', version: '0.2.0' });
    expect(screen.getByRole('status').textContent).toBe('Installed. Restarting…');
  });

  it('"Later" dismisses without installing', () => {
    const onLater = vi.fn();
    renderIn(<UpdatePrompt update={UPDATE} onLater={onLater} />);
    fireEvent.click(screen.getByRole('button', { name: 'Later' }));
    expect(onLater).toHaveBeenCalledTimes(1);
    expect(installUpdate).not.toHaveBeenCalled();
  });

  it('ignores progress events until the user has asked to install', () => {
    renderIn(<UpdatePrompt update={UPDATE} onLater={() => {}} />);
    send({ type: 'update_progress', downloaded: 1, total: 2 });
    expect(screen.queryByRole('status')).toBeNull();
    expect(screen.getByRole('button', { name: 'Install now' })).toBeTruthy();
  });

  it('a refused install says why (by code) and asks again', async () => {
    installUpdate.mockRejectedValue({ code: 'signature', message: "the update's signature does not match (not installed)" });
    renderIn(<UpdatePrompt update={UPDATE} onLater={() => {}} />);
    fireEvent.click(screen.getByRole('button', { name: 'Install now' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('The update failed its signature check');
    expect(alert.textContent).toContain('not installed');
    expect(screen.getByRole('button', { name: 'Install now' })).toBeTruthy();
  });

  it('speaks Arabic', () => {
    renderIn(<UpdatePrompt update={UPDATE} onLater={() => {}} />, 'ar');
    expect(screen.getByRole('button', { name: 'ثبّت الآن' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'لاحقًا' })).toBeTruthy();
  });
});

describe('UpdateOffer (the background check)', () => {
  it('asks when an update_available event arrives; "Later" hides it, nothing is installed', () => {
    renderIn(<UpdateOffer />);
    expect(screen.queryByTestId('update-prompt')).toBeNull();
    send({ type: 'update_available', update: UPDATE });
    expect(screen.getByText('Update available: version 0.2.0')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Later' }));
    expect(screen.queryByTestId('update-prompt')).toBeNull();
    expect(installUpdate).not.toHaveBeenCalled();
    send({ type: 'update_available', update: { ...UPDATE, version: '0.2.1' } });
    expect(screen.getByText('Update available: version 0.2.1')).toBeTruthy();
  });
});

describe('UpdateCheck (settings)', () => {
  it('says when this version is the latest', async () => {
    checkUpdate.mockResolvedValue(null);
    renderIn(<UpdateCheck version="0.1.0" />);
    fireEvent.click(screen.getByRole('button', { name: 'Check for updates' }));
    expect((await screen.findByRole('status')).textContent).toBe('You have the latest version (0.1.0).');
  });

  it('offers a newer version and installs it only on "Install now"', async () => {
    checkUpdate.mockResolvedValue(UPDATE);
    installUpdate.mockReturnValue(new Promise(() => {}));
    renderIn(<UpdateCheck version="0.1.0" />);
    fireEvent.click(screen.getByRole('button', { name: 'Check for updates' }));
    expect(await screen.findByText('Update available: version 0.2.0')).toBeTruthy();
    expect(installUpdate).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Install now' }));
    expect(installUpdate).toHaveBeenCalledWith('0.2.0');
  });

  it('shows why a check failed', async () => {
    checkUpdate.mockRejectedValue({ code: 'unavailable', message: 'cannot reach the update server: connection refused' });
    renderIn(<UpdateCheck version="0.1.0" />);
    fireEvent.click(screen.getByRole('button', { name: 'Check for updates' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('Cannot reach the server');
    expect(alert.textContent).toContain('cannot reach the update server');
    await waitFor(() => expect(screen.getByRole('button', { name: 'Check for updates' })).toHaveProperty('disabled', false));
  });
});
