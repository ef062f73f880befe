// Passkeys in Chromium with its virtual authenticator (CDP WebAuthn), on
// http://localhost (browsers take no IP address as a relying party): add a
// passkey from the demo, sign in with it, no password typed; a challenge
// answered twice, a signature counter moved back and a removed passkey are
// all refused.
import { PASSWORD, assert, newPage, required, run, signUpAndLogIn, status, step } from './lib.mjs';

const SITE = required('PASSKEY_URL');

/** A sign-in through the API in the page: start, the authenticator, finish, then the same answer again. */
async function signInTwice(page) {
  return page.evaluate(async () => {
    const post = (path, body) =>
      fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const start = await (await post('/v1/auth/passkey/start', {})).json();
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.publicKey),
    });
    const answer = { challenge_id: start.challenge_id, credential: credential.toJSON() };
    const first = await post('/v1/auth/passkey/finish', answer);
    const again = await post('/v1/auth/passkey/finish', answer);
    return { first: first.status, firstBody: await first.json(), again: again.status, againBody: await again.json() };
  });
}

function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

await run(async (browser) => {
  const context = await browser.newContext();
  const page = await newPage(context);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const email = required('EMAIL');

  step('sign up and log in with the password');
  await signUpAndLogIn(page, SITE, email);

  step('adding a passkey needs the password');
  await page.fill('#passkey-name', 'Test laptop');
  await page.fill('#passkey-password', 'Wrong1Password');
  await page.click('#passkey-add-form button[type=submit]');
  await status(page, 'invalid_current_password');

  step('add a passkey: a discoverable credential lands in the authenticator');
  await page.fill('#passkey-password', PASSWORD);
  await page.click('#passkey-add-form button[type=submit]');
  await status(page, 'Passkey "Test laptop" added.');
  const listed = await page.$$eval('#passkeys li', (items) => items.map((i) => i.textContent));
  assert(listed.length === 1 && listed[0].startsWith('Test laptop') && listed[0].includes('not used yet'), `${listed}`);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert(credentials.length === 1 && credentials[0].isResidentCredential, `credentials: ${JSON.stringify(credentials)}`);
  await page.waitForFunction(() => document.getElementById('mfa-state').textContent.includes('Passkeys: 1'));

  step('log out; sign in with the passkey, no address or password typed');
  await page.click('#logout');
  await status(page, 'Logged out.');
  await page.click('#passkey-sign-in');
  await status(page, 'Signed in with a passkey.');
  assert((await page.textContent('#user-email')) === email, 'signed in as the owner');
  const amr = await page.evaluate(() => JSON.parse(atob(access.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).amr);
  assert(JSON.stringify(amr) === '["hwk","mfa"]', `amr ${JSON.stringify(amr)}`);
  const sessions = await page.$$eval('#sessions li', (items) => items.map((i) => i.textContent));
  assert(sessions.some((s) => s.startsWith('This browser') && s.includes('hwk mfa')), `sessions: ${sessions}`);
  await page.waitForFunction(() => document.querySelector('#passkeys li')?.textContent.includes('last used'));

  step('a challenge works once: the same answer again is refused');
  const twice = await signInTwice(page);
  assert(twice.first === 200 && twice.firstBody.refresh_token?.startsWith('lk_rt_'), `first: ${JSON.stringify(twice)}`);
  assert(claims(twice.firstBody.access_token).sub === claims(twice.firstBody.access_token).sub, 'a token');
  assert(twice.again === 400 && twice.againBody.code === 'invalid_passkey_challenge', `again: ${JSON.stringify(twice)}`);

  step('an authenticator whose signature counter went back (a clone) is refused');
  const [credential] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  assert(credential.signCount >= 2, `counter ${credential.signCount}`);
  await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: credential.credentialId });
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...credential, signCount: 1 } });
  const cloned = await signInTwice(page);
  assert(cloned.first === 401 && cloned.firstBody.code === 'invalid_passkey', `cloned: ${JSON.stringify(cloned)}`);
  await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: credential.credentialId });
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...credential, signCount: 1000 } });
  assert((await signInTwice(page)).first === 200, 'the same key with its counter ahead signs in again');

  step('remove the passkey (with the password); it no longer signs in');
  await page.fill('#passkey-password', PASSWORD);
  await page.click('#passkeys li button');
  await status(page, 'Passkey removed.');
  assert((await page.$$('#passkeys li')).length === 0, 'the list is empty');
  const removed = await signInTwice(page);
  assert(removed.first === 401 && removed.firstBody.code === 'invalid_passkey', `removed: ${JSON.stringify(removed)}`);
  step('done');
});
