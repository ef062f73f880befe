// Swagger UI at /docs: it loads, "Authorize" takes a bearer token, and "Try it
// out" on GET /v1/users/me shows 200 with the user.
import { BASE, PASSWORD, assert, newPage, run, step } from './lib.mjs';

const email = `swagger-${Date.now()}@example.com`;
const post = (path, body) =>
  fetch(BASE + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

await run(async (browser) => {
  step('a user and an access token (verification is off on this server)');
  assert((await post('/v1/auth/signup', { email, password: PASSWORD })).status === 202, 'signed up');
  const login = await post('/v1/auth/login', { email, password: PASSWORD });
  const { access_token: token } = await login.json();
  assert(token, 'logged in');

  const page = await newPage(await browser.newContext());
  step('open /docs');
  await page.goto(`${BASE}/docs`);
  const operation = page.locator('#operations-Users-getCurrentUser');
  await operation.waitFor({ timeout: 15_000 });

  step('Authorize with the bearer token');
  await page.click('.scheme-container button.authorize');
  const bearer = page.locator('.auth-container', { hasText: 'BearerAuth' }).first();
  await bearer.locator('#auth-bearer-value').fill(token);
  await bearer.locator('button[aria-label="Apply credentials"]').click();
  await bearer.locator('button', { hasText: 'Logout' }).waitFor();
  await bearer.locator('button.btn-done').click();

  step('Try it out: GET /v1/users/me');
  await operation.locator('.opblock-summary').first().click();
  await operation.locator('button.try-out__btn').click();
  await operation.locator('button.execute').click();
  const code = operation.locator('.live-responses-table .response .response-col_status').first();
  await code.waitFor({ timeout: 15_000 });
  const shown = (await code.textContent()).trim();
  assert(shown.startsWith('200'), `Swagger UI shows status ${shown}`);
  const body = await operation.locator('.live-responses-table .response-col_description pre').first().textContent();
  assert(body.includes(email), `the response body shows the user: ${body}`);
  step('done');
});
