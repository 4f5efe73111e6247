// session.js: signing in with a token the user's application issued. The
// token is kept in sessionStorage (this tab only, gone with it) and never
// in the address bar; GET /v1/me says whose it is. A refused token (401,
// expired) signs out with a notice.

import * as api from './api.js';

const KEY = 'quotehub.board.token';

function stored() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

function store(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch {
    // storage blocked: the sign-in lasts as long as the page
  }
}

/**
 * sessionBox wires the sign-in form: els {form, input, who, out}; onChange(user)
 * runs with the user ({user, expires}) after a sign-in, null after a sign-out.
 */
export function sessionBox(els, { onChange, notice }) {
  let user = null;

  const show = () => {
    els.form.hidden = !!user;
    els.signed.hidden = !user;
    els.who.textContent = user ? user.user : '';
    document.body.dataset.user = user ? user.user : '';
  };

  const signOut = (why) => {
    const was = user || api.currentToken();
    api.setToken('');
    store('');
    user = null;
    show();
    if (why) notice(why);
    if (was) onChange(null);
  };

  const signIn = async (token) => {
    api.setToken(token);
    try {
      const me = await api.me();
      if (api.currentToken() !== token) return; // signed out meanwhile
      user = me;
      store(token);
      show();
      onChange(user);
    } catch (e) {
      if (e.status !== 401) {
        // The node is away or refused for another reason: keep the token
        // for a later try, signed out for now.
        api.setToken('');
        notice('Sign-in failed: ' + e.message);
      }
    }
  };

  api.onAuthLost((msg) => signOut('Signed out: ' + msg));

  els.form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = els.input.value.trim();
    els.input.value = '';
    if (t) signIn(t);
  });
  els.out.addEventListener('click', () => signOut(''));
  show();
  const t = stored();
  if (t) signIn(t);

  return {
    get user() {
      return user;
    },
    /** check asks the node whether the token still holds (a 401 signs out). */
    check() {
      if (user) api.me().catch(() => {});
    },
  };
}
