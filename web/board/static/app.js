// app.js: the board's entry point. It wires small modules together:
//   prefs.js      what the board remembers (localStorage, ?symbols=)
//   api.js        HTTP requests to the node
//   search.js     the catalogue search box
//   feed.js       one live connection, reconnecting (transports.js, backoff.js)
//   table.js      the rows, drawn once per animation frame (spark.js, format.js)
//   status.js     the connection badge; stats.js the delivery age figures
//   session.js    signing in with a token (sessionStorage), GET /v1/me
//   portfolio.js  the live valuation of the user's portfolio
//   alerts.js     the user's fired alerts (GET /v1/me/events)
//   chart.js      a symbol's candles and moving averages, live
// Signed in, the board can show one of the user's watchlists instead of
// its own symbols: the connection follows the list, so edits made
// elsewhere add and drop rows.

import * as prefs from './prefs.js';
import * as api from './api.js';
import * as format from './format.js';
import { searchBox } from './search.js';
import { Feed } from './feed.js';
import { Table } from './table.js';
import { statusView } from './status.js';
import { Stats } from './stats.js';
import { sessionBox } from './session.js';
import { Portfolio } from './portfolio.js';
import { Alerts } from './alerts.js';
import { Chart } from './chart.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_LIMIT = 200; // the node's max_symbols until its welcome says otherwise

let limit = DEFAULT_LIMIT;
let symbols = prefs.symbols();
const names = prefs.names();
const stats = new Stats();
let noticeTimer = 0;

function notice(msg) {
  const p = $('notice');
  p.textContent = msg;
  p.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (p.hidden = true), 6000);
}

let lastStats = 0;
function showStats() {
  const now = performance.now();
  if (now - lastStats < 500) return;
  lastStats = now;
  const s = stats.summary();
  $('stats').textContent = s.n
    ? `${symbols.length} symbols · ${s.rate.toFixed(1)} updates/s · delivery age p50 ${format.age(s.p50)}, p95 ${format.age(s.p95)} (last ${s.n})`
    : `${symbols.length} symbols · waiting for updates`;
}

const show = statusView($('status'), $('status-text'));
const table = new Table($('rows'), { onRemove: remove, onFrame: showStats });
const portfolio = new Portfolio($('portfolio'));
const chart = new Chart($('chart'), { notice });
let session = null;
let following = ''; // the id of the watchlist shown, '' for the board's own symbols
const alerts = new Alerts($('alerts'), { onLost: () => session && session.check() });

const feed = new Feed({
  transport: prefs.transport(),
  onQuotes: (qs, at) => {
    stats.record(table.push(qs, at));
    for (const q of qs) chart.quote(q);
  },
  onRejected: (list) => {
    if (list.some((r) => r.code === 'unauthorized')) session.check();
    for (const r of list) {
      if (r.symbol && !following) remove(r.symbol);
    }
    notice(list.map((r) => (r.symbol ? r.symbol + ': ' : '') + r.message).join('; '));
  },
  onState: (s) => {
    if (s.limits && s.limits.max_symbols) limit = s.limits.max_symbols;
    if (s.state === 'waiting' && session) session.check();
    show(s);
  },
  onList: ({ list, added, dropped }) => {
    if (list !== 'watchlist:' + following) return;
    for (const s of added) table.add(s, names[s]);
    for (const s of dropped) table.remove(s);
    $('empty').hidden = table.symbols().length > 0;
    if (dropped.length && !table.symbols().length) listGone(following);
  },
  onPortfolio: (f) => portfolio.show(f),
});

function lists() {
  return following ? ['portfolio', 'watchlist:' + following] : ['portfolio'];
}

function changed() {
  if (following) return; // a watchlist's symbols live in the user's data, not here
  prefs.saveSymbols(symbols);
  prefs.saveNames(Object.fromEntries(symbols.filter((s) => names[s]).map((s) => [s, names[s]])));
  $('empty').hidden = symbols.length > 0;
  feed.setSymbols(symbols);
  lastStats = 0;
  showStats();
}

function add(info) {
  if (info.name) names[info.symbol] = info.name;
  if (following) {
    editList({ add: [info.symbol] });
    return;
  }
  if (symbols.includes(info.symbol)) {
    table.add(info.symbol, info.name);
    return;
  }
  if (symbols.length >= limit) {
    notice(`At most ${limit} symbols per board.`);
    return;
  }
  symbols = [...symbols, info.symbol];
  table.add(info.symbol, info.name);
  changed();
}

// editList changes the watchlist shown; its rows follow from the frames
// of the followed list, as for an edit made anywhere else.
function editList(body) {
  api.request('PATCH', '/v1/me/watchlists/' + encodeURIComponent(following), { body }).catch((e) => notice('Watchlist: ' + e.message));
}

