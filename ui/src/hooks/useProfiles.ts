import { useCallback, useEffect, useState } from 'react';
import { profiles, type Uuid } from '../ipc';

// Display names change rarely and every screen shows them: one cache for the app's lifetime.
const names = new Map<Uuid, string>();
const asked = new Set<Uuid>();

/** A lookup of display names for `ids`, filled in as the engine answers. */
export function useNames(ids: readonly Uuid[]): (id: Uuid) => string | undefined {
  const [, setVersion] = useState(0);
  const key = [...new Set(ids)].sort().join(',');

  useEffect(() => {
    const missing = key.split(',').filter((id) => id && !names.has(id) && !asked.has(id));
    if (missing.length === 0) return;
    missing.forEach((id) => asked.add(id));
    let live = true;
    profiles(missing).then(
      (found) => {
        found.forEach((p) => names.set(p.id, p.display_name));
        if (live) setVersion((v) => v + 1);
      },
      // Asked again by the next view that needs them.
      () => missing.forEach((id) => asked.delete(id)),
    );
    return () => {
      live = false;
    };
  }, [key]);

  return useCallback((id: Uuid) => names.get(id), []);
}
