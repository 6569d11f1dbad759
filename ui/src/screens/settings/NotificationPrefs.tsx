import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useView } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import { NOTICE_KINDS, type AppError, type Prefs } from '../../ipc';

/** Mute all, or each kind of notice on its own (a kind not listed in the prefs is on). */
export function NotificationPrefs() {
  const { t } = useI18n();
  const prefs = useView(ipc.notificationPrefs, []);
  const [error, setError] = useState<AppError>();
  const save = (next: Prefs) =>
    ipc.setNotificationPrefs(next).then(
      () => {
        setError(undefined);
        prefs.reload();
      },
      (e) => setError(ipc.toAppError(e)),
    );

  const p = prefs.data;
  return (
    <fieldset>
      <legend>{t('settings.notifications')}</legend>
      <ErrorText error={prefs.error ?? error} onRetry={prefs.reload} />
      {p && (
        <>
          <label className="choice">
            <input type="checkbox" checked={p.muted} onChange={(e) => save({ ...p, muted: e.target.checked })} />
            {t('settings.mute_all')}
          </label>
          {NOTICE_KINDS.map((kind) => (
            <label key={kind} className="choice indent">
              <input
                type="checkbox"
                disabled={p.muted}
                checked={p.kinds?.[kind] ?? true}
                onChange={(e) => save({ ...p, kinds: { ...p.kinds, [kind]: e.target.checked } })}
              />
              {t(`settings.kind.${kind}`)}
            </label>
          ))}
        </>
      )}
    </fieldset>
  );
}
