import { ErrorText } from '../../components/ErrorText';
import { useEngineEvent } from '../../hooks/useEngineEvent';
import { useView } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import { challenges as readChallenges, type Uuid } from '../../ipc';
import { ChallengeDetail } from './ChallengeDetail';
import { Deadline, StatusBadge } from './bits';

/** The live list of challenges; `openId` shows one in detail (a toast click sets it too). */
export function ChallengesScreen({ me, openId, onOpen }: { me: Uuid; openId: Uuid | null; onOpen: (id: Uuid | null) => void }) {
  const { t } = useI18n();
  const list = useView(readChallenges, []);
  useEngineEvent((e) => {
    if (e.type === 'challenges') list.reload();
  });

  const open = list.data?.find((c) => c.id === openId);
  if (open) return <ChallengeDetail key={open.id} challenge={open} me={me} onBack={() => onOpen(null)} />;

  return (
    <section className="screen">
      <h1>{t('challenges.title')}</h1>
      <ErrorText error={list.error} onRetry={list.reload} />
      {list.data === undefined && !list.error && <p className="muted">{t('app.loading')}</p>}
      {list.data?.length === 0 && <p className="muted">{t('challenges.empty')}</p>}
      <ul className="plain cards">
        {list.data?.map((c) => (
          <li key={c.id}>
            <button type="button" className="card challenge" data-testid="challenge-card" data-id={c.id} onClick={() => onOpen(c.id)}>
              <bdi className="card-title">{c.title}</bdi>
              <StatusBadge status={c.status} />
              <Deadline deadline={c.deadline} />
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
