import { useI18n } from '../../i18n';
import type { Backend } from '../../ipc';

/** The backend choice: the embedded local backend, or a Supabase project (URL + anon key). */
export function BackendFields({ value, onChange }: { value: Backend; onChange: (b: Backend) => void }) {
  const { t } = useI18n();
  const supabase = value.kind === 'supabase' ? value : { kind: 'supabase' as const, url: '', anon_key: '' };
  return (
    <fieldset className="backend">
      <legend>{t('signin.backend')}</legend>
      <label className="choice">
        <input type="radio" name="backend" checked={value.kind === 'embedded'} onChange={() => onChange({ kind: 'embedded' })} />
        {t('backend.embedded')}
      </label>
      <label className="choice">
        <input type="radio" name="backend" checked={value.kind === 'supabase'} onChange={() => onChange(supabase)} />
        {t('backend.supabase')}
      </label>
      {value.kind === 'supabase' && (
        <div className="fields">
          <label>
            {t('backend.url')}
            <input
              type="url"
              dir="ltr"
              required
              placeholder="https://xyz.supabase.co"
              value={value.url}
              onChange={(e) => onChange({ ...value, url: e.target.value })}
            />
          </label>
          <label>
            {t('backend.anon_key')}
            <input
              dir="ltr"
              required
              spellCheck={false}
              value={value.anon_key}
              onChange={(e) => onChange({ ...value, anon_key: e.target.value })}
            />
          </label>
        </div>
      )}
    </fieldset>
  );
}

export function sameBackend(a: Backend, b: Backend): boolean {
  if (a.kind === 'embedded' || b.kind === 'embedded') return a.kind === b.kind;
  return a.url === b.url && a.anon_key === b.anon_key;
}
