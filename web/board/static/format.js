// format.js: numbers as people read them.

const cache = new Map();

function fmt(digits) {
  let f = cache.get(digits);
  if (!f) {
    f = new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    cache.set(digits, f);
  }
  return f;
}

/** digitsFor picks decimals: whole won for large KRW prices, cents for USD. */
export function digitsFor(price, currency) {
  const p = Math.abs(price);
  if (currency === 'KRW') return p >= 1000 ? 0 : p >= 1 ? 2 : 4;
  return p >= 1 ? 2 : 4;
}

export function price(v, currency) {
  return fmt(digitsFor(v, currency)).format(v);
}

/** change shows v with the decimals of the price it belongs to. */
export function change(v, currency, of) {
  const s = fmt(digitsFor(of, currency)).format(Math.abs(v));
  return (v > 0 ? '+' : v < 0 ? '−' : '') + s;
}

export function rate(v) {
  const s = fmt(2).format(Math.abs(v * 100));
  return (v > 0 ? '+' : v < 0 ? '−' : '') + s + '%';
}

export function age(ms) {
  if (ms < 1000) return Math.max(0, Math.round(ms)) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  return Math.round(ms / 60000) + ' min';
}
