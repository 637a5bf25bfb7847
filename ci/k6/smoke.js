// smoke: every public endpoint once, with checks on status and shape. One VU, one iteration
// by default (`-e ITERATIONS=N` for more). `k6 run -e BASE_URL=http://127.0.0.1:8080 ci/k6/smoke.js`
import { check, fail } from 'k6';
import { BASE_URL, PASSWORD, bearer, call, intKnob, json, session, uniqueEmail } from './lib.js';

export const options = {
  vus: intKnob('VUS', 1),
  iterations: intKnob('ITERATIONS', 1),
  thresholds: {
    checks: ['rate==1'],
    http_req_failed: ['rate==0'],
    http_req_duration: [`p(95)<${intKnob('P95_MS', 1000)}`],
  },
};

export default function () {
  check(call('GET', '/healthz'), { 'healthz 200': (r) => r.status === 200 });
  check(call('GET', '/readyz'), { 'readyz 200': (r) => r.status === 200 });
  check(call('GET', '/openapi.json'), {
    'openapi 200': (r) => r.status === 200,
    'openapi is 3.1': (r) => String((json(r) || {}).openapi || '').startsWith('3.1'),
  });
  check(call('GET', '/docs'), { 'docs 200': (r) => r.status === 200 && r.body.includes('<html') });

  const search = call('GET', '/v1/listings/search?city=Hanoi&limit=5');
  const page = json(search) || {};
  check(search, {
    'search 200': (r) => r.status === 200,
    'search has items': () => Array.isArray(page.items) && page.items.length > 0,
    'search items in Hanoi': () => (page.items || []).every((i) => i.city === 'Hanoi'),
  });
  if (!page.items || page.items.length === 0) {
    fail(`no listings at ${BASE_URL}: is the database seeded?`);
  }
  const one = call('GET', `/v1/listings/${page.items[0].id}`, null, { route: '/v1/listings/{id}' });
  check(one, { 'listing 200': (r) => r.status === 200 && (json(r) || {}).id === page.items[0].id });

  const email = uniqueEmail('smoke');
  const reg = call('POST', '/v1/auth/register', { email, password: PASSWORD, role: 'agent' });
  check(reg, { 'register 201': (r) => r.status === 201 && !!(json(r) || {}).access_token });
  const login = call('POST', '/v1/auth/login', { email, password: PASSWORD });
  const token = (json(login) || {}).access_token;
  check(login, { 'login 200': (r) => r.status === 200 && !!token });
  const auth = { headers: bearer(token) };
  const me = call('GET', '/v1/me', null, auth);
  check(me, { 'me is the account': (r) => r.status === 200 && (json(r) || {}).email === email });
  const mine = call('GET', '/v1/listings/mine', null, auth);
  check(mine, { 'mine 200': (r) => r.status === 200 });
  const s = session(login);
  check(s, { 'login sets the session cookies': (x) => x !== null });
  if (s) {
    const refreshed = call('POST', '/v1/auth/refresh', null, s);
    check(refreshed, { 'refresh 200': (r) => r.status === 200 && !!(json(r) || {}).access_token });
    const out = call('POST', '/v1/auth/logout', null, session(refreshed) || s);
    check(out, { 'logout 204': (r) => r.status === 204 || r.status === 200 });
  }
}
