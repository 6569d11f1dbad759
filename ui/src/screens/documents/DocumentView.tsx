import { lazy, Suspense, useEffect, useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useI18n } from '../../i18n';
import { toAppError, type AppError, type DocStatus, type DocumentInfo } from '../../ipc';
import { PeoplePanel } from '../chat/PeoplePanel';
import { DocBinding } from './DocBinding';
import type { Me } from './DocumentsScreen';
import { useCoEditors } from './useCoEditors';

// Tiptap and ProseMirror are most of the bundle's weight: loaded when a document opens.
const DocEditor = lazy(() => import('./DocEditor').then((m) => ({ default: m.DocEditor })));

/** One open document: owns its DocBinding for as long as it is shown. */
export function DocumentView({ info, me, online, onBack }: { info: DocumentInfo; me: Me; online: boolean; onBack: () => void }) {
  const { t } = useI18n();
  const [binding, setBinding] = useState<DocBinding>();
  const [readOnly, setReadOnly] = useState(true);
  const [status, setStatus] = useState<DocStatus>();
  const [error, setError] = useState<AppError>();
  const coEditors = useCoEditors(binding);

  useEffect(() => {
    const b = new DocBinding(info.id, undefined, setError);
    const stopStatus = b.onStatus((s) => {
      setStatus(s);
      setReadOnly(s.read_only);
    });
    b.open().then(
      ({ readOnly }) => {
        setReadOnly(readOnly);
        setBinding(b);
      },
      (e) => setError(toAppError(e)),
    );
    return () => {
      stopStatus();
      void b.close();
    };
  }, [info.id]);

  return (
    <section className="screen document">
      <button type="button" className="link back" onClick={onBack}>
        {t('documents.back')}
      </button>
      <header className="doc-head">
        <h1>
          <bdi>{info.title}</bdi>
        </h1>
        {readOnly && binding && <span className="status">{t('documents.read_only')}</span>}
        <SyncState online={online} status={status} />
      </header>
      <ErrorText error={error} />
      <div className="doc-body">
        {binding ? (
          <Suspense fallback={<p className="muted">{t('documents.opening')}</p>}>
            <DocEditor binding={binding} me={me} readOnly={readOnly} />
          </Suspense>
        ) : (
          !error && <p className="muted">{t('documents.opening')}</p>
        )}
        <PeoplePanel title={t('documents.coeditors')} empty={t('documents.alone')} people={coEditors} />
      </div>
    </section>
  );
}

/** Offline (edits stay on this computer) / some edits refused for good (see the outbox) /
 * saved locally (not yet on the server) / synced. */
export function SyncState({ online, status }: { online: boolean; status: DocStatus | undefined }) {
  const { t } = useI18n();
  const [key, cls] = !online
    ? (['documents.offline', 'offline'] as const)
    : status && status.failed > 0
      ? (['documents.refused', 'failed'] as const)
      : status && status.pending === 0
        ? (['documents.synced', 'synced'] as const)
        : (['documents.saved_locally', 'local'] as const);
  return (
    <span className={`sync-state is-${cls}`} data-testid="doc-sync" data-state={cls} role="status">
      {t(key)}
    </span>
  );
}
