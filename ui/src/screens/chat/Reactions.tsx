import { useState } from 'react';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { Message, Uuid } from '../../ipc';

const PICKER = ['👍', '❤️', '🎉', '😂', '🤔', '✅'];

interface Group {
  emoji: string;
  count: number;
  mine: boolean;
  pending: boolean;
}

function groups(message: Message, me: Uuid): Group[] {
  const byEmoji = new Map<string, Group>();
  for (const r of message.reactions) {
    const g = byEmoji.get(r.emoji) ?? { emoji: r.emoji, count: 0, mine: false, pending: false };
    g.count++;
    g.mine ||= r.user_id === me;
    g.pending ||= r.pending;
    byEmoji.set(r.emoji, g);
  }
  return [...byEmoji.values()];
}

/** Reaction chips (pressed when the user reacted; a click toggles) and a small picker. */
export function Reactions({ message, me, onAction }: { message: Message; me: Uuid; onAction: (p: Promise<unknown>) => void }) {
  const { t, number } = useI18n();
  const [picking, setPicking] = useState(false);
  const toggle = (emoji: string, mine: boolean) =>
    onAction(mine ? ipc.unreact(message.id, emoji) : ipc.react(message.id, emoji));

  return (
    <div className="reactions">
      {groups(message, me).map((g) => (
        <button
          key={g.emoji}
          type="button"
          className={`chip${g.pending ? ' is-pending' : ''}`}
          aria-pressed={g.mine}
          onClick={() => toggle(g.emoji, g.mine)}
        >
          {t('chat.reaction', { emoji: g.emoji, n: number(g.count) })}
        </button>
      ))}
      <button type="button" className="chip add" aria-expanded={picking} aria-label={t('chat.react')} title={t('chat.react')} onClick={() => setPicking(!picking)}>
        +
      </button>
      {picking && (
        <span className="picker" role="group" aria-label={t('chat.react')}>
          {PICKER.map((emoji) => (
            <button
              key={emoji}
              type="button"
              onClick={() => {
                setPicking(false);
                const mine = message.reactions.some((r) => r.emoji === emoji && r.user_id === me);
                toggle(emoji, mine);
              }}
            >
              {emoji}
            </button>
          ))}
        </span>
      )}
    </div>
  );
}
