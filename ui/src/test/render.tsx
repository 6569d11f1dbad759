import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { I18nProvider } from '../i18n';
import type { Language } from '../ipc/types';

/** Renders inside the i18n provider, in English unless told otherwise. */
export function renderIn(ui: ReactElement, lang: Language = 'en') {
  return render(<I18nProvider lang={lang}>{ui}</I18nProvider>);
}
