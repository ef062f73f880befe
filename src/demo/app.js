// latchkey demo: plain JavaScript, no build step, no third-party code.
//
// Cookie mode: login answers with the access token in the body and the
// refresh token in an HttpOnly cookie this script never sees. Every
// cookie-authenticated call (refresh, logout) carries X-CSRF-Token, read
// from the CSRF cookie. The access token lives in memory only and is
// refreshed silently before it expires.
'use strict';

const LEVELS = ['none', 'beginner', 'intermediate', 'advanced'];
const $ = (id) => document.getElementById(id);

let access = null; // { token, expiresAt }
let mfaToken = null; // a login waiting for its second factor
let refreshTimer = null;
let silentRefreshes = 0;

// ---- status line ----
function say(message, isError = false) {
  const status = $('status');
  status.textContent = message;
  status.classList.toggle('error', isError);
}

function problemText(problem) {
  if (!problem) return 'Something went wrong.';
  const rules = (problem.errors || []).map((e) => e.message).join(' ');
  return `${problem.detail || problem.title} (${problem.code})${rules ? ' ' + rules : ''}`;
}

// ---- HTTP ----
function csrfCookie() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === '__Host-lk_csrf' || name === 'lk_csrf') return rest.join('=');
  }
  return '';
}

async function call(method, path, { body, auth = false, csrf = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && access) headers.Authorization = `Bearer ${access.token}`;
  if (csrf) headers['X-CSRF-Token'] = csrfCookie();
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  return { ok: resp.ok, status: resp.status, data };
}

