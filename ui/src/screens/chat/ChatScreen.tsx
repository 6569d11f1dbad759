import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import type { View } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import type { Room, Uuid } from '../../ipc';
import { RoomList } from './RoomList';
import { RoomView } from './RoomView';

export function ChatScreen({ me, rooms }: { me: Uuid; rooms: View<Room[]> }) {
  const { t } = useI18n();
  const [selected, setSelected] = useState<Uuid | null>(null);
  const room = rooms.data?.find((r) => r.id === selected);
  return (
    <div className="chat">
      <RoomList rooms={rooms.data} selected={selected} onSelect={setSelected} />
      <ErrorText error={rooms.error} onRetry={rooms.reload} />
      {room ? <RoomView key={room.id} room={room} me={me} /> : <p className="placeholder">{t('chat.pick_room')}</p>}
    </div>
  );
}
