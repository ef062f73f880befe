// Shared by the browser tests: headless Debian chromium through playwright-core,
// and small helpers. Each test script exits non-zero with a message on failure.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = required('LATCHKEY_URL');
export const PASSWORD = 'Tangerine-Piano-42';

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function step(message) {
  console.log(`- ${message}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // The CI container runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** A page whose script errors and failed assertions end the test. */
export async function newPage(context) {
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    console.error(`page error on ${page.url()}: ${err.message}`);
    process.exitCode = 1;
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`console (${page.url()}): ${msg.text()}`);
  });
  return page;
}

/** Waits for the demo's status line to contain `text`; returns it. */
export async function status(page, text, timeout = 10_000) {
  await page.waitForFunction(
    (t) => document.getElementById('status')?.textContent.includes(t),
    text,
    { timeout },
  ).catch(async () => {
    throw new Error(`status never said ${JSON.stringify(text)}; it says ${JSON.stringify(await page.textContent('#status'))}`);
  });
  return page.textContent('#status');
}

/** Logs `email` in from the demo's form, with the tests' password. */
export async function logIn(page, email) {
  await page.fill('#login-email', email);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-form button[type=submit]');
}

/** Opens the demo at `site`, signs `email` up (verification off) and logs in. */
export async function signUpAndLogIn(page, site, email) {
  await page.goto(`${site}/demo`);
  await page.fill('#signup-email', email);
  await page.fill('#signup-password', PASSWORD);
  await page.click('#signup-form button[type=submit]');
  await status(page, 'Sign-up received');
  await logIn(page, email);
  await status(page, 'Logged in.');
}

/** Polls the SMTP test server's output folder for a message to `address`. */
export async function mailTo(dir, address, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      const mail = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      if (mail.rcpt_tos.includes(address)) return mail;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${address} within ${timeout} ms`);
}

/** Runs `main`, turning any failure into a clear message and exit code 1. */
export async function run(main, limitMs = 120_000) {
  const watchdog = setTimeout(() => {
    console.error(`FAILED: still running after ${limitMs} ms`);
    process.exit(1);
  }, limitMs);
  watchdog.unref();
  const browser = await launch();
  try {
    await main(browser);
  } catch (err) {
    console.error(`FAILED: ${err.stack || err}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}
