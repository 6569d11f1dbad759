import { useEffect, useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import type { View } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import { uiReady, type Room, type Uuid } from '../../ipc';
import { RoomList } from './RoomList';
import { RoomView } from './RoomView';

let readyReported = false;

/** Tells the shell once per page load that the chat screen shows its room list, read from the
 * engine's local cache (no room opens by default): the shell logs the startup time (`ui ready`,
 * what scripts/bench-desktop measures). Losing that report only loses the log line. */
function reportReady(rooms: number) {
  if (readyReported) return;
  readyReported = true;
  uiReady('chat', rooms).catch(() => {});
}

export function ChatScreen({ me, rooms }: { me: Uuid; rooms: View<Room[]> }) {
  const { t } = useI18n();
  const [selected, setSelected] = useState<Uuid | null>(null);
  const room = rooms.data?.find((r) => r.id === selected);
  const loaded = rooms.data !== undefined;
  // After the commit that put the room list in the DOM.
  useEffect(() => {
    if (loaded && rooms.data) reportReady(rooms.data.length);
  }, [loaded, rooms.data]);
  return (
    <div className="chat">
      <RoomList rooms={rooms.data} selected={selected} onSelect={setSelected} />
      <ErrorText error={rooms.error} onRetry={rooms.reload} />
      {room ? <RoomView key={room.id} room={room} me={me} /> : <p className="placeholder">{t('chat.pick_room')}</p>}
    </div>
  );
}
