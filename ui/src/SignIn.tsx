/** The sign-in form a collector with a token asks for: the token once, kept by the browser as a session cookie. */
import { useState } from 'preact/hooks';
import { ApiError, signIn } from './api.ts';

export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(token);
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That is not this collector\u2019s token.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="page state sign-in" data-testid="sign-in" onSubmit={submit}>
      <strong>This collector is protected by a token.</strong>
      <p class="muted">Enter it once; this browser keeps the session until it closes.</p>
      <label>
        token{' '}
        <input
          type="password"
          name="token"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          required
          autofocus
        />
      </label>{' '}
      <button type="submit" class="btn" disabled={busy || token === ''}>
        sign in
      </button>
      {error && (
        <p class="error-message" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
