import { useEffect, useState } from 'react';
import { useI18n } from '../i18n';
import type { ConnectionState, QueueCounts } from '../ipc';

export interface ConnectionBarProps {
  state: ConnectionState;
  counts: QueueCounts;
  /** When `state` was reported (ms since epoch): `retry_in_ms` counts from then. */
  since: number;
  /** Opens the list of changes the server refused. */
  onShowFailed?: () => void;
}

/** Always visible: online / reconnecting in N s / offline, and what waits to be sent. */
export function ConnectionBar({ state, counts, since, onShowFailed }: ConnectionBarProps) {
  const { t, number } = useI18n();
  const now = useSecondTick(state.state === 'connecting', since);

  let label: string;
  if (state.state === 'online') label = t('connection.online');
  else if (state.state === 'offline') label = t('connection.offline');
  else {
    const seconds = Math.ceil((since + state.retry_in_ms - now) / 1000);
    label = seconds > 0 ? t('connection.reconnecting', { s: number(seconds) }) : t('connection.reconnecting_now');
  }

  return (
    <footer className={`connection-bar is-${state.state}`} data-testid="connection-bar" data-state={state.state} aria-label={t('connection.label')}>
      <span className="dot" aria-hidden="true" />
      <span role="status">{label}</span>
      {counts.queued > 0 && <span className="queued">{t('connection.queued', { n: number(counts.queued) })}</span>}
      {counts.failed > 0 &&
        (onShowFailed ? (
          <button type="button" className="failed link" onClick={onShowFailed}>
            {t('connection.failed', { n: number(counts.failed) })}
          </button>
        ) : (
          <span className="failed">{t('connection.failed', { n: number(counts.failed) })}</span>
        ))}
    </footer>
  );
}

/** The current time, refreshed every second while `active` and at once when `since` moves. */
function useSecondTick(active: boolean, since: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    setNow(Date.now());
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active, since]);
  return now;
}
