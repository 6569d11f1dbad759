// A tiny typed i18n: t(key, vars) over two dictionaries, and the document's `lang` / `dir`
// following the language so that one stylesheet (logical properties) lays out LTR and RTL.
import { createContext, useContext, useLayoutEffect, useMemo, type ReactNode } from 'react';
import type { Language } from '../ipc/types';
import { ar } from './ar';
import { en, type MessageKey } from './en';

export type { MessageKey };

export const dictionaries: Record<Language, Record<MessageKey, string>> = { en, ar };

export type Vars = Record<string, string | number>;

// Latin digits in both languages: ids, counts and times read the same as on the web app.
const locales: Record<Language, string> = { en: 'en-GB', ar: 'ar-u-nu-latn' };

export function translate(lang: Language, key: MessageKey, vars?: Vars): string {
  const text = dictionaries[lang][key];
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

export function isMessageKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

export function directionOf(lang: Language): 'rtl' | 'ltr' {
  return lang === 'ar' ? 'rtl' : 'ltr';
}

export interface I18n {
  lang: Language;
  dir: 'rtl' | 'ltr';
  t: (key: MessageKey, vars?: Vars) => string;
  /** A date and time in the user's language, or '' for none. */
  dateTime: (iso: string | null | undefined) => string;
  time: (iso: string | null | undefined) => string;
  number: (n: number) => string;
}

function makeI18n(lang: Language): I18n {
  const locale = locales[lang];
  const dateTimeFormat = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const timeFormat = new Intl.DateTimeFormat(locale, { timeStyle: 'short' });
  const numberFormat = new Intl.NumberFormat(locale);
  const format = (f: Intl.DateTimeFormat) => (iso: string | null | undefined) => {
    if (!iso) return '';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : f.format(d);
  };
  return {
    lang,
    dir: directionOf(lang),
    t: (key, vars) => translate(lang, key, vars),
    dateTime: format(dateTimeFormat),
    time: format(timeFormat),
    number: (n) => numberFormat.format(n),
  };
}

const I18nContext = createContext<I18n>(makeI18n('en'));

export function I18nProvider({ lang, children }: { lang: Language; children: ReactNode }) {
  const value = useMemo(() => makeI18n(lang), [lang]);
  // Layout effect: the direction must flip before the browser paints the new language.
  useLayoutEffect(() => {
    document.documentElement.lang = lang;
    document.documentElement.dir = value.dir;
  }, [lang, value.dir]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  return useContext(I18nContext);
}
