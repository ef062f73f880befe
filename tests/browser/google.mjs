// "Sign in with Google" from the demo, against the local OpenID provider:
// the button, the provider's sign-in form, back to the demo with a one-time
// code, exchanged in cookie mode. A first sign-in creates the account and
// asks for onboarding; declining at the provider comes back with an error.
import { BASE, assert, newPage, run, status, step } from './lib.mjs';

async function signIn(page, username) {
  await page.goto(`${BASE}/demo`);
  await page.waitForSelector('#signed-out', { state: 'visible' });
  await page.click('#google');
  await page.waitForSelector('input[name=username]');
  if (username) {
    await page.fill('input[name=username]', username);
    await page.click('button[value=login]');
  } else {
    await page.click('button[value=deny]');
  }
}

await run(async (browser) => {
  const email = `pat-${Date.now()}@example.com`;

  step('declining at the provider');
  const declined = await newPage(await browser.newContext());
  await signIn(declined, null);
  await status(declined, 'Google sign-in failed: access_denied');

  step('a first sign-in creates the account');
  const context = await browser.newContext();
  const page = await newPage(context);
  await signIn(page, email);
  await status(page, 'Welcome! Your account was created with Google.');
  assert((await page.textContent('#user-email')) === email, 'the Google address is the user');
  assert((await page.textContent('#user-verified')) === 'yes', 'Google accounts are verified');
  assert(await page.isVisible('#onboarding'), 'a new user is asked to onboard');
  assert(!new URL(page.url()).searchParams.has('code'), 'the login code is gone from the address bar');
  const cookies = await context.cookies(BASE);
  assert(cookies.some((c) => c.name.endsWith('lk_refresh') && c.httpOnly), 'cookie mode after the exchange');
  const sessions = await page.$$eval('#sessions li', (items) => items.map((i) => i.textContent));
  assert(sessions.length === 1 && sessions[0].includes('google'), `sessions: ${JSON.stringify(sessions)}`);

  step('signing in again (a new browser) finds the same account');
  const again = await newPage(await browser.newContext());
  await signIn(again, email);
  await status(again, 'Signed in with Google.');
  assert((await again.textContent('#user-id')) === (await page.textContent('#user-id')), 'the same user');
  step('done');
});
