import { isMessageKey, useI18n } from '../../i18n';
import type { Challenge, Submission } from '../../ipc';

export function StatusBadge({ status }: { status: Challenge['status'] | Submission['status'] }) {
  const { t } = useI18n();
  // Statuses are open-ended text on the wire: one the UI has no words for is shown as it is.
  const key = `status.${status}`;
  return <span className={`status status-${status}`}>{isMessageKey(key) ? t(key) : status}</span>;
}

export function Deadline({ deadline }: { deadline: string | null }) {
  const { t, dateTime } = useI18n();
  if (!deadline) return <span className="muted">{t('challenges.no_deadline')}</span>;
  const passed = new Date(deadline).getTime() < Date.now();
  return (
    <time dateTime={deadline} className={passed ? 'deadline is-passed' : 'deadline'}>
      {t('challenges.deadline', { date: dateTime(deadline) })}
      {passed && ` · ${t('challenges.overdue')}`}
    </time>
  );
}