// ---- sessions and silent refresh ----
function useTokens(tokens) {
  access = { token: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
  $('token-expiry').textContent = new Date(access.expiresAt).toLocaleTimeString();
  clearTimeout(refreshTimer);
  // Refresh when three quarters of the lifetime have passed.
  const delay = Math.max(1000, tokens.expires_in * 750);
  refreshTimer = setTimeout(silentRefresh, delay);
}

async function refresh() {
  const r = await call('POST', '/v1/auth/refresh', { body: {}, csrf: true });
  if (r.ok) useTokens(r.data);
  return r;
}

async function silentRefresh() {
  const r = await refresh();
  if (r.ok) {
    silentRefreshes += 1;
    $('refresh-count').textContent = String(silentRefreshes);
  } else {
    signedOut('Your session ended; log in again.', true);
  }
}

// ---- views ----
function show(section) {
  for (const id of ['signed-out', 'signed-in', 'mfa-step', 'verify', 'forgot', 'reset']) $(id).hidden = id !== section;
}

function signedOut(message, isError = false) {
  access = null;
  clearTimeout(refreshTimer);
  show('signed-out');
  if (message) say(message, isError);
}

async function signedIn(tokens) {
  useTokens(tokens);
  show('signed-in');
  await Promise.all([loadUser(), loadProfile(tokens.onboarding_required), loadSessions(), loadMfa(), loadPasskeys()]);
}

async function loadPasskeys() {
  const r = await call('GET', '/v1/users/me/passkeys', { auth: true });
  const list = $('passkeys');
  list.replaceChildren();
  if (!r.ok) return;
  for (const p of r.data.items) {
    const item = document.createElement('li');
    item.dataset.passkeyId = p.id;
    const used = p.last_used_at ? `last used ${new Date(p.last_used_at).toLocaleString()}` : 'not used yet';
    item.textContent = `${p.name} — added ${new Date(p.created_at).toLocaleString()}, ${used} `;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.addEventListener('click', async () => {
      const password = $('passkey-password').value;
      const body = password ? { password } : {};
      const removed = await call('DELETE', `/v1/users/me/passkeys/${p.id}`, { body, auth: true });
      await Promise.all([loadPasskeys(), loadMfa()]);
      say(removed.ok ? 'Passkey removed.' : problemText(removed.data), !removed.ok);
    });
    item.append(remove);
    list.append(item);
  }
}

// A login (or Google sign-in) that answered 403 mfa_required: ask for the code.
function needsSecondFactor(r) {
  if (r.status !== 403 || r.data?.code !== 'mfa_required') return false;
  mfaToken = r.data.mfa_token;
  $('mfa-code').value = '';
  $('mfa-recovery').value = '';
  show('mfa-step');
  say('Enter the code from your authenticator app.');
  return true;
}

async function loadMfa() {
  const r = await call('GET', '/v1/users/me/mfa', { auth: true });
  if (!r.ok) return;
  $('mfa-state').textContent = r.data.totp
    ? `On: an authenticator app (${r.data.recovery_codes_left} recovery codes left).`
    : 'Off: a password is enough to sign in.';
  if (r.data.passkeys) $('mfa-state').textContent += ` Passkeys: ${r.data.passkeys}.`;
  $('totp-start-form').hidden = r.data.totp;
  $('totp-off-form').hidden = !r.data.totp;
  $('totp-confirm-form').hidden = true;
}

async function loadUser() {
  const r = await call('GET', '/v1/users/me', { auth: true });
  if (!r.ok) return say(problemText(r.data), true);
  $('user-email').textContent = r.data.email;
  $('user-id').textContent = r.data.id;
  $('user-verified').textContent = r.data.email_verified ? 'yes' : 'no';
}

async function loadProfile(onboardingRequired) {
  const r = await call('GET', '/v1/users/me/profile', { auth: true });
  const profile = r.ok ? r.data : {};
  $('onboarding').hidden = r.ok && !onboardingRequired;
  $('robotics').value = profile.robotics_experience || 'none';
  $('aiml').value = profile.ai_ml_experience || 'none';
  $('goals').value = profile.learning_goals || '';
}

async function loadSessions() {
  const r = await call('GET', '/v1/sessions', { auth: true });
  const list = $('sessions');
  list.replaceChildren();
  if (!r.ok) return;
  for (const s of r.data.sessions) {
    const item = document.createElement('li');
    item.dataset.sessionId = s.id;
    const agent = s.user_agent ? s.user_agent.slice(0, 60) : 'unknown client';
    item.textContent = `${s.current ? 'This browser' : agent} — ${s.method}, since ${new Date(s.created_at).toLocaleString()} `;
    if (!s.current) {
      const end = document.createElement('button');
      end.type = 'button';
      end.textContent = 'End';
      end.addEventListener('click', async () => {
        await call('DELETE', `/v1/sessions/${s.id}`, { auth: true });
        await loadSessions();
      });
      item.append(end);
    }
    list.append(item);
  }
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// What a failed Google sign-in comes back with; anything else is shown as unknown.
const SIGN_IN_ERRORS = {
  access_denied: 'you declined at Google',
  email_not_verified: 'Google does not vouch for that address',
  provider_unavailable: 'Google could not be reached',
  invalid_grant: 'the sign-in expired or was already used',
  nonce_mismatch: 'the answer belonged to another sign-in',
  invalid_id_token: 'the answer could not be verified',
  issuer_mismatch: 'the answer came from the wrong provider',
  provider_error: 'Google reported an error',
  server_error: 'latchkey could not finish it',
};

// ---- actions ----
function on(id, event, handler) {
  $(id).addEventListener(event, async (e) => {
    e.preventDefault();
    try { await handler(e); } catch (err) { say(String(err), true); }
  });
}

function wire() {
  for (const select of [$('robotics'), $('aiml')]) {
    for (const level of LEVELS) select.append(new Option(level, level));
  }
  // Google: the app binds the sign-in to itself with its own PKCE pair, so a
  // login code planted in this page's address by someone else is useless.
  on('google', 'click', async () => {
    const params = new URLSearchParams({ redirect_to: `${location.origin}/demo/signed-in` });
    if (window.crypto?.subtle) {
      const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      sessionStorage.setItem('latchkey-demo-pkce', verifier);
      params.set('code_challenge', base64url(new Uint8Array(digest)));
      params.set('code_challenge_method', 'S256');
    }
    location.assign(`/v1/auth/oauth/google/authorize?${params}`);
  });

  on('signup-form', 'submit', async () => {
    const body = { email: $('signup-email').value, password: $('signup-password').value };
    if ($('signup-name').value) body.name = $('signup-name').value;
    const r = await call('POST', '/v1/auth/signup', { body });
    if (!r.ok) return say(problemText(r.data), true);
    $('login-email').value = body.email;
    say(`${r.data.message} (The link is in the mail; without SMTP it is in data/mail/ and the server log.)`);
  });

  on('login-form', 'submit', async () => {
    const body = { email: $('login-email').value, password: $('login-password').value, token_delivery: 'cookie' };
    const r = await call('POST', '/v1/auth/login', { body });
    $('login-password').value = '';
    if (needsSecondFactor(r)) return;
    if (!r.ok) return say(problemText(r.data), true);
    await signedIn(r.data);
    say('Logged in.');
  });

  on('mfa-form', 'submit', async () => {
    const body = { mfa_token: mfaToken, token_delivery: 'cookie' };
    if ($('mfa-recovery').value) body.recovery_code = $('mfa-recovery').value;
    else body.code = $('mfa-code').value;
    const r = await call('POST', '/v1/auth/mfa/verify', { body });
    if (!r.ok) {
      // A dead token (used, expired, out of attempts) means starting over.
      if (r.data?.code === 'invalid_mfa_token') signedOut(problemText(r.data), true);
      else say(problemText(r.data), true);
      return;
    }
    mfaToken = null;
    await signedIn(r.data);
    say('Logged in with two steps.');
  });

  // Passkeys: latchkey sends the options as JSON, the browser parses them
  // and answers with credential.toJSON(); no binary handling here.
  on('passkey-add-form', 'submit', async () => {
    const password = $('passkey-password').value;
    const r = await call('POST', '/v1/users/me/passkeys/register/start', { body: password ? { password } : {}, auth: true });
    $('passkey-password').value = '';
    if (!r.ok) return say(problemText(r.data), true);
    const credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(r.data.publicKey),
    });
    const body = { credential: credential.toJSON(), name: $('passkey-name').value };
    const done = await call('POST', '/v1/users/me/passkeys/register/finish', { body, auth: true });
    if (!done.ok) return say(problemText(done.data), true);
    await Promise.all([loadPasskeys(), loadMfa()]);
    say(`Passkey "${done.data.name}" added.`);
  });

  on('passkey-sign-in', 'click', async () => {
    const r = await call('POST', '/v1/auth/passkey/start', { body: {} });
    if (!r.ok) return say(problemText(r.data), true);
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(r.data.publicKey),
    });
    const body = { challenge_id: r.data.challenge_id, credential: credential.toJSON(), token_delivery: 'cookie' };
    const done = await call('POST', '/v1/auth/passkey/finish', { body });
    if (!done.ok) return say(problemText(done.data), true);
    await signedIn(done.data);
    say('Signed in with a passkey.');
  });

  on('totp-start-form', 'submit', async () => {
    const password = $('totp-password').value;
    const r = await call('POST', '/v1/users/me/mfa/totp', { body: password ? { password } : {}, auth: true });
    $('totp-password').value = '';
    if (!r.ok) return say(problemText(r.data), true);
    $('totp-qr').src = r.data.qr_code;
    $('totp-secret').textContent = r.data.secret;
    $('totp-confirm-form').hidden = false;
    say('Add the key to your authenticator app, then enter its first code.');
  });

  on('totp-confirm-form', 'submit', async () => {
    const r = await call('POST', '/v1/users/me/mfa/totp/confirm', { body: { code: $('totp-code').value }, auth: true });
    $('totp-code').value = '';
    if (!r.ok) return say(problemText(r.data), true);
    const list = $('recovery-codes');
    list.replaceChildren(...r.data.recovery_codes.map((code) => {
      const item = document.createElement('li');
      item.textContent = code;
      return item;
    }));
    $('recovery').hidden = false;
    $('totp-secret').textContent = '';
    $('totp-qr').removeAttribute('src');
    await loadMfa();
    say('Two-step sign-in is on. Save your recovery codes now.');
  });

  on('totp-off-form', 'submit', async () => {
    const password = $('totp-off-password').value;
    const body = { code: $('totp-off-code').value };
    if (password) body.password = password;
    const r = await call('DELETE', '/v1/users/me/mfa/totp', { body, auth: true });
    $('totp-off-password').value = '';
    $('totp-off-code').value = '';
    if (!r.ok) return say(problemText(r.data), true);
    $('recovery').hidden = true;
    await loadMfa();
    say('Two-step sign-in is off.');
  });

  on('reload-user', 'click', loadUser);
  on('refresh-now', 'click', async () => {
    const r = await refresh();
    say(r.ok ? 'Tokens refreshed.' : problemText(r.data), !r.ok);
  });

  // By the cookie (and the CSRF header): it works even when the access
  // token in memory has expired, and the answer clears the cookies.
  on('logout', 'click', async () => {
    const r = await call('POST', '/v1/auth/logout', { csrf: true });
    if (!r.ok) return say(problemText(r.data), true);
    signedOut('Logged out.');
  });

  on('profile-form', 'submit', async () => {
    const body = {
      robotics_experience: $('robotics').value,
      ai_ml_experience: $('aiml').value,
      learning_goals: $('goals').value,
    };
    const r = await call('PUT', '/v1/users/me/profile', { body, auth: true });
    if (!r.ok) return say(problemText(r.data), true);
    $('onboarding').hidden = true;
    $('goals').value = r.data.learning_goals;
    say('Profile saved.');
  });

  on('revoke-others', 'click', async () => {
    const r = await call('POST', '/v1/sessions/revoke-others', { auth: true });
    if (r.ok) say(`Signed out ${r.data.revoked} other session(s).`);
    await loadSessions();
  });

  on('forgot-form', 'submit', async () => {
    const r = await call('POST', '/v1/auth/password/forgot', { body: { email: $('forgot-email').value } });
    say(r.ok ? r.data.message : problemText(r.data), !r.ok);
  });

  on('verify-form', 'submit', async () => {
    const token = new URLSearchParams(location.search).get('token');
    const body = { token, password: $('verify-password').value };
    const r = await call('POST', '/v1/auth/verify-email', { body });
    if (!r.ok) return say(problemText(r.data), true);
    history.replaceState(null, '', '/demo');
    signedOut(r.data.message);
  });

  on('reset-form', 'submit', async () => {
    const token = new URLSearchParams(location.search).get('token');
    const r = await call('POST', '/v1/auth/password/reset', { body: { token, new_password: $('reset-password').value } });
    if (!r.ok) return say(problemText(r.data), true);
    history.replaceState(null, '', '/demo');
    signedOut(r.data.message);
  });
}

