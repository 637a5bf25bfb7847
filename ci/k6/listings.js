// listings: an agent creating and editing listings — create a draft, edit it, publish it,
// read it back, list their own, archive it. One agent account per VU (made in setup).
// Knobs: VUS (default 2), DURATION (default 10s).
import { check } from 'k6';
import { CITIES, PASSWORD, bearer, call, intKnob, json, knob, thresholds, uniqueEmail } from './lib.js';

export const options = {
  vus: intKnob('VUS', 2),
  duration: knob('DURATION', '10s'),
  thresholds: thresholds(1000),
};

export function setup() {
  const tokens = [];
  for (let i = 0; i < intKnob('VUS', 2); i++) {
    const email = uniqueEmail(`agent${i}`);
    const reg = call('POST', '/v1/auth/register', { email, password: PASSWORD, role: 'agent' });
    tokens.push((json(reg) || {}).access_token);
  }
  return { tokens };
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const auth = { headers: bearer(token) };
  const city = CITIES[__ITER % CITIES.length];
  const created = call('POST', '/v1/listings', {
    title: `k6 apartment ${__VU}-${__ITER}`,
    price: '125000.00',
    listing_type: 'sale',
    property_type: 'apartment',
    bedrooms: 2,
    bathrooms: 1,
    area_m2: '70.5',
    city,
  }, auth);
  const listing = json(created) || {};
  check(created, { 'create 201': (r) => r.status === 201, 'create is a draft': () => listing.status === 'draft' });
  if (!listing.id) return;
  const route = { route: '/v1/listings/{id}' };
  const edited = call('PATCH', `/v1/listings/${listing.id}`, { price: '119000.00', bedrooms: 3 }, Object.assign({}, auth, route));
  check(edited, { 'edit 200': (r) => r.status === 200 && (json(r) || {}).bedrooms === 3 });
  const published = call('POST', `/v1/listings/${listing.id}/publish`, null, Object.assign({}, auth, { route: '/v1/listings/{id}/publish' }));
  check(published, { 'publish 200': (r) => r.status === 200 && (json(r) || {}).status === 'active' });
  const read = call('GET', `/v1/listings/${listing.id}`, null, route);
  check(read, { 'read 200': (r) => r.status === 200 });
  const mine = call('GET', '/v1/listings/mine?limit=5', null, Object.assign({}, auth, { route: '/v1/listings/mine' }));
  check(mine, { 'mine 200': (r) => r.status === 200 });
  const archived = call('POST', `/v1/listings/${listing.id}/archive`, null, Object.assign({}, auth, { route: '/v1/listings/{id}/archive' }));
  check(archived, { 'archive 200': (r) => r.status === 200 && (json(r) || {}).status === 'archived' });
}
