import { useEffect, useRef, useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useEngineEvent } from '../../hooks/useEngineEvent';
import { useNames } from '../../hooks/useProfiles';
import { useView } from '../../hooks/useView';
import { isMessageKey, useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, LiveMetrics } from '../../ipc';
import { ActivityChart } from './ActivityChart';

const WINDOW_SECS = 3600;
const BUCKET_SECS = 60;
const RECENT = 20;
const COUNTERS: (keyof LiveMetrics)[] = ['active_users', 'total_challenges', 'new_submissions', 'online_users'];

/** Live counters, activity over the last hour and the recent activity feed. Counters come
 * with the `analytics` event; the series and the feed are re-read when it says "activity". */
export function AnalyticsScreen() {
  const { t, number, time } = useI18n();
  const metrics = useMetrics();
  const series = useView(() => ipc.activitySeries(WINDOW_SECS, BUCKET_SECS), []);
  const recent = useView(() => ipc.recentActivity(RECENT), []);
  const names = useNames(recent.data?.map((a) => a.user_id) ?? []);

  useEngineEvent((e) => {
    if (e.type !== 'analytics') return;
    series.reload();
    recent.reload();
  });
  // Buckets slide with the clock even when nothing happens.
  useEffect(() => {
    const timer = setInterval(series.reload, BUCKET_SECS * 1000);
    return () => clearInterval(timer);
  }, [series.reload]);

  return (
    <section className="screen analytics">
      <h1>{t('analytics.title')}</h1>
      <ErrorText error={metrics.error} />
      <dl className="counters">
        {COUNTERS.map((key) => (
          <div key={key} className="counter card">
            <dt>{t(`analytics.${key}`)}</dt>
            <dd>{metrics.value ? number(metrics.value[key]) : '—'}</dd>
          </div>
        ))}
      </dl>

      <h2>{t('analytics.chart')}</h2>
      <ErrorText error={series.error} onRetry={series.reload} />
      {series.data && <ActivityChart points={series.data} bucketSecs={BUCKET_SECS} />}

      <h2>{t('analytics.recent')}</h2>
      <ErrorText error={recent.error} onRetry={recent.reload} />
      {recent.data?.length === 0 && <p className="muted">{t('analytics.no_activity')}</p>}
      <ul className="plain feed">
        {recent.data?.map((a) => {
          const name = names(a.user_id) ?? t('chat.unknown_user');
          // Kinds are open-ended text: one the UI has no words for is shown as it is.
          const key = `activity.${a.kind}`;
          const text = isMessageKey(key) ? t(key, { name }) : t('activity.other', { name, kind: a.kind });
          return (
            <li key={a.id}>
              <time dateTime={a.created_at}>{time(a.created_at)}</time> {text}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** The last cached metrics at once (offline too), then the live value, then each pushed one. */
function useMetrics() {
  const [value, setValue] = useState<LiveMetrics | null>(null);
  const [error, setError] = useState<AppError>();
  const live = useRef(true);
  const readLive = () =>
    ipc.liveMetrics().then(
      (m) => {
        if (!live.current) return;
        setValue(m);
        setError(undefined);
      },
      (e) => live.current && setError(ipc.toAppError(e)),
    );
  useEffect(() => {
    live.current = true;
    ipc.cachedMetrics().then((m) => live.current && m && setValue((v) => v ?? m), () => {});
    void readLive();
    return () => {
      live.current = false;
    };
  }, []);
  useEngineEvent((e) => {
    if (e.type === 'analytics' && e.metrics) {
      setValue(e.metrics);
      setError(undefined);
    } else if (e.type === 'reload') void readLive();
  });
  return { value, error };
}
