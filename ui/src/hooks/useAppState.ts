import { useCallback, useEffect, useRef, useState } from 'react';
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
  // Events that arrived since a read was sent are newer than its answer: a read only lands when
  // no event of its kind came in meanwhile (else a slow `connection()` answer from before the
  // socket came up would overwrite the `online` event that followed it).
  const connectionEvents = useRef(0);
  const countEvents = useRef(0);

  const reloadSession = useCallback(() => {
    // Without a shell (a plain browser) there is no session: show sign-in, not a spinner.
    ipc.session().then(setSession, () => setSession(SIGNED_OUT));
    const sentAtConnection = connectionEvents.current;
    ipc.connection().then(
      (state) => {
        if (connectionEvents.current === sentAtConnection) setConnection({ state, since: Date.now() });
      },
      () => {},
    );
    const sentAtCounts = countEvents.current;
    ipc.queueCounts().then(
      (c) => {
        if (countEvents.current === sentAtCounts) setCounts(c);
      },
      () => {},
    );
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
        connectionEvents.current += 1;
        setConnection({ state: e.state, since: Date.now() });
        break;
      case 'outbox':
        countEvents.current += 1;
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