function remove(symbol) {
  if (following) {
    editList({ remove: [symbol] });
    return;
  }
  if (!symbols.includes(symbol)) return;
  symbols = symbols.filter((s) => s !== symbol);
  table.remove(symbol);
  changed();
}

// fillNames looks up, one at a time, the names of symbols that came from a
// shared link or were stored before their names were known. A failed
// lookup (the node away or busy) is tried again after 1, 2, 4, 8 and 16 s;
// after that, the next visit tries again.
async function fillNames(attempt = 0) {
  for (const s of symbols.filter((s) => !names[s])) {
    try {
      const hit = (await api.searchSymbols(s, { limit: 1 })).find((r) => r.symbol === s);
      if (!hit) continue;
      names[s] = hit.name;
      table.setName(s, hit.name);
    } catch {
      if (attempt < 5) setTimeout(() => fillNames(attempt + 1), 1000 << attempt);
      return;
    }
  }
  changed();
}

function applyScheme(on) {
  document.body.classList.toggle('scheme-kr', on);
}

// Start.
symbols = symbols.slice(0, limit);
for (const s of symbols) table.add(s, names[s]);
$('empty').hidden = symbols.length > 0;
prefs.saveSymbols(symbols);
feed.setSymbols(symbols);
feed.start();
showStats();
fillNames();

const transport = $('transport');
transport.value = feed.transport;
transport.addEventListener('change', () => {
  prefs.saveTransport(transport.value);
  feed.use(transport.value);
});

const kr = $('scheme-kr');
kr.checked = prefs.koreanColours();
applyScheme(kr.checked);
kr.addEventListener('change', () => {
  prefs.saveKoreanColours(kr.checked);
  applyScheme(kr.checked);
});

$('share').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    notice('Link copied: ' + location.href);
  } catch {
    notice('Share this link: ' + location.href);
  }
});

// showBoard shows the board's own symbols, or the watchlist id's.
async function showBoard(id) {
  following = id;
  $('watchlist').value = id;
  table.clear();
  if (!id) {
    for (const s of symbols) table.add(s, names[s]);
    $('empty').hidden = symbols.length > 0;
    feed.setSymbols(symbols);
    feed.setAuth(api.currentToken(), lists());
    return;
  }
  feed.setSymbols([]);
  feed.setAuth(api.currentToken(), lists());
  try {
    const wl = await api.watchlist(id);
    if (following !== id) return;
    for (const s of wl.symbols) table.add(s, names[s]);
    $('empty').hidden = wl.symbols.length > 0;
  } catch (e) {
    notice('Watchlist: ' + e.message);
  }
}

// listGone checks whether a watchlist that lost all its symbols was
// deleted (elsewhere): then the board goes back to its own symbols. A
// failed check (the node away or busy) is tried again after 1, 2, 4, 8
// and 16 s while the list is still shown.
async function listGone(id, attempt = 0) {
  let wls;
  try {
    wls = await api.watchlists(); // a list read, not a 404 of the one gone
  } catch {
    if (attempt < 5) {
      setTimeout(() => following === id && listGone(id, attempt + 1), 1000 << attempt);
    }
    return;
  }
  if (following !== id || wls.some((w) => w.id === id)) return;
  notice('The watchlist was deleted.');
  await showBoard('');
  loadWatchlists();
}

async function loadWatchlists() {
  const select = $('watchlist');
  try {
    const wls = await api.watchlists();
    select.replaceChildren(select.options[0]);
    for (const w of wls) {
      const o = document.createElement('option');
      o.value = w.id;
      o.textContent = w.name + ' (' + w.symbols.length + ')';
      select.append(o);
    }
    select.value = following;
  } catch (e) {
    notice('Watchlists: ' + e.message);
  }
}

$('watchlist').addEventListener('change', () => showBoard($('watchlist').value));

$('rows').addEventListener('click', (e) => {
  const tr = e.target.closest('tr');
  if (tr && !e.target.closest('button')) chart.open(tr.dataset.symbol);
});

session = sessionBox(
  { form: $('signin'), input: $('token'), signed: $('signed'), who: $('who'), out: $('signout') },
  {
    notice,
    onChange: (user) => {
      if (user) {
        feed.setAuth(api.currentToken(), lists());
        alerts.open(api.currentToken());
        loadWatchlists();
        return;
      }
      alerts.close();
      portfolio.clear();
      $('watchlist').replaceChildren($('watchlist').options[0]);
      if (following) showBoard('');
      else feed.setAuth('', []);
    },
  },
);

searchBox({
  input: $('search'),
  list: $('results'),
  onPick: add,
  onError: (e) => notice('Search failed: ' + e.message),
});
