import { useState } from 'react';
import { useEngineEvent } from '../hooks/useEngineEvent';
import { useI18n } from '../i18n';
import { installUpdate, toAppError, type AppError, type UpdateInfo } from '../ipc';
import { ErrorText } from './ErrorText';

type Step = { step: 'asking' } | { step: 'downloading'; percent: number | null } | { step: 'restarting' };

/** "Update available: version X — Install now / Later". Nothing is downloaded or installed
 * until the user clicks "Install now"; "Later" only hides the prompt. While installing it shows
 * the shell's progress events, then that the app restarts. */
export function UpdatePrompt({ update, onLater }: { update: UpdateInfo; onLater: () => void }) {
  const { t } = useI18n();
  const [state, setState] = useState<Step>({ step: 'asking' });
  const [error, setError] = useState<AppError>();

  useEngineEvent((e) => {
    if (state.step === 'asking') return;
    if (e.type === 'update_progress') {
      setState({ step: 'downloading', percent: e.total ? Math.min(100, Math.round((e.downloaded / e.total) * 100)) : null });
    } else if (e.type === 'update_installed' && e.version === update.version) {
      setState({ step: 'restarting' });
    }
  });

  const install = () => {
    setError(undefined);
    setState({ step: 'downloading', percent: null });
    installUpdate(update.version).catch((e) => {
      setState({ step: 'asking' });
      setError(toAppError(e));
    });
  };

  return (
    <div className="notice update-prompt" role="alertdialog" aria-label={t('update.available', { version: update.version })} data-testid="update-prompt">
      <span>{t('update.available', { version: update.version })}</span>
      {update.notes && <span className="muted">{update.notes}</span>}
      {state.step === 'asking' && (
        <>
          <button type="button" className="primary" data-testid="update-install" onClick={install}>
            {t('update.install_now')}
          </button>
          <button type="button" className="link" data-testid="update-later" onClick={onLater}>
            {t('update.later')}
          </button>
        </>
      )}
      {state.step === 'downloading' && (
        <span role="status">
          {state.percent === null ? t('update.downloading') : t('update.downloading_percent', { percent: state.percent })}
        </span>
      )}
      {state.step === 'restarting' && <span role="status">{t('update.restarting')}</span>}
      <ErrorText error={error} />
    </div>
  );
}

/** The background check's offer (`update_available`, a little after start and every few
 * hours): asked about with `UpdatePrompt`; "Later" hides it until the next check finds it. */
export function UpdateOffer() {
  const [offered, setOffered] = useState<UpdateInfo>();
  useEngineEvent((e) => {
    if (e.type === 'update_available') setOffered(e.update);
  });
  if (!offered) return null;
  return (
    <div className="notices">
      <UpdatePrompt key={offered.version} update={offered} onLater={() => setOffered(undefined)} />
    </div>
  );
}
