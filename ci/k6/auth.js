// auth: register → login → refresh → logout, each VU with accounts of its own.
// Knobs: VUS (default 2), DURATION (default 10s). The API limits these routes per client
// address (GOODGO_AUTH_RATE_LIMIT); `goodgo k6 run` starts its API with that limit raised.
import { check } from 'k6';
import { PASSWORD, call, intKnob, json, knob, session, thresholds, uniqueEmail } from './lib.js';

export const options = {
  vus: intKnob('VUS', 2),
  duration: knob('DURATION', '10s'),
  thresholds: thresholds(2000),
};

export default function () {
  const email = uniqueEmail('auth');
  const reg = call('POST', '/v1/auth/register', { email, password: PASSWORD, role: 'buyer' });
  check(reg, { 'register 201': (r) => r.status === 201 });
  const login = call('POST', '/v1/auth/login', { email, password: PASSWORD });
  check(login, {
    'login 200': (r) => r.status === 200,
    'login gives a bearer token': (r) => (json(r) || {}).token_type === 'Bearer',
  });
  const s = session(login);
  check(s, { 'login sets the session cookies': (x) => x !== null });
  if (!s) return;
  const refreshed = call('POST', '/v1/auth/refresh', null, s);
  check(refreshed, { 'refresh 200': (r) => r.status === 200 && !!(json(r) || {}).access_token });
  const out = call('POST', '/v1/auth/logout', null, session(refreshed) || s);
  check(out, { 'logout 2xx': (r) => r.status >= 200 && r.status < 300 });
}
