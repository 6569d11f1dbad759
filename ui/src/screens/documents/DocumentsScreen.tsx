import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useEngineEvent } from '../../hooks/useEngineEvent';
import { useView } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import { documents as readDocuments, type Uuid } from '../../ipc';
import { DocumentView } from './DocumentView';

export interface Me {
  id: Uuid;
  name: string;
}

export function DocumentsScreen({ me, online }: { me: Me; online: boolean }) {
  const { t, dateTime } = useI18n();
  const list = useView(readDocuments, []);
  const [openId, setOpenId] = useState<Uuid | null>(null);
  useEngineEvent((e) => {
    if (e.type === 'documents') list.reload();
  });

  const open = list.data?.find((d) => d.id === openId);
  if (open) return <DocumentView key={open.id} info={open} me={me} online={online} onBack={() => setOpenId(null)} />;

  return (
    <section className="screen">
      <h1>{t('documents.title')}</h1>
      <ErrorText error={list.error} onRetry={list.reload} />
      {list.data === undefined && !list.error && <p className="muted">{t('app.loading')}</p>}
      {list.data?.length === 0 && <p className="muted">{t('documents.empty')}</p>}
      <ul className="plain cards">
        {list.data?.map((d) => (
          <li key={d.id}>
            <button type="button" className="card" data-testid="document-card" data-id={d.id} onClick={() => setOpenId(d.id)}>
              <bdi className="card-title">{d.title}</bdi>
              <span className="status">{t(`documents.role.${d.role}`)}</span>
              <span className="muted">{t('documents.updated', { date: dateTime(d.updated_at) })}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
