import { useEffect, useState } from 'react';
import type { DocBinding } from './DocBinding';

export interface CoEditor {
  id: string;
  name: string;
  color: string;
}

/** The other clients of the document's awareness that announced a user (the cursor
 * extension publishes `{ user: { name, color } }`). */
export function useCoEditors(binding: DocBinding | undefined): CoEditor[] {
  const [list, setList] = useState<CoEditor[]>([]);
  useEffect(() => {
    if (!binding) return;
    const { awareness } = binding;
    const read = () => {
      const out: CoEditor[] = [];
      awareness.getStates().forEach((state, clientId) => {
        const user = state.user as { name?: string; color?: string } | undefined;
        if (clientId !== awareness.clientID && user?.name) {
          out.push({ id: String(clientId), name: user.name, color: user.color ?? 'currentColor' });
        }
      });
      setList(out);
    };
    read();
    awareness.on('change', read);
    return () => awareness.off('change', read);
  }, [binding]);
  return list;
}
