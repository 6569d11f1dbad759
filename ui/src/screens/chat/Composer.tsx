import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, Room } from '../../ipc';

/** Draft saves wait this long after the last keystroke. */
const DRAFT_DELAY_MS = 500;

/** The message box: Enter sends, Shift+Enter breaks the line. The draft is kept by the engine
 * (it survives restarts) and typing is announced (the engine throttles it). */
export function Composer({ room }: { room: Room }) {
  const { t } = useI18n();
  const [text, setText] = useState('');
  const [error, setError] = useState<AppError>();
  const draftTimer = useRef<ReturnType<typeof setTimeout>>();

  useEffect(() => {
    let live = true;
    ipc.draft(room.id).then((d) => live && d && setText(d), () => {});
    return () => {
      live = false;
      clearTimeout(draftTimer.current);
      void ipc.stopTyping(room.id).catch(() => {});
    };
  }, [room.id]);

  const change = (value: string) => {
    setText(value);
    if (value) void ipc.typing(room.id).catch(() => {});
    clearTimeout(draftTimer.current);
    draftTimer.current = setTimeout(() => void ipc.setDraft(room.id, value).catch(() => {}), DRAFT_DELAY_MS);
  };

  const send = async () => {
    const content = text.trim();
    if (!content) return;
    clearTimeout(draftTimer.current);
    setText('');
    try {
      // Queued locally first: this returns at once, the message shows as "sending".
      await ipc.sendMessage(room.id, content);
    } catch (e) {
      setText(content);
      setError(ipc.toAppError(e));
      return;
    }
    setError(undefined);
    void ipc.setDraft(room.id, '').catch(() => {});
    void ipc.stopTyping(room.id).catch(() => {});
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void send();
  };

  return (
    <form className="composer" onSubmit={onSubmit}>
      <ErrorText error={error} />
      <textarea
        data-testid="composer"
        dir="auto"
        aria-label={t('chat.composer', { room: room.name })}
        placeholder={t('chat.composer', { room: room.name })}
        rows={2}
        value={text}
        onChange={(e) => change(e.target.value)}
        onKeyDown={onKeyDown}
        onBlur={() => void ipc.stopTyping(room.id).catch(() => {})}
      />
      <button type="submit" data-testid="send" className="primary" disabled={!text.trim()}>
        {t('chat.send')}
      </button>
    </form>
  );
}
