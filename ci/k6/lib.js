// Shared helpers of the goodgo k6 scenarios: the base URL, the knobs `goodgo k6 run` passes
// (VUS, DURATION, RATE, ITERATIONS as -e variables), the load scenarios' thresholds, JSON
// requests tagged by endpoint, and the session cookies (the API marks them Secure, so over
// plain http they are sent by hand).
import http from 'k6/http';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** A knob from the environment (`k6 run -e NAME=value`), or its default. */
export function knob(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : v;
}

/** An integer knob. */
export function intKnob(name, fallback) {
  return parseInt(knob(name, String(fallback)), 10);
}

/**
 * The thresholds of a load scenario: under 1% failed requests and checks, and p95 latency
 * under `p95Ms` milliseconds (the P95_MS knob overrides it).
 */
export function thresholds(p95Ms) {
  return {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(95)<${intKnob('P95_MS', p95Ms)}`],
    checks: ['rate>0.99'],
  };
}

/** A request tagged with its endpoint (`name`), so results group by route, not by URL. */
export function call(method, path, body, params) {
  const p = Object.assign({ headers: {}, tags: {} }, params || {});
  p.tags = Object.assign({ name: `${method} ${p.route || path.split('?')[0]}` }, p.tags);
  delete p.route;
  if (body !== null && body !== undefined) {
    p.headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  return http.request(method, `${BASE_URL}${path}`, body, p);
}

/** The parsed JSON body, or null. */
export function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/** `Authorization: Bearer …` for an access token. */
export function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

/** The session cookies a response set (refresh and CSRF), as a Cookie header and the CSRF value. */
export function session(res) {
  const refresh = (res.cookies.goodgo_refresh || [])[0];
  const csrf = (res.cookies.goodgo_csrf || [])[0];
  if (!refresh || !csrf) return null;
  return {
    headers: {
      Cookie: `goodgo_refresh=${refresh.value}; goodgo_csrf=${csrf.value}`,
      'X-CSRF-Token': csrf.value,
    },
  };
}

/** A unique e-mail for this VU and iteration (runs do not collide). */
export function uniqueEmail(prefix) {
  const rnd = Math.random().toString(36).slice(2, 10);
  const vu = typeof __VU === "undefined" ? 0 : __VU;
  const iter = typeof __ITER === "undefined" ? 0 : __ITER;
  return `${prefix}-${vu}-${iter}-${Date.now()}-${rnd}@k6.example.com`;
}

export const PASSWORD = 'k6-load-password-1';

/** Cities the seed data has. */
export const CITIES = ['Ho Chi Minh City', 'Hanoi', 'Da Nang', 'Hai Phong', 'Nha Trang', 'Can Tho', 'Vung Tau', 'Hue'];
