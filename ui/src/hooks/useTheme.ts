import { useEffect } from 'react';
import type { Theme } from '../ipc';

/** Sets `data-theme` on <html> to `light` or `dark`, following the OS when `theme` is
 * `system` (the stylesheet keys its colour variables on the attribute alone). */
export function useTheme(theme: Theme): void {
  useEffect(() => {
    const media = window.matchMedia?.('(prefers-color-scheme: dark)');
    const apply = () => {
      const dark = theme === 'dark' || (theme === 'system' && !!media?.matches);
      document.documentElement.dataset.theme = dark ? 'dark' : 'light';
    };
    apply();
    if (theme !== 'system' || !media) return;
    media.addEventListener('change', apply);
    return () => media.removeEventListener('change', apply);
  }, [theme]);
}
