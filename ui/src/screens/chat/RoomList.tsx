import { useI18n } from '../../i18n';
import type { Room, Uuid } from '../../ipc';

export function RoomList({ rooms, selected, onSelect }: { rooms: Room[] | undefined; selected: Uuid | null; onSelect: (id: Uuid) => void }) {
  const { t, number } = useI18n();
  return (
    <nav className="room-list" aria-label={t('chat.rooms')}>
      <h2>{t('chat.rooms')}</h2>
      {rooms === undefined && <p className="muted">{t('app.loading')}</p>}
      {rooms?.length === 0 && <p className="muted">{t('chat.no_rooms')}</p>}
      <ul className="plain">
        {rooms?.map((room) => (
          <li key={room.id}>
            <button
              type="button"
              className="room"
              data-testid="room"
              data-room-id={room.id}
              aria-current={room.id === selected ? 'true' : undefined}
              onClick={() => onSelect(room.id)}
            >
              <span className="room-name">
                {room.kind === 'direct' ? '@' : '#'} <bdi>{room.name}</bdi>
              </span>
              {room.unread > 0 && (
                <span className="badge" aria-label={t('chat.unread', { n: room.unread })}>
                  {number(room.unread)}
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
