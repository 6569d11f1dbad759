import { useState } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { SecondWindow } from '../../components/SecondWindow';
import type { AppState } from '../../hooks/useAppState';
import { useI18n } from '../../i18n';
import * as ipc from '../../ipc';
import type { AppError, Backend, Settings } from '../../ipc';
import { BackendFields, sameBackend } from '../signin/BackendFields';
import { NotificationPrefs } from './NotificationPrefs';
import { UpdateCheck } from './UpdateCheck';

/** Language, theme, notifications, update channel, backend and sign-out. Each change is saved
 * at once; there is no "apply" except for the backend, which signs the user out. */
export function SettingsScreen({ app }: { app: AppState }) {
  const { t } = useI18n();
  const [error, setError] = useState<AppError>();
  const save = (patch: Partial<Settings>) =>
    app.saveSettings({ ...app.settings, ...patch }).then(() => setError(undefined), (e) => setError(ipc.toAppError(e)));

  return (
    <section className="screen settings">
      <h1>{t('settings.title')}</h1>
      <ErrorText error={error} />

      <Choice
        legend={t('settings.language')}
        name="language"
        value={app.settings.language}
        options={[['en', t('settings.language.en')], ['ar', t('settings.language.ar')]]}
        onChange={(language) => save({ language })}
      />
      <Choice
        legend={t('settings.theme')}
        name="theme"
        value={app.settings.theme}
        options={[['system', t('settings.theme.system')], ['light', t('settings.theme.light')], ['dark', t('settings.theme.dark')]]}
        onChange={(theme) => save({ theme })}
      />
      <NotificationPrefs />
      <Choice
        legend={t('settings.updates')}
        name="channel"
        value={app.settings.update_channel}
        options={[['stable', t('settings.channel.stable')], ['beta', t('settings.channel.beta')]]}
        onChange={(update_channel) => save({ update_channel })}
      >
        <UpdateCheck version={app.info?.version} />
      </Choice>
      {app.info && <BackendSection current={app.info.backend} />}

      <fieldset>
        <legend>{t('settings.account')}</legend>
        <p>{t('settings.signed_in_as', { name: app.session?.display_name ?? app.session?.email ?? '' })}</p>
        <button type="button" className="danger" onClick={() => ipc.signOut().catch((e) => setError(ipc.toAppError(e)))}>
          {t('settings.sign_out')}
        </button>
        {app.info?.backend.kind === 'embedded' && <SecondWindow />}
      </fieldset>
    </section>
  );
}

interface ChoiceProps<T extends string> {
  legend: string;
  name: string;
  value: T;
  options: [T, string][];
  onChange: (value: T) => void;
  children?: React.ReactNode;
}

/** A group of radio buttons (arrow keys move between them, as the platform does). */
function Choice<T extends string>({ legend, name, value, options, onChange, children }: ChoiceProps<T>) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      {options.map(([v, label]) => (
        <label key={v} className="choice">
          <input type="radio" data-testid={`${name}-${v}`} name={name} value={v} checked={value === v} onChange={() => onChange(v)} />
          {label}
        </label>
      ))}
      {children}
    </fieldset>
  );
}

function BackendSection({ current }: { current: Backend }) {
  const { t } = useI18n();
  const [choice, setChoice] = useState<Backend>(current);
  const [error, setError] = useState<AppError>();
  const name = current.kind === 'embedded' ? t('backend.embedded') : current.url;
  return (
    <fieldset>
      <legend>{t('settings.backend')}</legend>
      <p>{t('backend.current', { name })}</p>
      <BackendFields value={choice} onChange={setChoice} />
      <p className="muted">{t('backend.apply_note')}</p>
      <ErrorText error={error} />
      <button
        type="button"
        disabled={sameBackend(current, choice)}
        onClick={() => ipc.setBackend(choice).catch((e) => setError(ipc.toAppError(e)))}
      >
        {t('backend.apply')}
      </button>
    </fieldset>
  );
}
