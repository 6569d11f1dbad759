import { useCallback, useEffect, useRef, useState } from 'react';
import { toAppError, type AppError } from '../ipc';
import { useEngineEvent } from './useEngineEvent';

export interface View<T> {
  data: T | undefined;
  error: AppError | undefined;
  /** Re-reads the view; the old data stays on screen until the new arrives. */
  reload: () => void;
}

/** A view read with a command, re-read on demand (events say what changed, never the data)
 * and on the shell's `reload` event (events were missed, so any view may be stale).
 * Reads can overlap when events come fast: only the newest read's answer is kept. When `deps`
 * change the old data stays until the new arrives (a longer page must not flash empty):
 * a component showing another subject altogether is keyed by it instead. */
export function useView<T>(read: () => Promise<T>, deps: readonly unknown[]): View<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<AppError>();
  const generation = useRef(0);
  const load = useCallback(read, deps);

  const reload = useCallback(() => {
    const mine = ++generation.current;
    load().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(undefined);
      },
      (e) => {
        if (mine === generation.current) setError(toAppError(e));
      },
    );
  }, [load]);

  useEngineEvent((e) => {
    if (e.type === 'reload') reload();
  });

  useEffect(() => {
    reload();
    // A read still in flight when the inputs change or the view unmounts is ignored.
    return () => {
      generation.current++;
    };
  }, [reload]);

  return { data, error, reload };
}
