// search: the mix users run — city, price and bedroom filters, relevance on a text query,
// and keyset paging through a second page — at a constant arrival rate.
// Knobs: RATE (iterations/s, default 20), DURATION (default 10s), VUS (pre-allocated, 10).
import { check } from 'k6';
import { CITIES, call, intKnob, json, knob, thresholds } from './lib.js';

export const options = {
  scenarios: {
    search: {
      executor: 'constant-arrival-rate',
      rate: intKnob('RATE', 20),
      timeUnit: '1s',
      duration: knob('DURATION', '10s'),
      preAllocatedVUs: intKnob('VUS', 10),
      maxVUs: intKnob('VUS', 10) * 4,
    },
  },
  thresholds: thresholds(500),
};

const WORDS = ['garden', 'view', 'balcony', 'pool', 'quiet', 'modern', 'river', 'spacious'];
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

function searchPage(query) {
  const res = call('GET', `/v1/listings/search?${query}`, null, { route: '/v1/listings/search' });
  const body = json(res);
  check(res, {
    'search 200': (r) => r.status === 200,
    'search page shape': () => !!body && Array.isArray(body.items) && 'next_cursor' in body,
  });
  return body;
}

export default function () {
  const city = encodeURIComponent(pick(CITIES));
  const kind = Math.random();
  let query;
  if (kind < 0.4) {
    query = `city=${city}&bedrooms=${1 + Math.floor(Math.random() * 3)}&limit=20`;
  } else if (kind < 0.7) {
    const min = 50000 + Math.floor(Math.random() * 200000);
    query = `city=${city}&min_price=${min}&max_price=${min * 3}&sort=price_asc&limit=20`;
  } else {
    query = `q=${pick(WORDS)}&sort=relevance&limit=20`;
  }
  const first = searchPage(query);
  if (first && first.next_cursor) {
    searchPage(`${query}&cursor=${encodeURIComponent(first.next_cursor)}`);
  }
}
