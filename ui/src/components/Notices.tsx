import { useState } from 'react';
import { useI18n } from '../i18n';
import { installUpdate, toAppError, type AppError, type AppInfo } from '../ipc';
import { ErrorText } from './ErrorText';

const CAPABILITIES = ['keychain', 'notifications', 'tray'] as const;

export interface NoticesProps {
  info: AppInfo | undefined;
  /** False when the session lives only as long as the app (no keychain). */
  remembered: boolean;
  /** An update waiting for consent (the shell has no updater yet, so nothing sets it). */
  update?: { version: string } | undefined;
}

/** What the user should know about this machine: a session that will not be remembered,
 * desktop features the OS lacks, an update waiting for consent. Each can be dismissed. */
export function Notices({ info, remembered, update }: NoticesProps) {
  const { t } = useI18n();
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const [error, setError] = useState<AppError>();

  const items: { id: string; text: string; action?: JSX.Element }[] = [];
  if (!remembered) items.push({ id: 'remembered', text: t('notice.not_remembered') });
  for (const name of CAPABILITIES) {
    const capability = info?.capabilities[name];
    // The keychain's absence is already said by the "not remembered" notice.
    if (!capability || capability.available || (name === 'keychain' && !remembered)) continue;
    items.push({
      id: name,
      text: t('notice.capability', { name: t(`notice.capability.${name}`), message: capability.message ?? '' }),
    });
  }
  if (update) {
    items.push({
      id: `update-${update.version}`,
      text: t('notice.update', { version: update.version }),
      action: (
        <button type="button" onClick={() => installUpdate().catch((e) => setError(toAppError(e)))}>
          {t('notice.install')}
        </button>
      ),
    });
  }

  const visible = items.filter((item) => !dismissed.has(item.id));
  if (visible.length === 0 && !error) return null;
  return (
    <div className="notices">
      {visible.map((item) => (
        <div key={item.id} className="notice" role="note">
          <span>{item.text}</span>
          {item.action}
          <button type="button" className="link" onClick={() => setDismissed(new Set(dismissed).add(item.id))}>
            {t('notice.dismiss')}
          </button>
        </div>
      ))}
      <ErrorText error={error} />
    </div>
  );
}
