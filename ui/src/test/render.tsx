import { render } from '@testing-library/react';
import type { ReactElement, ReactNode } from 'react';
import { I18nProvider } from '../i18n';
import type { Language } from '../ipc/types';

/** Renders inside the i18n provider (English unless told otherwise); rerender keeps it. */
export function renderIn(ui: ReactElement, lang: Language = 'en') {
  const wrapper = ({ children }: { children: ReactNode }) => <I18nProvider lang={lang}>{children}</I18nProvider>;
  return render(ui, { wrapper });
}
