import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { UpdatePrompt } from '../../components/UpdatePrompt';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, UpdateInfo } from '../../ipc';

type Result = { found: UpdateInfo | null } | { error: AppError };

/** "Check for updates" on the user's channel: up to date, an update to install (asked, never
 * installed by the check itself), or why the check failed. */
export function UpdateCheck({ version }: { version: string | undefined }) {
  const { t } = useI18n();
  const [checking, setChecking] = useState(false);
  const [result, setResult] = useState<Result>();

  const check = () => {
    setChecking(true);
    setResult(undefined);
    ipc.checkUpdate().then(
      (found) => setResult({ found }),
      (e) => setResult({ error: ipc.toAppError(e) }),
    ).finally(() => setChecking(false));
  };

  return (
    <div className="update-check">
      <button type="button" data-testid="check-update" disabled={checking} onClick={check}>
        {checking ? t('settings.checking_update') : t('settings.check_update')}
      </button>
      {result && 'found' in result && result.found === null && (
        <p role="status">{t('settings.up_to_date', { version: version ?? '' })}</p>
      )}
      {result && 'found' in result && result.found && (
        <UpdatePrompt update={result.found} onLater={() => setResult(undefined)} />
      )}
      {result && 'error' in result && <ErrorText error={result.error} />}
    </div>
  );
}
