// Sign up, log in, read the user, refresh, log out — through a client
// generated from latchkey's OpenAPI document. Every call is type-checked
// against the schema (`npm run check`); run it with `npm run journey`
// against a latchkey started with LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

type Problem = components['schemas']['Problem'];

const baseUrl = process.env.LATCHKEY_URL ?? 'http://127.0.0.1:8080';
const latchkey = createClient<paths>({ baseUrl });

function expect(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`journey failed: ${what}`);
}

const email = `ts-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
const password = 'Correct1Horse';

const signup = await latchkey.POST('/v1/auth/signup', { body: { email, password, name: 'TypeScript' } });
expect(signup.response.status === 202 && signup.data?.message, `signup answered ${signup.response.status}`);

const login = await latchkey.POST('/v1/auth/login', { body: { email, password } });
expect(login.data, `login answered ${login.response.status}`);
let tokens = login.data;
expect(tokens.token_type === 'Bearer' && tokens.expires_in > 0, 'a bearer token response');

const auth = (accessToken: string) => ({ headers: { Authorization: `Bearer ${accessToken}` } });
const me = await latchkey.GET('/v1/users/me', auth(tokens.access_token));
expect(me.data?.email === email && me.data.name === 'TypeScript', `users/me answered ${me.response.status}`);

const refreshed = await latchkey.POST('/v1/auth/refresh', { body: { refresh_token: tokens.refresh_token } });
expect(refreshed.data, `refresh answered ${refreshed.response.status}`);
expect(refreshed.data.refresh_token !== tokens.refresh_token, 'refresh rotates the refresh token');
expect(refreshed.data.session_id === tokens.session_id, 'the same session');
tokens = refreshed.data;

const logout = await latchkey.POST('/v1/auth/logout', auth(tokens.access_token));
expect(logout.response.status === 204, `logout answered ${logout.response.status}`);

const after = await latchkey.POST('/v1/auth/refresh', { body: { refresh_token: tokens.refresh_token } });
const problem: Problem | undefined = after.error;
expect(after.response.status === 401 && problem?.code === 'invalid_refresh_token', 'refresh after logout is refused');

console.log(`typescript journey ok: ${email}`);
