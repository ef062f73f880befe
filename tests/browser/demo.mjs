// The demo SPA end to end, as a person would use it: sign up, verify from the
// link in the mail, log in, see the user, stay signed in through silent
// refreshes, fill in the onboarding profile, see the session, reload, log out.
import { BASE, PASSWORD, assert, mailTo, newPage, required, run, status, step } from './lib.mjs';

const MAIL_DIR = required('MAIL_DIR');
const ACCESS_TTL = Number(required('ACCESS_TOKEN_TTL_SECS'));

await run(async (browser) => {
  const context = await browser.newContext();
  const page = await newPage(context);
  const email = `demo-${Date.now()}@example.com`;

  step('open the demo, signed out');
  await page.goto(`${BASE}/demo`);
  await page.waitForSelector('#signed-out', { state: 'visible' });

  step('sign up');
  await page.fill('#signup-email', email);
  await page.fill('#signup-password', PASSWORD);
  await page.click('#signup-form button[type=submit]');
  await status(page, 'Check your email');

  step('log in before verifying: refused');
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-form button[type=submit]');
  await status(page, 'email_not_verified');

  step('follow the link in the mail');
  const mail = await mailTo(MAIL_DIR, email);
  const link = mail.text_links.find((l) => l.startsWith(`${BASE}/demo/verify-email?token=`));
  assert(link, `no demo verification link in ${JSON.stringify(mail.text_links)}`);
  await page.goto(link);
  await status(page, 'Enter your password');
  await page.fill('#verify-password', PASSWORD);
  await page.click('#verify-form button[type=submit]');
  await status(page, 'verified. You can log in now');

  step('log in');
  await page.fill('#login-email', email);
  await page.fill('#login-password', PASSWORD);
  const loggedInAt = Date.now();
  await page.click('#login-form button[type=submit]');
  await status(page, 'Logged in.');
  assert((await page.textContent('#user-email')) === email, 'the user is shown');
  assert((await page.textContent('#user-verified')) === 'yes', 'the address shows as verified');

  step('the refresh token is in an HttpOnly cookie the page cannot read');
  const cookies = await context.cookies(BASE);
  const refreshCookie = cookies.find((c) => c.name.endsWith('lk_refresh'));
  assert(refreshCookie && refreshCookie.httpOnly && refreshCookie.value.startsWith('lk_rt_'), `cookies: ${JSON.stringify(cookies)}`);
  const visible = await page.evaluate(() => document.cookie);
  assert(!visible.includes('lk_rt_') && /lk_csrf=/.test(visible), `document.cookie is ${JSON.stringify(visible)}`);

  step(`silent refresh before the ${ACCESS_TTL} s access token expires`);
  await page.waitForFunction(() => Number(document.getElementById('refresh-count').textContent) >= 2, null, {
    timeout: ACCESS_TTL * 4000,
  });
  assert(Date.now() - loggedInAt > ACCESS_TTL * 1000, 'two refreshes span more than one token lifetime');
  const me = page.waitForResponse((r) => r.url().endsWith('/v1/users/me'));
  await page.click('#reload-user');
  assert((await me).status() === 200, 'the user loads with the refreshed token, after the first one expired');

  step('the onboarding profile');
  assert(await page.isVisible('#onboarding'), 'a new user is asked to onboard');
  await page.selectOption('#robotics', 'intermediate');
  await page.selectOption('#aiml', 'beginner');
  await page.fill('#goals', 'Build a <b>walking</b> robot');
  await page.click('#profile-form button[type=submit]');
  await status(page, 'Profile saved.');
  assert((await page.inputValue('#goals')) === 'Build a walking robot', 'markup is stripped');
  assert(!(await page.isVisible('#onboarding')), 'onboarding is done');

  step('the session list shows this browser');
  await page.click('#reload-user');
  const sessions = await page.$$eval('#sessions li', (items) => items.map((i) => i.textContent));
  assert(sessions.length === 1 && sessions[0].startsWith('This browser'), `sessions: ${JSON.stringify(sessions)}`);

  step('a reload keeps the person signed in (the cookie opens the session)');
  await page.reload();
  await status(page, 'Welcome back.');
  assert((await page.textContent('#user-email')) === email, 'the same user after a reload');
  assert((await page.inputValue('#goals')) === 'Build a walking robot', 'the saved profile loads');

  step('log out');
  await page.click('#logout');
  await status(page, 'Logged out.');
  const left = (await context.cookies(BASE)).filter((c) => c.name.includes('lk_'));
  assert(left.length === 0, `cookies left after logout: ${JSON.stringify(left)}`);
  await page.reload();
  await page.waitForSelector('#signed-out', { state: 'visible' });
  step('done');
});
