import { useState } from 'react';
import { useI18n } from '../i18n';
import type { AppInfo } from '../ipc';

const CAPABILITIES = ['keychain', 'notifications', 'tray'] as const;

export interface NoticesProps {
  info: AppInfo | undefined;
  /** False when the session lives only as long as the app (no keychain). */
  remembered: boolean;
}

/** What the user should know about this machine: a session that will not be remembered,
 * desktop features the OS lacks. Each can be dismissed. (An update is asked about by
 * `UpdatePrompt`.) */
export function Notices({ info, remembered }: NoticesProps) {
  const { t } = useI18n();
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());

  const items: { id: string; text: string }[] = [];
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

  const visible = items.filter((item) => !dismissed.has(item.id));
  if (visible.length === 0) return null;
  return (
    <div className="notices">
      {visible.map((item) => (
        <div key={item.id} className="notice" role="note">
          <span>{item.text}</span>
          <button type="button" className="link" onClick={() => setDismissed(new Set(dismissed).add(item.id))}>
            {t('notice.dismiss')}
          </button>
        </div>
      ))}
    </div>
  );
}
