import { useState } from 'react';
import { useI18n } from '../i18n';
import { openSecondWindow, toAppError, type AppError } from '../ipc';
import { ErrorText } from './ErrorText';

/** "Open a second window": another profile of the app on this embedded backend, so a second
 * demo account can be tried beside the first. Shown only on the embedded backend. */
export function SecondWindow() {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [opened, setOpened] = useState(false);
  const [error, setError] = useState<AppError>();

  const open = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await openSecondWindow();
      setOpened(true);
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="second-window">
      <button type="button" data-testid="open-second-window" disabled={busy} onClick={() => void open()}>
        {t('second.open')}
      </button>
      <p className="hint">{t('second.hint')}</p>
      {opened && <p role="status">{t('second.opened')}</p>}
      <ErrorText error={error} />
    </div>
  );
}
