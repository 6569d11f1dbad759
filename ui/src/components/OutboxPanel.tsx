import { useState } from 'react';
import { useEngineEvent } from '../hooks/useEngineEvent';
import { useView } from '../hooks/useView';
import { useI18n } from '../i18n';
import { discard, outbox, retry, toAppError, type AppError } from '../ipc';
import { ErrorText } from './ErrorText';

/** The changes the server refused for good, each with retry / discard (messages also offer
 * them in place; this covers submissions, read markers and the rest). */
export function OutboxPanel({ onClose }: { onClose: () => void }) {
  const { t, dateTime } = useI18n();
  const entries = useView(outbox, []);
  const [error, setError] = useState<AppError>();
  useEngineEvent((e) => {
    if (e.type === 'outbox') entries.reload();
  });

  const act = (f: (seq: number) => Promise<void>, seq: number) =>
    f(seq).then(() => setError(undefined), (e) => setError(toAppError(e)));

  const failed = (entries.data ?? []).filter((e) => e.failed);
  return (
    <section className="panel outbox" aria-label={t('connection.failed', { n: failed.length })}>
      <header className="panel-head">
        <h2>{t('connection.failed', { n: failed.length })}</h2>
        <button type="button" onClick={onClose}>
          {t('notice.dismiss')}
        </button>
      </header>
      <ErrorText error={entries.error ?? error} onRetry={entries.reload} />
      <ul className="plain">
        {failed.map((entry) => (
          <li key={entry.seq} className="outbox-entry">
            <span className="muted">{dateTime(entry.created_at)}</span> <code>{entry.kind}</code>
            {entry.error && <p className="error">{entry.error.message}</p>}
            <button type="button" onClick={() => act(retry, entry.seq)}>
              {t('chat.retry')}
            </button>
            <button type="button" className="danger" onClick={() => act(discard, entry.seq)}>
              {t('chat.discard')}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
