// Two-step sign-in in the demo SPA, as a person would use it: set up an
// authenticator app from the QR code (its key read off the page, codes
// computed here with RFC 6238), keep the recovery codes shown once, log in
// with a code, then with a recovery code, and turn it off again.
import { createHmac } from 'node:crypto';
import { BASE, PASSWORD, assert, logIn, newPage, run, signUpAndLogIn, status, step } from './lib.mjs';

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) for `offset` steps from now. */
function totp(secret, offset = 0) {
  const step = Math.floor(Date.now() / 30_000) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const at = mac[19] & 0x0f;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

await run(async (browser) => {
  const context = await browser.newContext();
  const page = await newPage(context);
  const email = `mfa-${Date.now()}@example.com`;

  step('sign up and log in');
  await signUpAndLogIn(page, BASE, email);
  await page.waitForFunction(() => document.getElementById('mfa-state').textContent.startsWith('Off'));

  step('set up an authenticator app: the QR code shows, the key is readable');
  await page.fill('#totp-password', PASSWORD);
  await page.click('#totp-start-form button[type=submit]');
  await status(page, 'Add the key to your authenticator app');
  const secret = await page.textContent('#totp-secret');
  assert(/^[A-Z2-7]{32,}$/.test(secret), `the key: ${secret}`);
  const qr = await page.$eval('#totp-qr', (img) => ({ src: img.src, width: img.naturalWidth, done: img.complete }));
  assert(qr.src.startsWith('data:image/svg+xml;base64,'), `the QR code: ${qr.src.slice(0, 40)}`);
  await page.waitForFunction(() => document.getElementById('totp-qr').naturalWidth > 0);

  step('a wrong first code is refused; the right one turns it on and shows ten recovery codes once');
  await page.fill('#totp-code', totp(secret) === '000000' ? '111111' : '000000');
  await page.click('#totp-confirm-form button[type=submit]');
  await status(page, 'invalid_mfa_code');
  await page.fill('#totp-code', totp(secret));
  await page.click('#totp-confirm-form button[type=submit]');
  await status(page, 'Two-step sign-in is on');
  const codes = await page.$$eval('#recovery-codes li', (items) => items.map((i) => i.textContent));
  assert(codes.length === 10 && codes.every((c) => /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/.test(c)), `codes: ${codes}`);
  assert((await page.textContent('#totp-secret')) === '', 'the key is gone from the page');
  await page.waitForFunction(() => document.getElementById('mfa-state').textContent.includes('10 recovery codes left'));

  step('log out; logging in now asks for a code');
  await page.click('#logout');
  await status(page, 'Logged out.');
  await logIn(page, email);
  await page.waitForSelector('#mfa-step', { state: 'visible' });
  await status(page, 'Enter the code from your authenticator app');
  const cookies = (await context.cookies(BASE)).filter((c) => c.name.includes('lk_refresh'));
  assert(cookies.length === 0, 'no session before the second factor');
  // The code just used for confirmation is spent; the next step's is accepted (one step of drift).
  await page.fill('#mfa-code', totp(secret, 1));
  await page.click('#mfa-form button[type=submit]');
  await status(page, 'Logged in with two steps.');
  assert((await page.textContent('#user-email')) === email, 'signed in');
  const sessions = await page.$$eval('#sessions li', (items) => items.map((i) => i.textContent));
  assert(sessions.some((s) => s.startsWith('This browser') && s.includes('pwd otp mfa')), `sessions: ${sessions}`);

  step('a reload keeps the two-step session (the cookie opens it)');
  await page.reload();
  await status(page, 'Welcome back.');

  step('log out; log in with a recovery code');
  await page.click('#logout');
  await status(page, 'Logged out.');
  await logIn(page, email);
  await page.waitForSelector('#mfa-step', { state: 'visible' });
  await page.fill('#mfa-recovery', codes[0].toUpperCase());
  await page.click('#mfa-form button[type=submit]');
  await status(page, 'Logged in with two steps.');
  await page.waitForFunction(() => document.getElementById('mfa-state').textContent.includes('9 recovery codes left'));

  step('turn it off with the password and a recovery code; a password is enough again');
  await page.fill('#totp-off-password', PASSWORD);
  await page.fill('#totp-off-code', codes[1]);
  await page.click('#totp-off-form button[type=submit]');
  await status(page, 'Two-step sign-in is off.');
  await page.click('#logout');
  await status(page, 'Logged out.');
  await logIn(page, email);
  await status(page, 'Logged in.');
  step('done');
});
