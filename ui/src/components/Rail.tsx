import { useI18n } from '../i18n';

export const SCREENS = ['chat', 'challenges', 'documents', 'analytics', 'settings'] as const;
export type Screen = (typeof SCREENS)[number];

const ICONS: Record<Screen, string> = {
  chat: 'M4 5h16v10H8l-4 4z',
  challenges: 'M6 21V4h11l-2 4 2 4H6',
  documents: 'M6 3h8l4 4v14H6zM14 3v4h4',
  analytics: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
  settings: 'M12 8a4 4 0 1 0 0 8 4 4 0 0 0 0-8zM12 2v3M12 19v3M2 12h3M19 12h3M5 5l2 2M17 17l2 2M5 19l2-2M17 7l2-2',
};

/** The left rail (right in Arabic: it sits at the inline start). */
export function Rail({ current, unread, onSelect }: { current: Screen; unread: number; onSelect: (s: Screen) => void }) {
  const { t, number } = useI18n();
  return (
    <nav className="rail" aria-label={t('nav.label')}>
      <img className="rail-logo" src="./ruwad.svg" alt={t('app.name')} width={36} height={36} />
      {SCREENS.map((screen, i) => (
        <button
          key={screen}
          type="button"
          className="rail-item"
          data-testid={`nav-${screen}`}
          aria-current={current === screen ? 'page' : undefined}
          title={`${t(`nav.${screen}`)} (${t('nav.shortcut', { n: i + 1 })})`}
          onClick={() => onSelect(screen)}
        >
          <svg viewBox="0 0 24 24" aria-hidden="true">
            <path d={ICONS[screen]} />
          </svg>
          <span>{t(`nav.${screen}`)}</span>
          {screen === 'chat' && unread > 0 && (
            <span className="badge" aria-label={t('chat.unread', { n: unread })}>
              {number(unread)}
            </span>
          )}
        </button>
      ))}
    </nav>
  );
}
