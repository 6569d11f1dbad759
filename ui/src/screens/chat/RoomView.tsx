import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useEngineEvent } from '../../hooks/useEngineEvent';
import { useNames } from '../../hooks/useProfiles';
import { useView } from '../../hooks/useView';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, Room, Uuid } from '../../ipc';
import { Composer } from './Composer';
import { MessageItem } from './MessageItem';
import { PeoplePanel } from './PeoplePanel';

const PAGE = 50;
/** How close to the end counts as "reading the latest" (px). */
const NEAR_END = 48;

/** One room: history from the cache first (older pages on demand), live updates, typing and
 * presence. Keyed by room id: a new room is a new view. */
export function RoomView({ room, me }: { room: Room; me: Uuid }) {
  const { t } = useI18n();
  const [limit, setLimit] = useState(PAGE);
  const [complete, setComplete] = useState<boolean>();
  const [olderError, setOlderError] = useState<AppError>();
  const page = useView(() => ipc.messages(room.id, limit), [room.id, limit]);
  const outbox = useView(ipc.outbox, []);
  const [typers, setTypers] = useState<Uuid[]>([]);
  const [online, setOnline] = useState<Uuid[]>([]);

  const readPeople = () =>
    Promise.all([ipc.online(room.id), ipc.typers(room.id)]).then(([o, ty]) => {
      setOnline(o);
      setTypers(ty);
    });

  useEffect(() => {
    // Entering joins the room's presence and typing channel; the initial sets come after.
    ipc
      .enterRoom(room.id)
      .then(readPeople)
      .catch(() => {});
    return () => void ipc.leaveRoom(room.id).catch(() => {});
  }, [room.id]);

  useEngineEvent((e) => {
    if (e.type === 'messages' && e.room_id === room.id) page.reload();
    else if (e.type === 'outbox') outbox.reload();
    else if (e.type === 'typing' && e.room_id === room.id) setTypers(e.user_ids);
    else if (e.type === 'presence' && e.room_id === room.id) setOnline(e.user_ids);
    // Missed events: the page and the outbox re-read themselves (useView); so do the sets.
    else if (e.type === 'reload') readPeople().catch(() => {});
  });

  const list = page.data?.messages ?? [];
  const names = useNames([...list.map((m) => m.user_id), ...typers, ...online]);
  const nameOf = (id: Uuid) => (id === me ? t('chat.you') : (names(id) ?? t('chat.unknown_user')));
  const failedByTarget = new Map((outbox.data ?? []).filter((e) => e.failed).map((e) => [e.target, e]));

  const scroll = useStickToEnd(list[list.length - 1]?.id, list.length);

  useEffect(() => {
    if (scroll.atEnd && list.length) void ipc.markRead(room.id).catch(() => {});
  }, [scroll.atEnd, list.length, room.id]);

  const loadOlder = async () => {
    // Only messages the server has are anchors: the local echoes follow them.
    const oldest = list.find((m) => m.created_at !== null);
    scroll.keepPosition();
    try {
      const older = await ipc.history(room.id, oldest ? { created_at: oldest.created_at!, id: oldest.id } : null, PAGE);
      setComplete(older.complete);
      setOlderError(undefined);
      // The page is in the cache now: read the longer window from it.
      setLimit((l) => l + older.messages.length);
    } catch (e) {
      setOlderError(ipc.toAppError(e));
    }
  };

  const noOlder = complete ?? page.data?.complete;
  return (
    <section className="room-view" aria-label={room.name}>
      <div className="room-main">
        <header className="room-head">
          <h2>
            {room.kind === 'direct' ? '@' : '#'} <bdi>{room.name}</bdi>
          </h2>
        </header>
        <div className="messages" ref={scroll.ref} onScroll={scroll.onScroll} tabIndex={0} aria-label={t('chat.messages')}>
          {page.data && (noOlder ? <p className="muted center">{t('chat.beginning')}</p> : (
            <button type="button" className="link center" onClick={() => void loadOlder()}>
              {t('chat.load_older')}
            </button>
          ))}
          <ErrorText error={page.error ?? olderError} onRetry={page.reload} />
          {!page.data && !page.error && <p className="muted center">{t('app.loading')}</p>}
          <ol className="plain" aria-live="polite">
            {list.map((m) => (
              <MessageItem key={m.id} message={m} me={me} author={nameOf(m.user_id)} failed={failedByTarget.get(m.id)} />
            ))}
          </ol>
        </div>
        {scroll.unseen && (
          <button type="button" className="jump primary" onClick={scroll.toEnd}>
            {t('chat.jump_latest')} ↓
          </button>
        )}
        <TypingLine names={typers.filter((id) => id !== me).map(nameOf)} />
        <Composer room={room} />
      </div>
      <PeoplePanel title={t('chat.online')} empty={t('chat.nobody_online')} people={online.filter((id) => id !== me).map((id) => ({ id, name: nameOf(id) }))} />
    </section>
  );
}

function TypingLine({ names }: { names: string[] }) {
  const { t } = useI18n();
  let text = '';
  if (names.length === 1) text = t('chat.typing_one', { a: names[0]! });
  else if (names.length === 2) text = t('chat.typing_two', { a: names[0]!, b: names[1]! });
  else if (names.length > 2) text = t('chat.typing_many');
  return (
    <p className="typing" data-testid="typing" aria-live="polite">
      {text}
    </p>
  );
}

/** Keeps the message list at its end while the user reads the latest; when they scrolled up
 * and something new arrives, says so (`unseen`) instead of pulling them down. */
function useStickToEnd(lastId: string | undefined, count: number) {
  const ref = useRef<HTMLDivElement>(null);
  const [atEnd, setAtEnd] = useState(true);
  const [unseen, setUnseen] = useState(false);
  const anchorFromEnd = useRef<number | null>(null);

  const measure = () => {
    const el = ref.current;
    return el ? el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR_END : true;
  };
  const toEnd = () => {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
    setAtEnd(true);
    setUnseen(false);
  };

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (anchorFromEnd.current !== null) {
      // Older messages were added above: keep the one being read where it was.
      el.scrollTop = el.scrollHeight - anchorFromEnd.current;
      anchorFromEnd.current = null;
    } else if (atEnd) toEnd();
    else if (lastId) setUnseen(true);
    // Only a new newest message or a longer page moves the view; edits and reactions do not.
  }, [lastId, count]);

  return {
    ref,
    atEnd,
    unseen,
    toEnd,
    onScroll: () => {
      const end = measure();
      setAtEnd(end);
      if (end) setUnseen(false);
    },
    keepPosition: () => {
      const el = ref.current;
      if (el) anchorFromEnd.current = el.scrollHeight - el.scrollTop;
    },
  };
}
