import { useEffect, useState, type FormEvent } from 'react';
import { ErrorText } from '../../components/ErrorText';
import { SecondWindow } from '../../components/SecondWindow';
import { useI18n } from '../../i18n';
import { setBackend, signIn, toAppError, type AppError, type AppInfo, type Backend } from '../../ipc';
import { BackendFields, sameBackend } from './BackendFields';

/** Sign-in with the backend choice; the embedded backend offers its demo accounts. Success
 * needs no callback: the engine's `session` event switches the app to the workspace. */
export function SignIn({ info }: { info: AppInfo | undefined }) {
  const { t } = useI18n();
  const [backend, setChoice] = useState<Backend>({ kind: 'embedded' });
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError>();

  useEffect(() => {
    if (info) setChoice(info.backend);
  }, [info]);

  const submit = async (as?: { email: string; password: string }) => {
    setBusy(true);
    setError(undefined);
    try {
      // Switching restarts the engine on the other backend before the credentials go to it.
      if (info && !sameBackend(info.backend, backend)) await setBackend(backend);
      await signIn(as?.email ?? email, as?.password ?? password);
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit();
  };

  const demos = backend.kind === 'embedded' ? (info?.demo_accounts ?? []) : [];
  return (
    <div className="signin">
      <form className="card" data-testid="signin" onSubmit={onSubmit} aria-busy={busy}>
        <img src="./ruwad.svg" alt="" width={56} height={56} />
        <h1>{t('signin.title')}</h1>
        <BackendFields value={backend} onChange={setChoice} />
        <label>
          {t('signin.email')}
          <input type="email" data-testid="signin-email" dir="ltr" autoComplete="username" required autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          {t('signin.password')}
          <input type="password" data-testid="signin-password" dir="ltr" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <ErrorText error={error} />
        <button type="submit" data-testid="signin-submit" className="primary" disabled={busy}>
          {busy ? t('signin.busy') : t('signin.submit')}
        </button>
        {demos.length > 0 && (
          <section className="demo" aria-label={t('signin.demo')}>
            <h2>{t('signin.demo')}</h2>
            {demos.map((d) => (
              <button key={d.email} type="button" disabled={busy} onClick={() => void submit(d)}>
                {t('signin.demo_as', { name: d.display_name })} <small dir="ltr">{d.email}</small>
              </button>
            ))}
            <SecondWindow />
          </section>
        )}
      </form>
    </div>
  );
}
