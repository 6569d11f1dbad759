import { useEffect, useState } from 'react';
import { ConnectionBar } from './components/ConnectionBar';
import { Notices } from './components/Notices';
import { OutboxPanel } from './components/OutboxPanel';
import { Rail, SCREENS, type Screen } from './components/Rail';
import { UpdateOffer } from './components/UpdatePrompt';
import { useAppState, type AppState } from './hooks/useAppState';
import { useEngineEvent } from './hooks/useEngineEvent';
import { useTheme } from './hooks/useTheme';
import { useView } from './hooks/useView';
import { I18nProvider } from './i18n';
import { rooms as readRooms, type Uuid } from './ipc';
import { AnalyticsScreen } from './screens/analytics/AnalyticsScreen';
import { ChallengesScreen } from './screens/challenges/ChallengesScreen';
import { ChatScreen } from './screens/chat/ChatScreen';
import { DocumentsScreen } from './screens/documents/DocumentsScreen';
import { SettingsScreen } from './screens/settings/SettingsScreen';
import { SignIn } from './screens/signin/SignIn';

export function App() {
  const app = useAppState();
  useTheme(app.settings.theme);
  const [showFailed, setShowFailed] = useState(false);
  const signedIn = !!app.session?.user_id;

  return (
    <I18nProvider lang={app.settings.language}>
      <div className="app">
        <Notices info={app.info} remembered={app.session?.remembered ?? true} />
        <UpdateOffer />
        {app.session === undefined ? null : signedIn ? <Workspace app={app} /> : <SignIn info={app.info} />}
        {signedIn && showFailed && <OutboxPanel onClose={() => setShowFailed(false)} />}
        <ConnectionBar
          state={app.connection.state}
          since={app.connection.since}
          counts={app.counts}
          onShowFailed={signedIn ? () => setShowFailed(true) : undefined}
        />
      </div>
    </I18nProvider>
  );
}

function Workspace({ app }: { app: AppState }) {
  const [screen, setScreen] = useState<Screen>('chat');
  const [openChallenge, setOpenChallenge] = useState<Uuid | null>(null);
  const rooms = useView(readRooms, []);

  useEngineEvent((e) => {
    if (e.type === 'rooms') rooms.reload();
    // A clicked toast opens its challenge.
    if (e.type === 'navigate') {
      setScreen('challenges');
      setOpenChallenge(e.id);
    }
  });

  // Ctrl+1…5 moves between screens from anywhere, also while typing.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
      const target = SCREENS[Number(e.key) - 1];
      if (target) {
        e.preventDefault();
        setScreen(target);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const unread = (rooms.data ?? []).reduce((sum, r) => sum + r.unread, 0);
  const me = app.session?.user_id ?? '';
  return (
    <div className="workspace" data-testid="workspace">
      <Rail current={screen} unread={unread} onSelect={setScreen} />
      <main className="main">
        {screen === 'chat' && <ChatScreen me={me} rooms={rooms} />}
        {screen === 'challenges' && (
          <ChallengesScreen me={me} openId={openChallenge} onOpen={setOpenChallenge} />
        )}
        {screen === 'documents' && (
          <DocumentsScreen
            me={{ id: me, name: app.session?.display_name ?? app.session?.email ?? '' }}
            online={app.connection.state.state === 'online'}
          />
        )}
        {screen === 'analytics' && <AnalyticsScreen />}
        {screen === 'settings' && <SettingsScreen app={app} />}
      </main>
    </div>
  );
}
