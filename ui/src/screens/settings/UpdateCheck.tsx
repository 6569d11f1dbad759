import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, UpdateCheck as Found } from '../../ipc';

/** Checks on demand; installing needs a second, explicit click. */
export function UpdateCheck({ version }: { version: string | undefined }) {
  const { t } = useI18n();
  const [found, setFound] = useState<Found>();
  const [error, setError] = useState<AppError>();
  const fail = (e: unknown) => setError(ipc.toAppError(e));

  const check = async () => {
    setError(undefined);
    try {
      setFound(await ipc.checkUpdate());
    } catch (e) {
      fail(e);
    }
  };

  return (
    <div className="update-check">
      <button type="button" onClick={() => void check()}>
        {t('settings.check_update')}
      </button>
      {found && !found.available && <p role="status">{t('settings.up_to_date', { version: version ?? '' })}</p>}
      {found?.available && (
        <div role="status">
          <p>{t('settings.update_found', { version: found.version ?? '' })}</p>
          {found.notes && <p className="muted">{found.notes}</p>}
          <button type="button" className="primary" onClick={() => ipc.installUpdate().catch(fail)}>
            {t('notice.install')}
          </button>
        </div>
      )}
      <ErrorText error={error} />
    </div>
  );
}
