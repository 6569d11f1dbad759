import { useState, type KeyboardEvent } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, Message, OutboxEntry, Uuid } from '../../ipc';
import { Reactions } from './Reactions';

export interface MessageItemProps {
  message: Message;
  me: Uuid;
  author: string;
  /** The refused outbox entry of this message, when its state is `failed`. */
  failed: OutboxEntry | undefined;
}

/** One message with its send state: "sending…" while queued, "not sent" with retry / discard
 * once the server refused it; its author may edit or delete it. */
export function MessageItem({ message, me, author, failed }: MessageItemProps) {
  const { t, time } = useI18n();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<AppError>();
  const mine = message.user_id === me;
  const deleted = message.deleted_at !== null;

  const run = (action: Promise<unknown>) => {
    setError(undefined);
    action.catch((e) => setError(ipc.toAppError(e)));
  };

  return (
    <li className={`message is-${message.state}${mine ? ' is-mine' : ''}`} aria-label={author} data-testid="message" data-state={message.state}>
      <header>
        <strong>
          <bdi>{author}</bdi>
        </strong> <time dateTime={message.created_at ?? undefined}>{time(message.created_at)}</time>
        {message.edited_at && !deleted && <span className="muted"> {t('chat.edited')}</span>}
      </header>
      {editing ? (
        <EditBox
          initial={message.content}
          onSave={(content) => {
            setEditing(false);
            if (content !== message.content) run(ipc.editMessage(message.id, content));
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <p className={deleted ? 'content muted' : 'content'} dir="auto">{deleted ? t('chat.deleted') : message.content}</p>
      )}
      {!deleted && <Reactions message={message} me={me} onAction={run} />}
      {message.state === 'pending' && <p className="send-state" data-testid="sending">{t('chat.sending')}</p>}
      {message.state === 'failed' && (
        <p className="send-state is-failed" role="alert">
          {t('chat.not_sent')}
          {failed?.error && `: ${failed.error.message}`}
          {failed && (
            <>
              <button type="button" onClick={() => run(ipc.retry(failed.seq))}>
                {t('chat.retry')}
              </button>
              <button type="button" className="danger" onClick={() => run(ipc.discard(failed.seq))}>
                {t('chat.discard')}
              </button>
            </>
          )}
        </p>
      )}
      {mine && !deleted && !editing && (
        <div className="message-actions">
          <button type="button" onClick={() => setEditing(true)}>
            {t('chat.edit')}
          </button>
          <button
            type="button"
            className="danger"
            onClick={() => window.confirm(t('chat.delete_confirm')) && run(ipc.deleteMessage(message.id))}
          >
            {t('chat.delete')}
          </button>
        </div>
      )}
      <ErrorText error={error} />
    </li>
  );
}

/** Enter saves, Shift+Enter breaks the line, Escape cancels. */
function EditBox({ initial, onSave, onCancel }: { initial: string; onSave: (s: string) => void; onCancel: () => void }) {
  const { t } = useI18n();
  const [text, setText] = useState(initial);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') onCancel();
    else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      if (text.trim()) onSave(text);
    }
  };
  return (
    <div className="edit-box">
      <textarea dir="auto" aria-label={t('chat.edit')} autoFocus value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} />
      <button type="button" className="primary" disabled={!text.trim()} onClick={() => onSave(text)}>
        {t('chat.save')}
      </button>
      <button type="button" onClick={onCancel}>
        {t('chat.cancel')}
      </button>
    </div>
  );
}
