import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { UiConfig } from '../../collector/api-types.ts';
import { loadConfig, onSignInNeeded } from './api.ts';
import { ChainList } from './ChainList.tsx';
import { ChainView } from './ChainView.tsx';
import { FailureGroupPage, FailuresPage } from './Failures.tsx';
import { useRoute } from './router.ts';
import { SignIn } from './SignIn.tsx';
import { TopologyPage } from './Topology.tsx';
import './styles.css';

function App() {
  const route = useRoute();
  const [config, setConfig] = useState<UiConfig | undefined>();
  // A collector with a token answers 401 until this browser signs in; then every page starts over.
  const [signInNeeded, setSignInNeeded] = useState(false);
  const [session, setSession] = useState(0);
  useEffect(() => onSignInNeeded(() => setSignInNeeded(true)), []);
  useEffect(() => {
    loadConfig().then(setConfig);
  }, [session]);
  useEffect(() => {
    document.title =
      route.name === 'chain'
        ? `${route.correlationId} · hoptrace`
        : route.name === 'topology'
          ? 'topology · hoptrace'
          : route.name === 'failures' || route.name === 'failure'
            ? 'failures · hoptrace'
            : 'hoptrace';
  }, [route]);

  return (
    <div class={`app route-${route.name}`}>
      <nav class="topbar">
        <a class="brand" href="#/">
          <span class="brand-mark" aria-hidden="true">◆</span> hoptrace
        </a>
        <a class={`nav${route.name === 'list' || route.name === 'chain' ? ' current' : ''}`} href="#/">
          chains
        </a>
        <a class={`nav${route.name === 'failures' || route.name === 'failure' ? ' current' : ''}`} href="#/failures" data-testid="nav-failures">
          failures
        </a>
        <a class={`nav${route.name === 'topology' ? ' current' : ''}`} href="#/topology">
          topology
        </a>
        <span class="spacer" />
        {config && <span class="muted small">collector {config.version}</span>}
      </nav>
      <main class="main" key={session}>
        {signInNeeded && (
          <SignIn
            onSignedIn={() => {
              setSignInNeeded(false);
              setSession((n) => n + 1);
            }}
          />
        )}
        {/* Keyed by navigation: a followed link or edited URL applies its filters (the list's own edits use replaceState). */}
        {!signInNeeded && route.name === 'list' && <ChainList key={route.navigation} params={route.params} />}
        {!signInNeeded && route.name === 'chain' && (
          <ChainView key={route.correlationId} correlationId={route.correlationId} seq={route.seq} focus={route.focus} navigation={route.navigation} config={config} />
        )}
        {!signInNeeded && route.name === 'topology' && <TopologyPage key={route.navigation} params={route.params} />}
        {!signInNeeded && route.name === 'failures' && <FailuresPage key={route.navigation} params={route.params} config={config} />}
        {!signInNeeded && route.name === 'failure' && <FailureGroupPage key={`${route.fingerprint}-${route.navigation}`} fingerprint={route.fingerprint} config={config} />}
        {route.name === 'not-found' && (
          <div class="page state">
            <strong>Nothing lives at this address.</strong> <a href="#/">Back to the chains.</a>
          </div>
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
