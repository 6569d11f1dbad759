import { useState, type FormEvent } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useEngineEvent } from '../../hooks/useEngineEvent';
import { useNames } from '../../hooks/useProfiles';
import { useView } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, Challenge, Uuid } from '../../ipc';
import { Deadline, StatusBadge } from './bits';

/** One challenge: its description, the submissions the user may see, and the submit form
 * while it is open. */
export function ChallengeDetail({ challenge, me, onBack }: { challenge: Challenge; me: Uuid; onBack: () => void }) {
  const { t, dateTime } = useI18n();
  const subs = useView(() => ipc.submissions(challenge.id), [challenge.id]);
  useEngineEvent((e) => {
    if (e.type === 'submissions' && e.challenge_id === challenge.id) subs.reload();
  });
  const names = useNames(subs.data?.map((s) => s.user_id) ?? []);

  return (
    <section className="screen challenge-detail">
      <button type="button" className="link back" onClick={onBack}>
        {t('challenges.back')}
      </button>
      <h1>
        <bdi>{challenge.title}</bdi>
      </h1>
      <p className="meta">
        <StatusBadge status={challenge.status} /> <Deadline deadline={challenge.deadline} />
      </p>
      <p className="description" dir="auto">{challenge.description}</p>

      <h2>{t('challenges.submissions')}</h2>
      <ErrorText error={subs.error} onRetry={subs.reload} />
      {subs.data?.length === 0 && <p className="muted">{t('challenges.no_submissions')}</p>}
      <ul className="plain cards">
        {subs.data?.map((s) => (
          <li key={s.id} className={`card submission is-${s.state}`}>
            <bdi className="card-title">{s.title}</bdi>
            <StatusBadge status={s.status} />
            <span className="muted">
              {s.user_id === me ? t('chat.you') : (names(s.user_id) ?? t('chat.unknown_user'))} · {dateTime(s.created_at)}
            </span>
            {s.state === 'pending' && <span className="send-state">{t('chat.sending')}</span>}
            {s.state === 'failed' && <span className="send-state is-failed">{t('chat.not_sent')}</span>}
            <p dir="auto">{s.content}</p>
          </li>
        ))}
      </ul>

      {challenge.status === 'open' ? (
        <SubmitForm challengeId={challenge.id} />
      ) : (
        <p className="muted">{t('challenges.closed_for_submissions')}</p>
      )}
    </section>
  );
}

function SubmitForm({ challengeId }: { challengeId: Uuid }) {
  const { t } = useI18n();
  const [title, setTitle] = useState('');
  const [content, setContent] = useState('');
  const [error, setError] = useState<AppError>();
  const [done, setDone] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await ipc.createSubmission(challengeId, title.trim(), content.trim());
      setTitle('');
      setContent('');
      setError(undefined);
      setDone(true);
    } catch (err) {
      setError(ipc.toAppError(err));
    }
  };

  return (
    <form className="card form" onSubmit={submit}>
      <h2>{t('challenges.submit_title')}</h2>
      <label>
        {t('challenges.field_title')}
        <input dir="auto" required value={title} onChange={(e) => {
            setTitle(e.target.value);
            setDone(false);
          }} />
      </label>
      <label>
        {t('challenges.field_content')}
        <textarea dir="auto" required rows={4} value={content} onChange={(e) => setContent(e.target.value)} />
      </label>
      <ErrorText error={error} />
      {done && <p role="status">{t('challenges.submitted_ok')}</p>}
      <button type="submit" className="primary" disabled={!title.trim() || !content.trim()}>
        {t('challenges.submit')}
      </button>
    </form>
  );
}
