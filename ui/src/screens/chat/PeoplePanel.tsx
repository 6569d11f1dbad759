import type { Uuid } from '../../ipc';

/** The side panel of who is here (online in a room, co-editors of a document). */
export function PeoplePanel({ title, empty, people }: { title: string; empty: string; people: { id: Uuid; name: string; color?: string }[] }) {
  return (
    <aside className="people" aria-label={title}>
      <h3>{title}</h3>
      {people.length === 0 && <p className="muted">{empty}</p>}
      <ul className="plain">
        {people.map((p) => (
          <li key={p.id}>
            <span className="presence-dot" style={p.color ? { background: p.color } : undefined} aria-hidden="true" />
            {p.name}
          </li>
        ))}
      </ul>
    </aside>
  );
}