// ---- where the page was opened ----
async function start() {
  wire();
  const params = new URLSearchParams(location.search);
  const page = location.pathname.replace(/^\/demo\/?/, '');

  if (page === 'verify-email' && params.get('token')) {
    show('verify');
    return say('Enter your password to finish verifying your address.');
  }
  if (page === 'reset-password' && params.get('token')) {
    show('reset');
    return say('Choose a new password.');
  }
  if (page === 'forgot-password') {
    show('forgot');
    return say('');
  }
  if (page === 'signed-in' || params.has('code') || params.has('error')) {
    history.replaceState(null, '', '/demo');
    const verifier = sessionStorage.getItem('latchkey-demo-pkce');
    sessionStorage.removeItem('latchkey-demo-pkce');
    const error = params.get('error');
    if (error) {
      const reason = SIGN_IN_ERRORS[error] || 'unknown error';
      return signedOut(`Google sign-in failed: ${error} (${reason}).`, true);
    }
    const body = { code: params.get('code') || '', token_delivery: 'cookie' };
    if (verifier) body.code_verifier = verifier;
    const r = await call('POST', '/v1/auth/oauth/exchange', { body });
    if (needsSecondFactor(r)) return;
    if (!r.ok) return signedOut(problemText(r.data), true);
    await signedIn(r.data);
    return say(r.data.is_new_user ? 'Welcome! Your account was created with Google.' : 'Signed in with Google.');
  }

  // A returning visitor: the refresh cookie, if any, opens the session.
  if (csrfCookie()) {
    const r = await refresh();
    if (r.ok) {
      await signedIn(r.data);
      return say('Welcome back.');
    }
  }
  signedOut('');
}

start();
