import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { dictionaries, I18nProvider, translate, useI18n, type MessageKey } from '.';
import { en } from './en';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('dictionaries', () => {
  const keys = Object.keys(en) as MessageKey[];

  it.each(['en', 'ar'] as const)('%s has every key with a non-empty text', (lang) => {
    const dict = dictionaries[lang];
    expect(Object.keys(dict).sort()).toEqual([...keys].sort());
    for (const key of keys) expect(dict[key].trim(), `${lang}: ${key}`).not.toBe('');
  });

  it('Arabic uses the same placeholders as English, so no value is dropped', () => {
    for (const key of keys) expect(placeholders(dictionaries.ar[key]), key).toEqual(placeholders(en[key]));
  });

  it('Arabic is translated, not copied (only names, shortcuts and formats may match)', () => {
    const same = keys.filter((k) => dictionaries.ar[k] === en[k]);
    expect(same.sort()).toEqual(['activity.other', 'chat.reaction', 'nav.shortcut', 'settings.language.ar', 'settings.language.en']);
  });

  it('fills placeholders', () => {
    expect(translate('en', 'connection.reconnecting', { s: 4 })).toBe('Reconnecting in 4 s');
    expect(translate('ar', 'connection.queued', { n: 2 })).toBe('2 بانتظار الإرسال');
  });
});

function Probe() {
  const { t } = useI18n();
  return <p>{t('nav.chat')}</p>;
}

describe('I18nProvider', () => {
  it('switching to Arabic sets dir=rtl and lang=ar on <html>, and back', () => {
    const { rerender } = render(
      <I18nProvider lang="en">
        <Probe />
      </I18nProvider>,
    );
    expect(document.documentElement.dir).toBe('ltr');
    expect(document.documentElement.lang).toBe('en');
    expect(screen.getByText('Chat')).toBeTruthy();

    rerender(
      <I18nProvider lang="ar">
        <Probe />
      </I18nProvider>,
    );
    expect(document.documentElement.dir).toBe('rtl');
    expect(document.documentElement.lang).toBe('ar');
    expect(screen.getByText('المحادثات')).toBeTruthy();

    rerender(
      <I18nProvider lang="en">
        <Probe />
      </I18nProvider>,
    );
    expect(document.documentElement.dir).toBe('ltr');
  });
});
