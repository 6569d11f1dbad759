import { useI18n } from '../i18n';
import type { AppError } from '../ipc';

/** A command's refusal as the user sees it: a localised prefix by code, then the engine's
 * message (which names the specific cause). */
export function ErrorText({ error, onRetry }: { error: AppError | undefined; onRetry?: () => void }) {
  const { t } = useI18n();
  if (!error) return null;
  return (
    <p className="error" role="alert">
      <strong>{t(`error.${error.code}`)}</strong>
      {error.message && `: ${error.message}`}
      {onRetry && (
        <button type="button" className="link" onClick={onRetry}>
          {t('app.retry')}
        </button>
      )}
    </p>
  );
}
