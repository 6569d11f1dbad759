import { useEffect, useRef } from 'react';
import { subscribe, type RuwadEvent } from '../ipc';

/** Calls `handler` with every engine event while the component is mounted. The handler may
 * change on every render (it usually closes over state) without re-subscribing. */
export function useEngineEvent(handler: (event: RuwadEvent) => void): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => subscribe((e) => latest.current(e)), []);
}
