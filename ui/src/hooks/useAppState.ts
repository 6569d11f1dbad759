import { useCallback, useEffect, useState } from 'react';
import * as ipc from '../ipc';
import type { AppInfo, ConnectionState, QueueCounts, SessionInfo, Settings } from '../ipc';
import { useEngineEvent } from './useEngineEvent';

const DEFAULT_SETTINGS: Settings = { language: 'en', theme: 'system', update_channel: 'stable', notifications_paused: false };
const SIGNED_OUT: SessionInfo = { user_id: null, email: null, display_name: null, remembered: true };

export interface AppState {
  info: AppInfo | undefined;
  settings: Settings;
  session: SessionInfo | undefined;
  connection: { state: ConnectionState; since: number };
  counts: QueueCounts;
  /** Saves settings; the screen shows them at once and rolls back if the shell refuses. */
  saveSettings: (next: Settings) => Promise<void>;
  reloadSession: () => void;
}

/** The state every screen shares (app info, settings, session, connection, queue counts),
 * read once and kept current from the events. */
export function useAppState(): AppState {
  const [info, setInfo] = useState<AppInfo>();
  const [settings, setSettings] = useState(DEFAULT_SETTINGS);
  const [session, setSession] = useState<SessionInfo>();
  const [connection, setConnection] = useState<AppState['connection']>({ state: { state: 'offline' }, since: Date.now() });
  const [counts, setCounts] = useState<QueueCounts>({ queued: 0, failed: 0 });

  const reloadSession = useCallback(() => {
    // Without a shell (a plain browser) there is no session: show sign-in, not a spinner.
    ipc.session().then(setSession, () => setSession(SIGNED_OUT));
    ipc.connection().then((state) => setConnection({ state, since: Date.now() }), () => {});
    ipc.queueCounts().then(setCounts, () => {});
  }, []);

  useEffect(() => {
    ipc.appInfo().then(setInfo, () => {});
    ipc.settings().then(setSettings, () => {});
    reloadSession();
  }, [reloadSession]);

  useEngineEvent((e) => {
    switch (e.type) {
      case 'session':
        reloadSession();
        break;
      case 'connection':
        setConnection({ state: e.state, since: Date.now() });
        break;
      case 'outbox':
        setCounts(e.counts);
        break;
      case 'reload':
        // Events were missed: the session, connection and counts may all have moved on.
        ipc.settings().then(setSettings, () => {});
        reloadSession();
        break;
    }
  });

  const saveSettings = useCallback(
    async (next: Settings) => {
      const before = settings;
      setSettings(next);
      try {
        await ipc.setSettings(next);
      } catch (e) {
        setSettings(before);
        throw ipc.toAppError(e);
      }
    },
    [settings],
  );

  return { info, settings, session, connection, counts, saveSettings, reloadSession };
}
