// Other origins against a signed-in demo tab: a page elsewhere cannot refresh
// (or read a CSRF token), and a cross-site form post cannot log the user out.
// Both a same-site origin (127.0.0.1, another port: the cookies ride along,
// so only latchkey's Origin and CSRF checks stand in the way) and a
// cross-site one (localhost) are tried.
import { createServer } from 'node:http';
import { BASE, PASSWORD, assert, newPage, run, status, step } from './lib.mjs';

const EVIL_PAGE = `<!doctype html><html><body>
<form id="logout" method="post" action="${BASE}/v1/auth/logout" enctype="text/plain">
  <input type="hidden" name="a" value="b"><button id="go">Win a prize</button>
</form></body></html>`;

const evil = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(EVIL_PAGE);
});
await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
const port = evil.address().port;

await run(async (browser) => {
  const context = await browser.newContext();
  const demo = await newPage(context);
  const email = `target-${Date.now()}@example.com`;

  step('sign up and log in in the demo (verification is off on this server)');
  await demo.goto(`${BASE}/demo`);
  await demo.fill('#signup-email', email);
  await demo.fill('#signup-password', PASSWORD);
  await demo.click('#signup-form button[type=submit]');
  await status(demo, 'Sign-up received');
  await demo.fill('#login-email', email);
  await demo.fill('#login-password', PASSWORD);
  await demo.click('#login-form button[type=submit]');
  await status(demo, 'Logged in.');
  const refreshCookie = async () => (await context.cookies(BASE)).find((c) => c.name.endsWith('lk_refresh'))?.value;
  const before = await refreshCookie();
  assert(before, 'logged in with a refresh cookie');

  for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
    step(`a page at ${origin}`);
    const page = await newPage(context);
    await page.goto(`${origin}/`);

    const attempts = await page.evaluate(async (base) => {
      const tryFetch = async (path, init) => {
        try {
          const r = await fetch(base + path, { credentials: 'include', ...init });
          return `answered ${r.status} (type ${r.type})`;
        } catch {
          return 'blocked';
        }
      };
      return {
        refresh: await tryFetch('/v1/auth/refresh', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': 'guess' },
          body: '{}',
        }),
        csrf: await tryFetch('/v1/auth/csrf', {}),
        simple: await tryFetch('/v1/auth/refresh', { method: 'POST', mode: 'no-cors', body: '{}' }),
      };
    }, BASE);
    assert(attempts.refresh === 'blocked', `refresh from ${origin}: ${attempts.refresh}`);
    assert(attempts.csrf === 'blocked', `CSRF token read from ${origin}: ${attempts.csrf}`);
    assert(attempts.simple === 'answered 0 (type opaque)', `simple post from ${origin}: ${attempts.simple}`);

    step(`a form on ${origin} posting to /v1/auth/logout`);
    const logout = page.waitForResponse((r) => r.url() === `${BASE}/v1/auth/logout`);
    await page.click('#go');
    const answer = await logout;
    assert([401, 403].includes(answer.status()), `the form post was answered ${answer.status()}`);
    await page.waitForLoadState();
  }

  step('nothing rotated or ended: the demo tab refreshes and loads the user');
  assert((await refreshCookie()) === before, 'the refresh cookie is unchanged');
  await demo.click('#refresh-now');
  await status(demo, 'Tokens refreshed.');
  const me = demo.waitForResponse((r) => r.url().endsWith('/v1/users/me'));
  await demo.click('#reload-user');
  assert((await me).status() === 200, 'the session is alive');
  step('done');
});
evil.close();
